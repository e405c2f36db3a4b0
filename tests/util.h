/* util.h - helpers the runtime tests share. */
#ifndef QTN_TESTS_UTIL_H
#define QTN_TESTS_UTIL_H

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define UNDER_ASAN 1 /* freed memory waits in a quarantine: RSS says little */
#else
#define UNDER_ASAN 0
#endif

/* Hand-written stubs of test components: the thunk of entry `name`; an
 * entry of component `comp` returning an int32, fault value -1, with `np`
 * parameters `ps` (more designated fields may follow). */
#define TU_THUNK(name) static void name##_thunk(qtn_val *a, qtn_val *r)
#define TU_ENTRY(nm, comp, np, ps, ...)                                                   \
    static const qtn_entry nm##_entry = {.name = #nm, .component = &comp,                 \
                                         .thunk = nm##_thunk, .ret = QTN_T_I32,           \
                                         .nparams = np, .params = ps, .fault = {.i = -1}, \
                                         __VA_ARGS__}

/* Entries of a /proc directory (fds, tasks), or -1. */
int tu_count_dir(const char *path);
/* This process's resident memory in KiB, or -1. */
long tu_rss_kib(void);
/* Waits until isolated domain d has all the spares it keeps ready for its
 * next restarts: each holds fds, so fd counts are compared in this steady
 * state. */
void tu_settle(int d);
/* Waits (5 s at most) until this process has `fds` fds and `threads`
 * threads again: those of domain processes that died lately go once their
 * teardown is over (it takes a moment, more under a sanitizer); a leak
 * never does. */
void tu_wait_count(int fds, int threads);
/* Applies a plan; aborts the test with the message if it fails. */
void tu_plan(const char *plan);

#endif
