/* sym.c - names the frames of a host crash and attributes them to components
 * (see sym.h for the rules).
 *
 * One Dwfl per call, reporting the recorded modules at their recorded load
 * biases, so the files on disk are read as they lay in the crashed process.
 * Verdicts that cost a scan (a compilation unit's, a library's) are made once
 * per call and kept beside the modules. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sym.h"

#define NOBODY (-1) /* no component's code */
#define TWO (-2)    /* more than one component's: no verdict */

/* The function QTN_SOURCE_OF(NAME) defines: "this file is NAME's". */
static const char mark_prefix[] = "qtn__source_of__";

/* Whose code something is: a component of comps (comp), or the component a
 * mark names (mark, which wins). */
typedef struct owner {
    int comp;         /* index in comps, NOBODY or TWO */
    const char *mark; /* the name after mark_prefix, or NULL */
} owner;

/* A reported module, found again through its Dwfl_Module's userdata. */
typedef struct mod {
    const qs_module *rec;
    bool bad;    /* another build than the one that crashed: not read */
    bool looked; /* lib is known */
    int lib;     /* rule 3: the component owning the whole module, or NOBODY */
} mod;

/* A compilation unit's verdict (rule 1). */
typedef struct cu_seen {
    Dwfl_Module *m;
    Dwarf_Off off;
    owner o;
} cu_seen;

/* Where one frame's code is, as far as it was found. */
typedef struct spot {
    Dwfl_Module *m;
    mod *md;
    Dwarf_Addr a, look; /* the frame's address; the one looked up */
    const char *fn;     /* its function, or NULL */
    GElf_Off off;       /* look - the function's start */
    Dwarf_Die *cu;      /* its compilation unit, or NULL */
    Dwarf_Addr bias;    /* the unit's addresses + bias = the process's */
} spot;

typedef struct notebuf {
    char *p;
    size_t len, n;
} notebuf;

typedef struct ctx {
    Dwfl *dwfl;
    const char *exe;
    const qs_comp *comps;
    int ncomps;
    mod *mods;
    cu_seen *cus;
    int ncus, capcus;
    notebuf note;
} ctx;

/* ---- the note ------------------------------------------------------------------- */

/* Adds one problem to the note's single line, "; " between problems; what
 * does not fit is cut. */
