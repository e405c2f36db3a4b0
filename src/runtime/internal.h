/* internal.h - state shared by the runtime's modules (not installed). */
#ifndef QTN_INTERNAL_H
#define QTN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "quarantine.h"

#define QTN__HIDDEN __attribute__((visibility("hidden")))
#define qtn__likely(x) __builtin_expect(!!(x), 1)
#define qtn__unlikely(x) __builtin_expect(!!(x), 0)

static inline void qtn__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* Address layout: QTN__INCS slots of the reserved range per isolated
 * domain; incarnation n uses slot n % QTN__INCS, so the serving one, its
 * prepared spares (n + 1 ...) and those that died lately (their callers may
 * still be leaving) each have their own, and a restart never remaps memory
 * in use. At most QTN__SPARES_MAX spares: two slots stay for the serving
 * incarnation and the one that died before it. */
#define QTN__SLOT_SIZE (1ull << 30)
#define QTN__INCS 8
#define QTN__SPARES_MAX (QTN__INCS - 2)
#define QTN__CHAN_MAX 1024   /* dedicated + shared + late channels per domain */
#define QTN__SHARED_CHANS 8  /* channels lent call by call once dedicated run out */
#define QTN__LATE_CHANS 4    /* late channels (callbacks.c), after the shared ones */
#define QTN__CHAN_OFF 4096   /* channel control blocks start here */
#define QTN__DEPTH_MAX 64    /* nested crossings on one channel */
#define QTN__ALIGN 16
/* x rounded up to a multiple of QTN__ALIGN: where the next datum in a
 * window starts */
static inline uint64_t qtn__align_up(uint64_t x) {
    return (x + QTN__ALIGN - 1) & ~(uint64_t)(QTN__ALIGN - 1);
}

/* Messages on a channel. */
enum {
    QTN__MSG_CALL = 1, /* run entry hid with the frame at hframe */
    QTN__MSG_RET,      /* the innermost call or callback returned */
    QTN__MSG_CB,       /* domain -> host: run callback number did (callbacks.c) */
    QTN__MSG_UP        /* domain -> host: run entry did on behalf of component did2 */
};

/*
 * One channel's control block in shared memory. Each half is written by one
 * side only and sits on its own cache lines. A message is published by
 * storing the next sequence number; the receiver checks the number it
 * expects, so a domain that scribbles here is caught, not believed.
 */
typedef struct qtn__chan {
    /* written by the host (but dsleep) */
    _Alignas(64) _Atomic uint32_t hseq;
    _Atomic uint32_t dsleep; /* the domain sleeps on hseq: on the line the
                                host reads anyway when it posts */
    uint32_t htype, hdepth;
    uint64_t hid, hframe, hend;
    _Atomic int32_t hcpu;    /* the CPU the calling thread called from (-1: unknown) */
    /* written by the domain (but hsleep) */
    _Alignas(64) _Atomic uint32_t dseq;
    _Atomic uint32_t hsleep; /* the host sleeps on dseq */
    uint32_t dtype, ddepth;
    uint64_t did, did2, dframe, dend;
    qtn_val dret;            /* result of the call RET answers */
    uint64_t dwork;          /* stamps the callee spent in it (statistics only) */
} qtn__chan;

/* A frame in a channel window: result, then one value per parameter. */
typedef struct qtn__frame {
    qtn_val ret;
    uint64_t nargs;
    qtn_val args[];
} qtn__frame;

/* What a dying domain writes about itself (read by the host, untrusted). */
typedef struct qtn__crash {
    _Atomic uint32_t set;
    int32_t sig, code, chan, syscall;
    uint32_t nframes;
    uint64_t addr;
    uint64_t frames[QTN_REPORT_FRAMES];
} qtn__crash;

