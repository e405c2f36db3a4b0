/* query.c - queries over a snapshot of the documents (component `query`,
 * query.h).
 *
 * The index is the snapshot parsed: one jansson value per document, and a
 * hash table by id. It is shared by the queries of one generation and
 * reference-counted (`cur` holds one reference, each query using it
 * another, and the last one out frees it). A new generation's index is
 * built from the current one: documents whose version has not changed are
 * shared, not parsed again.
 *
 * BUG `query` (SERVER_BUGS=query), after the order violations of Lu et al.
 * (Mozilla's thread that reads a field before the code that created it has
 * stored it): a query that finds no index for its generation builds one and,
 * with the bug on, makes it current first and stores its table second. A
 * concurrent query of the same generation that takes the index in between
 * walks its `n` documents through a table that is still NULL, and dies of
 * SIGSEGV. One connection never gets there (its queries come one after
 * another); concurrent queries do, now and then, after a PUT has moved the
 * generation on. SERVER_BUG_WINDOW_US sleeps between the two stores, which
 * makes it likely. The fix is the order: table, then publication (what the
 * code does with the bug off).
 */
#include "query.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bugs.h"

typedef struct qdoc {
    char *id;
    uint64_t ver;
    json_t *doc; /* NULL if its text did not parse */
} qdoc;

typedef struct qindex {
    uint64_t gen;
    size_t n;
    qdoc *docs;      /* n of them, in the snapshot's order */
    uint32_t *slots; /* nslots: 1 + the index of a doc by id, 0 for none */
    size_t nslots;
    int refs;
} qindex;

static pthread_mutex_t ix_lock = PTHREAD_MUTEX_INITIALIZER;
static qindex *cur;

static void release(qindex *ix) {
    if (!ix)
        return;
    pthread_mutex_lock(&ix_lock);
    int left = --ix->refs;
    pthread_mutex_unlock(&ix_lock);
    if (left)
        return;
    for (size_t i = 0; ix->docs && i < ix->n; i++) {
        free(ix->docs[i].id);
        json_decref(ix->docs[i].doc);
    }
    free(ix->docs);
    free(ix->slots);
    free(ix);
}

/* Makes ix the current index, unless a newer one is. Returns the index it
 * replaced, whose reference the caller must release. */
static qindex *publish(qindex *ix) {
    pthread_mutex_lock(&ix_lock);
    qindex *old = NULL;
    if (!cur || cur->gen <= ix->gen) {
        old = cur;
        cur = ix;
        ix->refs++; /* the reference of `cur` */
    }
    pthread_mutex_unlock(&ix_lock);
    return old;
}

static uint32_t hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* The doc of ix with this id, or NULL. */
static const qdoc *lookup(const qindex *ix, const char *id) {
    if (!ix->nslots)
        return NULL;
    for (size_t i = hash(id) & (ix->nslots - 1);; i = (i + 1) & (ix->nslots - 1)) {
        uint32_t s = ix->slots[i];
        if (!s)
            return NULL;
        if (!strcmp(ix->docs[s - 1].id, id))
            return &ix->docs[s - 1];
    }
}

static size_t count_records(const char *docs, size_t dlen) {
    size_t n = 0, nuls = 0;
    for (size_t i = 0; i < dlen; i++)
        if (!docs[i] && ++nuls % 3 == 0)
            n++;
    return n;
}

/* Parses the n documents of the snapshot into *docs and their hash table
 * into *slots (of *nslots): a document whose version prev has already
 * parsed is shared with it (jansson's reference counts are atomic), the
 * others are parsed. Returns 0 or -1 out of memory. */
static int build(size_t n, const char *docs, size_t dlen, const qindex *prev, qdoc **out,
                 uint32_t **out_slots, size_t *out_nslots) {
    size_t nslots = 16;
    while (nslots < 2 * n)
        nslots *= 2;
    qdoc *d = calloc(n ? n : 1, sizeof *d);
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!d || !slots) {
        free(d);
        free(slots);
        return -1;
    }
    const char *p = docs, *end = docs + dlen;
    size_t got = 0;
    for (; got < n; got++) {
        const char *id = p, *ver = id + strnlen(id, (size_t)(end - id)) + 1;
        const char *text = ver + strnlen(ver, (size_t)(end - ver)) + 1;
        size_t tlen = strnlen(text, (size_t)(end - text));
        p = text + tlen + 1;
        qdoc *q = &d[got];
        q->ver = strtoull(ver, NULL, 10);
        if (!(q->id = strdup(id)))
            break;
        const qdoc *old = prev ? lookup(prev, id) : NULL;
        q->doc =
            old && old->ver == q->ver ? json_incref(old->doc) : json_loadb(text, tlen, 0, NULL);
        size_t i = hash(id) & (nslots - 1);
        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = (uint32_t)got + 1;
    }
    if (got < n) {
        for (size_t i = 0; i < got; i++) {
            free(d[i].id);
            json_decref(d[i].doc);
        }
        free(d);
        free(slots);
        return -1;
    }
    *out = d;
    *out_slots = slots;
    *out_nslots = nslots;
    return 0;
}

