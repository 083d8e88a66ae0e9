
/*
 * Copyright (C) ngx_voucher authors
 *
 * cmocka tests for QR rendering (worker/vw_qr.c): the symbol's structure,
 * the SVG and the PNG read back module by module, the limits.  That a
 * reader decodes them is checked in a browser (t/browser/qr.test.mjs).
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

#include "vw_qr.h"


/* a finder pattern: 7x7, dark ring, light ring, dark 3x3 */
static void
check_finder(const unsigned char *m, int side, int ox, int oy)
{
    int  x, y, d, want;

    for (y = 0; y < 7; y++) {
        for (x = 0; x < 7; x++) {
            d = x < y ? x : y;
            d = d < 6 - x ? d : 6 - x;
            d = d < 6 - y ? d : 6 - y;
            want = d != 1;
            assert_int_equal(m[(oy + y) * side + ox + x], want);
        }
    }
}


static void
test_modules(void **state)
{
    int             side, i;
    char            err[256];
    unsigned char  *m;

    (void) state;

    /* 10 alphanumeric characters fit version 1 (21 modules) at level M */
    assert_int_equal(vw_qr_modules("WELCOME-10", 10, 'M', &m, &side, err,
                                   sizeof(err)), 0);
    assert_int_equal(side, 21);

    check_finder(m, side, 0, 0);
    check_finder(m, side, side - 7, 0);
    check_finder(m, side, 0, side - 7);

    /* the timing patterns alternate, dark first */
    for (i = 8; i < side - 8; i++) {
        assert_int_equal(m[6 * side + i], (i + 1) % 2);
        assert_int_equal(m[i * side + 6], (i + 1) % 2);
    }

    free(m);

    /* a longer code needs a larger version */
    assert_int_equal(vw_qr_modules("GIFT-7Q2M-94KD-XXXX-YYYY-ZZZZ-1234", 34,
                                   'H', &m, &side, err, sizeof(err)), 0);
    assert_true(side > 21);
    assert_int_equal((side - 17) % 4, 0);
    free(m);
}


static void
test_case_kept(void **state)
{
    int             s1, s2;
    char            err[256];
    unsigned char  *a, *b;

    (void) state;

    assert_int_equal(vw_qr_modules("abc-def", 7, 'M', &a, &s1, err,
                                   sizeof(err)), 0);
    assert_int_equal(vw_qr_modules("ABC-DEF", 7, 'M', &b, &s2, err,
                                   sizeof(err)), 0);
    assert_true(s1 != s2 || memcmp(a, b, (size_t) s1 * s1) != 0);
    free(a);
    free(b);
}


static void
test_svg(void **state)
{
    int             side, full, x, y, n, run, off, used;
    char            err[256], head[256];
    char           *svg, *p;
    size_t          len;
    unsigned char  *m, *got;
    vw_qr_opts_t    o;

    (void) state;

    vw_qr_opts_init(&o);
    assert_int_equal(vw_qr_svg("WELCOME-10", 10, &o, &svg, &len, err,
                               sizeof(err)), 0);
    assert_int_equal(strlen(svg), len);

    full = 21 + 8;
    snprintf(head, sizeof(head), "<svg xmlns=\"http://www.w3.org/2000/svg\" "
             "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\"",
             full, full, full * 8, full * 8);
    assert_memory_equal(svg, head, strlen(head));
    assert_non_null(strstr(svg, "</svg>\n"));

    /* the runs of the path, drawn again, are the modules */
    assert_int_equal(vw_qr_modules("WELCOME-10", 10, 'M', &m, &side, err,
                                   sizeof(err)), 0);
    got = calloc((size_t) side * side, 1);
    assert_non_null(got);

    p = strstr(svg, " d=\"");
    assert_non_null(p);
    p += 4;
    n = 0;

    while (sscanf(p, "M%d %dh%dv1h-%*dz%n", &x, &y, &run, &used) == 3) {
        x -= 4;
        y -= 4;
        assert_true(x >= 0 && y >= 0 && run > 0 && x + run <= side);

        for (off = 0; off < run; off++) {
            assert_int_equal(got[y * side + x + off], 0);
            got[y * side + x + off] = 1;
        }

        p += used;
        n++;
    }

    assert_memory_equal(p, "\"/></svg>", 9);
    assert_true(n > 20);
    assert_memory_equal(got, m, (size_t) side * side);

    free(got);
    free(m);
    free(svg);

    /* the text is never in the document */
    assert_int_equal(vw_qr_svg("<script>alert(1)</script>", 25, NULL, &svg,
                               &len, err, sizeof(err)), 0);
    assert_null(strstr(svg, "script"));
    assert_null(strstr(svg, "alert"));
    free(svg);
}


