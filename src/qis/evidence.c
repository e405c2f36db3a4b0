/* evidence.c - the store, read as the policy's inputs (see evidence.h). */
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evidence.h"


#define RATE_WINDOW_NS 300000000000LL /* call rates: the last five minutes */
#define ASSUMED_CALLS_PER_S 100.0      /* before any was measured */

typedef struct rd {
    qs_store *s;
    sqlite3 *db;
    char *err;
    size_t len;
} rd;

static int fail(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(rd *r, const char *fmt, ...) {
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (r->err && r->len)
        snprintf(r->err, r->len, "store %s: %s", qs_path(r->s), why);
    return -1;
}

/* Prepares sql and binds the parameters, as qs_vquery. */
/* a read of r's store, its error into r's */
#define q(r, ...) qs_read((r)->s, (r)->err, (r)->len, __VA_ARGS__)

/* Finishes a statement: 0, or -1 if stepping ended in an error. */
static int done(rd *r, sqlite3_stmt *st, int rc) {
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : fail(r, "cannot read: %s",
                                                            sqlite3_errmsg(r->db));
}

static const char *col(sqlite3_stmt *st, int i) {
    const char *v = (const char *)sqlite3_column_text(st, i);
    return v ? v : "";
}

static int find(const qs_evidence *ev, const char *name) {
    for (int i = 0; i < ev->n; i++)
        if (!strcmp(ev->names[i], name))
            return i;
    return -1;
}

/* One integer from a query with one row, or dflt. */
static int64_t one(rd *r, int64_t dflt, sqlite3_stmt *st) {
    if (!st)
        return dflt;
    int rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL
                    ? sqlite3_column_int64(st, 0)
                    : dflt;
    done(r, st, rc);
    return v;
}

static double one_d(rd *r, double dflt, sqlite3_stmt *st) {
    if (!st)
        return dflt;
    int rc = sqlite3_step(st);
    double v = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL
                   ? sqlite3_column_double(st, 0)
                   : dflt;
    done(r, st, rc);
    return v;
}

int qs_evidence_place(qs_evidence *ev, const char *plan, int max_domains) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", plan ? plan : "");
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, " \t\n,;", &save); tok;
         tok = strtok_r(NULL, " \t\n,;", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = 0;
        int i = find(ev, tok);
        if (i < 0)
            continue;
        long d = strcmp(eq + 1, "host") ? strtol(eq + 1, NULL, 10) : 0;
        ev->comps[i].domain = d > 0 && d <= max_domains ? (int)d : 0;
        n++;
    }
    return n;
}

/* The components of the build, each with its code identity and what the
 * store knows of that code. */
