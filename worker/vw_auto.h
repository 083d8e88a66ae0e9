
/*
 * Copyright (C) ngx_voucher authors
 *
 * Campaign automations: what a campaign sends, to whom, when and how.
 * The definition is JSON (docs/worker.md has the reference),
 * checked here in full before voucherctl stores it, and checked again
 * by voucherd when it loads it (its configuration may differ).
 */


#ifndef _VW_AUTO_H_INCLUDED_
#define _VW_AUTO_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "vw_config.h"
#include "vw_json.h"
#include "vw_schedule.h"
#include "vw_segment.h"


/* per_member: how often one member may get this campaign */
#define VW_PER_ONCE      1          /* "once" (the default) */
#define VW_PER_ALWAYS    2          /* "every run" */
#define VW_PER_COOLDOWN  3          /* "once per N days" */
#define VW_PER_YEAR      4          /* "once a year" (birthdays' default) */
#define VW_PER_MONTH     5          /* "once a month" */


typedef struct {
    char            *campaign;
    char            *json;          /* as stored */
    int              active;

    int              scheduled;     /* else triggered */
    vw_schedule_t    schedule;
    char            *trigger;       /* signup, purchase, ... */
    int64_t          delay;         /* seconds after the event */
    char            *unless;        /* "purchase": cancel on a purchase */

    vw_segment_t     segment;
    char            *segment_text;

    int              shared;        /* one shared code for all */
    char            *code;          /* the shared code, normalized */
    char            *prefix;
    int              length;
    int              mac_length;
    char            *pattern;
    char            *charset;       /* NULL: Crockford base32 */
    char            *suffix;        /* normalized, or NULL */
    int64_t          max_uses;      /* -1: the campaign's */
    int64_t          valid_days;    /* 0: the campaign's end */

    char            *channel;
    char            *message;
    char            *subject;

    int              per_member;    /* VW_PER_* */
    int64_t          cooldown;      /* VW_PER_COOLDOWN: seconds */
    int              catch_up;      /* birthdays: catch-up runs (default) */
    char            *locale;        /* of money and dates, or NULL */

    int              entering;      /* triggered by entering "enters" */
    vw_segment_t     enters;
    char            *enters_text;

    int64_t          since;         /* runs before this are not made */
    int64_t          last;          /* the last run planned */
    int64_t          catchup;       /* a catch-up asked for then; 0 none */
} vw_auto_t;


/*
 * Parses and checks a definition.  The channel must be one of cf's
 * (when cf is given).  Returns 0, or -1 with err naming the field.
 */
int vw_auto_parse(const char *campaign, const char *json,
    const vw_config_t *cf, vw_auto_t *a, char *err, size_t errlen);

void vw_auto_free(vw_auto_t *a);

/*
 * Every automation in Redis.  One that no longer checks (say, its channel
 * left the configuration) is logged and left out.  0, or -1 with err.
 */
int vw_autos_load(redisContext *c, const vw_config_t *cf, vw_auto_t **out,
    size_t *n, char *err, size_t errlen);

void vw_autos_free(vw_auto_t *a, size_t n);

/*
 * The fields of vw_auto_rules.c: per_member, catch_up, locale, enters
 * (after the schedule or trigger is known).  0, or -1 with e set.
 */
int vw_auto_rules(json_t *root, vw_auto_t *a, const vw_config_t *cf,
    vw_jerr_t *e);
void vw_auto_rules_free(vw_auto_t *a);

/*
 * The per-member limit of a run at unix time t, as voucher_run_add takes
 * it: "once", "always", "cooldown:<s>", "period:<YYYY>" ...
 */
void vw_auto_policy(const vw_auto_t *a, int64_t t, int tz, char *buf,
    size_t size);

/* "90s", "15m", "2h", "1d" or a number of seconds */
int vw_parse_duration(const char *s, int64_t *out);


#endif /* _VW_AUTO_H_INCLUDED_ */
