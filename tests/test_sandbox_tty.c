/* test_sandbox_tty.c - the program runs on a terminal (a pty that is its
 * controlling terminal, on its stdin, stdout and stderr), and a hostile
 * component tries to type into it: TIOCSTI on its stdin in the init hook,
 * on /dev/tty in the init hook, and on its stdin at call time; and to make
 * the program's stdout non-blocking (FIONBIO). Nothing may reach the
 * program's input, and its stdout must stay blocking. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "quarantine.h"

/* ---- the "ty" component --------------------------------------------------------------- */

static int init_stdin = -2, init_tty = -2; /* what the init hook's TIOCSTI did: 0 typed */

static void ty_init(void) {
    char c = 'X';
    init_stdin = ioctl(0, TIOCSTI, &c) == 0 ? 0 : errno;
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
    c = 'Y';
    init_tty = fd < 0 ? errno : ioctl(fd, TIOCSTI, &c) == 0 ? 0 : errno;
    if (fd >= 0)
        close(fd);
}

static int ty_type_real(int32_t what) {
    char c = 'Z';
    int on = 1;
    switch (what) {
    case 0: return init_stdin;
    case 1: return init_tty;
    case 2: return ioctl(0, TIOCSTI, &c) == 0 ? 0 : errno;
    case 3: return ioctl(1, FIONBIO, &on) == 0 ? 0 : errno;
    default: return -1000;
    }
}

static void ty_type_thunk(qtn_val *a, qtn_val *r) { r->i = ty_type_real((int32_t)a[0].i); }
static const qtn_param p_i32[] = {QTN_P_SCALAR(QTN_T_I32)};
static qtn_component ty_component;
static const qtn_entry ty_type_entry = {.name = "ty_type",
                                        .component = &ty_component,
                                        .thunk = ty_type_thunk,
                                        .ret = QTN_T_I32,
                                        .nparams = 1,
                                        .params = p_i32,
                                        .fault = {.i = -1}};
static const qtn_entry *const ty_entries[] = {&ty_type_entry};
static qtn_component ty_component = {
    .name = "ty", .nentries = 1, .entries = ty_entries, .init = ty_init};

static int ty_type(int32_t what) {
    static qtn_edge e = QTN_EDGE_INIT(NULL, &ty_type_entry);
    if (QTN_DIRECT(&e))
        return ty_type_real(what);
    qtn_val v[1] = {{.i = what}}, r;
    qtn_call(&e, v, &r);
    return (int)r.i;
}

/* ---- the program on the terminal (a child of the test) ---------------------------------- */

enum { OK = 0, TYPED_INIT_STDIN = 10, TYPED_INIT_TTY, TYPED_CALL, NONBLOCK, INJECTED, SETUP };

static int on_terminal(const char *slave) {
    setsid();
    int fd = open(slave, O_RDWR); /* a session leader's first terminal: its controlling one */
    if (fd < 0)
        return SETUP;
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2)
        close(fd);
    struct termios t;
    tcgetattr(0, &t);
    cfmakeraw(&t); /* a typed byte is readable at once */
    tcsetattr(0, TCSANOW, &t);
    setenv("QTN_QUIET_FAULTS", "1", 1);
    if (qtn_register(&ty_component) || qtn_init(NULL))
        return SETUP;
    char err[256];
    if (qtn_plan_apply("ty=1", err, sizeof err))
        return SETUP;
    int fl = fcntl(1, F_GETFL);
    int rc = OK;
    if (ty_type(0) == 0)
        rc = TYPED_INIT_STDIN;
    else if (ty_type(1) == 0)
        rc = TYPED_INIT_TTY;
    else if (ty_type(2) == 0)
        rc = TYPED_CALL;
    ty_type(3);
    if (rc == OK && fcntl(1, F_GETFL) != fl)
        rc = NONBLOCK;
    /* whatever the calls said: did anything reach this program's input? */
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (rc == OK && poll(&p, 1, 300) == 1 && (p.revents & POLLIN))
        rc = INJECTED;
    qtn_shutdown();
    return rc;
}

static void test_no_typing_into_the_terminal(void **state) {
    (void)state;
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(m >= 0);
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    char slave[128];
    assert_int_equal(ptsname_r(m, slave, sizeof slave), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(m);
        _exit(on_terminal(slave));
    }
    /* read what the program writes on its terminal, so it never waits */
    char buf[4096];
    int st = 0;
    bool done = false;
    for (int i = 0; i < 600 && !done; i++) {
        struct pollfd p = {.fd = m, .events = POLLIN};
        if (poll(&p, 1, 100) == 1 && read(m, buf, sizeof buf) <= 0)
            usleep(1000); /* the terminal is closed: the program is ending */
        done = waitpid(pid, &st, WNOHANG) == pid;
    }
    close(m);
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        fail_msg("the program on the terminal did not finish");
    }
    assert_true(WIFEXITED(st));
    static const char *const what[] = {
        [TYPED_INIT_STDIN] = "the init hook typed into the terminal through stdin",
        [TYPED_INIT_TTY] = "the init hook typed into the terminal through /dev/tty",
        [TYPED_CALL] = "a call typed into the terminal through stdin",
        [NONBLOCK] = "a call made the program's stdout non-blocking",
        [INJECTED] = "something typed reached the program's input",
        [SETUP] = "the program could not be set up on the terminal"};
    int rc = WEXITSTATUS(st);
    if (rc != OK)
        fail_msg("%s", rc >= TYPED_INIT_STDIN && rc <= SETUP ? what[rc] : "unknown failure");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_no_typing_into_the_terminal)};
    return cmocka_run_group_tests_name("terminal", tests, NULL, NULL);
}
