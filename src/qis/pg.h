/* pg.h - the fleet's store: one PostgreSQL database that many supervisors
 * (installations) share, reached through libpq. Its logical schema is the
 * SQLite store's (store.h: reports, frames, blame, statistics, starts,
 * components, plan changes), created and migrated here with a schema
 * version of its own; each record's unique key (installation, run,
 * process, kind, sequence, ...) makes storing it again do nothing, so any
 * number of writers, retrying in any order, store each record once. */
#ifndef QTN_PG_H
#define QTN_PG_H

#include <stddef.h>

#include <libpq-fe.h>

/* The fleet schema this quarantine writes (quarantine_schema.version). */
#define QF_SCHEMA_VERSION 1

/* How long a connection attempt may take unless the URI says
 * (connect_timeout): the supervisor never waits on the network for long. */
#define QF_CONNECT_TIMEOUT_S 5

/* 1 when `store` names a PostgreSQL database (postgresql:// or
 * postgres://), not a SQLite file. */
int qf_is_uri(const char *store);

/* The database `uri` names, as "postgresql://USER@HOST:PORT/DB" with what
 * the URI leaves out taken from libpq's defaults: for messages, never with
 * a password. */
void qf_where(const char *uri, char *out, size_t len);

/* Connects to uri (libpq parses it: sslmode and every other setting pass
 * through), creating or migrating the schema. A database with a newer
 * schema, or with tables of another application, is refused. On failure
 * returns NULL with errlen bytes of err saying why, naming the database
 * (qf_where), never its password. */
PGconn *qf_connect(const char *uri, char *err, size_t errlen);

/* err = "fleet store WHERE: what: why" (why: libpq's message of pg, its
 * trailing newline dropped, any password of uri blotted out). Returns -1. */
int qf_fail(const char *uri, PGconn *pg, const char *what, const char *why, char *err,
            size_t errlen);

/* Runs sql (no parameters) that returns no rows: 0, or -1 with err set. */
int qf_exec(const char *uri, PGconn *pg, const char *sql, const char *what, char *err,
            size_t errlen);

#endif
