/* main.c - the document server: a thread-per-connection HTTP server
 * (libmicrohttpd) over a document store, split into seven components that a
 * plan may isolate (QTN_PLAN="cache=1 query=2", or the supervisor's). See
 * README.md beside this file. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "bugs.h"
#include "quarantine.h"
#include "server.h"

static const char usage[] =
    "usage: server [--port N] [--bind ADDR] [--threads N] [--cache-entries N]\n"
    "              [--rate R] [--burst B] [--gzip-level L] [--max-body BYTES]\n"
    "              [--access-log FILE|-] [--data FILE]\n"
    "A document store over HTTP: PUT/GET/DELETE /docs/{id}, GET /docs/{id}.html,\n"
    "POST /query, GET /health, GET /stats, GET /log.\n"
    "  --port N           port to listen on; 0 (the default): a free one\n"
    "  --bind ADDR        address to listen on (default 127.0.0.1)\n"
    "  --threads N        connections served at once, a thread each (default 64)\n"
    "  --cache-entries N  bodies the response cache keeps (default 256)\n"
    "  --rate R           requests a second per client, token bucket (default 50000;\n"
    "                     0: no limit)\n"
    "  --burst B          the bucket's size (default: the rate)\n"
    "  --gzip-level L     1..9 (default 6)\n"
    "  --max-body BYTES   largest request body (default 1048576)\n"
    "  --access-log FILE  append access log lines to FILE ('-': stderr)\n"
    "  --data FILE        keep the documents in FILE too, so they outlive a crash of\n"
    "                     the server (default: in memory only)\n"
    "It prints \"listening on ADDR:PORT\" once it serves, and stops on SIGTERM or\n"
    "SIGINT (exit status 0). Given a listening socket the way systemd's socket\n"
    "activation gives one (LISTEN_FDS=1, LISTEN_PID, fd 3; `quarantine run\n"
    "--listen`), it serves that and --port and --bind are not used.\n"
    "Environment: QTN_PLAN (which components run isolated, e.g. \"cache=1 query=2\";\n"
    "components: cache ratelimit accesslog render query json zlib), and the\n"
    "concurrency bugs: SERVER_BUGS=cache,log,query|all, SERVER_BUG_WINDOW_US=N,\n"
    "SERVER_BUG_WINDOW_PCT=P (README.md).\n";

static int number(const char *opt, const char *s, unsigned long max, unsigned long *out) {
    char *end;
    errno = 0;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v > max) {
        fprintf(stderr, "server: %s: '%s' is not a number 0..%lu\n", opt, s ? s : "", max);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    srv_config cfg = {.bind = "127.0.0.1",
                      .threads = 64,
                      .cache_entries = 256,
                      .rate = 50000,
                      .gzip_level = 6,
                      .max_body = 1 << 20};
    int burst_set = 0;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        int ok = 0;
        if (!strcmp(a, "--port"))
            ok = !number(a, v, 65535, &n) && ((cfg.port = (uint16_t)n), 1);
        else if (!strcmp(a, "--bind"))
            ok = v && ((cfg.bind = v), 1);
        else if (!strcmp(a, "--threads"))
            ok = !number(a, v, 100000, &n) && n && ((cfg.threads = (unsigned)n), 1);
        else if (!strcmp(a, "--cache-entries"))
            ok = !number(a, v, 10000000, &n) && ((cfg.cache_entries = (uint32_t)n), 1);
        else if (!strcmp(a, "--rate"))
            ok = !number(a, v, UINT32_MAX, &n) && ((cfg.rate = (uint32_t)n), 1);
        else if (!strcmp(a, "--burst"))
            ok = !number(a, v, UINT32_MAX, &n) && ((cfg.burst = (uint32_t)n), burst_set = 1);
        else if (!strcmp(a, "--gzip-level"))
            ok = !number(a, v, 9, &n) && n && ((cfg.gzip_level = (int)n), 1);
        else if (!strcmp(a, "--max-body"))
            ok = !number(a, v, 1UL << 30, &n) && ((cfg.max_body = n), 1);
        else if (!strcmp(a, "--access-log"))
            ok = v && ((cfg.access_log = v), 1);
        else if (!strcmp(a, "--data"))
            ok = v && *v && ((cfg.data = v), 1);
        else {
            fprintf(stderr, "server: unknown option '%s'\n%s", a, usage);
            return 2;
        }
        if (!ok) {
            if (!v)
                fprintf(stderr, "server: %s needs a value\n", a);
            return 2;
        }
    }
    if (!burst_set)
        cfg.burst = cfg.rate;

    char err[256];
    if (srv_bugs_init(getenv("SERVER_BUGS"), getenv("SERVER_BUG_WINDOW_US"),
                      getenv("SERVER_BUG_WINDOW_PCT"), err, sizeof err)) {
        fprintf(stderr, "server: %s\n", err);
        return 2;
    }
    /* jansson seeds its hash function from /dev/urandom on first use; an
     * isolated domain may not open files, so seed it here, before the state
     * domains start from is taken */
    uint32_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed || !seed)
        seed = 0x5eed;
    json_object_seed(seed);

    /* before libmicrohttpd starts its threads: domain processes are forked
     * from the state at this point; the plan comes from QTN_PLAN. (The
     * plain build, server-plain, has no stubs and starts no runtime: the
     * baseline the benchmark compares with.) */
#ifndef SERVER_PLAIN
    int r = qtn_init(NULL);
    if (r) {
        fprintf(stderr, "server: qtn_init: %s\n", qtn_strerror(r));
        return 1;
    }
#endif
    /* the signals that stop it are taken by sigwait below, so every thread
     * started from here on has them blocked */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv *s = srv_start(&cfg, err, sizeof err);
    if (!s) {
        fprintf(stderr, "server: %s\n", err);
        qtn_shutdown();
        return 1;
    }
    int v6 = strchr(cfg.bind, ':') != NULL;
    if (srv_inherited(s)) /* --port and --bind are the supervisor's to say */
        printf("listening on the socket passed as fd 3, port %u\n", (unsigned)srv_port(s));
    else
        printf("listening on %s%s%s:%u\n", v6 ? "[" : "", cfg.bind, v6 ? "]" : "",
               (unsigned)srv_port(s));
    fflush(stdout);
    if (srv_bug_cfg.on)
        fprintf(stderr, "server: bugs on: %s (window %u us, %u%% of the times)\n", srv_bugs_names(),
                (unsigned)srv_bug_cfg.window_us, (unsigned)srv_bug_cfg.window_pct);

    int sig = 0;
    while (sigwait(&stop, &sig))
        ;
    srv_stop(s);
    qtn_shutdown();
    return 0;
}
