/* domain.c - incarnations of a domain: each is one process with its own
 * shared memory (a memfd mapped into its slot of the range reserved at
 * start-up, so the host and the domain see it at one address). A spare is
 * prepared ahead of need, so a restart is a word flip; callers bind to the
 * serving incarnation and leave it when their call is done. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "domain.h"

qtn__dom qtn__doms[QTN_DOMAINS_MAX + 1];

/* Waits until the process of I says it serves, or dies (the monitor marks
 * it dead), or 10 s pass, or shutdown begins; spins first, briefly: a warm
 * spare is ready already, and a process still setting itself up takes a
 * millisecond or more, for which a spinner here would take the core it
 * needs on a small machine. */
static int await_ready(qtn__inc *I) {
    qtn__dhdr *h = (qtn__dhdr *)I->base;
    uint64_t t0 = qtn__now_ns(), until = t0 + 10000000000ull;
    while (qtn__now_ns() - t0 < 100000)
        if (atomic_load_explicit(&h->ready, memory_order_acquire))
            return 0;
    for (;;) {
        if (atomic_load_explicit(&h->ready, memory_order_acquire))
            return 0;
        if (__atomic_load_n(&I->dead, __ATOMIC_ACQUIRE))
            return QTN_EDEAD; /* died starting: an init hook crashed? */
        uint64_t now = qtn__now_ns();
        if (now > until || atomic_load(&qtn__stopping))
            return QTN_EDEAD;
        qtn__await(&h->ready, 0, 1, &h->ready_sleep, NULL, 0, now + 1000000, NULL);
    }
}

/* Prepares incarnation `inc` of domain d: its slot, and a process forked
 * for it that sets itself up (handlers, init hooks, filter) and waits to be
 * told to serve. The warm spare of a recovery. dm->start held; the slot's
 * previous incarnation (inc - QTN__INCS) must be gone and reported. */
static int inc_prepare(int d, uint32_t inc, const uint8_t *plan) {
    qtn__dom *dm = &qtn__doms[d];
    qtn__inc *I = qtn__inc_of(dm, inc);
    if (atomic_load(&I->active) || I->pidfd >= 0 || atomic_load(&I->reporting))
        return QTN_ESTATE; /* the slot's incarnation before still leaving */
    char *base = qtn__slot(d, inc);
    int memfd = memfd_create("quarantine-domain", MFD_CLOEXEC);
    if (memfd < 0)
        return QTN_ESYS;
    /* a dying process writes here: the monitor need not wait for its exit */
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0 || ftruncate(memfd, (off_t)QTN__SLOT_SIZE) < 0 ||
        mmap(base, QTN__SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, memfd, 0) ==
            MAP_FAILED) {
        close(memfd);
        if (efd >= 0)
            close(efd);
        return QTN_ESYS;
    }
    qtn__dhdr *h = (qtn__dhdr *)base;
    h->magic = QTN__DHDR_MAGIC;
    h->domain = (uint32_t)d;
    h->inc = inc;
    h->seccomp = qtn__g.seccomp;
    for (int c = 1; c <= qtn__ncomps; c++) { /* its components set up before the filter */
        I->setup[c] = plan ? plan[c] : atomic_load(&qtn__plan[c]);
        atomic_store(&h->plan[c], I->setup[c]);
    }
    pthread_mutex_lock(&dm->lock);
    /* serving threads start waiting on the channels held now: in the
     * serving incarnation (a spare's), or the one that died (a restart) */
    uint32_t live = atomic_load(&dm->live), from = live ? live : inc - 1;
    const qtn__inc *before = qtn__inc_of(dm, from);
    uint8_t pre[QTN__CHAN_MAX];
    memset(pre, 0, sizeof pre);
    pre[0] = 1;
    if (before->inc == from && from)
        for (uint32_t k = 0; k < qtn__g.lay.nchan; k++)
            pre[k] |= before->used[k];
    I->inc = inc;
    I->d = d;
    I->base = base;
    I->dead = false;
    atomic_store(&I->doomed, false);
    I->prepared = false;
    I->pid = 0;
    atomic_store(&I->failed, 0);
    memset(I->used, 0, sizeof I->used);
    memset(I->served, 0, sizeof I->served);
    memset(I->seq, 0, sizeof I->seq);
    memset(I->dseq, 0, sizeof I->dseq);
    memset(I->running, 0, sizeof I->running);
    I->in_use = I->nserved = 0;
    for (uint32_t k = 0; k < qtn__g.lay.nchan; k++)
        if (pre[k]) {
            I->served[k] = 1;
            I->nserved++;
            atomic_fetch_or(&h->want[k / 64], 1ull << (k % 64));
        }
    qtn__bulk_reset(I);
    pthread_mutex_unlock(&dm->lock);
    pid_t pid = 0;
    int pfd = -1, r = qtn__zygote_spawn(d, inc, memfd, efd, &pid, &pfd);
    close(memfd);
    if (r) {
        close(efd);
        I->inc = 0;
        return r;
    }
    pthread_mutex_lock(&dm->lock);
    I->pid = pid;
    I->pidfd = pfd;
    I->dyingfd = efd;
    I->prepared = true;
    pthread_mutex_unlock(&dm->lock);
    qtn__monitor_poke(); /* the monitor polls its pidfd */
    return 0;
}

