/* test_policy_run.c - the policy end to end, with real processes: a program
 * whose parser crashes the host is isolated after one host crash
 * (optimistic); everything starts isolated and is merged into the host live
 * while 8 threads call (pessimistic); a boundary too dear for the budget is
 * not drawn, and `quarantine plan --explain` says so; a domain two
 * components share is split when its faults cannot be pinned on one; a new
 * build keeps the trust of the components whose code did not change. */
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

#include "storeq.h"

static char dir[64], db[128], logpath[128], log_text[1 << 20];

static void fresh(void) {
    char cmd[256];
    snprintf(dir, sizeof dir, "/tmp/qtn-policy-%d", (int)getpid());
    snprintf(db, sizeof db, "%s/store.db", dir);
    snprintf(logpath, sizeof logpath, "%s/log", dir);
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    assert_int_equal(system(cmd), 0);
}

static void slurp(void) {
    FILE *f = fopen(logpath, "r");
    size_t n = f ? fread(log_text, 1, sizeof log_text - 1, f) : 0;
    log_text[n] = 0;
    if (f)
        fclose(f);
}

/* Runs `quarantine SUBCOMMAND ARGS` with the store; its exit status, its
 * output (stdout and stderr) in log_text. */
static int qtn(const char *sub, const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "QTN_QUIET_FAULTS=1 timeout 120 %s %s --store %s %s >%s 2>&1",
             QTN_BIN, sub, db, args, logpath);
    int st = system(cmd);
    slurp();
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count(const char *needle) {
    int n = 0;
    for (const char *p = log_text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void has(const char *needle) {
    if (!strstr(log_text, needle))
        fail_msg("missing: %s\nin:\n%s", needle, log_text);
}

static long long query(const char *sql) { return tsq_file(db, sql); }

/* Optimistic: nothing is isolated until the parser crashes the host; the
 * program starts again with the parser isolated, and later bad lines cost
 * one call each, no host crash. */
static void test_optimistic(void **state) {
    (void)state;
    fresh();
    assert_int_equal(qtn("run", "--policy optimistic --budget 90 --backoff-ms 10 --stats-interval 0.5 -- " PROG
                                " run 4 4 --bad-every 700 --pause-us 1000"),
                     0);
    has("event=plan-applied");
    assert_int_equal(count("event=host-crash"), 1);
    assert_int_equal(count("event=crash pid"), 1);
    has("event=plan pid="); /* decided for the start after the crash */
    has(" when=restart from=\"parser=host render=host checksum=host g1=host g2=host\" "
        "to=\"parser=1 render=host checksum=host g1=host g2=host\"");
    has("parser: isolated: 1 host crash blamed");
    has("plan=\"parser=1 render=host checksum=host g1=host g2=host\""); /* started with it */
    /* after it: bad lines are faults of the parser's domain, one call each */
    assert_true(count("event=fault ") >= 2);
    /* each costs the calls in flight in its domain: the bad one, and at
     * most one per other calling thread */
    for (const char *p = log_text; (p = strstr(p, "component=parser entry=parse_line calls_failed="));
         p++) {
        int failed = atoi(p + strlen("component=parser entry=parse_line calls_failed="));
        assert_in_range(failed, 1, 4);
    }
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind = 'host-crash'"), 1);
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind = 'signal' AND component ="
                           " 'parser'"),
                     count("event=fault "));
    assert_int_equal(query("SELECT COUNT(*) FROM plan_changes WHERE pid = 0 AND to_plan LIKE"
                           " '%parser=1%'"),
                     1);
    has("wrong=0");
    /* quarantine report shows the change, with its reason */
    assert_int_equal(qtn("report", ""), 0);
    has("plan changes:");
    has("parser=host render=host checksum=host g1=host g2=host -> parser=1");
}

/* Pessimistic: everything is isolated at first, and merged into the host
 * live, without a restart, as calls without a fault accrue, while 8
 * threads call and check every answer. */
