/* test_hostile.c - a domain that breaks the contract: lies about lengths
 * (also through the upper half of a narrower result), moves pointers where
 * it was given none, scribbles on its half of the channel (sequence
 * numbers, message types, frame offsets, entry pointers), moves a string's
 * NUL while the host copies it, and hands the host handles it never got.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <malloc.h>
#include <pthread.h>

#include "internal.h"
#include "tk.h"
#include "util.h"

/* ---- the "evil" component: talks the channel protocol wrongly ------------------- */

enum {
    EV_SEQ_JUMP = 1,  /* a sequence number that skips ahead */
    EV_SEQ_BACK,      /* one that goes back */
    EV_BAD_TYPE,      /* a message type that does not exist */
    EV_CB_DEPTH,      /* a callback for a frame that is not there */
    EV_CB_INDEX,      /* callback number 0: none */
    EV_CB_NUMBER,     /* a callback number the host never gave out */
    EV_CB_OTHER,      /* one the host gave another domain only (its number << 8) */
    EV_CB_EARLIER,    /* one the host gave this domain's incarnation before (<< 8) */
    EV_CB_FRAME_OUT,  /* a frame outside the window */
    EV_CB_FRAME_LOW,  /* a frame over the caller's own frame */
    EV_CB_END_OUT,    /* a frame end past the window */
    EV_CB_STR_OUT,    /* a string argument pointing outside the frame */
    EV_CB_STR_NONUL,  /* a string argument without its NUL in the frame */
    EV_UP_ENTRY,      /* an upcall naming an entry that does not exist */
    EV_UP_CALLER,     /* an upcall naming a caller component that does not exist */
    EV_LATE_SEQ,      /* on the late channel: a sequence number that skips ahead */
    EV_LATE_TYPE,     /* on the late channel: a message other than a callback */
    EV_LATE_DEPTH,    /* on the late channel: a callback for a frame of a call */
    EV_LATE_NUMBER,   /* on the late channel: a callback number never given out */
    EV_MAX
};

/* EV_INNER: lies in the table of calls made inside the domain (inner.c):
 * step 1 claims calls into entries that are not its own (tk's, placed in
 * another domain; an address that is no entry) and 5 into its own; step 2
 * takes its own back down to 3, puts another entry in its place, and
 * claims more calls for it in another place; step 3 claims counts that
 * would wrap around; step 5 raises tk's claim while tk is placed there,
 * step 4 once tk is elsewhere. */
enum { EV_INNER = 100 };
static const qtn_entry evil_entry;

static int inner_lies(int step) {
    qtn__inner *tab = (qtn__inner *)(qtn__my_slot() + QTN__INNER_OFF);
    if (step == 1) {
        tab[0].calls = 1000;
        tab[0].entry = (uint64_t)(uintptr_t)tk_component.entries[0];
        tab[1].calls = 1000;
        tab[1].entry = (uint64_t)(uintptr_t)&tab[5];
        tab[2].calls = 5;
        tab[2].entry = (uint64_t)(uintptr_t)&evil_entry;
    } else if (step == 3) {
        tab[2].calls = UINT64_MAX - 2; /* and it wraps around nothing */
        tab[3].calls = UINT64_MAX;
    } else if (step == 4) {
        tab[0].calls = 5000; /* tk's, once tk is placed elsewhere again */
    } else if (step == 5) {
        tab[0].calls = 1500; /* tk's, while tk is placed there */
    } else {
        tab[2].calls = 3;
        tab[3].calls = 1u << 30;
        tab[3].entry = tab[2].entry;
        tab[2].entry = (uint64_t)(uintptr_t)tk_component.entries[0];
        tab[2].calls = 1u << 30;
    }
    return 0;
}

