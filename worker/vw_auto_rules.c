
/*
 * Copyright (C) ngx_voucher authors
 *
 * The automation fields about how often and for whom a campaign repeats,
 * and how its messages read:
 *
 *   per_member   "once" (the default), "every run", "once per N days",
 *                "once a month", "once a year" (the default of birthday
 *                schedules: once per birthday)
 *   catch_up     birthday schedules: true (the default) makes a run for
 *                the month so far when the automation is made or resumed
 *                (see vw_run.h)
 *   locale       "th-TH" (Buddhist-era dates), "th-TH-u-ca-gregory",
 *                "zh-CN", "en": money and dates in messages
 *   enters       instead of a schedule or a trigger: a segment; members
 *                who enter it (became dormant, reached a tier) get the
 *                campaign once on the change
 */


#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_auto.h"
#include "vw_locale.h"
#include "vw_schedule.h"
#include "vw_util.h"


static int
vw_auto_per_member(json_t *root, vw_auto_t *a, vw_jerr_t *e)
{
    int      rc, k;
    char    *s;
    int64_t  days;

    s = NULL;

    a->per_member = a->scheduled && vw_schedule_birthdays(&a->schedule)
                    ? VW_PER_YEAR : VW_PER_ONCE;

    if (vw_json_str(e, root, "", "per_member", 0, &s) != 0) {
        return -1;
    }

    if (s == NULL) {
        return 0;
    }

    rc = 0;
    k = 0;

    if (strcmp(s, "once") == 0) {
        a->per_member = VW_PER_ONCE;

    } else if (strcmp(s, "every run") == 0) {
        a->per_member = VW_PER_ALWAYS;

    } else if (strcmp(s, "once a year") == 0) {
        a->per_member = VW_PER_YEAR;

    } else if (strcmp(s, "once a month") == 0) {
        a->per_member = VW_PER_MONTH;

    } else if (sscanf(s, "once per %4" SCNd64 " day%n", &days, &k) == 1
               && k > 0 && (strcmp(s + k, "s") == 0 || s[k] == '\0')
               && days >= 1 && days <= 3650)
    {
        a->per_member = VW_PER_COOLDOWN;
        a->cooldown = days * 86400;

    } else {
        rc = vw_json_fail(e, "", "per_member: expected \"once\", \"every "
                          "run\", \"once per N days\", \"once a month\" or "
                          "\"once a year\"");
    }

    free(s);

    return rc;
}


int
vw_auto_rules(json_t *root, vw_auto_t *a, const vw_config_t *cf,
    vw_jerr_t *e)
{
    json_t  *v;

    if (vw_auto_per_member(root, a, e) != 0) {
        return -1;
    }

    v = json_object_get(root, "catch_up");
    a->catch_up = a->scheduled && vw_schedule_birthdays(&a->schedule);

    if (v != NULL) {
        if (!json_is_boolean(v)) {
            return vw_json_fail(e, "", "catch_up: expected true or false");
        }

        if (json_is_true(v) && !a->catch_up) {
            return vw_json_fail(e, "", "catch_up: only with a birthdays "
                                "schedule");
        }

        a->catch_up = json_is_true(v);
    }

    if (vw_json_str(e, root, "", "locale", 0, &a->locale) != 0) {
        return -1;
    }

    if (a->locale && vw_locale_find(a->locale) == NULL) {
        return vw_json_fail(e, "", "locale: expected %s", VW_LOCALES);
    }

    if (vw_json_str(e, root, "", "enters", 0, &a->enters_text) != 0) {
        return -1;
    }

    if (a->enters_text == NULL) {
        return 0;
    }

    a->entering = 1;

    if (vw_segment_parse(a->enters_text, &a->enters, e->err, e->errlen)
        != 0)
    {
        return -1;
    }

    if (cf != NULL) {
        vw_segment_phones(&a->enters, &cf->phone);
    }

    return 0;
}


void
vw_auto_rules_free(vw_auto_t *a)
{
    free(a->locale);
    free(a->enters_text);

    if (a->entering) {
        vw_segment_free(&a->enters);
    }
}


void
vw_auto_policy(const vw_auto_t *a, int64_t t, int tz, char *buf,
    size_t size)
{
    int      m, d;
    int64_t  y;

    vw_local_date(t, tz, &y, &m, &d);

    switch (a->per_member) {

    case VW_PER_ALWAYS:
        snprintf(buf, size, "always");
        break;

    case VW_PER_COOLDOWN:
        snprintf(buf, size, "cooldown:%lld", (long long) a->cooldown);
        break;

    case VW_PER_YEAR:
        snprintf(buf, size, "period:%04lld", (long long) y);
        break;

    case VW_PER_MONTH:
        snprintf(buf, size, "period:%04lld-%02d", (long long) y, m);
        break;

    default:
        snprintf(buf, size, "once");
    }
}
