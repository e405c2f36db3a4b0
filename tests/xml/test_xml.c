/* test_xml.c - libxml2 isolated through a sidecar (xml.qtn.h): a document
 * parsed from memory, dumped to memory libxml2 allocates (xmlDocDumpMemory)
 * and a node's content (xmlNodeGetContent), both freed by the caller with
 * xmlFree wherever libxml2 runs; the results are the same directly and
 * isolated, from four threads at once too, and the plan may move libxml2
 * while documents are open: their handles are refused, not used in the
 * wrong process. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "xml.qtn.h"

static const char doc_text[] = "<?xml version=\"1.0\"?>\n"
                               "<list><item n=\"1\">isolate</item><item>only</item>"
                               "<item>what faults</item></list>\n";

static void plan(const char *p) {
    char err[200];
    if (qtn_plan_apply(p, err, sizeof err))
        fail_msg("%s", err);
}

typedef struct run {
    char dump[512];
    int size;
    char content[64];
} run;

static void once(run *r) {
    memset(r, 0, sizeof *r);
    xmlDocPtr d = xmlReadMemory(doc_text, (int)sizeof doc_text - 1, NULL, NULL, XML_PARSE_NONET);
    assert_non_null(d);
    xmlChar *mem = NULL;
    r->size = -1;
    xmlDocDumpMemory(d, &mem, &r->size);
    assert_non_null(mem);
    assert_true(r->size > 0 && r->size < (int)sizeof r->dump);
    memcpy(r->dump, mem, (size_t)r->size + 1); /* its NUL too */
    xmlFree(mem);
    xmlChar *c = xmlNodeGetContent(xmlDocGetRootElement(d));
    assert_non_null(c);
    snprintf(r->content, sizeof r->content, "%s", (const char *)c);
    xmlFree(c);
    xmlFreeDoc(d);
}

static void test_dump_and_content(void **state) {
    (void)state;
    run d, i;
    plan("xml=host");
    once(&d);
    plan("xml=1");
    qtn_clear_error();
    once(&i);
    assert_int_equal(qtn_last_error(), 0);
    qtn_stats st;
    assert_int_equal(qtn_stats_component("xml", &st), 0);
    assert_int_equal(st.crossings, 5); /* each call of the isolated run crossed */
    assert_int_equal(d.size, i.size);
    assert_string_equal(d.dump, i.dump);
    assert_non_null(strstr(i.dump, "<item n=\"1\">isolate</item>"));
    assert_string_equal(i.content, "isolateonlywhat faults");
    assert_string_equal(d.content, i.content);
    plan("xml=host");
}

/* Four threads at once, each with its own documents and dumps, against the
 * isolated libxml2: every dump is the one the host makes. */
static run expected;
static void *dumper(void *arg) {
    int *bad = arg;
    for (int k = 0; k < 200; k++) {
        run r;
        once(&r);
        if (r.size != expected.size || strcmp(r.dump, expected.dump) ||
            strcmp(r.content, expected.content))
            (*bad)++;
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    plan("xml=host");
    once(&expected);
    plan("xml=1");
    qtn_stats s0, s1;
    assert_int_equal(qtn_stats_component("xml", &s0), 0);
    pthread_t th[4];
    int bad[4] = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, dumper, &bad[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(bad[i], 0);
    assert_int_equal(qtn_stats_component("xml", &s1), 0);
    assert_int_equal(s1.crossings - s0.crossings, 4 * 200 * 5); /* all of them crossed */
    qtn_domain_info di;
    assert_int_equal(qtn_domain_info_get(1, &di), 0);
    assert_int_equal(di.restarts, 0);
    plan("xml=host");
}

/* A document the domain parsed, used after the plan moved libxml2 into the
 * program: refused as stale, not dereferenced here. */
static void test_document_across_a_move(void **state) {
    (void)state;
    plan("xml=1");
    xmlDocPtr d = xmlReadMemory(doc_text, (int)sizeof doc_text - 1, NULL, NULL, 0);
    assert_non_null(d);
    plan("xml=host");
    xmlChar *mem = (xmlChar *)"untouched";
    int size = 7;
    qtn_clear_error();
    xmlDocDumpMemory(d, &mem, &size);
    assert_int_equal(qtn_last_error(), QTN_ESTALE);
    assert_string_equal((const char *)mem, "untouched"); /* nothing written */
    assert_int_equal(size, 7);
    plan("xml=1"); /* back in the process that made it (a move restarts none) */
    xmlFreeDoc(d);
    assert_int_equal(qtn_last_error(), 0);
    plan("xml=host");
}

int main(void) {
    if (qtn_init(NULL))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_and_content),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_document_across_a_move),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    qtn_shutdown();
    return r;
}
