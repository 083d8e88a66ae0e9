
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl's side of the admin operations (worker/ops): the same
 * functions the admin API calls, with the input made from the command
 * line: an ID, FIELD VALUE pairs for the body, --NAME VALUE options for
 * the query.  An answer is printed as JSON; a list as JSON lines, every
 * page of it.  A change is audited as "cli:<user>".
 */


#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "vw_ctl.h"
#include "vw_job.h"
#include "vw_op.h"
#include "vw_util.h"


#define VW_OP_ID      0x01          /* takes an ID */
#define VW_OP_PAIRS   0x02          /* FIELD VALUE... is the body */
#define VW_OP_LIST    0x04          /* a list: every page, JSON lines */
#define VW_OP_AMOUNT  0x08          /* AMOUNT, and options to the body */
#define VW_OP_ARG     0x10          /* one more word: the body's "arg" */
#define VW_OP_BODY    0x20          /* the options go to the body */


typedef struct {
    const char            *group;
    const char            *verb;
    vw_op_pt               fn;
    int                    flags;
    const char            *arg;     /* VW_OP_ARG: the body field it is */
    const char            *opts;    /* "status,kind": --status --kind */
} vw_ctl_op_t;


static const vw_ctl_op_t  vw_ctl_ops[] = {
    { "campaign", "create", vw_op_campaign_create, VW_OP_ARG | VW_OP_PAIRS,
      "id", NULL },
    { "campaign", "update", vw_op_campaign_update, VW_OP_ID | VW_OP_PAIRS,
      NULL, NULL },
    { "campaign", "list", vw_op_campaign_list, VW_OP_LIST, NULL,
      "status,kind,q,limit" },
    { "campaign", "pause", vw_op_campaign_pause, VW_OP_ID, NULL, NULL },
    { "campaign", "resume", vw_op_campaign_resume, VW_OP_ID, NULL, NULL },
    { "campaign", "archive", vw_op_campaign_archive, VW_OP_ID, NULL, NULL },
    { "campaign", "deliveries", vw_op_deliveries, VW_OP_ID | VW_OP_LIST,
      NULL, "limit" },

    { "codes", "get", vw_op_code_get, VW_OP_ID, NULL, "history,scan" },
    { "codes", "create", vw_op_code_create, VW_OP_ARG | VW_OP_PAIRS, "code",
      NULL },
    { "codes", "update", vw_op_code_update, VW_OP_ID | VW_OP_PAIRS, NULL,
      NULL },
    { "codes", "delete", vw_op_code_delete, VW_OP_ID, NULL, NULL },
    { "codes", "disable", vw_op_code_disable, VW_OP_ID, NULL, NULL },
    { "codes", "enable", vw_op_code_enable, VW_OP_ID, NULL, NULL },
    { "codes", "credit", vw_op_code_credit, VW_OP_ID | VW_OP_AMOUNT, NULL,
      "ref,note,expires_at,expires_in_days,zone" },
    { "codes", "debit", vw_op_code_debit, VW_OP_ID | VW_OP_AMOUNT, NULL,
      "ref,note" },
    { "codes", "balance", vw_op_code_balance, VW_OP_ID, NULL, NULL },
    { "codes", "transactions", vw_op_code_transactions,
      VW_OP_ID | VW_OP_LIST, NULL, "limit" },
    { "codes", "search", vw_op_code_search, VW_OP_LIST, NULL,
      "campaign,prefix,customer,limit" },

    { "members", "create", vw_op_member_create, VW_OP_ARG | VW_OP_PAIRS,
      "id", NULL },
    { "members", "update", vw_op_member_update, VW_OP_ID | VW_OP_PAIRS, NULL,
      NULL },
    { "members", "delete", vw_op_member_delete, VW_OP_ID, NULL, NULL },
    { "members", "search", vw_op_member_search, VW_OP_LIST, NULL,
      "q,tier,tag,limit" },
    { "members", "codes", vw_op_member_codes, VW_OP_ID | VW_OP_LIST, NULL,
      "limit" },

    { "segment", "preview", vw_op_segment_preview, VW_OP_ARG, "segment",
      "sample,tz_offset,now" },

    { "auto", "next", vw_op_auto_next, VW_OP_ID, NULL, "count,now" },
    { "auto", "preview", vw_op_auto_preview, VW_OP_ID, NULL,
      "sample,limit" },

    { "audit", "list", vw_op_audit_list, VW_OP_LIST, NULL, "limit" },

    { "job", "list", vw_op_job_list, VW_OP_LIST, NULL, "state,kind,limit" },
    { "job", "get", vw_op_job_get, VW_OP_ID, NULL, NULL },
    { "job", "cancel", vw_op_job_cancel, VW_OP_ID, NULL, NULL },

    { "webhook", "create", vw_op_webhook_create, VW_OP_PAIRS, NULL, NULL },
    { "webhook", "update", vw_op_webhook_update, VW_OP_ID | VW_OP_PAIRS, NULL,
      NULL },
    { "webhook", "list", vw_op_webhook_list, VW_OP_LIST, NULL, NULL },
    { "webhook", "get", vw_op_webhook_get, VW_OP_ID, NULL, NULL },
    { "webhook", "delete", vw_op_webhook_delete, VW_OP_ID, NULL, NULL },
    { "webhook", "dead", vw_op_webhook_dead, VW_OP_ID | VW_OP_LIST, NULL,
      "limit" },

    { "settings", "get", vw_op_settings_get, 0, NULL, NULL },
    { "settings", "set", vw_op_settings_update, VW_OP_PAIRS, NULL, NULL },

    { "loyalty", "get", vw_op_loyalty_get, 0, NULL, NULL },
    { "loyalty", "set", vw_op_loyalty_set, VW_OP_PAIRS, NULL, NULL },
    { "loyalty", "tiers", vw_op_loyalty_set, VW_OP_ARG, "tiers",
      "tier_basis,tier_period,tier_downgrade,tier_grace_days" },
    { "loyalty", "balance", vw_op_loyalty_balance, VW_OP_ID, NULL, NULL },
    { "loyalty", "history", vw_op_loyalty_history, VW_OP_ID | VW_OP_LIST,
      NULL, "limit" },
    { "loyalty", "adjust", vw_op_loyalty_adjust,
      VW_OP_ID | VW_OP_ARG | VW_OP_BODY, "points", "reason,key" },
    { "loyalty", "rewards", vw_op_reward_list, VW_OP_LIST, NULL, "limit" },
    { "loyalty", "reward", vw_op_reward_get, VW_OP_ID, NULL, NULL },
    { "loyalty", "reward-set", vw_op_reward_set, VW_OP_ID | VW_OP_PAIRS,
      NULL, NULL },
    { "loyalty", "reward-fill", vw_op_reward_fill, VW_OP_ID | VW_OP_BODY,
      NULL, "count,prefix,length,mac_length" },
    { "loyalty", "claim", vw_op_reward_claim,
      VW_OP_ID | VW_OP_ARG | VW_OP_BODY, "reward", "key" },
    { "loyalty", "referral-code", vw_op_referral_code, VW_OP_ID, NULL,
      NULL },
    { "loyalty", "refer", vw_op_referral_pair, VW_OP_ARG, "code",
      "member,phone,email" },
    { "loyalty", "referrals", vw_op_referral_report, VW_OP_LIST, NULL,
      "limit" },
    { "loyalty", "report", vw_op_loyalty_report, 0, NULL, NULL },

    /* the cart (worker/ops/vw_op_cart.c; qualify: vw_ctl_cart.c) */
    { "wallet", "list", vw_op_wallet_list, VW_OP_ID | VW_OP_LIST, NULL,
      "limit" },
    { "wallet", "add", vw_op_wallet_add, VW_OP_ID | VW_OP_ARG, "code",
      NULL },
    { "wallet", "remove", vw_op_wallet_remove, VW_OP_ID | VW_OP_ARG, "code",
      NULL },

    { NULL, NULL, NULL, 0, NULL, NULL }
};


