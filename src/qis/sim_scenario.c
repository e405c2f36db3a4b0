/* sim_scenario.c - scenario files for `quarantine sim` (see sim.h and
 * scenarios/README.md): JSON read with jansson, every value's line found
 * by a scan of the text, so that a bad value is told as file:line. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* ---- where each value is ------------------------------------------------------ */

typedef struct jpos {
    char *path; /* ".components[3].rate" */
    int line;
} jpos;

typedef struct rd {
    const char *file;
    char *err;
    size_t len;
    jpos *pos;
    int npos, cappos;
    int failed;
    /* the scanner */
    const char *s, *end;
    int line;
} rd;

static int fail_at(rd *r, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(rd *r, int line, const char *fmt, ...) {
    if (r->failed)
        return -1;
    r->failed = 1;
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(r->err, r->len, "%s:%d: error: %s", r->file, line, why);
    else
        snprintf(r->err, r->len, "%s: error: %s", r->file, why);
    return -1;
}

static int line_of(const rd *r, const char *path) {
    for (int i = 0; i < r->npos; i++)
        if (!strcmp(r->pos[i].path, path))
            return r->pos[i].line;
    return 0;
}

static void note(rd *r, const char *path, int line) {
    if (r->npos == r->cappos) {
        int cap = r->cappos ? 2 * r->cappos : 256;
        jpos *p = realloc(r->pos, (size_t)cap * sizeof *p);
        if (!p)
            return; /* lines are a courtesy: without memory, errors lack them */
        r->pos = p;
        r->cappos = cap;
    }
    char *dup = strdup(path);
    if (!dup)
        return;
    r->pos[r->npos++] = (jpos){dup, line};
}

static void skip_ws(rd *r) {
    while (r->s < r->end && isspace((unsigned char)*r->s)) {
        if (*r->s == '\n')
            r->line++;
        r->s++;
    }
}

/* A string's body into buf (escapes kept as written: keys need no more). */
static void scan_string(rd *r, char *buf, size_t len) {
    size_t n = 0;
    r->s++; /* the quote */
    while (r->s < r->end && *r->s != '"') {
        if (*r->s == '\\' && r->s + 1 < r->end) {
            if (n + 1 < len)
                buf[n++] = *r->s;
            r->s++;
        }
        if (*r->s == '\n')
            r->line++;
        if (n + 1 < len)
            buf[n++] = *r->s;
        r->s++;
    }
    if (r->s < r->end)
        r->s++;
    if (len)
        buf[n] = 0;
}

/* Records the line of every value under `path`. The text is valid JSON
 * (jansson read it first), so the scan need not check it. */
static void scan_value(rd *r, char *path, size_t plen, int depth) {
    skip_ws(r);
    if (r->s >= r->end || depth > 64)
        return;
    note(r, path, r->line);
    size_t at = strlen(path);
    if (*r->s == '{') {
        r->s++;
        for (;;) {
            skip_ws(r);
            if (r->s >= r->end || *r->s == '}') {
                r->s++;
                return;
            }
            if (*r->s == ',') {
                r->s++;
                continue;
            }
            char key[128];
            scan_string(r, key, sizeof key);
            skip_ws(r);
            if (r->s < r->end && *r->s == ':')
                r->s++;
            snprintf(path + at, plen - at, ".%s", key);
            scan_value(r, path, plen, depth + 1);
            path[at] = 0;
        }
    } else if (*r->s == '[') {
        r->s++;
        for (int i = 0;; i++) {
            skip_ws(r);
            if (r->s >= r->end || *r->s == ']') {
                r->s++;
                return;
            }
            if (*r->s == ',') {
                r->s++;
                i--;
                continue;
            }
            snprintf(path + at, plen - at, "[%d]", i);
            scan_value(r, path, plen, depth + 1);
            path[at] = 0;
        }
    } else if (*r->s == '"') {
        char tmp[8];
        scan_string(r, tmp, sizeof tmp);
    } else {
        while (r->s < r->end && !strchr(",]} \t\r\n", *r->s))
            r->s++;
    }
}

/* ---- reading values ------------------------------------------------------------ */

/* A child path: base + ".key" or base + "[i]". */
static const char *child(char *buf, size_t len, const char *base, const char *key, int idx) {
    if (key)
        snprintf(buf, len, "%s.%s", base, key);
    else
        snprintf(buf, len, "%s[%d]", base, idx);
    return buf;
}

/* The object's keys must be among `known` (a NULL-terminated list);
 * "//" keys are comments. */
static int check_keys(rd *r, json_t *o, const char *path, const char *const *known) {
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (!strncmp(k, "//", 2))
            continue;
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++)
            ok = !strcmp(known[i], k);
        if (!ok) {
            char p[256];
            child(p, sizeof p, path, k, 0);
            return fail_at(r, line_of(r, p), "%s: unknown key '%s'", path[0] ? path + 1 : "top level",
                           k);
        }
    }
    return 0;
}

