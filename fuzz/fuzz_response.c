/* fuzz_response.c - libFuzzer target for the host's checks of what a domain
 * hands back.
 *
 * Part 1 (a call's answer): a call with every kind of pointer parameter is
 * marshalled into a window; the input then overwrites the window (the shared
 * copies, lengths, moved pointers) and the result value, as a hostile domain
 * could, and the host copies back. Caller buffers are allocated to their
 * exact size, so AddressSanitizer catches any write past them; the checks
 * below catch a write outside what was declared.
 *
 * The result is read as the entry's C type first (as a crossing does):
 * the input picks the type, and whatever the cast makes of the 8 bytes,
 * no more elements than the caller's type says come back.
 *
 * Part 2 (a request from the domain): the input is a frame a domain wrote
 * for a callback or upcall; the host imports it (every pointer checked
 * against the frame) and exports results into it. The frame is allocated to
 * its exact size. When the input says so, a second thread flips bytes of
 * the frame (a NUL to a letter and back) while the host imports it, as a
 * domain thread could: the private copies must still be what the checks
 * saw (every string ends with its NUL inside its copy), and every handle
 * the host goes on with, argument or struct field, is one it issued.
 *
 * Part 3 (data a result points to, QTN_T_OUT): the input is what a domain
 * laid out in the window, pointers aimed into it; what the host accepts
 * must be a copy whose every pointer, and what it points to, lies inside
 * it (a string with its NUL, an array of its length). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "marshal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_stream {
    const uint8_t *next_in;
    uint32_t avail_in;
    uint8_t *next_out;
    uint32_t avail_out;
    uint64_t total;
} fz_stream;

typedef struct fz_named {
    const char *name;
    uint8_t *tag; /* 4 bytes, inout */
    int32_t weight;
    void *h; /* a handle */
} fz_named;

static const qtn_param f_stream[] = {
    {.kind = QTN_K_IN, .elem_size = 1, .len_kind = QTN_LEN_FIELD, .type = QTN_T_U32,
     .len = offsetof(fz_stream, avail_in), .offset = offsetof(fz_stream, next_in)},
    {.kind = QTN_K_OUT, .elem_size = 1, .len_kind = QTN_LEN_FIELD, .type = QTN_T_U32,
     .len = offsetof(fz_stream, avail_out), .offset = offsetof(fz_stream, next_out)}};
static const qtn_struct s_stream = {"fz_stream", sizeof(fz_stream), 2, f_stream};
static const qtn_param f_named[] = {
    {.kind = QTN_K_STRING, .offset = offsetof(fz_named, name)},
    {.kind = QTN_K_INOUT, .elem_size = 1, .len = 4, .offset = offsetof(fz_named, tag)},
    {.kind = QTN_K_HANDLE, .offset = offsetof(fz_named, h)}};
static const qtn_struct s_named = {"fz_named", sizeof(fz_named), 3, f_named};

enum { CAP = 24, NIN = 16, NOUT = 12, NNAMES = 3 };

static const qtn_param params[] = {
    QTN_P_SCALAR(QTN_T_U64),                                             /* 0: cap */
    {.kind = QTN_K_OUT, .elem_size = 1, .len_kind = QTN_LEN_PARAM, .len = 0,
     .actual = QTN_ACTUAL_PARAM(2)},                                     /* 1: buf */
    {.kind = QTN_K_OUT, .type = QTN_T_U64, .elem_size = 8, .len = 1},      /* 2: *got */
    {.kind = QTN_K_INOUT, .elem_size = sizeof(fz_stream), .len = 1, .st = &s_stream}, /* 3 */
    QTN_P_STRING,                                                        /* 4 */
    {.kind = QTN_K_INOUT, .elem_size = sizeof(fz_named), .len = NNAMES, .st = &s_named}, /* 5 */
    {.kind = QTN_K_INOUT, .elem_size = 4, .len_kind = QTN_LEN_PARAM, .len = 0,
     .actual = QTN_ACTUAL_RET},                                          /* 6: ints */
    QTN_P_HANDLE,                                                        /* 7 */
};
enum { NPARAMS = sizeof params / sizeof params[0] };

