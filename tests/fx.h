/* fx.h - test components that fault on demand. */
#ifndef QTN_TESTS_FX_H
#define QTN_TESTS_FX_H

#include <stdint.h>

#include "quarantine.h"

enum {
    FX_SEGV = 1,
    FX_BUS,
    FX_FPE,
    FX_ILL,
    FX_ABRT,
    FX_STACK,
    FX_EXIT,
    FX__EXIT,
    FX_HANG,     /* waits to be killed from outside (SIGKILL, the OOM killer) */
    FX_DEADLOCK, /* takes a lock it holds: recovered by the deadline */
    FX_OPEN,     /* opens a file: denied by the domain filter */
    FX_KINDS
};

extern qtn_component fx_component, fy_component;
extern int fx_last_err; /* qtn_call's result in the last stub slow path */
/* Set before qtn_init: fx's init hook reads "<ms> [crash]" from this file
 * in every new domain process: it sleeps ms, then aborts if crash is 1. */
extern char fx_init_file[256];

int fx_crash(int32_t kind);  /* faults as told; deadline 400 ms */
int fx_wait(int32_t ms);     /* sleeps in the domain, counted as inside */
int fx_inside(void);         /* calls inside fx_wait or fx_crash now */
int fx_ok(int32_t x);        /* x + 1 */
int fx_init_runs(void);      /* times the component's init hook ran here */
void *fx_new(int32_t v);     /* a handle owned by fx */
int fx_get(void *h);
int fy_wait(int32_t ms);     /* in another component: a bystander */

/* the real functions, exported so backtraces can name them */
int fx_crash_real(int32_t kind);
int fx_recurse(volatile char *p, int depth);
int fx_wait_real(int32_t ms);
int fx_inside_real(void);
int fx_ok_real(int32_t x);
int fx_init_runs_real(void);
void *fx_new_real(int32_t v);
int fx_get_real(void *h);
int fy_wait_real(int32_t ms);

#endif
