/* test_overflow.c - more calling threads than channels: past the dedicated
 * channels, threads borrow shared ones call by call, and wait for one when
 * all are busy instead of failing or deadlocking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "tk.h"

#define DEDICATED 4
#define SHARED 8 /* QTN__SHARED_CHANS */

typedef struct meet_arg {
    int n, timeout_ms, result;
} meet_arg;

static void *meet_thread(void *p) {
    meet_arg *a = p;
    a->result = tk_meet(a->n, a->timeout_ms);
    return NULL;
}

static void run_meet(int threads, int n, int timeout_ms, meet_arg *args) {
    pthread_t th[64];
    for (int i = 0; i < threads; i++) {
        args[i] = (meet_arg){n, timeout_ms, 0};
        assert_int_equal(pthread_create(&th[i], NULL, meet_thread, &args[i]), 0);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
}

static void test_all_channels_run_concurrently(void **state) {
    (void)state;
    meet_arg a[64];
    /* 12 threads, 4 dedicated + 8 shared channels: all 12 inside at once */
    run_meet(DEDICATED + SHARED, DEDICATED + SHARED, 20000, a);
    for (int i = 0; i < DEDICATED + SHARED; i++)
        assert_true(a[i].result >= DEDICATED + SHARED);
}

static void test_waits_for_a_shared_channel(void **state) {
    (void)state;
    qtn_domain_info before, after;
    assert_int_equal(qtn_domain_info_get(1, &before), 0);
    meet_arg a[64];
    /* one more caller than channels: it waits until a call returns */
    int n = DEDICATED + SHARED + 1;
    run_meet(n, 1000, 300, a);
    for (int i = 0; i < n; i++)
        assert_int_equal(a[i].result, -1); /* timed out inside, not the fault value -2 */
    assert_int_equal(qtn_domain_info_get(1, &after), 0);
    assert_true(after.overflow_waits > before.overflow_waits);
    assert_true(after.channels_served <= DEDICATED + SHARED);
}

static _Atomic long wrong;
static void *adder(void *p) {
    int id = (int)(intptr_t)p;
    for (int i = 0; i < 300; i++)
        if (tk_add(id, i, 1, 0) != (int64_t)id + i + 1)
            wrong++;
    return NULL;
}

static void test_many_threads_few_channels(void **state) {
    (void)state;
    pthread_t th[40];
    for (int i = 0; i < 40; i++)
        assert_int_equal(pthread_create(&th[i], NULL, adder, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 40; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(wrong, 0);
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(1, &di), 0);
    assert_int_equal(di.channels_in_use, 0);
}

int main(void) {
    assert_int_equal(qtn_register(&tk_component), 0);
    assert_int_equal(qtn_register(&tk2_component), 0);
    qtn_config cfg = {.channels = DEDICATED, .plan = "tk=1"};
    assert_int_equal(qtn_init(&cfg), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_channels_run_concurrently),
        cmocka_unit_test(test_waits_for_a_shared_channel),
        cmocka_unit_test(test_many_threads_few_channels),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    qtn_shutdown();
    return r;
}
