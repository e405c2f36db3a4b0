/*
 * quarantine.h - the public API of libquarantine.
 *
 * A program is split into *components* (named sets of C functions). Each
 * component runs either in the program's own address space (the *host*) or in
 * an isolated *domain process*, as the *plan* in force says; the plan can be
 * changed while the program runs. A call whose caller and callee sit in
 * different domains is a *crossing*: its arguments travel over shared memory
 * with *inout copy* semantics (data behind a pointer is copied to the callee
 * and copied back when the call returns, as declared per parameter).
 *
 * Two layers:
 *   - the run-time API (qtn_init, qtn_plan_*, qtn_stats_*): what a program
 *     calls;
 *   - the low-level stub API (qtn_entry, qtn_param, QTN_DIRECT, qtn_call):
 *     what stubs are written against. `quarantine gen` emits such stubs; they
 *     can also be written by hand (see docs/stub-api.md).
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * QTN_E* code on failure; qtn_strerror() names the code. Public names are
 * qtn_ / QTN_; qtn__ names are internal and may change.
 */
#ifndef QUARANTINE_H
#define QUARANTINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define QTN_EXTERN __attribute__((visibility("default")))
#else
#define QTN_EXTERN
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* X(name, value, message): one table yields the codes and qtn_strerror(). */
#define QTN_ERRNO_MAP(X)                                                      \
    X(INVAL, -1, "invalid argument")                                          \
    X(NOMEM, -2, "out of memory")                                             \
    X(STATE, -3, "not allowed in this state (qtn_init not called, or called twice)") \
    X(NOENT, -4, "no such component or entry")                                \
    X(RANGE, -5, "value out of range")                                        \
    X(SYS, -6, "system call failed (see errno)")                              \
    X(FAULT, -7, "the callee's domain faulted; the call returned its fault value") \
    X(CONTRACT, -8, "the callee's domain broke the call contract")            \
    X(TOOBIG, -9, "arguments do not fit in the shared memory of the channel") \
    X(DEAD, -10, "the domain is not running")                                 \
    X(PLAN, -11, "malformed plan")                                            \
    X(LIMIT, -12, "a fixed limit was reached")                                \
    X(STALE, -13, "a handle from an earlier incarnation of the callee's domain") \
    X(PARKED, -14, "the domain restarted too often and is parked")          \
    X(DEADLINE, -15, "the call passed its deadline; the domain was restarted")

typedef enum {
#define QTN__ERR_ENUM(name, val, msg) QTN_E##name = (val),
    QTN_ERRNO_MAP(QTN__ERR_ENUM)
#undef QTN__ERR_ENUM
    QTN_E_LAST_ = -16
} qtn_errno;

/* Message for a QTN_E* code (or "success" for 0); never NULL. */
QTN_EXTERN const char *qtn_strerror(int err);

/*
 * How this thread's last call into a component through the slow path
 * (qtn_call: a crossing, or a call the runtime refused) ended: 0, or the
 * QTN_E* code of a call that returned its entry's fault value because of a
 * fault, a stale handle, a parked domain, a deadline, ... This is how a
 * caller tells a fault from a real NULL or -1, void entries included. A
 * call made directly (the component in the caller's process) leaves it as
 * it was, as a successful libc call leaves errno: clear it before the call
 * when the answer matters.
 *     qtn_clear_error();
 *     if (codec_pack(...) == -1 && qtn_last_error()) ... a fault, not a -1
 */
QTN_EXTERN int qtn_last_error(void);
QTN_EXTERN void qtn_clear_error(void);

/* ------------------------------------------------------------------------ */
/* Annotations for `quarantine gen`                                          */
/* ------------------------------------------------------------------------ */

/*
 * Written on ordinary prototypes; they expand to clang `annotate` attributes
 * when `quarantine gen` parses (it defines QTN_GEN) and to nothing in a
 * normal build. Only entry functions need them:
 *
 *     QTN_COMPONENT(codec) QTN_FAULT(-1)
 *     int codec_pack(const uint8_t *src QTN_IN(n), size_t n,
 *                    uint8_t *dst QTN_OUT(cap) QTN_ACTUAL(*got), size_t cap,
 *                    size_t *got QTN_OUT(1));
 *
 * A count is a C expression over the other parameters (`n`, `rows * cols`,
 * `*len`); it counts elements of the pointed-to type, or bytes with the
 * _BYTES forms. See docs/gen.md.
 */
