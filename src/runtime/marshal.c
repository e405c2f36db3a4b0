/* marshal.c - inout copy driven by parameter descriptors (see marshal.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "marshal.h"

bool qtn__type_signed(uint8_t t) {
    return t == QTN_T_I8 || t == QTN_T_I16 || t == QTN_T_I32 || t == QTN_T_I64;
}

size_t qtn__type_size(uint8_t t) {
    switch (t) {
    case QTN_T_I8: case QTN_T_U8: return 1;
    case QTN_T_I16: case QTN_T_U16: return 2;
    case QTN_T_I32: case QTN_T_U32: case QTN_T_F32: return 4;
    case QTN_T_I64: case QTN_T_U64: case QTN_T_F64: case QTN_T_PTR: return 8;
    default: return 0;
    }
}

qtn_val qtn__as_type(qtn_val v, uint8_t t) {
    switch (t) {
    case QTN_T_VOID: v.u = 0; break;
    case QTN_T_I8: v.i = (int8_t)v.u; break;
    case QTN_T_U8: v.u = (uint8_t)v.u; break;
    case QTN_T_I16: v.i = (int16_t)v.u; break;
    case QTN_T_U16: v.u = (uint16_t)v.u; break;
    case QTN_T_I32: v.i = (int32_t)v.u; break;
    case QTN_T_U32: v.u = (uint32_t)v.u; break;
    default: break; /* 64-bit values, pointers, doubles; a float's bits are its own */
    }
    return v;
}

/* The type a count parameter p is read as: its own, or (an unannotated
 * integer out-parameter) the unsigned integer of its element's size. */
static uint8_t count_type(const qtn_param *p) {
    return p->type ? p->type : p->elem_size == 4 ? QTN_T_U32 : QTN_T_U64;
}

/* An integer of type t stored at p, as a count: negative counts are invalid. */
static int read_count(const void *p, uint8_t t, size_t *out) {
    int64_t s;
    uint64_t u;
    switch (t) {
    case QTN_T_I8: { int8_t v; memcpy(&v, p, 1); s = v; goto sgn; }
    case QTN_T_I16: { int16_t v; memcpy(&v, p, 2); s = v; goto sgn; }
    case QTN_T_I32: { int32_t v; memcpy(&v, p, 4); s = v; goto sgn; }
    case QTN_T_I64: memcpy(&s, p, 8); goto sgn;
    case QTN_T_U8: { uint8_t v; memcpy(&v, p, 1); u = v; break; }
    case QTN_T_U16: { uint16_t v; memcpy(&v, p, 2); u = v; break; }
    case QTN_T_U32: { uint32_t v; memcpy(&v, p, 4); u = v; break; }
    case QTN_T_U64: memcpy(&u, p, 8); break;
    default: return QTN_EINVAL;
    }
    *out = (size_t)u;
    return 0;
sgn:
    if (s < 0)
        return QTN_EINVAL;
    *out = (size_t)s;
    return 0;
}

/* A qtn_val holding a value of type t, as a count (stubs sign-extend signed
 * values into .i and zero-extend unsigned ones into .u). */
static int val_count(qtn_val v, uint8_t t, size_t *out) {
    if (qtn__type_signed(t)) {
        if (v.i < 0)
            return QTN_EINVAL;
        *out = (size_t)v.i;
        return 0;
    }
    *out = (size_t)v.u;
    return 0;
}

int qtn__count(const qtn_param *params, const qtn_param *p, const qtn_val *args,
               const char *elem, size_t *count) {
    switch (p->len_kind) {
    case QTN_LEN_CONST: *count = (size_t)p->len; return 0;
    case QTN_LEN_PARAM: return val_count(args[p->len], params[p->len].type, count);
    case QTN_LEN_FIELD:
        if (!elem)
            return QTN_EINVAL;
        return read_count(elem + p->len, p->type, count);
    case QTN_LEN_FN:
        if (!p->len_fn)
            return QTN_EINVAL;
        *count = p->len_fn(args);
        return 0;
    default: return QTN_EINVAL;
    }
}

void qtn__fixv_init(qtn__fixv *fx) {
    fx->v = fx->inl;
    fx->n = 0;
    fx->cap = (uint32_t)(sizeof fx->inl / sizeof fx->inl[0]);
}

void qtn__fixv_free(qtn__fixv *fx) {
    for (uint32_t i = 0; i < fx->n; i++)
        free(fx->v[i].tmp);
    if (fx->v != fx->inl)
        free(fx->v);
    qtn__fixv_init(fx);
}

static qtn__fix *fix_add(qtn__fixv *fx) {
    if (fx->n == fx->cap) {
        uint32_t ncap = fx->cap * 2;
        qtn__fix *nv = malloc(ncap * sizeof *nv);
        if (!nv)
            return NULL;
        memcpy(nv, fx->v, fx->n * sizeof *nv);
        if (fx->v != fx->inl)
            free(fx->v);
        fx->v = nv;
        fx->cap = ncap;
    }
    qtn__fix *f = &fx->v[fx->n++];
    memset(f, 0, sizeof *f);
    return f;
}

