/* fleet.c - `quarantine fleet status` (see fleet.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.h"
#include "pg.h"
#include "replan.h"
#include "ship.h"

/* installations: last seen (any record), the build of the latest start,
 * the plan in force (the latest the statistics tell or a change applied) */
static const char INSTALLATIONS[] =
    "SELECT i.installation,"
    " GREATEST((SELECT MAX(time_ns) FROM stats s WHERE s.installation = i.installation),"
    "  (SELECT MAX(time_ns) FROM reports r WHERE r.installation = i.installation),"
    "  (SELECT MAX(start_ns) FROM starts t WHERE t.installation = i.installation)),"
    " (SELECT build_id FROM starts t WHERE t.installation = i.installation"
    "  ORDER BY start_ns DESC LIMIT 1),"
    " (SELECT plan FROM (SELECT time_ns, plan FROM stats s WHERE s.installation ="
    "  i.installation UNION ALL SELECT time_ns, to_plan FROM plan_changes p WHERE"
    "  p.installation = i.installation AND (p.applied = 1 OR p.pid = 0)) x"
    "  ORDER BY time_ns DESC LIMIT 1)"
    " FROM (SELECT DISTINCT installation FROM starts) i ORDER BY 2 DESC, 1";

/* builds: components, installations running it now, first started */
static const char BUILDS[] =
    "SELECT c.build_id, COUNT(*),"
    " (SELECT COUNT(*) FROM (SELECT DISTINCT ON (installation) installation, build_id FROM"
    "  starts ORDER BY installation, start_ns DESC) l WHERE l.build_id = c.build_id),"
    " (SELECT MIN(start_ns) FROM starts t WHERE t.build_id = c.build_id)"
    " FROM components c GROUP BY c.build_id ORDER BY 4 DESC NULLS LAST, 1";

/* per component's code: calls (increments of each process's cumulative
 * counts), installations that called it, faults and host crashes blamed */
static const char EVIDENCE[] =
    "SELECT c.component, c.code_id, COALESCE(x.calls, 0), COALESCE(x.inst, 0),"
    " COALESCE(b.faults, 0), COALESCE(b.host, 0)"
    " FROM (SELECT DISTINCT component, code_id FROM components) c"
    " LEFT JOIN (SELECT code_id, SUM(d) AS calls, COUNT(DISTINCT installation) AS inst FROM"
    "  (SELECT installation, code_id, calls - COALESCE(LAG(calls) OVER (PARTITION BY"
    "  installation, run, proc, pid, component ORDER BY time_ns), 0) AS d FROM stats) i"
    "  WHERE d > 0 GROUP BY code_id) x ON x.code_id = c.code_id"
    " LEFT JOIN (SELECT b.code_id,"
    "  SUM(CASE WHEN r.kind <> 'host-crash' THEN b.share ELSE 0 END) AS faults,"
    "  SUM(CASE WHEN r.kind = 'host-crash' THEN b.share ELSE 0 END) AS host"
    "  FROM report_blame b JOIN reports r ON r.id = b.report_id GROUP BY b.code_id) b"
    "  ON b.code_id = c.code_id"
    " ORDER BY c.component, c.code_id";

static PGresult *rows(const char *uri, PGconn *pg, const char *sql, char *err, size_t len) {
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    qf_fail(uri, pg, "cannot read", NULL, err, len);
    PQclear(r);
    return NULL;
}

static const char *val(const PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
}

