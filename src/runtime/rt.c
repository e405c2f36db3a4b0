/* rt.c - start-up, shutdown, errors and small utilities. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "domain.h"

/* zygote.c: the sandbox settings, fixed here before the zygote is made
 * (declared here and there: internal.h is not this module's to change). */
void qtn__sandbox_set(uint32_t threads, uint64_t mem_bytes, int oom_adj, bool landlock);

qtn__rt qtn__g = {.lock = PTHREAD_MUTEX_INITIALIZER, .dying_fd = -1};

const char *qtn_strerror(int err) {
    switch (err) {
    case 0: return "success";
#define QTN__ERR_STR(name, val, msg)                                                       \
    case val: return msg;
        QTN_ERRNO_MAP(QTN__ERR_STR)
#undef QTN__ERR_STR
    default: return "unknown error";
    }
}

uint64_t qtn__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void qtn__warn(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    char line[600];
    int m = snprintf(line, sizeof line, "quarantine[%d]: %s\n", (int)getpid(), buf);
    if (m > 0)
        (void)!write(2, line, (size_t)m < sizeof line ? (size_t)m : sizeof line - 1);
}

void qtn__fatal(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    qtn__warn("fatal: %s", buf);
    abort();
}

uint32_t qtn__env_u32(const char *name, uint32_t dflt) {
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || v > UINT32_MAX || *s == '-' || *s == '+' || *s == ' ') {
        qtn__warn("ignoring %s=%s: takes a whole number from 0 to %u; using %u", name, s,
                  UINT32_MAX, dflt);
        return dflt;
    }
    return (uint32_t)v;
}

/* ---- settings ------------------------------------------------------------------- */

/* A number setting: its qtn_config field and environment variable, the
 * range the environment's value must be in, and what it takes, in words. */
typedef struct setting {
    const char *env, *field;
    long long lo, hi;
    const char *takes;
} setting;

/* Where a setting's value came from, for messages: "QTN_X=v", "qtn_config.x=v". */
static const char *source(const setting *k, bool field, long long v, char *buf, size_t n) {
    if (field)
        snprintf(buf, n, "qtn_config.%s=%lld", k->field, v);
    else if (getenv(k->env) && *getenv(k->env))
        snprintf(buf, n, "%s=%s", k->env, getenv(k->env));
    else
        snprintf(buf, n, "%s (default %lld)", k->field, v);
    return buf;
}

/* Reads $k->env: 1 with *v when it is set to a number in range, 0 when it
 * is unset. Otherwise says so, naming it, its value and what it takes:
 * not a number, or (unless `strict`) out of range, it is ignored (0, the
 * default `dflt` is used); with `strict` a number out of range is an
 * error (QTN_ERANGE): it would change sizes, not only a choice. */
static int env_setting(const setting *k, bool strict, long long dflt, long long *v) {
    const char *s = getenv(k->env);
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    bool number = !errno && end != s && !*end && *s != ' ';
    if (number && x >= k->lo && x <= k->hi) {
        *v = x;
        return 1;
    }
    if (number && strict) {
        qtn__warn("%s=%s: out of range: takes %s", k->env, s, k->takes);
        return QTN_ERANGE;
    }
    qtn__warn("ignoring %s=%s: %s: takes %s; using %lld", k->env, s,
              number ? "out of range" : "not a number", k->takes, dflt);
    return 0;
}

/* A field set out of range: always an error. */
static int field_range(const setting *k, long long v) {
    qtn__warn("qtn_config.%s=%lld: out of range: takes %s", k->field, v, k->takes);
    return QTN_ERANGE;
}

/* Reads a setting whose field is unsigned (0: unset) into *out. */
static int unsigned_setting(const setting *k, uint32_t field, bool strict, long long dflt,
                            long long *out) {
    *out = dflt;
    if (field) {
        if (field < k->lo || field > k->hi)
            return field_range(k, field);
        *out = field;
        return 0;
    }
    long long v;
    int r = env_setting(k, strict, dflt, &v);
    if (r > 0)
        *out = v;
    return r < 0 ? r : 0;
}

/* A signed field (0: unset; negative: the setting's "none") or its
 * environment variable (0 there: "none"), into *out (-1: none). */
