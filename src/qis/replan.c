/* replan.c - the policy's decisions, made from the store and told in words
 * (see replan.h). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "replan.h"

typedef struct sb {
    char *p;
    size_t cap, n;
} sb;

static void add(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(sb *b, const char *fmt, ...) {
    if (b->n + 1 >= b->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->n = b->n + (size_t)k < b->cap ? b->n + (size_t)k : b->cap - 1;
}

/* s as the body of a JSON string (no quotes) */
static void add_js(sb *b, const char *s) {
    for (; s && *s && b->n + 8 < b->cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            add(b, "\\%c", c);
        else if (c < 0x20)
            add(b, "\\u%04x", c);
        else
            add(b, "%c", c);
    }
}

static const char *code_name(qp_code c) {
    switch (c) {
    case QP_CODE_NEW: return "new";
    case QP_CODE_CHANGED: return "changed";
    case QP_CODE_UNKNOWN: return "unknown";
    default: return "same";
    }
}

static void where(char *buf, size_t len, int d) {
    if (d)
        snprintf(buf, len, "domain %d", d);
    else
        snprintf(buf, len, "host");
}

int qs_decide(qs_store *s, const char *inst, const char *build_id, const char *plan,
              double backoff_s, int restarting, int64_t now_ns, const qp_settings *set,
              qs_decision *d, char *err, size_t len) {
    memset(d, 0, sizeof *d);
    int r = qs_evidence_load(s, inst, build_id, now_ns, plan, backoff_s, set, &d->ev, err, len);
    if (r)
        return r;
    qs_evidence *ev = &d->ev;
    d->domain = calloc((size_t)ev->n + 1, sizeof *d->domain);
    d->why = calloc((size_t)ev->n + 1, sizeof *d->why);
    if (!d->domain || !d->why) {
        snprintf(err, len, "out of memory");
        qs_decision_free(d);
        return -1;
    }
    d->res.domain = d->domain;
    d->res.why = d->why;
    qp_state st = ev->state;
    st.restarting = restarting;
    if (qp_decide(ev->comps, ev->n, ev->edges, ev->ne, &ev->costs, set, &st, &d->res)) {
        snprintf(err, len, "policy: %s", d->res.summary);
        qs_decision_free(d);
        return -1;
    }
    qp_plan_format(ev->comps, d->domain, ev->n, d->plan, sizeof d->plan);
    /* why: the summary, then each component that moves */
    sb rb = {d->reason, sizeof d->reason, 0};
    add(&rb, "%s", d->res.summary);
    for (int i = 0; i < ev->n; i++)
        if (d->res.changed && d->domain[i] != ev->comps[i].domain)
            add(&rb, "; %s: %s", ev->names[i], d->why[i].reason);
    sb nb = {d->numbers, sizeof d->numbers, 0};
    add(&nb, "{\"objective_now\":%.6g,\"objective_new\":%.6g,\"overhead_now\":%.6g,"
             "\"overhead_new\":%.6g,\"budget\":%.6g,\"moves\":[",
        d->res.objective_now, d->res.objective_new, d->res.overhead_now, d->res.overhead_new,
        set->budget);
    bool first = true;
    for (int i = 0; i < ev->n; i++) {
        if (d->domain[i] == ev->comps[i].domain)
            continue;
        add(&nb, "%s{\"component\":\"", first ? "" : ",");
        add_js(&nb, ev->names[i]);
        add(&nb, "\",\"from\":%d,\"to\":%d,\"rate\":%.6g,\"loss_host_h\":%.6g,"
                 "\"loss_isolated_h\":%.6g,\"boundary_share\":%.6g}",
            ev->comps[i].domain, d->domain[i], d->why[i].rate, d->why[i].loss_host_h,
            d->why[i].loss_iso_h, d->why[i].boundary_share);
        first = false;
    }
    add(&nb, "]}");
    sb cb = {d->capped, sizeof d->capped, 0};
    for (int i = 0; i < ev->n; i++)
        if (!d->domain[i] && ev->comps[i].faults + ev->comps[i].host_blame > 0 &&
            strstr(d->why[i].reason, ": stays in the host"))
            add(&cb, "%s%s: %.*s", cb.n ? "; " : "", ev->names[i],
                (int)(strstr(d->why[i].reason, ": stays in the host") - d->why[i].reason) + 19,
                d->why[i].reason);
    return 0;
}

