/* bucket.c - crash buckets (see bucket.h and docs/buckets.md). */
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bucket.h"

/* libc's abort, raise and assertion machinery, signal trampolines, and the
 * start of a thread or of the program: never where a bug is */
static const char *const libc_fns[] = {
    "raise", "abort", "gsignal", "pthread_kill", "malloc_printerr", "start_thread", "_start",
}; /* and every name that begins with two underscores: see frame_name() */

/* the runtime's sources (the .c files of src/runtime; tests/qis/test_bucket.c checks
 * the list against the folder) */
static const char *const runtime_files[] = {
    "bulk.c",    "call.c",    "callbacks.c", "channel.c", "clock.c", "control.c", "crash.c",
    "domain.c",  "guard.c",   "inner.c",   "marshal.c", "monitor.c", "plan.c",     "report.c",
    "reporter.c", "restart.c", "rt.c",     "spares.c", "statsfile.c", "thread.c",
    "wait.c",    "zygote.c",
};

/* the runtime's functions that run a component's code (a call served in a
 * domain, a call or callback across): known by name when a frame has no
 * source line to know it by (a build without debug information) */
static const char *const runtime_fns[] = {
    "serve", "dispatch", "call_edge", "closure_handler", "converse", "cross", "domain_request",
    "request_on", "late_request", "late_main", "qtn__serve_request",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

int qb_runtime_file(const char *file) {
    for (size_t i = 0; i < NELEM(runtime_files); i++)
        if (!strcmp(file, runtime_files[i]))
            return 1;
    return 0;
}

static int has_suffix(const char *s, size_t n, const char *suf) {
    size_t k = strlen(suf);
    return n >= k && !memcmp(s + n - k, suf, k);
}

/* A frame's function, without its offset, symbol version and the suffixes
 * the compiler gives copies of a function (.cold, .isra.0, .part.1,
 * .constprop.0, .lto_priv.0): the same function in any build. An unnamed
 * frame ("libz.so.1+0x3f10") is kept whole. Returns 0 when the frame is
 * dropped by the rules (unknown, libc's machinery, the runtime's, a stub). */
static int frame_name(const char *sym, char *out, size_t len) {
    const char *paren = strstr(sym, " (");
    if (!*sym || !strcmp(sym, "?"))
        return 0;
    if (!paren) { /* module+offset: nothing better is known, but libc's (a signal
                   * trampoline) is never the bug */
        if (!strncmp(sym, "libc.so", 7))
            return 0;
        snprintf(out, len, "%s", sym);
        return 1;
    }
    size_t n = strcspn(sym, "+ ");
    char fn[200];
    snprintf(fn, sizeof fn, "%.*s", (int)(n < sizeof fn ? n : sizeof fn - 1), sym);
    char *at = strstr(fn, "@@");
    if (at)
        *at = 0;
    for (char *dot = strchr(fn + (fn[0] == '.'), '.'); dot; dot = strchr(dot + 1, '.'))
        if (!strncmp(dot, ".cold", 5) || !strncmp(dot, ".isra.", 6) ||
            !strncmp(dot, ".part.", 6) || !strncmp(dot, ".constprop.", 11) ||
            !strncmp(dot, ".lto_priv.", 10)) {
            *dot = 0;
            break;
        }
    n = strlen(fn);
    if (!strncmp(fn, "__", 2))
        return 0; /* reserved to the implementation: libc (whose memmove is
                   * __memmove_avx2 on one machine and _avx512 on another), the
                   * compiler, a sanitizer; and the stubs' __wrap_ */
    for (size_t i = 0; i < NELEM(libc_fns); i++)
        if (!strcmp(fn, libc_fns[i]))
            return 0;
    if (!strncmp(fn, "qtn_", 4) || has_suffix(fn, n, "_thunk"))
        return 0; /* the runtime's API, the generated and hand-written stubs */
    char file[128];
    const char *f = paren + 2;
    size_t fl = strcspn(f, ":)");
    snprintf(file, sizeof file, "%.*s", (int)(fl < sizeof file ? fl : sizeof file - 1), f);
    if (qb_runtime_file(file) || has_suffix(file, strlen(file), "_qtn_stubs.c"))
        return 0;
    if (!strncmp(fn, "ffi_", 4))
        return 0; /* libffi: the runtime's callbacks */
    if (!f[fl] || f[fl] == ')') /* no line: the module's name, not a source file's */
        for (size_t i = 0; i < NELEM(runtime_fns); i++)
            if (!strcmp(fn, runtime_fns[i]))
                return 0;
    snprintf(out, len, "%s", fn);
    return 1;
}

void qb_signature(const char *kind, int sig, const char *component, const char *entry,
                  const qb_frame *frames, int n, char *out, size_t len) {
    char names[QB_TOP][200];
    int k = 0, owned = 0;
    for (int i = 0; i < n; i++) /* frames in component code, if any: only those count */
        if (frames[i].component && *frames[i].component && frame_name(frames[i].symbol,
                                                                       names[0], sizeof names[0]))
            owned = 1;
    for (int i = 0; i < n && k < QB_TOP; i++) {
        if (owned && !(frames[i].component && *frames[i].component))
            continue;
        if (!frame_name(frames[i].symbol, names[k], sizeof names[k]))
            continue;
        if (k && !strcmp(names[k], names[k - 1]))
            continue; /* recursion: one frame */
        k++;
    }
    const char *sname = sig > 0 ? sigabbrev_np(sig) : NULL;
    int at = snprintf(out, len, "%s%s%s:", kind && *kind ? kind : "unknown", sname ? " SIG" : "",
                      sname ? sname : "");
    for (int i = 0; i < k && at >= 0 && (size_t)at < len; i++)
        at += snprintf(out + at, len - (size_t)at, "%s%s", i ? " | " : " ", names[i]);
    if (!k && at >= 0 && (size_t)at < len)
        snprintf(out + at, len - (size_t)at, " [%s%s%s]",
                 component && *component ? component : "unknown", entry && *entry ? "." : "",
                 entry ? entry : "");
}

/* ---- grouping ------------------------------------------------------------- */

static int by_sig(const void *a, const void *b) {
    const qb_report *x = *(const qb_report *const *)a, *y = *(const qb_report *const *)b;
    int c = strcmp(x->signature, y->signature);
    if (!c)
        c = strcmp(x->installation, y->installation);
    if (!c)
        c = x->time_ns < y->time_ns ? -1 : x->time_ns > y->time_ns;
    if (!c)
        c = x->id < y->id ? -1 : x->id > y->id;
    return c;
}

static int by_count(const void *a, const void *b) {
    const qb_bucket *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if (x->last_ns != y->last_ns)
        return x->last_ns > y->last_ns ? -1 : 1;
    return strcmp(x->signature, y->signature);
}

/* New: seen in this build and in none other before it. Regressed: seen in
 * this build, and an earlier build was quiet after one where it was seen. */
static void judge(qb_bucket *b, const qb_set *set) {
    int c = set->current;
    if (c < 0 || !b->per_build[c])
        return;
    int seen = 0, quiet_after = 0;
    for (int i = 0; i < set->nbuilds; i++) {
        if (i == c || set->builds[i].first_ns > set->builds[c].first_ns)
            continue; /* only builds before this one */
        if (b->per_build[i])
            seen = 1;
        else if (seen)
            quiet_after = 1;
    }
    b->is_new = !seen;
    b->regressed = quiet_after;
}

int qb_group(const qb_report *r, int n, qb_set *out) {
    out->buckets = NULL;
    out->n = 0;
    out->reports = n;
    if (n <= 0)
        return 0;
    const qb_report **ix = malloc((size_t)n * sizeof *ix);
    out->buckets = calloc((size_t)n, sizeof *out->buckets);
    if (!ix || !out->buckets) {
        free(ix);
        free(out->buckets);
        out->buckets = NULL;
        return -1;
    }
    for (int i = 0; i < n; i++)
        ix[i] = &r[i];
    qsort(ix, (size_t)n, sizeof *ix, by_sig);
    int64_t latest_t = 0, latest_id = 0;
    for (int i = 0; i < n; i++) {
        const qb_report *p = ix[i];
        qb_bucket *b = out->n ? &out->buckets[out->n - 1] : NULL;
        if (!b || strcmp(b->signature, p->signature)) {
            b = &out->buckets[out->n++];
            snprintf(b->signature, sizeof b->signature, "%s", p->signature);
            b->per_build = calloc((size_t)(out->nbuilds > 0 ? out->nbuilds : 1),
                                  sizeof *b->per_build);
            if (!b->per_build) {
                free(ix);
                return -1;
            }
            b->first_ns = p->time_ns;
            b->installations = 1;
            latest_t = p->time_ns;
            latest_id = -1;
        } else if (strcmp(ix[i - 1]->installation, p->installation)) {
            b->installations++;
        }
        b->count++;
        if (p->time_ns < b->first_ns)
            b->first_ns = p->time_ns;
        if (p->time_ns > b->last_ns)
            b->last_ns = p->time_ns;
        if (p->time_ns > latest_t || (p->time_ns == latest_t && p->id > latest_id)) {
            latest_t = p->time_ns;
            latest_id = p->id;
            b->example = p->id;
            snprintf(b->component, sizeof b->component, "%s", p->component);
        }
        if (p->build >= 0 && p->build < out->nbuilds)
            b->per_build[p->build]++;
    }
    free(ix);
    for (int i = 0; i < out->n; i++)
        judge(&out->buckets[i], out);
    qsort(out->buckets, (size_t)out->n, sizeof *out->buckets, by_count);
    return 0;
}

void qb_free(qb_set *set) {
    for (int i = 0; i < set->n; i++)
        free(set->buckets[i].per_build);
    free(set->buckets);
    free(set->builds);
    memset(set, 0, sizeof *set);
}

/* ---- the store ------------------------------------------------------------ */


/* The builds seen since `since`, in the order first seen, and this one. */
static int read_builds(qs_store *s, int64_t since, qb_set *set, char *err, size_t len) {
    sqlite3_stmt *st = qs_read(s, err, len,
                         "SELECT build_id, MIN(t) FROM (SELECT build_id, start_ns AS t FROM starts"
                         " WHERE build_id <> '' AND start_ns >= ?1 UNION ALL SELECT build_id,"
                         " time_ns FROM reports WHERE build_id <> '' AND time_ns >= ?1)"
                         " GROUP BY build_id ORDER BY 2, 1",
                         "l", since);
    if (!st)
        return -1;
    int rc, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (set->nbuilds == cap) {
            cap = cap ? 2 * cap : 8;
            qb_build *b = realloc(set->builds, (size_t)cap * sizeof *b);
            if (!b) {
                sqlite3_finalize(st);
                snprintf(err, len, "store %s: out of memory reading builds", qs_path(s));
                return -1;
            }
            set->builds = b;
        }
        qb_build *b = &set->builds[set->nbuilds++];
        snprintf(b->id, sizeof b->id, "%s", qs_col(st, 0));
        b->first_ns = sqlite3_column_int64(st, 1);
    }
    if (qs_done(s, st, rc, err, len))
        return -1;
    st = qs_read(s, err, len,
           "SELECT build_id FROM (SELECT build_id, start_ns AS t FROM starts WHERE build_id <> ''"
           " UNION ALL SELECT build_id, time_ns FROM reports WHERE build_id <> '')"
           " ORDER BY t DESC LIMIT 1",
           "");
    if (!st)
        return -1;
    set->current = -1;
    rc = sqlite3_step(st);
    for (int i = 0; rc == SQLITE_ROW && i < set->nbuilds; i++)
        if (!strcmp(set->builds[i].id, qs_col(st, 0)))
            set->current = i;
    return qs_done(s, st, rc, err, len);
}

