
/*
 * Copyright (C) ngx_voucher authors
 *
 * libFuzzer target for the request parser.  The first byte picks the
 * operation ('0' validate, '1' redeem, '2' rollback, '3' reserve,
 * '4' confirm, '5' release: byte % 6; 'w' wallet, 's' wallet_save,
 * 'q' qualify, 'e' a storefront event; 0xf0 and up the loyalty ones), the
 * rest is the body.  The body
 * is parsed with the default limits, with tiny limits and with a too
 * small arena, and the results are checked for invariants.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "ngx_http_voucher_parse.h"


#define STR_TEXT      0
#define STR_CODE      1
#define STR_TOKEN     2
#define STR_CURRENCY  3
#define STR_RID       4
#define STR_CURSOR    5


typedef struct {
    ngx_http_voucher_request_t   req;
    ngx_http_voucher_error_t     err;
    unsigned char               *arena;
    size_t                       size;
    int                          rc;
} fuzz_result_t;


static const char  *reasons[] = {
    NGX_HTTP_VOUCHER_ERR_INVALID_JSON,
    NGX_HTTP_VOUCHER_ERR_INVALID_REQUEST,
    NGX_HTTP_VOUCHER_ERR_UNKNOWN_FIELD,
    NGX_HTTP_VOUCHER_ERR_MISSING_FIELD,
    NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
    NGX_HTTP_VOUCHER_ERR_INVALID_CODE,
    NGX_HTTP_VOUCHER_ERR_DUPLICATE_FIELD,
    NGX_HTTP_VOUCHER_ERR_INTERNAL,
    NULL
};


static int
is_reason(const char *r, const char *want)
{
    return r != NULL && strcmp(r, want) == 0;
}


static void
check_text(const char *s, size_t size)
{
    size_t  i;

    CHECK(memchr(s, '\0', size) != NULL);

    for (i = 0; s[i] != '\0'; i++) {
        CHECK(s[i] >= 0x20 && s[i] <= 0x7e && s[i] != '"' && s[i] != '\\');
    }
}


static void
check_error(const fuzz_result_t *r)
{
    size_t  i;

    CHECK(r->rc == -1);
    CHECK(r->err.reason != NULL);

    for (i = 0; reasons[i] != NULL; i++) {
        if (strcmp(r->err.reason, reasons[i]) == 0) {
            break;
        }
    }

    CHECK(reasons[i] != NULL);

    check_text(r->err.field, sizeof(r->err.field));
    check_text(r->err.message, sizeof(r->err.message));
    CHECK(r->err.message[0] != '\0');

    /* a failed parse leaves nothing behind */
    CHECK(r->req.code.data == NULL && r->req.code.len == 0);
    CHECK(r->req.customer.data == NULL);
    CHECK(r->req.redemption_id.data == NULL);
    CHECK(r->req.items == NULL && r->req.nitems == 0);
    CHECK(r->req.codes == NULL && r->req.ncodes == 0 && r->req.stack == 0);
    CHECK(r->req.channel.data == NULL && r->req.best == 0);
    CHECK(r->req.amount == NGX_HTTP_VOUCHER_UNSET);
    CHECK(r->req.rollback_amount == NGX_HTTP_VOUCHER_UNSET);
}


