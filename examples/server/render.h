/* render.h - component `render`: a document as an HTML page.
 *
 * A pure function of its inputs (it parses the document with jansson inside
 * the call and keeps nothing), so a restart loses nothing. */
#ifndef SRV_RENDER_H
#define SRV_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "quarantine.h"

/* Renders document `id` (its JSON text, n bytes) as an HTML page into out:
 * a title, and a table of its fields with their values (nested values as
 * compact JSON), everything escaped. Returns the page's length, -1 if json
 * is not a JSON object, -2 if the page needs more than cap bytes (call again
 * with a larger buffer). Fault value -3: the caller answers 503 for this
 * request. */
QTN_COMPONENT(render) QTN_FAULT(-3)
int64_t render_html(const char *id QTN_STRING, const char *json QTN_IN_BYTES(n), size_t n,
                    char *out QTN_OUT_BYTES(cap) QTN_ACTUAL(return), size_t cap);

#endif
