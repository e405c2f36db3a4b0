/* main.c - a program whose own code, or whose components running in it,
 * crash. The runtime's crash handler writes the record; `quarantine run`
 * attributes the frames.
 *   hostcrash entry     SIGSEGV in parse_page (parser), called from render
 *   hostcrash static    SIGSEGV in a static helper of parser.c
 *   hostcrash marked    SIGSEGV in parser_util.c (QTN_SOURCE_OF(parser))
 *   hostcrash abort     abort() in the parser
 *   hostcrash overflow  the parser's recursion overflows the stack
 *   hostcrash outside   SIGSEGV in this file, in no component
 *   hostcrash twice     two threads crash at once: one report, no hang
 *   hostcrash ok        no crash; exits 0 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pages.h"

/* under AddressSanitizer, let a crash be a crash */
const char *__asan_default_options(void);
__attribute__((used)) const char *__asan_default_options(void) {
    return "handle_segv=0:handle_sigbus=0:handle_abort=0";
}

__attribute__((noinline)) static int outside(void) {
    volatile uintptr_t bad = 40;
    return *(volatile int *)bad;
}

static void *crasher(void *arg) {
    (void)arg;
    usleep(20000);
    return (void *)(intptr_t)render_page(PAGES_IN_ENTRY);
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    if (qtn_init(NULL))
        return 3;
    const char *m = argv[1];
    if (!strcmp(m, "ok"))
        return render_page(PAGES_OK) > 0 ? 0 : 4;
    if (!strcmp(m, "entry"))
        return render_page(PAGES_IN_ENTRY);
    if (!strcmp(m, "static"))
        return render_page(PAGES_IN_STATIC);
    if (!strcmp(m, "marked"))
        return render_page(PAGES_IN_MARKED);
    if (!strcmp(m, "abort"))
        return parse_page(PAGES_ABORT);
    if (!strcmp(m, "overflow"))
        return parse_page(PAGES_OVERFLOW);
    if (!strcmp(m, "outside"))
        return outside();
    if (!strcmp(m, "twice")) {
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, crasher, NULL);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        return 0;
    }
    return 2;
}
