/* replan.h - a decision of the policy, made from the store: the evidence
 * loaded (evidence.h), the pure policy run (policy.h), the result told in
 * words, as a table, as JSON, and as the plan text a program takes. Used by
 * the supervisor and by `quarantine plan`. */
#ifndef QTN_REPLAN_H
#define QTN_REPLAN_H

#include <stdio.h>

#include "evidence.h"
#include "policy.h"
#include "store.h"

typedef struct qs_decision {
    qs_evidence ev;
    qp_result res;
    int *domain;
    qp_why *why;
    char plan[4096];    /* the decided plan, as text */
    char reason[1024];  /* why, in one line: the summary and the components that move */
    char numbers[2048]; /* the numbers behind it, a JSON object */
    char capped[512];   /* components a budget keeps in the host although they
                           fault, in words ("" none) */
} qs_decision;

/* Decides for the build installation runs (see qs_evidence_load for
 * build_id, plan and backoff_s). `restarting`: the plan is for a program
 * starting again (no dwell). Returns 0 (d->res.changed says whether the
 * plan changes), 1 when the store has nothing to decide from (err says
 * why), -1 on error. */
int qs_decide(qs_store *s, const char *installation, const char *build_id, const char *plan,
              double backoff_s, int restarting, int64_t now_ns, const qp_settings *set,
              qs_decision *d, char *err, size_t errlen);
void qs_decision_free(qs_decision *d);

/* Prints the decision: the plan; with explain a table per component and
 * what was measured; as one JSON object with json. */
void qs_decision_print(FILE *o, const qs_decision *d, const qp_settings *set, int explain,
                       int json);

#endif
