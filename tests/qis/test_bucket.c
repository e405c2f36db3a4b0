/* test_bucket.c - crash signatures and buckets: the same bug from two builds
 * is one bucket, two bugs in one component are two; the runtime's frames,
 * libc's abort machinery and the stubs are skipped; new and regressed per
 * build; the runtime's source list is the runtime's folder. */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bucket.h"

static void sig_of(const char *kind, int sig, const qb_frame *f, int n, char *out) {
    qb_signature(kind, sig, "fx", "fx_crash", f, n, out, QB_SIG_MAX);
}

/* A domain fault as the runtime reports it, in two builds: other
 * addresses, offsets and lines, a .cold copy in one. */
static void test_same_bug_two_builds(void **state) {
    (void)state;
    const qb_frame a[] = {{"fx_crash_real+0x72 (fx.c:65)", ""},
                          {"fx_crash_thunk+0x13 (fx.c:141)", ""},
                          {"dispatch+0x1ad (call.c:276)", ""},
                          {"serve+0x87 (call.c:302)", ""},
                          {"start_thread+0x305 (pthread_create.c:442)", ""},
                          {"__clone+0x40 (clone.S:100)", ""}};
    const qb_frame b[] = {{"fx_crash_real.cold+0x0 (fx.c:71)", ""},
                          {"fx_crash_thunk+0x1c (fx.c:150)", ""},
                          {"dispatch+0x1a4 (call.c:275)", ""},
                          {"serve+0x90 (call.c:299)", ""},
                          {"start_thread+0x305 (pthread_create.c:442)", ""},
                          {"__clone3+0x2c (clone3.S:81)", ""}};
    char sa[QB_SIG_MAX], sb[QB_SIG_MAX];
    sig_of("signal", SIGSEGV, a, 6, sa);
    sig_of("signal", SIGSEGV, b, 6, sb);
    assert_string_equal(sa, "signal SIGSEGV: fx_crash_real");
    assert_string_equal(sa, sb);

    qb_build builds[2] = {{"build-a", 100}, {"build-b", 200}};
    qb_report r[] = {{1, 110, "inst1", "fx", sa, 0}, {2, 210, "inst2", "fx", sb, 1},
                     {3, 220, "inst2", "fx", sb, 1}};
    qb_set set = {.builds = builds, .nbuilds = 2, .current = 1};
    assert_int_equal(qb_group(r, 3, &set), 0);
    assert_int_equal(set.n, 1);
    assert_int_equal(set.buckets[0].count, 3);
    assert_int_equal(set.buckets[0].installations, 2);
    assert_int_equal(set.buckets[0].first_ns, 110);
    assert_int_equal(set.buckets[0].last_ns, 220);
    assert_int_equal(set.buckets[0].example, 3);
    assert_int_equal(set.buckets[0].per_build[0], 1);
    assert_int_equal(set.buckets[0].per_build[1], 2);
    assert_false(set.buckets[0].is_new);
    assert_false(set.buckets[0].regressed);
    set.builds = NULL; /* the test's */
    qb_free(&set);
}

/* Two bugs in fx: a NULL dereference and a stack overflow (recursion is one
 * frame); the same function with another signal is another bucket. */
