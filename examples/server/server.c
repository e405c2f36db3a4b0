/* server.c - the document server's HTTP side (server.h).
 *
 * The documents live in the host (store.c). Everything else a request needs
 * is a component call that may fault when the plan isolates that component:
 * each call site below says what the request does then, marked "degrade:".
 * The rule is that one fault costs at most the request that made the call:
 *   ratelimit  fault: no limit for this request
 *   cache      fault: a miss (the body is made again, and maybe not cached)
 *   zlib       fault: the body goes out uncompressed
 *   render     fault: 503 for this request
 *   json       fault: 503 for this request (the document is not stored)
 *   query      fault: the call is made once more (it is a pure function of
 *              its input, and the domain is back in a millisecond); a
 *              second fault, or a parked domain: 503 for this request
 *   accesslog  fault: the line is dropped
 *
 * Routes: GET /health, GET /stats, GET /log, PUT|GET|DELETE /docs/{id},
 * GET /docs/{id}.html, POST /query. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "bugs.h"
#include "cache.h"
#include "docjson.h"
#include "gzip.h"
#include "quarantine.h"
#include "query.h"
#include "ratelimit.h"
#include "render.h"
#include "store.h"

#define DOC_MAX_DEPTH 32
#define CACHE_HTML_CAP(n) (8 * (n) + 4096) /* largest cached page looked up */

struct srv {
    srv_config cfg;
    struct MHD_Daemon *d;
    store *docs;
    int log_fd;
    uint16_t port;
    int inherited;        /* serving the socket a supervisor passed (LISTEN_FDS) */
};

/* One request, from its first byte to its completion. */
typedef struct req {
    int64_t t0_us; /* monotonic */
    int64_t t0_s;  /* wall clock */
    char *body;
    size_t len, cap;
    int too_big;
    unsigned status;
    uint64_t bytes;
    char method[16];
    char path[256];
    char version[16];
    char client[RL_CLIENT_MAX];
} req;

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- answers ------------------------------------------------------------------ */

/* Queues body (len bytes, malloc'd: MHD frees it) as the answer. */
static enum MHD_Result reply(struct MHD_Connection *c, req *r, unsigned status, const char *type,
                             char *body, size_t len, int gzipped) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (gzipped)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    if (!strncmp(r->path, "/docs/", 6))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    r->bytes = len;
    return ret;
}

/* Appends s to a JSON string being built in b (cap bytes), escaped. */
static size_t json_esc(char *b, size_t at, size_t cap, const char *s) {
    for (; *s && at + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            at += (size_t)snprintf(b + at, cap - at, "\\%c", ch);
        else if (ch < 0x20)
            at += (size_t)snprintf(b + at, cap - at, "\\u%04x", ch);
        else
            b[at++] = (char)ch;
    }
    b[at] = 0;
    return at;
}

