/* ratelimit.h - component `ratelimit`: per-client token buckets.
 *
 * Its buckets are state that may be lost (an isolated rate limiter restarts
 * with every bucket full): losing them lets a client through a little early,
 * no more. A client is a string (its address, or the X-Client-Id it sends). */
#ifndef SRV_RATELIMIT_H
#define SRV_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "quarantine.h"

#define RL_CLIENT_MAX 64 /* longer client names are cut */

/* Takes one token from client's bucket, which holds up to `burst` tokens and
 * gains `rate` tokens a second, at time now_us (a monotonic clock). Returns
 * 1 when the request may go on, 0 when it must wait (429). Fault value -1:
 * the caller lets the request through (no limit rather than no service). */
QTN_COMPONENT(ratelimit) QTN_FAULT(-1)
int rl_take(const char *client QTN_STRING, int64_t now_us, uint32_t rate, uint32_t burst);

/* Clients with a bucket now. Fault value -1. */
QTN_COMPONENT(ratelimit) QTN_FAULT(-1)
int32_t rl_clients(void);

#endif
