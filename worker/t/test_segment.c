
/*
 * Copyright (C) ngx_voucher authors
 *
 * cmocka tests for segment rules and RFM scoring (worker/vw_segment.c).
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vw_segment.h"
#include "vw_util.h"


#define DAY  86400

/* 2025-03-15T12:00:00Z */
#define NOW  INT64_C(1742040000)


static vw_member_t *
member(vw_member_t *m, const char *id)
{
    memset(m, 0, sizeof(vw_member_t));
    m->id = vw_xstrdup(id);
    m->signup = VW_UNSET;
    m->first = VW_UNSET;
    m->last = VW_UNSET;

    return m;
}


static void
buys(vw_member_t *m, int64_t days_ago, int64_t count, int64_t spend)
{
    m->last = NOW - days_ago * DAY;
    m->first = m->last - 100 * DAY;
    m->count = count;
    m->spend = spend;
}


static void
free_members(vw_member_t *m, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        vw_member_free(&m[i]);
    }
}


/* the ids of a segment, space-separated */

static char *
ids(const char *spec, vw_member_t *m, size_t n, int64_t now, int tz)
{
    size_t         i, k, out[64];
    vw_segment_t   seg;
    char           err[512];
    static char    buf[1024];

    if (vw_segment_parse(spec, &seg, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }

    k = vw_segment_eval(&seg, m, n, now, tz, out);
    buf[0] = '\0';

    for (i = 0; i < k; i++) {
        if (i) {
            strcat(buf, " ");
        }

        strcat(buf, m[out[i]].id);
    }

    vw_segment_free(&seg);

    return buf;
}


static void
test_parse_errors(void **state)
{
    size_t        i;
    vw_segment_t  seg;
    char          err[512];

    static const struct {
        const char  *spec;
        const char  *why;
    } t[] = {
        { "", "empty" },
        { "everyone", "unknown rule \"everyone\" (known: all, tier" },
        { "all:1", "unknown rule \"all:1\"" },
        { "tier", "unknown rule \"tier\"" },
        { "tier:", "tier: expected a comma-separated list" },
        { "tier:gold,,silver", "tier: an empty element" },
        { "tier:gold,", "tier: an empty element" },
        { "dormant:0", "dormant: expected days 1..36500" },
        { "dormant:x", "dormant: expected days" },
        { "dormant:", "dormant: expected days" },
        { "new:-5", "new: expected days" },
        { "top:0", "top: expected a count 1.." },
        { "birth_month:13", "birth_month: expected a month 1..12" },
        { "rfm:champs", "rfm: unknown group \"champs\" (known: champions" },
        { "rfm:none", "rfm: unknown group \"none\"" },
        { "all & ", "an empty rule" },
        { "top:5 & top:6", "top:N given twice" },
    };

    (void) state;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        err[0] = '\0';
        assert_int_equal(vw_segment_parse(t[i].spec, &seg, err, sizeof(err)),
                         -1);

        if (strstr(err, t[i].why) == NULL) {
            fail_msg("\"%s\": \"%s\" lacks \"%s\"", t[i].spec, err, t[i].why);
        }

        assert_null(seg.rules);
    }
}


static void
test_parse_ok(void **state)
{
    vw_segment_t  seg;
    char          err[512];

    (void) state;

    assert_int_equal(vw_segment_parse(" tier: gold , silver & birth_month ",
                                      &seg, err, sizeof(err)), 0);
    assert_int_equal(seg.nrules, 2);
    assert_int_equal(seg.rules[0].type, VW_RULE_TIER);
    assert_int_equal(seg.rules[0].nvalues, 2);
    assert_string_equal(seg.rules[0].values[0], "gold");
    assert_string_equal(seg.rules[0].values[1], "silver");
    assert_int_equal(seg.rules[1].type, VW_RULE_BIRTH_MONTH);
    assert_int_equal(seg.rules[1].n, 0);
    assert_int_equal(seg.needs_rfm, 0);
    vw_segment_free(&seg);

    assert_int_equal(vw_segment_parse("rfm:at_risk,hibernating&top:10", &seg,
                                      err, sizeof(err)), 0);
    assert_int_equal(seg.rules[0].groups,
                     (1u << VW_RFM_AT_RISK) | (1u << VW_RFM_HIBERNATING));
    assert_int_equal(seg.needs_rfm, 1);
    assert_int_equal(seg.rules[1].n, 10);
    vw_segment_free(&seg);

    /* a phone number in a list also matches in normalized form */
    assert_int_equal(vw_segment_parse("list:alice,+66 81-234 5678", &seg, err,
                                      sizeof(err)), 0);
    assert_int_equal(seg.rules[0].nvalues, 3);
    assert_string_equal(seg.rules[0].values[1], "+66812345678");
    vw_segment_free(&seg);
}


