#ifndef QTN_BENCH_FLOORS_H
#define QTN_BENCH_FLOORS_H

/*
 * Inter-process round-trip floors of the host, for comparison with the cost
 * of one of our own crossings.
 *
 * Each ns function returns the median round-trip time in nanoseconds over
 * `rounds` round trips (after a warm-up), measured between this process and
 * a forked child; it returns a negative value on error (and prints why to
 * stderr). The median is taken over per-batch averages (up to 31 batches).
 */

/* Both sides spin (with a pause hint) on an atomic counter in a shared
   anonymous page: ping = parent increments, pong = child increments. */
double qb_spin_floor_ns(int rounds);

/* Same shared counter, but each side blocks in FUTEX_WAIT (non-private, since
   the page is shared between processes) and the other side wakes it with
   FUTEX_WAKE on every step; no spinning. */
double qb_futex_floor_ns(int rounds);

/* Two pipes, 1-byte write/read ping-pong. */
double qb_pipe_rtt_ns(int rounds);

/* AF_UNIX SOCK_STREAM socketpair, 1-byte ping-pong. */
double qb_socketpair_rtt_ns(int rounds);

/* Median cost of fork() + child _exit(0) + parent waitpid(), in
   milliseconds; negative on error. */
double qb_fork_floor_ms(int rounds);

#endif /* QTN_BENCH_FLOORS_H */
