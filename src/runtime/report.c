/* report.c - the queue of fault reports, their text form, and the writer
 * that hands them to a supervisor through a file descriptor.
 *
 * Reports are numbered as they are made. The queue keeps the newest
 * QTN__REPORTS; the API reader and the fd writer each follow it with their
 * own cursor, so a slow reader loses nothing until it falls a whole queue
 * behind, and then the loss is counted and said. */
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define QTN__REPORTS 256

static qtn_report ring[QTN__REPORTS];
static uint64_t made;      /* reports pushed; report n sits in ring[(n-1) % size] */
static uint64_t api_next = 1, fd_next = 1;
static uint64_t dropped;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int out_fd = -1;
static pthread_t writer;
static bool writer_running, writer_stop;

void qtn__report_push(const qtn_report *r) {
    pthread_mutex_lock(&lock);
    made++;
    qtn_report *slot = &ring[(made - 1) % QTN__REPORTS];
    *slot = *r;
    slot->seq = made;
    /* a reader a whole queue behind loses its oldest report */
    uint64_t *cursor = out_fd >= 0 ? &fd_next : &api_next;
    if (made - *cursor >= QTN__REPORTS) {
        dropped += made - *cursor - QTN__REPORTS + 1;
        *cursor = made - QTN__REPORTS + 1;
    }
    if (api_next + QTN__REPORTS <= made)
        api_next = made - QTN__REPORTS + 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&lock);
    if (getenv("QTN_QUIET_FAULTS"))
        return;
    qtn__warn("fault in domain %d (pid %d): %s%s%s: %s; %u call(s) failed", r->domain, r->pid,
              r->component[0] ? r->component : "?", r->entry[0] ? "." : "", r->entry, r->reason,
              r->calls_failed);
}

int qtn_report_next(qtn_report *out, int timeout_ms) {
    if (!out)
        return QTN_EINVAL;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (timeout_ms > 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
    }
    pthread_mutex_lock(&lock);
    while (api_next > made && timeout_ms != 0) {
        int e = timeout_ms < 0 ? pthread_cond_wait(&cv, &lock)
                               : pthread_cond_timedwait(&cv, &lock, &until);
        if (e == ETIMEDOUT)
            break;
    }
    int got = 0;
    if (api_next <= made) {
        *out = ring[(api_next - 1) % QTN__REPORTS];
        api_next++;
        got = 1;
    }
    pthread_mutex_unlock(&lock);
    return got;
}

uint64_t qtn_reports_dropped(void) {
    pthread_mutex_lock(&lock);
    uint64_t d = dropped;
    pthread_mutex_unlock(&lock);
    return d;
}

/* ---- text ------------------------------------------------------------------- */

static const char *kind_name(int k) {
    switch (k) {
    case QTN_FAULT_SIGNAL: return "signal";
    case QTN_FAULT_EXIT: return "exit";
    case QTN_FAULT_KILLED: return "killed";
    case QTN_FAULT_DEADLINE: return "deadline";
    case QTN_FAULT_CONTRACT: return "contract";
    case QTN_FAULT_SECCOMP: return "seccomp";
    default: return "unknown";
    }
}

typedef struct sbuf {
    char *p;
    size_t len, n;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->n < b->len ? b->p + b->n : NULL, b->n < b->len ? b->len - b->n : 0, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->n += (size_t)k;
}

static void put_str(sbuf *b, const char *key, const char *s) {
    put(b, ",\"%s\":\"", key);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(b, "\\%c", c);
        else if (c < 0x20)
            put(b, "\\u%04x", c);
        else
            put(b, "%c", c);
    }
    put(b, "\"");
}

int qtn_report_format(const qtn_report *r, char *buf, size_t len) {
    sbuf b = {buf, len, 0};
    if (buf && len)
        buf[0] = 0;
    put(&b, "{\"report\":%llu,\"time_ns\":%lld", (unsigned long long)r->seq, (long long)r->time_ns);
    put_str(&b, "kind", kind_name(r->kind));
    put(&b, ",\"domain\":%d,\"pid\":%d,\"incarnation\":%u,\"signal\":%d,\"exit_code\":%d,"
            "\"syscall\":%d,\"fault_addr\":\"0x%llx\"",
        r->domain, r->pid, r->incarnation, r->signal, r->exit_code, r->syscall,
        (unsigned long long)r->fault_addr);
    put_str(&b, "component", r->component);
    put_str(&b, "entry", r->entry);
    put_str(&b, "reason", r->reason);
    put(&b, ",\"calls_failed\":%u,\"recovery_ns\":%llu,\"parked\":%s,\"backtrace\":[",
        r->calls_failed, (unsigned long long)r->recovery_ns, r->parked ? "true" : "false");
    for (uint32_t i = 0; i < r->nframes && i < QTN_REPORT_FRAMES; i++) {
        put(&b, "%s\"0x%llx", i ? "," : "", (unsigned long long)r->frames[i]);
        if (r->symbols[i][0]) {
            put(&b, " ");
            for (const char *s = r->symbols[i]; *s; s++)
                if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
                    put(&b, "%c", *s);
        }
        put(&b, "\"");
    }
    put(&b, "]}");
    if (buf && len && b.n >= len)
        buf[len - 1] = 0;
    return (int)b.n;
}