static int build_index(const qb_set *set, const char *id) {
    for (int i = set->nbuilds - 1; i >= 0; i--)
        if (!strcmp(set->builds[i].id, id))
            return i;
    return -1;
}

typedef struct rows {
    qb_report *r;
    char **strs; /* what r points into: 3 per report */
    int n, cap;
} rows;

static void rows_free(rows *w) {
    for (int i = 0; i < 3 * w->n; i++)
        free(w->strs[i]);
    free(w->strs);
    free(w->r);
}

#define FRAMES_MAX 256

int qb_read(qs_store *s, int64_t since, qb_set *set, char *err, size_t len) {
    memset(set, 0, sizeof *set);
    if (read_builds(s, since, set, err, len))
        return -1;
    /* a report without a build of its own (a crash known from its exit
     * status) is of its process's build */
    sqlite3_stmt *st = qs_read(s, err, len,
                         "SELECT r.id, r.time_ns, r.installation, r.component, r.entry, r.kind,"
                         " r.signal, CASE WHEN r.build_id <> '' THEN r.build_id ELSE"
                         " COALESCE((SELECT t.build_id FROM starts t WHERE"
                         " t.installation = r.installation AND t.run = r.run AND"
                         " t.proc = r.proc AND t.pid = r.pid), '') END,"
                         " f.symbol, f.component FROM reports r LEFT JOIN report_frames f"
                         " ON f.report_id = r.id WHERE r.time_ns >= ? ORDER BY r.id, f.n",
                         "l", since);
    if (!st)
        return -1;
    rows w = {0};
    qb_frame fr[FRAMES_MAX];
    char *syms[FRAMES_MAX], *comps[FRAMES_MAX];
    int nf = 0, rc, oom = 0;
    int64_t cur = -1;
    char kind[32] = "", comp[64] = "", entry[64] = "";
    int sig = 0;
    for (;;) {
        rc = sqlite3_step(st);
        int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
        if (cur >= 0 && id != cur) { /* the report before is whole: its signature */
            char sigbuf[QB_SIG_MAX];
            qb_signature(kind, sig, comp, entry, fr, nf, sigbuf, sizeof sigbuf);
            w.strs[3 * (w.n - 1) + 2] = strdup(sigbuf);
            w.r[w.n - 1].signature = w.strs[3 * (w.n - 1) + 2];
            oom |= !w.r[w.n - 1].signature;
            for (int i = 0; i < nf; i++) {
                free(syms[i]);
                free(comps[i]);
            }
            nf = 0;
        }
        if (rc != SQLITE_ROW || oom)
            break;
        if (id != cur) {
            if (w.n == w.cap) {
                int c = w.cap ? 2 * w.cap : 64;
                qb_report *r = realloc(w.r, (size_t)c * sizeof *r);
                char **ss = r ? realloc(w.strs, 3 * (size_t)c * sizeof *ss) : NULL;
                if (r)
                    w.r = r;
                if (!ss) {
                    oom = 1;
                    break;
                }
                w.strs = ss;
                w.cap = c;
            }
            qb_report *p = &w.r[w.n++];
            cur = id;
            char **ss = &w.strs[3 * (w.n - 1)];
            ss[0] = strdup(qs_col(st, 2));
            ss[1] = strdup(qs_col(st, 3));
            ss[2] = NULL;
            *p = (qb_report){id, sqlite3_column_int64(st, 1), ss[0], ss[1], "",
                             build_index(set, qs_col(st, 7))};
            oom |= !ss[0] || !ss[1];
            snprintf(comp, sizeof comp, "%s", qs_col(st, 3));
            snprintf(entry, sizeof entry, "%s", qs_col(st, 4));
            snprintf(kind, sizeof kind, "%s", qs_col(st, 5));
            sig = sqlite3_column_int(st, 6);
        }
        if (sqlite3_column_type(st, 8) != SQLITE_NULL && nf < FRAMES_MAX) {
            syms[nf] = strdup(qs_col(st, 8));
            comps[nf] = strdup(qs_col(st, 9));
            fr[nf] = (qb_frame){syms[nf] ? syms[nf] : "?", comps[nf] ? comps[nf] : ""};
            nf++;
        }
    }
    for (int i = 0; i < nf; i++) {
        free(syms[i]);
        free(comps[i]);
    }
    if (qs_done(s, st, rc, err, len)) {
        rows_free(&w);
        qb_free(set);
        return -1;
    }
    if (oom || qb_group(w.r, w.n, set)) {
        rows_free(&w);
        qb_free(set);
        snprintf(err, len, "store %s: out of memory grouping reports", qs_path(s));
        return -1;
    }
    rows_free(&w);
    return 0;
}

