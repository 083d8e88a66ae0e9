
/*
 * Copyright (C) ngx_voucher authors
 *
 * cmocka tests for Code 128 subset B (worker/vw_barcode.c): the symbol
 * table's shape, the check character and a whole symbol worked out by hand
 * from the specification, a decode of the modules back to the text, the
 * PNG read back, the limits.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <png.h>

#include "vw_barcode.h"


/* every value is 3 bars and 3 spaces of 1..4 modules, 11 in all, all
 * different; the stop adds a bar: 13 modules */
static void
test_table(void **state)
{
    int          v, u, sum;
    const char  *p;

    (void) state;

    for (v = 0; v <= 106; v++) {
        p = vw_code128_pattern(v);
        assert_non_null(p);
        assert_int_equal(strlen(p), v == 106 ? 7 : 6);

        for (sum = 0; *p; p++) {
            assert_true(*p >= '1' && *p <= '4');
            sum += *p - '0';
        }

        assert_int_equal(sum, v == 106 ? 13 : 11);

        for (u = 0; u < v; u++) {
            assert_string_not_equal(vw_code128_pattern(u),
                                    vw_code128_pattern(v));
        }
    }

    assert_null(vw_code128_pattern(107));
    assert_null(vw_code128_pattern(-1));
    /* start B and the stop, as the specification prints them */
    assert_string_equal(vw_code128_pattern(104), "211214");
    assert_string_equal(vw_code128_pattern(106), "2331112");
}


/*
 * "PJJ123C": P J J 1 2 3 C are 80 74 74 49 50 51 67 in ASCII, values 48 42
 * 42 17 18 19 35 in subset B; the check is (104 + 48*1 + 42*2 + 42*3 +
 * 17*4 + 18*5 + 19*6 + 35*7) mod 103 = 879 mod 103 = 55.
 */
static void
test_check(void **state)
{
    int     vals[90];
    size_t  n, i;
    char    err[128];

    static const int  want[] = { 104, 48, 42, 42, 17, 18, 19, 35, 55, 106 };

    (void) state;

    assert_int_equal(vw_code128_values("PJJ123C", 7, vals, &n, err,
                                       sizeof(err)), 0);
    assert_int_equal(n, 10);

    for (i = 0; i < n; i++) {
        assert_int_equal(vals[i], want[i]);
    }

    /* a code as sent, dashes and lower case kept: "Ab-1" is 33 66 13 17,
     * (104 + 33 + 132 + 39 + 68) mod 103 = 376 mod 103 = 67 */
    assert_int_equal(vw_code128_values("Ab-1", 4, vals, &n, err,
                                       sizeof(err)), 0);
    assert_int_equal(vals[5], 67);
}


/* the modules read back: widths per character, looked up in the table */
static void
test_modules(void **state)
{
    int             w, k, v, x, run, dark;
    char            err[128], pat[8], text[16];
    size_t          n, t;
    unsigned char  *m;

    (void) state;

    assert_int_equal(vw_code128_modules("PJJ123C", 7, &m, &w, err,
                                        sizeof(err)), 0);
    assert_int_equal(w, 9 * 11 + 13);

    /* start B 211214: bar 2, space 1, bar 1, space 2, bar 1, space 4 */
    assert_memory_equal(m, "\1\1\0\1\0\0\1\0\0\0\0", 11);
    /* the stop ends on a bar of 2 */
    assert_memory_equal(m + w - 13, "\1\1\0\0\0\1\1\1\0\1\0\1\1", 13);

    x = 0;
    t = 0;
    n = 0;

    while (x < w - 13) {
        k = 0;
        dark = 1;

        while (k < 6) {
            for (run = 0; x < w && m[x] == dark; x++) {
                run++;
            }
            pat[k++] = (char) ('0' + run);
            dark = !dark;
        }

        pat[6] = '\0';

        for (v = 0; v < 106 && strcmp(vw_code128_pattern(v), pat) != 0; v++) {
            /* void */
        }

        assert_true(v < 106);

        if (n == 0) {
            assert_int_equal(v, 104);

        } else if (x < w - 13 - 11 + 1) {
            text[t++] = (char) (v + 32);

        } else {
            assert_int_equal(v, 55);
        }

        n++;
    }

    text[t] = '\0';
    assert_string_equal(text, "PJJ123C");
    free(m);
}


