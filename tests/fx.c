/* fx.c - components that fault on demand ("fx"), and a bystander ("fy"),
 * with hand-written stubs. The real functions are exported so reports can
 * name them in backtraces. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fx.h"
#include "util.h"

int fx_last_err;
char fx_init_file[256];

static _Atomic int inside;
static _Atomic int init_runs;

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Runs in each new domain process that hosts fx, before its filter. */
static void fx_init(void) {
    atomic_fetch_add(&init_runs, 1);
    if (!fx_init_file[0])
        return;
    FILE *f = fopen(fx_init_file, "re");
    if (!f)
        return;
    int ms = 0, crash = 0;
    if (fscanf(f, "%d %d", &ms, &crash) < 1)
        ms = 0;
    fclose(f);
    if (ms > 0)
        nap_ms(ms);
    if (crash)
        abort(); /* this process can never serve */
}

static volatile int recurse_on = 1;

/* Recurses until the stack runs out (the flag hides that from the compiler). */
__attribute__((noinline)) int fx_recurse(volatile char *p, int depth) {
    volatile char buf[512];
    buf[0] = (char)depth;
    if (p)
        buf[1] = p[0];
    if (!recurse_on)
        return 0;
    return fx_recurse(buf, depth + 1) + buf[1]; /* not a tail call */
}

__attribute__((noinline)) int fx_crash_real(int32_t kind) {
    atomic_fetch_add(&inside, 1);
    switch (kind) {
    case FX_SEGV: {
        volatile uintptr_t addr = 16; /* hidden from the compiler's bounds checks */
        *(volatile int *)addr = 1;
        break;
    }
    case FX_BUS: {
        int fd = memfd_create("fx", 0);
        if (fd < 0 || ftruncate(fd, 0) < 0)
            return -3;
        volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            return -3;
        p[0] = 1; /* beyond the end of the file */
        break;
    }
    case FX_FPE: {
        unsigned a = 1, z = 0;
#if defined(__x86_64__)
        __asm__ volatile("xorl %%edx, %%edx\n\tdivl %1" : "+a"(a) : "r"(z) : "edx");
#else
        raise(SIGFPE);
#endif
        return (int)a;
    }
    case FX_ILL: __builtin_trap();
    case FX_ABRT: abort();
    case FX_STACK: return fx_recurse(NULL, 0);
    case FX_EXIT: exit(3);
    case FX__EXIT: _exit(4);
    case FX_HANG: /* until killed from outside */
        for (;;)
            pause();
    case FX_DEADLOCK: {
        static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&m);
        pthread_mutex_lock(&m); /* never returns */
        break;
    }
    case FX_OPEN: { /* the filter denies it */
        int fd = open("/etc/hostname", O_RDONLY);
        if (fd >= 0)
            close(fd);
        return -5;
    }
    default: break;
    }
    return -4;
}

int fx_wait_real(int32_t ms) {
    atomic_fetch_add(&inside, 1);
    nap_ms(ms);
    atomic_fetch_sub(&inside, 1);
    return ms;
}

int fx_inside_real(void) { return atomic_load(&inside); }
int fx_ok_real(int32_t x) { return x + 1; }
int fx_init_runs_real(void) { return atomic_load(&init_runs); }

struct fx_box {
    int32_t v;
};
void *fx_new_real(int32_t v) {
    struct fx_box *b = malloc(sizeof *b);
    if (b)
        b->v = v;
    return b;
}
int fx_get_real(void *h) { return ((struct fx_box *)h)->v; }

int fy_wait_real(int32_t ms) {
    nap_ms(ms);
    return ms;
}

/* ---- descriptors --------------------------------------------------------------- */

TU_THUNK(fx_crash) { r->i = fx_crash_real((int32_t)a[0].i); }
TU_THUNK(fx_wait) { r->i = fx_wait_real((int32_t)a[0].i); }
TU_THUNK(fx_inside) { (void)a; r->i = fx_inside_real(); }
TU_THUNK(fx_ok) { r->i = fx_ok_real((int32_t)a[0].i); }
TU_THUNK(fx_init_runs) { (void)a; r->i = fx_init_runs_real(); }
TU_THUNK(fx_new) { r->p = fx_new_real((int32_t)a[0].i); }
TU_THUNK(fx_get) { r->i = fx_get_real(a[0].p); }
TU_THUNK(fy_wait) { r->i = fy_wait_real((int32_t)a[0].i); }

