/* sc_impl.c - the functions the stub benchmark calls, in their own object
 * so that no call is inlined. */
#include "sc.h"

int sc_nop(int x) { return x + 1; }
int sc_plain(int x) { return x + 1; }