/* Header at the start of each domain's shared slot. */
typedef struct qtn__dhdr {
    uint32_t magic;
    uint32_t domain;
    uint32_t inc;
    _Atomic uint32_t ready;     /* set by the process once it can serve */
    _Atomic uint32_t ready_sleep;
    int32_t seccomp;            /* the filter to apply: 1 on, 2 on and saying what it denies */
    qtn__crash crash;
    _Atomic uint32_t bell;      /* bumped by the host when `want` changes */
    _Atomic uint32_t bell_sleep;
    _Atomic uint32_t plan_gen;  /* bumped when `plan` changes */
    _Atomic uint32_t served;    /* serving threads started (informational) */
    _Atomic uint64_t late_callbacks; /* callbacks called outside their call (the
                                        process's word: informational) */
    _Atomic uint64_t want[QTN__CHAN_MAX / 64]; /* channels needing a thread */
    _Atomic uint8_t plan[QTN_COMPONENTS_MAX + 1]; /* component id -> domain */
} qtn__dhdr;

#define QTN__DHDR_MAGIC 0x51544e44u

/* What a domain process publishes of the calls made inside it (inner.c):
 * per entry placed there, the calls to it (the process's word). In the
 * slot past the channels' control blocks. */
typedef struct qtn__inner {
    _Atomic uint64_t entry; /* the qtn_entry's address; 0: place free */
    _Atomic uint64_t calls;
} qtn__inner;
#define QTN__INNER_MAX 256
#define QTN__INNER_OFF (QTN__CHAN_OFF + QTN__CHAN_MAX * sizeof(qtn__chan))

/* Sizes fixed at qtn_init from the configuration. */
typedef struct qtn__layout {
    uint32_t channels;   /* dedicated */
    uint32_t nchan;      /* dedicated + shared */
    size_t win_size;     /* bytes per channel window */
    size_t win_off;      /* offset of window 0 in the slot */
    size_t bulk_off;     /* offset of the bulk area */
    uint64_t spin_ns;
} qtn__layout;

/* ---- process-wide state (rt.c) ---------------------------------------- */

typedef struct qtn__rt {
    bool inited;
    int self;            /* domain of this process: 0 in the host */
    uint32_t self_inc;   /* in a domain process: its incarnation */
    int dying_fd;        /* in a domain process: tells the host it is dying */
    uint64_t deadline_ns; /* default deadline of a call, 0: none */
    uint32_t restart_max, restart_window_ms;
    uint32_t restart_share; /* % of the restart window restarts may take before parking */
    uint32_t spares;        /* processes prepared ahead per domain (QTN_SPARES) */
    int seccomp;
    pid_t host_pid;
    char *range;         /* reserved address range, one slot per domain */
    qtn__layout lay;
    int spin_cap;        /* waiters allowed to spin at once */
    bool follow;         /* domain threads sleep on their caller's CPU (QTN_FOLLOW) */
    _Atomic int spinners;
    pthread_mutex_t lock; /* registry, plan, threads */
} qtn__rt;

extern qtn__rt qtn__g QTN__HIDDEN;

/* The shared slot of incarnation `inc` of domain d. */
static inline char *qtn__slot(int d, uint32_t inc) {
    return qtn__g.range + ((size_t)(d - 1) * QTN__INCS + inc % QTN__INCS) * QTN__SLOT_SIZE;
}
static inline qtn__chan *qtn__chan_in(char *base, uint32_t k) {
    return (qtn__chan *)(base + QTN__CHAN_OFF) + k;
}
static inline char *qtn__win_in(char *base, uint32_t k) {
    return base + qtn__g.lay.win_off + (size_t)k * qtn__g.lay.win_size;
}
/* In a domain process: its own slot. */
static inline char *qtn__my_slot(void) { return qtn__slot(qtn__g.self, qtn__g.self_inc); }
static inline qtn__dhdr *qtn__my_hdr(void) { return (qtn__dhdr *)qtn__my_slot(); }

uint64_t qtn__now_ns(void) QTN__HIDDEN;

/* ---- time stamps for the crossing path (clock.c) --------------------------- */

extern bool qtn__use_tsc QTN__HIDDEN;
/* A time stamp: the invariant TSC, else qtn__now_ns(). Stamps of the host
 * and its domains count on the same clock. */
