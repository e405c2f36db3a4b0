/* thread.c - per-thread state, edges and their statistics.
 *
 * Each thread that reaches the slow path once is registered: its direct
 * flags (qtn__tdirect, read by QTN_DIRECT) are then kept up to date by plan
 * changes, and it gets a row of the statistics area (statsfile.h) where its
 * direct calls are counted (qtn__trow, the stub's increment). The row is
 * folded into the edge totals when the thread exits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "statsfile.h"

QTN_EXTERN __thread uint8_t qtn__tdirect[QTN__EDGE_MAX];
QTN_EXTERN __thread uint64_t *qtn__trow;

qtn_edge *qtn__edge_rep[QTN__EDGE_MAX];
_Atomic uint32_t qtn__nedges;
void *qtn__sf;

static __thread qtn__thread *tself;
static pthread_key_t tkey;
static pthread_once_t tonce = PTHREAD_ONCE_INIT;
static qtn__thread *thead;
/* rows given back by threads that exited, to give to new ones (lock held) */
static uint32_t free_rows[QTN__SF_ROWS], nfree_rows;

/* ---- the statistics area ----------------------------------------------- */

static void sf_init(void *area) {
    qtn__sf_head *h = area;
    h->magic = QTN__SF_MAGIC;
    h->version = QTN__SF_VERSION;
    h->size = QTN__SF_SIZE;
    h->rows = QTN__SF_ROWS;
    h->edges_max = QTN__EDGE_MAX;
    h->comps_max = QTN_COMPONENTS_MAX;
    h->pid = (int32_t)getpid();
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    h->ncpu = n > 0 ? (uint32_t)n : 1;
}

static void sf_make(void) {
    void *a = mmap(NULL, QTN__SF_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a == MAP_FAILED)
        qtn__fatal("cannot map the statistics area: %s", strerror(errno));
    sf_init(a);
    qtn__sf = a;
}

void *qtn__sf_area(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (!qtn__sf)
        pthread_once(&once, sf_make);
    return qtn__sf;
}

void qtn__sf_private(void) {
    void *old = qtn__sf_area();
    qtn__sf = NULL;
    sf_make();
    munmap(old, QTN__SF_SIZE); /* the supervisor's file, after a second qtn_init */
}

int qtn__sf_adopt(int fd) {
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size < QTN__SF_SIZE)
        return QTN_EINVAL;
    void *a = mmap(NULL, QTN__SF_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (a == MAP_FAILED)
        return QTN_ESYS;
    void *old = qtn__sf_area();
    qtn__sf_head *oh = old;
    uint32_t rows = atomic_load(&oh->rows_hwm);
    /* what was counted before qtn_init comes along */
    memcpy(a, old, QTN__SF_EDGES_OFF + QTN__EDGE_MAX * sizeof(qtn__sf_edge));
    memcpy((char *)a + QTN__SF_ROWS_OFF, (char *)old + QTN__SF_ROWS_OFF,
           (size_t)rows * QTN__SF_ROW_SIZE);
    sf_init(a);
    for (qtn__thread *t = thead; t; t = t->next)
        if (t->rowi >= 0) {
            t->row = qtn__sf_row(a, (uint32_t)t->rowi);
            *t->trowp = t->row;
        }
    qtn__sf = a;
    munmap(old, QTN__SF_SIZE);
    return 0;
}

void qtn__sf_started(void) {
    qtn__sf_head *h = qtn__sf_area();
    struct timespec w;
    clock_gettime(CLOCK_REALTIME, &w);
    h->pid = (int32_t)getpid();
    atomic_store(&h->start_ns, (int64_t)w.tv_sec * 1000000000 + w.tv_nsec);
    snprintf(h->build_id, sizeof h->build_id, "%s", qtn__build_id());
    snprintf(h->proc, sizeof h->proc, "%s", qtn__proc_id());
}

void qtn__sf_component(int id, const char *name) {
    qtn__sf_head *h = qtn__sf_area();
    snprintf(qtn__sf_comps(h)[id].name, QTN__SF_NAME, "%s", name);
    atomic_store(&h->ncomps, (uint32_t)id);
}

