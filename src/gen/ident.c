/* ident.c - code identity: which source files are a component's, and a hash
 * of its code that the runtime hands to the supervisor, so that evidence
 * about a component (calls, faults, trust) carries over a rebuild that left
 * its code alone and starts afresh when its code changed.
 *
 * A source belongs to component X when it defines an entry of X, or defines
 * qtn__source_of__X (QTN_SOURCE_OF(X)): the rule the crash symboliser
 * (src/qis/sym.c) uses to attribute frames, so both agree on whose code a
 * file is. The identity of X hashes, in this order: a version line, X's
 * name, a canonical text of its entries and synced globals as the model
 * holds them, and the hashes of the contents of its files, sorted (so
 * neither paths nor the order of --source matter). The hash is MurmurHash3
 * x64_128 (hash.c). */
#include <clang-c/Index.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "model.h"
#include "quarantine.h"

static const char mark_prefix[] = "qtn__source_of__";

/* ---- text -------------------------------------------------------------------- */

typedef struct text {
    char *p;
    size_t n, cap;
} text;

static void tput(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tput(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if (t->n + (size_t)k + 1 > t->cap) {
        t->cap = (t->n + (size_t)k + 1) * 2;
        t->p = realloc(t->p, t->cap);
    }
    va_start(ap, fmt);
    vsnprintf(t->p + t->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    t->n += (size_t)k;
}

#define S(s) ((s) ? (s) : "-")

static void put_params(text *t, const qg_param *p, unsigned n, int depth);

static void put_struct(text *t, const qg_struct *st, int depth) {
    tput(t, " struct{%s", st->type);
    if (depth < 8) /* structs nest at most 4 deep (parse.c); a guard all the same */
        put_params(t, st->fields, st->nfields, depth + 1);
    tput(t, "}");
}

/* Every field of a parameter that changes what crosses or how. */
static void put_params(text *t, const qg_param *p, unsigned n, int depth) {
    for (unsigned i = 0; i < n; i++, p++) {
        tput(t,
             "\n%*sparam %s type=%s pointee=%s k=%d t=%d pt=%d bytes=%d nullable=%d owned=%d "
             "count=%s count_t=%d actual=%s",
             depth * 2, "", p->name, S(p->type), S(p->pointee), p->kind, p->scalar,
             p->pointee_scalar, p->bytes, p->nullable, p->owned, S(p->count), p->count_scalar,
             S(p->actual));
        if (p->when_field) /* said only when there: other identities stay */
            tput(t, " when=%s==%s", p->when_field, S(p->when_value));
        if (p->kind == QTN_K_ALLOCATED)
            tput(t, " allocated=%s/%s/%s/%s", p->alloc_string ? "string" : S(p->actual),
                 S(p->elem), S(p->free_fn), S(p->alloc_fn));
        if (p->st)
            put_struct(t, p->st, depth);
        if (p->sig) {
            tput(t, " callback ret=%d", p->sig->ret);
            put_params(t, p->sig->params, p->sig->nparams, depth + 1);
        }
    }
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(const qg_func *const *)a)->name, (*(const qg_func *const *)b)->name);
}

/* The canonical text of component c's interface, entries in name order. */
static void put_component(text *t, const qg_model *m, const char *c) {
    tput(t, "quarantine code identity 1\ncomponent %s", c);
    const qg_func **fs = calloc(m->nfuncs ? m->nfuncs : 1, sizeof *fs);
    unsigned n = 0;
    for (unsigned i = 0; i < m->nfuncs; i++)
        if (!strcmp(m->funcs[i].component, c))
            fs[n++] = &m->funcs[i];
    qsort(fs, n, sizeof *fs, by_name);
    for (unsigned i = 0; i < n; i++) {
        const qg_func *f = fs[i];
        tput(t, "\nentry %s ret=%s t=%d fault=%s deadline=%s%u", f->name, S(f->ret_type), f->ret,
             S(f->fault), f->has_deadline ? "" : "default/", f->deadline_ms);
        if (f->ret_param)
            put_params(t, f->ret_param, 1, 1);
        put_params(t, f->params, f->nparams, 1);
    }
    free(fs);
    for (unsigned i = 0; i < m->nglobals; i++)
        if (!strcmp(m->globals[i].component, c))
            tput(t, "\nsync %s", m->globals[i].name);
}

/* ---- sources ----------------------------------------------------------------- */

/* What one source file defines. */
typedef struct defs {
    const qg_model *m;
    CXTranslationUnit tu;
    CXFile main;
    CXToken *toks; /* the main file's tokens, to tell a definition from a declaration */
    unsigned ntoks;
    const char *comps[2]; /* components whose entries it defines (the first two) */
    const char *mark;     /* a QTN_SOURCE_OF mark's component */
    char *marks[2];       /* the first two different marks */
    qg_loc mark_loc;
} defs;

static char *dup_cx(CXString s) {
    const char *c = clang_getCString(s);
    char *r = strdup(c ? c : "");
    clang_disposeString(s);
    return r;
}

