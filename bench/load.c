/* load.c - qtn-load, the load generator for the example server
 * (examples/server): a fixed number of HTTP/1.1 keep-alive connections, one
 * thread each, on raw sockets, for a bounded time.
 *
 * It first PUTs --keys documents (k0, k1, ...) so that GETs hit, then runs
 * the mix for --seconds. Every request is counted once: ok (2xx) or failed,
 * with its reason (refused, reset, closed, timeout, malformed, http_4xx,
 * http_5xx, other); a failed request is never retried, and after a failure
 * the connection is made again for the next one. Every socket operation has
 * a deadline (--timeout-ms per request), so it always ends, even when the
 * server hangs or dies. Output: `name value unit` lines, or one JSON object
 * with --json; --slices-ms M adds a line `slice t_s ok failed` every M ms
 * while it runs. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: qtn-load --port N [--host 127.0.0.1] [--connections C] [--seconds S]\n"
    "                [--mix get=70,put=20,query=10] [--keys K] [--gzip] [--json]\n"
    "                [--timeout-ms T] [--slices-ms M] [--seed N] [--allow-remote]\n"
    "Drives the example document server: C keep-alive connections, a thread each,\n"
    "for S seconds, after PUTting K documents (k0 .. k<K-1>) so that GETs hit.\n"
    "  --connections C  concurrent connections (default 16)\n"
    "  --seconds S      how long the mix runs (default 5; fractions allowed)\n"
    "  --mix LIST       weights of the requests: get (GET /docs/k<i>), html\n"
    "                   (GET /docs/k<i>.html), put (PUT /docs/k<i>), query (POST\n"
    "                   /query), delete (DELETE /docs/k<i>), health (GET /health);\n"
    "                   default get=70,put=20,query=10\n"
    "  --keys K         documents (default 1000)\n"
    "  --gzip           send Accept-Encoding: gzip with GETs\n"
    "  --timeout-ms T   deadline of one request, connecting included (default 5000)\n"
    "  --slices-ms M    print `slice t_s ok failed` for every M ms while running\n"
    "  --json           one JSON object instead of lines\n"
    "  --seed N         random seed (default 1)\n"
    "  --allow-remote   allow a --host that is not a loopback address\n"
    "A request is ok when it gets a 2xx answer; anything else (refused or reset\n"
    "connection, non-2xx, timeout, malformed answer) counts as failed, once, with\n"
    "its reason; it is not retried. After a refused connection a thread waits\n"
    "10 ms before its next request. Output lines are `name value unit`.\n"
    "Exit status: 0 when it ran (whatever the server did), 2 bad usage.\n";

/* ---- options ------------------------------------------------------------------ */

enum { OP_GET, OP_HTML, OP_PUT, OP_QUERY, OP_DELETE, OP_HEALTH, OP_N };
static const char *const op_names[OP_N] = {"get", "html", "put", "query", "delete", "health"};

enum { R_REFUSED, R_RESET, R_CLOSED, R_TIMEOUT, R_MALFORMED, R_HTTP4, R_HTTP5, R_OTHER, R_N };
static const char *const reason_names[R_N] = {"refused",   "reset",    "closed",   "timeout",
                                              "malformed", "http_4xx", "http_5xx", "other"};

static struct {
    char host[64];
    unsigned port;
    unsigned connections;
    double seconds;
    unsigned mix[OP_N];
    unsigned mix_total;
    unsigned keys;
    int gzip, json, allow_remote;
    unsigned timeout_ms, slices_ms;
    uint64_t seed;
} opt = {.host = "127.0.0.1",
         .connections = 16,
         .seconds = 5,
         .keys = 1000,
         .timeout_ms = 5000,
         .seed = 1};

static struct sockaddr_in server_addr;