/* Makes incarnation I the serving one (dm->start and dm->lock held): its
 * header follows the plan in force (the plan may have changed since the
 * process was prepared), then callers waiting for it are woken. */
static void serve_locked(qtn__dom *dm, qtn__inc *I, const uint8_t *plan) {
    qtn__dhdr *h = (qtn__dhdr *)I->base;
    bool changed = false;
    for (int c = 1; c <= qtn__ncomps; c++) {
        uint8_t want = plan ? plan[c] : atomic_load(&qtn__plan[c]);
        if (atomic_load_explicit(&h->plan[c], memory_order_relaxed) != want) {
            atomic_store_explicit(&h->plan[c], want, memory_order_relaxed);
            changed = true;
        }
    }
    if (changed) {
        atomic_fetch_add_explicit(&h->plan_gen, 1, memory_order_release);
        atomic_fetch_add_explicit(&h->bell, 1, memory_order_release);
        qtn__wake_all(&h->bell);
    }
    I->prepared = false;
    dm->inc = I->inc;
    atomic_store(&dm->state, QTN__DS_UP);
    atomic_store(&dm->live, I->inc);
    qtn__wake_all(&dm->live);
}

/* Makes prepared incarnation `inc` serve: its process has set itself up,
 * with threads waiting on the channels the incarnation before served (any
 * it lacks are asked for now). Whether it died meanwhile is decided under
 * dm->lock, where the monitor marks it dead, so a process the monitor saw
 * die never becomes the serving one. dm->start held. */
static int inc_activate(int d, uint32_t inc, const qtn__inc *before, const uint8_t *plan) {
    qtn__dom *dm = &qtn__doms[d];
    qtn__inc *I = qtn__inc_of(dm, inc);
    if (before) {
        pthread_mutex_lock(&dm->lock);
        for (uint32_t k = 0; k < qtn__g.lay.nchan; k++)
            if (before->used[k])
                qtn__want_served(I, k);
        pthread_mutex_unlock(&dm->lock);
    }
    int r = await_ready(I);
    pthread_mutex_lock(&dm->lock);
    if (!r && I->dead)
        r = QTN_EDEAD;
    if (r) {
        if (I->pidfd >= 0 && !I->dead)
            qtn__pidfd_kill(I->pidfd, SIGKILL); /* the monitor reaps it */
        I->prepared = false;
    } else {
        serve_locked(dm, I, plan);
    }
    pthread_mutex_unlock(&dm->lock);
    if (!r)
        qtn__monitor_poke(); /* the next spares (the monitor asks for them) */
    return r;
}

int qtn__inc_start(int d, uint32_t inc, const qtn__inc *before, const uint8_t *plan) {
    qtn__dom *dm = &qtn__doms[d];
    qtn__inc *I = qtn__inc_of(dm, inc);
    if (!(I->prepared && I->inc == inc)) {
        int r = inc_prepare(d, inc, plan);
        if (r)
            return r;
    }
    return inc_activate(d, inc, before, plan);
}