static void test_two_bugs_one_component(void **state) {
    (void)state;
    const qb_frame segv[] = {{"fx_crash_real+0x72 (fx.c:65)", ""},
                             {"fx_crash_thunk+0x13 (fx.c:141)", ""}};
    const qb_frame deep[] = {{"fx_recurse+0x20 (fx.c:57)", ""}, {"fx_recurse+0x31 (fx.c:57)", ""},
                             {"fx_recurse+0x31 (fx.c:57)", ""}, {"fx_crash_real+0x90 (fx.c:89)", ""},
                             {"fx_crash_thunk+0x13 (fx.c:141)", ""}};
    char s1[QB_SIG_MAX], s2[QB_SIG_MAX], s3[QB_SIG_MAX];
    sig_of("signal", SIGSEGV, segv, 2, s1);
    sig_of("signal", SIGSEGV, deep, 5, s2);
    sig_of("signal", SIGBUS, segv, 2, s3);
    assert_string_equal(s2, "signal SIGSEGV: fx_recurse | fx_crash_real");
    assert_string_equal(s3, "signal SIGBUS: fx_crash_real");
    qb_report r[] = {{1, 10, "i", "fx", s1, -1}, {2, 20, "i", "fx", s2, -1},
                     {3, 30, "i", "fx", s1, -1}, {4, 40, "i", "fx", s3, -1}};
    qb_set set = {.current = -1};
    assert_int_equal(qb_group(r, 4, &set), 0);
    assert_int_equal(set.n, 3);
    assert_string_equal(set.buckets[0].signature, s1); /* most reports first */
    assert_int_equal(set.buckets[0].count, 2);
    assert_int_equal(set.buckets[1].count, 1);
    assert_int_equal(set.buckets[2].count, 1);
    qb_free(&set);
}

/* A host crash: libc's abort machinery, the stubs, the runtime and the
 * program's own frames around component code are skipped; frames in
 * component code keep their order. */
static void test_host_crash_skips(void **state) {
    (void)state;
    const qb_frame f[] = {{"__pthread_kill_implementation+0x10c (pthread_kill.c:44)", ""},
                          {"raise+0x12 (raise.c:26)", ""},
                          {"abort+0xd3 (abort.c:79)", ""},
                          {"parse_field.isra.0+0x4 (parser.c:14)", "parser"},
                          {"parse_page+0x52 (parser.c:37)", "parser"},
                          {"qg_parse_page_thunk+0x13 (srv_qtn_stubs.c:17)", ""},
                          {"call_edge+0xe4 (call.c:898)", ""},
                          {"__wrap_parse_page+0x4c (srv_qtn_stubs.c:40)", ""},
                          {"render_page+0x9 (render.c:5)", "render"},
                          {"render_all+0x9 (render.c:9)", "render"},
                          {"main+0x162 (main.c:52)", ""},
                          {"__libc_start_main@@GLIBC_2.34+0x85 (libc-start.c:360)", ""},
                          {"_start+0x21 (srv)", ""}};
    char s[QB_SIG_MAX];
    qb_signature("host-crash", SIGABRT, "parser", "", f, 13, s, sizeof s);
    assert_string_equal(s, "host-crash SIGABRT: parse_field | parse_page | render_page");
    /* a domain fault inside libc's memmove, which is named for the CPU it
     * runs on: one signature on either machine */
    const qb_frame m1[] = {{"__memmove_avx512_unaligned_erms+0x9 (memmove.S:273)", ""},
                           {"cache_get+0x4c (cache.c:80)", ""}};
    const qb_frame m2[] = {{"__memmove_avx_unaligned_erms+0x1d (memmove.S:317)", ""},
                           {"cache_get+0x51 (cache.c:81)", ""}};
    char s2[QB_SIG_MAX];
    qb_signature("signal", SIGSEGV, "cache", "cache_get", m1, 2, s, sizeof s);
    qb_signature("signal", SIGSEGV, "cache", "cache_get", m2, 2, s2, sizeof s2);
    assert_string_equal(s, "signal SIGSEGV: cache_get");
    assert_string_equal(s, s2);
    /* no component code at all: the program's frames; nothing named: the
     * component and entry */
    qb_signature("host-crash", SIGSEGV, "", "", f + 10, 3, s, sizeof s);
    assert_string_equal(s, "host-crash SIGSEGV: main");
    /* a sanitizer's interceptor and an unnamed signal trampoline in libc:
     * skipped */
    const qb_frame asan[] = {{"__interceptor_backtrace+0x5b (srv)", ""},
                             {"libc.so.6+0x3c050", ""}, {"parse_page+0x52 (srv)", ""}};
    qb_signature("signal", SIGSEGV, "parser", "", asan, 3, s, sizeof s);
    assert_string_equal(s, "signal SIGSEGV: parse_page");
    /* without debug information: the runtime's frames known by name, but a
     * component's function of the same name in a file of its own stays */
    const qb_frame nodebug[] = {{"fx_crash_real+0x142 (crashy)", ""},
                                {"fx_crash_thunk+0xdf (crashy)", ""},
                                {"dispatch+0x28c8 (crashy)", ""}, {"serve+0x943 (crashy)", ""},
                                {"ffi_call_unix64+0x55 (libffi.so.8)", ""},
                                {"dispatch+0x10 (router.c:12)", ""}};
    qb_signature("signal", SIGSEGV, "fx", "", nodebug, 6, s, sizeof s);
    assert_string_equal(s, "signal SIGSEGV: fx_crash_real | dispatch");
    const qb_frame unknown[] = {{"?", ""}, {"libz.so.1+0x3f10", ""}};
    qb_signature("signal", SIGSEGV, "zlib", "deflate", unknown, 2, s, sizeof s);
    assert_string_equal(s, "signal SIGSEGV: libz.so.1+0x3f10");
    qb_signature("deadline", 0, "fx", "fx_crash", NULL, 0, s, sizeof s);
    assert_string_equal(s, "deadline: [fx.fx_crash]");
    qb_signature("host-crash", SIGSEGV, "", "", NULL, 0, s, sizeof s);
    assert_string_equal(s, "host-crash SIGSEGV: [unknown]");
}

