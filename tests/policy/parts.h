/* parts.h - the components of the policy tests' program, annotated for
 * `quarantine gen`. */
#ifndef QTN_TESTS_POLICY_PARTS_H
#define QTN_TESTS_POLICY_PARTS_H

#include <stddef.h>
#include <stdint.h>

#include "quarantine.h"

/* parser: counts the fields of a line; a line starting "BAD" crashes it
 * (a NULL dereference): the bug the optimistic test finds */
QTN_COMPONENT(parser) QTN_FAULT(-1)
int parse_line(const char *line QTN_STRING, int32_t *fields QTN_OUT(4));

/* render: formats four numbers into buf; returns the length */
QTN_COMPONENT(render) QTN_FAULT(-1)
int render_fields(const int32_t *fields QTN_IN(4), char *buf QTN_OUT_BYTES(cap) QTN_ACTUAL(return),
                  size_t cap);

/* checksum: of a buffer */
QTN_COMPONENT(checksum) QTN_FAULT(0)
uint32_t checksum(const uint8_t *buf QTN_IN(n), size_t n);

/* g1 calls g2 with a block of bytes; g2 hangs for hang_ms when asked (past
 * its 300 ms deadline): a fault that, when they share a domain, cannot be
 * pinned on one of them */
QTN_COMPONENT(g1) QTN_FAULT(-1) QTN_DEADLINE(300)
int g1_work(int32_t x, int32_t hang_ms);

QTN_COMPONENT(g2) QTN_FAULT(-1) QTN_DEADLINE(300)
int g2_step(const uint8_t *block QTN_IN(n), size_t n, int32_t hang_ms);

#endif
