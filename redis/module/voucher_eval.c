
/*
 * Copyright (C) ngx_voucher authors
 *
 * validate, redeem: evaluate() and evaluate_code() of the library, step
 * by step in its order, with its numbers (doubles) and its answers.
 */


#define _GNU_SOURCE      /* memmem() */

#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "voucher.h"
#include "voucher_version.h"


/* CAMPAIGN_FIELDS, 0-based */
#define K_STATUS     0
#define K_KIND       1
#define K_VALUE      2
#define K_CAP        3
#define K_MIN        4
#define K_MAXRED     5
#define K_MAXDISC    6
#define K_PC         7
#define K_PCC        8
#define K_CMU        9
#define K_CUR        10
#define K_START      11
#define K_END        12
#define K_DAYS       13
#define K_HOURS      14
#define K_TZ         15
#define K_INCS       16
#define K_EXCS       17
#define K_INCC       18
#define K_EXCC       19
#define K_FSKU       20
#define K_TIERS      21         /* loyalty tiers the campaign is for */
#define K_XRULES     22         /* "1": the library's rules (rules.lua) */
#define K_RULES      VN_CAMP_RULES  /* the fields read as rules */

/* the code's fields: k s m u c b f t */
#define C_K  0
#define C_S  1
#define C_M  2
#define C_U  3
#define C_C  4
#define C_B  5
#define C_F  6
#define C_T  7

#define VN_CAMPAIGNS_MAX  10000


/* a campaign's rules: a number field as tonumber() left it */
typedef struct {
    vn_rstr_t  *rev;                  /* cached: owned, else NULL */
    vn_rstr_t  *s[K_RULES];
    double      n[K_RULES];
    char        has[K_RULES];
} vn_camp_t;



static RedisModuleDict  *vn_campaigns;
static long              vn_ncampaigns;

static const int  vn_camp_numbers[] = {
    K_VALUE, K_CAP, K_MIN, K_MAXRED, K_MAXDISC, K_PC, K_PCC, K_CMU,
    K_START, K_END, K_TZ
};


void
vn_eval_init(void)
{
    vn_campaigns = RedisModule_CreateDict(NULL);
    vn_ncampaigns = 0;
}


static void
vn_camp_free(vn_camp_t *k)
{
    int  i;

    RedisModule_FreeString(NULL, k->rev);

    for (i = 0; i < K_RULES; i++) {
        if (k->s[i]) {
            RedisModule_FreeString(NULL, k->s[i]);
        }
    }

    RedisModule_Free(k);
}


void
vn_eval_free(void)
{
    vn_camp_t            *k;
    RedisModuleDictIter  *it;

    it = RedisModule_DictIteratorStartC(vn_campaigns, "^", NULL, 0);

    while (RedisModule_DictNextC(it, NULL, (void **) &k)) {
        vn_camp_free(k);
    }

    RedisModule_DictIteratorStop(it);
    RedisModule_FreeDict(NULL, vn_campaigns);
    vn_campaigns = NULL;
}


static void
vn_campaigns_reset(void)
{
    vn_eval_free();

    vn_campaigns = RedisModule_CreateDict(NULL);
    vn_ncampaigns = 0;
}


/*
 * The campaign's rules: from the cache while its "rev" is the one cached,
 * else read (and cached when it has a rev).  VN_DELEGATE: the key is not a
 * hash.
 */

static int
vn_campaign(vn_call_t *call, RedisModuleKey *kk, vn_rstr_t *kkey,
    vn_rstr_t *rev, vn_camp_t **out, vn_camp_t *tmp)
{
    int          i, j;
    size_t       klen;
    vn_rstr_t   *v;
    vn_camp_t   *k, *old;
    const char  *kp;

    kp = RedisModule_StringPtrLen(kkey, &klen);

    if (rev) {
        k = RedisModule_DictGetC(vn_campaigns, (void *) kp, klen, NULL);

        if (k && RedisModule_StringCompare(k->rev, rev) == 0) {
            *out = k;
            return VN_OK;
        }
    }

    k = tmp;
    memset(k, 0, sizeof(vn_camp_t));

    for (i = 0; i < K_RULES; i++) {
        v = NULL;

        if (kk && RedisModule_HashGet(kk, REDISMODULE_HASH_NONE, vn_c.camp_f[i],
                                &v, NULL)
            != REDISMODULE_OK)
        {
            return VN_DELEGATE;
        }

        k->s[i] = v;
    }

    /* numbers once, as the library converts them for its cache */

    for (j = 0; j < (int) (sizeof(vn_camp_numbers) / sizeof(int)); j++) {
        i = vn_camp_numbers[j];
        k->has[i] = (char) vn_str_num(k->s[i], &k->n[i]);
        k->s[i] = NULL;
    }

    if (rev == NULL) {
        *out = k;
        return VN_OK;
    }

    if (vn_ncampaigns >= VN_CAMPAIGNS_MAX) {
        vn_campaigns_reset();
    }

    k = RedisModule_Alloc(sizeof(vn_camp_t));
    *k = *tmp;
    k->rev = RedisModule_CreateStringFromString(NULL, rev);

    for (i = 0; i < K_RULES; i++) {
        if (k->s[i]) {
            k->s[i] = RedisModule_CreateStringFromString(NULL, k->s[i]);
        }
    }

    old = NULL;

    if (RedisModule_DictDelC(vn_campaigns, (void *) kp, klen, &old)
        == REDISMODULE_OK)
    {
        vn_camp_free(old);

    } else {
        vn_ncampaigns++;
    }

    RedisModule_DictSetC(vn_campaigns, (void *) kp, klen, k);

    *out = k;

    return VN_OK;
}


/* Lua's a % b */

static double
vn_mod(double a, double b)
{
    return a - floor(a / b) * b;
}


/* '^(%d+) (%S+) ?(%S*)$' of a compact value */

static int
vn_space(int c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}


static int
vn_compact_parse(vn_call_t *call, vn_rstr_t *val, vn_code_t *c)
{
    size_t       n;
    const char  *p, *e, *s, *u, *k;

    p = RedisModule_StringPtrLen(val, &n);
    e = p + n;
    s = p;

    while (p < e && *p >= '0' && *p <= '9') {
        p++;
    }

    if (p == s || p == e || *p != ' ') {
        return VN_ERROR;
    }

    u = p;
    k = ++p;

    while (p < e && !vn_space((unsigned char) *p)) {
        p++;
    }

    if (p == k) {
        return VN_ERROR;
    }

    c->f[C_K] = RedisModule_CreateString(call->ctx, k, p - k);
    c->f[C_U] = RedisModule_CreateString(call->ctx, s, u - s);

    if (p < e && *p == ' ') {
        p++;
    }

    k = p;

    while (p < e && !vn_space((unsigned char) *p)) {
        p++;
    }

    if (p != e) {
        c->f[C_K] = NULL;
        c->f[C_U] = NULL;
        return VN_ERROR;
    }

    if (p > k) {
        c->f[C_C] = RedisModule_CreateString(call->ctx, k, p - k);
    }

    return VN_OK;
}


