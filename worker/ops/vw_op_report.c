
/*
 * Copyright (C) ngx_voucher authors
 *
 * A campaign's report, for voucherctl report and GET /v1/campaigns/
 * {campaign}/report: built from the campaign's codes, its delivery log
 * {NS}:dl:<campaign> (voucherd) and the audit trail {NS}:log (the
 * module), read whole.  Money stays integer minor units (and is given as
 * text in the automation's locale too); times are in the campaign's zone;
 * codes are shown as they were sent; rates and ROI are computed with
 * integers and given as text with fixed decimals.  The query's "from" and
 * "to" (days in the campaign's zone, both included) keep the entries of
 * the logs in that range.  "days" sums the entries by day of the
 * campaign's zone, those still in the streams and those the archive keeps
 * by day.
 */


#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "vw_auto.h"
#include "vw_locale.h"
#include "vw_map.h"
#include "vw_op.h"
#include "vw_schedule.h"
#include "vw_util.h"


#define VW_XRANGE_COUNT  10000


typedef struct {
    char      *member;
    int64_t    deliveries;          /* sent, over all runs */
    int64_t    dead;                /* gave up after the last retry */
    int64_t    failures;            /* failed attempts */
    int64_t    last_sent_ms;
    char      *status;              /* of the last entry */
    char      *channel;
    char      *code;
    char      *error;
    vw_buf_t   codes;               /* every code sent, "\n"-separated */
    int64_t    redemptions;         /* net of full rollbacks */
    int64_t    discount;
    int64_t    revenue;
} vw_recipient_t;


typedef struct {
    char      *customer;
    int64_t    ms;                  /* when it was redeemed */
    int64_t    amount;
    int64_t    discount;
    int64_t    rolled;
    int        gift;
    int        full;                /* rolled back in full */
} vw_redemption_t;


/* a day of the streams, in the campaign's zone */
typedef struct {
    char       day[16];             /* YYYY-MM-DD */
    int64_t    redemptions, discount, revenue, sent;
} vw_day_row_t;


/* a run of the campaign's delivery log */
typedef struct {
    char      *run;
    int64_t    first_ms;            /* its first entry */
    int64_t    queued, sent, failed, skipped, cancelled, dead;
} vw_run_row_t;


typedef struct {
    const char  *campaign;
    json_t      *settings;
    int          tz;                /* the campaign's zone */
    const char  *currency;
    char        *pattern;           /* the automation's display pattern */
    const vw_locale_t  *locale;
    int64_t      from_ms;           /* from, to: entries in [from, to) */
    int64_t      to_ms;
    vw_map_t     runs;
    int64_t      issued;
    int64_t      used_codes;
    int64_t      delivered;         /* members with at least one sent */
    int64_t      dead;              /* members never reached */
    int64_t      redemptions;       /* net */
    int64_t      rollbacks;
    int64_t      discount;          /* net */
    int64_t      revenue;           /* order amounts of net redemptions */
    int64_t      came_back;         /* delivered members who redeemed */
    vw_map_t     recipients;
    vw_map_t     redemptions_by_id;
    vw_map_t     days;
} vw_report_t;


static vw_recipient_t *
vw_recipient(vw_report_t *rp, const char *member)
{
    void            **slot;
    vw_recipient_t   *x;

    slot = vw_map_slot(&rp->recipients, member);

    if (*slot == NULL) {
        x = vw_xalloc(sizeof(vw_recipient_t));
        x->member = vw_xstrdup(member);
        *slot = x;
    }

    return *slot;
}


static const char *
vw_entry_field(const redisReply *fields, const char *name)
{
    size_t  i;

    for (i = 0; i + 1 < fields->elements; i += 2) {
        if (strcmp(fields->element[i]->str, name) == 0) {
            return fields->element[i + 1]->str;
        }
    }

    return "";
}


static int64_t
vw_entry_int(const redisReply *fields, const char *name)
{
    int64_t  v;

    return vw_parse_int(vw_entry_field(fields, name), INT64_MIN, INT64_MAX,
                        &v) == 0 ? v : 0;
}


static void
vw_set_str(char **p, const char *s)
{
    free(*p);
    *p = s && s[0] ? vw_xstrdup(s) : NULL;
}


/*
 * Reads a whole stream in pages: fn gets each entry's id and fields.
 * Returns 0, or -1 with err.
 */

