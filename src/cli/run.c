/* run.c - `quarantine run`: starts a program, restarts it when it crashes
 * (with backoff, and a restart-intensity limit as an Erlang/OTP supervisor
 * has), forwards SIGTERM, SIGINT and SIGHUP to it, and stores what its
 * runtime hands over through a spool file (QTN_REPORT_FD; see
 * src/qis/spool.h), logging each fault.
 *
 * Written as s6-supervise is: signals arrive as fd events (signalfd), one
 * loop reacts to them, no work is done in a handler. One event per line on
 * stderr: `quarantine: run: event=NAME key=value ...`. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../qis/spool.h"
#include "../qis/store.h"
#include "cli.h"

enum { EXIT_GAVE_UP = 111, EXIT_NOEXEC = 127 };

static void help(FILE *f) {
    fputs("usage: quarantine run [options] -- PROGRAM [ARGS...]\n"
          "\n"
          "Runs PROGRAM and keeps it running: when it crashes (dies of a signal), it is\n"
          "started again after a backoff, unless it crashed more than --max-restarts\n"
          "times within --window seconds. SIGTERM, SIGINT and SIGHUP are passed on to\n"
          "it; after SIGTERM or SIGINT it is not restarted. When PROGRAM exits by\n"
          "itself, quarantine run exits with its status.\n"
          "\n"
          "Everything the program's runtime hands over goes to the store: the fault\n"
          "reports of its isolated components, statistics snapshots, and the record of\n"
          "a crash of the program itself, whose frames are named and attributed to the\n"
          "components whose code they are in. A program without the runtime is\n"
          "supervised all the same; its crashes are stored from its exit status.\n"
          "Records are written to a spool file beside the store (STORE.spool/) first:\n"
          "when the store is locked or read-only they wait there and are stored later,\n"
          "and if this supervisor is killed, the next one with the same store stores\n"
          "what it left, each record once.\n"
          "\n"
          "The program finds QTN_RUN_START in its environment: 1 for the first start,\n"
          "2 after the first restart, and so on.\n"
          "\n"
          "options:\n"
          "  --max-restarts N      crashes allowed within the window (default 5)\n"
          "  --window SECONDS      the window (default 60)\n"
          "  --backoff-ms MS       first delay before a restart, doubled each time up to\n"
          "                        5000 (default 100)\n"
          "  --store PATH          the store (default: $QTN_STORE, else\n"
          "                        ~/.local/state/quarantine/store.db); `quarantine\n"
          "                        report` reads it\n"
          "  --installation ID     names this installation in the store (default: hostname)\n"
          "  --stats-interval S    seconds between statistics snapshots (default 10; 0:\n"
          "                        one when the program ends)\n"
          "  --keep-spool          keep each spool file once stored, as NAME.imported\n"
          "                        (to audit what was handed over)\n"
          "\n"
          "Log lines go to stderr, one event per line:\n"
          "  quarantine: run: event=start pid=4242 program=./server\n"
          "  quarantine: run: event=fault pid=4242 domain=1 kind=signal component=codec ...\n"
          "  quarantine: run: event=crash pid=4242 signal=SIGSEGV restarts=1\n"
          "  quarantine: run: event=host-crash pid=4242 signal=SIGSEGV component=render ...\n"
          "\n"
          "examples:\n"
          "  quarantine run -- ./server --port 8080\n"
          "  QTN_PLAN='codec=1' quarantine run --max-restarts 10 --window 30 -- ./server\n"
          "  quarantine run --store /var/lib/server/quarantine.db -- ./server\n"
          "\n"
          "exit codes: the program's own when it exits; 128+N when it was stopped by a\n"
          "forwarded signal N; 111 when it crashed too often; 127 when it cannot be\n"
          "started; 2 for bad usage\n",
          f);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void logev(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logev(const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    fprintf(stderr, "quarantine: run: event=%s\n", line);
}

typedef struct sup {
    qs_store *store;
    const char *store_path;
    char spool_dir[4200];
    int spool_ok;           /* spool_dir is beside the store */
    char installation[128], run[64];
    char said[512];         /* the store error said last: said once */
    qs_spool *cur;          /* the running program's spool */
    int cur_fd;             /* its append-only fd (the program has it too) */
    qs_spool *old[16];      /* spools whose import is not finished */
    int nold;
    int starts;
    int stats_ms;           /* QTN_STATS_MS for the program; -1: its default */
    int keep_spool;         /* imported spool files are kept, renamed */
} sup;

static void log_cb(void *ctx, const char *line) {
    (void)ctx;
    logev("%s", line);
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
    s->store = qs_open(s->store_path, 0, err, sizeof err);
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
    int r = qs_spool_finish(sp, st, s->keep_spool, log_cb, s, err, sizeof err);
    if (r < 0)
        store_error(s, err);
    return r == 1;
}

/* Spool files left by a supervisor that was killed, whose writers are gone:
 * imported and removed. */
