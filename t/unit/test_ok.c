
/*
 * Copyright (C) ngx_voucher authors
 *
 * cmocka tests for the decoder of the positional "ok" reply
 * (ngx_http_voucher_ok.c).  Replies are built by hand as hiredis would
 * build them; element arrays are malloc()ed at their exact size so that
 * ASan catches any read past the end.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "ngx_http_voucher_ok.h"


#define MAXEL  64

/* a reply from a format: s a string, i an integer, n a nil, a an array */

typedef struct {
    redisReply    reply;
    redisReply    el[MAXEL];
    redisReply  **els;
} test_reply_t;


static test_reply_t *
build(const char *fmt, ...)
{
    size_t         i, n;
    va_list        ap;
    test_reply_t  *t;

    n = strlen(fmt);
    assert_true(n <= MAXEL);

    t = calloc(1, sizeof(test_reply_t));
    assert_non_null(t);

    t->els = malloc((n ? n : 1) * sizeof(redisReply *));
    assert_non_null(t->els);

    va_start(ap, fmt);

    for (i = 0; i < n; i++) {
        switch (fmt[i]) {

        case 's':
            t->el[i].type = REDIS_REPLY_STRING;
            t->el[i].str = va_arg(ap, char *);
            t->el[i].len = strlen(t->el[i].str);
            break;

        case 'i':
            t->el[i].type = REDIS_REPLY_INTEGER;
            t->el[i].integer = va_arg(ap, long long);
            break;

        case 'a':
            t->el[i].type = REDIS_REPLY_ARRAY;
            break;

        default:
            t->el[i].type = REDIS_REPLY_NIL;
            break;
        }

        t->els[i] = &t->el[i];
    }

    va_end(ap);

    t->reply.type = REDIS_REPLY_ARRAY;
    t->reply.elements = n;
    t->reply.element = t->els;

    return t;
}


static void
release(test_reply_t *t)
{
    free(t->els);
    free(t);
}


static const char *
str(redisReply *v)
{
    static char  buf[256];

    assert_non_null(v);
    assert_int_equal(v->type, REDIS_REPLY_STRING);
    assert_true(v->len < sizeof(buf));

    memcpy(buf, v->str, v->len);
    buf[v->len] = '\0';

    return buf;
}


static long long
num(redisReply *v)
{
    assert_non_null(v);
    assert_int_equal(v->type, REDIS_REPLY_INTEGER);

    return v->integer;
}


/* the least: percent, no customer (mask 4) */

static void
test_percent(void **state)
{
    test_reply_t           *t;
    ngx_http_voucher_ok_t   ok;

    (void) state;

    /* one element too many: a pair without its value */
    t = build("sissisiiiis", "ok", 4LL, "P1", "pct", 100LL, "percent",
              1000LL, 1000LL, 1000LL, 900LL, "_limit");
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);

    t = build("sissisiiii", "ok", 4LL, "P1", "pct", 100LL, "percent",
              1000LL, 1000LL, 1000LL, 900LL);
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), 0);

    assert_true(ok.positional);
    assert_false(ok.replayed);
    assert_int_equal(ok.pairs, 10);
    assert_string_equal(str(ok.value[NGX_HTTP_VOUCHER_OK_CODE]), "P1");
    assert_string_equal(str(ok.value[NGX_HTTP_VOUCHER_OK_CAMPAIGN]), "pct");
    assert_null(ok.value[NGX_HTTP_VOUCHER_OK_CUSTOMER]);
    assert_int_equal(num(ok.value[NGX_HTTP_VOUCHER_OK_DISCOUNT]), 100);
    assert_string_equal(str(ok.value[NGX_HTTP_VOUCHER_OK_KIND]), "percent");
    assert_null(ok.value[NGX_HTTP_VOUCHER_OK_VALUE]);
    assert_int_equal(num(ok.value[NGX_HTTP_VOUCHER_OK_PERCENT_BP]), 1000);
    assert_int_equal(num(ok.value[NGX_HTTP_VOUCHER_OK_ELIGIBLE_AMOUNT]),
                     1000);
    assert_null(ok.value[NGX_HTTP_VOUCHER_OK_CAP]);
    assert_null(ok.value[NGX_HTTP_VOUCHER_OK_CAPPED_BY]);
    assert_int_equal(num(ok.value[NGX_HTTP_VOUCHER_OK_ORDER_AMOUNT]), 1000);
    assert_int_equal(num(ok.value[NGX_HTTP_VOUCHER_OK_AMOUNT_AFTER]), 900);
    assert_null(ok.value[NGX_HTTP_VOUCHER_OK_USES_LEFT]);
    assert_null(ok.value[NGX_HTTP_VOUCHER_OK_BALANCE]);
    assert_null(ok.value[NGX_HTTP_VOUCHER_OK_EXPIRES_AT]);
    assert_null(ok.value[NGX_HTTP_VOUCHER_OK_REDEMPTION_ID]);
    assert_null(ok.value[NGX_HTTP_VOUCHER_OK_HOLD_EXPIRES_AT]);

    assert_ptr_equal(ngx_http_voucher_ok_get(&t->reply, &ok,
                                             NGX_HTTP_VOUCHER_OK_AMOUNT_AFTER),
                     ok.value[NGX_HTTP_VOUCHER_OK_AMOUNT_AFTER]);
    assert_null(ngx_http_voucher_ok_get(&t->reply, &ok,
                                        NGX_HTTP_VOUCHER_OK_N));
    assert_null(ngx_http_voucher_ok_pair(&t->reply, &ok, "_limit", 6));

    release(t);
}


