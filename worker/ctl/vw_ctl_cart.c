
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl wallet list|add|remove, qualify: the cart's admin operations
 * (worker/ops/vw_op_cart.c), which the admin API calls too.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vw_ctl.h"
#include "vw_util.h"


static const char  vw_qualify_usage[] =
    "usage: voucherctl qualify BODY   the admin API's POST /v1/qualify body:\n"
    "           JSON, @FILE or - (standard input)\n";


int
vw_cmd_wallet(vw_ctl_t *ctl, int argc, char **argv)
{
    int  rc;

    rc = vw_ctl_ops_cmd(ctl, "wallet", argc, argv);

    if (rc >= 0) {
        return rc;
    }

    fputs("usage:", stderr);
    vw_ctl_op_usage("wallet");

    return VW_EXIT_USAGE;
}


int
vw_cmd_qualify(vw_ctl_t *ctl, int argc, char **argv)
{
    int            rc;
    json_t        *body, *out;
    json_error_t   jerr;

    if (argc != 1) {
        fputs(vw_qualify_usage, stderr);
        return VW_EXIT_USAGE;
    }

    if (strcmp(argv[0], "-") == 0) {
        body = json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr);

    } else if (argv[0][0] == '@') {
        body = json_load_file(argv[0] + 1, JSON_REJECT_DUPLICATES, &jerr);

    } else {
        body = json_loads(argv[0], JSON_REJECT_DUPLICATES, &jerr);
    }

    if (body == NULL || !json_is_object(body)) {
        vw_ctl_fail("qualify: the body is not a JSON object%s%s",
                    body ? "" : ": ", body ? "" : jerr.text);
        json_decref(body);
        return VW_EXIT_USAGE;
    }

    rc = vw_ctl_op_run(ctl, vw_op_qualify, "qualify", NULL, NULL, body, &out);

    if (rc == VW_EXIT_OK) {
        vw_ctl_print(out, 0);
        json_decref(out);
    }

    json_decref(body);

    return rc;
}
