/* count.c - counts checked the way the stubs will evaluate them.
 *
 * A count is copied into the stubs as the body of a function of the
 * parameters (emit.c: `T n = ...; return (size_t)(count);`), after the
 * header. So each count of a header is written into one such function of a
 * small file that includes the header, that file is parsed with libclang,
 * and the expression's tree says what the text alone cannot: its types, its
 * value when it is a constant, and what it does. What the runtime cannot
 * use is an error at the parameter, not a surprise in the stubs' build or a
 * bad length at run time. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "count.h"

void qg_pending_free(qg_pending *p, unsigned n) {
    for (unsigned i = 0; i < n; i++) {
        for (unsigned k = 0; k < p[i].n; k++)
            free(p[i].names[k]), free(p[i].types[k]);
        free(p[i].names), free(p[i].types);
        free(p[i].func), free(p[i].param), free(p[i].count), free(p[i].loc.file);
    }
    free(p);
}

static void fail(const qg_pending *p, FILE *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(const qg_pending *p, FILE *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(err, "%s:%u:%u: error: ", p->loc.file, p->loc.line, p->loc.col);
    vfprintf(err, fmt, ap);
    fputc('\n', err);
    va_end(ap);
}

/* ---- the file ---------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t n, cap;
    unsigned line; /* the line being written, from 1 */
} buf;

