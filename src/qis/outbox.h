/* outbox.h - the background shipper of a supervisor whose store is a
 * fleet's: the supervisor stores records in its local outbox (a SQLite
 * store) as it would in any store, and a thread of this module ships them
 * to the fleet's PostgreSQL in batches (ship.h), every half second, and fetches the fleet's
 * pooled evidence back into the outbox, so the supervisor (and the
 * program) never wait on the network. When PostgreSQL is down or
 * unreachable, the records stay in the outbox and are shipped when it is
 * back; the evidence last fetched stays in force. */
#ifndef QTN_OUTBOX_H
#define QTN_OUTBOX_H

#include <stdint.h>

typedef struct qf_outbox qf_outbox;

typedef struct qf_outbox_opts {
    const char *uri;  /* the fleet's store */
    const char *path; /* the outbox */
    const char *installation;
    double half_life_s; /* the policy's, for the pooled evidence */
    int refresh_ms;     /* between fetches of the fleet's evidence */
} qf_outbox_opts;

/* Starts the shipper (it connects in the background). Its log lines go
 * to stderr as the supervisor's do (event=fleet-...). NULL when no thread
 * can be made. */
qf_outbox *qf_outbox_start(const qf_outbox_opts *o);

/* Readable when the fleet's evidence in the outbox changed (then read
 * it: qf_outbox_seen). */
int qf_outbox_fd(const qf_outbox *b);
void qf_outbox_seen(qf_outbox *b);

/* Stops the shipper after one last attempt to ship all, of at most
 * flush_ms; what is not shipped stays in the outbox (the next quarantine
 * run with it ships it). Logs what is held. */
void qf_outbox_stop(qf_outbox *b, int flush_ms);

#endif
