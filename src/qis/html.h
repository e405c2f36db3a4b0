/* html.h - `quarantine report --html FILE`: the store as one self-contained
 * HTML page (no script, no external style, font or image: it loads nothing
 * from anywhere), its charts inline SVG. Everything taken from the store is
 * escaped: component names, reasons, plans and frames are untrusted. */
#ifndef QTN_HTML_H
#define QTN_HTML_H

#include <stdint.h>
#include <stdio.h>

#include "store.h"

/* Writes the page for what happened since `since_ns` (0: all) to o:
 * faults and host crashes per component over time, the plan timeline with
 * the reason of each change, crossing overhead per edge against the
 * budget, recovery and host restart times, the call graph with its
 * boundaries, and the crash buckets with their example backtraces. Each
 * chart is an <svg> with an id (chart-faults, chart-plan, chart-overhead,
 * chart-recovery, chart-restarts, chart-graph) whose data marks carry
 * class="datum". Returns 0, or -1 with err saying why. */
int qh_write(qs_store *s, FILE *o, int64_t since_ns, char *err, size_t errlen);

/* Writes v escaped for HTML text and attribute values. */
void qh_esc(FILE *o, const char *v);

#endif
