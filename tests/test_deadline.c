/* test_deadline.c - calls make progress or fail within their deadline:
 * more threads than channels whose callbacks call back into the same
 * domain (a call made from a callback nests on the channel of the call in
 * progress), a wait for a shared channel bounded by the call's deadline,
 * and a deadline that bounds the whole call, the callbacks it makes and
 * the time they take included. One dedicated channel per domain, so all
 * other threads share the 8 shared ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "fx.h"
#include "tk.h"
#include "util.h"

#define SHARED 8 /* QTN__SHARED_CHANS */

static double secs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Joins th[0..n) within `limit` seconds, or fails naming what hung. */
static void join_within(pthread_t *th, int n, double limit, const char *what) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)limit;
    for (int i = 0; i < n; i++)
        if (pthread_timedjoin_np(th[i], NULL, &until))
            fail_msg("%s: thread %d of %d still waiting after %.0f s", what, i, n, limit);
}

/* ---- callbacks calling back into the domain ---------------------------------------- */

static pthread_barrier_t inside; /* every thread in its callback, holding its channel */
static _Atomic int wrong, rounds_done;

static int call_back_in(void *ctx, int32_t x) {
    int *first = ctx;
    if (*first) { /* the first time: wait until every thread holds a shared channel */
        *first = 0;
        pthread_barrier_wait(&inside);
    }
    if (tk_add(x, 1, 0, 0) != (int64_t)x + 1) /* into the same domain, from the callback */
        wrong++;
    return 1;
}

static void *nester(void *arg) {
    int first = arg != NULL; /* meet the others at the barrier */
    int32_t v[3] = {1, 2, 3};
    for (int i = 0; i < 200; i++) {
        if (tk_each(v, 3, call_back_in, &first) != 3)
            wrong++;
        rounds_done++;
    }
    return NULL;
}

/* 8 threads, the one dedicated channel held by this one: every thread's
 * call holds a shared channel when its callback calls into the domain
 * again. Taking another channel for that would wait for ever. */
static void test_callbacks_into_the_same_domain(void **state) {
    (void)state;
    tu_plan("tk=1");
    assert_int_equal(tk_nop(), 7); /* this thread holds the dedicated channel */
    wrong = rounds_done = 0;
    pthread_barrier_init(&inside, NULL, SHARED);
    pthread_t th[SHARED];
    for (int i = 0; i < SHARED; i++)
        assert_int_equal(pthread_create(&th[i], NULL, nester, &inside), 0);
    join_within(th, SHARED, 60, "callbacks calling into their own domain");
    pthread_barrier_destroy(&inside);
    assert_int_equal(wrong, 0);
    assert_int_equal(rounds_done, SHARED * 200);
    /* and later calls go through */
    pthread_t late;
    assert_int_equal(pthread_create(&late, NULL, nester, NULL), 0);
    join_within(&late, 1, 20, "a call after them");
    assert_int_equal(wrong, 0);
    tu_plan("tk=host");
}

/* ---- a wait for a shared channel, within the deadline ------------------------------ */

static void *holder(void *arg) {
    (void)arg;
    fx_wait(3000); /* holds a shared channel 3 s */
    return NULL;
}

typedef struct probe {
    int r, err;
    double took;
} probe;

static void *prober(void *arg) {
    probe *p = arg;
    double t0 = secs();
    p->r = fx_crash(0); /* returns -4 when it runs; its deadline is 400 ms */
    p->err = fx_last_err;
    p->took = secs() - t0;
    return NULL;
}

/* Every channel busy for 3 s: a call with a 400 ms deadline (fx_crash) from
 * another thread must fail (QTN_ELIMIT), not wait 3 s for a channel and
 * then run. */
static void test_channel_wait_within_deadline(void **state) {
    (void)state;
    tu_plan("fx=1");
    assert_int_equal(fx_ok(1), 2); /* the dedicated channel */
    pthread_t th[SHARED];
    for (int i = 0; i < SHARED; i++)
        assert_int_equal(pthread_create(&th[i], NULL, holder, NULL), 0);
    for (int i = 0; fx_inside() < SHARED; i++) {
        if (i > 20000)
            fail_msg("the holders never got in");
        usleep(500);
    }
    probe p = {0};
    pthread_t pt;
    assert_int_equal(pthread_create(&pt, NULL, prober, &p), 0);
    join_within(&pt, 1, 30, "the call waiting for a channel");
    if (p.r != -1 || p.took > 10)
        fail_msg("a call with a 400 ms deadline, every channel busy: %d (%s) after %.2f s", p.r,
                 qtn_strerror(p.err), p.took);
    assert_int_equal(p.err, QTN_ELIMIT);
    join_within(th, SHARED, 30, "the holders");
    assert_int_equal(pthread_create(&pt, NULL, prober, &p), 0); /* channels free again */
    join_within(&pt, 1, 30, "a call after them");
    assert_int_equal(p.r, -4);
    qtn_report rep;
    assert_int_equal(qtn_report_next(&rep, 0), 0); /* no fault: the domain did nothing wrong */
}

