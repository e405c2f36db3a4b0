/* restart.c - the restart thread of each domain: after a death the
 * monitor noticed, it starts the domain's next incarnation (its spare, or
 * a new process) or parks the domain when its restarts cost too much or it
 * cannot start at all, tries parked domains again with backoff, and makes
 * the fault's one report once the failed calls finished failing. One
 * thread per domain, so a restart that takes seconds (an init hook) holds
 * up no other domain; the monitor makes a restart that is a word flip (a
 * ready spare) itself, at once (qtn__restart_quick). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#define SECOND 1000000000ull
#define BACKOFF_MIN (1 * SECOND)
#define BACKOFF_MAX (60 * SECOND)
#define SLOT_WAIT (10 * SECOND) /* callers of an old incarnation leaving its slot */

/* ---- what restarts cost, and parking -------------------------------------- */

static uint64_t window_ns(void) {
    uint64_t w = (uint64_t)qtn__g.restart_window_ms * 1000000u;
    return w < 32 ? 32 : w;
}

/* Counts one restart of dm that took cost_ns (dm->start held). */
static void cost_add(qtn__dom *dm, uint64_t now, uint64_t cost_ns) {
    uint64_t slice = now / (window_ns() / 32);
    struct qtn__rslice *s = &dm->rcost[slice % 32];
    if (s->slice != slice)
        *s = (struct qtn__rslice){0, 0, slice};
    s->n++;
    s->cost_ns += cost_ns;
}

/* Parking is a cost decision: past restart_max restarts within the window,
 * a domain is parked once its restarts took more than restart_share % of the
 * window's wall time (recovery, from the fault noticed to a new process
 * serving). A restart costs about a millisecond, so a component that
 * faults now and then under load keeps its domain; one that faults as fast
 * as it is restarted does not. dm->start held. */
static bool park_due(qtn__dom *dm, uint64_t now) {
    uint64_t win = window_ns(), slice = now / (win / 32), n = 0, cost = 0;
    for (int i = 0; i < 32; i++) {
        const struct qtn__rslice *s = &dm->rcost[i];
        if (s->n && slice - s->slice < 32) {
            n += s->n;
            cost += s->cost_ns;
        }
    }
    if (n < qtn__g.restart_max)
        return false;
    return (unsigned __int128)cost * 100 > (unsigned __int128)qtn__g.restart_share * win;
}

/* Parks dm (dm->start held): calls fail at once; the monitor tries it again
 * after 1 s, then 2 s, 4 s, ... up to a minute while it keeps being parked
 * soon after it starts. */
static void park(qtn__dom *dm, uint64_t now) {
    if (!dm->backoff_ns || now - dm->up_since > BACKOFF_MAX)
        dm->backoff_ns = BACKOFF_MIN;
    else if ((dm->backoff_ns *= 2) > BACKOFF_MAX)
        dm->backoff_ns = BACKOFF_MAX;
    __atomic_store_n(&dm->retry_at, now + dm->backoff_ns, __ATOMIC_RELEASE);
    atomic_store(&dm->state, QTN__DS_PARKED);
    qtn__wake_all(&dm->live);
    qtn__sf_parked(dm->id, 1);
}

/* ---- starting a domain's next incarnation ----------------------------- */

/* Waits until J's slot is free for a new incarnation: the callers of the
 * incarnation that had it gone, its process reaped by the monitor. Not the
 * monitor's own job: it reaps. Returns 0 or QTN_ESTATE. */
static int wait_slot(qtn__dom *dm, qtn__inc *J) {
    uint64_t t0 = qtn__now_ns();
    bool killed = false;
    for (;;) {
        pthread_mutex_lock(&dm->lock);
        bool lingers = J->pidfd >= 0;
        if (lingers && !killed && !J->dead && qtn__now_ns() - t0 > 100000000) {
            qtn__pidfd_kill(J->pidfd, SIGKILL); /* a process the slot no longer needs */
            killed = true;
        }
        pthread_mutex_unlock(&dm->lock);
        if (!lingers && !atomic_load(&J->active))
            return 0;
        if (qtn__stopping || qtn__now_ns() - t0 > SLOT_WAIT)
            return QTN_ESTATE;
        usleep(100);
    }
}

/* Starts incarnation `next` of dm and makes it serve: its spare, else (or
 * when the spare died) a new process; *warm: it was the spare. dm->start
 * held. */
static int start_next(qtn__dom *dm, uint32_t next, const qtn__inc *before, int *warm) {
    qtn__inc *J = qtn__inc_of(dm, next);
    int r = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_mutex_lock(&dm->lock);
        *warm = J->prepared && J->inc == next;
        pthread_mutex_unlock(&dm->lock);
        if (!*warm && (r = wait_slot(dm, J)))
            return r;
        r = qtn__inc_start(dm->id, next, before, NULL);
        if (!r || !*warm)
            return r;
    }
    return r;
}

