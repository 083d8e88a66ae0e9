
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
#include "vw_util.h"


static const char  vw_auto_usage[] =
    "usage: voucherctl auto set CAMPAIGN FILE.json   (FILE - : stdin)\n"
    "       voucherctl auto get CAMPAIGN\n"
    "       voucherctl auto list\n"
    "       voucherctl auto del CAMPAIGN\n";

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
    int          rc;
    char        *json, *key, *compact;
    json_t      *j;
    vw_auto_t    a;
    vw_args_t    args;
    redisReply  *r;

    json = vw_read_input(path);

    if (json == NULL) {
        vw_ctl_fail("auto set: %s: %s", path, strerror(errno));
        return VW_EXIT_FAIL;
    }

    /* every part checked here, against this configuration's channels */
    if (vw_auto_parse(campaign, json, &ctl->cf, &a, ctl->err,
                      sizeof(ctl->err)) != 0)
    {
        vw_ctl_fail("%s", ctl->err);
        free(json);
        return VW_EXIT_FAIL;
    }

    vw_auto_free(&a);

    j = json_loads(json, 0, NULL);
    compact = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    free(json);

    if (vw_ctl_redis(ctl) == NULL) {
        free(compact);
        return VW_EXIT_FAIL;
    }

    memset(&args, 0, sizeof(vw_args_t));
    key = vw_key(&ctl->cf, "a:%s", campaign);
    vw_args_adds(&args, "FCALL");
    vw_args_adds(&args, "voucher_auto_set");
    vw_args_adds(&args, "1");
    vw_args_adds(&args, key);
    vw_args_adds(&args, compact);
    vw_args_addi(&args, vw_now());
    free(key);
    free(compact);

    r = vw_redis_run(ctl->redis, &args, ctl->err, sizeof(ctl->err));
    vw_args_free(&args);
    rc = VW_EXIT_OK;

    if (vw_redis_failed(ctl->redis, r, ctl->err, sizeof(ctl->err))) {
        vw_ctl_fail("auto set %s: %s", campaign, vw_strip_err(ctl->err));
        rc = VW_EXIT_FAIL;

    } else {
        printf("OK\n");
    }

    if (r) {
        freeReplyObject(r);
    }

    return rc;
}


static int
vw_auto_get(vw_ctl_t *ctl, const char *campaign)
{
    char        *key;
    json_t      *o, *def;
    redisReply  *r;

    key = vw_key(&ctl->cf, "a:%s", campaign);
    r = redisCommand(ctl->redis, "HMGET %s def since last", key);
    free(key);

    if (vw_redis_failed(ctl->redis, r, ctl->err, sizeof(ctl->err))) {
        vw_ctl_fail("auto get: %s", ctl->err);

        if (r) {
            freeReplyObject(r);
        }

        return VW_EXIT_FAIL;
    }

    if (r->element[0]->type != REDIS_REPLY_STRING) {
        vw_ctl_fail("auto get: campaign \"%s\" has no automation", campaign);
        freeReplyObject(r);
        return VW_EXIT_FAIL;
    }

    def = json_loads(r->element[0]->str, 0, NULL);
    o = json_object();
    json_object_set_new(o, "campaign", json_string(campaign));
    json_object_set_new(o, "definition", def ? def : json_null());

    if (r->element[1]->type == REDIS_REPLY_STRING) {
        json_object_set_new(o, "since",
                            json_integer(atoll(r->element[1]->str)));
    }

    if (r->element[2]->type == REDIS_REPLY_STRING) {
        json_object_set_new(o, "last_run",
                            json_integer(atoll(r->element[2]->str)));
    }

    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(o);
    freeReplyObject(r);

    return VW_EXIT_OK;
}


int
vw_cmd_auto(vw_ctl_t *ctl, int argc, char **argv)
{
    size_t       i;
    char        *key;
    redisReply  *r;

    if (argc == 3 && strcmp(argv[0], "set") == 0) {
        return vw_auto_set(ctl, argv[1], argv[2]);
    }

    if (!((argc == 2 && (strcmp(argv[0], "get") == 0
                         || strcmp(argv[0], "del") == 0))
          || (argc == 1 && strcmp(argv[0], "list") == 0)))
    {
        fputs(vw_auto_usage, stderr);
        return VW_EXIT_USAGE;
    }

    if (vw_ctl_redis(ctl) == NULL) {
        return VW_EXIT_FAIL;
    }

    if (strcmp(argv[0], "get") == 0) {
        return vw_auto_get(ctl, argv[1]);
    }

    if (strcmp(argv[0], "del") == 0) {
        key = vw_key(&ctl->cf, "a:%s", argv[1]);
        r = redisCommand(ctl->redis, "FCALL voucher_auto_del 1 %s", key);
        free(key);

        if (vw_redis_failed(ctl->redis, r, ctl->err, sizeof(ctl->err))) {
            vw_ctl_fail("auto del: %s", ctl->err);

            if (r) {
                freeReplyObject(r);
            }

            return VW_EXIT_FAIL;
        }

        printf("%s\n", r->integer ? "deleted" : "no automation");
        freeReplyObject(r);

        return VW_EXIT_OK;
    }

    key = vw_key(&ctl->cf, "autos");
    r = redisCommand(ctl->redis, "SORT %s ALPHA", key);
    free(key);

    if (vw_redis_failed(ctl->redis, r, ctl->err, sizeof(ctl->err))) {
        vw_ctl_fail("auto list: %s", ctl->err);

        if (r) {
            freeReplyObject(r);
        }

        return VW_EXIT_FAIL;
    }

    for (i = 0; i < r->elements; i++) {
        printf("%s\n", r->element[i]->str);
    }

    freeReplyObject(r);

    return VW_EXIT_OK;
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
