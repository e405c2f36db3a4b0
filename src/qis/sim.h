/* sim.h - `quarantine sim`: the policy (policy.h, qp_decide itself, never
 * a copy) run over a simulated fleet, judged against an oracle.
 *
 * A scenario (a JSON file, scenarios/README.md) gives the components, their
 * call graph, their true fault rates per call (per build, some only under
 * load), the true costs, the budget, the installations (groups: how many,
 * their load, when they join) and the builds (what changes when, rolled out
 * over how long). qsim_run() simulates it once per mode and seed:
 *
 *  - events, not ticks: each installation x buggy component is a Poisson
 *    process of faults (true rate per call x calls per second); a fault
 *    costs what the plan in force there makes it cost (a host crash, or a
 *    fault of the domain it is isolated in); fault times come from counter-
 *    based random numbers keyed by (seed, installation, component, n), so
 *    every mode and the oracle see the same faults (common random numbers);
 *  - each installation decides with qp_decide() on inputs built the way
 *    evidence.c builds them from the store (discounted calls, faults and
 *    host-crash blame per component and code identity, the other
 *    installations' pooled evidence, code status from builds, the true
 *    costs as measured costs, the plan in force, its age and changes): at
 *    a host crash (for the restart), when it joins or takes a build, at the
 *    first tick after a fault of one of its domains, when the fleet's
 *    evidence of a component it runs changed materially (modes that pool),
 *    and periodically on a tick grid, with an interval that doubles while
 *    decisions change nothing;
 *  - installations with the same history are one *class* and share each
 *    decision (their inputs are identical); a fault splits its
 *    installation off into a class of its own;
 *  - the oracle knows the true rates and keeps, per installation group and
 *    build, the best static plan under the same budget: qp_decide on the
 *    true rates held as evidence of 1e18 calls (the best of searches from
 *    all in the host and from each buggy component isolated alone); its
 *    cost is accounted over the same fault events.
 *
 * Costs are the policy's objective, realised (docs/sim.md): a host crash
 * fails requests_per_s x restart + in flight; a domain fault fails the
 * calls in flight there (1 + sum of call rate x call time of its members)
 * and slows those arriving while it recovers; a plan's boundaries cost
 * requests_per_s x utilisation x their CPU share; cost = failure_weight x
 * failed + slowed + overhead (requests); regret = cost - the oracle's.
 * Results are deterministic for a seed, whatever the number of threads. */
#ifndef QTN_SIM_H
#define QTN_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* ---- the scenario ----------------------------------------------------------- */

typedef struct qsim_comp {
    char name[64];
    double call_s;      /* mean time a call into it takes */
    double cpr;         /* calls into it per request (sum of its edges) */
} qsim_comp;

typedef struct qsim_edge {
    int caller, callee; /* caller -1: the program */
    double cpr;         /* calls per request */
    double bytes;       /* copied per crossing */
} qsim_edge;

typedef struct qsim_bug {
    int comp;
    double rate;        /* faults per call while active */
    double under_load;  /* active only at installations serving >= this (req/s); 0: all */
    int build, fixed_in; /* the build whose code has it, the one that fixes it (-1 none) */
} qsim_bug;

typedef struct qsim_group {
    char name[64];
    int count, first;   /* installations first .. first + count - 1 */
    double rps;         /* requests per second */
    double cpu, ncpu;   /* cores used at that load without boundaries; cores */
    double join_s, join_over_s; /* the first joins then, the rest evenly over this */
    int join_batches;   /* joins come in this many batches (0: one per tick) */
} qsim_group;

typedef struct qsim_build {
    double at_s, rollout_s; /* rolled out from at_s, evenly over rollout_s */
    int rollout_batches;    /* (0: one per tick) */
    int nchanges;
    int *changes;           /* components whose code changes in it */
} qsim_build;

typedef struct qsim_scenario {
    char name[64];
    char about[512];
    char path[512];
    double duration_s;
    double tick_s;          /* the decision grid (decide_every) */
    double max_interval_s;  /* longest interval between periodic decisions */
    double first_s;         /* after a start, decisions at first_s x 1, 4, 16, ... within a
                               tick (the supervisor's first snapshots; 0: none) */
    double history_s;       /* installations join with this much clean history of the
                               initial build (their own and the fleet's): a fleet in mid-life */
    double series_s;        /* time-series step */
    uint64_t seed;
    qp_settings set;        /* the policy's settings (mode set per run) */
    double host_restart_s, inflight_s, recovery_s, crossing_s, byte_s;
    int n, ne, nbugs, ng, nb; /* nb counts the initial build, builds[0] */
    qsim_comp *comps;
    qsim_edge *edges;
    qsim_bug *bugs;
    qsim_group *groups;
    qsim_build *builds;
    int ninst;
    /* derived */
    int *ver;               /* [b * n + c]: code version of c in build b (0, 1, ...) */
    int *vfirst;            /* [b * n + c]: the first build with that version */
    int *vid;               /* [b * n + c]: a global id of (c, version) */
    int nv;                 /* versions in all */
    int *vcomp;             /* [vid]: its component */
    int *vbuild;            /* [vid]: the build that introduced it */
} qsim_scenario;

