
/*
 * Copyright (C) ngx_voucher authors
 *
 * cmocka tests for phone numbers in E.164 (worker/vw_phone.c), money and
 * dates by locale (worker/vw_locale.c), birthday schedules and the
 * attr.NAME template fields.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vw_locale.h"
#include "vw_phone.h"
#include "vw_schedule.h"
#include "vw_segment.h"
#include "vw_template.h"


static void
test_phone(void **state)
{
    size_t               i;
    char                 out[32], err[128];
    vw_phone_country_t   th, cn, uk, none;

    static const struct {
        const char  *in;
        int          country;       /* 0 none, 1 TH, 2 CN, 3 +44 */
        const char  *e164;          /* NULL: not a number */
    } t[] = {
        { "081-999-0000", 1, "+66819990000" },
        { "0819990000", 1, "+66819990000" },
        { "+66819990000", 1, "+66819990000" },
        { "+66 81 999 0000", 0, "+66819990000" },
        { "+66 081 999 0000", 0, "+66819990000" },
        { "0066819990000", 0, "+66819990000" },
        { "66819990000", 1, "+66819990000" },
        { "(02) 123-4567", 1, "+6621234567" },
        { "081-999-000", 1, NULL },          /* one digit short */
        { "0819990000", 0, NULL },           /* national, no country */
        { "1819990000", 1, NULL },
        { "138 0013 8000", 2, "+8613800138000" },
        { "010 6552 9988", 2, "+861065529988" },
        { "+86 138 0013 8000", 1, "+8613800138000" },
        { "07911 123456", 3, "+447911123456" },
        { "+1 415 555 2671", 1, "+14155552671" },
        { "081-abc", 1, NULL },
        { "", 1, NULL },
        { "+", 1, NULL },
        { "++66819990000", 1, NULL },
        { "0", 1, NULL },
    };

    (void) state;

    assert_int_equal(vw_phone_country("TH", &th, err, sizeof(err)), 0);
    assert_int_equal(vw_phone_country("CN", &cn, err, sizeof(err)), 0);
    assert_int_equal(vw_phone_country("+44", &uk, err, sizeof(err)), 0);
    assert_int_equal(vw_phone_country("Thailand", &none, err, sizeof(err)),
                     -1);
    assert_int_equal(vw_phone_country("+0", &none, err, sizeof(err)), -1);
    assert_int_equal(vw_phone_country("+12345", &none, err, sizeof(err)),
                     -1);
    memset(&none, 0, sizeof(none));

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        const vw_phone_country_t  *pc = t[i].country == 1 ? &th
                                        : t[i].country == 2 ? &cn
                                        : t[i].country == 3 ? &uk : &none;
        int  rc = vw_phone_e164(t[i].in, pc, out, sizeof(out));

        if (t[i].e164 == NULL) {
            if (rc != -1) {
                fail_msg("\"%s\": expected not a number, got %s", t[i].in,
                         out);
            }

            continue;
        }

        if (rc != 0 || strcmp(out, t[i].e164) != 0) {
            fail_msg("\"%s\": expected %s, got %s", t[i].in, t[i].e164,
                     rc == 0 ? out : "not a number");
        }
    }

    /* too small a buffer is not a number, not an overflow */
    assert_int_equal(vw_phone_e164("0819990000", &th, out, 8), -1);
}


static void
test_segment_phones(void **state)
{
    char                 err[256];
    size_t               idx[2];
    vw_member_t          m[2];
    vw_segment_t         seg;
    vw_phone_country_t   th;

    (void) state;

    memset(m, 0, sizeof(m));
    m[0].id = "a";
    m[0].phone = "0819990000";
    m[0].e164 = "+66819990000";
    m[1].id = "b";
    m[1].phone = "+66822222222";
    m[1].e164 = "+66822222222";

    vw_phone_country("TH", &th, err, sizeof(err));

    assert_int_equal(vw_segment_parse("list:+66819990000,082-222-2222", &seg,
                                      err, sizeof(err)), 0);

    /*
     * Without the country the member's own E.164 form matches the list's
     * +66..., but the list's 082-222-2222 stays national
     */
    assert_int_equal(vw_segment_eval(&seg, m, 2, 0, 0, idx), 1);
    assert_int_equal(idx[0], 0);

    vw_segment_phones(&seg, &th);
    assert_int_equal(vw_segment_eval(&seg, m, 2, 0, 0, idx), 2);
    vw_segment_free(&seg);
}


