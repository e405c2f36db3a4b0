/* hash.h - the 128-bit hash behind code identities (see hash.c). */
#ifndef QG_HASH_H
#define QG_HASH_H

#include <stddef.h>
#include <stdint.h>

/* MurmurHash3 x64_128 of data[0..len) with `seed`: out[0] is h1, out[1] h2.
 * Blocks are read little-endian whatever the machine, so a hash is the same
 * everywhere. */
void qg_hash128(const void *data, size_t len, uint32_t seed, uint64_t out[2]);

/* h as 32 lowercase hex digits (h1 then h2, most significant digit first)
 * and a NUL. */
void qg_hash_hex(const uint64_t h[2], char hex[33]);

#endif