/* every value, a replay, and pairs after the values */

static void
test_everything(void **state)
{
    test_reply_t           *t;
    ngx_http_voucher_ok_t   ok;

    (void) state;

    t = build("sisssisiisiiiiisisssiss", "ok",
              (long long) (1 + 8 + 16 + 32 + 64 + 128 + 256 + 512 + 1024),
              "G1", "gc", "gina", 2500LL, "gift_card", 4000LL, 2500LL,
              "cap", 4000LL, 1500LL, 4LL, 500LL, 1800000000LL, "1-1",
              1700000000LL, "_limit", "PASSED", "x", 7LL,
              "_limit_name", "ip");
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), 0);

    assert_true(ok.positional);
    assert_true(ok.replayed);
    assert_int_equal(ok.pairs, 17);
    assert_string_equal(str(ok.value[NGX_HTTP_VOUCHER_OK_CUSTOMER]), "gina");
    assert_null(ok.value[NGX_HTTP_VOUCHER_OK_VALUE]);
    assert_null(ok.value[NGX_HTTP_VOUCHER_OK_PERCENT_BP]);
    assert_int_equal(num(ok.value[NGX_HTTP_VOUCHER_OK_CAP]), 2500);
    assert_string_equal(str(ok.value[NGX_HTTP_VOUCHER_OK_CAPPED_BY]), "cap");
    assert_int_equal(num(ok.value[NGX_HTTP_VOUCHER_OK_USES_LEFT]), 4);
    assert_int_equal(num(ok.value[NGX_HTTP_VOUCHER_OK_BALANCE]), 500);
    assert_int_equal(num(ok.value[NGX_HTTP_VOUCHER_OK_EXPIRES_AT]),
                     1800000000LL);
    assert_string_equal(str(ok.value[NGX_HTTP_VOUCHER_OK_REDEMPTION_ID]),
                        "1-1");
    assert_int_equal(num(ok.value[NGX_HTTP_VOUCHER_OK_HOLD_EXPIRES_AT]),
                     1700000000LL);

    assert_string_equal(str(ngx_http_voucher_ok_pair(&t->reply, &ok,
                                                     "_limit", 6)),
                        "PASSED");
    assert_string_equal(str(ngx_http_voucher_ok_pair(&t->reply, &ok,
                                                     "_limit_name", 11)),
                        "ip");
    assert_int_equal(num(ngx_http_voucher_ok_pair(&t->reply, &ok, "x", 1)),
                     7);

    /* a value is never taken for a pair's name */
    assert_null(ngx_http_voucher_ok_pair(&t->reply, &ok, "gina", 4));
    assert_null(ngx_http_voucher_ok_pair(&t->reply, &ok, "cap", 3));

    release(t);
}


/* every mask the library may send, with values of the right types */

static void
test_every_mask(void **state)
{
    char                    fmt[MAXEL + 1];
    size_t                  n, i, f;
    unsigned                mask, bit;
    test_reply_t           *t;
    ngx_http_voucher_ok_t   ok;

    (void) state;

    for (mask = 0; mask < 2048; mask++) {
        n = 0;
        fmt[n++] = 's';
        fmt[n++] = 'i';

        for (f = 0; f < NGX_HTTP_VOUCHER_OK_N; f++) {
            bit = ngx_http_voucher_ok_fields[f].bit;

            if (bit && !(mask & bit)) {
                continue;
            }

            fmt[n++] = (ngx_http_voucher_ok_fields[f].type
                        == REDIS_REPLY_STRING) ? 's' : 'i';
        }

        fmt[n] = '\0';

        t = build("");
        free(t->els);
        t->els = malloc(n * sizeof(redisReply *));
        assert_non_null(t->els);

        for (i = 0; i < n; i++) {
            t->el[i].type = (fmt[i] == 's') ? REDIS_REPLY_STRING
                                            : REDIS_REPLY_INTEGER;
            t->el[i].str = "v";
            t->el[i].len = 1;
            t->el[i].integer = (long long) i;
            t->els[i] = &t->el[i];
        }

        t->el[0].str = "ok";
        t->el[0].len = 2;
        t->el[1].integer = mask;
        t->reply.elements = n;
        t->reply.element = t->els;

        if ((mask & 6) == 6) {
            assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
            release(t);
            continue;
        }

        assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), 0);
        assert_int_equal(ok.pairs, n);
        assert_int_equal(ok.replayed, (mask & 1024) ? 1 : 0);

        for (f = 0; f < NGX_HTTP_VOUCHER_OK_N; f++) {
            bit = ngx_http_voucher_ok_fields[f].bit;

            if (bit && !(mask & bit)) {
                assert_null(ok.value[f]);

            } else {
                assert_non_null(ok.value[f]);
            }
        }

        /* one value short */
        t->reply.elements = n - 1;
        assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);

        release(t);
    }
}


