/* tk.c - the test components: real functions, their descriptors and
 * hand-written stubs in the shape `quarantine gen` emits. Each public
 * function is a stub; tk_*_real is the function itself. */
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tk.h"

/* ---- the real functions ------------------------------------------------------ */

static int tk_nop_real(void) { return 7; }

static int64_t tk_add_real(int32_t a, int64_t b, uint8_t c, int16_t d) {
    return (int64_t)a + b + c + d;
}

static double tk_scale_real(float f, double d) { return (double)f * d; }

static uint32_t tk_sum_in_real(const uint8_t *buf, size_t n) {
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = s * 31 + buf[i];
    return s;
}

static void tk_fill_out_real(uint8_t *buf, size_t n, uint8_t seed) {
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(seed + i * 7);
}

static int tk_inc_inout_real(int32_t *v, size_t count) {
    for (size_t i = 0; i < count; i++)
        v[i] = v[i] * 2 + 1;
    return (int)count;
}

static size_t tk_strlen_real(const char *s) { return strlen(s); }

static int tk_upper_real(const char *s, char *out, size_t cap) {
    size_t i = 0;
    for (; s[i] && i < cap; i++)
        out[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
    return (int)i;
}

static int tk_read_real(char *buf, size_t cap, size_t *got) {
    static const char text[] = "the quick brown fox";
    size_t n = cap < sizeof text - 1 ? cap : sizeof text - 1;
    memcpy(buf, text, n);
    *got = n;
    return 0;
}

static int tk_copy_real(tk_stream *s, uint32_t max) {
    uint32_t n = s->avail_in < s->avail_out ? s->avail_in : s->avail_out;
    if (n > max)
        n = max;
    for (uint32_t i = 0; i < n; i++)
        s->next_out[i] = (uint8_t)(s->next_in[i] ^ 0x5a);
    s->next_in += n;
    s->avail_in -= n;
    s->next_out += n;
    s->avail_out -= n;
    s->total += n;
    return (int)n;
}

static int tk_points_flip_real(tk_point *pts, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int32_t t = pts[i].x;
        pts[i].x = -pts[i].y;
        pts[i].y = t;
    }
    return (int)n;
}

static int64_t tk_names_weigh_real(const tk_named *items, size_t n) {
    int64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += (int64_t)(items[i].name ? strlen(items[i].name) : 1000) * items[i].weight;
    return s;
}

struct tk_box {
    int32_t v;
};

static void *tk_handle_new_real(int32_t v) {
    struct tk_box *b = malloc(sizeof *b);
    if (b)
        b->v = v;
    return b;
}

static int32_t tk_handle_get_real(void *h) { return h ? ((struct tk_box *)h)->v : -1; }

static void tk_handle_free_real(void *h) { free(h); }

static int tk_each_real(const int32_t *v, size_t n, int (*cb)(void *ctx, int32_t x), void *ctx) {
    int s = 0;
    for (size_t i = 0; i < n; i++)
        s += cb(ctx, v[i]);
    return s;
}

static int tk_transform_real(const char *in, char *out, size_t cap,
                             int (*f)(const char *s, char *o, size_t cap)) {
    return f(in, out, cap) + 1000;
}

static int tk_via_real(int32_t a) { return tk2_twice(a) + 1; }

static _Atomic uint32_t meet_inside;

static int tk_meet_real(int32_t n, int32_t timeout_ms) {
    uint32_t v = atomic_fetch_add(&meet_inside, 1) + 1;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((int32_t)v < n) {
        struct timespec ts = {0, 1000000};
        syscall(SYS_futex, &meet_inside, FUTEX_WAIT_PRIVATE, v, &ts, NULL, 0);
        v = atomic_load(&meet_inside);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms)
            return -1; /* the others never came: calls were serialised */
    }
    syscall(SYS_futex, &meet_inside, FUTEX_WAKE_PRIVATE, 1 << 30, NULL, NULL, 0);
    return (int)v;
}

static uint64_t tk_invert_real(uint8_t *buf, size_t n) {
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        buf[i] = (uint8_t)~buf[i];
        s += buf[i];
    }
    return s;
}

static int32_t tk_getpid_real(void) { return (int32_t)getpid(); }

static int32_t counter;
static int32_t tk_counter_real(void) { return ++counter; }