static int
vw_stream_each(redisContext *c, const char *key,
    void (*fn)(vw_report_t *rp, const char *id, const redisReply *fields),
    vw_report_t *rp, char *err, size_t errlen)
{
    char         start[64];
    size_t       i;
    redisReply  *r, *e;

    strcpy(start, "-");

    for ( ;; ) {
        r = redisCommand(c, "XRANGE %s %s + COUNT %d", key, start,
                         VW_XRANGE_COUNT);

        if (vw_redis_failed(c, r, err, errlen)) {
            if (r) {
                freeReplyObject(r);
            }

            return -1;
        }

        if (r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return 0;
        }

        for (i = 0; i < r->elements; i++) {
            e = r->element[i];
            fn(rp, e->element[0]->str, e->element[1]);
        }

        if (r->elements < VW_XRANGE_COUNT) {
            freeReplyObject(r);
            return 0;
        }

        /* exclusive start: after the last entry read */
        snprintf(start, sizeof(start), "(%s",
                 r->element[r->elements - 1]->element[0]->str);
        freeReplyObject(r);
    }
}


static int64_t
vw_id_ms(const char *id)
{
    int64_t  ms;
    char     buf[32];
    size_t   n;

    n = strcspn(id, "-");

    if (n >= sizeof(buf)) {
        return 0;
    }

    memcpy(buf, id, n);
    buf[n] = '\0';

    return vw_parse_int(buf, 0, INT64_MAX, &ms) == 0 ? ms : 0;
}


/* when an entry happened: its "at" (the daemon's clock), else its id */

static int64_t
vw_entry_ms(const char *id, const redisReply *f)
{
    int64_t  at;

    at = vw_entry_int(f, "at");

    return at > 0 ? at * 1000 : vw_id_ms(id);
}


static int
vw_in_range(vw_report_t *rp, const char *id, const redisReply *f)
{
    int64_t  ms;

    ms = vw_entry_ms(id, f);

    return ms >= rp->from_ms && ms < rp->to_ms;
}


static vw_run_row_t *
vw_run_row(vw_report_t *rp, const char *run, int64_t ms)
{
    void          **slot;
    vw_run_row_t   *x;

    slot = vw_map_slot(&rp->runs, run);

    if (*slot == NULL) {
        x = vw_xalloc(sizeof(vw_run_row_t));
        x->run = vw_xstrdup(run);
        x->first_ms = ms;
        *slot = x;
    }

    return *slot;
}


static vw_day_row_t *
vw_day_row(vw_report_t *rp, int64_t ms)
{
    int             m, d;
    char            day[16];
    void          **slot;
    int64_t         y;
    vw_day_row_t   *x;

    vw_local_date(ms / 1000, rp->tz, &y, &m, &d);
    snprintf(day, sizeof(day), "%04lld-%02d-%02d", (long long) y, m, d);

    slot = vw_map_slot(&rp->days, day);

    if (*slot == NULL) {
        x = vw_xalloc(sizeof(vw_day_row_t));
        memset(x, 0, sizeof(vw_day_row_t));
        memcpy(x->day, day, sizeof(day));
        *slot = x;
    }

    return *slot;
}


static void
vw_delivery_entry(vw_report_t *rp, const char *id, const redisReply *f)
{
    const char      *status;
    vw_run_row_t    *run;
    vw_recipient_t  *x;

    if (!vw_in_range(rp, id, f)) {
        return;
    }

    x = vw_recipient(rp, vw_entry_field(f, "member"));
    status = vw_entry_field(f, "status");
    run = vw_run_row(rp, vw_entry_field(f, "run"), vw_entry_ms(id, f));

    if (strcmp(status, "queued") == 0) {
        run->queued++;

    } else if (strcmp(status, "sent") == 0) {
        run->sent++;
        vw_day_row(rp, vw_entry_ms(id, f))->sent++;

        if (vw_entry_field(f, "code")[0]) {
            if (x->codes.len) {
                vw_buf_addc(&x->codes, '\n');
            }

            vw_buf_adds(&x->codes, vw_entry_field(f, "code"));
        }

    } else if (strcmp(status, "failed") == 0) {
        run->failed++;

    } else if (strcmp(status, "skipped") == 0) {
        run->skipped++;

    } else if (strcmp(status, "cancelled") == 0) {
        run->cancelled++;

    } else if (strcmp(status, "dead") == 0) {
        run->dead++;
    }

    vw_set_str(&x->status, status);
    vw_set_str(&x->channel, vw_entry_field(f, "channel"));

    if (vw_entry_field(f, "code")[0]) {
        vw_set_str(&x->code, vw_entry_field(f, "code"));
    }

    if (strcmp(status, "sent") == 0) {
        x->deliveries++;
        x->last_sent_ms = vw_entry_ms(id, f);
        vw_set_str(&x->error, NULL);

    } else if (strcmp(status, "failed") == 0) {
        x->failures++;
        vw_set_str(&x->error, vw_entry_field(f, "error"));

    } else if (strcmp(status, "dead") == 0) {
        x->dead++;
        vw_set_str(&x->error, vw_entry_field(f, "error"));
    }
}


