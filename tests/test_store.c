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

static char path[64];

static void fresh(void) {
    char p[80];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static void test_put_once_and_print(void **state) {
    (void)state;
    fresh();
    char err[512];
    qs_store *s = qs_open(path, 0, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    qs_report r = {"host-a", "run-1", 42, 1, 1000, "signal", "codec", "codec_pack", 11, 1,
                   250000, 3, "SIGSEGV (Segmentation fault)", "{\"report\":1}"};
    assert_int_equal(qs_put(s, &r, err, sizeof err), 1);
    assert_int_equal(qs_put(s, &r, err, sizeof err), 0); /* the same report: stored once */
    r.seq = 2;
    assert_int_equal(qs_put(s, &r, err, sizeof err), 1);
    qs_report h = {"host-a", "run-1", 42, 1, 2000, "host-crash", "", "", 6, 0, 0, 0,
                   "the program died of SIGABRT", NULL};
    assert_int_equal(qs_put(s, &h, err, sizeof err), 1);
    qs_close(s);
    s = qs_open(path, 1, err, sizeof err); /* a reader */
    if (!s)
        fail_msg("%s", err);
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    assert_int_equal(qs_print(s, o, 0, 0, 10, err, sizeof err), 0);
    fclose(o);
    assert_non_null(strstr(buf, "codec                         2             0            6"));
    assert_non_null(strstr(buf, "(unknown)                     0             1"));
    assert_non_null(strstr(buf, "codec.codec_pack  SIGSEGV"));
    free(buf);
    o = open_memstream(&buf, &len);
    assert_int_equal(qs_print(s, o, 1, 0, 10, err, sizeof err), 0);
    fclose(o);
    assert_non_null(strstr(buf, "{\"components\":[{\"component\":\"codec\",\"domain_faults\":2"));
    assert_non_null(strstr(buf, "\"latest\":[{\"time_ns\":2000,\"kind\":\"host-crash\""));
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
    assert_non_null(strstr(err, "schema version 99 is newer than this quarantine's (1)"));
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
        cmocka_unit_test(test_newer_schema_is_refused),
        cmocka_unit_test(test_corrupt_file_is_refused),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    fresh();
    return r;
}
