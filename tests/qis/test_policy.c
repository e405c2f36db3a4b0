/* test_policy.c - the policy's model against values computed by hand: the
 * Gamma posterior and its bounds, discounting, the costs of a plan, the
 * modes, the budget, grouping and splitting, hysteresis, determinism. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

#define MAXC 16

/* One decision on a small system. */
typedef struct sys {
    qp_comp c[MAXC];
    qp_edge e[4 * MAXC];
    int n, ne;
    qp_costs k;
    qp_settings s;
    qp_state st;
    int dom[MAXC];
    qp_why why[MAXC];
    qp_result r;
} sys;

static void sys_init(sys *y, qp_mode mode) {
    memset(y, 0, sizeof *y);
    qp_settings_default(&y->s);
    y->s.mode = mode;
    y->st.plan_age_s = 1e9;
    y->r.domain = y->dom;
    y->r.why = y->why;
    /* measured costs: 50 requests/s, a 2 s restart with 5 in flight, a 1 ms
     * recovery, half a core of two in use */
    y->k = (qp_costs){.host_restart_s = 2, .requests_per_s = 50, .inflight = 5,
                      .recovery_s = 0.001, .crossing_s = 1e-5, .byte_s = 1e-9,
                      .cpu_s_per_s = 0.5, .ncpu = 2};
}

static int comp(sys *y, const char *name, double calls_per_s) {
    int i = y->n++;
    y->c[i].name = name;
    y->c[i].calls_per_s = calls_per_s;
    y->c[i].call_s = 1e-4;
    return i;
}

static void edge(sys *y, int from, int to, double rate, double bytes) {
    y->e[y->ne++] = (qp_edge){.caller = from, .callee = to, .calls_per_s = rate,
                              .bytes_per_call = bytes, .cross_s = 0};
}

static void decide(sys *y) {
    assert_int_equal(qp_decide(y->c, y->n, y->e, y->ne, &y->k, &y->s, &y->st, &y->r), 0);
}

static void test_gamma(void **state) {
    (void)state;
    /* Gamma(1, rate b) is exponential: the q quantile is -ln(1 - q) / b */
    assert_float_equal(qp_gamma_quantile(1, 1000, 0.95), -log(0.05) / 1000, 1e-12);
    /* Gamma(2, 1) at 95% is half the chi-square(4) quantile 9.487729 */
    assert_float_equal(qp_gamma_quantile(2, 1, 0.95), 9.4877290367811540 / 2, 1e-9);
    /* Gamma(1/2, 1) median: half the chi-square(1) median 0.4549364 */
    assert_float_equal(qp_gamma_quantile(0.5, 1, 0.5), 0.45493642311957283 / 2, 1e-9);
    /* shape 20, rate 4: 95% of chi-square(40) 55.758479 / 8 */
    assert_float_equal(qp_gamma_quantile(20, 4, 0.95), 55.758479278887 / 8, 1e-8);
    assert_float_equal(qp_gamma_p(1, 2), 1 - exp(-2), 1e-13);
    assert_float_equal(qp_gamma_p(3, 10), 1 - exp(-10) * (1 + 10 + 50), 1e-12);
    assert_float_equal(qp_gamma_p(0.5, 0.25), erf(0.5), 1e-12);
    /* the quantile inverts P, also for tiny shapes */
    for (double a = 1e-2; a < 300; a *= 3.7) /* smaller: the 5% point underflows */
        for (double q = 0.05; q < 1; q += 0.3)
            assert_float_equal(qp_gamma_p(a, qp_gamma_quantile(a, 1, q)), q, 1e-9);
}

