/* run.c - `quarantine run`: starts a program, restarts it when it crashes
 * (with backoff, and a restart-intensity limit as an Erlang/OTP supervisor
 * has), forwards SIGTERM, SIGINT and SIGHUP to it, and relays the fault
 * reports its runtime writes (QTN_REPORT_FD) as log lines.
 *
 * Written as s6-supervise is: signals arrive as fd events (signalfd), one
 * loop reacts to them, no work is done in a handler. One event per line on
 * stderr: `quarantine: run: event=NAME key=value ...`. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
          "itself, quarantine run exits with its status. The fault reports of its\n"
          "isolated components (the runtime writes them to QTN_REPORT_FD) are logged.\n"
          "\n"
          "options:\n"
          "  --max-restarts N   crashes allowed within the window (default 5)\n"
          "  --window SECONDS   the window (default 60)\n"
          "  --backoff-ms MS    first delay before a restart, doubled each time up to\n"
          "                     5000 (default 100)\n"
          "  --store PATH       the store the reports go to (default: $QTN_STORE, else\n"
          "                     ~/.local/state/quarantine/store.db); `quarantine report`\n"
          "                     reads it\n"
          "  --installation ID  names this installation in the store (default: hostname)\n"
          "\n"
          "Log lines go to stderr, one event per line:\n"
          "  quarantine: run: event=start pid=4242 program=./server\n"
          "  quarantine: run: event=crash pid=4242 signal=SIGSEGV restarts=1\n"
          "  quarantine: run: event=fault pid=4242 domain=1 kind=signal component=codec ...\n"
          "\n"
          "examples:\n"
          "  quarantine run -- ./server --port 8080\n"
          "  QTN_PLAN='codec=1' quarantine run --max-restarts 10 --window 30 -- ./server\n"
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

struct sup;
static void store_line(struct sup *s, int pid, const char *line);

/* Starts the program with the write end of the report pipe as QTN_REPORT_FD. */
static pid_t start(char **argv, int report_w, const sigset_t *oldmask) {
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    char fd[16];
    snprintf(fd, sizeof fd, "%d", report_w);
    setenv("QTN_REPORT_FD", fd, 1);
    fcntl(report_w, F_SETFD, 0); /* inherited across exec */
    execvp(argv[0], argv);
    fprintf(stderr, "quarantine: run: cannot start %s: %s\n", argv[0], strerror(errno));
    _exit(EXIT_NOEXEC);
}

/* Logs each complete report line read so far. */

static void relay(int fd, char *buf, size_t *len, size_t cap, struct sup *s, int pid) {
    for (;;) {
        ssize_t n = read(fd, buf + *len, cap - 1 - *len);
        if (n <= 0)
            return;
        *len += (size_t)n;
        buf[*len] = 0;
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = 0;
            if (*line)
                store_line(s, pid, line);
            line = nl + 1;
        }
        *len = strlen(line);
        memmove(buf, line, *len + 1);
        if (*len == cap - 1)
            *len = 0; /* a line longer than the buffer: drop it rather than stall */
    }
}

/* A field of one of the runtime's report lines: a number, or a string
 * unescaped into buf. Returns 0 if absent. */
static int field(const char *js, const char *key, char *buf, size_t len, long long *num) {
    char pat[48];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(js, pat);
    if (!p)
        return 0;
    p += strlen(pat);
    if (*p != '"') {
        char *end;
        *num = strtoll(p, &end, 10);
        return end != p;
    }
    size_t n = 0;
    for (p++; *p && *p != '"' && n + 1 < len; p++) {
        if (*p == '\\' && p[1])
            p++;
        buf[n++] = *p;
    }
    buf[n] = 0;
    return *p == '"';
}

typedef struct sup {
    qs_store *store;
    const char *store_path;
    char installation[128], run[64];
    char *pending[64]; /* report lines the store could not take yet */
    int npending;
    int pid;           /* the program process running now */
} sup;

/* Stores one report line of program `pid` (once); keeps it for a retry when
 * the store cannot take it now. */
