/* test_gen_ident.c - code identity (`quarantine gen --source`): which source
 * files are a component's, and that its code_id follows their contents and
 * its entries, nothing else (not paths, not build folders, not the order of
 * the options), as the supervisor needs to key evidence by it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hash.h"

static char dir[64];
static char err[16384];
static char stubs[1 << 16];

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void slurp(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, len - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("failed: %s", cmd);
}

/* A program of two components: a (entries in a.c, helpers in a_util.c,
 * marked), b (b.c), and main.c, which is nobody's. */
static void make_tree(const char *root) {
    char p[256];
    sh("mkdir -p %s", root);
    snprintf(p, sizeof p, "%s/h.h", root);
    write_file(p, "#include <stddef.h>\n#include \"quarantine.h\"\n"
                  "QTN_COMPONENT(a) QTN_FAULT(-1) int a_sum(const int *v QTN_IN(n), size_t n);\n"
                  "QTN_COMPONENT(a) void a_reset(void);\n"
                  "QTN_COMPONENT(b) QTN_FAULT(0) int b_twice(int x);\n"
                  "int a_helper(int x);\n");
    snprintf(p, sizeof p, "%s/a.c", root);
    write_file(p, "#include \"h.h\"\n"
                  "static int total;\n"
                  "int a_sum(const int *v, size_t n) {\n"
                  "    for (size_t i = 0; i < n; i++)\n        total += a_helper(v[i]);\n"
                  "    return total;\n}\n"
                  "void a_reset(void) { total = 0; }\n");
    snprintf(p, sizeof p, "%s/a_util.c", root);
    write_file(p, "#include \"h.h\"\nQTN_SOURCE_OF(a)\nint a_helper(int x) { return x * 3; }\n");
    snprintf(p, sizeof p, "%s/b.c", root);
    write_file(p, "#include \"h.h\"\nint b_twice(int x);\nint b_twice(int x) { return 2 * x; }\n");
    snprintf(p, sizeof p, "%s/main.c", root);
    write_file(p, "#include \"h.h\"\nint main(void) { return b_twice(a_sum(0, 0)); }\n");
}

/* Runs `quarantine gen` in `build` (a folder of its own) on root's header
 * with `sources` (names in root, space-separated; NULL: no --source); its
 * exit code, stderr in err[], the stubs in stubs[]. */
