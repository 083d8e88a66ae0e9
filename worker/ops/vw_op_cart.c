
/*
 * Copyright (C) ngx_voucher authors
 *
 * The cart's admin operations: a member's wallet (a page of it with each
 * code's state, a code added or removed, audited) and qualify (which codes
 * fit an order, best first, and the best combination).  Each is one call
 * of the library, the same functions the edge's "voucher_api wallet" and
 * "voucher_api qualify" call, so the answers are the edge's.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "voucher_code.h"
#include "vw_op.h"
#include "vw_util.h"


#define VW_CART_PAGE       100      /* voucher_wallet's most a page */
#define VW_CART_CODES      30       /* codes a qualify may name */
#define VW_CART_ITEMS      100
#define VW_CART_CODE_LEN   128
#define VW_CART_MAX        10000000000000LL     /* 10^13, as the edge */


/* a member id as the edge takes a customer: 1..128 bytes, no controls */

static int
vw_cart_member(const char *id, vw_operr_t *e)
{
    size_t  i, n;

    n = id ? strlen(id) : 0;

    for (i = 0; i < n; i++) {
        if ((unsigned char) id[i] < 0x20 || id[i] == 0x7f) {
            break;
        }
    }

    if (n == 0 || n > 128 || i != n) {
        return vw_op_fail(e, 400, "invalid_field", "id",
                          "id: 1..128 bytes, no control characters");
    }

    return 0;
}


/* a reply value as JSON: W.list()s ("[]" first) as arrays, pairs as
   objects */

static json_t *
vw_cart_json(const redisReply *x)
{
    size_t       i;
    json_t      *a, *o;
    redisReply  *k;

    switch (x->type) {

    case REDIS_REPLY_INTEGER:
        return json_integer(x->integer);

    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        return json_stringn(x->str, x->len);

    case REDIS_REPLY_ARRAY:
        if (x->elements && x->element[0]->type == REDIS_REPLY_STATUS
            && strcmp(x->element[0]->str, "[]") == 0)
        {
            a = json_array();

            for (i = 1; i < x->elements; i++) {
                json_array_append_new(a, vw_cart_json(x->element[i]));
            }

            return a;
        }

        o = json_object();

        for (i = 0; i + 1 < x->elements; i += 2) {
            k = x->element[i];

            if (k->type == REDIS_REPLY_STRING) {
                json_object_set_new(o, k->str,
                                    vw_cart_json(x->element[i + 1]));
            }
        }

        return o;

    default:
        return json_null();
    }
}


/* {ok, k, v, ...} from index 1 as an object; NULL when not "ok" */

static json_t *
vw_cart_ok(const redisReply *r)
{
    size_t       i;
    json_t      *o;
    const char  *s;

    s = r->type == REDIS_REPLY_ARRAY && r->elements
        ? vw_reply_str(r->element[0]) : NULL;

    if (s == NULL || strcmp(s, "ok") != 0) {
        return NULL;
    }

    o = json_object();

    for (i = 1; i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING) {
            json_object_set_new(o, r->element[i]->str,
                                vw_cart_json(r->element[i + 1]));
        }
    }

    return o;
}


/* FCALL_RO fn on key with the arguments rest: its {ok, ...} reply as an
 * object, or NULL with e said */

static json_t *
vw_cart_read(vw_op_t *op, const char *fn, const char *key, vw_args_t *rest,
    vw_operr_t *e)
{
    int          i;
    json_t      *o;
    vw_args_t    a;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, "FCALL_RO");
    vw_args_adds(&a, fn);
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);

    for (i = 0; i < rest->n; i++) {
        vw_args_add(&a, rest->v[i], rest->len[i]);
    }

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        return NULL;
    }

    o = vw_cart_ok(r);
    freeReplyObject(r);

    if (o == NULL) {
        vw_op_fail(e, 500, "internal_error", NULL, "unexpected reply to %s",
                   fn);
    }

    return o;
}


/* ---------------------------------------------------------------- wallet */


/* GET /v1/members/{id}/wallet: a page, newest first, with states */

