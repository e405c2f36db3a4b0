/* sim.c - the fleet simulator (see sim.h for the model, docs/sim.md for
 * the reasoning): the policy's qp_decide() over simulated installations,
 * against an oracle that knows the true fault rates. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "now.h"
#include "sim.h"

#define LN2 0.69314718055994530942
#define ORACLE_CALLS 1e18 /* the oracle's evidence: the true rate, held this firmly */


/* ---- random numbers: counter-based, so that a fault's time depends on
 * (seed, installation, component, n) only, never on what a mode did ------------ */

static uint64_t sm(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static double u01(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t salt) {
    uint64_t h = sm(sm(sm(sm(seed ^ salt) ^ a) ^ b) ^ c);
    return ((double)(h >> 11) + 0.5) / 9007199254740992.0; /* in (0, 1) */
}

/* ---- per group: the inputs that do not change with time ------------------------------ */

typedef struct grp {
    const qsim_group *g;
    double *r;      /* calls per second into each component */
    qp_edge *e;     /* the policy's edges at this load */
    double *ew;     /* CPU seconds per second each edge costs while it crosses */
    qp_costs k;     /* measured costs (cpu_s_per_s set per decision) */
    double chost;   /* requests a host crash fails */
    double base;    /* CPU the capacity share is taken of */
} grp;

/* ---- the oracle: per group x build, the best static plan ----------------------------- */

typedef struct oplan {
    int *dom;
    double *F, *R;  /* per domain: calls in flight, call rate */
    double ovreq;   /* requests per second its boundaries cost */
    double share;   /* CPU share of its boundaries */
    double objective;
} oplan;

typedef struct oracle {
    int ng, nb;
    oplan *p;       /* [g * nb + b] */
} oracle;

/* ---- a class: installations with one history ------------------------------------------ */

typedef struct cev { /* a code version's evidence here */
    int vid;
    double faults, fat, hb, hat;
} cev;

typedef struct klass {
    int id, count, group, active, build, first_build;
    double join_t, proc_start;
    double *up;         /* [nb]: when it started each build */
    int *plan;          /* [n]: the plan in force */
    cev *ev;
    int nev, capev;
    double last_change, ring[8];
    int nring;
    int next_tick, interval; /* periodic decisions, in ticks */
    int dirty, restart, decided_at;
    double ov_req, ov_share, ov_t; /* the plan's overhead rates; accounted up to ov_t */
    double early_t0, early_off, early_end; /* the first decisions after a start */
    double trust_at; /* a decision when code isolated on suspicion earns trust (adaptive) */
    double *exp_start, *iso_at;    /* [nbv]: buggy versions: when it ran it, isolated it */
} klass;

typedef struct inst {
    int cls, group, build;
    double join_t;
} inst;

typedef struct tev { /* a decision due at a time (lazily deleted) */
    double t;
    int id;
} tev;

typedef struct haz {
    double e, acc, t0, mu;
    unsigned idx;
} haz;

typedef struct run {
    const qsim_scenario *sc;
    grp *gr;
    qp_mode mode;
    uint64_t seed;
    int pooled;
    qp_settings set;
    double h, tick, D;
    int K, n, nb, nbc, nbv;
    int *bcomp;         /* components with a bug */
    int *bslot;         /* [c]: its slot, or -1 */
    int *bv;            /* buggy versions (vids) */
    int *bvk;           /* [vid]: its index among them, or -1 */
    double *rv;         /* [vid * ng + g]: true fault rate per call */
    int *vb1;           /* [vid]: the build after its last */
    /* installations and their faults */
    inst *in;
    double *up;         /* [j * nb + b]: when j starts build b (INFINITY: never) */
    int *join_at, *join_list, *up_at, *up_list; /* per tick (CSR) */
    haz *hz;
    int *heap, *hpos, hn;
    /* classes and when they decide */
    klass **cls;
    int ncls, capcls;
    int **bucket, *bn, *bcap;
    int *due, ndue, capdue;
    int *dirtyl, ndirty, capdirty;
    tev *early;
    int nearly, capearly;
    /* the fleet */
    double *Rb, *Ub, *Ab, *Bat; /* per build: discounted and plain exposure (requests) */
    double *FK, *FKat, *HB, *HBat; /* per vid: faults while isolated, host blame */
    double *Ulast;      /* [vid]: plain exposure at its last fault (-1: none) */
    double *first_start; /* [vid]: when any installation first ran it */
    int *running;       /* [vid]: installations running it */
    double *wake_ratio;
    int *wake, nwake;
    char *waking;
    /* scratch */
    qp_comp *qc;
    qp_why *why;
    int *dom;
    double *Fd, *Rd;
    /* results */
    qsim_mode_result *out;
    double ov_req, share_int, life_s;
    double next_sample;
    int nsamples, capsamples;
    char *err;
    size_t errlen;
    int failed;
} run;

/* ---- small helpers ------------------------------------------------------------------- */

static int push_int(int **a, int *n, int *cap, int v) {
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 16;
        int *p = realloc(*a, (size_t)c * sizeof *p);
        if (!p)
            return -1;
        *a = p;
        *cap = c;
    }
    (*a)[(*n)++] = v;
    return 0;
}

static int fail(run *r, const char *what) {
    if (!r->failed)
        snprintf(r->err, r->errlen, "%s", what);
    r->failed = 1;
    return -1;
}

/* Exposure (requests, discounted with half-life h) of serving from s to t
 * at one request per second. */
static double expo(double s, double t, double h) {
    if (t <= s)
        return 0;
    return h > 0 ? h / LN2 * -expm1(-(t - s) / h * LN2) : t - s;
}

static double decay(double dt, double h) { return h > 0 && dt > 0 ? exp2(-dt / h) : 1; }

/* The CPU a plan's boundaries cost in group g (CPU seconds per second). */
static double plan_ov(const run *r, const grp *g, const int *dom) {
    double ov = 0;
    for (int e = 0; e < r->sc->ne; e++) {
        const qsim_edge *E = &r->sc->edges[e];
        int a = E->caller < 0 ? 0 : dom[E->caller];
        if (a != dom[E->callee])
            ov += g->ew[e];
    }
    return ov;
}

/* What that overhead costs, as the policy counts it: requests lost to
 * capacity as far as the program is CPU-bound; and its CPU share. */
static void ov_cost(const grp *g, double ov, double *req, double *share) {
    double cpu = g->g->cpu + ov, util = cpu / g->g->ncpu > 1 ? 1 : cpu / g->g->ncpu;
    *share = ov > 0 ? ov / (g->base + ov) : 0;
    *req = g->g->rps * util * *share;
}

/* Calls in flight and call rate of domain d in a plan. */
static void dom_load(const run *r, const grp *g, const int *dom, int d, double *F, double *R) {
    *F = *R = 0;
    for (int c = 0; c < r->n; c++)
        if (dom[c] == d) {
            *F += g->r[c] * r->sc->comps[c].call_s;
            *R += g->r[c];
        }
}

static int grp_init(const qsim_scenario *sc, const qsim_group *G, grp *g) {
    g->g = G;
    g->r = calloc((size_t)sc->n + 1, sizeof *g->r);
    g->e = calloc((size_t)sc->ne + 1, sizeof *g->e);
    g->ew = calloc((size_t)sc->ne + 1, sizeof *g->ew);
    if (!g->r || !g->e || !g->ew)
        return -1;
    for (int c = 0; c < sc->n; c++)
        g->r[c] = G->rps * sc->comps[c].cpr;
    for (int e = 0; e < sc->ne; e++) {
        const qsim_edge *E = &sc->edges[e];
        double rate = G->rps * E->cpr;
        g->e[e] = (qp_edge){.caller = E->caller, .callee = E->callee, .calls_per_s = rate,
                            .bytes_per_call = E->bytes, .cross_s = 0};
        g->ew[e] = rate * (sc->crossing_s + E->bytes * sc->byte_s);
    }
    g->k = (qp_costs){.host_restart_s = sc->host_restart_s, .requests_per_s = G->rps,
                      .inflight = G->rps * sc->inflight_s, .recovery_s = sc->recovery_s,
                      .crossing_s = sc->crossing_s, .byte_s = sc->byte_s, .ncpu = G->ncpu};
    double inflight = G->rps * sc->inflight_s < 1 ? 1 : G->rps * sc->inflight_s;
    g->chost = G->rps * sc->host_restart_s + inflight;
    double floor_cpu = G->ncpu < 1 ? G->ncpu : 1;
    g->base = G->cpu > floor_cpu ? G->cpu : floor_cpu;
    return 0;
}

static void grp_free(grp *g) {
    free(g->r);
    free(g->e);
    free(g->ew);
}

/* True fault rate per call of each code version at each group's load: a
 * bug's builds are changes of its component's code, so a version has it
 * throughout or not at all. */
