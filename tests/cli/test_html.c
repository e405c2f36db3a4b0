/* test_html.c - quarantine report --html on a real store (a program that
 * crashes the host, is isolated by the policy and then faults in its
 * domain): the page loads nothing from anywhere, every chart is there with
 * data, what came from the store is escaped (a store with hostile strings),
 * the page passes tidy, and headless Chromium renders it with no console
 * message, its DOM holding every chart, and a screenshot in the build
 * folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

static char dir[64], db[96], page[128];
static char *text; /* what the last read() read */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Reads the file at path into text (NUL-terminated). */
static size_t slurp(const char *path) {
    free(text);
    text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)n + 1);
    assert_non_null(text);
    size_t got = fread(text, 1, (size_t)n, f);
    fclose(f);
    text[got] = 0;
    return got;
}

static int count(const char *hay, const char *end, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) && (!end || p < end); p++)
        n++;
    return n;
}

static const char *const charts[] = {"chart-faults",   "chart-plan",     "chart-overhead",
                                     "chart-recovery", "chart-restarts", "chart-graph"};

/* Each chart's <svg> in doc holds marks of data (at least `least`). */
static void charts_have_data(const char *doc, const char *what) {
    for (size_t i = 0; i < sizeof charts / sizeof charts[0]; i++) {
        char open[64];
        snprintf(open, sizeof open, "<svg id=\"%s\"", charts[i]);
        const char *s = strstr(doc, open);
        if (!s)
            fail_msg("%s: no %s", what, charts[i]);
        const char *e = strstr(s, "</svg>");
        assert_non_null(e);
        if (count(s, e, "class=\"datum") < 1)
            fail_msg("%s: %s has no data", what, charts[i]);
    }
    if (count(doc, NULL, "class=\"datum bucket\"") < 2)
        fail_msg("%s: fewer than two bucket rows", what);
    if (!strstr(doc, "<details><summary>"))
        fail_msg("%s: no bucket opens its backtrace", what);
}

/* Nothing loaded from anywhere: no script, no external style, font,
 * image or frame. The only URLs are the SVG namespace (a name, never
 * fetched), the empty data: icon and the arrow marker. */
static void self_contained(const char *doc) {
    const char *banned[] = {"<script", "<iframe", "<img", "<link rel=\"stylesheet\"", "@import",
                            "@font-face", "src=", "https://"};
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        if (strstr(doc, banned[i]))
            fail_msg("the page has %s", banned[i]);
    assert_int_equal(count(doc, NULL, "http://"), count(doc, NULL, "http://www.w3.org/2000/svg"));
    assert_int_equal(count(doc, NULL, "href="), count(doc, NULL, "href=\"data:,\""));
    assert_int_equal(count(doc, NULL, "url("), count(doc, NULL, "url(#arrow)"));
}

static void test_page_of_a_real_store(void **state) {
    (void)state;
    assert_int_equal(sh("%s report --store %s --html %s 2>&1", QTN_BIN, db, page), 0);
    slurp(page);
    assert_true(!strncmp(text, "<!DOCTYPE html>\n", 16));
    self_contained(text);
    charts_have_data(text, "the page");
    /* the host crash, the plan change that isolated the parser and its
     * reason, the parser's domain */
    assert_non_null(strstr(text, "class=\"datum crash\""));
    assert_non_null(strstr(text, "<ol class=\"changes\">"));
    assert_non_null(strstr(text, "parser in domain"));
    assert_non_null(strstr(text, "class=\"datum boundary\""));
    assert_non_null(strstr(text, "class=\"budget\""));
    /* the budget the run decided with (--budget 90), from its plan change */
    assert_non_null(strstr(text, ">budget 90%</text>"));
    assert_non_null(strstr(text, "the budget is 90% (the latest decision's)"));
}

/* Hostile strings in the store come out as text. */
static void test_store_strings_are_escaped(void **state) {
    (void)state;
    char evil[128], evil_page[160];
    snprintf(evil, sizeof evil, "%s/evil.db", dir);
    snprintf(evil_page, sizeof evil_page, "%s/evil.html", dir);
    assert_int_equal(sh("cp %s %s", db, evil), 0);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(evil, &h), SQLITE_OK);
    const char *sql =
        "INSERT INTO reports (installation, run, proc, pid, seq, time_ns, kind, component, entry,"
        " signal, domain, recovery_ns, calls_failed, reason, json, build_id, plan) SELECT"
        " installation, run, proc, pid, 999999, time_ns + 1, 'signal',"
        " '<img src=x onerror=alert(1)>', 'e\"''', 11, 1, 5000, 1, '</p><script>alert(2)</script>',"
        " NULL, build_id, plan FROM reports ORDER BY id DESC LIMIT 1;"
        "INSERT INTO report_frames (report_id, n, addr, symbol, component) VALUES"
        " (last_insert_rowid(), 0, '0x1', '</pre><script>alert(3)</script> (x.c:1)', '<b>');"
        "INSERT INTO plan_changes (installation, run, seq, time_ns, pid, mode, from_plan, to_plan,"
        " reason, numbers) SELECT installation, run, 999999, time_ns + 2, pid, mode, from_plan,"
        " '<svg onload=alert(4)>=1', 'because <script>alert(5)</script> & \"more\"', '{}'"
        " FROM plan_changes LIMIT 1;";
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("cannot make the hostile store: %s", msg);
    sqlite3_close(h);
    assert_int_equal(sh("%s report --store %s --html %s 2>&1", QTN_BIN, evil, evil_page), 0);
    slurp(evil_page);
    assert_null(strstr(text, "<script"));
    assert_null(strstr(text, "<img"));
    assert_null(strstr(text, "<svg onload"));
    assert_null(strstr(text, "<b>"));
    assert_non_null(strstr(text, "&lt;img src=x onerror=alert(1)&gt;"));
    assert_non_null(strstr(text, "&lt;/pre&gt;&lt;script&gt;alert(3)&lt;/script&gt;"));
    assert_non_null(strstr(text, "because &lt;script&gt;alert(5)&lt;/script&gt; &amp; "
                               "&quot;more&quot;"));
}

