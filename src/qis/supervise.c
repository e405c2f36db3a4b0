/* supervise.c - the supervisor of `quarantine run` (see supervise.h).
 *
 * States and the events that move between them (the table `rows` below):
 *
 *   STARTING   the program was started; its runtime has not said which
 *              plan it runs yet (a program without the runtime stays here)
 *   UP         its runtime is ready and runs a known plan: the policy may
 *              push a new one
 *   BACKOFF    it crashed; it is started again when the delay is over
 *   STOPPING   a stop signal was passed on; waiting for it to end
 *   DONE       the supervisor exits
 *
 * Events: the program exited or crashed, a stop signal or SIGHUP came,
 * the backoff is over, its runtime said hello or answered a plan (the
 * first answer tells the plan it started with), evidence was stored (a
 * fault, a host crash, statistics), and a tick each second. One event per
 * log line on stderr: `quarantine: run: event=NAME key=value ...`. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../runtime/statsfile.h"
#include "listen.h"
#include "metrics.h"
#include "now.h"
#include "replan.h"
#include "outbox.h"
#include "pg.h"
#include "spool.h"
#include "store.h"
#include "supervise.h"

#define ACK_TIMEOUT_S 5.0  /* a pushed plan not answered by then: said */
#define READY_WAIT_S 2.0   /* a runtime that says hello but not its plan: take the one given */
#define MAX_OLD 16
#define METRICS_EVERY_S 0.25 /* the counters /metrics serves are at most this old (or a tick) */
#define FLUSH_MS 5000      /* at the end, the outbox's last try to ship what it holds */

typedef enum { ST_STARTING, ST_UP, ST_BACKOFF, ST_STOPPING, ST_DONE } state;

typedef enum {
    EV_EXITED,   /* the program exited by itself */
    EV_CRASHED,  /* it died of a signal */
    EV_STOP,     /* SIGTERM or SIGINT came */
    EV_HUP,      /* SIGHUP came */
    EV_TIMER,    /* the backoff is over */
    EV_HELLO,    /* its runtime said hello */
    EV_ACK,      /* its runtime answered a plan (seq 0: the plan it started with) */
    EV_EVIDENCE, /* a fault, a host crash or statistics were stored */
    EV_TICK,     /* a second passed */
    EV_FLEET,    /* the fleet's evidence was fetched into the outbox */
} event;

typedef struct evdata {
    event ev;
    int status;     /* EXITED, CRASHED: the wait status; STOP, HUP: the signal */
    int pid;
    int64_t seq;    /* ACK */
    int ok;         /* ACK */
    char plan[4096];/* ACK: the plan in force */
    char build[64]; /* HELLO */
} evdata;

typedef struct sup {
    const qs_sup_opts *o;
    state st;
    qs_store *store;
    qf_outbox *outbox;      /* with a fleet store: its shipper */
    char spool_dir[4200];
    int spool_ok;           /* spool_dir is beside the store */
    char installation[128], run[64];
    char said[512];         /* the store error said last: said once */
    qs_spool *cur;          /* the running program's spool */
    int cur_fd;             /* its append-only fd (the program has it too) */
    qs_spool *old[MAX_OLD]; /* spools whose import is not finished */
    int nold;
    int starts;
    pid_t pid;              /* the program, 0 when none runs */
    pid_t last_pid;         /* the one before, once it is gone */
    /* its statistics file (statsfile.h), read when it is gone */
    char stats_path[4300];
    void *stats;
    /* restarts */
    double *crashes;        /* times of recent crashes that count */
    int ncrash, ngrace;     /* ... and of crashes forgiven: the plan changed after them */
    double *grace;
    int delay_ms;
    double started, restart_at, last_crash_real;
    int64_t crash_ns;       /* when the program before this one crashed (0: none) */
    int stop_sig;
    int code;               /* exit code, once DONE */
    /* the policy */
    int ctl_fd;             /* write end of the program's control channel, -1 none */
    int runtime;            /* the program said hello */
    int said_no_runtime;
    double hello_at;
    char build[64];
    char plan[4096];        /* the plan in force, as the program said */
    char start_plan[4096];  /* the plan the program is started with */
    int64_t seq;            /* plan changes decided in this run */
    int64_t pending;        /* a pushed plan not answered yet (0: none) */
    double pushed_at;
    char pending_plan[4096];
    int dirty;              /* evidence came since the last decision */
    pid_t fleet_pid;        /* the program the fleet's evidence came for last */
    int fleet_first;        /* the first of it for this program: decided at once */
    char *deferred;         /* a plan record for the next start's spool */
    char capped[512];       /* said last: components a budget keeps in the host */
    /* /metrics */
    qm_server *metrics;
    int listen_fd;          /* --listen: the socket each start gets as fd 3, or -1 */
    double metrics_at;
    char metrics_said[512];
    /* events met while importing, handled after */
    evdata q[64];
    int nq;
} sup;



