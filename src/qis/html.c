/* html.c - the store as one HTML page with inline SVG charts (see html.h).
 * Each section reads what it draws from the store itself; nothing is
 * drawn from a number the page does not show. */
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bucket.h"
#include "evidence.h"
#include "html.h"
#include "policy.h"

#define W 960          /* every chart's width (its viewBox; it scales to the page) */
#define LEFT 150       /* the label column */
#define ROW 26         /* a component's row */
#define TIME_BINS 60   /* faults over time */
#define ROWS_MAX 64    /* components drawn in one chart */
#define EDGES_MAX 24   /* edges in the overhead chart */
#define RESTARTS_MAX 120

void qh_esc(FILE *o, const char *v) {
    for (; v && *v; v++) {
        unsigned char c = (unsigned char)*v;
        switch (c) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break;
        case '\'': fputs("&#39;", o); break;
        default:
            if (c < 0x20 && c != '\n' && c != '\t')
                fputc('?', o); /* control characters are not allowed in HTML */
            else
                fputc(c, o);
        }
    }
}

/* ---- reading ----------------------------------------------------------------- */

typedef struct rd {
    qs_store *s;
    char *err;
    size_t len;
    int64_t since;
} rd;

/* a read of r's store, its error into r's */
#define q(r, ...) qs_read((r)->s, (r)->err, (r)->len, __VA_ARGS__)

static int done(rd *r, sqlite3_stmt *st, int rc) {
    return qs_done(r->s, st, rc, r->err, r->len);
}

static int oom(rd *r) {
    snprintf(r->err, r->len, "out of memory making the page");
    return -1;
}

/* A growable array of fixed-size items. */
typedef struct vec {
    void *p;
    int n, cap;
    size_t size;
} vec;

static void *push(vec *v) {
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 32;
        void *p = realloc(v->p, (size_t)cap * v->size);
        if (!p)
            return NULL;
        v->p = p;
        v->cap = cap;
    }
    void *it = (char *)v->p + (size_t)v->n++ * v->size;
    memset(it, 0, v->size);
    return it;
}

#define AT(v, T, i) (((T *)(v).p)[i])

typedef struct event {
    int64_t t;
    int host; /* 1: a host crash */
    char comp[64];
} event;

typedef struct snap {
    int64_t t;
    int domain;
    char comp[64];
} snap;

typedef struct change {
    int64_t t;
    char *to, *reason, *status;
} change;

typedef struct edge {
    char caller[64], callee[64];
    long long calls, crossings, cross_ns, overhead_ns;
} edge;

typedef struct names {
    char (*v)[64];
    int n, cap;
} names;