static void tk_scribble_real(const uint8_t *buf, size_t n) {
    memset((uint8_t *)buf, 0xee, n); /* breaks its contract on purpose */
}

/* Lies about what it wrote, in the ways a broken domain could. */
static int tk_lie_real(int32_t mode, char *buf, size_t cap, size_t *got, tk_stream *s) {
    memset(buf, 'x', cap);
    switch (mode) {
    case 0: *got = cap; return 0;                       /* honest */
    case 1: *got = cap + 1; return 0;                   /* longer than sent */
    case 2: *got = (size_t)-1; return 0;                /* huge */
    case 3: s->next_out = (uint8_t *)buf; return 0;     /* a pointer it was not given */
    case 4: s->next_out += s->avail_out + 1; return 0;   /* past the buffer */
    case 5: s->next_out = (uint8_t *)(uintptr_t)0x1000; return 0;
    case 6: s->next_in = NULL; s->next_out = NULL; return 0; /* NULL is allowed */
    default: return -1;
    }
}

static void nap_ms(int32_t ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static int tk_tick_real(int32_t n, int32_t ms, int (*cb)(void *ctx), void *ctx) {
    for (int32_t i = 0; i < n; i++) {
        nap_ms(ms);
        cb(ctx);
    }
    return n;
}

static int32_t tk2_counter;
int32_t tk2_twice_real(int32_t a) { return 2 * a + 0 * ++tk2_counter; }

/* ---- descriptors ------------------------------------------------------------ */

#define THUNK(name) static void name##_thunk(qtn_val *a, qtn_val *r)

THUNK(tk_nop) { (void)a; r->i = tk_nop_real(); }
THUNK(tk_add) { r->i = tk_add_real((int32_t)a[0].i, a[1].i, (uint8_t)a[2].u, (int16_t)a[3].i); }
THUNK(tk_scale) { r->d = tk_scale_real(a[0].f, a[1].d); }
THUNK(tk_sum_in) { r->u = tk_sum_in_real(a[0].p, a[1].u); }
THUNK(tk_fill_out) { (void)r; tk_fill_out_real(a[0].p, a[1].u, (uint8_t)a[2].u); }
THUNK(tk_inc_inout) { r->i = tk_inc_inout_real(a[0].p, a[1].u); }
THUNK(tk_strlen) { r->u = tk_strlen_real(a[0].p); }
THUNK(tk_upper) { r->i = tk_upper_real(a[0].p, a[1].p, a[2].u); }
THUNK(tk_read) { r->i = tk_read_real(a[0].p, a[1].u, a[2].p); }
THUNK(tk_copy) { r->i = tk_copy_real(a[0].p, (uint32_t)a[1].u); }
THUNK(tk_points_flip) { r->i = tk_points_flip_real(a[0].p, a[1].u); }
THUNK(tk_names_weigh) { r->i = tk_names_weigh_real(a[0].p, a[1].u); }
THUNK(tk_handle_new) { r->p = tk_handle_new_real((int32_t)a[0].i); }
THUNK(tk_handle_get) { r->i = tk_handle_get_real(a[0].p); }
THUNK(tk_handle_free) { (void)r; tk_handle_free_real(a[0].p); }
THUNK(tk_each) { r->i = tk_each_real(a[0].p, a[1].u, (int (*)(void *, int32_t))a[2].p, a[3].p); }
THUNK(tk_transform) {
    r->i = tk_transform_real(a[0].p, a[1].p, a[2].u,
                             (int (*)(const char *, char *, size_t))a[3].p);
}
THUNK(tk_via) { r->i = tk_via_real((int32_t)a[0].i); }
THUNK(tk_meet) { r->i = tk_meet_real((int32_t)a[0].i, (int32_t)a[1].i); }
THUNK(tk_invert) { r->u = tk_invert_real(a[0].p, a[1].u); }
THUNK(tk_getpid) { (void)a; r->i = tk_getpid_real(); }
THUNK(tk_counter) { (void)a; r->i = tk_counter_real(); }
THUNK(tk_scribble) { (void)r; tk_scribble_real(a[0].p, a[1].u); }
THUNK(tk_lie) { r->i = tk_lie_real((int32_t)a[0].i, a[1].p, a[2].u, a[3].p, a[4].p); }
THUNK(tk2_twice) { r->i = tk2_twice_real((int32_t)a[0].i); }
/* hostile on purpose: the result's upper half is set, its int is 1024 */
THUNK(tk_lie_ret) {
    memset(a[1].p, 'x', a[2].u);
    if (a[0].i == 1)
        r->u = 0xffffffff00000400ull;
    else
        r->i = (int)a[2].u;
}
THUNK(tk_tick) {
    r->i = tk_tick_real((int32_t)a[0].i, (int32_t)a[1].i, (int (*)(void *))a[2].p, a[3].p);
}

static const qtn_param p_add[] = {QTN_P_SCALAR(QTN_T_I32), QTN_P_SCALAR(QTN_T_I64),
                                  QTN_P_SCALAR(QTN_T_U8), QTN_P_SCALAR(QTN_T_I16)};
static const qtn_param p_scale[] = {QTN_P_SCALAR(QTN_T_F32), QTN_P_SCALAR(QTN_T_F64)};
static const qtn_param p_sum_in[] = {QTN_P_BUF(QTN_K_IN, 1, 1), QTN_P_SCALAR(QTN_T_U64)};
static const qtn_param p_fill_out[] = {QTN_P_BUF(QTN_K_OUT, 1, 1), QTN_P_SCALAR(QTN_T_U64),
                                       QTN_P_SCALAR(QTN_T_U8)};
static const qtn_param p_inc_inout[] = {QTN_P_BUF(QTN_K_INOUT, 4, 1), QTN_P_SCALAR(QTN_T_U64)};
static const qtn_param p_strlen[] = {QTN_P_STRING};
static const qtn_param p_upper[] = {
    QTN_P_STRING,
    {.kind = QTN_K_OUT, .elem_size = 1, .len_kind = QTN_LEN_PARAM, .len = 2,
     .actual = QTN_ACTUAL_RET},
    QTN_P_SCALAR(QTN_T_U64)};
static const qtn_param p_read[] = {
    {.kind = QTN_K_OUT, .elem_size = 1, .len_kind = QTN_LEN_PARAM, .len = 1,
     .actual = QTN_ACTUAL_PARAM(2)},
    QTN_P_SCALAR(QTN_T_U64),
    {.kind = QTN_K_OUT, .type = QTN_T_U64, .elem_size = 8, .len = 1}};

static const qtn_param f_stream[] = {
    {.kind = QTN_K_IN, .elem_size = 1, .len_kind = QTN_LEN_FIELD, .type = QTN_T_U32,
     .len = offsetof(tk_stream, avail_in), .offset = offsetof(tk_stream, next_in)},
    {.kind = QTN_K_OUT, .elem_size = 1, .len_kind = QTN_LEN_FIELD, .type = QTN_T_U32,
     .len = offsetof(tk_stream, avail_out), .offset = offsetof(tk_stream, next_out)}};
static const qtn_struct s_stream = {"tk_stream", sizeof(tk_stream), 2, f_stream};
static const qtn_param p_copy[] = {
    {.kind = QTN_K_INOUT, .elem_size = sizeof(tk_stream), .len = 1, .st = &s_stream},
    QTN_P_SCALAR(QTN_T_U32)};
static const qtn_param p_points[] = {QTN_P_BUF(QTN_K_INOUT, sizeof(tk_point), 1),
                                     QTN_P_SCALAR(QTN_T_U64)};
static const qtn_param f_named[] = {{.kind = QTN_K_STRING, .offset = offsetof(tk_named, name)}};
static const qtn_struct s_named = {"tk_named", sizeof(tk_named), 1, f_named};
static const qtn_param p_names[] = {
    {.kind = QTN_K_IN, .elem_size = sizeof(tk_named), .len_kind = QTN_LEN_PARAM, .len = 1,
     .st = &s_named},
    QTN_P_SCALAR(QTN_T_U64)};
static const qtn_param p_handle_new[] = {QTN_P_SCALAR(QTN_T_I32)};
static const qtn_param p_handle_get[] = {QTN_P_HANDLE};
static const qtn_param cbp_each[] = {QTN_P_HANDLE, QTN_P_SCALAR(QTN_T_I32)};
static const qtn_sig sig_each = {QTN_T_I32, 2, cbp_each};
static const qtn_param p_each[] = {QTN_P_BUF(QTN_K_IN, 4, 1), QTN_P_SCALAR(QTN_T_U64),
                                   QTN_P_CALLBACK(&sig_each), QTN_P_HANDLE};
static const qtn_param cbp_transform[] = {QTN_P_STRING, QTN_P_BUF(QTN_K_OUT, 1, 2),
                                          QTN_P_SCALAR(QTN_T_U64)};
static const qtn_sig sig_transform = {QTN_T_I32, 3, cbp_transform};
static const qtn_param p_transform[] = {QTN_P_STRING, QTN_P_BUF(QTN_K_OUT, 1, 2),
                                        QTN_P_SCALAR(QTN_T_U64),
                                        QTN_P_CALLBACK(&sig_transform)};
static const qtn_param p_i32[] = {QTN_P_SCALAR(QTN_T_I32)};
static const qtn_param p_meet[] = {QTN_P_SCALAR(QTN_T_I32), QTN_P_SCALAR(QTN_T_I32)};
static const qtn_param p_invert[] = {QTN_P_BUF(QTN_K_INOUT, 1, 1), QTN_P_SCALAR(QTN_T_U64)};
static const qtn_param p_scribble[] = {QTN_P_BUF(QTN_K_IN, 1, 1), QTN_P_SCALAR(QTN_T_U64)};
static const qtn_param p_lie[] = {
    QTN_P_SCALAR(QTN_T_I32),
    {.kind = QTN_K_OUT, .elem_size = 1, .len_kind = QTN_LEN_PARAM, .len = 2,
     .actual = QTN_ACTUAL_PARAM(3)},
    QTN_P_SCALAR(QTN_T_U64),
    {.kind = QTN_K_OUT, .type = QTN_T_U64, .elem_size = 8, .len = 1},
    {.kind = QTN_K_INOUT, .elem_size = sizeof(tk_stream), .len = 1, .st = &s_stream,
     .flags = QTN_F_NULLABLE}};

static const qtn_param p_lie_ret[] = {
    QTN_P_SCALAR(QTN_T_I32),
    {.kind = QTN_K_OUT, .elem_size = 1, .len_kind = QTN_LEN_PARAM, .len = 2,
     .actual = QTN_ACTUAL_RET},
    QTN_P_SCALAR(QTN_T_U64)};
static const qtn_param cbp_tick[] = {QTN_P_HANDLE};
static const qtn_sig sig_tick = {QTN_T_I32, 1, cbp_tick};
static const qtn_param p_tick[] = {QTN_P_SCALAR(QTN_T_I32), QTN_P_SCALAR(QTN_T_I32),
                                   QTN_P_CALLBACK(&sig_tick), QTN_P_HANDLE};

#define ENTRY(nm, rt, params_, faultv)                                                   \
    static const qtn_entry nm##_entry = {.name = #nm, .component = &tk_component,         \
                                           .thunk = nm##_thunk, .ret = rt,              \
                                           .nparams = sizeof params_ / sizeof params_[0], \
                                           .params = params_, .fault = {.i = faultv}}
