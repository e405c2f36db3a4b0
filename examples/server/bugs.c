/* bugs.c - reads the switches of the server's concurrency bugs (bugs.h). */
#include "bugs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

srv_bugs srv_bug_cfg = {0, 0, 100};

static const struct {
    const char *name;
    unsigned bit;
} bug_names[] = {{"cache", SRV_BUG_CACHE}, {"log", SRV_BUG_LOG}, {"query", SRV_BUG_QUERY}};

#define NBUGS (sizeof bug_names / sizeof bug_names[0])

static int number(const char *s, uint32_t max, uint32_t *out) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int srv_bugs_init(const char *list, const char *window_us, const char *window_pct, char *err,
                  size_t errlen) {
    srv_bugs b = {0, 0, 100};
    if (list && *list) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", list);
        char *save = NULL;
        for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
            if (!strcmp(t, "all") || !strcmp(t, "none")) {
                b.on = *t == 'a' ? SRV_BUG_CACHE | SRV_BUG_LOG | SRV_BUG_QUERY : 0;
                continue;
            }
            size_t i = 0;
            while (i < NBUGS && strcmp(t, bug_names[i].name) != 0)
                i++;
            if (i == NBUGS) {
                snprintf(err, errlen, "SERVER_BUGS: unknown bug '%s' (cache, log, query, all)", t);
                return -1;
            }
            b.on |= bug_names[i].bit;
        }
    }
    if (window_us && *window_us && number(window_us, 10000000, &b.window_us)) {
        snprintf(err, errlen, "SERVER_BUG_WINDOW_US: '%s' is not a number of microseconds",
                 window_us);
        return -1;
    }
    if (window_pct && *window_pct && number(window_pct, 100, &b.window_pct)) {
        snprintf(err, errlen, "SERVER_BUG_WINDOW_PCT: '%s' is not a percentage 0..100", window_pct);
        return -1;
    }
    srv_bug_cfg = b;
    return 0;
}

const char *srv_bugs_names(void) {
    static char names[64];
    names[0] = 0;
    for (size_t i = 0; i < NBUGS; i++)
        if (srv_bug_cfg.on & bug_names[i].bit)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                     names[0] ? "," : "", bug_names[i].name);
    return names[0] ? names : "none";
}
