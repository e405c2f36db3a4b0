/* plan.c - how long the policy takes to decide, on systems much larger than
 * a server: 1,000 components and 10,000 edges (and 100 / 1,000 beside it),
 * with a few components faulting, in each mode.
 *
 *   plan_100_ms, plan_1000_ms   median time of one qp_decide (adaptive)
 *   plan_1000_max_ms            the slowest of the runs
 *   plan_1000_<mode>_ms         median per mode
 * Usage: plan [--quick] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct sys {
    int n, ne;
    qp_comp *c;
    qp_edge *e;
    int *dom;
    qp_why *why;
    char (*names)[16];
} sys;

/* A call graph of n components: the program calls a tenth of them, each
 * component calls ne/n others; call rates fall off along the graph; one
 * component in 50 has faulted, and a few host crashes are blamed. */
static void make(sys *s, int n, int ne, unsigned seed) {
    s->n = n;
    s->ne = ne;
    s->c = calloc((size_t)n, sizeof *s->c);
    s->e = calloc((size_t)ne, sizeof *s->e);
    s->dom = calloc((size_t)n, sizeof *s->dom);
    s->why = calloc((size_t)n, sizeof *s->why);
    s->names = calloc((size_t)n, sizeof *s->names);
    if (!s->c || !s->e || !s->dom || !s->why || !s->names) {
        fprintf(stderr, "plan: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        snprintf(s->names[i], sizeof s->names[i], "c%d", i);
        seed = seed * 1103515245u + 12345u;
        s->c[i] = (qp_comp){.name = s->names[i], .code = (qp_code)(seed >> 8) % 4,
                            .calls = 1e3 * (double)((seed >> 4) % 10000),
                            .faults = (seed >> 12) % 50 == 0 ? 3 : 0,
                            .host_blame = (seed >> 16) % 97 == 0 ? 1 : 0,
                            .calls_per_s = (double)((seed >> 3) % 5000),
                            .call_s = 2e-5, .domain = (seed >> 20) % 40 == 0 ? 1 : 0};
        s->c[i].clean_calls = s->c[i].faults > 0 ? 0 : s->c[i].calls;
    }
    for (int k = 0; k < ne; k++) {
        seed = seed * 1103515245u + 12345u;
        int callee = (int)((seed >> 6) % (unsigned)n);
        int caller = k < n / 10 ? -1 : (int)((seed >> 14) % (unsigned)n);
        s->e[k] = (qp_edge){.caller = caller, .callee = callee,
                            .calls_per_s = (double)((seed >> 2) % 2000),
                            .bytes_per_call = (double)((seed >> 9) % 8192),
                            .cross_s = (seed >> 22) % 3 ? 0 : 4e-6};
    }
}

static void drop(sys *s) {
    free(s->c), free(s->e), free(s->dom), free(s->why), free(s->names);
}

static double time_one(sys *s, qp_mode mode, int runs, double *max) {
    qp_costs k = {.host_restart_s = 0.5, .requests_per_s = 5000, .recovery_s = 0.001,
                  .cpu_s_per_s = 1.5, .ncpu = 2};
    qp_settings set;
    qp_settings_default(&set);
    set.mode = mode;
    qp_state st = {.plan_age_s = 1e9};
    double *t = calloc((size_t)runs, sizeof *t);
    for (int r = 0; r < runs; r++) {
        qp_result res = {.domain = s->dom, .why = s->why};
        double t0 = now_ms();
        if (qp_decide(s->c, s->n, s->e, s->ne, &k, &set, &st, &res)) {
            fprintf(stderr, "plan: %s\n", res.summary);
            exit(1);
        }
        t[r] = now_ms() - t0;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp);
    double med = t[runs / 2];
    if (max)
        *max = t[runs - 1];
    free(t);
    return med;
}

int main(int argc, char **argv) {
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    int runs = quick ? 3 : 21;
    sys small, big;
    make(&small, 100, 1000, 1);
    make(&big, 1000, 10000, 2);
    double max;
    double t100 = time_one(&small, QP_ADAPTIVE, runs, NULL);
    double t1000 = time_one(&big, QP_ADAPTIVE, runs, &max);
    printf("plan_100_ms %.3f ms\n", t100);
    printf("plan_1000_ms %.3f ms\n", t1000);
    printf("plan_1000_max_ms %.3f ms\n", max);
    for (int m = 1; m < 4; m++)
        printf("plan_1000_%s_ms %.3f ms\n", qp_mode_name((qp_mode)m),
               time_one(&big, (qp_mode)m, runs, NULL));
    printf("plan_1000/plan_100 %.2f x\n", t100 > 0 ? t1000 / t100 : 0);
    drop(&small);
    drop(&big);
    return 0;
}