/* a run as the retention archived it: its first entry, counts by status */

static void
vw_archived_run(vw_report_t *rp, const char *name, json_t *m)
{
    vw_run_row_t  *run;

    run = vw_run_row(rp, name, json_integer_value(json_object_get(m, "t")));

    run->queued += json_integer_value(json_object_get(m, "q"));
    run->sent += json_integer_value(json_object_get(m, "s"));
    run->failed += json_integer_value(json_object_get(m, "f"));
    run->skipped += json_integer_value(json_object_get(m, "k"));
    run->cancelled += json_integer_value(json_object_get(m, "c"));
    run->dead += json_integer_value(json_object_get(m, "d"));
}


static void
vw_audit_entry(vw_report_t *rp, const char *id, const redisReply *f)
{
    void             **slot;
    vw_redemption_t   *d;

    if (strcmp(vw_entry_field(f, "campaign"), rp->campaign) != 0
        || !vw_in_range(rp, id, f))
    {
        return;
    }

    if (strcmp(vw_entry_field(f, "type"), "redeem") == 0) {
        d = vw_xalloc(sizeof(vw_redemption_t));
        d->customer = vw_xstrdup(vw_entry_field(f, "customer"));
        d->ms = vw_entry_ms(id, f);
        d->amount = vw_entry_int(f, "amount");
        d->discount = vw_entry_int(f, "discount");
        d->gift = vw_entry_field(f, "balance")[0] != '\0';

        slot = vw_map_slot(&rp->redemptions_by_id, id);
        *slot = d;
        return;
    }

    /* a released or expired reservation (gate mode) is rolled back too */
    if (strcmp(vw_entry_field(f, "type"), "rollback") == 0
        || strcmp(vw_entry_field(f, "type"), "release") == 0
        || strcmp(vw_entry_field(f, "type"), "expire") == 0)
    {
        rp->rollbacks++;
        d = vw_map_get(&rp->redemptions_by_id, vw_entry_field(f, "ref"));

        /* a redemption older than the trail (trimmed) is not counted */
        if (d == NULL) {
            return;
        }

        d->rolled += vw_entry_int(f, "discount");

        /* only gift cards roll back in part */
        if (!d->gift || d->rolled >= d->discount) {
            d->full = 1;
        }
    }
}


/*
 * A figure of a day as the retention archived it: "YYYY-MM-DD:x" (r
 * redemptions, d discount, v revenue, s deliveries sent), the day in the
 * campaign's zone; kept when the day is within from and to.
 */

static void
vw_archived_day(vw_report_t *rp, const char *f, int64_t v)
{
    int            m, d;
    char           x;
    int64_t        y, ms;
    vw_day_row_t  *day;

    if (sscanf(f, "%4" SCNd64 "-%2d-%2d:%c", &y, &m, &d, &x) != 4
        || strlen(f) != 12)
    {
        return;
    }

    /* the day's local midnight, which the day's own entries follow */
    ms = (vw_days_from_civil(y, m, d) * 86400 - (int64_t) rp->tz * 60) * 1000;

    if (ms < rp->from_ms || ms >= rp->to_ms) {
        return;
    }

    day = vw_day_row(rp, ms);

    switch (x) {
    case 'r':
        day->redemptions += v;
        break;
    case 'd':
        day->discount += v;
        break;
    case 'v':
        day->revenue += v;
        break;
    case 's':
        day->sent += v;
        break;
    }
}


/*
 * The campaign's archive: the entries the retention removed from the
 * trail ({NS}:ar:<campaign>) and from the delivery log ({NS}:ad:<campaign>),
 * summed as this report sums them (redis/lib/retention.lua).  Read before
 * the streams, whose entries are all newer.  Returns 0, or -1 with err.
 */