int
vw_op_wallet_list(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char        *key;
    json_t      *o, *items, *next;
    int64_t      limit;
    vw_args_t    a;
    const char  *cursor;

    static const char *const  names[] = { "cursor", "limit", NULL };

    cursor = NULL;
    limit = VW_CART_PAGE;

    if (vw_cart_member(in->id, e) != 0
        || vw_op_known(in->query, names, e) != 0
        || vw_op_qint(in->query, "limit", 1, VW_CART_PAGE, &limit, e) != 0
        || vw_op_str(in, in->query, "cursor", 0, &cursor, e) != 0)
    {
        return -1;
    }

    /* the library's cursor: the score of the last code of a page */

    if (cursor && (*cursor == '\0' || strlen(cursor) > 19
                   || strspn(cursor, "0123456789") != strlen(cursor)))
    {
        return vw_op_fail(e, 400, "invalid_field", "cursor",
                          "cursor: not one this API gave");
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, cursor ? cursor : "0");
    vw_args_addi(&a, limit);

    key = vw_key(op->cf, "w:%s", in->id);
    o = vw_cart_read(op, "voucher_wallet", key, &a, e);
    free(key);
    vw_args_free(&a);

    if (o == NULL) {
        return -1;
    }

    items = json_incref(json_object_get(o, "codes"));
    next = json_object_get(o, "next_cursor");

    *out = vw_op_page(items ? items : json_array(),
                      json_is_string(next)
                      && strcmp(json_string_value(next), "0") != 0
                      ? json_string_value(next) : NULL);
    json_object_set_new(*out, "customer", json_string(in->id));
    json_decref(o);

    return 200;
}


/*
 * the body's "code" for a wallet change, normalised as the library keeps
 * it into name (VW_CART_CODE_LEN + 1 bytes)
 */

static int
vw_cart_wallet_code(vw_op_in_t *in, char *name, vw_operr_t *e)
{
    const char                *code;
    static const char *const   names[] = { "code", NULL };

    code = NULL;

    if (vw_cart_member(in->id, e) != 0
        || vw_op_known(in->body, names, e) != 0
        || vw_op_str(in, in->body, "code", 1, &code, e) != 0)
    {
        return -1;
    }

    if (strlen(code) > VW_CART_CODE_LEN) {
        return vw_op_fail(e, 400, "invalid_field", "code",
                          "code: at most %d characters", VW_CART_CODE_LEN);
    }

    if (voucher_code_normalize(code, strlen(code), name,
                               VW_CART_CODE_LEN + 1)
        == 0)
    {
        return vw_op_fail(e, 400, "invalid_field", "code",
                          "code: printable ASCII, not empty once spaces "
                          "and dashes go");
    }

    return 0;
}


/* POST /v1/members/{id}/wallet {"code"}: audited as wallet.add */

int
vw_op_wallet_add(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char        *key, name[VW_CART_CODE_LEN + 1];
    vw_args_t    a;
    const char  *s;
    redisReply  *r;

    if (vw_cart_wallet_code(in, name, e) != 0) {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, name);
    vw_args_adds(&a, "refuse");

    key = vw_key(op->cf, "w:%s", in->id);
    r = vw_op_admin(op, key, "wallet.add", in->id, "wallet_add", "", &a, e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->type == REDIS_REPLY_ARRAY) {
        s = r->elements ? vw_reply_str(r->element[0]) : NULL;

        if (s && strcmp(s, "wallet_full") == 0) {
            freeReplyObject(r);
            return vw_op_fail(e, 409, "wallet_full", "code",
                              "the wallet holds 500 codes: remove one "
                              "first");
        }

        freeReplyObject(r);
        return vw_op_fail(e, 500, "internal_error", NULL,
                          "unexpected reply to voucher_wallet_add");
    }

    *out = json_pack("{s:s, s:s, s:b}", "customer", in->id, "code", name,
                     "added", r->type == REDIS_REPLY_INTEGER
                              && r->integer == 1);
    freeReplyObject(r);

    return 200;
}


/* POST /v1/members/{id}/wallet/remove {"code"}: audited as wallet.remove */

int
vw_op_wallet_remove(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    char        *key, name[VW_CART_CODE_LEN + 1];
    vw_args_t    a;
    redisReply  *r;

    if (vw_cart_wallet_code(in, name, e) != 0) {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, name);

    key = vw_key(op->cf, "w:%s", in->id);
    r = vw_op_admin(op, key, "wallet.remove", in->id, "wallet_del", "", &a,
                    e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    *out = json_pack("{s:s, s:s, s:b}", "customer", in->id, "code", name,
                     "removed", r->type == REDIS_REPLY_INTEGER
                                && r->integer == 1);
    freeReplyObject(r);

    return 200;
}


/* --------------------------------------------------------------- qualify */


/* a string field of obj: absent (NULL), or 1..max bytes matching ok() */

static int
vw_cart_text(json_t *obj, const char *name, const char *path, size_t max,
    int printable, const char **out, vw_operr_t *e)
{
    size_t       i, n;
    json_t      *v;
    const char  *s;

    *out = NULL;
    v = json_object_get(obj, name);

    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    if (!json_is_string(v)) {
        return vw_op_fail(e, 400, "invalid_field", path,
                          "%s: a string expected", path);
    }

    s = json_string_value(v);
    n = strlen(s);

    for (i = 0; i < n; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f
            || (printable && ((unsigned char) s[i] > 0x7e || s[i] == ' ')))
        {
            break;
        }
    }

    if (n == 0 || n > max || i != n || n != json_string_length(v)) {
        return vw_op_fail(e, 400, "invalid_field", path,
                          "%s: 1..%zu %s", path, max,
                          printable ? "printable ASCII characters, no spaces"
                                    : "bytes, no control characters");
    }

    *out = s;

    return 0;
}