static void test_decay(void **state) {
    (void)state;
    double sum = 0, at = 0;
    qp_decay_add(&sum, &at, 0, 8, 10);
    assert_float_equal(qp_decay_at(sum, at, 10, 10), 4, 1e-12);
    qp_decay_add(&sum, &at, 20, 2, 10); /* 8 / 4 + 2 */
    assert_float_equal(sum, 4, 1e-12);
    assert_float_equal(at, 20, 0);
    qp_decay_add(&sum, &at, 10, 1, 10); /* an older event counts as of its age */
    assert_float_equal(sum, 4.5, 1e-12);
    qp_decay_add(&sum, &at, 30, 1, 0); /* no half-life: plain sums */
    assert_float_equal(sum, 5.5, 1e-12);
}

/* One component with one host crash blamed, called 100 times a second by
 * the program, 1,000 bytes a call. By hand (optimistic: trusting prior
 * a = 1e-4, b = 1e4; posterior mean):
 *   lambda = (1e-4 + 1) / (1e4 + 0) = 1.0001e-4 per call
 *   host crash: 50 req/s x 2 s + 5 in flight = 105 requests
 *   in the host: lambda x 100 x 105 = 1.050105 req/s
 *   isolated: 1 + 100 x 1e-4 = 1.01 calls in flight fail, and 1 ms x 100
 *             arriving calls wait: lambda x 100 x 1.01 failed,
 *             lambda x 100 x 0.1 slowed
 *   boundary: 100 x (10 us + 1000 x 1 ns) = 1.1e-3 CPU s/s; the program
 *             counts as using a core at least (it uses half of one), so
 *             its share is 1.1e-3 / (1 + 1.1e-3); capacity 50 x 0.25 x share
 *   objective: host 10 x 1.050105; isolated 10 x failed + slowed + capacity */
static void test_costs_by_hand(void **state) {
    (void)state;
    sys y;
    sys_init(&y, QP_OPTIMISTIC);
    int a = comp(&y, "a", 100);
    y.c[a].host_blame = 1;
    edge(&y, -1, a, 100, 1000);
    decide(&y);
    double lam = 1.0001e-4, share = 1.1e-3 / (1 + 1.1e-3);
    assert_float_equal(y.why[a].rate_mean, lam, 1e-12);
    assert_float_equal(y.why[a].rate, lam, 1e-12);
    assert_float_equal(y.r.objective_now, 10 * lam * 100 * 105, 1e-9);
    assert_float_equal(y.r.objective_new,
                       10 * lam * 100 * 1.01 + lam * 100 * 0.1 + 50 * 0.25 * share, 1e-9);
    assert_float_equal(y.r.overhead_new, share, 1e-12);
    assert_int_equal(y.r.changed, 1);
    assert_int_equal(y.dom[a], 1);
    assert_float_equal(y.why[a].loss_host_h, lam * 100 * 105 * 3600, 1e-6);
    assert_float_equal(y.why[a].loss_iso_h, lam * 100 * 1.01 * 3600, 1e-6);
    assert_float_equal(y.why[a].boundary_share, share, 1e-12);
    assert_non_null(strstr(y.why[a].reason, "isolated: 1 host crash blamed"));
    char plan[64];
    qp_plan_format(y.c, y.dom, y.n, plan, sizeof plan);
    assert_string_equal(plan, "a=1");
}

