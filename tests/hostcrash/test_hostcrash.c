/* test_hostcrash.c - a real program crashes in the host, under quarantine
 * run: in a component's entry, in a static helper, in a marked helper file,
 * by abort(), by a stack overflow, outside any component, and in two
 * threads at once. The store
 * must then hold one host-crash report per crash, each frame named and
 * attributed to the component whose code it is in, the blame shared among
 * the components on the stack, and the program's exit status must still
 * show its signal. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

static char db[64], logpath[64], log_text[1 << 16];

static void fresh(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s-wal %s-shm %s.spool", db, db, db, db);
    assert_int_equal(system(cmd), 0);
}

static void slurp(const char *path) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(log_text, 1, sizeof log_text - 1, f) : 0;
    log_text[n] = 0;
    if (f)
        fclose(f);
}

/* Runs `hostcrash MODE` under quarantine run, which gives up at the first
 * crash (exit 111). */
static void supervise(const char *mode) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "timeout 60 %s run --store %s --max-restarts 0 -- %s %s 2>%s", QTN_BIN, db,
             HOSTCRASH, mode, logpath);
    int st = system(cmd);
    slurp(logpath);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 111)
        fail_msg("quarantine run ended with %d; its log:\n%s", st, log_text);
}

typedef struct crash {
    long long id;
    char component[64], reason[256];
    int signal, nframes, nblame;
    char symbol[64][200], fcomp[64][64], bcomp[8][64];
    double share[8];
} crash;

/* The newest host-crash report, with its frames and blame. */
static void newest(crash *c) {
    memset(c, 0, sizeof *c);
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT id, component, signal, reason FROM reports"
                                           " WHERE kind = 'host-crash' ORDER BY id DESC LIMIT 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    if (sqlite3_step(st) != SQLITE_ROW)
        fail_msg("no host-crash report; the log:\n%s", log_text);
    c->id = sqlite3_column_int64(st, 0);
    snprintf(c->component, sizeof c->component, "%s", sqlite3_column_text(st, 1));
    c->signal = sqlite3_column_int(st, 2);
    snprintf(c->reason, sizeof c->reason, "%s", sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT symbol, component FROM report_frames"
                                           " WHERE report_id = ? ORDER BY n", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, c->id);
    while (sqlite3_step(st) == SQLITE_ROW && c->nframes < 64) {
        snprintf(c->symbol[c->nframes], sizeof c->symbol[0], "%s", sqlite3_column_text(st, 0));
        snprintf(c->fcomp[c->nframes], sizeof c->fcomp[0], "%s", sqlite3_column_text(st, 1));
        c->nframes++;
    }
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT component, share FROM report_blame"
                                           " WHERE report_id = ? ORDER BY share DESC", -1, &st,
                                        NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, c->id);
    while (sqlite3_step(st) == SQLITE_ROW && c->nblame < 8) {
        snprintf(c->bcomp[c->nblame], sizeof c->bcomp[0], "%s", sqlite3_column_text(st, 0));
        c->share[c->nblame++] = sqlite3_column_double(st, 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
}

static int count_host_crashes(void) {
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT COUNT(*) FROM reports WHERE kind ="
                                           " 'host-crash'", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* The first frame whose symbol starts with fn: its index, or -1. */
static int frame_of(const crash *c, const char *fn) {
    for (int i = 0; i < c->nframes; i++)
        if (!strncmp(c->symbol[i], fn, strlen(fn)) && c->symbol[i][strlen(fn)] == '+')
            return i;
    return -1;
}

static void show(const crash *c) {
    fprintf(stderr, "report %lld: %s (%s)\n", c->id, c->reason, c->component);
    for (int i = 0; i < c->nframes; i++)
        fprintf(stderr, "  #%d %s [%s]\n", i, c->symbol[i], c->fcomp[i]);
}

static void expect_frame(const crash *c, const char *fn, const char *component) {
    int i = frame_of(c, fn);
    if (i < 0 || strcmp(c->fcomp[i], component)) {
        show(c);
        fail_msg("expected a frame in %s attributed to '%s'", fn, component);
    }
}

static void test_crash_in_entry(void **state) {
    (void)state;
    fresh();
    supervise("entry");
    /* the supervisor saw the signal: the handler gave it back */
    assert_non_null(strstr(log_text, "event=crash pid="));
    assert_non_null(strstr(log_text, "signal=SIGSEGV"));
    assert_non_null(strstr(log_text, "event=host-crash pid="));
    crash c;
    newest(&c);
    assert_int_equal(c.signal, SIGSEGV);
    assert_string_equal(c.component, "parser");
    assert_int_equal(frame_of(&c, "parse_page"), 0); /* the faulting instruction first */
    expect_frame(&c, "parse_page", "parser");
    expect_frame(&c, "render_page", "render");
    expect_frame(&c, "main", "");
    /* parser is innermost: twice render's share */
    assert_int_equal(c.nblame, 2);
    assert_string_equal(c.bcomp[0], "parser");
    assert_string_equal(c.bcomp[1], "render");
    assert_true(c.share[0] > 0.66 && c.share[0] < 0.67);
    assert_true(c.share[1] > 0.33 && c.share[1] < 0.34);
    assert_non_null(strstr(c.reason, "SIGSEGV at 0x18 in parse_page"));
    assert_int_equal(count_host_crashes(), 1); /* the handler's record and the exit status: once */
}

static void test_crash_in_static_helper(void **state) {
    (void)state;
    fresh();
    supervise("static");
    crash c;
    newest(&c);
    assert_int_equal(frame_of(&c, "parse_field"), 0);
    expect_frame(&c, "parse_field", "parser"); /* static, and still the parser's */
    expect_frame(&c, "parse_page", "parser");
    assert_string_equal(c.component, "parser");
}

static void test_crash_in_marked_helper_file(void **state) {
    (void)state;
    fresh();
    supervise("marked");
    crash c;
    newest(&c);
    assert_int_equal(frame_of(&c, "parser_scan"), 0);
    expect_frame(&c, "parser_scan", "parser");
    assert_string_equal(c.component, "parser");
}

static void test_abort_in_component(void **state) {
    (void)state;
    fresh();
    supervise("abort");
    assert_non_null(strstr(log_text, "signal=SIGABRT"));
    crash c;
    newest(&c);
    assert_int_equal(c.signal, SIGABRT);
    expect_frame(&c, "parse_page", "parser"); /* below libc's abort frames */
    assert_string_equal(c.component, "parser");
    assert_int_equal(c.nblame, 1);
    assert_true(c.share[0] == 1.0);
}

/* The handler runs on its own stack: an overflow is recorded too. */
static void test_stack_overflow_in_component(void **state) {
    (void)state;
    fresh();
    supervise("overflow");
    crash c;
    newest(&c);
    assert_int_equal(c.signal, SIGSEGV);
    assert_int_equal(frame_of(&c, "parse_nested"), 0);
    expect_frame(&c, "parse_nested", "parser");
    assert_string_equal(c.component, "parser");
}

static void test_crash_outside_components(void **state) {
    (void)state;
    fresh();
    supervise("outside");
    crash c;
    newest(&c);
    assert_int_equal(frame_of(&c, "outside"), 0);
    expect_frame(&c, "outside", "");
    expect_frame(&c, "main", "");
    assert_string_equal(c.component, ""); /* nobody's code: nobody blamed */
    assert_int_equal(c.nblame, 0);
}

static void test_two_threads_crash_at_once(void **state) {
    (void)state;
    fresh();
    supervise("twice"); /* ends: neither thread waits for ever */
    assert_int_equal(count_host_crashes(), 1);
    crash c;
    newest(&c);
    assert_int_equal(c.signal, SIGSEGV);
    expect_frame(&c, "parse_page", "parser");
}

/* Without a supervisor the record goes to stderr, and the program still
 * dies of its signal. */
static void test_without_supervisor(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "env -u QTN_REPORT_FD %s static 2>%s", HOSTCRASH, logpath);
    int st = system(cmd);
    slurp(logpath);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 128 + SIGSEGV); /* the shell's way of saying so */
    assert_non_null(strstr(log_text, "quarantine: host-crash {\"type\":\"host-crash\""));
    assert_non_null(strstr(log_text, "\"signal\":11"));
    assert_non_null(strstr(log_text, "\"frames\":[\"0x"));
    assert_non_null(strstr(log_text, "\"build_id\":\""));
}