int qtn__dom_start_locked(int d, const uint8_t *plan) {
    qtn__dom *dm = &qtn__doms[d];
    pthread_mutex_lock(&dm->start);
    int st = atomic_load(&dm->state), r = 0;
    if (st == QTN__DS_UP || st == QTN__DS_RESTARTING)
        goto out;
    uint32_t inc = dm->inc + 1;
    if ((r = qtn__inc_start(d, inc, NULL, plan)))
        goto out;
    /* a fresh start forgets the restart history */
    memset(dm->rcost, 0, sizeof dm->rcost);
    dm->backoff_ns = 0;
    __atomic_store_n(&dm->retry_at, 0, __ATOMIC_RELEASE);
    dm->up_since = qtn__now_ns();
    qtn__sf_parked(d, 0);
out:
    pthread_mutex_unlock(&dm->start);
    qtn__monitor_poke(); /* its spares, now that dm->start is free */
    return r;
}

#define REFILL_AFTER_NS 2000000ull

/* The first of dm's next incarnations (live + 1 ... live + spares) that
 * has no prepared process, when its slot is free for one: 0 when there is
 * none to make, or none can be made yet (*busy: its slot's incarnation
 * before is still leaving or being reported, or the domain restarted just
 * now and has a spare ready still). Spares are made in order:
 * the next restart takes live + 1. dm->start held. */
static uint32_t spare_wanted(qtn__dom *dm, uint32_t live, bool *busy) {
    uint32_t want = 0;
    bool ready = false;
    pthread_mutex_lock(&dm->lock);
    for (uint32_t s = 1; s <= qtn__g.spares && !want && !*busy; s++) {
        qtn__inc *J = qtn__inc_of(dm, live + s);
        if (J->prepared && J->inc == live + s) {
            ready |= qtn__spare_ready(J, live + s);
            continue;
        }
        /* just restarted with a spare still ready: the callers the fault
         * failed are coming back, and the CPU is theirs first (making a
         * process takes half a millisecond of it) */
        if (ready && qtn__now_ns() - atomic_load(&dm->restarted_at) < REFILL_AFTER_NS) {
            *busy = true;
            break;
        }
        if (!atomic_load(&J->active) && J->pidfd < 0 && !atomic_load(&J->reporting))
            want = live + s;
        else
            *busy = true;
    }
    pthread_mutex_unlock(&dm->lock);
    return want;
}

int qtn__prepare_spares(void) {
    int more = 0;
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__dom *dm = &qtn__doms[d];
        if (atomic_load(&dm->state) != QTN__DS_UP || dm->prep_failed || qtn__stopping)
            continue;
        /* a start or restart of this domain holds dm->start, perhaps for
         * seconds (an init hook): never wait for it here */
        if (pthread_mutex_trylock(&dm->start)) {
            more |= 1;
            continue;
        }
        uint32_t live = atomic_load(&dm->live);
        bool busy = false;
        uint32_t next = live ? spare_wanted(dm, live, &busy) : 0;
        more |= busy;
        /* one process per call: the spares thread asks again (and a
         * domain's first spare comes before another domain's second) */
        if (next && !(more & 2)) {
            if (inc_prepare(d, next, NULL))
                dm->prep_failed = true; /* a restart will try again, in line */
            else
                more |= 2;
        }
        pthread_mutex_unlock(&dm->start);
    }
    return more;
}