/* The prior each mode reads the evidence with. */
static void test_modes(void **state) {
    (void)state;
    for (int m = 0; m < 4; m++) {
        sys y;
        sys_init(&y, (qp_mode)m);
        int a = comp(&y, "a", 100), b = comp(&y, "b", 100);
        edge(&y, -1, a, 100, 100);
        edge(&y, -1, b, 100, 100);
        y.c[a].code = y.c[b].code = QP_CODE_NEW;
        decide(&y);
        /* no evidence at all: optimistic and cooperative trust, the others doubt */
        int iso = m == QP_PESSIMISTIC || m == QP_ADAPTIVE;
        assert_int_equal(y.dom[a] != 0, iso);
        assert_int_equal(y.dom[b] != 0, iso);
        if (iso) {
            assert_int_not_equal(y.dom[a], y.dom[b]); /* each in its own domain */
            /* sceptical: Gamma(1, 1000), decided by its 95% bound */
            assert_float_equal(y.why[a].rate, -log(0.05) / 1000, 1e-12);
            assert_string_equal(y.why[a].prior, "sceptical");
        } else {
            assert_float_equal(y.why[a].rate, 1e-4 / 1e4, 1e-18);
        }
    }
    /* adaptive: code with a long clean history is trusted */
    sys y;
    sys_init(&y, QP_ADAPTIVE);
    int a = comp(&y, "a", 100);
    edge(&y, -1, a, 100, 100);
    y.c[a].code = QP_CODE_SAME;
    y.c[a].calls = y.c[a].clean_calls = 2e6;
    decide(&y);
    assert_int_equal(y.dom[a], 0);
    assert_string_equal(y.why[a].prior, "trusting");
    assert_float_equal(y.why[a].rate, 1e-4 / (1e4 + 2e6), 1e-18);
    assert_non_null(strstr(y.why[a].reason, "2.0M calls without a fault"));
    /* ... and changed code is not, whatever its component's past */
    y.c[a].code = QP_CODE_CHANGED;
    y.c[a].calls = y.c[a].clean_calls = 0;
    decide(&y);
    assert_int_equal(y.dom[a], 1);
    assert_non_null(strstr(y.why[a].reason, "changed code"));
    /* ... until the new code itself has run trust_calls calls without a fault */
    y.c[a].calls = y.c[a].clean_calls = 2e6;
    y.c[a].domain = 1;
    decide(&y);
    assert_string_equal(y.why[a].prior, "trusting");
    assert_int_equal(y.dom[a], 0);
    y.c[a].code = QP_CODE_NEW;
    y.c[a].clean_calls = 0.5e6; /* not yet */
    decide(&y);
    assert_string_equal(y.why[a].prior, "sceptical");
    /* cooperative: the fleet's evidence is the prior */
    sys_init(&y, QP_COOPERATIVE);
    a = comp(&y, "a", 100);
    edge(&y, -1, a, 100, 100);
    y.c[a].pool_calls = 5e4;
    y.c[a].pool_host_blame = 3;
    y.c[a].pool_installations = 7;
    decide(&y);
    assert_float_equal(y.why[a].rate_mean, (1e-4 + 3) / (1e4 + 5e4), 1e-15);
    assert_string_equal(y.why[a].prior, "pooled");
    assert_int_equal(y.dom[a], 1); /* isolated before it ever crashed here */
}

/* The budget binds insurance: a suspicious component whose boundary would
 * cost more than the budget stays in the host, and the reason says so; a
 * component whose faults are proven is isolated beyond it where its faults
 * cost more than its boundary (unless the budget binds all), and is not
 * shed for it. */