/* an integer field of obj in min..max: absent leaves *out */

static int
vw_cart_int(json_t *obj, const char *name, const char *path, int64_t min,
    int64_t max, int64_t *out, vw_operr_t *e)
{
    json_t  *v;

    v = json_object_get(obj, name);

    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    if (!json_is_integer(v) || json_integer_value(v) < min
        || json_integer_value(v) > max)
    {
        return vw_op_fail(e, 400, "invalid_field", path,
                          "%s: an integer %lld..%lld expected", path,
                          (long long) min, (long long) max);
    }

    *out = json_integer_value(v);

    return 0;
}


/* the order's items appended to a (sku category price qty each); *sum */

static int
vw_cart_items(json_t *items, vw_args_t *a, int64_t *sum, vw_operr_t *e)
{
    char                      path[64];
    size_t                    i;
    json_t                   *it;
    int64_t                   price, qty;
    const char               *sku, *cat;
    static const char *const  names[] = {
        "sku", "category", "price", "quantity", NULL
    };

    *sum = 0;

    json_array_foreach(items, i, it) {
        snprintf(path, sizeof(path), "order.items[%zu]", i);

        if (!json_is_object(it)) {
            return vw_op_fail(e, 400, "invalid_field", path,
                              "%s: an object expected", path);
        }

        if (vw_op_known(it, names, e) != 0) {
            snprintf(path, sizeof(path), "order.items[%zu].%.20s", i,
                     e->field);
            snprintf(e->field, sizeof(e->field), "%s", path);
            return -1;
        }

        price = -1;
        qty = 1;

        snprintf(path, sizeof(path), "order.items[%zu].sku", i);

        if (vw_cart_text(it, "sku", path, 128, 0, &sku, e) != 0) {
            return -1;
        }

        if (sku == NULL) {
            return vw_op_fail(e, 400, "missing_field", path,
                              "%s: required", path);
        }

        snprintf(path, sizeof(path), "order.items[%zu].category", i);

        if (vw_cart_text(it, "category", path, 128, 0, &cat, e) != 0) {
            return -1;
        }

        snprintf(path, sizeof(path), "order.items[%zu].price", i);

        if (vw_cart_int(it, "price", path, 0, VW_CART_MAX, &price, e) != 0) {
            return -1;
        }

        if (price < 0) {
            return vw_op_fail(e, 400, "missing_field", path,
                              "%s: required", path);
        }

        snprintf(path, sizeof(path), "order.items[%zu].quantity", i);

        if (vw_cart_int(it, "quantity", path, 1, 1000000, &qty, e) != 0) {
            return -1;
        }

        vw_args_adds(a, sku);
        vw_args_adds(a, cat ? cat : "");
        vw_args_addi(a, price);
        vw_args_addi(a, qty);

        *sum += price * qty;

        if (*sum > VW_CART_MAX) {
            return vw_op_fail(e, 400, "invalid_field", "order.items",
                              "order.items: they add up to more than 10^13");
        }
    }

    return 0;
}


/*
 * POST /v1/qualify {customer, order, codes, best}: the edge's qualify
 * (FCALL_RO voucher_qualify): read-only.  A code is judged as the library
 * finds it; the edge's offline checks refuse forged codes as not_found
 * without a lookup, which answers the same as a lookup of a code that is
 * not there.
 */

