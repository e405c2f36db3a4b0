/* test_durable.c - nothing handed over is lost, nothing is stored twice:
 * the supervisor is SIGKILLed again and again while a program faults
 * without pause; the store is locked, then read-only, while reports come;
 * a spool file holds damaged records; the program's pid comes again (a pid
 * namespace). Each time the store must end up with exactly the records the
 * runtime wrote to its spool files. Another application's database given
 * as the store is refused and left alone; a leftover spool naming a FIFO
 * as a module does not hold the supervisor up. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <zlib.h>

#include "store_v1.h"
#include "storeq.h"

static char dir[64], db[96], spool[128], logpath[96], log_text[1 << 18];

static void fresh(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    assert_int_equal(system(cmd), 0);
}

static void slurp(void) {
    FILE *f = fopen(logpath, "r");
    size_t n = f ? fread(log_text, 1, sizeof log_text - 1, f) : 0;
    log_text[n] = 0;
    if (f)
        fclose(f);
}

/* Runs `quarantine run ARGS` to its end; its exit status, log in log_text. */
static int run(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "QTN_QUIET_FAULTS=1 timeout 120 %s run --store %s %s 2>%s",
             QTN_BIN, db, args, logpath);
    int st = system(cmd);
    slurp();
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static long long query(const char *sql) { return tsq_file(db, sql); }

/* Files in the spool folder whose names end with suffix. */
static int files_ending(const char *suffix) {
    DIR *d = opendir(spool);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t a = strlen(e->d_name), b = strlen(suffix);
        n += a > b && !strcmp(e->d_name + a - b, suffix);
    }
    closedir(d);
    return n;
}

/* Fault records with a good checksum in the kept spool files, and how many
 * of them are distinct (program pid, report number) pairs. */
static void count_spooled(int *records, int *distinct) {
    static long long seen[1 << 16];
    int nseen = 0;
    *records = *distinct = 0;
    DIR *d = opendir(spool);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".imported"))
            continue;
        char path[512], line[65536];
        snprintf(path, sizeof path, "%s/%s", spool, e->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        while (fgets(line, sizeof line, f)) {
            size_t n = strlen(line);
            if (n < 10 || line[n - 1] != '\n')
                continue;
            line[--n] = 0;
            unsigned long want = strtoul(line, NULL, 16);
            if (want != (crc32(0, (const Bytef *)line + 9, (uInt)(n - 9)) & 0xffffffffUL) ||
                !strstr(line, "{\"type\":\"fault\""))
                continue;
            const char *hp = strstr(line, "\"host_pid\":"), *rp = strstr(line, "\"report\":");
            assert_non_null(hp);
            assert_non_null(rp);
            long long key = atoll(hp + 11) * 1000000 + atoll(rp + 9);
            int dup = 0;
            for (int i = 0; i < nseen; i++)
                dup |= seen[i] == key;
            if (!dup && nseen < (int)(sizeof seen / sizeof seen[0]))
                seen[nseen++] = key;
            (*records)++;
        }
        fclose(f);
    }
    closedir(d);
    *distinct = nseen;
}

/* Fault records in all spool files, kept or not (checksums unchecked). */
static int faults_written(void) {
    DIR *d = opendir(spool);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[512], line[65536];
        snprintf(path, sizeof path, "%s/%s", spool, e->d_name);
        FILE *f = strstr(e->d_name, ".spool") ? fopen(path, "r") : NULL;
        while (f && fgets(line, sizeof line, f))
            n += strstr(line, "{\"type\":\"fault\"") != NULL;
        if (f)
            fclose(f);
    }
    closedir(d);
    return n;
}

