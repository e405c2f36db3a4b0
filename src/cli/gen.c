/* gen.c - `quarantine gen`: annotated headers in, stubs and link flags out.
 * Outputs are written to temporary files and renamed into place only when
 * everything succeeded, so an error leaves no half-written output, and an
 * output whose content would not change is left untouched (its timestamp
 * too, so builds do not redo work). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../gen/model.h"
#include "cli.h"

static void help(FILE *f) {
    fputs("usage: quarantine gen -o STUBS.c [--flags FILE] [--source FILE]... [-I DIR]\n"
          "                      [-D NAME[=VALUE]] HEADER...\n"
          "\n"
          "Reads C headers whose entry functions carry QTN_ annotations (see\n"
          "quarantine.h) and writes their stubs. Link the program with the stubs,\n"
          "libquarantine and the flags written to FILE (one -Wl,--wrap=NAME per entry):\n"
          "calls from other objects then go through the stubs, and each component\n"
          "runs in the host or in its own process as the plan says.\n"
          "\n"
          "  -o FILE        the stubs (C source)\n"
          "  --flags FILE   the link flags (default: STUBS.c with .flags for .c)\n"
          "  --source FILE  a C source of the program (repeatable): a file that defines\n"
          "                 entries of a component, or is marked QTN_SOURCE_OF(component),\n"
          "                 is that component's code, and its contents go into the\n"
          "                 component's code identity (qtn_component.code_id)\n"
          "  --depfile FILE a make-style list of every file the headers read, and the sources\n"
          "  --stamp FILE   touched on every successful run, and the target the depfile\n"
          "                 names (for build tools: the stubs change only when their bytes do)\n"
          "  -I DIR, -D X   passed to the parser, as to a compiler (headers and sources)\n"
          "\n"
          "example:\n"
          "  quarantine gen -o codec_stubs.c -I include include/codec.h\n"
          "  cc -c codec_stubs.c -I include $(pkg-config --cflags quarantine)\n"
          "  cc -o server main.o codec.o codec_stubs.o $(pkg-config --libs quarantine) \\\n"
          "     @codec_stubs.flags\n"
          "(an installed quarantine: its lib/pkgconfig on PKG_CONFIG_PATH; in CMake,\n"
          "find_package(Quarantine) and quarantine_add_components() do all of it)\n"
          "\n"
          "exit codes: 0 written (or already up to date), 1 bad input (each error is\n"
          "printed as file:line:col: error: ...), 2 bad usage, 3 cannot write output\n",
          f);
}

/* Writes the temporary file into place unless the target already holds the
 * same bytes. Returns 0 or -1. */
