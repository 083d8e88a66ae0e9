
/*
 * Copyright (C) ngx_voucher authors
 *
 * Outgoing webhook subscriptions (redis/lib/webhooks.lua): create, get,
 * list, update, delete, and their dead letters.  A change goes through
 * voucher_admin, audited without the secret; the secret is never shown
 * again (a generated one once, in the answer of the create).
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "vw_op.h"
#include "vw_util.h"


static const vw_field_t  vw_webhook_fields[] = {
    { "url", VW_F_STR },
    { "secret", VW_F_STR },
    { "events", VW_F_LIST },
    { "status", VW_F_STR },
    { NULL, 0 }
};


static int
vw_webhook_id(const char *id, vw_operr_t *e)
{
    if (id == NULL || *id == '\0' || strlen(id) > 64
        || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789_-") != strlen(id))
    {
        return vw_op_fail(e, 400, "invalid_field", "id",
                          "id: 1..64 of A-Z a-z 0-9 _ -");
    }

    return 0;
}


/* the subscription as the API shows it: never its secret */

static json_t *
vw_webhook_read(vw_op_t *op, const char *id, vw_operr_t *e)
{
    char         *key;
    json_t       *o, *ev;
    int64_t       n;
    vw_args_t     a;
    redisReply   *r;
    const char   *s;

    static const char *const  names[] = {
        "url", "events", "status", "created", "delivered", "dead",
        "attempt", "error", "sent"
    };

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "wh:%s", id);
    vw_args_adds(&a, "HMGET");
    vw_args_adds(&a, key);

    for (n = 0; n < 9; n++) {
        vw_args_adds(&a, names[n]);
    }

    free(key);

    r = vw_op_run(op, &a, e);

    if (r == NULL) {
        vw_args_free(&a);
        return NULL;
    }

    if (r->element[0]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        vw_args_free(&a);
        vw_op_fail(e, 404, "not_found", NULL, "no such webhook \"%s\"", id);
        return NULL;
    }

    o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "url", json_string(r->element[0]->str));

    s = vw_reply_str(r->element[1]);

    if (s && strcmp(s, "*") == 0) {
        ev = json_string("*");

    } else {
        ev = json_array();

        while (s && *s) {
            s += *s == ',';
            n = (int64_t) strcspn(s, ",");

            if (n > 0) {
                json_array_append_new(ev, json_stringn(s, (size_t) n));
            }

            s += n;
        }
    }

    json_object_set_new(o, "events", ev);
    json_object_set_new(o, "status",
                        json_string(vw_reply_str(r->element[2])
                                    ? vw_reply_str(r->element[2]) : ""));

    for (n = 3; n <= 6; n++) {
        int64_t  v;

        v = 0;
        vw_reply_int(r->element[n], &v);
        json_object_set_new(o, n == 3 ? "created_at" : names[n],
                            json_integer(v));
    }

    s = vw_reply_str(r->element[7]);

    if (s && s[0]) {
        json_object_set_new(o, "last_error", json_string(s));
    }

    freeReplyObject(r);

    /* what waits to be sent */
    key = vw_key(op->cf, "who:%s", id);
    vw_args_reset(&a);
    vw_args_adds(&a, "XLEN");
    vw_args_adds(&a, key);
    free(key);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        json_decref(o);
        return NULL;
    }

    json_object_set_new(o, "pending", json_integer(r->integer));
    freeReplyObject(r);

    return o;
}


/* voucher_admin webhook_set of the body's fields */

