/* plan.c - the component registry and plans (which domain hosts what). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

qtn_component *qtn__comps[QTN_COMPONENTS_MAX + 1];
int qtn__ncomps;
_Atomic uint8_t qtn__plan[QTN_COMPONENTS_MAX + 1];

int qtn__where(int c) {
    if (c <= 0)
        return qtn__g.self; /* not a registered component: runs where called */
    if (qtn__g.self == QTN_DOMAIN_HOST)
        return atomic_load_explicit(&qtn__plan[c], memory_order_acquire);
    return atomic_load_explicit(&qtn__my_hdr()->plan[c], memory_order_acquire);
}

bool qtn__comp_known(const qtn_component *c) {
    for (int i = 1; i <= qtn__ncomps; i++)
        if (qtn__comps[i] == c)
            return true;
    return false;
}

bool qtn__entry_known(const qtn_entry *e) {
    for (int i = 1; i <= qtn__ncomps; i++) {
        const qtn_component *c = qtn__comps[i];
        for (uint32_t j = 0; j < c->nentries; j++)
            if (c->entries[j] == e)
                return true;
    }
    return false;
}

/* ---- descriptor checks ---------------------------------------------------- */

static int bad(const char *comp, const char *entry, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(const char *comp, const char *entry, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "quarantine: register: component '%s'%s%s: %s\n", comp ? comp : "?",
            entry ? ", entry " : "", entry ? entry : "", msg);
    return QTN_EINVAL;
}

static bool int_type(uint8_t t) { return t >= QTN_T_I8 && t <= QTN_T_U64; }

static int check_params(const char *cn, const char *en, const qtn_param *ps, unsigned n,
                        bool in_struct, bool in_callback, int depth);

/* A result pointing to data the callee keeps: kind QTN_K_OUT, a constant
 * count or one from an integer out-parameter, its struct's fields as a
 * struct's. */
static int check_out_result(const char *cn, const qtn_entry *e) {
    const qtn_param *p = e->ret_param;
    if (!p || p->kind != QTN_K_OUT || !p->elem_size)
        return bad(cn, e->name, "a result of data needs its ret_param (QTN_K_OUT, an element "
                   "size)");
    if (p->actual > 0) {
        unsigned ai = (unsigned)p->actual - 1;
        const qtn_param *a = ai < e->nparams ? &e->params[ai] : NULL;
        if (!a || (a->kind != QTN_K_OUT && a->kind != QTN_K_INOUT) ||
            a->len_kind != QTN_LEN_CONST || a->len != 1 ||
            (a->elem_size != 4 && a->elem_size != 8) || a->st)
            return bad(cn, e->name, "result: its count's parameter %d must point to one 4- or "
                       "8-byte integer that goes back (out or inout, length 1)", (int)ai);
    } else if (p->len_kind != QTN_LEN_CONST || p->actual) {
        return bad(cn, e->name, "result: its count is a constant or QTN_ACTUAL_PARAM(i)");
    }
    if (p->st) {
        if (p->st->size != p->elem_size)
            return bad(cn, e->name, "result: element size %u differs from struct %s size %u",
                       p->elem_size, p->st->name ? p->st->name : "?", p->st->size);
        return check_params(cn, e->name, p->st->fields, p->st->nfields, true, false, 1);
    }
    return 0;
}

/* What the callee allocated (parameter i, or the result: is_param false):
 * a free function, an element size and where its count comes from. */
static int check_allocated(const char *cn, const char *en, const qtn_param *ps, unsigned n,
                           const qtn_param *p, unsigned i, bool is_param) {
    const char *what = is_param ? "parameter" : "result";
    if (!p->free_fn)
        return bad(cn, en, "%s %u: callee-allocated data needs its free_fn", what, i);
    if (p->elem_size == 0)
        return bad(cn, en, "%s %u: element size is 0", what, i);
    if (p->actual == QTN_ACTUAL_STRING)
        return p->elem_size == 1 ? 0 : bad(cn, en, "%s %u: a string's elements are bytes",
                                            what, i);
    if (p->actual == QTN_ACTUAL_RET && is_param)
        return 0;
    if (p->actual > 0) {
        unsigned ai = (unsigned)p->actual - 1;
        const qtn_param *a = ai < n ? &ps[ai] : NULL;
        if (!a || (is_param && ai == i) || (a->kind != QTN_K_OUT && a->kind != QTN_K_INOUT) ||
            a->len_kind != QTN_LEN_CONST || a->len != 1 ||
            (a->elem_size != 4 && a->elem_size != 8) || a->st)
            return bad(cn, en, "%s %u: its count's parameter %d must point to one 4- or 8-byte "
                       "integer that goes back (out or inout, length 1)", what, i, (int)ai);
        return 0;
    }
    return bad(cn, en, "%s %u: callee-allocated data needs a count (QTN_ACTUAL_PARAM, %s"
               "QTN_ACTUAL_STRING)", what, i, is_param ? "QTN_ACTUAL_RET, " : "");
}

