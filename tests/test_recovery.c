/* test_recovery.c - recovery of one domain never waits for another's: a
 * domain whose restart takes seconds (its component's init hook is slow)
 * does not delay the fault of another domain; and no caller is stranded
 * when a domain dies right after a restart: many threads calling while the
 * domain faults back to back, and no call waits past a bound. */
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
#include "util.h"

#define SLOW_MS 3000 /* how long the slow component's init hook takes */

static double secs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- "slow": a component whose domain takes seconds to start --------------------- */

static void slow_init(void) { usleep(SLOW_MS * 1000); }

static int slow_crash_real(int32_t x) {
    volatile uintptr_t addr = 16;
    *(volatile int *)addr = x;
    return 0;
}
static int slow_ok_real(int32_t x) { return x + 1; }

static void slow_crash_thunk(qtn_val *a, qtn_val *r) { r->i = slow_crash_real((int32_t)a[0].i); }
static void slow_ok_thunk(qtn_val *a, qtn_val *r) { r->i = slow_ok_real((int32_t)a[0].i); }
static const qtn_param p_i32[] = {QTN_P_SCALAR(QTN_T_I32)};
static qtn_component slow_component;
static const qtn_entry slow_crash_entry = {.name = "slow_crash", .component = &slow_component,
                                           .thunk = slow_crash_thunk, .ret = QTN_T_I32,
                                           .nparams = 1, .params = p_i32, .fault = {.i = -1}};
static const qtn_entry slow_ok_entry = {.name = "slow_ok", .component = &slow_component,
                                        .thunk = slow_ok_thunk, .ret = QTN_T_I32, .nparams = 1,
                                        .params = p_i32, .fault = {.i = -1},
                                        .deadline_ms = 30000};
static const qtn_entry *const slow_entries[] = {&slow_crash_entry, &slow_ok_entry};
static qtn_component slow_component = {.name = "slow", .nentries = 2, .entries = slow_entries,
                                       .init = slow_init};

static int slow_call(const qtn_entry *en, int32_t x) {
    static qtn_edge edges[2] = {QTN_EDGE_INIT(NULL, &slow_crash_entry),
                                QTN_EDGE_INIT(NULL, &slow_ok_entry)};
    qtn_val v[1] = {{.i = x}}, r;
    qtn_call(&edges[en == &slow_ok_entry], v, &r);
    return (int)r.i;
}

/* While domain 2 restarts (its new process spends 3 s in an init hook),
 * a crash in domain 1 returns its fault value, is reported and recovered
 * from at once. */
static void test_slow_restart_blocks_no_other_domain(void **state) {
    (void)state;
    tu_plan("fx=1");
    assert_int_equal(fx_ok(1), 2);
    tu_settle(1);
    double t0 = secs();
    tu_plan("fx=1 slow=2"); /* its first process: 3 s */
    assert_true(secs() - t0 > SLOW_MS / 1000.0 * 0.9);
    assert_int_equal(slow_call(&slow_ok_entry, 1), 2);
    usleep(50000); /* its spare is being made: 3 s before it is ready */
    assert_int_equal(slow_call(&slow_crash_entry, 1), -1);
    /* domain 2 is restarting, for seconds: domain 1 must not notice */
    t0 = secs();
    assert_int_equal(fx_crash(FX_SEGV), -1);
    double faulted = secs() - t0;
    int ok = fx_ok(41);
    double recovered = secs() - t0;
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(2, &di), 0);
    int d2_restarting = di.pid == 0;
    if (recovered > 10 || ok != 42)
        fail_msg("a crash in domain 1 while domain 2 restarts: fault value after %.2f s, "
                 "the next call %d after %.2f s", faulted, ok, recovered);
    /* domain 1 was recovered while domain 2 was still at it: its fault did
     * not wait for the other restart (which takes 3 s) */
    if (!d2_restarting)
        fail_msg("domain 1 recovered only after domain 2 had restarted (%.2f s)", recovered);
    /* both reports come, domain 1's first */
    qtn_report r;
    assert_int_equal(qtn_report_next(&r, 10000), 1);
    assert_int_equal(r.domain, 1);
    assert_int_equal(r.parked, 0);
    assert_int_equal(qtn_report_next(&r, 20000), 1);
    assert_int_equal(r.domain, 2);
    assert_int_equal(r.parked, 0);
    assert_true(r.recovery_ns > 1000000000ull); /* the init hook, again */
    assert_int_equal(slow_call(&slow_ok_entry, 5), 6);
    tu_plan("slow=host");
}

