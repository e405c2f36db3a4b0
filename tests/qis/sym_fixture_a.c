/* sym_fixture_a.c - a component's file: one entry and a static helper. */
#include "sym_fixture.h"

static volatile int sink; /* keeps the bodies apart (no folding) */

__attribute__((noinline)) static int sa_helper(int x) {
    sink = x;
    return x * 3 + sink;
}

__attribute__((noinline)) int sa_entry(int x) { return sa_helper(x + 1) - 2; }

sym_fn sa_helper_address(void) { return sa_helper; }
