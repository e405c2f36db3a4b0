/* call.c - calls and crossings.
 *
 * A crossing is a conversation on one channel: the host sends CALL; the
 * domain answers RET, or asks the host to run a callback (CB) or an entry of
 * a component outside the domain (UP) first, each answered by RET; either
 * side may start a nested CALL/CB/UP while it serves one. Frames stack up in
 * the channel's window. The host reads the domain's half of the channel
 * once per message and checks everything in it. */
#include <ffi.h>
#include <sched.h>
#include <limits.h>
#include <signal.h>
#include <malloc.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "marshal.h"

/* ---- libffi glue ------------------------------------------------------------ */

static ffi_type *ffi_of(uint8_t t) {
    switch (t) {
    case QTN_T_VOID: return &ffi_type_void;
    case QTN_T_I8: return &ffi_type_sint8;
    case QTN_T_U8: return &ffi_type_uint8;
    case QTN_T_I16: return &ffi_type_sint16;
    case QTN_T_U16: return &ffi_type_uint16;
    case QTN_T_I32: return &ffi_type_sint32;
    case QTN_T_U32: return &ffi_type_uint32;
    case QTN_T_I64: return &ffi_type_sint64;
    case QTN_T_U64: return &ffi_type_uint64;
    case QTN_T_F32: return &ffi_type_float;
    case QTN_T_F64: return &ffi_type_double;
    default: return &ffi_type_pointer;
    }
}

static ffi_type *ffi_param(const qtn_param *p) {
    return p->kind == QTN_K_SCALAR ? ffi_of(p->type) : &ffi_type_pointer;
}

/* A prepared signature, and in a domain the closure standing for one
 * callback parameter of one entry. */
typedef struct sigent {
    struct sigent *next;
    const void *key;
    uint32_t idx;
    const qtn_sig *sig;
    ffi_cif cif;
    ffi_type *at[QTN_PARAMS_MAX];
    ffi_closure *closure;
    void *code;
} sigent;

static sigent *sigs;
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;

static sigent *sig_get(const void *key, uint32_t idx, const qtn_sig *sig) {
    pthread_mutex_lock(&sig_lock);
    sigent *s;
    for (s = sigs; s; s = s->next)
        if (s->key == key && s->idx == idx)
            goto out;
    s = calloc(1, sizeof *s);
    if (!s)
        goto out;
    s->key = key;
    s->idx = idx;
    s->sig = sig;
    for (unsigned i = 0; i < sig->nparams; i++)
        s->at[i] = ffi_param(&sig->params[i]);
    if (ffi_prep_cif(&s->cif, FFI_DEFAULT_ABI, sig->nparams, ffi_of(sig->ret), s->at) != FFI_OK) {
        free(s);
        s = NULL;
        goto out;
    }
    s->next = sigs;
    sigs = s;
out:
    pthread_mutex_unlock(&sig_lock);
    return s;
}

/* Reads a value of type t that libffi stored as a return value. */
static qtn_val from_ffi_ret(const void *rbuf, uint8_t t) {
    qtn_val v = {0};
    ffi_arg a;
    memcpy(&a, rbuf, sizeof a);
    switch (t) {
    case QTN_T_I8: v.i = (int8_t)a; break;
    case QTN_T_I16: v.i = (int16_t)a; break;
    case QTN_T_I32: v.i = (int32_t)a; break;
    case QTN_T_U8: v.u = (uint8_t)a; break;
    case QTN_T_U16: v.u = (uint16_t)a; break;
    case QTN_T_U32: v.u = (uint32_t)a; break;
    case QTN_T_F32: memcpy(&v.f, rbuf, sizeof v.f); break;
    case QTN_T_F64: memcpy(&v.d, rbuf, sizeof v.d); break;
    case QTN_T_VOID: break;
    default: memcpy(&v.u, rbuf, sizeof v.u); break;
    }
    return v;
}

static void to_ffi_ret(void *rbuf, qtn_val v, uint8_t t) {
    switch (t) {
    case QTN_T_VOID: break;
    case QTN_T_F32: memcpy(rbuf, &v.f, sizeof v.f); break;
    case QTN_T_F64: memcpy(rbuf, &v.d, sizeof v.d); break;
    default: {
        ffi_arg a = qtn__type_signed(t) ? (ffi_arg)(ffi_sarg)v.i : (ffi_arg)v.u;
        memcpy(rbuf, &a, sizeof a);
    }
    }
}

static qtn_val from_ffi_arg(const void *p, const qtn_param *pr) {
    qtn_val v = {0};
    if (pr->kind != QTN_K_SCALAR) {
        memcpy(&v.p, p, sizeof v.p);
        return v;
    }
    switch (pr->type) {
    case QTN_T_I8: v.i = *(const int8_t *)p; break;
    case QTN_T_U8: v.u = *(const uint8_t *)p; break;
    case QTN_T_I16: v.i = *(const int16_t *)p; break;
    case QTN_T_U16: v.u = *(const uint16_t *)p; break;
    case QTN_T_I32: v.i = *(const int32_t *)p; break;
    case QTN_T_U32: v.u = *(const uint32_t *)p; break;
    case QTN_T_F32: memcpy(&v.f, p, sizeof v.f); break;
    case QTN_T_F64: memcpy(&v.d, p, sizeof v.d); break;
    default: memcpy(&v.u, p, sizeof v.u); break;
    }
    return v;
}

/* ---- globals synced on a crossing ------------------------------------------------ */

/* Bytes the synced globals of c take after a frame's arguments. */
static size_t globals_size(const qtn_component *c) {
    size_t n = 0;
    for (uint32_t i = 0; c && i < c->nglobals; i++)
        n += (c->globals[i].size + 7) & ~(size_t)7;
    return n;
}

/* Copies the globals of c into `at` (to_frame) or from it. */
static void globals_copy(const qtn_component *c, char *at, bool to_frame) {
    for (uint32_t i = 0; c && i < c->nglobals; i++) {
        const qtn_global *g = &c->globals[i];
        if (to_frame)
            memcpy(at, g->addr, g->size);
        else
            memcpy(g->addr, at, g->size);
        at += (g->size + 7) & ~(size_t)7;
    }
}

/* ---- domain side -------------------------------------------------------------- */

static void dispatch(qtn__thread *t, qtn__chan *ch, char *win);

/* Sends a CB or UP request on channel ch (window win, free from *top on)
 * and waits for the host's answer. On a channel t serves, the host's calls
 * made meanwhile (from the callback) are served; on a late channel (t
 * NULL) none come. *sent and *seen are the channel's sequence numbers.
 * Returns 0 and the result, or QTN_ETOOBIG. */
