/* test_fleet_run.c - quarantine run with a fleet's store, a real
 * PostgreSQL the test starts: the records go to the outbox and are
 * shipped; PostgreSQL stopped and started again in the middle of a run
 * loses nothing and stores nothing twice (the fleet's counts are the
 * outbox's); a wrong password, an unreachable server and a database with a
 * newer schema are said clearly (never the password) while the program is
 * supervised on, and what waited in the outbox is shipped by a later run;
 * quarantine fleet status, report and plan read the fleet back; 20
 * supervisors of 20 installations at once store each record once; a
 * server that stops answering holds nothing up. */
#include <setjmp.h>
#include <signal.h>
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

#include "pgtest.h"
#include "storeq.h"

static tpg pg;
static char dir[64], outbox[96], logpath[96], log_text[1 << 18];

static int setup(void **state) {
    (void)state;
    tpg_start(&pg);
    snprintf(dir, sizeof dir, "/tmp/qtn-fleetrun-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(logpath, sizeof logpath, "%s/log", dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tpg_destroy(&pg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) ? -1 : 0;
}

static void slurp(void) {
    FILE *f = fopen(logpath, "r");
    size_t n = f ? fread(log_text, 1, sizeof log_text - 1, f) : 0;
    log_text[n] = 0;
    if (f)
        fclose(f);
}

static void has(const char *needle) {
    if (!strstr(log_text, needle))
        fail_msg("missing: %s\nin:\n%s", needle, log_text);
}

/* Starts `quarantine run --store URI --outbox OUTBOX ARGS` in the
 * background, its log to logpath; its pid. */
static pid_t start(const char *uri, const char *name, const char *args) {
    snprintf(outbox, sizeof outbox, "%s/%s.db", dir, name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "QTN_QUIET_FAULTS=1 exec timeout 120 %s run --store '%s' --outbox %s"
             " --installation %s --stats-interval 0.2 %s 2>%s",
             QTN_BIN, uri, outbox, name, args, logpath);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return p;
}

static int finish(pid_t p) {
    int st;
    assert_int_equal(waitpid(p, &st, 0), p);
    slurp();
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static long long in_outbox(const char *sql) { return tsq_file(outbox, sql); }

/* Every table: as many rows in the fleet, for this installation, as in the
 * outbox, each once. */
static void fleet_has_the_outbox(const char *name) {
    static const char *const tables[] = {"reports",    "stats",  "edge_stats",
                                         "proc_stats", "starts", "plan_changes"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", tables[i]);
        long long here = in_outbox(sql);
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s WHERE installation = '%s'", tables[i],
                 name);
        long long there = tpg_one(&pg, NULL, sql);
        if (here != there)
            fail_msg("%s: %lld in the outbox, %lld in the fleet\n%s", tables[i], here, there,
                     log_text);
    }
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM report_frames f JOIN reports r ON r.id ="
             " f.report_id WHERE r.installation = '%s'",
             name);
    assert_int_equal(tpg_one(&pg, NULL, sql), in_outbox("SELECT COUNT(*) FROM report_frames"));
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM (SELECT DISTINCT run, proc, pid, kind, seq"
             " FROM reports WHERE installation = '%s') d",
             name);
    assert_int_equal(tpg_one(&pg, NULL, sql), in_outbox("SELECT COUNT(*) FROM reports"));
}

static void test_postgresql_stopped_and_started_again(void **state) {
    (void)state;
    pid_t p = start(pg.uri, "restarted", "-- " CRASHY " faults 40 75");
    struct timespec t = {1, 0}, back = {1, 500000000};
    nanosleep(&t, NULL);
    tpg_stop(&pg);
    nanosleep(&back, NULL);
    tpg_restart(&pg);
    assert_int_equal(finish(p), 0);
    has("event=fleet-connected store=postgresql://" TPG_USER "@127.0.0.1:");
    has("event=fleet-error fleet store postgresql://" TPG_USER "@127.0.0.1:");
    has(" (back)");
    assert_null(strstr(log_text, TPG_PASSWORD));
    assert_null(strstr(log_text, "event=fleet-held"));
    assert_int_equal(in_outbox("SELECT COUNT(*) FROM reports WHERE component = 'fx'"), 40);
    assert_true(in_outbox("SELECT COUNT(*) FROM stats") > 0);
    fleet_has_the_outbox("restarted");
}