static void test_budget(void **state) {
    (void)state;
    sys y;
    sys_init(&y, QP_PESSIMISTIC); /* suspicious of everything, no fault seen */
    int a = comp(&y, "cache", 20000);
    y.c[a].calls = 1e3;
    edge(&y, -1, a, 20000, 4096); /* 20k x (10 us + 4 us) = 0.28 CPU s/s */
    y.s.budget = 0.10;
    decide(&y);
    assert_int_equal(y.dom[a], 0);
    assert_non_null(strstr(y.why[a].reason, "isolating costs"));
    assert_non_null(strstr(y.why[a].reason, "budget 10%: stays in the host"));
    assert_true(y.r.within_new);
    /* with the budget it needs, it is isolated */
    y.s.budget = 0.5;
    decide(&y);
    assert_int_equal(y.dom[a], 1);
    /* a plan in force over the budget is shed, whatever the hysteresis */
    y.c[a].domain = 1;
    y.s.budget = 0.10;
    y.st.plan_age_s = 0;
    decide(&y);
    assert_false(y.r.within_now);
    assert_int_equal(y.r.changed, 1);
    assert_int_equal(y.dom[a], 0);
    assert_non_null(strstr(y.r.summary, "over the budget"));

    /* proven: two host crashes blamed; the same boundary is drawn beyond
     * the budget, and said so */
    sys_init(&y, QP_OPTIMISTIC);
    a = comp(&y, "cache", 20000);
    int b = comp(&y, "render", 20000);
    y.c[a].host_blame = 2;
    y.c[a].calls = y.c[b].calls = 1e5;
    edge(&y, -1, a, 20000, 4096);
    edge(&y, -1, b, 20000, 4096);
    y.s.budget = 0.10;
    decide(&y);
    assert_int_equal(y.dom[a], 1);
    assert_int_equal(y.dom[b], 0);
    assert_true(y.r.overhead_new > y.s.budget);
    assert_true(y.r.within_new);
    assert_non_null(strstr(y.why[a].reason, "over the budget of 10%: its faults are proven"));
    /* in force, it is kept there, and the hysteresis holds */
    y.c[a].domain = 1;
    y.st.plan_age_s = 0;
    decide(&y);
    assert_true(y.r.within_now);
    assert_int_equal(y.r.changed, 0);
    assert_int_equal(y.dom[a], 1);
    /* a suspicious neighbour gets no boundary while the proven one takes
     * the budget and more */
    y.s.mode = QP_PESSIMISTIC;
    y.st.plan_age_s = 1e9;
    decide(&y);
    assert_int_equal(y.dom[a], 1);
    assert_int_equal(y.dom[b], 0);
    assert_non_null(strstr(y.why[b].reason, "budget 10%: stays in the host"));
    /* a hard budget binds it too: shed at once */
    y.s.mode = QP_OPTIMISTIC;
    y.s.hard_budget = 1;
    y.st.plan_age_s = 0;
    decide(&y);
    assert_false(y.r.within_now);
    assert_int_equal(y.dom[a], 0);
    assert_non_null(strstr(y.why[a].reason, "budget 10%: stays in the host"));
    /* proven, but its faults cost less than its boundary: the objective
     * keeps it in the host, budget or none */
    y.s.hard_budget = 0;
    y.s.budget = 1;
    y.c[a].domain = 0;
    y.c[a].host_blame = 0.6;
    y.c[a].calls = 1e12;
    decide(&y);
    assert_int_equal(y.dom[a], 0);
    assert_non_null(strstr(y.why[a].reason, "in the host: 0.6 host crashes blamed"));
}

/* Suspicious components that call each other heavily share a domain; a
 * shared domain whose faults could not be pinned on one is split; a clean
 * domain goes back into the host. */
static void test_grouping(void **state) {
    (void)state;
    sys y;
    sys_init(&y, QP_OPTIMISTIC);
    int p = comp(&y, "parser", 1000), r = comp(&y, "render", 20000);
    y.c[p].host_blame = 1;
    y.c[r].host_blame = 1;
    y.c[p].calls = y.c[r].calls = 1e6;
    edge(&y, -1, p, 1000, 100);
    edge(&y, p, r, 20000, 4096); /* 20k calls/s between them, 4 KiB each */
    y.k.cpu_s_per_s = 2;         /* CPU-bound: overhead costs requests */
    y.s.budget = 0.5;
    decide(&y);
    assert_int_not_equal(y.dom[p], 0);
    assert_int_equal(y.dom[p], y.dom[r]);
    assert_non_null(strstr(y.why[p].reason, "shares domain 1 with render"));
    /* two faults in their domain could not be pinned on one of them: apart */
    y.c[p].domain = y.c[r].domain = 1;
    y.c[p].faults = y.c[r].faults = 1;
    y.c[p].ambiguous = y.c[r].ambiguous = 1;
    decide(&y);
    assert_int_equal(y.r.changed, 1);
    assert_int_not_equal(y.dom[p], 0);
    assert_int_not_equal(y.dom[r], 0);
    assert_int_not_equal(y.dom[p], y.dom[r]);
    assert_non_null(strstr(y.why[r].reason, "kept apart"));
    /* both clean for a long time: the domains merge back into the host */
    sys_init(&y, QP_OPTIMISTIC);
    p = comp(&y, "parser", 1000);
    r = comp(&y, "render", 1000);
    edge(&y, -1, p, 1000, 100);
    edge(&y, p, r, 1000, 100);
    y.c[p].domain = 1;
    y.c[r].domain = 2;
    y.c[p].calls = y.c[r].calls = 1e9;
    decide(&y);
    assert_int_equal(y.r.changed, 1);
    assert_int_equal(y.dom[p], 0);
    assert_int_equal(y.dom[r], 0);
}