static int request_on(qtn__thread *t, qtn__chan *ch, char *win, uint64_t *top, uint32_t *sent,
                      uint32_t *seen, uint32_t type, uint64_t id, uint64_t id2, uint32_t depth,
                      const qtn_param *params, unsigned n, const qtn_val *args, uint8_t rtype,
                      qtn_val *ret) {
    qtn__alloc a = {.base = win, .top = *top, .lim = qtn__g.lay.win_size};
    qtn__fixv fx;
    qtn__fixv_init(&fx);
    qtn__frame *fr = (qtn__frame *)qtn__alloc_take(&a, sizeof *fr + n * sizeof(qtn_val));
    int r = fr ? qtn__marshal(params, n, args, fr->args, &a, &fx) : QTN_ETOOBIG;
    if (r) {
        qtn__fixv_free(&fx);
        return r;
    }
    fr->nargs = n;
    ch->dtype = type;
    ch->did = id;
    ch->did2 = id2;
    ch->ddepth = depth;
    ch->dframe = (uint64_t)((char *)fr - win);
    ch->dend = a.top;
    uint64_t save = *top;
    *top = a.top;
    qtn__post(&ch->dseq, ++*sent, &ch->hsleep);
    for (;;) {
        if (qtn__await(&ch->hseq, *seen, *seen + 1, &ch->dsleep, NULL, 0, 0, NULL))
            qtn__fatal("channel %d: the host broke the sequence", t ? t->serving : -1);
        ++*seen;
        uint32_t ht = ch->htype;
        if (ht == QTN__MSG_RET)
            break;
        if (ht != QTN__MSG_CALL || !t)
            qtn__fatal("channel %d: unexpected message %u from the host", t ? t->serving : -1,
                       ht);
        dispatch(t, ch, win);
    }
    *top = save;
    qtn_val rv = fr->ret;
    r = qtn__unmarshal(params, rv, rtype, &fx);
    qtn__fixv_free(&fx);
    if (r)
        qtn__fatal("channel %d: the host answered out of contract", t ? t->serving : -1);
    *ret = rv;
    return 0;
}

/* A CB or UP request from the thread serving a channel. */
static int domain_request(qtn__thread *t, uint32_t type, uint64_t id, uint64_t id2,
                          uint32_t depth, const qtn_param *params, unsigned n, const qtn_val *args,
                          uint8_t rtype, qtn_val *ret) {
    qtn__chan *ch = qtn__chan_in(qtn__my_slot(), (uint32_t)t->serving);
    char *win = qtn__win_in(qtn__my_slot(), (uint32_t)t->serving);
    return request_on(t, ch, win, &t->top, &t->sent, &t->seen, type, id, id2, depth, params, n,
                      args, rtype, ret);
}

/* The late channels: callbacks from the domain's own threads, on the
 * first one free (callbacks.c serves each in the host), so that one may
 * wait, through the component, for another (nested QTN__LATE_CHANS deep:
 * past that, they wait their turn). */
static struct {
    pthread_mutex_t lock;
    uint32_t sent, seen;
} late[QTN__LATE_CHANS] = {[0 ... QTN__LATE_CHANS - 1] = {PTHREAD_MUTEX_INITIALIZER, 0, 0}};

static int late_request(uint64_t id, const qtn_sig *sig, const qtn_val *args, qtn_val *ret) {
    static __thread char *str; /* a string result: the thread's until its next one */
    static _Atomic uint32_t turn;
    uint32_t j = 0;
    while (j < QTN__LATE_CHANS && pthread_mutex_trylock(&late[j].lock))
        j++;
    if (j == QTN__LATE_CHANS) /* all busy: wait for one, taking turns */
        pthread_mutex_lock(&late[j = atomic_fetch_add(&turn, 1) % QTN__LATE_CHANS].lock);
    uint32_t L = qtn__g.lay.nchan + j;
    uint64_t top = 0;
    int r = request_on(NULL, qtn__chan_in(qtn__my_slot(), L), qtn__win_in(qtn__my_slot(), L),
                       &top, &late[j].sent, &late[j].seen, QTN__MSG_CB, id, 0, 0, sig->params,
                       sig->nparams, args, sig->ret, ret);
    if (!r && sig->ret == QTN_T_STRING && ret->p) {
        /* in the late window, which the next thread's request reuses */
        free(str);
        if (!(str = strdup(ret->p)))
            qtn__fatal("out of memory copying a callback's string");
        ret->p = str;
    }
    pthread_mutex_unlock(&late[j].lock);
    return r;
}

/* Whether a frame on t's stack passed closure `code` as a callback. */
static bool passed_here(const qtn__thread *t, const void *code) {
    for (uint32_t f = 0; f < t->dn; f++) {
        const qtn_entry *en = t->dst[f].entry;
        for (unsigned i = 0; i < en->nparams; i++)
            if (en->params[i].kind == QTN_K_CALLBACK && t->dst[f].args[i].p == code)
                return true;
    }
    return false;
}

/* A callback parameter called in the domain: the host runs the caller's
 * function (callbacks.c says where). */
static void closure_handler(ffi_cif *cif, void *rbuf, void **args, void *ud) {
    (void)cif;
    sigent *s = ud;
    qtn__thread *t = qtn__self_thread();
    bool serving = t && t->serving >= 0 && t->dn > 0;
    if (!serving || !passed_here(t, s->code)) /* kept, called later: counted */
        atomic_fetch_add_explicit(&qtn__my_hdr()->late_callbacks, 1, memory_order_relaxed);
    qtn_val v[QTN_PARAMS_MAX], rv;
    for (unsigned k = 0; k < s->sig->nparams; k++)
        v[k] = from_ffi_arg(args[k], &s->sig->params[k]);
    int r = serving ? domain_request(t, QTN__MSG_CB, s->idx, 0, t->dst[t->dn - 1].depth,
                                     s->sig->params, s->sig->nparams, v, s->sig->ret, &rv)
                    : late_request(s->idx, s->sig, v, &rv);
    if (r)
        qtn__fatal("callback number %u: %s", s->idx, qtn_strerror(r));
    to_ffi_ret(rbuf, rv, s->sig->ret);
}

static const char closure_key; /* closures in the signature list: (&closure_key, number) */

/* The closure standing for callback number id, of signature sig. */
static void *closure_for(uint32_t id, const qtn_sig *sig) {
    sigent *s = sig_get(&closure_key, id, sig);
    if (!s)
        qtn__fatal("cannot prepare callback number %u", id);
    pthread_mutex_lock(&sig_lock);
    if (!s->closure) {
        s->closure = ffi_closure_alloc(sizeof(ffi_closure), &s->code);
        if (!s->closure ||
            ffi_prep_closure_loc(s->closure, &s->cif, closure_handler, s, s->code) != FFI_OK)
            qtn__fatal("cannot make a closure for callback number %u", id);
    }
    pthread_mutex_unlock(&sig_lock);
    return s->code;
}