static void test_wrong_password_then_right(void **state) {
    (void)state;
    char uri[300];
    tpg_uri(&pg, NULL, "not-the-pw", uri, sizeof uri);
    assert_int_equal(finish(start(uri, "wrongpw", "-- " CRASHY " isolated-fault")), 0);
    char want[200];
    snprintf(want, sizeof want,
             "event=fleet-error fleet store postgresql://%s@127.0.0.1:%d/"
             "postgres: cannot connect: ",
             TPG_USER, pg.port);
    has(want);
    has("password authentication failed for user");
    has("event=fleet-held rows=");
    has("event=fault "); /* supervised on */
    assert_null(strstr(log_text, "not-the-pw"));
    assert_int_equal(in_outbox("SELECT COUNT(*) FROM reports WHERE component = 'fx'"), 1);
    assert_int_equal(tpg_one(&pg, NULL,
                             "SELECT COUNT(*) FROM reports WHERE installation ="
                             " 'wrongpw'"),
                     0);
    /* the same outbox with the right password: what waited is shipped */
    assert_int_equal(finish(start(pg.uri, "wrongpw", "-- " CRASHY " exit 0")), 0);
    assert_null(strstr(log_text, "event=fleet-held"));
    fleet_has_the_outbox("wrongpw");
    assert_int_equal(tpg_one(&pg, NULL,
                             "SELECT COUNT(*) FROM reports WHERE installation ="
                             " 'wrongpw' AND component = 'fx'"),
                     1);
}

static void test_unreachable_and_newer_schema(void **state) {
    (void)state;
    char uri[300];
    snprintf(uri, sizeof uri, "postgresql://%s:%s@127.0.0.1:%d/postgres?connect_timeout=2",
             TPG_USER, TPG_PASSWORD, tpg_free_port());
    time_t t0 = time(NULL);
    assert_int_equal(finish(start(uri, "unreachable", "-- " CRASHY " isolated-fault")), 0);
    assert_true(time(NULL) - t0 < 20);
    has("cannot connect: connection to server at \"127.0.0.1\"");
    has("event=fleet-held rows=");
    has("event=fault ");
    assert_int_equal(in_outbox("SELECT COUNT(*) FROM reports WHERE component = 'fx'"), 1);

    tpg_one(&pg, NULL, "CREATE DATABASE newer");
    tpg_one(&pg, "newer",
            "CREATE TABLE quarantine_schema (version BIGINT NOT NULL);"
            "INSERT INTO quarantine_schema VALUES (7)");
    tpg_uri(&pg, "newer", NULL, uri, sizeof uri);
    assert_int_equal(finish(start(uri, "newer", "-- " CRASHY " isolated-fault")), 0);
    has("/newer: cannot use it: schema version 7 is newer than this quarantine's");
    has("event=fleet-held rows=");
    has("event=fault ");
    assert_int_equal(in_outbox("SELECT COUNT(*) FROM reports WHERE component = 'fx'"), 1);
    assert_int_equal(tpg_one(&pg, "newer", "SELECT version FROM quarantine_schema"), 7);
}

/* A server that stops answering mid-run (frozen: its connections stay
 * open): the program is supervised on, the supervisor still exits in
 * bounded time, the records wait in the outbox and a later run ships them. */
static void test_postgresql_silent(void **state) {
    (void)state;
    char uri[300]; /* waiting on a server that does not answer: not long */
    snprintf(uri, sizeof uri, "postgresql://%s:%s@127.0.0.1:%d/postgres?connect_timeout=3",
             TPG_USER, TPG_PASSWORD, pg.port);
    pid_t p = start(uri, "silent", "-- " CRASHY " faults 20 100");
    struct timespec t = {0, 700000000};
    nanosleep(&t, NULL);
    tpg_freeze(&pg, 1);
    time_t t0 = time(NULL);
    int rc = finish(p);
    time_t took = time(NULL) - t0;
    tpg_freeze(&pg, 0);
    assert_int_equal(rc, 0);
    if (took > 30)
        fail_msg("the supervisor took %lld s to exit\n%s", (long long)took, log_text);
    /* held: the shipper stuck in a query given up on, or its connecting timed out */
    has("event=fleet-held ");
    assert_int_equal(in_outbox("SELECT COUNT(*) FROM reports WHERE component = 'fx'"), 20);
    assert_int_equal(finish(start(pg.uri, "silent", "-- " CRASHY " exit 0")), 0);
    fleet_has_the_outbox("silent");
    assert_int_equal(tpg_one(&pg, NULL, "SELECT COUNT(*) FROM reports WHERE installation ="
                                        " 'silent' AND component = 'fx'"),
                     20);
}

/* 20 installations' supervisors at once, each with its own outbox, all
 * shipping to the one fleet while their programs fault: each record once. */
