/* test_zlib.c - a real library isolated: zlib through its installed header
 * and a sidecar of annotations (zlib.qtn.h). Round trips of real data through
 * the isolated zlib match the direct ones, the streaming API whose z_stream
 * carries pointers works across the boundary, and a crash in zlib's domain
 * is survived. The calls are plain zlib calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "zlib.qtn.h"

enum { SIZE = 200000 };
static unsigned char data[SIZE];

static void plan(const char *p) {
    char err[200];
    if (qtn_plan_apply(p, err, sizeof err))
        fail_msg("%s", err);
}

typedef struct out {
    unsigned char packed[SIZE];
    uLongf packed_len;
    unsigned char back[SIZE];
    uLongf back_len;
    uLong crc;
    unsigned char streamed[SIZE];
    size_t streamed_len;
    uLong total_in, total_out;
} out;

static void run(out *o) {
    memset(o, 0, sizeof *o);
    o->packed_len = sizeof o->packed;
    assert_int_equal(compress2(o->packed, &o->packed_len, data, SIZE, 6), Z_OK);
    o->back_len = sizeof o->back;
    assert_int_equal(uncompress(o->back, &o->back_len, o->packed, o->packed_len), Z_OK);
    o->crc = crc32(crc32(0, NULL, 0), data, SIZE);
    /* streaming: small chunks in, small chunks out */
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit(&zs, 6), Z_OK);
    size_t in = 0;
    int rc;
    do {
        uInt chunk = SIZE - in < 10000 ? (uInt)(SIZE - in) : 10000;
        zs.next_in = data + in;
        zs.avail_in = chunk;
        int flush = in + chunk == SIZE ? Z_FINISH : Z_NO_FLUSH;
        do {
            zs.next_out = o->streamed + o->streamed_len;
            zs.avail_out = 4096;
            Bytef *before = zs.next_out;
            rc = deflate(&zs, flush);
            assert_true(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR);
            o->streamed_len += (size_t)(zs.next_out - before); /* moved in our buffer */
        } while (zs.avail_out == 0);
        assert_true(zs.next_in == data + in + chunk); /* all taken, pointer moved */
        in += chunk;
    } while (rc != Z_STREAM_END);
    o->total_in = zs.total_in;
    o->total_out = zs.total_out;
    assert_int_equal(deflateEnd(&zs), Z_OK);
}

static void test_isolated_zlib_matches_direct(void **state) {
    (void)state;
    static out d, i;
    plan("zlib=host");
    run(&d);
    plan("zlib=1");
    run(&i);
    assert_int_equal(d.packed_len, i.packed_len);
    assert_true(i.packed_len < SIZE * 3 / 4); /* it did compress */
    assert_memory_equal(d.packed, i.packed, d.packed_len);
    assert_int_equal(i.back_len, SIZE);
    assert_memory_equal(i.back, data, SIZE);
    assert_int_equal(d.crc, i.crc);
    assert_int_equal(d.streamed_len, i.streamed_len);
    assert_memory_equal(d.streamed, i.streamed, d.streamed_len);
    assert_int_equal(i.total_in, SIZE);
    assert_int_equal(i.total_out, i.streamed_len);
    /* what was streamed decompresses to the data */
    static unsigned char back[SIZE];
    uLongf blen = sizeof back;
    assert_int_equal(uncompress(back, &blen, i.streamed, i.streamed_len), Z_OK);
    assert_int_equal(blen, SIZE);
    assert_memory_equal(back, data, SIZE);
    qtn_stats st;
    assert_int_equal(qtn_stats_component("zlib", &st), 0);
    assert_true(st.crossings > 50);
}

static void test_crash_in_zlib_is_survived(void **state) {
    (void)state;
    plan("zlib=1");
    qtn_report r;
    assert_int_equal(zlib_test_crash(1), -1);
    assert_int_equal(qtn_report_next(&r, 10000), 1);
    assert_string_equal(r.component, "zlib");
    assert_string_equal(r.entry, "zlib_test_crash");
    assert_int_equal(r.signal, 11);
    /* a new zlib process serves the next calls */
    static unsigned char packed[SIZE];
    uLongf plen = sizeof packed;
    assert_int_equal(compress2(packed, &plen, data, SIZE, 9), Z_OK);
    static unsigned char back[SIZE];
    uLongf blen = sizeof back;
    assert_int_equal(uncompress(back, &blen, packed, plen), Z_OK);
    assert_memory_equal(back, data, SIZE);
    /* a garbled stream inside the isolated zlib: its answer, not a crash here */
    memset(packed + 10, 0x5a, 200);
    blen = sizeof back;
    assert_int_not_equal(uncompress(back, &blen, packed, plen), Z_OK);
}

int main(void) {
    uint32_t x = 12345;
    for (size_t k = 0; k < SIZE; k++) { /* text-like: compressible, not trivial */
        x = x * 1103515245u + 12345u;
        data[k] = (unsigned char)("the quick brown fox jumps over a lazy dog "[(x >> 16) % 42]);
    }
    if (qtn_init(NULL))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isolated_zlib_matches_direct),
        cmocka_unit_test(test_crash_in_zlib_is_survived),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    qtn_shutdown();
    return r;
}