static void
test_pictures(void **state)
{
    int                 x, y, w, want;
    char                err[128], *svg;
    size_t              len;
    png_image           img;
    unsigned char      *png, *px, *m;
    vw_barcode_opts_t   o;

    (void) state;

    o.scale = 3;
    o.height = 20;

    assert_int_equal(vw_barcode_svg("GIFT-7Q2M", 9, &o, &svg, &len, err,
                                     sizeof(err)), 0);
    /* 9 characters: the start, 9 and the check of 11 modules, the
     * stop's 13, 10 of quiet zone each side: 154 modules */
    assert_non_null(strstr(svg, "viewBox=\"0 0 154 1\" width=\"462\" "
                                "height=\"20\""));
    assert_null(strstr(svg, "GIFT"));
    free(svg);

    assert_int_equal(vw_barcode_png("GIFT-7Q2M", 9, &o, &png, &len, err,
                                     sizeof(err)), 0);
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_memory(&img, png, len));
    assert_int_equal(img.width, 462);
    assert_int_equal(img.height, 20);
    img.format = PNG_FORMAT_GRAY;
    px = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(px);
    assert_true(png_image_finish_read(&img, NULL, px, 0, NULL));

    assert_int_equal(vw_code128_modules("GIFT-7Q2M", 9, &m, &w, err,
                                        sizeof(err)), 0);

    for (y = 0; y < 20; y++) {
        for (x = 0; x < 462; x++) {
            want = x / 3 >= 10 && x / 3 < 10 + w && m[x / 3 - 10] ? 0 : 255;
            assert_int_equal(px[y * 462 + x], want);
        }
    }

    free(m);
    free(px);
    free(png);
}


static void
test_limits(void **state)
{
    int                 vals[90];
    char                err[128], *svg, long_text[82];
    size_t              n, len;
    vw_barcode_opts_t   o;

    (void) state;

    assert_int_equal(vw_code128_values("", 0, vals, &n, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "the text must be 1 to 80 characters");

    memset(long_text, 'A', 81);
    long_text[81] = '\0';
    assert_int_equal(vw_code128_values(long_text, 81, vals, &n, err,
                                       sizeof(err)), -1);
    assert_int_equal(vw_code128_values(long_text, 80, vals, &n, err,
                                       sizeof(err)), 0);

    assert_int_equal(vw_code128_values("A\tB", 3, vals, &n, err,
                                       sizeof(err)), -1);
    assert_string_equal(err, "a barcode holds printable ASCII only "
                             "(character 2 is not)");
    assert_int_equal(vw_code128_values("caf\xc3\xa9", 5, vals, &n, err,
                                       sizeof(err)), -1);
    assert_int_equal(vw_code128_values("A\x7f", 2, vals, &n, err,
                                       sizeof(err)), -1);

    o.scale = 17;
    o.height = 0;
    assert_int_equal(vw_barcode_svg("A", 1, &o, &svg, &len, err,
                                    sizeof(err)), -1);
    assert_string_equal(err, "scale must be 1 to 16");

    o.scale = 16;
    o.height = 7;
    assert_int_equal(vw_barcode_svg("A", 1, &o, &svg, &len, err,
                                    sizeof(err)), -1);
    assert_string_equal(err, "height must be 8 to 1024");

    /* 80 characters at scale 16 would be over 4096 pixels wide */
    o.height = 0;
    assert_int_equal(vw_barcode_svg(long_text, 80, &o, &svg, &len, err,
                                    sizeof(err)), -1);
    assert_string_equal(err, "the picture would be over 4096 pixels wide");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_modules),
        cmocka_unit_test(test_pictures),
        cmocka_unit_test(test_limits),
    };

    return cmocka_run_group_tests_name("barcode", tests, NULL, NULL);
}
