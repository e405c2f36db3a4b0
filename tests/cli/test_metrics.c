/* test_metrics.c - quarantine run --metrics: a real supervised run scraped
 * over a raw socket again and again while its component faults; every
 * scrape is read by a strict parser of the Prometheus text exposition
 * format (tested itself on bad input first), counters never go back, and
 * the last scrape's counters match what the store holds at the end. Bad
 * addresses and a port in use are refused, naming them. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
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

#include "metrics.h"
#include "storeq.h"

static char dir[64], db[96], errlog[128];

/* ---- a strict reader of the exposition format ------------------------------ */

#define SERIES_MAX 512

typedef struct series {
    char key[512];    /* name{labels} as written */
    char name[128];
    char family[128];
    char labels[384]; /* the labels without le */
    char le[32];      /* a histogram bucket's bound, or "" */
    double v;
} series;

typedef struct expo {
    series s[SERIES_MAX];
    int n;
    char fam[64][128], type[64][16];
    int help[64], nfam;
} expo;

static int metric_name(const char *p, size_t n) {
    if (!n || !(isalpha((unsigned char)p[0]) || p[0] == '_' || p[0] == ':'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == ':'))
            return 0;
    return 1;
}

static int fam_of(expo *e, const char *name) {
    for (int i = 0; i < e->nfam; i++)
        if (!strcmp(e->fam[i], name))
            return i;
    return -1;
}

