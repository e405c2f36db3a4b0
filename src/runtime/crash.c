/* crash.c - when the host itself crashes: the handler that writes what a
 * supervisor needs to attribute the crash, and the records (hello, stats)
 * that tell it which program, build and plan it is looking at.
 *
 * The handler does the minimum, with async-signal-safe calls only: the
 * signal, the fault address and the raw frame addresses, with text prepared
 * in advance (the loaded modules with their load addresses and build ids,
 * the plan in force), written as one record to the report fd. Symbolising
 * and attributing the frames to components happen out of process
 * (`quarantine run`), as Breakpad and Mozilla's crash pipeline do. Then it
 * gives the signal back to whoever had it before (the default action: the
 * exit status still shows the signal). */
#include <errno.h>
#include <execinfo.h>
#include <limits.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <zlib.h>

#include "internal.h"
#include "statsfile.h"

#define CRASH_FRAMES 64
#define ALTSTACK_SIZE (64u << 10)

static const int crash_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP};
#define NSIGS (sizeof crash_sigs / sizeof crash_sigs[0])
static struct sigaction before[NSIGS]; /* the actions qtn_init replaced */
static _Atomic int crashing;           /* 0, or the tid handling a crash */
static _Atomic int crash_fd = -1;

/* Text made in advance, double-buffered: the handler reads the current one. */
static char modules[2][16384], plan_txt[2][1024];
static _Atomic int mod_cur, plan_cur;
static char build_id[2 * 20 + 1], exe[PATH_MAX];
static char proc_id[33]; /* this process's identity: pids come again, this does not */

/* ---- small formatting that is safe in a handler ------------------------------ */

typedef struct obuf {
    char *p;
    size_t len, n;
} obuf;

static void o_str(obuf *b, const char *s) {
    for (; *s && b->n + 1 < b->len; s++)
        b->p[b->n++] = *s;
}

static void o_u(obuf *b, unsigned long long v) {
    char t[24];
    int k = 0;
    do
        t[k++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (k && b->n + 1 < b->len)
        b->p[b->n++] = t[--k];
}

static void o_i(obuf *b, long long v) {
    if (v < 0) {
        o_str(b, "-");
        o_u(b, (unsigned long long)-(v + 1) + 1);
    } else {
        o_u(b, (unsigned long long)v);
    }
}

static void o_x(obuf *b, unsigned long long v) {
    char t[20];
    int k = 0;
    do
        t[k++] = "0123456789abcdef"[v & 15];
    while ((v >>= 4));
    o_str(b, "0x");
    while (k && b->n + 1 < b->len)
        b->p[b->n++] = t[--k];
}

/* A JSON string (quotes included); control characters become spaces. */
static void o_js(obuf *b, const char *s) {
    o_str(b, "\"");
    for (; *s && b->n + 2 < b->len; s++) {
        if (*s == '"' || *s == '\\')
            b->p[b->n++] = '\\';
        b->p[b->n++] = (unsigned char)*s < 0x20 ? ' ' : *s;
    }
    o_str(b, "\"");
}

/* ---- records ------------------------------------------------------------------- */

/* Writes one record, `<crc32 hex> <json>\n`, in one write: the fd is an
 * append-only spool file (or a pipe), so records never interleave, and a
 * torn or damaged record is told by its checksum. Safe in a handler. */
int qtn__record_write(int fd, const char *json, size_t n) {
    static const char hex[] = "0123456789abcdef";
    char head[9];
    uLong crc = crc32(0L, (const Bytef *)json, (uInt)n);
    for (int i = 0; i < 8; i++)
        head[i] = hex[(crc >> (28 - 4 * i)) & 15];
    head[8] = ' ';
    struct iovec iov[3] = {{head, 9}, {(void *)json, n}, {"\n", 1}};
    size_t want = 9 + n + 1;
    ssize_t w;
    do
        w = writev(fd, iov, 3);
    while (w < 0 && errno == EINTR);
    return w == (ssize_t)want ? 0 : -1;
}

/* Build id of a loaded object, as hex, from its notes in memory. */
static void note_build_id(struct dl_phdr_info *info, char *out, size_t len) {
    out[0] = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *nh;
            const unsigned char *desc =
                (const unsigned char *)name + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
                size_t k = 0;
                for (uint32_t j = 0; j < nh->n_descsz && k + 2 < len; j++) {
                    out[k++] = "0123456789abcdef"[desc[j] >> 4];
                    out[k++] = "0123456789abcdef"[desc[j] & 15];
                }
                out[k] = 0;
                return;
            }
            p = (const char *)desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
}