#define ENTRY0(nm, rt, faultv)                                                           \
    static const qtn_entry nm##_entry = {.name = #nm, .component = &tk_component,        \
                                           .thunk = nm##_thunk, .ret = rt,             \
                                           .fault = {.i = faultv}}

ENTRY0(tk_nop, QTN_T_I32, -1);
ENTRY(tk_add, QTN_T_I64, p_add, -1);
static const qtn_entry tk_scale_entry = {.name = "tk_scale", .component = &tk_component,
                                         .thunk = tk_scale_thunk, .ret = QTN_T_F64,
                                         .nparams = 2, .params = p_scale, .fault = {.d = -1.0}};
ENTRY(tk_sum_in, QTN_T_U32, p_sum_in, 0xffffffff);
ENTRY(tk_fill_out, QTN_T_VOID, p_fill_out, 0);
ENTRY(tk_inc_inout, QTN_T_I32, p_inc_inout, -1);
ENTRY(tk_strlen, QTN_T_U64, p_strlen, -1);
ENTRY(tk_upper, QTN_T_I32, p_upper, -1);
ENTRY(tk_read, QTN_T_I32, p_read, -1);
ENTRY(tk_copy, QTN_T_I32, p_copy, -1);
ENTRY(tk_points_flip, QTN_T_I32, p_points, -1);
ENTRY(tk_names_weigh, QTN_T_I64, p_names, -1);
ENTRY(tk_handle_new, QTN_T_PTR, p_handle_new, 0);
ENTRY(tk_handle_get, QTN_T_I32, p_handle_get, -1);
ENTRY(tk_handle_free, QTN_T_VOID, p_handle_get, 0);
ENTRY(tk_each, QTN_T_I32, p_each, -1);
ENTRY(tk_transform, QTN_T_I32, p_transform, -1);
ENTRY(tk_via, QTN_T_I32, p_i32, -1);
ENTRY(tk_meet, QTN_T_I32, p_meet, -2);
ENTRY(tk_invert, QTN_T_U64, p_invert, 0);
ENTRY0(tk_getpid, QTN_T_I32, -1);
ENTRY0(tk_counter, QTN_T_I32, -1);
ENTRY(tk_scribble, QTN_T_VOID, p_scribble, 0);
ENTRY(tk_lie, QTN_T_I32, p_lie, -99);
ENTRY(tk_lie_ret, QTN_T_I32, p_lie_ret, -99);
static const qtn_entry tk_tick_entry = {.name = "tk_tick", .component = &tk_component,
                                        .thunk = tk_tick_thunk, .ret = QTN_T_I32, .nparams = 4,
                                        .params = p_tick, .fault = {.i = -1},
                                        .deadline_ms = 500};
