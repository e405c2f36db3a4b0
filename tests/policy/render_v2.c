/* render.c - the render component, as a later release has it (another
 * build of the same program: only this component changed). */
#include <stdio.h>

#include "parts.h"

int render_fields(const int32_t *f, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%d,%d,%d,%d", f[0], f[1], f[2], f[3]); /* release 2 */
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
