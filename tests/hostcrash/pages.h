/* pages.h - two components of a toy server, for the host-crash tests: a
 * parser, and a renderer that calls it. Both run in the host unless a plan
 * says otherwise, so their bugs crash the program itself. */
#ifndef PAGES_H
#define PAGES_H

#include "quarantine.h"

/* how a call goes wrong */
enum {
    PAGES_OK,
    PAGES_IN_ENTRY,  /* SIGSEGV in the entry function itself */
    PAGES_IN_STATIC, /* SIGSEGV in a static helper of the entry's file */
    PAGES_IN_MARKED, /* SIGSEGV in a file of helpers marked QTN_SOURCE_OF(parser) */
    PAGES_ABORT,     /* abort() from the parser's code */
    PAGES_OVERFLOW   /* unbounded recursion in the parser: its stack overflows */
};

QTN_COMPONENT(parser) QTN_FAULT(-1)
int parse_page(int how);

QTN_COMPONENT(render) QTN_FAULT(-1)
int render_page(int how);

#endif