static int parse_uint(const char *name, const char *s, unsigned long max, unsigned *out) {
    char *end;
    errno = 0;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v > max) {
        fprintf(stderr, "qtn-load: %s: '%s' is not a number 0..%lu\n", name, s ? s : "", max);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int parse_mix(const char *s) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    memset(opt.mix, 0, sizeof opt.mix);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (!eq) {
            fprintf(stderr, "qtn-load: --mix: '%s' is not name=weight\n", t);
            return -1;
        }
        *eq = 0;
        int op = 0;
        while (op < OP_N && strcmp(op_names[op], t) != 0)
            op++;
        if (op == OP_N) {
            fprintf(stderr,
                    "qtn-load: --mix: unknown request '%s' (get html put query delete health)\n",
                    t);
            return -1;
        }
        if (parse_uint("--mix", eq + 1, 1000000, &opt.mix[op]))
            return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv) {
    int mix_set = 0, port_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(a, "--gzip")) {
            opt.gzip = 1;
            continue;
        }
        if (!strcmp(a, "--json")) {
            opt.json = 1;
            continue;
        }
        if (!strcmp(a, "--allow-remote")) {
            opt.allow_remote = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "qtn-load: %s needs a value (or is unknown)\n%s", a, usage);
            return -1;
        }
        i++;
        int r = 0;
        unsigned u;
        if (!strcmp(a, "--port"))
            r = parse_uint(a, v, 65535, &opt.port), port_set = 1;
        else if (!strcmp(a, "--host"))
            snprintf(opt.host, sizeof opt.host, "%s", !strcmp(v, "localhost") ? "127.0.0.1" : v);
        else if (!strcmp(a, "--connections"))
            r = parse_uint(a, v, 10000, &opt.connections);
        else if (!strcmp(a, "--seconds")) {
            char *end;
            opt.seconds = strtod(v, &end);
            if (*end || !(opt.seconds > 0) || opt.seconds > 86400) {
                fprintf(stderr, "qtn-load: --seconds: '%s' is not a duration 0..86400\n", v);
                r = -1;
            }
        } else if (!strcmp(a, "--mix"))
            r = parse_mix(v), mix_set = 1;
        else if (!strcmp(a, "--keys"))
            r = parse_uint(a, v, 100000000, &opt.keys);
        else if (!strcmp(a, "--timeout-ms"))
            r = parse_uint(a, v, 3600000, &opt.timeout_ms);
        else if (!strcmp(a, "--slices-ms"))
            r = parse_uint(a, v, 3600000, &opt.slices_ms);
        else if (!strcmp(a, "--seed"))
            r = parse_uint(a, v, UINT32_MAX, &u), opt.seed = r ? 0 : u;
        else {
            fprintf(stderr, "qtn-load: unknown option '%s'\n%s", a, usage);
            return -1;
        }
        if (r)
            return -1;
    }
    if (!port_set || !opt.port) {
        fprintf(stderr, "qtn-load: --port is required\n%s", usage);
        return -1;
    }
    if (!mix_set) {
        opt.mix[OP_GET] = 70;
        opt.mix[OP_PUT] = 20;
        opt.mix[OP_QUERY] = 10;
    }
    opt.mix_total = 0;
    for (int i = 0; i < OP_N; i++)
        opt.mix_total += opt.mix[i];
    if (!opt.mix_total || !opt.connections || !opt.timeout_ms) {
        fprintf(stderr, "qtn-load: the mix, --connections and --timeout-ms must not be 0\n");
        return -1;
    }
    if (!opt.keys && opt.mix_total != opt.mix[OP_QUERY] + opt.mix[OP_HEALTH]) {
        fprintf(stderr, "qtn-load: --keys 0 leaves nothing to get, put or delete\n");
        return -1;
    }
    memset(&server_addr, 0, sizeof server_addr);
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1) {
        fprintf(stderr, "qtn-load: --host %s: not an IPv4 address\n", opt.host);
        return -1;
    }
    if ((ntohl(server_addr.sin_addr.s_addr) >> 24) != 127 && !opt.allow_remote) {
        fprintf(stderr, "qtn-load: --host %s is not a loopback address (--allow-remote)\n",
                opt.host);
        return -1;
    }
    return 0;
}

/* ---- time and randomness -------------------------------------------------- */

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(int64_t us) {
    if (us <= 0)
        return;
    struct timespec d = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    while (nanosleep(&d, &d) && errno == EINTR)
        ;
}

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- one connection ------------------------------------------------------------ */

typedef struct conn {
    int fd;
    char *buf; /* what was read and not consumed */
    size_t have, cap;
} conn;

