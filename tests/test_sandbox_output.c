/* test_sandbox_output.c - a hostile component writes, on its stdout and
 * stderr, lines made to pass for the supervisor's (`quarantine: run:
 * event=...`), with carriage returns, terminal escapes and C1 controls to
 * hide what comes before, a line of 100 KiB and a last line without a
 * newline; then floods them while nobody reads the program's stderr. The
 * program's stderr (a pipe this test reads) must show each of its lines
 * prefixed `quarantine[HOSTPID] domain 1: `, no control character, long
 * lines cut; and while the reader stalls, calls must go on at full speed,
 * lines be dropped and the drop be told; a domain's last line, said as it
 * dies with the queue full, must not be among them. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "quarantine.h"
#include "util.h"

/* ---- the "so" component ------------------------------------------------------------ */

static pid_t host_pid;

static void say(int fd, const char *s) { (void)!write(fd, s, strlen(s)); }

static int so_forge_real(void) {
    say(2, "quarantine: run: event=crash pid=1 signal=SIGSEGV restarts=0\n");
    say(1, "quarantine: run: event=exit pid=1 status=0\n");
    say(2, "harmless\rquarantine: run: event=cr\n");
    say(2, "x\x1b[2K\x1b[1Gquarantine: run: event=esc\n");
    say(2, "c1\xc2\x9b"
           "2Kquarantine: run: event=c1 caf\xc3\xa9\n");
    static char big[100 << 10];
    memset(big, 'A', sizeof big);
    (void)!write(2, big, sizeof big);
    say(2, "\nafter the long line\n");
    return 0;
}

/* n lines of 100 bytes; how many were written whole */
static int so_flood_real(int32_t n) {
    char line[101];
    memset(line, 'f', 99);
    line[99] = '\n';
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += write(2, line, 100) == 100;
    return ok;
}

static int so_partial_real(void) {
    say(2, "the last words, without a newline");
    return 0;
}

/* its last line, and its end (what a library's failed assertion does) */
static int so_die_real(void) {
    say(2, "the last line, and the end\n");
    if (getpid() != host_pid)
        raise(SIGKILL);
    return 0;
}

static int so_ok_real(void) { return 7; }

TU_THUNK(so_forge) {
    (void)a;
    r->i = so_forge_real();
}
TU_THUNK(so_flood) { r->i = so_flood_real((int32_t)a[0].i); }
TU_THUNK(so_partial) {
    (void)a;
    r->i = so_partial_real();
}
TU_THUNK(so_die) {
    (void)a;
    r->i = so_die_real();
}
TU_THUNK(so_ok) {
    (void)a;
    r->i = so_ok_real();
}

static const qtn_param p_i32[] = {QTN_P_SCALAR(QTN_T_I32)};
static qtn_component so_component;
TU_ENTRY(so_forge, so_component, 0, NULL);
TU_ENTRY(so_flood, so_component, 1, p_i32);
TU_ENTRY(so_partial, so_component, 0, NULL);
TU_ENTRY(so_die, so_component, 0, NULL);
TU_ENTRY(so_ok, so_component, 0, NULL);
static const qtn_entry *const so_entries[] = {&so_forge_entry, &so_flood_entry, &so_partial_entry,
                                              &so_die_entry, &so_ok_entry};
static qtn_component so_component = {.name = "so", .nentries = 5, .entries = so_entries};

