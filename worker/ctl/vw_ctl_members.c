
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl members import|get, segment show.
 *
 * An import is a job (worker/ops/vw_job_import.c): every line is
 * parsed, then the library checks every row (voucher_members_add
 * "check"), and only when nothing is wrong are they written, in batches.
 * A bad line is reported by its number and the whole file is rejected.
 */


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vw_clock.h"
#include "vw_csv.h"
#include "vw_ctl.h"
#include "vw_members.h"
#include "vw_op_member.h"
#include "vw_segment.h"
#include "vw_util.h"



static const char  vw_members_usage[] =
    "usage: voucherctl members import FILE [--format csv|jsonl] [--dry-run]\n"
    "           [--detach]\n"
    "       voucherctl members get ID\n"
    "       voucherctl segment show SEGMENT [--tz +07:00]\n"
    "           [--format ids|csv|json]\n";


/* --format, or the file's extension: "jsonl" or "csv"; NULL if bad */

static const char *
vw_members_format(const char *path, const char *fmt)
{
    size_t  len;

    len = strlen(path);

    if (fmt == NULL) {
        return (len > 6 && strcmp(path + len - 6, ".jsonl") == 0)
               || (len > 5 && strcmp(path + len - 5, ".json") == 0)
               ? "jsonl" : "csv";
    }

    if (strcmp(fmt, "csv") == 0 || strcmp(fmt, "jsonl") == 0) {
        return fmt;
    }

    vw_ctl_fail("members import: --format: expected csv or jsonl");

    return NULL;
}


/*
 * The job members.import (worker/ops/vw_job_import.c): the file is
 * checked here first, nothing written (a local job); then written by a
 * job with a record held by this process.  --detach queues the whole of
 * it for voucherd.
 */

