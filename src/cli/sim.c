/* sim.c - `quarantine sim`: each mode's policy over a simulated fleet,
 * against an oracle (src/qis/sim.h). */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../qis/sim.h"
#include "../qis/store.h"
#include "cli.h"
#include "opts.h"

/* the shipped scenarios, beside the include folder of the source tree */
#ifndef QTN_SCENARIO_DIR
#ifdef QTN_INCLUDE_DIR
#define QTN_SCENARIO_DIR QTN_INCLUDE_DIR "/../scenarios"
#else
#define QTN_SCENARIO_DIR "scenarios"
#endif
#endif

static void help(FILE *f) {
    fputs("usage: quarantine sim SCENARIO [--seed N] [--seeds N] [--modes a,b,...] [--json]\n"
          "                      [--series FILE] [--jobs N]\n"
          "\n"
          "Runs each mode's policy (the very function quarantine run decides with) over a\n"
          "simulated fleet, and prints per mode: requests lost to host crashes and to\n"
          "domain faults, the CPU share spent on crossings, host crashes (in all, and per\n"
          "installation per buggy component), plan changes, how soon each buggy component\n"
          "was isolated, and the regret: cost (failure weight x failed requests + slowed\n"
          "requests + requests the overhead cost) minus that of an oracle that knows the\n"
          "true fault rates and keeps the best static plan under the same budget, over the\n"
          "same faults. The same seed gives the same figures.\n"
          "\n"
          "SCENARIO is a scenario file (JSON; scenarios/README.md says how to write one),\n"
          "or the name of a shipped one (fig2-optimistic, fig2-pessimistic,\n"
          "fig2-cooperative, new-build, hot-and-buggy, large).\n"
          "\n"
          "  --seed N        the first seed (default: the scenario's)\n"
          "  --seeds N       run N seeds (N, N+1, ...) and report the mean and spread\n"
          "                  (default 1)\n"
          "  --modes LIST    modes to run, comma-separated (default\n"
          "                  optimistic,pessimistic,cooperative,adaptive)\n"
          "  --json          one JSON object instead of the tables\n"
          "  --series FILE   write a time series per mode and seed, for charts: CSV, or\n"
          "                  JSON when FILE ends in .json ('-': standard output)\n"
          "  --jobs N        threads (default 2; the figures do not depend on it)\n"
          "  --describe      print the scenario in numbers (call rates, what a boundary\n"
          "                  costs, faults per day) and do not run it\n"
          "\n"
          "example:\n"
          "  quarantine sim fig2-cooperative --seeds 3\n"
          "\n"
          "exit codes: 0 done, 1 the scenario is bad (file:line: error: ...) or the\n"
          "simulation failed, 2 bad usage, 3 output could not be written\n",
          f);
}

/* A scenario by path, else by name among the shipped ones. */
static int load(const char *arg, qsim_scenario **sc, char *err, size_t len) {
    struct stat sb;
    if (stat(arg, &sb) == 0 || strchr(arg, '/') || strstr(arg, ".json"))
        return qsim_load(arg, sc, err, len);
    char path[1024];
    const char *dir = getenv("QTN_SCENARIOS");
    snprintf(path, sizeof path, "%s/%s.json", dir && *dir ? dir : QTN_SCENARIO_DIR, arg);
    if (stat(path, &sb) != 0) {
        snprintf(err, len, "%.200s: error: no such file, nor a shipped scenario of that name "
                           "(%.600s)",
                 arg, path);
        return -1;
    }
    return qsim_load(path, sc, err, len);
}

static double mean_of(const qsim_result *res, qp_mode m, int nseeds, size_t off, double *sd,
                      double *lo, double *hi) {
    double s = 0, ss = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (int i = 0; i < nseeds; i++) {
        const qsim_mode_result *r = qsim_find(res, m, i);
        double v = *(const double *)((const char *)r + off);
        s += v, ss += v * v;
        if (v < *lo)
            *lo = v;
        if (v > *hi)
            *hi = v;
    }
    double mu = s / nseeds, var = nseeds > 1 ? (ss - nseeds * mu * mu) / (nseeds - 1) : 0;
    if (sd)
        *sd = var > 0 ? sqrt(var) : 0;
    return mu;
}

