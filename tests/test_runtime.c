/* test_runtime.c - crossings for real: domain processes, shared memory,
 * inout copy of every kind of parameter, callbacks, upcalls, concurrency,
 * large buffers, live plan changes and statistics. */
#include <dirent.h>
#include <sched.h>
#include <stdbool.h>
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

#include "tk.h"
#include "util.h"

static int setup(void **state) {
    (void)state;
    assert_int_equal(qtn_register(&tk_component), 0);
    assert_int_equal(qtn_register(&tk2_component), 0);
    setenv("QTN_FOLLOW", "1", 1); /* test_sleeps_where_the_caller_is */
    assert_int_equal(qtn_init(NULL), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    qtn_shutdown();
    return 0;
}

/* ---- plans ------------------------------------------------------------------ */

static void test_plan_errors(void **state) {
    (void)state;
    char err[256];
    tu_plan("tk=host tk2=host");
    assert_int_equal(qtn_plan_apply("tk=1 nosuch=2", err, sizeof err), QTN_ENOENT);
    assert_non_null(strstr(err, "plan:1:6: unknown component 'nosuch'"));
    assert_int_equal(qtn_plan_domain("tk"), 0); /* nothing changed */
    assert_int_equal(qtn_plan_apply("tk=1\ntk2=x", err, sizeof err), QTN_EPLAN);
    assert_non_null(strstr(err, "plan:2:5: domain 'x'"));
    assert_int_equal(qtn_plan_apply("tk=33", err, sizeof err), QTN_EPLAN);
    assert_int_equal(qtn_plan_apply("tk", err, sizeof err), QTN_EPLAN);
    assert_non_null(strstr(err, "expected component=domain"));
    assert_int_equal(qtn_plan_apply("tk=1 tk=2", err, sizeof err), QTN_EPLAN);
    assert_non_null(strstr(err, "assigned twice"));
    assert_int_equal(qtn_plan_domain("tk"), 0);
    assert_int_equal(qtn_plan_domain("nosuch"), QTN_ENOENT);
    tu_plan("# a comment\n tk = 1\n");
    assert_int_equal(qtn_plan_domain("tk"), 1);
    tu_plan("tk=1, tk2=host # isolated\n");
    assert_int_equal(qtn_plan_domain("tk"), 1);
    char buf[64];
    int n = qtn_plan_format(buf, sizeof buf);
    assert_string_equal(buf, "tk=1 tk2=host");
    assert_int_equal(n, (int)strlen(buf));
    tu_plan("tk=host");
}

static void test_isolation_is_real(void **state) {
    (void)state;
    tu_plan("tk=host");
    assert_int_equal(tk_getpid(), getpid());
    tu_plan("tk=1");
    int pid = tk_getpid();
    assert_int_not_equal(pid, getpid());
    assert_true(pid > 0);
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(1, &di), 0);
    assert_int_equal(di.pid, pid);
    /* private state lives in the domain */
    int32_t a = tk_counter(), b = tk_counter();
    assert_int_equal(b, a + 1);
    tu_plan("tk=host");
    assert_int_equal(tk_counter(), 1); /* the host's copy was never touched */
    tu_plan("tk=1");
    assert_int_equal(tk_counter(), b + 1);
    tu_plan("tk=2");
    assert_int_not_equal(tk_getpid(), pid);
    tu_plan("tk=host");
}

/* ---- every kind of parameter, direct and isolated ------------------------------ */

typedef struct results {
    int64_t add;
    double scale;
    uint32_t sum;
    uint8_t fill[300];
    int32_t inc[17];
    int inc_r;
    size_t slen, slen0;
    char up[8];
    int up_r;
    char rd[64];
    size_t got;
    int rd_r;
    uint8_t in[100], out[40];
    tk_stream st;
    ptrdiff_t in_adv, out_adv;
    int copy_r;
    tk_point pts[5];
    int64_t weigh;
    int32_t handle_v;
    int null_fill;
} results;

