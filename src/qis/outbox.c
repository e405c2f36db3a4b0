/* outbox.c - the thread that ships a supervisor's outbox to the fleet
 * (see outbox.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "now.h"
#include "outbox.h"
#include "ship.h"

#define BATCH_ROWS 500   /* rows per transaction of the fleet's */
#define ROUND_MS 500     /* a round of shipping this often */
#define RETRY_MAX_S 30.0 /* the longest wait between connection attempts */

struct qf_outbox {
    char *uri, *path, *installation;
    double half_life_s;
    int refresh_ms;
    int efd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping, flush_ms;
    char said[1024]; /* the error said last: said once */
    char where[512];
};



static void logev(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logev(const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n >= 0)
        fprintf(stderr, "quarantine: run: event=%s\n", line);
}

/* An error, said once until another is (or the fleet is back). */
static void say(qf_outbox *b, const char *err) {
    if (!strcmp(b->said, err))
        return;
    snprintf(b->said, sizeof b->said, "%s", err);
    logev("fleet-error %s (records are kept in the outbox %s and shipped when it is back; the "
          "fleet's evidence last fetched stays in force)",
          err, b->path);
}

/* How many components the outbox knows (its code identities change when
 * it does): then the fleet's evidence is fetched at once. */
static long long components(qs_store *ob) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(qs_db(ob), "SELECT COUNT(*) FROM components", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    long long n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

/* Ships until nothing is left or the deadline (0: none); the rows shipped,
 * or -1 (the connection is dropped: connected again later). */
static long long ship_all(qf_outbox *b, qs_store *ob, PGconn **pg, double deadline) {
    long long total = 0;
    for (;;) {
        char err[1024];
        int n = qf_ship(ob, b->uri, *pg, BATCH_ROWS, err, sizeof err);
        if (n < 0) {
            say(b, err);
            PQfinish(*pg);
            *pg = NULL;
            return -1;
        }
        total += n;
        if (n < BATCH_ROWS || (deadline > 0 && qs_mono_s() > deadline))
            return total;
    }
}

static void *main_loop(void *arg) {
    qf_outbox *b = arg;
    qs_store *ob = NULL;
    PGconn *pg = NULL;
    double retry_at = 0, backoff = 1, next_fetch = 0, deadline = 0;
    long long ncomp = -1;
    for (int last = 0; !last;) {
        pthread_mutex_lock(&b->mu);
        if (!b->stopping) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += ROUND_MS * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            while (!b->stopping)
                if (pthread_cond_timedwait(&b->cv, &b->mu, &until) == ETIMEDOUT)
                    break;
        }
        last = b->stopping;
        if (last)
            deadline = qs_mono_s() + b->flush_ms / 1000.0;
        pthread_mutex_unlock(&b->mu);
        char err[1024];
        if (!ob) {
            if (!(ob = qs_open(b->path, 0, err, sizeof err))) {
                say(b, err);
                if (!last)
                    usleep(ROUND_MS * 1000);
                continue;
            }
            qs_busy_ms(ob, 2000);
            /* the shipper's writes (marks, the fleet's evidence) need no
             * fsync of their own: lost with the machine, they are shipped or
             * fetched again, stored once all the same; and the supervisor,
             * whose writes wait at most 200 ms for the lock, waits on none */
            sqlite3_exec(qs_db(ob), "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
        }
        if (!pg && (qs_mono_s() >= retry_at || last)) {
            pg = qf_connect(b->uri, err, sizeof err);
            if (!pg) {
                say(b, err);
                retry_at = qs_mono_s() + backoff;
                backoff = backoff * 2 > RETRY_MAX_S ? RETRY_MAX_S : backoff * 2;
                continue;
            }
            backoff = 1;
            logev("fleet-connected store=%s%s", b->where, b->said[0] ? " (back)" : "");
            b->said[0] = 0;
            next_fetch = 0;
        }
        if (!pg || ship_all(b, ob, &pg, last ? deadline : 0) < 0)
            continue;
        long long nc = components(ob);
        if (!last && (qs_mono_s() >= next_fetch || nc != ncomp)) {
            int n = qf_fetch_pool(ob, b->uri, pg, b->installation, b->half_life_s, qs_real_ns(), err,
                                  sizeof err);
            if (n < 0) {
                say(b, err);
                PQfinish(pg);
                pg = NULL;
                continue;
            }
            ncomp = nc;
            next_fetch = qs_mono_s() + b->refresh_ms / 1000.0;
            uint64_t one = 1;
            if (write(b->efd, &one, sizeof one) < 0) { /* a counter: cannot fill */
            }
        }
    }
    long long held = ob ? qf_unshipped(ob) : -1;
    if (held)
        logev("fleet-held rows=%lld outbox=%s (shipped to %s by the next quarantine run with "
              "this outbox)",
              held, b->path, b->where);
    PQfinish(pg);
    qs_close(ob);
    return NULL;
}

qf_outbox *qf_outbox_start(const qf_outbox_opts *o) {
    qf_outbox *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->uri = strdup(o->uri);
    b->path = strdup(o->path);
    b->installation = strdup(o->installation);
    b->half_life_s = o->half_life_s;
    b->refresh_ms = o->refresh_ms > 0 ? o->refresh_ms : 30000;
    b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    qf_where(o->uri, b->where, sizeof b->where);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    /* the thread takes no signals: the supervisor reads its own from a
     * signalfd, which sees only those every thread blocks */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int failed = !b->uri || !b->path || !b->installation || b->efd < 0 ||
                 pthread_create(&b->thread, NULL, main_loop, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (failed) {
        if (b->efd >= 0)
            close(b->efd);
        free(b->uri);
        free(b->path);
        free(b->installation);
        free(b);
        return NULL;
    }
    return b;
}

int qf_outbox_fd(const qf_outbox *b) { return b->efd; }

void qf_outbox_seen(qf_outbox *b) {
    uint64_t n;
    if (read(b->efd, &n, sizeof n) < 0) { /* nothing new: EAGAIN */
    }
}

void qf_outbox_stop(qf_outbox *b, int flush_ms) {
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stopping = 1;
    b->flush_ms = flush_ms;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    /* a shipper stuck on the network (a server gone silent mid-query, a
     * slow DNS) must not keep the supervisor from exiting: waited for as
     * long as it may take, then left to the exit */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += flush_ms / 1000 + QF_CONNECT_TIMEOUT_S + 1;
    if (pthread_timedjoin_np(b->thread, NULL, &until)) {
        logev("fleet-held outbox=%s (the shipper did not finish in time; the next quarantine "
              "run with this outbox ships what it holds)",
              b->path);
        return; /* its memory stays: the thread may still use it */
    }
    close(b->efd);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b->uri);
    free(b->path);
    free(b->installation);
    free(b);
}
