/* listen.h - the listening socket `quarantine run --listen` holds for the
 * program across its restarts (listen.c).
 *
 * The supervisor binds and listens once; each start of the program gets the
 * socket as fd 3 with LISTEN_FDS=1 and LISTEN_PID, the protocol of
 * systemd's socket activation (sd_listen_fds(3)), so a server that takes a
 * socket that way needs nothing else. While the program is down (a host
 * crash, the backoff, its start), connections wait in the socket's backlog
 * instead of being refused: a host crash costs the requests in flight, not
 * every request made until the program listens again. */
#ifndef QS_LISTEN_H
#define QS_LISTEN_H

#include <stddef.h>

enum { QS_LISTEN_FD = 3, QS_LISTEN_BACKLOG = 4096 };

/* Binds a TCP socket to spec (qm_parse_addr: "ADDR:PORT", "[ADDR6]:PORT",
 * "PORT" on loopback) and listens. Returns the socket (close-on-exec), the
 * address it is bound to in where ("127.0.0.1:8080", the port the kernel
 * picked for port 0), or -1 with err saying what and why. */
int qs_listen(const char *spec, char *where, size_t wlen, char *err, size_t errlen);

/* In the program's process before exec: makes lfd the program's fd 3 and
 * sets LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES. fds[0..n) are the other
 * fds the program inherits; one that is 3 is moved first, and fds[] says
 * where to. Returns 0 or -1 (errno). */
int qs_listen_pass(int lfd, int *fds, int n);

#endif
