/* plan.c - `quarantine plan`: the plan the policy chooses from what the
 * store knows, with its reasoning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../qis/replan.h"
#include "../qis/ship.h"
#include "cli.h"
#include "opts.h"

static void help(FILE *f) {
    fputs("usage: quarantine plan [--store PATH] [--installation ID] [--build ID]\n"
          "                       [--mode MODE] [policy options] [--explain] [--json]\n"
          "\n"
          "Prints the plan the policy chooses now for the program an installation ran\n"
          "last under quarantine run, in the form QTN_PLAN takes (component=host or\n"
          "component=N, N a domain). It is the decision `quarantine run --policy` would\n"
          "make: the same evidence (calls, faults while isolated, host crashes blamed,\n"
          "for each component's current code), the same measured costs and the same\n"
          "settings. The dwell and the hourly limit pace live changes and do not apply\n"
          "here; the gain a change must bring does.\n"
          "\n"
          "  --store PATH|URI    the store (default: $QTN_STORE, else\n"
          "                      ~/.local/state/quarantine/store.db), or a fleet's\n"
          "                      (postgresql://USER@HOST:PORT/DB): the installation's\n"
          "                      records, the rest of the fleet's evidence pooled\n"
          "  --installation ID   whose evidence is local (default: hostname)\n"
          "  --build ID          the build to decide for (default: the one run last)\n"
          "  --mode MODE         as --policy of quarantine run (default adaptive)\n"
          "  --explain           a table per component and the reasons, in words\n"
          "  --json              the same as one JSON object\n",
          f);
    fputs(qtn_opt_policy_help, f);
    fputs("\n"
          "example:\n"
          "  quarantine plan --explain\n"
          "  QTN_PLAN=\"$(quarantine plan)\" ./server\n"
          "\n"
          "exit codes: 0 printed, 1 the store cannot be read or knows nothing to decide\n"
          "from (the message says which), 2 bad usage\n",
          f);
}

int qtn_cli_plan(int argc, char **argv) {
    char defstore[4200], err[1024], inst[128] = "";
    const char *path = NULL, *build = NULL;
    int explain = 0, json = 0;
    qp_settings set;
    qp_settings_default(&set);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return QTN_EXIT_OK;
        }
        if (!strcmp(a, "--explain")) {
            explain = 1;
            continue;
        }
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (i + 1 >= argc || strncmp(a, "--", 2)) {
            fprintf(stderr, "quarantine: plan: %s '%s' (try quarantine plan --help)\n",
                    strncmp(a, "--", 2) ? "unknown argument" : "a value is missing after", a);
            return QTN_EXIT_USAGE;
        }
        const char *v = argv[++i];
        int pr = qtn_opt_mode_policy("plan", a, v, &set);
        if (pr < 0)
            return QTN_EXIT_USAGE;
        if (pr)
            continue;
        if (!strcmp(a, "--store"))
            path = v;
        else if (!strcmp(a, "--installation"))
            snprintf(inst, sizeof inst, "%s", v);
        else if (!strcmp(a, "--build"))
            build = v;
        else {
            fprintf(stderr, "quarantine: plan: unknown option '%s' (try quarantine plan --help)\n",
                    a);
            return QTN_EXIT_USAGE;
        }
    }
    if (!path)
        path = qtn_opt_store(defstore, sizeof defstore, 0);
    if (!inst[0] && gethostname(inst, sizeof inst - 1))
        strcpy(inst, "unknown");
    qs_store *s = qf_open_to_read(path, inst, set.half_life_s, err, sizeof err);
    if (!s) {
        fprintf(stderr, "quarantine: plan: %s\n", err);
        return QTN_EXIT_INPUT;
    }
    struct timespec w;
    clock_gettime(CLOCK_REALTIME, &w);
    qs_decision d;
    int r = qs_decide(s, inst, build, NULL, 0.1, 1, (int64_t)w.tv_sec * 1000000000LL + w.tv_nsec,
                      &set, &d, err, sizeof err);
    if (r) {
        fprintf(stderr, "quarantine: plan: %s\n", err);
        qs_close(s);
        return QTN_EXIT_INPUT;
    }
    qs_decision_print(stdout, &d, &set, explain, json);
    qs_decision_free(&d);
    qs_close(s);
    return fflush(stdout) == 0 ? QTN_EXIT_OK : QTN_EXIT_OUTPUT;
}
