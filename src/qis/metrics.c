/* metrics.c - a supervisor run's counters in the Prometheus text exposition
 * format (see metrics.h). Names and labels follow Prometheus's conventions:
 * a quarantine_ prefix, base units (seconds), _total on counters, one HELP
 * and one TYPE line per family. */
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* recovery and restart times: bounds of the histograms' buckets (s) */
static const double recovery_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                     0.01,   0.025,   0.05,   0.1,   0.25,   1};
static const double restart_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NLE (sizeof recovery_le / sizeof recovery_le[0])
_Static_assert(sizeof restart_le / sizeof restart_le[0] == NLE, "one bucket count");

typedef struct hist {
    unsigned long long le[NLE], count;
    double sum;
} hist;

static void hist_add(hist *h, const double *bounds, double v) {
    for (size_t i = 0; i < NLE; i++)
        if (v <= bounds[i])
            h->le[i]++;
    h->count++;
    h->sum += v;
}

typedef struct mrow {
    char name[64];
    long long calls, crossings, parked_calls, faults, failed;
    double blamed;
    int domain, parked; /* domain -1: not known */
    hist rec;
} mrow;

typedef struct mtab {
    mrow *rows;
    int n, cap, oom;
} mtab;

static mrow *row(mtab *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->rows[i].name, name))
            return &t->rows[i];
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        mrow *r = realloc(t->rows, (size_t)cap * sizeof *r);
        if (!r) {
            t->oom = 1;
            return NULL;
        }
        t->rows = r;
        t->cap = cap;
    }
    mrow *r = &t->rows[t->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->domain = -1;
    return r;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const mrow *)a)->name, ((const mrow *)b)->name);
}

void qm_label_value(FILE *o, const char *v) {
    fputc('"', o);
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(o, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", o);
        else
            fputc(*v, o);
    }
    fputc('"', o);
}

typedef struct rd {
    qs_store *s;
    const qm_sup *sup;
    const char *live_proc; /* the running process, whose live counters stand in */
    int live_pid;
    char *err;
    size_t len;
} rd;

/* a read of r's store, its error into r's */
#define q(r, ...) qs_read((r)->s, (r)->err, (r)->len, __VA_ARGS__)

static int done(rd *r, sqlite3_stmt *st, int rc) {
    return qs_done(r->s, st, rc, r->err, r->len);
}

/* The running program's counters, from its statistics record. */
static void live(mtab *t, json_t *rec) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(rec, "components"), i, c) {
        mrow *r = row(t, json_string_value(json_object_get(c, "name")) ?: "");
        if (!r)
            return;
        r->calls += json_integer_value(json_object_get(c, "calls"));
        r->crossings += json_integer_value(json_object_get(c, "crossings"));
        r->parked_calls += json_integer_value(json_object_get(c, "parked_calls"));
        r->domain = (int)json_integer_value(json_object_get(c, "domain"));
        r->parked = (int)json_integer_value(json_object_get(c, "parked"));
    }
}

/* What the store holds for the run; the running process's own snapshots
 * are left out when its live counters stand in for them. */
