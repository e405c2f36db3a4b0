/* statsfile.h - the statistics area: every counter the runtime keeps (calls
 * per caller -> callee edge, crossings, their time, bytes and overhead,
 * faults, recovery times, work done, CPU), laid out in one mapping.
 *
 * Under `quarantine run` the mapping is a file the supervisor made and
 * passed as QTN_STATS_FD: the supervisor reads it while the program runs and
 * after it is gone, however it ended (a host crash, SIGKILL, SIGTERM), so
 * no exposure is lost between snapshots. Otherwise it is anonymous memory
 * of the program's own. Either way statistics records are made from it by
 * one function, qtn__sf_json(), which the supervisor links too.
 *
 * Direct calls are counted per thread, in a row of the area the thread owns
 * while it lives (the stub's increment stays a plain add); a row is folded
 * into the edge totals when its thread exits. Domain processes do not map
 * the supervisor's file (they are forked from the zygote, made before it is
 * mapped): what a domain could write, the supervisor does not read. */
#ifndef QTN_STATSFILE_H
#define QTN_STATSFILE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "quarantine.h"

#define QTN__SF_MAGIC 0x31465351u /* "QSF1" */
#define QTN__SF_VERSION 3
#define QTN__SF_ROWS 4096         /* threads with a row at once; more count at exit */
#define QTN__SF_NAME 64

typedef struct qtn__sf_head {
    uint32_t magic, version;
    uint64_t size;          /* bytes of the area */
    uint32_t rows, edges_max, comps_max;
    _Atomic uint32_t ncomps; /* components registered, ids 1..ncomps */
    _Atomic uint32_t nedges; /* edges registered, ids 1..nedges */
    _Atomic uint32_t rows_hwm; /* rows 0..rows_hwm-1 may hold counts */
    int32_t pid;
    uint32_t ncpu;
    _Atomic int64_t start_ns;  /* CLOCK_REALTIME at qtn_init */
    _Atomic uint64_t work;     /* qtn_work_done() */
    _Atomic uint64_t cpu_ns;   /* CPU of the host and its live domains ... */
    _Atomic int64_t cpu_at_ns; /* ... as of this time (CLOCK_REALTIME) */
    _Atomic int64_t final_ns;  /* the supervisor's: time of a dead program's last snapshot */
    char build_id[48];
    char proc[40];             /* the process's identity */
    _Atomic uint8_t plan[QTN_COMPONENTS_MAX + 1]; /* domain per component id */
    _Atomic uint8_t parked[QTN_DOMAINS_MAX + 1];  /* per domain: parked now (1) */
} qtn__sf_head;

typedef struct qtn__sf_comp {
    char name[QTN__SF_NAME];
    _Atomic uint64_t domain_faults; /* faults of a domain blamed on it */
    _Atomic uint64_t rec_total, rec_max;
    _Atomic uint64_t parked_calls; /* calls that failed because its domain was parked */
    _Atomic uint64_t stale_calls;  /* calls refused for a stale handle (QTN_ESTALE) */
} qtn__sf_comp;

typedef struct qtn__sf_edge {
    uint32_t caller, callee;  /* component ids; 0: the program (code outside components) */
    char entry[QTN__SF_NAME];
    _Atomic uint64_t calls_gone; /* direct calls of threads whose row was folded */
    _Atomic uint64_t calls_slow; /* calls made through qtn_call */
    _Atomic uint64_t crossings, ns_total, ns_max, faults;
    _Atomic uint64_t bytes;      /* copied across, both ways */
    _Atomic uint64_t overhead_ns; /* crossing time the callee did not spend working */
} qtn__sf_edge;

/* Where each part lies in the area. */
#define QTN__SF_COMPS_OFF 4096u
#define QTN__SF_EDGES_OFF                                                                   \
    ((QTN__SF_COMPS_OFF + (QTN_COMPONENTS_MAX + 1) * sizeof(qtn__sf_comp) + 4095) & ~(size_t)4095)
#define QTN__SF_ROWS_OFF                                                                    \
    ((QTN__SF_EDGES_OFF + QTN__EDGE_MAX * sizeof(qtn__sf_edge) + 4095) & ~(size_t)4095)
#define QTN__SF_ROW_SIZE (QTN__EDGE_MAX * sizeof(uint64_t))
#define QTN__SF_SIZE (QTN__SF_ROWS_OFF + (size_t)QTN__SF_ROWS * QTN__SF_ROW_SIZE)

static inline qtn__sf_comp *qtn__sf_comps(void *area) {
    return (qtn__sf_comp *)((char *)area + QTN__SF_COMPS_OFF);
}
static inline qtn__sf_edge *qtn__sf_edges(void *area) {
    return (qtn__sf_edge *)((char *)area + QTN__SF_EDGES_OFF);
}
static inline uint64_t *qtn__sf_row(void *area, uint32_t r) {
    return (uint64_t *)((char *)area + QTN__SF_ROWS_OFF + (size_t)r * QTN__SF_ROW_SIZE);
}

/* Writes a statistics record, `{"type":"stats",...}` (docs/supervisor.md),
 * from the area of `len` bytes as of time_ns (CLOCK_REALTIME). Checks what
 * it reads (the area of a dead program may be torn). Returns the length
 * written, or -1 when the area is not one or buf is too small. */
int qtn__sf_json(void *area, size_t len, int64_t time_ns, char *buf, size_t cap);

/* Calls of edge id (1..nedges) made so far, every row included. */
uint64_t qtn__sf_calls(void *area, uint32_t id);

#endif
