/* test_seccomp_log.c - QTN_SECCOMP=log: the domain's call-time filter stays
 * on, and a system call it denies fails with ENOSYS instead of killing the
 * domain, said once on stderr naming the component and the call: how a user
 * learns what a component would need (QTN_SYSCALLS). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fx.h"
#include "quarantine.h"

static char errpath[] = "/tmp/qtn-seccomp-log-XXXXXX";

/* What stderr got so far, once it holds `want` (the domain's output comes
 * through the host's relay, a little later), or after 5 s. */
static const char *said_with(const char *want) {
    static char buf[16384];
    for (int i = 0; i < 500; i++) {
        int fd = open(errpath, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : 0;
        if (fd >= 0)
            close(fd);
        buf[n > 0 ? n : 0] = 0;
        if (strstr(buf, want))
            break;
        struct timespec ten = {0, 10000000};
        nanosleep(&ten, NULL);
    }
    return buf;
}

static void test_log_mode(void **state) {
    (void)state;
    qtn_domain_info before, after;
    assert_int_equal(fx_ok(1), 2);
    assert_int_equal(qtn_domain_info_get(1, &before), 0);
    qtn_clear_error();
    assert_int_equal(fx_crash(FX_OPEN), -5); /* its open failed; the call returned */
    assert_int_equal(qtn_last_error(), 0);
    assert_int_equal(fx_crash(FX_OPEN), -5);
    assert_int_equal(qtn_domain_info_get(1, &after), 0);
    assert_int_equal(after.restarts, before.restarts); /* never killed */
    assert_int_equal(after.pid, before.pid);
    const char *want = "component fx: system call openat denied by the domain's filter: it would "
                       "need it (QTN_SECCOMP=log); failed with ENOSYS";
    const char *s = said_with(want);
    if (!strstr(s, want))
        fail_msg("stderr does not say '%s'; it says: %s", want, s);
    assert_null(strstr(strstr(s, want) + 1, want)); /* once */
}

int main(void) {
    int fd = mkstemp(errpath);
    if (fd < 0 || dup2(fd, 2) < 0)
        return 1;
    close(fd);
    setenv("QTN_SECCOMP", "log", 1);
    setenv("QTN_QUIET_FAULTS", "1", 1);
    if (qtn_register(&fx_component) || qtn_register(&fy_component))
        return 1;
    qtn_config cfg = {.plan = "fx=1"};
    if (qtn_init(&cfg))
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_log_mode)};
    int r = cmocka_run_group_tests_name("seccomp_log", tests, NULL, NULL);
    qtn_shutdown();
    /* cmocka wrote to stderr too: show it all where the test's output goes */
    fd = open(errpath, O_RDONLY);
    char buf[4096];
    ssize_t n;
    while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0)
        if (write(1, buf, (size_t)n) < 0)
            break;
    if (fd >= 0)
        close(fd);
    unlink(errpath);
    return r;
}
