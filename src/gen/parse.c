/* parse.c - from annotated headers to the model, with libclang.
 *
 * The headers are parsed as C with QTN_GEN defined, so the QTN_ macros of
 * quarantine.h become `annotate` attributes. A function is an entry when it
 * carries QTN_COMPONENT; everything else in the headers is left alone.
 * Explicit is safe: an entry's pointer parameter without annotation is an
 * error, not a guess. */
#include <clang-c/Index.h>
#include <seccomp.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ann.h"
#include "count.h"
#include "model.h"
#include "quarantine.h"

#define NAME_MAX_RT 63 /* the longest component or entry name qtn_register() takes */
#define SYNC_MAX (64u << 10) /* the largest global qtn_register() syncs */

typedef struct ctx {
    qg_model *m;
    FILE *err;
    int errors;
    char **known; /* macros, enum constants and variables: names a count may use */
    unsigned nknown, capknown;
    struct sidefield { /* QTN_FIELD(type, field, ...) of a sidecar */
        char *type, *field;
        CXCursor c;
    } *side;
    unsigned nside;
    qg_pending *pend; /* counts to check against the header, with libclang */
    unsigned npend;
    struct fnname { /* functions (and function pointers) the headers declare */
        char *name;
        bool frees, allocs; /* takes one pointer; takes a size, returns a pointer */
        bool data;          /* a variable, but of no function's type */
    } *fns;
    unsigned nfns;
    struct fnuse { /* a free_fn or alloc_fn QTN_ALLOCATED names, checked at the end */
        char *name, *what;
        bool alloc;
        qg_loc loc;
    } *uses;
    unsigned nuses;
} ctx;

static char *dup_cx(CXString s) {
    const char *c = clang_getCString(s);
    char *r = strdup(c ? c : "");
    clang_disposeString(s);
    return r;
}

static qg_loc loc_of(CXCursor c) {
    CXFile f;
    unsigned line, col;
    clang_getSpellingLocation(clang_getCursorLocation(c), &f, &line, &col, NULL);
    qg_loc l = {dup_cx(clang_getFileName(f)), line, col};
    return l;
}