static void logev(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logev(const char *fmt, ...) {
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    fprintf(stderr, "quarantine: run: event=%s\n", line);
}

static void push_event(sup *s, const evdata *e) {
    if (s->nq < (int)(sizeof s->q / sizeof s->q[0]))
        s->q[s->nq++] = *e;
}

/* ---- the store and the spool files --------------------------------------- */

static void spool_record(sup *s, const char *json);

static void log_cb(void *ctx, const char *line) {
    (void)ctx;
    logev("%s", line);
}

/* What an import met: events for the table. */
static void on_record(void *ctx, const qs_event *ev) {
    sup *s = ctx;
    evdata e;
    memset(&e, 0, sizeof e);
    e.pid = ev->pid;
    switch (ev->type) {
    case QS_EV_HELLO:
        e.ev = EV_HELLO;
        snprintf(e.build, sizeof e.build, "%s", ev->build_id ? ev->build_id : "");
        break;
    case QS_EV_PLAN_ACK:
        e.ev = EV_ACK;
        e.seq = ev->seq;
        e.ok = ev->ok;
        snprintf(e.plan, sizeof e.plan, "%s", ev->plan ? ev->plan : "");
        break;
    default:
        e.ev = EV_EVIDENCE;
    }
    if (e.pid == s->pid || e.ev == EV_EVIDENCE) /* a leftover's hello says nothing of ours */
        push_event(s, &e);
}

static void store_error(sup *s, const char *err) {
    if (strcmp(s->said, err)) {
        logev("store-error %s (records are held in the spool and tried again)", err);
        snprintf(s->said, sizeof s->said, "%s", err);
    }
}

/* Opens the store if it is not open: it may have been locked, read-only or
 * missing a moment ago. */
static qs_store *store(sup *s) {
    if (s->store)
        return s->store;
    char err[512];
    s->store = qs_open(s->o->store_path, 0, err, sizeof err);
    if (!s->store)
        store_error(s, err);
    else
        qs_busy_ms(s->store, 200); /* never hold up the supervisor for long */
    return s->store;
}

/* Imports what spool sp holds; with finish, removes it once complete and
 * no writer is left. Returns 1 when sp is done with. */
static int import(sup *s, qs_spool *sp, int finish) {
    char err[512];
    qs_store *st = store(s);
    if (qs_spool_import(sp, st, log_cb, s, err, sizeof err) < 0) {
        store_error(s, err);
        qs_close(s->store); /* opened again next time */
        s->store = NULL;
        return 0;
    }
    if (!st)
        return 0;
    s->said[0] = 0;
    if (!finish)
        return 0;
    int r = qs_spool_finish(sp, st, s->o->keep_spool, log_cb, s, err, sizeof err);
    if (r < 0)
        store_error(s, err);
    return r == 1;
}

/* The statistics file beside spool `name` (NAME.stats for NAME.spool). */
static void stats_path_of(const sup *s, const char *spool_name, char *out, size_t len) {
    size_t n = strlen(spool_name);
    snprintf(out, len, "%s/%.*s.stats", s->spool_dir, (int)(n > 6 ? n - 6 : n), spool_name);
}

/* A program is gone: the last totals of its statistics file become one
 * more statistics record in its spool (wfd), so exposure since its last
 * snapshot is not lost, however it ended. The record's time is kept in the
 * file, so a supervisor that does this again writes the same record. */
static void final_stats(sup *s, void *area, const char *path, int wfd) {
    qtn__sf_head *h = area;
    if (!area || h->magic != QTN__SF_MAGIC)
        return; /* the program never mapped it: no runtime */
    int64_t t = atomic_load(&h->final_ns);
    if (!t) {
        t = qs_real_ns();
        atomic_store(&h->final_ns, t);
        msync(area, 4096, MS_SYNC);
    }
    size_t cap = 1 << 18;
    char *buf = malloc(cap);
    int n = buf ? qtn__sf_json(area, QTN__SF_SIZE, t, buf, cap) : -1;
    if (n > 0 && (qs_record_write(wfd, buf) < 0 || fdatasync(wfd) < 0))
        logev("spool-error stats=%s error=\"%s\"", path, strerror(errno));
    free(buf);
    (void)s;
}

/* A leftover spool whose writer is gone: its statistics file, if any,
 * first becomes its last record. */
static void adopt_stats(sup *s, const char *name) {
    char path[4300], spath[4300];
    stats_path_of(s, name, path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat sb;
    if (fd < 0)
        return;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (size_t)sb.st_size >= QTN__SF_SIZE) {
        void *area = mmap(NULL, QTN__SF_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        snprintf(spath, sizeof spath, "%s/%s", s->spool_dir, name);
        int wfd = open(spath, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (area != MAP_FAILED && wfd >= 0)
            final_stats(s, area, path, wfd);
        if (wfd >= 0)
            close(wfd);
        if (area != MAP_FAILED)
            munmap(area, QTN__SF_SIZE);
    }
    close(fd);
    unlink(path);
}

/* Spool files left by a supervisor that was killed, whose writers are gone:
 * imported and removed. */
static void adopt_leftovers(sup *s) {
    DIR *d = s->spool_ok && s->nold < MAX_OLD ? opendir(s->spool_dir) : NULL;
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && s->nold < MAX_OLD) {
        size_t n = strlen(e->d_name);
        if (n < 7 || strcmp(e->d_name + n - 6, ".spool") ||
            (s->cur && !strcmp(e->d_name, qs_spool_name(s->cur))))
            continue;
        int known = 0;
        for (int i = 0; i < s->nold; i++)
            known |= !strcmp(qs_spool_name(s->old[i]), e->d_name);
        if (known)
            continue;
        char err[512];
        qs_spool *sp = qs_spool_open(s->spool_dir, e->d_name, s->installation, err, sizeof err);
        if (!sp)
            continue;
        if (!qs_spool_writer_gone(sp)) { /* its program still runs: its own supervisor's */
            qs_spool_close(sp);
            continue;
        }
        logev("adopt spool=%s/%s", s->spool_dir, e->d_name);
        adopt_stats(s, e->d_name);
        qs_spool_on_event(sp, on_record, s);
        s->old[s->nold++] = sp;
    }
    closedir(d);
}

/* One round of importing: the running program's records, and the rest. */
static void tick(sup *s) {
    if (s->cur)
        import(s, s->cur, 0);
    adopt_leftovers(s);
    for (int i = 0; i < s->nold;) {
        if (import(s, s->old[i], 1)) {
            qs_spool_close(s->old[i]);
            s->old[i] = s->old[--s->nold];
        } else {
            i++;
        }
    }
}

/* The counters /metrics serves, made again from the store and the running
 * program's statistics file when they are older than METRICS_EVERY_S. */
static void metrics(sup *s) {
    if (!s->metrics || qs_mono_s() - s->metrics_at < METRICS_EVERY_S)
        return;
    s->metrics_at = qs_mono_s();
    char *live = NULL, *text = NULL, err[512];
    size_t cap = 1 << 18, len = 0;
    if (s->stats && s->pid && (live = malloc(cap)) &&
        qtn__sf_json(s->stats, QTN__SF_SIZE, qs_real_ns(), live, cap) < 0) {
        free(live); /* not mapped by a runtime yet */
        live = NULL;
    }
    qm_sup sp = {s->installation, s->run, s->starts, s->pid != 0, live};
    if (qm_render(store(s), &sp, &text, &len, err, sizeof err) == 0) {
        qm_publish(s->metrics, text, len);
        s->metrics_said[0] = 0;
    } else if (strcmp(s->metrics_said, err)) { /* scrapes get the counters before */
        logev("metrics-error %s", err);
        snprintf(s->metrics_said, sizeof s->metrics_said, "%s", err);
    }
    free(text);
    free(live);
}

/* A crash of a program that had no spool file: stored straight away. */
static void crash_unspooled(sup *s, int pid, int sig, long long t) {
    char err[512];
    if (!store(s) || qs_put_exit_crash(s->store, s->installation, s->run, "", pid, sig, t, err,
                                       sizeof err) < 0)
        logev("unstored crash pid=%d signal=SIG%s", pid, sigabbrev_np(sig));
}

/* The program ended: its last records (its statistics file's totals, the
 * supervisor's record of how it ended), imported. */
static void ended(sup *s, int pid, int st) {
    long long t = qs_real_ns();
    if (s->ctl_fd >= 0) {
        close(s->ctl_fd);
        s->ctl_fd = -1;
    }
    s->pending = 0;
    if (!s->cur) {
        if (WIFSIGNALED(st))
            crash_unspooled(s, pid, WTERMSIG(st), t);
        return;
    }
    final_stats(s, s->stats, s->stats_path, s->cur_fd);
    if (s->stats) {
        munmap(s->stats, QTN__SF_SIZE);
        s->stats = NULL;
        unlink(s->stats_path);
    }
    if (WIFSIGNALED(st)) {
        char js[160];
        snprintf(js, sizeof js, "{\"type\":\"exit\",\"pid\":%d,\"time_ns\":%lld,\"signal\":%d}",
                 pid, t, WTERMSIG(st));
        if (qs_record_write(s->cur_fd, js) < 0 || fdatasync(s->cur_fd) < 0) {
            logev("spool-error spool=%s/%s error=\"%s\"", s->spool_dir, qs_spool_name(s->cur),
                  strerror(errno));
            crash_unspooled(s, pid, WTERMSIG(st), t);
        }
    }
    close(s->cur_fd); /* the lock goes with the last holder */
    s->cur_fd = -1;
    if (import(s, s->cur, 1))
        qs_spool_close(s->cur);
    else if (s->nold < MAX_OLD)
        s->old[s->nold++] = s->cur; /* finished later */
    else
        qs_spool_close(s->cur);
    s->cur = NULL;
}

/* A statistics file for the program, beside its spool: the fd it gets as
 * QTN_STATS_FD, or -1. */
static int make_stats(sup *s) {
    if (!s->cur)
        return -1;
    stats_path_of(s, qs_spool_name(s->cur), s->stats_path, sizeof s->stats_path);
    int fd = open(s->stats_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)QTN__SF_SIZE) < 0) {
        logev("spool-error stats=%s error=\"%s\" (counts since the last snapshot may be lost)",
              s->stats_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(s->stats_path);
        return -1;
    }
    void *a = mmap(NULL, QTN__SF_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    s->stats = a == MAP_FAILED ? NULL : a;
    return fd;
}

/* Starts the program with its spool file as QTN_REPORT_FD, its statistics
 * file as QTN_STATS_FD and, with a policy, its control channel. */
static pid_t start(sup *s, const sigset_t *oldmask) {
    char err[512];
    int fd = -1, ctl[2] = {-1, -1};
    s->starts++;
    s->cur = s->spool_dir[0] ? qs_spool_create(s->spool_dir, s->installation, s->run, s->starts,
                                               qs_real_ns(), s->crash_ns, &fd, err, sizeof err)
                             : NULL;
    if (!s->cur && s->spool_dir[0])
        logev("spool-error %s (the program runs without one: its reports are not kept)", err);
    if (s->cur)
        qs_spool_on_event(s->cur, on_record, s);
    s->cur_fd = fd;
    if (s->deferred) { /* the plan change it starts with */
        spool_record(s, s->deferred);
        free(s->deferred);
        s->deferred = NULL;
    }
    int sfd = make_stats(s);
    if (s->o->policy && pipe2(ctl, O_CLOEXEC) < 0)
        logev("control-error cannot make a pipe: %s (plans cannot be pushed)", strerror(errno));
    if (ctl[1] >= 0)
        fcntl(ctl[1], F_SETFL, O_NONBLOCK); /* the supervisor never waits on the program */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        if (sfd >= 0)
            close(sfd);
        if (ctl[0] >= 0)
            close(ctl[0]);
        s->ctl_fd = pid > 0 ? ctl[1] : -1;
        if (pid < 0 && ctl[1] >= 0)
            close(ctl[1]);
        return pid;
    }
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    /* when the supervisor is gone, the program is asked to stop: a new
     * supervisor starts it again, and finds what it wrote in the spool */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(QS_EXIT_NOEXEC);
    if (s->listen_fd >= 0) {
        int keep[3] = {fd, sfd, ctl[0]};
        if (qs_listen_pass(s->listen_fd, keep, 3) < 0) {
            fprintf(stderr, "quarantine: run: cannot pass the listening socket: %s\n",
                    strerror(errno));
            _exit(QS_EXIT_NOEXEC);
        }
        fd = keep[0], sfd = keep[1], ctl[0] = keep[2];
    }
    char num[16];
    if (fd >= 0) {
        snprintf(num, sizeof num, "%d", fd);
        setenv("QTN_REPORT_FD", num, 1);
        fcntl(fd, F_SETFD, 0); /* inherited across exec */
    } else {
        unsetenv("QTN_REPORT_FD");
    }
    if (sfd >= 0) {
        snprintf(num, sizeof num, "%d", sfd);
        setenv("QTN_STATS_FD", num, 1);
        fcntl(sfd, F_SETFD, 0);
    } else {
        unsetenv("QTN_STATS_FD");
    }
    if (ctl[0] >= 0) {
        snprintf(num, sizeof num, "%d", ctl[0]);
        setenv("QTN_CONTROL_FD", num, 1);
        fcntl(ctl[0], F_SETFD, 0);
    } else {
        unsetenv("QTN_CONTROL_FD");
    }
    if (s->start_plan[0])
        setenv("QTN_PLAN", s->start_plan, 1);
    char nth[16]; /* which start this is: 1, then 2 after the first restart, ... */
    snprintf(nth, sizeof nth, "%d", s->starts);
    setenv("QTN_RUN_START", nth, 1);
    if (s->o->stats_ms >= 0) {
        snprintf(num, sizeof num, "%d", s->o->stats_ms);
        setenv("QTN_STATS_MS", num, 1);
    }
    char **argv = s->o->argv;
    execvp(argv[0], argv);
    fprintf(stderr, "quarantine: run: cannot start %s: %s\n", argv[0], strerror(errno));
    _exit(QS_EXIT_NOEXEC);
}

/* ---- the policy ------------------------------------------------------------- */

/* One record of the supervisor's own in the spool: stored with the rest,
 * exactly once. */
static void spool_record(sup *s, const char *json) {
    if (s->cur_fd >= 0 && (qs_record_write(s->cur_fd, json) < 0 || fdatasync(s->cur_fd) < 0))
        logev("spool-error spool=%s/%s error=\"%s\"", s->spool_dir,
              s->cur ? qs_spool_name(s->cur) : "?", strerror(errno));
}

static void json_str(char *out, size_t len, const char *s) {
    size_t n = 0;
    for (; *s && n + 7 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            n += (size_t)snprintf(out + n, len - n, "\\%c", c);
        else if (c < 0x20)
            n += (size_t)snprintf(out + n, len - n, "\\u%04x", c);
        else
            out[n++] = (char)c;
    }
    out[n] = 0;
}

/* Stores a plan change (a record in the spool: the running program's, or,
 * decided between two starts, the next one's) and logs it. */
static void record_plan(sup *s, const qs_decision *d, const char *from, int pid) {
    s->seq++;
    size_t cap = 16384;
    char *js = malloc(cap), *f = malloc(4096 * 6), *t = f + 4096 * 2, *r = t + 4096 * 2;
    if (!js || !f) {
        free(js);
        free(f);
        return;
    }
    json_str(f, 4096 * 2, from);
    json_str(t, 4096 * 2, d->plan);
    json_str(r, 4096 * 2, d->reason);
    snprintf(js, cap,
             "{\"type\":\"plan\",\"seq\":%lld,\"time_ns\":%lld,\"pid\":%d,\"mode\":\"%s\","
             "\"from\":\"%s\",\"to\":\"%s\",\"reason\":\"%s\",\"numbers\":%s}",
             (long long)s->seq, (long long)qs_real_ns(), pid, qp_mode_name(s->o->set.mode), f, t, r,
             d->numbers);
    logev("plan pid=%d seq=%lld%s from=\"%s\" to=\"%s\" reason=\"%s\"",
          pid ? pid : (int)s->last_pid, (long long)s->seq, pid ? "" : " when=restart", from,
          d->plan, d->reason);
    if (pid) {
        spool_record(s, js);
        free(js);
    } else {
        free(s->deferred);
        s->deferred = js;
    }
    free(f);
}

/* Decides; `restarting`: for the program about to start again. Returns 1
 * when the plan changes (the new one in d), 0 when not, -1 when it could
 * not decide (said once). */
static int decide(sup *s, int restarting, qs_decision *d) {
    char err[512];
    if (!store(s))
        return -1;
    memset(d, 0, sizeof *d);
    int r = qs_decide(s->store, s->installation, s->build, s->plan,
                      s->o->backoff_ms / 1000.0, restarting, qs_real_ns(), &s->o->set, d, err,
                      sizeof err);
    if (r) {
        if (strcmp(s->said, err)) {
            logev("policy-error %s (the plan in force stays)", err);
            snprintf(s->said, sizeof s->said, "%s", err);
        }
        return -1;
    }
    if (strcmp(d->capped, s->capped)) {
        if (d->capped[0])
            logev("budget pid=%d note=\"%s\"", (int)(s->pid ? s->pid : s->last_pid), d->capped);
        snprintf(s->capped, sizeof s->capped, "%s", d->capped);
    }
    return d->res.changed;
}

/* Decides and, if the plan changes, pushes it into the running program. */
static void replan(sup *s) {
    s->dirty = 0;
    if (!s->o->policy || s->pending || s->ctl_fd < 0 || !s->runtime)
        return;
    qs_decision d;
    /* the plan this program started with was decided without the fleet's
     * evidence: the first decision with it is part of the start, as after
     * a crash (no dwell), not a change of mind */
    int first = s->fleet_first;
    s->fleet_first = 0;
    if (decide(s, first, &d) == 1) {
        record_plan(s, &d, s->plan, (int)s->pid);
        char *line = malloc(strlen(d.plan) + 64);
        int n = line ? sprintf(line, "plan %lld %s\n", (long long)s->seq, d.plan) : -1;
        ssize_t w = n > 0 ? write(s->ctl_fd, line, (size_t)n) : -1;
        free(line);
        if (w != n) {
            logev("control-error pid=%d error=\"%s\" (the program keeps its plan)", (int)s->pid,
                  w < 0 && errno == EAGAIN ? "it does not read its control channel"
                                           : strerror(w < 0 ? errno : EIO));
            close(s->ctl_fd);
            s->ctl_fd = -1;
        } else {
            s->pending = s->seq;
            s->pushed_at = qs_mono_s();
            snprintf(s->pending_plan, sizeof s->pending_plan, "%s", d.plan);
        }
    }
    qs_decision_free(&d);
}

/* ---- the table ---------------------------------------------------------------- */

static int finish(sup *s, int code) {
    s->code = code;
    return ST_DONE;
}

static int forward(sup *s, const evdata *e) {
    if (s->pid > 0)
        kill(s->pid, e->status);
    logev("signal signal=SIG%s forwarded_to=%d", sigabbrev_np(e->status), (int)s->pid);
    return -1; /* stays */
}

static int on_exited(sup *s, const evdata *e) {
    ended(s, e->pid, e->status);
    s->pid = 0;
    logev("exit pid=%d status=%d", e->pid, WEXITSTATUS(e->status));
    return finish(s, WEXITSTATUS(e->status));
}

static int on_stop(sup *s, const evdata *e) {
    forward(s, e);
    s->stop_sig = e->status;
    return ST_STOPPING;
}

static int on_stopped(sup *s, const evdata *e) {
    ended(s, e->pid, 0); /* stopped as asked: not a crash */
    s->pid = 0;
    if (WIFSIGNALED(e->status))
        logev("stopped pid=%d signal=SIG%s", e->pid, sigabbrev_np(WTERMSIG(e->status)));
    else
        logev("stopped pid=%d status=%d", e->pid, WEXITSTATUS(e->status));
    return finish(s, 128 + s->stop_sig);
}

static int on_stop_idle(sup *s, const evdata *e) {
    logev("signal signal=SIG%s (the program is not running: it is not started again)",
          sigabbrev_np(e->status));
    return finish(s, 128 + e->status);
}

/* Crashes within the window in list v (n long), dropping older ones. */
static int recent(double *v, int *n, double t, double window) {
    int k = 0;
    for (int i = 0; i < *n; i++)
        if (t - v[i] <= window)
            v[k++] = v[i];
    *n = k;
    return k;
}

static int on_crashed(sup *s, const evdata *e) {
    int sig = WTERMSIG(e->status);
    double t = qs_mono_s();
    const qs_sup_opts *o = s->o;
    if (t - s->started > o->window_s)
        s->delay_ms = o->backoff_ms; /* it ran well for a while: start over */
    int counted = recent(s->crashes, &s->ncrash, t, o->window_s);
    int forgiven = recent(s->grace, &s->ngrace, t, o->window_s);
    logev("crash pid=%d signal=SIG%s restarts=%d", e->pid, sigabbrev_np(sig), counted);
    ended(s, e->pid, e->status);
    s->last_pid = s->pid;
    s->pid = 0;
    s->crash_ns = qs_real_ns();
    s->runtime = 0;
    /* the plan it starts again with: the crash is evidence too */
    snprintf(s->start_plan, sizeof s->start_plan, "%s", s->plan);
    int progress = 0;
    qs_decision d;
    if (o->policy && s->build[0] && decide(s, 1, &d) >= 0) {
        if (d.res.changed) {
            snprintf(s->start_plan, sizeof s->start_plan, "%s", d.plan);
            record_plan(s, &d, s->plan, 0); /* written to the spool of the next start */
            progress = forgiven < o->max_restarts;
        }
        qs_decision_free(&d);
    }
    if (progress) { /* a crash after which the plan changed is progress, not a loop */
        s->grace[s->ngrace++] = t;
    } else {
        if (counted >= o->max_restarts) {
            logev("give-up restarts=%d window=%gs", counted, o->window_s);
            fprintf(stderr, "quarantine: run: %s crashed %d time%s within %g s: not starting it "
                            "again\n",
                    o->argv[0], counted + 1, counted ? "s" : "", o->window_s);
            return finish(s, QS_EXIT_GAVE_UP);
        }
        s->crashes[s->ncrash++] = t;
    }
    s->restart_at = t + s->delay_ms / 1000.0;
    s->delay_ms = s->delay_ms * 2 > 5000 ? 5000 : s->delay_ms * 2;
    return ST_BACKOFF;
}

static sigset_t g_oldmask;

static int on_restart(sup *s, const evdata *e) {
    (void)e;
    s->pid = start(s, &g_oldmask);
    s->started = qs_mono_s();
    logev("start pid=%d program=%s%s%s%s", (int)s->pid, s->o->argv[0],
          s->start_plan[0] ? " plan=\"" : "", s->start_plan, s->start_plan[0] ? "\"" : "");
    return ST_STARTING;
}

static int on_hello(sup *s, const evdata *e) {
    s->runtime = 1;
    s->said_no_runtime = 0;
    s->hello_at = qs_mono_s();
    snprintf(s->build, sizeof s->build, "%s", e->build);
    return -1;
}

/* The program ready with a known plan: from now on the policy acts. */
static int up(sup *s, const char *plan) {
    snprintf(s->plan, sizeof s->plan, "%s", plan);
    replan(s);
    return ST_UP;
}

static int on_first_ack(sup *s, const evdata *e) {
    if (e->seq != 0 || !e->ok)
        return -1;
    return up(s, e->plan);
}

static int on_starting_tick(sup *s, const evdata *e) {
    (void)e;
    if (s->runtime && qs_mono_s() - s->hello_at > READY_WAIT_S) /* an older runtime: no first answer */
        return up(s, s->start_plan);
    if (!s->runtime && s->o->policy && !s->said_no_runtime && qs_mono_s() - s->started > READY_WAIT_S) {
        logev("policy pid=%d note=\"no runtime said hello: no plan is pushed (a program without "
              "libquarantine, or one that has not called qtn_init)\"",
              (int)s->pid);
        s->said_no_runtime = 1;
    }
    return -1;
}

static int on_ack(sup *s, const evdata *e) {
    if (e->seq <= 0 || e->seq != s->pending)
        return -1;
    s->pending = 0;
    if (e->ok)
        snprintf(s->plan, sizeof s->plan, "%s", e->plan);
    return -1;
}

static int on_evidence(sup *s, const evdata *e) {
    (void)e;
    s->dirty = 1;
    return -1;
}

static int on_fleet(sup *s, const evdata *e) {
    (void)e;
    if (s->fleet_pid != s->pid) {
        s->fleet_pid = s->pid;
        s->fleet_first = 1;
    }
    s->dirty = 1;
    return -1;
}

static int on_up_tick(sup *s, const evdata *e) {
    (void)e;
    if (s->pending && qs_mono_s() - s->pushed_at > ACK_TIMEOUT_S) {
        logev("plan-timeout pid=%d seq=%lld (no answer in %.0f s; the plan in force stays)",
              (int)s->pid, (long long)s->pending, ACK_TIMEOUT_S);
        s->pending = 0;
    }
    if (s->dirty)
        replan(s);
    return -1;
}

#define ANY_RUNNING ((1 << ST_STARTING) | (1 << ST_UP))

static const struct row {
    int states; /* bits of the states it applies in */
    event ev;
    int (*fn)(sup *s, const evdata *e); /* the next state, or -1: stays */
} rows[] = {
    {ANY_RUNNING, EV_EXITED, on_exited},
    {ANY_RUNNING, EV_CRASHED, on_crashed},
    {ANY_RUNNING, EV_STOP, on_stop},
    {ANY_RUNNING | 1 << ST_STOPPING, EV_HUP, forward},
    {1 << ST_STOPPING, EV_EXITED, on_stopped},
    {1 << ST_STOPPING, EV_CRASHED, on_stopped},
    {1 << ST_BACKOFF, EV_STOP, on_stop_idle},
    {1 << ST_BACKOFF, EV_TIMER, on_restart},
    {ANY_RUNNING, EV_HELLO, on_hello},
    {1 << ST_STARTING, EV_ACK, on_first_ack},
    {1 << ST_STARTING, EV_TICK, on_starting_tick},
    {1 << ST_UP, EV_ACK, on_ack},
    {1 << ST_UP, EV_EVIDENCE, on_evidence},
    {1 << ST_UP, EV_FLEET, on_fleet},
    {1 << ST_UP, EV_TICK, on_up_tick},
};

static void dispatch(sup *s, const evdata *e) {
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if ((rows[i].states & (1 << s->st)) && rows[i].ev == e->ev) {
            int next = rows[i].fn(s, e);
            if (next >= 0)
                s->st = (state)next;
            return;
        }
    /* not a row: nothing to do in this state */
}

/* ---- setting up and the loop --------------------------------------------------- */

/* Spool files live beside the store (`STORE.spool/`), so a later supervisor
 * finds what an earlier one left; when that folder cannot be made, in a
 * private temporary one, said. */
static void spool_dir(sup *s) {
    snprintf(s->spool_dir, sizeof s->spool_dir, "%s.spool", s->o->store_path);
    if (mkdir(s->spool_dir, 0700) == 0 || errno == EEXIST) {
        s->spool_ok = 1;
        return;
    }
    int e = errno;
    const char *tmp = getenv("TMPDIR");
    snprintf(s->spool_dir, sizeof s->spool_dir, "%s/quarantine-spool-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->spool_dir))
        s->spool_dir[0] = 0;
    logev("spool-error cannot make %s.spool: %s; spooling in %s", s->o->store_path, strerror(e),
          s->spool_dir[0] ? s->spool_dir : "(nowhere)");
}

static int wrap_up(sup *s) {
    if (s->outbox && s->store) /* its shipper may hold the outbox a moment: the program is gone */
        qs_busy_ms(s->store, 2000);
    tick(s);
    for (int i = 0; i < s->nold; i++) {
        if (s->spool_ok)
            logev("held spool=%s/%s (the next quarantine run with this store stores it)",
                  s->spool_dir, qs_spool_name(s->old[i]));
        else
            logev("unstored spool=%s/%s (no store could take it; the records stay there)",
                  s->spool_dir, qs_spool_name(s->old[i]));
        qs_spool_close(s->old[i]);
    }
    qm_stop(s->metrics);
    qs_close(s->store);
    qf_outbox_stop(s->outbox, FLUSH_MS);
    free(s->crashes);
    free(s->grace);
    if (s->ctl_fd >= 0)
        close(s->ctl_fd);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s->deferred);
    return s->code;
}

/* Before the program starts: an endpoint asked for that cannot be served
 * (err says which and why) ends the run with QS_EXIT_USAGE, undoing what
 * qs_supervise set up so far. */
static int refuse(sup *s, int sfd, const char *err) {
    fprintf(stderr, "quarantine: run: %s\n", err);
    sigprocmask(SIG_SETMASK, &g_oldmask, NULL);
    if (sfd >= 0)
        close(sfd);
    qm_stop(s->metrics);
    qs_close(s->store);
    free(s->crashes);
    free(s->grace);
    return QS_EXIT_USAGE;
}

int qs_supervise(const qs_sup_opts *o) {
    static sup S;
    sup *s = &S;
    memset(s, 0, sizeof *s);
    s->o = o;
    s->cur_fd = s->ctl_fd = s->listen_fd = -1;
    s->delay_ms = o->backoff_ms;
    snprintf(s->installation, sizeof s->installation, "%s", o->installation ? o->installation : "");
    if (!s->installation[0] && gethostname(s->installation, sizeof s->installation - 1))
        strcpy(s->installation, "unknown");
    snprintf(s->run, sizeof s->run, "%lld.%09lld-%d", (long long)(qs_real_ns() / 1000000000LL),
             (long long)(qs_real_ns() % 1000000000LL), (int)getpid());
    const char *plan = getenv("QTN_PLAN");
    snprintf(s->start_plan, sizeof s->start_plan, "%s", plan ? plan : "");
    s->crashes = calloc((size_t)o->max_restarts + 1, sizeof *s->crashes);
    s->grace = calloc((size_t)o->max_restarts + 1, sizeof *s->grace);
    if (!s->crashes || !s->grace) {
        fprintf(stderr, "quarantine: run: out of memory\n");
        free(s->crashes);
        free(s->grace);
        return QS_EXIT_NOEXEC;
    }
    store(s); /* said now if it cannot be opened; the program runs all the same */
    spool_dir(s);
    if (o->fleet_uri) {
        qf_outbox_opts fo = {o->fleet_uri, o->store_path, s->installation, o->set.half_life_s,
                             o->fleet_refresh_ms};
        if (!(s->outbox = qf_outbox_start(&fo)))
            logev("fleet-error cannot start the shipper: %s (records stay in the outbox %s)",
                  strerror(errno), o->store_path);
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGPIPE); /* a program that closes its control channel: EPIPE, said */
    sigprocmask(SIG_BLOCK, &mask, &g_oldmask);
    sigdelset(&mask, SIGPIPE);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (o->metrics) { /* its threads start with those signals blocked: they stay fds */
        char where[96], err[512];
        s->metrics = qm_serve(o->metrics, where, sizeof where, err, sizeof err);
        if (!s->metrics)
            return refuse(s, sfd, err);
        metrics(s); /* a scrape never finds nothing */
        logev("metrics listen=%s path=/metrics", where);
    }
    if (o->listen) {
        char where[96], err[512];
        if ((s->listen_fd = qs_listen(o->listen, where, sizeof where, err, sizeof err)) < 0)
            return refuse(s, sfd, err);
        logev("listen addr=%s fd=%d (held across restarts: LISTEN_FDS=1)", where, QS_LISTEN_FD);
    }
    /* a write to a spool file wakes the loop at once */
    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd >= 0 && s->spool_dir[0])
        inotify_add_watch(ifd, s->spool_dir, IN_MODIFY);
    tick(s); /* what earlier supervisors left */
    s->pid = start(s, &g_oldmask);
    s->started = qs_mono_s();
    s->st = ST_STARTING;
    char where[512] = "";
    if (o->fleet_uri)
        qf_where(o->fleet_uri, where, sizeof where);
    logev("start pid=%d program=%s store=%s%s%s%s%s%s", (int)s->pid, o->argv[0],
          o->fleet_uri ? where : o->store_path, o->fleet_uri ? " outbox=" : "",
          o->fleet_uri ? o->store_path : "", s->start_plan[0] ? " plan=\"" : "", s->start_plan,
          s->start_plan[0] ? "\"" : "");
    s->metrics_at = 0; /* the start counted at once */
    metrics(s);
    double last_tick = qs_mono_s();
    while (s->st != ST_DONE) {
        int timeout = 1000;
        if (s->st == ST_BACKOFF) {
            double left = s->restart_at - qs_mono_s();
            timeout = left <= 0 ? 0 : left < 1 ? (int)(left * 1000) + 1 : 1000;
        }
        struct pollfd p[3] = {{.fd = sfd, .events = POLLIN},
                              {.fd = ifd, .events = POLLIN},
                              {.fd = s->outbox ? qf_outbox_fd(s->outbox) : -1, .events = POLLIN}};
        if (poll(p, 3, timeout) < 0 && errno != EINTR)
            break;
        if (p[2].revents & POLLIN) { /* the fleet's evidence changed */
            qf_outbox_seen(s->outbox);
            evdata e = {.ev = EV_FLEET};
            push_event(s, &e);
        }
        if (p[1].revents & POLLIN) {
            char ev[4096];
            while (read(ifd, ev, sizeof ev) > 0)
                ;
        }
        tick(s);
        metrics(s);
        if (p[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == sizeof si) {
                if (si.ssi_signo != SIGCHLD) {
                    evdata e = {.ev = si.ssi_signo == SIGHUP ? EV_HUP : EV_STOP,
                                .status = (int)si.ssi_signo};
                    push_event(s, &e);
                }
                int st;
                pid_t w;
                while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
                    if (w != s->pid)
                        continue; /* an orphan we adopted: nothing to do */
                    evdata e = {.ev = WIFEXITED(st) ? EV_EXITED : EV_CRASHED, .status = st,
                                .pid = (int)w};
                    push_event(s, &e);
                }
            }
        }
        if (s->st == ST_BACKOFF && qs_mono_s() >= s->restart_at) {
            evdata e = {.ev = EV_TIMER};
            push_event(s, &e);
        }
        if (qs_mono_s() - last_tick >= 1) {
            last_tick = qs_mono_s();
            evdata e = {.ev = EV_TICK};
            push_event(s, &e);
        }
        /* events may add events (a crash imports the last records) */
        for (int i = 0; i < s->nq && s->st != ST_DONE; i++) {
            evdata e = s->q[i];
            dispatch(s, &e);
        }
        s->nq = 0;
    }
    return wrap_up(s);
}