static inline uint64_t qtn__stamp(void) {
#if defined(__x86_64__)
    if (qtn__likely(qtn__use_tsc)) {
        unsigned lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        return (uint64_t)hi << 32 | lo;
    }
#endif
    return qtn__now_ns();
}
/* At qtn_init, before any stamp is converted. */
void qtn__clock_init(void) QTN__HIDDEN;
/* Nanoseconds in a difference of stamps. */
uint64_t qtn__stamp_ns(uint64_t stamps) QTN__HIDDEN;
/* The qtn__now_ns() a stamp was taken at (within the rate's precision). */
uint64_t qtn__stamp_to_now(uint64_t stamp) QTN__HIDDEN;
void qtn__fatal(const char *fmt, ...) QTN__HIDDEN __attribute__((noreturn, format(printf, 1, 2)));
void qtn__warn(const char *fmt, ...) QTN__HIDDEN __attribute__((format(printf, 1, 2)));
/* $name as a number, or dflt when unset or not a number (said). */
uint32_t qtn__env_u32(const char *name, uint32_t dflt) QTN__HIDDEN;

/* ---- registry and plan (plan.c) -------------------------------------- */

extern qtn_component *qtn__comps[QTN_COMPONENTS_MAX + 1] QTN__HIDDEN;
extern int qtn__ncomps QTN__HIDDEN;
extern _Atomic uint8_t qtn__plan[QTN_COMPONENTS_MAX + 1] QTN__HIDDEN; /* host's view */

/* The domain hosting component id `c` as this process sees it. */
int qtn__where(int c) QTN__HIDDEN;
/* True if `e` is a registered entry (pointer identity). */
bool qtn__entry_known(const qtn_entry *e) QTN__HIDDEN;
bool qtn__comp_known(const qtn_component *c) QTN__HIDDEN;
int qtn__plan_apply_locked(const uint8_t *want, char *err, size_t errlen) QTN__HIDDEN;

/* ---- threads and edges (thread.c) ------------------------------------ */

/* The qtn_edge standing for each edge id (one id per caller and entry). */
extern qtn_edge *qtn__edge_rep[QTN__EDGE_MAX] QTN__HIDDEN;
extern _Atomic uint32_t qtn__nedges QTN__HIDDEN;
/* The statistics area (statsfile.h): anonymous memory, or the supervisor's
 * file once qtn_init adopted it. */
extern void *qtn__sf QTN__HIDDEN;
void *qtn__sf_area(void) QTN__HIDDEN;
/* Counts from now on into the file behind fd (QTN_STATS_FD), with what was
 * counted so far. Returns 0, QTN_EINVAL (not a statistics file) or QTN_ESYS. */
int qtn__sf_adopt(int fd) QTN__HIDDEN;
/* In a new domain process: counts from now on in an area of its own, empty
 * (the one it was forked with may be the supervisor's file). */
void qtn__sf_private(void) QTN__HIDDEN;
void qtn__sf_started(void) QTN__HIDDEN;             /* qtn_init: pid, time, build */
void qtn__sf_component(int id, const char *name) QTN__HIDDEN;
void qtn__sf_plan(int c, int d) QTN__HIDDEN;

/* A host frame: what the caller must remember about one crossing. */
typedef struct qtn__hframe {
    const qtn_entry *entry;
    const qtn_val *args; /* caller's arguments (callback pointers live here) */
} qtn__hframe;

struct qtn__dom;

/* The host's frames on one channel (nested crossings share it). */
typedef struct qtn__hstack {
    uint32_t inc;    /* incarnation whose channel it describes */
    uint32_t depth;  /* frames in use */
    uint64_t top;    /* first free window offset */
    qtn__hframe fr[QTN__DEPTH_MAX];
} qtn__hstack;

/* The channel, incarnation and frames the innermost crossing of a thread
 * into one domain uses: a crossing made while one is in progress (from a
 * callback) nests on the same channel instead of taking another, so a
 * thread never waits for a channel while it holds one of that domain. */
typedef struct qtn__bind {
    qtn__hstack *st; /* NULL: no crossing into the domain in progress */
    int32_t k;
    uint32_t inc;
} qtn__bind;