static void error_at(ctx *x, qg_loc l, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void error_at(ctx *x, qg_loc l, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(x->err, "%s:%u:%u: error: ", l.file ? l.file : "?", l.line, l.col);
    vfprintf(x->err, fmt, ap);
    fputc('\n', x->err);
    va_end(ap);
    x->errors++;
}

static void warn_at(const qg_loc *l, FILE *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn_at(const qg_loc *l, FILE *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(err, "%s:%u:%u: warning: ", l->file ? l->file : "?", l->line, l->col);
    vfprintf(err, fmt, ap);
    fputc('\n', err);
    va_end(ap);
}

static void add_known(ctx *x, char *name) {
    if (x->nknown == x->capknown) {
        x->capknown = x->capknown ? x->capknown * 2 : 256;
        x->known = realloc(x->known, x->capknown * sizeof *x->known);
    }
    x->known[x->nknown++] = name;
}

static bool is_known(const ctx *x, const char *s, size_t n) {
    for (unsigned i = 0; i < x->nknown; i++)
        if (strlen(x->known[i]) == n && memcmp(x->known[i], s, n) == 0)
            return true;
    return false;
}

/* ---- types ---------------------------------------------------------------- */

/* QTN_T_* and the qtn_val member of a scalar type, 0 if it cannot cross by value. */
static int scalar_of(CXType t, qg_vslot *slot) {
    t = clang_getCanonicalType(t);
    if (t.kind == CXType_Enum)
        t = clang_getCanonicalType(clang_getEnumDeclIntegerType(clang_getTypeDeclaration(t)));
    *slot = QG_V_I;
    switch (t.kind) {
    case CXType_Char_S: case CXType_SChar: return QTN_T_I8;
    case CXType_Short: return QTN_T_I16;
    case CXType_Int: return QTN_T_I32;
    case CXType_Long: case CXType_LongLong: return QTN_T_I64;
    default: break;
    }
    *slot = QG_V_U;
    switch (t.kind) {
    case CXType_Bool: case CXType_Char_U: case CXType_UChar: return QTN_T_U8;
    case CXType_UShort: return QTN_T_U16;
    case CXType_UInt: return QTN_T_U32;
    case CXType_ULong: case CXType_ULongLong: return QTN_T_U64;
    default: break;
    }
    if (t.kind == CXType_Float) {
        *slot = QG_V_F;
        return QTN_T_F32;
    }
    if (t.kind == CXType_Double) {
        *slot = QG_V_D;
        return QTN_T_F64;
    }
    *slot = QG_V_NONE;
    return 0;
}

static bool is_pointer(CXType t) { return clang_getCanonicalType(t).kind == CXType_Pointer; }

/* s (malloc'd) without its leading qualifiers, in place: "const volatile T"
 * -> "T"; the canonical spelling of a type puts them first. */
static char *unqualified(char *s) {
    for (;;) {
        size_t k = !strncmp(s, "const ", 6) ? 6 : !strncmp(s, "volatile ", 9) ? 9 : 0;
        if (!k)
            return s;
        memmove(s, s + k, strlen(s + k) + 1);
    }
}

/* What pointer type t points to, comparable across declarations: a
 * struct's or enum's USR, else the canonical spelling without qualifiers;
 * NULL for void (a void * says nothing about what it is). */
static char *pointee_key(CXType t) {
    CXType pt = clang_getCanonicalType(clang_getPointeeType(clang_getCanonicalType(t)));
    if (pt.kind == CXType_Void)
        return NULL;
    if (pt.kind == CXType_Record || pt.kind == CXType_Enum) {
        char *usr = dup_cx(clang_getCursorUSR(clang_getTypeDeclaration(pt)));
        if (*usr)
            return usr;
        free(usr);
    }
    return unqualified(dup_cx(clang_getTypeSpelling(pt)));
}

/* True if a struct or union holds a pointer anywhere (its bytes alone do not
 * say what it refers to). */
static enum CXVisitorResult field_has_ptr(CXCursor c, CXClientData d) {
    bool *found = d;
    CXType t = clang_getCanonicalType(clang_getCursorType(c));
    while (t.kind == CXType_ConstantArray)
        t = clang_getCanonicalType(clang_getArrayElementType(t));
    if (t.kind == CXType_Pointer) {
        *found = true;
        return CXVisit_Break;
    }
    if (t.kind == CXType_Record && clang_Type_visitFields(t, field_has_ptr, d) && *found)
        return CXVisit_Break;
    return CXVisit_Continue;
}

static bool record_has_ptr(CXType t) {
    bool found = false;
    clang_Type_visitFields(clang_getCanonicalType(t), field_has_ptr, &found);
    return found;
}

/* ---- annotations ------------------------------------------------------------ */

typedef struct anns {
    char *items[16];
    qg_loc locs[16];
    unsigned n;
} anns;

static enum CXChildVisitResult collect_ann(CXCursor c, CXCursor parent, CXClientData d) {
    (void)parent;
    anns *a = d;
    if (clang_getCursorKind(c) == CXCursor_AnnotateAttr && a->n < 16) {
        char *s = dup_cx(clang_getCursorSpelling(c));
        if (strncmp(s, "qtn ", 4) == 0) {
            a->items[a->n] = s;
            a->locs[a->n] = loc_of(c);
            a->n++;
        } else {
            free(s);
        }
    }
    return CXChildVisit_Continue;
}

static void anns_free(anns *a) {
    for (unsigned i = 0; i < a->n; i++) {
        free(a->items[i]);
        free(a->locs[i].file);
    }
}

/* "qtn word rest": the word and the rest, trimmed. */
static const char *ann_word(const char *s, char *word, size_t len) {
    s += 4;
    size_t i = 0;
    while (*s && *s != ' ' && i + 1 < len)
        word[i++] = *s++;
    word[i] = 0;
    while (*s == ' ')
        s++;
    return s;
}

typedef struct namectx {
    const ctx *x;
    const qg_func *f;
} namectx;

static bool count_name_ok(void *d, const char *id, size_t n) {
    const namectx *nc = d;
    for (unsigned i = 0; i < nc->f->nparams; i++)
        if (strlen(nc->f->params[i].name) == n && memcmp(nc->f->params[i].name, id, n) == 0)
            return true;
    return is_known(nc->x, id, n);
}

/* Checks that a count expression is an expression, over the parameters (or
 * the macros, enumerators and variables of the headers). */
static bool check_count(ctx *x, const qg_func *f, const qg_param *p, const char *e) {
    namectx nc = {x, f};
    char msg[200];
    int rc = qg_count_check(e, count_name_ok, &nc, msg, sizeof msg);
    if (rc == -2) {
        error_at(x, p->loc, "the count '%s' of '%s' of %s() %s", e, p->name, f->name, msg);
        return false;
    }
    if (rc) {
        error_at(x, p->loc, "%s in the count of '%s' of %s(): a count is an expression over the "
                 "other parameters", msg, p->name, f->name);
        return false;
    }
    /* a number, or an integer parameter, is what it is; anything else is
     * evaluated by libclang against the header, as the stubs will be */
    bool plain = e[strspn(e, "0123456789")] == 0;
    for (unsigned i = 0; !plain && i < f->nparams; i++)
        plain = !strcmp(f->params[i].name, e) && f->params[i].kind == QTN_K_SCALAR &&
                f->params[i].slot != QG_V_F && f->params[i].slot != QG_V_D;
    if (plain)
        return true;
    x->pend = realloc(x->pend, (x->npend + 1) * sizeof *x->pend);
    qg_pending *q = &x->pend[x->npend++];
    q->func = strdup(f->name);
    q->param = strdup(p->name);
    q->count = strdup(e);
    q->loc = p->loc;
    q->loc.file = strdup(p->loc.file ? p->loc.file : "?");
    q->n = f->nparams;
    q->names = calloc(f->nparams ? f->nparams : 1, sizeof *q->names);
    q->types = calloc(f->nparams ? f->nparams : 1, sizeof *q->types);
    for (unsigned i = 0; i < f->nparams; i++) {
        q->names[i] = strdup(f->params[i].name);
        q->types[i] = strdup(f->params[i].type ? f->params[i].type : "int");
    }
    return true;
}

static int param_index(const qg_func *f, const char *name) {
    for (unsigned i = 0; i < f->nparams; i++)
        if (strcmp(f->params[i].name, name) == 0)
            return (int)i;
    return -1;
}

typedef struct fieldctx {
    ctx *x;
    const qg_func *f;
    qg_struct *st;
    CXType rec;         /* the record whose fields these are: st's, or one inside it */
    int depth;
    const char *prefix; /* where that record is in st's ("", "in.", "v[1].") */
    const char *rec_name; /* its type, for messages and sidecars */
    /* fields of a union member: they cross while when_field holds when_value */
    const char *when_field, *when_value;
    int when_type;
    bool in_union;      /* rec is the union itself: its pointers count with numbers */
} fieldctx;

static qg_struct *struct_of(ctx *x, const qg_func *f, const qg_param *p, CXType rec, int depth);

/* Reads the annotations of a field (as for a parameter). */
static void read_anns(ctx *x, qg_param *q, CXCursor c, const char *where);
static void free_one_param(qg_param *p);

typedef struct fieldlook {
    const char *name;
    CXType t;
    bool found;
} fieldlook;

static enum CXVisitorResult look_field(CXCursor c, CXClientData d) {
    fieldlook *l = d;
    CXString n = clang_getCursorSpelling(c);
    if (!strcmp(clang_getCString(n), l->name)) {
        l->t = clang_getCursorType(c);
        l->found = true;
    }
    clang_disposeString(n);
    return l->found ? CXVisit_Break : CXVisit_Continue;
}

/* The type of field `name` of record rec. */
static bool field_type(CXType rec, const char *name, CXType *t) {
    fieldlook l = {name, {0}, false};
    clang_Type_visitFields(rec, look_field, &l);
    *t = l.t;
    return l.found;
}

/* The type of field `path` of record rec, through the records inside it
 * ("u.text": member text of the union u), for a sidecar's QTN_FIELD. */
static bool field_path_type(CXType rec, const char *path, CXType *t) {
    char *p = strdup(path), *save = NULL;
    bool ok = true;
    for (char *tok = strtok_r(p, ".", &save); ok && tok; tok = strtok_r(NULL, ".", &save)) {
        ok = field_type(rec, tok, t);
        rec = clang_getCanonicalType(*t);
    }
    free(p);
    return ok;
}

static enum CXVisitorResult visit_field(CXCursor c, CXClientData d);

#define INNER_ELEMS_MAX 64 /* elements of an array of structs described one by one */

typedef struct members {
    CXCursor c[64];
    unsigned n;
} members;

static enum CXVisitorResult collect_member(CXCursor c, CXClientData d) {
    members *m = d;
    if (m->n < 64)
        m->c[m->n++] = c;
    return CXVisit_Continue;
}

static void trim_end(char *s) {
    for (size_t n = strlen(s); n && s[n - 1] == ' '; n--)
        s[n - 1] = 0;
}

/* True for an integer literal, or a name of the headers (an enumerator, a
 * macro): what a discriminant's value may be. */
static bool value_ok(const ctx *x, const char *v, size_t n) {
    size_t i = v[0] == '-' ? 1 : 0;
    if (i < n && isdigit((unsigned char)v[i])) {
        for (; i < n; i++)
            if (!isalnum((unsigned char)v[i]))
                return false;
        return true;
    }
    for (size_t k = 0; k < n; k++)
        if (!isalnum((unsigned char)v[k]) && v[k] != '_')
            return false;
    return n && is_known(x, v, n);
}

/* A union field holding pointers. With QTN_ACTIVE(field, VALUE: member,
 * ...) the pointers of each member named cross while the discriminant
 * field beside the union holds its value; a member holding pointers that
 * no value names, or a union without the annotation, is refused: which
 * member is active could not be told. */
static void union_fields(fieldctx *fc, CXCursor c, CXType u, const char *name, long long n,
                         const qg_loc *at) {
    ctx *x = fc->x;
    qg_param tmp = {.name = (char *)name, .loc = *at};
    read_anns(x, &tmp, c, fc->rec_name);
    for (unsigned i = 0; !tmp.active && i < x->nside; i++) /* from a sidecar */
        if (!strcmp(x->side[i].type, fc->rec_name) && !strcmp(x->side[i].field, name))
            read_anns(x, &tmp, x->side[i].c, fc->rec_name);
    char *act = tmp.active;
    tmp.active = NULL;
    tmp.name = NULL;
    tmp.loc.file = NULL;
    free_one_param(&tmp);
    if (!act) {
        error_at(x, *at, "field '%s%s' of %s is a union holding a pointer: which member is "
                 "active cannot be told, so its pointer cannot cross; say it with "
                 "QTN_ACTIVE(field, VALUE: member, ...), a field beside it naming the member, or "
                 "make the pointer a field of its own", fc->prefix, name, fc->rec_name);
        return;
    }
    if (n >= 0 || fc->when_field) {
        error_at(x, *at, "field '%s%s' of %s: QTN_ACTIVE describes one union, not an array of "
                 "them or one inside another's member", fc->prefix, name, fc->rec_name);
        free(act);
        return;
    }
    /* the discriminant: an integer field beside the union */
    const char *s = act;
    size_t dn = strcspn(s, ",");
    char *disc = strndup(s, dn);
    trim_end(disc);
    CXType dt;
    qg_vslot sl;
    int dtype = 0;
    if (!field_type(fc->rec, disc, &dt) || !(dtype = scalar_of(dt, &sl)) || dtype > QTN_T_U64) {
        error_at(x, *at, "QTN_ACTIVE of '%s%s' of %s: '%s' is no integer field of %s beside "
                 "the union", fc->prefix, name, fc->rec_name, disc, fc->rec_name);
        free(disc), free(act);
        return;
    }
    members m = {.n = 0};
    clang_Type_visitFields(u, collect_member, &m);
    bool named[64] = {false};
    size_t pl = strlen(fc->prefix) + strlen(name) + 2;
    char *pre = malloc(pl), *dfield = malloc(strlen(fc->prefix) + strlen(disc) + 1);
    snprintf(pre, pl, "%s%s.", fc->prefix, name);
    sprintf(dfield, "%s%s", fc->prefix, disc);
    char *urec = dup_cx(clang_getTypeSpelling(u));
    s += dn;
    while (*s == ',') { /* VALUE: member */
        s++;
        size_t k = strcspn(s, ",");
        char *item = strndup(s, k), *colon = strchr(item, ':');
        s += k;
        char *v = item + strspn(item, " "), *mem = NULL;
        if (colon) {
            *colon = 0;
            mem = colon + 1 + strspn(colon + 1, " ");
            trim_end(v);
            trim_end(mem);
        }
        unsigned mi = m.n;
        for (unsigned j = 0; mem && j < m.n; j++) {
            char *mn = dup_cx(clang_getCursorSpelling(m.c[j]));
            if (!strcmp(mn, mem))
                mi = j;
            free(mn);
        }
        if (!colon || !*v || !value_ok(x, v, strlen(v)))
            error_at(x, *at, "QTN_ACTIVE of '%s%s' of %s: '%s%s%s' is not VALUE: member (a "
                     "number or a name of the headers, then the member it selects)", fc->prefix,
                     name, fc->rec_name, v, colon ? ": " : "", mem ? mem : "");
        else if (mi == m.n)
            error_at(x, *at, "QTN_ACTIVE of '%s%s' of %s: the union has no member '%s'",
                     fc->prefix, name, fc->rec_name, mem);
        else {
            named[mi] = true;
            fieldctx in = *fc;
            in.rec = u;
            in.prefix = pre;
            in.rec_name = urec;
            in.when_field = dfield;
            in.when_value = v;
            in.when_type = dtype;
            in.in_union = true;
            visit_field(m.c[mi], &in);
        }
        free(item);
    }
    for (unsigned j = 0; j < m.n; j++) {
        CXType mt = clang_getCanonicalType(clang_getCursorType(m.c[j]));
        bool holds = mt.kind == CXType_Pointer || (mt.kind == CXType_Record && record_has_ptr(mt));
        if (named[j] || !holds)
            continue;
        char *mn = dup_cx(clang_getCursorSpelling(m.c[j]));
        error_at(x, *at, "QTN_ACTIVE of '%s%s' of %s: member '%s' holds a pointer, and no value "
                 "selects it: name the value that makes it active", fc->prefix, name,
                 fc->rec_name, mn);
        free(mn);
    }
    free(urec), free(pre), free(dfield), free(disc), free(act);
}

/* A field that is not a pointer but holds some. A struct by value, or a
 * fixed array of them, is described field by field as part of st (its
 * pointer fields at their offsets in st: "in.p", "v[1].p"), at any depth up
 * to the nesting limit. A union holding a pointer, or an array of pointers,
 * is refused: its bytes would cross and its pointers would mean nothing on
 * the other side, and nothing says which of them are valid. */
static void inner_fields(fieldctx *fc, CXCursor c, CXType t) {
    CXType e = t;
    long long n = -1; /* elements: -1, not an array */
    while (e.kind == CXType_ConstantArray || e.kind == CXType_IncompleteArray) {
        long long k = e.kind == CXType_ConstantArray ? clang_getArraySize(e) : 0;
        n = n < 0 ? k : n * k;
        e = clang_getCanonicalType(clang_getArrayElementType(e));
    }
    bool ptr = e.kind == CXType_Pointer;
    if (!ptr && !(e.kind == CXType_Record && record_has_ptr(e)))
        return; /* its bytes are all of it */
    char *name = dup_cx(clang_getCursorSpelling(c));
    qg_loc at = loc_of(c);
    const char *what = fc->rec_name;
    bool multi = t.kind == CXType_ConstantArray &&
                 clang_getCanonicalType(clang_getArrayElementType(t)).kind != CXType_Record;
    if (ptr)
        error_at(fc->x, at, "field '%s%s' of %s is an array of pointers, which cannot cross: "
                 "pass each one as a parameter of its own, or point to them with one "
                 "QTN_IN(count) field", fc->prefix, name, what);
    else if (clang_getCursorKind(clang_getTypeDeclaration(e)) == CXCursor_UnionDecl)
        union_fields(fc, c, e, name, n, &at);
    else if (fc->depth >= 4)
        error_at(fc->x, at, "field '%s%s' of %s: structs nest too deep", fc->prefix, name,
                 what);
    else if (n == 0 || n > INNER_ELEMS_MAX || multi)
        error_at(fc->x, at, "field '%s%s' of %s is an array of %lld structs holding pointers: "
                 "at most %d, in one dimension, can be described", fc->prefix, name, what, n,
                 INNER_ELEMS_MAX);
    else {
        char *rec = dup_cx(clang_getTypeSpelling(e));
        for (long long i = 0; i < (n < 0 ? 1 : n); i++) {
            size_t len = strlen(fc->prefix) + strlen(name) + 32;
            char *pre = malloc(len);
            if (n < 0)
                snprintf(pre, len, "%s%s.", fc->prefix, name);
            else
                snprintf(pre, len, "%s%s[%lld].", fc->prefix, name, i);
            fieldctx in = *fc;
            in.rec = e;
            in.depth = fc->depth + 1;
            in.prefix = pre;
            in.rec_name = rec;
            in.in_union = false; /* a struct: its pointers count with its fields */
            clang_Type_visitFields(e, visit_field, &in);
            free(pre);
        }
        free(rec);
    }
    free(at.file);
    free(name);
}

static enum CXVisitorResult visit_field(CXCursor c, CXClientData d) {
    fieldctx *fc = d;
    CXType t = clang_getCanonicalType(clang_getCursorType(c));
    if (t.kind != CXType_Pointer) {
        inner_fields(fc, c, t);
        return CXVisit_Continue; /* crosses with the struct's bytes */
    }
    qg_struct *st = fc->st;
    st->fields = realloc(st->fields, (st->nfields + 1) * sizeof *st->fields);
    qg_param *q = &st->fields[st->nfields++];
    memset(q, 0, sizeof *q);
    char *bare = dup_cx(clang_getCursorSpelling(c));
    size_t nl = strlen(fc->prefix) + strlen(bare) + 1;
    q->name = malloc(nl);
    snprintf(q->name, nl, "%s%s", fc->prefix, bare);
    q->type = dup_cx(clang_getTypeSpelling(clang_getCursorType(c)));
    q->pointee = dup_cx(clang_getTypeSpelling(clang_getPointeeType(clang_getCursorType(c))));
    q->loc = loc_of(c);
    q->slot = QG_V_P;
    if (fc->when_field) {
        q->when_field = strdup(fc->when_field);
        q->when_value = strdup(fc->when_value);
        q->when_type = fc->when_type;
    }
    read_anns(fc->x, q, c, fc->rec_name);
    for (unsigned i = 0; !q->kind && i < fc->x->nside; i++) /* from a sidecar: by its */
        if ((!strcmp(fc->x->side[i].type, fc->rec_name) &&   /* name in its record, or */
             !strcmp(fc->x->side[i].field, bare)) ||           /* its place in the outer */
            (!strcmp(fc->x->side[i].type, fc->st->type) && !strcmp(fc->x->side[i].field, q->name)))
            read_anns(fc->x, q, fc->x->side[i].c, fc->rec_name);
    free(bare);
    ctx *x = fc->x;
    CXType pt = clang_getCanonicalType(clang_getPointeeType(t));
    bool fn = pt.kind == CXType_FunctionProto || pt.kind == CXType_FunctionNoProto;
    if (fn && q->kind != QTN_K_HANDLE) {
        /* a handler table or I/O hooks: a field's signature is not
         * described, so the pointer cannot cross as a callback */
        error_at(x, q->loc, "field '%s' of %s is a function pointer: callbacks in a struct (a "
                 "handler table, I/O hooks) cannot cross; leave it NULL and mark it QTN_HANDLE "
                 "(passed through untouched), or pass the function as a QTN_CALLBACK parameter "
                 "(one the library keeps runs when it calls it later)", q->name, st->type);
        return CXVisit_Continue;
    }
    if (!q->kind) {
        error_at(x, q->loc, "field '%s' of %s is a pointer: say what crosses with QTN_IN(count), "
                 "QTN_INOUT(count), QTN_STRING or QTN_HANDLE", q->name, st->type);
        return CXVisit_Continue;
    }
    if (q->kind == QTN_K_ALLOCATED) {
        error_at(x, q->loc, "field '%s' of %s: QTN_ALLOCATED is for parameters (T **) and "
                 "functions", q->name, st->type);
        return CXVisit_Continue;
    }
    if (q->actual)
        error_at(x, q->loc, "field '%s' of %s: QTN_ACTUAL is for parameters", q->name, st->type);
    if (q->kind == QTN_K_HANDLE || q->kind == QTN_K_STRING)
        return CXVisit_Continue;
    if (pt.kind == CXType_Void && !q->bytes)
        error_at(x, q->loc, "field '%s' of %s points to void: give a byte count with the _BYTES "
                 "form", q->name, st->type);
    else if (pt.kind == CXType_Pointer)
        error_at(x, q->loc, "field '%s' of %s points to pointers: make it QTN_HANDLE", q->name,
                 st->type);
    else if (pt.kind == CXType_Record && record_has_ptr(pt)) {
        if (fc->depth >= 4)
            error_at(x, q->loc, "field '%s' of %s: structs nest too deep", q->name, st->type);
        else
            q->st = struct_of(x, fc->f, q, pt, fc->depth + 1);
    }
    /* a field's count is a sibling integer field or a number */
    if (q->count && fc->in_union && q->count[strspn(q->count, "0123456789")]) {
        error_at(x, q->loc, "member '%s' of the union in %s counts with '%s': a pointer member "
                 "of a union counts with a number; for a count in a field, make the member a "
                 "struct holding the pointer and its count", q->name, st->type, q->count);
    } else if (q->count) {
        const char *e = q->count + strspn(q->count, "0123456789"); /* digits only: no sign */
        CXType ct;
        if ((*e || e == q->count) &&
            !(field_type(fc->rec, q->count, &ct) &&
              (q->count_scalar = scalar_of(ct, &(qg_vslot){0})) && q->count_scalar <= QTN_T_U64))
            error_at(x, q->loc, "the count of field '%s' of %s must be an integer field of %s "
                     "or a number, not '%s'", q->name, st->type, fc->rec_name, q->count);
        else if (*e && *fc->prefix) { /* a field beside it in the inner struct */
            size_t cl = strlen(fc->prefix) + strlen(q->count) + 1;
            char *full = malloc(cl);
            snprintf(full, cl, "%s%s", fc->prefix, q->count);
            free(q->count);
            q->count = full;
        }
    }
    return CXVisit_Continue;
}

/* The model of a struct with pointer fields (one per type). */
static qg_struct *struct_of(ctx *x, const qg_func *f, const qg_param *p, CXType rec, int depth) {
    (void)p;
    CXType canon = clang_getCanonicalType(rec);
    /* one descriptor per struct, however qualified where it is used */
    char *type = unqualified(dup_cx(clang_getTypeSpelling(canon)));
    for (qg_struct *s = x->m->structs; s; s = s->next)
        if (!strcmp(s->type, type)) {
            free(type);
            return s;
        }
    qg_struct *st = calloc(1, sizeof *st);
    st->type = type;
    size_t n = strlen(type);
    st->cname = malloc(n + 1);
    for (size_t i = 0; i <= n; i++)
        st->cname[i] = isalnum((unsigned char)type[i]) ? type[i] : (type[i] ? '_' : 0);
    fieldctx fc = {x, f, st, canon, depth, "", st->type, NULL, NULL, 0, false};
    clang_Type_visitFields(canon, visit_field, &fc);
    /* after the structs its fields point to: emitted in list order */
    qg_struct **tail = &x->m->structs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = st;
    return st;
}

/* Reads one parameter's annotations into p and checks them against its
 * type. */
static void read_anns(ctx *x, qg_param *p, CXCursor c, const char *where) {
    anns a = {.n = 0};
    clang_visitChildren(c, collect_ann, &a);
    for (unsigned i = 0; i < a.n; i++) {
        char msg[200];
        if (qg_ann_apply(a.items[i], p, msg, sizeof msg))
            error_at(x, p->loc, "'%s' of %s: %s", p->name, where, msg);
    }
    anns_free(&a);
}

static void parse_param(ctx *x, qg_func *f, qg_param *p, CXCursor c);
static void check_func(ctx *x, qg_func *f);
static void count_target_check(ctx *x, qg_loc at_loc, const qg_param *a, const char *ann,
                               const char *of);

typedef struct parms {
    CXCursor c[QTN_PARAMS_MAX + 1];
    unsigned n;
} parms;

static enum CXChildVisitResult collect_parms(CXCursor c, CXCursor parent, CXClientData d) {
    (void)parent;
    parms *pl = d;
    if (clang_getCursorKind(c) == CXCursor_ParmDecl && pl->n < QTN_PARAMS_MAX + 1)
        pl->c[pl->n++] = c;
    return CXChildVisit_Continue;
}

/* The signature of callback parameter p: its parameters are declared in
 * p's declarator, or in the typedef that names its type. */
static qg_sig *sig_of(ctx *x, qg_func *f, qg_param *p, CXCursor c, CXType fn) {
    qg_sig *sg = calloc(1, sizeof *sg);
    if (fn.kind == CXType_FunctionNoProto || clang_isFunctionTypeVariadic(fn)) {
        /* its arguments past the named ones would be cut off, never passed */
        error_at(x, p->loc, "callback '%s' of %s() is %s: the arguments it is called with "
                 "cannot be described; take a callback with fixed parameters",
                 p->name, f->name, fn.kind == CXType_FunctionNoProto
                                       ? "declared without a prototype"
                                       : "variadic");
        return sg;
    }
    int na = clang_getNumArgTypes(fn);
    parms pl = {.n = 0};
    clang_visitChildren(c, collect_parms, &pl);
    if (pl.n == 0 && na > 0) {
        CXType t = clang_getCursorType(c);
        while (t.kind == CXType_Typedef || t.kind == CXType_Elaborated) {
            CXCursor td = clang_getTypeDeclaration(t);
            clang_visitChildren(td, collect_parms, &pl);
            if (pl.n)
                break;
            t = clang_getTypedefDeclUnderlyingType(td);
        }
    }
    if (na < 0 || (unsigned)na != pl.n || pl.n > QTN_PARAMS_MAX) {
        error_at(x, p->loc, "callback '%s' of %s(): its parameters must be declared with names",
                 p->name, f->name);
        return sg;
    }
    CXType rt = clang_getResultType(fn);
    qg_vslot rs;
    if (clang_getCanonicalType(rt).kind != CXType_Void && !(sg->ret = scalar_of(rt, &rs)))
        error_at(x, p->loc, "callback '%s' of %s() returns a type that cannot cross", p->name,
                 f->name);
    /* its parameters are checked as an entry's, among themselves */
    char where[160];
    snprintf(where, sizeof where, "%s() callback %s", f->name, p->name);
    qg_func cb = {.name = where, .nparams = pl.n, .ret = sg->ret};
    cb.params = calloc(pl.n ? pl.n : 1, sizeof *cb.params);
    for (unsigned i = 0; i < pl.n; i++) {
        qg_param *q = &cb.params[i];
        q->name = dup_cx(clang_getCursorSpelling(pl.c[i]));
        q->type = dup_cx(clang_getTypeSpelling(clang_getCursorType(pl.c[i])));
        q->loc = loc_of(pl.c[i]);
        if (!*q->name)
            error_at(x, q->loc, "parameter %u of callback '%s' has no name", i + 1, p->name);
    }
    for (unsigned i = 0; i < pl.n; i++) {
        parse_param(x, &cb, &cb.params[i], pl.c[i]);
        if (cb.params[i].kind == QTN_K_CALLBACK)
            error_at(x, cb.params[i].loc, "a callback's parameter cannot be a callback");
        if (cb.params[i].st)
            error_at(x, cb.params[i].loc, "a callback's parameters cannot be structs with "
                     "pointers");
        if (cb.params[i].owned)
            error_at(x, cb.params[i].loc, "a callback's handles are passed through: use "
                     "QTN_HANDLE");
        if (cb.params[i].kind == QTN_K_ALLOCATED)
            error_at(x, cb.params[i].loc, "a callback's parameters cannot be QTN_ALLOCATED: "
                     "the caller's code allocates nothing the callee could free");
    }
    check_func(x, &cb);
    sg->params = cb.params;
    sg->nparams = pl.n;
    return sg;
}

/* The descriptor of an array of pointers (QTN_IN(n) QTN_EACH(what) on a
 * `T **`): a "struct" of one pointer field at offset 0, each element a
 * string or `what` elements of T (with T's own pointer fields). `ptr` is
 * the type of the array's elements (T *). */
static qg_struct *ptr_array_of(ctx *x, const qg_func *f, qg_param *p, CXType ptr) {
    CXType e = clang_getPointeeType(clang_getCanonicalType(ptr));
    CXType ec = clang_getCanonicalType(e);
    bool chr = ec.kind == CXType_Char_S || ec.kind == CXType_Char_U || ec.kind == CXType_SChar ||
               ec.kind == CXType_UChar;
    bool str = !strcmp(p->each, "string");
    if (str && !chr) {
        error_at(x, p->loc, "'%s' of %s() is QTN_EACH(string) but its pointers are not to "
                 "char", p->name, f->name);
        return NULL;
    }
    if (!str && (ec.kind == CXType_Void || ec.kind == CXType_Pointer ||
                 ec.kind == CXType_FunctionProto || clang_Type_getSizeOf(ec) <= 0)) {
        error_at(x, p->loc, "'%s' of %s() is QTN_EACH(%s) of elements whose size is unknown or "
                 "that are pointers themselves: each must point to plain data or a struct",
                 p->name, f->name, p->each);
        return NULL;
    }
    if (ec.kind == CXType_Record && clang_getCursorKind(clang_getTypeDeclaration(ec)) ==
                                        CXCursor_UnionDecl && record_has_ptr(ec)) {
        error_at(x, p->loc, "'%s' of %s() points to unions holding pointers: which member is "
                 "active cannot be told", p->name, f->name);
        return NULL;
    }
    /* one descriptor per pointer type and what each points to */
    char *ts = dup_cx(clang_getTypeSpelling(ptr));
    size_t n = strlen(ts) + strlen(p->each) + 16;
    char *cname = malloc(n);
    snprintf(cname, n, "%s_each_%s", ts, p->each);
    for (size_t i = 0; cname[i]; i++)
        if (!isalnum((unsigned char)cname[i]))
            cname[i] = '_';
    for (qg_struct *s = x->m->structs; s; s = s->next)
        if (!strcmp(s->cname, cname)) {
            free(ts), free(cname);
            return s;
        }
    qg_struct *st = calloc(1, sizeof *st);
    st->type = ts;
    st->cname = cname;
    st->ptr_array = true;
    st->fields = calloc(1, sizeof *st->fields);
    st->nfields = 1;
    qg_param *q = &st->fields[0];
    q->name = strdup("[i]");
    q->type = dup_cx(clang_getTypeSpelling(ptr));
    q->pointee = dup_cx(clang_getTypeSpelling(clang_getPointeeType(ptr)));
    if (!*q->pointee) {
        free(q->pointee);
        q->pointee = dup_cx(clang_getTypeSpelling(e));
    }
    q->loc = p->loc;
    q->loc.file = strdup(p->loc.file ? p->loc.file : "?");
    q->slot = QG_V_P;
    q->kind = str ? QTN_K_STRING : QTN_K_IN;
    if (!str) {
        q->count = strdup(p->each);
        if (ec.kind == CXType_Record && record_has_ptr(ec))
            q->st = struct_of(x, f, q, ec, 1);
    }
    qg_struct **tail = &x->m->structs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = st;
    return st;
}

/* A free_fn or alloc_fn of QTN_ALLOCATED, checked once every declaration
 * of the header is known (check_uses). */
static void use_fn(ctx *x, const char *name, bool alloc, const qg_loc *at, const char *fmt,
                   const char *a, const char *b) {
    x->uses = realloc(x->uses, (x->nuses + 1) * sizeof *x->uses);
    struct fnuse *u = &x->uses[x->nuses++];
    size_t n = strlen(fmt) + strlen(a) + strlen(b) + 1;
    u->what = malloc(n);
    snprintf(u->what, n, fmt, a, b);
    u->name = strdup(name);
    u->alloc = alloc;
    u->loc = *at;
    u->loc.file = strdup(at->file ? at->file : "?");
}

/* What QTN_ALLOCATED says the callee allocates, `elem` (T of a T ** parameter,
 * of a T * result): data of its own that can be copied, whose size the
 * stubs know. `what` names the parameter or result for messages. */
static void allocated_check(ctx *x, const qg_func *f, qg_param *p, CXType elem, const char *what) {
    CXType ec = clang_getCanonicalType(elem);
    p->elem = dup_cx(clang_getTypeSpelling(elem));
    if (!*p->elem) {
        free(p->elem);
        p->elem = dup_cx(clang_getTypeSpelling(ec));
    }
    bool chr = ec.kind == CXType_Char_S || ec.kind == CXType_Char_U || ec.kind == CXType_SChar ||
               ec.kind == CXType_UChar;
    if (ec.kind == CXType_Void)
        error_at(x, p->loc, "%s of %s() is QTN_ALLOCATED data of type void: its elements have "
                 "no size; declare it as what it is (char, uint8_t, a struct)", what, f->name);
    else if (ec.kind == CXType_Pointer || ec.kind == CXType_FunctionProto ||
             ec.kind == CXType_FunctionNoProto)
        error_at(x, p->loc, "%s of %s() is QTN_ALLOCATED data of pointers, which mean nothing "
                 "in another address space: return a handle instead (QTN_OWNED)", what, f->name);
    else if (ec.kind == CXType_Record && record_has_ptr(ec))
        error_at(x, p->loc, "%s of %s() is QTN_ALLOCATED data holding pointers, which cannot "
                 "come back: only plain data can be copied (a struct of such pointers is a "
                 "handle: QTN_OWNED)", what, f->name);
    else if (clang_Type_getSizeOf(ec) <= 0)
        error_at(x, p->loc, "%s of %s() is QTN_ALLOCATED data of an incomplete type '%s', whose "
                 "size is unknown: a pointer the caller cannot look into is a handle "
                 "(QTN_OWNED)", what, f->name, p->elem);
    else if (p->alloc_string && !chr)
        error_at(x, p->loc, "%s of %s() is QTN_ALLOCATED(string, ...) but its data is not "
                 "char: give its count (*param or return)", what, f->name);
    use_fn(x, p->free_fn, false, &p->loc, "the free function of %s of %s()", what, f->name);
    if (p->alloc_fn)
        use_fn(x, p->alloc_fn, true, &p->loc, "the allocator of %s of %s()", what, f->name);
}

/* The count of QTN_OUT(count) on a function: a number, or *param. */
static int out_count(qg_param *p, const char *s) {
    p->kind = QTN_K_OUT;
    free(p->count), free(p->actual);
    p->count = p->actual = NULL;
    if (*s && s[strspn(s, "0123456789")] == 0) {
        p->count = strdup(s);
        return 0;
    }
    if (*s != '*')
        return -1;
    s += 1 + strspn(s + 1, " ");
    bool ident = *s && !isdigit((unsigned char)*s);
    for (const char *c = s; *c; c++)
        ident &= isalnum((unsigned char)*c) || *c == '_';
    if (!ident)
        return -1;
    p->actual = strdup(s);
    return 0;
}

/* The pointer fields of returned data (st, and the structs inside it): each
 * copied back (QTN_IN, QTN_OUT, QTN_INOUT, QTN_STRING); a handle in it is
 * refused, as the caller could pass it on while its incarnation goes
 * unchecked. */
static void out_fields_check(ctx *x, const qg_func *f, const qg_struct *st, int depth) {
    for (unsigned i = 0; st && depth < 8 && i < st->nfields; i++) {
        const qg_param *q = &st->fields[i];
        if (q->kind == QTN_K_HANDLE)
            error_at(x, q->loc, "field '%s' of %s is a handle, in data %s() returns: it would "
                     "come back unchecked (its incarnation unknown); return it from an entry of "
                     "its own (QTN_OWNED), or describe what it points to", q->name, st->type,
                     f->name);
        out_fields_check(x, f, q->st, depth + 1);
    }
}

/* T of the `T *` a QTN_OUT function returns: data the caller reads, copied
 * back, with its annotated pointer fields. */
static void out_result_check(ctx *x, const qg_func *f, qg_param *p, CXType elem) {
    CXType ec = clang_getCanonicalType(elem);
    p->elem = dup_cx(clang_getTypeSpelling(elem));
    if (!*p->elem) {
        free(p->elem);
        p->elem = dup_cx(clang_getTypeSpelling(ec));
    }
    if (ec.kind == CXType_Void)
        error_at(x, p->loc, "the result of %s() is QTN_OUT data of type void: declare it as "
                 "what it is (a struct, uint8_t)", f->name);
    else if (ec.kind == CXType_Pointer || ec.kind == CXType_FunctionProto ||
             ec.kind == CXType_FunctionNoProto)
        error_at(x, p->loc, "the result of %s() is QTN_OUT data of pointers, which mean nothing "
                 "in another address space", f->name);
    else if (clang_Type_getSizeOf(ec) <= 0)
        error_at(x, p->loc, "the result of %s() is QTN_OUT data of an incomplete type '%s', "
                 "whose size is unknown: a pointer the caller cannot look into is a handle "
                 "(QTN_OWNED)", f->name, p->elem);
    else if (ec.kind == CXType_Record && record_has_ptr(ec)) {
        if (clang_getCursorKind(clang_getTypeDeclaration(ec)) == CXCursor_UnionDecl)
            error_at(x, p->loc, "the result of %s() points to a union holding pointers: which "
                     "member is active cannot be told", f->name);
        else { /* the struct itself, not `const struct ...`: one descriptor for both */
            p->st = struct_of(x, f, p, clang_getCursorType(clang_getTypeDeclaration(ec)), 0);
            out_fields_check(x, f, p->st, 0);
        }
    }
}

/* Every free_fn and alloc_fn named is a function (or a pointer to one, or
 * a macro) of the headers, of the right shape: a free function takes one
 * pointer, an allocator a size and returns a pointer. */
static void check_uses(ctx *x) {
    for (unsigned i = 0; i < x->nuses; i++) {
        const struct fnuse *u = &x->uses[i];
        const struct fnname *fn = NULL;
        for (unsigned k = 0; k < x->nfns && !fn; k++)
            if (!strcmp(x->fns[k].name, u->name))
                fn = &x->fns[k];
        if (!fn && is_known(x, u->name, strlen(u->name)))
            continue; /* a macro: the stubs' compiler checks it */
        if (!fn)
            error_at(x, u->loc, "%s: '%s' is no function these headers declare: name one "
                     "they declare (free needs <stdlib.h>)", u->what, u->name);
        else if (fn->data)
            error_at(x, u->loc, "%s: '%s' is a variable of no function's type: name a "
                     "function, or a pointer to one", u->what, u->name);
        else if (u->alloc && !fn->allocs)
            error_at(x, u->loc, "%s: '%s' does not take a size and return a pointer, as an "
                     "allocator does (malloc)", u->what, u->name);
        else if (!u->alloc && !fn->frees)
            error_at(x, u->loc, "%s: '%s' does not take one pointer, as a free function does "
                     "(free)", u->what, u->name);
    }
    for (unsigned i = 0; i < x->nuses; i++)
        free(x->uses[i].name), free(x->uses[i].what), free(x->uses[i].loc.file);
    free(x->uses);
    x->uses = NULL;
    x->nuses = 0;
}

/* Notes a function the headers declare (or a variable pointing to one, as
 * libxml2's xmlFree), with what shape it has. */
static void note_fn(ctx *x, CXCursor c) {
    CXType t = clang_getCanonicalType(clang_getCursorType(c));
    if (t.kind == CXType_Pointer)
        t = clang_getCanonicalType(clang_getPointeeType(t));
    bool data = t.kind != CXType_FunctionProto;
    if (data && clang_getCursorKind(c) != CXCursor_VarDecl)
        return;
    x->fns = realloc(x->fns, (x->nfns + 1) * sizeof *x->fns);
    struct fnname *fn = &x->fns[x->nfns++];
    fn->name = dup_cx(clang_getCursorSpelling(c));
    fn->data = data;
    if (data) { /* named only to be refused */
        fn->frees = fn->allocs = false;
        return;
    }
    bool one = clang_getNumArgTypes(t) == 1 && !clang_isFunctionTypeVariadic(t);
    CXType a = one ? clang_getCanonicalType(clang_getArgType(t, 0)) : t;
    qg_vslot sl;
    fn->frees = one && a.kind == CXType_Pointer;
    fn->allocs = one && scalar_of(a, &sl) >= QTN_T_I8 && scalar_of(a, &sl) <= QTN_T_U64 &&
                 clang_getCanonicalType(clang_getResultType(t)).kind == CXType_Pointer;
}

static void parse_param(ctx *x, qg_func *f, qg_param *p, CXCursor c) {
    CXType t = clang_getCursorType(c);
    CXType canon = clang_getCanonicalType(t);
    p->scalar = scalar_of(t, &p->slot);
    read_anns(x, p, c, f->name);
    if (!is_pointer(t)) {
        if (p->kind && p->kind != QTN_K_HANDLE)
            error_at(x, p->loc, "'%s' of %s() is not a pointer, so it crosses by value: drop "
                     "its annotation", p->name, f->name);
        if (p->kind == QTN_K_HANDLE)
            error_at(x, p->loc, "'%s' of %s() is not a pointer: it cannot be a handle",
                     p->name, f->name);
        if (!p->scalar) {
            char *ts = dup_cx(clang_getTypeSpelling(t));
            error_at(x, p->loc, "'%s' of %s() has type '%s', which cannot cross by value "
                     "(pass a pointer with an annotation)", p->name, f->name, ts);
            free(ts);
        }
        p->kind = QTN_K_SCALAR;
        return;
    }
    p->slot = QG_V_P;
    CXType pt = clang_getPointeeType(canon);
    CXType ptc = clang_getCanonicalType(pt);
    p->pointee = dup_cx(clang_getTypeSpelling(clang_getPointeeType(t)));
    if (!*p->pointee) { /* a typedef of a pointer type (z_streamp) */
        free(p->pointee);
        p->pointee = dup_cx(clang_getTypeSpelling(pt));
    }
    qg_vslot ps;
    p->pointee_scalar = scalar_of(pt, &ps);
    if (ptc.kind == CXType_FunctionProto || ptc.kind == CXType_FunctionNoProto) {
        if (p->kind != QTN_K_CALLBACK)
            error_at(x, p->loc, "'%s' of %s() is a function pointer: mark it QTN_CALLBACK (it "
                     "runs back in the caller's domain) or QTN_HANDLE", p->name, f->name);
        else
            p->sig = sig_of(x, f, p, c, ptc);
        /* "int (*)(int) fn" declares nothing: the stubs say __typeof__(T) fn */
        size_t n = strlen(p->type) + 16;
        char *w = malloc(n);
        snprintf(w, n, "__typeof__(%s)", p->type);
        free(p->type);
        p->type = w;
        return;
    }
    if (p->kind == QTN_K_CALLBACK) {
        error_at(x, p->loc, "'%s' of %s() is QTN_CALLBACK but no function pointer", p->name,
                 f->name);
        return;
    }
    if (!p->kind) {
        const char *hint = ptc.kind == CXType_Char_S || ptc.kind == CXType_Char_U
                               ? (clang_isConstQualifiedType(pt) ? "QTN_STRING (a NUL-terminated "
                                                                   "string), or "
                                                                 : "")
                               : "";
        error_at(x, p->loc,
                 "'%s' of %s() is a pointer: say what crosses with %sQTN_IN(count), "
                 "QTN_OUT(count), QTN_INOUT(count), QTN_HANDLE (passed through untouched) or "
                 "QTN_OWNED (a handle the callee issued, tagged with its incarnation)",
                 p->name, f->name, hint);
        return;
    }
    if (p->kind == QTN_K_ALLOCATED) {
        char what[128];
        snprintf(what, sizeof what, "'%s'", p->name);
        if (ptc.kind != CXType_Pointer) {
            error_at(x, p->loc, "'%s' of %s() is QTN_ALLOCATED but no pointer to a pointer: "
                     "the callee stores a pointer to what it allocated in *%s (T **%s)",
                     p->name, f->name, p->name, p->name);
            return;
        }
        CXType e = clang_getPointeeType(clang_getPointeeType(t));
        if (e.kind == CXType_Invalid)
            e = clang_getPointeeType(ptc);
        if (clang_isConstQualifiedType(pt))
            error_at(x, p->loc, "'%s' of %s() points to a const pointer but is QTN_ALLOCATED "
                     "(the callee stores into it)", p->name, f->name);
        allocated_check(x, f, p, e, what);
        return;
    }
    if (p->kind == QTN_K_HANDLE)
        p->key = pointee_key(t);
    if (p->kind == QTN_K_HANDLE || p->kind == QTN_K_STRING) {
        if (p->kind == QTN_K_STRING && ptc.kind != CXType_Char_S && ptc.kind != CXType_Char_U &&
            ptc.kind != CXType_SChar && ptc.kind != CXType_UChar)
            error_at(x, p->loc, "'%s' of %s() is QTN_STRING but does not point to char",
                     p->name, f->name);
        return;
    }
    /* a buffer */
    if (p->each && ptc.kind != CXType_Pointer)
        error_at(x, p->loc, "'%s' of %s() is QTN_EACH(%s) but no array of pointers (T **)",
                 p->name, f->name, p->each);
    else if (p->each && p->kind != QTN_K_IN)
        error_at(x, p->loc, "'%s' of %s() is an array of pointers: it crosses QTN_IN only (the "
                 "callee's pointers mean nothing to the caller)", p->name, f->name);
    else if (p->each) { /* as declared, for the spelling (int32_t, not int) */
        CXType dpt = clang_getPointeeType(t);
        p->st = ptr_array_of(x, f, p, dpt.kind != CXType_Invalid ? dpt : pt);
    }
    else if (ptc.kind == CXType_Pointer)
        error_at(x, p->loc, "'%s' of %s() points to pointers, which mean nothing in another "
                 "address space: pass it as QTN_HANDLE, or change the interface (a pointer the "
                 "callee hands out comes back as the return value: QTN_OWNED, a handle the "
                 "callee issued, tagged with its incarnation); data the callee allocates and "
                 "stores in *%s is QTN_ALLOCATED(count, free_fn); an array of strings or "
                 "structs it reads is QTN_IN(count) QTN_EACH(string or count)", p->name,
                 f->name, p->name);
    else if (ptc.kind == CXType_FunctionProto || ptc.kind == CXType_FunctionNoProto)
        ; /* handled above */
    else if (ptc.kind == CXType_Void && !p->bytes)
        error_at(x, p->loc, "'%s' of %s() points to void: give a byte count with the _BYTES "
                 "form (QTN_IN_BYTES(n), ...)", p->name, f->name);
    else if (ptc.kind == CXType_Record && record_has_ptr(ptc)) {
        CXCursor decl = clang_getTypeDeclaration(ptc);
        if (clang_getCursorKind(decl) == CXCursor_UnionDecl)
            error_at(x, p->loc, "'%s' of %s() points to a union with pointer fields: unions "
                     "cannot cross unless they hold no pointers", p->name, f->name);
        else if (p->kind == QTN_K_OUT)
            error_at(x, p->loc, "'%s' of %s() is QTN_OUT but its struct holds pointers (the "
                     "callee's pointers mean nothing to the caller): make it QTN_INOUT", p->name,
                     f->name);
        else
            p->st = struct_of(x, f, p, ptc, 0);
    }
    if ((p->kind == QTN_K_OUT || p->kind == QTN_K_INOUT) && clang_isConstQualifiedType(pt))
        error_at(x, p->loc, "'%s' of %s() points to const data but is %s", p->name, f->name,
                 p->kind == QTN_K_OUT ? "QTN_OUT" : "QTN_INOUT");
    if (p->actual && p->kind == QTN_K_IN)
        error_at(x, p->loc, "'%s' of %s() is QTN_IN: only what comes back has an actual length",
                 p->name, f->name);
}

/* Checks what needs all parameters: counts and actual lengths. */
static void check_func(ctx *x, qg_func *f) {
    for (unsigned i = 0; i < f->nparams; i++) {
        qg_param *p = &f->params[i];
        if (p->count)
            check_count(x, f, p, p->count);
        if (!p->actual || !strcmp(p->actual, "return")) {
            if (p->actual && !(f->ret >= QTN_T_I8 && f->ret <= QTN_T_U64))
                error_at(x, p->loc, "%s(return) of '%s': %s() does not return an "
                         "integer", p->kind == QTN_K_ALLOCATED ? "QTN_ALLOCATED" : "QTN_ACTUAL",
                         p->name, f->name);
            continue;
        }
        const char *ann = p->kind == QTN_K_ALLOCATED ? "QTN_ALLOCATED" : "QTN_ACTUAL";
        int j = param_index(f, p->actual);
        if (j < 0) {
            error_at(x, p->loc, "%s(*%s) of '%s': %s() has no parameter '%s'", ann,
                     p->actual, p->name, f->name, p->actual);
            continue;
        }
        count_target_check(x, p->loc, &f->params[j], ann, p->name);
    }
}

/* The parameter an actual length or an allocated count is read from after
 * the call: one 4- or 8-byte integer that comes back. */
static void count_target_check(ctx *x, qg_loc at_loc, const qg_param *a, const char *ann,
                               const char *of) {
    int at = a->pointee_scalar;
    if ((a->kind != QTN_K_OUT && a->kind != QTN_K_INOUT) || !a->count ||
        strcmp(a->count, "1") || a->bytes ||
        !(at == QTN_T_I32 || at == QTN_T_U32 || at == QTN_T_I64 || at == QTN_T_U64))
        error_at(x, at_loc, "%s(*%s) of '%s': '%s' must be QTN_OUT(1) or "
                 "QTN_INOUT(1) of a 4- or 8-byte integer", ann, a->name, of, a->name);
}

/* ---- functions -------------------------------------------------------------- */

static qg_func *find_func(qg_model *m, const char *name) {
    for (unsigned i = 0; i < m->nfuncs; i++)
        if (!strcmp(m->funcs[i].name, name))
            return &m->funcs[i];
    return NULL;
}

static void free_one_param(qg_param *p) {
    if (p->sig) {
        for (unsigned i = 0; i < p->sig->nparams; i++)
            free_one_param(&p->sig->params[i]);
        free(p->sig->params);
        free(p->sig);
    }
    free(p->name), free(p->type), free(p->pointee), free(p->count), free(p->actual);
    free(p->key), free(p->loc.file);
    free(p->elem), free(p->free_fn), free(p->alloc_fn), free(p->each), free(p->active);
    free(p->when_field), free(p->when_value);
}

/* The errno names QTN_DENIED takes: what a library may meet from a system
 * call it is not allowed to make. */
static bool errno_known(const char *s) {
    static const char *const names[] = {"EPERM",  "EACCES", "ENOSYS", "ENOENT", "EROFS",
                                        "EIO",    "ENOTSUP", "EOPNOTSUPP", "EAGAIN",
                                        "ENOMEM", "EINVAL", "ENODEV", "ENXIO",  "EAFNOSUPPORT",
                                        "ECONNREFUSED", "ENETUNREACH"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i]))
            return true;
    return false;
}

