/*
 * Inter-process round-trip floors: spin, futex, pipe, socketpair and fork.
 * See floors.h for the contract of each entry point.
 */
#include "floors.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QB_MAX_BATCHES 31
#define QB_MAX_WARMUP 2000

/* How many spins between liveness checks of the child while spinning. */
#define QB_SPIN_CHECK_MASK 0xffffu

/* How long the parent blocks in FUTEX_WAIT before checking on the child. */
#define QB_FUTEX_POLL_NS 100000000L

/* The futex word must be a plain 32-bit int in memory. */
_Static_assert(sizeof(atomic_uint) == sizeof(uint32_t),
               "atomic_uint must be usable as a futex word");

/* One round trip, performed by the parent. Returns 0, or -1 after printing
   why to stderr. */
typedef int (*qb_trip_fn)(void *ctx);

/* Body of a child; must end in _exit(). */
typedef void (*qb_child_fn)(void *ctx, long long trips);

struct qb_peer {
    const char *what;   /* name of the measurement, for error messages */
    pid_t pid;
    int reaped;         /* set once waitpid() has collected the child */
};

static inline void qb_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

static long long qb_warmup_trips(int rounds)
{
    long long w = rounds / 10;

    if (w < 1)
        w = 1;
    if (w > QB_MAX_WARMUP)
        w = QB_MAX_WARMUP;
    return w;
}

/* Parent and child must agree on this, so the child knows when to stop. */
static long long qb_total_trips(int rounds)
{
    return qb_warmup_trips(rounds) + rounds;
}

static double qb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int qb_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

static double qb_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), qb_cmp_double);
    if (n % 2)
        return v[n / 2];
    return (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* Warm up, then time `rounds` trips split into batches; returns the median
   of the per-batch ns per trip, or -1 if a trip failed. */
static double qb_time_trips(qb_trip_fn trip, void *ctx, int rounds)
{
    double samples[QB_MAX_BATCHES];
    int nbatch = rounds < QB_MAX_BATCHES ? rounds : QB_MAX_BATCHES;
    long long warmup = qb_warmup_trips(rounds);

    for (long long i = 0; i < warmup; i++)
        if (trip(ctx) < 0)
            return -1.0;

    for (int b = 0; b < nbatch; b++) {
        /* Spread the remainder so the batches add up to exactly `rounds`. */
        int n = rounds / nbatch + (b < rounds % nbatch);
        double t0 = qb_now_ns();

        for (int i = 0; i < n; i++)
            if (trip(ctx) < 0)
                return -1.0;
        samples[b] = (qb_now_ns() - t0) / n;
    }
    return qb_median(samples, nbatch);
}

static int qb_check_rounds(const char *what, int rounds)
{
    if (rounds > 0)
        return 0;
    fprintf(stderr, "%s: rounds must be positive (got %d)\n", what, rounds);
    return -1;
}

/* Fork a child that runs `body` for `trips` round trips. The child dies with
   the parent, so an error path in the parent can never leave it behind. */
static int qb_spawn(struct qb_peer *peer, qb_child_fn body, void *ctx,
                    long long trips)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid < 0) {
        fprintf(stderr, "%s: fork: %s\n", peer->what, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
            _exit(127);
        /* The parent may have died before prctl took effect. */
        if (getppid() != parent)
            _exit(127);
        body(ctx, trips);
        _exit(0);
    }
    peer->pid = pid;
    peer->reaped = 0;
    return 0;
}

static int qb_waitpid(pid_t pid, int *status, int flags)
{
    pid_t r;

    do
        r = waitpid(pid, status, flags);
    while (r < 0 && errno == EINTR);
    return (int)r;
}

/* Non-blocking check used while the parent waits on the child; returns 1 and
   reaps it if the child has already terminated. */
static int qb_child_gone(struct qb_peer *peer)
{
    int status;

    if (peer->reaped)
        return 1;
    if (qb_waitpid(peer->pid, &status, WNOHANG) == 0)
        return 0;
    peer->reaped = 1;
    fprintf(stderr, "%s: child terminated early\n", peer->what);
    return 1;
}

/* Collect the child. With `force` it is killed first (error path); otherwise
   it is expected to have finished cleanly. Returns 0 on a clean exit. */