static void utc(long long t_ns, char *out, size_t len) {
    time_t secs = (time_t)(t_ns / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* Where plan text puts component `name`: 0 the host, N a domain, -1 not
 * named. */
static int placed(const char *plan, const char *name) {
    size_t n = strlen(name);
    for (const char *p = plan; p && *p;) {
        while (*p == ' ' || *p == ',' || *p == ';')
            p++;
        if (!strncmp(p, name, n) && p[n] == '=')
            return strncmp(p + n + 1, "host", 4) ? atoi(p + n + 1) : 0;
        p += strcspn(p, " ,;");
    }
    return -1;
}

/* The recommendation: decided for installation `inst` as its supervisor
 * would (its records, the rest of the fleet's evidence pooled). */
static int recommend(const char *uri, PGconn *pg, const char *inst, const qp_settings *set,
                     qs_decision *d, char *err, size_t len) {
    qs_store *m = qf_mirror(uri, pg, inst, err, len);
    if (!m)
        return -1;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    int64_t now = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
    int r = qf_fetch_pool(m, uri, pg, inst, set->half_life_s, now, err, len) < 0
                ? -1
                : qs_decide(m, inst, NULL, NULL, 0.1, 1, now, set, d, err, len);
    qs_close(m);
    return r;
}

int qf_status(const char *uri, FILE *o, int json, const qp_settings *set, char *err, size_t len) {
    PGconn *pg = qf_connect(uri, err, len);
    if (!pg)
        return -1;
    PGresult *in = rows(uri, pg, INSTALLATIONS, err, len);
    PGresult *bu = in ? rows(uri, pg, BUILDS, err, len) : NULL;
    PGresult *ev = bu ? rows(uri, pg, EVIDENCE, err, len) : NULL;
    int rc = -1, decided = 0;
    qs_decision d;
    memset(&d, 0, sizeof d);
    char why[1024] = "";
    if (!ev)
        goto out;
    /* the newest build's installation seen last speaks for the fleet */
    const char *newest = PQntuples(bu) ? val(bu, 0, 0) : "", *rep = NULL;
    for (int i = 0; i < PQntuples(in) && !rep; i++)
        if (!strcmp(val(in, i, 2), newest))
            rep = val(in, i, 0);
    if (rep) {
        int r = recommend(uri, pg, rep, set, &d, why, sizeof why);
        if (r < 0) {
            snprintf(err, len, "%s", why);
            goto out;
        }
        decided = r == 0;
    } else {
        snprintf(why, sizeof why, "no installation has started a build yet");
    }
    char where[512];
    qf_where(uri, where, sizeof where);
    if (json) {
        fputs("{\"store\":", o);
        qs_json_str(o, where);
        fputs(",\"installations\":[", o);
    } else {
        fprintf(o, "fleet store %s: %d installation%s, %d build%s\n\ninstallations:\n", where,
                PQntuples(in), PQntuples(in) == 1 ? "" : "s", PQntuples(bu),
                PQntuples(bu) == 1 ? "" : "s");
        fprintf(o, "  %-20s %-23s %-14s %s\n", "installation", "last seen", "build",
                "plan in force");
    }
    for (int i = 0; i < PQntuples(in); i++) {
        char when[40];
        utc(atoll(val(in, i, 1)), when, sizeof when);
        if (json) {
            fprintf(o, "%s{\"installation\":", i ? "," : "");
            qs_json_str(o, val(in, i, 0));
            fprintf(o, ",\"last_seen_ns\":%lld,\"build_id\":", atoll(val(in, i, 1)));
            qs_json_str(o, val(in, i, 2));
            fputs(",\"plan\":", o);
            qs_json_str(o, val(in, i, 3));
            fputc('}', o);
        } else {
            fprintf(o, "  %-20s %-23s %-14.12s %s\n", val(in, i, 0), when, val(in, i, 2),
                    *val(in, i, 3) ? val(in, i, 3) : "(none yet)");
        }
    }
    fputs(json ? "],\"builds\":[" : "\nbuilds:\n", o);
    for (int i = 0; i < PQntuples(bu); i++) {
        long long first = atoll(val(bu, i, 3));
        char when[40] = "-";
        if (first)
            utc(first, when, sizeof when);
        if (json) {
            fprintf(o, "%s{\"build_id\":", i ? "," : "");
            qs_json_str(o, val(bu, i, 0));
            fprintf(o, ",\"components\":%d,\"installations\":%d,\"first_started_ns\":%lld}",
                    atoi(val(bu, i, 1)), atoi(val(bu, i, 2)), first);
        } else {
            fprintf(o,
                    "  %-14.12s %2d components, running on %d installation%s, first started"
                    " %s\n",
                    val(bu, i, 0), atoi(val(bu, i, 1)), atoi(val(bu, i, 2)),
                    atoi(val(bu, i, 2)) == 1 ? "" : "s", when);
        }
    }
    /* the posterior of the cooperative mode: the trusting prior updated by
     * the fleet's evidence */
    if (json) {
        fputs("],\"components\":[", o);
    } else {
        fputs("\npooled evidence per component (all installations; the posterior fault rate per"
              " call: the trusting prior\n  updated by them, as the cooperative mode has it):\n",
              o);
        fprintf(o, "  %-14s %-14s %12s %6s %8s %8s %11s\n", "component", "code", "calls", "inst.",
                "faults", "host", "rate mean");
    }
    for (int i = 0; i < PQntuples(ev); i++) {
        double calls = atof(val(ev, i, 2)), faults = atof(val(ev, i, 4)),
               host = atof(val(ev, i, 5));
        double a = set->trusting_a + faults + host, b = set->trusting_b + calls;
        double mean = a / b;
        if (json) {
            fprintf(o, "%s{\"component\":", i ? "," : "");
            qs_json_str(o, val(ev, i, 0));
            fputs(",\"code_id\":", o);
            qs_json_str(o, val(ev, i, 1));
            fprintf(o,
                    ",\"calls\":%.0f,\"installations\":%d,\"faults\":%.4g,"
                    "\"host_crashes_blamed\":%.4g,\"rate_mean\":%.6g}",
                    calls, atoi(val(ev, i, 3)), faults, host, mean);
        } else {
            fprintf(o, "  %-14s %-14.12s %12.0f %6d %8.4g %8.4g %11.3g\n", val(ev, i, 0),
                    val(ev, i, 1), calls, atoi(val(ev, i, 3)), faults, host, mean);
        }
    }
    if (json) {
        fputs("],\"recommended\":", o);
        if (decided) {
            fputs("{\"build_id\":", o);
            qs_json_str(o, d.ev.build_id);
            fputs(",\"decided_for\":", o);
            qs_json_str(o, rep);
            fprintf(o, ",\"mode\":\"%s\",\"plan\":", qp_mode_name(set->mode));
            qs_json_str(o, d.plan);
            fputs(",\"reason\":", o);
            qs_json_str(o, d.reason);
            fputc('}', o);
        } else {
            fputs("null,\"why_not\":", o);
            qs_json_str(o, why);
        }
        fputs(",\"differences\":[", o);
    } else if (decided) {
        fprintf(o,
                "\nthe plan the policy (%s) recommends for build %.12s, decided for %s with the"
                " rest of the fleet's evidence pooled:\n  %s\n  (%s)\n",
                qp_mode_name(set->mode), d.ev.build_id, rep, d.plan, d.reason);
    } else {
        fprintf(o, "\nno plan to recommend: %s\n", why);
    }
    int nd = 0;
    for (int i = 0; decided && i < PQntuples(in); i++) {
        if (strcmp(val(in, i, 2), d.ev.build_id))
            continue;
        const char *plan = val(in, i, 3);
        for (int k = 0; k < d.ev.n; k++) {
            const char *name = d.ev.names[k];
            int want = placed(d.plan, name) > 0, have = placed(plan, name) > 0;
            if (want == have)
                continue;
            if (json) {
                fprintf(o, "%s{\"installation\":", nd ? "," : "");
                qs_json_str(o, val(in, i, 0));
                fputs(",\"component\":", o);
                qs_json_str(o, name);
                fprintf(o, ",\"in_force\":\"%s\",\"recommended\":\"%s\"}",
                        have ? "isolated" : "host", want ? "isolated" : "host");
            } else {
                if (!nd)
                    fputs("\nwhere installations on that build differ from it:\n", o);
                fprintf(o, "  %-20s %s: %s in force, %s recommended\n", val(in, i, 0), name,
                        have ? "isolated" : "in the host", want ? "isolated" : "the host");
            }
            nd++;
        }
    }
    if (json)
        fputs("]}\n", o);
    else if (decided && !nd)
        fputs("\nevery installation on that build has it in force\n", o);
    rc = 0;
out:
    if (decided)
        qs_decision_free(&d);
    PQclear(in);
    PQclear(bu);
    PQclear(ev);
    PQfinish(pg);
    return rc;
}
