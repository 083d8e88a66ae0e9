
/*
 * Copyright (C) ngx_voucher authors
 *
 * Answers: the reason table (reason -> HTTP status and message) and the
 * JSON rendering of what the Redis function returned.
 *
 * A function replies with a flat array {reason, k1, v1, k2, v2, ...};
 * a value is an integer, a string, or a nested array of pairs, which
 * becomes a JSON object.
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

    /* idempotency and rollback */
    ngx_http_voucher_reason("idempotency_conflict", 422,
        "This idempotency key was used for a different request."),
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

    /* the request */
    ngx_http_voucher_reason("invalid_json", 400,
        "The body is not valid JSON."),
    ngx_http_voucher_reason("invalid_request", 400,
        "The body must be a JSON object."),
    ngx_http_voucher_reason("unknown_field", 400,
        "The request has a field this API does not know."),
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
        "The voucher store cannot be reached; nothing was redeemed unless "
        "a retry with the same idempotency key says so."),
    ngx_http_voucher_reason("store_timeout", 503,
        "The voucher store did not answer in time; retry with the same "
        "idempotency key to learn the outcome."),
    ngx_http_voucher_reason("internal_error", 500,
        "Internal error."),

    { ngx_null_string, 0, ngx_null_string }
};


static ngx_http_voucher_reason_t  ngx_http_voucher_reason_unknown =
    ngx_http_voucher_reason("", 409, "The code was rejected.");


static ngx_http_voucher_reason_t *ngx_http_voucher_find_reason(u_char *p,
    size_t len);
static size_t ngx_http_voucher_json_pairs(u_char *p, redisReply **el,
    size_t n, ngx_uint_t depth);
static u_char *ngx_http_voucher_json_string(u_char *p, u_char *s,
    size_t len);
static size_t ngx_http_voucher_json_string_len(u_char *s, size_t len);
static ngx_int_t ngx_http_voucher_output(ngx_http_request_t *r,
    ngx_uint_t status, u_char *p, size_t len, ngx_uint_t replayed,
    int64_t retry_ms);
static ngx_str_t *ngx_http_voucher_verb(ngx_int_t op);


static ngx_str_t  ngx_http_voucher_verbs[] = {
    ngx_string("valid"),
    ngx_string("redeemed"),
    ngx_string("rolled_back"),
    ngx_string("reserved"),
    ngx_string("confirmed"),
    ngx_string("released")
};


