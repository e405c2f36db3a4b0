/* accesslog.c - access log lines (component `accesslog`, accesslog.h).
 *
 * The latest lines sit in two buffers, as in Apache's mod_log_config
 * buffered log: lines are appended to `outbuf` while they fit; when one does
 * not, the buffer is "flushed" (moved to `flushed`, which GET /log shows
 * before it) and filling starts again.
 *
 * BUG `log` (SERVER_BUGS=log), the atomicity violation of Apache bug 25520
 * that Lu et al. study: appending is check-then-act on the shared fill count,
 *     if (outcnt + len > ALOG_BUFSIZE) flush();   check: is there room?
 *     memcpy(&outbuf[outcnt], line, len);          act: copy at outcnt
 *     outcnt += len;
 * with no lock around the two. Two threads may both find room for their line
 * at the same outcnt; the first copies and advances outcnt, and the second
 * copies at the advanced count, past the end of the buffer when it was
 * nearly full. Apache wrote over the memory behind its buffer; here the copy
 * checks its bounds first and aborts (SIGABRT), as a hardened build would.
 * One connection never gets there (lines are appended by the thread that
 * served the request); concurrent requests do. SERVER_BUG_WINDOW_US sleeps
 * between the check and the copy. The fix is the lock around both (what the
 * code does with the bug off). */
#include "accesslog.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bugs.h"

static pthread_mutex_t alog_lock = PTHREAD_MUTEX_INITIALIZER;
static char outbuf[ALOG_BUFSIZE];
static size_t outcnt;
static char flushed[ALOG_BUFSIZE];
static size_t flushedcnt;

static void flush(void) {
    memcpy(flushed, outbuf, outcnt);
    flushedcnt = outcnt;
    outcnt = 0;
}

/* The copy into the buffer, with the bounds check the bug runs into. */
static void put(size_t at, const char *line, size_t len) {
    if (at > ALOG_BUFSIZE || len > ALOG_BUFSIZE - at)
        abort(); /* would overflow outbuf */
    memcpy(outbuf + at, line, len);
    outcnt = at + len;
}

static void append(const char *line, size_t len) {
    if (srv_bug(SRV_BUG_LOG)) {
        /* BUG (atomicity violation): the check and the copy below are not
         * atomic; outcnt may move between them */
        if (outcnt + len > ALOG_BUFSIZE)
            flush();
        srv_bug_window();
        put(outcnt, line, len);
        return;
    }
    pthread_mutex_lock(&alog_lock);
    if (outcnt + len > ALOG_BUFSIZE)
        flush();
    put(outcnt, line, len);
    pthread_mutex_unlock(&alog_lock);
}

/* Copies s into a field of the line, replacing what would break it. */
static void clean(char *dst, size_t cap, const char *src, size_t srccap) {
    size_t i = 0;
    for (; i + 1 < cap && i < srccap && src[i]; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c < 0x20 || c == '"' || c == 0x7f ? '_' : (char)c;
    }
    dst[i] = 0;
}

/* The time in the log's format, in UTC. Computed here rather than with
 * gmtime_r(): glibc sets its time zone up on the first call of any of its
 * time functions, which opens /etc/localtime, and an isolated domain (which
 * starts from the state at qtn_init, again after each restart) may not
 * open files. Days to a civil date after H. Hinnant's days_from_civil. */
static void utc_time(int64_t t, char *out, size_t cap) {
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400, secs = t - days * 86400;
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    snprintf(out, cap, "%02d/%s/%04lld:%02d:%02d:%02d +0000", (int)d, months[m - 1], (long long)y,
             (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
}

int32_t alog_format(const alog_entry *e, char *out, size_t cap) {
    char client[sizeof e->client], method[sizeof e->method], path[sizeof e->path],
        version[sizeof e->version];
    clean(client, sizeof client, e->client, sizeof e->client);
    clean(method, sizeof method, e->method, sizeof e->method);
    clean(path, sizeof path, e->path, sizeof e->path);
    clean(version, sizeof version, e->version, sizeof e->version);
    char when[40];
    utc_time(e->time_s, when, sizeof when);
    char line[ALOG_LINE_MAX];
    int n = snprintf(line, sizeof line, "%s - - [%s] \"%s %s %s\" %d %llu %uus\n",
                     client[0] ? client : "-", when, method, path, version, (int)e->status,
                     (unsigned long long)e->bytes, (unsigned)e->duration_us);
    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof line) { /* cut: keep the newline */
        n = (int)sizeof line - 1;
        line[n - 1] = '\n';
    }
    if ((size_t)n > cap)
        return -1;
    memcpy(out, line, (size_t)n);
    append(line, (size_t)n);
    return n;
}

int32_t alog_recent(char *out, size_t cap) {
    pthread_mutex_lock(&alog_lock);
    size_t n = 0;
    if (flushedcnt <= cap) {
        memcpy(out, flushed, flushedcnt);
        n = flushedcnt;
    }
    if (outcnt <= cap - n) {
        memcpy(out + n, outbuf, outcnt);
        n += outcnt;
    }
    pthread_mutex_unlock(&alog_lock);
    return (int32_t)n;
}
