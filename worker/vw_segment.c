
/*
 * Copyright (C) ngx_voucher authors
 *
 * Members and segments: see vw_segment.h.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_segment.h"
#include "vw_util.h"


#define VW_DAY  86400


static const char  *vw_rfm_names[VW_RFM_NGROUPS] = {
    "none", "champions", "loyal", "new_customers", "potential", "at_risk",
    "hibernating", "need_attention"
};


const char *
vw_rfm_group_name(int group)
{
    return group >= 0 && group < VW_RFM_NGROUPS ? vw_rfm_names[group] : "?";
}


static int
vw_cmp_i64(const void *a, const void *b)
{
    int64_t  x = *(const int64_t *) a, y = *(const int64_t *) b;

    return x < y ? -1 : x > y;
}


/* how many of the sorted v[0..n) are below x */

static size_t
vw_below(const int64_t *v, size_t n, int64_t x)
{
    size_t  lo, hi, mid;

    lo = 0;
    hi = n;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (v[mid] < x) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return lo;
}


/*
 * Quintile score 1..5 of x among the n sorted values: 1 + 5 * (values
 * below x) / n.  Equal values get equal scores; when everybody is equal,
 * everybody scores 1.
 */

static int
vw_quintile(const int64_t *v, size_t n, int64_t x)
{
    return 1 + (int) (5 * vw_below(v, n, x) / n);
}


void
vw_rfm_score(vw_member_t *m, size_t n, int64_t now)
{
    int        r, f, mo;
    size_t     i, k;
    int64_t   *rv, *fv, *mv;

    rv = vw_xalloc((n ? n : 1) * sizeof(int64_t));
    fv = vw_xalloc((n ? n : 1) * sizeof(int64_t));
    mv = vw_xalloc((n ? n : 1) * sizeof(int64_t));

    k = 0;

    for (i = 0; i < n; i++) {
        m[i].r = 0;
        m[i].f = 0;
        m[i].m = 0;
        m[i].group = VW_RFM_NONE;

        if (m[i].count <= 0 || m[i].last == VW_UNSET) {
            continue;
        }

        /* recency as "last purchase": later is better, so it ranks up */
        rv[k] = m[i].last < now ? m[i].last : now;
        fv[k] = m[i].count;
        mv[k] = m[i].spend > 0 ? m[i].spend : 0;
        k++;
    }

    if (k > 0) {
        qsort(rv, k, sizeof(int64_t), vw_cmp_i64);
        qsort(fv, k, sizeof(int64_t), vw_cmp_i64);
        qsort(mv, k, sizeof(int64_t), vw_cmp_i64);
    }

    for (i = 0; i < n; i++) {
        if (m[i].count <= 0 || m[i].last == VW_UNSET) {
            continue;
        }

        r = vw_quintile(rv, k, m[i].last < now ? m[i].last : now);
        f = vw_quintile(fv, k, m[i].count);
        mo = vw_quintile(mv, k, m[i].spend > 0 ? m[i].spend : 0);

        m[i].r = r;
        m[i].f = f;
        m[i].m = mo;

        if (r >= 4 && f >= 4 && mo >= 4) {
            m[i].group = VW_RFM_CHAMPIONS;

        } else if (r >= 3 && f >= 4) {
            m[i].group = VW_RFM_LOYAL;

        } else if (r >= 4 && f == 1) {
            m[i].group = VW_RFM_NEW_CUSTOMERS;

        } else if (r >= 4) {
            m[i].group = VW_RFM_POTENTIAL;

        } else if (r <= 2 && f >= 3) {
            m[i].group = VW_RFM_AT_RISK;

        } else if (r <= 2) {
            m[i].group = VW_RFM_HIBERNATING;

        } else {
            m[i].group = VW_RFM_NEED_ATTENTION;
        }
    }

    free(rv);
    free(fv);
    free(mv);
}


char *
vw_phone_normalize(const char *s)
{
    char    *p;
    size_t   n, digits;

    p = vw_xalloc(strlen(s) + 1);
    n = 0;
    digits = 0;

    for ( /* void */ ; *s; s++) {
        if (*s == ' ' || *s == '-' || *s == '.' || *s == '(' || *s == ')') {
            continue;
        }

        if (*s == '+' && n == 0) {
            p[n++] = '+';
            continue;
        }

        if (*s < '0' || *s > '9') {
            free(p);
            return NULL;
        }

        p[n++] = *s;
        digits++;
    }

    p[n] = '\0';

    if (digits < 6 || digits > 15) {
        free(p);
        return NULL;
    }

    return p;
}