/* The new incarnation serves: counts the recovery. dm->start held. */
static void restarted(qtn__dom *dm, qtn__death *x) {
    uint64_t now = qtn__now_ns();
    dm->prep_failed = false;
    x->r.recovery_ns = now - x->noticed;
    dm->restarts++;
    dm->recovery_total += x->r.recovery_ns;
    if (x->r.recovery_ns > dm->recovery_max)
        dm->recovery_max = x->r.recovery_ns;
    cost_add(dm, now, x->r.recovery_ns);
    atomic_store(&dm->restarted_at, now);
}

static bool ready_spare(qtn__dom *dm, uint32_t next) {
    qtn__inc *J = qtn__inc_of(dm, next);
    pthread_mutex_lock(&dm->lock);
    bool ok = qtn__spare_ready(J, next) && !atomic_load(&J->active);
    pthread_mutex_unlock(&dm->lock);
    return ok;
}

bool qtn__restart_quick(qtn__dom *dm, qtn__death *x) {
    /* not ahead of a restart the restart thread has yet to make; reports
     * it is still making (of deaths restarted here) are no obstacle */
    pthread_mutex_lock(&dm->rs_lock);
    bool idle = !dm->rs_cold;
    pthread_mutex_unlock(&dm->rs_lock);
    if (!idle || pthread_mutex_trylock(&dm->start))
        return false;
    bool done = false;
    uint32_t next = x->inc + 1;
    if (ready_spare(dm, next) && !park_due(dm, x->noticed)) {
        uint64_t tw = qtn__now_ns();
        int rs = qtn__inc_start(dm->id, next, x->I, NULL);
        if (getenv("QTN_DEBUG"))
            qtn__warn("debug: domain %d incarnation %u start: %d (pid %d, warm, at once): wake "
                      "%llu us, start %llu us",
                      dm->id, next, rs, (int)qtn__inc_of(dm, next)->pid,
                      (unsigned long long)(tw - x->noticed) / 1000,
                      (unsigned long long)(qtn__now_ns() - tw) / 1000);
        if (!rs) {
            restarted(dm, x);
            x->r.warm = 1;
            done = true;
        }
    }
    pthread_mutex_unlock(&dm->start);
    return done;
}

/* Restart thread: restarts dm after the death x (or parks it). */
static void restart(qtn__dom *dm, qtn__death *x) {
    if (qtn__stopping)
        return; /* shutdown: the report only */
    pthread_mutex_lock(&dm->start);
    uint64_t now = qtn__now_ns();
    bool due = park_due(dm, now);
    int rs = 0;
    if (!due) {
        uint32_t next = x->inc + 1;
        uint64_t tw = qtn__now_ns();
        rs = start_next(dm, next, x->I, &x->r.warm);
        if (getenv("QTN_DEBUG"))
            qtn__warn("debug: domain %d incarnation %u start: %d (pid %d): wake %llu us, "
                      "start %llu us",
                      dm->id, next, rs, (int)qtn__inc_of(dm, next)->pid,
                      (unsigned long long)(tw - x->noticed) / 1000,
                      (unsigned long long)(qtn__now_ns() - tw) / 1000);
        if (!rs)
            restarted(dm, x);
    }
    x->rs = rs;
    x->parked = due || rs;
    if (x->parked && !qtn__stopping)
        park(dm, qtn__now_ns());
    pthread_mutex_unlock(&dm->start);
    qtn__monitor_poke(); /* its timeout (parked?), spares now that dm->start is free */
}

/* Restart thread: tries a parked domain again (its backoff passed). */
static void retry(qtn__dom *dm) {
    pthread_mutex_lock(&dm->start);
    bool placed = false; /* a parked domain no component is placed in stays off */
    for (int c = 1; c <= qtn__ncomps && !placed; c++)
        placed = atomic_load(&qtn__plan[c]) == dm->id;
    if (atomic_load(&dm->state) == QTN__DS_PARKED && placed && !qtn__stopping) {
        int warm;
        int rs = start_next(dm, dm->inc + 1, NULL, &warm);
        uint64_t now = qtn__now_ns();
        if (getenv("QTN_DEBUG"))
            qtn__warn("debug: domain %d parked %llu ms, started again: %d", dm->id,
                      (unsigned long long)(dm->backoff_ns / 1000000), rs);
        if (rs) {
            park(dm, now); /* the next try waits twice as long */
        } else {
            dm->up_since = now;
            qtn__sf_parked(dm->id, 0);
        }
    }
    pthread_mutex_unlock(&dm->start);
    qtn__monitor_poke();
}

/* Restart thread: the report, once the failed calls finished failing (so
 * the count is whole); the monitor described the cause before. */
