/* store.c - the local store: one SQLite file, WAL, a versioned schema. */
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
    /* 2: tags, backtraces, blame, statistics, spool files */
    "ALTER TABLE reports ADD COLUMN build_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE reports ADD COLUMN plan TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE report_frames ("
    " report_id INTEGER NOT NULL REFERENCES reports (id), n INTEGER NOT NULL,"
    " addr TEXT NOT NULL, symbol TEXT NOT NULL, component TEXT NOT NULL,"
    " PRIMARY KEY (report_id, n));"
    "CREATE TABLE report_blame ("
    " report_id INTEGER NOT NULL REFERENCES reports (id), component TEXT NOT NULL,"
    " share REAL NOT NULL, PRIMARY KEY (report_id, component));"
    "CREATE TABLE stats ("
    " id INTEGER PRIMARY KEY,"
    " installation TEXT NOT NULL, run TEXT NOT NULL, pid INTEGER NOT NULL,"
    " time_ns INTEGER NOT NULL, build_id TEXT NOT NULL, plan TEXT NOT NULL,"
    " component TEXT NOT NULL, domain INTEGER NOT NULL, calls INTEGER NOT NULL,"
    " crossings INTEGER NOT NULL, cross_ns INTEGER NOT NULL, faults INTEGER NOT NULL,"
    " UNIQUE (installation, run, pid, time_ns, component));"
    "CREATE INDEX stats_time ON stats (time_ns);"
    "CREATE TABLE edge_stats ("
    " id INTEGER PRIMARY KEY,"
    " installation TEXT NOT NULL, run TEXT NOT NULL, pid INTEGER NOT NULL,"
    " time_ns INTEGER NOT NULL, caller TEXT NOT NULL, callee TEXT NOT NULL,"
    " entry TEXT NOT NULL, calls INTEGER NOT NULL, crossings INTEGER NOT NULL,"
    " cross_ns INTEGER NOT NULL, faults INTEGER NOT NULL,"
    " UNIQUE (installation, run, pid, time_ns, caller, entry));"
    "CREATE TABLE spools (name TEXT PRIMARY KEY, done_bytes INTEGER NOT NULL);",
    /* 3: a process's identity beside its pid (pids come again), code
     * identities, starts, process totals, plan changes */
    "CREATE TABLE reports3 ("
    " id INTEGER PRIMARY KEY,"
    " installation TEXT NOT NULL, run TEXT NOT NULL, proc TEXT NOT NULL, pid INTEGER NOT NULL,"
    " seq INTEGER NOT NULL, time_ns INTEGER NOT NULL, kind TEXT NOT NULL,"
    " component TEXT NOT NULL, entry TEXT NOT NULL, signal INTEGER NOT NULL,"
    " domain INTEGER NOT NULL, recovery_ns INTEGER NOT NULL, calls_failed INTEGER NOT NULL,"
    " reason TEXT NOT NULL, json TEXT, build_id TEXT NOT NULL, plan TEXT NOT NULL,"
    " UNIQUE (installation, run, proc, pid, kind, seq));"
    "INSERT INTO reports3 SELECT id, installation, run, '', pid, seq, time_ns, kind, component,"
    " entry, signal, domain, recovery_ns, calls_failed, reason, json, build_id, plan"
    " FROM reports;"
    "DROP TABLE reports;"
    "ALTER TABLE reports3 RENAME TO reports;"
    "CREATE INDEX reports_time ON reports (time_ns);"
    "ALTER TABLE report_blame ADD COLUMN code_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE report_blame ADD COLUMN ambiguous INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX report_blame_code ON report_blame (code_id);"
    "ALTER TABLE stats ADD COLUMN code_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE stats ADD COLUMN proc TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX stats_code ON stats (code_id, time_ns);"
    "ALTER TABLE edge_stats ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE edge_stats ADD COLUMN overhead_ns INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE edge_stats ADD COLUMN proc TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX edge_stats_proc ON edge_stats (installation, run, proc, pid, time_ns);"
    "CREATE INDEX stats_proc ON stats (installation, run, proc, pid, time_ns);"
    "CREATE TABLE proc_stats ("
    " installation TEXT NOT NULL, run TEXT NOT NULL, proc TEXT NOT NULL, pid INTEGER NOT NULL,"
    " time_ns INTEGER NOT NULL, start_ns INTEGER NOT NULL, work INTEGER NOT NULL,"
    " cpu_ns INTEGER NOT NULL, cpu_at_ns INTEGER NOT NULL, ncpu INTEGER NOT NULL,"
    " UNIQUE (installation, run, proc, pid, time_ns));"
    "CREATE TABLE starts ("
    " installation TEXT NOT NULL, run TEXT NOT NULL, proc TEXT NOT NULL, pid INTEGER NOT NULL,"
    " build_id TEXT NOT NULL, exe TEXT NOT NULL, start_ns INTEGER NOT NULL,"
    " ready_ns INTEGER NOT NULL, down_ns INTEGER NOT NULL,"
    " UNIQUE (installation, run, proc, pid));"
    "CREATE TABLE components ("
    " build_id TEXT NOT NULL, component TEXT NOT NULL, code_id TEXT NOT NULL,"
    " known INTEGER NOT NULL, entries TEXT NOT NULL, PRIMARY KEY (build_id, component));"
    "CREATE INDEX components_code ON components (code_id);"
    "CREATE TABLE plan_changes ("
    " id INTEGER PRIMARY KEY,"
    " installation TEXT NOT NULL, run TEXT NOT NULL, seq INTEGER NOT NULL,"
    " time_ns INTEGER NOT NULL, pid INTEGER NOT NULL, mode TEXT NOT NULL,"
    " from_plan TEXT NOT NULL, to_plan TEXT NOT NULL, reason TEXT NOT NULL,"
    " numbers TEXT NOT NULL, applied INTEGER, ack_error TEXT,"
    " UNIQUE (installation, run, seq));"
    "CREATE INDEX plan_changes_time ON plan_changes (time_ns);",
    /* 4: parked domains: calls failed at once because the component's
     * domain was parked, and whether it was */
    ("ALTER TABLE stats ADD COLUMN parked_calls INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE stats ADD COLUMN parked INTEGER NOT NULL DEFAULT 0;"),
    /* 5: the outbox of a supervisor whose store is a fleet's (PostgreSQL):
     * how far each table has been shipped, which plan acknowledgements
     * have, and the fleet's pooled evidence as last fetched */
    ("CREATE TABLE outbox (tbl TEXT PRIMARY KEY, upto INTEGER NOT NULL);"
     "ALTER TABLE plan_changes ADD COLUMN ack_shipped INTEGER NOT NULL DEFAULT 0;"
     "CREATE TABLE fleet_evidence ("
     " installation TEXT NOT NULL, code_id TEXT NOT NULL, calls REAL NOT NULL,"
     " faults REAL NOT NULL, host_blame REAL NOT NULL, installations INTEGER NOT NULL,"
     " last_ns INTEGER NOT NULL, at_ns INTEGER NOT NULL, PRIMARY KEY (installation, code_id));"),
};