void qtn__sf_plan(int c, int d) {
    atomic_store_explicit(&((qtn__sf_head *)qtn__sf_area())->plan[c], (uint8_t)d,
                          memory_order_relaxed);
}

void qtn_work_done(uint64_t n) {
    atomic_fetch_add_explicit(&((qtn__sf_head *)qtn__sf_area())->work, n, memory_order_relaxed);
}

/* ---- threads ------------------------------------------------------------- */

static bool edge_direct(uint32_t id) {
    const qtn_entry *en = qtn__edge_rep[id]->entry;
    int c = en->component ? en->component->id : 0;
    return qtn__where(c) == qtn__g.self;
}

/* Folds a row into the edge totals and empties it (lock held). */
static void fold_row(uint64_t *row) {
    qtn__sf_edge *e = qtn__sf_edges(qtn__sf_area());
    uint32_t n = atomic_load(&qtn__nedges);
    for (uint32_t i = 1; i <= n; i++) {
        uint64_t v = __atomic_load_n(&row[i], __ATOMIC_RELAXED);
        if (!v)
            continue;
        atomic_fetch_add_explicit(&e[i].calls_gone, v, memory_order_relaxed);
        __atomic_store_n(&row[i], 0, __ATOMIC_RELAXED);
    }
}

static void thread_gone(void *p) {
    qtn__thread *t = p;
    qtn__chan_release_all(t);
    pthread_mutex_lock(&qtn__g.lock);
    uint32_t n = atomic_load(&qtn__nedges);
    for (uint32_t i = 1; i <= n; i++)
        t->tdirect[i] = 0; /* later calls in this thread register it again */
    fold_row(t->row);
    if (t->rowi >= 0)
        free_rows[nfree_rows++] = (uint32_t)t->rowi;
    else
        free(t->row);
    *t->trowp = NULL;
    if (t->prev)
        t->prev->next = t->next;
    else
        thead = t->next;
    if (t->next)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&qtn__g.lock);
    for (int d = 0; d <= QTN_DOMAINS_MAX; d++)
        free(t->hst[d]);
    qtn__strings_free(t);
    qtn__crash_thread_gone(t->altstack);
    free(t);
    tself = NULL;
}

static void make_key(void) {
    if (pthread_key_create(&tkey, thread_gone))
        qtn__fatal("pthread_key_create failed");
}

/* A row for a new thread: one of the area's, or, past QTN__SF_ROWS live
 * threads, one of its own, counted at exit (lock held). */
static void take_row(qtn__thread *t) {
    qtn__sf_head *h = qtn__sf_area();
    uint32_t r = UINT32_MAX;
    if (nfree_rows)
        r = free_rows[--nfree_rows];
    else if (atomic_load(&h->rows_hwm) < QTN__SF_ROWS)
        r = atomic_fetch_add(&h->rows_hwm, 1);
    if (r != UINT32_MAX) {
        t->rowi = (int32_t)r;
        t->row = qtn__sf_row(h, r);
    } else {
        t->rowi = -1;
        t->row = calloc(QTN__EDGE_MAX, sizeof *t->row);
    }
}

qtn__thread *qtn__thread_if_any(void) { return tself; }

