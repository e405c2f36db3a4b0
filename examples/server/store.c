/* store.c - the documents (store.h): a chained hash table that doubles
 * when it is full, under a readers-writer lock. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

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
    int log;      /* the file puts and deletes are appended to, -1: none */
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
    s->log = -1;
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
    if (s->log >= 0)
        close(s->log);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

/* ---- the file --------------------------------------------------------------
 * One record a change: "P <id> <length>\n<json>\n" or "D <id>\n". */

/* Appends one record with one write (write lock held). */
static void log_put(store *s, const char *id, const char *json, size_t len) {
    if (s->log < 0)
        return;
    char head[STORE_ID_MAX + 40];
    int h = snprintf(head, sizeof head, "P %s %zu\n", id, len);
    struct iovec v[3] = {{head, (size_t)h}, {(void *)json, len}, {"\n", 1}};
    if (writev(s->log, v, 3) != (ssize_t)(h + len + 1))
        fprintf(stderr, "server: the document file: %s\n", strerror(errno));
}

static void log_del(store *s, const char *id) {
    if (s->log < 0)
        return;
    char rec[STORE_ID_MAX + 8];
    int n = snprintf(rec, sizeof rec, "D %s\n", id);
    if (write(s->log, rec, (size_t)n) != n)
        fprintf(stderr, "server: the document file: %s\n", strerror(errno));
}

int store_persist(store *s, const char *path, char *err, size_t len) {
    FILE *f = fopen(path, "re");
    if (!f && errno != ENOENT) {
        snprintf(err, len, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[STORE_ID_MAX + 64], id[STORE_ID_MAX + 1];
    long records = 0;
    while (f && fgets(line, sizeof line, f)) {
        size_t n;
        if (sscanf(line, "P %128s %zu", id, &n) == 2 && store_id_ok(id) && n < (1u << 30)) {
            char *json = malloc(n + 1);
            if (!json || fread(json, 1, n + 1, f) != n + 1 || json[n] != '\n') {
                free(json);
                break; /* cut short by a crash: the rest is not there */
            }
            uint64_t ver;
            if (store_put(s, id, json, n, &ver) < 0) {
                free(json);
                fclose(f);
                snprintf(err, len, "%s: out of memory", path);
                return -1;
            }
            free(json);
        } else if (sscanf(line, "D %128s", id) == 1 && store_id_ok(id)) {
            store_del(s, id);
        } else {
            break;
        }
        records++;
    }
    if (f)
        fclose(f);
    /* compacted: the documents alone, in a new file put in its place */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, len, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    s->log = fd;
    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < s->nb; i++)
        for (doc *d = s->b[i]; d; d = d->next)
            log_put(s, d->id, d->json, d->len);
    pthread_rwlock_unlock(&s->lock);
    if (fsync(fd) < 0 || rename(tmp, path) < 0) {
        snprintf(err, len, "%s: %s", path, strerror(errno));
        close(fd);
        s->log = -1;
        unlink(tmp);
        return -1;
    }
    int afd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    close(fd);
    s->log = afd;
    if (afd < 0) {
        snprintf(err, len, "%s: %s", path, strerror(errno));
        return -1;
    }
    (void)records;
    return 0;
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
    log_put(s, id, json, len);
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
        log_del(s, d->id);
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
