
/*
 * Copyright (C) ngx_voucher authors
 *
 * Answers: the reason table (reason -> HTTP status and message) and the
 * JSON rendering of what the Redis function returned.
 *
 * A function replies with a flat array {reason, k1, v1, k2, v2, ...};
 * a value is an integer, a string, or a nested array of pairs, which
 * becomes a JSON object, or a nested array whose first element is the
 * status reply "[]", whose other elements become a JSON array (of
 * objects when they are arrays of pairs).  The "ok" of validate, redeem
 * and reserve is positional instead, {"ok", mask, values..., k1, v1, ...}
 * (ngx_http_voucher_ok.h): its names are written from the table of its
 * fields.
 */


#include "ngx_http_voucher.h"

#include <hiredis/hiredis.h>


typedef struct {
    ngx_str_t    reason;
    ngx_uint_t   status;
    ngx_str_t    message;
} ngx_http_voucher_reason_t;


#define ngx_http_voucher_reason(r, s, m)                                     \
    { ngx_string(r), s, ngx_string(m) }

/* a JSON string of len bytes takes at most this, quotes included */
#define ngx_http_voucher_json_string_max(len)  (2 + 6 * (size_t) (len))

#define NGX_HTTP_VOUCHER_REPLY_SCRATCH  8192


static ngx_http_voucher_reason_t  ngx_http_voucher_reasons[] = {

    /* the code and its campaign */
    ngx_http_voucher_reason("not_found", 404,
        "The code does not exist."),
    ngx_http_voucher_reason("code_inactive", 409,
        "The code has been disabled."),
    ngx_http_voucher_reason("campaign_inactive", 409,
        "The code's campaign is not active."),
    ngx_http_voucher_reason("not_started", 409,
        "The code is not valid yet."),
    ngx_http_voucher_reason("expired", 409,
        "The code has expired."),
    ngx_http_voucher_reason("outside_window", 409,
        "The code is not valid on this day or at this hour."),

    /* who uses it, and how often */
    ngx_http_voucher_reason("customer_required", 409,
        "This code needs a customer."),
    ngx_http_voucher_reason("customer_mismatch", 409,
        "This code belongs to another customer."),
    ngx_http_voucher_reason("code_exhausted", 409,
        "The code has been used as many times as it may be."),
    ngx_http_voucher_reason("balance_exhausted", 409,
        "The gift card has no balance left."),
    ngx_http_voucher_reason("campaign_exhausted", 409,
        "The campaign has given all the redemptions it may."),
    ngx_http_voucher_reason("campaign_budget_exhausted", 409,
        "The campaign's discount budget cannot cover this order."),
    ngx_http_voucher_reason("customer_limit", 409,
        "The customer has used this campaign as often as it allows."),
    ngx_http_voucher_reason("customer_code_limit", 409,
        "The customer has used this code as often as it allows."),
    ngx_http_voucher_reason("customer_period_limit", 409,
        "The customer has used this campaign as often as it allows in "
        "this period."),
    ngx_http_voucher_reason("customer_period_amount", 409,
        "The customer's discount in this period would exceed what the "
        "campaign allows."),
    ngx_http_voucher_reason("customer_amount_limit", 409,
        "The customer's total discount would exceed what the campaign "
        "allows."),

    /* the order */
    ngx_http_voucher_reason("currency_mismatch", 409,
        "The code does not apply to orders in this currency."),
    ngx_http_voucher_reason("order_below_minimum", 409,
        "The order is below the code's minimum amount."),
    ngx_http_voucher_reason("items_required", 409,
        "This code applies to some items only: send the order's items."),
    ngx_http_voucher_reason("no_matching_items", 409,
        "No item of the order qualifies for this code."),
    ngx_http_voucher_reason("free_item_missing", 409,
        "The order does not hold the free item this code gives."),
    ngx_http_voucher_reason("not_enough_items", 409,
        "The order holds too few qualifying items for this code."),
    ngx_http_voucher_reason("no_shipping_line", 409,
        "The order has no shipping line for this code to discount."),
    ngx_http_voucher_reason("condition_not_met", 409,
        "The order or the customer does not meet a condition of this "
        "code."),

    /* loyalty: tiers and points paying */
    ngx_http_voucher_reason("tier_not_eligible", 409,
        "This code is for members of other loyalty tiers."),
    ngx_http_voucher_reason("no_programme", 409,
        "There is no loyalty programme."),
    ngx_http_voucher_reason("points_not_accepted", 409,
        "The loyalty programme does not take points as payment."),
    ngx_http_voucher_reason("insufficient_points", 409,
        "The customer has fewer active points than asked for."),
    ngx_http_voucher_reason("invalid_points", 400,
        "The points must be a whole number from 1."),
    ngx_http_voucher_reason("already_earned", 409,
        "This order has earned its points already."),
    ngx_http_voucher_reason("programme_paused", 409,
        "The loyalty programme is paused: nothing is earned now."),

    /* idempotency and rollback */
    ngx_http_voucher_reason("idempotency_conflict", 422,
        "This idempotency key was used for a different request."),
    ngx_http_voucher_reason("event_conflict", 422,
        "This event id was posted before with a different body."),
    ngx_http_voucher_reason("redemption_not_found", 404,
        "No such redemption."),
    ngx_http_voucher_reason("already_rolled_back", 409,
        "The redemption has already been rolled back."),
    ngx_http_voucher_reason("partial_rollback_unsupported", 409,
        "Only a gift-card redemption can be rolled back in part."),
    ngx_http_voucher_reason("rollback_exceeds_redemption", 409,
        "The amount is more than what is left to roll back."),

    /* reservations (two-phase redeem) */
    ngx_http_voucher_reason("not_a_reservation", 409,
        "This redemption was not made as a reservation."),
    ngx_http_voucher_reason("reservation_confirmed", 409,
        "The reservation is already confirmed; roll it back instead."),
    ngx_http_voucher_reason("reservation_released", 409,
        "The reservation was released; its uses are back."),
    ngx_http_voucher_reason("reservation_expired", 409,
        "The reservation was not confirmed in time; its uses are back."),
    ngx_http_voucher_reason("reservation_rolled_back", 409,
        "The reservation has been rolled back."),
    ngx_http_voucher_reason("reservation_in_progress", 409,
        "An earlier attempt with this idempotency key still holds the code; "
        "it will be confirmed or released."),

    /* the wallet, the cart */
    ngx_http_voucher_reason("wallet_full", 409,
        "The customer's wallet holds as many codes as it may."),
    ngx_http_voucher_reason("channel_mismatch", 409,
        "The code does not apply to orders from this channel."),

    /* several codes on one order */
    ngx_http_voucher_reason("stack_exclusive", 409,
        "This code cannot be combined with other codes."),
    ngx_http_voucher_reason("stack_category_conflict", 409,
        "Two codes of the same category cannot be combined."),
    ngx_http_voucher_reason("stack_too_many_codes", 409,
        "More codes than one order may combine."),
    ngx_http_voucher_reason("stack_no_discount", 409,
        "This code adds no discount to the order after the others."),

    /* the request */
    ngx_http_voucher_reason("invalid_json", 400,
        "The body is not valid JSON."),
    ngx_http_voucher_reason("invalid_request", 400,
        "The body must be a JSON object."),
    ngx_http_voucher_reason("unknown_field", 400,
        "The request has a field this API does not know."),
    ngx_http_voucher_reason("duplicate_field", 400,
        "A field appears twice in the body, or in another letter case."),
    ngx_http_voucher_reason("missing_field", 400,
        "A required field is missing."),
    ngx_http_voucher_reason("invalid_field", 400,
        "A field has a wrong type or value."),
    ngx_http_voucher_reason("invalid_code", 400,
        "The code is empty, too long or has characters codes never have."),
    ngx_http_voucher_reason("method_not_allowed", 405,
        "Use POST."),
    ngx_http_voucher_reason("body_too_large", 413,
        "The body is larger than voucher_max_body_size."),
    ngx_http_voucher_reason("unsupported_media_type", 415,
        "Send the body as Content-Type: application/json."),
    ngx_http_voucher_reason("code_malformed", 404,
        "The code matches no format this shop issues (voucher_code_debug)."),
    ngx_http_voucher_reason("code_forged", 404,
        "The code's check characters are wrong (voucher_code_debug)."),
    ngx_http_voucher_reason("rate_limited", 429,
        "Too many attempts; try again later."),
    ngx_http_voucher_reason("locked_out", 429,
        "Too many bad codes from here; try again later."),

    /* the store */
    ngx_http_voucher_reason("store_unavailable", 503,
        "The voucher store cannot be reached or cannot take writes now; "
        "nothing was redeemed unless a retry with the same idempotency key "
        "says so."),
    ngx_http_voucher_reason("store_timeout", 503,
        "The voucher store did not answer in time; retry with the same "
        "idempotency key to learn the outcome."),
    ngx_http_voucher_reason("internal_error", 500,
        "Internal error."),

    { ngx_null_string, 0, ngx_null_string }
};