static const char *
vw_ctl_who(void)
{
    const char     *user;
    struct passwd  *pw;
    static char     who[80];

    if (who[0] == '\0') {
        pw = getpwuid(getuid());
        user = pw ? pw->pw_name : getenv("USER");
        snprintf(who, sizeof(who), "cli:%s", user ? user : "unknown");
    }

    return who;
}


int
vw_ctl_op_init(vw_ctl_t *ctl, vw_op_t *op)
{
    memset(op, 0, sizeof(vw_op_t));

    op->cf = &ctl->cf;
    op->who = vw_ctl_who();
    op->redis = vw_ctl_redis(ctl);

    if (op->redis == NULL) {
        return -1;
    }

    if (ctl->cf.key_file && vw_ctl_key(ctl) == 0) {
        op->key = ctl->key;
    }

    return 0;
}


int
vw_ctl_op_run(vw_ctl_t *ctl, vw_op_pt fn, const char *what, const char *id,
    json_t *query, json_t *body, json_t **out)
{
    int          status;
    vw_op_t      op;
    vw_op_in_t   in;
    vw_operr_t   e;

    memset(&in, 0, sizeof(vw_op_in_t));
    memset(&e, 0, sizeof(vw_operr_t));

    if (vw_ctl_op_init(ctl, &op) != 0) {
        return VW_EXIT_FAIL;
    }

    in.id = id;
    in.query = query ? query : json_object();
    in.body = body ? body : json_object();
    in.strict = 0;

    *out = NULL;
    status = fn(&op, &in, out, &e);

    if (query == NULL) {
        json_decref(in.query);
    }

    if (body == NULL) {
        json_decref(in.body);
    }

    if (status < 0) {
        ctl->status = e.status;
        snprintf(ctl->reason, sizeof(ctl->reason), "%s", e.reason);
        vw_ctl_fail("%s: %s %s", what, e.reason, e.message);
        return VW_EXIT_FAIL;
    }

    return VW_EXIT_OK;
}