static void test_twenty_supervisors_at_once(void **state) {
    (void)state;
    enum { N = 20, FAULTS = 6 };
    pid_t kids[N];
    char logs[N][sizeof logpath], uri[300];
    long long total = 0;
    /* 20 at once on 2 cores (under a sanitizer too): time to connect */
    snprintf(uri, sizeof uri, "postgresql://%s:%s@127.0.0.1:%d/postgres?connect_timeout=20",
             TPG_USER, TPG_PASSWORD, pg.port);
    for (int k = 0; k < N; k++) {
        char cmd[4096];
        snprintf(logs[k], sizeof logs[k], "%s/many-%02d.log", dir, k);
        snprintf(cmd, sizeof cmd,
                 "QTN_QUIET_FAULTS=1 exec timeout 120 %s run --store '%s' --outbox"
                 " %s/many-%02d.db --installation many-%02d --stats-interval 0.2 -- %s faults %d"
                 " 100 2>%s",
                 QTN_BIN, uri, dir, k, k, CRASHY, FAULTS, logs[k]);
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
    }
    for (int k = 0; k < N; k++) {
        int st;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        memcpy(logpath, logs[k], sizeof logpath);
        slurp();
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("installation %d: status %d\n%s", k, st, log_text);
        assert_null(strstr(log_text, "event=fleet-held"));
        char name[32];
        snprintf(name, sizeof name, "many-%02d", k);
        snprintf(outbox, sizeof outbox, "%s/many-%02d.db", dir, k);
        fleet_has_the_outbox(name);
        /* each fault its supervisor saw, stored (under load a slow restart
         * may make two crashes one deadline fault: not always FAULTS) */
        long long faults = in_outbox("SELECT COUNT(*) FROM reports WHERE component = 'fx'");
        int logged = 0;
        for (const char *f = log_text; (f = strstr(f, "event=fault ")); f++)
            logged++;
        if (faults != logged || faults < 1)
            fail_msg("installation %d: %lld faults stored, %d logged\n%s", k, faults, logged,
                     log_text);
        total += faults;
    }
    snprintf(logpath, sizeof logpath, "%s/log", dir);
    assert_int_equal(tpg_one(&pg, NULL,
                             "SELECT COUNT(*) FROM reports WHERE installation LIKE"
                             " 'many-%' AND component = 'fx'"),
                     total);
    assert_int_equal(tpg_one(&pg, NULL,
                             "SELECT COUNT(DISTINCT installation) FROM starts WHERE"
                             " installation LIKE 'many-%'"),
                     N);
    /* the build's components, registered by all 20: once */
    assert_int_equal(tpg_one(&pg, NULL,
                             "SELECT COUNT(*) FROM components WHERE component ="
                             " 'fx'"),
                     1);
}

/* Runs `quarantine ARGS`, its output (stdout and stderr) in log_text. */
static int qtn(const char *args) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>&1", QTN_BIN, args, logpath);
    int st = system(cmd);
    slurp();
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* What the runs above left in the fleet, read back: quarantine fleet
 * status, report and plan with the fleet's URI. */
static void test_fleet_status_report_plan(void **state) {
    (void)state;
    char args[512], want[200];
    snprintf(args, sizeof args, "fleet status --store '%s'", pg.uri);
    assert_int_equal(qtn(args), 0);
    snprintf(want, sizeof want,
             "fleet store postgresql://%s@127.0.0.1:%d/postgres: 2"
             " installations, 1 build\n",
             TPG_USER, pg.port);
    has(want);
    has("\n  restarted ");
    has("\n  wrongpw ");
    has("2 components, running on 2 installations");
    has("the plan the policy (cooperative) recommends for build ");
    has("\n  fx=1 fy=host\n");
    assert_null(strstr(log_text, TPG_PASSWORD));
    snprintf(args, sizeof args, "fleet status --json --store '%s'", pg.uri);
    assert_int_equal(qtn(args), 0);
    /* 40 faults of one run, 1 of the other: pooled over both */
    has("{\"component\":\"fx\",\"code_id\":\"@");
    has(":fx\",\"calls\":42,\"installations\":2,\"faults\":41,\"host_crashes_blamed\":0,");
    has("\"recommended\":{\"build_id\":\"");
    has("\"mode\":\"cooperative\",\"plan\":\"fx=1 fy=host\"");
    has("\"differences\":[]}");
    /* report and plan read the fleet's store too */
    snprintf(args, sizeof args, "report --store '%s'", pg.uri);
    assert_int_equal(qtn(args), 0);
    has("fx               domain 1          42         42       41 ");
    snprintf(args, sizeof args, "plan --store '%s' --installation restarted --explain", pg.uri);
    assert_int_equal(qtn(args), 0);
    has("fx=1 fy=host\n");
    has("pooled, sceptical prior"); /* the other installation's fault, from the fleet */
    /* bad input: said, exit codes as documented */
    assert_int_equal(qtn("fleet status --store /tmp/some.db"), 2);
    has("quarantine: fleet: status reads a fleet's store: --store postgresql://");
    char uri[300];
    tpg_uri(&pg, NULL, "bad-pw-77", uri, sizeof uri);
    snprintf(args, sizeof args, "fleet status --store '%s'", uri);
    assert_int_equal(qtn(args), 1);
    has("quarantine: fleet: status: fleet store postgresql://" TPG_USER "@127.0.0.1:");
    has("password authentication failed");
    assert_null(strstr(log_text, "bad-pw-77"));
    snprintf(args, sizeof args, "report --store '%s'", uri);
    assert_int_equal(qtn(args), 1);
    has("quarantine: report: fleet store postgresql://" TPG_USER "@127.0.0.1:");
    assert_null(strstr(log_text, "bad-pw-77"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postgresql_stopped_and_started_again),
        cmocka_unit_test(test_wrong_password_then_right),
        cmocka_unit_test(test_unreachable_and_newer_schema),
        cmocka_unit_test(test_fleet_status_report_plan),
        cmocka_unit_test(test_twenty_supervisors_at_once),
        cmocka_unit_test(test_postgresql_silent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