#ifdef QTN_GEN
#define QTN__ANN(s) __attribute__((annotate("qtn " s)))
#else
#define QTN__ANN(s)
#endif
/* on an entry function's prototype */
#define QTN_COMPONENT(name) QTN__ANN("component " #name)
#define QTN_FAULT(value) QTN__ANN("fault " #value) /* returned when the callee faults */
#define QTN_DEADLINE(ms) QTN__ANN("deadline " #ms)  /* 0: none */
/* on an entry: system calls the component needs beyond what the domain's
 * call-time filter allows (QTN_SYSCALLS(openat, read, lseek)); the
 * component's list is the union over its entries (qtn_component.syscalls) */
#define QTN_SYSCALLS(...) QTN__ANN("syscalls " #__VA_ARGS__)
/* on an entry: what a system call the filter denies does while the
 * component runs in a domain: QTN_DENIED(EPERM) fails it with EPERM (any
 * errno name); without it, the domain is killed (qtn_component.denied_errno) */
#define QTN_DENIED(errno_name) QTN__ANN("denied " #errno_name)
/* on a pointer parameter */
#define QTN_IN(count) QTN__ANN("in " #count)
#define QTN_OUT(count) QTN__ANN("out " #count) /* also on a function returning T *: count
                                                  (a number or *param) elements of
                                                  data it keeps, copied back with
                                                  their annotated pointer fields
                                                  (QTN_T_OUT) */
#define QTN_INOUT(count) QTN__ANN("inout " #count)
#define QTN_IN_BYTES(bytes) QTN__ANN("in_bytes " #bytes)
#define QTN_OUT_BYTES(bytes) QTN__ANN("out_bytes " #bytes)
#define QTN_INOUT_BYTES(bytes) QTN__ANN("inout_bytes " #bytes)
#define QTN_ACTUAL(src) QTN__ANN("actual " #src) /* `return` or `*param`: elements written */
#define QTN_STRING QTN__ANN("string")            /* NUL-terminated, copied in */
/* with QTN_IN(count) on a `T **` parameter: what each of its pointers points
 * to, copied in with the array: QTN_EACH(string) (NUL-terminated) or
 * QTN_EACH(k) (k elements of T, a number); NULL pointers cross as NULL */
#define QTN_EACH(what) QTN__ANN("each " #what)
/* on a union field of a struct: which member is active, by the value of an
 * integer field beside it: QTN_ACTIVE(kind, KIND_STR: s, KIND_BLOB: blob);
 * the pointers of the member the value names cross, those of the others do
 * not (a union holding pointers without it is refused) */
#define QTN_ACTIVE(...) QTN__ANN("active " #__VA_ARGS__)
#define QTN_NULLABLE QTN__ANN("nullable")
#define QTN_HANDLE QTN__ANN("handle")            /* opaque, passed through */
#define QTN_OWNED QTN__ANN("owned")              /* a handle the callee issued */
/* on a global variable's declaration: synced on each crossing into the
 * component (copied to its domain before the call, back after it) */
#define QTN_SYNC(component) QTN__ANN("sync " #component)
#define QTN_CALLBACK QTN__ANN("callback")        /* a function pointer: runs back in the
                                                    caller's domain; annotate its own
                                                    pointer parameters the same way */
/* on a `T **out` parameter, or on a function returning `T *`: the callee
 * allocates what comes back, and the caller frees it with free_fn, wherever
 * the component runs. QTN_ALLOCATED(count, free_fn[, alloc_fn]): count is
 * `*len` (a QTN_OUT(1) integer parameter), `return` (the integer the
 * function returns; parameters only) or `string` (NUL-terminated chars).
 * On a crossing the data is copied into memory from alloc_fn (malloc unless
 * named: it must be what free_fn frees in the program) and the callee's
 * copy is freed in its domain with free_fn. */
#define QTN_ALLOCATED(...) QTN__ANN("allocated " #__VA_ARGS__)

/* In a source file of a component that defines none of its entries (helpers
 * only), at file scope: says whose code the file is, so that a host crash in
 * it is blamed on that component. Files that define an entry need nothing:
 * a file belongs to the component whose entries it defines. (The mark is a
 * function the debug information names; crash attribution reads it.) */
#define QTN_SOURCE_OF(component)                                                             \
    __attribute__((used)) static void qtn__source_of__##component(void) {}

/* In a sidecar (a header of annotations for a header you cannot edit):
 * annotates field `field` of struct type `type`, e.g.
 *     QTN_FIELD(z_stream, next_in, QTN_IN(avail_in));
 * (a field inside a struct or union member by its place: `u.text`)
 * Place it before the functions that take the struct. */
