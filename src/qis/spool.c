/* spool.c - importing what a supervised program wrote into the store; see
 * spool.h for the protocol. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "spool.h"

#define RECORD_MAX (4u << 20) /* no record is longer: a longer line is damage */
#define ROUND_MAX (64u << 20) /* bytes of new records one import round takes at most */
#define TRIES_MAX 64          /* places tried per damaged line for a record glued to it */
#define FRAMES_MAX 64

/* What the supervisor learned from a process's hello record. A pid can say
 * hello twice (a program that execs itself keeps its pid): each hello is
 * the context of the records of its pid after it. */
typedef struct hello {
    int pid;
    long long at;       /* where the hello is in the file */
    json_t *rec;        /* the record: components (with code ids), modules, exe */
    char proc[40];      /* the process's identity, as its hello says ("" none) */
    char seen[40];      /* else: the identity the first record after it carries */
    long long seen_at;  /* where that record is (-1: none yet) */
} hello;

/* A host-crash record, for the supervisor's record of the same death. */
typedef struct crashed {
    int pid, sig;
    long long at;
} crashed;

struct qs_spool {
    char *path, *name;
    int fd;
    int locked;          /* this process holds the file's lock */
    long long learned;   /* bytes read for context (header, hellos) */
    long long logged;    /* bytes whose records were logged */
    long long stored;    /* bytes known to be in the store (-1: not known) */
    char installation[128], run[96];
    int64_t start_ns, crash_ns; /* from the header: when the supervisor started the
                                   program, and when the one before it crashed */
    hello *hellos;
    int nhellos;
    crashed *crashes;
    int ncrashes;
    qs_event_fn *on_event;
    void *ev_ctx;
};

static int fail(char *err, size_t len, const char *path, const char *why) {
    if (err && len)
        snprintf(err, len, "spool %s: %s", path, why);
    return -1;
}

static qs_spool *make(const char *dir, const char *name, const char *installation) {
    qs_spool *sp = calloc(1, sizeof *sp);
    if (!sp)
        return NULL;
    size_t n = strlen(dir) + strlen(name) + 2;
    sp->path = malloc(n);
    sp->name = strdup(name);
    if (!sp->path || !sp->name) {
        qs_spool_close(sp);
        return NULL;
    }
    snprintf(sp->path, n, "%s/%s", dir, name);
    snprintf(sp->installation, sizeof sp->installation, "%s", installation);
    sp->stored = -1;
    /* the run is in the name: <run>-<n>.spool */
    snprintf(sp->run, sizeof sp->run, "%s", name);
    char *dash = strrchr(sp->run, '-');
    if (dash)
        *dash = 0;
    sp->fd = -1;
    return sp;
}

int qs_record_write(int fd, const char *json) {
    size_t n = strlen(json);
    char *line = malloc(n + 11);
    if (!line)
        return -1;
    uLong crc = crc32(0L, (const Bytef *)json, (uInt)n);
    snprintf(line, n + 11, "%08lx %s\n", crc & 0xffffffffUL, json);
    ssize_t w;
    do
        w = write(fd, line, n + 10);
    while (w < 0 && errno == EINTR);
    free(line);
    return w == (ssize_t)(n + 10) ? 0 : -1;
}

qs_spool *qs_spool_create(const char *dir, const char *installation, const char *run, int n,
                          int64_t start_ns, int64_t after_crash_ns, int *wfd, char *err,
                          size_t len) {
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        fail(err, len, dir, strerror(errno));
        return NULL;
    }
    char name[160];
    snprintf(name, sizeof name, "%s-%d.spool", run, n);
    qs_spool *sp = make(dir, name, installation);
    if (!sp) {
        fail(err, len, dir, "out of memory");
        return NULL;
    }
    int fd = open(sp->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        fail(err, len, sp->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        qs_spool_close(sp);
        return NULL;
    }
    json_t *h = json_pack("{s:s, s:s, s:s, s:I, s:I}", "type", "spool", "installation",
                          installation, "run", run, "start_ns", (json_int_t)start_ns,
                          "after_crash_ns", (json_int_t)after_crash_ns);
    char *js = h ? json_dumps(h, JSON_COMPACT) : NULL;
    int bad = !js || qs_record_write(fd, js) < 0 || fdatasync(fd) < 0;
    free(js);
    json_decref(h);
    sp->fd = open(sp->path, O_RDONLY | O_CLOEXEC);
    if (bad || sp->fd < 0) {
        fail(err, len, sp->path, strerror(errno ? errno : EIO));
        close(fd);
        unlink(sp->path);
        qs_spool_close(sp);
        return NULL;
    }
    *wfd = fd;
    return sp;
}

qs_spool *qs_spool_open(const char *dir, const char *name, const char *installation, char *err,
                        size_t len) {
    qs_spool *sp = make(dir, name, installation);
    if (!sp) {
        fail(err, len, dir, "out of memory");
        return NULL;
    }
    sp->fd = open(sp->path, O_RDONLY | O_CLOEXEC);
    if (sp->fd < 0) {
        fail(err, len, sp->path, strerror(errno));
        qs_spool_close(sp);
        return NULL;
    }
    return sp;
}

const char *qs_spool_name(const qs_spool *sp) {
    return sp->name;
}

void qs_spool_on_event(qs_spool *sp, qs_event_fn *fn, void *ctx) {
    sp->on_event = fn;
    sp->ev_ctx = ctx;
}

