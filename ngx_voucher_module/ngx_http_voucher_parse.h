
/*
 * Copyright (C) ngx_voucher authors
 *
 * The request parser: a JSON body (validate, redeem, rollback, reserve,
 * confirm, release, wallet, wallet_save, qualify; a loyalty earn, balance or
 * history; a storefront event) in,
 * a checked ngx_http_voucher_request_t out.  Pure C on top of jansson, no
 * nginx dependency, so cmocka and libFuzzer can drive it directly.
 */


#ifndef _NGX_HTTP_VOUCHER_PARSE_H_INCLUDED_
#define _NGX_HTTP_VOUCHER_PARSE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_VOUCHER_OP_VALIDATE   1
#define NGX_HTTP_VOUCHER_OP_REDEEM     2
#define NGX_HTTP_VOUCHER_OP_ROLLBACK   3
#define NGX_HTTP_VOUCHER_OP_RESERVE    4   /* redeem, held until confirmed */
#define NGX_HTTP_VOUCHER_OP_CONFIRM    5
#define NGX_HTTP_VOUCHER_OP_RELEASE    6
#define NGX_HTTP_VOUCHER_OP_WALLET     7   /* a page of a customer's wallet */
#define NGX_HTTP_VOUCHER_OP_WALLET_SAVE 8  /* a code into it */
#define NGX_HTTP_VOUCHER_OP_QUALIFY    9   /* the codes that fit an order */
#define NGX_HTTP_VOUCHER_OP_LOYALTY_EARN     10  /* an order's points */
#define NGX_HTTP_VOUCHER_OP_LOYALTY_BALANCE  11
#define NGX_HTTP_VOUCHER_OP_LOYALTY_HISTORY  12
#define NGX_HTTP_VOUCHER_OP_EVENT      13  /* a storefront event */
#define NGX_HTTP_VOUCHER_OP_LAST       13

/* amount, price etc. absent */
#define NGX_HTTP_VOUCHER_UNSET        -1

/* fixed rules, not configurable */
#define NGX_HTTP_VOUCHER_MAX_QUANTITY          1000000
#define NGX_HTTP_VOUCHER_MAX_REDEMPTION_ID_LEN 64
#define NGX_HTTP_VOUCHER_MAX_HOLD_SECONDS      86400
#define NGX_HTTP_VOUCHER_MAX_WALLET_PAGE       100
#define NGX_HTTP_VOUCHER_MAX_CURSOR_LEN        16
/* codes one request may name: a stack, or the codes qualify is to judge */
#define NGX_HTTP_VOUCHER_MAX_CODES             30
#define NGX_HTTP_VOUCHER_MAX_POINTS            10000000000000LL
#define NGX_HTTP_VOUCHER_MAX_HISTORY           100
#define NGX_HTTP_VOUCHER_MAX_EVENT_ID_LEN      64
#define NGX_HTTP_VOUCHER_MAX_EVENT_TYPE_LEN    40
#define NGX_HTTP_VOUCHER_MAX_TIMESTAMP         1099511627776LL  /* 2^40 */
/* an event's "data": the member fields of a signup, see
   ngx_http_voucher_event_attrs[] */
#define NGX_HTTP_VOUCHER_EVENT_ATTRS           7
/* order.metadata, customer_attributes: entries, name and value bytes */
#define NGX_HTTP_VOUCHER_MAX_META              16
#define NGX_HTTP_VOUCHER_MAX_META_NAME         32
#define NGX_HTTP_VOUCHER_MAX_META_VALUE        64

/* ngx_http_voucher_key_fold() */
#define NGX_HTTP_VOUCHER_KEY_OTHER     0
#define NGX_HTTP_VOUCHER_KEY_SAME      1
#define NGX_HTTP_VOUCHER_KEY_VARIANT   2

/* the values of ngx_http_voucher_error_t.reason, compare with strcmp() */
#define NGX_HTTP_VOUCHER_ERR_INVALID_JSON     "invalid_json"
#define NGX_HTTP_VOUCHER_ERR_INVALID_REQUEST  "invalid_request"
#define NGX_HTTP_VOUCHER_ERR_UNKNOWN_FIELD    "unknown_field"
#define NGX_HTTP_VOUCHER_ERR_MISSING_FIELD    "missing_field"
#define NGX_HTTP_VOUCHER_ERR_INVALID_FIELD    "invalid_field"
#define NGX_HTTP_VOUCHER_ERR_INVALID_CODE     "invalid_code"
/* a key twice in one object (the gate: or in another letter case) */
#define NGX_HTTP_VOUCHER_ERR_DUPLICATE_FIELD  "duplicate_field"
/* not the client's fault: bad arguments, arena too small, out of memory */
#define NGX_HTTP_VOUCHER_ERR_INTERNAL         "internal_error"


typedef struct {
    size_t                  len;
    unsigned char          *data;
} ngx_http_voucher_str_t;