#ifdef QTN_GEN
#define QTN__CAT2(a, b) a##b
#define QTN__CAT(a, b) QTN__CAT2(a, b)
#define QTN_FIELD(type, field, ...)                                                          \
    extern type QTN__CAT(qtn__field_, __LINE__) QTN__ANN("field " #field) __VA_ARGS__
#else
#define QTN_FIELD(type, field, ...) extern int qtn__field_annotation
#endif

/* ------------------------------------------------------------------------ */
/* Values and descriptors (the low-level stub API)                           */
/* ------------------------------------------------------------------------ */

/* One argument or return value, whatever its C type. */
typedef union qtn_val {
    int64_t i;
    uint64_t u;
    double d;
    float f;
    void *p;
} qtn_val;

/* Scalar types, for parameters passed by value and for return values. */
enum {
    QTN_T_VOID = 0,
    QTN_T_I8,
    QTN_T_U8,
    QTN_T_I16,
    QTN_T_U16,
    QTN_T_I32,
    QTN_T_U32,
    QTN_T_I64,
    QTN_T_U64,
    QTN_T_F32,
    QTN_T_F64,
    QTN_T_PTR,   /* a pointer passed by value and never dereferenced */
    QTN_T_HANDLE, /* return type only: a pointer the callee issued; on a crossing
                    it is tagged with the domain's incarnation (see QTN_F_OWNED) */
    QTN_T_STRING,  /* return type only: a NUL-terminated string the callee keeps (a
                    version, an error message, a name), never freed by the
                    caller; on a crossing it is copied back into memory of the
                    calling thread's, valid until that thread calls the same
                    entry again (NULL crosses as NULL) */
    QTN_T_ALLOCATED, /* return type only: a pointer to data the callee allocated and
                    the caller frees (qtn_entry.ret_param says how much and with
                    what); on a crossing it is copied into memory of the
                    caller's and the callee's copy is freed in its domain */
    QTN_T_OUT       /* return type only: a pointer to data the callee keeps, which
                    the caller reads (qtn_entry.ret_param: kind QTN_K_OUT, its
                    count, its struct with the pointer fields that come along);
                    on a crossing it is copied back into memory of the calling
                    thread's, valid until that thread calls the same entry
                    again (NULL crosses as NULL) */
};

/* What crosses for a parameter. */
enum {
    QTN_K_SCALAR = 1, /* by value (type in qtn_param.type) */
    QTN_K_HANDLE,     /* opaque pointer handed through untouched */
    QTN_K_IN,         /* buffer copied to the callee */
    QTN_K_OUT,        /* buffer copied back from the callee (starts zeroed) */
    QTN_K_INOUT,      /* buffer copied both ways */
    QTN_K_STRING,     /* NUL-terminated string copied to the callee */
    QTN_K_CALLBACK,   /* function pointer; runs back in the caller's domain */
    QTN_K_ALLOCATED   /* T **: the callee stores a pointer to data it allocated;
                         it comes back as a copy from alloc_fn, the callee's
                         copy freed with free_fn in the callee's domain; a
                         pointer the callee leaves alone stays as it was */
};

/* Where a buffer's element count comes from. */
enum {
    QTN_LEN_CONST = 0, /* qtn_param.len */
    QTN_LEN_PARAM,     /* value of scalar parameter number qtn_param.len */
    QTN_LEN_FIELD,     /* in a struct: value of the scalar field at offset
                          qtn_param.len, of type qtn_param.len_type */
    QTN_LEN_FN         /* qtn_param.len_fn(args) */
};

/* qtn_param.flags */
#define QTN_F_NULLABLE 0x01u /* documents that NULL is expected (NULL always
                                crosses as NULL) */
#define QTN_F_OWNED 0x02u    /* QTN_K_HANDLE issued by the callee's component:
                                a handle from an earlier incarnation of its
                                domain fails the call with QTN_ESTALE */
#define QTN_F_WHEN 0x04u     /* a struct field in a union member: it crosses
                                only while the integer field at when_offset
                                (of type when_type) holds when_value */

/* qtn_param.actual: no actual length, the return value, or an out-parameter
 * (zero-initialised descriptors mean "none"). */
#define QTN_ACTUAL_NONE 0
#define QTN_ACTUAL_RET (-1)
#define QTN_ACTUAL_PARAM(i) ((i) + 1)
#define QTN_ACTUAL_STRING (-2) /* QTN_K_ALLOCATED, QTN_T_ALLOCATED: up to and
                                  with the first NUL (elements of 1 byte) */

struct qtn_struct;
struct qtn_sig;

/*
 * One parameter of an entry or callback, or one pointer field of a struct.
 * A buffer holds count * elem_size bytes, count taken as len_kind says. If
 * `actual` is QTN_ACTUAL_RET or QTN_ACTUAL_PARAM(i) (parameter i points to
 * one 4- or 8-byte integer that goes back; its `type` says which, default
 * unsigned), only the first `actual` elements are copied back; the runtime
 * checks actual <= count, and a negative actual copies nothing. If `st` is
 * set, each element is that struct and its pointer fields cross too.
 * For QTN_K_ALLOCATED (and an entry's ret_param) `actual` says how many
 * elements of elem_size bytes the callee allocated (QTN_ACTUAL_RET,
 * QTN_ACTUAL_PARAM(i) or QTN_ACTUAL_STRING; a negative count: none), and
 * free_fn and alloc_fn what frees and allocates them.
 */
