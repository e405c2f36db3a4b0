/* crash.c - zlib_test_crash(), which the sidecar adds to the zlib component
 * so that the test can crash the component's domain. */
#include <signal.h>
#include <stdint.h>

#include "zlib.qtn.h"

int zlib_test_crash(int how) {
    if (how == 1) {
        volatile uintptr_t addr = 8;
        *(volatile int *)addr = 1;
    }
    if (how == 2)
        raise(SIGABRT);
    return 0;
}
