
/*
 * Copyright (C) ngx_voucher authors
 *
 * Gift cards as stored value (redis/lib/giftcard.lua): a card's balance
 * and lots, its ledger, and the liability report, what the cards still
 * owe: by campaign, by the age of the credits and by the day they expire.
 * voucherctl and the admin API both call these.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_clock.h"
#include "vw_op.h"
#include "vw_op_codes.h"
#include "vw_util.h"


/* the refusals of voucher_gift_get */

static int
vw_gift_refusal(const char *reason, const char *code, vw_operr_t *e)
{
    if (strcmp(reason, "not_found") == 0) {
        return vw_op_fail(e, 404, "not_found", NULL, "%s: no such code",
                          code);
    }

    if (strcmp(reason, "not_a_gift_card") == 0) {
        return vw_op_fail(e, 409, "not_a_gift_card", NULL,
                          "%s: the code has no balance: not a gift card",
                          code);
    }

    return vw_op_fail(e, 500, "internal_error", NULL,
                      "unexpected reply of voucher_gift_get");
}


/*
 * GET /v1/codes/{code}/balance: what the card can spend now (Redis time)
 * and its lots, the first to be spent first
 */

int
vw_op_code_balance(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char                      code[128];
    size_t                    i;
    json_t                   *o, *lots, *l;
    redisReply               *r, *x, *lr;
    static const char *const  none[] = { NULL };

    if (vw_op_code_id(in->id, code, sizeof(code), e) != 0
        || vw_op_known(in->query, none, e) != 0)
    {
        return -1;
    }

    r = vw_op_fcall_key(op, "voucher_gift_get",
                        vw_key(op->cf, "c:%s", code), e);

    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1
        || r->element[0]->type != REDIS_REPLY_STRING)
    {
        freeReplyObject(r);
        return vw_op_fail(e, 500, "internal_error", NULL,
                          "unexpected reply of voucher_gift_get");
    }

    if (strcmp(r->element[0]->str, "ok") != 0 || r->elements != 11) {
        vw_gift_refusal(r->element[0]->str, code, e);
        freeReplyObject(r);
        return -1;
    }

    o = json_object();
    json_object_set_new(o, "code", json_string(r->element[2]->str));
    json_object_set_new(o, "campaign", json_string(r->element[4]->str));
    json_object_set_new(o, "balance", json_integer(r->element[6]->integer));
    json_object_set_new(o, "expired_unswept",
                        json_integer(r->element[8]->integer));

    lots = json_array();
    lr = r->element[10];

    for (i = 0; i < lr->elements; i++) {
        x = lr->element[i];

        if (x->type != REDIS_REPLY_ARRAY || x->elements != 3) {
            continue;
        }

        l = json_object();

        if (x->element[0]->integer > 0) {
            json_object_set_new(l, "credited_at",
                                json_integer(x->element[0]->integer));
        }

        json_object_set_new(l, "expires_at",
                            x->element[1]->integer > 0
                            ? json_integer(x->element[1]->integer)
                            : json_null());
        json_object_set_new(l, "amount",
                            json_integer(x->element[2]->integer));
        json_array_append_new(lots, l);
    }

    json_object_set_new(o, "lots", lots);
    freeReplyObject(r);
    *out = o;

    return 200;
}


/* one ledger entry: {id, at (ms), type, amount, balance, reason, ref,
 * expires_at} with the numbers as integers */

static json_t *
vw_gift_entry(redisReply *en)
{
    size_t       j;
    json_t      *h;
    const char  *k, *v;

    h = json_object();
    json_object_set_new(h, "id", json_string(en->element[0]->str));
    json_object_set_new(h, "at", json_integer(atoll(en->element[0]->str)));

    for (j = 0; j + 1 < en->element[1]->elements; j += 2) {
        k = en->element[1]->element[j]->str;
        v = en->element[1]->element[j + 1]->str;

        if (strcmp(k, "amount") == 0 || strcmp(k, "balance") == 0) {
            json_object_set_new(h, k, json_integer(atoll(v)));

        } else if (strcmp(k, "expires_at") == 0) {
            json_object_set_new(h, k, *v ? json_integer(atoll(v))
                                         : json_null());

        } else {
            json_object_set_new(h, k, json_string(v));
        }
    }

    return h;
}


/* GET /v1/codes/{code}/transactions: the card's ledger, newest first */

