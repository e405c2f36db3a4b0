/* gzip.c - a gzip member around zlib's deflate data.
 *
 * compress2() writes the zlib format (RFC 1950): a 2-byte header, the raw
 * deflate data, an Adler-32. A gzip member (RFC 1952) is a 10-byte header,
 * the same raw deflate data, the CRC-32 and the length mod 2^32, both little
 * endian. So the deflate data is compressed once, in zlib's domain, and only
 * its frame changes here. */
#include "gzip.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zlib.qtn.h"

static void le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

int gz_encode(const void *src, size_t n, int level, void **out, size_t *outlen) {
    *out = NULL;
    *outlen = 0;
    if (n > UINT32_MAX)
        return -1;
    /* zlib's compressBound(), with room to spare, plus the gzip frame */
    uLongf zcap = (uLongf)(n + n / 1000 + 64);
    unsigned char *buf = malloc(zcap + 10 + 8);
    if (!buf)
        return -1;
    /* deflate data goes 8 bytes in, so that after dropping zlib's 2-byte
     * header it starts at buf + 10, behind the gzip header */
    unsigned char *z = buf + 8;
    uLongf zlen = zcap;
    /* degrade: Z_MEM_ERROR is also the fault value of an isolated zlib that
     * crashed; either way the body goes out uncompressed */
    if (compress2(z, &zlen, (const Bytef *)src, (uLong)n, level) != Z_OK || zlen < 6 ||
        (z[1] & 0x20)) { /* a preset dictionary: not raw deflate after 2 bytes */
        free(buf);
        return -1;
    }
    uLong crc = crc32_z(0, (const Bytef *)src, (z_size_t)n); /* 0: zlib's initial CRC */
    if (crc > 0xffffffffUL) {                                /* the fault value */
        free(buf);
        return -1;
    }
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}; /* unix */
    memcpy(buf, head, sizeof head);
    size_t dlen = zlen - 2 - 4; /* deflate data: zlib's header and Adler-32 off */
    le32(buf + 10 + dlen, (uint32_t)crc);
    le32(buf + 10 + dlen + 4, (uint32_t)n);
    *out = buf;
    *outlen = 10 + dlen + 8;
    return 0;
}
