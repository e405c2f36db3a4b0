/* test_threads.c - thread-per-connection churn: 100,000 short-lived threads,
 * each making a crossing, must neither leak nor exhaust channels, memory,
 * file descriptors or threads of the domain. */
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
#include <pthread.h>

#include "tk.h"
#include "util.h"

#define THREADS 100000
#define WAVE 32

static _Atomic long bad;

static void *one_call(void *arg) {
    int32_t i = (int32_t)(intptr_t)arg;
    if (tk_add(i, 1, 0, 0) != (int64_t)i + 1)
        bad++;
    return NULL;
}

static void churn(int n) {
    pthread_t th[WAVE];
    for (int base = 0; base < n; base += WAVE) {
        int w = n - base < WAVE ? n - base : WAVE;
        for (int i = 0; i < w; i++)
            if (pthread_create(&th[i], NULL, one_call, (void *)(intptr_t)(base + i)))
                fail_msg("pthread_create failed at thread %d", base + i);
        for (int i = 0; i < w; i++)
            pthread_join(th[i], NULL);
    }
}

static void test_thread_churn(void **state) {
    (void)state;
    char err[128];
    assert_int_equal(qtn_plan_apply("tk=1", err, sizeof err), 0);
    churn(2000); /* warm up: serving threads, allocator arenas */
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(1, &di), 0);
    int fds = tu_count_dir("/proc/self/fd");
    long rss = tu_rss_kib();
    churn(THREADS);
    assert_int_equal(bad, 0);
    qtn_domain_info after;
    assert_int_equal(qtn_domain_info_get(1, &after), 0);
    assert_int_equal(after.pid, di.pid);             /* same domain all along */
    assert_int_equal(after.channels_in_use, 0);      /* every exit gave its channel back */
    assert_true(after.channels_served <= WAVE + 1);  /* bounded by concurrency, not by count */
    char task[64];
    snprintf(task, sizeof task, "/proc/%d/task", after.pid);
    int dthreads = tu_count_dir(task);
    assert_true(dthreads > 0);
    assert_true(dthreads <= (int)after.channels_served + 1);
    assert_int_equal(tu_count_dir("/proc/self/fd"), fds);
    long grown = tu_rss_kib() - rss;
#if UNDER_ASAN
    grown = 0; /* freed memory waits in the sanitizer's quarantine; LSan checks leaks */
#endif
    if (grown > 64 * 1024)
        fail_msg("resident memory grew by %ld KiB over %d threads", grown, THREADS);
    qtn_stats st;
    assert_int_equal(qtn_stats_component("tk", &st), 0);
    assert_true(st.crossings >= THREADS + 2000);
    assert_int_equal(st.faults, 0);
    assert_int_equal(st.calls, st.crossings);
}

int main(void) {
    assert_int_equal(qtn_register(&tk_component), 0);
    assert_int_equal(qtn_register(&tk2_component), 0);
    assert_int_equal(qtn_init(NULL), 0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_thread_churn)};
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    qtn_shutdown();
    return r;
}