static void test_pessimistic(void **state) {
    (void)state;
    fresh();
    assert_int_equal(qtn("run", "--policy pessimistic --budget 95 --failure-weight 1 --prior-calls"
                                " 10 --confidence 0.5 --dwell 1s --min-gain 0 --stats-interval 0.5"
                                " -- " PROG " run 8 8 --pause-us 200"),
                     0);
    assert_int_equal(count("event=start"), 1); /* no restart */
    /* at first, before any rate is measured: everything */
    has("to=\"parser=1 render=2 checksum=3 g1=4 g2=5\"");
    has("call rate not measured yet: 100/s assumed (new code, sceptical prior)");
    has("event=plan-applied pid=");
    /* the merge: a later plan puts them back in the host */
    const char *iso = strstr(log_text, "plan=\"parser=1 render=2 checksum=3");
    assert_non_null(iso);
    const char *merged = strstr(iso, "event=plan-applied");
    while (merged && !strstr(merged, "checksum=host"))
        merged = strstr(merged + 1, "event=plan-applied");
    assert_non_null(merged);
    has("in the host: ");
    has("wrong=0"); /* calls in flight while the plan changed all answered right */
    assert_true(query("SELECT COUNT(*) FROM plan_changes WHERE applied = 1") >= 2);
}

/* The budget binds insurance: with a hard cap (--budget-binds all) the
 * parser, though it crashed the program, stays in the host, and the log and
 * --explain say why; by default its proven crash is repaired beyond the
 * budget; a suspicious component without a fault stays out. */
static void test_budget(void **state) {
    (void)state;
    fresh();
    assert_int_equal(qtn("run", "--policy optimistic --budget 1 --budget-binds all"
                                " --max-restarts 0 --backoff-ms 10"
                                " --stats-interval 0.5 -- " PROG
                                " run 4 4 --bad-every 700 --pause-us 200"),
                     111);
    has("event=budget pid=");
    has("parser: isolating costs ");
    has("budget 1%: stays in the host");
    assert_int_equal(count("event=plan pid"), 0);
    assert_int_equal(qtn("plan", "--mode optimistic --budget 1 --budget-binds all --explain"), 0);
    has("parser=host");
    has("  parser: isolating costs ");
    has("budget 1%: stays in the host; 1 host crash blamed");
    /* by default the same store's decision repairs the proven crash */
    assert_int_equal(qtn("plan", "--mode optimistic --budget 1 --explain"), 0);
    has("parser=1");
    has("over the budget of 1%: its faults are proven");
    /* ... and draws no boundary on suspicion beyond the budget */
    assert_int_equal(qtn("plan", "--mode pessimistic --budget 1 --explain"), 0);
    has("render: isolating costs ");
    has("budget 1%: stays in the host");
    assert_int_equal(qtn("plan", "--mode optimistic --budget 90"), 0);
    has("parser=1"); /* with the budget it needs, it is isolated */
    assert_int_equal(qtn("plan", "--mode optimistic --budget 90 --json"), 0);
    has("\"plan\":\"parser=1 render=host checksum=host g1=host g2=host\"");
    has("\"component\":\"parser\",\"code\":\"new\""); /* its first process */
    assert_int_equal(qtn("plan", "--budget-binds some"), 2);
    has("--budget-binds: 'some' is not insurance or all");
    /* live, by default: the restart after the crash isolates it */
    fresh();
    assert_int_equal(qtn("run", "--policy optimistic --budget 1 --max-restarts 1 --backoff-ms 10"
                                " --stats-interval 0.5 -- " PROG
                                " run 4 4 --bad-every 700 --pause-us 200"),
                     0);
    has("event=host-crash pid=");
    has("to=\"parser=1 ");
    has("its faults are proven");
    has("event=plan-applied");
    assert_int_equal(count("event=host-crash pid="), 1);
}

/* Two components sharing a domain, one of them hanging: the deadline
 * fault cannot be pinned on one of them, so the domain is split; after
 * that the hangs are pinned on g2. */
