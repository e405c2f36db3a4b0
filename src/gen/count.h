/* count.h - counts evaluated by libclang in the context of their header
 * (see count.c); internal to the generator. */
#ifndef QG_COUNT_H
#define QG_COUNT_H

#include <clang-c/Index.h>
#include <stdio.h>

#include "model.h"

/* One count expression to check, with the parameter list it is over. */
typedef struct qg_pending {
    char *func;            /* "f" or "f() callback cb", for messages */
    char *param;           /* the parameter whose count it is */
    char *count;           /* the expression, already through qg_count_check() */
    qg_loc loc;            /* the parameter's place */
    char **names, **types; /* the parameters, as the count function declares them */
    unsigned n;
} qg_pending;

/* Evaluates each count as the stubs' count functions will (a function of
 * the parameters, after the headers, which the stubs include in this
 * order), and reports what the runtime cannot use: a count that is not
 * valid C, divides by zero, is a negative constant, computes with floating
 * point, uses a pointer as a number, calls a function, changes a value, or
 * takes sizeof of a pointer parameter. `header` is the one the counts are
 * from. Returns the number of errors written to err. */
int qg_counts_check(CXIndex idx, char **headers, int nheaders, const char *header,
                    const char **argv, int nargv, const qg_pending *p, unsigned n, FILE *err);

/* Frees n pending counts and the array. */
void qg_pending_free(qg_pending *p, unsigned n);

#endif