static void answer(const uint8_t *data, size_t size) {
    static _Alignas(16) char win[1 << 14];
    char *buf = malloc(CAP);
    uint64_t *got = malloc(sizeof *got);
    uint8_t *in = malloc(NIN), *out = malloc(NOUT);
    fz_stream *st = malloc(sizeof *st);
    char *str = strdup("a string");
    fz_named *names = malloc(NNAMES * sizeof *names);
    uint8_t *tags = malloc(NNAMES * 4);
    int32_t *ints = malloc(CAP * sizeof *ints);
    if (!buf || !got || !in || !out || !st || !str || !names || !tags || !ints)
        abort();
    memset(buf, 'b', CAP);
    *got = 5;
    memset(in, 'i', NIN);
    memset(out, 'o', NOUT);
    *st = (fz_stream){in, NIN, out, NOUT, 9};
    memset(tags, 't', NNAMES * 4);
    for (int i = 0; i < NNAMES; i++)
        names[i] = (fz_named){i == 1 ? NULL : "nm", tags + 4 * i, i, (void *)(uintptr_t)(i + 1)};
    memset(ints, 0x11, CAP * sizeof *ints);
    qtn_val args[NPARAMS] = {{.u = CAP}, {.p = buf}, {.p = got}, {.p = st},
                             {.p = str}, {.p = names}, {.p = ints}, {.p = (void *)0x1234}};
    qtn__alloc a = {.base = win, .top = 0, .lim = sizeof win};
    qtn__fixv fx;
    qtn__fixv_init(&fx);
    qtn__frame *fr = (qtn__frame *)qtn__alloc_take(&a, sizeof *fr + NPARAMS * sizeof(qtn_val));
    if (!fr || qtn__marshal(params, NPARAMS, args, fr->args, &a, &fx))
        abort(); /* the harness itself is wrong */
    static const uint8_t rtypes[] = {QTN_T_I8,  QTN_T_U8,  QTN_T_I16, QTN_T_U16,
                                     QTN_T_I32, QTN_T_U32, QTN_T_I64, QTN_T_U64};
    uint8_t rtype = QTN_T_I32;
    if (size >= 1) {
        rtype = rtypes[data[0] % sizeof rtypes];
        data++;
        size--;
    }
    qtn_val raw = {0};
    if (size >= 8) {
        memcpy(&raw, data, 8);
        data += 8;
        size -= 8;
    }
    /* as a crossing reads it: the entry's C type, whatever the upper bytes */
    qtn_val ret = qtn__as_type(raw, rtype);
    int64_t as_c; /* what the stub's cast makes of it, as a count */
    switch (rtype) {
    case QTN_T_I8: as_c = (int8_t)raw.u; break;
    case QTN_T_U8: as_c = (uint8_t)raw.u; break;
    case QTN_T_I16: as_c = (int16_t)raw.u; break;
    case QTN_T_U16: as_c = (uint16_t)raw.u; break;
    case QTN_T_I32: as_c = (int32_t)raw.u; break;
    case QTN_T_U32: as_c = (uint32_t)raw.u; break;
    case QTN_T_I64: as_c = (int64_t)raw.u; break;
    default: as_c = raw.u > INT64_MAX ? INT64_MAX : (int64_t)raw.u; break;
    }
    size_t actual = as_c < 0 ? 0 : (size_t)as_c;
    /* the domain rewrites the window: data bytes, and sometimes pointers
     * aimed at or near the buffers that crossed */
    size_t n = size < a.top ? size : a.top;
    memcpy(win, data, n);
    for (size_t i = 0; i + 2 <= size - n && i < 64; i += 2) {
        size_t off = (data[n + i] * 8u) % (a.top ? a.top : 1);
        char *p = win + (data[n + i + 1] % (a.top + 32));
        if (off + sizeof p <= a.top)
            memcpy(win + off, &p, sizeof p);
    }
    fz_stream before = *st;
    int r = qtn__unmarshal(params, ret, rtype, &fx);
    if (r == 0) {
        /* the ints came back up to what the caller's type says, no further */
        if (actual > CAP)
            abort();
        for (size_t i = actual; i < CAP; i++)
            if (ints[i] != 0x11111111)
                abort();
        /* what came back stays inside what was sent */
        if (*got > CAP)
            abort();
        if (st->next_out && (st->next_out < out || st->next_out > out + NOUT))
            abort();
        if (st->next_in && (st->next_in < in || st->next_in > in + NIN))
            abort();
        for (int i = 0; i < NNAMES; i++)
            if (names[i].tag && (names[i].tag < tags || names[i].tag > tags + NNAMES * 4))
                abort();
    } else {
        if (r != QTN_ECONTRACT && r != QTN_ENOMEM)
            abort();
        if (memcmp(&before, st, sizeof before) != 0 || *got != 5)
            abort(); /* nothing is written unless everything checks out */
        for (size_t i = 0; i < CAP; i++)
            if (ints[i] != 0x11111111)
                abort();
    }
    qtn__fixv_free(&fx);
    free(buf), free(got), free(in), free(out), free(st), free(str), free(names), free(tags),
        free(ints);
}

