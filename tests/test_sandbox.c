/* test_sandbox.c - a hostile component in a real domain process: its init
 * hook tries to reach the host (its memory through /proc/<pid>/mem, ptrace,
 * process_vm_writev and _readv, signals, pidfds, prlimit, priorities, a
 * child process) and starts a thread that tries a denied call later; its
 * entries poke at the host's stdin, stdout and stderr with ioctls, start
 * hundreds of threads, map gigabytes and, with `openat` declared, open the
 * host's memory at call time. Each time the host must be untouched: its
 * canary unchanged, its fds' flags unchanged, its own threads free to
 * start; the domain limited, without capabilities and the OOM killer's
 * first choice. Run twice: with Landlock (where the kernel has it), and
 * with QTN_LANDLOCK=0, when the host is made non-dumpable instead. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "quarantine.h"
#include "util.h"

/* ---- the host's: its domains have a copy at the same address ------------------------ */

static pid_t host_pid;
static volatile int64_t canary = 0x5afe5afe;

/* ---- the "sb" component ------------------------------------------------------------- */

enum {
    SBP_MEM_OPEN,   /* open /proc/<host>/mem for writing: 0 if it opened */
    SBP_MEM_WRITE,  /* and wrote the canary through it */
    SBP_PTRACE,     /* PTRACE_SEIZE the host */
    SBP_VM_WRITE,   /* process_vm_writev into the host's canary */
    SBP_VM_READ,    /* process_vm_readv of it */
    SBP_KILL,       /* kill(host, 0) */
    SBP_PIDFD,      /* pidfd_open(host) */
    SBP_SETOWN,     /* F_SETOWN of a socket to the host: SIGIO to it */
    SBP_PRLIMIT,    /* prlimit of the host */
    SBP_SETPRIO,    /* setpriority of the host */
    SBP_FORK,       /* fork a child */
    SBP_OOM_HOST,   /* open the host's oom_score_adj for writing */
    SBP_TTY,        /* open /dev/tty (its controlling terminal) */
    SBP_CAP_EFF,    /* effective capabilities (low word) */
    SBP_CAP_BND,    /* capabilities left in the bounding set */
    SBP_NNP,        /* no_new_privs */
    SBP_DUMPABLE,   /* PR_GET_DUMPABLE */
    SBP_OOM,        /* its own oom_score_adj */
    SBP_STDIN_NULL, /* stdin is /dev/null */
    SBP_OWN_SID,    /* a session of its own */
    SBP_N
};

static int probe[SBP_N];
static _Atomic int thr_go, thr_done, thr_result;

static int err_or(int ok) { return ok ? 0 : (errno ? errno : -1); }