static void
check_str(const fuzz_result_t *r, const ngx_http_voucher_str_t *s,
    int required, int kind, size_t max)
{
    size_t  i;

    if (s->data == NULL) {
        CHECK(s->len == 0);
        CHECK(!required);
        return;
    }

    CHECK(s->len >= 1);
    CHECK(s->data >= r->arena);
    CHECK(s->len < r->size);
    CHECK(s->data + s->len + 1 <= r->arena + r->size);
    CHECK(s->data[s->len] == '\0');
    CHECK(memchr(s->data, '\0', s->len) == NULL);

    switch (kind) {

    case STR_CODE:
        CHECK(s->len <= max);

        for (i = 0; i < s->len; i++) {
            CHECK(s->data[i] >= 0x20 && s->data[i] <= 0x7e);
        }

        break;

    case STR_TOKEN:
        CHECK(s->len <= max);

        for (i = 0; i < s->len; i++) {
            CHECK(s->data[i] >= 0x21 && s->data[i] <= 0x7e);
        }

        break;

    case STR_CURRENCY:
        CHECK(s->len == 3);

        for (i = 0; i < 3; i++) {
            CHECK(s->data[i] >= 'A' && s->data[i] <= 'Z');
        }

        break;

    case STR_RID:
        CHECK(s->len <= NGX_HTTP_VOUCHER_MAX_REDEMPTION_ID_LEN);

        for (i = 0; i < s->len; i++) {
            CHECK((s->data[i] >= '0' && s->data[i] <= '9')
                  || s->data[i] == '-');
        }

        break;

    case STR_CURSOR:
        CHECK(s->len <= NGX_HTTP_VOUCHER_MAX_CURSOR_LEN);

        for (i = 0; i < s->len; i++) {
            CHECK(s->data[i] >= '0' && s->data[i] <= '9');
        }

        break;

    default:
        CHECK(s->len <= max);

        for (i = 0; i < s->len; i++) {
            CHECK(s->data[i] >= 0x20 && s->data[i] != 0x7f);
        }

        break;
    }
}


/*
 * the "m..." business data: in the arena, "m" then entries
 * "<o|c><name>=<value>" joined by NUL, a name of 1..32 letters, digits
 * or _, a value of 1..64 bytes without control characters
 */

