/* textstats.h - a small text-statistics component ("textstats").
 *
 * Each function below is a stub: it runs the real function directly when the
 * plan keeps textstats in the caller's domain, and crosses into the domain
 * process that hosts it otherwise. Callers cannot tell the difference, except
 * through ts_pid(). A word is a maximal run of letters, digits and
 * apostrophes.
 *
 * When the domain hosting textstats fails, calls return fault values: -1
 * from the int functions and ts_pid(), (size_t)-1 from ts_normalize(). */
#ifndef QTN_EXAMPLES_TEXTSTATS_H
#define QTN_EXAMPLES_TEXTSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "quarantine.h"

#define TS_NBINS 26 /* one histogram bin per letter a..z */

extern qtn_component textstats_component;

/* Number of words in text. */
int ts_count_words(const char *text);

/* Fills hist[0..nbins) with letter counts ('a' or 'A' in bin 0, ...; letters
 * past the last bin are not counted) and returns the number of letters
 * counted. */
int ts_histogram(const char *text, uint32_t *hist, size_t nbins);

/* Lowercases buf[0..len) in place, squeezes each run of white space into
 * one space and drops leading and trailing white space; returns the new
 * length. Bytes past the new length are unspecified, and no NUL is written. */
size_t ts_normalize(char *buf, size_t len);

/* Calls fn(ctx, word, len) for each word of text, in order; `word` is not
 * NUL-terminated and is valid only while fn runs. fn runs in the caller's
 * domain wherever textstats runs, so ctx may point at the caller's data.
 * Stops at the first non-zero value fn returns and returns it; returns 0
 * after the last word. */
int ts_each_word(const char *text, int (*fn)(void *ctx, const char *word, size_t len),
                 void *ctx);

/* The process id of the process the component runs in. */
int32_t ts_pid(void);

/* Copies the longest word of text into out (at most cap - 1 bytes and a
 * NUL) and returns its length. It has a bug: a text without words crashes
 * it. Fault value -1. */
int ts_longest(const char *text, char *out, size_t cap);

#endif
