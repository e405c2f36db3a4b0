/* cache.h - component `cache`: a response cache of derived bodies (rendered
 * HTML, gzipped documents), keyed by a string and the version of the
 * document they were made from.
 *
 * Its state may be lost at any fault (an isolated cache restarts empty):
 * callers treat every failure as a miss, and the documents themselves never
 * live here. Entries past `max_entries` are evicted oldest first.
 *
 * Bug `cache` (SERVER_BUGS=cache): cache_get() drops its lock before copying
 * the entry it found; a concurrent cache_put() may evict and free that entry
 * meanwhile (use after free). See cache.c. */
#ifndef SRV_CACHE_H
#define SRV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "quarantine.h"

#define CACHE_KEY_MAX 160 /* longest key, with its NUL */

/* Copies the body cached under (key, ver) to out and returns its length;
 * -1 on a miss (no entry, another version, or more than cap bytes).
 * Fault value -2: the caller treats it as a miss. */
QTN_COMPONENT(cache) QTN_FAULT(-2)
int64_t cache_get(const char *key QTN_STRING, uint64_t ver,
                  char *out QTN_OUT_BYTES(cap) QTN_ACTUAL(return), size_t cap);

/* Caches n bytes under (key, ver), replacing what key held, and evicts the
 * oldest entries while there are more than max_entries. Returns 0, or -1
 * (key too long, out of memory). Fault value -2: the caller carries on (the
 * body was served; it is only not cached). */
QTN_COMPONENT(cache) QTN_FAULT(-2)
int cache_put(const char *key QTN_STRING, uint64_t ver, const char *data QTN_IN_BYTES(n),
              size_t n, uint32_t max_entries);

/* Entries cached now. Fault value -1. */
QTN_COMPONENT(cache) QTN_FAULT(-1)
int64_t cache_count(void);

#endif
