/* test_report.c - quarantine report's options: durations and counts read
 * strictly (no nan, no inf, no overflow, no negative, no trailing words),
 * each bad one refused with a message naming it and exit status 2. */
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
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (!r && system(cmd) != 0)
        r = 1;
    return r;
}
