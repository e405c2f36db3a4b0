/* shout.c - the component's code. */
#include "shout.h"

#include <ctype.h>
#include <unistd.h>

ext_len shout(const char *s, char *out, size_t cap) {
    size_t n = 0;
    for (; s[n] && n < cap; n++)
        out[n] = (char)toupper((unsigned char)s[n]);
    return (ext_len)n;
}

int shout_pid(void) { return (int)getpid(); }