static const qtn_entry tk2_twice_entry = {.name = "tk2_twice", .component = &tk2_component,
                                          .thunk = tk2_twice_thunk, .ret = QTN_T_I32,
                                          .nparams = 1, .params = p_i32, .fault = {.i = -1}};

static const qtn_entry *const tk_entries[] = {
    &tk_nop_entry, &tk_add_entry, &tk_scale_entry, &tk_sum_in_entry, &tk_fill_out_entry,
    &tk_inc_inout_entry, &tk_strlen_entry, &tk_upper_entry, &tk_read_entry, &tk_copy_entry,
    &tk_points_flip_entry, &tk_names_weigh_entry, &tk_handle_new_entry, &tk_handle_get_entry,
    &tk_handle_free_entry,
    &tk_each_entry, &tk_transform_entry, &tk_via_entry, &tk_meet_entry, &tk_invert_entry,
    &tk_getpid_entry, &tk_counter_entry, &tk_scribble_entry, &tk_lie_entry,
    &tk_lie_ret_entry, &tk_tick_entry};
static const qtn_entry *const tk2_entries[] = {&tk2_twice_entry};

qtn_component tk_component = {.name = "tk",
                              .nentries = sizeof tk_entries / sizeof tk_entries[0],
                              .entries = tk_entries};