/* QTN_SYSCALLS(a, b, ...): names the domain's filter must allow for f's
 * component; each must be a system call of this architecture (libseccomp's
 * table), or the filter would silently lack it. */
static void syscalls_of(ctx *x, qg_func *f, const char *list, const qg_loc *at) {
    const char *s = list;
    bool any = false;
    while (*s) {
        s += strspn(s, ", \t");
        size_t n = strcspn(s, ", \t");
        if (!n)
            break;
        any = true;
        char *name = strndup(s, n);
        s += n;
        bool ident = !isdigit((unsigned char)name[0]);
        for (const char *c = name; *c; c++)
            ident &= isalnum((unsigned char)*c) || *c == '_';
        if (!ident || seccomp_syscall_resolve_name(name) == __NR_SCMP_ERROR) {
            error_at(x, *at, "QTN_SYSCALLS of %s(): '%s' is no system call of this machine",
                     f->name, name);
            free(name);
            continue;
        }
        bool dup = false;
        for (unsigned i = 0; i < f->nsyscalls && !dup; i++)
            dup = !strcmp(f->syscalls[i], name);
        if (dup) {
            free(name);
            continue;
        }
        f->syscalls = realloc(f->syscalls, (f->nsyscalls + 1) * sizeof *f->syscalls);
        f->syscalls[f->nsyscalls++] = name;
    }
    if (!any)
        error_at(x, *at, "QTN_SYSCALLS() of %s() names no system call", f->name);
}