static unsigned offset_of(CXSourceLocation l) {
    unsigned off;
    clang_getExpansionLocation(l, NULL, NULL, NULL, &off);
    return off;
}

/* True when the declaration ending at `end` has a body: parsing skipped it,
 * so the token after its declarator says (a '{', not ';' or ','). */
static bool has_body(const defs *d, unsigned end) {
    unsigned lo = 0, hi = d->ntoks;
    while (lo < hi) { /* the first token at or after end */
        unsigned mid = (lo + hi) / 2;
        if (offset_of(clang_getTokenLocation(d->tu, d->toks[mid])) < end)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= d->ntoks)
        return false;
    CXString s = clang_getTokenSpelling(d->tu, d->toks[lo]);
    bool brace = !strcmp(clang_getCString(s), "{");
    clang_disposeString(s);
    return brace;
}

static const char *entry_component(const qg_model *m, const char *name) {
    for (unsigned i = 0; i < m->nfuncs; i++)
        if (!strcmp(m->funcs[i].name, name))
            return m->funcs[i].component;
    return NULL;
}

static enum CXChildVisitResult visit(CXCursor c, CXCursor parent, CXClientData data) {
    (void)parent;
    defs *d = data;
    if (clang_getCursorKind(c) != CXCursor_FunctionDecl)
        return CXChildVisit_Continue;
    CXFile f;
    unsigned line, col;
    clang_getExpansionLocation(clang_getCursorLocation(c), &f, &line, &col, NULL);
    if (!f || !clang_File_isEqual(f, d->main))
        return CXChildVisit_Continue; /* a header's */
    char *name = dup_cx(clang_getCursorSpelling(c));
    if (!strncmp(name, mark_prefix, sizeof mark_prefix - 1)) {
        /* the mark is a definition by construction (quarantine.h) */
        const char *mk = name + sizeof mark_prefix - 1;
        if (!d->marks[0]) {
            d->marks[0] = strdup(mk);
            d->mark_loc.line = line, d->mark_loc.col = col;
        } else if (strcmp(d->marks[0], mk) != 0 && !d->marks[1]) {
            d->marks[1] = strdup(mk);
        }
    } else {
        const char *comp = entry_component(d->m, name);
        if (comp && has_body(d, offset_of(clang_getRangeEnd(clang_getCursorExtent(c))))) {
            if (!d->comps[0])
                d->comps[0] = comp;
            else if (strcmp(d->comps[0], comp) != 0 && !d->comps[1])
                d->comps[1] = comp;
        }
    }
    free(name);
    return CXChildVisit_Continue;
}

static int comp_index(const qg_model *m, const char *name) {
    for (unsigned i = 0; i < m->ncomponents; i++)
        if (!strcmp(m->components[i], name))
            return (int)i;
    return -1;
}

/* The component a parsed source belongs to (its index), -1 for none, or
 * -2 after an error. */
static int owner_of(defs *d, const char *path, FILE *err) {
    if (d->marks[1]) {
        fprintf(err,
                "%s:1:1: error: %s is marked QTN_SOURCE_OF(%s) and QTN_SOURCE_OF(%s): a "
                "source file belongs to one component\n",
                path, path, d->marks[0], d->marks[1]);
        return -2;
    }
    if (d->comps[1]) {
        fprintf(err,
                "%s:1:1: error: %s defines entries of components %s and %s: a source file "
                "belongs to one component\n",
                path, path, d->comps[0], d->comps[1]);
        return -2;
    }
    if (d->marks[0] && d->comps[0] && strcmp(d->marks[0], d->comps[0]) != 0) {
        fprintf(err,
                "%s:1:1: error: %s defines entries of component %s but is marked "
                "QTN_SOURCE_OF(%s): a source file belongs to one component\n",
                path, path, d->comps[0], d->marks[0]);
        return -2;
    }
    if (d->marks[0]) {
        int k = comp_index(d->m, d->marks[0]);
        if (k < 0)
            fprintf(err,
                    "%s:%u:%u: warning: QTN_SOURCE_OF(%s): no component %s in these "
                    "headers; the file counts for none\n",
                    path, d->mark_loc.line, d->mark_loc.col, d->marks[0], d->marks[0]);
        return k;
    }
    return d->comps[0] ? comp_index(d->m, d->comps[0]) : -1;
}

/* Reads a whole file and hashes it. Returns 0 or -1 (errno). */
static int hash_file(const char *path, uint64_t h[2]) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char *p = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            p = realloc(p, cap);
        }
        size_t k = fread(p + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!bad)
        qg_hash128(p, n, 0, h);
    free(p);
    if (bad)
        errno = EIO;
    return bad ? -1 : 0;
}

static void add_dep(qg_model *m, const char *path) {
    for (unsigned i = 0; i < m->ndeps; i++)
        if (!strcmp(m->deps[i], path))
            return;
    m->deps = realloc(m->deps, (m->ndeps + 1) * sizeof *m->deps);
    m->deps[m->ndeps++] = strdup(path);
}

