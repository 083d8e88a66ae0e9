
/*
 * Copyright (C) ngx_voucher authors
 *
 * Codes one at a time: create, get (with its history from the audit trail
 * {NS}:log), update, delete, disable, enable, gift-card credit and debit
 * (voucher_balance: the balance and its ledger entry in one call), and
 * search (a SCAN of both forms of code, hash and compact).
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_op.h"
#include "vw_op_codes.h"
#include "vw_util.h"


static const vw_field_t  vw_code_fields[] = {
    { "campaign", VW_F_STR },
    { "status", VW_F_STR },
    { "max_uses", VW_F_INT | VW_F_NULL },
    { "customer", VW_F_STR | VW_F_NULL },
    { "balance", VW_F_INT },
    { "starts_at", VW_F_INT | VW_F_NULL },
    { "ends_at", VW_F_INT | VW_F_NULL },
    { NULL, 0 }
};


/* the code as stored (normalized), for keys and messages */

void
vw_op_code_norm(const char *code, char *out, size_t size)
{
    size_t  n;

    for (n = 0; *code && n + 1 < size; code++) {
        if (*code == ' ' || *code == '\t' || *code == '-') {
            continue;
        }

        out[n++] = (*code >= 'a' && *code <= 'z') ? *code - 32 : *code;
    }

    out[n] = '\0';
}


int
vw_op_code_id(const char *id, char *norm, size_t size, vw_operr_t *e)
{
    if (id == NULL || *id == '\0') {
        return vw_op_fail(e, 400, "missing_field", "code", "code: required");
    }

    vw_op_code_norm(id, norm, size);

    if (norm[0] == '\0' || strlen(norm) > 64) {
        return vw_op_fail(e, 400, "invalid_field", "code",
                          "code: 1..64 printable ASCII characters");
    }

    return 0;
}


json_t *
vw_op_code_read(vw_op_t *op, const char *code, vw_operr_t *e)
{
    json_t      *o;
    redisReply  *r;

    r = vw_op_fcall_key(op, "voucher_code_get",
                        vw_key(op->cf, "c:%s", code), e);

    if (r == NULL) {
        return NULL;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        vw_op_fail(e, 404, "not_found", NULL, "no code \"%s\"", code);
        return NULL;
    }

    o = vw_op_pairs(r);
    freeReplyObject(r);

    return o;
}


static int
vw_code_write(vw_op_t *op, const char *code, const char *name,
    const char *must, vw_args_t *args, json_t **out, vw_operr_t *e)
{
    char        *key;
    redisReply  *r;

    key = vw_key(op->cf, "c:%s", code);
    r = vw_op_admin(op, key, name, code, "code_set", must, args, e);
    free(key);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    *out = vw_op_code_read(op, code, e);

    return *out ? 0 : -1;
}


int
vw_op_code_create(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    int                       rc;
    char                      code[128];
    const char               *id;
    vw_args_t                 a;
    static const char *const  skip[] = { "code", NULL };

    id = NULL;

    if (vw_op_str(in, in->body, "code", 1, &id, e) != 0
        || vw_op_code_id(id, code, sizeof(code), e) != 0)
    {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));

    rc = vw_op_fields(in, in->body, vw_code_fields, skip, &a, e);

    if (rc == 0 && json_object_get(in->body, "campaign") == NULL) {
        rc = vw_op_fail(e, 400, "missing_field", "campaign",
                        "campaign: required");
    }

    if (rc == 0) {
        rc = vw_code_write(op, code, "code.create", "new", &a, out, e);
    }

    vw_args_free(&a);

    return rc == 0 ? 201 : -1;
}


int
vw_op_code_update(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    int        rc;
    char       code[128];
    vw_args_t  a;

    if (vw_op_code_id(in->id, code, sizeof(code), e) != 0) {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));

    rc = vw_op_fields(in, in->body, vw_code_fields, NULL, &a, e);

    if (rc == 0 && a.n == 0) {
        rc = vw_op_fail(e, 400, "invalid_request", NULL,
                        "nothing to change: name at least one field");
    }

    if (rc == 0) {
        rc = vw_code_write(op, code, "code.update", "old", &a, out, e);
    }

    vw_args_free(&a);

    return rc == 0 ? 200 : -1;
}


