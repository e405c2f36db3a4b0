/* test_spool.c - importing spool files into the store, on files written by
 * hand: a pid that comes again is another process (its reports are all
 * stored); damage of any length (a block of NUL bytes, a stretch with no
 * newline longer than any record, a torn record glued to the next) is
 * skipped and said once, and the records after it are stored, once, across
 * supervisor restarts, without the file held in memory; statistics with
 * parked domains; a host crash naming a FIFO as a module. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <zlib.h>

#include "spool.h"
#include "store.h"
#include "storeq.h"

#define MIB (1L << 20)

static char dir[64], db[96], logbuf[1 << 16];
static size_t loglen;
static qs_store *st;

static void on_log(void *ctx, const char *event) {
    (void)ctx;
    int k = snprintf(logbuf + loglen, sizeof logbuf - loglen, "event=%s\n", event);
    if (k > 0 && (size_t)k < sizeof logbuf - loglen)
        loglen += (size_t)k;
}

/* Counts log lines containing needle. */
static int logged(const char *needle) {
    int n = 0;
    for (const char *p = logbuf; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static int setup(void **state) {
    (void)state;
    char cmd[512], err[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s-wal %s-shm && mkdir -p %s", dir, db, db, db, dir);
    assert_int_equal(system(cmd), 0);
    st = qs_open(db, 0, err, sizeof err);
    if (!st)
        fail_msg("%s", err);
    loglen = 0;
    logbuf[0] = 0;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    qs_close(st);
    st = NULL;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s-wal %s-shm", dir, db, db, db);
    return system(cmd) == 0 ? 0 : -1;
}

static long long query(const char *sql) { return tsq_one(qs_db(st), sql); }

static FILE *spool_file(const char *name, const char *mode) {
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, mode);
    assert_non_null(f);
    return f;
}

/* Appends a record as the runtime writes it: checksum, space, JSON, newline
 * (without the newline with glue: the next bytes follow at once). */
static void put(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(FILE *f, const char *fmt, ...) {
    char json[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(json, sizeof json, fmt, ap);
    va_end(ap);
    uLong c = crc32(0, (const Bytef *)json, (uInt)strlen(json));
    fprintf(f, "%08lx %s\n", c & 0xffffffffUL, json);
}

static void fill(FILE *f, int byte, long n) {
    static char block[65536];
    memset(block, byte, sizeof block);
    for (long k = 0; k < n; k += (long)sizeof block)
        fwrite(block, 1, (size_t)(n - k < (long)sizeof block ? n - k : (long)sizeof block), f);
}

static void header(FILE *f) {
    put(f, "{\"type\":\"spool\",\"installation\":\"box\",\"run\":\"r\",\"start_ns\":1,"
           "\"after_crash_ns\":0}");
}

/* A hello as the runtime writes it now (no "proc"), or with one. */
static void hello(FILE *f, int pid, const char *proc) {
    char p[80] = "";
    if (proc)
        snprintf(p, sizeof p, ",\"proc\":\"%s\"", proc);
    put(f,
        "{\"type\":\"hello\",\"pid\":%d%s,\"time_ns\":10,\"build_id\":\"b\",\"plan\":\"\","
        "\"exe\":\"/nonexistent/prog\",\"components\":[{\"name\":\"fx\",\"code_id\":"
        "\"cid-fx\",\"entries\":[\"fx_crash\"]}],\"modules\":[]}",
        pid, p);
}

static void fault(FILE *f, int pid, const char *proc, int n) {
    char p[80] = "";
    if (proc)
        snprintf(p, sizeof p, ",\"proc\":\"%s\"", proc);
    put(f,
        "{\"type\":\"fault\",\"host_pid\":%d%s,\"build_id\":\"b\",\"plan\":\"fx=1\","
        "\"report\":%d,\"time_ns\":%d,\"kind\":\"signal\",\"domain\":1,\"pid\":900,"
        "\"signal\":11,\"component\":\"fx\",\"entry\":\"fx_crash\",\"reason\":\"r\","
        "\"calls_failed\":1,\"recovery_ns\":5,\"backtrace\":[]}",
        pid, p, n, 100 + n);
}

static void stats(FILE *f, int pid, const char *proc, long long t, long long calls) {
    put(f,
        "{\"type\":\"stats\",\"pid\":%d,\"proc\":\"%s\",\"time_ns\":%lld,\"build_id\":\"b\","
        "\"plan\":\"fx=1\",\"start_ns\":5,\"work\":0,\"cpu_ns\":1,\"cpu_at_ns\":%lld,\"ncpu\":1,"
        "\"components\":[{\"name\":\"fx\",\"domain\":1,\"calls\":%lld,\"crossings\":%lld,"
        "\"cross_ns\":9,\"faults\":0}],\"edges\":[]}",
        pid, proc, t, t, calls, calls);
}

static void host_crash(FILE *f, int pid, int sig, const char *modules) {
    put(f,
        "{\"type\":\"host-crash\",\"pid\":%d,\"time_ns\":500,\"build_id\":\"b\",\"plan\":\"\","
        "\"signal\":%d,\"fault_addr\":\"0x10\",\"exe\":\"/nonexistent/prog\","
        "\"frames\":[\"0x1000\",\"0x2000\"],\"modules\":%s}",
        pid, sig, modules ? modules : "[]");
}

/* Imports spool `name` as a supervisor does: every round until nothing is
 * new, then finishes it if asked. Returns the records stored. */
static int import(const char *name, int finish) {
    char err[512];
    qs_spool *sp = qs_spool_open(dir, name, "box", err, sizeof err);
    if (!sp)
        fail_msg("%s", err);
    int total = 0, n;
    while ((n = qs_spool_import(sp, st, on_log, NULL, err, sizeof err)) > 0)
        total += n;
    if (n < 0)
        fail_msg("%s", err);
    if (finish && qs_spool_finish(sp, st, 0, on_log, NULL, err, sizeof err) != 1)
        fail_msg("%s not finished: %s", name, err);
    qs_spool_close(sp);
    return total;
}

/* ---- a pid that comes again -------------------------------------------------------- */

/* Two program processes of one run with the same pid (a pid namespace: a
 * container's program is pid 1 every time), each in its spool file, with
 * hellos as the runtime writes them (no identity: the records after carry
 * it), each with fault reports 1..N and a crash: all stored; their starts
 * and statistics under their own identities. */
static void test_same_pid_two_spools(void **state) {
    (void)state;
    const int N = 5;
    const char *procs[] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"};
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "r-%d.spool", k + 1);
        FILE *f = spool_file(name, "w");
        header(f);
        hello(f, 1, NULL);
        for (int i = 1; i <= N; i++)
            fault(f, 1, procs[k], i);
        stats(f, 1, procs[k], 1000 + k, 10 * (k + 1));
        host_crash(f, 1, 11, NULL);
        put(f, "{\"type\":\"exit\",\"pid\":1,\"time_ns\":600,\"signal\":11}");
        fclose(f);
        import(name, 1);
    }
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind = 'signal'"), 2 * N);
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind = 'host-crash'"), 2);
    assert_int_equal(query("SELECT COUNT(DISTINCT proc) FROM reports WHERE kind = 'signal'"), 2);
    assert_int_equal(query("SELECT COUNT(*) FROM starts WHERE proc IN ('aaaaaaaaaaaaaaaaaaaaaaaaa"
                           "aaaaaaa', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb')"),
                     2); /* the stand-in renamed when the first fault said */
    assert_int_equal(query("SELECT COUNT(*) FROM proc_stats"), 2);
    /* each process's records in the context of its own hello */
    assert_int_equal(query("SELECT COUNT(*) FROM stats WHERE code_id = 'cid-fx'"), 2);
    assert_int_equal(query("SELECT COUNT(*) FROM components WHERE code_id = 'cid-fx'"), 1);
    assert_int_equal(query("SELECT COUNT(*) FROM report_blame WHERE code_id = 'cid-fx'"), 2 * N);
    char *buf = NULL, err[512];
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    assert_int_equal(qs_print(st, o, 0, 0, 5, err, sizeof err), 0);
    fclose(o);
    if (!strstr(buf, "fx               domain 1          30         30       10"))
        fail_msg("both processes' calls, both's faults:\n%s", buf);
    free(buf);
}

/* One spool file: a program that execs itself keeps its pid and says hello
 * again, with a new identity; an older runtime carries no identity at all.
 * Either way, each process's reports 1..N are all stored. */
static void test_same_pid_one_spool(void **state) {
    (void)state;
    const int N = 4;
    FILE *f = spool_file("r-1.spool", "w");
    header(f);
    hello(f, 7, "cccccccccccccccccccccccccccccccc");
    for (int i = 1; i <= N; i++)
        fault(f, 7, "cccccccccccccccccccccccccccccccc", i);
    hello(f, 7, "dddddddddddddddddddddddddddddddd");
    for (int i = 1; i <= N; i++)
        fault(f, 7, "dddddddddddddddddddddddddddddddd", i);
    hello(f, 7, NULL); /* an older runtime: no identity anywhere */
    for (int i = 1; i <= N; i++)
        fault(f, 7, NULL, i);
    fclose(f);
    f = spool_file("r-2.spool", "w");
    header(f);
    hello(f, 7, NULL);
    for (int i = 1; i <= N; i++)
        fault(f, 7, NULL, i);
    fclose(f);
    assert_int_equal(import("r-1.spool", 1) + import("r-2.spool", 1), 4 * N + 4 + 2);
    assert_int_equal(query("SELECT COUNT(*) FROM reports"), 4 * N);
    assert_int_equal(query("SELECT COUNT(DISTINCT proc) FROM reports"), 4);
    assert_int_equal(query("SELECT COUNT(*) FROM starts"), 4);
}

/* The supervisor's record of how the program ended, after the crash
 * handler's record of the same death: one report. Also when the program
 * ran under a wrapper (a pid namespace: the supervisor saw another pid). */
static void test_crash_told_twice_is_one(void **state) {
    (void)state;
    FILE *f = spool_file("r-1.spool", "w");
    header(f);
    hello(f, 3, NULL);
    host_crash(f, 3, 11, NULL);
    stats(f, 3, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", 900, 1); /* the statistics file's last */
    put(f, "{\"type\":\"exit\",\"pid\":3,\"time_ns\":600,\"signal\":11}");
    fclose(f);
    f = spool_file("r-2.spool", "w");
    header(f);
    hello(f, 1, NULL);
    host_crash(f, 1, 6, NULL);
    put(f, "{\"type\":\"exit\",\"pid\":4242,\"time_ns\":600,\"signal\":6}");
    fclose(f);
    f = spool_file("r-3.spool", "w"); /* a program without the runtime: from its exit alone */
    header(f);
    put(f, "{\"type\":\"exit\",\"pid\":4243,\"time_ns\":600,\"signal\":9}");
    fclose(f);
    import("r-1.spool", 1);
    import("r-2.spool", 1);
    import("r-3.spool", 1);
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind = 'host-crash'"), 3);
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE json IS NULL"), 1);
    /* the crash of r-1 took the identity its process's statistics said */
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE proc ="
                           " 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee'"),
                     1);
}

/* ---- damage of any length ------------------------------------------------------------ */

/* Damage longer than 4 MiB with no newline, then records: skipped, said
 * once with its offset and length; the records after it stored. */
static void test_long_damage_then_records(void **state) {
    (void)state;
    FILE *f = spool_file("r-1.spool", "w");
    header(f);
    fault(f, 7, "p", 1);
    long at = ftell(f);
    fill(f, 'x', 5 * MIB);
    fputc('\n', f);
    fault(f, 7, "p", 2);
    fault(f, 7, "p", 3);
    fclose(f);
    assert_int_equal(import("r-1.spool", 1), 4);
    assert_int_equal(query("SELECT COUNT(*) FROM reports"), 3);
    char want[256];
    snprintf(want, sizeof want, "offset=%ld bytes=%ld why=\"no newline in 4 MiB", at, 5 * MIB + 1);
    if (logged("event=bad-record") != 1 || !logged(want))
        fail_msg("want one bad-record with %s in:\n%s", want, logbuf);
}

/* A block of NUL bytes (what a machine's crash can leave where records
 * were), the next record right after it, no newline between: long and
 * short ones. And a torn record with the next one glued to it. */
static void test_nul_blocks_and_glued_records(void **state) {
    (void)state;
    FILE *f = spool_file("r-1.spool", "w");
    header(f);
    fault(f, 7, "p", 1);
    long at1 = ftell(f);
    fill(f, 0, 5 * MIB + 3);
    fault(f, 7, "p", 2);
    long at2 = ftell(f);
    fill(f, 0, 4096);
    fault(f, 7, "p", 3);
    long at3 = ftell(f);
    const char torn[] = "0badc0de {\"type\":\"fault\",\"host_pid\":7,\"rep";
    fputs(torn, f); /* its writer died writing it; the next record follows */
    fault(f, 7, "p", 4);
    fill(f, 0, 100);
    fputc('\n', f);
    fault(f, 7, "p", 5);
    fclose(f);
    assert_int_equal(import("r-1.spool", 1), 6);
    assert_int_equal(query("SELECT COUNT(*) FROM reports"), 5);
    char want[256];
    snprintf(want, sizeof want, "offset=%ld bytes=%ld why=\"NUL bytes\"", at1, 5 * MIB + 3);
    assert_non_null(strstr(logbuf, want));
    snprintf(want, sizeof want, "offset=%ld bytes=4096 why=\"NUL bytes\"", at2);
    assert_non_null(strstr(logbuf, want));
    snprintf(want, sizeof want, "offset=%ld bytes=%zu why=\"checksum mismatch\"", at3,
             sizeof torn - 1);
    if (!strstr(logbuf, want))
        fail_msg("missing %s in:\n%s", want, logbuf);
    assert_int_equal(logged("event=bad-record"), 4);
    assert_int_equal(logged("bytes=101 why=\"NUL bytes\""), 1);
}

/* Damage at the end of the file while the supervisor imports; it is killed
 * (its spool object gone), the program appends more, the next supervisor
 * goes on from the offset stored: every record once. */
static void test_damage_across_restarts(void **state) {
    (void)state;
    char err[512];
    FILE *f = spool_file("r-1.spool", "w");
    header(f);
    fault(f, 7, "p", 1);
    fill(f, 0, 6 * MIB); /* zeroed blocks at the end */
    fflush(f);
    qs_spool *sp = qs_spool_open(dir, "r-1.spool", "box", err, sizeof err);
    assert_non_null(sp);
    assert_int_equal(qs_spool_import(sp, st, on_log, NULL, err, sizeof err), 2);
    assert_int_equal(qs_spool_import(sp, st, on_log, NULL, err, sizeof err), 0);
    qs_spool_close(sp);    /* the supervisor killed */
    fault(f, 7, "p", 2);   /* right after the NUL bytes */
    fill(f, 'z', 3 * MIB); /* garbage, its end not written yet */
    fflush(f);
    sp = qs_spool_open(dir, "r-1.spool", "box", err, sizeof err);
    assert_non_null(sp);
    assert_int_equal(qs_spool_import(sp, st, on_log, NULL, err, sizeof err), 1);
    qs_spool_close(sp);
    fill(f, 'z', 3 * MIB); /* now longer than any record */
    fault(f, 7, "p", 3);
    fault(f, 7, "p", 4);
    fclose(f);
    assert_int_equal(import("r-1.spool", 0), 2);
    assert_int_equal(import("r-1.spool", 1), 0); /* and again: nothing twice */
    assert_int_equal(query("SELECT COUNT(*) FROM reports"), 4);
    assert_int_equal(query("SELECT COUNT(*) FROM spools"), 0);
}

/* A stretch far longer than the window is read, not held: the import's
 * memory does not grow with it. */
static void test_damage_is_not_held_in_memory(void **state) {
    (void)state;
    FILE *f = spool_file("r-1.spool", "w");
    header(f);
    fill(f, 'q', 96 * MIB);
    fault(f, 7, "p", 1);
    fclose(f);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    assert_int_equal(import("r-1.spool", 1), 2);
    getrusage(RUSAGE_SELF, &after);
    assert_int_equal(query("SELECT COUNT(*) FROM reports"), 1);
    long grew_kib = after.ru_maxrss - before.ru_maxrss;
    if (grew_kib > 40 * 1024)
        fail_msg("importing 96 MiB of damage grew the process by %ld KiB", grew_kib);
}

/* ---- parked domains ---------------------------------------------------------------- */

/* Statistics records whose components say their domain is parked, and how
 * many calls failed at once because of it; records without the fields
 * (a runtime before them) count 0. */
static void test_parked_from_records(void **state) {
    (void)state;
    FILE *f = spool_file("r-1.spool", "w");
    header(f);
    hello(f, 7, "pppppppppppppppppppppppppppppppp");
    put(f, "{\"type\":\"stats\",\"pid\":7,\"proc\":\"pppppppppppppppppppppppppppppppp\","
           "\"time_ns\":1800000000000000000,\"build_id\":\"b\",\"plan\":\"fx=1 fy=2\","
           "\"components\":[{\"name\":\"fx\",\"domain\":1,\"calls\":5,\"crossings\":5,"
           "\"cross_ns\":9,\"faults\":0},{\"name\":\"fy\",\"domain\":2,\"calls\":1,"
           "\"crossings\":1,\"cross_ns\":1,\"faults\":0}],\"edges\":[]}");
    put(f, "{\"type\":\"stats\",\"pid\":7,\"proc\":\"pppppppppppppppppppppppppppppppp\","
           "\"time_ns\":1800000060000000000,\"build_id\":\"b\",\"plan\":\"fx=1 fy=2\","
           "\"components\":[{\"name\":\"fx\",\"domain\":1,\"calls\":50,\"crossings\":50,"
           "\"cross_ns\":9,\"faults\":11,\"parked_calls\":37,\"parked\":1},{\"name\":\"fy\","
           "\"domain\":2,\"calls\":2,\"crossings\":2,\"cross_ns\":1,\"faults\":0,"
           "\"parked_calls\":0,\"parked\":0}],\"edges\":[]}");
    fclose(f);
    import("r-1.spool", 1);
    assert_int_equal(query("SELECT SUM(parked_calls) FROM stats"), 37);
    char *buf = NULL, err[512];
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    assert_int_equal(qs_print(st, o, 0, 0, 5, err, sizeof err), 0);
    assert_int_equal(qs_print(st, o, 1, 0, 5, err, sizeof err), 0);
    fclose(o);
    const char *want[] = {
        "parked domains (their calls fail at once, with the fault value, until a plan names the"
        " domain again):\n  fx               domain 1  since 2027-01-15 08:01:00 UTC  37 call(s)"
        " failed while parked  (pid 7)\n\nlatest reports:",
        "\"parked_domains\":[{\"component\":\"fx\",\"domain\":1,\"pid\":7,\"proc\":"
        "\"pppppppppppppppppppppppppppppppp\",\"since_ns\":1800000060000000000,"
        "\"calls_failed_while_parked\":37}]",
        "\"component\":\"fx\",\"domain\":1,\"calls\":50,",
        "\"parked\":true,\"parked_calls\":37}",
        "\"parked\":false,\"parked_calls\":0}",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(buf, want[i]))
            fail_msg("missing: %s\nin:\n%s", want[i], buf);
    free(buf);
}

/* ---- a FIFO as a module ------------------------------------------------------------ */

static void blocked(int sig) {
    (void)sig;
    static const char msg[] = "test_spool: the import blocked (opening a FIFO?)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

/* A leftover spool file whose host-crash record names a FIFO as the
 * program and a module: imported at once, the note says why the module was
 * not read. */
static void test_fifo_as_module(void **state) {
    (void)state;
    char fifo[128], mods[512];
    snprintf(fifo, sizeof fifo, "%s/libfifo.so", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(mods, sizeof mods, "[{\"path\":\"%s\",\"base\":\"0x0\",\"build_id\":\"\"}]", fifo);
    FILE *f = spool_file("r-1.spool", "w");
    header(f);
    host_crash(f, 5, 11, mods);
    fclose(f);
    signal(SIGALRM, blocked);
    alarm(20);
    assert_int_equal(import("r-1.spool", 1), 2);
    alarm(0);
    char want[256];
    snprintf(want, sizeof want, "cannot read %s: a FIFO, not a regular file (not opened)", fifo);
    if (!strstr(logbuf, want))
        fail_msg("missing %s in:\n%s", want, logbuf);
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind = 'host-crash'"), 1);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/qtn-spool-test-%d", (int)getpid());
    snprintf(db, sizeof db, "%s.db", dir);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_same_pid_two_spools),
        T(test_same_pid_one_spool),
        T(test_crash_told_twice_is_one),
        T(test_long_damage_then_records),
        T(test_nul_blocks_and_glued_records),
        T(test_damage_across_restarts),
        T(test_damage_is_not_held_in_memory),
        T(test_parked_from_records),
        T(test_fifo_as_module),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
