/* test_marshal.c - descriptor checks at registration, and inout copy in
 * one process: marshalling into a window, checking and copying back, and
 * the host's import of a frame written by a domain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "marshal.h"

static void nop_thunk(qtn_val *a, qtn_val *r) {
    (void)a;
    r->i = 0;
}

/* Registers a one-entry component with `params` and returns the result and
 * what was printed on stderr. */
static int reg(const char *name, const qtn_param *params, uint8_t n, char *msg, size_t len) {
    static qtn_component comps[32];
    static qtn_entry entries[32];
    static const qtn_entry *eps[32];
    static int used;
    assert_true(used < 32);
    qtn_component *c = &comps[used];
    qtn_entry *e = &entries[used];
    eps[used] = e;
    used++;
    *e = (qtn_entry){.name = "f", .component = c, .thunk = nop_thunk, .ret = QTN_T_I32,
                     .nparams = n, .params = params, .fault = {.i = -1}};
    *c = (qtn_component){.name = name, .nentries = 1, .entries = &eps[used - 1]};
    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    int r = qtn_register(c);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t k = fread(msg, 1, len - 1, tmp);
    msg[k] = 0;
    fclose(tmp);
    return r;
}

static void expect_bad(const char *name, const qtn_param *params, uint8_t n, const char *needle) {
    char msg[512];
    int r = reg(name, params, n, msg, sizeof msg);
    if (r != QTN_EINVAL || !strstr(msg, needle))
        fail_msg("%s: got %d and '%s', want EINVAL and '%s'", name, r, msg, needle);
    assert_non_null(strstr(msg, "quarantine: register: component"));
}

static void test_descriptor_checks(void **state) {
    (void)state;
    const qtn_param len_range[] = {QTN_P_BUF(QTN_K_IN, 1, 5), QTN_P_SCALAR(QTN_T_U64)};
    expect_bad("c1", len_range, 2, "length parameter 5 is out of range");
    const qtn_param len_type[] = {QTN_P_BUF(QTN_K_IN, 1, 1), QTN_P_SCALAR(QTN_T_F64)};
    expect_bad("c2", len_type, 2, "is not an integer scalar");
    const qtn_param zero_elem[] = {QTN_P_BUF(QTN_K_IN, 0, 1), QTN_P_SCALAR(QTN_T_U64)};
    expect_bad("c3", zero_elem, 2, "element size is 0");
    const qtn_param act[] = {
        {.kind = QTN_K_OUT, .elem_size = 1, .len = 4, .actual = QTN_ACTUAL_PARAM(1)},
        QTN_P_SCALAR(QTN_T_U64)};
    expect_bad("c4", act, 2, "must point to one 4- or 8-byte integer");
    const qtn_param act_in[] = {{.kind = QTN_K_IN, .elem_size = 1, .len = 4,
                                 .actual = QTN_ACTUAL_RET}};
    expect_bad("c5", act_in, 1, "an in buffer has no actual length");
    static const qtn_param fields[] = {{.kind = QTN_K_STRING, .offset = 0}};
    static const qtn_struct st = {"s", 8, 1, fields};
    const qtn_param out_struct[] = {{.kind = QTN_K_OUT, .elem_size = 8, .len = 1, .st = &st}};
    expect_bad("c6", out_struct, 1, "an out struct cannot hold pointers");
    static const qtn_param far[] = {{.kind = QTN_K_STRING, .offset = 4}};
    static const qtn_struct st_far = {"s", 8, 1, far};
    const qtn_param field_out[] = {{.kind = QTN_K_INOUT, .elem_size = 8, .len = 1, .st = &st_far}};
    expect_bad("c7", field_out, 1, "lies outside struct s");
    const qtn_param size_mismatch[] = {{.kind = QTN_K_INOUT, .elem_size = 16, .len = 1, .st = &st}};
    expect_bad("c8", size_mismatch, 1, "differs from struct s size 8");
    const qtn_param no_sig[] = {{.kind = QTN_K_CALLBACK}};
    expect_bad("c9", no_sig, 1, "callback without a signature");
    const qtn_param kind[] = {{.kind = 42}};
    expect_bad("c10", kind, 1, "unknown kind 42");
    const qtn_param scalar_void[] = {QTN_P_SCALAR(QTN_T_VOID)};
    expect_bad("c11", scalar_void, 1, "bad scalar type");
    const qtn_param ok[] = {QTN_P_BUF(QTN_K_INOUT, 4, 1), QTN_P_SCALAR(QTN_T_I32)};
    char msg[256];
    assert_int_equal(reg("good", ok, 2, msg, sizeof msg), 0);
    assert_string_equal(msg, "");
    expect_bad("good", ok, 2, "registered already");
    expect_bad("host", ok, 2, "reserved");
    expect_bad("a b", ok, 2, "names may hold");
}

