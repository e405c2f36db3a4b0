/* fuzz_spool.c - libFuzzer target for what the supervisor reads from a spool
 * file a misbehaving program wrote: records of every type, valid ones
 * mutated by the input, and raw input lines. Each line gets a correct
 * checksum (so the JSON and each record's handling are reached) unless the
 * input says otherwise. Importing must never fault, must store each record
 * at most once, and must leave no file behind. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "spool.h"
#include "store.h"

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

/* Writes a spool file from the input: each input byte picks a template (low
 * bits) and whether to damage it; the next bytes, if any, overwrite bytes of
 * it; a 0xff byte makes the rest of the input one raw line. */
static void build(FILE *f, const uint8_t *d, size_t n) {
    char rec[2048];
    size_t i = 0;
    while (i < n) {
        uint8_t op = d[i++];
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!store)
        setup();
    static int seq;
    char name[64], path[160], err[512];
    snprintf(name, sizeof name, "r-%d.spool", seq++);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    mkdir(dir, 0700);
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    build(f, data, size);
    fclose(f);
    qs_spool *sp = qs_spool_open(dir, name, "fz", err, sizeof err);
    if (!sp)
        abort();
    int a = qs_spool_import(sp, store, NULL, NULL, err, sizeof err);
    int b = qs_spool_import(sp, store, NULL, NULL, err, sizeof err);
    if (a < 0 || b != 0) /* a second round finds nothing new */
        abort();
    if (qs_spool_finish(sp, store, 0, NULL, NULL, err, sizeof err) != 1)
        abort();
    qs_spool_close(sp);
    if (access(path, F_OK) == 0)
        abort();
    return 0;
}
