/* bugs.h - the server's switchable concurrency bugs (README.md, "The bugs").
 *
 * Each is written after a pattern from Lu et al., "Learning from mistakes"
 * (ASPLOS 2008), and sits in a different component:
 *   cache  use after free: a reader drops the lock before it copies an entry
 *          that another thread then evicts and frees (cache.c);
 *   log    atomicity violation: check-then-act on the access log buffer's fill
 *          count, Apache's buffered log bug (accesslog.c);
 *   query  order violation: a shared index published before it is built
 *          (query.c).
 * All are off by default. SERVER_BUGS=cache,log,query (or all) switches them
 * on; SERVER_BUG_WINDOW_US=N widens each race window by sleeping N
 * microseconds inside it, SERVER_BUG_WINDOW_PCT=P percent of the times (100
 * unless set). main() reads them once with srv_bugs_init(), before qtn_init(),
 * so domain processes, which start from the program's state at qtn_init, see
 * the same switches. */
#ifndef SRV_BUGS_H
#define SRV_BUGS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum { SRV_BUG_CACHE = 1, SRV_BUG_LOG = 2, SRV_BUG_QUERY = 4 };

typedef struct srv_bugs {
    unsigned on;        /* SRV_BUG_* */
    uint32_t window_us; /* sleep inside a race window */
    uint32_t window_pct;
} srv_bugs;

extern srv_bugs srv_bug_cfg;

/* Parses the three settings (NULL: unset). Returns 0, or -1 with a message
 * in err. */
int srv_bugs_init(const char *list, const char *window_us, const char *window_pct, char *err,
                  size_t errlen);

/* Names of the bugs switched on, e.g. "cache,query", or "none". */
const char *srv_bugs_names(void);

static inline int srv_bug(unsigned bug) { return (srv_bug_cfg.on & bug) != 0; }

/* Called inside a race window: sleeps window_us there, window_pct percent of
 * the times. The random numbers are per thread (xorshift, seeded from the
 * thread's stack address and the clock), so threads do not line up. */
static inline void srv_bug_window(void) {
    static __thread uint64_t s;
    if (!srv_bug_cfg.window_us)
        return;
    if (!s) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((uint64_t)(uintptr_t)&ts * 0x9e3779b97f4a7c15u) ^ (uint64_t)ts.tv_nsec;
        s |= 1;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    if (s % 100 >= srv_bug_cfg.window_pct)
        return;
    struct timespec d = {.tv_sec = srv_bug_cfg.window_us / 1000000,
                         .tv_nsec = (long)(srv_bug_cfg.window_us % 1000000) * 1000};
    nanosleep(&d, NULL);
}

#endif
