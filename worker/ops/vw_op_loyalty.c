
/*
 * Copyright (C) ngx_voucher authors
 *
 * Loyalty: the programme (get, set), a member's balance, history and
 * adjustment, the rewards catalogue (list, get, set, its pool of codes
 * issued with the MAC) and claims.  Every change goes through
 * voucher_admin, so it is audited with the object before and after.  The
 * member functions get the worker's clock ("at"), so a fake clock drives
 * them as it drives voucherd's sweep.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_clock.h"
#include "vw_op.h"
#include "vw_util.h"


#define VW_MAXINT  9007199254740991LL


/* the programme's fields (docs/loyalty.md) */

static const vw_field_t  vw_programme_fields[] = {
    { "status", VW_F_STR },
    { "every", VW_F_INT },
    { "points", VW_F_INT },
    { "point_value", VW_F_INT },
    { "category_multipliers", VW_F_LIST | VW_F_NULL },
    { "sku_multipliers", VW_F_LIST | VW_F_NULL },
    { "exclude_categories", VW_F_LIST | VW_F_NULL },
    { "exclude_skus", VW_F_LIST | VW_F_NULL },
    { "events", VW_F_LIST | VW_F_NULL },
    { "tiers", VW_F_LIST | VW_F_NULL },
    { "tier_basis", VW_F_STR },
    { "tier_period", VW_F_STR },
    { "tier_downgrade", VW_F_STR },
    { "tier_grace_days", VW_F_INT },
    { "cap_order", VW_F_INT },
    { "cap_day", VW_F_INT },
    { "pending_days", VW_F_INT },
    { "expiry_months", VW_F_INT },
    { "expiry_round", VW_F_STR },
    { "tz_offset", VW_F_TZ },
    { "notify", VW_F_STR },
    { "notice_days", VW_F_INT },
    { "tier_notice_days", VW_F_INT },
    { "referral_referee_reward", VW_F_STR | VW_F_NULL },
    { "referral_referrer_reward", VW_F_STR | VW_F_NULL },
    { "referral_referrer_points", VW_F_INT },
    { "referral_cap", VW_F_INT },
    { "referral_period", VW_F_STR },
    { "referral_code_days", VW_F_INT },
    { NULL, 0 }
};


static const vw_field_t  vw_reward_fields[] = {
    { "name", VW_F_STR },
    { "status", VW_F_STR },
    { "cost", VW_F_INT },
    { "kind", VW_F_STR },
    { "campaign", VW_F_STR },
    { "sku", VW_F_STR },
    { "value", VW_F_INT },
    { "stock", VW_F_INT | VW_F_NULL },
    { "per_member", VW_F_INT },
    { NULL, 0 }
};


/* the refusals of the loyalty functions, and how the API answers them */

static const struct {
    const char  *reason;
    int          status;
    const char  *field;
    const char  *message;
} vw_loyalty_refusals[] = {
    { "no_programme", 409, NULL, "the namespace has no loyalty programme" },
    { "invalid_points", 400, "points",
      "points: a whole number, not 0, within 2^53-1" },
    { "insufficient_points", 409, "points",
      "more than the member's active points" },
    { "already_applied", 409, "key", "this key was used before" },
    { "unknown_reward", 404, "reward", "no such reward" },
    { "reward_inactive", 409, "reward", "the reward is paused" },
    { "reward_out_of_stock", 409, "reward",
      "the reward is out of stock (or its pool is empty)" },
    { "reward_limit", 409, "reward",
      "the member has claimed this reward as often as it allows" },
    { "idempotency_conflict", 422, "key",
      "the key was used for a different request" },
    { "referral_not_found", 404, "code", "no such referral code" },
    { "referral_expired", 409, "code", "the referral code has expired" },
    { "self_referral", 409, "member",
      "a member cannot refer themselves (the same id, phone or email)" },
    { "referee_already_member", 409, "member",
      "the referee is already a member (or their phone or email is)" },
    { "already_referred", 409, "member",
      "the referee was referred before" },
    { "referral_cap_reached", 409, "code",
      "the referrer has referred as many as the period allows" },
    { NULL, 0, NULL, NULL }
};


/* the programme's integer fields, as integers in JSON */

