/* test_sim.c - `quarantine sim`: small fleets per mode with their outcomes
 * asserted (the paper's Fig. 2 in miniature, a release that makes one
 * component buggy), the regret against the oracle, the shipped scenarios,
 * bad scenario files told as file:line, determinism for a seed, and the
 * command's --json shape. No timing here: bench/sim measures. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim.h"

/* The small server both fixtures run: its costs, components and call graph. */
#define SMALL_SERVER \
    "  \"costs\": {\"host_restart_s\": 10, \"inflight_s\": 0.02, \"recovery_s\": 0.001,\n" \
    "            \"crossing_s\": 5e-6, \"byte_s\": 5e-10},\n" \
    "  \"components\": [\n" \
    "    {\"name\": \"front\", \"calls_per_request\": 1, \"bytes\": 512, \"call_s\": 2e-5},\n" \
    "    {\"name\": \"store\", \"call_s\": 5e-5},\n" \
    "    {\"name\": \"img\", \"call_s\": 1e-3},\n" \
    "    {\"name\": \"log\", \"calls_per_request\": 2, \"bytes\": 128, \"call_s\": 1e-5}\n" \
    "  ],\n" \
    "  \"edges\": [\n" \
    "    {\"from\": \"front\", \"to\": \"store\", \"calls_per_request\": 1, \"bytes\": 2048},\n" \
    "    {\"from\": \"front\", \"to\": \"img\", \"calls_per_request\": 0.05, \"bytes\": 8192}\n" \
    "  ],\n"

/* 30 installations of a four-component server; img (1 ms a call, 5 calls a
 * second) faults once in 2M calls: an installation meets it every 4.6 days,
 * and a host crash costs 10 s of 100 requests/s. */
static const char small_json[] =
    "{\n"
    "  \"name\": \"small\",\n"
    "  \"about\": \"one buggy component met every few days\",\n"
    "  \"duration\": \"20d\",\n"
    "  \"seed\": 1,\n"
    "  \"budget_pct\": 25,\n"
    SMALL_SERVER
    "  \"bugs\": [{\"component\": \"img\", \"rate\": 5e-7}],\n"
    "  \"installations\": [{\"count\": 30, \"requests_per_s\": 100, \"cpu\": 0.5, \"ncpu\": 2,\n"
    "                     \"join_over\": \"1d\", \"join_batches\": 4}]\n"
    "}\n";

/* The same server with a month of clean history and no bug in its first
 * build; a release on day 3 changes store and img, and img's new code is
 * buggy. */
static const char release_json[] =
    "{\n"
    "  \"name\": \"release\",\n"
    "  \"duration\": \"12d\",\n"
    "  \"history\": \"30d\",\n"
    SMALL_SERVER
    "  \"builds\": [{\"at\": \"3d\", \"rollout\": \"6h\", \"rollout_batches\": 3,\n"
    "              \"changes\": [\"store\", \"img\"]}],\n"
    "  \"bugs\": [{\"component\": \"img\", \"rate\": 5e-7, \"build\": 1}],\n"
    "  \"installations\": [{\"count\": 30, \"requests_per_s\": 100, \"cpu\": 0.5, \"ncpu\": 2}]\n"
    "}\n";

#define NSEEDS 3

