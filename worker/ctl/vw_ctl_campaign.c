
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl campaign set|get, key generate, library load|version.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vw_ctl.h"
#include "vw_util.h"


static const char  vw_campaign_usage[] =
    "usage: voucherctl campaign set ID FIELD VALUE [FIELD VALUE]...\n"
    "       voucherctl campaign get ID\n"
    "FIELDs are those of voucher_campaign_set (docs/redis.md: Campaign fields).\n";


const char *
vw_strip_err(const char *s)
{
    return strncmp(s, "ERR ", 4) == 0 ? s + 4 : s;
}


json_t *
vw_pairs_to_json(const redisReply *r)
{
    size_t       i;
    json_t      *o, *v;
    redisReply  *k, *x;

    o = json_object();

    for (i = 0; i + 1 < r->elements; i += 2) {
        k = r->element[i];
        x = r->element[i + 1];

        if (k->type != REDIS_REPLY_STRING) {
            continue;
        }

        if (x->type == REDIS_REPLY_INTEGER) {
            v = json_integer(x->integer);

        } else if (x->type == REDIS_REPLY_STRING
                   || x->type == REDIS_REPLY_STATUS)
        {
            v = json_stringn(x->str, x->len);

        } else {
            v = json_null();
        }

        json_object_set_new(o, k->str, v ? v : json_null());
    }

    return o;
}


int
vw_cmd_campaign(vw_ctl_t *ctl, int argc, char **argv)
{
    int            i, rc;
    char          *key;
    json_t        *o;
    vw_args_t      a;
    redisReply    *r;
    redisContext  *c;

    if (argc < 2 || (strcmp(argv[0], "set") != 0
                     && strcmp(argv[0], "get") != 0))
    {
        fputs(vw_campaign_usage, stderr);
        return VW_EXIT_USAGE;
    }

    if (strcmp(argv[0], "get") == 0 && argc != 2) {
        fputs(vw_campaign_usage, stderr);
        return VW_EXIT_USAGE;
    }

    if (strcmp(argv[0], "set") == 0 && (argc < 4 || argc % 2 != 0)) {
        vw_ctl_fail("campaign set: FIELD VALUE pairs expected\n%s",
                    vw_campaign_usage);
        return VW_EXIT_USAGE;
    }

    c = vw_ctl_redis(ctl);
    if (c == NULL) {
        return VW_EXIT_FAIL;
    }

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(&ctl->cf, "k:%s", argv[1]);

    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, strcmp(argv[0], "set") == 0 ? "voucher_campaign_set"
                                                   : "voucher_campaign_get");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);

    for (i = 2; i < argc; i++) {
        vw_args_adds(&a, argv[i]);
    }

    free(key);

    r = vw_redis_run(c, &a, ctl->err, sizeof(ctl->err));
    vw_args_free(&a);

    rc = VW_EXIT_FAIL;

    if (vw_redis_failed(c, r, ctl->err, sizeof(ctl->err))) {
        vw_ctl_fail("campaign %s %s: %s", argv[0], argv[1],
                    vw_strip_err(ctl->err));
        goto done;
    }

    if (strcmp(argv[0], "set") == 0) {
        printf("OK\n");
        rc = VW_EXIT_OK;
        goto done;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        vw_ctl_fail("campaign get %s: no such campaign", argv[1]);
        goto done;
    }

    o = vw_pairs_to_json(r);
    json_object_set_new(o, "id", json_string(argv[1]));
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(o);

    rc = VW_EXIT_OK;

done:

    if (r) {
        freeReplyObject(r);
    }

    return rc;
}


int
vw_cmd_key(vw_ctl_t *ctl, int argc, char **argv)
{
    const char  *path;

    if (argc < 1 || argc > 2 || strcmp(argv[0], "generate") != 0) {
        fputs("usage: voucherctl key generate [FILE]\n"
              "FILE defaults to key_file of the configuration.\n", stderr);
        return VW_EXIT_USAGE;
    }

    path = argc == 2 ? argv[1] : ctl->cf.key_file;

    if (path == NULL) {
        if (vw_config_load(ctl->config_path, &ctl->cf, ctl->err,
                           sizeof(ctl->err)) != 0)
        {
            vw_ctl_fail("%s", ctl->err);
            return VW_EXIT_FAIL;
        }

        path = ctl->cf.key_file;
    }

    if (path == NULL) {
        vw_ctl_fail("key generate: no FILE and no key_file in the "
                    "configuration");
        return VW_EXIT_USAGE;
    }

    if (voucher_key_generate(path, ctl->err, sizeof(ctl->err)) != 0) {
        vw_ctl_fail("%s", ctl->err);
        return VW_EXIT_FAIL;
    }

    printf("%s\n", path);

    return VW_EXIT_OK;
}


int
vw_cmd_library(vw_ctl_t *ctl, int argc, char **argv)
{
    int            rc;
    redisReply    *r;
    redisContext  *c;

    if (argc != 1 || (strcmp(argv[0], "load") != 0
                      && strcmp(argv[0], "version") != 0))
    {
        fputs("usage: voucherctl library load | version\n", stderr);
        return VW_EXIT_USAGE;
    }

    c = vw_ctl_redis(ctl);
    if (c == NULL) {
        return VW_EXIT_FAIL;
    }

    if (strcmp(argv[0], "load") == 0) {
        if (vw_redis_load_library(c, ctl->err, sizeof(ctl->err)) != 0) {
            vw_ctl_fail("library load: %s", ctl->err);
            return VW_EXIT_FAIL;
        }

        printf("%s\n", vw_redis_library_version());
        return VW_EXIT_OK;
    }

    r = redisCommand(c, "FCALL voucher_version 0");
    rc = VW_EXIT_FAIL;

    if (vw_redis_failed(c, r, ctl->err, sizeof(ctl->err))) {
        vw_ctl_fail("library version: %s", ctl->err);

    } else {
        printf("redis %s\nvoucherctl %s\n", r->str,
               vw_redis_library_version());
        rc = VW_EXIT_OK;
    }

    if (r) {
        freeReplyObject(r);
    }

    return rc;
}
