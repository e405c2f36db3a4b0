/* clock.c - time stamps for the crossing path: the CPU's time-stamp counter
 * where it ticks at a constant rate on every core (an invariant TSC), else
 * the monotonic clock.
 *
 * A crossing used to read CLOCK_MONOTONIC four times (its start and end in
 * the host, the callee's work in the domain): about 25 ns each, a fifth of a
 * quiet null crossing. A TSC read is about 10 ns and needs no conversion
 * until a figure is made of it. Stamps are converted with a rate measured
 * against CLOCK_MONOTONIC over the time since qtn_init, measured again now
 * and then as that span grows, so a conversion is a multiply and almost
 * never reads the clock once the rate is known (after the first
 * millisecond). A domain process is forked from the host: its stamps count
 * on the same counter, and the host, which converts them, trusts them only
 * for the domain's own statistics. */
#include <stdatomic.h>
#include <time.h>

#include "internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

bool qtn__use_tsc;
static uint64_t base_stamp, base_ns; /* at qtn_init */
static _Atomic uint64_t rate;        /* ns per stamp, 32.32 fixed point; 0: not yet known */
static _Atomic uint64_t rated_at;    /* stamps since base when rate was measured */

#define MIN_SPAN_NS 1000000u /* measure the rate over at least 1 ms */

void qtn__clock_init(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    /* CPUID 0x80000007 EDX bit 8: the TSC runs at a constant rate in every
     * power state (what the kernel calls constant_tsc + nonstop_tsc) */
    qtn__use_tsc = __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8));
#endif
    base_ns = qtn__now_ns();
    base_stamp = qtn__stamp();
    if (!qtn__use_tsc)
        atomic_store(&rate, 1ull << 32); /* stamps are nanoseconds */
}

/* Nanoseconds and stamps since qtn_init, read now. */
static void since_init(uint64_t *ns, uint64_t *st) {
    *ns = qtn__now_ns() - base_ns;
    *st = qtn__stamp() - base_stamp;
}

/* Measures the rate over the time since qtn_init, when that is long enough
 * and longer than the span the rate in use was measured over. */
static uint64_t measure_rate(void) {
    uint64_t ns, st;
    since_init(&ns, &st);
    uint64_t r = atomic_load_explicit(&rate, memory_order_relaxed);
    if (ns < MIN_SPAN_NS || !st)
        return r;
    if (st > atomic_load_explicit(&rated_at, memory_order_relaxed)) {
        r = (uint64_t)(((unsigned __int128)ns << 32) / st);
        atomic_store_explicit(&rated_at, st, memory_order_relaxed);
        atomic_store_explicit(&rate, r, memory_order_relaxed);
    }
    return r;
}

uint64_t qtn__stamp_ns(uint64_t stamps) {
    /* now and then (a clock read in 65,536 conversions of a thread) the rate
     * is measured again over the longer span: it only gets more precise */
    static __thread uint32_t uses;
    uint64_t r = atomic_load_explicit(&rate, memory_order_relaxed);
    if (qtn__unlikely(!r || (++uses & 0xffff) == 0) && qtn__use_tsc && !(r = measure_rate())) {
        /* the first millisecond: the rate since qtn_init, read now */
        uint64_t ns, st;
        since_init(&ns, &st);
        return st ? (uint64_t)((unsigned __int128)stamps * ns / st) : 0;
    }
    return (uint64_t)(((unsigned __int128)stamps * r) >> 32);
}

uint64_t qtn__stamp_to_now(uint64_t stamp) {
    if (!qtn__use_tsc)
        return stamp;
    if (stamp < base_stamp) /* counters of two cores a few ticks apart */
        return base_ns;
    return base_ns + qtn__stamp_ns(stamp - base_stamp);
}