static int name_at(names *nm, const char *name) {
    for (int i = 0; i < nm->n; i++)
        if (!strcmp(nm->v[i], name))
            return i;
    if (nm->n == nm->cap) {
        int cap = nm->cap ? 2 * nm->cap : 16;
        char(*v)[64] = realloc(nm->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        nm->v = v;
        nm->cap = cap;
    }
    snprintf(nm->v[nm->n], sizeof nm->v[0], "%s", name);
    return nm->n++;
}

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

typedef struct page {
    vec events, snaps, changes, edges;
    double *recovery; /* s */
    int nrec;
    double *restart_s;
    int64_t *restart_t;
    int nrestart;
    int64_t t0, t1;
    long long cpu_ns;
    double budget, overhead_now; /* the latest decision's (budget_known: one was stored) */
    int budget_known, overhead_known;
    char installation[128];
    names comps;      /* every component seen, sorted */
    int *domain_now;  /* per comps: the latest snapshot's domain (-1 none) */
} page;

static void widen(page *p, int64_t t) {
    if (!p->t0 || t < p->t0)
        p->t0 = t;
    if (t > p->t1)
        p->t1 = t;
}

static int read_page(rd *r, page *p) {
    p->events.size = sizeof(event);
    p->snaps.size = sizeof(snap);
    p->changes.size = sizeof(change);
    p->edges.size = sizeof(edge);
    qp_settings dflt;
    qp_settings_default(&dflt);
    p->budget = dflt.budget; /* until a plan change says the one in use */
    int rc;
    sqlite3_stmt *st = q(r,
                         "SELECT time_ns, kind = 'host-crash', component FROM reports"
                         " WHERE time_ns >= ? ORDER BY time_ns",
                         "l", r->since);
    if (!st)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        event *e = push(&p->events);
        if (!e) {
            sqlite3_finalize(st);
            return oom(r);
        }
        e->t = sqlite3_column_int64(st, 0);
        e->host = sqlite3_column_int(st, 1);
        snprintf(e->comp, sizeof e->comp, "%s", *qs_col(st, 2) ? qs_col(st, 2) : "(unknown)");
        widen(p, e->t);
    }
    if (done(r, st, rc))
        return -1;
    /* the plan timeline is one installation's: the one heard from last */
    st = q(r, "SELECT installation FROM stats WHERE time_ns >= ? ORDER BY time_ns DESC LIMIT 1",
           "l", r->since);
    if (!st)
        return -1;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        snprintf(p->installation, sizeof p->installation, "%s", qs_col(st, 0));
    if (done(r, st, rc == SQLITE_ROW ? SQLITE_DONE : rc))
        return -1;
    st = q(r,
           "SELECT time_ns, domain, component FROM stats WHERE time_ns >= ? AND"
           " installation = ? ORDER BY component, time_ns",
           "ls", r->since, p->installation);
    if (!st)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        snap *n = push(&p->snaps);
        if (!n) {
            sqlite3_finalize(st);
            return oom(r);
        }
        n->t = sqlite3_column_int64(st, 0);
        n->domain = sqlite3_column_int(st, 1);
        snprintf(n->comp, sizeof n->comp, "%s", qs_col(st, 2));
        widen(p, n->t);
    }
    if (done(r, st, rc))
        return -1;
    st = q(r,
           "SELECT time_ns, to_plan, reason, CASE WHEN pid = 0 THEN 'for a start after a crash'"
           " WHEN applied IS NULL THEN 'not answered' WHEN applied = 1 THEN 'applied'"
           " ELSE 'rejected: ' || COALESCE(ack_error, '') END,"
           " CASE WHEN json_valid(numbers) THEN json_extract(numbers, '$.budget') END,"
           " CASE WHEN json_valid(numbers) THEN json_extract(numbers, '$.overhead_now') END"
           " FROM plan_changes WHERE time_ns >= ? AND installation = ? ORDER BY time_ns, id",
           "ls", r->since, p->installation);
    if (!st)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        change *c = push(&p->changes);
        if (!c) {
            sqlite3_finalize(st);
            return oom(r);
        }
        c->t = sqlite3_column_int64(st, 0);
        c->to = strdup(qs_col(st, 1));
        c->reason = strdup(qs_col(st, 2));
        c->status = strdup(qs_col(st, 3));
        if (!c->to || !c->reason || !c->status) {
            sqlite3_finalize(st);
            return oom(r);
        }
        if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
            p->budget = sqlite3_column_double(st, 4);
            p->budget_known = 1;
        }
        if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
            p->overhead_now = sqlite3_column_double(st, 5);
            p->overhead_known = 1;
        }
        widen(p, c->t);
    }
    if (done(r, st, rc))
        return -1;
    /* each process's last snapshot of each edge, summed */
    st = q(r,
           "SELECT caller, callee, SUM(calls), SUM(crossings), SUM(cross_ns), SUM(overhead_ns)"
           " FROM edge_stats e WHERE time_ns >= ? AND time_ns = (SELECT MAX(time_ns) FROM"
           " edge_stats l WHERE l.installation = e.installation AND l.run = e.run AND"
           " l.proc = e.proc AND l.pid = e.pid AND l.caller = e.caller AND l.entry = e.entry)"
           " GROUP BY caller, callee ORDER BY caller, callee",
           "l", r->since);
    if (!st)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        edge *e = push(&p->edges);
        if (!e) {
            sqlite3_finalize(st);
            return oom(r);
        }
        snprintf(e->caller, sizeof e->caller, "%s", qs_col(st, 0));
        snprintf(e->callee, sizeof e->callee, "%s", qs_col(st, 1));
        e->calls = sqlite3_column_int64(st, 2);
        e->crossings = sqlite3_column_int64(st, 3);
        e->cross_ns = sqlite3_column_int64(st, 4);
        e->overhead_ns = sqlite3_column_int64(st, 5);
    }
    if (done(r, st, rc))
        return -1;
    st = q(r,
           "SELECT COALESCE(SUM(cpu_ns), 0) FROM proc_stats p WHERE time_ns >= ? AND time_ns ="
           " (SELECT MAX(time_ns) FROM proc_stats l WHERE l.installation = p.installation AND"
           " l.run = p.run AND l.proc = p.proc AND l.pid = p.pid)",
           "l", r->since);
    if (!st)
        return -1;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        p->cpu_ns = sqlite3_column_int64(st, 0);
    if (done(r, st, rc == SQLITE_ROW ? SQLITE_DONE : rc))
        return -1;
    st = q(r,
           "SELECT recovery_ns FROM reports WHERE time_ns >= ? AND kind <> 'host-crash' AND"
           " recovery_ns > 0",
           "l", r->since);
    if (!st)
        return -1;
    int cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (p->nrec == cap) {
            cap = cap ? 2 * cap : 64;
            double *v = realloc(p->recovery, (size_t)cap * sizeof *v);
            if (!v) {
                sqlite3_finalize(st);
                return oom(r);
            }
            p->recovery = v;
        }
        p->recovery[p->nrec++] = sqlite3_column_int64(st, 0) / 1e9;
    }
    if (done(r, st, rc))
        return -1;
    st = q(r,
           "SELECT start_ns, down_ns FROM (SELECT start_ns, down_ns FROM starts WHERE"
           " start_ns >= ? AND down_ns > 0 ORDER BY start_ns DESC LIMIT ?) ORDER BY start_ns",
           "li", r->since, RESTARTS_MAX);
    if (!st)
        return -1;
    p->restart_s = malloc(RESTARTS_MAX * sizeof *p->restart_s);
    p->restart_t = malloc(RESTARTS_MAX * sizeof *p->restart_t);
    if (!p->restart_s || !p->restart_t) {
        sqlite3_finalize(st);
        return oom(r);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && p->nrestart < RESTARTS_MAX) {
        p->restart_t[p->nrestart] = sqlite3_column_int64(st, 0);
        p->restart_s[p->nrestart++] = sqlite3_column_int64(st, 1) / 1e9;
    }
    if (done(r, st, rc == SQLITE_ROW ? SQLITE_DONE : rc))
        return -1;
    /* every component seen, and where its latest snapshot put it */
    for (int i = 0; i < p->events.n; i++)
        if (name_at(&p->comps, AT(p->events, event, i).comp) < 0)
            return oom(r);
    for (int i = 0; i < p->snaps.n; i++)
        if (name_at(&p->comps, AT(p->snaps, snap, i).comp) < 0)
            return oom(r);
    for (int i = 0; i < p->edges.n; i++)
        if ((strcmp(AT(p->edges, edge, i).caller, "program") &&
             name_at(&p->comps, AT(p->edges, edge, i).caller) < 0) ||
            name_at(&p->comps, AT(p->edges, edge, i).callee) < 0)
            return oom(r);
    if (p->comps.n)
        qsort(p->comps.v, (size_t)p->comps.n, sizeof p->comps.v[0], by_name);
    p->domain_now = malloc((size_t)(p->comps.n + 1) * sizeof *p->domain_now);
    if (!p->domain_now)
        return oom(r);
    for (int i = 0; i < p->comps.n; i++)
        p->domain_now[i] = -1;
    for (int i = 0; i < p->snaps.n; i++) { /* ordered by component, then time: the last wins */
        const snap *n = &AT(p->snaps, snap, i);
        for (int k = 0; k < p->comps.n; k++)
            if (!strcmp(p->comps.v[k], n->comp))
                p->domain_now[k] = n->domain;
    }
    if (p->t1 <= p->t0)
        p->t1 = p->t0 + 1000000000LL;
    return 0;
}