qtn__thread *qtn__self_thread(void) {
    if (qtn__likely(tself != NULL))
        return tself;
    pthread_once(&tonce, make_key);
    qtn__thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->tdirect = qtn__tdirect;
    t->trowp = &qtn__trow;
    t->serving = -1;
    if (qtn__g.self == QTN_DOMAIN_HOST && qtn__g.inited)
        qtn__crash_thread(&t->altstack);
    for (int d = 0; d <= QTN_DOMAINS_MAX; d++)
        t->chan[d] = -1;
    pthread_mutex_lock(&qtn__g.lock);
    take_row(t);
    if (!t->row) {
        pthread_mutex_unlock(&qtn__g.lock);
        free(t);
        return NULL;
    }
    qtn__trow = t->row;
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
 * do not exist here; their rows are free again. */
void qtn__threads_forget(void) {
    thead = NULL;
    tself = NULL;
    qtn__trow = NULL;
    memset(qtn__tdirect, 0, sizeof qtn__tdirect);
    nfree_rows = 0;
    atomic_store(&((qtn__sf_head *)qtn__sf_area())->rows_hwm, 0);
}

int qtn__edge_register_locked(qtn_edge *e) {
    if (e->id)
        return 0;
    uint32_t n = atomic_load(&qtn__nedges);
    /* one id per (caller, entry): stubs of the same call site class, and
     * the host's edges for calls domains make, count together */
    for (uint32_t i = 1; i <= n; i++)
        if (qtn__edge_rep[i]->entry == e->entry && qtn__edge_rep[i]->caller == e->caller) {
            __atomic_store_n(&e->id, i, __ATOMIC_RELEASE);
            return 0;
        }
    if (n + 1 >= QTN__EDGE_MAX)
        return QTN_ELIMIT;
    uint32_t id = n + 1;
    qtn__edge_rep[id] = e;
    qtn__sf_head *h = qtn__sf_area();
    qtn__sf_edge *se = &qtn__sf_edges(h)[id];
    se->caller = e->caller && e->caller->id > 0 ? (uint32_t)e->caller->id : 0;
    se->callee = e->entry->component && e->entry->component->id > 0
                     ? (uint32_t)e->entry->component->id
                     : 0;
    snprintf(se->entry, sizeof se->entry, "%s", e->entry->name);
    atomic_store(&qtn__nedges, id);
    atomic_store(&h->nedges, id);
    bool direct = edge_direct(id);
    for (qtn__thread *t = thead; t; t = t->next)
        __atomic_store_n(&t->tdirect[id], direct, __ATOMIC_RELAXED);
    __atomic_store_n(&e->id, id, __ATOMIC_RELEASE);
    return 0;
}

qtn_edge *qtn__edge_find_locked(const qtn_component *caller, const qtn_entry *en) {
    uint32_t n = atomic_load(&qtn__nedges);
    for (uint32_t i = 1; i <= n; i++)
        if (qtn__edge_rep[i]->caller == caller && qtn__edge_rep[i]->entry == en)
            return qtn__edge_rep[i];
    return NULL;
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

void qtn__count_slow(uint32_t id) {
    atomic_fetch_add_explicit(&qtn__sf_edges(qtn__sf_area())[id].calls_slow, 1,
                              memory_order_relaxed);
}

void qtn__record_crossing(uint32_t id, uint64_t ns, bool fault, uint64_t bytes,
                          uint64_t overhead_ns) {
    qtn__sf_edge *s = &qtn__sf_edges(qtn__sf_area())[id];
    atomic_fetch_add_explicit(&s->crossings, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->ns_total, ns, memory_order_relaxed);
    if (bytes)
        atomic_fetch_add_explicit(&s->bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->overhead_ns, overhead_ns, memory_order_relaxed);
    if (fault)
        atomic_fetch_add_explicit(&s->faults, 1, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&s->ns_max, memory_order_relaxed);
    while (ns > m &&
           !atomic_compare_exchange_weak_explicit(&s->ns_max, &m, ns, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void qtn__count_parked(int c) {
    qtn__sf_comp *s = &qtn__sf_comps(qtn__sf_area())[c > 0 && c <= QTN_COMPONENTS_MAX ? c : 0];
    atomic_fetch_add_explicit(&s->parked_calls, 1, memory_order_relaxed);
}

void qtn__count_stale(int c) {
    qtn__sf_comp *s = &qtn__sf_comps(qtn__sf_area())[c > 0 && c <= QTN_COMPONENTS_MAX ? c : 0];
    atomic_fetch_add_explicit(&s->stale_calls, 1, memory_order_relaxed);
}

void qtn__sf_parked(int d, int parked) {
    atomic_store(&((qtn__sf_head *)qtn__sf_area())->parked[d], (uint8_t)(parked != 0));
}

void qtn__blame(const qtn_component *c, uint64_t recovery_ns) {
    int id = c && c->id > 0 ? c->id : 0;
    qtn__sf_comp *s = &qtn__sf_comps(qtn__sf_area())[id];
    atomic_fetch_add(&s->domain_faults, 1);
    atomic_fetch_add(&s->rec_total, recovery_ns);
    uint64_t m = atomic_load(&s->rec_max);
    while (recovery_ns > m && !atomic_compare_exchange_weak(&s->rec_max, &m, recovery_ns))
        ;
}

/* ---- reading statistics ------------------------------------------------ */

static const char *caller_name(const qtn_component *c) { return c ? c->name : "program"; }

uint64_t qtn__edge_calls_locked(uint32_t id) {
    uint64_t calls = qtn__sf_calls(qtn__sf_area(), id);
    for (qtn__thread *t = thead; t; t = t->next)
        if (t->rowi < 0) /* a row of its own, outside the area */
            calls += __atomic_load_n(&t->row[id], __ATOMIC_RELAXED);
    return calls;
}

/* Totals of edge id, live threads included (lock held). */
static void edge_totals_locked(uint32_t id, qtn_stats *st) {
    qtn__sf_edge *s = &qtn__sf_edges(qtn__sf_area())[id];
    st->calls = qtn__edge_calls_locked(id);
    st->calls_inner = qtn__inner_calls(id);
    st->crossings = atomic_load(&s->crossings);
    st->cross_ns_total = atomic_load(&s->ns_total);
    st->cross_ns_max = atomic_load(&s->ns_max);
    st->faults = atomic_load(&s->faults);
}

/* Before statistics are read in the host: the calls domains made inside
 * them, as they last published them. */
static void inner_now(void) {
    if (qtn__g.inited && qtn__g.self == QTN_DOMAIN_HOST)
        qtn__inner_fold_all();
}

static void stats_add(qtn_stats *a, const qtn_stats *b) {
    a->calls += b->calls;
    a->calls_inner += b->calls_inner;
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
    inner_now();
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&qtn__g.lock);
    int r = QTN_ENOENT;
    for (int c = 1; c <= qtn__ncomps; c++)
        if (comp_named(qtn__comps[c], component)) {
            qtn__sf_comp *s = &qtn__sf_comps(qtn__sf_area())[c];
            out->domain_faults = atomic_load(&s->domain_faults);
            out->recovery_ns_total = atomic_load(&s->rec_total);
            out->recovery_ns_max = atomic_load(&s->rec_max);
            out->stale_calls = atomic_load(&s->stale_calls);
            r = 0;
        }
    uint32_t n = atomic_load(&qtn__nedges);
    for (uint32_t i = 1; i <= n && !r; i++) {
        if (!comp_named(qtn__edge_rep[i]->entry->component, component))
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
    inner_now();
    if (caller && strcmp(caller, "program") == 0)
        caller = NULL;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&qtn__g.lock);
    int r = comp_exists(callee) && (!caller || comp_exists(caller)) ? 0 : QTN_ENOENT;
    uint32_t n = atomic_load(&qtn__nedges);
    for (uint32_t i = 1; i <= n && !r; i++) {
        const qtn_edge *e = qtn__edge_rep[i];
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
    inner_now();
    pthread_mutex_lock(&qtn__g.lock);
    uint32_t n = atomic_load(&qtn__nedges);
    struct row {
        const qtn_edge *e;
        qtn_stats st;
    } *rows = calloc(n + 1, sizeof *rows);
    for (uint32_t i = 1; rows && i <= n; i++) { /* one id per (caller, entry) */
        rows[i - 1].e = qtn__edge_rep[i];
        edge_totals_locked(i, &rows[i - 1].st);
    }
    pthread_mutex_unlock(&qtn__g.lock);
    if (!rows)
        return QTN_ENOMEM;
    for (uint32_t j = 0; j < n; j++) {
        const qtn_component *c = rows[j].e->entry->component;
        fn(ctx, caller_name(rows[j].e->caller), c ? c->name : "program", rows[j].e->entry->name,
           &rows[j].st);
    }
    free(rows);
    return (int)n;
}