static int signed_setting(const setting *k, int32_t field, bool strict, long long dflt,
                          long long *out) {
    *out = dflt;
    if (field < 0) {
        *out = -1;
        return 0;
    }
    if (field > 0) {
        if (field < k->lo || field > k->hi)
            return field_range(k, field);
        *out = field;
        return 0;
    }
    const char *s = getenv(k->env);
    if (s && !strcmp(s, "0")) { /* none, below any minimum */
        *out = -1;
        return 0;
    }
    long long v;
    int r = env_setting(k, strict, dflt, &v);
    if (r > 0)
        *out = v ? v : -1;
    return r < 0 ? r : 0;
}

#define SLOT_WINDOWS ((size_t)(QTN__SLOT_SIZE / 2)) /* half a slot: the rest for large buffers */

static int layout(const qtn_config *cfg, qtn__layout *lay) {
    char a[96], b[96], takes[160];
    long long channels, win_kib, spin, dl, rmax, rwin, share, sc, threads, mem, oom, ll, spares;
    const long long chan_max = QTN__CHAN_MAX - QTN__SHARED_CHANS - QTN__LATE_CHANS;
    snprintf(takes, sizeof takes, "a number of channels per domain from 1 to %lld", chan_max);
    const setting k_chan = {"QTN_CHANNELS", "channels", 1, chan_max, takes};
    int r = unsigned_setting(&k_chan, cfg ? cfg->channels : 0, true, 256, &channels);
    if (r)
        return r;
    const setting k_win = {"QTN_WINDOW_KIB", "window_kib", 16, 64 * 1024,
                           "a number of KiB per channel from 16 to 65536"};
    if ((r = unsigned_setting(&k_win, cfg ? cfg->window_kib : 0, true, 1024, &win_kib)))
        return r;
    lay->channels = (uint32_t)channels;
    lay->nchan = lay->channels + QTN__SHARED_CHANS;
    lay->win_size = (size_t)win_kib << 10;
    lay->win_off =
        (QTN__INNER_OFF + QTN__INNER_MAX * sizeof(qtn__inner) + 0xfffff) & ~(size_t)0xfffff;
    size_t nwin = (size_t)lay->nchan + QTN__LATE_CHANS; /* from nchan on: the late ones */
    lay->bulk_off = lay->win_off + nwin * lay->win_size;
    if (lay->bulk_off > SLOT_WINDOWS) {
        long long fit = (long long)((SLOT_WINDOWS - lay->win_off) / lay->win_size) -
                        QTN__SHARED_CHANS - QTN__LATE_CHANS;
        qtn__warn("%s and %s: %zu channel windows (%u, %d shared and %d late) of %lld KiB "
                  "need %zu MiB, more than the %zu MiB a domain keeps for them: with that "
                  "window, at most %lld channels",
                  source(&k_chan, cfg && cfg->channels, channels, a, sizeof a),
                  source(&k_win, cfg && cfg->window_kib, win_kib, b, sizeof b), nwin,
                  lay->channels, QTN__SHARED_CHANS, QTN__LATE_CHANS, win_kib,
                  (nwin * lay->win_size) >> 20, (SLOT_WINDOWS - lay->win_off) >> 20,
                  fit > 0 ? fit : 0);
        return QTN_ERANGE;
    }
    const setting k_spin = {"QTN_SPIN_NS", "spin_ns", 0, UINT32_MAX,
                            "a number of nanoseconds from 0 to 4294967295"};
    unsigned_setting(&k_spin, cfg ? cfg->spin_ns : 0, false, 20000, &spin);
    lay->spin_ns = (uint64_t)spin;
    const setting k_dl = {"QTN_DEADLINE_MS", "deadline_ms", 0, INT32_MAX,
                          "0 (no deadline) or a number of milliseconds up to 2147483647"};
    if (cfg && cfg->deadline_ms)
        dl = cfg->deadline_ms;
    else if (env_setting(&k_dl, false, 10000, &dl) <= 0)
        dl = 10000;
    qtn__g.deadline_ns = dl > 0 ? (uint64_t)dl * 1000000u : 0;
    const setting k_rmax = {"QTN_RESTART_MAX", "restart_max", 0, UINT32_MAX,
                            "a number of restarts from 0 to 4294967295"};
    unsigned_setting(&k_rmax, cfg ? cfg->restart_max : 0, false, 10, &rmax);
    qtn__g.restart_max = (uint32_t)rmax;
    const setting k_rwin = {"QTN_RESTART_WINDOW_MS", "restart_window_ms", 0, UINT32_MAX,
                            "a number of milliseconds from 0 to 4294967295"};
    unsigned_setting(&k_rwin, cfg ? cfg->restart_window_ms : 0, false, 10000, &rwin);
    qtn__g.restart_window_ms = (uint32_t)rwin;
    const setting k_share = {"QTN_RESTART_SHARE", "restart_share", 0, 100,
                             "a percentage of the restart window from 0 to 100"};
    if (env_setting(&k_share, false, 10, &share) <= 0)
        share = 10;
    qtn__g.restart_share = (uint32_t)share;
    const setting k_spares = {"QTN_SPARES", "spares", 1, QTN__SPARES_MAX,
                              "0 (none) or a number of processes from 1 to 6"};
    _Static_assert(QTN__SPARES_MAX == 6, "the words above");
    if ((r = signed_setting(&k_spares, cfg ? cfg->spares : 0, false, 2, &spares)))
        return r;
    qtn__g.spares = spares > 0 ? (uint32_t)spares : 0;
    /* QTN_SECCOMP=log: the filter on, and what it denies fails with ENOSYS
     * and is said once, naming the component: what a component would need */
    const char *scs = getenv("QTN_SECCOMP");
    const setting k_sc = {"QTN_SECCOMP", "seccomp", 0, 1,
                          "0 (no call-time filter), 1 or log (say what it denies, fail it)"};
    if (cfg && cfg->seccomp)
        sc = cfg->seccomp > 0;
    else if (scs && !strcmp(scs, "log"))
        sc = 2;
    else if (env_setting(&k_sc, false, 1, &sc) <= 0)
        sc = 1;
    qtn__g.seccomp = (int)sc;
    /* off by default: on a quiet machine it gains a server a few percent,
     * and costs a tight loop of calls twice its latency (bench/server.sh,
     * bench/crossing); on one crowded with other work it gains more */
    const setting k_follow = {"QTN_FOLLOW", "", 0, 1,
                              "1 (a domain's thread sleeps on its caller's CPU) or 0"};
    long long follow;
    if (env_setting(&k_follow, false, 0, &follow) <= 0)
        follow = 0;
    qtn__g.follow = follow != 0;
    /* the sandbox */
    snprintf(takes, sizeof takes,
             "0 (no limit) or a number of threads from %u (one per channel, and one) to 4194304",
             lay->nchan + 1);
    const setting k_thr = {"QTN_DOMAIN_THREADS", "domain_threads", lay->nchan + 1, 4194304,
                           takes};
    if ((r = signed_setting(&k_thr, cfg ? cfg->domain_threads : 0, true, lay->nchan + 64,
                            &threads)))
        return r;
    long long ram = (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) >> 20;
    const setting k_mem = {"QTN_DOMAIN_MEMORY_MIB", "domain_memory_mib", 64, INT32_MAX,
                           "0 (no limit) or a number of MiB from 64 to 2147483647"};
    if ((r = signed_setting(&k_mem, cfg ? cfg->domain_memory_mib : 0, true,
                            ram > 4096 ? ram : 4096, &mem)))
        return r;
    const setting k_oom = {"QTN_DOMAIN_OOM_SCORE_ADJ", "domain_oom_score_adj", 0, 1000,
                           "0 (as inherited) or an OOM score adjustment from 1 to 1000"};
    if ((r = signed_setting(&k_oom, cfg ? cfg->domain_oom_score_adj : 0, false, 1000, &oom)))
        return r;
    const setting k_ll = {"QTN_LANDLOCK", "landlock", 0, 1, "0 (do not use Landlock) or 1"};
    if (cfg && cfg->landlock)
        ll = cfg->landlock > 0;
    else if (env_setting(&k_ll, false, 1, &ll) <= 0)
        ll = 1;
    qtn__sandbox_set(threads > 0 ? (uint32_t)threads : 0, mem > 0 ? (uint64_t)mem << 20 : 0,
                     oom > 0 ? (int)oom : -1, ll != 0);
    return 0;
}

