/* emit.c - the stubs: for each entry, descriptors for the runtime, a thunk
 * that calls the real function, and the stub callers reach through the
 * linker's --wrap (calls from other objects go through the stub; calls
 * inside the object that defines the function stay direct). */
#include <ctype.h>
#include <stdarg.h>
#include <string.h>

#include "model.h"
#include "quarantine.h"

static int werr;

static void out(FILE *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(FILE *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(o, fmt, ap) < 0)
        werr = 1;
    va_end(ap);
}

static const char *tname(int t) {
    static const char *n[] = {"QTN_T_VOID", "QTN_T_I8",  "QTN_T_U8",  "QTN_T_I16",
                              "QTN_T_U16",  "QTN_T_I32", "QTN_T_U32", "QTN_T_I64",
                              "QTN_T_U64",  "QTN_T_F32", "QTN_T_F64", "QTN_T_PTR",
                              "QTN_T_HANDLE", "QTN_T_STRING", "QTN_T_ALLOCATED",
                              "QTN_T_OUT"};
    return t >= 0 && t <= QTN_T_OUT ? n[t] : "QTN_T_VOID";
}

static const char *kname(int k) {
    static const char *n[] = {"0", "QTN_K_SCALAR", "QTN_K_HANDLE", "QTN_K_IN", "QTN_K_OUT",
                              "QTN_K_INOUT", "QTN_K_STRING", "QTN_K_CALLBACK",
                              "QTN_K_ALLOCATED"};
    return k >= 0 && k <= QTN_K_ALLOCATED ? n[k] : "0";
}

static const char *member(qg_vslot s) {
    switch (s) {
    case QG_V_I: return "i";
    case QG_V_U: return "u";
    case QG_V_F: return "f";
    case QG_V_D: return "d";
    default: return "p";
    }
}

/* The value of parameter i, unpacked from a[] to its C type. */
static void unpack(FILE *o, const qg_param *p, unsigned i) {
    out(o, "(%s)a[%u].%s", p->type, i, member(p->slot));
}

