/* store.c - the local store: one SQLite file, WAL, a versioned schema. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

struct qs_store {
    sqlite3 *db;
    char *path;
};

/* Migrations, in order: migration i takes the schema from version i to i+1. */
static const char *const migrations[] = {
    "CREATE TABLE IF NOT EXISTS reports ("
    " id INTEGER PRIMARY KEY,"
    " installation TEXT NOT NULL, run TEXT NOT NULL, pid INTEGER NOT NULL,"
    " seq INTEGER NOT NULL, time_ns INTEGER NOT NULL, kind TEXT NOT NULL,"
    " component TEXT NOT NULL, entry TEXT NOT NULL, signal INTEGER NOT NULL,"
    " domain INTEGER NOT NULL, recovery_ns INTEGER NOT NULL, calls_failed INTEGER NOT NULL,"
    " reason TEXT NOT NULL, json TEXT,"
    " UNIQUE (installation, run, pid, kind, seq));"
    "CREATE INDEX IF NOT EXISTS reports_time ON reports (time_ns);",
};

static int fail(char *err, size_t len, const char *path, const char *what, const char *why) {
    if (err && len)
        snprintf(err, len, "store %s: %s: %s", path, what, why);
    return -1;
}

static int exec(qs_store *s, const char *sql, char *err, size_t len, const char *what) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    fail(err, len, s->path, what, msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return -1;
}

static int user_version(qs_store *s, int *v) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

qs_store *qs_open(const char *path, int readonly, char *err, size_t len) {
    qs_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->path = strdup(path);
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        fail(err, len, path, "cannot open", s->db ? sqlite3_errmsg(s->db) : "out of memory");
        qs_close(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 5000); /* a reader or another writer: wait a little */
    int v;
    if (user_version(s, &v)) { /* not a database, or unreadable */
        fail(err, len, path, "not a quarantine store", sqlite3_errmsg(s->db));
        qs_close(s);
        return NULL;
    }
    int known = (int)(sizeof migrations / sizeof migrations[0]);
    if (v > known) {
        char why[96];
        snprintf(why, sizeof why, "schema version %d is newer than this quarantine's (%d)", v,
                 known);
        fail(err, len, path, "cannot use it", why);
        qs_close(s);
        return NULL;
    }
    if (readonly) {
        if (v < known) {
            fail(err, len, path, "cannot use it", v == 0 ? "no store was made here"
                                                         : "an older schema (open it to write "
                                                           "once, to migrate it)");
            qs_close(s);
            return NULL;
        }
        return s;
    }
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err, len, "setting up") ||
        exec(s, "BEGIN IMMEDIATE", err, len, "migrating")) {
        qs_close(s);
        return NULL;
    }
    for (int i = v; i < known; i++)
        if (exec(s, migrations[i], err, len, "migrating")) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            qs_close(s);
            return NULL;
        }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d; COMMIT", known);
    if (exec(s, sql, err, len, "migrating")) {
        qs_close(s);
        return NULL;
    }
    return s;
}

void qs_close(qs_store *s) {
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

int qs_put(qs_store *s, const qs_report *r, char *err, size_t len) {
    sqlite3_stmt *st;
    const char *sql = "INSERT OR IGNORE INTO reports (installation, run, pid, seq, time_ns, kind,"
                      " component, entry, signal, domain, recovery_ns, calls_failed, reason, json)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fail(err, len, s->path, "cannot store a report", sqlite3_errmsg(s->db));
    sqlite3_bind_text(st, 1, r->installation, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->run, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, r->pid);
    sqlite3_bind_int64(st, 4, r->seq);
    sqlite3_bind_int64(st, 5, r->time_ns);
    sqlite3_bind_text(st, 6, r->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, r->component ? r->component : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, r->entry ? r->entry : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 9, r->signal);
    sqlite3_bind_int(st, 10, r->domain);
    sqlite3_bind_int64(st, 11, r->recovery_ns);
    sqlite3_bind_int(st, 12, r->calls_failed);
    sqlite3_bind_text(st, 13, r->reason ? r->reason : "", -1, SQLITE_STATIC);
    if (r->json)
        sqlite3_bind_text(st, 14, r->json, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 14);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fail(err, len, s->path, "cannot store a report", sqlite3_errmsg(s->db));
    return sqlite3_changes(s->db) ? 1 : 0;
}

static void json_str(FILE *o, const char *s) {
    fputc('"', o);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c < 0x20)
            fprintf(o, "\\u%04x", c);
        else
            fputc(c, o);
    }
    fputc('"', o);
}

