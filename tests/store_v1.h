/* store_v1.h - the store's first schema, as a store made by an earlier
 * quarantine holds it, with one report of component `oldcomp`: for the
 * tests that the migrations keep such a store's data. */
#ifndef QTN_TESTS_STORE_V1_H
#define QTN_TESTS_STORE_V1_H

#define STORE_V1                                                                           \
    "CREATE TABLE reports (id INTEGER PRIMARY KEY, installation TEXT NOT NULL,"          \
    " run TEXT NOT NULL, pid INTEGER NOT NULL, seq INTEGER NOT NULL,"                    \
    " time_ns INTEGER NOT NULL, kind TEXT NOT NULL, component TEXT NOT NULL,"            \
    " entry TEXT NOT NULL, signal INTEGER NOT NULL, domain INTEGER NOT NULL,"            \
    " recovery_ns INTEGER NOT NULL, calls_failed INTEGER NOT NULL, reason TEXT NOT NULL," \
    " json TEXT, UNIQUE (installation, run, pid, kind, seq));"                           \
    "CREATE INDEX reports_time ON reports (time_ns);"                                    \
    "INSERT INTO reports VALUES (1,'i','r',1,1,5,'signal','oldcomp','e',11,1,0,1,'x',NULL);" \
    "PRAGMA user_version=1;"

#endif