static void put(buf *b, const char *s) {
    size_t k = strlen(s);
    if (b->n + k + 1 > b->cap) {
        b->cap = (b->n + k + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, k + 1);
    b->n += k;
    for (; *s; s++)
        b->line += *s == '\n';
}

/* ---- the tree ---------------------------------------------------------------- */

enum problem { P_NONE, P_SIZEOF_PTR, P_CALL, P_ASSIGN, P_INCDEC, P_FLOAT, P_POINTER };

typedef struct walk {
    CXTranslationUnit tu;
    enum problem problem;
    char name[160]; /* what the problem is about (a parameter, a literal) */
} walk;

static bool is_float(CXType t) {
    switch (clang_getCanonicalType(t).kind) {
    case CXType_Float:
    case CXType_Double:
    case CXType_LongDouble:
    case CXType_Float128:
    case CXType_Half:
    case CXType_Float16: return true;
    default: return false;
    }
}

static bool is_ptr(CXType t) { return clang_getCanonicalType(t).kind == CXType_Pointer; }

static bool is_integer(CXType t) {
    switch (clang_getCanonicalType(t).kind) {
    case CXType_Bool:
    case CXType_Char_U:
    case CXType_UChar:
    case CXType_Char_S:
    case CXType_SChar:
    case CXType_UShort:
    case CXType_Short:
    case CXType_UInt:
    case CXType_Int:
    case CXType_ULong:
    case CXType_Long:
    case CXType_ULongLong:
    case CXType_LongLong:
    case CXType_UInt128:
    case CXType_Int128:
    case CXType_Enum: return true;
    default: return false;
    }
}

static void spell(char *dst, size_t len, CXString s) {
    const char *c = clang_getCString(s);
    snprintf(dst, len, "%s", c ? c : "");
    clang_disposeString(s);
}

/* The first token of a cursor, or "". */
static void first_token(CXTranslationUnit tu, CXCursor c, char *dst, size_t len) {
    CXToken *t;
    unsigned n;
    dst[0] = 0;
    clang_tokenize(tu, clang_getCursorExtent(c), &t, &n);
    if (n)
        spell(dst, len, clang_getTokenSpelling(tu, t[0]));
    clang_disposeTokens(tu, t, n);
}

static enum CXChildVisitResult first_child(CXCursor c, CXCursor parent, CXClientData d) {
    (void)parent;
    *(CXCursor *)d = c;
    return CXChildVisit_Break;
}

static CXCursor child_of(CXCursor c) {
    CXCursor k = clang_getNullCursor();
    clang_visitChildren(c, first_child, &k);
    return k;
}

/* An lvalue as it is written, before C converts it to its value: a
 * variable, a member or an element (with parentheses). Operands used for
 * their value are wrapped in an implicit conversion (an unexposed
 * expression); only the operand of an assignment, of ++ or -- and of & is
 * not. */
static bool bare_lvalue(CXCursor c) {
    switch (clang_getCursorKind(c)) {
    case CXCursor_ParenExpr: return bare_lvalue(child_of(c));
    case CXCursor_MemberRefExpr:
    case CXCursor_ArraySubscriptExpr: return true;
    case CXCursor_DeclRefExpr: {
        enum CXCursorKind k = clang_getCursorKind(clang_getCursorReferenced(c));
        return k == CXCursor_ParmDecl || k == CXCursor_VarDecl;
    }
    default: return false;
    }
}

/* A parameter of pointer type, under parentheses and conversions. */
static bool pointer_param(CXCursor c, char *name, size_t len) {
    while (clang_getCursorKind(c) == CXCursor_ParenExpr ||
           clang_getCursorKind(c) == CXCursor_UnexposedExpr)
        c = child_of(c);
    if (clang_getCursorKind(c) != CXCursor_DeclRefExpr || !is_ptr(clang_getCursorType(c)) ||
        clang_getCursorKind(clang_getCursorReferenced(c)) != CXCursor_ParmDecl)
        return false;
    spell(name, len, clang_getCursorSpelling(c));
    return true;
}

/* True when pointer-typed c is read through, not used as a number: it is
 * dereferenced, indexed or has a member taken by its parent (or its parent
 * is still the pointer, in parentheses or converted, and answers for it). */
static bool read_through(walk *w, CXCursor c, CXCursor parent) {
    switch (clang_getCursorKind(parent)) {
    case CXCursor_ParenExpr:
    case CXCursor_UnexposedExpr: return is_ptr(clang_getCursorType(parent));
    case CXCursor_ArraySubscriptExpr:
    case CXCursor_MemberRefExpr: return true;
    case CXCursor_UnaryOperator: { /* *p, not !p (both may have the pointee's type) */
        CXType pt = clang_getCanonicalType(
            clang_getPointeeType(clang_getCanonicalType(clang_getCursorType(c))));
        char tok[8];
        first_token(w->tu, parent, tok, sizeof tok);
        return clang_equalTypes(clang_getCanonicalType(clang_getCursorType(parent)), pt) &&
               strcmp(tok, "!") != 0;
    }
    default: return false;
    }
}

/* Names what a problem at some expression is about: the first parameter
 * (for floating point: of floating type) or floating literal in it. */
static bool name_one(walk *w, CXCursor c) {
    enum CXCursorKind k = clang_getCursorKind(c);
    CXType t = clang_getCursorType(c);
    if (k == CXCursor_DeclRefExpr && (w->problem != P_FLOAT || is_float(t))) {
        char n[60], ts[60];
        spell(n, sizeof n, clang_getCursorSpelling(c));
        spell(ts, sizeof ts, clang_getTypeSpelling(t));
        if (w->problem == P_FLOAT)
            snprintf(w->name, sizeof w->name, "'%s' is %s", n, ts);
        else
            snprintf(w->name, sizeof w->name, "%s", n);
        return true;
    }
    if (k == CXCursor_FloatingLiteral && w->problem == P_FLOAT) {
        char n[64];
        first_token(w->tu, c, n, sizeof n);
        snprintf(w->name, sizeof w->name, "'%s'", n);
        return true;
    }
    return false;
}

static enum CXChildVisitResult name_visit(CXCursor c, CXCursor parent, CXClientData d) {
    (void)parent;
    return name_one(d, c) ? CXChildVisit_Break : CXChildVisit_Recurse;
}

static enum CXChildVisitResult found(walk *w, CXCursor c, enum problem p) {
    w->problem = p;
    if (!name_one(w, c))
        clang_visitChildren(c, name_visit, w);
    return CXChildVisit_Break;
}

static enum CXChildVisitResult visit(CXCursor c, CXCursor parent, CXClientData d) {
    walk *w = d;
    enum CXCursorKind k = clang_getCursorKind(c);
    if (!clang_isExpression(k))
        return CXChildVisit_Continue; /* a type name in a cast or sizeof */
    CXType t = clang_getCursorType(c);
    if (k == CXCursor_UnaryExpr) { /* sizeof, alignof: not evaluated, but maybe not meant */
        char tok[16];
        first_token(w->tu, c, tok, sizeof tok);
        CXCursor op = child_of(c);
        if (!strcmp(tok, "sizeof") && !clang_Cursor_isNull(op) &&
            pointer_param(op, w->name, sizeof w->name)) {
            w->problem = P_SIZEOF_PTR;
            return CXChildVisit_Break;
        }
        return CXChildVisit_Continue;
    }
    if (k == CXCursor_CallExpr) {
        w->problem = P_CALL;
        spell(w->name, sizeof w->name, clang_getCursorSpelling(c));
        return CXChildVisit_Break;
    }
    if (k == CXCursor_CompoundAssignOperator ||
        (k == CXCursor_BinaryOperator && bare_lvalue(child_of(c)))) {
        w->problem = P_ASSIGN;
        return CXChildVisit_Break;
    }
    if (k == CXCursor_UnaryOperator && !is_ptr(t) && bare_lvalue(child_of(c))) {
        w->problem = P_INCDEC;
        return CXChildVisit_Break;
    }
    if (is_float(t))
        return found(w, c, P_FLOAT);
    if (is_ptr(t) && !read_through(w, c, parent))
        return found(w, c, P_POINTER);
    return CXChildVisit_Recurse;
}

/* Walks e and what is under it, as clang_visitChildren would with e. */
static void walk_expr(walk *w, CXCursor e, CXCursor parent) {
    if (visit(e, parent, w) == CXChildVisit_Recurse)
        clang_visitChildren(e, visit, w);
}

/* ---- one count --------------------------------------------------------------- */

typedef struct fn_find {
    unsigned index;
    CXCursor fn;
} fn_find;

static enum CXChildVisitResult find_fn(CXCursor c, CXCursor parent, CXClientData d) {
    (void)parent;
    fn_find *ff = d;
    if (clang_getCursorKind(c) != CXCursor_FunctionDecl)
        return CXChildVisit_Continue;
    char want[32], n[64];
    snprintf(want, sizeof want, "qg__count%u", ff->index);
    spell(n, sizeof n, clang_getCursorSpelling(c));
    if (strcmp(n, want) != 0)
        return CXChildVisit_Continue;
    ff->fn = c;
    return CXChildVisit_Break;
}

static enum CXChildVisitResult find_body(CXCursor c, CXCursor parent, CXClientData d) {
    (void)parent;
    if (clang_getCursorKind(c) != CXCursor_CompoundStmt)
        return CXChildVisit_Continue;
    *(CXCursor *)d = child_of(c);
    return CXChildVisit_Break;
}

/* Checks the tree of count i; returns 1 when it reported an error. */
static int check_tree(CXTranslationUnit tu, const qg_pending *p, unsigned i, FILE *err) {
    fn_find ff = {i, clang_getNullCursor()};
    clang_visitChildren(clang_getTranslationUnitCursor(tu), find_fn, &ff);
    CXCursor e = clang_getNullCursor();
    if (!clang_Cursor_isNull(ff.fn))
        clang_visitChildren(ff.fn, find_body, &e);
    if (clang_Cursor_isNull(e) || !clang_isExpression(clang_getCursorKind(e))) {
        fail(p, err, "the count '%s' of '%s' of %s() cannot be evaluated", p->count, p->param,
             p->func);
        return 1;
    }
    walk w = {.tu = tu, .problem = P_NONE};
    walk_expr(&w, e, ff.fn);
    const char *c = p->count, *q = p->param, *f = p->func;
    switch (w.problem) {
    case P_SIZEOF_PTR:
        fail(p, err,
             "sizeof(%s) in the count of '%s' of %s() is the size of the pointer '%s' "
             "itself, not of what it points to: say sizeof(*%s)",
             w.name, q, f, w.name, w.name);
        return 1;
    case P_CALL:
        fail(p, err,
             "the count '%s' of '%s' of %s() calls a function%s%s%s: a count only reads "
             "the parameters",
             c, q, f, *w.name ? " ('" : "", w.name, *w.name ? "')" : "");
        return 1;
    case P_ASSIGN:
        fail(p, err,
             "the count '%s' of '%s' of %s() has a side effect (an assignment): a count "
             "only reads the parameters",
             c, q, f);
        return 1;
    case P_INCDEC:
        fail(p, err,
             "the count '%s' of '%s' of %s() has a side effect (an increment or "
             "decrement): a count only reads the parameters",
             c, q, f);
        return 1;
    case P_FLOAT:
        fail(p, err,
             "the count '%s' of '%s' of %s() computes with floating point%s%s%s: a count "
             "is an integer; pass it as an integer parameter",
             c, q, f, *w.name ? " (" : "", w.name, *w.name ? ")" : "");
        return 1;
    case P_POINTER:
        if (*w.name)
            fail(p, err,
                 "the count '%s' of '%s' of %s() uses the pointer '%s' as a number: a "
                 "count is an integer (*%s reads what it points to)",
                 c, q, f, w.name, w.name);
        else
            fail(p, err,
                 "the count '%s' of '%s' of %s() is a pointer, not a number: a count is "
                 "an integer",
                 c, q, f);
        return 1;
    case P_NONE: break;
    }
    CXType t = clang_getCursorType(e);
    if (!is_integer(t)) {
        char ts[128];
        spell(ts, sizeof ts, clang_getTypeSpelling(t));
        fail(p, err, "the count '%s' of '%s' of %s() has type '%s', not an integer", c, q, f, ts);
        return 1;
    }
    CXEvalResult r = clang_Cursor_Evaluate(e);
    int bad = 0;
    if (r && clang_EvalResult_getKind(r) == CXEval_Int && !clang_EvalResult_isUnsignedInt(r) &&
        clang_EvalResult_getAsLongLong(r) < 0) {
        fail(p, err,
             "the count '%s' of '%s' of %s() is negative (%lld): a count is a number of "
             "elements, 0 or more",
             c, q, f, clang_EvalResult_getAsLongLong(r));
        bad = 1;
    }
    if (r)
        clang_EvalResult_dispose(r);
    return bad;
}

/* ---- all counts of a header ------------------------------------------------------ */

int qg_counts_check(CXIndex idx, char **headers, int nheaders, const char *header,
                    const char **argv, int nargv, const qg_pending *p, unsigned n, FILE *err) {
    char *real = realpath(header, NULL);
    const char *h = real ? real : header;
    buf b = {NULL, 0, 0, 1};
    for (int i = 0; i < nheaders; i++) { /* as the stubs include them */
        char *r = realpath(headers[i], NULL);
        put(&b, "#include \"");
        put(&b, r ? r : headers[i]);
        put(&b, "\"\n");
        free(r);
    }
    unsigned *first = calloc(n, sizeof *first), *last = calloc(n, sizeof *last);
    for (unsigned i = 0; i < n; i++) { /* as emit.c writes a count function */
        char head[48];
        snprintf(head, sizeof head, "static void qg__count%u(", i);
        first[i] = b.line;
        put(&b, head);
        for (unsigned k = 0; k < p[i].n; k++) {
            put(&b, k ? ", " : "");
            put(&b, p[i].types[k]);
            put(&b, " ");
            put(&b, p[i].names[k]);
        }
        put(&b, p[i].n ? ") {\n(" : "void) {\n(");
        put(&b, p[i].count);
        put(&b, ");\n}\n");
        last[i] = b.line - 1;
    }
    /* a name beside the header: its quoted includes resolve as they do for it */
    size_t fl = strlen(h) + 32;
    char *fname = malloc(fl);
    snprintf(fname, fl, "%s.qtn-counts.c", h);
    struct CXUnsavedFile uf = {fname, b.p, (unsigned long)b.n};
    CXTranslationUnit tu;
    int errors = 0;
    enum CXErrorCode ec = clang_parseTranslationUnit2(idx, fname, argv, nargv, &uf, 1, 0, &tu);
    if (ec != CXError_Success) {
        fprintf(err, "%s: error: cannot check its counts (libclang error %d)\n", header, (int)ec);
        errors = 1;
        goto out;
    }
    CXFile mainf = clang_getFile(tu, fname);
    bool *done = calloc(n, sizeof *done);
    unsigned nd = clang_getNumDiagnostics(tu);
    for (unsigned d = 0; d < nd; d++) { /* a header that stops the parse says so itself */
        CXDiagnostic dg = clang_getDiagnostic(tu, d);
        if (clang_getDiagnosticSeverity(dg) == CXDiagnostic_Fatal)
            for (unsigned i = 0; i < n; i++)
                done[i] = true;
        clang_disposeDiagnostic(dg);
    }
    for (unsigned d = 0; d < nd; d++) {
        CXDiagnostic dg = clang_getDiagnostic(tu, d);
        enum CXDiagnosticSeverity sev = clang_getDiagnosticSeverity(dg);
        CXFile f;
        unsigned line;
        clang_getExpansionLocation(clang_getDiagnosticLocation(dg), &f, &line, NULL, NULL);
        char opt[64];
        spell(opt, sizeof opt, clang_getDiagnosticOption(dg, NULL));
        bool div0 = !strcmp(opt, "-Wdivision-by-zero");
        if ((sev >= CXDiagnostic_Error || div0) && f && clang_File_isEqual(f, mainf)) {
            for (unsigned i = 0; i < n; i++) {
                if (done[i] || line < first[i] || line > last[i])
                    continue;
                if (div0) {
                    fail(&p[i], err, "the count '%s' of '%s' of %s() divides by zero", p[i].count,
                         p[i].param, p[i].func);
                } else {
                    char msg[256];
                    spell(msg, sizeof msg, clang_getDiagnosticSpelling(dg));
                    fail(&p[i], err, "the count '%s' of '%s' of %s() is not valid C here: %s",
                         p[i].count, p[i].param, p[i].func, msg);
                }
                done[i] = true;
                errors++;
            }
        }
        clang_disposeDiagnostic(dg);
    }
    for (unsigned i = 0; i < n; i++)
        if (!done[i])
            errors += check_tree(tu, &p[i], i, err);
    free(done);
    clang_disposeTranslationUnit(tu);
out:
    free(fname);
    free(first);
    free(last);
    free(b.p);
    free(real);
    return errors;
}
