/* fuzz_annotations.c - libFuzzer target for what `quarantine gen` reads from
 * annotation text (sidecars and headers): each input line is an annotation
 * as the preprocessor leaves it ("qtn in n * 2"). Whatever comes in, reading
 * it must not fault, and a count it accepts must be safe to copy into
 * generated C: balanced, no statement or string characters, and no side
 * effect (no ++, --, or assignment; comparisons stay). Each line is read a
 * second time with a few characters swapped for operators (';' -> '=',
 * '"' -> '-', '[' -> '+'), so that the text replay, whose words have none
 * of them, makes assignments, increments and comparisons too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ann.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool names(void *ctx, const char *id, size_t n) {
    (void)ctx;
    return (n == 1 && (id[0] == 'n' || id[0] == 'm')) || (n == 3 && !memcmp(id, "len", 3));
}

static void check_safe(const char *e) {
    int depth = 0;
    for (const char *s = e; *s; s++) {
        if (strchr(";{}\"'\\#,", *s) || ((unsigned char)*s < 0x20 && *s != '\t'))
            abort();
        depth += *s == '(' || *s == '[';
        depth -= *s == ')' || *s == ']';
        if (depth < 0)
            abort();
    }
    if (depth)
        abort();
    for (const char *s = e; *s; s++) {
        if ((s[0] == '+' || s[0] == '-') && s[1] == s[0])
            abort(); /* ++ or -- */
        if (*s != '=')
            continue;
        if (s[1] == '=') { /* == */
            s++;
            continue;
        }
        char b = s > e ? s[-1] : 0, bb = s > e + 1 ? s[-2] : 0;
        if (!(b == '!' || ((b == '<' || b == '>') && bb != b)))
            abort(); /* an assignment: only != <= >= may end in a lone '=' */
    }
}

/* One line read as the generator reads it. */
static void one(qg_param *p, char *line) {
    char err[256];
    err[0] = 0;
    if (qg_ann_apply(line, p, err, sizeof err) == 0 && p->count) {
        int rc = qg_count_check(p->count, names, NULL, err, sizeof err);
        if (rc == 0)
            check_safe(p->count);
        else if (rc != -1 && rc != -2)
            abort();
    }
    if (strlen(err) >= sizeof err)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    qg_param p;
    memset(&p, 0, sizeof p);
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        one(&p, line);
        for (char *c = line; *c; c++) /* the same line, with operators in it */
            *c = *c == ';' ? '=' : *c == '"' ? '-' : *c == '[' ? '+' : *c;
        one(&p, line);
    }
    free(p.count);
    free(p.actual);
    free(p.free_fn), free(p.alloc_fn), free(p.each), free(p.active);
    free(text);
    return 0;
}