uint32_t qtn__closure_number(const void *code) {
    pthread_mutex_lock(&sig_lock);
    sigent *s;
    for (s = sigs; s && !(s->key == &closure_key && s->code == code); s = s->next)
        ;
    pthread_mutex_unlock(&sig_lock);
    return s ? s->idx : 0;
}

/* A string an entry returned, copied into the window at `at` (past what the
 * host put there): its offset and length (offset | len << 32), 0 for NULL,
 * or UINT64_MAX when it does not fit. */
static uint64_t string_back(const char *s, char *win, uint64_t at) {
    if (!s)
        return 0;
    size_t room = qtn__g.lay.win_size > at + 1 ? qtn__g.lay.win_size - at - 1 : 0;
    size_t n = strnlen(s, room < UINT32_MAX ? room : UINT32_MAX);
    if (n >= room || !at)
        return UINT64_MAX;
    memcpy(win + at, s, n);
    win[at + n] = 0;
    return at | (uint64_t)n << 32;
}

/* Runs one CALL from the host and answers RET. */
static void dispatch(qtn__thread *t, qtn__chan *ch, char *win) {
    const qtn_entry *en = (const qtn_entry *)(uintptr_t)ch->hid;
    qtn__frame *fr = (qtn__frame *)(win + ch->hframe);
    uint32_t depth = ch->hdepth;
    uint64_t save = t->top;
    t->top = ch->hend;
    uint32_t gen = atomic_load_explicit(&qtn__my_hdr()->plan_gen, memory_order_acquire);
    if (gen != t->plan_gen) {
        t->plan_gen = gen;
        qtn__thread_replan_self(t);
    }
    qtn__comp_ready(en->component);
    if (t->dn >= QTN__DEPTH_MAX)
        qtn__fatal("channel %d: calls nest deeper than %d", t->serving, QTN__DEPTH_MAX);
    t->dst[t->dn].entry = en;
    t->dst[t->dn].args = fr->args;
    t->dst[t->dn].depth = depth;
    t->dn++;
    for (unsigned i = 0; i < en->nparams; i++)
        if (en->params[i].kind == QTN_K_CALLBACK && fr->args[i].u)
            fr->args[i].p = closure_for((uint32_t)fr->args[i].u, en->params[i].sig);
    char *globals = (char *)(fr->args + en->nparams);
    globals_copy(en->component, globals, false); /* the caller's values */
    qtn_val rv = {0};
    uint64_t w0 = qtn__stamp();
    en->thunk(fr->args, &rv);
    uint64_t work = qtn__stamp() - w0; /* in stamps: the host converts */
    size_t at = qtn__align_up(t->top);
    qtn__allocated_back(en->params, en->nparams, fr->args, &rv, en->ret, en->ret_param, win,
                            &at, qtn__g.lay.win_size);
    if (en->ret == QTN_T_OUT)
        rv.u = qtn__out_back(en->ret_param, en->params, fr->args, rv.p, win, &at,
                             qtn__g.lay.win_size);
    if (en->ret == QTN_T_STRING)
        rv.u = string_back(rv.p, win, at);
    globals_copy(en->component, globals, true); /* and back */
    t->dn--;
    t->top = save;
    ch->dret = rv; /* beside the sequence number: one line goes back */
    ch->dwork = work;
    ch->dtype = QTN__MSG_RET;
    qtn__post(&ch->dseq, ++t->sent, &ch->hsleep);
}

static void *serve(void *arg) {
    uint32_t k = (uint32_t)(uintptr_t)arg;
    qtn__thread *t = qtn__self_thread();
    if (!t)
        qtn__fatal("out of memory starting channel %u", k);
    t->serving = (int)k;
    qtn__guard_thread();
    qtn__chan *ch = qtn__chan_in(qtn__my_slot(), k);
    char *win = qtn__win_in(qtn__my_slot(), k);
    qtn__follow follow = {&ch->hcpu, -1, 0}, *fp = qtn__g.follow ? &follow : NULL;
    for (;;) {
        uint64_t s0 = fp ? qtn__stamp() : 0;
        if (qtn__await(&ch->hseq, t->seen, t->seen + 1, &ch->dsleep, NULL, 0, 0, fp))
            qtn__fatal("channel %u: the host broke the sequence", k);
        if (fp)
            follow.last_ns = qtn__stamp_ns(qtn__stamp() - s0);
        t->seen++;
        if (ch->htype != QTN__MSG_CALL)
            qtn__fatal("channel %u: unexpected message %u from the host", k, ch->htype);
        dispatch(t, ch, win);
    }
    return NULL;
}

void qtn__domain_child(int d) {
    (void)d;
    qtn__sf_private();
    qtn__threads_forget();
    atomic_store(&qtn__g.spinners, 0);
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    qtn__guard_install();
    qtn__guard_thread();
    qtn__dhdr *h = qtn__my_hdr();
    /* components placed here set up now, before the first call: confined
     * already (zygote.c), under the set-up filter, before the call-time
     * filter, which then covers every thread their init hooks started */
    for (int c = 1; c <= qtn__ncomps; c++)
        if (atomic_load(&h->plan[c]) == qtn__g.self)
            qtn__comp_ready(qtn__comps[c]);
    /* glibc asks /sys for the CPU count when it first adds a malloc arena:
     * fix the arena limit now, while files can still be opened */
    mallopt(M_ARENA_MAX, (int)(8 * sysconf(_SC_NPROCESSORS_ONLN)));
    /* and it reads /proc/sys/vm/overcommit_memory the first time it would
     * give a thread arena's memory back: keep it (a domain is restartable) */
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
    if (h->seccomp > 0 && qtn__guard_seccomp())
        qtn__fatal("cannot apply the domain's system call filter");
    uint64_t spawned[QTN__CHAN_MAX / 64] = {0};
    uint32_t gen = atomic_load(&h->plan_gen);
    bool inner = false; /* calls made here to entries placed here: published */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* serving threads for the channels the host wants; the first ones were
     * wanted before this process was needed (a warm spare waits in them) */
    for (bool first = true;; first = false) {
        uint32_t b = atomic_load_explicit(&h->bell, memory_order_acquire);
        for (uint32_t w = 0; w < QTN__CHAN_MAX / 64; w++) {
            uint64_t bits = atomic_load(&h->want[w]) & ~spawned[w];
            while (bits) {
                uint32_t k = w * 64 + (uint32_t)__builtin_ctzll(bits);
                bits &= bits - 1;
                if (k >= qtn__g.lay.nchan)
                    qtn__fatal("the host asked for channel %u of %u", k, qtn__g.lay.nchan);
                pthread_t th;
                if (pthread_create(&th, &attr, serve, (void *)(uintptr_t)k))
                    qtn__fatal("cannot start a thread for channel %u", k);
                spawned[w] |= 1ull << (k % 64);
                atomic_fetch_add(&h->served, 1);
            }
        }
        if (first) {
            atomic_store(&h->ready, 1);
            qtn__wake_all(&h->ready);
        }
        uint32_t g = atomic_load(&h->plan_gen);
        if (g != gen) {
            gen = g;
            pthread_mutex_lock(&qtn__g.lock);
            qtn__threads_replan_locked();
            pthread_mutex_unlock(&qtn__g.lock);
        }
        /* every 100 ms once there are any (the first such call rings) */
        qtn__await(&h->bell, b, b + 1, &h->bell_sleep, NULL, 0,
                   inner ? qtn__now_ns() + 100000000ull : 0, NULL);
        inner = qtn__inner_publish();
    }
}