/* Names the frames: the domain is a fork of this program, so its code sits
 * at the same addresses here. libdwfl reads the symbol tables of the
 * modules mapped in this process (static functions and split-off cold
 * parts included) and, where there is debug information, the source line. */
static Dwfl *dwfl;
static const Dwfl_Callbacks dwfl_cb = {.find_elf = dwfl_linux_proc_find_elf,
                                       .find_debuginfo = dwfl_standard_find_debuginfo};

static Dwfl_Module *module_of(Dwarf_Addr a) {
    for (int tries = 0; tries < 2; tries++) {
        if (!dwfl) {
            dwfl = dwfl_begin(&dwfl_cb);
            if (!dwfl)
                return NULL;
            dwfl_report_begin(dwfl);
            if (dwfl_linux_proc_report(dwfl, getpid()) != 0 ||
                dwfl_report_end(dwfl, NULL, NULL) != 0) {
                dwfl_end(dwfl);
                dwfl = NULL;
                return NULL;
            }
        }
        Dwfl_Module *m = dwfl_addrmodule(dwfl, a);
        if (m)
            return m;
        dwfl_end(dwfl); /* loaded since: look again */
        dwfl = NULL;
    }
    return NULL;
}

void qtn__report_symbolize(qtn_report *r) {
    for (uint32_t i = 0; i < r->nframes && i < QTN_REPORT_FRAMES; i++) {
        Dwarf_Addr a = r->frames[i], look = i ? a - 1 : a; /* return address -> call */
        char *out = r->symbols[i];
        size_t len = sizeof r->symbols[i];
        out[0] = 0;
        Dwfl_Module *m = module_of(a);
        if (!m)
            continue;
        const char *mod = dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        const char *base = mod ? strrchr(mod, '/') : NULL;
        base = base ? base + 1 : (mod ? mod : "?");
        GElf_Off off = 0;
        GElf_Sym sym;
        const char *name = dwfl_module_addrinfo(m, look, &off, &sym, NULL, NULL, NULL);
        int n;
        if (name) {
            n = snprintf(out, len, "%s+0x%llx", name, (unsigned long long)(off + (a - look)));
        } else if ((name = dwfl_module_addrname(m, look))) { /* nearest symbol below */
            n = snprintf(out, len, "%s", name);
        } else {
            Dwarf_Addr start = 0;
            dwfl_module_info(m, NULL, &start, NULL, NULL, NULL, NULL, NULL);
            n = snprintf(out, len, "%s+0x%llx", base, (unsigned long long)(a - start));
        }
        Dwfl_Line *line = dwfl_module_getsrc(m, look);
        int lno = 0;
        const char *file = line ? dwfl_lineinfo(line, NULL, &lno, NULL, NULL, NULL) : NULL;
        if (n > 0 && (size_t)n < len) {
            if (file) {
                const char *fb = strrchr(file, '/');
                snprintf(out + n, len - (size_t)n, " (%s:%d)", fb ? fb + 1 : file, lno);
            } else {
                snprintf(out + n, len - (size_t)n, " (%s)", base);
            }
        }
    }
}

/* ---- the fd writer ------------------------------------------------------------ */

/* A fault report as a record: its JSON with the record type, the build and
 * the plan in force put in front. */
static int write_fault(int fd, const qtn_report *r, char *line, size_t cap) {
    char plan[1024];
    qtn_plan_format(plan, sizeof plan);
    int h = snprintf(line, cap,
                     "{\"type\":\"fault\",\"host_pid\":%d,\"proc\":\"%s\",\"build_id\":\"%s\","
                     "\"plan\":\"%s\",",
                     (int)getpid(), qtn__proc_id(), qtn__build_id(),
                     plan); /* names and numbers: no escapes */
    if (h < 0 || (size_t)h >= cap)
        return -1;
    int n = qtn_report_format(r, line + h - 1, cap - (size_t)h + 1);
    if (n < 0 || (size_t)n >= cap - (size_t)h + 1)
        return -1;
    line[h - 1] = ','; /* the report's own opening brace */
    return qtn__record_write(fd, line, (size_t)(h - 1 + n));
}

static uint32_t stats_ms(void) {
    uint32_t v = qtn__env_u32("QTN_STATS_MS", 10000);
    if (v <= 86400000u)
        return v;
    qtn__warn("ignoring QTN_STATS_MS=%u: more than a day", v);
    return 10000;
}

/* The writer: reports as they come, a statistics snapshot every
 * QTN_STATS_MS (10 s; 0: only the last one, at shutdown), each record
 * synced to disk before the next is taken (the supervisor counts on what it
 * finds in the file). */