/* A clean run stores no crash; its statistics land, with the plan. */
static void test_clean_run_stores_statistics(void **state) {
    (void)state;
    fresh();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "timeout 60 %s run --store %s -- %s ok 2>%s", QTN_BIN, db,
             HOSTCRASH, logpath);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(count_host_crashes(), 0);
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT calls, domain, plan, build_id FROM stats"
                                           " WHERE component = 'parser'", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    assert_int_equal(sqlite3_column_int(st, 1), 0);
    assert_string_equal((const char *)sqlite3_column_text(st, 2), "parser=host render=host");
    assert_int_equal(strlen((const char *)sqlite3_column_text(st, 3)), 40); /* a sha1 */
    sqlite3_finalize(st);
    /* and the edges: main called render_page once, directly (both in the host) */
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT caller, calls, crossings FROM edge_stats"
                                           " WHERE callee = 'render' AND entry = 'render_page'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "program");
    assert_int_equal(sqlite3_column_int(st, 1), 1);
    assert_int_equal(sqlite3_column_int(st, 2), 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
}

int main(void) {
    snprintf(db, sizeof db, "/tmp/qtn-hostcrash-%d.db", (int)getpid());
    snprintf(logpath, sizeof logpath, "/tmp/qtn-hostcrash-%d.log", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_in_entry),
        cmocka_unit_test(test_crash_in_static_helper),
        cmocka_unit_test(test_crash_in_marked_helper_file),
        cmocka_unit_test(test_abort_in_component),
        cmocka_unit_test(test_stack_overflow_in_component),
        cmocka_unit_test(test_crash_outside_components),
        cmocka_unit_test(test_two_threads_crash_at_once),
        cmocka_unit_test(test_without_supervisor),
        cmocka_unit_test(test_clean_run_stores_statistics),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    fresh();
    unlink(logpath);
    return r;
}