/* Domains are few; a domain that keeps its members keeps its number. */
static void test_domains(void **state) {
    (void)state;
    sys y;
    sys_init(&y, QP_PESSIMISTIC);
    y.s.max_domains = 2;
    static const char *names[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++) {
        comp(&y, names[i], 10);
        edge(&y, -1, i, 10, 10);
    }
    decide(&y);
    int used[3] = {0};
    for (int i = 0; i < 5; i++) {
        assert_in_range(y.dom[i], 0, 2);
        used[y.dom[i]]++;
    }
    assert_int_equal(used[0], 0); /* all isolated, in two domains */
    sys_init(&y, QP_OPTIMISTIC);
    int a = comp(&y, "a", 10);
    edge(&y, -1, a, 10, 10);
    y.c[a].domain = 3;
    y.c[a].host_blame = 1;
    decide(&y);
    assert_int_equal(y.r.changed, 0);
    assert_int_equal(y.dom[a], 3);
    assert_non_null(strstr(y.r.summary, "unchanged"));
}

/* Evidence near the threshold does not make the plan flap: a change needs
 * its gain, its dwell and its place in the hourly limit. */
static void test_hysteresis(void **state) {
    (void)state;
    sys y;
    sys_init(&y, QP_OPTIMISTIC);
    int a = comp(&y, "a", 10);
    edge(&y, -1, a, 10, 0);
    y.c[a].calls = 1e5;
    /* find the blame at which isolating breaks even: bisect on the objective */
    double lo = 0, hi = 10;
    for (int i = 0; i < 60; i++) {
        double mid = (lo + hi) / 2;
        y.c[a].host_blame = mid;
        y.s.min_gain = 0;
        y.s.min_gain_share = 0;
        decide(&y);
        if (y.dom[a])
            hi = mid;
        else
            lo = mid;
    }
    double even = hi;
    qp_settings_default(&y.s);
    y.s.mode = QP_OPTIMISTIC;
    /* evidence oscillating 2% around it, decided again and again, with the
     * plan in force following each decision as the supervisor would */
    int changes = 0;
    double age = 0;
    y.c[a].domain = 0;
    for (int round = 0; round < 200; round++) {
        y.c[a].host_blame = even * (round % 2 ? 1.02 : 0.98);
        y.st.plan_age_s = age;
        decide(&y);
        if (y.r.changed) {
            changes++;
            y.c[a].domain = y.dom[a];
            age = 0;
        }
        age += 30; /* a decision every 30 s */
    }
    assert_in_range(changes, 0, 1);
    /* a real gain after the dwell is taken; before it, it is held */
    y.c[a].domain = 0;
    y.c[a].host_blame = even * 50;
    y.st.plan_age_s = 10;
    decide(&y);
    assert_int_equal(y.r.changed, 0);
    assert_int_equal(y.r.held, 1);
    assert_int_equal(y.dom[a], 0);
    assert_non_null(strstr(y.r.summary, "dwell"));
    y.st.restarting = 1; /* a program starting again takes the plan at once */
    decide(&y);
    assert_int_equal(y.r.changed, 1);
    assert_int_equal(y.dom[a], 1);
    y.st.restarting = 0;
    y.st.plan_age_s = 1e6;
    y.st.changes_last_hour = 6;
    decide(&y);
    assert_int_equal(y.r.held, 1);
    assert_non_null(strstr(y.r.summary, "in the last hour"));
}

