
/*
 * Copyright (C) ngx_voucher authors
 *
 * The gate's two-phase redeem: VOUCHER.RESERVE (a redeem held until its
 * deadline, redis/lib/limits.lua api.reserve) and VOUCHER.CONFIRM of a
 * live hold with "brief" (redis/lib/settle.lua settle()), as the library
 * does them.  Everything else of settle() (a confirm without "brief", one
 * whose hold is gone or due, a stack's parent, the loyalty earn when a
 * programme exists) is handed to the library before anything is written.
 */


#include <math.h>

#include "voucher.h"
#include "voucher_version.h"


/*
 * What a reservation does that the module leaves to the library: with
 * items and a loyalty programme, L.stash() keeps the items for the earn
 */

int
vn_hold_check(vn_call_t *call, double n)
{
    RedisModuleKey  *lp;

    if (n == 0) {
        return VN_OK;
    }

    lp = RedisModule_OpenKey(call->ctx, vn_key(call, ":lp", NULL, 0),
                             REDISMODULE_READ);

    return RedisModule_KeyType(lp) == REDISMODULE_KEYTYPE_EMPTY
           ? VN_OK : VN_DELEGATE;
}


/*
 * hold_add(): the id in {NS}:hz scored by its deadline; with a customer,
 * its counters and h:<code> (the hold's id) in one HSET
 */

void
vn_hold_add(vn_call_t *call, double deadline, const char *id, size_t idlen,
    RedisModuleKey *uk, vn_rstr_t *ukey, vn_rstr_t *ufk, vn_rstr_t *vk,
    vn_rstr_t *ufc, vn_rstr_t *vc)
{
    int              note;
    double           first;
    vn_rstr_t       *hkey, *ids, *dl, *fh;
    RedisModuleKey  *hz;

    hkey = vn_key(call, ":hz", NULL, 0);
    ids = RedisModule_CreateString(call->ctx, id, idlen);
    dl = vn_dec(call, deadline);

    hz = RedisModule_OpenKey(call->ctx, hkey,
                             REDISMODULE_READ | REDISMODULE_WRITE);

    /* due before every hold the set has: the library's cache is told */
    first = 0;
    note = (RedisModule_KeyType(hz) != REDISMODULE_KEYTYPE_ZSET
            || RedisModule_ZsetFirstInScoreRange(hz,
                   REDISMODULE_NEGATIVE_INFINITE,
                   REDISMODULE_POSITIVE_INFINITE, 0, 0) != REDISMODULE_OK);

    if (!note) {
        (void) RedisModule_ZsetRangeCurrentElement(hz, &first);
        RedisModule_ZsetRangeStop(hz);
        note = (deadline < first);
    }

    RedisModule_ZsetAdd(hz, deadline, ids, NULL);
    RedisModule_Replicate(call->ctx, "ZADD", "sss", hkey, dl, ids);
    vn_touched(call, REDISMODULE_NOTIFY_ZSET, "zadd", hkey);

    if (note) {
        /* (no library loaded: nothing cached either) */
        (void) RedisModule_Call(call->ctx, "FCALL", "!ccss",
                                VN_FN("voucher_hold_note"), "1", hkey, dl);
    }

    if (uk == NULL) {
        return;
    }

    fh = vn_cat(call, "h:", 2, call->code.data, call->code.len);

    RedisModule_HashSet(uk, REDISMODULE_HASH_NONE, ufk, vk, ufc, vc, fh, ids,
                        NULL);
    RedisModule_Replicate(call->ctx, "HSET", "sssssss", ukey, ufk, vk, ufc,
                          vc, fh, ids);
    vn_touched(call, REDISMODULE_NOTIFY_HASH, "hset", ukey);
}


/* VOUCHER.RESERVE {NS}:c:<code> hold_ms <the arguments of redeem> */

