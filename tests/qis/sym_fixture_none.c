/* sym_fixture_none.c - code of no component. */
#include "sym_fixture.h"

static volatile int sink;

__attribute__((noinline)) int sn_work(int x) {
    sink = x;
    return sink * 7 + 4;
}
