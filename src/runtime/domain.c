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
} zmsg;

static int zctl = -1;     /* host end: spawn requests and replies */
static int zevt = -1;     /* host end: exit notices from the zygote */
static pid_t zpid;
static int mon_efd = -1;  /* wakes the monitor when domains change */
static pthread_t mon_thread;
static bool mon_running;
static bool zygote_gone; /* monitor thread only */

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
static int pidfd_kill(int fd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/* Sends m with an optional fd attached. */
static int send_fd(int sock, const zmsg *m, int fd) {
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(cbuf, 0, sizeof cbuf);
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof cbuf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof *m ? 0 : -1;
}

/* Receives one message and the fd attached to it (-1 if none). */
static int recv_fd(int sock, zmsg *m, int *fd) {
    struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    *fd = -1;
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof *m)
        return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(fd, CMSG_DATA(c), sizeof *fd);
    return 0;
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

static void domain_child(int d, int memfd) {
    sigset_t all;
    sigemptyset(&all);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &all, NULL);
    void *at = mmap(qtn__slot(d), QTN__SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                    memfd, 0);
    if (at == MAP_FAILED)
        _exit(127);
    close(memfd);
    /* forked while qtn_init held the lock: this process has one thread */
    pthread_mutex_init(&qtn__g.lock, NULL);
    qtn__g.self = d;
    qtn__g.inited = true;
    qtn__domain_main(d);
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
            _exit(0); /* the host is gone */
        if (!(p[0].revents & POLLIN))
            continue;
        zmsg m;
        int memfd;
        if (recv_fd(ctl, &m, &memfd) < 0)
            _exit(0);
        if (m.op != Z_SPAWN || memfd < 0 || m.dom < 1 || m.dom > QTN_DOMAINS_MAX) {
            if (memfd >= 0)
                close(memfd);
            zmsg f = {.op = Z_FAILED, .dom = m.dom, .status = EINVAL};
            send_fd(ctl, &f, -1);
            continue;
        }
        pid_t pid = fork();
        if (pid == 0) {
            die_with_parent(me);
            close(ctl);
            close(evt);
            close(sfd);
            domain_child(m.dom, memfd);
        }
        close(memfd);
        if (pid < 0) {
            zmsg f = {.op = Z_FAILED, .dom = m.dom, .status = errno};
            send_fd(ctl, &f, -1);
            continue;
        }
        int pfd = pidfd_open_(pid);
        zmsg ok = {.op = Z_SPAWNED, .dom = m.dom, .pid = pid};
        send_fd(ctl, &ok, pfd);
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

/* ---- starting a domain (host) ------------------------------------------ */

static void bulk_reset(qtn__dom *dm) {
    dm->nfree = 0;
    if (!dm->free_cap) {
        dm->free_spans = malloc(64 * sizeof *dm->free_spans);
        if (!dm->free_spans)
            return;
        dm->free_cap = 64;
    }
    dm->free_spans[0].off = qtn__g.lay.bulk_off;
    dm->free_spans[0].len = QTN__SLOT_SIZE - qtn__g.lay.bulk_off;
    dm->nfree = 1;
}

int qtn__dom_start_locked(int d) {
    qtn__dom *dm = &qtn__doms[d];
    int memfd = memfd_create("quarantine-domain", MFD_CLOEXEC);
    if (memfd < 0)
        return QTN_ESYS;
    if (ftruncate(memfd, (off_t)QTN__SLOT_SIZE) < 0)
        goto fail;
    if (mmap(qtn__slot(d), QTN__SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, memfd,
             0) == MAP_FAILED)
        goto fail;
    qtn__dhdr *h = qtn__hdr(d);
    h->magic = QTN__DHDR_MAGIC;
    h->domain = (uint32_t)d;
    for (int c = 1; c <= qtn__ncomps; c++)
        atomic_store(&h->plan[c], atomic_load(&qtn__plan[c]));
    pthread_mutex_lock(&dm->lock);
    memset(dm->used, 0, sizeof dm->used);
    memset(dm->served, 0, sizeof dm->served);
    memset(dm->seq, 0, sizeof dm->seq);
    memset(dm->dseq, 0, sizeof dm->dseq);
    dm->in_use = dm->nserved = 0;
    bulk_reset(dm);
    pthread_mutex_unlock(&dm->lock);
    zmsg m = {.op = Z_SPAWN, .dom = d}, rep;
    int pfd;
    if (send_fd(zctl, &m, memfd) < 0 || recv_fd(zctl, &rep, &pfd) < 0) {
        errno = EPIPE;
        goto fail;
    }
    close(memfd);
    if (rep.op != Z_SPAWNED || pfd < 0) {
        if (pfd >= 0)
            close(pfd);
        errno = rep.op == Z_FAILED ? rep.status : EPROTO;
        return QTN_ESYS;
    }
    pthread_mutex_lock(&dm->lock);
    if (dm->pidfd >= 0) {
        /* the monitor closes it once it has seen that process end */
        if (dm->nretired == (int)(sizeof dm->retired / sizeof dm->retired[0])) {
            pthread_mutex_unlock(&dm->lock);
            pidfd_kill(pfd, SIGKILL);
            close(pfd);
            errno = EBUSY;
            return QTN_ESYS;
        }
        dm->retired[dm->nretired++] = dm->pidfd;
    }
    dm->pid = rep.pid;
    dm->pidfd = pfd;
    dm->inc++;
    pthread_mutex_unlock(&dm->lock);
    atomic_store(&dm->state, QTN__DS_UP);
    uint64_t one = 1;
    (void)!write(mon_efd, &one, sizeof one);
    return 0;
fail:
    close(memfd);
    return QTN_ESYS;
}

/* Marks domain d dead and wakes every caller waiting on it. */
static void dom_dead(int d) {
    qtn__dom *dm = &qtn__doms[d];
    int expect = QTN__DS_UP;
    if (!atomic_compare_exchange_strong(&dm->state, &expect, QTN__DS_DEAD))
        return;
    for (uint32_t k = 0; k < qtn__g.lay.nchan; k++) {
        qtn__chan *ch = qtn__chan_at(d, k);
        /* move the word off the value its waiter sleeps on; the waiter
         * checks the state before believing it */
        atomic_fetch_xor(&ch->dseq, 0x80000000u);
        qtn__wake_all(&ch->dseq);
    }
    pthread_mutex_lock(&dm->lock);
    pthread_cond_broadcast(&dm->shared_cv);
    pthread_mutex_unlock(&dm->lock);
}

void qtn__dom_kill(int d, const char *why) {
    qtn__dom *dm = &qtn__doms[d];
    if (atomic_load(&dm->state) != QTN__DS_UP)
        return;
    qtn__warn("domain %d (pid %d): %s; killing it", d, (int)dm->pid, why);
    pidfd_kill(dm->pidfd, SIGKILL);
    dom_dead(d);
}

/* ---- the monitor (host) ---------------------------------------------------- */

/* A pidfd of domain d became readable: that process ended. Only the
 * monitor closes pidfds, so an fd number it polled cannot have been reused. */
static void pidfd_ended(int d, int fd) {
    qtn__dom *dm = &qtn__doms[d];
    bool current = false;
    pthread_mutex_lock(&dm->lock);
    if (dm->pidfd == fd) {
        current = true;
    } else {
        for (int i = 0; i < dm->nretired; i++)
            if (dm->retired[i] == fd) {
                dm->retired[i] = dm->retired[--dm->nretired];
                close(fd);
                break;
            }
    }
    pthread_mutex_unlock(&dm->lock);
    if (!current)
        return;
    dom_dead(d);
    pthread_mutex_lock(&dm->lock);
    if (dm->pidfd == fd) {
        close(fd);
        dm->pidfd = -1;
    }
    pthread_mutex_unlock(&dm->lock);
}

static void *monitor(void *arg) {
    (void)arg;
    enum { MAXFD = 2 + QTN_DOMAINS_MAX * 5 };
    for (;;) {
        struct pollfd p[MAXFD];
        int map[MAXFD];
        int n = 0;
        p[n].fd = mon_efd, p[n].events = POLLIN, map[n++] = -1;
        p[n].fd = zygote_gone ? -1 : zevt, p[n].events = POLLIN, map[n++] = 0;
        for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
            qtn__dom *dm = &qtn__doms[d];
            pthread_mutex_lock(&dm->lock);
            if (dm->pidfd >= 0)
                p[n].fd = dm->pidfd, p[n].events = POLLIN, map[n++] = d;
            for (int i = 0; i < dm->nretired; i++)
                p[n].fd = dm->retired[i], p[n].events = POLLIN, map[n++] = d;
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
            if (recv_fd(zevt, &m, &fd) == 0 && fd >= 0)
                close(fd);
        } else if (p[1].revents & (POLLHUP | POLLERR)) {
            zygote_gone = true; /* its domains die with it; the pidfds tell */
            qtn__warn("the zygote process is gone: isolated domains cannot be started");
        }
        for (int i = 2; i < n; i++)
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
                pidfd_ended(map[i], p[i].fd);
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
    if (mon_running) {
        uint64_t stop = 1ull << 32;
        (void)!write(mon_efd, &stop, sizeof stop);
        pthread_join(mon_thread, NULL);
        mon_running = false;
    }
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__dom *dm = &qtn__doms[d];
        if (dm->pidfd >= 0) {
            pidfd_kill(dm->pidfd, SIGKILL);
            dom_dead(d);
            close(dm->pidfd);
            dm->pidfd = -1;
        }
        for (int i = 0; i < dm->nretired; i++)
            close(dm->retired[i]);
        dm->nretired = 0;
        atomic_store(&dm->state, QTN__DS_OFF);
        free(dm->free_spans);
        dm->free_spans = NULL;
        dm->free_cap = dm->nfree = 0;
        /* give the slot's memory back; the reservation stays */
        mmap(qtn__slot(d), QTN__SLOT_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED |
                                                          MAP_NORESERVE, -1, 0);
    }
    qtn__zygote_stop();
    close(mon_efd);
    mon_efd = -1;
    for (int c = 1; c <= qtn__ncomps; c++)
        atomic_store(&qtn__plan[c], 0);
    qtn__threads_replan_locked();
    qtn__g.inited = false;
    pthread_mutex_unlock(&qtn__g.lock);
}