static const char *const  vw_programme_ints[] = {
    "every", "points", "point_value", "tier_grace_days", "cap_order",
    "cap_day", "pending_days", "expiry_months", "notice_days",
    "tier_notice_days",
    "referral_referrer_points", "referral_cap", "referral_code_days", NULL
};

static const char *const  vw_reward_ints[] = {
    "cost", "value", "stock", "per_member", "given", NULL
};


static int
vw_member_check(const char *id, vw_operr_t *e)
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


static int
vw_reward_check(const char *id, vw_operr_t *e)
{
    size_t  i, n;

    n = id ? strlen(id) : 0;

    for (i = 0; i < n; i++) {
        if (id[i] < 0x21 || id[i] > 0x7e) {
            break;
        }
    }

    if (n == 0 || n > 64 || i != n) {
        return vw_op_fail(e, 400, "invalid_field", "reward",
                          "reward: 1..64 printable ASCII characters");
    }

    return 0;
}


/* pairs {k, v, ...} as an object, the names in ints as integers */

static json_t *
vw_loyalty_object(const redisReply *r, size_t from, const char *const *ints)
{
    size_t              i;
    int64_t             n;
    json_t             *o, *v;
    redisReply         *k, *x;
    const char *const  *p;

    o = json_object();

    for (i = from; i + 1 < r->elements; i += 2) {
        k = r->element[i];
        x = r->element[i + 1];

        if (k->type != REDIS_REPLY_STRING) {
            continue;
        }

        v = NULL;

        if (x->type == REDIS_REPLY_INTEGER) {
            v = json_integer(x->integer);

        } else if (x->type == REDIS_REPLY_STRING) {
            for (p = ints; p && *p; p++) {
                if (strcmp(*p, k->str) == 0
                    && vw_parse_int(x->str, -VW_MAXINT, VW_MAXINT, &n) == 0)
                {
                    v = json_integer(n);
                    break;
                }
            }

            if (v == NULL) {
                v = json_stringn(x->str, x->len);
            }
        }

        json_object_set_new(o, k->str, v ? v : json_null());
    }

    return o;
}


/*
 * A loyalty function's answer: {ok, k, v, ...} as an object (*out, 200),
 * or its refusal {reason, k, v, ...} as the API's error.  Frees r.
 */

static int
vw_loyalty_answer(redisReply *r, const char *what, json_t **out,
    vw_operr_t *e)
{
    int          i;
    const char  *reason;

    reason = r->type == REDIS_REPLY_ARRAY && r->elements > 0
             ? vw_reply_str(r->element[0]) : NULL;

    if (reason == NULL) {
        freeReplyObject(r);
        return vw_op_fail(e, 500, "internal_error", NULL,
                          "unexpected reply to %s", what);
    }

    if (strcmp(reason, "ok") == 0) {
        *out = vw_loyalty_object(r, 1, NULL);

        if (json_object_get(*out, "replayed")) {
            json_object_set_new(*out, "replayed", json_true());
        }

        freeReplyObject(r);
        return 200;
    }

    for (i = 0; vw_loyalty_refusals[i].reason; i++) {
        if (strcmp(vw_loyalty_refusals[i].reason, reason) == 0) {
            vw_op_fail(e, vw_loyalty_refusals[i].status, reason,
                       vw_loyalty_refusals[i].field, "%s: %s", what,
                       vw_loyalty_refusals[i].message);
            freeReplyObject(r);
            return -1;
        }
    }

    vw_op_fail(e, 500, "internal_error", NULL, "%s: unexpected refusal %s",
               what, reason);
    freeReplyObject(r);

    return -1;
}


/* FCALL fn 1 key args... (a read, or a change that needs no audit) */

static redisReply *
vw_loyalty_fcall(vw_op_t *op, const char *fn, const char *key,
    vw_args_t *rest, vw_operr_t *e)
{
    int          i;
    vw_args_t    a;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, fn);
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);

    for (i = 0; rest && i < rest->n; i++) {
        vw_args_add(&a, rest->v[i], rest->len[i]);
    }

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    return r;
}


/* ------------------------------------------------------------ programme */

