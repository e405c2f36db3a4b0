/* test_store.c - the SQLite store: reports stored once, schema versions
 * checked, a corrupt file or another application's database refused with a
 * clear error (and left as it was), parked domains reported. */
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

/* A new store at path, opened to write; fails the test when it cannot be. */
static qs_store *open_fresh(void) {
    fresh();
    char err[512];
    qs_store *s = qs_open(path, 0, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    return s;
}

static int pragma(qs_store *s, const char *name) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA %s", name);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(qs_db(s), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
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
    char err[512];
    qs_store *s = open_fresh();
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
                 "", "", 0, 0};
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
    char err[512];
    qs_store *s = open_fresh();
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
    char err[512];
    qs_store *s = open_fresh();
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
    assert_int_equal(pragma(s, "user_version"), QS_SCHEMA_VERSION);
    assert_int_equal(pragma(s, "application_id"), QS_APPLICATION_ID);
    qs_close(s);
}

/* A store of schema 3, as quarantine made them before stores had an
 * application id (and before parked domains): taken as a store, migrated,
 * given the id. */
static void test_version_3_without_application_id(void **state) {
    (void)state;
    char err[512];
    qs_store *s = open_fresh();
    qs_stat t = {"i", "r", 7, 100, "b", "c=1", "c", 1, 3, 3, 30, 0, "", "p", 0, 0};
    assert_int_equal(qs_put_stat(s, &t, err, sizeof err), 1);
    qs_close(s);
    sqlite3 *db; /* back to what a schema-3 store is */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "ALTER TABLE stats DROP COLUMN parked;"
                                      "ALTER TABLE stats DROP COLUMN parked_calls;"
                                      "DROP TABLE outbox; DROP TABLE fleet_evidence;"
                                      "ALTER TABLE plan_changes DROP COLUMN ack_shipped;"
                                      "PRAGMA application_id=0; PRAGMA user_version=3;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    s = qs_open(path, 1, err, sizeof err); /* a reader: migrate it first */
    assert_null(s);
    assert_non_null(strstr(err, "an older schema"));
    s = qs_open(path, 0, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    assert_int_equal(pragma(s, "user_version"), QS_SCHEMA_VERSION);
    assert_int_equal(pragma(s, "application_id"), QS_APPLICATION_ID);
    char *buf = print(s, 1);
    has(buf, "{\"component\":\"c\",\"domain\":1,\"calls\":3,");
    has(buf, "\"parked\":false,\"parked_calls\":0}");
    free(buf);
    qs_close(s);
}

/* The bytes of a file (to check it was left as it was). */
static char *bytes_of(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    char *b = NULL;
    size_t cap = 0;
    *n = 0;
    for (;;) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 65536;
            b = realloc(b, cap);
            assert_non_null(b);
        }
        size_t k = fread(b + *n, 1, cap - *n, f);
        if (!k)
            break;
        *n += k;
    }
    fclose(f);
    return b;
}

/* Another application's SQLite file, given as the store: refused, named,
 * and left exactly as it was (no tables added, no user_version, no WAL),
 * for writing and for reading. */
