/* test_server_load.c - qtn-load, the load generator (bench/load.c): against
 * the example server it counts what it did; against a port nobody listens
 * on, a peer that never answers, one that resets, one that answers garbage
 * and one that answers in chunks, it counts each failure once, with its
 * reason, and always ends on time. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- peers that misbehave ---------------------------------------------------- */

enum { SILENT, RESET, GARBAGE, CHUNKED };

typedef struct peer {
    int mode;
    int lfd, port;
    pthread_t t;
    volatile int stop;
} peer;

/* Reads up to the end of one request's head; 0 when the client went away. */
static int read_head(int fd) {
    char buf[4096];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0)
            return 0;
        n += (size_t)r;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n"))
            return 1; /* the mixes used here send no bodies */
    }
    return 0;
}

static void *serve_conn(void *arg) {
    peer *pe = ((void **)arg)[0];
    int fd = (int)(intptr_t)((void **)arg)[1];
    free(arg);
    static const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-T: 1\r\n\r\n";
    while (!pe->stop && read_head(fd)) {
        if (pe->mode == RESET) {
            struct linger lg = {1, 0}; /* close with a RST */
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            break;
        }
        if (pe->mode == GARBAGE) {
            send(fd, "SPDY/9 nonsense\r\n\r\n", 19, MSG_NOSIGNAL);
            break;
        }
        if (send(fd, chunked, sizeof chunked - 1, MSG_NOSIGNAL) < 0)
            break;
    }
    close(fd);
    return NULL;
}