static int check_param(const char *cn, const char *en, const qtn_param *ps, unsigned n,
                       unsigned i, bool in_struct, bool in_callback, int depth) {
    const qtn_param *p = &ps[i];
    const char *what = in_struct ? "field" : "parameter";
    if ((p->flags & QTN_F_WHEN) &&
        (!in_struct || !int_type(p->when_type)))
        return bad(cn, en, "%s %u: QTN_F_WHEN is for struct fields, with an integer "
                   "discriminant", what, i);
    switch (p->kind) {
    case QTN_K_SCALAR:
        if (in_struct)
            return bad(cn, en, "%s %u: scalar fields need no descriptor", what, i);
        if (p->type == QTN_T_VOID || p->type > QTN_T_PTR)
            return bad(cn, en, "%s %u: bad scalar type %u", what, i, p->type);
        return 0;
    case QTN_K_HANDLE: return 0;
    case QTN_K_STRING: return 0;
    case QTN_K_CALLBACK:
        if (in_struct || in_callback)
            return bad(cn, en, "%s %u: callbacks are supported as entry parameters only", what, i);
        if (!p->sig)
            return bad(cn, en, "%s %u: callback without a signature", what, i);
        if (p->sig->nparams > QTN_PARAMS_MAX || p->sig->ret > QTN_T_PTR)
            return bad(cn, en, "%s %u: malformed callback signature", what, i);
        return check_params(cn, en, p->sig->params, p->sig->nparams, false, true, depth + 1);
    case QTN_K_IN:
    case QTN_K_OUT:
    case QTN_K_INOUT: break;
    case QTN_K_ALLOCATED:
        if (in_struct || in_callback)
            return bad(cn, en, "%s %u: callee-allocated data is for entry parameters only",
                       what, i);
        return check_allocated(cn, en, ps, n, p, i, true);
    default: return bad(cn, en, "%s %u: unknown kind %u", what, i, p->kind);
    }
    if (p->elem_size == 0)
        return bad(cn, en, "%s %u: element size is 0", what, i);
    switch (p->len_kind) {
    case QTN_LEN_CONST: break;
    case QTN_LEN_PARAM:
        if (in_struct)
            return bad(cn, en, "%s %u: a field's length comes from a field (QTN_LEN_FIELD)", what, i);
        if (p->len >= n)
            return bad(cn, en, "%s %u: length parameter %llu is out of range (%u parameters)", what,
                       i, (unsigned long long)p->len, n);
        if (ps[p->len].kind != QTN_K_SCALAR || !int_type(ps[p->len].type))
            return bad(cn, en, "%s %u: length parameter %llu is not an integer scalar", what, i,
                       (unsigned long long)p->len);
        break;
    case QTN_LEN_FIELD:
        if (!in_struct)
            return bad(cn, en, "%s %u: QTN_LEN_FIELD is for struct fields", what, i);
        if (!int_type(p->type))
            return bad(cn, en, "%s %u: length field type must be an integer", what, i);
        break;
    case QTN_LEN_FN:
        if (!p->len_fn || in_struct)
            return bad(cn, en, "%s %u: QTN_LEN_FN needs len_fn and a parameter", what, i);
        break;
    default: return bad(cn, en, "%s %u: unknown length kind %u", what, i, p->len_kind);
    }
    if (p->actual != QTN_ACTUAL_NONE) {
        if (in_struct)
            return bad(cn, en, "%s %u: actual lengths are for parameters", what, i);
        if (p->kind == QTN_K_IN)
            return bad(cn, en, "%s %u: an in buffer has no actual length", what, i);
        if (p->actual > 0) {
            unsigned ai = (unsigned)p->actual - 1;
            if (ai >= n || ai == i)
                return bad(cn, en, "%s %u: actual-length parameter %u is out of range", what, i,
                           ai);
            const qtn_param *a = &ps[ai];
            if ((a->kind != QTN_K_OUT && a->kind != QTN_K_INOUT) || a->len_kind != QTN_LEN_CONST ||
                a->len != 1 || (a->elem_size != 4 && a->elem_size != 8) || a->st)
                return bad(cn, en,
                           "%s %u: actual-length parameter %d must point to one 4- or 8-byte "
                           "integer that goes back (out or inout, length 1)",
                           what, i, (int)ai);
            if (a->type && (!int_type(a->type) || (a->type != QTN_T_I32 && a->type != QTN_T_U32 &&
                                                    a->type != QTN_T_I64 && a->type != QTN_T_U64)))
                return bad(cn, en, "%s %u: actual-length parameter %u: bad integer type", what, i,
                           ai);
        } else if (p->actual != QTN_ACTUAL_RET) {
            return bad(cn, en, "%s %u: bad actual-length source %d", what, i, p->actual);
        }
    }
    if (p->st) {
        if (depth > 8)
            return bad(cn, en, "%s %u: structs nest too deep", what, i);
        if (p->st->size != p->elem_size)
            return bad(cn, en, "%s %u: element size %u differs from struct %s size %u", what, i,
                       p->elem_size, p->st->name ? p->st->name : "?", p->st->size);
        if (p->st->nfields && p->kind == QTN_K_OUT)
            return bad(cn, en,
                       "%s %u: an out struct cannot hold pointers (the callee's pointers "
                       "mean nothing to the caller); make it inout",
                       what, i);
        for (uint32_t f = 0; f < p->st->nfields; f++)
            if (p->st->fields[f].offset + sizeof(void *) > p->st->size)
                return bad(cn, en, "%s %u: field %u lies outside struct %s", what, i, f,
                           p->st->name ? p->st->name : "?");
        return check_params(cn, en, p->st->fields, p->st->nfields, true, in_callback, depth + 1);
    }
    return 0;
}

