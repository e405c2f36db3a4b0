/* ship.c - the outbox shipped to the fleet, the fleet's evidence fetched
 * back (see ship.h). */
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ship.h"

/* The tables shipped, in this order, with the columns copied: one list
 * for both engines, read from the outbox and written to the fleet as it
 * is (values travel as text; PostgreSQL reads them as the column's type).
 * The fleet numbers rows itself: ids are not copied. */
static const struct table {
    const char *name, *cols;
} tables[] = {
    {"components", "build_id, component, code_id, known, entries"},
    {"starts", "installation, run, proc, pid, build_id, exe, start_ns, ready_ns, down_ns"},
    {"reports", "installation, run, proc, pid, seq, time_ns, kind, component, entry, signal,"
                " domain, recovery_ns, calls_failed, reason, json, build_id, plan"},
    {"stats", "installation, run, pid, time_ns, build_id, plan, component, domain, code_id,"
              " proc, parked_calls, parked, calls, crossings, cross_ns, faults"},
    {"edge_stats", "installation, run, pid, time_ns, caller, callee, entry, bytes, overhead_ns,"
                   " proc, calls, crossings, cross_ns, faults"},
    {"proc_stats", "installation, run, proc, pid, time_ns, start_ns, work, cpu_ns, cpu_at_ns,"
                   " ncpu"},
    {"plan_changes", "installation, run, seq, time_ns, pid, mode, from_plan, to_plan, reason,"
                     " numbers, applied, ack_error"},
};
#define NTABLES (sizeof tables / sizeof tables[0])
#define MAX_COLS 20
#define MAX_ACKS 256


static int ncols(const char *cols) {
    int n = 1;
    for (; *cols; cols++)
        n += *cols == ',';
    return n;
}

/* The row st holds from column `from` on, as libpq's text values. */
static void values_of(sqlite3_stmt *st, int from, int n, const char **v) {
    for (int i = 0; i < n; i++)
        v[i] = sqlite3_column_type(st, from + i) == SQLITE_NULL
                   ? NULL
                   : (const char *)sqlite3_column_text(st, from + i);
}

/* One statement of the fleet's with text parameters; the result, or NULL
 * with err set. */
static PGresult *run(const char *uri, PGconn *pg, const char *sql, int n, const char *const *v,
                     const char *what, char *err, size_t len) {
    PGresult *r = PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    qf_fail(uri, pg, what, NULL, err, len);
    PQclear(r);
    return NULL;
}

/* The frames and blame of outbox report `id`, under the fleet's id `to`. */
static int ship_details(qs_store *ob, const char *uri, PGconn *pg, sqlite3_int64 id, const char *to,
                        char *err, size_t len) {
    static const char *const sel[2] = {
        "SELECT n, addr, symbol, component FROM report_frames WHERE report_id = ?",
        "SELECT component, share, code_id, ambiguous FROM report_blame WHERE report_id = ?"};
    static const char *const ins[2] = {
        "INSERT INTO report_frames (report_id, n, addr, symbol, component)"
        " VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING",
        "INSERT INTO report_blame (report_id, component, share, code_id, ambiguous)"
        " VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING"};
    for (int k = 0; k < 2; k++) {
        sqlite3_stmt *st = qs_read(ob, err, len, sel[k], "l", (int64_t)id);
        if (!st)
            return -1;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *v[5] = {to};
            values_of(st, 0, 4, v + 1);
            PGresult *r = run(uri, pg, ins[k], 5, v, "cannot store a report", err, len);
            if (!r) {
                sqlite3_finalize(st);
                return -1;
            }
            PQclear(r);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            snprintf(err, len, "outbox %s: cannot read: %s", qs_path(ob),
                     sqlite3_errmsg(qs_db(ob)));
            return -1;
        }
    }
    return 0;
}

/* Ships table t's rows after *upto, at most *left of them; *upto moves to
 * the last one shipped. */