static double *true_rates(const qsim_scenario *sc) {
    double *rv = calloc((size_t)sc->nv * sc->ng + 1, sizeof *rv);
    if (!rv)
        return NULL;
    for (int v = 0; v < sc->nv; v++)
        for (int k = 0; k < sc->nbugs; k++) {
            const qsim_bug *B = &sc->bugs[k];
            int b = sc->vbuild[v];
            if (B->comp != sc->vcomp[v] || b < B->build || (B->fixed_in >= 0 && b >= B->fixed_in))
                continue;
            for (int g = 0; g < sc->ng; g++)
                if (sc->groups[g].rps >= B->under_load)
                    rv[v * sc->ng + g] += B->rate;
        }
    return rv;
}

/* The components with a bug in some version, in the order of their versions
 * (the fault streams' slots); returns how many. */
static int bug_slots(const qsim_scenario *sc, const double *rv, int *bcomp, int *bslot) {
    int nbc = 0;
    for (int c = 0; c < sc->n; c++)
        bslot[c] = -1;
    for (int v = 0; v < sc->nv; v++) {
        bool bad = false;
        for (int g = 0; g < sc->ng; g++)
            bad |= rv[v * sc->ng + g] > 0;
        int c = sc->vcomp[v];
        if (bad && bslot[c] < 0) {
            bslot[c] = nbc;
            bcomp[nbc++] = c;
        }
    }
    return nbc;
}

/* ---- the oracle: per group x build, the best static plan found -------------------- */

#define NCAND 2 /* plans per group x build a run offers the oracle */

/* The policy's inputs for an installation of group g on build b that
 * knew the true rates: evidence of ORACLE_CALLS calls at the true rate,
 * read by the mean; the plan `dom` in force. */
static void oracle_inputs(const qsim_scenario *sc, const grp *gr, const double *rv, int g, int b,
                          const int *dom, qp_comp *c, qp_costs *k) {
    int n = sc->n;
    *k = gr[g].k;
    k->cpu_s_per_s = sc->groups[g].cpu;
    for (int i = 0; i < n; i++) {
        double lam = rv[sc->vid[b * n + i] * sc->ng + g];
        c[i] = (qp_comp){.name = sc->comps[i].name, .code = QP_CODE_SAME, .calls = ORACLE_CALLS,
                         .host_blame = lam * (1 + ORACLE_CALLS), .clean_calls = ORACLE_CALLS,
                         .calls_per_s = gr[g].r[i], .call_s = sc->comps[i].call_s,
                         .domain = dom[i]};
    }
    for (int e = 0; e < sc->ne; e++) {
        const qsim_edge *E = &sc->edges[e];
        if ((E->caller < 0 ? 0 : dom[E->caller]) != dom[E->callee])
            k->cpu_s_per_s += gr[g].ew[e];
    }
}

/* The oracle's plan for each group x build: of the plans the policy's
 * search finds from all in the host, from each buggy component alone and
 * from everything isolated, and of the plans the runs held, the one with
 * the least expected cost under the true rates that keeps to the budget
 * (as the policy keeps to it: over it only for the buggy components). */
static int oracle_build(const qsim_scenario *sc, const grp *gr, const double *rv,
                        const qsim_result *res, oracle *o, char *err, size_t len) {
    int n = sc->n;
    o->ng = sc->ng;
    o->nb = sc->nb;
    o->p = calloc((size_t)sc->ng * sc->nb, sizeof *o->p);
    qp_comp *c = calloc((size_t)n + 1, sizeof *c);
    qp_why *why = calloc((size_t)n + 1, sizeof *why);
    int *dom = calloc((size_t)n + 1, sizeof *dom), *start = calloc((size_t)n + 1, sizeof *start);
    int rc = -1;
    if (!o->p || !c || !why || !dom || !start) {
        snprintf(err, len, "out of memory");
        goto out;
    }
    qp_settings s = sc->set;
    s.mode = QP_OPTIMISTIC; /* decides by the mean: the true rate */
    s.trusting_a = 1e-300;
    s.trusting_b = 1;
    s.min_gain = s.min_gain_share = 0;
    s.dwell_s = 0;
    qp_state st = {.plan_age_s = 1e9, .restarting = 1};
    for (int g = 0; g < sc->ng; g++)
        for (int b = 0; b < sc->nb; b++) {
            oplan *p = &o->p[g * sc->nb + b];
            p->dom = calloc((size_t)n + 1, sizeof *p->dom);
            p->F = calloc((size_t)s.max_domains + 1, sizeof *p->F);
            p->R = calloc((size_t)s.max_domains + 1, sizeof *p->R);
            if (!p->dom || !p->F || !p->R) {
                snprintf(err, len, "out of memory");
                goto out;
            }
            p->objective = INFINITY;
            int ncand = 3;
            for (int r = 0; res && r < res->nruns; r++)
                ncand += res->runs[r].ncand;
            for (int k = 0; k < ncand; k++) {
                int search = k < 3;
                if (search) {
                    int nd = 0;
                    for (int i = 0; i < n; i++) {
                        double lam = rv[sc->vid[b * n + i] * sc->ng + g];
                        start[i] = k == 0   ? 0
                                   : k == 1 ? (lam > 0 && nd < s.max_domains ? ++nd : 0)
                                            : 1 + i % s.max_domains;
                    }
                    if (k == 1 && !nd)
                        continue;
                } else {
                    int q = k - 3, r = 0;
                    while (q >= res->runs[r].ncand)
                        q -= res->runs[r++].ncand;
                    const qsim_mode_result *m = &res->runs[r];
                    int at = (g * sc->nb + b) * m->ncand + q;
                    if (q >= NCAND || !(m->candw[at] > 0))
                        continue;
                    memcpy(start, &m->cand[(size_t)at * n], sizeof *start * (size_t)n);
                }
                qp_costs kk;
                oracle_inputs(sc, gr, rv, g, b, start, c, &kk);
                qp_result out = {.domain = dom, .why = why, .terse = 1};
                if (qp_decide(c, n, gr[g].e, sc->ne, &kk, &s, &st, &out)) {
                    snprintf(err, len, "oracle: policy: %s", out.summary);
                    goto out;
                }
                /* a search offers what it found; a plan held, itself */
                double j = search ? out.objective_new : out.objective_now;
                int within = search ? out.within_new : out.within_now;
                if (within && j < p->objective - 1e-12 * (1 + fabs(j))) {
                    p->objective = j;
                    memcpy(p->dom, search ? dom : start, sizeof *dom * (size_t)n);
                }
            }
            for (int i = 0; i < n; i++) {
                int d = p->dom[i];
                if (d > 0 && d <= s.max_domains) {
                    p->F[d] += gr[g].r[i] * sc->comps[i].call_s;
                    p->R[d] += gr[g].r[i];
                }
            }
            double ov = 0;
            for (int e = 0; e < sc->ne; e++) {
                const qsim_edge *E = &sc->edges[e];
                int a = E->caller < 0 ? 0 : p->dom[E->caller];
                if (a != p->dom[E->callee])
                    ov += gr[g].ew[e];
            }
            ov_cost(&gr[g], ov, &p->ovreq, &p->share);
        }
    rc = 0;
out:
    free(c);
    free(why);
    free(dom);
    free(start);
    return rc;
}

static void oracle_free(oracle *o) {
    if (o->p)
        for (int i = 0; i < o->ng * o->nb; i++) {
            free(o->p[i].dom);
            free(o->p[i].F);
            free(o->p[i].R);
        }
    free(o->p);
}

/* ---- the fault heap (indexed by installation x bug slot) ------------------------------ */

static double haz_next(const haz *z) { return z->mu > 0 ? z->t0 + (z->e - z->acc) / z->mu : INFINITY; }

static bool heap_less(const run *r, int a, int b) {
    double ta = haz_next(&r->hz[a]), tb = haz_next(&r->hz[b]);
    return ta < tb || (ta == tb && a < b);
}

static void heap_swap(run *r, int i, int j) {
    int a = r->heap[i], b = r->heap[j];
    r->heap[i] = b, r->heap[j] = a;
    r->hpos[b] = i, r->hpos[a] = j;
}

static void heap_fix(run *r, int id) {
    int i = r->hpos[id];
    while (i > 0 && heap_less(r, r->heap[i], r->heap[(i - 1) / 2])) {
        heap_swap(r, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < r->hn && heap_less(r, r->heap[l], r->heap[m]))
            m = l;
        if (l + 1 < r->hn && heap_less(r, r->heap[l + 1], r->heap[m]))
            m = l + 1;
        if (m == i)
            break;
        heap_swap(r, i, m);
        i = m;
    }
}

static void heap_add(run *r, int id) {
    r->heap[r->hn] = id;
    r->hpos[id] = r->hn++;
    heap_fix(r, id);
}

/* The early decisions: a min-heap of (time, class). */
static bool tev_less(tev a, tev b) { return a.t < b.t || (a.t == b.t && a.id < b.id); }

static int early_push(run *r, double t, int id) {
    if (r->nearly == r->capearly) {
        int cap = r->capearly ? 2 * r->capearly : 64;
        tev *p = realloc(r->early, (size_t)cap * sizeof *p);
        if (!p)
            return -1;
        r->early = p;
        r->capearly = cap;
    }
    int i = r->nearly++;
    r->early[i] = (tev){t, id};
    while (i > 0 && tev_less(r->early[i], r->early[(i - 1) / 2])) {
        tev x = r->early[i];
        r->early[i] = r->early[(i - 1) / 2];
        r->early[(i - 1) / 2] = x;
        i = (i - 1) / 2;
    }
    return 0;
}