static void say(notebuf *nt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(notebuf *nt, const char *fmt, ...) {
    if (!nt->p || nt->n + 1 >= nt->len)
        return;
    if (nt->n) {
        int k = snprintf(nt->p + nt->n, nt->len - nt->n, "; ");
        nt->n = k > 0 && (size_t)k < nt->len - nt->n ? nt->n + (size_t)k : nt->len - 1;
    }
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(nt->p + nt->n, nt->len - nt->n, fmt, ap);
    va_end(ap);
    nt->n = k > 0 && (size_t)k < nt->len - nt->n ? nt->n + (size_t)k : nt->len - 1;
}

/* ---- the modules ---------------------------------------------------------------- */

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The build id the file has now, as hex ("" when it has none). */
static void file_build_id(Dwfl_Module *m, char *hex, size_t len) {
    Dwarf_Addr bias;
    const unsigned char *bits;
    GElf_Addr vaddr;
    hex[0] = 0;
    dwfl_module_getelf(m, &bias); /* makes sure the id was read */
    int k = dwfl_module_build_id(m, &bits, &vaddr);
    size_t j = 0;
    for (int i = 0; i < k && j + 2 < len; i++) {
        hex[j++] = "0123456789abcdef"[bits[i] >> 4];
        hex[j++] = "0123456789abcdef"[bits[i] & 15];
    }
    hex[j] = 0;
}

/* What a file that is not a regular file is, for the note. */
static const char *kind_of(mode_t m) {
    return S_ISFIFO(m)  ? "a FIFO"
           : S_ISCHR(m) ? "a character device"
           : S_ISBLK(m) ? "a block device"
           : S_ISDIR(m) ? "a directory"
           : S_ISSOCK(m) ? "a socket"
                         : "a special file";
}

/* Opens a module's file for reading, or returns -1 having said why in the
 * note. The path comes from a record a crashed (or any) program wrote: only
 * a regular file is opened (symlinks to one are followed), never a FIFO,
 * whose open would block the supervisor for ever, nor a device, whose open
 * can act (a tape rewinds, a watchdog starts). O_NONBLOCK covers a file
 * swapped for a FIFO between the stat and the open. */
static int open_module(ctx *c, const char *path) {
    struct stat before, sb;
    if (stat(path, &before) != 0) {
        say(&c->note, "cannot read %s: %s; its frames are left unnamed", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(before.st_mode)) {
        say(&c->note, "cannot read %s: %s, not a regular file (not opened); its frames are left "
            "unnamed", path, kind_of(before.st_mode));
        return -1;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        say(&c->note, "cannot read %s: %s; its frames are left unnamed", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_dev != before.st_dev ||
        sb.st_ino != before.st_ino) {
        say(&c->note, "cannot read %s: it changed while being opened; its frames are left "
            "unnamed", path);
        close(fd);
        return -1;
    }
    return fd;
}

/* Reports one recorded module; a file that cannot be read, or that is now
 * another build, is said in the note (the latter stays reported, marked bad,
 * so that its addresses are known to be its own and left unnamed). */
static void report_module(ctx *c, mod *md) {
    const qs_module *r = md->rec;
    if (!r->path || !r->path[0])
        return;
    int fd = open_module(c, r->path);
    if (fd < 0)
        return;
    /* libdwfl keeps fd with the module (closed by dwfl_end), not on failure */
    Dwfl_Module *m = dwfl_report_elf(c->dwfl, r->path, r->path, fd, r->base, false);
    if (!m) {
        close(fd);
        say(&c->note, "cannot read %s: %s; its frames are left unnamed", r->path, dwfl_errmsg(-1));
        return;
    }
    void **user;
    dwfl_module_info(m, &user, NULL, NULL, NULL, NULL, NULL, NULL);
    *user = md;
    char now[2 * 64 + 1];
    file_build_id(m, now, sizeof now);
    if (r->build_id && r->build_id[0] && strcasecmp(r->build_id, now) != 0) {
        md->bad = true;
        say(&c->note,
            "build id mismatch for %s: %s crashed, %s is on disk; its frames are "
            "left unnamed",
            r->path, r->build_id, now[0] ? now : "none");
    }
}

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
};

/* Makes c->dwfl with every recorded module in it; c->dwfl stays NULL when
 * libdwfl cannot start at all. */
static void report_all(ctx *c, const qs_module *mods, int nmods) {
    c->dwfl = dwfl_begin(&callbacks);
    if (!c->dwfl) {
        say(&c->note, "cannot read the modules: %s", dwfl_errmsg(-1));
        return;
    }
    dwfl_report_begin(c->dwfl);
    for (int i = 0; i < nmods; i++) {
        c->mods[i] = (mod){.rec = &mods[i], .lib = NOBODY};
        report_module(c, &c->mods[i]);
    }
    if (dwfl_report_end(c->dwfl, NULL, NULL) != 0) {
        say(&c->note, "cannot read the modules: %s", dwfl_errmsg(-1));
        dwfl_end(c->dwfl);
        c->dwfl = NULL;
    }
}

/* ---- attribution ---------------------------------------------------------------- */

/* The component that has `name` as an entry: its index, NOBODY, or TWO when
 * several do. */
static int entry_owner(const ctx *c, const char *name) {
    int k = NOBODY;
    for (int i = 0; i < c->ncomps; i++) {
        const qs_comp *p = &c->comps[i];
        if (!p->name || !p->entries)
            continue;
        for (int j = 0; j < p->nentries; j++) {
            if (p->entries[j] && strcmp(p->entries[j], name) == 0) {
                k = k == NOBODY ? i : TWO;
                break;
            }
        }
    }
    return k;
}

/* Folds one more verdict into *k: two different ones make TWO. */
static void merge(int *k, int more) {
    if (more == NOBODY || *k == more)
        return;
    *k = *k == NOBODY ? more : TWO;
}

static bool defines_code(Dwarf_Die *d) {
    return dwarf_hasattr(d, DW_AT_low_pc) || dwarf_hasattr(d, DW_AT_ranges);
}

/* Rule 1 for one compilation unit: the functions it defines (its direct
 * children; declarations and abstract inline copies have no code) say whose
 * it is. Two different marks are no verdict, like entries of two components. */
static owner cu_owner(const ctx *c, Dwarf_Die *cu) {
    owner o = {NOBODY, NULL};
    bool marks_differ = false;
    Dwarf_Die d;
    if (dwarf_child(cu, &d) != 0)
        return o;
    do {
        if (dwarf_tag(&d) != DW_TAG_subprogram || !defines_code(&d))
            continue;
        const char *name = dwarf_diename(&d);
        if (!name)
            continue;
        if (strncmp(name, mark_prefix, sizeof mark_prefix - 1) == 0) {
            const char *mk = name + sizeof mark_prefix - 1;
            marks_differ |= o.mark && strcmp(o.mark, mk) != 0;
            o.mark = mk;
        } else {
            merge(&o.comp, entry_owner(c, name));
        }
    } while (dwarf_siblingof(&d, &d) == 0);
    if (marks_differ)
        return (owner){TWO, NULL};
    return o;
}

/* Rule 1 for a frame, each unit scanned once per call. */
static owner by_unit(ctx *c, const spot *sp) {
    if (!sp->cu)
        return (owner){NOBODY, NULL}; /* no debug information there */
    Dwarf_Off off = dwarf_dieoffset(sp->cu);
    for (int i = 0; i < c->ncus; i++)
        if (c->cus[i].m == sp->m && c->cus[i].off == off)
            return c->cus[i].o;
    owner o = cu_owner(c, sp->cu);
    if (c->ncus < c->capcus)
        c->cus[c->ncus++] = (cu_seen){sp->m, off, o};
    return o;
}

static bool is_function_defined(const GElf_Sym *s) {
    return GELF_ST_TYPE(s->st_info) == STT_FUNC && s->st_shndx != SHN_UNDEF && s->st_value != 0;
}

/* Rule 3: a library (not the program) whose symbol table defines entries of
 * one component only is that component's. Scanned once per call. */
static int by_library(const ctx *c, Dwfl_Module *m, mod *md) {
    if (md->looked)
        return md->lib;
    md->looked = true;
    md->lib = NOBODY;
    if (c->exe && strcmp(md->rec->path, c->exe) == 0)
        return NOBODY;
    int k = NOBODY, n = dwfl_module_getsymtab(m);
    for (int i = 0; i < n && k != TWO; i++) {
        GElf_Sym s;
        GElf_Addr addr;
        const char *name = dwfl_module_getsym_info(m, i, &s, &addr, NULL, NULL, NULL);
        if (name && is_function_defined(&s))
            merge(&k, entry_owner(c, name));
    }
    md->lib = k == TWO ? NOBODY : k;
    return md->lib;
}

/* Rules 1, 2, 3 in turn for a frame. */
static owner owner_of(ctx *c, const spot *sp) {
    owner o = by_unit(c, sp);
    if (o.mark || o.comp >= 0)
        return o;
    int k = sp->fn ? entry_owner(c, sp->fn) : NOBODY;
    if (k >= 0)
        return (owner){k, NULL};
    return (owner){by_library(c, sp->m, sp->md), NULL};
}

/* ---- the frames ----------------------------------------------------------------- */

/* The compilation unit of the code at `look`. libdw finds it through
 * .debug_aranges, which clang does not emit by default (and libdw 0.188 does
 * not make up for); then each unit's own ranges are asked. */
static Dwarf_Die *unit_at(Dwfl_Module *m, Dwarf_Addr look, Dwarf_Addr *bias) {
    Dwarf_Die *cu = dwfl_module_addrdie(m, look, bias);
    if (cu)
        return cu;
    while ((cu = dwfl_module_nextcu(m, cu, bias)))
        if (look >= *bias && dwarf_haspc(cu, look - *bias) > 0)
            return cu;
    return NULL;
}

/* The source file and line of a frame, or NULL; by way of its unit when
 * libdw's own lookup (through .debug_aranges too) finds nothing. */
static const char *line_of(const spot *sp, int *lno) {
    Dwfl_Line *l = dwfl_module_getsrc(sp->m, sp->look);
    if (l)
        return dwfl_lineinfo(l, NULL, lno, NULL, NULL, NULL);
    Dwarf_Line *dl = sp->cu ? dwarf_getsrc_die(sp->cu, sp->look - sp->bias) : NULL;
    if (!dl || dwarf_lineno(dl, lno) != 0)
        return NULL;
    return dwarf_linesrc(dl, NULL, NULL);
}

/* The frame's text: "fn+0xOFF (file.c:LINE)", "fn+0xOFF (lib)", or
 * "lib+0xOFF" with OFF from the load bias (what addr2line -e lib takes).
 * The offset is from the frame's own address, not the one looked up. */
static void name_frame(const spot *sp, char *out, size_t len) {
    const char *lib = base_name(sp->md->rec->path);
    if (!sp->fn) {
        snprintf(out, len, "%s+0x%llx", lib, (unsigned long long)(sp->a - sp->md->rec->base));
        return;
    }
    unsigned long long at = (unsigned long long)sp->off + (sp->a - sp->look);
    int lno = 0;
    const char *file = line_of(sp, &lno);
    if (file)
        snprintf(out, len, "%s+0x%llx (%s:%d)", sp->fn, at, base_name(file), lno);
    else
        snprintf(out, len, "%s+0x%llx (%s)", sp->fn, at, lib);
}

static mod *mod_of(Dwfl_Module *m) {
    void **user;
    dwfl_module_info(m, &user, NULL, NULL, NULL, NULL, NULL, NULL);
    return *user;
}

/* Names and attributes one frame; a return address (`ret`) is looked up one
 * byte back, in the call instruction, which may end a function. */
static void do_frame(ctx *c, uint64_t a, bool ret, qs_frame *f) {
    f->addr = a;
    snprintf(f->symbol, sizeof f->symbol, "?");
    f->component[0] = 0;
    spot sp = {.a = a, .look = ret && a ? a - 1 : a};
    sp.m = c->dwfl ? dwfl_addrmodule(c->dwfl, sp.look) : NULL;
    sp.md = sp.m ? mod_of(sp.m) : NULL;
    if (!sp.md || sp.md->bad)
        return;
    GElf_Sym sym;
    sp.fn = dwfl_module_addrinfo(sp.m, sp.look, &sp.off, &sym, NULL, NULL, NULL);
    sp.cu = unit_at(sp.m, sp.look, &sp.bias);
    name_frame(&sp, f->symbol, sizeof f->symbol);
    owner o = owner_of(c, &sp);
    const char *who = o.mark ? o.mark : o.comp >= 0 ? c->comps[o.comp].name : "";
    snprintf(f->component, sizeof f->component, "%s", who);
}

int qs_symbolize(const char *exe, const qs_module *mods, int nmods, const qs_comp *comps,
                 int ncomps, const uint64_t *addrs, int n, qs_frame *out, char *note,
                 size_t notelen) {
    ctx c = {.exe = exe, .comps = comps, .ncomps = comps ? ncomps : 0};
    c.note = (notebuf){notelen ? note : NULL, notelen, 0};
    if (c.note.p)
        c.note.p[0] = 0;
    if (!out || n <= 0)
        return 0;
    if (!mods || nmods < 0)
        nmods = 0;
    c.mods = calloc((size_t)nmods + 1, sizeof *c.mods);
    c.cus = calloc((size_t)n, sizeof *c.cus); /* at most one unit per frame */
    c.capcus = c.cus ? n : 0;                 /* without it, units are scanned each time */
    if (c.mods)
        report_all(&c, mods, nmods);
    else
        say(&c.note, "out of memory; frames are left unnamed");
    for (int i = 0; i < n; i++)
        do_frame(&c, addrs ? addrs[i] : 0, i > 0, &out[i]);
    if (c.dwfl)
        dwfl_end(c.dwfl);
    free(c.cus);
    free(c.mods);
    return 0;
}
