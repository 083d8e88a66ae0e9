
/*
 * Copyright (C) ngx_voucher authors
 *
 * The loyalty report, for GET /v1/loyalty/report and voucherctl loyalty
 * report: the points the members' records {NS}:lm:<member> count as
 * earned, spent and expired over their life, what is active and pending
 * now, and how many members each tier holds, in the programme's order.
 * Read only, a SCAN of the records, HMGETs pipelined a page at a time.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vw_map.h"
#include "vw_op.h"
#include "vw_util.h"


#define VW_LR_COUNT  500            /* SCAN COUNT of a page */


typedef struct {
    int64_t    members;
    int64_t    earned, spent, expired, active, pending;
    vw_map_t   tiers;               /* name -> int64_t * */
    json_t    *order;               /* the programme's tier names */
} vw_lr_t;


static int64_t
vw_lr_int(const redisReply *r)
{
    int64_t  v;

    if (r->type == REDIS_REPLY_INTEGER) {
        return r->integer;
    }

    if (r->type == REDIS_REPLY_STRING
        && vw_parse_int(r->str, INT64_MIN, INT64_MAX, &v) == 0)
    {
        return v;
    }

    return 0;
}


static void
vw_lr_tier(vw_lr_t *lr, const char *name)
{
    void  **slot;

    slot = vw_map_slot(&lr->tiers, name);

    if (*slot == NULL) {
        *slot = vw_xalloc(sizeof(int64_t));
        *(int64_t *) *slot = 0;
    }

    (*(int64_t *) *slot)++;
}


/* one member's record: tier earned spent expired act pend */

static void
vw_lr_member(vw_lr_t *lr, const redisReply *r)
{
    const char  *tier;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 6) {
        return;
    }

    lr->members++;
    lr->earned += vw_lr_int(r->element[1]);
    lr->spent += vw_lr_int(r->element[2]);
    lr->expired += vw_lr_int(r->element[3]);
    lr->active += vw_lr_int(r->element[4]);
    lr->pending += vw_lr_int(r->element[5]);

    /* a member not yet moved is in the base tier, the programme's first */
    tier = r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->str[0]
           ? r->element[0]->str
           : json_string_value(json_array_get(lr->order, 0));

    if (tier) {
        vw_lr_tier(lr, tier);
    }
}


/* the programme's tier names, "base:0:100,gold:3000:150" */

static int
vw_lr_programme(vw_op_t *op, vw_lr_t *lr, char *err, size_t errlen)
{
    char         *key, *s, *p, *item;
    redisReply   *r;

    key = vw_key(op->cf, "lp");
    r = redisCommand(op->redis, "HGET %s tiers", key);
    free(key);

    if (vw_redis_failed(op->redis, r, err, errlen)) {
        if (r) {
            freeReplyObject(r);
        }

        return -1;
    }

    if (r->type == REDIS_REPLY_STRING) {
        s = vw_xstrdup(r->str);

        for (p = s; (item = strsep(&p, ",")) != NULL; ) {
            item[strcspn(item, ":")] = '\0';

            if (item[0]) {
                json_array_append_new(lr->order, json_string(item));
            }
        }

        free(s);
    }

    freeReplyObject(r);

    return 0;
}


static int
vw_lr_scan(vw_op_t *op, vw_lr_t *lr, char *err, size_t errlen)
{
    int          rc;
    char        *match, cursor[32];
    size_t       i;
    redisReply  *r, *keys, *m;

    match = vw_key(op->cf, "lm:*");
    strcpy(cursor, "0");
    rc = -1;

    do {
        r = redisCommand(op->redis, "SCAN %s MATCH %s COUNT %d", cursor,
                         match, VW_LR_COUNT);

        if (vw_redis_failed(op->redis, r, err, errlen)) {
            if (r) {
                freeReplyObject(r);
            }

            goto done;
        }

        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            snprintf(err, errlen, "SCAN: unexpected reply");
            freeReplyObject(r);
            goto done;
        }

        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        keys = r->element[1];

        for (i = 0; i < keys->elements; i++) {
            redisAppendCommand(op->redis,
                               "HMGET %s tier earned spent expired act pend",
                               keys->element[i]->str);
        }

        for (i = 0; i < keys->elements; i++) {
            m = NULL;

            if (redisGetReply(op->redis, (void **) &m) != REDIS_OK
                || vw_redis_failed(op->redis, m, err, errlen))
            {
                if (m) {
                    freeReplyObject(m);
                }

                freeReplyObject(r);
                goto done;
            }

            vw_lr_member(lr, m);
            freeReplyObject(m);
        }

        freeReplyObject(r);

    } while (strcmp(cursor, "0") != 0);

    rc = 0;

done:

    free(match);

    return rc;
}


static void
vw_lr_free(const char *key, void *value, void *ctx)
{
    (void) key;
    (void) ctx;

    free(value);
}


/* tiers in the programme's order, then any the programme no longer has */

static void
vw_lr_other(const char *key, void *value, void *ctx)
{
    size_t   i;
    json_t  *a = ctx;

    for (i = 0; i < json_array_size(a); i++) {
        if (strcmp(json_string_value(json_object_get(json_array_get(a, i),
                                                     "tier")), key) == 0)
        {
            return;
        }
    }

    json_array_append_new(a, json_pack("{s:s,s:I}", "tier", key,
                                       "members",
                                       (json_int_t) *(int64_t *) value));
}


int
vw_op_loyalty_report(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    int                       rc;
    char                      err[512];
    size_t                    i;
    json_t                   *tiers;
    int64_t                  *n;
    vw_lr_t                   lr;
    const char               *name;
    static const char *const  names[] = { NULL };

    if (vw_op_known(in->query, names, e) != 0) {
        return -1;
    }

    if (op->redis == NULL || op->redis->err) {
        return vw_op_fail(e, 503, "store_unavailable", NULL,
                          "Redis cannot be reached");
    }

    memset(&lr, 0, sizeof(vw_lr_t));
    lr.order = json_array();
    err[0] = '\0';

    if (vw_lr_programme(op, &lr, err, sizeof(err)) != 0
        || vw_lr_scan(op, &lr, err, sizeof(err)) != 0)
    {
        rc = vw_op_fail(e, 503, "store_unavailable", NULL, "Redis: %s", err);
        goto done;
    }

    tiers = json_array();

    for (i = 0; i < json_array_size(lr.order); i++) {
        name = json_string_value(json_array_get(lr.order, i));
        n = vw_map_get(&lr.tiers, name);
        json_array_append_new(tiers, json_pack("{s:s,s:I}", "tier", name,
                                               "members",
                                               (json_int_t) (n ? *n : 0)));
    }

    vw_map_each(&lr.tiers, vw_lr_other, tiers);

    *out = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:o}",
                     "members", (json_int_t) lr.members,
                     "points_earned", (json_int_t) lr.earned,
                     "points_spent", (json_int_t) lr.spent,
                     "points_expired", (json_int_t) lr.expired,
                     "points_active", (json_int_t) lr.active,
                     "points_pending", (json_int_t) lr.pending,
                     "tiers", tiers);
    rc = 200;

done:

    vw_map_each(&lr.tiers, vw_lr_free, NULL);
    vw_map_free(&lr.tiers);
    json_decref(lr.order);

    return rc;
}
