/* parser.c - the parser component: fields of a line, and a bug. */
#include <string.h>

#include "parts.h"

static int32_t *nowhere(const char *line) {
    return line[0] == 'B' ? NULL : (int32_t *)line; /* never used for a good line */
}

int parse_line(const char *line, int32_t *fields) {
    if (!strncmp(line, "BAD", 3)) {
        volatile int32_t *p = nowhere(line);
        *p = 1; /* the bug: a NULL dereference */
    }
    int n = 0;
    memset(fields, 0, 4 * sizeof *fields);
    for (const char *s = line; *s && n < 4; s++)
        if (*s >= '0' && *s <= '9') {
            fields[n] = fields[n] * 10 + (*s - '0');
            if (s[1] < '0' || s[1] > '9')
                n++;
        }
    return n;
}
