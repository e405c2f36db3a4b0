/* pgtest.h - a real PostgreSQL server for the tests that need one: made
 * with initdb in a temporary folder, started with pg_ctl on a free
 * loopback port, stopped and removed at the end. PostgreSQL refuses to run
 * as root, so as root it runs as an unprivileged user (65534) that owns
 * the folder. Missing PostgreSQL fails the test (scripts/deps installs
 * it): nothing is skipped. */
#ifndef QTN_TESTS_PGTEST_H
#define QTN_TESTS_PGTEST_H

typedef struct tpg {
    char dir[128];    /* the temporary folder: data/, the log, the socket */
    char bindir[256]; /* initdb's, pg_ctl's */
    int port;
    char uri[256]; /* postgresql://qtn:PASSWORD@127.0.0.1:PORT/postgres */
} tpg;

#define TPG_USER "qtn"
#define TPG_PASSWORD "s3cret-pw"

/* Makes and starts the server (password authentication over TCP). */
void tpg_start(tpg *p);
/* Stops it (fast: connections are cut), or starts it again. */
void tpg_stop(tpg *p);
void tpg_restart(tpg *p);
/* Freezes its processes (SIGSTOP: connections stay open, nothing
 * answers) or thaws them (SIGCONT). */
void tpg_freeze(tpg *p, int frozen);
/* Stops it and removes its folder. */
void tpg_destroy(tpg *p);
/* The URI of database db on it, with a password (NULL: the right one). */
void tpg_uri(const tpg *p, const char *db, const char *password, char *out, size_t len);
/* The first column of the first row of sql on database db ("postgres"
 * when NULL); fails the test on an error. Also runs statements (then 0). */
long long tpg_one(const tpg *p, const char *db, const char *sql);
/* A loopback port nothing listens on. */
int tpg_free_port(void);

#endif