static void free_func(qg_func *f) {
    for (unsigned i = 0; i < f->nparams; i++)
        free_one_param(&f->params[i]);
    free(f->params);
    for (unsigned i = 0; i < f->nsyscalls; i++)
        free(f->syscalls[i]);
    free(f->syscalls);
    free(f->denied);
    if (f->ret_param)
        free_one_param(f->ret_param), free(f->ret_param);
    free(f->name), free(f->component), free(f->ret_type), free(f->ret_key), free(f->fault);
    free(f->loc.file);
    memset(f, 0, sizeof *f);
}

/* The names the runtime will be given: qtn_register() takes at most 63
 * characters and reserves two component names; the annotation takes C
 * identifiers (the stubs name a variable after the component). */
static void check_names(ctx *x, const qg_func *f) {
    const char *c = f->component;
    bool ident = *c && !isdigit((unsigned char)*c);
    for (const char *s = c; *s; s++)
        ident &= isalnum((unsigned char)*s) || *s == '_';
    if (!*c)
        error_at(x, f->loc, "QTN_COMPONENT() of %s() names no component: say "
                 "QTN_COMPONENT(name)", f->name);
    else if (!ident)
        error_at(x, f->loc, "component name '%s' of %s(): letters, digits and '_' only, not "
                 "starting with a digit", c, f->name);
    else if (!strcmp(c, "host") || !strcmp(c, "program"))
        error_at(x, f->loc, "component name '%s' of %s() is reserved by the runtime ('host' "
                 "and 'program' stand for the program itself in plans and statistics): choose "
                 "another name", c, f->name);
    else if (strlen(c) > NAME_MAX_RT)
        error_at(x, f->loc, "component name '%s' of %s() is %zu characters long: the runtime "
                 "takes names of at most %d", c, f->name, strlen(c), NAME_MAX_RT);
    if (strlen(f->name) > NAME_MAX_RT)
        error_at(x, f->loc, "the name of %s() is %zu characters long: the runtime takes entry "
                 "names of at most %d; wrap it in a function with a shorter name", f->name,
                 strlen(f->name), NAME_MAX_RT);
}

