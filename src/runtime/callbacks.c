/* callbacks.c - callbacks a domain keeps: the host's book of the functions
 * it passed to domains as callback parameters, and the threads that run
 * them for a domain's own threads.
 *
 * A callback parameter crosses as the number of its (signature, function)
 * pair in the book, which also notes each domain process it was passed to
 * and the handles passed with it. A domain asks the host to run it by that
 * number, whenever its code calls the pointer it got: during the call that
 * passed it, during a later call (a library that keeps an error handler),
 * or from a thread of its own. The first two go over the channel of the
 * call in progress, where the caller's thread serves them, as the library
 * would run them on the caller's thread in the host; the last over one of
 * the domain's late channels (channels nchan on, of each incarnation), each
 * served by a host thread of its own. Only a number the incarnation was
 * given runs anything, and a handle passed to one must have been passed
 * with it (or be one of the calls in progress on the channel). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#define CB_MAX 4096u                /* pairs in the book */
#define CB_SLOTS (2 * CB_MAX)       /* hash slots: kept half empty at most */
#define CTX_MAX 8                   /* handles kept with a callback for a domain */

/* A callback passed to a domain: to which of its incarnations (a restart
 * forgets what the component kept, and with it what it may call), and the
 * handles passed with it there (the latest CTX_MAX): a handler kept with
 * its context gets that context, not any handle the domain was ever
 * given. */
typedef struct grant {
    _Atomic uint32_t inc; /* 0: none */
    uint32_t nh, next;    /* under cb_lock, as h */
    uint64_t h[CTX_MAX];
} grant;

typedef struct cbent {
    const qtn_sig *sig;
    void *fn;
    grant *_Atomic g[QTN_DOMAINS_MAX + 1]; /* made when first passed to the domain */
} cbent;

static cbent cbs[CB_MAX + 1];              /* by number; 0 is none */
static _Atomic uint32_t ncbs;
static _Atomic uint32_t slots[CB_SLOTS];   /* numbers by (sig, fn); 0: empty */
static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static int late_started[QTN_DOMAINS_MAX + 1]; /* each domain's late servers (cb_lock) */

static uint32_t slot_of(const qtn_sig *sig, const void *fn) {
    uint64_t x = ((uint64_t)(uintptr_t)fn ^ (uint64_t)(uintptr_t)sig << 17) *
                 0x9e3779b97f4a7c15ull;
    return (uint32_t)(x >> 32) % CB_SLOTS;
}

/* The number of (sig, fn), or 0; with `add` (cb_lock held), added if new. */
static uint32_t lookup(const qtn_sig *sig, void *fn, bool add) {
    for (uint32_t i = slot_of(sig, fn);; i = (i + 1) % CB_SLOTS) {
        uint32_t id = atomic_load_explicit(&slots[i], memory_order_acquire);
        if (id && cbs[id].fn == fn && cbs[id].sig == sig)
            return id;
        if (id)
            continue;
        if (!add)
            return 0;
        uint32_t n = atomic_load_explicit(&ncbs, memory_order_relaxed);
        if (n == CB_MAX)
            return 0;
        id = n + 1;
        cbs[id].sig = sig;
        cbs[id].fn = fn;
        atomic_store_explicit(&ncbs, id, memory_order_release);
        atomic_store_explicit(&slots[i], id, memory_order_release);
        return id;
    }
}

static void *late_main(void *arg);

/* Starts the servers of domain d's late channels (cb_lock held). */
static bool late_start(int d) {
    if (late_started[d] == QTN__LATE_CHANS)
        return true;
    pthread_attr_t at;
    pthread_t th;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the program's signals are not its */
    /* those started serve for good; with fewer than all, no callback is
     * passed to d (its threads would wait on a channel nobody serves) */
    while (late_started[d] < QTN__LATE_CHANS &&
           !pthread_create(&th, &at, late_main,
                           (void *)(intptr_t)(d * QTN__LATE_CHANS + late_started[d])))
        late_started[d]++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&at);
    return late_started[d] == QTN__LATE_CHANS;
}

uint32_t qtn__cb_grant(const qtn_sig *sig, void *fn, int d, uint32_t inc, const uint64_t *hs,
                       unsigned nh) {
    uint32_t id = lookup(sig, fn, false);
    if (id && !nh) {
        grant *g = atomic_load_explicit(&cbs[id].g[d], memory_order_acquire);
        if (g && atomic_load_explicit(&g->inc, memory_order_acquire) == inc)
            return id; /* the common case: no lock */
    }
    pthread_mutex_lock(&cb_lock);
    if (!id)
        id = lookup(sig, fn, true);
    /* the domain's first callback: its own threads may call it too */
    bool served = id && late_start(d);
    grant *g = served ? atomic_load(&cbs[id].g[d]) : NULL;
    if (served && !g && (g = calloc(1, sizeof *g)))
        atomic_store_explicit(&cbs[id].g[d], g, memory_order_release);
    if (!g) {
        pthread_mutex_unlock(&cb_lock);
        return 0;
    }
    if (atomic_load(&g->inc) != inc)
        g->nh = g->next = 0; /* an earlier incarnation's */
    for (unsigned i = 0; i < nh; i++) {
        unsigned k = 0;
        while (k < g->nh && g->h[k] != hs[i])
            k++;
        if (k < g->nh || !hs[i])
            continue;
        if (g->nh < CTX_MAX)
            g->h[g->nh++] = hs[i];
        else
            g->h[g->next++ % CTX_MAX] = hs[i]; /* the oldest goes */
    }
    atomic_store_explicit(&g->inc, inc, memory_order_release);
    pthread_mutex_unlock(&cb_lock);
    return id;
}

