/* test_statsfile.c - the supervisor's statistics file (QTN_STATS_FD) across
 * a qtn_shutdown and a second qtn_init: adopted once, counted into all the
 * while, and never mapped by a domain process (the zygote of the second
 * qtn_init is forked from a host that has it mapped), which counts in an
 * area of its own. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fx.h"
#include "statsfile.h"

static char path[] = "/tmp/qtn-statsfile-XXXXXX";

/* Whether process pid maps the statistics file. */
static int maps_file(int pid) {
    char mp[64], line[4096];
    snprintf(mp, sizeof mp, "/proc/%d/maps", pid);
    FILE *f = fopen(mp, "r");
    assert_non_null(f);
    int found = 0;
    while (fgets(line, sizeof line, f))
        found |= strstr(line, path) != NULL;
    fclose(f);
    return found;
}

static uint64_t calls(void) {
    qtn_stats st;
    assert_int_equal(qtn_stats_edge("program", "fx", &st), 0);
    return st.calls;
}

static void test_second_init(void **state) {
    (void)state;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)QTN__SF_SIZE), 0);
    char num[16];
    snprintf(num, sizeof num, "%d", fd);
    setenv("QTN_STATS_FD", num, 1);
    qtn_config cfg = {.plan = "fx=host"};
    assert_int_equal(qtn_init(&cfg), 0);
    assert_int_equal(maps_file(getpid()), 1); /* adopted */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(fx_ok(i), i + 1);
    uint64_t before = calls();
    assert_true(before >= 1000);
    qtn_shutdown();
    /* the fd number is free again: something else takes it */
    int other = open("/dev/null", O_RDONLY);
    assert_int_equal(other, fd);
    cfg.plan = "fx=1";
    assert_int_equal(qtn_init(&cfg), 0);
    assert_int_equal(fcntl(other, F_GETFD), 0); /* not closed as if it were the file */
    assert_int_equal(fx_ok(0), 1); /* the domain is up */
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(1, &di), 0);
    int pid = di.pid;
    assert_true(pid > 0 && pid != getpid());
    assert_int_equal(maps_file(pid), 0); /* the domain never has the file */
    assert_int_equal(maps_file(getpid()), 1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(fx_ok(i), i + 1);
    assert_int_equal(calls(), before + 11); /* nothing wiped, still counted */
    qtn_shutdown();
    close(other);
    unlink(path);
}

int main(void) {
    if (qtn_register(&fx_component) || qtn_register(&fy_component))
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_second_init)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