/* ---- marshal / unmarshal ------------------------------------------------------------ */

static _Alignas(16) char win[8192];

static void test_roundtrip_in_window(void **state) {
    (void)state;
    const qtn_param ps[] = {QTN_P_STRING, QTN_P_BUF(QTN_K_IN, 2, 4), QTN_P_BUF(QTN_K_OUT, 1, 4),
                            QTN_P_BUF(QTN_K_INOUT, 4, 4), QTN_P_SCALAR(QTN_T_U32)};
    char s[] = "str";
    uint16_t in[3] = {1, 2, 3};
    char out[3] = {'a', 'b', 'c'};
    int32_t io[3] = {10, 20, 30};
    qtn_val args[5] = {{.p = s}, {.p = in}, {.p = out}, {.p = io}, {.u = 3}};
    qtn_val sh[5];
    qtn__alloc a = {.base = win, .lim = sizeof win};
    qtn__fixv fx;
    qtn__fixv_init(&fx);
    assert_int_equal(qtn__marshal(ps, 5, args, sh, &a, &fx), 0);
    assert_int_equal(fx.n, 4);
    assert_true((char *)sh[0].p >= win && (char *)sh[0].p < win + sizeof win);
    assert_string_equal(sh[0].p, "str");
    assert_memory_equal(sh[1].p, in, sizeof in);
    assert_memory_equal(sh[2].p, "\0\0\0", 3); /* out starts zeroed */
    assert_memory_equal(sh[3].p, io, sizeof io);
    assert_int_equal(sh[4].u, 3);
    /* the callee works on the copies */
    memcpy(sh[2].p, "xyz", 3);
    ((int32_t *)sh[3].p)[1] = 99;
    ((uint16_t *)sh[1].p)[0] = 77; /* an in buffer: never copied back */
    assert_int_equal(qtn__unmarshal(ps, (qtn_val){0}, QTN_T_I32, &fx), 0);
    assert_memory_equal(out, "xyz", 3);
    assert_int_equal(io[1], 99);
    assert_int_equal(in[0], 1);
    qtn__fixv_free(&fx);
}

static void test_toobig_and_null(void **state) {
    (void)state;
    const qtn_param ps[] = {QTN_P_BUF(QTN_K_IN, 1, 1), QTN_P_SCALAR(QTN_T_U64)};
    char big[9000];
    memset(big, 1, sizeof big);
    qtn_val args[2] = {{.p = big}, {.u = sizeof big}}, sh[2];
    qtn__alloc a = {.base = win, .lim = sizeof win};
    qtn__fixv fx;
    qtn__fixv_init(&fx);
    /* no bulk area (dom 0): what does not fit is refused, not truncated */
    assert_int_equal(qtn__marshal(ps, 2, args, sh, &a, &fx), QTN_ETOOBIG);
    qtn__fixv_free(&fx);
    args[1].u = SIZE_MAX / 2 + 7; /* an overflowing count */
    const qtn_param ps4[] = {QTN_P_BUF(QTN_K_IN, 4, 1), QTN_P_SCALAR(QTN_T_U64)};
    a.top = 0;
    assert_int_equal(qtn__marshal(ps4, 2, args, sh, &a, &fx), QTN_ETOOBIG);
    qtn__fixv_free(&fx);
    const qtn_param neg[] = {QTN_P_BUF(QTN_K_IN, 1, 1), QTN_P_SCALAR(QTN_T_I32)};
    qtn_val nargs[2] = {{.p = big}, {.i = -5}};
    a.top = 0;
    assert_int_equal(qtn__marshal(neg, 2, nargs, sh, &a, &fx), QTN_EINVAL);
    qtn__fixv_free(&fx);
    /* NULL crosses as NULL; an empty buffer as a valid pointer */
    qtn_val z[2] = {{.p = NULL}, {.u = 10}};
    a.top = 0;
    assert_int_equal(qtn__marshal(ps, 2, z, sh, &a, &fx), 0);
    assert_null(sh[0].p);
    z[0].p = big;
    z[1].u = 0;
    assert_int_equal(qtn__marshal(ps, 2, z, sh, &a, &fx), 0);
    assert_non_null(sh[0].p);
    qtn__fixv_free(&fx);
}

