/* policy.h - the isolation policy: evidence + measured costs + settings ->
 * plan + explanation. One cost model, used by the supervisor (`quarantine
 * run --policy`), by `quarantine plan` and by the simulator.
 *
 * qp_decide() is pure: no I/O, no clock, no global state; the same inputs
 * give the same plan. It allocates scratch memory only.
 *
 * The model (docs/policy.md says it in words):
 *  - each component c has an unknown fault rate per call, lambda_c, with a
 *    Gamma(a, b) prior (a faults in b calls); its evidence is k faults
 *    blamed on it (faults of its domain while isolated, and the blame shares
 *    of host crashes) in n calls; the posterior is Gamma(a + k, b + n);
 *  - a host crash loses the requests of the restart (restart time x request
 *    rate) and those in flight; a fault of an isolated domain loses only the
 *    calls in flight there (Little's law) and those that arrive during its
 *    recovery;
 *  - a boundary costs CPU: every crossing of it, per edge, call rate x (cost
 *    per crossing + bytes x cost per byte); that costs requests as far as
 *    the program is CPU-bound (measured utilisation);
 *  - the plan minimises failure_weight x expected failed requests per second
 *    + capacity lost to overhead (requests per second), with the overhead at
 *    most `budget` of the program's CPU, and changes only when the gain is
 *    worth it (hysteresis); the budget binds boundaries drawn as insurance:
 *    a component with faults proven (half a fault or host crash blamed on
 *    it, here or pooled) may be isolated beyond it, where the objective
 *    says its faults cost more than its boundary.
 * The modes are settings of the prior and of how the rate is read from the
 * posterior (its mean, or an upper credible bound). */
#ifndef QTN_POLICY_H
#define QTN_POLICY_H

#include <stddef.h>

typedef enum {
    QP_ADAPTIVE = 0, /* the default */
    QP_OPTIMISTIC,
    QP_PESSIMISTIC,
    QP_COOPERATIVE,
} qp_mode;

/* The mode of a name ("adaptive", ...), or -1. */
int qp_mode_parse(const char *s);
const char *qp_mode_name(qp_mode m);

/* What is known of a component's code identity. */
typedef enum {
    QP_CODE_SAME = 0, /* this code has history (here or in the fleet) */
    QP_CODE_NEW,      /* a component no earlier build had */
    QP_CODE_CHANGED,  /* earlier builds had other code: that evidence is reset */
    QP_CODE_UNKNOWN,  /* no code identity: each build counts as new code */
} qp_code;

/* Evidence about one component, for its current code identity, discounted
 * to now (see qp_decay_add). */
typedef struct qp_comp {
    const char *name;
    qp_code code;
    double calls;       /* exposure: calls made into it, here */
    double faults;      /* faults of its domain blamed on it while isolated (shares) */
    double host_blame;  /* host crashes: the blame shares it got, summed */
    double ambiguous;   /* of faults + host_blame, what was spread over several
                           components sharing a domain (could not be pinned) */
    double clean_calls; /* calls since its last fault (here and pooled) */
    /* pooled: the same code's evidence from other installations */
    double pool_calls, pool_faults, pool_host_blame;
    int pool_installations;
    /* now */
    double calls_per_s; /* calls into it per second */
    double call_s;      /* mean time a call into it takes (s); <= 0: unknown */
    int domain;         /* in the plan in force: 0 the host, 1.. a domain */
    int pinned;         /* 1: stays where it is (the user fixed it) */
    int rate_assumed;   /* calls_per_s not measured yet: a program just started
                           for the first time; a rate is assumed (and the caller
                           gives an edge from the program at it) */
} qp_comp;

/* A caller -> callee edge: calls from component `caller` (-1: the program,
 * outside any component, which is always in the host) into `callee`. */
typedef struct qp_edge {
    int caller, callee;    /* indices into the components */
    double calls_per_s;
    double bytes_per_call; /* copied per crossing, measured; < 0: unknown */
    double cross_s;        /* overhead per crossing measured on it; <= 0: unknown */
} qp_edge;

/* Measured costs; a value <= 0 means "not measured yet": the documented
 * fallback is used and the explanation says so. */
typedef struct qp_costs {
    double host_restart_s;  /* crash -> program ready again (fallback 1 s) */
    double requests_per_s;  /* units of work per second (qtn_work_done); fallback:
                               the calls the program makes into components */
    double inflight;        /* requests in flight at a crash (fallback: 10 ms of work) */
    double recovery_s;      /* a domain's recovery (fallback 1 ms) */
    double crossing_s;      /* overhead per crossing (fallback 5 us) */
    double byte_s;          /* per byte copied (fallback 0.5 ns) */
    double cpu_s_per_s;     /* the program's CPU seconds per second, domains
                               included (fallback: one core) */
    double ncpu;            /* cores (fallback 1) */
} qp_costs;