static void test_supervisor_killed_many_times(void **state) {
    (void)state;
    fresh();
    srand((unsigned)getpid());
    int kills = 20;
    /* a reader all along: WAL lets it read while supervisors write */
    char stop[128];
    snprintf(stop, sizeof stop, "%s/stop-reading", dir);
    pid_t reader = fork();
    if (reader == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s report --store %s >/dev/null 2>&1", QTN_BIN, db);
        int failed = 0, reads = 0;
        while (access(stop, F_OK) != 0) {
            int ok = system(cmd) == 0;
            if (reads || ok) { /* from the first time the store was there */
                failed += !ok;
                reads++;
            }
            usleep(20000);
        }
        _exit(failed ? 1 : reads ? 0 : 2);
    }
    for (int k = 0; k < kills; k++) {
        pid_t p = fork();
        if (p == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 2);
            setenv("QTN_QUIET_FAULTS", "1", 1);
            execl(QTN_BIN, "quarantine", "run", "--keep-spool", "--store", db, "--", CRASHY,
                  "faults", "1000000", "1", (char *)NULL);
            _exit(127);
        }
        /* at any moment once its program is at work: while importing,
         * committing, removing; however loaded the machine is */
        int want = faults_written() + 1 + rand() % 4;
        for (int waited = 0; faults_written() < want; waited++) {
            if (waited == 3000)
                fail_msg("no fault reports written in 30 s");
            usleep(10000);
        }
        usleep((useconds_t)(rand() % 30000));
        kill(p, SIGKILL);
        int st;
        assert_int_equal(waitpid(p, &st, 0), p);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    }
    FILE *sf = fopen(stop, "w");
    assert_non_null(sf);
    fclose(sf);
    int rst;
    assert_int_equal(waitpid(reader, &rst, 0), reader);
    assert_true(WIFEXITED(rst));
    assert_int_equal(WEXITSTATUS(rst), 0); /* every read worked */
    /* the programs were told to stop when their supervisors died; a later
     * supervisor stores what they left */
    for (int k = 0; k < 50 && files_ending(".spool"); k++) {
        assert_int_equal(run("--keep-spool -- " CRASHY " exit 0"), 0);
        if (files_ending(".spool")) {
            struct timespec d = {0, 100 * 1000000L};
            nanosleep(&d, NULL);
        }
    }
    assert_int_equal(files_ending(".spool"), 0);
    int spooled, distinct;
    count_spooled(&spooled, &distinct);
    /* every kind: under load a call may pass its deadline instead */
    long long stored = query("SELECT COUNT(*) FROM reports WHERE kind <> 'host-crash'");
    long long pairs = query("SELECT COUNT(*) FROM (SELECT DISTINCT pid, seq FROM reports"
                            " WHERE kind <> 'host-crash')");
    fprintf(stderr, "%d kills: %d reports handed over, %lld stored\n", kills, spooled, stored);
    assert_true(spooled >= kills); /* the programs did fault, many times */
    assert_int_equal(distinct, spooled); /* each written once by the runtime */
    assert_int_equal(stored, spooled);   /* none lost, none twice */
    assert_int_equal(pairs, stored);
}

/* Another process holds the store locked while reports come: the program
 * runs on, the supervisor says so, and stores them once the lock is gone. */
static void test_locked_store_holds_reports(void **state) {
    (void)state;
    fresh();
    assert_int_equal(run("-- " CRASHY " exit 0"), 0); /* makes the store */
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    pid_t p = fork();
    if (p == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        setenv("QTN_QUIET_FAULTS", "1", 1);
        execl(QTN_BIN, "quarantine", "run", "--store", db, "--", CRASHY, "faults", "10", "200",
              (char *)NULL);
        _exit(127);
    }
    /* held until the supervisor has met the lock, and said so */
    for (int waited = 0; slurp(), !strstr(log_text, "database is locked"); waited++) {
        if (waited == 3000)
            fail_msg("the supervisor never met the lock; its log:\n%s", log_text);
        usleep(10000);
    }
    assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    int st;
    assert_int_equal(waitpid(p, &st, 0), p);
    slurp();
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0); /* the program ran to its end */
    assert_non_null(strstr(log_text, "event=store-error"));
    assert_null(strstr(log_text, "event=held")); /* all stored by this supervisor */
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind <> 'host-crash'"), 10);
    assert_int_equal(files_ending(".spool"), 0);
}

