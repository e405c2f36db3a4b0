/* marshal.h - inout copy of arguments, driven by parameter descriptors.
 *
 * The caller side (qtn__marshal, qtn__unmarshal) copies the caller's data
 * into a shared window and back. The callee side used by the host for
 * callbacks and upcalls (qtn__import, qtn__export) copies a frame written by
 * an untrusted domain into private memory, checking every pointer and length
 * against the frame's bounds, and copies the results back. */
#ifndef QTN_MARSHAL_H
#define QTN_MARSHAL_H

#include <stdbool.h>
#include <stddef.h>

#include "quarantine.h"

/* One pointer that crossed. For the caller side `mine` is the caller's
 * memory and `theirs` the shared copy; for the import side `mine` is the
 * private copy and `theirs` the location in the shared frame. */
typedef struct qtn__fix {
    const qtn_param *p;
    char *mine;
    char *theirs;
    size_t count;   /* elements reserved */
    size_t back;    /* elements to copy back (set after the call) */
    int32_t parent; /* fix whose struct array holds this field, -1 for a parameter */
    uint32_t pidx;  /* parameter index, or field index within the parent */
    size_t elem;    /* element of the parent holding this field */
    char *tmp;      /* caller side: checked private copy of a struct array */
    uint64_t stash; /* checked value of a one-element integer out-parameter */
    char *copy;     /* caller side, QTN_K_ALLOCATED: the caller's copy (alloc_fn's) */
    bool store;     /* caller side, QTN_K_ALLOCATED: `copy` goes to *mine (NULL too) */
} qtn__fix;

typedef struct qtn__fixv {
    qtn__fix *v;
    uint32_t n, cap;
    qtn__fix inl[8];
} qtn__fixv;

struct qtn__inc;

/* Shared memory to marshal into: a window [base, base+lim) used from `top`,
 * and, when `inc` is set, that incarnation's bulk area for what does not fit. */
typedef struct qtn__alloc {
    char *base;
    size_t top, lim;
    struct qtn__inc *inc;
    uint32_t nbulk, bulk_cap;
    struct qtn__bulk { void *p; size_t len; } *bulk;
} qtn__alloc;

void qtn__fixv_init(qtn__fixv *fx);
void qtn__fixv_free(qtn__fixv *fx);
/* Returns shared memory from `a` (16-byte aligned) or NULL. */
char *qtn__alloc_take(qtn__alloc *a, size_t bytes);
/* Returns the bulk memory `a` took to its domain. */
void qtn__alloc_release(qtn__alloc *a);

/* Element count of buffer parameter `p` given the argument values (and, for
 * a struct field, the element holding it). Returns 0 or QTN_EINVAL. */
int qtn__count(const qtn_param *params, const qtn_param *p, const qtn_val *args,
               const char *elem, size_t *count);

/* Caller side: fills out[] (the frame's arguments) from args[], copying
 * pointed-to data into memory from `a`. Callback parameters become the
 * marker (index + 1). Returns 0, QTN_ETOOBIG or QTN_EINVAL. */
int qtn__marshal(const qtn_param *params, unsigned n, const qtn_val *args, qtn_val *out,
                 qtn__alloc *a, qtn__fixv *fx);

/* Caller side, after the call: checks what came back (actual lengths,
 * moved pointers in structs) against what was sent, then copies it to the
 * caller's memory. `ret` is the private copy of the result, `rtype` its
 * QTN_T_*. Nothing is written unless every check passes. Returns 0 or
 * QTN_ECONTRACT (QTN_ENOMEM: out of memory). qtn__unmarshal_from: data the
 * callee allocated
 * (QTN_K_ALLOCATED parameters; a QTN_T_ALLOCATED result, described by
 * retp, replaced in *ret by the caller's copy) must lie in the window `win`
 * between offsets lo and hi: past what the caller sent. With win NULL
 * (a domain's request to the host), none comes back. QTN_ETOOBIG: the
 * callee's data did not fit in the window (the callee freed it). */
int qtn__unmarshal_from(const qtn_param *params, qtn_val *ret, uint8_t rtype,
                        const qtn_param *retp, qtn__fixv *fx, const char *win, size_t lo,
                        size_t hi);
