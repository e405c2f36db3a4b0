/* parser_util.c - helpers of the parser component. The file defines none of
 * its entries, so it says whose code it is. */
#include "parser_util.h"
#include "quarantine.h"

QTN_SOURCE_OF(parser)

__attribute__((noinline)) int parser_scan(const char *s) {
    volatile const char *p = s;
    int n = 0;
    while (p[n]) /* s points at nothing mapped when asked to crash here */
        n++;
    return n;
}
