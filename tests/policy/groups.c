/* groups.c - the g1 component: it calls g2 with a block. */
#include "parts.h"

int g1_work(int32_t x, int32_t hang_ms) {
    uint8_t block[16384];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (uint8_t)(x + i);
    int r = g2_step(block, sizeof block, hang_ms);
    return r < 0 ? -1 : r + 1;
}
