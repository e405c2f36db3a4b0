/* opts.c - option values shared by the subcommands (see opts.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "opts.h"

int qtn_opt_num(const char *s, double lo, double hi, double *out) {
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int qtn_opt_duration(const char *s, double hi, double *out) {
    if (!s || !*s)
        return -1;
    char num[64];
    size_t n = strlen(s);
    double unit = 1;
    if (n > 1 && strchr("smhd", s[n - 1])) {
        unit = s[n - 1] == 's' ? 1 : s[n - 1] == 'm' ? 60 : s[n - 1] == 'h' ? 3600 : 86400;
        n--;
    }
    if (n >= sizeof num)
        return -1;
    memcpy(num, s, n);
    num[n] = 0;
    double v;
    if (qtn_opt_num(num, 0, hi / unit, &v))
        return -1;
    *out = v * unit;
    return 0;
}

const char qtn_opt_policy_help[] =
    "  --policy MODE         decide the plan from the store and push it: adaptive\n"
    "                        (pooled evidence where there is any, sceptical of new or\n"
    "                        changed code, trusting of code with a long clean history),\n"
    "                        optimistic (nothing isolated until it faults), pessimistic\n"
    "                        (everything isolated until it earns trust), cooperative\n"
    "                        (the fleet's evidence for the same code is the prior)\n"
    "  --budget PCT          overhead cap, percent of the program's CPU (default 25)\n"
    "  --budget-binds WHAT   insurance (default): the cap binds boundaries drawn on\n"
    "                        suspicion; a component whose faults are proven (a fault\n"
    "                        or host crash blamed on it) is isolated beyond it when its\n"
    "                        faults cost more than its boundary; all: a hard cap\n"
    "  --failure-weight W    a failed request weighs W slowed ones (default 10: a\n"
    "                        failure costs the user the request, a slower one only\n"
    "                        time; ten is how far retries and timeouts make it worse)\n"
    "  --half-life DURATION  older evidence counts half after this long (default 7d;\n"
    "                        0: never discounted)\n"
    "  --confidence P        of the upper credible bound sceptical modes decide by\n"
    "                        (default 0.95)\n"
    "  --trust-calls N       adaptive: calls without a fault after which code is\n"
    "                        trusted (default 1000000)\n"
    "  --prior-calls N       weight of the sceptical prior, in calls (default 1000;\n"
    "                        smaller learns faster)\n"
    "  --min-gain REQ_PER_H  a plan change must gain this much (default 36) ...\n"
    "  --min-gain-pct PCT    ... and this share of what is at stake in the components\n"
    "                        it moves (default 5)\n"
    "  --dwell DURATION      a plan stays in force at least this long (default 60s)\n"
    "  --max-changes N       plan changes per hour at most (default 6)\n"
    "  --max-domains N       isolated domains at most (default 32)\n";

int qtn_opt_policy(const char *opt, const char *val, qp_settings *set, char *err, size_t len) {
    double v;
    int bad = 0;
    const char *range = "";
    if (!strcmp(opt, "--policy")) {
        int m = qp_mode_parse(val);
        if (m < 0) {
            snprintf(err, len, "%s: '%s' is not a mode (adaptive, optimistic, pessimistic, "
                               "cooperative)",
                     opt, val);
            return -1;
        }
        set->mode = (qp_mode)m;
        return 1;
    } else if (!strcmp(opt, "--budget")) {
        range = "a percentage, 0 to 100";
        bad = qtn_opt_num(val, 0, 100, &v);
        set->budget = v / 100;
    } else if (!strcmp(opt, "--budget-binds")) {
        range = "insurance or all";
        bad = strcmp(val, "insurance") && strcmp(val, "all");
        set->hard_budget = !strcmp(val, "all");
    } else if (!strcmp(opt, "--failure-weight")) {
        range = "a number, 0.001 to 1000000";
        bad = qtn_opt_num(val, 0.001, 1e6, &v);
        set->failure_weight = v;
    } else if (!strcmp(opt, "--half-life")) {
        range = "a duration: 90s, 15m, 2h, 7d (at most 3650d)";
        bad = qtn_opt_duration(val, 3650 * 86400.0, &v);
        set->half_life_s = v;
    } else if (!strcmp(opt, "--confidence")) {
        range = "a probability, 0.5 to 0.9999";
        bad = qtn_opt_num(val, 0.5, 0.9999, &v);
        set->confidence = v;
    } else if (!strcmp(opt, "--trust-calls")) {
        range = "a number of calls, 0 to 1e15";
        bad = qtn_opt_num(val, 0, 1e15, &v);
        set->trust_calls = v;
    } else if (!strcmp(opt, "--prior-calls")) {
        range = "a number of calls, 1 to 1e12";
        bad = qtn_opt_num(val, 1, 1e12, &v);
        set->sceptical_b = v;
    } else if (!strcmp(opt, "--min-gain")) {
        range = "requests per hour, 0 to 1e12";
        bad = qtn_opt_num(val, 0, 1e12, &v);
        set->min_gain = v / 3600;
    } else if (!strcmp(opt, "--min-gain-pct")) {
        range = "a percentage, 0 to 100";
        bad = qtn_opt_num(val, 0, 100, &v);
        set->min_gain_share = v / 100;
    } else if (!strcmp(opt, "--dwell")) {
        range = "a duration: 90s, 15m, 2h (at most 30d)";
        bad = qtn_opt_duration(val, 30 * 86400.0, &v);
        set->dwell_s = v;
    } else if (!strcmp(opt, "--max-changes")) {
        range = "a whole number, 0 to 3600";
        bad = qtn_opt_num(val, 0, 3600, &v) || v != (int)v;
        set->max_changes_per_hour = (int)v;
    } else if (!strcmp(opt, "--max-domains")) {
        range = "a whole number, 1 to 32";
        bad = qtn_opt_num(val, 1, 32, &v) || v != (int)v;
        set->max_domains = (int)v;
    } else {
        return 0;
    }
    if (bad) {
        snprintf(err, len, "%s: '%s' is not %s", opt, val, range);
        return -1;
    }
    return 1;
}

int qtn_opt_mode_policy(const char *cmd, const char *opt, const char *val, qp_settings *set) {
    char err[256];
    int mode = !strcmp(opt, "--mode");
    int pr = qtn_opt_policy(mode ? "--policy" : opt, val, set, err, sizeof err);
    if (pr < 0)
        fprintf(stderr, "quarantine: %s: %s%s\n", cmd, mode ? "--mode" : "",
                mode ? err + strlen("--policy") : err);
    return pr;
}

/* ~/.local/state/quarantine/NAME, its folders made with make. */
static const char *state_file(char *buf, size_t len, int make, const char *name) {
    const char *home = getenv("HOME");
    home = home && *home ? home : ".";
    if (make) {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s/.local", home);
        mkdir(tmp, 0700);
        snprintf(tmp, sizeof tmp, "%s/.local/state", home);
        mkdir(tmp, 0700);
        snprintf(tmp, sizeof tmp, "%s/.local/state/quarantine", home);
        mkdir(tmp, 0700);
    }
    snprintf(buf, len, "%s/.local/state/quarantine/%s", home, name);
    return buf;
}

const char *qtn_opt_store(char *buf, size_t len, int make) {
    const char *e = getenv("QTN_STORE");
    if (e && *e)
        return e;
    return state_file(buf, len, make, "store.db");
}

const char *qtn_opt_outbox(char *buf, size_t len) {
    return state_file(buf, len, 1, "outbox.db");
}
