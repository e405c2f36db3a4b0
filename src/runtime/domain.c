/* domain.c - the zygote, domain processes, their channels and the monitor.
 *
 * The zygote is forked by qtn_init before the program has threads; domain
 * processes are forked from it on request, so they start from the program's
 * state at start-up, single-threaded, whatever the host is doing. Each
 * domain maps its own shared memory (a memfd) into its slot of the range
 * reserved at start-up, so the host and the domain see it at one address. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

qtn__dom qtn__doms[QTN_DOMAINS_MAX + 1];

enum { Z_SPAWN = 1, Z_SPAWNED, Z_FAILED, Z_EXITED };

typedef struct zmsg {
    uint32_t op;
    int32_t dom;
    int32_t pid;
    int32_t status; /* wait status, or errno for Z_FAILED */
    uint32_t inc;
} zmsg;

static int zctl = -1;     /* host end: spawn requests and replies */
static pthread_mutex_t zlock = PTHREAD_MUTEX_INITIALIZER; /* one request at a time */
static int zevt = -1;     /* host end: exit notices from the zygote */
static pid_t zpid;
static int mon_efd = -1;  /* wakes the monitor when domains change */
static pthread_t mon_thread;
static bool mon_running;
static bool zygote_gone; /* monitor thread only */
static _Atomic bool stopping;

/* Exit statuses the zygote sent that the monitor has not used yet. */
static struct { pid_t pid; int status; } exits[64];
static int nexits;

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
static int pidfd_kill(int fd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/* Sends m with up to two fds attached (-1: none). */
static int send_fd2(int sock, const zmsg *m, int fd, int fd2) {
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
    char cbuf[CMSG_SPACE(2 * sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    int fds[2] = {fd, fd2}, n = fd < 0 ? 0 : fd2 < 0 ? 1 : 2;
    if (n) {
        memset(cbuf, 0, sizeof cbuf);
        mh.msg_control = cbuf;
        mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    }
    ssize_t k;
    do
        k = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (k < 0 && errno == EINTR);
    return k == (ssize_t)sizeof *m ? 0 : -1;
}

static int send_fd(int sock, const zmsg *m, int fd) { return send_fd2(sock, m, fd, -1); }

/* Receives one message and up to two fds attached to it (-1 where none). */
static int recv_fd2(int sock, zmsg *m, int *fd, int *fd2) {
    struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
    char cbuf[CMSG_SPACE(2 * sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    *fd = *fd2 = -1;
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof *m)
        return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int fds[2] = {-1, -1};
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds, CMSG_DATA(c), (k > 2 ? 2 : k) * sizeof(int));
            for (size_t i = 2; i < k; i++) { /* more than we asked for */
                int extra;
                memcpy(&extra, CMSG_DATA(c) + i * sizeof(int), sizeof extra);
                close(extra);
            }
            *fd = fds[0];
            *fd2 = fds[1];
        }
    return 0;
}

static int recv_fd(int sock, zmsg *m, int *fd) {
    int fd2;
    int r = recv_fd2(sock, m, fd, &fd2);
    if (fd2 >= 0)
        close(fd2);
    return r;
}

/* ---- the zygote ------------------------------------------------------------ */

static void close_other_fds(const int *keep, int nkeep) {
    int lo = 3;
    for (;;) {
        int next = -1;
        for (int i = 0; i < nkeep; i++)
            if (keep[i] >= lo && (next < 0 || keep[i] < next))
                next = keep[i];
        if (next < 0) {
            syscall(SYS_close_range, (unsigned)lo, ~0u, 0);
            return;
        }
        if (next > lo)
            syscall(SYS_close_range, (unsigned)lo, (unsigned)(next - 1), 0);
        lo = next + 1;
    }
}

static void die_with_parent(pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0); /* the parent died before we asked */
}

/* A new domain process: set up everything that does not need the host,
 * then wait for the word to serve (see qtn__domain_child). */
static void child_main(int d, uint32_t inc, int memfd, int dyingfd) {
    /* forked while qtn_init held the lock: this process has one thread */
    pthread_mutex_init(&qtn__g.lock, NULL);
    void *at = mmap(qtn__slot(d, inc), QTN__SLOT_SIZE, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_FIXED, memfd, 0);
    if (at == MAP_FAILED)
        _exit(127);
    close(memfd);
    qtn__g.self = d;
    qtn__g.self_inc = inc;
    qtn__g.dying_fd = dyingfd;
    qtn__g.inited = true;
    qtn__domain_child(d);
}

static void zygote_main(int ctl, int evt) {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC);
    if (sfd < 0)
        _exit(1);
    pid_t me = getpid();
    for (;;) {
        struct pollfd p[2] = {{.fd = ctl, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            (void)!read(sfd, &si, sizeof si);
            int st;
            pid_t pid;
            while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
                zmsg m = {.op = Z_EXITED, .pid = pid, .status = st};
                send_fd(evt, &m, -1);
            }
        }
        if (p[0].revents & (POLLHUP | POLLERR) && !(p[0].revents & POLLIN))
            _exit(0); /* the host is gone; our children die with us */
        if (!(p[0].revents & POLLIN))
            continue;
        zmsg m;
        int memfd, dyingfd;
        if (recv_fd2(ctl, &m, &memfd, &dyingfd) < 0)
            _exit(0);
        zmsg rep = {.op = Z_FAILED, .dom = m.dom, .status = EINVAL};
        int pfd = -1;
        if (m.op == Z_SPAWN && memfd >= 0 && dyingfd >= 0 && m.dom >= 1 &&
            m.dom <= QTN_DOMAINS_MAX) {
            pid_t pid = fork();
            if (pid == 0) {
                die_with_parent(me);
                close(ctl);
                close(evt);
                close(sfd);
                child_main(m.dom, m.inc, memfd, dyingfd);
            }
            if (pid > 0) {
                pfd = pidfd_open_(pid);
                rep = (zmsg){.op = Z_SPAWNED, .dom = m.dom, .pid = pid, .inc = m.inc};
            } else {
                rep.status = errno;
            }
        }
        if (memfd >= 0)
            close(memfd);
        if (dyingfd >= 0)
            close(dyingfd);
        send_fd(ctl, &rep, pfd);
        if (pfd >= 0)
            close(pfd);
    }
}