typedef struct qtn_param {
    uint8_t kind;     /* QTN_K_SCALAR ... QTN_K_CALLBACK */
    uint8_t type;     /* QTN_T_* of a scalar, or of a QTN_LEN_FIELD field */
    uint8_t flags;    /* QTN_F_* */
    uint8_t len_kind; /* QTN_LEN_* */
    uint32_t elem_size;
    uint64_t len;     /* constant count, parameter index or field offset */
    size_t (*len_fn)(const qtn_val *args);
    int32_t actual;   /* QTN_ACTUAL_NONE, QTN_ACTUAL_RET, QTN_ACTUAL_PARAM(i) */
    uint32_t offset;  /* for struct fields: offset of the pointer field */
    const struct qtn_struct *st; /* element struct with pointer fields */
    const struct qtn_sig *sig;   /* callback signature */
    void (*free_fn)(void *);     /* QTN_K_ALLOCATED: frees the callee's copy (in its
                                    domain), and what the caller frees with */
    void *(*alloc_fn)(size_t);   /* QTN_K_ALLOCATED: allocates the caller's copy
                                    (NULL: malloc); free_fn must free it */
    uint8_t when_type;           /* QTN_F_WHEN: the discriminant's QTN_T_* */
    uint32_t when_offset;        /* QTN_F_WHEN: its offset in the element */
    int64_t when_value;          /* QTN_F_WHEN: the value that makes it active */
} qtn_param;

/* Shorthands for descriptors in hand-written stubs. */
#define QTN_P_SCALAR(t) {.kind = QTN_K_SCALAR, .type = (t)}
#define QTN_P_HANDLE {.kind = QTN_K_HANDLE}
#define QTN_P_STRING {.kind = QTN_K_STRING}
/* buffer of kind k, elements of esz bytes, count from parameter lp */
#define QTN_P_BUF(k, esz, lp) {.kind = (k), .elem_size = (esz), .len_kind = QTN_LEN_PARAM, .len = (lp)}
/* buffer of kind k holding exactly n elements of esz bytes */
#define QTN_P_FIXED(k, esz, n) {.kind = (k), .elem_size = (esz), .len_kind = QTN_LEN_CONST, .len = (n)}
#define QTN_P_CALLBACK(sig_) {.kind = QTN_K_CALLBACK, .sig = (sig_)}

/* A struct whose pointer fields cross with it. */
typedef struct qtn_struct {
    const char *name;
    uint32_t size;
    uint32_t nfields;
    const qtn_param *fields; /* the pointer fields; others are copied as bytes */
} qtn_struct;

/* The signature of a callback parameter. */
typedef struct qtn_sig {
    uint8_t ret;     /* QTN_T_* */
    uint8_t nparams;
    const qtn_param *params;
} qtn_sig;

struct qtn_component;

/*
 * An entry function of a component. `thunk` calls the real function with
 * arguments unpacked from `args` and stores its result in `ret`; it runs in
 * whichever domain hosts the component.
 */
typedef struct qtn_entry {
    const char *name;
    struct qtn_component *component;
    void (*thunk)(qtn_val *args, qtn_val *ret);
    uint8_t ret;     /* QTN_T_* */
    uint8_t nparams; /* at most QTN_PARAMS_MAX */
    const qtn_param *params;
    qtn_val fault;   /* returned when the callee faults */
    uint32_t deadline_ms; /* 0: the default (qtn_config.deadline_ms);
                             QTN_NO_DEADLINE: none. Bounds the whole
                             crossing from its start: waiting for a
                             channel, the callbacks and calls up it makes */
    const qtn_param *ret_param; /* ret QTN_T_ALLOCATED: how much comes back and
                                   what frees it (kind QTN_K_ALLOCATED); ret
                                   QTN_T_OUT: how much, and its struct (kind
                                   QTN_K_OUT, len_kind QTN_LEN_CONST, or
                                   actual QTN_ACTUAL_PARAM(i)) */
} qtn_entry;

#define QTN_NO_DEADLINE UINT32_MAX

#define QTN_PARAMS_MAX 32