/* ---- host side ------------------------------------------------------------------- */

static int call_edge(qtn__thread *t, qtn_edge *e, qtn_val *args, qtn_val *ret);

/* The host's edge for calls a domain makes on behalf of `caller`; past
 * QTN__EDGE_MAX edges, `spare` (the caller's) filled in: such calls count
 * in the overflow bucket, and a domain naming ever new pairs allocates
 * nothing here. */
qtn_edge *qtn__host_edge(const qtn_component *caller, const qtn_entry *en, qtn_edge *spare) {
    pthread_mutex_lock(&qtn__g.lock);
    qtn_edge *e = qtn__edge_find_locked(caller, en);
    if (!e && atomic_load(&qtn__nedges) + 1 < QTN__EDGE_MAX && (e = calloc(1, sizeof *e))) {
        e->caller = caller;
        e->entry = en;
        if (qtn__edge_register_locked(e)) {
            free(e);
            e = NULL;
        }
    }
    pthread_mutex_unlock(&qtn__g.lock);
    if (!e) {
        *spare = (qtn_edge)QTN_EDGE_INIT(caller, en);
        e = spare;
    }
    return e;
}

/* ---- handles host components issued to domains --------------------------------- */

/* A handle that reaches the host from a domain must be one the host gave
 * that domain, or the host would read any address a domain names, or free
 * it. A component placed in the host issues a handle to domain d when one
 * of its entries, called by d, returns a QTN_T_HANDLE (or a handle field in
 * a struct going back), or when it passes one to an entry in d as an
 * argument (those the program passes outside any component count for
 * every component); d may then pass it to that component's entries
 * until the incarnation it was issued to ends (a restart forgets them all)
 * or, past HANDLES_MAX handles issued to d since, it expires. The host
 * cannot tell when a component frees the object behind one: a domain that
 * passes a handle after that makes the component use what it freed, as a
 * caller in the host would. */
#define HANDLES_MAX 16384u /* per domain; the oldest expire first */

typedef struct hent {
    uint64_t v; /* 0: empty slot */
    uint32_t c, inc;
} hent;

typedef struct htab {
    hent *e; /* open addressing by (v, c), linear probing */
    uint32_t cap, n;
    hent *ring; /* the same, in the order they were issued */
    uint32_t rcap, rn, head;
} htab;

static htab htabs[QTN_DOMAINS_MAX + 1];
static pthread_mutex_t hlocks[QTN_DOMAINS_MAX + 1] = {
    [0 ... QTN_DOMAINS_MAX] = PTHREAD_MUTEX_INITIALIZER}; /* one per table */

static uint32_t hslot(const htab *h, uint64_t v, uint32_t c) {
    uint64_t x = (v ^ (uint64_t)c << 52) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(x >> 32) & (h->cap - 1);
}

static hent *hfind(htab *h, uint64_t v, uint32_t c) {
    if (!h->cap)
        return NULL;
    for (uint32_t i = hslot(h, v, c);; i = (i + 1) & (h->cap - 1)) {
        hent *e = &h->e[i];
        if (!e->v)
            return NULL;
        if (e->v == v && e->c == c)
            return e;
    }
}

static void hinsert(htab *h, hent x) {
    uint32_t i = hslot(h, x.v, x.c);
    while (h->e[i].v)
        i = (i + 1) & (h->cap - 1);
    h->e[i] = x;
    h->n++;
}

/* Removes (v, c), shifting later entries of its run back into the hole. */
static void hdel(htab *h, uint64_t v, uint32_t c) {
    hent *e = hfind(h, v, c);
    if (!e)
        return;
    uint32_t m = h->cap - 1, i = (uint32_t)(e - h->e);
    for (uint32_t j = (i + 1) & m; h->e[j].v; j = (j + 1) & m) {
        uint32_t home = hslot(h, h->e[j].v, h->e[j].c);
        if (((j - home) & m) >= ((j - i) & m)) { /* the hole lies on its way home */
            h->e[i] = h->e[j];
            i = j;
        }
    }
    h->e[i].v = 0;
    h->n--;
}

/* Component c issued handle v to incarnation inc of domain d. */
static void handle_issue(int d, uint32_t inc, uint32_t c, uint64_t v) {
    htab *h = &htabs[d];
    pthread_mutex_lock(&hlocks[d]);
    hent *e = hfind(h, v, c);
    if (e) {
        e->inc = inc;
        goto out;
    }
    if ((h->n + 1) * 2 > h->cap) { /* keep it half empty */
        uint32_t ncap = h->cap ? h->cap * 2 : 64;
        hent *ne = calloc(ncap, sizeof *ne), *old = h->e;
        if (!ne)
            goto out; /* not issued: the domain's use of it will fail */
        uint32_t ocap = h->cap;
        h->e = ne;
        h->cap = ncap;
        h->n = 0;
        for (uint32_t i = 0; i < ocap; i++)
            if (old[i].v)
                hinsert(h, old[i]);
        free(old);
    }
    hent x = {v, c, inc};
    if (h->rn == HANDLES_MAX) { /* the oldest expires */
        hdel(h, h->ring[h->head].v, h->ring[h->head].c);
        h->ring[h->head] = x;
        h->head = (h->head + 1) % HANDLES_MAX;
    } else {
        if (h->rn == h->rcap) {
            uint32_t ncap = h->rcap ? h->rcap * 2 : 64;
            hent *nr = realloc(h->ring, ncap * sizeof *nr);
            if (!nr)
                goto out;
            h->ring = nr;
            h->rcap = ncap;
        }
        h->ring[h->rn++] = x;
    }
    hinsert(h, x);
out:
    pthread_mutex_unlock(&hlocks[d]);
}