static void free_page(page *p) {
    for (int i = 0; i < p->changes.n; i++) {
        free(AT(p->changes, change, i).to);
        free(AT(p->changes, change, i).reason);
        free(AT(p->changes, change, i).status);
    }
    free(p->events.p);
    free(p->snaps.p);
    free(p->changes.p);
    free(p->edges.p);
    free(p->recovery);
    free(p->restart_s);
    free(p->restart_t);
    free(p->comps.v);
    free(p->domain_now);
}

/* ---- drawing ----------------------------------------------------------------- */

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd",
                                      "#8c564b", "#e377c2", "#17becf", "#bcbd22"};
#define HOST_COLOUR "#b0b0b0"

static const char *colour(int domain) {
    return domain <= 0 ? HOST_COLOUR : palette[(domain - 1) % 8];
}

static void when(int64_t t, int with_date, char *out, size_t len) {
    time_t secs = (time_t)(t / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, len, with_date ? "%Y-%m-%d %H:%M:%S UTC" : "%H:%M:%S", &tm);
}

static double xof(const page *p, int64_t t) {
    return LEFT + (double)(t - p->t0) / (double)(p->t1 - p->t0) * (W - LEFT - 20);
}

/* Five time ticks along the bottom of a chart of height h. */
static void time_axis(FILE *o, const page *p, int y) {
    int days = p->t1 - p->t0 > 86400000000000LL, brief = p->t1 - p->t0 < 120000000000LL;
    fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n", LEFT, y,
            W - 20, y);
    for (int i = 0; i <= 4; i++) {
        int64_t t = p->t0 + (p->t1 - p->t0) / 4 * i;
        char s[40];
        when(t, days, s, sizeof s);
        if (brief) /* a short run: tenths of a second tell the ticks apart */
            snprintf(s + strlen(s), sizeof s - strlen(s), ".%d", (int)(t / 100000000 % 10));
        fprintf(o, "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"%s\">%s</text>\n",
                xof(p, t), y + 14, i == 0 ? "start" : i == 4 ? "end" : "middle", s);
    }
}

static void svg_open(FILE *o, const char *id, int h, const char *label) {
    fprintf(o, "<svg id=\"%s\" viewBox=\"0 0 %d %d\" width=\"100%%\" role=\"img\" "
               "aria-label=\"%s\" xmlns=\"http://www.w3.org/2000/svg\">\n",
            id, W, h, label);
}

static void row_label(FILE *o, int y, const char *name) {
    fprintf(o, "<text x=\"%d\" y=\"%d\" class=\"label\" text-anchor=\"end\">", LEFT - 8, y);
    qh_esc(o, name);
    fputs("</text>\n", o);
}

/* Faults of isolated domains per time bin (bars) and host crashes (marks)
 * per component. */
static void chart_faults(FILE *o, const page *p) {
    names rows = {0};
    for (int i = 0; i < p->events.n && rows.n < ROWS_MAX; i++)
        name_at(&rows, AT(p->events, event, i).comp);
    if (rows.n)
        qsort(rows.v, (size_t)rows.n, sizeof rows.v[0], by_name);
    int h = 30 + ROW * (rows.n ? rows.n : 1) + 24;
    unsigned *bins = calloc((size_t)(rows.n ? rows.n : 1) * TIME_BINS, sizeof *bins);
    unsigned most = 1;
    for (int i = 0; bins && i < p->events.n; i++) {
        const event *e = &AT(p->events, event, i);
        int r = -1;
        for (int k = 0; k < rows.n; k++)
            if (!strcmp(rows.v[k], e->comp))
                r = k;
        if (e->host || r < 0)
            continue;
        int b = (int)((double)(e->t - p->t0) / (double)(p->t1 - p->t0) * TIME_BINS);
        b = b >= TIME_BINS ? TIME_BINS - 1 : b < 0 ? 0 : b;
        unsigned *c = &bins[r * TIME_BINS + b];
        if (++*c > most)
            most = *c;
    }
    svg_open(o, "chart-faults", h, "faults and host crashes per component over time");
    fprintf(o, "<text x=\"%d\" y=\"16\" class=\"note\">bars: faults of its domain while "
               "isolated, per %.3g s; red marks: host crashes blamed on it (tallest bar: %u)"
               "</text>\n",
            LEFT, (double)(p->t1 - p->t0) / 1e9 / TIME_BINS, most);
    double bw = (double)(W - LEFT - 20) / TIME_BINS;
    for (int r = 0; r < rows.n; r++) {
        int y = 30 + ROW * r;
        row_label(o, y + ROW / 2 + 4, rows.v[r]);
        fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"grid\"/>\n", LEFT,
                y + ROW - 2, W - 20, y + ROW - 2);
        for (int b = 0; bins && b < TIME_BINS; b++) {
            unsigned c = bins[r * TIME_BINS + b];
            if (!c)
                continue;
            double bh = (double)(ROW - 6) * c / most;
            int64_t from = p->t0 + (p->t1 - p->t0) * b / TIME_BINS;
            char s[40];
            when(from, 1, s, sizeof s);
            fprintf(o, "<rect class=\"datum fault\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                       "height=\"%.1f\"><title>",
                    LEFT + b * bw, y + ROW - 2 - bh, bw > 2 ? bw - 1 : bw, bh);
            qh_esc(o, rows.v[r]);
            fprintf(o, ": %u fault(s) from %s</title></rect>\n", c, s);
        }
        for (int i = 0; i < p->events.n; i++) {
            const event *e = &AT(p->events, event, i);
            if (!e->host || strcmp(e->comp, rows.v[r]))
                continue;
            double x = xof(p, e->t);
            char s[40];
            when(e->t, 1, s, sizeof s);
            fprintf(o, "<path class=\"datum crash\" d=\"M%.1f %d l-6 10 h12 z\"><title>host "
                       "crash blamed on ", x, y + 4);
            qh_esc(o, e->comp);
            fprintf(o, " at %s</title></path>\n", s);
        }
    }
    if (!rows.n)
        fprintf(o, "<text x=\"%d\" y=\"48\" class=\"note\">no faults and no host crashes "
                   "stored</text>\n", LEFT);
    time_axis(o, p, h - 22);
    fputs("</svg>\n", o);
    free(bins);
    free(rows.v);
}

