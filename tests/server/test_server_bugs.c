/* test_server_bugs.c BUG - one of the example server's concurrency bugs
 * (cache, log or query; examples/server/README.md), shown to be one:
 *   - with the bug on and its race window widened, one connection making
 *     thousands of requests never crashes anything, in the host or isolated;
 *   - 16 concurrent connections make it fire: with everything in the host
 *     the whole server dies of a signal (the baseline);
 *   - with its component isolated (QTN_PLAN), the same load makes the
 *     component's domain fault, and the server goes on: most requests
 *     succeed, the documents are all there, and the requests that failed are
 *     counted by qtn-load and are no more than the calls the runtime says
 *     were in flight at the faults; for query, whose faulted calls the
 *     server makes once more, far fewer (at most half of them).
 *
 * Firing is a matter of chance. Without the knob the windows are a few
 * instructions wide and a 3 s load rarely hits one; with it (500 us, taken
 * half of the times), 16 connections interleave inside a window many times
 * a second even on this project's 2-core machines, so the first load of 3 s
 * fires in every run we measured (within a second, as a rule). Each firing
 * test still retries the load up to 4 times before it fails: that makes a
 * miss from bad luck negligible without hiding a bug that stopped firing.
 * The isolated runs use a milder knob (200 us, and taken 1 to 25% of the
 * times, per bug): the bug still fires several to dozens of times in 3 s,
 * and faults back to back, within a millisecond of a restart, stay rare
 * (the runtime can stall calls for seconds then; that is not what this
 * test is about). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "client.h"

#define ATTEMPTS 4

typedef struct bug {
    const char *name;
    const char *component;
    const char *bugs_env, *plan_env;
    const char *mix; /* requests that reach the buggy code */
    int gzip;
    int degrades;         /* a fault of the component fails no request */
    int retried;          /* the server makes a faulted call once more */
    const char *mild_pct; /* how often the isolated runs take the window */
} bug;

static const bug bugs[] = {
    {"cache", "cache", "SERVER_BUGS=cache", "QTN_PLAN=cache=1", "get=60,html=20,put=20", 1, 1, 0,
     "SERVER_BUG_WINDOW_PCT=25"}, /* it must also evict the very entry being read */
    {"log", "accesslog", "SERVER_BUGS=log", "QTN_PLAN=accesslog=1", "get=70,put=20,query=10", 0, 1, 0,
     "SERVER_BUG_WINDOW_PCT=2"},
    {"query", "query", "SERVER_BUGS=query", "QTN_PLAN=query=1", "get=50,put=10,query=40", 0, 0, 1,
     "SERVER_BUG_WINDOW_PCT=1"},
};

static const bug *the_bug;

/* the knob up: a sleep of 500 us inside the race window, half of the times */
#define KNOB_US "SERVER_BUG_WINDOW_US=500"
#define KNOB_PCT "SERVER_BUG_WINDOW_PCT=50"
/* for the isolated component, less (and how often: per bug): it still
 * fires many times in a run, but rarely twice in the same millisecond */
#define MILD_US "SERVER_BUG_WINDOW_US=200"

static char *load(int port, int connections, const char *seconds) {
    char ports[16], conns[16];
    snprintf(ports, sizeof ports, "%d", port);
    snprintf(conns, sizeof conns, "%d", connections);
    const char *args[20] = {"--port", ports, "--connections", conns,        "--seconds",    seconds,
                            "--keys", "200", "--mix",         the_bug->mix, "--timeout-ms", "3000"};
    int n = 12;
    if (the_bug->gzip)
        args[n++] = "--gzip";
    args[n] = NULL;
    int st;
    char *out = load_run(args, &st);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("qtn-load: wait status %#x\n%s", st, out);
    return out;
}

static void one_connection(const char *plan_env) {
    sp p;
    const char *env[] = {the_bug->bugs_env, KNOB_US, KNOB_PCT, plan_env, NULL};
    assert_int_equal(sp_start(&p, env, NULL), 0);
    char *out = load(p.port, 1, "1.5");
    char *err = sp_stderr(&p);
    if (!sp_alive(&p) || load_value(out, "requests_failed") != 0 || strstr(err, "fault in") ||
        strstr(err, "host-crash"))
        fail_msg("one connection with bug %s on (%s) broke something:\n%s\n%s", the_bug->name,
                 plan_env ? plan_env : "all in the host", out, err);
    assert_true(load_value(out, "requests_ok") >= 100);
    assert_int_equal(load_value(out, "prefill_ok"), 200);
    free(out);
    free(err);
    assert_int_equal(sp_stop(&p), 0);
    sp_free(&p);
}

static void test_one_connection_never_crashes(void **state) {
    (void)state;
    one_connection(NULL);
    one_connection(the_bug->plan_env);
}

