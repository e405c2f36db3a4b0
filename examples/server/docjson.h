/* docjson.h - component `json`: checks the JSON bodies clients send, with
 * jansson, inside one call (no jansson handle ever leaves the component).
 *
 * A pure function of its inputs. */
#ifndef SRV_DOCJSON_H
#define SRV_DOCJSON_H

#include <stddef.h>
#include <stdint.h>

#include "quarantine.h"

#define DJ_ERR_MAX 160

/* Parses body (n bytes) as a document: a JSON object, with no duplicate
 * keys, at most `max_depth` levels deep. Writes its compact form to out and
 * returns its length; -1 when body is no such document (err then says why,
 * NUL-terminated, with the line and column), -2 when the compact form needs
 * more than cap bytes (call again with a larger buffer). Fault value -3:
 * the caller answers 503 for this request. */
QTN_COMPONENT(json) QTN_FAULT(-3)
int64_t dj_canon(const char *body QTN_IN_BYTES(n), size_t n, uint32_t max_depth,
                 char *out QTN_OUT_BYTES(cap) QTN_ACTUAL(return), size_t cap,
                 char *err QTN_OUT_BYTES(errcap), size_t errcap);

#endif