void qs_spool_close(qs_spool *sp) {
    if (!sp)
        return;
    if (sp->fd >= 0)
        close(sp->fd); /* and with it this process's lock, if it held one */
    for (int i = 0; i < sp->nhellos; i++)
        json_decref(sp->hellos[i].rec);
    free(sp->hellos);
    free(sp->crashes);
    free(sp->path);
    free(sp->name);
    free(sp);
}

int qs_spool_writer_gone(qs_spool *sp) {
    if (sp->locked)
        return 1;
    sp->locked = flock(sp->fd, LOCK_EX | LOCK_NB) == 0;
    return sp->locked;
}

/* ---- one record ---------------------------------------------------------------- */

typedef struct ictx {
    qs_spool *sp;
    qs_store *st;
    qs_log_fn *log;
    void *lctx;
    char *err;
    size_t errlen;
    int store_it, log_it; /* for the record at hand */
    long long at;         /* where the record at hand is */
    long long done, upto; /* bytes in the store before this round, and after it */
    int count, bad;       /* records stored; a record could not be stored */
    char standin[256];    /* a process identity made up for records that carry none */
} ictx;

static void logf_(ictx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(ictx *c, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (c->log && c->log_it)
        c->log(c->lctx, line);
}

static const char *str(json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long num(json_t *o, const char *key) {
    return json_integer_value(json_object_get(o, key));
}

/* The program process a record is of (a fault's "pid" is its domain's). */
static int pid_of(json_t *rec) {
    return (int)num(rec, !strcmp(str(rec, "type"), "fault") ? "host_pid" : "pid");
}

/* The hello of pid at or before offset `at` (the latest, if it said hello
 * twice; a hello is its own), or NULL. Offsets, not the order records were
 * learned in: records already learned are read again when the store
 * failed. */
static hello *hello_at(qs_spool *sp, int pid, long long at) {
    for (int i = sp->nhellos - 1; i >= 0; i--)
        if (sp->hellos[i].pid == pid && sp->hellos[i].at <= at)
            return &sp->hellos[i];
    return NULL;
}

static json_t *components_of(qs_spool *sp, int pid, long long at) {
    hello *h = hello_at(sp, pid, at);
    return h ? json_object_get(h->rec, "components") : NULL;
}

/* The stand-in identity of the process whose hello is at `at` and says no
 * identity (-1: records of a pid without a hello, a program without the
 * runtime): unique per spool file and hello, so that a pid that comes
 * again is another process. */
static const char *standin(ictx *c, long long at) {
    if (at < 0)
        snprintf(c->standin, sizeof c->standin, "@%s", c->sp->name);
    else
        snprintf(c->standin, sizeof c->standin, "@%s:%lld", c->sp->name, at);
    return c->standin;
}

/* The identity of the process of record rec (of pid, at c->at): the one
 * it carries (the runtime mints one at qtn_init: pids come again); else
 * its hello's; else the one the first record after its hello carried;
 * else a stand-in. Valid until the next call. */
static const char *proc_of(ictx *c, json_t *rec, int pid) {
    const char *own = str(rec, "proc");
    if (*own)
        return own;
    hello *h = hello_at(c->sp, pid, c->at);
    if (h && h->proc[0])
        return h->proc;
    if (h && h->seen_at >= 0 && h->seen_at < c->at)
        return h->seen;
    return standin(c, h ? h->at : -1);
}

/* Context, each record once, in the file's order: the file's header, each
 * process's hello, the identity a process's records carry when its hello
 * carries none, the host crashes. */
static void learn(qs_spool *sp, json_t *rec, long long at) {
    const char *type = str(rec, "type");
    int pid = pid_of(rec);
    if (!strcmp(type, "spool")) {
        snprintf(sp->installation, sizeof sp->installation, "%s", str(rec, "installation"));
        snprintf(sp->run, sizeof sp->run, "%s", str(rec, "run"));
        sp->start_ns = num(rec, "start_ns");
        sp->crash_ns = num(rec, "after_crash_ns");
    } else if (!strcmp(type, "hello")) {
        hello *h = realloc(sp->hellos, (size_t)(sp->nhellos + 1) * sizeof *h);
        if (!h)
            return;
        sp->hellos = h;
        h += sp->nhellos++;
        *h = (hello){.pid = pid, .at = at, .rec = json_incref(rec), .seen_at = -1};
        snprintf(h->proc, sizeof h->proc, "%s", str(rec, "proc"));
        return;
    } else if (!strcmp(type, "host-crash")) {
        crashed *k = realloc(sp->crashes, (size_t)(sp->ncrashes + 1) * sizeof *k);
        if (k) {
            sp->crashes = k;
            k[sp->ncrashes++] = (crashed){pid, (int)num(rec, "signal"), at};
        }
    }
    hello *h = *str(rec, "proc") ? hello_at(sp, pid, at) : NULL;
    if (h && !h->proc[0] && h->seen_at < 0) {
        snprintf(h->seen, sizeof h->seen, "%s", str(rec, "proc"));
        h->seen_at = at;
    }
}

/* The identity of component name's code in pid's build ("" unknown). */
static const char *code_of(qs_spool *sp, int pid, long long at, const char *name) {
    json_t *jc = components_of(sp, pid, at);
    for (size_t i = 0; i < json_array_size(jc); i++) {
        json_t *o = json_array_get(jc, i);
        if (!strcmp(str(o, "name"), name))
            return *str(o, "code_id") ? str(o, "code_id") : "";
    }
    return "";
}

/* A component's code identity as the store keys evidence by it: the one
 * its build gave, else one that changes with every build. */
static void code_key(ictx *ic, int pid, const char *name, const char *build_id, char *out,
                     size_t len) {
    const char *c = code_of(ic->sp, pid, ic->at, name);
    if (*c)
        snprintf(out, len, "%s", c);
    else
        snprintf(out, len, "@%s:%s", build_id, name);
}

/* The blame of a host crash: the components on the stack, innermost first;
 * each one further out counts half as much as the one before it. */
static int blame_of(const qs_frame *fr, int n, struct qs_blame *out, int max) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!fr[i].component[0])
            continue;
        int seen = 0;
        for (int j = 0; j < k; j++)
            seen |= !strcmp(out[j].component, fr[i].component);
        if (!seen && k < max) {
            out[k].component = fr[i].component;
            out[k].share = k ? out[k - 1].share / 2 : 1;
            out[k].code_id = NULL;
            out[k].ambiguous = 0;
            k++;
        }
    }
    double sum = 0;
    for (int j = 0; j < k; j++)
        sum += out[j].share;
    for (int j = 0; j < k; j++)
        out[j].share /= sum;
    return k;
}

