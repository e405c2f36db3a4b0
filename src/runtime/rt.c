/* rt.c - start-up, shutdown, errors and small utilities. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

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
    if (*end || errno || v > UINT32_MAX) {
        qtn__warn("ignoring %s=%s: not a number", name, s);
        return dflt;
    }
    return (uint32_t)v;
}

static int layout(const qtn_config *cfg, qtn__layout *lay) {
    uint32_t channels = cfg && cfg->channels ? cfg->channels : qtn__env_u32("QTN_CHANNELS", 256);
    uint32_t win_kib =
        cfg && cfg->window_kib ? cfg->window_kib : qtn__env_u32("QTN_WINDOW_KIB", 1024);
    uint32_t spin = cfg && cfg->spin_ns ? cfg->spin_ns : qtn__env_u32("QTN_SPIN_NS", 20000);
    if (channels == 0 || channels + QTN__SHARED_CHANS > QTN__CHAN_MAX || win_kib < 16 ||
        win_kib > 64 * 1024)
        return QTN_ERANGE;
    lay->channels = channels;
    lay->nchan = channels + QTN__SHARED_CHANS;
    lay->win_size = (size_t)win_kib << 10;
    lay->win_off = (QTN__CHAN_OFF + QTN__CHAN_MAX * sizeof(qtn__chan) + 0xfffff) & ~(size_t)0xfffff;
    lay->bulk_off = lay->win_off + (size_t)lay->nchan * lay->win_size;
    lay->spin_ns = spin;
    int32_t dl = cfg && cfg->deadline_ms ? cfg->deadline_ms
                                        : (int32_t)qtn__env_u32("QTN_DEADLINE_MS", 10000);
    qtn__g.deadline_ns = dl > 0 ? (uint64_t)dl * 1000000u : 0;
    qtn__g.restart_max =
        cfg && cfg->restart_max ? cfg->restart_max : qtn__env_u32("QTN_RESTART_MAX", 10);
    qtn__g.restart_window_ms = cfg && cfg->restart_window_ms
                                   ? cfg->restart_window_ms
                                   : qtn__env_u32("QTN_RESTART_WINDOW_MS", 10000);
    int sc = cfg && cfg->seccomp ? cfg->seccomp : (qtn__env_u32("QTN_SECCOMP", 1) ? 1 : -1);
    qtn__g.seccomp = sc > 0 ? 1 : 0;
    if (lay->bulk_off > QTN__SLOT_SIZE / 2)
        return QTN_ERANGE; /* keep at least half of the slot for large buffers */
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
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    qtn__g.spin_cap = ncpu > 2 ? (int)(ncpu / 2) : 1;
    qtn__g.host_pid = getpid();
    qtn__g.self = QTN_DOMAIN_HOST;
    /* reserve every domain's slot now, so the zygote and the domains forked
     * from it have the same free range: shared memory lands at the same
     * address everywhere */
    void *range = mmap(NULL, QTN__SLOT_SIZE * QTN_DOMAINS_MAX, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (range == MAP_FAILED) {
        r = QTN_ESYS;
        goto out;
    }
    qtn__g.range = range;
    for (int d = 1; d <= QTN_DOMAINS_MAX; d++) {
        qtn__doms[d].id = d;
        qtn__doms[d].incs[0].pidfd = qtn__doms[d].incs[1].pidfd = -1;
        qtn__doms[d].incs[0].dyingfd = qtn__doms[d].incs[1].dyingfd = -1;
        pthread_mutex_init(&qtn__doms[d].lock, NULL);
        pthread_mutex_init(&qtn__doms[d].start, NULL);
        pthread_cond_init(&qtn__doms[d].shared_cv, NULL);
    }
    if ((r = qtn__zygote_start()))
        goto out;
    /* the supervisor's statistics file: mapped after the zygote is made, so
     * no domain process ever has it */
    const char *sfd = getenv("QTN_STATS_FD");
    if (sfd && *sfd) {
        char *end;
        long fd = strtol(sfd, &end, 10);
        int ar = *end || fd < 0 || fd > INT32_MAX ? QTN_EINVAL : qtn__sf_adopt((int)fd);
        if (ar)
            qtn__warn("ignoring QTN_STATS_FD=%s: %s", sfd,
                      ar == QTN_EINVAL ? "not a statistics file" : strerror(errno));
        if (!*end && fd > 2)
            close((int)fd); /* the mapping stays; programs it starts do not get the fd */
    }
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
            qtn__warn("%s", err);
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