static void parse_func(ctx *x, CXCursor c) {
    anns a = {.n = 0};
    clang_visitChildren(c, collect_ann, &a);
    char *component = NULL, *other = NULL; /* other: a second, different component */
    for (unsigned i = 0; i < a.n; i++)
        if (!strncmp(a.items[i], "qtn component ", 14)) {
            const char *cn = a.items[i] + 14;
            if (!component)
                component = strdup(cn);
            else if (strcmp(component, cn) != 0 && !other)
                other = strdup(cn);
        }
    if (!component) {
        anns_free(&a);
        return; /* not an entry */
    }
    char *name = dup_cx(clang_getCursorSpelling(c));
    qg_func *f = find_func(x->m, name);
    if (f) { /* a later declaration: it carries every attribute so far */
        free_func(f);
    } else {
        x->m->funcs = realloc(x->m->funcs, (x->m->nfuncs + 1) * sizeof *x->m->funcs);
        f = &x->m->funcs[x->m->nfuncs++];
    }
    memset(f, 0, sizeof *f);
    f->name = name;
    f->component = component;
    f->loc = loc_of(c);
    CXType ft = clang_getCursorType(c);
    CXType rt = clang_getCursorResultType(c);
    f->ret_type = dup_cx(clang_getTypeSpelling(rt));
    bool ret_handle = false, ret_owned = false, ret_string = false;
    for (unsigned i = 0; i < a.n; i++) {
        char w[32];
        const char *rest = ann_word(a.items[i], w, sizeof w);
        if (!strcmp(w, "component"))
            continue;
        if (!strcmp(w, "fault")) {
            free(f->fault);
            f->fault = strdup(rest);
        } else if (!strcmp(w, "deadline")) {
            char *end;
            unsigned long ms = strtoul(rest, &end, 0);
            if (*end || ms > UINT32_MAX - 1)
                error_at(x, f->loc, "QTN_DEADLINE(%s) of %s(): a number of milliseconds", rest,
                         f->name);
            f->has_deadline = true;
            f->deadline_ms = (uint32_t)ms;
        } else if (!strcmp(w, "syscalls")) {
            syscalls_of(x, f, rest, &a.locs[i]);
        } else if (!strcmp(w, "denied")) {
            if (!errno_known(rest))
                error_at(x, a.locs[i], "QTN_DENIED(%s) of %s(): an errno name (EPERM, ENOSYS, "
                         "EACCES, ...)", rest, f->name);
            free(f->denied);
            f->denied = strdup(rest);
        } else if (!strcmp(w, "handle")) {
            ret_handle = true;
        } else if (!strcmp(w, "owned")) {
            ret_owned = true;
        } else if (!strcmp(w, "string")) {
            ret_string = true;
        } else if (!strcmp(w, "allocated") || !strcmp(w, "out")) {
            char msg[200];
            int kind = w[0] == 'a' ? QTN_K_ALLOCATED : QTN_K_OUT;
            if (!f->ret_param) {
                f->ret_param = calloc(1, sizeof *f->ret_param);
                f->ret_param->name = strdup("result");
                f->ret_param->loc = a.locs[i];
                f->ret_param->loc.file = strdup(a.locs[i].file ? a.locs[i].file : "?");
            } else if (f->ret_param->kind != kind) {
                error_at(x, a.locs[i], "%s() returns data it keeps (QTN_OUT) or data the caller "
                         "frees (QTN_ALLOCATED), not both", f->name);
            }
            if (kind == QTN_K_ALLOCATED) {
                if (qg_ann_allocated(rest, f->ret_param, msg, sizeof msg))
                    error_at(x, a.locs[i], "%s(): %s", f->name, msg);
            } else if (out_count(f->ret_param, rest)) {
                error_at(x, a.locs[i], "QTN_OUT(%s) of %s(): the count of a result is a number "
                         "or *param (an integer the function stores)", rest, f->name);
            }
        } else {
            error_at(x, f->loc, "'%s' is no annotation for a function (%s())", w, f->name);
        }
    }
    anns_free(&a);
    if (other) /* clang merges the attributes of every declaration seen so far */
        error_at(x, f->loc, "%s() is annotated for two components, %s and %s: an entry belongs "
                 "to one component", f->name, f->component, other);
    free(other);
    check_names(x, f);
    if (clang_isFunctionTypeVariadic(ft))
        error_at(x, f->loc, "%s() is variadic: its arguments cannot be described; wrap it in a "
                 "function with fixed parameters", f->name);
    if (clang_getCanonicalType(rt).kind == CXType_Void) {
        f->ret = QTN_T_VOID;
        if (f->fault)
            error_at(x, f->loc, "%s() returns nothing: drop QTN_FAULT", f->name);
    } else if (f->ret_param && f->ret_param->kind == QTN_K_OUT) {
        f->ret = QTN_T_OUT;
        f->ret_slot = QG_V_P;
        if (!is_pointer(rt))
            error_at(x, f->loc, "%s() is QTN_OUT but does not return a pointer", f->name);
        else if (ret_string || ret_handle || ret_owned)
            error_at(x, f->loc, "%s() returns data it keeps: QTN_OUT, not %s as well", f->name,
                     ret_string ? "QTN_STRING" : "a handle");
        else
            out_result_check(x, f, f->ret_param, clang_getPointeeType(rt));
    } else if (f->ret_param) {
        f->ret = QTN_T_ALLOCATED;
        f->ret_slot = QG_V_P;
        qg_param *ra = f->ret_param;
        if (!is_pointer(rt))
            error_at(x, f->loc, "%s() is QTN_ALLOCATED but does not return a pointer (for a "
                     "pointer it stores, annotate that T ** parameter)", f->name);
        else if (ret_string || ret_handle || ret_owned)
            error_at(x, f->loc, "%s() returns what it allocated: QTN_ALLOCATED, not %s as well "
                     "(QTN_STRING: a string it keeps)", f->name,
                     ret_string ? "QTN_STRING" : "a handle");
        else if (ra->actual && !strcmp(ra->actual, "return"))
            error_at(x, ra->loc, "QTN_ALLOCATED(return, ...) of %s(): its result is the "
                     "pointer; count it with *param or string", f->name);
        else
            allocated_check(x, f, ra, clang_getPointeeType(rt), "the result");
    } else if (is_pointer(rt) && ret_string) {
        CXType pc = clang_getCanonicalType(clang_getPointeeType(clang_getCanonicalType(rt)));
        f->ret = QTN_T_STRING;
        f->ret_slot = QG_V_P;
        if (pc.kind != CXType_Char_S && pc.kind != CXType_Char_U)
            error_at(x, f->loc, "%s() is QTN_STRING but does not return a char pointer",
                     f->name);
        if (ret_handle || ret_owned)
            error_at(x, f->loc, "%s() returns a string: QTN_STRING, not a handle as well",
                     f->name);
    } else if (is_pointer(rt)) {
        f->ret = ret_owned ? QTN_T_HANDLE : QTN_T_PTR;
        f->ret_slot = QG_V_P;
        f->ret_key = pointee_key(rt);
        if (!ret_handle && !ret_owned)
            error_at(x, f->loc, "%s() returns a pointer: only a handle can come back; mark it "
                     "QTN_OWNED (a handle the component issued, tagged with its incarnation), "
                     "QTN_HANDLE (passed through untouched) or QTN_STRING (a string it keeps, "
                     "copied back)", f->name);
    } else if (!(f->ret = scalar_of(rt, &f->ret_slot))) {
        error_at(x, f->loc, "%s() returns '%s', which cannot cross", f->name, f->ret_type);
    }
    if (ret_string && f->ret != QTN_T_STRING)
        error_at(x, f->loc, "%s() is QTN_STRING but does not return a char pointer", f->name);
    if (f->ret != QTN_T_VOID && !f->fault)
        error_at(x, f->loc, "%s() returns a value: say what a call returns when the callee "
                 "faults, with QTN_FAULT(value)", f->name);
    int n = clang_Cursor_getNumArguments(c);
    f->nparams = n > 0 ? (unsigned)n : 0;
    if (f->nparams > QTN_PARAMS_MAX)
        error_at(x, f->loc, "%s() has %u parameters; at most %d cross", f->name, f->nparams,
                 QTN_PARAMS_MAX);
    f->params = calloc(f->nparams ? f->nparams : 1, sizeof *f->params);
    for (unsigned i = 0; i < f->nparams; i++) {
        CXCursor pc = clang_Cursor_getArgument(c, i);
        qg_param *p = &f->params[i];
        p->name = dup_cx(clang_getCursorSpelling(pc));
        p->type = dup_cx(clang_getTypeSpelling(clang_getCursorType(pc)));
        p->loc = loc_of(pc);
        if (!*p->name) {
            error_at(x, p->loc, "parameter %u of %s() has no name: name it, so annotations "
                     "can refer to it", i + 1, f->name);
            free(p->name);
            char buf[32];
            snprintf(buf, sizeof buf, "qg_arg%u", i);
            p->name = strdup(buf);
        }
    }
    for (unsigned i = 0; i < f->nparams; i++)
        parse_param(x, f, &f->params[i], clang_Cursor_getArgument(c, i));
    check_func(x, f);
    if (f->ret_param && f->ret_param->actual && strcmp(f->ret_param->actual, "return")) {
        const char *ann = f->ret_param->kind == QTN_K_OUT ? "QTN_OUT" : "QTN_ALLOCATED";
        int j = param_index(f, f->ret_param->actual);
        if (j < 0)
            error_at(x, f->ret_param->loc, "%s(*%s) of %s(): it has no parameter '%s'", ann,
                     f->ret_param->actual, f->name, f->ret_param->actual);
        else
            count_target_check(x, f->ret_param->loc, &f->params[j], ann, "the result");
    }
    bool seen = false;
    for (unsigned i = 0; i < x->m->ncomponents; i++)
        seen |= !strcmp(x->m->components[i], f->component);
    if (!seen) {
        x->m->components = realloc(x->m->components,
                                   (x->m->ncomponents + 1) * sizeof *x->m->components);
        x->m->components[x->m->ncomponents++] = strdup(f->component);
    }
}