_Static_assert(sizeof migrations / sizeof migrations[0] == QS_SCHEMA_VERSION,
               "one migration per schema version");

/* The tables each migration adds (space-separated): a store of version v
 * made before stores had an application id is known by those of 1..v. */
static const char *const tables_added[] = {
    "reports",
    "report_frames report_blame stats edge_stats spools",
    "proc_stats starts components plan_changes",
    "",
    "outbox fleet_evidence",
};

_Static_assert(sizeof tables_added / sizeof tables_added[0] == QS_SCHEMA_VERSION,
               "the tables of each schema version");

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

/* One integer a statement yields (a PRAGMA's): 0, or -1. */
static int int_of(qs_store *s, const char *sql, int *v) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* Whether the file is some other application's database (1, with why), or
 * a store, or empty (0). Ours: our application id; or, for a store made
 * before stores had one, no id, a version we know and the tables of that
 * version; or nothing at all yet (a new store). Decided before anything is
 * written: another application's file is never converted. -1: unreadable. */
static int foreign(qs_store *s, int v, int known, char *why, size_t len) {
    int app;
    if (int_of(s, "PRAGMA application_id", &app))
        return -1;
    if (app == QS_APPLICATION_ID)
        return 0;
    if (app != 0) {
        snprintf(why, len, "its application id is 0x%08x, another application's (quarantine's is "
                 "0x%08x)", (unsigned)app, (unsigned)QS_APPLICATION_ID);
        return 1;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT name FROM sqlite_master WHERE type = 'table' AND"
                                  " name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    char names[4096] = "", list[400] = "";
    int n = 0, rc;
    size_t at = 0, lat = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        int k = snprintf(names + at, sizeof names - at, " %s ", t ? t : "");
        at = k > 0 && (size_t)k < sizeof names - at ? at + (size_t)k - 1 : at;
        if (n < 8) {
            k = snprintf(list + lat, sizeof list - lat, "%s%s", n ? ", " : "", t ? t : "");
            lat = k > 0 && (size_t)k < sizeof list - lat ? lat + (size_t)k : lat;
        } else if (n == 8) {
            snprintf(list + lat, sizeof list - lat, ", ...");
        }
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return -1;
    if (v == 0 && n == 0)
        return 0; /* nothing here yet: a new store */
    int ours = v > 0; /* the tables of every version up to v (of ours, as far as we know) */
    for (int i = 0; ours && i < (v < known ? v : known); i++) {
        char want[256];
        snprintf(want, sizeof want, "%s", tables_added[i]);
        char *save = NULL;
        for (char *t = strtok_r(want, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
            char key[80];
            snprintf(key, sizeof key, " %s ", t);
            ours &= strstr(names, key) != NULL;
        }
    }
    if (ours)
        return 0;
    if (n)
        snprintf(why, len, "it holds tables of another application (%s)", list);
    else
        snprintf(why, len, "its user_version is %d, but it holds none of quarantine's tables", v);
    return 1;
}

qs_store *qs_open(const char *path, int readonly, char *err, size_t len) {
    qs_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->path = strdup(path);
    if (!readonly && access(path, F_OK) == 0 && access(path, W_OK) != 0) {
        fail(err, len, path, "cannot write", "the file is read-only");
        qs_close(s);
        return NULL;
    }
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        fail(err, len, path, "cannot open", s->db ? sqlite3_errmsg(s->db) : "out of memory");
        qs_close(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 5000); /* a reader or another writer: wait a little */
    int v, known = QS_SCHEMA_VERSION, app = 0;
    char why[512];
    int other = int_of(s, "PRAGMA user_version", &v) ? -1 : foreign(s, v, known, why, sizeof why);
    if (other) { /* not a database, unreadable, or another application's */
        fail(err, len, path, "not a quarantine store", other < 0 ? sqlite3_errmsg(s->db) : why);
        qs_close(s);
        return NULL;
    }
    int_of(s, "PRAGMA application_id", &app);
    if (v > known) {
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
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        fail(err, len, path, "cannot write", "the file (or its folder) is read-only");
        qs_close(s);
        return NULL;
    }
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err, len, "setting up"))  {
        qs_close(s);
        return NULL;
    }
    if (v == known && app == QS_APPLICATION_ID)
        return s;
    if (exec(s, "BEGIN IMMEDIATE", err, len, "migrating")) {
        qs_close(s);
        return NULL;
    }
    /* another process may have migrated it meanwhile */
    if (int_of(s, "PRAGMA user_version", &v) || v > known) {
        fail(err, len, path, "migrating", v > known ? "a newer quarantine migrated it meanwhile"
                                                    : sqlite3_errmsg(s->db));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        qs_close(s);
        return NULL;
    }
    for (int i = v; i < known; i++)
        if (exec(s, migrations[i], err, len, "migrating")) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            qs_close(s);
            return NULL;
        }
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d; COMMIT",
             QS_APPLICATION_ID, known);
    if (exec(s, sql, err, len, "migrating")) {
        qs_close(s);
        return NULL;
    }
    return s;
}

