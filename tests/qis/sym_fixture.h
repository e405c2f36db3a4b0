/* sym_fixture.h - code of known components for test_sym to symbolise. */
#ifndef SYM_FIXTURE_H
#define SYM_FIXTURE_H

typedef int (*sym_fn)(int);

int sa_entry(int x);            /* component compa's entry */
sym_fn sa_helper_address(void); /* its static helper, same file */
int sm_work(int x);             /* in a file marked QTN_SOURCE_OF(markcomp) */
int sn_work(int x);             /* in no component */

#endif
