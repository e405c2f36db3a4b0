/* render.c - documents as HTML pages (component `render`, render.h). */
#include "render.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct out {
    char *p;
    size_t n, cap;
    int full;
} out;

static void put(out *o, const char *s, size_t n) {
    if (o->full || n > o->cap - o->n) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

/* HTML-escapes n bytes of s (text and attribute values alike). */
static void esc(out *o, const char *s, size_t n) {
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = NULL;
        switch (s[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&quot;"; break;
        case '\'': e = "&#39;"; break;
        default: continue;
        }
        put(o, s + from, i - from);
        puts_(o, e);
        from = i + 1;
    }
    put(o, s + from, n - from);
}

static void value(out *o, json_t *v) {
    if (json_is_string(v)) {
        esc(o, json_string_value(v), json_string_length(v));
        return;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        o->full = 1; /* out of memory: as good as no room */
        return;
    }
    puts_(o, "<code>");
    esc(o, text, strlen(text));
    puts_(o, "</code>");
    free(text);
}

int64_t render_html(const char *id, const char *json, size_t n, char *buf, size_t cap) {
    json_t *doc = json_loadb(json, n, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return -1;
    }
    out o = {buf, 0, cap, 0};
    puts_(&o, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    esc(&o, id, strlen(id));
    puts_(&o, "</title></head>\n<body><h1>");
    esc(&o, id, strlen(id));
    puts_(&o, "</h1>\n<table>\n");
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        puts_(&o, "<tr><th>");
        esc(&o, key, strlen(key));
        puts_(&o, "</th><td>");
        value(&o, v);
        puts_(&o, "</td></tr>\n");
    }
    puts_(&o, "</table>\n</body></html>\n");
    json_decref(doc);
    return o.full ? -2 : (int64_t)o.n;
}
