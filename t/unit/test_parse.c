
/*
 * Copyright (C) ngx_voucher authors
 *
 * cmocka tests for the request parser.  Bodies are written with single
 * quotes ('code') which q() turns into double quotes; bodies and arenas are
 * malloc()ed at their exact size so that ASan catches any overrun.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ngx_http_voucher_parse.h"


#define V   NGX_HTTP_VOUCHER_OP_VALIDATE
#define R   NGX_HTTP_VOUCHER_OP_REDEEM
#define RB  NGX_HTTP_VOUCHER_OP_ROLLBACK
#define RS  NGX_HTTP_VOUCHER_OP_RESERVE
#define CF  NGX_HTTP_VOUCHER_OP_CONFIRM
#define RL  NGX_HTTP_VOUCHER_OP_RELEASE
#define W   NGX_HTTP_VOUCHER_OP_WALLET
#define WS  NGX_HTTP_VOUCHER_OP_WALLET_SAVE
#define Q   NGX_HTTP_VOUCHER_OP_QUALIFY
#define LE  NGX_HTTP_VOUCHER_OP_LOYALTY_EARN
#define LB  NGX_HTTP_VOUCHER_OP_LOYALTY_BALANCE
#define LH  NGX_HTTP_VOUCHER_OP_LOYALTY_HISTORY
#define EV  NGX_HTTP_VOUCHER_OP_EVENT

#define E_JSON     NGX_HTTP_VOUCHER_ERR_INVALID_JSON
#define E_REQUEST  NGX_HTTP_VOUCHER_ERR_INVALID_REQUEST
#define E_UNKNOWN  NGX_HTTP_VOUCHER_ERR_UNKNOWN_FIELD
#define E_MISSING  NGX_HTTP_VOUCHER_ERR_MISSING_FIELD
#define E_FIELD    NGX_HTTP_VOUCHER_ERR_INVALID_FIELD
#define E_CODE     NGX_HTTP_VOUCHER_ERR_INVALID_CODE
#define E_INTERNAL NGX_HTTP_VOUCHER_ERR_INTERNAL
#define E_DUP      NGX_HTTP_VOUCHER_ERR_DUPLICATE_FIELD

#define MAX_AMOUNT  INT64_C(10000000000000)


/* the state of the last parse, freed by the next one and at teardown */
static ngx_http_voucher_request_t   req;
static ngx_http_voucher_error_t     err;
static unsigned char               *arena;
static size_t                       arena_len;
static unsigned char               *body;


typedef struct {
    char    *data;
    size_t   len;
    size_t   size;
} sb_t;


static void
sb_add(sb_t *sb, const char *fmt, ...)
{
    int      n;
    va_list  args;

    for ( ;; ) {
        if (sb->size - sb->len > 0) {
            va_start(args, fmt);
            n = vsnprintf(sb->data + sb->len, sb->size - sb->len, fmt, args);
            va_end(args);

            assert_true(n >= 0);

            if ((size_t) n < sb->size - sb->len) {
                sb->len += (size_t) n;
                return;
            }
        }

        sb->size = sb->size ? sb->size * 2 : 256;
        sb->data = realloc(sb->data, sb->size);
        assert_non_null(sb->data);
    }
}


static void
sb_rep(sb_t *sb, const char *s, size_t n)
{
    while (n--) {
        sb_add(sb, "%s", s);
    }
}


static void
release(void)
{
    free(arena);
    free(body);
    arena = NULL;
    body = NULL;
}


static int
teardown(void **state)
{
    (void) state;
    release();
    return 0;
}


/* parse len bytes of s (single quotes become double if quote) */

static int
parse_ex(int op, const char *s, size_t len, int quote,
    const ngx_http_voucher_limits_t *lim, long arena_delta)
{
    size_t  i;

    release();

    body = malloc(len ? len : 1);
    assert_non_null(body);

    for (i = 0; i < len; i++) {
        body[i] = (quote && s[i] == '\'') ? '"' : (unsigned char) s[i];
    }

    arena_len = ngx_http_voucher_parse_arena_size(len, lim);
    assert_true(arena_len != SIZE_MAX);
    arena_len = (size_t) ((long) arena_len + arena_delta);

    arena = malloc(arena_len ? arena_len : 1);
    assert_non_null(arena);

    memset(&req, 0x5a, sizeof(req));
    memset(&err, 0, sizeof(err));

    return ngx_http_voucher_parse_request(op, body, len, lim, &req, arena,
                                          arena_len, &err);
}


static void
check_ok(int rc, const char *file, int line)
{
    if (rc != 0) {
        print_error("expected success, got %s at %s: %s\n",
                    err.reason ? err.reason : "(null)", err.field,
                    err.message);
        _fail(file, line);
    }
}


static void
check_fail(int rc, const char *reason, const char *field, const char *file,
    int line)
{
    size_t  i;

    if (rc != -1 || err.reason == NULL
        || strcmp(err.reason, reason) != 0
        || strcmp(err.field, field) != 0)
    {
        print_error("expected %s at \"%s\", got rc %d, %s at \"%s\": %s\n",
                    reason, field, rc, err.reason ? err.reason : "(null)",
                    err.field, err.message);
        _fail(file, line);
    }

    /* the message names the field and is printable */

    if (field[0] != '\0'
        && strncmp(err.message, field, strlen(field)) != 0)
    {
        print_error("message \"%s\" does not start with \"%s\"\n",
                    err.message, field);
        _fail(file, line);
    }

    for (i = 0; err.message[i]; i++) {
        if (err.message[i] < 0x20 || err.message[i] > 0x7e
            || err.message[i] == '"' || err.message[i] == '\\')
        {
            print_error("unsafe byte in message \"%s\"\n", err.message);
            _fail(file, line);
        }
    }

    if (i == 0) {
        print_error("empty message\n");
        _fail(file, line);
    }

    /* failure resets the request */

    if (req.code.data != NULL || req.items != NULL || req.nitems != 0
        || req.amount != NGX_HTTP_VOUCHER_UNSET
        || req.rollback_amount != NGX_HTTP_VOUCHER_UNSET)
    {
        print_error("request not reset on failure\n");
        _fail(file, line);
    }
}


#define OK(op, js)                                                            \
    check_ok(parse_ex(op, js, strlen(js), 1, NULL, 0), __FILE__, __LINE__)

#define OK_LIM(op, js, lim)                                                   \
    check_ok(parse_ex(op, js, strlen(js), 1, lim, 0), __FILE__, __LINE__)

#define FAIL(op, js, reason, field)                                           \
    check_fail(parse_ex(op, js, strlen(js), 1, NULL, 0), reason, field,       \
               __FILE__, __LINE__)

#define FAIL_LIM(op, js, lim, reason, field)                                  \
    check_fail(parse_ex(op, js, strlen(js), 1, lim, 0), reason, field,        \
               __FILE__, __LINE__)

/* no quote conversion, explicit length (NUL bytes, raw UTF-8, ...) */
#define FAIL_RAW(op, js, len, reason, field)                                  \
    check_fail(parse_ex(op, js, len, 0, NULL, 0), reason, field,              \
               __FILE__, __LINE__)

#define OK_RAW(op, js, len)                                                   \
    check_ok(parse_ex(op, js, len, 0, NULL, 0), __FILE__, __LINE__)

/* a raw string literal, may hold NUL bytes */
#define FAIL_LIT(op, lit, reason, field)                                      \
    FAIL_RAW(op, lit, sizeof(lit) - 1, reason, field)

#define OK_LIT(op, lit)                                                       \
    OK_RAW(op, lit, sizeof(lit) - 1)

#define STR_EQ(s, lit)                                                        \
    do {                                                                      \
        assert_non_null((s).data);                                            \
        assert_int_equal((s).len, strlen(lit));                               \
        assert_memory_equal((s).data, lit, strlen(lit));                      \
        assert_int_equal((s).data[(s).len], '\0');                            \
    } while (0)

#define STR_ABSENT(s)                                                         \
    do {                                                                      \
        assert_null((s).data);                                                \
        assert_int_equal((s).len, 0);                                         \
    } while (0)


static void
assert_in_arena(const void *p, size_t len)
{
    const unsigned char  *c = p;

    assert_true(c >= arena);
    assert_true(c + len <= arena + arena_len);
}


/* limits, arena size */

static void
test_limits_init(void **state)
{
    ngx_http_voucher_limits_t  lim;

    (void) state;

    memset(&lim, 0xff, sizeof(lim));
    ngx_http_voucher_limits_init(&lim);

    assert_int_equal(lim.max_code_len, 64);
    assert_int_equal(lim.max_str_len, 128);
    assert_int_equal(lim.max_items, 100);
    assert_true(lim.max_amount == MAX_AMOUNT);
}


static void
test_arena_size(void **state)
{
    ngx_http_voucher_limits_t  lim;

    (void) state;

    ngx_http_voucher_limits_init(&lim);

    assert_true(ngx_http_voucher_parse_arena_size(100, &lim) >= 100);
    assert_true(ngx_http_voucher_parse_arena_size(100000, &lim)
                >= 100000 + 100 * sizeof(ngx_http_voucher_item_t));
    assert_true(ngx_http_voucher_parse_arena_size(100, NULL)
                == ngx_http_voucher_parse_arena_size(100, &lim));

    /* absurd limits saturate instead of wrapping around */
    lim.max_items = SIZE_MAX;
    assert_true(ngx_http_voucher_parse_arena_size(SIZE_MAX - 10, &lim)
                == SIZE_MAX);
    assert_true(ngx_http_voucher_parse_arena_size(SIZE_MAX / 4, &lim)
                == SIZE_MAX);
}


/* the worst case: strings made of escapes, the most items that fit */

static void
test_arena_worst_case(void **state)
{
    sb_t    sb = { NULL, 0, 0 };
    size_t  i;

    (void) state;

    sb_add(&sb, "{\"code\":\"A\",\"customer\":\"%s\",\"order\":{\"items\":[",
           "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9");

    for (i = 0; i < 100; i++) {
        sb_add(&sb, "%s{\"sku\":\"\\ud83d\\ude00x\",\"category\":"
               "\"\\u00ff\",\"price\":1}", i ? "," : "");
    }

    sb_add(&sb, "]}}");

    check_ok(parse_ex(V, sb.data, sb.len, 0, NULL, 0), __FILE__, __LINE__);
    assert_int_equal(req.nitems, 100);
    assert_int_equal(req.amount, 100);
    assert_int_equal(req.customer.len, 16);
    STR_EQ(req.items[99].sku, "\xf0\x9f\x98\x80x");

    /* too small an arena is an error, never an overrun */
    check_fail(parse_ex(V, sb.data, sb.len, 0, NULL,
                        -(long) (sb.len - 10)),
               E_INTERNAL, "", __FILE__, __LINE__);
    check_fail(parse_ex(V, "{\"code\":\"A\",\"order\":{\"amount\":1}}", 33, 0,
                        NULL, -(long) ngx_http_voucher_parse_arena_size(33,
                                                                       NULL)),
               E_INTERNAL, "", __FILE__, __LINE__);

    free(sb.data);
}


/* success paths */

static void
test_validate_minimal(void **state)
{
    (void) state;

    OK(V, "{'code':'SAVE10','order':{'amount':1000}}");

    assert_int_equal(req.op, V);
    STR_EQ(req.code, "SAVE10");
    assert_in_arena(req.code.data, req.code.len + 1);
    assert_int_equal(req.amount, 1000);
    STR_ABSENT(req.customer);
    STR_ABSENT(req.idempotency_key);
    STR_ABSENT(req.order_id);
    STR_ABSENT(req.currency);
    STR_ABSENT(req.redemption_id);
    assert_null(req.items);
    assert_int_equal(req.nitems, 0);
    assert_int_equal(req.rollback_amount, NGX_HTTP_VOUCHER_UNSET);
}


static void
test_redeem_full(void **state)
{
    (void) state;

    OK(R, " {\n\t'idempotency_key' : 'k-1:2/3',"
          "'order':{'currency':'EUR','items':[{'sku':'A1','price':250,"
          "'quantity':2,'category':'books'},{'price':100,'sku':'B2'}],"
          "'amount':599,'id':'ord-77'},"
          "'customer':'cust 42','code':'X'} \r\n");

    assert_int_equal(req.op, R);
    STR_EQ(req.code, "X");
    STR_EQ(req.customer, "cust 42");
    STR_EQ(req.idempotency_key, "k-1:2/3");
    STR_EQ(req.order_id, "ord-77");
    STR_EQ(req.currency, "EUR");

    /* a given amount is taken as is, the items only need to add up */
    assert_int_equal(req.amount, 599);

    assert_non_null(req.items);
    assert_in_arena(req.items, 2 * sizeof(ngx_http_voucher_item_t));
    assert_int_equal((uintptr_t) req.items % sizeof(int64_t), 0);
    assert_int_equal(req.nitems, 2);
    STR_EQ(req.items[0].sku, "A1");
    STR_EQ(req.items[0].category, "books");
    assert_int_equal(req.items[0].price, 250);
    assert_int_equal(req.items[0].quantity, 2);
    STR_EQ(req.items[1].sku, "B2");
    STR_ABSENT(req.items[1].category);
    assert_int_equal(req.items[1].price, 100);
    assert_int_equal(req.items[1].quantity, 1);
}


