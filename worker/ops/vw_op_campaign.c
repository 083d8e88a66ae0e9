
/*
 * Copyright (C) ngx_voucher authors
 *
 * Campaigns: create, get, list with filters, update, pause, resume,
 * archive (voucher_campaign_set and _get, through voucher_admin).
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_op.h"
#include "vw_util.h"


static const vw_field_t  vw_campaign_fields[] = {
    { "name", VW_F_STR | VW_F_NULL },
    { "status", VW_F_STR },
    { "kind", VW_F_STR },
    { "value", VW_F_INT },
    { "cap", VW_F_INT },
    { "min_amount", VW_F_INT },
    { "max_redemptions", VW_F_INT },
    { "max_discount", VW_F_INT },
    { "per_customer", VW_F_INT },
    { "per_customer_code", VW_F_INT },
    { "code_max_uses", VW_F_INT },
    { "currency", VW_F_STR | VW_F_NULL },
    { "starts_at", VW_F_INT | VW_F_NULL },
    { "ends_at", VW_F_INT | VW_F_NULL },
    { "days", VW_F_STR | VW_F_NULL },
    { "hours", VW_F_STR | VW_F_NULL },
    { "tz_offset", VW_F_TZ | VW_F_NULL },
    { "include_skus", VW_F_LIST | VW_F_NULL },
    { "exclude_skus", VW_F_LIST | VW_F_NULL },
    { "include_categories", VW_F_LIST | VW_F_NULL },
    { "exclude_categories", VW_F_LIST | VW_F_NULL },
    { "free_sku", VW_F_STR | VW_F_NULL },
    /* rules (redis/lib/rules.lua) */
    { "customer_uses_per", VW_F_STR | VW_F_NULL },
    { "customer_amount_per", VW_F_STR | VW_F_NULL },
    { "customer_amount_max", VW_F_INT | VW_F_NULL },
    { "steps", VW_F_STR | VW_F_NULL },
    { "buy_qty", VW_F_INT | VW_F_NULL },
    { "get_qty", VW_F_INT | VW_F_NULL },
    { "conditions", VW_F_STR | VW_F_NULL },
    { NULL, 0 }
};


/* the campaign as JSON, or NULL (404 not_found) */

static json_t *
vw_campaign_read(vw_op_t *op, const char *id, vw_operr_t *e)
{
    json_t      *o, *p;
    redisReply  *r;

    r = vw_op_fcall_key(op, "voucher_campaign_get",
                        vw_key(op->cf, "k:%s", id), e);

    if (r == NULL) {
        return NULL;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        vw_op_fail(e, 404, "not_found", NULL, "no such campaign \"%s\"",
                   id);
        return NULL;
    }

    o = json_object();
    json_object_set_new(o, "id", json_string(id));
    p = vw_op_pairs(r);
    json_object_update(o, p);
    json_decref(p);
    freeReplyObject(r);

    return o;
}


/* the audited voucher_campaign_set of id with args, then the campaign */

static int
vw_campaign_write(vw_op_t *op, const char *id, const char *name,
    const char *must, vw_args_t *args, json_t **out, vw_operr_t *e)
{
    char        *key;
    redisReply  *r;

    if (id == NULL || *id == '\0') {
        return vw_op_fail(e, 400, "missing_field", "id", "id: required");
    }

    key = vw_key(op->cf, "k:%s", id);
    r = vw_op_admin(op, key, name, id, "campaign_set", must, args, e);
    free(key);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    *out = vw_campaign_read(op, id, e);

    return *out ? 0 : -1;
}


int
vw_op_campaign_create(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    int                       rc;
    const char               *id;
    vw_args_t                 a;
    static const char *const  skip[] = { "id", NULL };

    id = NULL;

    if (vw_op_str(in, in->body, "id", 1, &id, e) != 0) {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));

    rc = vw_op_fields(in, in->body, vw_campaign_fields, skip, &a, e);

    if (rc == 0 && a.n == 0) {
        rc = vw_op_fail(e, 400, "missing_field", "kind", "kind: required");
    }

    if (rc == 0) {
        rc = vw_campaign_write(op, id, "campaign.create", "new", &a, out, e);
    }

    vw_args_free(&a);

    return rc == 0 ? 201 : -1;
}


static int
vw_campaign_change(vw_op_t *op, vw_op_in_t *in, const char *must,
    json_t **out, vw_operr_t *e)
{
    int        rc;
    vw_args_t  a;

    memset(&a, 0, sizeof(vw_args_t));

    rc = vw_op_fields(in, in->body, vw_campaign_fields, NULL, &a, e);

    if (rc == 0 && a.n == 0) {
        rc = vw_op_fail(e, 400, "invalid_request", NULL,
                        "nothing to change: name at least one field");
    }

    if (rc == 0) {
        rc = vw_campaign_write(op, in->id, "campaign.update", must, &a, out,
                               e);
    }

    vw_args_free(&a);

    return rc == 0 ? 200 : -1;
}


