/* fleet.h - `quarantine fleet status`: what a fleet's PostgreSQL store
 * (pg.h) knows: its installations (last seen, build, plan in force), its
 * builds, the evidence pooled per component's code (calls, faults, host
 * crashes blamed, the posterior fault rate), aggregated in SQL; the plan
 * the policy (the same qs_decide as everywhere) recommends for the fleet's
 * newest build, decided for the installation that ran it last with the
 * rest of the fleet's evidence pooled, and where installations on that
 * build have another plan in force. */
#ifndef QTN_FLEET_H
#define QTN_FLEET_H

#include <stdio.h>

#include "policy.h"

/* Prints it (json: one JSON object). Returns 0, or -1 with errlen bytes
 * of err saying why (naming the store, never its password). */
int qf_status(const char *uri, FILE *out, int json, const qp_settings *set, char *err,
              size_t errlen);

#endif