static void store_line(sup *s, int pid, const char *line) {
    char kind[32], comp[64], entry[64], reason[256], err[512];
    long long seq = -1, t = 0, sig = 0, dom = 0, rec = 0, failed = 0, rpid = 0, dummy;
    if (!field(line, "report", NULL, 0, &seq) || !field(line, "kind", kind, sizeof kind, &dummy) ||
        !field(line, "time_ns", NULL, 0, &t)) {
        logev("bad-report line=%.200s", line);
        return;
    }
    field(line, "pid", NULL, 0, &rpid);
    if (!field(line, "component", comp, sizeof comp, &dummy))
        comp[0] = 0;
    if (!field(line, "entry", entry, sizeof entry, &dummy))
        entry[0] = 0;
    if (!field(line, "reason", reason, sizeof reason, &dummy))
        reason[0] = 0;
    field(line, "signal", NULL, 0, &sig);
    field(line, "domain", NULL, 0, &dom);
    field(line, "recovery_ns", NULL, 0, &rec);
    field(line, "calls_failed", NULL, 0, &failed);
    logev("fault pid=%d domain=%lld domain_pid=%lld kind=%s component=%s entry=%s "
          "calls_failed=%lld recovery_ms=%.3f", pid, dom, rpid, kind, comp[0] ? comp : "-",
          entry[0] ? entry : "-", failed, rec / 1e6);
    qs_report r = {s->installation, s->run, pid, seq, t, kind, comp, entry, (int)sig, (int)dom,
                   rec, (int)failed, reason, line};
    if (!s->store || qs_put(s->store, &r, err, sizeof err) < 0) {
        if (s->store)
            logev("store-error %s", err);
        if (s->npending < (int)(sizeof s->pending / sizeof s->pending[0]))
            s->pending[s->npending++] = strdup(line);
        else
            logev("dropped report=%.200s", line);
    }
}

static void store_crash(sup *s, int pid, int seq, int sig) {
    struct timespec w;
    clock_gettime(CLOCK_REALTIME, &w);
    char reason[96], err[512];
    snprintf(reason, sizeof reason, "the program died of SIG%s", sigabbrev_np(sig));
    qs_report r = {s->installation, s->run, pid, seq, (int64_t)w.tv_sec * 1000000000 + w.tv_nsec,
                   "host-crash", "", "", sig, 0, 0, 0, reason, NULL};
    if (s->store && qs_put(s->store, &r, err, sizeof err) < 0)
        logev("store-error %s", err);
}

/* Reports held while the store could not take them: try again. */
static void retry_pending(sup *s) {
    if (!s->npending)
        return;
    char err[512];
    if (!s->store && !(s->store = qs_open(s->store_path, 0, err, sizeof err)))
        return;
    int n = s->npending;
    char *lines[64];
    memcpy(lines, s->pending, sizeof lines);
    s->npending = 0;
    for (int i = 0; i < n; i++) {
        store_line(s, s->pid, lines[i]);
        free(lines[i]);
    }
}

static int finish(sup *s, int code) {
    retry_pending(s);
    for (int i = 0; i < s->npending; i++) {
        logev("dropped report=%.200s", s->pending[i]);
        free(s->pending[i]);
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

int qtn_cli_run(int argc, char **argv) {
    int max_restarts = 5, backoff_ms = 100;
    double window = 60;
    static sup S;
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
        if (*end || max_restarts < 0 || window <= 0 || backoff_ms < 0) {
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
    if (!S.installation[0] && gethostname(S.installation, sizeof S.installation - 1))
        strcpy(S.installation, "unknown");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(S.run, sizeof S.run, "%lld-%d", (long long)now.tv_sec, (int)getpid());
    if (!S.store_path)
        S.store_path = default_store(defstore, sizeof defstore);
    char serr[512];
    S.store = qs_open(S.store_path, 0, serr, sizeof serr);
    if (!S.store) /* the program runs all the same; reports wait in memory */
        logev("store-error %s", serr);
    int rp[2];
    if (pipe2(rp, O_CLOEXEC) < 0) {
        fprintf(stderr, "quarantine: run: pipe: %s\n", strerror(errno));
        return QTN_EXIT_OUTPUT;
    }
    fcntl(rp[0], F_SETFL, O_NONBLOCK);
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, &old);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    double *crashes = calloc((size_t)max_restarts + 1, sizeof *crashes);
    int ncrash = 0, delay = backoff_ms, stopping = 0;
    static char buf[65536];
    size_t blen = 0;
    pid_t pid = start(prog, rp[1], &old);
    S.pid = (int)pid;
    logev("start pid=%d program=%s store=%s", (int)pid, prog[0], S.store_path);
    double started = now_s();
    for (;;) {
        struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = rp[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN)
            relay(rp[0], buf, &blen, sizeof buf, &S, S.pid);
        retry_pending(&S);
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
            relay(rp[0], buf, &blen, sizeof buf, &S, S.pid); /* its last reports */
            if (WIFEXITED(st)) {
                logev("exit pid=%d status=%d", (int)pid, WEXITSTATUS(st));
                free(crashes);
                return finish(&S, WEXITSTATUS(st));
            }
            int sig = WTERMSIG(st);
            if (stopping) {
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
            store_crash(&S, (int)pid, ncrash + 1, sig);
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
            pid = start(prog, rp[1], &old);
            S.pid = (int)pid;
            started = now_s();
            logev("start pid=%d program=%s", (int)pid, prog[0]);
        }
    }
    free(crashes);
    return QTN_EXIT_OUTPUT;
}
