/* g2.c - the g2 component. */
#include <time.h>

#include "parts.h"

int g2_step(const uint8_t *block, size_t n, int32_t hang_ms) {
    if (hang_ms > 0) {
        struct timespec t = {hang_ms / 1000, (long)(hang_ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
    }
    return block[n / 2];
}
