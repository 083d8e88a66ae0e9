
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl: the administration CLI of ngx_voucher.  The commands are in
 * vw_ctl_*.c; this file reads the global options and dispatches.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "vw_ctl.h"
#include "vw_log.h"
#include "vw_util.h"


static const char  vw_usage[] =
    "usage: voucherctl [-c CONFIG] [--store NAME] COMMAND ...\n"
    "\n"
    VW_CONFIG_USAGE
    "  --store NAME        the store of a configuration with \"stores\"\n"
    "\n"
    "commands:\n"
    "  campaign set ID FIELD VALUE...      create or change a campaign\n"
    "  campaign get ID                     show a campaign (JSON)\n"
    "  campaign create|update|list|pause|resume|archive|deliveries ...\n"
    "  codes get|create|update|delete|disable|enable|credit|debit|search ...\n"
    "  codes balance|transactions CODE     a gift card's lots and ledger\n"
    "  members create|update|delete|search|codes ...\n"
    "  segment preview SEGMENT [--sample N] [--tz_offset TZ]\n"
    "  auto next CAMPAIGN [--count N]\n"
    "  auto run CAMPAIGN --now             a run now, sent by voucherd\n"
    "  auto preview CAMPAIGN [--sample N]  who a run now goes to, messages\n"
    "  audit list [--limit N]              the admin audit stream\n"
    "  settings get | set FIELD VALUE...   the namespace's settings\n"
    "  loyalty get | set FIELD VALUE... | tiers TIERS   the programme\n"
    "  loyalty balance|history ID | adjust ID POINTS --reason R [--key K]\n"
    "  loyalty rewards | reward ID | reward-set ID FIELD VALUE...\n"
    "        | reward-fill ID --count N [--prefix P] | claim ID REWARD --key K\n"
    "  loyalty referral-code ID | refer CODE --member M [--phone P]\n"
    "        [--email E] | referrals   referrals and their report\n"
    "  loyalty report                      points earned, spent, expired;\n"
    "        members per tier\n"
    "  codes issue CAMPAIGN --count N [--prefix P] [--length L]\n"
    "        [--mac-length M] [--charset CHARS] [--suffix S] [--pattern P]\n"
    "        [--max-uses N] [--output FILE] [--quiet] [--detach]\n"
    "  codes import FILE.csv [--campaign C] [--match REGEX] [--dry-run]\n"
    "        [--detach]   (REGEX matches the normalized code: SONGKRAN2027)\n"
    "  codes export CAMPAIGN [--format csv|jsonl] [--pattern P] [--detach]\n"
    "  codes check CODE [--prefix P] [--mac-length M] [--charset CHARS]\n"
    "        [--suffix S]\n"
    "  series issue SERIES CAMPAIGN --size N [--prefix P] [--length L]\n"
    "        [--mac-length M] [--charset CHARS] [--suffix S]\n"
    "  series export SERIES [--from N] [--count N] [--output FILE]\n"
    "  series show SERIES   a serial series: codes at a bit each\n"
    "  members import FILE [--format csv|jsonl] [--dry-run] [--detach]\n"
    "  job list|get|cancel|output|wait ...  jobs (long work)\n"
    "  webhook create|update|list|get|delete|dead ...  outgoing webhooks\n"
    "  members get ID\n"
    "  segment show SEGMENT [--format ids|csv|json] [--now T]\n"
    "  report CAMPAIGN [--format table|csv|json] [--from DAY] [--to DAY]\n"
    "  liability [--campaign C] [--format table|csv|json] [--locale L]\n"
    "        what the gift cards still hold: by campaign, age, expiry\n"
    "  auto set CAMPAIGN FILE.json | get CAMPAIGN | list | del CAMPAIGN\n"
    "  auto pause|resume CAMPAIGN           the automation's status\n"
    "  events add TYPE MEMBER [FIELD VALUE]...\n"
    "  qr CODE [--format svg|png] [--scale N] [--margin N] [--level L|M|Q|H]\n"
    "        [--output FILE]                a code as a QR picture\n"
    "  wallet list|add|remove MEMBER [CODE]  a member's wallet\n"
    "  qualify BODY                        which codes fit an order (JSON,\n"
    "                                      @FILE or -), best first\n"
    "  key generate [FILE]                 a new MAC key (mode 0600)\n"
    "  library promote | prune | version   the Redis function library\n";