static int want_object(rd *r, json_t *v, const char *path) {
    if (!json_is_object(v))
        return fail_at(r, line_of(r, path), "%s: an object is expected", path + 1);
    return 0;
}

/* The value at o.key, its path in p (256 bytes): 1 found; 0 absent; -1
 * absent and required (the error said). */
static int member(rd *r, json_t *o, const char *path, const char *key, bool required, char *p,
                  json_t **v) {
    child(p, 256, path, key, 0);
    *v = json_object_get(o, key);
    if (*v)
        return 1;
    if (required)
        return fail_at(r, line_of(r, path), "%s: '%s' is missing", path[0] ? path + 1 : "top level",
                       key);
    return 0;
}

/* A number in [lo, hi] at o.key (dflt when absent; required when dflt is NAN). */
static int num(rd *r, json_t *o, const char *path, const char *key, double lo, double hi,
               double dflt, double *out) {
    char p[256];
    json_t *v;
    int m = member(r, o, path, key, isnan(dflt), p, &v);
    if (m <= 0) {
        *out = dflt;
        return m;
    }
    if (!json_is_number(v))
        return fail_at(r, line_of(r, p), "%s: a number is expected", p + 1);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi)
        return fail_at(r, line_of(r, p), "%s: %g is out of range (%g to %g)", p + 1, x, lo, hi);
    *out = x;
    return 0;
}

static int integer(rd *r, json_t *o, const char *path, const char *key, long lo, long hi,
                   long dflt, bool required, long *out) {
    char p[256];
    json_t *v;
    int m = member(r, o, path, key, required, p, &v);
    if (m <= 0) {
        *out = dflt;
        return m;
    }
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!json_is_number(v) || x != floor(x))
        return fail_at(r, line_of(r, p), "%s: a whole number is expected", p + 1);
    if (x < lo || x > hi)
        return fail_at(r, line_of(r, p), "%s: %.0f is out of range (%ld to %ld)", p + 1, x, lo, hi);
    *out = (long)x;
    return 0;
}

/* A duration: a number of seconds, or a string "90s", "15m", "2h", "7d". */
static int duration(rd *r, json_t *o, const char *path, const char *key, double lo, double hi,
                    double dflt, double *out) {
    char p[256];
    json_t *v;
    int m = member(r, o, path, key, isnan(dflt), p, &v);
    if (m <= 0) {
        *out = dflt;
        return m;
    }
    double x = NAN;
    if (json_is_number(v)) {
        x = json_number_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *e;
        errno = 0;
        x = strtod(s, &e);
        double unit = 1;
        if (e == s || errno)
            x = NAN;
        else if (!strcmp(e, "d"))
            unit = 86400;
        else if (!strcmp(e, "h"))
            unit = 3600;
        else if (!strcmp(e, "m"))
            unit = 60;
        else if (!strcmp(e, "s") || !*e)
            unit = 1;
        else
            x = NAN;
        x *= unit;
    }
    if (!isfinite(x))
        return fail_at(r, line_of(r, p), "%s: a duration is expected (seconds, or \"90s\", \"15m\", "
                                         "\"2h\", \"7d\")",
                       p + 1);
    if (x < lo || x > hi)
        return fail_at(r, line_of(r, p), "%s: %g s is out of range (%g to %g s)", p + 1, x, lo, hi);
    *out = x;
    return 0;
}

static int string(rd *r, json_t *o, const char *path, const char *key, char *buf, size_t len,
                  bool required) {
    char p[256];
    json_t *v;
    int m = member(r, o, path, key, required, p, &v);
    if (m <= 0)
        return m;
    if (!json_is_string(v))
        return fail_at(r, line_of(r, p), "%s: a string is expected", p + 1);
    if (strlen(json_string_value(v)) >= len)
        return fail_at(r, line_of(r, p), "%s: longer than %zu characters", p + 1, len - 1);
    snprintf(buf, len, "%s", json_string_value(v));
    return 0;
}