int
vn_cmd_reserve(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc)
{
    int           rc;
    double        hold_ms;
    size_t        len;
    vn_call_t     call;
    vn_result_t   r;
    const char   *s;

    vn_call_init(&call, ctx, argv, argc, VN_FN("voucher_reserve"));
    call.off = 1;

    memset(&r, 0, sizeof(vn_result_t));

    s = argc > 2 ? RedisModule_StringPtrLen(argv[2], &len) : NULL;

    if (s == NULL || !vn_hold_ms(s, len, &hold_ms)) {
        return RedisModule_ReplyWithError(ctx, "ERR bad_args");
    }

    rc = vn_evaluate(&call, &r, 1, 0, hold_ms);

    if (rc == VN_DELEGATE) {
        return vn_delegate(&call);
    }

    return vn_reply_result(ctx, &r);
}


/*
 * The gate's confirm of a live hold, "brief": the id leaves {NS}:hz, a
 * "confirm" entry goes to the trail, the answer is {"ok", "status",
 * "confirmed"}.  VN_DELEGATE for anything else.
 */

static int
vn_confirm_brief(vn_call_t *call)
{
    char             id[48];
    double           score, maxlen, ttl;
    size_t           len, idlen;
    vn_rstr_t       *hkey, *fv[22];
    const char      *s;
    RedisModuleKey  *hz, *k;

    if (call->argc != 5 || vn_tag_of(call, ":log", 0) != VN_OK) {
        return VN_DELEGATE;
    }

    s = RedisModule_StringPtrLen(call->argv[4], &len);
    if (len != 5 || memcmp(s, "brief", 5) != 0) {
        return VN_DELEGATE;
    }

    hkey = vn_key(call, ":hz", NULL, 0);
    hz = RedisModule_OpenKey(call->ctx, hkey,
                             REDISMODULE_READ | REDISMODULE_WRITE);

    if (RedisModule_KeyType(hz) != REDISMODULE_KEYTYPE_ZSET
        || RedisModule_ZsetScore(hz, call->argv[2], &score) != REDISMODULE_OK
        || !(score > (double) vn_now_ms(call)))
    {
        return VN_DELEGATE;
    }

    /* L.confirmed(): a programme's earn is the library's */

    k = RedisModule_OpenKey(call->ctx, vn_key(call, ":lp", NULL, 0),
                            REDISMODULE_READ);
    if (RedisModule_KeyType(k) != REDISMODULE_KEYTYPE_EMPTY) {
        return VN_DELEGATE;
    }

    k = RedisModule_OpenKey(call->ctx, call->argv[1], REDISMODULE_READ);
    if (!vn_check_type(k, REDISMODULE_KEYTYPE_STREAM)
        || vn_settings(call, &maxlen, &ttl) != VN_OK)
    {
        return VN_DELEGATE;
    }

    RedisModule_ZsetRem(hz, call->argv[2], NULL);
    RedisModule_Replicate(call->ctx, "ZREM", "ss", hkey, call->argv[2]);
    vn_touched(call, REDISMODULE_NOTIFY_ZSET, "zrem", hkey);

    if (RedisModule_ValueLength(hz) == 0) {
        vn_touched(call, REDISMODULE_NOTIFY_GENERIC, "del", hkey);
    }

    /* confirm_entry(): type confirm, idem, ref the redemption */

    for (idlen = 0; idlen < 11; idlen++) {
        fv[2 * idlen] = vn_c.log_f[idlen];
        fv[2 * idlen + 1] = vn_c.empty;
    }

    fv[1] = vn_c.confirm;
    fv[19] = call->argv[3];
    fv[21] = call->argv[2];

    if (vn_xadd(call, maxlen, fv, id, &idlen) != VN_OK) {
        return RedisModule_ReplyWithError(call->ctx,
                                          "ERR voucher: XADD failed");
    }

    RedisModule_ReplyWithArray(call->ctx, 3);
    RedisModule_ReplyWithStringBuffer(call->ctx, "ok", 2);
    RedisModule_ReplyWithStringBuffer(call->ctx, "status", 6);
    RedisModule_ReplyWithStringBuffer(call->ctx, "confirmed", 9);

    return VN_OK;
}


