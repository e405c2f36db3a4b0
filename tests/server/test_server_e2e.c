/* test_server_e2e.c - the example server end to end, without a supervisor:
 * it is started on a free port, spoken to over HTTP, and stopped with
 * SIGTERM (exit status 0). The same requests get the same answers with
 * every component in the host and with every one isolated in a domain of
 * its own. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "client.h"

static const char all_isolated[] =
    "QTN_PLAN=cache=1 ratelimit=2 accesslog=3 render=4 query=5 json=6 zlib=7";

static http_res req(int port, const char *method, const char *path, const char *headers,
                    const char *body) {
    http_res r;
    if (http_do(port, method, path, headers, body, body ? strlen(body) : 0, &r))
        fail_msg("%s %s: no answer", method, path);
    return r;
}

static void expect(int port, const char *method, const char *path, const char *body, int status,
                   const char *contains) {
    http_res r = req(port, method, path, NULL, body);
    if (r.status != status || (contains && !strstr(r.body, contains)))
        fail_msg("%s %s: %d %s (wanted %d with \"%s\")", method, path, r.status, r.body, status,
                 contains ? contains : "");
    http_free(&r);
}

/* Everything the server does, checked; the same wherever its components run. */
static void exercise(int port) {
    char h[128];
    expect(port, "GET", "/health", NULL, 200, "\"status\":\"ok\"");
    const char *doc = "{\"name\":\"Venice <quaranta>\",\"group\":3,\"tags\":[\"ship\",\"port\"],"
                      "\"days\":40}";
    expect(port, "PUT", "/docs/v1", doc, 201, "\"id\":\"v1\"");
    expect(port, "PUT", "/docs/v1", doc, 200, "\"version\":");
    /* the same bytes back (a compact document is stored as it came) */
    http_res r = req(port, "GET", "/docs/v1", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, doc);
    assert_string_equal(http_header(&r, "Content-Type", h, sizeof h), "application/json");
    assert_null(http_header(&r, "Content-Encoding", h, sizeof h));
    http_free(&r);
    /* a body with white space comes back compact */
    expect(port, "PUT", "/docs/w", " { \"a\" : [ 1 , 2 ] }\n", 201, NULL);
    expect(port, "GET", "/docs/w", NULL, 200, "{\"a\":[1,2]}");
    /* gzip when asked, twice: made, then from the cache */
    for (int i = 0; i < 2; i++) {
        r = req(port, "GET", "/docs/v1", "Accept-Encoding: deflate, gzip;q=0.8\r\n", NULL);
        assert_int_equal(r.status, 200);
        assert_non_null(http_header(&r, "Content-Encoding", h, sizeof h));
        assert_string_equal(h, "gzip");
        char *plain;
        size_t plen;
        assert_int_equal(gunzip(r.body, r.len, &plain, &plen), 0);
        assert_int_equal(plen, strlen(doc));
        assert_memory_equal(plain, doc, plen);
        free(plain);
        http_free(&r);
    }
    r = req(port, "GET", "/docs/v1", "Accept-Encoding: gzip;q=0\r\n", NULL);
    assert_null(http_header(&r, "Content-Encoding", h, sizeof h)); /* refused: plain */
    assert_string_equal(r.body, doc);
    http_free(&r);
    /* HTML, plain and gzipped, made and cached */
    for (int i = 0; i < 2; i++) {
        r = req(port, "GET", "/docs/v1.html", NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "<h1>v1</h1>"));
        assert_non_null(strstr(r.body, "<tr><th>name</th><td>Venice &lt;quaranta&gt;</td></tr>"));
        assert_non_null(strstr(r.body, "<tr><th>days</th><td><code>40</code></td></tr>"));
        assert_non_null(strstr(http_header(&r, "Content-Type", h, sizeof h), "text/html"));
        http_free(&r);
        r = req(port, "GET", "/docs/v1.html", "Accept-Encoding: gzip\r\n", NULL);
        assert_int_equal(r.status, 200);
        char *page;
        size_t plen;
        assert_int_equal(gunzip(r.body, r.len, &page, &plen), 0);
        page = realloc(page, plen + 1);
        page[plen] = 0;
        assert_non_null(strstr(page, "<td>Venice &lt;quaranta&gt;</td>"));
        free(page);
        http_free(&r);
    }
    /* what is not there, and what is not right */
    expect(port, "GET", "/docs/nothing", NULL, 404, "no document 'nothing'");
    expect(port, "GET", "/docs/nothing.html", NULL, 404, NULL);
    expect(port, "DELETE", "/docs/nothing", NULL, 404, NULL);
    expect(port, "GET", "/nowhere", NULL, 404, NULL);
    expect(port, "PUT", "/docs/bad", "{\"a\":", 400, "not a document");
    expect(port, "PUT", "/docs/bad", "[1,2]", 400, "a document is a JSON object");
    expect(port, "PUT", "/docs/bad", "{\"a\":1,\"a\":2}", 400, "duplicate");
    expect(port, "PUT", "/docs/a%20b", "{}", 400, "an id is");
    expect(port, "PUT", "/docs/x.html", "{}", 400, "name pages");
    expect(port, "POST", "/docs/v1", "{}", 405, NULL);
    expect(port, "GET", "/query", NULL, 405, NULL);
    /* queries */
    char id[16], body[128];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "/docs/q%02d", i);
        snprintf(body, sizeof body, "{\"group\":%d,\"name\":\"item-%02d\"}", i % 4, i);
        expect(port, "PUT", id, body, 201, NULL);
    }
    expect(port, "POST", "/query", "{\"field\":\"group\",\"equals\":1}", 200,
           "{\"ids\":[\"q01\",\"q05\",\"q09\",\"q13\",\"q17\"],\"count\":5}");
    expect(port, "POST", "/query", "{\"field\":\"group\",\"equals\":3}", 200,
           "{\"ids\":[\"q03\",\"q07\",\"q11\",\"q15\",\"q19\",\"v1\"],\"count\":6}");
    expect(port, "POST", "/query", "{\"field\":\"name\",\"prefix\":\"item-1\",\"limit\":3}", 200,
           "{\"ids\":[\"q10\",\"q11\",\"q12\"],\"count\":10}");
    expect(port, "POST", "/query", "{\"field\":\"group\"}", 400, "bad query");
    expect(port, "PUT", "/docs/q01", "{\"group\":2}", 200, NULL); /* a new generation */
    expect(port, "POST", "/query", "{\"field\":\"group\",\"equals\":1}", 200,
           "{\"ids\":[\"q05\",\"q09\",\"q13\",\"q17\"],\"count\":4}");
    /* delete */
    r = req(port, "DELETE", "/docs/w", NULL, NULL);
    assert_int_equal(r.status, 204);
    http_free(&r);
    expect(port, "GET", "/docs/w", NULL, 404, NULL);
    /* the log in memory, and the statistics */
    expect(port, "GET", "/log", NULL, 200, "\"PUT /docs/v1 HTTP/1.1\" 201 ");
    expect(port, "GET", "/stats", NULL, 200, "\"components\":{\"cache\":{");
    /* and some load: nothing fails */
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    int st;
    char *out = load_run((const char *const[]){"--port", ports, "--connections", "4", "--seconds",
                                               "1", "--keys", "100", "--gzip", "--mix",
                                               "get=40,html=20,put=20,query=20", NULL},
                         &st);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(load_value(out, "prefill_ok"), 100);
    assert_true(load_value(out, "requests_ok") > 20);
    if (load_value(out, "requests_failed") != 0)
        fail_msg("requests failed under load:\n%s", out);
    assert_true(load_value(out, "gzip_responses") > 0);
    free(out);
}

