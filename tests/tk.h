/* tk.h - a test component ("tk") with one entry per kind of parameter, and a
 * second component ("tk2") that tk calls, with hand-written stubs. */
#ifndef QTN_TESTS_TK_H
#define QTN_TESTS_TK_H

#include <stddef.h>
#include <stdint.h>

#include "quarantine.h"

typedef struct tk_stream {
    const uint8_t *next_in;
    uint32_t avail_in;
    uint8_t *next_out;
    uint32_t avail_out;
    uint64_t total;
} tk_stream;

typedef struct tk_point {
    int32_t x, y;
} tk_point;

typedef struct tk_named {
    const char *name;
    int32_t weight;
} tk_named;

extern qtn_component tk_component, tk2_component;

int tk_nop(void);
int64_t tk_add(int32_t a, int64_t b, uint8_t c, int16_t d);
double tk_scale(float f, double d);
uint32_t tk_sum_in(const uint8_t *buf, size_t n);
void tk_fill_out(uint8_t *buf, size_t n, uint8_t seed);
int tk_inc_inout(int32_t *v, size_t count);
size_t tk_strlen(const char *s);
int tk_upper(const char *s, char *out, size_t cap);   /* returns bytes written */
int tk_read(char *buf, size_t cap, size_t *got);     /* *got = bytes written */
int tk_copy(tk_stream *s, uint32_t max);             /* zlib-like stream */
int tk_points_flip(tk_point *pts, size_t n);
int64_t tk_names_weigh(const tk_named *items, size_t n);
void *tk_handle_new(int32_t v);
int32_t tk_handle_get(void *h);
void tk_handle_free(void *h);
int tk_each(const int32_t *v, size_t n, int (*cb)(void *ctx, int32_t x), void *ctx);
int tk_transform(const char *in, char *out, size_t cap,
                 int (*f)(const char *s, char *o, size_t cap));
int tk_via(int32_t a);                       /* calls tk2_twice */
int tk_meet(int32_t n, int32_t timeout_ms);  /* returns once n calls are inside */
uint64_t tk_invert(uint8_t *buf, size_t n);  /* inout, returns sum of new bytes */
int32_t tk_getpid(void);
int32_t tk_counter(void);                    /* private state of the domain */
void tk_scribble(const uint8_t *buf, size_t n); /* writes its in-buffer */
int tk_lie(int32_t mode, char *buf, size_t cap, size_t *got, tk_stream *s);
/* writes cap bytes of buf; returns cap (mode 0), or, mode 1, a result whose
 * int is 1024 but whose upper 32 bits are set (the actual length of buf) */
int tk_lie_ret(int32_t mode, char *buf, size_t cap);
/* n times: sleeps ms, then calls cb(ctx); returns n. Deadline 500 ms. */
int tk_tick(int32_t n, int32_t ms, int (*cb)(void *ctx), void *ctx);

extern int tk_last_err; /* qtn_call's result in tk_lie_ret's and tk_tick's stubs */

int32_t tk2_twice(int32_t a);

/* The real functions behind the stubs. */
int32_t tk2_twice_real(int32_t a);

#endif