static ngx_http_voucher_reason_t  ngx_http_voucher_reason_unknown =
    ngx_http_voucher_reason("", 409, "The code was rejected.");


typedef struct {
    u_char      *data;
    size_t       len;
    ngx_uint_t   status;
    ngx_uint_t   replayed;
    int64_t      retry_ms;
    ngx_int_t    reason;     /* its slot in voucher_metrics */
} ngx_http_voucher_answer_t;


static ngx_http_voucher_reason_t *ngx_http_voucher_find_reason(u_char *p,
    size_t len);
static ngx_int_t ngx_http_voucher_render(ngx_http_request_t *r,
    ngx_int_t op, redisReply *reply, ngx_http_voucher_ok_t *ok,
    ngx_http_voucher_answer_t *a);
static size_t ngx_http_voucher_json_ok_max(ngx_http_voucher_ok_t *ok);
static u_char *ngx_http_voucher_json_ok(u_char *p, ngx_http_voucher_ok_t *ok);
static ngx_int_t ngx_http_voucher_render_not_found(ngx_http_request_t *r,
    ngx_int_t op, u_char *code, size_t len, ngx_http_voucher_answer_t *a);
static u_char *ngx_http_voucher_answer_buf(ngx_http_request_t *r,
    size_t max);
static u_char *ngx_http_voucher_answer_keep(ngx_http_request_t *r,
    u_char *buf, size_t len);