static void
test_phone_and_birthday(void **state)
{
    char         *p;
    vw_member_t   m;

    (void) state;

    p = vw_phone_normalize("+66 (81) 234-5678");
    assert_string_equal(p, "+66812345678");
    free(p);
    p = vw_phone_normalize("081.234.5678");
    assert_string_equal(p, "0812345678");
    free(p);
    assert_null(vw_phone_normalize("12345"));
    assert_null(vw_phone_normalize("1234567890123456"));
    assert_null(vw_phone_normalize("081-234-567x"));
    assert_null(vw_phone_normalize("66+812345678"));

    member(&m, "x");
    m.birthday = vw_xstrdup("1990-02-29");
    vw_member_birthday(&m);
    assert_int_equal(m.birth_month, 2);
    assert_int_equal(m.birth_day, 29);
    free(m.birthday);
    m.birthday = vw_xstrdup("12-31");
    vw_member_birthday(&m);
    assert_int_equal(m.birth_month, 12);
    free(m.birthday);
    m.birthday = vw_xstrdup("1990-13-01");
    vw_member_birthday(&m);
    assert_int_equal(m.birth_month, 0);
    vw_member_free(&m);
}


static void
test_rfm_scores(void **state)
{
    size_t       i;
    vw_member_t  m[11];

    (void) state;

    /*
     * Ten buyers, each better than the one before in recency, frequency
     * and money: scores 1,1,2,2,3,3,4,4,5,5.  One member never bought.
     */
    for (i = 0; i < 10; i++) {
        char  id[8];

        snprintf(id, sizeof(id), "b%zu", i);
        member(&m[i], id);
        buys(&m[i], 100 - (int64_t) i * 10, (int64_t) i + 1,
             ((int64_t) i + 1) * 1000);
    }

    member(&m[10], "never");

    vw_rfm_score(m, 11, NOW);

    for (i = 0; i < 10; i++) {
        assert_int_equal(m[i].r, 1 + (int) i / 2);
        assert_int_equal(m[i].f, 1 + (int) i / 2);
        assert_int_equal(m[i].m, 1 + (int) i / 2);
    }

    assert_int_equal(m[10].r, 0);
    assert_int_equal(m[10].group, VW_RFM_NONE);

    assert_int_equal(m[9].group, VW_RFM_CHAMPIONS);          /* 5 5 5 */
    assert_int_equal(m[6].group, VW_RFM_CHAMPIONS);          /* 4 4 4 */
    assert_int_equal(m[5].group, VW_RFM_NEED_ATTENTION);     /* 3 3 3 */
    assert_int_equal(m[2].group, VW_RFM_HIBERNATING);        /* 2 2 2 */
    assert_int_equal(m[0].group, VW_RFM_HIBERNATING);        /* 1 1 1 */

    /* shift profiles to reach the other groups */
    m[8].count = 100;                   /* R4 F5 M5: champions */
    m[8].spend = 1;                     /* M1: no longer a champion */
    vw_rfm_score(m, 11, NOW);
    assert_int_equal(m[8].r, 5);
    assert_int_equal(m[8].f, 5);
    assert_int_equal(m[8].m, 1);
    assert_int_equal(m[8].group, VW_RFM_LOYAL);

    m[1].count = 1000;                  /* long ago, but very frequent */
    vw_rfm_score(m, 11, NOW);
    assert_int_equal(m[1].r, 1);
    assert_int_equal(m[1].f, 5);
    assert_int_equal(m[1].group, VW_RFM_AT_RISK);

    m[7].count = 1;                     /* recent, once */
    vw_rfm_score(m, 11, NOW);
    assert_int_equal(m[7].r, 4);
    assert_int_equal(m[7].f, 1);
    assert_int_equal(m[7].group, VW_RFM_NEW_CUSTOMERS);

    /* counts are now 1 3 4 5 5 6 7 10 100 1000: 3 below 5, so F2 */
    m[7].count = 5;                     /* recent, a few times */
    vw_rfm_score(m, 11, NOW);
    assert_int_equal(m[7].f, 2);
    assert_int_equal(m[7].group, VW_RFM_POTENTIAL);

    /* everybody equal: everybody scores 1 */
    for (i = 0; i < 10; i++) {
        buys(&m[i], 5, 2, 500);
    }

    vw_rfm_score(m, 10, NOW);

    for (i = 0; i < 10; i++) {
        assert_int_equal(m[i].r + m[i].f + m[i].m, 3);
    }

    /* a purchase "in the future" (clock skew) counts as now: ties now */
    m[0].last = NOW + 1000 * DAY;
    m[1].last = NOW;
    vw_rfm_score(m, 10, NOW);
    assert_int_equal(m[0].r, 5);
    assert_int_equal(m[1].r, 5);
    assert_int_equal(m[2].r, 1);

    free_members(m, 11);
}