static void
test_rollback(void **state)
{
    (void) state;

    OK(RB, "{'redemption_id':'1700000000000-42'}");
    assert_int_equal(req.op, RB);
    STR_EQ(req.redemption_id, "1700000000000-42");
    assert_int_equal(req.rollback_amount, NGX_HTTP_VOUCHER_UNSET);
    assert_int_equal(req.amount, NGX_HTTP_VOUCHER_UNSET);
    STR_ABSENT(req.code);
    STR_ABSENT(req.idempotency_key);
    assert_null(req.items);

    OK(RB, "{'amount':0,'idempotency_key':'r1','redemption_id':'7'}");
    STR_EQ(req.redemption_id, "7");
    STR_EQ(req.idempotency_key, "r1");
    assert_int_equal(req.rollback_amount, 0);

    OK(RB, "{'redemption_id':'7','amount':10000000000000}");
    assert_true(req.rollback_amount == MAX_AMOUNT);

    OK(RB, "{'redemption_id':'7','amount':null,'idempotency_key':null}");
    assert_int_equal(req.rollback_amount, NGX_HTTP_VOUCHER_UNSET);
    STR_ABSENT(req.idempotency_key);
}


/* reserve: a redeem body with an optional hold_seconds */

static void
test_reserve(void **state)
{
    (void) state;

    OK(RS, "{'code':'FLASH50','customer':'c','hold_seconds':600,"
           "'order':{'amount':1000}}");
    assert_int_equal(req.op, RS);
    STR_EQ(req.code, "FLASH50");
    assert_int_equal(req.hold_seconds, 600);
    assert_int_equal(req.amount, 1000);

    OK(RS, "{'code':'A','order':{'amount':1}}");
    assert_int_equal(req.hold_seconds, NGX_HTTP_VOUCHER_UNSET);

    OK(RS, "{'code':'A','hold_seconds':1,'order':{'amount':1}}");
    assert_int_equal(req.hold_seconds, 1);
    OK(RS, "{'code':'A','hold_seconds':86400,'order':{'amount':1}}");
    assert_int_equal(req.hold_seconds, 86400);
    OK(RS, "{'code':'A','hold_seconds':null,'order':{'amount':1}}");
    assert_int_equal(req.hold_seconds, NGX_HTTP_VOUCHER_UNSET);

    FAIL(RS, "{'code':'A','hold_seconds':0}", E_FIELD, "hold_seconds");
    FAIL(RS, "{'code':'A','hold_seconds':86401}", E_FIELD, "hold_seconds");
    FAIL(RS, "{'code':'A','hold_seconds':'60'}", E_FIELD, "hold_seconds");
    FAIL(RS, "{'code':'A','hold_seconds':1.5}", E_FIELD, "hold_seconds");
    FAIL(RS, "{'hold_seconds':60}", E_MISSING, "code");

    /* only reserve knows hold_seconds */
    FAIL(R, "{'code':'A','hold_seconds':60}", E_UNKNOWN, "hold_seconds");
    FAIL(V, "{'code':'A','hold_seconds':60}", E_UNKNOWN, "hold_seconds");
}


/* the wallet: a page of a customer's codes, and a code saved into it */

static void
test_wallet(void **state)
{
    (void) state;

    OK(W, "{'customer':'bob'}");
    assert_int_equal(req.op, W);
    STR_EQ(req.customer, "bob");
    assert_null(req.cursor.data);
    assert_int_equal(req.count, NGX_HTTP_VOUCHER_UNSET);
    assert_null(req.code.data);

    OK(W, "{'customer':'bob','cursor':'1796680808643','count':100}");
    STR_EQ(req.cursor, "1796680808643");
    assert_int_equal(req.count, 100);
    OK(W, "{'customer':'bob','cursor':'0','count':1}");
    STR_EQ(req.cursor, "0");

    FAIL(W, "{}", E_MISSING, "customer");
    FAIL(W, "{'customer':''}", E_FIELD, "customer");
    FAIL(W, "{'customer':'b','count':0}", E_FIELD, "count");
    FAIL(W, "{'customer':'b','count':101}", E_FIELD, "count");
    FAIL(W, "{'customer':'b','count':'5'}", E_FIELD, "count");
    FAIL(W, "{'customer':'b','cursor':''}", E_FIELD, "cursor");
    FAIL(W, "{'customer':'b','cursor':'00'}", E_FIELD, "cursor");
    FAIL(W, "{'customer':'b','cursor':'1:2'}", E_FIELD, "cursor");
    FAIL(W, "{'customer':'b','cursor':'-1'}", E_FIELD, "cursor");
    FAIL(W, "{'customer':'b','cursor':'1 '}", E_FIELD, "cursor");
    FAIL(W, "{'customer':'b','cursor':'12345678901234567'}", E_FIELD,
         "cursor");
    OK(W, "{'customer':'b','cursor':'1234567890123456'}");
    FAIL(W, "{'customer':'b','cursor':5}", E_FIELD, "cursor");
    FAIL(W, "{'customer':'b','code':'A'}", E_UNKNOWN, "code");
    FAIL(W, "{'customer':'b','order':{'amount':1}}", E_UNKNOWN, "order");

    OK(WS, "{'customer':'bob','code':'SPRING-10'}");
    assert_int_equal(req.op, WS);
    STR_EQ(req.customer, "bob");
    STR_EQ(req.code, "SPRING-10");

    FAIL(WS, "{'customer':'bob'}", E_MISSING, "code");
    FAIL(WS, "{'code':'A'}", E_MISSING, "customer");
    FAIL(WS, "{'code':'','customer':'b'}", E_CODE, "code");
    FAIL(WS, "{'code':'A','customer':'b','cursor':'0'}", E_UNKNOWN,
         "cursor");
    FAIL(WS, "{'code':'A','customer':'b','idempotency_key':'k'}", E_UNKNOWN,
         "idempotency_key");
}


/* several codes for one order (a stack), and qualify */

static void
test_codes_qualify(void **state)
{
    int     ops[] = { V, R, RS }, i;
    sb_t    sb;
    size_t  j;

    (void) state;

    for (i = 0; i < 3; i++) {
        OK(ops[i], "{'codes':['A-1','b2'],'customer':'c',"
                   "'order':{'amount':1000,'channel':'web'}}");
        assert_int_equal(req.ncodes, 2);
        assert_null(req.code.data);
        STR_EQ(req.codes[0], "A-1");
        STR_EQ(req.codes[1], "b2");
        STR_EQ(req.channel, "web");

        FAIL(ops[i], "{'code':'A','codes':['B'],'order':{'amount':1}}",
             E_FIELD, "codes");
        OK(ops[i], "{'codes':[],'order':{'amount':1}}");
        assert_int_equal(req.stack, 1);
        assert_int_equal(req.ncodes, 0);
        FAIL(ops[i], "{'codes':'A','order':{'amount':1}}", E_FIELD, "codes");
        FAIL(ops[i], "{'codes':['A',1],'order':{'amount':1}}", E_CODE,
             "codes[1]");
        FAIL(ops[i], "{'codes':['A',''],'order':{'amount':1}}", E_CODE,
             "codes[1]");
        FAIL(ops[i], "{'codes':['A','\\u00e9'],'order':{'amount':1}}",
             E_CODE, "codes[1]");
        FAIL(ops[i], "{'order':{'amount':1}}", E_MISSING, "code");

        /* a single code's order has no channel */
        FAIL(ops[i], "{'code':'A','order':{'amount':1,'channel':'web'}}",
             E_UNKNOWN, "order.channel");
        FAIL(ops[i], "{'codes':['A'],'order':{'amount':1,'channel':'a b'}}",
             E_FIELD, "order.channel");
    }

    OK(V, "{'codes':null,'code':'A','order':{'amount':1}}");
    STR_EQ(req.code, "A");
    assert_int_equal(req.ncodes, 0);
    assert_int_equal(req.stack, 0);

    /* 30 codes at most */
    memset(&sb, 0, sizeof(sb));
    sb_add(&sb, "{'codes':[");
    for (j = 0; j < NGX_HTTP_VOUCHER_MAX_CODES; j++) {
        sb_add(&sb, "%s'C%zu'", j ? "," : "", j);
    }
    sb_add(&sb, "],'order':{'amount':1}}");
    OK(R, sb.data);
    assert_int_equal(req.ncodes, NGX_HTTP_VOUCHER_MAX_CODES);
    STR_EQ(req.codes[29], "C29");
    sb.len -= strlen("],'order':{'amount':1}}");
    sb_add(&sb, ",'X'],'order':{'amount':1}}");
    FAIL(R, sb.data, E_FIELD, "codes");
    free(sb.data);

    OK(Q, "{'order':{'amount':1}}");
    assert_int_equal(req.ncodes, 0);
    assert_int_equal(req.best, 0);
    assert_null(req.customer.data);

    OK(Q, "{'customer':'c','codes':['X'],'best':true,"
          "'order':{'amount':500,'currency':'THB','channel':'app',"
          "'items':[{'sku':'s','price':500}]}}");
    STR_EQ(req.customer, "c");
    assert_int_equal(req.ncodes, 1);
    assert_int_equal(req.best, 1);
    STR_EQ(req.channel, "app");
    assert_int_equal(req.nitems, 1);
    OK(Q, "{'best':false,'order':{'amount':1}}");
    assert_int_equal(req.best, 0);

    FAIL(Q, "{}", E_MISSING, "order");
    FAIL(Q, "{'order':{'amount':1},'best':1}", E_FIELD, "best");
    FAIL(Q, "{'order':{'amount':1},'code':'A'}", E_UNKNOWN, "code");
    FAIL(Q, "{'order':{'amount':1},'idempotency_key':'k'}", E_UNKNOWN,
         "idempotency_key");
    FAIL(Q, "{'order':{'amount':1},'codes':[true]}", E_CODE, "codes[0]");
    FAIL(Q, "{'order':{'amount':1,'channel':''}}", E_FIELD, "order.channel");
}


/* order.metadata and customer_attributes: one "m..." argument */

static void
test_meta(void **state)
{
    int            ops[] = { V, R, RS }, i;
    sb_t           sb;
    size_t         j;
    static const char  want[] = "mochannel=line_man\0obasket=3\0cbranch="
                                "\xe0\xb8\x81";

    (void) state;

    for (i = 0; i < 3; i++) {
        OK(ops[i], "{'code':'A','order':{'amount':1,'metadata':"
                   "{'channel':'line_man','basket':3}},"
                   "'customer_attributes':{'branch':'\\u0e01'}}");
        assert_int_equal(req.meta.len, sizeof(want) - 1);
        assert_memory_equal(req.meta.data, want, sizeof(want) - 1);

        OK(ops[i], "{'code':'A','order':{'amount':1,'metadata':{}}}");
        STR_ABSENT(req.meta);
        OK(ops[i], "{'code':'A','order':{'amount':1,'metadata':null},"
                   "'customer_attributes':null}");
        STR_ABSENT(req.meta);
        OK(ops[i], "{'code':'A','order':{'amount':1},"
                   "'customer_attributes':{'tier':'gold'}}");
        STR_EQ(req.meta, "mctier=gold");
        OK(ops[i], "{'codes':['A'],'order':{'amount':1,'channel':'web',"
                   "'metadata':{'pay':'card'}}}");
        STR_EQ(req.meta, "mopay=card");

        FAIL(ops[i], "{'code':'A','order':{'amount':1,'metadata':[]}}",
             E_FIELD, "order.metadata");
        FAIL(ops[i], "{'code':'A','order':{'amount':1,'metadata':"
                     "{'a b':'x'}}}", E_FIELD, "order.metadata");
        FAIL(ops[i], "{'code':'A','order':{'amount':1,'metadata':"
                     "{'':'x'}}}", E_FIELD, "order.metadata");
        FAIL(ops[i], "{'code':'A','order':{'amount':1,'metadata':"
                     "{'a':''}}}", E_FIELD, "order.metadata");
        FAIL(ops[i], "{'code':'A','order':{'amount':1,'metadata':"
                     "{'a':'x\\ny'}}}", E_FIELD, "order.metadata");
        FAIL(ops[i], "{'code':'A','order':{'amount':1,'metadata':"
                     "{'a':-1}}}", E_FIELD, "order.metadata");
        FAIL(ops[i], "{'code':'A','order':{'amount':1,'metadata':"
                     "{'a':1.5}}}", E_FIELD, "order.metadata");
        FAIL(ops[i], "{'code':'A','order':{'amount':1,'metadata':"
                     "{'a':true}}}", E_FIELD, "order.metadata");
        FAIL(ops[i], "{'code':'A','order':{'amount':1,'metadata':"
                     "{'a':{'b':1}}}}", E_FIELD, "order.metadata");
        FAIL(ops[i], "{'code':'A','order':{'amount':1},"
                     "'customer_attributes':'gold'}", E_FIELD,
             "customer_attributes");
        FAIL(ops[i], "{'code':'A','order':{'amount':1},"
                     "'customer_attributes':{'a':10000000000001}}", E_FIELD,
             "customer_attributes");
        FAIL(ops[i], "{'code':'A','order':{'amount':1,'meta':{}}}",
             E_UNKNOWN, "order.meta");
    }

    /* names of 32 bytes, values of 64, 16 entries at most */
    OK(V, "{'code':'A','order':{'amount':1,'metadata':{"
          "'abcdefghijklmnopqrstuvwxyz012345':"
          "'0123456789012345678901234567890123456789012345678901234567890123'"
          "}}}");
    assert_int_equal(req.meta.len, 1 + 1 + 32 + 1 + 64);
    FAIL(V, "{'code':'A','order':{'amount':1,'metadata':{"
            "'abcdefghijklmnopqrstuvwxyz0123456':'x'}}}", E_FIELD,
         "order.metadata");
    FAIL(V, "{'code':'A','order':{'amount':1,'metadata':{'a':"
            "'01234567890123456789012345678901234567890123456789012345678901234'"
            "}}}", E_FIELD, "order.metadata");

    memset(&sb, 0, sizeof(sb));
    sb_add(&sb, "{'code':'A','order':{'amount':1,'metadata':{");
    for (j = 0; j < NGX_HTTP_VOUCHER_MAX_META; j++) {
        sb_add(&sb, "%s'k%zu':%zu", j ? "," : "", j, j);
    }
    sb_add(&sb, "}}}");
    OK(R, sb.data);
    sb.len -= strlen("}}}");
    sb_add(&sb, ",'x':1}}}");
    FAIL(R, sb.data, E_FIELD, "order.metadata");
    free(sb.data);

    /* a loyalty earn's order has no metadata */
    FAIL(LE, "{'customer':'c','order':{'id':'o','amount':1,"
             "'metadata':{'a':'b'}}}", E_UNKNOWN, "order.metadata");

    /* qualify takes both */
    OK(Q, "{'order':{'amount':1,'metadata':{'a':'b'}},"
          "'customer_attributes':{'c':2}}");
    assert_int_equal(req.meta.len, sizeof("moa=b\0cc=2") - 1);
    assert_memory_equal(req.meta.data, "moa=b\0cc=2", req.meta.len);
}


