
/*
 * Copyright (C) ngx_voucher authors
 *
 * cmocka tests for voucherctl's progress bar (worker/vw_bar.c).
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vw_bar.h"


static void
test_time(void **state)
{
    char  b[32];

    (void) state;

    vw_bar_time(b, sizeof(b), 0);
    assert_string_equal(b, "0:00");
    vw_bar_time(b, sizeof(b), 59);
    assert_string_equal(b, "0:59");
    vw_bar_time(b, sizeof(b), 754);
    assert_string_equal(b, "12:34");
    vw_bar_time(b, sizeof(b), 3600 * 26 + 61);
    assert_string_equal(b, "26:01:01");
    vw_bar_time(b, sizeof(b), -5);
    assert_string_equal(b, "0:00");
}


static void
test_half(void **state)
{
    char    b[256];
    size_t  n;

    (void) state;

    /* half done in 10 s: 10 s to go */
    n = vw_bar_render(b, sizeof(b), NULL, 500000, 1000000, 10000, 80);
    assert_int_equal(n, strlen(b));
    assert_true(n <= 80);
    assert_non_null(strstr(b, "  50%  500000/1000000  50000/s  ETA 0:10"));
    assert_int_equal(b[0], '[');
    assert_non_null(strstr(b, "#."));

    /* as many # as . */
    {
        size_t  i, hash = 0, dot = 0;

        for (i = 1; b[i] != ']'; i++) {
            hash += b[i] == '#';
            dot += b[i] == '.';
        }

        assert_true(hash == dot || hash + 1 == dot || hash == dot + 1);
        assert_true(hash >= 5);
    }
}


static void
test_ends(void **state)
{
    char  b[256];

    (void) state;

    vw_bar_render(b, sizeof(b), "issue", 0, 1000, 0, 80);
    assert_memory_equal(b, "issue [.", 8);
    assert_non_null(strstr(b, "   0%  0/1000  0/s  ETA -:--"));

    vw_bar_render(b, sizeof(b), NULL, 1000, 1000, 2500, 80);
    assert_non_null(strstr(b, "] 100%  1000/1000  400/s  in 0:02"));
    assert_null(strchr(b, '.'));

    /* more than the total is the total */
    vw_bar_render(b, sizeof(b), NULL, 1200, 1000, 1000, 80);
    assert_non_null(strstr(b, "100%  1000/1000"));

    /* nothing to do is done */
    vw_bar_render(b, sizeof(b), NULL, 0, 0, 10, 80);
    assert_non_null(strstr(b, "100%  0/0"));
}


static void
test_unknown_total(void **state)
{
    char  b[256];

    (void) state;

    vw_bar_render(b, sizeof(b), "export", 123456, -1, 61000, 80);
    assert_string_equal(b, "export 123456 done  2023/s  1:01");
}


static void
test_narrow(void **state)
{
    char    b[256], small[16];
    size_t  n;

    (void) state;

    /* a narrow terminal: the line is cut, never longer */
    n = vw_bar_render(b, sizeof(b), NULL, 5, 10, 1000, 30);
    assert_int_equal(n, 30);
    assert_int_equal(strlen(b), 30);

    /* a small buffer: cut, terminated */
    n = vw_bar_render(small, sizeof(small), NULL, 5, 10, 1000, 80);
    assert_true(n < sizeof(small));
    assert_int_equal(strlen(small), n);

    n = vw_bar_render(small, sizeof(small), NULL, 5, -1, 1000, 80);
    assert_int_equal(strlen(small), n);
    assert_true(n < sizeof(small));

    assert_int_equal(vw_bar_render(b, 0, NULL, 1, 2, 3, 80), 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_half),
        cmocka_unit_test(test_ends),
        cmocka_unit_test(test_unknown_total),
        cmocka_unit_test(test_narrow),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