static void
check_meta(const fuzz_result_t *r, const ngx_http_voucher_str_t *m)
{
    size_t                i, n, entries;
    const unsigned char  *p, *e, *v;

    if (m->data == NULL) {
        CHECK(m->len == 0);
        return;
    }

    CHECK(m->len >= 5);
    CHECK(m->data >= r->arena && m->data + m->len <= r->arena + r->size);
    CHECK(m->data[0] == 'm');

    p = m->data + 1;
    e = m->data + m->len;
    entries = 0;

    while (p < e) {
        CHECK(*p == 'o' || *p == 'c');
        p++;

        for (n = 0; p + n < e && p[n] != '='; n++) {
            CHECK((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z')
                  || (p[n] >= '0' && p[n] <= '9') || p[n] == '_');
        }

        CHECK(n >= 1 && n <= NGX_HTTP_VOUCHER_MAX_META_NAME && p + n < e);
        v = p + n + 1;

        for (i = 0; v + i < e && v[i] != '\0'; i++) {
            CHECK(v[i] >= 0x20 && v[i] != 0x7f);
        }

        CHECK(i >= 1 && i <= NGX_HTTP_VOUCHER_MAX_META_VALUE);
        p = v + i + (v + i < e ? 1 : 0);
        CHECK(p < e || v + i == e);
        entries++;
    }

    CHECK(entries <= 2 * NGX_HTTP_VOUCHER_MAX_META);
}


static void
check_request(const fuzz_result_t *r, int op,
    const ngx_http_voucher_limits_t *lim)
{
    size_t                          i;
    int64_t                         sum, line;
    const ngx_http_voucher_item_t  *it;
    const ngx_http_voucher_request_t  *q;

    q = &r->req;

    CHECK(r->rc == 0);
    CHECK(q->op == op);

    check_meta(r, &q->meta);

    if (op != NGX_HTTP_VOUCHER_OP_VALIDATE && op != NGX_HTTP_VOUCHER_OP_REDEEM
        && op != NGX_HTTP_VOUCHER_OP_RESERVE
        && op != NGX_HTTP_VOUCHER_OP_QUALIFY)
    {
        CHECK(q->meta.data == NULL);
    }

    if (op == NGX_HTTP_VOUCHER_OP_EVENT) {
        check_str(r, &q->event_id, 1, STR_TOKEN,
                  NGX_HTTP_VOUCHER_MAX_EVENT_ID_LEN);
        check_str(r, &q->event_type, 1, STR_TOKEN,
                  NGX_HTTP_VOUCHER_MAX_EVENT_TYPE_LEN);
        CHECK(q->event_type.data[0] >= 'a' && q->event_type.data[0] <= 'z');

        for (i = 0; i < q->event_type.len; i++) {
            CHECK((q->event_type.data[i] >= 'a'
                   && q->event_type.data[i] <= 'z')
                  || (q->event_type.data[i] >= '0'
                      && q->event_type.data[i] <= '9')
                  || q->event_type.data[i] == '_');
        }

        check_str(r, &q->customer, 1, STR_TEXT, lim->max_str_len);
        CHECK(memchr(q->customer.data, ' ', q->customer.len) == NULL);
        CHECK(q->timestamp == NGX_HTTP_VOUCHER_UNSET
              || (q->timestamp >= 0
                  && q->timestamp <= NGX_HTTP_VOUCHER_MAX_TIMESTAMP));
        check_str(r, &q->referral_code, 0, STR_CODE, lim->max_code_len);

        for (i = 0; i < NGX_HTTP_VOUCHER_EVENT_ATTRS; i++) {
            check_str(r, &q->attrs[i], 0, STR_TEXT, lim->max_str_len);
        }

        CHECK(q->code.data == NULL && q->redemption_id.data == NULL);
        CHECK(q->idempotency_key.data == NULL && q->points == 0);
        CHECK(q->codes == NULL && q->ncodes == 0 && q->stack == 0);
        CHECK(q->channel.data == NULL && q->best == 0);

        if (strcmp((const char *) q->event_type.data, "purchase") != 0) {
            CHECK(q->amount == NGX_HTTP_VOUCHER_UNSET);
            CHECK(q->items == NULL && q->order_id.data == NULL);
            return;
        }

        goto order;
    }

    CHECK(q->event_id.data == NULL && q->event_type.data == NULL);
    CHECK(q->timestamp == NGX_HTTP_VOUCHER_UNSET);

    check_str(r, &q->idempotency_key, 0, STR_TOKEN, lim->max_str_len);

    if (op == NGX_HTTP_VOUCHER_OP_WALLET
        || op == NGX_HTTP_VOUCHER_OP_WALLET_SAVE)
    {
        check_str(r, &q->customer, 1, STR_TEXT, lim->max_str_len);
        CHECK(q->stack == 0 && q->ncodes == 0 && q->channel.data == NULL);
        CHECK(q->idempotency_key.data == NULL);
        CHECK(q->items == NULL && q->nitems == 0);
        CHECK(q->amount == NGX_HTTP_VOUCHER_UNSET);

        if (op == NGX_HTTP_VOUCHER_OP_WALLET_SAVE) {
            check_str(r, &q->code, 1, STR_CODE, lim->max_code_len);
            CHECK(q->cursor.data == NULL);
            CHECK(q->count == NGX_HTTP_VOUCHER_UNSET);
            return;
        }

        CHECK(q->code.data == NULL);
        check_str(r, &q->cursor, 0, STR_CURSOR, 0);
        CHECK(q->count == NGX_HTTP_VOUCHER_UNSET
              || (q->count >= 1
                  && q->count <= NGX_HTTP_VOUCHER_MAX_WALLET_PAGE));
        return;
    }

    CHECK(q->cursor.data == NULL && q->count == NGX_HTTP_VOUCHER_UNSET);

    if (op < NGX_HTTP_VOUCHER_OP_VALIDATE + 6
        && op != NGX_HTTP_VOUCHER_OP_VALIDATE
        && op != NGX_HTTP_VOUCHER_OP_REDEEM
        && op != NGX_HTTP_VOUCHER_OP_RESERVE)
    {
        CHECK(q->codes == NULL && q->ncodes == 0 && q->stack == 0);
        CHECK(q->channel.data == NULL && q->best == 0);
    }

    if (op == NGX_HTTP_VOUCHER_OP_CONFIRM
        || op == NGX_HTTP_VOUCHER_OP_RELEASE)
    {
        check_str(r, &q->redemption_id, 1, STR_RID, 0);
        CHECK(q->code.data == NULL && q->customer.data == NULL);
        CHECK(q->items == NULL && q->nitems == 0);
        CHECK(q->rollback_amount == NGX_HTTP_VOUCHER_UNSET);
        CHECK(q->hold_seconds == NGX_HTTP_VOUCHER_UNSET);
        return;
    }

    if (op == NGX_HTTP_VOUCHER_OP_ROLLBACK) {
        CHECK(q->hold_seconds == NGX_HTTP_VOUCHER_UNSET);
        check_str(r, &q->redemption_id, 1, STR_RID, 0);
        CHECK(q->code.data == NULL && q->customer.data == NULL);
        CHECK(q->order_id.data == NULL && q->currency.data == NULL);
        CHECK(q->items == NULL && q->nitems == 0);
        CHECK(q->amount == NGX_HTTP_VOUCHER_UNSET);
        CHECK(q->rollback_amount == NGX_HTTP_VOUCHER_UNSET
              || (q->rollback_amount >= 0
                  && q->rollback_amount <= lim->max_amount));
        return;
    }

    if (op >= NGX_HTTP_VOUCHER_OP_LOYALTY_EARN) {
        /* a member id: required, no spaces */
        check_str(r, &q->customer, 1, STR_TEXT, lim->max_str_len);
        CHECK(memchr(q->customer.data, ' ', q->customer.len) == NULL);
        CHECK(q->code.data == NULL && q->redemption_id.data == NULL);
        CHECK(q->points == 0);
        CHECK(q->codes == NULL && q->ncodes == 0 && q->stack == 0);
        CHECK(q->channel.data == NULL && q->best == 0);
        CHECK(q->hold_seconds == NGX_HTTP_VOUCHER_UNSET);

        if (op == NGX_HTTP_VOUCHER_OP_LOYALTY_HISTORY) {
            CHECK(q->limit >= 1
                  && q->limit <= NGX_HTTP_VOUCHER_MAX_HISTORY);
            check_str(r, &q->before, 0, STR_RID, 0);

        } else {
            CHECK(q->limit == 0 && q->before.data == NULL);
        }

        if (op != NGX_HTTP_VOUCHER_OP_LOYALTY_EARN) {
            CHECK(q->items == NULL && q->nitems == 0);
            CHECK(q->amount == NGX_HTTP_VOUCHER_UNSET);
            CHECK(q->order_id.data == NULL);
            return;
        }

        check_str(r, &q->order_id, 1, STR_TEXT, lim->max_str_len);

    } else {
        /* several codes: a stack, or the codes qualify judges */

        CHECK(q->ncodes <= NGX_HTTP_VOUCHER_MAX_CODES);
        CHECK((q->codes == NULL) == (q->ncodes == 0));

        for (i = 0; i < q->ncodes; i++) {
            check_str(r, &q->codes[i], 1, STR_CODE, lim->max_code_len);
        }

        check_str(r, &q->channel, 0, STR_TOKEN, lim->max_str_len);

        if (op == NGX_HTTP_VOUCHER_OP_QUALIFY) {
            CHECK(q->code.data == NULL && q->stack == 0);
            CHECK(q->idempotency_key.data == NULL);
            CHECK(q->best == 0 || q->best == 1);
            CHECK(q->hold_seconds == NGX_HTTP_VOUCHER_UNSET);

        } else {
            CHECK(q->best == 0);

            /* a code, or codes ([] too), never both; a channel with codes */
            CHECK((q->code.data != NULL) != (q->stack != 0));
            CHECK(q->stack || (q->ncodes == 0 && q->channel.data == NULL));
        }

        check_str(r, &q->code, 0, STR_CODE, lim->max_code_len);
        check_str(r, &q->customer, 0, STR_TEXT, lim->max_str_len);

        /* a stack is priced in one call that takes no points */
        CHECK(q->stack == 0 || q->points == 0);
    }

order:

    check_str(r, &q->order_id, 0, STR_TEXT, lim->max_str_len);
    check_str(r, &q->currency, 0, STR_CURRENCY, 0);
    CHECK(q->redemption_id.data == NULL);
    CHECK(q->rollback_amount == NGX_HTTP_VOUCHER_UNSET);
    CHECK(q->amount >= 0 && q->amount <= lim->max_amount);

    if (op == NGX_HTTP_VOUCHER_OP_RESERVE) {
        CHECK(q->hold_seconds == NGX_HTTP_VOUCHER_UNSET
              || (q->hold_seconds >= 1
                  && q->hold_seconds <= NGX_HTTP_VOUCHER_MAX_HOLD_SECONDS));

    } else {
        CHECK(q->hold_seconds == NGX_HTTP_VOUCHER_UNSET);
    }

    if (q->items == NULL) {
        CHECK(q->nitems == 0);
        return;
    }

    CHECK(q->nitems >= 1 && q->nitems <= lim->max_items);
    CHECK((const unsigned char *) q->items >= r->arena);
    CHECK(q->nitems <= r->size / sizeof(ngx_http_voucher_item_t));
    CHECK((const unsigned char *) (q->items + q->nitems)
          <= r->arena + r->size);
    CHECK((uintptr_t) q->items % sizeof(int64_t) == 0);

    sum = 0;

    for (i = 0; i < q->nitems; i++) {
        it = &q->items[i];

        check_str(r, &it->sku, 1, STR_TEXT, lim->max_str_len);
        check_str(r, &it->category, 0, STR_TEXT, lim->max_str_len);
        CHECK(it->price >= 0 && it->price <= lim->max_amount);
        CHECK(it->quantity >= 1
              && it->quantity <= NGX_HTTP_VOUCHER_MAX_QUANTITY);
        CHECK(!__builtin_mul_overflow(it->price, it->quantity, &line));
        CHECK(!__builtin_add_overflow(sum, line, &sum));
        CHECK(sum <= lim->max_amount);
    }
}


static size_t
str_size(const ngx_http_voucher_str_t *s)
{
    return s->data ? s->len + 1 : 0;
}


/* the arena bytes a parsed request occupies, without alignment padding */

static size_t
arena_used(const ngx_http_voucher_request_t *q)
{
    size_t  i, n;

    n = str_size(&q->code) + str_size(&q->customer)
        + str_size(&q->idempotency_key) + str_size(&q->order_id)
        + str_size(&q->currency) + str_size(&q->redemption_id)
        + str_size(&q->cursor) + str_size(&q->channel)
        + q->ncodes * sizeof(ngx_http_voucher_str_t)
        + str_size(&q->before) + str_size(&q->meta)
        + str_size(&q->event_id) + str_size(&q->event_type)
        + str_size(&q->referral_code)
        + q->nitems * sizeof(ngx_http_voucher_item_t);

    for (i = 0; i < NGX_HTTP_VOUCHER_EVENT_ATTRS; i++) {
        n += str_size(&q->attrs[i]);
    }

    for (i = 0; i < q->nitems; i++) {
        n += str_size(&q->items[i].sku) + str_size(&q->items[i].category);
    }

    for (i = 0; i < q->ncodes; i++) {
        n += str_size(&q->codes[i]);
    }

    return n;
}


static void
parse(fuzz_result_t *r, int op, const uint8_t *body, size_t len,
    const ngx_http_voucher_limits_t *lim, size_t shrink)
{
    r->size = ngx_http_voucher_parse_arena_size(len, lim);
    CHECK(r->size != SIZE_MAX);
    r->size = r->size > shrink ? r->size - shrink : 0;

    /* exactly sized, so that ASan sees any overrun */
    r->arena = malloc(r->size ? r->size : 1);
    CHECK(r->arena != NULL);

    memset(&r->req, 0xa5, sizeof(r->req));
    memset(&r->err, 0, sizeof(r->err));

    r->rc = ngx_http_voucher_parse_request(op, body, len, lim, &r->req,
                                           r->arena, r->size, &r->err);
    CHECK(r->rc == 0 || r->rc == -1);
}


static void
check_code_oracle(const uint8_t *s, size_t len,
    const ngx_http_voucher_limits_t *lim)
{
    int                       rc, want;
    size_t                    i;
    ngx_http_voucher_error_t  err;

    want = (len >= 1 && len <= lim->max_code_len) ? 0 : -1;

    for (i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            want = -1;
        }
    }

    memset(&err, 0, sizeof(err));

    rc = ngx_http_voucher_check_code(s, len, lim, &err);
    CHECK(rc == want);

    if (rc != 0) {
        CHECK(is_reason(err.reason, NGX_HTTP_VOUCHER_ERR_INVALID_CODE));
        CHECK(strcmp(err.field, "code") == 0);
        check_text(err.message, sizeof(err.message));
    }
}


