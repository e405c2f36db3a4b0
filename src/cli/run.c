/* run.c - `quarantine run`: reads its options and hands over to the
 * supervisor (src/qis/supervise.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../qis/metrics.h"
#include "../qis/pg.h"
#include "../qis/supervise.h"
#include "cli.h"
#include "opts.h"

static void help(FILE *f) {
    fputs("usage: quarantine run [options] -- PROGRAM [ARGS...]\n"
          "\n"
          "Runs PROGRAM and keeps it running: when it crashes (dies of a signal), it is\n"
          "started again after a backoff, unless it crashed more than --max-restarts\n"
          "times within --window seconds. SIGTERM, SIGINT and SIGHUP are passed on to\n"
          "it; after SIGTERM or SIGINT it is not restarted. When PROGRAM exits by\n"
          "itself, quarantine run exits with its status.\n"
          "\n"
          "Everything the program's runtime hands over goes to the store: the fault\n"
          "reports of its isolated components, statistics snapshots, and the record of\n"
          "a crash of the program itself, whose frames are named and attributed to the\n"
          "components whose code they are in. A statistics file the program keeps its\n"
          "counters in is read when it is gone, however it ended, so no calls are lost\n"
          "between snapshots. A program without the runtime is supervised all the\n"
          "same; its crashes are stored from its exit status. Records are written to a\n"
          "spool file beside the store (STORE.spool/) first: when the store is locked\n"
          "or read-only they wait there and are stored later, and if this supervisor\n"
          "is killed, the next one with the same store stores what it left, each\n"
          "record once.\n"
          "\n"
          "With --policy, the plan (which components run isolated, in which domain) is\n"
          "decided from the store's evidence and measured costs, and pushed into the\n"
          "running program when the evidence changes (a fault, a host crash, a\n"
          "statistics snapshot): it repartitions live, calls in flight finish where\n"
          "they are. After a host crash the program starts again with the plan then\n"
          "decided. Each change is stored with its reason (quarantine report shows\n"
          "them) and logged as event=plan. `quarantine plan --explain` shows the\n"
          "reasoning. Without --policy the plan is QTN_PLAN's, or the program's own.\n"
          "\n"
          "The program finds QTN_RUN_START in its environment: 1 for the first start,\n"
          "2 after the first restart, and so on.\n"
          "\n"
          "options:\n"
          "  --max-restarts N      crashes allowed within the window (default 5). A crash\n"
          "                        after which the policy changes the plan is progress,\n"
          "                        not a crash loop: up to N such crashes in the window\n"
          "                        are not counted\n"
          "  --window SECONDS      the window (default 10: no harsher than systemd's\n"
          "                        Restart=always with its start limit, 5 starts in 10 s)\n"
          "  --backoff-ms MS       first delay before a restart, doubled each time up to\n"
          "                        5000 (default 100)\n"
          "  --store PATH|URI      the store (default: $QTN_STORE, else\n"
          "                        ~/.local/state/quarantine/store.db); `quarantine\n"
          "                        report` reads it. A PostgreSQL URI\n"
          "                        (postgresql://USER@HOST:PORT/DB?sslmode=...) is a\n"
          "                        fleet's store: records go to the local --outbox\n"
          "                        first and are shipped to it in the background (the\n"
          "                        program never waits on the network; while it is\n"
          "                        down they wait in the outbox); the policy pools the\n"
          "                        fleet's evidence for the same code\n"
          "  --outbox PATH         with a fleet store, the local SQLite outbox (default:\n"
          "                        ~/.local/state/quarantine/outbox.db; its spool\n"
          "                        files beside it, in PATH.spool/)\n"
          "  --fleet-refresh S     seconds between fetches of the fleet's evidence\n"
          "                        (default 30)\n"
          "  --installation ID     names this installation in the store (default: hostname)\n"
          "  --stats-interval S    seconds between statistics snapshots (default 10; 0:\n"
          "                        one when the program ends)\n"
          "  --keep-spool          keep each spool file once stored, as NAME.imported\n"
          "                        (to audit what was handed over)\n"
          "  --metrics ADDR:PORT   serve the live counters at http://ADDR:PORT/metrics in\n"
          "                        the Prometheus text format: calls, crossings, faults,\n"
          "                        calls failed, host crashes blamed, placement per\n"
          "                        component; recovery and host restart times; starts,\n"
          "                        host crashes, plan changes. A port alone listens on\n"
          "                        127.0.0.1; ADDR is a numeric IPv4 or [IPv6] address;\n"
          "                        port 0: one the kernel picks (logged as event=metrics)\n"
          "  --listen ADDR:PORT    hold a listening TCP socket there for the program,\n"
          "                        across its restarts: each start gets it as fd 3 with\n"
          "                        LISTEN_FDS=1 and LISTEN_PID (systemd's socket\n"
          "                        activation), so connections made while the program\n"
          "                        is down wait in the backlog instead of being refused.\n"
          "                        Addresses as for --metrics (logged as event=listen)\n",
          f);
    fputs(qtn_opt_policy_help, f);
    fputs("\n"
          "Log lines go to stderr, one event per line:\n"
          "  quarantine: run: event=start pid=4242 program=./server\n"
          "  quarantine: run: event=fault pid=4242 domain=1 kind=signal component=codec ...\n"
          "  quarantine: run: event=crash pid=4242 signal=SIGSEGV restarts=1\n"
          "  quarantine: run: event=host-crash pid=4242 signal=SIGSEGV component=render ...\n"
          "  quarantine: run: event=plan pid=4242 seq=1 from=\"render=host\" to=\"render=1\" "
          "reason=\"...\"\n"
          "  quarantine: run: event=plan-applied pid=4242 seq=1 plan=\"render=1\"\n"
          "\n"
          "examples:\n"
          "  quarantine run -- ./server --port 8080\n"
          "  quarantine run --policy adaptive --budget 10 -- ./server\n"
          "  QTN_PLAN='codec=1' quarantine run --max-restarts 10 --window 30 -- ./server\n"
          "  quarantine run --store /var/lib/server/quarantine.db -- ./server\n"
          "  quarantine run --policy cooperative --store postgresql://qtn@db.example/fleet "
          "-- ./server\n"
          "\n"
          "exit codes: the program's own when it exits; 128+N when it was stopped by a\n"
          "forwarded signal N; 111 when it crashed too often; 127 when it cannot be\n"
          "started; 2 for bad usage (and when --metrics cannot listen where asked)\n",
          f);
}

int qtn_cli_run(int argc, char **argv) {
    qs_sup_opts o = {.max_restarts = 5, .window_s = 10, .backoff_ms = 100, .stats_ms = -1};
    qp_settings_default(&o.set);
    char defstore[4200], defoutbox[4200], err[256];
    const char *outbox = NULL;
    o.fleet_refresh_ms = 30000;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return QTN_EXIT_OK;
        }
        if (!strcmp(a, "--keep-spool")) {
            o.keep_spool = 1;
            continue;
        }
        if (i + 1 >= argc || strncmp(a, "--", 2)) {
            fprintf(stderr, "quarantine: run: %s '%s' (try quarantine run --help)\n",
                    strncmp(a, "--", 2) ? "say what to run after --, not" : "a value is missing after",
                    a);
            return QTN_EXIT_USAGE;
        }
        const char *v = argv[++i];
        double d;
        int pr = qtn_opt_policy(a, v, &o.set, err, sizeof err);
        if (pr < 0) {
            fprintf(stderr, "quarantine: run: %s\n", err);
            return QTN_EXIT_USAGE;
        }
        if (pr > 0) {
            o.policy |= !strcmp(a, "--policy");
            continue;
        }
        if (!strcmp(a, "--store")) {
            o.store_path = v;
        } else if (!strcmp(a, "--metrics") || !strcmp(a, "--listen")) {
            struct sockaddr_storage addr;
            if (qm_parse_addr(v, &addr, err, sizeof err)) {
                fprintf(stderr, "quarantine: run: %s: %s\n", a, err);
                return QTN_EXIT_USAGE;
            }
            if (!strcmp(a, "--metrics"))
                o.metrics = v;
            else
                o.listen = v;
        } else if (!strcmp(a, "--outbox")) {
            outbox = v;
        } else if (!strcmp(a, "--fleet-refresh")) {
            if (qtn_opt_num(v, 0.1, 86400, &d))
                goto bad;
            o.fleet_refresh_ms = (int)(d * 1000);
        } else if (!strcmp(a, "--installation")) {
            if (!*v || strlen(v) > 120) {
                fprintf(stderr, "quarantine: run: --installation: 1 to 120 characters, not "
                                "'%s'\n", v);
                return QTN_EXIT_USAGE;
            }
            o.installation = v;
        } else if (!strcmp(a, "--max-restarts")) {
            if (qtn_opt_num(v, 0, 10000, &d) || d != (int)d)
                goto bad;
            o.max_restarts = (int)d;
        } else if (!strcmp(a, "--window")) {
            if (qtn_opt_num(v, 0.001, 86400 * 365.0, &d))
                goto bad;
            o.window_s = d;
        } else if (!strcmp(a, "--backoff-ms")) {
            if (qtn_opt_num(v, 0, 3600000, &d) || d != (int)d)
                goto bad;
            o.backoff_ms = (int)d;
        } else if (!strcmp(a, "--stats-interval")) {
            if (qtn_opt_num(v, 0, 86400, &d))
                goto bad;
            o.stats_ms = (int)(d * 1000);
        } else {
            fprintf(stderr, "quarantine: run: unknown option '%s' (try quarantine run --help)\n", a);
            return QTN_EXIT_USAGE;
        }
        continue;
    bad:
        fprintf(stderr, "quarantine: run: %s: '%s' is not %s\n", a, v,
                !strcmp(a, "--window")           ? "a number of seconds, 0.001 to 31536000"
                : !strcmp(a, "--max-restarts")   ? "a whole number, 0 to 10000"
                : !strcmp(a, "--backoff-ms")     ? "a whole number of ms, 0 to 3600000"
                : !strcmp(a, "--fleet-refresh")  ? "a number of seconds, 0.1 to 86400"
                                                 : "a number of seconds, 0 to 86400");
        return QTN_EXIT_USAGE;
    }
    if (i >= argc) {
        fprintf(stderr, "quarantine: run: say what to run after -- (try quarantine run --help)\n");
        return QTN_EXIT_USAGE;
    }
    o.argv = argv + i;
    if (!o.store_path)
        o.store_path = qtn_opt_store(defstore, sizeof defstore, 1);
    if (qf_is_uri(o.store_path)) {
        o.fleet_uri = o.store_path;
        o.store_path = outbox ? outbox : qtn_opt_outbox(defoutbox, sizeof defoutbox);
    } else if (outbox) {
        fprintf(stderr, "quarantine: run: --outbox is for a fleet's store (--store "
                        "postgresql://...), not for %s\n", o.store_path);
        return QTN_EXIT_USAGE;
    }
    return qs_supervise(&o);
}