static int load_components(rd *r, qs_evidence *ev, const char *inst) {
    int64_t n = one(r, 0, q(r, "SELECT COUNT(*) FROM components WHERE build_id = ?", "s",
                            ev->build_id));
    if (n <= 0)
        return fail(r, "build %s has no components recorded", ev->build_id);
    ev->comps = calloc((size_t)n, sizeof *ev->comps);
    ev->names = calloc((size_t)n, sizeof *ev->names);
    ev->codes = calloc((size_t)n, sizeof *ev->codes);
    if (!ev->comps || !ev->names || !ev->codes)
        return fail(r, "out of memory");
    sqlite3_stmt *st = q(r, "SELECT component, code_id, known FROM components WHERE build_id = ?"
                            " ORDER BY rowid", "s", ev->build_id); /* as registered */
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && ev->n < n) {
        int i = ev->n++;
        snprintf(ev->names[i], sizeof ev->names[i], "%s", col(st, 0));
        snprintf(ev->codes[i], sizeof ev->codes[i], "%s", col(st, 1));
        ev->comps[i].name = ev->names[i];
        ev->comps[i].code = sqlite3_column_int(st, 2) ? QP_CODE_NEW : QP_CODE_UNKNOWN;
    }
    if (done(r, st, rc))
        return -1;
    /* the newest process of the build started then: what came before is history */
    int64_t started = one(r, 0, q(r, "SELECT MAX(start_ns) FROM starts WHERE installation = ? AND"
                                     " build_id = ?", "ss", inst, ev->build_id));
    for (int i = 0; i < ev->n; i++) {
        if (ev->comps[i].code == QP_CODE_UNKNOWN)
            continue;
        /* history of this code: statistics from before, or another build with it */
        int64_t seen = one(r, 0, q(r, "SELECT EXISTS (SELECT 1 FROM stats WHERE code_id = ? AND"
                                      " time_ns < ?) OR EXISTS (SELECT 1 FROM components WHERE"
                                      " code_id = ? AND build_id <> ?) OR EXISTS (SELECT 1 FROM"
                                      " fleet_evidence WHERE installation = ? AND code_id = ?"
                                      " AND calls + faults + host_blame > 0)",
                                   "slssss", ev->codes[i], started, ev->codes[i], ev->build_id,
                                   inst, ev->codes[i]));
        int64_t other = one(r, 0, q(r, "SELECT EXISTS (SELECT 1 FROM components WHERE component"
                                       " = ? AND build_id <> ? AND code_id <> ?)",
                                    "sss", ev->names[i], ev->build_id, ev->codes[i]));
        ev->comps[i].code = seen ? QP_CODE_SAME : other ? QP_CODE_CHANGED : QP_CODE_NEW;
    }
    return 0;
}

/* Faults and host crashes blamed on each component's code, here and in
 * the rest of the fleet; the time of the latest of them (*last). */
static int load_blame(rd *r, qs_evidence *ev, const char *inst, double now, double h,
                      int64_t *last) {
    for (int i = 0; i < ev->n; i++) {
        qp_comp *c = &ev->comps[i];
        double at[5] = {now, now, now, now, now};
        sqlite3_stmt *st = q(r, "SELECT r.installation, r.time_ns, r.kind, b.share, b.ambiguous"
                                " FROM report_blame b JOIN reports r ON r.id = b.report_id"
                                " WHERE b.code_id = ? ORDER BY r.time_ns",
                             "s", ev->codes[i]);
        if (!st)
            return -1;
        int rc;
        last[i] = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            bool here = !strcmp(col(st, 0), inst);
            double t = sqlite3_column_int64(st, 1) / 1e9, share = sqlite3_column_double(st, 3);
            bool host = !strcmp(col(st, 2), "host-crash");
            if (sqlite3_column_int64(st, 1) > last[i])
                last[i] = sqlite3_column_int64(st, 1);
            if (here && host)
                qp_decay_add(&c->host_blame, &at[0], t, share, h);
            else if (here)
                qp_decay_add(&c->faults, &at[1], t, share, h);
            else if (host)
                qp_decay_add(&c->pool_host_blame, &at[2], t, share, h);
            else
                qp_decay_add(&c->pool_faults, &at[3], t, share, h);
            if (here && sqlite3_column_int(st, 4))
                qp_decay_add(&c->ambiguous, &at[4], t, share, h);
        }
        if (done(r, st, rc))
            return -1;
        c->host_blame = qp_decay_at(c->host_blame, at[0], now, h);
        c->faults = qp_decay_at(c->faults, at[1], now, h);
        c->pool_host_blame = qp_decay_at(c->pool_host_blame, at[2], now, h);
        c->pool_faults = qp_decay_at(c->pool_faults, at[3], now, h);
        c->ambiguous = qp_decay_at(c->ambiguous, at[4], now, h);
    }
    return 0;
}

/* Calls into each component's code: the increments of each process's
 * cumulative counts, discounted by their age; calls since the last fault. */