/* The components a process's hello named, for the symboliser: their entry
 * names point into *names (one array for all). Returns how many, or -1. */
static int comps_of(json_t *jc, qs_comp **comps, const char ***names) {
    int nc = (int)json_array_size(jc);
    size_t total = 0;
    for (int i = 0; i < nc; i++)
        total += json_array_size(json_object_get(json_array_get(jc, (size_t)i), "entries"));
    *comps = calloc((size_t)nc + 1, sizeof **comps);
    *names = calloc(total + 1, sizeof **names);
    if (!*comps || !*names)
        return -1;
    size_t at = 0;
    for (int i = 0; i < nc; i++) {
        json_t *o = json_array_get(jc, (size_t)i), *e = json_object_get(o, "entries");
        (*comps)[i].name = str(o, "name");
        (*comps)[i].entries = *names + at;
        (*comps)[i].nentries = (int)json_array_size(e);
        for (size_t j = 0; j < json_array_size(e); j++)
            (*names)[at++] = json_string_value(json_array_get(e, j)) ?: "";
    }
    return nc;
}

static void event(ictx *c, const qs_event *ev) {
    if (c->sp->on_event && c->log_it)
        c->sp->on_event(c->sp->ev_ctx, ev);
}

/* The modules of a record ("modules": [{"path","base","build_id"}]), for the
 * symboliser; *n set. The strings point into rec. */
static qs_module *modules_of(json_t *jm, int *n) {
    *n = (int)json_array_size(jm);
    qs_module *mods = calloc((size_t)*n + 1, sizeof *mods);
    for (int i = 0; mods && i < *n; i++) {
        json_t *m = json_array_get(jm, (size_t)i);
        mods[i].path = str(m, "path");
        mods[i].base = strtoull(str(m, "base"), NULL, 16);
        mods[i].build_id = str(m, "build_id");
    }
    return mods;
}

/* Names frames and says whose code each is, with the modules and the
 * components of pid's hello. Returns 0, or -1 out of memory. */
static int attribute(ictx *c, int pid, const char *exe, json_t *jm, const uint64_t *addrs, int nf,
                     qs_frame *fr) {
    qs_spool *sp = c->sp;
    int nm;
    qs_module *mods = modules_of(jm, &nm);
    qs_comp *comps = NULL;
    const char **names = NULL;
    int nc = comps_of(components_of(sp, pid, c->at), &comps, &names), r = -1;
    if (mods && nc >= 0) {
        char note[512] = "";
        qs_symbolize(exe, mods, nm, comps, nc, addrs, nf, fr, note, sizeof note);
        if (note[0])
            logf_(c, "symbolize pid=%d note=\"%s\"", pid, note);
        r = 0;
    } else {
        fail(c->err, c->errlen, sp->path, "out of memory");
    }
    free(mods);
    free(comps);
    free(names);
    return r;
}

static int put_host_crash(ictx *c, json_t *rec) {
    qs_spool *sp = c->sp;
    int pid = (int)num(rec, "pid"), sig = (int)num(rec, "signal");
    json_t *jf = json_object_get(rec, "frames");
    int nf = (int)json_array_size(jf);
    if (nf > FRAMES_MAX)
        nf = FRAMES_MAX;
    uint64_t addrs[FRAMES_MAX];
    qs_frame fr[FRAMES_MAX];
    for (int i = 0; i < nf; i++)
        addrs[i] = strtoull(json_string_value(json_array_get(jf, (size_t)i)) ?: "0", NULL, 16);
    if (attribute(c, pid, str(rec, "exe"), json_object_get(rec, "modules"), addrs, nf, fr))
        return -1;
    struct qs_blame bl[FRAMES_MAX];
    char codes[FRAMES_MAX][80];
    int nb = blame_of(fr, nf, bl, FRAMES_MAX);
    for (int i = 0; i < nb; i++) {
        code_key(c, pid, bl[i].component, str(rec, "build_id"), codes[i], sizeof codes[i]);
        bl[i].code_id = codes[i];
        bl[i].ambiguous = 0;
    }
    char reason[400];
    snprintf(reason, sizeof reason, "the program died of SIG%s at %s in %s",
             sigabbrev_np(sig) ?: "?", str(rec, "fault_addr"), nf ? fr[0].symbol : "?");
    char *js = json_dumps(rec, JSON_COMPACT);
    qs_report q = {sp->installation, sp->run, pid, 0, num(rec, "time_ns"), "host-crash",
                   nb ? bl[0].component : "", "", sig, 0, 0, 0, reason, js,
                   str(rec, "build_id"), str(rec, "plan"), nf, fr, nb, bl, proc_of(c, rec, pid)};
    int r = c->store_it ? qs_put(c->st, &q, c->err, c->errlen) : 0;
    free(js);
    if (r >= 0) {
        logf_(c, "host-crash pid=%d signal=SIG%s component=%s frames=%d top=\"%s\"", pid,
              sigabbrev_np(sig) ?: "?", nb ? bl[0].component : "-", nf, nf ? fr[0].symbol : "?");
        qs_event ev = {.type = QS_EV_HOST_CRASH, .pid = pid, .time_ns = num(rec, "time_ns"),
                       .component = nb ? bl[0].component : ""};
        event(c, &ev);
    }
    return r < 0 ? -1 : 0;
}