int qtn__zygote_start(void) {
    int c[2], e[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c) < 0)
        return QTN_ESYS;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, e) < 0) {
        close(c[0]);
        close(c[1]);
        return QTN_ESYS;
    }
    fflush(NULL); /* buffered output must not be written again by every child */
    pid_t host = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(c[0]), close(c[1]), close(e[0]), close(e[1]);
        return QTN_ESYS;
    }
    if (pid == 0) {
        die_with_parent(host);
        int keep[2] = {c[1], e[1]};
        close_other_fds(keep, 2);
        zygote_main(c[1], e[1]);
        _exit(0);
    }
    close(c[1]);
    close(e[1]);
    zctl = c[0];
    zevt = e[0];
    zpid = pid;
    return 0;
}

void qtn__zygote_stop(void) {
    if (zctl >= 0)
        close(zctl);
    if (zevt >= 0)
        close(zevt);
    zctl = zevt = -1;
    if (zpid > 0) {
        kill(zpid, SIGKILL);
        while (waitpid(zpid, NULL, 0) < 0 && errno == EINTR)
            ;
        zpid = 0;
    }
}

/* ---- incarnations (host) ---------------------------------------------------- */

static void bulk_reset(qtn__inc *I) {
    I->nfree = 0;
    if (!I->free_cap) {
        I->free_spans = malloc(64 * sizeof *I->free_spans);
        if (!I->free_spans)
            return;
        I->free_cap = 64;
    }
    I->free_spans[0].off = qtn__g.lay.bulk_off;
    I->free_spans[0].len = QTN__SLOT_SIZE - qtn__g.lay.bulk_off;
    I->nfree = 1;
}

static void want_served(qtn__inc *I, uint32_t k);

/* Waits until the process of h says it serves, or dies, or 10 s pass;
 * spins first: this is the heart of a recovery. */
static int await_ready(qtn__dhdr *h, int pidfd) {
    uint64_t t0 = qtn__now_ns(), until = t0 + 10000000000ull;
    while (qtn__now_ns() - t0 < 2000000)
        if (atomic_load_explicit(&h->ready, memory_order_acquire))
            return 0;
    for (;;) {
        if (atomic_load_explicit(&h->ready, memory_order_acquire))
            return 0;
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0)
            return QTN_EDEAD; /* died starting: an init hook crashed? */
        if (qtn__now_ns() > until)
            return QTN_EDEAD;
        qtn__await(&h->ready, 0, 1, &h->ready_sleep, NULL, 0, 1000000);
    }
}