void
vw_ctl_print(json_t *o, int compact)
{
    json_dumpf(o, stdout, compact ? JSON_COMPACT | JSON_PRESERVE_ORDER
                                  : JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
}


json_t *
vw_ctl_pairs(int argc, char **argv)
{
    int      i;
    json_t  *o;

    o = json_object();

    for (i = 0; i + 1 < argc; i += 2) {
        json_object_set_new(o, argv[i], json_string(argv[i + 1]));
    }

    return o;
}


void
vw_ctl_op_usage(const char *group)
{
    const char         *p;
    const vw_ctl_op_t  *d;

    for (d = vw_ctl_ops; d->group; d++) {
        if (strcmp(d->group, group) != 0) {
            continue;
        }

        fprintf(stderr, "       voucherctl %s %s%s%s%s", d->group, d->verb,
                (d->flags & VW_OP_ID) ? " ID" : "",
                (d->flags & VW_OP_ARG) ? " " : "",
                (d->flags & VW_OP_ARG) ? d->arg : "");

        if (d->flags & VW_OP_AMOUNT) {
            fputs(" AMOUNT", stderr);
        }

        if (d->flags & VW_OP_PAIRS) {
            fputs(" FIELD VALUE...", stderr);
        }

        for (p = d->opts; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")]
                                                         == ','))
        {
            fprintf(stderr, " [--%.*s V]", (int) strcspn(p, ","), p);
        }

        fputc('\n', stderr);
    }
}


/* --NAME VALUE options of d into obj; the positionals into pos */

static int
vw_ctl_op_args(const vw_ctl_op_t *d, int argc, char **argv, json_t *obj,
    char **pos, int *npos)
{
    int          i;
    size_t       n;
    const char  *p, *name;

    *npos = 0;

    for (i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
            pos[(*npos)++] = argv[i];

            if (*npos == 64) {
                return -1;
            }

            continue;
        }

        name = argv[i] + 2;

        for (p = d->opts; p && *p; p += n + (p[n] == ',')) {
            n = strcspn(p, ",");

            if (strlen(name) == n && strncmp(p, name, n) == 0) {
                break;
            }
        }

        if (p == NULL || *p == '\0' || i + 1 == argc) {
            vw_ctl_fail("%s %s: unknown option or no value: %s", d->group,
                        d->verb, argv[i]);
            return -1;
        }

        json_object_set_new(obj, name, json_string(argv[++i]));
    }

    return 0;
}


