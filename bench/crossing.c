/*
 * crossing.c - what a call costs, from a plain function call up to a
 * crossing into a domain process, next to the machine's own IPC floors.
 *
 * All figures come from one run of one process, so they share the same
 * machine state and can be compared directly. Each figure is the median over
 * a number of batches of the mean time per operation within a batch; every
 * loop is warmed up first (the first crossing on a thread starts a serving
 * thread in the domain, which must not be counted).
 *
 *   plain_call_ns         call to a non-inlined function returning a constant
 *   direct_stub_ns        tk_nop() with "tk" in the host: stub check + call
 *   null_crossing_ns      tk_nop() with "tk" in domain 1: a round trip
 *   inout_4k_crossing_ns  tk_invert() on 4 KiB, copied in and out
 *   inout_1m_crossing_ns  tk_invert() on 1 MiB, copied in and out
 *   inout_1m_direct_ns    the same call in the host: the callee's own work,
 *                         so crossing minus direct is the cost of the copies
 *   spin_floor_ns         two processes spinning on a shared word
 *   futex_floor_ns        two processes waking each other with futexes
 *   pipe_rtt_ns           1-byte ping-pong over two pipes
 *   socketpair_rtt_ns     1-byte ping-pong over an AF_UNIX socketpair
 *   oversub_crossing_ns   2 x nproc threads all calling tk_nop() in domain 1:
 *                         mean latency of one call as one thread sees it
 *                         (wall time * threads / calls)
 *   loaded_crossing_ns    tk_nop() in domain 1 from one thread while 2 x nproc
 *                         other threads of the host burn CPU: no core is
 *                         free, as in a loaded server
 *   first_crossing_ns     a new thread's first tk_nop() in domain 1 (it takes
 *                         a channel and the domain starts a thread to serve it)
 *
 * Reading it: a null crossing should cost about what the spin floor costs
 * (both sides spin while the other works), and an order of magnitude less
 * than a pipe round trip. With more threads than cores, or no core free,
 * nobody can spin usefully, so a crossing should then cost no more than a
 * futex round trip.
 * The ratio lines at the end show these comparisons with their targets. The
 * targets are for the reader; the exit status only reports errors.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "floors.h"
#include "quarantine.h"
#include "tk.h"

#define NOP_VALUE 7 /* what tk_nop() returns; plain_nop() returns the same */
#define MAX_BATCHES 64

/* Iteration counts: one full set and one for smoke tests. */
typedef struct sizes {
    int batches;
    long call_iters;     /* plain and direct-stub loops */
    long cross_iters;    /* null crossings */
    long inout4k_iters;
    long inout1m_iters;
    int spin_rounds, futex_rounds, pipe_rounds, sock_rounds;
    long oversub_calls;  /* per thread per batch */
    long loaded_iters;   /* null crossings with no core free, per batch */
    int first_threads;   /* threads whose first crossing is timed */
} sizes;

static const sizes full_sizes = {21,    1000000, 200000, 20000, 20,   200000,
                                 100000, 50000,  50000,  5000,  5000, 200};
static const sizes quick_sizes = {5, 20000, 2000, 200, 4, 2000, 2000, 1000, 1000, 200, 200, 20};

/* ---- timing ----------------------------------------------------------------- */

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* A measured loop: runs n iterations, returns 0 or -1 if a call returned
 * something other than what it should (a crossing that faulted). */
typedef int (*loop_fn)(void *ctx, long n);

/* One untimed warm-up batch, then the median ns per iteration over batches. */
static double measure(loop_fn fn, void *ctx, long iters, int batches, const char *what) {
    double v[MAX_BATCHES];
    if (fn(ctx, iters) < 0)
        goto bad;
    for (int b = 0; b < batches; b++) {
        double t0 = now_ns();
        int r = fn(ctx, iters);
        v[b] = (now_ns() - t0) / (double)iters;
        if (r < 0)
            goto bad;
    }
    return median(v, batches);
bad:
    fprintf(stderr, "crossing: %s: a call returned a wrong result\n", what);
    return -1.0;
}

/* ---- the loops ---------------------------------------------------------------- */

/* The baseline: a real call and return. The asm hides the constant from the
 * optimiser so the caller cannot fold the result and must make the call. */
