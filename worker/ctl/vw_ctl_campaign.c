
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
    "       voucherctl campaign get ID\n";


const char *
vw_strip_err(const char *s)
{
    return strncmp(s, "ERR ", 4) == 0 ? s + 4 : s;
}


int
vw_cmd_campaign(vw_ctl_t *ctl, int argc, char **argv)
{
    int      rc;
    char     what[256];
    json_t  *body, *out;

    if (argc >= 1 && strcmp(argv[0], "set") != 0
        && strcmp(argv[0], "get") != 0)
    {
        rc = vw_ctl_ops_cmd(ctl, "campaign", argc, argv);

        if (rc >= 0) {
            return rc;
        }
    }

    if (argc < 2 || (strcmp(argv[0], "set") != 0
                     && strcmp(argv[0], "get") != 0))
    {
        fputs(vw_campaign_usage, stderr);
        vw_ctl_op_usage("campaign");
        fputs("FIELDs are those of voucher_campaign_set (docs/redis.md: "
              "Campaign fields).\n", stderr);
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

    snprintf(what, sizeof(what), "campaign %s %s", argv[0], argv[1]);

    if (strcmp(argv[0], "get") == 0) {
        rc = vw_ctl_op_run(ctl, vw_op_campaign_get, what, argv[1], NULL,
                           NULL, &out);

    } else {
        body = vw_ctl_pairs(argc - 2, argv + 2);
        rc = vw_ctl_op_run(ctl, vw_op_campaign_set, what, argv[1], NULL,
                           body, &out);
        json_decref(body);
    }

    if (rc != VW_EXIT_OK) {
        return rc;
    }

    if (strcmp(argv[0], "set") == 0) {
        printf("OK\n");

    } else {
        vw_ctl_print(out, 0);
    }

    json_decref(out);

    return VW_EXIT_OK;
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


static void
vw_ctl_library_pruned(const char *name)
{
    printf("removed %s\n", name);
}


int
vw_cmd_library(vw_ctl_t *ctl, int argc, char **argv)
{
    int            rc;
    redisReply    *r;
    redisContext  *c;

    int  n;

    if (argc != 1 || (strcmp(argv[0], "load") != 0
                      && strcmp(argv[0], "promote") != 0
                      && strcmp(argv[0], "prune") != 0
                      && strcmp(argv[0], "version") != 0))
    {
        fputs("usage: voucherctl library load | promote | prune | version\n",
              stderr);
        return VW_EXIT_USAGE;
    }

    c = vw_ctl_redis(ctl);
    if (c == NULL) {
        return VW_EXIT_FAIL;
    }

    /* "load" is the older name of "promote" */

    if (strcmp(argv[0], "load") == 0 || strcmp(argv[0], "promote") == 0) {
        if (vw_redis_load_library(c, ctl->err, sizeof(ctl->err)) != 0) {
            vw_ctl_fail("library %s: %s", argv[0], ctl->err);
            return VW_EXIT_FAIL;
        }

        printf("%s\n", vw_redis_library_version());
        return VW_EXIT_OK;
    }

    if (strcmp(argv[0], "prune") == 0) {
        n = vw_redis_prune_libraries(c, vw_ctl_library_pruned, ctl->err,
                                     sizeof(ctl->err));
        if (n < 0) {
            vw_ctl_fail("library prune: %s", ctl->err);
            return VW_EXIT_FAIL;
        }

        printf("%d removed\n", n);
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