int qtn_init(const qtn_config *cfg) {
    pthread_mutex_lock(&qtn__g.lock);
    int r = 0;
    if (qtn__g.inited) {
        r = QTN_ESTATE;
        goto out;
    }
    if ((r = layout(cfg, &qtn__g.lay)))
        goto out;
    qtn__clock_init();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    qtn__g.spin_cap = ncpu > 2 ? (int)(ncpu / 2) : 1;
    qtn__g.host_pid = getpid();
    qtn__g.self = QTN_DOMAIN_HOST;
    /* reserve every domain's slots now, so the zygote and the domains
     * forked from it have the same free range: shared memory lands at the
     * same address everywhere. Once: a qtn_init after qtn_shutdown finds
     * the reservation there still (its slots given back) */
    if (!qtn__g.range) {
        void *range = mmap(NULL, QTN__SLOT_SIZE * QTN__INCS * QTN_DOMAINS_MAX, PROT_NONE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (range == MAP_FAILED) {
            r = QTN_ESYS;
            goto out;
        }
        qtn__g.range = range;
    }
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__doms[d].id = d;
        for (int h = 0; h < QTN__INCS; h++)
            qtn__doms[d].incs[h].pidfd = qtn__doms[d].incs[h].dyingfd = -1;
        pthread_mutex_init(&qtn__doms[d].lock, NULL);
        pthread_mutex_init(&qtn__doms[d].start, NULL);
        pthread_cond_init(&qtn__doms[d].shared_cv, NULL);
    }
    if ((r = qtn__zygote_start()))
        goto out;
    /* the supervisor's statistics file: mapped after the zygote is made, so
     * no domain process ever has it */
    const char *sfd = getenv("QTN_STATS_FD");
    static bool sf_adopted; /* once: at a later qtn_init the fd is long closed (its
                               number may be another file's) and the file mapped */
    if (sfd && *sfd && !sf_adopted) {
        sf_adopted = true;
        char *end;
        long fd = strtol(sfd, &end, 10);
        int ar = *end || fd < 0 || fd > INT32_MAX ? QTN_EINVAL : qtn__sf_adopt((int)fd);
        if (ar)
            qtn__warn("ignoring QTN_STATS_FD=%s: takes the number of an open statistics file "
                      "descriptor (quarantine run sets it): %s",
                      sfd, *end || fd < 0 || fd > INT32_MAX ? "not a number"
                           : ar == QTN_EINVAL              ? "not a statistics file"
                                                           : strerror(errno));
        if (!*end && fd > 2)
            close((int)fd); /* the mapping stays; programs it starts do not get the fd */
    }
    atomic_store(&qtn__stopping, false); /* a start after qtn_shutdown */
    if ((r = qtn__monitor_start())) {
        qtn__zygote_stop();
        goto out;
    }
    qtn__crash_prepare();
    qtn__sf_started(); /* after the build id is known */
    int rfd = qtn__report_start();
    qtn__g.inited = true;
    pthread_mutex_unlock(&qtn__g.lock);
    const char *ch = getenv("QTN_CRASH_HANDLER");
    if (ch && *ch && strcmp(ch, "0") && strcmp(ch, "1"))
        qtn__warn("ignoring QTN_CRASH_HANDLER=%s: takes 0 (no crash handler) or 1; using 1", ch);
    if (!ch || strcmp(ch, "0")) { /* after the zygote: domains have their own */
        static void *main_stack;
        qtn__crash_install(rfd);
        if (!main_stack)
            qtn__crash_thread(&main_stack);
    }
    const char *plan = cfg && cfg->plan ? cfg->plan : getenv("QTN_PLAN");
    if (plan && *plan) {
        char err[256];
        r = qtn_plan_apply(plan, err, sizeof err);
        if (r)
            qtn__warn("%s: %s", cfg && cfg->plan ? "qtn_config.plan" : "QTN_PLAN", err);
        if (r)
            return r == QTN_ENOENT ? QTN_EPLAN : r;
    }
    qtn__control_ack(0, 1, ""); /* the supervisor learns the plan it starts with */
    if (qtn__control_start()) /* plans from a supervisor, from now on */
        qtn__warn("cannot read the control channel: %s", strerror(errno));
    return 0;
out:
    pthread_mutex_unlock(&qtn__g.lock);
    return r;
}
