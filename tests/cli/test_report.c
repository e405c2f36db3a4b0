/* test_report.c - quarantine report's options: durations and counts read
 * strictly (no nan, no inf, no overflow, no negative, no trailing words),
 * each bad one refused with a message naming it and exit status 2; the
 * crash buckets of a real store made by three builds of a crashing program. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "bucket.h"

static char dir[64], db[96], out[128], text[1 << 16];

/* Runs the shell command `fmt`: its exit status; what it wrote (stdout and
 * stderr) in text. */
static int run(const char *fmt, ...) {
    char cmd[1024], line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "%s >%s 2>&1", cmd, out);
    int st = system(line);
    FILE *f = fopen(out, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs `quarantine report --store DB ARGS`, as run(). */
static int report(const char *args) { return run("%s report --store %s %s", QTN_BIN, db, args); }

static void refused(const char *args, const char *message) {
    int st = report(args);
    if (st != 2 || strcmp(text, message))
        fail_msg("quarantine report %s: status %d (want 2), said:\n%swant:\n%s", args, st, text,
                 message);
}

static void test_since_is_read_strictly(void **state) {
    (void)state;
    const char *bad[] = {"1e400h", "nanh", "infd", "nan", "inf", "-inf",   "1e400",    "-5m",
                         "-1",     "",     "5x",   "2 h", "h",   "36501d", "0x1p2000s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[64], msg[256];
        snprintf(args, sizeof args, "--since '%s'", bad[i]);
        snprintf(msg, sizeof msg,
                 "quarantine: report: --since: '%s' is not a duration: 90 (seconds), 90s, 15m, "
                 "2h, 7d, at most 36500d\n",
                 bad[i]);
        refused(args, msg);
    }
    const char *good[] = {"90", "90s", "15m", "2h", "7d", "0", "36500d", "0.5h"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char args[64];
        snprintf(args, sizeof args, "--since %s", good[i]);
        if (report(args) != 0)
            fail_msg("quarantine report %s failed:\n%s", args, text);
        assert_non_null(strstr(text, "latest reports:"));
    }
    /* everything since long ago: the one crash stored */
    assert_int_equal(report("--since 36500d"), 0);
    assert_non_null(strstr(text, "host crashes: 1"));
}

static void test_latest_is_read_strictly(void **state) {
    (void)state;
    const char *bad[] = {"4294967297", "",     "-1",         "nan",
                         "inf",        "1e10", "2147483648", "99999999999999999999",
                         "2.5",        "abc",  "5 x",        "1000001"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[64], msg[256];
        snprintf(args, sizeof args, "--latest '%s'", bad[i]);
        snprintf(msg, sizeof msg,
                 "quarantine: report: --latest: '%s' is not a whole number, 0 to 1000000\n",
                 bad[i]);
        refused(args, msg);
    }
    assert_int_equal(report("--latest 0"), 0);
    assert_non_null(strstr(text, "latest reports:\n  (none)"));
    assert_int_equal(report("--latest 1000000"), 0);
    assert_non_null(strstr(text, "the program died of SIGSEGV"));
    refused("--latest", "quarantine: report: --latest needs a value (try quarantine report "
                        "--help)\n");
    refused("--since", "quarantine: report: --since needs a value (try quarantine report "
                       "--help)\n");
}

/* Without --store, the store is $QTN_STORE's; a missing one is named. */
static void test_default_store_is_qtn_store(void **state) {
    (void)state;
    assert_int_equal(run("QTN_STORE=%s HOME=%s/nohome %s report", db, dir, QTN_BIN), 0);
    assert_non_null(strstr(text, "host crashes: 1"));
    assert_int_equal(run("QTN_STORE=%s/missing.db %s report", dir, QTN_BIN), 1);
    char want[256];
    snprintf(want, sizeof want, "quarantine: report: store %s/missing.db: no such file "
             "(quarantine run makes it)\n", dir);
    assert_string_equal(text, want);
}

/* The bucket of `signature` in the JSON bucket view, or NULL. */
static json_t *bucket_of(json_t *view, const char *signature) {
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(view, "buckets"), i, b) {
        if (!strcmp(json_string_value(json_object_get(b, "signature")) ?: "", signature))
            return b;
    }
    return NULL;
}

static long long num(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("no whole number %s in the bucket view", key);
    return (long long)json_integer_value(v);
}

/* A real store: build 1 faults twice with one bug (a NULL dereference in
 * fx) and once with another (a stack overflow), build 2 runs quiet, build
 * 3 has the first bug again. Same bug in two builds: one bucket; two bugs
 * in one component: two; the first regressed in build 3; the rules version
 * printed in text and JSON. */