/*
 * A component: a name and its entries. Registered with qtn_register().
 * `init`, if set, runs in every new domain process that hosts the component
 * (a domain starts from the program's state at qtn_init, so this is where a
 * component rebuilds what it set up later): before the process serves,
 * under its set-up filter (files may be opened, threads started; nothing
 * outside the process reached); or, for a component a plan moves into a
 * domain already serving, at its first call there, under the call-time
 * filter (see "Domain processes" below). `syscalls` lists system calls the
 * component needs beyond the call-time filter's defaults, by name,
 * NULL-ended; they never allow what the set-up filter denies.
 */
/* A global variable of a component, synced on each crossing into it: the
 * caller's value is copied to the callee's domain before the call and back
 * after it (see docs/stub-api.md for what that means with threads). */
typedef struct qtn_global {
    void *addr;
    uint32_t size;
} qtn_global;

typedef struct qtn_component {
    const char *name;
    uint32_t nentries;
    const qtn_entry *const *entries;
    int id; /* set by qtn_register(); 0 before */
    void (*init)(void);
    const char *const *syscalls;
    uint32_t nglobals;
    const qtn_global *globals;
    /* The identity of the component's code: a hash of its source files,
     * which `quarantine gen --source` computes (printable, at most 64
     * characters). Evidence about a component (calls, faults) is kept per
     * code identity, so a new build that leaves the component's code alone
     * keeps its history. NULL: unknown (each build counts as new code). */
    const char *code_id;
    /* A system call the domain's call-time filter denies, made while one of
     * this component's entries runs there: 0 kills the domain (a fault, whose
     * report names the call); an errno value (EPERM, ENOSYS, EACCES, ...)
     * fails the system call with it instead, so a library that handles a
     * failed open() carries on; the first of each is said on stderr. */
    int denied_errno;
} qtn_component;

/*
 * A call site class: calls from component `caller` (NULL: the program outside
 * any component) to `entry`. Stubs keep one static qtn_edge per entry they
 * call; statistics are kept per edge.
 */
typedef struct qtn_edge {
    const qtn_entry *entry;
    const qtn_component *caller;
    uint32_t id; /* assigned on first use; 0 before */
} qtn_edge;

#define QTN_EDGE_INIT(caller_, entry_) {(entry_), (caller_), 0}

/* Internal, used by QTN_DIRECT: per-thread direct flags, and the row of
 * per-edge counters the thread's direct calls are counted in. */
#define QTN__EDGE_MAX 1024
/* libquarantine is linked into the program, so its thread-local data sits
 * at a link-time offset: the stub's check is one instruction */
#if defined(__GNUC__) && !defined(QTN_SHARED_LIB)
#define QTN__TLS __attribute__((tls_model("local-exec")))
#else
#define QTN__TLS
#endif
QTN_EXTERN extern __thread uint8_t qtn__tdirect[QTN__EDGE_MAX] QTN__TLS;
QTN_EXTERN extern __thread uint64_t *qtn__trow QTN__TLS;

/*
 * True when the call may be made directly (the callee is in the caller's
 * domain); counts the call. A stub writes:
 *     if (QTN_DIRECT(&edge)) return real_fn(a, b);
 *     ... pack args; qtn_call(&edge, args, &ret); ...
 */
#define QTN_DIRECT(e)                                                          \
    (__builtin_expect(qtn__tdirect[(e)->id], 1) ? (qtn__trow[(e)->id]++, 1) : 0)

/*
 * True when handle h carries no domain's tag. A handle a domain issued (a
 * QTN_OWNED one) reaches the program with the incarnation it came from in
 * its top 16 bits; the runtime strips them when it goes back there. If the
 * plan has moved that component into the program's own process since, the
 * handle names memory of a process this one never had: a stub's direct path
 * takes it only when this is true, and the slow path then fails the call
 * with QTN_ESTALE and the fault value instead of dereferencing it.
 *     if (QTN_UNTAGGED(h) && QTN_DIRECT(&edge)) return real_fn(h);
 */
#define QTN_UNTAGGED(h) __builtin_expect(((uintptr_t)(h) >> 48) == 0, 1)

/*
 * The slow path of a stub: makes the call described by `edge` with `args`
 * (one qtn_val per parameter) and stores the result in *ret. Crosses into
 * the callee's domain if it is elsewhere, or calls the entry's thunk if not.
 * Returns 0, or a negative QTN_E* code after storing the entry's fault value
 * in *ret (QTN_EFAULT, QTN_ECONTRACT, QTN_EDEAD, QTN_ETOOBIG, ...).
 */
QTN_EXTERN int qtn_call(qtn_edge *edge, qtn_val *args, qtn_val *ret);

/*
 * Registers a component so plans can name it. Call before qtn_init() (a
 * generated stub file does it from a constructor). Returns 0, QTN_EINVAL for
 * a malformed descriptor (the reason goes to stderr), QTN_ELIMIT past
 * QTN_COMPONENTS_MAX, or QTN_ESTATE after qtn_init().
 */
