/* server.h - the HTTP side of the document server: libmicrohttpd, one
 * thread per connection, the routes, and what each does when a component
 * it calls has faulted. */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_config {
    const char *bind;        /* address to listen on (IPv4 or IPv6) */
    uint16_t port;           /* 0: a free one */
    unsigned threads;        /* connections served at once (a thread each) */
    uint32_t cache_entries;  /* bodies the response cache keeps */
    uint32_t rate, burst;    /* token bucket per client; rate 0: no limit */
    int gzip_level;          /* 1..9 */
    size_t max_body;         /* largest request body */
    const char *access_log;  /* file the access log lines go to; NULL: none */
    const char *data;        /* file the documents are kept in too; NULL: none */
} srv_config;

typedef struct srv srv;

/* Starts serving (MHD's threads start here: call qtn_init() before).
 * Returns NULL with a message in err. */
srv *srv_start(const srv_config *cfg, char *err, size_t errlen);

/* The port it listens on (the one picked when cfg->port was 0). */
uint16_t srv_port(const srv *s);
/* 1 when s serves a socket its supervisor passed (LISTEN_FDS), not one of its own. */
int srv_inherited(const srv *s);

/* Stops serving: waits for the connections' threads, then frees it all. */
void srv_stop(srv *s);

#endif
