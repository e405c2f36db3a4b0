/* test_faults.c - the fault matrix, for real: every way a domain can die,
 * with one caller, with 64 callers in flight in that domain, and with
 * callers in a second domain that must not notice. After each fault: every
 * caller got the fault value or the right answer, the host lives, the next
 * call works in a new process, exactly one report says what happened, and
 * no file descriptor or thread was leaked. Also: stale handles, restart
 * intensity, reports through a slow fd, kills during plan changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

#include "fx.h"
#include "util.h"

static qtn_domain_info info(int d) {
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(d, &di), 0);
    return di;
}

typedef struct expect {
    int kind, signal, exit_code;
    bool frames; /* a backtrace naming fx_crash_real */
} expect;

static expect expected(int kind) {
    switch (kind) {
    case FX_SEGV: return (expect){QTN_FAULT_SIGNAL, SIGSEGV, 0, true};
    case FX_BUS: return (expect){QTN_FAULT_SIGNAL, SIGBUS, 0, true};
    case FX_FPE: return (expect){QTN_FAULT_SIGNAL, SIGFPE, 0, true};
    case FX_ILL: return (expect){QTN_FAULT_SIGNAL, SIGILL, 0, true};
    case FX_ABRT: return (expect){QTN_FAULT_SIGNAL, SIGABRT, 0, true};
    case FX_STACK: return (expect){QTN_FAULT_SIGNAL, SIGSEGV, 0, false};
    case FX_EXIT: return (expect){QTN_FAULT_EXIT, 0, 3, false};
    case FX__EXIT: return (expect){QTN_FAULT_EXIT, 0, 4, false};
    case FX_HANG: return (expect){QTN_FAULT_KILLED, SIGKILL, 0, false};
    case FX_DEADLOCK: return (expect){QTN_FAULT_DEADLINE, SIGKILL, 0, false};
    case FX_OPEN: return (expect){QTN_FAULT_SECCOMP, SIGSYS, 0, true};
    default: return (expect){0, 0, 0, false};
    }
}

static const char *kind_label(int k) {
    static const char *names[] = {"", "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "abort",
                                  "stack overflow", "exit()", "_exit()", "SIGKILL",
                                  "deadlock", "denied syscall"};
    return k > 0 && k < FX_KINDS ? names[k] : "?";
}

/* The one report of the fault just made. */
static void check_report(int kind, int pid, uint32_t inc, uint32_t failed) {
    qtn_report r;
    if (qtn_report_next(&r, 10000) != 1)
        fail_msg("%s: no report", kind_label(kind));
    expect e = expected(kind);
    char line[8192];
    qtn_report_format(&r, line, sizeof line);
    if (r.kind != e.kind || r.signal != e.signal || r.exit_code != e.exit_code)
        fail_msg("%s: report says %s", kind_label(kind), line);
    assert_int_equal(r.domain, 1);
    assert_int_equal(r.pid, pid);
    assert_int_equal(r.incarnation, inc);
    /* killed from outside, no call is the culprit: one in flight is named */
    if (strcmp(r.component, "fx") || (kind != FX_HANG && strcmp(r.entry, "fx_crash")))
        fail_msg("%s: blames %s.%s: %s", kind_label(kind), r.component, r.entry, line);
    if (r.calls_failed != failed)
        fail_msg("%s: %u calls failed, want %u: %s", kind_label(kind), r.calls_failed, failed,
                 line);
    assert_int_equal(r.parked, 0);
    assert_true(r.recovery_ns > 0);
    assert_true(r.time_ns > 0);
    assert_true(r.reason[0] != 0);
    if (kind == FX_OPEN) {
        assert_non_null(strstr(r.reason, "openat"));
        assert_true(r.syscall > 0);
    }
    if (kind == FX_SEGV)
        assert_int_equal(r.fault_addr, 16);
    if (e.frames) {
        bool named = false;
        for (uint32_t i = 0; i < r.nframes; i++)
            named |= strstr(r.symbols[i], "fx_crash_real") != NULL;
        if (!named)
            fail_msg("%s: backtrace does not name fx_crash_real: %s", kind_label(kind), line);
    }
    assert_int_equal(qtn_report_next(&r, 0), 0); /* exactly one */
}

/* The new process serves: the next call works, the init hook ran there. */
static void check_recovered(int old_pid, uint32_t old_inc) {
    assert_int_equal(fx_ok(41), 42);
    qtn_domain_info di = info(1);
    assert_int_not_equal(di.pid, old_pid);
    assert_int_equal(di.incarnation, old_inc + 1);
    assert_int_equal(fx_init_runs(), 1);
}

static _Atomic int wrong;