/* code_read(): the hash's fields, or the compact value's */

int
vn_code_read(vn_call_t *call, vn_rstr_t *ckey, vn_code_t *c, int mode)
{
    int              i;
    char             h[41];
    vn_rstr_t       *v, *cs;
    RedisModuleKey  *key, *bk;

    memset(c, 0, sizeof(vn_code_t));

    /* (opened for reading only, a missing key is NULL) */
    key = RedisModule_OpenKey(call->ctx, ckey, mode);

    if (key && RedisModule_HashGet(key, REDISMODULE_HASH_NONE,
                            vn_c.code_f[0], &c->f[0], vn_c.code_f[1],
                            &c->f[1], vn_c.code_f[2], &c->f[2],
                            vn_c.code_f[3], &c->f[3], vn_c.code_f[4],
                            &c->f[4], vn_c.code_f[5], &c->f[5],
                            vn_c.code_f[6], &c->f[6], vn_c.code_f[7],
                            &c->f[7], NULL)
        != REDISMODULE_OK)
    {
        return VN_DELEGATE;
    }

    c->key = key;

    if (c->f[C_K]) {
        return VN_OK;
    }

    vn_sha1hex(call->code.data, call->code.len, h);

    c->bkey = vn_key(call, ":cb:", h, 4);
    bk = RedisModule_OpenKey(call->ctx, c->bkey, mode);
    cs = RedisModule_CreateString(call->ctx, call->code.data,
                                  call->code.len);
    v = NULL;

    if (bk && RedisModule_HashGet(bk, REDISMODULE_HASH_NONE, cs, &v, NULL)
        != REDISMODULE_OK)
    {
        return VN_DELEGATE;
    }

    if (v == NULL) {
        c->bkey = NULL;
        return VN_OK;
    }

    for (i = 0; i < 8; i++) {
        c->f[i] = NULL;
    }

    if (vn_compact_parse(call, v, c) != VN_OK) {
        /* the hash's fields, whose k is absent: not found */
        c->bkey = NULL;
        return VN_OK;
    }

    c->key = bk;

    return VN_OK;
}


/* fail(reason, code, camp, k1, v1) */

static int
vn_fail(vn_call_t *call, vn_result_t *r, const char *reason, vn_buf_t *camp,
    const char *k1, vn_val_t *v1)
{
    r->type = VN_R_FAIL;
    r->reason = reason;

    vn_pair_buf(r, "code", call->code.data, call->code.len);

    if (camp) {
        vn_pair_buf(r, "campaign", camp->data, camp->len);

        if (k1 && v1) {
            vn_pair(r, k1, v1);
        }
    }

    return VN_OK;
}


static int
vn_fail_num(vn_call_t *call, vn_result_t *r, const char *reason,
    vn_buf_t *camp, const char *k1, double d)
{
    vn_val_t  v;

    v = vn_vnum(d);

    return vn_fail(call, r, reason, camp, k1, &v);
}


/* the request's fingerprint (the request, or its SHA-1 when long) */

typedef struct {
    char    *data;
    size_t   len;
    int      raw;
    char     sha[41];
} vn_fp_t;


static void
vn_fingerprint(vn_call_t *call, int nargs, vn_fp_t *fp)
{
    int          i;
    char        *p;
    size_t       n, len;
    const char  *a;

    /* code \0 args[1..4] \0 args[6..nargs] */

    len = call->code.len;

    for (i = 1; i <= nargs; i++) {
        if (i != 5) {
            vn_arg(call, i, &n);
            len += 1 + n;
        }
    }

    fp->data = RedisModule_PoolAlloc(call->ctx, len ? len : 1);
    p = fp->data;

    memcpy(p, call->code.data, call->code.len);
    p += call->code.len;

    for (i = 1; i <= nargs; i++) {
        if (i != 5) {
            a = vn_arg(call, i, &n);
            *p++ = '\0';
            if (n) {
                memcpy(p, a, n);
                p += n;
            }
        }
    }

    fp->raw = (len <= VN_FP_RAW);
    fp->len = len;

    if (!fp->raw) {
        vn_sha1hex(fp->data, len, fp->sha);
        fp->data = fp->sha;
        fp->len = 40;
    }
}


/*
 * replay(): the first answer of this idempotency key, with the replayed
 * mark; VN_DECLINED when there is none.  The caller's amount and customer
 * fill the answer of a values record, as the library does.
 */

#define VN_NONE  1

