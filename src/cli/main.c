/* main.c - the `quarantine` command: one subcommand per part. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fputs("usage: quarantine <command> [options]\n"
          "\n"
          "commands:\n"
          "  gen      generate stubs from annotated headers (quarantine gen --help)\n"
          "  run      run a program and restart it when it crashes (quarantine run --help)\n"
          "  report   what the store knows about faults (quarantine report --help)\n"
          "  plan     the plan the policy chooses, and why (quarantine plan --help)\n"
          "  fleet    what a fleet's PostgreSQL store knows (quarantine fleet --help)\n"
          "  sim      the policy's modes on a simulated fleet, against an oracle\n"
          "           (quarantine sim --help)\n"
          "\n"
          "exit codes: 0 success, 1 bad input (the messages say what and where),\n"
          "2 bad usage, 3 output could not be written\n",
          f);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "gen"))
        return qtn_cli_gen(argc - 1, argv + 1);
    if (!strcmp(argv[1], "run"))
        return qtn_cli_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "report"))
        return qtn_cli_report(argc - 1, argv + 1);
    if (!strcmp(argv[1], "plan"))
        return qtn_cli_plan(argc - 1, argv + 1);
    if (!strcmp(argv[1], "fleet"))
        return qtn_cli_fleet(argc - 1, argv + 1);
    if (!strcmp(argv[1], "sim"))
        return qtn_cli_sim(argc - 1, argv + 1);
    fprintf(stderr, "quarantine: unknown command '%s' (try quarantine --help)\n", argv[1]);
    return 2;
}