char *qtn__alloc_take(qtn__alloc *a, size_t bytes) {
    if (bytes <= a->lim - a->top && (a->lim - a->top) - bytes >= QTN__ALIGN) {
        char *p = a->base + a->top;
        a->top += qtn__align_up(bytes);
        return p;
    }
    if (!a->inc || bytes == 0)
        return NULL;
    if (a->nbulk == a->bulk_cap) {
        uint32_t ncap = a->bulk_cap ? a->bulk_cap * 2 : 4;
        struct qtn__bulk *nb = realloc(a->bulk, ncap * sizeof *nb);
        if (!nb)
            return NULL;
        a->bulk = nb;
        a->bulk_cap = ncap;
    }
    void *p = qtn__bulk_alloc(a->inc, bytes);
    if (!p)
        return NULL;
    a->bulk[a->nbulk].p = p;
    a->bulk[a->nbulk].len = bytes;
    a->nbulk++;
    return p;
}

void qtn__alloc_release(qtn__alloc *a) {
    for (uint32_t i = 0; i < a->nbulk; i++)
        qtn__bulk_free(a->inc, a->bulk[i].p, a->bulk[i].len);
    free(a->bulk);
    a->bulk = NULL;
    a->nbulk = a->bulk_cap = 0;
}

/* False for a field of a union member that the element's discriminant
 * says is not the active one: its bytes are the union's, not a pointer. */
static bool field_active(const qtn_param *f, const char *elem) {
    if (!(f->flags & QTN_F_WHEN))
        return true;
    uint64_t u = 0;
    size_t n = qtn__type_size(f->when_type);
    if (!n || n > 8)
        return false;
    memcpy(&u, elem + f->when_offset, n); /* little-endian widening */
    qtn_val v = qtn__as_type((qtn_val){.u = u}, f->when_type);
    return v.i == f->when_value;
}

static bool is_buffer(uint8_t k) { return k == QTN_K_IN || k == QTN_K_OUT || k == QTN_K_INOUT; }
static bool goes_back(uint8_t k) { return k == QTN_K_OUT || k == QTN_K_INOUT; }

static int marshal_ptr(const qtn_param *params, const qtn_param *p, const qtn_val *args,
                       const char *elem, char *src, char **dst, qtn__alloc *a,
                       qtn__fixv *fx, int32_t parent, uint32_t pidx, size_t eidx);

/* Pointer fields of each element of a struct array that crossed. */
static int marshal_fields(const qtn_struct *st, char *mine, char *theirs, size_t count,
                          qtn__alloc *a, qtn__fixv *fx, int32_t parent) {
    for (size_t e = 0; e < count; e++) {
        char *me = mine + e * st->size, *te = theirs + e * st->size;
        for (uint32_t i = 0; i < st->nfields; i++) {
            const qtn_param *f = &st->fields[i];
            char *src, *dst = NULL;
            memcpy(&src, me + f->offset, sizeof src);
            if (f->kind == QTN_K_HANDLE || f->kind == QTN_K_SCALAR || !field_active(f, me))
                continue; /* crossed as bytes */
            int r = marshal_ptr(NULL, f, NULL, me, src, &dst, a, fx, parent, i, e);
            if (r)
                return r;
            memcpy(te + f->offset, &dst, sizeof dst);
        }
    }
    return 0;
}

static int marshal_ptr(const qtn_param *params, const qtn_param *p, const qtn_val *args,
                       const char *elem, char *src, char **dst, qtn__alloc *a,
                       qtn__fixv *fx, int32_t parent, uint32_t pidx, size_t eidx) {
    size_t count, bytes;
    if (!src) {
        *dst = NULL;
        return 0;
    }
    if (p->kind == QTN_K_STRING) {
        count = strlen(src) + 1;
        bytes = count;
    } else {
        int r = qtn__count(params, p, args, elem, &count);
        if (r)
            return r;
        if (p->elem_size && count > SIZE_MAX / p->elem_size)
            return QTN_ETOOBIG;
        bytes = count * p->elem_size;
    }
    char *sh = qtn__alloc_take(a, bytes);
    if (!sh)
        return QTN_ETOOBIG;
    if (p->kind == QTN_K_OUT)
        memset(sh, 0, bytes);
    else
        memcpy(sh, src, bytes);
    qtn__fix *f = fix_add(fx);
    if (!f)
        return QTN_ENOMEM;
    f->p = p;
    f->mine = src;
    f->theirs = sh;
    f->count = count;
    f->parent = parent;
    f->pidx = pidx;
    f->elem = eidx;
    *dst = sh;
    if (p->st && p->st->nfields && p->kind != QTN_K_OUT)
        return marshal_fields(p->st, src, sh, count, a, fx, (int32_t)(fx->n - 1));
    return 0;
}