static void test_ambiguous_faults_split(void **state) {
    (void)state;
    fresh();
    assert_int_equal(qtn("run", "--policy pessimistic --min-gain 1e9 --stats-interval 0.5 -- env"
                                " QTN_PLAN='g1=1 g2=1' " PROG
                                " run 6 2 --groups --hang-every 40 --pause-us 2000"),
                     0);
    has("kind=deadline component=g1 entry=g1_work calls_failed=");
    has(" blame=ambiguous");
    has("could not be pinned on one component: its components are split");
    /* applied: apart */
    const char *split = strstr(log_text, "its components are split");
    const char *applied = split ? strstr(split, "event=plan-applied") : NULL;
    assert_non_null(applied);
    const char *g1 = strstr(applied, " g1="), *g2 = strstr(applied, " g2=");
    assert_non_null(g1);
    assert_non_null(g2);
    assert_true(atoi(g1 + 4) > 0 && atoi(g2 + 4) > 0 && atoi(g1 + 4) != atoi(g2 + 4));
    /* apart, g2's hangs are its own */
    has("kind=deadline component=g2 entry=g2_step");
    assert_true(query("SELECT COUNT(*) FROM report_blame WHERE ambiguous = 1") >= 2);
    assert_true(query("SELECT COUNT(*) FROM report_blame b JOIN reports r ON r.id = b.report_id"
                      " WHERE b.component = 'g2' AND b.ambiguous = 0 AND b.share = 1") >= 1);
    has("wrong=0");
}

/* A new build whose only change is in one component: the others keep the
 * trust their code earned; the changed one starts sceptical. */
static void test_new_build_keeps_trust(void **state) {
    (void)state;
    fresh();
    assert_int_equal(qtn("run", "--stats-interval 0.5 -- " PROG " run 3 4 --pause-us 200"), 0);
    assert_int_equal(qtn("run", "--stats-interval 0.5 -- " PROG2 " run 1 1 --pause-us 1000"), 0);
    assert_int_equal(query("SELECT COUNT(DISTINCT build_id) FROM components"), 2);
    assert_int_equal(qtn("plan", "--json --trust-calls 5000"), 0);
    has("\"component\":\"parser\",\"code\":\"same\"");
    has("\"component\":\"render\",\"code\":\"changed\"");
    has("\"component\":\"checksum\",\"code\":\"same\"");
    has("\"plan\":\"parser=host render=1 checksum=host g1=");
    assert_int_equal(qtn("plan", "--explain --trust-calls 5000"), 0);
    has("  render: isolated: ");
    has("changed code (earlier evidence reset)");
    has("  parser: in the host: ");
    has("same code as before, trusting prior");
}

/* Bad settings and a store with nothing to decide from. */
static void test_plan_errors(void **state) {
    (void)state;
    fresh();
    assert_int_equal(qtn("plan", ""), 1);
    has("no such file (quarantine run makes it)");
    assert_int_equal(qtn("run", "-- /bin/true"), 0); /* a store, no runtime */
    assert_int_equal(qtn("plan", ""), 1);
    has("nothing to decide from");
    assert_int_equal(qtn("plan", "--budget 200"), 2);
    has("--budget: '200' is not a percentage, 0 to 100");
    assert_int_equal(qtn("plan", "--mode nosuch"), 2);
    has("--mode: 'nosuch' is not a mode (adaptive, optimistic, pessimistic, cooperative)");
    assert_int_equal(qtn("plan", "--half-life nan"), 2);
    assert_int_equal(qtn("run", "--window nan -- /bin/true"), 2);
    has("--window: 'nan' is not a number of seconds");
    assert_int_equal(qtn("run", "--max-restarts 2147483647 -- /bin/true"), 2);
    /* a program without the runtime under a policy: said, and supervised */
    assert_int_equal(qtn("run", "--policy adaptive -- /bin/sleep 3"), 0);
    has("event=policy pid=");
    has("no runtime said hello: no plan is pushed");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optimistic),
        cmocka_unit_test(test_pessimistic),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_ambiguous_faults_split),
        cmocka_unit_test(test_new_build_keeps_trust),
        cmocka_unit_test(test_plan_errors),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    if (!r) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        (void)!system(cmd);
    } else {
        fprintf(stderr, "the store and the last log: %s\n", dir);
    }
    return r;
}