static void run_all(results *r, unsigned seed) {
    srand(seed);
    r->add = tk_add(-123456, 1ll << 40, 250, -7);
    r->scale = tk_scale(1.5f, -2.25);
    uint8_t buf[513];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rand();
    r->sum = tk_sum_in(buf, sizeof buf);
    memset(r->fill, 0xcc, sizeof r->fill);
    tk_fill_out(r->fill, 257, 3); /* the tail past 257 must stay 0xcc */
    for (int i = 0; i < 17; i++)
        r->inc[i] = rand() % 1000 - 500;
    r->inc_r = tk_inc_inout(r->inc, 17);
    r->slen = tk_strlen("hello, world");
    r->slen0 = tk_strlen("");
    memset(r->up, '.', sizeof r->up);
    r->up_r = tk_upper("abc", r->up, sizeof r->up); /* only 3 bytes come back */
    memset(r->rd, '#', sizeof r->rd);
    r->rd_r = tk_read(r->rd, 10, &r->got);
    for (size_t i = 0; i < sizeof r->in; i++)
        r->in[i] = (uint8_t)rand();
    memset(r->out, 0, sizeof r->out);
    r->st = (tk_stream){r->in, sizeof r->in, r->out, sizeof r->out, 5};
    r->copy_r = tk_copy(&r->st, 30);
    r->in_adv = r->st.next_in - r->in;
    r->out_adv = r->st.next_out - r->out;
    r->copy_r += tk_copy(&r->st, 30); /* continues where it stopped */
    r->in_adv = r->st.next_in - r->in;
    r->out_adv = r->st.next_out - r->out;
    r->st.next_in = NULL; /* pointers into the caller's arrays differ per run */
    r->st.next_out = NULL;
    for (int i = 0; i < 5; i++)
        r->pts[i] = (tk_point){rand() % 100, rand() % 100};
    tk_points_flip(r->pts, 5);
    tk_named items[3] = {{"alpha", 2}, {NULL, 1}, {"be", -3}};
    r->weigh = tk_names_weigh(items, 3);
    void *h = tk_handle_new(4242);
    r->handle_v = tk_handle_get(h);
    tk_handle_free(h);
    tk_fill_out(NULL, 0, 1); /* NULL crosses as NULL */
    r->null_fill = 1;
}

static void test_direct_equals_isolated(void **state) {
    (void)state;
    for (unsigned seed = 1; seed <= 3; seed++) {
        results d, i;
        memset(&d, 0, sizeof d);
        memset(&i, 0, sizeof i);
        tu_plan("tk=host");
        run_all(&d, seed);
        tu_plan("tk=1");
        run_all(&i, seed);
        assert_int_equal(d.add, i.add);
        assert_true(d.scale == i.scale && d.scale == 1.5 * -2.25);
        assert_int_equal(d.sum, i.sum);
        assert_memory_equal(d.fill, i.fill, sizeof d.fill);
        assert_int_equal(i.fill[299], 0xcc);
        assert_memory_equal(d.inc, i.inc, sizeof d.inc);
        assert_int_equal(d.inc_r, i.inc_r);
        assert_int_equal(i.slen, 12);
        assert_int_equal(i.slen0, 0);
        assert_int_equal(d.slen, i.slen);
        assert_memory_equal(d.up, i.up, sizeof d.up);
        assert_memory_equal(i.up, "ABC.....", 8);
        assert_int_equal(d.up_r, i.up_r);
        assert_memory_equal(d.rd, i.rd, sizeof d.rd);
        assert_memory_equal(i.rd, "the quick ###", 13);
        assert_int_equal(d.got, i.got);
        assert_int_equal(i.got, 10);
        assert_memory_equal(d.out, i.out, sizeof d.out);
        assert_int_equal(d.copy_r, i.copy_r);
        assert_int_equal(i.copy_r, 40);
        assert_int_equal(d.in_adv, i.in_adv);
        assert_int_equal(d.out_adv, i.out_adv);
        assert_int_equal(i.out_adv, 40);
        assert_int_equal(d.st.avail_in, i.st.avail_in); /* fields: padding is unspecified */
        assert_int_equal(d.st.avail_out, i.st.avail_out);
        assert_int_equal(d.st.total, i.st.total);
        assert_memory_equal(d.pts, i.pts, sizeof d.pts);
        assert_int_equal(d.weigh, i.weigh);
        assert_int_equal(i.weigh, 5 * 2 + 1000 * 1 + 2 * -3);
        assert_int_equal(d.handle_v, i.handle_v);
        assert_int_equal(i.handle_v, 4242);
    }
    tu_plan("tk=host");
}

