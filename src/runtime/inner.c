/* inner.c - calls made inside a domain: a component's code calling an entry
 * of a component placed in the same domain (its own, typically) runs it
 * directly there, as it would in the host, and the call is counted as it
 * would be in the host, so call counts do not depend on the plan.
 *
 * The domain process counts such calls in its own statistics area, which
 * the host never sees, and publishes the totals per entry in a table of its
 * slot (every 100 ms while it has any). The host folds what the table gained
 * into its own statistics, as direct calls of the program into the entry:
 * before each statistics snapshot, each qtn_stats_* and once more when the
 * incarnation is gone. The table is the domain's word: the host takes only
 * entries it knows that the plan places in that domain, and only counts
 * that grow, so a domain can shade the call counts of its own entries, no
 * others. */
#include <string.h>

#include "domain.h"
#include "statsfile.h"

static inline qtn__inner *table_of(char *base) {
    return (qtn__inner *)(base + QTN__INNER_OFF);
}

/* ---- in a domain process ---------------------------------------------------- */

_Atomic bool qtn__inner_on;

void qtn__inner_start(void) {
    /* the area is the zygote's copy of the host's: the calls counted there
     * before qtn_init are the host's, not this process's */
    qtn__sf_edge *e = qtn__sf_edges(qtn__sf_area());
    for (uint32_t id = 0; id < QTN__EDGE_MAX; id++) {
        atomic_store(&e[id].calls_gone, 0);
        atomic_store(&e[id].calls_slow, 0);
    }
}

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

static pthread_mutex_t fold_lock = PTHREAD_MUTEX_INITIALIZER; /* every qtn__inc's fold state */

void qtn__inner_fold(qtn__inc *I) {
    if (!I->base)
        return;
    qtn__inner *tab = table_of(I->base);
    pthread_mutex_lock(&fold_lock);
    for (uint32_t k = 0; k < QTN__INNER_MAX; k++) {
        /* read once: the entry, then its count */
        uint64_t e = atomic_load_explicit(&tab[k].entry, memory_order_acquire);
        if (!e)
            break; /* places are taken in order */
        uint64_t c = atomic_load_explicit(&tab[k].calls, memory_order_relaxed);
        const qtn_entry *en = (const qtn_entry *)(uintptr_t)e;
        if (I->inner_ent[k] != en) {
            if (I->inner_ent[k])
                continue; /* the domain moved an entry to another place: its first one counts */
            pthread_mutex_lock(&qtn__g.lock);
            bool ok = qtn__entry_known(en) && en->component &&
                      qtn__where(en->component->id) == I->d;
            pthread_mutex_unlock(&qtn__g.lock);
            if (!ok)
                continue; /* not an entry, or not one placed there: looked at again later */
            I->inner_ent[k] = en;
            for (uint32_t j = 0; j < QTN__INNER_MAX; j++)
                if (j != k && I->inner_ent[j] == en) /* it has a place: a second never counts */
                    I->inner_seen[k] = UINT64_MAX;
        }
        if (c <= I->inner_seen[k])
            continue; /* no more, or less (believed never) */
        uint64_t more = c - I->inner_seen[k];
        I->inner_seen[k] = c;
        qtn_edge spare, *ed = qtn__host_edge(NULL, en, &spare);
        atomic_fetch_add_explicit(&qtn__sf_edges(qtn__sf_area())[ed->id].calls_gone, more,
                                  memory_order_relaxed);
    }
    pthread_mutex_unlock(&fold_lock);
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
            qtn__inner_fold(I);
            qtn__inc_leave(I);
        }
    }
}