static int
vw_code_status(vw_op_t *op, vw_op_in_t *in, const char *status,
    const char *name, json_t **out, vw_operr_t *e)
{
    int                       rc;
    char                      code[128];
    vw_args_t                 a;
    static const char *const  none[] = { NULL };

    if (vw_op_known(in->body, none, e) != 0
        || vw_op_code_id(in->id, code, sizeof(code), e) != 0)
    {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, "status");
    vw_args_adds(&a, status);

    rc = vw_code_write(op, code, name, "old", &a, out, e);
    vw_args_free(&a);

    return rc == 0 ? 200 : -1;
}


int
vw_op_code_disable(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    return vw_code_status(op, in, "disabled", "code.disable", out, e);
}


int
vw_op_code_enable(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    return vw_code_status(op, in, "active", "code.enable", out, e);
}


int
vw_op_code_delete(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char                      code[128], *key;
    redisReply               *r;
    static const char *const  none[] = { NULL };

    if (vw_op_known(in->body, none, e) != 0
        || vw_op_code_id(in->id, code, sizeof(code), e) != 0)
    {
        return -1;
    }

    key = vw_key(op->cf, "c:%s", code);
    r = vw_op_admin(op, key, "code.delete", code, "code_del", "old", NULL,
                    e);
    free(key);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    *out = json_pack("{s:s,s:b}", "code", code, "deleted", 1);

    return 200;
}


/*
 * The history of a code: the entries of the audit trail {NS}:log that
 * name it, newest first, up to limit, reading at most scan entries back.
 */

static int
vw_code_history(vw_op_t *op, const char *code, int64_t limit, int64_t scan,
    json_t *o, vw_operr_t *e)
{
    size_t       i, j;
    char        *key, end[64];
    int64_t      read;
    json_t      *arr, *h;
    vw_args_t    a;
    redisReply  *r, *en, *f;
    const char  *name;

    key = vw_key(op->cf, "log");
    arr = json_array();
    memset(&a, 0, sizeof(vw_args_t));
    snprintf(end, sizeof(end), "+");
    read = 0;

    for ( ;; ) {
        vw_args_reset(&a);
        vw_args_adds(&a, "XREVRANGE");
        vw_args_adds(&a, key);
        vw_args_adds(&a, end);
        vw_args_adds(&a, "-");
        vw_args_adds(&a, "COUNT");
        vw_args_addi(&a, 1000);

        r = vw_op_run(op, &a, e);

        if (r == NULL) {
            free(key);
            vw_args_free(&a);
            json_decref(arr);
            return -1;
        }

        for (i = 0; i < r->elements; i++) {
            en = r->element[i];
            f = en->element[1];
            read++;

            for (j = 0; j + 1 < f->elements; j += 2) {
                if (strcmp(f->element[j]->str, "code") == 0) {
                    break;
                }
            }

            if (j + 1 >= f->elements
                || strcmp(f->element[j + 1]->str, code) != 0)
            {
                continue;
            }

            h = json_object();
            json_object_set_new(h, "id", json_string(en->element[0]->str));
            json_object_set_new(h, "at",
                                json_integer(atoll(en->element[0]->str)));

            for (j = 0; j + 1 < f->elements; j += 2) {
                name = f->element[j]->str;

                if (strcmp(name, "code") == 0
                    || f->element[j + 1]->len == 0)
                {
                    continue;
                }

                if (strcmp(name, "amount") == 0
                    || strcmp(name, "discount") == 0
                    || strcmp(name, "balance") == 0)
                {
                    json_object_set_new(h, name,
                        json_integer(atoll(f->element[j + 1]->str)));

                } else {
                    json_object_set_new(h, name,
                        json_string(f->element[j + 1]->str));
                }
            }

            json_array_append_new(arr, h);

            if ((int64_t) json_array_size(arr) >= limit) {
                break;
            }
        }

        if (r->elements == 0 || (int64_t) json_array_size(arr) >= limit
            || read >= scan)
        {
            json_object_set_new(o, "history_complete",
                                json_boolean(r->elements == 0));
            freeReplyObject(r);
            break;
        }

        snprintf(end, sizeof(end), "(%s",
                 r->element[r->elements - 1]->element[0]->str);
        freeReplyObject(r);
    }

    free(key);
    vw_args_free(&a);
    json_object_set_new(o, "history", arr);

    return 0;
}