static int
vw_report_archive(vw_op_t *op, vw_report_t *rp, char *err, size_t errlen)
{
    char            *key;
    size_t           i;
    int64_t          v;
    json_t          *m, *e;
    const char      *f;
    redisReply      *r;
    vw_recipient_t  *x;

    key = vw_key(op->cf, "ar:%s", rp->campaign);
    r = redisCommand(op->redis, "HGETALL %s", key);
    free(key);

    if (vw_redis_failed(op->redis, r, err, errlen)) {
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        f = r->element[i]->str;

        if (vw_parse_int(r->element[i + 1]->str, INT64_MIN, INT64_MAX, &v)
            != 0)
        {
            continue;
        }

        if (strcmp(f, "redemptions") == 0) {
            rp->redemptions += v;

        } else if (strcmp(f, "discount") == 0) {
            rp->discount += v;

        } else if (strcmp(f, "revenue") == 0) {
            rp->revenue += v;

        } else if (strcmp(f, "rollbacks") == 0) {
            rp->rollbacks += v;

        } else if (strncmp(f, "day:", 4) == 0) {
            vw_archived_day(rp, f + 4, v);

        } else if (strncmp(f, "r:", 2) == 0) {
            vw_recipient(rp, f + 2)->redemptions += v;

        } else if (strncmp(f, "d:", 2) == 0) {
            vw_recipient(rp, f + 2)->discount += v;

        } else if (strncmp(f, "v:", 2) == 0) {
            vw_recipient(rp, f + 2)->revenue += v;
        }
    }

    freeReplyObject(r);

    key = vw_key(op->cf, "ad:%s", rp->campaign);
    r = redisCommand(op->redis, "HGETALL %s", key);
    free(key);

    if (vw_redis_failed(op->redis, r, err, errlen)) {
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }

    for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        m = json_loads(r->element[i + 1]->str, 0, NULL);
        if (m == NULL) {
            continue;
        }

        if (strncmp(r->element[i]->str, "run\t", 4) == 0) {
            vw_archived_run(rp, r->element[i]->str + 4, m);
            json_decref(m);
            continue;
        }

        x = vw_recipient(rp, r->element[i]->str);

        x->deliveries += json_integer_value(json_object_get(m, "n"));
        x->failures += json_integer_value(json_object_get(m, "f"));
        x->dead += json_integer_value(json_object_get(m, "x"));

        if ((e = json_object_get(m, "t")) != NULL) {
            x->last_sent_ms = json_integer_value(e);
        }

        vw_set_str(&x->status, json_string_value(json_object_get(m, "s")));
        vw_set_str(&x->channel, json_string_value(json_object_get(m, "ch")));
        vw_set_str(&x->error, json_string_value(json_object_get(m, "e")));

        if ((e = json_object_get(m, "c")) != NULL) {
            vw_set_str(&x->code, json_string_value(e));
        }

        if (json_string_value(json_object_get(m, "cs")) != NULL) {
            if (x->codes.len) {
                vw_buf_addc(&x->codes, '\n');
            }

            vw_buf_adds(&x->codes,
                        json_string_value(json_object_get(m, "cs")));
        }

        json_decref(m);
    }

    freeReplyObject(r);

    return 0;
}


static void
vw_count_redemption(const char *id, void *value, void *ctx)
{
    vw_report_t      *rp = ctx;
    vw_redemption_t  *d = value;
    vw_day_row_t     *day;
    vw_recipient_t   *x;

    (void) id;

    if (d->full) {
        return;
    }

    rp->redemptions++;
    rp->discount += d->discount - d->rolled;
    rp->revenue += d->amount;

    day = vw_day_row(rp, d->ms);
    day->redemptions++;
    day->discount += d->discount - d->rolled;
    day->revenue += d->amount;

    if (d->customer[0] == '\0') {
        return;
    }

    x = vw_recipient(rp, d->customer);
    x->redemptions++;
    x->discount += d->discount - d->rolled;
    x->revenue += d->amount;
}


static void
vw_count_recipient(const char *key, void *value, void *ctx)
{
    vw_report_t     *rp = ctx;
    vw_recipient_t  *x = value;

    (void) key;

    if (x->deliveries > 0) {
        rp->delivered++;

        if (x->redemptions > 0) {
            rp->came_back++;
        }

    } else if (x->dead > 0) {
        rp->dead++;
    }
}


static void
vw_free_redemption(const char *key, void *value, void *ctx)
{
    vw_redemption_t  *d = value;

    (void) key;
    (void) ctx;

    free(d->customer);
    free(d);
}


static void
vw_free_recipient(const char *key, void *value, void *ctx)
{
    vw_recipient_t  *x = value;

    (void) key;
    (void) ctx;

    free(x->member);
    free(x->status);
    free(x->channel);
    free(x->code);
    free(x->error);
    vw_buf_free(&x->codes);
    free(x);
}