static int stored(rd *r, mtab *t, long long *host, long long *plans, hist *restart) {
    const char *inst = r->sup->installation, *run = r->sup->run;
    const char *proc = r->live_proc ? r->live_proc : "";
    sqlite3_stmt *st = q(r,
                         "SELECT component, SUM(calls), SUM(crossings), SUM(parked_calls) FROM stats s"
                         " WHERE installation = ?1 AND run = ?2 AND NOT (pid = ?3 AND proc = ?4) AND"
                         " time_ns = (SELECT MAX(time_ns) FROM stats l WHERE"
                         " l.installation = s.installation AND l.run = s.run AND l.proc = s.proc AND"
                         " l.pid = s.pid AND l.component = s.component) GROUP BY component",
                         "ssis", inst, run, r->live_pid, proc);
    int rc;
    if (!st)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mrow *m = row(t, qs_col(st, 0));
        if (m) {
            m->calls += sqlite3_column_int64(st, 1);
            m->crossings += sqlite3_column_int64(st, 2);
            m->parked_calls += sqlite3_column_int64(st, 3);
        }
    }
    if (done(r, st, rc))
        return -1;
    if (!r->sup->live) { /* where the last snapshot put each component */
        st = q(r,
               "SELECT component, domain, parked FROM stats s WHERE installation = ?1 AND"
               " run = ?2 AND time_ns = (SELECT MAX(time_ns) FROM stats l WHERE"
               " l.installation = s.installation AND l.run = s.run AND"
               " l.component = s.component)",
               "ss", inst, run);
        if (!st)
            return -1;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            mrow *m = row(t, qs_col(st, 0));
            if (m) {
                m->domain = sqlite3_column_int(st, 1);
                m->parked = sqlite3_column_int(st, 2);
            }
        }
        if (done(r, st, rc))
            return -1;
    }
    st = q(r,
           "SELECT component, recovery_ns, calls_failed FROM reports WHERE installation = ?1 AND"
           " run = ?2 AND kind <> 'host-crash'",
           "ss", inst, run);
    if (!st)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mrow *m = row(t, *qs_col(st, 0) ? qs_col(st, 0) : "(unknown)");
        if (m) {
            m->faults++;
            m->failed += sqlite3_column_int64(st, 2);
            if (sqlite3_column_int64(st, 1) > 0)
                hist_add(&m->rec, recovery_le, sqlite3_column_int64(st, 1) / 1e9);
        }
    }
    if (done(r, st, rc))
        return -1;
    st = q(r,
           "SELECT b.component, SUM(b.share) FROM report_blame b JOIN reports p"
           " ON p.id = b.report_id WHERE p.installation = ?1 AND p.run = ?2 AND"
           " p.kind = 'host-crash' GROUP BY b.component",
           "ss", inst, run);
    if (!st)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mrow *m = row(t, qs_col(st, 0));
        if (m)
            m->blamed = sqlite3_column_double(st, 1);
    }
    if (done(r, st, rc))
        return -1;
    st = q(r,
           "SELECT (SELECT COUNT(*) FROM reports WHERE installation = ?1 AND run = ?2 AND"
           " kind = 'host-crash'), (SELECT COUNT(*) FROM plan_changes WHERE"
           " installation = ?1 AND run = ?2)",
           "ss", inst, run);
    if (!st)
        return -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *host = sqlite3_column_int64(st, 0);
        *plans = sqlite3_column_int64(st, 1);
    }
    if (done(r, st, rc == SQLITE_ROW ? SQLITE_DONE : rc))
        return -1;
    st = q(r, "SELECT down_ns FROM starts WHERE installation = ?1 AND run = ?2 AND down_ns > 0",
           "ss", inst, run);
    if (!st)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        hist_add(restart, restart_le, sqlite3_column_int64(st, 0) / 1e9);
    return done(r, st, rc);
}