/* The same without a window: no callee-allocated data comes back. */
int qtn__unmarshal(const qtn_param *params, qtn_val ret, uint8_t rtype, qtn__fixv *fx);

/* Callee side (a domain), after the call: copies the data the callee
 * allocated (QTN_K_ALLOCATED parameters, a QTN_T_ALLOCATED result) into the
 * window win from offset *at up to lim, frees the callee's copies with their
 * free_fn, and leaves in each cell (and in *ret) where it went:
 * offset | bytes << 32, 0 for NULL, QTN__ALLOC_TOOBIG or QTN__ALLOC_LEFT (a
 * cell the callee did not write, or a negative count: nothing allocated). */
void qtn__allocated_back(const qtn_param *params, unsigned n, const qtn_val *args, qtn_val *ret,
                         uint8_t rtype, const qtn_param *retp, char *win, size_t *at, size_t lim);

/* Callee side (a domain), after the call: copies the data a QTN_T_OUT
 * result points to (retp: its count and struct) into the window from *at
 * up to lim, each pointer field's data after it in the order qtn__out_in
 * walks them, those fields pointing to the copies. Returns offset | bytes
 * << 32 (all of it), 0 for NULL, or QTN__ALLOC_TOOBIG. */
uint64_t qtn__out_back(const qtn_param *retp, const qtn_param *params, const qtn_val *args,
                       const void *v, char *win, size_t *at, size_t lim);

/* Caller side: the data qtn__out_back left at `where` in the window, copied
 * once into new memory (malloc; *size its bytes) and checked there: the
 * result's elements first (count: retp's constant, or `count`), then each
 * pointer field's data, after the one before, inside what was copied, at a
 * multiple of QTN__ALIGN (so the caller reads it as C), its length read
 * from the copy; the fields then point into the copy. Returns
 * 0, QTN_ECONTRACT, QTN_ETOOBIG or QTN_ENOMEM. */
int qtn__out_in(const qtn_param *retp, size_t count, uint64_t where, const char *win, size_t lo,
                size_t hi, char **copy, size_t *size);

#define QTN__ALLOC_TOOBIG UINT64_MAX
#define QTN__ALLOC_LEFT (UINT64_MAX - 1)

/* Which handles a domain may send the host: ok(ctx, v) for each non-NULL
 * QTN_K_HANDLE parameter and struct field; false refuses the request. */
typedef struct qtn__hcheck {
    bool (*ok)(void *ctx, uint64_t v);
    void *ctx;
} qtn__hcheck;

/* Callee side (host): args[] holds private copies of the frame's values;
 * every pointer must lie in [lo, hi), every handle pass `hc` (NULL: any).
 * Replaces them with private copies; shared memory is read once (a string
 * is copied, then its NUL checked in the copy), so a domain thread writing
 * the frame meanwhile changes nothing the checks saw. Returns 0,
 * QTN_ECONTRACT, QTN_ESTALE (a handle `hc` refused) or QTN_ENOMEM
 * (callback parameters: QTN_EINVAL). */
int qtn__import_checked(const qtn_param *params, unsigned n, qtn_val *args, const char *lo,
                        const char *hi, qtn__fixv *fx, const qtn__hcheck *hc);
/* The same, any handle accepted. */
int qtn__import(const qtn_param *params, unsigned n, qtn_val *args, const char *lo,
                const char *hi, qtn__fixv *fx);

/* Callee side (host), after the call: copies out/inout data back into the
 * frame and frees the private copies. Handles in struct fields that go
 * back are passed to issue(ctx, v) (when set) first. */
void qtn__export_issuing(const qtn_param *params, qtn_val ret, uint8_t rtype, qtn__fixv *fx,
                         void (*issue)(void *ctx, uint64_t v), void *ctx);
void qtn__export(const qtn_param *params, qtn_val ret, uint8_t rtype, qtn__fixv *fx);

/* Frees private copies made by qtn__import without copying back. */
void qtn__import_drop(qtn__fixv *fx);

/* A result as the caller's C type `t` sees it (what the stub's cast keeps),
 * so that it is checked as that: an int actual length of
 * 0xffffffff00000400 is 1024, not a negative 64-bit number. */
qtn_val qtn__as_type(qtn_val v, uint8_t t);

bool qtn__type_signed(uint8_t t);
size_t qtn__type_size(uint8_t t);

#endif
