
/*
 * Copyright (C) ngx_voucher authors
 *
 * Campaign automations: see vw_auto.h.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "voucher_code.h"
#include "vw_auto.h"
#include "vw_json.h"
#include "vw_log.h"
#include "vw_map.h"
#include "vw_redis.h"
#include "vw_template.h"
#include "vw_util.h"


static const char *const  vw_auto_fields[] = {
    "status", "schedule", "trigger", "segment", "issue", "code", "codes",
    "channel", "message", "subject",
    "per_member", "catch_up", "locale", "enters", NULL
};

static const char *const  vw_trigger_fields[] = {
    "event", "delay", "unless", NULL
};

static const char *const  vw_codes_fields[] = {
    "prefix", "length", "mac_length", "pattern", "max_uses", "valid_days",
    "charset", "suffix", NULL
};

static const char *const  vw_events[] = {
    "signup", "purchase", "cart_abandoned", "referral",
    /* the loyalty programme's notices (notify yes) */
    "tier_upgraded", "tier_downgraded", "tier_will_drop", "points_expiring",
    "reward_redeemed", "referral_converted", NULL
};


int
vw_parse_duration(const char *s, int64_t *out)
{
    size_t   n;
    int64_t  v, unit;
    char     buf[32];

    n = strlen(s);

    if (n == 0 || n >= sizeof(buf)) {
        return -1;
    }

    memcpy(buf, s, n + 1);
    unit = 1;

    switch (buf[n - 1]) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        n++;
    }

    buf[n - 1] = '\0';

    if (vw_parse_int(buf, 0, INT64_C(366) * 86400, &v) != 0) {
        return -1;
    }

    v *= unit;

    if (v > INT64_C(366) * 86400) {
        return -1;
    }

    *out = v;

    return 0;
}


static int
vw_auto_codes(json_t *o, vw_auto_t *a, char *err, size_t errlen)
{
    int64_t           n;
    size_t            hashes, plen, k;
    uint64_t          bodies;
    vw_jerr_t         e;
    voucher_format_t  fmt;
    char      norm[VOUCHER_CODE_MAX_LEN + 1];
    char      sfx[VOUCHER_CODE_MAX_LEN + 1];
    char      why[256];

    e.err = err;
    e.errlen = errlen;

    if (!json_is_object(o)) {
        snprintf(err, errlen, "codes: expected an object");
        return -1;
    }

    if (vw_json_known(&e, o, "codes", vw_codes_fields) != 0) {
        return -1;
    }

    if (vw_json_str(&e, o, "codes", "prefix", 0, &a->prefix) != 0
        || vw_json_str(&e, o, "codes", "pattern", 0, &a->pattern) != 0
        || vw_json_str(&e, o, "codes", "charset", 0, &a->charset) != 0
        || vw_json_str(&e, o, "codes", "suffix", 0, &a->suffix) != 0)
    {
        return -1;
    }

    n = a->length;

    if (vw_json_int(&e, o, "codes", "length", 4, VOUCHER_BODY_MAX_LEN, &n)
        != 0)
    {
        return -1;
    }

    a->length = (int) n;
    n = a->mac_length;

    if (vw_json_int(&e, o, "codes", "mac_length", VOUCHER_MAC_MIN_LEN,
                    VOUCHER_MAC_MAX_LEN, &n) != 0
        || vw_json_int(&e, o, "codes", "max_uses", 0,
                       INT64_C(9007199254740991), &a->max_uses) != 0
        || vw_json_int(&e, o, "codes", "valid_days", 1, 3650,
                       &a->valid_days) != 0)
    {
        return -1;
    }

    a->mac_length = (int) n;

    if (a->prefix != NULL) {
        plen = voucher_code_normalize(a->prefix, strlen(a->prefix), norm,
                                      sizeof(norm));
        if (plen == 0) {
            snprintf(err, errlen, "codes.prefix: printable ASCII only");
            return -1;
        }

        free(a->prefix);
        a->prefix = vw_xstrdup(norm);
    }

    if (a->charset != NULL
        && voucher_charset_check(a->charset, strlen(a->charset), why,
                                 sizeof(why)) != 0)
    {
        snprintf(err, errlen, "codes.charset: %s", why);
        return -1;
    }

    /* by default a tag of at least a million values in the charset */

    fmt.charset = a->charset;
    fmt.charset_len = a->charset ? strlen(a->charset) : 0;
    fmt.suffix = NULL;
    fmt.suffix_len = 0;

    if (json_object_get(o, "mac_length") == NULL) {
        a->mac_length = (int) voucher_tag_min_len(&fmt);
    }

    if (a->suffix != NULL) {
        plen = voucher_code_normalize(a->suffix, strlen(a->suffix), norm,
                                      sizeof(norm));
        if (plen == 0) {
            snprintf(err, errlen, "codes.suffix: printable ASCII only");
            return -1;
        }

        free(a->suffix);
        a->suffix = vw_xstrdup(norm);
    }

    if (a->pattern != NULL) {
        /* the pattern must fit: prefix literals, '#'s, suffix literals */
        if (voucher_pattern_split(a->pattern, norm, sizeof(norm), &hashes,
                                  sfx, sizeof(sfx))
            != 0
            || hashes != (size_t) (a->length + a->mac_length)
            || strcmp(norm, a->prefix ? a->prefix : "") != 0
            || strcmp(sfx, a->suffix ? a->suffix : "") != 0)
        {
            goto bad_pattern;
        }
    }

    /* fewer than ~1e6 possible bodies make collisions the rule */
    for (bodies = 1, k = 0; k < (size_t) a->length && bodies < 1000000; k++) {
        bodies *= a->charset ? strlen(a->charset) : 32;
    }

    if (bodies < 1000000) {
        snprintf(err, errlen, "codes.length: too short for the charset: "
                 "fewer than a million random bodies");
        return -1;
    }

    if ((a->prefix ? strlen(a->prefix) : 0) + (size_t) a->length
        + (size_t) a->mac_length + (a->suffix ? strlen(a->suffix) : 0)
        > VOUCHER_CODE_MAX_LEN)
    {
        snprintf(err, errlen, "codes: prefix + length + mac_length + suffix "
                 "is more than %d characters", VOUCHER_CODE_MAX_LEN);
        return -1;
    }

    return 0;

bad_pattern:

    snprintf(err, errlen, "codes.pattern: must be the prefix, then "
             "length + mac_length (%d) '#', then the suffix, with ' ' or '-' "
             "between", a->length + a->mac_length);

    return -1;
}