qs_store *qs_open_memory(const char *name, char *err, size_t len) {
    qs_store *s = qs_open(":memory:", 0, err, len);
    char *n = s ? strdup(name) : NULL;
    if (s && !n) {
        fail(err, len, name, "cannot open", "out of memory");
        qs_close(s);
        return NULL;
    }
    if (s) {
        free(s->path);
        s->path = n;
    }
    return s;
}

qs_store *qs_open_to_read(const char *path, char *err, size_t len) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, len, "store %s: no such file (quarantine run makes it)", path);
        return NULL;
    }
    qs_store *s = qs_open(path, 1, err, len);
    if (!s && strstr(err, "an older schema")) { /* migrate it, if it may be written */
        char werr[512];
        qs_store *w = qs_open(path, 0, werr, sizeof werr);
        qs_close(w);
        if (w)
            s = qs_open(path, 1, err, len);
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

void qs_busy_ms(qs_store *s, int ms) {
    sqlite3_busy_timeout(s->db, ms);
}

int qs_begin(qs_store *s, char *err, size_t len) {
    return exec(s, "BEGIN IMMEDIATE", err, len, "cannot write");
}

int qs_commit(qs_store *s, char *err, size_t len) {
    if (exec(s, "COMMIT", err, len, "cannot write")) {
        qs_rollback(s);
        return -1;
    }
    return 0;
}

void qs_rollback(qs_store *s) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Runs one prepared statement with its parameters bound by the caller. */
static int step(qs_store *s, sqlite3_stmt *st, char *err, size_t len, const char *what) {
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return fail(err, len, s->path, what, sqlite3_errmsg(s->db));
    return 0;
}

static sqlite3_stmt *prep(qs_store *s, const char *sql, char *err, size_t len, const char *what) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail(err, len, s->path, what, sqlite3_errmsg(s->db));
        return NULL;
    }
    return st;
}

/* Prepares sql and binds its parameters in order as `types` says (s: text,
 * NULL as ""; n: text, NULL or "" as NULL; i: int; l: int64; d: double):
 * the statement to step, or NULL with err set (`what` failed). */
static sqlite3_stmt *vquery(qs_store *s, char *err, size_t len, const char *what,
                            const char *sql, const char *types, va_list ap) {
    sqlite3_stmt *st = prep(s, sql, err, len, what);
    if (!st)
        return NULL;
    if ((size_t)sqlite3_bind_parameter_count(st) != strlen(types)) {
        sqlite3_finalize(st);
        fail(err, len, s->path, what, "parameters and values do not match");
        return NULL;
    }
    for (int i = 1; types[i - 1]; i++) {
        const char *v;
        switch (types[i - 1]) {
        case 's':
            v = va_arg(ap, const char *);
            sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_TRANSIENT);
            break;
        case 'n':
            v = va_arg(ap, const char *);
            if (v && *v)
                sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(st, i);
            break;
        case 'i': sqlite3_bind_int(st, i, va_arg(ap, int)); break;
        case 'l': sqlite3_bind_int64(st, i, va_arg(ap, int64_t)); break;
        default: sqlite3_bind_double(st, i, va_arg(ap, double)); break;
        }
    }
    return st;
}

sqlite3_stmt *qs_vquery(qs_store *s, char *err, size_t len, const char *sql, const char *types,
                        va_list ap) {
    return vquery(s, err, len, "cannot read", sql, types, ap);
}

sqlite3_stmt *qs_read(qs_store *s, char *err, size_t len, const char *sql, const char *types,
                      ...) {
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = qs_vquery(s, err, len, sql, types, ap);
    va_end(ap);
    return st;
}

static sqlite3_stmt *query(qs_store *s, char *err, size_t len, const char *what, const char *sql,
                           const char *types, ...) {
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = vquery(s, err, len, what, sql, types, ap);
    va_end(ap);
    return st;
}

/* query(), run: 1 when it changed a row, 0 when not (a row there
 * already), -1 with err set. */
static int put(qs_store *s, char *err, size_t len, const char *what, const char *sql,
               const char *types, ...) {
    va_list ap;
    va_start(ap, types);
    sqlite3_stmt *st = vquery(s, err, len, what, sql, types, ap);
    va_end(ap);
    if (!st || step(s, st, err, len, what))
        return -1;
    return sqlite3_changes(s->db) ? 1 : 0;
}