static void early_pop(run *r) {
    r->early[0] = r->early[--r->nearly];
    for (int i = 0;;) {
        int l = 2 * i + 1, m = i;
        if (l < r->nearly && tev_less(r->early[l], r->early[m]))
            m = l;
        if (l + 1 < r->nearly && tev_less(r->early[l + 1], r->early[m]))
            m = l + 1;
        if (m == i)
            break;
        tev x = r->early[i];
        r->early[i] = r->early[m];
        r->early[m] = x;
        i = m;
    }
}

static double draw_exp(const run *r, int j, int slot, unsigned idx) {
    return -log(u01(r->seed, (uint64_t)j, (uint64_t)slot, idx, 0x6661756c74ULL));
}

/* ---- the fleet's exposure ---------------------------------------------------------------- */

static void fleet_advance(run *r, int b, double t) {
    double dt = t - r->Bat[b];
    if (dt <= 0)
        return;
    double d = decay(dt, r->h);
    r->Rb[b] = r->Rb[b] * d + r->Ab[b] * expo(0, dt, r->h);
    r->Ub[b] += r->Ab[b] * dt;
    r->Bat[b] = t;
}

static double fleet_R(const run *r, int b, double t) {
    double dt = t - r->Bat[b];
    return dt > 0 ? r->Rb[b] * decay(dt, r->h) + r->Ab[b] * expo(0, dt, r->h) : r->Rb[b];
}

static double fleet_U(const run *r, int b, double t) {
    double dt = t - r->Bat[b];
    return r->Ub[b] + (dt > 0 ? r->Ab[b] * dt : 0);
}

/* Discounted and plain fleet requests served while running version vid. */
static void fleet_v(const run *r, int vid, double t, double *S, double *U) {
    *S = *U = 0;
    for (int b = r->sc->vbuild[vid]; b < r->vb1[vid]; b++) {
        *S += fleet_R(r, b, t);
        *U += fleet_U(r, b, t);
    }
}

/* ---- classes -------------------------------------------------------------------------- */

static klass *cls_new(run *r) {
    klass *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->up = calloc((size_t)r->nb + 1, sizeof *k->up);
    k->plan = calloc((size_t)r->n + 1, sizeof *k->plan);
    k->exp_start = calloc((size_t)r->nbv + 1, sizeof *k->exp_start);
    k->iso_at = calloc((size_t)r->nbv + 1, sizeof *k->iso_at);
    if (!k->up || !k->plan || !k->exp_start || !k->iso_at) {
        free(k->up), free(k->plan), free(k->exp_start), free(k->iso_at), free(k);
        return NULL;
    }
    for (int i = 0; i < r->nbv; i++)
        k->exp_start[i] = k->iso_at[i] = -1;
    if (r->ncls == r->capcls) {
        int cap = r->capcls ? 2 * r->capcls : 64;
        klass **p = realloc(r->cls, (size_t)cap * sizeof *p);
        if (!p) {
            free(k->up), free(k->plan), free(k->exp_start), free(k->iso_at), free(k);
            return NULL;
        }
        r->cls = p;
        r->capcls = cap;
    }
    k->id = r->ncls;
    k->decided_at = -1;
    k->early_off = INFINITY;
    r->cls[r->ncls++] = k;
    return k;
}

static void cls_free(klass *k) {
    if (!k)
        return;
    free(k->up);
    free(k->plan);
    free(k->ev);
    free(k->exp_start);
    free(k->iso_at);
    free(k);
}

/* Overhead accounted up to t. */
static void acct(run *r, klass *k, double t) {
    if (k->active && t > k->ov_t) {
        r->ov_req += k->count * k->ov_req * (t - k->ov_t);
        r->share_int += k->count * k->ov_share * (t - k->ov_t);
    }
    if (t > k->ov_t)
        k->ov_t = t;
}

static void set_ov(run *r, klass *k) {
    const grp *g = &r->gr[k->group];
    ov_cost(g, plan_ov(r, g, k->plan), &k->ov_req, &k->ov_share);
}

static int schedule(run *r, klass *k, int tick) {
    if (tick > r->K)
        tick = r->K;
    k->next_tick = tick;
    return push_int(&r->bucket[tick], &r->bn[tick], &r->bcap[tick], k->id);
}

static cev *evidence(run *r, klass *k, int vid) {
    for (int i = 0; i < k->nev; i++)
        if (k->ev[i].vid == vid)
            return &k->ev[i];
    if (k->nev == k->capev) {
        int cap = k->capev ? 2 * k->capev : 4;
        cev *p = realloc(k->ev, (size_t)cap * sizeof *p);
        if (!p) {
            fail(r, "out of memory");
            return NULL;
        }
        k->ev = p;
        k->capev = cap;
    }
    cev *e = &k->ev[k->nev++];
    *e = (cev){.vid = vid};
    return e;
}

/* Installation j leaves its class for one of its own (a fault made its
 * history its own). */
static klass *split(run *r, int j, double t) {
    klass *k = r->cls[r->in[j].cls];
    if (k->count == 1)
        return k;
    acct(r, k, t);
    klass *c = cls_new(r);
    k = r->cls[r->in[j].cls]; /* cls_new may move the array, not the classes */
    if (!c) {
        fail(r, "out of memory");
        return NULL;
    }
    int id = c->id;
    double *up = c->up, *es = c->exp_start, *ia = c->iso_at;
    int *plan = c->plan;
    *c = *k;
    c->id = id;
    c->up = up, c->exp_start = es, c->iso_at = ia, c->plan = plan;
    memcpy(c->up, k->up, sizeof *up * (size_t)r->nb);
    memcpy(c->plan, k->plan, sizeof *plan * (size_t)r->n);
    memcpy(c->exp_start, k->exp_start, sizeof *es * (size_t)r->nbv);
    memcpy(c->iso_at, k->iso_at, sizeof *ia * (size_t)r->nbv);
    c->ev = NULL;
    c->nev = c->capev = 0;
    if (k->nev) {
        c->ev = malloc(sizeof *c->ev * (size_t)k->nev);
        if (!c->ev) {
            fail(r, "out of memory");
            return NULL;
        }
        memcpy(c->ev, k->ev, sizeof *c->ev * (size_t)k->nev);
        c->nev = c->capev = k->nev;
    }
    c->count = 1;
    k->count--;
    r->in[j].cls = c->id;
    if (schedule(r, c, k->next_tick) ||
        (c->dirty && push_int(&r->dirtyl, &r->ndirty, &r->capdirty, c->id)) ||
        (isfinite(c->early_t0 + c->early_off) && c->early_t0 + c->early_off < c->early_end &&
         early_push(r, c->early_t0 + c->early_off, c->id))) {
        fail(r, "out of memory");
        return NULL;
    }
    return c;
}

/* The version class k runs of component c. */
static int vid_of(const run *r, const klass *k, int c) { return r->sc->vid[k->build * r->n + c]; }

/* When class k started running its version of c (a class that joined
 * on the initial build brings its history with it). */
static double vstart(const run *r, const klass *k, int c) {
    int b = r->sc->vfirst[k->build * r->n + c];
    if (b == 0 && k->first_build == 0)
        return k->join_t - r->sc->history_s;
    return b <= k->first_build ? k->join_t : k->up[b];
}

/* Buggy versions it runs now, isolated or not. */
static void track_isolation(run *r, klass *k, double t) {
    for (int c = 0; c < r->n; c++) {
        if (r->bslot[c] < 0)
            continue;
        int bk = r->bvk[vid_of(r, k, c)];
        if (bk < 0 || r->rv[r->bv[bk] * r->sc->ng + k->group] <= 0)
            continue;
        if (k->exp_start[bk] < 0) /* history before it joined is not a delay (and -1 is unset) */
            k->exp_start[bk] = fmax(vstart(r, k, c), k->join_t);
        if (k->iso_at[bk] < 0 && k->plan[c])
            k->iso_at[bk] = t;
    }
}

/* ---- deciding -------------------------------------------------------------------------- */

/* Adaptive judges code sceptically until it has run trust_calls calls
 * without a fault (here and pooled), and a real supervisor decides again
 * with every statistics snapshot: so when code that class k isolates on
 * suspicion will have earned that trust before the next tick, at the
 * fleet's present rate of calls into it, k decides then. Uses r->qc of
 * the decision just made. */
static int trust_soon(run *r, klass *k, double t) {
    if (r->set.mode != QP_ADAPTIVE)
        return 0;
    const qsim_scenario *sc = r->sc;
    double next = (floor(t / r->tick + 1e-9) + 1) * r->tick, when = INFINITY;
    for (int c = 0; c < r->n; c++) {
        const qp_comp *q = &r->qc[c];
        double trust = r->set.trust_calls;
        if (!k->plan[c] || q->clean_calls >= trust || q->faults + q->host_blame > 0)
            continue;
        int v = sc->vid[k->build * r->n + c];
        double S0, U0, S1, U1;
        fleet_v(r, v, t, &S0, &U0);
        fleet_v(r, v, t + 1, &S1, &U1);
        double rate = sc->comps[c].cpr * (U1 - U0); /* clean calls a second, fleet-wide */
        if (rate > 0) {
            /* a second later at least: the fleet's rate of calls moves,
             * and chasing the threshold in ever smaller steps would
             * never end */
            double at = t + fmax((trust - q->clean_calls) / rate * (1 + 1e-9), 1.0);
            if (at < when)
                when = at;
        }
    }
    if (!(when < next) || (k->trust_at > t && k->trust_at <= when))
        return 0;
    k->trust_at = when;
    return early_push(r, when, k->id);
}