static void *init_thread(void *arg) {
    (void)arg;
    while (!atomic_load(&thr_go)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    /* the call-time filter denies sockets: if it covers this thread, the
     * domain dies here of SIGSYS */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    atomic_store(&thr_result, s >= 0 ? s : -errno);
    atomic_store(&thr_done, 1);
    return NULL;
}

/* Runs in every new process of the domain, before the host sends a call. */
static void sb_init(void) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)host_pid);
    errno = 0;
    int fd = open(path, O_RDWR);
    probe[SBP_MEM_OPEN] = err_or(fd >= 0);
    probe[SBP_MEM_WRITE] = -1;
    if (fd >= 0) {
        int64_t v = 0xbad;
        errno = 0;
        probe[SBP_MEM_WRITE] =
            err_or(pwrite(fd, &v, sizeof v, (off_t)(uintptr_t)&canary) == (ssize_t)sizeof v);
        close(fd);
    }
    errno = 0;
    long pr = ptrace(PTRACE_SEIZE, host_pid, 0, 0);
    probe[SBP_PTRACE] = err_or(pr == 0);
    if (pr == 0)
        ptrace(PTRACE_DETACH, host_pid, 0, 0);
    int64_t bad = 0xbad;
    struct iovec lo = {&bad, sizeof bad}, re = {(void *)&canary, sizeof canary};
    errno = 0;
    probe[SBP_VM_WRITE] = err_or(process_vm_writev(host_pid, &lo, 1, &re, 1, 0) > 0);
    int64_t got = 0;
    struct iovec lr = {&got, sizeof got};
    errno = 0;
    probe[SBP_VM_READ] = err_or(process_vm_readv(host_pid, &lr, 1, &re, 1, 0) > 0);
    errno = 0;
    probe[SBP_KILL] = err_or(kill(host_pid, 0) == 0);
    errno = 0;
    int pfd = (int)syscall(SYS_pidfd_open, host_pid, 0);
    probe[SBP_PIDFD] = err_or(pfd >= 0);
    if (pfd >= 0)
        close(pfd);
    int sv[2];
    probe[SBP_SETOWN] = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
        errno = 0;
        probe[SBP_SETOWN] = err_or(fcntl(sv[0], F_SETOWN, host_pid) == 0);
        close(sv[0]);
        close(sv[1]);
    }
    struct rlimit rl;
    errno = 0;
    probe[SBP_PRLIMIT] = err_or(prlimit(host_pid, RLIMIT_CORE, NULL, &rl) == 0);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)host_pid);
    errno = 0;
    probe[SBP_SETPRIO] = err_or(setpriority(PRIO_PROCESS, (id_t)host_pid, nice) == 0);
    errno = 0;
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    probe[SBP_FORK] = err_or(child > 0);
    if (child > 0)
        waitpid(child, NULL, 0);
    snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)host_pid);
    errno = 0;
    fd = open(path, O_WRONLY);
    probe[SBP_OOM_HOST] = err_or(fd >= 0);
    if (fd >= 0)
        close(fd);
    errno = 0;
    fd = open("/dev/tty", O_RDWR | O_NOCTTY);
    probe[SBP_TTY] = err_or(fd >= 0);
    if (fd >= 0)
        close(fd);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    probe[SBP_CAP_EFF] = syscall(SYS_capget, &h, d) == 0 ? (int)d[0].effective : -1;
    probe[SBP_CAP_BND] = 0;
    for (int c = 0; c < 64; c++)
        probe[SBP_CAP_BND] += prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1;
    probe[SBP_NNP] = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    probe[SBP_DUMPABLE] = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    probe[SBP_OOM] = -1;
    FILE *f = fopen("/proc/self/oom_score_adj", "r");
    if (f) {
        if (fscanf(f, "%d", &probe[SBP_OOM]) != 1)
            probe[SBP_OOM] = -1;
        fclose(f);
    }
    struct stat st;
    probe[SBP_STDIN_NULL] =
        fstat(0, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
    probe[SBP_OWN_SID] = getsid(0) != getsid(host_pid);
    pthread_t th;
    if (pthread_create(&th, NULL, init_thread, NULL) == 0)
        pthread_detach(th);
}

static int sb_result_real(int32_t which) {
    return which >= 0 && which < SBP_N ? probe[which] : -1000;
}

/* Tells the thread the init hook started to make a denied call. */
static int sb_thread_try_real(void) {
    atomic_store(&thr_go, 1);
    for (int i = 0; i < 2000 && !atomic_load(&thr_done); i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&thr_done) ? atomic_load(&thr_result) : -1000;
}

enum { K_ISATTY, K_FIONBIO_1, K_FIONBIO_0, K_TIOCSTI_2, K_TIOCSTI_0, K_TCSETS_0, K_WINSZ };

static int sb_ioctl_real(int32_t kind) {
    int on = 1;
    char c = 'x';
    struct termios t;
    struct winsize ws;
    memset(&t, 0, sizeof t);
    switch (kind) {
    case K_ISATTY: return isatty(1);
    case K_FIONBIO_1: return ioctl(1, FIONBIO, &on);
    case K_FIONBIO_0: return ioctl(0, FIONBIO, &on);
    case K_TIOCSTI_2: return ioctl(2, TIOCSTI, &c);
    case K_TIOCSTI_0: return ioctl(0, TIOCSTI, &c);
    case K_TCSETS_0: return ioctl(0, TCSETS, &t);
    case K_WINSZ: return ioctl(1, TIOCGWINSZ, &ws) < 0 ? -errno : 0;
    default: return -1000;
    }
}