static void
vw_free_run(const char *key, void *value, void *ctx)
{
    vw_run_row_t  *x = value;

    (void) key;
    (void) ctx;

    free(x->run);
    free(x);
}


static void
vw_free_day(const char *key, void *value, void *ctx)
{
    (void) key;
    (void) ctx;

    free(value);
}


static void
vw_collect(const char *key, void *value, void *ctx)
{
    vw_recipient_t ***p = ctx;

    (void) key;

    **p = value;
    (*p)++;
}


static int
vw_by_member(const void *a, const void *b)
{
    return strcmp((*(vw_recipient_t *const *) a)->member,
                  (*(vw_recipient_t *const *) b)->member);
}


/* the codes of the campaign: how many, how many used */

static int
vw_report_codes(vw_op_t *op, vw_report_t *rp, char *err, size_t errlen)
{
    int           rc;
    char         *key, cursor[32];
    void        **slot;
    size_t        i;
    int64_t       u;
    vw_map_t      seen;
    redisReply   *r, *rows, *row;

    key = vw_key(op->cf, "k:%s", rp->campaign);
    strcpy(cursor, "0");
    rc = -1;
    memset(&seen, 0, sizeof(vw_map_t));

    /* hash and compact codes alike, a page at a time */
    do {
        r = redisCommand(op->redis, "FCALL voucher_codes_page 1 %s %s 1000",
                         key, cursor);

        if (vw_redis_failed(op->redis, r, err, errlen)) {
            if (r) {
                freeReplyObject(r);
            }

            goto done;
        }

        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
            || r->element[0]->type != REDIS_REPLY_STRING
            || r->element[1]->type != REDIS_REPLY_ARRAY)
        {
            snprintf(err, errlen, "voucher_codes_page: unexpected reply");
            freeReplyObject(r);
            goto done;
        }

        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        rows = r->element[1];

        for (i = 0; i < rows->elements; i++) {
            row = rows->element[i];

            /* code, k, s, m, u, ... */
            if (row->type != REDIS_REPLY_ARRAY || row->elements < 5
                || row->element[0]->type != REDIS_REPLY_STRING)
            {
                continue;
            }

            /* SCAN may return a key twice (while Redis rehashes) */
            slot = vw_map_slot(&seen, row->element[0]->str);
            if (*slot != NULL) {
                continue;
            }

            *slot = &seen;
            rp->issued++;

            if (vw_reply_int(row->element[4], &u) == 0 && u > 0) {
                rp->used_codes++;
            }
        }

        freeReplyObject(r);

    } while (strcmp(cursor, "0") != 0);

    rc = 0;

done:

    vw_map_free(&seen);
    free(key);

    return rc;
}


/* ms as ISO 8601 in the campaign's zone: 2026-12-07T12:00:00+07:00 */

static void
vw_local_time(vw_report_t *rp, int64_t ms, char *buf, size_t size)
{
    int      m, d, a;
    int64_t  y, t, s;

    if (ms <= 0) {
        buf[0] = '\0';
        return;
    }

    t = ms / 1000;
    vw_local_date(t, rp->tz, &y, &m, &d);
    s = ((t + (int64_t) rp->tz * 60) % 86400 + 86400) % 86400;
    a = rp->tz < 0 ? -rp->tz : rp->tz;

    snprintf(buf, size, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
             (long long) y, m, d, (int) (s / 3600), (int) (s % 3600 / 60),
             (int) (s % 60), rp->tz < 0 ? '-' : '+', a / 60, a % 60);
}


/* a code as it was sent: in the automation's pattern */

static void
vw_shown(vw_report_t *rp, const char *code, char *buf, size_t size)
{
    if (rp->pattern == NULL
        || voucher_code_display(code, strlen(code), rp->pattern, buf, size)
           == 0)
    {
        snprintf(buf, size, "%s", code);
    }
}


/* minor units as the shop reads them: "฿1,234.00" */

static json_t *
vw_money_text(vw_report_t *rp, int64_t minor)
{
    char  buf[64];

    vw_locale_money(rp->locale, minor, rp->currency, buf, sizeof(buf));

    return json_string(buf);
}


/* n / d as a percentage with one decimal, "-" when d is 0 */

