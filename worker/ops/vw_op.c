
/*
 * Copyright (C) ngx_voucher authors
 *
 * What the admin operations share: errors, Redis calls through the
 * audited voucher_admin, typed fields of the input, pages.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_log.h"
#include "vw_op.h"
#include "vw_util.h"


int
vw_op_fail(vw_operr_t *e, int status, const char *reason, const char *field,
    const char *fmt, ...)
{
    va_list  args;

    e->status = status;
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");

    va_start(args, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, args);
    va_end(args);

    return -1;
}


/* the library's error replies, and how the API answers them */

typedef struct {
    const char  *word;
    int          status;
    const char  *reason;
    int          named;         /* the next word names the field */
} vw_errmap_t;


static const vw_errmap_t  vw_errmap[] = {
    { "invalid_field", 400, "invalid_field", 1 },
    { "unknown_field", 400, "unknown_field", 1 },
    { "bad_args", 400, "invalid_request", 0 },
    { "bad_key", 400, "invalid_request", 0 },
    { "already_exists", 409, "already_exists", 0 },
    { "not_found", 404, "not_found", 0 },
    { NULL, 0, NULL, 0 }
};


int
vw_op_reply_error(const char *s, vw_operr_t *e)
{
    size_t              n, f;
    const char         *rest;
    const vw_errmap_t  *m;

    if (strncmp(s, "ERR ", 4) == 0) {
        s += 4;
    }

    if (vw_redis_unready(s)) {
        return vw_op_fail(e, 503, "store_unavailable", NULL,
                          "Redis cannot take writes now: %s", s);
    }

    n = strcspn(s, " ");

    for (m = vw_errmap; m->word; m++) {
        if (strlen(m->word) != n || strncmp(s, m->word, n) != 0) {
            continue;
        }

        rest = s[n] ? s + n + 1 : s + n;

        if (m->status == 409) {
            return vw_op_fail(e, 409, m->reason, NULL, "\"%s\" exists already",
                              rest);
        }

        if (m->status == 404) {
            return vw_op_fail(e, 404, m->reason, NULL, "no such object \"%s\"",
                              rest);
        }

        if (!m->named) {
            return vw_op_fail(e, m->status, m->reason, NULL, "%s",
                              *rest ? rest : m->reason);
        }

        /* "name: why" or "name" */
        f = strcspn(rest, ": ");

        vw_op_fail(e, m->status, m->reason, NULL, "%s",
                   m->status == 400 && *rest == '\0' ? m->reason : rest);
        snprintf(e->field, sizeof(e->field), "%.*s", (int) f, rest);

        if (strcmp(m->reason, "unknown_field") == 0) {
            snprintf(e->message, sizeof(e->message), "unknown field %.*s",
                     (int) f, rest);
        }

        return -1;
    }

    vw_log_error("admin: redis answered: %s", s);

    return vw_op_fail(e, 500, "internal_error", NULL,
                      "the store refused the call; the log says more");
}


redisReply *
vw_op_run(vw_op_t *op, const vw_args_t *a, vw_operr_t *e)
{
    char         err[512];
    redisReply  *r;

    if (op->redis == NULL || op->redis->err) {
        vw_op_fail(e, 503, "store_unavailable", NULL,
                   "Redis cannot be reached");
        return NULL;
    }

    r = vw_redis_run(op->redis, a, err, sizeof(err));

    if (r == NULL) {
        vw_op_fail(e, 503, "store_unavailable", NULL, "Redis: %s", err);
        return NULL;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        vw_op_reply_error(r->str, e);
        freeReplyObject(r);
        return NULL;
    }

    return r;
}


redisReply *
vw_op_fcall_key(vw_op_t *op, const char *fn, char *key, vw_operr_t *e)
{
    vw_args_t    a;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, fn);
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    free(key);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    return r;
}