static int load_exposure(rd *r, qs_evidence *ev, const char *inst, double now, double h,
                         const int64_t *last) {
    for (int i = 0; i < ev->n; i++) {
        qp_comp *c = &ev->comps[i];
        double at = now, pat = now;
        sqlite3_stmt *st = q(r, "SELECT installation, time_ns, calls - COALESCE(LAG(calls) OVER"
                                " (PARTITION BY installation, run, proc, pid ORDER BY time_ns), 0)"
                                " FROM stats WHERE code_id = ? ORDER BY time_ns",
                             "s", ev->codes[i]);
        if (!st)
            return -1;
        int rc;
        char seen[16][128];
        int nseen = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            double d = (double)sqlite3_column_int64(st, 2);
            int64_t tns = sqlite3_column_int64(st, 1);
            if (d <= 0)
                continue;
            double t = tns / 1e9;
            if (tns > last[i])
                c->clean_calls += d;
            if (!strcmp(col(st, 0), inst)) {
                qp_decay_add(&c->calls, &at, t, d, h);
                continue;
            }
            qp_decay_add(&c->pool_calls, &pat, t, d, h);
            int known = 0;
            for (int k = 0; k < nseen; k++)
                known |= !strcmp(seen[k], col(st, 0));
            if (!known) {
                if (nseen < 16)
                    snprintf(seen[nseen++], sizeof seen[0], "%s", col(st, 0));
                c->pool_installations++;
            }
        }
        if (done(r, st, rc))
            return -1;
        c->calls = qp_decay_at(c->calls, at, now, h);
        c->pool_calls = qp_decay_at(c->pool_calls, pat, now, h);
    }
    return 0;
}

/* The fleet's pooled evidence for each component's code, as the outbox
 * last fetched it (ship.h; none when the store is not an outbox): the
 * faults and host crashes blamed on it elsewhere, with the latest's time
 * (into last), or (calls) the calls made into it elsewhere. Discounted on
 * from when it was fetched: the last fetched stays in force while the
 * fleet cannot be reached. */
static int load_fleet(rd *r, qs_evidence *ev, const char *inst, double now, double h,
                      int64_t *last, int calls) {
    for (int i = 0; i < ev->n; i++) {
        qp_comp *c = &ev->comps[i];
        sqlite3_stmt *st = q(r, "SELECT calls, faults, host_blame, installations, last_ns, at_ns"
                                " FROM fleet_evidence WHERE installation = ? AND code_id = ?",
                             "ss", inst, ev->codes[i]);
        if (!st)
            return -1;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            double at = sqlite3_column_int64(st, 5) / 1e9;
            if (calls) {
                c->pool_calls += qp_decay_at(sqlite3_column_double(st, 0), at, now, h);
                c->pool_installations += sqlite3_column_int(st, 3);
            } else {
                c->pool_faults += qp_decay_at(sqlite3_column_double(st, 1), at, now, h);
                c->pool_host_blame += qp_decay_at(sqlite3_column_double(st, 2), at, now, h);
                if (sqlite3_column_int64(st, 4) > last[i])
                    last[i] = sqlite3_column_int64(st, 4);
            }
        }
        if (done(r, st, rc))
            return -1;
    }
    return 0;
}

/* The process of the build here whose rates are the rates now: the latest
 * with two snapshots or more (an interval to read rates from), among the
 * last few with a snapshot; else the latest with one, whose rates are
 * counted from its start (start-up included: a process that crashed before
 * its first snapshot seems to have called less than it did). And when it
 * started. */