int qtn__marshal(const qtn_param *params, unsigned n, const qtn_val *args, qtn_val *out,
                 qtn__alloc *a, qtn__fixv *fx) {
    for (unsigned i = 0; i < n; i++) {
        const qtn_param *p = &params[i];
        switch (p->kind) {
        case QTN_K_SCALAR:
        case QTN_K_HANDLE: out[i] = args[i]; break;
        case QTN_K_CALLBACK: out[i].u = args[i].u; break; /* its number (callbacks.c) */
        case QTN_K_ALLOCATED: {
            /* one cell for the callee's pointer, holding its own address:
             * still there after the call, the callee left *out alone */
            out[i].p = NULL;
            if (!args[i].p)
                break;
            if (p->actual > 0 && !args[p->actual - 1].p)
                return QTN_EINVAL; /* the count's place is NULL: nothing could say it */
            char *cell = qtn__alloc_take(a, sizeof(void *));
            if (!cell)
                return QTN_ETOOBIG;
            void *self = cell;
            memcpy(cell, &self, sizeof self);
            qtn__fix *f = fix_add(fx);
            if (!f)
                return QTN_ENOMEM;
            f->p = p;
            f->mine = args[i].p;
            f->theirs = cell;
            f->count = 1;
            f->parent = -1;
            f->pidx = i;
            out[i].p = cell;
            break;
        }
        default: {
            char *dst;
            int r = marshal_ptr(params, p, args, NULL, args[i].p, &dst, a, fx, -1, i, 0);
            if (r)
                return r;
            out[i].p = dst;
        }
        }
    }
    return 0;
}

static const qtn__fix *param_fix(const qtn__fixv *fx, uint32_t pidx) {
    for (uint32_t i = 0; i < fx->n; i++)
        if (fx->v[i].parent < 0 && fx->v[i].pidx == pidx)
            return &fx->v[i];
    return NULL;
}

/* Translates a pointer field the callee may have moved: it must stay within
 * (or one past) the buffer that crossed for it, or be NULL. */
static int translate_field(const qtn__fixv *fx, int32_t parent, size_t e, uint32_t fi,
                           char *v, char **out) {
    if (!v) {
        *out = NULL;
        return 0;
    }
    for (uint32_t i = 0; i < fx->n; i++) {
        const qtn__fix *c = &fx->v[i];
        if (c->parent != parent || c->elem != e || c->pidx != fi)
            continue;
        size_t span = c->count * (c->p->kind == QTN_K_STRING ? 1 : c->p->elem_size);
        if (v >= c->theirs && (size_t)(v - c->theirs) <= span) {
            *out = c->mine + (v - c->theirs);
            return 0;
        }
        return QTN_ECONTRACT;
    }
    return QTN_ECONTRACT; /* a pointer the caller never sent */
}

/* The count of a one-element integer out-parameter ai, as the caller will
 * see it (its value read once in pass 1); false if it has none or it is
 * negative. */
static bool stashed_count(const qtn_param *params, const qtn__fixv *fx, uint32_t ai,
                          size_t *count) {
    const qtn__fix *af = param_fix(fx, ai);
    if (!af)
        return false; /* the caller passed NULL for the length */
    uint8_t t = count_type(&params[ai]);
    return qtn__type_size(t) == af->p->elem_size && !read_count(&af->stash, t, count);
}

/* The count the callee side reads from argument ai (a pointer to the
 * integer); false if it is NULL or the count negative. */
static bool arg_count(const qtn_param *params, const qtn_val *args, uint32_t ai, size_t *count) {
    return args[ai].p && !read_count(args[ai].p, count_type(&params[ai]), count);
}

static void *alloc_with(const qtn_param *p, size_t bytes) {
    return p->alloc_fn ? p->alloc_fn(bytes) : malloc(bytes);
}

static void free_with(const qtn_param *p, void *mem) {
    if (p->free_fn)
        p->free_fn(mem);
    else
        free(mem);
}

/* The callee's allocated data at `where` (offset | bytes << 32, as
 * qtn__allocated_back left it), copied once into memory of p->alloc_fn's
 * with one zeroed element past it. `count` is the number of elements the
 * caller will be told (SIZE_MAX: a NUL-terminated string). Returns 0,
 * QTN_ECONTRACT (not where the callee may write, or not what it said),
 * QTN_ETOOBIG or QTN_ENOMEM. */
static int allocated_copy(const qtn_param *p, uint64_t where, size_t count, const char *win,
                          size_t lo, size_t hi, char **copy) {
    *copy = NULL;
    if (where == 0)
        return 0;
    if (where == QTN__ALLOC_TOOBIG)
        return QTN_ETOOBIG;
    if (!win)
        return QTN_ECONTRACT;
    size_t off = (size_t)(where & 0xffffffffu), bytes = (size_t)(where >> 32);
    if (off < lo || off > hi || bytes > hi - off)
        return QTN_ECONTRACT;
    size_t esz = p->elem_size ? p->elem_size : 1, room = bytes;
    if (count == SIZE_MAX) {
        if (!bytes || esz != 1)
            return QTN_ECONTRACT;
    } else {
        if (count > SIZE_MAX / esz || count * esz != bytes)
            return QTN_ECONTRACT; /* not the length the caller is told */
        room = bytes + esz;
    }
    char *c = alloc_with(p, room);
    if (!c)
        return QTN_ENOMEM;
    memcpy(c, win + off, bytes); /* read once */
    if (count == SIZE_MAX && c[bytes - 1] != 0) { /* the copy must end with the NUL */
        free_with(p, c);
        return QTN_ECONTRACT;
    }
    memset(c + bytes, 0, room - bytes);
    *copy = c;
    return 0;
}