/* Which component sat in which domain when (from the statistics
 * snapshots), with the plan changes marked and listed with their reasons. */
static void chart_plan(FILE *o, const page *p) {
    names rows = {0};
    for (int i = 0; i < p->snaps.n && rows.n < ROWS_MAX; i++)
        name_at(&rows, AT(p->snaps, snap, i).comp);
    int h = 40 + ROW * (rows.n ? rows.n : 1) + 24;
    svg_open(o, "chart-plan", h, "the plan over time: each component's domain");
    for (int i = 0; i < p->changes.n; i++) {
        double x = xof(p, AT(p->changes, change, i).t);
        fprintf(o, "<line x1=\"%.1f\" y1=\"24\" x2=\"%.1f\" y2=\"%d\" class=\"change\"/>"
                   "<text x=\"%.1f\" y=\"18\" class=\"tick\" text-anchor=\"middle\">%d</text>\n",
                x, x, h - 22, x, i + 1);
    }
    for (int r = 0; r < rows.n; r++) {
        int y = 40 + ROW * r;
        row_label(o, y + ROW / 2 + 2, rows.v[r]);
        /* runs of snapshots with one domain: a segment each, to the next run */
        int first = -1;
        for (int i = 0; i <= p->snaps.n; i++) {
            const snap *n = i < p->snaps.n ? &AT(p->snaps, snap, i) : NULL;
            int mine = n && !strcmp(n->comp, rows.v[r]);
            const snap *f = first >= 0 ? &AT(p->snaps, snap, first) : NULL;
            if (f && (!mine || n->domain != f->domain)) {
                int64_t end = mine ? n->t : AT(p->snaps, snap, i - 1).t;
                double x0 = xof(p, f->t), x1 = xof(p, end);
                if (x1 - x0 < 2)
                    x1 = x0 + 2;
                char a[40], b[40];
                when(f->t, 1, a, sizeof a);
                when(end, 1, b, sizeof b);
                fprintf(o, "<rect class=\"datum seg\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
                           "height=\"%d\" fill=\"%s\"><title>",
                        x0, y + 3, x1 - x0, ROW - 8, colour(f->domain));
                qh_esc(o, rows.v[r]);
                if (f->domain)
                    fprintf(o, " in domain %d from %s to %s</title></rect>\n", f->domain, a, b);
                else
                    fprintf(o, " in the host from %s to %s</title></rect>\n", a, b);
                if (x1 - x0 > 40)
                    fprintf(o, "<text x=\"%.1f\" y=\"%d\" class=\"seglabel\">%s%.0d</text>\n",
                            x0 + 4, y + ROW / 2 + 2, f->domain ? "domain " : "host",
                            f->domain);
                first = -1;
            }
            if (mine && first < 0)
                first = i;
        }
    }
    if (!rows.n)
        fprintf(o, "<text x=\"%d\" y=\"58\" class=\"note\">no statistics stored</text>\n", LEFT);
    time_axis(o, p, h - 22);
    fputs("</svg>\n", o);
    free(rows.v);
}

static void plan_changes(FILE *o, const page *p) {
    if (!p->changes.n) {
        fputs("<p class=\"note\">No plan changes stored (the plan was the program's own, or "
              "QTN_PLAN's).</p>\n", o);
        return;
    }
    fputs("<ol class=\"changes\">\n", o);
    for (int i = 0; i < p->changes.n; i++) {
        const change *c = &AT(p->changes, change, i);
        char s[40];
        when(c->t, 1, s, sizeof s);
        fprintf(o, "<li><span class=\"when\">%s</span> <code>", s);
        qh_esc(o, c->to);
        fputs("</code> (", o);
        qh_esc(o, c->status);
        fputs(")<br>", o);
        qh_esc(o, c->reason);
        fputs("</li>\n", o);
    }
    fputs("</ol>\n", o);
}

typedef struct priced {
    const char *caller, *callee;
    double share;  /* of the program's CPU, as the policy prices it */
    int crossing;  /* 1: a boundary in the plan in force */
} priced;

static int by_share(const void *a, const void *b) {
    const priced *x = a, *y = b;
    return x->share > y->share ? -1 : x->share < y->share;
}

/* What each edge costs as a boundary, as the policy prices it (its call
 * rate now, the measured CPU of a crossing and of the bytes copied, the
 * program's CPU), the edges that cross in the plan in force against the
 * budget. */
