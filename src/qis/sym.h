/* sym.h - names the frames of a host crash and says whose code each is.
 *
 * Runs out of process (in the supervisor), on the record the crashed
 * program's handler wrote: raw frame addresses, and the modules that were
 * loaded with their load addresses and build ids. Each frame is symbolised
 * (elfutils libdwfl, reading the module files from disk) and attributed to a
 * component:
 *  1. by its compilation unit (debug information): a file belongs to the
 *     component whose entry functions it defines, or the one named by a
 *     QTN_SOURCE_OF(component) mark in it; static helpers included;
 *  2. without debug information, by the frame's function: an entry of a
 *     component is that component's;
 *  3. a shared library other than the program that defines entries of one
 *     component only (a third-party library isolated as one component) is
 *     wholly that component's.
 * A module whose file now has another build id than the one that crashed is
 * not read (its frames stay raw, and the note says so). Module paths come
 * from what a program wrote: only regular files (or symlinks to them) are
 * opened, non-blocking; a FIFO, a device, a directory or a socket is not
 * opened at all, and the note says what it is. */
#ifndef QTN_SYM_H
#define QTN_SYM_H

#include <stddef.h>
#include <stdint.h>

typedef struct qs_module {
    const char *path;     /* as loaded */
    uint64_t base;        /* load bias (dlpi_addr) */
    const char *build_id; /* hex, "" when unknown */
} qs_module;

typedef struct qs_comp {
    const char *name;
    const char *const *entries; /* entry function names */
    int nentries;
} qs_comp;

typedef struct qs_frame {
    uint64_t addr;
    char symbol[200];    /* "fn+0x1c (file.c:42)", "libz.so.1+0x3f10", or "?" */
    char component[64];  /* "" when the frame is in no component's code */
} qs_frame;

/* Symbolises and attributes n frames (innermost first; frames after the
 * first are return addresses). `exe` is the program's path (rule 3 never
 * applies to it). Fills out[0..n-1]. Returns 0; on a problem that leaves
 * frames unnamed (a missing file, a build id mismatch) still returns 0 and
 * writes one line saying so to note (if not NULL). */
int qs_symbolize(const char *exe, const qs_module *mods, int nmods, const qs_comp *comps,
                 int ncomps, const uint64_t *addrs, int n, qs_frame *out, char *note,
                 size_t notelen);

#endif