redisReply *
vw_op_admin(vw_op_t *op, const char *key, const char *name,
    const char *target, const char *fn, const char *must, vw_args_t *rest,
    vw_operr_t *e)
{
    int          i;
    vw_args_t    a;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_admin");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, op->who);
    vw_args_adds(&a, name);
    vw_args_adds(&a, target);
    vw_args_adds(&a, fn);
    vw_args_adds(&a, must);

    for (i = 0; rest && i < rest->n; i++) {
        vw_args_add(&a, rest->v[i], rest->len[i]);
    }

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    return r;
}


int
vw_op_note(vw_op_t *op, const char *name, const char *target,
    json_t *detail, vw_operr_t *e)
{
    char        *key, *s;
    vw_args_t    a;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "admin");
    s = json_dumps(detail, JSON_COMPACT | JSON_PRESERVE_ORDER);

    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_admin_note");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, op->who);
    vw_args_adds(&a, name);
    vw_args_adds(&a, target);
    vw_args_adds(&a, s ? s : "null");

    free(key);
    free(s);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    return 0;
}


int
vw_op_known(json_t *obj, const char *const *names, vw_operr_t *e)
{
    const char          *k;
    json_t              *v;
    const char *const   *n;

    json_object_foreach(obj, k, v) {
        for (n = names; *n; n++) {
            if (strcmp(*n, k) == 0) {
                break;
            }
        }

        if (*n == NULL) {
            return vw_op_fail(e, 400, "unknown_field", k, "unknown field %s",
                              k);
        }
    }

    return 0;
}


/* a value of a field as the string Redis gets; -1 when of a wrong kind */

static int
vw_op_value(vw_op_in_t *in, json_t *v, int kind, vw_buf_t *b)
{
    char    *s;
    size_t   i;
    json_t  *x;

    vw_buf_reset(b);

    if (json_is_null(v) && (kind & VW_F_NULL)) {
        vw_buf_adds(b, "");
        return 0;
    }

    if (json_is_integer(v)
        && (kind & (VW_F_INT | VW_F_TZ | (in->strict ? 0 : VW_F_STR))))
    {
        vw_buf_printf(b, "%lld", (long long) json_integer_value(v));
        return 0;
    }

    if (json_is_string(v)
        && ((kind & (VW_F_STR | VW_F_LIST | VW_F_TZ))
            || (!in->strict && (kind & VW_F_INT))))
    {
        vw_buf_add(b, json_string_value(v), json_string_length(v));
        return memchr(json_string_value(v), '\0', json_string_length(v))
               ? -1 : 0;
    }

    if (json_is_object(v) && (kind & VW_F_OBJ)) {
        s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

        if (s == NULL) {
            return -1;
        }

        vw_buf_adds(b, s);
        free(s);
        return 0;
    }

    if (json_is_array(v) && (kind & VW_F_LIST)) {
        json_array_foreach(v, i, x) {
            if (!json_is_string(x) || strchr(json_string_value(x), ',')) {
                return -1;
            }

            if (i > 0) {
                vw_buf_addc(b, ',');
            }

            vw_buf_adds(b, json_string_value(x));
        }

        vw_buf_adds(b, "");
        return 0;
    }

    return -1;
}


static const char *
vw_op_kind_name(int kind)
{
    if (kind & VW_F_TZ) {
        return "minutes or \"+HH:MM\"";
    }

    if (kind & VW_F_OBJ) {
        return "an object";
    }

    if (kind & VW_F_LIST) {
        return "an array of strings or a comma-separated string";
    }

    if (kind & VW_F_INT) {
        return (kind & VW_F_NULL) ? "an integer or null" : "an integer";
    }

    return (kind & VW_F_NULL) ? "a string or null" : "a string";
}


