
/*
 * Copyright (C) ngx_voucher authors
 *
 * The module's commands, and what they share: the hash tag of the key,
 * Redis' clock, handing a call to the library, keyspace events.
 *
 * A command answers itself only where it is sure to answer as the library
 * would.  Anything else (a key of the wrong type, a stored value the
 * library would fail on, a record this module does not read) is handed to
 * the library whole, before anything is written: "FCALL voucher_<name>_<
 * version> 1 <key> <args>" (the function of the library this module was
 * built from, VN_FN) from inside the command, in the same atomic call, and
 * its answer is passed on as it is.
 *
 * Every RedisModule_Call() here has "!": without it Redis propagates
 * nothing the called command does, not a function's writes, not the DEL of
 * a key it found expired.  FCALL itself is never propagated, its effects
 * are, as for any FCALL.
 */


#include <sys/time.h>

#include "voucher.h"
#include "voucher_version.h"


vn_consts_t  vn_c;


typedef struct {
    const char          *name;       /* the command */
    const char          *fn;         /* the library's function */
    RedisModuleCmdFunc   handler;
    const char          *flags;
} vn_command_t;


static int vn_cmd_version(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc);


static vn_command_t  vn_commands[] = {
    { "voucher.validate", "voucher_validate", vn_cmd_validate,
      "readonly deny-script" },
    { "voucher.validate_limited", "voucher_validate_limited",
      vn_cmd_validate_limited, "write deny-oom deny-script" },
    { "voucher.guess", "voucher_guess", vn_cmd_guess,
      "write deny-oom deny-script" },
    { "voucher.redeem", "voucher_redeem", vn_cmd_redeem,
      "write deny-oom deny-script" },
    { "voucher.reserve", "voucher_reserve", vn_cmd_reserve,
      "write deny-oom deny-script" },
    { "voucher.confirm", "voucher_confirm", vn_cmd_confirm,
      "write deny-oom deny-script" },
    { "voucher.release", "voucher_release", vn_cmd_release,
      "write deny-oom deny-script" },
    { "voucher.rollback", "voucher_rollback", vn_cmd_rollback,
      "write deny-oom deny-script" },
    { NULL, NULL, NULL, NULL }
};


/* a command's call on its arguments, the clock not read yet */

void
vn_call_init(vn_call_t *call, RedisModuleCtx *ctx, vn_rstr_t **argv,
    int argc, const char *fn)
{
    RedisModule_AutoMemory(ctx);

    memset(call, 0, sizeof(vn_call_t));
    call->ctx = ctx;
    call->argv = argv;
    call->argc = argc;
    call->fn = fn;
    call->now_us = -1;
}


int
vn_delegate(vn_call_t *call)
{
    RedisModuleCallReply  *r;

    if (call->argc >= 2) {
        r = RedisModule_Call(call->ctx, "FCALL", "!ccv", call->fn, "1",
                             call->argv + 1, (size_t) (call->argc - 1));

    } else {
        r = RedisModule_Call(call->ctx, "FCALL", "!cc", call->fn, "0");
    }

    if (r == NULL) {
        return RedisModule_ReplyWithError(call->ctx,
                                          "ERR voucher: FCALL failed");
    }

    return RedisModule_ReplyWithCallReply(call->ctx, r);
}


/*
 * The hash tag of argv[1], as '^({[^}]+})' + suffix + '$' matches it;
 * with code set, the suffix is followed by the code (at least one byte).
 */

int
vn_tag_of(vn_call_t *call, const char *suffix, int code)
{
    size_t       len, slen, tl;
    const char  *k, *close;

    if (call->argc < 2) {
        return VN_ERROR;
    }

    k = RedisModule_StringPtrLen(call->argv[1], &len);

    if (len < 3 || k[0] != '{') {
        return VN_ERROR;
    }

    close = memchr(k + 1, '}', len - 1);
    if (close == NULL || close == k + 1) {
        return VN_ERROR;
    }

    tl = close - k + 1;
    slen = strlen(suffix);

    if (len - tl < slen || memcmp(k + tl, suffix, slen) != 0) {
        return VN_ERROR;
    }

    if (code ? (len - tl - slen == 0) : (len - tl - slen != 0)) {
        return VN_ERROR;
    }

    call->tag.data = k;
    call->tag.len = tl;
    call->code.data = k + tl + slen;
    call->code.len = len - tl - slen;

    return VN_OK;
}


/* TIME, read once a call */

long long
vn_now_us(vn_call_t *call)
{
    struct timeval  tv;

    if (call->now_us < 0) {
        gettimeofday(&tv, NULL);
        call->now_us = (long long) tv.tv_sec * 1000000 + tv.tv_usec;
    }

    return call->now_us;
}


long long
vn_now_ms(vn_call_t *call)
{
    return vn_now_us(call) / 1000;
}


double
vn_now_s(vn_call_t *call)
{
    return (double) (vn_now_us(call) / 1000000);
}


void
vn_touched(vn_call_t *call, int type, const char *event, vn_rstr_t *key)
{
    RedisModule_SignalModifiedKey(call->ctx, key);
    RedisModule_NotifyKeyspaceEvent(call->ctx, type, event, key);
}


/* the key is empty or of this type */

int
vn_check_type(RedisModuleKey *key, int type)
{
    int  t;

    t = RedisModule_KeyType(key);

    return t == REDISMODULE_KEYTYPE_EMPTY || t == type;
}