static int load_process(rd *r, qs_evidence *ev, const char *inst, char *run, size_t runlen,
                        int64_t *start) {
    sqlite3_stmt *st = q(r, "SELECT s.run, s.proc, s.pid, s.start_ns, (SELECT COUNT(DISTINCT"
                            " t.time_ns) FROM stats t WHERE t.installation = s.installation AND"
                            " t.run = s.run AND t.proc = s.proc AND t.pid = s.pid) AS n"
                            " FROM starts s WHERE s.installation = ? AND s.build_id = ? AND"
                            " EXISTS (SELECT 1 FROM stats t WHERE t.installation ="
                            " s.installation AND t.run = s.run AND t.proc = s.proc AND t.pid ="
                            " s.pid) ORDER BY s.start_ns DESC, s.rowid DESC LIMIT 8",
                         "ss", inst, ev->build_id);
    if (!st)
        return -1;
    int rc;
    bool first = true;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (first || sqlite3_column_int(st, 4) >= 2) {
            snprintf(run, runlen, "%s", col(st, 0));
            snprintf(ev->proc, sizeof ev->proc, "%s", col(st, 1));
            ev->pid = sqlite3_column_int(st, 2);
            *start = sqlite3_column_int64(st, 3);
        }
        if (sqlite3_column_int(st, 4) >= 2)
            break;
        first = false;
    }
    return done(r, st, rc);
}

/* Rates now, from the latest process's snapshots of the last minutes: per
 * component, per edge, its work and CPU; the cost of a crossing per edge
 * from everything measured here. */
