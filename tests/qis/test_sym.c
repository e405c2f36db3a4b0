/* test_sym.c - the crash symboliser on this test's own code: frames named,
 * attributed by compilation unit, mark, function and library, and a file
 * changed or gone since the crash said in the note, never a crash. */
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <limits.h>
#include <link.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "sym.h"
#include "sym_fixture.h"

#define MODS 128

/* The loaded modules, as the crash handler records them. */
static char exe[PATH_MAX];
static char ids[MODS][2 * 64 + 1];
static qs_module mods[MODS];
static int nmods;

/* Build id of a loaded object, as hex, from its notes in memory. */
static void note_build_id(struct dl_phdr_info *info, char *out, size_t len) {
    out[0] = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *nh;
            const unsigned char *desc = (const unsigned char *)name + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
                size_t k = 0;
                for (uint32_t j = 0; j < nh->n_descsz && k + 2 < len; j++) {
                    out[k++] = "0123456789abcdef"[desc[j] >> 4];
                    out[k++] = "0123456789abcdef"[desc[j] & 15];
                }
                out[k] = 0;
                return;
            }
            p = (const char *)desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
}

static int add_module(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    (void)arg;
    const char *name = info->dlpi_name;
    if (!name || !*name)
        name = exe; /* the program itself */
    if (name[0] != '/' || nmods == MODS)
        return 0; /* the vDSO: nothing to read from disk */
    note_build_id(info, ids[nmods], sizeof ids[nmods]);
    mods[nmods] = (qs_module){name, info->dlpi_addr, ids[nmods]};
    nmods++;
    return 0;
}

static void load_modules(void) {
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(k > 0);
    exe[k] = 0;
    nmods = 0;
    dl_iterate_phdr(add_module, NULL);
    assert_true(nmods > 1);
}

static const qs_module *module_named(const char *prefix) {
    for (int i = 0; i < nmods; i++) {
        const char *b = strrchr(mods[i].path, '/');
        if (!strncmp(b ? b + 1 : mods[i].path, prefix, strlen(prefix)))
            return &mods[i];
    }
    fail_msg("no module %s loaded", prefix);
    return NULL;
}

/* A function's own address in a library (not a PLT slot of the program). */
static uint64_t lib_func(const char *lib, const char *name) {
    void *h = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD);
    assert_non_null(h);
    void *f = dlsym(h, name);
    assert_non_null(f);
    dlclose(h);
    return (uint64_t)(uintptr_t)f;
}

#define ADDR(f) ((uint64_t)(uintptr_t)(f))

static const char *const a_entries[] = {"sa_entry"};
static const char *const work_entries[] = {"sm_work"};
static const qs_comp comps[] = {{"compa", a_entries, 1}, {"other", work_entries, 1}};

static void symbolize(const qs_comp *cs, int ncs, const uint64_t *addrs, int n, qs_frame *out,
                      char *note, size_t notelen) {
    assert_int_equal(qs_symbolize(exe, mods, nmods, cs, ncs, addrs, n, out, note, notelen), 0);
}

static void test_entry_and_static_helper(void **state) {
    (void)state;
    uint64_t entry = ADDR(sa_entry), helper = ADDR(sa_helper_address());
    /* the first frame exact, later ones return addresses one past */
    uint64_t addrs[] = {entry, helper + 1, entry + 1};
    qs_frame f[3];
    char note[256];
    symbolize(comps, 2, addrs, 3, f, note, sizeof note);
    assert_string_equal(note, "");
    assert_int_equal(f[0].addr, entry);
    assert_string_equal(f[0].component, "compa");
    assert_true(!strncmp(f[0].symbol, "sa_entry+0x0 (sym_fixture_a.c:", 30));
    assert_string_equal(f[1].component, "compa"); /* by its unit: a static helper */
    assert_true(!strncmp(f[1].symbol, "sa_helper", 9));
    assert_non_null(strstr(f[1].symbol, "+0x1 (sym_fixture_a.c:"));
    assert_string_equal(f[2].component, "compa");
    assert_true(!strncmp(f[2].symbol, "sa_entry+0x1 (sym_fixture_a.c:", 30));
    assert_int_equal(sa_entry(1), 6);
}

static void test_mark_wins(void **state) {
    (void)state;
    /* sm_work is "other"'s entry, but its file is marked markcomp's */
    uint64_t addrs[] = {ADDR(sm_work), ADDR(sm_work) + 1};
    qs_frame f[2];
    symbolize(comps, 2, addrs, 2, f, NULL, 0);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(f[i].component, "markcomp");
        assert_true(!strncmp(f[i].symbol, "sm_work+0x", 10));
    }
}

static void test_no_component(void **state) {
    (void)state;
    uint64_t addrs[] = {ADDR(sn_work), ADDR(sn_work) + 1};
    qs_frame f[2];
    symbolize(comps, 2, addrs, 2, f, NULL, 0);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(f[i].component, "");
        assert_true(!strncmp(f[i].symbol, "sn_work+0x", 10));
        assert_non_null(strstr(f[i].symbol, "(sym_fixture_none.c:"));
    }
}