typedef struct qp_settings {
    qp_mode mode;
    double budget;          /* overhead cap, share of the program's CPU (0.25) */
    int hard_budget;        /* 1: the cap binds every boundary; 0 (default): it binds
                               insurance only, not a component whose faults are proven */
    double failure_weight;  /* a failed request weighs this many slowed ones (10) */
    double half_life_s;     /* evidence older by this counts half (7 days; 0: never) */
    double confidence;      /* of the upper credible bound (0.95) */
    double trusting_a, trusting_b;   /* prior of trusted code: faults, calls */
    double sceptical_a, sceptical_b; /* prior of new code */
    double trust_calls;     /* adaptive: clean calls after which code is trusted (1e6) */
    double min_gain;        /* a change must gain this many requests/s (0.01) */
    double min_gain_share;  /* ... and this share of what is at stake in the components
                               it moves (0.05) */
    double dwell_s;         /* a plan stays at least this long (60) */
    int max_changes_per_hour; /* (6) */
    int max_domains;        /* isolated domains at most (32) */
} qp_settings;

/* The defaults above. */
void qp_settings_default(qp_settings *s);

/* Hysteresis inputs: where the plan in force stands. */
typedef struct qp_state {
    double plan_age_s;      /* how long the plan in force has been in force */
    int changes_last_hour;  /* plan changes made in the last hour */
    int restarting;         /* the plan is for a program starting again: no dwell */
} qp_state;

/* Why a component sits where it does. */
typedef struct qp_why {
    int domain;           /* where the decided plan puts it */
    double rate_mean;     /* posterior mean fault rate per call */
    double rate_upper;    /* upper credible bound */
    double rate;          /* the one the mode decides by */
    double loss_host_h;   /* expected failed requests per hour, in the host */
    double loss_iso_h;    /* ... isolated (in the domain the plan gives or would give) */
    double boundary_share; /* CPU share its boundary costs (or would cost alone) */
    const char *prior;    /* "sceptical", "trusting", "pooled", ... */
    char reason[320];     /* one line in words */
} qp_why;

typedef struct qp_result {
    int *domain;          /* per component (the caller's array, ncomps long) */
    qp_why *why;          /* per component (the caller's array) */
    int terse;            /* set by the caller: 1 leaves why[].reason empty (the numbers
                             are filled), for callers that need only the plan */
    int changed;          /* domain[] differs from the plan in force */
    int held;             /* a better plan exists; hysteresis keeps the one in force */
    double objective_now; /* requests/s the plan in force loses (weighted) */
    double objective_new; /* ... the decided plan */
    double overhead_now, overhead_new; /* CPU shares of the boundaries */
    int within_now, within_new; /* the plan keeps to the budget: within it, or over it
                                   only by boundaries of components whose faults are
                                   proven (the budget binds insurance, not repairs) */
    int fallbacks;        /* QP_F_* bits: which costs were not measured */
    char summary[320];    /* the decision in one line */
} qp_result;

enum {
    QP_F_RESTART = 1, QP_F_REQUESTS = 2, QP_F_INFLIGHT = 4, QP_F_RECOVERY = 8,
    QP_F_CROSSING = 16, QP_F_BYTES = 32, QP_F_CPU = 64,
};

/* Decides the plan. comps[i].domain is the plan in force. Returns 0, or -1
 * when the input is malformed or memory runs out (out->summary says which). */
int qp_decide(const qp_comp *comps, int ncomps, const qp_edge *edges, int nedges,
              const qp_costs *costs, const qp_settings *set, const qp_state *st,
              qp_result *out);

/* ---- the arithmetic, for the evidence loaders and the tests --------------- */

/* Adds x at time t (s) to a sum discounted with half-life h (0: none),
 * kept as its value at *at (the latest time added). */
void qp_decay_add(double *sum, double *at, double t, double x, double h);
/* The sum's value at time t. */
double qp_decay_at(double sum, double at, double t, double h);
/* The CPU seconds per second edge E costs while it crosses a boundary, as
 * qp_decide() prices it: its calls times the cost of a crossing (its own
 * measured one, else costs', else the fallback) and of the bytes copied. */
double qp_edge_cpu(const qp_edge *E, const qp_costs *costs);
/* The share of the program's CPU that `ov` CPU seconds per second of
 * crossings take, as qp_decide() reckons it when the plan in force costs
 * ov_now of the measured CPU. */
double qp_overhead_share(double ov, double ov_now, const qp_costs *costs);

/* Quantile q of Gamma(shape a, rate b). */
double qp_gamma_quantile(double a, double b, double q);
/* Regularised lower incomplete gamma P(a, x). */
double qp_gamma_p(double a, double x);

/* Writes the plan as text (`name=host name=2 ...`, the format QTN_PLAN
 * takes) into buf. Returns the length it needs, like snprintf. */
int qp_plan_format(const qp_comp *comps, const int *domain, int n, char *buf, size_t len);

#endif
