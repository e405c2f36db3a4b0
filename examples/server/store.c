/* store.c - the documents (store.h): a chained hash table that doubles
 * when it is full, under a readers-writer lock. */
#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_VER_MAX 21 /* a uint64_t in decimal, and its NUL */

typedef struct doc {
    struct doc *next;
    uint64_t ver;
    size_t len;
    char *json;
    char id[];
} doc;

struct store {
    pthread_rwlock_t lock;
    doc **b;
    size_t nb, n;
    uint64_t gen;
    size_t bytes; /* the most the records of a snapshot take */
};

static uint64_t hash(const char *s) {
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211u;
    return h;
}

store *store_new(void) {
    store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->nb = 256;
    s->b = calloc(s->nb, sizeof *s->b);
    if (!s->b || pthread_rwlock_init(&s->lock, NULL)) {
        free(s->b);
        free(s);
        return NULL;
    }
    return s;
}

void store_free(store *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->nb; i++)
        for (doc *d = s->b[i], *next; d; d = next) {
            next = d->next;
            free(d->json);
            free(d);
        }
    free(s->b);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

int store_id_ok(const char *id) {
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return n >= 1 && n <= STORE_ID_MAX;
}

static doc **find(store *s, const char *id) {
    doc **p = &s->b[hash(id) & (s->nb - 1)];
    while (*p && strcmp((*p)->id, id) != 0)
        p = &(*p)->next;
    return p;
}

int store_get(store *s, const char *id, char **json, size_t *len, uint64_t *ver) {
    pthread_rwlock_rdlock(&s->lock);
    doc *d = *find(s, id);
    int r = -1;
    if (d) {
        char *copy = malloc(d->len + 1);
        r = -2;
        if (copy) {
            memcpy(copy, d->json, d->len + 1);
            *json = copy;
            *len = d->len;
            *ver = d->ver;
            r = 0;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return r;
}

/* Doubles the table; write lock held. A failure only leaves it fuller. */
static void grow(store *s) {
    size_t nb = s->nb * 2;
    doc **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < s->nb; i++)
        for (doc *d = s->b[i], *next; d; d = next) {
            next = d->next;
            doc **slot = &b[hash(d->id) & (nb - 1)];
            d->next = *slot;
            *slot = d;
        }
    free(s->b);
    s->b = b;
    s->nb = nb;
}

int store_put(store *s, const char *id, const char *json, size_t len, uint64_t *ver) {
    char *copy = malloc(len + 1);
    size_t idlen = strlen(id);
    doc *fresh = malloc(sizeof *fresh + idlen + 1);
    if (!copy || !fresh) {
        free(copy);
        free(fresh);
        return -2;
    }
    memcpy(copy, json, len);
    copy[len] = 0;
    pthread_rwlock_wrlock(&s->lock);
    doc **p = find(s, id);
    int created = !*p;
    char *old = NULL;
    if (created) {
        memcpy(fresh->id, id, idlen + 1);
        fresh->next = NULL;
        fresh->json = copy;
        fresh->len = len;
        *p = fresh;
        fresh = NULL;
        s->n++;
        s->bytes += idlen + 1 + STORE_VER_MAX + len + 1;
    } else {
        old = (*p)->json;
        s->bytes = s->bytes - (*p)->len + len;
        (*p)->json = copy;
        (*p)->len = len;
    }
    doc *d = *p;
    d->ver = ++s->gen;
    *ver = d->ver;
    if (s->n > s->nb)
        grow(s);
    pthread_rwlock_unlock(&s->lock);
    free(old);
    free(fresh);
    return created;
}

int store_del(store *s, const char *id) {
    pthread_rwlock_wrlock(&s->lock);
    doc **p = find(s, id);
    doc *d = *p;
    if (d) {
        *p = d->next;
        s->n--;
        s->bytes -= strlen(d->id) + 1 + STORE_VER_MAX + d->len + 1;
        s->gen++;
    }
    pthread_rwlock_unlock(&s->lock);
    if (!d)
        return -1;
    free(d->json);
    free(d);
    return 0;
}

int store_snapshot(store *s, char **buf, size_t *len, uint64_t *gen) {
    pthread_rwlock_rdlock(&s->lock);
    char *p = malloc(s->bytes ? s->bytes : 1);
    if (!p) {
        pthread_rwlock_unlock(&s->lock);
        return -2;
    }
    size_t at = 0;
    for (size_t i = 0; i < s->nb; i++)
        for (doc *d = s->b[i]; d; d = d->next) {
            size_t idlen = strlen(d->id) + 1;
            memcpy(p + at, d->id, idlen);
            at += idlen;
            at += (size_t)snprintf(p + at, STORE_VER_MAX, "%llu", (unsigned long long)d->ver) + 1;
            memcpy(p + at, d->json, d->len + 1);
            at += d->len + 1;
        }
    *buf = p;
    *len = at;
    *gen = s->gen;
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

size_t store_count(store *s) {
    pthread_rwlock_rdlock(&s->lock);
    size_t n = s->n;
    pthread_rwlock_unlock(&s->lock);
    return n;
}

uint64_t store_generation(store *s) {
    pthread_rwlock_rdlock(&s->lock);
    uint64_t g = s->gen;
    pthread_rwlock_unlock(&s->lock);
    return g;
}