/* Reads a scenario file. Returns 0, or -1 with err "file:line: error: ..."
 * (or "file: error: ..." when no line applies). */
int qsim_load(const char *path, qsim_scenario **out, char *err, size_t errlen);
/* The same from text; `name` stands for the file in messages. */
int qsim_parse(const char *text, size_t len, const char *name, qsim_scenario **out, char *err,
               size_t errlen);
void qsim_free(qsim_scenario *sc);

/* ---- a run ------------------------------------------------------------------ */

/* One component version with a bug, and how fast each mode isolated it. */
typedef struct qsim_bug_result {
    int comp, build;        /* the version: component, the build that introduced it */
    double exposed;         /* installations that ran it where it faults */
    double faults;          /* its faults, fleet-wide */
    double host_crashes;    /* ... of them, host crashes */
    double isolated_share;  /* of the exposed installations, the share that isolated it */
    double first_isolated_s; /* from its first run anywhere to the first isolation (-1 never) */
    double median_isolated_s; /* median over exposed installations of the time from running
                                 it to isolating it (-1: half never did) */
} qsim_bug_result;

typedef struct qsim_sample {
    double t_s;
    double host_crashes, domain_faults, lost, slowed, overhead_req, cost, oracle_cost;
    double overhead_share;  /* mean over running installations, now */
    double plan_changes;
    int isolated;           /* mean components isolated per installation x 1000 */
} qsim_sample;

typedef struct qsim_mode_result {
    qp_mode mode;
    uint64_t seed;
    double cost, oracle_cost, regret; /* weighted requests, fleet total */
    double lost_host, lost_domain;    /* failed requests: host crashes, domain faults */
    double slowed;                    /* requests that waited for a recovery */
    double overhead_req;              /* requests the boundaries' CPU cost */
    double overhead_share;            /* CPU share of crossings, mean over time and fleet */
    double oracle_overhead_share;
    double host_crashes, domain_faults, plan_changes;
    double exposures;                 /* sum over installations of the buggy versions run */
    double host_crashes_per_inst_bug; /* host_crashes / exposures */
    double installation_days;
    long decisions, qp_calls;         /* installation decisions; qp_decide calls (shared) */
    long by_reason[6];                /* qp_decide calls: QSIM_WHY_* */
    int classes;                      /* classes at the end */
    int nbugs;
    qsim_bug_result *bugs;
    int nsamples;
    qsim_sample *samples;
    double wall_s;
    /* what the oracle is priced from, after the runs (internal) */
    double *fc;             /* faults per group x build x buggy component */
    double *sfc;            /* ... at each sample */
    double *tgb, *stgb;     /* installation-seconds per group x build; at each sample */
    int ncand;              /* candidate static plans the mode held: per group x build */
    int *cand;              /* [(g * nb + b) * ncand + i]: plans, n each */
    double *candw;          /* their weights (installations that held them) */
} qsim_mode_result;

enum { QSIM_WHY_START, QSIM_WHY_CRASH, QSIM_WHY_FAULT, QSIM_WHY_PERIODIC, QSIM_WHY_FLEET,
       QSIM_WHY_EARLY };

typedef struct qsim_options {
    uint64_t seed;
    int nseeds;             /* seeds seed .. seed + nseeds - 1 (>= 1) */
    unsigned modes;         /* bit per qp_mode; 0: all four */
    int jobs;               /* threads (0: 2) */
    int series;             /* keep time series */
} qsim_options;

typedef struct qsim_result {
    int nruns;              /* nseeds x modes, seed-major, modes in qp_mode order */
    qsim_mode_result *runs;
    int noracle;            /* oracle plans: per group x build */
    char **oracle_plans;    /* as plan text */
    double *oracle_objective; /* its expected cost, weighted requests per second */
    double wall_s;
} qsim_result;

/* Runs the scenario. Returns 0, or -1 (err says why: out of memory, the
 * policy refused an input). */
int qsim_run(const qsim_scenario *sc, const qsim_options *o, qsim_result *res, char *err,
             size_t errlen);
void qsim_result_free(qsim_result *res);

/* The run of mode m and the seed index s in res, or NULL. */
const qsim_mode_result *qsim_find(const qsim_result *res, qp_mode m, int s);

#endif