static int bad(char *why, size_t len, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(char *why, size_t len, int line, const char *fmt, ...) {
    int k = snprintf(why, len, "line %d: ", line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why + k, len - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

static int ends(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n > k && !strcmp(s + n - k, suf);
}

/* Reads one sample line into e. */
static int sample(expo *e, const char *l, int ln, char *why, size_t wl) {
    if (e->n == SERIES_MAX)
        return bad(why, wl, ln, "too many series");
    series *s = &e->s[e->n];
    memset(s, 0, sizeof *s);
    size_t n = strcspn(l, "{ ");
    if (!metric_name(l, n) || n >= sizeof s->name)
        return bad(why, wl, ln, "bad metric name in '%s'", l);
    memcpy(s->name, l, n);
    const char *p = l + n;
    size_t lat = 0;
    if (*p == '{') {
        p++;
        int first = 1;
        while (*p != '}') {
            if (!first && *p++ != ',')
                return bad(why, wl, ln, "labels not separated by ','");
            first = 0;
            size_t k = strcspn(p, "=");
            if (!k || !(isalpha((unsigned char)p[0]) || p[0] == '_') || !strncmp(p, "__", 2))
                return bad(why, wl, ln, "bad label name");
            for (size_t i = 1; i < k; i++)
                if (!(isalnum((unsigned char)p[i]) || p[i] == '_'))
                    return bad(why, wl, ln, "bad label name");
            char lname[64], val[256];
            if (k >= sizeof lname || p[k] != '=' || p[k + 1] != '"')
                return bad(why, wl, ln, "label without a quoted value");
            memcpy(lname, p, k);
            lname[k] = 0;
            p += k + 2;
            size_t vn = 0;
            while (*p != '"') {
                if (!*p || *p == '\n' || vn + 2 >= sizeof val)
                    return bad(why, wl, ln, "label value not closed");
                if (*p == '\\') {
                    if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                        return bad(why, wl, ln, "bad escape \\%c in a label value", p[1]);
                    val[vn++] = p[1] == 'n' ? '\n' : p[1];
                    p += 2;
                } else {
                    val[vn++] = *p++;
                }
            }
            val[vn] = 0;
            p++;
            if (!strcmp(lname, "le")) {
                if (vn >= sizeof s->le)
                    return bad(why, wl, ln, "le too long");
                memcpy(s->le, val, vn + 1);
            } else {
                int w = snprintf(s->labels + lat, sizeof s->labels - lat, "%s%s=%s",
                                 lat ? "," : "", lname, val);
                lat += (size_t)w;
            }
        }
        p++;
    }
    snprintf(s->key, sizeof s->key, "%.*s", (int)(p - l), l);
    if (*p++ != ' ')
        return bad(why, wl, ln, "no space before the value");
    char *end;
    if (!strcmp(p, "+Inf"))
        s->v = INFINITY;
    else if (!strcmp(p, "-Inf"))
        s->v = -INFINITY;
    else if (!strcmp(p, "NaN"))
        s->v = NAN;
    else {
        errno = 0;
        s->v = strtod(p, &end);
        if (end == p || *end || errno || isinf(s->v) || isnan(s->v))
            return bad(why, wl, ln, "bad value '%s'", p);
    }
    /* its family: itself, or a histogram's _bucket, _sum, _count */
    memcpy(s->family, s->name, sizeof s->family);
    int f = fam_of(e, s->name);
    static const char *const parts[] = {"_bucket", "_sum", "_count"};
    for (int i = 0; f < 0 && i < 3; i++)
        if (ends(s->name, parts[i])) {
            s->family[strlen(s->name) - strlen(parts[i])] = 0;
            f = fam_of(e, s->family);
            if (f >= 0 && strcmp(e->type[f], "histogram"))
                f = -1;
            if (f >= 0 && !!s->le[0] != !strcmp(parts[i], "_bucket"))
                return bad(why, wl, ln, "le on a series that is not a bucket, or a bucket without");
        }
    if (f < 0 || !e->type[f][0])
        return bad(why, wl, ln, "sample of %s before its TYPE", s->name);
    if (!strcmp(e->type[f], "counter") && (!ends(s->name, "_total") || s->v < 0))
        return bad(why, wl, ln, "counter %s: not named _total or negative", s->name);
    for (int i = 0; i < e->n; i++)
        if (!strcmp(e->s[i].key, s->key))
            return bad(why, wl, ln, "series %s twice", s->key);
    e->n++;
    return 0;
}

/* Histogram buckets: ascending bounds, cumulative counts, +Inf last and
 * equal to _count. */
static int histograms(expo *e, char *why, size_t wl) {
    for (int i = 0; i < e->n; i++) {
        series *b = &e->s[i];
        if (!b->le[0] || (i && e->s[i - 1].le[0] && !strcmp(e->s[i - 1].family, b->family) &&
                          !strcmp(e->s[i - 1].labels, b->labels)))
            continue; /* the first bucket of one histogram's series */
        double le = -INFINITY, c = 0;
        int j = i;
        for (; j < e->n && e->s[j].le[0] && !strcmp(e->s[j].labels, b->labels) &&
               !strcmp(e->s[j].family, b->family);
             j++) {
            double bound = !strcmp(e->s[j].le, "+Inf") ? INFINITY : strtod(e->s[j].le, NULL);
            if (bound <= le || e->s[j].v < c)
                return bad(why, wl, 0, "%s: buckets not ascending or not cumulative", b->key);
            le = bound;
            c = e->s[j].v;
        }
        if (le != INFINITY)
            return bad(why, wl, 0, "%s: no +Inf bucket", b->key);
        int found = 0;
        for (int k = 0; k < e->n; k++)
            if (ends(e->s[k].name, "_count") && !strcmp(e->s[k].family, b->family) &&
                !strcmp(e->s[k].labels, b->labels)) {
                found = 1;
                if (e->s[k].v != c)
                    return bad(why, wl, 0, "%s: +Inf bucket %g, _count %g", b->key, c,
                               e->s[k].v);
            }
        if (!found)
            return bad(why, wl, 0, "%s: no _count", b->key);
    }
    return 0;
}

/* Reads a whole exposition: 0, or -1 with why. */
static int parse(const char *text, expo *e, char *why, size_t wl) {
    memset(e, 0, sizeof *e);
    size_t n = strlen(text);
    if (!n || text[n - 1] != '\n')
        return bad(why, wl, 0, "does not end with a newline");
    int ln = 0;
    for (const char *l = text; *l;) {
        const char *nl = strchr(l, '\n');
        char line[1024];
        ln++;
        if ((size_t)(nl - l) >= sizeof line)
            return bad(why, wl, ln, "line too long");
        memcpy(line, l, (size_t)(nl - l));
        line[nl - l] = 0;
        l = nl + 1;
        if (!line[0])
            return bad(why, wl, ln, "empty line");
        if (line[0] != '#') {
            if (sample(e, line, ln, why, wl))
                return -1;
            continue;
        }
        char kind[8], name[128];
        int used = 0;
        if (sscanf(line, "# %7s %127s %n", kind, name, &used) < 2 ||
            (strcmp(kind, "HELP") && strcmp(kind, "TYPE")))
            return bad(why, wl, ln, "a comment that is not HELP or TYPE: '%s'", line);
        if (!metric_name(name, strlen(name)))
            return bad(why, wl, ln, "bad metric name '%s'", name);
        int f = fam_of(e, name);
        if (f < 0) {
            if (e->nfam == 64)
                return bad(why, wl, ln, "too many families");
            f = e->nfam++;
            snprintf(e->fam[f], sizeof e->fam[f], "%s", name);
        }
        for (int i = 0; i < e->n; i++)
            if (!strcmp(e->s[i].family, name))
                return bad(why, wl, ln, "%s %s after its samples", kind, name);
        if (!strcmp(kind, "HELP")) {
            if (e->help[f]++)
                return bad(why, wl, ln, "HELP %s twice", name);
            if (!line[used])
                return bad(why, wl, ln, "HELP %s without text", name);
        } else {
            const char *t = line + used;
            if (e->type[f][0])
                return bad(why, wl, ln, "TYPE %s twice", name);
            if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram") &&
                strcmp(t, "summary") && strcmp(t, "untyped"))
                return bad(why, wl, ln, "TYPE %s '%s'", name, t);
            snprintf(e->type[f], sizeof e->type[f], "%s", t);
        }
    }
    return histograms(e, why, wl);
}

static const series *find(const expo *e, const char *key) {
    for (int i = 0; i < e->n; i++)
        if (!strcmp(e->s[i].key, key))
            return &e->s[i];
    return NULL;
}

static double val(const expo *e, const char *key) {
    const series *s = find(e, key);
    if (!s)
        fail_msg("no series %s", key);
    return s->v;
}

/* The parser refuses what the format does not allow. */
static void test_parser_refuses_bad_expositions(void **state) {
    (void)state;
    static expo e;
    char why[256];
    const char *badones[] = {
        "x_total 1\n",                                               /* no TYPE */
        "# TYPE x_total counter\nx_total 1",                         /* no newline at the end */
        "# TYPE x counter\nx 1\n",                                   /* counter not _total */
        "# TYPE x_total counter\nx_total -1\n",                      /* negative counter */
        "# TYPE x gauge\nx{a=\"b} 1\n",                              /* label not closed */
        "# TYPE x gauge\nx{a=\"\\t\"} 1\n",                          /* bad escape */
        "# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n",              /* twice */
        "# TYPE x gauge\nx one\n",                                   /* not a number */
        "# TYPE x gauge\n# TYPE x gauge\n",                          /* TYPE twice */
        "# TYPE x gauge\nx 1\n# HELP x late\n",                      /* HELP after samples */
        "# TYPE 1x gauge\n",                                         /* bad name */
        "# TYPE x gauge\n\nx 1\n",                                   /* empty line */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n",     /* no +Inf */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n", /* +Inf is not _count */
        "# TYPE x gauge\nx{__a=\"1\"} 1\n",                          /* reserved label */
    };
    for (size_t i = 0; i < sizeof badones / sizeof badones[0]; i++)
        if (parse(badones[i], &e, why, sizeof why) == 0)
            fail_msg("the parser took bad input %zu:\n%s", i, badones[i]);
    const char *good = "# HELP x_total A count.\n# TYPE x_total counter\n"
                       "x_total{component=\"a\\\"b\\\\c\\nd\"} 3\n"
                       "# TYPE h histogram\nh_bucket{c=\"a\",le=\"0.1\"} 1\n"
                       "h_bucket{c=\"a\",le=\"+Inf\"} 2\nh_sum{c=\"a\"} 0.3\nh_count{c=\"a\"} 2\n";
    if (parse(good, &e, why, sizeof why))
        fail_msg("the parser refused good input: %s", why);
    assert_int_equal(e.n, 5);
    assert_string_equal(e.s[0].labels, "component=a\"b\\c\nd");
}

/* Label values come from the store and the program: escaped. */
static void test_label_values_are_escaped(void **state) {
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    assert_non_null(o);
    qm_label_value(o, "ca\"che\\x\ny");
    fclose(o);
    assert_string_equal(buf, "\"ca\\\"che\\\\x\\ny\"");
    free(buf);
}

/* ---- a real run ------------------------------------------------------------ */

static int run_status(const char *fmt, ...) {
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* GET path from 127.0.0.1:port over a raw socket: the status, the body in
 * body (cap bytes), the Content-Type in type. */
static int get(int port, const char *path, char *body, size_t cap, char *type, size_t tcap) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a))
        fail_msg("connect to 127.0.0.1:%d: %s", port, strerror(errno));
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    static char resp[1 << 17];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = 0;
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        fail_msg("not an HTTP answer:\n%s", resp);
    char *hdr_end = strstr(resp, "\r\n\r\n");
    assert_non_null(hdr_end);
    *hdr_end = 0;
    char *ct = strcasestr(resp, "\r\nContent-Type: ");
    snprintf(type, tcap, "%.*s", ct ? (int)strcspn(ct + 16, "\r") : 0, ct ? ct + 16 : "");
    snprintf(body, cap, "%s", hdr_end + 4);
    return status;
}

