
/*
 * Copyright (C) ngx_voucher authors
 *
 * Members: get, update, delete (on request: the member's record and its
 * place in {NS}:members), search, their codes; segment preview.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_clock.h"
#include "vw_members.h"
#include "vw_op.h"
#include "vw_op_codes.h"
#include "vw_op_member.h"
#include "vw_util.h"


static const vw_field_t  vw_member_fields[] = {
    { "name", VW_F_STR },
    { "phone", VW_F_STR },
    { "email", VW_F_STR },
    { "line", VW_F_STR },
    { "birthday", VW_F_STR },
    { "tier", VW_F_STR },
    { "tags", VW_F_LIST },
    { "signup", VW_F_INT | VW_F_STR },
    { "first_purchase", VW_F_INT | VW_F_STR },
    { "last_purchase", VW_F_INT | VW_F_STR },
    { "purchases", VW_F_INT },
    { "spend", VW_F_INT },
    { "attrs", VW_F_OBJ | VW_F_STR },
    { NULL, 0 }
};


json_t *
vw_op_member_json(const vw_member_t *m, int rfm)
{
    json_t  *o;

    o = json_object();
    json_object_set_new(o, "id", json_string(m->id));

#define VW_JSTR(name, v)                                                      \
    if (v) {                                                                  \
        json_object_set_new(o, name, json_string(v));                         \
    }

#define VW_JINT(name, v)                                                      \
    if ((v) != VW_UNSET) {                                                    \
        json_object_set_new(o, name, json_integer(v));                        \
    }

    VW_JSTR("name", m->name);
    VW_JSTR("phone", m->phone);
    VW_JSTR("email", m->email);
    VW_JSTR("line", m->line);
    VW_JSTR("birthday", m->birthday);
    VW_JSTR("tier", m->tier);

    if (m->tags && strlen(m->tags) > 2) {
        json_object_set_new(o, "tags",
                            json_stringn(m->tags + 1, strlen(m->tags) - 2));
    }

    VW_JINT("signup", m->signup);
    VW_JINT("first_purchase", m->first);
    VW_JINT("last_purchase", m->last);
    json_object_set_new(o, "purchases", json_integer(m->count));
    json_object_set_new(o, "spend", json_integer(m->spend));

    if (m->attrs) {
        json_object_set_new(o, "attrs", json_loads(m->attrs, 0, NULL));
    }

    if (m->loyalty_tier) {
        json_object_set_new(o, "loyalty_tier", json_string(m->loyalty_tier));
    }

    if (m->e164) {
        json_object_set_new(o, "phone_e164", json_string(m->e164));
    }

#undef VW_JSTR
#undef VW_JINT

    if (rfm) {
        json_object_set_new(o, "rfm", json_pack("{s:i,s:i,s:i,s:s}",
                                                "r", m->r, "f", m->f,
                                                "m", m->m, "group",
                                                vw_rfm_group_name(m->group)));
    }

    return o;
}


static int
vw_member_id(const char *id, vw_operr_t *e)
{
    size_t  n;

    n = id ? strlen(id) : 0;

    if (n == 0) {
        return vw_op_fail(e, 400, "missing_field", "id", "id: required");
    }

    if (n > 128 || strpbrk(id, " \t\r\n")) {
        return vw_op_fail(e, 400, "invalid_field", "id",
                          "id: 1..128 bytes, no spaces");
    }

    return 0;
}


/* the member as JSON, or NULL (404 not_found) */

static json_t *
vw_member_read(vw_op_t *op, const char *id, vw_operr_t *e)
{
    int           rc;
    char          err[512];
    json_t       *o;
    vw_member_t   m;

    rc = vw_member_load(op->redis, op->cf, id, &m, err, sizeof(err));

    if (rc < 0) {
        if (op->redis->err) {
            vw_op_fail(e, 503, "store_unavailable", NULL, "Redis: %s", err);

        } else {
            vw_op_reply_error(err, e);
        }

        return NULL;
    }

    if (rc == 0) {
        vw_op_fail(e, 404, "not_found", NULL, "no member \"%s\"", id);
        return NULL;
    }

    o = vw_op_member_json(&m, 0);
    vw_member_free(&m);

    return o;
}


int
vw_op_member_get(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    static const char *const  none[] = { NULL };

    if (vw_member_id(in->id, e) != 0 || vw_op_known(in->query, none, e) != 0
        || op->redis == NULL)
    {
        return op->redis ? -1 : vw_op_fail(e, 503, "store_unavailable", NULL,
                                           "Redis cannot be reached");
    }

    *out = vw_member_read(op, in->id, e);

    return *out ? 200 : -1;
}