static int load_rates(rd *r, qs_evidence *ev, const char *inst, const char *run, int64_t start,
                      int ecap) {
    int64_t t1 = one(r, 0, q(r, "SELECT MAX(time_ns) FROM stats WHERE installation = ? AND run = ?"
                                " AND proc = ? AND pid = ?",
                             "sssl", inst, run, ev->proc, (int64_t)ev->pid));
    if (!t1)
        return 0; /* no snapshot yet: no rates */
    int64_t from = t1 - RATE_WINDOW_NS > start ? t1 - RATE_WINDOW_NS : start;
    /* per component: first and last snapshot in the window */
    sqlite3_stmt *st = q(r, "SELECT component, MIN(time_ns), MAX(time_ns) FROM stats"
                            " WHERE installation = ? AND run = ? AND proc = ? AND pid = ?"
                            " AND time_ns >= ? GROUP BY component",
                         "sssll", inst, run, ev->proc, (int64_t)ev->pid, from);
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int i = find(ev, col(st, 0));
        if (i < 0)
            continue;
        int64_t a = sqlite3_column_int64(st, 1), b = sqlite3_column_int64(st, 2);
        int64_t ca = one(r, 0, q(r, "SELECT calls FROM stats WHERE installation = ? AND run = ?"
                                    " AND proc = ? AND pid = ? AND component = ? AND time_ns = ?",
                                 "ssslsl", inst, run, ev->proc, (int64_t)ev->pid, ev->names[i], a));
        int64_t cb = one(r, 0, q(r, "SELECT calls FROM stats WHERE installation = ? AND run = ?"
                                    " AND proc = ? AND pid = ? AND component = ? AND time_ns = ?",
                                 "ssslsl", inst, run, ev->proc, (int64_t)ev->pid, ev->names[i], b));
        if (a == b) { /* one snapshot: since the process started */
            a = start;
            ca = 0;
        }
        if (b > a && cb >= ca)
            ev->comps[i].calls_per_s = (double)(cb - ca) / ((b - a) / 1e9);
    }
    if (done(r, st, rc))
        return -1;
    /* per edge, the same; summed over entries */
    st = q(r, "SELECT caller, callee, time_ns, SUM(calls) FROM edge_stats WHERE installation = ?"
              " AND run = ? AND proc = ? AND pid = ? AND time_ns >= ? GROUP BY caller, callee,"
              " time_ns ORDER BY caller, callee, time_ns",
           "sssll", inst, run, ev->proc, (int64_t)ev->pid, from);
    if (!st)
        return -1;
    char pc[64] = "", pe[64] = "";
    int64_t ta = 0, tb = 0, ca = 0, cb = 0;
    bool have = false;
    for (;;) {
        rc = sqlite3_step(st);
        bool same = rc == SQLITE_ROW && !strcmp(col(st, 0), pc) && !strcmp(col(st, 1), pe);
        if (have && !same) { /* the previous edge is complete */
            int callee = find(ev, pe), caller = strcmp(pc, "program") ? find(ev, pc) : -1;
            if (callee >= 0 && (caller >= 0 || !strcmp(pc, "program")) && ev->ne < ecap) {
                if (ta == tb)
                    ta = start, ca = 0;
                qp_edge *e = &ev->edges[ev->ne++];
                *e = (qp_edge){.caller = caller, .callee = callee, .bytes_per_call = -1};
                if (tb > ta && cb >= ca)
                    e->calls_per_s = (double)(cb - ca) / ((tb - ta) / 1e9);
            }
            have = false;
        }
        if (rc != SQLITE_ROW)
            break;
        if (!have) {
            snprintf(pc, sizeof pc, "%s", col(st, 0));
            snprintf(pe, sizeof pe, "%s", col(st, 1));
            ta = sqlite3_column_int64(st, 2);
            ca = sqlite3_column_int64(st, 3);
            have = true;
        }
        tb = sqlite3_column_int64(st, 2);
        cb = sqlite3_column_int64(st, 3);
    }
    if (done(r, st, rc))
        return -1;
    /* the cost of crossing each edge and of a call into each component:
     * each process's totals here */
    st = q(r, "SELECT caller, callee, SUM(crossings), SUM(bytes), SUM(overhead_ns),"
              " SUM(cross_ns) FROM edge_stats e WHERE installation = ? AND time_ns ="
              " (SELECT MAX(time_ns) FROM edge_stats l WHERE l.installation = e.installation AND"
              " l.run = e.run AND l.proc = e.proc AND l.pid = e.pid) GROUP BY caller, callee",
           "s", inst);
    if (!st)
        return -1;
    double xing = 0, over = 0;
    double *cross = calloc((size_t)ev->n + 1, sizeof *cross), *cns = calloc((size_t)ev->n + 1,
                                                                            sizeof *cns);
    if (!cross || !cns) {
        free(cross);
        free(cns);
        sqlite3_finalize(st);
        return fail(r, "out of memory");
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        double n = sqlite3_column_double(st, 2);
        if (n <= 0)
            continue;
        xing += n;
        over += sqlite3_column_double(st, 4);
        int callee = find(ev, col(st, 1));
        int caller = strcmp(col(st, 0), "program") ? find(ev, col(st, 0)) : -1;
        if (callee < 0)
            continue;
        cross[callee] += n;
        cns[callee] += sqlite3_column_double(st, 5);
        for (int k = 0; k < ev->ne; k++)
            if (ev->edges[k].callee == callee && ev->edges[k].caller == caller) {
                ev->edges[k].bytes_per_call = sqlite3_column_double(st, 3) / n;
                ev->edges[k].cross_s = fmin(sqlite3_column_double(st, 4) / n / 1e9,
                                            QS_CROSSING_CPU_MAX_S);
            }
    }
    for (int i = 0; i < ev->n; i++)
        if (cross[i] > 0)
            ev->comps[i].call_s = cns[i] / cross[i] / 1e9;
    free(cross);
    free(cns);
    if (done(r, st, rc))
        return -1;
    if (xing > 0)
        ev->costs.crossing_s = fmin(over / xing / 1e9, QS_CROSSING_CPU_MAX_S);
    /* work and CPU: the process's first and last totals in the window */
    st = q(r, "SELECT time_ns, work, cpu_ns, cpu_at_ns, ncpu, start_ns FROM proc_stats WHERE"
              " installation = ? AND run = ? AND proc = ? AND pid = ? AND time_ns >= ?"
              " ORDER BY time_ns",
           "sssll", inst, run, ev->proc, (int64_t)ev->pid, from);
    if (!st)
        return -1;
    int64_t w0 = -1, w1 = 0, t0 = 0, tt = 0, c0 = 0, c1 = 0, a0 = 0, a1 = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (w0 < 0) {
            t0 = sqlite3_column_int64(st, 0), w0 = sqlite3_column_int64(st, 1);
            c0 = sqlite3_column_int64(st, 2), a0 = sqlite3_column_int64(st, 3);
        }
        tt = sqlite3_column_int64(st, 0), w1 = sqlite3_column_int64(st, 1);
        c1 = sqlite3_column_int64(st, 2), a1 = sqlite3_column_int64(st, 3);
        ev->costs.ncpu = sqlite3_column_int(st, 4);
        int64_t ps = sqlite3_column_int64(st, 5);
        if (ps > 0)
            start = ps;
    }
    if (done(r, st, rc))
        return -1;
    if (w0 >= 0) {
        if (tt == t0) /* one snapshot: since the process started */
            t0 = a0 = start, w0 = c0 = 0;
        if (tt > t0 && w1 > w0)
            ev->costs.requests_per_s = (double)(w1 - w0) / ((tt - t0) / 1e9);
        if (a1 > a0 && c1 >= c0)
            ev->costs.cpu_s_per_s = (double)(c1 - c0) / (double)(a1 - a0);
    }
    return 0;
}

