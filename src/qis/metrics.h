/* metrics.h - the supervisor's live counters in the Prometheus text
 * exposition format (metrics.c), and the endpoint that serves them
 * (metrics_server.c, libmicrohttpd: `quarantine run --metrics ADDR:PORT`).
 *
 * The counters are those of one supervisor run: what its store holds for
 * the run (each program process's last statistics snapshot, its fault
 * reports, host crashes and plan changes), with the running program's
 * counters read live from its statistics file in place of its last
 * snapshot. Like any Prometheus counter they start from 0 with the
 * supervisor. */
#ifndef QTN_METRICS_H
#define QTN_METRICS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "store.h"

/* What only the supervisor knows. */
typedef struct qm_sup {
    const char *installation, *run;
    long long starts; /* program processes started */
    int up;           /* 1: a program runs now */
    const char *live; /* the running program's statistics record (qtn__sf_json), or NULL */
} qm_sup;

/* Writes the exposition of the run's counters to *out (malloc'd, *len
 * bytes). Returns 0, or -1 with err saying why. */
int qm_render(qs_store *s, const qm_sup *sup, char **out, size_t *len, char *err,
              size_t errlen);

/* Writes v as a label value: quoted, with \, " and newline escaped. */
void qm_label_value(FILE *o, const char *v);

/* Reads an endpoint: "ADDR:PORT", "[ADDR6]:PORT" or "PORT" (loopback,
 * 127.0.0.1), numeric addresses only (nothing is looked up); port 0: one
 * the kernel picks. Returns 0, or -1 with err saying what is wrong. */
int qm_parse_addr(const char *spec, struct sockaddr_storage *addr, char *err, size_t errlen);
/* addr with port as "ADDR:PORT" or "[ADDR6]:PORT" into out. */
void qm_addr_string(const struct sockaddr_storage *addr, unsigned port, char *out, size_t len);

typedef struct qm_server qm_server;

/* Serves GET /metrics on spec (qm_parse_addr) from a thread of its own;
 * call with the signals the caller takes as fds blocked, so that its
 * threads never take them. NULL with err saying why (the address, and why
 * it cannot listen there). `where` gets the address it listens on
 * ("127.0.0.1:9464"). */
qm_server *qm_serve(const char *spec, char *where, size_t wherelen, char *err, size_t errlen);
/* The text scrapes get from now on (copied). */
void qm_publish(qm_server *m, const char *text, size_t len);
void qm_stop(qm_server *m);

#endif