/* The components plan text puts in domain d (names point into `names`,
 * a copy of the text). Returns how many. */
static int members(const char *plan, int d, char *names, size_t len, const char **out, int max) {
    snprintf(names, len, "%s", plan);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(names, " \t\n,;", &save); tok;
         tok = strtok_r(NULL, " \t\n,;", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = 0;
        char *end;
        long v = !strcmp(eq + 1, "host") ? 0 : strtol(eq + 1, &end, 10);
        if (v == d && d > 0 && n < max)
            out[n++] = tok;
    }
    return n;
}

/* The blame of a domain fault. A domain of one component: that one. A
 * domain several share: the frames say whose code faulted (as for a host
 * crash); without frames that say (a deadline, a kill from outside), the
 * blame is spread evenly over them, marked ambiguous: the policy splits
 * such a domain to find the culprit. A contract fault is the answering
 * component's. Returns how many components share the blame. */
static int fault_blame(ictx *c, json_t *rec, int pid, const qs_frame *fr, int nf,
                       struct qs_blame *bl, char (*codes)[80], char *mbuf, size_t mlen) {
    const char *comp = str(rec, "component"), *kind = str(rec, "kind");
    const char *m[FRAMES_MAX];
    int nm = members(str(rec, "plan"), (int)num(rec, "domain"), mbuf, mlen, m, FRAMES_MAX), nb = 0;
    if (nm > 1 && strcmp(kind, "contract")) {
        qs_frame in[FRAMES_MAX]; /* the frames in code of the domain's components */
        int k = 0;
        for (int i = 0; i < nf; i++)
            for (int j = 0; j < nm; j++)
                if (fr[i].component[0] && !strcmp(fr[i].component, m[j]))
                    in[k++] = fr[i];
        nb = blame_of(in, k, bl, FRAMES_MAX);
        for (int i = 0; i < nb; i++) /* blame_of points into `in`: to the names in the plan */
            for (int j = 0; j < nm; j++)
                if (!strcmp(bl[i].component, m[j]))
                    bl[i].component = m[j];
        if (!nb)
            for (int j = 0; j < nm; j++)
                bl[nb++] = (struct qs_blame){m[j], 1.0 / nm, NULL, 1};
    } else if (*comp) {
        bl[nb++] = (struct qs_blame){comp, 1, NULL, 0};
    }
    for (int i = 0; i < nb; i++) {
        code_key(c, pid, bl[i].component, str(rec, "build_id"), codes[i], sizeof codes[i]);
        bl[i].code_id = codes[i];
    }
    return nb;
}

static int put_fault(ictx *c, json_t *rec) {
    qs_spool *sp = c->sp;
    json_t *bt = json_object_get(rec, "backtrace");
    int nf = (int)json_array_size(bt);
    if (nf > FRAMES_MAX)
        nf = FRAMES_MAX;
    qs_frame fr[FRAMES_MAX];
    uint64_t addrs[FRAMES_MAX];
    for (int i = 0; i < nf; i++) { /* "0xADDR symbol (file:line)" */
        const char *s = json_string_value(json_array_get(bt, (size_t)i)) ?: "";
        char *rest;
        addrs[i] = fr[i].addr = strtoull(s, &rest, 16);
        while (*rest == ' ')
            rest++;
        snprintf(fr[i].symbol, sizeof fr[i].symbol, "%s", *rest ? rest : "?");
        fr[i].component[0] = 0;
    }
    int pid = (int)num(rec, "host_pid");
    char mbuf[4096];
    const char *m[2];
    hello *h = hello_at(sp, pid, c->at);
    /* whose code each frame is: needed when the domain holds several */
    if (nf && h && members(str(rec, "plan"), (int)num(rec, "domain"), mbuf, sizeof mbuf, m, 2) > 1) {
        qs_frame named[FRAMES_MAX];
        if (attribute(c, pid, str(h->rec, "exe"), json_object_get(h->rec, "modules"), addrs, nf,
                      named))
            return -1;
        for (int i = 0; i < nf; i++)
            memcpy(fr[i].component, named[i].component, sizeof fr[i].component);
    }
    struct qs_blame bl[FRAMES_MAX];
    char codes[FRAMES_MAX][80];
    int nb = fault_blame(c, rec, pid, fr, nf, bl, codes, mbuf, sizeof mbuf);
    const char *comp = str(rec, "component");
    char *js = json_dumps(rec, JSON_COMPACT);
    qs_report q = {sp->installation, sp->run, pid, num(rec, "report"), num(rec, "time_ns"),
                   str(rec, "kind"), comp, str(rec, "entry"), (int)num(rec, "signal"),
                   (int)num(rec, "domain"), num(rec, "recovery_ns"), (int)num(rec, "calls_failed"),
                   str(rec, "reason"), js, str(rec, "build_id"), str(rec, "plan"), nf, fr,
                   nb, bl, proc_of(c, rec, pid)};
    int r = c->store_it ? qs_put(c->st, &q, c->err, c->errlen) : 0;
    free(js);
    if (r >= 0) {
        logf_(c, "fault pid=%d domain=%lld domain_pid=%lld kind=%s component=%s entry=%s "
                 "calls_failed=%lld recovery_ms=%.3f%s",
              pid, num(rec, "domain"), num(rec, "pid"), str(rec, "kind"), *comp ? comp : "-",
              *str(rec, "entry") ? str(rec, "entry") : "-", num(rec, "calls_failed"),
              (double)num(rec, "recovery_ns") / 1e6,
              nb > 1 && bl[0].ambiguous ? " blame=ambiguous" : "");
        qs_event ev = {.type = QS_EV_FAULT, .pid = pid, .time_ns = num(rec, "time_ns"),
                       .component = comp};
        event(c, &ev);
    }
    return r < 0 ? -1 : 0;
}