static void *waiter(void *arg) {
    (void)arg;
    int r = fx_wait(20000);
    if (r != -1) /* it was inside when the domain died */
        wrong++;
    return NULL;
}

static void *bystander(void *arg) {
    (void)arg;
    for (int i = 0; i < 5; i++)
        if (fy_wait(20) != 20)
            wrong++;
    return NULL;
}

typedef struct trig {
    int kind, result;
} trig;

static void *trigger(void *arg) {
    trig *t = arg;
    t->result = fx_crash(t->kind);
    return NULL;
}

static void settle(void) {
    tu_settle(1);
    tu_settle(2);
}

/* Makes fault `kind` happen in domain 1 while `inflight` other calls wait
 * inside it, and `bystanders` threads call domain 2. */
static void fault_once(int kind, int inflight, int bystanders) {
    settle();
    int fds = tu_count_dir("/proc/self/fd"), threads = tu_count_dir("/proc/self/task");
    qtn_domain_info before = info(1);
    uint32_t inc2 = info(2).incarnation;
    wrong = 0;
    pthread_t w[64], b[8], tt;
    for (int i = 0; i < inflight; i++)
        assert_int_equal(pthread_create(&w[i], NULL, waiter, NULL), 0);
    for (int i = 0; i < bystanders; i++)
        assert_int_equal(pthread_create(&b[i], NULL, bystander, NULL), 0);
    for (int i = 0; fx_inside() < inflight; i++) {
        if (i > 20000)
            fail_msg("%s: the waiters never got in", kind_label(kind));
        usleep(500);
    }
    trig t = {kind, 0};
    assert_int_equal(pthread_create(&tt, NULL, trigger, &t), 0);
    if (kind == FX_HANG) {
        for (int i = 0; fx_inside() < inflight + 1; i++) {
            if (i > 20000)
                fail_msg("SIGKILL: the call never got in");
            usleep(500);
        }
        kill(before.pid, SIGKILL);
    }
    pthread_join(tt, NULL);
    for (int i = 0; i < inflight; i++)
        pthread_join(w[i], NULL);
    for (int i = 0; i < bystanders; i++)
        pthread_join(b[i], NULL);
    if (t.result != -1)
        fail_msg("%s: the faulting call returned %d", kind_label(kind), t.result);
    assert_int_equal(wrong, 0);
    check_report(kind, before.pid, before.incarnation, (uint32_t)inflight + 1);
    check_recovered(before.pid, before.incarnation);
    assert_int_equal(info(2).incarnation, inc2); /* the other domain never noticed */
    settle();
    tu_wait_count(fds, threads);
}

static void test_matrix_one_caller(void **state) {
    (void)state;
    for (int k = 1; k < FX_KINDS; k++)
        fault_once(k, 0, 0);
}

static void test_matrix_64_callers(void **state) {
    (void)state;
    for (int k = 1; k < FX_KINDS; k++)
        fault_once(k, 63, 0);
}

static void test_matrix_two_domains(void **state) {
    (void)state;
    for (int k = 1; k < FX_KINDS; k++)
        fault_once(k, 4, 8);
}

static void test_recovery_statistics(void **state) {
    (void)state;
    qtn_domain_info di = info(1);
    assert_true(di.restarts >= 3 * (FX_KINDS - 1) + 1);
    assert_true(di.recovery_ns_max > 0);
    assert_true(di.recovery_ns_total >= di.recovery_ns_max);
    qtn_stats st;
    assert_int_equal(qtn_stats_component("fx", &st), 0);
    assert_int_equal(st.domain_faults, di.restarts);
    assert_true(st.faults >= st.domain_faults);
    assert_true(st.recovery_ns_max > 0);
    assert_int_equal(qtn_stats_component("fy", &st), 0);
    assert_int_equal(st.domain_faults, 0);
    assert_int_equal(qtn_reports_dropped(), 0);
}

static void test_stale_handles(void **state) {
    (void)state;
    void *h = fx_new(5);
    assert_non_null(h);
    assert_int_equal(fx_get(h), 5);
    fx_crash(FX_SEGV);
    qtn_report r;
    assert_int_equal(qtn_report_next(&r, 10000), 1);
    /* the handle points into the process that died: refused, not followed */
    assert_int_equal(fx_get(h), -1);
    assert_int_equal(fx_last_err, QTN_ESTALE);
    assert_non_null(strstr(qtn_strerror(QTN_ESTALE), "earlier incarnation"));
    void *h2 = fx_new(6);
    assert_int_equal(fx_get(h2), 6);
    assert_int_equal(fx_last_err, 0);
    assert_int_equal(fx_get((void *)((uintptr_t)h2 & ((1ull << 48) - 1))), -1);
    assert_int_equal(fx_last_err, QTN_ESTALE); /* an untagged pointer is no handle of fx */
}

