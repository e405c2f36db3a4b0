/* test_hostile.c - a domain that breaks the contract: lies about lengths,
 * moves pointers where it was given none, and scribbles on its half of the
 * channel (sequence numbers, message types, frame offsets, entry pointers).
 * Each time the call must return its fault value, the caller's memory must
 * stay untouched outside what it declared, the host must live on, and the
 * domain must be killed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>

#include "internal.h"
#include "tk.h"
#include "util.h"

/* ---- the "evil" component: talks the channel protocol wrongly ------------------- */

enum {
    EV_SEQ_JUMP = 1,  /* a sequence number that skips ahead */
    EV_SEQ_BACK,      /* one that goes back */
    EV_BAD_TYPE,      /* a message type that does not exist */
    EV_CB_DEPTH,      /* a callback for a frame that is not there */
    EV_CB_INDEX,      /* a callback index that is no callback parameter */
    EV_CB_FRAME_OUT,  /* a frame outside the window */
    EV_CB_FRAME_LOW,  /* a frame over the caller's own frame */
    EV_CB_END_OUT,    /* a frame end past the window */
    EV_CB_STR_OUT,    /* a string argument pointing outside the frame */
    EV_CB_STR_NONUL,  /* a string argument without its NUL in the frame */
    EV_UP_ENTRY,      /* an upcall naming an entry that does not exist */
    EV_UP_CALLER,     /* an upcall naming a caller component that does not exist */
    EV_MAX
};

static int evil_real(int32_t mode, int (*cb)(const char *s)) {
    (void)cb;
    qtn__thread *t = qtn__self_thread();
    qtn__chan *ch = qtn__chan_in(qtn__my_slot(), (uint32_t)t->serving);
    size_t wsz = qtn__g.lay.win_size;
    uint64_t fo = (t->top + 15) & ~(uint64_t)15;
    char *win = qtn__win_in(qtn__my_slot(), (uint32_t)t->serving);
    qtn__frame *fr = (qtn__frame *)(win + fo);
    uint32_t seq = t->sent + 1;
    ch->dtype = QTN__MSG_CB;
    ch->did = 1; /* parameter 1 is the callback */
    ch->did2 = 0;
    ch->ddepth = 0;
    ch->dframe = fo;
    ch->dend = fo + 64;
    fr->nargs = 1;
    fr->args[0].p = win + fo + 32;
    memcpy(win + fo + 32, "hi", 3);
    switch (mode) {
    case EV_SEQ_JUMP: seq += 6; break;
    case EV_SEQ_BACK: seq -= 2; break;
    case EV_BAD_TYPE: ch->dtype = 99; break;
    case EV_CB_DEPTH: ch->ddepth = 5; break;
    case EV_CB_INDEX: ch->did = 0; break;
    case EV_CB_FRAME_OUT: ch->dframe = wsz + 4096; ch->dend = wsz + 8192; break;
    case EV_CB_FRAME_LOW: ch->dframe = 0; break;
    case EV_CB_END_OUT: ch->dend = wsz + 1; break;
    case EV_CB_STR_OUT: fr->args[0].p = win + wsz + 100; break;
    case EV_CB_STR_NONUL: memset(win + fo + 32, 'A', 32); break;
    case EV_UP_ENTRY:
        ch->dtype = QTN__MSG_UP;
        ch->did = (uint64_t)(uintptr_t)&t->top; /* any address but an entry */
        break;
    case EV_UP_CALLER:
        ch->dtype = QTN__MSG_UP;
        ch->did = (uint64_t)(uintptr_t)tk_component.entries[0];
        ch->did2 = 0x1234;
        fr->nargs = 0;
        break;
    default: return 0;
    }
    qtn__post(&ch->dseq, seq, &ch->hsleep);
    for (;;)
        pause(); /* the host kills this process */
}

static void evil_thunk(qtn_val *a, qtn_val *r) {
    r->i = evil_real((int32_t)a[0].i, (int (*)(const char *))a[1].p);
}
static const qtn_param cbp[] = {QTN_P_STRING};
static const qtn_sig cbsig = {QTN_T_I32, 1, cbp};
static const qtn_param evil_params[] = {QTN_P_SCALAR(QTN_T_I32), QTN_P_CALLBACK(&cbsig)};
static qtn_component evil_component;
static const qtn_entry evil_entry = {.name = "evil", .component = &evil_component,
                                     .thunk = evil_thunk, .ret = QTN_T_I32, .nparams = 2,
                                     .params = evil_params, .fault = {.i = -77}};
static const qtn_entry *const evil_entries[] = {&evil_entry};
static qtn_component evil_component = {.name = "evil", .nentries = 1, .entries = evil_entries};
static qtn_edge evil_edge = QTN_EDGE_INIT(NULL, &evil_entry);

