/* guard.c - inside a domain process: its confinement (limits,
 * capabilities, Landlock, the set-up filter), the handlers that record a
 * fatal signal for the host, the call-time system call filter, and
 * component set-up. */
#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <ffi.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Declared here and in zygote.c, which calls them (internal.h is not this
 * module's to change). In the host, once, before the zygote forks: makes
 * what confining each new domain process takes (the set-up filter, the
 * Landlock ruleset when `landlock`, its fd in *ruleset) and loads what
 * each uses; returns 0, or -1 when Landlock is asked for and cannot be
 * had. */
int qtn__guard_prepare(bool landlock, int *ruleset);
/* In a new domain process, before any component code: confines it (see
 * include/quarantine.h, "Domain processes"); `ruleset` (closed here) and
 * `warden`, the zygote's socket for the clone listener, may be -1. Returns
 * 0, or -1 (errno) when it could not be confined. */
int qtn__guard_confine(uint64_t mem_bytes, int oom_adj, int ruleset, int warden);

#define ALTSTACK_SIZE (64u << 10)

static __thread int my_chan = -1;

/* Tells the host at once (the record is written): it need not wait for
 * the kernel to tear this process down. */
static void tell_host(void) {
    uint64_t one = 1;
    if (qtn__g.dying_fd >= 0)
        (void)!write(qtn__g.dying_fd, &one, sizeof one);
}


/* The faulting thread's frames, from the faulting instruction `pc` on:
 * the handler's own frames are left out. */
static void record_frames(qtn__crash *c, uint64_t pc) {
    void *fr[QTN_REPORT_FRAMES + 8];
    int n = backtrace(fr, QTN_REPORT_FRAMES + 8), skip = 0;
    for (int i = 0; i < n && i < 8; i++) /* under a sanitizer its interceptor is one more */
        if ((uint64_t)(uintptr_t)fr[i] == pc)
            skip = i;
    int k = 0;
    for (int i = skip; i < n && k < QTN_REPORT_FRAMES; i++)
        c->frames[k++] = (uint64_t)(uintptr_t)fr[i];
    c->nframes = (uint32_t)k;
}

