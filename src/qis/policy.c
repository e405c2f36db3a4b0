/* policy.c - the isolation policy (see policy.h for the model). */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

/* Fallbacks before there is data (docs/policy.md). */
#define FB_RESTART_S 1.0    /* a server takes about a second to be back */
#define FB_INFLIGHT_S 0.01  /* requests in flight: 10 ms of work */
#define FB_RECOVERY_S 0.001 /* a domain restart: a millisecond */
#define FB_CROSSING_S 2e-5  /* a crossing in a loaded server on a shared machine */
#define FB_BYTE_S 0.5e-9    /* copying, twice, with the cache misses */
#define FB_CALL_S 5e-5      /* a call's duration, for calls in flight */
#define BUDGET_SLACK 0.25   /* a plan in force may exceed the budget by a quarter of it */
#define PROVEN 0.5          /* faults and host crashes blamed (shares, here and pooled) that
                               make a component's faults proven: the budget does not keep
                               its boundary out (the objective still decides) */
#define MIN_CPU 1.0         /* the program counts as using a core at least: an idle
                               program's boundaries cost latency, not capacity */

static const char *const mode_names[] = {"adaptive", "optimistic", "pessimistic", "cooperative"};

int qp_mode_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, mode_names[i]))
            return i;
    return -1;
}

const char *qp_mode_name(qp_mode m) {
    return (unsigned)m < 4 ? mode_names[m] : "?";
}

void qp_settings_default(qp_settings *s) {
    memset(s, 0, sizeof *s);
    s->mode = QP_ADAPTIVE;
    s->budget = 0.25;
    s->failure_weight = 10;
    s->half_life_s = 7 * 86400.0;
    s->confidence = 0.95;
    s->trusting_a = 1e-4; /* a fault in 10^8 calls, held as weakly as 10^4 calls */
    s->trusting_b = 1e4;
    s->sceptical_a = 1; /* a fault in 1,000 calls, until calls say otherwise */
    s->sceptical_b = 1e3;
    s->trust_calls = 1e6;
    s->min_gain = 0.01;
    s->min_gain_share = 0.05;
    s->dwell_s = 60;
    s->max_changes_per_hour = 6;
    s->max_domains = 32;
}

/* ---- discounting ---------------------------------------------------------- */

static double discount(double dt, double h) {
    return h > 0 && dt > 0 ? exp2(-dt / h) : 1;
}

void qp_decay_add(double *sum, double *at, double t, double x, double h) {
    if (t >= *at) {
        *sum = *sum * discount(t - *at, h) + x;
        *at = t;
    } else {
        *sum += x * discount(*at - t, h);
    }
}

double qp_decay_at(double sum, double at, double t, double h) {
    return sum * discount(t - at, h);
}

/* ---- the Gamma distribution ----------------------------------------------- */

double qp_gamma_p(double a, double x) {
    if (!(a > 0) || !(x > 0))
        return 0;
    double lg = lgamma(a);
    if (x < a + 1) { /* the series */
        double ap = a, sum = 1 / a, del = sum;
        for (int i = 0; i < 1000; i++) {
            ap += 1;
            del *= x / ap;
            sum += del;
            if (fabs(del) < fabs(sum) * 1e-15)
                break;
        }
        return sum * exp(-x + a * log(x) - lg);
    }
    /* the continued fraction for Q, by Lentz's method */
    double b = x + 1 - a, c = 1 / DBL_MIN, d = 1 / b, h = d;
    for (int i = 1; i < 1000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (fabs(d) < DBL_MIN)
            d = DBL_MIN;
        c = b + an / c;
        if (fabs(c) < DBL_MIN)
            c = DBL_MIN;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-15)
            break;
    }
    return 1 - exp(-x + a * log(x) - lg) * h;
}

/* Quantile of Gamma(a, 1): Newton's method on P from the Wilson-Hilferty
 * guess, kept inside a bracket that bisection narrows when Newton strays. */