/* ---- channels (host) -------------------------------------------------------- */

/* Asks domain d for a thread serving channel k (dm->lock held). */
static void want_served(qtn__dom *dm, uint32_t k) {
    if (dm->served[k])
        return;
    dm->served[k] = 1;
    dm->nserved++;
    qtn__dhdr *h = qtn__hdr(dm->id);
    atomic_fetch_or(&h->want[k / 64], 1ull << (k % 64));
    atomic_fetch_add(&h->bell, 1);
    qtn__wake_all(&h->bell);
}

int qtn__chan_take(qtn__thread *t, int d, bool *shared) {
    qtn__dom *dm = &qtn__doms[d];
    *shared = false;
    if (t->chan[d] >= 0 && t->chan_inc[d] == dm->inc)
        return t->chan[d];
    pthread_mutex_lock(&dm->lock);
    int k = -1;
    for (uint32_t i = 0; i < qtn__g.lay.channels; i++)
        if (!dm->used[i]) {
            k = (int)i;
            break;
        }
    if (k >= 0) {
        dm->used[k] = 1;
        dm->in_use++;
        want_served(dm, (uint32_t)k);
        t->chan[d] = k;
        t->chan_inc[d] = dm->inc;
        pthread_mutex_unlock(&dm->lock);
        return k;
    }
    /* every dedicated channel is held: borrow a shared one for this call */
    bool waited = false;
    for (;;) {
        if (atomic_load(&dm->state) != QTN__DS_UP) {
            pthread_mutex_unlock(&dm->lock);
            return QTN_EDEAD;
        }
        for (uint32_t i = qtn__g.lay.channels; i < qtn__g.lay.nchan; i++)
            if (!dm->used[i]) {
                k = (int)i;
                break;
            }
        if (k >= 0)
            break;
        waited = true;
        pthread_cond_wait(&dm->shared_cv, &dm->lock);
    }
    dm->used[k] = 1;
    if (waited)
        dm->overflow_waits++;
    want_served(dm, (uint32_t)k);
    pthread_mutex_unlock(&dm->lock);
    *shared = true;
    return k;
}