/* A range [lo, hi] given as a number (lo = hi) or a two-number array. */
static int range(rd *r, json_t *o, const char *path, const char *key, double lo, double hi,
                 double dlo, double dhi, double *out) {
    char p[256];
    child(p, sizeof p, path, key, 0);
    json_t *v = json_object_get(o, key);
    out[0] = dlo, out[1] = dhi;
    if (!v)
        return 0;
    if (json_is_number(v)) {
        out[0] = out[1] = json_number_value(v);
    } else if (json_is_array(v) && json_array_size(v) == 2 &&
               json_is_number(json_array_get(v, 0)) && json_is_number(json_array_get(v, 1))) {
        out[0] = json_number_value(json_array_get(v, 0));
        out[1] = json_number_value(json_array_get(v, 1));
    } else {
        return fail_at(r, line_of(r, p), "%s: a number or [low, high] is expected", p + 1);
    }
    if (!(out[0] >= lo && out[1] <= hi && out[0] <= out[1]))
        return fail_at(r, line_of(r, p), "%s: [%g, %g] is out of range (%g to %g, low <= high)",
                       p + 1, out[0], out[1], lo, hi);
    return 0;
}

static bool good_name(const char *s) {
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
            return false;
    return true;
}

/* ---- building the scenario ------------------------------------------------------- */

typedef struct grow {
    void *p;
    int n, cap;
    size_t size;
} grow;

static void *grow_add(grow *g) {
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 16;
        void *p = realloc(g->p, (size_t)cap * g->size);
        if (!p)
            return NULL;
        g->p = p;
        g->cap = cap;
    }
    void *e = (char *)g->p + (size_t)g->n++ * g->size;
    memset(e, 0, g->size);
    return e;
}

static int find_comp(const grow *c, const char *name) {
    const qsim_comp *a = c->p;
    for (int i = 0; i < c->n; i++)
        if (!strcmp(a[i].name, name))
            return i;
    return -1;
}

/* A reference to a component by name ("program" when allowed: -1). */
static int comp_ref(rd *r, const grow *comps, json_t *o, const char *path, const char *key,
                    bool program, int *out) {
    char name[64] = "", p[256];
    if (string(r, o, path, key, name, sizeof name, true))
        return -1;
    child(p, sizeof p, path, key, 0);
    if (program && !strcmp(name, "program")) {
        *out = -1;
        return 0;
    }
    int i = find_comp(comps, name);
    if (i < 0)
        return fail_at(r, line_of(r, p), "%s: no component '%s'%s", p + 1, name,
                       program ? " (nor 'program')" : "");
    *out = i;
    return 0;
}

/* splitmix64: the generator's numbers (the system is fixed by its own seed,
 * not by the run's) */
static uint64_t mix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uni(uint64_t *x) { return (double)(mix(x) >> 11) / 9007199254740992.0; }

static double log_uni(uint64_t *x, const double *rg) {
    if (rg[0] <= 0 || rg[0] == rg[1])
        return rg[0] + (rg[1] - rg[0]) * uni(x);
    return exp(log(rg[0]) + (log(rg[1]) - log(rg[0])) * uni(x));
}

static const char *const k_top[] = {"name", "about", "duration", "seed", "decide_every",
                                    "decide_max", "decide_first", "series_every", "budget_pct",
                                    "history", "policy",
                                    "costs", "generate", "components", "edges", "bugs",
                                    "installations", "builds", NULL};
static const char *const k_policy[] = {"failure_weight", "half_life", "confidence",
                                       "trust_calls", "prior_calls", "min_gain_per_h",
                                       "min_gain_pct", "dwell", "max_changes", "max_domains",
                                       NULL};
static const char *const k_costs[] = {"host_restart_s", "inflight_s", "recovery_s",
                                      "crossing_s", "byte_s", "call_s", NULL};
static const char *const k_gen[] = {"components", "prefix", "seed", "calls_per_request",
                                    "callers", "from_program", "bytes", "call_s", NULL};
static const char *const k_comp[] = {"name", "calls_per_request", "bytes", "call_s", NULL};
static const char *const k_edge[] = {"from", "to", "calls_per_request", "bytes", NULL};
static const char *const k_bug[] = {"component", "rate", "under_load", "build", "fixed_in",
                                    NULL};
static const char *const k_inst[] = {"name", "count", "requests_per_s", "cpu", "ncpu", "join",
                                     "join_over", "join_batches", NULL};
static const char *const k_build[] = {"at", "rollout", "rollout_batches", "changes", NULL};