static int put_stats(ictx *c, json_t *rec) {
    int pid = (int)num(rec, "pid");
    const char *proc = proc_of(c, rec, pid);
    json_t *jc = json_object_get(rec, "components");
    for (size_t i = 0; c->store_it && i < json_array_size(jc); i++) {
        json_t *o = json_array_get(jc, i);
        char code[80];
        code_key(c, pid, str(o, "name"), str(rec, "build_id"), code, sizeof code);
        json_t *parked = json_object_get(o, "parked"); /* 1 (or true): its domain is parked */
        qs_stat t = {c->sp->installation, c->sp->run, pid, num(rec, "time_ns"),
                     str(rec, "build_id"), str(rec, "plan"), str(o, "name"),
                     (int)num(o, "domain"), num(o, "calls"), num(o, "crossings"),
                     num(o, "cross_ns"), num(o, "faults"), code, proc, num(o, "parked_calls"),
                     json_is_true(parked) || json_integer_value(parked) != 0};
        if (qs_put_stat(c->st, &t, c->err, c->errlen) < 0)
            return -1;
    }
    json_t *je = json_object_get(rec, "edges");
    for (size_t i = 0; c->store_it && i < json_array_size(je); i++) {
        json_t *o = json_array_get(je, i);
        qs_edge_stat t = {c->sp->installation, c->sp->run, pid, num(rec, "time_ns"),
                          str(o, "caller"), str(o, "callee"), str(o, "entry"), num(o, "calls"),
                          num(o, "crossings"), num(o, "cross_ns"), num(o, "faults"),
                          num(o, "bytes"), num(o, "overhead_ns"), proc};
        if (qs_put_edge_stat(c->st, &t, c->err, c->errlen) < 0)
            return -1;
    }
    if (c->store_it && json_object_get(rec, "cpu_ns")) {
        qs_proc_stat t = {c->sp->installation, c->sp->run, proc, pid, num(rec, "time_ns"),
                          num(rec, "start_ns"), num(rec, "work"), num(rec, "cpu_ns"),
                          num(rec, "cpu_at_ns"), (int)num(rec, "ncpu")};
        if (qs_put_proc_stat(c->st, &t, c->err, c->errlen) < 0)
            return -1;
    }
    qs_event ev = {.type = QS_EV_STATS, .pid = pid, .time_ns = num(rec, "time_ns")};
    event(c, &ev);
    return 0;
}

/* A process is ready: its start (how long it took, and how long the
 * program was down after the crash before), its build's components. */
static int put_hello(ictx *c, json_t *rec) {
    qs_spool *sp = c->sp;
    int pid = (int)num(rec, "pid");
    int64_t t = num(rec, "time_ns");
    const char *build = str(rec, "build_id");
    json_t *jc = json_object_get(rec, "components");
    for (size_t i = 0; c->store_it && i < json_array_size(jc); i++) {
        json_t *o = json_array_get(jc, i);
        char code[80], *entries = json_dumps(json_object_get(o, "entries"), JSON_COMPACT);
        code_key(c, pid, str(o, "name"), build, code, sizeof code);
        qs_component q = {build, str(o, "name"), code, *str(o, "code_id") != 0,
                          entries ? entries : "[]"};
        int r = qs_put_component(c->st, &q, c->err, c->errlen);
        free(entries);
        if (r < 0)
            return -1;
    }
    /* a hello that carries no identity: its start is stored under a stand-in,
     * renamed when a record of the process says (see rename) */
    hello *h = hello_at(sp, pid, c->at);
    const char *proc = h && h->proc[0] ? h->proc : standin(c, c->at);
    qs_start st = {sp->installation, sp->run, proc, pid, build, str(rec, "exe"),
                   sp->start_ns, sp->start_ns && t > sp->start_ns ? t - sp->start_ns : 0,
                   sp->crash_ns && t > sp->crash_ns ? t - sp->crash_ns : 0};
    if (c->store_it && qs_put_start(c->st, &st, c->err, c->errlen) < 0)
        return -1;
    qs_event ev = {.type = QS_EV_HELLO, .pid = pid, .time_ns = t, .build_id = build,
                   .proc = h ? h->proc : ""};
    event(c, &ev);
    return 0;
}

