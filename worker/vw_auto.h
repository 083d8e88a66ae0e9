
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

#include "vw_config.h"
#include "vw_schedule.h"
#include "vw_segment.h"


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

    int64_t          since;         /* runs before this are not made */
    int64_t          last;          /* the last run planned */
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

/* "90s", "15m", "2h", "1d" or a number of seconds */
int vw_parse_duration(const char *s, int64_t *out);


#endif /* _VW_AUTO_H_INCLUDED_ */
