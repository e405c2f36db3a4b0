/* storeq.h - a store's numbers, read by tests: one value of one query. */
#ifndef QTN_TESTS_STOREQ_H
#define QTN_TESTS_STOREQ_H

#include <sqlite3.h>

/* The first column of the first row of sql on h; fails the test when the
 * query does not prepare or returns no row. */
long long tsq_one(sqlite3 *h, const char *sql);
/* The same on the SQLite file at path, opened read-only for it. */
long long tsq_file(const char *path, const char *sql);

#endif