static void
test_png(void **state)
{
    int             side, x, y, mx, my, want;
    char            err[256];
    size_t          len;
    png_image       img;
    unsigned char  *png, *px, *m;
    vw_qr_opts_t    o;

    (void) state;

    vw_qr_opts_init(&o);
    o.scale = 3;
    o.margin = 2;

    assert_int_equal(vw_qr_png("WELCOME-10", 10, &o, &png, &len, err,
                               sizeof(err)), 0);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);

    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_memory(&img, png, len));
    assert_int_equal(img.width, (21 + 4) * 3);
    assert_int_equal(img.height, (21 + 4) * 3);

    img.format = PNG_FORMAT_GRAY;
    px = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(px);
    assert_true(png_image_finish_read(&img, NULL, px, 0, NULL));

    assert_int_equal(vw_qr_modules("WELCOME-10", 10, 'M', &m, &side, err,
                                   sizeof(err)), 0);

    for (y = 0; y < (int) img.height; y++) {
        for (x = 0; x < (int) img.width; x++) {
            mx = x / 3 - 2;
            my = y / 3 - 2;
            want = (mx >= 0 && mx < side && my >= 0 && my < side
                    && m[my * side + mx]) ? 0 : 255;
            assert_int_equal(px[y * img.width + x], want);
        }
    }

    free(px);
    free(m);
    free(png);

    /* the same text, the same bytes */
    {
        size_t          l1, l2;
        unsigned char  *a, *b;

        assert_int_equal(vw_qr_png("GC-0001", 7, NULL, &a, &l1, err,
                                   sizeof(err)), 0);
        assert_int_equal(vw_qr_png("GC-0001", 7, NULL, &b, &l2, err,
                                   sizeof(err)), 0);
        assert_int_equal(l1, l2);
        assert_memory_equal(a, b, l1);
        free(a);
        free(b);
    }
}


static void
test_limits(void **state)
{
    char            err[256], big[VW_QR_MAX_TEXT + 2];
    char           *svg;
    size_t          len;
    unsigned char  *png;
    vw_qr_opts_t    o;

    (void) state;

    assert_int_equal(vw_qr_svg("", 0, NULL, &svg, &len, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "the text must be 1 to 512 bytes");

    memset(big, 'A', sizeof(big));
    assert_int_equal(vw_qr_png(big, VW_QR_MAX_TEXT + 1, NULL, &png, &len,
                               err, sizeof(err)), -1);
    assert_string_equal(err, "the text must be 1 to 512 bytes");

    /* 512 bytes fit at level L, with a small scale */
    vw_qr_opts_init(&o);
    o.scale = 2;
    o.level = 'L';
    assert_int_equal(vw_qr_png(big, VW_QR_MAX_TEXT, &o, &png, &len, err,
                               sizeof(err)), 0);
    free(png);

    /* but not 64 pixels a module */
    o.scale = 64;
    assert_int_equal(vw_qr_png(big, VW_QR_MAX_TEXT, &o, &png, &len, err,
                               sizeof(err)), -1);
    assert_string_equal(err, "the picture would be over 4096 pixels wide");
    assert_int_equal(vw_qr_svg(big, VW_QR_MAX_TEXT, &o, &svg, &len, err,
                               sizeof(err)), -1);
    assert_string_equal(err, "the picture would be over 4096 pixels wide");

    assert_int_equal(vw_qr_svg("A\0B", 3, NULL, &svg, &len, err,
                               sizeof(err)), -1);
    assert_string_equal(err, "the text must not contain a NUL byte");

    vw_qr_opts_init(&o);
    o.scale = 65;
    assert_int_equal(vw_qr_svg("A", 1, &o, &svg, &len, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "scale must be 1 to 64");

    vw_qr_opts_init(&o);
    o.margin = 17;
    assert_int_equal(vw_qr_png("A", 1, &o, &png, &len, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "margin must be 0 to 16");

    vw_qr_opts_init(&o);
    o.level = 'X';
    assert_int_equal(vw_qr_svg("A", 1, &o, &svg, &len, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "level must be L, M, Q or H");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_modules),
        cmocka_unit_test(test_case_kept),
        cmocka_unit_test(test_svg),
        cmocka_unit_test(test_png),
        cmocka_unit_test(test_limits),
    };

    return cmocka_run_group_tests_name("qr", tests, NULL, NULL);
}