/* tidy finds no error in the page. */
static void test_page_passes_tidy(void **state) {
    (void)state;
    if (access("/usr/bin/tidy", X_OK))
        fail_msg("tidy is not installed (scripts/deps installs it)");
    char log[128];
    snprintf(log, sizeof log, "%s/tidy.log", dir);
    int st = sh("tidy -quiet -errors --show-warnings no %s >%s 2>&1", page, log);
    slurp(log);
    if (st >= 2)
        fail_msg("tidy found errors (status %d):\n%s", st, text);
}

/* Headless Chromium: the DOM it built holds every chart with its data, it
 * said nothing on the page's console, and it took a screenshot. */
static void test_chromium_renders_it(void **state) {
    (void)state;
    if (access("/usr/bin/chromium", X_OK))
        fail_msg("chromium is not installed (scripts/deps installs it)");
    char dom[128], console[128], shot[600];
    snprintf(dom, sizeof dom, "%s/dom.html", dir);
    snprintf(console, sizeof console, "%s/console.log", dir);
    snprintf(shot, sizeof shot, "%s/report.png", SHOT_DIR);
    const char *flags = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                        " --disable-background-networking --disable-component-update"
                        " --disable-sync --disable-dev-shm-usage --enable-logging=stderr --v=0";
    int st = sh("timeout -k 5 90 /usr/bin/chromium %s --user-data-dir=%s/profile1 --dump-dom"
                " file://%s >%s 2>%s",
                flags, dir, page, dom, console);
    if (st) {
        slurp(console);
        fail_msg("chromium --dump-dom: status %d:\n%s", st, text);
    }
    slurp(console);
    if (strstr(text, ":CONSOLE("))
        fail_msg("the page wrote to the console:\n%s", text);
    slurp(dom);
    charts_have_data(text, "chromium's DOM");
    unlink(shot);
    st = sh("timeout -k 5 90 /usr/bin/chromium %s --user-data-dir=%s/profile2 --hide-scrollbars"
            " --window-size=1280,2000 --screenshot=%s file://%s >%s 2>&1",
            flags, dir, shot, page, console);
    if (st) {
        slurp(console);
        fail_msg("chromium --screenshot: status %d:\n%s", st, text);
    }
    size_t n = slurp(shot);
    if (n < 10000 || memcmp(text, "\x89PNG\r\n\x1a\n", 8))
        fail_msg("%s is not a screenshot (%zu bytes)", shot, n);
}

static int bad_options(void) {
    int st = sh("%s report --store %s --html 2>/dev/null", QTN_BIN, db);
    if (st != 2)
        return -1;
    return sh("%s report --store %s --html %s/no/such/dir/x.html 2>%s/err", QTN_BIN, db, dir,
              dir) == 1 ? 0 : -1;
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/qtn-html-%d", (int)getpid());
    snprintf(db, sizeof db, "%s/store.db", dir);
    snprintf(page, sizeof page, "%s/report.html", dir);
    /* a real store: the parser's bug crashes the program, the policy isolates
     * the parser, and the bug then faults its domain instead */
    if (sh("rm -rf %s && mkdir -p %s && %s run --policy optimistic --budget 90 --backoff-ms 10"
           " --stats-interval 0.3 --store %s -- %s run 2 2 --bad-every 300 --pause-us 1000"
           " >/dev/null 2>%s/run.err",
           dir, dir, QTN_BIN, db, PROG, dir)) {
        fprintf(stderr, "test_html: could not make a store (see %s/run.err)\n", dir);
        return 1;
    }
    if (bad_options()) {
        fprintf(stderr, "test_html: --html without a file or to a folder that is not there "
                        "was not refused\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_of_a_real_store),
        cmocka_unit_test(test_store_strings_are_escaped),
        cmocka_unit_test(test_page_passes_tidy),
        cmocka_unit_test(test_chromium_renders_it),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    free(text);
    if (!r && sh("rm -rf %s", dir))
        r = 1;
    return r;
}
