/* restart.c - what a fault costs, measured side by side in one run.
 *
 *   restart_ms       an isolated domain crashes (SIGSEGV) during a call: time
 *                    from that call to the next call served by the new
 *                    domain process (median of faults spaced 20 ms apart)
 *   restart_burst_ms the same, for faults in bursts of 10 back to back (the
 *                    median; each burst starts 20 ms after the last)
 *   restart_max_ms   the worst of all of them (1,000 faults: 100 spaced, 90
 *                    bursts)
 *   recovery_ms      the runtime's own figure: death noticed -> new process
 *                    serving (median of the fault reports)
 *   host_restart_ms  the classic alternative: a trivial server process is
 *                    killed and re-exec'd, until it answers again
 *   fork_floor_ms    fork() + _exit + wait on this machine
 *   spares           the processes the domain keeps prepared ($QTN_SPARES)
 *
 * Spaced faults give the warm spares time to get ready; in a burst, once
 * the spares are used, the next fault may come before another is.
 * Usage: restart [--quick] */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "floors.h"
#include "fx.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The trivial server: says it is up, then answers pings until killed. */
static int trivial_server(int fd) {
    char c = 'u';
    if (write(fd, &c, 1) != 1)
        return 1;
    while (read(fd, &c, 1) == 1)
        if (write(fd, &c, 1) != 1)
            return 1;
    return 0;
}

/* Starts the trivial server as a new program; returns its pid and the fd. */
static pid_t start_server(const char *self, int *fd) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -1;
    pid_t p = fork();
    if (p == 0) {
        close(sv[0]);
        char arg[16];
        snprintf(arg, sizeof arg, "%d", sv[1]);
        execl(self, self, "--trivial-server", arg, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    *fd = sv[0];
    return p;
}

static double host_restart_ms(const char *self, int rounds) {
    double *v = malloc(sizeof(double) * (size_t)rounds);
    int fd;
    pid_t p = start_server(self, &fd);
    char c;
    if (p < 0 || !v || read(fd, &c, 1) != 1)
        return -1;
    for (int i = 0; i < rounds; i++) {
        double t0 = now_ms();
        kill(p, SIGKILL);
        waitpid(p, NULL, 0);
        close(fd);
        p = start_server(self, &fd);
        if (p < 0 || read(fd, &c, 1) != 1 || write(fd, "p", 1) != 1 || read(fd, &c, 1) != 1)
            return -1;
        v[i] = now_ms() - t0;
    }
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    close(fd);
    double m = median(v, rounds);
    free(v);
    return m;
}

/* Says how a fault, or the call after it, went wrong, with the runtime's
 * errors and the reports made since. Returns 1. */
static int went_wrong(const char *what, int n, int j, int c, int ce, int o, int want, double ms) {
    int oe = qtn_last_error();
    fprintf(stderr,
            "restart: %s %d, fault %d: the fault returned %d (-1 expected: %s), the next call "
            "%d (%d expected: %s) after %.1f ms\n",
            what, n, j, c, qtn_strerror(ce), o, want, qtn_strerror(oe), ms);
    qtn_report r;
    char line[1024];
    while (qtn_report_next(&r, 2000) == 1) {
        qtn_report_format(&r, line, sizeof line);
        fprintf(stderr, "restart: report: %s\n", line);
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--trivial-server") == 0)
        return trivial_server(atoi(argv[2]));
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
        return strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    int rounds = quick ? 10 : 100;
    /* faults are what this measures: say them once, not on every line */
    setenv("QTN_QUIET_FAULTS", "1", 1);
    if (qtn_register(&fx_component) || qtn_register(&fy_component))
        return 1;
    qtn_config cfg = {.restart_max = 1000000, .plan = "fx=1"};
    int r = qtn_init(&cfg);
    if (r) {
        fprintf(stderr, "restart: qtn_init: %s\n", qtn_strerror(r));
        return 1;
    }
    if (fx_ok(1) != 2)
        return 1;
    double *rs = malloc(sizeof(double) * (size_t)rounds), *rc = malloc(sizeof(double) * (size_t)rounds);
    double worst = 0;
    for (int i = 0; i < rounds; i++) {
        struct timespec gap = {0, 20000000};
        nanosleep(&gap, NULL);
        double t0 = now_ms();
        int c = fx_crash(FX_SEGV), ce = qtn_last_error(), o = c == -1 ? fx_ok(i) : 0;
        if (c != -1 || o != i + 1)
            return went_wrong("round", i, 0, c, ce, o, i + 1, now_ms() - t0);
        rs[i] = now_ms() - t0;
        if (rs[i] > worst)
            worst = rs[i];
        qtn_report rep;
        if (qtn_report_next(&rep, 5000) != 1) {
            fprintf(stderr, "restart: round %d: no report\n", i);
            return 1;
        }
        rc[i] = rep.recovery_ns / 1e6;
    }
    double restart = median(rs, rounds), recovery = median(rc, rounds);
    int bursts = quick ? 3 : 90, nb = 0;
    double *rb = malloc(sizeof(double) * (size_t)bursts * 10);
    for (int b = 0; b < bursts; b++) {
        struct timespec gap = {0, 20000000};
        nanosleep(&gap, NULL);
        for (int j = 0; j < 10; j++) {
            double t0 = now_ms();
            int c = fx_crash(FX_SEGV), ce = qtn_last_error(), o = c == -1 ? fx_ok(j) : 0;
            if (c != -1 || o != j + 1)
                return went_wrong("burst", b, j, c, ce, o, j + 1, now_ms() - t0);
            rb[nb] = now_ms() - t0;
            if (rb[nb] > worst)
                worst = rb[nb];
            nb++;
        }
        qtn_report rep;
        for (int j = 0; j < 10; j++)
            if (qtn_report_next(&rep, 5000) != 1) {
                fprintf(stderr, "restart: burst %d: %d reports of 10\n", b, j);
                return 1;
            }
    }
    double burst = median(rb, nb);
    qtn_domain_info di;
    int spares = qtn_domain_info_get(1, &di) == 0 ? di.spares_kept : -1;
    qtn_shutdown();
    double host = host_restart_ms(argv[0], quick ? 10 : 50);
    double fork_floor = qb_fork_floor_ms(quick ? 20 : 200);
    printf("restart_ms %.3f ms\n", restart);
    printf("restart_burst_ms %.3f ms\n", burst);
    printf("restart_max_ms %.3f ms\n", worst);
    printf("recovery_ms %.3f ms\n", recovery);
    printf("host_restart_ms %.3f ms\n", host);
    printf("fork_floor_ms %.3f ms\n", fork_floor);
    printf("spares %d processes\n", spares);
    printf("\n");
    printf("restart/fork_floor %.2f x (target < 1)\n", restart / fork_floor);
    printf("host_restart/restart %.1f x\n", host / restart);
    free(rs);
    free(rc);
    free(rb);
    return host < 0 || fork_floor < 0;
}