static int read_policy(rd *r, json_t *root, qsim_scenario *sc) {
    qp_settings *s = &sc->set;
    double v;
    if (num(r, root, "", "budget_pct", 0, 100, 100 * s->budget, &v))
        return -1;
    s->budget = v / 100;
    json_t *p = json_object_get(root, "policy");
    if (!p)
        return 0;
    if (want_object(r, p, ".policy") || check_keys(r, p, ".policy", k_policy))
        return -1;
    double mg = s->min_gain * 3600, mgp = s->min_gain_share * 100, md = s->max_domains,
           mc = s->max_changes_per_hour;
    if (num(r, p, ".policy", "failure_weight", 0.001, 1e6, s->failure_weight, &s->failure_weight) ||
        duration(r, p, ".policy", "half_life", 0, 3650 * 86400.0, s->half_life_s,
                 &s->half_life_s) ||
        num(r, p, ".policy", "confidence", 0.5, 0.9999, s->confidence, &s->confidence) ||
        num(r, p, ".policy", "trust_calls", 0, 1e15, s->trust_calls, &s->trust_calls) ||
        num(r, p, ".policy", "prior_calls", 1, 1e12, s->sceptical_b, &s->sceptical_b) ||
        num(r, p, ".policy", "min_gain_per_h", 0, 1e12, mg, &mg) ||
        num(r, p, ".policy", "min_gain_pct", 0, 100, mgp, &mgp) ||
        duration(r, p, ".policy", "dwell", 0, 30 * 86400.0, s->dwell_s, &s->dwell_s) ||
        num(r, p, ".policy", "max_changes", 0, 3600, mc, &mc) ||
        num(r, p, ".policy", "max_domains", 1, 32, md, &md))
        return -1;
    if (mc != floor(mc) || md != floor(md))
        return fail_at(r, line_of(r, ".policy"), "policy: max_changes and max_domains are whole "
                                                 "numbers");
    s->min_gain = mg / 3600;
    s->min_gain_share = mgp / 100;
    s->max_changes_per_hour = (int)mc;
    s->max_domains = (int)md;
    return 0;
}

static int read_costs(rd *r, json_t *root, qsim_scenario *sc, double *call_s) {
    sc->host_restart_s = 1;
    sc->inflight_s = 0.01;
    sc->recovery_s = 0.001;
    sc->crossing_s = 5e-6;
    sc->byte_s = 0.5e-9;
    *call_s = 5e-5;
    json_t *c = json_object_get(root, "costs");
    if (!c)
        return 0;
    if (want_object(r, c, ".costs") || check_keys(r, c, ".costs", k_costs))
        return -1;
    return num(r, c, ".costs", "host_restart_s", 1e-3, 3600, sc->host_restart_s,
               &sc->host_restart_s) ||
           num(r, c, ".costs", "inflight_s", 0, 60, sc->inflight_s, &sc->inflight_s) ||
           num(r, c, ".costs", "recovery_s", 1e-6, 60, sc->recovery_s, &sc->recovery_s) ||
           num(r, c, ".costs", "crossing_s", 1e-9, 1, sc->crossing_s, &sc->crossing_s) ||
           num(r, c, ".costs", "byte_s", 0, 1e-3, sc->byte_s, &sc->byte_s) ||
           num(r, c, ".costs", "call_s", 0, 60, *call_s, call_s)
               ? -1
               : 0;
}

/* The generated part of the system: components c0 .. cN-1 whose callers are
 * the program or earlier components (a DAG), each with a call rate drawn
 * log-uniformly, shared among its callers. */
static int read_generate(rd *r, json_t *root, grow *comps, grow *edges, double call_s) {
    json_t *g = json_object_get(root, "generate");
    if (!g)
        return 0;
    const char *P = ".generate";
    if (want_object(r, g, P) || check_keys(r, g, P, k_gen))
        return -1;
    long n, seed;
    char prefix[32] = "c";
    double cpr[2], callers[2], bytes[2], cs[2], fromp;
    if (integer(r, g, P, "components", 1, 100000, 0, true, &n) ||
        string(r, g, P, "prefix", prefix, sizeof prefix, false) ||
        integer(r, g, P, "seed", 0, 1L << 62, 1, false, &seed) ||
        range(r, g, P, "calls_per_request", 0, 1e6, 0.01, 1, cpr) ||
        range(r, g, P, "callers", 1, 64, 1, 3, callers) ||
        num(r, g, P, "from_program", 0, 1, 0.1, &fromp) ||
        range(r, g, P, "bytes", 0, 1e9, 0, 4096, bytes) ||
        range(r, g, P, "call_s", 0, 60, call_s, call_s, cs))
        return -1;
    if (!good_name(prefix))
        return fail_at(r, line_of(r, ".generate.prefix"), "generate.prefix: '%s' is not a name",
                       prefix);
    uint64_t x = (uint64_t)seed * 0x2545f4914f6cdd1dULL + 1;
    for (int i = 0; i < n; i++) {
        qsim_comp *c = grow_add(comps);
        if (!c)
            return fail_at(r, 0, "out of memory");
        snprintf(c->name, sizeof c->name, "%s%d", prefix, i);
        c->call_s = log_uni(&x, cs);
        double rate = log_uni(&x, cpr);
        int k = (int)floor(callers[0] + (callers[1] - callers[0] + 1) * uni(&x));
        if (k > callers[1])
            k = (int)callers[1];
        int base = comps->n - 1 - i; /* generated components come first among those before */
        for (int j = 0; j < k; j++) {
            int from = i == 0 || uni(&x) < fromp ? -1 : base + (int)(uni(&x) * i);
            qsim_edge *e = grow_add(edges);
            if (!e)
                return fail_at(r, 0, "out of memory");
            *e = (qsim_edge){.caller = from, .callee = base + i, .cpr = rate / k,
                             .bytes = floor(log_uni(&x, bytes))};
        }
    }
    return 0;
}

