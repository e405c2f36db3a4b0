/* store.h - where reports persist (SQLite). One interface, so that the same
 * data can later live in PostgreSQL for a fleet; the SQL is kept portable. */
#ifndef QTN_STORE_H
#define QTN_STORE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "sym.h"

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
    const char *build_id;     /* the program's build ("" when unknown) */
    const char *plan;         /* the plan in force ("" when unknown) */
    int nframes;              /* the backtrace, innermost first */
    const qs_frame *frames;
    int nblame;               /* components blamed, with their shares of 1 */
    const struct qs_blame {
        const char *component;
        double share;
        const char *code_id;  /* the identity of its code then ("" unknown) */
        int ambiguous;        /* spread over components sharing a domain: not pinned */
    } *blame;
    const char *proc;         /* the process's identity (minted at qtn_init; "" none) */
} qs_report;

/* One component's totals in a statistics snapshot of one program process. */
typedef struct qs_stat {
    const char *installation, *run;
    int pid;
    int64_t time_ns;
    const char *build_id, *plan;
    const char *component;
    int domain; /* where the plan put it: 0 the host */
    int64_t calls, crossings, cross_ns, faults;
    const char *code_id; /* the identity of its code ("" unknown) */
    const char *proc;
    int64_t parked_calls; /* calls failed at once: its domain was parked */
    int parked;           /* 1: its domain was parked */
} qs_stat;

/* Opens (creating, migrating) the store at path. On failure returns NULL
 * and writes why, naming the file, to err. Another application's SQLite
 * file (its application id, or tables and no store's schema) is refused
 * ("not a quarantine store: ...") before anything is written to it. */
qs_store *qs_open(const char *path, int readonly, char *err, size_t errlen);
/* Opens the store at path to read, for a command that shows it: a missing
 * file is an error ("no such file (quarantine run makes it)"), an older
 * schema is migrated first when the file may be written. */
qs_store *qs_open_to_read(const char *path, char *err, size_t errlen);
/* A new store in memory (gone when closed), named `name` in messages. */
qs_store *qs_open_memory(const char *name, char *err, size_t errlen);
void qs_close(qs_store *s);

/* Writes s as a JSON string, quotes included (NULL: ""). */
void qs_json_str(FILE *o, const char *s);

/* How long a write waits for another writer before it fails (default 5 s). */
void qs_busy_ms(qs_store *s, int ms);

/* A transaction (BEGIN IMMEDIATE): what is put between qs_begin and
 * qs_commit lands together or not at all. Outside one, each put is its own. */
int qs_begin(qs_store *s, char *err, size_t errlen);
int qs_commit(qs_store *s, char *err, size_t errlen);
void qs_rollback(qs_store *s);

/* Stores r durably, once: storing the same report again does nothing.
 * Returns 1 (stored), 0 (already there) or -1 (err says why). */
int qs_put(qs_store *s, const qs_report *r, char *err, size_t errlen);

/* One caller -> callee edge's totals in a snapshot ("program": code in no
 * component). */
typedef struct qs_edge_stat {
    const char *installation, *run;
    int pid;
    int64_t time_ns;
    const char *caller, *callee, *entry;
    int64_t calls, crossings, cross_ns, faults;
    int64_t bytes, overhead_ns; /* copied across; crossing time the callee did not work */
    const char *proc;
} qs_edge_stat;

/* A program process's own totals in a snapshot: work done (qtn_work_done),
 * CPU used (host and domains), when it started. */
typedef struct qs_proc_stat {
    const char *installation, *run, *proc;
    int pid;
    int64_t time_ns, start_ns, work, cpu_ns, cpu_at_ns;
    int ncpu;
} qs_proc_stat;

/* A program process that said hello: which build, and how long it took
 * from its start (and from the crash before it) to being ready. */
typedef struct qs_start {
    const char *installation, *run, *proc;
    int pid;
    const char *build_id, *exe;
    int64_t start_ns; /* the supervisor started it (CLOCK_REALTIME) */
    int64_t ready_ns; /* start -> hello */
    int64_t down_ns;  /* the program before it crashed -> hello; 0: not after a crash */
} qs_start;

/* One component of a build, with the identity of its code. */
typedef struct qs_component {
    const char *build_id, *component;
    const char *code_id; /* as the build says, or "@BUILD" when it says none */
    int known;           /* 1: the build gave the identity */
    const char *entries; /* JSON array of its entry names */
} qs_component;

/* A plan change the supervisor decided, with why and the numbers behind it. */
typedef struct qs_plan_change {
    const char *installation, *run;
    int64_t seq, time_ns;
    int pid;              /* the program it was pushed to; 0: for a start */
    const char *mode, *from, *to, *reason;
    const char *numbers;  /* JSON object */
} qs_plan_change;

/* Stores a crash of the program known only from its exit status (no
 * record of the runtime's: unattributed), once per process. Returns as
 * qs_put. */