/* A synced global must be what qtn_register() syncs (1 byte to 64 KiB) and
 * writable: the domain copies the caller's value into it on every call. */
static void check_global(ctx *x, const struct qg_global *g, CXType t) {
    long long size = clang_Type_getSizeOf(t);
    CXType e = clang_getCanonicalType(t);
    bool ro = clang_isConstQualifiedType(e);
    while (!ro && (e.kind == CXType_ConstantArray || e.kind == CXType_IncompleteArray)) {
        e = clang_getArrayElementType(e); /* const T[n]: the elements are const */
        ro = clang_isConstQualifiedType(e) || clang_isConstQualifiedType(clang_getCanonicalType(e));
    }
    if (ro)
        error_at(x, g->loc, "QTN_SYNC(%s) of '%s': it is const, and the domain would fault "
                 "writing it on every call: drop QTN_SYNC (a const global is the same in every "
                 "domain)", g->component, g->name);
    else if (size < 1)
        error_at(x, g->loc, "QTN_SYNC(%s) of '%s': its size is %s here: declare it with its "
                 "complete type", g->component, g->name, size == 0 ? "0" : "unknown");
    else if (size > (long long)SYNC_MAX)
        error_at(x, g->loc, "QTN_SYNC(%s) of '%s': it is %lld bytes, and the runtime syncs "
                 "globals of at most 64 KiB (%u bytes): keep large state in the component, or "
                 "pass it to its entries as a buffer", g->component, g->name, size, SYNC_MAX);
}

