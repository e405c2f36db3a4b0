/* test_server_units.c - the example server's components called directly, in
 * this process (no stubs, no runtime), and the host parts they work with:
 * the store, the gzip framing, the bug switches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "accesslog.h"
#include "bugs.h"
#include "cache.h"
#include "client.h"
#include "docjson.h"
#include "gzip.h"
#include "query.h"
#include "ratelimit.h"
#include "render.h"
#include "store.h"

/* ---- cache --------------------------------------------------------------------- */

static void test_cache_hit_miss_version(void **state) {
    (void)state;
    char out[64];
    assert_int_equal(cache_get("u:a", 1, out, sizeof out), -1);
    assert_int_equal(cache_put("u:a", 1, "hello", 5, 100), 0);
    assert_int_equal(cache_get("u:a", 1, out, sizeof out), 5);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(cache_get("u:a", 2, out, sizeof out), -1); /* another version */
    assert_int_equal(cache_get("u:a", 1, out, 4), -1);          /* does not fit */
    assert_int_equal(cache_put("u:a", 2, "bye", 3, 100), 0);    /* replaces */
    assert_int_equal(cache_get("u:a", 1, out, sizeof out), -1);
    assert_int_equal(cache_get("u:a", 2, out, sizeof out), 3);
    assert_int_equal(cache_put("u:empty", 7, "", 0, 100), 0);
    assert_int_equal(cache_get("u:empty", 7, out, sizeof out), 0);
    char key[CACHE_KEY_MAX + 1];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = 0;
    assert_int_equal(cache_put(key, 1, "x", 1, 100), -1); /* key too long */
}

static void test_cache_evicts_oldest(void **state) {
    (void)state;
    char key[32], out[32];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "e:%d", i);
        assert_int_equal(cache_put(key, (uint64_t)i, key, strlen(key), 10), 0);
    }
    assert_true(cache_count() <= 10);
    assert_int_equal(cache_get("e:0", 0, out, sizeof out), -1); /* the oldest went */
    assert_int_equal(cache_get("e:49", 49, out, sizeof out), 4);
    assert_memory_equal(out, "e:49", 4);
    assert_int_equal(cache_get("e:40", 40, out, sizeof out), 4);
}

/* ---- ratelimit ---------------------------------------------------------------- */

static void test_ratelimit_bucket(void **state) {
    (void)state;
    int64_t t = 1000000;
    for (int i = 0; i < 5; i++)
        assert_int_equal(rl_take("10.0.0.1", t, 10, 5), 1);
    assert_int_equal(rl_take("10.0.0.1", t, 10, 5), 0);          /* burst used up */
    assert_int_equal(rl_take("10.0.0.2", t, 10, 5), 1);          /* another client */
    assert_int_equal(rl_take("10.0.0.1", t + 100000, 10, 5), 1); /* 0.1 s: one token */
    assert_int_equal(rl_take("10.0.0.1", t + 100000, 10, 5), 0);
    for (int i = 0; i < 5; i++) /* a long wait fills the bucket, up to the burst */
        assert_int_equal(rl_take("10.0.0.1", t + 100000000, 10, 5), 1);
    assert_int_equal(rl_take("10.0.0.1", t + 100000000, 10, 5), 0);
    assert_true(rl_clients() >= 2);
    /* many clients: slots are reused, no client is refused a bucket */
    char c[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(c, sizeof c, "client-%d", i);
        assert_int_equal(rl_take(c, t, 10, 5), 1);
    }
}

/* ---- accesslog ------------------------------------------------------------------ */

static alog_entry entry(const char *path, int64_t when) {
    alog_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.client, sizeof e.client, "127.0.0.1");
    snprintf(e.method, sizeof e.method, "GET");
    snprintf(e.path, sizeof e.path, "%s", path);
    snprintf(e.version, sizeof e.version, "HTTP/1.1");
    e.status = 200;
    e.bytes = 1234;
    e.time_s = when;
    e.duration_us = 56;
    return e;
}