int qs_put_exit_crash(qs_store *s, const char *installation, const char *run, const char *proc,
                      int pid, int sig, int64_t time_ns, char *err, size_t errlen);

/* Stores one statistics row (once). Returns 1, 0 or -1 as qs_put. */
int qs_put_stat(qs_store *s, const qs_stat *st, char *err, size_t errlen);
int qs_put_edge_stat(qs_store *s, const qs_edge_stat *st, char *err, size_t errlen);
int qs_put_proc_stat(qs_store *s, const qs_proc_stat *st, char *err, size_t errlen);

/* A process's start, its build (seen now) and the build's components.
 * Each returns 1, 0 or -1 as qs_put. */
int qs_put_start(qs_store *s, const qs_start *st, char *err, size_t errlen);
int qs_put_component(qs_store *s, const qs_component *c, char *err, size_t errlen);

/* A plan change (once), and what the program said of it: applied (1) or
 * not (0, with why). Return as qs_put. */
int qs_put_plan_change(qs_store *s, const qs_plan_change *p, char *err, size_t errlen);
int qs_put_plan_ack(qs_store *s, const char *installation, const char *run, int64_t seq,
                    int applied, const char *error, char *err, size_t errlen);

/* A process whose hello carried no identity had its rows stored under a
 * stand-in, `from`; a later record says its identity: they take `to`.
 * Returns 0 or -1. */
int qs_rename_proc(qs_store *s, const char *installation, const char *run, int pid,
                   const char *from, const char *to, char *err, size_t errlen);

/* The underlying SQLite handle, for the readers of src/qis (evidence.c). */
struct sqlite3 *qs_db(qs_store *s);
/* A read for them: sql prepared, its parameters bound in order as `types`
 * says (s: text, NULL as ""; n: text, NULL or "" as NULL; i: int; l:
 * int64; d: double; their count checked against the statement's): the
 * statement to step, or NULL with errlen bytes of err saying why. */
struct sqlite3_stmt *qs_vquery(qs_store *s, char *err, size_t errlen, const char *sql,
                               const char *types, va_list ap);
struct sqlite3_stmt *qs_read(qs_store *s, char *err, size_t errlen, const char *sql,
                             const char *types, ...);
const char *qs_path(const qs_store *s);
/* A text column of a row they step to, "" for NULL. */
const char *qs_col(struct sqlite3_stmt *st, int i);
/* Finishes such a statement: 0 when stepping ended well (rc SQLITE_DONE,
 * or SQLITE_ROW for a read that stopped early), else -1 with err saying
 * "store PATH: cannot read: why". */
int qs_done(qs_store *s, struct sqlite3_stmt *st, int rc, char *err, size_t errlen);

/* How many bytes of spool file `name` are in the store (0 if none), and
 * setting it; forget when the file is gone. Each returns 0 or -1. */
int qs_spool_get(qs_store *s, const char *name, int64_t *done, char *err, size_t errlen);
int qs_spool_set(qs_store *s, const char *name, int64_t done, char *err, size_t errlen);
int qs_spool_forget(qs_store *s, const char *name, char *err, size_t errlen);

/* The outbox, when the store is a fleet's (fleet.h): how far each table's
 * rows (by rowid) are shipped (0: none), moving the mark on (never back),
 * and marking plan change `id`'s acknowledgement shipped. 0 or -1. */
int qs_outbox_get(qs_store *s, const char *tbl, int64_t *upto, char *err, size_t errlen);
int qs_outbox_set(qs_store *s, const char *tbl, int64_t upto, char *err, size_t errlen);
int qs_outbox_acked(qs_store *s, int64_t id, char *err, size_t errlen);

/* The fleet's pooled evidence for one code identity, as fetched for an
 * installation: the other installations' calls into it, faults and host
 * crashes blamed on it (shares), discounted to at_ns; how many
 * installations called it; the latest fault's time. */
typedef struct qs_fleet_evidence {
    const char *installation, *code_id;
    double calls, faults, host_blame;
    int installations;
    int64_t last_ns, at_ns;
} qs_fleet_evidence;

/* Stores one (replacing what was fetched before), or forgets what was
 * fetched for an installation. 0 or -1. */
int qs_put_fleet_evidence(qs_store *s, const qs_fleet_evidence *f, char *err, size_t errlen);
int qs_clear_fleet_evidence(qs_store *s, const char *installation, char *err, size_t errlen);

/* Prints the per-component table (calls, crossings, faults while isolated,
 * host crashes blamed and the blame fraction, recovery times, where the
 * plan puts it), the domains parked (since when, calls failed while
 * parked) and the latest reports with their backtraces, since
 * `since_ns` (CLOCK_REALTIME ns; 0: all), or the same as JSON. Returns 0 or
 * -1. */
int qs_print(qs_store *s, FILE *out, int json, int64_t since_ns, int latest, char *err,
             size_t errlen);

#define QS_SCHEMA_VERSION 5
/* PRAGMA application_id of the stores quarantine makes ("QTNS") */
#define QS_APPLICATION_ID 0x51544e53

#endif