#define MEAN(field) mean_of(res, m, nseeds, offsetof(qsim_mode_result, field), NULL, &lo, &hi)

static void human(char *buf, size_t len, double v) {
    double a = fabs(v);
    if (a >= 1e9)
        snprintf(buf, len, "%.2fG", v / 1e9);
    else if (a >= 1e6)
        snprintf(buf, len, "%.2fM", v / 1e6);
    else if (a >= 1e4)
        snprintf(buf, len, "%.1fk", v / 1e3);
    else
        snprintf(buf, len, "%.0f", v);
}

static void when(char *buf, size_t len, double s) {
    if (s < 0)
        snprintf(buf, len, "never");
    else if (s < 120)
        snprintf(buf, len, "%.0f s", s);
    else if (s < 7200)
        snprintf(buf, len, "%.0f min", s / 60);
    else if (s < 2 * 86400)
        snprintf(buf, len, "%.1f h", s / 3600);
    else
        snprintf(buf, len, "%.1f d", s / 86400);
}

/* A plan's isolated components (the rest are in the host), at most len bytes. */
static void isolated(char *buf, size_t len, const char *plan) {
    size_t n = 0;
    buf[0] = 0;
    for (const char *s = plan; s && *s;) {
        const char *e = strchr(s, ' ');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l < 5 || strncmp(s + l - 5, "=host", 5)) {
            if (n + l + 6 < len)
                n += (size_t)snprintf(buf + n, len - n, "%s%.*s", n ? " " : "", (int)l, s);
            else if (!strstr(buf, "..."))
                n += (size_t)snprintf(buf + n, len - n, " ...");
        }
        s = e ? e + 1 : NULL;
    }
}

static void print_text(FILE *o, const qsim_scenario *sc, const qsim_result *res, const qp_mode *ms,
                       int nm, int nseeds) {
    fprintf(o, "scenario %s: %s\n", sc->name, sc->about[0] ? sc->about : "(no description)");
    fprintf(o, "%d installation%s, %d components, %d edges, %.3g days, %d build%s, budget %.3g%%; "
               "seed%s %llu",
            sc->ninst, sc->ninst == 1 ? "" : "s", sc->n, sc->ne, sc->duration_s / 86400, sc->nb,
            sc->nb == 1 ? "" : "s", 100 * sc->set.budget, nseeds > 1 ? "s" : "",
            (unsigned long long)res->runs[0].seed);
    if (nseeds > 1)
        fprintf(o, "..%llu", (unsigned long long)res->runs[0].seed + (unsigned)(nseeds - 1));
    fprintf(o, "\noracle (true rates, best static plan per group and build):\n");
    for (int g = 0; g < sc->ng; g++)
        for (int b = 0; b < sc->nb; b++) {
            char shown[200];
            isolated(shown, sizeof shown, res->oracle_plans[g * sc->nb + b]);
            fprintf(o, "  %s, build %d: %s\n", sc->groups[g].name, b,
                    shown[0] ? shown : "all in the host");
        }
    fprintf(o, "\n%-12s %21s %9s %9s %9s %8s %9s %8s %8s %7s\n", "mode", "regret", "lost",
            "lost", "slowed", "overhead", "host", "crashes", "plan", "qp");
    fprintf(o, "%-12s %21s %9s %9s %9s %8s %9s %8s %8s %7s\n", "", "(weighted requests)",
            "host", "domain", "", "CPU", "crashes", "/inst/bug", "changes", "calls");
    for (int i = 0; i < nm; i++) {
        qp_mode m = ms[i];
        double lo, hi, sd;
        double reg = mean_of(res, m, nseeds, offsetof(qsim_mode_result, regret), &sd, &lo, &hi);
        char rg[80], a[32], b[32];
        human(a, sizeof a, reg);
        if (nseeds > 1) {
            human(b, sizeof b, sd);
            snprintf(rg, sizeof rg, "%s +- %s", a, b);
        } else {
            snprintf(rg, sizeof rg, "%s", a);
        }
        char lh[32], ld[32], sl[32];
        human(lh, sizeof lh, MEAN(lost_host));
        human(ld, sizeof ld, MEAN(lost_domain));
        human(sl, sizeof sl, MEAN(slowed));
        double qc = 0;
        for (int s = 0; s < nseeds; s++)
            qc += (double)qsim_find(res, m, s)->qp_calls;
        fprintf(o, "%-12s %21s %9s %9s %9s %7.3g%% %9.4g %8.3g %8.4g %7.0f\n", qp_mode_name(m), rg,
                lh, ld, sl, 100 * MEAN(overhead_share), MEAN(host_crashes),
                MEAN(host_crashes_per_inst_bug), MEAN(plan_changes), qc / nseeds);
    }
    const qsim_mode_result *r0 = &res->runs[0];
    if (r0->nbugs) {
        fprintf(o, "\nbuggy components: how soon each mode isolated them (median over the "
                   "installations that ran them; first: anywhere in the fleet)\n");
        fprintf(o, "%-16s %-5s %-12s %8s %8s %8s %9s %10s %10s\n", "component", "build", "mode",
                "exposed", "faults", "host", "isolated", "first", "median");
        for (int k = 0; k < r0->nbugs; k++)
            for (int i = 0; i < nm; i++) {
                qp_mode m = ms[i];
                double ex = 0, fa = 0, hc = 0, is = 0, fi = 0, me = 0;
                int nfi = 0, nme = 0;
                for (int s = 0; s < nseeds; s++) {
                    const qsim_bug_result *B = &qsim_find(res, m, s)->bugs[k];
                    ex += B->exposed, fa += B->faults, hc += B->host_crashes,
                        is += B->isolated_share;
                    if (B->first_isolated_s >= 0)
                        fi += B->first_isolated_s, nfi++;
                    if (B->median_isolated_s >= 0)
                        me += B->median_isolated_s, nme++;
                }
                char f[32], md[32];
                when(f, sizeof f, nfi * 2 > nseeds ? fi / nfi : -1);
                when(md, sizeof md, nme * 2 > nseeds ? me / nme : -1);
                fprintf(o, "%-16s %-5d %-12s %8.0f %8.4g %8.4g %8.1f%% %10s %10s\n",
                        i ? "" : sc->comps[r0->bugs[k].comp].name, r0->bugs[k].build,
                        qp_mode_name(m), ex / nseeds, fa / nseeds, hc / nseeds,
                        100 * is / nseeds, f, md);
            }
    }
    fprintf(o, "\n%.2f s (%d run%s)\n", res->wall_s, res->nruns, res->nruns == 1 ? "" : "s");
}