static void test_accesslog_format(void **state) {
    (void)state;
    char line[ALOG_LINE_MAX];
    alog_entry e = entry("/docs/a", 951827696); /* 2000-02-29 12:34:56 UTC: a leap day */
    int32_t n = alog_format(&e, line, sizeof line);
    assert_true(n > 0);
    line[n] = 0;
    assert_string_equal(line, "127.0.0.1 - - [29/Feb/2000:12:34:56 +0000] \"GET /docs/a "
                              "HTTP/1.1\" 200 1234 56us\n");
    e = entry("/x\"y\nz", 0);
    n = alog_format(&e, line, sizeof line);
    line[n] = 0;
    assert_string_equal(line, "127.0.0.1 - - [01/Jan/1970:00:00:00 +0000] \"GET /x_y_z "
                              "HTTP/1.1\" 200 1234 56us\n"); /* nothing breaks the line */
    e = entry("/docs/b", 1796155000);
    n = alog_format(&e, line, sizeof line);
    line[n] = 0;
    assert_non_null(strstr(line, "[01/Dec/2026:"));
    assert_int_equal(alog_format(&e, line, 10), -1);
}

static void test_accesslog_recent(void **state) {
    (void)state;
    char line[ALOG_LINE_MAX], path[64];
    for (int i = 0; i < 200; i++) { /* past one buffer: it is flushed */
        snprintf(path, sizeof path, "/recent/%d", i);
        alog_entry e = entry(path, 0);
        assert_true(alog_format(&e, line, sizeof line) > 0);
    }
    char *all = malloc(2 * ALOG_BUFSIZE + 1);
    int32_t n = alog_recent(all, 2 * (size_t)ALOG_BUFSIZE);
    assert_true(n > ALOG_BUFSIZE / 2);
    all[n] = 0;
    assert_non_null(strstr(all, "/recent/199 "));
    assert_non_null(strstr(all, "/recent/198 "));
    assert_null(strstr(all, "/recent/1 "));                                 /* long gone */
    assert_true(strstr(all, "/recent/198 ") < strstr(all, "/recent/199 ")); /* oldest first */
    assert_int_equal(all[n - 1], '\n');
    free(all);
}

/* ---- render --------------------------------------------------------------------- */

static void test_render_html(void **state) {
    (void)state;
    const char *doc = "{\"title\":\"<b>&'\\\"\",\"n\":3,\"tags\":[\"a\",\"b\"]}";
    char out[4096];
    int64_t n = render_html("d<1>", doc, strlen(doc), out, sizeof out);
    assert_true(n > 0);
    out[n] = 0;
    assert_non_null(strstr(out, "<title>d&lt;1&gt;</title>"));
    assert_non_null(strstr(out, "<tr><th>title</th><td>&lt;b&gt;&amp;&#39;&quot;</td></tr>"));
    assert_non_null(strstr(out, "<tr><th>n</th><td><code>3</code></td></tr>"));
    assert_non_null(strstr(out, "<td><code>[&quot;a&quot;,&quot;b&quot;]</code></td>"));
    assert_true(strstr(out, "title") < strstr(out, "tags")); /* in the document's order */
    assert_int_equal(render_html("x", "[1]", 3, out, sizeof out), -1);
    assert_int_equal(render_html("x", "{bad", 4, out, sizeof out), -1);
    assert_int_equal(render_html("x", doc, strlen(doc), out, 50), -2);
}

/* ---- json ------------------------------------------------------------------------ */

static void test_json_canon(void **state) {
    (void)state;
    char out[256], err[DJ_ERR_MAX];
    const char *in = " { \"a\" : 1 ,\n \"b\" : [ true , null ] , \"c\":\"x\\u00e9\" } ";
    int64_t n = dj_canon(in, strlen(in), 32, out, sizeof out, err, sizeof err);
    assert_true(n > 0);
    out[n] = 0;
    assert_string_equal(out, "{\"a\":1,\"b\":[true,null],\"c\":\"x\xc3\xa9\"}");
    assert_int_equal(dj_canon("[1,2]", 5, 32, out, sizeof out, err, sizeof err), -1);
    assert_string_equal(err, "a document is a JSON object");
    assert_int_equal(dj_canon("{\"a\":1,\"a\":2}", 13, 32, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "duplicate"));
    assert_int_equal(dj_canon("{\"a\":", 5, 32, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "1:"));
    assert_int_equal(dj_canon("", 0, 32, out, sizeof out, err, sizeof err), -1);
    const char *deep = "{\"a\":{\"b\":{\"c\":[1]}}}";
    assert_true(dj_canon(deep, strlen(deep), 4, out, sizeof out, err, sizeof err) > 0);
    assert_int_equal(dj_canon(deep, strlen(deep), 3, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "deeper than 3"));
    assert_int_equal(dj_canon(in, strlen(in), 32, out, 8, err, sizeof err), -2);
}

/* ---- query ------------------------------------------------------------------------ */

/* A snapshot as store_snapshot() makes it: id, version, text. */
static size_t snap(char *b, const char *const *recs, size_t n) {
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(recs[i]) + 1;
        memcpy(b + at, recs[i], l);
        at += l;
    }
    return at;
}