int
vw_op_code_get(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char                      code[128];
    int64_t                   limit, scan;
    json_t                   *o;
    static const char *const  names[] = { "history", "scan", NULL };

    limit = 20;
    scan = 100000;

    if (vw_op_code_id(in->id, code, sizeof(code), e) != 0
        || vw_op_known(in->query, names, e) != 0
        || vw_op_qint(in->query, "history", 0, 1000, &limit, e) != 0
        || vw_op_qint(in->query, "scan", 1, 10000000, &scan, e) != 0)
    {
        return -1;
    }

    o = vw_op_code_read(op, code, e);

    if (o == NULL) {
        return -1;
    }

    if (limit > 0 && vw_code_history(op, code, limit, scan, o, e) != 0) {
        json_decref(o);
        return -1;
    }

    *out = o;

    return 200;
}


/*
 * A credit's end as voucher_balance takes it: expires_at a date
 * "YYYY-MM-DD" (the end of that day, local midnight) or unix seconds
 * ("@S"), or expires_in_days N ("+N": the end of the day N days from
 * today); "" when neither is given
 */

static int
vw_code_expiry(vw_op_in_t *in, char *buf, size_t size, vw_operr_t *e)
{
    json_t      *v, *d;
    int64_t      days;
    const char  *s;

    buf[0] = '\0';
    v = json_object_get(in->body, "expires_at");
    d = json_object_get(in->body, "expires_in_days");

    if (v && !json_is_null(v) && d && !json_is_null(d)) {
        return vw_op_fail(e, 400, "invalid_field", "expires_at",
                          "expires_at: not with expires_in_days");
    }

    if (d && !json_is_null(d)) {
        if (vw_op_int(in, in->body, "expires_in_days", 0, 0, 36600, &days,
                      e) != 0)
        {
            return -1;
        }

        snprintf(buf, size, "+%lld", (long long) days);
        return 0;
    }

    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    if (json_is_integer(v) && json_integer_value(v) > 0) {
        snprintf(buf, size, "@%lld", (long long) json_integer_value(v));
        return 0;
    }

    s = json_string_value(v);

    if (s && strlen(s) == 10 && s[4] == '-' && s[7] == '-'
        && strspn(s, "0123456789-") == 10)
    {
        snprintf(buf, size, "%s", s);
        return 0;
    }

    if (s && !in->strict && *s && strlen(s) < 20
        && strspn(s, "0123456789") == strlen(s))
    {
        snprintf(buf, size, "@%s", s);
        return 0;
    }

    return vw_op_fail(e, 400, "invalid_field", "expires_at",
                      "expires_at: a date YYYY-MM-DD (its end, local "
                      "midnight) or unix seconds");
}


/* the refusals of voucher_balance */

static const struct {
    const char  *reason;
    int          status;
    const char  *message;
} vw_balance_refusals[] = {
    { "not_found", 404, "no such code" },
    { "not_a_gift_card", 409, "the code has no balance: not a gift card" },
    { "balance_insufficient", 409, "the balance is less than the amount" },
    { "balance_overflow", 409, "the balance would pass 2^53-1" },
    { "idempotency_conflict", 422,
      "the ref was used for a different request" },
    { NULL, 0, NULL }
};


