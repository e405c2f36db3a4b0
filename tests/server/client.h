/* client.h - what the server's tests share: starting the example server as
 * a process, a small HTTP/1.1 client, and running qtn-load. */
#ifndef QTN_TESTS_SERVER_CLIENT_H
#define QTN_TESTS_SERVER_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

/* ---- the server as a process ----------------------------------------------- */

typedef struct sp {
    pid_t pid;
    int port;
    int out_fd;          /* its stdout */
    char err_path[64];   /* its stderr, in a file */
    int status;          /* wait status once it has ended */
    int ended;
} sp;

/* Starts SERVER_BIN on a free port with env (a NULL-ended list of "K=V",
 * which may be NULL; QTN_PLAN and SERVER_BUG* are cleared first) and extra
 * arguments (NULL-ended, may be NULL), and waits for its "listening on" line.
 * In a sanitizer build a sanitizer's report aborts, so that a crash is a
 * death by signal there too. Returns 0, or -1 (the reason on stderr). */
int sp_start(sp *p, const char *const *env, const char *const *args);

/* Waits up to ms for it to end by itself: 1 ended (p->status), 0 not. */
int sp_wait(sp *p, int ms);

/* SIGTERM, then waits up to 20 s (SIGKILL after). Returns the wait status,
 * or -1 if it had to be killed. */
int sp_stop(sp *p);

/* Whether it is still running. */
int sp_alive(sp *p);

/* What it wrote to stderr so far (malloc'd, NUL-terminated). */
char *sp_stderr(const sp *p);

/* Removes its files; kills it if it still runs. */
void sp_free(sp *p);

/* Kills every server started and not freed, and removes their files: the
 * teardown of tests that may fail half-way (it also runs at exit). */
void sp_cleanup(void);

/* Counts the lines of its stderr that contain `needle`. */
int count_lines(const char *text, const char *needle);

/* Adds up N over the "; N call(s) failed" of lines containing needle. */
long calls_failed(const char *text, const char *needle);

/* ---- HTTP ---------------------------------------------------------------------- */

typedef struct http_res {
    int status;
    char head[8192]; /* status line and headers */
    char *body;      /* NUL-terminated (malloc'd) */
    size_t len;
} http_res;

/* One request on a connection of its own (Connection: close); extra_headers
 * are "Name: value\r\n" lines or NULL. Returns 0, or -1 if no answer came
 * within 10 s. */
int http_do(int port, const char *method, const char *path, const char *extra_headers,
            const char *body, size_t blen, http_res *res);
void http_free(http_res *res);

/* The value of header `name` in res (a copy in buf), or NULL. */
const char *http_header(const http_res *res, const char *name, char *buf, size_t cap);

/* Decompresses a gzip body into a new buffer (*out, *outlen). Returns 0 or -1. */
int gunzip(const void *in, size_t n, char **out, size_t *outlen);

/* ---- qtn-load ---------------------------------------------------------------- */

/* Runs LOAD_BIN with args (NULL-ended); returns what it printed (malloc'd)
 * and its wait status in *status. */
char *load_run(const char *const *args, int *status);

/* The value of the output line `name value unit`, or -1 if none. */
double load_value(const char *out, const char *name);

/* A port nothing listens on (bound, then closed). */
int free_port(void);

#endif
