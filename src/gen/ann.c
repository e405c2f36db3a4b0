/* ann.c - the text of annotations: what `QTN_IN(n * 2)` and its kin become
 * after the preprocessor ("qtn in n * 2"), read into a parameter, and the
 * count expressions they carry, checked before they are copied into
 * generated C. Pure string work, so it is fuzzed on its own. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ann.h"
#include "quarantine.h"

static int fail(char *err, size_t len, const char *msg, const char *arg) {
    if (err && len)
        snprintf(err, len, msg, arg);
    return -1;
}

int qg_ann_apply(const char *text, qg_param *p, char *err, size_t len) {
    if (strncmp(text, "qtn ", 4) != 0)
        return 0; /* someone else's annotation */
    const char *s = text + 4;
    char w[16];
    size_t i = 0;
    while (*s && *s != ' ' && i + 1 < sizeof w)
        w[i++] = *s++;
    w[i] = 0;
    if (*s && *s != ' ')
        return fail(err, len, "'%s...' is no annotation", w);
    while (*s == ' ')
        s++;
    int kind = 0;
    bool bytes = false, counted = false;
    if (!strcmp(w, "in")) kind = QTN_K_IN, counted = true;
    else if (!strcmp(w, "out")) kind = QTN_K_OUT, counted = true;
    else if (!strcmp(w, "inout")) kind = QTN_K_INOUT, counted = true;
    else if (!strcmp(w, "in_bytes")) kind = QTN_K_IN, bytes = counted = true;
    else if (!strcmp(w, "out_bytes")) kind = QTN_K_OUT, bytes = counted = true;
    else if (!strcmp(w, "inout_bytes")) kind = QTN_K_INOUT, bytes = counted = true;
    else if (!strcmp(w, "string")) kind = QTN_K_STRING;
    else if (!strcmp(w, "handle")) kind = QTN_K_HANDLE;
    else if (!strcmp(w, "owned")) kind = QTN_K_HANDLE, p->owned = true;
    else if (!strcmp(w, "callback")) kind = QTN_K_CALLBACK;
    else if (!strcmp(w, "allocated")) {
        if (p->kind && p->kind != QTN_K_ALLOCATED)
            return fail(err, len, "two annotations say what crosses (%s is the second)", w);
        return qg_ann_allocated(s, p, err, len);
    } else if (!strcmp(w, "active")) {
        free(p->active);
        p->active = strdup(s);
        return 0;
    } else if (!strcmp(w, "each")) {
        bool num = *s && s[strspn(s, "0123456789")] == 0;
        if (strcmp(s, "string") && !num)
            return fail(err, len, "QTN_EACH(%s): say QTN_EACH(string) or QTN_EACH(count), a "
                        "number", s);
        free(p->each);
        p->each = strdup(s);
        return 0;
    } else if (!strcmp(w, "nullable")) {
        p->nullable = true;
        return 0;
    } else if (!strcmp(w, "field") || !strcmp(w, "component") || !strcmp(w, "fault") ||
               !strcmp(w, "deadline")) {
        return 0; /* read where they belong */
    } else if (!strcmp(w, "actual")) {
        free(p->actual);
        p->actual = NULL;
        if (!strcmp(s, "return"))
            p->actual = strdup("return");
        else if (s[0] == '*') {
            const char *n = s + 1 + strspn(s + 1, " ");
            size_t k = strlen(n);
            for (size_t j = 0; j < k; j++)
                if (!isalnum((unsigned char)n[j]) && n[j] != '_')
                    k = 0;
            if (!k || isdigit((unsigned char)n[0]))
                return fail(err, len, "QTN_ACTUAL(%s): say QTN_ACTUAL(return) or QTN_ACTUAL(*param)", s);
            p->actual = strdup(n);
        } else
            return fail(err, len, "QTN_ACTUAL(%s): say QTN_ACTUAL(return) or QTN_ACTUAL(*param)", s);
        return 0;
    } else {
        return fail(err, len, "'%s' is no annotation for a parameter or field", w);
    }
    if (p->kind && p->kind != kind)
        return fail(err, len, "two annotations say what crosses (%s is the second)", w);
    p->kind = kind;
    p->bytes = bytes;
    if (counted) {
        if (!*s)
            return fail(err, len, "the count of %s is empty", w);
        free(p->count);
        p->count = strdup(s);
    }
    return 0;
}