static int cb_calls;
static int count_cb(const char *s) {
    (void)s;
    return ++cb_calls;
}

static int evil(int32_t mode, int *err) {
    if (QTN_DIRECT(&evil_edge))
        return evil_real(mode, count_cb);
    qtn_val v[2] = {{.i = mode}, {.p = (void *)count_cb}}, r;
    *err = qtn_call(&evil_edge, v, &r);
    return (int)r.i;
}

/* ---- helpers ------------------------------------------------------------------------ */

static uint32_t incarnation(int d) {
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(d, &di), 0);
    return di.incarnation;
}

/* The one report of a contract fault, and the domain restarted after it. */
static void expect_contract_fault(int d, uint32_t inc, const char *entry) {
    qtn_report r;
    assert_int_equal(qtn_report_next(&r, 10000), 1);
    assert_int_equal(r.kind, QTN_FAULT_CONTRACT);
    assert_int_equal(r.domain, d);
    assert_int_equal(r.incarnation, inc);
    assert_string_equal(r.entry, entry);
    assert_int_equal(r.calls_failed, 1);
    assert_int_equal(r.parked, 0);
    assert_true(r.recovery_ns > 0);
    assert_int_equal(qtn_report_next(&r, 0), 0); /* exactly one */
    assert_int_equal(incarnation(d), inc + 1);
}

static int setup(void **state) {
    (void)state;
    assert_int_equal(qtn_register(&tk_component), 0);
    assert_int_equal(qtn_register(&tk2_component), 0);
    assert_int_equal(qtn_register(&evil_component), 0);
    qtn_config cfg = {.restart_max = 1000};
    assert_int_equal(qtn_init(&cfg), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    qtn_shutdown();
    return 0;
}

/* ---- lies in the data ----------------------------------------------------------------- */

static void test_lying_lengths_and_pointers(void **state) {
    (void)state;
    int fds = -1;
    tu_plan("tk=1");
    for (int mode = 0; mode <= 6; mode++) {
        assert_int_equal(tk_nop(), 7);
        uint32_t inc = incarnation(1);
        if (fds < 0) {
            tu_settle(1);
            fds = tu_count_dir("/proc/self/fd");
        }
        char buf[24 + 16];
        memset(buf, 'g', sizeof buf);
        size_t got = 777;
        uint8_t in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];
        memset(out, 'o', sizeof out);
        tk_stream st = {in, sizeof in, out, sizeof out, 0};
        tk_stream before = st;
        int r = tk_lie(mode, buf, 24, &got, &st);
        if (mode == 0 || mode == 6) { /* honest answers */
            assert_int_equal(r, 0);
            /* mode 6 leaves *got alone: an out value starts zeroed, so 0
             * elements of buf come back */
            assert_int_equal(got, mode == 0 ? 24 : 0);
            assert_int_equal(buf[0], mode == 0 ? 'x' : 'g');
            if (mode == 6) {
                assert_null(st.next_in);
                assert_null(st.next_out);
            }
        } else {
            assert_int_equal(r, -99); /* the fault value */
            expect_contract_fault(1, inc, "tk_lie");
            assert_int_equal(got, 777); /* nothing was copied back */
            assert_int_equal(buf[0], 'g');
            assert_memory_equal(&st, &before, sizeof st);
        }
        for (size_t i = 24; i < sizeof buf; i++)
            assert_int_equal(buf[i], 'g'); /* never past what was declared */
    }
    /* restarted each time, the domain serves again */
    assert_int_equal(tk_nop(), 7);
    tu_settle(1); /* the fds of dead incarnations closed, the spare's open */
    assert_int_equal(tu_count_dir("/proc/self/fd"), fds);
    tu_plan("tk=host");
}

/* ---- lies in the channel ------------------------------------------------------------- */

static void test_channel_garbage(void **state) {
    (void)state;
    tu_plan("evil=2 tk=1");
    for (int mode = EV_SEQ_JUMP; mode < EV_MAX; mode++) {
        uint32_t inc = incarnation(2), other = incarnation(1);
        int err = 0;
        cb_calls = 0;
        int r = evil(mode, &err);
        if (r != -77 || err != QTN_ECONTRACT)
            fail_msg("mode %d: got %d (%s), want the fault value", mode, r, qtn_strerror(err));
        assert_int_equal(cb_calls, 0); /* no request was served */
        expect_contract_fault(2, inc, "evil");
        /* the host is fine and the other domain untouched */
        assert_int_equal(tk_add(1, 2, 3, 4), 10);
        assert_int_equal(incarnation(1), other);
    }
    assert_int_equal(qtn_reports_dropped(), 0);
    tu_plan("tk=host");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lying_lengths_and_pointers),
        cmocka_unit_test(test_channel_garbage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
