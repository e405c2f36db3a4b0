/* control.c - the control channel: plans a supervisor pushes into the
 * running program.
 *
 * `quarantine run --policy` gives the program the read end of a pipe as
 * QTN_CONTROL_FD. A thread of the runtime reads it, one command per line:
 *
 *     plan SEQ TEXT      apply plan TEXT (the format qtn_plan_apply takes)
 *
 * and answers each on the report fd with one record:
 *
 *     {"type":"plan-ack","pid":P,"time_ns":T,"seq":SEQ,"ok":true,"plan":"IN FORCE"}
 *     {"type":"plan-ack",...,"ok":false,"error":"WHY","plan":"IN FORCE"}
 *
 * A plan the runtime rejects changes nothing: the program keeps the plan in
 * force. Calls in flight finish where they are; later calls follow the new
 * plan. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define LINE_MAX_ (64u << 10)

static int ctl_fd = -1, stop_fd = -1;
static pthread_t ctl_thread;
static bool ctl_running;

/* A JSON string of s (quotes included) into b, at most cap bytes. */
static size_t js(char *b, size_t cap, const char *s) {
    size_t n = 0;
    if (cap < 3)
        return 0;
    b[n++] = '"';
    for (; *s && n + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            b[n++] = '\\';
            b[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(b + n, cap - n, "\\u%04x", c);
        } else {
            b[n++] = (char)c;
        }
    }
    b[n++] = '"';
    b[n] = 0;
    return n;
}

void qtn__control_ack(long long seq, int ok, const char *error) {
    int fd = qtn__report_fd();
    if (fd < 0)
        return;
    size_t cap = 2 * LINE_MAX_;
    char *rec = malloc(cap), *plan = malloc(LINE_MAX_);
    if (!rec || !plan) {
        free(rec);
        free(plan);
        return;
    }
    qtn_plan_format(plan, LINE_MAX_);
    struct timespec w;
    clock_gettime(CLOCK_REALTIME, &w);
    int n = snprintf(rec, cap, "{\"type\":\"plan-ack\",\"pid\":%d,\"proc\":\"%s\","
                               "\"time_ns\":%lld,\"seq\":%lld,\"ok\":%s,\"plan\":",
                     (int)getpid(), qtn__proc_id(), (long long)w.tv_sec * 1000000000LL + w.tv_nsec,
                     seq, ok ? "true" : "false");
    if (n > 0 && (size_t)n < cap) {
        n += (int)js(rec + n, cap - (size_t)n, plan);
        if (!ok && (size_t)n + 16 < cap) {
            n += snprintf(rec + n, cap - (size_t)n, ",\"error\":");
            n += (int)js(rec + n, cap - (size_t)n, error);
        }
        if ((size_t)n + 2 < cap) {
            rec[n++] = '}';
            if (qtn__record_write(fd, rec, (size_t)n) == 0)
                fdatasync(fd);
        }
    }
    free(rec);
    free(plan);
}

/* One command line (without its newline). */
static void command(char *line) {
    if (strncmp(line, "plan ", 5) != 0) {
        char why[160];
        snprintf(why, sizeof why, "unknown command '%.40s' (expected: plan SEQ TEXT)", line);
        qtn__control_ack(-1, 0, why);
        return;
    }
    char *end;
    errno = 0;
    long long seq = strtoll(line + 5, &end, 10);
    if (end == line + 5 || errno || seq < 0 || (*end && *end != ' ')) {
        qtn__control_ack(-1, 0, "plan: SEQ is not a number");
        return;
    }
    char err[256];
    int r = qtn_plan_apply(*end ? end + 1 : end, err, sizeof err);
    if (r && !err[0])
        snprintf(err, sizeof err, "%s", qtn_strerror(r));
    qtn__control_ack(seq, r == 0, err);
    if (r)
        qtn__warn("control: plan %lld rejected: %s; the plan in force stays", seq, err);
}

static void *control(void *arg) {
    (void)arg;
    char *buf = malloc(LINE_MAX_ + 1);
    size_t have = 0;
    bool skipping = false; /* in a line too long to take */
    if (!buf)
        return NULL;
    for (;;) {
        struct pollfd p[2] = {{.fd = ctl_fd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        ssize_t k = read(ctl_fd, buf + have, LINE_MAX_ - have);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0) {
            qtn__warn("control: the channel closed (QTN_CONTROL_FD); the plan in force stays");
            break;
        }
        have += (size_t)k;
        size_t at = 0;
        char *nl;
        while ((nl = memchr(buf + at, '\n', have - at))) {
            *nl = 0;
            if (!skipping)
                command(buf + at);
            skipping = false;
            at = (size_t)(nl - buf) + 1;
        }
        memmove(buf, buf + at, have - at);
        have -= at;
        if (have == LINE_MAX_) { /* no newline in 64 KiB: refuse it, whole */
            if (!skipping)
                qtn__control_ack(-1, 0, "a command longer than 64 KiB");
            skipping = true;
            have = 0;
        }
    }
    free(buf);
    return NULL;
}

int qtn__control_start(void) {
    const char *s = getenv("QTN_CONTROL_FD");
    if (!s || !*s)
        return 0;
    char *end;
    long fd = strtol(s, &end, 10);
    if (*end || fd < 0 || fd > 1 << 20 || fcntl((int)fd, F_GETFD) < 0) {
        qtn__warn("ignoring QTN_CONTROL_FD=%s: not an open file descriptor", s);
        return 0;
    }
    fcntl((int)fd, F_SETFD, FD_CLOEXEC); /* programs it starts do not read it */
    ctl_fd = (int)fd;
    stop_fd = eventfd(0, EFD_CLOEXEC);
    if (stop_fd < 0)
        return QTN_ESYS;
    sigset_t all, old;
    sigfillset(&all); /* the program's signals are not for this thread */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&ctl_thread, NULL, control, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) {
        close(stop_fd);
        stop_fd = -1;
        return QTN_ESYS;
    }
    ctl_running = true;
    return 0;
}

void qtn__control_stop(void) {
    if (!ctl_running)
        return;
    uint64_t one = 1;
    (void)!write(stop_fd, &one, sizeof one);
    pthread_join(ctl_thread, NULL);
    ctl_running = false;
    close(stop_fd);
    stop_fd = -1;
    close(ctl_fd);
    ctl_fd = -1;
}