static void test_writes_only_through_out(void **state) {
    (void)state;
    uint8_t buf[64];
    memset(buf, 1, sizeof buf);
    tu_plan("tk=1");
    tk_scribble(buf, sizeof buf); /* writes an `in` buffer: stays in the domain */
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 1);
    tu_plan("tk=host");
    tk_scribble(buf, sizeof buf); /* direct: plain C semantics */
    assert_int_equal(buf[0], 0xee);
}

/* ---- callbacks and calls between components ----------------------------------- */

static int add_to(void *ctx, int32_t x) {
    int64_t *sum = ctx;
    *sum += x;
    return x * 10;
}

static int nested_cb(void *ctx, int32_t x) {
    (void)ctx;
    /* crosses again, from inside a callback of a crossing: same channel */
    return (int)tk_add(x, 0, 0, 0) + tk_getpid() * 0;
}

static int rev(const char *s, char *o, size_t cap) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n && i < cap; i++)
        o[i] = s[n - 1 - i];
    return (int)n;
}

static void test_callbacks(void **state) {
    (void)state;
    int32_t v[5] = {1, 2, 3, 4, 5};
    tu_plan("tk=1");
    int64_t sum = 0;
    assert_int_equal(tk_each(v, 5, add_to, &sum), 150);
    assert_int_equal(sum, 15); /* the callback ran here, in the caller's domain */
    assert_int_equal(tk_each(v, 5, nested_cb, NULL), 15);
    char out[8];
    memset(out, 0, sizeof out);
    assert_int_equal(tk_transform("abcdef", out, sizeof out, rev), 1006);
    assert_string_equal(out, "fedcba");
    tu_plan("tk=host");
    sum = 0;
    assert_int_equal(tk_each(v, 5, add_to, &sum), 150);
    assert_int_equal(sum, 15);
}

static void test_calls_between_components(void **state) {
    (void)state;
    qtn_stats before, after;
    tu_plan("tk=1 tk2=host"); /* tk's call to tk2 goes up to the host */
    assert_int_equal(qtn_stats_edge("tk", "tk2", &before), 0);
    assert_int_equal(tk_via(20), 41);
    assert_int_equal(qtn_stats_edge("tk", "tk2", &after), 0);
    assert_int_equal(after.calls, before.calls + 1);
    tu_plan("tk=1 tk2=2"); /* relayed by the host into domain 2 */
    assert_int_equal(tk_via(5), 11);
    assert_int_equal(qtn_stats_edge("tk", "tk2", &before), 0);
    assert_int_equal(before.crossings, after.crossings + 1);
    tu_plan("tk=1 tk2=1"); /* same domain: a direct call in there */
    assert_int_equal(tk_via(7), 15);
    assert_int_equal(qtn_stats_edge("tk", "tk2", &after), 0);
    assert_int_equal(after.crossings, before.crossings);
    tu_plan("tk=host tk2=host");
}

/* ---- concurrency ----------------------------------------------------------------- */

#define MEET 16
static void *meet_thread(void *arg) {
    (void)arg;
    return (void *)(intptr_t)tk_meet(MEET, 20000);
}

static void test_concurrent_calls_run_concurrently(void **state) {
    (void)state;
    tu_plan("tk=1");
    pthread_t th[MEET];
    for (int i = 0; i < MEET; i++)
        assert_int_equal(pthread_create(&th[i], NULL, meet_thread, NULL), 0);
    for (int i = 0; i < MEET; i++) {
        void *r;
        pthread_join(th[i], &r);
        /* -1 would mean the others never arrived: calls were serialised */
        assert_true((intptr_t)r >= MEET);
    }
    tu_plan("tk=host");
}

/* ---- large buffers ------------------------------------------------------------------ */

static void test_buffer_sizes(void **state) {
    (void)state;
    static const size_t sizes[] = {0, 1, 15, 4096, 65537, (1u << 20) - 100, 3u << 20,
                                   256u << 20};
    tu_plan("tk=1");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        uint8_t *b = malloc(n + 1);
        assert_non_null(b);
        uint64_t want = 0;
        for (size_t i = 0; i < n; i++) {
            b[i] = (uint8_t)(i * 13 + s);
            want += (uint8_t)~b[i];
        }
        b[n] = 0x77;
        assert_int_equal(tk_invert(b, n), want);
        for (size_t i = 0; i < n; i++)
            if (b[i] != (uint8_t)~(uint8_t)(i * 13 + s))
                fail_msg("size %zu: byte %zu did not come back", n, i);
        assert_int_equal(b[n], 0x77);
        free(b);
    }
    tu_plan("tk=host");
}