void qtn__handles_forget(int d) {
    htab *h = &htabs[d];
    pthread_mutex_lock(&hlocks[d]);
    free(h->e);
    free(h->ring);
    memset(h, 0, sizeof *h);
    pthread_mutex_unlock(&hlocks[d]);
}

/* A request from incarnation inc of domain d to an entry of component c,
 * which runs in the host. */
typedef struct upctx {
    int d;
    uint32_t inc, c;
} upctx;

static bool up_handle_ok(void *ctx, uint64_t v) {
    const upctx *u = ctx;
    pthread_mutex_lock(&hlocks[u->d]);
    hent *e = hfind(&htabs[u->d], v, u->c);
    if (!e || e->inc != u->inc) /* one the program (no component) passed down */
        e = hfind(&htabs[u->d], v, 0);
    bool ok = e && e->inc == u->inc;
    pthread_mutex_unlock(&hlocks[u->d]);
    return ok;
}

static void up_issue(void *ctx, uint64_t v) {
    const upctx *u = ctx;
    handle_issue(u->d, u->inc, u->c, v);
}

/* A callback runs host code: a handle it gets must be one of those the
 * host passed in the calls in progress on the channel, or one passed with
 * the callback when it was passed to this incarnation (a kept handler's
 * context). */
typedef struct cbctx {
    const qtn__hstack *st;
    uint64_t id; /* the callback's number */
    int d;
    uint32_t inc;
} cbctx;

static bool cb_handle_ok(void *ctx, uint64_t v) {
    const cbctx *cx = ctx;
    const qtn__hstack *st = cx->st;
    for (uint32_t f = 0; f < st->depth; f++) {
        const qtn_entry *en = st->fr[f].entry;
        for (unsigned i = 0; i < en->nparams; i++) {
            if (en->params[i].kind != QTN_K_HANDLE)
                continue;
            uint64_t a = st->fr[f].args[i].u;
            if (a == v || ((en->params[i].flags & QTN_F_OWNED) &&
                           (a & ((1ull << 48) - 1)) == v)) /* as the domain got it */
                return true;
        }
    }
    return qtn__cb_handle_ok(cx->id, cx->d, cx->inc, v);
}

/* Serves a CB or UP request that arrived on channel k of incarnation I.
 * Everything the domain wrote is read once. Returns NULL when answered,
 * or how the request breaks the contract. */
const char *qtn__serve_request(qtn__thread *t, qtn__inc *I, qtn__hstack *st, qtn__chan *ch,
                               char *win, uint32_t type) {
    const char *bad = type == QTN__MSG_CB ? "the domain sent a malformed callback request"
                                          : "the domain sent a malformed call request";
    uint32_t depth = ch->ddepth;
    uint64_t id = ch->did, id2 = ch->did2, fo = ch->dframe, end = ch->dend;
    size_t wsz = qtn__g.lay.win_size;
    if (fo < st->top || end > wsz || fo > end || (fo & 7) || end - fo < sizeof(qtn__frame))
        return bad;
    const qtn_param *params;
    unsigned n;
    uint8_t rtype;
    void *fn = NULL;
    const qtn_entry *target = NULL;
    const qtn_component *caller = NULL;
    const qtn_sig *sig = NULL;
    qtn_val fault = {0};
    upctx up = {I->d, I->inc, 0};
    cbctx cx = {st, id, I->d, I->inc};
    qtn__hcheck hc = {cb_handle_ok, &cx};
    bool in_host = false;
    if (type == QTN__MSG_CB) {
        /* the innermost frame's depth (0 on the late channel), and a
         * number this domain was given */
        if (st->depth ? depth != st->depth - 1 : depth != 0)
            return bad;
        if (!qtn__cb_find(id, I->d, I->inc, &sig, &fn))
            return bad;
        params = sig->params;
        n = sig->nparams;
        rtype = sig->ret;
    } else {
        target = (const qtn_entry *)(uintptr_t)id;
        caller = (const qtn_component *)(uintptr_t)id2;
        pthread_mutex_lock(&qtn__g.lock);
        bool ok = qtn__entry_known(target) && (!caller || qtn__comp_known(caller));
        pthread_mutex_unlock(&qtn__g.lock);
        if (!ok)
            return bad;
        params = target->params;
        n = target->nparams;
        rtype = target->ret;
        fault = target->fault;
        /* into a component in the host: its handles only; into another
         * domain, handles are that domain's (tagged, see cross) */
        in_host = qtn__where(target->component->id) == QTN_DOMAIN_HOST;
        up.c = (uint32_t)target->component->id;
        hc = (qtn__hcheck){up_handle_ok, &up};
    }
    if (end - fo < sizeof(qtn__frame) + n * sizeof(qtn_val))
        return bad;
    qtn__frame *fr = (qtn__frame *)(win + fo);
    qtn_val args[QTN_PARAMS_MAX];
    memcpy(args, fr->args, n * sizeof *args);
    qtn__fixv fx;
    qtn__fixv_init(&fx);
    int r = rtype == QTN_T_ALLOCATED || rtype == QTN_T_OUT ? QTN_EINVAL /* not to a domain (yet) */
            : qtn__import_checked(params, n, args, win + fo, win + end, &fx,
                                  type == QTN__MSG_CB || in_host ? &hc : NULL);
    if (r == QTN_EINVAL) { /* a callback into the domain cannot cross here */
        qtn__import_drop(&fx);
        memcpy(&fr->ret, &fault, sizeof fault);
        return NULL;
    }
    if (r) {
        qtn__import_drop(&fx);
        return r == QTN_ESTALE ? "the domain passed the host a handle the host never gave it" : bad;
    }
    uint64_t save = st->top;
    st->top = qtn__align_up(end);
    qtn_val rv = {0};
    if (type == QTN__MSG_CB) {
        sigent *s = sig_get(sig, 0, sig);
        void *argp[QTN_PARAMS_MAX];
        for (unsigned i = 0; i < n; i++)
            argp[i] = &args[i];
        uint64_t rbuf[2] = {0, 0};
        if (s) {
            ffi_call(&s->cif, FFI_FN(fn), rbuf, argp);
            rv = from_ffi_ret(rbuf, rtype);
        }
    } else {
        qtn_edge spare, *e = qtn__host_edge(caller, target, &spare);
        call_edge(t, e, args, &rv);
        if (in_host && rtype == QTN_T_HANDLE && rv.p)
            handle_issue(up.d, up.inc, up.c, rv.u);
    }
    st->top = save;
    qtn__export_issuing(params, rv, rtype, &fx, in_host ? up_issue : NULL, &up);
    if (rtype == QTN_T_STRING && rv.p) {
        /* the host's string, into the window past the request (the window is
         * at the same address in the domain): the domain's caller reads it
         * there, until its next call on this channel */
        uint64_t at = qtn__align_up(end);
        uint64_t v = string_back(rv.p, win, at);
        rv.p = v && v != UINT64_MAX ? win + at : NULL;
        if (v == UINT64_MAX)
            memcpy(&rv, &fault, sizeof rv);
    }
    memcpy(&fr->ret, &rv, sizeof rv);
    return NULL;
}