/* ---- the view ------------------------------------------------------------- */

static void utc(int64_t t_ns, char *out, size_t len) {
    time_t secs = (time_t)(t_ns / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* The example report: when, what, and its frames. */
static int example(qs_store *s, FILE *o, int json, int64_t id, char *err, size_t len) {
    sqlite3_stmt *st = qs_read(s, err, len,
                         "SELECT time_ns, kind, reason, pid, domain, build_id FROM reports"
                         " WHERE id = ?",
                         "l", id);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (json) {
            fprintf(o, ",\"example\":{\"report\":%lld,\"time_ns\":%lld,\"kind\":", (long long)id,
                    (long long)sqlite3_column_int64(st, 0));
            qs_json_str(o, qs_col(st, 1));
            fputs(",\"reason\":", o);
            qs_json_str(o, qs_col(st, 2));
            fprintf(o, ",\"pid\":%d,\"domain\":%d,\"build_id\":", sqlite3_column_int(st, 3),
                    sqlite3_column_int(st, 4));
            qs_json_str(o, qs_col(st, 5));
            fputs(",\"backtrace\":[", o);
        } else {
            char when[40];
            utc(sqlite3_column_int64(st, 0), when, sizeof when);
            fprintf(o, "      example: report %lld, %s, pid %d: %s\n", (long long)id, when,
                    sqlite3_column_int(st, 3), qs_col(st, 2));
        }
    }
    if (qs_done(s, st, rc, err, len))
        return -1;
    st = qs_read(s, err, len,
           "SELECT addr, symbol, component FROM report_frames WHERE report_id = ? ORDER BY n",
           "l", id);
    if (!st)
        return -1;
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (json) {
            fputs(n ? ",{\"addr\":" : "{\"addr\":", o);
            qs_json_str(o, qs_col(st, 0));
            fputs(",\"symbol\":", o);
            qs_json_str(o, qs_col(st, 1));
            fputs(",\"component\":", o);
            qs_json_str(o, qs_col(st, 2));
            fputc('}', o);
        } else if (n < 12) {
            const char *c = qs_col(st, 2);
            fprintf(o, "        #%-2d %s%s%s%s\n", n, qs_col(st, 1), *c ? "  [" : "", c,
                    *c ? "]" : "");
        }
        n++;
    }
    if (!json && n > 12)
        fprintf(o, "        ... %d more\n", n - 12);
    if (json)
        fputs("]}", o);
    return qs_done(s, st, rc, err, len);
}