static void *write_reports(void *arg) {
    (void)arg;
    static char line[16384];
    uint32_t every = stats_ms();
    uint64_t told = 0; /* losses said so far */
    /* a snapshot is due at next_stats: periodically, and right after fault
     * reports (a crash of the program may follow them) */
    bool due = every > 0;
    /* the first one soon: call rates are what a supervisor's policy weighs */
    uint64_t first = every > 1000 ? 1000 : every;
    uint64_t next_stats = qtn__now_ns() + first * 1000000u, last_stats = 0;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!writer_stop && fd_next > made) {
            if (!due) {
                pthread_cond_wait(&cv, &lock);
                continue;
            }
            uint64_t now = qtn__now_ns();
            if (now >= next_stats)
                break;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            uint64_t left = next_stats - now;
            until.tv_sec += (time_t)(left / 1000000000u);
            until.tv_nsec += (long)(left % 1000000000u);
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&cv, &lock, &until);
        }
        int fd = out_fd;
        if (fd_next > made) { /* a snapshot is due, or the last one */
            pthread_mutex_unlock(&lock);
            if (fd >= 0) {
                qtn__crash_modules();
                if (qtn__stats_write(fd) == 0)
                    fdatasync(fd);
            }
            due = every > 0;
            last_stats = qtn__now_ns();
            next_stats = last_stats + (uint64_t)every * 1000000u;
            pthread_mutex_lock(&lock);
            if (writer_stop && fd_next > made)
                break;
            continue;
        }
        qtn_report r = ring[(fd_next - 1) % QTN__REPORTS];
        uint64_t lost = dropped;
        fd_next++;
        pthread_mutex_unlock(&lock);
        int w = fd >= 0 ? write_fault(fd, &r, line, sizeof line) : 0;
        if (!w && fd >= 0 && lost > told) {
            int n = snprintf(line, sizeof line,
                             "{\"type\":\"dropped\",\"pid\":%d,\"dropped\":%llu}",
                             (int)getpid(), (unsigned long long)(lost - told));
            w = qtn__record_write(fd, line, (size_t)n);
            told = lost;
        }
        if (!w && fd >= 0)
            fdatasync(fd);
        uint64_t soon = last_stats + 100000000u; /* at most 10 a second */
        if (soon < qtn__now_ns())
            soon = qtn__now_ns();
        if (!due || soon < next_stats) {
            due = true;
            next_stats = soon;
        }
        pthread_mutex_lock(&lock);
        if (w) {
            qtn__warn("cannot write fault reports to fd %d: %s; they stay in the queue", fd,
                      strerror(errno));
            out_fd = -1;
        }
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int qtn_report_to_fd(int fd) {
    pthread_mutex_lock(&lock);
    out_fd = fd;
    fd_next = made + 1;
    bool start = fd >= 0 && !writer_running;
    if (start) {
        writer_stop = false;
        sigset_t all, old;
        sigfillset(&all); /* SIGPIPE stays with this thread, blocked */
        pthread_sigmask(SIG_SETMASK, &all, &old);
        writer_running = pthread_create(&writer, NULL, write_reports, NULL) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    int r = fd < 0 || writer_running ? 0 : QTN_ESYS;
    pthread_mutex_unlock(&lock);
    return r;
}

static void final_stats(void) {
    if (getpid() == qtn__g.host_pid) /* not in a domain that called exit() */
        qtn__report_stop();
}

/* Starts writing to $QTN_REPORT_FD (the spool file of `quarantine run`).
 * Returns that fd, or -1 when there is none. */
int qtn__report_start(void) {
    const char *s = getenv("QTN_REPORT_FD");
    if (!s || !*s)
        return -1;
    char *end;
    long fd = strtol(s, &end, 10);
    if (*end || fd < 0 || fd > 1 << 20 || fcntl((int)fd, F_GETFD) < 0) {
        qtn__warn("ignoring QTN_REPORT_FD=%s: not an open file descriptor", s);
        return -1;
    }
    fcntl((int)fd, F_SETFD, FD_CLOEXEC); /* programs it starts do not hold it */
    static bool registered;
    if (!registered && atexit(final_stats) == 0)
        registered = true;
    if (qtn__hello_write((int)fd) == 0) /* qtn_init holds the lock */
        fdatasync((int)fd);
    return qtn_report_to_fd((int)fd) ? -1 : (int)fd;
}

int qtn__report_fd(void) {
    pthread_mutex_lock(&lock);
    int fd = out_fd;
    pthread_mutex_unlock(&lock);
    return fd;
}

void qtn__report_stop(void) {
    pthread_mutex_lock(&lock);
    bool running = writer_running;
    writer_stop = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&lock);
    if (running)
        pthread_join(writer, NULL); /* writes what is queued first */
    pthread_mutex_lock(&lock);
    writer_running = false;
    pthread_mutex_unlock(&lock);
}