static ngx_str_t *
ngx_http_voucher_verb(ngx_int_t op)
{
    if (op < NGX_HTTP_VOUCHER_OP_VALIDATE || op > NGX_HTTP_VOUCHER_OP_RELEASE)
    {
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
          + ngx_http_voucher_json_string_len(rs->reason.data, rs->reason.len)
          + ngx_http_voucher_json_string_len((u_char *) message, mlen)
          + ngx_http_voucher_json_string_len((u_char *) field, flen);

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(buf, "{\"%V\":false,\"reason\":", verb);
    p = ngx_http_voucher_json_string(p, rs->reason.data, rs->reason.len);
    p = ngx_cpymem(p, ",\"message\":", sizeof(",\"message\":") - 1);
    p = ngx_http_voucher_json_string(p, (u_char *) message, mlen);

    if (field) {
        p = ngx_cpymem(p, ",\"field\":", sizeof(",\"field\":") - 1);
        p = ngx_http_voucher_json_string(p, (u_char *) field, flen);
    }

    *p++ = '}';

    return ngx_http_voucher_output(r, rs->status, buf, p - buf, 0, -1);
}


/*
 * A code the offline checks refused: the very answer Redis gives for an
 * unknown code, rendered by the same path, so the two cannot be told apart.
 */

ngx_int_t
ngx_http_voucher_send_not_found(ngx_http_request_t *r, ngx_int_t op,
    u_char *code, size_t len)
{
    redisReply   reply, el[3], *els[3];

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

    return ngx_http_voucher_send_reply(r, op, &reply);
}


/*
 * A key the lockout cache holds: the answer Redis gives a locked-out key,
 * rendered by the same path.
 */

ngx_int_t
ngx_http_voucher_send_locked(ngx_http_request_t *r, ngx_int_t op,
    ngx_str_t *code, ngx_str_t *name, int64_t left)
{
    redisReply   reply, el[9], *els[9];
    ngx_uint_t   i;

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

    for (i = 0; i < 9; i++) {
        els[i] = &el[i];
    }

    ngx_memzero(&reply, sizeof(redisReply));
    reply.type = REDIS_REPLY_ARRAY;
    reply.elements = 9;
    reply.element = els;

    return ngx_http_voucher_send_reply(r, op, &reply);
}


/* validate with voucher_validate_fail_open on, while Redis is away */

ngx_int_t
ngx_http_voucher_send_unverified(ngx_http_request_t *r, ngx_str_t *code)
{
    u_char  *p, *buf;
    size_t   len;

    len = sizeof("{\"valid\":true,\"unverified\":true,\"code\":}") - 1
          + ngx_http_voucher_json_string_len(code->data, code->len);

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(buf, "{\"valid\":true,\"unverified\":true,\"code\":",
                   sizeof("{\"valid\":true,\"unverified\":true,\"code\":")
                   - 1);
    p = ngx_http_voucher_json_string(p, code->data, code->len);
    *p++ = '}';

    return ngx_http_voucher_output(r, NGX_HTTP_OK, buf, p - buf, 0, -1);
}


ngx_int_t
ngx_http_voucher_send_reply(ngx_http_request_t *r, ngx_int_t op,
    void *data)
{
    u_char                       *p, *buf;
    size_t                        len;
    int64_t                       retry_ms;
    ngx_str_t                    *verb;
    ngx_uint_t                    ok, replayed, status, i;
    redisReply                   *reply, *reason, *k;
    ngx_http_voucher_reason_t    *rs;
    ngx_http_voucher_loc_conf_t  *vlcf;

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

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0
        || reply->elements % 2 == 0
        || (reply->element[0]->type != REDIS_REPLY_STRING
            && reply->element[0]->type != REDIS_REPLY_STATUS))
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "voucher: unexpected reply from redis, type %d",
                      reply->type);
        return ngx_http_voucher_send_error(r, op, "internal_error",
                                           NULL, NULL);
    }

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

    /* "replayed" becomes the Idempotent-Replayed header, not body */

    replayed = 0;
    retry_ms = -1;

    for (i = 1; i + 1 < reply->elements; i += 2) {
        k = reply->element[i];

        if (k->type != REDIS_REPLY_STRING) {
            continue;
        }

        if (k->len == 8 && ngx_strncmp(k->str, "replayed", 8) == 0) {
            replayed = 1;

        } else if (k->len == 14
                   && ngx_strncmp(k->str, "retry_after_ms", 14) == 0
                   && reply->element[i + 1]->type == REDIS_REPLY_INTEGER)
        {
            retry_ms = reply->element[i + 1]->integer;
        }
    }

    if (rs && rs->status == NGX_HTTP_TOO_MANY_REQUESTS) {
        /* voucher_limit_status */
        vlcf = ngx_http_get_module_loc_conf(r, ngx_http_voucher_module);
        status = vlcf->limit_status;
    }

    len = sizeof("{\"\":false,\"reason\":,\"message\":}") - 1 + verb->len
          + ngx_http_voucher_json_pairs(NULL, reply->element + 1,
                                        reply->elements - 1, 0);

    if (rs) {
        len += ngx_http_voucher_json_string_len((u_char *) reason->str,
                                                reason->len)
               + ngx_http_voucher_json_string_len(rs->message.data,
                                                  rs->message.len);
    }

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(buf, "{\"%V\":%s", verb, ok ? "true" : "false");

    if (rs) {
        p = ngx_cpymem(p, ",\"reason\":", sizeof(",\"reason\":") - 1);
        p = ngx_http_voucher_json_string(p, (u_char *) reason->str,
                                         reason->len);
        p = ngx_cpymem(p, ",\"message\":", sizeof(",\"message\":") - 1);
        p = ngx_http_voucher_json_string(p, rs->message.data,
                                         rs->message.len);
    }

    p += ngx_http_voucher_json_pairs(p, reply->element + 1,
                                     reply->elements - 1, 0);

    *p++ = '}';

    return ngx_http_voucher_output(r, status, buf, p - buf, replayed,
                                   retry_ms);
}