int
vw_op_code_transactions(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    int          rc;
    char         code[128], *key;
    int64_t      limit;
    json_t      *bal;
    vw_op_in_t   in2;
    const char  *cursor;

    if (vw_op_code_id(in->id, code, sizeof(code), e) != 0
        || vw_op_cursor(in, &limit, &cursor, e) != 0)
    {
        return -1;
    }

    /* a code that is no gift card has no ledger: say which */
    memset(&in2, 0, sizeof(vw_op_in_t));
    in2.id = code;
    in2.query = json_object();
    in2.body = in->body;

    if (vw_op_code_balance(op, &in2, &bal, e) != 200) {
        json_decref(in2.query);
        return -1;
    }

    json_decref(in2.query);

    key = vw_key(op->cf, "gl:%s", code);
    rc = vw_op_stream_range(op, key, 1, cursor, limit, vw_gift_entry, out, e);
    free(key);

    if (rc == 200) {
        json_object_set(*out, "balance", json_object_get(bal, "balance"));
    }

    json_decref(bal);

    return rc;
}


/* ------------------------------------------------------------ liability */


#define VW_AGES  5

static const struct {
    const char  *name;
    int64_t      days;          /* up to this age, in days */
} vw_ages[VW_AGES] = {
    { "0-30", 30 }, { "31-90", 90 }, { "91-180", 180 }, { "181-365", 365 },
    { "over_365", -1 }
};


typedef struct {
    char         campaign[128];
    char         currency[16];
    int          tz_min;
    int64_t      cards;
    int64_t      outstanding;
    int64_t      expiring;
} vw_liab_camp_t;


typedef struct {
    char         currency[16];
    char         date[48];      /* "" never */
    int          age;           /* an index of vw_ages, -1 undated */
    int64_t      amount;
} vw_liab_row_t;


typedef struct {
    vw_liab_camp_t  *camps;
    size_t           ncamps;
    vw_liab_row_t   *rows;      /* the expiry rows */
    size_t           nrows;
    vw_liab_row_t   *ages;      /* the age rows */
    size_t           nages;
} vw_liab_t;


static vw_liab_camp_t *
vw_liab_camp(vw_op_t *op, vw_liab_t *lb, const char *camp)
{
    size_t           i;
    char            *key;
    redisReply      *r;
    vw_liab_camp_t  *c;

    for (i = 0; i < lb->ncamps; i++) {
        if (strcmp(lb->camps[i].campaign, camp) == 0) {
            return &lb->camps[i];
        }
    }

    lb->camps = vw_xrealloc(lb->camps,
                            (lb->ncamps + 1) * sizeof(vw_liab_camp_t));
    c = &lb->camps[lb->ncamps++];
    memset(c, 0, sizeof(vw_liab_camp_t));
    snprintf(c->campaign, sizeof(c->campaign), "%s", camp);

    key = vw_key(op->cf, "k:%s", camp);
    r = redisCommand(op->redis, "HMGET %s currency tz_offset", key);
    free(key);

    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        if (r->element[0]->type == REDIS_REPLY_STRING) {
            snprintf(c->currency, sizeof(c->currency), "%s",
                     r->element[0]->str);
        }

        if (r->element[1]->type == REDIS_REPLY_STRING) {
            c->tz_min = atoi(r->element[1]->str);
        }
    }

    if (r) {
        freeReplyObject(r);
    }

    return c;
}


static void
vw_liab_add(vw_liab_row_t **rows, size_t *n, const char *cur,
    const char *date, int age, int64_t amount)
{
    size_t          i;
    vw_liab_row_t  *w;

    for (i = 0; i < *n; i++) {
        w = &(*rows)[i];

        if (strcmp(w->currency, cur) == 0 && strcmp(w->date, date) == 0
            && w->age == age)
        {
            w->amount += amount;
            return;
        }
    }

    *rows = vw_xrealloc(*rows, (*n + 1) * sizeof(vw_liab_row_t));
    w = &(*rows)[(*n)++];
    memset(w, 0, sizeof(vw_liab_row_t));
    snprintf(w->currency, sizeof(w->currency), "%s", cur);
    snprintf(w->date, sizeof(w->date), "%s", date);
    w->age = age;
    w->amount = amount;
}


/* the local date (campaign's zone) of the day a lot ends at local
 * midnight t: the day before t */

static void
vw_liab_date(int64_t t, int tz_min, char *buf, size_t size)
{
    int64_t  days, y, m, d, era, doe, yoe, doy, mp;

    days = (t + (int64_t) tz_min * 60 - 1) / 86400;

    /* civil from days (proleptic Gregorian) */
    days += 719468;
    era = (days >= 0 ? days : days - 146096) / 146097;
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;

    snprintf(buf, size, "%04lld-%02lld-%02lld", (long long) y, (long long) m,
             (long long) d);
}