/* points: loyalty points paying, in validate, redeem and reserve */

static void
test_points(void **state)
{
    (void) state;

    OK(R, "{'code':'A','customer':'c','points':250,'order':{'amount':1}}");
    assert_int_equal(req.points, 250);
    OK(V, "{'code':'A','points':1,'order':{'amount':1}}");
    assert_int_equal(req.points, 1);
    OK(RS, "{'code':'A','points':10000000000000,'hold_seconds':5,"
           "'order':{'amount':1}}");
    assert_true(req.points == MAX_AMOUNT);
    assert_int_equal(req.hold_seconds, 5);
    OK(R, "{'code':'A','order':{'amount':1}}");
    assert_int_equal(req.points, 0);
    OK(R, "{'code':'A','points':null,'order':{'amount':1}}");
    assert_int_equal(req.points, 0);

    FAIL(R, "{'code':'A','points':0,'order':{'amount':1}}", E_FIELD,
         "points");
    FAIL(R, "{'code':'A','points':-5,'order':{'amount':1}}", E_FIELD,
         "points");
    FAIL(R, "{'code':'A','points':10000000000001,'order':{'amount':1}}",
         E_FIELD, "points");
    FAIL(R, "{'code':'A','points':'5','order':{'amount':1}}", E_FIELD,
         "points");
    FAIL(R, "{'code':'A','points':1.5,'order':{'amount':1}}", E_FIELD,
         "points");
    FAIL(RB, "{'redemption_id':'7','points':5}", E_UNKNOWN, "points");

    /* points pay inside a stack too, checked as with one code */
    OK(R, "{'codes':['A','B'],'points':5,'order':{'amount':1}}");
    assert_int_equal(req.points, 5);
    OK(RS, "{'codes':[],'points':7,'order':{'amount':1}}");
    assert_int_equal(req.points, 7);
    FAIL(R, "{'codes':['A','B'],'points':0,'order':{'amount':1}}", E_FIELD,
         "points");
    FAIL(R, "{'codes':['A'],'points':'5','order':{'amount':1}}", E_FIELD,
         "points");
    OK(R, "{'codes':['A'],'points':null,'order':{'amount':1}}");
    assert_int_equal(req.points, 0);
}


/* confirm and release: the redemption id and an idempotency key */

static void
test_confirm_release(void **state)
{
    int  op, i;

    (void) state;

    for (i = 0; i < 2; i++) {
        op = i ? RL : CF;

        OK(op, "{'redemption_id':'1700000000000-42'}");
        assert_int_equal(req.op, op);
        STR_EQ(req.redemption_id, "1700000000000-42");
        STR_ABSENT(req.code);
        STR_ABSENT(req.idempotency_key);
        assert_int_equal(req.rollback_amount, NGX_HTTP_VOUCHER_UNSET);
        assert_int_equal(req.hold_seconds, NGX_HTTP_VOUCHER_UNSET);

        FAIL(op, "{}", E_MISSING, "redemption_id");
        FAIL(op, "{'redemption_id':null}", E_MISSING, "redemption_id");
        FAIL(op, "{'redemption_id':'abc'}", E_FIELD, "redemption_id");
        FAIL(op, "{'redemption_id':7}", E_FIELD, "redemption_id");
        FAIL(op, "{'redemption_id':'1-1','amount':5}", E_UNKNOWN, "amount");
        FAIL(op, "{'redemption_id':'1-1','idempotency_key':'a b'}", E_FIELD,
             "idempotency_key");

        OK(op, "{'redemption_id':'1-1','idempotency_key':'pay-7'}");
        STR_EQ(req.idempotency_key, "pay-7");
        FAIL(op, "[]", E_REQUEST, "");
    }
}


static void
test_amount_from_items(void **state)
{
    (void) state;

    OK(V, "{'code':'A','order':{'items':[{'sku':'a','price':199},"
          "{'sku':'b','price':5,'quantity':3},{'sku':'c','price':0}]}}");
    assert_int_equal(req.amount, 199 + 15);
    assert_int_equal(req.nitems, 3);
    assert_int_equal(req.items[0].quantity, 1);
    assert_int_equal(req.items[2].quantity, 1);

    /* explicit null amount is the same as no amount */
    OK(V, "{'code':'A','order':{'amount':null,'items':[{'sku':'a',"
          "'price':7,'quantity':1000000}]}}");
    assert_int_equal(req.amount, 7000000);

    OK(V, "{'code':'A','order':{'items':[{'sku':'a','price':0}]}}");
    assert_int_equal(req.amount, 0);
}


static void
test_defaults_and_nulls(void **state)
{
    (void) state;

    OK(V, "{'code':'A','customer':null,'idempotency_key':null,"
          "'order':{'id':null,'amount':5,'currency':null,'items':null}}");
    STR_ABSENT(req.customer);
    STR_ABSENT(req.idempotency_key);
    STR_ABSENT(req.order_id);
    STR_ABSENT(req.currency);
    assert_null(req.items);
    assert_int_equal(req.nitems, 0);
    assert_int_equal(req.amount, 5);

    OK(V, "{'code':'A','order':{'amount':5,'items':[{'sku':'s','price':1,"
          "'category':null,'quantity':null}]}}");
    STR_ABSENT(req.items[0].category);
    assert_int_equal(req.items[0].quantity, 1);

    /* -0 is the integer 0 */
    OK(V, "{'code':'A','order':{'amount':-0}}");
    assert_int_equal(req.amount, 0);

    /* NULL limits mean the defaults */
    assert_int_equal(ngx_http_voucher_check_code((const unsigned char *)
                     "0123456789012345678901234567890123456789012345678901"
                     "234567890123", 64, NULL, &err), 0);
}


/* invalid_json */

static void
test_invalid_json(void **state)
{
    (void) state;

    FAIL(V, "", E_JSON, "");
    FAIL(V, " \n", E_JSON, "");
    FAIL(V, "{", E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':1}", E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':1}}}", E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':1}} x", E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':1}}{}", E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':1},}", E_JSON, "");
    FAIL(V, "{'code':'A' 'order':{'amount':1}}", E_JSON, "");
    FAIL(V, "{code:'A','order':{'amount':1}}", E_JSON, "");
    FAIL_LIT(V, "{'code':'A','order':{'amount':1}}", E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':01}}", E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':+1}}", E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':NaN}}", E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':Infinity}}", E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':1}} // c", E_JSON, "");
    FAIL(V, "{'code':'A\\x','order':{'amount':1}}", E_JSON, "");
    FAIL(V, "{'code':'A\\u12','order':{'amount':1}}", E_JSON, "");

    /* out of range numbers */
    FAIL(V, "{'code':'A','order':{'amount':9223372036854775808}}",
         E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':-9223372036854775809}}",
         E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':1e400}}", E_JSON, "");

    /* truncated at every byte */
    {
        const char  *full = "{'code':'A','order':{'items':[{'sku':'s',"
                            "'price':1}]}}";
        size_t       n;

        for (n = 1; n < strlen(full); n++) {
            check_fail(parse_ex(V, full, n, 1, NULL, 0), E_JSON, "",
                       __FILE__, __LINE__);
        }

        check_ok(parse_ex(V, full, strlen(full), 1, NULL, 0),
                 __FILE__, __LINE__);
    }

    /* raw NUL byte, BOM */
    FAIL_LIT(V, "{\"code\":\"A\0\",\"order\":{\"amount\":1}}", E_JSON, "");
    FAIL_LIT(V, "{\"code\":\"A\",\"order\":{\"amount\":1}}\0", E_JSON, "");
    FAIL_LIT(V, "\xef\xbb\xbf{\"code\":\"A\",\"order\":{\"amount\":1}}",
             E_JSON, "");

    /* raw control character inside a string */
    FAIL(V, "{'code':'A','customer':'a\tb','order':{'amount':1}}",
         E_JSON, "");

    /* whitespace-only after the value is fine */
    OK(V, "{'code':'A','order':{'amount':1}}\n\n \t");

    /* the message hints at the position */
    FAIL(V, "{'code':'A',,}", E_JSON, "");
    assert_non_null(strstr(err.message, "at byte"));
}


static void
test_invalid_utf8(void **state)
{
    (void) state;

#define BAD_UTF8(s)                                                           \
    FAIL_RAW(V, "{\"code\":\"A\",\"customer\":\"" s "\","                     \
             "\"order\":{\"amount\":1}}",                                     \
             sizeof("{\"code\":\"A\",\"customer\":\"" s "\","                 \
                    "\"order\":{\"amount\":1}}") - 1, E_JSON, "")

    BAD_UTF8("\x80");                   /* lone continuation */
    BAD_UTF8("a\xbf" "b");
    BAD_UTF8("\xc3");                   /* truncated sequence */
    BAD_UTF8("\xe2\x82");
    BAD_UTF8("\xc0\xaf");               /* overlong '/' */
    BAD_UTF8("\xe0\x80\xaf");
    BAD_UTF8("\xed\xa0\x80");           /* encoded surrogate */
    BAD_UTF8("\xf4\x90\x80\x80");       /* above U+10FFFF */
    BAD_UTF8("\xf8\x88\x80\x80\x80");   /* 5-byte form */
    BAD_UTF8("\xfe");
    BAD_UTF8("\xff");

#undef BAD_UTF8

    /* in a key, too */
    FAIL_LIT(V, "{\"c\xff\":1}", E_JSON, "");

    /* escaped lone surrogates */
    FAIL(V, "{'code':'A','customer':'\\ud800','order':{'amount':1}}",
         E_JSON, "");
    FAIL(V, "{'code':'A','customer':'\\udc00x','order':{'amount':1}}",
         E_JSON, "");
    FAIL(V, "{'code':'A','customer':'\\ud83d\\u0041','order':{'amount':1}}",
         E_JSON, "");
}


static void
test_nul_escapes(void **state)
{
    (void) state;

    FAIL(V, "{'code':'A\\u0000B','order':{'amount':1}}", E_JSON, "");
    FAIL(V, "{'code':'A','customer':'\\u0000','order':{'amount':1}}",
         E_JSON, "");
    FAIL(V, "{'code':'A','order':{'amount':1,'items':[{'sku':'a\\u0000',"
            "'price':1}]}}", E_JSON, "");
    FAIL(V, "{'code\\u0000':'A','order':{'amount':1}}", E_JSON, "");
    FAIL(RB, "{'redemption_id':'1\\u0000'}", E_JSON, "");
}


static void
test_deep_nesting(void **state)
{
    sb_t  sb = { NULL, 0, 0 };

    (void) state;

    /* past jansson's depth limit (2048): invalid JSON */
    sb_rep(&sb, "[", 100000);
    sb_rep(&sb, "]", 100000);
    FAIL_RAW(V, sb.data, sb.len, E_JSON, "");
    assert_non_null(strstr(err.message, "nesting too deep"));

    sb.len = 0;
    sb_add(&sb, "{\"code\":\"A\",\"order\":{\"amount\":1,\"id\":");
    sb_rep(&sb, "{\"a\":", 5000);
    sb_add(&sb, "1");
    sb_rep(&sb, "}", 5000);
    sb_add(&sb, "}}");
    FAIL_RAW(V, sb.data, sb.len, E_JSON, "");

    /* within it: valid JSON, the wrong type for the field */
    sb.len = 0;
    sb_add(&sb, "{\"code\":\"A\",\"order\":{\"amount\":1,\"id\":");
    sb_rep(&sb, "[", 1000);
    sb_rep(&sb, "]", 1000);
    sb_add(&sb, "}}");
    FAIL_RAW(V, sb.data, sb.len, E_FIELD, "order.id");

    /* or an unknown field, whatever it holds */
    sb.len = 0;
    sb_add(&sb, "{\"code\":\"A\",\"x\":");
    sb_rep(&sb, "{\"a\":", 1000);
    sb_add(&sb, "1");
    sb_rep(&sb, "}", 1000);
    sb_add(&sb, ",\"order\":{\"amount\":1}}");
    FAIL_RAW(V, sb.data, sb.len, E_UNKNOWN, "x");

    free(sb.data);
}