int
vw_op_campaign_update(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    return vw_campaign_change(op, in, "old", out, e);
}


/* voucherctl campaign set: made or changed */

int
vw_op_campaign_set(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    return vw_campaign_change(op, in, "", out, e);
}


static int
vw_campaign_status(vw_op_t *op, vw_op_in_t *in, const char *status,
    const char *name, json_t **out, vw_operr_t *e)
{
    int                       rc;
    vw_args_t                 a;
    static const char *const  none[] = { NULL };

    if (vw_op_known(in->body, none, e) != 0) {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, "status");
    vw_args_adds(&a, status);

    rc = vw_campaign_write(op, in->id, name, "old", &a, out, e);
    vw_args_free(&a);

    return rc == 0 ? 200 : -1;
}


int
vw_op_campaign_pause(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    return vw_campaign_status(op, in, "paused", "campaign.pause", out, e);
}


int
vw_op_campaign_resume(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    return vw_campaign_status(op, in, "active", "campaign.resume", out, e);
}


int
vw_op_campaign_archive(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    return vw_campaign_status(op, in, "archived", "campaign.archive", out, e);
}


int
vw_op_campaign_get(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    static const char *const  none[] = { NULL };

    if (vw_op_known(in->query, none, e) != 0) {
        return -1;
    }

    *out = vw_campaign_read(op, in->id, e);

    return *out ? 200 : -1;
}


/* does a campaign pass the list's filters */

static int
vw_campaign_match(json_t *c, const char *status, const char *kind,
    const char *q)
{
    const char  *s;

    if (status && ((s = json_string_value(json_object_get(c, "status")))
                   == NULL || strcmp(s, status) != 0))
    {
        return 0;
    }

    if (kind && ((s = json_string_value(json_object_get(c, "kind"))) == NULL
                 || strcmp(s, kind) != 0))
    {
        return 0;
    }

    if (q) {
        s = json_string_value(json_object_get(c, "id"));

        if (s && strcasestr(s, q)) {
            return 1;
        }

        s = json_string_value(json_object_get(c, "name"));

        return s && strcasestr(s, q);
    }

    return 1;
}


/*
 * A page of campaigns: a SCAN of {NS}:k:* from the cursor until about
 * limit campaigns passed the filters (status, kind, q: a part of the id or
 * name, any case) or the scan is done.
 */

int
vw_op_campaign_list(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    size_t       i, pre;
    char        *pat, cursor[32];
    int64_t      limit;
    json_t      *items, *c;
    vw_args_t    a;
    redisReply  *r;
    const char  *status, *kind, *q, *from, *k;

    static const char *const  names[] = {
        "status", "kind", "q", "cursor", "limit", NULL
    };

    status = kind = q = from = NULL;

    if (vw_op_known(in->query, names, e) != 0
        || vw_op_limit(in->query, &limit, e) != 0
        || vw_op_str(in, in->query, "status", 0, &status, e) != 0
        || vw_op_str(in, in->query, "kind", 0, &kind, e) != 0
        || vw_op_str(in, in->query, "q", 0, &q, e) != 0
        || vw_op_str(in, in->query, "cursor", 0, &from, e) != 0)
    {
        return -1;
    }

    if (from && strspn(from, "0123456789") != strlen(from)) {
        return vw_op_fail(e, 400, "invalid_field", "cursor",
                          "cursor: not one this API gave");
    }

    snprintf(cursor, sizeof(cursor), "%s", from ? from : "0");

    pat = vw_key(op->cf, "k:*");
    pre = strlen(pat) - 1;
    items = json_array();
    memset(&a, 0, sizeof(vw_args_t));

    do {
        vw_args_reset(&a);
        vw_args_adds(&a, "SCAN");
        vw_args_adds(&a, cursor);
        vw_args_adds(&a, "MATCH");
        vw_args_adds(&a, pat);
        vw_args_adds(&a, "COUNT");
        vw_args_addi(&a, limit);

        r = vw_op_run(op, &a, e);

        if (r == NULL) {
            goto failed;
        }

        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);

        for (i = 0; i < r->element[1]->elements; i++) {
            k = r->element[1]->element[i]->str;

            c = vw_campaign_read(op, k + pre, e);

            if (c == NULL) {
                if (e->status == 404) {
                    continue;           /* deleted meanwhile */
                }

                freeReplyObject(r);
                goto failed;
            }

            if (vw_campaign_match(c, status, kind, q)) {
                json_array_append_new(items, c);

            } else {
                json_decref(c);
            }
        }

        freeReplyObject(r);

    } while (strcmp(cursor, "0") != 0
             && json_array_size(items) < (size_t) limit);

    free(pat);
    vw_args_free(&a);

    *out = vw_op_page(items, strcmp(cursor, "0") ? cursor : NULL);

    return 200;

failed:

    free(pat);
    vw_args_free(&a);
    json_decref(items);

    return -1;
}
