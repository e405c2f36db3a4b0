/* client.c - the server tests' helpers (client.h). */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* ---- the server as a process ----------------------------------------------- */

/* Every server started and not yet freed, so that a test that fails (cmocka
 * jumps out of it) leaves no server running and no file behind. */
static struct {
    pid_t pid;
    int reaped; /* ended and waited for: its number may be reused */
    char err_path[64];
} started[64];

static void forget(pid_t pid, int reaped_only) {
    for (size_t i = 0; i < sizeof started / sizeof started[0]; i++)
        if (started[i].pid == pid && started[i].pid > 0) {
            if (reaped_only)
                started[i].reaped = 1;
            else
                started[i].pid = 0;
            return;
        }
}

void sp_cleanup(void) {
    for (size_t i = 0; i < sizeof started / sizeof started[0]; i++) {
        if (started[i].pid <= 0)
            continue;
        if (!started[i].reaped) {
            kill(started[i].pid, SIGKILL);
            while (waitpid(started[i].pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        unlink(started[i].err_path);
        started[i].pid = 0;
    }
}

static void remember(const sp *p) {
    static int registered;
    if (!registered++)
        atexit(sp_cleanup);
    for (size_t i = 0; i < sizeof started / sizeof started[0]; i++)
        if (started[i].pid <= 0) {
            started[i].pid = p->pid;
            started[i].reaped = 0;
            snprintf(started[i].err_path, sizeof started[i].err_path, "%s", p->err_path);
            return;
        }
}

static void sanitizer_aborts(const char *var) {
    const char *old = getenv(var);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%sabort_on_error=1", old ? old : "", old && *old ? ":" : "");
    setenv(var, buf, 1);
}

int sp_start(sp *p, const char *const *env, const char *const *args) {
    memset(p, 0, sizeof *p);
    p->pid = -1;
    p->out_fd = -1;
    snprintf(p->err_path, sizeof p->err_path, "/tmp/qtn-server-err-XXXXXX");
    int efd = mkstemp(p->err_path);
    int out[2];
    if (efd < 0 || pipe2(out, O_CLOEXEC)) {
        perror("sp_start");
        return -1;
    }
    const char *argv[32] = {SERVER_BIN, "--port", "0"};
    int n = 3;
    for (int i = 0; args && args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    p->pid = fork();
    if (p->pid < 0) {
        perror("fork");
        return -1;
    }
    if (p->pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(efd, STDERR_FILENO);
        unsetenv("QTN_PLAN");
        unsetenv("SERVER_BUGS");
        unsetenv("SERVER_BUG_WINDOW_US");
        unsetenv("SERVER_BUG_WINDOW_PCT");
        unsetenv("QTN_REPORT_FD");
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        if (UNDER_ASAN) {
            sanitizer_aborts("ASAN_OPTIONS");
            sanitizer_aborts("UBSAN_OPTIONS");
        }
        execv(SERVER_BIN, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(efd);
    p->out_fd = out[0];
    remember(p);
    char line[256];
    size_t have = 0;
    long deadline = now_ms() + 20000;
    while (!memchr(line, '\n', have)) {
        long left = deadline - now_ms();
        struct pollfd pf = {.fd = p->out_fd, .events = POLLIN};
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
            fprintf(stderr, "sp_start: no \"listening on\" line within 20 s\n");
            return -1;
        }
        ssize_t r = read(p->out_fd, line + have, sizeof line - 1 - have);
        if (r <= 0) {
            char *err = sp_stderr(p);
            fprintf(stderr, "sp_start: the server ended before it listened:\n%s\n", err);
            free(err);
            return -1;
        }
        have += (size_t)r;
        line[have] = 0;
    }
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on ", 13) != 0 || !colon || (p->port = atoi(colon + 1)) <= 0) {
        fprintf(stderr, "sp_start: unexpected first line: %s", line);
        return -1;
    }
    return 0;
}

int sp_wait(sp *p, int ms) {
    if (p->ended)
        return 1;
    long deadline = now_ms() + ms;
    for (;;) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);
        if (r == p->pid) {
            p->ended = 1;
            forget(p->pid, 1);
            return 1;
        }
        if (now_ms() >= deadline)
            return 0;
        usleep(10000);
    }
}

int sp_alive(sp *p) { return p->pid > 0 && !sp_wait(p, 0); }

int sp_stop(sp *p) {
    if (p->pid <= 0)
        return -1;
    if (!p->ended)
        kill(p->pid, SIGTERM);
    if (sp_wait(p, 20000))
        return p->status;
    kill(p->pid, SIGKILL);
    sp_wait(p, 5000);
    return -1;
}

char *sp_stderr(const sp *p) {
    FILE *f = fopen(p->err_path, "r");
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (!b)
        abort();
    b[0] = 0;
    if (!f)
        return b;
    size_t r;
    while ((r = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 1024) {
            cap *= 2;
            b = realloc(b, cap);
            if (!b)
                abort();
        }
    }
    b[n] = 0;
    fclose(f);
    return b;
}

void sp_free(sp *p) {
    if (p->pid > 0 && !p->ended) {
        kill(p->pid, SIGKILL);
        sp_wait(p, 5000);
    }
    if (p->out_fd >= 0)
        close(p->out_fd);
    p->out_fd = -1;
    if (p->err_path[0])
        unlink(p->err_path);
    forget(p->pid, 0);
}

int count_lines(const char *text, const char *needle) {
    int n = 0;
    for (const char *l = text; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char buf[2048];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), l);
        n += strstr(buf, needle) != NULL;
        l = e ? e + 1 : NULL;
    }
    return n;
}

