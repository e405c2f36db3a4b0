/* test_park.c - parking is a cost decision: a component that faults now
 * and then keeps its domain (a restart costs about a millisecond); one whose
 * restarts eat more than their share of the time (QTN_RESTART_SHARE, 10 %
 * of the restart window by default, once past restart_max restarts in it)
 * is parked, and so is one that cannot start at all. While parked, calls
 * fail at once and are counted (parked_calls in the statistics, with
 * parked per component's domain); the monitor starts it again after 1 s,
 * 2 s, 4 s ... and applying a plan that names it starts it at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "fx.h"
#include "internal.h"
#include "statsfile.h"
#include "util.h"

static double secs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What fx's init hook does in new domain processes from now on. */
static void fx_init_does(int ms, int crash) {
    FILE *f = fopen(fx_init_file, "w");
    assert_non_null(f);
    fprintf(f, "%d %d\n", ms, crash);
    fclose(f);
}

static qtn_domain_info info(int d) {
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(d, &di), 0);
    return di;
}

/* fx's "parked" and "parked_calls" in a statistics record. */
static void fx_stats(int *parked, long long *parked_calls) {
    size_t cap = 1 << 18;
    char *buf = malloc(cap);
    assert_non_null(buf);
    assert_true(qtn__sf_json(qtn__sf_area(), QTN__SF_SIZE, 1, buf, cap) > 0);
    const char *c = strstr(buf, "{\"name\":\"fx\"");
    assert_non_null(c);
    const char *p = strstr(c, "\"parked\":"), *q = strstr(c, "\"parked_calls\":");
    assert_true(p && q && q < strchr(c, '}'));
    *parked = atoi(p + 9);
    *parked_calls = atoll(q + 15);
    free(buf);
}

/* Waits for domain 1 to be parked (1) or not (0); seconds it took. */
static double until_parked(int want, double limit) {
    double t0 = secs();
    while (info(1).parked != want) {
        if (secs() - t0 > limit)
            fail_msg("domain 1 still %sparked after %.1f s", want ? "not " : "", limit);
        usleep(2000);
    }
    return secs() - t0;
}

/* How long domain 1 waits, parked, before it is tried again (whole s). */
static int backoff_s(void) {
    return (int)(__atomic_load_n(&qtn__doms[1].backoff_ns, __ATOMIC_RELAXED) / 1000000000u);
}

/* The next report, which must be of fx, parked or not as said. */
static void expect_report(int parked, const char *reason) {
    qtn_report r;
    assert_int_equal(qtn_report_next(&r, 10000), 1);
    assert_string_equal(r.component, "fx");
    if (r.parked != parked)
        fail_msg("report %llu: parked %d, want %d: %s", (unsigned long long)r.seq, r.parked,
                 parked, r.reason);
    if (reason && !strstr(r.reason, reason))
        fail_msg("report %llu says '%s', not '%s'", (unsigned long long)r.seq, r.reason, reason);
    if (parked)
        assert_int_equal(r.recovery_ns, 0);
    else
        assert_true(r.recovery_ns > 0);
}

static _Atomic int load_stop, load_wrong;

static void *load(void *arg) {
    (void)arg;
    while (!load_stop) {
        int r = fx_ok(1);
        if (r != 2 && r != -1)
            load_wrong++;
        if (fy_wait(0) != 0)
            load_wrong++;
    }
    return NULL;
}

/* With the defaults (10 restarts in 10 s), 30 faults in 6 s under load:
 * each restart costs about a millisecond, so the domain is never parked. */
static void test_occasional_faults_keep_their_domain(void **state) {
    (void)state;
    pthread_t th[3];
    load_stop = load_wrong = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, load, NULL), 0);
    for (int i = 0; i < 30; i++) {
        usleep(200000); /* time for its spare */
        assert_int_equal(fx_crash(FX_SEGV), -1);
        expect_report(0, NULL);
        assert_int_equal(fx_ok(i), i + 1); /* restarted */
    }
    load_stop = 1;
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(load_wrong, 0);
    assert_int_equal(info(1).parked, 0);
    assert_true(info(1).restarts >= 30);
}

/* Restarts that take 150 ms each (a slow init hook), one after another:
 * past 10 in the window and 1 s of recovery, parked. */