/* What the scenario is, in numbers: per component its calls, what a
 * boundary of its own would cost, and its bugs in faults per day. */
static void describe(FILE *o, const qsim_scenario *sc) {
    fprintf(o, "scenario %s: %s\n", sc->name, sc->about[0] ? sc->about : "(no description)");
    fprintf(o, "%d components, %d edges, %d builds, %.3g days, decisions every %.3g h (at most "
               "%.3g d apart), budget %.3g%%\n",
            sc->n, sc->ne, sc->nb, sc->duration_s / 86400, sc->tick_s / 3600,
            sc->max_interval_s / 86400, 100 * sc->set.budget);
    fprintf(o, "costs: host restart %.3g s, in flight %.3g s of requests, recovery %.3g ms, "
               "crossing %.3g us + %.3g ns/byte\n",
            sc->host_restart_s, sc->inflight_s, sc->recovery_s * 1e3, sc->crossing_s * 1e6,
            sc->byte_s * 1e9);
    for (int g = 0; g < sc->ng; g++) {
        const qsim_group *G = &sc->groups[g];
        fprintf(o, "installations %s: %d, %.4g req/s, %.3g of %.3g cores, joining from %.3g d over "
                   "%.3g d; a host crash fails %.4g requests\n",
                G->name, G->count, G->rps, G->cpu, G->ncpu, G->join_s / 86400,
                G->join_over_s / 86400,
                G->rps * sc->host_restart_s + fmax(1, G->rps * sc->inflight_s));
    }
    for (int b = 1; b < sc->nb; b++) {
        fprintf(o, "build %d at %.3g d, rolled out over %.3g d, changes", b,
                sc->builds[b].at_s / 86400, sc->builds[b].rollout_s / 86400);
        for (int k = 0; k < sc->builds[b].nchanges && k < 12; k++)
            fprintf(o, " %s", sc->comps[sc->builds[b].changes[k]].name);
        fprintf(o, "%s\n", sc->builds[b].nchanges > 12 ? " ..." : "");
    }
    /* the components: all of a small system; of a large one the hottest and the buggy */
    int *show = calloc((size_t)sc->n + 1, sizeof *show);
    double *cpr = calloc((size_t)sc->n + 1, sizeof *cpr);
    if (!show || !cpr) {
        free(show), free(cpr);
        return;
    }
    for (int c = 0; c < sc->n; c++)
        cpr[c] = sc->comps[c].cpr;
    for (int c = 0; c < sc->n; c++) {
        int hotter = 0;
        for (int d = 0; d < sc->n; d++)
            hotter += cpr[d] > cpr[c] || (cpr[d] == cpr[c] && d < c);
        show[c] = sc->n <= 40 || hotter < 10;
    }
    for (int k = 0; k < sc->nbugs; k++)
        show[sc->bugs[k].comp] = 1;
    const qsim_group *G0 = &sc->groups[0];
    fprintf(o, "\n%-16s %9s %8s %10s %11s  %s\n", "component", "calls", "call", "calls/s",
            "boundary", "bugs: rate per call (faults per installation-day");
    fprintf(o, "%-16s %9s %8s %10s %11s  %s\n", "", "/request", "us", G0->name, "CPU share",
            "per group)");
    for (int c = 0; c < sc->n; c++) {
        if (!show[c])
            continue;
        double ov = 0;
        for (int e = 0; e < sc->ne; e++)
            if (sc->edges[e].callee == c || sc->edges[e].caller == c)
                ov += G0->rps * sc->edges[e].cpr * (sc->crossing_s + sc->edges[e].bytes * sc->byte_s);
        double base = G0->cpu > fmin(G0->ncpu, 1) ? G0->cpu : fmin(G0->ncpu, 1);
        fprintf(o, "%-16s %9.4g %8.3g %10.4g %10.3g%% ", sc->comps[c].name, cpr[c],
                sc->comps[c].call_s * 1e6, cpr[c] * G0->rps, 100 * ov / (base + ov));
        for (int k = 0; k < sc->nbugs; k++) {
            const qsim_bug *B = &sc->bugs[k];
            if (B->comp != c)
                continue;
            fprintf(o, " %.3g (build %d", B->rate, B->build);
            if (B->fixed_in >= 0)
                fprintf(o, ", fixed in %d", B->fixed_in);
            if (B->under_load > 0)
                fprintf(o, ", at >= %.4g req/s", B->under_load);
            fprintf(o, ":");
            for (int g = 0; g < sc->ng; g++)
                fprintf(o, " %s %.3g", sc->groups[g].name,
                        sc->groups[g].rps >= B->under_load
                            ? B->rate * cpr[c] * sc->groups[g].rps * 86400
                            : 0);
            fprintf(o, ")");
        }
        fputc('\n', o);
    }
    if (sc->n > 40)
        fprintf(o, "(the 10 hottest and the buggy of %d)\n", sc->n);
    free(show);
    free(cpr);
}