static int
vn_replay(vn_call_t *call, vn_result_t *r, vn_rstr_t *ikey, vn_fp_t *fp,
    const char *ck, vn_buf_t *cv, vn_buf_t *cust, double amount,
    vn_val_t **rec_out)
{
    int                    n;
    char                   sha[41];
    size_t                 len;
    vn_val_t              *v, *f, *w;
    const char            *p;
    RedisModuleKey        *key;
    RedisModuleCallReply  *reply;

    key = RedisModule_OpenKey(call->ctx, ikey, REDISMODULE_READ);

    if (RedisModule_KeyType(key) == REDISMODULE_KEYTYPE_EMPTY) {
        return VN_NONE;
    }

    if (RedisModule_KeyType(key) != REDISMODULE_KEYTYPE_STRING) {
        return VN_DELEGATE;
    }

    /* GET, not StringDMA(): that would re-encode a short string */

    reply = RedisModule_Call(call->ctx, "GET", "!s", ikey);
    if (reply == NULL
        || RedisModule_CallReplyType(reply) != REDISMODULE_REPLY_STRING)
    {
        return VN_DELEGATE;
    }

    p = RedisModule_CallReplyStringPtr(reply, &len);

    v = RedisModule_PoolAlloc(call->ctx, 80 * sizeof(vn_val_t));

    n = vn_unpack(p, len, v, 16, v + 16, 64);
    if (n < 1) {
        return VN_DELEGATE;
    }

    for ( /* void */ ; n < 16; n++) {
        memset(&v[n], 0, sizeof(vn_val_t));
    }

    f = (v[0].type == VN_ARR) ? (v[0].len ? &v[0].elts[0] : NULL) : &v[0];

    if (f == NULL || f->type != VN_STR) {
        return VN_DELEGATE;
    }

    if (!(f->len == fp->len && memcmp(f->str, fp->data, f->len) == 0)) {
        if (f->len == 40 && fp->raw) {
            vn_sha1hex(fp->data, fp->len, sha);
        }

        if (!(f->len == 40 && fp->raw && memcmp(f->str, sha, 40) == 0)) {
            r->type = VN_R_FAIL;
            r->reason = "idempotency_conflict";
            vn_pair_buf(r, ck, cv->data, cv->len);
            return VN_OK;
        }
    }

    if (v[0].type == VN_ARR) {
        /* {fp, answer}: the answer as it was, marked */

        if (v[0].len < 2 || v[0].elts[1].type != VN_ARR) {
            return VN_DELEGATE;
        }

        w = &v[0].elts[1];

        if (w->len >= 2 && w->elts[1].type == VN_NUM) {
            w->elts[1].num += 1024;

        } else {
            v[0].elts = RedisModule_PoolAlloc(call->ctx,
                                            (w->len + 2) * sizeof(vn_val_t));
            memcpy(v[0].elts, w->elts, w->len * sizeof(vn_val_t));
            v[0].elts[w->len] = vn_vbuf("replayed", 8);
            v[0].elts[w->len + 1] = vn_vnum(1);
            v[0].len = w->len + 2;
            w = &v[0];
        }

        r->type = VN_R_WHOLE;
        r->whole = w;

        if (rec_out) {
            *rec_out = NULL;
        }

        return VN_OK;
    }

    /* fp camp d kind value base cap capped_by uses bal stop id hold_s */

#define vn_is(i, t)     (v[i].type == (t))
#define vn_opt(i)       (v[i].type == VN_NUM || v[i].type == VN_NIL)

    if (!(vn_is(1, VN_STR) && vn_is(2, VN_NUM) && vn_is(3, VN_STR)
          && vn_opt(4) && vn_is(5, VN_NUM) && vn_is(6, VN_NUM)
          && (vn_is(7, VN_STR) || vn_is(7, VN_NIL)) && vn_opt(8)
          && vn_opt(9) && vn_opt(10) && vn_is(11, VN_STR) && vn_opt(12)))
    {
        return VN_DELEGATE;
    }

    memset(&r->ok, 0, sizeof(vn_ok_t));
    r->type = VN_R_OK;
    r->ok.code = call->code;
    r->ok.camp = (vn_buf_t) { v[1].str, v[1].len };
    r->ok.cust = *cust;
    r->ok.d = v[2].num;
    r->ok.kind = (vn_buf_t) { v[3].str, v[3].len };
    r->ok.has_value = vn_is(4, VN_NUM);
    r->ok.value = v[4].num;
    r->ok.base = v[5].num;
    r->ok.cap = v[6].num;

    if (vn_is(7, VN_STR)) {
        r->ok.capped_by = (vn_buf_t) { v[7].str, v[7].len };
    }

    r->ok.amount = amount;
    r->ok.has_uses = vn_is(8, VN_NUM);
    r->ok.uses_left = v[8].num;
    r->ok.has_bal = vn_is(9, VN_NUM);
    r->ok.bal = v[9].num;
    r->ok.has_stop = vn_is(10, VN_NUM);
    r->ok.stop = v[10].num;
    r->ok.id = (vn_buf_t) { v[11].str, v[11].len };
    r->ok.has_hold = vn_is(12, VN_NUM);
    r->ok.hold_s = v[12].num;
    r->ok.replay = 1;

#undef vn_is
#undef vn_opt

    if (rec_out) {
        *rec_out = v;
    }

    return VN_OK;
}


/* the namespace's settings: stream maxlen, idem ttl */

int
vn_settings(vn_call_t *call, double *maxlen, double *ttl)
{
    vn_rstr_t       *a, *b;
    RedisModuleKey  *key;

    key = RedisModule_OpenKey(call->ctx, vn_key(call, ":cfg", NULL, 0),
                              REDISMODULE_READ);

    a = NULL;
    b = NULL;

    if (key && RedisModule_HashGet(key, REDISMODULE_HASH_NONE,
                                   vn_c.stream_maxlen, &a, vn_c.idem_ttl,
                                   &b, NULL)
               != REDISMODULE_OK)
    {
        return VN_DELEGATE;
    }

    if (!vn_str_num(a, maxlen)) {
        *maxlen = 0;
    }

    if (!vn_str_num(b, ttl)) {
        *ttl = VN_IDEM_TTL;
    }

    /* what XADD MAXLEN and SET EX take as they are */

    if ((*maxlen > 0 && (*maxlen != floor(*maxlen) || *maxlen > VN_MAXINT))
        || !(*ttl >= 1 && *ttl <= 1e12 && *ttl == floor(*ttl)))
    {
        return VN_DELEGATE;
    }

    return VN_OK;
}


/* HSET key f1 v1 [f2 v2], and its effect */

static void
vn_hset(vn_call_t *call, RedisModuleKey *key, vn_rstr_t *kname,
    vn_rstr_t *f1, vn_rstr_t *v1, vn_rstr_t *f2, vn_rstr_t *v2)
{
    if (f2) {
        RedisModule_HashSet(key, REDISMODULE_HASH_NONE, f1, v1, f2, v2,
                            NULL);
        RedisModule_Replicate(call->ctx, "HSET", "sssss", kname, f1, v1, f2,
                              v2);

    } else {
        RedisModule_HashSet(key, REDISMODULE_HASH_NONE, f1, v1, NULL);
        RedisModule_Replicate(call->ctx, "HSET", "sss", kname, f1, v1);
    }

    vn_touched(call, REDISMODULE_NOTIFY_HASH, "hset", kname);
}


/* is a hash field absent, or an integer that HINCRBY can add 1 to */

static int
vn_incrable(vn_rstr_t *v, long long *n)
{
    *n = 0;

    if (v == NULL) {
        return 1;
    }

    return RedisModule_StringToLongLong(v, n) == REDISMODULE_OK
           && *n < LLONG_MAX;
}


/* XADD of a redemption's entry: its id in id */

int
vn_xadd(vn_call_t *call, double maxlen, vn_rstr_t **fv, char *id,
    size_t *idlen)
{
    long long             deleted, len;
    vn_rstr_t            *lkey;
    RedisModuleKey       *key;
    RedisModuleStreamID   sid;

    lkey = vn_key(call, ":log", NULL, 0);
    key = RedisModule_OpenKey(call->ctx, lkey,
                              REDISMODULE_READ | REDISMODULE_WRITE);

    if (RedisModule_StreamAdd(key, REDISMODULE_STREAM_ADD_AUTOID, &sid, fv,
                              11)
        != REDISMODULE_OK)
    {
        return VN_ERROR;
    }

    *idlen = (size_t) snprintf(id, 48, "%llu-%llu",
                               (unsigned long long) sid.ms,
                               (unsigned long long) sid.seq);

    vn_touched(call, REDISMODULE_NOTIFY_STREAM, "xadd", lkey);

    if (maxlen > 0) {
        deleted = RedisModule_StreamTrimByLength(key,
                                      REDISMODULE_STREAM_TRIM_APPROX,
                                      (long long) maxlen);
        len = (long long) RedisModule_ValueLength(key);

        /* as XADD propagates "MAXLEN ~": the length it left, exact */

        RedisModule_Replicate(call->ctx, "XADD", "scclbv", lkey, "MAXLEN",
                              "=", len, id, *idlen, fv, (size_t) 22);

        if (deleted > 0) {
            vn_touched(call, REDISMODULE_NOTIFY_STREAM, "xtrim", lkey);
        }

    } else {
        RedisModule_Replicate(call->ctx, "XADD", "sbv", lkey, id, *idlen,
                              fv, (size_t) 22);
    }

    return VN_OK;
}