void qtn__chan_give_shared(int d, int k) {
    qtn__dom *dm = &qtn__doms[d];
    pthread_mutex_lock(&dm->lock);
    dm->used[k] = 0;
    pthread_cond_signal(&dm->shared_cv);
    pthread_mutex_unlock(&dm->lock);
}

void qtn__chan_release_all(qtn__thread *t) {
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        if (t->chan[d] < 0)
            continue;
        qtn__dom *dm = &qtn__doms[d];
        pthread_mutex_lock(&dm->lock);
        if (t->chan_inc[d] == dm->inc && dm->used[t->chan[d]]) {
            dm->used[t->chan[d]] = 0;
            dm->in_use--;
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
    pthread_mutex_lock(&dm->lock);
    out->id = id;
    out->pid = atomic_load(&dm->state) == QTN__DS_UP ? dm->pid : 0;
    out->channels_in_use = dm->in_use;
    out->channels_served = dm->nserved;
    out->overflow_waits = dm->overflow_waits;
    pthread_mutex_unlock(&dm->lock);
    return 0;
}

/* ---- the bulk area (host) ---------------------------------------------- */

void *qtn__bulk_alloc(int d, size_t len) {
    qtn__dom *dm = &qtn__doms[d];
    size_t need = (len + 4095) & ~(size_t)4095;
    if (need < len)
        return NULL;
    void *p = NULL;
    pthread_mutex_lock(&dm->lock);
    for (size_t i = 0; i < dm->nfree; i++) {
        struct qtn__span *s = &dm->free_spans[i];
        if (s->len < need)
            continue;
        p = qtn__slot(d) + s->off;
        s->off += need;
        s->len -= need;
        if (!s->len) {
            memmove(s, s + 1, (dm->nfree - i - 1) * sizeof *s);
            dm->nfree--;
        }
        break;
    }
    pthread_mutex_unlock(&dm->lock);
    return p;
}

void qtn__bulk_free(int d, void *p, size_t len) {
    qtn__dom *dm = &qtn__doms[d];
    size_t need = (len + 4095) & ~(size_t)4095;
    madvise(p, need, MADV_REMOVE); /* give the pages back to the system */
    size_t off = (size_t)((char *)p - qtn__slot(d));
    pthread_mutex_lock(&dm->lock);
    size_t i = 0;
    while (i < dm->nfree && dm->free_spans[i].off < off)
        i++;
    bool prev = i > 0 && dm->free_spans[i - 1].off + dm->free_spans[i - 1].len == off;
    bool next = i < dm->nfree && off + need == dm->free_spans[i].off;
    if (prev && next) {
        dm->free_spans[i - 1].len += need + dm->free_spans[i].len;
        memmove(&dm->free_spans[i], &dm->free_spans[i + 1],
                (dm->nfree - i - 1) * sizeof *dm->free_spans);
        dm->nfree--;
    } else if (prev) {
        dm->free_spans[i - 1].len += need;
    } else if (next) {
        dm->free_spans[i].off = off;
        dm->free_spans[i].len += need;
    } else {
        if (dm->nfree == dm->free_cap) {
            struct qtn__span *ns =
                realloc(dm->free_spans, dm->free_cap * 2 * sizeof *dm->free_spans);
            if (!ns) { /* lose the span rather than corrupt the list */
                pthread_mutex_unlock(&dm->lock);
                return;
            }
            dm->free_spans = ns;
            dm->free_cap *= 2;
        }
        memmove(&dm->free_spans[i + 1], &dm->free_spans[i],
                (dm->nfree - i) * sizeof *dm->free_spans);
        dm->free_spans[i].off = off;
        dm->free_spans[i].len = need;
        dm->nfree++;
    }
    pthread_mutex_unlock(&dm->lock);
}
