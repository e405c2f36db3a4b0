/* cache.c - the response cache (component `cache`, cache.h).
 *
 * A chained hash table under one mutex, with a FIFO of entries for
 * eviction. Evicted entries are retired, not freed at once: their fields are
 * poisoned and they wait in a small ring before free() may hand their memory
 * out again (as AddressSanitizer's quarantine does), so that a use after free
 * reads poison and crashes instead of quietly copying another entry's bytes.
 *
 * BUG `cache` (SERVER_BUGS=cache), after the use-after-free pattern of Lu et
 * al.: cache_get() finds the entry under the lock, then unlocks *before*
 * copying it, thinking the copy needs no lock. Meanwhile a cache_put() on
 * another thread evicts that entry and retires it; the reader then follows
 * the poisoned data pointer and dies of SIGSEGV. One connection never gets
 * there (its thread is the only one in the cache); concurrent GETs of
 * cached bodies and PUTs that evict do. SERVER_BUG_WINDOW_US sleeps between
 * the unlock and the copy. The fix is the copy under the lock (what the code
 * does with the bug off). */
#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bugs.h"

#define CACHE_BUCKETS 1024
#define CACHE_RETIRED 256 /* evicted entries held back before free() */
#define POISON 0xdb

typedef struct centry {
    struct centry *next;  /* in its hash chain */
    struct centry *older; /* toward the FIFO's head (the oldest) */
    struct centry *newer;
    uint64_t ver;
    size_t len;
    char *data;
    char key[CACHE_KEY_MAX];
} centry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static centry *buckets[CACHE_BUCKETS];
static centry *oldest, *newest;
static int64_t nentries;
static centry *retired[CACHE_RETIRED];
static unsigned retired_next;

static uint32_t hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static centry **find(const char *key) {
    centry **p = &buckets[hash(key) % CACHE_BUCKETS];
    while (*p && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

/* Takes e out of the table and the FIFO; lock held. */
static void unlink_entry(centry *e) {
    centry **p = find(e->key);
    *p = e->next;
    if (e->older)
        e->older->newer = e->newer;
    else
        oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        newest = e->older;
    nentries--;
}

/* Poisons e and holds it back; frees the one it pushes out. Lock held. */
static centry *retire(centry *e) {
    memset(e->data, POISON, e->len);
    free(e->data);
    memset(e, POISON, sizeof *e);
    centry *out = retired[retired_next];
    retired[retired_next] = e;
    retired_next = (retired_next + 1) % CACHE_RETIRED;
    return out;
}

int64_t cache_get(const char *key, uint64_t ver, char *out, size_t cap) {
    pthread_mutex_lock(&cache_lock);
    centry *e = *find(key);
    if (!e || e->ver != ver || e->len > cap) {
        pthread_mutex_unlock(&cache_lock);
        return -1;
    }
    if (srv_bug(SRV_BUG_CACHE)) {
        /* BUG (use after free): the lock is dropped while e is still in use;
         * a cache_put() may evict and retire e before the copy below */
        pthread_mutex_unlock(&cache_lock);
        srv_bug_window();
        size_t n = e->len < cap ? e->len : cap;
        memcpy(out, e->data, n);
        return (int64_t)n;
    }
    memcpy(out, e->data, e->len);
    int64_t n = (int64_t)e->len;
    pthread_mutex_unlock(&cache_lock);
    return n;
}

int cache_put(const char *key, uint64_t ver, const char *data, size_t n, uint32_t max_entries) {
    size_t klen = strlen(key);
    if (klen >= CACHE_KEY_MAX)
        return -1;
    centry *e = calloc(1, sizeof *e);
    char *copy = malloc(n ? n : 1);
    if (!e || !copy) {
        free(e);
        free(copy);
        return -1;
    }
    memcpy(copy, data, n);
    memcpy(e->key, key, klen + 1);
    e->ver = ver;
    e->len = n;
    e->data = copy;
    centry *to_free[CACHE_RETIRED];
    size_t nfree = 0;
    pthread_mutex_lock(&cache_lock);
    centry *old = *find(key);
    if (old) {
        unlink_entry(old);
        to_free[nfree++] = retire(old);
    }
    centry **slot = find(key);
    e->next = *slot;
    *slot = e;
    e->older = newest;
    if (newest)
        newest->newer = e;
    else
        oldest = e;
    newest = e;
    nentries++;
    while (oldest && nentries > (int64_t)(max_entries ? max_entries : 1) && nfree < CACHE_RETIRED) {
        centry *victim = oldest;
        unlink_entry(victim);
        to_free[nfree++] = retire(victim);
    }
    pthread_mutex_unlock(&cache_lock);
    for (size_t i = 0; i < nfree; i++)
        free(to_free[i]);
    return 0;
}

int64_t cache_count(void) {
    pthread_mutex_lock(&cache_lock);
    int64_t n = nentries;
    pthread_mutex_unlock(&cache_lock);
    return n;
}
