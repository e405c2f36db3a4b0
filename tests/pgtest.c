/* pgtest.c - a real PostgreSQL server for tests (pgtest.h). */
#include <arpa/inet.h>
#include <glob.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "pgtest.h"

int tpg_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* initdb's folder: pg_config's, else the newest installed version's. */
static void find_bindir(tpg *p) {
    p->bindir[0] = 0;
    FILE *f = popen("pg_config --bindir 2>/dev/null", "r");
    if (f) {
        if (fgets(p->bindir, sizeof p->bindir, f))
            p->bindir[strcspn(p->bindir, "\n")] = 0;
        pclose(f);
    }
    char probe[300];
    snprintf(probe, sizeof probe, "%s/initdb", p->bindir);
    if (p->bindir[0] && access(probe, X_OK) == 0)
        return;
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0 && g.gl_pathc) {
        snprintf(p->bindir, sizeof p->bindir, "%s", g.gl_pathv[g.gl_pathc - 1]);
        *strrchr(p->bindir, '/') = 0;
        globfree(&g);
        return;
    }
    fail_msg("PostgreSQL's server is not installed (no initdb: pg_config --bindir, "
             "/usr/lib/postgresql/*/bin); scripts/deps installs it");
}

/* Runs a command as the server's user. */
static int as_pg(const tpg *p, const char *fmt, ...) {
    char cmd[4096], line[1800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s%s/%s",
             getuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "", p->bindir,
             line);
    return system(cmd);
}

void tpg_uri(const tpg *p, const char *db, const char *password, char *out, size_t len) {
    /* a loaded 2-core machine (a sanitizer build, 20 supervisors) can take
     * seconds to answer */
    snprintf(out, len, "postgresql://%s:%s@127.0.0.1:%d/%s?connect_timeout=10", TPG_USER,
             password ? password : TPG_PASSWORD, p->port, db ? db : "postgres");
}

void tpg_start(tpg *p) {
    find_bindir(p);
    snprintf(p->dir, sizeof p->dir, "/tmp/qtn-pg-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    char path[256];
    snprintf(path, sizeof path, "%s/pw", p->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", TPG_PASSWORD);
    fclose(f);
    if (getuid() == 0)
        assert_int_equal(chown(p->dir, 65534, 65534) | chown(path, 65534, 65534), 0);
    assert_int_equal(as_pg(p,
                           "initdb -D %s/data -U %s --pwfile=%s --auth-local=trust"
                           " --auth-host=scram-sha-256 -E UTF8 --no-sync >%s/initdb.log 2>&1",
                           p->dir, TPG_USER, path, p->dir),
                     0);
    p->port = tpg_free_port();
    tpg_uri(p, NULL, NULL, p->uri, sizeof p->uri);
    tpg_restart(p);
}

void tpg_restart(tpg *p) {
    /* fsync off: a test's server need not survive the machine */
    int rc = as_pg(p,
                   "pg_ctl -D %s/data -l %s/log -w -t 30 -o \"-p %d -k %s"
                   " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100\""
                   " start >/dev/null",
                   p->dir, p->dir, p->port, p->dir);
    if (rc) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "cat %s/log >&2", p->dir);
        assert_int_equal(system(cmd), 0);
    }
    assert_int_equal(rc, 0);
}

void tpg_stop(tpg *p) {
    assert_int_equal(as_pg(p, "pg_ctl -D %s/data -m fast -w -t 30 stop >/dev/null", p->dir), 0);
}

/* Sends sig to the server and its backends (they come and go: each as far
 * as it is still there): 0, or -1 when no server runs from its folder. */
static int signal_server(const tpg *p, const char *sig) {
    char path[200], cmd[400];
    snprintf(path, sizeof path, "%s/data/postmaster.pid", p->dir);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (!f)
        return -1;
    int got = fscanf(f, "%d", &pid);
    fclose(f);
    if (got != 1 || pid <= 0)
        return -1;
    snprintf(cmd, sizeof cmd,
             "kill -%s %d 2>/dev/null && (kill -%s $(pgrep -P %d) 2>/dev/null; true)", sig, pid,
             sig, pid);
    return system(cmd) ? -1 : 0;
}

void tpg_freeze(tpg *p, int frozen) {
    assert_int_equal(signal_server(p, frozen ? "STOP" : "CONT"), 0);
}

void tpg_destroy(tpg *p) {
    if (!p->dir[0])
        return;
    signal_server(p, "CONT"); /* a test that failed while it was frozen */
    if (as_pg(p, "pg_ctl -D %s/data -m immediate -w -t 30 stop >/dev/null 2>&1", p->dir))
        signal_server(p, "KILL"); /* nothing left running, whatever happened */
    if (getenv("QTN_KEEP_PG"))    /* to read its log */
        return;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", p->dir);
    if (system(cmd)) { /* left behind: a temporary folder */
    }
    p->dir[0] = 0;
}

long long tpg_one(const tpg *p, const char *db, const char *sql) {
    char uri[300];
    tpg_uri(p, db, NULL, uri, sizeof uri);
    PGconn *c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("%s: %s", uri, PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    long long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) && !PQgetisnull(r, 0, 0)
                      ? atoll(PQgetvalue(r, 0, 0))
                      : 0;
    PQclear(r);
    PQfinish(c);
    return v;
}
