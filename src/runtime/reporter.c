/* reporter.c - the reporter thread: names the frames of fault reports
 * (the symboliser may take a while, the first time above all) and queues
 * them (report.c), so no restart ever waits for that. */
#include <stdlib.h>

#include "domain.h"

#define PENDING 64
static struct pending {
    qtn_report r;
    const qtn_component *blamed;
} pending[PENDING];
static uint32_t pend_head, pend_n;
static bool rep_running, rep_stop;
static pthread_t rep_thread;
static pthread_mutex_t rep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rep_cv = PTHREAD_COND_INITIALIZER;

static void *reporter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&rep_lock);
    for (;;) {
        while (!pend_n && !rep_stop)
            pthread_cond_wait(&rep_cv, &rep_lock);
        if (!pend_n)
            break;
        struct pending *p = &pending[pend_head];
        pthread_mutex_unlock(&rep_lock);
        qtn__report_symbolize(&p->r);
        qtn__blame(p->blamed, p->r.recovery_ns);
        qtn__report_push(&p->r);
        pthread_mutex_lock(&rep_lock);
        pend_head = (pend_head + 1) % PENDING;
        pend_n--;
        pthread_cond_broadcast(&rep_cv);
    }
    pthread_mutex_unlock(&rep_lock);
    return NULL;
}

void qtn__reporter_post(const qtn_report *r, const qtn_component *blamed) {
    pthread_mutex_lock(&rep_lock);
    if (!rep_running) {
        if (pthread_create(&rep_thread, NULL, reporter, NULL))
            qtn__fatal("monitor: cannot start the report thread");
        rep_running = true;
    }
    while (pend_n == PENDING && !rep_stop)
        pthread_cond_wait(&rep_cv, &rep_lock);
    if (pend_n < PENDING) {
        struct pending *p = &pending[(pend_head + pend_n) % PENDING];
        p->r = *r;
        p->blamed = blamed;
        pend_n++;
        pthread_cond_broadcast(&rep_cv);
    }
    pthread_mutex_unlock(&rep_lock);
}

void qtn__reporter_stop(void) {
    pthread_mutex_lock(&rep_lock); /* the reports on their way go out first */
    bool rep = rep_running;
    rep_stop = true;
    pthread_cond_broadcast(&rep_cv);
    pthread_mutex_unlock(&rep_lock);
    if (rep)
        pthread_join(rep_thread, NULL);
    rep_running = rep_stop = false;
}