static int
vw_member_write(vw_op_t *op, vw_op_in_t *in, const char *id,
    const char *name, const char *must, const char *const *skip,
    json_t **out, vw_operr_t *e)
{
    int          rc;
    char        *key;
    vw_args_t    a;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));

    rc = vw_op_fields(in, in->body, vw_member_fields, skip, &a, e);

    if (rc == 0 && a.n == 0 && strcmp(must, "old") == 0) {
        rc = vw_op_fail(e, 400, "invalid_request", NULL,
                        "nothing to change: name at least one field");
    }

    if (rc != 0) {
        vw_args_free(&a);
        return -1;
    }

    key = vw_key(op->cf, "m:%s", id);
    r = vw_op_admin(op, key, name, id, "member_set", must, &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    *out = vw_member_read(op, id, e);

    return *out ? 0 : -1;
}


int
vw_op_member_create(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    const char               *id;
    static const char *const  skip[] = { "id", NULL };

    id = NULL;

    if (vw_op_str(in, in->body, "id", 1, &id, e) != 0
        || vw_member_id(id, e) != 0
        || vw_member_write(op, in, id, "member.create", "new", skip, out, e)
           != 0)
    {
        return -1;
    }

    return 201;
}


int
vw_op_member_update(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    if (vw_member_id(in->id, e) != 0
        || vw_member_write(op, in, in->id, "member.update", "old", NULL, out,
                           e) != 0)
    {
        return -1;
    }

    return 200;
}


int
vw_op_member_delete(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    char                     *key;
    redisReply               *r;
    static const char *const  none[] = { NULL };

    if (vw_member_id(in->id, e) != 0 || vw_op_known(in->body, none, e) != 0)
    {
        return -1;
    }

    key = vw_key(op->cf, "m:%s", in->id);
    r = vw_op_admin(op, key, "member.delete", in->id, "member_del", "old",
                    NULL, e);
    free(key);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    *out = json_pack("{s:s,s:b}", "id", in->id, "deleted", 1);

    return 200;
}


static int
vw_member_pass(json_t *m, const char *q, const char *tier, const char *tag)
{
    size_t       n;
    const char  *s, *p;

    if (tier && ((s = json_string_value(json_object_get(m, "tier"))) == NULL
                 || strcmp(s, tier) != 0))
    {
        return 0;
    }

    if (tag) {
        s = json_string_value(json_object_get(m, "tags"));
        n = strlen(tag);

        for (p = s; p; p = strchr(p, ',')) {
            p += (*p == ',');

            if (strncmp(p, tag, n) == 0 && (p[n] == ',' || p[n] == '\0')) {
                break;
            }
        }

        if (p == NULL) {
            return 0;
        }
    }

    if (q) {
        return ((s = json_string_value(json_object_get(m, "id")))
                && strcasestr(s, q))
               || ((s = json_string_value(json_object_get(m, "name")))
                   && strcasestr(s, q))
               || ((s = json_string_value(json_object_get(m, "email")))
                   && strcasestr(s, q))
               || ((s = json_string_value(json_object_get(m, "phone")))
                   && strstr(s, q));
    }

    return 1;
}


/* members by a part of id, name, email or phone, tier and tag */

int
vw_op_member_search(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    size_t       i;
    char        *key, cursor[32];
    int64_t      limit;
    json_t      *items, *m;
    vw_args_t    a;
    redisReply  *r;
    const char  *q, *tier, *tag, *from;

    static const char *const  names[] = {
        "q", "tier", "tag", "cursor", "limit", NULL
    };

    q = tier = tag = from = NULL;

    if (vw_op_known(in->query, names, e) != 0
        || vw_op_limit(in->query, &limit, e) != 0
        || vw_op_str(in, in->query, "q", 0, &q, e) != 0
        || vw_op_str(in, in->query, "tier", 0, &tier, e) != 0
        || vw_op_str(in, in->query, "tag", 0, &tag, e) != 0
        || vw_op_str(in, in->query, "cursor", 0, &from, e) != 0)
    {
        return -1;
    }

    if (from && strspn(from, "0123456789") != strlen(from)) {
        return vw_op_fail(e, 400, "invalid_field", "cursor",
                          "cursor: not one this API gave");
    }

    snprintf(cursor, sizeof(cursor), "%s", from ? from : "0");
    key = vw_key(op->cf, "members");
    items = json_array();
    memset(&a, 0, sizeof(vw_args_t));

    do {
        vw_args_reset(&a);
        vw_args_adds(&a, "SSCAN");
        vw_args_adds(&a, key);
        vw_args_adds(&a, cursor);
        vw_args_adds(&a, "COUNT");
        vw_args_addi(&a, limit);

        r = vw_op_run(op, &a, e);

        if (r == NULL) {
            goto failed;
        }

        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);

        for (i = 0; i < r->element[1]->elements; i++) {
            m = vw_member_read(op, r->element[1]->element[i]->str, e);

            if (m == NULL) {
                if (e->status == 404) {
                    continue;
                }

                freeReplyObject(r);
                goto failed;
            }

            if (vw_member_pass(m, q, tier, tag)) {
                json_array_append_new(items, m);

            } else {
                json_decref(m);
            }
        }

        freeReplyObject(r);

    } while (strcmp(cursor, "0") != 0
             && json_array_size(items) < (size_t) limit);

    free(key);
    vw_args_free(&a);

    *out = vw_op_page(items, strcmp(cursor, "0") ? cursor : NULL);

    return 200;