/*
 * evaluate_code(): args are customer amount currency order_id idem nitems
 * [sku category price qty]*; n items, checked by the caller.  hold_ms < 0:
 * not a reservation.  pts: loyalty points paying (a validate's), or < 0.
 * With check set it stops before the first write: is this a call the
 * module answers (VN_OK) or the library's (VN_DELEGATE).
 */

static int
vn_evaluate_code(vn_call_t *call, vn_result_t *r, int redeem, double n,
    int nargs, double hold_ms, double pts, int check)
{
    int              i, last, gift, filtered, any_inc, matched, rc, fixed;
    char             id[48], buf[32];
    double           amount, d, p, q, used, max_uses, bal, redeemed, given;
    double           start, stop, f, t, now, loc, dow, m, a, b, value;
    double           base, per_item, sum, lo, cap, maxlen, ttl, nk, nc;
    double           fixed_v, hold_s, deadline;
    size_t           len, plen, idlen;
    long long        ik, ic;
    vn_fp_t          fp;
    vn_buf_t         cust, cur, oid, idem, camp, kind, sku, cat;
    vn_val_t         v1;
    vn_code_t        c;
    vn_camp_t       *k, ktmp;
    vn_pack_t        pk;
    vn_rstr_t       *ikey, *kkey, *ukey, *ufk, *ufc, *rev, *red, *giv, *x;
    vn_rstr_t       *fv[22], *uk_v, *uc_v;
    const char      *s, *capped_by, *hp, *dash;
    RedisModuleKey  *kk, *uk;
    RedisModuleCallReply  *rep;

    int  has_start, has_stop, has_value, has_bal, has_uses, has_d;
    int  has_nk, in;
    int  mode;

    vn_points_t   lpts;
    const char   *why;

    mode = REDISMODULE_READ | (redeem ? REDISMODULE_WRITE : 0);

    cust.data = vn_arg(call, 1, &cust.len);
    s = vn_arg(call, 2, &len);

    if (!vn_uint(s, len, &amount)) {
        return vn_error(r, "ERR bad_args");
    }

    cur.data = vn_arg(call, 3, &cur.len);
    oid.data = vn_arg(call, 4, &oid.len);
    idem.data = vn_arg(call, 5, &idem.len);

    last = (int) (4 * n + 3);

    for (i = 9; i <= last + 2; i += 4) {
        s = vn_arg(call, i, &len);
        if (!vn_uint(s, len, &p)) {
            return vn_error(r, "ERR bad_args");
        }

        s = vn_arg(call, i + 1, &len);
        if (!vn_uint(s, len, &q)) {
            return vn_error(r, "ERR bad_args");
        }
    }

    /* 1. idempotent replay */

    ikey = NULL;

    if (redeem && idem.len) {
        /* a reserve keeps its own records (":i:h:") */
        ikey = vn_key(call, hold_ms >= 0 ? ":i:h:" : ":i:r:", idem.data,
                      idem.len);
        vn_fingerprint(call, nargs, &fp);

        rc = vn_replay(call, r, ikey, &fp, "code", &call->code, &cust,
                       amount, NULL);

        /* a reservation's retry looks at its hold: the library's */
        if (rc == VN_OK && hold_ms >= 0 && r->type != VN_R_FAIL) {
            return VN_DELEGATE;
        }

        if (rc != VN_NONE) {
            return rc;
        }
    }

    /* 2-3. the code */

    rc = vn_code_read(call, call->argv[1], &c, mode);
    if (rc != VN_OK) {
        return rc;
    }

    if (c.f[C_K] == NULL) {
        r->type = VN_R_FAIL;
        r->reason = "not_found";
        vn_pair_buf(r, "code", call->code.data, call->code.len);
        return VN_OK;
    }

    camp = vn_buf(c.f[C_K]);

    if (vn_eqc(c.f[C_S], "d")) {
        return vn_fail(call, r, "code_inactive", &camp, NULL, NULL);
    }

    /* 4. the campaign: rules by rev, counters always from the hash */

    kkey = vn_key(call, ":k:", camp.data, camp.len);
    kk = RedisModule_OpenKey(call->ctx, kkey, mode);
    rev = NULL;
    red = NULL;
    giv = NULL;

    if (kk && RedisModule_HashGet(kk, REDISMODULE_HASH_NONE, vn_c.rev, &rev,
                            vn_c.camp_f[VN_CAMP_REDEEMED], &red,
                            vn_c.camp_f[VN_CAMP_GIVEN], &giv,
                            NULL)
        != REDISMODULE_OK)
    {
        return VN_DELEGATE;
    }

    rc = vn_campaign(call, kk, kkey, rev, &k, &ktmp);
    if (rc != VN_OK) {
        return rc;
    }

    /*
     * periodic and lifetime customer limits, conditions, the kinds
     * buy_x_get_y, steps, free_shipping: the library's, whole
     */

    if (k->s[K_XRULES]) {
        return VN_DELEGATE;
    }

    if (!vn_str_num(red, &redeemed)) {
        redeemed = 0;
    }

    if (!vn_str_num(giv, &given)) {
        given = 0;
    }

    if (!vn_eqc(k->s[K_STATUS], "active")) {
        v1 = vn_vstr(k->s[K_STATUS]);
        return vn_fail(call, r, "campaign_inactive", &camp, "status", &v1);
    }

    /* 5. window; the clock only when there is one */

    has_start = k->has[K_START];
    start = k->n[K_START];
    has_stop = k->has[K_END];
    stop = k->n[K_END];

    if (vn_str_num(c.f[C_F], &f) && (!has_start || f > start)) {
        start = f;
        has_start = 1;
    }

    if (vn_str_num(c.f[C_T], &t) && (!has_stop || t < stop)) {
        stop = t;
        has_stop = 1;
    }

    if (has_start || has_stop || k->s[K_DAYS] || k->s[K_HOURS]) {
        now = vn_now_s(call);

        if (has_start && now < start) {
            return vn_fail_num(call, r, "not_started", &camp, "starts_at",
                               start);
        }

        if (has_stop && now >= stop) {
            return vn_fail_num(call, r, "expired", &camp, "ends_at", stop);
        }

        if (k->s[K_DAYS] || k->s[K_HOURS]) {
            loc = now + (k->has[K_TZ] ? k->n[K_TZ] : 0) * 60;

            /* 1970-01-01 (day 0) was a Thursday, ISO day 4 */
            dow = vn_mod(floor(loc / 86400) + 3, 7) + 1;

            if (k->s[K_DAYS]) {
                plen = vn_fmt_14g(buf, dow);
                hp = RedisModule_StringPtrLen(k->s[K_DAYS], &len);

                if (plen > len || memmem(hp, len, buf, plen) == NULL) {
                    return vn_fail(call, r, "outside_window", &camp, NULL,
                                   NULL);
                }
            }

            if (k->s[K_HOURS]) {
                m = floor(vn_mod(loc, 86400) / 60);
                hp = RedisModule_StringPtrLen(k->s[K_HOURS], &len);
                dash = memchr(hp, '-', len);

                /* '^(%d+)-(%d+)$', else the library fails comparing nil */

                if (dash == NULL || dash == hp || dash == hp + len - 1) {
                    return VN_DELEGATE;
                }

                for (s = hp; s < hp + len; s++) {
                    if (s != dash && (*s < '0' || *s > '9')) {
                        return VN_DELEGATE;
                    }
                }

                if (!vn_tonumber(hp, dash - hp, &a)
                    || !vn_tonumber(dash + 1, hp + len - dash - 1, &b))
                {
                    return VN_DELEGATE;
                }

                if (!(a <= b ? (m >= a && m < b) : (m >= a || m < b))) {
                    return vn_fail(call, r, "outside_window", &camp, NULL,
                                   NULL);
                }
            }
        }
    }

    /* 6. assigned customer */

    if (c.f[C_C]) {
        if (cust.len == 0) {
            return vn_fail(call, r, "customer_required", &camp, NULL, NULL);
        }

        if (!vn_eq(c.f[C_C], cust.data, cust.len)) {
            return vn_fail(call, r, "customer_mismatch", &camp, NULL, NULL);
        }
    }

    /* 6b. campaigns for some loyalty tiers only */

    if (k->s[K_TIERS]) {
        if (cust.len == 0) {
            return vn_fail(call, r, "customer_required", &camp, NULL, NULL);
        }

        rc = vn_in_tiers(call, k->s[K_TIERS], &cust, &in);
        if (rc != VN_OK) {
            return rc;
        }

        if (!in) {
            return vn_fail(call, r, "tier_not_eligible", &camp, NULL, NULL);
        }
    }

    /* 7. uses of the code (its own m, even 0, wins over the campaign's) */

    if (!vn_str_num(c.f[C_U], &used)) {
        used = 0;
    }

    if (!vn_str_num(c.f[C_M], &max_uses)) {
        max_uses = k->has[K_CMU] ? k->n[K_CMU] : 0;
    }

    if (max_uses > 0 && used >= max_uses) {
        return vn_fail(call, r, "code_exhausted", &camp, NULL, NULL);
    }

    /* 8. gift card balance */

    kind = vn_buf(k->s[K_KIND]);
    gift = vn_eqc(k->s[K_KIND], "gift_card");
    bal = 0;

    /*
     * a gift card spends its lots, the first to expire first, and its
     * redeem writes its ledger (redis/lib/giftcard.lua): the library
     * answers it, handed the call before anything is written
     */

    if (gift) {
        return VN_DELEGATE;
    }

    /* 9. campaign redemptions */

    if (k->has[K_MAXRED] && k->n[K_MAXRED] > 0
        && redeemed >= k->n[K_MAXRED])
    {
        return vn_fail(call, r, "campaign_exhausted", &camp, NULL, NULL);
    }

    /* 10. per-customer limits */

    ukey = NULL;
    ufk = NULL;
    ufc = NULL;
    uk = NULL;
    nk = 0;
    nc = 0;

    if ((k->has[K_PC] && k->n[K_PC] > 0) || (k->has[K_PCC] && k->n[K_PCC] > 0))
    {
        if (cust.len == 0) {
            return vn_fail(call, r, "customer_required", &camp, NULL, NULL);
        }

        ukey = vn_key(call, ":u:", cust.data, cust.len);
        ufk = vn_cat(call, "k:", 2, camp.data, camp.len);
        ufc = vn_cat(call, "c:", 2, call->code.data, call->code.len);
        uk = RedisModule_OpenKey(call->ctx, ukey, mode);
        uk_v = NULL;
        uc_v = NULL;

        if (uk && RedisModule_HashGet(uk, REDISMODULE_HASH_NONE, ufk,
                                      &uk_v, ufc, &uc_v, NULL)
                  != REDISMODULE_OK)
        {
            return VN_DELEGATE;
        }

        if (!vn_str_num(uk_v, &nk)) {
            nk = 0;
        }

        if (!vn_str_num(uc_v, &nc)) {
            nc = 0;
        }

        if (k->has[K_PC] && k->n[K_PC] > 0 && nk >= k->n[K_PC]) {
            return vn_fail(call, r, "customer_limit", &camp, NULL, NULL);
        }

        if (k->has[K_PCC] && k->n[K_PCC] > 0 && nc >= k->n[K_PCC]) {
            return vn_fail(call, r, "customer_code_limit", &camp, NULL,
                           NULL);
        }
    }

    /* 11-12. currency, minimum */

    if (k->s[K_CUR] && !vn_eq(k->s[K_CUR], cur.data, cur.len)) {
        return vn_fail(call, r, "currency_mismatch", &camp, NULL, NULL);
    }

    if (amount < (k->has[K_MIN] ? k->n[K_MIN] : 0)) {
        return vn_fail_num(call, r, "order_below_minimum", &camp,
                           "min_amount", k->has[K_MIN] ? k->n[K_MIN] : 0);
    }

    /* 13. eligible base */

    has_value = k->has[K_VALUE];
    value = k->n[K_VALUE];
    filtered = k->s[K_INCS] || k->s[K_EXCS] || k->s[K_INCC] || k->s[K_EXCC];
    base = amount;
    per_item = 0;

    if (filtered) {
        if (n == 0) {
            return vn_fail(call, r, "items_required", &camp, NULL, NULL);
        }

        any_inc = k->s[K_INCS] || k->s[K_INCC];
        fixed = vn_eqc(k->s[K_KIND], "fixed_price");
        fixed_v = has_value ? value : 0;
        sum = 0;
        matched = 0;

        for (i = 7; i <= last; i += 4) {
            sku.data = vn_arg(call, i, &sku.len);
            cat.data = vn_arg(call, i + 1, &cat.len);

            if ((!any_inc || vn_listed(k->s[K_INCS], sku.data, sku.len)
                 || vn_listed(k->s[K_INCC], cat.data, cat.len))
                && !vn_listed(k->s[K_EXCS], sku.data, sku.len)
                && !vn_listed(k->s[K_EXCC], cat.data, cat.len))
            {
                matched = 1;
                s = vn_arg(call, i + 2, &len);
                vn_tonumber(s, len, &p);
                s = vn_arg(call, i + 3, &len);
                vn_tonumber(s, len, &q);

                sum = sum + p * q;
                if (sum > amount) {
                    sum = amount;
                }

                if (fixed && p > fixed_v) {
                    per_item = per_item + (p - fixed_v) * q;
                    if (per_item > amount) {
                        per_item = amount;
                    }
                }
            }
        }

        if (!matched) {
            return vn_fail(call, r, "no_matching_items", &camp, NULL, NULL);
        }

        base = sum;
    }

    /* 14. the discount */

    capped_by = NULL;
    d = 0;

    if (vn_eqc(k->s[K_KIND], "percent")) {
        if (!has_value) {
            value = 0;
            has_value = 1;
        }

        /* floor(base * bp / 10000) without exceeding 2^53 */
        lo = fmod(base, 10000);
        d = (base - lo) / 10000 * value + floor(lo * value / 10000);

    } else if (vn_eqc(k->s[K_KIND], "amount")) {
        if (!has_value) {
            value = 0;
            has_value = 1;
        }

        d = value < base ? value : base;

    } else if (vn_eqc(k->s[K_KIND], "fixed_price")) {
        if (!has_value) {
            value = 0;
            has_value = 1;
        }

        if (filtered) {
            d = per_item;

        } else {
            d = base > value ? base - value : 0;
        }

    } else if (vn_eqc(k->s[K_KIND], "free_item")) {
        if (!has_value) {
            value = 1;
            has_value = 1;
        }

        has_d = 0;

        for (i = 7; i <= last && k->s[K_FSKU]; i += 4) {
            sku.data = vn_arg(call, i, &sku.len);

            if (vn_eq(k->s[K_FSKU], sku.data, sku.len)) {
                s = vn_arg(call, i + 3, &len);
                vn_tonumber(s, len, &q);
                s = vn_arg(call, i + 2, &len);
                vn_tonumber(s, len, &p);
                d = p * (q < value ? q : value);
                has_d = 1;
                break;
            }
        }

        if (!has_d) {
            return vn_fail(call, r, "free_item_missing", &camp, NULL, NULL);
        }

    } else if (gift) {
        d = base;

        if (bal < d) {
            d = bal;
            capped_by = "balance";
        }

    } else {
        return vn_error(r, "ERR bad_campaign kind");
    }

    cap = k->has[K_CAP] ? k->n[K_CAP] : 0;

    if (cap > 0 && d > cap) {
        d = cap;
        capped_by = "cap";
    }

    if (d > amount) {
        d = amount;
        capped_by = "order_amount";
    }

    /* 15. campaign budget */

    if (k->has[K_MAXDISC] && k->n[K_MAXDISC] > 0
        && given + d > k->n[K_MAXDISC])
    {
        return vn_fail(call, r, "campaign_budget_exhausted", &camp, NULL,
                       NULL);
    }

    /* 16. loyalty points paying for what is left (a validate's) */

    if (pts >= 0) {
        rc = vn_points(call, &cust, pts, amount - d, &lpts, &why);
        if (rc != VN_OK) {
            return rc;
        }

        if (why) {
            return vn_fail(call, r, why, &camp, NULL, NULL);
        }
    }

    /* success */

    has_uses = (max_uses > 0);
    has_bal = gift;

    if (gift && redeem) {
        bal = bal - d;
    }

    memset(&r->ok, 0, sizeof(vn_ok_t));
    r->type = VN_R_OK;
    r->ok.code = call->code;
    r->ok.camp = camp;
    r->ok.cust = cust;
    r->ok.d = d;
    r->ok.kind = kind;
    r->ok.has_value = has_value;
    r->ok.value = value;
    r->ok.base = base;
    r->ok.cap = cap;

    if (capped_by) {
        r->ok.capped_by = (vn_buf_t) { capped_by, strlen(capped_by) };
    }

    r->ok.amount = amount;
    r->ok.has_uses = has_uses;
    r->ok.uses_left = max_uses - used - (redeem ? 1 : 0);
    r->ok.has_bal = has_bal;
    r->ok.bal = bal;
    r->ok.has_stop = has_stop;
    r->ok.stop = stop;

    if (pts >= 0) {
        vn_points_pairs(r, &lpts);
    }

    if (!redeem) {
        return VN_OK;
    }

    /*
     * redeem: everything that could make the library fail half-way is
     * checked before the first write, so a call the library must answer
     * is handed over whole
     */

    uk_v = NULL;
    uc_v = NULL;
    ik = 0;
    ic = 0;
    has_nk = (ukey != NULL);

    if (cust.len && ukey == NULL) {
        ukey = vn_key(call, ":u:", cust.data, cust.len);
        ufk = vn_cat(call, "k:", 2, camp.data, camp.len);
        ufc = vn_cat(call, "c:", 2, call->code.data, call->code.len);
        uk = RedisModule_OpenKey(call->ctx, ukey, mode);

        if ((uk && RedisModule_HashGet(uk, REDISMODULE_HASH_NONE, ufk,
                                       &uk_v, ufc, &uc_v, NULL)
                   != REDISMODULE_OK)
            || !vn_incrable(uk_v, &ik) || !vn_incrable(uc_v, &ic))
        {
            return VN_DELEGATE;
        }
    }

    if (vn_settings(call, &maxlen, &ttl) != VN_OK) {
        return VN_DELEGATE;
    }

    {
        RedisModuleKey  *lk;

        lk = RedisModule_OpenKey(call->ctx, vn_key(call, ":log", NULL, 0),
                                 REDISMODULE_READ);
        if (!vn_check_type(lk, REDISMODULE_KEYTYPE_STREAM)) {
            return VN_DELEGATE;
        }
    }

    if (hold_ms >= 0
        && (vn_hold_check(call, n) != VN_OK
            || (double) ik >= VN_MAXINT || (double) ic >= VN_MAXINT))
    {
        return VN_DELEGATE;
    }

    if (check) {
        return VN_OK;
    }

    /* the code's uses (and a gift card's balance) */

    x = vn_dec(call, used + 1);

    if (c.bkey) {
        vn_rstr_t  *cs, *cv;

        s = RedisModule_StringPtrLen(x, &len);
        cv = vn_cat(call, s, len, " ", 1);
        RedisModule_StringAppendBuffer(call->ctx, cv, camp.data, camp.len);

        if (c.f[C_C]) {
            s = RedisModule_StringPtrLen(c.f[C_C], &len);
            if (len) {
                RedisModule_StringAppendBuffer(call->ctx, cv, " ", 1);
                RedisModule_StringAppendBuffer(call->ctx, cv, s, len);
            }
        }

        cs = RedisModule_CreateString(call->ctx, call->code.data,
                                      call->code.len);
        vn_hset(call, c.key, c.bkey, cs, cv, NULL, NULL);

    } else if (gift) {
        vn_hset(call, c.key, call->argv[1], vn_c.code_f[C_U], x,
                vn_c.code_f[C_B], vn_dec(call, bal));

    } else {
        vn_hset(call, c.key, call->argv[1], vn_c.code_f[C_U], x, NULL, NULL);
    }

    /* the campaign's counters */

    vn_hset(call, kk, kkey, vn_c.camp_f[VN_CAMP_REDEEMED],
            vn_dec(call, redeemed + 1), vn_c.camp_f[VN_CAMP_GIVEN],
            vn_dec(call, given + d));

    /* the customer's counters: HINCRBY when they were not read */

    if (cust.len && hold_ms < 0) {
        if (has_nk) {
            vn_hset(call, uk, ukey, ufk, vn_dec(call, nk + 1), ufc,
                    vn_dec(call, nc + 1));

        } else {
            RedisModule_HashSet(uk, REDISMODULE_HASH_NONE,
                     ufk, RedisModule_CreateStringFromLongLong(call->ctx,
                                                               ik + 1),
                     NULL);
            RedisModule_Replicate(call->ctx, "HINCRBY", "ssc", ukey, ufk,
                                  "1");
            vn_touched(call, REDISMODULE_NOTIFY_HASH, "hincrby", ukey);

            RedisModule_HashSet(uk, REDISMODULE_HASH_NONE,
                     ufc, RedisModule_CreateStringFromLongLong(call->ctx,
                                                               ic + 1),
                     NULL);
            RedisModule_Replicate(call->ctx, "HINCRBY", "ssc", ukey, ufc,
                                  "1");
            vn_touched(call, REDISMODULE_NOTIFY_HASH, "hincrby", ukey);
        }
    }

    /* the audit trail */

    for (i = 0; i < 11; i++) {
        fv[2 * i] = vn_c.log_f[i];
    }

    fv[1] = vn_c.redeem;
    fv[3] = RedisModule_CreateString(call->ctx, call->code.data,
                                     call->code.len);
    fv[5] = c.f[C_K];
    fv[7] = call->argv[2 + call->off];
    fv[9] = call->argv[5 + call->off];
    fv[11] = vn_dec(call, amount);
    fv[13] = call->argv[4 + call->off];
    fv[15] = vn_dec(call, d);
    fv[17] = gift ? vn_dec(call, bal) : vn_c.empty;
    fv[19] = call->argv[6 + call->off];
    fv[21] = hold_ms >= 0 ? vn_c.hold : vn_c.empty;

    if (vn_xadd(call, maxlen, fv, id, &idlen) != VN_OK) {
        return vn_error(r, "ERR voucher: XADD failed");
    }

    id[idlen] = '\0';
    r->ok.id.data = RedisModule_PoolAlloc(call->ctx, idlen + 1);
    memcpy((char *) r->ok.id.data, id, idlen + 1);
    r->ok.id.len = idlen;

    hold_s = 0;

    if (hold_ms >= 0) {
        if (cust.len && !has_nk) {
            nk = (double) ik;
            nc = (double) ic;
        }

        deadline = (double) vn_now_ms(call) + hold_ms;
        hold_s = ceil(deadline / 1000);

        vn_hold_add(call, deadline, id, idlen, cust.len ? uk : NULL, ukey,
                    ufk, vn_dec(call, nk + 1), ufc, vn_dec(call, nc + 1));

        r->ok.has_hold = 1;
        r->ok.hold_s = hold_s;
    }

    /* the idempotency record: the answer's values */

    if (ikey) {
        vn_pack_init(&pk);
        vn_pack_str(&pk, fp.data, fp.len);
        vn_pack_str(&pk, camp.data, camp.len);
        vn_pack_num(&pk, d);
        vn_pack_str(&pk, kind.data, kind.len);

        if (has_value) {
            vn_pack_num(&pk, value);
        } else {
            vn_pack_false(&pk);
        }

        vn_pack_num(&pk, base);
        vn_pack_num(&pk, cap);

        if (capped_by) {
            vn_pack_str(&pk, capped_by, strlen(capped_by));
        } else {
            vn_pack_false(&pk);
        }

        if (has_uses) {
            vn_pack_num(&pk, r->ok.uses_left);
        } else {
            vn_pack_false(&pk);
        }

        if (has_bal) {
            vn_pack_num(&pk, bal);
        } else {
            vn_pack_false(&pk);
        }

        if (has_stop) {
            vn_pack_num(&pk, stop);
        } else {
            vn_pack_false(&pk);
        }

        vn_pack_str(&pk, id, idlen);

        if (hold_ms >= 0) {
            vn_pack_num(&pk, hold_s);
        } else {
            vn_pack_false(&pk);
        }

        rep = RedisModule_Call(call->ctx, "SET", "!sbcl", ikey, pk.buf,
                               pk.len, "PXAT",
                               vn_now_ms(call) + (long long) ttl * 1000);
        vn_pack_free(&pk);

        if (rep == NULL
            || RedisModule_CallReplyType(rep) == REDISMODULE_REPLY_ERROR)
        {
            return vn_error(r, "ERR voucher: SET failed");
        }
    }

    return VN_OK;
}


