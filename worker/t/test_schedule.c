
/*
 * Copyright (C) ngx_voucher authors
 *
 * cmocka tests for schedules (worker/vw_schedule.c).
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "vw_schedule.h"


#define BKK  (7 * 60)


/* a UTC time from its parts */

static int64_t
utc(int y, int mo, int d, int h, int mi)
{
    return vw_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}


static vw_schedule_t
sched(const char *s)
{
    vw_schedule_t  sc;
    char           err[512];

    if (vw_schedule_parse(s, &sc, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }

    return sc;
}


static void
test_civil(void **state)
{
    int      m, d;
    int64_t  y, z;

    (void) state;

    assert_int_equal(vw_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(vw_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(vw_days_from_civil(1969, 12, 31), -1);

    /* against the C library over 200 years, every 13 days */
    for (z = -3650; z < 70000; z += 13) {
        time_t     t = (time_t) (z * 86400);
        struct tm  tm;

        gmtime_r(&t, &tm);
        vw_civil_from_days(z, &y, &m, &d);
        assert_int_equal(y, tm.tm_year + 1900);
        assert_int_equal(m, tm.tm_mon + 1);
        assert_int_equal(d, tm.tm_mday);
        assert_int_equal(vw_days_from_civil(y, m, d), z);
    }
}


static void
test_parse_errors(void **state)
{
    size_t         i;
    vw_schedule_t  sc;
    char           err[512];

    static const struct {
        const char  *s;
        const char  *why;
    } t[] = {
        { "", "empty" },
        { "hourly", "expected once YYYY-MM-DD HH:MM, daily HH:MM" },
        { "daily", "expected once" },
        { "daily 9am", "expected a time HH:MM" },
        { "daily 24:00", "expected a time HH:MM" },
        { "daily 09:60", "expected a time HH:MM" },
        { "daily 9:5", "expected a time HH:MM" },
        { "daily 09:00 extra", "expected once" },
        { "weekly 09:00", "expected once" },
        { "weekly funday 09:00", "days: expected mon..sun or 1..7" },
        { "weekly mon, 09:00", "days: expected" },
        { "weekly mon,,tue 09:00", "days: expected" },
        { "weekly 8 09:00", "days: expected" },
        { "monthly 0 09:00", "day of the month 1..31" },
        { "monthly 32 09:00", "day of the month 1..31" },
        { "monthly x 09:00", "day of the month 1..31" },
        { "once 2025-02-30 09:00", "expected once YYYY-MM-DD HH:MM" },
        { "once 2025-3-1 09:00", "expected once YYYY-MM-DD HH:MM" },
        { "once tomorrow", "expected once YYYY-MM-DD HH:MM" },
        { "birthdays", "expected once" },
    };

    (void) state;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        err[0] = '\0';

        if (vw_schedule_parse(t[i].s, &sc, err, sizeof(err)) != -1
            || strstr(err, t[i].why) == NULL)
        {
            fail_msg("\"%s\": \"%s\" lacks \"%s\"", t[i].s, err, t[i].why);
        }
    }
}


static void
test_daily(void **state)
{
    vw_schedule_t  sc;
    int64_t        now;

    (void) state;

    sc = sched("daily 09:00");

    /* UTC */
    now = utc(2025, 3, 15, 8, 59);
    assert_int_equal(vw_schedule_prev(&sc, now, 0), utc(2025, 3, 14, 9, 0));
    assert_int_equal(vw_schedule_next(&sc, now, 0), utc(2025, 3, 15, 9, 0));
    now = utc(2025, 3, 15, 9, 0);
    assert_int_equal(vw_schedule_prev(&sc, now, 0), now);
    assert_int_equal(vw_schedule_next(&sc, now, 0), utc(2025, 3, 16, 9, 0));

    /* Bangkok: 09:00 there is 02:00 UTC */
    now = utc(2025, 3, 15, 1, 59);
    assert_int_equal(vw_schedule_prev(&sc, now, BKK), utc(2025, 3, 14, 2, 0));
    now = utc(2025, 3, 15, 2, 0);
    assert_int_equal(vw_schedule_prev(&sc, now, BKK), now);

    /* New York (-05:00): 09:00 there is 14:00 UTC */
    now = utc(2025, 3, 15, 13, 0);
    assert_int_equal(vw_schedule_prev(&sc, now, -300),
                     utc(2025, 3, 14, 14, 0));

    /* a zone where 00:30 local is the previous day in UTC */
    sc = sched("daily 00:30");
    now = utc(2025, 1, 1, 0, 0);
    assert_int_equal(vw_schedule_prev(&sc, now, BKK),
                     utc(2024, 12, 31, 17, 30));
}


static void
test_weekly(void **state)
{
    vw_schedule_t  sc;

    (void) state;

    /* 2025-03-15 is a Saturday */
    sc = sched("weekly mon,fri 10:00");
    assert_int_equal(sc.days, (1u << 1) | (1u << 5));
    assert_int_equal(vw_schedule_prev(&sc, utc(2025, 3, 15, 12, 0), 0),
                     utc(2025, 3, 14, 10, 0));
    assert_int_equal(vw_schedule_next(&sc, utc(2025, 3, 15, 12, 0), 0),
                     utc(2025, 3, 17, 10, 0));

    sc = sched("weekly 7 23:30");
    assert_int_equal(vw_schedule_next(&sc, utc(2025, 3, 15, 12, 0), 0),
                     utc(2025, 3, 16, 23, 30));

    /* Sunday 23:30 in Bangkok is Sunday 16:30 UTC */
    assert_int_equal(vw_schedule_next(&sc, utc(2025, 3, 15, 12, 0), BKK),
                     utc(2025, 3, 16, 16, 30));

    /* days before 1970 work too (negative day numbers) */
    sc = sched("weekly wed 00:00");
    assert_int_equal(vw_schedule_prev(&sc, utc(1969, 12, 31, 1, 0), 0),
                     utc(1969, 12, 31, 0, 0));
}


static void
test_monthly(void **state)
{
    vw_schedule_t  sc;

    (void) state;

    sc = sched("monthly 15 09:00");
    assert_int_equal(vw_schedule_prev(&sc, utc(2025, 3, 15, 8, 0), 0),
                     utc(2025, 2, 15, 9, 0));
    assert_int_equal(vw_schedule_next(&sc, utc(2025, 3, 15, 9, 0), 0),
                     utc(2025, 4, 15, 9, 0));

    /* the 31st in a 30-day month is its last day; February too */
    sc = sched("monthly 31 09:00");
    assert_int_equal(vw_schedule_next(&sc, utc(2025, 4, 1, 0, 0), 0),
                     utc(2025, 4, 30, 9, 0));
    assert_int_equal(vw_schedule_next(&sc, utc(2025, 2, 1, 0, 0), 0),
                     utc(2025, 2, 28, 9, 0));
    assert_int_equal(vw_schedule_next(&sc, utc(2024, 2, 1, 0, 0), 0),
                     utc(2024, 2, 29, 9, 0));
    assert_int_equal(vw_schedule_prev(&sc, utc(2025, 3, 30, 0, 0), 0),
                     utc(2025, 2, 28, 9, 0));
}


static void
test_birthdays(void **state)
{
    vw_schedule_t  sc;
    int64_t        t;

    (void) state;

    /* on the 1st of every month, in the campaign's zone */
    sc = sched("birthdays 08:00");
    assert_int_equal(sc.kind, VW_SCHED_BIRTHDAYS);

    t = vw_schedule_next(&sc, utc(2025, 1, 15, 0, 0), BKK);
    assert_int_equal(t, utc(2025, 2, 1, 1, 0));
    assert_int_equal(vw_local_month(t, BKK), 2);

    /* across the month boundary: 1 Feb 08:00 in Bangkok is 31 Jan UTC */
    sc = sched("birthdays 06:00");
    t = vw_schedule_next(&sc, utc(2025, 1, 15, 0, 0), BKK);
    assert_int_equal(t, utc(2025, 1, 31, 23, 0));
    assert_int_equal(vw_local_month(t, BKK), 2);
    assert_int_equal(vw_local_month(t, 0), 1);

    /* December to January */
    t = vw_schedule_next(&sc, utc(2025, 12, 2, 0, 0), BKK);
    assert_int_equal(t, utc(2025, 12, 31, 23, 0));
    assert_int_equal(vw_local_month(t, BKK), 1);
}


static void
test_once(void **state)
{
    vw_schedule_t  sc;

    (void) state;

    sc = sched("once 2025-03-15 09:00");
    assert_int_equal(vw_schedule_prev(&sc, utc(2025, 3, 15, 8, 59), 0), -1);
    assert_int_equal(vw_schedule_prev(&sc, utc(2025, 3, 15, 9, 0), 0),
                     utc(2025, 3, 15, 9, 0));
    assert_int_equal(vw_schedule_prev(&sc, utc(2030, 1, 1, 0, 0), 0),
                     utc(2025, 3, 15, 9, 0));
    assert_int_equal(vw_schedule_next(&sc, utc(2025, 3, 15, 9, 0), 0), -1);
    assert_int_equal(vw_schedule_prev(&sc, utc(2025, 3, 15, 2, 0), BKK),
                     utc(2025, 3, 15, 2, 0));

    sc = sched("once 2025-03-15T09:00");
    assert_int_equal(sc.once, utc(2025, 3, 15, 9, 0));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_civil),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_daily),
        cmocka_unit_test(test_weekly),
        cmocka_unit_test(test_monthly),
        cmocka_unit_test(test_birthdays),
        cmocka_unit_test(test_once),
    };

    return cmocka_run_group_tests_name("schedules", tests, NULL, NULL);
}