static uint64_t deadline_of(const qtn_entry *en) {
    if (en->deadline_ms == QTN_NO_DEADLINE)
        return 0;
    if (en->deadline_ms)
        return (uint64_t)en->deadline_ms * 1000000u;
    return qtn__g.deadline_ns;
}

/* Sends the CALL prepared in ch and serves requests until the domain
 * answers RET. `until` (0: none) bounds the whole call, the callbacks and
 * calls up it makes included: past it the domain is killed. Returns 0,
 * QTN_EFAULT (the domain died), QTN_EDEADLINE or QTN_ECONTRACT (the domain
 * was killed for it). */
static int converse(qtn__thread *t, qtn__hstack *st, qtn__inc *I, uint32_t k, qtn__chan *ch,
                    char *win, const qtn_entry *en, uint64_t until) {
    qtn__dom *dm = &qtn__doms[I->d];
    qtn__post(&ch->hseq, ++I->seq[k], &ch->dsleep);
    for (;;) {
        uint32_t cur = I->dseq[k];
        int w = qtn__await(&ch->dseq, cur, cur + 1, &ch->hsleep, &dm->live, I->inc, until, NULL);
        if (w == 1)
            return QTN_EFAULT;
        if (w == 2)
            goto late;
        if (w < 0) {
            qtn__dom_kill(I->d, I->inc, QTN_FAULT_CONTRACT, en,
                          "the domain broke the channel's sequence numbers");
            return QTN_ECONTRACT;
        }
        I->dseq[k] = cur + 1;
        uint32_t type = ch->dtype;
        if (type == QTN__MSG_RET)
            return 0;
        if (type != QTN__MSG_CB && type != QTN__MSG_UP) {
            qtn__dom_kill(I->d, I->inc, QTN_FAULT_CONTRACT, en,
                          "the domain sent a message of unknown type");
            return QTN_ECONTRACT;
        }
        const char *bad = qtn__serve_request(t, I, st, ch, win, type);
        if (bad) {
            qtn__dom_kill(I->d, I->inc, QTN_FAULT_CONTRACT, en, bad);
            return QTN_ECONTRACT;
        }
        if (until && qtn__now_ns() >= until)
            goto late; /* the request took the rest of the call's time */
        ch->htype = QTN__MSG_RET;
        qtn__post(&ch->hseq, ++I->seq[k], &ch->dsleep);
    }
late:;
    char why[160];
    snprintf(why, sizeof why, "%s did not return within its deadline of %llu ms", en->name,
             (unsigned long long)(deadline_of(en) / 1000000));
    qtn__dom_kill(I->d, I->inc, QTN_FAULT_DEADLINE, en, why);
    return QTN_EDEADLINE;
}

/* Handles a domain issued carry its incarnation in their top bits, so one
 * from an earlier incarnation is caught instead of reaching the new one, and
 * one that reaches a component moved into the host since is caught there
 * (QTN_UNTAGGED): the tag is never 0. */
#define QTN__TAG_SHIFT 48
static uint64_t tag_of(uint32_t inc) { return (uint64_t)((inc - 1) % 0xffff + 1); }

static void *tag_handle(void *p, uint32_t inc) {
    uint64_t v = (uint64_t)(uintptr_t)p;
    if (!v || v >> QTN__TAG_SHIFT)
        return p; /* NULL, or not a user-space address: left alone */
    return (void *)(uintptr_t)(v | tag_of(inc) << QTN__TAG_SHIFT);
}

static int untag_handle(qtn_val *v, uint32_t inc) {
    if (!v->p)
        return 0;
    if (v->u >> QTN__TAG_SHIFT != tag_of(inc))
        return QTN_ESTALE;
    v->u &= (1ull << QTN__TAG_SHIFT) - 1;
    return 0;
}

/* The strings entries returned to a thread: one buffer per entry, reused by
 * the entry's next call from that thread. */
typedef struct qtn__rstr {
    struct qtn__rstr *next;
    const qtn_entry *en;
    char *buf;
    size_t cap;
} qtn__rstr;

/* The string the domain put at [at, at + n) of the window, copied once into
 * the thread's buffer for en; NULL when the domain's offset or length is
 * not one it could have written (past the host's frame, inside the window)
 * or memory ran out. */
/* What thread t keeps of en's last result (a string, or data it points
 * to), found or made; NULL when memory ran out. */
static qtn__rstr *kept_of(qtn__thread *t, const qtn_entry *en) {
    qtn__rstr *r = t->rstr;
    while (r && r->en != en)
        r = r->next;
    if (!r && (r = calloc(1, sizeof *r))) {
        r->en = en;
        r->next = t->rstr;
        t->rstr = r;
    }
    return r;
}

static char *string_copy(qtn__thread *t, const qtn_entry *en, const char *win, uint64_t v,
                         uint64_t host_end, bool *bad) {
    uint64_t at = v & 0xffffffffu, n = v >> 32;
    *bad = false;
    if (at < host_end || at >= qtn__g.lay.win_size || n >= qtn__g.lay.win_size - at) {
        *bad = true;
        return NULL;
    }
    qtn__rstr *r = kept_of(t, en);
    if (!r)
        return NULL;
    if (r->cap < n + 1) {
        char *b = realloc(r->buf, n + 1);
        if (!b)
            return NULL;
        r->buf = b;
        r->cap = n + 1;
    }
    memcpy(r->buf, win + at, n); /* read once; its own NUL, not the domain's */
    r->buf[n] = 0;
    return r->buf;
}

/* Data a QTN_T_OUT result pointed to, checked and copied (malloc): it
 * replaces what the thread kept from en's last call. Returns it, or NULL
 * (freed) when memory ran out. */
static char *data_keep(qtn__thread *t, const qtn_entry *en, char *copy) {
    qtn__rstr *r = kept_of(t, en);
    if (!r) {
        free(copy);
        return NULL;
    }
    free(r->buf);
    r->buf = copy;
    r->cap = 0; /* not a string's buffer: string_copy never shares it (entries differ) */
    return copy;
}