static void chart_overhead(FILE *o, const page *p, const qs_evidence *ev) {
    int n = ev ? ev->ne : 0;
    priced *es = calloc((size_t)(n ? n : 1), sizeof *es);
    double cpu = ev && ev->costs.cpu_s_per_s > 0 ? ev->costs.cpu_s_per_s : 1.0, used = 0, top;
    double ov_now = 0; /* CPU s/s of the crossings in force */
    for (int i = 0; es && i < n; i++) {
        const qp_edge *e = &ev->edges[i];
        es[i].caller = e->caller >= 0 ? ev->names[e->caller] : "program";
        es[i].callee = ev->names[e->callee];
        es[i].crossing = (e->caller >= 0 ? ev->comps[e->caller].domain : 0) !=
                         ev->comps[e->callee].domain;
        ov_now += es[i].crossing ? qp_edge_cpu(e, &ev->costs) : 0;
    }
    for (int i = 0; es && i < n; i++) /* shares as the policy reckons them */
        es[i].share = qp_overhead_share(qp_edge_cpu(&ev->edges[i], &ev->costs), ov_now,
                                        &ev->costs);
    used = ev ? qp_overhead_share(ov_now, ov_now, &ev->costs) : 0;
    if (es && n)
        qsort(es, (size_t)n, sizeof *es, by_share);
    int shown = n < EDGES_MAX ? n : EDGES_MAX;
    int h = 30 + ROW * (shown + 1) + 30;
    top = used > p->budget ? used : p->budget;
    for (int i = 0; i < shown; i++)
        top = es[i].share > top ? es[i].share : top;
    top = top > 0 ? top : 1;
    svg_open(o, "chart-overhead", h, "crossing overhead per edge against the budget");
    double span = W - LEFT - 80;
    for (int i = 0; es && i <= shown; i++) {
        int y = 30 + ROW * i;
        char label[140];
        double v = i < shown ? es[i].share : used;
        if (i < shown)
            snprintf(label, sizeof label, "%s \xe2\x86\x92 %s", es[i].caller, es[i].callee);
        else
            snprintf(label, sizeof label, "boundaries in use");
        row_label(o, y + ROW / 2 + 4, label);
        double bw = span * v / top;
        bw = bw < 1 ? 1 : bw;
        const char *cls = i == shown ? "total" : es[i].crossing ? "edge" : "idle";
        fprintf(o, "<rect class=\"datum %s\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\">"
                   "<title>", cls, LEFT, y + 4, bw, ROW - 8);
        qh_esc(o, label);
        if (i < shown)
            fprintf(o, ": %.2f%% of the program's CPU %s", 100 * v,
                    es[i].crossing ? "(it crosses in the plan in force)"
                                   : "if it crossed (both ends share a domain now)");
        else
            fprintf(o, ": %.2f%% of the program's CPU, %.0f%% of the budget", 100 * v,
                    p->budget > 0 ? 100 * v / p->budget : 0.0);
        fprintf(o, "</title></rect>\n<text x=\"%.1f\" y=\"%d\" class=\"tick\">%.2f%%</text>\n",
                LEFT + bw + 4, y + ROW / 2 + 4, 100 * v);
    }
    double x = LEFT + span * p->budget / top;
    fprintf(o, "<line x1=\"%.1f\" y1=\"24\" x2=\"%.1f\" y2=\"%d\" class=\"budget\"/>"
               "<text x=\"%.1f\" y=\"18\" class=\"tick\" text-anchor=\"middle\">budget "
               "%.0f%%</text>\n",
            x, x, h - 26, x, 100 * p->budget);
    if (!n)
        fprintf(o, "<text x=\"%d\" y=\"%d\" class=\"note\">no calls between components "
                   "stored</text>\n", LEFT, h - 10);
    fputs("</svg>\n<p class=\"note\">", o);
    if (ev) {
        fprintf(o, "Priced as the policy prices them: each edge's calls per second now, times "
                   "the CPU of a crossing (%.1f \xc2\xb5s, %s) and of the bytes it copies, "
                   "as a share of the program's CPU with it (the program used %.2f of %.0f "
                   "cores%s; without the crossings in force it counts as one core at least). ",
                1e6 * (ev->costs.crossing_s > 0 ? ev->costs.crossing_s : 0),
                ev->crossing_fit ? "measured" : "as measured before the CPU could be read",
                cpu, ev->costs.ncpu, ev->costs.cpu_s_per_s > 0 ? "" : ", not measured: one");
        fprintf(o, "The boundaries in use cost %.2f%% of it; the budget is %.0f%%%s: %.0f%% of "
                   "it in use. Orange: edges that cross; grey: what an edge inside a domain "
                   "would cost if it crossed.",
                100 * used, 100 * p->budget,
                p->budget_known ? " (the latest decision's)"
                                : " (quarantine's default: the store does not keep a run's "
                                  "--budget)",
                p->budget > 0 ? 100 * used / p->budget : 0.0);
    } else {
        fputs("No statistics of a build are stored: nothing to price.", o);
    }
    if (p->overhead_known)
        fprintf(o, " At its latest decision (plan change %d) the policy put the overhead of the "
                   "plan then in force at %.2f%% of the CPU.",
                p->changes.n, 100 * p->overhead_now);
    fputs("</p>\n", o);
    free(es);
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Domain recovery times: a histogram on a log scale, 10 us to 10 s. */
static void chart_recovery(FILE *o, const page *p) {
    enum { PER_DECADE = 4, BINS = 6 * PER_DECADE };
    unsigned bins[BINS] = {0}, most = 1;
    for (int i = 0; i < p->nrec; i++) {
        double v = p->recovery[i] < 1e-5 ? 1e-5 : p->recovery[i];
        int b = (int)floor(log10(v / 1e-5) * PER_DECADE);
        b = b >= BINS ? BINS - 1 : b;
        if (++bins[b] > most)
            most = bins[b];
    }
    int h = 200;
    svg_open(o, "chart-recovery", h, "domain recovery times");
    double bw = (double)(W - LEFT - 20) / BINS;
    int base = h - 30;
    fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n", LEFT, base,
            W - 20, base);
    fprintf(o, "<text x=\"%d\" y=\"%d\" class=\"label\" text-anchor=\"end\">recoveries</text>"
               "<text x=\"%d\" y=\"24\" class=\"tick\" text-anchor=\"end\">%u</text>\n",
            LEFT - 8, base - 60, LEFT - 8, most);
    static const char *const decade[] = {"10 \xc2\xb5s", "100 \xc2\xb5s", "1 ms", "10 ms",
                                         "100 ms", "1 s", "10 s"};
    for (int d = 0; d <= 6; d++)
        fprintf(o, "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%s</text>\n",
                LEFT + d * PER_DECADE * bw, base + 14, decade[d]);
    for (int b = 0; b < BINS; b++) {
        if (!bins[b])
            continue;
        double bh = (double)(base - 30) * bins[b] / most;
        double lo = 1e-5 * pow(10, (double)b / PER_DECADE), hi = lo * pow(10, 1.0 / PER_DECADE);
        fprintf(o, "<rect class=\"datum recovery\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                   "height=\"%.1f\"><title>%u recoveries from %.3g to %.3g ms</title></rect>\n",
                LEFT + b * bw + 1, base - bh, bw - 2, bh, bins[b], lo * 1e3, hi * 1e3);
    }
    if (!p->nrec)
        fprintf(o, "<text x=\"%d\" y=\"90\" class=\"note\">no domain faults stored</text>\n",
                LEFT);
    fputs("</svg>\n", o);
    if (p->nrec) {
        double *v = malloc((size_t)p->nrec * sizeof *v);
        if (v) {
            memcpy(v, p->recovery, (size_t)p->nrec * sizeof *v);
            qsort(v, (size_t)p->nrec, sizeof *v, by_value);
            fprintf(o, "<p class=\"note\">%d recoveries: median %.3f ms, 99th percentile %.3f "
                       "ms, longest %.3f ms.</p>\n",
                    p->nrec, 1e3 * v[p->nrec / 2], 1e3 * v[(int)(0.99 * (p->nrec - 1))],
                    1e3 * v[p->nrec - 1]);
            free(v);
        }
    }
}