void qs_decision_free(qs_decision *d) {
    qs_evidence_free(&d->ev);
    free(d->domain);
    free(d->why);
    d->domain = NULL;
    d->why = NULL;
}

/* A cost as measured, or its fallback. */
static void cost_line(FILE *o, const qs_decision *d) {
    const qp_costs *k = &d->ev.costs;
    int fb = d->res.fallbacks;
    fprintf(o, "costs: host restart ");
    if (fb & QP_F_RESTART)
        fprintf(o, "1 s (not measured yet)");
    else
        fprintf(o, "%.3g s (measured)", k->host_restart_s);
    if (fb & QP_F_REQUESTS)
        fprintf(o, ", work rate not counted (qtn_work_done): calls from the program stand for it");
    else
        fprintf(o, ", %.4g req/s (measured)", k->requests_per_s);
    if (fb & QP_F_RECOVERY)
        fprintf(o, ", domain recovery 1 ms (not measured yet)");
    else
        fprintf(o, ", domain recovery %.3g ms (measured)", k->recovery_s * 1e3);
    if (fb & QP_F_CROSSING)
        fprintf(o, ", crossing 20 us (not measured yet)");
    else if (d->ev.crossing_fit)
        fprintf(o, ", crossing %.3g us of CPU (measured: CPU against crossings per request over "
                   "%d intervals)",
                k->crossing_s * 1e6, d->ev.crossing_fit);
    else
        fprintf(o, ", crossing %.3g us (measured: its time less the callee's, counted as at most "
                   "%.3g us of CPU)",
                k->crossing_s * 1e6, QS_CROSSING_CPU_MAX_S * 1e6);
    if (fb & QP_F_CPU)
        fprintf(o, ", CPU not measured yet (one core assumed)");
    else
        fprintf(o, ", CPU %.2f of %.0f cores (measured)", k->cpu_s_per_s, k->ncpu);
    fprintf(o, "\n");
}

static void rate(char *buf, size_t len, double v) {
    snprintf(buf, len, v > 0 && v < 1e-3 ? "%.2g" : "%.3g", v);
}

static void print_json(FILE *o, const qs_decision *d, const qp_settings *set) {
    const qs_evidence *ev = &d->ev;
    char tmp[8192];
    sb b = {tmp, sizeof tmp, 0};
    fputs("{\"plan\":\"", o);
    b.n = 0;
    add_js(&b, d->plan);
    fputs(tmp, o);
    fprintf(o, "\",\"mode\":\"%s\",\"build_id\":\"%s\",\"changed\":%s,\"held\":%s,\"summary\":\"",
            qp_mode_name(set->mode), ev->build_id, d->res.changed ? "true" : "false",
            d->res.held ? "true" : "false");
    b.n = 0;
    add_js(&b, d->res.summary);
    fputs(tmp, o);
    fprintf(o, "\",\"plan_in_force\":\"");
    b.n = 0;
    add_js(&b, ev->plan);
    fputs(tmp, o);
    fprintf(o, "\",\"objective_now\":%.6g,\"objective_new\":%.6g,\"overhead_now\":%.6g,"
               "\"overhead_new\":%.6g,\"budget\":%.6g,\"budget_binds\":\"%s\","
               "\"within_budget\":%s,\"failure_weight\":%.6g,"
               "\"half_life_s\":%.6g,\"history_s\":%.6g,",
            d->res.objective_now, d->res.objective_new, d->res.overhead_now,
            d->res.overhead_new, set->budget, set->hard_budget ? "all" : "insurance",
            d->res.within_new ? "true" : "false", set->failure_weight, set->half_life_s,
            ev->history_s);
    const qp_costs *k = &ev->costs;
    int fb = d->res.fallbacks;
    fprintf(o, "\"costs\":{\"host_restart_s\":%.6g,\"requests_per_s\":%.6g,\"recovery_s\":%.6g,"
               "\"crossing_s\":%.6g,\"cpu_s_per_s\":%.6g,\"ncpu\":%.6g,\"measured\":{"
               "\"host_restart\":%s,\"requests\":%s,\"recovery\":%s,\"crossing\":%s,\"cpu\":%s}},",
            k->host_restart_s, k->requests_per_s, k->recovery_s, k->crossing_s, k->cpu_s_per_s,
            k->ncpu, fb & QP_F_RESTART ? "false" : "true", fb & QP_F_REQUESTS ? "false" : "true",
            fb & QP_F_RECOVERY ? "false" : "true", fb & QP_F_CROSSING ? "false" : "true",
            fb & QP_F_CPU ? "false" : "true");
    fputs("\"components\":[", o);
    for (int i = 0; i < ev->n; i++) {
        const qp_comp *c = &ev->comps[i];
        const qp_why *w = &d->why[i];
        fprintf(o, "%s{\"component\":\"%s\",\"code\":\"%s\",\"code_id\":\"%s\","
                   "\"calls_per_s\":%.6g,\"calls\":%.6g,\"faults_isolated\":%.6g,"
                   "\"host_crashes_blamed\":%.6g,\"ambiguous\":%.6g,\"pooled_calls\":%.6g,"
                   "\"pooled_installations\":%d,\"rate_mean\":%.6g,\"rate_upper\":%.6g,"
                   "\"rate\":%.6g,\"prior\":\"%s\",\"loss_host_per_h\":%.6g,"
                   "\"loss_isolated_per_h\":%.6g,\"boundary_cpu_share\":%.6g,"
                   "\"domain_in_force\":%d,\"domain\":%d,\"reason\":\"",
                i ? "," : "", ev->names[i], code_name(c->code), ev->codes[i], c->calls_per_s,
                c->calls, c->faults, c->host_blame, c->ambiguous, c->pool_calls,
                c->pool_installations, w->rate_mean, w->rate_upper, w->rate, w->prior,
                w->loss_host_h, w->loss_iso_h, w->boundary_share, c->domain, w->domain);
        b.n = 0;
        add_js(&b, w->reason);
        fputs(tmp, o);
        fputs("\"}", o);
    }
    fputs("]}\n", o);
}

