
/*
 * Copyright (C) ngx_voucher authors
 *
 * Automations (list, get, set, delete, next runs), a campaign's delivery
 * log, the admin audit stream, and the namespace's settings.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_auto.h"
#include "vw_clock.h"
#include "vw_op.h"
#include "vw_util.h"


static int
vw_campaign_id(const char *id, vw_operr_t *e)
{
    if (id == NULL || *id == '\0' || strlen(id) > 64) {
        return vw_op_fail(e, 400, "invalid_field", "campaign",
                          "campaign: 1..64 printable ASCII characters");
    }

    return 0;
}


/* the automation of a campaign as JSON, or NULL (404 not_found) */

static json_t *
vw_auto_read(vw_op_t *op, const char *campaign, vw_operr_t *e)
{
    char        *key;
    json_t      *o, *def;
    vw_args_t    a;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "a:%s", campaign);
    vw_args_adds(&a, "HMGET");
    vw_args_adds(&a, key);
    vw_args_adds(&a, "def");
    vw_args_adds(&a, "since");
    vw_args_adds(&a, "last");
    free(key);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        return NULL;
    }

    if (r->element[0]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        vw_op_fail(e, 404, "not_found", NULL,
                   "campaign \"%s\" has no automation", campaign);
        return NULL;
    }

    def = json_loads(r->element[0]->str, 0, NULL);
    o = json_object();
    json_object_set_new(o, "campaign", json_string(campaign));
    json_object_set_new(o, "definition", def ? def : json_null());

    if (r->element[1]->type == REDIS_REPLY_STRING) {
        json_object_set_new(o, "since",
                            json_integer(atoll(r->element[1]->str)));
    }

    if (r->element[2]->type == REDIS_REPLY_STRING) {
        json_object_set_new(o, "last_run",
                            json_integer(atoll(r->element[2]->str)));
    }

    freeReplyObject(r);

    return o;
}


int
vw_op_auto_get(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    if (vw_campaign_id(in->id, e) != 0) {
        return -1;
    }

    *out = vw_auto_read(op, in->id, e);

    if (*out == NULL) {
        return -1;
    }

    vw_op_auto_next_run(op, in->id, *out);

    return 200;
}


int
vw_op_auto_list(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    size_t                    i;
    char                     *key;
    json_t                   *items, *o;
    vw_args_t                 a;
    redisReply               *r;
    static const char *const  none[] = { NULL };

    if (vw_op_known(in->query, none, e) != 0) {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "autos");
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
        o = vw_auto_read(op, r->element[i]->str, e);

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

    /* a campaign has at most one automation: one page holds them all */
    *out = vw_op_page(items, NULL);

    return 200;
}


/*
 * PUT: the body is the definition (docs/worker.md, Automations), checked
 * in full against this configuration before it is stored.
 */

int
vw_op_auto_set(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char        *key, *def, err[512];
    vw_auto_t    at;
    vw_args_t    a;
    redisReply  *r;

    if (vw_campaign_id(in->id, e) != 0) {
        return -1;
    }

    def = json_dumps(in->body, JSON_COMPACT | JSON_PRESERVE_ORDER);

    if (vw_auto_parse(in->id, def, op->cf, &at, err, sizeof(err)) != 0) {
        free(def);
        return vw_op_fail(e, 400, "invalid_field", "definition", "%s", err);
    }

    vw_auto_free(&at);

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, def);
    vw_args_addi(&a, vw_now());
    free(def);

    key = vw_key(op->cf, "a:%s", in->id);
    r = vw_op_admin(op, key, "automation.set", in->id, "auto_set", "", &a,
                    e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        if (strcmp(e->reason, "invalid_field") == 0
            && strcmp(e->field, "campaign") == 0)
        {
            return vw_op_fail(e, 404, "not_found", "campaign",
                              "campaign: not found (\"%s\")", in->id);
        }

        return -1;
    }

    freeReplyObject(r);

    *out = vw_auto_read(op, in->id, e);

    return *out ? 200 : -1;
}


