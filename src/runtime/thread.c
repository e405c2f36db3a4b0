/* thread.c - per-thread state, edges and their statistics.
 *
 * Each thread that reaches the slow path once is registered: its direct
 * flags (qtn__tdirect, read by QTN_DIRECT) are then kept up to date by plan
 * changes, and its call counters are summed when statistics are read and
 * folded into the edge totals when it exits. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

QTN_EXTERN __thread uint8_t qtn__tdirect[QTN__EDGE_MAX];
QTN_EXTERN __thread uint64_t qtn__tcalls[QTN__EDGE_MAX];

qtn__edgest qtn__edges[QTN__EDGE_MAX];
_Atomic uint32_t qtn__nedges;
_Atomic uint64_t qtn__work;

void qtn_work_done(uint64_t n) { atomic_fetch_add_explicit(&qtn__work, n, memory_order_relaxed); }

static __thread qtn__thread *tself;
static pthread_key_t tkey;
static pthread_once_t tonce = PTHREAD_ONCE_INIT;
static qtn__thread *thead;

static bool edge_direct(uint32_t id) {
    const qtn_entry *en = qtn__edges[id].edge->entry;
    int c = en->component ? en->component->id : 0;
    return qtn__where(c) == qtn__g.self;
}

static void thread_gone(void *p) {
    qtn__thread *t = p;
    qtn__chan_release_all(t);
    pthread_mutex_lock(&qtn__g.lock);
    uint32_t n = atomic_load(&qtn__nedges);
    for (uint32_t i = 1; i <= n; i++) {
        atomic_fetch_add_explicit(&qtn__edges[i].calls_gone, t->tcalls[i], memory_order_relaxed);
        t->tcalls[i] = 0;
        t->tdirect[i] = 0; /* later calls in this thread register it again */
    }
    if (t->prev)
        t->prev->next = t->next;
    else
        thead = t->next;
    if (t->next)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&qtn__g.lock);
    for (int d = 0; d <= QTN_DOMAINS_MAX; d++)
        free(t->hst[d]);
    qtn__crash_thread_gone(t->altstack);
    free(t);
    tself = NULL;
}

static void make_key(void) {
    if (pthread_key_create(&tkey, thread_gone))
        qtn__fatal("pthread_key_create failed");
}

qtn__thread *qtn__self_thread(void) {
    if (qtn__likely(tself != NULL))
        return tself;
    pthread_once(&tonce, make_key);
    qtn__thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->tdirect = qtn__tdirect;
    t->tcalls = qtn__tcalls;
    t->serving = -1;
    if (qtn__g.self == QTN_DOMAIN_HOST && qtn__g.inited)
        qtn__crash_thread(&t->altstack);
    for (int d = 0; d <= QTN_DOMAINS_MAX; d++)
        t->chan[d] = -1;
    pthread_mutex_lock(&qtn__g.lock);
    t->next = thead;
    if (thead)
        thead->prev = t;
    thead = t;
    uint32_t n = atomic_load(&qtn__nedges);
    for (uint32_t i = 1; i <= n; i++)
        t->tdirect[i] = edge_direct(i);
    pthread_mutex_unlock(&qtn__g.lock);
    pthread_setspecific(tkey, t);
    tself = t;
    return t;
}

/* In a new domain process: the threads of the process it was forked from
 * do not exist here. */
void qtn__threads_forget(void) {
    thead = NULL;
    tself = NULL;
    memset(qtn__tdirect, 0, sizeof qtn__tdirect);
    memset(qtn__tcalls, 0, sizeof qtn__tcalls);
}

int qtn__edge_register_locked(qtn_edge *e) {
    if (e->id)
        return 0;
    uint32_t n = atomic_load(&qtn__nedges);
    if (n + 1 >= QTN__EDGE_MAX)
        return QTN_ELIMIT;
    uint32_t id = n + 1;
    memset(&qtn__edges[id], 0, sizeof qtn__edges[id]);
    qtn__edges[id].edge = e;
    atomic_store(&qtn__nedges, id);
    bool direct = edge_direct(id);
    for (qtn__thread *t = thead; t; t = t->next)
        __atomic_store_n(&t->tdirect[id], direct, __ATOMIC_RELAXED);
    __atomic_store_n(&e->id, id, __ATOMIC_RELEASE);
    return 0;
}

void qtn__threads_replan_locked(void) {
    uint32_t n = atomic_load(&qtn__nedges);
    for (uint32_t i = 1; i <= n; i++) {
        bool direct = edge_direct(i);
        for (qtn__thread *t = thead; t; t = t->next)
            __atomic_store_n(&t->tdirect[i], direct, __ATOMIC_RELAXED);
    }
}

void qtn__thread_replan_self(qtn__thread *t) {
    pthread_mutex_lock(&qtn__g.lock);
    uint32_t n = atomic_load(&qtn__nedges);
    for (uint32_t i = 1; i <= n; i++)
        __atomic_store_n(&t->tdirect[i], edge_direct(i), __ATOMIC_RELAXED);
    pthread_mutex_unlock(&qtn__g.lock);
}

