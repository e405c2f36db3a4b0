/* report.c - `quarantine report`: what the store knows, per component, and
 * the latest reports, as a table or as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../qis/store.h"
#include "cli.h"

static void help(FILE *f) {
    fputs("usage: quarantine report [--store PATH] [--json] [--since DURATION] [--latest N]\n"
          "\n"
          "Prints a table per component: calls and crossings (from the statistics\n"
          "snapshots quarantine run stores), faults of its domain while isolated, host\n"
          "crashes blamed on it (a crash with several components on the stack is shared\n"
          "among them, the innermost most; the share column is its part of all host\n"
          "crashes), recovery times, and where the plan last put it. Then the latest\n"
          "reports, newest first, with their backtraces (each frame with the component\n"
          "whose code it is in).\n"
          "\n"
          "  --store PATH      the store (default: $QTN_STORE, else\n"
          "                    ~/.local/state/quarantine/store.db)\n"
          "  --json            one JSON object instead of tables\n"
          "  --since DURATION  only reports of the last DURATION: 90s, 15m, 2h, 7d\n"
          "  --latest N        how many reports to list (default 5)\n"
          "\n"
          "example:\n"
          "  quarantine report --since 1h\n"
          "\n"
          "exit codes: 0 printed, 1 the store cannot be read (the message says why),\n"
          "2 bad usage\n",
          f);
}

int qtn_cli_report(int argc, char **argv) {
    const char *path = getenv("QTN_STORE");
    char def[4200];
    int json = 0, latest = 5;
    long long since = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *end = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return QTN_EXIT_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (i + 1 < argc && !strcmp(a, "--store")) {
            path = argv[++i];
        } else if (i + 1 < argc && !strcmp(a, "--latest")) {
            latest = (int)strtol(argv[++i], &end, 10);
            if (*end || latest < 0)
                goto bad;
        } else if (i + 1 < argc && !strcmp(a, "--since")) {
            double v = strtod(argv[++i], &end);
            double unit = !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600
                          : !strcmp(end, "d") ? 86400 : -1;
            if (unit < 0 || v < 0 || end == argv[i])
                goto bad;
            struct timespec w;
            clock_gettime(CLOCK_REALTIME, &w);
            since = ((long long)w.tv_sec - (long long)(v * unit)) * 1000000000LL;
        } else {
            fprintf(stderr, "quarantine: report: unknown option '%s' (try quarantine report --help)\n", a);
            return QTN_EXIT_USAGE;
        }
        continue;
    bad:
        fprintf(stderr, "quarantine: report: %s: bad value '%s'\n", a, argv[i]);
        return QTN_EXIT_USAGE;
    }
    if (!path || !*path) {
        const char *home = getenv("HOME");
        snprintf(def, sizeof def, "%s/.local/state/quarantine/store.db", home ? home : ".");
        path = def;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "quarantine: report: store %s: no such file (quarantine run makes it)\n", path);
        return QTN_EXIT_INPUT;
    }
    char err[512];
    qs_store *s = qs_open(path, 1, err, sizeof err);
    if (!s && strstr(err, "an older schema")) { /* migrate it, if it may be written */
        char werr[512];
        qs_store *w = qs_open(path, 0, werr, sizeof werr);
        qs_close(w);
        if (w)
            s = qs_open(path, 1, err, sizeof err);
    }
    if (!s) {
        fprintf(stderr, "quarantine: report: %s\n", err);
        return QTN_EXIT_INPUT;
    }
    int r = qs_print(s, stdout, json, since, latest, err, sizeof err);
    qs_close(s);
    if (r) {
        fprintf(stderr, "quarantine: report: %s\n", err);
        return QTN_EXIT_INPUT;
    }
    return QTN_EXIT_OK;
}
