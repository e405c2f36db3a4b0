/* monitor.c - the monitor thread notices a domain process dying (its
 * pidfd, or the word its dying handler writes), fails the calls in flight
 * there and notes what it saw; the domain's own restart thread restarts it
 * from its spare (or parks it) and makes the fault's one report, so a
 * restart that takes seconds (an init hook) never holds up the recovery of
 * another domain. A restart that is a word flip (its spare is ready) the
 * monitor makes at once. Parked domains are tried again, with backoff. Also
 * shutting every domain down. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "domain.h"

_Atomic bool qtn__stopping;
static int mon_efd = -1; /* wakes the monitor when domains change */
static pthread_t mon_thread;
static bool mon_running;

#define SECOND 1000000000ull
#define BACKOFF_MIN (1 * SECOND)
#define BACKOFF_MAX (60 * SECOND)
#define SLOT_WAIT (10 * SECOND) /* callers of an old incarnation leaving its slot */

/* One death of a serving incarnation: what the monitor saw when it was
 * noticed, and what its restart made of it. One report. */
typedef struct qtn__death {
    qtn__inc *I;
    uint32_t inc;
    uint64_t noticed;
    bool restarted; /* by the monitor, at once (a warm spare) */
    int rs;         /* the restart: 0, or why the domain could not start */
    bool parked;
    /* seen before the failing calls unwound or anything else moved */
    qtn__crash cr;
    int kill_kind;
    char kill_reason[160];
    const qtn_entry *kill_entry, *on_chan, *first;
    const qtn_entry *blamed;
    qtn_report r;
} qtn__death;

/* by domain and parity of the incarnation: the death of incarnation n is
 * handled before incarnation n + 2 exists */
static qtn__death deaths[QTN_DOMAINS_MAX + 1][2];

/* Reports on their way out: the reporter thread names their frames (the
 * symbolizer may take a while, the first time above all) and queues them,
 * so no restart ever waits for that. */
#define PENDING 64
static struct pending {
    qtn_report r;
    const qtn_component *blamed;
} pending[PENDING];
static uint32_t pend_head, pend_n;
static bool rep_running, rep_stop;
static pthread_t rep_thread;
static pthread_mutex_t rep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rep_cv = PTHREAD_COND_INITIALIZER;

void qtn__monitor_poke(void) {
    uint64_t one = 1;
    (void)!write(mon_efd, &one, sizeof one);
}

/* Moves the channel words of a dead incarnation off the values its callers
 * sleep on and wakes them; they see the incarnation is not live. Under
 * dm->lock, where a caller takes a channel only while I serves: every
 * channel a caller may wait on is flipped. */
static void wake_callers(qtn__dom *dm, qtn__inc *I) {
    pthread_mutex_lock(&dm->lock);
    for (uint32_t k = 0; k < qtn__g.lay.nchan; k++) {
        if (!I->served[k])
            continue; /* no caller ever waited there */
        qtn__chan *ch = qtn__chan_in(I->base, k);
        atomic_fetch_xor(&ch->dseq, 0x80000000u);
        qtn__wake_all(&ch->dseq);
    }
    pthread_cond_broadcast(&dm->shared_cv);
    pthread_mutex_unlock(&dm->lock);
}

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
 * when the spare died) a new process. dm->start held. */
static int start_next(qtn__dom *dm, uint32_t next, const qtn__inc *before) {
    qtn__inc *J = &dm->incs[next & 1];
    int r = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_mutex_lock(&dm->lock);
        bool warm = J->prepared && J->inc == next;
        pthread_mutex_unlock(&dm->lock);
        if (!warm && (r = wait_slot(dm, J)))
            return r;
        r = qtn__inc_start(dm->id, next, before, NULL);
        if (!r || !warm)
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
}

static bool ready_spare(qtn__dom *dm, uint32_t next) {
    qtn__inc *J = &dm->incs[next & 1];
    pthread_mutex_lock(&dm->lock);
    bool ok = J->prepared && J->inc == next && !J->dead && !atomic_load(&J->active) &&
              atomic_load(&((qtn__dhdr *)J->base)->ready);
    pthread_mutex_unlock(&dm->lock);
    return ok;
}