static int ship_table(qs_store *ob, const char *uri, PGconn *pg, const struct table *t,
                      int64_t *upto, int *left, char *err, size_t len) {
    char sel[512], ins[1024];
    int n = ncols(t->cols);
    snprintf(sel, sizeof sel, "SELECT rowid, %s FROM %s WHERE rowid > ? ORDER BY rowid LIMIT ?",
             t->cols, t->name);
    int at = snprintf(ins, sizeof ins, "INSERT INTO %s (%s) VALUES (", t->name, t->cols);
    for (int i = 1; i <= n; i++)
        at += snprintf(ins + at, sizeof ins - (size_t)at, "%s$%d", i > 1 ? "," : "", i);
    snprintf(ins + at, sizeof ins - (size_t)at, ") ON CONFLICT DO NOTHING%s",
             strcmp(t->name, "reports") ? "" : " RETURNING id");
    sqlite3_stmt *st = qs_read(ob, err, len, sel, "li", *upto, *left);
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *v[MAX_COLS];
        values_of(st, 1, n, v);
        PGresult *r = run(uri, pg, ins, n, v, "cannot store records", err, len);
        if (!r)
            goto fail;
        /* a report new to the fleet: its details with it (not new: they are there) */
        int fine = PQntuples(r) == 0 || !ship_details(ob, uri, pg, sqlite3_column_int64(st, 0),
                                                      PQgetvalue(r, 0, 0), err, len);
        PQclear(r);
        if (!fine)
            goto fail;
        *upto = sqlite3_column_int64(st, 0);
        --*left;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return 0;
    snprintf(err, len, "outbox %s: cannot read: %s", qs_path(ob), sqlite3_errmsg(qs_db(ob)));
    return -1;
fail:
    sqlite3_finalize(st);
    return -1;
}

/* What the program said of plan changes already shipped, shipped too; the
 * ids of those (at most MAX_ACKS) in ids. */