static int put_details(qs_store *s, const qs_report *r, sqlite3_int64 id, char *err, size_t len) {
    for (int i = 0; i < r->nframes; i++) {
        char addr[24];
        snprintf(addr, sizeof addr, "0x%llx", (unsigned long long)r->frames[i].addr);
        if (put(s, err, len, "cannot store a report",
                "INSERT INTO report_frames (report_id, n, addr, symbol, component)"
                " VALUES (?,?,?,?,?)",
                "lisss", (int64_t)id, i, addr, r->frames[i].symbol, r->frames[i].component) < 0)
            return -1;
    }
    for (int i = 0; i < r->nblame; i++)
        if (put(s, err, len, "cannot store a report",
                "INSERT INTO report_blame (report_id, component, share, code_id, ambiguous)"
                " VALUES (?,?,?,?,?)",
                "lsdsi", (int64_t)id, r->blame[i].component, r->blame[i].share,
                r->blame[i].code_id, r->blame[i].ambiguous) < 0)
            return -1;
    return 0;
}

int qs_put(qs_store *s, const qs_report *r, char *err, size_t len) {
    if (exec(s, "SAVEPOINT put", err, len, "cannot store a report"))
        return -1;
    int added = put(s, err, len, "cannot store a report",
                    "INSERT OR IGNORE INTO reports (installation, run, pid, seq, time_ns, kind,"
                    " component, entry, signal, domain, recovery_ns, calls_failed, reason, json,"
                    " build_id, plan, proc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    "ssillsssiilisnsss", r->installation, r->run, r->pid, r->seq, r->time_ns,
                    r->kind, r->component, r->entry, r->signal, r->domain, r->recovery_ns,
                    r->calls_failed, r->reason, r->json, r->build_id, r->plan, r->proc);
    if (added < 0)
        goto undo;
    if (added && put_details(s, r, sqlite3_last_insert_rowid(s->db), err, len))
        goto undo;
    if (exec(s, "RELEASE put", err, len, "cannot store a report"))
        goto undo;
    return added;
undo:
    sqlite3_exec(s->db, "ROLLBACK TO put; RELEASE put", NULL, NULL, NULL);
    return -1;
}

int qs_put_exit_crash(qs_store *s, const char *installation, const char *run, const char *proc,
                      int pid, int sig, int64_t time_ns, char *err, size_t len) {
    char reason[96];
    snprintf(reason, sizeof reason, "the program died of SIG%s", sigabbrev_np(sig) ?: "?");
    /* number 0: the identity a record of the crash handler's has too */
    qs_report r = {installation, run, pid, 0, time_ns, "host-crash", "", "", sig, 0, 0, 0,
                   reason, NULL, "", "", 0, NULL, 0, NULL, proc};
    return qs_put(s, &r, err, len);
}

int qs_put_stat(qs_store *s, const qs_stat *t, char *err, size_t len) {
    return put(s, err, len, "cannot store statistics",
               "INSERT OR IGNORE INTO stats (installation, run, pid, time_ns, build_id, plan,"
               " component, domain, code_id, proc, parked_calls, parked, calls, crossings,"
               " cross_ns, faults) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
               "ssilsssisslillll", t->installation, t->run, t->pid, t->time_ns, t->build_id,
               t->plan, t->component, t->domain, t->code_id, t->proc, t->parked_calls,
               t->parked != 0, t->calls, t->crossings, t->cross_ns, t->faults);
}

int qs_put_edge_stat(qs_store *s, const qs_edge_stat *t, char *err, size_t len) {
    return put(s, err, len, "cannot store statistics",
               "INSERT OR IGNORE INTO edge_stats (installation, run, pid, time_ns, caller, callee,"
               " entry, bytes, overhead_ns, proc, calls, crossings, cross_ns, faults)"
               " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
               "ssilsssllsllll", t->installation, t->run, t->pid, t->time_ns, t->caller,
               t->callee, t->entry, t->bytes, t->overhead_ns, t->proc, t->calls, t->crossings,
               t->cross_ns, t->faults);
}

int qs_put_proc_stat(qs_store *s, const qs_proc_stat *t, char *err, size_t len) {
    return put(s, err, len, "cannot store statistics",
               "INSERT OR IGNORE INTO proc_stats (installation, run, proc, pid, time_ns, start_ns,"
               " work, cpu_ns, cpu_at_ns, ncpu) VALUES (?,?,?,?,?,?,?,?,?,?)",
               "sssillllli", t->installation, t->run, t->proc, t->pid, t->time_ns,
               t->start_ns, t->work, t->cpu_ns, t->cpu_at_ns, t->ncpu);
}

int qs_put_start(qs_store *s, const qs_start *t, char *err, size_t len) {
    return put(s, err, len, "cannot store a start",
               "INSERT OR IGNORE INTO starts (installation, run, proc, pid, build_id, exe,"
               " start_ns, ready_ns, down_ns) VALUES (?,?,?,?,?,?,?,?,?)",
               "sssisslll", t->installation, t->run, t->proc, t->pid, t->build_id,
               t->exe, t->start_ns, t->ready_ns, t->down_ns);
}

int qs_put_component(qs_store *s, const qs_component *c, char *err, size_t len) {
    return put(s, err, len, "cannot store a component",
               "INSERT OR IGNORE INTO components (build_id, component, code_id, known, entries)"
               " VALUES (?,?,?,?,?)",
               "sssis", c->build_id, c->component, c->code_id, c->known, c->entries);
}

