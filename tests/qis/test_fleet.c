/* test_fleet.c - the fleet's PostgreSQL store, on a real server the test
 * starts: the schema made once by writers starting at once, each record
 * stored exactly once when 20 installations ship their outboxes at once
 * (in small interleaved batches, some shipped twice as after a crash
 * between the fleet's commit and the outbox's mark), the fleet's pooled
 * evidence aggregated for one installation; a wrong password, an
 * unreachable server, a newer schema and another application's tables
 * refused with errors that say what and where, never the password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "pg.h"
#include "pgtest.h"
#include "ship.h"
#include "store.h"
#include "storeq.h"

#define INSTALLATIONS 20
#define REPORTS 30 /* per installation */
#define SNAPSHOTS 10

static tpg pg;
static char dir[64];

static int setup(void **state) {
    (void)state;
    tpg_start(&pg);
    snprintf(dir, sizeof dir, "/tmp/qtn-fleet-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tpg_destroy(&pg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) ? -1 : 0;
}

/* Installation k's outbox: the shared build's components, a start,
 * REPORTS domain faults blamed on "codec" (and a host crash blamed on
 * "parser"), SNAPSHOTS cumulative statistics snapshots. */
static qs_store *outbox_of(int k, char *path, size_t len) {
    char err[512], inst[16], run[16];
    snprintf(path, len, "%s/outbox-%d.db", dir, k);
    snprintf(inst, sizeof inst, "inst-%02d", k);
    snprintf(run, sizeof run, "run-%d", k);
    qs_store *s = qs_open(path, 0, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    qs_component c1 = {"build-1", "codec", "code-codec", 1, "[\"codec_pack\"]"};
    qs_component c2 = {"build-1", "parser", "code-parser", 1, "[\"parse\"]"};
    assert_int_equal(qs_put_component(s, &c1, err, sizeof err), 1);
    assert_int_equal(qs_put_component(s, &c2, err, sizeof err), 1);
    qs_start st = {inst, run, "proc-1", 100 + k, "build-1", "/srv/server", 1000, 5, 0};
    assert_int_equal(qs_put_start(s, &st, err, sizeof err), 1);
    int64_t t0 = (int64_t)time(NULL) * 1000000000LL;
    for (int i = 0; i < REPORTS; i++) {
        qs_frame fr[2] = {{0x401000, "codec_pack+0x10 (codec.c:12)", "codec"},
                          {0x402000, "main+0x20 (main.c:40)", ""}};
        struct qs_blame bl = {"codec", 1, "code-codec", 0};
        qs_report r = {inst,         run,       100 + k, i + 1,  t0 + i, "signal",  "codec",
                       "codec_pack", 11,        1,       250000, 1,      "SIGSEGV", "{}",
                       "build-1",    "codec=1", 2,       fr,     1,      &bl,       "proc-1"};
        assert_int_equal(qs_put(s, &r, err, sizeof err), 1);
    }
    struct qs_blame hb[2] = {{"parser", 0.75, "code-parser", 0}, {"codec", 0.25, "code-codec", 1}};
    qs_report h = {inst,
                   run,
                   100 + k,
                   0,
                   t0 + 99,
                   "host-crash",
                   "parser",
                   "",
                   11,
                   0,
                   0,
                   0,
                   "the program died of SIGSEGV",
                   NULL,
                   "build-1",
                   "",
                   0,
                   NULL,
                   2,
                   hb,
                   "proc-1"};
    assert_int_equal(qs_put(s, &h, err, sizeof err), 1);
    for (int i = 1; i <= SNAPSHOTS; i++) {
        qs_stat a = {inst, run,     100 + k, t0 + 1000 * i, "build-1", "codec=1",    "codec",
                     1,    100 * i, 100 * i, 1000,          i,         "code-codec", "proc-1",
                     0,    0};
        qs_stat b = {inst, run, 100 + k, t0 + 1000 * i, "build-1", "codec=1", "parser", 0, 10 * i,
                     0,    0,   0,       "code-parser", "proc-1",  0,         0};
        qs_edge_stat e = {inst,    run,          100 + k, t0 + 1000 * i, "program",
                          "codec", "codec_pack", 100 * i, 100 * i,       1000,
                          0,       64,           500,     "proc-1"};
        qs_proc_stat p = {inst, run,    "proc-1", 100 + k,       t0 + 1000 * i,
                          t0,   50 * i, 1000 * i, t0 + 1000 * i, 2};
        assert_int_equal(qs_put_stat(s, &a, err, sizeof err), 1);
        assert_int_equal(qs_put_stat(s, &b, err, sizeof err), 1);
        assert_int_equal(qs_put_edge_stat(s, &e, err, sizeof err), 1);
        assert_int_equal(qs_put_proc_stat(s, &p, err, sizeof err), 1);
    }
    qs_plan_change pc = {inst, run, 1, t0 + 5, 100 + k, "adaptive", "", "codec=1", "faults", "{}"};
    assert_int_equal(qs_put_plan_change(s, &pc, err, sizeof err), 1);
    return s;
}

/* One installation: connects (the schema made by whoever is first), ships
 * in batches of 7 rows; every third batch is shipped again, as by a
 * shipper that died before marking it. 0 when all went. */
static int installation(int k) {
    char path[128], err[1024];
    qs_store *s = outbox_of(k, path, sizeof path);
    PGconn *c = qf_connect(pg.uri, err, sizeof err);
    if (!c) {
        fprintf(stderr, "installation %d: %s\n", k, err);
        return 1;
    }
    int n, round = 0;
    do {
        int64_t marks[7];
        static const char *const t[] = {"components", "starts",     "reports",     "stats",
                                        "edge_stats", "proc_stats", "plan_changes"};
        for (int i = 0; i < 7; i++)
            qs_outbox_get(s, t[i], &marks[i], err, sizeof err);
        n = qf_ship(s, pg.uri, c, 7, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "installation %d: %s\n", k, err);
            return 1;
        }
        if (n && ++round % 3 == 0) { /* as if the marks were never moved: again */
            sqlite3_exec(qs_db(s), "DELETE FROM outbox", NULL, NULL, NULL);
            for (int i = 0; i < 7; i++)
                qs_outbox_set(s, t[i], marks[i], err, sizeof err);
            if (qf_ship(s, pg.uri, c, 7, err, sizeof err) < 0)
                return 1;
        }
    } while (n > 0);
    /* the program's answer to the plan change comes after it was shipped */
    if (qs_put_plan_ack(s, "", "", 0, 1, NULL, err, sizeof err) < 0)
        return 1;
    char inst[16], run[16];
    snprintf(inst, sizeof inst, "inst-%02d", k);
    snprintf(run, sizeof run, "run-%d", k);
    if (qs_put_plan_ack(s, inst, run, 1, 1, NULL, err, sizeof err) < 0 ||
        qf_ship(s, pg.uri, c, 7, err, sizeof err) != 1 || qf_unshipped(s) != 0) {
        fprintf(stderr, "installation %d: the acknowledgement: %s\n", k, err);
        return 1;
    }
    PQfinish(c);
    qs_close(s);
    return 0;
}

static void test_twenty_installations_at_once(void **state) {
    (void)state;
    pid_t kids[INSTALLATIONS];
    for (int k = 0; k < INSTALLATIONS; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0)
            _exit(installation(k));
    }
    for (int k = 0; k < INSTALLATIONS; k++) {
        int st;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_int_equal(tpg_one(&pg, NULL, "SELECT version FROM quarantine_schema"),
                     QF_SCHEMA_VERSION);
    assert_int_equal(tpg_one(&pg, NULL, "SELECT COUNT(*) FROM quarantine_schema"), 1);
    assert_int_equal(tpg_one(&pg, NULL, "SELECT COUNT(*) FROM reports"),
                     INSTALLATIONS * (REPORTS + 1));
    assert_int_equal(tpg_one(&pg, NULL,
                             "SELECT COUNT(DISTINCT (installation, run, proc, pid,"
                             " kind, seq)) FROM reports"),
                     INSTALLATIONS * (REPORTS + 1));
    assert_int_equal(tpg_one(&pg, NULL, "SELECT COUNT(*) FROM report_frames"),
                     INSTALLATIONS * REPORTS * 2);
    assert_int_equal(tpg_one(&pg, NULL, "SELECT COUNT(*) FROM report_blame"),
                     INSTALLATIONS * (REPORTS + 2));
    assert_int_equal(tpg_one(&pg, NULL, "SELECT COUNT(*) FROM stats"),
                     INSTALLATIONS * SNAPSHOTS * 2);
    assert_int_equal(tpg_one(&pg, NULL, "SELECT COUNT(*) FROM edge_stats"),
                     INSTALLATIONS * SNAPSHOTS);
    assert_int_equal(tpg_one(&pg, NULL, "SELECT COUNT(*) FROM proc_stats"),
                     INSTALLATIONS * SNAPSHOTS);
    assert_int_equal(tpg_one(&pg, NULL, "SELECT COUNT(*) FROM starts"), INSTALLATIONS);
    assert_int_equal(tpg_one(&pg, NULL, "SELECT COUNT(*) FROM components"), 2);
    assert_int_equal(tpg_one(&pg, NULL, "SELECT COUNT(*) FROM plan_changes WHERE applied = 1"),
                     INSTALLATIONS);
    /* a report's details hang off the fleet's id of it, not the outbox's */
    assert_int_equal(tpg_one(&pg, NULL,
                             "SELECT COUNT(*) FROM report_frames f JOIN reports r ON"
                             " r.id = f.report_id WHERE r.component = 'codec'"),
                     INSTALLATIONS * REPORTS * 2);

    /* installation 0's view of the rest: 19 installations' evidence */
    char path[128], err[1024];
    snprintf(path, sizeof path, "%s/outbox-0.db", dir);
    qs_store *s = qs_open(path, 0, err, sizeof err);
    assert_non_null(s);
    PGconn *c = qf_connect(pg.uri, err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    int64_t now = (int64_t)time(NULL) * 1000000000LL;
    assert_int_equal(qf_fetch_pool(s, pg.uri, c, "inst-00", 0, now, err, sizeof err), 2);
    assert_int_equal(tsq_file(path, "SELECT CAST(faults AS INTEGER) FROM fleet_evidence WHERE"
                                    " code_id = 'code-codec'"),
                     (INSTALLATIONS - 1) * REPORTS);
    assert_int_equal(tsq_file(path, "SELECT CAST(host_blame * 100 AS INTEGER) FROM"
                                    " fleet_evidence WHERE code_id = 'code-codec'"),
                     (INSTALLATIONS - 1) * 25);
    assert_int_equal(tsq_file(path, "SELECT CAST(calls AS INTEGER) FROM fleet_evidence WHERE"
                                    " code_id = 'code-codec'"),
                     (INSTALLATIONS - 1) * 100 * SNAPSHOTS);
    assert_int_equal(tsq_file(path, "SELECT installations FROM fleet_evidence WHERE"
                                    " code_id = 'code-parser'"),
                     INSTALLATIONS - 1);
    /* discounted: a half-life of an hour, the evidence an hour old, counts half */
    assert_int_equal(
        qf_fetch_pool(s, pg.uri, c, "inst-00", 3600, now + 3600000000000LL, err, sizeof err), 2);
    assert_int_equal(tsq_file(path, "SELECT CAST(ROUND(faults) AS INTEGER) FROM fleet_evidence"
                                    " WHERE code_id = 'code-codec'"),
                     (INSTALLATIONS - 1) * REPORTS / 2);
    PQfinish(c);
    qs_close(s);
}

/* Asserts that text contains needle; shows the text when it does not. */
static void has(const char *text, const char *needle) {
    if (!strstr(text, needle))
        fail_msg("missing: %s\nin: %s", needle, text);
}

static void test_clear_errors(void **state) {
    (void)state;
    char uri[300], err[1024];
    /* a wrong password: said, the password not */
    tpg_uri(&pg, NULL, "wrong-pw-123", uri, sizeof uri);
    assert_null(qf_connect(uri, err, sizeof err));
    char want[200];
    snprintf(want, sizeof want,
             "fleet store postgresql://%s@127.0.0.1:%d/postgres: cannot connect:", TPG_USER,
             pg.port);
    has(err, want);
    has(err, "password authentication failed");
    assert_null(strstr(err, "wrong-pw-123"));
    /* nothing listening: refused at once */
    snprintf(uri, sizeof uri, "postgresql://%s:%s@127.0.0.1:%d/postgres", TPG_USER, TPG_PASSWORD,
             tpg_free_port());
    time_t t0 = time(NULL);
    assert_null(qf_connect(uri, err, sizeof err));
    assert_true(time(NULL) - t0 <= QF_CONNECT_TIMEOUT_S + 1);
    has(err, "cannot connect:");
    assert_null(strstr(err, TPG_PASSWORD));
    /* a host that does not answer: given up after connect_timeout */
    snprintf(uri, sizeof uri, "postgresql://%s:%s@192.0.2.1:5432/postgres?connect_timeout=1",
             TPG_USER, TPG_PASSWORD);
    t0 = time(NULL);
    assert_null(qf_connect(uri, err, sizeof err));
    assert_true(time(NULL) - t0 <= 3);
    has(err, "fleet store postgresql://qtn@192.0.2.1:5432/postgres: cannot connect:");
    /* not a URI libpq reads */
    assert_null(qf_connect("postgresql://qtn:pw@[::1/x", err, sizeof err));
    has(err, "not a URI libpq can read");
    /* a newer schema: refused, left as it was */
    tpg_one(&pg, NULL, "CREATE DATABASE newer");
    tpg_one(&pg, "newer",
            "CREATE TABLE quarantine_schema (version BIGINT NOT NULL);"
            "INSERT INTO quarantine_schema VALUES (99)");
    tpg_uri(&pg, "newer", NULL, uri, sizeof uri);
    assert_null(qf_connect(uri, err, sizeof err));
    has(err, "/newer: cannot use it: schema version 99 is newer than this quarantine's (1)");
    assert_int_equal(tpg_one(&pg, "newer",
                             "SELECT COUNT(*) FROM pg_tables WHERE tablename ="
                             " 'reports'"),
                     0);
    /* another application's tables: refused, left as they were */
    tpg_one(&pg, NULL, "CREATE DATABASE other");
    tpg_one(&pg, "other", "CREATE TABLE reports (title TEXT)");
    tpg_uri(&pg, "other", NULL, uri, sizeof uri);
    assert_null(qf_connect(uri, err, sizeof err));
    has(err, "/other: not a quarantine fleet store: it has tables named as quarantine's");
    assert_int_equal(tpg_one(&pg, "other",
                             "SELECT COUNT(*) FROM pg_tables WHERE tablename ="
                             " 'quarantine_schema'"),
                     0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twenty_installations_at_once),
        cmocka_unit_test(test_clear_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