static _Atomic int hold = 1;
static void *holder(void *arg) {
    (void)arg;
    while (atomic_load(&hold)) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Starts up to n threads that wait for sb_release; how many started. */
/* -n: the same, while the domain starves threads whose clones were let
 * through (so that they stay out of /proc's count): 10 threads spin, 16
 * more each start one at the same moment, and 5 ms later this one starts
 * threads until it may not. */
static _Atomic int spin_on, go;
static void *spinner(void *arg) {
    while (atomic_load(&spin_on))
        ;
    return holder(arg);
}
static void *starter(void *arg) {
    pthread_t th;
    while (!atomic_load(&go))
        ;
    (void)!pthread_create(&th, NULL, holder, NULL);
    return holder(arg);
}

static int sb_threads_starved(int32_t n) {
    atomic_store(&hold, 1);
    atomic_store(&spin_on, 1);
    atomic_store(&go, 0);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 << 10);
    pthread_t th;
    for (int i = 0; i < 10; i++)
        (void)!pthread_create(&th, &a, spinner, NULL);
    for (int i = 0; i < 16; i++)
        (void)!pthread_create(&th, &a, starter, NULL);
    atomic_store(&go, 1);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec < 5000000L);
    int k = 0;
    while (k < n && !pthread_create(&th, &a, holder, NULL))
        k++;
    atomic_store(&spin_on, 0);
    pthread_attr_destroy(&a);
    return k;
}

static int sb_threads_real(int32_t n) {
    if (n < 0)
        return sb_threads_starved(-n);
    atomic_store(&hold, 1);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 << 10);
    int k = 0;
    for (int i = 0; i < n; i++) {
        pthread_t th;
        if (pthread_create(&th, &a, holder, NULL))
            break;
        k++;
    }
    pthread_attr_destroy(&a);
    return k;
}

static int sb_release_real(void) {
    atomic_store(&hold, 0);
    return 0;
}

/* Maps mib MiB (and touches one page of each); 0 or the errno. */
static int sb_map_real(int32_t mib) {
    size_t len = (size_t)mib << 20;
    char *p =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return errno;
    for (size_t off = 0; off < len; off += 1 << 20)
        p[off] = 1;
    munmap(p, len);
    return 0;
}

/* With `openat` declared: the host's memory, opened at call time and the
 * canary written through it. 0 if it was written, else the errno. */
static int sb_openmem_real(void) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)host_pid);
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return errno;
    int64_t v = 0xbad;
    int r = pwrite(fd, &v, sizeof v, (off_t)(uintptr_t)&canary) == (ssize_t)sizeof v ? 0 : errno;
    close(fd);
    return r;
}

TU_THUNK(sb_result) { r->i = sb_result_real((int32_t)a[0].i); }
TU_THUNK(sb_thread_try) {
    (void)a;
    r->i = sb_thread_try_real();
}
TU_THUNK(sb_ioctl) { r->i = sb_ioctl_real((int32_t)a[0].i); }
TU_THUNK(sb_threads) { r->i = sb_threads_real((int32_t)a[0].i); }
TU_THUNK(sb_release) {
    (void)a;
    r->i = sb_release_real();
}
TU_THUNK(sb_map) { r->i = sb_map_real((int32_t)a[0].i); }
TU_THUNK(sb_openmem) {
    (void)a;
    r->i = sb_openmem_real();
}

static const qtn_param p_i32[] = {QTN_P_SCALAR(QTN_T_I32)};
static qtn_component sb_component;

TU_ENTRY(sb_result, sb_component, 1, p_i32);
TU_ENTRY(sb_thread_try, sb_component, 0, NULL);
TU_ENTRY(sb_ioctl, sb_component, 1, p_i32);
TU_ENTRY(sb_threads, sb_component, 1, p_i32);
TU_ENTRY(sb_release, sb_component, 0, NULL);
TU_ENTRY(sb_map, sb_component, 1, p_i32);
TU_ENTRY(sb_openmem, sb_component, 0, NULL);

static const qtn_entry *const sb_entries[] = {
    &sb_result_entry,  &sb_thread_try_entry, &sb_ioctl_entry,  &sb_threads_entry,
    &sb_release_entry, &sb_map_entry,        &sb_openmem_entry};
/* what a component reading files declares: the call-time filter lets it
 * open files, never the host's memory */
