
/*
 * Copyright (C) ngx_voucher authors
 *
 * Members in Redis: see vw_members.h.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_members.h"
#include "vw_redis.h"
#include "vw_util.h"


#define VW_MEMBER_NFIELDS  13

static const char *const  vw_member_fields[VW_MEMBER_NFIELDS] = {
    "name", "phone", "email", "line", "birthday", "tier", "tags", "signup",
    "first", "last", "count", "spend", "attrs"
};


static char *
vw_field_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING && r->len > 0
           ? vw_xstrndup(r->str, r->len) : NULL;
}


static int64_t
vw_field_int(const redisReply *r, int64_t def)
{
    int64_t  v;

    return vw_reply_int(r, &v) == 0 ? v : def;
}


/* h: the member's fields; t: its loyalty tier (HGET of {NS}:lm:<id>) */

static void
vw_member_from(const vw_config_t *cf, vw_member_t *m, const char *id,
    const redisReply *h, const redisReply *t)
{
    char  e164[32];

    memset(m, 0, sizeof(vw_member_t));

    m->id = vw_xstrdup(id);
    m->name = vw_field_str(h->element[0]);
    m->phone = vw_field_str(h->element[1]);
    m->email = vw_field_str(h->element[2]);
    m->line = vw_field_str(h->element[3]);
    m->birthday = vw_field_str(h->element[4]);
    m->tier = vw_field_str(h->element[5]);
    m->tags = vw_field_str(h->element[6]);
    m->signup = vw_field_int(h->element[7], VW_UNSET);
    m->first = vw_field_int(h->element[8], VW_UNSET);
    m->last = vw_field_int(h->element[9], VW_UNSET);
    m->count = vw_field_int(h->element[10], 0);
    m->spend = vw_field_int(h->element[11], 0);
    m->attrs = vw_field_str(h->element[12]);
    m->loyalty_tier = t ? vw_field_str(t) : NULL;

    if (m->phone
        && vw_phone_e164(m->phone, &cf->phone, e164, sizeof(e164)) == 0)
    {
        m->e164 = vw_xstrdup(e164);
    }

    vw_member_birthday(m);
}


/* the member's loyalty tier: HGET {NS}:lm:<id> tier */

static void
vw_member_tier(const vw_config_t *cf, vw_args_t *a, const char *id)
{
    char  *key;

    key = vw_key(cf, "lm:%s", id);

    vw_args_reset(a);
    vw_args_adds(a, "HGET");
    vw_args_adds(a, key);
    vw_args_adds(a, "tier");

    free(key);
}


static void
vw_member_hmget(const vw_config_t *cf, vw_args_t *a, const char *id)
{
    int    i;
    char  *key;

    key = vw_key(cf, "m:%s", id);

    vw_args_reset(a);
    vw_args_adds(a, "HMGET");
    vw_args_adds(a, key);

    for (i = 0; i < VW_MEMBER_NFIELDS; i++) {
        vw_args_adds(a, vw_member_fields[i]);
    }

    free(key);
}


static int
vw_by_id(const void *a, const void *b)
{
    const vw_member_t  *x = a, *y = b;

    return strcmp(x->id, y->id);
}


int
vw_members_load(redisContext *c, const vw_config_t *cf, vw_member_t **out,
    size_t *n, char *err, size_t errlen)
{
    int           rc;
    char         *set, cursor[32];
    size_t        i, cap, cnt;
    vw_args_t     a;
    redisReply   *r, *ids, *h, *t;
    vw_member_t  *m;

    set = vw_key(cf, "members");
    memset(&a, 0, sizeof(vw_args_t));
    strcpy(cursor, "0");
    m = NULL;
    cap = 0;
    cnt = 0;
    rc = -1;
    r = NULL;

    do {
        r = redisCommand(c, "SSCAN %s %s COUNT 1000", set, cursor);

        if (vw_redis_failed(c, r, err, errlen)
            || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        {
            goto done;
        }

        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        ids = r->element[1];

        for (i = 0; i < ids->elements; i++) {
            vw_member_hmget(cf, &a, ids->element[i]->str);
            vw_redis_append(c, &a);
            vw_member_tier(cf, &a, ids->element[i]->str);
            vw_redis_append(c, &a);
        }

        for (i = 0; i < ids->elements; i++) {
            h = vw_redis_get(c, err, errlen);
            t = h ? vw_redis_get(c, err, errlen) : NULL;

            if (t == NULL) {
                if (h) {
                    freeReplyObject(h);
                }

                goto done;
            }

            if (h->type != REDIS_REPLY_ARRAY
                || h->elements != VW_MEMBER_NFIELDS)
            {
                snprintf(err, errlen, "redis: unexpected reply for member "
                         "\"%s\"", ids->element[i]->str);
                freeReplyObject(h);
                freeReplyObject(t);
                goto done;
            }

            if (cnt == cap) {
                cap = cap ? cap * 2 : 1024;
                m = vw_xrealloc(m, cap * sizeof(vw_member_t));
            }

            vw_member_from(cf, &m[cnt++], ids->element[i]->str, h, t);
            freeReplyObject(h);
            freeReplyObject(t);
        }

        freeReplyObject(r);
        r = NULL;

    } while (strcmp(cursor, "0") != 0);

    /* SSCAN may return an element twice: sort, then drop repeats */
    if (cnt > 1) {
        qsort(m, cnt, sizeof(vw_member_t), vw_by_id);

        for (i = 1, cap = 1; i < cnt; i++) {
            if (strcmp(m[i].id, m[cap - 1].id) == 0) {
                vw_member_free(&m[i]);
                continue;
            }

            m[cap++] = m[i];
        }

        cnt = cap;
    }

    rc = 0;

done:

    if (r) {
        freeReplyObject(r);
    }

    if (rc != 0) {
        vw_members_free(m, cnt);
        m = NULL;
        cnt = 0;
    }

    *out = m;
    *n = cnt;

    vw_args_free(&a);
    free(set);

    return rc;
}


int
vw_member_load(redisContext *c, const vw_config_t *cf, const char *id,
    vw_member_t *m, char *err, size_t errlen)
{
    size_t       i;
    int          found;
    vw_args_t    a;
    redisReply  *h, *t;

    memset(&a, 0, sizeof(vw_args_t));
    vw_member_hmget(cf, &a, id);
    vw_redis_append(c, &a);
    vw_member_tier(cf, &a, id);
    vw_redis_append(c, &a);
    vw_args_free(&a);

    h = vw_redis_get(c, err, errlen);
    t = h ? vw_redis_get(c, err, errlen) : NULL;

    if (t == NULL || h->type != REDIS_REPLY_ARRAY) {
        if (h && h->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "redis: %s", h->str);
        }

        if (h) {
            freeReplyObject(h);
        }

        if (t) {
            freeReplyObject(t);
        }

        return -1;
    }

    found = 0;

    for (i = 0; i < h->elements; i++) {
        if (h->element[i]->type == REDIS_REPLY_STRING) {
            found = 1;
        }
    }

    if (found) {
        vw_member_from(cf, m, id, h, t->type == REDIS_REPLY_STRING ? t : NULL);
    }

    freeReplyObject(h);
    freeReplyObject(t);

    return found;
}


void
vw_members_free(vw_member_t *m, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        vw_member_free(&m[i]);
    }

    free(m);
}