/* "status": active (the default) or paused */

static int
vw_auto_status(json_t *root, vw_auto_t *a, vw_jerr_t *e)
{
    int    rc;
    char  *s;

    s = NULL;

    if (vw_json_str(e, root, "", "status", 0, &s) != 0) {
        return -1;
    }

    rc = 0;

    if (s != NULL) {
        if (strcmp(s, "paused") == 0) {
            a->active = 0;

        } else if (strcmp(s, "active") != 0) {
            rc = vw_json_fail(e, "", "status: expected active or paused");
        }
    }

    free(s);

    return rc;
}


/* "trigger": the event, a delay after it, what cancels the delivery */

static int
vw_auto_trigger(json_t *o, vw_auto_t *a, vw_jerr_t *e)
{
    size_t   i;
    json_t  *v;

    if (!json_is_object(o)) {
        return vw_json_fail(e, "", "trigger: expected an object");
    }

    if (vw_json_known(e, o, "trigger", vw_trigger_fields) != 0
        || vw_json_str(e, o, "", "event", 0, &a->trigger) != 0)
    {
        return -1;
    }

    for (i = 0; a->trigger && vw_events[i]; i++) {
        if (strcmp(a->trigger, vw_events[i]) == 0) {
            break;
        }
    }

    if (a->trigger == NULL || vw_events[i] == NULL) {
        return vw_json_fail(e, "", "trigger.event: expected signup, "
                            "purchase, cart_abandoned, referral, "
                            "tier_upgraded, tier_downgraded, tier_will_drop, "
                            "points_expiring, reward_redeemed or "
                            "referral_converted");
    }

    v = json_object_get(o, "delay");

    if (v != NULL) {
        if (json_is_integer(v) && json_integer_value(v) >= 0
            && json_integer_value(v) <= INT64_C(366) * 86400)
        {
            a->delay = json_integer_value(v);

        } else if (!json_is_string(v)
                   || vw_parse_duration(json_string_value(v), &a->delay)
                      != 0)
        {
            return vw_json_fail(e, "", "trigger.delay: expected seconds "
                                "or 90s, 15m, 2h, 1d (at most 366 days)");
        }
    }

    if (vw_json_str(e, o, "", "unless", 0, &a->unless) != 0) {
        return -1;
    }

    if (a->unless && strcmp(a->unless, "purchase") != 0) {
        return vw_json_fail(e, "", "trigger.unless: expected \"purchase\"");
    }

    return 0;
}


/* when: a "schedule", or a "trigger" */

static int
vw_auto_when(json_t *root, vw_auto_t *a, vw_jerr_t *e)
{
    json_t  *o;

    if (vw_json_str(e, root, "", "schedule", 0, &a->segment_text) != 0) {
        return -1;
    }

    o = json_object_get(root, "trigger");

    /* "enters" (vw_auto_rules.c) is the third way */
    if ((a->segment_text != NULL) + (o != NULL)
        + (json_object_get(root, "enters") != NULL) != 1)
    {
        return vw_json_fail(e, "", "expected one of \"schedule\", "
                            "\"trigger\" or \"enters\"");
    }

    if (a->segment_text == NULL) {
        return o ? vw_auto_trigger(o, a, e) : 0;
    }

    a->scheduled = 1;

    if (vw_schedule_parse(a->segment_text, &a->schedule, e->err, e->errlen)
        != 0)
    {
        return -1;
    }

    free(a->segment_text);
    a->segment_text = NULL;

    return 0;
}