static double gamma1_quantile(double a, double q) {
    if (q <= 0)
        return 0;
    if (q >= 1)
        return INFINITY;
    /* normal quantile (Acklam's rational approximation is more than enough
     * for a starting point) */
    double t = sqrt(-2 * log(q < 0.5 ? q : 1 - q));
    double z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
                       (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
    if (q < 0.5)
        z = -z;
    double x;
    if (a >= 1) {
        double k = 1 / (9 * a);
        x = a * pow(1 - k + z * sqrt(k), 3);
    } else {
        x = pow(q * tgamma(a + 1), 1 / a); /* P(a, x) ~ x^a / Gamma(a + 1) near 0 */
    }
    if (!(x > 0) || !isfinite(x))
        x = a;
    double lo = 0, hi = INFINITY, lg = lgamma(a);
    for (int i = 0; i < 100; i++) {
        double p = qp_gamma_p(a, x);
        if (p < q)
            lo = x;
        else
            hi = x;
        double dens = exp((a - 1) * log(x) - x - lg);
        double nx = dens > 0 ? x - (p - q) / dens : NAN;
        if (!(nx > lo && nx < hi)) /* Newton left the bracket: bisect */
            nx = isfinite(hi) ? (lo + hi) / 2 : (x > 0 ? 2 * x : 1);
        if (fabs(nx - x) <= 1e-12 * x) {
            x = nx;
            break;
        }
        x = nx;
    }
    return x;
}

double qp_gamma_quantile(double a, double b, double q) {
    if (!(a > 0) || !(b > 0))
        return INFINITY;
    return gamma1_quantile(a, q) / b;
}

/* ---- the model ------------------------------------------------------------ */

/* Everything the search needs, derived once from the inputs. */
typedef struct model {
    int n, ne, maxd;
    const qp_comp *c;
    const qp_edge *e;
    const qp_settings *s;
    double *lam;    /* fault rate per call the mode decides by */
    double *lr;     /* lam x calls per second */
    double *rt;     /* calls in flight (calls/s x call time) */
    double *ew;     /* per edge: CPU seconds per second while it crosses */
    int *adj, *adj_at; /* edges per component (CSR) */
    int *order;     /* components, the most worth a boundary first */
    char *proven;   /* its faults are proven (PROVEN): a boundary for it is a repair,
                       not insurance, and the budget does not bind it */
    double chost;   /* requests lost per host crash */
    double rec;     /* domain recovery (s) */
    double rps, util, base_cpu;
    double wf;
} model;

/* The decision's state: an assignment and its aggregates. */
typedef struct plan {
    int *dom;
    double *A, *F, *R; /* per domain: sum lam r, sum r t, sum r */
    int *cnt;
    double H;          /* sum lam r of host components */
    double ov;         /* CPU seconds per second of crossings */
} plan;

static double share_of(const model *m, double ov) {
    return ov > 0 ? ov / (m->base_cpu + ov) : 0;
}

static double capacity_loss(const model *m, double ov) {
    return m->rps * m->util * share_of(m, ov);
}

/* What the faults of one domain cost per second, weighted: the calls in
 * flight there fail (the faulting one and, by Little's law, the others),
 * and the calls that arrive while it recovers wait (they are slowed, not
 * failed: the runtime holds them until the new process serves). */
static double dom_cost(const model *m, double A, double F, double R) {
    return m->wf * A * (1 + F) + A * m->rec * R;
}

static double objective(const model *m, const plan *p) {
    double l = m->wf * m->chost * p->H;
    for (int d = 1; d <= m->maxd; d++)
        if (p->cnt[d])
            l += dom_cost(m, p->A[d], p->F[d], p->R[d]);
    return l + capacity_loss(m, p->ov);
}

static int edge_dom(const plan *p, int comp) { return comp < 0 ? 0 : p->dom[comp]; }

/* The k-th edge of component i (CSR), and the component at its other end
 * (-1: the program); NULL for an edge from a component to itself, which
 * never crosses. */
static const qp_edge *edge_of(const model *m, int i, int k, int *other) {
    const qp_edge *E = &m->e[m->adj[k]];
    if (E->caller == E->callee)
        return NULL;
    *other = E->callee == i ? E->caller : E->callee;
    return E;
}

static bool crosses(const model *m, const plan *p, int e) {
    const qp_edge *E = &m->e[e];
    if (E->caller == E->callee)
        return false;
    return edge_dom(p, E->caller) != p->dom[E->callee];
}

static void plan_fill(const model *m, plan *p) {
    memset(p->A, 0, sizeof *p->A * (size_t)(m->maxd + 1));
    memset(p->F, 0, sizeof *p->F * (size_t)(m->maxd + 1));
    memset(p->R, 0, sizeof *p->R * (size_t)(m->maxd + 1));
    memset(p->cnt, 0, sizeof *p->cnt * (size_t)(m->maxd + 1));
    p->H = 0;
    p->ov = 0;
    for (int i = 0; i < m->n; i++) {
        int d = p->dom[i];
        p->cnt[d]++;
        if (d == 0) {
            p->H += m->lr[i];
        } else {
            p->A[d] += m->lr[i];
            p->F[d] += m->rt[i];
            p->R[d] += m->c[i].calls_per_s;
        }
    }
    for (int e = 0; e < m->ne; e++)
        if (crosses(m, p, e))
            p->ov += m->ew[e];
}

/* Change of overhead if component i moved to domain to. */
static double delta_ov(const model *m, const plan *p, int i, int to) {
    double d = 0;
    for (int k = m->adj_at[i], other; k < m->adj_at[i + 1]; k++) {
        if (!edge_of(m, i, k, &other))
            continue;
        int od = edge_dom(p, other);
        d += m->ew[m->adj[k]] * ((to != od) - (p->dom[i] != od));
    }
    return d;
}

/* Change of the weighted cost of faults if i moved to `to`. */
static double delta_fail(const model *m, const plan *p, int i, int to) {
    int from = p->dom[i];
    double lr = m->lr[i], rt = m->rt[i], r = m->c[i].calls_per_s, d = 0;
    if (from == 0)
        d -= m->wf * m->chost * lr;
    else
        d += dom_cost(m, p->A[from] - lr, p->F[from] - rt, p->R[from] - r) -
             dom_cost(m, p->A[from], p->F[from], p->R[from]);
    if (to == 0)
        d += m->wf * m->chost * lr;
    else
        d += dom_cost(m, p->A[to] + lr, p->F[to] + rt, p->R[to] + r) -
             (p->cnt[to] ? dom_cost(m, p->A[to], p->F[to], p->R[to]) : 0);
    return d;
}

static void apply_move(const model *m, plan *p, int i, int to) {
    double dov = delta_ov(m, p, i, to);
    int from = p->dom[i];
    double lr = m->lr[i], rt = m->rt[i], r = m->c[i].calls_per_s;
    if (from == 0) {
        p->H -= lr;
    } else {
        p->A[from] -= lr, p->F[from] -= rt, p->R[from] -= r;
    }
    p->cnt[from]--;
    if (to == 0) {
        p->H += lr;
    } else {
        p->A[to] += lr, p->F[to] += rt, p->R[to] += r;
    }
    p->cnt[to]++;
    p->dom[i] = to;
    p->ov += dov;
}

/* Faults in a shared domain that could not be pinned on one component keep
 * the components concerned apart, so that the next fault says which. */
static bool ambiguous_with(const model *m, const plan *p, int i, int d) {
    if (d == 0 || !(m->c[i].ambiguous > 0))
        return false;
    for (int j = 0; j < m->n; j++)
        if (j != i && p->dom[j] == d && m->c[j].ambiguous > 0)
            return true;
    return false;
}

static int fresh_domain(const model *m, const plan *p) {
    for (int d = 1; d <= m->maxd; d++)
        if (!p->cnt[d])
            return d;
    return -1;
}

typedef struct move {
    int to;
    double dj, dov;
} move;

/* What best_move asks of the domains, valid while the plan does not change:
 * the first unused domain, and the used ones with the least load, the first
 * of equals (lo1), and the same without lo1 (lo2); -1 for none. `exact` is
 * false if a load is NaN (the order of a scan then matters). */
typedef struct doms {
    int fresh, lo1, lo2;
    bool exact;
} doms;

static void doms_scan(const model *m, const plan *p, doms *s) {
    s->fresh = fresh_domain(m, p);
    s->lo1 = s->lo2 = -1;
    s->exact = true;
    for (int d = 1; d <= m->maxd; d++)
        if (p->cnt[d]) {
            s->exact &= !isnan(p->A[d]);
            if (s->lo1 < 0 || p->A[d] < p->A[s->lo1])
                s->lo1 = d;
        }
    for (int d = 1; d <= m->maxd; d++)
        if (p->cnt[d] && d != s->lo1 && (s->lo2 < 0 || p->A[d] < p->A[s->lo2]))
            s->lo2 = d;
}

/* Whether the budget lets a move that adds dov of overhead be made: moves
 * that lower the overhead always (the budget is repaired by them), moves
 * of a component whose faults are proven always (the objective decides),
 * others only within the budget. */
static bool budget_allows(const model *m, const plan *p, int i, double dov) {
    return dov <= 0 || m->proven[i] || share_of(m, p->ov + dov) <= m->s->budget + 1e-12;
}

/* Whether a plan keeps to the budget: within it, or over it only by
 * boundaries the budget does not bind (no boundary left whose removal
 * would lower the overhead is of a component without proven faults). */
static bool keeps_budget(const model *m, const plan *p, double slack) {
    if (share_of(m, p->ov) <= m->s->budget * (1 + slack) + 1e-12)
        return true;
    for (int i = 0; i < m->n; i++)
        if (p->dom[i] && !m->c[i].pinned && !m->proven[i] && delta_ov(m, p, i, 0) < 0)
            return false;
    return true;
}

/* The best move for component i, or to = -1, among those the budget
 * allows. */
static move best_move(const model *m, const plan *p, const doms *ds, int i, int *cand) {
    move best = {-1, 0, 0};
    if (m->c[i].pinned)
        return best;
    int from = p->dom[i], nc = 0;
    cand[nc++] = 0;
    if (!(from > 0 && p->cnt[from] == 1)) {
        int f = ds->fresh;
        if (f < 0 && ds->exact) /* none left: the least loaded one */
            f = ds->lo1 != from ? ds->lo1 : ds->lo2;
        else if (f < 0)
            for (int d = 1; d <= m->maxd; d++)
                if (p->cnt[d] && d != from && (f < 0 || p->A[d] < p->A[f]))
                    f = d;
        if (f > 0)
            cand[nc++] = f;
    }
    for (int k = m->adj_at[i]; k < m->adj_at[i + 1] && nc < 2 + 16; k++) {
        const qp_edge *E = &m->e[m->adj[k]];
        int other = E->callee == i ? E->caller : E->callee;
        int od = other < 0 ? 0 : p->dom[other];
        if (od <= 0)
            continue;
        bool dup = false;
        for (int j = 0; j < nc; j++)
            dup |= cand[j] == od;
        if (!dup)
            cand[nc++] = od;
    }
    double cap_now = capacity_loss(m, p->ov);
    for (int j = 0; j < nc; j++) {
        int to = cand[j];
        if (to == from || ambiguous_with(m, p, i, to))
            continue;
        double dov = delta_ov(m, p, i, to);
        if (!budget_allows(m, p, i, dov))
            continue;
        double dj = delta_fail(m, p, i, to) + capacity_loss(m, p->ov + dov) - cap_now;
        if (dj < best.dj - 1e-15 * (1 + fabs(best.dj))) {
            best.to = to;
            best.dj = dj;
            best.dov = dov;
        }
    }
    return best;
}

/* Moves components one at a time, the most worth protecting first, while
 * that lowers the objective. */
static void improve(const model *m, plan *p, int *cand) {
    doms ds;
    doms_scan(m, p, &ds);
    for (int pass = 0; pass < 64; pass++) {
        bool moved = false;
        for (int k = 0; k < m->n; k++) {
            int i = m->order[k];
            move mv = best_move(m, p, &ds, i, cand);
            if (mv.to >= 0 && mv.dj < -1e-12 * (1 + fabs(objective(m, p)))) {
                apply_move(m, p, i, mv.to);
                doms_scan(m, p, &ds);
                moved = true;
            }
        }
        if (!moved)
            break;
    }
}

/* A component the budget keeps out, worth more than boundaries drawn for
 * others: their boundaries go (the least worth first) when that makes
 * room for its own and lowers the objective. Returns whether one did. */
static bool swap_in(const model *m, plan *p) {
    int moved_j[8], from_j[8];
    for (int k = 0; k < m->n; k++) {
        int i = m->order[k];
        if (p->dom[i] || m->c[i].pinned || m->proven[i] || !(m->lr[i] > 0))
            continue; /* (the budget keeps no proven component out) */
        int f = fresh_domain(m, p);
        if (f < 0)
            continue;
        double dov = delta_ov(m, p, i, f);
        if (share_of(m, p->ov + dov) <= m->s->budget + 1e-12)
            continue; /* not kept out by the budget */
        double gain = delta_fail(m, p, i, f) + capacity_loss(m, p->ov + dov) -
                      capacity_loss(m, p->ov);
        if (gain >= 0)
            continue; /* not worth a boundary even with room for it */
        double before = objective(m, p);
        int nj = 0;
        for (int kk = m->n - 1; kk > k && nj < 8; kk--) {
            int j = m->order[kk];
            if (!p->dom[j] || m->c[j].pinned || m->proven[j])
                continue;
            from_j[nj] = p->dom[j];
            moved_j[nj++] = j;
            apply_move(m, p, j, 0);
            f = fresh_domain(m, p);
            if (f < 0 || share_of(m, p->ov + delta_ov(m, p, i, f)) > m->s->budget + 1e-12)
                continue;
            apply_move(m, p, i, f);
            if (objective(m, p) < before - 1e-12 * (1 + fabs(before)))
                return true;
            apply_move(m, p, i, 0);
            break;
        }
        while (nj > 0) { /* no better: as it was */
            nj--;
            apply_move(m, p, moved_j[nj], from_j[nj]);
        }
    }
    return false;
}

static void shed(const model *m, plan *p);

static void local_search(const model *m, plan *p, int *cand) {
    /* components with faults that could not be pinned on one of them do not
     * share a domain: split them (to a domain of their own, or the host) */
    for (int i = 0; i < m->n; i++)
        if (p->dom[i] && !m->c[i].pinned && ambiguous_with(m, p, i, p->dom[i])) {
            int f = fresh_domain(m, p);
            apply_move(m, p, i, f > 0 ? f : 0);
        }
    for (int round = 0; round < 16; round++) {
        shed(m, p);
        improve(m, p, cand);
        /* a proven component's boundary may have taken the budget from
         * insurance drawn before it: shed that, and search again */
        if (keeps_budget(m, p, 0) && !swap_in(m, p))
            break;
    }
    if (!keeps_budget(m, p, 0)) /* the rounds ran out: the budget first */
        shed(m, p);
}

/* Over the budget (the plan in force, or costs that rose): sheds the
 * boundaries that cost the most overhead for the least protection, those
 * of components with proven faults never (the objective may still move
 * them). */
static void shed(const model *m, plan *p) {
    while (share_of(m, p->ov) > m->s->budget + 1e-12) {
        int bi = -1;
        double best = 0;
        for (int i = 0; i < m->n; i++) {
            if (p->dom[i] == 0 || m->c[i].pinned || m->proven[i])
                continue;
            double dov = delta_ov(m, p, i, 0);
            if (dov >= 0)
                continue;
            double cost = delta_fail(m, p, i, 0) + 1e-300;
            double ratio = -dov / cost;
            if (bi < 0 || ratio > best)
                bi = i, best = ratio;
        }
        if (bi < 0)
            break;
        apply_move(m, p, bi, 0);
    }
}

/* Renumbers the domains of `dom` to keep those of the plan in force where
 * they hold the same components (a domain that keeps its number keeps its
 * process). `size` and `tally` are scratch for maxd + 1 counts each. */
static void renumber(const model *m, int *dom, int *map, int *taken, int *size, int *tally) {
    int maxd = m->maxd;
    for (int d = 0; d <= maxd; d++)
        map[d] = -1, taken[d] = 0, size[d] = tally[d] = 0;
    map[0] = 0;
    taken[0] = 1;
    for (int i = 0; i < m->n; i++)
        size[dom[i]]++;
    /* each new domain takes the number of the old domain most of its members had */
    for (int d = 1; d <= maxd; d++) {
        if (!size[d])
            continue;
        for (int i = 0; i < m->n; i++)
            if (dom[i] == d)
                tally[m->c[i].domain]++;
        int best = -1, bestn = 0;
        for (int old = 1; old <= maxd; old++) {
            if (!taken[old] && tally[old] > bestn)
                best = old, bestn = tally[old];
            tally[old] = 0;
        }
        tally[0] = 0;
        if (best > 0) {
            map[d] = best;
            taken[best] = 1;
        }
    }
    for (int d = 1; d <= maxd; d++) {
        if (map[d] >= 0 || !size[d])
            continue;
        for (int nd = 1; nd <= maxd; nd++)
            if (!taken[nd]) {
                map[d] = nd;
                taken[nd] = 1;
                break;
            }
    }
    for (int i = 0; i < m->n; i++)
        dom[i] = map[dom[i]];
}

/* ---- words ------------------------------------------------------------------ */

static void human(char *buf, size_t len, double v) {
    if (v >= 1e9)
        snprintf(buf, len, "%.1fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, len, "%.1fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, len, "%.0fk", v / 1e3);
    else
        snprintf(buf, len, "%.0f", v);
}

/* A loss per hour in words. */
static void per_hour(char *buf, size_t len, double v) {
    if (v >= 100)
        snprintf(buf, len, "%.0f", v);
    else if (v >= 1)
        snprintf(buf, len, "%.1f", v);
    else if (v >= 0.001)
        snprintf(buf, len, "%.3f", v);
    else
        snprintf(buf, len, "%.1g", v);
}

static void pct(char *buf, size_t len, double share) {
    if (share >= 0.1)
        snprintf(buf, len, "%.0f%%", 100 * share);
    else if (share >= 0.001)
        snprintf(buf, len, "%.1f%%", 100 * share);
    else
        snprintf(buf, len, "%.2g%%", 100 * share);
}

/* A count, discounted: a fraction below 100, whole above. */
static void count(char *buf, size_t len, double v) {
    if (v < 99.5)
        snprintf(buf, len, "%.2g", v);
    else
        human(buf, len, v);
}

/* What the evidence says, in a few words. */
static void evidence_words(const qp_comp *c, char *buf, size_t len) {
    char calls[32], hb[32], fl[32];
    human(calls, sizeof calls, c->calls);
    count(hb, sizeof hb, c->host_blame);
    count(fl, sizeof fl, c->faults);
    size_t n = 0;
    if (c->host_blame > 0.005)
        n += (size_t)snprintf(buf + n, len - n, "%s host crash%s blamed, ", hb,
                              c->host_blame > 1.005 || c->host_blame < 0.995 ? "es" : "");
    if (n < len && c->faults > 0.005)
        n += (size_t)snprintf(buf + n, len - n, "%s fault%s while isolated, ", fl,
                              c->faults > 1.005 || c->faults < 0.995 ? "s" : "");
    if (n < len) {
        if (c->host_blame > 0.005 || c->faults > 0.005)
            snprintf(buf + n, len - n, "%s calls", calls);
        else
            snprintf(buf + n, len - n, "%s calls without a fault", calls);
    }
}

static const char *code_words(qp_code c) {
    switch (c) {
    case QP_CODE_NEW: return "new code";
    case QP_CODE_CHANGED: return "changed code (earlier evidence reset)";
    case QP_CODE_UNKNOWN: return "code identity unknown (each build is new code)";
    default: return "same code as before";
    }
}

/* ---- deciding ------------------------------------------------------------- */

/* The last quantile of Gamma(shape, 1) computed in a decision: most
 * components share their prior's shape (no faults yet), and the quantile
 * costs a root search. */
typedef struct qcache {
    double shape, q, x;
} qcache;

/* The rate component c is judged by, and the prior's name. */
static double judged_rate(const qp_comp *c, const qp_settings *s, qp_why *w, qcache *qc) {
    double a, b;
    bool upper;
    double pk = c->pool_faults + c->pool_host_blame, pn = c->pool_calls;
    switch (s->mode) {
    case QP_OPTIMISTIC:
        a = s->trusting_a, b = s->trusting_b, upper = false;
        w->prior = "trusting";
        break;
    case QP_PESSIMISTIC:
        a = s->sceptical_a, b = s->sceptical_b, upper = true;
        w->prior = "sceptical";
        break;
    case QP_COOPERATIVE:
        a = s->trusting_a + pk, b = s->trusting_b + pn, upper = false;
        w->prior = c->pool_installations > 0 ? "pooled" : "trusting";
        break;
    default:
        if (c->clean_calls >= s->trust_calls) {
            a = s->trusting_a + pk, b = s->trusting_b + pn, upper = false;
            w->prior = c->pool_installations > 0 ? "pooled, trusting" : "trusting";
        } else {
            a = s->sceptical_a + pk, b = s->sceptical_b + pn, upper = true;
            w->prior = c->pool_installations > 0 ? "pooled, sceptical" : "sceptical";
        }
    }
    double k = c->faults + c->host_blame, n = c->calls;
    w->rate_mean = (a + k) / (b + n);
    if (!(a + k > 0) || !(b + n > 0)) {
        w->rate_upper = INFINITY;
    } else {
        if (qc->shape != a + k || qc->q != s->confidence) {
            qc->shape = a + k;
            qc->q = s->confidence;
            qc->x = gamma1_quantile(a + k, s->confidence);
        }
        w->rate_upper = qc->x / (b + n); /* qp_gamma_quantile(a + k, b + n, confidence) */
    }
    w->rate = upper ? w->rate_upper : w->rate_mean;
    return w->rate;
}

/* Orders the components by what a boundary of their own would save per
 * unit of its overhead (ties: by index, so the order is deterministic). */
static int by_worth(const void *a, const void *b, void *ctx) {
    const double *key = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (key[i] != key[j])
        return key[i] > key[j] ? -1 : 1;
    return i - j;
}

static void order_by_worth(const model *m, double *key) {
    for (int i = 0; i < m->n; i++) {
        double saves = m->wf * m->chost * m->lr[i] - dom_cost(m, m->lr[i], m->rt[i],
                                                              m->c[i].calls_per_s);
        double cost = 0;
        for (int k = m->adj_at[i]; k < m->adj_at[i + 1]; k++)
            cost += m->ew[m->adj[k]];
        key[i] = saves / (cost + 1e-15);
        m->order[i] = i;
    }
    qsort_r(m->order, (size_t)m->n, sizeof *m->order, by_worth, key);
}

static int check_input(const qp_comp *comps, int n, const qp_edge *edges, int ne,
                       const qp_settings *s, char *why, size_t len) {
    if (n < 0 || ne < 0 || (n && !comps) || (ne && !edges)) {
        snprintf(why, len, "malformed input");
        return -1;
    }
    if (s->max_domains < 1 || s->max_domains > 4096 || !(s->budget >= 0 && s->budget <= 1) ||
        !(s->failure_weight > 0) || !(s->confidence > 0 && s->confidence < 1) ||
        !(s->trusting_a > 0 && s->trusting_b > 0 && s->sceptical_a > 0 && s->sceptical_b > 0) ||
        !(s->half_life_s >= 0) || (unsigned)s->mode > QP_COOPERATIVE) {
        snprintf(why, len, "malformed settings");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const qp_comp *c = &comps[i];
        if (c->domain < 0 || c->domain > s->max_domains || !(c->calls >= 0) ||
            !(c->faults >= 0) || !(c->host_blame >= 0) || !(c->calls_per_s >= 0) ||
            !(c->pool_calls >= 0) || !(c->pool_faults >= 0) || !(c->pool_host_blame >= 0)) {
            snprintf(why, len, "component %d (%s): malformed evidence", i,
                     c->name ? c->name : "?");
            return -1;
        }
    }
    for (int e = 0; e < ne; e++)
        if (edges[e].caller < -1 || edges[e].caller >= n || edges[e].callee < 0 ||
            edges[e].callee >= n || !(edges[e].calls_per_s >= 0)) {
            snprintf(why, len, "edge %d: malformed", e);
            return -1;
        }
    return 0;
}

static void explain(const model *m, const plan *p, const qp_settings *s, qp_why *why, int terse) {
    double base = m->base_cpu + p->ov;
    for (int i = 0; i < m->n; i++) {
        const qp_comp *c = &m->c[i];
        qp_why *w = &why[i];
        int d = p->dom[i];
        w->domain = d;
        double r = c->calls_per_s;
        w->loss_host_h = w->rate * r * m->chost * 3600;
        /* isolated (in its domain, or alone in one): the calls in flight
         * there fail with each of its faults, and its calls in flight fail
         * with each of its domain-mates' */
        double F = d ? p->F[d] : m->rt[i];
        double mates = d ? p->A[d] - m->lr[i] : 0;
        w->loss_iso_h = (m->lr[i] * (1 + F) + mates * m->rt[i]) * 3600;
        /* the overhead its boundary costs, or would cost alone */
        double marg = 0;
        for (int k = m->adj_at[i], other; k < m->adj_at[i + 1]; k++) {
            if (!edge_of(m, i, k, &other))
                continue;
            int od = edge_dom(p, other);
            if (d ? od != d : 1)
                marg += m->ew[m->adj[k]];
        }
        w->boundary_share = marg / (base + (d ? 0 : marg));
        if (terse) {
            w->reason[0] = 0;
            continue;
        }
        char ev[160], lh[32], li[32], bs[32];
        evidence_words(c, ev, sizeof ev);
        per_hour(lh, sizeof lh, w->loss_host_h);
        per_hour(li, sizeof li, w->loss_iso_h);
        pct(bs, sizeof bs, w->boundary_share);
        const char *code = code_words(c->code);
        int n;
        if (c->pinned) {
            n = snprintf(w->reason, sizeof w->reason, "%s: pinned there; %s",
                         d ? "isolated" : "in the host", ev);
        } else if (d) {
            n = snprintf(w->reason, sizeof w->reason,
                         "isolated: %s; expected loss %s req/h in the host vs %s isolated; "
                         "its boundary costs %s CPU",
                         ev, lh, li, bs);
        } else {
            /* would it pay, were it not for the budget? */
            double gain = m->wf * (w->loss_host_h - w->loss_iso_h) / 3600 -
                          m->lr[i] * m->rec * c->calls_per_s;
            double cost = capacity_loss(m, p->ov + marg) - capacity_loss(m, p->ov);
            if (gain > cost && !m->proven[i] && share_of(m, p->ov + marg) > s->budget + 1e-12) {
                char bud[32], tot[32];
                snprintf(bud, sizeof bud, "%.3g%%", 100 * s->budget);
                pct(tot, sizeof tot, share_of(m, p->ov + marg));
                n = snprintf(w->reason, sizeof w->reason,
                             "isolating costs %s CPU (%s in all), budget %s: stays in the "
                             "host; %s; expected loss %s req/h in the host vs %s isolated",
                             bs, tot, bud, ev, lh, li);
            } else {
                n = snprintf(w->reason, sizeof w->reason,
                             "in the host: %s; expected loss %s req/h in the host vs %s "
                             "isolated; a boundary would cost %s CPU",
                             ev, lh, li, bs);
            }
        }
        if (n < 0 || (size_t)n >= sizeof w->reason)
            continue;
        size_t at = (size_t)n;
        if (d && p->cnt[d] > 1) {
            at += (size_t)snprintf(w->reason + at, sizeof w->reason - at, "; shares domain %d with",
                                   d);
            int shown = 0;
            for (int j = 0; j < m->n && at < sizeof w->reason; j++)
                if (j != i && p->dom[j] == d && shown++ < 3)
                    at += (size_t)snprintf(w->reason + at, sizeof w->reason - at, "%s %s",
                                           shown > 1 ? "," : "", m->c[j].name ? m->c[j].name : "?");
        }
        if (at < sizeof w->reason && c->ambiguous > 0 && d)
            at += (size_t)snprintf(w->reason + at, sizeof w->reason - at,
                                   "; kept apart: faults in a shared domain could not be "
                                   "pinned on one component");
        if (at < sizeof w->reason && d && m->proven[i] && share_of(m, p->ov) > s->budget + 1e-12)
            at += (size_t)snprintf(w->reason + at, sizeof w->reason - at,
                                   "; over the budget of %.3g%%: its faults are proven, and "
                                   "the budget binds only boundaries drawn as insurance",
                                   100 * s->budget);
        if (at < sizeof w->reason && c->rate_assumed)
            at += (size_t)snprintf(w->reason + at, sizeof w->reason - at,
                                   "; call rate not measured yet: %.0f/s assumed", r);
        if (at < sizeof w->reason)
            snprintf(w->reason + at, sizeof w->reason - at, " (%s, %s prior)", code, w->prior);
    }
}

/* What is at stake in the components plan b moves from where plan a has
 * them, per second: each one's expected loss in the host (the most its
 * faults can cost) and the capacity its boundary costs in either plan. */
static double stake(const model *m, const plan *a, const plan *b) {
    double sum = 0;
    for (int i = 0; i < m->n; i++) {
        if (a->dom[i] == b->dom[i])
            continue;
        double marg = 0;
        for (int k = m->adj_at[i], other; k < m->adj_at[i + 1]; k++)
            if (edge_of(m, i, k, &other) &&
                (edge_dom(a, other) != a->dom[i] || edge_dom(b, other) != b->dom[i]))
                marg += m->ew[m->adj[k]];
        sum += m->wf * m->chost * m->lr[i] + capacity_loss(m, marg);
    }
    return sum;
}

static void plan_free(plan *p) {
    free(p->dom);
    free(p->A);
    free(p->F);
    free(p->R);
    free(p->cnt);
}

static int plan_alloc(plan *p, int n, int maxd) {
    memset(p, 0, sizeof *p);
    p->dom = calloc((size_t)n + 1, sizeof *p->dom);
    p->A = calloc((size_t)maxd + 1, sizeof *p->A);
    p->F = calloc((size_t)maxd + 1, sizeof *p->F);
    p->R = calloc((size_t)maxd + 1, sizeof *p->R);
    p->cnt = calloc((size_t)maxd + 1, sizeof *p->cnt);
    if (!p->dom || !p->A || !p->F || !p->R || !p->cnt) {
        plan_free(p);
        return -1;
    }
    return 0;
}

/* The program's CPU without the crossings of the plan in force (ov_now of
 * it): what an overhead is a share of. */
static double base_cpu(double cpu, double ncpu, double ov_now) {
    double floor_cpu = ncpu < MIN_CPU ? ncpu : MIN_CPU;
    return cpu - ov_now > floor_cpu ? cpu - ov_now : floor_cpu;
}

double qp_overhead_share(double ov, double ov_now, const qp_costs *costs) {
    double cpu = costs->cpu_s_per_s > 0 ? costs->cpu_s_per_s : 1.0;
    double base = base_cpu(cpu, costs->ncpu > 0 ? costs->ncpu : 1, ov_now);
    return ov > 0 ? ov / (base + ov) : 0;
}

double qp_edge_cpu(const qp_edge *E, const qp_costs *costs) {
    double xs = costs->crossing_s > 0 ? costs->crossing_s : FB_CROSSING_S;
    double per = E->cross_s > 0 ? E->cross_s : xs;
    double bytes = E->bytes_per_call >= 0 ? E->bytes_per_call : 0;
    double bs = costs->byte_s > 0 ? costs->byte_s : FB_BYTE_S;
    return E->calls_per_s * (per + bytes * bs);
}

int qp_decide(const qp_comp *comps, int n, const qp_edge *edges, int ne, const qp_costs *costs,
              const qp_settings *s, const qp_state *st, qp_result *out) {
    out->changed = out->held = 0;
    out->fallbacks = 0;
    out->summary[0] = 0;
    if (check_input(comps, n, edges, ne, s, out->summary, sizeof out->summary))
        return -1;
    model m = {.n = n, .ne = ne, .maxd = s->max_domains, .c = comps, .e = edges, .s = s,
               .wf = s->failure_weight};
    plan cur = {0}, a = {0}, b = {0};
    int *cand = NULL, *map = NULL, *taken = NULL, *size = NULL, *tally = NULL, rc = -1;
    m.lam = calloc((size_t)n + 1, sizeof *m.lam);
    m.lr = calloc((size_t)n + 1, sizeof *m.lr);
    m.rt = calloc((size_t)n + 1, sizeof *m.rt);
    m.ew = calloc((size_t)ne + 1, sizeof *m.ew);
    m.adj = calloc((size_t)2 * ne + 1, sizeof *m.adj);
    m.adj_at = calloc((size_t)n + 2, sizeof *m.adj_at);
    m.order = calloc((size_t)n + 1, sizeof *m.order);
    m.proven = calloc((size_t)n + 1, sizeof *m.proven);
    double *worth = calloc((size_t)n + 1, sizeof *worth);
    cand = calloc(2 + 16 + 1, sizeof *cand);
    map = calloc((size_t)m.maxd + 1, sizeof *map);
    taken = calloc((size_t)m.maxd + 1, sizeof *taken);
    size = calloc((size_t)m.maxd + 1, sizeof *size);
    tally = calloc((size_t)m.maxd + 1, sizeof *tally);
    if (!m.lam || !m.lr || !m.rt || !m.ew || !m.adj || !m.adj_at || !m.order || !m.proven ||
        !worth || !cand || !map || !taken || !size || !tally ||
        plan_alloc(&cur, n, m.maxd) || plan_alloc(&a, n, m.maxd) || plan_alloc(&b, n, m.maxd)) {
        snprintf(out->summary, sizeof out->summary, "out of memory");
        goto done;
    }
    /* the costs, measured or fallen back on */
    double rps = costs->requests_per_s;
    if (!(rps > 0)) {
        out->fallbacks |= QP_F_REQUESTS;
        rps = 0;
        for (int e = 0; e < ne; e++)
            if (edges[e].caller < 0)
                rps += edges[e].calls_per_s;
        if (!(rps > 0))
            for (int i = 0; i < n; i++)
                rps += comps[i].calls_per_s;
        if (!(rps > 0))
            rps = 1e-9;
    }
    double restart = costs->host_restart_s > 0 ? costs->host_restart_s
                                               : (out->fallbacks |= QP_F_RESTART, FB_RESTART_S);
    double inflight = costs->inflight > 0 ? costs->inflight
                                          : (out->fallbacks |= QP_F_INFLIGHT, rps * FB_INFLIGHT_S);
    if (inflight < 1)
        inflight = 1;
    m.rps = rps;
    m.chost = rps * restart + inflight;
    m.rec = costs->recovery_s > 0 ? costs->recovery_s
                                  : (out->fallbacks |= QP_F_RECOVERY, FB_RECOVERY_S);
    if (costs->crossing_s <= 0)
        out->fallbacks |= QP_F_CROSSING;
    double cpu = costs->cpu_s_per_s > 0 ? costs->cpu_s_per_s : (out->fallbacks |= QP_F_CPU, 1.0);
    double ncpu = costs->ncpu > 0 ? costs->ncpu : 1;
    m.util = cpu / ncpu > 1 ? 1 : cpu / ncpu;
    for (int e = 0; e < ne; e++) {
        const qp_edge *E = &edges[e];
        if (E->bytes_per_call < 0 && E->calls_per_s > 0)
            out->fallbacks |= QP_F_BYTES;
        m.ew[e] = qp_edge_cpu(E, costs);
    }
    /* edges per component */
    for (int e = 0; e < ne; e++) {
        m.adj_at[edges[e].callee + 1]++;
        if (edges[e].caller >= 0 && edges[e].caller != edges[e].callee)
            m.adj_at[edges[e].caller + 1]++;
    }
    for (int i = 0; i < n; i++)
        m.adj_at[i + 1] += m.adj_at[i];
    int *fill = calloc((size_t)n + 1, sizeof *fill);
    if (!fill) {
        snprintf(out->summary, sizeof out->summary, "out of memory");
        goto done;
    }
    for (int e = 0; e < ne; e++) {
        m.adj[m.adj_at[edges[e].callee] + fill[edges[e].callee]++] = e;
        if (edges[e].caller >= 0 && edges[e].caller != edges[e].callee)
            m.adj[m.adj_at[edges[e].caller] + fill[edges[e].caller]++] = e;
    }
    free(fill);
    /* rates */
    qcache qc = {-1, -1, 0};
    for (int i = 0; i < n; i++) {
        m.lam[i] = judged_rate(&comps[i], s, &out->why[i], &qc);
        m.lr[i] = m.lam[i] * comps[i].calls_per_s;
        m.rt[i] = comps[i].calls_per_s * (comps[i].call_s > 0 ? comps[i].call_s : FB_CALL_S);
        const qp_comp *c = &comps[i];
        m.proven[i] = !s->hard_budget &&
                      c->faults + c->host_blame + c->pool_faults + c->pool_host_blame >= PROVEN;
        cur.dom[i] = comps[i].domain;
    }
    plan_fill(&m, &cur);
    order_by_worth(&m, worth);
    double ov_now = cur.ov;
    m.base_cpu = base_cpu(cpu, ncpu, ov_now);
    /* search from the plan in force and from everything in the host */
    memcpy(a.dom, cur.dom, sizeof *a.dom * (size_t)n);
    plan_fill(&m, &a);
    local_search(&m, &a, cand);
    plan_fill(&m, &b);
    for (int i = 0; i < n; i++)
        b.dom[i] = comps[i].pinned ? comps[i].domain : 0;
    plan_fill(&m, &b);
    local_search(&m, &b, cand);
    plan *best = objective(&m, &b) < objective(&m, &a) - 1e-12 * (1 + objective(&m, &a)) ? &b : &a;
    renumber(&m, best->dom, map, taken, size, tally);
    plan_fill(&m, best);
    double jnow = objective(&m, &cur), jnew = objective(&m, best);
    out->objective_now = jnow;
    out->objective_new = jnew;
    out->overhead_now = share_of(&m, cur.ov);
    out->overhead_new = share_of(&m, best->ov);
    out->within_now = keeps_budget(&m, &cur, 0);
    out->within_new = keeps_budget(&m, best, 0);
    int moves = 0;
    for (int i = 0; i < n; i++)
        moves += best->dom[i] != cur.dom[i];
    /* the plan in force is held to the budget with some slack: measured
     * costs move from snapshot to snapshot, and a plan must not flap on
     * them (a new plan keeps to the budget itself) */
    bool over = !keeps_budget(&m, &cur, BUDGET_SLACK), mixed = false;
    for (int i = 0; i < n && !mixed; i++)
        mixed = cur.dom[i] && !comps[i].pinned && ambiguous_with(&m, &cur, i, cur.dom[i]);
    /* a change must gain enough to be worth making: min_gain, and a share
     * of what is at stake in the components it moves (not of the whole
     * expected loss, which may be mostly components it leaves alone: a
     * boundary drawn on suspicion would then never be taken down for the
     * overhead it costs); for a program about to start again a change
     * costs nothing (its domains start anyway), and any real gain is */
    double gain = jnow - jnew, need = s->min_gain;
    double at_stake = stake(&m, &cur, best);
    if (!st->restarting && s->min_gain_share * at_stake > need)
        need = s->min_gain_share * at_stake;
    plan *chosen = best;
    char g[32], gn[32];
    per_hour(g, sizeof g, gain * 3600);
    per_hour(gn, sizeof gn, need * 3600);
    if (!moves) {
        snprintf(out->summary, sizeof out->summary, "unchanged: the plan in force is the best");
    } else if (mixed) {
        out->changed = 1;
        snprintf(out->summary, sizeof out->summary,
                 "changed: faults in a shared domain could not be pinned on one component: "
                 "its components are split (%d move%s)",
                 moves, moves > 1 ? "s" : "");
    } else if (!over && gain < need) {
        chosen = &cur;
        out->held = 1;
        snprintf(out->summary, sizeof out->summary,
                 "held: a plan moving %d component%s would gain %s req/h, less than the %s "
                 "req/h a change must gain",
                 moves, moves > 1 ? "s" : "", g, gn);
    } else if (!over && !st->restarting && st->plan_age_s < s->dwell_s) {
        chosen = &cur;
        out->held = 1;
        snprintf(out->summary, sizeof out->summary,
                 "held: a plan moving %d component%s would gain %s req/h, but the plan in "
                 "force has been in force for %.0f s of its %.0f s dwell",
                 moves, moves > 1 ? "s" : "", g, st->plan_age_s, s->dwell_s);
    } else if (!over && !st->restarting && st->changes_last_hour >= s->max_changes_per_hour) {
        chosen = &cur;
        out->held = 1;
        snprintf(out->summary, sizeof out->summary,
                 "held: a plan moving %d component%s would gain %s req/h, but %d changes "
                 "were made in the last hour (at most %d)",
                 moves, moves > 1 ? "s" : "", g, st->changes_last_hour,
                 s->max_changes_per_hour);
    } else {
        char on[32], nw[32];
        pct(on, sizeof on, out->overhead_now);
        pct(nw, sizeof nw, out->overhead_new);
        out->changed = 1;
        if (over)
            snprintf(out->summary, sizeof out->summary,
                     "changed: the plan in force costs %s CPU, over the budget; %d "
                     "component%s move; overhead %s",
                     on, moves, moves > 1 ? "s" : "", nw);
        else
            snprintf(out->summary, sizeof out->summary,
                     "changed: %d component%s move; gain %s req/h; overhead %s -> %s", moves,
                     moves > 1 ? "s" : "", g, on, nw);
    }
    memcpy(out->domain, chosen->dom, sizeof *out->domain * (size_t)n);
    explain(&m, chosen, s, out->why, out->terse);
    rc = 0;
done:
    free(m.lam);
    free(m.lr);
    free(m.rt);
    free(m.ew);
    free(m.adj);
    free(m.adj_at);
    free(m.order);
    free(m.proven);
    free(worth);
    free(cand);
    free(map);
    free(taken);
    free(size);
    free(tally);
    plan_free(&cur);
    plan_free(&a);
    plan_free(&b);
    return rc;
}

int qp_plan_format(const qp_comp *comps, const int *domain, int n, char *buf, size_t len) {
    size_t need = 0;
    for (int i = 0; i < n; i++) {
        char item[160];
        int k = domain[i] ? snprintf(item, sizeof item, "%s%s=%d", i ? " " : "", comps[i].name,
                                     domain[i])
                          : snprintf(item, sizeof item, "%s%s=host", i ? " " : "", comps[i].name);
        if (k < 0)
            continue;
        if (buf && need + (size_t)k < len)
            memcpy(buf + need, item, (size_t)k);
        need += (size_t)k;
    }
    if (buf && len)
        buf[need < len ? need : len - 1] = 0;
    return (int)need;
}
