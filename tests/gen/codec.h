/* codec.h - a small annotated component for the generator's tests: every
 * kind of parameter the generator handles. */
#ifndef CODEC_H
#define CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h> /* free, named by QTN_ALLOCATED */

#include "quarantine.h"

#define CODEC_MAX 4096 /* counts may use the header's own names */

typedef struct codec_pair {
    int32_t key;
    double weight;
} codec_pair;

/* a zlib-like stream: its pointer fields cross with it, and the callee
 * moves them */
typedef struct codec_stream {
    const uint8_t *next_in QTN_IN(avail_in);
    uint32_t avail_in;
    uint8_t *next_out QTN_OUT(avail_out);
    uint32_t avail_out;
    uint64_t total;
    const char *name QTN_STRING;
    void *priv QTN_HANDLE;
} codec_stream;

QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_copy(codec_stream *s QTN_INOUT(1), uint32_t max);

/* structs by value inside a struct, one of them in an array: their pointer
 * fields cross at their places in the outer one */
typedef struct codec_part {
    const char *name QTN_STRING;
    uint8_t *data QTN_INOUT(len);
    uint32_t len;
} codec_part;
typedef struct codec_doc {
    int32_t id;
    codec_part head;
    codec_part parts[2];
} codec_doc;

/* upper-cases the data of the head and of each part; returns the lengths of
 * their names and data summed, plus the id */
QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_doc_upper(codec_doc *d QTN_INOUT(1));

QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_pack(const uint8_t *src QTN_IN(n), size_t n, uint8_t *dst QTN_OUT(cap) QTN_ACTUAL(*got),
               size_t cap, size_t *got QTN_OUT(1));

QTN_COMPONENT(codec) QTN_FAULT(0)
uint32_t codec_sum(const int16_t *v QTN_IN(rows * cols), int32_t rows, int32_t cols);

QTN_COMPONENT(codec) QTN_FAULT(-1) QTN_DEADLINE(5000)
int codec_upper(const char *s QTN_STRING, char *out QTN_OUT_BYTES(cap) QTN_ACTUAL(return),
                size_t cap);

QTN_COMPONENT(codec) QTN_FAULT(-1.0)
double codec_weigh(codec_pair *pairs QTN_INOUT(n) QTN_NULLABLE, uint16_t n, float scale);

QTN_COMPONENT(codec) QTN_FAULT(NULL) QTN_OWNED
void *codec_open(int32_t seed);

QTN_COMPONENT(codec) QTN_FAULT(-1)
int64_t codec_next(void *state QTN_OWNED);

QTN_COMPONENT(codec)
void codec_close(void *state QTN_OWNED);

QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_pid(void);

QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_fill(void *buf QTN_OUT_BYTES(CODEC_MAX), uint8_t b);

/* the first byte of a file, or -1: in a domain it needs two system calls
 * the call-time filter does not allow by itself (close it allows) */
QTN_COMPONENT(codec) QTN_FAULT(-2) QTN_SYSCALLS(openat, read)
int codec_first_byte(const char *path QTN_STRING);

/* a socket: denied in a domain, where codec sees it fail with EACCES (as a
 * library that handles a failed call would) instead of being killed;
 * returns the errno it got, 0 if it got a socket */
QTN_COMPONENT(codec) QTN_FAULT(-2) QTN_DENIED(EACCES)
int codec_socket_errno(void);

/* a string the component keeps ("zero", "one", "two"; 3: NULL; 4: one of
 * 2 MiB, more than a channel holds), copied back */
QTN_COMPONENT(codec) QTN_FAULT("?") QTN_STRING
const char *codec_name(int32_t which);

/* data the callee allocates and the caller frees, with the function each
 * annotation names, wherever codec runs. codec_alloc and codec_free are
 * codec's allocator (malloc and free that count what is live in the
 * process: codec_live) */
void *codec_alloc(size_t n);
void codec_free(void *p);

QTN_COMPONENT(codec) QTN_FAULT(-1)
int32_t codec_live(void);

/* n copies of "ab" in *out (2n chars and a NUL), their length in *len;
 * n < 0: returns -1 and leaves both alone */
QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_dump(int32_t n, char **out QTN_ALLOCATED(*len, free), size_t *len QTN_OUT(1));

/* asprintf-style: "v=<v>" in *out, its length returned (-1: none) */
QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_print(char **out QTN_ALLOCATED(return, free), int32_t v);

/* a string the caller frees with codec_free (NULL for NULL) */
QTN_COMPONENT(codec) QTN_FAULT(NULL) QTN_ALLOCATED(string, codec_free, codec_alloc)
char *codec_strdup_upper(const char *s QTN_STRING QTN_NULLABLE);