/* Host restarts: from a crash to the program started again being ready. */
static void chart_restarts(FILE *o, const page *p) {
    int h = 180, base = h - 30;
    double most = 0.001;
    for (int i = 0; i < p->nrestart; i++)
        if (p->restart_s[i] > most)
            most = p->restart_s[i];
    svg_open(o, "chart-restarts", h, "host restart times");
    fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n", LEFT, base,
            W - 20, base);
    fprintf(o, "<text x=\"%d\" y=\"24\" class=\"tick\" text-anchor=\"end\">%.3g s</text>"
               "<text x=\"%d\" y=\"%d\" class=\"label\" text-anchor=\"end\">restart time</text>\n",
            LEFT - 8, most, LEFT - 8, base - 50);
    double bw = (double)(W - LEFT - 20) / (p->nrestart > 20 ? p->nrestart : 20);
    for (int i = 0; i < p->nrestart; i++) {
        double bh = (double)(base - 30) * p->restart_s[i] / most;
        char s[40];
        when(p->restart_t[i], 1, s, sizeof s);
        fprintf(o, "<rect class=\"datum restart\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                   "height=\"%.1f\"><title>started again at %s: %.3f s after the crash"
                   "</title></rect>\n",
                LEFT + i * bw + 1, base - (bh < 1 ? 1 : bh), bw - 2, bh < 1 ? 1 : bh, s,
                p->restart_s[i]);
        fprintf(o, "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%d</text>\n",
                LEFT + (i + 0.5) * bw, base + 14, i + 1);
    }
    if (!p->nrestart)
        fprintf(o, "<text x=\"%d\" y=\"90\" class=\"note\">no host restarts stored</text>\n",
                LEFT);
    fputs("</svg>\n", o);
}

static int domain_of(const page *p, const char *name) {
    if (!strcmp(name, "program"))
        return 0;
    for (int i = 0; i < p->comps.n; i++)
        if (!strcmp(p->comps.v[i], name))
            return p->domain_now[i] < 0 ? 0 : p->domain_now[i];
    return 0;
}

/* The call graph: components on a circle, coloured by the domain their
 * latest snapshot put them in; an edge between domains is a boundary. */