static int read_components(rd *r, json_t *root, grow *comps, grow *edges, double call_s) {
    json_t *a = json_object_get(root, "components");
    if (!a)
        return 0;
    if (!json_is_array(a))
        return fail_at(r, line_of(r, ".components"), "components: an array is expected");
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        char p[64];
        child(p, sizeof p, ".components", NULL, (int)i);
        if (want_object(r, o, p) || check_keys(r, o, p, k_comp))
            return -1;
        char name[64] = "";
        double cpr, bytes, cs;
        if (string(r, o, p, "name", name, sizeof name, true) ||
            num(r, o, p, "calls_per_request", 0, 1e6, 0, &cpr) ||
            num(r, o, p, "bytes", 0, 1e9, 0, &bytes) ||
            num(r, o, p, "call_s", 0, 60, call_s, &cs))
            return -1;
        char q[80];
        if (!good_name(name) || !strcmp(name, "program"))
            return fail_at(r, line_of(r, child(q, sizeof q, p, "name", 0)),
                           "%s: '%s' is not a component name (letters, digits, _ . -; not "
                           "'program')",
                           q + 1, name);
        if (find_comp(comps, name) >= 0)
            return fail_at(r, line_of(r, child(q, sizeof q, p, "name", 0)),
                           "%s: component '%s' is defined twice", q + 1, name);
        qsim_comp *c = grow_add(comps);
        if (!c)
            return fail_at(r, 0, "out of memory");
        snprintf(c->name, sizeof c->name, "%s", name);
        c->call_s = cs;
        if (cpr > 0) {
            qsim_edge *e = grow_add(edges);
            if (!e)
                return fail_at(r, 0, "out of memory");
            *e = (qsim_edge){.caller = -1, .callee = comps->n - 1, .cpr = cpr, .bytes = bytes};
        }
    }
    return 0;
}

static int read_edges(rd *r, json_t *root, grow *comps, grow *edges) {
    json_t *a = json_object_get(root, "edges");
    if (!a)
        return 0;
    if (!json_is_array(a))
        return fail_at(r, line_of(r, ".edges"), "edges: an array is expected");
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        char p[64];
        child(p, sizeof p, ".edges", NULL, (int)i);
        if (want_object(r, o, p) || check_keys(r, o, p, k_edge))
            return -1;
        int from, to;
        double cpr, bytes;
        if (comp_ref(r, comps, o, p, "from", true, &from) ||
            comp_ref(r, comps, o, p, "to", false, &to) ||
            num(r, o, p, "calls_per_request", 0, 1e6, NAN, &cpr) ||
            num(r, o, p, "bytes", 0, 1e9, 0, &bytes))
            return -1;
        if (from == to)
            return fail_at(r, line_of(r, p), "%s: a component calling itself is no edge", p + 1);
        qsim_edge *e = grow_add(edges);
        if (!e)
            return fail_at(r, 0, "out of memory");
        *e = (qsim_edge){.caller = from, .callee = to, .cpr = cpr, .bytes = bytes};
    }
    return 0;
}