void qtn__record_crossing(uint32_t id, uint64_t ns, bool fault) {
    qtn__edgest *s = &qtn__edges[id];
    atomic_fetch_add_explicit(&s->crossings, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->ns_total, ns, memory_order_relaxed);
    if (fault)
        atomic_fetch_add_explicit(&s->faults, 1, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&s->ns_max, memory_order_relaxed);
    while (ns > m &&
           !atomic_compare_exchange_weak_explicit(&s->ns_max, &m, ns, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* ---- reading statistics ------------------------------------------------ */

static const char *caller_name(const qtn_component *c) { return c ? c->name : "program"; }

/* Totals of edge id, live threads included (lock held). */
static void edge_totals_locked(uint32_t id, qtn_stats *st) {
    qtn__edgest *s = &qtn__edges[id];
    uint64_t calls = atomic_load(&s->calls_gone) + atomic_load(&s->calls_slow);
    for (qtn__thread *t = thead; t; t = t->next)
        calls += __atomic_load_n(&t->tcalls[id], __ATOMIC_RELAXED);
    st->calls = calls;
    st->crossings = atomic_load(&s->crossings);
    st->cross_ns_total = atomic_load(&s->ns_total);
    st->cross_ns_max = atomic_load(&s->ns_max);
    st->faults = atomic_load(&s->faults);
}

static void stats_add(qtn_stats *a, const qtn_stats *b) {
    a->calls += b->calls;
    a->crossings += b->crossings;
    a->cross_ns_total += b->cross_ns_total;
    if (b->cross_ns_max > a->cross_ns_max)
        a->cross_ns_max = b->cross_ns_max;
    a->faults += b->faults;
}

static bool comp_named(const qtn_component *c, const char *name) {
    return c && c->name && strcmp(c->name, name) == 0;
}

static bool comp_exists(const char *name) {
    for (int i = 1; i <= qtn__ncomps; i++)
        if (comp_named(qtn__comps[i], name))
            return true;
    return false;
}

int qtn_stats_component(const char *component, qtn_stats *out) {
    if (!component || !out)
        return QTN_EINVAL;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&qtn__g.lock);
    int r = QTN_ENOENT;
    for (int c = 1; c <= qtn__ncomps; c++)
        if (comp_named(qtn__comps[c], component)) {
            qtn__blame_get(c, out);
            r = 0;
        }
    uint32_t n = atomic_load(&qtn__nedges);
    for (uint32_t i = 1; i <= n && !r; i++) {
        if (!comp_named(qtn__edges[i].edge->entry->component, component))
            continue;
        qtn_stats st;
        edge_totals_locked(i, &st);
        stats_add(out, &st);
    }
    pthread_mutex_unlock(&qtn__g.lock);
    return r;
}

int qtn_stats_edge(const char *caller, const char *callee, qtn_stats *out) {
    if (!callee || !out)
        return QTN_EINVAL;
    if (caller && strcmp(caller, "program") == 0)
        caller = NULL;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&qtn__g.lock);
    int r = comp_exists(callee) && (!caller || comp_exists(caller)) ? 0 : QTN_ENOENT;
    uint32_t n = atomic_load(&qtn__nedges);
    for (uint32_t i = 1; i <= n && !r; i++) {
        const qtn_edge *e = qtn__edges[i].edge;
        if (!comp_named(e->entry->component, callee))
            continue;
        if (caller ? !comp_named(e->caller, caller) : e->caller != NULL)
            continue;
        qtn_stats st;
        edge_totals_locked(i, &st);
        stats_add(out, &st);
    }
    pthread_mutex_unlock(&qtn__g.lock);
    return r;
}

int qtn_stats_foreach(void (*fn)(void *ctx, const char *caller, const char *callee,
                                 const char *entry, const qtn_stats *st),
                      void *ctx) {
    if (!fn)
        return QTN_EINVAL;
    pthread_mutex_lock(&qtn__g.lock);
    uint32_t n = atomic_load(&qtn__nedges);
    struct row {
        const qtn_component *caller;
        const qtn_entry *entry;
        qtn_stats st;
    } *rows = calloc(n + 1, sizeof *rows);
    int nrows = 0;
    for (uint32_t i = 1; rows && i <= n; i++) {
        const qtn_edge *e = qtn__edges[i].edge;
        qtn_stats st;
        edge_totals_locked(i, &st);
        int j;
        for (j = 0; j < nrows; j++)
            if (rows[j].caller == e->caller && rows[j].entry == e->entry)
                break;
        if (j == nrows) {
            rows[j].caller = e->caller;
            rows[j].entry = e->entry;
            nrows++;
        }
        stats_add(&rows[j].st, &st);
    }
    pthread_mutex_unlock(&qtn__g.lock);
    if (!rows)
        return QTN_ENOMEM;
    for (int j = 0; j < nrows; j++) {
        const qtn_component *c = rows[j].entry->component;
        fn(ctx, caller_name(rows[j].caller), c ? c->name : "program", rows[j].entry->name,
           &rows[j].st);
    }
    free(rows);
    return nrows;
}
