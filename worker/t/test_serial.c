
/*
 * Copyright (C) ngx_voucher authors
 *
 * cmocka tests for serial series (common/voucher_serial.c): the keyed
 * permutation is a bijection, stable, keyed, and its codes decode back.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "voucher_serial.h"


static const unsigned char  key1[VOUCHER_KEY_LEN] = {
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
    0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
    0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20
};

static unsigned char  key2[VOUCHER_KEY_LEN];


static int
setup(void **state)
{
    (void) state;

    if (sodium_init() < 0) {
        return -1;
    }

    memcpy(key2, key1, sizeof(key2));
    key2[31] ^= 1;

    return 0;
}


/* every domain of 1 to 4 characters of 2, 3, 10 and 32 characters */

static void
test_bijective_small(void **state)
{
    static const char  *sets[] = { "01", "012", "0123456789", NULL };
    size_t              s, len, i;
    uint64_t            d, x, y;
    unsigned char      *seen;
    voucher_format_t    fmt;
    voucher_serial_t    ser;

    (void) state;

    for (s = 0; s <= 3; s++) {
        memset(&fmt, 0, sizeof(fmt));

        if (sets[s]) {
            fmt.charset = sets[s];
            fmt.charset_len = strlen(sets[s]);
        }

        for (len = 1; len <= (sets[s] ? 4 : 3); len++) {
            assert_int_equal(voucher_serial_init(&ser, key1, "S1", 2, len,
                                                 &fmt), 0);
            d = ser.domain;
            seen = calloc(d, 1);
            assert_non_null(seen);

            for (x = 0; x < d; x++) {
                y = voucher_serial_permute(&ser, x);
                assert_true(y < d);
                assert_int_equal(seen[y], 0);
                seen[y] = 1;
                assert_int_equal(voucher_serial_unpermute(&ser, y), x);
            }

            for (i = 0; i < d; i++) {
                assert_int_equal(seen[i], 1);
            }

            free(seen);
        }
    }
}


/* the same key and name give the same codes, run after run */

static void
test_stable(void **state)
{
    char              code[VOUCHER_CODE_MAX_LEN + 1];
    voucher_serial_t  ser;

    (void) state;

    assert_int_equal(voucher_serial_init(&ser, key1, "spring", 6, 8, NULL),
                     0);
    assert_int_equal(ser.domain, (uint64_t) 1 << 40);
    assert_int_equal(ser.half, 20);

    /* fixed once from this implementation: a change breaks issued codes */
    assert_int_equal(voucher_serial_permute(&ser, 0), 0x469e9567ceULL);
    assert_int_equal(voucher_serial_permute(&ser, 1), 0xead2e86b9fULL);

    assert_int_equal(voucher_serial_code(&ser, key1, "SP", 8, 5, NULL, 0,
                                         code, sizeof(code)), 15);
    assert_string_equal(code, "SP8TF9ASYEKGFMC");
}


/* another key, another name: another permutation */

static void
test_keyed(void **state)
{
    uint64_t          x, same_key, same_name;
    voucher_serial_t  a, b, c;

    (void) state;

    assert_int_equal(voucher_serial_init(&a, key1, "A", 1, 6, NULL), 0);
    assert_int_equal(voucher_serial_init(&b, key2, "A", 1, 6, NULL), 0);
    assert_int_equal(voucher_serial_init(&c, key1, "B", 1, 6, NULL), 0);

    assert_memory_not_equal(a.key, b.key, VOUCHER_SERIAL_KEY_LEN);
    assert_memory_not_equal(a.key, c.key, VOUCHER_SERIAL_KEY_LEN);
    assert_memory_not_equal(a.key, key1, VOUCHER_SERIAL_KEY_LEN);

    same_key = 0;
    same_name = 0;

    for (x = 0; x < 1000; x++) {
        same_key += voucher_serial_permute(&a, x)
                    == voucher_serial_permute(&b, x);
        same_name += voucher_serial_permute(&a, x)
                     == voucher_serial_permute(&c, x);
    }

    /* 2^30 values: a coincidence among 1000 is unlikely, 10 impossible */
    assert_true(same_key < 10);
    assert_true(same_name < 10);
}


/* consecutive serials do not give neighbouring values */

static void
test_not_sequential(void **state)
{
    uint64_t          x, a, b, near;
    voucher_serial_t  s;

    (void) state;

    assert_int_equal(voucher_serial_init(&s, key1, "Q", 1, 8, NULL), 0);

    near = 0;

    for (x = 0; x < 1000; x++) {
        a = voucher_serial_permute(&s, x);
        b = voucher_serial_permute(&s, x + 1);
        near += (a > b ? a - b : b - a) < 1024;
    }

    assert_true(near < 5);
}


/* codes pass the MAC and decode back; the name and domain are checked */

static void
test_codes(void **state)
{
    size_t            n;
    uint64_t          x, got;
    voucher_format_t  digits = { "0123456789", 10, "TH", 2 };
    voucher_serial_t  s, t;
    char              code[VOUCHER_CODE_MAX_LEN + 1];

    (void) state;

    assert_int_equal(voucher_serial_init(&s, key1, "keypad", 6, 9, &digits),
                     0);
    assert_int_equal(s.domain, 1000000000ULL);

    for (x = 0; x < 2000; x += 7) {
        n = voucher_serial_code(&s, key1, "9", 9, 6, &digits, x, code,
                                sizeof(code));
        assert_int_equal(n, 1 + 9 + 6 + 2);
        assert_int_equal(voucher_code_verify_ex(key1, code, n, 1, 6, &digits),
                         0);
        assert_int_equal(voucher_serial_decode(&s, code, 1, 9, &digits, &got),
                         0);
        assert_int_equal(got, x);
    }

    /* beyond the domain, a bad name, a body too long for 62 bits */
    assert_int_equal(voucher_serial_code(&s, key1, "9", 9, 6, &digits,
                                         s.domain, code, sizeof(code)), 0);
    assert_int_equal(voucher_serial_init(&t, key1, "a b", 3, 9, &digits), -1);
    assert_int_equal(voucher_serial_init(&t, key1, "", 0, 9, &digits), -1);
    assert_int_equal(voucher_serial_init(&t, key1, "x", 1, 13, NULL), -1);
    assert_int_equal(voucher_serial_init(&t, key1, "x", 1, 12, NULL), 0);
    assert_int_equal(voucher_series_name_check("0123456789abcdef0123456789"
                                               "abcdef", 32), 0);
    assert_int_equal(voucher_series_name_check("0123456789abcdef0123456789"
                                               "abcdef0", 33), -1);

    /* a character outside the charset does not decode */
    memcpy(code, "9A2345678", 9);
    assert_int_equal(voucher_serial_decode(&s, code, 1, 8, &digits, &got),
                     -1);
    assert_int_equal(voucher_serial_decode(&s, code, 0, 9, &digits, &got),
                     -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_bijective_small),
        cmocka_unit_test(test_stable),
        cmocka_unit_test(test_keyed),
        cmocka_unit_test(test_not_sequential),
        cmocka_unit_test(test_codes),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