/* whom: the "segment", everybody by default with a trigger */

static int
vw_auto_whom(json_t *root, vw_auto_t *a, vw_jerr_t *e)
{
    size_t  i;

    if (vw_json_str(e, root, "", "segment", 0, &a->segment_text) != 0) {
        return -1;
    }

    if (a->segment_text == NULL) {
        if (a->scheduled) {
            return vw_json_fail(e, "", "segment: required with a schedule "
                                "(\"all\" for everybody)");
        }

        a->segment_text = vw_xstrdup("all");
    }

    if (vw_segment_parse(a->segment_text, &a->segment, e->err, e->errlen)
        != 0)
    {
        return -1;
    }

    /* a triggered delivery looks at one member: no ranking among all */
    for (i = 0; !a->scheduled && !a->entering && i < a->segment.nrules;
         i++)
    {
        if (a->segment.rules[i].type == VW_RULE_RFM
            || a->segment.rules[i].type == VW_RULE_TOP)
        {
            return vw_json_fail(e, "", "segment: rfm and top rank all "
                                "members; they work with a schedule, not a "
                                "trigger");
        }
    }

    return 0;
}


/* what: unique codes ("codes" says how) or one shared "code" */

static int
vw_auto_what(json_t *root, vw_auto_t *a, vw_jerr_t *e)
{
    int      rc;
    char    *s, norm[VOUCHER_CODE_MAX_LEN + 1];
    json_t  *o;

    s = NULL;

    if (vw_json_str(e, root, "", "issue", 0, &s) != 0) {
        return -1;
    }

    rc = 0;

    if (s == NULL || strcmp(s, "unique") == 0) {
        a->shared = 0;

    } else if (strcmp(s, "shared") == 0) {
        a->shared = 1;

    } else {
        rc = vw_json_fail(e, "", "issue: expected unique or shared");
    }

    free(s);

    if (rc != 0 || vw_json_str(e, root, "", "code", 0, &a->code) != 0) {
        return -1;
    }

    if (a->shared != (a->code != NULL)) {
        return vw_json_fail(e, "", "%s", a->shared
                            ? "code: required with \"issue\": \"shared\""
                            : "code: only with \"issue\": \"shared\"");
    }

    if (a->code != NULL) {
        if (voucher_code_normalize(a->code, strlen(a->code), norm,
                                   sizeof(norm)) == 0)
        {
            return vw_json_fail(e, "", "code: 1..%d printable ASCII "
                                "characters", VOUCHER_CODE_MAX_LEN);
        }

        free(a->code);
        a->code = vw_xstrdup(norm);
    }

    o = json_object_get(root, "codes");

    if (o == NULL) {
        return 0;
    }

    if (a->shared) {
        return vw_json_fail(e, "", "codes: only with \"issue\": "
                            "\"unique\"");
    }

    return vw_auto_codes(o, a, e->err, e->errlen);
}


/* how: the "channel" (one of cf's when cf is given), the templates */

static int
vw_auto_how(json_t *root, vw_auto_t *a, const vw_config_t *cf, vw_jerr_t *e)
{
    if (vw_json_str(e, root, "", "channel", 0, &a->channel) != 0
        || vw_json_str(e, root, "", "message", 0, &a->message) != 0
        || vw_json_str(e, root, "", "subject", 0, &a->subject) != 0)
    {
        return -1;
    }

    if (a->channel == NULL || a->message == NULL) {
        return vw_json_fail(e, "", "%s: required",
                            a->channel == NULL ? "channel" : "message");
    }

    if (cf != NULL && vw_config_channel(cf, a->channel) == NULL) {
        return vw_json_fail(e, "", "channel: \"%s\" is not in the "
                            "configuration's channels", a->channel);
    }

    if (vw_template_check(a->message, e->err, e->errlen) != 0
        || (a->subject
            && vw_template_check(a->subject, e->err, e->errlen) != 0))
    {
        return -1;
    }

    return 0;
}