static int check_params(const char *cn, const char *en, const qtn_param *ps, unsigned n,
                        bool in_struct, bool in_callback, int depth) {
    if (n && !ps)
        return bad(cn, en, "parameters missing");
    for (unsigned i = 0; i < n; i++) {
        int r = check_param(cn, en, ps, n, i, in_struct, in_callback, depth);
        if (r)
            return r;
    }
    return 0;
}

int qtn_register(qtn_component *c) {
    if (!c || !c->name || !*c->name)
        return QTN_EINVAL;
    pthread_mutex_lock(&qtn__g.lock);
    int r = 0;
    if (c->id) { /* registered already */
        r = c->id <= qtn__ncomps && qtn__comps[c->id] == c ? 0 : QTN_EINVAL;
        goto out;
    }
    if (qtn__g.inited) {
        r = QTN_ESTATE;
        goto out;
    }
    if (strlen(c->name) > 63) {
        r = bad(c->name, NULL, "names are at most 63 characters");
        goto out;
    }
    for (const char *s = c->name; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') {
            r = bad(c->name, NULL, "names may hold letters, digits, '_', '-' and '.'");
            goto out;
        }
    if (strcmp(c->name, "host") == 0 || strcmp(c->name, "program") == 0) {
        r = bad(c->name, NULL, "the name is reserved");
        goto out;
    }
    for (int i = 1; i <= qtn__ncomps; i++)
        if (strcmp(qtn__comps[i]->name, c->name) == 0) {
            r = bad(c->name, NULL, "a component of that name is registered already");
            goto out;
        }
    if (qtn__ncomps >= QTN_COMPONENTS_MAX) {
        r = QTN_ELIMIT;
        goto out;
    }
    if (c->nentries && !c->entries) {
        r = bad(c->name, NULL, "entries missing");
        goto out;
    }
    if (c->nglobals && !c->globals) {
        r = bad(c->name, NULL, "globals missing");
        goto out;
    }
    for (uint32_t g = 0; g < c->nglobals; g++)
        if (!c->globals[g].addr || !c->globals[g].size || c->globals[g].size > (64u << 10)) {
            r = bad(c->name, NULL, "global %u: it needs an address and a size of 1 byte to 64 KiB",
                    g);
            goto out;
        }
    if (c->code_id) {
        size_t n = strlen(c->code_id);
        bool ok = n > 0 && n <= 64;
        for (const char *s = c->code_id; ok && *s; s++)
            ok = (unsigned char)*s > 0x20 && (unsigned char)*s < 0x7f && *s != '"' && *s != '\\';
        if (!ok) {
            r = bad(c->name, NULL, "code_id must be 1 to 64 printable characters, without "
                                   "spaces, quotes or backslashes");
            goto out;
        }
    }
    for (uint32_t j = 0; j < c->nentries; j++) {
        const qtn_entry *e = c->entries[j];
        if (!e || !e->name || !e->thunk) {
            r = bad(c->name, e ? e->name : NULL, "an entry needs a name and a thunk");
            goto out;
        }
        if (strlen(e->name) > 63) {
            r = bad(c->name, e->name, "names are at most 63 characters");
            goto out;
        }
        if (e->component != c) {
            r = bad(c->name, e->name, "the entry names another component");
            goto out;
        }
        if (e->nparams > QTN_PARAMS_MAX || e->ret > QTN_T_OUT) {
            r = bad(c->name, e->name, "too many parameters or a bad return type");
            goto out;
        }
        if (e->ret == QTN_T_ALLOCATED &&
            (!e->ret_param || e->ret_param->kind != QTN_K_ALLOCATED ||
             (r = check_allocated(c->name, e->name, e->params, e->nparams, e->ret_param, 0,
                                  false)))) {
            r = r ? r : bad(c->name, e->name, "an allocated result needs its ret_param");
            goto out;
        }
        if (e->ret == QTN_T_OUT && (r = check_out_result(c->name, e)))
            goto out;
        r = check_params(c->name, e->name, e->params, e->nparams, false, false, 0);
        if (r)
            goto out;
    }
    c->id = ++qtn__ncomps;
    qtn__comps[c->id] = c;
    qtn__sf_component(c->id, c->name);
out:
    pthread_mutex_unlock(&qtn__g.lock);
    return r;
}