static int qb_reap(struct qb_peer *peer, int force)
{
    int status = 0;

    if (peer->reaped)
        return force ? 0 : -1;
    if (force)
        kill(peer->pid, SIGKILL);
    if (qb_waitpid(peer->pid, &status, 0) < 0) {
        fprintf(stderr, "%s: waitpid: %s\n", peer->what, strerror(errno));
        return -1;
    }
    peer->reaped = 1;
    if (force)
        return 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: child failed (status 0x%x)\n", peer->what,
                (unsigned)status);
        return -1;
    }
    return 0;
}

/* Finish a measurement: reap the child (killing it if the run failed) and
   turn any failure into the negative error return. */
static double qb_finish(struct qb_peer *peer, double result)
{
    if (qb_reap(peer, result < 0) < 0)
        return -1.0;
    return result;
}

static atomic_uint *qb_map_counter(const char *what)
{
    void *p = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        fprintf(stderr, "%s: mmap: %s\n", what, strerror(errno));
        return NULL;
    }
    atomic_init((atomic_uint *)p, 0);
    return p;
}

static void qb_unmap_counter(atomic_uint *c)
{
    munmap(c, (size_t)sysconf(_SC_PAGESIZE));
}

/* ---- spin ---------------------------------------------------------------- */

struct qb_shm_ctx {
    struct qb_peer peer;
    atomic_uint *counter;
    unsigned long spins;    /* parent-side, paces liveness checks */
};

/* The counter is odd while a ping is outstanding and even once answered;
   unsigned wrap-around keeps the equality tests valid for any round count. */
static void qb_spin_child(void *arg, long long trips)
{
    struct qb_shm_ctx *ctx = arg;
    unsigned want = 1;

    for (long long i = 0; i < trips; i++, want += 2) {
        while (atomic_load_explicit(ctx->counter, memory_order_acquire) != want)
            qb_cpu_relax();
        atomic_fetch_add_explicit(ctx->counter, 1, memory_order_acq_rel);
    }
}

static int qb_spin_trip(void *arg)
{
    struct qb_shm_ctx *ctx = arg;
    unsigned want =
        atomic_fetch_add_explicit(ctx->counter, 1, memory_order_acq_rel) + 2;

    while (atomic_load_explicit(ctx->counter, memory_order_acquire) != want) {
        qb_cpu_relax();
        /* A dead child would otherwise leave us spinning forever. */
        if ((++ctx->spins & QB_SPIN_CHECK_MASK) == 0 &&
            qb_child_gone(&ctx->peer))
            return -1;
    }
    return 0;
}

double qb_spin_floor_ns(int rounds)
{
    struct qb_shm_ctx ctx = { .peer = { .what = "qb_spin_floor_ns" } };
    double r;

    if (qb_check_rounds(ctx.peer.what, rounds) < 0)
        return -1.0;
    ctx.counter = qb_map_counter(ctx.peer.what);
    if (!ctx.counter)
        return -1.0;
    if (qb_spawn(&ctx.peer, qb_spin_child, &ctx, qb_total_trips(rounds)) < 0) {
        qb_unmap_counter(ctx.counter);
        return -1.0;
    }
    r = qb_finish(&ctx.peer, qb_time_trips(qb_spin_trip, &ctx, rounds));
    qb_unmap_counter(ctx.counter);
    return r;
}

/* ---- futex --------------------------------------------------------------- */

/* Non-private ops: the word lives in a MAP_SHARED page seen by two
   processes, so the kernel must key the wait queue on the physical page. */
static long qb_futex_wait(atomic_uint *word, unsigned val,
                          const struct timespec *timeout)
{
    return syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, val, timeout,
                   NULL, 0);
}

