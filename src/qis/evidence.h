/* evidence.h - what the store knows, as the policy's inputs: per component
 * of a build, its evidence for its current code identity (discounted), its
 * call rate now; per caller -> callee edge, its rate and the measured cost
 * of a crossing; the measured costs of the program; where the plan in
 * force stands. The policy (policy.h) is pure; this is its I/O. */
#ifndef QTN_EVIDENCE_H
#define QTN_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "store.h"

/* The wall time a crossing took, less the callee's work, is what it cost
 * the caller in time, not in CPU: on a busy machine most of it is waiting
 * to be scheduled. Until the CPU is read from the statistics, a crossing
 * counts as at most this much CPU: each side spins at most QTN_SPIN_NS
 * (20 us by default) before it sleeps, plus the wake-ups. */
#define QS_CROSSING_CPU_MAX_S 50e-6

typedef struct qs_evidence {
    char build_id[64], exe[512];
    char proc[40];        /* the latest process of the build here ("" none) */
    int pid;
    int n, ne;
    qp_comp *comps;       /* names and code identities below */
    qp_edge *edges;
    char (*names)[64];
    char (*codes)[80];
    qp_costs costs;
    qp_state state;       /* plan age and changes in the last hour */
    char plan[4096];      /* the plan in force, as text */
    double history_s;     /* how far back the evidence goes */
    int crossing_fit;     /* intervals the CPU of a crossing was read from (0: not read so) */
} qs_evidence;

/* Loads the evidence for `build_id` (NULL or "": the build installation
 * ran last) as of now_ns (CLOCK_REALTIME). `plan` is the plan in force
 * (NULL: the one the latest statistics tell). `backoff_s` is the
 * supervisor's first restart delay (part of a restart's cost before one
 * was measured). Returns 0, 1 when the store knows no such build (err
 * says so), or -1 (err says why). */
int qs_evidence_load(qs_store *s, const char *installation, const char *build_id, int64_t now_ns,
                     const char *plan, double backoff_s, const qp_settings *set,
                     qs_evidence *ev, char *err, size_t errlen);
void qs_evidence_free(qs_evidence *ev);

/* Sets comps[].domain from plan text (`name=host name=2 ...`); names not
 * in the evidence are ignored, domains past max_domains count as the host.
 * Returns the number of components placed. */
int qs_evidence_place(qs_evidence *ev, const char *plan, int max_domains);

#endif