void
vw_member_birthday(vw_member_t *m)
{
    int          mo, d;
    const char  *b;

    m->birth_month = 0;
    m->birth_day = 0;
    b = m->birthday;

    if (b == NULL) {
        return;
    }

    /* YYYY-MM-DD or MM-DD: the month and day are the last five */
    if (strlen(b) == 10) {
        b += 5;
    }

    if (strlen(b) != 5 || sscanf(b, "%2d-%2d", &mo, &d) != 2
        || mo < 1 || mo > 12 || d < 1 || d > 31)
    {
        return;
    }

    m->birth_month = mo;
    m->birth_day = d;
}


void
vw_member_free(vw_member_t *m)
{
    free(m->id);
    free(m->name);
    free(m->phone);
    free(m->e164);
    free(m->loyalty_tier);
    free(m->attrs);
    free(m->email);
    free(m->line);
    free(m->tier);
    free(m->tags);
    free(m->birthday);
}


void
vw_segment_free(vw_segment_t *seg)
{
    size_t  i, j;

    for (i = 0; i < seg->nrules; i++) {
        for (j = 0; j < seg->rules[i].nvalues; j++) {
            free(seg->rules[i].values[j]);
        }

        free(seg->rules[i].values);
    }

    free(seg->rules);
    memset(seg, 0, sizeof(vw_segment_t));
}


/* trims spaces of [*s, *e) */

static void
vw_trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t')) {
        (*s)++;
    }

    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) {
        (*e)--;
    }
}


static int
vw_rule_values(vw_rule_t *rule, const char *s, const char *e, int phones,
    const char *name, char *err, size_t errlen)
{
    char        *v, *p;
    const char  *a, *b, *x, *y;

    if (s == e) {
        snprintf(err, errlen, "%s: expected a comma-separated list", name);
        return -1;
    }

    a = s;

    while (a <= e) {
        b = memchr(a, ',', (size_t) (e - a));

        if (b == NULL) {
            b = e;
        }

        x = a;
        y = b;
        vw_trim(&x, &y);

        if (x == y) {
            snprintf(err, errlen, "%s: an empty element", name);
            return -1;
        }

        v = vw_xstrndup(x, (size_t) (y - x));

        /* an element that is a phone number matches phones too */
        if (phones && (v[0] == '+' || (v[0] >= '0' && v[0] <= '9'))
            && (p = vw_phone_normalize(v)) != NULL)
        {
            rule->values = vw_xrealloc(rule->values,
                                       (rule->nvalues + 1) * sizeof(char *));
            rule->values[rule->nvalues++] = p;
        }

        rule->values = vw_xrealloc(rule->values,
                                   (rule->nvalues + 1) * sizeof(char *));
        rule->values[rule->nvalues++] = v;

        a = b + 1;
    }

    return 0;
}


static int
vw_rule_number(vw_rule_t *rule, const char *s, const char *e, int64_t min,
    int64_t max, const char *name, const char *what, char *err,
    size_t errlen)
{
    char  buf[32];

    if (s == e || (size_t) (e - s) >= sizeof(buf)) {
        goto bad;
    }

    memcpy(buf, s, (size_t) (e - s));
    buf[e - s] = '\0';

    if (vw_parse_int(buf, min, max, &rule->n) == 0) {
        return 0;
    }

bad:

    snprintf(err, errlen, "%s: expected %s %lld..%lld", name, what,
             (long long) min, (long long) max);

    return -1;
}


#define VW_SEGMENT_RULES  "all, tier:T,..., birth_month[:M], tags:T,..., " \
                          "list:ID|PHONE,..., rfm:GROUP,..., dormant:DAYS, " \
                          "new:DAYS, top:N"