typedef struct {
    ngx_http_voucher_str_t  sku;
    ngx_http_voucher_str_t  category;
    int64_t                 price;
    int64_t                 quantity;
} ngx_http_voucher_item_t;


typedef struct {
    int                     op;

    ngx_http_voucher_str_t  code;
    ngx_http_voucher_str_t  customer;
    ngx_http_voucher_str_t  idempotency_key;

    ngx_http_voucher_str_t  order_id;
    ngx_http_voucher_str_t  currency;
    int64_t                 amount;          /* order amount, minor units */

    ngx_http_voucher_item_t *items;
    size_t                  nitems;

    ngx_http_voucher_str_t  redemption_id;   /* rollback, confirm, release */
    int64_t                 rollback_amount; /* rollback, UNSET = whole */
    int64_t                 hold_seconds;    /* reserve, UNSET = default */

    ngx_http_voucher_str_t  cursor;          /* wallet: absent = the start */
    int64_t                 count;           /* wallet, UNSET = default */

    /* a stack (validate, redeem, reserve with "codes"), qualify */
    int                     stack;           /* "codes" given, maybe [] */
    ngx_http_voucher_str_t *codes;           /* instead of code */
    size_t                  ncodes;
    ngx_http_voucher_str_t  channel;         /* order.channel */
    int                     best;            /* qualify: "best": true */
    int64_t                 points;          /* loyalty points to pay with,
                                                0 = none */
    ngx_http_voucher_str_t  meta;            /* "m...": order.metadata and
                                                customer_attributes for
                                                campaign conditions, len 0
                                                = none */
    int64_t                 limit;           /* loyalty history: entries */
    ngx_http_voucher_str_t  before;          /* ... older than this one */

    /* a storefront event (the customer, and a purchase's order, above) */
    ngx_http_voucher_str_t  event_id;
    ngx_http_voucher_str_t  event_type;
    int64_t                 timestamp;       /* unix seconds, UNSET = now */
    ngx_http_voucher_str_t  referral_code;
    ngx_http_voucher_str_t  attrs[NGX_HTTP_VOUCHER_EVENT_ATTRS];

    /* not parsed: a serial series' code, as the offline check decoded it */
    ngx_http_voucher_str_t  series;          /* len 0: not one */
    uint64_t                serial;
} ngx_http_voucher_request_t;


typedef struct {
    size_t                  max_code_len;    /* default 64 */
    size_t                  max_str_len;     /* default 128 */
    size_t                  max_items;       /* default 100 */
    int64_t                 max_amount;      /* default 10^13 */
} ngx_http_voucher_limits_t;


/* the kinds of a field's value */
#define NGX_HTTP_VOUCHER_FIELD_TEXT      0  /* 1..max_str_len, no controls */
#define NGX_HTTP_VOUCHER_FIELD_CODE      1  /* see check_code() */
#define NGX_HTTP_VOUCHER_FIELD_TOKEN     2  /* 1..max_str_len of 0x21-0x7e */
#define NGX_HTTP_VOUCHER_FIELD_CURRENCY  3  /* [A-Z]{3} */
#define NGX_HTTP_VOUCHER_FIELD_RID       4  /* [0-9-]{1,64} */
#define NGX_HTTP_VOUCHER_FIELD_AMOUNT    5  /* an integer, 0..max_amount */
#define NGX_HTTP_VOUCHER_FIELD_COUNT     6  /* an integer, min..max */
#define NGX_HTTP_VOUCHER_FIELD_CURSOR    7  /* 1..16 digits, no leading 0 */
#define NGX_HTTP_VOUCHER_FIELD_NAME      8  /* [a-z][a-z0-9_]*, 1..max */


/*
 * The rule of a field, for the JSON parser and for the gate's values
 * (ngx_http_voucher_check_field()): both refuse the same values.  The
 * parser's messages say which part of the rule a value breaks; the gate
 * answers with the rule's one message.
 */
typedef struct {
    const char             *name;            /* the JSON key */
    const char             *gate;            /* the gate's name, or NULL */
    int                     kind;            /* NGX_HTTP_VOUCHER_FIELD_* */
    int64_t                 min;             /* COUNT: the bounds */
    int64_t                 max;             /* TEXT, TOKEN, NAME: the
                                                longest, 0 = max_str_len */
    const char             *message;         /* the gate's, or NULL: the
                                                parser's */
} ngx_http_voucher_field_t;


