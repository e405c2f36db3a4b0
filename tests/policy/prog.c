/* prog.c - a program for the policy tests, run under `quarantine run`:
 *
 *   prog run SECONDS THREADS [OPTIONS]
 *
 * THREADS threads call the components in a loop for SECONDS seconds (per
 * start), check every answer that is not a fault value, count one unit of
 * work per round (qtn_work_done), and the program exits 0, or 5 if any
 * answer was wrong. Options:
 *   --bad-every N    thread 0 gives the parser a bad line every N rounds
 *                    (it crashes: the host, or its domain)
 *   --hang-every N   thread 0 makes g2 hang past its deadline every N rounds
 *   --groups         rounds call g1 (which calls g2) instead of the others
 *   --pause-us U     each round sleeps U microseconds (default 0)
 *   --first-start-only  the options above apply in the first start only
 * It prints one line at the end: rounds, faults seen, wrong answers. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "parts.h"

/* under AddressSanitizer, let a crash be a crash */
const char *__asan_default_options(void);
__attribute__((used)) const char *__asan_default_options(void) {
    return "handle_segv=0:handle_sigbus=0:handle_abort=0";
}

static double seconds;
static long bad_every, hang_every, pause_us;
static int groups;
static _Atomic long rounds, faults, wrong;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* the checksum as the program computes it itself, to check the component's */
static uint32_t checksum_real_(const char *buf, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)buf[i]) * 16777619u;
    return h;
}

static void one_round(long i, int first) {
    if (groups) {
        int32_t hang = first && hang_every && i % hang_every == hang_every - 1 ? 1000 : 0;
        int r = g1_work((int32_t)i, hang);
        if (r < 0)
            atomic_fetch_add(&faults, 1);
        else if (r != (uint8_t)(i + 8192) + 1)
            atomic_fetch_add(&wrong, 1);
        return;
    }
    char line[64];
    int bad = first && bad_every && i % bad_every == bad_every - 1;
    snprintf(line, sizeof line, "%s %ld %ld %ld %ld", bad ? "BAD" : "ok", i % 97, i % 89,
             i % 83, i % 79);
    int32_t f[4];
    int n = parse_line(line, f);
    if (n < 0) {
        atomic_fetch_add(&faults, 1);
        return;
    }
    if (n != 4 || f[0] != i % 97 || f[3] != i % 79) {
        atomic_fetch_add(&wrong, 1);
        return;
    }
    char out[64], want[64];
    int k = render_fields(f, out, sizeof out);
    snprintf(want, sizeof want, "%d,%d,%d,%d", f[0], f[1], f[2], f[3]);
    if (k < 0) {
        atomic_fetch_add(&faults, 1);
        return;
    }
    if (k != (int)strlen(want) || memcmp(out, want, (size_t)k)) { /* k bytes come back, no NUL */
        atomic_fetch_add(&wrong, 1);
        return;
    }
    uint32_t c = checksum((const uint8_t *)out, (size_t)k);
    if (c == 0)
        atomic_fetch_add(&faults, 1);
    else if (c != checksum_real_(out, (size_t)k))
        atomic_fetch_add(&wrong, 1);
}

static void *worker(void *arg) {
    long t = (long)(intptr_t)arg;
    double end = now() + seconds;
    const char *start = getenv("QTN_RUN_START");
    int first = !start || !strcmp(start, "1") || !getenv("PROG_FIRST_ONLY");
    for (long i = 0; now() < end; i++) {
        one_round(i, first && t == 0);
        atomic_fetch_add(&rounds, 1);
        qtn_work_done(1);
        if (pause_us)
            usleep((useconds_t)pause_us);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[1], "run"))
        return 2;
    seconds = atof(argv[2]);
    int threads = atoi(argv[3]);
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--bad-every") && i + 1 < argc)
            bad_every = atol(argv[++i]);
        else if (!strcmp(argv[i], "--hang-every") && i + 1 < argc)
            hang_every = atol(argv[++i]);
        else if (!strcmp(argv[i], "--pause-us") && i + 1 < argc)
            pause_us = atol(argv[++i]);
        else if (!strcmp(argv[i], "--groups"))
            groups = 1;
        else if (!strcmp(argv[i], "--first-start-only"))
            setenv("PROG_FIRST_ONLY", "1", 1);
        else
            return 2;
    }
    if (qtn_init(NULL))
        return 3;
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    for (long i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    free(t);
    char plan[1024];
    qtn_plan_format(plan, sizeof plan);
    printf("rounds=%ld faults=%ld wrong=%ld plan=\"%s\"\n", atomic_load(&rounds),
           atomic_load(&faults), atomic_load(&wrong), plan);
    fflush(stdout);
    qtn_shutdown();
    return atomic_load(&wrong) ? 5 : 0;
}