static enum CXChildVisitResult visit(CXCursor c, CXCursor parent, CXClientData d) {
    (void)parent;
    ctx *x = d;
    switch (clang_getCursorKind(c)) {
    case CXCursor_FunctionDecl:
        note_fn(x, c);
        parse_func(x, c);
        break;
    case CXCursor_VarDecl: {
        note_fn(x, c);
        anns a = {.n = 0};
        clang_visitChildren(c, collect_ann, &a);
        for (unsigned i = 0; i < a.n; i++)
            if (!strncmp(a.items[i], "qtn sync ", 9)) {
                x->m->globals = realloc(x->m->globals, (x->m->nglobals + 1) * sizeof *x->m->globals);
                struct qg_global *g = &x->m->globals[x->m->nglobals++];
                g->name = dup_cx(clang_getCursorSpelling(c));
                g->component = strdup(a.items[i] + 9);
                g->loc = loc_of(c);
                check_global(x, g, clang_getCursorType(c));
            } else if (!strncmp(a.items[i], "qtn field ", 10)) {
                x->side = realloc(x->side, (x->nside + 1) * sizeof *x->side);
                struct sidefield *sf = &x->side[x->nside++];
                sf->type = dup_cx(clang_getTypeSpelling(clang_getCanonicalType(clang_getCursorType(c))));
                sf->field = strdup(a.items[i] + 10);
                sf->c = c;
                CXType ft;
                if (!field_path_type(clang_getCanonicalType(clang_getCursorType(c)), sf->field,
                                     &ft)) {
                    qg_loc l = loc_of(c);
                    error_at(x, l, "QTN_FIELD: %s has no field '%s'", sf->type, sf->field);
                    free(l.file);
                }
            }
        anns_free(&a);
        add_known(x, dup_cx(clang_getCursorSpelling(c)));
        break;
    }
    case CXCursor_MacroDefinition:
    case CXCursor_EnumConstantDecl: add_known(x, dup_cx(clang_getCursorSpelling(c))); break;
    case CXCursor_EnumDecl: return CXChildVisit_Recurse;
    default: break;
    }
    return CXChildVisit_Continue;
}