static int add_module(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    obuf *b = arg;
    const char *name = info->dlpi_name;
    char id[2 * 64 + 1];
    note_build_id(info, id, sizeof id);
    if (!name || !*name) { /* the program itself */
        name = exe;
        snprintf(build_id, sizeof build_id, "%.*s", (int)sizeof build_id - 1, id); /* cut */
    }
    if (name[0] != '/')
        return 0; /* the vDSO: nothing to read from disk */
    o_str(b, b->n > 1 ? ",{\"path\":" : "{\"path\":");
    o_js(b, name);
    o_str(b, ",\"base\":\"");
    o_x(b, info->dlpi_addr);
    o_str(b, "\",\"build_id\":");
    o_js(b, id);
    o_str(b, "}");
    return 0;
}

/* Re-reads the loaded modules (after a dlopen, they change). Not in a handler. */
void qtn__crash_modules(void) {
    static pthread_mutex_t mlock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mlock);
    int next = !atomic_load(&mod_cur);
    obuf b = {modules[next], sizeof modules[next] - 1, 0};
    o_str(&b, "[");
    dl_iterate_phdr(add_module, &b);
    o_str(&b, "]");
    b.p[b.n] = 0;
    atomic_store(&mod_cur, next);
    pthread_mutex_unlock(&mlock);
}

/* The plan in force changed: keep its text ready. */
void qtn__crash_plan(void) {
    static pthread_mutex_t plock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&plock);
    int next = !atomic_load(&plan_cur);
    qtn_plan_format(plan_txt[next], sizeof plan_txt[next]);
    atomic_store(&plan_cur, next);
    pthread_mutex_unlock(&plock);
}

const char *qtn__build_id(void) {
    return build_id;
}

const char *qtn__proc_id(void) {
    return proc_id;
}

/* The common head of every record this process writes. */
static void head(obuf *b, const char *type) {
    struct timespec w;
    clock_gettime(CLOCK_REALTIME, &w);
    o_str(b, "{\"type\":");
    o_js(b, type);
    o_str(b, ",\"pid\":");
    o_i(b, getpid());
    o_str(b, ",\"proc\":");
    o_js(b, proc_id);
    o_str(b, ",\"time_ns\":");
    o_i(b, (long long)w.tv_sec * 1000000000 + w.tv_nsec);
    o_str(b, ",\"build_id\":");
    o_js(b, build_id);
    o_str(b, ",\"plan\":");
    o_js(b, plan_txt[atomic_load(&plan_cur)]);
}

/* ---- the handler --------------------------------------------------------------- */

static void give_back(int sig) {
    for (size_t i = 0; i < NSIGS; i++)
        if (crash_sigs[i] == sig)
            sigaction(sig, &before[i], NULL);
    /* pending until the handler returns; a fault at the same instruction
     * would come back anyway, but a signal sent by kill() would not */
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
}

