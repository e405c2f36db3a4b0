/* test_cooperative.c - the cooperative figure end to end, with real
 * processes and a real PostgreSQL the test starts: installation A's parser
 * crashes its host, and A ships the evidence to the fleet; installation B,
 * new, with its own empty outbox, fetches the fleet's evidence for the same
 * code and isolates the parser before its first bad line: B's first fault
 * costs one call in the parser's domain, not a host crash. Without the
 * fleet, the same run of B crashes its host. quarantine fleet status then
 * recommends the parser isolated and names the installation that has it
 * in the host. */
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

#include "pgtest.h"
#include "storeq.h"

static tpg pg;
static char dir[64], logpath[128], log_text[1 << 20];

static int setup(void **state) {
    (void)state;
    tpg_start(&pg);
    snprintf(dir, sizeof dir, "/tmp/qtn-coop-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(logpath, sizeof logpath, "%s/log", dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tpg_destroy(&pg);
    if (getenv("QTN_KEEP"))
        return 0;
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

/* `quarantine run --policy cooperative` of installation `name` with store
 * `store` (a fleet's: the outbox is NAME.db), the program's arguments
 * after it; its exit status, its log in log_text. */
static int run(const char *name, const char *store, const char *args) {
    char cmd[2048], where[200];
    if (store)
        snprintf(where, sizeof where, "--store '%s' --outbox %s/%s.db --fleet-refresh 0.5", store,
                 dir, name);
    else
        snprintf(where, sizeof where, "--store %s/%s.db", dir, name);
    snprintf(cmd, sizeof cmd,
             "QTN_QUIET_FAULTS=1 timeout 120 %s run --policy cooperative --budget 90"
             " --backoff-ms 10 --stats-interval 0.5 --installation %s %s -- %s %s >%s 2>&1",
             QTN_BIN, name, where, PROG, args, logpath);
    int st = system(cmd);
    slurp();
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_the_fleet_blamed_it_first(void **state) {
    (void)state;
    /* A: nothing isolated (a trusting prior, no fleet evidence yet): the
     * parser's bad lines crash the host until it is isolated */
    assert_int_equal(run("a", pg.uri, "run 3 4 --bad-every 700 --pause-us 1000"), 0);
    assert_true(count("event=host-crash") >= 1);
    assert_null(strstr(log_text, "event=fleet-held"));
    assert_true(tpg_one(&pg, NULL,
                        "SELECT COUNT(*) FROM reports WHERE installation = 'a' AND"
                        " kind = 'host-crash'") >= 1);
    /* B: the same program, its first bad line seconds in */
    assert_int_equal(run("b", pg.uri, "run 7 4 --bad-every 3000 --pause-us 1000"), 0);
    if (count("event=host-crash") || count("event=crash pid"))
        fail_msg("B crashed its host:\n%s", log_text);
    has("event=plan pid=");
    has("to=\"parser=1");
    has("pooled prior)"); /* decided from the fleet's evidence */
    assert_true(count("component=parser entry=parse_line") >= 1); /* faults in its domain */
    has("wrong=0");
    char sql[256];
    snprintf(sql, sizeof sql, "%s/b.db", dir);
    assert_true(tsq_file(sql, "SELECT COUNT(*) FROM fleet_evidence WHERE installation = 'b'"
                              " AND host_blame > 0") >= 1);
    assert_int_equal(tsq_file(sql, "SELECT COUNT(*) FROM reports WHERE kind = 'host-crash'"), 0);
    /* B without the fleet: its first bad line crashes its host */
    assert_int_equal(run("alone", NULL, "run 7 4 --bad-every 3000 --pause-us 1000"), 0);
    assert_true(count("event=host-crash") >= 1);

    /* C: no policy, everything in the host; the fleet's status recommends
     * the parser isolated (decided for C, the last seen) and names C */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "QTN_PLAN='parser=host render=host checksum=host g1=host g2=host' timeout 120 %s"
             " run --installation c --stats-interval 0.5 --store '%s' --outbox %s/c.db -- %s"
             " run 1 2 --pause-us 1000 >%s 2>&1",
             QTN_BIN, pg.uri, dir, PROG, logpath);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s fleet status --store '%s' >%s 2>&1", QTN_BIN, pg.uri,
             logpath);
    assert_int_equal(system(cmd), 0);
    slurp();
    has(": 3 installations, 1 build\n");
    has("decided for c with the rest of the fleet's evidence pooled:\n  parser=1 ");
    has("where installations on that build differ from it:\n"
        "  c                    parser: in the host in force, isolated recommended\n");
    assert_null(strstr(log_text, "  a                    parser:"));
    assert_null(strstr(log_text, "  b                    parser:"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_fleet_blamed_it_first),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
