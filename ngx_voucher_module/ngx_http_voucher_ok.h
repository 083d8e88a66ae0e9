
/*
 * Copyright (C) ngx_voucher authors
 *
 * The "ok" reply of voucher_validate, voucher_validate_limited,
 * voucher_redeem and voucher_reserve is positional (redis/PROTOCOL.md):
 * {"ok", mask, values..., [k, v]*}, the values in a fixed order, an
 * optional one only when its bit is in the mask.  This decodes it, and
 * any other reply ({reason, k, v, ...}) as far as finding its pairs.  Pure C on top of hiredis' redisReply, no nginx dependency, so
 * cmocka drives it directly.
 */


#ifndef _NGX_HTTP_VOUCHER_OK_H_INCLUDED_
#define _NGX_HTTP_VOUCHER_OK_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* the values, in the order of the reply; the JSON names them so */
#define NGX_HTTP_VOUCHER_OK_CODE             0
#define NGX_HTTP_VOUCHER_OK_CAMPAIGN         1
#define NGX_HTTP_VOUCHER_OK_CUSTOMER         2
#define NGX_HTTP_VOUCHER_OK_DISCOUNT         3
#define NGX_HTTP_VOUCHER_OK_KIND             4    /* computation.* ... */
#define NGX_HTTP_VOUCHER_OK_VALUE            5
#define NGX_HTTP_VOUCHER_OK_PERCENT_BP       6
#define NGX_HTTP_VOUCHER_OK_ELIGIBLE_AMOUNT  7
#define NGX_HTTP_VOUCHER_OK_CAP              8
#define NGX_HTTP_VOUCHER_OK_CAPPED_BY        9    /* ... to here */
#define NGX_HTTP_VOUCHER_OK_ORDER_AMOUNT     10
#define NGX_HTTP_VOUCHER_OK_AMOUNT_AFTER     11
#define NGX_HTTP_VOUCHER_OK_USES_LEFT        12
#define NGX_HTTP_VOUCHER_OK_BALANCE          13
#define NGX_HTTP_VOUCHER_OK_EXPIRES_AT       14
#define NGX_HTTP_VOUCHER_OK_REDEMPTION_ID    15
#define NGX_HTTP_VOUCHER_OK_HOLD_EXPIRES_AT  16   /* "status":"reserved" */
#define NGX_HTTP_VOUCHER_OK_N                17

/* the mask's bits besides those of the optional values */
#define NGX_HTTP_VOUCHER_OK_REPLAYED         1024
#define NGX_HTTP_VOUCHER_OK_MASK             2047


struct redisReply;

typedef struct {
    /* a value, or NULL: absent, or not a positional reply */
    struct redisReply  *value[NGX_HTTP_VOUCHER_OK_N];
    /* the index of the first pair: 1 for {reason, k, v, ...} */
    size_t              pairs;
    unsigned            positional:1;
    unsigned            replayed:1;
} ngx_http_voucher_ok_t;


typedef struct {
    const char         *name;
    size_t              len;
    /* its bit in the mask, 0 when always there */
    unsigned            bit;
    /* REDIS_REPLY_STRING or REDIS_REPLY_INTEGER */
    int                 type;
} ngx_http_voucher_ok_field_t;


extern const ngx_http_voucher_ok_field_t
    ngx_http_voucher_ok_fields[NGX_HTTP_VOUCHER_OK_N];

/*
 * 0, or -1 for a reply of neither shape: not an array of at least one
 * string; a positional reply whose mask or count of elements disagree or
 * whose value has the wrong type; pairs not paired.
 */
int ngx_http_voucher_ok_decode(struct redisReply *reply,
    ngx_http_voucher_ok_t *ok);

/* a top-level value by its index: positional, or found among the pairs */
struct redisReply *ngx_http_voucher_ok_get(struct redisReply *reply,
    ngx_http_voucher_ok_t *ok, unsigned field);

/* the value of the pair named so, or NULL */
struct redisReply *ngx_http_voucher_ok_pair(struct redisReply *reply,
    ngx_http_voucher_ok_t *ok, const char *name, size_t len);


#endif /* _NGX_HTTP_VOUCHER_OK_H_INCLUDED_ */