static int ship_acks(qs_store *ob, const char *uri, PGconn *pg, int64_t upto, int64_t *ids,
                     int *nids, char *err, size_t len) {
    sqlite3_stmt *st = qs_read(ob, err, len,
                         "SELECT id, applied, ack_error, installation, run, seq FROM plan_changes"
                         " WHERE id <= ? AND applied IS NOT NULL AND ack_shipped = 0 LIMIT ?",
                         "li", upto, MAX_ACKS);
    if (!st)
        return -1;
    int rc;
    *nids = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *v[5];
        values_of(st, 1, 5, v);
        PGresult *r = run(uri, pg,
                          "UPDATE plan_changes SET applied = $1, ack_error = $2 WHERE"
                          " installation = $3 AND run = $4 AND seq = $5",
                          5, v, "cannot store a plan change", err, len);
        if (!r) {
            sqlite3_finalize(st);
            return -1;
        }
        PQclear(r);
        ids[(*nids)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int qf_ship(qs_store *ob, const char *uri, PGconn *pg, int max_rows, char *err, size_t len) {
    int64_t from[NTABLES], upto[NTABLES], acks[MAX_ACKS];
    int left = max_rows, nacks = 0;
    for (size_t i = 0; i < NTABLES; i++) {
        if (qs_outbox_get(ob, tables[i].name, &from[i], err, len))
            return -1;
        upto[i] = from[i];
    }
    if (qf_exec(uri, pg, "BEGIN", "cannot store records", err, len))
        return -1;
    for (size_t i = 0; i < NTABLES && left > 0; i++)
        if (ship_table(ob, uri, pg, &tables[i], &upto[i], &left, err, len))
            goto undo;
    if (ship_acks(ob, uri, pg, upto[NTABLES - 1], acks, &nacks, err, len))
        goto undo;
    if (qf_exec(uri, pg, "COMMIT", "cannot store records", err, len))
        goto undo;
    if (max_rows == left && !nacks)
        return 0; /* nothing was shipped: nothing to mark */
    /* in the fleet now: marked so in the outbox (if this fails, they are
     * shipped again, and stored once all the same) */
    if (qs_begin(ob, err, len))
        return -1;
    for (size_t i = 0; i < NTABLES; i++)
        if (upto[i] != from[i] && qs_outbox_set(ob, tables[i].name, upto[i], err, len))
            goto local_undo;
    for (int i = 0; i < nacks; i++)
        if (qs_outbox_acked(ob, acks[i], err, len))
            goto local_undo;
    if (qs_commit(ob, err, len))
        return -1;
    return max_rows - left + nacks;
local_undo:
    qs_rollback(ob);
    return -1;
undo:
    PQclear(PQexec(pg, "ROLLBACK"));
    return -1;
}

long long qf_unshipped(qs_store *ob) {
    long long n = 0;
    char err[256];
    for (size_t i = 0; i < NTABLES; i++) {
        int64_t upto;
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s WHERE rowid > ?", tables[i].name);
        sqlite3_stmt *st = qs_outbox_get(ob, tables[i].name, &upto, err, sizeof err)
                               ? NULL
                               : qs_read(ob, err, sizeof err, sql, "l", upto);
        if (!st || sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_finalize(st);
            return -1;
        }
        n += sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return n;
}

/* ---- the fleet's evidence ---------------------------------------------------- */

/* Appends s to a PostgreSQL array literal being built in buf. */
static int array_add(char **buf, size_t *n, size_t *cap, const char *s) {
    size_t need = *n + 2 * strlen(s) + 8;
    if (need > *cap) {
        size_t c = need * 2;
        char *b = realloc(*buf, c);
        if (!b)
            return -1;
        *buf = b;
        *cap = c;
    }
    char *o = *buf + *n;
    if (*n > 1)
        *o++ = ',';
    *o++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *o++ = '\\';
        *o++ = *s;
    }
    *o++ = '"';
    *o = 0;
    *n = (size_t)(o - *buf);
    return 0;
}

/* The values of one column of the outbox's, as an array literal ("{...}"). */
static char *array_of(qs_store *ob, const char *sql, const char *also, char *err, size_t len) {
    size_t n = 1, cap = 256;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    strcpy(buf, "{");
    if (also && array_add(&buf, &n, &cap, also))
        goto oom;
    sqlite3_stmt *st = qs_read(ob, err, len, sql, "");
    if (!st) {
        free(buf);
        return NULL;
    }
    while (sqlite3_step(st) == SQLITE_ROW)
        if (array_add(&buf, &n, &cap, (const char *)sqlite3_column_text(st, 0) ?: "")) {
            sqlite3_finalize(st);
            goto oom;
        }
    sqlite3_finalize(st);
    strcat(buf, "}");
    return buf;
oom:
    free(buf);
    snprintf(err, len, "outbox %s: out of memory", qs_path(ob));
    return NULL;
}

typedef struct pooled {
    char code[80];
    double calls, faults, host;
    int installations;
    long long last;
} pooled;

static pooled *entry(pooled *p, int *n, int cap, const char *code) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(p[i].code, code))
            return &p[i];
    if (*n == cap)
        return NULL;
    pooled *e = &p[(*n)++];
    memset(e, 0, sizeof *e);
    snprintf(e->code, sizeof e->code, "%s", code);
    return e;
}

/* the weight of evidence from time_ns, at $3 (now), half-life $4 (s; 0:
 * none); the exponent is bounded: far past the point of mattering, and
 * PostgreSQL calls a float that underflows an error */
#define WEIGHT(t)                                                                                  \
    "CASE WHEN $4::float8 > 0 THEN power(0.5::float8, LEAST(GREATEST($3::float8 - " t              \
    ", 0) / 1e9 / $4::float8, 1000)) ELSE 1 END"