/* The CPU a crossing costs, measured as what it is: between two snapshots
 * of a process, CPU per unit of work against crossings per unit of work;
 * across intervals whose plans crossed more or less, the slope of a
 * least-squares line through them is the CPU of one crossing, whatever
 * the machine's load did to how long each one waited. 0 when the
 * intervals do not tell (no work counted, one plan only, a slope that
 * makes no sense), and never more than all the CPU the intervals used
 * per crossing. */
static double crossing_cpu(rd *r, const char *inst, int *npoints) {
    /* only snapshots whose CPU was read when they were taken: the one a
     * supervisor reads from the statistics file after the program is gone
     * has the counts up to its end but the CPU of the last snapshot, and
     * an interval ending there would seem to have used no CPU */
    sqlite3_stmt *st = q(r, "SELECT p.run, p.proc, p.pid, p.time_ns, p.work, p.cpu_ns,"
                            " (SELECT SUM(e.crossings) FROM edge_stats e WHERE e.installation ="
                            " p.installation AND e.run = p.run AND e.proc = p.proc AND e.pid ="
                            " p.pid AND e.time_ns = p.time_ns)"
                            " FROM proc_stats p WHERE p.installation = ? AND p.cpu_ns > 0"
                            " AND p.cpu_at_ns = p.time_ns"
                            " ORDER BY p.run, p.proc, p.pid, p.time_ns DESC LIMIT 2000",
                         "s", inst);
    if (!st)
        return 0;
    char key[200] = "";
    double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, pw = 0, pc = 0, px = 0, tc = 0, tx = 0;
    int n = 0, rc;
    bool have = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char k[200];
        snprintf(k, sizeof k, "%s/%s/%d", col(st, 0), col(st, 1), sqlite3_column_int(st, 2));
        double w = sqlite3_column_double(st, 4), c = sqlite3_column_double(st, 5),
               x = sqlite3_column_double(st, 6);
        if (have && !strcmp(k, key) && pw > w) { /* rows come newest first */
            double dw = pw - w, dc = pc - c, dx = px - x;
            if (dw > 0 && dc >= 0 && dx >= 0) {
                double xi = dx / dw, yi = dc / dw; /* per unit of work */
                sw += dw, sx += dw * xi, sy += dw * yi, sxx += dw * xi * xi, sxy += dw * xi * yi;
                n++;
                tc += dc, tx += dx;
            }
        }
        snprintf(key, sizeof key, "%s", k);
        pw = w, pc = c, px = x;
        have = true;
    }
    done(r, st, rc);
    *npoints = n;
    if (n < 3 || sw <= 0)
        return 0;
    double mx = sx / sw, var = sxx / sw - mx * mx, cov = sxy / sw - mx * (sy / sw);
    if (!(var > 0) || sqrt(var) < 0.05 * (mx > 0 ? mx : 1))
        return 0; /* the crossings per request hardly varied: no slope to read */
    double slope = cov / var / 1e9; /* seconds per crossing */
    /* a line through a few noisy intervals can be steeper than they allow:
     * the crossings cannot have cost more than all the CPU they used */
    if (tx > 0 && slope > tc / tx / 1e9)
        slope = tc / tx / 1e9;
    return slope >= 1e-7 && slope <= 1e-2 ? slope : 0;
}