static void print_json(FILE *o, const qsim_scenario *sc, const qsim_result *res, const qp_mode *ms,
                       int nm, int nseeds) {
    fputs("{\"scenario\":", o);
    qs_json_str(o, sc->name);
    fputs(",\"about\":", o);
    qs_json_str(o, sc->about);
    fprintf(o, ",\"seed\":%llu,\"seeds\":%d,\"installations\":%d,\"components\":%d,\"edges\":%d,"
               "\"duration_s\":%.6g,\"builds\":%d,\"budget\":%.6g,\"oracle\":[",
            (unsigned long long)res->runs[0].seed, nseeds, sc->ninst, sc->n, sc->ne,
            sc->duration_s, sc->nb, sc->set.budget);
    for (int g = 0; g < sc->ng; g++)
        for (int b = 0; b < sc->nb; b++) {
            fprintf(o, "%s{\"group\":", g || b ? "," : "");
            qs_json_str(o, sc->groups[g].name);
            fprintf(o, ",\"build\":%d,\"objective_per_s\":%.6g,\"isolated\":", b,
                    res->oracle_objective[g * sc->nb + b]);
            char iso[4096];
            isolated(iso, sizeof iso, res->oracle_plans[g * sc->nb + b]);
            qs_json_str(o, iso);
            fputc('}', o);
        }
    fputs("],\"modes\":{", o);
    for (int i = 0; i < nm; i++) {
        qp_mode m = ms[i];
        double lo, hi, sd, rlo, rhi; /* MEAN() overwrites lo and hi */
        double reg = mean_of(res, m, nseeds, offsetof(qsim_mode_result, regret), &sd, &rlo, &rhi);
        double life = MEAN(installation_days);
        fprintf(o, "%s\"%s\":{\"regret\":%.6g,\"regret_sd\":%.6g,\"regret_min\":%.6g,"
                   "\"regret_max\":%.6g,\"regret_per_installation_day\":%.6g,\"regret_seeds\":[",
                i ? "," : "", qp_mode_name(m), reg, sd, rlo, rhi, life > 0 ? reg / life : 0);
        for (int s = 0; s < nseeds; s++)
            fprintf(o, "%s%.6g", s ? "," : "", qsim_find(res, m, s)->regret);
        double lh = MEAN(lost_host), ld = MEAN(lost_domain);
        fprintf(o, "],\"host_crashes_per_installation_per_buggy\":%.6g,\"lost_requests\":%.6g,"
                   "\"lost_to_host_crashes\":%.6g,\"lost_to_domain_faults\":%.6g,"
                   "\"slowed_requests\":%.6g,\"overhead_share\":%.6g,\"overhead_requests\":%.6g,"
                   "\"oracle_overhead_share\":%.6g,\"plan_changes\":%.6g,"
                   "\"plan_changes_per_installation\":%.6g,\"host_crashes\":%.6g,"
                   "\"domain_faults\":%.6g,\"cost\":%.6g,\"oracle_cost\":%.6g,"
                   "\"installation_days\":%.6g,",
                MEAN(host_crashes_per_inst_bug), lh + ld, lh, ld, MEAN(slowed),
                MEAN(overhead_share), MEAN(overhead_req), MEAN(oracle_overhead_share),
                MEAN(plan_changes), sc->ninst ? MEAN(plan_changes) / sc->ninst : 0,
                MEAN(host_crashes), MEAN(domain_faults), MEAN(cost), MEAN(oracle_cost), life);
        double qc = 0, dec = 0, wall = 0;
        for (int s = 0; s < nseeds; s++) {
            const qsim_mode_result *r = qsim_find(res, m, s);
            qc += (double)r->qp_calls, dec += (double)r->decisions, wall += r->wall_s;
        }
        double why[6] = {0};
        for (int s = 0; s < nseeds; s++)
            for (int w = 0; w < 6; w++)
                why[w] += (double)qsim_find(res, m, s)->by_reason[w] / nseeds;
        fprintf(o, "\"qp_decide_calls\":%.6g,\"qp_decide_by_reason\":{\"start\":%.6g,"
                   "\"first_snapshots\":%.6g,\"host_crash\":%.6g,\"domain_fault\":%.6g,"
                   "\"periodic\":%.6g,\"fleet\":%.6g},\"installation_decisions\":%.6g,"
                   "\"wall_s\":%.3f,\"bugs\":[",
                qc / nseeds, why[QSIM_WHY_START], why[QSIM_WHY_EARLY], why[QSIM_WHY_CRASH],
                why[QSIM_WHY_FAULT], why[QSIM_WHY_PERIODIC], why[QSIM_WHY_FLEET], dec / nseeds,
                wall / nseeds);
        const qsim_mode_result *r0 = qsim_find(res, m, 0);
        for (int k = 0; k < r0->nbugs; k++) {
            double ex = 0, fa = 0, hc = 0, is = 0, fi = 0, me = 0;
            int nfi = 0, nme = 0;
            for (int s = 0; s < nseeds; s++) {
                const qsim_bug_result *B = &qsim_find(res, m, s)->bugs[k];
                ex += B->exposed, fa += B->faults, hc += B->host_crashes, is += B->isolated_share;
                if (B->first_isolated_s >= 0)
                    fi += B->first_isolated_s, nfi++;
                if (B->median_isolated_s >= 0)
                    me += B->median_isolated_s, nme++;
            }
            fprintf(o, "%s{\"component\":", k ? "," : "");
            qs_json_str(o, sc->comps[r0->bugs[k].comp].name);
            fprintf(o, ",\"build\":%d,\"exposed\":%.6g,\"faults\":%.6g,\"host_crashes\":%.6g,"
                       "\"isolated_share\":%.6g,\"first_isolated_s\":",
                    r0->bugs[k].build, ex / nseeds, fa / nseeds, hc / nseeds, is / nseeds);
            if (nfi * 2 > nseeds)
                fprintf(o, "%.6g", fi / nfi);
            else
                fputs("null", o);
            fputs(",\"median_isolated_s\":", o);
            if (nme * 2 > nseeds)
                fprintf(o, "%.6g", me / nme);
            else
                fputs("null", o);
            fputc('}', o);
        }
        fputs("]}", o);
    }
    fprintf(o, "},\"wall_s\":%.3f}\n", res->wall_s);
}