/* a command of one step that either replies or hands over to the library */

static int
vn_hold_command(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc,
    const char *fn, int (*step)(vn_call_t *call))
{
    vn_call_t  call;

    vn_call_init(&call, ctx, argv, argc, fn);

    if (step(&call) == VN_DELEGATE) {
        return vn_delegate(&call);
    }

    return REDISMODULE_OK;
}


/* VOUCHER.CONFIRM {NS}:log redemption_id idem [brief] */

int
vn_cmd_confirm(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc)
{
    return vn_hold_command(ctx, argv, argc, VN_FN("voucher_confirm"),
                           vn_confirm_brief);
}


/* the redeem entry of the stream with exactly this id (redemption()) */

typedef struct {
    vn_rstr_t   *f[11];           /* type code campaign ... idem ref */
} vn_entry_t;


static int
vn_redemption(vn_call_t *call, vn_rstr_t *id, vn_entry_t *e)
{
    int                    i;
    size_t                 len, n;
    const char            *s;
    RedisModuleCallReply  *r, *x, *fv, *f;

    s = RedisModule_StringPtrLen(id, &len);

    for (n = 0; n < len && s[n] >= '0' && s[n] <= '9'; n++) { /* void */ }

    if (n == 0 || n + 1 >= len || s[n] != '-') {
        return VN_DELEGATE;
    }

    for (n++; n < len && s[n] >= '0' && s[n] <= '9'; n++) { /* void */ }

    if (n != len) {
        return VN_DELEGATE;
    }

    r = RedisModule_Call(call->ctx, "XRANGE", "sss", call->argv[1], id, id);

    if (r == NULL || RedisModule_CallReplyType(r) != REDISMODULE_REPLY_ARRAY
        || RedisModule_CallReplyLength(r) != 1)
    {
        return VN_DELEGATE;
    }

    x = RedisModule_CallReplyArrayElement(r, 0);
    fv = RedisModule_CallReplyArrayElement(x, 1);

    if (fv == NULL || RedisModule_CallReplyLength(fv) != 22) {
        return VN_DELEGATE;
    }

    /* the fields every entry has, in their order (xadd()) */

    for (i = 0; i < 11; i++) {
        f = RedisModule_CallReplyArrayElement(fv, 2 * i);
        s = RedisModule_CallReplyStringPtr(f, &len);

        if (s == NULL
            || RedisModule_StringCompare(vn_c.log_f[i],
                   RedisModule_CreateString(call->ctx, s, len)) != 0)
        {
            return VN_DELEGATE;
        }

        f = RedisModule_CallReplyArrayElement(fv, 2 * i + 1);
        e->f[i] = RedisModule_CreateStringFromCallReply(f);

        if (e->f[i] == NULL) {
            return VN_DELEGATE;
        }
    }

    return vn_eqc(e->f[0], "redeem") ? VN_OK : VN_DELEGATE;
}


static double
vn_num_or0(vn_rstr_t *s)
{
    double  d;

    return (s && vn_str_num(s, &d)) ? d : 0;
}


/* HSET key f1 v1 f2 v2 f3 v3, and its effect */

static void
vn_hset3(vn_call_t *call, RedisModuleKey *key, vn_rstr_t *kname,
    vn_rstr_t *f1, vn_rstr_t *v1, vn_rstr_t *f2, vn_rstr_t *v2,
    vn_rstr_t *f3, vn_rstr_t *v3)
{
    RedisModule_HashSet(key, REDISMODULE_HASH_NONE, f1, v1, f2, v2, f3, v3,
                        NULL);
    RedisModule_Replicate(call->ctx, "HSET", "sssssss", kname, f1, v1, f2, v2,
                          f3, v3);
    vn_touched(call, REDISMODULE_NOTIFY_HASH, "hset", kname);
}


