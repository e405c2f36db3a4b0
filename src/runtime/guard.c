/* guard.c - inside a domain process: the handlers that record a fatal
 * signal for the host, the system call filter, and component set-up. */
#include <errno.h>
#include <execinfo.h>
#include <ffi.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

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
    void *fr[QTN_REPORT_FRAMES + 4];
    int n = backtrace(fr, QTN_REPORT_FRAMES + 4), skip = 0;
    for (int i = 0; i < n && i < 4; i++)
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

void qtn__guard_install(void) {
    void *fr[4];
    backtrace(fr, 4); /* load the unwinder now, not inside a handler */
    /* make libffi map its closure pages now, before the filter */
    void *code;
    ffi_closure *cl = ffi_closure_alloc(sizeof(ffi_closure), &code);
    if (cl)
        ffi_closure_free(cl);
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

/* ---- the filter ------------------------------------------------------------ */

/* What a computing component needs: memory, threads, futexes, time, signals
 * to itself, and writing to stdout and stderr. Everything else (opening
 * files, sockets, exec, ptrace, ...) traps, and the trap is a fault. */
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

/* A comparison on the first argument (the SCMP_A0 macro leaves a field to
 * the compiler's default, which -Wextra flags). */
static struct scmp_arg_cmp a0(enum scmp_compare op, scmp_datum_t a, scmp_datum_t b) {
    struct scmp_arg_cmp c = {.arg = 0, .op = op, .datum_a = a, .datum_b = b};
    return c;
}

static int rule(scmp_filter_ctx ctx, const char *name) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* not on this architecture */
    return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
}

int qtn__guard_seccomp(void) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx)
        return -1;
    int r = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0] && !r; i++)
        r = rule(ctx, allowed[i]);
    pid_t me = getpid();
    /* output to the inherited stdout and stderr only */
    if (qtn__g.dying_fd >= 0) /* telling the host it is dying */
        r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1,
                                  a0(SCMP_CMP_EQ, (scmp_datum_t)qtn__g.dying_fd, 0));
    for (scmp_datum_t fd = 1; fd <= 2 && !r; fd++) {
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, a0(SCMP_CMP_EQ, fd, 0));
        r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(writev), 1,
                                  a0(SCMP_CMP_EQ, fd, 0));
    }
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, a0(SCMP_CMP_LE, 2, 0));
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
#if defined(__x86_64__)
    /* exit_group traps (to tell the host who exited) unless the handler passes it */
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit_group), 1,
                              a0(SCMP_CMP_MASKED_EQ, EXIT_PASS, EXIT_PASS));
#else
    r = r ?: rule(ctx, "exit_group");
#endif
    r = r ?: seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 0);
    /* what components asked for: a plan may move any component here while
     * the process runs, so the filter allows every one's */
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
    if (r)
        qtn__warn("domain filter: %s", strerror(-r));
    r = r ?: seccomp_load(ctx);
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