int
vw_op_auto_delete(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char        *key;
    redisReply  *r;

    if (vw_campaign_id(in->id, e) != 0) {
        return -1;
    }

    key = vw_key(op->cf, "a:%s", in->id);
    r = vw_op_admin(op, key, "automation.delete", in->id, "auto_del", "old",
                    NULL, e);
    free(key);

    if (r == NULL) {
        if (e->status == 404) {
            snprintf(e->message, sizeof(e->message),
                     "campaign \"%s\" has no automation", in->id);
        }

        return -1;
    }

    freeReplyObject(r);

    *out = json_pack("{s:s,s:b}", "campaign", in->id, "deleted", 1);

    return 200;
}


/* the next runs of a scheduled automation, in its campaign's zone */

int
vw_op_auto_next(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    int                       tz;
    char                     *key, err[512];
    int64_t                   count, t, now;
    json_t                   *o, *runs;
    vw_auto_t                 at;
    vw_args_t                 a;
    redisReply               *r;
    static const char *const  names[] = { "count", "now", NULL };

    count = 5;
    now = vw_now();

    if (vw_campaign_id(in->id, e) != 0
        || vw_op_known(in->query, names, e) != 0
        || vw_op_qint(in->query, "count", 1, 100, &count, e) != 0
        || vw_op_qint(in->query, "now", 0, 253402300799LL, &now, e)
           != 0)
    {
        return -1;
    }

    o = vw_auto_read(op, in->id, e);

    if (o == NULL) {
        return -1;
    }

    key = vw_key(op->cf, "k:%s", in->id);
    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, "HGET");
    vw_args_adds(&a, key);
    vw_args_adds(&a, "tz_offset");
    free(key);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        json_decref(o);
        return -1;
    }

    tz = r->type == REDIS_REPLY_STRING ? atoi(r->str) : 0;
    freeReplyObject(r);

    key = json_dumps(json_object_get(o, "definition"), JSON_COMPACT);

    if (vw_auto_parse(in->id, key ? key : "null", op->cf, &at, err,
                      sizeof(err)) != 0)
    {
        free(key);
        json_decref(o);
        return vw_op_fail(e, 409, "automation_invalid", NULL, "%s", err);
    }

    free(key);
    runs = json_array();

    if (at.scheduled && at.active) {
        t = now;

        while ((int64_t) json_array_size(runs) < count) {
            t = vw_schedule_next(&at.schedule, t, tz);

            if (t < 0) {
                break;
            }

            json_array_append_new(runs, json_integer(t));
        }
    }

    vw_auto_free(&at);

    json_object_set_new(o, "now", json_integer(now));
    json_object_set_new(o, "tz_offset", json_integer(tz));
    json_object_set_new(o, "next_runs", runs);
    *out = o;

    return 200;
}


/* entries of a stream as {"id", "at", field: value...}, oldest first */

static json_t *
vw_stream_entry(redisReply *en)
{
    size_t       j;
    json_t      *h, *v;
    redisReply  *f;

    h = json_object();
    json_object_set_new(h, "id", json_string(en->element[0]->str));
    json_object_set_new(h, "at", json_integer(atoll(en->element[0]->str)));

    f = en->element[1];

    for (j = 0; j + 1 < f->elements; j += 2) {
        v = NULL;

        if (strcmp(f->element[j]->str, "before") == 0
            || strcmp(f->element[j]->str, "after") == 0)
        {
            v = json_loads(f->element[j + 1]->str, JSON_DECODE_ANY, NULL);
        }

        json_object_set_new(h, f->element[j]->str,
                            v ? v : json_string(f->element[j + 1]->str));
    }

    return h;
}


/*
 * The query of a page: only "cursor" (the last entry id of the page
 * before, as this API gave it) and "limit".
 */

int
vw_op_cursor(vw_op_in_t *in, int64_t *limit, const char **cursor,
    vw_operr_t *e)
{
    static const char *const  names[] = { "cursor", "limit", NULL };

    *cursor = NULL;

    if (vw_op_known(in->query, names, e) != 0
        || vw_op_limit(in->query, limit, e) != 0
        || vw_op_str(in, in->query, "cursor", 0, cursor, e) != 0)
    {
        return -1;
    }

    if (*cursor && (strlen(*cursor) > 40
                    || strspn(*cursor, "0123456789-") != strlen(*cursor)))
    {
        return vw_op_fail(e, 400, "invalid_field", "cursor",
                          "cursor: not one this API gave");
    }

    return 0;
}