void qtn__strings_free(qtn__thread *t) {
    while (t->rstr) {
        qtn__rstr *r = t->rstr;
        t->rstr = r->next;
        free(r->buf);
        free(r);
    }
}

static int cross(qtn__thread *t, qtn_edge *e, int d, qtn_val *args, qtn_val *ret) {
    const qtn_entry *en = e->entry;
    uint64_t s0 = qtn__stamp(), work = 0, sent = 0;
    uint64_t dl = deadline_of(en), until = dl ? qtn__stamp_to_now(s0) + dl : 0; /* whole call */
    int r;
    bool shared = false;
    int k = -1;
    qtn__hstack local, *st = &local; /* set up only when used: it is large */
    qtn__bind saved = t->bind[d];
    qtn__fixv fx;
    qtn__fixv_init(&fx);
    qtn__alloc a = {0};
    unsigned n = en->nparams;
    qtn_val targs[QTN_PARAMS_MAX];
    qtn__inc *I;
again:
    if (!(I = qtn__inc_enter(d, until, &r))) {
        if (r == QTN_EPARKED)
            qtn__count_parked(en->component ? en->component->id : 0);
        goto done;
    }
    if (n)
        memcpy(targs, args, n * sizeof *args);
    for (unsigned i = 0; i < n; i++)
        if (en->params[i].kind == QTN_K_HANDLE && (en->params[i].flags & QTN_F_OWNED) &&
            (r = untag_handle(&targs[i], I->inc)))
            goto done;
    if (qtn__g.self == QTN_DOMAIN_HOST) {
        uint64_t hs[QTN_PARAMS_MAX]; /* as the domain gets them */
        unsigned nh = 0;
        bool cbs = false;
        for (unsigned i = 0; i < n; i++) {
            cbs |= en->params[i].kind == QTN_K_CALLBACK;
            if (en->params[i].kind == QTN_K_HANDLE && targs[i].u) {
                hs[nh++] = targs[i].u;
                if (!(en->params[i].flags & QTN_F_OWNED)) /* the domain may pass it back up */
                    handle_issue(d, I->inc, e->caller ? (uint32_t)e->caller->id : 0,
                                 targs[i].u);
            }
        }
        for (unsigned i = 0; cbs && i < n; i++) {
            const qtn_param *p = &en->params[i];
            if (p->kind == QTN_K_CALLBACK && targs[i].p &&
                !(targs[i].u = qtn__cb_grant(p->sig, targs[i].p, d, I->inc, hs, nh))) {
                r = QTN_ELIMIT; /* the book is full */
                goto done;
            }
        }
    }
    if (saved.st && saved.inc == I->inc) {
        /* from a callback of a crossing into d in progress: nest on its
         * channel (taking another could wait for ever on ones held by
         * threads doing the same) */
        k = saved.k;
        st = saved.st;
    } else {
        k = qtn__chan_take(t, I, until, &shared);
        if (k == QTN_EFAULT) { /* I died before the call went out: the next one takes it */
            qtn__inc_leave(I);
            goto again;
        }
        if (k < 0) {
            r = k;
            goto done;
        }
        if (!shared) {
            qtn__hstack *h = t->hst[d];
            if (!h && !(h = t->hst[d] = calloc(1, sizeof *h))) {
                r = QTN_ENOMEM;
                goto done;
            }
            if (h->inc != I->inc && h->depth == 0) /* a new incarnation: a new stack */
                h->inc = I->inc, h->top = 0;
            if (h->inc == I->inc) /* else frames of a dead incarnation still unwind there */
                st = h;
        }
        if (st == &local)
            local.inc = I->inc, local.depth = 0, local.top = 0;
        t->bind[d] = (qtn__bind){st, k, I->inc};
    }
    if (st->depth >= QTN__DEPTH_MAX) {
        r = QTN_ELIMIT;
        goto done;
    }
    qtn__chan *ch = qtn__chan_in(I->base, (uint32_t)k);
    char *win = qtn__win_in(I->base, (uint32_t)k);
    a.base = win;
    a.top = st->top;
    a.lim = qtn__g.lay.win_size;
    a.inc = I;
    /* the data first, the frame after it: the first buffer of a call lands
     * at the same place call after call, so a library that remembers the
     * address of a struct it was given (zlib's state->strm) finds it again */
    qtn_val margs[QTN_PARAMS_MAX];
    if (n && (r = qtn__marshal(en->params, n, targs, margs, &a, &fx)))
        goto done;
    if (qtn__unlikely(a.nbulk) && until) /* copying hundreds of MiB in takes the host's */
        until = qtn__now_ns() + dl;      /* time: the deadline counts once they are in */
    size_t gsize = globals_size(en->component);
    qtn__frame *fr =
        (qtn__frame *)qtn__alloc_take(&a, sizeof *fr + n * sizeof(qtn_val) + gsize);
    if (!fr) {
        r = QTN_ETOOBIG;
        goto done;
    }
    if (n)
        memcpy(fr->args, margs, n * sizeof *margs);
    if (gsize)
        globals_copy(en->component, (char *)(fr->args + n), true);
    uint32_t depth = st->depth++;
    st->fr[depth].entry = en;
    st->fr[depth].args = args;
    uint64_t save = st->top;
    st->top = a.top;
    if (depth == 0)
        __atomic_store_n(&I->running[k], en, __ATOMIC_RELAXED);
    ch->htype = QTN__MSG_CALL;
    if (qtn__g.follow && depth == 0) /* where the domain's thread is to sleep (rseq: cheap) */
        atomic_store_explicit(&ch->hcpu, sched_getcpu(), memory_order_relaxed);
    ch->hid = (uint64_t)(uintptr_t)en;
    ch->hdepth = depth;
    ch->hframe = (uint64_t)((char *)fr - win);
    ch->hend = a.top;
    sent = a.top - save;
    for (uint32_t b = 0; b < a.nbulk; b++)
        sent += a.bulk[b].len;
    r = converse(t, st, I, (uint32_t)k, ch, win, en, until);
    qtn_val rv = {0};
    if (!r) {
        memcpy(&rv, (const void *)&ch->dret, sizeof rv); /* read once */
        rv = qtn__as_type(rv, en->ret);
        work = ch->dwork; /* the domain's word: it only shades its own statistics */
        /* the string result first: unmarshalling hands the caller what the
         * outputs point to (callee-allocated data is the caller's then), so
         * nothing may fail after it */
        if (en->ret == QTN_T_STRING && rv.u) {
            bool bad;
            if (rv.u == UINT64_MAX) {
                r = QTN_ETOOBIG; /* the callee's string does not fit in the channel */
            } else if (!(rv.p = string_copy(t, en, win, rv.u, a.top, &bad))) {
                r = bad ? QTN_ECONTRACT : QTN_ENOMEM;
                if (bad)
                    qtn__dom_kill(d, I->inc, QTN_FAULT_CONTRACT, en,
                                  "the domain returned a string outside its part of the window");
            }
        }
        if (!r) {
            r = qtn__unmarshal_from(en->params, &rv, en->ret, en->ret_param, &fx, win, a.top,
                                    qtn__g.lay.win_size);
            if (r == QTN_ECONTRACT)
                qtn__dom_kill(d, I->inc, QTN_FAULT_CONTRACT, en,
                              en->ret == QTN_T_OUT
                                  ? "the domain returned data outside its part of the window, or "
                                    "not as its description says"
                                  : "the domain answered with a length or pointer it was not "
                                    "given");
            else if (r)
                ; /* QTN_ETOOBIG, QTN_ENOMEM: the fault value; the domain did no wrong */
            else if (en->ret == QTN_T_HANDLE)
                rv.p = tag_handle(rv.p, I->inc);
            else if (en->ret == QTN_T_OUT && rv.p && !(rv.p = data_keep(t, en, rv.p)))
                r = QTN_ENOMEM;
        }
        if (!r && gsize) /* fixed sizes: any bytes are the component's own business */
            globals_copy(en->component, (char *)(fr->args + n), false);
    }
    if (depth == 0)
        __atomic_store_n(&I->running[k], NULL, __ATOMIC_RELAXED);
    st->depth--;
    st->top = save;
    if (!r)
        *ret = rv;
    else if (r == QTN_EFAULT || r == QTN_EDEADLINE || r == QTN_ECONTRACT)
        atomic_fetch_add(&I->failed, 1);
done:
    if (r)
        *ret = en->fault;
    qtn__alloc_release(&a);
    qtn__fixv_free(&fx);
    if (shared)
        qtn__chan_give_shared(I, k);
    t->bind[d] = saved;
    if (I)
        qtn__inc_leave(I);
    uint64_t took = qtn__stamp() - s0, ns = qtn__stamp_ns(took);
    uint64_t overhead = r ? 0 : work < took ? qtn__stamp_ns(took - work) : 0;
    qtn__record_crossing(e->id, ns, r != 0, sent, overhead);
    return r;
}