static uint64_t pc_of(const ucontext_t *uc) {
#if defined(__x86_64__)
    return (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
#else
    (void)uc;
    return 0;
#endif
}

#define EXIT_PASS 0x10000 /* exit_group status bit the filter lets through */

/* exit() or _exit() from a component: the filter traps exit_group so the
 * host learns which call was running; then the process exits as asked. */
static void on_exit_trap(siginfo_t *si, ucontext_t *uc) {
    int status = (int)uc->uc_mcontext.gregs[REG_RDI];
    qtn__crash *c = &qtn__my_hdr()->crash;
    uint32_t none = 0;
    if (atomic_compare_exchange_strong(&c->set, &none, 1)) {
        c->sig = 0;
        c->code = status & 0xff;
        c->chan = my_chan;
        c->syscall = si->si_syscall;
        record_frames(c, pc_of(uc));
        atomic_store(&c->set, 2);
        tell_host();
    }
    syscall(SYS_exit_group, (status & 0xff) | EXIT_PASS);
}

/* A system call the call-time filter denied, made by an entry of a
 * component that chose to see it fail (qtn_component.denied_errno), or
 * under QTN_SECCOMP=log: the call returns -errno instead of killing the
 * domain (the kernel did not run it), and the first of each system call is
 * said. True when so. */
static bool denied_fails(siginfo_t *si, ucontext_t *uc) {
#if defined(__x86_64__)
    qtn__thread *t = qtn__thread_if_any();
    const qtn_component *c =
        t && t->dn > 0 && t->dn <= QTN__DEPTH_MAX ? t->dst[t->dn - 1].entry->component : NULL;
    int err = c ? c->denied_errno : 0;
    bool log = qtn__my_hdr()->seccomp == 2;
    if (!err && log)
        err = ENOSYS;
    if (err <= 0 || err > 4095)
        return false;
    uc->uc_mcontext.gregs[REG_RAX] = -(long long)err;
    static _Atomic uint64_t said[8]; /* system calls 0..511 */
    unsigned nr = (unsigned)si->si_syscall;
    uint64_t bit = 1ull << (nr % 64);
    if (nr < 512 && !(atomic_fetch_or(&said[nr / 64], bit) & bit))
        qtn__warn("component %s: system call %s denied by the domain's filter: %sfailed "
                  "with %s (%s)",
                  c ? c->name : "(none: no entry was running)", qtn__syscall_name((int)nr),
                  log ? "it would need it (QTN_SECCOMP=log); " : "", strerrorname_np(err),
                  strerror(err));
    return true;
#else
    (void)si, (void)uc;
    return false;
#endif
}

/* Records what killed this process where the host will read it, then dies
 * of the same signal (the exit status the host sees stays true). */
static void on_fatal(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
#if defined(__x86_64__)
    if (sig == SIGSYS && si->si_code == 1 /* SYS_SECCOMP */ && si->si_syscall == SYS_exit_group) {
        on_exit_trap(si, uc);
        return;
    }
#endif
    if (sig == SIGSYS && si->si_code == 1 /* SYS_SECCOMP */ && denied_fails(si, uc))
        return;
    qtn__crash *c = &qtn__my_hdr()->crash;
    uint32_t none = 0;
    if (atomic_compare_exchange_strong(&c->set, &none, 1)) {
        c->sig = sig;
        c->code = si->si_code;
        c->addr = si->si_code > 0 ? (uint64_t)(uintptr_t)si->si_addr : 0; /* from the kernel */
        c->chan = my_chan;
        c->syscall = sig == SIGSYS ? si->si_syscall : 0;
        record_frames(c, pc_of(uc)); /* libgcc was loaded at start */
        atomic_store(&c->set, 2);
        tell_host();
    }
    signal(sig, SIG_DFL);
    raise(sig); /* delivered when the handler returns */
}

void qtn__guard_thread(void) {
    qtn__thread *t = qtn__self_thread();
    my_chan = t ? t->serving : -1;
    stack_t ss = {.ss_sp = malloc(ALTSTACK_SIZE), .ss_size = ALTSTACK_SIZE};
    if (ss.ss_sp && sigaltstack(&ss, NULL) < 0)
        free(ss.ss_sp); /* no alternate stack: a stack overflow still kills, untold */
}

/* Loads the unwinder (glibc's backtrace opens libgcc_s on first use) and
 * has libffi map its closure pages: in the host before the zygote forks,
 * so that every domain process inherits both instead of paying for them
 * (a fifth of a millisecond, every restart), and again in each domain
 * process, where that is then cheap, before its filter. */
static void warm_libraries(void) {
    void *fr[4];
    backtrace(fr, 4);
    void *code;
    ffi_closure *cl = ffi_closure_alloc(sizeof(ffi_closure), &code);
    if (cl)
        ffi_closure_free(cl);
}

void qtn__guard_install(void) {
    warm_libraries(); /* not inside a handler, nor past the filter */
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* Domain processes must not run the program's leak check at exit: they end
 * by a signal or by a component's exit(), and their memory is the host's. */
int __lsan_is_turned_off(void);
__attribute__((visibility("default"))) int __lsan_is_turned_off(void) {
    return qtn__g.self != QTN_DOMAIN_HOST;
}

const char *qtn__syscall_name(int nr) {
    char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    static __thread char buf[32];
    snprintf(buf, sizeof buf, "%s", s ? s : "?");
    free(s);
    return buf;
}

/* ---- confinement: before any component code runs ---------------------------- */

/* A comparison on argument `arg` (the SCMP_A* macros leave a field to the
 * compiler's default, which -Wextra flags). */
static struct scmp_arg_cmp cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a,
                               scmp_datum_t b) {
    struct scmp_arg_cmp c = {.arg = arg, .op = op, .datum_a = a, .datum_b = b};
    return c;
}
static struct scmp_arg_cmp a0(enum scmp_compare op, scmp_datum_t a, scmp_datum_t b) {
    return cmp(0, op, a, b);
}
/* the kernel reads an ioctl request or fcntl command as 32 bits: compare
 * those only, so high bits cannot slip a request past a rule */
static struct scmp_arg_cmp cmd_is(unsigned arg, scmp_datum_t v) {
    return cmp(arg, SCMP_CMP_MASKED_EQ, 0xffffffffu, v);
}

/* Calls that reach another process, denied (EPERM) from before the first
 * line of component code for the life of the domain: the call-time filter
 * sits on top of this one and cannot allow them again. */
static const char *const reach_out[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_open", "pidfd_getfd",
    "pidfd_send_signal", "process_madvise", "process_mrelease", "perf_event_open",
    "tkill", /* glibc signals its threads with tgkill */
    "fork", "vfork",  /* a domain is one process: no children outlive it */
    "unshare", "setns",
    "io_uring_setup", "io_uring_enter", "io_uring_register", /* kernel threads, uncounted */
};

/* Calls allowed on the calling process only: argument 0 must be 0 (self),
 * or this process's pid where `pid` is set. */
static const struct { const char *name; bool pid; } self_only[] = {
    {"kill", true}, {"tgkill", true}, {"rt_sigqueueinfo", true}, {"rt_tgsigqueueinfo", true},
    {"prlimit64", false}, {"sched_setaffinity", false}, {"sched_setscheduler", false},
    {"sched_setparam", false}, {"sched_setattr", false}, {"migrate_pages", false},
    {"move_pages", false},
};

/* ioctl requests denied on any fd: typing into a terminal, its console
 * and line discipline, and signals to another process on I/O. */
static const unsigned long bad_ioctls[] = {TIOCSTI, TIOCLINUX, TIOCCONS, TIOCSETD, FIOSETOWN,
                                           SIOCSPGRP, TIOCSPGRP};
/* fcntl commands that would send signals to another process */
static const unsigned long bad_fcntls[] = {F_SETOWN, F_SETOWN_EX, F_SETSIG};

static int deny(scmp_filter_ctx ctx, const char *name, unsigned n, const struct scmp_arg_cmp *c) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* not on this architecture */
    return seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM), nr, n, c);
}

