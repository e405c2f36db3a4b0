/* zygote.c - the zygote: a process forked by qtn_init before the program
 * has threads, which forks domain processes on request, so they start from
 * the program's state at start-up, single-threaded, whatever the host is
 * doing. It tells the host each child's exit status (its children are not
 * the host's to wait for), and it keeps count of each child's threads: the
 * child's set-up filter hands every clone to the zygote, which lets it
 * through or fails it past the limit. A new domain process confines itself
 * (guard.c) before any component code runs; its stdout and stderr are a
 * pipe that a host thread reads and forwards, each line prefixed, so what a
 * domain writes cannot pass for the runtime's or the supervisor's lines. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "domain.h"

/* Declared here and where they are defined or called (internal.h is not
 * this module's to change): rt.c fixes the settings at qtn_init, before
 * the zygote is made; guard.c confines a new domain process. */
void qtn__sandbox_set(uint32_t threads, uint64_t mem_bytes, int oom_adj, bool landlock);
int qtn__guard_prepare(bool landlock, int *ruleset);
int qtn__guard_confine(uint64_t mem_bytes, int oom_adj, int ruleset, int warden);

/* The sandbox settings; the zygote and its children inherit them. */
static struct {
    uint32_t threads;  /* threads per domain process, 0: no limit */
    uint64_t mem;      /* address space beyond the start, 0: no limit */
    int oom;           /* oom_score_adj, -1: inherited */
    bool landlock;     /* asked for (the kernel may not have it) */
    bool landlocked;   /* domains use it; if not, the host is not dumpable */
    bool counted;      /* the kernel can hand clones to the zygote */
    int ruleset;       /* in the zygote: the Landlock ruleset for domains, or -1 */
} sbx = {.oom = -1, .ruleset = -1};

void qtn__sandbox_set(uint32_t threads, uint64_t mem_bytes, int oom_adj, bool landlock) {
    sbx.threads = threads;
    sbx.mem = mem_bytes;
    sbx.oom = oom_adj;
    sbx.landlock = landlock;
}

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
/* How long a spawn waits for the zygote's answer (a fork and a set-up take
 * milliseconds): past it the zygote is taken for hung and killed. Longer
 * than the zygote's own wait for a new child's listener (recv_listener,
 * 10 s), so a zygote that answers is never taken for hung. */
#define ZYGOTE_ANSWER_S 20
static bool zygote_gone;  /* monitor thread only */

/* Exit statuses the zygote sent that the monitor has not used yet. */
static struct { pid_t pid; int status; } exits[64];
static int nexits;

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