static qsim_scenario *parse(const char *text, const char *name) {
    qsim_scenario *sc = NULL;
    char err[1024] = "";
    int rc = qsim_parse(text, strlen(text), name, &sc, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(sc);
    return sc;
}

static void run(const qsim_scenario *sc, uint64_t seed, int nseeds, unsigned modes, int jobs,
                qsim_result *res) {
    qsim_options o = {.seed = seed, .nseeds = nseeds, .modes = modes, .jobs = jobs};
    char err[512] = "";
    memset(res, 0, sizeof *res);
    int rc = qsim_run(sc, &o, res, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
}

/* A field of mode m's runs, averaged over the seeds. */
static double mean(const qsim_result *res, qp_mode m, int nseeds, size_t off) {
    double s = 0;
    for (int i = 0; i < nseeds; i++) {
        const qsim_mode_result *r = qsim_find(res, m, i);
        assert_non_null(r);
        s += *(const double *)((const char *)r + off);
    }
    return s / nseeds;
}

#define MEAN(res, m, field) mean(res, m, NSEEDS, offsetof(qsim_mode_result, field))

/* The paper's Fig. 2 in miniature: each mode's outcome on one fleet. */
static void test_modes(void **state) {
    (void)state;
    qsim_scenario *sc = parse(small_json, "small.json");
    assert_int_equal(sc->ninst, 30);
    assert_int_equal(sc->n, 4);
    qsim_result res;
    run(sc, 1, NSEEDS, 0, 2, &res);
    assert_int_equal(res.nruns, 4 * NSEEDS);
    double reg[4];
    for (int m = 0; m < 4; m++) {
        for (int s = 0; s < NSEEDS; s++) {
            const qsim_mode_result *r = qsim_find(&res, (qp_mode)m, s);
            assert_non_null(r);
            assert_int_equal(r->seed, 1 + (uint64_t)s);
            /* regret is the cost over the oracle's, on the same faults */
            assert_true(r->oracle_cost > 0);
            assert_float_equal(r->regret, r->cost - r->oracle_cost, 1e-6 * r->cost);
            /* a host crash loses the restart's requests and those in flight */
            assert_float_equal(r->lost_host, r->host_crashes * (100 * 10 + 100 * 0.02),
                               1e-6 * (1 + r->lost_host));
            /* every fault of img is a host crash or a fault of its domain */
            assert_int_equal(r->nbugs, 1);
            assert_float_equal(r->bugs[0].faults, r->host_crashes + r->domain_faults, 1e-9);
            assert_float_equal(r->bugs[0].exposed, 30, 1e-9);
            assert_float_equal(r->exposures, 30, 1e-9);
        }
        reg[m] = MEAN(&res, (qp_mode)m, regret);
    }
    /* the same faults for every mode (common random numbers) */
    for (int s = 0; s < NSEEDS; s++)
        for (int m = 1; m < 4; m++)
            assert_float_equal(qsim_find(&res, (qp_mode)m, s)->bugs[0].faults,
                               qsim_find(&res, QP_OPTIMISTIC, s)->bugs[0].faults, 1e-9);
    /* optimistic: each installation crashes about once before it isolates img */
    double opt = MEAN(&res, QP_OPTIMISTIC, host_crashes_per_inst_bug);
    assert_true(opt >= 0.7 && opt <= 1.5);
    assert_true(qsim_find(&res, QP_OPTIMISTIC, 0)->bugs[0].median_isolated_s > 3600);
    /* pessimistic: everything isolated at first, so no host crash at all, and
     * more overhead than any other mode */
    assert_float_equal(MEAN(&res, QP_PESSIMISTIC, host_crashes), 0, 0);
    assert_float_equal(qsim_find(&res, QP_PESSIMISTIC, 0)->bugs[0].first_isolated_s, 0, 0);
    for (int m = 0; m < 4; m++)
        if (m != QP_PESSIMISTIC)
            assert_true(MEAN(&res, QP_PESSIMISTIC, overhead_share) >
                        2 * MEAN(&res, (qp_mode)m, overhead_share));
    /* cooperative: the fleet's crashes isolate img before most installations
     * crash */
    assert_true(MEAN(&res, QP_COOPERATIVE, host_crashes_per_inst_bug) < opt / 3);
    /* adaptive: new code starts isolated, so it hardly crashes, and its
     * regret is the lowest within the seeds' noise */
    assert_true(MEAN(&res, QP_ADAPTIVE, host_crashes_per_inst_bug) <= 0.1);
    double best = fmin(reg[QP_OPTIMISTIC], fmin(reg[QP_PESSIMISTIC], reg[QP_COOPERATIVE]));
    double sd = 0;
    for (int s = 0; s < NSEEDS; s++) {
        double d = qsim_find(&res, QP_ADAPTIVE, s)->regret - reg[QP_ADAPTIVE];
        sd += d * d / (NSEEDS - 1);
    }
    assert_true(reg[QP_ADAPTIVE] <= best + sqrt(sd));
    assert_true(reg[QP_OPTIMISTIC] > 5 * reg[QP_ADAPTIVE]);
    assert_true(reg[QP_PESSIMISTIC] > 5 * reg[QP_ADAPTIVE]);
    /* the oracle isolates img alone */
    assert_int_equal(res.noracle, 1);
    assert_non_null(strstr(res.oracle_plans[0], "img=1"));
    assert_null(strstr(res.oracle_plans[0], "front=1"));
    qsim_result_free(&res);
    qsim_free(sc);
}

/* A release changes two components, one newly buggy: adaptive doubts the
 * changed code from the first start of the build, optimistic crashes on it. */
static void test_release(void **state) {
    (void)state;
    qsim_scenario *sc = parse(release_json, "release.json");
    assert_int_equal(sc->nb, 2);
    qsim_result res;
    run(sc, 1, NSEEDS, 1u << QP_OPTIMISTIC | 1u << QP_ADAPTIVE, 2, &res);
    assert_int_equal(res.nruns, 2 * NSEEDS);
    assert_null(qsim_find(&res, QP_PESSIMISTIC, 0));
    const qsim_mode_result *a = qsim_find(&res, QP_ADAPTIVE, 0);
    assert_int_equal(a->nbugs, 1);
    assert_int_equal(a->bugs[0].build, 1);
    assert_string_equal(sc->comps[a->bugs[0].comp].name, "img");
    assert_float_equal(a->bugs[0].isolated_share, 1, 1e-9);
    assert_true(a->bugs[0].median_isolated_s >= 0 && a->bugs[0].median_isolated_s < 3600);
    assert_true(MEAN(&res, QP_ADAPTIVE, host_crashes_per_inst_bug) <= 0.1);
    assert_true(MEAN(&res, QP_OPTIMISTIC, host_crashes_per_inst_bug) >= 0.5);
    assert_true(MEAN(&res, QP_ADAPTIVE, regret) < MEAN(&res, QP_OPTIMISTIC, regret));
    /* before the release nothing is worth a boundary: the oracle agrees */
    assert_int_equal(res.noracle, 2);
    assert_null(strstr(res.oracle_plans[0], "=1"));
    assert_non_null(strstr(res.oracle_plans[1], "img=1"));
    qsim_result_free(&res);
    qsim_free(sc);
}

/* The same seed gives the same figures, whatever the number of threads;
 * another seed other faults. */
static void test_determinism(void **state) {
    (void)state;
    qsim_scenario *sc = parse(small_json, "small.json");
    qsim_result a, b, c;
    run(sc, 7, 2, 0, 1, &a);
    run(sc, 7, 2, 0, 2, &b);
    run(sc, 8, 1, 0, 2, &c);
    assert_int_equal(a.nruns, b.nruns);
    for (int i = 0; i < a.nruns; i++) {
        const qsim_mode_result *x = &a.runs[i], *y = &b.runs[i];
        assert_int_equal(x->mode, y->mode);
        assert_int_equal(x->seed, y->seed);
        assert_true(x->regret == y->regret);
        assert_true(x->cost == y->cost);
        assert_true(x->oracle_cost == y->oracle_cost);
        assert_true(x->host_crashes == y->host_crashes);
        assert_true(x->domain_faults == y->domain_faults);
        assert_true(x->plan_changes == y->plan_changes);
        assert_true(x->lost_domain == y->lost_domain);
        assert_true(x->overhead_share == y->overhead_share);
        assert_int_equal(x->qp_calls, y->qp_calls);
        assert_true(x->bugs[0].first_isolated_s == y->bugs[0].first_isolated_s);
    }
    /* seed 8 alone gives what it gave as the second of two */
    const qsim_mode_result *b8 = qsim_find(&b, QP_OPTIMISTIC, 1),
                           *c8 = qsim_find(&c, QP_OPTIMISTIC, 0);
    assert_int_equal(b8->seed, 8);
    assert_true(b8->regret == c8->regret);
    assert_true(qsim_find(&b, QP_OPTIMISTIC, 0)->bugs[0].faults != b8->bugs[0].faults ||
                qsim_find(&b, QP_OPTIMISTIC, 0)->regret != b8->regret);
    qsim_result_free(&a);
    qsim_result_free(&b);
    qsim_result_free(&c);
    qsim_free(sc);
}

/* Bad scenario files: each message names the file, the line and what is
 * wrong. */
static void test_bad_files(void **state) {
    (void)state;
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"{\n \"duration\": \"1d\",\n \"components\": [\n  {\"name\": \"a\", "
         "\"calls_per_request\": 1},\n ]\n}\n",
         "bad.json:5: error: unexpected token near ']'"},
        {"{\n \"duration\": \"1d\",\n \"components\": [\n  {\"name\": \"a\", "
         "\"calls_per_request\": 1, \"colour\": 3}\n ],\n \"installations\": [{\"count\": 1, "
         "\"requests_per_s\": 10, \"cpu\": 0.5}]\n}\n",
         "bad.json:4: error: components[0]: unknown key 'colour'"},
        {"{\n \"duration\": \"1d\",\n \"components\": [\n  {\"name\": \"a\", "
         "\"calls_per_request\": -1}\n ],\n \"installations\": [{\"count\": 1, "
         "\"requests_per_s\": 10, \"cpu\": 0.5}]\n}\n",
         "bad.json:4: error: components[0].calls_per_request: -1 is out of range (0 to 1e+06)"},
        {"{\n \"duration\": \"soon\",\n \"components\": [{\"name\": \"a\", "
         "\"calls_per_request\": 1}],\n \"installations\": [{\"count\": 1, "
         "\"requests_per_s\": 10, \"cpu\": 0.5}]\n}\n",
         "bad.json:2: error: duration: a duration is expected (seconds, or \"90s\", \"15m\", "
         "\"2h\", \"7d\")"},
        {"{\n \"duration\": \"1d\",\n \"components\": [{\"name\": \"a\", "
         "\"calls_per_request\": 1}],\n \"bugs\": [\n  {\"component\": \"b\", \"rate\": 1e-6}\n"
         " ],\n \"installations\": [{\"count\": 1, \"requests_per_s\": 10, \"cpu\": 0.5}]\n}\n",
         "bad.json:5: error: bugs[0].component: no component 'b'"},
        {"{\n \"duration\": \"1d\",\n \"components\": [\n  {\"name\": \"a\", "
         "\"calls_per_request\": 1},\n  {\"name\": \"a\"}\n ],\n \"installations\": "
         "[{\"count\": 1, \"requests_per_s\": 10, \"cpu\": 0.5}]\n}\n",
         "bad.json:5: error: components[1].name: component 'a' is defined twice"},
        {"{\n \"duration\": \"1d\",\n \"components\": [{\"name\": \"a\", "
         "\"calls_per_request\": 1}]\n}\n",
         "bad.json: error: 'installations' is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qsim_scenario *sc = NULL;
        char err[1024] = "";
        int rc = qsim_parse(cases[i].text, strlen(cases[i].text), "bad.json", &sc, err, sizeof err);
        if (rc != -1 || strcmp(err, cases[i].err))
            fprintf(stderr, "case %zu: rc %d, \"%s\"\n", i, rc, err);
        assert_int_equal(rc, -1);
        assert_null(sc);
        assert_string_equal(err, cases[i].err);
    }
    /* a file that is not there */
    qsim_scenario *sc = NULL;
    char err[1024] = "";
    assert_int_equal(qsim_load("/nonexistent/x.json", &sc, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x.json: error: "));
}

/* Every shipped scenario reads; the paper's figure that cooperation makes:
 * in fig2-cooperative (1,000 installations) adaptive crashes an installation
 * at most 0.1 times per buggy component, optimistic about once. */
static void test_shipped(void **state) {
    (void)state;
    static const char *const names[] = {"fig2-optimistic", "fig2-pessimistic", "fig2-cooperative",
                                        "new-build",       "hot-and-buggy",    "large"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024], err[1024] = "";
        snprintf(path, sizeof path, "%s/%s.json", SCENARIOS, names[i]);
        qsim_scenario *sc = NULL;
        int rc = qsim_load(path, &sc, err, sizeof err);
        if (rc)
            fprintf(stderr, "%s\n", err);
        assert_int_equal(rc, 0);
        assert_string_equal(sc->name, names[i]);
        assert_true(strlen(sc->about) > 40); /* each says what it shows */
        if (!strcmp(names[i], "large")) {
            assert_int_equal(sc->n, 500);
            assert_int_equal(sc->ninst, 5000);
            assert_float_equal(sc->duration_s, 30 * 86400.0, 0);
        }
        if (!strcmp(names[i], "fig2-cooperative")) {
            assert_int_equal(sc->ninst, 1000);
            qsim_result res;
            run(sc, 1, 1, 1u << QP_OPTIMISTIC | 1u << QP_ADAPTIVE, 2, &res);
            double o = qsim_find(&res, QP_OPTIMISTIC, 0)->host_crashes_per_inst_bug;
            double a = qsim_find(&res, QP_ADAPTIVE, 0)->host_crashes_per_inst_bug;
            assert_true(o >= 0.7 && o <= 1.3);
            assert_true(a <= 0.1);
            qsim_result_free(&res);
        }
        qsim_free(sc);
    }
}

/* The command: --json is one object with the figures per mode, the same as
 * the library's; a bad file exits 1 with file:line. */
static void test_cli(void **state) {
    (void)state;
    char dir[] = "/tmp/test_sim.XXXXXX", path[128], bad[128], cmd[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/small.json", dir);
    snprintf(bad, sizeof bad, "%s/bad.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(small_json, f);
    fclose(f);
    f = fopen(bad, "w");
    assert_non_null(f);
    fputs("{\n \"duration\": \"1d\",\n \"budget_pct\": 300\n}\n", f);
    fclose(f);

    snprintf(cmd, sizeof cmd, "%s sim %s --seed 2 --modes optimistic,adaptive --json", QTN_BIN,
             path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    json_error_t je;
    json_t *root = json_loadf(p, 0, &je);
    assert_int_equal(pclose(p), 0);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "scenario")), "small");
    assert_int_equal(json_integer_value(json_object_get(root, "seed")), 2);
    json_t *modes = json_object_get(root, "modes");
    assert_true(json_is_object(modes));
    assert_int_equal(json_object_size(modes), 2);
    qsim_scenario *sc = parse(small_json, "small.json");
    qsim_result res;
    run(sc, 2, 1, 1u << QP_OPTIMISTIC | 1u << QP_ADAPTIVE, 2, &res);
    static const char *const keys[] = {"regret", "host_crashes_per_installation_per_buggy",
                                       "lost_requests", "overhead_share", "plan_changes"};
    for (int m = 0; m < 4; m++) {
        json_t *o = json_object_get(modes, qp_mode_name((qp_mode)m));
        if (m != QP_OPTIMISTIC && m != QP_ADAPTIVE) {
            assert_null(o);
            continue;
        }
        assert_true(json_is_object(o));
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            assert_true(json_is_number(json_object_get(o, keys[k])));
        const qsim_mode_result *r = qsim_find(&res, (qp_mode)m, 0);
        double v = json_number_value(json_object_get(o, "regret"));
        assert_float_equal(v, r->regret, 1e-5 * fabs(r->regret) + 1e-9);
        v = json_number_value(json_object_get(o, "lost_requests"));
        assert_float_equal(v, r->lost_host + r->lost_domain, 1e-5 * v + 1e-9);
        v = json_number_value(json_object_get(o, "plan_changes"));
        assert_float_equal(v, r->plan_changes, 1e-5 * v + 1e-9);
    }
    qsim_result_free(&res);
    qsim_free(sc);
    json_decref(root);

    /* the text tables name every mode asked for */
    snprintf(cmd, sizeof cmd, "%s sim %s --modes pessimistic 2>&1", QTN_BIN, path);
    p = popen(cmd, "r");
    assert_non_null(p);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    assert_int_equal(pclose(p), 0);
    assert_non_null(strstr(buf, "\npessimistic "));
    assert_null(strstr(buf, "\noptimistic "));

    /* --series: a CSV time series per mode, cumulative to the end */
    char csv[160];
    snprintf(csv, sizeof csv, "%s/series.csv", dir);
    snprintf(cmd, sizeof cmd, "%s sim %s --modes optimistic,adaptive --series %s >/dev/null",
             QTN_BIN, path, csv);
    assert_int_equal(system(cmd), 0);
    f = fopen(csv, "r");
    assert_non_null(f);
    char line[512];
    assert_non_null(fgets(line, sizeof line, f));
    assert_int_equal(strncmp(line, "mode,seed,t_s,host_crashes,", 27), 0);
    int rows[4] = {0};
    double last_t = -1, last_crashes = -1;
    while (fgets(line, sizeof line, f)) {
        char mode[32];
        unsigned long long sd;
        double t, hc;
        assert_int_equal(sscanf(line, "%31[a-z],%llu,%lf,%lf,", mode, &sd, &t, &hc), 4);
        int m = qp_mode_parse(mode);
        assert_true(m == QP_OPTIMISTIC || m == QP_ADAPTIVE);
        assert_int_equal(sd, 1);
        if (m == QP_OPTIMISTIC)
            last_t = t, last_crashes = hc;
        rows[m]++;
    }
    fclose(f);
    assert_true(rows[QP_OPTIMISTIC] >= 10);
    assert_int_equal(rows[QP_OPTIMISTIC], rows[QP_ADAPTIVE]);
    assert_float_equal(last_t, 20 * 86400.0, 1);
    assert_true(last_crashes >= 10); /* optimistic's host crashes, most of 30 */
    unlink(csv);

    /* a bad file: exit 1, file:line: error: */
    snprintf(cmd, sizeof cmd, "%s sim %s 2>&1", QTN_BIN, bad);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    char want[256];
    snprintf(want, sizeof want, "%s:3: error: budget_pct: 300 is out of range", bad);
    if (!strstr(buf, want))
        fprintf(stderr, "got: %s\n", buf);
    assert_non_null(strstr(buf, want));

    /* bad usage: exit 2 */
    snprintf(cmd, sizeof cmd, "%s sim %s --modes nosuch >/dev/null 2>&1", QTN_BIN, path);
    st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);

    snprintf(cmd, sizeof cmd, "%s sim %s --bogus 2>&1", QTN_BIN, path);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    st = pclose(p);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
    assert_non_null(strstr(buf, "quarantine: sim: unknown option '--bogus'"));

    unlink(path);
    unlink(bad);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes),       cmocka_unit_test(test_release),
        cmocka_unit_test(test_determinism), cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_shipped),     cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
