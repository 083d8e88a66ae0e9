
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl auto set|get|list|del (campaign automations, run by
 * voucherd) and events add (what a storefront appends to {NS}:events).
 */


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vw_auto.h"
#include "vw_clock.h"
#include "vw_ctl.h"
#include "vw_job.h"
#include "vw_util.h"


static const char  vw_auto_usage[] =
    "usage: voucherctl auto set CAMPAIGN FILE.json   (FILE - : stdin)\n"
    "       voucherctl auto get CAMPAIGN\n"
    "       voucherctl auto list\n"
    "       voucherctl auto del CAMPAIGN\n"
    "       voucherctl auto next CAMPAIGN [--count N] [--now T]\n"
    "       voucherctl auto run CAMPAIGN --now    a run now (voucherd sends "
    "it)\n"
    "       voucherctl auto send CAMPAIGN [--detach]   a run now as a job, "
    "with\n"
    "                                 a progress bar (--detach: voucherd "
    "runs it)\n"
    "       voucherctl auto preview CAMPAIGN [--sample N] [--limit N]\n"
    "       voucherctl auto pause|resume CAMPAIGN   (resume: a birthday "
    "catch-up)\n";

static const char  vw_events_usage[] =
    "usage: voucherctl events add TYPE MEMBER [FIELD VALUE]...\n"
    "TYPE is signup, purchase, cart_abandoned or referral; FIELDs: ts,\n"
    "amount, name, phone, email, line, birthday, tier, tags\n";


static char *
vw_read_input(const char *path)
{
    char      buf[4096];
    size_t    n;
    vw_buf_t  b;

    if (strcmp(path, "-") != 0) {
        return vw_read_file(path, NULL);
    }

    memset(&b, 0, sizeof(vw_buf_t));
    vw_buf_adds(&b, "");

    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
        vw_buf_add(&b, buf, n);
    }

    return b.data;
}


static int
vw_auto_set(vw_ctl_t *ctl, const char *campaign, const char *path)
{
    int        rc;
    char      *json, what[256];
    json_t    *body, *out;
    vw_auto_t  a;

    json = vw_read_input(path);

    if (json == NULL) {
        vw_ctl_fail("auto set: %s: %s", path, strerror(errno));
        return VW_EXIT_FAIL;
    }

    /* the file's own errors, with its lines and columns */
    if (vw_auto_parse(campaign, json, &ctl->cf, &a, ctl->err,
                      sizeof(ctl->err)) != 0)
    {
        vw_ctl_fail("%s", ctl->err);
        free(json);
        return VW_EXIT_FAIL;
    }

    vw_auto_free(&a);

    body = json_loads(json, 0, NULL);
    free(json);

    snprintf(what, sizeof(what), "auto set %s", campaign);
    rc = vw_ctl_op_run(ctl, vw_op_auto_set, what, campaign, NULL, body,
                       &out);
    json_decref(body);

    if (rc == VW_EXIT_OK) {
        printf("OK\n");
        json_decref(out);
    }

    return rc;
}


/*
 * auto send: a run now of a scheduled automation as a job
 * (automations.send): in-process with a progress bar, or --detach for
 * voucherd
 */