static int evil_real(int32_t mode, int (*cb)(const char *s)) {
    if ((mode & 0xff) > EV_INNER)
        return inner_lies((mode & 0xff) - EV_INNER);
    qtn__thread *t = qtn__self_thread();
    /* the late channel is the one a domain's own threads ask on */
    bool late = (mode & 0xff) >= EV_LATE_SEQ;
    uint32_t k = late ? qtn__g.lay.nchan : (uint32_t)t->serving;
    qtn__chan *ch = qtn__chan_in(qtn__my_slot(), k);
    size_t wsz = qtn__g.lay.win_size;
    uint64_t fo = late ? 0 : (t->top + 15) & ~(uint64_t)15;
    char *win = qtn__win_in(qtn__my_slot(), k);
    qtn__frame *fr = (qtn__frame *)(win + fo);
    uint32_t seq = late ? 1 : t->sent + 1; /* each mode runs in a new process */
    ch->dtype = QTN__MSG_CB;
    ch->did = qtn__closure_number(cb); /* the callback this call passed */
    ch->did2 = 0;
    ch->ddepth = 0;
    ch->dframe = fo;
    ch->dend = fo + 64;
    fr->nargs = 1;
    fr->args[0].p = win + fo + 32;
    memcpy(win + fo + 32, "hi", 3);
    switch (mode & 0xff) {
    case EV_SEQ_JUMP: seq += 6; break;
    case EV_SEQ_BACK: seq -= 2; break;
    case EV_BAD_TYPE: ch->dtype = 99; break;
    case EV_CB_DEPTH: ch->ddepth = 5; break;
    case EV_CB_INDEX: ch->did = 0; break;
    case EV_CB_NUMBER: ch->did = 1u << 20; break;
    case EV_CB_OTHER:
    case EV_CB_EARLIER: ch->did = (uint32_t)mode >> 8; break;
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
    case EV_LATE_SEQ: seq = 5; break;
    case EV_LATE_TYPE: ch->dtype = QTN__MSG_RET; break;
    case EV_LATE_DEPTH: ch->ddepth = 1; break;
    case EV_LATE_NUMBER: ch->did = 1u << 20; break;
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

static int other_cb(const char *s) {
    (void)s;
    return ++cb_calls;
}

static int earlier_cb(const char *s) {
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

/* ---- "flip": a second domain thread moves a string's NUL ---------------------- */

/* The string of each callback request: 64 'A', the byte that flips between
 * NUL and 'A', 64 'B', NUL. A host that finds the first NUL and then copies
 * that many bytes may copy 65 bytes ending in 'A': a string longer than
 * its buffer. */
#define FLIP_AT 64
#define FLIP_LEN 130

static volatile int flip_go;

static void *flipper(void *p) {
    volatile char *c = p;
    while (flip_go)
        *c = *c ? 0 : 'A';
    return NULL;
}

/* Makes `rounds` callback requests by hand (the frame where it chooses),
 * with another thread flipping the byte all along. */
static int flip_real(int32_t rounds, int (*cb)(const char *s)) {
    qtn__thread *t = qtn__self_thread();
    qtn__chan *ch = qtn__chan_in(qtn__my_slot(), (uint32_t)t->serving);
    char *win = qtn__win_in(qtn__my_slot(), (uint32_t)t->serving);
    uint64_t fo = (t->top + 15) & ~(uint64_t)15;
    qtn__frame *fr = (qtn__frame *)(win + fo);
    char *str = win + fo + 64;
    memset(str, 'A', FLIP_LEN - 1);
    str[FLIP_AT] = 0;
    str[FLIP_LEN - 1] = 0;
    memset(str + FLIP_AT + 1, 'B', FLIP_LEN - FLIP_AT - 2);
    flip_go = 1;
    pthread_t th;
    if (pthread_create(&th, NULL, flipper, str + FLIP_AT))
        abort();
    int ok = 0;
    for (int32_t i = 0; i < rounds; i++) {
        fr->nargs = 1;
        fr->args[0].p = str;
        ch->dtype = QTN__MSG_CB;
        ch->did = qtn__closure_number(cb);
        ch->did2 = 0;
        ch->ddepth = t->dst[t->dn - 1].depth;
        ch->dframe = fo;
        ch->dend = fo + 64 + FLIP_LEN;
        qtn__post(&ch->dseq, ++t->sent, &ch->hsleep);
        if (qtn__await(&ch->hseq, t->seen, t->seen + 1, &ch->dsleep, NULL, 0, 0, NULL))
            abort();
        t->seen++;
        if (ch->htype != QTN__MSG_RET)
            abort();
        ok += fr->ret.i == 1;
    }
    flip_go = 0;
    pthread_join(th, NULL);
    return ok;
}

static void flip_thunk(qtn_val *a, qtn_val *r) {
    r->i = flip_real((int32_t)a[0].i, (int (*)(const char *))a[1].p);
}
static const qtn_param flip_params[] = {QTN_P_SCALAR(QTN_T_I32), QTN_P_CALLBACK(&cbsig)};
static qtn_component flip_component;
static const qtn_entry flip_entry = {.name = "flip", .component = &flip_component,
                                     .thunk = flip_thunk, .ret = QTN_T_I32, .nparams = 2,
                                     .params = flip_params, .fault = {.i = -77}};
static const qtn_entry *const flip_entries[] = {&flip_entry};
static qtn_component flip_component = {.name = "flip", .nentries = 1, .entries = flip_entries};
static qtn_edge flip_edge = QTN_EDGE_INIT(NULL, &flip_entry);

static _Atomic int flip_seen, flip_bad;

/* The host's callback: sees the host's private copy of the string. */
static int flip_cb(const char *s) {
    flip_seen++;
    /* a copy of 65 bytes must end at the byte that flips */
    if (s[FLIP_AT] != 0 && malloc_usable_size((void *)s) < FLIP_LEN) {
        flip_bad++;
        return 0;
    }
    size_t n = strlen(s);
    if (n != FLIP_AT && n != FLIP_LEN - 1)
        flip_bad++;
    return 1;
}

static int flip(int32_t rounds, int *err) {
    qtn_val v[2] = {{.i = rounds}, {.p = (void *)flip_cb}}, r;
    *err = qtn_call(&flip_edge, v, &r);
    return (int)r.i;
}

/* ---- "hx" in the host hands out handles; "hy", isolated, uses them ----------- */

static int64_t hx_secret; /* the host's: its domains have their own copy */

struct hx_box {
    int32_t v;
};
static void *hx_new_real(int32_t v) {
    struct hx_box *b = malloc(sizeof *b);
    if (b)
        b->v = v;
    return b;
}
static int32_t hx_get_real(void *h) { return ((struct hx_box *)h)->v; }
static void hx_free_real(void *h) { free(h); }

static void hx_new_thunk(qtn_val *a, qtn_val *r) { r->p = hx_new_real((int32_t)a[0].i); }
static void hx_get_thunk(qtn_val *a, qtn_val *r) { r->i = hx_get_real(a[0].p); }
static void hx_free_thunk(qtn_val *a, qtn_val *r) {
    (void)r;
    hx_free_real(a[0].p);
}
static const qtn_param hx_p_i32[] = {QTN_P_SCALAR(QTN_T_I32)};
static const qtn_param hx_p_plain[] = {QTN_P_HANDLE};
static const qtn_param hx_p_owned[] = {{.kind = QTN_K_HANDLE, .flags = QTN_F_OWNED}};
static qtn_component hx_component, hy_component;
static const qtn_entry hx_new_entry = {.name = "hx_new", .component = &hx_component,
                                       .thunk = hx_new_thunk, .ret = QTN_T_HANDLE,
                                       .nparams = 1, .params = hx_p_i32, .fault = {.p = NULL}};
static const qtn_entry hx_get_entry = {.name = "hx_get", .component = &hx_component,
                                       .thunk = hx_get_thunk, .ret = QTN_T_I32, .nparams = 1,
                                       .params = hx_p_plain, .fault = {.i = -1}};
static const qtn_entry hx_free_entry = {.name = "hx_free", .component = &hx_component,
                                        .thunk = hx_free_thunk, .ret = QTN_T_VOID,
                                        .nparams = 1, .params = hx_p_owned};
static const qtn_entry *const hx_entries[] = {&hx_new_entry, &hx_get_entry, &hx_free_entry};
static qtn_component hx_component = {.name = "hx", .nentries = 3, .entries = hx_entries};

/* hx's stubs, as hy calls them */
static qtn_edge hx_new_edge = QTN_EDGE_INIT(&hy_component, &hx_new_entry);
static qtn_edge hx_get_edge = QTN_EDGE_INIT(&hy_component, &hx_get_entry);
static qtn_edge hx_free_edge = QTN_EDGE_INIT(&hy_component, &hx_free_entry);
static void *hx_new(int32_t v) {
    if (QTN_DIRECT(&hx_new_edge))
        return hx_new_real(v);
    qtn_val a[1] = {{.i = v}}, r;
    qtn_call(&hx_new_edge, a, &r);
    return r.p;
}
static int32_t hx_get(void *h) {
    if (QTN_DIRECT(&hx_get_edge))
        return hx_get_real(h);
    qtn_val a[1] = {{.p = h}}, r;
    qtn_call(&hx_get_edge, a, &r);
    return (int32_t)r.i;
}
static void hx_free(void *h) {
    if (QTN_DIRECT(&hx_free_edge)) {
        hx_free_real(h);
        return;
    }
    qtn_val a[1] = {{.p = h}}, r;
    qtn_call(&hx_free_edge, a, &r);
}

enum { HY_HONEST, HY_FORGED_GET, HY_FORGED_FREE, HY_GET, HY_NEW, HY_KEPT };

/* hy_cb mode 4 keeps its callback and ctx; HY_KEPT calls them later, with
 * the kept ctx (arg 0) or arg as the ctx */
static int (*hy_kept)(void *ctx, int32_t x);
static void *hy_kept_ctx;

/* In its domain: uses hx's handles, honestly or not. */
static int64_t hy_probe_real(int32_t mode, int64_t arg) {
    switch (mode) {
    case HY_HONEST: {
        void *h = hx_new(42);
        int32_t v = hx_get(h);
        hx_free(h);
        return v;
    }
    case HY_FORGED_GET: return hx_get(&hx_secret); /* the host's secret, at the same address */
    case HY_FORGED_FREE: hx_free((void *)(uintptr_t)arg); return 0;
    case HY_GET: return hx_get((void *)(uintptr_t)arg);
    case HY_NEW: return (int64_t)(uintptr_t)hx_new((int32_t)arg);
    case HY_KEPT: return hy_kept(arg ? (void *)(uintptr_t)arg : hy_kept_ctx, 5);
    default: return -2;
    }
}

/* Calls the host's callback with its ctx, or (mode 1) with another; mode
 * 2 hands ctx (a handle hx made, passed down) back to hx. */
static int hy_cb_real(int32_t mode, int (*cb)(void *ctx, int32_t x), void *ctx) {
    if (mode == 4) {
        hy_kept = cb;
        hy_kept_ctx = ctx;
        return 0;
    }
    if (mode >= 2)
        return hx_get(ctx);
    return cb(mode ? (void *)&hx_secret : ctx, 5);
}

static void hy_probe_thunk(qtn_val *a, qtn_val *r) {
    r->i = hy_probe_real((int32_t)a[0].i, a[1].i);
}
static void hy_cb_thunk(qtn_val *a, qtn_val *r) {
    r->i = hy_cb_real((int32_t)a[0].i, (int (*)(void *, int32_t))a[1].p, a[2].p);
}
static const qtn_param hy_p_probe[] = {QTN_P_SCALAR(QTN_T_I32), QTN_P_SCALAR(QTN_T_I64)};
static const qtn_param hy_cbp[] = {QTN_P_HANDLE, QTN_P_SCALAR(QTN_T_I32)};
static const qtn_sig hy_cbsig = {QTN_T_I32, 2, hy_cbp};
static const qtn_param hy_p_cb[] = {QTN_P_SCALAR(QTN_T_I32), QTN_P_CALLBACK(&hy_cbsig),
                                    QTN_P_HANDLE};
static const qtn_entry hy_probe_entry = {.name = "hy_probe", .component = &hy_component,
                                         .thunk = hy_probe_thunk, .ret = QTN_T_I64,
                                         .nparams = 2, .params = hy_p_probe, .fault = {.i = -1}};
static const qtn_entry hy_cb_entry = {.name = "hy_cb", .component = &hy_component,
                                      .thunk = hy_cb_thunk, .ret = QTN_T_I32, .nparams = 3,
                                      .params = hy_p_cb, .fault = {.i = -1}};
static const qtn_entry *const hy_entries[] = {&hy_probe_entry, &hy_cb_entry};
static qtn_component hy_component = {.name = "hy", .nentries = 2, .entries = hy_entries};
static qtn_edge hy_probe_edge = QTN_EDGE_INIT(NULL, &hy_probe_entry);
static qtn_edge hy_cb_edge = QTN_EDGE_INIT(NULL, &hy_cb_entry);
static qtn_edge hy_cb_edge_hx = QTN_EDGE_INIT(&hx_component, &hy_cb_entry); /* hx calls */

static int64_t hy_probe(int32_t mode, int64_t arg, int *err) {
    qtn_val v[2] = {{.i = mode}, {.i = arg}}, r;
    *err = qtn_call(&hy_probe_edge, v, &r);
    return r.i;
}

static int hy_cb(int32_t mode, int (*cb)(void *ctx, int32_t x), void *ctx, int *err) {
    qtn_val v[3] = {{.i = mode}, {.p = (void *)cb}, {.p = ctx}}, r;
    *err = qtn_call(mode == 3 ? &hy_cb_edge_hx : &hy_cb_edge, v, &r);
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

/* ---- a returned string where the domain says ------------------------------------ */

/* An entry returning a string (QTN_T_STRING) whose domain answers RET with
 * the string's place made up: over the host's own frame, past the window,
 * longer than the window. */
enum { ES_LOW = 1, ES_OUT, ES_LONG, ES_MAX };

static void evil_str_thunk(qtn_val *a, qtn_val *r) {
    (void)r;
    qtn__thread *t = qtn__self_thread();
    qtn__chan *ch = qtn__chan_in(qtn__my_slot(), (uint32_t)t->serving);
    uint64_t wsz = qtn__g.lay.win_size, v = 0;
    switch (a[0].i) {
    case ES_LOW: v = 8 | (uint64_t)4 << 32; break;
    case ES_OUT: v = (wsz + 64) | (uint64_t)4 << 32; break;
    case ES_LONG: v = (t->top + 64) | (wsz - 8) << 32; break;
    default: return;
    }
    ch->dret.u = v;
    ch->dtype = QTN__MSG_RET;
    qtn__post(&ch->dseq, ++t->sent, &ch->hsleep);
    for (;;)
        pause(); /* the host kills this process */
}
static const qtn_param evil_str_params[] = {QTN_P_SCALAR(QTN_T_I32)};
static qtn_component evil_str_component;
static const qtn_entry evil_str_entry = {.name = "evil_str", .component = &evil_str_component,
                                         .thunk = evil_str_thunk, .ret = QTN_T_STRING,
                                         .nparams = 1, .params = evil_str_params,
                                         .fault = {.p = (void *)"fault"}};
static const qtn_entry *const evil_str_entries[] = {&evil_str_entry};
static qtn_component evil_str_component = {.name = "evil_str", .nentries = 1,
                                           .entries = evil_str_entries};
static qtn_edge evil_str_edge = QTN_EDGE_INIT(NULL, &evil_str_entry);

static void test_returned_string_made_up(void **state) {
    (void)state;
    tu_plan("evil_str=3");
    for (int mode = ES_LOW; mode < ES_MAX; mode++) {
        uint32_t inc = incarnation(3);
        qtn_val v[1] = {{.i = mode}}, r;
        int err = qtn_call(&evil_str_edge, v, &r);
        if (err != QTN_ECONTRACT || strcmp((const char *)r.p, "fault"))
            fail_msg("mode %d: got %s, want the fault value", mode, qtn_strerror(err));
        expect_contract_fault(3, inc, "evil_str");
    }
    tu_plan("evil_str=host");
}

/* ---- data the callee allocated, where the domain says ------------------------ */

/* An entry with callee-allocated output (QTN_K_ALLOCATED, its count in
 * *len) and one returning an allocated string, whose domain answers with
 * the data's place made up: over the host's own frame, past the window,
 * longer than the window, longer than *len says, a string without its NUL.
 * EA_HONEST answers as the runtime would. */
enum { EA_HONEST = 1, EA_LOW, EA_OUT, EA_LONG, EA_LEN, EA_SHORT, EA_RET_NONUL, EA_RET_OUT,
       EA_MAX, EA_STR_BAD };

static void evil_alloc_thunk(qtn_val *a, qtn_val *r) {
    (void)r;
    qtn__thread *t = qtn__self_thread();
    qtn__chan *ch = qtn__chan_in(qtn__my_slot(), (uint32_t)t->serving);
    char *win = qtn__win_in(qtn__my_slot(), (uint32_t)t->serving);
    uint64_t wsz = qtn__g.lay.win_size, at = (t->top + 15) & ~(uint64_t)15, v = 0;
    memcpy(win + at, "abcdefgh", 8);
    switch (a[0].i) {
    case EA_HONEST: v = at | (uint64_t)4 << 32; break;
    case EA_LOW: v = 8 | (uint64_t)4 << 32; break;
    case EA_OUT: v = (wsz + 64) | (uint64_t)4 << 32; break;
    case EA_LONG: v = at | (wsz - 8) << 32; break;
    case EA_LEN: v = at | (uint64_t)8 << 32; break; /* *len says 4 */
    case EA_SHORT: v = at | (uint64_t)2 << 32; break;
    case EA_RET_NONUL: v = at | (uint64_t)4 << 32; break; /* "abcd", no NUL */
    case EA_RET_OUT: v = (wsz - 2) | (uint64_t)4 << 32; break;
    case EA_STR_BAD: v = at | (uint64_t)4 << 32; break; /* *out honest, the string not */
    default: return;
    }
    if (a[0].i < EA_RET_NONUL || a[0].i == EA_STR_BAD) {
        uint64_t four = 4;
        memcpy(a[2].p, &four, sizeof four); /* *len */
        memcpy(a[1].p, &v, sizeof v);       /* where *out's data is */
        ch->dret.u = a[0].i == EA_STR_BAD ? 8 | (uint64_t)4 << 32 : 0; /* in the request */
    } else {
        ch->dret.u = v;
    }
    ch->dtype = QTN__MSG_RET;
    qtn__post(&ch->dseq, ++t->sent, &ch->hsleep);
    for (;;)
        pause(); /* the host kills this process (EA_HONEST: it is left alone) */
}
static void evil_free(void *p) { free(p); }
static const qtn_param evil_alloc_params[] = {
    QTN_P_SCALAR(QTN_T_I32),
    {.kind = QTN_K_ALLOCATED, .elem_size = 1, .actual = QTN_ACTUAL_PARAM(2), .free_fn = evil_free},
    {.kind = QTN_K_OUT, .elem_size = 8, .len_kind = QTN_LEN_CONST, .len = 1, .type = QTN_T_U64}};
static const qtn_param evil_aret_param = {.kind = QTN_K_ALLOCATED, .elem_size = 1,
                                          .actual = QTN_ACTUAL_STRING, .free_fn = evil_free};
static qtn_component evil_alloc_component;
static const qtn_entry evil_alloc_entry = {.name = "evil_alloc",
                                           .component = &evil_alloc_component,
                                           .thunk = evil_alloc_thunk, .ret = QTN_T_I32,
                                           .nparams = 3, .params = evil_alloc_params,
                                           .fault = {.i = -1}};
static const qtn_entry evil_aret_entry = {.name = "evil_aret",
                                          .component = &evil_alloc_component,
                                          .thunk = evil_alloc_thunk, .ret = QTN_T_ALLOCATED,
                                          .nparams = 1, .params = evil_alloc_params,
                                          .fault = {.p = NULL}, .ret_param = &evil_aret_param};
static const qtn_entry evil_astr_entry = {.name = "evil_astr",
                                          .component = &evil_alloc_component,
                                          .thunk = evil_alloc_thunk, .ret = QTN_T_STRING,
                                          .nparams = 3, .params = evil_alloc_params,
                                          .fault = {.p = NULL}};
static const qtn_entry *const evil_alloc_entries[] = {&evil_alloc_entry, &evil_aret_entry,
                                                      &evil_astr_entry};
static qtn_component evil_alloc_component = {.name = "evil_alloc", .nentries = 3,
                                             .entries = evil_alloc_entries};
static qtn_edge evil_alloc_edge = QTN_EDGE_INIT(NULL, &evil_alloc_entry);
static qtn_edge evil_aret_edge = QTN_EDGE_INIT(NULL, &evil_aret_entry);
static qtn_edge evil_astr_edge = QTN_EDGE_INIT(NULL, &evil_astr_entry);

static void test_allocated_made_up(void **state) {
    (void)state;
    tu_plan("evil_alloc=5"); /* the honest answer's thread stays in pause() there */
    static char mine[] = "mine";
    for (int mode = EA_HONEST; mode < EA_MAX; mode++) {
        uint32_t inc = incarnation(mode == EA_HONEST ? 5 : 4);
        char *out = mine;
        uint64_t len = 77;
        qtn_val v[3] = {{.i = mode}, {.p = &out}, {.p = &len}}, r;
        bool ret = mode >= EA_RET_NONUL;
        int err = qtn_call(ret ? &evil_aret_edge : &evil_alloc_edge, v, &r);
        if (mode == EA_HONEST) { /* the host's copy, NUL after it, for free() */
            assert_int_equal(err, 0);
            assert_int_equal(r.i, 0);
            assert_int_equal(len, 4);
            assert_ptr_not_equal(out, mine);
            assert_string_equal(out, "abcd");
            free(out);
            qtn_report rep;
            assert_int_equal(qtn_report_next(&rep, 0), 0);
            assert_int_equal(incarnation(5), inc); /* no fault */
            tu_plan("evil_alloc=4");
            continue;
        }
        if (err != QTN_ECONTRACT || (ret ? r.p != NULL : r.i != -1))
            fail_msg("mode %d: got %s, want the fault value", mode, qtn_strerror(err));
        assert_ptr_equal(out, mine); /* nothing written: not *out, not *len */
        assert_int_equal(len, 77);
        expect_contract_fault(4, inc, ret ? "evil_aret" : "evil_alloc");
    }
    tu_plan("evil_alloc=host");
}

/* A domain that answers *out's data honestly and its string result not:
 * the call fails whole, and the caller is not handed data it is told the
 * call did not produce (nor left to free it). */
static void test_allocated_with_a_bad_string(void **state) {
    (void)state;
    tu_plan("evil_alloc=4");
    uint32_t inc = incarnation(4);
    static char mine[] = "mine";
    char *out = mine;
    uint64_t len = 77;
    qtn_val v[3] = {{.i = EA_STR_BAD}, {.p = &out}, {.p = &len}}, r;
    int err = qtn_call(&evil_astr_edge, v, &r);
    assert_int_equal(err, QTN_ECONTRACT);
    assert_null(r.p);
    assert_ptr_equal(out, mine); /* nothing written: not *out, not *len */
    assert_int_equal(len, 77);
    expect_contract_fault(4, inc, "evil_astr");
    tu_plan("evil_alloc=host");
}

/* A domain calling an entry with callee-allocated output (in the host):
 * such data comes back to the program only, so the call returns the fault
 * value and says QTN_EINVAL, without running the entry. */
static int halloc_ran;
static void halloc_thunk(qtn_val *a, qtn_val *r) {
    halloc_ran++;
    *(char **)a[0].p = strdup("x");
    r->i = 1;
}
static const qtn_param halloc_params[] = {
    {.kind = QTN_K_ALLOCATED, .elem_size = 1, .actual = QTN_ACTUAL_STRING, .free_fn = evil_free}};
static qtn_component halloc_component;
static const qtn_entry halloc_entry = {.name = "halloc", .component = &halloc_component,
                                       .thunk = halloc_thunk, .ret = QTN_T_I32, .nparams = 1,
                                       .params = halloc_params, .fault = {.i = -1}};
static const qtn_entry *const halloc_entries[] = {&halloc_entry};
static qtn_component halloc_component = {.name = "halloc", .nentries = 1,
                                         .entries = halloc_entries};
static qtn_edge halloc_edge = QTN_EDGE_INIT(NULL, &halloc_entry);

static void dalloc_thunk(qtn_val *a, qtn_val *r) {
    (void)a;
    char *out = NULL;
    qtn_val v[1] = {{.p = &out}}, rv;
    int err = qtn_call(&halloc_edge, v, &rv);
    r->i = err == QTN_EINVAL && rv.i == -1 && !out && qtn_last_error() == QTN_EINVAL ? 7 : err;
}
static qtn_component dalloc_component;
static const qtn_entry dalloc_entry = {.name = "dalloc", .component = &dalloc_component,
                                       .thunk = dalloc_thunk, .ret = QTN_T_I32, .nparams = 0,
                                       .fault = {.i = -2}};
static const qtn_entry *const dalloc_entries[] = {&dalloc_entry};
static qtn_component dalloc_component = {.name = "dalloc", .nentries = 1,
                                         .entries = dalloc_entries};
static qtn_edge dalloc_edge = QTN_EDGE_INIT(NULL, &dalloc_entry);

static void test_allocated_from_a_domain(void **state) {
    (void)state;
    tu_plan("dalloc=10 halloc=host");
    qtn_val r;
    assert_int_equal(qtn_call(&dalloc_edge, NULL, &r), 0);
    assert_int_equal(r.i, 7); /* refused, and said, in the domain */
    assert_int_equal(halloc_ran, 0);
    tu_plan("dalloc=host");
}

/* ---- data a result points to, laid out as the domain says ----------------------- */

/* An entry returning data it keeps (QTN_T_OUT): one struct whose items
 * field points to n int32s after it. The domain lays it out in the window
 * with the items made up: over the struct itself (walked twice), past what
 * it says it sent, outside the window, a negative n, a place over the host's
 * frame, a length past the window, items not aligned as C would read them.
 * EO_HONEST lays it out as the runtime does. */
typedef struct ev_set {
    int32_t n;
    int32_t pad;
    const int32_t *items;
} ev_set;
enum { EO_HONEST = 1, EO_BACK, EO_PAST, EO_OUT, EO_NEG, EO_LOW, EO_LONG, EO_ODD, EO_MAX };

static void evil_out_thunk(qtn_val *a, qtn_val *r) {
    (void)r;
    qtn__thread *t = qtn__self_thread();
    qtn__chan *ch = qtn__chan_in(qtn__my_slot(), (uint32_t)t->serving);
    char *win = qtn__win_in(qtn__my_slot(), (uint32_t)t->serving);
    uint64_t wsz = qtn__g.lay.win_size, at = (t->top + 15) & ~(uint64_t)15, total = 32;
    ev_set *set = (ev_set *)(win + at);
    int32_t *items = (int32_t *)(win + at + 16);
    *set = (ev_set){3, 0, items};
    items[0] = 10, items[1] = 20, items[2] = 30;
    switch (a[0].i) {
    case EO_BACK: set->items = (const int32_t *)(win + at); break;
    case EO_PAST: set->n = 100; break;
    case EO_OUT: set->items = (const int32_t *)(win + wsz - 4); break;
    case EO_NEG: set->n = -1; break;
    case EO_LOW: at = 16; break;
    case EO_LONG: total = wsz; break;
    case EO_ODD: set->items = (const int32_t *)(win + at + 20); total = 40; break; /* unaligned */
    default: break;
    }
    ch->dret.u = at | total << 32;
    ch->dtype = QTN__MSG_RET;
    qtn__post(&ch->dseq, ++t->sent, &ch->hsleep);
    for (;;)
        pause(); /* the host kills this process (EO_HONEST: it is left alone) */
}
static const qtn_param ev_set_fields[] = {
    {.kind = QTN_K_IN, .offset = offsetof(ev_set, items), .elem_size = 4,
     .len_kind = QTN_LEN_FIELD, .len = offsetof(ev_set, n), .type = QTN_T_I32}};
static const qtn_struct ev_set_st = {"ev_set", sizeof(ev_set), 1, ev_set_fields};
static const qtn_param evil_out_ret = {.kind = QTN_K_OUT, .elem_size = sizeof(ev_set),
                                       .len_kind = QTN_LEN_CONST, .len = 1, .st = &ev_set_st};
static qtn_component evil_out_component;
static const qtn_entry evil_out_entry = {.name = "evil_out", .component = &evil_out_component,
                                         .thunk = evil_out_thunk, .ret = QTN_T_OUT,
                                         .nparams = 1, .params = evil_str_params,
                                         .fault = {.p = NULL}, .ret_param = &evil_out_ret};
static const qtn_entry *const evil_out_entries[] = {&evil_out_entry};
static qtn_component evil_out_component = {.name = "evil_out", .nentries = 1,
                                           .entries = evil_out_entries};
static qtn_edge evil_out_edge = QTN_EDGE_INIT(NULL, &evil_out_entry);

static void test_returned_data_made_up(void **state) {
    (void)state;
    tu_plan("evil_out=6"); /* the honest answer's thread stays in pause() there */
    for (int mode = EO_HONEST; mode < EO_MAX; mode++) {
        int d = mode == EO_HONEST ? 6 : 7;
        uint32_t inc = incarnation(d);
        qtn_val v[1] = {{.i = mode}}, r;
        int err = qtn_call(&evil_out_edge, v, &r);
        if (mode == EO_HONEST) { /* the host's copy, its pointer into it */
            assert_int_equal(err, 0);
            const ev_set *set = r.p;
            assert_non_null(set);
            assert_int_equal(set->n, 3);
            assert_true((const char *)set->items == (const char *)set + 16);
            assert_int_equal(set->items[2], 30);
            qtn_report rep;
            assert_int_equal(qtn_report_next(&rep, 0), 0);
            assert_int_equal(incarnation(d), inc);
            tu_plan("evil_out=7");
            continue;
        }
        if (err != QTN_ECONTRACT || r.p)
            fail_msg("mode %d: got %s, want the fault value", mode, qtn_strerror(err));
        expect_contract_fault(d, inc, "evil_out");
    }
    tu_plan("evil_out=host");
}

/* ---- an array of strings a domain passes up ------------------------------------ */

/* A domain calls an entry of a component in the host with an array of
 * strings (QTN_EACH(string)): one of its pointers made up, outside the
 * window, over the domain's own caller's frame, or to a string without its
 * NUL in the frame. The host must copy and check each before its entry
 * runs; EU_HONEST passes two real ones. */
enum { EU_HONEST = 1, EU_OUT, EU_LOW, EU_NONUL, EU_MAX };

static int64_t hnames_seen;
static void hnames_thunk(qtn_val *a, qtn_val *r) {
    const char *const *v = a[0].p;
    int64_t t = 0;
    for (uint64_t i = 0; i < a[1].u; i++)
        t += v[i] ? (int64_t)strlen(v[i]) : 0;
    hnames_seen++;
    r->i = t;
}
static const qtn_param strs_fields[] = {{.kind = QTN_K_STRING, .offset = 0}};
static const qtn_struct strs_st = {"strs", sizeof(char *), 1, strs_fields};
static const qtn_param hnames_params[] = {
    {.kind = QTN_K_IN, .elem_size = sizeof(char *), .len_kind = QTN_LEN_PARAM, .len = 1,
     .st = &strs_st},
    QTN_P_SCALAR(QTN_T_U64)};
static qtn_component hnames_component;
static const qtn_entry hnames_entry = {.name = "hnames", .component = &hnames_component,
                                       .thunk = hnames_thunk, .ret = QTN_T_I64, .nparams = 2,
                                       .params = hnames_params, .fault = {.i = -1}};
static const qtn_entry *const hnames_entries[] = {&hnames_entry};
static qtn_component hnames_component = {.name = "hnames", .nentries = 1,
                                         .entries = hnames_entries};

static void evup_thunk(qtn_val *a, qtn_val *r) {
    qtn__thread *t = qtn__self_thread();
    qtn__chan *ch = qtn__chan_in(qtn__my_slot(), (uint32_t)t->serving);
    char *win = qtn__win_in(qtn__my_slot(), (uint32_t)t->serving);
    uint64_t wsz = qtn__g.lay.win_size, fo = (t->top + 15) & ~(uint64_t)15;
    qtn__frame *fr = (qtn__frame *)(win + fo);
    char **arr = (char **)(win + fo + 64);
    fr->nargs = 2;
    fr->args[0].p = arr;
    fr->args[1].u = 2;
    memcpy(win + fo + 128, "ok", 3);
    memcpy(win + fo + 144, "fine", 5);
    arr[0] = win + fo + 128;
    arr[1] = win + fo + 144;
    switch (a[0].i) {
    case EU_OUT: arr[1] = win + wsz + 64; break;
    case EU_LOW: arr[1] = win + 8; break;
    case EU_NONUL: memset(win + fo + 144, 'A', 112); break; /* up to the frame's end */
    default: break;
    }
    ch->dtype = QTN__MSG_UP;
    ch->did = (uint64_t)(uintptr_t)&hnames_entry;
    ch->did2 = 0;
    ch->ddepth = 0;
    ch->dframe = fo;
    ch->dend = fo + 256;
    qtn__post(&ch->dseq, ++t->sent, &ch->hsleep);
    if (qtn__await(&ch->hseq, t->seen, t->seen + 1, &ch->dsleep, NULL, 0, 0, NULL))
        abort();
    t->seen++;
    r->i = fr->ret.i; /* the host's answer */
}
static const qtn_param evup_params[] = {QTN_P_SCALAR(QTN_T_I32)};
static qtn_component evup_component;
static const qtn_entry evup_entry = {.name = "evup", .component = &evup_component,
                                     .thunk = evup_thunk, .ret = QTN_T_I64, .nparams = 1,
                                     .params = evup_params, .fault = {.i = -2}};
static const qtn_entry *const evup_entries[] = {&evup_entry};
static qtn_component evup_component = {.name = "evup", .nentries = 1, .entries = evup_entries};
static qtn_edge evup_edge = QTN_EDGE_INIT(NULL, &evup_entry);

static void test_string_array_made_up(void **state) {
    (void)state;
    tu_plan("evup=8 hnames=host");
    for (int mode = EU_HONEST; mode < EU_MAX; mode++) {
        uint32_t inc = incarnation(8);
        int64_t seen = hnames_seen;
        qtn_val v[1] = {{.i = mode}}, r;
        int err = qtn_call(&evup_edge, v, &r);
        if (mode == EU_HONEST) {
            assert_int_equal(err, 0);
            assert_int_equal(r.i, 2 + 4); /* the host's entry read both */
            assert_int_equal(hnames_seen, seen + 1);
            continue;
        }
        if (err != QTN_ECONTRACT || r.i != -2)
            fail_msg("mode %d: got %s, want the fault value", mode, qtn_strerror(err));
        assert_int_equal(hnames_seen, seen); /* the host's entry never ran */
        expect_contract_fault(8, inc, "evup");
    }
    tu_plan("evup=host");
}

/* ---- a union whose active member the domain changes -------------------------- */

/* An inout struct holding a union (QTN_F_WHEN fields): the caller sends a
 * number; the domain answers with the discriminant switched to the string
 * member and a pointer of its own in it. The caller never sent a buffer
 * for that member: a contract fault, and the caller's struct untouched.
 * EW_HONEST turns the number negative and keeps the kind. */
typedef struct ev_val {
    int32_t kind; /* 1 number, 2 text */
    union {
        int64_t num;
        const char *text;
    } u;
} ev_val;
enum { EW_HONEST = 1, EW_SWITCH, EW_MAX };

static void evil_union_thunk(qtn_val *a, qtn_val *r) {
    ev_val *v = a[1].p; /* its copy in the window */
    char *win = qtn__win_in(qtn__my_slot(), (uint32_t)qtn__self_thread()->serving);
    if (a[0].i == EW_HONEST) {
        v->u.num = -v->u.num;
    } else {
        memcpy(win + qtn__g.lay.win_size - 8, "made", 5);
        v->kind = 2;
        v->u.text = win + qtn__g.lay.win_size - 8;
    }
    r->i = 0;
}
static const qtn_param ev_val_fields[] = {
    {.kind = QTN_K_STRING, .offset = offsetof(ev_val, u.text), .flags = QTN_F_WHEN,
     .when_type = QTN_T_I32, .when_offset = offsetof(ev_val, kind), .when_value = 2}};
static const qtn_struct ev_val_st = {"ev_val", sizeof(ev_val), 1, ev_val_fields};
static const qtn_param evil_union_params[] = {
    QTN_P_SCALAR(QTN_T_I32),
    {.kind = QTN_K_INOUT, .elem_size = sizeof(ev_val), .len_kind = QTN_LEN_CONST, .len = 1,
     .st = &ev_val_st}};
static qtn_component evil_union_component;
static const qtn_entry evil_union_entry = {.name = "evil_union",
                                           .component = &evil_union_component,
                                           .thunk = evil_union_thunk, .ret = QTN_T_I32,
                                           .nparams = 2, .params = evil_union_params,
                                           .fault = {.i = -1}};
static const qtn_entry *const evil_union_entries[] = {&evil_union_entry};
static qtn_component evil_union_component = {.name = "evil_union", .nentries = 1,
                                             .entries = evil_union_entries};
static qtn_edge evil_union_edge = QTN_EDGE_INIT(NULL, &evil_union_entry);

static void test_union_switched(void **state) {
    (void)state;
    tu_plan("evil_union=9");
    for (int mode = EW_HONEST; mode < EW_MAX; mode++) {
        uint32_t inc = incarnation(9);
        ev_val v = {.kind = 1, .u.num = 12345};
        qtn_val a[2] = {{.i = mode}, {.p = &v}}, r;
        int err = qtn_call(&evil_union_edge, a, &r);
        if (mode == EW_HONEST) {
            assert_int_equal(err, 0);
            assert_int_equal(v.kind, 1);
            assert_true(v.u.num == -12345); /* a number's bits come back as bits */
            continue;
        }
        if (err != QTN_ECONTRACT || r.i != -1)
            fail_msg("mode %d: got %s, want the fault value", mode, qtn_strerror(err));
        assert_int_equal(v.kind, 1); /* nothing written */
        assert_true(v.u.num == 12345);
        expect_contract_fault(9, inc, "evil_union");
    }
    tu_plan("evil_union=host");
}

static int setup(void **state) {
    (void)state;
    assert_int_equal(qtn_register(&halloc_component), 0);
    assert_int_equal(qtn_register(&dalloc_component), 0);
    assert_int_equal(qtn_register(&evil_union_component), 0);
    assert_int_equal(qtn_register(&hnames_component), 0);
    assert_int_equal(qtn_register(&evup_component), 0);
    assert_int_equal(qtn_register(&evil_out_component), 0);
    assert_int_equal(qtn_register(&evil_alloc_component), 0);
    assert_int_equal(qtn_register(&evil_str_component), 0);
    assert_int_equal(qtn_register(&tk_component), 0);
    assert_int_equal(qtn_register(&tk2_component), 0);
    assert_int_equal(qtn_register(&evil_component), 0);
    assert_int_equal(qtn_register(&flip_component), 0);
    assert_int_equal(qtn_register(&hx_component), 0);
    assert_int_equal(qtn_register(&hy_component), 0);
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
    /* a callback of evil's signature the host gave domain 1 only */
    uint32_t theirs = qtn__cb_grant(&cbsig, (void *)other_cb, 1, incarnation(1), NULL, 0);
    assert_true(theirs > 0);
    /* and one it gave this domain's incarnation of now, which the first
     * mode's kill ends */
    uint32_t before = qtn__cb_grant(&cbsig, (void *)earlier_cb, 2, incarnation(2), NULL, 0);
    assert_true(before > 0 && before != theirs);
    for (int mode = EV_SEQ_JUMP; mode < EV_MAX; mode++) {
        uint32_t inc = incarnation(2), other = incarnation(1);
        int err = 0;
        cb_calls = 0;
        int32_t m = mode == EV_CB_OTHER     ? (int32_t)(theirs << 8 | EV_CB_OTHER)
                    : mode == EV_CB_EARLIER ? (int32_t)(before << 8 | EV_CB_EARLIER)
                                            : mode;
        int r = evil(m, &err);
        /* a lie on the late channel comes from no call: the call in flight
         * sees its domain killed (the report names it, the one running) */
        bool late = mode >= EV_LATE_SEQ;
        if (r != -77 || err != (late ? QTN_EFAULT : QTN_ECONTRACT))
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

/* A domain's table of the calls made inside it counts only for entries the
 * plan places in that domain, and only as it grows. */
static void test_inner_calls_lied_about(void **state) {
    (void)state;
    tu_plan("evil=2 tk=1");
    int err = 0;
    qtn_stats tk0, tk1, ev0, ev1;
    assert_int_equal(qtn_stats_component("tk", &tk0), 0);
    assert_int_equal(qtn_stats_component("evil", &ev0), 0);
    uint32_t inc = incarnation(2);
    assert_int_equal(evil(EV_INNER + 1, &err), 0);
    assert_int_equal(err, 0);
    assert_int_equal(qtn_stats_component("tk", &tk1), 0);
    assert_int_equal(qtn_stats_component("evil", &ev1), 0);
    assert_int_equal(tk1.calls_inner, tk0.calls_inner); /* not its entry to count */
    assert_int_equal(ev1.calls, ev0.calls + 1);         /* the host's own count */
    assert_int_equal(ev1.calls_inner, ev0.calls_inner + 5); /* and the 5 it claims, apart */
    assert_int_equal(evil(EV_INNER + 2, &err), 0);
    assert_int_equal(qtn_stats_component("tk", &tk1), 0);
    assert_int_equal(qtn_stats_component("evil", &ev1), 0);
    assert_int_equal(tk1.calls_inner, tk0.calls_inner);
    assert_int_equal(ev1.calls, ev0.calls + 2);
    assert_int_equal(ev1.calls_inner, ev0.calls_inner + 5); /* nothing taken back or moved */
    assert_int_equal(evil(EV_INNER + 3, &err), 0);
    assert_int_equal(qtn_stats_component("evil", &ev1), 0);
    assert_int_equal(ev1.calls_inner, ev0.calls_inner + 5);
    /* tk placed there: what it claimed before does not count, what it
     * claims now does (the domain's word for its own entries); placed
     * elsewhere again, no more, nor once placed there again */
    tu_plan("evil=2 tk=2");
    assert_int_equal(incarnation(2), inc);
    assert_int_equal(qtn_stats_component("tk", &tk1), 0);
    assert_int_equal(tk1.calls_inner, tk0.calls_inner);
    assert_int_equal(evil(EV_INNER + 5, &err), 0); /* 1,500 */
    assert_int_equal(qtn_stats_component("tk", &tk1), 0);
    assert_int_equal(tk1.calls_inner, tk0.calls_inner + 500);
    tu_plan("evil=2 tk=1");
    assert_int_equal(evil(EV_INNER + 4, &err), 0); /* 5,000 */
    assert_int_equal(qtn_stats_component("tk", &tk1), 0);
    assert_int_equal(tk1.calls_inner, tk0.calls_inner + 500);
    tu_plan("evil=2 tk=2");
    assert_int_equal(qtn_stats_component("tk", &tk1), 0);
    assert_int_equal(tk1.calls_inner, tk0.calls_inner + 500);
    tu_plan("evil=2 tk=1");
    assert_int_equal(incarnation(2), inc);           /* shading its own counts is no fault */
    assert_int_equal(tk_add(1, 2, 3, 4), 10);
    tu_plan("tk=host");
}

/* ---- a result wider than its type ---------------------------------------------------- */

/* An int entry whose actual length is its result: a domain answering
 * 0xffffffff00000400 for a 16-byte buffer said 1024 (what the stub's int
 * keeps), not "an error" (the 64-bit value is negative). */
static void test_actual_length_through_int(void **state) {
    (void)state;
    tu_plan("tk=1");
    char buf[16 + 8];
    memset(buf, 'g', sizeof buf);
    assert_int_equal(tk_lie_ret(0, buf, 16), 16); /* honest */
    assert_int_equal(tk_last_err, 0);
    assert_int_equal(buf[15], 'x');
    assert_int_equal(buf[16], 'g');
    memset(buf, 'g', sizeof buf);
    uint32_t inc = incarnation(1);
    int r = tk_lie_ret(1, buf, 16);
    if (r != -99 || tk_last_err != QTN_ECONTRACT)
        fail_msg("an actual length of 1024 for 16 bytes: got %d (%s), want the fault value", r,
                 qtn_strerror(tk_last_err));
    expect_contract_fault(1, inc, "tk_lie_ret");
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 'g'); /* the caller's buffer untouched */
    assert_int_equal(tk_nop(), 7);
    tu_plan("tk=host");
}

/* ---- shared memory read twice ---------------------------------------------------------- */

static double secs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* While the host copies a callback's string, a second domain thread moves
 * its NUL. The callback must get a string that ends inside its own buffer;
 * a request whose string lost its NUL in between is a contract fault. */
static void test_string_moved_during_import(void **state) {
    (void)state;
    tu_plan("flip=2");
    flip_bad = flip_seen = 0;
    int hits = 0;
    double t0 = secs();
    while (hits < 3 && secs() - t0 < 20) {
        uint32_t inc = incarnation(2);
        int err = 0;
        int r = flip(20000, &err);
        if (flip_bad)
            fail_msg("the host gave the callback a string without its NUL %d times (of %d)",
                     (int)flip_bad, (int)flip_seen);
        if (err == QTN_ECONTRACT) { /* the race was hit, and caught */
            assert_int_equal(r, -77);
            expect_contract_fault(2, inc, "flip");
            hits++;
        } else {
            assert_int_equal(err, 0);
            assert_int_equal(r, 20000);
        }
    }
    print_message("string moved during import: %d of %d callbacks, %d caught, %.1f s\n",
                  (int)flip_seen, (int)flip_seen + hits, hits, secs() - t0);
    assert_true(hits > 0); /* the race was run, not only tried */
    tu_plan("flip=host");
}

/* ---- handles into the host --------------------------------------------------------------- */

static int add_to(void *ctx, int32_t x) {
    *(int64_t *)ctx += x;
    return 0;
}

static void expect_hy_contract(int64_t r, int err, uint32_t inc, const char *what) {
    if (r != -1 || err != QTN_ECONTRACT)
        fail_msg("%s: got %lld (%s), want the fault value", what, (long long)r,
                 qtn_strerror(err));
    qtn_report rep;
    assert_int_equal(qtn_report_next(&rep, 10000), 1);
    assert_int_equal(rep.kind, QTN_FAULT_CONTRACT);
    assert_int_equal(rep.incarnation, inc);
    assert_string_equal(rep.component, "hy");
    assert_int_equal(qtn_report_next(&rep, 0), 0);
}

/* A domain may hand the host only handles the host gave it: a forged one
 * would make the host read any address, or free() it. */
static void test_forged_handles(void **state) {
    (void)state;
    tu_plan("hx=host hy=1");
    hx_secret = 0x5ec7e7;
    int err = 0;
    int64_t r;
    assert_int_equal(hy_probe(HY_HONEST, 0, &err), 42);
    assert_int_equal(err, 0);
    /* issued in one call, used in the next: fine */
    int64_t h = hy_probe(HY_NEW, 7, &err);
    assert_true(h != 0 && err == 0);
    assert_int_equal(hy_probe(HY_GET, h, &err), 7);
    assert_int_equal(err, 0);
    /* the host's own variable, as a handle */
    uint32_t inc = incarnation(1);
    r = hy_probe(HY_FORGED_GET, 0, &err);
    expect_hy_contract(r, err, inc, "hx_get(&hx_secret)");
    /* free() of an address the host never gave out */
    inc = incarnation(1);
    r = hy_probe(HY_FORGED_FREE, (int64_t)(uintptr_t)&hx_secret, &err);
    expect_hy_contract(r, err, inc, "hx_free(&hx_secret)");
    /* the handle of an earlier incarnation */
    inc = incarnation(1);
    r = hy_probe(HY_GET, h, &err);
    expect_hy_contract(r, err, inc, "hx_get(old handle)");
    /* a handle the host issued to another domain */
    tu_plan("hx=host hy=2");
    int64_t h2 = hy_probe(HY_NEW, 9, &err);
    assert_int_equal(err, 0);
    tu_plan("hx=host hy=1");
    inc = incarnation(1);
    r = hy_probe(HY_GET, h2, &err);
    expect_hy_contract(r, err, inc, "hx_get(domain 2's handle)");
    /* a callback's ctx is the one the host passed */
    int64_t sum = 0;
    assert_int_equal(hy_cb(0, add_to, &sum, &err), 0);
    assert_int_equal(err, 0);
    assert_int_equal(sum, 5);
    inc = incarnation(1);
    r = hy_cb(1, add_to, &sum, &err);
    expect_hy_contract(r, err, inc, "callback with a forged ctx");
    assert_int_equal(sum, 5);
    /* a handle the host passed down (the program, or hx itself) may come
     * back up to hx */
    void *mine = hx_new_real(11), *hx_own = hx_new_real(12);
    assert_int_equal(hy_cb(2, add_to, mine, &err), 11);
    assert_int_equal(err, 0);
    assert_int_equal(hy_cb(3, add_to, hx_own, &err), 12); /* mode 3: as 2, hx the caller */
    assert_int_equal(err, 0);
    /* a kept callback gets the ctx passed with it, not another handle the
     * domain holds (one hx gave it; made while those passed with the
     * callback before are alive, so it is none of them) */
    int64_t kept = 0;
    assert_int_equal(hy_cb(4, add_to, &kept, &err), 0);
    assert_int_equal(hy_probe(HY_KEPT, 0, &err), 0);
    assert_int_equal(err, 0);
    assert_int_equal(kept, 5);
    int64_t h3 = hy_probe(HY_NEW, 3, &err);
    assert_true(h3 != 0 && err == 0);
    inc = incarnation(1);
    r = hy_probe(HY_KEPT, h3, &err);
    expect_hy_contract(r, err, inc, "a kept callback with another handle");
    assert_int_equal(kept, 5);
    hx_free_real((void *)(uintptr_t)h3);
    hx_free_real(mine);
    hx_free_real(hx_own);
    assert_int_equal(hx_secret, 0x5ec7e7); /* untouched */
    /* and the domain serves again */
    assert_int_equal(hy_probe(HY_HONEST, 0, &err), 42);
    tu_plan("hx=host hy=host");
    hx_free_real((void *)(uintptr_t)h); /* host objects the domains were given */
    hx_free_real((void *)(uintptr_t)h2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lying_lengths_and_pointers),
        cmocka_unit_test(test_channel_garbage),
        cmocka_unit_test(test_inner_calls_lied_about),
        cmocka_unit_test(test_actual_length_through_int),
        cmocka_unit_test(test_string_moved_during_import),
        cmocka_unit_test(test_forged_handles),
        cmocka_unit_test(test_returned_string_made_up),
        cmocka_unit_test(test_allocated_made_up),
        cmocka_unit_test(test_allocated_with_a_bad_string),
        cmocka_unit_test(test_allocated_from_a_domain),
        cmocka_unit_test(test_returned_data_made_up),
        cmocka_unit_test(test_string_array_made_up),
        cmocka_unit_test(test_union_switched),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