/* The index of generation gen, with a reference for the caller; NULL when
 * out of memory. */
static qindex *index_for(const char *docs, size_t dlen, uint64_t gen) {
    pthread_mutex_lock(&ix_lock);
    qindex *prev = cur;
    if (prev)
        prev->refs++;
    pthread_mutex_unlock(&ix_lock);
    if (prev && prev->gen == gen)
        return prev;
    qindex *ix = calloc(1, sizeof *ix);
    if (!ix) {
        release(prev);
        return NULL;
    }
    ix->gen = gen;
    ix->refs = 1;
    size_t n = count_records(docs, dlen);
    qdoc *d;
    uint32_t *slots;
    size_t nslots;
    int built = build(n, docs, dlen, prev, &d, &slots, &nslots);
    release(prev);
    if (built) {
        free(ix);
        return NULL;
    }
    if (srv_bug(SRV_BUG_QUERY)) {
        /* BUG (order violation): made current before its table is in; a
         * query of this generation that takes it now walks n NULL entries */
        ix->n = n;
        qindex *old = publish(ix);
        srv_bug_window();
        ix->slots = slots;
        ix->nslots = nslots;
        ix->docs = d;
        release(old);
        return ix;
    }
    ix->slots = slots;
    ix->nslots = nslots;
    ix->docs = d;
    ix->n = n;
    release(publish(ix));
    return ix;
}

typedef struct answer {
    char *p;
    size_t n, cap;
    int full;
} answer;

static void put(answer *a, const char *s, size_t n) {
    if (a->full || n > a->cap - a->n) {
        a->full = 1;
        return;
    }
    memcpy(a->p + a->n, s, n);
    a->n += n;
}

/* An id as a JSON string (ids are plain, but the snapshot is not trusted). */
static void put_id(answer *a, const char *id) {
    put(a, "\"", 1);
    for (const char *s = id; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\' || c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            put(a, e, 6);
        } else {
            put(a, s, 1);
        }
    }
    put(a, "\"", 1);
}

static int by_id(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int matches(const qdoc *d, const char *field, json_t *equals, const char *prefix,
                   size_t plen) {
    json_t *v = d->doc ? json_object_get(d->doc, field) : NULL;
    if (!v)
        return 0;
    if (equals)
        return json_equal(v, equals);
    return json_is_string(v) && json_string_length(v) >= plen &&
           !memcmp(json_string_value(v), prefix, plen);
}

int64_t query_run(const char *q, size_t qlen, const char *docs, size_t dlen, uint64_t gen,
                  char *out, size_t cap, char *err, size_t errcap) {
    if (errcap)
        err[0] = 0;
    json_error_t je;
    json_t *query = json_loadb(q, qlen, 0, &je);
    const char *field = NULL, *prefix = NULL;
    json_t *equals = NULL, *limit = NULL;
    if (query) {
        field = json_string_value(json_object_get(query, "field"));
        equals = json_object_get(query, "equals");
        prefix = json_string_value(json_object_get(query, "prefix"));
        limit = json_object_get(query, "limit");
    }
    const char *why = NULL;
    if (!query)
        why = je.text;
    else if (!json_is_object(query))
        why = "a query is a JSON object";
    else if (!field)
        why = "\"field\" must be a string";
    else if (!equals == !prefix)
        why = "give one of \"equals\" or \"prefix\" (a string)";
    else if (limit && (!json_is_integer(limit) || json_integer_value(limit) < 0))
        why = "\"limit\" must be an integer, 0 or more";
    if (why) {
        if (errcap)
            snprintf(err, errcap, "%s", why);
        json_decref(query);
        return -1;
    }
    size_t max = limit ? (size_t)json_integer_value(limit) : SIZE_MAX;
    size_t plen = prefix ? strlen(prefix) : 0;
    qindex *ix = index_for(docs, dlen, gen);
    if (!ix) {
        json_decref(query);
        return -2;
    }
    /* the ids that match, in id order */
    const char **ids = malloc((ix->n ? ix->n : 1) * sizeof *ids);
    if (!ids) {
        release(ix);
        json_decref(query);
        return -2;
    }
    size_t count = 0;
    for (size_t i = 0; i < ix->n; i++)
        if (matches(&ix->docs[i], field, equals, prefix, plen))
            ids[count++] = ix->docs[i].id;
    qsort(ids, count, sizeof *ids, by_id);
    answer a = {out, 0, cap, 0};
    char head[64];
    put(&a, "{\"ids\":[", 8);
    for (size_t i = 0; i < count && i < max; i++) {
        if (i)
            put(&a, ",", 1);
        put_id(&a, ids[i]);
    }
    free(ids);
    int hn = snprintf(head, sizeof head, "],\"count\":%zu}", count);
    put(&a, head, (size_t)hn);
    release(ix);
    json_decref(query);
    return a.full ? -2 : (int64_t)a.n;
}
