/* replay.c - runs a fuzz target without libFuzzer: over the files named on
 * the command line, or over a fixed series of pseudo-random inputs (so any
 * compiler can run it as a test). With -t, inputs are text: annotation-like
 * words, names, operators and stray characters. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv) {
    if (argc > 1 && argv[1][0] != '-') {
        for (int i = 1; i < argc; i++) {
            FILE *f = fopen(argv[i], "rb");
            if (!f) {
                perror(argv[i]);
                return 2;
            }
            static uint8_t buf[1 << 20];
            size_t n = fread(buf, 1, sizeof buf, f);
            fclose(f);
            LLVMFuzzerTestOneInput(buf, n);
        }
        return 0;
    }
    long runs = argc > 2 ? strtol(argv[2], NULL, 10) : 50000; /* replay -n N [-t] */
    int text = argc > 3 && argv[3][0] == '-' && argv[3][1] == 't';
    static uint8_t buf[4096];
    static const char *const words[] = {"qtn ", "in ", "out ", "inout_bytes ", "actual ", "*",
                                        "return", "string", "n", "len", "sizeof(", ")", "(",
                                        "[", "]", " * ", "+", ";", "\"", "\n", "m", "42",
                                        "field ", "callback", "zz", "owned", "allocated ",
                                        ", ", "free", "each ", "active ", ": "};
    for (long r = 0; r < runs && text; r++) {
        size_t n = 0, k = next() % 12;
        for (size_t i = 0; i < k; i++) {
            const char *w = words[next() % (sizeof words / sizeof words[0])];
            size_t l = strlen(w);
            if (n + l >= sizeof buf)
                break;
            memcpy(buf + n, w, l);
            n += l;
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    for (long r = 0; r < runs && !text; r++) {
        size_t n = next() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)next();
        /* small values, often: lengths and offsets near the real ones */
        for (size_t i = 0; i < n; i += 1 + next() % 16)
            buf[i] = (uint8_t)(next() % 40);
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("%ld inputs, no fault\n", runs);
    return 0;
}