/* The same input gives the same plan; bad input is refused. */
static void test_determinism_and_bad_input(void **state) {
    (void)state;
    enum { N = 200, E = 2000 };
    qp_comp *c = calloc(N, sizeof *c);
    qp_edge *e = calloc(E, sizeof *e);
    int *d1 = calloc(N, sizeof *d1), *d2 = calloc(N, sizeof *d2);
    qp_why *w = calloc(N, sizeof *w);
    char (*names)[16] = calloc(N, 16);
    unsigned seed = 7;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], 16, "c%d", i);
        c[i].name = names[i];
        seed = seed * 1103515245 + 12345;
        c[i].calls_per_s = seed % 1000;
        c[i].calls = 1e4 * (seed % 97);
        c[i].host_blame = seed % 13 == 0 ? 1 : 0;
        c[i].faults = seed % 17 == 0 ? 2 : 0;
        c[i].code = (qp_code)(seed % 4);
    }
    for (int k = 0; k < E; k++) {
        seed = seed * 1103515245 + 12345;
        e[k] = (qp_edge){.caller = (int)(seed % (N + 1)) - 1, .callee = (int)((seed >> 8) % N),
                         .calls_per_s = seed % 500, .bytes_per_call = seed % 4096};
    }
    qp_costs k = {0};
    qp_settings s;
    qp_settings_default(&s);
    qp_state st = {.plan_age_s = 1e9};
    qp_result r1 = {.domain = d1, .why = w}, r2 = {.domain = d2, .why = w};
    assert_int_equal(qp_decide(c, N, e, E, &k, &s, &st, &r1), 0);
    assert_int_equal(qp_decide(c, N, e, E, &k, &s, &st, &r2), 0);
    assert_memory_equal(d1, d2, N * sizeof *d1);
    assert_float_equal(r1.objective_new, r2.objective_new, 0);
    assert_true(r1.objective_new <= r1.objective_now + 1e-12);
    /* within the budget, or over it only by boundaries of proven faults */
    assert_true(r1.within_new);
    if (r1.overhead_new > s.budget + 1e-9) {
        int proven = 0;
        for (int i = 0; i < N; i++)
            proven += d1[i] && c[i].faults + c[i].host_blame >= 0.5;
        assert_true(proven > 0);
    }
    assert_int_equal(r1.fallbacks & (QP_F_RESTART | QP_F_CPU), QP_F_RESTART | QP_F_CPU);
    e[3].callee = N; /* an edge to nowhere */
    assert_int_equal(qp_decide(c, N, e, E, &k, &s, &st, &r1), -1);
    assert_non_null(strstr(r1.summary, "edge 3"));
    e[3].callee = 0;
    c[5].calls = NAN;
    assert_int_equal(qp_decide(c, N, e, E, &k, &s, &st, &r1), -1);
    assert_non_null(strstr(r1.summary, "c5"));
    c[5].calls = 0;
    s.budget = 2;
    assert_int_equal(qp_decide(c, N, e, E, &k, &s, &st, &r1), -1);
    free(c), free(e), free(d1), free(d2), free(w), free(names);
}

static void test_modes_by_name(void **state) {
    (void)state;
    assert_int_equal(qp_mode_parse("adaptive"), QP_ADAPTIVE);
    assert_int_equal(qp_mode_parse("pessimistic"), QP_PESSIMISTIC);
    assert_int_equal(qp_mode_parse("Optimistic"), -1);
    assert_string_equal(qp_mode_name(QP_COOPERATIVE), "cooperative");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gamma),
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_costs_by_hand),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_grouping),
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_hysteresis),
        cmocka_unit_test(test_determinism_and_bad_input),
        cmocka_unit_test(test_modes_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
