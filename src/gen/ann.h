/* ann.h - reading annotation text (see ann.c). */
#ifndef QG_ANN_H
#define QG_ANN_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

/* Reads one parameter or field annotation ("qtn in n * 2") into p. Returns 0,
 * or -1 with a message in err. Text not starting with "qtn " is ignored. */
int qg_ann_apply(const char *text, qg_param *p, char *err, size_t len);

/* Reads the text of QTN_ALLOCATED(count, free_fn[, alloc_fn]) ("*len, free")
 * into p: its kind, the count (p->actual, or p->alloc_string) and the
 * function names. Returns 0, or -1 with a message in err. */
int qg_ann_allocated(const char *text, qg_param *p, char *err, size_t len);

/* Checks a count expression before it is copied into generated code:
 * balanced brackets, only what an expression needs, no side effect (++, --,
 * assignments), and every name outside sizeof(...) accepted by name_ok.
 * Returns 0; -1 with a message in err saying what is wrong; or -2 for a
 * side effect, with err the end of a sentence about the count ("has a side
 * effect ('++'): ..."). */
int qg_count_check(const char *expr, bool (*name_ok)(void *ctx, const char *id, size_t n),
                   void *ctx, char *err, size_t len);

#endif