static size_t ngx_http_voucher_json_pairs_max(redisReply **el, size_t n,
    ngx_uint_t depth);
static u_char *ngx_http_voucher_json_pairs(u_char *p, redisReply **el,
    size_t n, ngx_uint_t depth);
static ngx_int_t ngx_http_voucher_json_list_first(redisReply *v);
static size_t ngx_http_voucher_json_value_max(redisReply *v,
    ngx_uint_t depth);
static u_char *ngx_http_voucher_json_value(u_char *p, redisReply *v,
    ngx_uint_t depth);
static u_char *ngx_http_voucher_json_string(u_char *p, u_char *s,
    size_t len);
static ngx_int_t ngx_http_voucher_output(ngx_http_request_t *r,
    ngx_int_t op, ngx_int_t reason, ngx_uint_t status, u_char *p, size_t len,
    ngx_uint_t replayed, int64_t retry_ms);
static ngx_str_t *ngx_http_voucher_verb(ngx_int_t op);


/* answers are written here first: the worker writes one at a time */
static u_char  ngx_http_voucher_reply_scratch[NGX_HTTP_VOUCHER_REPLY_SCRATCH];


static ngx_str_t  ngx_http_voucher_verbs[] = {
    ngx_string("valid"),
    ngx_string("redeemed"),
    ngx_string("rolled_back"),
    ngx_string("reserved"),
    ngx_string("confirmed"),
    ngx_string("released"),
    ngx_string("wallet"),
    ngx_string("saved"),
    ngx_string("qualified"),
    ngx_string("earned"),
    ngx_string("balance"),
    ngx_string("history"),
    ngx_string("accepted")
};


static ngx_str_t *
ngx_http_voucher_verb(ngx_int_t op)
{
    if (op < NGX_HTTP_VOUCHER_OP_VALIDATE || op > NGX_HTTP_VOUCHER_OP_LAST) {
        op = NGX_HTTP_VOUCHER_OP_VALIDATE;
    }

    return &ngx_http_voucher_verbs[op - NGX_HTTP_VOUCHER_OP_VALIDATE];
}


static ngx_http_voucher_reason_t *
ngx_http_voucher_find_reason(u_char *p, size_t len)
{
    ngx_http_voucher_reason_t  *rs;

    for (rs = ngx_http_voucher_reasons; rs->reason.len; rs++) {
        if (rs->reason.len == len && ngx_strncmp(rs->reason.data, p, len) == 0)
        {
            return rs;
        }
    }

    return NULL;
}


/* a reason's place in the table, or -1; for voucher_metrics */

ngx_int_t
ngx_http_voucher_reason_index(u_char *p, size_t len)
{
    ngx_http_voucher_reason_t  *rs;

    rs = ngx_http_voucher_find_reason(p, len);

    return rs ? rs - ngx_http_voucher_reasons : -1;
}


/* a reason's slot in voucher_metrics ("ok" too); unknown: "other" */

ngx_int_t
ngx_http_voucher_reason_slot(u_char *p, size_t len)
{
    ngx_int_t  i;

    if (len == 2 && p[0] == 'o' && p[1] == 'k') {
        return NGX_HTTP_VOUCHER_M_R_OK;
    }

    i = ngx_http_voucher_reason_index(p, len);

    return i < 0 ? NGX_HTTP_VOUCHER_M_R_OTHER : NGX_HTTP_VOUCHER_M_R_TABLE + i;
}


ngx_str_t *
ngx_http_voucher_reason_name(ngx_uint_t i)
{
    if (i >= sizeof(ngx_http_voucher_reasons)
             / sizeof(ngx_http_voucher_reason_t) - 1)
    {
        return NULL;
    }

    return &ngx_http_voucher_reasons[i].reason;
}


/*
 * {"<verb>":false,"reason":"...","message":"...","field":"..."}
 */

