/* domain.h - how the host runs domain processes, split by job: the zygote
 * that forks them (zygote.c), their incarnations (domain.c), the monitor
 * that notices their deaths (monitor.c), the restart thread of each domain
 * (restart.c), the thread that keeps spares prepared (spares.c), the
 * thread that sends fault reports on (reporter.c), the
 * channels calls travel on (channel.c) and the bulk area for large buffers
 * (bulk.c).
 * Internal to those files; internal.h has what the rest of the runtime
 * uses. */
#ifndef QTN_DOMAIN_H
#define QTN_DOMAIN_H

#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static inline int qtn__pidfd_kill(int fd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/* Whether slot J holds a prepared spare for incarnation inc whose process
 * says it can serve (dm->lock held). */
static inline bool qtn__spare_ready(const qtn__inc *J, uint32_t inc) {
    return J->prepared && J->inc == inc && J->base && !J->dead &&
           atomic_load(&((qtn__dhdr *)J->base)->ready);
}

/* ---- zygote.c ------------------------------------------------------------- */

/* Asks the zygote for a new process of incarnation `inc` of domain d, which
 * maps memfd into its slot and tells its death on efd. Returns 0 with the
 * process's pid and pidfd, or QTN_ESYS (errno says why). */
int qtn__zygote_spawn(int d, uint32_t inc, int memfd, int efd, pid_t *pid, int *pidfd) QTN__HIDDEN;
/* Monitor thread: the fd on which the zygote tells exits (-1 once it is
 * gone), and reading one such notice when it is readable (`hup`: the
 * zygote hung up). */
int qtn__zygote_evfd(void) QTN__HIDDEN;
void qtn__zygote_event(bool hup) QTN__HIDDEN;
/* Monitor thread: the exit status the zygote reports for pid, waiting up to
 * 2 s for it; *known is false when it never came. */
int qtn__zygote_exit_status(pid_t pid, bool *known) QTN__HIDDEN;
void qtn__zygote_forget_exits(void) QTN__HIDDEN;

/* ---- domain.c ------------------------------------------------------------- */

/* Starts incarnation `inc` of domain d and makes it the serving one: the
 * prepared spare if there is one, else a new process now, set up for
 * `plan` (NULL: the plan in force); `before` is the incarnation it takes
 * over from (its channels are served at once), or NULL. The slot must be
 * free (no callers of its incarnation before in it, its process reaped).
 * Returns 0 or a QTN_E* code (the new process, if any, is killed).
 * dm->start held. */
int qtn__inc_start(int d, uint32_t inc, const qtn__inc *before, const uint8_t *plan) QTN__HIDDEN;
/* Spares thread: gives serving domains prepared spares for their next
 * incarnations (qtn__g.spares each, once their slots are free), one process
 * per call. Returns a mask: 1, a domain was busy (being started or
 * restarted, or a slot still taken) and should be looked at again soon; 2,
 * a spare was made and there may be more to make now. */
int qtn__prepare_spares(void) QTN__HIDDEN;

/* ---- spares.c ------------------------------------------------------------- */

/* The spares thread, started and stopped with the monitor (under its
 * signal mask; stopped once qtn__stopping is set). */
int qtn__spares_start(void) QTN__HIDDEN;
void qtn__spares_stop(void) QTN__HIDDEN;
/* Asks it to look at every domain's spares now. */
void qtn__spares_poke(void) QTN__HIDDEN;

/* ---- monitor.c ------------------------------------------------------------ */

extern _Atomic bool qtn__stopping QTN__HIDDEN; /* qtn_shutdown has begun */
/* Wakes the monitor: the set of processes to watch, or a parked domain's
 * retry, changed; it asks the spares thread for spares on each wake. */
void qtn__monitor_poke(void) QTN__HIDDEN;

/* One death of a serving incarnation: what the monitor saw when it was
 * noticed, and what its restart made of it. One report. */
typedef struct qtn__death {
    qtn__inc *I;
    uint32_t inc;
    uint64_t noticed;
    bool restarted; /* by the monitor, at once (a warm spare) */
    int rs;         /* the restart: 0, or why the domain could not start */
    bool parked;
    /* seen before the failing calls unwound or anything else moved */
    qtn__crash cr;
    int kill_kind;
    char kill_reason[160];
    const qtn_entry *kill_entry, *on_chan, *first;
    const qtn_entry *blamed;
    qtn_report r;
} qtn__death;

/* ---- restart.c ------------------------------------------------------------ */

/* Before the monitor starts: no restart thread yet. */
void qtn__restart_init(void) QTN__HIDDEN;
/* Monitor: restarts dm after death x at once when that is only a word flip
 * (a ready spare, not to be parked, nothing else going on in the domain).
 * True when done. */
bool qtn__restart_quick(qtn__dom *dm, qtn__death *x) QTN__HIDDEN;
/* Monitor: hands death x (its cause described) to dm's restart thread,
 * which restarts dm unless x->restarted, or parks it, then reports x; NULL:
 * try the parked dm again. */
void qtn__restart_post(qtn__dom *dm, qtn__death *x) QTN__HIDDEN;
/* Monitor: parked domains whose backoff passed go to their restart thread;
 * returns the ms until the next one is due (-1: none). */
int qtn__restart_due(void) QTN__HIDDEN;
/* Shutdown (qtn__stopping set): the restart threads finish what they were
 * given (the deaths noticed before are reported) and end. */
void qtn__restart_stop(void) QTN__HIDDEN;

/* ---- reporter.c ----------------------------------------------------------- */

/* Restart thread: hands a report to the reporter, which names its frames,
 * blames the component and queues it (waits while 64 are on their way: the
 * symboliser cannot keep up with a crash loop). */
void qtn__reporter_post(const qtn_report *r, const qtn_component *blamed) QTN__HIDDEN;
/* Shutdown: the reports on their way go out, then the reporter ends. */
void qtn__reporter_stop(void) QTN__HIDDEN;

/* ---- channel.c ------------------------------------------------------------ */

/* Asks the domain for a thread serving channel k (dm->lock held). */
void qtn__want_served(qtn__inc *I, uint32_t k) QTN__HIDDEN;

/* ---- bulk.c --------------------------------------------------------------- */

/* A new incarnation's bulk area: all of it free. */
void qtn__bulk_reset(qtn__inc *I) QTN__HIDDEN;

#endif