/* The policy's inputs for class k at time t, built as evidence.c builds them
 * from the store; then qp_decide. */
static int decide(run *r, klass *k, double t, int restarting, int periodic, int why) {
    const qsim_scenario *sc = r->sc;
    const grp *g = &r->gr[k->group];
    int n = r->n, b = k->build;
    double h = r->h, rps = g->g->rps;
    for (int c = 0; c < n; c++) {
        int v = sc->vid[b * n + c];
        qp_comp *q = &r->qc[c];
        double s = vstart(r, k, c), cpr = sc->comps[c].cpr;
        *q = (qp_comp){.name = sc->comps[c].name, .calls_per_s = g->r[c],
                       .call_s = sc->comps[c].call_s, .domain = k->plan[c]};
        /* code identity: history before this process, or an earlier build with it */
        if (sc->vfirst[b * n + c] < b || r->first_start[v] < k->proc_start)
            q->code = QP_CODE_SAME;
        else
            q->code = sc->ver[b * n + c] > 0 ? QP_CODE_CHANGED : QP_CODE_NEW;
        q->calls = cpr * rps * expo(s, t, h);
        for (int i = 0; i < k->nev; i++)
            if (k->ev[i].vid == v) {
                q->faults = qp_decay_at(k->ev[i].faults, k->ev[i].fat, t, h);
                q->host_blame = qp_decay_at(k->ev[i].hb, k->ev[i].hat, t, h);
            }
        double S, U;
        fleet_v(r, v, t, &S, &U);
        q->pool_calls = cpr * S - q->calls;
        if (q->pool_calls < 1e-9 * cpr * S)
            q->pool_calls = 0;
        q->pool_faults = qp_decay_at(r->FK[v], r->FKat[v], t, h) - q->faults;
        q->pool_host_blame = qp_decay_at(r->HB[v], r->HBat[v], t, h) - q->host_blame;
        if (q->pool_faults < 1e-12)
            q->pool_faults = 0;
        if (q->pool_host_blame < 1e-12)
            q->pool_host_blame = 0;
        q->pool_installations = r->running[v] > 1 ? r->running[v] - 1 : 0;
        double clean = cpr * (r->Ulast[v] >= 0 ? U - r->Ulast[v] : U);
        q->clean_calls = clean > 0 ? clean : 0;
    }
    qp_costs costs = g->k;
    costs.cpu_s_per_s = g->g->cpu + plan_ov(r, g, k->plan);
    double since = k->last_change > k->proc_start ? k->last_change : k->proc_start;
    qp_state st = {.plan_age_s = t > since ? t - since : 0, .restarting = restarting};
    for (int i = 0; i < k->nring; i++)
        st.changes_last_hour += k->ring[i] > t - 3600;
    qp_result res = {.domain = r->dom, .why = r->why, .terse = 1};
    if (qp_decide(r->qc, n, g->e, sc->ne, &costs, &r->set, &st, &res)) {
        char m[400];
        snprintf(m, sizeof m, "policy: %s", res.summary);
        return fail(r, m);
    }
    r->out->decisions += k->count;
    r->out->qp_calls++;
    r->out->by_reason[why]++;
    int tick = (int)floor(t / r->tick + 1e-9) + 1;
    if (res.changed) {
        acct(r, k, t);
        memcpy(k->plan, r->dom, sizeof *k->plan * (size_t)n);
        set_ov(r, k);
        r->out->plan_changes += k->count;
        memmove(k->ring + 1, k->ring, sizeof k->ring - sizeof k->ring[0]);
        k->ring[0] = t;
        if (k->nring < 8)
            k->nring++;
        k->last_change = t;
        k->interval = 1;
        track_isolation(r, k, t);
        return schedule(r, k, tick) || trust_soon(r, k, t) ? fail(r, "out of memory") : 0;
    }
    track_isolation(r, k, t);
    if (trust_soon(r, k, t))
        return fail(r, "out of memory");
    if (res.held && (st.plan_age_s < r->set.dwell_s ||
                     st.changes_last_hour >= r->set.max_changes_per_hour))
        return schedule(r, k, tick) ? fail(r, "out of memory") : 0; /* paced: soon again */
    if (periodic) {
        int max = (int)floor(r->sc->max_interval_s / r->tick);
        k->interval = k->interval * 2 > max ? (max > 0 ? max : 1) : k->interval * 2;
        return schedule(r, k, (int)floor(t / r->tick + 1e-9) + k->interval) ? fail(r, "out of memory")
                                                                             : 0;
    }
    return 0;
}

/* ---- faults ----------------------------------------------------------------------------- */

/* The fleet's evidence of vid rose: classes running it decide at the next
 * tick (modes that pool evidence) when its rate, as the fleet sees it,
 * first appears or doubles. */
static void fleet_blame(run *r, int vid, double t, double share, int host) {
    double h = r->h;
    if (host)
        qp_decay_add(&r->HB[vid], &r->HBat[vid], t, share, h);
    else
        qp_decay_add(&r->FK[vid], &r->FKat[vid], t, share, h);
    double S, U;
    fleet_v(r, vid, t, &S, &U);
    r->Ulast[vid] = U;
    if (!r->pooled)
        return;
    double k = qp_decay_at(r->FK[vid], r->FKat[vid], t, h) + qp_decay_at(r->HB[vid], r->HBat[vid], t, h);
    double ratio = k / (r->sc->comps[r->sc->vcomp[vid]].cpr * S + 1);
    if (r->wake_ratio[vid] > 0 && ratio < 2 * r->wake_ratio[vid])
        return;
    r->wake_ratio[vid] = ratio;
    if (!r->waking[vid]) {
        r->waking[vid] = 1;
        r->wake[r->nwake++] = vid;
    }
}

static int on_fault(run *r, int id, double t) {
    const qsim_scenario *sc = r->sc;
    int j = id / r->nbc, slot = id % r->nbc, c = r->bcomp[slot];
    haz *z = &r->hz[id];
    klass *k = split(r, j, t);
    if (!k)
        return -1;
    const grp *g = &r->gr[k->group];
    int b = k->build, v = vid_of(r, k, c), bk = r->bvk[v];
    double wf = r->set.failure_weight;
    unsigned idx = z->idx;
    /* the next one */
    z->idx++;
    z->e = draw_exp(r, j, slot, z->idx);
    z->acc = 0;
    z->t0 = t;
    heap_fix(r, id);
    /* the oracle prices the same fault afterwards */
    r->out->fc[(k->group * r->nb + b) * r->nbc + slot]++;
    if (bk >= 0)
        r->out->bugs[bk].faults++;
    int d = k->plan[c];
    if (d) {
        double F, R;
        dom_load(r, g, k->plan, d, &F, &R);
        r->out->domain_faults++;
        r->out->lost_domain += 1 + F;
        r->out->slowed += sc->recovery_s * R;
        r->out->cost += wf * (1 + F) + sc->recovery_s * R;
        cev *e = evidence(r, k, v);
        if (!e)
            return -1;
        qp_decay_add(&e->faults, &e->fat, t, 1, r->h);
        fleet_blame(r, v, t, 1, 0);
        if (!k->dirty) {
            k->dirty = 1;
            if (push_int(&r->dirtyl, &r->ndirty, &r->capdirty, k->id))
                return fail(r, "out of memory");
        }
        return 0;
    }
    /* a host crash: the components on the crashed stack share the blame,
     * innermost first, each one further out counting half (spool.c); the
     * stack is a path up the call graph, in the host */
    r->out->host_crashes++;
    r->out->lost_host += g->chost;
    r->out->cost += wf * g->chost;
    if (bk >= 0)
        r->out->bugs[bk].host_crashes++;
    int stack[16], depth = 0;
    stack[depth++] = c;
    for (int x = c; depth < 16;) {
        double tot = 0;
        for (int e = 0; e < sc->ne; e++)
            if (sc->edges[e].callee == x)
                tot += sc->edges[e].cpr;
        double u = u01(r->seed, (uint64_t)j, (uint64_t)slot, idx, 0x737461636bULL + (uint64_t)depth) * tot;
        int caller = -1;
        for (int e = 0; e < sc->ne; e++)
            if (sc->edges[e].callee == x) {
                caller = sc->edges[e].caller;
                if ((u -= sc->edges[e].cpr) < 0)
                    break;
            }
        if (caller < 0 || k->plan[caller])
            break; /* the program, or a domain: the host's stack ends there */
        bool seen = false;
        for (int i = 0; i < depth; i++)
            seen |= stack[i] == caller;
        if (!seen)
            stack[depth++] = caller;
        x = caller;
    }
    double sh[16], sum = 0;
    for (int i = 0; i < depth; i++)
        sum += sh[i] = i ? sh[i - 1] / 2 : 1;
    for (int i = 0; i < depth; i++) {
        int vx = vid_of(r, k, stack[i]);
        cev *e = evidence(r, k, vx);
        if (!e)
            return -1;
        qp_decay_add(&e->hb, &e->hat, t, sh[i] / sum, r->h);
        fleet_blame(r, vx, t, sh[i] / sum, 1);
    }
    /* the supervisor decides for the program about to start again */
    if (decide(r, k, t, 1, 0, QSIM_WHY_CRASH))
        return -1;
    k->proc_start = t + sc->host_restart_s;
    return 0;
}

