/* test_spares.c - the spares a domain keeps prepared for its next restarts
 * (qtn_config.spares): a burst of faults back to back restarts on them, one
 * each, while they last, then on processes made for it; the pool fills
 * again and leaks nothing; with none, every restart makes its process and
 * still works; a setting out of range is refused, naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fx.h"
#include "util.h"

static qtn_domain_info info(int d) {
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(d, &di), 0);
    return di;
}

static void start(int spares) {
    qtn_config cfg = {.channels = 16, .restart_max = 1000000, .plan = "fx=1", .spares = spares};
    assert_int_equal(qtn_init(&cfg), 0);
    assert_int_equal(fx_ok(1), 2);
}

/* n faults back to back, each followed by a call that must be served;
 * then their n reports, in order: how many restarts were onto a spare,
 * and how many of the first `spares` were. */
static void burst(int n, int spares, int *warm, int *warm_first) {
    int pids[64];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        pids[i] = info(1).pid;
        assert_int_equal(fx_crash(FX_SEGV), -1);
        assert_int_equal(fx_ok(i), i + 1);
    }
    *warm = *warm_first = 0;
    for (int i = 0; i < n; i++) {
        qtn_report r;
        assert_int_equal(qtn_report_next(&r, 5000), 1);
        assert_int_equal(r.pid, pids[i]); /* one report per fault, in order */
        assert_int_equal(r.parked, 0);
        *warm += r.warm;
        if (i < spares)
            *warm_first += r.warm;
    }
    for (int i = 1; i < n; i++)
        assert_int_not_equal(pids[i], pids[i - 1]); /* each fault, a new process */
}

static void test_burst_restarts_on_the_spares(void **state) {
    (void)state;
    start(3);
    tu_settle(1);
    qtn_domain_info di = info(1);
    assert_int_equal(di.spares_kept, 3);
    assert_int_equal(di.spares_ready, 3);
    assert_true(di.spare_ready);
    int warm, first;
    burst(1, 1, &warm, &first); /* the runtime's restart and report threads start */
    assert_int_equal(first, 1);
    tu_settle(1);
    int fds = tu_count_dir("/proc/self/fd"), threads = tu_count_dir("/proc/self/task");
    burst(3, 3, &warm, &first);
    assert_int_equal(first, 3); /* three faults, three spares: all warm */
    /* more faults than spares: the rest start processes made for them */
    tu_settle(1);
    burst(12, 3, &warm, &first);
    assert_int_equal(first, 3);
    assert_true(warm >= 3 && warm <= 12);
    /* the pool is whole again, and nothing was left behind */
    tu_settle(1);
    di = info(1);
    assert_int_equal(di.spares_ready, 3);
    assert_int_equal(di.restarts, 16);
    tu_wait_count(fds, threads);
}

static void test_no_spares(void **state) {
    (void)state;
    start(-1);
    qtn_domain_info di = info(1);
    assert_int_equal(di.spares_kept, 0);
    usleep(50 * 1000); /* time a spare would have had to be made */
    di = info(1);
    assert_int_equal(di.spares_ready, 0);
    assert_false(di.spare_ready);
    int warm, first;
    burst(4, 0, &warm, &first);
    assert_int_equal(warm, 0); /* every restart made its process */
    assert_int_equal(info(1).spares_ready, 0);
}

static void test_setting_out_of_range(void **state) {
    (void)state;
    qtn_config cfg = {.spares = 7};
    assert_int_equal(qtn_init(&cfg), QTN_ERANGE);
    /* the environment's is ignored with a warning: the default stays */
    setenv("QTN_SPARES", "9", 1);
    start(0);
    assert_int_equal(info(1).spares_kept, 2);
    qtn_shutdown();
    setenv("QTN_SPARES", "0", 1);
    start(0);
    assert_int_equal(info(1).spares_kept, 0);
    qtn_shutdown();
    unsetenv("QTN_SPARES");
}

static int stop(void **state) {
    (void)state;
    qtn_shutdown(); /* whatever the test left running */
    unsetenv("QTN_SPARES");
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1)
        cmocka_set_test_filter(argv[1]); /* one test by name */
    setenv("QTN_QUIET_FAULTS", "1", 1);
    unsetenv("QTN_SPARES");
    assert_int_equal(qtn_register(&fx_component), 0);
    assert_int_equal(qtn_register(&fy_component), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_burst_restarts_on_the_spares, stop),
        cmocka_unit_test_teardown(test_no_spares, stop),
        cmocka_unit_test_teardown(test_setting_out_of_range, stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
