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
    return parse_field("ok") + 1;
}
