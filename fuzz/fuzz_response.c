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
 * Part 2 (a request from the domain): the input is a frame a domain wrote
 * for a callback or upcall; the host imports it (every pointer checked
 * against the frame) and exports results into it. The frame is allocated to
 * its exact size. */
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
} fz_named;

static const qtn_param f_stream[] = {
    {.kind = QTN_K_IN, .elem_size = 1, .len_kind = QTN_LEN_FIELD, .type = QTN_T_U32,
     .len = offsetof(fz_stream, avail_in), .offset = offsetof(fz_stream, next_in)},
    {.kind = QTN_K_OUT, .elem_size = 1, .len_kind = QTN_LEN_FIELD, .type = QTN_T_U32,
     .len = offsetof(fz_stream, avail_out), .offset = offsetof(fz_stream, next_out)}};
static const qtn_struct s_stream = {"fz_stream", sizeof(fz_stream), 2, f_stream};
static const qtn_param f_named[] = {
    {.kind = QTN_K_STRING, .offset = offsetof(fz_named, name)},
    {.kind = QTN_K_INOUT, .elem_size = 1, .len = 4, .offset = offsetof(fz_named, tag)}};
static const qtn_struct s_named = {"fz_named", sizeof(fz_named), 2, f_named};

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
        names[i] = (fz_named){i == 1 ? NULL : "nm", tags + 4 * i, i};
    memset(ints, 0x11, CAP * sizeof *ints);
    qtn_val args[NPARAMS] = {{.u = CAP}, {.p = buf}, {.p = got}, {.p = st},
                             {.p = str}, {.p = names}, {.p = ints}, {.p = (void *)0x1234}};
    qtn__alloc a = {.base = win, .top = 0, .lim = sizeof win};
    qtn__fixv fx;
    qtn__fixv_init(&fx);
    qtn__frame *fr = (qtn__frame *)qtn__alloc_take(&a, sizeof *fr + NPARAMS * sizeof(qtn_val));
    if (!fr || qtn__marshal(params, NPARAMS, args, fr->args, &a, &fx))
        abort(); /* the harness itself is wrong */
    qtn_val ret = {0};
    if (size >= 8) {
        memcpy(&ret, data, 8);
        data += 8;
        size -= 8;
    }
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
    int r = qtn__unmarshal(params, ret, QTN_T_I32, &fx);
    if (r == 0) {
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
    }
    qtn__fixv_free(&fx);
    free(buf), free(got), free(in), free(out), free(st), free(str), free(names), free(tags),
        free(ints);
}

static void request(const uint8_t *data, size_t size) {
    if (size < NPARAMS * 8 + 1)
        return;
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
    qtn__fixv fx;
    qtn__fixv_init(&fx);
    int r = qtn__import(params, NPARAMS, args, frame, frame + size, &fx);
    if (r == 0) {
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    if (data[0] & 1)
        answer(data + 1, size - 1);
    else
        request(data + 1, size - 1);
    return 0;
}