static void on_crash(int sig, siginfo_t *si, void *ucv) {
    int me = (int)syscall(SYS_gettid), holder = 0;
    if (!atomic_compare_exchange_strong(&crashing, &holder, me)) {
        /* another thread is writing the report: it will end the process;
         * if it does not within a second, end it from here. (This thread
         * crashing again while writing cannot land here: crash signals are
         * blocked in the handler, so the kernel ends the process.) */
        struct timespec t = {0, 10 * 1000 * 1000};
        for (int i = 0; i < 100 && holder != me; i++)
            nanosleep(&t, NULL);
        signal(sig, SIG_DFL);
        syscall(SYS_tgkill, getpid(), me, sig);
        return;
    }
    static char rec[32768];
    obuf b = {rec, sizeof rec, 0};
    head(&b, "host-crash");
    o_str(&b, ",\"tid\":");
    o_i(&b, me);
    o_str(&b, ",\"signal\":");
    o_i(&b, sig);
    o_str(&b, ",\"code\":");
    o_i(&b, si->si_code);
    o_str(&b, ",\"fault_addr\":\"");
    o_x(&b, si->si_code > 0 ? (uint64_t)(uintptr_t)si->si_addr : 0);
    o_str(&b, "\",\"exe\":");
    o_js(&b, exe);
    o_str(&b, ",\"frames\":[");
    void *fr[CRASH_FRAMES];
    int n = backtrace(fr, CRASH_FRAMES), from = -1;
    uint64_t pc = 0;
#if defined(__x86_64__)
    pc = (uint64_t)((ucontext_t *)ucv)->uc_mcontext.gregs[REG_RIP];
#else
    (void)ucv;
#endif
    for (int i = 0; i < n && i < 4 && from < 0; i++)
        if ((uint64_t)(uintptr_t)fr[i] == pc)
            from = i;
    int k = 0;
    if (from < 0 && pc) { /* no unwind info at the fault: keep the pc */
        o_str(&b, "\"");
        o_x(&b, pc);
        o_str(&b, "\"");
        k++;
        from = n > 2 ? 2 : n;
    }
    for (int i = from < 0 ? 0 : from; i < n; i++, k++) {
        o_str(&b, k ? ",\"" : "\"");
        o_x(&b, (uint64_t)(uintptr_t)fr[i]);
        o_str(&b, "\"");
    }
    o_str(&b, "],\"modules\":");
    o_str(&b, modules[atomic_load(&mod_cur)]);
    o_str(&b, "}");
    int fd = atomic_load(&crash_fd);
    if (fd >= 0) {
        qtn__record_write(fd, rec, b.n);
        fsync(fd);
    } else {
        static const char pre[] = "quarantine: host-crash ";
        (void)!write(2, pre, sizeof pre - 1);
        rec[b.n] = '\n';
        (void)!write(2, rec, b.n + 1);
    }
    give_back(sig);
}

/* Every thread that calls into components gets an alternate signal stack,
 * so that a stack overflow is reported too. */
void qtn__crash_thread(void **stack) {
    stack_t ss = {.ss_sp = malloc(ALTSTACK_SIZE), .ss_size = ALTSTACK_SIZE}, old;
    if (!ss.ss_sp)
        return;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE)) {
        free(ss.ss_sp); /* the program has its own */
        return;
    }
    if (sigaltstack(&ss, NULL) < 0) {
        free(ss.ss_sp);
        return;
    }
    *stack = ss.ss_sp;
}

void qtn__crash_thread_gone(void *stack) {
    if (!stack)
        return;
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    free(stack);
}

/* Installs the handler: at qtn_init, in the host. fd is the report fd (-1:
 * none; the record then goes to stderr). */
/* The program's path, build id and modules: before any record is written. */
void qtn__crash_prepare(void) {
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) { /* no entropy: time and pid */
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        uint64_t a = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec, b = (uint64_t)getpid();
        memcpy(r, &a, 8);
        memcpy(r + 8, &b, 8);
    }
    for (int i = 0; i < 16; i++) {
        proc_id[2 * i] = "0123456789abcdef"[r[i] >> 4];
        proc_id[2 * i + 1] = "0123456789abcdef"[r[i] & 15];
    }
    proc_id[32] = 0;
    qtn__crash_modules();
}

