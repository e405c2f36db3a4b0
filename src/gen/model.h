/* model.h - what `quarantine gen` knows about the entry functions it found:
 * the output of parsing (parse.c) and the input of emitting (emit.c). */
#ifndef QG_MODEL_H
#define QG_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct qg_loc {
    char *file;
    unsigned line, col;
} qg_loc;

/* How a value travels in a qtn_val. */
typedef enum { QG_V_NONE = 0, QG_V_I, QG_V_U, QG_V_F, QG_V_D, QG_V_P } qg_vslot;

struct qg_struct;

typedef struct qg_param {
    char *name;
    char *type;       /* the C spelling */
    char *pointee;    /* pointers: the pointed-to type's spelling */
    int pointee_scalar; /* QTN_T_* of the pointed-to type, 0 if none */
    int scalar;       /* QTN_T_* of a value parameter */
    qg_vslot slot;
    int kind;         /* QTN_K_SCALAR, QTN_K_HANDLE, QTN_K_IN, ... */
    bool bytes;       /* the count is in bytes */
    bool nullable, owned;
    char *count;      /* count expression (C), NULL for none */
    int count_scalar; /* fields: QTN_T_* of the sibling field that counts */
    char *actual;     /* "return" or a parameter name (from "*name") */
    struct qg_struct *st; /* buffers of structs with annotated pointer fields */
    struct qg_sig *sig;   /* callbacks: the function's parameters */
    char *key;        /* handles: what the pointer points to (a USR or type), NULL for void */
    /* QTN_ALLOCATED: `actual` names the count ("return", a parameter), or
     * alloc_string says it is NUL-terminated; elem spells T of T ** (T * of
     * a result); free_fn and alloc_fn are the functions the annotation names */
    bool alloc_string;
    char *elem, *free_fn, *alloc_fn;
    char *each;       /* QTN_EACH: "string" or a number, for an array of pointers */
    char *active;     /* QTN_ACTIVE's text, on a union field */
    /* a field in a union member: it crosses while when_field (its place in
     * the outer struct, for offsetof) holds when_value (C) */
    char *when_field, *when_value;
    int when_type;
    qg_loc loc;
} qg_param;

/* The signature of a callback parameter. */
typedef struct qg_sig {
    int ret;          /* QTN_T_* */
    qg_param *params;
    unsigned nparams;
} qg_sig;

/* A struct whose pointer fields cross with it; its fields are qg_params
 * whose count names a sibling field (or is a constant). */
typedef struct qg_struct {
    char *type;       /* the C spelling, for sizeof and offsetof; an array of
                         pointers (ptr_array): the pointer type, its one field
                         at offset 0 */
    bool ptr_array;
    char *cname;      /* an identifier for the generated descriptor */
    qg_param *fields; /* the pointer fields only */
    unsigned nfields;
    struct qg_struct *next;
} qg_struct;

typedef struct qg_func {
    char *name;
    char *component;
    char *ret_type;
    char *ret_key;    /* a returned handle: what it points to, as qg_param.key */
    int ret;          /* QTN_T_* */
    qg_vslot ret_slot;
    char *fault;      /* C expression */
    bool has_deadline;
    uint32_t deadline_ms;
    qg_param *params;
    unsigned nparams;
    char **syscalls;  /* QTN_SYSCALLS: system calls its component needs */
    unsigned nsyscalls;
    char *denied;     /* QTN_DENIED: the errno name a denied system call fails with */
    qg_param *ret_param; /* what the function's pointer result carries: kind
                            QTN_K_ALLOCATED (QTN_ALLOCATED, ret QTN_T_ALLOCATED)
                            or QTN_K_OUT (QTN_OUT(count), ret QTN_T_OUT) */
    qg_loc loc;
} qg_func;

typedef struct qg_model {
    qg_func *funcs;
    unsigned nfuncs;
    char **components; /* distinct names, in order of appearance */
    char **code_ids;   /* per component: its code identity (32 hex digits), NULL if unknown */
    unsigned ncomponents;
    char **headers;    /* the headers given, to include from the stubs */
    unsigned nheaders;
    qg_struct *structs; /* in an order where a struct follows those it points to */
    char **deps;       /* every file the headers read (for build tools) */
    unsigned ndeps;
    struct qg_global { /* QTN_SYNC(component) globals */
        char *name, *component;
        qg_loc loc;
    } *globals;
    unsigned nglobals;
} qg_model;

/* Parses `headers` with libclang (args: -I, -D ...) and builds the model of
 * the annotated entry functions. Diagnostics go to `err` as
 * `file:line:col: error: ...`. Returns the number of errors (0: success). */
int qg_parse(qg_model *m, char **headers, int nheaders, char **args, int nargs, FILE *err);

/* The argument vector every libclang parse of the generator uses: C with
 * QTN_GEN defined, then args (-I, -D ...). *n is its length; free() it. */
const char **qg_clang_args(char **args, int nargs, int *n);

/* Code identity (ident.c): parses `sources` (C files of the program, with
 * the same args as the headers), finds the component each belongs to (the
 * one whose entries it defines, or the one its QTN_SOURCE_OF mark names) and
 * sets m->code_ids: a hash of each component's name, its entries as the
 * model holds them and the contents of its files. Sources are added to
 * m->deps. Errors and warnings go to err; returns the number of errors. */
int qg_identify(qg_model *m, char **sources, int nsources, char **args, int nargs, FILE *err);

/* Writes the stubs for m to out. Returns 0 or -1 (a write failed). */
int qg_emit_stubs(const qg_model *m, FILE *out, const char *generator);

/* Writes a make-style dependency file: target depends on every file read. */
int qg_emit_deps(const qg_model *m, FILE *out, const char *target);

/* Writes the linker flags that route calls through the stubs. */
int qg_emit_flags(const qg_model *m, FILE *out);

void qg_model_free(qg_model *m);

#endif