/* A plan change the supervisor decided (its own record). */
static int put_plan(ictx *c, json_t *rec) {
    if (!c->store_it)
        return 0;
    char *numbers = json_dumps(json_object_get(rec, "numbers"), JSON_COMPACT);
    qs_plan_change p = {c->sp->installation, c->sp->run, num(rec, "seq"), num(rec, "time_ns"),
                        (int)num(rec, "pid"), str(rec, "mode"), str(rec, "from"),
                        str(rec, "to"), str(rec, "reason"), numbers ? numbers : "{}"};
    int r = qs_put_plan_change(c->st, &p, c->err, c->errlen);
    free(numbers);
    return r < 0 ? -1 : 0;
}

/* What the program said of a plan pushed to it. */
static int put_plan_ack(ictx *c, json_t *rec) {
    int ok = json_is_true(json_object_get(rec, "ok"));
    if (c->store_it && qs_put_plan_ack(c->st, c->sp->installation, c->sp->run, num(rec, "seq"),
                                       ok, str(rec, "error"), c->err, c->errlen) < 0)
        return -1;
    if (ok)
        logf_(c, "plan-applied pid=%lld seq=%lld plan=\"%s\"", num(rec, "pid"), num(rec, "seq"),
              str(rec, "plan"));
    else
        logf_(c, "plan-rejected pid=%lld seq=%lld error=\"%s\" plan=\"%s\"", num(rec, "pid"),
              num(rec, "seq"), str(rec, "error"), str(rec, "plan"));
    qs_event ev = {.type = QS_EV_PLAN_ACK, .pid = (int)num(rec, "pid"),
                   .time_ns = num(rec, "time_ns"), .seq = num(rec, "seq"), .ok = ok,
                   .plan = str(rec, "plan"), .error = str(rec, "error")};
    event(c, &ev);
    return 0;
}

/* The supervisor's own record of how the process ended: a crash without a
 * record of the runtime's (a program without it, or a death no handler
 * sees) is stored from it, unattributed. */
static int put_exit(ictx *c, json_t *rec) {
    int sig = (int)num(rec, "signal"), pid = (int)num(rec, "pid");
    if (!sig || !c->store_it)
        return 0;
    /* the crash handler's record of this death came first (the supervisor
     * writes its own once the program is gone): it stands. A pid that never
     * said hello here ran the program under another (a wrapper, a pid
     * namespace): its crash handler's record of the same signal stands. */
    int wrapped = !hello_at(c->sp, pid, c->at);
    for (int i = 0; i < c->sp->ncrashes; i++) {
        const crashed *k = &c->sp->crashes[i];
        if (k->at < c->at && (k->pid == pid || (wrapped && k->sig == sig)))
            return 0;
    }
    return qs_put_exit_crash(c->st, c->sp->installation, c->sp->run, proc_of(c, rec, pid), pid,
                             sig, num(rec, "time_ns"), c->err, c->errlen) < 0 ? -1 : 0;
}

/* The first record that carries the identity of a process whose hello
 * carried none: what was stored under its stand-in takes it. */
static int rename_proc(ictx *c, json_t *rec) {
    int pid = pid_of(rec);
    hello *h = c->store_it ? hello_at(c->sp, pid, c->at) : NULL;
    if (!h || h->proc[0] || h->seen_at != c->at)
        return 0;
    return qs_rename_proc(c->st, c->sp->installation, c->sp->run, pid, standin(c, h->at), h->seen,
                          c->err, c->errlen);
}

static int apply(ictx *c, json_t *rec) {
    const char *type = str(rec, "type");
    if (rename_proc(c, rec))
        return -1;
    if (!strcmp(type, "fault"))
        return put_fault(c, rec);
    if (!strcmp(type, "host-crash"))
        return put_host_crash(c, rec);
    if (!strcmp(type, "stats"))
        return put_stats(c, rec);
    if (!strcmp(type, "hello"))
        return put_hello(c, rec);
    if (!strcmp(type, "plan"))
        return put_plan(c, rec);
    if (!strcmp(type, "plan-ack"))
        return put_plan_ack(c, rec);
    if (!strcmp(type, "exit"))
        return put_exit(c, rec);
    if (!strcmp(type, "dropped"))
        logf_(c, "dropped pid=%lld reports=%lld", num(rec, "pid"), num(rec, "dropped"));
    return 0; /* spool: context only */
}

/* Checks and parses one line (without its newline); NULL and why if bad. */
static json_t *parse(const char *line, size_t n, char *why, size_t wlen) {
    if (n < 10 || line[8] != ' ') {
        snprintf(why, wlen, "not a record");
        return NULL;
    }
    char hex[9];
    memcpy(hex, line, 8);
    hex[8] = 0;
    char *end;
    unsigned long want = strtoul(hex, &end, 16);
    uLong got = crc32(0L, (const Bytef *)line + 9, (uInt)(n - 9));
    if (*end || want != (got & 0xffffffffUL)) {
        snprintf(why, wlen, "checksum mismatch");
        return NULL;
    }
    json_error_t je;
    json_t *rec = json_loadb(line + 9, n - 9, 0, &je);
    if (!rec || !json_is_object(rec)) {
        snprintf(why, wlen, "bad JSON: %.120s", rec ? "not an object" : je.text);
        json_decref(rec);
        return NULL;
    }
    return rec;
}