int qs_put_plan_change(qs_store *s, const qs_plan_change *p, char *err, size_t len) {
    return put(s, err, len, "cannot store a plan change",
               "INSERT OR IGNORE INTO plan_changes (installation, run, seq, time_ns, pid, mode,"
               " from_plan, to_plan, reason, numbers) VALUES (?,?,?,?,?,?,?,?,?,?)",
               "ssllisssss", p->installation, p->run, p->seq, p->time_ns, p->pid, p->mode,
               p->from, p->to, p->reason, p->numbers && *p->numbers ? p->numbers : "{}");
}

int qs_put_plan_ack(qs_store *s, const char *installation, const char *run, int64_t seq,
                    int applied, const char *error, char *err, size_t len) {
    return put(s, err, len, "cannot store a plan change",
               "UPDATE plan_changes SET applied = ?, ack_error = ?"
               " WHERE installation = ? AND run = ? AND seq = ?",
               "inssl", applied, error, installation, run, seq);
}

int qs_rename_proc(qs_store *s, const char *installation, const char *run, int pid,
                   const char *from, const char *to, char *err, size_t len) {
    static const char *const tables[] = {"reports", "stats", "edge_stats", "proc_stats", "starts"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "UPDATE OR IGNORE %s SET proc = ? WHERE installation = ? AND"
                 " run = ? AND pid = ? AND proc = ?", tables[i]);
        if (put(s, err, len, "cannot write", sql, "sssis", to, installation, run, pid, from) < 0)
            return -1;
    }
    return 0;
}

struct sqlite3 *qs_db(qs_store *s) { return s->db; }

const char *qs_path(const qs_store *s) { return s->path; }

int qs_spool_get(qs_store *s, const char *name, int64_t *done, char *err, size_t len) {
    sqlite3_stmt *st = query(s, err, len, "cannot read",
                             "SELECT done_bytes FROM spools WHERE name = ?", "s", name);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    *done = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(err, len, s->path, "cannot read", sqlite3_errmsg(s->db));
    return 0;
}

const char *qs_col(sqlite3_stmt *st, int i) {
    const char *v = (const char *)sqlite3_column_text(st, i);
    return v ? v : "";
}

int qs_done(qs_store *s, sqlite3_stmt *st, int rc, char *err, size_t errlen) {
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    snprintf(err, errlen, "store %s: cannot read: %s", qs_path(s), sqlite3_errmsg(qs_db(s)));
    return -1;
}

int qs_spool_set(qs_store *s, const char *name, int64_t done, char *err, size_t len) {
    return put(s, err, len, "cannot write",
               "INSERT OR REPLACE INTO spools (name, done_bytes) VALUES (?,?)", "sl", name,
               done) < 0 ? -1 : 0;
}

int qs_spool_forget(qs_store *s, const char *name, char *err, size_t len) {
    return put(s, err, len, "cannot write", "DELETE FROM spools WHERE name = ?", "s", name) < 0
               ? -1
               : 0;
}

int qs_outbox_get(qs_store *s, const char *tbl, int64_t *upto, char *err, size_t len) {
    sqlite3_stmt *st = query(s, err, len, "cannot read", "SELECT upto FROM outbox WHERE tbl = ?",
                             "s", tbl);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    *upto = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(err, len, s->path, "cannot read", sqlite3_errmsg(s->db));
    return 0;
}

int qs_outbox_set(qs_store *s, const char *tbl, int64_t upto, char *err, size_t len) {
    /* two supervisors sharing an outbox may both ship: the mark only moves on */
    return put(s, err, len, "cannot write",
               "INSERT INTO outbox (tbl, upto) VALUES (?,?) ON CONFLICT (tbl) DO UPDATE SET"
               " upto = MAX(upto, excluded.upto)",
               "sl", tbl, upto) < 0 ? -1 : 0;
}

int qs_outbox_acked(qs_store *s, int64_t id, char *err, size_t len) {
    return put(s, err, len, "cannot write", "UPDATE plan_changes SET ack_shipped = 1 WHERE id = ?",
               "l", id) < 0 ? -1 : 0;
}

int qs_put_fleet_evidence(qs_store *s, const qs_fleet_evidence *f, char *err, size_t len) {
    return put(s, err, len, "cannot write",
               "INSERT OR REPLACE INTO fleet_evidence (installation, code_id, calls, faults,"
               " host_blame, installations, last_ns, at_ns) VALUES (?,?,?,?,?,?,?,?)",
               "ssdddill", f->installation, f->code_id, f->calls, f->faults, f->host_blame,
               f->installations, f->last_ns, f->at_ns) < 0 ? -1 : 0;
}

int qs_clear_fleet_evidence(qs_store *s, const char *installation, char *err, size_t len) {
    return put(s, err, len, "cannot write", "DELETE FROM fleet_evidence WHERE installation = ?",
               "s", installation) < 0 ? -1 : 0;
}

void qs_json_str(FILE *o, const char *s) {
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

/* ---- the report ------------------------------------------------------------- */

typedef struct crow {
    char name[64];
    int domain;                   /* -1: no statistics */
    long long calls, crossings;
    long long faults, failed;     /* faults of its domain while isolated */
    double rec_mean, rec_max;     /* ns */
    double blamed;                /* host crashes, shares summed */
    long long parked_calls;       /* calls failed at once: its domain was parked */
    int parked;                   /* the newest snapshot: its domain is parked */
} crow;

typedef struct ctab {
    crow *rows;
    int n, cap;
} ctab;

static crow *row(ctab *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->rows[i].name, name))
            return &t->rows[i];
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        crow *r = realloc(t->rows, (size_t)cap * sizeof *r);
        if (!r)
            return NULL;
        t->rows = r;
        t->cap = cap;
    }
    crow *r = &t->rows[t->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->domain = -1;
    return r;
}