static void refused(const char *sql, const char *why) {
    fresh();
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
    size_t n0, n1;
    char *before = bytes_of(path, &n0), err[512], want[1024];
    snprintf(want, sizeof want, "store %s: not a quarantine store: %s", path, why);
    for (int ro = 0; ro < 2; ro++) {
        assert_null(qs_open(path, ro, err, sizeof err));
        if (strcmp(err, want))
            fail_msg("got:  %s\nwant: %s", err, want);
    }
    char *after = bytes_of(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    char wal[96];
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_int_equal(access(wal, F_OK), -1);
    free(before);
    free(after);
}

static void test_foreign_databases_are_refused(void **state) {
    (void)state;
    /* an application's own database: tables, rows, no user_version */
    refused("CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT, body TEXT);"
            "CREATE TABLE tags (note INTEGER REFERENCES notes (id), tag TEXT);"
            "CREATE INDEX tags_tag ON tags (tag);"
            "INSERT INTO notes VALUES (1, 'shopping', 'milk'), (2, 'todo', 'call');"
            "INSERT INTO tags VALUES (1, 'home');",
            "it holds tables of another application (notes, tags)");
    /* one that numbers its schema too, and has a table named as ours */
    refused("CREATE TABLE reports (day TEXT, total REAL); CREATE TABLE spools (x);"
            "INSERT INTO reports VALUES ('mon', 1.5); PRAGMA user_version=2;",
            "it holds tables of another application (reports, spools)");
    /* a GeoPackage: its own application id */
    refused("PRAGMA application_id=1196444487; PRAGMA user_version=10300;"
            "CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY,"
            " data_type TEXT NOT NULL, identifier TEXT UNIQUE);",
            "its application id is 0x47504b47, another application's (quarantine's is "
            "0x51544e53)");
    /* a schema version and nothing else */
    refused("PRAGMA user_version=99", "its user_version is 99, but it holds none of "
                                      "quarantine's tables");
    /* nothing at all, like an empty file: a new store */
    qs_close(open_fresh());
}

/* A pid that comes again is another process: each one's last snapshot
 * counts. A domain parked at a process's last snapshot is listed: which
 * component, since when (the report that parked it), the calls that failed
 * at once meanwhile. */
static void test_parked_domains(void **state) {
    (void)state;
    char err[512];
    qs_store *s = open_fresh();
    const int64_t T = 1800000000000000000LL, S = 1000000000LL; /* 2027-01-15 08:00:00 UTC */
    const struct {
        const char *proc, *comp;
        int64_t t, calls, parked_calls;
        int parked;
    } rows[] = {
        {"p1", "ts", T + 100, 10, 0, 0},         {"p1", "ts", T + 300 * S, 40, 5, 1},
        {"p1", "ts", T + 600 * S, 40, 12, 1},      {"p1", "other", T + 600 * S, 7, 12, 1},
        {"p2", "ts", T + 50, 30, 0, 0},          /* the same pid, another process */
        {"p2", "ts", T + 700 * S, 50, 4, 0},       /* unparked again */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        qs_stat t = {"i", "r", 42, rows[i].t, "b", "ts=1 other=1", rows[i].comp, 1,
                     rows[i].calls, rows[i].calls, 100, 0, "", rows[i].proc,
                     rows[i].parked_calls, rows[i].parked};
        assert_int_equal(qs_put_stat(s, &t, err, sizeof err), 1);
    }
    qs_report park = {"i", "r", 42, 3, T + 200 * S, "signal", "ts", "ts_run", 11, 1, 1000, 1,
                      "SIGSEGV; restarted too often: parked", "{\"parked\":true}", "b",
                      "ts=1 other=1", 0, NULL, 0, NULL, "p1"};
    assert_int_equal(qs_put(s, &park, err, sizeof err), 1);
    char *buf = print(s, 0);
    has(buf, "ts               domain 1          90         90        1"); /* 40 + 50 */
    has(buf, "\nparked domains (their calls fail at once, with the fault value, until a plan"
             " names the domain again):\n");
    has(buf, "  ts               domain 1  since 2027-01-15 08:03:20 UTC  12 call(s) failed while"
             " parked  (pid 42)\n");
    has(buf, "  other            domain 1  since 2027-01-15 08:03:20 UTC  12 call(s) failed");
    free(buf);
    buf = print(s, 1);
    has(buf, "\"host_crashes\":0,\"parked_domains\":[{\"component\":\"other\",\"domain\":1,"
             "\"pid\":42,\"proc\":\"p1\",\"since_ns\":1800000200000000000,"
             "\"calls_failed_while_parked\":12},{\"component\":\"ts\",");
    has(buf, "{\"component\":\"ts\",\"domain\":1,\"calls\":90,\"crossings\":90,");
    has(buf, "\"parked\":false,\"parked_calls\":16}"); /* the newest snapshot: p2, unparked */
    free(buf);
    qs_close(s);
}

/* A store a newer quarantine made (ours: its application id). */
static void test_newer_schema_is_refused(void **state) {
    (void)state;
    fresh();
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA application_id=1364479571; PRAGMA user_version=99",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char err[512];
    assert_null(qs_open(path, 0, err, sizeof err));
    char want[96];
    snprintf(want, sizeof want, "schema version 99 is newer than this quarantine's (%d)",
             QS_SCHEMA_VERSION);
    assert_non_null(strstr(err, want));
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
        cmocka_unit_test(test_version_3_without_application_id),
        cmocka_unit_test(test_newer_schema_is_refused),
        cmocka_unit_test(test_foreign_databases_are_refused),
        cmocka_unit_test(test_parked_domains),
        cmocka_unit_test(test_corrupt_file_is_refused),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    fresh();
    return r;
}
