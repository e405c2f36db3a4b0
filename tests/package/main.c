/* main.c - a program outside the source tree built against the installed
 * package: it prints what the component answered and where it ran. */
#include <stdio.h>
#include <unistd.h>

#include "quarantine.h"
#include "shout.h"

int main(void) {
    int r = qtn_init(NULL);
    if (r) {
        fprintf(stderr, "qtn_init: %s\n", qtn_strerror(r));
        return 1;
    }
    char out[32];
    ext_len n = shout("isolated", out, sizeof out);
    int elsewhere = shout_pid() != (int)getpid();
    printf("%.*s %s\n", n > 0 ? (int)n : 0, out, elsewhere ? "in a domain" : "in the host");
    qtn_shutdown();
    return n == 8 ? 0 : 1;
}