static int
vw_code_balance(vw_op_t *op, vw_op_in_t *in, const char *how,
    json_t **out, vw_operr_t *e)
{
    int                       i;
    char                      code[128], *key, name[32], exp[48];
    int64_t                   amount;
    json_t                   *o;
    vw_args_t                 a;
    redisReply               *r;
    const char               *ref, *note, *reason, *zone;
    static const char *const  names[] = {
        "amount", "ref", "note", "expires_at", "expires_in_days", "zone", NULL
    };

    ref = note = zone = NULL;

    if (vw_op_code_id(in->id, code, sizeof(code), e) != 0
        || vw_op_known(in->body, names, e) != 0
        || vw_op_int(in, in->body, "amount", 1, 1, 9007199254740991LL,
                     &amount, e) != 0
        || vw_op_str(in, in->body, "ref", 0, &ref, e) != 0
        || vw_op_str(in, in->body, "note", 0, &note, e) != 0
        || vw_op_str(in, in->body, "zone", 0, &zone, e) != 0
        || vw_code_expiry(in, exp, sizeof(exp), e) != 0)
    {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, how);
    vw_args_addi(&a, amount);
    vw_args_adds(&a, ref ? ref : "");
    vw_args_adds(&a, note ? note : "");
    vw_args_adds(&a, exp);
    vw_args_adds(&a, zone ? zone : "");

    snprintf(name, sizeof(name), "code.%s", how);
    key = vw_key(op->cf, "c:%s", code);
    r = vw_op_admin(op, key, name, code, "balance", "", &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    reason = r->type == REDIS_REPLY_ARRAY && r->elements > 0
             ? vw_reply_str(r->element[0]) : NULL;

    if (reason == NULL) {
        freeReplyObject(r);
        return vw_op_fail(e, 500, "internal_error", NULL,
                          "unexpected reply of voucher_balance");
    }

    if (strcmp(reason, "ok") != 0) {
        for (i = 0; vw_balance_refusals[i].reason; i++) {
            if (strcmp(vw_balance_refusals[i].reason, reason) == 0) {
                break;
            }
        }

        if (vw_balance_refusals[i].reason == NULL) {
            freeReplyObject(r);
            return vw_op_fail(e, 500, "internal_error", NULL,
                              "unexpected refusal of voucher_balance");
        }

        vw_op_fail(e, vw_balance_refusals[i].status, reason,
                   strcmp(reason, "not_found") == 0 ? NULL : NULL,
                   "%s: %s", code, vw_balance_refusals[i].message);
        freeReplyObject(r);
        return -1;
    }

    /* {ok, k, v, ...}: the pairs after ok */
    o = json_object();

    for (i = 1; (size_t) i + 1 < r->elements; i += 2) {
        if (r->element[i + 1]->type == REDIS_REPLY_INTEGER) {
            json_object_set_new(o, r->element[i]->str,
                                json_integer(r->element[i + 1]->integer));

        } else {
            json_object_set_new(o, r->element[i]->str,
                                json_string(r->element[i + 1]->str));
        }
    }

    if (json_object_get(o, "replayed")) {
        json_object_set_new(o, "replayed", json_true());
    }

    json_object_set_new(o, "type", json_string(strcmp(how, "credit") == 0
                                               ? "credits_addition"
                                               : "credits_removal"));
    freeReplyObject(r);
    *out = o;

    return 200;
}


int
vw_op_code_credit(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    return vw_code_balance(op, in, "credit", out, e);
}


int
vw_op_code_debit(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    return vw_code_balance(op, in, "debit", out, e);
}


/* one code of a scan as JSON: fields k s m u c b b0 f t */

static json_t *
vw_code_row(const char *code, const char *const *v)
{
    json_t  *o;

    o = json_object();
    json_object_set_new(o, "code", json_string(code));
    json_object_set_new(o, "campaign", json_string(v[0]));
    json_object_set_new(o, "status", json_string(v[1] && strcmp(v[1], "d")
                                                 == 0 ? "disabled"
                                                      : "active"));

    if (v[2]) {
        json_object_set_new(o, "max_uses", json_integer(atoll(v[2])));
    }

    json_object_set_new(o, "used", json_integer(v[3] ? atoll(v[3]) : 0));

    if (v[4]) {
        json_object_set_new(o, "customer", json_string(v[4]));
    }

    if (v[5]) {
        json_object_set_new(o, "balance", json_integer(atoll(v[5])));
    }

    if (v[6]) {
        json_object_set_new(o, "initial_balance", json_integer(atoll(v[6])));
    }

    if (v[7]) {
        json_object_set_new(o, "starts_at", json_integer(atoll(v[7])));
    }

    if (v[8]) {
        json_object_set_new(o, "ends_at", json_integer(atoll(v[8])));
    }

    return o;
}


static int
vw_code_pass(const vw_code_filter_t *f, const char *code, const char *camp,
    const char *cust)
{
    return (f->campaign == NULL || (camp && strcmp(f->campaign, camp) == 0))
           && (f->prefix == NULL
               || strncmp(code, f->prefix, strlen(f->prefix)) == 0)
           && (f->customer == NULL
               || (cust && strcmp(f->customer, cust) == 0));
}


int
vw_op_codes_scan(vw_op_t *op, char *cursor, size_t size, int64_t count,
    const vw_code_filter_t *f, json_t *items, vw_operr_t *e)
{
    size_t       i, j, cpre, bpre, nk;
    char        *pat, *ck, *bk, *val, *sp, *sp2;
    vw_args_t    a;
    redisReply  *r, *h, *keys;
    const char  *k, *v[9];

    pat = vw_key(op->cf, "c*");
    ck = vw_key(op->cf, "c:");
    bk = vw_key(op->cf, "cb:");
    cpre = strlen(ck);
    bpre = strlen(bk);
    memset(&a, 0, sizeof(vw_args_t));
    r = NULL;

    vw_args_adds(&a, "SCAN");
    vw_args_adds(&a, cursor);
    vw_args_adds(&a, "MATCH");
    vw_args_adds(&a, pat);
    vw_args_adds(&a, "COUNT");
    vw_args_addi(&a, count);

    r = vw_op_run(op, &a, e);

    if (r == NULL) {
        goto failed;
    }

    snprintf(cursor, size, "%s", r->element[0]->str);
    keys = r->element[1];
    nk = keys->elements;

    /* one pipeline for the page */
    for (i = 0; i < nk; i++) {
        k = keys->element[i]->str;
        vw_args_reset(&a);

        if (strncmp(k, ck, cpre) == 0) {
            vw_args_adds(&a, "HMGET");
            vw_args_adds(&a, k);
            vw_args_adds(&a, "k");
            vw_args_adds(&a, "s");
            vw_args_adds(&a, "m");
            vw_args_adds(&a, "u");
            vw_args_adds(&a, "c");
            vw_args_adds(&a, "b");
            vw_args_adds(&a, "b0");
            vw_args_adds(&a, "f");
            vw_args_adds(&a, "t");

        } else {
            vw_args_adds(&a, "HGETALL");
            vw_args_adds(&a, k);
        }

        vw_redis_append(op->redis, &a);
    }

    for (i = 0; i < nk; i++) {
        k = keys->element[i]->str;
        h = vw_redis_get(op->redis, e->message, sizeof(e->message));

        if (h == NULL) {
            vw_op_fail(e, 503, "store_unavailable", NULL, "Redis: %s",
                       op->redis->errstr);
            goto failed;
        }

        if (h->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(h);
            continue;
        }

        if (strncmp(k, ck, cpre) == 0) {
            for (j = 0; j < 9; j++) {
                v[j] = h->element[j]->type == REDIS_REPLY_STRING
                       ? h->element[j]->str : NULL;
            }

            if (v[0] && vw_code_pass(f, k + cpre, v[0], v[4])) {
                json_array_append_new(items, vw_code_row(k + cpre, v));
            }

        } else if (strncmp(k, bk, bpre) == 0) {
            for (j = 0; j + 1 < h->elements; j += 2) {
                /* "<uses> <campaign>[ <customer>]" */
                val = vw_xstrdup(h->element[j + 1]->str);
                sp = strchr(val, ' ');

                if (sp) {
                    *sp++ = '\0';
                    sp2 = strchr(sp, ' ');

                    if (sp2) {
                        *sp2++ = '\0';
                    }

                    memset(v, 0, sizeof(v));
                    v[0] = sp;
                    v[3] = val;
                    v[4] = sp2;

                    if (vw_code_pass(f, h->element[j]->str, sp, sp2)) {
                        json_array_append_new(items,
                            vw_code_row(h->element[j]->str, v));
                    }
                }

                free(val);
            }
        }

        freeReplyObject(h);
    }

    freeReplyObject(r);
    free(pat);
    free(ck);
    free(bk);
    vw_args_free(&a);

    return 0;

failed:

    if (r) {
        freeReplyObject(r);
    }

    free(pat);
    free(ck);
    free(bk);
    vw_args_free(&a);

    return -1;
}


/* codes by campaign, prefix and customer, a page at a time */

int
vw_op_code_search(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char               cursor[32], prefix[128];
    int64_t            limit;
    json_t            *items;
    const char        *from, *pre;
    vw_code_filter_t   f;

    static const char *const  names[] = {
        "campaign", "prefix", "customer", "cursor", "limit", NULL
    };

    memset(&f, 0, sizeof(vw_code_filter_t));
    from = pre = NULL;

    if (vw_op_known(in->query, names, e) != 0
        || vw_op_limit(in->query, &limit, e) != 0
        || vw_op_str(in, in->query, "campaign", 0, &f.campaign, e) != 0
        || vw_op_str(in, in->query, "prefix", 0, &pre, e) != 0
        || vw_op_str(in, in->query, "customer", 0, &f.customer, e) != 0
        || vw_op_str(in, in->query, "cursor", 0, &from, e) != 0)
    {
        return -1;
    }

    if (from && strspn(from, "0123456789") != strlen(from)) {
        return vw_op_fail(e, 400, "invalid_field", "cursor",
                          "cursor: not one this API gave");
    }

    if (pre) {
        vw_op_code_norm(pre, prefix, sizeof(prefix));
        f.prefix = prefix;
    }

    snprintf(cursor, sizeof(cursor), "%s", from ? from : "0");
    items = json_array();

    do {
        if (vw_op_codes_scan(op, cursor, sizeof(cursor), limit, &f, items, e)
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