/* Reports through an fd nobody reads for a while: they wait, none is lost. */
static void test_slow_report_reader(void **state) {
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    assert_int_equal(qtn_report_to_fd(p[1]), 0);
    enum { N = 60 }; /* more than a pipe holds */
    for (int i = 0; i < N; i++)
        assert_int_equal(fx_crash(FX_ABRT), -1);
    qtn_report r;
    for (int i = 0; i < N; i++)
        assert_int_equal(qtn_report_next(&r, 10000), 1);
    char *all = NULL;
    size_t len = 0;
    int lines = 0;
    for (int tries = 0; lines < N && tries < 2000; tries++) {
        char buf[65536];
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n <= 0) {
            usleep(2000);
            continue;
        }
        all = realloc(all, len + (size_t)n + 1);
        memcpy(all + len, buf, (size_t)n);
        len += (size_t)n;
        all[len] = 0;
        lines = 0; /* fault records; statistics records come between them */
        for (char *c = all; (c = strstr(c, " {\"type\":\"fault\"")); c++)
            lines++;
    }
    assert_int_equal(lines, N);
    assert_non_null(strstr(all, " {\"type\":\"stats\""));
    assert_non_null(strstr(all, "\"kind\":\"signal\""));
    assert_non_null(strstr(all, "\"component\":\"fx\""));
    assert_non_null(strstr(all, "\"entry\":\"fx_crash\""));
    assert_null(strstr(all, "dropped"));
    assert_int_equal(qtn_reports_dropped(), 0);
    free(all);
    qtn_report_to_fd(-1);
    close(p[0]);
    close(p[1]);
}

static _Atomic int stop_flag;
static void *plan_flipper(void *arg) {
    (void)arg;
    while (!stop_flag) {
        tu_plan("fx=1 fy=2");
        tu_plan("fx=1 fy=1");
        tu_plan("fx=1 fy=host");
    }
    return NULL;
}

static void *caller(void *arg) {
    (void)arg;
    while (!stop_flag) {
        int r = fx_ok(1);
        if (r != 2 && r != -1)
            wrong++;
        r = fy_wait(0);
        if (r != 0 && r != -1) /* -1: fy was in domain 1 when it was killed */
            wrong++;
    }
    return NULL;
}

static void test_killed_while_plans_change(void **state) {
    (void)state;
    wrong = 0;
    stop_flag = 0;
    pthread_t f, c[4];
    assert_int_equal(pthread_create(&f, NULL, plan_flipper, NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&c[i], NULL, caller, NULL), 0);
    enum { KILLS = 10 };
    for (int i = 0; i < KILLS; i++) {
        usleep(20000);
        qtn_domain_info di = info(1);
        for (int t = 0; di.pid == 0 && t < 5000; t++) { /* restarting */
            usleep(1000);
            di = info(1);
        }
        assert_true(di.pid > 0);
        kill(di.pid, SIGKILL);
        qtn_report r;
        assert_int_equal(qtn_report_next(&r, 10000), 1);
        assert_int_equal(r.kind, QTN_FAULT_KILLED);
        assert_int_equal(r.pid, di.pid);
    }
    stop_flag = 1;
    pthread_join(f, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(c[i], NULL);
    assert_int_equal(wrong, 0);
    qtn_report r;
    assert_int_equal(qtn_report_next(&r, 200), 0);
    tu_plan("fx=1 fy=2");
    assert_int_equal(fx_ok(9), 10);
}

static int setup(void **state) {
    (void)state;
    assert_int_equal(qtn_register(&fx_component), 0);
    assert_int_equal(qtn_register(&fy_component), 0);
    qtn_config cfg = {.restart_max = 100000, .plan = "fx=1 fy=2"};
    assert_int_equal(qtn_init(&cfg), 0);
    /* the first report opens the symbolizer's files, which it keeps: make
     * it now, so each fault below must leave the fd count as it found it */
    qtn_report r;
    qtn_clear_error();
    assert_int_equal(fx_crash(FX_SEGV), -1);
    assert_int_equal(qtn_last_error(), QTN_EFAULT); /* the -1 was a fault's */
    assert_int_equal(fx_ok(1), 2);
    assert_int_equal(qtn_last_error(), 0);
    assert_int_equal(qtn_report_next(&r, 10000), 1);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    qtn_shutdown();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix_one_caller),
        cmocka_unit_test(test_matrix_64_callers),
        cmocka_unit_test(test_matrix_two_domains),
        cmocka_unit_test(test_recovery_statistics),
        cmocka_unit_test(test_stale_handles),
        cmocka_unit_test(test_slow_report_reader),
        cmocka_unit_test(test_killed_while_plans_change),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