static void chart_graph(FILE *o, const page *p) {
    names nodes = {0};
    name_at(&nodes, "program");
    for (int i = 0; i < p->comps.n && nodes.n < ROWS_MAX; i++)
        if (strcmp(p->comps.v[i], "(unknown)"))
            name_at(&nodes, p->comps.v[i]);
    int h = 520;
    double cx = W / 2.0, cy = h / 2.0 + 10, rad = h / 2.0 - 70;
    svg_open(o, "chart-graph", h, "the component call graph with its boundaries");
    fputs("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
          "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0 0 "
          "L10 5 L0 10 z\" fill=\"#555\"/></marker></defs>\n",
          o);
    double *x = malloc((size_t)(nodes.n ? nodes.n : 1) * sizeof *x);
    double *y = malloc((size_t)(nodes.n ? nodes.n : 1) * sizeof *y);
    for (int i = 0; x && y && i < nodes.n; i++) {
        double a = -M_PI / 2 + 2 * M_PI * i / nodes.n;
        x[i] = cx + rad * cos(a);
        y[i] = cy + rad * sin(a);
    }
    long long most = 1;
    for (int i = 0; i < p->edges.n; i++)
        if (AT(p->edges, edge, i).calls > most)
            most = AT(p->edges, edge, i).calls;
    for (int i = 0; x && y && i < p->edges.n; i++) {
        const edge *e = &AT(p->edges, edge, i);
        int a = -1, b = -1;
        for (int k = 0; k < nodes.n; k++) {
            if (!strcmp(nodes.v[k], e->caller))
                a = k;
            if (!strcmp(nodes.v[k], e->callee))
                b = k;
        }
        if (a < 0 || b < 0 || a == b)
            continue;
        int boundary = domain_of(p, e->caller) != domain_of(p, e->callee);
        double dx = x[b] - x[a], dy = y[b] - y[a], d = sqrt(dx * dx + dy * dy);
        double ux = d > 0 ? dx / d : 0, uy = d > 0 ? dy / d : 0;
        double wdt = 1 + 4 * log10(1 + (double)e->calls) / log10(1 + (double)most);
        double x0 = x[a] + ux * 26, y0 = y[a] + uy * 26, x1 = x[b] - ux * 28, y1 = y[b] - uy * 28;
        fprintf(o, "<line class=\"datum %s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                   "stroke-width=\"%.1f\" marker-end=\"url(#arrow)\"><title>",
                boundary ? "boundary" : "call", x0, y0, x1, y1, wdt);
        qh_esc(o, e->caller);
        fputs(" \xe2\x86\x92 ", o);
        qh_esc(o, e->callee);
        fprintf(o, ": %lld calls, %lld crossings%s</title></line>\n", e->calls, e->crossings,
                boundary ? "; a boundary in the latest plan" : "");
        if (boundary) { /* the boundary itself: a bar across the edge at its middle */
            double mx = (x0 + x1) / 2, my = (y0 + y1) / 2;
            fprintf(o, "<line class=\"wall\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                    mx - uy * 10, my + ux * 10, mx + uy * 10, my - ux * 10);
        }
    }
    for (int i = 0; x && y && i < nodes.n; i++) {
        int d = domain_of(p, nodes.v[i]);
        fprintf(o, "<circle class=\"datum node\" cx=\"%.1f\" cy=\"%.1f\" r=\"24\" fill=\"%s\">"
                   "<title>",
                x[i], y[i], colour(d));
        qh_esc(o, nodes.v[i]);
        if (d)
            fprintf(o, ": domain %d</title></circle>\n", d);
        else
            fputs(!strcmp(nodes.v[i], "program") ? ": the program's own code (the host)</title>"
                                                   "</circle>\n"
                                                 : ": the host</title></circle>\n",
                  o);
        fprintf(o, "<text x=\"%.1f\" y=\"%.1f\" class=\"nodein\" text-anchor=\"middle\">", x[i],
                y[i] + 4);
        if (d)
            fprintf(o, "d%d", d);
        else
            fputs("host", o);
        fprintf(o, "</text><text x=\"%.1f\" y=\"%.1f\" class=\"label\" text-anchor=\"middle\">",
                x[i], y[i] + (y[i] >= cy ? 42 : -32));
        qh_esc(o, nodes.v[i]);
        fputs("</text>\n", o);
    }
    fputs("</svg>\n", o);
    free(x);
    free(y);
    free(nodes.v);
}

/* The crash buckets, each row opening its example backtrace. */
static int buckets(rd *r, FILE *o) {
    qb_set set;
    if (qb_read(r->s, r->since, &set, r->err, r->len))
        return -1;
    char b[16];
    snprintf(b, sizeof b, "%.12s", set.current >= 0 ? set.builds[set.current].id : "(unknown)");
    fprintf(o, "<p class=\"note\">%d bucket(s) of %lld report(s); signature rules version %d; "
               "this build %s.</p>\n",
            set.n, (long long)set.reports, QB_RULES_VERSION, b);
    fputs("<table id=\"buckets\"><thead><tr><th>signature</th><th>component</th><th>count</th>"
          "<th>installations</th><th>first seen</th><th>last seen</th><th>builds</th>"
          "<th></th></tr></thead><tbody>\n",
          o);
    int rc = 0;
    for (int i = 0; i < set.n && !rc; i++) {
        const qb_bucket *k = &set.buckets[i];
        char first[40], last[40];
        when(k->first_ns, 1, first, sizeof first);
        when(k->last_ns, 1, last, sizeof last);
        fputs("<tr class=\"datum bucket\"><td><details><summary><code>", o);
        qh_esc(o, k->signature);
        fputs("</code></summary>\n", o);
        sqlite3_stmt *st = q(r, "SELECT reason FROM reports WHERE id = ?", "l", k->example);
        if (!st) {
            rc = -1;
            break;
        }
        int src = sqlite3_step(st);
        fprintf(o, "<p>report %lld: ", (long long)k->example);
        qh_esc(o, src == SQLITE_ROW ? qs_col(st, 0) : "");
        fputs("</p><pre>", o);
        if (done(r, st, src == SQLITE_ROW ? SQLITE_DONE : src)) {
            rc = -1;
            break;
        }
        st = q(r, "SELECT addr, symbol, component FROM report_frames WHERE report_id = ?"
                  " ORDER BY n",
               "l", k->example);
        if (!st) {
            rc = -1;
            break;
        }
        int n = 0;
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            fprintf(o, "#%-2d ", n++);
            qh_esc(o, qs_col(st, 0));
            fputs("  ", o);
            qh_esc(o, qs_col(st, 1));
            if (*qs_col(st, 2)) {
                fputs("  [", o);
                qh_esc(o, qs_col(st, 2));
                fputc(']', o);
            }
            fputc('\n', o);
        }
        if (!n)
            fputs("(no frames stored)\n", o);
        fputs("</pre></details></td><td>", o);
        if (done(r, st, src)) {
            rc = -1;
            break;
        }
        qh_esc(o, *k->component ? k->component : "(unknown)");
        fprintf(o, "</td><td class=\"num\">%lld</td><td class=\"num\">%lld</td><td>%s</td>"
                   "<td>%s</td><td>",
                (long long)k->count, (long long)k->installations, first, last);
        for (int j = 0, m = 0; j < set.nbuilds; j++)
            if (k->per_build[j]) {
                fprintf(o, "%s<code>", m++ ? ", " : "");
                char id[16];
                snprintf(id, sizeof id, "%.12s", set.builds[j].id);
                qh_esc(o, id);
                fprintf(o, "</code>&nbsp;(%lld)", (long long)k->per_build[j]);
            }
        fprintf(o, "</td><td>%s%s</td></tr>\n", k->is_new ? "<span class=\"new\">new</span> " : "",
                k->regressed ? "<span class=\"regressed\">regressed</span>" : "");
    }
    fputs("</tbody></table>\n", o);
    if (!set.n)
        fputs("<p class=\"note\">No reports stored.</p>\n", o);
    qb_free(&set);
    return rc;
}