static void test_costly_restarts_park(void **state) {
    (void)state;
    fx_init_does(150, 0);
    int crashes = 0, parked = 0;
    long long calls0, calls1;
    fx_stats(&parked, &calls0);
    assert_int_equal(parked, 0);
    for (;;) {
        assert_true(++crashes < 60);
        assert_int_equal(fx_crash(FX_SEGV), -1);
        qtn_report r;
        assert_int_equal(qtn_report_next(&r, 10000), 1);
        if (r.parked) {
            assert_non_null(strstr(r.reason, "restarts cost too much: parked"));
            assert_int_equal(r.recovery_ns, 0);
            break;
        }
    }
    print_message("parked after %d costly restarts\n", crashes);
    assert_int_equal(backoff_s(), 1); /* the first try after a second */
    assert_int_equal(info(1).parked, 1);
    assert_int_equal(info(1).pid, 0);
    /* calls fail at once with the fault value, and are counted */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fx_ok(1), -1);
        assert_int_equal(fx_last_err, QTN_EPARKED);
    }
    fx_stats(&parked, &calls1);
    assert_int_equal(parked, 1);
    assert_int_equal(calls1, calls0 + 5);
    assert_int_equal(fy_wait(1), 1); /* the bystander is fine */
    /* started again, without a plan */
    print_message("started again %.2f s after the report\n", until_parked(0, 20));
    assert_int_equal(fx_ok(1), 2);
    fx_stats(&parked, &calls1);
    assert_int_equal(parked, 0);
    /* its restarts still cost too much: parked at the next fault, and the
     * next try waits twice as long */
    assert_int_equal(fx_crash(FX_SEGV), -1);
    expect_report(1, "restarts cost too much: parked");
    assert_int_equal(backoff_s(), 2);
    print_message("then %.2f s\n", until_parked(0, 20));
    /* a plan naming it starts it at once, and forgets what restarts cost */
    assert_int_equal(fx_crash(FX_SEGV), -1);
    expect_report(1, "restarts cost too much: parked");
    fx_init_does(0, 0);
    char err[128];
    assert_int_equal(qtn_plan_apply("fx=1", err, sizeof err), 0);
    assert_int_equal(info(1).parked, 0);
    assert_int_equal(fx_ok(1), 2);
    assert_int_equal(fx_init_runs(), 1);
    assert_int_equal(fx_crash(FX_SEGV), -1);
    expect_report(0, NULL);
    assert_int_equal(fx_ok(2), 3);
}

/* A domain whose new processes die starting (their init hook aborts) is
 * parked at once; the tries that fail keep it parked, the first that works
 * ends it. */
static void test_cannot_start(void **state) {
    (void)state;
    fx_init_does(0, 1);
    int crashes = 0;
    for (;;) {
        assert_true(++crashes < 5);
        assert_int_equal(fx_crash(FX_SEGV), -1);
        qtn_report r;
        assert_int_equal(qtn_report_next(&r, 20000), 1);
        if (r.parked) {
            assert_non_null(strstr(r.reason, "could not restart: parked"));
            break;
        }
    }
    assert_int_equal(fx_ok(1), -1);
    assert_int_equal(fx_last_err, QTN_EPARKED);
    assert_int_equal(backoff_s(), 1);
    /* the first try (after 1 s) fails: parked still, the next try later */
    double t0 = secs();
    while (backoff_s() < 2) {
        if (secs() - t0 > 20)
            fail_msg("domain 1 was not tried again within 20 s");
        usleep(2000);
    }
    assert_int_equal(info(1).parked, 1);
    assert_int_equal(fx_ok(1), -1);
    assert_int_equal(fx_last_err, QTN_EPARKED);
    fx_init_does(0, 0);
    print_message("started %.2f s later, on the second try\n", until_parked(0, 20));
    assert_int_equal(fx_ok(1), 2);
    qtn_report r;
    assert_int_equal(qtn_report_next(&r, 100), 0); /* the tries make no reports */
}

int main(void) {
    snprintf(fx_init_file, sizeof fx_init_file, "/tmp/qtn-test-park-%d", (int)getpid());
    assert_int_equal(qtn_register(&fx_component), 0);
    assert_int_equal(qtn_register(&fy_component), 0);
    qtn_config cfg = {.plan = "fx=1 fy=2"}; /* the defaults: 10 restarts in 10 s, 10 % */
    assert_int_equal(qtn_init(&cfg), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_occasional_faults_keep_their_domain),
        cmocka_unit_test(test_costly_restarts_park),
        cmocka_unit_test(test_cannot_start),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    qtn_shutdown();
    unlink(fx_init_file);
    return r;
}
