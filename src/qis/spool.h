/* spool.h - the files a supervised program hands its records over in.
 *
 * `quarantine run` makes one spool file per program process and gives the
 * program its fd (QTN_REPORT_FD); the runtime appends records (hello, fault
 * reports, statistics, and the host-crash record its signal handler writes),
 * one line each: `<crc32 hex> <json>\n`. The supervisor imports them into
 * the store, and the number of bytes imported is stored in the same
 * transaction as the records: whenever the supervisor dies, what it stored
 * and how far it got agree, so the next supervisor goes on from there. No
 * record handed over is lost, none is stored twice.
 *
 * The supervisor holds an flock on the file through the fd it gives the
 * program; when the lock can be taken, no writer is left, and the file is
 * removed once all of it is in the store.
 *
 * Each record is stored under the identity of its program process (proc,
 * which the runtime mints at qtn_init and its records carry), not its pid
 * alone: pids come again. Damage of any length (a block of NUL bytes, a
 * stretch with no newline longer than a record can be, 4 MiB) is skipped,
 * logged once per stretch with its offset and length, and counted as
 * imported; a record glued to its end is found. The file is read in
 * windows, never whole. */
#ifndef QTN_SPOOL_H
#define QTN_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct qs_spool qs_spool;

/* Receives one log line: an event name and its key=value pairs. */
typedef void qs_log_fn(void *ctx, const char *event);

/* What an import met, for a supervisor to act on (each record once, the
 * first time this process reads it). */
typedef enum {
    QS_EV_HELLO = 1, /* a program process is ready (build_id, proc) */
    QS_EV_FAULT,     /* a domain fault (component) */
    QS_EV_HOST_CRASH,/* the program crashed (component blamed most) */
    QS_EV_STATS,     /* a statistics snapshot */
    QS_EV_PLAN_ACK,  /* the program applied a plan (ok) or not (error) */
} qs_ev_type;

typedef struct qs_event {
    qs_ev_type type;
    int pid;
    int64_t time_ns;
    const char *build_id, *proc, *component;
    int64_t seq;
    int ok;
    const char *plan, *error;
} qs_event;

typedef void qs_event_fn(void *ctx, const qs_event *ev);

/* Makes spool file `<run>-<n>.spool` in dir (made if missing) for a new
 * program process, with its first record naming installation and run, when
 * the process starts (CLOCK_REALTIME ns) and when the one before it crashed
 * (0: none), so that its hello tells how long it took to be ready. *wfd is
 * the append-only fd to give the program (locked; close-on-exec set: clear
 * it in the child). Returns NULL and err on failure. */
qs_spool *qs_spool_create(const char *dir, const char *installation, const char *run, int n,
                          int64_t start_ns, int64_t after_crash_ns, int *wfd, char *err,
                          size_t errlen);

/* Opens spool file `name` in dir (one a killed supervisor left).
 * installation is used when the file does not say. */
qs_spool *qs_spool_open(const char *dir, const char *name, const char *installation, char *err,
                        size_t errlen);

const char *qs_spool_name(const qs_spool *sp);

/* Calls fn for what the imports of sp meet from now on. */
void qs_spool_on_event(qs_spool *sp, qs_event_fn *fn, void *ctx);

/* Appends one record (the JSON object, one line) to fd. Returns 0 or -1. */
int qs_record_write(int fd, const char *json);

/* Imports the records not yet in the store, with the count of bytes done,
 * in one transaction (about 64 MiB of new records a round at most; the
 * next round goes on, and qs_spool_finish waits for it); damaged stretches
 * are logged (`bad-record spool=F offset=N bytes=N why="..."`) and
 * skipped. Without a store, records are only logged. Returns the number
 * of records imported, or -1 (err says why; nothing of this round is kept,
 * it is tried again next time). */
int qs_spool_import(qs_spool *sp, qs_store *st, qs_log_fn *log, void *ctx, char *err,
                    size_t errlen);

/* 1 when no process holds the file for writing any more (this process then
 * holds it: no other supervisor imports it meanwhile), else 0. */
int qs_spool_writer_gone(qs_spool *sp);

/* When the writer is gone and everything is imported: removes the file (a
 * torn last record, cut off by a crash while writing, is logged) and
 * forgets it in the store; with keep, renames it NAME.imported instead.
 * Returns 1 done, 0 not yet, -1 (err). */
int qs_spool_finish(qs_spool *sp, qs_store *st, int keep, qs_log_fn *log, void *ctx, char *err,
                    size_t errlen);

void qs_spool_close(qs_spool *sp);

#endif