static int read_installations(rd *r, json_t *root, qsim_scenario *sc, grow *groups) {
    json_t *a = json_object_get(root, "installations");
    if (!a)
        return fail_at(r, 0, "'installations' is missing");
    if (!json_is_array(a) || !json_array_size(a))
        return fail_at(r, line_of(r, ".installations"),
                       "installations: a non-empty array is expected");
    size_t i;
    json_t *o;
    long total = 0;
    json_array_foreach(a, i, o) {
        char p[64];
        child(p, sizeof p, ".installations", NULL, (int)i);
        if (want_object(r, o, p) || check_keys(r, o, p, k_inst))
            return -1;
        qsim_group *g = grow_add(groups);
        if (!g)
            return fail_at(r, 0, "out of memory");
        long count, batches;
        snprintf(g->name, sizeof g->name, "group%d", (int)i);
        if (string(r, o, p, "name", g->name, sizeof g->name, false) ||
            integer(r, o, p, "count", 1, 1000000, 1, false, &count) ||
            num(r, o, p, "requests_per_s", 1e-3, 1e7, NAN, &g->rps) ||
            num(r, o, p, "cpu", 0, 4096, NAN, &g->cpu) ||
            num(r, o, p, "ncpu", 1, 4096, 1, &g->ncpu) ||
            duration(r, o, p, "join", 0, sc->duration_s, 0, &g->join_s) ||
            duration(r, o, p, "join_over", 0, sc->duration_s, 0, &g->join_over_s) ||
            integer(r, o, p, "join_batches", 0, 1000000, 0, false, &batches))
            return -1;
        g->count = (int)count;
        g->join_batches = (int)batches;
        g->first = (int)total;
        total += count;
        if (total > 1000000)
            return fail_at(r, line_of(r, p), "installations: more than 1,000,000 in all");
    }
    sc->ninst = (int)total;
    return 0;
}

static int read_builds(rd *r, json_t *root, qsim_scenario *sc, grow *comps, grow *builds) {
    qsim_build *b0 = grow_add(builds); /* the initial build */
    if (!b0)
        return fail_at(r, 0, "out of memory");
    json_t *a = json_object_get(root, "builds");
    if (!a)
        return 0;
    if (!json_is_array(a))
        return fail_at(r, line_of(r, ".builds"), "builds: an array is expected");
    size_t i;
    json_t *o;
    double last = 0;
    json_array_foreach(a, i, o) {
        char p[64];
        child(p, sizeof p, ".builds", NULL, (int)i);
        if (want_object(r, o, p) || check_keys(r, o, p, k_build))
            return -1;
        qsim_build *b = grow_add(builds);
        if (!b)
            return fail_at(r, 0, "out of memory");
        long batches;
        if (duration(r, o, p, "at", 0, sc->duration_s, NAN, &b->at_s) ||
            duration(r, o, p, "rollout", 0, sc->duration_s, 0, &b->rollout_s) ||
            integer(r, o, p, "rollout_batches", 0, 1000000, 0, false, &batches))
            return -1;
        b->rollout_batches = (int)batches;
        char q[80];
        if (b->at_s <= last && i > 0)
            return fail_at(r, line_of(r, child(q, sizeof q, p, "at", 0)),
                           "%s: builds come in the order of their times", q + 1);
        if (b->at_s <= 0)
            return fail_at(r, line_of(r, child(q, sizeof q, p, "at", 0)),
                           "%s: a build after the initial one comes after time 0", q + 1);
        last = b->at_s;
        json_t *ch = json_object_get(o, "changes");
        child(q, sizeof q, p, "changes", 0);
        if (ch && !json_is_array(ch))
            return fail_at(r, line_of(r, q), "%s: an array of component names is expected", q + 1);
        size_t nch = ch ? json_array_size(ch) : 0;
        b->changes = calloc(nch + 1, sizeof *b->changes);
        if (!b->changes)
            return fail_at(r, 0, "out of memory");
        for (size_t k = 0; k < nch; k++) {
            json_t *v = json_array_get(ch, k);
            char e[96];
            child(e, sizeof e, q, NULL, (int)k);
            int c = json_is_string(v) ? find_comp(comps, json_string_value(v)) : -2;
            if (c == -2)
                return fail_at(r, line_of(r, e), "%s: a component name is expected", e + 1);
            if (c < 0)
                return fail_at(r, line_of(r, e), "%s: no component '%s'", e + 1,
                               json_string_value(v));
            bool dup = false;
            for (int m = 0; m < b->nchanges; m++)
                dup |= b->changes[m] == c;
            if (!dup)
                b->changes[b->nchanges++] = c;
        }
    }
    return 0;
}

/* A bug's builds change its component's code there. */
static int add_change(rd *r, qsim_build *b, int c) {
    for (int m = 0; m < b->nchanges; m++)
        if (b->changes[m] == c)
            return 0;
    int *more = realloc(b->changes, (size_t)(b->nchanges + 1) * sizeof *more);
    if (!more)
        return fail_at(r, 0, "out of memory");
    b->changes = more;
    b->changes[b->nchanges++] = c;
    return 0;
}