/* What the callee allocated, as the caller will be told it: copied from the
 * window (QTN_K_ALLOCATED cells, a QTN_T_ALLOCATED result), or an error
 * after freeing the copies made. */
static int allocated_in(const qtn_param *params, qtn_val *ret, uint8_t rtype,
                        const qtn_param *retp, qtn__fixv *fx, const char *win, size_t lo,
                        size_t hi, char **rcopy) {
    int r = 0;
    *rcopy = NULL;
    for (uint32_t i = 0; i < fx->n && !r; i++) {
        qtn__fix *f = &fx->v[i];
        const qtn_param *p = f->p;
        if (p->kind != QTN_K_ALLOCATED)
            continue;
        if (!win)
            continue; /* a request to the host: its cells stay as they were */
        uint64_t where;
        memcpy(&where, f->theirs, sizeof where); /* read once */
        if (where == QTN__ALLOC_LEFT)
            continue;
        size_t count = SIZE_MAX;
        if (p->actual == QTN_ACTUAL_RET) {
            if (qtn__type_signed(rtype) && ret->i < 0)
                r = QTN_ECONTRACT; /* it said it allocated nothing */
            count = (size_t)ret->u;
        } else if (p->actual > 0) {
            if (!stashed_count(params, fx, (uint32_t)p->actual - 1, &count))
                r = QTN_ECONTRACT;
        }
        if (!r && !(r = allocated_copy(p, where, count, win, lo, hi, &f->copy)))
            f->store = true;
    }
    if (!r && retp && rtype == QTN_T_ALLOCATED && win) {
        size_t count = SIZE_MAX;
        if (ret->u && ret->u != QTN__ALLOC_TOOBIG && retp->actual > 0 &&
            !stashed_count(params, fx, (uint32_t)retp->actual - 1, &count))
            r = QTN_ECONTRACT; /* data, and no length the caller could be told */
        if (!r)
            r = allocated_copy(retp, ret->u, count, win, lo, hi, rcopy);
    }
    if (r) {
        for (uint32_t i = 0; i < fx->n; i++)
            if (fx->v[i].copy) {
                free_with(fx->v[i].p, fx->v[i].copy);
                fx->v[i].copy = NULL;
                fx->v[i].store = false;
            }
    }
    return r;
}

int qtn__unmarshal(const qtn_param *params, qtn_val ret, uint8_t rtype, qtn__fixv *fx) {
    return qtn__unmarshal_from(params, &ret, rtype, NULL, fx, NULL, 0, 0);
}

