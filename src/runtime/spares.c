/* spares.c - the spares thread: keeps each serving domain's spares
 * prepared (qtn__prepare_spares, one process at a time), so that the
 * monitor never stops noticing deaths while a process is forked and
 * confines itself (a zygote round trip, a fraction of a millisecond, more
 * under load): in a burst of faults, the next death is noticed, and
 * restarted onto the next spare, while this thread makes another. */
#include <time.h>

#include "domain.h"

/* a domain was busy (its start held, a slot still taken, a restart just
 * made): look again after 100 us, then twice as long each time it still is,
 * up to 5 ms; a restart in a burst of faults holds dm->start only briefly */
#define BUSY_MIN_NS 100000ull
#define BUSY_MAX_NS 5000000ull

static pthread_mutex_t sp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sp_cv; /* on CLOCK_MONOTONIC; made once, never destroyed */
static pthread_once_t sp_once = PTHREAD_ONCE_INIT;
static pthread_t sp_thread;
static bool sp_running, sp_stop, sp_asked;

static void *spares_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&sp_lock);
    uint64_t wait_ns = 0; /* 0: nothing busy */
    for (;;) {
        if (!sp_asked && !sp_stop) {
            if (wait_ns) {
                struct timespec at;
                clock_gettime(CLOCK_MONOTONIC, &at);
                uint64_t ns = (uint64_t)at.tv_nsec + wait_ns;
                at.tv_sec += (time_t)(ns / 1000000000u);
                at.tv_nsec = (long)(ns % 1000000000u);
                pthread_cond_timedwait(&sp_cv, &sp_lock, &at);
            } else {
                pthread_cond_wait(&sp_cv, &sp_lock);
            }
        }
        if (sp_stop)
            break;
        sp_asked = false;
        pthread_mutex_unlock(&sp_lock);
        int more = qtn__prepare_spares();
        pthread_mutex_lock(&sp_lock);
        if (!(more & 1))
            wait_ns = 0;
        else if (!wait_ns || (more & 2))
            wait_ns = BUSY_MIN_NS;
        else if ((wait_ns *= 2) > BUSY_MAX_NS)
            wait_ns = BUSY_MAX_NS;
        if (more & 2)
            sp_asked = true; /* perhaps more to make */
    }
    pthread_mutex_unlock(&sp_lock);
    return NULL;
}

static void cv_make(void) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sp_cv, &ca);
    pthread_condattr_destroy(&ca);
}

void qtn__spares_poke(void) {
    pthread_once(&sp_once, cv_make);
    pthread_mutex_lock(&sp_lock);
    sp_asked = true;
    pthread_cond_signal(&sp_cv);
    pthread_mutex_unlock(&sp_lock);
}

int qtn__spares_start(void) {
    pthread_once(&sp_once, cv_make);
    sp_stop = sp_asked = false;
    if (pthread_create(&sp_thread, NULL, spares_main, NULL))
        return QTN_ESYS;
    sp_running = true;
    return 0;
}

void qtn__spares_stop(void) {
    if (!sp_running)
        return;
    pthread_mutex_lock(&sp_lock);
    sp_stop = true;
    pthread_cond_signal(&sp_cv);
    pthread_mutex_unlock(&sp_lock);
    pthread_join(sp_thread, NULL); /* a process it is making: at most a zygote round trip */
    sp_running = false;
}