typedef struct {
    const char   *name;
    vw_cmd_pt     handler;
    int           config;          /* needs the configuration file */
} vw_command_t;


static const vw_command_t  vw_commands[] = {
    { "campaign", vw_cmd_campaign, 1 },
    { "codes", vw_cmd_codes, 1 },
    { "series", vw_cmd_series, 1 },
    { "members", vw_cmd_members, 1 },
    { "segment", vw_cmd_segment, 1 },
    { "report", vw_cmd_report, 1 },
    { "liability", vw_cmd_liability, 1 },
    { "auto", vw_cmd_auto, 1 },
    { "events", vw_cmd_events, 1 },
    { "audit", vw_cmd_audit, 1 },
    { "settings", vw_cmd_settings, 1 },
    { "job", vw_cmd_job, 1 },
    { "webhook", vw_cmd_webhook, 1 },
    { "loyalty", vw_cmd_loyalty, 1 },
    { "wallet", vw_cmd_wallet, 1 },
    { "qualify", vw_cmd_qualify, 1 },
    { "key", vw_cmd_key, 0 },
    { "qr", vw_cmd_qr, 0 },
    { "library", vw_cmd_library, 1 },
    { NULL, NULL, 0 }
};


void
vw_ctl_fail(const char *fmt, ...)
{
    va_list  args;

    fputs("voucherctl: ", stderr);

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fputc('\n', stderr);
}


int
vw_opts(int argc, char **argv, vw_opt_t *opts, char **pos, int maxpos,
    const char *usage)
{
    int          i, n;
    size_t       len;
    vw_opt_t    *o;
    const char  *a, *eq;

    n = 0;

    for (i = 0; i < argc; i++) {
        a = argv[i];

        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++) {
                if (n == maxpos) {
                    goto extra;
                }

                pos[n++] = argv[i];
            }

            break;
        }

        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (n == maxpos) {
                goto extra;
            }

            pos[n++] = argv[i];
            continue;
        }

        eq = strchr(a, '=');
        len = eq ? (size_t) (eq - a) : strlen(a);

        for (o = opts; o && o->name; o++) {
            if (strlen(o->name) == len && strncmp(o->name, a, len) == 0) {
                break;
            }
        }

        if (o == NULL || o->name == NULL) {
            vw_ctl_fail("unknown option %.*s\n%s", (int) len, a, usage);
            return -1;
        }

        if (!o->arg) {
            if (eq) {
                vw_ctl_fail("option %s takes no value", o->name);
                return -1;
            }

            o->given = 1;
            continue;
        }

        if (eq) {
            o->value = eq + 1;

        } else if (i + 1 < argc) {
            o->value = argv[++i];

        } else {
            vw_ctl_fail("option %s needs a value", o->name);
            return -1;
        }

        o->given = 1;
    }

    return n;

extra:

    vw_ctl_fail("too many arguments\n%s", usage);

    return -1;
}


const char *
vw_opt(vw_opt_t *opts, const char *name)
{
    for ( /* void */ ; opts->name; opts++) {
        if (strcmp(opts->name, name) == 0) {
            return opts->arg ? opts->value : (opts->given ? "" : NULL);
        }
    }

    return NULL;
}


int
vw_opt_int(vw_opt_t *opts, const char *name, int64_t min, int64_t max,
    int64_t def, int64_t *out)
{
    const char  *v;

    v = vw_opt(opts, name);

    if (v == NULL) {
        *out = def;
        return 0;
    }

    if (vw_parse_int(v, min, max, out) != 0) {
        vw_ctl_fail("%s: expected an integer %lld..%lld", name,
                    (long long) min, (long long) max);
        return -1;
    }

    return 0;
}