/* The set-up filter: everything but the calls above; `me` is the process
 * calls are allowed on. With `notify`, each clone waits for the zygote's
 * word (it counts the domain's threads). Returns the filter, or NULL. */
static scmp_filter_ctx setup_filter(bool notify, scmp_datum_t me) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return NULL;
    int r = 0;
    for (size_t i = 0; i < sizeof reach_out / sizeof reach_out[0] && !r; i++)
        r = deny(ctx, reach_out[i], 0, NULL);
    for (size_t i = 0; i < sizeof self_only / sizeof self_only[0] && !r; i++) {
        struct scmp_arg_cmp c = a0(SCMP_CMP_NE, self_only[i].pid ? me : 0, 0);
        r = deny(ctx, self_only[i].name, 1, &c);
    }
    /* setpriority and ioprio_set name their target in two arguments */
    struct scmp_arg_cmp prio[] = {a0(SCMP_CMP_NE, PRIO_PROCESS, 0), cmp(1, SCMP_CMP_NE, 0, 0),
                                  a0(SCMP_CMP_NE, 1 /* IOPRIO_WHO_PROCESS */, 0)};
    r = r ?: deny(ctx, "setpriority", 1, &prio[0]);
    r = r ?: deny(ctx, "setpriority", 1, &prio[1]);
    r = r ?: deny(ctx, "ioprio_set", 1, &prio[2]);
    r = r ?: deny(ctx, "ioprio_set", 1, &prio[1]);
    for (size_t i = 0; i < sizeof bad_ioctls / sizeof bad_ioctls[0] && !r; i++) {
        struct scmp_arg_cmp c = cmd_is(1, bad_ioctls[i]);
        r = deny(ctx, "ioctl", 1, &c);
    }
    for (size_t i = 0; i < sizeof bad_fcntls / sizeof bad_fcntls[0] && !r; i++) {
        struct scmp_arg_cmp c = cmd_is(1, bad_fcntls[i]);
        r = deny(ctx, "fcntl", 1, &c);
    }
    /* clone3 hides its flags from filters: glibc falls back to clone */
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (notify) {
        r = r ?: seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(clone), 0);
    } else { /* threads only, uncounted */
        struct scmp_arg_cmp c = a0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0);
        r = r ?: deny(ctx, "clone", 1, &c);
    }
    if (r) {
        seccomp_release(ctx);
        return NULL;
    }
    return ctx;
}

/* The set-up filter as BPF, made once in the zygote with SELF where the
 * child's pid goes (no pid is that large), patched in each child: making
 * it there would cost every new process a third of a millisecond. */
#define SELF 0x5eed5eedu
typedef struct bpf_prog {
    struct sock_filter *insn;
    unsigned short len;
} bpf_prog;
static bpf_prog setup_bpf[2]; /* [notify] */

/* ctx as BPF into *out (left empty when it cannot be made), in place of
 * what an earlier qtn_init of this process made. */
