/* test_store.c - the SQLite store: reports stored once, schema versions
 * checked, and a corrupt or foreign file refused with a clear error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "store_v1.h"

static char path[64];

static void fresh(void) {
    char p[80];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static char *print(qs_store *s, int json) {
    char *buf = NULL, err[512];
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (qs_print(s, o, json, 0, 10, err, sizeof err))
        fail_msg("%s", err);
    fclose(o);
    return buf;
}

/* Asserts that text contains needle; shows the text when it does not. */
static void has(const char *text, const char *needle) {
    if (!strstr(text, needle))
        fail_msg("missing: %s\nin:\n%s", needle, text);
}

static void test_put_once_and_print(void **state) {
    (void)state;
    fresh();
    char err[512];
    qs_store *s = qs_open(path, 0, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    qs_frame fr[2] = {{0x401000, "codec_pack+0x10 (codec.c:12)", ""},
                      {0x402000, "main+0x20 (main.c:40)", ""}};
    struct qs_blame bl = {"codec", 1, "", 0};
    qs_report r = {"host-a", "run-1", 42, 1, 1000, "signal", "codec", "codec_pack", 11, 1,
                   250000, 3, "SIGSEGV (Segmentation fault)", "{\"report\":1}",
                   "abc123", "codec=1", 2, fr, 1, &bl, ""};
    assert_int_equal(qs_put(s, &r, err, sizeof err), 1);
    assert_int_equal(qs_put(s, &r, err, sizeof err), 0); /* the same report: stored once */
    r.seq = 2;
    assert_int_equal(qs_put(s, &r, err, sizeof err), 1);
    /* a host crash with two components on the stack, and one in no component */
    qs_frame hf[3] = {{0x403000, "parse_field+0x8 (parser.c:7)", "parser"},
                      {0x404000, "render_page+0x30 (render.c:9)", "render"},
                      {0x405000, "main+0x40 (main.c:50)", ""}};
    struct qs_blame hb[2] = {{"parser", 2.0 / 3, "", 0}, {"render", 1.0 / 3, "", 0}};
    qs_report h = {"host-a", "run-1", 43, 0, 2000, "host-crash", "parser", "", 11, 0, 0, 0,
                   "the program died of SIGSEGV", NULL, "abc123", "codec=1", 3, hf, 2, hb, ""};
    assert_int_equal(qs_put(s, &h, err, sizeof err), 1);
    qs_report u = {"host-a", "run-1", 44, 0, 3000, "host-crash", "", "", 6, 0, 0, 0,
                   "the program died of SIGABRT", NULL, "", "", 0, NULL, 0, NULL, ""};
    assert_int_equal(qs_put(s, &u, err, sizeof err), 1);
    /* statistics: two snapshots of one process; the table takes the last */
    qs_stat t = {"host-a", "run-1", 42, 500, "abc123", "codec=1", "codec", 1, 10, 10, 5000, 0,
                 "", ""};
    assert_int_equal(qs_put_stat(s, &t, err, sizeof err), 1);
    assert_int_equal(qs_put_stat(s, &t, err, sizeof err), 0);
    t.time_ns = 900;
    t.calls = t.crossings = 100;
    assert_int_equal(qs_put_stat(s, &t, err, sizeof err), 1);
    qs_close(s);
    s = qs_open(path, 1, err, sizeof err); /* a reader */
    if (!s)
        fail_msg("%s", err);
    char *buf = print(s, 0);
    has(buf, "codec            domain 1         100        100        2");
    has(buf, "parser           -                  0          0        0"
                                "       0.67 (33%)");
    has(buf, "render           -                  0          0        0"
                                "       0.33 (17%)");
    has(buf, "host crashes: 2");
    has(buf, "codec.codec_pack  SIGSEGV");
    has(buf, "#0  0x403000           parse_field+0x8 (parser.c:7)  [parser]");
    has(buf, "#1  0x404000           render_page+0x30 (render.c:9)  [render]");
    free(buf);
    buf = print(s, 1);
    has(buf, "{\"components\":[{\"component\":\"codec\",\"domain\":1,"
                                "\"calls\":100,\"crossings\":100,\"domain_faults\":2");
    has(buf, "\"host_crashes_blamed\":0.6667,\"blame_fraction\":0.3333");
    has(buf, "\"latest\":[{\"time_ns\":3000,\"kind\":\"host-crash\"");
    has(buf, "{\"addr\":\"0x403000\",\"symbol\":\"parse_field+0x8 "
                                "(parser.c:7)\",\"component\":\"parser\"}");
    free(buf);
    qs_close(s);
}

/* Spool offsets go with the records in one transaction: a rollback takes
 * back both. */
static void test_spool_offsets_are_transactional(void **state) {
    (void)state;
    fresh();
    char err[512];
    qs_store *s = qs_open(path, 0, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    int64_t done = -1;
    assert_int_equal(qs_spool_get(s, "a.spool", &done, err, sizeof err), 0);
    assert_int_equal(done, 0);
    assert_int_equal(qs_begin(s, err, sizeof err), 0);
    qs_report r = {"i", "r", 1, 1, 1, "signal", "c", "e", 11, 1, 0, 0, "x", NULL,
                   "", "", 0, NULL, 0, NULL, ""};
    assert_int_equal(qs_put(s, &r, err, sizeof err), 1);
    assert_int_equal(qs_spool_set(s, "a.spool", 120, err, sizeof err), 0);
    qs_rollback(s);
    assert_int_equal(qs_spool_get(s, "a.spool", &done, err, sizeof err), 0);
    assert_int_equal(done, 0);
    assert_int_equal(qs_put(s, &r, err, sizeof err), 1); /* it was taken back too */
    assert_int_equal(qs_begin(s, err, sizeof err), 0);
    assert_int_equal(qs_spool_set(s, "a.spool", 120, err, sizeof err), 0);
    assert_int_equal(qs_commit(s, err, sizeof err), 0);
    assert_int_equal(qs_spool_get(s, "a.spool", &done, err, sizeof err), 0);
    assert_int_equal(done, 120);
    assert_int_equal(qs_spool_forget(s, "a.spool", err, sizeof err), 0);
    assert_int_equal(qs_spool_get(s, "a.spool", &done, err, sizeof err), 0);
    assert_int_equal(done, 0);
    qs_close(s);
}

/* A store another process holds locked: a write fails in bounded time with
 * a clear error, and succeeds once the lock is gone. */
static void test_locked_store_fails_clearly(void **state) {
    (void)state;
    fresh();
    char err[512];
    qs_store *s = qs_open(path, 0, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    sqlite3 *other;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    qs_busy_ms(s, 50);
    qs_report r = {"i", "r", 1, 1, 1, "signal", "c", "e", 11, 1, 0, 0, "x", NULL,
                   "", "", 0, NULL, 0, NULL, ""};
    assert_int_equal(qs_begin(s, err, sizeof err), -1);
    assert_non_null(strstr(err, "database is locked"));
    assert_non_null(strstr(err, path));
    assert_int_equal(qs_put(s, &r, err, sizeof err), -1);
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(qs_put(s, &r, err, sizeof err), 1);
    qs_close(s);
}

/* A version-1 store (before statistics and backtraces) is migrated, and
 * its reports kept. */
static void test_version_1_is_migrated(void **state) {
    (void)state;
    fresh();
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *v1 = STORE_V1;
    assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[512];
    qs_store *s = qs_open(path, 0, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    qs_close(s);
    s = qs_open(path, 1, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    char *buf = print(s, 0);
    assert_non_null(strstr(buf, "oldcomp          -                  0          0        1"));
    free(buf);
    qs_close(s);
}

static void test_newer_schema_is_refused(void **state) {
    (void)state;
    fresh();
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[512];
    assert_null(qs_open(path, 0, err, sizeof err));
    assert_non_null(strstr(err, "schema version 99 is newer than this quarantine's (3)"));
    assert_non_null(strstr(err, path));
}

static void test_corrupt_file_is_refused(void **state) {
    (void)state;
    fresh();
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    char err[512];
    assert_null(qs_open(path, 0, err, sizeof err));
    assert_non_null(strstr(err, "not a quarantine store"));
    assert_null(qs_open(path, 1, err, sizeof err));
    fresh();
    assert_null(qs_open("/proc/no/such/dir/store.db", 0, err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/qtn-store-test-%d.db", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_once_and_print),
        cmocka_unit_test(test_spool_offsets_are_transactional),
        cmocka_unit_test(test_locked_store_fails_clearly),
        cmocka_unit_test(test_version_1_is_migrated),
        cmocka_unit_test(test_newer_schema_is_refused),
        cmocka_unit_test(test_corrupt_file_is_refused),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    fresh();
    return r;
}