int
vw_op_fields(vw_op_in_t *in, json_t *obj, const vw_field_t *spec,
    const char *const *skip, vw_args_t *a, vw_operr_t *e)
{
    int                  rc;
    vw_buf_t             b;
    const char          *k;
    json_t              *v;
    const vw_field_t    *f;
    const char *const   *s;

    memset(&b, 0, sizeof(vw_buf_t));
    rc = 0;

    json_object_foreach(obj, k, v) {
        for (s = skip; s && *s; s++) {
            if (strcmp(*s, k) == 0) {
                break;
            }
        }

        if (s && *s) {
            continue;
        }

        for (f = spec; f->name; f++) {
            if (strcmp(f->name, k) == 0) {
                break;
            }
        }

        if (f->name == NULL) {
            rc = vw_op_fail(e, 400, "unknown_field", k, "unknown field %s",
                            k);
            break;
        }

        if (vw_op_value(in, v, f->kind, &b) != 0) {
            rc = vw_op_fail(e, 400, "invalid_field", k, "%s: expected %s",
                            k, vw_op_kind_name(f->kind));
            break;
        }

        vw_args_adds(a, k);
        vw_args_add(a, b.data ? b.data : "", b.len);
    }

    vw_buf_free(&b);

    return rc;
}


int
vw_op_str(vw_op_in_t *in, json_t *obj, const char *name, int required,
    const char **out, vw_operr_t *e)
{
    json_t  *v;

    (void) in;

    v = json_object_get(obj, name);

    if (v == NULL || json_is_null(v)) {
        if (required) {
            return vw_op_fail(e, 400, "missing_field", name, "%s: required",
                              name);
        }

        return 0;
    }

    if (!json_is_string(v) || json_string_length(v) == 0
        || strlen(json_string_value(v)) != json_string_length(v))
    {
        return vw_op_fail(e, 400, "invalid_field", name,
                          "%s: expected a non-empty string", name);
    }

    *out = json_string_value(v);

    return 0;
}


int
vw_op_int(vw_op_in_t *in, json_t *obj, const char *name, int required,
    int64_t min, int64_t max, int64_t *out, vw_operr_t *e)
{
    int64_t  n;
    json_t  *v;

    v = json_object_get(obj, name);

    if (v == NULL || json_is_null(v)) {
        if (required) {
            return vw_op_fail(e, 400, "missing_field", name, "%s: required",
                              name);
        }

        return 0;
    }

    if (json_is_integer(v)) {
        n = json_integer_value(v);

    } else if (!in->strict && json_is_string(v)
               && vw_parse_int(json_string_value(v), INT64_MIN, INT64_MAX,
                               &n) == 0)
    {
        /* n set */

    } else {
        return vw_op_fail(e, 400, "invalid_field", name,
                          "%s: expected an integer %lld..%lld", name,
                          (long long) min, (long long) max);
    }

    if (n < min || n > max) {
        return vw_op_fail(e, 400, "invalid_field", name,
                          "%s: expected an integer %lld..%lld", name,
                          (long long) min, (long long) max);
    }

    *out = n;

    return 0;
}


int
vw_op_qint(json_t *query, const char *name, int64_t min, int64_t max,
    int64_t *out, vw_operr_t *e)
{
    vw_op_in_t  in;

    /* a query's values are strings */
    memset(&in, 0, sizeof(vw_op_in_t));

    return vw_op_int(&in, query, name, 0, min, max, out, e);
}


int
vw_op_limit(json_t *query, int64_t *out, vw_operr_t *e)
{
    *out = 100;

    return vw_op_qint(query, "limit", 1, 1000, out, e);
}


json_t *
vw_op_pairs(const redisReply *r)
{
    size_t       i;
    json_t      *o, *v;
    redisReply  *k, *x;

    o = json_object();

    for (i = 0; i + 1 < r->elements; i += 2) {
        k = r->element[i];
        x = r->element[i + 1];

        if (k->type != REDIS_REPLY_STRING) {
            continue;
        }

        if (x->type == REDIS_REPLY_INTEGER) {
            v = json_integer(x->integer);

        } else if (x->type == REDIS_REPLY_STRING
                   || x->type == REDIS_REPLY_STATUS)
        {
            v = json_stringn(x->str, x->len);

        } else {
            v = json_null();
        }

        json_object_set_new(o, k->str, v ? v : json_null());
    }

    return o;
}


json_t *
vw_op_page(json_t *items, const char *cursor)
{
    json_t  *o;

    o = json_object();
    json_object_set_new(o, "items", items);
    json_object_set_new(o, "next_cursor",
                        cursor ? json_string(cursor) : json_null());

    return o;
}