static void export_bpf(scmp_filter_ctx ctx, bpf_prog *out) {
    free(out->insn);
    *out = (bpf_prog){0};
    int fd = memfd_create("quarantine-bpf", MFD_CLOEXEC);
    struct stat st;
    if (ctx && fd >= 0 && seccomp_export_bpf(ctx, fd) == 0 && fstat(fd, &st) == 0 &&
        st.st_size > 0 && st.st_size % sizeof(struct sock_filter) == 0 &&
        st.st_size / sizeof(struct sock_filter) <= BPF_MAXINSNS) {
        struct sock_filter *insn = malloc((size_t)st.st_size);
        if (insn && pread(fd, insn, (size_t)st.st_size, 0) == st.st_size) {
            out->insn = insn;
            out->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
        } else {
            free(insn);
        }
    }
    if (fd >= 0)
        close(fd);
}

/* Replaces each constant `from` the program compares with by `to`, in this
 * process's copy (the zygote's stays as it is). Returns how many. */
static unsigned bpf_patch(bpf_prog *p, uint32_t from, uint32_t to) {
    unsigned n = 0;
    for (unsigned i = 0; p->insn && i < p->len; i++)
        if (BPF_CLASS(p->insn[i].code) == BPF_JMP && BPF_SRC(p->insn[i].code) == BPF_K &&
            p->insn[i].k == from)
            p->insn[i].k = to, n++;
    return n;
}

static void export_setup_filter(bool notify) {
    scmp_filter_ctx ctx = setup_filter(notify, SELF);
    export_bpf(ctx, &setup_bpf[notify]);
    if (ctx)
        seccomp_release(ctx);
}

/* Loads the set-up filter with this process's pid in it; *listener gets
 * the fd its clones are answered on (with `notify`). Returns 0 or -1. */
static int load_setup_filter(bool notify, int *listener) {
    *listener = -1;
    unsigned flags = notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
    struct sock_filter *insn = setup_bpf[notify].insn;
    unsigned len = setup_bpf[notify].len;
    pid_t me = getpid();
    unsigned patched = bpf_patch(&setup_bpf[notify], SELF, (uint32_t)me);
    if (insn && patched) {
        struct sock_fprog prog = {.len = (unsigned short)len, .filter = insn};
        long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
        if (r < 0)
            return -1;
        *listener = notify ? (int)r : -1;
        return 0;
    }
    scmp_filter_ctx ctx = setup_filter(notify, me); /* not made in the zygote */
    int r = ctx ? seccomp_load(ctx) : -ENOMEM;
    if (!r && notify)
        *listener = seccomp_notify_fd(ctx);
    if (ctx)
        seccomp_release(ctx);
    return r ? -1 : 0;
}

/* Hands the listener to the zygote over `warden` and lets go of both: the
 * domain must not answer its own clones. */
static int send_listener(int warden, int fd) {
    char cbuf[CMSG_SPACE(sizeof(int))], byte = 'L';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    memset(cbuf, 0, sizeof cbuf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    do
        n = sendmsg(warden, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    close(fd);
    return n == 1 ? 0 : -1;
}

/* The Landlock ruleset of domain processes, made once in the zygote: a
 * process in a Landlock domain cannot trace, open the memory of, or
 * otherwise ptrace-access any process outside it (the host, the zygote,
 * other domains), whatever its uid and the yama setting. The rules also
 * deny writing files under /proc and /sys: not the host's oom_score_adj,
 * not the kernel's settings. Returns the ruleset's fd or -1 (errno). */
static int landlock_ruleset(void) {
    int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1)
        return -1;
    uint64_t handled = LANDLOCK_ACCESS_FS_WRITE_FILE;
    if (abi >= 2) /* handled and allowed: files may still move between directories */
        handled |= LANDLOCK_ACCESS_FS_REFER;
    struct landlock_ruleset_attr ra = {.handled_access_fs = handled};
    int rs = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof ra, 0);
    if (rs < 0)
        return -1;
    int r = 0;
    DIR *root = opendir("/");
    struct dirent *e;
    while (root && (e = readdir(root))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "proc") ||
            !strcmp(e->d_name, "sys"))
            continue;
        int fd = openat(dirfd(root), e->d_name, O_PATH | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || S_ISLNK(st.st_mode)) { /* a link leads below a rule */
            if (fd >= 0)
                close(fd);
            continue;
        }
        struct landlock_path_beneath_attr pb = {
            .allowed_access = S_ISDIR(st.st_mode) ? handled : LANDLOCK_ACCESS_FS_WRITE_FILE,
            .parent_fd = fd};
        if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) /* one it refuses stays unwritable */
            (void)syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
        close(fd);
    }
    if (root)
        closedir(root);
    else
        r = -1;
    if (r) {
        int saved = errno;
        close(rs);
        errno = saved;
        return -1;
    }
    return rs;
}