static const char *const sb_syscalls[] = {"openat", "open", "pwrite64", NULL};
static qtn_component sb_component = {
    .name = "sb", .nentries = 7, .entries = sb_entries, .init = sb_init, .syscalls = sb_syscalls};

/* "sb2": keeps a domain running without sb in it */
static int sb2_ok_real(void) { return 1; }
static void sb2_ok_thunk(qtn_val *a, qtn_val *r) {
    (void)a;
    r->i = sb2_ok_real();
}
static qtn_component sb2_component;
static const qtn_entry sb2_ok_entry = {.name = "sb2_ok",
                                       .component = &sb2_component,
                                       .thunk = sb2_ok_thunk,
                                       .ret = QTN_T_I32,
                                       .fault = {.i = -1}};
static const qtn_entry *const sb2_entries[] = {&sb2_ok_entry};
static qtn_component sb2_component = {.name = "sb2", .nentries = 1, .entries = sb2_entries};

static int last_err;

#define STUB1(nm)                                                                                  \
    static int nm(int32_t x) {                                                                     \
        static qtn_edge e = QTN_EDGE_INIT(NULL, &nm##_entry);                                      \
        if (QTN_DIRECT(&e))                                                                        \
            return nm##_real(x);                                                                   \
        qtn_val v[1] = {{.i = x}}, r;                                                              \
        last_err = qtn_call(&e, v, &r);                                                            \
        return (int)r.i;                                                                           \
    }
#define STUB0(nm)                                                                                  \
    static int nm(void) {                                                                          \
        static qtn_edge e = QTN_EDGE_INIT(NULL, &nm##_entry);                                      \
        if (QTN_DIRECT(&e))                                                                        \
            return nm##_real();                                                                    \
        qtn_val r;                                                                                 \
        last_err = qtn_call(&e, NULL, &r);                                                         \
        return (int)r.i;                                                                           \
    }
STUB1(sb_result)
STUB0(sb_thread_try)
STUB1(sb_ioctl)
STUB1(sb_threads)
STUB0(sb_release)
STUB1(sb_map)
STUB0(sb_openmem)
STUB0(sb2_ok)

/* ---- helpers ------------------------------------------------------------------------ */

static const char *const probe_names[SBP_N] = {"open /proc/<host>/mem for writing",
                                               "write the host's memory through /proc/<host>/mem",
                                               "ptrace the host",
                                               "process_vm_writev into the host",
                                               "process_vm_readv from the host",
                                               "kill(host, 0)",
                                               "pidfd_open(host)",
                                               "F_SETOWN to the host",
                                               "prlimit of the host",
                                               "setpriority of the host",
                                               "fork",
                                               "open the host's oom_score_adj for writing",
                                               "open /dev/tty"};

static void plan(const char *p) {
    char err[256];
    if (qtn_plan_apply(p, err, sizeof err))
        fail_msg("plan '%s': %s", p, err);
}

static qtn_domain_info info(int d) {
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(d, &di), 0);
    return di;
}

/* The one report of a call the domain's filter denied. */
static void expect_seccomp(const char *what, const char *syscall_name) {
    qtn_report r;
    if (qtn_report_next(&r, 10000) != 1)
        fail_msg("%s: no report", what);
    char line[4096];
    qtn_report_format(&r, line, sizeof line);
    if (r.kind != QTN_FAULT_SECCOMP || !strstr(r.reason, syscall_name))
        fail_msg("%s: want a seccomp fault in %s, the report says %s", what, syscall_name, line);
    assert_int_equal(qtn_report_next(&r, 0), 0);
}

static bool host_has_cap(int cap) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d))
        return false;
    return (d[cap / 32].effective >> (cap % 32)) & 1;
}

static void *start_one(void *arg) { return arg; }

/* ---- tests ----------------------------------------------------------------------------- */

/* The init hook ran in the domain, before its first call, and reached
 * nothing outside it. */
static void check_init_probes(bool landlocked, const char *where) {
    plan(where);
    for (int p = SBP_MEM_OPEN; p <= SBP_TTY; p++) {
        if (p == SBP_OOM_HOST && !landlocked)
            continue; /* without Landlock a domain as root still owns root's files */
        int r = sb_result(p);
        assert_int_equal(last_err, 0);
        if (r == 0)
            fail_msg("the init hook could %s", probe_names[p]);
    }
    assert_int_equal(canary, 0x5afe5afe);
    assert_int_equal(sb_result(SBP_MEM_WRITE), -1); /* never opened, never written */
}