/*
 * ngx_http_voucher_key_fold() of the body against name: equal bytes are
 * the same key; an ASCII key is a variant exactly when it differs in
 * letter case only; a variant folds back to name under ASCII case; and
 * the name never differs from itself.
 */

static void
check_fold_oracle(const uint8_t *key, size_t len, const char *name)
{
    int     rc, ascii;
    size_t  i, n;

    n = strlen(name);

    rc = ngx_http_voucher_key_fold(key, len, (const unsigned char *) name,
                                   n);

    CHECK(rc == NGX_HTTP_VOUCHER_KEY_SAME
          || rc == NGX_HTTP_VOUCHER_KEY_VARIANT
          || rc == NGX_HTTP_VOUCHER_KEY_OTHER);

    CHECK((rc == NGX_HTTP_VOUCHER_KEY_SAME)
          == (len == n && memcmp(key, name, n) == 0));

    ascii = 1;

    for (i = 0; i < len; i++) {
        if (key[i] >= 0x80) {
            ascii = 0;
        }
    }

    if (ascii) {
        CHECK((rc == NGX_HTTP_VOUCHER_KEY_VARIANT)
              == (len == n && memcmp(key, name, n) != 0
                  && strncasecmp((const char *) key, name, n) == 0));
    }

    /* a variant has at most three bytes for each byte of the name */
    if (rc == NGX_HTTP_VOUCHER_KEY_VARIANT) {
        CHECK(len <= 3 * n);
    }

    CHECK(ngx_http_voucher_key_fold((const unsigned char *) name, n,
                                    (const unsigned char *) name, n)
          == NGX_HTTP_VOUCHER_KEY_SAME);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                        op;
    size_t                     len;
    const uint8_t             *body;
    size_t                     need;
    fuzz_result_t              def, tiny, small;
    ngx_http_voucher_limits_t  dlim, tlim;

    if (size == 0) {
        return 0;
    }

    switch (data[0]) {

    case 'w':
        op = NGX_HTTP_VOUCHER_OP_WALLET;
        break;

    case 's':
        op = NGX_HTTP_VOUCHER_OP_WALLET_SAVE;
        break;

    case 'q':
        op = NGX_HTTP_VOUCHER_OP_QUALIFY;
        break;

    case 'e':
        op = NGX_HTTP_VOUCHER_OP_EVENT;
        break;

    default:
        /* 0xf0 and up: the loyalty operations */
        if (data[0] >= 0xf0) {
            op = (data[0] - 0xf0) % 3 + NGX_HTTP_VOUCHER_OP_LOYALTY_EARN;

        } else {
            op = data[0] % 6 + 1;
        }
    }

    body = data + 1;
    len = size - 1;

    ngx_http_voucher_limits_init(&dlim);

    tlim.max_code_len = 4;
    tlim.max_str_len = 4;
    tlim.max_items = 2;
    tlim.max_amount = 1000;

    parse(&def, op, body, len, &dlim, 0);
    parse(&tiny, op, body, len, &tlim, 0);

    if (def.rc == 0) {
        check_request(&def, op, &dlim);

    } else {
        check_error(&def);
        CHECK(!is_reason(def.err.reason, NGX_HTTP_VOUCHER_ERR_INTERNAL));
    }

    if (tiny.rc == 0) {
        check_request(&tiny, op, &tlim);

    } else {
        check_error(&tiny);
        CHECK(!is_reason(tiny.err.reason, NGX_HTTP_VOUCHER_ERR_INTERNAL));
    }

    /* tiny limits are stricter in every respect */
    if (tiny.rc == 0) {
        CHECK(def.rc == 0);
        CHECK(tiny.req.amount == def.req.amount);
        CHECK(tiny.req.nitems == def.req.nitems);
    }

    /* whether the body is JSON and an object does not depend on limits */
    if (def.rc != 0 && tiny.rc != 0) {
        CHECK(is_reason(def.err.reason, NGX_HTTP_VOUCHER_ERR_INVALID_JSON)
              == is_reason(tiny.err.reason,
                           NGX_HTTP_VOUCHER_ERR_INVALID_JSON));
        CHECK(is_reason(def.err.reason, NGX_HTTP_VOUCHER_ERR_INVALID_REQUEST)
              == is_reason(tiny.err.reason,
                           NGX_HTTP_VOUCHER_ERR_INVALID_REQUEST));
        CHECK(is_reason(def.err.reason, NGX_HTTP_VOUCHER_ERR_DUPLICATE_FIELD)
              == is_reason(tiny.err.reason,
                           NGX_HTTP_VOUCHER_ERR_DUPLICATE_FIELD));
    }

    /* a duplicate names no field: jansson does not say which key */
    if (is_reason(def.err.reason, NGX_HTTP_VOUCHER_ERR_DUPLICATE_FIELD)) {
        CHECK(def.err.field[0] == '\0');
    }

    /*
     * The arena holds exactly the strings with their NULs and the items
     * (plus at most alignment padding), so "need" bytes are enough and
     * "need - 1" without the padding are not.  A short arena may only
     * ever cause an internal error.
     */

    if (def.rc == 0) {
        /* two arrays at most (items, codes), each maybe padded */
        need = arena_used(&def.req) + 2 * (sizeof(int64_t) - 1);
        CHECK(need <= def.size);

        parse(&small, op, body, len, &dlim, def.size - need);
        check_request(&small, op, &dlim);
        CHECK(small.req.amount == def.req.amount);
        CHECK(small.req.nitems == def.req.nitems);
        CHECK(small.req.code.len == def.req.code.len);
        free(small.arena);

        /* (a stack of no codes without a customer uses no arena at all) */
        need -= 2 * (sizeof(int64_t) - 1);

        if (need > 0) {
            parse(&small, op, body, len, &dlim, def.size - need + 1);
            check_error(&small);
            CHECK(is_reason(small.err.reason,
                            NGX_HTTP_VOUCHER_ERR_INTERNAL));
            free(small.arena);
        }

    } else {
        parse(&small, op, body, len, &dlim, def.size / 2 + data[0]);

        if (small.rc == 0) {
            check_request(&small, op, &dlim);
        }

        CHECK(small.rc != 0);
        check_error(&small);

        if (!is_reason(small.err.reason, NGX_HTTP_VOUCHER_ERR_INTERNAL)) {
            CHECK(strcmp(small.err.reason, def.err.reason) == 0);
            CHECK(strcmp(small.err.field, def.err.field) == 0);
        }

        free(small.arena);
    }

    free(def.arena);
    free(tiny.arena);

    check_code_oracle(body, len, &dlim);
    check_code_oracle(body, len, &tlim);

    check_fold_oracle(body, len, "coupon");
    check_fold_oracle(body, len, "idempotency_key");
    check_fold_oracle(body, len, "office");

    return 0;
}