/* A read-only store: a clear error, the program runs on, its reports wait
 * in the spool, and a later supervisor with a writable store stores them. */
static void test_read_only_store_holds_reports(void **state) {
    (void)state;
    fresh();
    assert_int_equal(run("-- " CRASHY " exit 0"), 0);
    char cmd[1024], qtn[256], crashy[256];
    snprintf(qtn, sizeof qtn, "%s", QTN_BIN);
    snprintf(crashy, sizeof crashy, "%s", CRASHY);
    const char *as = "";
    if (geteuid() == 0) {
        /* root writes anything: be nobody, who owns the folder, running
         * copies of the programs there (the build may be where nobody can
         * reach) */
        snprintf(qtn, sizeof qtn, "%s/quarantine", dir);
        snprintf(crashy, sizeof crashy, "%s/crashy", dir);
        snprintf(cmd, sizeof cmd, "cp %s %s && cp %s %s && chown -R 65534:65534 %s", QTN_BIN,
                 qtn, CRASHY, crashy, dir);
        assert_int_equal(system(cmd), 0);
        as = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
    }
    assert_int_equal(chmod(db, 0444), 0);
    snprintf(cmd, sizeof cmd,
             "QTN_QUIET_FAULTS=1 timeout 120 %s%s run --store %s -- %s isolated-fault 2>%s", as,
             qtn, db, crashy, logpath);
    int st = system(cmd);
    slurp();
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_non_null(strstr(log_text, "event=store-error store "));
    assert_non_null(strstr(log_text, "cannot write: the file is read-only"));
    assert_non_null(strstr(log_text, "event=held spool="));
    assert_non_null(strstr(log_text, "event=fault ")); /* logged all the same */
    assert_int_equal(files_ending(".spool"), 1);
    assert_int_equal(query("SELECT COUNT(*) FROM reports"), 0);
    assert_int_equal(chmod(db, 0644), 0);
    assert_int_equal(run("-- " CRASHY " exit 0"), 0);
    assert_non_null(strstr(log_text, "event=adopt spool="));
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE component = 'fx'"), 1);
    assert_int_equal(files_ending(".spool"), 0);
}

/* A corrupt store, and one of a newer schema: said, with the file's name;
 * the program runs on; the reports wait in the spool. */
static void test_unusable_stores_hold_reports(void **state) {
    (void)state;
    const char *kinds[] = {"corrupt", "newer"};
    for (int k = 0; k < 2; k++) {
        fresh();
        if (k == 0) {
            FILE *f = fopen(db, "w");
            assert_non_null(f);
            for (int i = 0; i < 8192; i++)
                fputc((i * 7919) & 0xff, f);
            fclose(f);
        } else { /* a newer quarantine's: its application id */
            sqlite3 *h;
            assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
            assert_int_equal(sqlite3_exec(h, "PRAGMA application_id=1364479571;"
                                             "PRAGMA user_version=99",
                                          NULL, NULL, NULL),
                             SQLITE_OK);
            sqlite3_close(h);
        }
        int st = run("-- " CRASHY " isolated-fault");
        if (st != 0)
            fail_msg("%s store: quarantine run exited %d (want 0); its log:\n%s", kinds[k], st,
                     log_text);
        char want[256];
        snprintf(want, sizeof want, "event=store-error store %s: ", db);
        if (!strstr(log_text, want))
            fail_msg("%s store: no clear error in:\n%s", kinds[k], log_text);
        assert_non_null(strstr(log_text, k == 0 ? "not a quarantine store"
                                                : "schema version 99 is newer"));
        assert_non_null(strstr(log_text, "event=fault "));
        assert_non_null(strstr(log_text, "event=held spool="));
        assert_int_equal(files_ending(".spool"), 1);
    }
}