int qtn__unmarshal_from(const qtn_param *params, qtn_val *retv, uint8_t rtype,
                        const qtn_param *retp, qtn__fixv *fx, const char *win, size_t lo,
                        size_t hi) {
    qtn_val ret = *retv;
    /* pass 1: read everything the callee controls once, and check it */
    for (uint32_t i = 0; i < fx->n; i++) {
        qtn__fix *f = &fx->v[i];
        const qtn_param *p = f->p;
        f->back = goes_back(p->kind) ? f->count : 0;
        if (f->back && f->count == 1 && (p->elem_size == 4 || p->elem_size == 8) && !p->st) {
            f->stash = 0;
            memcpy(&f->stash, f->theirs, p->elem_size); /* little-endian widening */
        }
    }
    for (uint32_t i = 0; i < fx->n; i++) {
        qtn__fix *f = &fx->v[i];
        const qtn_param *p = f->p;
        if (!f->back || p->actual == QTN_ACTUAL_NONE || f->parent >= 0)
            continue;
        size_t actual;
        if (p->actual == QTN_ACTUAL_RET) {
            if (qtn__type_signed(rtype) && ret.i < 0)
                actual = 0; /* an error return copies nothing back */
            else
                actual = (size_t)ret.u;
        } else {
            if (!stashed_count(params, fx, (uint32_t)p->actual - 1, &actual))
                actual = 0; /* NULL or a negative length copies nothing back */
        }
        if (actual > f->count)
            return QTN_ECONTRACT;
        f->back = actual;
    }
    for (uint32_t i = 0; i < fx->n; i++) {
        qtn__fix *f = &fx->v[i];
        const qtn_param *p = f->p;
        if (!f->back || !p->st || !p->st->nfields)
            continue;
        size_t bytes = f->back * p->elem_size;
        f->tmp = malloc(bytes);
        if (!f->tmp)
            return QTN_ENOMEM;
        memcpy(f->tmp, f->theirs, bytes);
        for (size_t e = 0; e < f->back; e++) {
            char *te = f->tmp + e * p->st->size;
            for (uint32_t k = 0; k < p->st->nfields; k++) {
                const qtn_param *fd = &p->st->fields[k];
                if (fd->kind == QTN_K_HANDLE || fd->kind == QTN_K_SCALAR || !field_active(fd, te))
                    continue; /* as the callee's copy says: a pointer only if active */
                char *v, *nv;
                memcpy(&v, te + fd->offset, sizeof v);
                if (translate_field(fx, (int32_t)i, e, k, v, &nv))
                    return QTN_ECONTRACT;
                memcpy(te + fd->offset, &nv, sizeof nv);
            }
        }
    }
    char *rcopy, *ocopy = NULL;
    int r = 0;
    if (retp && rtype == QTN_T_OUT && win) { /* the data the result points to */
        size_t count = 0, osize;
        if (ret.u && ret.u != QTN__ALLOC_TOOBIG && retp->actual > 0 &&
            !stashed_count(params, fx, (uint32_t)retp->actual - 1, &count))
            return QTN_ECONTRACT; /* data, and no length the caller could be told */
        if ((r = qtn__out_in(retp, count, ret.u, win, lo, hi, &ocopy, &osize)))
            return r;
    }
    r = allocated_in(params, &ret, rtype, retp, fx, win, lo, hi, &rcopy);
    if (r) {
        free(ocopy);
        return r;
    }
    if (retp && rtype == QTN_T_ALLOCATED && win)
        retv->p = rcopy;
    if (retp && rtype == QTN_T_OUT && win)
        retv->p = ocopy; /* the caller side keeps it (per thread and entry) */
    /* pass 2: copy back */
    for (uint32_t i = 0; i < fx->n; i++) {
        qtn__fix *f = &fx->v[i];
        const qtn_param *p = f->p;
        if (f->store) { /* the caller owns it now */
            memcpy(f->mine, &f->copy, sizeof f->copy);
            f->copy = NULL;
            continue;
        }
        if (!f->back)
            continue;
        if (f->tmp)
            memcpy(f->mine, f->tmp, f->back * p->elem_size);
        else if (f->count == 1 && (p->elem_size == 4 || p->elem_size == 8) && !p->st)
            memcpy(f->mine, &f->stash, p->elem_size);
        else
            memcpy(f->mine, f->theirs, f->back * p->elem_size);
    }
    return 0;
}

/* ---- callee side (a domain): data the callee allocated --------------------- */

/* How many elements the callee allocated, as it says: false for none (a
 * negative count, or no place to read it from); SIZE_MAX for a string. */
static bool allocated_count(const qtn_param *params, const qtn_param *p, const qtn_val *args,
                            qtn_val ret, uint8_t rtype, size_t *count) {
    *count = SIZE_MAX;
    if (p->actual == QTN_ACTUAL_RET) {
        qtn_val v = qtn__as_type(ret, rtype);
        return val_count(v, rtype, count) == 0;
    }
    if (p->actual > 0)
        return arg_count(params, args, (uint32_t)p->actual - 1, count);
    return true;
}

/* Copies the callee's data at v into the window; its place as the caller
 * side reads it. */
static uint64_t allocated_out(const qtn_param *p, const char *v, size_t count, char *win,
                              size_t *at, size_t lim) {
    if (!v)
        return 0;
    size_t esz = p->elem_size ? p->elem_size : 1, bytes;
    size_t room = lim > *at ? lim - *at : 0;
    if (room > UINT32_MAX)
        room = UINT32_MAX;
    if (count == SIZE_MAX) {
        bytes = strnlen(v, room) + 1;
    } else {
        if (count > SIZE_MAX / esz)
            return QTN__ALLOC_TOOBIG;
        bytes = count * esz;
    }
    if (bytes > room || !*at)
        return QTN__ALLOC_TOOBIG;
    memcpy(win + *at, v, bytes);
    uint64_t where = (uint64_t)*at | (uint64_t)bytes << 32;
    *at += qtn__align_up(bytes);
    return where;
}

void qtn__allocated_back(const qtn_param *params, unsigned n, const qtn_val *args, qtn_val *ret,
                         uint8_t rtype, const qtn_param *retp, char *win, size_t *at, size_t lim) {
    for (unsigned i = 0; i < n; i++) {
        const qtn_param *p = &params[i];
        char *cell = args[i].p, *v;
        if (p->kind != QTN_K_ALLOCATED || !cell)
            continue;
        memcpy(&v, cell, sizeof v);
        size_t count;
        uint64_t where = QTN__ALLOC_LEFT;
        if (v != cell && allocated_count(params, p, args, *ret, rtype, &count)) {
            where = allocated_out(p, v, count, win, at, lim);
            if (v && p->free_fn)
                p->free_fn(v); /* the component's copy, with the component's free */
        }
        memcpy(cell, &where, sizeof where);
    }
    if (retp && rtype == QTN_T_ALLOCATED) {
        char *v = ret->p;
        size_t count;
        uint64_t where = 0;
        if (v && allocated_count(params, retp, args, *ret, rtype, &count))
            where = allocated_out(retp, v, count, win, at, lim);
        else if (v)
            where = QTN__ALLOC_TOOBIG; /* it says it made none: the call fails */
        if (v && retp->free_fn)
            retp->free_fn(v);
        ret->u = where;
    }
}