static void
test_duplicate_keys(void **state)
{
    (void) state;

    FAIL(V, "{'code':'A','code':'A','order':{'amount':1}}", E_DUP, "");
    FAIL(V, "{'code':'A','order':{'amount':1},'order':{'amount':1}}",
         E_DUP, "");
    FAIL(V, "{'code':'A','order':{'amount':1,'amount':2}}", E_DUP, "");
    FAIL(V, "{'code':'A','order':{'amount':1,'items':[{'sku':'a',"
            "'price':1,'sku':'b'}]}}", E_DUP, "");
    FAIL(V, "{'code':'A','order':{'amount':1},'x':1,'x':2}", E_DUP, "");
    FAIL(RB, "{'redemption_id':'1','redemption_id':'2'}", E_DUP, "");

    /* the same key spelled with an escape is still a duplicate */
    FAIL(V, "{'code':'A','c\\u006fde':'B','order':{'amount':1}}",
         E_DUP, "");

    /* the message says where, in our own words */
    FAIL(V, "{'code':'A','code':'B','order':{'amount':1}}", E_DUP, "");
    assert_string_equal(err.message, "request body has a key twice in one "
                        "object, the second ending at byte 18");

    /* a duplicate is found while loading: before any field's error */
    FAIL(V, "{'code':'','order':{'amount':-1},'x':1,'x':1}", E_DUP, "");

    /* same key in different objects is fine */
    OK(V, "{'code':'A','order':{'amount':1,'items':[{'sku':'a','price':1},"
          "{'sku':'a','price':1}]}}");

    /*
     * A key in another letter case, or with a character some decoder folds
     * to an ASCII letter, is not a known field: the API reads exact keys.
     */
    FAIL(V, "{'code':'A','Code':'B','order':{'amount':1}}",
         E_UNKNOWN, "Code");
    FAIL(V, "{'code':'A','order':{'amount':1,'AMOUNT':2}}",
         E_UNKNOWN, "order.AMOUNT");
    FAIL(V, "{'code':'A','customer':'a','cu\\u017ftomer':'b',"
            "'order':{'amount':1}}", E_UNKNOWN, "cu??tomer");
    FAIL_LIT(RB, "{\"redemption_id\":\"1\","
                 "\"idempotency_\xe2\x84\xaa" "ey\":\"k\"}",
             E_UNKNOWN, "idempotency_???ey");
}


/* ngx_http_voucher_key_fold() */

#define FOLD(key, name)                                                       \
    ngx_http_voucher_key_fold((const unsigned char *) key, sizeof(key) - 1, \
                              (const unsigned char *) name,                  \
                              sizeof(name) - 1)

