/* metrics_server.c - GET /metrics over HTTP (libmicrohttpd), answered from
 * the text the supervisor last published (see metrics.h). The supervisor's
 * loop never waits on a scraper, and a scraper never reads the store or the
 * program's statistics file itself. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define CONNECTIONS_MAX 32
#define CONNECTION_TIMEOUT_S 10

struct qm_server {
    struct MHD_Daemon *d;
    pthread_mutex_t lock;
    char *text; /* what a scrape gets */
    size_t len;
};

static int port_of(const char *s, unsigned *port) {
    char *end;
    if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 5)
        return -1;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v > 65535)
        return -1;
    *port = (unsigned)v;
    return 0;
}

int qm_parse_addr(const char *spec, struct sockaddr_storage *addr, char *err, size_t len) {
    memset(addr, 0, sizeof *addr);
    char host[64] = "127.0.0.1";
    const char *ps = spec;
    const char *colon = strrchr(spec, ':');
    if (spec[0] == '[') { /* [ADDR6]:PORT */
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof host) {
            snprintf(err, len, "'%s' is not [IPV6-ADDRESS]:PORT", spec);
            return -1;
        }
        snprintf(host, sizeof host, "%.*s", (int)(close - spec - 1), spec + 1);
        ps = close + 2;
    } else if (colon) {
        if ((size_t)(colon - spec) >= sizeof host || colon == spec) {
            snprintf(err, len, "'%s' is not ADDRESS:PORT (a numeric address, as 127.0.0.1:9464)",
                     spec);
            return -1;
        }
        snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
        ps = colon + 1;
    }
    unsigned port;
    if (port_of(ps, &port)) {
        snprintf(err, len, "'%s': the port '%s' is not a number from 0 to 65535", spec, ps);
        return -1;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
    } else {
        snprintf(err, len, "'%s': '%s' is not a numeric IPv4 or IPv6 address (names are not "
                 "looked up)", spec, host);
        return -1;
    }
    return 0;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls) {
    (void)version;
    (void)upload;
    (void)con_cls;
    qm_server *m = cls;
    struct MHD_Response *resp;
    unsigned status = MHD_HTTP_OK;
    const char *type = "text/plain; version=0.0.4; charset=utf-8";
    if (*upload_len) {
        *upload_len = 0; /* nothing is read from a body */
        return MHD_YES;
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        static const char no[] = "only GET /metrics\n";
        resp = MHD_create_response_from_buffer(sizeof no - 1, (void *)no, MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        if (resp)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    } else if (strcmp(url, "/metrics")) {
        static const char none[] = "not found: the counters are at /metrics\n";
        resp = MHD_create_response_from_buffer(sizeof none - 1, (void *)none,
                                               MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_NOT_FOUND;
    } else {
        pthread_mutex_lock(&m->lock);
        resp = MHD_create_response_from_buffer(m->len, m->text ? m->text : (void *)"",
                                               MHD_RESPMEM_MUST_COPY);
        pthread_mutex_unlock(&m->lock);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            status == MHD_HTTP_OK ? type : "text/plain; charset=utf-8");
    enum MHD_Result r = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return r;
}

qm_server *qm_serve(const char *spec, char *where, size_t wlen, char *err, size_t len) {
    struct sockaddr_storage addr;
    if (qm_parse_addr(spec, &addr, err, len))
        return NULL;
    qm_server *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, len, "--metrics %s: out of memory", spec);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    m->d = MHD_start_daemon(flags, 0, NULL, NULL, answer, m, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (!m->d) {
        snprintf(err, len, "--metrics %s: cannot listen there: %s", spec,
                 errno ? strerror(errno) : "libmicrohttpd could not start");
        pthread_mutex_destroy(&m->lock);
        free(m);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    qm_addr_string(&addr, info ? (unsigned)info->port : 0u, where, wlen);
    return m;
}

void qm_addr_string(const struct sockaddr_storage *addr, unsigned port, char *out, size_t len) {
    char host[INET6_ADDRSTRLEN] = "?";
    if (addr->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, host, sizeof host);
    else
        inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, host, sizeof host);
    snprintf(out, len, addr->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

void qm_publish(qm_server *m, const char *text, size_t len) {
    if (!m)
        return;
    char *copy = malloc(len + 1);
    if (!copy)
        return; /* scrapes get the text before */
    memcpy(copy, text, len);
    copy[len] = 0;
    pthread_mutex_lock(&m->lock);
    free(m->text);
    m->text = copy;
    m->len = len;
    pthread_mutex_unlock(&m->lock);
}

void qm_stop(qm_server *m) {
    if (!m)
        return;
    MHD_stop_daemon(m->d);
    pthread_mutex_destroy(&m->lock);
    free(m->text);
    free(m);
}