redisContext *
vw_ctl_redis(vw_ctl_t *ctl)
{
    if (ctl->redis == NULL) {
        ctl->redis = vw_redis_connect(&ctl->cf, ctl->err, sizeof(ctl->err));

        if (ctl->redis == NULL) {
            vw_ctl_fail("%s", ctl->err);
        }
    }

    return ctl->redis;
}


redisContext *
vw_ctl_redis_read(vw_ctl_t *ctl)
{
    if (ctl->redis == NULL) {
        ctl->redis = vw_redis_connect_read(&ctl->cf, ctl->err,
                                           sizeof(ctl->err));

        if (ctl->redis == NULL) {
            vw_ctl_fail("%s", ctl->err);
        }
    }

    return ctl->redis;
}


int
vw_ctl_key(vw_ctl_t *ctl)
{
    if (ctl->have_key) {
        return 0;
    }

    if (ctl->cf.key_file == NULL) {
        vw_ctl_fail("config \"%s\": key_file: required to issue or check "
                    "codes", ctl->cf.path);
        return -1;
    }

    if (voucher_key_load(ctl->cf.key_file, ctl->key, ctl->err,
                         sizeof(ctl->err)) != 0)
    {
        vw_ctl_fail("%s", ctl->err);
        return -1;
    }

    ctl->have_key = 1;

    return 0;
}


int
main(int argc, char **argv)
{
    int                  i, rc;
    const char          *path;
    vw_ctl_t             ctl;
    const vw_command_t  *cmd;

    memset(&ctl, 0, sizeof(vw_ctl_t));

    if (sodium_init() < 0) {
        vw_ctl_fail("libsodium failed to initialize");
        return VW_EXIT_FAIL;
    }

    path = getenv("VOUCHER_CONFIG");

    for (i = 1; i < argc; i++) {
        if (vw_config_arg(argc, argv, &i, &path)) {
            continue;
        }

        if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
            vw_config_select(argv[++i]);
            continue;
        }

        if (strncmp(argv[i], "--store=", 8) == 0) {
            vw_config_select(argv[i] + 8);
            continue;
        }

        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(vw_usage, stdout);
            return VW_EXIT_OK;

        } else if (argv[i][0] == '-') {
            vw_ctl_fail("unknown option %s\n%s", argv[i], vw_usage);
            return VW_EXIT_USAGE;

        } else {
            break;
        }
    }

    if (i == argc) {
        fputs(vw_usage, stderr);
        return VW_EXIT_USAGE;
    }

    for (cmd = vw_commands; cmd->name; cmd++) {
        if (strcmp(cmd->name, argv[i]) == 0) {
            break;
        }
    }

    if (cmd->name == NULL) {
        vw_ctl_fail("unknown command \"%s\"\n%s", argv[i], vw_usage);
        return VW_EXIT_USAGE;
    }

    ctl.config_path = path ? path : VW_CONFIG_DEFAULT;

    /* voucherctl logs what it does only to stderr, at warn by default */
    vw_log_open(NULL, VW_LOG_WARN, "voucherctl", ctl.err, sizeof(ctl.err));

    if (cmd->config || path != NULL) {
        if (vw_config_load(ctl.config_path, &ctl.cf, ctl.err,
                           sizeof(ctl.err)) != 0)
        {
            vw_ctl_fail("%s", ctl.err);
            return VW_EXIT_FAIL;
        }
    }

    rc = cmd->handler(&ctl, argc - i - 1, argv + i + 1);

    if (ctl.redis) {
        redisFree(ctl.redis);
    }

    sodium_memzero(ctl.key, sizeof(ctl.key));
    vw_config_free(&ctl.cf);

    return rc;
}
