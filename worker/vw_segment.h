
/*
 * Copyright (C) ngx_voucher authors
 *
 * Members and segments, pure C: the member record as the worker sees it,
 * RFM scoring, and segment rules.  No Redis here (see vw_members.c), so
 * the rules are unit-tested on their own.
 *
 * A segment is one rule or several joined by '&' (all must hold):
 *   all                       every member
 *   tier:gold,silver          tier is one of these
 *   birth_month[:M]           born in month M (default: this month, in
 *                             the campaign's time zone)
 *   tags:vip,coffee           has any of these tags
 *   list:alice,+6681234567    these ids or phone numbers
 *   rfm:champions,loyal       in one of these RFM groups
 *   dormant:N                 bought before, but not in the last N days
 *   new:N                     signed up in the last N days
 *   top:N                     the N biggest spenders (of those the other
 *                             rules let through)
 */


#ifndef _VW_SEGMENT_H_INCLUDED_
#define _VW_SEGMENT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "vw_phone.h"


#define VW_UNSET  (-1)

/* RFM groups: the first that matches, in this order */
#define VW_RFM_NONE            0    /* never bought: not scored */
#define VW_RFM_CHAMPIONS       1    /* R>=4 F>=4 M>=4 */
#define VW_RFM_LOYAL           2    /* R>=3 F>=4 */
#define VW_RFM_NEW_CUSTOMERS   3    /* R>=4 F=1 */
#define VW_RFM_POTENTIAL       4    /* R>=4 F<=3 */
#define VW_RFM_AT_RISK         5    /* R<=2 F>=3 */
#define VW_RFM_HIBERNATING     6    /* R<=2 F<=2 */
#define VW_RFM_NEED_ATTENTION  7    /* the rest: R=3 F<=3 */
#define VW_RFM_NGROUPS         8


typedef struct {
    char      *id;
    char      *name;
    char      *phone;               /* normalized: [+]digits */
    char      *e164;                /* the phone in E.164, or NULL */
    char      *loyalty_tier;        /* the programme's tier, or NULL */
    char      *attrs;               /* custom attributes: a JSON object */
    char      *email;
    char      *line;
    char      *tier;
    char      *tags;                /* ",a,b," as stored, or NULL */
    char      *birthday;            /* YYYY-MM-DD or MM-DD */
    int        birth_month;         /* 1..12, 0 unknown */
    int        birth_day;
    int64_t    signup;              /* unix seconds, VW_UNSET unknown */
    int64_t    first;               /* first purchase */
    int64_t    last;                /* last purchase */
    int64_t    count;               /* purchases */
    int64_t    spend;               /* minor units */

    int        r, f, m;             /* RFM scores 1..5, 0 not scored */
    int        group;               /* VW_RFM_* */
} vw_member_t;


#define VW_RULE_ALL          1
#define VW_RULE_TIER         2
#define VW_RULE_BIRTH_MONTH  3
#define VW_RULE_TAGS         4
#define VW_RULE_LIST         5
#define VW_RULE_RFM          6
#define VW_RULE_DORMANT      7
#define VW_RULE_NEW          8
#define VW_RULE_TOP          9


typedef struct {
    int        type;
    char     **values;              /* tiers, tags, ids and phones */
    size_t     nvalues;
    unsigned   groups;              /* rfm: 1 << VW_RFM_* */
    int64_t    n;                   /* month, days, count; 0 = this month */
} vw_rule_t;


typedef struct {
    vw_rule_t *rules;
    size_t     nrules;
    int        needs_rfm;
} vw_segment_t;


const char *vw_rfm_group_name(int group);

/* scores every member: RFM against the others who bought */
void vw_rfm_score(vw_member_t *m, size_t n, int64_t now);

/* "+66 81-234 5678" -> "+66812345678"; NULL when not a phone number */
char *vw_phone_normalize(const char *s);

/*
 * Phone numbers of list rules in E.164 too, with the default country:
 * list:+66819990000 finds a member stored as 081-999-0000 and the other
 * way round (the member's e164 is set when it is loaded).
 */
void vw_segment_phones(vw_segment_t *seg, const vw_phone_country_t *pc);

/* birth_month and birth_day from the birthday text */
void vw_member_birthday(vw_member_t *m);

int vw_segment_parse(const char *spec, vw_segment_t *seg, char *err,
    size_t errlen);
void vw_segment_free(vw_segment_t *seg);

/*
 * The members of the segment at time now (unix seconds) in a time zone
 * tz_min minutes east of UTC: their indexes in out (room for n), in the
 * order of m, or by spend (biggest first) when a top:N rule is present.
 * Scores RFM first when a rule needs it.  Returns how many.
 */
size_t vw_segment_eval(const vw_segment_t *seg, vw_member_t *m, size_t n,
    int64_t now, int tz_min, size_t *out);

void vw_member_free(vw_member_t *m);


#endif /* _VW_SEGMENT_H_INCLUDED_ */
