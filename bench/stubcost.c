/* stubcost.c - instructions a generated stub adds to a direct call, counted
 * by callgrind (deterministic, whatever else the machine does). Run by
 * stubcost.sh, which runs this under valgrind and prints
 * `direct_stub_extra_instr N instr`. Alone, it just runs the loops. */
#include <stdio.h>
#include <stdlib.h>

#include "sc.h"

#define N 1000000

/* not static, so that callgrind finds them by name (and no clone of them
 * specialised for N replaces them) */
int loop_plain(int n);
int loop_stub(int n);

__attribute__((noinline)) int loop_plain(int n) {
    int s = 0;
    for (int i = 0; i < n; i++)
        s = sc_plain(s);
    return s;
}

__attribute__((noinline)) int loop_stub(int n) {
    int s = 0;
    for (int i = 0; i < n; i++)
        s = sc_nop(s); /* the component is in the host: the stub calls directly */
    return s;
}

int main(void) {
    if (sc_nop(1) != 2) /* the first call goes the slow way and sets the fast one */
        return 1;
    volatile int n = N;
    int a = loop_plain(n), b = loop_stub(n);
    printf("calls %d %d\n", a, b);
    return a == N && b == N ? 0 : 1;
}
