/* fuzz_spool.c - libFuzzer target for what the supervisor reads from a spool
 * file a misbehaving program wrote: records of every type, valid ones
 * mutated by the input, raw input lines, and damaged stretches (short and
 * longer than any record, of NUL bytes or garbage, with or without a
 * newline before the next record). Each line gets a correct checksum (so
 * the JSON and each record's handling are reached) unless the input says
 * otherwise. Importing must never fault, must store each record at most
 * once, must store the record after a damaged stretch (a marker), also
 * when the supervisor is killed while the stretch is the end of the file,
 * and must leave no file behind. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <sqlite3.h>

#include "spool.h"
#include "store.h"

#define RECORD_MAX (4L << 20) /* as spool.c: no record is longer */
#define LONG_BUDGET (96L << 20) /* bytes of long stretches over a whole run */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const templates[] = {
    "{\"type\":\"spool\",\"installation\":\"fz\",\"run\":\"r\"}",
    "{\"type\":\"hello\",\"pid\":9,\"time_ns\":1,\"build_id\":\"\",\"plan\":\"a=1\",\"exe\":\"EXE\","
    "\"components\":[{\"name\":\"a\",\"entries\":[\"main\",\"LLVMFuzzerTestOneInput\"]},"
    "{\"name\":\"b\",\"entries\":[]}]}",
    "{\"type\":\"fault\",\"host_pid\":9,\"build_id\":\"x\",\"plan\":\"a=1\",\"report\":1,"
    "\"time_ns\":2,\"kind\":\"signal\",\"domain\":1,\"pid\":10,\"signal\":11,\"component\":\"a\","
    "\"entry\":\"f\",\"reason\":\"r\",\"calls_failed\":1,\"recovery_ns\":5,"
    "\"backtrace\":[\"0x10 f+0x1 (f.c:1)\",\"zz\",7]}",
    "{\"type\":\"host-crash\",\"pid\":9,\"time_ns\":3,\"build_id\":\"\",\"plan\":\"a=host\","
    "\"tid\":9,\"signal\":11,\"code\":1,\"fault_addr\":\"0x0\",\"exe\":\"EXE\","
    "\"frames\":[\"0x1000\",\"0x401000\",\"junk\",\"0xffffffffffffffff\"],"
    "\"modules\":[{\"path\":\"EXE\",\"base\":\"0x0\",\"build_id\":\"\"},"
    "{\"path\":\"/nonexistent\",\"base\":\"0x7f0000000000\",\"build_id\":\"00\"}]}",
    "{\"type\":\"stats\",\"pid\":9,\"time_ns\":4,\"build_id\":\"\",\"plan\":\"a=1\","
    "\"components\":[{\"name\":\"a\",\"domain\":1,\"calls\":5,\"crossings\":5,\"cross_ns\":9,"
    "\"faults\":1},{\"name\":null},7]}",
    "{\"type\":\"exit\",\"pid\":9,\"time_ns\":5,\"signal\":11}",
    "{\"type\":\"dropped\",\"pid\":9,\"dropped\":3}",
};
#define NT (sizeof templates / sizeof templates[0])

static qs_store *store;
static char dir[64], exe[PATH_MAX];

static void cleanup(void) {
    char path[128];
    snprintf(path, sizeof path, "%s.db", dir);
    qs_close(store);
    unlink(path);
    rmdir(dir);
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/qtn-fuzz-spool-%d", (int)getpid());
    char path[128], err[512];
    snprintf(path, sizeof path, "%s.db", dir);
    unlink(path);
    store = qs_open(path, 0, err, sizeof err);
    if (!store) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    atexit(cleanup);
}

static void line(FILE *f, const char *json, size_t n, int good) {
    uLong c = crc32(0, (const Bytef *)json, (uInt)n);
    fprintf(f, "%08lx ", (good ? c : c ^ 1) & 0xffffffffUL);
    fwrite(json, 1, n, f);
    fputc('\n', f);
}

/* Copies template t into rec, with the fuzzer's own executable for EXE (it
 * is then symbolised for real). Returns the length. */
static size_t subst(char *rec, size_t cap, const char *t) {
    size_t k = 0;
    for (const char *e; (e = strstr(t, "EXE")) && k < cap; t = e + 3)
        k += (size_t)snprintf(rec + k, cap - k, "%.*s%s", (int)(e - t), t, exe);
    if (k < cap)
        k += (size_t)snprintf(rec + k, cap - k, "%s", t);
    return k;
}

/* Marker records, each after a damaged stretch: they must be stored. */
static int markers[64], nmarkers;
static long split; /* where the first long stretch ends: the file's end once */

/* A damaged stretch: 0xfe, then its length, its fill byte and whether a
 * newline ends it (else the next record is glued to it), then a marker
 * record. One stretch per input (while the run's budget lasts) is longer
 * than a record can be, around that limit or well past it. */