long calls_failed(const char *text, const char *needle) {
    long sum = 0;
    for (const char *l = text; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char buf[2048];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), l);
        const char *c = strstr(buf, " call(s) failed");
        if (strstr(buf, needle) && c) {
            const char *d = c;
            while (d > buf && d[-1] >= '0' && d[-1] <= '9')
                d--;
            sum += atol(d);
        }
        l = e ? e + 1 : NULL;
    }
    return sum;
}

/* ---- HTTP ---------------------------------------------------------------------- */

int http_do(int port, const char *method, const char *path, const char *extra_headers,
            const char *body, size_t blen, http_res *res) {
    memset(res, 0, sizeof *res);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    char head[2048];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, extra_headers ? extra_headers : "", body ? blen : 0);
    if (send(fd, head, (size_t)hn, MSG_NOSIGNAL) != hn ||
        (body && blen && send(fd, body, blen, MSG_NOSIGNAL) != (ssize_t)blen)) {
        close(fd);
        return -1;
    }
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (cap - n < 4096) {
            cap *= 2;
            b = realloc(b, cap);
        }
        ssize_t r = recv(fd, b + n, cap - n - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(b);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    b[n] = 0;
    char *end = strstr(b, "\r\n\r\n");
    if (!end || sscanf(b, "HTTP/1.%*d %d", &res->status) != 1) {
        free(b);
        return -1;
    }
    size_t hl = (size_t)(end - b) + 4;
    snprintf(res->head, sizeof res->head, "%.*s", (int)hl, b);
    res->len = n - hl;
    res->body = malloc(res->len + 1);
    memcpy(res->body, b + hl, res->len);
    res->body[res->len] = 0;
    free(b);
    return 0;
}

void http_free(http_res *res) {
    free(res->body);
    res->body = NULL;
}

const char *http_header(const http_res *res, const char *name, char *buf, size_t cap) {
    size_t nl = strlen(name);
    for (const char *l = strstr(res->head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (!strncasecmp(h, name, nl) && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ')
                h++;
            size_t vl = strcspn(h, "\r");
            snprintf(buf, cap, "%.*s", (int)vl, h);
            return buf;
        }
    }
    return NULL;
}

int gunzip(const void *in, size_t n, char **out, size_t *outlen) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return -1;
    size_t cap = 4 * n + 1024;
    char *b = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    int r;
    do {
        if (zs.total_out == cap) {
            cap *= 2;
            b = realloc(b, cap);
        }
        zs.next_out = (Bytef *)b + zs.total_out;
        zs.avail_out = (uInt)(cap - zs.total_out);
        r = inflate(&zs, Z_FINISH);
    } while (r == Z_BUF_ERROR && zs.avail_out == 0);
    *outlen = zs.total_out;
    inflateEnd(&zs);
    if (r != Z_STREAM_END || zs.avail_in) {
        free(b);
        return -1;
    }
    *out = b;
    return 0;
}

/* ---- qtn-load ---------------------------------------------------------------- */

char *load_run(const char *const *args, int *status) {
    int out[2];
    if (pipe2(out, O_CLOEXEC))
        abort();
    const char *argv[64] = {LOAD_BIN};
    int n = 1;
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        execv(LOAD_BIN, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    size_t cap = 65536, len = 0;
    char *b = malloc(cap);
    ssize_t r;
    while ((r = read(out[0], b + len, cap - len - 1)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        len += (size_t)r;
        if (cap - len < 4096) {
            cap *= 2;
            b = realloc(b, cap);
        }
    }
    b[len] = 0;
    close(out[0]);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return b;
}

double load_value(const char *out, const char *name) {
    size_t nl = strlen(name);
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, name, nl) && l[nl] == ' ')
            return strtod(l + nl + 1, NULL);
    return -1;
}

int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        abort();
    close(fd);
    return ntohs(a.sin_port);
}
