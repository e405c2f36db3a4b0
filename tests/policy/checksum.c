/* checksum.c - the checksum component (FNV-1a). */
#include "parts.h"

uint32_t checksum(const uint8_t *buf, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ buf[i]) * 16777619u;
    return h;
}