typedef struct response {
    int status;
    int gzip;
    size_t body_len;
} response;

static void conn_close(conn *c) {
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->have = 0;
}

/* Waits for events on c->fd until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - now_us();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)((left + 999) / 1000));
        if (r > 0)
            return 1;
        if (r == 0)
            continue; /* rounding: check the clock again */
        if (errno != EINTR)
            return -1;
    }
}

static int errno_reason(int e) {
    switch (e) {
    case ECONNREFUSED: return R_REFUSED;
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED: return R_RESET;
    case ETIMEDOUT: return R_TIMEOUT;
    default: return R_OTHER;
    }
}

/* Connects c; returns -1 or a reason. */
static int conn_open(conn *c, int64_t deadline) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return R_OTHER;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->have = 0;
    if (connect(c->fd, (struct sockaddr *)&server_addr, sizeof server_addr) == 0)
        return -1;
    if (errno != EINPROGRESS) {
        int e = errno;
        conn_close(c);
        return errno_reason(e);
    }
    int w = wait_fd(c->fd, POLLOUT, deadline);
    if (w <= 0) {
        conn_close(c);
        return w == 0 ? R_TIMEOUT : R_OTHER;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        conn_close(c);
        return errno_reason(err);
    }
    return -1;
}

static int send_all(conn *c, const char *p, size_t n, int64_t deadline) {
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = wait_fd(c->fd, POLLOUT, deadline);
            if (r <= 0)
                return r == 0 ? R_TIMEOUT : R_OTHER;
            continue;
        }
        return errno_reason(errno);
    }
    return -1;
}

/* Reads more into c->buf: -1 got some, R_CLOSED at end of stream, or a reason. */
static int read_more(conn *c, int64_t deadline) {
    if (c->cap - c->have < 4096) {
        size_t cap = c->cap ? c->cap * 2 : 65536;
        char *b = realloc(c->buf, cap);
        if (!b)
            return R_OTHER;
        c->buf = b;
        c->cap = cap;
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->have, c->cap - c->have - 1, 0);
        if (r > 0) {
            c->have += (size_t)r;
            c->buf[c->have] = 0;
            return -1;
        }
        if (r == 0)
            return R_CLOSED;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(c->fd, POLLIN, deadline);
            if (w <= 0)
                return w == 0 ? R_TIMEOUT : R_OTHER;
            continue;
        }
        return errno_reason(errno);
    }
}