QTN_EXTERN int qtn_register(qtn_component *c);

#define QTN_COMPONENTS_MAX 256

/* ------------------------------------------------------------------------ */
/* Start-up and plans                                                        */
/* ------------------------------------------------------------------------ */

/* Zero fields take their defaults (or the environment variable named). */
typedef struct qtn_config {
    uint32_t channels;    /* dedicated channels per domain (256, $QTN_CHANNELS) */
    uint32_t window_kib;  /* shared window per channel (1024, $QTN_WINDOW_KIB) */
    uint32_t spin_ns;     /* how long a waiter spins before it sleeps
                             (20000, $QTN_SPIN_NS) */
    const char *plan;     /* plan applied by qtn_init ($QTN_PLAN) */
    int32_t deadline_ms;  /* default deadline of a call (10000,
                             $QTN_DEADLINE_MS); negative: none */
    /* Parking is a cost decision. Within any restart_window_ms (10000,
     * $QTN_RESTART_WINDOW_MS), the first restart_max restarts of a domain
     * (10, $QTN_RESTART_MAX) never park it; past them it is parked once its
     * restarts took more than $QTN_RESTART_SHARE percent (10; 0 to 100)
     * of the window's wall time (recovery: fault noticed -> new process
     * serving; a restart costs about a millisecond), or at once when it
     * cannot start at all. A parked domain's calls fail at once
     * (QTN_EPARKED, counted as parked_calls); it is started again after
     * 1 s, then 2 s, 4 s ... up to 60 s while it keeps being parked, or
     * when a plan names it.
     * QTN_RESTART_SHARE=0 parks past restart_max restarts, whatever they
     * cost. */
    uint32_t restart_max;
    uint32_t restart_window_ms;
    int32_t seccomp;      /* domain call-time filter: 0 default (on;
                             $QTN_SECCOMP=0 turns it off), 1 on, -1 off; the
                             set-up filter and the rest of the sandbox stay */
    /* The sandbox of a domain process (see "Domain processes" below). For
     * these, 0 in the environment and negative here mean none. */
    int32_t domain_threads;    /* threads a domain process may have at once, its
                                  serving threads (one per channel, shared ones
                                  too) and main thread among them (channels + 8
                                  + 64, $QTN_DOMAIN_THREADS) */
    int32_t domain_memory_mib; /* address space a domain process may map beyond
                                  what it starts with, in MiB (the machine's
                                  memory, at least 4096, $QTN_DOMAIN_MEMORY_MIB) */
    int32_t domain_oom_score_adj; /* its OOM score adjustment, 1..1000 (1000: the
                                  OOM killer's first choice,
                                  $QTN_DOMAIN_OOM_SCORE_ADJ); none: inherited */
    int32_t landlock;          /* Landlock for domains: 0 default (on where the
                                  kernel has it; $QTN_LANDLOCK=0 turns it off),
                                  1 on, -1 off. Without it the host is made
                                  non-dumpable instead (see below) */
    int32_t spares;            /* processes each domain keeps prepared, set up
                                  and waiting, for its next restarts: 1..6 (2,
                                  $QTN_SPARES). A restart onto one is a word
                                  flip; a burst of faults stays on them while
                                  they last. None: a restart that finds none
                                  ready forks and sets one up (about half a
                                  millisecond) */
} qtn_config;

/*
 * Domain processes. A domain is treated as hostile: whatever its code
 * does, it cannot reach the host. Before any component code runs in it
 * (init hooks included), a new domain process
 *   - has stdin on /dev/null and stdout and stderr on a pipe the host
 *     reads: each line reaches the program's stderr prefixed
 *     `quarantine[HOSTPID] domain N: `, control characters escaped as \xNN,
 *     cut past 1024 bytes, dropped and counted when the program's stderr is
 *     not read fast enough (the host never waits for it);
 *   - is in a session of its own, without a controlling terminal;
 *   - has an oom_score_adj of domain_oom_score_adj, no core file, an address
 *     space limit (domain_memory_mib over its start), no capabilities (nor
 *     a way back to them: no_new_privs, bounding set dropped where allowed);
 *   - is not dumpable, and with Landlock is in a Landlock domain of its own:
 *     it cannot trace or open the memory of the host, the zygote or another
 *     domain, whatever its uid, and cannot write files under /proc (its
 *     own included) or /sys. Without Landlock, qtn_init makes the host (and
 *     the zygote) non-dumpable, which denies the same to a process without
 *     capabilities; the host then writes no core file;
 *   - runs under a set-up filter that stays for its life: it denies ptrace,
 *     process_vm_readv/writev, kcmp, pidfd_open/getfd/send_signal,
 *     process_madvise, perf_event_open, io_uring, unshare, setns, fork and
 *     vfork, signals to any other process (kill, tgkill, tkill,
 *     rt_sigqueueinfo, F_SETOWN, FIOSETOWN), prlimit, scheduling and
 *     priority changes of other processes, and typing into a terminal
 *     (TIOCSTI, TIOCLINUX); it hands each clone to the zygote, which lets
 *     a thread through while the process has fewer than domain_threads
 *     (where the kernel can, Linux 5.5 and later; elsewhere threads are
 *     not counted).
 * Init hooks then run under that filter: they may open the program's
 * files, make sockets and start threads. Then the call-time filter
 * (qtn_config.seccomp) covers every thread of the process, those an init
 * hook started included, before the first call arrives: on fds 0-2 it
 * allows write and the ioctls TCGETS and TIOCGWINSZ only; it allows
 * sched_setaffinity of the calling thread only (a serving thread goes to
 * sleep on its caller's CPU with QTN_FOLLOW=1). A component's
 * `syscalls` widen the call-time filter, never the set-up filter.
 */