static void test_init_cannot_reach_the_host(void **state) {
    (void)state;
    check_init_probes(true, "sb=1");
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1); /* Landlock: the host unchanged */
    plan("sb=host");
}

/* A component that may open files at call time still cannot open the
 * host's memory. */
static void test_call_cannot_open_the_host_memory(void **state) {
    (void)state;
    plan("sb=2");
    int r = sb_openmem();
    assert_int_equal(last_err, 0);
    if (r == 0)
        fail_msg("a call wrote the host's memory through /proc/%d/mem", (int)host_pid);
    assert_int_equal(canary, 0x5afe5afe);
    plan("sb=host");
}

/* A thread an init hook started is under the call-time filter too. */
static void test_init_thread_is_filtered(void **state) {
    (void)state;
    plan("sb=3");
    int r = sb_thread_try();
    if (r != -1 || last_err != QTN_EFAULT)
        fail_msg("a thread the init hook started made a socket (%d, %s)", r,
                 qtn_strerror(last_err));
    expect_seccomp("the init hook's thread", "socket");
    plan("sb=host");
}

/* ioctls on fds 0-2: isatty and the window size only. */
static void test_std_ioctls(void **state) {
    (void)state;
    int fl[3];
    for (int fd = 0; fd < 3; fd++)
        fl[fd] = fcntl(fd, F_GETFL);
    plan("sb=4");
    assert_int_equal(sb_ioctl(K_ISATTY), 0); /* a pipe, and allowed */
    assert_int_equal(last_err, 0);
    int w = sb_ioctl(K_WINSZ);
    assert_int_equal(last_err, 0);
    assert_int_equal(w, -ENOTTY);
    static const struct {
        int kind;
        const char *what;
    } bad[] = {{K_FIONBIO_1, "FIONBIO on stdout"},
               {K_FIONBIO_0, "FIONBIO on stdin"},
               {K_TIOCSTI_2, "TIOCSTI on stderr"},
               {K_TIOCSTI_0, "TIOCSTI on stdin"},
               {K_TCSETS_0, "TCSETS on stdin"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = sb_ioctl(bad[i].kind);
        if (r != -1 || last_err != QTN_EFAULT)
            fail_msg("%s: allowed (%d, %s)", bad[i].what, r, qtn_strerror(last_err));
        expect_seccomp(bad[i].what, "ioctl");
        for (int fd = 0; fd < 3; fd++)
            if (fcntl(fd, F_GETFL) != fl[fd])
                fail_msg("%s changed the flags of the host's fd %d", bad[i].what, fd);
    }
    plan("sb=host");
}

/* No capabilities, no way back to them, the OOM killer's first choice, not
 * dumpable, stdin on /dev/null, no terminal. */
static void test_privileges_and_oom(void **state) {
    (void)state;
    plan("sb=5");
    assert_int_equal(sb_result(SBP_CAP_EFF), 0);
    if (host_has_cap(CAP_SETPCAP))
        assert_int_equal(sb_result(SBP_CAP_BND), 0);
    assert_int_equal(sb_result(SBP_NNP), 1);
    assert_int_equal(sb_result(SBP_DUMPABLE), 0);
    assert_int_equal(sb_result(SBP_OOM), 1000);
    assert_int_equal(sb_result(SBP_STDIN_NULL), 1);
    assert_int_equal(sb_result(SBP_OWN_SID), 1);
    assert_int_equal(last_err, 0);
    plan("sb=host");
}

/* The threads process pid has now. */
static int threads_in(int pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return atoi(strstr(buf, "\nThreads:") + 9);
}

/* QTN_DOMAIN_THREADS=40: hundreds of threads asked for, at most 40 at once;
 * the host still starts its own. */
static void test_thread_limit(void **state) {
    (void)state;
    plan("sb=6");
    int made = sb_threads(300);
    assert_int_equal(last_err, 0);
    int threads = threads_in(info(6).pid);
    print_message("the domain started %d of 300 threads; it has %d\n", made, threads);
    if (made >= 300 || threads > 40)
        fail_msg("the domain started %d threads and has %d, past its limit of 40", made, threads);
    assert_true(made > 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, start_one, NULL), 0);
    pthread_join(th, NULL);
    assert_int_equal(sb_release(), 0);
    assert_int_equal(sb_map(16), 0); /* and it still serves */
    /* threads kept from running after their clones were let through do
     * not slip past the limit */
    for (int round = 0; round < 3; round++) {
        while (threads_in(info(6).pid) > 12) /* the last round's are leaving */
            usleep(2000);
        made = sb_threads(-300);
        assert_int_equal(last_err, 0);
        usleep(50000); /* every clone let through has made its thread */
        threads = threads_in(info(6).pid);
        if (threads > 40)
            fail_msg("round %d: a domain starving its threads has %d, past its limit of 40",
                     round, threads);
        assert_int_equal(sb_release(), 0);
    }
    while (threads_in(info(6).pid) > 12) /* gone before the next test needs threads there */
        usleep(2000);
    plan("sb=host");
}

