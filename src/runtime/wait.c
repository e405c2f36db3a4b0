/* wait.c - publishing and awaiting channel messages: spin briefly, then
 * sleep on a futex in shared memory. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Not FUTEX_PRIVATE: the word is shared with another process. */
static long futex(_Atomic uint32_t *w, int op, uint32_t val) {
    return syscall(SYS_futex, (uint32_t *)w, op, val, NULL, NULL, 0);
}

void qtn__post(_Atomic uint32_t *word, uint32_t seq, _Atomic uint32_t *peer_sleep) {
    /* seq_cst store then load pairs with the sleeper's store then load in
     * qtn__await: one of the two sides always sees the other. */
    atomic_store_explicit(word, seq, memory_order_seq_cst);
    if (atomic_load_explicit(peer_sleep, memory_order_seq_cst))
        futex(word, FUTEX_WAKE, INT_MAX);
}

void qtn__wake_all(_Atomic uint32_t *word) { futex(word, FUTEX_WAKE, INT_MAX); }

/* The word moved: the awaited message, a dead peer (the monitor flips the
 * word of every channel of a dead incarnation), or a peer breaking protocol. */
static int settle(uint32_t v, uint32_t want, _Atomic uint32_t *live, uint32_t inc) {
    if (v == want)
        return 0;
    if (live && atomic_load_explicit(live, memory_order_acquire) != inc)
        return 1;
    return -1;
}

/* The CPUs this thread may run on, as it started (a pin is undone to it). */
static __thread cpu_set_t own_cpus;
static __thread bool own_known;

static void pin_to(qtn__follow *f, int cpu) {
    if (!own_known) {
        CPU_ZERO(&own_cpus);
        if (sched_getaffinity(0, sizeof own_cpus, &own_cpus))
            return;
        own_known = true;
    }
    if (cpu >= 0 && (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &own_cpus)))
        return; /* not one of ours (the caller may run where we may not) */
    cpu_set_t one;
    CPU_ZERO(&one);
    if (cpu >= 0)
        CPU_SET(cpu, &one);
    if (!sched_setaffinity(0, sizeof one, cpu >= 0 ? &one : &own_cpus))
        f->pinned = cpu;
}

int qtn__await(_Atomic uint32_t *word, uint32_t cur, uint32_t want, _Atomic uint32_t *my_sleep,
               _Atomic uint32_t *live, uint32_t inc, uint64_t until, qtn__follow *follow) {
    uint32_t v = atomic_load_explicit(word, memory_order_acquire);
    if (v != cur)
        return settle(v, want, live, inc);
    /* Spin, but only as long as spinning pays off for this thread: a wait
     * that spinning served pulls the budget up, one it did not halves it
     * (with more threads than cores, a spinner takes the core its peer
     * needs). A budget run down still probes now and then. */
    static __thread uint64_t budget = UINT64_MAX;
    static __thread uint32_t waits;
    uint64_t max = qtn__g.lay.spin_ns;
    if (budget > max)
        budget = max;
    uint64_t spin = budget >= 1000 || (++waits & 63) == 0 ? (budget >= 1000 ? budget : max) : 0;
    if (spin && follow && follow->pinned >= 0)
        pin_to(follow, -1); /* spinning wants a core of its own: any of ours */
    if (spin && atomic_fetch_add_explicit(&qtn__g.spinners, 1, memory_order_relaxed) <
                    qtn__g.spin_cap) {
        uint64_t t0 = 0; /* read at the first check: a quick answer reads no clock */
        for (unsigned i = 1;; i++) {
            v = atomic_load_explicit(word, memory_order_acquire);
            if (v != cur)
                break;
            qtn__cpu_relax();
            if ((i & 63) == 0) {
                uint64_t now = qtn__now_ns();
                if (!t0)
                    t0 = now;
                else if (now - t0 > spin)
                    break;
            }
        }
        atomic_fetch_sub_explicit(&qtn__g.spinners, 1, memory_order_relaxed);
        if (v != cur) {
            budget = budget + budget / 4 + 1000; /* clamped to max above */
            return settle(v, want, live, inc);
        }
        budget /= 2;
    } else if (spin) {
        atomic_fetch_sub_explicit(&qtn__g.spinners, 1, memory_order_relaxed);
    }
    /* Going to sleep: on the CPU the caller called from. Its next call
     * wakes this thread there just as the caller goes to sleep itself, so
     * the two take turns on one core (no wake-up of another core: on a
     * virtual machine that is an exit to the hypervisor, and the cost of a
     * crossing in a loaded server was mostly these wake-ups). */
    if (follow) {
        int c = atomic_load_explicit(follow->cpu, memory_order_relaxed);
        if (follow->last_ns < QTN__FOLLOW_MIN_NS)
            c = -1; /* calls come close together: anywhere */
        if (c != follow->pinned)
            pin_to(follow, c);
    }
    /* the clock is read only to sleep: a quick answer reads none */
    for (;;) {
        struct timespec ts, *tsp = NULL;
        if (until) {
            uint64_t now = qtn__now_ns();
            if (now >= until)
                return 2;
            uint64_t left = until - now;
            ts.tv_sec = (time_t)(left / 1000000000u);
            ts.tv_nsec = (long)(left % 1000000000u);
            tsp = &ts;
        }
        atomic_store_explicit(my_sleep, 1, memory_order_seq_cst);
        v = atomic_load_explicit(word, memory_order_seq_cst);
        if (v == cur) {
            /* EAGAIN: changed already; EINTR, ETIMEDOUT: look again */
            syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, cur, tsp, NULL, 0);
            v = atomic_load_explicit(word, memory_order_acquire);
        }
        atomic_store_explicit(my_sleep, 0, memory_order_relaxed);
        if (v != cur)
            return settle(v, want, live, inc);
    }
}
