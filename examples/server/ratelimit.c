/* ratelimit.c - token buckets per client (component `ratelimit`,
 * ratelimit.h): an open-addressed table of RL_SLOTS buckets under a mutex;
 * when a probe finds no free slot, the bucket least recently used among the
 * probed ones is given to the new client. */
#include "ratelimit.h"

#include <pthread.h>
#include <string.h>

#define RL_SLOTS 4096
#define RL_PROBE 16

typedef struct bucket {
    char client[RL_CLIENT_MAX];
    double tokens;
    int64_t last_us; /* last refill; 0: free slot */
} bucket;

static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;
static bucket slots[RL_SLOTS];
static int32_t nclients;

static uint32_t hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

int rl_take(const char *client, int64_t now_us, uint32_t rate, uint32_t burst) {
    char name[RL_CLIENT_MAX];
    size_t len = strnlen(client, sizeof name - 1);
    memcpy(name, client, len);
    name[len] = 0;
    if (now_us <= 0)
        now_us = 1;
    pthread_mutex_lock(&rl_lock);
    uint32_t h = hash(name);
    bucket *b = NULL, *lru = NULL;
    for (uint32_t i = 0; i < RL_PROBE; i++) {
        bucket *s = &slots[(h + i) % RL_SLOTS];
        if (s->last_us && !strcmp(s->client, name)) {
            b = s;
            break;
        }
        if (!lru || s->last_us < lru->last_us)
            lru = s; /* a free slot (last_us 0) is the least recent of all */
    }
    if (!b) {
        b = lru;
        if (!b->last_us)
            nclients++;
        memcpy(b->client, name, len + 1);
        b->tokens = burst;
        b->last_us = now_us;
    }
    double dt = (double)(now_us - b->last_us) / 1e6;
    if (dt > 0) {
        b->tokens += dt * rate;
        b->last_us = now_us;
    }
    if (b->tokens > burst)
        b->tokens = burst;
    int ok = b->tokens >= 1.0;
    if (ok)
        b->tokens -= 1.0;
    pthread_mutex_unlock(&rl_lock);
    return ok;
}

int32_t rl_clients(void) {
    pthread_mutex_lock(&rl_lock);
    int32_t n = nclients;
    pthread_mutex_unlock(&rl_lock);
    return n;
}