/* one card: its lots (x) or its whole balance undated (b) */

static void
vw_liab_card(vw_op_t *op, vw_liab_t *lb, int64_t now, redisReply *h)
{
    int              age, i;
    char             date[48];
    int64_t          t, x, amt, total, expiring;
    const char      *p;
    vw_liab_camp_t  *c;

    if (h->type != REDIS_REPLY_ARRAY || h->elements != 3
        || h->element[0]->type != REDIS_REPLY_STRING
        || h->element[1]->type != REDIS_REPLY_STRING)
    {
        return;                 /* deleted since, or not a gift card */
    }

    c = vw_liab_camp(op, lb, h->element[0]->str);
    total = 0;
    expiring = 0;

    if (h->element[2]->type != REDIS_REPLY_STRING) {
        total = atoll(h->element[1]->str);

        if (total > 0) {
            vw_liab_add(&lb->ages, &lb->nages, c->currency, "", -1, total);
            vw_liab_add(&lb->rows, &lb->nrows, c->currency, "", 0, total);
        }

    } else {
        for (p = h->element[2]->str; *p; ) {
            long long  lt, lx, la;
            int        used;

            if (sscanf(p, "%lld:%lld:%lld%n", &lt, &lx, &la, &used) != 3) {
                break;
            }

            p += used;
            p += strspn(p, " ");
            t = lt;
            x = lx;
            amt = la;

            if (amt <= 0 || (x > 0 && x <= now)) {
                continue;           /* spent, or expired (not swept yet) */
            }

            total += amt;

            age = VW_AGES - 1;

            for (i = 0; i < VW_AGES - 1; i++) {
                if (now - t <= vw_ages[i].days * 86400) {
                    age = i;
                    break;
                }
            }

            vw_liab_add(&lb->ages, &lb->nages, c->currency, "", age, amt);

            date[0] = '\0';

            if (x > 0) {
                expiring += amt;
                vw_liab_date(x, c->tz_min, date, sizeof(date));
            }

            vw_liab_add(&lb->rows, &lb->nrows, c->currency, date, 0, amt);
        }
    }

    if (total > 0) {
        c->cards++;
        c->outstanding += total;
        c->expiring += expiring;
    }
}


static int
vw_liab_cmp_row(const void *a, const void *b)
{
    const vw_liab_row_t  *p = a, *q = b;
    int                   r;

    r = strcmp(p->currency, q->currency);
    if (r) {
        return r;
    }

    /* never ("") last */
    if (p->date[0] == '\0' || q->date[0] == '\0') {
        return (p->date[0] == '\0') - (q->date[0] == '\0');
    }

    r = strcmp(p->date, q->date);

    return r ? r : p->age - q->age;
}


static int
vw_liab_cmp_age(const void *a, const void *b)
{
    const vw_liab_row_t  *p = a, *q = b;
    int                   r, pa, qa;

    r = strcmp(p->currency, q->currency);
    if (r) {
        return r;
    }

    pa = p->age < 0 ? VW_AGES : p->age;
    qa = q->age < 0 ? VW_AGES : q->age;

    return pa - qa;
}


static int
vw_liab_cmp_camp(const void *a, const void *b)
{
    return strcmp(((const vw_liab_camp_t *) a)->campaign,
                  ((const vw_liab_camp_t *) b)->campaign);
}


/*
 * GET /v1/reports/liability[?campaign=C]: what the gift cards with a
 * ledger ({NS}:gift) still hold at the daemon's clock, lots due left out
 */

