/* sc.h - a one-function component for measuring what a generated stub adds
 * to a direct call. */
#ifndef QTN_BENCH_SC_H
#define QTN_BENCH_SC_H

#include "quarantine.h"

QTN_COMPONENT(sc) QTN_FAULT(-1)
int sc_nop(int x);

/* the same function, never stubbed */
int sc_plain(int x);

#endif
