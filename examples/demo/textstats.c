/* textstats.c - the textstats component: real functions, their descriptors
 * and hand-written stubs. Each public function is a stub; ts_*_real is the
 * function itself. */
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "textstats.h"

/* ---- the real functions ------------------------------------------------------ */

/* ASCII only, so the answer cannot depend on the locale of the process the
 * component happens to run in. */
static bool is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '\'';
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static char to_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* The first word at or after p and its length, or NULL if there is none. */
static const char *next_word(const char *p, size_t *len) {
    while (*p && !is_word_char(*p))
        p++;
    if (!*p)
        return NULL;
    const char *q = p;
    while (*q && is_word_char(*q))
        q++;
    *len = (size_t)(q - p);
    return p;
}

static int ts_count_words_real(const char *text) {
    int n = 0;
    size_t len;
    for (const char *w = text; (w = next_word(w, &len)) != NULL; w += len)
        n++;
    return n;
}

static int ts_histogram_real(const char *text, uint32_t *hist, size_t nbins) {
    /* a direct call gets the caller's buffer as it is, so clear it here even
     * though a crossing starts it zeroed */
    if (nbins)
        memset(hist, 0, nbins * sizeof *hist);
    int n = 0;
    for (const char *p = text; *p; p++) {
        char c = to_lower(*p);
        if (c < 'a' || c > 'z' || (size_t)(c - 'a') >= nbins)
            continue;
        hist[c - 'a']++;
        n++;
    }
    return n;
}

static size_t ts_normalize_real(char *buf, size_t len) {
    size_t out = 0;
    bool gap = false;
    for (size_t i = 0; i < len; i++) {
        if (is_space(buf[i])) {
            gap = true;
            continue;
        }
        if (gap && out > 0)
            buf[out++] = ' ';
        gap = false;
        buf[out++] = to_lower(buf[i]);
    }
    return out;
}

static int ts_each_word_real(const char *text, int (*fn)(void *ctx, const char *word, size_t len),
                             void *ctx) {
    size_t len;
    for (const char *w = text; (w = next_word(w, &len)) != NULL; w += len) {
        int r = fn(ctx, w, len);
        if (r)
            return r;
    }
    return 0;
}

static int32_t ts_pid_real(void) { return (int32_t)getpid(); }

/* The demo's bug: it forgets that a text may hold no word at all, and then
 * reads through a NULL pointer. Not static, so fault reports can name it. */
int ts_longest_real(const char *text, char *out, size_t cap);
int ts_longest_real(const char *text, char *out, size_t cap) {
    const char *best = NULL, *p;
    size_t blen = 0, len;
    for (p = next_word(text, &len); p; p = next_word(p + len, &len))
        if (len > blen) {
            best = p;
            blen = len;
        }
    volatile const char *first = best;
    out[0] = first[0]; /* NULL when there was no word */
    size_t n = blen < cap - 1 ? blen : cap - 1;
    memcpy(out, best, n);
    out[n] = 0;
    return (int)blen;
}

/* ---- descriptors ------------------------------------------------------------ */

#define THUNK(name) static void name##_thunk(qtn_val *a, qtn_val *r)

THUNK(ts_count_words) { r->i = ts_count_words_real(a[0].p); }
THUNK(ts_histogram) { r->i = ts_histogram_real(a[0].p, a[1].p, a[2].u); }
THUNK(ts_normalize) { r->u = ts_normalize_real(a[0].p, a[1].u); }
THUNK(ts_each_word) {
    r->i = ts_each_word_real(a[0].p, (int (*)(void *, const char *, size_t))a[1].p, a[2].p);
}
THUNK(ts_pid) { (void)a; r->i = ts_pid_real(); }
THUNK(ts_longest) { r->i = ts_longest_real(a[0].p, a[1].p, a[2].u); }

static const qtn_param p_count_words[] = {QTN_P_STRING};
static const qtn_param p_histogram[] = {QTN_P_STRING, QTN_P_BUF(QTN_K_OUT, sizeof(uint32_t), 2),
                                        QTN_P_SCALAR(QTN_T_U64)};
/* Only the first `return value` bytes go back: the rest of the buffer is
 * stale, and copying it would cost for nothing. */
static const qtn_param p_normalize[] = {
    {.kind = QTN_K_INOUT, .elem_size = 1, .len_kind = QTN_LEN_PARAM, .len = 1,
     .actual = QTN_ACTUAL_RET},
    QTN_P_SCALAR(QTN_T_U64)};
/* The word is not NUL-terminated, so it crosses as a buffer whose length is
 * the callback's third parameter; ctx is the caller's and goes back as is. */