int
vw_op_qualify(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char                      path[32], *key;
    char                      codes[VW_CART_CODES][VW_CART_CODE_LEN + 1];
    size_t                    i, n, len;
    json_t                   *order, *list, *items, *v, *o;
    int64_t                   amount, sum;
    vw_args_t                 a, it;
    const char               *cust, *cur, *oid, *channel, *s;
    static const char *const  names[] = {
        "customer", "order", "codes", "best", NULL
    };
    static const char *const  onames[] = {
        "id", "amount", "currency", "channel", "items", NULL
    };

    if (vw_op_known(in->body, names, e) != 0
        || vw_cart_text(in->body, "customer", "customer", 128, 0, &cust, e)
           != 0)
    {
        return -1;
    }

    v = json_object_get(in->body, "best");

    if (v && !json_is_boolean(v)) {
        return vw_op_fail(e, 400, "invalid_field", "best",
                          "best: true or false");
    }

    order = json_object_get(in->body, "order");

    if (order == NULL) {
        return vw_op_fail(e, 400, "missing_field", "order",
                          "order: required");
    }

    if (!json_is_object(order)) {
        return vw_op_fail(e, 400, "invalid_field", "order",
                          "order: an object expected");
    }

    amount = -1;

    if (vw_op_known(order, onames, e) != 0
        || vw_cart_text(order, "id", "order.id", 128, 0, &oid, e) != 0
        || vw_cart_text(order, "channel", "order.channel", 128, 1, &channel,
                        e) != 0
        || vw_cart_int(order, "amount", "order.amount", 0, VW_CART_MAX,
                       &amount, e) != 0
        || vw_cart_text(order, "currency", "order.currency", 3, 1, &cur, e)
           != 0)
    {
        /* vw_op_known names the field alone: say where it is */
        if (strcmp(e->reason, "unknown_field") == 0
            && strncmp(e->field, "order.", 6) != 0)
        {
            snprintf(path, sizeof(path), "order.%.20s", e->field);
            snprintf(e->field, sizeof(e->field), "%s", path);
        }

        return -1;
    }

    if (cur && (strlen(cur) != 3 || strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
                                    != 3))
    {
        return vw_op_fail(e, 400, "invalid_field", "order.currency",
                          "order.currency: three letters A-Z");
    }

    items = json_object_get(order, "items");

    if (items && !json_is_null(items)
        && (!json_is_array(items) || json_array_size(items) > VW_CART_ITEMS))
    {
        return vw_op_fail(e, 400, "invalid_field", "order.items",
                          "order.items: an array of at most %d items",
                          VW_CART_ITEMS);
    }

    memset(&it, 0, sizeof(vw_args_t));
    sum = 0;

    if (json_is_array(items) && vw_cart_items(items, &it, &sum, e) != 0) {
        vw_args_free(&it);
        return -1;
    }

    if (amount < 0) {
        if (!json_is_array(items) || json_array_size(items) == 0) {
            vw_args_free(&it);
            return vw_op_fail(e, 400, "missing_field", "order.amount",
                              "order.amount: required without items");
        }

        amount = sum;
    }

    /* the codes to judge as well, normalised as the edge does */

    list = json_object_get(in->body, "codes");
    n = 0;

    if (list && !json_is_null(list)
        && (!json_is_array(list) || json_array_size(list) > VW_CART_CODES))
    {
        vw_args_free(&it);
        return vw_op_fail(e, 400, "invalid_field", "codes",
                          "codes: an array of at most %d codes",
                          VW_CART_CODES);
    }

    n = json_is_array(list) ? json_array_size(list) : 0;

    for (i = 0; i < n; i++) {
        v = json_array_get(list, i);
        s = json_is_string(v) ? json_string_value(v) : NULL;
        len = s ? json_string_length(v) : 0;

        if (s == NULL || len > VW_CART_CODE_LEN || len != strlen(s)
            || voucher_code_normalize(s, len, codes[i], sizeof(codes[i]))
               == 0)
        {
            vw_args_free(&it);
            snprintf(path, sizeof(path), "codes[%zu]", i);
            return vw_op_fail(e, 400, "invalid_field", path,
                              "%s: a code of printable ASCII, not empty "
                              "once spaces and dashes go", path);
        }
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, channel ? channel : "");
    vw_args_adds(&a, json_is_true(json_object_get(in->body, "best"))
                     ? "1" : "0");
    vw_args_addi(&a, (int64_t) n);

    for (i = 0; i < n; i++) {
        vw_args_adds(&a, codes[i]);
    }

    vw_args_adds(&a, "0");              /* none refused offline */
    vw_args_adds(&a, cust ? cust : "");
    vw_args_addi(&a, amount);
    vw_args_adds(&a, cur ? cur : "");
    vw_args_adds(&a, oid ? oid : "");
    vw_args_adds(&a, "");               /* no idempotency key */
    vw_args_addi(&a, json_is_array(items)
                     ? (int64_t) json_array_size(items) : 0);

    for (i = 0; i < (size_t) it.n; i++) {
        vw_args_add(&a, it.v[i], it.len[i]);
    }

    vw_args_free(&it);

    key = vw_key(op->cf, "public");
    o = vw_cart_read(op, "voucher_qualify", key, &a, e);
    free(key);
    vw_args_free(&a);

    if (o == NULL) {
        return -1;
    }

    *out = o;

    return 200;
}