/*
 * A page of a stream: XRANGE (or XREVRANGE, newest first) after the
 * cursor, each entry as entry() makes it.
 */

int
vw_op_stream_range(vw_op_t *op, const char *key, int rev, const char *cursor,
    int64_t limit, vw_op_entry_pt entry, json_t **out, vw_operr_t *e)
{
    size_t       i;
    char         from[64];
    json_t      *items;
    vw_args_t    a;
    redisReply  *r;

    if (cursor) {
        snprintf(from, sizeof(from), "(%s", cursor);

    } else {
        snprintf(from, sizeof(from), "%s", rev ? "+" : "-");
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, rev ? "XREVRANGE" : "XRANGE");
    vw_args_adds(&a, key);
    vw_args_adds(&a, from);
    vw_args_adds(&a, rev ? "-" : "+");
    vw_args_adds(&a, "COUNT");
    vw_args_addi(&a, limit);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    items = json_array();

    for (i = 0; i < r->elements; i++) {
        json_array_append_new(items, entry(r->element[i]));
    }

    *out = vw_op_page(items, r->elements == (size_t) limit
                             ? r->element[r->elements - 1]->element[0]->str
                             : NULL);
    freeReplyObject(r);

    return 200;
}


int
vw_op_stream_page(vw_op_t *op, vw_op_in_t *in, const char *key, int rev,
    json_t **out, vw_operr_t *e)
{
    int64_t      limit;
    const char  *cursor;

    if (vw_op_cursor(in, &limit, &cursor, e) != 0) {
        return -1;
    }

    return vw_op_stream_range(op, key, rev, cursor, limit, vw_stream_entry,
                              out, e);
}


/* the delivery log of a campaign, oldest first */

int
vw_op_deliveries(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    int    rc;
    char  *key;

    if (vw_campaign_id(in->id, e) != 0) {
        return -1;
    }

    key = vw_key(op->cf, "dl:%s", in->id);
    rc = vw_op_stream_page(op, in, key, 0, out, e);
    free(key);

    return rc;
}


/* the admin audit stream, newest first */

int
vw_op_audit_list(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    int    rc;
    char  *key;

    key = vw_key(op->cf, "admin");
    rc = vw_op_stream_page(op, in, key, 1, out, e);
    free(key);

    return rc;
}


int
vw_op_settings_get(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    redisReply               *r;
    static const char *const  none[] = { NULL };

    if (vw_op_known(in->query, none, e) != 0) {
        return -1;
    }

    r = vw_op_fcall_key(op, "voucher_settings_get",
                        vw_key(op->cf, "cfg"), e);

    if (r == NULL) {
        return -1;
    }

    *out = vw_op_pairs(r);
    freeReplyObject(r);

    return 200;
}


int
vw_op_settings_update(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    int          rc;
    char        *key;
    vw_args_t    a;
    redisReply  *r;
    vw_op_in_t   q;

    static const vw_field_t  fields[] = {
        { "idem_ttl", VW_F_INT },
        { "stream_maxlen", VW_F_INT },
        { "trail_retention", VW_F_INT },
        { "stack_max_codes", VW_F_INT },
        { NULL, 0 }
    };

    memset(&a, 0, sizeof(vw_args_t));

    rc = vw_op_fields(in, in->body, fields, NULL, &a, e);

    if (rc == 0 && a.n == 0) {
        rc = vw_op_fail(e, 400, "invalid_request", NULL,
                        "nothing to change: name at least one field");
    }

    if (rc != 0) {
        vw_args_free(&a);
        return -1;
    }

    key = vw_key(op->cf, "cfg");
    r = vw_op_admin(op, key, "settings.update", op->cf->ns, "settings_set",
                    "", &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    q = *in;
    q.query = json_object();
    rc = vw_op_settings_get(op, &q, out, e);
    json_decref(q.query);

    return rc;
}