/* ---- a deadline for the whole call ------------------------------------------------- */

static _Atomic int ticks;
static int tick(void *ctx) {
    int ms = *(int *)ctx;
    ticks++;
    if (ms)
        usleep((useconds_t)ms * 1000);
    return 0;
}

/* tk_tick's deadline is 500 ms. Calling back every 400 ms, 10 times, it
 * never waits 500 ms at once: the deadline counts from the call's start,
 * so the call fails (it would run 4 s and succeed otherwise). */
static void test_deadline_spans_callbacks(void **state) {
    (void)state;
    tu_plan("tk=1");
    assert_int_equal(tk_nop(), 7);
    qtn_domain_info before;
    assert_int_equal(qtn_domain_info_get(1, &before), 0);
    int zero = 0;
    ticks = 0;
    double t0 = secs();
    int r = tk_tick(10, 400, tick, &zero);
    double took = secs() - t0;
    if (r != -1 || tk_last_err != QTN_EDEADLINE || took > 10)
        fail_msg("a 500 ms deadline, a callback every 400 ms: %d (%s) after %.2f s, %d callbacks",
                 r, qtn_strerror(tk_last_err), took, (int)ticks);
    qtn_report rep;
    assert_int_equal(qtn_report_next(&rep, 10000), 1);
    assert_int_equal(rep.kind, QTN_FAULT_DEADLINE);
    assert_string_equal(rep.entry, "tk_tick");
    assert_int_equal(rep.incarnation, before.incarnation);
    /* the time a callback takes in the host counts too */
    int slow = 700;
    ticks = 0;
    t0 = secs();
    r = tk_tick(1, 0, tick, &slow);
    took = secs() - t0;
    if (r != -1 || tk_last_err != QTN_EDEADLINE || took > 10)
        fail_msg("a 500 ms deadline, a 700 ms callback: %d (%s) after %.2f s", r,
                 qtn_strerror(tk_last_err), took);
    assert_int_equal(ticks, 1);
    assert_int_equal(qtn_report_next(&rep, 10000), 1);
    assert_int_equal(rep.kind, QTN_FAULT_DEADLINE);
    /* within its time it is fine */
    assert_int_equal(tk_tick(2, 1, tick, &zero), 2);
    assert_int_equal(tk_last_err, 0);
    assert_int_equal(qtn_report_next(&rep, 0), 0);
    tu_plan("tk=host");
}

/* A call past its deadline kills its domain; the call made right after it,
 * before the monitor has seen that process die, waits for the next one
 * instead of going into the killed one to fail with it: a deadline costs
 * the calls in flight, not the next. */
static void test_call_after_a_deadline(void **state) {
    (void)state;
    tu_plan("fx=1");
    for (int i = 0; i < 5; i++) {
        qtn_clear_error();
        assert_int_equal(fx_crash(FX_DEADLOCK), -1);
        assert_int_equal(qtn_last_error(), QTN_EDEADLINE);
        int r = fx_ok(i);
        if (r != i + 1)
            fail_msg("round %d: the call after the deadline returned %d: %s", i, r,
                     qtn_strerror(qtn_last_error()));
    }
    tu_plan("fx=host");
}

int main(int argc, char **argv) {
    if (argc > 1)
        cmocka_set_test_filter(argv[1]); /* one test by name */
    assert_int_equal(qtn_register(&tk_component), 0);
    assert_int_equal(qtn_register(&tk2_component), 0);
    assert_int_equal(qtn_register(&fx_component), 0);
    assert_int_equal(qtn_register(&fy_component), 0);
    qtn_config cfg = {.channels = 1, .restart_max = 1000};
    assert_int_equal(qtn_init(&cfg), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callbacks_into_the_same_domain),
        cmocka_unit_test(test_channel_wait_within_deadline),
        cmocka_unit_test(test_deadline_spans_callbacks),
        cmocka_unit_test(test_call_after_a_deadline),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    qtn_shutdown();
    return r;
}