/* No spool file can be made (a file stands where its folder should): the
 * program runs all the same and its crash is stored from its exit status. */
static void test_crash_without_a_spool(void **state) {
    (void)state;
    fresh();
    FILE *f = fopen(spool, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(run("--max-restarts 0 -- " CRASHY " always-crash"), 111);
    assert_non_null(strstr(log_text, "event=spool-error spool "));
    assert_non_null(strstr(log_text, "event=crash pid="));
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind = 'host-crash'"), 1);
}

/* quarantine report on a store of the first schema: migrated, then read. */
static void test_report_reads_an_old_store(void **state) {
    (void)state;
    fresh();
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    const char *v1 = STORE_V1;
    assert_int_equal(sqlite3_exec(h, v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s report --store %s >%s 2>&1", QTN_BIN, db, logpath);
    assert_int_equal(system(cmd), 0);
    slurp();
    assert_non_null(strstr(log_text, "oldcomp          -                  0          0        1"));
    assert_int_equal(query("PRAGMA user_version"), 5);
    assert_int_equal(query("PRAGMA application_id"), 0x51544e53);
}

/* Appends a record with its checksum (or a wrong one). */
static void put(FILE *f, const char *json, int good) {
    uLong c = crc32(0, (const Bytef *)json, (uInt)strlen(json));
    fprintf(f, "%08lx %s\n", good ? c & 0xffffffffUL : (c ^ 1) & 0xffffffffUL, json);
}

/* Damaged records are said with their file and offset and skipped; the
 * good ones around them are stored; a torn last record is said. */
static void test_damaged_spool_records(void **state) {
    (void)state;
    fresh();
    mkdir(spool, 0700);
    char path[256];
    snprintf(path, sizeof path, "%s/1-1-0.spool", spool);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    put(f, "{\"type\":\"spool\",\"installation\":\"box\",\"run\":\"1-1\"}", 1);
    put(f, "{\"type\":\"fault\",\"host_pid\":7,\"report\":1,\"time_ns\":5,\"kind\":\"signal\","
           "\"component\":\"a\",\"entry\":\"f\",\"reason\":\"x\",\"backtrace\":[]}", 1);
    long bad_at = ftell(f);
    put(f, "{\"type\":\"fault\",\"host_pid\":7,\"report\":2,\"time_ns\":6,\"kind\":\"signal\"}", 0);
    long bad_len = ftell(f) - bad_at;
    fputs("garbage without a checksum\n", f);
    put(f, "{\"type\":\"fault\",\"host_pid\":7,\"report\":3,\"time_ns\":7,\"kind\":\"signal\","
           "\"component\":\"a\",\"entry\":\"f\",\"reason\":\"y\",\"backtrace\":[\"0x10 f+0x1\"]}", 1);
    put(f, "[1,2,3]", 1);
    fputs("0badc0de {\"type\":\"fau", f); /* torn: its writer died writing it */
    fclose(f);
    assert_int_equal(run("-- " CRASHY " exit 0"), 0);
    char want[512];
    snprintf(want, sizeof want,
             "event=bad-record spool=%s offset=%ld bytes=%ld why=\"checksum mismatch\"", path,
             bad_at, bad_len);
    assert_non_null(strstr(log_text, want));
    assert_non_null(strstr(log_text, "why=\"not a record\""));
    assert_non_null(strstr(log_text, "why=\"bad JSON: not an object\""));
    assert_non_null(strstr(log_text, "event=torn-record spool="));
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE installation = 'box'"), 2);
    assert_int_equal(query("SELECT COUNT(*) FROM report_frames"), 1);
    assert_int_equal(files_ending(".spool"), 0);
}

/* The bytes of a file, to see it was left as it was. */
static char *bytes_of(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    *n = (size_t)ftell(f);
    rewind(f);
    char *b = malloc(*n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* Another application's SQLite database given as the store (a browser's
 * history, which numbers its schema in user_version too): quarantine run
 * says it is not a store, naming it and its tables, runs the program and
 * holds its records in the spool; quarantine report refuses it too; the
 * file is left exactly as it was: no tables added, no user_version, no WAL. */
static void test_foreign_database_is_left_alone(void **state) {
    (void)state;
    fresh();
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(h,
                     "CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url LONGVARCHAR,"
                     " title LONGVARCHAR, visit_count INTEGER DEFAULT 0, frecency INTEGER);"
                     "CREATE TABLE moz_historyvisits (id INTEGER PRIMARY KEY, from_visit INTEGER,"
                     " place_id INTEGER, visit_date INTEGER, visit_type INTEGER);"
                     "CREATE INDEX moz_places_frecencyindex ON moz_places (frecency);"
                     "INSERT INTO moz_places VALUES (1, 'https://example.org/', 'Example', 3, 100);"
                     "INSERT INTO moz_historyvisits VALUES (1, 0, 1, 1700000000000000, 1);"
                     "PRAGMA user_version=74;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(h);
    size_t n0, n1;
    char *before = bytes_of(db, &n0);
    assert_int_equal(run("-- " CRASHY " isolated-fault"), 0);
    char want[512];
    snprintf(want, sizeof want,
             "event=store-error store %s: not a quarantine store: it holds tables of another "
             "application (moz_historyvisits, moz_places)",
             db);
    if (!strstr(log_text, want))
        fail_msg("missing: %s\nin:\n%s", want, log_text);
    assert_non_null(strstr(log_text, "event=start pid="));  /* the program ran */
    assert_non_null(strstr(log_text, "event=held spool=")); /* its records wait */
    assert_int_equal(files_ending(".spool"), 1);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s report --store %s >%s 2>&1", QTN_BIN, db, logpath);
    int st = system(cmd);
    slurp();
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    snprintf(want, sizeof want,
             "quarantine: report: store %s: not a quarantine store: it holds tables of another "
             "application (moz_historyvisits, moz_places)\n",
             db);
    assert_string_equal(log_text, want);
    char *after = bytes_of(db, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
    char wal[128];
    snprintf(wal, sizeof wal, "%s-wal", db);
    assert_int_equal(access(wal, F_OK), -1);
    assert_int_equal(query("PRAGMA user_version"), 74);
    assert_int_equal(query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"), 2);
}

/* A leftover spool file (its supervisor was killed) whose host-crash
 * record names a FIFO as the program and as a module: the next supervisor
 * adopts it, says why the module was not read, stores the crash and starts
 * its own program (it used to block in open() for ever). */
static void test_fifo_module_in_leftover_spool(void **state) {
    (void)state;
    fresh();
    mkdir(spool, 0700);
    char fifo[256], path[256], rec[1024];
    snprintf(fifo, sizeof fifo, "%s/libevil.so", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(path, sizeof path, "%s/1-1-1.spool", spool);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    put(f, "{\"type\":\"spool\",\"installation\":\"box\",\"run\":\"1-1\"}", 1);
    snprintf(rec, sizeof rec,
             "{\"type\":\"host-crash\",\"pid\":77,\"time_ns\":5,\"build_id\":\"\",\"plan\":\"\","
             "\"signal\":11,\"fault_addr\":\"0x0\",\"exe\":\"%s\",\"frames\":[\"0x1000\"],"
             "\"modules\":[{\"path\":\"%s\",\"base\":\"0x0\",\"build_id\":\"\"}]}",
             fifo, fifo);
    put(f, rec, 1);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "QTN_QUIET_FAULTS=1 timeout -k 5 20 %s run --store %s -- %s exit 0 2>%s", QTN_BIN,
             db, CRASHY, logpath);
    int st = system(cmd);
    slurp();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("the supervisor did not finish (status %d); its log:\n%s", st, log_text);
    assert_non_null(strstr(log_text, "event=adopt spool="));
    char want[512];
    snprintf(want, sizeof want, "cannot read %s: a FIFO, not a regular file (not opened)", fifo);
    assert_non_null(strstr(log_text, want));
    assert_non_null(strstr(log_text, "event=start pid="));
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind = 'host-crash' AND pid = 77"),
                     1);
}

/* The program in a pid namespace of its own (as in a container): it is
 * pid 2 there at every start, in one run of the supervisor. Each start's
 * fault reports 1..N are all stored (they used to be taken for the first
 * start's, and dropped). */
static void test_pid_namespace_restarts(void **state) {
    (void)state;
    if (system("unshare --pid --fork --mount-proc true >/dev/null 2>&1") != 0 &&
        system("unshare --user --map-root-user --pid --fork --mount-proc true >/dev/null 2>&1") !=
            0) {
        fprintf(stderr, "test_pid_namespace_restarts: skipped: no pid namespaces here "
                        "(unshare --pid fails); the crafted test in tests/qis/test_spool.c "
                        "covers it\n");
        skip();
    }
    const char *user = system("unshare --pid --fork --mount-proc true >/dev/null 2>&1") == 0
                           ? ""
                           : "--user --map-root-user ";
    fresh();
    char count[128], args[1024];
    snprintf(count, sizeof count, "%s/starts", dir);
    /* in the namespace: sh is pid 1, the faulting program pid 2; then sh
     * becomes a program that crashes the first time, so the supervisor
     * starts it all again */
    snprintf(args, sizeof args,
             "--keep-spool --max-restarts 3 -- unshare %s--pid --fork --mount-proc sh -c '%s "
             "faults 4 1 && exec %s crash-until %s 2'",
             user, CRASHY, CRASHY, count);
    assert_int_equal(run(args), 0);
    if (!strstr(log_text, "event=crash "))
        fail_msg("no restart after the crash; the log:\n%s", log_text);
    int spooled, distinct;
    count_spooled(&spooled, &distinct); /* distinct (pid, number): one start's */
    long long stored = query("SELECT COUNT(*) FROM reports WHERE kind <> 'host-crash'");
    long long pids = query("SELECT COUNT(DISTINCT pid) FROM reports WHERE kind <> 'host-crash'");
    long long procs = query("SELECT COUNT(DISTINCT proc) FROM reports WHERE kind <> 'host-crash'");
    if (stored != spooled || spooled <= distinct || pids != 1 || procs != 2)
        fail_msg("%d reports handed over (%d numbers), %lld stored, of %lld pid(s) and %lld "
                 "process(es): want all of them, of 1 pid and 2 processes; the log:\n%s",
                 spooled, distinct, stored, pids, procs, log_text);
    assert_int_equal(query("SELECT COUNT(*) FROM reports WHERE kind = 'host-crash'"), 1);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/qtn-durable-%d", (int)getpid());
    snprintf(db, sizeof db, "%s/store.db", dir);
    snprintf(spool, sizeof spool, "%s.spool", db);
    snprintf(logpath, sizeof logpath, "/tmp/qtn-durable-%d.log", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supervisor_killed_many_times),
        cmocka_unit_test(test_locked_store_holds_reports),
        cmocka_unit_test(test_read_only_store_holds_reports),
        cmocka_unit_test(test_unusable_stores_hold_reports),
        cmocka_unit_test(test_damaged_spool_records),
        cmocka_unit_test(test_crash_without_a_spool),
        cmocka_unit_test(test_report_reads_an_old_store),
        cmocka_unit_test(test_foreign_database_is_left_alone),
        cmocka_unit_test(test_fifo_module_in_leftover_spool),
        cmocka_unit_test(test_pid_namespace_restarts),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    if (r) { /* kept to look at */
        fprintf(stderr, "the store, its spool files and the last log: %s, %s\n", dir, logpath);
        return r;
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        r = 1;
    unlink(logpath);
    return r;
}