/* The second thread: flips the bytes at `at` in `frame` while `go`. */
static struct {
    _Atomic int go, busy;
    char *_Atomic frame;
    size_t at[4];
} flip;

static void *flipper(void *arg) {
    (void)arg;
    for (;;) {
        while (!atomic_load(&flip.go))
            sched_yield();
        atomic_store(&flip.busy, 1);
        char *f = atomic_load(&flip.frame);
        while (atomic_load(&flip.go))
            for (int i = 0; i < 4; i++) {
                volatile char *c = f + flip.at[i];
                *c = *c ? 0 : 'A';
            }
        atomic_store(&flip.busy, 0);
    }
    return NULL;
}

static void flipper_start(void) {
    pthread_t th;
    if (pthread_create(&th, NULL, flipper, NULL))
        abort();
    pthread_detach(th);
}

/* Starts flipping bytes of frame (chosen by sel) and returns once the
 * flipper is at it. */
static void flip_start(char *frame, size_t size, const uint8_t *sel) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, flipper_start);
    for (int i = 0; i < 4; i++)
        flip.at[i] = ((size_t)sel[2 * i] << 8 | sel[2 * i + 1]) % size; /* < 64 KiB */
    atomic_store(&flip.frame, frame);
    atomic_store(&flip.go, 1);
    while (!atomic_load(&flip.busy))
        sched_yield();
}

static void flip_stop(void) {
    atomic_store(&flip.go, 0);
    while (atomic_load(&flip.busy))
        sched_yield();
}

/* The handles the host "issued" (to the domain the request comes from). */
static bool issued(uint64_t v) { return v % 3 != 0; }
static bool issued_ok(void *ctx, uint64_t v) {
    (void)ctx;
    return issued(v);
}

static void request(const uint8_t *data, size_t size) {
    if (size < NPARAMS * 8 + 1)
        return;
    /* the first byte: flip the frame during import (odd); then what to flip */
    bool flipping = size > NPARAMS * 8 + 9 && (data[0] & 1);
    char *frame = malloc(size);
    if (!frame)
        abort();
    memcpy(frame, data, size);
    qtn_val args[NPARAMS];
    memcpy(args, frame, sizeof args);
    /* pointers as offsets into (or just past) the frame */
    for (int i = 0; i < NPARAMS; i++)
        if (params[i].kind != QTN_K_SCALAR && params[i].kind != QTN_K_HANDLE && args[i].u & 1)
            args[i].p = frame + (args[i].u >> 1) % (size + 16);
    if (flipping) {
        /* the string alone, and the first flip at its NUL: the host finds
         * the NUL, then copies; a domain thread moves it in between */
        for (int i = 1; i < NPARAMS; i++)
            if (params[i].kind != QTN_K_SCALAR && params[i].kind != QTN_K_HANDLE)
                args[i].p = NULL;
        size_t o = (NPARAMS * 8 + data[9] % 64) % size, nul = o;
        while (nul < size && frame[nul])
            nul++;
        args[4].p = frame + o;
        uint8_t sel[8];
        memcpy(sel, data + 1, sizeof sel);
        if (nul < size)
            sel[0] = (uint8_t)(nul >> 8), sel[1] = (uint8_t)nul;
        flip_start(frame, size, sel);
    }
    qtn__fixv fx;
    qtn__fixv_init(&fx);
    const qtn__hcheck hc = {issued_ok, NULL};
    int r = qtn__import_checked(params, NPARAMS, args, frame, frame + size, &fx, &hc);
    if (flipping)
        flip_stop();
    if (r == 0) {
        /* every handle the host goes on with is one it issued: the one
         * argument, and those in the private copies of structs */
        if (args[7].u && !issued(args[7].u))
            abort();
        for (uint32_t i = 0; i < fx.n; i++)
            if (fx.v[i].p->st == &s_named)
                for (size_t e = 0; e < fx.v[i].count; e++) {
                    const fz_named *nm = (const fz_named *)fx.v[i].mine + e;
                    if (nm->h && !issued((uint64_t)(uintptr_t)nm->h))
                        abort();
                }
        /* what the host copied is what it checked: each string ends in its copy */
        for (uint32_t i = 0; i < fx.n; i++)
            if (fx.v[i].p->kind == QTN_K_STRING &&
                (!fx.v[i].count || fx.v[i].mine[fx.v[i].count - 1] != 0 ||
                 strlen(fx.v[i].mine) >= fx.v[i].count))
                abort();
        qtn_val ret = {.i = data[0] % 40 - 3};
        /* the callee side writes into its private copies; export goes back */
        for (uint32_t i = 0; i < fx.n; i++) {
            const qtn_param *p = fx.v[i].p;
            if ((p->kind == QTN_K_OUT || p->kind == QTN_K_INOUT) && !p->st)
                memset(fx.v[i].mine, 0x5a, fx.v[i].count * p->elem_size);
        }
        qtn__export(params, ret, QTN_T_I32, &fx);
    } else {
        qtn__import_drop(&fx);
    }
    free(frame);
}