static void test_actual_lengths_checked(void **state) {
    (void)state;
    const qtn_param ps[] = {
        {.kind = QTN_K_OUT, .elem_size = 1, .len_kind = QTN_LEN_PARAM, .len = 1,
         .actual = QTN_ACTUAL_PARAM(2)},
        QTN_P_SCALAR(QTN_T_U64),
        {.kind = QTN_K_OUT, .type = QTN_T_U32, .elem_size = 4, .len = 1}};
    for (uint32_t claim = 0; claim <= 9; claim++) {
        char buf[8];
        memset(buf, '-', sizeof buf);
        uint32_t got = 1234;
        qtn_val args[3] = {{.p = buf}, {.u = 6}, {.p = &got}}, sh[3];
        qtn__alloc a = {.base = win, .lim = sizeof win};
        qtn__fixv fx;
        qtn__fixv_init(&fx);
        assert_int_equal(qtn__marshal(ps, 3, args, sh, &a, &fx), 0);
        memset(sh[0].p, 'w', 6);
        memcpy(sh[2].p, &claim, 4);
        int r = qtn__unmarshal(ps, (qtn_val){0}, QTN_T_I32, &fx);
        if (claim <= 6) {
            assert_int_equal(r, 0);
            assert_int_equal(got, claim);
            for (uint32_t i = 0; i < 8; i++)
                assert_int_equal(buf[i], i < claim ? 'w' : '-');
        } else {
            assert_int_equal(r, QTN_ECONTRACT);
            assert_int_equal(got, 1234);
            assert_memory_equal(buf, "--------", 8);
        }
        qtn__fixv_free(&fx);
    }
    /* from the return value; a negative one copies nothing */
    const qtn_param pr[] = {{.kind = QTN_K_INOUT, .elem_size = 1, .len_kind = QTN_LEN_PARAM,
                             .len = 1, .actual = QTN_ACTUAL_RET},
                            QTN_P_SCALAR(QTN_T_U64)};
    char b[4] = "abc";
    qtn_val args[2] = {{.p = b}, {.u = 4}}, sh[2];
    qtn__alloc a = {.base = win, .lim = sizeof win};
    qtn__fixv fx;
    qtn__fixv_init(&fx);
    assert_int_equal(qtn__marshal(pr, 2, args, sh, &a, &fx), 0);
    memset(sh[0].p, 'Z', 4);
    assert_int_equal(qtn__unmarshal(pr, (qtn_val){.i = -1}, QTN_T_I32, &fx), 0);
    assert_string_equal(b, "abc");
    assert_int_equal(qtn__unmarshal(pr, (qtn_val){.i = 5}, QTN_T_I32, &fx), QTN_ECONTRACT);
    assert_int_equal(qtn__unmarshal(pr, (qtn_val){.i = 2}, QTN_T_I32, &fx), 0);
    assert_memory_equal(b, "ZZc", 4);
    qtn__fixv_free(&fx);
}

/* ---- import / export -------------------------------------------------------------- */

static void test_import_checks_every_pointer(void **state) {
    (void)state;
    const qtn_param ps[] = {QTN_P_STRING, QTN_P_BUF(QTN_K_INOUT, 1, 2), QTN_P_SCALAR(QTN_T_U64)};
    char *frame = win + 1024, *hi = win + 2048;
    strcpy(frame + 100, "hello");
    memcpy(frame + 200, "abcd", 4);
    qtn_val good[3] = {{.p = frame + 100}, {.p = frame + 200}, {.u = 4}};
    qtn_val args[3];
    qtn__fixv fx;
    qtn__fixv_init(&fx);
    memcpy(args, good, sizeof args);
    assert_int_equal(qtn__import(ps, 3, args, frame, hi, &fx), 0);
    assert_string_equal(args[0].p, "hello");
    assert_true((char *)args[0].p < win || (char *)args[0].p >= win + sizeof win); /* private */
    memcpy(args[1].p, "WXYZ", 4);
    qtn__export(ps, (qtn_val){0}, QTN_T_I32, &fx);
    assert_memory_equal(frame + 200, "WXYZ", 4);
    /* below the frame, past it, straddling its end, a string without NUL */
    qtn_val bad[4][3] = {
        {{.p = frame - 1}, {.p = NULL}, {.u = 0}},
        {{.p = NULL}, {.p = hi}, {.u = 1}},
        {{.p = NULL}, {.p = hi - 3}, {.u = 4}},
        {{.p = hi - 2}, {.p = NULL}, {.u = 0}},
    };
    memset(hi - 2, 'q', 2);
    for (int i = 0; i < 4; i++) {
        memcpy(args, bad[i], sizeof args);
        qtn__fixv_init(&fx);
        if (qtn__import(ps, 3, args, frame, hi, &fx) != QTN_ECONTRACT)
            fail_msg("case %d was accepted", i);
        qtn__import_drop(&fx);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_checks),
        cmocka_unit_test(test_roundtrip_in_window),
        cmocka_unit_test(test_toobig_and_null),
        cmocka_unit_test(test_actual_lengths_checked),
        cmocka_unit_test(test_import_checks_every_pointer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