int
vw_ctl_ops_cmd(vw_ctl_t *ctl, const char *group, int argc, char **argv)
{
    int                 npos, rc, i, want;
    char               *pos[64], what[256];
    json_t             *query, *body, *out, *next, *item;
    size_t              k;
    const char         *id;
    const vw_ctl_op_t  *d;

    for (d = vw_ctl_ops; d->group; d++) {
        if (strcmp(d->group, group) == 0 && argc >= 1
            && strcmp(d->verb, argv[0]) == 0)
        {
            break;
        }
    }

    if (d->group == NULL) {
        return -1;
    }

    query = json_object();
    body = json_object();
    rc = VW_EXIT_USAGE;

    if (vw_ctl_op_args(d, argc - 1, argv + 1,
                       (d->flags & (VW_OP_AMOUNT | VW_OP_BODY)) ? body
                                                               : query,
                       pos, &npos)
        != 0)
    {
        goto usage;
    }

    want = ((d->flags & VW_OP_ID) != 0) + ((d->flags & VW_OP_AMOUNT) != 0)
           + ((d->flags & VW_OP_ARG) != 0);

    if ((d->flags & VW_OP_PAIRS) ? (npos < want || (npos - want) % 2 != 0)
                                 : npos != want)
    {
        goto usage;
    }

    i = 0;
    id = (d->flags & VW_OP_ID) ? pos[i++] : NULL;

    if (d->flags & VW_OP_AMOUNT) {
        json_object_set_new(body, "amount", json_string(pos[i++]));
    }

    if (d->flags & VW_OP_ARG) {
        json_object_set_new(body, d->arg, json_string(pos[i++]));

        /* the options of a body-only operation go to the body */
        json_object_update(body, query);
        json_object_clear(query);
    }

    if (d->flags & VW_OP_PAIRS) {
        out = vw_ctl_pairs(npos - i, pos + i);
        json_object_update(body, out);
        json_decref(out);
    }

    snprintf(what, sizeof(what), "%s %s%s%s", d->group, d->verb,
             id ? " " : "", id ? id : "");

    for ( ;; ) {
        rc = vw_ctl_op_run(ctl, d->fn, what, id, query, body, &out);

        if (rc != VW_EXIT_OK) {
            break;
        }

        if (!(d->flags & VW_OP_LIST)) {
            vw_ctl_print(out, 0);
            json_decref(out);
            break;
        }

        json_array_foreach(json_object_get(out, "items"), k, item) {
            vw_ctl_print(item, 1);
        }

        next = json_object_get(out, "next_cursor");

        if (!json_is_string(next)) {
            json_decref(out);
            break;
        }

        json_object_set(query, "cursor", next);
        json_decref(out);
    }

    json_decref(query);
    json_decref(body);

    return rc;

usage:

    json_decref(query);
    json_decref(body);
    fprintf(stderr, "usage:\n");
    vw_ctl_op_usage(group);

    return VW_EXIT_USAGE;
}


int
vw_cmd_audit(vw_ctl_t *ctl, int argc, char **argv)
{
    int  rc;

    rc = vw_ctl_ops_cmd(ctl, "audit", argc, argv);

    if (rc < 0) {
        fprintf(stderr, "usage:\n");
        vw_ctl_op_usage("audit");
        return VW_EXIT_USAGE;
    }

    return rc;
}


int
vw_cmd_webhook(vw_ctl_t *ctl, int argc, char **argv)
{
    int  rc;

    rc = vw_ctl_ops_cmd(ctl, "webhook", argc, argv);

    if (rc < 0) {
        fprintf(stderr, "usage:\n");
        vw_ctl_op_usage("webhook");
        return VW_EXIT_USAGE;
    }

    return rc;
}


int
vw_cmd_settings(vw_ctl_t *ctl, int argc, char **argv)
{
    int  rc;

    rc = vw_ctl_ops_cmd(ctl, "settings", argc, argv);

    if (rc < 0) {
        fprintf(stderr, "usage:\n");
        vw_ctl_op_usage("settings");
        return VW_EXIT_USAGE;
    }

    return rc;
}


int
vw_cmd_loyalty(vw_ctl_t *ctl, int argc, char **argv)
{
    int  rc;

    rc = vw_ctl_ops_cmd(ctl, "loyalty", argc, argv);

    if (rc < 0) {
        fprintf(stderr, "usage:\n");
        vw_ctl_op_usage("loyalty");
        return VW_EXIT_USAGE;
    }

    return rc;
}
