/* monitor.c - the monitor thread notices a domain process dying (its
 * pidfd, or the word its dying handler writes), fails the calls in flight
 * there, describes the fault from what it saw and hands the rest to the
 * domain's restart thread (restart.c); a restart that is a word flip (its
 * spare is ready) it makes at once. It also reaps, prepares spares and
 * wakes the restart threads of parked domains when their backoff passed,
 * and asks the spares thread (spares.c) for spares. Also shutting every
 * domain down. */
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

/* by domain and slot of the incarnation: the death of incarnation n is
 * reported before its slot takes incarnation n + QTN__INCS */
static qtn__death deaths[QTN_DOMAINS_MAX + 1][QTN__INCS];

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
    for (uint32_t k = 0; k < qtn__g.lay.nchan + QTN__LATE_CHANS; k++) {
        if (k < qtn__g.lay.nchan && !I->served[k])
            continue; /* no caller ever waited there (the late channels' servers may) */
        qtn__chan *ch = qtn__chan_in(I->base, k);
        atomic_fetch_xor(&ch->dseq, 0x80000000u);
        qtn__wake_all(&ch->dseq);
    }
    pthread_cond_broadcast(&dm->shared_cv);
    pthread_mutex_unlock(&dm->lock);
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
    qtn__death *x = &deaths[dm->id][inc % QTN__INCS];
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
    x->restarted = qtn__restart_quick(dm, x);
    describe(x); /* (waits for an exit status only when the process is gone) */
    qtn__restart_post(dm, x);
}

/* A pidfd became readable: that process ended. Only the monitor closes
 * pidfds, so an fd number it polled cannot have been reused meanwhile. */
static void pidfd_ended(int d, int fd) {
    qtn__dom *dm = &qtn__doms[d];
    qtn__inc *I = NULL;
    bool handled = false;
    pthread_mutex_lock(&dm->lock);
    for (int h = 0; h < QTN__INCS; h++)
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
    for (int h = 0; h < QTN__INCS; h++)
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

static void *monitor(void *arg) {
    (void)arg;
    enum { MAXFD = 2 + QTN_DOMAINS_MAX * QTN__INCS * 2 };
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
            for (int h = 0; h < QTN__INCS; h++) {
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
        qtn__spares_poke(); /* what it handled may call for a spare */
        timeout = qtn__restart_due();
    }
}

int qtn__monitor_start(void) {
    qtn__restart_init();
    mon_efd = eventfd(0, EFD_CLOEXEC);
    if (mon_efd < 0)
        return QTN_ESYS;
    /* the monitor must not take signals meant for the program */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&mon_thread, NULL, monitor, NULL);
    if (!r && qtn__spares_start()) {
        uint64_t stop = 1ull << 32;
        (void)!write(mon_efd, &stop, sizeof stop);
        pthread_join(mon_thread, NULL);
        r = 1;
    }
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
    qtn__spares_stop(); /* before the monitor: what it makes, the monitor watches */
    if (mon_running) {
        uint64_t stop = 1ull << 32;
        (void)!write(mon_efd, &stop, sizeof stop);
        pthread_join(mon_thread, NULL);
        mon_running = false;
    }
    qtn__restart_stop(); /* the deaths noticed before are reported */
    qtn__inner_fold_all(); /* before the last snapshot */
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++)
        qtn__handles_forget(d);
    qtn__cb_forget();
    qtn__reporter_stop();
    qtn__report_stop();
    qtn__crash_uninstall();
    pthread_mutex_lock(&qtn__g.lock);
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__dom *dm = &qtn__doms[d];
        atomic_store(&dm->live, 0);
        atomic_store(&dm->state, QTN__DS_OFF);
        qtn__wake_all(&dm->live);
        for (int h = 0; h < QTN__INCS; h++) {
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
        for (int h = 0; h < QTN__INCS; h++) {
            qtn__inc *I = &qtn__doms[d].incs[h];
            for (int i = 0; atomic_load(&I->active) && i < 10000; i++)
                usleep(100); /* callers woken above are leaving */
            /* give the memory back (the reservation stays), unless a thread
             * is still in it after a second (the late channel's server
             * running a callback that takes longer): its writes land in
             * memory still mapped, nobody else's */
            if (I->base && !atomic_load(&I->active))
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