static const char *text(sqlite3_stmt *st, int col) {
    const char *v = (const char *)sqlite3_column_text(st, col);
    return v ? v : "";
}

/* Runs a query with the time bound as parameter 1, handing each row to fn. */
static int each(qs_store *s, const char *sql, int64_t since, void (*fn)(ctab *, sqlite3_stmt *),
                ctab *t, char *err, size_t len) {
    sqlite3_stmt *st = query(s, err, len, "cannot read", sql, "l", since);
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(t, st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(err, len, s->path, "cannot read", sqlite3_errmsg(s->db));
}

static void on_stats(ctab *t, sqlite3_stmt *st) {
    crow *r = row(t, text(st, 0));
    if (r) {
        r->calls = sqlite3_column_int64(st, 1);
        r->crossings = sqlite3_column_int64(st, 2);
        r->parked_calls = sqlite3_column_int64(st, 3);
    }
}

static void on_where(ctab *t, sqlite3_stmt *st) {
    crow *r = row(t, text(st, 0));
    if (r) {
        r->domain = sqlite3_column_int(st, 1);
        r->parked = sqlite3_column_int(st, 2) != 0;
    }
}

static void on_faults(ctab *t, sqlite3_stmt *st) {
    crow *r = row(t, *text(st, 0) ? text(st, 0) : "(unknown)");
    if (r) {
        r->faults = sqlite3_column_int64(st, 1);
        r->failed = sqlite3_column_int64(st, 2);
        r->rec_mean = sqlite3_column_double(st, 3);
        r->rec_max = sqlite3_column_double(st, 4);
    }
}

static void on_blame(ctab *t, sqlite3_stmt *st) {
    crow *r = row(t, text(st, 0));
    if (r)
        r->blamed = sqlite3_column_double(st, 1);
}

/* Per component: totals of each process's last snapshot, where the newest
 * snapshot puts it, its domain's faults, and its share of host crashes. */
static int table(qs_store *s, int64_t since, ctab *t, long long *host, char *err, size_t len) {
    /* a process is its pid and its identity: pids come again */
    if (each(s, "SELECT component, SUM(calls), SUM(crossings), SUM(parked_calls) FROM stats s"
                " WHERE time_ns >= ? AND time_ns = (SELECT MAX(time_ns) FROM stats l WHERE"
                " l.installation = s.installation AND l.run = s.run AND l.proc = s.proc AND"
                " l.pid = s.pid AND l.component = s.component) GROUP BY component"
                " ORDER BY component",
             since, on_stats, t, err, len) ||
        each(s, "SELECT component, domain, parked FROM stats s WHERE time_ns >= ? AND time_ns ="
                " (SELECT MAX(time_ns) FROM stats l WHERE l.component = s.component)",
             since, on_where, t, err, len) ||
        each(s, "SELECT component, COUNT(*), SUM(calls_failed),"
                " AVG(CASE WHEN recovery_ns > 0 THEN recovery_ns END), MAX(recovery_ns)"
                " FROM reports WHERE kind <> 'host-crash' AND time_ns >= ? GROUP BY component",
             since, on_faults, t, err, len) ||
        each(s, "SELECT b.component, SUM(b.share) FROM report_blame b JOIN reports r"
                " ON r.id = b.report_id WHERE r.kind = 'host-crash' AND r.time_ns >= ?"
                " GROUP BY b.component",
             since, on_blame, t, err, len))
        return -1;
    sqlite3_stmt *st = query(s, err, len, "cannot read",
                             "SELECT COUNT(*) FROM reports WHERE kind = 'host-crash' AND"
                             " time_ns >= ?",
                             "l", since);
    if (!st)
        return -1;
    *host = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return 0;
}

static void print_table(FILE *o, const ctab *t, long long host) {
    fprintf(o, "%-16s %-9s %10s %10s %8s %16s %10s %10s\n", "component", "plan", "calls",
            "crossings", "faults", "host crashes", "recovery", "max");
    fprintf(o, "%-16s %-9s %10s %10s %8s %16s %10s %10s\n", "", "", "", "", "isolated",
            "blamed (share)", "mean", "");
    for (int i = 0; i < t->n; i++) {
        const crow *r = &t->rows[i];
        char where[24], blame[40], mean[24], max[24];
        if (r->domain < 0)
            snprintf(where, sizeof where, "-");
        else if (r->domain == 0)
            snprintf(where, sizeof where, "host");
        else
            snprintf(where, sizeof where, "domain %d", r->domain);
        snprintf(blame, sizeof blame, "%.2f (%.0f%%)", r->blamed,
                 host ? 100.0 * r->blamed / (double)host : 0.0);
        snprintf(mean, sizeof mean, r->faults ? "%.2f ms" : "-", r->rec_mean / 1e6);
        snprintf(max, sizeof max, r->faults ? "%.2f ms" : "-", r->rec_max / 1e6);
        fprintf(o, "%-16s %-9s %10lld %10lld %8lld %16s %10s %10s\n", r->name, where, r->calls,
                r->crossings, r->faults, blame, mean, max);
    }
    if (!t->n)
        fputs("(nothing recorded yet)\n", o);
    fprintf(o, "host crashes: %lld\n", host);
}

static void json_table(FILE *o, const ctab *t, long long host) {
    fputs("{\"components\":[", o);
    for (int i = 0; i < t->n; i++) {
        const crow *r = &t->rows[i];
        fprintf(o, "%s{\"component\":", i ? "," : "");
        qs_json_str(o, r->name);
        fprintf(o, ",\"domain\":%d,\"calls\":%lld,\"crossings\":%lld,\"domain_faults\":%lld,"
                   "\"calls_failed\":%lld,\"host_crashes_blamed\":%.4f,\"blame_fraction\":%.4f,"
                   "\"recovery_ms_mean\":%.3f,\"recovery_ms_max\":%.3f,\"parked\":%s,"
                   "\"parked_calls\":%lld}",
                r->domain, r->calls, r->crossings, r->faults, r->failed, r->blamed,
                host ? r->blamed / (double)host : 0.0, r->rec_mean / 1e6, r->rec_max / 1e6,
                r->parked ? "true" : "false", r->parked_calls);
    }
    fprintf(o, "],\"host_crashes\":%lld", host);
}

static void utc(long long t_ns, char *out, size_t len) {
    time_t secs = (time_t)(t_ns / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* The domains parked at each process's last snapshot (since `since`):
 * per component in them, since when (the report that parked the domain,
 * else the first snapshot that saw it parked, after the last that did not)
 * and the calls that failed at once meanwhile. Printed only when there are
 * any; in JSON always, as "parked_domains". */
static int parked_domains(qs_store *s, FILE *o, int json, int64_t since, char *err, size_t len) {
    sqlite3_stmt *st = query(
        s, err, len, "cannot read",
        "SELECT s.component, s.domain, s.pid, s.proc, s.parked_calls, s.time_ns,"
        " COALESCE(u.time_ns, -1), COALESCE(u.parked_calls, 0),"
        " (SELECT MIN(p.time_ns) FROM stats p WHERE p.installation = s.installation AND"
        "  p.run = s.run AND p.proc = s.proc AND p.pid = s.pid AND p.component = s.component"
        "  AND p.parked = 1 AND p.time_ns > COALESCE(u.time_ns, -1)),"
        " (SELECT MIN(r.time_ns) FROM reports r WHERE r.installation = s.installation AND"
        "  r.run = s.run AND r.proc = s.proc AND r.pid = s.pid AND r.domain = s.domain AND"
        "  r.kind <> 'host-crash' AND r.time_ns > COALESCE(u.time_ns, -1) AND"
        "  r.time_ns <= s.time_ns AND"
        "  CASE WHEN json_valid(r.json) THEN json_extract(r.json, '$.parked') END = 1)"
        " FROM stats s LEFT JOIN stats u ON u.id = (SELECT v.id FROM stats v WHERE"
        "  v.installation = s.installation AND v.run = s.run AND v.proc = s.proc AND"
        "  v.pid = s.pid AND v.component = s.component AND v.parked = 0"
        "  ORDER BY v.time_ns DESC LIMIT 1)"
        " WHERE s.parked = 1 AND s.time_ns >= ? AND s.time_ns = (SELECT MAX(l.time_ns) FROM"
        "  stats l WHERE l.installation = s.installation AND l.run = s.run AND l.proc = s.proc"
        "  AND l.pid = s.pid AND l.component = s.component)"
        " ORDER BY s.time_ns DESC, s.component",
        "l", since);
    if (!st)
        return -1;
    int n = 0, rc;
    fputs(json ? ",\"parked_domains\":[" : "", o);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long long calls = sqlite3_column_int64(st, 4) - sqlite3_column_int64(st, 7);
        long long from = sqlite3_column_int64(st, 8);
        if (sqlite3_column_type(st, 9) != SQLITE_NULL && sqlite3_column_int64(st, 9) < from)
            from = sqlite3_column_int64(st, 9);
        calls = calls < 0 ? sqlite3_column_int64(st, 4) : calls; /* the count began again */
        if (json) {
            fprintf(o, "%s{\"component\":", n ? "," : "");
            qs_json_str(o, text(st, 0));
            fprintf(o, ",\"domain\":%d,\"pid\":%d,\"proc\":", sqlite3_column_int(st, 1),
                    sqlite3_column_int(st, 2));
            qs_json_str(o, text(st, 3));
            fprintf(o, ",\"since_ns\":%lld,\"calls_failed_while_parked\":%lld}", from, calls);
        } else {
            char when[40], dom[24];
            if (!n)
                fputs("\nparked domains (their calls fail at once, with the fault value, until a"
                      " plan names the domain again):\n", o);
            utc(from, when, sizeof when);
            snprintf(dom, sizeof dom, "domain %d", sqlite3_column_int(st, 1));
            fprintf(o, "  %-16s %-9s since %s  %lld call(s) failed while parked  (pid %d)\n",
                    text(st, 0), dom, when, calls, sqlite3_column_int(st, 2));
        }
        n++;
    }
    sqlite3_finalize(st);
    if (json)
        fputc(']', o);
    return rc == SQLITE_DONE ? 0 : fail(err, len, s->path, "cannot read", sqlite3_errmsg(s->db));
}

/* The backtrace of report `id`: printed, or as a JSON array. */
static int frames(qs_store *s, sqlite3_int64 id, FILE *o, int json, char *err, size_t len) {
    sqlite3_stmt *st = query(s, err, len, "cannot read",
                             "SELECT addr, symbol, component FROM report_frames"
                             " WHERE report_id = ? ORDER BY n",
                             "l", (int64_t)id);
    if (!st)
        return -1;
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (json) {
            fputs(n ? ",{\"addr\":" : "{\"addr\":", o);
            qs_json_str(o, text(st, 0));
            fputs(",\"symbol\":", o);
            qs_json_str(o, text(st, 1));
            fputs(",\"component\":", o);
            qs_json_str(o, text(st, 2));
            fputc('}', o);
        } else if (n < 12) {
            fprintf(o, "      #%-2d %-18s %s%s%s%s\n", n, text(st, 0), text(st, 1),
                    *text(st, 2) ? "  [" : "", text(st, 2), *text(st, 2) ? "]" : "");
        }
        n++;
    }
    if (!json && n > 12)
        fprintf(o, "      ... %d more\n", n - 12);
    sqlite3_finalize(st);
    return 0;
}

/* The latest plan changes, newest first: when, the mode, from -> to, why,
 * and whether the program applied it. Closes the JSON object. */
static int plan_changes(qs_store *s, FILE *o, int json, int64_t since, int latest, char *err,
                        size_t len) {
    sqlite3_stmt *st = query(s, err, len, "cannot read",
                             "SELECT time_ns, mode, from_plan, to_plan, reason, applied,"
                             " ack_error, pid, numbers FROM plan_changes WHERE time_ns >= ?"
                             " ORDER BY time_ns DESC, id DESC LIMIT ?",
                             "li", since, latest);
    if (!st)
        return -1;
    fputs(json ? "],\"plan_changes\":[" : "\nplan changes:\n", o);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        long long t_ns = sqlite3_column_int64(st, 0);
        const char *applied = sqlite3_column_type(st, 5) == SQLITE_NULL ? "unknown"
                              : sqlite3_column_int(st, 5)               ? "applied"
                                                                        : "rejected";
        int start = sqlite3_column_int(st, 7) == 0;
        if (json) {
            fprintf(o, "%s{\"time_ns\":%lld,\"mode\":", n ? "," : "", t_ns);
            qs_json_str(o, text(st, 1));
            fputs(",\"from\":", o);
            qs_json_str(o, text(st, 2));
            fputs(",\"to\":", o);
            qs_json_str(o, text(st, 3));
            fputs(",\"reason\":", o);
            qs_json_str(o, text(st, 4));
            fprintf(o, ",\"status\":\"%s\",\"for_restart\":%s,\"numbers\":%s}",
                    start ? "at start" : applied, start ? "true" : "false",
                    *text(st, 8) ? text(st, 8) : "{}");
        } else {
            time_t secs = (time_t)(t_ns / 1000000000);
            struct tm tm;
            char when[32];
            gmtime_r(&secs, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
            fprintf(o, "  %s UTC  %-11s %s -> %s  (%s)\n      %s\n", when, text(st, 1),
                    *text(st, 2) ? text(st, 2) : "(all in the host)", text(st, 3),
                    start ? "for a start after a crash" : applied, text(st, 4));
            if (!strcmp(applied, "rejected"))
                fprintf(o, "      rejected: %s\n", text(st, 6));
        }
        n++;
    }
    sqlite3_finalize(st);
    if (json)
        fputs("]}\n", o);
    else if (!n)
        fputs("  (none)\n", o);
    return 0;
}

int qs_print(qs_store *s, FILE *o, int json, int64_t since_ns, int latest, char *err,
             size_t len) {
    ctab t = {0};
    long long host = 0;
    int r = table(s, since_ns, &t, &host, err, len);
    if (!r) {
        if (json)
            json_table(o, &t, host);
        else
            print_table(o, &t, host);
    }
    free(t.rows);
    if (r || parked_domains(s, o, json, since_ns, err, len))
        return -1;
    sqlite3_stmt *st = query(s, err, len, "cannot read",
                             "SELECT id, time_ns, kind, component, entry, signal, domain, pid,"
                             " reason, build_id, plan FROM reports WHERE time_ns >= ?"
                             " ORDER BY time_ns DESC, id DESC LIMIT ?",
                             "li", since_ns, latest);
    if (!st)
        return -1;
    fputs(json ? ",\"latest\":[" : "\nlatest reports:\n", o);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        sqlite3_int64 id = sqlite3_column_int64(st, 0);
        long long t_ns = sqlite3_column_int64(st, 1);
        const char *kind = text(st, 2), *comp = text(st, 3), *entry = text(st, 4);
        if (json) {
            fprintf(o, "%s{\"time_ns\":%lld,\"kind\":", n ? "," : "", t_ns);
            qs_json_str(o, kind);
            fputs(",\"component\":", o);
            qs_json_str(o, comp);
            fputs(",\"entry\":", o);
            qs_json_str(o, entry);
            fprintf(o, ",\"signal\":%d,\"domain\":%d,\"pid\":%d,\"reason\":",
                    sqlite3_column_int(st, 5), sqlite3_column_int(st, 6),
                    sqlite3_column_int(st, 7));
            qs_json_str(o, text(st, 8));
            fputs(",\"build_id\":", o);
            qs_json_str(o, text(st, 9));
            fputs(",\"plan\":", o);
            qs_json_str(o, text(st, 10));
            fputs(",\"backtrace\":[", o);
        } else {
            time_t secs = (time_t)(t_ns / 1000000000);
            struct tm tm;
            char when[32];
            gmtime_r(&secs, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
            fprintf(o, "  %s UTC  %-10s %s%s%s  %s\n", when, kind, *comp ? comp : "-",
                    *entry ? "." : "", entry, text(st, 8));
            if (*text(st, 10))
                fprintf(o, "      plan: %s\n", text(st, 10));
        }
        if (frames(s, id, o, json, err, len)) {
            sqlite3_finalize(st);
            return -1;
        }
        if (json)
            fputs("]}", o);
        n++;
    }
    sqlite3_finalize(st);
    if (!json && !n)
        fputs("  (none)\n", o);
    return plan_changes(s, o, json, since_ns, latest, err, len);
}
