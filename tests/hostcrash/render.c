/* render.c - the render component: it calls the parser. */
#include "pages.h"

__attribute__((noinline)) int render_page(int how) {
    int r = parse_page(how);
    return r < 0 ? -1 : r + 1; /* not a tail call: render stays on the stack */
}
