/* supervise.h - the supervisor of `quarantine run`: starts a program,
 * restarts it when it crashes (backoff, a restart-intensity limit),
 * forwards signals, stores what its runtime hands over (spool.h), keeps its
 * statistics file, and with a policy, decides the plan from the store
 * (replan.h) and pushes it into the running program over its control
 * channel. Written as s6-supervise is: explicit states, events as rows of
 * one table, signals as fd events, no work in handlers. */
#ifndef QTN_SUPERVISE_H
#define QTN_SUPERVISE_H

#include "policy.h"

typedef struct qs_sup_opts {
    char **argv;            /* the program and its arguments */
    const char *store_path; /* the store (with fleet_uri: the outbox) */
    const char *fleet_uri;  /* the fleet's PostgreSQL store, or NULL (outbox.h) */
    int fleet_refresh_ms;   /* between fetches of the fleet's evidence */
    const char *installation; /* NULL: the host name */
    int max_restarts;       /* crashes allowed within window_s */
    double window_s;
    int backoff_ms;         /* the first delay before a restart, doubled up to 5 s */
    int stats_ms;           /* QTN_STATS_MS for the program; -1: its default */
    int keep_spool;         /* keep spool files once stored, renamed */
    int policy;             /* 1: decide plans with `set` and push them */
    const char *metrics;    /* serve /metrics there (metrics.h: ADDR:PORT, PORT); NULL: not */
    const char *listen;     /* hold a listening socket there for the program (listen.h); NULL: not */
    qp_settings set;
} qs_sup_opts;

enum { QS_EXIT_USAGE = 2, QS_EXIT_GAVE_UP = 111, QS_EXIT_NOEXEC = 127 };

/* Runs the program under supervision until it exits by itself (its
 * status), is stopped by a forwarded signal N (128 + N), crashes too often
 * (QS_EXIT_GAVE_UP) or cannot be started (QS_EXIT_NOEXEC); before it
 * starts, QS_EXIT_USAGE when /metrics cannot be served where asked. */
int qs_supervise(const qs_sup_opts *o);

#endif
