/* zygote.c - the zygote: a process forked by qtn_init before the program
 * has threads, which forks domain processes on request, so they start from
 * the program's state at start-up, single-threaded, whatever the host is
 * doing. It tells the host each child's exit status (its children are not
 * the host's to wait for). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "domain.h"

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
static bool zygote_gone;  /* monitor thread only */

/* Exit statuses the zygote sent that the monitor has not used yet. */
static struct { pid_t pid; int status; } exits[64];
static int nexits;

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

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

int qtn__zygote_spawn(int d, uint32_t inc, int memfd, int efd, pid_t *pid, int *pidfd) {
    zmsg m = {.op = Z_SPAWN, .dom = d, .inc = inc}, rep = {0};
    int pfd = -1, r = 0;
    pthread_mutex_lock(&zlock);
    if (zctl < 0 || send_fd2(zctl, &m, memfd, efd) < 0 || recv_fd(zctl, &rep, &pfd) < 0) {
        errno = EPIPE;
        r = QTN_ESYS;
    }
    pthread_mutex_unlock(&zlock);
    if (!r && (rep.op != Z_SPAWNED || pfd < 0)) {
        if (pfd >= 0)
            close(pfd);
        errno = rep.op == Z_FAILED ? rep.status : EPROTO;
        r = QTN_ESYS;
    }
    if (!r) {
        *pid = rep.pid;
        *pidfd = pfd;
    }
    return r;
}

/* ---- exit notices (monitor thread) -------------------------------------------- */

static void remember_exit(pid_t pid, int status) {
    if (nexits == (int)(sizeof exits / sizeof exits[0]))
        exits[0] = exits[--nexits]; /* forget the oldest unclaimed */
    exits[nexits].pid = pid;
    exits[nexits].status = status;
    nexits++;
}

int qtn__zygote_evfd(void) { return zygote_gone ? -1 : zevt; }

void qtn__zygote_event(bool hup) {
    if (hup) {
        zygote_gone = true; /* its domains die with it; the pidfds tell */
        if (!qtn__stopping)
            qtn__warn("the zygote process is gone: isolated domains cannot be restarted");
        return;
    }
    zmsg m;
    int fd;
    if (recv_fd(zevt, &m, &fd) == 0) {
        if (fd >= 0)
            close(fd);
        if (m.op == Z_EXITED)
            remember_exit(m.pid, m.status);
    }
}

void qtn__zygote_forget_exits(void) { nexits = 0; }

int qtn__zygote_exit_status(pid_t pid, bool *known) {
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
        if (m.op == Z_EXITED)
            remember_exit(m.pid, m.status);
    }
}