static const qtn_param cbp_word[] = {QTN_P_HANDLE, QTN_P_BUF(QTN_K_IN, 1, 2),
                                     QTN_P_SCALAR(QTN_T_U64)};
static const qtn_sig sig_word = {QTN_T_I32, 3, cbp_word};
static const qtn_param p_each_word[] = {QTN_P_STRING, QTN_P_CALLBACK(&sig_word), QTN_P_HANDLE};
static const qtn_param p_longest[] = {QTN_P_STRING, QTN_P_BUF(QTN_K_OUT, 1, 2),
                                      QTN_P_SCALAR(QTN_T_U64)};

#define ENTRY(nm, rt, params_, ...)                                                      \
    static const qtn_entry nm##_entry = {.name = #nm, .component = &textstats_component,   \
                                         .thunk = nm##_thunk, .ret = rt,                   \
                                         .nparams = sizeof params_ / sizeof params_[0],    \
                                         .params = params_, .fault = __VA_ARGS__}
#define ENTRY0(nm, rt, ...)                                                               \
    static const qtn_entry nm##_entry = {.name = #nm, .component = &textstats_component,   \
                                         .thunk = nm##_thunk, .ret = rt, .fault = __VA_ARGS__}

ENTRY(ts_count_words, QTN_T_I32, p_count_words, {.i = -1});
ENTRY(ts_histogram, QTN_T_I32, p_histogram, {.i = -1});
ENTRY(ts_normalize, QTN_T_U64, p_normalize, {.u = (uint64_t)(size_t)-1});
ENTRY(ts_each_word, QTN_T_I32, p_each_word, {.i = -1});
ENTRY0(ts_pid, QTN_T_I32, {.i = -1});
ENTRY(ts_longest, QTN_T_I32, p_longest, {.i = -1});

static const qtn_entry *const ts_entries[] = {&ts_count_words_entry, &ts_histogram_entry,
                                              &ts_normalize_entry, &ts_each_word_entry,
                                              &ts_pid_entry, &ts_longest_entry};

qtn_component textstats_component = {.name = "textstats",
                                     .nentries = sizeof ts_entries / sizeof ts_entries[0],
                                     .entries = ts_entries};

/* ---- stubs --------------------------------------------------------------------- */

/* Calls from code outside any component. */
#define EDGE(name) static qtn_edge name##_edge = QTN_EDGE_INIT(NULL, &name##_entry)

EDGE(ts_count_words);
EDGE(ts_histogram);
EDGE(ts_normalize);
EDGE(ts_each_word);
EDGE(ts_pid);
EDGE(ts_longest);

int ts_count_words(const char *text) {
    if (QTN_DIRECT(&ts_count_words_edge))
        return ts_count_words_real(text);
    qtn_val v[1] = {{.p = (void *)text}}, r;
    qtn_call(&ts_count_words_edge, v, &r);
    return (int)r.i;
}

int ts_histogram(const char *text, uint32_t *hist, size_t nbins) {
    if (QTN_DIRECT(&ts_histogram_edge))
        return ts_histogram_real(text, hist, nbins);
    qtn_val v[3] = {{.p = (void *)text}, {.p = hist}, {.u = nbins}}, r;
    qtn_call(&ts_histogram_edge, v, &r);
    return (int)r.i;
}

size_t ts_normalize(char *buf, size_t len) {
    if (QTN_DIRECT(&ts_normalize_edge))
        return ts_normalize_real(buf, len);
    qtn_val v[2] = {{.p = buf}, {.u = len}}, r;
    qtn_call(&ts_normalize_edge, v, &r);
    return (size_t)r.u;
}

int ts_each_word(const char *text, int (*fn)(void *ctx, const char *word, size_t len),
                 void *ctx) {
    if (QTN_DIRECT(&ts_each_word_edge))
        return ts_each_word_real(text, fn, ctx);
    qtn_val v[3] = {{.p = (void *)text}, {.p = (void *)fn}, {.p = ctx}}, r;
    qtn_call(&ts_each_word_edge, v, &r);
    return (int)r.i;
}

int32_t ts_pid(void) {
    if (QTN_DIRECT(&ts_pid_edge))
        return ts_pid_real();
    qtn_val r;
    qtn_call(&ts_pid_edge, NULL, &r);
    return (int32_t)r.i;
}

int ts_longest(const char *text, char *out, size_t cap) {
    if (QTN_DIRECT(&ts_longest_edge))
        return ts_longest_real(text, out, cap);
    qtn_val v[3] = {{.p = (void *)text}, {.p = out}, {.u = cap}}, r;
    qtn_call(&ts_longest_edge, v, &r);
    return (int)r.i;
}