int
vw_op_loyalty_get(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char        *key;
    redisReply  *r;

    (void) in;

    key = vw_key(op->cf, "lp");
    r = vw_loyalty_fcall(op, "voucher_loyalty_get", key, NULL, e);
    free(key);

    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return vw_op_fail(e, 404, "not_found", NULL,
                          "no loyalty programme: set one first");
    }

    *out = vw_loyalty_object(r, 0, vw_programme_ints);
    freeReplyObject(r);

    return 200;
}


int
vw_op_loyalty_set(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char        *key;
    vw_args_t    a;
    redisReply  *r;

    if (json_object_size(in->body) == 0) {
        return vw_op_fail(e, 400, "missing_field", NULL,
                          "send the fields to set");
    }

    memset(&a, 0, sizeof(vw_args_t));

    if (vw_op_fields(in, in->body, vw_programme_fields, NULL, &a, e) != 0) {
        vw_args_free(&a);
        return -1;
    }

    key = vw_key(op->cf, "lp");
    r = vw_op_admin(op, key, "loyalty.set", "programme", "loyalty_set", "",
                    &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    return vw_op_loyalty_get(op, in, out, e);
}


/* ------------------------------------------------------------ a member */

int
vw_op_loyalty_balance(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    char        *key;
    vw_args_t    a;
    redisReply  *r;

    if (vw_member_check(in->id, e) != 0) {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_addi(&a, vw_now());

    key = vw_key(op->cf, "lm:%s", in->id);
    r = vw_loyalty_fcall(op, "voucher_loyalty_balance", key, &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    return vw_loyalty_answer(r, in->id, out, e);
}


/* the ledger, newest first, paged by entry id */

int
vw_op_loyalty_history(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    char                     *key;
    size_t                    i;
    int64_t                   limit;
    json_t                   *items, *o, *cursor;
    vw_args_t                 a;
    redisReply               *r, *row;
    const char               *c;
    static const char *const  names[] = { "limit", "cursor", NULL };
    static const char *const  ints[] = {
        "points", "active", "pending", "at", "activated", "unrecovered", NULL
    };

    if (vw_member_check(in->id, e) != 0
        || vw_op_known(in->query, names, e) != 0
        || vw_op_limit(in->query, &limit, e) != 0)
    {
        return -1;
    }

    cursor = json_object_get(in->query, "cursor");
    c = json_is_string(cursor) ? json_string_value(cursor) : "";

    if (*c && (strspn(c, "0123456789-") != strlen(c) || strlen(c) > 64)) {
        return vw_op_fail(e, 400, "invalid_field", "cursor",
                          "cursor: the next_cursor of the page before");
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_addi(&a, limit + 1);
    vw_args_adds(&a, c);

    key = vw_key(op->cf, "lm:%s", in->id);
    r = vw_loyalty_fcall(op, "voucher_loyalty_history", key, &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return vw_op_fail(e, 500, "internal_error", NULL,
                          "unexpected reply to voucher_loyalty_history");
    }

    items = json_array();
    c = NULL;

    for (i = 0; i < r->elements && i < (size_t) limit; i++) {
        row = r->element[i];

        if (row->type != REDIS_REPLY_ARRAY || row->elements < 1) {
            continue;
        }

        o = vw_loyalty_object(row, 1, ints);

        /* the entry's id first */
        json_object_set_new(o, "id", json_string(row->element[0]->str));
        json_array_append_new(items, o);
        c = row->element[0]->str;
    }

    *out = vw_op_page(items, r->elements > (size_t) limit ? c : NULL);
    freeReplyObject(r);

    return 200;
}


int
vw_op_loyalty_adjust(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    char                     *key, sign[32];
    int64_t                   points;
    vw_args_t                 a;
    redisReply               *r;
    const char               *reason, *ref;
    static const char *const  names[] = { "points", "reason", "key", NULL };

    reason = ref = NULL;

    if (vw_member_check(in->id, e) != 0
        || vw_op_known(in->body, names, e) != 0
        || vw_op_int(in, in->body, "points", 1, -VW_MAXINT, VW_MAXINT,
                     &points, e) != 0
        || vw_op_str(in, in->body, "reason", 1, &reason, e) != 0
        || vw_op_str(in, in->body, "key", 0, &ref, e) != 0)
    {
        return -1;
    }

    /* "+N" or "-N" */
    snprintf(sign, sizeof(sign), "%s%lld", points >= 0 ? "+" : "",
             (long long) points);

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, sign);
    vw_args_adds(&a, reason);
    vw_args_adds(&a, ref ? ref : "");
    vw_args_addi(&a, vw_now());

    key = vw_key(op->cf, "lm:%s", in->id);
    r = vw_op_admin(op, key, "loyalty.adjust", in->id, "loyalty_adjust", "",
                    &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    return vw_loyalty_answer(r, in->id, out, e);
}


/* ------------------------------------------------------------ rewards */

static int
vw_reward_read(vw_op_t *op, const char *id, json_t **out, vw_operr_t *e)
{
    char        *key;
    redisReply  *r;

    key = vw_key(op->cf, "lw:%s", id);
    r = vw_loyalty_fcall(op, "voucher_reward_get", key, NULL, e);
    free(key);

    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return vw_op_fail(e, 404, "not_found", NULL, "no reward \"%s\"", id);
    }

    *out = vw_loyalty_object(r, 0, vw_reward_ints);
    json_object_set_new(*out, "id", json_string(id));
    freeReplyObject(r);

    return 200;
}


int
vw_op_reward_get(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    if (vw_reward_check(in->id, e) != 0) {
        return -1;
    }

    return vw_reward_read(op, in->id, out, e);
}


int
vw_op_reward_list(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char                     *key;
    size_t                    i;
    int64_t                   limit;
    json_t                   *items, *o, *cursor;
    vw_args_t                 a;
    redisReply               *r, *page;
    const char               *c;
    static const char *const  names[] = { "limit", "cursor", NULL };

    if (vw_op_known(in->query, names, e) != 0
        || vw_op_limit(in->query, &limit, e) != 0)
    {
        return -1;
    }

    cursor = json_object_get(in->query, "cursor");
    c = json_is_string(cursor) ? json_string_value(cursor) : "0";

    if (strspn(c, "0123456789") != strlen(c) || *c == '\0') {
        return vw_op_fail(e, 400, "invalid_field", "cursor",
                          "cursor: the next_cursor of the page before");
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, c);
    vw_args_addi(&a, limit);

    key = vw_key(op->cf, "rewards");
    r = vw_loyalty_fcall(op, "voucher_reward_list", key, &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_ARRAY)
    {
        freeReplyObject(r);
        return vw_op_fail(e, 500, "internal_error", NULL,
                          "unexpected reply to voucher_reward_list");
    }

    items = json_array();
    page = r->element[1];

    for (i = 0; i < page->elements; i++) {
        o = vw_loyalty_object(page->element[i], 0, vw_reward_ints);
        json_array_append_new(items, o);
    }

    *out = vw_op_page(items, strcmp(r->element[0]->str, "0") != 0
                             ? r->element[0]->str : NULL);
    freeReplyObject(r);

    return 200;
}


int
vw_op_reward_set(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char        *key;
    vw_args_t    a;
    redisReply  *r;

    if (vw_reward_check(in->id, e) != 0) {
        return -1;
    }

    if (json_object_size(in->body) == 0) {
        return vw_op_fail(e, 400, "missing_field", NULL,
                          "send the fields to set");
    }

    memset(&a, 0, sizeof(vw_args_t));

    if (vw_op_fields(in, in->body, vw_reward_fields, NULL, &a, e) != 0) {
        vw_args_free(&a);
        return -1;
    }

    key = vw_key(op->cf, "lw:%s", in->id);
    r = vw_op_admin(op, key, "reward.set", in->id, "reward_set", "", &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    return vw_reward_read(op, in->id, out, e);
}


/*
 * New codes of the reward's campaign, issued here with the MAC (Redis has
 * no key), made and put in the reward's pool in one audited call.
 */

int
vw_op_reward_fill(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    int                       tries;
    char                     *key, code[VOUCHER_CODE_MAX_LEN + 1];
    int64_t                   count, i, length, mac;
    vw_args_t                 a;
    redisReply               *r;
    const char               *prefix;
    static const char *const  names[] = {
        "count", "prefix", "length", "mac_length", NULL
    };

    prefix = "";
    length = 8;
    mac = 4;

    if (vw_reward_check(in->id, e) != 0
        || vw_op_known(in->body, names, e) != 0
        || vw_op_int(in, in->body, "count", 1, 1, 1000, &count, e) != 0
        || vw_op_str(in, in->body, "prefix", 0, &prefix, e) != 0
        || vw_op_int(in, in->body, "length", 0, 4, 32, &length, e) != 0
        || vw_op_int(in, in->body, "mac_length", 0, 2, 12, &mac, e) != 0)
    {
        return -1;
    }

    if (op->key == NULL) {
        return vw_op_fail(e, 409, "key_required", NULL,
                          "no key_file is configured: codes carry a MAC "
                          "and cannot be issued without the key");
    }

    key = vw_key(op->cf, "lw:%s", in->id);
    r = NULL;

    /* a new code that exists already (1 in 32^length) refuses the lot */

    for (tries = 0; tries < 3 && r == NULL; tries++) {
        memset(&a, 0, sizeof(vw_args_t));

        for (i = 0; i < count; i++) {
            if (voucher_code_issue(op->key, prefix, (size_t) length,
                                   (size_t) mac, code, sizeof(code))
                == 0)
            {
                vw_args_free(&a);
                free(key);
                return vw_op_fail(e, 400, "invalid_field", "prefix",
                                  "prefix: letters and digits, the code "
                                  "at most %d characters",
                                  VOUCHER_CODE_MAX_LEN);
            }

            vw_args_adds(&a, code);
        }

        r = vw_op_admin(op, key, "reward.fill", in->id, "reward_pool_fill",
                        "old", &a, e);
        vw_args_free(&a);

        if (r == NULL && !(e->status == 400
                           && strcmp(e->field, "code") == 0))
        {
            break;
        }
    }

    free(key);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    return vw_reward_read(op, in->id, out, e);
}


int
vw_op_reward_claim(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    int                       rc;
    char                     *key;
    vw_args_t                 a;
    redisReply               *r;
    const char               *reward, *ref;
    static const char *const  names[] = { "reward", "key", NULL };

    reward = ref = NULL;

    if (vw_member_check(in->id, e) != 0
        || vw_op_known(in->body, names, e) != 0
        || vw_op_str(in, in->body, "reward", 1, &reward, e) != 0
        || vw_op_str(in, in->body, "key", 1, &ref, e) != 0
        || vw_reward_check(reward, e) != 0)
    {
        return -1;
    }

    if (strlen(ref) > 128) {
        return vw_op_fail(e, 400, "invalid_field", "key",
                          "key: 1..128 bytes");
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, reward);
    vw_args_adds(&a, ref);
    vw_args_addi(&a, vw_now());

    key = vw_key(op->cf, "lm:%s", in->id);
    r = vw_op_admin(op, key, "reward.claim", in->id, "reward_claim", "", &a,
                    e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    rc = vw_loyalty_answer(r, in->id, out, e);

    return rc < 0 ? rc : 201;
}


/* ------------------------------------------------------------ referrals */

/*
 * A referral code as issued here: "REF", 8 random characters and a 4
 * character MAC.  Whether code (normalized) is one, with a right MAC: a
 * forged or mistyped code dies here, never reaching Redis.
 */

int
vw_op_referral_genuine(const unsigned char *key, const char *code)
{
    char    buf[VOUCHER_CODE_MAX_LEN + 1];
    size_t  n;

    n = voucher_code_normalize(code, strlen(code), buf, sizeof(buf));

    if (n != VW_REFERRAL_LEN || strncmp(buf, VW_REFERRAL_PREFIX, 3) != 0) {
        return 0;
    }

    return voucher_code_verify(key, buf, n, 3, VW_REFERRAL_MAC) == 0;
}


/* the member's referral code: the one it has while valid, else a new one */

int
vw_op_referral_code(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    int          tries, rc;
    char        *key, code[VOUCHER_CODE_MAX_LEN + 1];
    json_t      *n;
    vw_args_t    a;
    redisReply  *r;

    if (vw_member_check(in->id, e) != 0
        || vw_op_known(in->body, (const char *const []) { NULL }, e) != 0)
    {
        return -1;
    }

    if (op->key == NULL) {
        return vw_op_fail(e, 409, "key_required", NULL,
                          "no key_file is configured: referral codes carry "
                          "a MAC and cannot be issued without the key");
    }

    key = vw_key(op->cf, "lm:%s", in->id);
    r = NULL;

    /* a new code that exists already (1 in 32^8) is made again */

    for (tries = 0; tries < 3 && r == NULL; tries++) {
        if (voucher_code_issue(op->key, VW_REFERRAL_PREFIX, 8,
                               VW_REFERRAL_MAC, code, sizeof(code))
            == 0)
        {
            free(key);
            return vw_op_fail(e, 500, "internal_error", NULL,
                              "cannot make a referral code");
        }

        memset(&a, 0, sizeof(vw_args_t));
        vw_args_adds(&a, code);
        vw_args_addi(&a, vw_now());

        r = vw_op_admin(op, key, "referral.code", in->id, "referral_code",
                        "", &a, e);
        vw_args_free(&a);

        if (r == NULL && !(e->status == 400
                           && strcmp(e->field, "code") == 0))
        {
            break;
        }
    }

    free(key);

    if (r == NULL) {
        return -1;
    }

    rc = vw_loyalty_answer(r, in->id, out, e);

    if (rc < 0) {
        return rc;
    }

    n = json_object_get(*out, "new");
    rc = json_integer_value(n) ? 201 : 200;
    json_object_set_new(*out, "new", json_boolean(json_integer_value(n)));

    return rc;
}


/* a new customer paired with the referrer of a code */

int
vw_op_referral_pair(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    int                       rc;
    char                     *key;
    vw_args_t                 a;
    redisReply               *r;
    const char               *code, *member, *phone, *email;
    static const char *const  names[] = {
        "code", "member", "phone", "email", NULL
    };

    code = member = phone = email = NULL;

    if (vw_op_known(in->body, names, e) != 0
        || vw_op_str(in, in->body, "code", 1, &code, e) != 0
        || vw_op_str(in, in->body, "member", 1, &member, e) != 0
        || vw_op_str(in, in->body, "phone", 0, &phone, e) != 0
        || vw_op_str(in, in->body, "email", 0, &email, e) != 0)
    {
        return -1;
    }

    if (vw_member_check(member, e) != 0) {
        snprintf(e->field, sizeof(e->field), "member");
        return -1;
    }

    /* a forged or mistyped code: refused without Redis */

    if (op->key && !vw_op_referral_genuine(op->key, code)) {
        return vw_op_fail(e, 404, "referral_not_found", "code",
                          "%s: no such referral code", code);
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, code);
    vw_args_adds(&a, phone ? phone : "");
    vw_args_adds(&a, email ? email : "");
    vw_args_addi(&a, vw_now());

    key = vw_key(op->cf, "lm:%s", member);
    r = vw_op_admin(op, key, "referral.pair", member, "referral_pair", "",
                    &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    rc = vw_loyalty_answer(r, member, out, e);

    return rc < 0 ? rc : 201;
}


/* referrals and conversions per referrer, paged */

int
vw_op_referral_report(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    char                     *key;
    size_t                    i;
    int64_t                   limit;
    json_t                   *items, *cursor;
    vw_args_t                 a;
    redisReply               *r, *page;
    const char               *c;
    static const char *const  names[] = { "limit", "cursor", NULL };

    if (vw_op_known(in->query, names, e) != 0
        || vw_op_limit(in->query, &limit, e) != 0)
    {
        return -1;
    }

    cursor = json_object_get(in->query, "cursor");
    c = json_is_string(cursor) ? json_string_value(cursor) : "0";

    if (strspn(c, "0123456789") != strlen(c) || *c == '\0') {
        return vw_op_fail(e, 400, "invalid_field", "cursor",
                          "cursor: the next_cursor of the page before");
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, c);
    vw_args_addi(&a, limit);

    key = vw_key(op->cf, "lrf");
    r = vw_loyalty_fcall(op, "voucher_referral_report", key, &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_ARRAY)
    {
        freeReplyObject(r);
        return vw_op_fail(e, 500, "internal_error", NULL,
                          "unexpected reply to voucher_referral_report");
    }

    items = json_array();
    page = r->element[1];

    for (i = 0; i < page->elements; i++) {
        json_array_append_new(items,
                              vw_loyalty_object(page->element[i], 0, NULL));
    }

    *out = vw_op_page(items, strcmp(r->element[0]->str, "0") != 0
                             ? r->element[0]->str : NULL);
    freeReplyObject(r);

    return 200;
}