static void test_libc_is_nobodys(void **state) {
    (void)state;
    uint64_t w = lib_func("libc.so.6", "write");
    uint64_t addrs[] = {w, w + 1};
    qs_frame f[2];
    symbolize(comps, 2, addrs, 2, f, NULL, 0);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(f[i].component, "");
        assert_string_not_equal(f[i].symbol, "?");
        assert_null(strchr(f[i].symbol, '?'));
    }
}

static const char *const zlib_entries[] = {"deflate", "inflate"};
static const char *const deflate_entry[] = {"deflate"};
static const char *const inflate_entry[] = {"inflate"};
static const char *const version_entry[] = {"zlibVersion"};

static void test_library_of_one_component(void **state) {
    (void)state;
    assert_non_null(zlibVersion()); /* libz is loaded */
    uint64_t v = lib_func("libz.so.1", "zlibVersion");
    const qs_module *z = module_named("libz.so");
    uint64_t addrs[] = {v, v + 1, z->base + 0x10 + 1, ADDR(sn_work) + 1};
    qs_frame f[4];
    const qs_comp whole[] = {{"zlib", zlib_entries, 2}};
    symbolize(whole, 1, addrs, 4, f, NULL, 0);
    assert_string_equal(f[0].component, "zlib");
    assert_true(!strncmp(f[0].symbol, "zlibVersion+0x0 (", 17));
    assert_string_equal(f[1].component, "zlib");
    assert_true(!strncmp(f[1].symbol, "zlibVersion+0x1 (", 17));
    assert_string_equal(f[2].component, "zlib"); /* every frame in it, named or not */
    char raw[64];
    const char *b = strrchr(z->path, '/');
    snprintf(raw, sizeof raw, "%s+0x11", b ? b + 1 : z->path);
    assert_string_equal(f[2].symbol, raw);
    assert_string_equal(f[3].component, ""); /* the program never is */

    const qs_comp split[] = {{"compz", deflate_entry, 1}, {"compy", inflate_entry, 1}};
    symbolize(split, 2, addrs, 4, f, NULL, 0);
    for (int i = 0; i < 4; i++)
        assert_string_equal(f[i].component, "");
}

static void test_function_entry_in_shared_library(void **state) {
    (void)state;
    /* libz defines entries of two components: its functions go by name */
    uint64_t addrs[] = {lib_func("libz.so.1", "zlibVersion"), lib_func("libz.so.1", "deflate") + 1,
                        lib_func("libz.so.1", "crc32") + 1};
    qs_frame f[3];
    const qs_comp cs[] = {{"version", version_entry, 1}, {"compz", deflate_entry, 1}};
    symbolize(cs, 2, addrs, 3, f, NULL, 0);
    assert_string_equal(f[0].component, "version");
    assert_string_equal(f[1].component, "compz");
    assert_string_equal(f[2].component, "");
}

static void test_build_id_mismatch(void **state) {
    (void)state;
    qs_module *self = NULL;
    for (int i = 0; i < nmods; i++)
        if (!strcmp(mods[i].path, exe))
            self = &mods[i];
    assert_non_null(self);
    const char *id = self->build_id;
    self->build_id = "00112233445566778899";
    uint64_t addrs[] = {ADDR(sa_entry), ADDR(sa_entry) + 1,
                        lib_func("libz.so.1", "zlibVersion") + 1};
    qs_frame f[3];
    char note[1024];
    symbolize(comps, 2, addrs, 3, f, note, sizeof note);
    char tiny[16]; /* a note too small is cut, not overrun */
    qs_frame one;
    symbolize(comps, 2, addrs, 1, &one, tiny, sizeof tiny);
    self->build_id = id;
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(f[i].symbol, "?");
        assert_string_equal(f[i].component, "");
    }
    assert_true(!strncmp(f[2].symbol, "zlibVersion+0x1", 15)); /* the others still read */
    assert_non_null(strstr(note, "build id mismatch"));
    assert_non_null(strstr(note, exe));
    assert_non_null(strstr(note, "00112233445566778899"));
    if (id[0])
        assert_non_null(strstr(note, id));
    assert_null(strchr(note, '\n'));
}

static void test_missing_file(void **state) {
    (void)state;
    qs_module more[MODS + 1];
    memcpy(more, mods, sizeof mods[0] * (size_t)nmods);
    more[nmods] = (qs_module){"/nonexistent/libgone.so.1", 0x10000000, "abcdef"};
    uint64_t addrs[] = {0x10000040, ADDR(sa_entry) + 1};
    qs_frame f[2];
    char note[512];
    assert_int_equal(qs_symbolize(exe, more, nmods + 1, comps, 2, addrs, 2, f, note, sizeof note),
                     0);
    assert_string_equal(f[0].symbol, "?");
    assert_string_equal(f[0].component, "");
    assert_string_equal(f[1].component, "compa");
    assert_non_null(strstr(note, "cannot read /nonexistent/libgone.so.1"));
}

