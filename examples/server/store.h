/* store.h - the documents: the server's data of record.
 *
 * Not a component: it lives in the host, so that no fault of an isolated
 * component, and no restart, can lose a document. Documents are JSON texts
 * by id; each put gets a version from one counter (the store's generation),
 * so (id, version) names one text for good, even across a delete. Safe from
 * any thread. */
#ifndef SRV_STORE_H
#define SRV_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_ID_MAX 128 /* longest id, without its NUL */

typedef struct store store;

store *store_new(void);
void store_free(store *s);

/* Keeps the documents in file `path` too, so that they outlive the process
 * (a crash of the server itself loses none): what the file holds is read
 * first (a last record cut short by a crash is dropped), the file is then
 * written again with the documents alone (compacted), and each put and
 * delete from now on is appended to it with one write, before it is
 * answered. Returns 0, or -1 with why in err (the file is left as it was). */
int store_persist(store *s, const char *path, char *err, size_t errlen);

/* Ids are 1..STORE_ID_MAX bytes of letters, digits, '-', '_' and '.'. */
int store_id_ok(const char *id);

/* Copies document id into a new buffer (*json, *len, NUL-terminated; free()
 * it) with its version. Returns 0, -1 if there is none, -2 out of memory. */
int store_get(store *s, const char *id, char **json, size_t *len, uint64_t *ver);

/* Stores len bytes of json as document id (a copy). Returns 1 if it was
 * created, 0 if it replaced one, -2 out of memory; *ver gets its version. */
int store_put(store *s, const char *id, const char *json, size_t len, uint64_t *ver);

/* Deletes document id. Returns 0, or -1 if there is none. */
int store_del(store *s, const char *id);

/* A snapshot of every document for query_run(): records of id, NUL,
 * version in decimal, NUL, JSON text, NUL, in a new buffer (free() it), and the generation it is of.
 * Returns 0 or -2 out of memory. */
int store_snapshot(store *s, char **buf, size_t *len, uint64_t *gen);

size_t store_count(store *s);
uint64_t store_generation(store *s);

#endif
