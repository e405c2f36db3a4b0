/* main.c - a guided tour of quarantine: one component, textstats, runs first
 * in the program's own process and then in a domain process, with the same
 * results; four threads call it at once; the statistics show what crossed;
 * the plan moves it back while the program runs; a bug in it crashes its
 * domain, which comes back; and, under quarantine run, the same bug crashes
 * the program itself, which quarantine run restarts. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "quarantine.h"
#include "textstats.h"

/* Irregular white space on purpose, so ts_normalize has something to do. */
static const char sample_text[] =
    "In the fourteenth century, Venice  required ships arriving from\n"
    "plague-stricken ports to wait at anchor for forty days before anyone\n"
    "landed. The Venetian dialect called the period quaranta giorni, and the\n"
    "word quarantine has kept its meaning ever since: hold something apart\n"
    "until you can trust it.\n"
    "\n"
    "\tIsolation was not exile. The ships still traded; goods and letters\n"
    "reached the shore, but only through a harbour officer who opened each\n"
    "crate and copied each letter.   What crossed was copied, checked and\n"
    "written down.\n"
    "\n"
    "A program can treat its parts the same way. A parser, a codec or a\n"
    "plugin can run in a separate process while its callers never notice:\n"
    "arguments travel over shared memory, results come back, and a crash\n"
    "stays on the ship.\n";

#define NTHREADS 4
#define CALLS_PER_THREAD 2000
#define LONGEST_MAX 32
#define PREVIEW 44

/* What one run of the work produces; everything but the pids must come out
 * the same wherever textstats runs. */
typedef struct results {
    int words;
    int letters;
    uint32_t hist[TS_NBINS];
    size_t text_len, norm_len;
    char norm[sizeof sample_text];
    int cb_words;                 /* words the callback saw */
    char longest[LONGEST_MAX];    /* longest word the callback saw */
    size_t longest_len;
    int32_t pid;                  /* where textstats ran */
    int32_t cb_pid;               /* where the callback ran */
} results;

static void die(const char *what, int err) {
    fprintf(stderr, "demo: %s: %s\n", what, qtn_strerror(err));
    exit(1);
}

