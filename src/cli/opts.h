/* opts.h - option values shared by the subcommands: numbers and durations
 * read strictly (no nan, no inf, no trailing words, within a range), the
 * policy's settings, the store's default path. */
#ifndef QTN_CLI_OPTS_H
#define QTN_CLI_OPTS_H

#include <stddef.h>

#include "../qis/policy.h"

/* A number in [lo, hi]. Returns 0, or -1 (not a number, or out of range). */
int qtn_opt_num(const char *s, double lo, double hi, double *out);
/* A duration: seconds, or a number with s, m, h or d; at most `hi` s. */
int qtn_opt_duration(const char *s, double hi, double *out);

/* Reads policy option `opt` with value `val` into set. Returns 1 when it
 * was one (read), 0 when opt is not a policy option, -1 when val is bad
 * (why, naming the option, the value and the range, in err). */
int qtn_opt_policy(const char *opt, const char *val, qp_settings *set, char *err, size_t errlen);

/* qtn_opt_policy for a command that names the mode --mode (its --policy
 * would mean something else there): a bad value is said on stderr as
 * `quarantine: CMD: ...`. Returns 1, 0 or -1 as qtn_opt_policy. */
int qtn_opt_mode_policy(const char *cmd, const char *opt, const char *val, qp_settings *set);

/* The text of the policy options for --help. */
extern const char qtn_opt_policy_help[];

/* The store: $QTN_STORE, else ~/.local/state/quarantine/store.db (with
 * make, its folders are made). */
const char *qtn_opt_store(char *buf, size_t len, int make);

/* A supervisor's outbox for a fleet's store:
 * ~/.local/state/quarantine/outbox.db (its folders made). */
const char *qtn_opt_outbox(char *buf, size_t len);

#endif