/* ---- joining and taking builds ------------------------------------------------------------ */

static double bug_rate(const run *r, int j, int slot, int b) {
    int v = r->sc->vid[b * r->n + r->bcomp[slot]];
    const grp *g = &r->gr[r->in[j].group];
    return r->rv[v * r->sc->ng + r->in[j].group] * g->r[r->bcomp[slot]];
}

static void haz_rate(run *r, int id, double t, double mu) {
    haz *z = &r->hz[id];
    if (t > z->t0)
        z->acc += z->mu * (t - z->t0);
    z->t0 = t;
    z->mu = mu;
    heap_fix(r, id);
}

/* A plan class k held on its build, offered to the oracle. */
static void offer(run *r, const klass *k) {
    qsim_mode_result *o = r->out;
    int at = (k->group * r->nb + k->build) * NCAND, n = r->n, free_at = -1, low = -1;
    for (int i = 0; i < NCAND; i++) {
        double w = o->candw[at + i];
        if (w > 0 && !memcmp(&o->cand[(size_t)(at + i) * n], k->plan, sizeof *k->plan * (size_t)n)) {
            o->candw[at + i] += k->count;
            return;
        }
        if (!(w > 0) && free_at < 0)
            free_at = i;
        if (low < 0 || w < o->candw[at + low])
            low = i;
    }
    int i = free_at >= 0 ? free_at : low;
    if (free_at < 0 && o->candw[at + low] >= k->count)
        return;
    memcpy(&o->cand[(size_t)(at + i) * n], k->plan, sizeof *k->plan * (size_t)n);
    o->candw[at + i] = k->count;
}

/* A class (re)started at t: the supervisor's first snapshots come soon,
 * and with them the rates and the fleet's evidence a sceptical plan waits
 * for; decisions at first_s x 1, 2, 4, ... until the next tick. */
static int early_start(run *r, klass *k, double t) {
    k->early_t0 = t;
    k->early_off = r->sc->first_s;
    k->early_end = t + r->tick;
    if (!(k->early_off > 0) || t + k->early_off >= k->early_end) {
        k->early_off = INFINITY;
        return 0;
    }
    return early_push(r, t + k->early_off, k->id);
}

/* Installation j starts running build b at t (joining: from < 0; joining
 * the initial build, with its history). */
static void run_build(run *r, int j, int from, int b, double t) {
    double hist = from < 0 && b == 0 ? r->sc->history_s : 0;
    for (int c = 0; c < r->n; c++) {
        if (from >= 0)
            r->running[r->sc->vid[from * r->n + c]]--;
        int v = r->sc->vid[b * r->n + c];
        r->running[v]++;
        if (r->first_start[v] > t - hist)
            r->first_start[v] = t - hist;
    }
    double rps = r->gr[r->in[j].group].g->rps;
    if (from >= 0) {
        fleet_advance(r, from, t);
        r->Ab[from] -= rps;
    }
    fleet_advance(r, b, t);
    r->Ab[b] += rps;
    r->Rb[b] += rps * expo(t - hist, t, r->h);
    r->Ub[b] += rps * hist;
    r->in[j].build = b;
}

static int on_join(run *r, int j, double t, int b, int tick) {
    klass *k = r->cls[r->in[j].cls];
    run_build(r, j, -1, b, t);
    for (int s = 0; s < r->nbc; s++) {
        int id = j * r->nbc + s;
        r->hz[id] = (haz){.e = draw_exp(r, j, s, 0), .t0 = t, .mu = bug_rate(r, j, s, b)};
        heap_add(r, id);
    }
    if (k->active)
        return 0; /* the class joined with its first member */
    k->active = 1;
    k->build = k->first_build = b;
    k->join_t = k->proc_start = k->ov_t = t;
    k->up[b] = t;
    k->last_change = -1e18;
    k->interval = 1;
    k->restart = 1;
    set_ov(r, k);
    if (schedule(r, k, tick + 1) || push_int(&r->dirtyl, &r->ndirty, &r->capdirty, k->id) ||
        early_start(r, k, t))
        return fail(r, "out of memory");
    return 0;
}

static int on_upgrade(run *r, int j, double t, int b, int tick) {
    klass *k = r->cls[r->in[j].cls];
    run_build(r, j, r->in[j].build, b, t);
    for (int s = 0; s < r->nbc; s++) {
        double mu = bug_rate(r, j, s, b);
        if (mu != r->hz[j * r->nbc + s].mu)
            haz_rate(r, j * r->nbc + s, t, mu);
    }
    if (k->build >= b)
        return 0; /* the class took it with its first member */
    offer(r, k);
    k->build = b;
    k->up[b] = t;
    k->proc_start = t;
    k->restart = 1;
    k->interval = 1;
    /* evidence of code it no longer runs is not read again */
    int w = 0;
    for (int i = 0; i < k->nev; i++) {
        int c = r->sc->vcomp[k->ev[i].vid];
        if (vid_of(r, k, c) == k->ev[i].vid)
            k->ev[w++] = k->ev[i];
    }
    k->nev = w;
    if (schedule(r, k, tick + 1) || push_int(&r->dirtyl, &r->ndirty, &r->capdirty, k->id) ||
        early_start(r, k, t))
        return fail(r, "out of memory");
    return 0;
}

static int on_early(run *r, tev e) {
    klass *k = r->cls[e.id];
    if (k->active && k->count && k->trust_at == e.t) { /* trust earned */
        k->trust_at = 0;
        return decide(r, k, e.t, 0, 0, QSIM_WHY_EARLY);
    }
    if (!k->active || !k->count || k->early_t0 + k->early_off != e.t)
        return 0; /* stale: the class started again since */
    if (decide(r, k, e.t, 0, 0, QSIM_WHY_EARLY))
        return -1;
    k->early_off *= 4;
    if (k->early_t0 + k->early_off < k->early_end)
        return early_push(r, k->early_t0 + k->early_off, k->id) ? fail(r, "out of memory") : 0;
    k->early_off = INFINITY;
    return 0;
}

/* ---- the series ------------------------------------------------------------------------------ */

/* Installation-seconds per group x build up to t. */
static void gb_time(const run *r, double t, double *out) {
    memset(out, 0, sizeof *out * (size_t)r->sc->ng * (size_t)r->nb);
    for (int j = 0; j < r->sc->ninst; j++) {
        int g = r->in[j].group;
        for (int b = 0; b < r->nb; b++) {
            double s = r->up[j * r->nb + b];
            if (!(s < t))
                continue;
            double e = t;
            for (int b2 = b + 1; b2 < r->nb; b2++)
                if (r->up[j * r->nb + b2] < e) {
                    e = r->up[j * r->nb + b2];
                    break;
                }
            if (e > s)
                out[g * r->nb + b] += e - s;
        }
    }
}

static int sample(run *r, double t) {
    qsim_mode_result *o = r->out;
    if (o->nsamples == r->capsamples) {
        int cap = r->capsamples ? 2 * r->capsamples : 64;
        qsim_sample *p = realloc(o->samples, (size_t)cap * sizeof *p);
        if (!p)
            return fail(r, "out of memory");
        o->samples = p;
        r->capsamples = cap;
    }
    double share = 0, active = 0;
    for (int i = 0; i < r->ncls; i++) {
        klass *k = r->cls[i];
        acct(r, k, t);
        if (k->active) {
            share += k->count * k->ov_share;
            active += k->count;
        }
    }
    size_t nfc = (size_t)r->sc->ng * r->nb * (r->nbc ? r->nbc : 1), ngb = (size_t)r->sc->ng * r->nb;
    double *sfc = realloc(o->sfc, sizeof *sfc * nfc * (size_t)(o->nsamples + 1));
    if (sfc)
        o->sfc = sfc;
    double *stgb = realloc(o->stgb, sizeof *stgb * ngb * (size_t)(o->nsamples + 1));
    if (stgb)
        o->stgb = stgb;
    if (!sfc || !stgb)
        return fail(r, "out of memory");
    memcpy(o->sfc + nfc * (size_t)o->nsamples, o->fc, sizeof *sfc * nfc);
    gb_time(r, t, o->stgb + ngb * (size_t)o->nsamples);
    qsim_sample *s = &o->samples[o->nsamples++];
    *s = (qsim_sample){.t_s = t, .host_crashes = o->host_crashes, .domain_faults = o->domain_faults,
                       .lost = o->lost_host + o->lost_domain, .slowed = o->slowed,
                       .overhead_req = r->ov_req, .cost = o->cost + r->ov_req,
                       .overhead_share = active > 0 ? share / active : 0,
                       .plan_changes = o->plan_changes};
    return 0;
}

