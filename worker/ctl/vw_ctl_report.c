
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl report CAMPAIGN: the report of worker/ops/vw_op_report.c
 * (the same as GET /v1/campaigns/{campaign}/report), as JSON, CSV (one
 * line per member) or a table; --from and --to are its query's from and
 * to.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vw_csv.h"
#include "vw_ctl.h"
#include "vw_locale.h"
#include "vw_util.h"


static const char  vw_report_usage[] =
    "usage: voucherctl report CAMPAIGN [--format table|csv|json]\n"
    "           [--from YYYY-MM-DD] [--to YYYY-MM-DD]   (the campaign's "
    "zone)\n";


static const char *
vw_str(json_t *o, const char *name)
{
    const char  *s;

    s = json_string_value(json_object_get(o, name));

    return s ? s : "";
}


static long long
vw_int(json_t *o, const char *name)
{
    return (long long) json_integer_value(json_object_get(o, name));
}


static void
vw_report_csv(json_t *rp)
{
    size_t    i, k;
    json_t   *x, *c;
    vw_buf_t  codes;

    memset(&codes, 0, sizeof(vw_buf_t));

    printf("member,status,channel,code,deliveries,last_sent_at,"
           "redemptions,discount,revenue,error,codes\n");

    json_array_foreach(json_object_get(rp, "recipients"), i, x) {
        vw_csv_write(stdout, vw_str(x, "member"));
        printf(",%s,", vw_str(x, "status"));
        vw_csv_write(stdout, vw_str(x, "channel"));
        fputc(',', stdout);
        vw_csv_write(stdout, vw_str(x, "code"));
        printf(",%lld,%s,%lld,%lld,%lld,", vw_int(x, "deliveries"),
               vw_str(x, "last_sent_at"), vw_int(x, "redemptions"),
               vw_int(x, "discount"), vw_int(x, "revenue"));
        vw_csv_write(stdout, vw_str(x, "error"));
        fputc(',', stdout);

        /* every code sent, ';'-separated */
        vw_buf_reset(&codes);
        vw_buf_adds(&codes, "");

        json_array_foreach(json_object_get(x, "codes"), k, c) {
            if (k) {
                vw_buf_addc(&codes, ';');
            }

            vw_buf_adds(&codes, json_string_value(c));
        }

        vw_csv_write(stdout, codes.data);
        fputc('\n', stdout);
    }

    vw_buf_free(&codes);
}


static const char *
vw_dash(json_t *o, const char *name)
{
    const char  *s;

    s = vw_str(o, name);

    return s[0] ? s : "-";
}


static void
vw_report_table(json_t *rp)
{
    size_t       i;
    json_t      *x, *list;
    const char  *name, *from, *to;

    name = json_string_value(json_object_get(rp, "name"));
    from = json_string_value(json_object_get(rp, "from"));
    to = json_string_value(json_object_get(rp, "to"));

    printf("campaign        %s%s%s%s\n", vw_str(rp, "campaign"),
           name ? " (" : "", name ? name : "", name ? ")" : "");

    if (from || to) {
        printf("period          %s to %s\n", from ? from : "the start",
               to ? to : "now");
    }
    printf("issued          %lld codes, %lld used (%s)\n",
           vw_int(rp, "issued"), vw_int(rp, "codes_used"),
           vw_str(rp, "redemption_rate"));
    printf("delivered       %lld members, %lld failed\n",
           vw_int(rp, "delivered"), vw_int(rp, "failed"));
    printf("redemptions     %lld (%lld rollbacks)\n",
           vw_int(rp, "redemptions"), vw_int(rp, "rollbacks"));
    printf("came back       %lld of %lld delivered members (%s)\n",
           vw_int(rp, "came_back"), vw_int(rp, "delivered"),
           vw_str(rp, "came_back_rate"));
    printf("discount given  %s\n", vw_str(rp, "discount_given_text"));
    printf("revenue         %s\n", vw_str(rp, "revenue_text"));
    printf("ROI             %s  ((revenue - discount) / discount)\n",
           vw_str(rp, "roi"));

    list = json_object_get(rp, "runs");

    if (json_array_size(list) > 0) {
        printf("\n%-16s %-25s %6s %6s %7s %9s %5s\n", "run", "at", "queued",
               "sent", "skipped", "cancelled", "dead");

        json_array_foreach(list, i, x) {
            printf("%-16s %-25s %6lld %6lld %7lld %9lld %5lld\n",
                   vw_str(x, "run"), vw_str(x, "at"), vw_int(x, "queued"),
                   vw_int(x, "sent"), vw_int(x, "skipped"),
                   vw_int(x, "cancelled"), vw_int(x, "dead"));
        }
    }

    list = json_object_get(rp, "recipients");

    if (json_array_size(list) == 0) {
        return;
    }

    printf("\n%-20s %-14s %-8s %-24s %-25s %5s %14s %16s\n", "member",
           "status", "channel", "code", "last sent", "used", "discount",
           "revenue");

    json_array_foreach(list, i, x) {
        printf("%-20s %-14s %-8s %-24s %-25s %5lld %14s %16s\n",
               vw_str(x, "member"), vw_str(x, "status"),
               vw_dash(x, "channel"), vw_dash(x, "code"),
               vw_dash(x, "last_sent_at"), vw_int(x, "redemptions"),
               vw_str(x, "discount_text"), vw_str(x, "revenue_text"));
    }
}