/* Sends m with the fds in fds[0..n) attached (n may be 0). */
static int send_fds(int sock, const zmsg *m, const int *fds, int n) {
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
    char cbuf[CMSG_SPACE(3 * sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
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

static int send_fd(int sock, const zmsg *m, int fd) { return send_fds(sock, m, &fd, fd < 0 ? 0 : 1); }

/* Receives one message and up to n fds attached to it (-1 where none;
 * more are closed). */
static int recv_fds(int sock, zmsg *m, int *fds, int n) {
    struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
    char cbuf[CMSG_SPACE(4 * sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    for (int i = 0; i < n; i++)
        fds[i] = -1;
    ssize_t got;
    do
        got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (got < 0 && errno == EINTR);
    if (got != (ssize_t)sizeof *m)
        return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if ((int)i < n)
                    fds[i] = fd;
                else
                    close(fd); /* more than we asked for */
            }
        }
    return 0;
}

static int recv_fd(int sock, zmsg *m, int *fd) { return recv_fds(sock, m, fd, 1); }

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

/* An fd of 0..2 moved above them, so stdin, stdout and stderr can be set. */
static int above_std(int fd) {
    if (fd < 0 || fd > 2)
        return fd;
    int up = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    return up >= 0 ? up : fd;
}

/* A new domain process: its own stdio, its slot, its confinement, then
 * everything else that does not need the host (see qtn__domain_child).
 * `warden`: where its clone listener goes, or -1. */
static void child_main(int d, uint32_t inc, int memfd, int dyingfd, int outfd, int warden,
                       pid_t zygote) {
    /* forked while qtn_init held the lock: this process has one thread */
    pthread_mutex_init(&qtn__g.lock, NULL);
    memfd = above_std(memfd), dyingfd = above_std(dyingfd);
    outfd = above_std(outfd), warden = above_std(warden);
    int ruleset = above_std(sbx.ruleset);
    int keep[5] = {memfd, dyingfd, outfd, warden, ruleset};
    close_other_fds(keep, 5); /* the zygote's, and other domains' listeners */
    /* stdout and stderr: the pipe the host forwards, prefixed; stdin:
     * nothing (the program's input and terminal are not the domain's) */
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    dup2(null >= 0 ? null : outfd, 0);
    if (null > 0)
        close(null);
    dup2(outfd, 1);
    dup2(outfd, 2);
    close(outfd);
    void *at = mmap(qtn__slot(d, inc), QTN__SLOT_SIZE, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_FIXED, memfd, 0);
    if (at == MAP_FAILED)
        _exit(127);
    close(memfd);
    qtn__g.self = d;
    qtn__g.self_inc = inc;
    qtn__g.dying_fd = dyingfd;
    qtn__g.inited = true;
    if (sbx.landlocked && ruleset < 0) /* the host stays dumpable, counting on it */
        qtn__fatal("domain %d: no Landlock ruleset: it could not be made", d);
    if (qtn__guard_confine(sbx.mem, sbx.oom, ruleset, warden) < 0)
        qtn__fatal("domain %d: cannot confine its process: %s", d, strerror(errno));
    die_with_parent(zygote); /* said again: credentials changed */
    qtn__domain_child(d);
}

/* The zygote's count of one child's threads: /proc's, and the clones let
 * through that may not be there yet. A clone is taken to be there once the
 * thread that asked for it asks for another (its clone returned), is gone,
 * or has been put on a CPU twice since it was let through (it ran the
 * clone, and was switched out and in again); never on time alone, so a
 * domain cannot keep clones on their way, out of /proc's count, by
 * starving the threads that asked. A thread created and joined over and
 * over is so counted once, not each time. */
#define WARD_PEND 32 /* clones on their way at once; more wait (EAGAIN) */
typedef struct ward {
    pid_t pid;
    int fd; /* the listener of its set-up filter */
    uint32_t npend;
    struct {
        pid_t tid;      /* the thread that asked */
        long long runs; /* its runs (runs_of) when it was let through */
    } pend[WARD_PEND];
} ward;

static ward wards[QTN__INCS * QTN_DOMAINS_MAX + 16];
static int nwards;
static struct seccomp_notif *nreq;
static struct seccomp_notif_resp *nresp;

#define NS_FLAGS                                                                           \
    (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |          \
     CLONE_NEWPID | CLONE_NEWNET)

static void ward_forget(int i) {
    close(wards[i].fd);
    wards[i] = wards[--nwards];
}

/* The threads of process pid, or -1 when /proc does not say. */
static int threads_of(pid_t pid) {
    char path[48], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *t = strstr(buf, "\nThreads:");
    return t ? atoi(t + 9) : -1;
}

/* How many times thread tid of process pid was put on a CPU (the third
 * field of its schedstat), -1 when it is gone, 0 when the kernel does not
 * say (a clone it asked for then stays counted until it asks again or is
 * gone). */
static long long runs_of(pid_t pid, pid_t tid) {
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? -1 : 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n <= 0)
        return n < 0 && e == ESRCH ? -1 : 0;
    buf[n] = 0;
    unsigned long long on, wait, runs;
    return sscanf(buf, "%llu %llu %llu", &on, &wait, &runs) == 3 ? (long long)runs : 0;
}

/* Answers one clone of child w: a thread, while it has fewer than the
 * limit (counting those just let through), or nothing else. */
static void ward_answer(ward *w) {
    memset(nreq, 0, sizeof *nreq);
    if (seccomp_notify_receive(w->fd, nreq) < 0)
        return; /* the caller died meanwhile */
    memset(nresp, 0, sizeof *nresp);
    nresp->id = nreq->id;
    uint64_t flags = nreq->data.args[0];
    if (nreq->data.nr != SCMP_SYS(clone) || !(flags & CLONE_THREAD) || (flags & NS_FLAGS)) {
        nresp->error = -EPERM;
    } else {
        /* the threads it may have: those /proc shows, and the clones let
         * through that may not have made theirs yet */
        pid_t tid = (pid_t)nreq->pid; /* the asking thread */
        uint32_t k = 0;
        for (uint32_t i = 0; i < w->npend; i++) {
            if (w->pend[i].tid == tid)
                continue; /* its last clone returned: it asks again */
            long long r = runs_of(w->pid, w->pend[i].tid);
            if (r < 0 || (r > 0 && r >= w->pend[i].runs + 2))
                continue; /* gone, or ran since: its thread is in /proc */
            w->pend[k++] = w->pend[i]; /* still perhaps on its way */
        }
        w->npend = k;
        int n = threads_of(w->pid);
        if (w->npend == WARD_PEND || (n >= 0 && (uint32_t)n + w->npend >= sbx.threads)) {
            nresp->error = -EAGAIN; /* what pthread_create says past RLIMIT_NPROC */
        } else { /* unreadable /proc: let it through rather than break the domain */
            nresp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE; /* flags are in a register */
            w->pend[w->npend].tid = tid;
            w->pend[w->npend++].runs = runs_of(w->pid, tid);
        }
    }
    (void)seccomp_notify_respond(w->fd, nresp);
}

/* The listener a new child sends over `sock` once it has confined itself;
 * -1 when it died first or sent none. */
static int recv_listener(int sock) {
    struct pollfd p = {.fd = sock, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0)
        return -1;
    char byte, cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
        return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    int fd = -1;
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

/* Forks the process of incarnation inc of domain d; returns its pid or -1. */
static pid_t spawn(const zmsg *m, const int *fds, int ctl, int evt, int sfd, pid_t me) {
    int ws[2] = {-1, -1};
    if (sbx.counted && sbx.threads && nwards < (int)(sizeof wards / sizeof wards[0]) &&
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ws) < 0)
        ws[0] = ws[1] = -1; /* no count for this one */
    pid_t pid = fork();
    if (pid == 0) {
        die_with_parent(me);
        close(ctl);
        close(evt);
        close(sfd);
        if (ws[0] >= 0)
            close(ws[0]);
        child_main(m->dom, m->inc, fds[0], fds[1], fds[2], ws[1], me);
    }
    int saved = errno;
    if (ws[1] >= 0)
        close(ws[1]);
    if (pid > 0 && ws[0] >= 0) {
        int fd = recv_listener(ws[0]);
        if (fd >= 0)
            wards[nwards++] = (ward){.pid = pid, .fd = fd};
    }
    if (ws[0] >= 0)
        close(ws[0]);
    errno = saved;
    return pid;
}

static void zygote_main(int ctl, int evt) {
    /* a session of its own, without a terminal: no terminal signals reach
     * the zygote or its children, and none of them can make the user's
     * terminal its own or type into it */
    setsid();
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC);
    if (sfd < 0)
        _exit(1);
    pid_t me = getpid();
    enum { NW = sizeof wards / sizeof wards[0] };
    for (;;) {
        struct pollfd p[2 + NW] = {{.fd = ctl, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        int n = 2;
        for (int i = 0; i < nwards; i++)
            p[n++] = (struct pollfd){.fd = wards[i].fd, .events = POLLIN};
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        for (int i = n - 1; i >= 2; i--) { /* from the end: forgetting moves the last */
            if (p[i].revents & POLLIN)
                ward_answer(&wards[i - 2]);
            else if (p[i].revents & (POLLHUP | POLLERR | POLLNVAL))
                ward_forget(i - 2); /* its process is gone */
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            (void)!read(sfd, &si, sizeof si);
            int st;
            pid_t pid;
            while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
                for (int i = 0; i < nwards; i++)
                    if (wards[i].pid == pid) {
                        ward_forget(i);
                        break;
                    }
                zmsg m = {.op = Z_EXITED, .pid = pid, .status = st};
                send_fd(evt, &m, -1);
            }
        }
        if (p[0].revents & (POLLHUP | POLLERR) && !(p[0].revents & POLLIN))
            _exit(0); /* the host is gone; our children die with us */
        if (!(p[0].revents & POLLIN))
            continue;
        zmsg m;
        int fds[3]; /* the slot's memfd, the dying word, the output pipe */
        if (recv_fds(ctl, &m, fds, 3) < 0)
            _exit(0);
        zmsg rep = {.op = Z_FAILED, .dom = m.dom, .status = EINVAL};
        int pfd = -1;
        if (m.op == Z_SPAWN && fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0 && m.dom >= 1 &&
            m.dom <= QTN_DOMAINS_MAX) {
            pid_t pid = spawn(&m, fds, ctl, evt, sfd, me);
            if (pid > 0) {
                pfd = pidfd_open_(pid);
                rep = (zmsg){.op = Z_SPAWNED, .dom = m.dom, .pid = pid, .inc = m.inc};
            } else {
                rep.status = errno;
            }
        }
        for (int i = 0; i < 3; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        send_fd(ctl, &rep, pfd);
        if (pfd >= 0)
            close(pfd);
    }
}

/* ---- domain output (host) --------------------------------------------------- */

/* Each domain process writes its stdout and stderr into a pipe; a host
 * thread reads them all and writes each line to the program's stderr as
 * `quarantine[HOSTPID] domain N: ` and the line, control characters
 * escaped (\xNN), cut at OUT_LINE bytes. It never waits on the program's
 * stderr: lines wait in a queue while it is slow, and past OUT_QUEUE bytes
 * they are dropped and counted, so a domain never waits on the reader and
 * the host never waits on a domain. */
#define OUT_LINE 1024
#define OUT_QUEUE (64u << 10)

typedef struct outpipe {
    int fd;     /* read end, -1: none */
    int d;
    size_t n;   /* bytes in line */
    bool cut;   /* this line was cut: drop the rest of it */
    bool c2;    /* a 0xc2 byte held back: it may start a C1 control */
    char line[OUT_LINE];
    size_t nlast;               /* its newest line was dropped: this long, */
    char last[OUT_LINE + 96];   /* and this, prefixed: queued at its end */
} outpipe;

enum { OUT_NONE, OUT_DIRECT, OUT_OWN, OUT_SOCKET };

static struct {
    pthread_mutex_t lock;
    outpipe p[QTN__INCS * QTN_DOMAINS_MAX]; /* by domain and slot */
    int wake;                       /* eventfd */
    pthread_t thread;
    bool running, stop;
    char q[OUT_QUEUE];              /* whole lines waiting to be written */
    size_t qhead, qlen;
    uint64_t dropped;               /* lines dropped since the last notice */
    int mode, fd;                   /* how to write: fd 2 itself, or our own fd */
    dev_t dev;                      /* what fd 2 was when mode was chosen */
    ino_t ino;
} out = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = -1, .fd = -1};

/* Moves what waits to the queue's start. Lock held. */
static void out_compact(void) {
    memmove(out.q, out.q + out.qhead, out.qlen);
    out.qhead = 0;
}

/* Queues a whole line; false when it was dropped (counted). */
static bool out_queue(const char *s, size_t n) {
    if (out.qhead + out.qlen + n > OUT_QUEUE && out.qhead)
        out_compact();
    if (out.qlen + n > OUT_QUEUE) {
        out.dropped++;
        return false;
    }
    memcpy(out.q + out.qhead + out.qlen, s, n);
    out.qlen += n;
    return true;
}

/* Makes room for n bytes at the queue's end by dropping its newest whole
 * lines (counted), never the first one (it may be half written): a
 * domain's last words take the place of lines before them. Lock held. */
static void out_make_room(size_t n) {
    out_compact();
    const char *nl = memchr(out.q, '\n', out.qlen);
    size_t first = nl ? (size_t)(nl - out.q) + 1 : out.qlen;
    while (out.qlen + n > OUT_QUEUE && out.qlen > first) {
        size_t start = out.qlen - 1; /* the newest line's newline */
        while (start > first && out.q[start - 1] != '\n')
            start--;
        out.qlen = start;
        out.dropped++;
    }
}

static void out_emit(outpipe *o, bool cut) {
    char line[OUT_LINE + 96];
    int h = snprintf(line, sizeof line, "quarantine[%d] domain %d: ", (int)qtn__g.host_pid, o->d);
    memcpy(line + h, o->line, o->n);
    size_t n = (size_t)h + o->n;
    if (cut) {
        memcpy(line + n, " [line cut]", 11);
        n += 11;
    }
    line[n++] = '\n';
    o->nlast = out_queue(line, n) ? 0 : n;
    if (o->nlast)
        memcpy(o->last, line, n);
    o->n = 0;
}

static void out_put(outpipe *o, const char *s, size_t n) {
    if (o->cut)
        return;
    if (o->n + n > OUT_LINE) {
        out_emit(o, true);
        o->cut = true;
        return;
    }
    memcpy(o->line + o->n, s, n);
    o->n += n;
}

static void out_escaped(outpipe *o, unsigned char c) {
    char e[5];
    snprintf(e, sizeof e, "\\x%02x", c);
    out_put(o, e, 4);
}

/* Takes bytes a domain wrote, making lines of them. */
static void out_feed(outpipe *o, const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = b[i];
        if (o->c2) { /* U+0080..U+009F, C1 controls some terminals obey */
            o->c2 = false;
            if (c >= 0x80 && c <= 0x9f) {
                out_escaped(o, 0xc2);
                out_escaped(o, c);
                continue;
            }
            out_put(o, "\xc2", 1);
        }
        if (c == '\n') {
            if (!o->cut)
                out_emit(o, false);
            o->n = 0;
            o->cut = false;
        } else if (c == 0xc2) {
            o->c2 = true;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) { /* \r, escapes, ... */
            out_escaped(o, c);
        } else {
            out_put(o, (const char *)&c, 1);
        }
    }
}

static void out_close(outpipe *o) {
    if (o->fd < 0)
        return;
    if (o->c2)
        out_put(o, "\xc2", 1);
    if (o->n && !o->cut) /* its last line had no newline */
        out_emit(o, false);
    if (o->nlast) { /* its last words were dropped: they come first */
        out_make_room(o->nlast);
        if (out_queue(o->last, o->nlast) && out.dropped)
            out.dropped--;
    }
    close(o->fd);
    *o = (outpipe){.fd = -1};
}

/* Reads what o's domain wrote, `rounds` reads of at most `piece` bytes (a
 * bounded amount: a domain that never stops writing does not hold the
 * thread); closes o at end of file. Returns whether it read anything.
 * Lock held. */
static bool out_read(outpipe *o, int rounds, size_t piece) {
    unsigned char buf[16384];
    bool got = false;
    if (piece > sizeof buf)
        piece = sizeof buf;
    for (int round = 0; round < rounds && o->fd >= 0; round++) {
        ssize_t n = read(o->fd, buf, piece);
        if (n > 0) {
            out_feed(o, buf, (size_t)n);
            got = true;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            out_close(o);
        break;
    }
    return got;
}

static void out_drain(outpipe *o) { out_read(o, 16, 16384); }

/* Chooses how to write to fd 2 without ever waiting on it, nor changing
 * its flags (the program shares them): a pipe or a terminal gets our own
 * open file description of it, non-blocking; a socket, non-blocking sends;
 * a file, plain writes. Lock held. */
static void out_choose(void) {
    if (out.fd >= 0)
        close(out.fd);
    out.fd = -1;
    struct stat st;
    if (fstat(2, &st) < 0) {
        out.mode = OUT_NONE;
        return;
    }
    out.dev = st.st_dev;
    out.ino = st.st_ino;
    out.mode = OUT_DIRECT;
    if (S_ISSOCK(st.st_mode)) {
        out.mode = OUT_SOCKET;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        out.fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (out.fd >= 0)
            out.mode = OUT_OWN;
    }
}

/* Writes queued lines, one write each, until the queue is empty or fd 2
 * would block. Returns true when lines are left waiting. Lock held. */
static bool out_flush(void) {
    struct stat st;
    if (out.qlen && (fstat(2, &st) < 0 || st.st_dev != out.dev || st.st_ino != out.ino))
        out_choose(); /* the program moved its stderr */
    while (out.qlen) {
        char *s = out.q + out.qhead;
        char *nl = memchr(s, '\n', out.qlen);
        size_t n = nl ? (size_t)(nl - s) + 1 : out.qlen;
        ssize_t w;
        switch (out.mode) {
        case OUT_OWN: w = write(out.fd, s, n); break;
        case OUT_SOCKET: w = send(2, s, n, MSG_DONTWAIT | MSG_NOSIGNAL); break;
        case OUT_DIRECT: { /* a file: never full; else as good as poll says */
            struct pollfd p = {.fd = 2, .events = POLLOUT};
            int pr = poll(&p, 1, 0);
            if (pr == 1 && (p.revents & POLLOUT))
                w = write(2, s, n);
            else
                w = -1, errno = pr == 1 ? EPIPE : EAGAIN;
            break;
        }
        default: w = -1, errno = EBADF; break;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            return true;
        if (w < 0) { /* nobody reads it: drop what waits */
            for (size_t i = 0; i < out.qlen; i++)
                out.dropped += out.q[out.qhead + i] == '\n';
            out.qhead = out.qlen = 0;
            return false;
        }
        out.qhead += (size_t)w;
        out.qlen -= (size_t)w;
        if (!out.qlen && out.dropped) {
            char note[160];
            int k = snprintf(note, sizeof note,
                             "quarantine[%d]: domain output: %llu line(s) dropped: the "
                             "program's stderr was not read fast enough\n",
                             (int)qtn__g.host_pid, (unsigned long long)out.dropped);
            out.dropped = 0;
            out.qhead = 0;
            out_queue(note, (size_t)k);
        }
    }
    out.qhead = 0;
    return false;
}

/* How long the last words may take at exit: while the program's stderr
 * takes them, up to OUT_LAST_NS in all; once it takes nothing for
 * OUT_IDLE_NS, no longer. */
#define OUT_IDLE_NS 1000000000ull
#define OUT_LAST_NS 5000000000ull

typedef struct {
    uint64_t idle; /* giving up at: OUT_IDLE_NS after the last progress */
    uint64_t last; /* and at the latest */
} out_deadline;

static void out_progress(out_deadline *dl) {
    uint64_t t = qtn__now_ns() + OUT_IDLE_NS;
    dl->idle = t < dl->last ? t : dl->last;
}

/* Writes queued lines, waiting up to 10 ms (not past the deadline) for fd 2
 * to take more when it would block. True while lines wait and time is
 * left. Lock held (dropped while waiting). */
static bool out_flush_wait(out_deadline *dl) {
    size_t before = out.qlen;
    bool waiting = out_flush();
    if (out.qlen != before)
        out_progress(dl);
    if (!waiting || qtn__now_ns() >= dl->idle)
        return false;
    int fd = out.mode == OUT_OWN ? out.fd : 2;
    pthread_mutex_unlock(&out.lock);
    struct pollfd pw = {.fd = fd, .events = POLLOUT};
    if (poll(&pw, 1, 10) < 0 && errno != EINTR)
        usleep(10000);
    pthread_mutex_lock(&out.lock);
    return true;
}

static void *out_main(void *arg) {
    (void)arg;
    enum { NP = sizeof out.p / sizeof out.p[0] };
    for (;;) {
        struct pollfd p[NP + 2];
        int map[NP + 2], n = 0;
        p[n].fd = out.wake, p[n].events = POLLIN, map[n++] = -1;
        pthread_mutex_lock(&out.lock);
        bool stop = out.stop;
        for (int i = 0; i < NP; i++)
            if (out.p[i].fd >= 0)
                p[n].fd = out.p[i].fd, p[n].events = POLLIN, map[n++] = i;
        bool waiting = out_flush();
        if (waiting && (out.mode == OUT_OWN || out.mode == OUT_SOCKET || out.mode == OUT_DIRECT))
            p[n].fd = out.mode == OUT_OWN ? out.fd : 2, p[n].events = POLLOUT, map[n++] = -2;
        pthread_mutex_unlock(&out.lock);
        if (stop)
            break;
        if (poll(p, (nfds_t)n, waiting ? 100 : -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN) {
            uint64_t v;
            (void)!read(out.wake, &v, sizeof v);
        }
        pthread_mutex_lock(&out.lock);
        for (int i = 1; i < n; i++) /* a pipe may have been replaced meanwhile: */
            if (map[i] >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                out_drain(&out.p[map[i]]); /* reading the new one is harmless */
        pthread_mutex_unlock(&out.lock);
    }
    /* stopping: what the domains left in their pipes, and the queue, for as
     * long as the program's stderr takes them (a reader that is slow at
     * exit, one the machine's load keeps from running for a while, must not
     * lose a domain's last words, which come last; one that stops reading
     * must not hold the program's exit for more than a second, nor one
     * that reads for ever for more than five). The pipes are read a piece at
     * a time, with room made in the queue first, so that neither what is
     * read nor the unfinished line a pipe's end gives overflows it: a
     * piece of 1 KiB makes at most 1,024 lines, about 32 KiB with their
     * prefixes, and the queue is written out to half its size before each. */
    uint64_t t0 = qtn__now_ns();
    out_deadline dl = {.idle = t0 + OUT_IDLE_NS, .last = t0 + OUT_LAST_NS};
    pthread_mutex_lock(&out.lock);
    for (int i = 0; i < NP; i++) {
        outpipe *o = &out.p[i];
        while (o->fd >= 0) {
            while (out.qlen > OUT_QUEUE / 2 && out_flush_wait(&dl))
                ;
            if (qtn__now_ns() >= dl.idle || !out_read(o, 1, 1024))
                out_close(o); /* the end, nothing more to come now, or no time left */
        }
    }
    while (out_flush_wait(&dl))
        ;
    pthread_mutex_unlock(&out.lock);
    return NULL;
}

static void out_poke(void) {
    uint64_t one = 1;
    if (out.wake >= 0)
        (void)!write(out.wake, &one, sizeof one);
}

static int out_start(void) {
    pthread_mutex_lock(&out.lock);
    for (size_t i = 0; i < sizeof out.p / sizeof out.p[0]; i++)
        out.p[i] = (outpipe){.fd = -1};
    out.qhead = out.qlen = 0;
    out.dropped = 0;
    out.stop = false;
    out_choose();
    pthread_mutex_unlock(&out.lock);
    out.wake = eventfd(0, EFD_CLOEXEC);
    if (out.wake < 0)
        return QTN_ESYS;
    sigset_t all, old;
    sigfillset(&all); /* the program's signals are not for this thread; nor SIGPIPE */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&out.thread, NULL, out_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) {
        close(out.wake);
        out.wake = -1;
        return QTN_ESYS;
    }
    out.running = true;
    return 0;
}

static void out_stop(void) {
    if (!out.running)
        return;
    pthread_mutex_lock(&out.lock);
    out.stop = true;
    pthread_mutex_unlock(&out.lock);
    out_poke();
    pthread_join(out.thread, NULL);
    out.running = false;
    close(out.wake);
    out.wake = -1;
    if (out.fd >= 0)
        close(out.fd);
    out.fd = -1;
}

/* The read end of the output pipe of incarnation inc of domain d: it takes
 * the place of the one before in its slot (that process is gone). */
static void out_add(int d, uint32_t inc, int fd) {
    pthread_mutex_lock(&out.lock);
    outpipe *o = &out.p[(d - 1) * QTN__INCS + (int)(inc % QTN__INCS)];
    out_drain(o);
    out_close(o);
    o->fd = fd;
    o->d = d;
    pthread_mutex_unlock(&out.lock);
    out_poke();
}

/* ---- the host's side ---------------------------------------------------------- */

/* Whether the kernel lets a listener pass a clone through (5.5). */
static bool can_count(void) {
    struct utsname u;
    int maj = 0, min = 0;
    if (seccomp_api_get() < 5 || uname(&u) < 0 || sscanf(u.release, "%d.%d", &maj, &min) != 2)
        return false;
    return maj > 5 || (maj == 5 && min >= 5);
}

static bool has_landlock(void) {
    return syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* VERSION */) >= 1;
}

int qtn__zygote_start(void) {
    int c[2], e[2];
    /* Without Landlock, the host is not dumpable: then no process without
     * CAP_SYS_PTRACE (a domain drops it) may trace it or open its memory.
     * Before the fork, so the zygote is not either. */
    sbx.landlocked = sbx.landlock && has_landlock();
    if (!sbx.landlocked)
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    sbx.counted = can_count();
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c) < 0)
        return QTN_ESYS;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, e) < 0) {
        close(c[0]);
        close(c[1]);
        return QTN_ESYS;
    }
    /* What confining each child takes, made once, here in the host before
     * the fork: the zygote then allocates nothing. A fork from a host that
     * already runs threads copies whatever allocator lock one of them held
     * (glibc's malloc is made safe across fork, a sanitizer's is not), so
     * the zygote making the filters itself could hang there for ever.
     * Without the Landlock the host counts on, children die confining
     * themselves (and say so). */
    if (nreq) /* an earlier qtn_init's */
        seccomp_notify_free(nreq, nresp);
    nreq = NULL, nresp = NULL;
    if (sbx.counted && seccomp_notify_alloc(&nreq, &nresp) < 0)
        sbx.counted = false;
    (void)qtn__guard_prepare(sbx.landlocked, &sbx.ruleset);
    fflush(NULL); /* buffered output must not be written again by every child */
    pid_t host = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        die_with_parent(host);
        int keep[3] = {c[1], e[1], sbx.ruleset};
        close_other_fds(keep, 3);
        zygote_main(c[1], e[1]);
        _exit(0);
    }
    if (sbx.ruleset >= 0)
        close(sbx.ruleset); /* the zygote's now, or no one's */
    sbx.ruleset = -1;
    close(c[1]);
    close(e[1]);
    if (pid < 0) {
        close(c[0]), close(e[0]);
        return QTN_ESYS;
    }
    /* a zygote that does not answer in time fails the spawn, never hangs
     * the caller (see qtn__zygote_spawn) */
    struct timeval tmo = {.tv_sec = ZYGOTE_ANSWER_S};
    (void)setsockopt(c[0], SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
    zctl = c[0];
    zevt = e[0];
    zpid = pid;
    if (out_start()) { /* after the fork: the zygote has no threads */
        qtn__zygote_stop();
        return QTN_ESYS;
    }
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
    out_stop(); /* the domains are gone: what they wrote is in the pipes */
}