qtn_component tk2_component = {.name = "tk2", .nentries = 1, .entries = tk2_entries};

/* ---- stubs --------------------------------------------------------------------- */

/* Calls from code outside any component; tk_via's call to tk2 comes from tk. */
#define EDGE(name) static qtn_edge name##_edge = QTN_EDGE_INIT(NULL, &name##_entry)

EDGE(tk_nop);
EDGE(tk_add);
EDGE(tk_scale);
EDGE(tk_sum_in);
EDGE(tk_fill_out);
EDGE(tk_inc_inout);
EDGE(tk_strlen);
EDGE(tk_upper);
EDGE(tk_read);
EDGE(tk_copy);
EDGE(tk_points_flip);
EDGE(tk_names_weigh);
EDGE(tk_handle_new);
EDGE(tk_handle_get);
EDGE(tk_handle_free);
EDGE(tk_each);
EDGE(tk_transform);
EDGE(tk_via);
EDGE(tk_meet);
EDGE(tk_invert);
EDGE(tk_getpid);
EDGE(tk_counter);
EDGE(tk_scribble);
EDGE(tk_lie);
EDGE(tk_lie_ret);
EDGE(tk_tick);
static qtn_edge tk2_twice_edge = QTN_EDGE_INIT(&tk_component, &tk2_twice_entry);

int tk_nop(void) {
    if (QTN_DIRECT(&tk_nop_edge))
        return tk_nop_real();
    qtn_val r;
    qtn_call(&tk_nop_edge, NULL, &r);
    return (int)r.i;
}

int64_t tk_add(int32_t a, int64_t b, uint8_t c, int16_t d) {
    if (QTN_DIRECT(&tk_add_edge))
        return tk_add_real(a, b, c, d);
    qtn_val v[4] = {{.i = a}, {.i = b}, {.u = c}, {.i = d}}, r;
    qtn_call(&tk_add_edge, v, &r);
    return r.i;
}