/*
 * Starts the runtime: reserves the shared address range and forks the zygote
 * that domain processes are forked from. Call from main() before the program
 * starts threads; `cfg` may be NULL for defaults. Returns 0 or QTN_ESTATE
 * (called twice), QTN_ESYS, QTN_EPLAN (the configured plan is malformed; the
 * reason goes to stderr).
 */
QTN_EXTERN int qtn_init(const qtn_config *cfg);

/* Stops all domain processes and the zygote. Calls must have finished. */
QTN_EXTERN void qtn_shutdown(void);

#define QTN_DOMAIN_HOST 0
#define QTN_DOMAINS_MAX 32 /* isolated domains are numbered 1..QTN_DOMAINS_MAX */

/*
 * Applies a plan given as text: assignments `component=domain` separated by
 * commas, spaces or newlines, where domain is `host` (or 0) or a number
 * 1..QTN_DOMAINS_MAX; several components may share a domain; components not
 * named keep their domain. `#` starts a comment to the end of the line.
 * Example: "storage=1 codec=1 render=host".
 * Safe while other threads are calling: calls in flight complete where they
 * are, calls that start after the return follow the new plan. On error
 * nothing changes and, if `err` is not NULL, a message naming the offending
 * assignment and its position is written there.
 * Returns 0, QTN_EPLAN, QTN_ENOENT (unknown component), QTN_ESTATE or QTN_ESYS.
 */
QTN_EXTERN int qtn_plan_apply(const char *plan, char *err, size_t errlen);

/* The domain hosting `component` now (0 = host), or a negative QTN_E* code. */
QTN_EXTERN int qtn_plan_domain(const char *component);

/* Writes the plan in force as text (the format qtn_plan_apply takes). Returns
 * the length it needs, excluding the NUL, like snprintf. */