static void
test_rules(void **state)
{
    vw_member_t  m[6];

    (void) state;

    member(&m[0], "alice");
    m[0].tier = vw_xstrdup("gold");
    m[0].tags = vw_xstrdup(",vip,coffee,");
    m[0].birthday = vw_xstrdup("1990-03-02");
    m[0].phone = vw_xstrdup("+66812345678");
    m[0].signup = NOW - 2 * DAY;
    buys(&m[0], 1, 10, 90000);

    member(&m[1], "bob");
    m[1].tier = vw_xstrdup("silver");
    m[1].tags = vw_xstrdup(",coffeemaker,");
    m[1].birthday = vw_xstrdup("04-01");
    m[1].signup = NOW - 400 * DAY;
    buys(&m[1], 60, 2, 5000);

    member(&m[2], "carol");
    m[2].tier = vw_xstrdup("gold");
    m[2].signup = NOW - 7 * DAY;          /* exactly 7 days */
    buys(&m[2], 59, 1, 5000);

    member(&m[3], "dave");                /* nothing known */

    member(&m[4], "erin");
    m[4].birthday = vw_xstrdup("03-31");
    m[4].phone = vw_xstrdup("0899999999");
    buys(&m[4], 200, 3, 20000);

    member(&m[5], "frank");
    m[5].tags = vw_xstrdup(",vip,");
    buys(&m[5], 61, 1, 5000);

    vw_member_birthday(&m[0]);
    vw_member_birthday(&m[1]);
    vw_member_birthday(&m[4]);

    assert_string_equal(ids("all", m, 6, NOW, 0),
                        "alice bob carol dave erin frank");
    assert_string_equal(ids("tier:gold", m, 6, NOW, 0), "alice carol");
    assert_string_equal(ids("tier:silver,bronze", m, 6, NOW, 0), "bob");

    /* tags are whole words: "coffee" is not "coffeemaker" */
    assert_string_equal(ids("tags:coffee", m, 6, NOW, 0), "alice");
    assert_string_equal(ids("tags:vip,coffeemaker", m, 6, NOW, 0),
                        "alice bob frank");

    assert_string_equal(ids("birth_month", m, 6, NOW, 0), "alice erin");
    assert_string_equal(ids("birth_month:4", m, 6, NOW, 0), "bob");

    /* ids and phone numbers, in any format */
    assert_string_equal(ids("list:bob,+66 81 234 5678,089-999-9999,nobody",
                            m, 6, NOW, 0), "alice bob erin");

    /* dormant:60: bought, but not in the last 60 days (60 exactly is) */
    assert_string_equal(ids("dormant:60", m, 6, NOW, 0), "bob erin frank");
    assert_string_equal(ids("dormant:100", m, 6, NOW, 0), "erin");

    /* new:7 means within the last 7 days, not 7 days ago */
    assert_string_equal(ids("new:7", m, 6, NOW, 0), "alice");
    assert_string_equal(ids("new:8", m, 6, NOW, 0), "alice carol");

    /* top:N: by spend, ties by id, buyers only */
    assert_string_equal(ids("top:2", m, 6, NOW, 0), "alice erin");
    assert_string_equal(ids("top:4", m, 6, NOW, 0), "alice erin bob carol");
    assert_string_equal(ids("top:100", m, 6, NOW, 0),
                        "alice erin bob carol frank");

    /* rules combine: all must hold; top ranks what the others let in */
    assert_string_equal(ids("tier:gold & dormant:30", m, 6, NOW, 0), "carol");
    assert_string_equal(ids("dormant:60 & top:1", m, 6, NOW, 0), "erin");
    assert_string_equal(ids("tags:vip & birth_month", m, 6, NOW, 0), "alice");

    /*
     * Five buyers.  Recency ranks erin frank bob carol alice, frequency
     * 1 1 2 3 10, money 5000 x3, 20000, 90000:
     *   alice R5 F5 M5 champions    carol R4 F1 new_customers
     *   bob   R3 F3    need_attention
     *   frank R2 F1    hibernating  erin  R1 F4 at_risk
     */
    assert_string_equal(ids("rfm:champions", m, 6, NOW, 0), "alice");
    assert_string_equal(ids("rfm:new_customers", m, 6, NOW, 0), "carol");
    assert_string_equal(ids("rfm:need_attention", m, 6, NOW, 0), "bob");
    assert_string_equal(ids("rfm:hibernating,at_risk", m, 6, NOW, 0),
                        "erin frank");
    assert_string_equal(ids("rfm:loyal,potential", m, 6, NOW, 0), "");

    free_members(m, 6);
}


