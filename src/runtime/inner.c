/* inner.c - calls made inside a domain: a component's code calling an entry
 * of a component placed in the same domain (its own, typically) runs it
 * directly there, as it would in the host, and the call is counted, so the
 * program's call counts do not depend on the plan.
 *
 * The domain process counts such calls in its own statistics area (a
 * private one: it never maps the supervisor's file) and publishes the
 * totals per entry in a table of its slot, every 100 ms while it has any.
 * The host folds what the table gained into qtn_stats.calls_inner of the
 * program's edge to the entry: before each statistics snapshot, in each
 * qtn_stats_* and once more when the incarnation is gone. The table is the
 * domain's word: the host takes only entries it knows that the plan places
 * in that domain now, and only counts that grow; and it keeps them out of
 * the statistics area, so that the supervisor's evidence (the calls that
 * earn code trust, what a boundary would cost) is never a domain's word. A
 * domain can shade the inner calls of its own entries, nothing else. */
#include <string.h>

#include "domain.h"

static inline qtn__inner *table_of(char *base) {
    return (qtn__inner *)(base + QTN__INNER_OFF);
}

/* ---- in a domain process ---------------------------------------------------- */

_Atomic bool qtn__inner_on;

bool qtn__inner_publish(void) {
    qtn__inner *tab = table_of(qtn__my_slot());
    const qtn_entry *ent[QTN__INNER_MAX];
    uint64_t calls[QTN__INNER_MAX];
    uint32_t n = 0;
    bool any = false;
    pthread_mutex_lock(&qtn__g.lock);
    uint32_t ne = atomic_load(&qtn__nedges);
    for (uint32_t id = 1; id <= ne; id++) {
        const qtn_entry *en = qtn__edge_rep[id]->entry;
        if (!en->component || qtn__where(en->component->id) != qtn__g.self)
            continue;
        any = true;
        uint64_t c = qtn__edge_calls_locked(id);
        uint32_t i = 0;
        while (i < n && ent[i] != en)
            i++;
        if (i == n) {
            if (n == QTN__INNER_MAX)
                continue; /* past the table: not counted */
            ent[n] = en;
            calls[n++] = 0;
        }
        calls[i] += c;
    }
    pthread_mutex_unlock(&qtn__g.lock);
    for (uint32_t i = 0; i < n; i++) {
        /* an entry keeps its place once it has one */
        uint32_t k = 0;
        for (; k < QTN__INNER_MAX; k++) {
            uint64_t e = atomic_load_explicit(&tab[k].entry, memory_order_relaxed);
            if (e == (uint64_t)(uintptr_t)ent[i] || !e)
                break;
        }
        if (k == QTN__INNER_MAX)
            continue;
        atomic_store_explicit(&tab[k].calls, calls[i], memory_order_relaxed);
        atomic_store_explicit(&tab[k].entry, (uint64_t)(uintptr_t)ent[i], memory_order_release);
    }
    atomic_store(&qtn__inner_on, any);
    return any;
}

/* ---- in the host -------------------------------------------------------------- */

/* What domains said they called inside, per host edge (the program's edge
 * to each entry). */
static _Atomic uint64_t inner_calls[QTN__EDGE_MAX];
static pthread_mutex_t fold_lock = PTHREAD_MUTEX_INITIALIZER; /* every qtn__inc's fold state */

#define BOGUS ((const qtn_entry *)(uintptr_t)1) /* a place that names no entry: never again */

uint64_t qtn__inner_calls(uint32_t id) {
    return id < QTN__EDGE_MAX ? atomic_load_explicit(&inner_calls[id], memory_order_relaxed) : 0;
}

/* A table as read once from a domain's slot. */
typedef struct snap {
    qtn__inc *I;
    uint32_t inc, n;
    const qtn_entry *ent[QTN__INNER_MAX];
    uint64_t calls[QTN__INNER_MAX];
} snap;

/* Copies I's table (the caller keeps the slot mapped meanwhile). */
static void take(qtn__inc *I, snap *sn) {
    sn->I = I;
    sn->inc = I->inc;
    sn->n = 0;
    if (!I->base || !sn->inc)
        return;
    qtn__inner *tab = table_of(I->base);
    for (; sn->n < QTN__INNER_MAX; sn->n++) {
        uint64_t e = atomic_load_explicit(&tab[sn->n].entry, memory_order_acquire);
        if (!e)
            break; /* places are taken in order */
        sn->calls[sn->n] = atomic_load_explicit(&tab[sn->n].calls, memory_order_relaxed);
        sn->ent[sn->n] = (const qtn_entry *)(uintptr_t)e;
    }
}