/* ---- reading the file ----------------------------------------------------------- */

/* Reads n bytes at off (fewer at the end of the file). Returns how many, or
 * -1 (err). */
static ssize_t read_at(qs_spool *sp, char *buf, size_t n, long long off, char *err, size_t len) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(sp->fd, buf + got, n - got, (off_t)(off + (long long)got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return fail(err, len, sp->path, strerror(errno));
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

static int is_hex(char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* A record glued to the end of damage (a block of NUL bytes, a torn record,
 * garbage, with no newline between): where in p[lo, n) one starts that
 * runs to the end (n, the line's end), with *rec parsed; -1 when none. The
 * places that look like a record's start are tried from the end, at most
 * TRIES_MAX of them; with skip0, p itself was tried already. */
static long long glued(const char *p, size_t n, size_t lo, int skip0, json_t **rec) {
    char why[160];
    int tries = 0;
    *rec = NULL;
    for (size_t i = n >= 10 ? n - 10 + 1 : 0; i-- > lo && tries < TRIES_MAX;) {
        if (p[i + 8] != ' ' || p[i + 9] != '{' || (skip0 && i == 0))
            continue;
        int hex = 1;
        for (int j = 0; j < 8 && hex; j++)
            hex = is_hex(p[i + (size_t)j]);
        if (!hex)
            continue;
        tries++;
        if ((*rec = parse(p + i, n - i, why, sizeof why)))
            return (long long)i;
    }
    return -1;
}

/* One record at offset `at`: context learnt, stored and logged as far as
 * this round has not yet done so. */
static void record(ictx *c, long long at, json_t *rec) {
    qs_spool *sp = c->sp;
    if (at >= sp->learned)
        learn(sp, rec, at);
    c->at = at;
    c->store_it = c->st && at >= c->done;
    c->log_it = at >= sp->logged;
    if ((c->store_it || c->log_it) && apply(c, rec))
        c->bad = 1;
    else
        c->count += c->store_it;
}

/* A damaged stretch, skipped: one log line with where it is and how long. */
static void damage(ictx *c, long long at, long long bytes, const char *why) {
    c->log_it = at >= c->sp->logged;
    logf_(c, "bad-record spool=%s offset=%lld bytes=%lld why=\"%s\"", c->sp->path, at, bytes, why);
}

/* Everything before `next` is handled. */
static void advance(ictx *c, long long next) {
    qs_spool *sp = c->sp;
    if (c->st && next > c->upto)
        c->upto = next;
    if (next > sp->learned)
        sp->learned = next;
    if (next > sp->logged)
        sp->logged = next;
}

/* One line (p[0, n), its newline at p[n]) at offset at: a record; or damage,
 * perhaps with a record glued to its end. A record holds no NUL byte, so
 * one can only start after the last. */
static void line(ictx *c, long long at, const char *p, size_t n) {
    char why[160];
    const char *nul = memrchr(p, 0, n);
    json_t *rec = nul ? NULL : parse(p, n, why, sizeof why);
    if (rec) {
        record(c, at, rec);
        json_decref(rec);
        return;
    }
    long long k = glued(p, n, nul ? (size_t)(nul - p) + 1 : 0, !nul, &rec);
    if (k < 0) {
        damage(c, at, (long long)n + 1, nul ? "NUL bytes" : why);
        return;
    }
    if (!nul)
        json_decref(parse(p, (size_t)k, why, sizeof why)); /* what is wrong with the damage */
    damage(c, at, k, nul ? "NUL bytes" : why);
    record(c, at + k, rec);
    json_decref(rec);
}

/* A line longer than any record (buf holds its first RECORD_MAX + 1 bytes,
 * at `at`; cap is buf's size): its end is looked for without holding more
 * of it in memory; a record glued to its end is in its last RECORD_MAX
 * bytes, after its last NUL. Without an end yet (the end of the file), the
 * damage is skipped up to the last RECORD_MAX bytes, where a record being
 * written could begin (a reader may see a block not yet written as zeros).
 * Returns where to go on from, or -1 (err). */
static long long long_line(ictx *c, long long at, char *buf, size_t cap, long long size) {
    long long first = -1, nul = -1, e = -1, q = at; /* first and last NUL, the newline */
    while (q < size && e < 0) {
        ssize_t k = read_at(c->sp, buf, (size_t)(size - q) < cap ? (size_t)(size - q) : cap, q,
                            c->err, c->errlen);
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        char *nl = memchr(buf, '\n', (size_t)k);
        size_t upto = nl ? (size_t)(nl - buf) : (size_t)k;
        char *z = memrchr(buf, 0, upto);
        if (z)
            nul = q + (z - buf);
        if (z && first < 0)
            first = q + ((char *)memchr(buf, 0, upto) - buf);
        if (nl)
            e = q + (nl - buf);
        q += k;
    }
    long long end = e >= 0 ? e : size;
    long long w = end - (long long)RECORD_MAX; /* a record there starts at w or later */
    if (e >= 0)
        w = w > nul + 1 ? w : nul + 1;
    w = w > at ? w : at;
    const char *why = first >= 0 && first < w ? "NUL bytes"
                                              : "no newline in 4 MiB (longer than any record)";
    if (e < 0) {
        damage(c, at, w - at, why);
        return w;
    }
    ssize_t k = read_at(c->sp, buf, (size_t)(e - w), w, c->err, c->errlen);
    if (k < 0)
        return -1;
    json_t *rec = NULL;
    long long i = k == e - w ? glued(buf, (size_t)k, 0, 0, &rec) : -1;
    damage(c, at, (i >= 0 ? w + i : e + 1) - at, why);
    if (i >= 0) {
        record(c, w + i, rec);
        json_decref(rec);
    }
    return e + 1;
}

int qs_spool_import(qs_spool *sp, qs_store *st, qs_log_fn *log, void *lctx, char *err,
                    size_t len) {
    struct stat sb;
    if (fstat(sp->fd, &sb) < 0)
        return fail(err, len, sp->path, strerror(errno));
    if (sp->logged >= sb.st_size && (!st || sp->stored >= sb.st_size))
        return 0; /* nothing new: the store is not touched */
    int64_t done = sb.st_size; /* without a store: nothing is stored, records are logged */
    if (st && qs_begin(st, err, len))
        return -1;
    if (st && qs_spool_get(st, sp->name, &done, err, len)) {
        qs_rollback(st);
        return -1;
    }
    long long size = sb.st_size, pos = sp->learned, read = 0;
    if (done < pos)
        pos = done;
    if (sp->logged < pos)
        pos = sp->logged;
    /* a window holds any record with its newline; what does not fit is damage */
    size_t cap = size - pos > (long long)RECORD_MAX ? RECORD_MAX + 1 : (size_t)(size - pos);
    char *buf = pos < size ? malloc(cap) : NULL;
    if (pos < size && !buf) {
        if (st)
            qs_rollback(st);
        return fail(err, len, sp->path, "out of memory");
    }
    ictx c = {sp, st, log, lctx, err, len, 0, 0, 0, done, done, 0, 0, ""};
    int failed = 0;
    while (!c.bad && !failed && pos < size && read < (long long)ROUND_MAX) {
        size_t want = (size_t)(size - pos) < cap ? (size_t)(size - pos) : cap;
        ssize_t k = read_at(sp, buf, want, pos, err, len);
        if (k <= 0) {
            failed = k < 0;
            break;
        }
        size_t p = 0;
        char *nl;
        while (!c.bad && p < (size_t)k && (nl = memchr(buf + p, '\n', (size_t)k - p))) {
            size_t n = (size_t)(nl - (buf + p));
            line(&c, pos + (long long)p, buf + p, n);
            p += n + 1;
            if (!c.bad)
                advance(&c, pos + (long long)p);
        }
        if (c.bad)
            break;
        if (pos + (long long)p > done) /* what is read again for context only is cheap */
            read += pos + (long long)p - (pos > done ? pos : done);
        if (p == 0 && (size_t)k > RECORD_MAX) { /* no newline in a window: damage */
            long long next = long_line(&c, pos, buf, cap, size);
            failed = next < 0 || c.bad;
            if (!failed)
                advance(&c, next);
            pos = next;
        } else if (p == 0) {
            break; /* the last line, unfinished: a record may be being written */
        } else {
            pos += (long long)p;
        }
    }
    free(buf);
    if (!st)
        return failed ? -1 : 0;
    if (c.bad || failed || qs_spool_set(st, sp->name, c.upto, err, len)) {
        qs_rollback(st);
        return -1;
    }
    if (qs_commit(st, err, len))
        return -1;
    sp->stored = c.upto;
    return c.count;
}

int qs_spool_finish(qs_spool *sp, qs_store *st, int keep, qs_log_fn *log, void *lctx, char *err,
                    size_t len) {
    if (!qs_spool_writer_gone(sp))
        return 0;
    struct stat sb;
    int64_t done;
    if (fstat(sp->fd, &sb) < 0)
        return fail(err, len, sp->path, strerror(errno));
    if (qs_spool_get(st, sp->name, &done, err, len))
        return -1;
    if (done < sb.st_size) {
        /* a last record without its newline: its writer died writing it.
         * Anything an import would take (a newline, more than a record) is
         * imported first. */
        size_t want = sb.st_size - done > (long long)RECORD_MAX ? RECORD_MAX + 1
                                                                : (size_t)(sb.st_size - done);
        char *rest = malloc(want);
        if (!rest)
            return fail(err, len, sp->path, "out of memory");
        ssize_t got = read_at(sp, rest, want, done, err, len);
        int left = got < 0 || (size_t)got > RECORD_MAX || memchr(rest, '\n', (size_t)got);
        free(rest);
        if (got < 0)
            return -1;
        if (left)
            return 0;
        ictx c = {sp, st, log, lctx, err, len, 0, 1, 0, 0, 0, 0, 0, ""};
        logf_(&c, "torn-record spool=%s offset=%lld bytes=%lld", sp->path, (long long)done,
              (long long)(sb.st_size - done));
    }
    /* the file goes first: a supervisor killed between the two leaves a row
     * no file will ever match, rather than a file imported twice */
    char kept[4200];
    snprintf(kept, sizeof kept, "%s.imported", sp->path);
    if ((keep ? rename(sp->path, kept) : unlink(sp->path)) < 0 && errno != ENOENT)
        return fail(err, len, sp->path, strerror(errno));
    return qs_spool_forget(st, sp->name, err, len) ? -1 : 1;
}