/* sweep(): phase 1 — a due reservation is the library's to give back */

int
vn_sweep_due(vn_call_t *call)
{
    double           score;
    vn_rstr_t       *e;
    RedisModuleKey  *hz;

    hz = RedisModule_OpenKey(call->ctx, vn_key(call, ":hz", NULL, 0),
                             REDISMODULE_READ);

    if (RedisModule_KeyType(hz) == REDISMODULE_KEYTYPE_EMPTY) {
        return VN_OK;
    }

    if (RedisModule_KeyType(hz) != REDISMODULE_KEYTYPE_ZSET) {
        return VN_DELEGATE;
    }

    if (RedisModule_ZsetFirstInScoreRange(hz, REDISMODULE_NEGATIVE_INFINITE,
                                          REDISMODULE_POSITIVE_INFINITE, 0, 0)
        != REDISMODULE_OK)
    {
        return VN_OK;
    }

    e = RedisModule_ZsetRangeCurrentElement(hz, &score);
    RedisModule_ZsetRangeStop(hz);
    (void) e;

    return (score <= (double) vn_now_ms(call)) ? VN_DELEGATE : VN_OK;
}


/*
 * evaluate(): key {NS}:c:<code>; args as evaluate_code(), then limits
 * (one argument each) unless read_only
 */