static long qb_futex_wake(atomic_uint *word)
{
    return syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void qb_futex_child(void *arg, long long trips)
{
    struct qb_shm_ctx *ctx = arg;
    unsigned want = 1;

    for (long long i = 0; i < trips; i++, want += 2) {
        unsigned cur;

        while ((cur = atomic_load_explicit(ctx->counter,
                                           memory_order_acquire)) != want) {
            if (qb_futex_wait(ctx->counter, cur, NULL) < 0 &&
                errno != EAGAIN && errno != EINTR)
                _exit(1);
        }
        atomic_fetch_add_explicit(ctx->counter, 1, memory_order_acq_rel);
        if (qb_futex_wake(ctx->counter) < 0)
            _exit(1);
    }
}

static int qb_futex_trip(void *arg)
{
    struct qb_shm_ctx *ctx = arg;
    const struct timespec poll = { 0, QB_FUTEX_POLL_NS };
    unsigned want =
        atomic_fetch_add_explicit(ctx->counter, 1, memory_order_acq_rel) + 2;
    unsigned cur;

    if (qb_futex_wake(ctx->counter) < 0) {
        fprintf(stderr, "%s: FUTEX_WAKE: %s\n", ctx->peer.what,
                strerror(errno));
        return -1;
    }
    while ((cur = atomic_load_explicit(ctx->counter,
                                       memory_order_acquire)) != want) {
        if (qb_futex_wait(ctx->counter, cur, &poll) == 0)
            continue;
        if (errno == EAGAIN || errno == EINTR)
            continue;
        if (errno != ETIMEDOUT) {
            fprintf(stderr, "%s: FUTEX_WAIT: %s\n", ctx->peer.what,
                    strerror(errno));
            return -1;
        }
        /* Timed out: only a dead child can keep us waiting this long. */
        if (qb_child_gone(&ctx->peer))
            return -1;
    }
    return 0;
}

double qb_futex_floor_ns(int rounds)
{
    struct qb_shm_ctx ctx = { .peer = { .what = "qb_futex_floor_ns" } };
    double r;

    if (qb_check_rounds(ctx.peer.what, rounds) < 0)
        return -1.0;
    ctx.counter = qb_map_counter(ctx.peer.what);
    if (!ctx.counter)
        return -1.0;
    if (qb_spawn(&ctx.peer, qb_futex_child, &ctx,
                 qb_total_trips(rounds)) < 0) {
        qb_unmap_counter(ctx.counter);
        return -1.0;
    }
    r = qb_finish(&ctx.peer, qb_time_trips(qb_futex_trip, &ctx, rounds));
    qb_unmap_counter(ctx.counter);
    return r;
}

/* ---- pipe / socketpair --------------------------------------------------- */

struct qb_fd_ctx {
    struct qb_peer peer;
    int is_sock;        /* use send(MSG_NOSIGNAL) instead of write() */
    int peer_gone;      /* a SIGPIPE may be pending and must be consumed */
    int p_rd, p_wr;     /* parent's ends */
    int c_rd, c_wr;     /* child's ends */
};

/* Returns 1 on success, 0 if the peer is gone, -1 on error (errno set). */
static int qb_put_byte(int fd, int is_sock)
{
    const char b = 'x';

    for (;;) {
        ssize_t n = is_sock ? send(fd, &b, 1, MSG_NOSIGNAL) : write(fd, &b, 1);

        if (n == 1)
            return 1;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EPIPE)
            return 0;
        return -1;
    }
}