/* Prepares incarnation `inc` of domain d: its slot, and a process forked
 * for it that sets itself up (handlers, init hooks, filter) and waits to be
 * told to serve. The warm spare of a recovery. dm->start held; the slot's
 * previous incarnation (inc - 2) must be gone. */
static int inc_prepare(int d, uint32_t inc) {
    qtn__dom *dm = &qtn__doms[d];
    qtn__inc *I = &dm->incs[inc & 1];
    if (atomic_load(&I->active) || I->pidfd >= 0)
        return QTN_ESTATE; /* callers of incarnation inc - 2 still leaving */
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
    for (int c = 1; c <= qtn__ncomps; c++)
        atomic_store(&h->plan[c], atomic_load(&qtn__plan[c]));
    pthread_mutex_lock(&dm->lock);
    /* serving threads start waiting on the channels held now */
    const qtn__inc *before = &dm->incs[(inc - 1) & 1];
    uint8_t pre[QTN__CHAN_MAX];
    memset(pre, 0, sizeof pre);
    pre[0] = 1;
    if (before->inc == inc - 1)
        for (uint32_t k = 0; k < qtn__g.lay.nchan; k++)
            pre[k] |= before->used[k];
    I->inc = inc;
    I->d = d;
    I->base = base;
    I->dead = false;
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
    bulk_reset(I);
    pthread_mutex_unlock(&dm->lock);
    zmsg m = {.op = Z_SPAWN, .dom = d, .inc = inc}, rep = {0};
    int pfd = -1, r = 0;
    pthread_mutex_lock(&zlock);
    if (zctl < 0 || send_fd2(zctl, &m, memfd, efd) < 0 || recv_fd(zctl, &rep, &pfd) < 0) {
        errno = EPIPE;
        r = QTN_ESYS;
    }
    pthread_mutex_unlock(&zlock);
    close(memfd);
    if (!r && (rep.op != Z_SPAWNED || pfd < 0)) {
        if (pfd >= 0)
            close(pfd);
        errno = rep.op == Z_FAILED ? rep.status : EPROTO;
        r = QTN_ESYS;
    }
    if (r) {
        close(efd);
        I->inc = 0;
        return r;
    }
    pthread_mutex_lock(&dm->lock);
    I->pid = rep.pid;
    I->pidfd = pfd;
    I->dyingfd = efd;
    I->prepared = true;
    pthread_mutex_unlock(&dm->lock);
    uint64_t one = 1;
    (void)!write(mon_efd, &one, sizeof one); /* the monitor polls its pidfd */
    return 0;
}

/* Makes sure prepared incarnation `inc` can serve: its process has set
 * itself up, with threads waiting on the channels the incarnation before
 * served (any it lacks are asked for now). dm->start held. */
static int inc_activate(int d, uint32_t inc, const qtn__inc *before) {
    qtn__dom *dm = &qtn__doms[d];
    qtn__inc *I = &dm->incs[inc & 1];
    qtn__dhdr *h = (qtn__dhdr *)I->base;
    if (before) {
        pthread_mutex_lock(&dm->lock);
        for (uint32_t k = 0; k < qtn__g.lay.nchan; k++)
            if (before->used[k])
                want_served(I, k);
        pthread_mutex_unlock(&dm->lock);
    }
    int r = await_ready(h, I->pidfd);
    if (r)
        pidfd_kill(I->pidfd, SIGKILL); /* the monitor reaps it */
    I->prepared = false;
    return r;
}

/* Starts incarnation `inc`: the prepared spare if there is one, else a new
 * process now. dm->start held. */
static int inc_start(int d, uint32_t inc, const qtn__inc *before) {
    qtn__dom *dm = &qtn__doms[d];
    qtn__inc *I = &dm->incs[inc & 1];
    if (!(I->prepared && I->inc == inc)) {
        int r = inc_prepare(d, inc);
        if (r)
            return r;
    }
    return inc_activate(d, inc, before);
}

/* Makes incarnation inc the serving one and wakes callers waiting for it. */
static void inc_serve(qtn__dom *dm, uint32_t inc) {
    dm->inc = inc;
    atomic_store(&dm->state, QTN__DS_UP);
    atomic_store(&dm->live, inc);
    qtn__wake_all(&dm->live);
    uint64_t one = 1;
    (void)!write(mon_efd, &one, sizeof one); /* prepare the next spare */
}