/* ---- live plan changes under load ---------------------------------------------------- */

static _Atomic int stop_load;
static _Atomic long load_errors, load_calls;

static void *load_thread(void *arg) {
    int id = (int)(intptr_t)arg;
    while (!stop_load) {
        int32_t a = id * 1000 + (int32_t)(load_calls % 1000);
        if (tk_add(a, 1, 2, 3) != (int64_t)a + 6)
            load_errors++;
        uint8_t b[32];
        tk_fill_out(b, sizeof b, (uint8_t)id);
        if (b[31] != (uint8_t)(id + 31 * 7))
            load_errors++;
        load_calls++;
    }
    return NULL;
}

static void test_replan_under_load(void **state) {
    (void)state;
    pthread_t th[6];
    stop_load = 0;
    load_errors = load_calls = 0;
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&th[i], NULL, load_thread, (void *)(intptr_t)i), 0);
    static const char *plans[] = {"tk=1", "tk=host", "tk=2", "tk=1", "tk=3", "tk=host"};
    for (int round = 0; round < 60; round++) {
        tu_plan(plans[round % 6]);
        usleep(5000);
    }
    stop_load = 1;
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(load_errors, 0);
    assert_true(load_calls > 100);
    tu_plan("tk=2");
    int pid = tk_getpid();
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(2, &di), 0);
    assert_int_equal(pid, di.pid); /* calls after the apply follow the plan */
    tu_plan("tk=host");
    assert_int_equal(tk_getpid(), getpid());
}

/* ---- statistics ------------------------------------------------------------------------ */

static void test_statistics(void **state) {
    (void)state;
    qtn_stats a, b, e;
    tu_plan("tk=host");
    assert_int_equal(qtn_stats_component("tk", &a), 0);
    for (int i = 0; i < 1000; i++)
        tk_nop();
    assert_int_equal(qtn_stats_component("tk", &b), 0);
    assert_int_equal(b.calls, a.calls + 1000); /* direct calls count too */
    assert_int_equal(b.crossings, a.crossings);
    tu_plan("tk=1");
    for (int i = 0; i < 500; i++)
        assert_int_equal(tk_nop(), 7);
    assert_int_equal(qtn_stats_component("tk", &a), 0);
    assert_int_equal(a.calls, b.calls + 500);
    assert_int_equal(a.crossings, b.crossings + 500);
    assert_true(a.cross_ns_total > b.cross_ns_total);
    assert_true(a.cross_ns_max > 0);
    assert_true(a.cross_ns_max * a.crossings >= a.cross_ns_total);
    assert_int_equal(qtn_stats_edge(NULL, "tk", &e), 0);
    assert_int_equal(e.crossings, a.crossings - 0 * e.crossings);
    assert_int_equal(qtn_stats_edge("program", "tk", &e), 0);
    assert_int_equal(qtn_stats_component("nosuch", &e), QTN_ENOENT);
    assert_int_equal(qtn_stats_edge("nosuch", "tk", &e), QTN_ENOENT);
    tu_plan("tk=host");
}

static int tick_cb(void *ctx) {
    (void)ctx;
    return 0;
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A crossing's time is counted on the CPU's time-stamp counter where it can
 * be, converted at a measured rate: 40 ms asleep in the domain must count as
 * 40 ms, as the monotonic clock around the call says (the same interval for
 * both, however busy the machine), the callee's work included. */
static void test_crossing_time(void **state) {
    (void)state;
    tu_plan("tk=1");
    assert_int_equal(tk_nop(), 7); /* the channel and its thread exist */
    qtn_stats a, b;
    assert_int_equal(qtn_stats_component("tk", &a), 0);
    uint64_t t0 = mono_ns();
    assert_int_equal(tk_tick(2, 20, tick_cb, NULL), 2);
    uint64_t wall = mono_ns() - t0;
    assert_int_equal(qtn_stats_component("tk", &b), 0);
    assert_int_equal(b.crossings, a.crossings + 1);
    uint64_t counted = b.cross_ns_total - a.cross_ns_total;
    assert_true(wall >= 40000000u);
    assert_true(counted <= wall + wall / 100);
    assert_true(counted + wall / 100 + 200000 >= wall); /* callbacks cross back: a little */
    tu_plan("tk=host");
}

/* The CPUs task tid of process pid may run on ("0", "1", "0-1"), or "". */
static void cpus_of(int pid, const char *tid, char *out, size_t cap) {
    char path[128], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%s/status", pid, tid);
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(buf, sizeof buf, f))
        if (!strncmp(buf, "Cpus_allowed_list:", 18)) {
            snprintf(out, cap, "%s", buf + 18 + strspn(buf + 18, " \t"));
            out[strcspn(out, "\n")] = 0;
        }
    fclose(f);
}