static void *peer_main(void *arg) {
    peer *pe = arg;
    while (!pe->stop) {
        int fd = accept(pe->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        void **a = malloc(2 * sizeof *a);
        a[0] = pe;
        a[1] = (void *)(intptr_t)fd;
        pthread_t t;
        if (pthread_create(&t, NULL, serve_conn, a)) {
            close(fd);
            free(a);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

static void peer_start(peer *pe, int mode) {
    memset(pe, 0, sizeof *pe);
    pe->mode = mode;
    pe->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(pe->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(pe->lfd, 64), 0);
    getsockname(pe->lfd, (struct sockaddr *)&a, &len);
    pe->port = ntohs(a.sin_port);
    struct timeval tv = {.tv_usec = 100000}; /* accept wakes to see stop */
    setsockopt(pe->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (mode != SILENT) /* a silent peer never accepts: the backlog holds them */
        assert_int_equal(pthread_create(&pe->t, NULL, peer_main, pe), 0);
}

static void peer_stop(peer *pe) {
    pe->stop = 1;
    if (pe->mode != SILENT)
        pthread_join(pe->t, NULL);
    close(pe->lfd);
}

/* Runs qtn-load at port for `seconds` with the health mix (no prefill). */
static char *run_against(int port, const char *seconds, const char *timeout_ms, double *took) {
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    int st;
    double t0 = now_s();
    char *out = load_run((const char *const[]){"--port", ports, "--connections", "3", "--seconds",
                                               seconds, "--keys", "0", "--mix", "health=1",
                                               "--timeout-ms", timeout_ms, NULL},
                         &st);
    *took = now_s() - t0;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return out;
}

static void expect_all_failed(const char *out, const char *reason) {
    char name[64];
    snprintf(name, sizeof name, "failed_%s", reason);
    double failed = load_value(out, "requests_failed");
    if (load_value(out, "requests_ok") != 0 || failed < 1 || load_value(out, name) != failed)
        fail_msg("wanted every request failed as %s:\n%s", reason, out);
    assert_true(load_value(out, "served_pct") == 0);
}

static void test_refused(void **state) {
    (void)state;
    double took;
    char *out = run_against(free_port(), "0.5", "1000", &took);
    expect_all_failed(out, "refused");
    assert_true(took < 3);
    /* a refused connection waits 10 ms: not thousands of attempts */
    assert_true(load_value(out, "requests_failed") < 3 * 0.5 / 0.010 + 10);
    free(out);
}

static void test_silent_peer_times_out(void **state) {
    (void)state;
    peer pe;
    peer_start(&pe, SILENT);
    double took;
    char *out = run_against(pe.port, "0.5", "300", &took);
    expect_all_failed(out, "timeout");
    assert_true(took < 0.5 + 0.3 + 2); /* the last ones end at their deadline */
    free(out);
    peer_stop(&pe);
}

static void test_reset_peer(void **state) {
    (void)state;
    peer pe;
    peer_start(&pe, RESET);
    double took;
    char *out = run_against(pe.port, "0.5", "1000", &took);
    double failed = load_value(out, "requests_failed");
    assert_int_equal(load_value(out, "requests_ok"), 0);
    assert_true(failed > 3); /* after each, it connects again and goes on */
    /* a RST while reading is a reset; a peer gone before a new request is
     * sent may be seen as closed */
    assert_true(load_value(out, "failed_reset") + load_value(out, "failed_closed") == failed);
    assert_true(load_value(out, "failed_reset") > 0);
    free(out);
    peer_stop(&pe);
}

static void test_garbage_peer(void **state) {
    (void)state;
    peer pe;
    peer_start(&pe, GARBAGE);
    double took;
    char *out = run_against(pe.port, "0.3", "1000", &took);
    expect_all_failed(out, "malformed");
    free(out);
    peer_stop(&pe);
}

static void test_chunked_answers(void **state) {
    (void)state;
    peer pe;
    peer_start(&pe, CHUNKED);
    double took;
    char *out = run_against(pe.port, "0.3", "1000", &took);
    double ok = load_value(out, "requests_ok");
    if (ok < 10 || load_value(out, "requests_failed") != 0)
        fail_msg("chunked answers on a kept-alive connection:\n%s", out);
    assert_int_equal(load_value(out, "bytes_received"), 12 * ok); /* "hello, world" each */
    free(out);
    peer_stop(&pe);
}

/* Against the server: the counts add up, slices and --json included. */
static void test_against_the_server(void **state) {
    (void)state;
    sp p;
    /* no rate limit: GETs of a few cached documents from one client can
     * pass the default 50,000 a second, and a 429 would count as failed */
    assert_int_equal(sp_start(&p, NULL, (const char *const[]){"--rate", "0", NULL}), 0);
    char ports[16];
    snprintf(ports, sizeof ports, "%d", p.port);
    int st;
    char *out = load_run((const char *const[]){"--port", ports, "--connections", "4", "--seconds",
                                               "1", "--keys", "50", "--slices-ms", "250", NULL},
                         &st);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    double ok = load_value(out, "requests_ok");
    assert_int_equal(load_value(out, "prefill_ok"), 50);
    assert_true(ok > 50);
    assert_int_equal(load_value(out, "requests_failed"), 0);
    assert_int_equal(load_value(out, "requests_total"), ok);
    assert_int_equal(load_value(out, "requests_get") + load_value(out, "requests_put") +
                         load_value(out, "requests_query"),
                     ok);
    assert_true(load_value(out, "served_pct") == 100);
    assert_true(load_value(out, "rps") > 0);
    double p50 = load_value(out, "p50_ms"), p99 = load_value(out, "p99_ms");
    assert_true(p50 > 0 && p50 <= p99 && p99 <= load_value(out, "max_ms"));
    /* 4 slices of 250 ms, whose counts add up to the totals */
    assert_int_equal(count_lines(out, "slice "), 4);
    double sum = 0;
    for (const char *l = strstr(out, "slice "); l; l = strstr(l + 1, "\nslice ")) {
        double t, s_ok, s_failed;
        assert_int_equal(sscanf(l + (*l == '\n'), "slice %lf %lf %lf", &t, &s_ok, &s_failed), 3);
        sum += s_ok + s_failed;
    }
    assert_int_equal(sum, ok);
    assert_non_null(strstr(out, "\nslice 0.750 "));
    free(out);
    out = load_run((const char *const[]){"--port", ports, "--connections", "2", "--seconds", "0.5",
                                         "--keys", "10", "--gzip", "--json", "--mix", "get=1",
                                         "--slices-ms", "250", NULL},
                   &st);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(out[0], '{');
    assert_non_null(strstr(out, "\"requests_failed\":0,"));
    assert_non_null(strstr(out, "\"failed\":{\"refused\":0,"));
    assert_non_null(strstr(out, "\"slices\":[{\"t_s\":0.000,"));
    assert_null(strstr(out, "\"gzip_responses\":0,")); /* gzip asked and got */
    assert_int_equal(count_lines(out, "{"), 1);        /* one object, one line */
    free(out);
    assert_int_equal(sp_stop(&p), 0);
    sp_free(&p);
}

static void test_usage(void **state) {
    (void)state;
    int st;
    char *out = load_run((const char *const[]){"--help", NULL}, &st);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_non_null(strstr(out, "usage: qtn-load"));
    free(out);
    static const char *const bad[][5] = {
        {"--connections", "4", NULL},                   /* no --port */
        {"--port", "80", "--mix", "get=1,fly=2", NULL}, /* unknown request */
        {"--port", "80", "--host", "192.0.2.1", NULL},  /* not loopback */
        {"--port", "80", "--seconds", "0", NULL},
        {"--port", "80", "--bogus", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = load_run((const char *const *)bad[i], &st);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
        free(out);
    }
}

/* a test that failed half-way leaves no server behind */
static int teardown(void **state) {
    (void)state;
    sp_cleanup();
    return 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_refused, teardown),
        cmocka_unit_test_teardown(test_silent_peer_times_out, teardown),
        cmocka_unit_test_teardown(test_reset_peer, teardown),
        cmocka_unit_test_teardown(test_garbage_peer, teardown),
        cmocka_unit_test_teardown(test_chunked_answers, teardown),
        cmocka_unit_test_teardown(test_against_the_server, teardown),
        cmocka_unit_test_teardown(test_usage, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