int qtn__dom_start_locked(int d) {
    qtn__dom *dm = &qtn__doms[d];
    pthread_mutex_lock(&dm->start);
    int st = atomic_load(&dm->state), r = 0;
    if (st == QTN__DS_UP || st == QTN__DS_RESTARTING)
        goto out;
    uint32_t inc = dm->inc + 1;
    if ((r = inc_start(d, inc, NULL)))
        goto out;
    dm->nrestart_at = 0; /* a fresh start forgets the restart history */
    inc_serve(dm, inc);
out:
    pthread_mutex_unlock(&dm->start);
    return r;
}

/* Monitor: gives every serving domain a prepared spare for its next
 * incarnation, once the slot is free. */
static void prepare_spares(void) {
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__dom *dm = &qtn__doms[d];
        if (atomic_load(&dm->state) != QTN__DS_UP || dm->prep_failed || stopping)
            continue;
        pthread_mutex_lock(&dm->start);
        uint32_t live = atomic_load(&dm->live), next = live + 1;
        qtn__inc *J = &dm->incs[next & 1];
        if (live && !(J->prepared && J->inc == next) && !atomic_load(&J->active) && J->pidfd < 0)
            if (inc_prepare(d, next))
                dm->prep_failed = true; /* a restart will try again, in line */
        pthread_mutex_unlock(&dm->start);
    }
}

qtn__inc *qtn__inc_enter(int d, int *err) {
    qtn__dom *dm = &qtn__doms[d];
    uint64_t until = 0;
    for (;;) {
        uint32_t inc = atomic_load(&dm->live);
        if (inc) {
            qtn__inc *I = &dm->incs[inc & 1];
            atomic_fetch_add(&I->active, 1);
            if (atomic_load(&dm->live) == inc)
                return I;
            atomic_fetch_sub(&I->active, 1);
            continue;
        }
        int st = atomic_load(&dm->state);
        if (st == QTN__DS_PARKED || st == QTN__DS_OFF) {
            *err = st == QTN__DS_PARKED ? QTN_EPARKED : QTN_EDEAD;
            return NULL;
        } /* UP with none live: the monitor is between the two; a restart */
        /* a restart takes a fraction of a millisecond: wait for it (spin
         * first) rather than fail */
        uint64_t now = qtn__now_ns();
        if (!until)
            until = now + 10000000000ull;
        else if (now > until) {
            *err = QTN_EDEAD;
            return NULL;
        }
        if (now + 9990000000ull < until) { /* the first 10 ms */
            for (int i = 0; i < 256 && !atomic_load(&dm->live); i++)
                qtn__cpu_relax();
            continue;
        }
        qtn__await(&dm->live, 0, 0, &dm->live_sleep, NULL, 0, 100000000);
    }
}

void qtn__inc_leave(qtn__inc *I) { atomic_fetch_sub(&I->active, 1); }

void qtn__dom_kill(int d, uint32_t inc, int kind, const qtn_entry *en, const char *why) {
    qtn__dom *dm = &qtn__doms[d];
    qtn__inc *I = &dm->incs[inc & 1];
    pthread_mutex_lock(&dm->lock);
    if (I->inc == inc && !I->dead && I->pidfd >= 0) {
        int none = 0;
        if (atomic_compare_exchange_strong(&dm->kill_kind, &none, kind)) {
            dm->kill_entry = en;
            snprintf(dm->kill_reason, sizeof dm->kill_reason, "%s", why);
        }
        pidfd_kill(I->pidfd, SIGKILL);
    }
    pthread_mutex_unlock(&dm->lock);
}

/* ---- faults (monitor thread) --------------------------------------------------- */

/* The exit status the zygote reports for pid, waiting up to 2 s for it. */
static int exit_status(pid_t pid, bool *known) {
    uint64_t until = qtn__now_ns() + 2000000000ull;
    for (;;) {
        for (int i = 0; i < nexits; i++)
            if (exits[i].pid == pid) {
                int st = exits[i].status;
                exits[i] = exits[--nexits];
                *known = true;
                return st;
            }
        uint64_t now = qtn__now_ns();
        if (zygote_gone || now > until) {
            *known = false;
            return 0;
        }
        struct pollfd p = {.fd = zevt, .events = POLLIN};
        if (poll(&p, 1, (int)((until - now) / 1000000) + 1) <= 0)
            continue;
        zmsg m;
        int fd;
        if (recv_fd(zevt, &m, &fd) < 0) {
            zygote_gone = true;
            continue;
        }
        if (fd >= 0)
            close(fd);
        if (m.op != Z_EXITED)
            continue;
        if (nexits == (int)(sizeof exits / sizeof exits[0]))
            exits[0] = exits[--nexits]; /* forget the oldest unclaimed */
        exits[nexits].pid = m.pid;
        exits[nexits].status = m.status;
        nexits++;
    }
}