double tk_scale(float f, double d) {
    if (QTN_DIRECT(&tk_scale_edge))
        return tk_scale_real(f, d);
    qtn_val v[2] = {{.f = f}, {.d = d}}, r;
    qtn_call(&tk_scale_edge, v, &r);
    return r.d;
}

uint32_t tk_sum_in(const uint8_t *buf, size_t n) {
    if (QTN_DIRECT(&tk_sum_in_edge))
        return tk_sum_in_real(buf, n);
    qtn_val v[2] = {{.p = (void *)buf}, {.u = n}}, r;
    qtn_call(&tk_sum_in_edge, v, &r);
    return (uint32_t)r.u;
}

void tk_fill_out(uint8_t *buf, size_t n, uint8_t seed) {
    if (QTN_DIRECT(&tk_fill_out_edge)) {
        tk_fill_out_real(buf, n, seed);
        return;
    }
    qtn_val v[3] = {{.p = buf}, {.u = n}, {.u = seed}}, r;
    qtn_call(&tk_fill_out_edge, v, &r);
}

int tk_inc_inout(int32_t *p, size_t count) {
    if (QTN_DIRECT(&tk_inc_inout_edge))
        return tk_inc_inout_real(p, count);
    qtn_val v[2] = {{.p = p}, {.u = count}}, r;
    qtn_call(&tk_inc_inout_edge, v, &r);
    return (int)r.i;
}

size_t tk_strlen(const char *s) {
    if (QTN_DIRECT(&tk_strlen_edge))
        return tk_strlen_real(s);
    qtn_val v[1] = {{.p = (void *)s}}, r;
    qtn_call(&tk_strlen_edge, v, &r);
    return (size_t)r.u;
}

int tk_upper(const char *s, char *out, size_t cap) {
    if (QTN_DIRECT(&tk_upper_edge))
        return tk_upper_real(s, out, cap);
    qtn_val v[3] = {{.p = (void *)s}, {.p = out}, {.u = cap}}, r;
    qtn_call(&tk_upper_edge, v, &r);
    return (int)r.i;
}

int tk_read(char *buf, size_t cap, size_t *got) {
    if (QTN_DIRECT(&tk_read_edge))
        return tk_read_real(buf, cap, got);
    qtn_val v[3] = {{.p = buf}, {.u = cap}, {.p = got}}, r;
    qtn_call(&tk_read_edge, v, &r);
    return (int)r.i;
}

int tk_copy(tk_stream *s, uint32_t max) {
    if (QTN_DIRECT(&tk_copy_edge))
        return tk_copy_real(s, max);
    qtn_val v[2] = {{.p = s}, {.u = max}}, r;
    qtn_call(&tk_copy_edge, v, &r);
    return (int)r.i;
}

int tk_points_flip(tk_point *pts, size_t n) {
    if (QTN_DIRECT(&tk_points_flip_edge))
        return tk_points_flip_real(pts, n);
    qtn_val v[2] = {{.p = pts}, {.u = n}}, r;
    qtn_call(&tk_points_flip_edge, v, &r);
    return (int)r.i;
}

int64_t tk_names_weigh(const tk_named *items, size_t n) {
    if (QTN_DIRECT(&tk_names_weigh_edge))
        return tk_names_weigh_real(items, n);
    qtn_val v[2] = {{.p = (void *)items}, {.u = n}}, r;
    qtn_call(&tk_names_weigh_edge, v, &r);
    return r.i;
}

void *tk_handle_new(int32_t x) {
    if (QTN_DIRECT(&tk_handle_new_edge))
        return tk_handle_new_real(x);
    qtn_val v[1] = {{.i = x}}, r;
    qtn_call(&tk_handle_new_edge, v, &r);
    return r.p;
}

int32_t tk_handle_get(void *h) {
    if (QTN_DIRECT(&tk_handle_get_edge))
        return tk_handle_get_real(h);
    qtn_val v[1] = {{.p = h}}, r;
    qtn_call(&tk_handle_get_edge, v, &r);
    return (int32_t)r.i;
}

void tk_handle_free(void *h) {
    if (QTN_DIRECT(&tk_handle_free_edge)) {
        tk_handle_free_real(h);
        return;
    }
    qtn_val v[1] = {{.p = h}}, r;
    qtn_call(&tk_handle_free_edge, v, &r);
}