static pid_t sup; /* the supervisor of the real run, until it is waited for */

static int stop_supervisor(void **state) {
    (void)state;
    if (sup > 0) { /* a test failed with it running */
        kill(sup, SIGKILL);
        waitpid(sup, NULL, 0);
        sup = 0;
    }
    return 0;
}

static void test_a_real_run_scraped(void **state) {
    (void)state;
    sup = fork();
    assert_true(sup >= 0);
    if (sup == 0) {
        int fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        execl(QTN_BIN, QTN_BIN, "run", "--metrics", "127.0.0.1:0", "--stats-interval", "0.2",
              "--store", db, "--", CRASHY, "faults-wait", "4", "150", (char *)NULL);
        _exit(127);
    }
    int port = 0;
    for (double t0 = now(); !port && now() - t0 < 20;) {
        char line[512];
        FILE *f = fopen(errlog, "r");
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "quarantine: run: event=metrics listen=127.0.0.1:%d", &port) == 1)
                break;
        if (f)
            fclose(f);
        if (!port && waitpid(sup, NULL, WNOHANG) == sup) {
            sup = 0;
            fail_msg("quarantine run ended before it served /metrics (see %s)", errlog);
        }
        usleep(20000);
    }
    if (!port)
        fail_msg("no event=metrics in 20 s");
    static expo e, prev;
    static char body[1 << 17];
    char type[128], why[256];
    int scrapes = 0, after = 0;
    for (double t0 = now(); now() - t0 < 60 && after < 4; scrapes++) {
        int st = get(port, "/metrics", body, sizeof body, type, sizeof type);
        assert_int_equal(st, 200);
        assert_string_equal(type, "text/plain; version=0.0.4; charset=utf-8");
        if (parse(body, &e, why, sizeof why))
            fail_msg("scrape %d: %s\n%s", scrapes, why, body);
        for (int i = 0; scrapes && i < e.n; i++) { /* counters never go back */
            const series *p = find(&prev, e.s[i].key);
            int f = fam_of(&e, e.s[i].family);
            int counting = !strcmp(e.type[f], "counter") || !strcmp(e.type[f], "histogram");
            if (counting && p && e.s[i].v < p->v)
                fail_msg("%s went from %g to %g", e.s[i].key, p->v, e.s[i].v);
        }
        const series *faults = find(&e, "quarantine_component_faults_total{component=\"fx\"}");
        if (faults && faults->v == 4)
            after++; /* a few more scrapes: the last snapshots are stored meanwhile */
        prev = e;
        usleep(150000);
    }
    if (after < 4)
        fail_msg("4 faults not seen in 60 s; the last scrape:\n%s", body);
    assert_true(scrapes >= 6);
    assert_int_equal(get(port, "/", body, sizeof body, type, sizeof type), 404);
    /* and as an operator scrapes it: curl, its body through the same parser */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "curl -sS --max-time 5 http://127.0.0.1:%d/metrics", port);
    FILE *c = popen(cmd, "r");
    assert_non_null(c);
    static char cbody[1 << 17];
    size_t cn = fread(cbody, 1, sizeof cbody - 1, c);
    cbody[cn] = 0;
    assert_int_equal(pclose(c), 0);
    static expo ce;
    if (parse(cbody, &ce, why, sizeof why))
        fail_msg("curl's scrape: %s\n%s", why, cbody);
    assert_non_null(find(&ce, "quarantine_component_faults_total{component=\"fx\"}"));
    kill(sup, SIGTERM);
    int st;
    alarm(30); /* a supervisor that does not stop fails the test by SIGALRM */
    assert_int_equal(waitpid(sup, &st, 0), sup);
    alarm(0);
    sup = 0;

    /* the counters of the last scrape are the store's */