static int
vw_rule_parse(vw_rule_t *rule, const char *s, const char *e, char *err,
    size_t errlen)
{
    int          g;
    size_t       len, i;
    const char  *colon, *a;
    char         name[32];

    vw_trim(&s, &e);

    if (s == e) {
        snprintf(err, errlen, "an empty rule");
        return -1;
    }

    colon = memchr(s, ':', (size_t) (e - s));
    len = (size_t) ((colon ? colon : e) - s);

    if (len >= sizeof(name)) {
        len = sizeof(name) - 1;
    }

    memcpy(name, s, len);
    name[len] = '\0';
    a = colon ? colon + 1 : e;

    if (strcmp(name, "all") == 0 && colon == NULL) {
        rule->type = VW_RULE_ALL;
        return 0;
    }

    if (strcmp(name, "birth_month") == 0) {
        rule->type = VW_RULE_BIRTH_MONTH;
        rule->n = 0;

        return colon ? vw_rule_number(rule, a, e, 1, 12, name, "a month",
                                      err, errlen)
                     : 0;
    }

    if (colon == NULL) {
        goto unknown;
    }

    if (strcmp(name, "tier") == 0) {
        rule->type = VW_RULE_TIER;
        return vw_rule_values(rule, a, e, 0, name, err, errlen);
    }

    if (strcmp(name, "tags") == 0 || strcmp(name, "tag") == 0) {
        rule->type = VW_RULE_TAGS;
        return vw_rule_values(rule, a, e, 0, name, err, errlen);
    }

    if (strcmp(name, "list") == 0) {
        rule->type = VW_RULE_LIST;
        return vw_rule_values(rule, a, e, 1, name, err, errlen);
    }

    if (strcmp(name, "rfm") == 0) {
        rule->type = VW_RULE_RFM;

        if (vw_rule_values(rule, a, e, 0, name, err, errlen) != 0) {
            return -1;
        }

        for (i = 0; i < rule->nvalues; i++) {
            for (g = 1; g < VW_RFM_NGROUPS; g++) {
                if (strcmp(rule->values[i], vw_rfm_names[g]) == 0) {
                    break;
                }
            }

            if (g == VW_RFM_NGROUPS) {
                snprintf(err, errlen, "rfm: unknown group \"%s\" (known: "
                         "champions, loyal, new_customers, potential, "
                         "at_risk, hibernating, need_attention)",
                         rule->values[i]);
                return -1;
            }

            rule->groups |= 1u << g;
        }

        return 0;
    }

    if (strcmp(name, "dormant") == 0) {
        rule->type = VW_RULE_DORMANT;
        return vw_rule_number(rule, a, e, 1, 36500, name, "days", err,
                              errlen);
    }

    if (strcmp(name, "new") == 0) {
        rule->type = VW_RULE_NEW;
        return vw_rule_number(rule, a, e, 1, 36500, name, "days", err,
                              errlen);
    }

    if (strcmp(name, "top") == 0) {
        rule->type = VW_RULE_TOP;
        return vw_rule_number(rule, a, e, 1, 100000000, name, "a count",
                              err, errlen);
    }

unknown:

    snprintf(err, errlen, "unknown rule \"%.*s\" (known: " VW_SEGMENT_RULES
             ")", (int) (e - s), s);

    return -1;
}


int
vw_segment_parse(const char *spec, vw_segment_t *seg, char *err,
    size_t errlen)
{
    int          top;
    size_t       i;
    const char  *s, *e;
    char         why[512];

    memset(seg, 0, sizeof(vw_segment_t));

    if (spec == NULL || spec[0] == '\0') {
        snprintf(err, errlen, "segment: empty");
        return -1;
    }

    s = spec;
    top = 0;

    for ( ;; ) {
        e = strchr(s, '&');

        if (e == NULL) {
            e = s + strlen(s);
        }

        seg->rules = vw_xrealloc(seg->rules,
                                 (seg->nrules + 1) * sizeof(vw_rule_t));
        memset(&seg->rules[seg->nrules], 0, sizeof(vw_rule_t));
        seg->nrules++;

        if (vw_rule_parse(&seg->rules[seg->nrules - 1], s, e, why,
                          sizeof(why)) != 0)
        {
            snprintf(err, errlen, "segment \"%s\": %s", spec, why);
            vw_segment_free(seg);
            return -1;
        }

        if (*e == '\0') {
            break;
        }

        s = e + 1;
    }

    for (i = 0; i < seg->nrules; i++) {
        if (seg->rules[i].type == VW_RULE_RFM) {
            seg->needs_rfm = 1;
        }

        if (seg->rules[i].type == VW_RULE_TOP && top++) {
            snprintf(err, errlen, "segment \"%s\": top:N given twice", spec);
            vw_segment_free(seg);
            return -1;
        }
    }

    return 0;
}


static int
vw_listed(const char *list, const char *x)
{
    size_t       n;
    const char  *p;

    if (list == NULL || x == NULL) {
        return 0;
    }

    n = strlen(x);

    for (p = strstr(list, x); p; p = strstr(p + 1, x)) {
        if (p > list && p[-1] == ',' && p[n] == ',') {
            return 1;
        }
    }

    return 0;
}


static int vw_in(char **values, size_t n, const char *x);