static void test_buckets(void **state) {
    (void)state;
    char bdb[128], cmd[1024];
    snprintf(bdb, sizeof bdb, "%s/buckets.db", dir);
    const char *steps[][2] = {{CRASHY, "faults 2 5"},
                              {CRASHY, "faults 1 5 6"}, /* FX_STACK */
                              {CRASHY_B2, "faults 0 0"},
                              {CRASHY_B3, "faults 1 5"}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s run --store %s -- %s %s", QTN_BIN, bdb, steps[i][0],
                 steps[i][1]);
        if (run("%s", cmd) != 0)
            fail_msg("%s failed:\n%s", cmd, text);
        if (i == 1) { /* build 1 alone: its buckets are new in this build */
            assert_int_equal(run("%s report --store %s --buckets --json", QTN_BIN, bdb), 0);
            if (!strstr(text, "\"new_in_this_build\":true,\"regressed\":false") ||
                strstr(text, "\"new_in_this_build\":false"))
                fail_msg("build 1's buckets are not new:\n%s", text);
        }
    }
    assert_int_equal(run("%s report --store %s --buckets --json", QTN_BIN, bdb), 0);
    json_error_t jerr;
    json_t *view = json_loads(text, 0, &jerr);
    if (!view)
        fail_msg("--buckets --json is not JSON (%s):\n%s", jerr.text, text);
    assert_int_equal(num(view, "rules_version"), QB_RULES_VERSION);
    assert_int_equal(num(view, "reports"), 4);
    assert_int_equal(json_array_size(json_object_get(view, "buckets")), 2);
    json_t *segv = bucket_of(view, "signal SIGSEGV: fx_crash_real");
    json_t *deep = bucket_of(view, "signal SIGSEGV: fx_recurse");
    if (!segv || !deep)
        fail_msg("buckets missing:\n%s", text);
    assert_int_equal(num(segv, "count"), 3);
    assert_int_equal(num(segv, "installations"), 1);
    assert_string_equal(json_string_value(json_object_get(segv, "component")), "fx");
    json_t *builds = json_object_get(segv, "builds");
    assert_int_equal(json_array_size(builds), 2);
    assert_int_equal(num(json_array_get(builds, 0), "count"), 2);
    assert_int_equal(num(json_array_get(builds, 1), "count"), 1);
    const char *b3 = json_string_value(json_object_get(json_array_get(builds, 1), "build_id"));
    assert_string_equal(json_string_value(json_object_get(view, "this_build")), b3);
    assert_true(json_is_true(json_object_get(segv, "regressed")));
    assert_true(json_is_false(json_object_get(segv, "new_in_this_build")));
    assert_int_equal(num(deep, "count"), 1);
    assert_true(json_is_false(json_object_get(deep, "regressed")));
    assert_true(num(segv, "last_seen_ns") > num(deep, "last_seen_ns"));
    json_t *ex = json_object_get(segv, "example");
    assert_true(json_array_size(json_object_get(ex, "backtrace")) > 0);
    assert_true(num(ex, "time_ns") == num(segv, "last_seen_ns"));
    json_decref(view);

    assert_int_equal(run("%s report --store %s --buckets", QTN_BIN, bdb), 0);
    char want[96];
    snprintf(want, sizeof want, "crash buckets: 2, of 4 report(s) (signature rules version %d;",
             QB_RULES_VERSION);
    if (!strstr(text, want) || !strstr(text, "\n  signal SIGSEGV: fx_crash_real\n") ||
        !strstr(text, "component fx, 3 report(s), 1 installation(s)") ||
        !strstr(text, "; regressed: seen again after a build where it was quiet") ||
        !strstr(text, "#0  fx_crash_real+"))
        fail_msg("the bucket view:\n%s", text);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/qtn-report-%d", (int)getpid());
    snprintf(db, sizeof db, "%s/store.db", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "rm -rf %s && mkdir -p %s && %s run --max-restarts 0 --store %s -- %s always-crash "
             "2>/dev/null",
             dir, dir, QTN_BIN, db, CRASHY);
    int st = system(cmd); /* a store with one host crash in it */
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 111) {
        fprintf(stderr, "test_report: could not make a store (status %d)\n", st);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_since_is_read_strictly),
        cmocka_unit_test(test_latest_is_read_strictly),
        cmocka_unit_test(test_default_store_is_qtn_store),
        cmocka_unit_test(test_buckets),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (!r && system(cmd) != 0)
        r = 1;
    return r;
}
