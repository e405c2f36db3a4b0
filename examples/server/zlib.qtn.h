/* zlib.qtn.h - component `zlib`: zlib itself, isolated through a sidecar
 * (a header of annotated redeclarations of <zlib.h>'s functions, which we
 * cannot edit; the compiler checks they agree with it).
 *
 * Only one-shot functions cross: gzip.c frames compress2()'s output as gzip,
 * so no z_stream (whose state pointer would have to outlive a call, and a
 * restart) ever leaves the component. Not crc32(): a --wrap of it would also
 * catch libquarantine's own call in its crash handler; crc32_z() is the same
 * function under another name.
 *
 * Fault values are values zlib never returns for good data: the caller
 * serves the body uncompressed. */
#ifndef SRV_ZLIB_QTN_H
#define SRV_ZLIB_QTN_H

#include <zlib.h>

#include "quarantine.h"

QTN_COMPONENT(zlib) QTN_FAULT(Z_MEM_ERROR)
int compress2(Bytef *dest QTN_OUT(*destLen) QTN_ACTUAL(*destLen), uLongf *destLen QTN_INOUT(1),
              const Bytef *source QTN_IN(sourceLen), uLong sourceLen, int level);

/* a CRC-32 is below 2^32: the fault value cannot be one */
QTN_COMPONENT(zlib) QTN_FAULT(~0UL)
uLong crc32_z(uLong crc, const Bytef *buf QTN_IN(len), z_size_t len);

#endif