static void
vw_percent(int64_t n, int64_t d, char *buf, size_t size)
{
    int64_t  x;

    if (d <= 0) {
        snprintf(buf, size, "-");
        return;
    }

    x = (n * 1000 + d / 2) / d;
    snprintf(buf, size, "%lld.%lld%%", (long long) (x / 10),
             (long long) (x % 10));
}


/* (revenue - discount) / discount with two decimals, "-" without cost */

static void
vw_roi(int64_t revenue, int64_t discount, char *buf, size_t size)
{
    int64_t  x;

    if (discount <= 0) {
        snprintf(buf, size, "-");
        return;
    }

    x = (revenue - discount) * 100 / discount;
    snprintf(buf, size, "%s%lld.%02lld", x < 0 ? "-" : "",
             (long long) (x < 0 ? -x : x) / 100,
             (long long) (x < 0 ? -x : x) % 100);
}



static int
vw_by_first(const void *a, const void *b)
{
    const vw_run_row_t  *x = *(vw_run_row_t *const *) a;
    const vw_run_row_t  *y = *(vw_run_row_t *const *) b;

    return x->first_ms < y->first_ms ? -1 : x->first_ms > y->first_ms;
}


/* a map's values into an array of pointers (runs, days) */

static void
vw_collect_row(const char *key, void *value, void *ctx)
{
    void  ***p = ctx;

    (void) key;

    **p = value;
    (*p)++;
}


/* every code a recipient was sent, as shown, into a JSON array */

static json_t *
vw_codes_json(vw_report_t *rp, vw_recipient_t *x)
{
    char         shown[256], code[128];
    size_t       n;
    json_t      *a;
    const char  *p;

    a = json_array();

    for (p = x->codes.data; p && *p; p += n + (p[n] == '\n')) {
        n = strcspn(p, "\n");
        snprintf(code, sizeof(code), "%.*s", (int) n, p);
        vw_shown(rp, code, shown, sizeof(shown));
        json_array_append_new(a, json_string(shown));
    }

    return a;
}


static int
vw_by_day(const void *a, const void *b)
{
    return strcmp((*(vw_day_row_t *const *) a)->day,
                  (*(vw_day_row_t *const *) b)->day);
}


/* the days of the streams, oldest first */

static json_t *
vw_days_json(vw_report_t *rp)
{
    size_t          i, n;
    json_t         *arr;
    vw_day_row_t  **days, **p, *d;

    n = rp->days.count;
    days = vw_xalloc((n + 1) * sizeof(vw_day_row_t *));
    p = days;
    vw_map_each(&rp->days, vw_collect_row, &p);
    qsort(days, n, sizeof(vw_day_row_t *), vw_by_day);

    arr = json_array();

    for (i = 0; i < n; i++) {
        d = days[i];
        json_array_append_new(arr, json_pack("{s:s,s:I,s:I,s:I,s:I}",
            "day", d->day, "redemptions", (json_int_t) d->redemptions,
            "discount", (json_int_t) d->discount,
            "revenue", (json_int_t) d->revenue,
            "sent", (json_int_t) d->sent));
    }

    free(days);

    return arr;
}


/* the runs of the delivery log, by their first entry */

static json_t *
vw_runs_json(vw_report_t *rp)
{
    char            at[48];
    size_t          i, n;
    json_t         *arr;
    vw_run_row_t  **runs, **p, *r;

    n = rp->runs.count;
    runs = vw_xalloc((n + 1) * sizeof(vw_run_row_t *));
    p = runs;
    vw_map_each(&rp->runs, vw_collect_row, &p);
    qsort(runs, n, sizeof(vw_run_row_t *), vw_by_first);

    arr = json_array();

    for (i = 0; i < n; i++) {
        r = runs[i];
        vw_local_time(rp, r->first_ms, at, sizeof(at));
        json_array_append_new(arr, json_pack(
            "{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "run", r->run,
            "at", at, "queued", (json_int_t) r->queued,
            "sent", (json_int_t) r->sent, "failed", (json_int_t) r->failed,
            "skipped", (json_int_t) r->skipped,
            "cancelled", (json_int_t) r->cancelled,
            "dead", (json_int_t) r->dead));
    }

    free(runs);

    return arr;
}


