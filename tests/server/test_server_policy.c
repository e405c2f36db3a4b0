/* test_server_policy.c - the example server end to end under
 * `quarantine run --policy optimistic`, with its access log's concurrency
 * bug on, under a few seconds of load: the server is up at the end, the
 * faulting component was isolated after at most one host crash, the
 * requests that failed are few and counted (none refused: the supervisor
 * holds the port, --listen), and the store holds every fault exactly
 * once. */
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

#include "client.h"
#include "storeq.h"

static char dir[64], db[128], logpath[128], *log_text;

static long long query(const char *sql) { return tsq_file(db, sql); }

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = 0;
    fclose(f);
    return b;
}

static int count(const char *needle) {
    int n = 0;
    for (const char *p = log_text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_bug_isolated_after_at_most_one_host_crash(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/qtn-srvpol-%d", (int)getpid());
    snprintf(db, sizeof db, "%s/store.db", dir);
    snprintf(logpath, sizeof logpath, "%s/run.log", dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    assert_int_equal(system(cmd), 0);
    int port = free_port();
    assert_true(port > 0);
    pid_t sup = fork();
    if (sup == 0) {
        if (!freopen(logpath, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(98);
        setenv("SERVER_BUGS", "log", 1);
        setenv("SERVER_BUG_WINDOW_US", "300", 1);
        setenv("SERVER_BUG_WINDOW_PCT", "5", 1);
        setenv("QTN_QUIET_FAULTS", "1", 1);
        unsetenv("QTN_PLAN");
        char portarg[16], data[128];
        snprintf(portarg, sizeof portarg, "%d", port);
        snprintf(data, sizeof data, "%s/docs", dir);
        execl(QTN_BIN, "quarantine", "run", "--store", db, "--policy", "optimistic", "--budget",
              "90", "--backoff-ms", "20", "--stats-interval", "0.5", "--listen", portarg, "--",
              SERVER_BIN, "--data", data, (char *)NULL);
        _exit(99);
    }
    /* serving: its health answers */
    int up = 0;
    for (int i = 0; i < 200 && !up; i++) {
        http_res res;
        up = http_do(port, "GET", "/health", NULL, NULL, 0, &res) == 0 && res.status == 200;
        if (res.body)
            http_free(&res);
        if (!up)
            usleep(50000);
    }
    assert_true(up);
    char portarg[16];
    snprintf(portarg, sizeof portarg, "%d", port);
    const char *args[] = {"--port", portarg, "--connections", "8", "--seconds", "6", "--keys", "200",
                          "--mix", "get=60,put=20,query=20", NULL};
    int st;
    char *out = load_run(args, &st);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    double ok = load_value(out, "requests_ok"), failed = load_value(out, "requests_failed");
    /* the server is up at the end */
    http_res res;
    assert_int_equal(http_do(port, "GET", "/health", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    http_free(&res);
    kill(sup, SIGTERM);
    assert_int_equal(waitpid(sup, &st, 0), sup);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 128 + SIGTERM);
    log_text = slurp(logpath);
    int crashes = count("event=host-crash");
    if (crashes > 1 || count("event=fault ") == 0)
        fail_msg("%d host crashes, %d faults isolated; the log:\n%s", crashes,
                 count("event=fault "), log_text);
    /* isolated: by the start after the crash, or by then in any case */
    const char *last = NULL;
    for (const char *p = log_text; (p = strstr(p, "accesslog=")); p++)
        last = p;
    assert_non_null(last);
    assert_true(last[10] >= '1' && last[10] <= '9');
    /* few failed, and counted */
    assert_true(ok > 0);
    assert_true(failed >= 0 && failed <= 0.05 * (ok + failed));
    /* the supervisor held the port (--listen): across the host crash no
     * connection was refused, they waited for the next start */
    if (load_value(out, "failed_refused") != 0)
        fail_msg("connections refused with the socket held:\n%s", out);
    /* every fault exactly once */
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind <> 'host-crash'"),
                     count("event=fault "));
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind = 'host-crash'"), crashes);
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind <> 'host-crash' AND"
                           " component <> 'accesslog'"),
                     0);
    free(out);
    free(log_text);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)!system(cmd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bug_isolated_after_at_most_one_host_crash),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    sp_cleanup();
    return r;
}