/* ---- data a result points to, which the callee keeps ------------------------ */

/* The elements of a pointer field f of the element at `elem`: its count as
 * the element says (SIZE_MAX on a bad one), bytes up to `room` for a
 * string. */
static size_t field_count(const qtn_param *f, const char *elem, const char *s, size_t room) {
    size_t n;
    if (f->kind == QTN_K_STRING) {
        const char *nul = memchr(s, 0, room);
        return nul ? (size_t)(nul - s) + 1 : SIZE_MAX;
    }
    if (qtn__count(NULL, f, NULL, elem, &n))
        return SIZE_MAX;
    return n;
}

static size_t field_esize(const qtn_param *f) { return f->kind == QTN_K_STRING ? 1 : f->elem_size; }

static bool copied_field(const qtn_param *f) {
    return f->kind == QTN_K_STRING || is_buffer(f->kind);
}

/* Domain side: the pointer fields of `count` elements of st at `mine` (in
 * the window already), each one's data copied after *at. */
static int out_fields(const qtn_struct *st, char *mine, size_t count, char *win, size_t *at,
                      size_t lim, int depth) {
    if (depth > 8)
        return QTN_ETOOBIG;
    for (size_t e = 0; e < count; e++) {
        char *me = mine + e * st->size;
        for (uint32_t i = 0; i < st->nfields; i++) {
            const qtn_param *f = &st->fields[i];
            char *src;
            memcpy(&src, me + f->offset, sizeof src);
            if (!copied_field(f) || !src || !field_active(f, me))
                continue;
            size_t room = lim - *at, esz = field_esize(f);
            size_t n = field_count(f, me, src, room);
            if (n == SIZE_MAX || (esz && n > room / esz))
                return QTN_ETOOBIG;
            char *dst = win + *at;
            memcpy(dst, src, n * esz);
            *at += qtn__align_up(n * esz);
            if (*at > lim)
                return QTN_ETOOBIG;
            memcpy(me + f->offset, &dst, sizeof dst);
            if (f->st && f->st->nfields) {
                int r = out_fields(f->st, dst, n, win, at, lim, depth + 1);
                if (r)
                    return r;
            }
        }
    }
    return 0;
}

uint64_t qtn__out_back(const qtn_param *retp, const qtn_param *params, const qtn_val *args,
                       const void *v, char *win, size_t *at, size_t lim) {
    if (!v)
        return 0;
    size_t count = (size_t)retp->len, start = *at;
    if (retp->actual > 0 && !arg_count(params, args, (uint32_t)retp->actual - 1, &count))
        return QTN__ALLOC_TOOBIG; /* data, and no count for it */
    size_t esz = retp->elem_size, room = lim > start ? lim - start : 0;
    if (!start || (esz && count > room / esz))
        return QTN__ALLOC_TOOBIG;
    memcpy(win + start, v, count * esz);
    *at = start + qtn__align_up(count * esz);
    if (*at > lim || (retp->st && retp->st->nfields &&
                      out_fields(retp->st, win + start, count, win, at, lim, 0)))
        return QTN__ALLOC_TOOBIG;
    size_t total = *at - start;
    if (total > UINT32_MAX)
        return QTN__ALLOC_TOOBIG;
    return (uint64_t)start | (uint64_t)total << 32;
}

/* Caller side: checks and translates the pointer fields of `count`
 * elements of st at `mine` (in the copy c of `size` bytes, which stood at
 * `w` in the window). Each field's data must start at or past *next (the
 * end of the data before it: no buffer is walked twice) and lie inside the
 * copy. */
static int in_fields(const qtn_struct *st, char *mine, size_t count, char *c, size_t size,
                     const char *w, size_t *next, int depth) {
    if (depth > 8)
        return QTN_ECONTRACT;
    for (size_t e = 0; e < count; e++) {
        char *me = mine + e * st->size;
        for (uint32_t i = 0; i < st->nfields; i++) {
            const qtn_param *f = &st->fields[i];
            const char *v;
            memcpy(&v, me + f->offset, sizeof v);
            if (!copied_field(f) || !v || !field_active(f, me))
                continue;
            if (v < w + *next || v > w + size || (size_t)(v - w) % QTN__ALIGN)
                return QTN_ECONTRACT; /* aligned as the domain lays them out: read as C */
            size_t off = (size_t)(v - w), esz = field_esize(f);
            size_t n = field_count(f, me, c + off, size - off);
            if (n == SIZE_MAX || (esz && n > (size - off) / esz))
                return QTN_ECONTRACT;
            *next = off + n * esz;
            char *nv = c + off;
            memcpy(me + f->offset, &nv, sizeof nv);
            if (f->st && f->st->nfields) {
                int r = in_fields(f->st, nv, n, c, size, w, next, depth + 1);
                if (r)
                    return r;
            }
        }
    }
    return 0;
}