int qf_fetch_pool(qs_store *ob, const char *uri, PGconn *pg, const char *inst, double h,
                  int64_t now_ns, char *err, size_t len) {
    char *codes =
        array_of(ob, "SELECT DISTINCT code_id FROM components WHERE code_id <> ''", NULL, err, len);
    char *insts =
        codes ? array_of(ob, "SELECT DISTINCT installation FROM starts", inst, err, len) : NULL;
    int cap = 0, n = 0, rc = -1;
    for (const char *c = codes; c && *c; c++)
        cap += *c == '"';
    pooled *p = calloc((size_t)cap / 2 + 1, sizeof *p);
    char now[32], half[32];
    snprintf(now, sizeof now, "%lld", (long long)now_ns);
    snprintf(half, sizeof half, "%.17g", h);
    const char *v[4] = {codes, insts, now, half};
    PGresult *b = NULL, *x = NULL;
    if (!codes || !insts || !p)
        goto out;
    b = run(uri, pg,
            "SELECT b.code_id, SUM(CASE WHEN r.kind = 'host-crash' THEN b.share * " WEIGHT(
                "r.time_ns") " ELSE 0 END), SUM(CASE WHEN r.kind <> 'host-crash' THEN b.share"
                             " * " WEIGHT("r.time_ns") " ELSE 0 END), MAX(r.time_ns)"
                                                       " FROM report_blame b JOIN reports r ON "
                                                       "r.id = b.report_id"
                                                       " WHERE b.code_id = ANY ($1::text[]) AND "
                                                       "r.installation <> ALL ($2::text[])"
                                                       " GROUP BY b.code_id",
            4, v, "cannot read the fleet's evidence", err, len);
    /* calls: the increments of each process's cumulative counts */
    x = b ? run(uri, pg,
                "SELECT code_id, SUM(d * " WEIGHT(
                    "time_ns") "), COUNT(DISTINCT installation)"
                               " FROM (SELECT installation, code_id, time_ns, calls - "
                               "COALESCE(LAG(calls) OVER"
                               " (PARTITION BY installation, run, proc, pid, component ORDER BY "
                               "time_ns), 0)"
                               " AS d FROM stats WHERE code_id = ANY ($1::text[]) AND installation "
                               "<> ALL"
                               " ($2::text[])) i WHERE d > 0 GROUP BY code_id",
                4, v, "cannot read the fleet's evidence", err, len)
          : NULL;
    if (!x)
        goto out;
    for (int i = 0; i < PQntuples(b); i++) {
        pooled *e = entry(p, &n, cap / 2 + 1, PQgetvalue(b, i, 0));
        if (e) {
            e->host = atof(PQgetvalue(b, i, 1));
            e->faults = atof(PQgetvalue(b, i, 2));
            e->last = atoll(PQgetvalue(b, i, 3));
        }
    }
    for (int i = 0; i < PQntuples(x); i++) {
        pooled *e = entry(p, &n, cap / 2 + 1, PQgetvalue(x, i, 0));
        if (e) {
            e->calls = atof(PQgetvalue(x, i, 1));
            e->installations = atoi(PQgetvalue(x, i, 2));
        }
    }
    if (qs_begin(ob, err, len))
        goto out;
    if (qs_clear_fleet_evidence(ob, inst, err, len))
        goto undo;
    for (int i = 0; i < n; i++) {
        qs_fleet_evidence f = {inst,      p[i].code,          p[i].calls, p[i].faults,
                               p[i].host, p[i].installations, p[i].last,  now_ns};
        if (qs_put_fleet_evidence(ob, &f, err, len))
            goto undo;
    }
    if (qs_commit(ob, err, len))
        goto out;
    rc = n;
    goto out;
undo:
    qs_rollback(ob);
out:
    PQclear(b);
    PQclear(x);
    free(p);
    free(codes);
    free(insts);
    return rc;
}

/* ---- the fleet, read into a store in memory ----------------------------------- */

/* Copies the rows of the fleet's `sql` (parameter $1: the installation, if
 * any) into the mirror's table t, columns cols (the ids as the fleet's,
 * where they are copied: frames and blame refer to them). */