static int64_t q(const char *query, const char *docs, size_t dlen, uint64_t gen, char *out,
                 size_t cap, char *err) {
    int64_t n = query_run(query, strlen(query), docs, dlen, gen, out, cap, err, QUERY_ERR_MAX);
    if (n >= 0)
        out[n] = 0;
    return n;
}

static void test_query_run(void **state) {
    (void)state;
    static const char *const g1[] = {
        "b", "1", "{\"g\":1,\"name\":\"beta\"}", "a", "2", "{\"g\":1,\"name\":\"alpha\"}",
        "c", "3", "{\"g\":2,\"name\":\"alps\"}", "d", "4", "not json"};
    char docs[512], out[512], err[QUERY_ERR_MAX];
    size_t dlen = snap(docs, g1, 12);
    assert_true(q("{\"field\":\"g\",\"equals\":1}", docs, dlen, 10, out, sizeof out, err) > 0);
    assert_string_equal(out, "{\"ids\":[\"a\",\"b\"],\"count\":2}"); /* in id order */
    q("{\"field\":\"name\",\"prefix\":\"al\"}", docs, dlen, 10, out, sizeof out, err);
    assert_string_equal(out, "{\"ids\":[\"a\",\"c\"],\"count\":2}");
    q("{\"field\":\"name\",\"prefix\":\"al\",\"limit\":1}", docs, dlen, 10, out, sizeof out, err);
    assert_string_equal(out, "{\"ids\":[\"a\"],\"count\":2}");
    q("{\"field\":\"nope\",\"equals\":1}", docs, dlen, 10, out, sizeof out, err);
    assert_string_equal(out, "{\"ids\":[],\"count\":0}");
    q("{\"field\":\"name\",\"equals\":\"alps\"}", docs, dlen, 10, out, sizeof out, err);
    assert_string_equal(out, "{\"ids\":[\"c\"],\"count\":1}");
    /* a new generation: c changed (new version), a is the same and shared */
    static const char *const g2[] = {"b", "1", "{\"g\":1,\"name\":\"beta\"}",
                                     "a", "2", "{\"g\":1,\"name\":\"alpha\"}",
                                     "c", "5", "{\"g\":1,\"name\":\"gamma\"}"};
    dlen = snap(docs, g2, 9);
    q("{\"field\":\"g\",\"equals\":1}", docs, dlen, 11, out, sizeof out, err);
    assert_string_equal(out, "{\"ids\":[\"a\",\"b\",\"c\"],\"count\":3}");
    /* the same generation again: the index is reused, not the text (which
     * the store would not change without a new generation) */
    q("{\"field\":\"name\",\"prefix\":\"g\"}", docs, dlen, 11, out, sizeof out, err);
    assert_string_equal(out, "{\"ids\":[\"c\"],\"count\":1}");
    /* bad queries */
    assert_int_equal(q("{\"field\":1,\"equals\":1}", docs, dlen, 11, out, sizeof out, err), -1);
    assert_string_equal(err, "\"field\" must be a string");
    assert_int_equal(q("{\"field\":\"g\"}", docs, dlen, 11, out, sizeof out, err), -1);
    assert_int_equal(
        q("{\"field\":\"g\",\"equals\":1,\"prefix\":\"x\"}", docs, dlen, 11, out, sizeof out, err),
        -1);
    assert_int_equal(
        q("{\"field\":\"g\",\"equals\":1,\"limit\":-1}", docs, dlen, 11, out, sizeof out, err), -1);
    assert_int_equal(q("[", docs, dlen, 11, out, sizeof out, err), -1);
    assert_int_equal(q("{\"field\":\"g\",\"equals\":1}", docs, dlen, 11, out, 10, err), -2);
    /* no documents at all */
    assert_true(q("{\"field\":\"g\",\"equals\":1}", docs, 0, 12, out, sizeof out, err) > 0);
    assert_string_equal(out, "{\"ids\":[],\"count\":0}");
}

/* ---- store ------------------------------------------------------------------------ */