/* Three builds in order: seen in the first, quiet in the second, seen in
 * this (third) one: regressed; only in this one: new; not in this one:
 * neither. */
static void test_new_and_regressed(void **state) {
    (void)state;
    qb_build builds[3] = {{"b1", 100}, {"b2", 200}, {"b3", 300}};
    qb_report r[] = {{1, 110, "i", "fx", "A", 0}, {2, 310, "i", "fx", "A", 2},
                     {3, 320, "i", "fx", "B", 2}, {4, 120, "i", "fy", "C", 0},
                     {5, 220, "i", "fy", "C", 1}, {6, 230, "i", "fy", "D", 1},
                     {7, 330, "i", "fy", "D", 2}};
    qb_set set = {.builds = builds, .nbuilds = 3, .current = 2};
    assert_int_equal(qb_group(r, 7, &set), 0);
    assert_int_equal(set.n, 4);
    int seen = 0;
    for (int i = 0; i < set.n; i++) {
        const qb_bucket *b = &set.buckets[i];
        int want_new = !strcmp(b->signature, "B");
        int want_reg = !strcmp(b->signature, "A");
        if (b->is_new != want_new || b->regressed != want_reg)
            fail_msg("bucket %s: new %d regressed %d (want %d %d)", b->signature, b->is_new,
                     b->regressed, want_new, want_reg);
        seen++;
    }
    assert_int_equal(seen, 4);
    set.builds = NULL;
    qb_free(&set);
}

/* Every source file of the runtime is one whose frames are skipped, and a
 * file of a component is not. */
static void test_runtime_files_are_the_runtime(void **state) {
    (void)state;
    DIR *d = opendir(RUNTIME_DIR);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t k = strlen(e->d_name);
        if (k > 2 && !strcmp(e->d_name + k - 2, ".c")) {
            if (!qb_runtime_file(e->d_name))
                fail_msg("%s is the runtime's but not in bucket.c's list", e->d_name);
            n++;
        }
    }
    closedir(d);
    assert_true(n > 10);
    assert_false(qb_runtime_file("parser.c"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bug_two_builds),
        cmocka_unit_test(test_two_bugs_one_component),
        cmocka_unit_test(test_host_crash_skips),
        cmocka_unit_test(test_new_and_regressed),
        cmocka_unit_test(test_runtime_files_are_the_runtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
