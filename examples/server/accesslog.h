/* accesslog.h - component `accesslog`: formats access log lines and keeps
 * the latest ones in memory (GET /log), in a buffer as Apache's buffered
 * log keeps them.
 *
 * The lines in memory are state that may be lost; the server writes each
 * line it gets back to the --access-log file itself, and drops the line
 * when formatting fails.
 *
 * Bug `log` (SERVER_BUGS=log): alog_format() appends to the buffer without a
 * lock, checking for room and copying in two steps (atomicity violation, as
 * in Apache). See accesslog.c. */
#ifndef SRV_ACCESSLOG_H
#define SRV_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

#include "quarantine.h"

#define ALOG_BUFSIZE 4096 /* the in-memory buffer, as Apache's LOG_BUFSIZE */
#define ALOG_LINE_MAX 512 /* longest line formatted */

/* One request, as the server saw it (crosses as its bytes: no pointers). */
typedef struct alog_entry {
    char client[64];
    char method[16];
    char path[256];
    char version[16];
    int32_t status;
    uint64_t bytes;       /* body bytes sent */
    int64_t time_s;       /* when it arrived, seconds since the epoch */
    uint32_t duration_us; /* arrival to answer */
} alog_entry;

/* Formats e as one line (Common Log Format and the duration, ending with a
 * newline) into out, appends it to the buffer of latest lines, and returns
 * its length; -1 if it does not fit in cap. Fault value -2: the caller
 * drops the line. */
QTN_COMPONENT(accesslog) QTN_FAULT(-2)
int32_t alog_format(const alog_entry *e QTN_IN(1),
                    char *out QTN_OUT_BYTES(cap) QTN_ACTUAL(return), size_t cap);

/* Copies the latest lines (up to 2 * ALOG_BUFSIZE bytes, oldest first) to
 * out and returns their length. Fault value -1: the caller answers 503. */
QTN_COMPONENT(accesslog) QTN_FAULT(-1)
int32_t alog_recent(char *out QTN_OUT_BYTES(cap) QTN_ACTUAL(return), size_t cap);

#endif
