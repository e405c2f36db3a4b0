/* bulk.c - the bulk area of an incarnation's slot: buffers too large for a
 * channel's window are placed here, first fit from a sorted free list. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "domain.h"

void qtn__bulk_reset(qtn__inc *I) {
    I->nfree = 0;
    if (!I->free_cap) {
        I->free_spans = malloc(64 * sizeof *I->free_spans);
        if (!I->free_spans)
            return;
        I->free_cap = 64;
    }
    I->free_spans[0].off = qtn__g.lay.bulk_off;
    I->free_spans[0].len = QTN__SLOT_SIZE - qtn__g.lay.bulk_off;
    I->nfree = 1;
}

#define QTN__BULK_KEEP (8u << 20) /* smaller spans keep their pages for reuse */

void *qtn__bulk_alloc(qtn__inc *I, size_t len) {
    qtn__dom *dm = &qtn__doms[I->d];
    size_t need = (len + 4095) & ~(size_t)4095;
    if (need < len)
        return NULL;
    void *p = NULL;
    pthread_mutex_lock(&dm->lock);
    for (size_t i = 0; i < I->nfree; i++) {
        struct qtn__span *s = &I->free_spans[i];
        if (s->len < need)
            continue;
        p = I->base + s->off;
        s->off += need;
        s->len -= need;
        if (!s->len) {
            memmove(s, s + 1, (I->nfree - i - 1) * sizeof *s);
            I->nfree--;
        }
        break;
    }
    pthread_mutex_unlock(&dm->lock);
    return p;
}

void qtn__bulk_free(qtn__inc *I, void *p, size_t len) {
    qtn__dom *dm = &qtn__doms[I->d];
    size_t need = (len + 4095) & ~(size_t)4095;
    if (need > QTN__BULK_KEEP)
        madvise(p, need, MADV_REMOVE); /* give large spans back to the system */
    size_t off = (size_t)((char *)p - I->base);
    pthread_mutex_lock(&dm->lock);
    size_t i = 0;
    while (i < I->nfree && I->free_spans[i].off < off)
        i++;
    bool prev = i > 0 && I->free_spans[i - 1].off + I->free_spans[i - 1].len == off;
    bool next = i < I->nfree && off + need == I->free_spans[i].off;
    if (prev && next) {
        I->free_spans[i - 1].len += need + I->free_spans[i].len;
        memmove(&I->free_spans[i], &I->free_spans[i + 1],
                (I->nfree - i - 1) * sizeof *I->free_spans);
        I->nfree--;
    } else if (prev) {
        I->free_spans[i - 1].len += need;
    } else if (next) {
        I->free_spans[i].off = off;
        I->free_spans[i].len += need;
    } else {
        if (I->nfree == I->free_cap) {
            struct qtn__span *ns = realloc(I->free_spans, I->free_cap * 2 * sizeof *ns);
            if (!ns) { /* lose the span rather than corrupt the list */
                pthread_mutex_unlock(&dm->lock);
                return;
            }
            I->free_spans = ns;
            I->free_cap *= 2;
        }
        memmove(&I->free_spans[i + 1], &I->free_spans[i], (I->nfree - i) * sizeof *I->free_spans);
        I->free_spans[i].off = off;
        I->free_spans[i].len = need;
        I->nfree++;
    }
    pthread_mutex_unlock(&dm->lock);
}