static bool is_ident(const char *s) {
    if (!isalpha((unsigned char)*s) && *s != '_')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static bool is_number(const char *s) {
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* A list of parameters: an entry's, or a callback's. */
typedef struct plist {
    const char *prefix; /* of the generated names */
    const qg_param *p;
    unsigned n;
    const qg_param *ret_param; /* an entry's QTN_ALLOCATED result, or NULL */
} plist;

static int param_index(const plist *l, const char *name) {
    for (unsigned i = 0; i < l->n; i++)
        if (!strcmp(l->p[i].name, name))
            return (int)i;
    return -1;
}

/* True when a count is the plain value of an integer parameter. */
static bool count_is_param(const plist *l, const qg_param *p, int *j) {
    return is_ident(p->count) && (*j = param_index(l, p->count)) >= 0 &&
           l->p[*j].kind == QTN_K_SCALAR && l->p[*j].slot != QG_V_F && l->p[*j].slot != QG_V_D;
}

/* A function computing a count expression from the arguments. */
static void emit_count_fn(FILE *o, const plist *l, unsigned pi) {
    out(o, "static size_t qg_%s_count%u(const qtn_val *a) {\n", l->prefix, pi);
    for (unsigned i = 0; i < l->n; i++) {
        const qg_param *p = &l->p[i];
        out(o, "    %s %s = ", p->type, p->name);
        unpack(o, p, i);
        out(o, ";\n    (void)%s;\n", p->name);
    }
    out(o, "    return (size_t)(%s);\n}\n\n", l->p[pi].count);
}

/* The functions a QTN_ALLOCATED descriptor points to: the names the
 * annotation gave may be macros or pointers to functions (xmlFree), so each
 * is called from a function of the descriptor's type. */
static void emit_alloc_fns(FILE *o, const qg_param *p, const char *name) {
    out(o, "static void qg_%s_free(void *p) {\n    %s(p);\n}\n", name, p->free_fn);
    if (p->alloc_fn)
        out(o, "static void *qg_%s_alloc(size_t n) {\n    return %s(n);\n}\n", name, p->alloc_fn);
    out(o, "\n");
}

/* The fields of a QTN_ALLOCATED descriptor after its kind. */
static void emit_alloc_desc(FILE *o, const plist *l, const qg_param *p, const char *name) {
    out(o, ", .elem_size = sizeof(%s)", p->elem);
    if (p->alloc_string)
        out(o, ", .actual = QTN_ACTUAL_STRING");
    else if (!strcmp(p->actual, "return"))
        out(o, ", .actual = QTN_ACTUAL_RET");
    else
        out(o, ", .actual = QTN_ACTUAL_PARAM(%d)", param_index(l, p->actual));
    out(o, ", .free_fn = qg_%s_free", name);
    if (p->alloc_fn)
        out(o, ", .alloc_fn = qg_%s_alloc", name);
}

static void emit_param(FILE *o, const plist *l, unsigned i) {
    const qg_param *p = &l->p[i];
    out(o, "    {.kind = %s", kname(p->kind));
    if (p->kind == QTN_K_ALLOCATED) {
        char name[192];
        snprintf(name, sizeof name, "%s_a%u", l->prefix, i);
        emit_alloc_desc(o, l, p, name);
        out(o, "}");
        return;
    }
    if (p->kind == QTN_K_SCALAR) {
        out(o, ", .type = %s}", tname(p->scalar));
        return;
    }
    if (p->kind == QTN_K_CALLBACK) {
        out(o, ", .sig = &qg_%s_cb%u_sig}", l->prefix, i);
        return;
    }
    if (p->owned)
        out(o, ", .flags = QTN_F_OWNED");
    else if (p->nullable)
        out(o, ", .flags = QTN_F_NULLABLE");
    if (p->kind == QTN_K_HANDLE || p->kind == QTN_K_STRING) {
        out(o, "}");
        return;
    }
    out(o, ", .elem_size = %s", p->bytes ? "1" : "");
    if (!p->bytes)
        out(o, "sizeof(%s)", p->pointee);
    int j;
    if (is_number(p->count))
        out(o, ", .len_kind = QTN_LEN_CONST, .len = %s", p->count);
    else if (count_is_param(l, p, &j))
        out(o, ", .len_kind = QTN_LEN_PARAM, .len = %d", j);
    else
        out(o, ", .len_kind = QTN_LEN_FN, .len_fn = qg_%s_count%u", l->prefix, i);
    if (p->st)
        out(o, ", .st = &qg_st_%s", p->st->cname);
    if (p->actual && !strcmp(p->actual, "return"))
        out(o, ", .actual = QTN_ACTUAL_RET");
    else if (p->actual)
        out(o, ", .actual = QTN_ACTUAL_PARAM(%d)", param_index(l, p->actual));
    /* an actual-length target says its integer type */
    bool target = l->ret_param && l->ret_param->actual && !strcmp(l->ret_param->actual, p->name);
    for (unsigned k = 0; k < l->n && !target; k++)
        target = l->p[k].actual && !strcmp(l->p[k].actual, p->name);
    if (target)
        out(o, ", .type = %s", tname(p->pointee_scalar));
    out(o, "}");
}

/* Count functions, callback signatures and the descriptor array of a
 * parameter list (named qg_<prefix>_params). */
static void emit_params(FILE *o, const plist *l) {
    int j;
    for (unsigned i = 0; i < l->n; i++) {
        const qg_param *p = &l->p[i];
        if (p->count && !is_number(p->count) && !count_is_param(l, p, &j))
            emit_count_fn(o, l, i);
        if (p->kind == QTN_K_ALLOCATED) {
            char name[192];
            snprintf(name, sizeof name, "%s_a%u", l->prefix, i);
            emit_alloc_fns(o, p, name);
        }
        if (p->kind == QTN_K_CALLBACK && p->sig) {
            char prefix[192];
            snprintf(prefix, sizeof prefix, "%s_cb%u", l->prefix, i);
            plist sl = {prefix, p->sig->params, p->sig->nparams, NULL};
            emit_params(o, &sl);
            out(o, "static const qtn_sig qg_%s_sig = {%s, %u, %s%s%s};\n\n", prefix,
                tname(p->sig->ret), p->sig->nparams, p->sig->nparams ? "qg_" : "NULL",
                p->sig->nparams ? prefix : "", p->sig->nparams ? "_params" : "");
        }
    }
    if (!l->n)
        return;
    out(o, "static const qtn_param qg_%s_params[] = {\n", l->prefix);
    for (unsigned i = 0; i < l->n; i++) {
        emit_param(o, l, i);
        out(o, ",\n");
    }
    out(o, "};\n");
}

static const char *comp_var(const char *c) {
    static char buf[128];
    snprintf(buf, sizeof buf, "qtn_component_%s", c);
    return buf;
}

static void emit_func(FILE *o, const qg_func *f) {
    out(o, "/* ---- %s() of component %s (%s:%u) ---- */\n\n", f->name, f->component,
        f->loc.file, f->loc.line);
    out(o, "extern %s __real_%s(", f->ret_type, f->name);
    for (unsigned i = 0; i < f->nparams; i++)
        out(o, "%s%s %s", i ? ", " : "", f->params[i].type, f->params[i].name);
    out(o, "%s);\n", f->nparams ? "" : "void");
    out(o, "%s __wrap_%s(", f->ret_type, f->name);
    for (unsigned i = 0; i < f->nparams; i++)
        out(o, "%s%s %s", i ? ", " : "", f->params[i].type, f->params[i].name);
    out(o, "%s);\n\n", f->nparams ? "" : "void");
    /* the thunk: runs the real function wherever the component is */
    out(o, "static void qg_%s_thunk(qtn_val *a, qtn_val *r) {\n    ", f->name);
    if (!f->nparams)
        out(o, "(void)a;\n    ");
    if (f->ret == QTN_T_VOID)
        out(o, "(void)r;\n    ");
    else
        out(o, "r->%s = %s", member(f->ret_slot), f->ret_slot == QG_V_P ? "(void *)" : "");
    out(o, "__real_%s(", f->name);
    for (unsigned i = 0; i < f->nparams; i++) {
        out(o, "%s", i ? ", " : "");
        unpack(o, &f->params[i], i);
    }
    out(o, ");\n}\n\n");
    plist l = {f->name, f->params, f->nparams, f->ret_param};
    emit_params(o, &l);
    if (f->ret_param && f->ret_param->kind == QTN_K_OUT) {
        const qg_param *rp = f->ret_param;
        out(o, "static const qtn_param qg_%s_ret = {.kind = QTN_K_OUT, .elem_size = sizeof(%s)",
            f->name, rp->elem);
        if (rp->actual)
            out(o, ", .actual = QTN_ACTUAL_PARAM(%d)", param_index(&l, rp->actual));
        else
            out(o, ", .len_kind = QTN_LEN_CONST, .len = %s", rp->count);
        if (rp->st)
            out(o, ", .st = &qg_st_%s", rp->st->cname);
        out(o, "};\n\n");
    } else if (f->ret_param) {
        char name[192];
        snprintf(name, sizeof name, "%s_r", f->name);
        emit_alloc_fns(o, f->ret_param, name);
        out(o, "static const qtn_param qg_%s_ret = {.kind = QTN_K_ALLOCATED", f->name);
        emit_alloc_desc(o, &l, f->ret_param, name);
        out(o, "};\n\n");
    }
    out(o, "extern qtn_component %s;\n", comp_var(f->component));
    out(o, "static const qtn_entry qg_%s_entry = {\n", f->name);
    out(o, "    .name = \"%s\",\n    .component = &%s,\n    .thunk = qg_%s_thunk,\n", f->name,
        comp_var(f->component), f->name);
    out(o, "    .ret = %s,\n", tname(f->ret));
    if (f->nparams)
        out(o, "    .nparams = %u,\n    .params = qg_%s_params,\n", f->nparams, f->name);
    if (f->fault)
        out(o, "    .fault = {.%s = (%s)(%s)},\n", member(f->ret_slot),
            f->ret_slot == QG_V_P ? "void *" : f->ret_type, f->fault);
    if (f->ret_param)
        out(o, "    .ret_param = &qg_%s_ret,\n", f->name);
    if (f->has_deadline && !f->deadline_ms)
        out(o, "    .deadline_ms = QTN_NO_DEADLINE,\n");
    else if (f->has_deadline)
        out(o, "    .deadline_ms = %u,\n", f->deadline_ms);
    out(o, "};\n\n");
    /* the stub */
    out(o, "%s __wrap_%s(", f->ret_type, f->name);
    for (unsigned i = 0; i < f->nparams; i++)
        out(o, "%s%s %s", i ? ", " : "", f->params[i].type, f->params[i].name);
    out(o, "%s) {\n", f->nparams ? "" : "void");
    out(o, "    static qtn_edge edge = QTN_EDGE_INIT(NULL, &qg_%s_entry);\n", f->name);
    /* a handle a domain issued never reaches the callee directly (the plan
     * may have moved it into this process since): only untagged ones */
    out(o, "    if (");
    for (unsigned i = 0; i < f->nparams; i++)
        if (f->params[i].kind == QTN_K_HANDLE && f->params[i].owned)
            out(o, "QTN_UNTAGGED(%s) && ", f->params[i].name);
    out(o, "QTN_DIRECT(&edge))\n        %s__real_%s(", f->ret == QTN_T_VOID ? "" : "return ",
        f->name);
    for (unsigned i = 0; i < f->nparams; i++)
        out(o, "%s%s", i ? ", " : "", f->params[i].name);
    out(o, ");\n");
    if (f->ret == QTN_T_VOID)
        out(o, "    else {\n");
    if (f->nparams) {
        out(o, "    qtn_val a[%u] = {", f->nparams);
        for (unsigned i = 0; i < f->nparams; i++) {
            const qg_param *p = &f->params[i];
            if (p->slot == QG_V_P)
                out(o, "%s{.p = (void *)%s}", i ? ", " : "", p->name);
            else
                out(o, "%s{.%s = %s}", i ? ", " : "", member(p->slot), p->name);
        }
        out(o, "};\n");
    }
    out(o, "    qtn_val r;\n    qtn_call(&edge, %s, &r);\n", f->nparams ? "a" : "NULL");
    if (f->ret == QTN_T_VOID)
        out(o, "    }\n}\n\n");
    else
        out(o, "    return (%s)r.%s;\n}\n\n", f->ret_type, member(f->ret_slot));
}

/* The descriptor of a struct whose pointer fields cross with it. */
static void emit_struct(FILE *o, const qg_struct *st) {
    if (st->ptr_array)
        out(o, "/* an array of %s: what each points to crosses with it */\n", st->type);
    else
        out(o, "/* %s: its pointer fields cross with it */\n", st->type);
    out(o, "static const qtn_param qg_st_%s_fields[] = {\n", st->cname);
    for (unsigned i = 0; i < st->nfields; i++) {
        const qg_param *q = &st->fields[i];
        if (st->ptr_array) /* each element of an array of pointers */
            out(o, "    {.kind = %s, .offset = 0", kname(q->kind));
        else
            out(o, "    {.kind = %s, .offset = offsetof(%s, %s)", kname(q->kind), st->type,
                q->name);
        if (q->kind != QTN_K_HANDLE && q->kind != QTN_K_STRING) {
            out(o, ", .elem_size = ");
            if (q->bytes)
                out(o, "1");
            else
                out(o, "sizeof(%s)", q->pointee);
            if (is_number(q->count))
                out(o, ", .len_kind = QTN_LEN_CONST, .len = %s", q->count);
            else
                out(o, ", .len_kind = QTN_LEN_FIELD, .len = offsetof(%s, %s), .type = %s",
                    st->type, q->count, tname(q->count_scalar));
            if (q->st)
                out(o, ", .st = &qg_st_%s", q->st->cname);
        }
        if (q->when_field) /* a union member's: while its discriminant says so */
            out(o, ", .flags = QTN_F_WHEN, .when_type = %s, .when_offset = offsetof(%s, %s), "
                ".when_value = (int64_t)(%s)", tname(q->when_type), st->type, q->when_field,
                q->when_value);
        out(o, "},\n");
    }
    out(o, "};\n");
    out(o, "static const qtn_struct qg_st_%s = {\"%s\", sizeof(%s), %u, qg_st_%s_fields};\n\n",
        st->cname, st->type, st->type, st->nfields, st->cname);
}

int qg_emit_stubs(const qg_model *m, FILE *o, const char *generator) {
    werr = 0;
    out(o, "/* Stubs generated by %s from", generator);
    for (unsigned i = 0; i < m->nheaders; i++)
        out(o, " %s", m->headers[i]);
    out(o, ".\n * Do not edit: change the annotations and run it again. Link with the flags\n"
           " * it wrote (one -Wl,--wrap= per entry), so that calls from other objects\n"
           " * reach these stubs. */\n");
    out(o, "#include <errno.h>\n#include <stddef.h>\n#include <stdint.h>\n\n"
           "#include \"quarantine.h\"\n");
    for (unsigned i = 0; i < m->nheaders; i++)
        out(o, "#include \"%s\"\n", m->headers[i]);
    out(o, "\n");
    for (const qg_struct *st = m->structs; st; st = st->next)
        emit_struct(o, st);
    for (unsigned i = 0; i < m->nfuncs; i++)
        emit_func(o, &m->funcs[i]);
    for (unsigned c = 0; c < m->ncomponents; c++) {
        const char *name = m->components[c];
        out(o, "static const qtn_entry *const qg_entries_%s[] = {\n", name);
        unsigned n = 0;
        for (unsigned i = 0; i < m->nfuncs; i++)
            if (!strcmp(m->funcs[i].component, name)) {
                out(o, "    &qg_%s_entry,\n", m->funcs[i].name);
                n++;
            }
        out(o, "};\n");
        unsigned ng = 0;
        for (unsigned i = 0; i < m->nglobals; i++)
            if (!strcmp(m->globals[i].component, name)) {
                if (!ng++)
                    out(o, "static const qtn_global qg_globals_%s[] = {\n", name);
                out(o, "    {&%s, sizeof %s},\n", m->globals[i].name, m->globals[i].name);
            }
        if (ng)
            out(o, "};\n");
        /* the system calls its entries say it needs, each once */
        unsigned nsys = 0;
        for (unsigned i = 0; i < m->nfuncs; i++) {
            const qg_func *f = &m->funcs[i];
            if (strcmp(f->component, name))
                continue;
            for (unsigned k = 0; k < f->nsyscalls; k++) {
                bool seen = false;
                for (unsigned j = 0; j < i && !seen; j++)
                    for (unsigned l = 0; l < m->funcs[j].nsyscalls && !seen; l++)
                        seen = !strcmp(m->funcs[j].component, name) &&
                               !strcmp(m->funcs[j].syscalls[l], f->syscalls[k]);
                if (seen)
                    continue;
                if (!nsys++)
                    out(o, "static const char *const qg_syscalls_%s[] = {", name);
                out(o, "\"%s\", ", f->syscalls[k]);
            }
        }
        if (nsys)
            out(o, "NULL};\n");
        out(o, "qtn_component %s = {.name = \"%s\", .nentries = %u, .entries = qg_entries_%s",
            comp_var(name), name, n, name);
        if (ng)
            out(o, ",\n    .nglobals = %u, .globals = qg_globals_%s", ng, name);
        if (nsys)
            out(o, ",\n    .syscalls = qg_syscalls_%s", name);
        for (unsigned i = 0; i < m->nfuncs; i++) /* one per component: parse.c checked */
            if (!strcmp(m->funcs[i].component, name) && m->funcs[i].denied) {
                out(o, ",\n    .denied_errno = %s", m->funcs[i].denied);
                break;
            }
        if (m->code_ids && m->code_ids[c]) /* from quarantine gen --source: see ident.c */
            out(o, ",\n    .code_id = \"%s\"", m->code_ids[c]);
        out(o, "};\n\n");
    }
    out(o, "/* components register themselves before main() runs */\n");
    out(o, "__attribute__((constructor)) static void qg_register(void) {\n");
    for (unsigned c = 0; c < m->ncomponents; c++)
        out(o, "    qtn_register(&%s);\n", comp_var(m->components[c]));
    out(o, "}\n");
    return werr || fflush(o) ? -1 : 0;
}

int qg_emit_flags(const qg_model *m, FILE *o) {
    werr = 0;
    for (unsigned i = 0; i < m->nfuncs; i++)
        out(o, "%s-Wl,--wrap=%s", i ? " " : "", m->funcs[i].name);
    out(o, "\n");
    return werr || fflush(o) ? -1 : 0;
}

int qg_emit_deps(const qg_model *m, FILE *o, const char *target) {
    werr = 0;
    out(o, "%s:", target);
    for (unsigned i = 0; i < m->ndeps; i++) {
        out(o, " \\\n ");
        for (const char *c = m->deps[i]; *c; c++)
            out(o, "%s%c", *c == ' ' || *c == '#' ? "\\" : "", *c);
    }
    out(o, "\n");
    return werr || fflush(o) ? -1 : 0;
}