static int read_bugs(rd *r, json_t *root, grow *comps, grow *bugs, grow *builds) {
    json_t *a = json_object_get(root, "bugs");
    if (!a)
        return 0;
    if (!json_is_array(a))
        return fail_at(r, line_of(r, ".bugs"), "bugs: an array is expected");
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        char p[64];
        child(p, sizeof p, ".bugs", NULL, (int)i);
        if (want_object(r, o, p) || check_keys(r, o, p, k_bug))
            return -1;
        qsim_bug *g = grow_add(bugs);
        if (!g)
            return fail_at(r, 0, "out of memory");
        long build, fixed;
        if (comp_ref(r, comps, o, p, "component", false, &g->comp) ||
            num(r, o, p, "rate", 0, 1, NAN, &g->rate) ||
            num(r, o, p, "under_load", 0, 1e9, 0, &g->under_load) ||
            integer(r, o, p, "build", 0, builds->n - 1, 0, false, &build) ||
            integer(r, o, p, "fixed_in", 1, builds->n - 1, -1, false, &fixed))
            return -1;
        g->build = (int)build;
        g->fixed_in = (int)fixed;
        char q[80];
        if (fixed >= 0 && fixed <= build)
            return fail_at(r, line_of(r, child(q, sizeof q, p, "fixed_in", 0)),
                           "%s: a bug is fixed in a build after the one that has it", q + 1);
        qsim_build *b = builds->p;
        if (build > 0 && add_change(r, &b[build], g->comp))
            return -1;
        if (fixed > 0 && add_change(r, &b[fixed], g->comp))
            return -1;
    }
    return 0;
}

/* Versions: a component's code changes in the builds that list it. */
static int derive(qsim_scenario *sc) {
    int n = sc->n, nb = sc->nb;
    sc->ver = calloc((size_t)n * nb, sizeof *sc->ver);
    sc->vfirst = calloc((size_t)n * nb, sizeof *sc->vfirst);
    sc->vid = calloc((size_t)n * nb, sizeof *sc->vid);
    if (!sc->ver || !sc->vfirst || !sc->vid)
        return -1;
    int total = n;
    for (int b = 1; b < nb; b++)
        total += sc->builds[b].nchanges;
    sc->vcomp = calloc((size_t)total + 1, sizeof *sc->vcomp);
    sc->vbuild = calloc((size_t)total + 1, sizeof *sc->vbuild);
    if (!sc->vcomp || !sc->vbuild)
        return -1;
    int next = 0;
    for (int c = 0; c < n; c++) {
        sc->ver[c] = 0;
        sc->vfirst[c] = 0;
        sc->vid[c] = next;
        sc->vcomp[next] = c;
        sc->vbuild[next++] = 0;
    }
    for (int b = 1; b < nb; b++) {
        for (int c = 0; c < n; c++) {
            sc->ver[b * n + c] = sc->ver[(b - 1) * n + c];
            sc->vfirst[b * n + c] = sc->vfirst[(b - 1) * n + c];
            sc->vid[b * n + c] = sc->vid[(b - 1) * n + c];
        }
        for (int k = 0; k < sc->builds[b].nchanges; k++) {
            int c = sc->builds[b].changes[k];
            sc->ver[b * n + c]++;
            sc->vfirst[b * n + c] = b;
            sc->vid[b * n + c] = next;
            sc->vcomp[next] = c;
            sc->vbuild[next++] = b;
        }
    }
    sc->nv = next;
    return 0;
}