/* Per-thread state, registered on the thread's first slow-path call. */
typedef struct qtn__thread {
    struct qtn__thread *next, *prev;
    uint8_t *tdirect;
    uint64_t **trowp;  /* its qtn__trow */
    uint64_t *row;     /* where its direct calls are counted */
    int32_t rowi;      /* the row's index in the area, -1: a row of its own */
    /* host: the dedicated channel held per domain, -1 none */
    int32_t chan[QTN_DOMAINS_MAX + 1];
    uint32_t chan_inc[QTN_DOMAINS_MAX + 1]; /* incarnation it belongs to */
    qtn__hstack *hst[QTN_DOMAINS_MAX + 1];
    qtn__bind bind[QTN_DOMAINS_MAX + 1];
    /* domain process: the channel this thread serves, -1 none */
    int serving;
    uint32_t seen;     /* last sequence number received */
    uint32_t sent;     /* last sequence number sent */
    uint64_t top;      /* first free window offset */
    uint32_t plan_gen; /* plan generation its direct flags follow */
    uint32_t dn;       /* frames on dst */
    void *altstack;    /* host: the crash handler's stack, if made here */
    struct qtn__rstr *rstr; /* host: the strings entries returned to it (call.c) */
    struct {
        const qtn_entry *entry;
        const qtn_val *args; /* in the window: its callbacks' closures */
        uint32_t depth;
    } dst[QTN__DEPTH_MAX];
} qtn__thread;

qtn__thread *qtn__self_thread(void) QTN__HIDDEN;
/* A thread's copies of the strings entries returned to it (call.c). */
void qtn__strings_free(qtn__thread *t) QTN__HIDDEN;
/* The calling thread's, or NULL when it has none yet (never allocates: for a
 * signal handler). */
qtn__thread *qtn__thread_if_any(void) QTN__HIDDEN;
void qtn__threads_forget(void) QTN__HIDDEN;
/* Registers an edge (id assignment); lock held. */
int qtn__edge_register_locked(qtn_edge *e) QTN__HIDDEN;
/* Recomputes every registered thread's direct flags (lock held). */
void qtn__threads_replan_locked(void) QTN__HIDDEN;
void qtn__thread_replan_self(qtn__thread *t) QTN__HIDDEN;
/* The registered edge for calls from `caller` into `en`, or NULL (lock held). */
qtn_edge *qtn__edge_find_locked(const qtn_component *caller, const qtn_entry *en) QTN__HIDDEN;
void qtn__count_slow(uint32_t id) QTN__HIDDEN;
void qtn__record_crossing(uint32_t id, uint64_t ns, bool fault, uint64_t bytes,
                          uint64_t overhead_ns) QTN__HIDDEN;
/* A call into component c failed because its domain is parked. */
void qtn__count_parked(int c) QTN__HIDDEN;
/* Domain d is parked (1) or not (0), for statistics records. */
void qtn__sf_parked(int d, int parked) QTN__HIDDEN;

/* ---- domains (zygote.c, domain.c, monitor.c, channel.c, bulk.c; domain.h) */

/* One incarnation (process) of a domain, with its slot and channels. */
typedef struct qtn__inc {
    uint32_t inc;         /* its number; 0: slot unused */
    int d;
    char *base;           /* its slot */
    _Atomic int active;   /* host threads working in this incarnation */
    _Atomic uint32_t failed; /* calls that returned the fault value because it died */
    pid_t pid;
    int pidfd;            /* closed by the monitor only */
    int dyingfd;          /* eventfd the process writes when it is dying */
    bool dead;
    _Atomic bool doomed;  /* the host killed it: new calls wait for the next one */
    bool prepared;        /* a spare waiting for the word to serve */
    _Atomic bool reporting; /* dead, its report still counting its failed calls */
    uint8_t used[QTN__CHAN_MAX];   /* channel held by a thread or a call */
    uint8_t served[QTN__CHAN_MAX]; /* channel has a serving thread */
    uint32_t seq[QTN__CHAN_MAX];   /* last sequence number sent per channel */
    uint32_t dseq[QTN__CHAN_MAX];  /* last sequence number received per channel */
    const qtn_entry *running[QTN__CHAN_MAX]; /* outermost entry in flight */
    uint8_t setup[QTN_COMPONENTS_MAX + 1]; /* the plan its process set itself up for */
    uint32_t in_use, nserved;
    /* inner.c: what the host folded of its table of inner calls (of
     * incarnation inner_inc: the state is another's when that differs) */
    uint32_t inner_inc;
    const qtn_entry *inner_ent[QTN__INNER_MAX];
    uint64_t inner_seen[QTN__INNER_MAX];
    /* bulk area: sorted free list of [off, off+len) */
    struct qtn__span { size_t off, len; } *free_spans;
    size_t nfree, free_cap;
} qtn__inc;