static void apply_plan(const char *plan) {
    char err[256] = "";
    int r = qtn_plan_apply(plan, err, sizeof err);
    if (r) {
        fprintf(stderr, "demo: plan \"%s\": %s%s%s\n", plan, qtn_strerror(r), *err ? ": " : "",
                err);
        exit(1);
    }
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the work ------------------------------------------------------------------ */

/* Called by ts_each_word for each word. It always runs in this process, even
 * when textstats does not, which is why it may write to *ctx. */
static int on_word(void *ctx, const char *word, size_t len) {
    results *r = ctx;
    r->cb_words++;
    r->cb_pid = (int32_t)getpid();
    if (len > r->longest_len && len < sizeof r->longest) {
        memcpy(r->longest, word, len);
        r->longest[len] = '\0';
        r->longest_len = len;
    }
    return 0;
}

/* Runs every textstats entry once on the sample text. */
static void run_work(results *r) {
    memset(r, 0, sizeof *r);
    r->words = ts_count_words(sample_text);
    r->letters = ts_histogram(sample_text, r->hist, TS_NBINS);
    r->text_len = sizeof sample_text - 1;
    memcpy(r->norm, sample_text, sizeof sample_text);
    r->norm_len = ts_normalize(r->norm, r->text_len);
    int each = ts_each_word(sample_text, on_word, r);
    r->pid = ts_pid();
    /* the stubs report a failed crossing through their fault values */
    if (r->words < 0 || r->letters < 0 || r->norm_len > r->text_len || each != 0 || r->pid < 0) {
        fprintf(stderr, "demo: a textstats call failed\n");
        exit(1);
    }
    r->norm[r->norm_len] = '\0'; /* only norm_len bytes are meaningful */
}

static bool same_results(const results *a, const results *b) {
    return a->words == b->words && a->letters == b->letters &&
           memcmp(a->hist, b->hist, sizeof a->hist) == 0 && a->norm_len == b->norm_len &&
           memcmp(a->norm, b->norm, a->norm_len) == 0 && a->cb_words == b->cb_words &&
           a->longest_len == b->longest_len && strcmp(a->longest, b->longest) == 0;
}

/* The five most common letters, as "e 95  t 70  ...". */
static void top_letters(const results *r, char *out, size_t cap) {
    bool used[TS_NBINS] = {false};
    size_t n = 0;
    out[0] = '\0';
    for (int k = 0; k < 5; k++) {
        int best = -1;
        for (int i = 0; i < TS_NBINS; i++)
            if (!used[i] && r->hist[i] && (best < 0 || r->hist[i] > r->hist[best]))
                best = i;
        if (best < 0)
            break;
        used[best] = true;
        int m = snprintf(out + n, cap - n, "%s%c %u", k ? "  " : "", 'a' + best,
                         (unsigned)r->hist[best]);
        if (m < 0 || (size_t)m >= cap - n)
            break;
        n += (size_t)m;
    }
}

static const char *where(int32_t pid, int32_t host_pid) {
    return pid == host_pid ? "(the host)" : "(domain 1)"; /* the only domain used here */
}

static void print_results(const results *r, int32_t host_pid) {
    char top[64];
    top_letters(r, top, sizeof top);
    printf("  %-15s %-20s %d\n", "ts_count_words", "words", r->words);
    printf("  %-15s %-20s %-6d most common: %s\n", "ts_histogram", "letters", r->letters, top);
    printf("  %-15s %-20s %zu -> %zu  \"%.*s...\"\n", "ts_normalize", "bytes", r->text_len,
           r->norm_len, PREVIEW, r->norm);
    printf("  %-15s %-20s %-6d longest \"%s\"\n", "ts_each_word", "words via callback",
           r->cb_words, r->longest);
    printf("  %-15s %-20s %-6d %s\n", "ts_pid", "textstats ran in pid", (int)r->pid,
           where(r->pid, host_pid));
    printf("  %-15s %-20s %-6d %s\n", "", "callback ran in pid", (int)r->cb_pid,
           where(r->cb_pid, host_pid));
}

/* ---- concurrency --------------------------------------------------------------- */

typedef struct worker {
    pthread_t th;
    const results *expect;
    pthread_barrier_t *started;
    int wrong;
} worker;

/* Alternates two entries and checks every answer against the host's. */
static void *worker_main(void *arg) {
    worker *w = arg;
    uint32_t hist[TS_NBINS];
    for (int i = 0; i < CALLS_PER_THREAD; i++) {
        if (i % 2 == 0) {
            if (ts_count_words(sample_text) != w->expect->words)
                w->wrong++;
        } else if (ts_histogram(sample_text, hist, TS_NBINS) != w->expect->letters ||
                   memcmp(hist, w->expect->hist, sizeof hist) != 0) {
            w->wrong++;
        }
        /* after the first call this thread holds a channel: let main look */
        if (i == 0)
            pthread_barrier_wait(w->started);
    }
    return NULL;
}

/* ---- statistics ---------------------------------------------------------------- */

static void print_stats_row(void *ctx, const char *caller, const char *callee, const char *entry,
                            const qtn_stats *st) {
    (void)ctx;
    char mean[32] = "-", max[32] = "-";
    if (st->crossings) {
        snprintf(mean, sizeof mean, "%.1f",
                 (double)st->cross_ns_total / (double)st->crossings / 1e3);
        snprintf(max, sizeof max, "%.1f", (double)st->cross_ns_max / 1e3);
    }
    printf("  %-8s %-10s %-15s %7llu %10llu %9s %9s\n", caller, callee, entry,
           (unsigned long long)st->calls, (unsigned long long)st->crossings, mean, max);
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(void) {
    printf("usage: demo [-h|--help]\n"
           "\n"
           "Shows quarantine at work on one component, textstats (word counts, a letter\n"
           "histogram, in-place normalization, a per-word callback). It runs the same work\n"
           "with textstats first in this process and then isolated in a domain process,\n"
           "checks the results are identical, calls the isolated component from %d threads\n"
           "at once, prints what crossed between the processes and what each crossing\n"
           "cost, moves textstats back into this process while the program runs, and\n"
           "shows a bug in textstats crashing its domain, which is restarted. Under\n"
           "quarantine run (make demo), the same bug then crashes the program itself,\n"
           "which quarantine run restarts and attributes. Nothing needs to be set up;\n"
           "the demo takes a second or so.\n",
           NTHREADS);
}

static int restarted(const char *nth);

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage();
            return 0;
        }
        fprintf(stderr, "demo: unknown argument '%s' (try --help)\n", argv[i]);
        return 2;
    }
    const char *nth = getenv("QTN_RUN_START");
    if (nth && strcmp(nth, "1"))
        return restarted(nth);
    /* domains are forked from the state at qtn_init: register first, and
     * initialise before any thread starts */
    int r = qtn_register(&textstats_component);
    if (r)
        die("qtn_register", r);
    if ((r = qtn_init(NULL)))
        die("qtn_init", r);
    int32_t host_pid = (int32_t)getpid();
    printf("quarantine demo: host process pid %d\n", (int)host_pid);

    /* 1 */
    static results direct, isolated;
    printf("\n1. plan \"textstats=host\": textstats runs in this process\n");
    apply_plan("textstats=host");
    run_work(&direct);
    print_results(&direct, host_pid);
    if (direct.pid != host_pid) {
        fprintf(stderr, "demo: textstats did not run in the host\n");
        return 1;
    }

    /* 2 */
    printf("\n2. plan \"textstats=1\": textstats runs in domain process 1\n");
    apply_plan("textstats=1");
    run_work(&isolated);
    print_results(&isolated, host_pid);
    qtn_domain_info info;
    if ((r = qtn_domain_info_get(1, &info)))
        die("qtn_domain_info_get", r);
    if (isolated.pid == host_pid || isolated.pid != info.pid) {
        fprintf(stderr, "demo: textstats did not run in domain 1 (pid %d)\n", info.pid);
        return 1;
    }
    bool same = same_results(&direct, &isolated);
    printf("  same results isolated and direct: %s\n", same ? "yes" : "NO");
    if (!same)
        return 1;

    /* 3 */
    printf("\n3. %d threads call the isolated textstats at once, %d calls each\n", NTHREADS,
           CALLS_PER_THREAD);
    worker w[NTHREADS];
    pthread_barrier_t started;
    pthread_barrier_init(&started, NULL, NTHREADS + 1);
    double t0 = now_ms();
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker){.expect = &direct, .started = &started};
        if ((r = pthread_create(&w[i].th, NULL, worker_main, &w[i]))) {
            fprintf(stderr, "demo: pthread_create: %s\n", strerror(r));
            return 1;
        }
    }
    pthread_barrier_wait(&started);
    qtn_domain_info busy;
    if ((r = qtn_domain_info_get(1, &busy)))
        die("qtn_domain_info_get", r);
    int wrong = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(w[i].th, NULL);
        wrong += w[i].wrong;
    }
    double ms = now_ms() - t0;
    pthread_barrier_destroy(&started);
    int total = NTHREADS * CALLS_PER_THREAD;
    printf("  %d calls in %.1f ms of wall time, %d wrong results\n", total, ms, wrong);
    printf("  channels in use while they ran: %u (each calling thread holds its own)\n",
           busy.channels_in_use);
    if (wrong)
        return 1;

    /* 4 */
    printf("\n4. what crossed, and what it cost\n");
    printf("  %-8s %-10s %-15s %7s %10s %9s %9s\n", "caller", "callee", "entry", "calls",
           "crossings", "mean us", "max us");
    if ((r = qtn_stats_foreach(print_stats_row, NULL)) < 0)
        die("qtn_stats_foreach", r);
    if ((r = qtn_domain_info_get(1, &info)))
        die("qtn_domain_info_get", r);
    printf("  domain 1: pid %d, channels in use %u, channels served %u\n", info.pid,
           info.channels_in_use, info.channels_served);
    printf("  \"calls\" includes the direct calls of step 1. ts_each_word's one crossing\n"
           "  includes a round trip back to the host for each of its %d callbacks.\n"
           "  The workers' channels were freed when they exited; their servers stay.\n",
           isolated.cb_words);

    /* 5 */
    printf("\n5. plan \"textstats=host\" again, while the program runs\n");
    apply_plan("textstats=host");
    char plan[128];
    qtn_plan_format(plan, sizeof plan);
    int32_t pid = ts_pid();
    printf("  plan in force: %s\n", plan);
    printf("  ts_pid() ran in pid %d %s\n", (int)pid, where(pid, host_pid));
    if (pid != host_pid)
        return 1;

    /* 6 */
    printf("\n6. a bug in textstats while it is isolated\n");
    apply_plan("textstats=1");
    char word[32];
    int32_t before = ts_pid();
    int n = ts_longest("quarantine keeps servers running", word, sizeof word);
    printf("  ts_longest(\"quarantine keeps servers running\") = %d \"%s\"\n", n, word);
    printf("  ts_longest(\"   \") has no word to find, and dereferences NULL:\n");
    fflush(stdout);
    n = ts_longest("   ", word, sizeof word);
    printf("  ts_longest returned %d, its fault value; this program carries on\n", n);
    qtn_report rep;
    if (qtn_report_next(&rep, 5000) != 1) {
        fprintf(stderr, "demo: no fault report\n");
        return 1;
    }
    printf("  report %llu: %s.%s in domain %d (pid %d): %s\n", (unsigned long long)rep.seq,
           rep.component, rep.entry, rep.domain, rep.pid, rep.reason);
    for (uint32_t i = 0; i < rep.nframes && i < 4; i++)
        printf("    #%u %s\n", i, rep.symbols[i][0] ? rep.symbols[i] : "?");
    printf("  %u call(s) failed; the domain was back in %.2f ms\n", rep.calls_failed,
           rep.recovery_ns / 1e6);
    n = ts_longest("a fault costs only the calls in flight", word, sizeof word);
    int32_t after = ts_pid();
    printf("  next call: %d \"%s\", served by pid %d (was %d), state started afresh\n", n,
           word, (int)after, (int)before);
    if (n != 6 || after == before || after == host_pid)
        return 1;

    /* 7 */
    printf("\n7. the same bug while textstats runs in this process\n");
    if (!getenv("QTN_RUN_START")) {
        printf("  (only under quarantine run, which restarts the program: make demo)\n");
        qtn_shutdown();
        return 0;
    }
    apply_plan("textstats=host");
    printf("  plan \"textstats=host\"; ts_longest(\"   \") crashes the program itself.\n"
           "  Its crash handler writes the frames; quarantine run names them, blames\n"
           "  textstats and starts the program again.\n");
    fflush(stdout);
    ts_longest("   ", word, sizeof word);
    return 1; /* not reached */
}

/* Started again by quarantine run after step 7's crash. */
static int restarted(const char *nth) {
    int r = qtn_register(&textstats_component);
    if (r || (r = qtn_init(NULL)))
        die("qtn_init", r);
    char word[32];
    int n = ts_longest("started again in milliseconds", word, sizeof word);
    printf("\n8. started again by quarantine run (start %s, pid %d)\n", nth, (int)getpid());
    printf("  ts_longest(\"started again in milliseconds\") = %d \"%s\"\n", n, word);
    qtn_shutdown();
    return n == 12 ? 0 : 1;
}