static json_t *
vw_report_json(vw_report_t *rp, vw_recipient_t **list, size_t n)
{
    size_t           i;
    json_t          *o, *arr, *e, *codes;
    vw_recipient_t  *x;
    const char      *name;
    char             sent[48], rate[32], back[32], roi[32], code[256];

    name = json_string_value(json_object_get(rp->settings, "name"));

    vw_percent(rp->used_codes, rp->issued, rate, sizeof(rate));
    vw_percent(rp->came_back, rp->delivered, back, sizeof(back));
    vw_roi(rp->revenue, rp->discount, roi, sizeof(roi));

    o = json_object();
    json_object_set_new(o, "campaign", json_string(rp->campaign));

    if (name) {
        json_object_set_new(o, "name", json_string(name));
    }

    if (rp->currency) {
        json_object_set_new(o, "currency", json_string(rp->currency));
    }

    if (rp->from_ms > 0) {
        vw_local_time(rp, rp->from_ms, sent, sizeof(sent));
        json_object_set_new(o, "from", json_string(sent));
    }

    if (rp->to_ms < INT64_MAX) {
        vw_local_time(rp, rp->to_ms, sent, sizeof(sent));
        json_object_set_new(o, "to", json_string(sent));
    }

    json_object_set_new(o, "issued", json_integer(rp->issued));
    json_object_set_new(o, "codes_used", json_integer(rp->used_codes));
    json_object_set_new(o, "delivered", json_integer(rp->delivered));
    json_object_set_new(o, "failed", json_integer(rp->dead));
    json_object_set_new(o, "redemptions", json_integer(rp->redemptions));
    json_object_set_new(o, "rollbacks", json_integer(rp->rollbacks));
    json_object_set_new(o, "redemption_rate", json_string(rate));
    json_object_set_new(o, "came_back", json_integer(rp->came_back));
    json_object_set_new(o, "came_back_rate", json_string(back));
    json_object_set_new(o, "discount_given", json_integer(rp->discount));
    json_object_set_new(o, "revenue", json_integer(rp->revenue));
    json_object_set_new(o, "discount_given_text",
                        vw_money_text(rp, rp->discount));
    json_object_set_new(o, "revenue_text", vw_money_text(rp, rp->revenue));
    json_object_set_new(o, "roi", json_string(roi));
    json_object_set_new(o, "runs", vw_runs_json(rp));
    json_object_set_new(o, "days", vw_days_json(rp));

    arr = json_array();

    for (i = 0; i < n; i++) {
        x = list[i];
        vw_local_time(rp, x->last_sent_ms, sent, sizeof(sent));
        e = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}",
                      "member", x->member,
                      "status", x->status ? x->status : "not_delivered",
                      "deliveries", (json_int_t) x->deliveries,
                      "redemptions", (json_int_t) x->redemptions,
                      "discount", (json_int_t) x->discount,
                      "revenue", (json_int_t) x->revenue);

        if (x->channel) {
            json_object_set_new(e, "channel", json_string(x->channel));
        }

        if (x->code) {
            vw_shown(rp, x->code, code, sizeof(code));
            json_object_set_new(e, "code", json_string(code));
        }

        codes = vw_codes_json(rp, x);

        if (json_array_size(codes) > 0) {
            json_object_set_new(e, "codes", codes);

        } else {
            json_decref(codes);
        }

        json_object_set_new(e, "discount_text",
                            vw_money_text(rp, x->discount));
        json_object_set_new(e, "revenue_text", vw_money_text(rp, x->revenue));

        if (sent[0]) {
            json_object_set_new(e, "last_sent_at", json_string(sent));
        }

        if (x->error) {
            json_object_set_new(e, "error", json_string(x->error));
        }

        json_array_append_new(arr, e);
    }

    json_object_set_new(o, "recipients", arr);

    return o;
}


/* the automation's pattern and locale, when the campaign has one */

static void
vw_report_auto(vw_op_t *op, vw_report_t *rp)
{
    char         *key, err[512];
    vw_auto_t     a;
    redisReply   *r;

    key = vw_key(op->cf, "a:%s", rp->campaign);
    r = redisCommand(op->redis, "HGET %s def", key);
    free(key);

    if (r == NULL) {
        return;
    }

    if (r->type == REDIS_REPLY_STRING
        && vw_auto_parse(rp->campaign, r->str, NULL, &a, err, sizeof(err))
           == 0)
    {
        rp->pattern = a.pattern ? vw_xstrdup(a.pattern) : NULL;
        rp->locale = a.locale ? vw_locale_find(a.locale) : NULL;
        vw_auto_free(&a);
    }

    freeReplyObject(r);
}


/*
 * The query's day name ("YYYY-MM-DD") at 00:00 in zone tz, in ms, plus
 * next days; 0 and *ms unset when not given; else 400 invalid_field.
 */