/* ---- plans ------------------------------------------------------------------ */

static int comp_by_name(const char *s, size_t n) {
    for (int i = 1; i <= qtn__ncomps; i++)
        if (strlen(qtn__comps[i]->name) == n && memcmp(qtn__comps[i]->name, s, n) == 0)
            return i;
    return 0;
}

static int perr(char *err, size_t errlen, int line, int col, int code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int perr(char *err, size_t errlen, int line, int col, int code, const char *fmt, ...) {
    if (err && errlen) {
        int k = snprintf(err, errlen, "plan:%d:%d: ", line, col);
        va_list ap;
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < errlen)
            vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Tells the process whose header is h the plan `want` (by component). */
static void tell_plan(qtn__dhdr *h, const uint8_t *want) {
    for (int c = 1; c <= qtn__ncomps; c++)
        atomic_store_explicit(&h->plan[c], want[c], memory_order_relaxed);
    atomic_fetch_add_explicit(&h->plan_gen, 1, memory_order_release);
    atomic_fetch_add_explicit(&h->bell, 1, memory_order_release);
    qtn__wake_all(&h->bell);
}

/* Parses plan text into want[] (starting from the plan in force). */
static int plan_parse(const char *s, uint8_t *want, char *err, size_t errlen) {
    bool seen[QTN_COMPONENTS_MAX + 1] = {false};
    int line = 1;
    const char *bol = s;
    while (*s) {
        if (*s == '\n') {
            line++;
            bol = ++s;
            continue;
        }
        if (*s == ' ' || *s == '\t' || *s == ',' || *s == '\r' || *s == ';') {
            s++;
            continue;
        }
        if (*s == '#') {
            while (*s && *s != '\n')
                s++;
            continue;
        }
        const char *tok = s;
        int col = (int)(tok - bol) + 1;
        while (*s && !strchr(" \t,\r\n;#=", *s))
            s++;
        size_t nlen = (size_t)(s - tok);
        while (*s == ' ' || *s == '\t') /* "name = domain" reads as one assignment */
            s++;
        if (*s != '=')
            return perr(err, errlen, line, col, QTN_EPLAN,
                        "expected component=domain, got '%.*s'", (int)nlen, tok);
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        const char *val = s;
        while (*s && !strchr(" \t,\r\n;#", *s))
            s++;
        size_t vlen = (size_t)(s - val);
        int c = comp_by_name(tok, nlen);
        if (!c)
            return perr(err, errlen, line, col, QTN_ENOENT, "unknown component '%.*s'",
                        (int)nlen, tok);
        if (seen[c])
            return perr(err, errlen, line, col, QTN_EPLAN, "component '%.*s' assigned twice",
                        (int)nlen, tok);
        seen[c] = true;
        long d;
        if (vlen == 4 && memcmp(val, "host", 4) == 0) {
            d = 0;
        } else {
            char buf[16], *end;
            if (vlen == 0 || vlen >= sizeof buf)
                goto badval;
            memcpy(buf, val, vlen);
            buf[vlen] = 0;
            errno = 0;
            d = strtol(buf, &end, 10);
            if (*end || errno || d < 0 || d > QTN_DOMAINS_MAX)
                goto badval;
        }
        want[c] = (uint8_t)d;
        continue;
    badval:
        return perr(err, errlen, line, (int)(val - bol) + 1, QTN_EPLAN,
                    "domain '%.*s' for '%.*s' is not 'host' or a number 0..%d", (int)vlen, val,
                    (int)nlen, tok, QTN_DOMAINS_MAX);
    }
    return 0;
}

int qtn__plan_apply_locked(const uint8_t *want, char *err, size_t errlen) {
    bool need[QTN_DOMAINS_MAX + 1] = {false};
    for (int c = 1; c <= qtn__ncomps; c++)
        need[want[c]] = true;
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        if (!need[d])
            continue;
        int r = qtn__dom_start_locked(d, want); /* off or parked: a new process */
        if (r) {
            if (err && errlen)
                snprintf(err, errlen, "plan: cannot start domain %d: %s", d, qtn_strerror(r));
            return r; /* domains started so far idle until used */
        }
    }
    for (int c = 1; c <= qtn__ncomps; c++) {
        atomic_store_explicit(&qtn__plan[c], want[c], memory_order_release);
        qtn__sf_plan(c, want[c]);
    }
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__dom *dm = &qtn__doms[d];
        /* the serving incarnation; one starting now copies qtn__plan, and
         * dm->start orders that copy with this update */
        pthread_mutex_lock(&dm->start);
        uint32_t live = atomic_load(&dm->live);
        for (uint32_t s = 1; live && s <= QTN__SPARES_MAX; s++) { /* the spares too */
            qtn__inc *spare = qtn__inc_of(dm, live + s);
            if (!spare->prepared || spare->inc != live + s)
                continue;
            bool joins = false; /* a component with an init hook the spare did not set up */
            for (int c = 1; c <= qtn__ncomps; c++)
                joins |= want[c] == d && spare->setup[c] != d && qtn__comps[c]->init;
            if (joins) {
                /* the spare set itself up (init hooks, then the filter) for
                 * the plan before: it is replaced by one made for this plan */
                pthread_mutex_lock(&dm->lock);
                spare->prepared = false; /* no restart takes it now (they hold dm->start) */
                if (spare->pidfd >= 0 && !spare->dead)
                    syscall(SYS_pidfd_send_signal, spare->pidfd, SIGKILL, NULL, 0);
                pthread_mutex_unlock(&dm->lock);
            } else {
                tell_plan((qtn__dhdr *)spare->base, want);
            }
        }
        if (live)
            tell_plan((qtn__dhdr *)qtn__inc_of(dm, live)->base, want);
        pthread_mutex_unlock(&dm->start);
    }
    qtn__threads_replan_locked();
    return 0;
}