static size_t stretch(FILE *f, const uint8_t *d, size_t i, size_t n, int *longs) {
    static long budget = LONG_BUDGET;
    static int seq;
    uint8_t k = i < n ? d[i] : 0, b = i + 1 < n ? d[i + 1] : 0, how = i + 2 < n ? d[i + 2] : 0;
    static const long sizes[] = {RECORD_MAX - 1, RECORD_MAX, RECORD_MAX + 1, RECORD_MAX + 9,
                                 5L << 20, (9L << 20) + 17};
    long len = (k + 1) * 37L;
    if (!(how & 2) && !*longs && budget > 0) {
        len = sizes[k % 6];
        budget -= len;
        (*longs)++;
    }
    int fill = b == '\n' ? 0 : b;
    static char block[65536];
    memset(block, fill, sizeof block);
    for (long w = 0; w < len; w += (long)sizeof block)
        fwrite(block, 1, (size_t)(len - w < (long)sizeof block ? len - w : (long)sizeof block), f);
    if (how & 1)
        fputc('\n', f);
    if (*longs == 1 && len >= RECORD_MAX - 1 && !split)
        split = ftell(f); /* the first part ends in the stretch */
    char rec[512];
    int m = 1000000 + seq++;
    int k2 = snprintf(rec, sizeof rec,
                      "{\"type\":\"fault\",\"host_pid\":9,\"proc\":\"m\",\"report\":%d,"
                      "\"time_ns\":2,\"kind\":\"signal\",\"domain\":1,\"component\":\"a\","
                      "\"reason\":\"marker\",\"backtrace\":[]}",
                      m);
    line(f, rec, (size_t)k2, 1);
    if (nmarkers < (int)(sizeof markers / sizeof markers[0]))
        markers[nmarkers++] = m;
    return i + 3 < n ? i + 3 : n;
}

/* Writes a spool file from the input: each input byte picks a template (low
 * bits) and whether to damage it; the next bytes, if any, overwrite bytes of
 * it; a 0xff byte makes the rest of the input one raw line; 0xfe a damaged
 * stretch. */
static void build(FILE *f, const uint8_t *d, size_t n) {
    char rec[2048];
    size_t i = 0;
    int longs = 0;
    while (i < n) {
        uint8_t op = d[i++];
        if (op == 0xfe) {
            i = stretch(f, d, i, n, &longs);
            continue;
        }
        if (op == 0xff) {
            size_t k = 0;
            while (i < n && d[i] != '\n' && k < sizeof rec)
                rec[k++] = (char)d[i++];
            line(f, rec, k, 1);
            continue;
        }
        size_t k = subst(rec, sizeof rec, templates[op % NT]);
        if (k >= sizeof rec)
            k = sizeof rec - 1;
        int mutations = (op >> 3) & 3;
        for (int m = 0; m < mutations && i + 1 < n; m++, i += 2)
            rec[d[i] % k] = d[i + 1] == '\n' ? ' ' : (char)d[i + 1];
        line(f, rec, k, !(op & 0x80) || (op & 0x40));
    }
    if (n && d[n - 1] == 0x7f)
        fputs("0badc0de {\"type\":", f); /* torn */
}

/* Imports until a round finds nothing new (rounds read 64 MiB at most). */
static void import_all(qs_spool *sp) {
    char err[512];
    int r, rounds = 0;
    while ((r = qs_spool_import(sp, store, NULL, NULL, err, sizeof err)) > 0 && ++rounds < 1000)
        ;
    if (r != 0) { /* a second round finds nothing new */
        fprintf(stderr, "fuzz_spool: import: %d %s\n", r, err);
        abort();
    }
}

static int stored(int marker) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(qs_db(store), "SELECT COUNT(*) FROM reports WHERE seq = ? AND"
                                         " reason = 'marker' AND proc = 'm'",
                           -1, &st, NULL) != SQLITE_OK)
        abort();
    sqlite3_bind_int(st, 1, marker);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!store)
        setup();
    static int seq;
    char name[64], path[160], err[512];
    snprintf(name, sizeof name, "r-%d.spool", seq++);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    mkdir(dir, 0700);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        abort();
    nmarkers = 0;
    split = 0;
    build(m, data, size);
    fclose(m);
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    qs_spool *sp;
    if (split > 0 && (size_t)split < len) {
        /* a supervisor imports while the file ends in the stretch, and is
         * killed; the program writes on; the next one goes on */
        if (fwrite(text, 1, (size_t)split, f) != (size_t)split || fflush(f))
            abort();
        sp = qs_spool_open(dir, name, "fz", err, sizeof err);
        if (!sp)
            abort();
        import_all(sp);
        qs_spool_close(sp);
    }
    long from = split > 0 && (size_t)split < len ? split : 0;
    if (fwrite(text + from, 1, len - (size_t)from, f) != len - (size_t)from)
        abort();
    fclose(f);
    free(text);
    sp = qs_spool_open(dir, name, "fz", err, sizeof err);
    if (!sp)
        abort();
    import_all(sp);
    if (qs_spool_finish(sp, store, 0, NULL, NULL, err, sizeof err) != 1) {
        fprintf(stderr, "fuzz_spool: %s not finished: %s\n", name, err);
        abort();
    }
    qs_spool_close(sp);
    if (access(path, F_OK) == 0)
        abort();
    for (int i = 0; i < nmarkers; i++)
        if (stored(markers[i]) != 1) { /* the record after the damage */
            fprintf(stderr, "fuzz_spool: marker %d not stored\n", markers[i]);
            abort();
        }
    return 0;
}
