/* ship.h - between a supervisor's outbox (a SQLite store, store.h) and
 * the fleet's PostgreSQL store (pg.h): its records shipped there in
 * batches, each exactly once; the fleet's pooled evidence fetched back. */
#ifndef QTN_SHIP_H
#define QTN_SHIP_H

#include <stddef.h>
#include <stdint.h>

#include "pg.h"
#include "store.h"

/* Ships at most max_rows of the records the outbox holds that it has not
 * shipped yet (a report's frames and blame go with it), in one
 * transaction of the fleet's; once that committed, the outbox's marks move
 * on in one of its own. Dying in between ships them again, which stores
 * nothing twice (pg.h: unique keys). Returns the rows shipped (0: nothing
 * was left), or -1 with err saying why (nothing marked). */
int qf_ship(qs_store *outbox, const char *uri, PGconn *pg, int max_rows, char *err, size_t errlen);

/* How many rows the outbox holds that are not shipped yet (-1: cannot
 * tell). */
long long qf_unshipped(qs_store *outbox);

/* Fetches the fleet's evidence for the code identities the outbox's
 * builds have, pooled over the installations the outbox holds no records
 * of (the outbox's own count already), aggregated in SQL and discounted
 * with half-life half_life_s to now_ns; stores it in the outbox
 * (fleet_evidence, for `installation`), replacing what was fetched before.
 * Returns the number of code identities the fleet has evidence for, or -1
 * (the last fetched stays). */
int qf_fetch_pool(qs_store *outbox, const char *uri, PGconn *pg, const char *installation,
                  double half_life_s, int64_t now_ns, char *err, size_t errlen);

/* The fleet's records in a store in memory, for the readers written for a
 * store (qs_print, qs_evidence_load): those of `installation` with the
 * components of every build, or (NULL) all. Every row is fetched: for a
 * large fleet, name the installation. NULL with err saying why. */
qs_store *qf_mirror(const char *uri, PGconn *pg, const char *installation, char *err,
                    size_t errlen);

/* `store` to read, for a command that shows it: a SQLite file
 * (qs_open_to_read) or a fleet's PostgreSQL (connected, mirrored for
 * `installation` as qf_mirror, with the rest of the fleet's evidence
 * pooled for it as qf_fetch_pool does, half-life half_life_s). NULL with
 * err saying why. */
qs_store *qf_open_to_read(const char *store, const char *installation, double half_life_s,
                          char *err, size_t errlen);

#endif