/* ---- one run ------------------------------------------------------------------------------------ */

static int tick_of(const run *r, double t) {
    int k = (int)floor(t / r->tick + 1e-9);
    return k < 0 ? 0 : k > r->K ? r->K : k;
}

/* When installation j joins, and takes each build. */
static void schedule_installations(run *r) {
    const qsim_scenario *sc = r->sc;
    for (int gi = 0; gi < sc->ng; gi++) {
        const qsim_group *G = &sc->groups[gi];
        int nbat = G->join_batches > 0 ? G->join_batches
                                       : (int)ceil(G->join_over_s / r->tick) + 1;
        for (int i = 0; i < G->count; i++) {
            int j = G->first + i;
            int batch = (int)((double)i * nbat / G->count);
            double t = G->join_s + (nbat > 1 ? G->join_over_s * batch / (nbat - 1) : 0);
            t = tick_of(r, t) * r->tick;
            r->in[j] = (inst){.group = gi, .join_t = t};
        }
    }
    for (int j = 0; j < sc->ninst; j++) {
        double *up = &r->up[j * r->nb];
        up[0] = r->in[j].join_t;
        for (int b = 1; b < r->nb; b++) {
            const qsim_build *B = &sc->builds[b];
            int nbat = B->rollout_batches > 0 ? B->rollout_batches
                                              : (int)ceil(B->rollout_s / r->tick) + 1;
            int batch = (int)((double)j * nbat / sc->ninst);
            double t = B->at_s + (nbat > 1 ? B->rollout_s * batch / (nbat - 1) : 0);
            t = tick_of(r, t) * r->tick;
            up[b] = t > up[b - 1] ? t : up[b - 1];
        }
        /* an installation joining after a build rolled out to it starts on it */
        for (int b = 1; b < r->nb; b++)
            if (up[b] <= r->in[j].join_t)
                up[b - 1] = INFINITY, up[b] = r->in[j].join_t;
    }
}

/* Classes: installations with the same group, join and build times. */
static int sig_cmp(const void *a, const void *b, void *ctx) {
    const run *r = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (r->in[i].group != r->in[j].group)
        return r->in[i].group - r->in[j].group;
    for (int k = 0; k < r->nb; k++) {
        double x = r->up[i * r->nb + k], y = r->up[j * r->nb + k];
        if (x != y)
            return x < y ? -1 : 1;
    }
    return i - j;
}

static int make_classes(run *r) {
    int N = r->sc->ninst;
    int *ord = malloc(sizeof *ord * (size_t)N);
    if (!ord)
        return fail(r, "out of memory");
    for (int j = 0; j < N; j++)
        ord[j] = j;
    qsort_r(ord, (size_t)N, sizeof *ord, sig_cmp, r);
    klass *k = NULL;
    for (int i = 0; i < N; i++) {
        int j = ord[i];
        bool same = k && r->in[j].group == r->in[ord[i - 1]].group &&
                    !memcmp(&r->up[j * r->nb], &r->up[ord[i - 1] * r->nb],
                            sizeof *r->up * (size_t)r->nb);
        if (!same) {
            k = cls_new(r);
            if (!k) {
                free(ord);
                return fail(r, "out of memory");
            }
            k->group = r->in[j].group;
            k->next_tick = r->K + 1; /* decides when it joins */
        }
        k->count++;
        r->in[j].cls = k->id;
    }
    free(ord);
    return 0;
}

/* Per tick, the installations joining and taking a build then (CSR). */
static int tick_lists(run *r) {
    int N = r->sc->ninst, K = r->K;
    r->join_at = calloc((size_t)K + 2, sizeof *r->join_at);
    r->up_at = calloc((size_t)K + 2, sizeof *r->up_at);
    r->join_list = malloc(sizeof *r->join_list * (size_t)(N + 1));
    r->up_list = malloc(sizeof *r->up_list * (size_t)(N * (r->nb - 1) + 1));
    if (!r->join_at || !r->up_at || !r->join_list || !r->up_list)
        return fail(r, "out of memory");
    for (int pass = 0; pass < 2; pass++) {
        int *at = pass ? r->up_at : r->join_at;
        for (int j = 0; j < N; j++)
            for (int b = 0; b < r->nb; b++) {
                double t = r->up[j * r->nb + b];
                if (!(t < r->D))
                    continue;
                bool first = true;
                for (int b0 = 0; b0 < b; b0++)
                    first &= !(r->up[j * r->nb + b0] < INFINITY);
                if (first != !pass)
                    continue;
                at[tick_of(r, t) + 1]++;
            }
        for (int k = 0; k <= K; k++)
            at[k + 1] += at[k];
    }
    int *fj = calloc((size_t)K + 1, sizeof *fj), *fu = calloc((size_t)K + 1, sizeof *fu);
    if (!fj || !fu) {
        free(fj), free(fu);
        return fail(r, "out of memory");
    }
    for (int j = 0; j < N; j++) {
        bool joined = false;
        for (int b = 0; b < r->nb; b++) {
            double t = r->up[j * r->nb + b];
            if (!(t < INFINITY))
                continue;
            if (t < r->D) {
                int k = tick_of(r, t);
                if (!joined)
                    r->join_list[r->join_at[k] + fj[k]++] = j * r->nb + b;
                else
                    r->up_list[r->up_at[k] + fu[k]++] = j * r->nb + b;
            }
            joined = true;
        }
    }
    free(fj);
    free(fu);
    return 0;
}

