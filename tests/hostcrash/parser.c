/* parser.c - the parser component: its entry, and a static helper. */
#include <stdint.h>
#include <stdlib.h>

#include "pages.h"
#include "parser_util.h"

/* A pointer no page is mapped at; not NULL, which the undefined-behaviour
 * sanitizer would catch before the fault. */
#define UNMAPPED ((const char *)(uintptr_t)32)

__attribute__((noinline)) static int parse_field(const char *at) {
    volatile const char *p = at;
    return p[0]; /* at is UNMAPPED when asked to crash here */
}

/* Nests as deep as it is told (far deeper than any stack); each level keeps
 * a buffer live across the call, so the compiler cannot make it a loop. */
__attribute__((noinline)) static int parse_nested(int depth, int limit) {
    volatile char level[512];
    level[depth % sizeof level] = (char)depth;
    if (depth == limit)
        return 0;
    return parse_nested(depth + 1, limit) + level[(depth * 7) % sizeof level];
}

__attribute__((noinline)) int parse_page(int how) {
    if (how == PAGES_IN_ENTRY) {
        volatile uintptr_t bad = 24;
        return *(volatile int *)bad;
    }
    if (how == PAGES_IN_STATIC)
        return parse_field(UNMAPPED) + 1;
    if (how == PAGES_IN_MARKED)
        return parser_scan(UNMAPPED) + 1;
    if (how == PAGES_ABORT)
        abort();
    if (how == PAGES_OVERFLOW)
        return parse_nested(0, 1 << 30);
    return parse_field("ok") + 1;
}
