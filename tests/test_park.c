/* test_park.c - restart intensity: past restart_max restarts within the
 * window a domain is parked (calls fail fast, one report says so) instead
 * of restarting in a loop; applying a plan that names it starts it again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fx.h"

static void test_parks_then_plan_restarts(void **state) {
    (void)state;
    qtn_report r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx_crash(FX_SEGV), -1);
        assert_int_equal(qtn_report_next(&r, 10000), 1);
        assert_int_equal(r.parked, 0);
        assert_int_equal(fx_ok(i), i + 1); /* restarted */
    }
    assert_int_equal(fx_crash(FX_SEGV), -1);
    assert_int_equal(qtn_report_next(&r, 10000), 1);
    assert_int_equal(r.parked, 1);
    assert_int_equal(r.recovery_ns, 0);
    assert_non_null(strstr(r.reason, "restarted too often: parked"));
    assert_int_equal(qtn_report_next(&r, 0), 0);
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(1, &di), 0);
    assert_int_equal(di.parked, 1);
    assert_int_equal(di.pid, 0);
    /* parked: the fault value at once, and no new process */
    assert_int_equal(fx_ok(1), -1);
    assert_int_equal(fx_last_err, QTN_EPARKED);
    assert_int_equal(qtn_report_next(&r, 100), 0);
    /* the bystander domain is unaffected */
    assert_int_equal(fy_wait(1), 1);
    char err[128];
    assert_int_equal(qtn_plan_apply("fx=1", err, sizeof err), 0);
    assert_int_equal(fx_ok(1), 2);
    assert_int_equal(fx_init_runs(), 1);
    assert_int_equal(qtn_domain_info_get(1, &di), 0);
    assert_int_equal(di.parked, 0);
}

int main(void) {
    assert_int_equal(qtn_register(&fx_component), 0);
    assert_int_equal(qtn_register(&fy_component), 0);
    qtn_config cfg = {.restart_max = 3, .restart_window_ms = 60000, .plan = "fx=1 fy=2"};
    assert_int_equal(qtn_init(&cfg), 0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parks_then_plan_restarts)};
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    qtn_shutdown();
    return r;
}