int qtn__zygote_spawn(int d, uint32_t inc, int memfd, int efd, pid_t *pid, int *pidfd) {
    zmsg m = {.op = Z_SPAWN, .dom = d, .inc = inc}, rep = {0};
    int pfd = -1, r = 0, outp[2];
    if (pipe2(outp, O_CLOEXEC) < 0)
        return QTN_ESYS;
    fcntl(outp[0], F_SETFL, O_NONBLOCK);
    int fds[3] = {memfd, efd, outp[1]};
    pthread_mutex_lock(&zlock);
    if (zctl < 0 || send_fds(zctl, &m, fds, 3) < 0) {
        errno = EPIPE;
        r = QTN_ESYS;
    } else if (recv_fd(zctl, &rep, &pfd) < 0) {
        bool late = errno == EAGAIN || errno == EWOULDBLOCK;
        if (late && zpid > 0) {
            /* its answer may yet come and be read as the next one's: a
             * zygote that hung is no zygote (the monitor sees it go) */
            qtn__warn("the zygote process did not answer in %d s: killed", ZYGOTE_ANSWER_S);
            kill(zpid, SIGKILL);
        }
        errno = late ? ETIMEDOUT : EPIPE;
        r = QTN_ESYS;
    }
    pthread_mutex_unlock(&zlock);
    int saved = errno;
    close(outp[1]);
    if (!r && (rep.op != Z_SPAWNED || pfd < 0)) {
        if (pfd >= 0)
            close(pfd);
        saved = rep.op == Z_FAILED ? rep.status : EPROTO;
        r = QTN_ESYS;
    }
    if (r) {
        close(outp[0]);
        errno = saved;
        return r;
    }
    out_add(d, inc, outp[0]);
    *pid = rep.pid;
    *pidfd = pfd;
    return 0;
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