int
vw_op_liability(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    size_t                    i, j;
    char                      cursor[64], *set, *key;
    int64_t                   now;
    json_t                   *o, *list, *x, *totals;
    vw_liab_t                 lb;
    redisReply               *r, *h, *codes, **hs;
    const char               *only;
    static const char *const  names[] = { "campaign", NULL };

    only = NULL;

    if (vw_op_known(in->query, names, e) != 0
        || vw_op_str(in, in->query, "campaign", 0, &only, e) != 0)
    {
        return -1;
    }

    if (op->redis == NULL || op->redis->err) {
        return vw_op_fail(e, 503, "store_unavailable", NULL,
                          "Redis cannot be reached");
    }

    memset(&lb, 0, sizeof(vw_liab_t));
    now = vw_now();
    set = vw_key(op->cf, "gift");
    snprintf(cursor, sizeof(cursor), "0");

    do {
        r = redisCommand(op->redis, "SSCAN %s %s COUNT 500", set, cursor);

        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r && r->type == REDIS_REPLY_ERROR) {
                vw_op_reply_error(r->str, e);

            } else {
                vw_op_fail(e, 503, "store_unavailable", NULL,
                           "Redis: the scan of the gift cards failed");
            }

            if (r) {
                freeReplyObject(r);
            }

            goto failed;
        }

        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        codes = r->element[1];

        /* the cards of the step, pipelined */
        for (i = 0; i < codes->elements; i++) {
            key = vw_key(op->cf, "c:%s", codes->element[i]->str);
            redisAppendCommand(op->redis, "HMGET %s k b x", key);
            free(key);
        }

        /* every reply read before a campaign is looked up */
        hs = vw_xrealloc(NULL, (codes->elements + 1) * sizeof(redisReply *));

        for (i = 0; i < codes->elements; i++) {
            if (redisGetReply(op->redis, (void **) &hs[i]) != REDIS_OK) {
                while (i--) {
                    freeReplyObject(hs[i]);
                }

                free(hs);
                freeReplyObject(r);
                vw_op_fail(e, 503, "store_unavailable", NULL,
                           "Redis: %s", op->redis->errstr);
                goto failed;
            }
        }

        for (i = 0; i < codes->elements; i++) {
            h = hs[i];

            if (only == NULL
                || (h->type == REDIS_REPLY_ARRAY && h->elements == 3
                    && h->element[0]->type == REDIS_REPLY_STRING
                    && strcmp(h->element[0]->str, only) == 0))
            {
                vw_liab_card(op, &lb, now, h);
            }

            freeReplyObject(h);
        }

        free(hs);
        freeReplyObject(r);

    } while (strcmp(cursor, "0") != 0);

    free(set);

    qsort(lb.camps, lb.ncamps, sizeof(vw_liab_camp_t), vw_liab_cmp_camp);
    qsort(lb.rows, lb.nrows, sizeof(vw_liab_row_t), vw_liab_cmp_row);
    qsort(lb.ages, lb.nages, sizeof(vw_liab_row_t), vw_liab_cmp_age);

    o = json_object();
    json_object_set_new(o, "as_of", json_integer(now));

    totals = json_object();
    list = json_array();

    for (i = 0; i < lb.ncamps; i++) {
        vw_liab_camp_t  *c = &lb.camps[i];

        if (c->cards == 0) {
            continue;
        }

        x = json_object();
        json_object_set_new(x, "campaign", json_string(c->campaign));
        json_object_set_new(x, "currency", json_string(c->currency));
        json_object_set_new(x, "tz_offset", json_integer(c->tz_min));
        json_object_set_new(x, "cards", json_integer(c->cards));
        json_object_set_new(x, "outstanding", json_integer(c->outstanding));
        json_object_set_new(x, "expiring", json_integer(c->expiring));
        json_array_append_new(list, x);

        x = json_object_get(totals, c->currency);

        json_object_set_new(totals, c->currency,
                            json_integer(json_integer_value(x)
                                         + c->outstanding));
    }

    json_object_set_new(o, "campaigns", list);

    list = json_array();

    {
        const char  *cur;
        json_t      *v;

        json_object_foreach(totals, cur, v) {
            x = json_object();
            json_object_set_new(x, "currency", json_string(cur));
            json_object_set(x, "outstanding", v);
            json_array_append_new(list, x);
        }
    }

    json_decref(totals);
    json_object_set_new(o, "totals", list);

    list = json_array();

    for (j = 0; j < lb.nages; j++) {
        x = json_object();
        json_object_set_new(x, "currency", json_string(lb.ages[j].currency));
        json_object_set_new(x, "age", json_string(lb.ages[j].age < 0
                                                  ? "undated"
                                                  : vw_ages[lb.ages[j].age]
                                                    .name));
        json_object_set_new(x, "outstanding",
                            json_integer(lb.ages[j].amount));
        json_array_append_new(list, x);
    }

    json_object_set_new(o, "by_age", list);

    list = json_array();

    for (j = 0; j < lb.nrows; j++) {
        x = json_object();
        json_object_set_new(x, "currency", json_string(lb.rows[j].currency));
        json_object_set_new(x, "expires_on", lb.rows[j].date[0]
                                             ? json_string(lb.rows[j].date)
                                             : json_null());
        json_object_set_new(x, "outstanding",
                            json_integer(lb.rows[j].amount));
        json_array_append_new(list, x);
    }

    json_object_set_new(o, "by_expiry", list);

    free(lb.camps);
    free(lb.rows);
    free(lb.ages);
    *out = o;

    return 200;

failed:

    free(set);
    free(lb.camps);
    free(lb.rows);
    free(lb.ages);

    return -1;
}