/* Moves the channel words of a dead incarnation off the values its callers
 * sleep on and wakes them; they see the incarnation is not live. */
static void wake_callers(qtn__dom *dm, qtn__inc *I) {
    for (uint32_t k = 0; k < qtn__g.lay.nchan; k++) {
        if (!__atomic_load_n(&I->served[k], __ATOMIC_RELAXED))
            continue; /* no caller ever waited there */
        qtn__chan *ch = qtn__chan_in(I->base, k);
        atomic_fetch_xor(&ch->dseq, 0x80000000u);
        qtn__wake_all(&ch->dseq);
    }
    pthread_mutex_lock(&dm->lock);
    pthread_cond_broadcast(&dm->shared_cv);
    pthread_mutex_unlock(&dm->lock);
}

/* Restart intensity: true when d has restarted restart_max times within
 * the window (then it is parked instead). */
static bool too_many_restarts(qtn__dom *dm, uint64_t now) {
    uint64_t window = (uint64_t)qtn__g.restart_window_ms * 1000000u;
    uint32_t n = 0, cap = (uint32_t)(sizeof dm->restart_at / sizeof dm->restart_at[0]);
    for (uint32_t i = 0; i < dm->nrestart_at && i < cap; i++)
        if (now - dm->restart_at[i] <= window)
            n++;
    if (n >= qtn__g.restart_max)
        return true;
    dm->restart_at[dm->nrestart_at++ % cap] = now;
    return false;
}

static const char *sig_name(int sig) {
    const char *s = sigabbrev_np(sig);
    return s ? s : "?";
}

/* Fills the report's cause from the exit status, the host's own kill and
 * what the domain wrote about itself. */