#define LAST_SNAPSHOTS(col)                                                                 \
    "SELECT SUM(" col ") FROM stats s WHERE component = 'fx' AND time_ns = (SELECT"          \
    " MAX(time_ns) FROM stats l WHERE l.proc = s.proc AND l.pid = s.pid AND"                  \
    " l.component = s.component)"
    long long calls = tsq_file(db, LAST_SNAPSHOTS("calls"));
    long long crossings = tsq_file(db, LAST_SNAPSHOTS("crossings"));
    assert_true(calls >= 4);
    assert_int_equal(val(&e, "quarantine_component_calls_total{component=\"fx\"}"), calls);
    assert_int_equal(val(&e, "quarantine_component_crossings_total{component=\"fx\"}"),
                     crossings);
    assert_int_equal(val(&e, "quarantine_component_calls_failed_total{component=\"fx\"}"),
                     tsq_file(db, "SELECT SUM(calls_failed) FROM reports WHERE"
                                  " component = 'fx'"));
    assert_int_equal(val(&e, "quarantine_domain_recovery_seconds_count{component=\"fx\"}"),
                     tsq_file(db, "SELECT COUNT(*) FROM reports WHERE component = 'fx' AND"
                                  " recovery_ns > 0"));
    double sum = val(&e, "quarantine_domain_recovery_seconds_sum{component=\"fx\"}");
    double want = (double)tsq_file(db, "SELECT SUM(recovery_ns) FROM reports WHERE"
                                       " component = 'fx'") / 1e9;
    if (fabs(sum - want) > 1e-6 * want + 1e-9)
        fail_msg("recovery seconds: %g, the store says %g", sum, want);
    assert_int_equal(val(&e, "quarantine_component_domain{component=\"fx\"}"), 1);
    assert_int_equal(val(&e, "quarantine_host_crashes_total"),
                     tsq_file(db, "SELECT COUNT(*) FROM reports WHERE kind = 'host-crash'"));
    assert_int_equal(val(&e, "quarantine_plan_changes_total"),
                     tsq_file(db, "SELECT COUNT(*) FROM plan_changes"));
    assert_int_equal(val(&e, "quarantine_program_starts_total"),
                     tsq_file(db, "SELECT COUNT(*) FROM starts"));
    assert_int_equal(val(&e, "quarantine_program_up"), 1);
}

