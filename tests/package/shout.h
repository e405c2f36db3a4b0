/* shout.h - the one component of the package test: upper-cases a string. */
#ifndef SHOUT_H
#define SHOUT_H
#include <stddef.h>

#include "ext.h"
#include "quarantine.h"

QTN_COMPONENT(shout) QTN_FAULT(-1)
ext_len shout(const char *s QTN_STRING, char *out QTN_OUT(cap) QTN_ACTUAL(return), size_t cap);

QTN_COMPONENT(shout) QTN_FAULT(-1)
int shout_pid(void);

#endif