static bool ident_n(const char *s, size_t n) {
    if (!n || isdigit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

/* The next comma-separated item of s, trimmed: its start and length. */
static const char *item(const char **s, size_t *n) {
    const char *b = *s + strspn(*s, " \t");
    const char *e = b + strcspn(b, ",");
    *s = *e ? e + 1 : e;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *n = (size_t)(e - b);
    return b;
}

int qg_ann_allocated(const char *text, qg_param *p, char *err, size_t len) {
    static const char *const usage =
        "QTN_ALLOCATED(%s): say QTN_ALLOCATED(count, free_fn) or QTN_ALLOCATED(count, free_fn, "
        "alloc_fn), the count being *param, return or string";
    const char *s = text;
    size_t nc, nf, na = 0;
    const char *c = item(&s, &nc), *f = item(&s, &nf), *a = *s ? item(&s, &na) : NULL;
    if (*s || !nc || !ident_n(f, nf) || (a && !ident_n(a, na)))
        return fail(err, len, usage, text);
    free(p->actual), free(p->free_fn), free(p->alloc_fn);
    p->actual = p->free_fn = p->alloc_fn = NULL;
    p->alloc_string = false;
    if (nc == 6 && !memcmp(c, "string", 6))
        p->alloc_string = true;
    else if (nc == 6 && !memcmp(c, "return", 6))
        p->actual = strdup("return");
    else if (c[0] == '*') {
        size_t k = 1 + strspn(c + 1, " ");
        if (!ident_n(c + k, nc - k))
            return fail(err, len, usage, text);
        p->actual = strndup(c + k, nc - k);
    } else
        return fail(err, len, usage, text);
    p->free_fn = strndup(f, nf);
    if (a)
        p->alloc_fn = strndup(a, na);
    p->kind = QTN_K_ALLOCATED;
    return 0;
}

/* The length of the assignment operator ending with the '=' at s ("=", "+=",
 * "<<=" ...), or 0 when it is part of a comparison (==, !=, <=, >=). */
static size_t assign_len(const char *e, const char *s) {
    if (s[1] == '=')
        return 0; /* == (its second '=' is skipped by the caller) */
    char b = s > e ? s[-1] : 0, bb = s > e + 1 ? s[-2] : 0;
    if (b == '!')
        return 0;
    if (b == '<' || b == '>')
        return bb == b ? 3 : 0; /* <<= >>= assign; <= >= compare */
    if (b && strchr("+-*/%&|^", b))
        return 2;
    return 1;
}

int qg_count_check(const char *e, bool (*name_ok)(void *ctx, const char *id, size_t n),
                   void *ctx, char *err, size_t len) {
    int depth = 0, sizeof_depth = -1;
    bool in_sizeof = false, any = false;
    for (const char *s = e; *s;) {
        unsigned char c = (unsigned char)*s;
        if (c == '(' || c == '[') {
            depth++;
            s++;
            continue;
        }
        if (c == ')' || c == ']') {
            if (--depth < 0)
                return fail(err, len, "unbalanced '%s'", c == ')' ? ")" : "]");
            if (depth == sizeof_depth)
                in_sizeof = false, sizeof_depth = -1;
            s++;
            continue;
        }
        if (isdigit(c)) {
            while (isalnum((unsigned char)*s) || *s == '.')
                s++; /* a number with its suffix */
            any = true;
            continue;
        }
        if (isalpha(c) || c == '_') {
            const char *id = s;
            while (isalnum((unsigned char)*s) || *s == '_')
                s++;
            size_t n = (size_t)(s - id);
            any = true;
            if (n == 6 && !memcmp(id, "sizeof", 6)) {
                in_sizeof = true;
                sizeof_depth = depth;
                continue;
            }
            if (in_sizeof)
                continue; /* a type name */
            if (name_ok && !name_ok(ctx, id, n)) {
                char name[64];
                snprintf(name, sizeof name, "%.*s", (int)(n < 63 ? n : 63), id);
                return fail(err, len, "unknown name '%s'", name);
            }
            continue;
        }
        if (!strchr(" \t+-*/%<>&|^~!?:.=", c)) {
            char bad[2] = {(char)c, 0};
            return fail(err, len, "'%s' has no place in a count (an expression over parameters)",
                        c >= 0x20 && c < 0x7f ? bad : "?");
        }
        if ((c == '+' || c == '-') && s[1] == s[0]) { /* C reads "n+++m" as "n++ + m" too */
            char op[3] = {(char)c, (char)c, 0};
            fail(err, len, "has a side effect ('%s'): a count only reads the parameters", op);
            return -2;
        }
        if (c == '=') {
            size_t k = assign_len(e, s);
            if (k) {
                char op[4];
                snprintf(op, sizeof op, "%.*s", (int)k, s + 1 - k);
                fail(err, len, k == 1 ? "has a side effect ('%s'): a count only reads the "
                                        "parameters (to compare, say ==)"
                                      : "has a side effect ('%s'): a count only reads the "
                                        "parameters", op);
                return -2;
            }
            s += s[1] == '='; /* == */
        }
        s++;
    }
    if (depth)
        return fail(err, len, "unbalanced '%s'", "(");
    if (!any)
        return fail(err, len, "a count needs a value%s", "");
    return 0;
}