static int install(const char *tmp, const char *path) {
    FILE *a = fopen(tmp, "rb"), *b = fopen(path, "rb");
    int same = a && b;
    while (same) {
        int ca = fgetc(a), cb = fgetc(b);
        if (ca != cb)
            same = 0;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (a)
        fclose(a);
    if (b)
        fclose(b);
    if (same)
        return unlink(tmp);
    return rename(tmp, path);
}

int qtn_cli_gen(int argc, char **argv) {
    const char *outp = NULL, *flagsp = NULL, *depp = NULL;
    const char *stampp = NULL;
    char **headers = calloc((size_t)argc, sizeof *headers);
    char **sources = calloc((size_t)argc, sizeof *sources);
    char **args = calloc((size_t)argc * 2 + 2, sizeof *args);
    int nh = 0, na = 0, ns = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            free(headers), free(sources), free(args);
            return QTN_EXIT_OK;
        }
        if ((!strcmp(a, "-o") || !strcmp(a, "--flags") || !strcmp(a, "--depfile") ||
             !strcmp(a, "--source") || !strcmp(a, "--stamp") || !strcmp(a, "-I") ||
             !strcmp(a, "-D")) &&
            i + 1 >= argc) {
            fprintf(stderr, "quarantine: gen: %s needs a value\n", a);
            free(headers), free(sources), free(args);
            return QTN_EXIT_USAGE;
        }
        if (!strcmp(a, "-o"))
            outp = argv[++i];
        else if (!strcmp(a, "--flags"))
            flagsp = argv[++i];
        else if (!strcmp(a, "--depfile"))
            depp = argv[++i];
        else if (!strcmp(a, "--stamp"))
            stampp = argv[++i];
        else if (!strcmp(a, "--source"))
            sources[ns++] = argv[++i];
        else if (!strcmp(a, "-I") || !strcmp(a, "-D")) {
            args[na++] = (char *)a;
            args[na++] = argv[++i];
        } else if (!strncmp(a, "-I", 2) || !strncmp(a, "-D", 2))
            args[na++] = (char *)a;
        else if (a[0] == '-') {
            fprintf(stderr, "quarantine: gen: unknown option '%s' (try quarantine gen --help)\n", a);
            free(headers), free(sources), free(args);
            return QTN_EXIT_USAGE;
        } else
            headers[nh++] = (char *)a;
    }
    if (!outp || !nh) {
        fprintf(stderr, "quarantine: gen: %s (try quarantine gen --help)\n",
                !outp ? "say where the stubs go with -o FILE" : "name at least one header");
        free(headers), free(sources), free(args);
        return QTN_EXIT_USAGE;
    }
    char *flags_default = NULL;
    if (!flagsp) {
        size_t n = strlen(outp);
        flags_default = malloc(n + 8);
        strcpy(flags_default, outp);
        if (n > 2 && !strcmp(flags_default + n - 2, ".c"))
            flags_default[n - 2] = 0;
        strcat(flags_default, ".flags");
        flagsp = flags_default;
    }
    for (int i = 0; i < nh + ns; i++) {
        const char *in = i < nh ? headers[i] : sources[i - nh];
        if (access(in, R_OK) != 0) {
            fprintf(stderr, "quarantine: gen: %s: %s\n", in, strerror(errno));
            free(headers), free(sources), free(args), free(flags_default);
            return QTN_EXIT_INPUT;
        }
    }
    /* quarantine.h: beside an installed generator (bin/../include), else in
     * the source tree it was built from */
    static char inc[4200];
    char exe[4000];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el > 0) {
        exe[el] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(inc, sizeof inc, "%s/../include/quarantine.h", exe);
            if (access(inc, R_OK) == 0) {
                snprintf(inc, sizeof inc, "-I%s/../include", exe);
                args[na++] = inc;
            }
        }
    }
#ifdef QTN_INCLUDE_DIR
    args[na++] = "-I" QTN_INCLUDE_DIR;
#endif
    qg_model m = {0};
    int errors = qg_parse(&m, headers, nh, args, na, stderr);
    if (!errors && ns) /* whose code each source is, and each component's identity */
        errors = qg_identify(&m, sources, ns, args, na, stderr);
    int rc = QTN_EXIT_OK;
    if (errors) {
        fprintf(stderr, "quarantine: gen: %d error%s; nothing written\n", errors,
                errors == 1 ? "" : "s");
        rc = QTN_EXIT_INPUT;
        goto out;
    }
    size_t lo = strlen(outp) + 16, lf = strlen(flagsp) + 16;
    char *to = malloc(lo), *tf = malloc(lf);
    snprintf(to, lo, "%s.tmp%d", outp, (int)getpid());
    snprintf(tf, lf, "%s.tmp%d", flagsp, (int)getpid());
    FILE *fo = fopen(to, "w"), *ff = fopen(tf, "w");
    int bad = !fo || !ff;
    if (!bad)
        bad = qg_emit_stubs(&m, fo, "quarantine gen") || qg_emit_flags(&m, ff);
    if (fo && fclose(fo))
        bad = 1;
    if (ff && fclose(ff))
        bad = 1;
    if (!bad && depp) { /* written as it is: tools read it after every run */
        FILE *fd = fopen(depp, "w");
        bad = !fd || qg_emit_deps(&m, fd, stampp ? stampp : outp);
        if (fd && fclose(fd))
            bad = 1;
    }
    if (bad || install(to, outp) || install(tf, flagsp)) {
        fprintf(stderr, "quarantine: gen: cannot write %s or %s: %s\n", outp, flagsp,
                strerror(errno));
        unlink(to);
        unlink(tf);
        rc = QTN_EXIT_OUTPUT;
    } else if (stampp) { /* the run is done: its time is the stamp's */
        FILE *fs = fopen(stampp, "a");
        if (!fs || fclose(fs) || utimensat(AT_FDCWD, stampp, NULL, 0)) {
            fprintf(stderr, "quarantine: gen: cannot write %s: %s\n", stampp, strerror(errno));
            rc = QTN_EXIT_OUTPUT;
        }
    }
    free(to);
    free(tf);
out:
    qg_model_free(&m);
    free(headers);
    free(sources);
    free(args);
    free(flags_default);
    return rc;
}
