/* now.h - the clocks of the supervisor's side: monotonic seconds, for
 * intervals and timeouts, and the wall clock in nanoseconds, for records. */
#ifndef QTN_QIS_NOW_H
#define QTN_QIS_NOW_H

#include <stdint.h>
#include <time.h>

static inline double qs_mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static inline int64_t qs_real_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

#endif
