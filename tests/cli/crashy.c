/* crashy.c - a program for `quarantine run` to supervise:
 *   crashy exit N            exits with status N
 *   crashy crash-until F K   crashes (SIGSEGV) until it has run K times (counted in F)
 *   crashy always-crash      crashes every time
 *   crashy wait              waits for a signal (SIGTERM ends it)
 *   crashy serve-crash       takes the listening socket `quarantine run --listen`
 *                            passed (fd 3, LISTEN_FDS, LISTEN_PID; status 3 when it
 *                            is not there), accepts one connection, and on its
 *                            first start (QTN_RUN_START) crashes holding it; on
 *                            later ones writes "served by start N" and exits 0
 *   crashy isolated-fault    crashes an isolated component, carries on, exits 0
 *   crashy faults N MS [K]   crashes an isolated component N times, MS ms apart,
 *                            then exits 0 (SIGTERM ends it earlier); K: how
 *                            (an FX_ kind, default FX_SEGV)
 *   crashy faults-wait N MS  the same N times, then waits for SIGTERM and exits 0 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fx.h"

/* under AddressSanitizer, let a crash be a crash (it would otherwise report
 * it and exit with a status) */
const char *__asan_default_options(void);
__attribute__((used)) const char *__asan_default_options(void) {
    return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0";
}

/* which build of crashy this is: crashy_b2 and crashy_b3 are other builds
 * of the same code (another build id), for crash buckets across builds */
#ifndef CRASHY_BUILD
#define CRASHY_BUILD 1
#endif
const volatile int crashy_build = CRASHY_BUILD;

static volatile sig_atomic_t stop;
static void on_term(int sig) {
    (void)sig;
    stop = 1;
}

static void segv(void) {
    volatile uintptr_t a = 16;
    *(volatile int *)a = 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || crashy_build < 1)
        return 2;
    if (!strcmp(argv[1], "exit") && argc == 3)
        return atoi(argv[2]);
    if (!strcmp(argv[1], "always-crash"))
        segv();
    if (!strcmp(argv[1], "wait")) {
        for (;;)
            pause();
    }
    if (!strcmp(argv[1], "crash-until") && argc == 4) {
        int n = 0;
        FILE *f = fopen(argv[2], "r");
        if (f) {
            if (fscanf(f, "%d", &n) != 1)
                n = 0;
            fclose(f);
        }
        f = fopen(argv[2], "w");
        if (!f)
            return 3;
        fprintf(f, "%d\n", n + 1);
        fclose(f);
        if (n + 1 < atoi(argv[3]))
            segv();
        return 0;
    }
    if (!strcmp(argv[1], "serve-crash")) {
        const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS"),
                   *nth = getenv("QTN_RUN_START");
        int on = 0;
        socklen_t ol = sizeof on;
        if (!pid || atoi(pid) != (int)getpid() || !fds || atoi(fds) != 1 || !nth ||
            getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) < 0 || !on)
            return 3;
        int c = accept(3, NULL, NULL);
        if (c < 0)
            return 4;
        if (atoi(nth) == 1)
            segv();
        char line[64];
        int n = snprintf(line, sizeof line, "served by start %s\n", nth);
        return write(c, line, (size_t)n) == n ? 0 : 5;
    }
    if (!strcmp(argv[1], "isolated-fault")) {
        qtn_register(&fx_component);
        qtn_register(&fy_component);
        qtn_config cfg = {.plan = "fx=1"};
        if (qtn_init(&cfg))
            return 4;
        int r = fx_crash(FX_SEGV); /* -1: the fault value; this process lives on */
        int ok = fx_ok(1), err = fx_last_err;
        qtn_shutdown(); /* writes the queued reports first */
        if (r == -1 && ok == 2)
            return 0;
        fprintf(stderr, "crashy: fx_crash returned %d (want -1), fx_ok(1) %d (want 2): %s\n", r,
                ok, qtn_strerror(err));
        return 5;
    }
    int wait_after = !strcmp(argv[1], "faults-wait") && argc == 4;
    if ((!strcmp(argv[1], "faults") && (argc == 4 || argc == 5)) || wait_after) {
        int kind = argc == 5 ? atoi(argv[4]) : FX_SEGV;
        qtn_register(&fx_component);
        qtn_config cfg = {.plan = "fx=1", .restart_max = 1000000};
        if (qtn_init(&cfg))
            return 4;
        int n = atoi(argv[2]);
        struct timespec pause_ = {0, atol(argv[3]) * 1000000L};
        for (int k = 0; k < n; k++) {
            if (fx_crash(kind) != -1)
                return 5;
            nanosleep(&pause_, NULL);
        }
        if (wait_after) {
            signal(SIGTERM, on_term);
            while (!stop) {
                struct timespec tick = {0, 10000000};
                nanosleep(&tick, NULL);
            }
        }
        qtn_shutdown();
        return 0;
    }
    return 2;
}