static const char *find_crlf2(const char *p, size_t n) {
    for (size_t i = 0; i + 3 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
            return p + i;
    return NULL;
}

/* A header's value (up to the line's end) if line starts with name. */
static const char *header(const char *line, const char *name) {
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return NULL;
    line += n + 1;
    while (*line == ' ' || *line == '\t')
        line++;
    return line;
}

#define BODY_MAX (64ll << 20) /* a larger answer is taken for malformed */

/* Reads one response. Returns -1 (*res filled; *keep: the connection may be
 * used again) or a reason. */
static int read_response(conn *c, response *res, int *keep, int64_t deadline) {
    const char *end;
    int r;
    while (!(end = find_crlf2(c->buf ? c->buf : "", c->have))) {
        if (c->have > 65536)
            return R_MALFORMED;
        if ((r = read_more(c, deadline)) >= 0)
            return r;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    int major, minor, status;
    if (sscanf(c->buf, "HTTP/%d.%d %3d", &major, &minor, &status) != 3 || status < 100 ||
        status > 599)
        return R_MALFORMED;
    long long clen = -1;
    int chunked = 0;
    *keep = !(major == 1 && minor == 0);
    res->gzip = 0;
    for (const char *line = strstr(c->buf, "\r\n") + 2; line < end;
         line = strstr(line, "\r\n") + 2) {
        const char *v;
        if ((v = header(line, "Content-Length"))) {
            char *e;
            clen = strtoll(v, &e, 10);
            if (e == v || clen < 0 || clen > BODY_MAX)
                return R_MALFORMED;
        } else if ((v = header(line, "Transfer-Encoding"))) {
            chunked = !strncasecmp(v, "chunked", 7);
        } else if ((v = header(line, "Connection"))) {
            if (!strncasecmp(v, "close", 5))
                *keep = 0;
            else if (!strncasecmp(v, "keep-alive", 10))
                *keep = 1;
        } else if ((v = header(line, "Content-Encoding"))) {
            res->gzip = !strncasecmp(v, "gzip", 4);
        }
    }
    res->status = status;
    size_t used;
    if (status == 204 || status == 304 || status < 200) {
        used = head_len;
        res->body_len = 0;
    } else if (chunked) {
        size_t at = head_len, body = 0;
        for (;;) {
            char *nl;
            while (!(nl = memchr(c->buf + at, '\n', c->have - at))) {
                if ((r = read_more(c, deadline)) >= 0)
                    return r == R_CLOSED ? R_CLOSED : r;
            }
            char *e;
            unsigned long long n = strtoull(c->buf + at, &e, 16);
            if (e == c->buf + at || n > BODY_MAX || body + n > BODY_MAX)
                return R_MALFORMED;
            at = (size_t)(nl - c->buf) + 1;
            if (n == 0) { /* trailers, then an empty line */
                for (;;) {
                    while (!(nl = memchr(c->buf + at, '\n', c->have - at)))
                        if ((r = read_more(c, deadline)) >= 0)
                            return r;
                    size_t llen = (size_t)(nl - (c->buf + at));
                    at = (size_t)(nl - c->buf) + 1;
                    if (llen <= 1)
                        break;
                }
                break;
            }
            while (c->have - at < n + 2)
                if ((r = read_more(c, deadline)) >= 0)
                    return r;
            at += n + 2;
            body += n;
        }
        used = at;
        res->body_len = body;
    } else if (clen >= 0) {
        while (c->have - head_len < (size_t)clen)
            if ((r = read_more(c, deadline)) >= 0)
                return r;
        used = head_len + (size_t)clen;
        res->body_len = (size_t)clen;
    } else { /* until the server closes */
        while ((r = read_more(c, deadline)) < 0)
            if (c->have > BODY_MAX)
                return R_MALFORMED;
        if (r != R_CLOSED)
            return r;
        used = c->have;
        res->body_len = c->have - head_len;
        *keep = 0;
    }
    memmove(c->buf, c->buf + used, c->have - used);
    c->have -= used;
    c->buf[c->have] = 0;
    return -1;
}

/* Makes one request on c (connecting first if needed). Returns -1 when it
 * got an answer (in *res), or the reason it failed. */
static int do_request(conn *c, const char *req, size_t len, response *res) {
    int64_t deadline = now_us() + (int64_t)opt.timeout_ms * 1000;
    int r;
    if (c->fd < 0 && (r = conn_open(c, deadline)) >= 0)
        return r;
    int keep = 1;
    if ((r = send_all(c, req, len, deadline)) >= 0 ||
        (r = read_response(c, res, &keep, deadline)) >= 0) {
        conn_close(c); /* whatever was on it is lost with the request */
        return r;
    }
    if (!keep)
        conn_close(c);
    return -1;
}

/* ---- requests ---------------------------------------------------------------- */

static size_t make_request(char *b, size_t cap, int op, uint64_t *rs) {
    unsigned key = opt.keys ? (unsigned)(rnd(rs) % opt.keys) : 0;
    const char *gz = opt.gzip ? "Accept-Encoding: gzip\r\n" : "";
    char body[512];
    int n = 0;
    switch (op) {
    case OP_GET:
        return (size_t)snprintf(b, cap, "GET /docs/k%u HTTP/1.1\r\nHost: %s\r\n%s\r\n", key,
                                opt.host, gz);
    case OP_HTML:
        return (size_t)snprintf(b, cap, "GET /docs/k%u.html HTTP/1.1\r\nHost: %s\r\n%s\r\n", key,
                                opt.host, gz);
    case OP_HEALTH:
        return (size_t)snprintf(b, cap, "GET /health HTTP/1.1\r\nHost: %s\r\n\r\n", opt.host);
    case OP_DELETE:
        return (size_t)snprintf(b, cap, "DELETE /docs/k%u HTTP/1.1\r\nHost: %s\r\n\r\n", key,
                                opt.host);
    case OP_PUT:
        n = snprintf(body, sizeof body,
                     "{\"name\":\"doc-%u\",\"group\":%u,\"n\":%u,\"v\":%llu,"
                     "\"text\":\"Quarantine keeps the calls in flight in a crashed component "
                     "and nothing else: document %u.\",\"tags\":[\"load\",\"k%u\"]}",
                     key, key % 16, key, (unsigned long long)(rnd(rs) % 1000000), key, key);
        return (size_t)snprintf(b, cap,
                                "PUT /docs/k%u HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                                "application/json\r\nContent-Length: %d\r\n\r\n%s",
                                key, opt.host, n, body);
    case OP_QUERY:
        if (rnd(rs) % 2)
            n = snprintf(body, sizeof body, "{\"field\":\"group\",\"equals\":%u}",
                         (unsigned)(rnd(rs) % 16));
        else
            n = snprintf(body, sizeof body,
                         "{\"field\":\"name\",\"prefix\":\"doc-%u\",\"limit\":20}",
                         (unsigned)(rnd(rs) % 100));
        return (size_t)snprintf(b, cap,
                                "POST /query HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                                "application/json\r\nContent-Length: %d\r\n\r\n%s",
                                opt.host, n, body);
    }
    return 0;
}

static int pick_op(uint64_t *rs) {
    unsigned x = (unsigned)(rnd(rs) % opt.mix_total);
    for (int i = 0; i < OP_N; i++) {
        if (x < opt.mix[i])
            return i;
        x -= opt.mix[i];
    }
    return OP_GET;
}

/* ---- the run ------------------------------------------------------------------ */

typedef struct worker {
    pthread_t t;
    unsigned idx;
    uint64_t ok, failed, reasons[R_N], gzip, bytes, by_op[OP_N];
    uint64_t prefill_ok, prefill_failed;
    uint32_t *lat; /* microseconds, one per request */
    size_t nlat, caplat;
} worker;

static pthread_barrier_t ready;
static int64_t t_start, t_end; /* of the timed phase */
static _Atomic uint64_t *slice_ok, *slice_failed;
static size_t nslices;

static void record_latency(worker *w, int64_t us) {
    if (w->nlat == w->caplat) {
        size_t cap = w->caplat ? w->caplat * 2 : 4096;
        uint32_t *p = realloc(w->lat, cap * sizeof *p);
        if (!p)
            return; /* out of memory: this one is not in the percentiles */
        w->lat = p;
        w->caplat = cap;
    }
    w->lat[w->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void *run_worker(void *arg) {
    worker *w = arg;
    conn c = {.fd = -1};
    uint64_t rs = (opt.seed + 1) * 0x9e3779b97f4a7c15u + w->idx * 0x632be59bd9b4e019u;
    rs |= 1;
    char req[1024];
    response res;
    /* prefill: this connection's share of the keys; it stops when the
     * server refuses or does not answer (it is not asked K times) */
    int64_t prefill_deadline = now_us() + 10000000 + 2 * (int64_t)opt.timeout_ms * 1000;
    for (unsigned k = w->idx; k < opt.keys; k += opt.connections) {
        if (now_us() > prefill_deadline) {
            w->prefill_failed++;
            break;
        }
        uint64_t fixed = k; /* make_request picks a random key: give it k */
        char body[256];
        int n = snprintf(body, sizeof body,
                         "{\"name\":\"doc-%u\",\"group\":%u,\"n\":%u,\"v\":0,\"text\":\"document "
                         "%u\",\"tags\":[\"prefill\"]}",
                         k, k % 16, k, k);
        size_t len = (size_t)snprintf(req, sizeof req,
                                      "PUT /docs/k%u HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                                      "application/json\r\nContent-Length: %d\r\n\r\n%s",
                                      (unsigned)fixed, opt.host, n, body);
        int r = do_request(&c, req, len, &res);
        if (r < 0 && res.status / 100 == 2) {
            w->prefill_ok++;
            continue;
        }
        w->prefill_failed++;
        if (r == R_REFUSED || r == R_TIMEOUT)
            break;
    }
    pthread_barrier_wait(&ready);
    pthread_barrier_wait(&ready); /* main has set t_start, t_end */
    while (now_us() < t_end) {
        int op = pick_op(&rs);
        size_t len = make_request(req, sizeof req, op, &rs);
        int64_t t0 = now_us();
        int r = do_request(&c, req, len, &res);
        int64_t t1 = now_us();
        if (r < 0 && res.status / 100 != 2)
            r = res.status / 100 == 4 ? R_HTTP4 : res.status / 100 == 5 ? R_HTTP5 : R_OTHER;
        int ok = r < 0;
        record_latency(w, t1 - t0);
        w->by_op[op]++;
        if (ok) {
            w->ok++;
            w->bytes += res.body_len;
            w->gzip += (uint64_t)res.gzip;
        } else {
            w->failed++;
            w->reasons[r]++;
        }
        if (nslices) {
            size_t s = (size_t)((t1 - t_start) / ((int64_t)opt.slices_ms * 1000));
            if (s >= nslices)
                s = nslices - 1;
            atomic_fetch_add_explicit(ok ? &slice_ok[s] : &slice_failed[s], 1,
                                      memory_order_relaxed);
        }
        if (r == R_REFUSED)
            sleep_us(10000); /* nobody listening: do not spin on it */
    }
    conn_close(&c);
    free(c.buf);
    return NULL;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint32_t *v, size_t n, double p) {
    if (!n)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1] / 1000.0;
}

static void print_slice(size_t i) {
    printf("slice %.3f %llu %llu\n", (double)i * opt.slices_ms / 1000.0,
           (unsigned long long)atomic_load(&slice_ok[i]),
           (unsigned long long)atomic_load(&slice_failed[i]));
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (parse_args(argc, argv))
        return 2;
    worker *ws = calloc(opt.connections, sizeof *ws);
    if (!ws) {
        fprintf(stderr, "qtn-load: out of memory\n");
        return 1;
    }
    if (opt.slices_ms) {
        nslices = (size_t)(opt.seconds * 1000.0 / opt.slices_ms + 0.999999);
        nslices = nslices ? nslices : 1;
        slice_ok = calloc(nslices, sizeof *slice_ok);
        slice_failed = calloc(nslices, sizeof *slice_failed);
        if (!slice_ok || !slice_failed) {
            fprintf(stderr, "qtn-load: out of memory\n");
            free(ws);
            return 1;
        }
    }
    pthread_barrier_init(&ready, NULL, opt.connections + 1);
    unsigned started = 0;
    for (unsigned i = 0; i < opt.connections; i++) {
        ws[i].idx = i;
        if (pthread_create(&ws[i].t, NULL, run_worker, &ws[i])) {
            fprintf(stderr, "qtn-load: cannot start thread %u of %u\n", i + 1, opt.connections);
            /* the barrier counts on all of them: give up before it */
            _exit(1);
        }
        started++;
    }
    pthread_barrier_wait(&ready); /* prefill done */
    t_start = now_us();
    t_end = t_start + (int64_t)(opt.seconds * 1e6);
    pthread_barrier_wait(&ready);
    size_t printed = 0;
    if (nslices && !opt.json) {
        for (; printed + 1 < nslices; printed++) {
            sleep_us(t_start + (int64_t)(printed + 1) * opt.slices_ms * 1000 + 2000 - now_us());
            print_slice(printed);
        }
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(ws[i].t, NULL);
    int64_t t_done = now_us();
    if (nslices && !opt.json)
        for (; printed < nslices; printed++)
            print_slice(printed);

    worker tot = {0};
    size_t nlat = 0;
    for (unsigned i = 0; i < opt.connections; i++)
        nlat += ws[i].nlat;
    uint32_t *lat = malloc((nlat ? nlat : 1) * sizeof *lat);
    size_t at = 0;
    for (unsigned i = 0; i < opt.connections; i++) {
        worker *w = &ws[i];
        tot.ok += w->ok;
        tot.failed += w->failed;
        tot.gzip += w->gzip;
        tot.bytes += w->bytes;
        tot.prefill_ok += w->prefill_ok;
        tot.prefill_failed += w->prefill_failed;
        for (int r = 0; r < R_N; r++)
            tot.reasons[r] += w->reasons[r];
        for (int o = 0; o < OP_N; o++)
            tot.by_op[o] += w->by_op[o];
        if (lat && w->nlat)
            memcpy(lat + at, w->lat, w->nlat * sizeof *lat);
        at += w->nlat;
        free(w->lat);
    }
    if (lat)
        qsort(lat, nlat, sizeof *lat, cmp_u32);
    else
        nlat = 0;
    uint64_t total = tot.ok + tot.failed;
    double secs = (double)(t_done - t_start) / 1e6;
    double served = total ? 100.0 * (double)tot.ok / (double)total : 0;
    double rps = secs > 0 ? (double)total / secs : 0, ok_rps = secs > 0 ? (double)tot.ok / secs : 0;
    double p50 = pct_ms(lat, nlat, 50), p90 = pct_ms(lat, nlat, 90), p99 = pct_ms(lat, nlat, 99),
           pmax = nlat ? lat[nlat - 1] / 1000.0 : 0;
    if (opt.json) {
        printf("{\"connections\":%u,\"seconds\":%.3f,\"prefill_ok\":%llu,\"prefill_failed\":%llu,"
               "\"requests_total\":%llu,\"requests_ok\":%llu,\"requests_failed\":%llu,"
               "\"failed\":{",
               opt.connections, secs, (unsigned long long)tot.prefill_ok,
               (unsigned long long)tot.prefill_failed, (unsigned long long)total,
               (unsigned long long)tot.ok, (unsigned long long)tot.failed);
        for (int r = 0; r < R_N; r++)
            printf("%s\"%s\":%llu", r ? "," : "", reason_names[r],
                   (unsigned long long)tot.reasons[r]);
        printf("},\"requests\":{");
        for (int o = 0; o < OP_N; o++)
            printf("%s\"%s\":%llu", o ? "," : "", op_names[o], (unsigned long long)tot.by_op[o]);
        printf("},\"served_pct\":%.3f,\"rps\":%.1f,\"ok_rps\":%.1f,\"p50_ms\":%.3f,"
               "\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"gzip_responses\":%llu,"
               "\"bytes_received\":%llu",
               served, rps, ok_rps, p50, p90, p99, pmax, (unsigned long long)tot.gzip,
               (unsigned long long)tot.bytes);
        if (nslices) {
            printf(",\"slice_ms\":%u,\"slices\":[", opt.slices_ms);
            for (size_t i = 0; i < nslices; i++)
                printf("%s{\"t_s\":%.3f,\"ok\":%llu,\"failed\":%llu}", i ? "," : "",
                       (double)i * opt.slices_ms / 1000.0,
                       (unsigned long long)atomic_load(&slice_ok[i]),
                       (unsigned long long)atomic_load(&slice_failed[i]));
            printf("]");
        }
        printf("}\n");
    } else {
        printf("connections %u count\n", opt.connections);
        printf("seconds %.3f s\n", secs);
        printf("prefill_ok %llu count\n", (unsigned long long)tot.prefill_ok);
        printf("prefill_failed %llu count\n", (unsigned long long)tot.prefill_failed);
        for (int o = 0; o < OP_N; o++)
            if (opt.mix[o])
                printf("requests_%s %llu count\n", op_names[o], (unsigned long long)tot.by_op[o]);
        printf("requests_total %llu count\n", (unsigned long long)total);
        printf("requests_ok %llu count\n", (unsigned long long)tot.ok);
        printf("requests_failed %llu count\n", (unsigned long long)tot.failed);
        for (int r = 0; r < R_N; r++)
            printf("failed_%s %llu count\n", reason_names[r], (unsigned long long)tot.reasons[r]);
        printf("served_pct %.3f pct\n", served);
        printf("rps %.1f req/s\n", rps);
        printf("ok_rps %.1f req/s\n", ok_rps);
        printf("p50_ms %.3f ms\n", p50);
        printf("p90_ms %.3f ms\n", p90);
        printf("p99_ms %.3f ms\n", p99);
        printf("max_ms %.3f ms\n", pmax);
        printf("gzip_responses %llu count\n", (unsigned long long)tot.gzip);
        printf("bytes_received %llu bytes\n", (unsigned long long)tot.bytes);
    }
    free(lat);
    free(ws);
    free((void *)slice_ok);
    free((void *)slice_failed);
    pthread_barrier_destroy(&ready);
    return 0;
}