static int by_id(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static int decide_due(run *r, int tick) {
    double t = tick * r->tick;
    r->ndue = 0;
    /* periodic */
    for (int i = 0; i < r->bn[tick]; i++) {
        klass *k = r->cls[r->bucket[tick][i]];
        if (k->next_tick == tick && k->active && k->count > 0 &&
            push_int(&r->due, &r->ndue, &r->capdue, k->id))
            return fail(r, "out of memory");
    }
    r->bn[tick] = 0;
    /* faults of their domains since the last tick, joins and builds, the fleet */
    for (int i = 0; i < r->ndirty; i++)
        if (push_int(&r->due, &r->ndue, &r->capdue, r->dirtyl[i]))
            return fail(r, "out of memory");
    r->ndirty = 0;
    for (int i = 0; i < r->ncls && r->nwake; i++) {
        klass *k = r->cls[i];
        bool want = false;
        for (int w = 0; w < r->nwake && !want && k->active; w++) {
            int v = r->wake[w];
            want = vid_of(r, k, r->sc->vcomp[v]) == v;
        }
        if (want && push_int(&r->due, &r->ndue, &r->capdue, k->id))
            return fail(r, "out of memory");
    }
    for (int w = 0; w < r->nwake; w++)
        r->waking[r->wake[w]] = 0;
    r->nwake = 0;
    qsort(r->due, (size_t)r->ndue, sizeof *r->due, by_id);
    for (int i = 0; i < r->ndue; i++) {
        klass *k = r->cls[r->due[i]];
        if (!k->active || k->count == 0 || k->decided_at == tick)
            continue;
        k->decided_at = tick;
        int restart = k->restart, periodic = k->next_tick == tick && !restart;
        int why = restart ? QSIM_WHY_START : k->dirty ? QSIM_WHY_FAULT
                                                      : periodic ? QSIM_WHY_PERIODIC : QSIM_WHY_FLEET;
        k->restart = k->dirty = 0;
        if (decide(r, k, t, restart, periodic, why))
            return -1;
    }
    return 0;
}

static void run_free(run *r) {
    for (int i = 0; i < r->ncls; i++)
        cls_free(r->cls[i]);
    free(r->cls);
    if (r->bucket)
        for (int k = 0; k <= r->K; k++)
            free(r->bucket[k]);
    free(r->bucket), free(r->bn), free(r->bcap);
    free(r->due), free(r->dirtyl), free(r->early);
    free(r->in), free(r->up), free(r->join_at), free(r->join_list), free(r->up_at),
        free(r->up_list);
    free(r->hz), free(r->heap), free(r->hpos);
    free(r->bcomp), free(r->bslot), free(r->bv), free(r->bvk), free(r->vb1);
    free(r->Rb), free(r->Ub), free(r->Ab), free(r->Bat);
    free(r->FK), free(r->FKat), free(r->HB), free(r->HBat), free(r->Ulast), free(r->first_start),
        free(r->running), free(r->wake_ratio), free(r->wake), free(r->waking);
    free(r->qc), free(r->why), free(r->dom), free(r->Fd), free(r->Rd);
}

static int run_one(const qsim_scenario *sc, grp *gr, const double *rv, qp_mode mode,
                   uint64_t seed, int series, qsim_mode_result *o, char *err, size_t errlen) {
    double t0 = qs_mono_s();
    run R = {.sc = sc, .gr = gr, .mode = mode, .seed = seed, .out = o, .err = err,
             .errlen = errlen, .rv = (double *)rv};
    run *r = &R;
    memset(o, 0, sizeof *o);
    o->mode = mode;
    o->seed = seed;
    r->set = sc->set;
    r->set.mode = mode;
    r->pooled = mode == QP_COOPERATIVE || mode == QP_ADAPTIVE;
    r->h = r->set.half_life_s;
    r->tick = sc->tick_s;
    r->D = sc->duration_s;
    r->K = (int)ceil(r->D / r->tick - 1e-9);
    r->n = sc->n;
    r->nb = sc->nb;
    int N = sc->ninst, nv = sc->nv;
    /* the components with bugs, and the versions */
    r->bcomp = calloc((size_t)r->n + 1, sizeof *r->bcomp);
    r->bslot = calloc((size_t)r->n + 1, sizeof *r->bslot);
    r->bv = calloc((size_t)nv + 1, sizeof *r->bv);
    r->bvk = calloc((size_t)nv + 1, sizeof *r->bvk);
    r->vb1 = calloc((size_t)nv + 1, sizeof *r->vb1);
    if (!r->bcomp || !r->bslot || !r->bv || !r->bvk || !r->vb1) {
        fail(r, "out of memory");
        goto out;
    }
    r->nbc = bug_slots(sc, rv, r->bcomp, r->bslot);
    for (int v = 0; v < nv; v++) {
        r->bvk[v] = -1;
        bool bad = false;
        for (int g = 0; g < sc->ng; g++)
            bad |= rv[v * sc->ng + g] > 0;
        if (bad) {
            r->bvk[v] = r->nbv;
            r->bv[r->nbv++] = v;
        }
        int c = sc->vcomp[v], b = sc->vbuild[v];
        while (b < r->nb && sc->vid[b * r->n + c] == v)
            b++;
        r->vb1[v] = b;
    }
    o->nbugs = r->nbv;
    o->bugs = calloc((size_t)r->nbv + 1, sizeof *o->bugs);
    o->ncand = NCAND;
    o->cand = calloc((size_t)sc->ng * r->nb * NCAND * (size_t)r->n + 1, sizeof *o->cand);
    o->candw = calloc((size_t)sc->ng * r->nb * NCAND + 1, sizeof *o->candw);
    o->fc = calloc((size_t)sc->ng * r->nb * (size_t)(r->nbc ? r->nbc : 1), sizeof *o->fc);
    o->tgb = calloc((size_t)sc->ng * r->nb, sizeof *o->tgb);
    if (!o->bugs || !o->cand || !o->candw || !o->fc || !o->tgb) {
        fail(r, "out of memory");
        goto out;
    }
    r->in = calloc((size_t)N + 1, sizeof *r->in);
    r->up = calloc((size_t)N * r->nb + 1, sizeof *r->up);
    int nh = N * (r->nbc ? r->nbc : 1);
    r->hz = calloc((size_t)nh + 1, sizeof *r->hz);
    r->heap = calloc((size_t)nh + 1, sizeof *r->heap);
    r->hpos = calloc((size_t)nh + 1, sizeof *r->hpos);
    r->bucket = calloc((size_t)r->K + 2, sizeof *r->bucket);
    r->bn = calloc((size_t)r->K + 2, sizeof *r->bn);
    r->bcap = calloc((size_t)r->K + 2, sizeof *r->bcap);
    r->Rb = calloc((size_t)r->nb, sizeof *r->Rb);
    r->Ub = calloc((size_t)r->nb, sizeof *r->Ub);
    r->Ab = calloc((size_t)r->nb, sizeof *r->Ab);
    r->Bat = calloc((size_t)r->nb, sizeof *r->Bat);
    r->FK = calloc((size_t)nv, sizeof *r->FK);
    r->FKat = calloc((size_t)nv, sizeof *r->FKat);
    r->HB = calloc((size_t)nv, sizeof *r->HB);
    r->HBat = calloc((size_t)nv, sizeof *r->HBat);
    r->Ulast = calloc((size_t)nv, sizeof *r->Ulast);
    r->first_start = calloc((size_t)nv, sizeof *r->first_start);
    r->running = calloc((size_t)nv, sizeof *r->running);
    r->wake_ratio = calloc((size_t)nv, sizeof *r->wake_ratio);
    r->wake = calloc((size_t)nv, sizeof *r->wake);
    r->waking = calloc((size_t)nv, sizeof *r->waking);
    r->qc = calloc((size_t)r->n, sizeof *r->qc);
    r->why = calloc((size_t)r->n, sizeof *r->why);
    r->dom = calloc((size_t)r->n, sizeof *r->dom);
    if (!o->bugs || !r->in || !r->up || !r->hz || !r->heap || !r->hpos || !r->bucket || !r->bn ||
        !r->bcap || !r->Rb || !r->Ub || !r->Ab || !r->Bat || !r->FK || !r->FKat || !r->HB ||
        !r->HBat || !r->Ulast || !r->first_start || !r->running || !r->wake_ratio || !r->wake ||
        !r->waking || !r->qc || !r->why || !r->dom) {
        fail(r, "out of memory");
        goto out;
    }
    for (int k = 0; k < r->nbv; k++) {
        o->bugs[k].comp = sc->vcomp[r->bv[k]];
        o->bugs[k].build = sc->vbuild[r->bv[k]];
    }
    for (int v = 0; v < nv; v++) {
        r->Ulast[v] = -1;
        r->first_start[v] = INFINITY;
    }
    schedule_installations(r);
    if (make_classes(r) || tick_lists(r))
        goto out;
    r->next_sample = 0;
    for (int tick = 0; tick <= r->K; tick++) {
        double T = tick * r->tick < r->D ? tick * r->tick : r->D;
        /* the faults and the early decisions before it, in their order */
        for (;;) {
            double tf = r->hn > 0 ? haz_next(&r->hz[r->heap[0]]) : INFINITY;
            double te = r->nearly > 0 ? r->early[0].t : INFINITY;
            if (!(tf < T) && !(te < T))
                break;
            if (tf <= te) {
                if (on_fault(r, r->heap[0], tf))
                    goto out;
            } else {
                tev e = r->early[0];
                early_pop(r);
                if (on_early(r, e))
                    goto out;
            }
        }
        if (tick == r->K)
            break;
        /* joins, builds */
        for (int i = r->join_at[tick]; i < r->join_at[tick + 1]; i++)
            if (on_join(r, r->join_list[i] / r->nb, T, r->join_list[i] % r->nb, tick))
                goto out;
        for (int i = r->up_at[tick]; i < r->up_at[tick + 1]; i++)
            if (on_upgrade(r, r->up_list[i] / r->nb, T, r->up_list[i] % r->nb, tick))
                goto out;
        if (decide_due(r, tick))
            goto out;
        if (series && T >= r->next_sample - 1e-9) {
            if (sample(r, T))
                goto out;
            r->next_sample = T + sc->series_s;
        }
    }
    /* the end: overhead, the oracle's, per buggy version */
    for (int i = 0; i < r->ncls; i++)
        acct(r, r->cls[i], r->D);
    for (int i = 0; i < r->ncls; i++)
        if (r->cls[i]->active && r->cls[i]->count)
            offer(r, r->cls[i]);
    gb_time(r, r->D, o->tgb);
    for (int j = 0; j < N; j++)
        if (r->in[j].join_t < r->D)
            r->life_s += r->D - r->in[j].join_t;
    if (series && sample(r, r->D))
        goto out;
    o->overhead_req = r->ov_req;
    o->cost += r->ov_req;
    o->overhead_share = r->life_s > 0 ? r->share_int / r->life_s : 0;
    o->installation_days = r->life_s / 86400;
    double *delays = malloc(sizeof *delays * (size_t)(r->ncls + 1));
    double *weights = malloc(sizeof *weights * (size_t)(r->ncls + 1));
    if (!delays || !weights) {
        free(delays), free(weights);
        fail(r, "out of memory");
        goto out;
    }
    for (int bk = 0; bk < r->nbv; bk++) {
        qsim_bug_result *B = &o->bugs[bk];
        int nd = 0;
        double first = INFINITY, iso = 0;
        for (int i = 0; i < r->ncls; i++) {
            klass *k = r->cls[i];
            if (!k->count || k->exp_start[bk] < 0)
                continue;
            B->exposed += k->count;
            double d = k->iso_at[bk] >= 0 ? k->iso_at[bk] - k->exp_start[bk] : INFINITY;
            if (k->iso_at[bk] >= 0) {
                iso += k->count;
                if (k->iso_at[bk] < first)
                    first = k->iso_at[bk];
            }
            delays[nd] = d;
            weights[nd++] = k->count;
        }
        /* the median, weighted by the classes' sizes */
        for (int a = 1; a < nd; a++)
            for (int b2 = a; b2 > 0 && delays[b2] < delays[b2 - 1]; b2--) {
                double x = delays[b2];
                delays[b2] = delays[b2 - 1], delays[b2 - 1] = x;
                x = weights[b2];
                weights[b2] = weights[b2 - 1], weights[b2 - 1] = x;
            }
        double acc = 0;
        B->median_isolated_s = -1;
        for (int i = 0; i < nd; i++) {
            acc += weights[i];
            if (acc >= B->exposed / 2) {
                B->median_isolated_s = isfinite(delays[i]) ? delays[i] : -1;
                break;
            }
        }
        B->isolated_share = B->exposed > 0 ? iso / B->exposed : 0;
        double fs = r->first_start[r->bv[bk]];
        fs = isfinite(fs) && fs > 0 ? fs : 0; /* history before the run started is not a delay */
        B->first_isolated_s = isfinite(first) ? first - fs : -1;
        o->exposures += B->exposed;
    }
    free(delays);
    free(weights);
    o->host_crashes_per_inst_bug = o->exposures > 0 ? o->host_crashes / o->exposures : 0;
    o->classes = 0;
    for (int i = 0; i < r->ncls; i++)
        o->classes += r->cls[i]->count > 0;
out:
    run_free(r);
    o->wall_s = qs_mono_s() - t0;
    return r->failed ? -1 : 0;
}

/* Each run's oracle cost: its faults and its installations' time, priced
 * with the oracle's plans. */
static int price(const qsim_scenario *sc, const grp *gr, const double *rv, const oracle *orc,
                 qsim_result *res) {
    int *bcomp = calloc((size_t)sc->n + 1, sizeof *bcomp), *bslot = calloc((size_t)sc->n + 1,
                                                                           sizeof *bslot);
    int ngb = sc->ng * sc->nb;
    double *fcost = NULL;
    if (!bcomp || !bslot) {
        free(bcomp), free(bslot);
        return -1;
    }
    int nbc = bug_slots(sc, rv, bcomp, bslot), w = nbc ? nbc : 1;
    fcost = calloc((size_t)ngb * w, sizeof *fcost);
    if (!fcost) {
        free(bcomp), free(bslot);
        return -1;
    }
    double wf = sc->set.failure_weight;
    for (int gb = 0; gb < ngb; gb++)
        for (int s = 0; s < nbc; s++) {
            const oplan *P = &orc->p[gb];
            int d = P->dom[bcomp[s]];
            fcost[gb * w + s] = d ? wf * (1 + P->F[d]) + sc->recovery_s * P->R[d]
                                  : wf * gr[gb / sc->nb].chost;
        }
    for (int i = 0; i < res->nruns; i++) {
        qsim_mode_result *o = &res->runs[i];
        double fc = 0, ov = 0, sh = 0;
        for (int gb = 0; gb < ngb; gb++) {
            for (int s = 0; s < nbc; s++)
                fc += o->fc[gb * w + s] * fcost[gb * w + s];
            ov += o->tgb[gb] * orc->p[gb].ovreq;
            sh += o->tgb[gb] * orc->p[gb].share;
        }
        o->oracle_cost = fc + ov;
        o->regret = o->cost - o->oracle_cost;
        double life = o->installation_days * 86400;
        o->oracle_overhead_share = life > 0 ? sh / life : 0;
        for (int k = 0; k < o->nsamples; k++) {
            double c = 0;
            for (int gb = 0; gb < ngb; gb++) {
                for (int s = 0; s < nbc; s++)
                    c += o->sfc[((size_t)k * ngb + gb) * w + s] * fcost[gb * w + s];
                c += o->stgb[(size_t)k * ngb + gb] * orc->p[gb].ovreq;
            }
            o->samples[k].oracle_cost = c;
        }
    }
    free(bcomp), free(bslot), free(fcost);
    return 0;
}

/* ---- the fleet of runs: modes x seeds over threads --------------------------------------- */

typedef struct pool {
    const qsim_scenario *sc;
    grp *gr;
    const double *rv;
    qsim_result *res;
    const qsim_options *o;
    qp_mode *modes;
    int nmodes;
    pthread_mutex_t mu;
    int next, failed;
    char err[512];
} pool;

static void *worker(void *arg) {
    pool *p = arg;
    int nseeds = p->res->nruns / p->nmodes;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int t = p->failed ? p->res->nruns : p->next++;
        pthread_mutex_unlock(&p->mu);
        if (t >= p->res->nruns)
            return NULL;
        /* the dearest runs first (a sceptical mode's, with more boundaries to
         * search), so that two threads finish together */
        static const int rank[4] = {2, 3, 0, 1}; /* pessimistic, adaptive, optimistic, cooperative */
        int mi = -1, want = t / nseeds;
        for (int k = 0, seen = 0; k < 4 && mi < 0; k++)
            for (int j = 0; j < p->nmodes; j++)
                if ((int)p->modes[j] == rank[k] && seen++ == want)
                    mi = j;
        int s = t % nseeds, i = s * p->nmodes + mi;
        qp_mode m = p->modes[mi];
        char err[512] = "";
        if (run_one(p->sc, p->gr, p->rv, m, p->o->seed + (uint64_t)s, p->o->series,
                    &p->res->runs[i], err, sizeof err)) {
            pthread_mutex_lock(&p->mu);
            if (!p->failed)
                snprintf(p->err, sizeof p->err, "%s: %.*s", qp_mode_name(m),
                         (int)sizeof p->err - 16, err); /* cut to fit */
            p->failed = 1;
            pthread_mutex_unlock(&p->mu);
        }
    }
}