/* --format: 0 table (the default), 1 csv, 2 json, or -1 (said) */

static int
vw_report_format(vw_opt_t *opts, const char *cmd)
{
    const char  *fmt;

    fmt = vw_opt(opts, "--format");

    if (fmt == NULL || strcmp(fmt, "table") == 0) {
        return 0;
    }

    if (strcmp(fmt, "csv") == 0) {
        return 1;
    }

    if (strcmp(fmt, "json") == 0) {
        return 2;
    }

    vw_ctl_fail("%s: --format: expected table, csv or json", cmd);

    return -1;
}


int
vw_cmd_report(vw_ctl_t *ctl, int argc, char **argv)
{
    int      npos, format, rc;
    char    *pos[2], what[256];
    json_t  *out, *query;

    vw_opt_t  opts[] = {
        { "--format", 1, NULL, 0 },
        { "--from", 1, NULL, 0 },
        { "--to", 1, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 2, vw_report_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_report_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    format = vw_report_format(opts, "report");
    if (format < 0) {
        return VW_EXIT_USAGE;
    }

    snprintf(what, sizeof(what), "report %s", pos[0]);

    query = json_object();

    if (vw_opt(opts, "--from")) {
        json_object_set_new(query, "from",
                            json_string(vw_opt(opts, "--from")));
    }

    if (vw_opt(opts, "--to")) {
        json_object_set_new(query, "to", json_string(vw_opt(opts, "--to")));
    }

    /* it only reads: a replica may answer (the op then uses it) */
    if (vw_ctl_redis_read(ctl) == NULL) {
        json_decref(query);
        return VW_EXIT_FAIL;
    }

    rc = vw_ctl_op_run(ctl, vw_op_report, what, pos[0], query, NULL, &out);
    json_decref(query);

    if (rc != VW_EXIT_OK) {
        /* a bad --from or --to is a usage error */
        return ctl->status == 400 ? VW_EXIT_USAGE : rc;
    }

    if (format == 2) {
        vw_ctl_print(out, 0);

    } else if (format == 1) {
        vw_report_csv(out);

    } else {
        vw_report_table(out);
    }

    json_decref(out);

    return VW_EXIT_OK;
}


/* ------------------------------------------------------------ liability */


static const char  vw_liability_usage[] =
    "usage: voucherctl liability [--campaign C] [--format table|csv|json]\n"
    "           [--locale th-TH|th-TH-u-ca-gregory|zh-CN|en]\n";


/* s padded to width columns (UTF-8: a character is one column) */

static void
vw_pad(const char *s, int width, int right)
{
    int          n;
    const char  *p;

    for (n = 0, p = s; *p; p++) {
        n += (*p & 0xc0) != 0x80;
    }

    if (right) {
        printf("%*s%s", n < width ? width - n : 0, "", s);

    } else {
        printf("%s%*s", s, n < width ? width - n : 0, "");
    }
}


static void
vw_money(const vw_locale_t *l, json_t *o, const char *name, char *buf,
    size_t size)
{
    vw_locale_money(l, vw_int(o, name), vw_str(o, "currency")[0]
                                        ? vw_str(o, "currency") : NULL,
                    buf, size);
}


/* a "YYYY-MM-DD" as the locale writes a date */

static void
vw_day(const vw_locale_t *l, const char *day, char *buf, size_t size)
{
    int      y, m, d;
    int64_t  era, yoe, doy, doe, days;

    if (sscanf(day, "%4d-%2d-%2d", &y, &m, &d) != 3) {
        snprintf(buf, size, "%s", day);
        return;
    }

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    days = era * 146097 + doe - 719468;

    vw_locale_date(l, days * 86400 + 43200, 0, buf, size);
}


static void
vw_liability_table(json_t *rp, const vw_locale_t *l)
{
    int      tz;
    size_t   i;
    char     a[64], b[64], when[64];
    json_t  *x, *list;

    list = json_object_get(rp, "campaigns");
    tz = (int) vw_int(json_array_get(list, 0), "tz_offset");
    vw_locale_datetime(l, vw_int(rp, "as_of"), tz, when, sizeof(when));
    printf("gift cards: what they still hold, as of %s (UTC%+d:%02d)\n\n",
           when, tz / 60, abs(tz) % 60);

    vw_pad("campaign", 24, 0);
    vw_pad("cards", 8, 1);
    vw_pad("outstanding", 18, 1);
    vw_pad("of it expiring", 18, 1);
    fputc('\n', stdout);

    json_array_foreach(list, i, x) {
        vw_money(l, x, "outstanding", a, sizeof(a));
        vw_money(l, x, "expiring", b, sizeof(b));
        vw_pad(vw_str(x, "campaign"), 24, 0);
        printf("%8lld", vw_int(x, "cards"));
        vw_pad(a, 18, 1);
        vw_pad(b, 18, 1);
        fputc('\n', stdout);
    }

    json_array_foreach(json_object_get(rp, "totals"), i, x) {
        vw_money(l, x, "outstanding", a, sizeof(a));
        vw_pad("total", 32, 0);
        vw_pad(a, 18, 1);
        fputc('\n', stdout);
    }

    printf("\n");
    vw_pad("age of the credit", 24, 0);
    vw_pad("outstanding", 26, 1);
    fputc('\n', stdout);

    json_array_foreach(json_object_get(rp, "by_age"), i, x) {
        const char  *age;

        age = vw_str(x, "age");
        snprintf(b, sizeof(b), "%s%s", strcmp(age, "over_365") == 0
                                       ? "over 365" : age,
                 strcmp(age, "undated") == 0 ? "" : " days");
        vw_money(l, x, "outstanding", a, sizeof(a));
        vw_pad(b, 24, 0);
        vw_pad(a, 26, 1);
        fputc('\n', stdout);
    }

    printf("\n");
    vw_pad("expires at the end of", 24, 0);
    vw_pad("outstanding", 26, 1);
    fputc('\n', stdout);

    json_array_foreach(json_object_get(rp, "by_expiry"), i, x) {
        if (json_is_string(json_object_get(x, "expires_on"))) {
            vw_day(l, vw_str(x, "expires_on"), b, sizeof(b));

        } else {
            snprintf(b, sizeof(b), "never");
        }

        vw_money(l, x, "outstanding", a, sizeof(a));
        vw_pad(b, 24, 0);
        vw_pad(a, 26, 1);
        fputc('\n', stdout);
    }
}


static void
vw_liability_csv(json_t *rp)
{
    size_t   i;
    json_t  *x;

    printf("section,campaign,currency,age,expires_on,cards,outstanding,"
           "expiring\n");

    json_array_foreach(json_object_get(rp, "campaigns"), i, x) {
        printf("campaign,");
        vw_csv_write(stdout, vw_str(x, "campaign"));
        printf(",%s,,,%lld,%lld,%lld\n", vw_str(x, "currency"),
               vw_int(x, "cards"), vw_int(x, "outstanding"),
               vw_int(x, "expiring"));
    }

    json_array_foreach(json_object_get(rp, "by_age"), i, x) {
        printf("age,,%s,%s,,,%lld,\n", vw_str(x, "currency"),
               vw_str(x, "age"), vw_int(x, "outstanding"));
    }

    json_array_foreach(json_object_get(rp, "by_expiry"), i, x) {
        printf("expiry,,%s,,%s,,%lld,\n", vw_str(x, "currency"),
               vw_str(x, "expires_on"), vw_int(x, "outstanding"));
    }
}


int
vw_cmd_liability(vw_ctl_t *ctl, int argc, char **argv)
{
    int                 npos, format, rc;
    char               *pos[1];
    json_t             *out, *query;
    const char         *loc;
    const vw_locale_t  *l;

    vw_opt_t  opts[] = {
        { "--format", 1, NULL, 0 },
        { "--campaign", 1, NULL, 0 },
        { "--locale", 1, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 1, vw_liability_usage);
    if (npos != 0) {
        if (npos >= 0) {
            fputs(vw_liability_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    format = vw_report_format(opts, "liability");
    if (format < 0) {
        return VW_EXIT_USAGE;
    }

    loc = vw_opt(opts, "--locale");
    l = vw_locale_find(loc ? loc : "en");

    if (l == NULL) {
        vw_ctl_fail("liability: --locale: expected " VW_LOCALES);
        return VW_EXIT_USAGE;
    }

    query = json_object();

    if (vw_opt(opts, "--campaign")) {
        json_object_set_new(query, "campaign",
                            json_string(vw_opt(opts, "--campaign")));
    }

    /* it only reads: a replica may answer */
    if (vw_ctl_redis_read(ctl) == NULL) {
        json_decref(query);
        return VW_EXIT_FAIL;
    }

    rc = vw_ctl_op_run(ctl, vw_op_liability, "liability", NULL, query, NULL,
                       &out);
    json_decref(query);

    if (rc != VW_EXIT_OK) {
        return rc;
    }

    if (format == 2) {
        vw_ctl_print(out, 0);

    } else if (format == 1) {
        vw_liability_csv(out);

    } else {
        vw_liability_table(out, l);
    }

    json_decref(out);

    return VW_EXIT_OK;
}
