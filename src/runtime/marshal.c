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
        a->top += (bytes + QTN__ALIGN - 1) & ~(size_t)(QTN__ALIGN - 1);
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
            if (f->kind == QTN_K_HANDLE || f->kind == QTN_K_SCALAR)
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
        case QTN_K_CALLBACK: out[i].u = args[i].p ? i + 1 : 0; break;
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

int qtn__unmarshal(const qtn_param *params, qtn_val ret, uint8_t rtype, qtn__fixv *fx) {
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
            uint32_t ai = (uint32_t)p->actual - 1;
            const qtn__fix *af = param_fix(fx, ai);
            if (!af) {
                actual = 0; /* the caller passed NULL for the length */
            } else {
                uint8_t t = params[ai].type;
                if (!t)
                    t = af->p->elem_size == 4 ? QTN_T_U32 : QTN_T_U64;
                if (qtn__type_size(t) != af->p->elem_size || read_count(&af->stash, t, &actual))
                    actual = 0; /* a negative length copies nothing back */
            }
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
                if (fd->kind == QTN_K_HANDLE || fd->kind == QTN_K_SCALAR)
                    continue;
                char *v, *nv;
                memcpy(&v, te + fd->offset, sizeof v);
                if (translate_field(fx, (int32_t)i, e, k, v, &nv))
                    return QTN_ECONTRACT;
                memcpy(te + fd->offset, &nv, sizeof nv);
            }
        }
    }
    /* pass 2: copy back */
    for (uint32_t i = 0; i < fx->n; i++) {
        qtn__fix *f = &fx->v[i];
        const qtn_param *p = f->p;
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
