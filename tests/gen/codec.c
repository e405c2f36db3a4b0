/* codec.c - the real functions of the codec test component. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec.h"

int codec_pack(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *got) {
    size_t k = 0; /* run-length: (count, byte) pairs */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && src[j] == src[i] && j - i < 255)
            j++;
        if (k + 2 > cap)
            return -2;
        dst[k++] = (uint8_t)(j - i);
        dst[k++] = src[i];
        i = j;
    }
    *got = k;
    return 0;
}

uint32_t codec_sum(const int16_t *v, int32_t rows, int32_t cols) {
    uint32_t s = 0;
    for (int32_t i = 0; i < rows * cols; i++)
        s = s * 33 + (uint32_t)(uint16_t)v[i];
    return s;
}

int codec_upper(const char *s, char *out, size_t cap) {
    size_t i = 0;
    for (; s[i] && i < cap; i++)
        out[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
    return (int)i;
}

double codec_weigh(codec_pair *pairs, uint16_t n, float scale) {
    double t = 0;
    for (uint16_t i = 0; pairs && i < n; i++) {
        pairs[i].weight *= scale;
        pairs[i].key += 1;
        t += pairs[i].weight;
    }
    return t;
}

struct codec_state {
    int64_t x;
};

void *codec_open(int32_t seed) {
    struct codec_state *s = malloc(sizeof *s);
    if (s)
        s->x = seed;
    return s;
}

int64_t codec_next(void *state) {
    struct codec_state *s = state;
    s->x = (int64_t)((uint64_t)s->x * 6364136223846793005ull + 1442695040888963407ull);
    return s->x;
}

void codec_close(void *state) { free(state); }

int codec_pid(void) { return (int)getpid(); }

int codec_first_byte(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    unsigned char c;
    ssize_t n = read(fd, &c, 1);
    close(fd);
    return n == 1 ? c : -1;
}

static int part_upper(codec_part *p) {
    for (uint32_t i = 0; i < p->len; i++)
        if (p->data[i] >= 'a' && p->data[i] <= 'z')
            p->data[i] = (uint8_t)(p->data[i] - 32);
    return (int)(strlen(p->name) + p->len);
}

int codec_doc_upper(codec_doc *d) {
    return d->id + part_upper(&d->head) + part_upper(&d->parts[0]) + part_upper(&d->parts[1]);
}

const char *codec_name(int32_t which) {
    static const char *const names[] = {"zero", "one", "two", NULL};
    static char big[2 << 20];
    if (which == 4) {
        memset(big, 'b', sizeof big - 1);
        return big;
    }
    return which >= 0 && which < 4 ? names[which] : "many";
}

int codec_socket_errno(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return errno;
}

int codec_fill(void *buf, uint8_t b) {
    memset(buf, b, CODEC_MAX);
    return CODEC_MAX;
}

int codec_copy(codec_stream *s, uint32_t max) {
    uint32_t n = s->avail_in < s->avail_out ? s->avail_in : s->avail_out;
    if (n > max)
        n = max;
    for (uint32_t i = 0; i < n; i++)
        s->next_out[i] = (uint8_t)(s->next_in[i] + (s->name ? (uint8_t)s->name[0] : 0));
    s->next_in += n;
    s->avail_in -= n;
    s->next_out += n;
    s->avail_out -= n;
    s->total += n;
    return (int)n;
}

int codec_each_word(const char *text, int (*fn)(void *ctx, const char *word, size_t len),
                    void *ctx) {
    int n = 0;
    for (const char *p = text; *p;) {
        while (*p == ' ')
            p++;
        const char *w = p;
        while (*p && *p != ' ')
            p++;
        if (p > w) {
            n++;
            int r = fn(ctx, w, (size_t)(p - w));
            if (r)
                return r;
        }
    }
    return n;
}

int codec_sort(int32_t *v, size_t n, codec_cmp cmp) {
    for (size_t i = 1; i < n; i++) /* insertion sort: the comparisons cross */
        for (size_t j = i; j > 0 && cmp(&v[j - 1], &v[j]) > 0; j--) {
            int32_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return (int)n;
}

int32_t codec_level;

int32_t codec_bump_level(void) { return codec_level++ * 10; }

static atomic_int codec_nlive;

void *codec_alloc(size_t n) {
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&codec_nlive, 1);
    return p;
}

void codec_free(void *p) {
    if (p)
        atomic_fetch_sub(&codec_nlive, 1);
    free(p);
}

int32_t codec_live(void) { return atomic_load(&codec_nlive); }

int codec_dump(int32_t n, char **out, size_t *len) {
    if (n < 0)
        return -1;
    char *s = malloc((size_t)n * 2 + 1);
    if (!s)
        return -1;
    for (int32_t i = 0; i < n; i++)
        memcpy(s + 2 * i, "ab", 2);
    s[2 * n] = 0;
    *out = s;
    *len = (size_t)n * 2;
    return 0;
}

int codec_print(char **out, int32_t v) {
    if (v < 0)
        return -1; /* *out is left alone, as asprintf may */
    char buf[32];
    int n = snprintf(buf, sizeof buf, "v=%d", (int)v);
    if (!(*out = strdup(buf)))
        return -1;
    return n;
}

char *codec_strdup_upper(const char *s) {
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *r = codec_alloc(n + 1);
    if (!r)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        r[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
    return r;
}

codec_pair *codec_pairs(uint32_t count, uint32_t *n) {
    codec_pair *v = codec_alloc((count ? count : 1) * sizeof *v);
    if (!v)
        return NULL;
    for (uint32_t i = 0; i < count; i++)
        v[i] = (codec_pair){(int32_t)i, i / 2.0};
    *n = count;
    return v;
}

static int (*codec_kept)(int32_t x);
static int (*codec_kept_ctx)(void *ctx, int32_t x);
static void *codec_ctx;

void codec_keep(int (*fn)(int32_t x)) { codec_kept = fn; }

void codec_keep_ctx(int (*fn)(void *ctx, int32_t x), void *ctx) {
    codec_kept_ctx = fn;
    codec_ctx = ctx;
}

/* Calls what codec keeps (the handler with its context, or the plain one)
 * with x, here or from a thread of codec's own: -2 with none kept, -3 when
 * no thread could start. */
typedef struct codec_firing {
    int32_t x;
    int with_ctx;
    int r;
} codec_firing;

static void *codec_fire_there(void *arg) {
    codec_firing *f = arg;
    f->r = f->with_ctx ? codec_kept_ctx(codec_ctx, f->x) : codec_kept(f->x);
    return NULL;
}

static int codec_firing_run(int32_t x, int with_ctx, int32_t from_thread) {
    if (with_ctx ? !codec_kept_ctx : !codec_kept)
        return -2;
    codec_firing f = {x, with_ctx, -3};
    pthread_t th;
    if (!from_thread)
        codec_fire_there(&f);
    else if (pthread_create(&th, NULL, codec_fire_there, &f))
        return -3;
    else
        pthread_join(th, NULL);
    return f.r;
}

int codec_fire(int32_t x, int32_t from_thread) { return codec_firing_run(x, 0, from_thread); }

int codec_fire_ctx(int32_t x, int32_t from_thread) { return codec_firing_run(x, 1, from_thread); }

const codec_result *codec_eval(int32_t n) {
    static __thread codec_result r;
    static __thread codec_set set;
    static __thread int32_t *items;
    if (n < 0)
        return NULL;
    int32_t *v = realloc(items, ((size_t)n + 1) * sizeof *v); /* kept: freed by the next */
    if (!v)
        return NULL;
    items = v;
    for (int32_t i = 0; i < n; i++)
        v[i] = (i % 1000) * (i % 1000);
    set = (codec_set){n, v};
    r = (codec_result){7, "squares", &set};
    return &r;
}

const codec_pair *codec_table(uint32_t *n) {
    static const codec_pair table[3] = {{1, 0.25}, {2, 0.5}, {3, 0.75}};
    *n = 3;
    return table;
}

int64_t codec_total(const char *const *names, size_t n) {
    int64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += names[i] ? (int64_t)strlen(names[i]) : 0;
    return t;
}

int codec_keys(const codec_pair *const *v, uint32_t n) {
    int s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += v[i] ? v[i]->key : 0;
    return s;
}

int codec_parts_len(const codec_part *const *v, uint32_t n) {
    int s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += (int)strlen(v[i]->name) + (int)v[i]->len;
    return s;
}

int codec_values(codec_value *v, uint32_t n) {
    int t = 0;
    for (uint32_t i = 0; i < n; i++)
        switch (v[i].kind) {
        case CODEC_NUM: t += 8; break;
        case CODEC_TEXT: t += (int)strlen(v[i].u.text); break;
        case CODEC_BLOB:
            for (uint32_t k = 0; k < v[i].u.blob.len; k++)
                if (v[i].u.blob.data[k] >= 'a' && v[i].u.blob.data[k] <= 'z')
                    v[i].u.blob.data[k] = (uint8_t)(v[i].u.blob.data[k] - 32);
            t += (int)v[i].u.blob.len;
            break;
        default: return -1;
        }
    return t;
}