static void describe(qtn_report *r, qtn__dom *dm, qtn__inc *I, const qtn_entry *const *running,
                     int status, bool known, const qtn_entry **blamed) {
    qtn__crash cr;
    memcpy(&cr, &((qtn__dhdr *)I->base)->crash, sizeof cr); /* untrusted: copy, then check */
    bool told = atomic_load(&cr.set) == 2;
    int kill_kind = atomic_exchange(&dm->kill_kind, 0);
    if (told) {
        r->fault_addr = cr.addr;
        r->nframes = cr.nframes <= QTN_REPORT_FRAMES ? cr.nframes : 0;
        memcpy(r->frames, cr.frames, r->nframes * sizeof r->frames[0]);
        if (cr.chan >= 0 && (uint32_t)cr.chan < qtn__g.lay.nchan && running[cr.chan])
            *blamed = running[cr.chan];
    }
    bool sig_ok = told && cr.sig > 0 && cr.sig < NSIG;
    if (kill_kind) {
        r->kind = kill_kind;
        r->signal = SIGKILL;
        snprintf(r->reason, sizeof r->reason, "%s", dm->kill_reason);
        if (dm->kill_entry)
            *blamed = dm->kill_entry;
    } else if (told && cr.sig == 0) { /* the exit trap told */
        r->kind = QTN_FAULT_EXIT;
        r->exit_code = cr.code & 0xff;
        snprintf(r->reason, sizeof r->reason, "the domain exited with status %d", r->exit_code);
    } else if (sig_ok && cr.sig == SIGSYS && cr.code == 1 /* SYS_SECCOMP */) {
        r->kind = QTN_FAULT_SECCOMP;
        r->signal = SIGSYS;
        r->syscall = cr.syscall;
        snprintf(r->reason, sizeof r->reason,
                 "system call %d (%s) denied by the domain's filter", cr.syscall,
                 qtn__syscall_name(cr.syscall));
    } else if (sig_ok) { /* what the dying domain said; its exit status may be our SIGKILL */
        r->kind = QTN_FAULT_SIGNAL;
        r->signal = cr.sig;
        if (cr.code > 0 && (cr.sig == SIGSEGV || cr.sig == SIGBUS || cr.sig == SIGILL ||
                            cr.sig == SIGFPE)) /* the kernel's address, NULL included */
            snprintf(r->reason, sizeof r->reason, "SIG%s (%s) at address 0x%llx",
                     sig_name(r->signal), strsignal(r->signal), (unsigned long long)cr.addr);
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
    if (!*blamed) /* no better clue: the first call in flight */
        for (uint32_t k = 0; k < qtn__g.lay.nchan && !*blamed; k++)
            *blamed = running[k];
}

/* Monitor: waits until the process of incarnation J (dead, two before the
 * one that needs its slot) is gone, and closes its fds. */
static void reap_slot(qtn__dom *dm, qtn__inc *J) {
    if (J->pidfd < 0)
        return;
    struct pollfd p = {.fd = J->pidfd, .events = POLLIN};
    poll(&p, 1, 2000);
    pthread_mutex_lock(&dm->lock);
    close(J->pidfd);
    J->pidfd = -1;
    if (J->dyingfd >= 0)
        close(J->dyingfd);
    J->dyingfd = -1;
    J->dead = true;
    pthread_mutex_unlock(&dm->lock);
}

/* Incarnation I of domain d died: fail its calls, restart it (or park it),
 * and make its one report. */
static void on_death(qtn__dom *dm, qtn__inc *I) {
    uint64_t noticed = qtn__now_ns();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    uint32_t inc = I->inc;
    /* what was running, before the failing calls unwind */
    static const qtn_entry *running[QTN__CHAN_MAX];
    for (uint32_t k = 0; k < qtn__g.lay.nchan; k++)
        running[k] = __atomic_load_n(&I->running[k], __ATOMIC_RELAXED);
    if (I->prepared) { /* a spare died before it served */
        I->prepared = false;
        dm->prep_failed = true; /* not again until a restart needs one */
        if (!stopping)
            qtn__warn("domain %d: the process prepared for incarnation %u died before use", dm->id,
                      inc);
        return;
    }
    uint32_t expect = inc;
    bool serving = atomic_compare_exchange_strong(&dm->live, &expect, 0);
    if (getenv("QTN_DEBUG"))
        qtn__warn("debug: domain %d incarnation %u (pid %d) ended; live was %u", dm->id, inc,
                  (int)I->pid, expect);
    if (serving)
        atomic_store(&dm->state, stopping ? QTN__DS_OFF : QTN__DS_RESTARTING);
    wake_callers(dm, I);
    if (!serving || stopping)
        return; /* an old incarnation, or shutdown: nothing to restart */
    qtn_report r;
    memset(&r, 0, sizeof r);
    r.time_ns = (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec;
    r.domain = dm->id;
    r.pid = I->pid;
    r.incarnation = inc;
    /* restart first: callers are waiting */
    pthread_mutex_lock(&dm->start);
    bool park = too_many_restarts(dm, noticed);
    int rs = 0;
    if (!park) {
        uint32_t next = inc + 1;
        qtn__inc *J = &dm->incs[next & 1];
        for (int i = 0; atomic_load(&J->active) && i < 20000; i++)
            usleep(100); /* callers of incarnation inc-1 still leaving */
        if (!(J->prepared && J->inc == next))
            reap_slot(dm, J); /* faults back to back: the slot's last process may linger */
        uint64_t tw = qtn__now_ns();
        bool warm = J->prepared && J->inc == next;
        rs = inc_start(dm->id, next, I);
        if (getenv("QTN_DEBUG"))
            qtn__warn("debug: domain %d incarnation %u start: %d (pid %d, %s): wake %llu us, "
                      "start %llu us",
                      dm->id, next, rs, (int)J->pid, warm ? "warm" : "cold",
                      (unsigned long long)(tw - noticed) / 1000,
                      (unsigned long long)(qtn__now_ns() - tw) / 1000);

        if (!rs) {
            dm->prep_failed = false;
            inc_serve(dm, next);
            r.recovery_ns = qtn__now_ns() - noticed;
            dm->restarts++;
            dm->recovery_total += r.recovery_ns;
            if (r.recovery_ns > dm->recovery_max)
                dm->recovery_max = r.recovery_ns;
        }
    }
    if (park || rs) {
        r.parked = 1;
        atomic_store(&dm->state, QTN__DS_PARKED);
        qtn__wake_all(&dm->live);
    }
    pthread_mutex_unlock(&dm->start);
    bool known;
    int status = exit_status(I->pid, &known);
    /* let the failed calls finish failing, so the count is whole */
    for (int i = 0; atomic_load(&I->active) && i < 2000; i++)
        usleep(100);
    r.calls_failed = atomic_load(&I->failed);
    const qtn_entry *blamed = NULL;
    describe(&r, dm, I, running, status, known, &blamed);
    if (blamed) {
        snprintf(r.entry, sizeof r.entry, "%s", blamed->name);
        if (blamed->component)
            snprintf(r.component, sizeof r.component, "%s", blamed->component->name);
    }
    if (r.parked) {
        size_t n = strlen(r.reason);
        snprintf(r.reason + n, sizeof r.reason - n, rs ? "; could not restart: parked"
                                                       : "; restarted too often: parked");
    }
    qtn__report_symbolize(&r);
    qtn__blame(blamed ? blamed->component : NULL, r.recovery_ns);
    qtn__report_push(&r);
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
        return; /* reaped already (see reap_slot): the number may be reused */
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
            pidfd_kill(I->pidfd, SIGKILL);
        }
    pthread_mutex_unlock(&dm->lock);
    if (I)
        on_death(dm, I);
}

static void *monitor(void *arg) {
    (void)arg;
    enum { MAXFD = 2 + QTN_DOMAINS_MAX * 4 };
    for (;;) {
        struct pollfd p[MAXFD];
        int map[MAXFD];
        int n = 0;
        p[n].fd = mon_efd, p[n].events = POLLIN, map[n++] = -1;
        p[n].fd = zygote_gone ? -1 : zevt, p[n].events = POLLIN, map[n++] = 0;
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
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            qtn__fatal("monitor: poll: %s", strerror(errno));
        }
        if (p[0].revents & POLLIN) {
            uint64_t v;
            if (read(mon_efd, &v, sizeof v) == sizeof v && v >= (1ull << 32))
                return NULL; /* shutdown */
        }
        if (p[1].revents & POLLIN) {
            zmsg m;
            int fd;
            if (recv_fd(zevt, &m, &fd) == 0) {
                if (fd >= 0)
                    close(fd);
                if (m.op == Z_EXITED) {
                    if (nexits == (int)(sizeof exits / sizeof exits[0]))
                        exits[0] = exits[--nexits];
                    exits[nexits].pid = m.pid;
                    exits[nexits].status = m.status;
                    nexits++;
                }
            }
        } else if (p[1].revents & (POLLHUP | POLLERR)) {
            zygote_gone = true; /* its domains die with it; the pidfds tell */
            if (!stopping)
                qtn__warn("the zygote process is gone: isolated domains cannot be restarted");
        }
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
        prepare_spares();
    }
}