static void test_store(void **state) {
    (void)state;
    store *s = store_new();
    assert_non_null(s);
    uint64_t v1, v2, v;
    assert_int_equal(store_put(s, "a", "{\"x\":1}", 7, &v1), 1);
    assert_int_equal(store_put(s, "a", "{\"x\":2}", 7, &v2), 0);
    assert_true(v2 > v1);
    char *json;
    size_t len;
    assert_int_equal(store_get(s, "a", &json, &len, &v), 0);
    assert_int_equal(len, 7);
    assert_string_equal(json, "{\"x\":2}");
    assert_int_equal(v, v2);
    free(json);
    assert_int_equal(store_get(s, "b", &json, &len, &v), -1);
    char id[32], text[64];
    for (int i = 0; i < 3000; i++) { /* the table grows */
        snprintf(id, sizeof id, "doc-%d", i);
        int n = snprintf(text, sizeof text, "{\"i\":%d}", i);
        assert_int_equal(store_put(s, id, text, (size_t)n, &v), 1);
    }
    assert_int_equal(store_count(s), 3001);
    assert_int_equal(store_get(s, "doc-1234", &json, &len, &v), 0);
    assert_string_equal(json, "{\"i\":1234}");
    free(json);
    assert_int_equal(store_del(s, "doc-1234"), 0);
    assert_int_equal(store_del(s, "doc-1234"), -1);
    uint64_t gen;
    char *b;
    size_t blen;
    assert_int_equal(store_snapshot(s, &b, &blen, &gen), 0);
    assert_int_equal(gen, store_generation(s));
    size_t recs = 0;
    int found_a = 0;
    for (const char *p = b; p < b + blen; recs++) {
        const char *ver = p + strlen(p) + 1, *t = ver + strlen(ver) + 1;
        if (!strcmp(p, "a")) {
            found_a = 1;
            assert_int_equal(strtoull(ver, NULL, 10), v2);
            assert_string_equal(t, "{\"x\":2}");
        }
        p = t + strlen(t) + 1;
    }
    free(b);
    assert_int_equal(recs, 3000);
    assert_true(found_a);
    assert_true(store_id_ok("a-b_c.9"));
    assert_false(store_id_ok(""));
    assert_false(store_id_ok("a/b"));
    assert_false(store_id_ok("a b"));
    char longid[STORE_ID_MAX + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    assert_false(store_id_ok(longid));
    store_free(s);
}

/* ---- gzip -------------------------------------------------------------------------- */

static void test_gzip_round_trip(void **state) {
    (void)state;
    static char text[100000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "quarantine keeps servers running "[i % 33] + (char)(i % 7 == 0);
    static const size_t sizes[] = {0, 1, 10, 100, 1000, 10000, sizeof text};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        void *z;
        size_t zlen;
        assert_int_equal(gz_encode(text, n, 6, &z, &zlen), 0);
        const unsigned char *u = z;
        assert_int_equal(u[0], 0x1f);
        assert_int_equal(u[1], 0x8b);
        char *back;
        size_t blen;
        assert_int_equal(gunzip(z, zlen, &back, &blen), 0);
        assert_int_equal(blen, n);
        assert_memory_equal(back, text, n);
        if (n > 1000)
            assert_true(zlen < n / 2);
        free(back);
        free(z);
    }
}

/* ---- bug switches ------------------------------------------------------------------ */

static void test_bug_switches(void **state) {
    (void)state;
    char err[128];
    assert_int_equal(srv_bugs_init("cache,query", "250", "30", err, sizeof err), 0);
    assert_true(srv_bug(SRV_BUG_CACHE));
    assert_false(srv_bug(SRV_BUG_LOG));
    assert_true(srv_bug(SRV_BUG_QUERY));
    assert_string_equal(srv_bugs_names(), "cache,query");
    assert_int_equal(srv_bug_cfg.window_us, 250);
    assert_int_equal(srv_bug_cfg.window_pct, 30);
    assert_int_equal(srv_bugs_init("all", NULL, NULL, err, sizeof err), 0);
    assert_string_equal(srv_bugs_names(), "cache,log,query");
    assert_int_equal(srv_bug_cfg.window_pct, 100);
    assert_int_equal(srv_bugs_init("cache,nope", NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown bug 'nope'"));
    assert_int_equal(srv_bugs_init("log", "x", NULL, err, sizeof err), -1);
    assert_int_equal(srv_bugs_init("log", NULL, "101", err, sizeof err), -1);
    assert_int_equal(srv_bugs_init(NULL, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(srv_bugs_names(), "none");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_hit_miss_version),
        cmocka_unit_test(test_cache_evicts_oldest),
        cmocka_unit_test(test_ratelimit_bucket),
        cmocka_unit_test(test_accesslog_format),
        cmocka_unit_test(test_accesslog_recent),
        cmocka_unit_test(test_render_html),
        cmocka_unit_test(test_json_canon),
        cmocka_unit_test(test_query_run),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_gzip_round_trip),
        cmocka_unit_test(test_bug_switches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