/* Monitor: the restart at once, when it is only a word flip (the spare is
 * ready, nothing to wait for, not to be parked, nothing else going on in
 * the domain). True when done. */
static bool quick_restart(qtn__dom *dm, qtn__death *x) {
    pthread_mutex_lock(&dm->rs_lock);
    bool idle = !dm->rs_busy && !dm->rs_n;
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
                      dm->id, next, rs, (int)dm->incs[next & 1].pid,
                      (unsigned long long)(tw - x->noticed) / 1000,
                      (unsigned long long)(qtn__now_ns() - tw) / 1000);
        if (!rs) {
            restarted(dm, x);
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
        rs = start_next(dm, next, x->I);
        if (getenv("QTN_DEBUG"))
            qtn__warn("debug: domain %d incarnation %u start: %d (pid %d): wake %llu us, "
                      "start %llu us",
                      dm->id, next, rs, (int)dm->incs[next & 1].pid,
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
    qtn__monitor_poke(); /* a spare, now that dm->start is free */
}

/* Restart thread: tries a parked domain again (its backoff passed). */
static void retry(qtn__dom *dm) {
    pthread_mutex_lock(&dm->start);
    bool placed = false; /* a parked domain no component is placed in stays off */
    for (int c = 1; c <= qtn__ncomps && !placed; c++)
        placed = atomic_load(&qtn__plan[c]) == dm->id;
    if (atomic_load(&dm->state) == QTN__DS_PARKED && placed && !qtn__stopping) {
        int rs = start_next(dm, dm->inc + 1, NULL);
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

/* ---- the report ------------------------------------------------------------ */

static const char *sig_name(int sig) {
    const char *s = sigabbrev_np(sig);
    return s ? s : "?";
}

/* Monitor: fills the report's cause from what the domain wrote about
 * itself, the host's own kill and, when neither tells, the exit status. */
static void describe(qtn__death *x) {
    qtn_report *r = &x->r;
    const qtn__crash *cr = &x->cr;
    bool told = atomic_load(&cr->set) == 2;
    if (told) {
        r->fault_addr = cr->addr;
        r->nframes = cr->nframes <= QTN_REPORT_FRAMES ? cr->nframes : 0;
        memcpy(r->frames, cr->frames, r->nframes * sizeof r->frames[0]);
        if (x->on_chan)
            x->blamed = x->on_chan;
    }
    bool known = false;
    int status = 0;
    if (!told && !x->kill_kind) /* the process is gone: its status is on its way */
        status = qtn__zygote_exit_status(x->r.pid, &known);
    bool sig_ok = told && cr->sig > 0 && cr->sig < NSIG;
    if (x->kill_kind) {
        r->kind = x->kill_kind;
        r->signal = SIGKILL;
        snprintf(r->reason, sizeof r->reason, "%s", x->kill_reason);
        if (x->kill_entry)
            x->blamed = x->kill_entry;
    } else if (told && cr->sig == 0) { /* the exit trap told */
        r->kind = QTN_FAULT_EXIT;
        r->exit_code = cr->code & 0xff;
        snprintf(r->reason, sizeof r->reason, "the domain exited with status %d", r->exit_code);
    } else if (sig_ok && cr->sig == SIGSYS && cr->code == 1 /* SYS_SECCOMP */) {
        r->kind = QTN_FAULT_SECCOMP;
        r->signal = SIGSYS;
        r->syscall = cr->syscall;
        snprintf(r->reason, sizeof r->reason, "system call %d (%s) denied by the domain's filter",
                 cr->syscall, qtn__syscall_name(cr->syscall));
    } else if (sig_ok) { /* what the dying domain said; its exit status may be our SIGKILL */
        r->kind = QTN_FAULT_SIGNAL;
        r->signal = cr->sig;
        if (cr->code > 0 && (cr->sig == SIGSEGV || cr->sig == SIGBUS || cr->sig == SIGILL ||
                             cr->sig == SIGFPE)) /* the kernel's address, NULL included */
            snprintf(r->reason, sizeof r->reason, "SIG%s (%s) at address 0x%llx",
                     sig_name(r->signal), strsignal(r->signal), (unsigned long long)cr->addr);
        else
            snprintf(r->reason, sizeof r->reason, "SIG%s (%s)", sig_name(r->signal),
                     strsignal(r->signal));
    } else if (known && WIFEXITED(status)) {
        r->kind = QTN_FAULT_EXIT;
        r->exit_code = WEXITSTATUS(status);
        snprintf(r->reason, sizeof r->reason, "the domain exited with status %d", r->exit_code);
    } else if (known && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        r->kind = QTN_FAULT_KILLED;
        r->signal = SIGKILL;
        snprintf(r->reason, sizeof r->reason,
                 "killed by SIGKILL from outside (the OOM killer or a user)");
    } else if (known && WIFSIGNALED(status)) {
        r->kind = QTN_FAULT_SIGNAL;
        r->signal = WTERMSIG(status);
        snprintf(r->reason, sizeof r->reason, "SIG%s (%s)", sig_name(r->signal),
                 strsignal(r->signal));
    } else {
        r->kind = QTN_FAULT_KILLED;
        snprintf(r->reason, sizeof r->reason, "the domain process ended (status unknown)");
    }
    if (!x->blamed) /* no better clue: the first call in flight */
        x->blamed = x->first;
}

static void *reporter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&rep_lock);
    for (;;) {
        while (!pend_n && !rep_stop)
            pthread_cond_wait(&rep_cv, &rep_lock);
        if (!pend_n)
            break;
        struct pending *p = &pending[pend_head];
        pthread_mutex_unlock(&rep_lock);
        qtn__report_symbolize(&p->r);
        qtn__blame(p->blamed, p->r.recovery_ns);
        qtn__report_push(&p->r);
        pthread_mutex_lock(&rep_lock);
        pend_head = (pend_head + 1) % PENDING;
        pend_n--;
        pthread_cond_broadcast(&rep_cv);
    }
    pthread_mutex_unlock(&rep_lock);
    return NULL;
}

/* Restart thread: hands a report to the reporter (waits while PENDING are
 * on their way: the symbolizer cannot keep up with a crash loop). */
static void report_post(const qtn_report *r, const qtn_component *blamed) {
    pthread_mutex_lock(&rep_lock);
    if (!rep_running) {
        if (pthread_create(&rep_thread, NULL, reporter, NULL))
            qtn__fatal("monitor: cannot start the report thread");
        rep_running = true;
    }
    while (pend_n == PENDING && !rep_stop)
        pthread_cond_wait(&rep_cv, &rep_lock);
    if (pend_n < PENDING) {
        struct pending *p = &pending[(pend_head + pend_n) % PENDING];
        p->r = *r;
        p->blamed = blamed;
        pend_n++;
        pthread_cond_broadcast(&rep_cv);
    }
    pthread_mutex_unlock(&rep_lock);
}

/* Restart thread: the report, once the failed calls finished failing (so
 * the count is whole); the monitor described the cause before. */
static void finish(qtn__dom *dm, qtn__death *x) {
    for (int i = 0; atomic_load(&x->I->active) && i < 2000 && !qtn__stopping; i++)
        usleep(100);
    x->r.calls_failed = atomic_load(&x->I->failed);
    qtn__inc *held = x->I; /* its slot may take the next spare now */
    atomic_compare_exchange_strong(&dm->rs_holds, &held, NULL);
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
    report_post(r, x->blamed ? x->blamed->component : NULL);
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
        dm->rs_busy = true;
        if (dm->rs_n) {
            qtn__death *x = dm->rs_q[dm->rs_head];
            pthread_mutex_unlock(&dm->rs_lock);
            if (!x->restarted)
                restart(dm, x);
            finish(dm, x);
            pthread_mutex_lock(&dm->rs_lock);
            dm->rs_head = (dm->rs_head + 1) % 2;
            dm->rs_n--;
        } else {
            dm->rs_retry = false;
            pthread_mutex_unlock(&dm->rs_lock);
            retry(dm);
            pthread_mutex_lock(&dm->rs_lock);
        }
        dm->rs_busy = false;
    }
    pthread_mutex_unlock(&dm->rs_lock);
    return NULL;
}