/* ---- callers stranded by a death right after a restart ---------------------------- */

#define CALLERS 16
#define BOUND 10.0 /* seconds: no call may take longer (a restart takes a millisecond) */

static _Atomic int stop, wrong;
static _Atomic long calls;
static double worst[CALLERS];

/* A short-lived thread, as a server makes per connection: its first call
 * takes a fresh channel. */
static void *calls10(void *arg) {
    int i = (int)(intptr_t)arg;
    for (int n = 0; n < 10 && !stop; n++) {
        double t0 = secs();
        int r = fx_ok(i); /* no deadline: a stranded caller waits for ever */
        double took = secs() - t0;
        if (took > worst[i])
            worst[i] = took;
        if (r != i + 1 && r != -1)
            wrong++;
        calls++;
    }
    return NULL;
}

static void *caller(void *arg) {
    while (!stop) {
        pthread_t th;
        if (pthread_create(&th, NULL, calls10, arg)) {
            wrong++;
            return NULL;
        }
        pthread_join(th, NULL);
    }
    return NULL;
}

static _Atomic int reports, parked_reports, reader_stop;

static void *reader(void *arg) {
    (void)arg;
    qtn_report r;
    for (;;) {
        int got = qtn_report_next(&r, 100);
        if (got == 1) {
            reports++;
            parked_reports += r.parked;
        } else if (reader_stop) {
            return NULL;
        }
    }
}

static void *crasher(void *arg) {
    int *n = arg;
    const char *e = getenv("QTN_STRESS_SECS");
    double t0 = secs(), len = e ? atof(e) : 3;
    while (secs() - t0 < len) { /* back to back: each one right after the restart */
        fx_crash(FX_SEGV);
        (*n)++;
    }
    return NULL;
}

/* Callers come and go (a thread per connection), so channels the dying
 * incarnation never served are taken all the time, right after restarts
 * too. A domain dying just as a caller takes one must wake that caller
 * too. */
static void test_no_caller_stranded(void **state) {
    (void)state;
    tu_plan("fx=1");
    stop = wrong = 0;
    calls = 0;
    memset(worst, 0, sizeof worst);
    pthread_t th[CALLERS], cr, rd;
    int faults = 0;
    reports = parked_reports = reader_stop = 0;
    assert_int_equal(pthread_create(&rd, NULL, reader, NULL), 0);
    for (int i = 0; i < CALLERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, caller, (void *)(intptr_t)i), 0);
    assert_int_equal(pthread_create(&cr, NULL, crasher, &faults), 0);
    pthread_join(cr, NULL);
    stop = 1;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    for (int i = 0; i < CALLERS; i++)
        if (pthread_timedjoin_np(th[i], NULL, &until))
            fail_msg("caller %d stranded: still waiting 30 s after the last fault (%d faults)",
                     i, faults);
    double w = 0;
    for (int i = 0; i < CALLERS; i++)
        if (worst[i] > w)
            w = worst[i];
    print_message("%d faults, %ld calls, the longest %.3f s\n", faults, (long)calls, w);
    if (w > BOUND)
        fail_msg("a call took %.2f s (bound %.1f s), %d faults", w, BOUND, faults);
    assert_int_equal(wrong, 0);
    assert_true(faults > 20);
    for (int i = 0; reports < faults && i < 1000; i++)
        usleep(10000);
    reader_stop = 1;
    pthread_join(rd, NULL);
    assert_int_equal(reports, faults); /* one each */
    assert_int_equal(parked_reports, 0);
    assert_int_equal(qtn_reports_dropped(), 0);
    assert_int_equal(fx_ok(9), 10);
}

int main(int argc, char **argv) {
    if (argc > 1)
        cmocka_set_test_filter(argv[1]); /* one test by name */
    setenv("QTN_QUIET_FAULTS", "1", 1); /* hundreds of them */
    assert_int_equal(qtn_register(&fx_component), 0);
    assert_int_equal(qtn_register(&fy_component), 0);
    assert_int_equal(qtn_register(&slow_component), 0);
    qtn_config cfg = {.channels = 64, .restart_max = 1000000};
    assert_int_equal(qtn_init(&cfg), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_restart_blocks_no_other_domain),
        cmocka_unit_test(test_no_caller_stranded),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    qtn_shutdown();
    return r;
}
