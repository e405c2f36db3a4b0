/* cli.h - the subcommands of `quarantine`. Each returns the exit code. */
#ifndef QTN_CLI_H
#define QTN_CLI_H

enum { QTN_EXIT_OK = 0, QTN_EXIT_INPUT = 1, QTN_EXIT_USAGE = 2, QTN_EXIT_OUTPUT = 3 };

int qtn_cli_gen(int argc, char **argv);
int qtn_cli_run(int argc, char **argv);
int qtn_cli_report(int argc, char **argv);
int qtn_cli_plan(int argc, char **argv);
int qtn_cli_sim(int argc, char **argv);
int qtn_cli_fleet(int argc, char **argv);

#endif