static void
test_key_fold(void **state)
{
    (void) state;

    assert_int_equal(FOLD("coupon", "coupon"), NGX_HTTP_VOUCHER_KEY_SAME);
    assert_int_equal(FOLD("", ""), NGX_HTTP_VOUCHER_KEY_SAME);
    assert_int_equal(FOLD("order_id2", "order_id2"),
                     NGX_HTTP_VOUCHER_KEY_SAME);

    /* ASCII case, anywhere */
    assert_int_equal(FOLD("Coupon", "coupon"), NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("COUPON", "coupon"), NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("couPon", "coupon"), NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("coupon", "Coupon"), NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("ORDER_ID2", "order_id2"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);

    /* what Go folds: the Kelvin sign and long s */
    assert_int_equal(FOLD("\xe2\x84\xaa" "ey", "key"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("idempotency_\xe2\x84\xaa" "ey",
                          "idempotency_key"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("cu\xc5\xbftomer", "customer"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("CU\xc5\xbfTOMER", "customer"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);

    /* dotless and dotted i, sharp s, ligatures */
    assert_int_equal(FOLD("\xc4\xb1" "d", "id"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("\xc4\xb0" "D", "id"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("cla\xc3\x9f", "class"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("cla\xe1\xba\x9e", "class"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("\xef\xac\x81" "eld", "field"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("o\xef\xac\x83" "ce", "office"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("o\xef\xac\x80", "off"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("\xef\xac\x82" "at", "flat"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("wa\xef\xac\x84" "e", "waffle"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("\xef\xac\x85ore", "store"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);
    assert_int_equal(FOLD("\xef\xac\x86ore", "store"),
                     NGX_HTTP_VOUCHER_KEY_VARIANT);

    /* other names */
    assert_int_equal(FOLD("coupons", "coupon"), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("coupo", "coupon"), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("", "coupon"), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("coupon", ""), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("coupon ", "coupon"), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("coup0n", "coupon"), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("order-id", "order_id"), NGX_HTTP_VOUCHER_KEY_OTHER);

    /* '@' and '`' sit next to the letters, but are not letters */
    assert_int_equal(FOLD("@", "`"), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("[", "{"), NGX_HTTP_VOUCHER_KEY_OTHER);

    /* a folding character where its letters are not */
    assert_int_equal(FOLD("\xe2\x84\xaa" "ey", "hey"),
                     NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("\xc5\xbf", "ss"), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("\xc3\x9f", "s"), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("o\xef\xac\x83", "off"),
                     NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("o\xef\xac\x83", "offic"),
                     NGX_HTTP_VOUCHER_KEY_OTHER);

    /* other non-ASCII characters, and cut ones, are never variants */
    assert_int_equal(FOLD("\xc3\xa9", "e"), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("\xe2\x84\xab", "a"), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("\xef\xbd\x8b", "k"), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("\xe2\x84", "k"), NGX_HTTP_VOUCHER_KEY_OTHER);
    assert_int_equal(FOLD("\xc5", "s"), NGX_HTTP_VOUCHER_KEY_OTHER);

    /* a name outside ASCII matches its own bytes only */
    assert_int_equal(FOLD("\xc3\xa9", "\xc3\xa9"),
                     NGX_HTTP_VOUCHER_KEY_SAME);
    assert_int_equal(FOLD("\xc3\x89", "\xc3\xa9"),
                     NGX_HTTP_VOUCHER_KEY_OTHER);
}


/* invalid_request */

static void
test_invalid_request(void **state)
{
    (void) state;

    FAIL(V, "[]", E_REQUEST, "");
    FAIL(V, "[{'code':'A','order':{'amount':1}}]", E_REQUEST, "");
    FAIL(V, "'code'", E_REQUEST, "");
    FAIL(V, "42", E_REQUEST, "");
    FAIL(V, "-1.5", E_REQUEST, "");
    FAIL(V, "null", E_REQUEST, "");
    FAIL(V, "true", E_REQUEST, "");
    FAIL(V, "false", E_REQUEST, "");
    FAIL(RB, " [1] ", E_REQUEST, "");
    FAIL(R, "\"\"", E_REQUEST, "");
}


/* unknown_field */

static void
test_unknown_field(void **state)
{
    char  want[sizeof(err.field)];
    sb_t  sb = { NULL, 0, 0 };

    (void) state;

    FAIL(V, "{'code':'A','order':{'amount':1},'coupon':'x'}",
         E_UNKNOWN, "coupon");
    FAIL(V, "{'Code':'A','order':{'amount':1}}", E_UNKNOWN, "Code");
    FAIL(V, "{'code ':'A','order':{'amount':1}}", E_UNKNOWN, "code ");
    FAIL(V, "{'code':'A','order':{'amount':1,'tax':5}}",
         E_UNKNOWN, "order.tax");
    FAIL(R, "{'code':'A','order':{'amount':1,'items':[{'sku':'a',"
            "'price':1},{'sku':'b','price':1,'discount':3}]}}",
         E_UNKNOWN, "order.items[1].discount");
    FAIL(V, "{'code':'A','order':{'amount':1},'redemption_id':'1'}",
         E_UNKNOWN, "redemption_id");
    FAIL(RB, "{'redemption_id':'1','code':'A'}", E_UNKNOWN, "code");
    FAIL(RB, "{'redemption_id':'1','order':{}}", E_UNKNOWN, "order");
    FAIL(V, "{'code':'A','order':{'amount':1},'':1}", E_UNKNOWN, "(empty)");
    FAIL(V, "{'code':'A','order':{'amount':1,'':1}}",
         E_UNKNOWN, "order.(empty)");

    /* the first unknown key in body order is reported */
    FAIL(V, "{'zz':1,'code':'A','aa':2,'order':{'amount':1}}",
         E_UNKNOWN, "zz");

    /* unknown keys of an object come before its fields' errors */
    FAIL(V, "{'code':'','order':{'amount':-1},'x':1}", E_UNKNOWN, "x");
    FAIL(V, "{'code':'A','order':{'amount':-1,'x':1}}",
         E_UNKNOWN, "order.x");

    /* but not before the errors of earlier fields */
    FAIL(V, "{'code':'','order':{'amount':1,'x':1}}", E_CODE, "code");

    /* client bytes in a key are made safe */
    FAIL(V, "{'code':'A','order':{'amount':1},'a\\'b\\\\c\\n\\u00e9':1}",
         E_UNKNOWN, "a?b?c???");

    /* a 10 KB key is truncated */
    sb_add(&sb, "{\"code\":\"A\",\"order\":{\"amount\":1},\"");
    sb_rep(&sb, "k", 10000);
    sb_add(&sb, "\":1}");
    memset(want, 'k', sizeof(want) - 4);
    memcpy(want + sizeof(want) - 4, "...", 4);
    check_fail(parse_ex(V, sb.data, sb.len, 0, NULL, 0), E_UNKNOWN, want,
               __FILE__, __LINE__);
    assert_int_equal(strlen(err.field), sizeof(err.field) - 1);
    assert_non_null(strstr(err.message, "k... is not a known field"));

    free(sb.data);
}


/* missing_field */

static void
test_missing_field(void **state)
{
    (void) state;

    FAIL(V, "{}", E_MISSING, "code");
    FAIL(V, "{'order':{'amount':1}}", E_MISSING, "code");
    FAIL(R, "{'code':null,'order':{'amount':1}}", E_MISSING, "code");
    FAIL(V, "{'code':'A'}", E_MISSING, "order");
    FAIL(V, "{'code':'A','order':null}", E_MISSING, "order");
    FAIL(V, "{'code':'A','order':{}}", E_MISSING, "order.amount");
    FAIL(V, "{'code':'A','order':{'amount':null}}", E_MISSING, "order.amount");
    FAIL(V, "{'code':'A','order':{'items':null}}", E_MISSING, "order.amount");
    FAIL(V, "{'code':'A','order':{'id':'x','currency':'EUR'}}",
         E_MISSING, "order.amount");
    FAIL(V, "{'code':'A','order':{'items':[{'price':1}]}}",
         E_MISSING, "order.items[0].sku");
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a','price':1},"
            "{'sku':null,'price':1}]}}", E_MISSING, "order.items[1].sku");
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a'}]}}",
         E_MISSING, "order.items[0].price");
    FAIL(V, "{'code':'A','order':{'amount':3,'items':[{'sku':'a',"
            "'price':null}]}}", E_MISSING, "order.items[0].price");
    FAIL(RB, "{}", E_MISSING, "redemption_id");
    FAIL(RB, "{'amount':1}", E_MISSING, "redemption_id");
    FAIL(RB, "{'redemption_id':null}", E_MISSING, "redemption_id");
}


/* invalid_code */

static void
test_invalid_code(void **state)
{
    sb_t  sb = { NULL, 0, 0 };

    (void) state;

    FAIL(V, "{'code':'','order':{'amount':1}}", E_CODE, "code");
    /* spaces pass here; the module's normalisation drops them */
    OK(V, "{'code':' ','order':{'amount':1}}");
    OK(V, "{'code':'SAVE 10','order':{'amount':1}}");
    OK(V, "{'code':' SAVE10','order':{'amount':1}}");
    FAIL(V, "{'code':'SAVE10\\t','order':{'amount':1}}", E_CODE, "code");
    FAIL(V, "{'code':'SAVE10\\n','order':{'amount':1}}", E_CODE, "code");
    FAIL(V, "{'code':'A\\u007f','order':{'amount':1}}", E_CODE, "code");
    FAIL_LIT(V, "{\"code\":\"A\x7f\",\"order\":{\"amount\":1}}",
             E_CODE, "code");
    FAIL(V, "{'code':'\\u00e9t\\u00e9','order':{'amount':1}}", E_CODE, "code");
    FAIL(V, "{'code':'\\u00a0A','order':{'amount':1}}", E_CODE, "code");
    FAIL_LIT(V, "{\"code\":\"\xc3\xa9\",\"order\":{\"amount\":1}}",
             E_CODE, "code");

    /* all of 0x21-0x7e is fine */
    OK(V, "{'code':'!\\'#$%&()*+,-./09:;<=>?@AZ[\\\\]^_`az{|}~',"
          "'order':{'amount':1}}");
    STR_EQ(req.code, "!\"#$%&()*+,-./09:;<=>?@AZ[\\]^_`az{|}~");

    /* 64 vs 65 */
    OK(V, "{'code':'0123456789012345678901234567890123456789012345678901"
          "234567890123','order':{'amount':1}}");
    assert_int_equal(req.code.len, 64);
    FAIL(V, "{'code':'0123456789012345678901234567890123456789012345678901"
            "2345678901234','order':{'amount':1}}", E_CODE, "code");

    /* 10 KB */
    sb_add(&sb, "{\"code\":\"");
    sb_rep(&sb, "ABCDEFGHIJ", 1024);
    sb_add(&sb, "\",\"order\":{\"amount\":1}}");
    check_fail(parse_ex(R, sb.data, sb.len, 0, NULL, 0), E_CODE, "code",
               __FILE__, __LINE__);

    free(sb.data);
}


static void
test_check_code(void **state)
{
    ngx_http_voucher_limits_t  lim;

    (void) state;

    ngx_http_voucher_limits_init(&lim);

#define CODE(s)  ngx_http_voucher_check_code((const unsigned char *) s,       \
                                             sizeof(s) - 1, &lim, &err)

    assert_int_equal(CODE("SAVE10"), 0);
    assert_int_equal(CODE("!~"), 0);
    assert_int_equal(CODE("01234567890123456789012345678901234567890123456789"
                          "01234567890123"), 0);

    memset(&err, 0, sizeof(err));
    assert_int_equal(CODE("01234567890123456789012345678901234567890123456789"
                          "012345678901234"), -1);
    assert_string_equal(err.reason, E_CODE);
    assert_string_equal(err.field, "code");

    assert_int_equal(CODE(""), -1);
    assert_int_equal(CODE("A B"), 0);     /* normalized later */
    assert_int_equal(CODE("A\tB"), -1);
    assert_int_equal(CODE("A\0B"), -1);
    assert_int_equal(CODE("A\x7f"), -1);
    assert_int_equal(CODE("\xc3\xa9"), -1);
    assert_int_equal(CODE("A\r\n"), -1);
    assert_string_equal(err.reason, E_CODE);

    lim.max_code_len = 3;
    assert_int_equal(CODE("ABC"), 0);
    assert_int_equal(CODE("ABCD"), -1);

    assert_int_equal(ngx_http_voucher_check_code(NULL, 0, &lim, &err), -1);
    assert_string_equal(err.reason, E_CODE);

    /* a NULL buffer with a length is the caller's bug */
    assert_int_equal(ngx_http_voucher_check_code(NULL, 5, &lim, &err), -1);
    assert_string_equal(err.reason, E_INTERNAL);

    /* err may be NULL */
    assert_int_equal(ngx_http_voucher_check_code((const unsigned char *) "",
                                                 0, &lim, NULL), -1);

#undef CODE
}


/* invalid_field: strings */

static void
test_text_fields(void **state)
{
    sb_t  sb = { NULL, 0, 0 };

    (void) state;

    FAIL(V, "{'code':'A','customer':'','order':{'amount':1}}",
         E_FIELD, "customer");
    FAIL(V, "{'code':'A','customer':'a\\nb','order':{'amount':1}}",
         E_FIELD, "customer");
    FAIL(V, "{'code':'A','customer':'\\u001f','order':{'amount':1}}",
         E_FIELD, "customer");
    FAIL(V, "{'code':'A','customer':'x\\u007f','order':{'amount':1}}",
         E_FIELD, "customer");
    FAIL_LIT(V, "{\"code\":\"A\",\"customer\":\"\x7f\",\"order\":{\"amount\""
             ":1}}", E_FIELD, "customer");
    FAIL(V, "{'code':'A','order':{'amount':1,'id':''}}", E_FIELD, "order.id");
    FAIL(V, "{'code':'A','order':{'amount':1,'id':'\\r'}}",
         E_FIELD, "order.id");
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'','price':1}]}}",
         E_FIELD, "order.items[0].sku");
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a\\tb','price':1}]}}",
         E_FIELD, "order.items[0].sku");
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a','price':1,"
            "'category':''}]}}", E_FIELD, "order.items[0].category");
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a','price':1,"
            "'category':'\\b'}]}}", E_FIELD, "order.items[0].category");

    /* spaces, quotes, backslashes, unicode are fine in text */
    OK(V, "{'code':'A',"
          "'customer':' J\\u00f6rg \\'O\\\\Brien\\' \\ud83d\\ude00',"
          "'order':{'amount':1}}");
    STR_EQ(req.customer, " J\xc3\xb6rg \"O\\Brien\" \xf0\x9f\x98\x80");
    OK_LIT(V, "{\"code\":\"A\",\"customer\":\"\xe6\x97\xa5\xe6\x9c\xac\","
           "\"order\":{\"amount\":1}}");
    STR_EQ(req.customer, "\xe6\x97\xa5\xe6\x9c\xac");

    /* C1 controls and noncharacters are valid UTF-8 and not < 0x20 */
    OK(V, "{'code':'A','customer':'\\u0085\\uffff\\ufeff','order':"
          "{'amount':1}}");
    assert_int_equal(req.customer.len, 8);

    /* 128 vs 129 bytes; the limit is in bytes, not characters */
    sb_add(&sb, "{\"code\":\"A\",\"customer\":\"");
    sb_rep(&sb, "x", 128);
    sb_add(&sb, "\",\"order\":{\"amount\":1}}");
    check_ok(parse_ex(V, sb.data, sb.len, 0, NULL, 0), __FILE__, __LINE__);
    assert_int_equal(req.customer.len, 128);

    sb.len = 0;
    sb_add(&sb, "{\"code\":\"A\",\"customer\":\"");
    sb_rep(&sb, "x", 129);
    sb_add(&sb, "\",\"order\":{\"amount\":1}}");
    check_fail(parse_ex(V, sb.data, sb.len, 0, NULL, 0), E_FIELD,
               "customer", __FILE__, __LINE__);

    sb.len = 0;
    sb_add(&sb, "{\"code\":\"A\",\"customer\":\"");
    sb_rep(&sb, "\\u00e9", 64);
    sb_add(&sb, "\",\"order\":{\"amount\":1}}");
    check_ok(parse_ex(V, sb.data, sb.len, 0, NULL, 0), __FILE__, __LINE__);
    assert_int_equal(req.customer.len, 128);

    sb.len = 0;
    sb_add(&sb, "{\"code\":\"A\",\"customer\":\"");
    sb_rep(&sb, "\xc3\xa9", 64);
    sb_add(&sb, "x\",\"order\":{\"amount\":1}}");
    check_fail(parse_ex(V, sb.data, sb.len, 0, NULL, 0), E_FIELD,
               "customer", __FILE__, __LINE__);

    sb.len = 0;
    sb_add(&sb, "{\"code\":\"A\",\"order\":{\"items\":[{\"price\":1,"
           "\"sku\":\"");
    sb_rep(&sb, "s", 129);
    sb_add(&sb, "\"}]}}");
    check_fail(parse_ex(V, sb.data, sb.len, 0, NULL, 0), E_FIELD,
               "order.items[0].sku", __FILE__, __LINE__);

    free(sb.data);
}


static void
test_currency(void **state)
{
    (void) state;

    OK(V, "{'code':'A','order':{'amount':1,'currency':'USD'}}");
    STR_EQ(req.currency, "USD");
    OK(V, "{'code':'A','order':{'amount':1,'currency':'AZZ'}}");

#define BAD_CUR(c)                                                            \
    FAIL(V, "{'code':'A','order':{'amount':1,'currency':'" c "'}}",          \
         E_FIELD, "order.currency")

    BAD_CUR("");
    BAD_CUR("E");
    BAD_CUR("EU");
    BAD_CUR("EURO");
    BAD_CUR("eur");
    BAD_CUR("Eur");
    BAD_CUR("E1R");
    BAD_CUR("EU ");
    BAD_CUR(" EU");
    BAD_CUR("EU@");
    BAD_CUR("EU[");
    BAD_CUR("\\u20acUR");
    BAD_CUR("\\u00c9UR");
    BAD_CUR("EU\\n");

#undef BAD_CUR
}


static void
test_idempotency_key(void **state)
{
    sb_t  sb = { NULL, 0, 0 };

    (void) state;

    OK(V, "{'code':'A','idempotency_key':'!~0aZ:-_/.','order':{'amount':1}}");
    STR_EQ(req.idempotency_key, "!~0aZ:-_/.");

#define BAD_KEY(op, pre, k, post)                                             \
    FAIL(op, pre "'idempotency_key':'" k "'" post, E_FIELD, "idempotency_key")

    BAD_KEY(V, "{'code':'A',", "", ",'order':{'amount':1}}");
    BAD_KEY(V, "{'code':'A',", " ", ",'order':{'amount':1}}");
    BAD_KEY(V, "{'code':'A',", "a b", ",'order':{'amount':1}}");
    BAD_KEY(V, "{'code':'A',", "a\\t", ",'order':{'amount':1}}");
    BAD_KEY(V, "{'code':'A',", "a\\u007f", ",'order':{'amount':1}}");
    BAD_KEY(V, "{'code':'A',", "\\u00e9", ",'order':{'amount':1}}");
    BAD_KEY(R, "{'code':'A',", "\\ud83d\\ude00", ",'order':{'amount':1}}");
    BAD_KEY(RB, "{'redemption_id':'1',", "", "}");
    BAD_KEY(RB, "{'redemption_id':'1',", "x y", "}");

#undef BAD_KEY

    sb_add(&sb, "{\"code\":\"A\",\"idempotency_key\":\"");
    sb_rep(&sb, "k", 128);
    sb_add(&sb, "\",\"order\":{\"amount\":1}}");
    check_ok(parse_ex(V, sb.data, sb.len, 0, NULL, 0), __FILE__, __LINE__);
    assert_int_equal(req.idempotency_key.len, 128);

    sb.len = 0;
    sb_add(&sb, "{\"code\":\"A\",\"idempotency_key\":\"");
    sb_rep(&sb, "k", 129);
    sb_add(&sb, "\",\"order\":{\"amount\":1}}");
    check_fail(parse_ex(V, sb.data, sb.len, 0, NULL, 0), E_FIELD,
               "idempotency_key", __FILE__, __LINE__);

    free(sb.data);
}


static void
test_redemption_id(void **state)
{
    sb_t  sb = { NULL, 0, 0 };

    (void) state;

    OK(RB, "{'redemption_id':'0'}");
    OK(RB, "{'redemption_id':'-'}");
    OK(RB, "{'redemption_id':'1700000000123-0007'}");

#define BAD_RID(r)                                                            \
    FAIL(RB, "{'redemption_id':" r "}", E_FIELD, "redemption_id")

    BAD_RID("''");
    BAD_RID("'abc'");
    BAD_RID("'12a'");
    BAD_RID("' 12'");
    BAD_RID("'12 '");
    BAD_RID("'1+2'");
    BAD_RID("'1_2'");
    BAD_RID("'\\u0661'");           /* ARABIC-INDIC DIGIT ONE */
    BAD_RID("12");                  /* a number, not a string */

#undef BAD_RID

    sb_add(&sb, "{\"redemption_id\":\"");
    sb_rep(&sb, "1", 64);
    sb_add(&sb, "\"}");
    check_ok(parse_ex(RB, sb.data, sb.len, 0, NULL, 0), __FILE__, __LINE__);
    assert_int_equal(req.redemption_id.len, 64);

    sb.len = 0;
    sb_add(&sb, "{\"redemption_id\":\"");
    sb_rep(&sb, "1", 65);
    sb_add(&sb, "\"}");
    check_fail(parse_ex(RB, sb.data, sb.len, 0, NULL, 0), E_FIELD,
               "redemption_id", __FILE__, __LINE__);

    free(sb.data);
}


/* invalid_field: numbers */

static void
test_amount_range(void **state)
{
    (void) state;

    OK(V, "{'code':'A','order':{'amount':0}}");
    assert_int_equal(req.amount, 0);
    OK(V, "{'code':'A','order':{'amount':10000000000000}}");
    assert_true(req.amount == MAX_AMOUNT);
    FAIL(V, "{'code':'A','order':{'amount':10000000000001}}",
         E_FIELD, "order.amount");
    FAIL(V, "{'code':'A','order':{'amount':9223372036854775807}}",
         E_FIELD, "order.amount");
    FAIL(V, "{'code':'A','order':{'amount':-1}}", E_FIELD, "order.amount");
    FAIL(V, "{'code':'A','order':{'amount':-9223372036854775808}}",
         E_FIELD, "order.amount");
    FAIL(V, "{'code':'A','order':{'amount':1.5}}", E_FIELD, "order.amount");
    FAIL(V, "{'code':'A','order':{'amount':1.0}}", E_FIELD, "order.amount");
    FAIL(V, "{'code':'A','order':{'amount':1e3}}", E_FIELD, "order.amount");
    FAIL(V, "{'code':'A','order':{'amount':'100'}}", E_FIELD, "order.amount");
    FAIL(V, "{'code':'A','order':{'amount':true}}", E_FIELD, "order.amount");

    OK(V, "{'code':'A','order':{'items':[{'sku':'a','price':10000000000000}"
          "]}}");
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a','price':10000000000001}"
            "]}}", E_FIELD, "order.items[0].price");
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a','price':-1}]}}",
         E_FIELD, "order.items[0].price");
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a','price':9.99}]}}",
         E_FIELD, "order.items[0].price");

    FAIL(RB, "{'redemption_id':'1','amount':10000000000001}",
         E_FIELD, "amount");
    FAIL(RB, "{'redemption_id':'1','amount':-5}", E_FIELD, "amount");
    FAIL(RB, "{'redemption_id':'1','amount':5.0}", E_FIELD, "amount");
}


static void
test_quantity(void **state)
{
    (void) state;

#define QTY(q)                                                                \
    "{'code':'A','order':{'items':[{'sku':'a','price':3,'quantity':" q "}]}}"

    OK(V, QTY("1"));
    assert_int_equal(req.amount, 3);
    OK(V, QTY("1000000"));
    assert_int_equal(req.items[0].quantity, 1000000);
    assert_int_equal(req.amount, 3000000);
    FAIL(V, QTY("0"), E_FIELD, "order.items[0].quantity");
    FAIL(V, QTY("1000001"), E_FIELD, "order.items[0].quantity");
    FAIL(V, QTY("-1"), E_FIELD, "order.items[0].quantity");
    FAIL(V, QTY("1e6"), E_FIELD, "order.items[0].quantity");
    FAIL(V, QTY("2.0"), E_FIELD, "order.items[0].quantity");
    FAIL(V, QTY("'2'"), E_FIELD, "order.items[0].quantity");
    FAIL(V, QTY("9223372036854775807"), E_FIELD, "order.items[0].quantity");

#undef QTY
}


static void
test_items_count(void **state)
{
    sb_t    sb = { NULL, 0, 0 };
    size_t  i, n;

    (void) state;

    for (n = 99; n <= 101; n++) {
        sb.len = 0;
        sb_add(&sb, "{\"code\":\"A\",\"order\":{\"items\":[");

        for (i = 0; i < n; i++) {
            sb_add(&sb, "%s{\"sku\":\"s%zu\",\"price\":%zu}", i ? "," : "",
                   i, i);
        }

        sb_add(&sb, "]}}");

        if (n <= 100) {
            check_ok(parse_ex(V, sb.data, sb.len, 0, NULL, 0),
                     __FILE__, __LINE__);
            assert_int_equal(req.nitems, n);
            assert_int_equal(req.amount, n * (n - 1) / 2);
            STR_EQ(req.items[n - 1].sku, n == 100 ? "s99" : "s98");
            assert_in_arena(req.items, n * sizeof(ngx_http_voucher_item_t));

        } else {
            check_fail(parse_ex(V, sb.data, sb.len, 0, NULL, 0), E_FIELD,
                       "order.items", __FILE__, __LINE__);
        }
    }

    /* [] is no items: fine with an amount, and amount is then required */
    OK(V, "{'code':'A','order':{'amount':1,'items':[]}}");
    assert_int_equal(req.nitems, 0);
    assert_int_equal(req.amount, 1);
    FAIL(V, "{'code':'A','order':{'items':[]}}", E_MISSING, "order.amount");

    /* the failing item is named by index */
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a','price':1},"
            "{'sku':'a','price':1},{'sku':'a','price':'1'}]}}",
         E_FIELD, "order.items[2].price");
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a','price':1},[]]}}",
         E_FIELD, "order.items[1]");

    free(sb.data);
}