static void note_inclusion(CXFile f, CXSourceLocation *stack, unsigned depth, CXClientData d) {
    (void)stack, (void)depth;
    qg_model *m = d;
    char *name = dup_cx(clang_getFileName(f));
    for (unsigned i = 0; i < m->ndeps; i++)
        if (!strcmp(m->deps[i], name)) {
            free(name);
            return;
        }
    m->deps = realloc(m->deps, (m->ndeps + 1) * sizeof *m->deps);
    m->deps[m->ndeps++] = name;
}

const char **qg_clang_args(char **args, int nargs, int *n) {
    static const char *const base[] = {"-x", "c", "-std=gnu11", "-DQTN_GEN=1", "-fsyntax-only"};
    int nb = (int)(sizeof base / sizeof base[0]);
    const char **argv = calloc((size_t)(nb + nargs), sizeof *argv);
    for (int i = 0; i < nb; i++)
        argv[i] = base[i];
    for (int i = 0; i < nargs; i++)
        argv[nb + i] = args[i];
    *n = nb + nargs;
    return argv;
}

/* A handle type one entry returns as QTN_OWNED and another entry of the
 * component takes as a plain QTN_HANDLE: the runtime would not check its
 * incarnation there. (void * is not compared: it says nothing.) */
static void warn_owned(const qg_model *m, FILE *err) {
    for (unsigned i = 0; i < m->nfuncs; i++) {
        const qg_func *g = &m->funcs[i];
        for (unsigned k = 0; k < g->nparams; k++) {
            const qg_param *p = &g->params[k];
            if (p->kind != QTN_K_HANDLE || p->owned || !p->key)
                continue;
            for (unsigned j = 0; j < m->nfuncs; j++) {
                const qg_func *f = &m->funcs[j];
                if (f->ret == QTN_T_HANDLE && f->ret_key && !strcmp(f->ret_key, p->key) &&
                    !strcmp(f->component, g->component)) {
                    warn_at(&p->loc, err, "'%s' of %s(): its type '%s' is returned by %s() as "
                            "QTN_OWNED: annotate this parameter QTN_OWNED too", p->name,
                            g->name, p->type, f->name);
                    break;
                }
            }
        }
    }
}

int qg_parse(qg_model *m, char **headers, int nheaders, char **args, int nargs, FILE *err) {
    ctx x = {.m = m, .err = err};
    CXIndex idx = clang_createIndex(0, 0);
    int nargv;
    const char **argv = qg_clang_args(args, nargs, &nargv);
    for (int h = 0; h < nheaders; h++) {
        CXTranslationUnit tu;
        enum CXErrorCode ec = clang_parseTranslationUnit2(
            idx, headers[h], argv, nargv, NULL, 0,
            CXTranslationUnit_DetailedPreprocessingRecord | CXTranslationUnit_SkipFunctionBodies,
            &tu);
        if (ec != CXError_Success) {
            fprintf(err, "%s: error: cannot parse (libclang error %d)\n", headers[h], (int)ec);
            x.errors++;
            continue;
        }
        unsigned nd = clang_getNumDiagnostics(tu);
        int before = x.errors;
        for (unsigned i = 0; i < nd; i++) {
            CXDiagnostic dg = clang_getDiagnostic(tu, i);
            if (clang_getDiagnosticSeverity(dg) >= CXDiagnostic_Error) {
                char *s = dup_cx(clang_formatDiagnostic(
                    dg, CXDiagnostic_DisplaySourceLocation | CXDiagnostic_DisplayColumn));
                fprintf(err, "%s\n", s);
                free(s);
                x.errors++;
            }
            clang_disposeDiagnostic(dg);
        }
        if (x.errors == before)
            clang_visitChildren(clang_getTranslationUnitCursor(tu), visit, &x);
        check_uses(&x);
        for (unsigned i = 0; i < x.nfns; i++)
            free(x.fns[i].name);
        free(x.fns);
        x.fns = NULL;
        x.nfns = 0;
        if (x.npend) /* the counts, evaluated as the stubs will evaluate them */
            x.errors += qg_counts_check(idx, headers, nheaders, headers[h], argv, nargv, x.pend,
                                        x.npend, err);
        qg_pending_free(x.pend, x.npend);
        x.pend = NULL;
        x.npend = 0;
        clang_getInclusions(tu, note_inclusion, m);
        for (unsigned i = 0; i < x.nside; i++) /* their cursors die with the unit */
            free(x.side[i].type), free(x.side[i].field);
        x.nside = 0;
        clang_disposeTranslationUnit(tu);
        m->headers = realloc(m->headers, (m->nheaders + 1) * sizeof *m->headers);
        m->headers[m->nheaders++] = strdup(headers[h]);
    }
    clang_disposeIndex(idx);
    free(argv);
    for (unsigned i = 0; i < x.nknown; i++)
        free(x.known[i]);
    free(x.known);
    for (unsigned i = 0; i < x.nside; i++)
        free(x.side[i].type), free(x.side[i].field);
    free(x.side);
    for (unsigned i = 0; i < m->nglobals; i++) {
        bool found = false;
        for (unsigned c = 0; c < m->ncomponents; c++)
            found |= !strcmp(m->components[c], m->globals[i].component);
        if (!found)
            error_at(&x, m->globals[i].loc, "QTN_SYNC(%s) of '%s': no entry of component %s in "
                     "these headers", m->globals[i].component, m->globals[i].name,
                     m->globals[i].component);
    }
    /* what a denied system call does is the component's: its entries agree */
    for (unsigned i = 0; i < m->nfuncs; i++)
        for (unsigned j = 0; j < i && m->funcs[i].denied; j++)
            if (!strcmp(m->funcs[i].component, m->funcs[j].component) && m->funcs[j].denied &&
                strcmp(m->funcs[i].denied, m->funcs[j].denied)) {
                error_at(&x, m->funcs[i].loc, "QTN_DENIED(%s) of %s(): %s() of component %s "
                         "says QTN_DENIED(%s); a component has one", m->funcs[i].denied,
                         m->funcs[i].name, m->funcs[j].name, m->funcs[i].component,
                         m->funcs[j].denied);
                break;
            }
    if (!x.errors)
        warn_owned(m, err);
    if (!x.errors && !m->nfuncs) {
        fprintf(err, "quarantine: gen: no entry functions: mark prototypes with "
                     "QTN_COMPONENT(name)\n");
        x.errors++;
    }
    return x.errors;
}

void qg_model_free(qg_model *m) {
    for (unsigned i = 0; i < m->ndeps; i++)
        free(m->deps[i]);
    free(m->deps);
    for (unsigned i = 0; i < m->nglobals; i++)
        free(m->globals[i].name), free(m->globals[i].component), free(m->globals[i].loc.file);
    free(m->globals);
    for (qg_struct *st = m->structs, *next; st; st = next) {
        next = st->next;
        for (unsigned i = 0; i < st->nfields; i++)
            free_one_param(&st->fields[i]);
        free(st->fields), free(st->type), free(st->cname), free(st);
    }
    for (unsigned i = 0; i < m->nfuncs; i++)
        free_func(&m->funcs[i]);
    free(m->funcs);
    for (unsigned i = 0; i < m->ncomponents; i++) {
        free(m->components[i]);
        if (m->code_ids)
            free(m->code_ids[i]);
    }
    free(m->components);
    free(m->code_ids);
    for (unsigned i = 0; i < m->nheaders; i++)
        free(m->headers[i]);
    free(m->headers);
    memset(m, 0, sizeof *m);
}