int qtn_plan_apply(const char *plan, char *err, size_t errlen) {
    if (err && errlen)
        err[0] = 0;
    if (!plan)
        return QTN_EINVAL;
    pthread_mutex_lock(&qtn__g.lock);
    int r;
    if (!qtn__g.inited || qtn__g.self != QTN_DOMAIN_HOST) {
        r = perr(err, errlen, 1, 1, QTN_ESTATE, "qtn_init() has not been called");
        goto out;
    }
    uint8_t want[QTN_COMPONENTS_MAX + 1];
    for (int c = 0; c <= QTN_COMPONENTS_MAX; c++)
        want[c] = atomic_load(&qtn__plan[c]);
    r = plan_parse(plan, want, err, errlen);
    if (!r)
        r = qtn__plan_apply_locked(want, err, errlen);
out:
    pthread_mutex_unlock(&qtn__g.lock);
    if (!r)
        qtn__crash_plan(); /* the crash handler tells the plan in force */
    return r;
}

int qtn_plan_domain(const char *component) {
    if (!component)
        return QTN_EINVAL;
    pthread_mutex_lock(&qtn__g.lock);
    int c = comp_by_name(component, strlen(component));
    int r = c ? atomic_load(&qtn__plan[c]) : QTN_ENOENT;
    pthread_mutex_unlock(&qtn__g.lock);
    return r;
}

int qtn_plan_format(char *buf, size_t len) {
    size_t need = 0;
    pthread_mutex_lock(&qtn__g.lock);
    for (int c = 1; c <= qtn__ncomps; c++) {
        char item[160];
        int d = atomic_load(&qtn__plan[c]);
        int k = d ? snprintf(item, sizeof item, "%s%s=%d", c > 1 ? " " : "", qtn__comps[c]->name, d)
                  : snprintf(item, sizeof item, "%s%s=host", c > 1 ? " " : "",
                             qtn__comps[c]->name);
        if (k < 0)
            continue;
        if (buf && need + (size_t)k < len)
            memcpy(buf + need, item, (size_t)k);
        need += (size_t)k;
    }
    pthread_mutex_unlock(&qtn__g.lock);
    if (buf && len)
        buf[need < len ? need : len - 1] = 0;
    return (int)need;
}