static int
vw_report_day(json_t *query, const char *name, int tz, int next,
    int64_t *ms, vw_operr_t *e)
{
    int          y, m, d, k;
    json_t      *v;
    const char  *s;

    v = json_object_get(query, name);

    if (v == NULL) {
        return 0;
    }

    s = json_is_string(v) ? json_string_value(v) : "";
    k = 0;

    if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &k) != 3 || s[k] != '\0'
        || m < 1 || m > 12 || d < 1 || d > 31 || y < 1970 || y > 9999)
    {
        return vw_op_fail(e, 400, "invalid_field", name,
                          "%s: expected a day, YYYY-MM-DD", name);
    }

    *ms = ((vw_days_from_civil(y, m, d) + next) * 86400
           - (int64_t) tz * 60) * 1000;

    return 0;
}


int
vw_op_report(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    int               rc;
    char             *key, err[512];
    size_t            n;
    vw_report_t       rp;
    vw_recipient_t  **list, **p;
    redisReply       *r;
    static const char *const  names[] = { "from", "to", NULL };

    if (vw_op_known(in->query, names, e) != 0) {
        return -1;
    }

    if (op->redis == NULL || op->redis->err) {
        return vw_op_fail(e, 503, "store_unavailable", NULL,
                          "Redis cannot be reached");
    }

    memset(&rp, 0, sizeof(vw_report_t));
    rp.campaign = in->id;
    rc = -1;
    list = NULL;
    err[0] = '\0';

    key = vw_key(op->cf, "k:%s", in->id);
    r = redisCommand(op->redis, "FCALL voucher_campaign_get 1 %s", key);
    free(key);

    if (vw_redis_failed(op->redis, r, err, sizeof(err))) {
        if (r) {
            freeReplyObject(r);
        }

        goto failed;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        vw_op_fail(e, 404, "not_found", NULL, "no such campaign \"%s\"",
                   in->id);
        goto done;
    }

    rp.settings = vw_op_pairs(r);
    freeReplyObject(r);

    rp.tz = (int) json_integer_value(json_object_get(rp.settings,
                                                     "tz_offset"));
    rp.currency = json_string_value(json_object_get(rp.settings,
                                                    "currency"));
    rp.to_ms = INT64_MAX;

    /* from and to are days in the campaign's zone, both included */
    if (vw_report_day(in->query, "from", rp.tz, 0, &rp.from_ms, e) != 0
        || vw_report_day(in->query, "to", rp.tz, 1, &rp.to_ms, e) != 0)
    {
        goto done;
    }

    vw_report_auto(op, &rp);

    if (vw_report_codes(op, &rp, err, sizeof(err)) != 0) {
        goto failed;
    }

    /* what the retention took off the streams, then the streams */

    if (vw_report_archive(op, &rp, err, sizeof(err)) != 0) {
        rc = -1;
        goto failed;
    }

    key = vw_key(op->cf, "dl:%s", in->id);
    rc = vw_stream_each(op->redis, key, vw_delivery_entry, &rp, err,
                        sizeof(err));
    free(key);

    if (rc != 0) {
        rc = -1;
        goto failed;
    }

    key = vw_key(op->cf, "log");
    rc = vw_stream_each(op->redis, key, vw_audit_entry, &rp, err,
                        sizeof(err));
    free(key);

    if (rc != 0) {
        rc = -1;
        goto failed;
    }

    vw_map_each(&rp.redemptions_by_id, vw_count_redemption, &rp);
    vw_map_each(&rp.recipients, vw_count_recipient, &rp);

    list = vw_xalloc((rp.recipients.count + 1) * sizeof(vw_recipient_t *));
    p = list;
    vw_map_each(&rp.recipients, vw_collect, &p);
    n = rp.recipients.count;
    qsort(list, n, sizeof(vw_recipient_t *), vw_by_member);

    *out = vw_report_json(&rp, list, n);
    rc = 200;

    goto done;

failed:

    vw_op_fail(e, 503, "store_unavailable", NULL, "Redis: %s", err);

done:

    free(list);
    vw_map_each(&rp.runs, vw_free_run, NULL);
    vw_map_free(&rp.runs);
    vw_map_each(&rp.days, vw_free_day, NULL);
    vw_map_free(&rp.days);
    free(rp.pattern);
    vw_map_each(&rp.recipients, vw_free_recipient, NULL);
    vw_map_each(&rp.redemptions_by_id, vw_free_redemption, NULL);
    vw_map_free(&rp.recipients);
    vw_map_free(&rp.redemptions_by_id);
    json_decref(rp.settings);

    return rc;
}