ngx_int_t
ngx_http_voucher_send_error(ngx_http_request_t *r, ngx_int_t op,
    const char *reason, const char *field, const char *message)
{
    u_char                     *p, *buf;
    size_t                      len, flen, mlen;
    ngx_str_t                  *verb;
    ngx_http_voucher_reason_t  *rs;

    rs = ngx_http_voucher_find_reason((u_char *) reason, ngx_strlen(reason));
    if (rs == NULL) {
        rs = ngx_http_voucher_find_reason((u_char *) "internal_error",
                                          sizeof("internal_error") - 1);
    }

    verb = ngx_http_voucher_verb(op);

    flen = field ? ngx_strlen(field) : 0;

    if (message) {
        mlen = ngx_strlen(message);

    } else {
        message = (const char *) rs->message.data;
        mlen = rs->message.len;
    }

    len = sizeof("{\"\":false,\"reason\":,\"message\":,\"field\":}") - 1
          + verb->len
          + ngx_http_voucher_json_string_max(rs->reason.len)
          + ngx_http_voucher_json_string_max(mlen)
          + ngx_http_voucher_json_string_max(flen);

    buf = ngx_http_voucher_answer_buf(r, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = buf;
    *p++ = '{';
    *p++ = '"';
    p = ngx_cpymem(p, verb->data, verb->len);
    p = ngx_cpymem(p, "\":false,\"reason\":",
                   sizeof("\":false,\"reason\":") - 1);
    p = ngx_http_voucher_json_string(p, rs->reason.data, rs->reason.len);
    p = ngx_cpymem(p, ",\"message\":", sizeof(",\"message\":") - 1);
    p = ngx_http_voucher_json_string(p, (u_char *) message, mlen);

    if (field) {
        p = ngx_cpymem(p, ",\"field\":", sizeof(",\"field\":") - 1);
        p = ngx_http_voucher_json_string(p, (u_char *) field, flen);
    }

    *p++ = '}';

    len = p - buf;

    buf = ngx_http_voucher_answer_keep(r, buf, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_voucher_output(r, op, NGX_HTTP_VOUCHER_M_R_TABLE
                                          + (rs - ngx_http_voucher_reasons),
                                   rs->status, buf, len, 0, -1);
}


/*
 * A code the offline checks refused: the very answer Redis gives for an
 * unknown code, rendered by the same path, so the two cannot be told apart.
 * The answer's code comes last: the rest is rendered once per operation
 * (for an empty code, less its "" and the closing brace) and kept.
 */

ngx_int_t
ngx_http_voucher_send_not_found(ngx_http_request_t *r, ngx_int_t op,
    u_char *code, size_t len)
{
    u_char                     *p, *buf;
    size_t                      max;
    ngx_uint_t                  i;
    ngx_http_voucher_answer_t   a;

    static ngx_str_t            prefix[NGX_HTTP_VOUCHER_OP_LAST];
    static ngx_uint_t           status[NGX_HTTP_VOUCHER_OP_LAST];
    static ngx_int_t            reason[NGX_HTTP_VOUCHER_OP_LAST];
    static u_char               data[NGX_HTTP_VOUCHER_OP_LAST][256];

    i = ngx_http_voucher_verb(op) - ngx_http_voucher_verbs;

    if (prefix[i].data == NULL) {
        if (ngx_http_voucher_render_not_found(r, op, (u_char *) "", 0, &a)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (a.len < 3 || a.len - 3 > sizeof(data[i])
            || ngx_strncmp(a.data + a.len - 3, "\"\"}", 3) != 0
            || a.replayed || a.retry_ms != -1)
        {
            /* not the shape expected: rendered in full each time */

            if (ngx_http_voucher_render_not_found(r, op, code, len, &a)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_voucher_output(r, op, a.reason, a.status,
                                           a.data, a.len, a.replayed,
                                           a.retry_ms);
        }

        ngx_memcpy(data[i], a.data, a.len - 3);

        prefix[i].len = a.len - 3;
        prefix[i].data = data[i];
        status[i] = a.status;
        reason[i] = a.reason;
    }

    max = prefix[i].len + ngx_http_voucher_json_string_max(len) + 1;

    buf = ngx_http_voucher_answer_buf(r, max);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(buf, prefix[i].data, prefix[i].len);
    p = ngx_http_voucher_json_string(p, code, len);
    *p++ = '}';

    len = p - buf;

    buf = ngx_http_voucher_answer_keep(r, buf, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_voucher_output(r, op, reason[i], status[i], buf, len, 0,
                                   -1);
}


static ngx_int_t
ngx_http_voucher_render_not_found(ngx_http_request_t *r, ngx_int_t op,
    u_char *code, size_t len, ngx_http_voucher_answer_t *a)
{
    redisReply             reply, el[3], *els[3];
    ngx_http_voucher_ok_t  ok;

    ngx_memzero(el, sizeof(el));

    el[0].type = REDIS_REPLY_STRING;
    el[0].str = "not_found";
    el[0].len = sizeof("not_found") - 1;
    el[1].type = REDIS_REPLY_STRING;
    el[1].str = "code";
    el[1].len = sizeof("code") - 1;
    el[2].type = REDIS_REPLY_STRING;
    el[2].str = (char *) code;
    el[2].len = len;

    els[0] = &el[0];
    els[1] = &el[1];
    els[2] = &el[2];

    ngx_memzero(&reply, sizeof(redisReply));
    reply.type = REDIS_REPLY_ARRAY;
    reply.elements = 3;
    reply.element = els;

    if (ngx_http_voucher_ok_decode(&reply, &ok) != 0) {
        return NGX_ERROR;
    }

    return ngx_http_voucher_render(r, op, &reply, &ok, a);
}


/*
 * A key the lockout cache holds: the answer Redis gives a locked-out key,
 * rendered by the same path (an operation without a code has no code
 * pair).
 */

ngx_int_t
ngx_http_voucher_send_locked(ngx_http_request_t *r, ngx_int_t op,
    ngx_str_t *code, ngx_str_t *name, int64_t left)
{
    redisReply   reply, el[9], *els[9];
    ngx_uint_t   i, skip;

    ngx_memzero(el, sizeof(el));

#define ngx_http_voucher_el(i, s, l)                                          \
    el[i].type = REDIS_REPLY_STRING; el[i].str = (char *) (s); el[i].len = (l)

    ngx_http_voucher_el(0, "locked_out", sizeof("locked_out") - 1);
    ngx_http_voucher_el(1, "code", 4);
    ngx_http_voucher_el(2, code->data, code->len);
    ngx_http_voucher_el(3, "limit", 5);
    ngx_http_voucher_el(4, name->data, name->len);
    ngx_http_voucher_el(5, "retry_after_ms", sizeof("retry_after_ms") - 1);
    el[6].type = REDIS_REPLY_INTEGER;
    el[6].integer = left;
    ngx_http_voucher_el(7, "_limit", 6);
    ngx_http_voucher_el(8, "LOCKED", 6);

#undef ngx_http_voucher_el

    skip = ngx_http_voucher_loyalty_op(op) ? 2 : 0;

    els[0] = &el[0];

    for (i = 1 + skip; i < 9; i++) {
        els[i - skip] = &el[i];
    }

    ngx_memzero(&reply, sizeof(redisReply));
    reply.type = REDIS_REPLY_ARRAY;
    reply.elements = 9 - skip;
    reply.element = els;

    return ngx_http_voucher_send_reply(r, op, &reply, NULL);
}


/* validate with voucher_validate_fail_open on, while Redis is away */

ngx_int_t
ngx_http_voucher_send_unverified(ngx_http_request_t *r, ngx_str_t *code)
{
    u_char  *p, *buf;
    size_t   len;

    len = sizeof("{\"valid\":true,\"unverified\":true,\"code\":}") - 1
          + ngx_http_voucher_json_string_max(code->len);

    buf = ngx_http_voucher_answer_buf(r, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(buf, "{\"valid\":true,\"unverified\":true,\"code\":",
                   sizeof("{\"valid\":true,\"unverified\":true,\"code\":")
                   - 1);
    p = ngx_http_voucher_json_string(p, code->data, code->len);
    *p++ = '}';

    len = p - buf;

    buf = ngx_http_voucher_answer_keep(r, buf, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_voucher_output(r, NGX_HTTP_VOUCHER_OP_VALIDATE,
                                   NGX_HTTP_VOUCHER_M_R_UNVERIFIED,
                                   NGX_HTTP_OK, buf, len, 0, -1);
}


/*
 * ok: the reply decoded by ngx_http_voucher_ok_decode(), or NULL (decoded
 * here; a reply that is not of the expected shape is answered with
 * internal_error)
 */

ngx_int_t
ngx_http_voucher_send_reply(ngx_http_request_t *r, ngx_int_t op,
    void *data, ngx_http_voucher_ok_t *ok)
{
    redisReply                 *reply;
    ngx_http_voucher_ok_t       dec;
    ngx_http_voucher_answer_t   a;

    reply = data;

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "voucher: redis function failed: %s", reply->str);

        if (ngx_strstrn((u_char *) reply->str, "not found", 9 - 1)) {
            /* the library was flushed; it is being loaded again */
            return ngx_http_voucher_send_error(r, op, "store_unavailable",
                                               NULL, NULL);
        }

        return ngx_http_voucher_send_error(r, op, "internal_error",
                                           NULL, NULL);
    }

    if (ok == NULL) {
        ok = &dec;

        if (ngx_http_voucher_ok_decode(reply, ok) != 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "voucher: unexpected reply from redis, type %d, "
                          "%uz elements", reply->type,
                          reply->type == REDIS_REPLY_ARRAY
                          ? reply->elements : 0);
            return ngx_http_voucher_send_error(r, op, "internal_error",
                                               NULL, NULL);
        }
    }

    if (ngx_http_voucher_render(r, op, reply, ok, &a) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_voucher_output(r, op, a.reason, a.status, a.data, a.len,
                                   a.replayed,
                                   a.retry_ms);
}


/*
 * the answer to a reply of the expected shape: {reason, k1, v1, ...}, or
 * the positional "ok"
 */

static ngx_int_t
ngx_http_voucher_render(ngx_http_request_t *r, ngx_int_t op,
    redisReply *reply, ngx_http_voucher_ok_t *okr,
    ngx_http_voucher_answer_t *a)
{
    u_char                       *p, *buf;
    size_t                        len;
    int64_t                       retry_ms;
    ngx_str_t                    *verb;
    ngx_uint_t                    ok, status;
    redisReply                   *reason, *v;
    ngx_http_voucher_reason_t    *rs;
    ngx_http_voucher_loc_conf_t  *vlcf;

    reason = reply->element[0];
    verb = ngx_http_voucher_verb(op);

    ok = (reason->len == 2 && reason->str[0] == 'o' && reason->str[1] == 'k');

    rs = NULL;

    if (ok) {
        status = NGX_HTTP_OK;

    } else {
        rs = ngx_http_voucher_find_reason((u_char *) reason->str,
                                          reason->len);
        if (rs == NULL) {
            rs = &ngx_http_voucher_reason_unknown;
        }

        status = rs->status;
    }

    /*
     * "replayed" (okr->replayed) becomes the Idempotent-Replayed header,
     * not body
     */

    retry_ms = -1;

    v = ngx_http_voucher_ok_pair(reply, okr, "retry_after_ms", 14);

    if (v && v->type == REDIS_REPLY_INTEGER) {
        retry_ms = v->integer;
    }

    if (rs && rs->status == NGX_HTTP_TOO_MANY_REQUESTS) {
        /* voucher_limit_status */
        vlcf = ngx_http_get_module_loc_conf(r, ngx_http_voucher_module);
        status = vlcf->limit_status;
    }

    /* at most this long: one pass writes it */

    len = sizeof("{\"\":false,\"reason\":,\"message\":}") - 1 + verb->len
          + ngx_http_voucher_json_pairs_max(reply->element + okr->pairs,
                                            reply->elements - okr->pairs, 0);

    if (okr->positional) {
        len += ngx_http_voucher_json_ok_max(okr);
    }

    if (rs) {
        len += ngx_http_voucher_json_string_max(reason->len)
               + ngx_http_voucher_json_string_max(rs->message.len);
    }

    buf = ngx_http_voucher_answer_buf(r, len);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    p = buf;
    *p++ = '{';
    *p++ = '"';
    p = ngx_cpymem(p, verb->data, verb->len);

    if (ok) {
        p = ngx_cpymem(p, "\":true", sizeof("\":true") - 1);

    } else {
        p = ngx_cpymem(p, "\":false", sizeof("\":false") - 1);
    }

    if (rs) {
        p = ngx_cpymem(p, ",\"reason\":", sizeof(",\"reason\":") - 1);
        p = ngx_http_voucher_json_string(p, (u_char *) reason->str,
                                         reason->len);
        p = ngx_cpymem(p, ",\"message\":", sizeof(",\"message\":") - 1);
        p = ngx_http_voucher_json_string(p, rs->message.data,
                                         rs->message.len);
    }

    if (okr->positional) {
        p = ngx_http_voucher_json_ok(p, okr);
    }

    p = ngx_http_voucher_json_pairs(p, reply->element + okr->pairs,
                                    reply->elements - okr->pairs, 0);

    *p++ = '}';

    len = p - buf;

    buf = ngx_http_voucher_answer_keep(r, buf, len);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    a->data = buf;
    a->len = len;
    a->status = status;
    a->replayed = okr->replayed;
    a->retry_ms = retry_ms;

    if (rs == NULL) {
        a->reason = NGX_HTTP_VOUCHER_M_R_OK;

    } else if (rs == &ngx_http_voucher_reason_unknown) {
        a->reason = NGX_HTTP_VOUCHER_M_R_OTHER;

    } else {
        a->reason = NGX_HTTP_VOUCHER_M_R_TABLE
                    + (rs - ngx_http_voucher_reasons);
    }

    return NGX_OK;
}


/*
 * An answer is written in one pass into max bytes, its bound, which is
 * several times what it takes: in the worker's scratch buffer, and only
 * what it takes is then kept in the pool.
 */

static u_char *
ngx_http_voucher_answer_buf(ngx_http_request_t *r, size_t max)
{
    if (max <= NGX_HTTP_VOUCHER_REPLY_SCRATCH) {
        return ngx_http_voucher_reply_scratch;
    }

    return ngx_pnalloc(r->pool, max);
}


static u_char *
ngx_http_voucher_answer_keep(ngx_http_request_t *r, u_char *buf, size_t len)
{
    u_char  *p;

    if (buf != ngx_http_voucher_reply_scratch) {
        return buf;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, buf, len);

    return p;
}


/*
 * The most bytes ngx_http_voucher_json_ok() may write: each value as a
 * pair of the pairs below, and the computation's and the reservation's
 * additions.
 */

static size_t
ngx_http_voucher_json_ok_max(ngx_http_voucher_ok_t *ok)
{
    size_t       len;
    ngx_uint_t   f;
    redisReply  *v;

    len = sizeof(",\"computation\":{}") - 1
          + sizeof("\"status\":\"reserved\",") - 1;

    for (f = 0; f < NGX_HTTP_VOUCHER_OK_N; f++) {
        v = ok->value[f];

        if (v == NULL) {
            continue;
        }

        len += sizeof(",\"\":") - 1 + ngx_http_voucher_ok_fields[f].len;

        if (v->type == REDIS_REPLY_INTEGER) {
            len += NGX_INT64_LEN;

        } else {
            len += ngx_http_voucher_json_string_max(v->len);
        }
    }

    return len;
}


/*
 * The values of a positional "ok" as the pairs of the answer, named from
 * the table of fields (plain ASCII: written as they are): ,"code":"..."
 * and so on, kind to capped_by nested in "computation", and a reservation
 * with "status":"reserved" before its hold_expires_at.
 */

static u_char *
ngx_http_voucher_json_ok(u_char *p, ngx_http_voucher_ok_t *ok)
{
    ngx_uint_t                          f;
    redisReply                         *v;
    const ngx_http_voucher_ok_field_t  *fd;

    for (f = 0; f < NGX_HTTP_VOUCHER_OK_N; f++) {
        v = ok->value[f];

        if (v != NULL) {
            fd = &ngx_http_voucher_ok_fields[f];

            if (f == NGX_HTTP_VOUCHER_OK_KIND) {
                p = ngx_cpymem(p, ",\"computation\":{",
                               sizeof(",\"computation\":{") - 1);

            } else {
                *p++ = ',';
            }

            if (f == NGX_HTTP_VOUCHER_OK_HOLD_EXPIRES_AT) {
                p = ngx_cpymem(p, "\"status\":\"reserved\",",
                               sizeof("\"status\":\"reserved\",") - 1);
            }

            *p++ = '"';
            p = ngx_cpymem(p, fd->name, fd->len);
            *p++ = '"';
            *p++ = ':';

            if (v->type == REDIS_REPLY_INTEGER) {
                p = ngx_http_voucher_int64(p, (int64_t) v->integer);

            } else {
                p = ngx_http_voucher_json_string(p, (u_char *) v->str,
                                                 v->len);
            }
        }

        if (f == NGX_HTTP_VOUCHER_OK_CAPPED_BY) {
            *p++ = '}';
        }
    }

    return p;
}


/*
 * The most bytes ngx_http_voucher_json_pairs() may write for these pairs:
 * every pair counted, each byte of a string as an escape of 6.
 */

static size_t
ngx_http_voucher_json_pairs_max(redisReply **el, size_t n, ngx_uint_t depth)
{
    size_t       len, i;
    redisReply  *k, *v;

    len = 0;

    for (i = 0; i + 1 < n; i += 2) {
        k = el[i];
        v = el[i + 1];

        if (k->type != REDIS_REPLY_STRING && k->type != REDIS_REPLY_STATUS) {
            continue;
        }

        /* the comma, the key and the colon */
        len += 2 + ngx_http_voucher_json_string_max(k->len);

        switch (v->type) {

        case REDIS_REPLY_INTEGER:
            len += NGX_INT64_LEN;
            break;

        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
            len += ngx_http_voucher_json_string_max(v->len);
            break;

        case REDIS_REPLY_ARRAY:
            if (depth < 4) {
                len += 2 + ngx_http_voucher_json_value_max(v, depth + 1);
                break;
            }

            /* fall through */

        default:
            len += sizeof("null") - 1;
            break;
        }
    }

    return len;
}


/*
 * Where the elements of a nested array that is a list begin: after a
 * "[]" status reply (the cart's lists), or at 0 when every element is an
 * array (a loyalty history's entries, or none); -1 when it is pairs, an
 * object.
 */

static ngx_int_t
ngx_http_voucher_json_list_first(redisReply *v)
{
    size_t  i;

    if (v->elements > 0
        && v->element[0]->type == REDIS_REPLY_STATUS
        && v->element[0]->len == 2
        && v->element[0]->str[0] == '['
        && v->element[0]->str[1] == ']')
    {
        return 1;
    }

    for (i = 0; i < v->elements; i++) {
        if (v->element[i]->type != REDIS_REPLY_ARRAY) {
            return -1;
        }
    }

    return 0;
}


/*
 * The most bytes a nested array takes inside its brackets: its pairs,
 * or, for a list, each element (an object, a number or a string) and a
 * comma.
 */

static size_t
ngx_http_voucher_json_value_max(redisReply *v, ngx_uint_t depth)
{
    size_t       len, i;
    ngx_int_t    first;
    redisReply  *e;

    first = ngx_http_voucher_json_list_first(v);

    if (first < 0) {
        return ngx_http_voucher_json_pairs_max(v->element, v->elements,
                                               depth);
    }

    len = 0;

    for (i = (size_t) first; i < v->elements; i++) {
        e = v->element[i];

        switch (e->type) {

        case REDIS_REPLY_INTEGER:
            len += 1 + NGX_INT64_LEN;
            break;

        case REDIS_REPLY_STRING:
            len += 1 + ngx_http_voucher_json_string_max(e->len);
            break;

        case REDIS_REPLY_ARRAY:
            if (depth < 4) {
                len += 3 + ngx_http_voucher_json_value_max(e, depth + 1);
                break;
            }

            /* fall through */

        default:
            len += 1 + sizeof("null") - 1;
            break;
        }
    }

    return len;
}


/* a nested array, brackets and all, as ngx_http_voucher_json_value_max() */

static u_char *
ngx_http_voucher_json_value(u_char *p, redisReply *v, ngx_uint_t depth)
{
    size_t       i;
    ngx_int_t    first;
    redisReply  *e;

    first = ngx_http_voucher_json_list_first(v);

    if (first < 0) {
        *p++ = '{';
        p = ngx_http_voucher_json_pairs(p, v->element, v->elements, depth);
        *p++ = '}';
        return p;
    }

    *p++ = '[';

    for (i = (size_t) first; i < v->elements; i++) {
        e = v->element[i];

        if (i > (size_t) first) {
            *p++ = ',';
        }

        switch (e->type) {

        case REDIS_REPLY_INTEGER:
            p = ngx_http_voucher_int64(p, (int64_t) e->integer);
            break;

        case REDIS_REPLY_STRING:
            p = ngx_http_voucher_json_string(p, (u_char *) e->str, e->len);
            break;

        case REDIS_REPLY_ARRAY:
            if (depth < 4) {
                p = ngx_http_voucher_json_value(p, e, depth + 1);
                break;
            }

            /* fall through */

        default:
            p = ngx_cpymem(p, "null", sizeof("null") - 1);
            break;
        }
    }

    *p++ = ']';

    return p;
}


/*
 * Renders pairs as ,"k":v,"k":v (each pair preceded by a comma at the top
 * level; inside nested objects the first pair has none), into a buffer of
 * at least ngx_http_voucher_json_pairs_max() bytes.
 */

static u_char *
ngx_http_voucher_json_pairs(u_char *p, redisReply **el, size_t n,
    ngx_uint_t depth)
{
    size_t       i;
    ngx_uint_t   first;
    redisReply  *k, *v;

    first = (depth != 0);

    for (i = 0; i + 1 < n; i += 2) {
        k = el[i];
        v = el[i + 1];

        if (k->type != REDIS_REPLY_STRING && k->type != REDIS_REPLY_STATUS) {
            continue;
        }

        /* "replayed" is a header; "_..." pairs are for nginx alone */

        if (depth == 0
            && ((k->len == 8 && ngx_strncmp(k->str, "replayed", 8) == 0)
                || (k->len && k->str[0] == '_')))
        {
            continue;
        }

        if (!first) {
            *p++ = ',';
        }

        first = 0;

        p = ngx_http_voucher_json_string(p, (u_char *) k->str, k->len);
        *p++ = ':';

        switch (v->type) {

        case REDIS_REPLY_INTEGER:
            p = ngx_http_voucher_int64(p, (int64_t) v->integer);
            break;

        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
            p = ngx_http_voucher_json_string(p, (u_char *) v->str, v->len);
            break;

        case REDIS_REPLY_ARRAY:
            if (depth < 4) {
                p = ngx_http_voucher_json_value(p, v, depth + 1);
                break;
            }

            /* fall through */

        default:
            p = ngx_cpymem(p, "null", sizeof("null") - 1);
            break;
        }
    }

    return p;
}


/*
 * A JSON string of bytes that came from Redis: escaped as JSON wants
 * (as ngx_escape_json() does), and every byte that is not part of valid
 * UTF-8 (a stray byte, a truncated or overlong sequence, a surrogate)
 * becomes U+FFFD, so an answer is valid JSON whatever was written into
 * Redis.  At most ngx_http_voucher_json_string_max(len) bytes.
 */

static u_char *
ngx_http_voucher_json_string(u_char *p, u_char *s, size_t len)
{
    u_char    *last, *next, *start;
    uint32_t   cp;

    /* the controls, '"', '\\', and every byte >= 0x80 */

    static const u_char  special[256] = {
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
    };

    last = s + len;

    *p++ = '"';

    for ( ;; ) {
        start = s;

        while (s < last && !special[*s]) {
            s++;
        }

        p = ngx_cpymem(p, start, s - start);

        if (s == last) {
            break;
        }

        if (*s < 0x80) {
            p = (u_char *) ngx_escape_json(p, s, 1);
            s++;
            continue;
        }

        next = s;
        cp = ngx_utf8_decode(&next, last - s);

        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            p = ngx_cpymem(p, "\\ufffd", sizeof("\\ufffd") - 1);
            s++;
            continue;
        }

        p = ngx_cpymem(p, s, next - s);
        s = next;
    }

    *p++ = '"';

    return p;
}


/* as ngx_sprintf("%L"), at most NGX_INT64_LEN bytes, but cheaper */

u_char *
ngx_http_voucher_int64(u_char *p, int64_t n)
{
    u_char     buf[NGX_INT64_LEN], *d;
    uint64_t   u;

    if (n < 0) {
        *p++ = '-';
        u = (uint64_t) 0 - (uint64_t) n;

    } else {
        u = (uint64_t) n;
    }

    d = buf + NGX_INT64_LEN;

    do {
        *--d = (u_char) ('0' + u % 10);
        u /= 10;
    } while (u);

    return ngx_cpymem(p, d, buf + NGX_INT64_LEN - d);
}


static ngx_int_t
ngx_http_voucher_output(ngx_http_request_t *r, ngx_int_t op, ngx_int_t reason,
    ngx_uint_t status, u_char *p, size_t len, ngx_uint_t replayed,
    int64_t retry_ms)
{
    u_char                       *value;
    ngx_int_t                     rc;
    ngx_buf_t                    *b;
    ngx_chain_t                   out;
    ngx_table_elt_t              *h;
    ngx_http_voucher_loc_conf_t  *vlcf;

    /* the API's answers; the gate counts its own when the response ends */

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_voucher_module);

    if (vlcf->api) {
        ngx_http_voucher_metrics_request(op, status, reason);
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    if (replayed) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Idempotent-Replayed");
        ngx_str_set(&h->value, "true");
    }

    if (retry_ms >= 0) {
        /* whole seconds, rounded up, never 0, at most a day */
        retry_ms = ngx_min(retry_ms, 86400000);
        retry_ms = ngx_max((retry_ms + 999) / 1000, 1);

        value = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (value == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        h->value.data = value;
        h->value.len = ngx_sprintf(value, "%L", retry_ms) - value;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        /* the header is out: no special response can follow */
        return NGX_ERROR;
    }

    b->pos = p;
    b->last = p + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