/* the rows of ngx_http_voucher_fields[] */
#define NGX_HTTP_VOUCHER_FIELD_CODE_ROW          0
#define NGX_HTTP_VOUCHER_FIELD_CUSTOMER_ROW      1
#define NGX_HTTP_VOUCHER_FIELD_IDEMPOTENCY_ROW   2
#define NGX_HTTP_VOUCHER_FIELD_ORDER_ID_ROW      3
#define NGX_HTTP_VOUCHER_FIELD_ORDER_AMOUNT_ROW  4
#define NGX_HTTP_VOUCHER_FIELD_CURRENCY_ROW      5
#define NGX_HTTP_VOUCHER_FIELD_HOLD_ROW          6
#define NGX_HTTP_VOUCHER_FIELD_SKU_ROW           7
#define NGX_HTTP_VOUCHER_FIELD_CATEGORY_ROW      8
#define NGX_HTTP_VOUCHER_FIELD_PRICE_ROW         9
#define NGX_HTTP_VOUCHER_FIELD_QUANTITY_ROW      10
#define NGX_HTTP_VOUCHER_FIELD_RID_ROW           11
#define NGX_HTTP_VOUCHER_FIELD_ROLLBACK_ROW      12
#define NGX_HTTP_VOUCHER_FIELD_CURSOR_ROW        13
#define NGX_HTTP_VOUCHER_FIELD_PAGE_ROW          14
#define NGX_HTTP_VOUCHER_FIELD_CHANNEL_ROW       15
#define NGX_HTTP_VOUCHER_FIELD_POINTS_ROW        16
#define NGX_HTTP_VOUCHER_FIELD_LIMIT_ROW         17
#define NGX_HTTP_VOUCHER_FIELD_BEFORE_ROW        18
#define NGX_HTTP_VOUCHER_FIELD_EVENT_ID_ROW      19
#define NGX_HTTP_VOUCHER_FIELD_EVENT_TYPE_ROW    20
#define NGX_HTTP_VOUCHER_FIELD_TIMESTAMP_ROW     21
#define NGX_HTTP_VOUCHER_FIELD_ATTR_ROW          22

extern const ngx_http_voucher_field_t  ngx_http_voucher_fields[];

/* the keys of an event's "data", in the order of req->attrs[] */
extern const char *const  ngx_http_voucher_event_attrs[];


typedef struct {
    const char             *reason;          /* stable, e.g. "invalid_field" */
    char                    field[96];       /* e.g. "order.items[2].price" */
    char                    message[192];    /* human readable */
} ngx_http_voucher_error_t;


void ngx_http_voucher_limits_init(ngx_http_voucher_limits_t *lim);

/* bytes of arena the parser may need for a body of len bytes */
size_t ngx_http_voucher_parse_arena_size(size_t len,
    const ngx_http_voucher_limits_t *lim);

/*
 * Returns 0 and fills req on success; returns -1 and fills err otherwise.
 * Strings in req point into arena, which must be at least
 * ngx_http_voucher_parse_arena_size() bytes and outlive req.
 *
 * lim may be NULL (defaults), err may be NULL.  Absent strings are
 * {0, NULL}; present ones are never empty and are also NUL-terminated.
 * On failure req is reset to the "all absent" state.  err->field and
 * err->message are always NUL-terminated printable ASCII without '"' or
 * '\\' (anything else from the body is shown as '?'); err->field is ""
 * for errors about the body as a whole.  The first offending field in
 * schema order is reported; an object's unknown keys are checked before
 * its fields.
 */
int ngx_http_voucher_parse_request(int op, const unsigned char *body,
    size_t len, const ngx_http_voucher_limits_t *lim,
    ngx_http_voucher_request_t *req, unsigned char *arena, size_t arena_size,
    ngx_http_voucher_error_t *err);

/* 0 if s is an acceptable code under lim, -1 otherwise (sets err) */
int ngx_http_voucher_check_code(const unsigned char *s, size_t len,
    const ngx_http_voucher_limits_t *lim, ngx_http_voucher_error_t *err);

/*
 * A field's value given as text (an nginx value of the gate), not empty:
 * 0 if the field's rule takes it under lim (may be NULL), -1 otherwise,
 * with err naming the field by its gate name and holding the field's
 * message.  An AMOUNT is up to 14 decimal digits; its value goes to
 * *amount.
 */
int ngx_http_voucher_check_field(const ngx_http_voucher_field_t *f,
    const unsigned char *s, size_t len, const ngx_http_voucher_limits_t *lim,
    int64_t *amount, ngx_http_voucher_error_t *err);

/*
 * How a JSON key (decoded, UTF-8) compares with name, a field name in
 * ASCII: KEY_SAME when the bytes are equal, KEY_VARIANT when a decoder
 * that ignores case may take the one for the other, KEY_OTHER otherwise.
 * A variant differs in the case of ASCII letters, or holds a character
 * whose case mapping or folding is ASCII: the Kelvin sign (k), long s
 * (s), dotted capital and dotless i (i), sharp s (ss) and the ligatures
 * U+FB00-FB06 (ff, fi, fl, ffi, ffl, st).
 */
int ngx_http_voucher_key_fold(const unsigned char *key, size_t len,
    const unsigned char *name, size_t nlen);


#endif /* _NGX_HTTP_VOUCHER_PARSE_H_INCLUDED_ */