static void
test_items_sum(void **state)
{
    sb_t                       sb = { NULL, 0, 0 };
    size_t                     i;
    ngx_http_voucher_limits_t  lim;

    (void) state;

    /* exactly max_amount, then one more */
    OK(V, "{'code':'A','order':{'items':[{'sku':'a','price':9999999999999},"
          "{'sku':'b','price':1}]}}");
    assert_true(req.amount == MAX_AMOUNT);
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a','price':9999999999999},"
            "{'sku':'b','price':2}]}}", E_FIELD, "order.items");
    OK(V, "{'code':'A','order':{'items':[{'sku':'a','price':10000000,"
          "'quantity':1000000}]}}");
    assert_true(req.amount == MAX_AMOUNT);
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a','price':10000001,"
            "'quantity':1000000}]}}", E_FIELD, "order.items");

    /* price * quantity would overflow int64 if computed naively */
    FAIL(V, "{'code':'A','order':{'items':[{'sku':'a','price':10000000000000,"
            "'quantity':1000000}]}}", E_FIELD, "order.items");

    /* checked even when the amount is given */
    FAIL(V, "{'code':'A','order':{'amount':5,'items':[{'sku':'a',"
            "'price':10000000000000},{'sku':'b','price':1}]}}",
         E_FIELD, "order.items");

    /* 100 items at max / 100 add up exactly */
    sb_add(&sb, "{\"code\":\"A\",\"order\":{\"items\":[");

    for (i = 0; i < 100; i++) {
        sb_add(&sb, "%s{\"sku\":\"s\",\"price\":100000000000}", i ? "," : "");
    }

    sb_add(&sb, "]}}");
    check_ok(parse_ex(V, sb.data, sb.len, 0, NULL, 0), __FILE__, __LINE__);
    assert_true(req.amount == MAX_AMOUNT);

    /* with an INT64_MAX limit */
    ngx_http_voucher_limits_init(&lim);
    lim.max_amount = INT64_MAX;

    OK_LIM(V, "{'code':'A','order':{'items':[{'sku':'a',"
              "'price':9223372036854775807}]}}", &lim);
    assert_true(req.amount == INT64_MAX);
    FAIL_LIM(V, "{'code':'A','order':{'items':[{'sku':'a',"
                "'price':9223372036854775807},{'sku':'a','price':1}]}}",
             &lim, E_FIELD, "order.items");
    FAIL_LIM(V, "{'code':'A','order':{'items':[{'sku':'a',"
                "'price':9223372036854775807,'quantity':2}]}}",
             &lim, E_FIELD, "order.items");
    FAIL_LIM(V, "{'code':'A','order':{'items':[{'sku':'a',"
                "'price':4611686018427387904,'quantity':2}]}}",
             &lim, E_FIELD, "order.items");
    OK_LIM(V, "{'code':'A','order':{'items':[{'sku':'a',"
              "'price':4611686018427387903,'quantity':2}]}}", &lim);
    assert_true(req.amount == INT64_MAX - 1);

    free(sb.data);
}


/* every JSON type in every field */

#define K_STR   1
#define K_INT   2
#define K_OBJ   3
#define K_ARR   4

typedef struct {
    int          op;
    const char  *tmpl;      /* @ is replaced by the value */
    const char  *field;
    int          kind;
    int          required;
    const char  *good;      /* a valid string value */
    const char  *empty;     /* reason for {} / [] / "" */
    const char  *empty_field;
} field_case_t;


static const field_case_t  field_cases[] = {
    { V, "{'code':@,'order':{'amount':1}}", "code", K_STR, 1, "'C'",
      E_CODE, "code" },
    { V, "{'code':'C','customer':@,'order':{'amount':1}}", "customer",
      K_STR, 0, "'c'", E_FIELD, "customer" },
    { R, "{'code':'C','idempotency_key':@,'order':{'amount':1}}",
      "idempotency_key", K_STR, 0, "'k'", E_FIELD, "idempotency_key" },
    { V, "{'code':'C','order':@}", "order", K_OBJ, 1, NULL,
      E_MISSING, "order.amount" },
    { V, "{'code':'C','order':{'amount':1,'id':@}}", "order.id", K_STR, 0,
      "'o'", E_FIELD, "order.id" },
    { V, "{'code':'C','order':{'amount':@,'items':[{'sku':'s','price':1}]}}",
      "order.amount", K_INT, 0, NULL, NULL, NULL },
    { V, "{'code':'C','order':{'amount':1,'currency':@}}", "order.currency",
      K_STR, 0, "'EUR'", E_FIELD, "order.currency" },
    { V, "{'code':'C','order':{'amount':1,'items':@}}", "order.items", K_ARR,
      0, NULL, NULL, NULL },
    { V, "{'code':'C','order':{'amount':1,'items':[@]}}", "order.items[0]",
      K_OBJ, 2, NULL, E_MISSING, "order.items[0].sku" },
    { V, "{'code':'C','order':{'amount':1,'items':[{'sku':@,'price':1}]}}",
      "order.items[0].sku", K_STR, 1, "'s'", E_FIELD, "order.items[0].sku" },
    { V, "{'code':'C','order':{'amount':1,'items':[{'sku':'s','price':1,"
         "'category':@}]}}", "order.items[0].category", K_STR, 0, "'c'",
      E_FIELD, "order.items[0].category" },
    { V, "{'code':'C','order':{'amount':1,'items':[{'sku':'s','price':@}]}}",
      "order.items[0].price", K_INT, 1, NULL, NULL, NULL },
    { V, "{'code':'C','order':{'amount':1,'items':[{'sku':'s','price':1,"
         "'quantity':@}]}}", "order.items[0].quantity", K_INT, 0, NULL,
      NULL, NULL },
    { RB, "{'redemption_id':@}", "redemption_id", K_STR, 1, "'1-2'",
      E_FIELD, "redemption_id" },
    { RB, "{'redemption_id':'1','amount':@}", "amount", K_INT, 0, NULL,
      NULL, NULL },
    { RB, "{'redemption_id':'1','idempotency_key':@}", "idempotency_key",
      K_STR, 0, "'k'", E_FIELD, "idempotency_key" },
};


static const char  *json_values[] = {
    "null", "true", "false", "0", "1", "-1", "1.5", "1.0", "1e2", "-0.0",
    "'s'", "''", "'1'", "[]", "[1]", "['s']", "{}", "{'a':1}", NULL
};


static void
run_field_case(const field_case_t *fc, const char *value, int good)
{
    int          rc;
    sb_t         sb = { NULL, 0, 0 };
    const char  *p, *reason, *field;

    for (p = fc->tmpl; *p; p++) {
        if (*p == '@') {
            sb_add(&sb, "%s", value);

        } else {
            sb_add(&sb, "%c", *p);
        }
    }

    reason = E_FIELD;
    field = fc->field;

    if (good) {
        reason = NULL;

    } else if (strcmp(value, "null") == 0) {
        reason = fc->required == 1 ? E_MISSING
                 : fc->required == 2 ? E_FIELD : NULL;

    } else if (fc->kind == K_STR && value[0] == '\'') {
        if (strcmp(value, "''") == 0) {
            reason = fc->empty;
            field = fc->empty_field;

        } else if (strcmp(value, "'s'") == 0) {
            /* "s" is valid text, not a valid code / currency / rid */
            if (strcmp(fc->field, "code") == 0
                || strcmp(fc->field, "customer") == 0
                || strcmp(fc->field, "order.id") == 0
                || strcmp(fc->field, "idempotency_key") == 0
                || strstr(fc->field, "sku") != NULL
                || strstr(fc->field, "category") != NULL)
            {
                reason = NULL;
            }

        } else if (strcmp(value, "'1'") == 0) {
            if (strcmp(fc->field, "order.currency") != 0) {
                reason = NULL;
            }
        }

    } else if (fc->kind == K_INT) {
        if (strcmp(value, "1") == 0) {
            reason = NULL;

        } else if (strcmp(value, "0") == 0) {
            reason = strstr(fc->field, "quantity") ? E_FIELD : NULL;
        }

    } else if (fc->kind == K_OBJ) {
        if (strcmp(value, "{}") == 0) {
            reason = fc->empty;
            field = fc->empty_field;

        } else if (strcmp(value, "{'a':1}") == 0) {
            reason = E_UNKNOWN;
            field = strcmp(fc->field, "order") == 0 ? "order.a"
                                                    : "order.items[0].a";
        }

    } else if (fc->kind == K_ARR) {
        if (strcmp(value, "[]") == 0) {
            reason = fc->empty;
            field = fc->empty_field;

        } else if (value[0] == '[') {
            field = "order.items[0]";
        }
    }

    sb_add(&sb, "%s", "");  /* make sure sb.data is a C string */

    rc = parse_ex(fc->op, sb.data, sb.len, 1, NULL, 0);

    if (reason == NULL ? rc != 0
        : rc != -1 || strcmp(err.reason, reason) != 0
          || strcmp(err.field, field) != 0)
    {
        print_error("%s = %s in %s: expected %s at %s, got %s at %s\n",
                    fc->field, value, sb.data,
                    reason ? reason : "success", reason ? field : "-",
                    rc == 0 ? "success" : err.reason, err.field);
        fail();
    }

    free(sb.data);
}


static void
test_every_type_in_every_field(void **state)
{
    size_t  i, j;

    (void) state;

    for (i = 0; i < sizeof(field_cases) / sizeof(field_cases[0]); i++) {
        for (j = 0; json_values[j] != NULL; j++) {
            run_field_case(&field_cases[i], json_values[j], 0);
        }

        if (field_cases[i].good) {
            run_field_case(&field_cases[i], field_cases[i].good, 1);
        }
    }
}


/* tiny limits */

static void
test_custom_limits(void **state)
{
    ngx_http_voucher_limits_t  lim;

    (void) state;

    lim.max_code_len = 3;
    lim.max_str_len = 2;
    lim.max_items = 1;
    lim.max_amount = 100;

    OK_LIM(V, "{'code':'ABC','customer':'ab','idempotency_key':'ab',"
              "'order':{'id':'o','currency':'EUR','items':[{'sku':'ab',"
              "'category':'cd','price':50,'quantity':2}]}}", &lim);
    assert_int_equal(req.amount, 100);

    FAIL_LIM(V, "{'code':'ABCD','order':{'amount':1}}", &lim,
             E_CODE, "code");
    FAIL_LIM(V, "{'code':'A','customer':'abc','order':{'amount':1}}", &lim,
             E_FIELD, "customer");
    FAIL_LIM(V, "{'code':'A','idempotency_key':'abc','order':{'amount':1}}",
             &lim, E_FIELD, "idempotency_key");
    FAIL_LIM(V, "{'code':'A','order':{'amount':101}}", &lim,
             E_FIELD, "order.amount");
    FAIL_LIM(V, "{'code':'A','order':{'items':[{'sku':'a','price':1},"
                "{'sku':'b','price':1}]}}", &lim, E_FIELD, "order.items");
    FAIL_LIM(V, "{'code':'A','order':{'items':[{'sku':'a','price':51,"
                "'quantity':2}]}}", &lim, E_FIELD, "order.items");
    FAIL_LIM(RB, "{'redemption_id':'1','amount':101}", &lim,
             E_FIELD, "amount");

    /* currency and redemption_id have fixed rules */
    OK_LIM(RB, "{'redemption_id':'12345'}", &lim);

    /* no items allowed at all */
    lim.max_items = 0;
    FAIL_LIM(V, "{'code':'A','order':{'items':[{'sku':'a','price':1}]}}",
             &lim, E_FIELD, "order.items");
}


/* misuse by the caller */

/*
 * The field table: the gate's rows answer with their messages, byte for
 * byte, under the gate's names; and a value the gate's check takes is
 * one the JSON parser takes, for every row the gate uses.
 */

static const char *
json_str(sb_t *sb, const unsigned char *s, size_t len)
{
    size_t  i;

    sb->len = 0;
    sb_add(sb, "\"");

    for (i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) {
            sb_add(sb, "\\u%04x", s[i]);

        } else if (s[i] == '"' || s[i] == '\\') {
            sb_add(sb, "\\%c", s[i]);

        } else {
            sb_add(sb, "%c", s[i]);
        }
    }

    sb_add(sb, "\"");

    return sb->data;
}