typedef struct qtn__dom {
    int id;
    _Atomic int state;       /* QTN__DS_* */
    _Atomic uint32_t live;   /* number of the incarnation serving, 0 if none */
    _Atomic uint32_t live_sleep; /* callers wait on `live` during a restart */
    pthread_mutex_t lock;    /* channels, bulk area, incarnations */
    pthread_mutex_t start;   /* starting an incarnation; the plan in its header */
    pthread_cond_t shared_cv;
    qtn__inc incs[QTN__INCS]; /* incarnation n in incs[n % QTN__INCS] */
    uint32_t inc;            /* the newest incarnation's number */
    uint32_t overflow_waits;
    bool prep_failed;        /* the last spare died unused: make none ahead */
    /* host kill: why, set before the signal (monitor reads it) */
    _Atomic int kill_kind;
    char kill_reason[160];
    const qtn_entry *kill_entry;
    /* what restarts cost lately (monitor.c): restarts and recovery time per
     * slice of the restart window, the slice's number beside them */
    struct qtn__rslice {
        uint64_t n, cost_ns, slice;
    } rcost[32];
    uint64_t restarts, recovery_total, recovery_max;
    /* parked: when the monitor tries it again, and the wait after that */
    uint64_t retry_at, backoff_ns, up_since;
    _Atomic uint64_t restarted_at; /* when its last restart served (monitor.c) */
    /* the domain's restart thread (monitor.c): deaths to handle, in order */
    pthread_mutex_t rs_lock;
    pthread_cond_t rs_cv;
    pthread_t rs_thread;
    bool rs_running, rs_stop, rs_retry;
    struct qtn__death *rs_q[QTN__INCS];
    uint32_t rs_head, rs_n;
    uint32_t rs_cold; /* of them, those the monitor did not restart at once */
} qtn__dom;

enum { QTN__DS_OFF = 0, QTN__DS_UP, QTN__DS_RESTARTING, QTN__DS_PARKED };

extern qtn__dom qtn__doms[QTN_DOMAINS_MAX + 1] QTN__HIDDEN;
/* The slot's bookkeeping of incarnation `inc` of dm (whichever incarnation
 * holds it now: compare ->inc). */
static inline qtn__inc *qtn__inc_of(qtn__dom *dm, uint32_t inc) {
    return &dm->incs[inc % QTN__INCS];
}

int qtn__zygote_start(void) QTN__HIDDEN;
void qtn__zygote_stop(void) QTN__HIDDEN;
/* Starts domain d (off or parked) for `plan`, the plan about to be in force
 * (its components set up before the filter); lock held. */
int qtn__dom_start_locked(int d, const uint8_t *plan) QTN__HIDDEN;
/* CPU time of the live domain processes, in ns (from /proc). */
uint64_t qtn__domains_cpu_ns(void) QTN__HIDDEN;
int qtn__monitor_start(void) QTN__HIDDEN;
/* Kills incarnation `inc` of domain d for `kind` (QTN_FAULT_DEADLINE or
 * QTN_FAULT_CONTRACT); its calls fail and the monitor restarts it. */
void qtn__dom_kill(int d, uint32_t inc, int kind, const qtn_entry *en, const char *why) QTN__HIDDEN;
/* Binds the calling thread to the serving incarnation of d: returns it with
 * its `active` count raised (drop it with qtn__inc_leave), or NULL with
 * *err set (QTN_EDEAD, QTN_EPARKED) when none serves. Waits while d
 * restarts, at most 10 s and not past `until` (qtn__now_ns(); 0: none). */
qtn__inc *qtn__inc_enter(int d, uint64_t until, int *err) QTN__HIDDEN;
void qtn__inc_leave(qtn__inc *I) QTN__HIDDEN;
/* Takes a channel of I for the calling thread; returns its index or a
 * negative QTN_E* (QTN_EFAULT: I died; QTN_ELIMIT: every channel stayed
 * busy until `until`, 0: no limit). *shared is set when the channel is lent
 * for one call. A channel is handed out only while I serves (checked under
 * the domain's lock, which the monitor holds to wake the callers of a dead
 * incarnation), so no caller waits on a channel nobody will wake. */