static void finish(qtn__death *x) {
    for (int i = 0; atomic_load(&x->I->active) && i < 2000 && !qtn__stopping; i++)
        usleep(100);
    x->r.calls_failed = atomic_load(&x->I->failed);
    qtn__inner_fold(x->I); /* the calls made inside it, as last published */
    atomic_store(&x->I->reporting, false); /* its slot may take a spare now */
    qtn__monitor_poke();
    qtn_report *r = &x->r; /* made at shutdown too: it was noticed before */
    if (x->blamed) {
        snprintf(r->entry, sizeof r->entry, "%s", x->blamed->name);
        if (x->blamed->component)
            snprintf(r->component, sizeof r->component, "%s", x->blamed->component->name);
    }
    if (x->parked) {
        r->parked = 1;
        r->recovery_ns = 0;
        size_t n = strlen(r->reason);
        snprintf(r->reason + n, sizeof r->reason - n,
                 x->rs ? "; could not restart: parked" : "; restarts cost too much: parked");
    }
    qtn__reporter_post(r, x->blamed ? x->blamed->component : NULL);
}

/* ---- the restart thread of a domain ---------------------------------------- */

static void *restarter(void *arg) {
    qtn__dom *dm = arg;
    pthread_mutex_lock(&dm->rs_lock);
    for (;;) {
        while (!dm->rs_n && !dm->rs_retry && !dm->rs_stop)
            pthread_cond_wait(&dm->rs_cv, &dm->rs_lock);
        if (dm->rs_stop && !dm->rs_n)
            break; /* (the deaths noticed before shutdown are reported) */
        if (dm->rs_n) {
            qtn__death *x = dm->rs_q[dm->rs_head];
            pthread_mutex_unlock(&dm->rs_lock);
            bool cold = !x->restarted;
            if (cold)
                restart(dm, x);
            pthread_mutex_lock(&dm->rs_lock);
            dm->rs_cold -= cold; /* the monitor may restart at once again */
            pthread_mutex_unlock(&dm->rs_lock);
            finish(x);
            pthread_mutex_lock(&dm->rs_lock);
            dm->rs_head = (dm->rs_head + 1) % QTN__INCS;
            dm->rs_n--;
        } else {
            dm->rs_retry = false;
            pthread_mutex_unlock(&dm->rs_lock);
            retry(dm);
            pthread_mutex_lock(&dm->rs_lock);
        }
    }
    pthread_mutex_unlock(&dm->rs_lock);
    return NULL;
}

/* Makes dm's restart thread on first need (from the monitor, so it
 * inherits the monitor's mask: no signals meant for the program). */
void qtn__restart_post(qtn__dom *dm, qtn__death *x) {
    pthread_mutex_lock(&dm->rs_lock);
    if (!dm->rs_running) {
        if (pthread_create(&dm->rs_thread, NULL, restarter, dm))
            qtn__fatal("monitor: cannot start the restart thread of domain %d", dm->id);
        dm->rs_running = true;
    }
    if (x) {
        /* each death holds its slot until reported: no more than slots */
        if (dm->rs_n == QTN__INCS)
            qtn__fatal("monitor: domain %d: %u deaths waiting for their reports", dm->id,
                       dm->rs_n);
        atomic_store(&x->I->reporting, true);
        dm->rs_q[(dm->rs_head + dm->rs_n) % QTN__INCS] = x;
        dm->rs_n++;
        dm->rs_cold += !x->restarted;
    } else {
        dm->rs_retry = true;
    }
    pthread_cond_broadcast(&dm->rs_cv);
    pthread_mutex_unlock(&dm->rs_lock);
}

int qtn__restart_due(void) {
    uint64_t now = qtn__now_ns(), next = 0;
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__dom *dm = &qtn__doms[d];
        uint64_t at = __atomic_load_n(&dm->retry_at, __ATOMIC_ACQUIRE);
        if (!at || atomic_load(&dm->state) != QTN__DS_PARKED)
            continue;
        if (now >= at) {
            if (__atomic_compare_exchange_n(&dm->retry_at, &at, 0, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                qtn__restart_post(dm, NULL);
        } else if (!next || at < next) {
            next = at;
        }
    }
    return next ? (int)((next - now) / 1000000) + 1 : -1;
}

void qtn__restart_init(void) {
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__dom *dm = &qtn__doms[d];
        pthread_mutex_init(&dm->rs_lock, NULL);
        pthread_cond_init(&dm->rs_cv, NULL);
        dm->rs_running = dm->rs_stop = dm->rs_retry = false;
        dm->rs_head = dm->rs_n = dm->rs_cold = 0;
    }
}

void qtn__restart_stop(void) {
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) { /* their waits end on qtn__stopping */
        qtn__dom *dm = &qtn__doms[d];
        pthread_mutex_lock(&dm->rs_lock);
        bool running = dm->rs_running;
        dm->rs_stop = true;
        pthread_cond_broadcast(&dm->rs_cv);
        pthread_mutex_unlock(&dm->rs_lock);
        if (running)
            pthread_join(dm->rs_thread, NULL);
        dm->rs_running = dm->rs_stop = dm->rs_retry = false;
        dm->rs_n = dm->rs_cold = 0;
        for (int h = 0; h < QTN__INCS; h++)
            atomic_store(&dm->incs[h].reporting, false);
        __atomic_store_n(&dm->retry_at, 0, __ATOMIC_RELEASE);
    }
}
