/* store.h - where reports persist (SQLite). One interface, so that the same
 * data can later live in PostgreSQL for a fleet; the SQL is kept portable. */
#ifndef QTN_STORE_H
#define QTN_STORE_H

#include <stdint.h>
#include <stdio.h>

typedef struct qs_store qs_store;

/* One fault: a domain's (from the runtime's JSON report) or the host's (from
 * the supervisor's view of the program's exit). */
typedef struct qs_report {
    const char *installation; /* which machine and setup */
    const char *run;          /* which supervisor run (with pid and seq: the identity) */
    int pid;                  /* the program process */
    int64_t seq;              /* the runtime's report number, or the crash number */
    int64_t time_ns;
    const char *kind;         /* signal, exit, killed, deadline, contract, seccomp, host-crash */
    const char *component;    /* blamed ("" when unknown) */
    const char *entry;
    int signal;
    int domain;               /* 0: the host */
    int64_t recovery_ns;
    int calls_failed;
    const char *reason;
    const char *json;         /* the report as received, or NULL */
} qs_report;

/* Opens (creating, migrating) the store at path. On failure returns NULL
 * and writes why, naming the file, to err. */
qs_store *qs_open(const char *path, int readonly, char *err, size_t errlen);
void qs_close(qs_store *s);

/* Stores r durably, once: storing the same report again does nothing.
 * Returns 1 (stored), 0 (already there) or -1 (err says why). */
int qs_put(qs_store *s, const qs_report *r, char *err, size_t errlen);

/* Prints the per-component table and the latest reports since `since_ns`
 * (CLOCK_REALTIME ns; 0: all), or the same as JSON. Returns 0 or -1. */
int qs_print(qs_store *s, FILE *out, int json, int64_t since_ns, int latest, char *err,
             size_t errlen);

#define QS_SCHEMA_VERSION 1

#endif