int qtn__out_in(const qtn_param *retp, size_t count, uint64_t where, const char *win, size_t lo,
                size_t hi, char **copy, size_t *size) {
    *copy = NULL;
    *size = 0;
    if (where == 0)
        return 0;
    if (where == QTN__ALLOC_TOOBIG)
        return QTN_ETOOBIG;
    size_t off = (size_t)(where & 0xffffffffu), bytes = (size_t)(where >> 32);
    if (!win || off < lo || off > hi || bytes > hi - off || off % QTN__ALIGN)
        return QTN_ECONTRACT;
    if (retp->len_kind == QTN_LEN_CONST && retp->actual <= 0)
        count = (size_t)retp->len;
    size_t esz = retp->elem_size;
    if (esz && count > bytes / esz)
        return QTN_ECONTRACT; /* the elements themselves do not fit in it */
    char *c = malloc(bytes ? bytes : 1);
    if (!c)
        return QTN_ENOMEM;
    memcpy(c, win + off, bytes); /* read once: what follows reads the copy */
    size_t next = count * esz;
    if (retp->st && retp->st->nfields) {
        int r = in_fields(retp->st, c, count, c, bytes, win + off, &next, 0);
        if (r) {
            free(c);
            return r;
        }
    }
    *copy = c;
    *size = bytes;
    return 0;
}

/* ---- callee side (host running a callback or an upcall) ------------------ */

static int import_ptr(const qtn_param *params, const qtn_param *p, const qtn_val *args,
                      const char *elem, char *v, char **out, const char *lo, const char *hi,
                      qtn__fixv *fx, int32_t parent, uint32_t pidx, size_t eidx,
                      const qtn__hcheck *hc);

static bool handle_ok(const qtn__hcheck *hc, uint64_t v) { return !v || !hc || hc->ok(hc->ctx, v); }

static int import_fields(const qtn_struct *st, char *mine, size_t count, const char *lo,
                         const char *hi, qtn__fixv *fx, int32_t parent, const qtn__hcheck *hc) {
    for (size_t e = 0; e < count; e++) {
        char *me = mine + e * st->size;
        for (uint32_t i = 0; i < st->nfields; i++) {
            const qtn_param *f = &st->fields[i];
            char *v, *nv = NULL;
            memcpy(&v, me + f->offset, sizeof v); /* the private copy: read once */
            if (!field_active(f, me))
                continue; /* the union's bytes, as they are */
            if (f->kind == QTN_K_HANDLE) {
                if (!handle_ok(hc, (uint64_t)(uintptr_t)v))
                    return QTN_ESTALE;
                continue;
            }
            if (f->kind == QTN_K_SCALAR)
                continue;
            int r = import_ptr(NULL, f, NULL, me, v, &nv, lo, hi, fx, parent, i, e, hc);
            if (r)
                return r;
            memcpy(me + f->offset, &nv, sizeof nv);
        }
    }
    return 0;
}

static int import_ptr(const qtn_param *params, const qtn_param *p, const qtn_val *args,
                      const char *elem, char *v, char **out, const char *lo, const char *hi,
                      qtn__fixv *fx, int32_t parent, uint32_t pidx, size_t eidx,
                      const qtn__hcheck *hc) {
    size_t count, bytes;
    if (!v) {
        *out = NULL;
        return 0;
    }
    if (v < lo || v >= hi)
        return QTN_ECONTRACT;
    if (p->kind == QTN_K_STRING) {
        const char *nul = memchr(v, 0, (size_t)(hi - v));
        if (!nul)
            return QTN_ECONTRACT;
        count = bytes = (size_t)(nul - v) + 1;
    } else {
        if (qtn__count(params, p, args, elem, &count))
            return QTN_ECONTRACT;
        if (p->elem_size && count > SIZE_MAX / p->elem_size)
            return QTN_ECONTRACT;
        bytes = count * p->elem_size;
        if (bytes > (size_t)(hi - v))
            return QTN_ECONTRACT;
    }
    char *mine = malloc(bytes ? bytes : 1);
    if (!mine)
        return QTN_ENOMEM;
    if (p->kind == QTN_K_OUT)
        memset(mine, 0, bytes);
    else
        memcpy(mine, v, bytes);
    /* the domain may have moved the NUL found above since: what counts is
     * the copy, which must still end with it (read once, then checked) */
    if (p->kind == QTN_K_STRING && (!bytes || mine[bytes - 1] != 0)) {
        free(mine);
        return QTN_ECONTRACT;
    }
    qtn__fix *f = fix_add(fx);
    if (!f) {
        free(mine);
        return QTN_ENOMEM;
    }
    f->p = p;
    f->mine = mine;
    f->theirs = v;
    f->count = count;
    f->parent = parent;
    f->pidx = pidx;
    f->elem = eidx;
    *out = mine;
    if (p->st && p->st->nfields && p->kind != QTN_K_OUT)
        return import_fields(p->st, mine, count, lo, hi, fx, (int32_t)(fx->n - 1), hc);
    return 0;
}