static void
test_money(void **state)
{
    char                buf[64];
    const vw_locale_t  *th, *zh, *en;

    (void) state;

    th = vw_locale_find("th-TH");
    zh = vw_locale_find("zh-CN");
    en = vw_locale_find("en");
    assert_non_null(th);
    assert_non_null(zh);
    assert_non_null(en);
    assert_null(vw_locale_find("fr-FR"));

    vw_locale_money(th, 120000, "THB", buf, sizeof(buf));
    assert_string_equal(buf, "฿1,200.00");
    vw_locale_money(th, 5, "THB", buf, sizeof(buf));
    assert_string_equal(buf, "฿0.05");
    vw_locale_money(th, -123456789, "THB", buf, sizeof(buf));
    assert_string_equal(buf, "-฿1,234,567.89");
    vw_locale_money(zh, 99900, "CNY", buf, sizeof(buf));
    assert_string_equal(buf, "¥999.00");
    vw_locale_money(en, 100000000, "USD", buf, sizeof(buf));
    assert_string_equal(buf, "$1,000,000.00");
    vw_locale_money(en, 1500, "JPY", buf, sizeof(buf));
    assert_string_equal(buf, "¥1,500");
    vw_locale_money(en, 123456, "MYR", buf, sizeof(buf));
    assert_string_equal(buf, "MYR 1,234.56");
    vw_locale_money(th, 100, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "1.00");
    vw_locale_money(NULL, 120000, "THB", buf, sizeof(buf));
    assert_string_equal(buf, "1200.00 THB");
    vw_locale_money(th, INT64_MAX, "THB", buf, sizeof(buf));
    assert_string_equal(buf, "฿92,233,720,368,547,758.07");
    vw_locale_money(th, INT64_MIN, "THB", buf, sizeof(buf));
    assert_string_equal(buf, "-฿92,233,720,368,547,758.08");
}


static void
test_dates(void **state)
{
    char     buf[64];
    int64_t  t;

    (void) state;

    /* 2025-12-31 23:30 in Bangkok is 16:30 UTC */
    t = vw_days_from_civil(2025, 12, 31) * 86400 + 16 * 3600 + 30 * 60;

    vw_locale_date(vw_locale_find("th-TH"), t, 420, buf, sizeof(buf));
    assert_string_equal(buf, "31 ธ.ค. 2568");
    vw_locale_date(vw_locale_find("th-TH-u-ca-gregory"), t, 420, buf,
                   sizeof(buf));
    assert_string_equal(buf, "31 ธ.ค. 2025");
    vw_locale_date(vw_locale_find("zh-CN"), t, 480, buf, sizeof(buf));
    assert_string_equal(buf, "2026年1月1日");
    vw_locale_date(vw_locale_find("en"), t, 0, buf, sizeof(buf));
    assert_string_equal(buf, "31 Dec 2025");
    vw_locale_date(NULL, t, 420, buf, sizeof(buf));
    assert_string_equal(buf, "2025-12-31");
    vw_locale_datetime(NULL, t, 420, buf, sizeof(buf));
    assert_string_equal(buf, "2025-12-31 23:30");
    vw_locale_datetime(vw_locale_find("th-TH"), t, 480, buf, sizeof(buf));
    assert_string_equal(buf, "1 ม.ค. 2569 00:30");
}


static void
test_birthday_schedule(void **state)
{
    char           err[256];
    int64_t        t;
    vw_schedule_t  sc;

    (void) state;

    assert_int_equal(vw_schedule_parse("birthdays day 09:00", &sc, err,
                                       sizeof(err)), 0);
    assert_int_equal(sc.kind, VW_SCHED_BIRTHDAY);
    assert_true(vw_schedule_birthdays(&sc));

    /* every day at 09:00 Bangkok (02:00 UTC) */
    t = vw_days_from_civil(2026, 12, 7) * 86400 + 5 * 3600;
    assert_int_equal(vw_schedule_next(&sc, t, 420),
                     vw_days_from_civil(2026, 12, 8) * 86400 + 2 * 3600);
    assert_int_equal(vw_schedule_prev(&sc, t, 420),
                     vw_days_from_civil(2026, 12, 7) * 86400 + 2 * 3600);

    assert_int_equal(vw_schedule_parse("birthdays week 09:00", &sc, err,
                                       sizeof(err)), -1);
    assert_int_equal(vw_schedule_parse("birthdays day", &sc, err,
                                       sizeof(err)), -1);
}


static void
test_attr_fields(void **state)
{
    char  err[256];

    (void) state;

    assert_int_equal(vw_template_check("{{attr.branch}} {{tier}} "
                                       "{{min_amount}} {{birthday}}", err,
                                       sizeof(err)), 0);
    assert_int_equal(vw_template_check("{{attr.}}", err, sizeof(err)), -1);
    assert_int_equal(vw_template_check("{{attr.a-b}}", err, sizeof(err)),
                     -1);
    assert_int_equal(vw_template_check("{{attrs}}", err, sizeof(err)), -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_segment_phones),
        cmocka_unit_test(test_money),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_birthday_schedule),
        cmocka_unit_test(test_attr_fields),
    };

    return cmocka_run_group_tests_name("locale", tests, NULL, NULL);
}