static void adopt_leftovers(sup *s) {
    int max = (int)(sizeof s->old / sizeof s->old[0]);
    DIR *d = s->spool_ok && s->nold < max ? opendir(s->spool_dir) : NULL;
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && s->nold < max) {
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

/* A crash of a program that had no spool file: stored straight away. */
static void crash_unspooled(sup *s, int pid, int sig, long long t) {
    char err[512];
    if (!store(s) || qs_put_exit_crash(s->store, s->installation, s->run, pid, sig, t, err,
                                       sizeof err) < 0)
        logev("unstored crash pid=%d signal=SIG%s", pid, sigabbrev_np(sig));
}

/* The program ended: its last records, and the supervisor's own. */
static void ended(sup *s, int pid, int st) {
    struct timespec w;
    clock_gettime(CLOCK_REALTIME, &w);
    long long t = (long long)w.tv_sec * 1000000000LL + w.tv_nsec;
    if (!s->cur) {
        if (WIFSIGNALED(st))
            crash_unspooled(s, pid, WTERMSIG(st), t);
        return;
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
    else if (s->nold < (int)(sizeof s->old / sizeof s->old[0]))
        s->old[s->nold++] = s->cur; /* finished later */
    else
        qs_spool_close(s->cur);
    s->cur = NULL;
}

/* Starts the program with its spool file as QTN_REPORT_FD. */
static pid_t start(sup *s, char **argv, const sigset_t *oldmask) {
    char err[512];
    int fd = -1;
    s->starts++;
    s->cur = s->spool_dir[0] ? qs_spool_create(s->spool_dir, s->installation, s->run,
                                               s->starts, &fd, err, sizeof err)
                             : NULL;
    if (!s->cur && s->spool_dir[0])
        logev("spool-error %s (the program runs without one: its reports are not kept)", err);
    s->cur_fd = fd;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    /* when the supervisor is gone, the program is asked to stop: a new
     * supervisor starts it again, and finds what it wrote in the spool */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(EXIT_NOEXEC);
    if (fd >= 0) {
        char num[16];
        snprintf(num, sizeof num, "%d", fd);
        setenv("QTN_REPORT_FD", num, 1);
        fcntl(fd, F_SETFD, 0); /* inherited across exec */
    } else {
        unsetenv("QTN_REPORT_FD");
    }
    char nth[16]; /* which start this is: 1, then 2 after the first restart, ... */
    snprintf(nth, sizeof nth, "%d", s->starts);
    setenv("QTN_RUN_START", nth, 1);
    if (s->stats_ms >= 0) {
        char num[16];
        snprintf(num, sizeof num, "%d", s->stats_ms);
        setenv("QTN_STATS_MS", num, 1);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "quarantine: run: cannot start %s: %s\n", argv[0], strerror(errno));
    _exit(EXIT_NOEXEC);
}

static int finish(sup *s, int code) {
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
    qs_close(s->store);
    return code;
}

static const char *default_store(char *buf, size_t len) {
    const char *e = getenv("QTN_STORE");
    if (e && *e)
        return e;
    const char *home = getenv("HOME");
    snprintf(buf, len, "%s/.local/state/quarantine", home && *home ? home : ".");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.local", home && *home ? home : ".");
    mkdir(tmp, 0700);
    snprintf(tmp, sizeof tmp, "%s/.local/state", home && *home ? home : ".");
    mkdir(tmp, 0700);
    mkdir(buf, 0700);
    strncat(buf, "/store.db", len - strlen(buf) - 1);
    return buf;
}

/* Spool files live beside the store (`STORE.spool/`), so a later supervisor
 * finds what an earlier one left; when that folder cannot be made, in a
 * private temporary one, said. */
static void spool_dir(sup *s) {
    snprintf(s->spool_dir, sizeof s->spool_dir, "%s.spool", s->store_path);
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
    logev("spool-error cannot make %s.spool: %s; spooling in %s", s->store_path, strerror(e),
          s->spool_dir[0] ? s->spool_dir : "(nowhere)");
}

int qtn_cli_run(int argc, char **argv) {
    int max_restarts = 5, backoff_ms = 100;
    double window = 60, stats_s = -1;
    static sup S;
    S.stats_ms = -1;
    char defstore[4200];
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return QTN_EXIT_OK;
        }
        char *end = NULL;
        if (i + 1 < argc && !strcmp(a, "--max-restarts"))
            max_restarts = (int)strtol(argv[++i], &end, 10);
        else if (i + 1 < argc && !strcmp(a, "--window"))
            window = strtod(argv[++i], &end);
        else if (i + 1 < argc && !strcmp(a, "--backoff-ms"))
            backoff_ms = (int)strtol(argv[++i], &end, 10);
        else if (!strcmp(a, "--keep-spool")) {
            S.keep_spool = 1;
            continue;
        } else if (i + 1 < argc && !strcmp(a, "--stats-interval"))
            stats_s = strtod(argv[++i], &end);
        else if (i + 1 < argc && !strcmp(a, "--store")) {
            S.store_path = argv[++i];
            continue;
        } else if (i + 1 < argc && !strcmp(a, "--installation")) {
            snprintf(S.installation, sizeof S.installation, "%s", argv[++i]);
            continue;
        } else {
            fprintf(stderr, "quarantine: run: unknown option '%s' (try quarantine run --help)\n", a);
            return QTN_EXIT_USAGE;
        }
        if (*end || max_restarts < 0 || window <= 0 || backoff_ms < 0 ||
            (!strcmp(a, "--stats-interval") && (stats_s < 0 || stats_s > 86400))) {
            fprintf(stderr, "quarantine: run: %s needs a non-negative number, not '%s'\n", a,
                    argv[i]);
            return QTN_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "quarantine: run: say what to run after -- (try quarantine run --help)\n");
        return QTN_EXIT_USAGE;
    }
    char **prog = argv + i;
    if (stats_s >= 0)
        S.stats_ms = (int)(stats_s * 1000);
    if (!S.installation[0] && gethostname(S.installation, sizeof S.installation - 1))
        strcpy(S.installation, "unknown");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(S.run, sizeof S.run, "%lld.%09ld-%d", (long long)now.tv_sec, now.tv_nsec,
             (int)getpid());
    if (!S.store_path)
        S.store_path = default_store(defstore, sizeof defstore);
    store(&S); /* said now if it cannot be opened; the program runs all the same */
    spool_dir(&S);
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, &old);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    /* a write to a spool file wakes the loop at once */
    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd >= 0 && S.spool_dir[0])
        inotify_add_watch(ifd, S.spool_dir, IN_MODIFY);
    double *crashes = calloc((size_t)max_restarts + 1, sizeof *crashes);
    int ncrash = 0, delay = backoff_ms, stopping = 0;
    tick(&S); /* what earlier supervisors left */
    pid_t pid = start(&S, prog, &old);
    logev("start pid=%d program=%s store=%s", (int)pid, prog[0], S.store_path);
    double started = now_s();
    for (;;) {
        struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = ifd, .events = POLLIN}};
        if (poll(p, 2, 1000) < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN) {
            char ev[4096];
            while (read(ifd, ev, sizeof ev) > 0)
                ;
        }
        tick(&S);
        if (!(p[0].revents & POLLIN))
            continue;
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof si) != sizeof si)
            continue;
        if (si.ssi_signo != SIGCHLD) { /* pass it on */
            if (pid > 0)
                kill(pid, (int)si.ssi_signo);
            logev("signal signal=SIG%s forwarded_to=%d", sigabbrev_np((int)si.ssi_signo),
                  (int)pid);
            if (si.ssi_signo != SIGHUP)
                stopping = (int)si.ssi_signo;
            continue;
        }
        int st;
        pid_t w;
        while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
            if (w != pid)
                continue; /* an orphan we adopted: nothing to do */
            if (WIFEXITED(st)) {
                ended(&S, (int)pid, st);
                logev("exit pid=%d status=%d", (int)pid, WEXITSTATUS(st));
                free(crashes);
                return finish(&S, WEXITSTATUS(st));
            }
            int sig = WTERMSIG(st);
            if (stopping) {
                ended(&S, (int)pid, 0); /* stopped as asked: not a crash */
                logev("stopped pid=%d signal=SIG%s", (int)pid, sigabbrev_np(sig));
                free(crashes);
                return finish(&S, 128 + stopping);
            }
            double t = now_s();
            if (t - started > window)
                delay = backoff_ms; /* it ran well for a while: start over */
            int recent = 0;
            for (int k = 0; k < ncrash; k++)
                recent += t - crashes[k] <= window;
            logev("crash pid=%d signal=SIG%s restarts=%d", (int)pid, sigabbrev_np(sig),
                  recent);
            ended(&S, (int)pid, st);
            if (recent >= max_restarts) {
                logev("give-up restarts=%d window=%gs", recent, window);
                fprintf(stderr, "quarantine: run: %s crashed %d times within %g s: not "
                                "starting it again\n",
                        prog[0], recent + 1, window);
                free(crashes);
                return finish(&S, EXIT_GAVE_UP);
            }
            if (ncrash == max_restarts + 1) {
                memmove(crashes, crashes + 1, (size_t)max_restarts * sizeof *crashes);
                ncrash--;
            }
            crashes[ncrash++] = t;
            struct timespec d = {delay / 1000, (long)(delay % 1000) * 1000000};
            nanosleep(&d, NULL);
            delay = delay * 2 > 5000 ? 5000 : delay * 2;
            pid = start(&S, prog, &old);
            started = now_s();
            logev("start pid=%d program=%s", (int)pid, prog[0]);
        }
    }
    free(crashes);
    return finish(&S, QTN_EXIT_OUTPUT);
}