int qtn__import(const qtn_param *params, unsigned n, qtn_val *args, const char *lo,
                const char *hi, qtn__fixv *fx) {
    return qtn__import_checked(params, n, args, lo, hi, fx, NULL);
}

int qtn__import_checked(const qtn_param *params, unsigned n, qtn_val *args, const char *lo,
                        const char *hi, qtn__fixv *fx, const qtn__hcheck *hc) {
    /* counts come from scalar arguments, so read them before any pointer */
    qtn_val orig[QTN_PARAMS_MAX];
    memcpy(orig, args, n * sizeof *args);
    for (unsigned i = 0; i < n; i++) {
        const qtn_param *p = &params[i];
        if (p->kind == QTN_K_SCALAR)
            continue;
        if (p->kind == QTN_K_HANDLE) {
            if (!handle_ok(hc, orig[i].u))
                return QTN_ESTALE; /* not one the host gave this domain (now) */
            continue;
        }
        if (p->kind == QTN_K_CALLBACK) {
            if (orig[i].p)
                return QTN_EINVAL; /* a domain's function cannot run here */
            continue;
        }
        if (p->kind == QTN_K_ALLOCATED)
            return QTN_EINVAL; /* not from a domain (yet): its fault value */
        char *mine;
        int r = import_ptr(params, p, orig, NULL, orig[i].p, &mine, lo, hi, fx, -1, i, 0, hc);
        if (r)
            return r;
        args[i].p = mine;
    }
    return 0;
}

void qtn__import_drop(qtn__fixv *fx) {
    for (uint32_t i = 0; i < fx->n; i++)
        free(fx->v[i].mine);
    qtn__fixv_free(fx);
}

void qtn__export(const qtn_param *params, qtn_val ret, uint8_t rtype, qtn__fixv *fx) {
    qtn__export_issuing(params, ret, rtype, fx, NULL, NULL);
}

void qtn__export_issuing(const qtn_param *params, qtn_val ret, uint8_t rtype, qtn__fixv *fx,
                         void (*issue)(void *ctx, uint64_t v), void *ctx) {
    (void)params; /* the host's own lengths need no type checks */
    for (uint32_t i = 0; i < fx->n; i++) {
        qtn__fix *f = &fx->v[i];
        const qtn_param *p = f->p;
        if (!goes_back(p->kind))
            continue;
        size_t back = f->count;
        if (f->parent < 0 && p->actual == QTN_ACTUAL_RET) {
            size_t a = qtn__type_signed(rtype) && ret.i < 0 ? 0 : (size_t)ret.u;
            back = a < back ? a : back;
        } else if (f->parent < 0 && p->actual > 0) {
            const qtn__fix *af = param_fix(fx, (uint32_t)p->actual - 1);
            size_t a = 0;
            if (af) {
                uint64_t v = 0;
                memcpy(&v, af->mine, af->p->elem_size <= 8 ? af->p->elem_size : 8);
                a = (size_t)v;
            }
            back = a < back ? a : back;
        }
        if (p->st && p->st->nfields) {
            /* pointer fields go back as the frame locations they came from */
            for (size_t e = 0; e < back; e++) {
                char *me = f->mine + e * p->st->size;
                for (uint32_t k = 0; k < p->st->nfields; k++) {
                    const qtn_param *fd = &p->st->fields[k];
                    char *v, *nv = NULL;
                    memcpy(&v, me + fd->offset, sizeof v);
                    if (!field_active(fd, me))
                        continue;
                    if (fd->kind == QTN_K_HANDLE) { /* the domain may send it back */
                        if (v && issue)
                            issue(ctx, (uint64_t)(uintptr_t)v);
                        continue;
                    }
                    if (fd->kind == QTN_K_SCALAR)
                        continue;
                    for (uint32_t j = 0; j < fx->n; j++) {
                        const qtn__fix *c = &fx->v[j];
                        if (c->parent != (int32_t)i || c->elem != e || c->pidx != k)
                            continue;
                        size_t span = c->count * (c->p->kind == QTN_K_STRING ? 1 : c->p->elem_size);
                        nv = v >= c->mine && (size_t)(v - c->mine) <= span
                                 ? c->theirs + (v - c->mine)
                                 : c->theirs;
                    }
                    memcpy(me + fd->offset, &nv, sizeof nv);
                }
            }
        }
        if (is_buffer(p->kind))
            memcpy(f->theirs, f->mine, back * p->elem_size);
    }
    qtn__import_drop(fx);
}
