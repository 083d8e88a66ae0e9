
/*
 * Copyright (C) ngx_voucher authors
 *
 * The positional "ok" reply, decoded: see ngx_http_voucher_ok.h.
 */


#include <string.h>

#include <hiredis/hiredis.h>

#include "ngx_http_voucher_ok.h"


#define ngx_http_voucher_ok_field(name, bit, type)                           \
    { name, sizeof(name) - 1, bit, type }


const ngx_http_voucher_ok_field_t
    ngx_http_voucher_ok_fields[NGX_HTTP_VOUCHER_OK_N] =
{
    ngx_http_voucher_ok_field("code", 0, REDIS_REPLY_STRING),
    ngx_http_voucher_ok_field("campaign", 0, REDIS_REPLY_STRING),
    ngx_http_voucher_ok_field("customer", 1, REDIS_REPLY_STRING),
    ngx_http_voucher_ok_field("discount", 0, REDIS_REPLY_INTEGER),
    ngx_http_voucher_ok_field("kind", 0, REDIS_REPLY_STRING),
    ngx_http_voucher_ok_field("value", 2, REDIS_REPLY_INTEGER),
    ngx_http_voucher_ok_field("percent_bp", 4, REDIS_REPLY_INTEGER),
    ngx_http_voucher_ok_field("eligible_amount", 0, REDIS_REPLY_INTEGER),
    ngx_http_voucher_ok_field("cap", 8, REDIS_REPLY_INTEGER),
    ngx_http_voucher_ok_field("capped_by", 16, REDIS_REPLY_STRING),
    ngx_http_voucher_ok_field("order_amount", 0, REDIS_REPLY_INTEGER),
    ngx_http_voucher_ok_field("amount_after", 0, REDIS_REPLY_INTEGER),
    ngx_http_voucher_ok_field("uses_left", 32, REDIS_REPLY_INTEGER),
    ngx_http_voucher_ok_field("balance", 64, REDIS_REPLY_INTEGER),
    ngx_http_voucher_ok_field("expires_at", 128, REDIS_REPLY_INTEGER),
    ngx_http_voucher_ok_field("redemption_id", 256, REDIS_REPLY_STRING),
    ngx_http_voucher_ok_field("hold_expires_at", 512, REDIS_REPLY_INTEGER)
};


int
ngx_http_voucher_ok_decode(redisReply *reply, ngx_http_voucher_ok_t *ok)
{
    size_t                              i, n;
    unsigned                            f;
    long long                           mask;
    redisReply                         *first, *v;
    const ngx_http_voucher_ok_field_t  *fd;

    memset(ok, 0, sizeof(ngx_http_voucher_ok_t));

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements == 0
        || (reply->element[0]->type != REDIS_REPLY_STRING
            && reply->element[0]->type != REDIS_REPLY_STATUS))
    {
        return -1;
    }

    first = reply->element[0];
    n = reply->elements;
    i = 1;

    if (n >= 2 && reply->element[1]->type == REDIS_REPLY_INTEGER
        && first->len == 2 && first->str[0] == 'o' && first->str[1] == 'k')
    {
        mask = reply->element[1]->integer;

        /* unknown bits, or a value both as value and as percent_bp */

        if (mask < 0 || (mask & ~(long long) NGX_HTTP_VOUCHER_OK_MASK)
            || (mask & 6) == 6)
        {
            return -1;
        }

        i = 2;

        for (f = 0; f < NGX_HTTP_VOUCHER_OK_N; f++) {
            fd = &ngx_http_voucher_ok_fields[f];

            if (fd->bit && !(mask & fd->bit)) {
                continue;
            }

            if (i == n) {
                return -1;
            }

            v = reply->element[i++];

            if (v->type != fd->type) {
                return -1;
            }

            ok->value[f] = v;
        }

        ok->positional = 1;
        ok->replayed = (mask & NGX_HTTP_VOUCHER_OK_REPLAYED) ? 1 : 0;
    }

    if ((n - i) % 2) {
        return -1;
    }

    ok->pairs = i;

    if (ngx_http_voucher_ok_pair(reply, ok, "replayed", 8)) {
        ok->replayed = 1;
    }

    return 0;
}


redisReply *
ngx_http_voucher_ok_get(redisReply *reply, ngx_http_voucher_ok_t *ok,
    unsigned field)
{
    if (field >= NGX_HTTP_VOUCHER_OK_N) {
        return NULL;
    }

    if (ok->positional) {
        return ok->value[field];
    }

    return ngx_http_voucher_ok_pair(reply, ok,
                                    ngx_http_voucher_ok_fields[field].name,
                                    ngx_http_voucher_ok_fields[field].len);
}


redisReply *
ngx_http_voucher_ok_pair(redisReply *reply, ngx_http_voucher_ok_t *ok,
    const char *name, size_t len)
{
    size_t       i;
    redisReply  *k;

    for (i = ok->pairs; i + 1 < reply->elements; i += 2) {
        k = reply->element[i];

        if (k->type == REDIS_REPLY_STRING && k->len == len
            && memcmp(k->str, name, len) == 0)
        {
            return reply->element[i + 1];
        }
    }

    return NULL;
}