static int vn_limited(vn_call_t *call, vn_result_t *r, int redeem,
    double n, int nargs, double hold_ms, double pts, int from);


int
vn_evaluate(vn_call_t *call, vn_result_t *r, int redeem, int read_only,
    double hold_ms)
{
    int          rc, nargs, from;
    double       n, pts;
    size_t       len;
    const char  *s;

    if (vn_tag_of(call, ":c:", 1) != VN_OK) {
        return vn_error(r, "ERR bad_key");
    }

    s = vn_arg(call, 6, &len);

    if (!vn_uint(s, len, &n)) {
        return vn_error(r, "ERR bad_args");
    }

    if (!read_only) {
        rc = vn_sweep_due(call);
        if (rc != VN_OK) {
            return rc;
        }
    }

    if (6 + 4 * n == (double) vn_nargs(call)) {
        nargs = (int) (6 + 4 * n);
        return vn_evaluate_code(call, r, redeem, n, nargs, hold_ms, -1, 0);
    }

    /* "p<N>": pay N loyalty points with it (before any limit) */

    pts = -1;
    nargs = 0;
    from = 0;

    if (6 + 4 * n < (double) vn_nargs(call)) {
        nargs = (int) (6 + 4 * n);
        from = nargs + 1;
        s = vn_arg(call, from, &len);

        /* "m...": business data for a campaign's conditions: the library */

        if (len && s[0] == 'm') {
            return VN_DELEGATE;
        }

        if (len && s[0] == 'p') {
            if (!vn_uint(s + 1, len - 1, &pts) || pts == 0) {
                r->type = VN_R_FAIL;
                r->reason = "invalid_points";
                vn_pair_buf(r, "code", call->code.data, call->code.len);
                return VN_OK;
            }

            /* a redeem paying with points works the member: the library */

            if (redeem) {
                return VN_DELEGATE;
            }

            from++;

            if (from > vn_nargs(call)) {
                return vn_evaluate_code(call, r, redeem, n, nargs, hold_ms,
                                        pts, 0);
            }
        }
    }

    if (read_only) {
        return vn_error(r, "ERR bad_args");
    }

    return vn_limited(call, r, redeem, n, nargs, hold_ms, pts, from);
}