/* A component a plan moves into a domain already serving sets up at its
 * first call, under the call-time filter: its init hook's ptrace is a
 * fault there, and its open of the host's memory (openat is declared)
 * fails. */
static void test_late_init_is_filtered(void **state) {
    (void)state;
    plan("sb2=8");
    assert_int_equal(sb2_ok(), 1);
    plan("sb=8");
    int r = sb_result(SBP_MEM_OPEN);
    if (r != -1 || last_err != QTN_EFAULT)
        fail_msg("an init hook run at the first call reached ptrace (%d, %s)", r,
                 qtn_strerror(last_err));
    expect_seccomp("the init hook at the first call", "ptrace");
    assert_int_equal(canary, 0x5afe5afe);
    plan("sb=host sb2=host");
}

/* QTN_DOMAIN_MEMORY_MIB=1024: 4 GiB cannot be mapped, 64 MiB can. */
static void test_memory_limit(void **state) {
    (void)state;
    plan("sb=7");
    int r = sb_map(4096);
    assert_int_equal(last_err, 0);
    if (r != ENOMEM)
        fail_msg("the domain mapped 4 GiB (%s)", r ? strerror(r) : "no error");
    assert_int_equal(sb_map(64), 0);
    plan("sb=host");
}

/* Without Landlock: the host is not dumpable, and its memory is as out of
 * reach. */
static void test_without_landlock(void **state) {
    (void)state;
    check_init_probes(false, "sb=1");
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    int r = sb_openmem();
    assert_int_equal(last_err, 0);
    assert_int_not_equal(r, 0);
    assert_int_equal(canary, 0x5afe5afe);
    plan("sb=host");
}

static int setup(void **state) {
    (void)state;
    return qtn_init(NULL) == 0 ? 0 : -1;
}

static int setup_no_landlock(void **state) {
    (void)state;
    setenv("QTN_LANDLOCK", "0", 1);
    return qtn_init(NULL) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    qtn_shutdown();
    return 0;
}

int main(void) {
    host_pid = getpid();
    setenv("QTN_CHANNELS", "16", 1);
    setenv("QTN_DOMAIN_THREADS", "40", 1);
    setenv("QTN_DOMAIN_MEMORY_MIB", "1024", 1);
    setenv("QTN_QUIET_FAULTS", "1", 1);
    assert_int_equal(qtn_register(&sb_component), 0);
    assert_int_equal(qtn_register(&sb2_component), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_cannot_reach_the_host),
        cmocka_unit_test(test_call_cannot_open_the_host_memory),
        cmocka_unit_test(test_init_thread_is_filtered),
        cmocka_unit_test(test_std_ioctls),
        cmocka_unit_test(test_privileges_and_oom),
        cmocka_unit_test(test_thread_limit),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_late_init_is_filtered),
    };
    const struct CMUnitTest fallback[] = {
        cmocka_unit_test(test_without_landlock),
    };
    int r = cmocka_run_group_tests_name("sandbox", tests, setup, teardown);
    return r | cmocka_run_group_tests_name("sandbox without Landlock", fallback, setup_no_landlock,
                                           teardown);
}