static void export_call_filter(void);

int qtn__guard_prepare(bool landlock, int *ruleset) {
    warm_libraries();
    export_setup_filter(false);
    export_setup_filter(true);
    export_call_filter();
    *ruleset = landlock ? landlock_ruleset() : -1;
    return landlock && *ruleset < 0 ? -1 : 0;
}

/* No capabilities, now or after an exec: the bounding set where this
 * process may drop from it, the ambient set, securebits where it may set
 * them, then capset to nothing. Returns 0 or -1. */
static int drop_caps(void) {
    for (int c = 0; c < 64; c++)
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno == EINVAL)
            break; /* past the last capability; EPERM: not ours to drop */
    (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    (void)prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                       SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                                       SECBIT_NO_CAP_AMBIENT_RAISE |
                                       SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
                0, 0, 0);
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct none[2];
    memset(none, 0, sizeof none);
    return syscall(SYS_capset, &h, none) < 0 ? -1 : 0;
}

/* Address space mapped now, in bytes (the program's at qtn_init, the
 * reserved range and this domain's slot). */
static uint64_t vm_bytes(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = 0;
    return strtoull(buf, NULL, 10) * (uint64_t)sysconf(_SC_PAGESIZE);
}

int qtn__guard_confine(uint64_t mem_bytes, int oom_adj, int ruleset, int warden) {
    /* the OOM killer's first choice; /proc/self is root's while the
     * process is not dumpable (as it is forked where the host made itself
     * so), so it is dumpable for this write only */
    if (oom_adj >= 0) {
        (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        char v[16];
        int n = snprintf(v, sizeof v, "%d", oom_adj);
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, v, (size_t)n) != n)
            qtn__warn("domain %d: cannot set its oom_score_adj to %s: %s", qtn__g.self, v,
                      strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    /* not dumpable: no core file, and no other process of the user may
     * trace it or open its memory */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    struct rlimit none = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &none);
    if (mem_bytes) { /* on top of what it starts with */
        uint64_t lim = vm_bytes() + mem_bytes;
        struct rlimit as;
        if (getrlimit(RLIMIT_AS, &as) == 0) {
            if (as.rlim_max != RLIM_INFINITY && lim > as.rlim_max)
                lim = as.rlim_max;
            as.rlim_cur = as.rlim_max = (rlim_t)lim;
            if (setrlimit(RLIMIT_AS, &as) < 0)
                return -1;
        }
    }
    if (drop_caps() < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    if (ruleset >= 0) { /* the host counts on it: no Landlock, no domain */
        long lr = syscall(SYS_landlock_restrict_self, ruleset, 0);
        close(ruleset);
        if (lr < 0)
            return -1;
    }
    int listener = -1;
    if (load_setup_filter(warden >= 0, &listener) < 0 &&
        (warden < 0 || load_setup_filter(false, &listener) < 0)) /* under another listener? */
        return -1;
    if (warden >= 0) {
        if (listener >= 0)
            send_listener(warden, listener);
        close(warden); /* the zygote stops waiting, listener or none */
    }
    return 0;
}

/* ---- the call-time filter ---------------------------------------------------- */

/* What a computing component needs: memory, threads, futexes, time, signals
 * to itself, and writing to stdout and stderr (a pipe the host reads).
 * Everything else (opening files, sockets, exec, ptrace, ...) traps, and
 * the trap is a fault. */
static const char *const allowed[] = {
    "mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "futex",
    "set_robust_list", "get_robust_list", "rseq", "sched_yield", "sched_getaffinity",
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "pause", "poll", "ppoll",
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
    "exit", "getrandom", "getrusage", "times", "uname", "newfstatat", "fstat",
    "close", "membarrier", "sysinfo",
};

/* ioctl requests allowed on fds 0-2: asking whether one is a terminal
 * (isatty) and its size. Nothing that changes a terminal or an fd. */
static const unsigned long std_ioctls[] = {TCGETS, TIOCGWINSZ};

static int rule(scmp_filter_ctx ctx, const char *name) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* not on this architecture */
    return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
}

/* The call-time filter for process `me` whose dying fd is `dying` (NONE:
 * none), or NULL. */