int qs_print(qs_store *s, FILE *o, int json, int64_t since_ns, int latest, char *err,
             size_t len) {
    const char *tsql =
        "SELECT CASE WHEN component = '' THEN '(unknown)' ELSE component END AS c,"
        " SUM(kind <> 'host-crash'), SUM(kind = 'host-crash'), SUM(calls_failed),"
        " AVG(CASE WHEN kind <> 'host-crash' AND recovery_ns > 0 THEN recovery_ns END),"
        " MAX(CASE WHEN kind <> 'host-crash' THEN recovery_ns END)"
        " FROM reports WHERE time_ns >= ? GROUP BY c ORDER BY COUNT(*) DESC, c";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, tsql, -1, &st, NULL) != SQLITE_OK)
        return fail(err, len, s->path, "cannot read", sqlite3_errmsg(s->db));
    sqlite3_bind_int64(st, 1, since_ns);
    if (json)
        fputs("{\"components\":[", o);
    else
        fprintf(o, "%-16s %14s %13s %12s %14s %13s\n", "component", "domain faults",
                "host crashes", "calls failed", "recovery mean", "recovery max");
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 0);
        long long df = sqlite3_column_int64(st, 1), hc = sqlite3_column_int64(st, 2),
                  cf = sqlite3_column_int64(st, 3);
        double mean = sqlite3_column_double(st, 4) / 1e6, max = sqlite3_column_double(st, 5) / 1e6;
        if (json) {
            fprintf(o, "%s{\"component\":", n ? "," : "");
            json_str(o, c);
            fprintf(o, ",\"domain_faults\":%lld,\"host_crashes\":%lld,\"calls_failed\":%lld,"
                       "\"recovery_ms_mean\":%.3f,\"recovery_ms_max\":%.3f}",
                    df, hc, cf, mean, max);
        } else {
            fprintf(o, "%-16s %14lld %13lld %12lld %11.2f ms %10.2f ms\n", c, df, hc, cf, mean,
                    max);
        }
        n++;
    }
    sqlite3_finalize(st);
    const char *rsql = "SELECT time_ns, kind, component, entry, signal, domain, pid, reason, json"
                       " FROM reports WHERE time_ns >= ? ORDER BY time_ns DESC, id DESC LIMIT ?";
    if (sqlite3_prepare_v2(s->db, rsql, -1, &st, NULL) != SQLITE_OK)
        return fail(err, len, s->path, "cannot read", sqlite3_errmsg(s->db));
    sqlite3_bind_int64(st, 1, since_ns);
    sqlite3_bind_int(st, 2, latest);
    if (json)
        fputs("],\"latest\":[", o);
    else
        fprintf(o, "%s\nlatest reports:\n", n ? "" : "(no faults recorded)\n");
    n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        long long t = sqlite3_column_int64(st, 0);
        const char *kind = (const char *)sqlite3_column_text(st, 1);
        const char *comp = (const char *)sqlite3_column_text(st, 2);
        const char *entry = (const char *)sqlite3_column_text(st, 3);
        const char *reason = (const char *)sqlite3_column_text(st, 7);
        const char *js = (const char *)sqlite3_column_text(st, 8);
        if (json) {
            fprintf(o, "%s", n ? "," : "");
            if (js)
                fputs(js, o); /* stored as the runtime wrote it */
            else {
                fprintf(o, "{\"time_ns\":%lld,\"kind\":", t);
                json_str(o, kind);
                fputs(",\"reason\":", o);
                json_str(o, reason);
                fputc('}', o);
            }
        } else {
            time_t secs = (time_t)(t / 1000000000);
            struct tm tm;
            char when[32];
            gmtime_r(&secs, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
            fprintf(o, "  %s UTC  %-10s %s%s%s  %s\n", when, kind, *comp ? comp : "-",
                    *entry ? "." : "", entry, reason);
        }
        n++;
    }
    sqlite3_finalize(st);
    if (json)
        fputs("]}\n", o);
    return 0;
}