static grant *granted(uint64_t id, int d, uint32_t inc) {
    if (!id || id > atomic_load_explicit(&ncbs, memory_order_acquire))
        return NULL;
    grant *g = atomic_load_explicit(&cbs[id].g[d], memory_order_acquire);
    return g && atomic_load_explicit(&g->inc, memory_order_acquire) == inc ? g : NULL;
}

bool qtn__cb_find(uint64_t id, int d, uint32_t inc, const qtn_sig **sig, void **fn) {
    if (!granted(id, d, inc))
        return false; /* not passed to this incarnation: not its to run */
    *sig = cbs[id].sig;
    *fn = cbs[id].fn;
    return true;
}

bool qtn__cb_handle_ok(uint64_t id, int d, uint32_t inc, uint64_t v) {
    pthread_mutex_lock(&cb_lock);
    grant *g = granted(id, d, inc);
    bool ok = false;
    for (unsigned k = 0; g && k < g->nh && !ok; k++)
        ok = g->h[k] == v;
    pthread_mutex_unlock(&cb_lock);
    return ok;
}

void qtn__cb_forget(void) {
    pthread_mutex_lock(&cb_lock);
    uint32_t n = atomic_load(&ncbs);
    for (uint32_t id = 1; id <= n; id++)
        for (int d = 0; d <= QTN_DOMAINS_MAX; d++) {
            grant *g = atomic_load(&cbs[id].g[d]);
            if (g)
                atomic_store(&g->inc, 0);
        }
    pthread_mutex_unlock(&cb_lock);
}

/* ---- the late channel's server --------------------------------------------- */

/* Serves late channel j of each incarnation of domain d in turn, for the
 * rest of the program's life (it sleeps while the domain is off). */
static void *late_main(void *arg) {
    int d = (int)(intptr_t)arg / QTN__LATE_CHANS, j = (int)(intptr_t)arg % QTN__LATE_CHANS;
    qtn__dom *dm = &qtn__doms[d];
    /* (callbacks need none: the calls they make take their own; NULL, if
     * memory ran out, serves as well) */
    qtn__thread *t = qtn__self_thread();
    for (;;) {
        int err;
        qtn__inc *I = qtn__inc_enter(d, 0, &err);
        if (!I) { /* off or parked: until it serves again */
            qtn__await(&dm->live, 0, 0, &dm->live_sleep, NULL, 0, qtn__now_ns() + 1000000000ull,
                       NULL);
            continue;
        }
        uint32_t L = qtn__g.lay.nchan + (uint32_t)j, inc = I->inc;
        qtn__chan *ch = qtn__chan_in(I->base, L);
        char *win = qtn__win_in(I->base, L);
        qtn__hstack st = {.inc = inc};
        for (;;) {
            uint32_t cur = I->dseq[L];
            int w = qtn__await(&ch->dseq, cur, cur + 1, &ch->hsleep, &dm->live, inc, 0, NULL);
            if (w == 1)
                break; /* it died (the monitor flipped the word) */
            const char *bad = w < 0 ? "the domain broke the late channel's sequence numbers"
                              : ch->dtype != QTN__MSG_CB
                                  ? "the domain sent a message other than a callback on its "
                                    "late channel"
                                  : NULL;
            I->dseq[L] = cur + 1;
            if (!bad)
                bad = qtn__serve_request(t, I, &st, ch, win, QTN__MSG_CB);
            if (atomic_load(&dm->live) != inc)
                break; /* it died, or the runtime stopped, while the callback ran */
            if (bad) {
                qtn__dom_kill(d, inc, QTN_FAULT_CONTRACT, NULL, bad);
                break;
            }
            ch->htype = QTN__MSG_RET;
            qtn__post(&ch->hseq, ++I->seq[L], &ch->dsleep);
        }
        qtn__inc_leave(I);
        /* a killed one is doomed until the monitor sees it dead: wait */
        while (atomic_load(&dm->live) == inc)
            qtn__await(&dm->live, inc, inc, &dm->live_sleep, NULL, 0,
                       qtn__now_ns() + 100000000ull, NULL);
    }
    return NULL;
}