static const char style[] =
    "body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;margin:0 auto;"
    "max-width:1040px;padding:1em 1.5em;color:#222;background:#fff;line-height:1.4}"
    "h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;"
    "border-bottom:1px solid #ddd;padding-bottom:.2em}"
    "svg{display:block;margin:.5em 0;font-size:12px}"
    ".label{fill:#222;font-size:12px}.tick{fill:#555;font-size:11px}.note{color:#555;"
    "font-size:.9em}svg .note{fill:#555;font-size:12px}"
    ".axis{stroke:#888;stroke-width:1}.grid{stroke:#eee;stroke-width:1}"
    ".fault{fill:#1f77b4}.crash{fill:#d62728}.change{stroke:#d62728;stroke-dasharray:3 3}"
    ".seglabel{fill:#fff;font-size:11px}.edge{fill:#ff7f0e}.idle{fill:#ccc}.total{fill:#8c564b}"
    ".budget{stroke:#d62728;stroke-width:2;stroke-dasharray:6 3}.recovery{fill:#2ca02c}"
    ".restart{fill:#d62728}.call{stroke:#999}.boundary{stroke:#d62728;stroke-dasharray:6 3}"
    ".wall{stroke:#d62728;stroke-width:4}.node{stroke:#333;stroke-width:1}"
    ".nodein{fill:#fff;font-size:11px;font-weight:bold}"
    "table{border-collapse:collapse;width:100%;font-size:.9em}th,td{text-align:left;"
    "vertical-align:top;padding:.3em .5em;border-bottom:1px solid #eee}td.num{text-align:right}"
    "summary{cursor:pointer}pre{background:#f6f6f6;padding:.5em;overflow-x:auto;"
    "font-size:.85em}.new{color:#fff;background:#1f77b4;padding:0 .3em;border-radius:3px}"
    ".regressed{color:#fff;background:#d62728;padding:0 .3em;border-radius:3px}"
    ".when{color:#555}ol.changes li{margin-bottom:.4em}"
    ".legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 .8em;"
    "vertical-align:middle}";

static void legend(FILE *o, const page *p) {
    int most = 0;
    for (int i = 0; i < p->snaps.n; i++)
        if (AT(p->snaps, snap, i).domain > most)
            most = AT(p->snaps, snap, i).domain;
    fprintf(o, "<p class=\"legend note\"><span style=\"background:%s\"></span>host", HOST_COLOUR);
    for (int d = 1; d <= most && d <= 32; d++)
        fprintf(o, "<span style=\"background:%s\"></span>domain %d", colour(d), d);
    fputs("</p>\n", o);
}

int qh_write(qs_store *s, FILE *o, int64_t since, char *err, size_t len) {
    rd r = {s, err, len, since};
    page p;
    memset(&p, 0, sizeof p);
    if (read_page(&r, &p)) {
        free_page(&p);
        return -1;
    }
    long long host = 0, faults = 0;
    for (int i = 0; i < p.events.n; i++) {
        host += AT(p.events, event, i).host;
        faults += !AT(p.events, event, i).host;
    }
    char from[40], to[40], now[40];
    when(p.t0, 1, from, sizeof from);
    when(p.t1, 1, to, sizeof to);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    when((int64_t)ts.tv_sec * 1000000000LL, 1, now, sizeof now);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>quarantine report</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>",
          o);
    fputs(style, o);
    fputs("</style>\n</head>\n<body>\n<h1>quarantine report</h1>\n<p class=\"note\">store <code>",
          o);
    qh_esc(o, qs_path(s));
    fprintf(o, "</code>, from %s to %s; made %s.</p>\n", from, to, now);
    fprintf(o, "<p>%d component(s); %lld fault(s) of isolated domains, %lld host crash(es), %d "
               "plan change(s).</p>\n",
            p.comps.n, faults, host, p.changes.n);
    if (p.installation[0]) {
        fputs("<p class=\"note\">The plan timeline is installation <code>", o);
        qh_esc(o, p.installation);
        fputs("</code>'s (the one heard from last).</p>\n", o);
    }
    fputs("<h2 id=\"faults\">Faults and host crashes per component</h2>\n", o);
    chart_faults(o, &p);
    fputs("<h2 id=\"plan\">The plan: which component ran where, and why it changed</h2>\n", o);
    legend(o, &p);
    chart_plan(o, &p);
    plan_changes(o, &p);
    fputs("<h2 id=\"overhead\">What the boundaries cost: crossing overhead per edge</h2>\n", o);
    qs_evidence ev;
    qp_settings set;
    qp_settings_default(&set);
    char everr[512];
    int have_ev = p.installation[0] &&
                  qs_evidence_load(s, p.installation, NULL, (int64_t)ts.tv_sec * 1000000000LL,
                                   NULL, 0.1, &set, &ev, everr, sizeof everr) == 0;
    chart_overhead(o, &p, have_ev ? &ev : NULL);
    if (have_ev)
        qs_evidence_free(&ev);
    fputs("<h2 id=\"recovery\">Recovery times of isolated domains</h2>\n", o);
    chart_recovery(o, &p);
    fputs("<h2 id=\"restarts\">Host restart times</h2>\n", o);
    chart_restarts(o, &p);
    fputs("<h2 id=\"graph\">The call graph and its boundaries</h2>\n", o);
    legend(o, &p);
    chart_graph(o, &p);
    fputs("<p class=\"note\">Arrows are calls (thicker: more); a red dashed arrow with a bar "
          "across it crosses a boundary in the latest plan.</p>\n", o);
    fputs("<h2 id=\"buckets-h\">Crash buckets</h2>\n", o);
    int rc = buckets(&r, o);
    fputs("</body>\n</html>\n", o);
    free_page(&p);
    return rc;
}