static const qtn_param p_i32[] = {QTN_P_SCALAR(QTN_T_I32)};
static const qtn_param p_owned[] = {{.kind = QTN_K_HANDLE, .flags = QTN_F_OWNED}};

qtn_component fx_component, fy_component;


TU_ENTRY(fx_crash, fx_component, 1, p_i32, .deadline_ms = 400);
TU_ENTRY(fx_wait, fx_component, 1, p_i32, .deadline_ms = 30000);
TU_ENTRY(fx_inside, fx_component, 0, NULL, .deadline_ms = 0);
TU_ENTRY(fx_ok, fx_component, 1, p_i32, .deadline_ms = QTN_NO_DEADLINE);
TU_ENTRY(fx_init_runs, fx_component, 0, NULL, .deadline_ms = 0);
TU_ENTRY(fx_get, fx_component, 1, p_owned, .deadline_ms = 0);
static const qtn_entry fx_new_entry = {.name = "fx_new", .component = &fx_component,
                                       .thunk = fx_new_thunk, .ret = QTN_T_HANDLE,
                                       .nparams = 1, .params = p_i32, .fault = {.p = NULL}};
TU_ENTRY(fy_wait, fy_component, 1, p_i32, .deadline_ms = 30000);

static const qtn_entry *const fx_entries[] = {&fx_crash_entry, &fx_wait_entry,
                                              &fx_inside_entry, &fx_ok_entry,
                                              &fx_init_runs_entry, &fx_new_entry,
                                              &fx_get_entry};
static const qtn_entry *const fy_entries[] = {&fy_wait_entry};
static const char *const fx_syscalls[] = {"memfd_create", "ftruncate", NULL};

qtn_component fx_component = {.name = "fx", .nentries = 7, .entries = fx_entries,
                              .init = fx_init, .syscalls = fx_syscalls};
qtn_component fy_component = {.name = "fy", .nentries = 1, .entries = fy_entries};

/* ---- stubs ------------------------------------------------------------------------ */

#define STUB1(nm, real)                                                                    \
    int nm(int32_t x) {                                                                    \
        static qtn_edge e = QTN_EDGE_INIT(NULL, &nm##_entry);                              \
        if (QTN_DIRECT(&e))                                                                \
            return real(x);                                                                \
        qtn_val v[1] = {{.i = x}}, r;                                                      \
        fx_last_err = qtn_call(&e, v, &r);                                                 \
        return (int)r.i;                                                                   \
    }
#define STUB0(nm, real)                                                                    \
    int nm(void) {                                                                         \
        static qtn_edge e = QTN_EDGE_INIT(NULL, &nm##_entry);                              \
        if (QTN_DIRECT(&e))                                                                \
            return real();                                                                 \
        qtn_val r;                                                                         \
        fx_last_err = qtn_call(&e, NULL, &r);                                              \
        return (int)r.i;                                                                   \
    }

STUB1(fx_crash, fx_crash_real)
STUB1(fx_wait, fx_wait_real)
STUB0(fx_inside, fx_inside_real)
STUB1(fx_ok, fx_ok_real)
STUB0(fx_init_runs, fx_init_runs_real)
STUB1(fy_wait, fy_wait_real)

void *fx_new(int32_t v) {
    static qtn_edge e = QTN_EDGE_INIT(NULL, &fx_new_entry);
    if (QTN_DIRECT(&e))
        return fx_new_real(v);
    qtn_val a[1] = {{.i = v}}, r;
    fx_last_err = qtn_call(&e, a, &r);
    return r.p;
}

int fx_get(void *h) {
    static qtn_edge e = QTN_EDGE_INIT(NULL, &fx_get_entry);
    if (QTN_DIRECT(&e))
        return fx_get_real(h);
    qtn_val a[1] = {{.p = h}}, r;
    fx_last_err = qtn_call(&e, a, &r);
    return (int)r.i;
}
