/* sim.c - `quarantine sim` on the shipped scenarios: each mode's regret
 * (mean over several seeds, with its spread), the figure per scenario, and
 * how long `large` (500 components x 5,000 installations x 30 days, all
 * four modes, one seed) takes.
 *
 *   sim_<scenario>_<mode>_regret          mean regret, weighted requests
 *   sim_<scenario>_<mode>_regret_sd       its standard deviation over the seeds
 *   sim_<scenario>_<mode>_crashes_per_inst_bug
 *   sim_<scenario>_adaptive_vs_best       adaptive's regret over the best of
 *                                         the other three (<= 1: adaptive wins)
 *   sim_large_s                           wall time of large (4 modes, 1 seed)
 *   sim_large_<mode>_s                    ... of each mode's run
 * Usage: sim [--seeds N] [--quick] [SCENARIO-DIR]
 * (--quick: 2 seeds, and large is left out) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static qsim_scenario *load(const char *dir, const char *name) {
    char path[1024], err[1024];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    qsim_scenario *sc = NULL;
    if (qsim_load(path, &sc, err, sizeof err)) {
        fprintf(stderr, "sim: %s\n", err);
        return NULL;
    }
    return sc;
}

static int regrets(const char *dir, const char *name, int nseeds) {
    qsim_scenario *sc = load(dir, name);
    if (!sc)
        return -1;
    qsim_options o = {.seed = sc->seed, .nseeds = nseeds, .jobs = 2};
    qsim_result res;
    char err[512];
    if (qsim_run(sc, &o, &res, err, sizeof err)) {
        fprintf(stderr, "sim: %s: %s\n", name, err);
        qsim_free(sc);
        return -1;
    }
    double mean[4];
    for (int m = 0; m < 4; m++) {
        double s = 0, ss = 0, hc = 0;
        for (int i = 0; i < nseeds; i++) {
            const qsim_mode_result *r = qsim_find(&res, (qp_mode)m, i);
            s += r->regret, ss += r->regret * r->regret, hc += r->host_crashes_per_inst_bug;
        }
        mean[m] = s / nseeds;
        double var = nseeds > 1 ? (ss - nseeds * mean[m] * mean[m]) / (nseeds - 1) : 0;
        const char *mn = qp_mode_name((qp_mode)m);
        printf("sim_%s_%s_regret %.6g requests\n", name, mn, mean[m]);
        printf("sim_%s_%s_regret_sd %.6g requests\n", name, mn, var > 0 ? sqrt(var) : 0);
        printf("sim_%s_%s_crashes_per_inst_bug %.4g crashes\n", name, mn, hc / nseeds);
    }
    double best = fmin(mean[QP_OPTIMISTIC], fmin(mean[QP_PESSIMISTIC], mean[QP_COOPERATIVE]));
    printf("sim_%s_adaptive_vs_best %.3f x\n", name, best > 0 ? mean[QP_ADAPTIVE] / best : 0);
    printf("sim_%s_seeds %d seeds\n", name, nseeds);
    qsim_result_free(&res);
    qsim_free(sc);
    return 0;
}

int main(int argc, char **argv) {
    int nseeds = 5, quick = 0;
    const char *dir = SCENARIOS;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1, nseeds = 2;
        else if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
            nseeds = atoi(argv[++i]);
        else if (argv[i][0] != '-')
            dir = argv[i];
        else {
            fprintf(stderr, "usage: sim [--seeds N] [--quick] [SCENARIO-DIR]\n");
            return 2;
        }
    }
    if (nseeds < 1)
        nseeds = 1;
    static const char *const small[] = {"fig2-optimistic", "fig2-pessimistic", "fig2-cooperative",
                                        "new-build", "hot-and-buggy"};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        if (regrets(dir, small[i], nseeds))
            return 1;
    if (quick)
        return 0;
    qsim_scenario *sc = load(dir, "large");
    if (!sc)
        return 1;
    qsim_options o = {.seed = sc->seed, .nseeds = 1, .jobs = 2};
    qsim_result res;
    char err[512];
    double t0 = now_s();
    if (qsim_run(sc, &o, &res, err, sizeof err)) {
        fprintf(stderr, "sim: large: %s\n", err);
        return 1;
    }
    double t = now_s() - t0;
    for (int m = 0; m < 4; m++) {
        const qsim_mode_result *r = qsim_find(&res, (qp_mode)m, 0);
        printf("sim_large_%s_regret %.6g requests\n", qp_mode_name((qp_mode)m), r->regret);
        printf("sim_large_%s_crashes_per_inst_bug %.4g crashes\n", qp_mode_name((qp_mode)m),
               r->host_crashes_per_inst_bug);
        printf("sim_large_%s_s %.2f s\n", qp_mode_name((qp_mode)m), r->wall_s);
    }
    printf("sim_large_s %.2f s\n", t);
    qsim_result_free(&res);
    qsim_free(sc);
    return 0;
}