/* True if an entry has a parameter the callee allocates into: such data
 * comes back to the program only, not to a domain calling up. */
static bool has_allocated(const qtn_entry *en) {
    for (unsigned i = 0; i < en->nparams; i++)
        if (en->params[i].kind == QTN_K_ALLOCATED)
            return true;
    return false;
}

/* qtn_call once the edge has its id (0: the overflow bucket). */
static int call_edge(qtn__thread *t, qtn_edge *e, qtn_val *args, qtn_val *ret) {
    const qtn_entry *en = e->entry;
    uint32_t id = e->id;
    int c = en->component ? en->component->id : 0;
    int d = qtn__g.inited ? qtn__where(c) : qtn__g.self;
    /* in a domain, only calls that stay there: the host counts the others
     * (inner.c publishes these) */
    if (qtn__g.self == QTN_DOMAIN_HOST || d == qtn__g.self)
        qtn__count_slow(id);
    if (d == qtn__g.self) {
        /* the stub's direct path let a handle with a domain's tag through to
         * here: the component was moved into this process after it issued
         * the handle, whose memory this process never had */
        for (unsigned i = 0; i < en->nparams; i++)
            if (en->params[i].kind == QTN_K_HANDLE && (en->params[i].flags & QTN_F_OWNED) &&
                !QTN_UNTAGGED(args[i].p)) {
                *ret = en->fault;
                return QTN_ESTALE;
            }
        if (id && !t->tdirect[id]) {
            pthread_mutex_lock(&qtn__g.lock);
            if (qtn__where(c) == qtn__g.self)
                __atomic_store_n(&t->tdirect[id], 1, __ATOMIC_RELAXED);
            pthread_mutex_unlock(&qtn__g.lock);
        }
        if (qtn__g.self != QTN_DOMAIN_HOST && !atomic_load(&qtn__inner_on)) {
            /* the first such call: the process publishes them from now on */
            atomic_fetch_add_explicit(&qtn__my_hdr()->bell, 1, memory_order_release);
            qtn__wake_all(&qtn__my_hdr()->bell);
        }
        en->thunk(args, ret);
        return 0;
    }
    if (qtn__g.self != QTN_DOMAIN_HOST) {
        /* from inside a domain: the host runs it, over this thread's channel */
        if (t->serving < 0) {
            *ret = en->fault;
            return QTN_EDEAD;
        }
        if (qtn__unlikely(en->ret == QTN_T_ALLOCATED || en->ret == QTN_T_OUT ||
                          has_allocated(en))) {
            *ret = en->fault; /* data only the program can take back: said, not sent */
            return QTN_EINVAL;
        }
        /* a generated stub does not know its caller: the entry this
         * thread is running here does */
        const qtn_component *caller = e->caller;
        if (!caller && t->dn > 0)
            caller = t->dst[t->dn - 1].entry->component;
        int r = domain_request(t, QTN__MSG_UP, (uint64_t)(uintptr_t)en,
                               (uint64_t)(uintptr_t)caller, 0, en->params, en->nparams, args,
                               en->ret, ret);
        if (r)
            *ret = en->fault;
        return r;
    }
    return cross(t, e, d, args, ret);
}

static __thread int last_error;

int qtn_last_error(void) { return last_error; }
void qtn_clear_error(void) { last_error = 0; }

int qtn_call(qtn_edge *e, qtn_val *args, qtn_val *ret) {
    qtn__thread *t = qtn__self_thread();
    if (qtn__unlikely(!t)) {
        *ret = e->entry->fault;
        return last_error = QTN_ENOMEM;
    }
    if (qtn__unlikely(!__atomic_load_n(&e->id, __ATOMIC_ACQUIRE))) {
        pthread_mutex_lock(&qtn__g.lock);
        qtn__edge_register_locked(e); /* on failure id stays 0: the overflow bucket */
        pthread_mutex_unlock(&qtn__g.lock);
    }
    int r = call_edge(t, e, args, ret);
    if (qtn__unlikely(r == QTN_ESTALE)) /* the program's mistake, shown to its operator */
        qtn__count_stale(e->entry->component ? e->entry->component->id : 0);
    return last_error = r;
}