static void
test_field_table(void **state)
{
    int                              rc_field, rc_parse;
    char                             long_a[130];
    size_t                           i, j, n;
    int64_t                          amount;
    sb_t                             sb = { NULL, 0, 0 }, js = { NULL, 0, 0 };
    unsigned char                   *a;
    const char                      *v;
    ngx_http_voucher_error_t         ferr;
    const ngx_http_voucher_field_t  *f;

    static const struct {
        int          row;
        const char  *gate;
        const char  *message;
        const char  *body;     /* %s: the value */
    } rows[] = {
        { NGX_HTTP_VOUCHER_FIELD_CUSTOMER_ROW, "customer",
          "The customer must be 1 to 128 characters, no control "
          "characters.",
          "{\"code\":\"A\",\"customer\":%s,\"order\":{\"amount\":1}}" },
        { NGX_HTTP_VOUCHER_FIELD_ORDER_ID_ROW, "order_id",
          "The order id must be 1 to 128 characters, no control "
          "characters.",
          "{\"code\":\"A\",\"order\":{\"amount\":1,\"id\":%s}}" },
        { NGX_HTTP_VOUCHER_FIELD_CURRENCY_ROW, "currency",
          "The currency must be three capital letters (ISO 4217).",
          "{\"code\":\"A\",\"order\":{\"amount\":1,\"currency\":%s}}" },
        { NGX_HTTP_VOUCHER_FIELD_IDEMPOTENCY_ROW, "idempotency_key",
          "The idempotency key must be 1 to 128 printable ASCII "
          "characters.",
          "{\"code\":\"A\",\"idempotency_key\":%s,\"order\":{\"amount\":1}}" },
        { NGX_HTTP_VOUCHER_FIELD_ORDER_AMOUNT_ROW, "order_amount",
          "The order amount must be an integer in minor units, 0 to 10^13.",
          "{\"code\":\"A\",\"order\":{\"amount\":%s}}" },
        { NGX_HTTP_VOUCHER_FIELD_CODE_ROW, "code", NULL,
          "{\"code\":%s,\"order\":{\"amount\":1}}" },
    };

    const char  *values[] = {
        "", "a", "A", "EUR", "eur", "EURO", "E1R", "E R", "a b", "a\tb",
        "a\x01", "x\x7f", "\xc3\xa9t\xc3\xa9", "\"q\"", "\\", "~!", "0",
        "1", "12", "1250", "12.50", "-1", "1e3", "10000000000000",
        "10000000000001", "99999999999999", "0x10", NULL, NULL
    };

    (void) state;

    memset(long_a, 'a', sizeof(long_a));
    long_a[128] = '\0';
    n = sizeof(values) / sizeof(values[0]) - 2;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        f = &ngx_http_voucher_fields[rows[i].row];

        assert_string_equal(f->gate, rows[i].gate);

        if (rows[i].message) {
            assert_string_equal(f->message, rows[i].message);
        } else {
            assert_null(f->message);
        }

        for (j = 0; j <= n + 1; j++) {
            /* 128 bytes, then 129 */
            v = (j < n) ? values[j] : long_a;
            if (j == n + 1) {
                long_a[128] = 'a';
                long_a[129] = '\0';
            }

            memset(&ferr, 0, sizeof(ferr));
            amount = -1;

            rc_field = ngx_http_voucher_check_field(f,
                                         (const unsigned char *) v,
                                         strlen(v), NULL, &amount, &ferr);

            if (rc_field != 0) {
                assert_string_equal(ferr.field, rows[i].gate);

                if (rows[i].message) {
                    assert_string_equal(ferr.reason, E_FIELD);
                    assert_string_equal(ferr.message, rows[i].message);
                } else {
                    assert_string_equal(ferr.reason, E_CODE);
                }
            }

            /* the same value in a JSON body: an amount as a number */

            if (f->kind == NGX_HTTP_VOUCHER_FIELD_AMOUNT) {
                if (v[0] == '\0' || strspn(v, "0123456789") != strlen(v)
                    || (v[0] == '0' && v[1] != '\0'))
                {
                    /* not a JSON integer: the gate alone refuses it */
                    assert_int_equal(rc_field, -1);
                    continue;
                }

                sb.len = 0;
                sb_add(&sb, rows[i].body, v);

            } else {
                json_str(&js, (const unsigned char *) v, strlen(v));
                sb.len = 0;
                sb_add(&sb, rows[i].body, js.data);
            }

            a = malloc(ngx_http_voucher_parse_arena_size(sb.len, NULL));
            assert_non_null(a);

            rc_parse = ngx_http_voucher_parse_request(V,
                           (const unsigned char *) sb.data, sb.len, NULL,
                           &req, a,
                           ngx_http_voucher_parse_arena_size(sb.len, NULL),
                           &err);
            free(a);

            if (rc_parse != rc_field) {
                print_error("row %s, value \"%s\": the gate %s, the parser "
                            "%s (%s)\n", rows[i].gate, v,
                            rc_field ? "refuses" : "takes",
                            rc_parse ? "refuses" : "takes", err.message);
            }

            assert_int_equal(rc_parse, rc_field);

            if (rc_field == 0 && f->kind == NGX_HTTP_VOUCHER_FIELD_AMOUNT) {
                assert_true(amount == req.amount);
            }
        }

        long_a[128] = '\0';
    }

    free(sb.data);
    free(js.data);
}


/* the loyalty bodies: a member, an order for an earn, a page of history */

static void
test_loyalty(void **state)
{
    (void) state;

    OK(LE, "{'customer':'ann','order':{'id':'o-1','amount':12000,"
           "'items':[{'sku':'TEA','category':'drinks','price':6000,"
           "'quantity':2}]}}");
    assert_int_equal(req.op, LE);
    assert_memory_equal(req.customer.data, "ann", 3);
    assert_memory_equal(req.order_id.data, "o-1", 3);
    assert_int_equal(req.amount, 12000);
    assert_int_equal(req.nitems, 1);
    assert_int_equal(req.limit, 0);

    /* the amount from the items */
    OK(LE, "{'customer':'ann','order':{'id':'o','items':[{'sku':'A',"
           "'price':300,'quantity':3}]}}");
    assert_int_equal(req.amount, 900);

    FAIL(LE, "{'order':{'id':'o','amount':1}}", E_MISSING, "customer");
    FAIL(LE, "{'customer':'ann'}", E_MISSING, "order");
    FAIL(LE, "{'customer':'ann','order':{'amount':1}}", E_MISSING,
         "order.id");
    FAIL(LE, "{'customer':'a b','order':{'id':'o','amount':1}}", E_FIELD,
         "customer");
    FAIL(LE, "{'customer':'ann','order':{'id':'o','amount':-1}}", E_FIELD,
         "order.amount");
    FAIL(LE, "{'customer':'ann','code':'X','order':{'id':'o','amount':1}}",
         E_UNKNOWN, "code");
    FAIL(LE, "{'customer':'ann','points':5,'order':{'id':'o','amount':1}}",
         E_UNKNOWN, "points");

    OK(LB, "{'customer':'ann'}");
    assert_int_equal(req.op, LB);
    assert_null(req.order_id.data);
    assert_int_equal(req.amount, NGX_HTTP_VOUCHER_UNSET);
    FAIL(LB, "{}", E_MISSING, "customer");
    FAIL(LB, "{'customer':''}", E_FIELD, "customer");
    FAIL(LB, "{'customer':'ann','order':{'id':'o','amount':1}}", E_UNKNOWN,
         "order");
    FAIL(LB, "{'customer':'ann','limit':5}", E_UNKNOWN, "limit");

    OK(LH, "{'customer':'ann'}");
    assert_int_equal(req.limit, 20);
    assert_null(req.before.data);
    OK(LH, "{'customer':'ann','limit':100,'before':'1795404532466-1'}");
    assert_int_equal(req.limit, 100);
    assert_memory_equal(req.before.data, "1795404532466-1", 15);
    FAIL(LH, "{'customer':'ann','limit':0}", E_FIELD, "limit");
    FAIL(LH, "{'customer':'ann','limit':101}", E_FIELD, "limit");
    FAIL(LH, "{'customer':'ann','limit':'5'}", E_FIELD, "limit");
    FAIL(LH, "{'customer':'ann','before':'x'}", E_FIELD, "before");
}


static void
test_event(void **state)
{
    (void) state;

    OK(EV, "{'id':'ev-1','type':'signup','customer':'mali',"
           "'referral_code':'ref-abc','data':{'name':'Mali',"
           "'phone':'081-234-5678','tags':'vip'}}");
    assert_int_equal(req.op, EV);
    assert_string_equal((char *) req.event_id.data, "ev-1");
    assert_string_equal((char *) req.event_type.data, "signup");
    assert_string_equal((char *) req.customer.data, "mali");
    assert_string_equal((char *) req.referral_code.data, "ref-abc");
    assert_string_equal((char *) req.attrs[0].data, "Mali");
    assert_string_equal((char *) req.attrs[1].data, "081-234-5678");
    assert_null(req.attrs[2].data);
    assert_string_equal((char *) req.attrs[6].data, "vip");
    assert_int_equal(req.timestamp, NGX_HTTP_VOUCHER_UNSET);
    assert_int_equal(req.amount, NGX_HTTP_VOUCHER_UNSET);

    OK(EV, "{'id':'ev-2','type':'purchase','customer':'mali',"
           "'timestamp':1796000000,'order':{'id':'o-1','currency':'THB',"
           "'items':[{'sku':'A','price':300,'quantity':3}]}}");
    assert_int_equal(req.timestamp, 1796000000);
    assert_int_equal(req.amount, 900);
    assert_int_equal(req.nitems, 1);
    assert_string_equal((char *) req.order_id.data, "o-1");

    /* a type of the shop's own; null as absent */
    OK(EV, "{'id':'e','type':'wishlist_added2','customer':'c','order':null,"
           "'data':null,'referral_code':null,'timestamp':0}");
    assert_int_equal(req.timestamp, 0);
    /* the longest id and type */
    OK(EV, "{'id':'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
           "xxxxxxxxxxxxxxxxxxxxxxxx',"
           "'type':'abbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb','customer':'c'}");

    FAIL(EV, "{'type':'signup','customer':'c'}", E_MISSING, "id");
    FAIL(EV, "{'id':'e','customer':'c'}", E_MISSING, "type");
    FAIL(EV, "{'id':'e','type':'signup'}", E_MISSING, "customer");
    FAIL(EV, "{'id':'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
             "xxxxxxxxxxxxxxxxxxxxxxxxx','type':'signup','customer':'c'}",
         E_FIELD, "id");
    FAIL(EV, "{'id':'a b','type':'signup','customer':'c'}", E_FIELD, "id");
    FAIL(EV, "{'id':'e','type':'abbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',"
             "'customer':'c'}", E_FIELD, "type");
    FAIL(EV, "{'id':'e','type':'Signup','customer':'c'}", E_FIELD, "type");
    FAIL(EV, "{'id':'e','type':'1st','customer':'c'}", E_FIELD, "type");
    FAIL(EV, "{'id':'e','type':'sign-up','customer':'c'}", E_FIELD, "type");
    FAIL(EV, "{'id':'e','type':'points_expiring','customer':'c'}", E_FIELD,
         "type");
    FAIL(EV, "{'id':'e','type':'signup','customer':'c d'}", E_FIELD,
         "customer");
    FAIL(EV, "{'id':'e','type':'signup','customer':'c','timestamp':-1}",
         E_FIELD, "timestamp");
    FAIL(EV, "{'id':'e','type':'signup','customer':'c',"
             "'timestamp':1099511627777}", E_FIELD, "timestamp");
    FAIL(EV, "{'id':'e','type':'signup','customer':'c','timestamp':'1'}",
         E_FIELD, "timestamp");
    FAIL(EV, "{'id':'e','type':'purchase','customer':'c'}", E_MISSING,
         "order");
    FAIL(EV, "{'id':'e','type':'purchase','customer':'c','order':{}}",
         E_MISSING, "order.amount");
    FAIL(EV, "{'id':'e','type':'signup','customer':'c','order':{'amount':1}}",
         E_FIELD, "order");
    FAIL(EV, "{'id':'e','type':'referral','customer':'c',"
             "'referral_code':'X'}", E_FIELD, "referral_code");
    FAIL(EV, "{'id':'e','type':'signup','customer':'c','referral_code':''}",
         NGX_HTTP_VOUCHER_ERR_INVALID_CODE, "referral_code");
    FAIL(EV, "{'id':'e','type':'purchase','customer':'c',"
             "'order':{'amount':1},'data':{}}", E_FIELD, "data");
    FAIL(EV, "{'id':'e','type':'signup','customer':'c','data':[]}", E_FIELD,
         "data");
    FAIL(EV, "{'id':'e','type':'signup','customer':'c','data':{'age':'3'}}",
         E_UNKNOWN, "data.age");
    FAIL(EV, "{'id':'e','type':'signup','customer':'c','data':{'name':3}}",
         E_FIELD, "data.name");
    FAIL(EV, "{'id':'e','type':'signup','customer':'c','data':{'name':''}}",
         E_FIELD, "data.name");
    FAIL(EV, "{'id':'e','type':'signup','customer':'c','code':'X'}",
         E_UNKNOWN, "code");
}


