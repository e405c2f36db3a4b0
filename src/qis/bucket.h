/* bucket.h - crash buckets: a signature per report, from its stored frames,
 * and the reports of one signature grouped (docs/buckets.md has the rules).
 *
 * Signatures are computed when the store is read, not stored: a change of
 * the rules re-buckets every report at once, and QB_RULES_VERSION, printed
 * with every bucket view, says which rules made them. */
#ifndef QTN_BUCKET_H
#define QTN_BUCKET_H

#include <stdint.h>
#include <stdio.h>

#include "store.h"

#define QB_RULES_VERSION 1 /* bump with any change to what qb_signature() yields */
#define QB_TOP 3           /* frames a signature keeps */
#define QB_SIG_MAX 512

/* One stored frame: "fn+0x1c (file.c:42)", "libz.so.1+0x3f10" or "?", and
 * the component whose code it is ("" none or not known). */
typedef struct qb_frame {
    const char *symbol, *component;
} qb_frame;

/* The signature of one report (innermost frame first) into out:
 * "KIND SIGNAME: f1 | f2 | f3", or "KIND SIGNAME: [component.entry]" when no
 * frame is left after the rules' skips. */
void qb_signature(const char *kind, int sig, const char *component, const char *entry,
                  const qb_frame *frames, int n, char *out, size_t len);

/* 1 when `file` (a base name, "call.c") is a source file of the runtime,
 * whose frames signatures skip. */
int qb_runtime_file(const char *file);

/* One report, as grouping needs it. */
typedef struct qb_report {
    int64_t id, time_ns;
    const char *installation, *component, *signature;
    int build; /* index in the builds; -1: not known */
} qb_report;

typedef struct qb_build {
    char id[48];
    int64_t first_ns; /* first seen: started, or a report of it */
} qb_build;

typedef struct qb_bucket {
    char signature[QB_SIG_MAX];
    char component[64];        /* its latest report's */
    int64_t count, installations;
    int64_t first_ns, last_ns;
    int64_t example;           /* the latest report's id */
    int64_t *per_build;        /* reports per build (nbuilds of them) */
    int is_new;                /* seen in this build and in no build before */
    int regressed;             /* seen in this build after a build where it was quiet */
} qb_bucket;

typedef struct qb_set {
    qb_build *builds; /* in the order they were first seen */
    int nbuilds;
    int current;      /* "this build": the one started last (-1: none known) */
    qb_bucket *buckets; /* most reports first */
    int n;
    int64_t reports;
} qb_set;

/* Groups n reports by signature into out->buckets, given out->builds,
 * out->nbuilds and out->current. Returns 0, or -1 out of memory. */
int qb_group(const qb_report *r, int n, qb_set *out);

/* Reads the reports since `since_ns` (0: all) and the builds from the store
 * and groups them. Returns 0, or -1 with err saying why. */
int qb_read(qs_store *s, int64_t since_ns, qb_set *out, char *err, size_t errlen);

void qb_free(qb_set *set);

/* The bucket view of `quarantine report --buckets`, as text or JSON, with
 * the rules version and each bucket's example report and its frames.
 * Returns 0, or -1 with err saying why. */
int qb_print(qs_store *s, FILE *out, int json, int64_t since_ns, char *err, size_t errlen);

#endif