/* what is refused */

static void
test_malformed(void **state)
{
    test_reply_t           *t;
    redisReply              nil;
    ngx_http_voucher_ok_t   ok;

    (void) state;

    assert_int_equal(ngx_http_voucher_ok_decode(NULL, &ok), -1);

    memset(&nil, 0, sizeof(redisReply));
    nil.type = REDIS_REPLY_NIL;
    assert_int_equal(ngx_http_voucher_ok_decode(&nil, &ok), -1);

    /* empty; a reason that is not a string */
    t = build("");
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);

    t = build("iss", 1LL, "code", "X");
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);

    /* unknown bits, a negative mask, both value and percent_bp */
    t = build("sissisiiii", "ok", 4LL + 2048, "P1", "pct", 100LL,
              "percent", 1000LL, 1000LL, 1000LL, 900LL);
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);

    t = build("sissisiiii", "ok", -1LL, "P1", "pct", 100LL,
              "percent", 1000LL, 1000LL, 1000LL, 900LL);
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);

    t = build("sissisiiiii", "ok", 6LL, "P1", "pct", 100LL,
              "percent", 1000LL, 1000LL, 1000LL, 1000LL, 900LL);
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);

    /* a string where a number goes, and the other way round */
    t = build("sississiii", "ok", 4LL, "P1", "pct", 100LL,
              "percent", "1000", 1000LL, 1000LL, 900LL);
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);

    t = build("sisiisiiii", "ok", 4LL, "P1", 7LL, 100LL,
              "percent", 1000LL, 1000LL, 1000LL, 900LL);
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);

    /* a nil or a nested array among the values */
    t = build("sissnsiiii", "ok", 4LL, "P1", "pct", "percent",
              1000LL, 1000LL, 1000LL, 900LL);
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);

    t = build("sissasiiii", "ok", 4LL, "P1", "pct", "percent",
              1000LL, 1000LL, 1000LL, 900LL);
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);

    /* the mask alone; the mask wants more than there is */
    t = build("si", "ok", 0LL);
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);

    t = build("sissisiiii", "ok", 4LL + 32, "P1", "pct", 100LL,
              "percent", 1000LL, 1000LL, 1000LL, 900LL);
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);

    /* pairs not paired */
    t = build("sss", "not_found", "code", "X");
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), 0);
    release(t);

    t = build("ssss", "not_found", "code", "X", "campaign");
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);
}


/* every other reply: pairs from 1, fields found by name */

static void
test_pairs(void **state)
{
    test_reply_t           *t;
    ngx_http_voucher_ok_t   ok;

    (void) state;

    t = build("ssssssssi", "rate_limited", "code", "X", "campaign", "c",
              "limit", "ip", "retry_after_ms", 5LL);
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), 0);
    assert_false(ok.positional);
    assert_false(ok.replayed);
    assert_int_equal(ok.pairs, 1);
    assert_string_equal(str(ngx_http_voucher_ok_get(&t->reply, &ok,
                                            NGX_HTTP_VOUCHER_OK_CAMPAIGN)),
                        "c");
    assert_null(ngx_http_voucher_ok_get(&t->reply, &ok,
                                        NGX_HTTP_VOUCHER_OK_DISCOUNT));
    assert_int_equal(num(ngx_http_voucher_ok_pair(&t->reply, &ok,
                                                  "retry_after_ms", 14)),
                     5);
    release(t);

    /* an "ok" of pairs: rollback, confirm, an older library's record */
    t = build("ssssssisi", "ok", "code", "I1", "campaign", "idm",
              "discount", 42LL, "replayed", 1LL);
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), 0);
    assert_false(ok.positional);
    assert_true(ok.replayed);
    assert_int_equal(ok.pairs, 1);
    assert_string_equal(str(ngx_http_voucher_ok_get(&t->reply, &ok,
                                                NGX_HTTP_VOUCHER_OK_CODE)),
                        "I1");
    assert_int_equal(num(ngx_http_voucher_ok_get(&t->reply, &ok,
                                            NGX_HTTP_VOUCHER_OK_DISCOUNT)),
                     42);
    release(t);

    /* a string "ok" alone, and pairs not paired */
    t = build("s", "ok");
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), 0);
    assert_false(ok.positional);
    release(t);

    t = build("ssss", "ok", "code", "I1", "campaign");
    assert_int_equal(ngx_http_voucher_ok_decode(&t->reply, &ok), -1);
    release(t);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_everything),
        cmocka_unit_test(test_every_mask),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_pairs),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