static int
vw_auto_send(vw_ctl_t *ctl, int argc, char **argv)
{
    int        npos, rc;
    char      *pos[2];
    json_t    *body, *params;
    vw_job_t   j;

    vw_opt_t  opts[] = {
        { "--detach", 0, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 2, vw_auto_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_auto_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    if (vw_ctl_redis(ctl) == NULL) {
        return VW_EXIT_FAIL;
    }

    body = json_pack("{s:s}", "campaign", pos[0]);

    rc = vw_job_params(ctl, "auto send", vw_job_send_check, body, &params);
    if (rc != VW_EXIT_OK) {
        return rc;
    }

    memset(&j, 0, sizeof(vw_job_t));
    snprintf(j.kind, sizeof(j.kind), "automations.send");
    j.params = params;
    j.total = -1;

    if (vw_opt(opts, "--detach")) {
        rc = vw_ctl_job_detach(ctl, &j, "auto send");
        vw_job_free(&j);
        return rc;
    }

    rc = vw_ctl_job(ctl, &j, 1, "auto send");

    if (rc == VW_EXIT_OK && j.result) {
        vw_ctl_print(j.result, 0);
    }

    vw_job_free(&j);

    return rc;
}


/* pause or resume: the definition with its status changed (auto set) */

static int
vw_auto_status_set(vw_ctl_t *ctl, const char *campaign, const char *status)
{
    int      rc;
    char     what[256];
    json_t  *out, *def;

    snprintf(what, sizeof(what), "auto %s %s",
             strcmp(status, "paused") == 0 ? "pause" : "resume", campaign);

    rc = vw_ctl_op_run(ctl, vw_op_auto_get, what, campaign, NULL, NULL, &out);

    if (rc != VW_EXIT_OK) {
        return rc;
    }

    def = json_deep_copy(json_object_get(out, "definition"));
    json_decref(out);

    if (!json_is_object(def)) {
        json_decref(def);
        vw_ctl_fail("%s: the stored definition is not an object", what);
        return VW_EXIT_FAIL;
    }

    json_object_set_new(def, "status", json_string(status));
    rc = vw_ctl_op_run(ctl, vw_op_auto_set, what, campaign, NULL, def, &out);
    json_decref(def);

    if (rc == VW_EXIT_OK) {
        printf("%s\n", status);
        json_decref(out);
    }

    return rc;
}


int
vw_cmd_auto(vw_ctl_t *ctl, int argc, char **argv)
{
    int      rc;
    char     what[256];
    size_t   i;
    json_t  *out, *item;

    if (argc == 3 && strcmp(argv[0], "set") == 0) {
        return vw_auto_set(ctl, argv[1], argv[2]);
    }

    if (argc == 2 && (strcmp(argv[0], "pause") == 0
                      || strcmp(argv[0], "resume") == 0))
    {
        return vw_auto_status_set(ctl, argv[1], argv[0][0] == 'p'
                                                ? "paused" : "active");
    }

    if (argc >= 1 && (strcmp(argv[0], "next") == 0
                      || strcmp(argv[0], "preview") == 0))
    {
        return vw_ctl_ops_cmd(ctl, "auto", argc, argv);
    }

    if (argc >= 1 && strcmp(argv[0], "send") == 0) {
        return vw_auto_send(ctl, argc - 1, argv + 1);
    }

    /* a run now: --now says so, so that a typo does not send */
    if (argc == 3 && strcmp(argv[0], "run") == 0
        && strcmp(argv[2], "--now") == 0)
    {
        snprintf(what, sizeof(what), "auto run %s", argv[1]);
        rc = vw_ctl_op_run(ctl, vw_op_auto_run, what, argv[1], NULL, NULL,
                           &out);

        if (rc == VW_EXIT_OK) {
            vw_ctl_print(out, 0);
            json_decref(out);
        }

        return rc;
    }

    if (!((argc == 2 && (strcmp(argv[0], "get") == 0
                         || strcmp(argv[0], "del") == 0))
          || (argc == 1 && strcmp(argv[0], "list") == 0)))
    {
        fputs(vw_auto_usage, stderr);
        vw_ctl_op_usage("auto");
        return VW_EXIT_USAGE;
    }

    snprintf(what, sizeof(what), "auto %s%s%s", argv[0], argc == 2 ? " " : "",
             argc == 2 ? argv[1] : "");

    if (strcmp(argv[0], "get") == 0) {
        rc = vw_ctl_op_run(ctl, vw_op_auto_get, what, argv[1], NULL, NULL,
                           &out);

        if (rc == VW_EXIT_OK) {
            vw_ctl_print(out, 0);
            json_decref(out);
        }

        return rc;
    }

    if (strcmp(argv[0], "del") == 0) {
        rc = vw_ctl_op_run(ctl, vw_op_auto_delete, what, argv[1], NULL, NULL,
                           &out);

        if (rc == VW_EXIT_OK) {
            printf("deleted\n");
            json_decref(out);
        }

        return rc;
    }

    rc = vw_ctl_op_run(ctl, vw_op_auto_list, what, NULL, NULL, NULL, &out);

    if (rc == VW_EXIT_OK) {
        json_array_foreach(json_object_get(out, "items"), i, item) {
            printf("%s\n",
                   json_string_value(json_object_get(item, "campaign")));
        }

        json_decref(out);
    }

    return rc;
}


int
vw_cmd_events(vw_ctl_t *ctl, int argc, char **argv)
{
    int          i, rc;
    char        *key;
    vw_args_t    a;
    redisReply  *r;

    if (argc < 3 || strcmp(argv[0], "add") != 0 || argc % 2 != 1) {
        fputs(vw_events_usage, stderr);
        return VW_EXIT_USAGE;
    }

    if (vw_ctl_redis(ctl) == NULL) {
        return VW_EXIT_FAIL;
    }

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(&ctl->cf, "events");
    vw_args_adds(&a, "XADD");
    vw_args_adds(&a, key);
    vw_args_adds(&a, "*");
    vw_args_adds(&a, "type");
    vw_args_adds(&a, argv[1]);
    vw_args_adds(&a, "member");
    vw_args_adds(&a, argv[2]);

    for (i = 3; i < argc; i++) {
        vw_args_adds(&a, argv[i]);
    }

    free(key);

    r = vw_redis_run(ctl->redis, &a, ctl->err, sizeof(ctl->err));
    vw_args_free(&a);
    rc = VW_EXIT_OK;

    if (vw_redis_failed(ctl->redis, r, ctl->err, sizeof(ctl->err))) {
        vw_ctl_fail("events add: %s", ctl->err);
        rc = VW_EXIT_FAIL;

    } else {
        printf("%s\n", r->str);
    }

    if (r) {
        freeReplyObject(r);
    }

    return rc;
}