static int
vw_members_import(vw_ctl_t *ctl, int argc, char **argv)
{
    int          npos, rc;
    char        *pos[2], *data, what[300];
    size_t       len;
    json_t      *params;
    vw_op_t      op;
    vw_op_in_t   in;
    vw_operr_t   e;
    vw_job_t     j;
    const char  *fmt;

    vw_opt_t  opts[] = {
        { "--format", 1, NULL, 0 },
        { "--dry-run", 0, NULL, 0 },
        { "--detach", 0, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 2, vw_members_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_members_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    fmt = vw_members_format(pos[0], vw_opt(opts, "--format"));

    if (fmt == NULL) {
        return VW_EXIT_USAGE;
    }

    if (vw_ctl_op_init(ctl, &op) != 0) {
        return VW_EXIT_FAIL;
    }

    memset(&in, 0, sizeof(vw_op_in_t));
    in.query = json_object();
    in.body = json_pack("{s:s}", "format", fmt);

    rc = vw_job_members_check(&op, &in, &params, &e);
    json_decref(in.query);
    json_decref(in.body);

    if (rc != 0) {
        vw_ctl_fail("members import: %s", e.message);
        return VW_EXIT_USAGE;
    }

    data = vw_read_file(pos[0], &len);

    if (data == NULL) {
        vw_ctl_fail("members import: %s: %s", pos[0], strerror(errno));
        json_decref(params);
        return VW_EXIT_FAIL;
    }

    snprintf(what, sizeof(what), "members import: %s", pos[0]);

    memset(&j, 0, sizeof(vw_job_t));
    snprintf(j.kind, sizeof(j.kind), "members.import");
    snprintf(j.phase, sizeof(j.phase), "check");
    j.params = params;
    j.input = data;
    j.input_len = len;
    j.total = -1;

    if (vw_opt(opts, "--detach")) {
        rc = vw_ctl_job_detach(ctl, &j, what);
        vw_job_free(&j);
        return rc;
    }

    rc = vw_ctl_job(ctl, &j, 0, what);

    if (rc == VW_EXIT_OK && vw_opt(opts, "--dry-run")) {
        printf("%lld members OK, nothing written (--dry-run)\n",
               (long long) j.total);
    }

    if (rc != VW_EXIT_OK || vw_opt(opts, "--dry-run")) {
        vw_job_free(&j);
        return rc;
    }

    json_decref(j.result);
    j.result = NULL;
    j.done = 0;
    j.seq = 0;
    j.ended = 0;
    snprintf(j.phase, sizeof(j.phase), "write");

    rc = vw_ctl_job(ctl, &j, 1, what);

    if (rc == VW_EXIT_OK) {
        printf("imported %lld members\n", (long long) j.done);
    }

    vw_job_free(&j);

    return rc;
}


static int
vw_members_get(vw_ctl_t *ctl, int argc, char **argv)
{
    int      rc;
    char     what[256];
    json_t  *out;

    if (argc != 1) {
        fputs(vw_members_usage, stderr);
        return VW_EXIT_USAGE;
    }

    snprintf(what, sizeof(what), "members get %s", argv[0]);

    rc = vw_ctl_op_run(ctl, vw_op_member_get, what, argv[0], NULL, NULL,
                       &out);

    if (rc == VW_EXIT_OK) {
        vw_ctl_print(out, 0);
        json_decref(out);
    }

    return rc;
}


int
vw_cmd_members(vw_ctl_t *ctl, int argc, char **argv)
{
    int  rc;

    if (argc >= 1 && strcmp(argv[0], "import") == 0) {
        return vw_members_import(ctl, argc - 1, argv + 1);
    }

    if (argc >= 1 && strcmp(argv[0], "get") == 0) {
        return vw_members_get(ctl, argc - 1, argv + 1);
    }

    rc = vw_ctl_ops_cmd(ctl, "members", argc, argv);

    if (rc >= 0) {
        return rc;
    }

    fputs(vw_members_usage, stderr);
    vw_ctl_op_usage("members");

    return VW_EXIT_USAGE;
}


int
vw_cmd_segment(vw_ctl_t *ctl, int argc, char **argv)
{
    int            npos, tz, format;
    char          *pos[3], tags[1024];
    size_t         i, k, n, *idx;
    json_t        *arr;
    int64_t        now;
    vw_segment_t   seg;
    vw_member_t   *m, *x;
    const char    *fmt, *tzs;

    vw_opt_t  opts[] = {
        { "--tz", 1, NULL, 0 },
        { "--format", 1, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    if (argc >= 1 && strcmp(argv[0], "show") != 0) {
        npos = vw_ctl_ops_cmd(ctl, "segment", argc, argv);

        if (npos >= 0) {
            return npos;
        }
    }

    npos = vw_opts(argc, argv, opts, pos, 3, vw_members_usage);
    if (npos != 2 || strcmp(pos[0], "show") != 0) {
        if (npos >= 0) {
            fputs(vw_members_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    tz = 0;
    tzs = vw_opt(opts, "--tz");

    if (tzs && vw_tz_parse(tzs, &tz) != 0) {
        vw_ctl_fail("segment show: --tz: expected +HH:MM, -HH:MM or minutes "
                    "-840..840");
        return VW_EXIT_USAGE;
    }

    fmt = vw_opt(opts, "--format");
    format = fmt == NULL || strcmp(fmt, "ids") == 0 ? 0
             : strcmp(fmt, "csv") == 0 ? 1
             : strcmp(fmt, "json") == 0 ? 2 : -1;

    if (format < 0) {
        vw_ctl_fail("segment show: --format: expected ids, csv or json");
        return VW_EXIT_USAGE;
    }

    if (vw_segment_parse(pos[1], &seg, ctl->err, sizeof(ctl->err)) != 0) {
        vw_ctl_fail("%s", ctl->err);
        return VW_EXIT_FAIL;
    }

    if (vw_ctl_redis(ctl) == NULL
        || vw_members_load(ctl->redis, &ctl->cf, &m, &n, ctl->err,
                           sizeof(ctl->err)) != 0)
    {
        if (ctl->redis) {
            vw_ctl_fail("segment show: %s", ctl->err);
        }

        vw_segment_free(&seg);
        return VW_EXIT_FAIL;
    }

    now = vw_now();

    /* RFM is shown in csv and json: score even when no rule needs it */
    if (format != 0) {
        vw_rfm_score(m, n, now);
    }

    idx = vw_xalloc((n ? n : 1) * sizeof(size_t));
    k = vw_segment_eval(&seg, m, n, now, tz, idx);

    arr = format == 2 ? json_array() : NULL;

    if (format == 1) {
        printf("id,name,phone,email,line,tier,tags,birthday,purchases,spend,"
               "last_purchase,r,f,m,rfm_group\n");
    }

    for (i = 0; i < k; i++) {
        x = &m[idx[i]];

        if (format == 0) {
            printf("%s\n", x->id);

        } else if (format == 1) {
            vw_csv_write(stdout, x->id);
            fputc(',', stdout);
            vw_csv_write(stdout, x->name);
            fputc(',', stdout);
            vw_csv_write(stdout, x->phone);
            fputc(',', stdout);
            vw_csv_write(stdout, x->email);
            fputc(',', stdout);
            vw_csv_write(stdout, x->line);
            fputc(',', stdout);
            vw_csv_write(stdout, x->tier);
            fputc(',', stdout);

            tags[0] = '\0';

            if (x->tags && strlen(x->tags) > 2) {
                snprintf(tags, sizeof(tags), "%.*s",
                         (int) strlen(x->tags) - 2, x->tags + 1);
            }

            vw_csv_write(stdout, tags);
            fputc(',', stdout);
            vw_csv_write(stdout, x->birthday);
            printf(",%lld,%lld,", (long long) x->count, (long long) x->spend);

            if (x->last != VW_UNSET) {
                printf("%lld", (long long) x->last);
            }

            printf(",%d,%d,%d,%s\n", x->r, x->f, x->m,
                   vw_rfm_group_name(x->group));

        } else {
            json_array_append_new(arr, vw_op_member_json(x, 1));
        }
    }

    if (arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(arr);
    }

    fprintf(stderr, "voucherctl: segment \"%s\": %zu of %zu members\n",
            pos[1], k, n);

    free(idx);
    vw_members_free(m, n);
    vw_segment_free(&seg);

    return VW_EXIT_OK;
}