int
vw_auto_parse(const char *campaign, const char *json, const vw_config_t *cf,
    vw_auto_t *a, char *err, size_t errlen)
{
    int            rc;
    char           why[512];
    json_t        *root;
    vw_jerr_t      e;
    json_error_t   je;

    memset(a, 0, sizeof(vw_auto_t));
    a->campaign = vw_xstrdup(campaign);
    a->json = vw_xstrdup(json);
    a->active = 1;
    a->length = 8;
    a->mac_length = 4;
    a->max_uses = -1;
    a->since = 0;
    a->last = -1;

    root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        snprintf(err, errlen, "automation of campaign \"%s\": line %d "
                 "column %d: %s", campaign, je.line, je.column, je.text);
        vw_auto_free(a);
        return -1;
    }

    why[0] = '\0';
    e.err = why;
    e.errlen = sizeof(why);

    if (!json_is_object(root)) {
        rc = vw_json_fail(&e, "", "expected a JSON object");

    } else if (vw_json_known(&e, root, "", vw_auto_fields) != 0
               || vw_auto_status(root, a, &e) != 0
               || vw_auto_when(root, a, &e) != 0
               || vw_auto_rules(root, a, cf, &e) != 0
               || vw_auto_whom(root, a, &e) != 0
               || vw_auto_what(root, a, &e) != 0
               || vw_auto_how(root, a, cf, &e) != 0)
    {
        rc = -1;

    } else {
        rc = 0;

        if (cf != NULL) {
            vw_segment_phones(&a->segment, &cf->phone);
        }
    }

    json_decref(root);

    if (rc != 0) {
        snprintf(err, errlen, "automation of campaign \"%s\": %s", campaign,
                 why);
        vw_auto_free(a);
    }

    return rc;
}


void
vw_auto_free(vw_auto_t *a)
{
    free(a->campaign);
    free(a->json);
    free(a->trigger);
    free(a->unless);
    vw_segment_free(&a->segment);
    free(a->segment_text);
    free(a->code);
    free(a->prefix);
    free(a->pattern);
    free(a->charset);
    free(a->suffix);
    free(a->channel);
    free(a->message);
    free(a->subject);
    vw_auto_rules_free(a);
    memset(a, 0, sizeof(vw_auto_t));
}


void
vw_autos_free(vw_auto_t *a, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        vw_auto_free(&a[i]);
    }

    free(a);
}


/*
 * An automation that does not check is logged once per definition, not
 * at every tick: the daemon reads them every poll.
 */

static void
vw_auto_report(const char *campaign, const char *json, const char *why)
{
    void            **slot;
    static vw_map_t   reported;

    slot = vw_map_slot(&reported, campaign);

    if (*slot != NULL && strcmp(*slot, json) == 0) {
        return;
    }

    free(*slot);
    *slot = vw_xstrdup(json);

    vw_log_error("%s: skipped until it is fixed", why);
}


int
vw_autos_load(redisContext *c, const vw_config_t *cf, vw_auto_t **out,
    size_t *n, char *err, size_t errlen)
{
    int64_t      v;
    size_t       i, k;
    char        *key, why[1024];
    redisReply  *ids, *h;
    vw_auto_t   *a;

    *out = NULL;
    *n = 0;

    key = vw_key(cf, "autos");
    ids = redisCommand(c, "SMEMBERS %s", key);
    free(key);

    if (vw_redis_failed(c, ids, err, errlen)) {
        if (ids) {
            freeReplyObject(ids);
        }

        return -1;
    }

    for (i = 0; i < ids->elements; i++) {
        key = vw_key(cf, "a:%s", ids->element[i]->str);
        redisAppendCommand(c, "HMGET %s def since last catchup "
                           "looked", key);
        free(key);
    }

    a = vw_xalloc((ids->elements + 1) * sizeof(vw_auto_t));
    k = 0;

    for (i = 0; i < ids->elements; i++) {
        h = vw_redis_get(c, err, errlen);

        if (h == NULL) {
            freeReplyObject(ids);
            vw_autos_free(a, k);
            return -1;
        }

        if (h->type != REDIS_REPLY_ARRAY || h->elements != 5
            || h->element[0]->type != REDIS_REPLY_STRING)
        {
            freeReplyObject(h);
            continue;
        }

        if (vw_auto_parse(ids->element[i]->str, h->element[0]->str, cf,
                          &a[k], why, sizeof(why)) != 0)
        {
            vw_auto_report(ids->element[i]->str, h->element[0]->str, why);
            freeReplyObject(h);
            continue;
        }

        if (vw_reply_int(h->element[1], &v) == 0) {
            a[k].since = v;
        }

        if (vw_reply_int(h->element[2], &v) == 0) {
            a[k].last = v;
        }

        if (vw_reply_int(h->element[3], &v) == 0) {
            a[k].catchup = v;
        }

        /* "enters": the last look stands for the last run */
        if (a[k].entering) {
            a[k].last = vw_reply_int(h->element[4], &v) == 0 ? v : -1;
        }

        k++;
        freeReplyObject(h);
    }

    freeReplyObject(ids);

    *out = a;
    *n = k;

    return 0;
}
