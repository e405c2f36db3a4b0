/* query.h - component `query`: evaluates a JSON query over the documents
 * the server passes in.
 *
 * The documents are not query's: each call brings a snapshot of them with
 * the store's generation. What query keeps is an index (the snapshot
 * parsed), reused while the generation stays the same and updated from the
 * next snapshot when it does not: state that may be lost, rebuilt from the
 * next call's input.
 *
 * Bug `query` (SERVER_BUGS=query): a new index is made current before it is
 * built (order violation). See query.c. */
#ifndef SRV_QUERY_H
#define SRV_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "quarantine.h"

#define QUERY_ERR_MAX 160

/*
 * Runs query q (qlen bytes of JSON) over docs, a snapshot of dlen bytes: one
 * record per document, its id, its version (decimal) and its JSON text, each
 * NUL-terminated. gen is
 * the store generation the snapshot was taken at (the index is rebuilt when
 * it changes). A query is an object:
 *     {"field": "group", "equals": 3}         the field equals this value
 *     {"field": "name", "prefix": "doc-1"}    a string field starts with this
 *     ... "limit": 10                          at most this many ids back
 * Writes {"count":N,"ids":[...]} (all matches counted, ids in order, up to
 * the limit) to out and returns its length; -1 for a bad query (err says
 * why), -2 when the answer needs more than cap bytes (dlen + 64 is always
 * enough). Fault value -3: the caller answers 503 for this request.
 */
QTN_COMPONENT(query) QTN_FAULT(-3)
int64_t query_run(const char *q QTN_IN_BYTES(qlen), size_t qlen, const char *docs QTN_IN_BYTES(dlen),
                  size_t dlen, uint64_t gen, char *out QTN_OUT_BYTES(cap) QTN_ACTUAL(return),
                  size_t cap, char *err QTN_OUT_BYTES(errcap), size_t errcap);

#endif
