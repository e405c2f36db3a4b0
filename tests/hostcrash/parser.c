/* parser.c - the parser component: its entry, and a static helper. */
#include <stdint.h>
#include <stdlib.h>

#include "pages.h"
#include "parser_util.h"

__attribute__((noinline)) static int parse_field(const char *at) {
    volatile const char *p = at;
    return p[0]; /* at is NULL when asked to crash here */
}

__attribute__((noinline)) int parse_page(int how) {
    if (how == PAGES_IN_ENTRY) {
        volatile uintptr_t bad = 24;
        return *(volatile int *)bad;
    }
    if (how == PAGES_IN_STATIC)
        return parse_field(NULL) + 1;
    if (how == PAGES_IN_MARKED)
        return parser_scan(NULL) + 1;
    if (how == PAGES_ABORT)
        abort();
    return parse_field("ok") + 1;
}