static int last_err;
#define STUB0(nm)                                                                                  \
    static int nm(void) {                                                                          \
        static qtn_edge e = QTN_EDGE_INIT(NULL, &nm##_entry);                                      \
        if (QTN_DIRECT(&e))                                                                        \
            return nm##_real();                                                                    \
        qtn_val r;                                                                                 \
        last_err = qtn_call(&e, NULL, &r);                                                         \
        return (int)r.i;                                                                           \
    }
STUB0(so_forge)
STUB0(so_partial)
STUB0(so_die)
STUB0(so_ok)
static int so_flood(int32_t n) {
    static qtn_edge e = QTN_EDGE_INIT(NULL, &so_flood_entry);
    if (QTN_DIRECT(&e))
        return so_flood_real(n);
    qtn_val v[1] = {{.i = n}}, r;
    last_err = qtn_call(&e, v, &r);
    return (int)r.i;
}

/* ---- the program's stderr, read by a thread that can stall ------------------------- */

static char got[4 << 20];
static size_t ngot;
static pthread_mutex_t got_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool stalled;
static int rd = -1, saved_err = -1;
static pthread_t reader;

static void *read_stderr(void *arg) {
    (void)arg;
    char buf[8192];
    for (;;) {
        if (atomic_load(&stalled)) {
            usleep(1000);
            continue;
        }
        ssize_t n = read(rd, buf, sizeof buf);
        if (n <= 0)
            return NULL;
        pthread_mutex_lock(&got_lock);
        if (ngot + (size_t)n < sizeof got - 1) {
            memcpy(got + ngot, buf, (size_t)n);
            ngot += (size_t)n;
            got[ngot] = 0;
        }
        pthread_mutex_unlock(&got_lock);
    }
}

static bool saw(const char *s) {
    pthread_mutex_lock(&got_lock);
    bool r = strstr(got, s) != NULL;
    pthread_mutex_unlock(&got_lock);
    return r;
}

static bool wait_for(const char *s) {
    for (int i = 0; i < 500 && !saw(s); i++)
        usleep(10000);
    return saw(s);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the test ------------------------------------------------------------------------ */

static void test_domain_output(void **state) {
    (void)state;
    char err[256];
    assert_int_equal(qtn_plan_apply("so=1", err, sizeof err), 0);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "quarantine[%d] domain 1: ", (int)getpid());

    assert_int_equal(so_forge(), 0);
    assert_int_equal(last_err, 0);
    bool forged_seen = wait_for("after the long line");

    /* nobody reads the program's stderr: calls go on, lines are dropped */
    atomic_store(&stalled, true);
    double t0 = now_s();
    int wrote = so_flood(20000);
    for (int i = 0; i < 100; i++)
        assert_int_equal(so_ok(), 7);
    double took = now_s() - t0;
    atomic_store(&stalled, false);
    bool drop_told = wait_for("line(s) dropped");

    /* the domain dies while the queue is full, its reader stalled: its last
     * line takes the place of lines before it, and is written once the
     * reader reads again */
    atomic_store(&stalled, true);
    assert_int_equal(so_flood(20000), 20000);
    so_die();
    assert_int_equal(last_err, QTN_EFAULT);
    usleep(300000); /* the death seen, its pipe's end read, the reader stalled */
    atomic_store(&stalled, false);
    assert_int_equal(so_ok(), 7); /* the next process serves */

    assert_int_equal(so_partial(), 0);
    qtn_shutdown(); /* the domain is gone: its last line is forwarded as it is */
    fflush(stderr);
    dup2(saved_err, 2); /* closes the pipe's last writer: the reader ends */
    pthread_join(reader, NULL);

    print_message("captured %zu bytes of the program's stderr; the flood took %.2f s\n", ngot,
                  took);
    if (!forged_seen)
        fail_msg("the domain's lines never reached the program's stderr:\n%s", got);
    /* line by line: every one the runtime's, or a domain's with its prefix */
    int lines = 0, cut = 0;
    for (char *l = got, *nl; *l; l = nl + 1) {
        nl = strchr(l, '\n');
        if (!nl)
            fail_msg("a line without its newline: %s", l);
        *nl = 0;
        lines++;
        if (strncmp(l, prefix, strlen(prefix)) && strncmp(l, "quarantine[", 11))
            fail_msg("a line that is not the runtime's nor prefixed: %s", l);
        if (!strncmp(l, "quarantine: ", 12))
            fail_msg("a forged supervisor line: %s", l);
        for (char *c = l; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f ||
                ((unsigned char)*c == 0xc2 && (unsigned char)c[1] >= 0x80 &&
                 (unsigned char)c[1] <= 0x9f))
                fail_msg("a control character (0x%02x) in: %s", (unsigned char)*c, l);
        if (strlen(l) > 1200)
            fail_msg("a line of %zu bytes was not cut", strlen(l));
        cut += strstr(l, " [line cut]") != NULL;
        *nl = '\n';
    }
    char want[9][160];
    snprintf(want[0], 160, "%squarantine: run: event=crash pid=1 signal=SIGSEGV restarts=0\n",
             prefix);
    snprintf(want[1], 160, "%squarantine: run: event=exit pid=1 status=0\n", prefix); /* stdout */
    snprintf(want[2], 160, "%sharmless\\x0dquarantine: run: event=cr\n", prefix);
    snprintf(want[3], 160, "%sx\\x1b[2K\\x1b[1Gquarantine: run: event=esc\n", prefix);
    snprintf(want[4], 160, "%sc1\\xc2\\x9b2Kquarantine: run: event=c1 caf\xc3\xa9\n", prefix);
    snprintf(want[5], 160, "%sAAAA", prefix);
    snprintf(want[6], 160, "AAAA [line cut]\n%safter the long line\n", prefix);
    snprintf(want[7], 160, "%sthe last words, without a newline\n", prefix);
    snprintf(want[8], 160, "%sthe last line, and the end\n", prefix);
    for (int i = 0; i < 9; i++)
        if (!strstr(got, want[i]))
            fail_msg("missing from the program's stderr: %s\nit has:\n%.4000s", want[i], got);
    assert_int_equal(cut, 1);
    if (wrote != 20000 || last_err || took > 5)
        fail_msg("with the program's stderr unread, the domain wrote %d of 20000 lines (%s) and "
                 "101 calls took %.1f s",
                 wrote, qtn_strerror(last_err), took);
    if (!drop_told)
        fail_msg("no word of the lines dropped while the program's stderr was unread");
    print_message("%d lines\n", lines);
}

static int setup(void **state) {
    (void)state;
    int p[2];
    if (pipe(p))
        return -1;
    host_pid = getpid();
    saved_err = dup(2);
    rd = p[0];
    dup2(p[1], 2);
    close(p[1]);
    if (pthread_create(&reader, NULL, read_stderr, NULL))
        return -1;
    if (qtn_register(&so_component) || qtn_init(NULL))
        return -1;
    return 0;
}

int main(void) {
    setenv("QTN_QUIET_FAULTS", "1", 1);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_domain_output)};
    return cmocka_run_group_tests_name("domain output", tests, setup, NULL);
}
