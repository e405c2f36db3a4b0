/* hash.c - MurmurHash3 x64_128 (Austin Appleby, public domain; the
 * reference is smhasher's MurmurHash3.cpp), written out here so that code
 * identities need no library and come out the same on every machine: keys
 * are read byte by byte as little-endian words, not through a cast. Not a
 * cryptographic hash: a code identity guards against mistakes (a changed
 * file keeping its trust), not against someone forging a collision. */
#include <stdio.h>

#include "hash.h"

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t fmix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;

static uint64_t mix1(uint64_t k) { return rotl(k * c1, 31) * c2; }
static uint64_t mix2(uint64_t k) { return rotl(k * c2, 33) * c1; }

void qg_hash128(const void *data, size_t len, uint32_t seed, uint64_t out[2]) {
    const uint8_t *p = data;
    uint64_t h1 = seed, h2 = seed;
    size_t nblocks = len / 16;
    for (size_t i = 0; i < nblocks; i++, p += 16) {
        h1 ^= mix1(le64(p));
        h1 = rotl(h1, 27) + h2;
        h1 = h1 * 5 + 0x52dce729;
        h2 ^= mix2(le64(p + 8));
        h2 = rotl(h2, 31) + h1;
        h2 = h2 * 5 + 0x38495ab5;
    }
    uint64_t k1 = 0, k2 = 0;
    size_t rest = len & 15;
    for (size_t i = rest; i-- > 0;) /* the tail, as the reference's switch reads it */
        if (i >= 8)
            k2 ^= (uint64_t)p[i] << ((i - 8) * 8);
        else
            k1 ^= (uint64_t)p[i] << (i * 8);
    if (rest > 8)
        h2 ^= mix2(k2);
    if (rest > 0)
        h1 ^= mix1(k1);
    h1 ^= (uint64_t)len;
    h2 ^= (uint64_t)len;
    h1 += h2;
    h2 += h1;
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 += h2;
    h2 += h1;
    out[0] = h1;
    out[1] = h2;
}

void qg_hash_hex(const uint64_t h[2], char hex[33]) {
    snprintf(hex, 33, "%016llx%016llx", (unsigned long long)h[0], (unsigned long long)h[1]);
}