void qs_decision_print(FILE *o, const qs_decision *d, const qp_settings *set, int explain,
                       int json) {
    if (json) {
        print_json(o, d, set);
        return;
    }
    fprintf(o, "%s\n", d->plan);
    if (!explain)
        return;
    const qs_evidence *ev = &d->ev;
    fprintf(o, "\nmode %s, budget %.0f%% of the program's CPU (%s), failure weight %g; evidence "
               "of %.1f h",
            qp_mode_name(set->mode), set->budget * 100,
            set->hard_budget ? "a hard cap" : "binding insurance, not proven faults",
            set->failure_weight, ev->history_s / 3600);
    if (set->half_life_s > 0)
        fprintf(o, ", older evidence counting half every %.3g d", set->half_life_s / 86400);
    fprintf(o, "\nbuild %s; plan in force: %s\n", ev->build_id,
            ev->plan[0] ? ev->plan : "(all in the host)");
    cost_line(o, d);
    fprintf(o, "decision: %s\n\n", d->res.summary);
    fprintf(o, "%-14s %-8s %9s %7s %7s %10s %10s %10s %10s %9s  %s\n", "component", "code",
            "calls/s", "faults", "host", "rate", "rate", "loss/h", "loss/h", "boundary",
            "placement");
    fprintf(o, "%-14s %-8s %9s %7s %7s %10s %10s %10s %10s %9s\n", "", "", "", "isolated",
            "crashes", "mean", "upper", "in host", "isolated", "CPU");
    for (int i = 0; i < ev->n; i++) {
        const qp_comp *c = &ev->comps[i];
        const qp_why *w = &d->why[i];
        char m[16], u[16], lh[16], li[16], pl[16];
        rate(m, sizeof m, w->rate_mean);
        rate(u, sizeof u, w->rate_upper);
        rate(lh, sizeof lh, w->loss_host_h);
        rate(li, sizeof li, w->loss_iso_h);
        where(pl, sizeof pl, w->domain);
        fprintf(o, "%-14s %-8s %9.4g %7.3g %7.3g %10s %10s %10s %10s %8.2g%%  %s\n",
                ev->names[i], code_name(c->code), c->calls_per_s, c->faults, c->host_blame, m, u,
                lh, li, 100 * w->boundary_share, pl);
    }
    fputc('\n', o);
    for (int i = 0; i < ev->n; i++)
        fprintf(o, "  %s: %s\n", ev->names[i], d->why[i].reason);
}
