
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


int
vw_cmd_report(vw_ctl_t *ctl, int argc, char **argv)
{
    int          npos, format, rc;
    char        *pos[2], what[256];
    json_t      *out, *query;
    const char  *fmt;

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

    fmt = vw_opt(opts, "--format");
    format = fmt == NULL || strcmp(fmt, "table") == 0 ? 0
             : strcmp(fmt, "csv") == 0 ? 1
             : strcmp(fmt, "json") == 0 ? 2 : -1;

    if (format < 0) {
        vw_ctl_fail("report: --format: expected table, csv or json");
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