int qsim_parse(const char *text, size_t len, const char *name, qsim_scenario **out, char *err,
               size_t errlen) {
    *out = NULL;
    rd r = {.file = name, .err = err, .len = errlen, .s = text, .end = text + len, .line = 1};
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        fail_at(&r, je.line > 0 ? je.line : 0, "%s", je.text);
        return -1;
    }
    char path[512] = "";
    scan_value(&r, path, sizeof path, 0);
    qsim_scenario *sc = calloc(1, sizeof *sc);
    grow comps = {.size = sizeof(qsim_comp)}, edges = {.size = sizeof(qsim_edge)},
         bugs = {.size = sizeof(qsim_bug)}, groups = {.size = sizeof(qsim_group)},
         builds = {.size = sizeof(qsim_build)};
    int rc = -1;
    if (!sc) {
        fail_at(&r, 0, "out of memory");
        goto out;
    }
    if (!json_is_object(root)) {
        fail_at(&r, 1, "a scenario is a JSON object");
        goto out;
    }
    qp_settings_default(&sc->set);
    snprintf(sc->path, sizeof sc->path, "%s", name);
    const char *base = strrchr(name, '/');
    snprintf(sc->name, sizeof sc->name, "%s", base ? base + 1 : name);
    char *dot = strrchr(sc->name, '.');
    if (dot && !strcmp(dot, ".json"))
        *dot = 0;
    long seed;
    double call_s;
    if (check_keys(&r, root, "", k_top) ||
        string(&r, root, "", "name", sc->name, sizeof sc->name, false) ||
        string(&r, root, "", "about", sc->about, sizeof sc->about, false) ||
        duration(&r, root, "", "duration", 60, 3650 * 86400.0, NAN, &sc->duration_s) ||
        integer(&r, root, "", "seed", 0, 1L << 62, 1, false, &seed) ||
        duration(&r, root, "", "decide_every", 1, 86400 * 30.0, 3600, &sc->tick_s) ||
        read_policy(&r, root, sc) || read_costs(&r, root, sc, &call_s))
        goto out;
    sc->seed = (uint64_t)seed;
    if (duration(&r, root, "", "decide_max", sc->tick_s, 3650 * 86400.0,
                 fmax(sc->tick_s, 8 * 86400.0), &sc->max_interval_s) ||
        duration(&r, root, "", "decide_first", 0, sc->tick_s, sc->tick_s > 60 ? 60 : 0,
                 &sc->first_s) ||
        duration(&r, root, "", "history", 0, 3650 * 86400.0, 0, &sc->history_s) ||
        duration(&r, root, "", "series_every", sc->tick_s, sc->duration_s,
                 fmax(sc->tick_s, ceil(sc->duration_s / 60 / sc->tick_s) * sc->tick_s),
                 &sc->series_s))
        goto out;
    if (read_generate(&r, root, &comps, &edges, call_s) ||
        read_components(&r, root, &comps, &edges, call_s) ||
        read_edges(&r, root, &comps, &edges) || read_installations(&r, root, sc, &groups) ||
        read_builds(&r, root, sc, &comps, &builds) || read_bugs(&r, root, &comps, &bugs, &builds))
        goto out;
    if (!comps.n) {
        fail_at(&r, 0, "no components: give 'components' or 'generate'");
        goto out;
    }
    if (comps.n > 4096) {
        fail_at(&r, line_of(&r, ".generate"), "more than 4096 components");
        goto out;
    }
    sc->comps = comps.p, sc->n = comps.n;
    sc->edges = edges.p, sc->ne = edges.n;
    sc->bugs = bugs.p, sc->nbugs = bugs.n;
    sc->groups = groups.p, sc->ng = groups.n;
    sc->builds = builds.p, sc->nb = builds.n;
    comps.p = edges.p = bugs.p = groups.p = builds.p = NULL;
    for (int e = 0; e < sc->ne; e++)
        sc->comps[sc->edges[e].callee].cpr += sc->edges[e].cpr;
    for (int c = 0; c < sc->n; c++)
        if (!(sc->comps[c].cpr > 0)) {
            char p[64];
            snprintf(p, sizeof p, ".components[%d]", c);
            int line = line_of(&r, p);
            fail_at(&r, line, "component '%s' is never called (give it calls_per_request or "
                              "an edge to it)",
                    sc->comps[c].name);
            goto out;
        }
    if (derive(sc)) {
        fail_at(&r, 0, "out of memory");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    for (int i = 0; i < r.npos; i++)
        free(r.pos[i].path);
    free(r.pos);
    free(comps.p);
    free(edges.p);
    free(bugs.p);
    free(groups.p);
    if (builds.p) {
        qsim_build *b = builds.p;
        for (int i = 0; i < builds.n; i++)
            free(b[i].changes);
        free(builds.p);
    }
    if (rc) {
        qsim_free(sc);
        return -1;
    }
    *out = sc;
    return 0;
}

int qsim_load(const char *path, qsim_scenario **out, char *err, size_t errlen) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: error: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *more = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!more) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = more;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        snprintf(err, errlen, "%s: error: cannot read%s", path,
                 buf ? "" : ": too large or out of memory");
        free(buf);
        return -1;
    }
    int rc = qsim_parse(buf, n, path, out, err, errlen);
    free(buf);
    return rc;
}

void qsim_free(qsim_scenario *sc) {
    if (!sc)
        return;
    free(sc->comps);
    free(sc->edges);
    free(sc->bugs);
    free(sc->groups);
    if (sc->builds)
        for (int i = 0; i < sc->nb; i++)
            free(sc->builds[i].changes);
    free(sc->builds);
    free(sc->ver);
    free(sc->vfirst);
    free(sc->vid);
    free(sc->vcomp);
    free(sc->vbuild);
    free(sc);
}