int qtn__chan_take(qtn__thread *t, qtn__inc *I, uint64_t until, bool *shared) QTN__HIDDEN;
void qtn__chan_give_shared(qtn__inc *I, int k) QTN__HIDDEN;
void qtn__chan_release_all(qtn__thread *t) QTN__HIDDEN;
void *qtn__bulk_alloc(qtn__inc *I, size_t len) QTN__HIDDEN;
void qtn__bulk_free(qtn__inc *I, void *p, size_t len) QTN__HIDDEN;
/* A new domain process, its slot mapped: sets up (handlers, init hooks,
 * filter), waits for the host's word, then serves. */
void qtn__domain_child(int d) QTN__HIDDEN __attribute__((noreturn));

/* ---- domain process (guard.c) ---------------------------------------- */

/* Crash handlers and the system call filter of a domain process. */
void qtn__guard_thread(void) QTN__HIDDEN;  /* per thread: alternate stack */
void qtn__guard_install(void) QTN__HIDDEN; /* fatal-signal handlers */
int qtn__guard_seccomp(void) QTN__HIDDEN; /* applies the filter */
const char *qtn__syscall_name(int nr) QTN__HIDDEN;
/* In a domain: runs c's init hook once, before its first call here. */
void qtn__comp_ready(const qtn_component *c) QTN__HIDDEN;

/* ---- calls made inside domains (inner.c) --------------------------------- */

/* In a domain process: publishes the calls made here to entries placed
 * here; false when there are none to publish (yet). qtn__inner_on: the
 * last one had some (until then a call made here rings the bell). */
bool qtn__inner_publish(void) QTN__HIDDEN;
extern _Atomic bool qtn__inner_on QTN__HIDDEN;
/* Host: adds what incarnation I's table gained to the inner calls (I kept
 * mapped by the caller), or those of every serving incarnation; the inner
 * calls of edge id. */
void qtn__inner_fold(qtn__inc *I) QTN__HIDDEN;
void qtn__inner_fold_all(void) QTN__HIDDEN;
uint64_t qtn__inner_calls(uint32_t id) QTN__HIDDEN;
/* call.c: the host's edge for calls into en on behalf of `caller` (NULL:
 * the program), registered if new; past QTN__EDGE_MAX edges, `spare` filled
 * in (the overflow bucket). */
qtn_edge *qtn__host_edge(const qtn_component *caller, const qtn_entry *en,
                         qtn_edge *spare) QTN__HIDDEN;
/* thread.c: the calls counted on edge id, live threads included (lock held). */
uint64_t qtn__edge_calls_locked(uint32_t id) QTN__HIDDEN;

/* ---- callbacks a domain keeps (callbacks.c) ------------------------------ */

/* The number callback function fn of signature sig crosses to incarnation
 * inc of domain d as, noted as passed there with the nh handles hs of the
 * same call (the first one passed to d starts the server of its late
 * channel); 0 when the book is full, or memory or a thread ran out. */
uint32_t qtn__cb_grant(const qtn_sig *sig, void *fn, int d, uint32_t inc, const uint64_t *hs,
                       unsigned nh) QTN__HIDDEN;
/* The callback numbered id, if it was passed to incarnation inc of d. */
bool qtn__cb_find(uint64_t id, int d, uint32_t inc, const qtn_sig **sig, void **fn) QTN__HIDDEN;
/* Whether handle v was passed there with it. */
bool qtn__cb_handle_ok(uint64_t id, int d, uint32_t inc, uint64_t v) QTN__HIDDEN;
/* In a domain: the number of the callback closure `code` stands for, 0 if
 * none (for tests that speak the protocol by hand). */
uint32_t qtn__closure_number(const void *code) QTN__HIDDEN;
/* qtn_shutdown: no domain was passed any (the numbers stay). */
void qtn__cb_forget(void) QTN__HIDDEN;
/* call.c: serves a CB or UP request that arrived on channel ch (window win)
 * of incarnation I, st the host's frames there; NULL when answered, or how
 * the request breaks the contract. */
const char *qtn__serve_request(qtn__thread *t, qtn__inc *I, qtn__hstack *st, qtn__chan *ch,
                               char *win, uint32_t type) QTN__HIDDEN;