/* count pairs {i, i / 2.0} the caller frees with codec_free, *n of them */
QTN_COMPONENT(codec) QTN_FAULT(NULL) QTN_ALLOCATED(*n, codec_free, codec_alloc)
codec_pair *codec_pairs(uint32_t count, uint32_t *n QTN_OUT(1));

/* data a function returns and codec keeps, which the caller reads
 * (result->set->n, as libxml2's obj->nodesetval->nodeNr): n squares (of i % 1000),
 * named; n < 0: NULL. Valid until the thread's next codec_eval */
typedef struct codec_set {
    int32_t n;
    const int32_t *items QTN_IN(n);
} codec_set;
typedef struct codec_result {
    int32_t kind;
    const char *name QTN_STRING;
    const codec_set *set QTN_IN(1);
} codec_result;

QTN_COMPONENT(codec) QTN_FAULT(NULL) QTN_OUT(1)
const codec_result *codec_eval(int32_t n);

/* codec's table of pairs, *n of them */
QTN_COMPONENT(codec) QTN_FAULT(NULL) QTN_OUT(*n)
const codec_pair *codec_table(uint32_t *n QTN_OUT(1));

/* arrays of pointers, each element's data crossing with it: the lengths
 * of n strings summed (a NULL one counts 0), the keys of n pairs summed,
 * and codec_doc_upper's sum over n parts (the parts' own pointers cross
 * too) */
QTN_COMPONENT(codec) QTN_FAULT(-1)
int64_t codec_total(const char *const *names QTN_IN(n) QTN_EACH(string), size_t n);

QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_keys(const codec_pair *const *v QTN_IN(n) QTN_EACH(1), uint32_t n);

QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_parts_len(const codec_part *const *v QTN_IN(n) QTN_EACH(1), uint32_t n);

/* a union whose active member a field beside it names: the pointers of
 * that member cross, those of the others do not. codec_value_len: the
 * length of the text, the blob, or 8 for a number (-1 for a bad kind) */
enum codec_kind { CODEC_NUM = 1, CODEC_TEXT, CODEC_BLOB };
typedef struct codec_value {
    int32_t kind;
    union {
        int64_t num;
        const char *text QTN_STRING;
        struct {
            uint8_t *data QTN_INOUT(len);
            uint32_t len;
        } blob;
    } u QTN_ACTIVE(kind, CODEC_TEXT: text, CODEC_BLOB: blob);
} codec_value;

/* the lengths summed; each blob's bytes upper-cased */
QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_values(codec_value *v QTN_INOUT(n), uint32_t n);

/* callbacks run back in the caller's domain; their own pointer parameters
 * are annotated like an entry's, in the declarator or in a typedef */
QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_each_word(const char *text QTN_STRING,
                    int (*fn)(void *ctx QTN_HANDLE, const char *word QTN_IN(len), size_t len)
                        QTN_CALLBACK,
                    void *ctx QTN_HANDLE);

typedef int (*codec_cmp)(const int32_t *a QTN_IN(1), const int32_t *b QTN_IN(1));

QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_sort(int32_t *v QTN_INOUT(n), size_t n, codec_cmp cmp QTN_CALLBACK);

/* a callback codec keeps for later (as a library keeps an error handler),
 * then calls from a later call, or from a thread of its own: returns what
 * it returned, -2 with none kept */
QTN_COMPONENT(codec)
void codec_keep(int (*fn)(int32_t x) QTN_CALLBACK);

QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_fire(int32_t x, int32_t from_thread);

/* a handler and the context it is called with, kept together (as
 * xmlSetGenericErrorFunc keeps them), then called by codec_fire_ctx: */
QTN_COMPONENT(codec)
void codec_keep_ctx(int (*fn)(void *ctx QTN_HANDLE, int32_t x) QTN_CALLBACK,
                    void *ctx QTN_HANDLE);

QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_fire_ctx(int32_t x, int32_t from_thread);

/* starts n threads of codec's own one after the other, each joined before
 * the next: returns how many started (a library with a thread per job) */
QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_threads(int32_t n);

/* calls codec_pid n times from codec's own code (codec_more.c) and returns
 * what it said: the calls inside codec count wherever codec runs */
QTN_COMPONENT(codec) QTN_FAULT(-1)
int codec_relay(int32_t n);

/* a global synced on each crossing into codec */
extern int32_t codec_level QTN_SYNC(codec);

QTN_COMPONENT(codec) QTN_FAULT(-1)
int32_t codec_bump_level(void); /* returns codec_level * 10, then adds 1 to it */

/* not an entry: left alone, pointers and all */
static inline int codec_helper(int *p) { return p ? *p : 0; }
int codec_varargs_helper(const char *fmt, ...);
union codec_u {
    int i;
    char *s;
};

#endif
