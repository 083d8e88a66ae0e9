
/*
 * Copyright (C) ngx_voucher authors
 *
 * What validate reads of the loyalty programme (redis/lib/loyalty.lua):
 * the programme's status, point value and tiers (L.prog()), a member's
 * tier for campaigns limited to tiers (L.in_tiers()), and points paying
 * at checkout as a validate reads them (L.pay() without redeem).  Only
 * voucher_loyalty_set changes a programme, and it drops the library's
 * cached copy, so what is read here is what the library holds.
 */


#include <math.h>

#include "voucher.h"


/* L.prog(): VN_DELEGATE when {NS}:lp is not a hash */

static int
vn_lp_read(vn_call_t *call, vn_lp_t *lp)
{
    int              i;
    RedisModuleKey  *k;

    for (i = 0; i < VN_LP_F; i++) {
        lp->f[i] = NULL;
    }

    k = RedisModule_OpenKey(call->ctx, vn_key(call, ":lp", NULL, 0),
                            REDISMODULE_READ);

    if (k && RedisModule_KeyType(k) != REDISMODULE_KEYTYPE_EMPTY) {
        if (RedisModule_KeyType(k) != REDISMODULE_KEYTYPE_HASH
            || RedisModule_HashGet(k, REDISMODULE_HASH_NONE,
                                   vn_c.lp_f[VN_LP_STATUS],
                                   &lp->f[VN_LP_STATUS],
                                   vn_c.lp_f[VN_LP_VALUE],
                                   &lp->f[VN_LP_VALUE],
                                   vn_c.lp_f[VN_LP_TIERS],
                                   &lp->f[VN_LP_TIERS], NULL)
               != REDISMODULE_OK)
        {
            return VN_DELEGATE;
        }
    }

    /* no status, no programme */

    lp->has = (lp->f[VN_LP_STATUS] != NULL);

    if (!vn_str_num(lp->f[VN_LP_VALUE], &lp->point_value)) {
        lp->point_value = 0;
    }

    return VN_OK;
}


/* a member's field: VN_DELEGATE when {NS}:lm:<member> is not a hash */

static int
vn_lm_get(vn_call_t *call, vn_buf_t *member, vn_rstr_t *field,
    vn_rstr_t **v)
{
    RedisModuleKey  *k;

    *v = NULL;

    k = RedisModule_OpenKey(call->ctx,
                            vn_key(call, ":lm:", member->data, member->len),
                            REDISMODULE_READ);

    if (k == NULL || RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_EMPTY) {
        return VN_OK;
    }

    if (RedisModule_KeyType(k) != REDISMODULE_KEYTYPE_HASH
        || RedisModule_HashGet(k, REDISMODULE_HASH_NONE, field, v, NULL)
           != REDISMODULE_OK)
    {
        return VN_DELEGATE;
    }

    return VN_OK;
}


/*
 * L.in_tiers(): is the customer in one of the tiers of list (",a,b,");
 * a member not yet in the programme is in its first tier
 */

int
vn_in_tiers(vn_call_t *call, vn_rstr_t *list, vn_buf_t *cust, int *in)
{
    int        rc;
    vn_lp_t    lp;
    vn_buf_t   t;
    vn_rstr_t *tier;

    *in = 0;

    rc = vn_lm_get(call, cust, vn_c.lm_tier, &tier);
    if (rc != VN_OK) {
        return rc;
    }

    if (tier) {
        t = vn_buf(tier);

    } else {
        rc = vn_lp_read(call, &lp);
        if (rc != VN_OK) {
            return rc;
        }

        if (!lp.has || lp.f[VN_LP_TIERS] == NULL) {
            return VN_OK;
        }

        t = vn_buf(lp.f[VN_LP_TIERS]);

        if (!vn_first_tier(t.data, t.len, &t)) {
            return VN_OK;
        }
    }

    *in = vn_listed(list, t.data, t.len);

    return VN_OK;
}


/*
 * L.pay() of a validate: what pts points pay of left (the order after the
 * discount) at the programme's point value, never more than left; the
 * member's active points are read, nothing is worked.  *why: the refusal.
 */

int
vn_points(vn_call_t *call, vn_buf_t *cust, double pts, double left,
    vn_points_t *out, const char **why)
{
    int         rc;
    double      most;
    vn_lp_t     lp;
    vn_rstr_t  *act;

    *why = NULL;

    rc = vn_lp_read(call, &lp);
    if (rc != VN_OK) {
        return rc;
    }

    if (!lp.has) {
        *why = "no_programme";
        return VN_OK;
    }

    if (lp.point_value == 0) {
        *why = "points_not_accepted";
        return VN_OK;
    }

    if (cust->len == 0) {
        *why = "customer_required";
        return VN_OK;
    }

    rc = vn_lm_get(call, cust, vn_c.lm_act, &act);
    if (rc != VN_OK) {
        return rc;
    }

    if (!vn_str_num(act, &out->active)) {
        out->active = 0;
    }

    if (pts > out->active) {
        *why = "insufficient_points";
        return VN_OK;
    }

    most = floor(left / lp.point_value);
    out->used = pts < most ? pts : most;
    out->value = out->used * lp.point_value;
    out->left = left;

    return VN_OK;
}


/* L.pay_pairs() */

void
vn_points_pairs(vn_result_t *r, vn_points_t *p)
{
    vn_pair_num(r, "points_used", p->used);
    vn_pair_num(r, "points_value", p->value);
    vn_pair_num(r, "amount_due", p->left - p->value);
    vn_pair_num(r, "points_balance", p->active - p->used);
}