/* ---- reports (report.c) ------------------------------------------------ */

void qtn__report_push(const qtn_report *r) QTN__HIDDEN;
void qtn__report_symbolize(qtn_report *r) QTN__HIDDEN;
int qtn__report_start(void) QTN__HIDDEN;
/* crash.c: the host's crash handler and the records a supervisor reads */
int qtn__record_write(int fd, const char *json, size_t n) QTN__HIDDEN;
void qtn__crash_prepare(void) QTN__HIDDEN;
void qtn__crash_install(int fd) QTN__HIDDEN;
void qtn__crash_uninstall(void) QTN__HIDDEN;
void qtn__crash_modules(void) QTN__HIDDEN;
void qtn__crash_plan(void) QTN__HIDDEN;
void qtn__crash_thread(void **stack) QTN__HIDDEN;
void qtn__crash_thread_gone(void *stack) QTN__HIDDEN;
const char *qtn__build_id(void) QTN__HIDDEN;
/* This process's identity (32 hex digits, minted at qtn_init). */
const char *qtn__proc_id(void) QTN__HIDDEN;
int qtn__hello_write(int fd) QTN__HIDDEN;
int qtn__stats_write(int fd) QTN__HIDDEN;
void qtn__report_stop(void) QTN__HIDDEN;
/* The report fd, or -1. */
int qtn__report_fd(void) QTN__HIDDEN;

/* ---- the control channel (control.c) --------------------------------- */

/* Starts reading $QTN_CONTROL_FD, if set. Returns 0 or QTN_ESYS. */
int qtn__control_start(void) QTN__HIDDEN;
/* Answers plan seq on the report fd: applied (ok) or why not. Number 0
 * tells the plan qtn_init started with. */
void qtn__control_ack(long long seq, int ok, const char *error) QTN__HIDDEN;
void qtn__control_stop(void) QTN__HIDDEN;
/* A call into component c refused for a stale handle (statistics; thread.c). */
void qtn__count_stale(int c) QTN__HIDDEN;
/* Blames a domain fault on component c (statistics; thread.c). */
void qtn__blame(const qtn_component *c, uint64_t recovery_ns) QTN__HIDDEN;
/* call.c: handles host components issued to domain d, forgotten when the
 * incarnation they went to ends. */
void qtn__handles_forget(int d) QTN__HIDDEN;

/* ---- waiting (wait.c) ------------------------------------------------ */

/* Publishes a message: stores seq into *word and wakes the peer if it
 * announced sleep in *peer_sleep. */
void qtn__post(_Atomic uint32_t *word, uint32_t seq, _Atomic uint32_t *peer_sleep) QTN__HIDDEN;
/* A domain's serving thread that sleeps on the CPU its caller called from
 * (wait.c): the caller's wake then runs it there, where the caller is about
 * to sleep, instead of waking another core. */
typedef struct qtn__follow {
    _Atomic int32_t *cpu; /* the caller's CPU (the channel's hcpu) */
    int pinned;           /* the CPU this thread is pinned to, -1: none */
    uint64_t last_ns;     /* how long the last wait for a call took */
} qtn__follow;
/* Waits for a call shorter than this: the caller calls in a tight loop, and
 * both sides are better off spinning on cores of their own than taking turns
 * on one (the caller's may be crowded); longer ones, as between the requests
 * of a server's connection: sleep on the caller's CPU. */
#define QTN__FOLLOW_MIN_NS 50000u

/* Waits while *word == cur, spinning first, then sleeping. Returns 0 when
 * it became `want`; 1 if it moved otherwise and *live (when not NULL) is no
 * longer `inc` (the monitor flips the words of a dead incarnation); 2 when
 * qtn__now_ns() reached `until` (0: never; looked at only before sleeping,
 * so a quick answer reads no clock); -1 if it took another value (a peer
 * breaking protocol). */
int qtn__await(_Atomic uint32_t *word, uint32_t cur, uint32_t want, _Atomic uint32_t *my_sleep,
               _Atomic uint32_t *live, uint32_t inc, uint64_t until,
               qtn__follow *follow) QTN__HIDDEN;
void qtn__wake_all(_Atomic uint32_t *word) QTN__HIDDEN;

#endif