int tk_each(const int32_t *p, size_t n, int (*cb)(void *ctx, int32_t x), void *ctx) {
    if (QTN_DIRECT(&tk_each_edge))
        return tk_each_real(p, n, cb, ctx);
    qtn_val v[4] = {{.p = (void *)p}, {.u = n}, {.p = (void *)cb}, {.p = ctx}}, r;
    qtn_call(&tk_each_edge, v, &r);
    return (int)r.i;
}

int tk_transform(const char *in, char *out, size_t cap,
                 int (*f)(const char *s, char *o, size_t cap)) {
    if (QTN_DIRECT(&tk_transform_edge))
        return tk_transform_real(in, out, cap, f);
    qtn_val v[4] = {{.p = (void *)in}, {.p = out}, {.u = cap}, {.p = (void *)f}}, r;
    qtn_call(&tk_transform_edge, v, &r);
    return (int)r.i;
}

int tk_via(int32_t a) {
    if (QTN_DIRECT(&tk_via_edge))
        return tk_via_real(a);
    qtn_val v[1] = {{.i = a}}, r;
    qtn_call(&tk_via_edge, v, &r);
    return (int)r.i;
}

int tk_meet(int32_t n, int32_t timeout_ms) {
    if (QTN_DIRECT(&tk_meet_edge))
        return tk_meet_real(n, timeout_ms);
    qtn_val v[2] = {{.i = n}, {.i = timeout_ms}}, r;
    qtn_call(&tk_meet_edge, v, &r);
    return (int)r.i;
}

uint64_t tk_invert(uint8_t *buf, size_t n) {
    if (QTN_DIRECT(&tk_invert_edge))
        return tk_invert_real(buf, n);
    qtn_val v[2] = {{.p = buf}, {.u = n}}, r;
    qtn_call(&tk_invert_edge, v, &r);
    return r.u;
}

int32_t tk_getpid(void) {
    if (QTN_DIRECT(&tk_getpid_edge))
        return tk_getpid_real();
    qtn_val r;
    qtn_call(&tk_getpid_edge, NULL, &r);
    return (int32_t)r.i;
}

int32_t tk_counter(void) {
    if (QTN_DIRECT(&tk_counter_edge))
        return tk_counter_real();
    qtn_val r;
    qtn_call(&tk_counter_edge, NULL, &r);
    return (int32_t)r.i;
}

void tk_scribble(const uint8_t *buf, size_t n) {
    if (QTN_DIRECT(&tk_scribble_edge)) {
        tk_scribble_real(buf, n);
        return;
    }
    qtn_val v[2] = {{.p = (void *)buf}, {.u = n}}, r;
    qtn_call(&tk_scribble_edge, v, &r);
}

int tk_lie(int32_t mode, char *buf, size_t cap, size_t *got, tk_stream *s) {
    if (QTN_DIRECT(&tk_lie_edge))
        return tk_lie_real(mode, buf, cap, got, s);
    qtn_val v[5] = {{.i = mode}, {.p = buf}, {.u = cap}, {.p = got}, {.p = s}}, r;
    qtn_call(&tk_lie_edge, v, &r);
    return (int)r.i;
}

int tk_last_err;

int tk_lie_ret(int32_t mode, char *buf, size_t cap) {
    if (QTN_DIRECT(&tk_lie_ret_edge)) {
        memset(buf, 'x', cap);
        return (int)cap;
    }
    qtn_val v[3] = {{.i = mode}, {.p = buf}, {.u = cap}}, r;
    tk_last_err = qtn_call(&tk_lie_ret_edge, v, &r);
    return (int)r.i;
}

int tk_tick(int32_t n, int32_t ms, int (*cb)(void *ctx), void *ctx) {
    if (QTN_DIRECT(&tk_tick_edge))
        return tk_tick_real(n, ms, cb, ctx);
    qtn_val v[4] = {{.i = n}, {.i = ms}, {.p = (void *)cb}, {.p = ctx}}, r;
    tk_last_err = qtn_call(&tk_tick_edge, v, &r);
    return (int)r.i;
}

int32_t tk2_twice(int32_t a) {
    if (QTN_DIRECT(&tk2_twice_edge))
        return tk2_twice_real(a);
    qtn_val v[1] = {{.i = a}}, r;
    qtn_call(&tk2_twice_edge, v, &r);
    return (int32_t)r.i;
}