/*
 * Renders pairs as ,"k":v,"k":v (each pair preceded by a comma at the top
 * level; inside nested objects the first pair has none).  With p == NULL
 * it only measures.
 */

static size_t
ngx_http_voucher_json_pairs(u_char *p, redisReply **el, size_t n,
    ngx_uint_t depth)
{
    u_char      *start;
    size_t       len, i;
    redisReply  *k, *v;
    u_char       num[NGX_INT64_LEN];

    len = 0;
    start = p;

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

        if (depth == 0 || len) {
            len++;
            if (p) {
                *p++ = ',';
            }
        }

        len += ngx_http_voucher_json_string_len((u_char *) k->str, k->len)
               + 1;

        if (p) {
            p = ngx_http_voucher_json_string(p, (u_char *) k->str, k->len);
            *p++ = ':';
        }

        switch (v->type) {

        case REDIS_REPLY_INTEGER:
            len += ngx_sprintf(num, "%L", (int64_t) v->integer) - num;
            if (p) {
                p = ngx_sprintf(p, "%L", (int64_t) v->integer);
            }
            break;

        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
            len += ngx_http_voucher_json_string_len((u_char *) v->str,
                                                    v->len);
            if (p) {
                p = ngx_http_voucher_json_string(p, (u_char *) v->str,
                                                 v->len);
            }
            break;

        case REDIS_REPLY_ARRAY:
            if (depth < 4) {
                len += 2;
                if (p) {
                    *p++ = '{';
                    p += ngx_http_voucher_json_pairs(p, v->element,
                                                     v->elements, depth + 1);
                    *p++ = '}';

                } else {
                    len += ngx_http_voucher_json_pairs(NULL, v->element,
                                                       v->elements,
                                                       depth + 1);
                }
                break;
            }

            /* fall through */

        default:
            len += 4;
            if (p) {
                p = ngx_cpymem(p, "null", 4);
            }
            break;
        }
    }

    return p ? (size_t) (p - start) : len;
}


/*
 * A JSON string of bytes that came from Redis: escaped as JSON wants, and
 * every byte that is not part of valid UTF-8 (a stray byte, a truncated or
 * overlong sequence, a surrogate) becomes U+FFFD, so an answer is valid
 * JSON whatever was written into Redis.  With p == NULL it only measures.
 */

static size_t
ngx_http_voucher_json_text(u_char *p, u_char *s, size_t len)
{
    u_char    *start, *last, *next, *p0;
    size_t     n;
    uint32_t   cp;

    n = 0;
    p0 = p;
    last = s + len;

    while (s < last) {
        start = s;

        if (*s < 0x80) {
            while (s < last && *s < 0x80) {
                s++;
            }

            if (p) {
                p = (u_char *) ngx_escape_json(p, start, s - start);

            } else {
                n += (s - start) + ngx_escape_json(NULL, start, s - start);
            }

            continue;
        }

        next = s;
        cp = ngx_utf8_decode(&next, last - s);

        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            next = s + 1;
            start = (u_char *) "\\ufffd";
            n += sizeof("\\ufffd") - 1;

        } else {
            n += next - s;
        }

        if (p) {
            p = (start == s) ? ngx_cpymem(p, s, next - s)
                             : ngx_cpymem(p, start, sizeof("\\ufffd") - 1);
        }

        s = next;
    }

    return p ? (size_t) (p - p0) : n;
}


static size_t
ngx_http_voucher_json_string_len(u_char *s, size_t len)
{
    return 2 + ngx_http_voucher_json_text(NULL, s, len);
}


static u_char *
ngx_http_voucher_json_string(u_char *p, u_char *s, size_t len)
{
    *p++ = '"';
    p += ngx_http_voucher_json_text(p, s, len);
    *p++ = '"';

    return p;
}


static ngx_int_t
ngx_http_voucher_output(ngx_http_request_t *r, ngx_uint_t status, u_char *p,
    size_t len, ngx_uint_t replayed, int64_t retry_ms)
{
    u_char           *value;
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

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