/*
 * undo() of a whole redemption (no amount), typ "release" or "rollback",
 * without an idempotency key: everything is read and checked first, so a
 * call the library must answer is handed over before anything is written
 */

static int
vn_undo(vn_call_t *call, vn_rstr_t *id, vn_entry_t *e, vn_rstr_t *typ,
    int held)
{
    int              gift, has_k, has_u, deleted;
    char             rid[48], buf[32];
    double           done, disc, a, total, bal, u, g, rd, x, y, maxlen, ttl;
    size_t           len, ridlen, n;
    vn_code_t        c;
    vn_rstr_t       *rbkey, *kkey, *ukey, *kf, *cf, *hkey, *fv[22];
    vn_rstr_t       *rb_amt, *rb_done, *kst, *kred, *kgiv, *krules, *uv1,
                    *uv2, *v;
    const char      *s;
    RedisModuleKey  *rb, *kk, *uk, *hz;

    s = RedisModule_StringPtrLen(id, &len);
    rbkey = vn_key(call, ":rb:", s, len);
    rb = RedisModule_OpenKey(call->ctx, rbkey,
                             REDISMODULE_READ | REDISMODULE_WRITE);
    rb_amt = NULL;
    rb_done = NULL;

    if (!vn_check_type(rb, REDISMODULE_KEYTYPE_HASH)
        || (RedisModule_KeyType(rb) == REDISMODULE_KEYTYPE_HASH
            && RedisModule_HashGet(rb, REDISMODULE_HASH_NONE,
                                   vn_c.rb_f[0], &rb_amt, vn_c.rb_f[1],
                                   &rb_done, NULL)
               != REDISMODULE_OK))
    {
        return VN_DELEGATE;
    }

    if (rb_done) {
        if (held) {
            return VN_DELEGATE;
        }

        RedisModule_ReplyWithArray(call->ctx, 7);
        RedisModule_ReplyWithStringBuffer(call->ctx, "already_rolled_back",
                                          19);
        RedisModule_ReplyWithStringBuffer(call->ctx, "redemption_id", 13);
        RedisModule_ReplyWithString(call->ctx, id);
        RedisModule_ReplyWithStringBuffer(call->ctx, "code", 4);
        RedisModule_ReplyWithString(call->ctx, e->f[1]);
        RedisModule_ReplyWithStringBuffer(call->ctx, "campaign", 8);
        RedisModule_ReplyWithString(call->ctx, e->f[2]);
        return VN_OK;
    }

    done = vn_num_or0(rb_amt);
    disc = vn_num_or0(e->f[7]);
    a = disc - done;
    total = done + a;
    RedisModule_StringPtrLen(e->f[8], &len);
    gift = (len != 0);

    /* a gift card's refund goes back into its lots with a ledger entry
       (giftcard.lua): the library's */

    if (gift) {
        return VN_DELEGATE;
    }

    /* the code (as the key of its own namespace) */

    s = RedisModule_StringPtrLen(e->f[1], &len);
    call->code.data = s;
    call->code.len = len;

    if (vn_code_read(call, vn_key(call, ":c:", s, len), &c,
                     REDISMODULE_READ | REDISMODULE_WRITE)
        != VN_OK)
    {
        return VN_DELEGATE;
    }

    bal = 0;
    u = 0;

    if (c.f[0]) {
        if (gift) {
            bal = vn_num_or0(c.f[5]) + a;
        }

        u = vn_num_or0(c.f[3]) - 1;
        if (u < 0) {
            u = 0;
        }
    }

    /* the campaign */

    s = RedisModule_StringPtrLen(e->f[2], &len);
    kkey = vn_key(call, ":k:", s, len);
    kk = RedisModule_OpenKey(call->ctx, kkey,
                             REDISMODULE_READ | REDISMODULE_WRITE);
    kst = NULL;
    kred = NULL;
    kgiv = NULL;
    krules = NULL;

    if (kk && RedisModule_HashGet(kk, REDISMODULE_HASH_NONE,
                                  vn_c.camp_f[0], &kst,
                                  vn_c.camp_f[VN_CAMP_REDEEMED], &kred,
                                  vn_c.camp_f[VN_CAMP_GIVEN], &kgiv,
                                  vn_c.camp_f[VN_CAMP_RULES - 1], &krules,
                                  NULL)
              != REDISMODULE_OK)
    {
        return VN_DELEGATE;
    }

    /* the "rules" field: periodic counters to give back (rules.lua) */

    if (krules != NULL) {
        return VN_DELEGATE;
    }

    has_k = (kst != NULL);
    g = vn_num_or0(kgiv) - a;
    rd = vn_num_or0(kred) - 1;

    /* the customer */

    ukey = NULL;
    uk = NULL;
    kf = NULL;
    cf = NULL;
    has_u = 0;
    x = 0;
    y = 0;
    RedisModule_StringPtrLen(e->f[3], &len);

    if (len) {
        s = RedisModule_StringPtrLen(e->f[3], &len);
        ukey = vn_key(call, ":u:", s, len);
        s = RedisModule_StringPtrLen(e->f[2], &len);
        kf = vn_cat(call, "k:", 2, s, len);
        cf = vn_cat(call, "c:", 2, call->code.data, call->code.len);
        uk = RedisModule_OpenKey(call->ctx, ukey,
                                 REDISMODULE_READ | REDISMODULE_WRITE);
        uv1 = NULL;
        uv2 = NULL;

        if (uk && RedisModule_HashGet(uk, REDISMODULE_HASH_NONE, kf, &uv1,
                                      cf, &uv2, NULL)
                  != REDISMODULE_OK)
        {
            return VN_DELEGATE;
        }

        has_u = (uv1 || uv2);
        x = vn_num_or0(uv1) - 1;
        y = vn_num_or0(uv2) - 1;
    }

    hkey = vn_key(call, ":hz", NULL, 0);
    hz = RedisModule_OpenKey(call->ctx, hkey,
                             REDISMODULE_READ | REDISMODULE_WRITE);

    if (!vn_check_type(hz, REDISMODULE_KEYTYPE_ZSET)
        || vn_settings(call, &maxlen, &ttl) != VN_OK)
    {
        return VN_DELEGATE;
    }

    /* the writes, in the library's order */

    if (c.f[0]) {
        if (c.bkey) {
            n = vn_fmt_14g(buf, u);
            v = vn_cat(call, buf, n, " ", 1);
            s = RedisModule_StringPtrLen(c.f[0], &len);
            RedisModule_StringAppendBuffer(call->ctx, v, s, len);

            if (c.f[4]) {
                s = RedisModule_StringPtrLen(c.f[4], &len);
                if (len) {
                    RedisModule_StringAppendBuffer(call->ctx, v, " ", 1);
                    RedisModule_StringAppendBuffer(call->ctx, v, s, len);
                }
            }

            RedisModule_HashSet(c.key, REDISMODULE_HASH_NONE, e->f[1], v,
                                NULL);
            RedisModule_Replicate(call->ctx, "HSET", "sss", c.bkey, e->f[1],
                                  v);
            vn_touched(call, REDISMODULE_NOTIFY_HASH, "hset", c.bkey);

        } else {
            v = vn_key(call, ":c:", call->code.data, call->code.len);

            if (gift) {
                RedisModule_HashSet(c.key, REDISMODULE_HASH_NONE,
                                    vn_c.code_f[3], vn_num17(call, u),
                                    vn_c.code_f[5], vn_num17(call, bal),
                                    NULL);
                RedisModule_Replicate(call->ctx, "HSET", "sssss", v,
                                      vn_c.code_f[3], vn_num17(call, u),
                                      vn_c.code_f[5], vn_num17(call, bal));
            } else {
                RedisModule_HashSet(c.key, REDISMODULE_HASH_NONE,
                                    vn_c.code_f[3], vn_num17(call, u), NULL);
                RedisModule_Replicate(call->ctx, "HSET", "sss", v,
                                      vn_c.code_f[3], vn_num17(call, u));
            }

            vn_touched(call, REDISMODULE_NOTIFY_HASH, "hset", v);
        }
    }

    if (has_k) {
        RedisModule_HashSet(kk, REDISMODULE_HASH_NONE,
                            vn_c.camp_f[VN_CAMP_GIVEN],
                            vn_num17(call, g < 0 ? 0 : g),
                            vn_c.camp_f[VN_CAMP_REDEEMED],
                            vn_num17(call, rd < 0 ? 0 : rd), NULL);
        RedisModule_Replicate(call->ctx, "HSET", "sssss", kkey,
                              vn_c.camp_f[VN_CAMP_GIVEN],
                              vn_num17(call, g < 0 ? 0 : g),
                              vn_c.camp_f[VN_CAMP_REDEEMED],
                              vn_num17(call, rd < 0 ? 0 : rd));
        vn_touched(call, REDISMODULE_NOTIFY_HASH, "hset", kkey);
    }

    if (has_u) {
        RedisModule_HashSet(uk, REDISMODULE_HASH_NONE,
                            kf, vn_num17(call, x < 0 ? 0 : x),
                            cf, vn_num17(call, y < 0 ? 0 : y), NULL);
        RedisModule_Replicate(call->ctx, "HSET", "sssss", ukey,
                              kf, vn_num17(call, x < 0 ? 0 : x),
                              cf, vn_num17(call, y < 0 ? 0 : y));
        vn_touched(call, REDISMODULE_NOTIFY_HASH, "hset", ukey);
    }

    vn_hset3(call, rb, rbkey, vn_c.rb_f[0], vn_num17(call, total),
             vn_c.rb_f[1], vn_num17(call, 1), vn_c.rb_f[2], typ);

    deleted = 0;

    if (vn_eqc(e->f[10], "hold")
        && RedisModule_KeyType(hz) == REDISMODULE_KEYTYPE_ZSET
        && RedisModule_ZsetRem(hz, id, &deleted) == REDISMODULE_OK
        && deleted)
    {
        RedisModule_Replicate(call->ctx, "ZREM", "ss", hkey, id);
        vn_touched(call, REDISMODULE_NOTIFY_ZSET, "zrem", hkey);
    }

    /* the trail: typ code campaign customer order '' currency a bal '' id */

    for (n = 0; n < 11; n++) {
        fv[2 * n] = vn_c.log_f[n];
    }

    fv[1] = typ;
    fv[3] = e->f[1];
    fv[5] = e->f[2];
    fv[7] = e->f[3];
    fv[9] = e->f[4];
    fv[11] = vn_c.empty;
    fv[13] = e->f[6];
    fv[15] = vn_num17(call, a);
    fv[17] = (c.f[0] && gift) ? vn_num17(call, bal) : vn_c.empty;
    fv[19] = vn_c.empty;
    fv[21] = id;

    if (vn_xadd(call, maxlen, fv, rid, &ridlen) != VN_OK) {
        return RedisModule_ReplyWithError(call->ctx,
                                          "ERR voucher: XADD failed");
    }

    RedisModule_ReplyWithArray(call->ctx, (c.f[0] && gift) ? 17 : 15);
    RedisModule_ReplyWithStringBuffer(call->ctx, "ok", 2);
    RedisModule_ReplyWithStringBuffer(call->ctx, "redemption_id", 13);
    RedisModule_ReplyWithString(call->ctx, id);
    RedisModule_ReplyWithStringBuffer(call->ctx, "code", 4);
    RedisModule_ReplyWithString(call->ctx, e->f[1]);
    RedisModule_ReplyWithStringBuffer(call->ctx, "campaign", 8);
    RedisModule_ReplyWithString(call->ctx, e->f[2]);
    RedisModule_ReplyWithStringBuffer(call->ctx, "amount_rolled_back", 18);
    vn_reply_num(call->ctx, a);
    RedisModule_ReplyWithStringBuffer(call->ctx, "total_rolled_back", 17);
    vn_reply_num(call->ctx, total);
    RedisModule_ReplyWithStringBuffer(call->ctx, "status", 6);

    if (typ == vn_c.release) {
        RedisModule_ReplyWithStringBuffer(call->ctx, "released", 8);
    } else {
        RedisModule_ReplyWithStringBuffer(call->ctx, "rolled_back", 11);
    }

    if (c.f[0] && gift) {
        RedisModule_ReplyWithStringBuffer(call->ctx, "balance", 7);
        vn_reply_num(call->ctx, bal);
    }

    if (typ == vn_c.release) {
        RedisModule_ReplyWithStringBuffer(call->ctx, "release_id", 10);
    } else {
        RedisModule_ReplyWithStringBuffer(call->ctx, "rollback_id", 11);
    }

    RedisModule_ReplyWithStringBuffer(call->ctx, rid, ridlen);

    return VN_OK;
}