/* Returns 1 on success, 0 on end of file, -1 on error (errno set). */
static int qb_get_byte(int fd)
{
    char b;

    for (;;) {
        ssize_t n = read(fd, &b, 1);

        if (n == 1)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

static void qb_fd_child(void *arg, long long trips)
{
    struct qb_fd_ctx *ctx = arg;

    close(ctx->p_rd);
    close(ctx->p_wr);
    for (long long i = 0; i < trips; i++) {
        if (qb_get_byte(ctx->c_rd) != 1)
            _exit(1);
        if (qb_put_byte(ctx->c_wr, ctx->is_sock) != 1)
            _exit(1);
    }
}

static int qb_fd_trip(void *arg)
{
    struct qb_fd_ctx *ctx = arg;
    int r = qb_put_byte(ctx->p_wr, ctx->is_sock);

    if (r == 1)
        r = qb_get_byte(ctx->p_rd);
    if (r == 1)
        return 0;
    if (r == 0) {
        ctx->peer_gone = 1;
        fprintf(stderr, "%s: child closed its end\n", ctx->peer.what);
    } else {
        fprintf(stderr, "%s: %s\n", ctx->peer.what, strerror(errno));
    }
    return -1;
}

static void qb_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Shared driver once the four ends are set up; closes all of them. */
static double qb_fd_run(struct qb_fd_ctx *ctx, int rounds)
{
    double r = -1.0;

    if (qb_spawn(&ctx->peer, qb_fd_child, ctx, qb_total_trips(rounds)) == 0) {
        /* Drop the child's ends so its death shows up as EOF/EPIPE here. */
        qb_close_fd(&ctx->c_rd);
        qb_close_fd(&ctx->c_wr);
        r = qb_finish(&ctx->peer, qb_time_trips(qb_fd_trip, ctx, rounds));
    }
    qb_close_fd(&ctx->c_rd);
    qb_close_fd(&ctx->c_wr);
    qb_close_fd(&ctx->p_rd);
    qb_close_fd(&ctx->p_wr);
    return r;
}

double qb_pipe_rtt_ns(int rounds)
{
    struct qb_fd_ctx ctx = { .peer = { .what = "qb_pipe_rtt_ns" },
                             .p_rd = -1, .p_wr = -1, .c_rd = -1, .c_wr = -1 };
    int to_child[2], to_parent[2];
    sigset_t pipe_set, old_set;
    double r;

    if (qb_check_rounds(ctx.peer.what, rounds) < 0)
        return -1.0;
    if (pipe2(to_child, O_CLOEXEC) < 0) {
        fprintf(stderr, "%s: pipe2: %s\n", ctx.peer.what, strerror(errno));
        return -1.0;
    }
    if (pipe2(to_parent, O_CLOEXEC) < 0) {
        fprintf(stderr, "%s: pipe2: %s\n", ctx.peer.what, strerror(errno));
        close(to_child[0]);
        close(to_child[1]);
        return -1.0;
    }
    ctx.c_rd = to_child[0];
    ctx.p_wr = to_child[1];
    ctx.p_rd = to_parent[0];
    ctx.c_wr = to_parent[1];

    /* A write to a pipe whose reader died raises SIGPIPE, which would kill
       the caller; block it so it surfaces as EPIPE instead. */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

    r = qb_fd_run(&ctx, rounds);

    if (ctx.peer_gone && !sigismember(&old_set, SIGPIPE)) {
        sigset_t pending;
        const struct timespec zero = { 0, 0 };

        /* Consume the SIGPIPE we caused before unblocking it. */
        if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
            sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    return r;
}

double qb_socketpair_rtt_ns(int rounds)
{
    struct qb_fd_ctx ctx = { .peer = { .what = "qb_socketpair_rtt_ns" },
                             .is_sock = 1,
                             .p_rd = -1, .p_wr = -1, .c_rd = -1, .c_wr = -1 };
    int sv[2];

    if (qb_check_rounds(ctx.peer.what, rounds) < 0)
        return -1.0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        fprintf(stderr, "%s: socketpair: %s\n", ctx.peer.what,
                strerror(errno));
        return -1.0;
    }
    /* One bidirectional end per side; dup so each fd is closed once. */
    ctx.p_rd = sv[0];
    ctx.c_rd = sv[1];
    ctx.p_wr = fcntl(sv[0], F_DUPFD_CLOEXEC, 0);
    ctx.c_wr = fcntl(sv[1], F_DUPFD_CLOEXEC, 0);
    if (ctx.p_wr < 0 || ctx.c_wr < 0) {
        fprintf(stderr, "%s: dup: %s\n", ctx.peer.what, strerror(errno));
        qb_close_fd(&ctx.p_rd);
        qb_close_fd(&ctx.p_wr);
        qb_close_fd(&ctx.c_rd);
        qb_close_fd(&ctx.c_wr);
        return -1.0;
    }
    return qb_fd_run(&ctx, rounds);
}

/* ---- fork ---------------------------------------------------------------- */

static int qb_fork_trip(void *arg)
{
    const char *what = arg;
    int status;
    pid_t pid = fork();

    if (pid < 0) {
        fprintf(stderr, "%s: fork: %s\n", what, strerror(errno));
        return -1;
    }
    /* No PDEATHSIG here: the child exits at once, and the extra syscall
       would be charged to the floor being measured. */
    if (pid == 0)
        _exit(0);
    if (qb_waitpid(pid, &status, 0) < 0) {
        fprintf(stderr, "%s: waitpid: %s\n", what, strerror(errno));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: child failed (status 0x%x)\n", what,
                (unsigned)status);
        return -1;
    }
    return 0;
}

double qb_fork_floor_ms(int rounds)
{
    char what[] = "qb_fork_floor_ms";
    double ns;

    if (qb_check_rounds(what, rounds) < 0)
        return -1.0;
    ns = qb_time_trips(qb_fork_trip, what, rounds);
    return ns < 0 ? -1.0 : ns / 1e6;
}