static int
vw_webhook_set(vw_op_t *op, vw_op_in_t *in, const char *id, const char *name,
    const char *must, const char *secret, vw_operr_t *e)
{
    char        *key;
    vw_args_t    a;
    redisReply  *r;

    static const char *const  skip[] = { "id", NULL };

    memset(&a, 0, sizeof(vw_args_t));

    if (vw_op_fields(in, in->body, vw_webhook_fields, skip, &a, e) != 0) {
        vw_args_free(&a);
        return -1;
    }

    if (secret) {
        vw_args_adds(&a, "secret");
        vw_args_adds(&a, secret);
    }

    if (a.n == 0) {
        vw_args_free(&a);
        return vw_op_fail(e, 400, "invalid_request", NULL,
                          "nothing to change: name at least one field");
    }

    key = vw_key(op->cf, "wh:%s", id);
    r = vw_op_admin(op, key, name, id, "webhook_set", must, &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    return 0;
}


int
vw_op_webhook_create(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    char            id[72], secret[65];
    const char     *given;
    unsigned char   rnd[16];

    given = NULL;

    if (vw_op_str(in, in->body, "id", 0, &given, e) != 0) {
        return -1;
    }

    if (given) {
        if (vw_webhook_id(given, e) != 0) {
            return -1;
        }

        snprintf(id, sizeof(id), "%s", given);

    } else {
        randombytes_buf(rnd, 4);
        snprintf(id, sizeof(id), "wh");
        sodium_bin2hex(id + 2, sizeof(id) - 2, rnd, 4);
    }

    /* no secret given: one made, shown once */
    secret[0] = '\0';

    if (json_object_get(in->body, "secret") == NULL) {
        randombytes_buf(rnd, sizeof(rnd));
        sodium_bin2hex(secret, sizeof(secret), rnd, sizeof(rnd));
    }

    if (vw_webhook_set(op, in, id, "webhook.create", "new",
                       secret[0] ? secret : NULL, e) != 0)
    {
        return -1;
    }

    *out = vw_webhook_read(op, id, e);

    if (*out == NULL) {
        return -1;
    }

    if (secret[0]) {
        json_object_set_new(*out, "secret", json_string(secret));
        sodium_memzero(secret, sizeof(secret));
    }

    return 201;
}


int
vw_op_webhook_update(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    if (vw_webhook_id(in->id, e) != 0
        || vw_webhook_set(op, in, in->id, "webhook.update", "old", NULL, e)
           != 0)
    {
        return -1;
    }

    *out = vw_webhook_read(op, in->id, e);

    return *out ? 200 : -1;
}


int
vw_op_webhook_get(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    static const char *const  none[] = { NULL };

    if (vw_op_known(in->query, none, e) != 0
        || vw_webhook_id(in->id, e) != 0)
    {
        return -1;
    }

    *out = vw_webhook_read(op, in->id, e);

    return *out ? 200 : -1;
}


int
vw_op_webhook_delete(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    char        *key;
    redisReply  *r;

    if (vw_webhook_id(in->id, e) != 0) {
        return -1;
    }

    key = vw_key(op->cf, "wh:%s", in->id);
    r = vw_op_admin(op, key, "webhook.delete", in->id, "webhook_del", "old",
                    NULL, e);
    free(key);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);
    *out = json_pack("{s:b}", "deleted", 1);

    return 200;
}


int
vw_op_webhook_list(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    char                     *key;
    size_t                    i;
    json_t                   *items, *o;
    vw_args_t                 a;
    redisReply               *r;
    static const char *const  none[] = { NULL };

    if (vw_op_known(in->query, none, e) != 0) {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "whs");
    vw_args_adds(&a, "SORT");
    vw_args_adds(&a, key);
    vw_args_adds(&a, "ALPHA");
    free(key);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    items = json_array();

    for (i = 0; i < r->elements; i++) {
        o = vw_webhook_read(op, r->element[i]->str, e);

        if (o == NULL) {
            if (e->status == 404) {
                continue;
            }

            json_decref(items);
            freeReplyObject(r);
            return -1;
        }

        json_array_append_new(items, o);
    }

    freeReplyObject(r);
    *out = vw_op_page(items, NULL);

    return 200;
}


/* the events given up on, newest first */

int
vw_op_webhook_dead(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    int      rc;
    char    *key;
    json_t  *o;

    if (vw_webhook_id(in->id, e) != 0) {
        return -1;
    }

    o = vw_webhook_read(op, in->id, e);

    if (o == NULL) {
        return -1;
    }

    json_decref(o);

    key = vw_key(op->cf, "whd:%s", in->id);
    rc = vw_op_stream_page(op, in, key, 1, out, e);
    free(key);

    return rc;
}