static int write_series(const char *path, const qsim_result *res) {
    FILE *o = strcmp(path, "-") ? fopen(path, "w") : stdout;
    if (!o)
        return -1;
    size_t l = strlen(path);
    int json = l > 5 && !strcmp(path + l - 5, ".json");
    if (json)
        fputs("{\"series\":[", o);
    else
        fputs("mode,seed,t_s,host_crashes,domain_faults,lost_requests,slowed_requests,"
              "overhead_requests,overhead_share,plan_changes,cost,oracle_cost,regret\n",
              o);
    for (int i = 0; i < res->nruns; i++) {
        const qsim_mode_result *r = &res->runs[i];
        if (json)
            fprintf(o, "%s{\"mode\":\"%s\",\"seed\":%llu,\"columns\":[\"t_s\",\"host_crashes\","
                       "\"domain_faults\",\"lost_requests\",\"slowed_requests\","
                       "\"overhead_requests\",\"overhead_share\",\"plan_changes\",\"cost\","
                       "\"oracle_cost\",\"regret\"],\"rows\":[",
                    i ? "," : "", qp_mode_name(r->mode), (unsigned long long)r->seed);
        for (int k = 0; k < r->nsamples; k++) {
            const qsim_sample *s = &r->samples[k];
            if (json)
                fprintf(o, "%s[%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g]",
                        k ? "," : "", s->t_s, s->host_crashes, s->domain_faults, s->lost,
                        s->slowed, s->overhead_req, s->overhead_share, s->plan_changes, s->cost,
                        s->oracle_cost, s->cost - s->oracle_cost);
            else
                fprintf(o, "%s,%llu,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n",
                        qp_mode_name(r->mode), (unsigned long long)r->seed, s->t_s,
                        s->host_crashes, s->domain_faults, s->lost, s->slowed, s->overhead_req,
                        s->overhead_share, s->plan_changes, s->cost, s->oracle_cost,
                        s->cost - s->oracle_cost);
        }
        if (json)
            fputs("]}", o);
    }
    if (json)
        fputs("]}\n", o);
    int bad = ferror(o);
    if (o != stdout)
        bad |= fclose(o) != 0;
    else
        bad |= fflush(o) != 0;
    return bad ? -1 : 0;
}