/* {"error":"..."} with the given status. */
static enum MHD_Result fail(struct MHD_Connection *c, req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result fail(struct MHD_Connection *c, req *r, unsigned status, const char *fmt,
                            ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t cap = 2 * sizeof msg * 3 + 32;
    char *b = malloc(cap);
    if (!b)
        return MHD_NO;
    size_t at = (size_t)snprintf(b, cap, "{\"error\":\"");
    at = json_esc(b, at, cap - 4, msg);
    at += (size_t)snprintf(b + at, cap - at, "\"}\n");
    return reply(c, r, status, "application/json", b, at, 0);
}

static enum MHD_Result text(struct MHD_Connection *c, req *r, unsigned status, const char *type,
                            const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static enum MHD_Result text(struct MHD_Connection *c, req *r, unsigned status, const char *type,
                            const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *b = NULL;
    int n = vasprintf(&b, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MHD_NO;
    return reply(c, r, status, type, b, (size_t)n, 0);
}

/* ---- request headers ----------------------------------------------------------- */

/* Whether Accept-Encoding names gzip (or *) without q=0. */
static int accepts_gzip(struct MHD_Connection *c) {
    const char *ae =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    if (!ae)
        return 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", ae);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ' || *t == '\t')
            t++;
        char *params = strchr(t, ';');
        if (params)
            *params++ = 0;
        size_t n = strcspn(t, " \t");
        t[n] = 0;
        if (strcasecmp(t, "gzip") != 0 && strcasecmp(t, "x-gzip") != 0 && strcmp(t, "*") != 0)
            continue;
        double q = 1;
        const char *qs = params ? strstr(params, "q=") : NULL;
        if (qs)
            q = strtod(qs + 2, NULL);
        if (q > 0)
            return 1;
    }
    return 0;
}

/* Who a request counts against: the X-Client-Id it sends, else its address. */
static void client_of(struct MHD_Connection *c, char *out, size_t cap) {
    const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Client-Id");
    if (id && *id) {
        snprintf(out, cap, "%s", id);
        return;
    }
    snprintf(out, cap, "-");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}

/* ---- derived bodies, through the cache --------------------------------------- */

/* The body cached under (key, ver) in a new buffer, or NULL on a miss. */
static char *cache_lookup(const char *key, uint64_t ver, size_t cap, size_t *len) {
    char *buf = malloc(cap ? cap : 1);
    if (!buf)
        return NULL;
    int64_t n = cache_get(key, ver, buf, cap);
    if (n < 0) {
        /* degrade: -1 is a miss; -2 is the fault value (the cache's domain
         * crashed, and restarts empty): a miss too, the body is made again */
        free(buf);
        return NULL;
    }
    *len = (size_t)n;
    return buf;
}

static void cache_store(const srv *s, const char *key, uint64_t ver, const char *body, size_t len) {
    /* degrade: the answer does not depend on it; a failure or the fault
     * value (-2) only means the next request makes the body again */
    (void)cache_put(key, ver, body, len, s->cfg.cache_entries);
}

/* The gzipped form of body (cached as key), or NULL to serve it as it is. */
static char *gzipped(const srv *s, const char *key, uint64_t ver, const char *body, size_t len,
                     size_t *zlen) {
    char *z = cache_lookup(key, ver, len + len / 1000 + 82, zlen);
    if (z)
        return z;
    void *out;
    if (gz_encode(body, len, s->cfg.gzip_level, &out, zlen))
        return NULL; /* degrade: zlib failed or faulted: uncompressed */
    cache_store(s, key, ver, out, *zlen);
    return out;
}

/* ---- routes -------------------------------------------------------------------- */

static enum MHD_Result get_doc(srv *s, struct MHD_Connection *c, req *r, const char *id) {
    char *json;
    size_t len;
    uint64_t ver;
    int g = store_get(s->docs, id, &json, &len, &ver);
    if (g == -1)
        return fail(c, r, MHD_HTTP_NOT_FOUND, "no document '%s'", id);
    if (g)
        return fail(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    if (accepts_gzip(c)) {
        char key[CACHE_KEY_MAX];
        snprintf(key, sizeof key, "gz:%s", id);
        size_t zlen;
        char *z = gzipped(s, key, ver, json, len, &zlen);
        if (z) {
            free(json);
            return reply(c, r, MHD_HTTP_OK, "application/json", z, zlen, 1);
        }
    }
    return reply(c, r, MHD_HTTP_OK, "application/json", json, len, 0);
}

static enum MHD_Result get_html(srv *s, struct MHD_Connection *c, req *r, const char *id) {
    char *json;
    size_t len;
    uint64_t ver;
    int g = store_get(s->docs, id, &json, &len, &ver);
    if (g == -1)
        return fail(c, r, MHD_HTTP_NOT_FOUND, "no document '%s'", id);
    if (g)
        return fail(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    int gz = accepts_gzip(c);
    char key[CACHE_KEY_MAX];
    snprintf(key, sizeof key, "%s:%s", gz ? "gzhtml" : "html", id);
    size_t plen;
    char *page = cache_lookup(key, ver, gz ? CACHE_HTML_CAP(len) / 2 : CACHE_HTML_CAP(len), &plen);
    if (page) {
        free(json);
        return reply(c, r, MHD_HTTP_OK, "text/html; charset=utf-8", page, plen, gz);
    }
    size_t cap = CACHE_HTML_CAP(len);
    int64_t n = -2;
    for (int tries = 0; n == -2 && tries < 3; tries++, cap *= 4) {
        free(page);
        page = malloc(cap);
        if (!page)
            break;
        n = render_html(id, json, len, page, cap);
    }
    free(json);
    if (n < 0) {
        free(page);
        /* degrade: -3 is the fault value (render's domain crashed under this
         * call): 503 for this request only; the next one renders again */
        if (n == -3)
            return fail(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "rendering failed; try again");
        return fail(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "document '%s' cannot be rendered", id);
    }
    plen = (size_t)n;
    if (gz) {
        void *z;
        size_t zlen;
        if (!gz_encode(page, plen, s->cfg.gzip_level, &z, &zlen)) {
            free(page);
            cache_store(s, key, ver, z, zlen);
            return reply(c, r, MHD_HTTP_OK, "text/html; charset=utf-8", z, zlen, 1);
        }
        /* degrade: zlib failed or faulted: the page goes out uncompressed */
        snprintf(key, sizeof key, "html:%s", id);
    }
    cache_store(s, key, ver, page, plen);
    return reply(c, r, MHD_HTTP_OK, "text/html; charset=utf-8", page, plen, 0);
}

static enum MHD_Result put_doc(srv *s, struct MHD_Connection *c, req *r, const char *id) {
    if (r->too_big)
        return fail(c, r, MHD_HTTP_CONTENT_TOO_LARGE, "a document is at most %zu bytes",
                    s->cfg.max_body);
    size_t idlen = strlen(id);
    if (idlen > 5 && !strcmp(id + idlen - 5, ".html"))
        return fail(c, r, MHD_HTTP_BAD_REQUEST, "ids ending in .html name pages");
    size_t cap = 2 * r->len + 64;
    char *canon = NULL, err[DJ_ERR_MAX];
    int64_t n = -2;
    for (int tries = 0; n == -2 && tries < 3; tries++, cap *= 4) {
        free(canon);
        canon = malloc(cap);
        if (!canon)
            break;
        n = dj_canon(r->body ? r->body : "", r->len, DOC_MAX_DEPTH, canon, cap, err, sizeof err);
    }
    if (n < 0) {
        free(canon);
        if (n == -1)
            return fail(c, r, MHD_HTTP_BAD_REQUEST, "not a document: %s", err);
        /* degrade: -3 is the fault value (json's domain crashed while it
         * parsed this body): 503, and nothing is stored */
        return fail(c, r, MHD_HTTP_SERVICE_UNAVAILABLE,
                    "the document could not be checked; try again");
    }
    uint64_t ver;
    int created = store_put(s->docs, id, canon, (size_t)n, &ver);
    free(canon);
    if (created < 0)
        return fail(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    return text(c, r, created ? MHD_HTTP_CREATED : MHD_HTTP_OK, "application/json",
                "{\"id\":\"%s\",\"version\":%llu}\n", id, (unsigned long long)ver);
}

static enum MHD_Result post_query(srv *s, struct MHD_Connection *c, req *r) {
    if (r->too_big)
        return fail(c, r, MHD_HTTP_CONTENT_TOO_LARGE, "a query is at most %zu bytes",
                    s->cfg.max_body);
    char *snap;
    size_t slen;
    uint64_t gen;
    if (store_snapshot(s->docs, &snap, &slen, &gen))
        return fail(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    size_t cap = slen + 64;
    char *out = NULL, err[QUERY_ERR_MAX];
    int64_t n = -2;
    /* query_run is a pure function of what it is given, so a call its
     * domain crashed under (QTN_EFAULT: the domain is back in about a
     * millisecond) is made once more; a parked domain, a broken contract or
     * a second fault is not retried */
    for (int sizes = 0, faults = 0; sizes < 2;) {
        free(out);
        out = malloc(cap);
        if (!out)
            break;
        qtn_clear_error();
        n = query_run(r->body ? r->body : "", r->len, snap, slen, gen, out, cap, err, sizeof err);
        if (n == -2 && ++sizes < 2)
            cap = 6 * cap + 64;
        else if (!(n == -3 && qtn_last_error() == QTN_EFAULT && faults++ == 0))
            break;
    }
    free(snap);
    if (n < 0) {
        free(out);
        if (n == -1)
            return fail(c, r, MHD_HTTP_BAD_REQUEST, "bad query: %s", err);
        /* degrade: -3 is the fault value (query's domain crashed under this
         * call; its index is rebuilt by the next query): 503 for this one */
        return fail(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "the query failed; try again");
    }
    return reply(c, r, MHD_HTTP_OK, "application/json", out, (size_t)n, 0);
}

static const char *const components[] = {"cache", "ratelimit", "accesslog", "render",
                                         "query", "json",      "zlib"};

static enum MHD_Result get_stats(srv *s, struct MHD_Connection *c, req *r) {
    char plan[512];
    qtn_plan_format(plan, sizeof plan);
    size_t cap = 4096;
    char *b = malloc(cap);
    if (!b)
        return MHD_NO;
    size_t at = (size_t)snprintf(b, cap, "{\"plan\":\"");
    at = json_esc(b, at, cap, plan);
    /* degrade: a faulted count is -1, shown as null */
    long long cached = (long long)cache_count(), clients = (long long)rl_clients();
    char cbuf[24] = "null", lbuf[24] = "null";
    if (cached >= 0)
        snprintf(cbuf, sizeof cbuf, "%lld", cached);
    if (clients >= 0)
        snprintf(lbuf, sizeof lbuf, "%lld", clients);
    at += (size_t)snprintf(b + at, cap - at,
                           "\",\"docs\":%zu,\"generation\":%llu,\"cached\":%s,\"clients\":%s,"
                           "\"bugs\":\"%s\",\"components\":{",
                           store_count(s->docs), (unsigned long long)store_generation(s->docs),
                           cbuf, lbuf, srv_bugs_names());
    for (size_t i = 0; i < sizeof components / sizeof components[0]; i++) {
        qtn_stats st = {0};
        qtn_stats_component(components[i], &st);
        at += (size_t)snprintf(b + at, cap - at,
                               "%s\"%s\":{\"domain\":%d,\"calls\":%llu,\"crossings\":%llu,"
                               "\"faults\":%llu,\"domain_faults\":%llu}",
                               i ? "," : "", components[i], qtn_plan_domain(components[i]),
                               (unsigned long long)st.calls, (unsigned long long)st.crossings,
                               (unsigned long long)st.faults, (unsigned long long)st.domain_faults);
    }
    at += (size_t)snprintf(b + at, cap - at, "}}\n");
    return reply(c, r, MHD_HTTP_OK, "application/json", b, at < cap ? at : cap - 1, 0);
}

static enum MHD_Result get_log(struct MHD_Connection *c, req *r) {
    size_t cap = 2 * (size_t)ALOG_BUFSIZE;
    char *b = malloc(cap);
    if (!b)
        return MHD_NO;
    int32_t n = alog_recent(b, cap);
    if (n < 0) {
        free(b);
        /* degrade: the fault value: the lines in memory are gone with the
         * domain; this request gets 503, the next ones the new lines */
        return fail(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "the log is not available; try again");
    }
    return reply(c, r, MHD_HTTP_OK, "text/plain; charset=utf-8", b, (size_t)n, 0);
}

static enum MHD_Result route(srv *s, struct MHD_Connection *c, req *r, const char *url,
                             const char *method) {
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(url, "/health")) {
        if (!get)
            return fail(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "GET /health");
        return text(c, r, MHD_HTTP_OK, "application/json",
                    "{\"status\":\"ok\",\"docs\":%zu,\"generation\":%llu}\n", store_count(s->docs),
                    (unsigned long long)store_generation(s->docs));
    }
    if (s->cfg.rate) {
        int ok = rl_take(r->client, mono_us(), s->cfg.rate, s->cfg.burst);
        /* degrade: -1 is the fault value (the limiter's domain crashed, and
         * its buckets with it): no limit for this request */
        if (ok == 0)
            return fail(c, r, MHD_HTTP_TOO_MANY_REQUESTS, "slow down");
    }
    if (!strcmp(url, "/stats"))
        return get ? get_stats(s, c, r) : fail(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "GET /stats");
    if (!strcmp(url, "/log"))
        return get ? get_log(c, r) : fail(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "GET /log");
    if (!strcmp(url, "/query")) {
        if (strcmp(method, "POST") != 0)
            return fail(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "POST /query");
        return post_query(s, c, r);
    }
    if (strncmp(url, "/docs/", 6) != 0)
        return fail(c, r, MHD_HTTP_NOT_FOUND, "no such resource");
    char id[STORE_ID_MAX + 8];
    snprintf(id, sizeof id, "%s", url + 6);
    size_t n = strlen(id);
    int html = n > 5 && !strcmp(id + n - 5, ".html");
    if (html && get)
        id[n - 5] = 0;
    if (strlen(url + 6) >= sizeof id || !store_id_ok(id))
        return fail(c, r, MHD_HTTP_BAD_REQUEST, "an id is 1 to %d letters, digits, '-', '_', '.'",
                    STORE_ID_MAX);
    if (get)
        return html ? get_html(s, c, r, id) : get_doc(s, c, r, id);
    if (!strcmp(method, "PUT"))
        return put_doc(s, c, r, id);
    if (!strcmp(method, "DELETE")) {
        if (store_del(s->docs, id))
            return fail(c, r, MHD_HTTP_NOT_FOUND, "no document '%s'", id);
        return reply(c, r, MHD_HTTP_NO_CONTENT, NULL, NULL, 0, 0);
    }
    return fail(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, PUT or DELETE /docs/{id}");
}

/* ---- libmicrohttpd's callbacks ---------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    srv *s = cls;
    req *r = *con_cls;
    if (!r) { /* the headers are in; the body, if any, comes next */
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->t0_us = mono_us();
        r->t0_s = (int64_t)time(NULL);
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        snprintf(r->version, sizeof r->version, "%s", version);
        client_of(c, r->client, sizeof r->client);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_big || r->len + n > s->cfg.max_body) {
            r->too_big = 1; /* read and dropped; answered 413 at the end */
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 1024;
            while (cap < r->len + n + 1)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b)
                return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        r->body[r->len] = 0;
        return MHD_YES;
    }
    return route(s, c, r, url, method);
}

static void log_request(srv *s, const req *r) {
    alog_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.client, sizeof e.client, "%s", r->client);
    snprintf(e.method, sizeof e.method, "%s", r->method);
    snprintf(e.path, sizeof e.path, "%s", r->path);
    snprintf(e.version, sizeof e.version, "%s", r->version);
    e.status = (int32_t)r->status;
    e.bytes = r->bytes;
    e.time_s = r->t0_s;
    int64_t d = mono_us() - r->t0_us;
    e.duration_us = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    char line[ALOG_LINE_MAX];
    int32_t n = alog_format(&e, line, sizeof line);
    if (n <= 0)
        return; /* degrade: -2 is the fault value: the line is dropped */
    if (s->log_fd >= 0 && write(s->log_fd, line, (size_t)n) < 0)
        return; /* a full disk drops lines too */
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    srv *s = cls;
    req *r = *con_cls;
    (void)c;
    if (!r)
        return;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        log_request(s, r);
        qtn_work_done(1); /* one request served: the unit the policy weighs losses in */
    }
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* ---- start and stop ------------------------------------------------------------ */

/* The listening socket a supervisor passed, as systemd's socket activation
 * does (sd_listen_fds(3): LISTEN_PID is this process, LISTEN_FDS >= 1, the
 * first at fd 3): `quarantine run --listen` holds it across restarts, so
 * connections made while the server is down wait instead of being refused.
 * Returns the fd, -1 when none was passed, -2 (err says why) when one was
 * passed that is not a listening stream socket. The variables are removed,
 * so nothing started from here takes the socket for its own. */
static int passed_socket(char *err, size_t errlen) {
    const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
    if (!pid || !n || strtol(pid, NULL, 10) != (long)getpid() || strtol(n, NULL, 10) < 1)
        return -1;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    int fd = 3, type = 0, on = 0;
    socklen_t tl = sizeof type, ol = sizeof on;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) < 0 || !on) {
        snprintf(err, errlen, "LISTEN_FDS: fd %d is not a listening stream socket", fd);
        return -2;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

srv *srv_start(const srv_config *cfg, char *err, size_t errlen) {
    srv *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->log_fd = -1;
    s->docs = store_new();
    if (!s->docs) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    if (cfg->data && store_persist(s->docs, cfg->data, err, errlen)) {
        store_free(s->docs);
        free(s);
        return NULL;
    }
    if (cfg->access_log) {
        s->log_fd = !strcmp(cfg->access_log, "-")
                        ? dup(STDERR_FILENO)
                        : open(cfg->access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (s->log_fd < 0) {
            snprintf(err, errlen, "%s: %s", cfg->access_log, strerror(errno));
            store_free(s->docs);
            free(s);
            return NULL;
        }
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags =
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    int lfd = passed_socket(err, errlen);
    if (lfd == -2) {
        srv_stop(s);
        return NULL;
    }
    /* where it listens: the socket passed (`quarantine run --listen`: it
     * outlives this process), or one of its own on --bind and --port */
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (lfd >= 0) {
        socklen_t sl = sizeof ss;
        if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET6)
            flags |= MHD_USE_IPv6;
        s->inherited = 1;
    } else if (inet_pton(AF_INET, cfg->bind, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(cfg->port);
    } else if (inet_pton(AF_INET6, cfg->bind, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "--bind %s: not an IPv4 or IPv6 address", cfg->bind);
        srv_stop(s);
        return NULL;
    }
    struct MHD_OptionItem where[] = {
        lfd >= 0 ? (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, lfd, NULL}
                 : (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_END, 0, NULL}};
    s->d = MHD_start_daemon(flags, lfd >= 0 ? 0 : cfg->port, NULL, NULL, on_request, s,
                            MHD_OPTION_ARRAY, where, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)cfg->threads, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!s->d) {
        if (lfd >= 0) {
            snprintf(err, errlen, "cannot serve the socket passed as fd %d", lfd);
            close(lfd);
        } else {
            snprintf(err, errlen, "cannot listen on %s port %u (in use, or not an address here)",
                     cfg->bind, (unsigned)cfg->port);
        }
        srv_stop(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : (lfd >= 0 ? 0 : cfg->port);
    return s;
}

uint16_t srv_port(const srv *s) { return s->port; }

int srv_inherited(const srv *s) { return s->inherited; }

void srv_stop(srv *s) {
    if (!s)
        return;
    if (s->d)
        MHD_stop_daemon(s->d); /* joins every connection's thread */
    if (s->log_fd >= 0)
        close(s->log_fd);
    store_free(s->docs);
    free(s);
}