static void test_odd_input(void **state) {
    (void)state;
    qs_frame f[2];
    char note[128];
    uint64_t addrs[] = {0x10, 0};
    symbolize(comps, 2, addrs, 2, f, note, sizeof note);
    assert_string_equal(f[0].symbol, "?");
    assert_string_equal(f[0].component, "");
    assert_string_equal(f[1].symbol, "?");
    assert_string_equal(note, "");
    /* no modules, no components, no note, no frames, an empty path */
    uint64_t entry = ADDR(sa_entry);
    assert_int_equal(qs_symbolize(exe, NULL, 0, NULL, 0, &entry, 1, f, NULL, 0), 0);
    assert_string_equal(f[0].symbol, "?");
    assert_int_equal(qs_symbolize(NULL, mods, nmods, NULL, 0, &entry, 1, f, NULL, 0), 0);
    assert_true(!strncmp(f[0].symbol, "sa_entry", 8));
    assert_string_equal(f[0].component, "");
    assert_int_equal(qs_symbolize(exe, mods, nmods, comps, 2, NULL, 0, NULL, note, 1), 0);
    qs_module empty = {"", 0, ""};
    assert_int_equal(qs_symbolize(exe, &empty, 1, comps, 2, &entry, 1, f, note, sizeof note), 0);
    assert_string_equal(f[0].symbol, "?");
    qs_module dir = {"/", 0x10000000, ""}; /* not an ELF file */
    assert_int_equal(qs_symbolize(exe, &dir, 1, comps, 2, &entry, 1, f, note, sizeof note), 0);
    assert_non_null(strstr(note, "cannot read /"));
}

/* Open file descriptors of this process. */
static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void blocked(int sig) {
    (void)sig;
    static const char msg[] = "test_sym: qs_symbolize blocked (opening a FIFO?)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

/* Module paths come from what a program wrote: a FIFO (whose open would
 * block for ever), a device (whose open can act), a directory are not
 * opened, and the note says what each is; a symlink to a regular file is
 * read as the file; no descriptor is left open. */
static void test_only_regular_files_are_opened(void **state) {
    (void)state;
    char dir[] = "/tmp/qtn-sym-XXXXXX", fifo[64], dev[64], link[64], junk[64];
    assert_non_null(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/libfifo.so", dir);
    snprintf(dev, sizeof dev, "%s/libdev.so", dir);
    snprintf(link, sizeof link, "%s/libz-link.so", dir);
    snprintf(junk, sizeof junk, "%s/libjunk.so", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(symlink("/dev/zero", dev), 0);
    const qs_module *z = module_named("libz.so");
    assert_int_equal(symlink(z->path, link), 0);
    FILE *f = fopen(junk, "w");
    assert_non_null(f);
    fputs("not an ELF file\n", f);
    fclose(f);
    qs_module ms[5] = {{fifo, 0x10000000, ""}, {dev, 0x20000000, ""},
                       {link, z->base, z->build_id}, {junk, 0x30000000, ""},
                       {"/dev/null", 0x40000000, ""}};
    uint64_t v = lib_func("libz.so.1", "zlibVersion");
    uint64_t addrs[] = {0x10000040, v + 1, 0x20000040};
    qs_frame fr[3];
    char note[2048];
    const qs_comp whole[] = {{"zlib", zlib_entries, 2}};
    int fds = open_fds();
    signal(SIGALRM, blocked);
    alarm(20);
    /* the FIFO as the program too: rule 3 compares it, never opens it */
    assert_int_equal(qs_symbolize(fifo, ms, 5, whole, 1, addrs, 3, fr, note, sizeof note), 0);
    alarm(0);
    assert_int_equal(open_fds(), fds);
    char want[256];
    snprintf(want, sizeof want, "cannot read %s: a FIFO, not a regular file (not opened)", fifo);
    if (!strstr(note, want))
        fail_msg("missing: %s\nin: %s", want, note);
    snprintf(want, sizeof want, "cannot read %s: a character device, not a regular file", dev);
    if (!strstr(note, want))
        fail_msg("missing: %s\nin: %s", want, note);
    assert_non_null(strstr(note, "cannot read /dev/null: a character device"));
    snprintf(want, sizeof want, "cannot read %s: ", junk); /* opened, not ELF, closed */
    assert_non_null(strstr(note, want));
    assert_null(strstr(note, "libz-link.so")); /* read through its symlink */
    assert_string_equal(fr[0].symbol, "?");
    assert_true(!strncmp(fr[1].symbol, "zlibVersion+0x1 (", 17));
    assert_string_equal(fr[1].component, "zlib");
    assert_string_equal(fr[2].symbol, "?");
    unlink(fifo);
    unlink(dev);
    unlink(link);
    unlink(junk);
    rmdir(dir);
}

static int setup(void **state) {
    (void)state;
    load_modules();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_and_static_helper),
        cmocka_unit_test(test_mark_wins),
        cmocka_unit_test(test_no_component),
        cmocka_unit_test(test_libc_is_nobodys),
        cmocka_unit_test(test_library_of_one_component),
        cmocka_unit_test(test_function_entry_in_shared_library),
        cmocka_unit_test(test_build_id_mismatch),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_odd_input),
        cmocka_unit_test(test_only_regular_files_are_opened),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