static void test_concurrent_load_kills_the_host(void **state) {
    (void)state;
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        sp p;
        const char *env[] = {the_bug->bugs_env, KNOB_US, KNOB_PCT, NULL};
        assert_int_equal(sp_start(&p, env, NULL), 0);
        char *out = load(p.port, 16, "3");
        int died = sp_wait(&p, 2000);
        char *err = sp_stderr(&p);
        if (died) {
            if (!WIFSIGNALED(p.status))
                fail_msg("bug %s: the server ended with wait status %#x, not a signal:\n%s",
                         the_bug->name, p.status, err);
            print_message("bug %s fired in the host on attempt %d: %s; qtn-load: %.0f ok, %.0f "
                          "failed\n",
                          the_bug->name, attempt, strsignal(WTERMSIG(p.status)),
                          load_value(out, "requests_ok"), load_value(out, "requests_failed"));
            assert_true(load_value(out, "requests_failed") > 0 ||
                        load_value(out, "prefill_failed") > 0);
            free(out);
            free(err);
            sp_free(&p);
            return;
        }
        free(out);
        free(err);
        assert_int_equal(sp_stop(&p), 0);
        sp_free(&p);
    }
    fail_msg("bug %s did not fire in %d loads of 3 s with 16 connections", the_bug->name, ATTEMPTS);
}

static void test_isolated_component_survives(void **state) {
    (void)state;
    char needle[64];
    snprintf(needle, sizeof needle, ": %s.", the_bug->component);
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        sp p;
        /* the restart intensity limit parks a domain that faults more than
         * 10 times in 10 s; here the point is what one fault costs, so the
         * limit is raised (parking has tests of its own) */
        const char *env[] = {the_bug->bugs_env,        MILD_US,
                             the_bug->mild_pct,        the_bug->plan_env,
                             "QTN_RESTART_MAX=100000", NULL};
        assert_int_equal(sp_start(&p, env, NULL), 0);
        char *out = load(p.port, 16, "3");
        char *err = sp_stderr(&p);
        int faults = count_lines(err, "fault in domain 1");
        long in_flight = calls_failed(err, needle);
        if (!sp_alive(&p))
            fail_msg("bug %s: the server died with %s isolated:\n%s\n%s", the_bug->name,
                     the_bug->component, out, err);
        if (strstr(err, "host-crash"))
            fail_msg("bug %s: a host crash with %s isolated:\n%s", the_bug->name,
                     the_bug->component, err);
        double failed = load_value(out, "requests_failed"), ok = load_value(out, "requests_ok");
        if (faults) {
            print_message("bug %s fired %d times in domain 1 on attempt %d: %ld calls in flight "
                          "failed; qtn-load: %.0f ok, %.0f failed (%.2f%% served)\n",
                          the_bug->name, faults, attempt, in_flight, ok, failed,
                          load_value(out, "served_pct"));
            assert_int_equal(count_lines(err, needle), faults); /* blamed on the component */
            if (failed > (double)in_flight || load_value(out, "served_pct") < 95 ||
                (the_bug->degrades && failed != 0))
                fail_msg("bug %s: more failed than the faults explain:\n%s\n%s", the_bug->name, out,
                         err);
            /* the calls made once more succeed, but for a rare second fault */
            if (the_bug->retried && in_flight >= 10 && failed > (double)in_flight / 2)
                fail_msg("bug %s: %.0f of %ld faulted calls failed their requests: the retry "
                         "did not serve them:\n%s", the_bug->name, failed, in_flight, out);
            /* the documents, kept in the host, are all there */
            http_res r;
            assert_int_equal(http_do(p.port, "GET", "/docs/k199", NULL, NULL, 0, &r), 0);
            assert_int_equal(r.status, 200);
            http_free(&r);
            assert_int_equal(http_do(p.port, "GET", "/health", NULL, NULL, 0, &r), 0);
            assert_non_null(strstr(r.body, "\"docs\":200"));
            http_free(&r);
        }
        free(out);
        free(err);
        int st = sp_stop(&p); /* and it still stops cleanly */
        assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        sp_free(&p);
        if (faults)
            return;
    }
    fail_msg("bug %s did not fire in %d loads of 3 s with 16 connections", the_bug->name, ATTEMPTS);
}

/* a test that failed half-way leaves no server behind */
static int teardown(void **state) {
    (void)state;
    sp_cleanup();
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; argc == 2 && i < sizeof bugs / sizeof bugs[0]; i++)
        if (!strcmp(argv[1], bugs[i].name))
            the_bug = &bugs[i];
    if (!the_bug) {
        fprintf(stderr, "usage: test_server_bugs cache|log|query\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_one_connection_never_crashes, teardown),
        cmocka_unit_test_teardown(test_concurrent_load_kills_the_host, teardown),
        cmocka_unit_test_teardown(test_isolated_component_survives, teardown),
    };
    return cmocka_run_group_tests_name(argv[1], tests, NULL, NULL);
}