typedef struct fz_set {
    int32_t n;
    int32_t kind; /* 1: items is the active member */
    union {
        const int32_t *items;
        int64_t bits;
    } u;
} fz_set;
typedef struct fz_res {
    const char *name;
    const fz_set *set;
    int64_t v;
} fz_res;
static const qtn_param f_set[] = {
    {.kind = QTN_K_IN, .elem_size = 4, .len_kind = QTN_LEN_FIELD, .type = QTN_T_I32,
     .len = offsetof(fz_set, n), .offset = offsetof(fz_set, u.items), .flags = QTN_F_WHEN,
     .when_type = QTN_T_I32, .when_offset = offsetof(fz_set, kind), .when_value = 1}};
static const qtn_struct s_set = {"fz_set", sizeof(fz_set), 1, f_set};
static const qtn_param f_res[] = {
    {.kind = QTN_K_STRING, .offset = offsetof(fz_res, name)},
    {.kind = QTN_K_IN, .elem_size = sizeof(fz_set), .len = 2, .offset = offsetof(fz_res, set),
     .st = &s_set}};
static const qtn_struct s_res = {"fz_res", sizeof(fz_res), 2, f_res};

static bool inside(const char *c, size_t size, const void *p, size_t bytes) {
    const char *q = p;
    return q >= c && q <= c + size && bytes <= (size_t)(c + size - q);
}

static void returned(const uint8_t *data, size_t size) {
    static _Alignas(16) char win[4096];
    enum { LO = 64 };
    const qtn_param retp = {.kind = QTN_K_OUT, .elem_size = sizeof(fz_res),
                            .len_kind = QTN_LEN_CONST, .len = 2, .st = &s_res};
    size_t room = sizeof win - LO, n = size < room ? size : room;
    memset(win, 0, sizeof win);
    memcpy(win + LO, data, n);
    /* pointers into what was laid out, where the input's bytes say */
    for (size_t i = 0; i + 2 <= n && i < 48; i += 2) {
        size_t at = LO + (data[i] * 8u) % (n ? n : 1);
        char *p = win + LO + (data[i + 1] * 4u) % (n + 8);
        if (at + sizeof p <= LO + n)
            memcpy(win + at, &p, sizeof p);
    }
    size_t len = n;
    if (size > 2 && data[0] == 0xff)
        len = (size_t)data[1] << 8; /* a length of the domain's choosing */
    uint64_t where = size && data[size - 1] == 0xfe ? 8 : LO; /* over the host's frame */
    where |= (uint64_t)len << 32;
    char *copy;
    size_t csize;
    int r = qtn__out_in(&retp, 0, where, win, LO, sizeof win, &copy, &csize);
    if (r) {
        if (r != QTN_ECONTRACT && r != QTN_ENOMEM)
            abort();
        if (copy)
            abort();
        return;
    }
    if (!copy || csize < 2 * sizeof(fz_res))
        abort();
    const fz_res *res = (const fz_res *)copy;
    for (int k = 0; k < 2; k++) {
        if (res[k].name && (!inside(copy, csize, res[k].name, 1) ||
                            !memchr(res[k].name, 0, (size_t)(copy + csize - res[k].name))))
            abort();
        if (!res[k].set)
            continue;
        if (!inside(copy, csize, res[k].set, 2 * sizeof(fz_set)))
            abort();
        for (int j = 0; j < 2; j++) {
            const fz_set *st = &res[k].set[j];
            if (st->kind != 1 || !st->u.items)
                continue; /* the union's bits: not a pointer */
            if (st->n < 0 || !inside(copy, csize, st->u.items, (size_t)st->n * 4))
                abort();
        }
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    if (data[0] % 3 == 2)
        returned(data + 1, size - 1);
    else if (data[0] & 1)
        answer(data + 1, size - 1);
    else
        request(data + 1, size - 1);
    return 0;
}