/* What a restart and a recovery cost here. */
static int load_costs(rd *r, qs_evidence *ev, const char *inst, double backoff_s) {
    int pts = 0;
    double cpu = crossing_cpu(r, inst, &pts);
    if (cpu > 0) { /* one measure for every edge: the CPU, not the wait */
        ev->costs.crossing_s = cpu;
        ev->crossing_fit = pts;
        for (int k = 0; k < ev->ne; k++)
            ev->edges[k].cross_s = 0;
    }
    double down = one_d(r, 0, q(r, "SELECT AVG(down_ns) FROM (SELECT down_ns FROM starts WHERE"
                                   " installation = ? AND down_ns > 0 ORDER BY start_ns DESC"
                                   " LIMIT 20)",
                                "s", inst));
    if (down > 0) {
        ev->costs.host_restart_s = down / 1e9;
    } else { /* no crash yet: its start-up, after the supervisor's first delay */
        double ready = one_d(r, 0, q(r, "SELECT AVG(ready_ns) FROM (SELECT ready_ns FROM starts"
                                        " WHERE installation = ? AND ready_ns > 0 ORDER BY"
                                        " start_ns DESC LIMIT 20)",
                                     "s", inst));
        if (ready > 0)
            ev->costs.host_restart_s = ready / 1e9 + backoff_s;
    }
    double rec = one_d(r, 0, q(r, "SELECT AVG(recovery_ns) FROM (SELECT recovery_ns FROM reports"
                                  " WHERE installation = ? AND kind <> 'host-crash' AND"
                                  " recovery_ns > 0 ORDER BY time_ns DESC LIMIT 100)",
                               "s", inst));
    if (rec > 0)
        ev->costs.recovery_s = rec / 1e9;
    return 0;
}