static void run_plan(const char *plan_env) {
    sp p;
    const char *env[] = {plan_env, NULL};
    assert_int_equal(sp_start(&p, plan_env ? env : NULL, NULL), 0);
    exercise(p.port);
    int st = sp_stop(&p);
    char *err = sp_stderr(&p);
    if (!(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fail_msg("SIGTERM: wait status %#x; stderr:\n%s", st, err);
    if (strstr(err, "fault in"))
        fail_msg("a fault without a bug:\n%s", err);
    free(err);
    sp_free(&p);
}

static void test_all_in_host(void **state) {
    (void)state;
    run_plan(NULL);
}

static void test_all_isolated(void **state) {
    (void)state;
    run_plan(all_isolated);
}

/* The stats say where each component runs: isolated ones crossed. */
static void test_stats_show_the_plan(void **state) {
    (void)state;
    sp p;
    const char *env[] = {"QTN_PLAN=render=2 zlib=3", NULL};
    assert_int_equal(sp_start(&p, env, NULL), 0);
    expect(p.port, "PUT", "/docs/s", "{\"a\":1}", 201, NULL);
    expect(p.port, "GET", "/docs/s.html", NULL, 200, NULL);
    http_res r = req(p.port, "GET", "/stats", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"render\":{\"domain\":2,\"calls\":1,\"crossings\":1,"));
    assert_non_null(strstr(r.body, "\"cache\":{\"domain\":0,"));
    assert_non_null(strstr(r.body, "render=2"));
    http_free(&r);
    assert_int_equal(sp_stop(&p), 0);
    sp_free(&p);
}

/* --rate: a client past its bucket gets 429; another client does not. */
static void test_rate_limit(void **state) {
    (void)state;
    sp p;
    assert_int_equal(sp_start(&p, NULL, (const char *const[]){"--rate", "1", "--burst", "3", NULL}),
                     0);
    for (int i = 0; i < 3; i++)
        expect(p.port, "GET", "/docs/none", NULL, 404, NULL);
    expect(p.port, "GET", "/docs/none", NULL, 429, "slow down");
    expect(p.port, "GET", "/health", NULL, 200, NULL); /* not limited */
    http_res r = req(p.port, "GET", "/docs/none", "X-Client-Id: someone-else\r\n", NULL);
    assert_int_equal(r.status, 404);
    http_free(&r);
    assert_int_equal(sp_stop(&p), 0);
    sp_free(&p);
}

/* --access-log: one line per request served, in the file. */
static void test_access_log_file(void **state) {
    (void)state;
    char path[] = "/tmp/qtn-server-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sp p;
    const char *env[] = {"QTN_PLAN=accesslog=1", NULL};
    assert_int_equal(sp_start(&p, env, (const char *const[]){"--access-log", path, NULL}), 0);
    expect(p.port, "PUT", "/docs/l", "{}", 201, NULL);
    expect(p.port, "GET", "/docs/l", NULL, 200, NULL);
    expect(p.port, "GET", "/docs/m", NULL, 404, NULL);
    assert_int_equal(sp_stop(&p), 0);
    sp_free(&p);
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    unlink(path);
    buf[n] = 0;
    assert_int_equal(count_lines(buf, "127.0.0.1 - - ["), 3);
    assert_non_null(strstr(buf, "\"PUT /docs/l HTTP/1.1\" 201 "));
    assert_non_null(strstr(buf, "\"GET /docs/m HTTP/1.1\" 404 "));
}

static void test_usage(void **state) {
    (void)state;
    int st;
    /* the server's own options: --help exits 0, a bad one 2 */
    FILE *f = popen(SERVER_BIN " --help", "r");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    st = pclose(f);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_non_null(strstr(buf, "usage: server"));
    assert_non_null(strstr(buf, "SERVER_BUGS"));
    st = system(SERVER_BIN " --bogus 2>/dev/null");
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    st = system(SERVER_BIN " --port 99999 2>/dev/null");
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    st = system("SERVER_BUGS=nothing " SERVER_BIN " 2>/dev/null");
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
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
        cmocka_unit_test_teardown(test_all_in_host, teardown),
        cmocka_unit_test_teardown(test_all_isolated, teardown),
        cmocka_unit_test_teardown(test_stats_show_the_plan, teardown),
        cmocka_unit_test_teardown(test_rate_limit, teardown),
        cmocka_unit_test_teardown(test_access_log_file, teardown),
        cmocka_unit_test_teardown(test_usage, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
