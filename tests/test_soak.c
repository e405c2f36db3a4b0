/* test_soak.c - crash/restart cycles back to back ($QTN_SOAK_CYCLES, 10,000
 * by default): every cycle gives the fault value, one report and a working
 * next call; at the end no file descriptor, thread or memory has leaked and
 * no report was dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>

#include "fx.h"
#include "util.h"

static void test_crash_restart_cycles(void **state) {
    (void)state;
    const char *s = getenv("QTN_SOAK_CYCLES");
    long cycles = s ? strtol(s, NULL, 10) : 10000;
    static const int kinds[] = {FX_SEGV, FX_ABRT, FX_EXIT, FX_ILL};
    qtn_report r;
    /* warm up before measuring */
    for (int i = 0; i < 20; i++) {
        fx_crash(FX_SEGV);
        assert_int_equal(qtn_report_next(&r, 10000), 1);
    }
    tu_settle(1);
    int fds = tu_count_dir("/proc/self/fd"), threads = tu_count_dir("/proc/self/task");
    long rss = tu_rss_kib();
    uint32_t inc0;
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(1, &di), 0);
    inc0 = di.incarnation;
    for (long i = 0; i < cycles; i++) {
        int k = kinds[i % 4];
        if (fx_crash(k) != -1)
            fail_msg("cycle %ld: the fault value did not come back", i);
        if (qtn_report_next(&r, 10000) != 1)
            fail_msg("cycle %ld: no report", i);
        if (r.incarnation != inc0 + (uint32_t)i || strcmp(r.entry, "fx_crash"))
            fail_msg("cycle %ld: report of incarnation %u for %s", i, r.incarnation, r.entry);
        if (fx_ok((int32_t)i) != (int)i + 1)
            fail_msg("cycle %ld: the next call failed: %s", i, qtn_strerror(fx_last_err));
    }
    assert_int_equal(qtn_report_next(&r, 0), 0);
    assert_int_equal(qtn_reports_dropped(), 0);
    assert_int_equal(qtn_domain_info_get(1, &di), 0);
    assert_int_equal(di.incarnation, inc0 + (uint32_t)cycles);
    printf("%ld cycles, recovery mean %.2f ms, max %.2f ms\n", cycles,
           di.recovery_ns_total / 1e6 / (double)di.restarts, di.recovery_ns_max / 1e6);
    tu_settle(1);
    assert_int_equal(tu_count_dir("/proc/self/fd"), fds);
    assert_int_equal(tu_count_dir("/proc/self/task"), threads);
    long grown = tu_rss_kib() - rss;
    if (!UNDER_ASAN && grown > 32 * 1024)
        fail_msg("resident memory grew by %ld KiB over %ld cycles", grown, cycles);
}

int main(void) {
    assert_int_equal(qtn_register(&fx_component), 0);
    assert_int_equal(qtn_register(&fy_component), 0);
    qtn_config cfg = {.restart_max = 1000000, .plan = "fx=1"};
    assert_int_equal(qtn_init(&cfg), 0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_crash_restart_cycles)};
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    qtn_shutdown();
    return r;
}
