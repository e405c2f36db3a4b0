/* test_upcalls.c - a domain that makes calls up to the host naming ever new
 * (caller, entry) pairs: past QTN__EDGE_MAX edges such calls count in the
 * overflow bucket, and the host allocates nothing per call (before, each
 * one allocated an edge that was never freed). The calls still work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <malloc.h>

#include "quarantine.h"
#include "util.h"

#define SINKS 64   /* entries of "sink", in the host */
#define CALLERS 40 /* components with no entries, named as callers */
#define PAIRS ((CALLERS + 1) * SINKS) /* the program (NULL) too */

/* ---- "sink", in the host: entry i returns i ---------------------------------------- */

static qtn_component sink_component;
static qtn_entry sink_entries[SINKS];
static const qtn_entry *sink_list[SINKS];
static char sink_names[SINKS][8];
static const qtn_param p_i32[] = {QTN_P_SCALAR(QTN_T_I32)};

static void sink_thunk(qtn_val *a, qtn_val *r) { r->i = a[0].i; }

static qtn_component fillers[CALLERS];
static char filler_names[CALLERS][8];

/* ---- "spray", isolated: calls up through pairs [from, from + n) -------------------- */

static qtn_edge *pair_edges; /* in the domain, one per pair */

static int64_t spray_real(int32_t from, int32_t n) {
    if (!pair_edges && !(pair_edges = calloc(PAIRS, sizeof *pair_edges)))
        return -2;
    int64_t sum = 0;
    for (int32_t k = 0; k < n; k++) {
        int p = (from + k) % PAIRS, e = p % SINKS, c = p / SINKS;
        qtn_edge *ed = &pair_edges[p];
        if (!ed->entry)
            *ed = (qtn_edge)QTN_EDGE_INIT(c ? &fillers[c - 1] : NULL, &sink_entries[e]);
        qtn_val v[1] = {{.i = e}}, r;
        if (qtn_call(ed, v, &r))
            return -3;
        sum += r.i;
    }
    return sum;
}

static void spray_thunk(qtn_val *a, qtn_val *r) {
    r->i = spray_real((int32_t)a[0].i, (int32_t)a[1].i);
}
static const qtn_param p_spray[] = {QTN_P_SCALAR(QTN_T_I32), QTN_P_SCALAR(QTN_T_I32)};
static qtn_component spray_component;
static const qtn_entry spray_entry = {.name = "spray", .component = &spray_component,
                                      .thunk = spray_thunk, .ret = QTN_T_I64, .nparams = 2,
                                      .params = p_spray, .fault = {.i = -1},
                                      .deadline_ms = 60000};
static const qtn_entry *const spray_list[] = {&spray_entry};
static qtn_component spray_component = {.name = "spray", .nentries = 1, .entries = spray_list};
static qtn_edge spray_edge = QTN_EDGE_INIT(NULL, &spray_entry);

static int64_t spray(int32_t from, int32_t n) {
    qtn_val v[2] = {{.i = from}, {.i = n}}, r;
    assert_int_equal(qtn_call(&spray_edge, v, &r), 0);
    return r.i;
}

static int64_t expected(int32_t from, int32_t n) {
    int64_t sum = 0;
    for (int32_t k = 0; k < n; k++)
        sum += ((from + k) % PAIRS) % SINKS;
    return sum;
}

static size_t heap_in_use(void) { return mallinfo2().uordblks; }

static void test_new_pairs_allocate_nothing(void **state) {
    (void)state;
    tu_plan("spray=1 sink=host");
    /* past the edge limit: every pair up to 1,200 */
    assert_int_equal(spray(0, 1200), expected(0, 1200));
    /* then pairs that have no edge, over and over */
    size_t before = heap_in_use();
    for (int i = 0; i < 20; i++)
        assert_int_equal(spray(1200, 1000), expected(1200, 1000));
    size_t after = heap_in_use();
    print_message("20,000 calls up with no edge: the host's heap grew %zd bytes\n",
                  (ssize_t)(after - before));
    if (!UNDER_ASAN && after > before + 64 * 1024) /* (ASan keeps its own books; LSan looks) */
        fail_msg("the host's heap grew by %zu bytes over 20,000 calls", after - before);
    qtn_stats st;
    assert_int_equal(qtn_stats_component("sink", &st), 0);
    assert_true(st.calls >= 1000); /* the ones with an edge of their own */
    tu_plan("spray=host");
}

int main(void) {
    for (int i = 0; i < SINKS; i++) {
        snprintf(sink_names[i], sizeof sink_names[i], "s%d", i);
        sink_entries[i] = (qtn_entry){.name = sink_names[i], .component = &sink_component,
                                      .thunk = sink_thunk, .ret = QTN_T_I32, .nparams = 1,
                                      .params = p_i32, .fault = {.i = -1}};
        sink_list[i] = &sink_entries[i];
    }
    sink_component = (qtn_component){.name = "sink", .nentries = SINKS, .entries = sink_list};
    assert_int_equal(qtn_register(&sink_component), 0);
    assert_int_equal(qtn_register(&spray_component), 0);
    for (int i = 0; i < CALLERS; i++) {
        snprintf(filler_names[i], sizeof filler_names[i], "f%d", i);
        fillers[i] = (qtn_component){.name = filler_names[i]};
        assert_int_equal(qtn_register(&fillers[i]), 0);
    }
    assert_int_equal(qtn_init(NULL), 0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_new_pairs_allocate_nothing)};
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    qtn_shutdown();
    return r;
}