/*
 * With limits (args after the items): they decide first, and a refused
 * code counts towards a lockout.  The library writes the limits' state
 * before it looks at the code; so that a call it must answer is handed to
 * it before that, the code is looked at once without writing (check).
 */

static int
vn_limited(vn_call_t *call, vn_result_t *r, int redeem, double n, int nargs,
    double hold_ms, double pts, int from)
{
    int          rc;
    size_t       len;
    vn_buf_t     name;
    const char  *status, *reason;

    if (6 + 4 * n > (double) vn_nargs(call)) {
        return vn_error(r, "ERR bad_args");
    }

    if (vn_limits_safe(call, from) != VN_OK) {
        return VN_DELEGATE;
    }

    rc = vn_evaluate_code(call, r, redeem, n, nargs, hold_ms, pts, 1);
    if (rc != VN_OK) {
        return rc;
    }

    memset(r, 0, sizeof(vn_result_t));

    rc = vn_limits_apply(call, r, from, &status, &name);

    if (rc == VN_ERROR) {
        return vn_error(r, "ERR bad_args");
    }

    if (rc != VN_OK || r->type) {
        return rc;
    }

    rc = vn_evaluate_code(call, r, redeem, n, nargs, hold_ms, pts, 0);
    if (rc != VN_OK || r->type == VN_R_ERROR) {
        return rc;
    }

    reason = NULL;
    len = 0;

    if (r->type == VN_R_FAIL) {
        reason = r->reason;
        len = strlen(reason);

    } else if (r->type == VN_R_WHOLE && r->whole->len
               && r->whole->elts[0].type == VN_STR)
    {
        reason = r->whole->elts[0].str;
        len = r->whole->elts[0].len;
    }

    if (reason && vn_is_guess(reason, len)) {
        vn_lockout_count(call, from);
    }

    r->limit_status = status;
    r->limit_name = name;

    return VN_OK;
}