void
vw_segment_phones(vw_segment_t *seg, const vw_phone_country_t *pc)
{
    char        e164[32];
    size_t      i, j, n;
    vw_rule_t  *rule;

    for (i = 0; i < seg->nrules; i++) {
        rule = &seg->rules[i];

        if (rule->type != VW_RULE_LIST) {
            continue;
        }

        n = rule->nvalues;

        for (j = 0; j < n; j++) {
            if (vw_phone_e164(rule->values[j], pc, e164, sizeof(e164)) != 0
                || vw_in(rule->values, rule->nvalues, e164))
            {
                continue;
            }

            rule->values = vw_xrealloc(rule->values, (rule->nvalues + 1)
                                                     * sizeof(char *));
            rule->values[rule->nvalues++] = vw_xstrdup(e164);
        }
    }
}


static int
vw_in(char **values, size_t n, const char *x)
{
    size_t  i;

    if (x == NULL) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (strcmp(values[i], x) == 0) {
            return 1;
        }
    }

    return 0;
}


/* the month (1..12) of a unix time in a zone tz_min minutes east of UTC */

static int
vw_month_of(int64_t t, int tz_min)
{
    int64_t  z, era, doe, yoe, doy, mp;

    /* civil_from_days (H. Hinnant), on local days */
    z = (t + (int64_t) tz_min * 60) / VW_DAY;

    if ((t + (int64_t) tz_min * 60) % VW_DAY < 0) {
        z--;
    }

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    return (int) (mp < 10 ? mp + 3 : mp - 9);
}


static int
vw_rule_match(const vw_rule_t *rule, const vw_member_t *m, int64_t now,
    int tz_min)
{
    size_t  i;
    int     month;

    switch (rule->type) {

    case VW_RULE_ALL:
    case VW_RULE_TOP:
        return 1;

    case VW_RULE_TIER:
        /* the loyalty programme's tier, when the member has one */
        return vw_in(rule->values, rule->nvalues,
                     m->loyalty_tier ? m->loyalty_tier : m->tier);

    case VW_RULE_BIRTH_MONTH:
        month = rule->n ? (int) rule->n : vw_month_of(now, tz_min);
        return m->birth_month == month;

    case VW_RULE_TAGS:
        for (i = 0; i < rule->nvalues; i++) {
            if (vw_listed(m->tags, rule->values[i])) {
                return 1;
            }
        }

        return 0;

    case VW_RULE_LIST:
        return vw_in(rule->values, rule->nvalues, m->id)
               || vw_in(rule->values, rule->nvalues, m->phone)
               || vw_in(rule->values, rule->nvalues, m->e164);

    case VW_RULE_RFM:
        return (rule->groups & (1u << m->group)) != 0;

    case VW_RULE_DORMANT:
        return m->count > 0 && m->last != VW_UNSET
               && m->last <= now - rule->n * VW_DAY;

    case VW_RULE_NEW:
        return m->signup != VW_UNSET && m->signup <= now
               && m->signup > now - rule->n * VW_DAY;
    }

    return 0;
}


static int
vw_by_spend(const void *a, const void *b, void *ctx)
{
    const vw_member_t  *m = ctx;
    const vw_member_t  *x = &m[*(const size_t *) a];
    const vw_member_t  *y = &m[*(const size_t *) b];

    if (x->spend != y->spend) {
        return x->spend > y->spend ? -1 : 1;
    }

    return strcmp(x->id, y->id);
}


size_t
vw_segment_eval(const vw_segment_t *seg, vw_member_t *m, size_t n,
    int64_t now, int tz_min, size_t *out)
{
    size_t            i, j, k;
    int64_t           top;

    if (seg->needs_rfm) {
        vw_rfm_score(m, n, now);
    }

    top = -1;

    for (j = 0; j < seg->nrules; j++) {
        if (seg->rules[j].type == VW_RULE_TOP) {
            top = seg->rules[j].n;
        }
    }

    k = 0;

    for (i = 0; i < n; i++) {
        for (j = 0; j < seg->nrules; j++) {
            if (!vw_rule_match(&seg->rules[j], &m[i], now, tz_min)) {
                break;
            }
        }

        /* top:N ranks buyers only: who never spent is nobody's top */
        if (j == seg->nrules && (top < 0 || m[i].spend > 0)) {
            out[k++] = i;
        }
    }

    if (top >= 0) {
        qsort_r(out, k, sizeof(size_t), vw_by_spend, m);

        if ((int64_t) k > top) {
            k = (size_t) top;
        }
    }

    return k;
}