/* Adds what a copied table gained; no slot is read any more. */
static void fold(const snap *sn) {
    qtn__inc *I = sn->I;
    uint32_t n = sn->n;
    if (!n)
        return;
    /* which places name an entry (checked before anything is read through
     * it), and which of those the plan places in that domain now */
    bool known[QTN__INNER_MAX], placed[QTN__INNER_MAX];
    pthread_mutex_lock(&qtn__g.lock);
    for (uint32_t k = 0; k < n; k++) {
        known[k] = qtn__entry_known(sn->ent[k]);
        placed[k] = known[k] && sn->ent[k]->component &&
                    qtn__where(sn->ent[k]->component->id) == I->d;
    }
    pthread_mutex_unlock(&qtn__g.lock);
    const qtn_entry *got[QTN__INNER_MAX];
    uint64_t more[QTN__INNER_MAX];
    uint32_t m = 0;
    pthread_mutex_lock(&fold_lock);
    if (I->inner_inc > sn->inc) { /* the slot holds a newer one now: this copy is old */
        pthread_mutex_unlock(&fold_lock);
        return;
    }
    if (I->inner_inc != sn->inc) { /* the slot's last fold was of an earlier incarnation */
        memset(I->inner_ent, 0, sizeof I->inner_ent);
        memset(I->inner_seen, 0, sizeof I->inner_seen);
        I->inner_inc = sn->inc;
    }
    for (uint32_t k = 0; k < n; k++) {
        const qtn_entry *en = sn->ent[k];
        if (I->inner_ent[k] == BOGUS)
            continue;
        if (I->inner_ent[k] != en) {
            if (I->inner_ent[k])
                continue; /* the domain moved an entry to another place: its first one counts */
            if (!known[k]) {
                I->inner_ent[k] = BOGUS; /* names no entry: never looked at again */
                continue;
            }
            I->inner_ent[k] = en;
            for (uint32_t j = 0; j < QTN__INNER_MAX; j++)
                if (j != k && I->inner_ent[j] == en) /* it has a place: a second never counts */
                    I->inner_seen[k] = UINT64_MAX;
        }
        if (!placed[k]) { /* placed elsewhere now: what it claims meanwhile never counts */
            if (sn->calls[k] > I->inner_seen[k])
                I->inner_seen[k] = sn->calls[k];
            continue;
        }
        if (sn->calls[k] <= I->inner_seen[k])
            continue; /* no more, or less (believed never) */
        more[m] = sn->calls[k] - I->inner_seen[k];
        got[m++] = en;
        I->inner_seen[k] = sn->calls[k];
    }
    pthread_mutex_unlock(&fold_lock);
    for (uint32_t k = 0; k < m; k++) {
        qtn_edge spare, *ed = qtn__host_edge(NULL, got[k], &spare);
        uint64_t was = atomic_load_explicit(&inner_calls[ed->id], memory_order_relaxed), now;
        do /* saturating: a domain's word never wraps the count around */
            now = was + more[k] < was ? UINT64_MAX : was + more[k];
        while (!atomic_compare_exchange_weak_explicit(&inner_calls[ed->id], &was, now,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed));
    }
}

void qtn__inner_fold(qtn__inc *I) {
    snap sn;
    take(I, &sn);
    fold(&sn);
}

void qtn__inner_fold_all(void) {
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__dom *dm = &qtn__doms[d];
        if (!atomic_load(&dm->live))
            continue;
        /* the serving incarnation, kept mapped while it is read */
        pthread_mutex_lock(&dm->lock);
        uint32_t live = atomic_load(&dm->live);
        qtn__inc *I = live ? qtn__inc_of(dm, live) : NULL;
        if (I && (I->inc != live || !I->base))
            I = NULL;
        if (I)
            atomic_fetch_add(&I->active, 1);
        pthread_mutex_unlock(&dm->lock);
        if (I) {
            snap sn;
            take(I, &sn);
            qtn__inc_leave(I); /* the copy is read from now on */
            fold(&sn);
        }
    }
}
