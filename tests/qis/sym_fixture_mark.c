/* sym_fixture_mark.c - a file with no entries, marked as markcomp's. */
#include "quarantine.h"
#include "sym_fixture.h"

QTN_SOURCE_OF(markcomp)

static volatile int sink;

__attribute__((noinline)) int sm_work(int x) {
    sink = x;
    return sink * 5 - 1;
}