int qs_evidence_load(qs_store *s, const char *inst, const char *build_id, int64_t now_ns,
                     const char *plan, double backoff_s, const qp_settings *set,
                     qs_evidence *ev, char *err, size_t len) {
    memset(ev, 0, sizeof *ev);
    rd r = {s, qs_db(s), err, len};
    if (build_id && *build_id) {
        snprintf(ev->build_id, sizeof ev->build_id, "%s", build_id);
    } else {
        sqlite3_stmt *st = q(&r, "SELECT build_id, exe FROM starts WHERE installation = ?"
                                 " ORDER BY start_ns DESC, rowid DESC LIMIT 1", "s", inst);
        if (!st)
            return -1;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            snprintf(ev->build_id, sizeof ev->build_id, "%s", col(st, 0));
            snprintf(ev->exe, sizeof ev->exe, "%s", col(st, 1));
        }
        if (done(&r, st, rc))
            return -1;
        if (rc != SQLITE_ROW) {
            snprintf(err, len, "store %s: no program of installation %s has started under "
                               "quarantine run yet: nothing to decide from",
                     qs_path(s), inst);
            return 1;
        }
    }
    if (!one(&r, 0, q(&r, "SELECT COUNT(*) FROM components WHERE build_id = ?", "s",
                      ev->build_id))) {
        snprintf(err, len, "store %s: no build %s with components is recorded", qs_path(s),
                 ev->build_id);
        return 1;
    }
    double now = now_ns / 1e9, h = set->half_life_s;
    int64_t start = 0, *last = NULL;
    char run[128] = "";
    int rc = -1;
    if (load_process(&r, ev, inst, run, sizeof run, &start) || load_components(&r, ev, inst))
        goto out;
    last = calloc((size_t)ev->n + 1, sizeof *last);
    int64_t nedges = one(&r, 0, q(&r, "SELECT COUNT(DISTINCT caller || '>' || callee) FROM"
                                      " edge_stats WHERE installation = ?", "s", inst));
    ev->edges = calloc((size_t)nedges + 1, sizeof *ev->edges);
    if (!last || !ev->edges) {
        fail(&r, "out of memory");
        goto out;
    }
    if (load_blame(&r, ev, inst, now, h, last) || load_fleet(&r, ev, inst, now, h, last, 0) ||
        load_exposure(&r, ev, inst, now, h, last) || load_fleet(&r, ev, inst, now, h, last, 1) ||
        (ev->proc[0] || ev->pid ? load_rates(&r, ev, inst, run, start, (int)nedges) : 0) ||
        load_costs(&r, ev, inst, backoff_s))
        goto out;
    if (ev->ne > nedges) /* cannot be: counted above */
        ev->ne = (int)nedges;
    if (!ev->proc[0] && !ev->pid) {
        /* the build's first process, before its first snapshot: its rates
         * are not known, not zero (a sceptical mode isolates it at once,
         * a trusting one does not); each component is taken to be called
         * by the program at an assumed rate */
        qp_edge *more = realloc(ev->edges, (size_t)(ev->ne + ev->n + 1) * sizeof *more);
        if (!more) {
            fail(&r, "out of memory");
            goto out;
        }
        ev->edges = more;
        for (int i = 0; i < ev->n; i++) {
            ev->comps[i].calls_per_s = ASSUMED_CALLS_PER_S;
            ev->comps[i].rate_assumed = 1;
            ev->edges[ev->ne++] = (qp_edge){.caller = -1, .callee = i,
                                            .calls_per_s = ASSUMED_CALLS_PER_S,
                                            .bytes_per_call = -1};
        }
    }
    /* the plan in force: as given, or as the latest snapshot says */
    if (plan) {
        snprintf(ev->plan, sizeof ev->plan, "%s", plan);
    } else {
        sqlite3_stmt *st = q(&r, "SELECT plan FROM stats WHERE installation = ? AND build_id = ?"
                                 " ORDER BY time_ns DESC LIMIT 1", "ss", inst, ev->build_id);
        if (!st)
            goto out;
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            snprintf(ev->plan, sizeof ev->plan, "%s", col(st, 0));
        if (done(&r, st, src))
            goto out;
    }
    qs_evidence_place(ev, ev->plan, set->max_domains);
    /* hysteresis: how long this plan has been in force, changes in the last hour */
    int64_t changed = one(&r, 0, q(&r, "SELECT MAX(time_ns) FROM plan_changes WHERE"
                                       " installation = ? AND (applied = 1 OR pid = 0)", "s", inst));
    int64_t since = changed > start ? changed : start;
    ev->state.plan_age_s = since > 0 && now_ns > since ? (now_ns - since) / 1e9 : 1e9;
    ev->state.changes_last_hour =
        (int)one(&r, 0, q(&r, "SELECT COUNT(*) FROM plan_changes WHERE installation = ? AND"
                              " time_ns > ?", "sl", inst, (int64_t)(now_ns - 3600000000000LL)));
    int64_t first = one(&r, now_ns, q(&r, "SELECT MIN(time_ns) FROM stats WHERE installation = ?",
                                      "s", inst));
    ev->history_s = now_ns > first ? (now_ns - first) / 1e9 : 0;
    rc = 0;
out:
    free(last);
    if (rc)
        qs_evidence_free(ev);
    return rc;
}

void qs_evidence_free(qs_evidence *ev) {
    free(ev->comps);
    free(ev->edges);
    free(ev->names);
    free(ev->codes);
    ev->comps = NULL;
    ev->edges = NULL;
    ev->names = NULL;
    ev->codes = NULL;
    ev->n = ev->ne = 0;
}