static int
vn_eval_command(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc,
    const char *fn, int redeem, int read_only)
{
    int          rc;
    vn_call_t    call;
    vn_result_t  r;

    vn_call_init(&call, ctx, argv, argc, fn);

    memset(&r, 0, sizeof(vn_result_t));

    rc = vn_evaluate(&call, &r, redeem, read_only, -1);

    if (rc == VN_DELEGATE) {
        return vn_delegate(&call);
    }

    return vn_reply_result(ctx, &r);
}


int
vn_cmd_validate(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc)
{
    return vn_eval_command(ctx, argv, argc,
                           VN_FN("voucher_validate"), 0, 1);
}


int
vn_cmd_redeem(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc)
{
    return vn_eval_command(ctx, argv, argc,
                           VN_FN("voucher_redeem"), 1, 0);
}


int
vn_cmd_validate_limited(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc)
{
    return vn_eval_command(ctx, argv, argc,
                           VN_FN("voucher_validate_limited"), 0, 0);
}


/*
 * voucher_guess: a code refused offline, where limits apply; the limits
 * decide, the guess counts towards a lockout, the answer is not_found
 */

static int
vn_guess(vn_call_t *call, vn_result_t *r)
{
    int          rc;
    vn_buf_t     name;
    const char  *status;

    if (vn_tag_of(call, ":c:", 1) != VN_OK) {
        return vn_error(r, "ERR bad_key");
    }

    if (vn_nargs(call) < 1) {
        return vn_error(r, "ERR bad_args");
    }

    if (vn_limits_safe(call, 1) != VN_OK) {
        return VN_DELEGATE;
    }

    rc = vn_limits_apply(call, r, 1, &status, &name);

    if (rc == VN_ERROR) {
        return vn_error(r, "ERR bad_args");
    }

    if (rc != VN_OK || r->type) {
        return rc;
    }

    vn_lockout_count(call, 1);

    r->type = VN_R_FAIL;
    r->reason = "not_found";
    vn_pair_buf(r, "code", call->code.data, call->code.len);
    r->limit_status = status;
    r->limit_name = name;

    return VN_OK;
}


int
vn_cmd_guess(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc)
{
    int          rc;
    vn_call_t    call;
    vn_result_t  r;

    vn_call_init(&call, ctx, argv, argc, VN_FN("voucher_guess"));

    memset(&r, 0, sizeof(vn_result_t));

    rc = vn_guess(&call, &r);

    if (rc == VN_DELEGATE) {
        return vn_delegate(&call);
    }

    return vn_reply_result(ctx, &r);
}