void qtn__crash_install(int fd) {
    atomic_store(&crash_fd, fd);
    void *fr[4];
    backtrace(fr, 4); /* load the unwinder now, not inside a handler */
    qtn__crash_plan();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_crash;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    for (size_t i = 0; i < NSIGS; i++) /* no crash signal while writing */
        sigaddset(&sa.sa_mask, crash_sigs[i]);
    for (size_t i = 0; i < NSIGS; i++) {
        struct sigaction cur;
        if (sigaction(crash_sigs[i], NULL, &cur) == 0 && cur.sa_sigaction == on_crash)
            continue; /* installed already: keep what was there before */
        sigaction(crash_sigs[i], &sa, &before[i]);
    }
}

void qtn__crash_uninstall(void) {
    for (size_t i = 0; i < NSIGS; i++) {
        struct sigaction cur;
        if (sigaction(crash_sigs[i], NULL, &cur) == 0 && cur.sa_sigaction == on_crash)
            sigaction(crash_sigs[i], &before[i], NULL);
    }
    atomic_store(&crash_fd, -1);
}

/* ---- hello and statistics records --------------------------------------------- */

/* `{"type":"hello",...}`: the program, its build, the plan and every
 * component with its entries (the supervisor maps code to components by
 * them). Written at qtn_init, before any crash can need it; the caller
 * holds qtn__g.lock. Not in a handler. */
int qtn__hello_write(int fd) {
    size_t cap = 65536;
    char *p = malloc(cap);
    if (!p)
        return -1;
    obuf b = {p, cap, 0};
    head(&b, "hello");
    o_str(&b, ",\"exe\":");
    o_js(&b, exe);
    o_str(&b, ",\"components\":[");
    for (int c = 1; c <= qtn__ncomps; c++) {
        const qtn_component *cp = qtn__comps[c];
        o_str(&b, c > 1 ? ",{\"name\":" : "{\"name\":");
        o_js(&b, cp->name);
        if (cp->code_id) {
            o_str(&b, ",\"code_id\":");
            o_js(&b, cp->code_id);
        }
        o_str(&b, ",\"entries\":[");
        for (uint32_t e = 0; e < cp->nentries; e++) {
            if (e)
                o_str(&b, ",");
            o_js(&b, cp->entries[e]->name);
        }
        o_str(&b, "]}");
    }
    /* the modules, for the frames of domain faults (domains are forks of
     * the zygote, made at qtn_init: they have these modules at these
     * addresses) */
    o_str(&b, "],\"modules\":");
    o_str(&b, modules[atomic_load(&mod_cur)]);
    o_str(&b, "}");
    int r = b.n + 1 >= cap ? -1 : qtn__record_write(fd, p, b.n);
    free(p);
    return r;
}

/* `{"type":"stats",...}`: made from the statistics area (statsfile.c), with
 * the CPU the program has used so far, its domains' included. */
int qtn__stats_write(int fd) {
    qtn__crash_plan();
    qtn__inner_fold_all(); /* what domains counted inside */
    void *area = qtn__sf_area();
    qtn__sf_head *h = area;
    struct timespec w, cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    clock_gettime(CLOCK_REALTIME, &w);
    int64_t now = (int64_t)w.tv_sec * 1000000000 + w.tv_nsec;
    atomic_store(&h->cpu_ns, (uint64_t)cpu.tv_sec * 1000000000u + (uint64_t)cpu.tv_nsec +
                                 qtn__domains_cpu_ns());
    atomic_store(&h->cpu_at_ns, now);
    size_t cap = 1 << 18;
    char *p = malloc(cap);
    if (!p)
        return -1;
    int n = qtn__sf_json(area, QTN__SF_SIZE, now, p, cap);
    int r = n < 0 ? -1 : qtn__record_write(fd, p, (size_t)n);
    free(p);
    return r;
}