static __attribute__((noinline)) int plain_nop(void) {
    int v = NOP_VALUE;
    __asm__ volatile("" : "+r"(v)::"memory");
    return v;
}

/* Summing the results keeps the calls live and checks them for free; the two
 * nop loops are identical apart from the function they call. */
static int plain_loop(void *ctx, long n) {
    (void)ctx;
    long s = 0;
    for (long i = 0; i < n; i++)
        s += plain_nop();
    return s == NOP_VALUE * n ? 0 : -1;
}

static int nop_loop(void *ctx, long n) {
    (void)ctx;
    long s = 0;
    for (long i = 0; i < n; i++)
        s += tk_nop();
    return s == NOP_VALUE * n ? 0 : -1;
}

/* tk_invert flips every byte and returns the sum of the new bytes. Starting
 * from all 0x01 the sum alternates between len and 254 * len, never 0 (the
 * fault value), so each result can be checked. */
typedef struct inout_ctx {
    uint8_t *buf;
    size_t len;
    int flipped; /* buffer currently holds 0xfe */
} inout_ctx;

static int invert_loop(void *arg, long n) {
    inout_ctx *c = arg;
    int bad = 0;
    for (long i = 0; i < n; i++) {
        uint64_t s = tk_invert(c->buf, c->len);
        c->flipped = !c->flipped;
        bad |= s != (c->flipped ? 254u : 1u) * (uint64_t)c->len;
    }
    return bad ? -1 : 0;
}

/* Besides the sums, check the bytes themselves once: the copy back works. */
static int inout_check(const inout_ctx *c) {
    uint8_t want = c->flipped ? 0xfe : 0x01;
    for (size_t i = 0; i < c->len; i++)
        if (c->buf[i] != want) {
            fprintf(stderr, "crossing: tk_invert(%zu): byte %zu is 0x%02x, not 0x%02x\n",
                    c->len, i, c->buf[i], want);
            return -1;
        }
    return 0;
}

/* ---- oversubscription ------------------------------------------------------------ */

/* Worker threads wait at a gate until all of them exist (or creation failed),
 * then run batches of tk_nop() calls in lockstep with main through two
 * barriers per batch; round 0 is the warm-up and is not timed. */
typedef struct oversub {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int open, abort;
    pthread_barrier_t start, done;
    int rounds;
    long calls;
    atomic_int bad;
} oversub;

static void *oversub_thread(void *arg) {
    oversub *o = arg;
    pthread_mutex_lock(&o->lock);
    while (!o->open)
        pthread_cond_wait(&o->cv, &o->lock);
    int abort_run = o->abort;
    pthread_mutex_unlock(&o->lock);
    if (abort_run)
        return NULL;
    for (int r = 0; r < o->rounds; r++) {
        pthread_barrier_wait(&o->start);
        if (nop_loop(NULL, o->calls) < 0)
            atomic_store(&o->bad, 1);
        pthread_barrier_wait(&o->done);
    }
    return NULL;
}

static void gate_open(oversub *o, int abort_run) {
    pthread_mutex_lock(&o->lock);
    o->open = 1;
    o->abort = abort_run;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->lock);
}

static double measure_oversub(int nthreads, long calls, int batches) {
    oversub o = {.lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
                 .rounds = batches + 1, .calls = calls};
    pthread_t *tids = calloc((size_t)nthreads, sizeof *tids);
    double v[MAX_BATCHES];
    double result = -1.0;
    int made = 0;

    atomic_init(&o.bad, 0);
    if (!tids) {
        fprintf(stderr, "crossing: out of memory\n");
        return -1.0;
    }
    if (pthread_barrier_init(&o.start, NULL, (unsigned)nthreads + 1) ||
        pthread_barrier_init(&o.done, NULL, (unsigned)nthreads + 1)) {
        fprintf(stderr, "crossing: pthread_barrier_init failed\n");
        free(tids);
        return -1.0;
    }
    for (; made < nthreads; made++) {
        int e = pthread_create(&tids[made], NULL, oversub_thread, &o);
        if (e) {
            fprintf(stderr, "crossing: pthread_create: %s\n", strerror(e));
            break;
        }
    }
    gate_open(&o, made < nthreads);
    if (made == nthreads) {
        for (int r = 0; r < o.rounds; r++) {
            double t0 = now_ns();
            pthread_barrier_wait(&o.start);
            pthread_barrier_wait(&o.done);
            double wall = now_ns() - t0;
            if (r > 0)
                v[r - 1] = wall * nthreads / ((double)calls * nthreads);
        }
        if (atomic_load(&o.bad))
            fprintf(stderr, "crossing: oversubscribed tk_nop returned a wrong result\n");
        else
            result = median(v, batches);
    }
    for (int i = 0; i < made; i++)
        pthread_join(tids[i], NULL);
    pthread_barrier_destroy(&o.start);
    pthread_barrier_destroy(&o.done);
    free(tids);
    return result;
}