static void family(FILE *o, const char *name, const char *type, const char *help) {
    fprintf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void per_component(FILE *o, const mtab *t, const char *name, const char *type,
                          const char *help, int which) {
    family(o, name, type, help);
    for (int i = 0; i < t->n; i++) {
        const mrow *r = &t->rows[i];
        if (which >= 6 && r->domain < 0)
            continue; /* where it runs is not known */
        fprintf(o, "%s{component=", name);
        qm_label_value(o, r->name);
        switch (which) {
        case 0: fprintf(o, "} %lld\n", r->calls); break;
        case 1: fprintf(o, "} %lld\n", r->crossings); break;
        case 2: fprintf(o, "} %lld\n", r->faults); break;
        case 3: fprintf(o, "} %lld\n", r->failed); break;
        case 4: fprintf(o, "} %.6g\n", r->blamed); break;
        case 5: fprintf(o, "} %lld\n", r->parked_calls); break;
        case 6: fprintf(o, "} %d\n", r->domain); break;
        default: fprintf(o, "} %d\n", r->parked != 0); break;
        }
    }
}

/* One histogram's series; `label` is the component, or NULL for none. */
static void hist_series(FILE *o, const char *name, const char *label, const hist *h,
                        const double *bounds) {
    for (size_t i = 0; i <= NLE; i++) {
        fprintf(o, "%s_bucket{", name);
        if (label) {
            fputs("component=", o);
            qm_label_value(o, label);
            fputc(',', o);
        }
        if (i < NLE)
            fprintf(o, "le=\"%g\"} %llu\n", bounds[i], h->le[i]);
        else
            fprintf(o, "le=\"+Inf\"} %llu\n", h->count);
    }
    const char *open = label ? "{component=" : "";
    fprintf(o, "%s_sum%s", name, open);
    if (label) {
        qm_label_value(o, label);
        fputc('}', o);
    }
    fprintf(o, " %.9g\n%s_count%s", h->sum, name, open);
    if (label) {
        qm_label_value(o, label);
        fputc('}', o);
    }
    fprintf(o, " %llu\n", h->count);
}

int qm_render(qs_store *s, const qm_sup *sup, char **out, size_t *len, char *err,
              size_t errlen) {
    rd r = {.s = s, .sup = sup, .err = err, .len = errlen};
    mtab t = {0};
    json_t *rec = NULL;
    if (sup->live) {
        rec = json_loads(sup->live, 0, NULL);
        if (rec) {
            r.live_pid = (int)json_integer_value(json_object_get(rec, "pid"));
            r.live_proc = json_string_value(json_object_get(rec, "proc"));
            live(&t, rec);
        }
    }
    long long host = 0, plans = 0;
    hist restart = {0};
    int rc = s ? stored(&r, &t, &host, &plans, &restart) : 0;
    json_decref(rec);
    if (!rc && t.oom) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc) {
        free(t.rows);
        return -1;
    }
    if (t.n)
        qsort(t.rows, (size_t)t.n, sizeof *t.rows, by_name);
    FILE *o = open_memstream(out, len);
    if (!o) {
        free(t.rows);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    per_component(o, &t, "quarantine_component_calls_total", "counter",
                  "Calls into the component, direct and crossing.", 0);
    per_component(o, &t, "quarantine_component_crossings_total", "counter",
                  "Calls into the component that crossed a boundary.", 1);
    per_component(o, &t, "quarantine_component_faults_total", "counter",
                  "Faults of the component's domain while it was isolated.", 2);
    per_component(o, &t, "quarantine_component_calls_failed_total", "counter",
                  "Calls that returned the fault value with those faults.", 3);
    per_component(o, &t, "quarantine_component_host_crashes_total", "counter",
                  "Host crashes blamed on the component (shares of crashes).", 4);
    per_component(o, &t, "quarantine_component_parked_calls_total", "counter",
                  "Calls failed at once because the component's domain was parked.", 5);
    per_component(o, &t, "quarantine_component_domain", "gauge",
                  "Where the plan puts the component: 0 the host, N domain N.", 6);
    per_component(o, &t, "quarantine_component_parked", "gauge",
                  "1 when the component's domain is parked.", 7);
    family(o, "quarantine_domain_recovery_seconds", "histogram",
           "Time from a domain's fault to its replacement serving.");
    for (int i = 0; i < t.n; i++)
        if (t.rows[i].rec.count)
            hist_series(o, "quarantine_domain_recovery_seconds", t.rows[i].name, &t.rows[i].rec,
                        recovery_le);
    family(o, "quarantine_host_crashes_total", "counter", "Crashes of the program itself.");
    fprintf(o, "quarantine_host_crashes_total %lld\n", host);
    family(o, "quarantine_host_restart_seconds", "histogram",
           "Time from a host crash to the program started again being ready.");
    hist_series(o, "quarantine_host_restart_seconds", NULL, &restart, restart_le);
    family(o, "quarantine_program_starts_total", "counter",
           "Program processes started by the supervisor (restarts are the starts after the "
           "first).");
    fprintf(o, "quarantine_program_starts_total %lld\n", sup->starts);
    family(o, "quarantine_program_up", "gauge", "1 when the program runs.");
    fprintf(o, "quarantine_program_up %d\n", sup->up != 0);
    family(o, "quarantine_plan_changes_total", "counter", "Plan changes the policy decided.");
    fprintf(o, "quarantine_plan_changes_total %lld\n", plans);
    free(t.rows);
    if (fclose(o)) {
        snprintf(err, errlen, "out of memory");
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}