/* a loyalty programme: its refunds and revocations are the library's */

static int
vn_no_programme(vn_call_t *call)
{
    RedisModuleKey  *k;

    k = RedisModule_OpenKey(call->ctx, vn_key(call, ":lp", NULL, 0),
                            REDISMODULE_READ);

    return RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_EMPTY;
}


/*
 * VOUCHER.RELEASE {NS}:log redemption_id "": the gate's release of a live
 * hold, nothing due in {NS}:hz
 */

static int
vn_release(vn_call_t *call)
{
    double           score;
    size_t           len;
    vn_entry_t       e;
    RedisModuleKey  *hz;

    if (call->argc != 4 || vn_tag_of(call, ":log", 0) != VN_OK) {
        return VN_DELEGATE;
    }

    RedisModule_StringPtrLen(call->argv[3], &len);

    if (len != 0 || !vn_no_programme(call) || vn_sweep_due(call) != VN_OK
        || vn_redemption(call, call->argv[2], &e) != VN_OK
        || !vn_eqc(e.f[10], "hold"))
    {
        return VN_DELEGATE;
    }

    /* hold_state(): held */

    hz = RedisModule_OpenKey(call->ctx, vn_key(call, ":hz", NULL, 0),
                             REDISMODULE_READ);

    if (RedisModule_KeyType(hz) != REDISMODULE_KEYTYPE_ZSET
        || RedisModule_ZsetScore(hz, call->argv[2], &score) != REDISMODULE_OK
        || !(score > (double) vn_now_ms(call)))
    {
        return VN_DELEGATE;
    }

    return vn_undo(call, call->argv[2], &e, vn_c.release, 1);
}


int
vn_cmd_release(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc)
{
    return vn_hold_command(ctx, argv, argc, VN_FN("voucher_release"),
                           vn_release);
}


/*
 * VOUCHER.ROLLBACK {NS}:log redemption_id "" "": a whole rollback without
 * an idempotency key (no sweep: as api.rollback)
 */

static int
vn_rollback(vn_call_t *call)
{
    size_t      l1, l2;
    vn_entry_t  e;

    if (call->argc != 5 || vn_tag_of(call, ":log", 0) != VN_OK) {
        return VN_DELEGATE;
    }

    RedisModule_StringPtrLen(call->argv[3], &l1);
    RedisModule_StringPtrLen(call->argv[4], &l2);

    if (l1 || l2 || !vn_no_programme(call)
        || vn_redemption(call, call->argv[2], &e) != VN_OK)
    {
        return VN_DELEGATE;
    }

    return vn_undo(call, call->argv[2], &e, vn_c.rollback, 0);
}


int
vn_cmd_rollback(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc)
{
    return vn_hold_command(ctx, argv, argc, VN_FN("voucher_rollback"),
                           vn_rollback);
}