failed:

    free(key);
    vw_args_free(&a);
    json_decref(items);

    return -1;
}


/* the codes assigned to a member: a page of the scan of all codes */

int
vw_op_member_codes(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    char               cursor[32];
    int64_t            limit;
    json_t            *items;
    const char        *from;
    vw_code_filter_t   f;

    static const char *const  names[] = { "cursor", "limit", NULL };

    from = NULL;

    if (vw_member_id(in->id, e) != 0
        || vw_op_known(in->query, names, e) != 0
        || vw_op_limit(in->query, &limit, e) != 0
        || vw_op_str(in, in->query, "cursor", 0, &from, e) != 0)
    {
        return -1;
    }

    if (from && strspn(from, "0123456789") != strlen(from)) {
        return vw_op_fail(e, 400, "invalid_field", "cursor",
                          "cursor: not one this API gave");
    }

    memset(&f, 0, sizeof(vw_code_filter_t));
    f.customer = in->id;

    snprintf(cursor, sizeof(cursor), "%s", from ? from : "0");
    items = json_array();

    do {
        if (vw_op_codes_scan(op, cursor, sizeof(cursor), 1000, &f, items, e)
            != 0)
        {
            json_decref(items);
            return -1;
        }

    } while (strcmp(cursor, "0") != 0
             && json_array_size(items) < (size_t) limit);

    *out = vw_op_page(items, strcmp(cursor, "0") ? cursor : NULL);

    return 200;
}


/* who a segment holds now: the count and the first sample members */

int
vw_op_segment_preview(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    int            tz;
    char           err[512];
    size_t         i, k, n, *idx;
    int64_t        sample, now;
    json_t        *arr, *v;
    vw_segment_t   seg;
    vw_member_t   *m;
    const char    *spec;

    static const char *const  names[] = {
        "segment", "tz_offset", "sample", "now", NULL
    };

    spec = NULL;
    sample = 20;
    now = vw_now();
    tz = 0;

    if (vw_op_known(in->body, names, e) != 0
        || vw_op_str(in, in->body, "segment", 1, &spec, e) != 0
        || vw_op_int(in, in->body, "sample", 0, 0, 1000, &sample, e) != 0
        || vw_op_int(in, in->body, "now", 0, 0, 253402300799LL, &now, e)
           != 0)
    {
        return -1;
    }

    v = json_object_get(in->body, "tz_offset");

    if (v && json_is_integer(v) && json_integer_value(v) >= -840
        && json_integer_value(v) <= 840)
    {
        tz = (int) json_integer_value(v);

    } else if (v && !(json_is_string(v)
                      && vw_tz_parse(json_string_value(v), &tz) == 0))
    {
        return vw_op_fail(e, 400, "invalid_field", "tz_offset",
                          "tz_offset: expected minutes -840..840 or "
                          "\"+HH:MM\"");
    }

    if (vw_segment_parse(spec, &seg, err, sizeof(err)) != 0) {
        return vw_op_fail(e, 400, "invalid_field", "segment", "%s", err);
    }

    if (op->redis == NULL
        || vw_members_load(op->redis, op->cf, &m, &n, err, sizeof(err)) != 0)
    {
        vw_segment_free(&seg);
        return vw_op_fail(e, 503, "store_unavailable", NULL, "Redis: %s",
                          op->redis ? err : "cannot be reached");
    }

    vw_rfm_score(m, n, now);

    idx = vw_xalloc((n ? n : 1) * sizeof(size_t));
    k = vw_segment_eval(&seg, m, n, now, tz, idx);

    arr = json_array();

    for (i = 0; i < k && (int64_t) i < sample; i++) {
        json_array_append_new(arr, vw_op_member_json(&m[idx[i]], 1));
    }

    *out = json_pack("{s:s,s:I,s:I,s:o}", "segment", spec, "count",
                     (json_int_t) k, "members", (json_int_t) n, "sample",
                     arr);

    free(idx);
    vw_members_free(m, n);
    vw_segment_free(&seg);

    return 200;
}
