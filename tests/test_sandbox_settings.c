/* test_sandbox_settings.c - every environment setting qtn_init reads, given
 * a value it cannot take: qtn_init must say, on stderr as
 * `quarantine[PID]: ...`, which setting, the value given and what it takes;
 * and fail (sizes) or go on with the default (choices), as documented. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "quarantine.h"

static char said[8192];

/* qtn_init with $name=value (NULL: none) and cfg, what it wrote to stderr
 * in said[]; the runtime is shut down again when it started. */
static int init_with(const char *name, const char *value, const qtn_config *cfg) {
    if (name)
        setenv(name, value, 1);
    char path[] = "/tmp/qtn-settings-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    int r = qtn_init(cfg);
    if (r == 0 || r == QTN_EPLAN) /* started, with the plan it had before */
        qtn_shutdown();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, said, sizeof said - 1, 0);
    said[n > 0 ? n : 0] = 0;
    close(fd);
    if (name)
        unsetenv(name);
    return r;
}

typedef struct tcase {
    const char *name, *value;
    int result;         /* qtn_init's */
    const char *say[3]; /* what the message must hold */
} tcase;

static const tcase cases[] = {
    {"QTN_CHANNELS",
     "0",
     QTN_ERANGE,
     {"QTN_CHANNELS=0: out of range", "takes a number of channels per domain from 1 to 1012"}},
    {"QTN_CHANNELS", "2000", QTN_ERANGE, {"QTN_CHANNELS=2000: out of range", "from 1 to 1012"}},
    {"QTN_CHANNELS",
     "600",
     QTN_ERANGE,
     {"QTN_CHANNELS=600 and window_kib (default 1024)", "need 612 MiB, more than the",
      "at most 499 channels"}},
    {"QTN_CHANNELS",
     "abc",
     0,
     {"ignoring QTN_CHANNELS=abc: not a number: takes a number of channels per domain from 1 "
      "to 1012; using 256"}},
    {"QTN_WINDOW_KIB",
     "15",
     QTN_ERANGE,
     {"QTN_WINDOW_KIB=15: out of range: takes a number of KiB per channel from 16 to 65536"}},
    {"QTN_DEADLINE_MS",
     "-1",
     0,
     {"ignoring QTN_DEADLINE_MS=-1: out of range: takes 0 (no deadline) or a number of "
      "milliseconds up to 2147483647; using 10000"}},
    {"QTN_SPIN_NS",
     "fast",
     0,
     {"ignoring QTN_SPIN_NS=fast: not a number: takes a number of nanoseconds"}},
    {"QTN_RESTART_MAX",
     "-3",
     0,
     {"ignoring QTN_RESTART_MAX=-3: out of range: takes a number of restarts"}},
    {"QTN_RESTART_WINDOW_MS",
     "1e3",
     0,
     {"ignoring QTN_RESTART_WINDOW_MS=1e3: not a number: takes a number of milliseconds"}},
    {"QTN_RESTART_SHARE",
     "150",
     0,
     {"ignoring QTN_RESTART_SHARE=150: out of range: takes a percentage of the restart window "
      "from 0 to 100; using 10"}},
    {"QTN_RESTART_SHARE",
     "10%",
     0,
     {"ignoring QTN_RESTART_SHARE=10%: not a number: takes a percentage"}},
    {"QTN_SECCOMP",
     "2",
     0,
     {"ignoring QTN_SECCOMP=2: out of range: takes 0 (no call-time filter), 1 or log (say "
      "what it denies, fail it); using 1"}},
    {"QTN_CRASH_HANDLER",
     "yes",
     0,
     {"ignoring QTN_CRASH_HANDLER=yes: takes 0 (no crash handler) or 1; using 1"}},
    {"QTN_STATS_FD",
     "abc",
     0,
     {"ignoring QTN_STATS_FD=abc: takes the number of an open statistics file descriptor"}},
    {"QTN_DOMAIN_THREADS",
     "3",
     QTN_ERANGE,
     {"QTN_DOMAIN_THREADS=3: out of range: takes 0 (no limit) or a number of threads from 265"}},
    {"QTN_DOMAIN_MEMORY_MIB",
     "1",
     QTN_ERANGE,
     {"QTN_DOMAIN_MEMORY_MIB=1: out of range: takes 0 (no limit) or a number of MiB from 64"}},
    {"QTN_DOMAIN_OOM_SCORE_ADJ",
     "2000",
     0,
     {"ignoring QTN_DOMAIN_OOM_SCORE_ADJ=2000: out of range: takes 0 (as inherited) or an OOM "
      "score adjustment from 1 to 1000; using 1000"}},
    {"QTN_LANDLOCK",
     "maybe",
     0,
     {"ignoring QTN_LANDLOCK=maybe: not a number: takes 0 (do not use Landlock) or 1"}},
    {"QTN_PLAN", "nosuch=1", QTN_EPLAN, {"QTN_PLAN: ", "nosuch"}},
};

/* values they take, said nothing of */
static const char *const good[][2] = {
    {"QTN_DOMAIN_THREADS", "0"},       {"QTN_DOMAIN_THREADS", "265"},
    {"QTN_DOMAIN_MEMORY_MIB", "0"},    {"QTN_DOMAIN_MEMORY_MIB", "64"},
    {"QTN_DOMAIN_OOM_SCORE_ADJ", "0"}, {"QTN_LANDLOCK", "0"},
    {"QTN_DEADLINE_MS", "0"},          {"QTN_SECCOMP", "0"},          {"QTN_SECCOMP", "log"},
    {"QTN_CHANNELS", "499"},           {"QTN_CRASH_HANDLER", "1"},
    {"QTN_RESTART_SHARE", "0"},        {"QTN_RESTART_SHARE", "100"},
};

static void test_messages(void **state) {
    (void)state;
    char pfx[32];
    snprintf(pfx, sizeof pfx, "quarantine[%d]: ", (int)getpid());
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const tcase *c = &cases[i];
        int r = init_with(c->name, c->value, NULL);
        bool ok = r == c->result && !strncmp(said, pfx, strlen(pfx));
        for (int k = 0; k < 3 && c->say[k]; k++)
            ok = ok && strstr(said, c->say[k]);
        if (!ok) {
            print_error("%s=%s: qtn_init returned %d (%s), want %d; it said: %s\n", c->name,
                        c->value, r, qtn_strerror(r), c->result, said[0] ? said : "nothing\n");
            bad++;
        }
    }
    /* a field out of range names the field */
    qtn_config cfg = {.channels = 2000};
    int r = init_with(NULL, NULL, &cfg);
    if (r != QTN_ERANGE || !strstr(said, "qtn_config.channels=2000: out of range")) {
        print_error("qtn_config.channels=2000: qtn_init returned %d; it said: %s\n", r, said);
        bad++;
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int g = init_with(good[i][0], good[i][1], NULL);
        if (g || said[0]) {
            print_error("%s=%s: qtn_init returned %d; it said: %s\n", good[i][0], good[i][1], g,
                        said[0] ? said : "nothing\n");
            bad++;
        }
    }
    /* and a good start says nothing */
    assert_int_equal(init_with(NULL, NULL, NULL), 0);
    if (said[0]) {
        print_error("a start with no setting said: %s\n", said);
        bad++;
    }
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_messages)};
    return cmocka_run_group_tests_name("settings", tests, NULL, NULL);
}