static int gen_in(const char *build, const char *root, const char *sources) {
    char srcargs[1024] = "";
    if (sources) {
        char copy[512];
        snprintf(copy, sizeof copy, "%s", sources);
        for (char *s = strtok(copy, " "); s; s = strtok(NULL, " ")) {
            size_t n = strlen(srcargs);
            snprintf(srcargs + n, sizeof srcargs - n, " --source %s/%s", root, s);
        }
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && cd %s && rm -f stubs.c && %s gen -o stubs.c "
             "--depfile stubs.d%s -I %s %s/h.h 2>err.txt",
             build, build, QTN_GEN_BIN, srcargs, root, root);
    int st = system(cmd);
    char p[256];
    snprintf(p, sizeof p, "%s/err.txt", build);
    slurp(p, err, sizeof err);
    snprintf(p, sizeof p, "%s/stubs.c", build);
    slurp(p, stubs, sizeof stubs);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The code_id the stubs give component c ("" when none). */
static void id_of(const char *c, char out[33]) {
    char head[128];
    snprintf(head, sizeof head, "qtn_component qtn_component_%s = {.name = \"%s\"", c, c);
    out[0] = 0;
    const char *s = strstr(stubs, head);
    assert_non_null(s);
    const char *end = strstr(s, "};");
    const char *id = strstr(s, ".code_id = \"");
    if (!id || id > end)
        return;
    id += strlen(".code_id = \"");
    assert_true(strspn(id, "0123456789abcdef") == 32 && id[32] == '"');
    memcpy(out, id, 32);
    out[32] = 0;
}

static void ids(const char *build, const char *root, const char *sources, char a[33], char b[33]) {
    int rc = gen_in(build, root, sources);
    if (rc)
        fail_msg("exit %d: %s", rc, err);
    id_of("a", a);
    id_of("b", b);
}

static void test_same_inputs_same_id(void **state) {
    (void)state;
    char root[128], copy[128], b1[128], b2[128], b3[128];
    snprintf(root, sizeof root, "%s/src", dir);
    snprintf(copy, sizeof copy, "%s/elsewhere/src", dir);
    snprintf(b1, sizeof b1, "%s/build1", dir);
    snprintf(b2, sizeof b2, "%s/build-two/deeper", dir);
    snprintf(b3, sizeof b3, "%s/build3", dir);
    make_tree(root);
    make_tree(copy);
    char a1[33], bb1[33], a2[33], bb2[33], a3[33], bb3[33];
    ids(b1, root, "a.c a_util.c b.c main.c", a1, bb1);
    assert_int_equal(strlen(a1), 32);
    assert_int_equal(strlen(bb1), 32);
    assert_string_not_equal(a1, bb1);
    ids(b2, root, "main.c b.c a_util.c a.c", a2, bb2); /* another folder, another order */
    assert_string_equal(a1, a2);
    assert_string_equal(bb1, bb2);
    ids(b3, copy, "a.c a_util.c b.c main.c", a3, bb3); /* the same files somewhere else */
    assert_string_equal(a1, a3);
    assert_string_equal(bb1, bb3);
    ids(b3, copy, "a.c a.c a_util.c b.c main.c", a3, bb3); /* a file named twice is one */
    assert_string_equal(a1, a3);
}

static void append(const char *root, const char *file, const char *text) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", root, file);
    FILE *f = fopen(p, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_an_edit_changes_only_its_component(void **state) {
    (void)state;
    char root[128], b[128];
    snprintf(root, sizeof root, "%s/edit", dir);
    snprintf(b, sizeof b, "%s/build-edit", dir);
    make_tree(root);
    const char *all = "a.c a_util.c b.c main.c";
    char a0[33], b0[33], a1[33], b1[33];
    ids(b, root, all, a0, b0);
    append(root, "b.c", "int b_unused(void) { return 7; }\n");
    ids(b, root, all, a1, b1);
    assert_string_equal(a0, a1);
    assert_string_not_equal(b0, b1);
    append(root, "a_util.c", "/* a marked file is a's code too */\n");
    ids(b, root, all, a0, b0);
    assert_string_not_equal(a0, a1);
    assert_string_equal(b0, b1);
    append(root, "main.c", "/* nobody's */\n");
    ids(b, root, all, a1, b1);
    assert_string_equal(a0, a1);
    assert_string_equal(b0, b1);
    /* its entries as declared count too: a's fault value */
    char h[256], text[2048];
    snprintf(h, sizeof h, "%s/h.h", root);
    slurp(h, text, sizeof text);
    char *at = strstr(text, "QTN_FAULT(-1)");
    assert_non_null(at);
    memcpy(at, "QTN_FAULT(-2)", 13);
    write_file(h, text);
    ids(b, root, all, a0, b0);
    assert_string_not_equal(a0, a1);
    assert_string_equal(b0, b1);
}

static void test_a_file_of_two_components_is_rejected(void **state) {
    (void)state;
    char root[128], b[128], p[256], want[1024];
    snprintf(root, sizeof root, "%s/two", dir);
    snprintf(b, sizeof b, "%s/build-two-comps", dir);
    make_tree(root);
    snprintf(p, sizeof p, "%s/both.c", root);
    write_file(p, "#include \"h.h\"\nint b_twice(int x) { return x + x; }\n"
                  "void a_reset(void) {}\n");
    assert_int_equal(gen_in(b, root, "a.c both.c"), 1);
    snprintf(want, sizeof want,
             "%s:1:1: error: %s defines entries of components b and a: a "
             "source file belongs to one component\n",
             p, p);
    if (!strstr(err, want))
        fail_msg("want %s, got %s", want, err);
    assert_non_null(strstr(err, "quarantine: gen: 1 error; nothing written"));
    assert_string_equal(stubs, "");
    /* a mark that disagrees with the entries is the same mistake */
    write_file(p, "#include \"h.h\"\nQTN_SOURCE_OF(a)\nint b_twice(int x) { return x + x; }\n");
    assert_int_equal(gen_in(b, root, "both.c"), 1);
    snprintf(want, sizeof want,
             "%s:1:1: error: %s defines entries of component b but is marked "
             "QTN_SOURCE_OF(a): a source file belongs to one component\n",
             p, p);
    if (!strstr(err, want))
        fail_msg("want %s, got %s", want, err);
    /* declaring an entry defines nothing */
    write_file(p, "#include \"h.h\"\nint b_twice(int x);\nvoid a_reset(void) {}\n");
    char ia[33], ib[33];
    ids(b, root, "both.c b.c", ia, ib);
    assert_int_equal(strlen(ia), 32);
}

static void test_the_mark_assigns_a_helpers_file(void **state) {
    (void)state;
    char root[128], b[128];
    snprintf(root, sizeof root, "%s/mark", dir);
    snprintf(b, sizeof b, "%s/build-mark", dir);
    make_tree(root);
    char a0[33], b0[33], a1[33], b1[33];
    ids(b, root, "a.c b.c", a0, b0);
    ids(b, root, "a.c a_util.c b.c", a1, b1);
    assert_string_not_equal(a0, a1); /* the marked file is a's */
    assert_string_equal(b0, b1);
    ids(b, root, "a_util.c b.c", a1, b1); /* a's identity from its helpers alone */
    assert_int_equal(strlen(a1), 32);
    /* a mark naming no component of the headers: a warning, and nobody's */
    char p[256], want[1024];
    snprintf(p, sizeof p, "%s/typo.c", root);
    write_file(p, "#include \"h.h\"\nQTN_SOURCE_OF(aa)\nint a_extra(void) { return 1; }\n");
    ids(b, root, "a.c b.c typo.c", a1, b1);
    assert_string_equal(a0, a1);
    snprintf(want, sizeof want,
             "%s:2:1: warning: QTN_SOURCE_OF(aa): no component aa in these "
             "headers; the file counts for none\n",
             p);
    if (!strstr(err, want))
        fail_msg("want %s, got %s", want, err);
}

static void test_the_stubs_carry_the_code_id(void **state) {
    (void)state;
    char root[128], b[128];
    snprintf(root, sizeof root, "%s/stubs", dir);
    snprintf(b, sizeof b, "%s/build-stubs", dir);
    make_tree(root);
    /* without --source: as before, no code_id and no word about it */
    assert_int_equal(gen_in(b, root, NULL), 0);
    assert_null(strstr(stubs, "code_id"));
    assert_string_equal(err, "");
    assert_non_null(strstr(stubs, "qtn_component qtn_component_a = {.name = \"a\", .nentries = 2, "
                                  ".entries = qg_entries_a};"));
    /* with it: in the component's initializer */
    assert_int_equal(gen_in(b, root, "a.c a_util.c b.c"), 0);
    char a[33], bb[33], want[256];
    id_of("a", a);
    id_of("b", bb);
    snprintf(want, sizeof want,
             "qtn_component qtn_component_a = {.name = \"a\", .nentries = 2, "
             ".entries = qg_entries_a,\n    .code_id = \"%s\"};",
             a);
    assert_non_null(strstr(stubs, want));
    assert_string_equal(err, "");
    /* a component none of the sources is: a warning, and no code_id */
    assert_int_equal(gen_in(b, root, "a.c main.c"), 0);
    id_of("b", bb);
    assert_string_equal(bb, "");
    assert_string_equal(err, "quarantine: gen: warning: component b: no --source file defines "
                             "its entries; its code identity is unknown (each build counts as "
                             "new code)\n");
    /* the depfile names the sources, so that an edit makes new stubs */
    char d[256], deps[8192], p[256];
    snprintf(d, sizeof d, "%s/stubs.d", b);
    slurp(d, deps, sizeof deps);
    snprintf(p, sizeof p, "%s/main.c", root);
    assert_non_null(strstr(deps, p));
    snprintf(p, sizeof p, "%s/a.c", root);
    assert_non_null(strstr(deps, p));
}

static void test_a_source_that_does_not_parse(void **state) {
    (void)state;
    char root[128], b[128], p[256], want[512];
    snprintf(root, sizeof root, "%s/bad", dir);
    snprintf(b, sizeof b, "%s/build-bad", dir);
    make_tree(root);
    snprintf(p, sizeof p, "%s/broken.c", root);
    write_file(p, "#include \"h.h\"\nint b_twice(int x) { return x }\nint oops(void) return 1;\n");
    assert_int_equal(gen_in(b, root, "a.c broken.c"), 1);
    snprintf(want, sizeof want, "%s:3:16: error: ", p);
    if (!strstr(err, want))
        fail_msg("want %s, got %s", want, err);
    assert_non_null(strstr(err, "nothing written"));
    assert_string_equal(stubs, "");
    snprintf(p, sizeof p, "%s/none.c", root);
    assert_int_equal(gen_in(b, root, "a.c none.c"), 1);
    snprintf(want, sizeof want, "quarantine: gen: %s: No such file or directory\n", p);
    assert_string_equal(err, want);
}

/* MurmurHash3 x64_128 as smhasher verifies it: the hashes of keys
 * {}, {0}, {0,1}, ... (seeds 256 - length), hashed again, begin 0x6384ba69. */
static void test_the_hash_is_murmur3(void **state) {
    (void)state;
    uint8_t key[256], all[256 * 16];
    for (int i = 0; i < 256; i++) {
        key[i] = (uint8_t)i;
        uint64_t h[2];
        qg_hash128(key, (size_t)i, (uint32_t)(256 - i), h);
        for (int k = 0; k < 8; k++) {
            all[i * 16 + k] = (uint8_t)(h[0] >> (8 * k));
            all[i * 16 + 8 + k] = (uint8_t)(h[1] >> (8 * k));
        }
    }
    uint64_t f[2];
    qg_hash128(all, sizeof all, 0, f);
    assert_int_equal(f[0] & 0xffffffffu, 0x6384ba69u);
    char hex[33];
    qg_hash128("hello", 5, 0, f);
    qg_hash_hex(f, hex);
    assert_string_equal(hex, "cbd8a7b341bd9b025b1e906a48ae1d19");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/qtn-gen-ident-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_inputs_same_id),
        cmocka_unit_test(test_an_edit_changes_only_its_component),
        cmocka_unit_test(test_a_file_of_two_components_is_rejected),
        cmocka_unit_test(test_the_mark_assigns_a_helpers_file),
        cmocka_unit_test(test_the_stubs_carry_the_code_id),
        cmocka_unit_test(test_a_source_that_does_not_parse),
        cmocka_unit_test(test_the_hash_is_murmur3),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        r = r ? r : 1;
    return r;
}