int qtn_cli_sim(int argc, char **argv) {
    const char *scen = NULL, *series = NULL;
    qsim_options opt = {.nseeds = 1, .jobs = 2};
    int json = 0, have_seed = 0, desc = 0;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return QTN_EXIT_OK;
        }
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(a, "--describe")) {
            desc = 1;
            continue;
        }
        if (strncmp(a, "--", 2)) {
            if (scen) {
                fprintf(stderr, "quarantine: sim: one scenario at a time ('%s' and '%s')\n",
                        scen, a);
                return QTN_EXIT_USAGE;
            }
            scen = a;
            continue;
        }
        static const char *const valued[] = {"--seed", "--seeds", "--jobs", "--modes",
                                             "--series", NULL};
        bool known = false;
        for (int k = 0; valued[k]; k++)
            known |= !strcmp(a, valued[k]);
        if (!known) {
            fprintf(stderr, "quarantine: sim: unknown option '%s' (try quarantine sim --help)\n",
                    a);
            return QTN_EXIT_USAGE;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "quarantine: sim: a value is missing after '%s' (try quarantine sim "
                            "--help)\n",
                    a);
            return QTN_EXIT_USAGE;
        }
        const char *v = argv[++i];
        double x;
        if (!strcmp(a, "--seed")) {
            char *e;
            errno = 0;
            seed = strtoull(v, &e, 10);
            if (!*v || *e || errno || *v == '-') {
                fprintf(stderr, "quarantine: sim: --seed: '%s' is not a whole number >= 0\n", v);
                return QTN_EXIT_USAGE;
            }
            have_seed = 1;
        } else if (!strcmp(a, "--seeds")) {
            if (qtn_opt_num(v, 1, 1000, &x) || x != floor(x)) {
                fprintf(stderr, "quarantine: sim: --seeds: '%s' is not a whole number, 1 to "
                                "1000\n",
                        v);
                return QTN_EXIT_USAGE;
            }
            opt.nseeds = (int)x;
        } else if (!strcmp(a, "--jobs")) {
            if (qtn_opt_num(v, 1, 64, &x) || x != floor(x)) {
                fprintf(stderr, "quarantine: sim: --jobs: '%s' is not a whole number, 1 to 64\n",
                        v);
                return QTN_EXIT_USAGE;
            }
            opt.jobs = (int)x;
        } else if (!strcmp(a, "--modes")) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            opt.modes = 0;
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                int m = qp_mode_parse(t);
                if (m < 0) {
                    fprintf(stderr, "quarantine: sim: --modes: '%s' is not a mode (adaptive, "
                                    "optimistic, pessimistic, cooperative)\n",
                            t);
                    return QTN_EXIT_USAGE;
                }
                opt.modes |= 1u << m;
            }
            if (!opt.modes) {
                fprintf(stderr, "quarantine: sim: --modes: no mode given\n");
                return QTN_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--series")) {
            series = v;
        } else {
            fprintf(stderr, "quarantine: sim: unknown option '%s' (try quarantine sim --help)\n",
                    a);
            return QTN_EXIT_USAGE;
        }
    }
    if (!scen) {
        fprintf(stderr, "quarantine: sim: which scenario? (try quarantine sim --help)\n");
        return QTN_EXIT_USAGE;
    }
    char err[1024];
    qsim_scenario *sc;
    if (load(scen, &sc, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return QTN_EXIT_INPUT;
    }
    if (desc) {
        describe(stdout, sc);
        qsim_free(sc);
        return fflush(stdout) == 0 ? QTN_EXIT_OK : QTN_EXIT_OUTPUT;
    }
    opt.seed = have_seed ? seed : sc->seed;
    opt.series = series != NULL;
    qsim_result res;
    if (qsim_run(sc, &opt, &res, err, sizeof err)) {
        fprintf(stderr, "quarantine: sim: %s: %s\n", sc->name, err);
        qsim_free(sc);
        return QTN_EXIT_INPUT;
    }
    /* the modes in the order they are read: the paper's three, then their combination */
    static const qp_mode order[] = {QP_OPTIMISTIC, QP_PESSIMISTIC, QP_COOPERATIVE, QP_ADAPTIVE};
    qp_mode ms[4];
    int nm = 0;
    for (int i = 0; i < 4; i++)
        if (!opt.modes || (opt.modes >> order[i] & 1))
            ms[nm++] = order[i];
    int rc = QTN_EXIT_OK;
    if (series && write_series(series, &res)) {
        fprintf(stderr, "quarantine: sim: --series: %s: %s\n", series, strerror(errno));
        rc = QTN_EXIT_OUTPUT;
    }
    if (!series || strcmp(series, "-")) {
        if (json)
            print_json(stdout, sc, &res, ms, nm, opt.nseeds);
        else
            print_text(stdout, sc, &res, ms, nm, opt.nseeds);
    }
    if (fflush(stdout) != 0)
        rc = QTN_EXIT_OUTPUT;
    qsim_result_free(&res);
    qsim_free(sc);
    return rc;
}