/*
 * VOUCHER.VERSION: the version of the library this module answers like,
 * and the library functions it answers for
 */

static int
vn_cmd_version(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc)
{
    long           n;
    vn_command_t  *c;

    RedisModule_ReplyWithArray(ctx, REDISMODULE_POSTPONED_ARRAY_LEN);
    RedisModule_ReplyWithStringBuffer(ctx, VN_LIB_VERSION,
                                      sizeof(VN_LIB_VERSION) - 1);
    n = 1;

    for (c = vn_commands; c->name; c++) {
        RedisModule_ReplyWithCString(ctx, c->fn);
        n++;
    }

    RedisModule_ReplySetArrayLength(ctx, n);

    return REDISMODULE_OK;
}


static vn_rstr_t *
vn_const(const char *s)
{
    return RedisModule_CreateString(NULL, s, strlen(s));
}


__attribute__((visibility("default"))) int
RedisModule_OnLoad(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc)
{
    int            i;
    vn_command_t  *c;

    static const char  *code_f[] = { "k", "s", "m", "u", "c", "b", "f",
                                     "t" };
    static const char  *camp_f[] = {
        "status", "kind", "value", "cap", "min_amount", "max_redemptions",
        "max_discount", "per_customer", "per_customer_code",
        "code_max_uses", "currency", "starts_at", "ends_at", "days",
        "hours", "tz_offset", "include_skus", "exclude_skus",
        "include_categories", "exclude_categories", "free_sku", "tiers",
        "rules", "redeemed", "discount_given" };
    static const char  *lp_f[] = { "status", "point_value", "tiers" };
    static const char  *log_f[] = { "type", "code", "campaign", "customer",
                                    "order_id", "amount", "currency",
                                    "discount", "balance", "idem", "ref" };
    static const char  *rb_f[] = { "amt", "done", "why" };

    if (RedisModule_Init(ctx, "voucher", 1, REDISMODULE_APIVER_1)
        == REDISMODULE_ERR)
    {
        return REDISMODULE_ERR;
    }

    RedisModule_SetModuleOptions(ctx,
                             REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED);

    for (i = 0; i < 8; i++) {
        vn_c.code_f[i] = vn_const(code_f[i]);
    }

    for (i = 0; i < VN_CAMP_F; i++) {
        vn_c.camp_f[i] = vn_const(camp_f[i]);
    }

    for (i = 0; i < VN_LP_F; i++) {
        vn_c.lp_f[i] = vn_const(lp_f[i]);
    }

    for (i = 0; i < 11; i++) {
        vn_c.log_f[i] = vn_const(log_f[i]);
    }

    for (i = 0; i < 3; i++) {
        vn_c.rb_f[i] = vn_const(rb_f[i]);
    }

    vn_c.rev = vn_const("rev");
    vn_c.stream_maxlen = vn_const("stream_maxlen");
    vn_c.idem_ttl = vn_const("idem_ttl");
    vn_c.empty = vn_const("");
    vn_c.redeem = vn_const("redeem");
    vn_c.hold = vn_const("hold");
    vn_c.confirm = vn_const("confirm");
    vn_c.release = vn_const("release");
    vn_c.rollback = vn_const("rollback");
    vn_c.lm_tier = vn_const("tier");
    vn_c.lm_act = vn_const("act");

    vn_eval_init();

    for (c = vn_commands; c->name; c++) {
        if (RedisModule_CreateCommand(ctx, c->name, c->handler, c->flags,
                                      1, 1, 1)
            == REDISMODULE_ERR)
        {
            return REDISMODULE_ERR;
        }
    }

    if (RedisModule_CreateCommand(ctx, "voucher.version", vn_cmd_version,
                                  "readonly fast", 0, 0, 0)
        == REDISMODULE_ERR)
    {
        return REDISMODULE_ERR;
    }

    return REDISMODULE_OK;
}


/* MODULE UNLOAD: the caches and the strings made at load go */

__attribute__((visibility("default"))) int
RedisModule_OnUnload(RedisModuleCtx *ctx)
{
    int          i;
    vn_rstr_t  **all[] = { vn_c.code_f, vn_c.camp_f, vn_c.log_f, vn_c.rb_f,
                           vn_c.lp_f };
    int          n[] = { 8, VN_CAMP_F, 11, 3, VN_LP_F };
    size_t       j;

    vn_eval_free();

    for (j = 0; j < sizeof(n) / sizeof(n[0]); j++) {
        for (i = 0; i < n[j]; i++) {
            RedisModule_FreeString(NULL, all[j][i]);
        }
    }

    RedisModule_FreeString(NULL, vn_c.rev);
    RedisModule_FreeString(NULL, vn_c.stream_maxlen);
    RedisModule_FreeString(NULL, vn_c.idem_ttl);
    RedisModule_FreeString(NULL, vn_c.empty);
    RedisModule_FreeString(NULL, vn_c.redeem);
    RedisModule_FreeString(NULL, vn_c.hold);
    RedisModule_FreeString(NULL, vn_c.confirm);
    RedisModule_FreeString(NULL, vn_c.release);
    RedisModule_FreeString(NULL, vn_c.rollback);
    RedisModule_FreeString(NULL, vn_c.lm_tier);
    RedisModule_FreeString(NULL, vn_c.lm_act);

    return REDISMODULE_OK;
}