int qsim_run(const qsim_scenario *sc, const qsim_options *o, qsim_result *res, char *err,
             size_t len) {
    double t0 = qs_mono_s();
    memset(res, 0, sizeof *res);
    qp_mode modes[4];
    int nm = 0;
    for (int m = 0; m < 4; m++)
        if (!o->modes || (o->modes >> m & 1))
            modes[nm++] = (qp_mode)m;
    int nseeds = o->nseeds > 0 ? o->nseeds : 1;
    grp *gr = calloc((size_t)sc->ng, sizeof *gr);
    double *rv = true_rates(sc);
    oracle orc = {0};
    int rc = -1;
    if (!gr || !rv) {
        snprintf(err, len, "out of memory");
        goto out;
    }
    for (int g = 0; g < sc->ng; g++)
        if (grp_init(sc, &sc->groups[g], &gr[g])) {
            snprintf(err, len, "out of memory");
            goto out;
        }
    res->nruns = nseeds * nm;
    res->runs = calloc((size_t)res->nruns, sizeof *res->runs);
    if (!res->runs) {
        snprintf(err, len, "out of memory");
        goto out;
    }
    pool p = {.sc = sc, .gr = gr, .rv = rv, .res = res, .o = o, .modes = modes, .nmodes = nm};
    pthread_mutex_init(&p.mu, NULL);
    int jobs = o->jobs > 0 ? o->jobs : 2;
    if (jobs > res->nruns)
        jobs = res->nruns;
    pthread_t th[64];
    int started = 0;
    for (int i = 1; i < jobs && i < 64; i++)
        if (!pthread_create(&th[started], NULL, worker, &p))
            started++;
    worker(&p);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.mu);
    if (p.failed) {
        snprintf(err, len, "%s", p.err);
        goto out;
    }
    /* the oracle, and what it would have cost over each run's faults */
    if (oracle_build(sc, gr, rv, res, &orc, err, len) || price(sc, gr, rv, &orc, res)) {
        if (!err[0])
            snprintf(err, len, "out of memory");
        goto out;
    }
    res->noracle = sc->ng * sc->nb;
    res->oracle_plans = calloc((size_t)res->noracle, sizeof *res->oracle_plans);
    res->oracle_objective = calloc((size_t)res->noracle, sizeof *res->oracle_objective);
    qp_comp *names = calloc((size_t)sc->n + 1, sizeof *names);
    if (!res->oracle_plans || !res->oracle_objective || !names) {
        free(names);
        snprintf(err, len, "out of memory");
        goto out;
    }
    for (int c = 0; c < sc->n; c++)
        names[c].name = sc->comps[c].name;
    for (int i = 0; i < res->noracle; i++) {
        int need = qp_plan_format(names, orc.p[i].dom, sc->n, NULL, 0);
        res->oracle_plans[i] = malloc((size_t)need + 1);
        if (res->oracle_plans[i])
            qp_plan_format(names, orc.p[i].dom, sc->n, res->oracle_plans[i], (size_t)need + 1);
        res->oracle_objective[i] = orc.p[i].objective;
    }
    free(names);
    rc = 0;
out:
    if (gr)
        for (int g = 0; g < sc->ng; g++)
            grp_free(&gr[g]);
    free(gr);
    free(rv);
    oracle_free(&orc);
    res->wall_s = qs_mono_s() - t0;
    if (rc)
        qsim_result_free(res);
    return rc;
}

void qsim_result_free(qsim_result *res) {
    for (int i = 0; i < res->nruns && res->runs; i++) {
        qsim_mode_result *o = &res->runs[i];
        free(o->bugs), free(o->samples), free(o->fc), free(o->sfc), free(o->tgb), free(o->stgb),
            free(o->cand), free(o->candw);
    }
    free(res->runs);
    for (int i = 0; i < res->noracle && res->oracle_plans; i++)
        free(res->oracle_plans[i]);
    free(res->oracle_plans);
    free(res->oracle_objective);
    memset(res, 0, sizeof *res);
}

const qsim_mode_result *qsim_find(const qsim_result *res, qp_mode m, int s) {
    for (int i = 0; i < res->nruns; i++)
        if (res->runs[i].mode == m && res->runs[i].seed == res->runs[0].seed + (uint64_t)s)
            return &res->runs[i];
    return NULL;
}
