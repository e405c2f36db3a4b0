/* docjson.c - documents checked and made compact with jansson (component
 * `json`, docjson.h). */
#include "docjson.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static size_t depth(json_t *v) {
    size_t d = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            size_t e = depth(x);
            d = e > d ? e : d;
        }
        return d + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            size_t e = depth(x);
            d = e > d ? e : d;
        }
        return d + 1;
    }
    return 0;
}

int64_t dj_canon(const char *body, size_t n, uint32_t max_depth, char *out, size_t cap, char *err,
                 size_t errcap) {
    json_error_t je;
    if (errcap)
        err[0] = 0;
    /* jansson's parser limits nesting itself (JSON_PARSER_MAX_DEPTH, 2048),
     * so depth() below recurses no deeper than that */
    json_t *doc = json_loadb(body, n, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        if (errcap)
            snprintf(err, errcap, "%d:%d: %s", je.line, je.column, je.text);
        return -1;
    }
    int64_t r;
    if (!json_is_object(doc)) {
        if (errcap)
            snprintf(err, errcap, "a document is a JSON object");
        r = -1;
    } else if (depth(doc) > max_depth) {
        if (errcap)
            snprintf(err, errcap, "nested deeper than %u levels", (unsigned)max_depth);
        r = -1;
    } else {
        size_t need = json_dumpb(doc, NULL, 0, JSON_COMPACT);
        /* 0: out of memory on the way, as good as no room */
        r = need && need <= cap ? (int64_t)json_dumpb(doc, out, cap, JSON_COMPACT) : -2;
    }
    json_decref(doc);
    return r;
}
