/* report.c - `quarantine report`: what the store knows, per component, and
 * the latest reports, or the crash buckets, as a table or as JSON; or all of
 * it as one HTML page. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../qis/bucket.h"
#include "../qis/html.h"
#include "../qis/ship.h"
#include "../qis/store.h"
#include "cli.h"
#include "opts.h"

#define SINCE_MAX (36500 * 86400.0) /* --since: a hundred years at most */
#define LATEST_MAX 1000000

static void help(FILE *f) {
    fputs("usage: quarantine report [--store PATH] [--json] [--since DURATION] [--latest N]\n"
          "                         [--buckets] [--html FILE]\n"
          "\n"
          "Prints a table per component: calls and crossings (from the statistics\n"
          "snapshots quarantine run stores), faults of its domain while isolated, host\n"
          "crashes blamed on it (a crash with several components on the stack is shared\n"
          "among them, the innermost most; the share column is its part of all host\n"
          "crashes), recovery times, and where the plan last put it; the domains\n"
          "parked (restarted too often: their calls fail at once), since when, and the\n"
          "calls that failed meanwhile. Then the latest reports, newest first, with\n"
          "their backtraces (each frame with the component whose code it is in).\n"
          "\n"
          "  --store PATH|URI  the store (default: $QTN_STORE, else\n"
          "                    ~/.local/state/quarantine/store.db), or a fleet's\n"
          "                    (postgresql://USER@HOST:PORT/DB): all its installations\n"
          "  --json            one JSON object instead of tables\n"
          "  --since DURATION  only what happened in the last DURATION: 90 (seconds),\n"
          "                    90s, 15m, 2h, 7d (at most 36500d)\n"
          "  --latest N        how many reports and plan changes to list (default 5;\n"
          "                    0 to 1000000)\n"
          "  --buckets         the crash buckets instead: reports grouped by signature\n"
          "                    (their top frames in component code, with the kind and\n"
          "                    signal; docs/buckets.md), each with its component, count,\n"
          "                    installations, first and last seen, the builds it was seen\n"
          "                    in, new in this build or regressed, and an example report\n"
          "  --html FILE       write one self-contained HTML page to FILE instead (it\n"
          "                    loads nothing from anywhere; charts are inline SVG):\n"
          "                    faults and host crashes per component over time, the\n"
          "                    plan timeline with the reason of each change, crossing\n"
          "                    overhead per edge against the budget, recovery and host\n"
          "                    restart times, the call graph with its boundaries, and\n"
          "                    the crash buckets with their example backtraces\n"
          "\n"
          "example:\n"
          "  quarantine report --since 1h\n"
          "  quarantine report --html report.html\n"
          "\n"
          "exit codes: 0 printed, 1 the store cannot be read (the message says why),\n"
          "2 bad usage\n",
          f);
}

/* The page, written beside `path` first and renamed over it: a reader
 * never sees half a page. */
static int write_html(qs_store *s, const char *path, long long since, char *err, size_t len) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, len, "--html %s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    int r = qh_write(s, f, since, err, len);
    if (fflush(f) || ferror(f)) {
        if (!r)
            snprintf(err, len, "--html %s: cannot write: %s", path, strerror(errno));
        r = -1;
    }
    if (fclose(f) && !r) {
        snprintf(err, len, "--html %s: cannot write: %s", path, strerror(errno));
        r = -1;
    }
    if (!r && rename(tmp, path)) {
        snprintf(err, len, "--html %s: cannot put it in place: %s", path, strerror(errno));
        r = -1;
    }
    if (r)
        unlink(tmp);
    return r;
}

int qtn_cli_report(int argc, char **argv) {
    const char *path = getenv("QTN_STORE");
    char def[4200];
    int json = 0, latest = 5, buckets = 0;
    const char *html = NULL;
    long long since = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double v;
        int takes = !strcmp(a, "--store") || !strcmp(a, "--latest") || !strcmp(a, "--since") ||
                    !strcmp(a, "--html");
        if (takes && i + 1 >= argc) {
            fprintf(stderr, "quarantine: report: %s needs a value (try quarantine report "
                            "--help)\n", a);
            return QTN_EXIT_USAGE;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return QTN_EXIT_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--buckets")) {
            buckets = 1;
        } else if (!strcmp(a, "--html")) {
            html = argv[++i];
            if (!*html) {
                fprintf(stderr, "quarantine: report: --html needs a file name\n");
                return QTN_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--store")) {
            path = argv[++i];
        } else if (!strcmp(a, "--latest")) {
            if (qtn_opt_num(argv[++i], 0, LATEST_MAX, &v) || v != (int)v) {
                fprintf(stderr, "quarantine: report: --latest: '%s' is not a whole number, 0 to "
                                "%d\n", argv[i], LATEST_MAX);
                return QTN_EXIT_USAGE;
            }
            latest = (int)v;
        } else if (!strcmp(a, "--since")) {
            if (qtn_opt_duration(argv[++i], SINCE_MAX, &v)) {
                fprintf(stderr, "quarantine: report: --since: '%s' is not a duration: 90 "
                                "(seconds), 90s, 15m, 2h, 7d, at most 36500d\n", argv[i]);
                return QTN_EXIT_USAGE;
            }
            struct timespec w;
            clock_gettime(CLOCK_REALTIME, &w);
            long long now = (long long)w.tv_sec * 1000000000LL + w.tv_nsec;
            long long back = (long long)(v * 1e9); /* at most 3.2e18: no overflow */
            since = now > back ? now - back : 0;
        } else {
            fprintf(stderr, "quarantine: report: unknown option '%s' (try quarantine report --help)\n", a);
            return QTN_EXIT_USAGE;
        }
    }
    if (!path || !*path)
        path = qtn_opt_store(def, sizeof def, 0);
    char err[1024];
    qs_store *s = qf_open_to_read(path, NULL, 0, err, sizeof err);
    if (!s) {
        fprintf(stderr, "quarantine: report: %s\n", err);
        return QTN_EXIT_INPUT;
    }
    int r = html      ? write_html(s, html, since, err, sizeof err)
            : buckets ? qb_print(s, stdout, json, since, err, sizeof err)
                      : qs_print(s, stdout, json, since, latest, err, sizeof err);
    qs_close(s);
    if (r) {
        fprintf(stderr, "quarantine: report: %s\n", err);
        return QTN_EXIT_INPUT;
    }
    return QTN_EXIT_OK;
}