QTN_EXTERN int qtn_plan_format(char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Domains and statistics                                                    */
/* ------------------------------------------------------------------------ */

typedef struct qtn_domain_info {
    int id;
    int pid;             /* 0 when not running */
    uint32_t incarnation;       /* 1 for the first process, +1 per restart */
    int parked;                 /* restarted too often: calls fail fast */
    int spare_ready;            /* a process for the next restart is ready */
    int spares_ready;           /* processes set up for its next restarts, */
    int spares_kept;            /* of the number it keeps (qtn_config.spares) */
    uint32_t channels_in_use;   /* channels held by live threads */
    uint32_t channels_served;   /* channels with a serving thread in the domain */
    uint32_t overflow_waits;    /* calls that waited for a shared channel */
    uint64_t restarts;
    uint64_t recovery_ns_total; /* fault noticed -> new process serving */
    uint64_t recovery_ns_max;
    uint64_t late_callbacks;    /* callback parameters its running process called
                                   after their call returned (a library keeping
                                   one for later) or from a thread of its own;
                                   they ran in the host all the same (the
                                   process's own count, as it says) */
} qtn_domain_info;

/* Fills *out for isolated domain `id`. Returns 0, QTN_ERANGE or QTN_ESTATE. */
QTN_EXTERN int qtn_domain_info_get(int id, qtn_domain_info *out);

typedef struct qtn_stats {
    uint64_t calls;          /* all calls, direct or crossing */
    uint64_t crossings;      /* calls that crossed into another domain */
    uint64_t cross_ns_total; /* time spent in crossings, caller's view */
    uint64_t cross_ns_max;
    uint64_t faults;         /* crossings that returned the fault value */
    uint64_t domain_faults;  /* faults of a domain blamed on this component
                                (component totals only) */
    uint64_t recovery_ns_total; /* recovery time after those faults */
    uint64_t recovery_ns_max;
    uint64_t stale_calls;    /* calls refused for a handle its domain's earlier
                                incarnation issued, or one moved since
                                (QTN_ESTALE; component totals only) */
    uint64_t calls_inner;    /* calls a domain made to these entries inside it,
                                as it said (not in `calls`, nor in the
                                supervisor's evidence): calls + calls_inner
                                is the same whatever the plan */
} qtn_stats;

/* Totals for calls into `component`'s entries. Returns 0 or QTN_ENOENT. */
QTN_EXTERN int qtn_stats_component(const char *component, qtn_stats *out);

/* Totals for calls from `caller` (NULL or "program": code outside any
 * component) into `callee`. Returns 0 or QTN_ENOENT. */
QTN_EXTERN int qtn_stats_edge(const char *caller, const char *callee, qtn_stats *out);

/* Calls fn once per edge that has been used, with caller name ("program" for
 * code outside components), callee component, entry name and totals.
 * Returns the number of edges visited. */
QTN_EXTERN int qtn_stats_foreach(void (*fn)(void *ctx, const char *caller,
                                            const char *callee, const char *entry,
                                            const qtn_stats *st),
                                 void *ctx);

/* Counts n units of work done (requests served, say): lets the policy weigh
 * what a fault costs in requests. Cheap (one atomic add); any thread. */
QTN_EXTERN void qtn_work_done(uint64_t n);

/* ------------------------------------------------------------------------ */
/* Fault reports                                                             */
/* ------------------------------------------------------------------------ */

typedef enum {
    QTN_FAULT_SIGNAL = 1, /* the domain died of a signal (SIGSEGV, abort, ...) */
    QTN_FAULT_EXIT,       /* the domain called exit() or _exit() */
    QTN_FAULT_KILLED,     /* SIGKILL from outside (the OOM killer, a user) */
    QTN_FAULT_DEADLINE,   /* a call passed its deadline; the host killed it */
    QTN_FAULT_CONTRACT,   /* it broke the call contract; the host killed it */
    QTN_FAULT_SECCOMP     /* it made a system call its filter denies */
} qtn_fault_kind;

#define QTN_REPORT_FRAMES 32

/* One fault of an isolated domain. Exactly one report is made per fault. */
typedef struct qtn_report {
    uint64_t seq;           /* 1, 2, ... in this process */
    int64_t time_ns;        /* when it was noticed (CLOCK_REALTIME) */
    int kind;               /* qtn_fault_kind */
    int domain;
    int pid;                /* the process that faulted */
    uint32_t incarnation;
    int signal;             /* signal that ended it, or 0 */
    int exit_code;          /* for QTN_FAULT_EXIT */
    int syscall;            /* for QTN_FAULT_SECCOMP */
    uint64_t fault_addr;    /* si_addr, when the domain told */
    char component[64];     /* blamed: the component whose entry was running
                               on the faulting thread (or in flight) */
    char entry[64];
    char reason[192];       /* one human-readable line */
    uint32_t calls_failed;  /* calls in flight that returned the fault value */
    uint64_t recovery_ns;   /* noticed -> new process serving; 0 if parked */
    int parked;             /* parked: calls fail at once until it is tried again */
    int warm;               /* the new process was a spare, set up before the
                               fault (qtn_config.spares); 0: made for it */
    uint32_t nframes;
    uint64_t frames[QTN_REPORT_FRAMES]; /* backtrace of the faulting thread */
    char symbols[QTN_REPORT_FRAMES][80];
} qtn_report;

/* Takes the oldest report off the queue: 1 if one was taken, 0 if none
 * came within timeout_ms (0: do not wait; negative: wait for ever). */
QTN_EXTERN int qtn_report_next(qtn_report *out, int timeout_ms);

/* Reports lost because the queue was full (it holds 256 unread reports). */
QTN_EXTERN uint64_t qtn_reports_dropped(void);

/* Formats a report as one JSON object on one line (no newline). Returns the
 * length it needs, like snprintf. */
QTN_EXTERN int qtn_report_format(const qtn_report *r, char *buf, size_t len);

/* Also writes every report to fd (a spool file or a pipe a supervisor
 * reads; $QTN_REPORT_FD sets it at qtn_init), with statistics snapshots
 * every $QTN_STATS_MS ms, one record per line: `<crc32 hex> <json>`, the
 * JSON being {"type":"fault",...} with the fields of qtn_report_format,
 * {"type":"stats",...}, and, from the crash handler, {"type":"host-crash",
 * ...} (docs/supervisor.md). Reports wait in the queue while the reader is
 * slow. -1 stops. */
QTN_EXTERN int qtn_report_to_fd(int fd);

#ifdef __cplusplus
}
#endif
#endif /* QUARANTINE_H */