int qtn__monitor_start(void) {
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
    stopping = true;
    pthread_mutex_unlock(&qtn__g.lock);
    if (mon_running) {
        uint64_t stop = 1ull << 32;
        (void)!write(mon_efd, &stop, sizeof stop);
        pthread_join(mon_thread, NULL);
        mon_running = false;
    }
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
                pidfd_kill(I->pidfd, SIGKILL);
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
    nexits = 0;
    for (int c = 1; c <= qtn__ncomps; c++)
        atomic_store(&qtn__plan[c], 0);
    qtn__threads_replan_locked();
    qtn__g.inited = false;
    pthread_mutex_unlock(&qtn__g.lock);
}

/* ---- channels (host) -------------------------------------------------------- */

/* Asks the domain for a thread serving channel k (dm->lock held). */
static void want_served(qtn__inc *I, uint32_t k) {
    if (I->served[k])
        return;
    I->served[k] = 1;
    I->nserved++;
    qtn__dhdr *h = (qtn__dhdr *)I->base;
    atomic_fetch_or(&h->want[k / 64], 1ull << (k % 64));
    atomic_fetch_add(&h->bell, 1);
    qtn__wake_all(&h->bell);
}

int qtn__chan_take(qtn__thread *t, qtn__inc *I, bool *shared) {
    int d = I->d;
    qtn__dom *dm = &qtn__doms[d];
    *shared = false;
    if (t->chan[d] >= 0 && t->chan_inc[d] == I->inc)
        return t->chan[d];
    pthread_mutex_lock(&dm->lock);
    int k = -1;
    for (uint32_t i = 0; i < qtn__g.lay.channels; i++)
        if (!I->used[i]) {
            k = (int)i;
            break;
        }
    if (k >= 0) {
        I->used[k] = 1;
        I->in_use++;
        want_served(I, (uint32_t)k);
        t->chan[d] = k;
        t->chan_inc[d] = I->inc;
        pthread_mutex_unlock(&dm->lock);
        return k;
    }
    /* every dedicated channel is held: borrow a shared one for this call */
    bool waited = false;
    for (;;) {
        if (atomic_load(&dm->live) != I->inc) {
            pthread_mutex_unlock(&dm->lock);
            return QTN_EFAULT;
        }
        for (uint32_t i = qtn__g.lay.channels; i < qtn__g.lay.nchan; i++)
            if (!I->used[i]) {
                k = (int)i;
                break;
            }
        if (k >= 0)
            break;
        waited = true;
        pthread_cond_wait(&dm->shared_cv, &dm->lock);
    }
    I->used[k] = 1;
    if (waited)
        dm->overflow_waits++;
    want_served(I, (uint32_t)k);
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
        qtn__inc *I = &dm->incs[t->chan_inc[d] & 1];
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
    if (live) {
        qtn__inc *I = &dm->incs[live & 1], *J = &dm->incs[(live + 1) & 1];
        out->spare_ready = J->prepared && J->inc == live + 1 && J->base &&
                           atomic_load(&((qtn__dhdr *)J->base)->ready);
        out->pid = I->pid;
        out->channels_in_use = I->in_use;
        out->channels_served = I->nserved;
    }
    out->overflow_waits = dm->overflow_waits;
    out->restarts = dm->restarts;
    out->recovery_ns_total = dm->recovery_total;
    out->recovery_ns_max = dm->recovery_max;
    pthread_mutex_unlock(&dm->lock);
    return 0;
}