/* Monitor: hands work to dm's restart thread, making it on first need (it
 * inherits the monitor's mask: no signals meant for the program). */
static void post(qtn__dom *dm, qtn__death *x) {
    pthread_mutex_lock(&dm->rs_lock);
    if (!dm->rs_running) {
        if (pthread_create(&dm->rs_thread, NULL, restarter, dm))
            qtn__fatal("monitor: cannot start the restart thread of domain %d", dm->id);
        dm->rs_running = true;
    }
    if (x) {
        if (dm->rs_n == 2)
            qtn__fatal("monitor: domain %d died twice before its restart", dm->id);
        atomic_store(&dm->rs_holds, x->I);
        dm->rs_q[(dm->rs_head + dm->rs_n) % 2] = x;
        dm->rs_n++;
    } else {
        dm->rs_retry = true;
    }
    pthread_cond_broadcast(&dm->rs_cv);
    pthread_mutex_unlock(&dm->rs_lock);
}

/* Incarnation I of domain d died: fail its calls, have it restarted (or
 * parked), and describe the fault for its one report. */
static void on_death(qtn__dom *dm, qtn__inc *I) {
    uint64_t noticed = qtn__now_ns();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    uint32_t inc = I->inc;
    pthread_mutex_lock(&dm->lock);
    bool spare = I->prepared; /* one being started sees it dead and gives up */
    I->prepared = false;
    pthread_mutex_unlock(&dm->lock);
    if (spare) { /* a spare died before it served: none again until a restart needs one */
        dm->prep_failed = true;
        if (!qtn__stopping)
            qtn__warn("domain %d: the process prepared for incarnation %u died before use", dm->id,
                      inc);
        return;
    }
    /* what was running and what it wrote, before the failing calls unwind */
    const qtn_entry *first = NULL;
    for (uint32_t k = 0; k < qtn__g.lay.nchan && !first; k++)
        first = __atomic_load_n(&I->running[k], __ATOMIC_RELAXED);
    qtn__crash cr;
    memcpy(&cr, &((qtn__dhdr *)I->base)->crash, sizeof cr); /* untrusted: copied once, checked */
    const qtn_entry *on_chan = NULL;
    if (atomic_load(&cr.set) == 2 && cr.chan >= 0 && (uint32_t)cr.chan < qtn__g.lay.nchan)
        on_chan = __atomic_load_n(&I->running[cr.chan], __ATOMIC_RELAXED);
    uint32_t expect = inc;
    bool serving = atomic_compare_exchange_strong(&dm->live, &expect, 0);
    if (getenv("QTN_DEBUG"))
        qtn__warn("debug: domain %d incarnation %u (pid %d) ended; live was %u", dm->id, inc,
                  (int)I->pid, expect);
    if (serving)
        atomic_store(&dm->state, qtn__stopping ? QTN__DS_OFF : QTN__DS_RESTARTING);
    wake_callers(dm, I);
    if (!serving || qtn__stopping)
        return; /* an old incarnation, or shutdown: nothing to restart */
    qtn__handles_forget(dm->id);
    qtn__death *x = &deaths[dm->id][inc & 1];
    memset(x, 0, sizeof *x);
    x->I = I;
    x->inc = inc;
    x->noticed = noticed;
    x->cr = cr;
    x->first = first;
    x->on_chan = on_chan;
    x->kill_kind = atomic_exchange(&dm->kill_kind, 0);
    if (x->kill_kind) {
        memcpy(x->kill_reason, dm->kill_reason, sizeof x->kill_reason);
        x->kill_entry = dm->kill_entry;
    }
    x->r.time_ns = (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec;
    x->r.domain = dm->id;
    x->r.pid = I->pid;
    x->r.incarnation = inc;
    /* restart first: callers are waiting */
    x->restarted = quick_restart(dm, x);
    describe(x); /* (waits for an exit status only when the process is gone) */
    post(dm, x);
}

/* A pidfd became readable: that process ended. Only the monitor closes
 * pidfds, so an fd number it polled cannot have been reused meanwhile. */
static void pidfd_ended(int d, int fd) {
    qtn__dom *dm = &qtn__doms[d];
    qtn__inc *I = NULL;
    bool handled = false;
    pthread_mutex_lock(&dm->lock);
    for (int h = 0; h < 2; h++)
        if (dm->incs[h].pidfd == fd) {
            I = &dm->incs[h];
            handled = I->dead; /* its dying word came first */
            I->dead = true;
            I->pidfd = -1;
            if (I->dyingfd >= 0)
                close(I->dyingfd);
            I->dyingfd = -1;
        }
    pthread_mutex_unlock(&dm->lock);
    if (!I)
        return; /* no incarnation's any more (shutdown): the number may be reused */
    close(fd);
    if (!handled)
        on_death(dm, I);
}

/* A domain wrote that it is dying (its fatal-signal handler or exit trap):
 * finish it and recover now, without waiting for the kernel to tear it
 * down. A domain that says so falsely only ends itself. */
static void dying(int d, int fd) {
    qtn__dom *dm = &qtn__doms[d];
    qtn__inc *I = NULL;
    pthread_mutex_lock(&dm->lock);
    for (int h = 0; h < 2; h++)
        if (dm->incs[h].dyingfd == fd && !dm->incs[h].dead && dm->incs[h].pidfd >= 0) {
            uint64_t v;
            (void)!read(fd, &v, sizeof v);
            I = &dm->incs[h];
            I->dead = true;
            qtn__pidfd_kill(I->pidfd, SIGKILL);
        }
    pthread_mutex_unlock(&dm->lock);
    if (I)
        on_death(dm, I);
}

/* Monitor: parked domains whose backoff passed go to their restart thread;
 * returns the ms until the next one is due (-1: none). */
static int retries_due(void) {
    uint64_t now = qtn__now_ns(), next = 0;
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__dom *dm = &qtn__doms[d];
        uint64_t at = __atomic_load_n(&dm->retry_at, __ATOMIC_ACQUIRE);
        if (!at || atomic_load(&dm->state) != QTN__DS_PARKED)
            continue;
        if (now >= at) {
            if (__atomic_compare_exchange_n(&dm->retry_at, &at, 0, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                post(dm, NULL);
        } else if (!next || at < next) {
            next = at;
        }
    }
    return next ? (int)((next - now) / 1000000) + 1 : -1;
}

static void *monitor(void *arg) {
    (void)arg;
    enum { MAXFD = 2 + QTN_DOMAINS_MAX * 4 };
    int timeout = -1;
    for (;;) {
        struct pollfd p[MAXFD];
        int map[MAXFD];
        int n = 0;
        p[n].fd = mon_efd, p[n].events = POLLIN, map[n++] = -1;
        p[n].fd = qtn__zygote_evfd(), p[n].events = POLLIN, map[n++] = 0;
        for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
            qtn__dom *dm = &qtn__doms[d];
            pthread_mutex_lock(&dm->lock);
            for (int h = 0; h < 2; h++) {
                qtn__inc *I = &dm->incs[h];
                if (I->pidfd >= 0)
                    p[n].fd = I->pidfd, p[n].events = POLLIN, map[n++] = d;
                if (I->dyingfd >= 0 && !I->dead)
                    p[n].fd = I->dyingfd, p[n].events = POLLIN, map[n++] = -d;
            }
            pthread_mutex_unlock(&dm->lock);
        }
        if (poll(p, (nfds_t)n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            qtn__fatal("monitor: poll: %s", strerror(errno));
        }
        if (p[0].revents & POLLIN) {
            uint64_t v;
            if (read(mon_efd, &v, sizeof v) == sizeof v && v >= (1ull << 32))
                return NULL; /* shutdown */
        }
        if (p[1].revents & POLLIN)
            qtn__zygote_event(false);
        else if (p[1].revents & (POLLHUP | POLLERR))
            qtn__zygote_event(true);
        /* one process event per poll: handling it may close fds and open
         * new ones with the same numbers, so the rest of this poll's
         * results could name the wrong file; they are polled again */
        for (int i = 2; i < n; i++)
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (map[i] < 0)
                    dying(-map[i], p[i].fd);
                else
                    pidfd_ended(map[i], p[i].fd);
                break;
            }
        bool again = qtn__prepare_spares();
        timeout = retries_due();
        if (again && (timeout < 0 || timeout > 5))
            timeout = 5; /* a domain was busy starting: its spare soon */
    }
}

int qtn__monitor_start(void) {
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__dom *dm = &qtn__doms[d];
        pthread_mutex_init(&dm->rs_lock, NULL);
        pthread_cond_init(&dm->rs_cv, NULL);
        dm->rs_running = dm->rs_stop = dm->rs_busy = dm->rs_retry = false;
        dm->rs_head = dm->rs_n = 0;
    }
    mon_efd = eventfd(0, EFD_CLOEXEC);
    if (mon_efd < 0)
        return QTN_ESYS;
    /* the monitor must not take signals meant for the program */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&mon_thread, NULL, monitor, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) {
        close(mon_efd);
        mon_efd = -1;
        return QTN_ESYS;
    }
    mon_running = true;
    return 0;
}

