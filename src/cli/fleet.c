/* fleet.c - `quarantine fleet status`: reads its options; the report is
 * src/qis/fleet.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../qis/fleet.h"
#include "../qis/pg.h"
#include "cli.h"
#include "opts.h"

static void help(FILE *f) {
    fputs("usage: quarantine fleet status [--store URI] [--json] [--mode MODE] [policy options]\n"
          "\n"
          "What a fleet's store (PostgreSQL, shared by the installations that run\n"
          "quarantine run --store URI) knows: each installation (last seen, its build,\n"
          "the plan in force), the builds, the evidence pooled per component's code\n"
          "(calls, faults, host crashes blamed, the posterior fault rate per call),\n"
          "the plan the policy recommends for the newest build (decided as the\n"
          "supervisor of the installation that ran it last would, with the rest of\n"
          "the fleet's evidence pooled) and where installations on it differ.\n"
          "\n"
          "options:\n"
          "  --store URI     the fleet's store (default: $QTN_STORE):\n"
          "                  postgresql://USER@HOST:PORT/DB, any libpq setting in its\n"
          "                  query (sslmode=require, connect_timeout=5, ...)\n"
          "  --json          one JSON object\n"
          "  --mode MODE     the policy's mode (default cooperative); the policy options\n"
          "                  of quarantine plan apply too\n"
          "\n"
          "exit codes: 0 printed, 1 the store cannot be read (the message says why),\n"
          "2 bad usage\n",
          f);
}

int qtn_cli_fleet(int argc, char **argv) {
    if (argc < 2 ||
        (strcmp(argv[1], "status") && strcmp(argv[1], "-h") && strcmp(argv[1], "--help"))) {
        fprintf(stderr, "quarantine: fleet: say status (try quarantine fleet --help)\n");
        return QTN_EXIT_USAGE;
    }
    const char *uri = getenv("QTN_STORE");
    int json = 0;
    char err[1024];
    qp_settings set;
    qp_settings_default(&set);
    set.mode = QP_COOPERATIVE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return QTN_EXIT_OK;
        }
        if (i == 1)
            continue; /* status */
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (i + 1 >= argc || strncmp(a, "--", 2)) {
            fprintf(stderr, "quarantine: fleet: %s '%s' (try quarantine fleet --help)\n",
                    strncmp(a, "--", 2) ? "unknown argument" : "a value is missing after", a);
            return QTN_EXIT_USAGE;
        }
        const char *v = argv[++i];
        int pr = qtn_opt_mode_policy("fleet", a, v, &set);
        if (pr < 0)
            return QTN_EXIT_USAGE;
        if (pr)
            continue;
        if (!strcmp(a, "--store")) {
            uri = v;
        } else {
            fprintf(stderr,
                    "quarantine: fleet: unknown option '%s' (try quarantine fleet "
                    "--help)\n",
                    a);
            return QTN_EXIT_USAGE;
        }
    }
    if (!uri || !qf_is_uri(uri)) {
        fprintf(stderr,
                "quarantine: fleet: status reads a fleet's store: --store "
                "postgresql://USER@HOST:PORT/DB (or $QTN_STORE), not %s%s%s\n",
                uri ? "'" : "", uri ? uri : "a SQLite file", uri ? "'" : "");
        return QTN_EXIT_USAGE;
    }
    if (qf_status(uri, stdout, json, &set, err, sizeof err)) {
        fprintf(stderr, "quarantine: fleet: status: %s\n", err);
        return QTN_EXIT_INPUT;
    }
    return fflush(stdout) == 0 ? QTN_EXIT_OK : QTN_EXIT_OUTPUT;
}
