/* render.c - the render component. */
#include <stdio.h>

#include "parts.h"

int render_fields(const int32_t *f, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%d,%d,%d,%d", f[0], f[1], f[2], f[3]);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
