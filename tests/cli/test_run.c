/* test_run.c - `quarantine run` supervising real programs: exit statuses
 * pass through, crashes are restarted with backoff until the intensity limit,
 * signals are forwarded, and fault reports of isolated components are
 * relayed as log lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <signal.h>

static char log_text[1 << 16];
/* this run's files, apart from any other run of these tests */
static char dir[64], db[96], logp[96], reportp[96], countp[96], siglog[96];

static void paths(void) {
    snprintf(dir, sizeof dir, "/tmp/qtn-run-test-%d", (int)getpid());
    snprintf(db, sizeof db, "%s/store.db", dir);
    snprintf(logp, sizeof logp, "%s/run.log", dir);
    snprintf(reportp, sizeof reportp, "%s/report.txt", dir);
    snprintf(countp, sizeof countp, "%s/count", dir);
    snprintf(siglog, sizeof siglog, "%s/sig.log", dir);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    if (system(cmd))
        fail_msg("cannot make %s", dir);
}

/* Runs `quarantine run ARGS`; returns its exit status, stderr in log_text. */
static int run(const char *args) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "QTN_STORE=%s %s run %s 2>%s", db, QTN_BIN, args, logp);
    int st = system(cmd);
    FILE *f = fopen(logp, "r");
    size_t n = f ? fread(log_text, 1, sizeof log_text - 1, f) : 0;
    log_text[n] = 0;
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count(const char *needle) {
    int n = 0;
    for (const char *p = log_text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* Reads f into log_text until needle is in it (10 s at most); where, or NULL. */
static const char *wait_log(const char *f, const char *needle) {
    for (int i = 0; i < 1000; i++) {
        FILE *fp = fopen(f, "r");
        size_t n = fp ? fread(log_text, 1, sizeof log_text - 1, fp) : 0;
        log_text[n] = 0;
        if (fp)
            fclose(fp);
        const char *a = strstr(log_text, needle);
        if (a)
            return a;
        usleep(10000);
    }
    return NULL;
}

static void test_exit_status_passes_through(void **state) {
    (void)state;
    assert_int_equal(run("-- " CRASHY " exit 0"), 0);
    assert_int_equal(run("-- " CRASHY " exit 7"), 7);
    assert_int_equal(count("event=start"), 1);
    assert_non_null(strstr(log_text, "event=exit pid="));
    assert_non_null(strstr(log_text, "status=7"));
}

static void test_crashes_are_restarted(void **state) {
    (void)state;
    unlink(countp);
    char args[256];
    snprintf(args, sizeof args, "--backoff-ms 10 -- " CRASHY " crash-until %s 3", countp);
    assert_int_equal(run(args), 0);
    assert_int_equal(count("event=crash"), 2);
    assert_int_equal(count("signal=SIGSEGV"), 2);
    assert_int_equal(count("event=start"), 3);
    unlink(countp);
}

static void test_gives_up_past_the_intensity_limit(void **state) {
    (void)state;
    assert_int_equal(run("--max-restarts 2 --window 30 --backoff-ms 5 -- " CRASHY " always-crash"),
                     111);
    assert_int_equal(count("event=start"), 3);
    assert_non_null(strstr(log_text, "event=give-up restarts=2"));
    assert_non_null(strstr(log_text, "crashed 3 times within 30 s: not starting it again"));
}

static void test_signals_are_forwarded(void **state) {
    (void)state;
    unlink(siglog);
    pid_t p = fork();
    if (p == 0) {
        if (!freopen(siglog, "w", stderr))
            _exit(98);
        setenv("QTN_STORE", db, 1);
        execl(QTN_BIN, QTN_BIN, "run", "--", CRASHY, "wait", (char *)NULL);
        _exit(99);
    }
    /* once it has started the program, its signals are its to handle */
    assert_non_null(wait_log(siglog, "event=start"));
    kill(p, SIGTERM);
    int st;
    waitpid(p, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 128 + SIGTERM); /* stopped, not restarted */
}

static void test_isolated_faults_are_relayed(void **state) {
    (void)state;
    assert_int_equal(run("-- " CRASHY " isolated-fault"), 0);
    assert_int_equal(count("event=fault "), 1);
    assert_non_null(strstr(log_text, "kind=signal component=fx entry=fx_crash calls_failed=1"));
    assert_int_equal(count("event=crash"), 0); /* the program itself never crashed */
}

static void test_reports_are_stored(void **state) {
    (void)state;
    char rm[512];
    snprintf(rm, sizeof rm, "rm -rf %s %s-wal %s-shm %s.spool", db, db, db, db);
    assert_int_equal(system(rm), 0);
    assert_int_equal(run("-- " CRASHY " isolated-fault"), 0);
    assert_int_equal(run("--max-restarts 1 --backoff-ms 5 -- " CRASHY " always-crash"), 111);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s report --store %s >%s", QTN_BIN, db, reportp);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(reportp, "r");
    size_t n = fread(log_text, 1, sizeof log_text - 1, f);
    log_text[n] = 0;
    fclose(f);
    /* fx: 2 calls, both crossings, 1 fault while isolated, in domain 1 */
    assert_non_null(strstr(log_text, "fx               domain 1           2          2        1"));
    assert_non_null(strstr(log_text, "host crashes: 2"));
    assert_non_null(strstr(log_text, "fx.fx_crash  SIGSEGV"));
    /* crashy's always-crash never starts the runtime: stored from its exit status */
    assert_non_null(strstr(log_text, "host-crash -  the program died of SIGSEGV\n"));
    snprintf(cmd, sizeof cmd, "%s report --store %s/no-such.db 2>/dev/null", QTN_BIN, dir);
    assert_int_equal(WEXITSTATUS(system(cmd)), 1);
    snprintf(cmd, sizeof cmd, "%s report --since 5x 2>/dev/null", QTN_BIN);
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
}

static void test_program_runs_on_without_a_store(void **state) {
    (void)state;
    /* a store that cannot be opened: said, and the program is supervised anyway */
    assert_int_equal(run("--store /proc/no-such-dir/store.db -- " CRASHY " isolated-fault"), 0);
    assert_non_null(strstr(log_text, "event=store-error store /proc/no-such-dir/store.db"));
    assert_int_equal(count("event=fault "), 1);
    assert_non_null(strstr(log_text, "event=unstored spool=")); /* said, not silent */
    assert_non_null(strstr(log_text, "event=exit pid="));
}

/* The port of `event=listen addr=127.0.0.1:PORT` in f's text, or 0. */
static int listen_port(const char *f) {
    const char *at = "event=listen addr=127.0.0.1:", *a = wait_log(f, at);
    return a ? atoi(a + strlen(at)) : 0;
}

/* A connection made while the program is down (its crash, the backoff)
 * waits in the socket the supervisor holds, and the next start serves it. */
static void test_the_listening_socket_outlives_a_crash(void **state) {
    (void)state;
    pid_t p = fork();
    if (p == 0) {
        if (!freopen(siglog, "w", stderr))
            _exit(98);
        setenv("QTN_STORE", db, 1);
        execl(QTN_BIN, QTN_BIN, "run", "--listen", "0", "--backoff-ms", "300", "--", CRASHY,
              "serve-crash", (char *)NULL);
        _exit(99);
    }
    int port = listen_port(siglog);
    assert_true(port > 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int first = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(first, (struct sockaddr *)&a, sizeof a), 0);
    char buf[64] = "";
    assert_true(read(first, buf, sizeof buf) <= 0); /* the first start crashed holding it */
    close(first);
    int second = socket(AF_INET, SOCK_STREAM, 0); /* within the 300 ms backoff */
    assert_int_equal(connect(second, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tmo = {.tv_sec = 10};
    setsockopt(second, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
    ssize_t n = read(second, buf, sizeof buf - 1);
    close(second);
    int st;
    waitpid(p, &st, 0);
    assert_non_null(wait_log(siglog, "event=exit")); /* the log, read whole */
    assert_true(n > 0);
    buf[n] = 0;
    assert_string_equal(buf, "served by start 2\n");
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(count("event=crash"), 1);
    assert_int_equal(count("event=start"), 2);
}

static void test_usage(void **state) {
    (void)state;
    assert_int_equal(run(""), 2);
    assert_int_equal(run("--bogus -- true"), 2);
    assert_int_equal(run("--max-restarts x -- true"), 2);
    assert_int_equal(run("--listen 127.0.0.1:99999 -- true"), 2);
    assert_non_null(strstr(log_text, "--listen"));
    assert_int_equal(run("--listen localhost:80 -- true"), 2); /* numeric only */
    assert_int_equal(run("--listen 192.0.2.1:8080 -- true"), 2); /* not an address here */
    assert_non_null(strstr(log_text, "--listen 192.0.2.1:8080: cannot listen there"));
    assert_int_equal(run("-- /no/such/program"), 127);
    assert_non_null(strstr(log_text, "cannot start /no/such/program"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_status_passes_through),
        cmocka_unit_test(test_crashes_are_restarted),
        cmocka_unit_test(test_gives_up_past_the_intensity_limit),
        cmocka_unit_test(test_signals_are_forwarded),
        cmocka_unit_test(test_isolated_faults_are_relayed),
        cmocka_unit_test(test_reports_are_stored),
        cmocka_unit_test(test_program_runs_on_without_a_store),
        cmocka_unit_test(test_the_listening_socket_outlives_a_crash),
        cmocka_unit_test(test_usage),
    };
    paths();
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    if (!r) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        (void)!system(cmd);
    }
    return r;
}