/* Parses one source; returns its component's index, -1 for none, -2 after
 * an error (written to err). */
static int parse_source(CXIndex idx, qg_model *m, const char *path, const char **argv, int nargv,
                        FILE *err) {
    CXTranslationUnit tu;
    enum CXErrorCode ec = clang_parseTranslationUnit2(idx, path, argv, nargv, NULL, 0,
                                                      CXTranslationUnit_SkipFunctionBodies, &tu);
    if (ec != CXError_Success) {
        fprintf(err, "%s: error: cannot parse (libclang error %d)\n", path, (int)ec);
        return -2;
    }
    int errors = 0;
    unsigned nd = clang_getNumDiagnostics(tu);
    for (unsigned i = 0; i < nd; i++) {
        CXDiagnostic dg = clang_getDiagnostic(tu, i);
        if (clang_getDiagnosticSeverity(dg) >= CXDiagnostic_Error) {
            char *s = dup_cx(clang_formatDiagnostic(dg, CXDiagnostic_DisplaySourceLocation |
                                                            CXDiagnostic_DisplayColumn));
            fprintf(err, "%s\n", s);
            free(s);
            errors++;
        }
        clang_disposeDiagnostic(dg);
    }
    int k = -2;
    if (!errors) {
        defs d = {.m = m, .tu = tu, .main = clang_getFile(tu, path)};
        clang_tokenize(tu, clang_getCursorExtent(clang_getTranslationUnitCursor(tu)), &d.toks,
                       &d.ntoks);
        clang_visitChildren(clang_getTranslationUnitCursor(tu), visit, &d);
        k = owner_of(&d, path, err);
        clang_disposeTokens(tu, d.toks, d.ntoks);
        free(d.marks[0]), free(d.marks[1]);
    }
    clang_disposeTranslationUnit(tu);
    return k;
}

typedef char hexhash[33];

static int by_hex(const void *a, const void *b) { return strcmp(a, b); }

int qg_identify(qg_model *m, char **sources, int nsources, char **args, int nargs, FILE *err) {
    int errors = 0, nargv;
    const char **argv = qg_clang_args(args, nargs, &nargv);
    CXIndex idx = clang_createIndex(0, 0);
    /* per component, the hashes of its files' contents */
    hexhash **hs = calloc(m->ncomponents ? m->ncomponents : 1, sizeof *hs);
    unsigned *nh = calloc(m->ncomponents ? m->ncomponents : 1, sizeof *nh);
    char **seen = calloc(nsources ? (size_t)nsources : 1, sizeof *seen);
    int nseen = 0;
    for (int i = 0; i < nsources; i++) {
        char *real = realpath(sources[i], NULL);
        if (!real) {
            fprintf(err, "quarantine: gen: %s: %s\n", sources[i], strerror(errno));
            errors++;
            continue;
        }
        bool dup = false;
        for (int j = 0; j < nseen && !dup; j++)
            dup = !strcmp(seen[j], real);
        if (dup) { /* named twice: one file all the same */
            free(real);
            continue;
        }
        seen[nseen++] = real;
        add_dep(m, sources[i]);
        int k = parse_source(idx, m, sources[i], argv, nargv, err);
        if (k == -2) {
            errors++;
            continue;
        }
        if (k < 0)
            continue;
        uint64_t h[2];
        if (hash_file(sources[i], h)) {
            fprintf(err, "quarantine: gen: %s: %s\n", sources[i], strerror(errno));
            errors++;
            continue;
        }
        hs[k] = realloc(hs[k], ((size_t)nh[k] + 1) * sizeof *hs[k]);
        qg_hash_hex(h, hs[k][nh[k]++]);
    }
    if (!m->code_ids)
        m->code_ids = calloc(m->ncomponents ? m->ncomponents : 1, sizeof *m->code_ids);
    for (unsigned c = 0; !errors && c < m->ncomponents; c++) {
        if (!nh[c]) {
            fprintf(err,
                    "quarantine: gen: warning: component %s: no --source file defines its "
                    "entries; its code identity is unknown (each build counts as new code)\n",
                    m->components[c]);
            continue;
        }
        qsort(hs[c], nh[c], sizeof *hs[c], by_hex); /* the order of --source is no matter */
        text t = {NULL, 0, 0};
        put_component(&t, m, m->components[c]);
        for (unsigned i = 0; i < nh[c]; i++)
            tput(&t, "\nsource %s", hs[c][i]);
        tput(&t, "\n");
        uint64_t id[2];
        qg_hash128(t.p, t.n, 0, id);
        free(t.p);
        m->code_ids[c] = malloc(33);
        qg_hash_hex(id, m->code_ids[c]);
    }
    for (unsigned c = 0; c < m->ncomponents; c++)
        free(hs[c]);
    free(hs);
    free(nh);
    for (int j = 0; j < nseen; j++)
        free(seen[j]);
    free(seen);
    clang_disposeIndex(idx);
    free(argv);
    return errors;
}
