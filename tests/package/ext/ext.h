/* ext.h - a library header the annotated header includes: found through the
 * include directories of a target the program links, as the compiler finds
 * it, so `quarantine gen` must find it the same way. */
#ifndef EXT_H
#define EXT_H
#include <stdint.h>
typedef int32_t ext_len;
#endif
