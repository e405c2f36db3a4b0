/* test_hostdeath.c - when the host goes, however it goes (SIGKILL, exit
 * without shutdown, shutdown), its zygote, spare and domain processes go
 * with it: no orphans. This process is made a subreaper, so every orphan
 * would be reparented to it and show up in waitpid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "fx.h"

enum { HOW_KILL, HOW_EXIT, HOW_SHUTDOWN };

static void host(int how, int ready) {
    qtn_register(&fx_component);
    qtn_register(&fy_component);
    qtn_config cfg = {.plan = "fx=1 fy=2"};
    if (qtn_init(&cfg) || fx_ok(1) != 2 || fy_wait(0) != 0)
        _exit(1);
    if (write(ready, "r", 1) != 1)
        _exit(1);
    if (how == HOW_EXIT)
        exit(0);
    if (how == HOW_SHUTDOWN) {
        qtn_shutdown();
        exit(0);
    }
    for (;;)
        pause();
}

/* Reaps every descendant; fails if any is still alive after 10 s. */
static int reap_all(void) {
    int n = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pid_t p = waitpid(-1, NULL, WNOHANG);
        if (p > 0) {
            n++;
            continue;
        }
        if (p < 0 && errno == ECHILD)
            return n;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10)
            fail_msg("processes of the dead host are still alive");
        usleep(1000);
    }
}

static void run(int how) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(p[0]);
        host(how, p[1]);
    }
    close(p[1]);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    if (how == HOW_KILL)
        kill(child, SIGKILL);
    /* the host, its zygote, the zygote's spare and two domains */
    assert_true(reap_all() >= (how == HOW_SHUTDOWN ? 1 : 4));
}

static void test_host_sigkilled(void **state) {
    (void)state;
    run(HOW_KILL);
}

static void test_host_exits_without_shutdown(void **state) {
    (void)state;
    run(HOW_EXIT);
}

static void test_host_shuts_down(void **state) {
    (void)state;
    run(HOW_SHUTDOWN);
}

int main(void) {
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_sigkilled),
        cmocka_unit_test(test_host_exits_without_shutdown),
        cmocka_unit_test(test_host_shuts_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
