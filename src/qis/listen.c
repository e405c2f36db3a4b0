/* listen.c - the listening socket held across the program's restarts
 * (listen.h). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen.h"
#include "metrics.h"

int qs_listen(const char *spec, char *where, size_t wlen, char *err, size_t errlen) {
    struct sockaddr_storage addr;
    char why[256];
    if (qm_parse_addr(spec, &addr, why, sizeof why)) {
        snprintf(err, errlen, "--listen %s: %s", spec, why);
        return -1;
    }
    socklen_t alen = addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in);
    int one = 1, fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&addr, alen) < 0 || listen(fd, QS_LISTEN_BACKLOG) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &alen) < 0) {
        snprintf(err, errlen, "--listen %s: cannot listen there: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    unsigned port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                     : ((struct sockaddr_in *)&addr)->sin_port);
    qm_addr_string(&addr, port, where, wlen);
    return fd;
}

int qs_listen_pass(int lfd, int *fds, int n) {
    for (int i = 0; i < n; i++)
        if (fds[i] == QS_LISTEN_FD && lfd != QS_LISTEN_FD) {
            int to = fcntl(fds[i], F_DUPFD, QS_LISTEN_FD + 1); /* keeps no close-on-exec flag */
            if (to < 0)
                return -1;
            fds[i] = to;
        }
    if (lfd != QS_LISTEN_FD && dup2(lfd, QS_LISTEN_FD) < 0)
        return -1;
    if (fcntl(QS_LISTEN_FD, F_SETFD, 0) < 0)
        return -1;
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDNAMES", "quarantine", 1);
    return 0;
}