static void
test_internal_errors(void **state)
{
    unsigned char               buf[256];
    const char                 *js, *js2;
    ngx_http_voucher_request_t  r;

    (void) state;

    js = "{\"code\":\"A\",\"order\":{\"amount\":1}}";
    js2 = "{\"code\":\"A\",\"order\":{\"items\":[{\"sku\":\"s\","
          "\"price\":1}]}}";

    memset(&err, 0, sizeof(err));
    assert_int_equal(ngx_http_voucher_parse_request(0,
                     (const unsigned char *) js, strlen(js), NULL, &r, buf,
                     sizeof(buf), &err), -1);
    assert_string_equal(err.reason, E_INTERNAL);

    assert_int_equal(ngx_http_voucher_parse_request(
                     NGX_HTTP_VOUCHER_OP_LAST + 1,
                     (const unsigned char *) js, strlen(js), NULL, &r, buf,
                     sizeof(buf), &err), -1);
    assert_string_equal(err.reason, E_INTERNAL);

    assert_int_equal(ngx_http_voucher_parse_request(V, NULL, 5, NULL, &r, buf,
                     sizeof(buf), &err), -1);
    assert_string_equal(err.reason, E_INTERNAL);

    assert_int_equal(ngx_http_voucher_parse_request(V,
                     (const unsigned char *) js, strlen(js), NULL, NULL, buf,
                     sizeof(buf), &err), -1);
    assert_string_equal(err.reason, E_INTERNAL);

    assert_int_equal(ngx_http_voucher_parse_request(V,
                     (const unsigned char *) js, strlen(js), NULL, &r, NULL,
                     100, &err), -1);
    assert_string_equal(err.reason, E_INTERNAL);

    /* err may be NULL */
    assert_int_equal(ngx_http_voucher_parse_request(V,
                     (const unsigned char *) "x", 1, NULL, &r, buf,
                     sizeof(buf), NULL), -1);

    /* an arena on the stack at an odd address */
    assert_int_equal(ngx_http_voucher_parse_request(V,
                     (const unsigned char *) js2, strlen(js2), NULL,
                     &r, buf + 1, sizeof(buf) - 1, &err), 0);
    assert_int_equal((uintptr_t) r.items % sizeof(int64_t), 0);
    assert_true((unsigned char *) r.items >= buf + 1);
    assert_true(r.code.data >= buf + 1 && r.code.data < buf + sizeof(buf));
}


/*
 * jansson's allocations during a parse come from the parser's arena: a
 * static block, then blocks from the allocator jansson had before the
 * parse (here one that fails after a budget).  Running out of memory is
 * our problem, not the client's, though jansson 2.14 reports some failed
 * allocations as syntax errors.  Tokens are kept shorter than 16 bytes:
 * a failed growth of jansson's token buffer trips jansson issue #362
 * (assert or heap overflow).
 */

static long  alloc_budget;
static long  alloc_calls;
static long  free_calls;


static void *
failing_malloc(size_t size)
{
    alloc_calls++;

    if (alloc_budget-- <= 0) {
        return NULL;
    }

    return malloc(size);
}


static void
counting_free(void *p)
{
    if (p != NULL) {
        free_calls++;
    }

    free(p);
}


/* a redeem of n items, for a tree of about 17 bytes per byte of body */

static void
items_body(sb_t *sb, size_t n)
{
    size_t  i;

    sb->len = 0;
    sb_add(sb, "{\"code\":\"A\",\"order\":{\"id\":\"x\",\"items\":[");

    for (i = 0; i < n; i++) {
        sb_add(sb, "%s{\"sku\":\"s%zu\",\"category\":\"c\",\"price\":%zu,"
               "\"quantity\":2}", i ? "," : "", i % 1000, i % 7);
    }

    sb_add(sb, "]}}");
}


static void
test_out_of_memory(void **state)
{
    int                        rc, ok, internal, failed;
    long                       n;
    sb_t                       sb = { NULL, 0, 0 };
    json_free_t                f;
    json_malloc_t              m;
    ngx_http_voucher_limits_t  lim;

    (void) state;

    ngx_http_voucher_limits_init(&lim);
    lim.max_items = 3000;

    /* about 170 KB of tree: the static block, then 3 more */
    items_body(&sb, 3000);

    json_set_alloc_funcs(failing_malloc, counting_free);

    ok = 0;
    internal = 0;
    failed = 0;

    for (n = 0; n < 100 && !ok; n++) {
        alloc_budget = n;
        alloc_calls = 0;
        free_calls = 0;

        rc = parse_ex(R, sb.data, sb.len, 0, &lim, 0);

        /* every block taken was given back, and jansson's are restored */

        json_get_alloc_funcs(&m, &f);
        assert_true(m == failing_malloc && f == counting_free);
        assert_int_equal(free_calls, alloc_calls - (n < alloc_calls));

        if (rc == 0) {
            ok = 1;
            assert_int_equal(req.nitems, 3000);
            assert_int_equal(req.amount, 2 * (428 * 21 + 0 + 1 + 2 + 3));
            STR_EQ(req.items[2999].sku, "s999");
            continue;
        }

        failed++;

        if (strcmp(err.reason, E_INTERNAL) == 0) {
            internal++;

        } else if (strcmp(err.reason, E_JSON) != 0) {
            json_set_alloc_funcs(malloc, free);
            print_error("%ld blocks: %s at %s: %s\n", n, err.reason,
                        err.field, err.message);
            fail();
        }
    }

    json_set_alloc_funcs(malloc, free);
    free(sb.data);

    assert_true(ok);
    assert_true(failed >= 2);
    assert_true(internal >= 1);

    /* a usual body takes no block at all */

    json_set_alloc_funcs(failing_malloc, counting_free);
    alloc_budget = 0;
    alloc_calls = 0;

    OK(R, "{'code':'A','customer':'c','order':{'id':'x','currency':'EUR',"
          "'items':[{'sku':'a','price':1,'quantity':2},{'sku':'b',"
          "'category':'c','price':3}]}}");

    json_set_alloc_funcs(malloc, free);

    assert_int_equal(alloc_calls, 0);
    assert_int_equal(req.amount, 5);
}


/*
 * What the parser returns never points into jansson's tree: the tree goes
 * with its parse (under ASan, a use after it is reported), the strings
 * are copies in the caller's arena, and jansson is left as it was.
 */

static void
test_arena_lifetime(void **state)
{
    int                          rc;
    json_t                      *j;
    json_free_t                  f;
    json_malloc_t                m;
    unsigned char                a1[512], a2[512];
    ngx_http_voucher_error_t     e;
    ngx_http_voucher_request_t   r1, r2;

    static const char  b1[] = "{\"code\":\"FIRST\",\"customer\":\"one\","
                              "\"order\":{\"amount\":1}}";
    static const char  b2[] = "{\"code\":\"SECOND\",\"customer\":\"two\","
                              "\"order\":{\"amount\":2}}";
    static const char  bad[] = "{\"code\":\"X\",\"order\":{\"amount\":[1,";

    (void) state;

    rc = ngx_http_voucher_parse_request(V, (const unsigned char *) b1,
                                        sizeof(b1) - 1, NULL, &r1, a1,
                                        sizeof(a1), &e);
    assert_int_equal(rc, 0);

    rc = ngx_http_voucher_parse_request(V, (const unsigned char *) b2,
                                        sizeof(b2) - 1, NULL, &r2, a2,
                                        sizeof(a2), &e);
    assert_int_equal(rc, 0);

    rc = ngx_http_voucher_parse_request(V, (const unsigned char *) bad,
                                        sizeof(bad) - 1, NULL, &r2, a2,
                                        sizeof(a2), &e);
    assert_int_equal(rc, -1);
    assert_string_equal(e.reason, E_JSON);

    /* the first request's strings survived two more parses */

    assert_true(r1.code.data >= a1 && r1.code.data < a1 + sizeof(a1));
    assert_true(r1.customer.data >= a1 && r1.customer.data < a1 + sizeof(a1));
    assert_string_equal((char *) r1.code.data, "FIRST");
    assert_string_equal((char *) r1.customer.data, "one");
    assert_int_equal(r1.amount, 1);

    /* jansson allocates with malloc() again, after success and failure */

    json_get_alloc_funcs(&m, &f);
    assert_true(m == malloc && f == free);

    j = json_pack("{s:s, s:[i, i]}", "a", "b", "c", 1, 2);
    assert_non_null(j);
    json_decref(j);

    j = json_loads("{\"kept\": [1, 2, {\"x\": \"y\"}]}", 0, NULL);
    assert_non_null(j);

    OK(V, "{'code':'A','order':{'amount':1}}");

    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "kept"), 2),
                            "x")),
                        "y");
    json_decref(j);
}


/*
 * Many and deeply nested fields, a body of up to voucher_max_body_size's
 * default (16k): the tree outgrows the static block, nothing leaks.
 */

static void
test_arena_big_trees(void **state)
{
    char                       field[96];
    size_t                     i;
    sb_t                       sb = { NULL, 0, 0 };
    ngx_http_voucher_limits_t  lim;

    (void) state;

    /* an unknown field holding a wide object of small objects */
    sb_add(&sb, "{\"code\":\"A\",\"order\":{\"amount\":1},\"x\":{");
    for (i = 0; i < 1500; i++) {
        sb_add(&sb, "%s\"k%zu\":{}", i ? "," : "", i);
    }
    sb_add(&sb, "}}");
    FAIL_RAW(V, sb.data, sb.len, E_UNKNOWN, "x");

    /* nested 2000 deep (jansson's limit is 2048), arrays and objects */
    sb.len = 0;
    sb_add(&sb, "{\"code\":\"A\",\"order\":{\"amount\":1,\"id\":");
    for (i = 0; i < 1000; i++) {
        sb_add(&sb, "[{\"a\":");
    }
    sb_add(&sb, "1");
    for (i = 0; i < 1000; i++) {
        sb_add(&sb, "}]");
    }
    sb_add(&sb, "}}");
    FAIL_RAW(V, sb.data, sb.len, E_FIELD, "order.id");

    /* an array of 8000 small values */
    sb.len = 0;
    sb_add(&sb, "{\"code\":\"A\",\"order\":{\"amount\":1,\"items\":[");
    for (i = 0; i < 8000; i++) {
        sb_add(&sb, "%s0", i ? "," : "");
    }
    sb_add(&sb, "]}}");
    FAIL_RAW(V, sb.data, sb.len, E_FIELD, "order.items");

    /* long strings: a 12k key, and a 4k value where 128 bytes are allowed */
    sb.len = 0;
    sb_add(&sb, "{\"code\":\"A\",\"order\":{\"amount\":1,\"id\":\"");
    sb_rep(&sb, "x", 4000);
    sb_add(&sb, "\"},\"");
    sb_rep(&sb, "k", 12000);
    sb_add(&sb, "\":1}");
    memset(field, 'k', 92);
    memcpy(field + 92, "...", 4);
    FAIL_RAW(V, sb.data, sb.len, E_UNKNOWN, field);

    /* and a full cart: 100 items of every field */
    ngx_http_voucher_limits_init(&lim);
    items_body(&sb, 100);
    check_ok(parse_ex(R, sb.data, sb.len, 0, &lim, 0), __FILE__, __LINE__);
    assert_int_equal(req.nitems, 100);
    STR_EQ(req.items[99].sku, "s99");
    STR_EQ(req.items[0].category, "c");

    free(sb.data);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_teardown(test_limits_init, teardown),
        cmocka_unit_test_teardown(test_arena_size, teardown),
        cmocka_unit_test_teardown(test_arena_worst_case, teardown),
        cmocka_unit_test_teardown(test_validate_minimal, teardown),
        cmocka_unit_test_teardown(test_redeem_full, teardown),
        cmocka_unit_test_teardown(test_reserve, teardown),
        cmocka_unit_test_teardown(test_points, teardown),
        cmocka_unit_test_teardown(test_confirm_release, teardown),
        cmocka_unit_test_teardown(test_rollback, teardown),
        cmocka_unit_test_teardown(test_amount_from_items, teardown),
        cmocka_unit_test_teardown(test_defaults_and_nulls, teardown),
        cmocka_unit_test_teardown(test_invalid_json, teardown),
        cmocka_unit_test_teardown(test_invalid_utf8, teardown),
        cmocka_unit_test_teardown(test_nul_escapes, teardown),
        cmocka_unit_test_teardown(test_deep_nesting, teardown),
        cmocka_unit_test_teardown(test_duplicate_keys, teardown),
        cmocka_unit_test_teardown(test_key_fold, teardown),
        cmocka_unit_test_teardown(test_invalid_request, teardown),
        cmocka_unit_test_teardown(test_unknown_field, teardown),
        cmocka_unit_test_teardown(test_missing_field, teardown),
        cmocka_unit_test_teardown(test_invalid_code, teardown),
        cmocka_unit_test_teardown(test_check_code, teardown),
        cmocka_unit_test_teardown(test_text_fields, teardown),
        cmocka_unit_test_teardown(test_currency, teardown),
        cmocka_unit_test_teardown(test_idempotency_key, teardown),
        cmocka_unit_test_teardown(test_redemption_id, teardown),
        cmocka_unit_test_teardown(test_amount_range, teardown),
        cmocka_unit_test_teardown(test_quantity, teardown),
        cmocka_unit_test_teardown(test_items_count, teardown),
        cmocka_unit_test_teardown(test_items_sum, teardown),
        cmocka_unit_test_teardown(test_every_type_in_every_field, teardown),
        cmocka_unit_test_teardown(test_custom_limits, teardown),
        cmocka_unit_test_teardown(test_field_table, teardown),
        cmocka_unit_test_teardown(test_wallet, teardown),
        cmocka_unit_test_teardown(test_codes_qualify, teardown),
        cmocka_unit_test_teardown(test_meta, teardown),
        cmocka_unit_test_teardown(test_loyalty, teardown),
        cmocka_unit_test_teardown(test_event, teardown),
        cmocka_unit_test_teardown(test_internal_errors, teardown),
        cmocka_unit_test_teardown(test_out_of_memory, teardown),
        cmocka_unit_test_teardown(test_arena_lifetime, teardown),
        cmocka_unit_test_teardown(test_arena_big_trees, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