/* ---- no core free ------------------------------------------------------------------ */

/* Burners spin on plain arithmetic until told to stop; they make no call. */
static atomic_int burn_stop;

static void *burner(void *arg) {
    (void)arg;
    volatile uint64_t x = 1;
    while (!atomic_load_explicit(&burn_stop, memory_order_relaxed))
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005ull + 1;
    return NULL;
}

static double measure_loaded(int nburn, long iters, int batches) {
    pthread_t tids[256];
    int made = 0;
    atomic_store(&burn_stop, 0);
    for (; made < nburn && made < 256; made++)
        if (pthread_create(&tids[made], NULL, burner, NULL)) {
            fprintf(stderr, "crossing: pthread_create failed\n");
            break;
        }
    double r = made == nburn ? measure(nop_loop, NULL, iters, batches, "loaded_crossing") : -1.0;
    atomic_store(&burn_stop, 1);
    for (int i = 0; i < made; i++)
        pthread_join(tids[i], NULL);
    return r;
}

/* ---- a new thread's first crossing ------------------------------------------------------- */

typedef struct first_ctx {
    double ns;
    int ok;
} first_ctx;

static void *first_thread(void *arg) {
    first_ctx *c = arg;
    double t0 = now_ns();
    c->ok = tk_nop() == NOP_VALUE;
    c->ns = now_ns() - t0;
    return NULL;
}

/* The median over `threads` threads, made one after the other (each ends
 * before the next starts, so each takes the channel the last one left). */
static double measure_first(int threads) {
    double v[MAX_BATCHES * 4];
    if (threads > MAX_BATCHES * 4)
        threads = MAX_BATCHES * 4;
    for (int i = 0; i < threads; i++) {
        first_ctx c = {0, 0};
        pthread_t th;
        if (pthread_create(&th, NULL, first_thread, &c)) {
            fprintf(stderr, "crossing: pthread_create failed\n");
            return -1.0;
        }
        pthread_join(th, NULL);
        if (!c.ok) {
            fprintf(stderr, "crossing: first_crossing: a call returned a wrong result\n");
            return -1.0;
        }
        v[i] = c.ns;
    }
    return median(v, threads);
}

/* ---- main ---------------------------------------------------------------------- */

static int set_plan(const char *plan) {
    char err[256] = "";
    int r = qtn_plan_apply(plan, err, sizeof err);
    if (r) {
        fprintf(stderr, "crossing: plan \"%s\": %s%s%s\n", plan, qtn_strerror(r),
                err[0] ? ": " : "", err);
        return -1;
    }
    return 0;
}

/* Fewer decimals for large values, enough for the ~1 ns ones. */
static void print_figure(const char *name, double v, const char *unit) {
    printf("%s %.*f %s\n", name, v < 100.0 ? 2 : 1, v, unit);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossing [--quick] [--help]\n"
            "Measures the cost of calls and crossings next to the machine's IPC floors\n"
            "and prints one `name median unit` line per figure, then ratio lines.\n"
            "  --quick  few iterations: a smoke test, not a measurement\n"
            "  --help   this text\n");
}