/* Whether a thread of process pid may run on `cpu` only, within 2 s. */
static bool a_thread_pinned_to(int pid, int cpu) {
    char want[16], path[64], got[64];
    snprintf(want, sizeof want, "%d", cpu);
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    for (int i = 0; i < 200; i++) {
        DIR *d = opendir(path);
        struct dirent *e;
        bool found = false;
        while (d && (e = readdir(d)) && !found) {
            if (e->d_name[0] == '.')
                continue;
            cpus_of(pid, e->d_name, got, sizeof got);
            found = !strcmp(got, want);
        }
        if (d)
            closedir(d);
        if (found)
            return true;
        struct timespec ten = {0, 10000000};
        nanosleep(&ten, NULL);
    }
    return false;
}

/* With QTN_FOLLOW=1, a domain's serving thread that waited 50 us or more
 * for a call goes to sleep on the CPU its caller called from, and follows
 * the caller when it moves. */
static void test_sleeps_where_the_caller_is(void **state) {
    (void)state;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t mine, one;
    assert_int_equal(sched_getaffinity(0, sizeof mine, &mine), 0);
    tu_plan("tk=1");
    int pid = tk_getpid();
    int done = 0;
    for (int c = 0; c < ncpu && c < CPU_SETSIZE && done < 2; c++) {
        if (!CPU_ISSET(c, &mine))
            continue;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
        /* the thread that serves this one follows after a wait of 50 us or
         * more for a call: the second call comes after one of a millisecond
         * (the first may be its very first, begun a moment before) */
        assert_int_equal(tk_nop(), 7);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        assert_int_equal(tk_nop(), 7);
        if (!a_thread_pinned_to(pid, c))
            fail_msg("no thread of domain process %d sleeps on CPU %d, its caller's", pid, c);
        done++;
    }
    assert_int_equal(sched_setaffinity(0, sizeof mine, &mine), 0);
    assert_true(done >= 1);
    tu_plan("tk=host");
}

static void count_rows(void *ctx, const char *caller, const char *callee, const char *entry,
                       const qtn_stats *st) {
    int *n = ctx;
    if (strcmp(entry, "tk_nop") == 0) {
        assert_string_equal(caller, "program");
        assert_string_equal(callee, "tk");
        assert_true(st->calls >= 1500);
    }
    (*n)++;
}

static void test_stats_foreach(void **state) {
    (void)state;
    int n = 0;
    int r = qtn_stats_foreach(count_rows, &n);
    assert_true(r > 5);
    assert_int_equal(r, n);
}

static void test_strerror(void **state) {
    (void)state;
    assert_string_equal(qtn_strerror(0), "success");
    assert_non_null(strstr(qtn_strerror(QTN_EFAULT), "fault value"));
    assert_string_equal(qtn_strerror(12345), "unknown error");
    assert_int_equal(qtn_init(NULL), QTN_ESTATE);
    assert_int_equal(qtn_register(&tk_component), 0); /* already in: fine */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_errors),
        cmocka_unit_test(test_isolation_is_real),
        cmocka_unit_test(test_direct_equals_isolated),
        cmocka_unit_test(test_writes_only_through_out),
        cmocka_unit_test(test_callbacks),
        cmocka_unit_test(test_calls_between_components),
        cmocka_unit_test(test_concurrent_calls_run_concurrently),
        cmocka_unit_test(test_buffer_sizes),
        cmocka_unit_test(test_replan_under_load),
        cmocka_unit_test(test_statistics),
        cmocka_unit_test(test_crossing_time),
        cmocka_unit_test(test_sleeps_where_the_caller_is),
        cmocka_unit_test(test_stats_foreach),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