/* ---- the bulk area (host) ---------------------------------------------- */

#define QTN__BULK_KEEP (8u << 20) /* smaller spans keep their pages for reuse */

void *qtn__bulk_alloc(qtn__inc *I, size_t len) {
    qtn__dom *dm = &qtn__doms[I->d];
    size_t need = (len + 4095) & ~(size_t)4095;
    if (need < len)
        return NULL;
    void *p = NULL;
    pthread_mutex_lock(&dm->lock);
    for (size_t i = 0; i < I->nfree; i++) {
        struct qtn__span *s = &I->free_spans[i];
        if (s->len < need)
            continue;
        p = I->base + s->off;
        s->off += need;
        s->len -= need;
        if (!s->len) {
            memmove(s, s + 1, (I->nfree - i - 1) * sizeof *s);
            I->nfree--;
        }
        break;
    }
    pthread_mutex_unlock(&dm->lock);
    return p;
}

void qtn__bulk_free(qtn__inc *I, void *p, size_t len) {
    qtn__dom *dm = &qtn__doms[I->d];
    size_t need = (len + 4095) & ~(size_t)4095;
    if (need > QTN__BULK_KEEP)
        madvise(p, need, MADV_REMOVE); /* give large spans back to the system */
    size_t off = (size_t)((char *)p - I->base);
    pthread_mutex_lock(&dm->lock);
    size_t i = 0;
    while (i < I->nfree && I->free_spans[i].off < off)
        i++;
    bool prev = i > 0 && I->free_spans[i - 1].off + I->free_spans[i - 1].len == off;
    bool next = i < I->nfree && off + need == I->free_spans[i].off;
    if (prev && next) {
        I->free_spans[i - 1].len += need + I->free_spans[i].len;
        memmove(&I->free_spans[i], &I->free_spans[i + 1],
                (I->nfree - i - 1) * sizeof *I->free_spans);
        I->nfree--;
    } else if (prev) {
        I->free_spans[i - 1].len += need;
    } else if (next) {
        I->free_spans[i].off = off;
        I->free_spans[i].len += need;
    } else {
        if (I->nfree == I->free_cap) {
            struct qtn__span *ns = realloc(I->free_spans, I->free_cap * 2 * sizeof *ns);
            if (!ns) { /* lose the span rather than corrupt the list */
                pthread_mutex_unlock(&dm->lock);
                return;
            }
            I->free_spans = ns;
            I->free_cap *= 2;
        }
        memmove(&I->free_spans[i + 1], &I->free_spans[i], (I->nfree - i) * sizeof *I->free_spans);
        I->free_spans[i].off = off;
        I->free_spans[i].len = need;
        I->nfree++;
    }
    pthread_mutex_unlock(&dm->lock);
}