void qtn_shutdown(void) {
    pthread_mutex_lock(&qtn__g.lock);
    if (!qtn__g.inited || qtn__g.self != QTN_DOMAIN_HOST) {
        pthread_mutex_unlock(&qtn__g.lock);
        return;
    }
    pthread_mutex_unlock(&qtn__g.lock);
    qtn__control_stop(); /* no plan comes in while domains go */
    pthread_mutex_lock(&qtn__g.lock);
    qtn__stopping = true;
    pthread_mutex_unlock(&qtn__g.lock);
    if (mon_running) {
        uint64_t stop = 1ull << 32;
        (void)!write(mon_efd, &stop, sizeof stop);
        pthread_join(mon_thread, NULL);
        mon_running = false;
    }
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) { /* their waits end on qtn__stopping */
        qtn__dom *dm = &qtn__doms[d];
        pthread_mutex_lock(&dm->rs_lock);
        bool running = dm->rs_running;
        dm->rs_stop = true;
        pthread_cond_broadcast(&dm->rs_cv);
        pthread_mutex_unlock(&dm->rs_lock);
        if (running)
            pthread_join(dm->rs_thread, NULL);
        dm->rs_running = dm->rs_stop = dm->rs_busy = dm->rs_retry = false;
        dm->rs_n = 0;
        atomic_store(&dm->rs_holds, NULL);
        __atomic_store_n(&dm->retry_at, 0, __ATOMIC_RELEASE);
        qtn__handles_forget(d);
    }
    pthread_mutex_lock(&rep_lock); /* the reports on their way go out first */
    bool rep = rep_running;
    rep_stop = true;
    pthread_cond_broadcast(&rep_cv);
    pthread_mutex_unlock(&rep_lock);
    if (rep)
        pthread_join(rep_thread, NULL);
    rep_running = rep_stop = false;
    qtn__report_stop();
    qtn__crash_uninstall();
    pthread_mutex_lock(&qtn__g.lock);
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__dom *dm = &qtn__doms[d];
        atomic_store(&dm->live, 0);
        atomic_store(&dm->state, QTN__DS_OFF);
        qtn__wake_all(&dm->live);
        for (int h = 0; h < 2; h++) {
            qtn__inc *I = &dm->incs[h];
            if (I->pidfd >= 0) {
                qtn__pidfd_kill(I->pidfd, SIGKILL);
                close(I->pidfd);
                I->pidfd = -1;
            }
            if (I->dyingfd >= 0)
                close(I->dyingfd);
            I->dyingfd = -1;
            if (I->base)
                wake_callers(dm, I);
            free(I->free_spans);
            I->free_spans = NULL;
            I->free_cap = I->nfree = 0;
        }
    }
    qtn__zygote_stop();
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++)
        for (int h = 0; h < 2; h++) {
            qtn__inc *I = &qtn__doms[d].incs[h];
            for (int i = 0; atomic_load(&I->active) && i < 10000; i++)
                usleep(100); /* callers woken above are leaving */
            if (I->base) /* give the memory back; the reservation stays */
                mmap(I->base, QTN__SLOT_SIZE, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
            I->base = NULL;
            I->inc = 0;
        }
    close(mon_efd);
    mon_efd = -1;
    qtn__zygote_forget_exits();
    for (int c = 1; c <= qtn__ncomps; c++)
        atomic_store(&qtn__plan[c], 0);
    qtn__threads_replan_locked();
    qtn__g.inited = false;
    pthread_mutex_unlock(&qtn__g.lock);
}