static void short_build(const char *id, char *out, size_t len) {
    snprintf(out, len, "%.12s", *id ? id : "(unknown)");
}

int qb_print(qs_store *s, FILE *o, int json, int64_t since, char *err, size_t len) {
    qb_set set;
    if (qb_read(s, since, &set, err, len))
        return -1;
    const char *cur = set.current >= 0 ? set.builds[set.current].id : "";
    int r = 0;
    if (json) {
        fprintf(o, "{\"rules_version\":%d,\"this_build\":", QB_RULES_VERSION);
        qs_json_str(o, cur);
        fprintf(o, ",\"reports\":%lld,\"buckets\":[", (long long)set.reports);
    } else {
        char b[16];
        short_build(cur, b, sizeof b);
        fprintf(o, "crash buckets: %d, of %lld report(s) (signature rules version %d; this build"
                   " %s)\n", set.n, (long long)set.reports, QB_RULES_VERSION, b);
        if (!set.n)
            fputs("  (none)\n", o);
    }
    for (int i = 0; i < set.n && !r; i++) {
        const qb_bucket *b = &set.buckets[i];
        char first[40], last[40];
        utc(b->first_ns, first, sizeof first);
        utc(b->last_ns, last, sizeof last);
        if (json) {
            fputs(i ? ",{\"signature\":" : "{\"signature\":", o);
            qs_json_str(o, b->signature);
            fputs(",\"component\":", o);
            qs_json_str(o, b->component);
            fprintf(o, ",\"count\":%lld,\"installations\":%lld,\"first_seen_ns\":%lld,"
                       "\"last_seen_ns\":%lld,\"new_in_this_build\":%s,\"regressed\":%s,"
                       "\"builds\":[",
                    (long long)b->count, (long long)b->installations, (long long)b->first_ns,
                    (long long)b->last_ns, b->is_new ? "true" : "false",
                    b->regressed ? "true" : "false");
            for (int k = 0, m = 0; k < set.nbuilds; k++)
                if (b->per_build[k]) {
                    fputs(m++ ? ",{\"build_id\":" : "{\"build_id\":", o);
                    qs_json_str(o, set.builds[k].id);
                    fprintf(o, ",\"count\":%lld}", (long long)b->per_build[k]);
                }
            fputc(']', o);
        } else {
            fprintf(o, "\n  %s\n", b->signature);
            fprintf(o, "      component %s, %lld report(s), %lld installation(s); first seen %s,"
                       " last seen %s\n",
                    *b->component ? b->component : "(unknown)", (long long)b->count,
                    (long long)b->installations, first, last);
            fputs("      builds:", o);
            int m = 0;
            for (int k = 0; k < set.nbuilds; k++)
                if (b->per_build[k]) {
                    char id[16];
                    short_build(set.builds[k].id, id, sizeof id);
                    fprintf(o, "%s %s (%lld)", m++ ? "," : "", id, (long long)b->per_build[k]);
                }
            fprintf(o, "%s%s%s\n", m ? "" : " (unknown)", b->is_new ? "; new in this build" : "",
                    b->regressed ? "; regressed: seen again after a build where it was quiet"
                                 : "");
        }
        r = example(s, o, json, b->example, err, len);
        if (json)
            fputc('}', o);
    }
    if (json && !r)
        fputs("]}\n", o);
    qb_free(&set);
    return r;
}
