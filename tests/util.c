/* util.c - helpers the runtime tests share. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "quarantine.h"
#include "util.h"

int tu_count_dir(const char *path) {
    int n = 0;
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

long tu_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

void tu_settle(int d) {
    for (int i = 0; i < 10000; i++) {
        qtn_domain_info di;
        if (qtn_domain_info_get(d, &di) == 0 && di.spares_ready == di.spares_kept &&
            (di.spare_ready || !di.spares_kept))
            return;
        usleep(500);
    }
    fail_msg("domain %d has not all its spares ready", d);
}

void tu_plan(const char *plan) {
    char err[256];
    int r = qtn_plan_apply(plan, err, sizeof err);
    if (r)
        fail_msg("plan '%s': %s (%s)", plan, qtn_strerror(r), err);
}

void tu_wait_count(int fds, int threads) {
    for (int i = 0; i < 500; i++) {
        if (tu_count_dir("/proc/self/fd") == fds && tu_count_dir("/proc/self/task") == threads)
            return;
        usleep(10000);
    }
    fail_msg("%d fds and %d threads, were %d and %d", tu_count_dir("/proc/self/fd"),
             tu_count_dir("/proc/self/task"), fds, threads);
}