static int pull(qs_store *m, const char *uri, PGconn *pg, const char *sql, const char *inst,
                const char *t, const char *cols, char *err, size_t len) {
    PGresult *r = run(uri, pg, sql, inst ? 1 : 0, &inst, "cannot read", err, len);
    if (!r)
        return -1;
    char ins[1024];
    int n = PQnfields(r);
    int at = snprintf(ins, sizeof ins, "INSERT OR IGNORE INTO %s (%s) VALUES (", t, cols);
    for (int i = 0; i < n; i++)
        at += snprintf(ins + at, sizeof ins - (size_t)at, "%s?", i ? "," : "");
    snprintf(ins + at, sizeof ins - (size_t)at, ")");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(qs_db(m), ins, -1, &st, NULL);
    for (int row = 0; rc == SQLITE_OK && row < PQntuples(r); row++) {
        for (int i = 0; i < n; i++)
            if (PQgetisnull(r, row, i))
                sqlite3_bind_null(st, i + 1);
            else
                sqlite3_bind_text(st, i + 1, PQgetvalue(r, row, i), -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(st);
    }
    if (rc != SQLITE_OK)
        snprintf(err, len, "store %s: cannot copy %s: %s", qs_path(m), t, sqlite3_errmsg(qs_db(m)));
    sqlite3_finalize(st);
    PQclear(r);
    return rc == SQLITE_OK ? 0 : -1;
}

qs_store *qf_mirror(const char *uri, PGconn *pg, const char *inst, char *err, size_t len) {
    char where[512];
    qf_where(uri, where, sizeof where);
    qs_store *m = qs_open_memory(where, err, len);
    if (!m)
        return NULL;
    if (qs_begin(m, err, len))
        goto fail;
    for (size_t i = 0; i < NTABLES; i++) {
        const struct table *t = &tables[i];
        int ids = strcmp(t->name, "reports") == 0, all = !strcmp(t->name, "components") || !inst;
        char sql[1024], cols[512];
        /* in the order they were stored: some readers break ties by it */
        snprintf(sql, sizeof sql, "SELECT %s%s FROM %s%s ORDER BY %s", ids ? "id, " : "", t->cols,
                 t->name, all ? "" : " WHERE installation = $1",
                 !strcmp(t->name, "reports") || !strcmp(t->name, "stats") ||
                         !strcmp(t->name, "edge_stats") || !strcmp(t->name, "plan_changes")
                     ? "id"
                     : "ctid");
        snprintf(cols, sizeof cols, "%s%s", ids ? "id, " : "", t->cols);
        if (pull(m, uri, pg, sql, all ? NULL : inst, t->name, cols, err, len))
            goto undo;
    }
    static const char *const details[2][3] = {
        {"report_frames", "report_id, n, addr, symbol, component",
         "d.report_id, d.n, d.addr, d.symbol, d.component"},
        {"report_blame", "report_id, component, share, code_id, ambiguous",
         "d.report_id, d.component, d.share, d.code_id, d.ambiguous"}};
    for (int k = 0; k < 2; k++) {
        char sql[600];
        snprintf(sql, sizeof sql, "SELECT %s FROM %s d JOIN reports r ON r.id = d.report_id%s",
                 details[k][2], details[k][0], inst ? " WHERE r.installation = $1" : "");
        if (pull(m, uri, pg, sql, inst, details[k][0], details[k][1], err, len))
            goto undo;
    }
    if (qs_commit(m, err, len))
        goto fail;
    return m;
undo:
    qs_rollback(m);
fail:
    qs_close(m);
    return NULL;
}

qs_store *qf_open_to_read(const char *store, const char *inst, double half_life_s, char *err,
                          size_t len) {
    if (!qf_is_uri(store))
        return qs_open_to_read(store, err, len);
    PGconn *pg = qf_connect(store, err, len);
    if (!pg)
        return NULL;
    qs_store *m = qf_mirror(store, pg, inst, err, len);
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    if (m && inst &&
        qf_fetch_pool(m, store, pg, inst, half_life_s, (int64_t)t.tv_sec * 1000000000 + t.tv_nsec,
                      err, len) < 0) {
        qs_close(m);
        m = NULL;
    }
    PQfinish(pg);
    return m;
}
