/* zlib.qtn.h - a sidecar: annotations for zlib's own header, which we cannot
 * edit. It is a header of redeclarations: the compiler checks they agree
 * with <zlib.h>, and `quarantine gen` reads their annotations. */
#ifndef ZLIB_QTN_H
#define ZLIB_QTN_H

#include <zlib.h>

#include "quarantine.h"

/* what of a z_stream crosses with it: the buffers it points to; zlib's own
 * state, allocators and messages stay as they are (handles) */
QTN_FIELD(z_stream, next_in, QTN_IN(avail_in));
QTN_FIELD(z_stream, next_out, QTN_OUT(avail_out));
QTN_FIELD(z_stream, msg, QTN_HANDLE);
QTN_FIELD(z_stream, state, QTN_HANDLE);
QTN_FIELD(z_stream, zalloc, QTN_HANDLE);
QTN_FIELD(z_stream, zfree, QTN_HANDLE);
QTN_FIELD(z_stream, opaque, QTN_HANDLE);

QTN_COMPONENT(zlib) QTN_FAULT(Z_MEM_ERROR)
int compress2(Bytef *dest QTN_OUT(*destLen) QTN_ACTUAL(*destLen), uLongf *destLen QTN_INOUT(1),
              const Bytef *source QTN_IN(sourceLen), uLong sourceLen, int level);

QTN_COMPONENT(zlib) QTN_FAULT(Z_MEM_ERROR)
int uncompress(Bytef *dest QTN_OUT(*destLen) QTN_ACTUAL(*destLen), uLongf *destLen QTN_INOUT(1),
               const Bytef *source QTN_IN(sourceLen), uLong sourceLen);

QTN_COMPONENT(zlib) QTN_FAULT(0)
uLong crc32(uLong crc, const Bytef *buf QTN_IN(len), uInt len);

QTN_COMPONENT(zlib) QTN_FAULT(Z_STREAM_ERROR)
int deflateInit_(z_streamp strm QTN_INOUT(1), int level, const char *version QTN_STRING,
                 int stream_size);

QTN_COMPONENT(zlib) QTN_FAULT(Z_STREAM_ERROR)
int deflate(z_streamp strm QTN_INOUT(1), int flush);

QTN_COMPONENT(zlib) QTN_FAULT(Z_STREAM_ERROR)
int deflateEnd(z_streamp strm QTN_INOUT(1));

/* not zlib's: a way for the test to crash the component's domain */
QTN_COMPONENT(zlib) QTN_FAULT(-1)
int zlib_test_crash(int how);

#endif
