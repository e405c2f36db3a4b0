/* channel.c - the channels of a domain's incarnation: one dedicated to each
 * calling thread while it lives, and a few shared ones lent call by call
 * once the dedicated ones run out. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "domain.h"

void qtn__want_served(qtn__inc *I, uint32_t k) {
    if (I->served[k])
        return;
    I->served[k] = 1;
    I->nserved++;
    qtn__dhdr *h = (qtn__dhdr *)I->base;
    atomic_fetch_or(&h->want[k / 64], 1ull << (k % 64));
    atomic_fetch_add(&h->bell, 1);
    qtn__wake_all(&h->bell);
}

int qtn__chan_take(qtn__thread *t, qtn__inc *I, uint64_t until, bool *shared) {
    int d = I->d;
    qtn__dom *dm = &qtn__doms[d];
    *shared = false;
    if (t->chan[d] >= 0 && t->chan_inc[d] == I->inc)
        return t->chan[d]; /* served since it was taken: the monitor wakes it */
    pthread_mutex_lock(&dm->lock);
    /* under the lock the monitor flips channels with: if I died before
     * this, its callers were woken already and this one would never be */
    if (atomic_load(&dm->live) != I->inc) {
        pthread_mutex_unlock(&dm->lock);
        return QTN_EFAULT;
    }
    int k = -1;
    for (uint32_t i = 0; i < qtn__g.lay.channels; i++)
        if (!I->used[i]) {
            k = (int)i;
            break;
        }
    if (k >= 0) {
        I->used[k] = 1;
        I->in_use++;
        qtn__want_served(I, (uint32_t)k);
        t->chan[d] = k;
        t->chan_inc[d] = I->inc;
        pthread_mutex_unlock(&dm->lock);
        return k;
    }
    /* every dedicated channel is held: borrow a shared one for this call */
    bool waited = false;
    for (;;) {
        for (uint32_t i = qtn__g.lay.channels; i < qtn__g.lay.nchan; i++)
            if (!I->used[i]) {
                k = (int)i;
                break;
            }
        if (k >= 0)
            break;
        if (!waited)
            dm->overflow_waits++;
        waited = true;
        if (until) {
            struct timespec ts = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};
            if (pthread_cond_clockwait(&dm->shared_cv, &dm->lock, CLOCK_MONOTONIC, &ts) ==
                    ETIMEDOUT &&
                atomic_load(&dm->live) == I->inc) {
                pthread_mutex_unlock(&dm->lock);
                return QTN_ELIMIT; /* busy until the call's deadline */
            }
        } else {
            pthread_cond_wait(&dm->shared_cv, &dm->lock);
        }
        if (atomic_load(&dm->live) != I->inc) {
            pthread_mutex_unlock(&dm->lock);
            return QTN_EFAULT;
        }
    }
    I->used[k] = 1;
    qtn__want_served(I, (uint32_t)k);
    pthread_mutex_unlock(&dm->lock);
    *shared = true;
    return k;
}

void qtn__chan_give_shared(qtn__inc *I, int k) {
    qtn__dom *dm = &qtn__doms[I->d];
    pthread_mutex_lock(&dm->lock);
    I->used[k] = 0;
    pthread_cond_signal(&dm->shared_cv);
    pthread_mutex_unlock(&dm->lock);
}

void qtn__chan_release_all(qtn__thread *t) {
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        if (t->chan[d] < 0)
            continue;
        qtn__dom *dm = &qtn__doms[d];
        qtn__inc *I = qtn__inc_of(dm, t->chan_inc[d]);
        pthread_mutex_lock(&dm->lock);
        if (I->inc == t->chan_inc[d] && I->used[t->chan[d]]) {
            I->used[t->chan[d]] = 0;
            I->in_use--;
        }
        pthread_mutex_unlock(&dm->lock);
        t->chan[d] = -1;
    }
}

int qtn_domain_info_get(int id, qtn_domain_info *out) {
    if (id < 1 || id > QTN_DOMAINS_MAX || !out)
        return QTN_ERANGE;
    if (!qtn__g.inited)
        return QTN_ESTATE;
    qtn__dom *dm = &qtn__doms[id];
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&dm->lock);
    uint32_t live = atomic_load(&dm->live);
    out->id = id;
    out->incarnation = dm->inc;
    out->parked = atomic_load(&dm->state) == QTN__DS_PARKED;
    out->spares_kept = (int)qtn__g.spares;
    if (live) {
        qtn__inc *I = qtn__inc_of(dm, live);
        for (uint32_t s = 1; s <= QTN__SPARES_MAX; s++) {
            qtn__inc *J = qtn__inc_of(dm, live + s);
            bool ready = qtn__spare_ready(J, live + s);
            out->spare_ready |= s == 1 && ready;
            out->spares_ready += ready;
        }
        out->pid = I->pid;
        out->channels_in_use = I->in_use;
        out->channels_served = I->nserved;
        if (I->base)
            out->late_callbacks = atomic_load(&((qtn__dhdr *)I->base)->late_callbacks);
    }
    out->overflow_waits = dm->overflow_waits;
    out->restarts = dm->restarts;
    out->recovery_ns_total = dm->recovery_total;
    out->recovery_ns_max = dm->recovery_max;
    pthread_mutex_unlock(&dm->lock);
    return 0;
}
