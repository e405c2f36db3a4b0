/* statsfile.c - statistics records made from the statistics area (see
 * statsfile.h). Compiled into the runtime and into the supervisor: the one
 * reads its own live area, the other the file of a program that may be
 * gone, so nothing read is trusted to be well formed. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "statsfile.h"

typedef struct jbuf {
    char *p;
    size_t cap, n;
    bool full;
} jbuf;

static void put(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(jbuf *b, const char *fmt, ...) {
    if (b->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= b->cap - b->n)
        b->full = true;
    else
        b->n += (size_t)k;
}

/* A name from the area as a JSON string: at most QTN__SF_NAME bytes, and
 * only the characters names may hold (anything else is torn memory). */
static void put_name(jbuf *b, const char *s) {
    char clean[QTN__SF_NAME + 1];
    size_t k = 0;
    for (; k < QTN__SF_NAME && s[k]; k++) {
        char c = s[k];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        clean[k] = ok ? c : '?';
    }
    clean[k] = 0;
    put(b, "\"%s\"", clean);
}

static const char *comp_name(qtn__sf_comp *comps, uint32_t id, uint32_t ncomps) {
    return id && id <= ncomps ? comps[id].name : "program";
}

uint64_t qtn__sf_calls(void *area, uint32_t id) {
    qtn__sf_head *h = area;
    qtn__sf_edge *e = &qtn__sf_edges(area)[id];
    uint64_t n = atomic_load_explicit(&e->calls_gone, memory_order_relaxed) +
                 atomic_load_explicit(&e->calls_slow, memory_order_relaxed);
    uint32_t rows = atomic_load(&h->rows_hwm);
    if (rows > QTN__SF_ROWS)
        rows = QTN__SF_ROWS;
    for (uint32_t r = 0; r < rows; r++)
        n += __atomic_load_n(&qtn__sf_row(area, r)[id], __ATOMIC_RELAXED);
    return n;
}

int qtn__sf_json(void *area, size_t len, int64_t time_ns, char *buf, size_t cap) {
    qtn__sf_head *h = area;
    if (!area || len < QTN__SF_SIZE || h->magic != QTN__SF_MAGIC || h->version != QTN__SF_VERSION ||
        !buf || cap < 2)
        return -1;
    uint32_t nc = atomic_load(&h->ncomps), ne = atomic_load(&h->nedges);
    if (nc > QTN_COMPONENTS_MAX)
        nc = QTN_COMPONENTS_MAX;
    if (ne >= QTN__EDGE_MAX)
        ne = QTN__EDGE_MAX - 1;
    qtn__sf_comp *comps = qtn__sf_comps(area);
    qtn__sf_edge *edges = qtn__sf_edges(area);
    char bid[sizeof h->build_id + 1];
    memcpy(bid, h->build_id, sizeof h->build_id);
    bid[sizeof h->build_id] = 0;
    for (char *s = bid; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            *s = '?';
    char proc[sizeof h->proc + 1];
    memcpy(proc, h->proc, sizeof h->proc);
    proc[sizeof h->proc] = 0;
    for (char *s = proc; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            *s = '?';
    jbuf b = {buf, cap, 0, false};
    put(&b, "{\"type\":\"stats\",\"pid\":%d,\"proc\":\"%s\",\"time_ns\":%lld,\"build_id\":\"%s\","
            "\"plan\":\"",
        h->pid, proc, (long long)time_ns, bid);
    for (uint32_t c = 1; c <= nc; c++) {
        uint8_t d = atomic_load(&h->plan[c]);
        char nm[QTN__SF_NAME + 3];
        jbuf nb = {nm, sizeof nm, 0, false};
        put_name(&nb, comps[c].name);
        if (nb.n >= 2) /* without its quotes */
            put(&b, "%s%.*s=", c > 1 ? " " : "", (int)nb.n - 2, nm + 1);
        if (d)
            put(&b, "%u", d);
        else
            put(&b, "host");
    }
    put(&b, "\",\"start_ns\":%lld,\"work\":%llu,\"cpu_ns\":%llu,\"cpu_at_ns\":%lld,\"ncpu\":%u",
        (long long)atomic_load(&h->start_ns), (unsigned long long)atomic_load(&h->work),
        (unsigned long long)atomic_load(&h->cpu_ns), (long long)atomic_load(&h->cpu_at_ns),
        h->ncpu);
    put(&b, ",\"components\":[");
    for (uint32_t c = 1; c <= nc; c++) {
        uint64_t calls = 0, cross = 0, ns = 0, faults = 0;
        for (uint32_t i = 1; i <= ne; i++) {
            if (edges[i].callee != c)
                continue;
            calls += qtn__sf_calls(area, i);
            cross += atomic_load(&edges[i].crossings);
            ns += atomic_load(&edges[i].ns_total);
            faults += atomic_load(&edges[i].faults);
        }
        unsigned d = atomic_load(&h->plan[c]);
        put(&b, "%s{\"name\":", c > 1 ? "," : "");
        put_name(&b, comps[c].name);
        put(&b,
            ",\"domain\":%u,\"calls\":%llu,\"crossings\":%llu,\"cross_ns\":%llu,\"faults\":%llu,"
            "\"domain_faults\":%llu,\"recovery_ns_total\":%llu,\"recovery_ns_max\":%llu,"
            "\"parked\":%u,\"parked_calls\":%llu,\"stale_calls\":%llu}",
            d, (unsigned long long)calls, (unsigned long long)cross, (unsigned long long)ns,
            (unsigned long long)faults, (unsigned long long)atomic_load(&comps[c].domain_faults),
            (unsigned long long)atomic_load(&comps[c].rec_total),
            (unsigned long long)atomic_load(&comps[c].rec_max),
            d && d <= QTN_DOMAINS_MAX && atomic_load(&h->parked[d]) ? 1u : 0u,
            (unsigned long long)atomic_load(&comps[c].parked_calls),
            (unsigned long long)atomic_load(&comps[c].stale_calls));
    }
    put(&b, "],\"edges\":[");
    bool first = true;
    for (uint32_t i = 1; i <= ne; i++) {
        qtn__sf_edge *e = &edges[i];
        uint64_t calls = qtn__sf_calls(area, i);
        if (!calls && !atomic_load(&e->crossings))
            continue; /* registered, never used */
        put(&b, "%s{\"caller\":", first ? "" : ",");
        first = false;
        put_name(&b, comp_name(comps, e->caller, nc));
        put(&b, ",\"callee\":");
        put_name(&b, comp_name(comps, e->callee, nc));
        put(&b, ",\"entry\":");
        put_name(&b, e->entry);
        put(&b,
            ",\"calls\":%llu,\"crossings\":%llu,\"cross_ns\":%llu,\"faults\":%llu,\"bytes\":%llu,"
            "\"overhead_ns\":%llu}",
            (unsigned long long)calls, (unsigned long long)atomic_load(&e->crossings),
            (unsigned long long)atomic_load(&e->ns_total),
            (unsigned long long)atomic_load(&e->faults),
            (unsigned long long)atomic_load(&e->bytes),
            (unsigned long long)atomic_load(&e->overhead_ns));
    }
    put(&b, "]}");
    return b.full ? -1 : (int)b.n;
}