/* A bad address or a port in use: exit status 2 and a message naming it. */
static void test_bad_addresses_refused(void **state) {
    (void)state;
    const char *badones[][2] = {
        {"999.1.1.1:80", "'999.1.1.1' is not a numeric IPv4 or IPv6 address"},
        {"localhost:80", "'localhost' is not a numeric IPv4 or IPv6 address"},
        {"127.0.0.1:65536", "the port '65536' is not a number from 0 to 65535"},
        {"127.0.0.1:", "the port '' is not a number from 0 to 65535"},
        {"[::1:80", "is not [IPV6-ADDRESS]:PORT"},
        {":80", "is not ADDRESS:PORT"},
    };
    char out[160], cmd[512];
    snprintf(out, sizeof out, "%s/out", dir);
    for (size_t i = 0; i < sizeof badones / sizeof badones[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s run --metrics '%s' --store %s -- %s exit 0 2>%s", QTN_BIN,
                 badones[i][0], db, CRASHY, out);
        assert_int_equal(run_status("%s", cmd), 2);
        char text[512] = "";
        FILE *f = fopen(out, "r");
        size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
        text[n] = 0;
        if (f)
            fclose(f);
        if (!strstr(text, "quarantine: run: --metrics: ") || !strstr(text, badones[i][1]))
            fail_msg("--metrics %s said:\n%s", badones[i][0], text);
    }
    /* a port in use */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    snprintf(cmd, sizeof cmd, "%s run --metrics %d --store %s -- %s exit 0 2>%s", QTN_BIN,
             ntohs(a.sin_port), db, CRASHY, out);
    assert_int_equal(run_status("%s", cmd), 2);
    close(fd);
    char text[512] = "", want[128];
    FILE *f = fopen(out, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f)
        fclose(f);
    snprintf(want, sizeof want, "quarantine: run: --metrics %d: cannot listen there: ",
             ntohs(a.sin_port));
    if (!strstr(text, want))
        fail_msg("a port in use said:\n%s", text);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/qtn-metrics-%d", (int)getpid());
    snprintf(db, sizeof db, "%s/store.db", dir);
    snprintf(errlog, sizeof errlog, "%s/run.err", dir);
    if (run_status("rm -rf %s && mkdir -p %s", dir, dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_refuses_bad_expositions),
        cmocka_unit_test(test_label_values_are_escaped),
        cmocka_unit_test_teardown(test_a_real_run_scraped, stop_supervisor),
        cmocka_unit_test(test_bad_addresses_refused),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    if (!r && run_status("rm -rf %s", dir))
        r = 1;
    return r;
}