qtn__inc *qtn__inc_enter(int d, uint64_t until, int *err) {
    qtn__dom *dm = &qtn__doms[d];
    uint64_t first = 0;
    for (;;) {
        uint32_t inc = atomic_load(&dm->live);
        if (inc) {
            qtn__inc *I = qtn__inc_of(dm, inc);
            if (!atomic_load(&I->doomed)) {
                atomic_fetch_add(&I->active, 1);
                if (atomic_load(&dm->live) == inc && !atomic_load(&I->doomed))
                    return I;
                atomic_fetch_sub(&I->active, 1);
                continue;
            } /* killed, not yet seen dead: wait for the next one, as below */
        } else {
            int st = atomic_load(&dm->state);
            if (st == QTN__DS_PARKED || st == QTN__DS_OFF) {
                *err = st == QTN__DS_PARKED ? QTN_EPARKED : QTN_EDEAD;
                return NULL;
            } /* UP with none live: the monitor is between the two; a restart */
        }
        /* a restart takes a fraction of a millisecond: wait for it (spin
         * first) rather than fail, but not past the call's deadline */
        uint64_t now = qtn__now_ns();
        if (!first) {
            first = now;
            if (!until || until > now + 10000000000ull)
                until = now + 10000000000ull;
        } else if (now >= until) {
            *err = QTN_EDEAD;
            return NULL;
        }
        /* the first 10 ms, as many spinning at once as waiters may: a crowd
         * spinning here would take the CPU the restart needs */
        if (now - first < 10000000 &&
            atomic_fetch_add_explicit(&qtn__g.spinners, 1, memory_order_relaxed) <
                qtn__g.spin_cap) {
            for (int i = 0; i < 256 && atomic_load(&dm->live) == inc; i++)
                qtn__cpu_relax();
            atomic_fetch_sub_explicit(&qtn__g.spinners, 1, memory_order_relaxed);
            continue;
        }
        if (now - first < 10000000)
            atomic_fetch_sub_explicit(&qtn__g.spinners, 1, memory_order_relaxed);
        uint64_t nap = now + (now - first < 10000000 ? 1000000 : 100000000);
        qtn__await(&dm->live, inc, inc, &dm->live_sleep, NULL, 0, nap < until ? nap : until,
                   NULL);
    }
}

void qtn__inc_leave(qtn__inc *I) { atomic_fetch_sub(&I->active, 1); }

void qtn__dom_kill(int d, uint32_t inc, int kind, const qtn_entry *en, const char *why) {
    qtn__dom *dm = &qtn__doms[d];
    qtn__inc *I = qtn__inc_of(dm, inc);
    pthread_mutex_lock(&dm->lock);
    if (I->inc == inc && !I->dead && I->pidfd >= 0) {
        int none = 0;
        if (atomic_compare_exchange_strong(&dm->kill_kind, &none, kind)) {
            dm->kill_entry = en;
            snprintf(dm->kill_reason, sizeof dm->kill_reason, "%s", why);
        }
        /* calls that start from now on wait for the next incarnation, as
         * during a restart, instead of going into this one to fail with it
         * (until the monitor sees it die, it is still the serving one) */
        atomic_store(&I->doomed, true);
        qtn__pidfd_kill(I->pidfd, SIGKILL);
    }
    pthread_mutex_unlock(&dm->lock);
}

uint64_t qtn__domains_cpu_ns(void) {
    static long hz;
    if (!hz)
        hz = sysconf(_SC_CLK_TCK);
    uint64_t total = 0;
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__dom *dm = &qtn__doms[d];
        pid_t pids[QTN__INCS] = {0};
        pthread_mutex_lock(&dm->lock);
        for (int h = 0; h < QTN__INCS; h++)
            if (dm->incs[h].pidfd >= 0 && !dm->incs[h].dead)
                pids[h] = dm->incs[h].pid;
        pthread_mutex_unlock(&dm->lock);
        for (int h = 0; h < QTN__INCS; h++) {
            if (!pids[h])
                continue;
            char path[64], buf[1024];
            snprintf(path, sizeof path, "/proc/%d/stat", (int)pids[h]);
            FILE *f = fopen(path, "re");
            size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
            if (f)
                fclose(f);
            buf[n] = 0;
            /* after the name in parentheses: state, then fields 4.. ; utime
             * and stime are fields 14 and 15 */
            char *s = strrchr(buf, ')');
            unsigned long long ut, stm;
            if (s && sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                            &stm) == 2 && hz > 0)
                total += (ut + stm) * (1000000000ull / (uint64_t)hz);
        }
    }
    return total;
}