#define DYING 0x7ead0fd5u /* where the dying fd goes, in the zygote's BPF */
#define NONE_FD 0xffffffffu /* compared with no fd: the rule allows nothing */
static scmp_filter_ctx call_filter(scmp_datum_t me, scmp_datum_t dying) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx)
        return NULL;
    /* every thread, those an init hook started too */
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0] && !r; i++)
        r = rule(ctx, allowed[i]);
    /* output to the inherited stdout and stderr only */
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, /* dying, it says so */
                              a0(SCMP_CMP_EQ, dying, 0));
    for (scmp_datum_t fd = 1; fd <= 2 && !r; fd++) {
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, a0(SCMP_CMP_EQ, fd, 0));
        r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(writev), 1,
                                  a0(SCMP_CMP_EQ, fd, 0));
    }
    for (size_t i = 0; i < sizeof std_ioctls / sizeof std_ioctls[0] && !r; i++)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 2, a0(SCMP_CMP_LE, 2, 0),
                             cmp(1, SCMP_CMP_EQ, std_ioctls[i], 0));
    /* threads, not processes; clone3 hides its flags, so glibc falls back */
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              a0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* signals to itself only (raise, abort) */
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              a0(SCMP_CMP_EQ, (scmp_datum_t)me, 0));
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                              a0(SCMP_CMP_EQ, (scmp_datum_t)me, 0));
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, a0(SCMP_CMP_EQ, 0, 0));
    /* a serving thread pins itself to its caller's CPU to sleep (wait.c) */
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sched_setaffinity), 1,
                              a0(SCMP_CMP_EQ, 0, 0));
#if defined(__x86_64__)
    /* exit_group traps (to tell the host who exited) unless the handler passes it */
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit_group), 1,
                              a0(SCMP_CMP_MASKED_EQ, EXIT_PASS, EXIT_PASS));
#else
    r = r ?: rule(ctx, "exit_group");
#endif
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 0);
    /* what components asked for: a plan may move any component here while
     * the process runs, so the filter allows every one's (never what the
     * set-up filter below this one denies) */
    for (int c = 1; c <= qtn__ncomps && !r; c++) {
        const qtn_component *cp = qtn__comps[c];
        if (!cp->syscalls)
            continue;
        for (const char *const *s = cp->syscalls; *s && !r; s++) {
            int nr = seccomp_syscall_resolve_name(*s);
            if (nr == __NR_SCMP_ERROR) {
                qtn__warn("component %s: unknown system call '%s' ignored", cp->name, *s);
                continue;
            }
            r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        }
    }
    if (r) {
        qtn__warn("domain filter: %s", strerror(-r));
        seccomp_release(ctx);
        return NULL;
    }
    return ctx;
}

/* The call-time filter as BPF, made once in the zygote (the components are
 * registered by then) with SELF and DYING for this process's pid and dying
 * fd, patched in each new process instead of made there. */
static bpf_prog call_bpf;

static void export_call_filter(void) {
    scmp_filter_ctx ctx = call_filter(SELF, DYING);
    if (ctx) {
        export_bpf(ctx, &call_bpf);
        seccomp_release(ctx);
    }
}

int qtn__guard_seccomp(void) {
    pid_t me = getpid();
    uint32_t dying = qtn__g.dying_fd >= 0 ? (uint32_t)qtn__g.dying_fd : NONE_FD;
    if (call_bpf.insn && bpf_patch(&call_bpf, SELF, (uint32_t)me) &&
        bpf_patch(&call_bpf, DYING, dying)) {
        struct sock_fprog prog = {.len = call_bpf.len, .filter = call_bpf.insn};
        /* every thread, those an init hook started too */
        if (!syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog))
            return 0;
    }
    scmp_filter_ctx ctx = call_filter((scmp_datum_t)me, dying); /* not made in the zygote */
    if (!ctx)
        return -1;
    int r = seccomp_load(ctx);
    seccomp_release(ctx);
    return r;
}

/* ---- component set-up --------------------------------------------------------- */

static _Atomic uint8_t comp_done[QTN_COMPONENTS_MAX + 1];
static pthread_mutex_t comp_lock = PTHREAD_MUTEX_INITIALIZER;

void qtn__comp_ready(const qtn_component *c) {
    if (!c || !c->init || c->id <= 0 || atomic_load_explicit(&comp_done[c->id], memory_order_acquire))
        return;
    pthread_mutex_lock(&comp_lock);
    if (!atomic_load(&comp_done[c->id])) {
        c->init();
        atomic_store_explicit(&comp_done[c->id], 1, memory_order_release);
    }
    pthread_mutex_unlock(&comp_lock);
}