int main(int argc, char **argv) {
    const sizes *sz = &full_sizes;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            sz = &quick_sizes;
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "crossing: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    int r;
    if ((r = qtn_register(&tk_component)) || (r = qtn_register(&tk2_component))) {
        fprintf(stderr, "crossing: qtn_register: %s\n", qtn_strerror(r));
        return 1;
    }
    if ((r = qtn_init(NULL))) {
        fprintf(stderr, "crossing: qtn_init: %s\n", qtn_strerror(r));
        return 1;
    }
    /* Lines appear as they are measured, and nothing is left buffered when
     * the floor functions fork. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    int status = 1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nthreads = 2 * (int)(ncpu > 0 ? ncpu : 1);
    size_t len4k = 4096, len1m = (size_t)1 << 20;
    inout_ctx in4k = {malloc(len4k), len4k, 0}, in1m = {malloc(len1m), len1m, 0};
    double plain, direct, nullx, x4k, x1m, d1m, spin, futex, pipe, sock, over, loaded, first;

    if (!in4k.buf || !in1m.buf) {
        fprintf(stderr, "crossing: out of memory\n");
        goto out;
    }
    memset(in4k.buf, 0x01, len4k);
    memset(in1m.buf, 0x01, len1m);

    if ((plain = measure(plain_loop, NULL, sz->call_iters, sz->batches, "plain_call")) < 0)
        goto out;
    print_figure("plain_call_ns", plain, "ns");

    if (set_plan("tk=host") < 0 ||
        (direct = measure(nop_loop, NULL, sz->call_iters, sz->batches, "direct_stub")) < 0)
        goto out;
    print_figure("direct_stub_ns", direct, "ns");

    if (set_plan("tk=1") < 0 ||
        (nullx = measure(nop_loop, NULL, sz->cross_iters, sz->batches, "null_crossing")) < 0)
        goto out;
    print_figure("null_crossing_ns", nullx, "ns");

    if ((x4k = measure(invert_loop, &in4k, sz->inout4k_iters, sz->batches, "inout_4k")) < 0 ||
        inout_check(&in4k) < 0)
        goto out;
    print_figure("inout_4k_crossing_ns", x4k, "ns");

    if ((x1m = measure(invert_loop, &in1m, sz->inout1m_iters, sz->batches, "inout_1m")) < 0 ||
        inout_check(&in1m) < 0)
        goto out;
    print_figure("inout_1m_crossing_ns", x1m, "ns");

    if (set_plan("tk=host") < 0 ||
        (d1m = measure(invert_loop, &in1m, sz->inout1m_iters, sz->batches, "inout_1m_direct")) <
            0 ||
        inout_check(&in1m) < 0)
        goto out;
    print_figure("inout_1m_direct_ns", d1m, "ns");

    if ((spin = qb_spin_floor_ns(sz->spin_rounds)) < 0)
        goto out;
    print_figure("spin_floor_ns", spin, "ns");
    if ((futex = qb_futex_floor_ns(sz->futex_rounds)) < 0)
        goto out;
    print_figure("futex_floor_ns", futex, "ns");
    if ((pipe = qb_pipe_rtt_ns(sz->pipe_rounds)) < 0)
        goto out;
    print_figure("pipe_rtt_ns", pipe, "ns");
    if ((sock = qb_socketpair_rtt_ns(sz->sock_rounds)) < 0)
        goto out;
    print_figure("socketpair_rtt_ns", sock, "ns");

    if (set_plan("tk=1") < 0 ||
        (over = measure_oversub(nthreads, sz->oversub_calls, sz->batches)) < 0)
        goto out;
    print_figure("oversub_crossing_ns", over, "ns");
    if ((loaded = measure_loaded(nthreads, sz->loaded_iters, sz->batches)) < 0)
        goto out;
    print_figure("loaded_crossing_ns", loaded, "ns");
    if ((first = measure_first(sz->first_threads)) < 0)
        goto out;
    print_figure("first_crossing_ns", first, "ns");

    printf("\n");
    printf("direct_stub-plain_call %.2f ns (target < 1)\n", direct - plain);
    printf("null_crossing/spin_floor %.2f x (target <= 1.5)\n", nullx / spin);
    printf("pipe_rtt/null_crossing %.2f x (target >= 10)\n", pipe / nullx);
    printf("oversub_crossing/futex_floor %.2f x (target about 1 or below)\n", over / futex);
    printf("loaded_crossing/futex_floor %.2f x (target <= 1)\n", loaded / futex);
    status = 0;
out:
    free(in4k.buf);
    free(in1m.buf);
    qtn_shutdown();
    return status;
}