static void
test_birth_month_time_zone(void **state)
{
    vw_member_t  m[2];
    int64_t      t;

    (void) state;

    member(&m[0], "jan");
    m[0].birthday = vw_xstrdup("01-31");
    member(&m[1], "feb");
    m[1].birthday = vw_xstrdup("2000-02-01");
    vw_member_birthday(&m[0]);
    vw_member_birthday(&m[1]);

    /* 2025-01-31T20:00:00Z: still January in UTC, February in Bangkok */
    t = INT64_C(1738353600);

    assert_string_equal(ids("birth_month", m, 2, t, 0), "jan");
    assert_string_equal(ids("birth_month", m, 2, t, 7 * 60), "feb");
    assert_string_equal(ids("birth_month", m, 2, t, -5 * 60), "jan");

    /* 2025-02-01T02:00:00Z: February, but January in New York */
    t = INT64_C(1738375200);
    assert_string_equal(ids("birth_month", m, 2, t, 0), "feb");
    assert_string_equal(ids("birth_month", m, 2, t, -5 * 60), "jan");

    /* December to January across the year */
    m[0].birthday[1] = '2';              /* "02-31": not a date: nobody */
    vw_member_birthday(&m[0]);
    free(m[0].birthday);
    m[0].birthday = vw_xstrdup("12-24");
    vw_member_birthday(&m[0]);
    t = INT64_C(1767222000);             /* 2025-12-31T23:00:00Z */
    assert_string_equal(ids("birth_month", m, 2, t, 0), "jan");
    assert_string_equal(ids("birth_month", m, 2, t, 60), "");
    assert_string_equal(ids("birth_month:1", m, 2, t, 0), "");

    free_members(m, 2);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_phone_and_birthday),
        cmocka_unit_test(test_rfm_scores),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_birth_month_time_zone),
    };

    return cmocka_run_group_tests_name("segments", tests, NULL, NULL);
}
