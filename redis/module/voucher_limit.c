
/*
 * Copyright (C) ngx_voucher authors
 *
 * Rate limits and lockouts, as the library's limit_field(), limit_check(),
 * limits_apply() and lockout_count() do them: a rate is a GCRA whose TAT
 * (us) is kept in hexadecimal; a lockout counts refused codes in a window
 * and bans the key at the threshold.
 */


#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "voucher.h"


typedef struct {
    int        kind;          /* 'r' or 'l' */
    int        dry;
    vn_buf_t   nk;            /* "<name>:<key>" */
    double     a;
    double     b;
    double     c;
} vn_limit_t;


static int
vn_hex(int ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')
           || (ch >= 'A' && ch <= 'F');
}


/* a run of digits (hex: hex digits) ending in ':'; its end, or NULL */

static const char *
vn_digits(const char *p, const char *e, int hex)
{
    const char  *s;

    s = p;

    while (p < e && (hex ? vn_hex((unsigned char) *p)
                         : (*p >= '0' && *p <= '9')))
    {
        p++;
    }

    return (p > s && p < e && *p == ':') ? p : NULL;
}


/* "([^:]+:.*)": a name of one byte or more, then ':' */

static int
vn_name_key(const char *p, const char *e)
{
    const char  *colon;

    colon = memchr(p, ':', e - p);

    return colon != NULL && colon > p;
}


/* limit_field(): 1 and the limit, or 0 when malformed */

static int
vn_limit_field(const char *p, size_t n, vn_limit_t *l)
{
    const char  *e, *x, *y, *z;

    if (n < 1) {
        return 0;
    }

    e = p + n;

    if (p[0] == 'r' || p[0] == 'R') {
        x = vn_digits(p + 1, e, 1);
        y = x ? vn_digits(x + 1, e, 1) : NULL;

        if (y == NULL || !vn_name_key(y + 1, e)) {
            return 0;
        }

        l->kind = 'r';
        l->dry = (p[0] == 'R');
        l->nk.data = y + 1;
        l->nk.len = e - y - 1;

        if (!vn_tonumber_base(p + 1, x - p - 1, 16, &l->a)
            || !vn_tonumber_base(x + 1, y - x - 1, 16, &l->b))
        {
            return 0;
        }

        return !(l->a < 1 || l->a > VN_MAXINT || l->b > VN_MAXINT);
    }

    if (p[0] == 'l' || p[0] == 'L') {
        x = vn_digits(p + 1, e, 0);
        y = x ? vn_digits(x + 1, e, 0) : NULL;
        z = y ? vn_digits(y + 1, e, 0) : NULL;

        if (z == NULL || !vn_name_key(z + 1, e)) {
            return 0;
        }

        l->kind = 'l';
        l->dry = (p[0] == 'L');
        l->nk.data = z + 1;
        l->nk.len = e - z - 1;

        if (!vn_tonumber(p + 1, x - p - 1, &l->a)
            || !vn_tonumber(x + 1, y - x - 1, &l->b)
            || !vn_tonumber(y + 1, z - y - 1, &l->c))
        {
            return 0;
        }

        return !(l->a < 1 || l->b < 1 || l->c < 1 || l->a > VN_MAXINT
                 || l->b > VN_MAXINT || l->c > VN_MAXINT);
    }

    return 0;
}


/* the name in "<name>:<key>" */

static vn_buf_t
vn_limit_name(vn_buf_t nk)
{
    const char  *colon;

    colon = memchr(nk.data, ':', nk.len);
    nk.len = colon - nk.data;

    return nk;
}


/*
 * What the library would fail on half-way, checked before anything is
 * written: a rate's state that GET cannot read, a lockout count that INCR
 * cannot add to.  VN_DELEGATE then.
 */

int
vn_limits_safe(vn_call_t *call, int from)
{
    int                    i, nargs;
    size_t                 n, len;
    long long              v;
    const char            *p;
    vn_limit_t             l;
    vn_rstr_t             *key;
    RedisModuleKey        *k;
    RedisModuleCallReply  *rep;

    nargs = vn_nargs(call);

    for (i = from; i <= nargs; i++) {
        p = vn_arg(call, i, &n);

        if (!vn_limit_field(p, n, &l)) {
            continue;
        }

        key = vn_key(call, l.kind == 'r' ? ":rt:" : ":lf:", l.nk.data,
                     l.nk.len);
        k = RedisModule_OpenKey(call->ctx, key, REDISMODULE_READ);

        if (!vn_check_type(k, REDISMODULE_KEYTYPE_STRING)) {
            return VN_DELEGATE;
        }

        if (l.kind == 'l' && RedisModule_KeyType(k)
                             == REDISMODULE_KEYTYPE_STRING)
        {
            rep = RedisModule_Call(call->ctx, "GET", "!s", key);

            if (rep == NULL
                || RedisModule_CallReplyType(rep) != REDISMODULE_REPLY_STRING)
            {
                return VN_DELEGATE;
            }

            p = RedisModule_CallReplyStringPtr(rep, &len);
            key = RedisModule_CreateString(call->ctx, p, len);

            if (RedisModule_StringToLongLong(key, &v) != REDISMODULE_OK
                || v == LLONG_MAX)
            {
                return VN_DELEGATE;
            }
        }
    }

    return VN_OK;
}


/* SET key <tat, hex> KEEPTTL, or PXAT the end of the TAT's second */

static int
vn_limit_charge(vn_call_t *call, vn_rstr_t *key, double tat, int keep)
{
    char                   hex[32], at[32];
    RedisModuleCallReply  *rep;

    snprintf(hex, sizeof(hex), "%llx",
             (unsigned long long) vn_lua_int(tat));

    if (keep) {
        rep = RedisModule_Call(call->ctx, "SET", "!scc", key, hex,
                               "KEEPTTL");

    } else {
        vn_fmt_dec(at, (tat - fmod(tat, 1000000)) / 1000 + 1000);
        rep = RedisModule_Call(call->ctx, "SET", "!sccc", key, hex, "PXAT",
                               at);
    }

    return (rep && RedisModule_CallReplyType(rep) != REDISMODULE_REPLY_ERROR)
           ? VN_OK : VN_ERROR;
}


/*
 * limits_apply() over args[from..]: VN_OK with r filled when a limit
 * refuses; VN_OK with *status (and *name) when they pass or only a dry
 * run refuses; VN_ERROR when an argument is malformed (nothing written).
 */

int
vn_limits_apply(vn_call_t *call, vn_result_t *r, int from,
    const char **status, vn_buf_t *name)
{
    int                    i, nargs, dry, nmore, lname_set, rname_set;
    int                    keep[16];
    size_t                 n, len;
    double                 now, old, tat, tau, lttl, rretry;
    double                 tats[16];
    long long              ttl;
    vn_buf_t               lname, rname;
    vn_limit_t             l;
    vn_rstr_t             *keys[16], *key;
    const char            *p;
    RedisModuleKey        *k;
    RedisModuleCallReply  *rep;

    nargs = vn_nargs(call);

    if (from > nargs || nargs - from + 1 > 16) {
        if (from > nargs) {
            return VN_ERROR;
        }

        /* more limits than nginx sends: the library's */
        return VN_DELEGATE;
    }

    now = (double) vn_now_us(call);

    dry = 0;
    nmore = 0;
    lname_set = 0;
    rname_set = 0;
    lttl = 0;
    rretry = 0;
    lname.data = NULL;
    lname.len = 0;
    rname = lname;

    for (i = from; i <= nargs; i++) {
        p = vn_arg(call, i, &n);

        if (!vn_limit_field(p, n, &l) || (i > from && l.dry != dry)) {
            return VN_ERROR;
        }

        dry = l.dry;

        if (l.kind == 'l') {
            if (!lname_set) {
                key = vn_key(call, ":lb:", l.nk.data, l.nk.len);
                k = RedisModule_OpenKey(call->ctx, key, REDISMODULE_READ);
                ttl = (k == NULL) ? -2 : RedisModule_GetExpire(k);

                if (ttl > 0) {
                    lname_set = 1;
                    lname = l.nk;
                    lttl = (double) ttl;
                }
            }

        } else if (!rname_set && !lname_set) {
            key = vn_key(call, ":rt:", l.nk.data, l.nk.len);
            rep = RedisModule_Call(call->ctx, "GET", "!s", key);

            if (rep == NULL) {
                return VN_DELEGATE;
            }

            old = -1;

            if (RedisModule_CallReplyType(rep) == REDISMODULE_REPLY_STRING) {
                p = RedisModule_CallReplyStringPtr(rep, &len);
                if (!vn_tonumber_base(p, len, 16, &old)) {
                    old = -1;
                }

            } else if (RedisModule_CallReplyType(rep)
                       != REDISMODULE_REPLY_NULL)
            {
                return VN_DELEGATE;
            }

            tat = (old >= 0) ? old : now;
            if (tat < now) {
                tat = now;
            }

            tau = l.a * l.b;

            if (tat - now > tau) {
                rname_set = 1;
                rname = l.nk;
                rretry = ceil((tat - tau - now) / 1000);

            } else {
                tat = tat + l.a;
                keys[nmore] = key;
                tats[nmore] = tat;
                keep[nmore] = (old >= 0
                               && tat - fmod(tat, 1000000)
                                  == old - fmod(old, 1000000));
                nmore++;
            }
        }
    }

    if (lname_set || rname_set) {
        *name = vn_limit_name(lname_set ? lname : rname);
        *status = lname_set ? "LOCKED" : "REJECTED";

        if (dry) {
            *status = lname_set ? "LOCKED_DRY_RUN" : "REJECTED_DRY_RUN";
            return VN_OK;
        }

        r->type = VN_R_FAIL;
        r->reason = lname_set ? "locked_out" : "rate_limited";
        vn_pair_buf(r, "code", call->code.data, call->code.len);
        vn_pair_buf(r, "limit", name->data, name->len);
        vn_pair_num(r, "retry_after_ms", lname_set ? lttl : rretry);
        r->limit_status = *status;
        r->limit_name.data = NULL;

        return VN_OK;
    }

    for (i = 0; i < nmore; i++) {
        if (vn_limit_charge(call, keys[i], tats[i], keep[i]) != VN_OK) {
            return VN_ERROR;
        }
    }

    *status = "PASSED";
    name->data = NULL;
    name->len = 0;

    return VN_OK;
}


/* lockout_count(): a refused code from these keys */

void
vn_lockout_count(vn_call_t *call, int from)
{
    int                    i, nargs;
    char                   num[32];
    size_t                 n;
    long long              cnt;
    vn_limit_t             l;
    vn_rstr_t             *ckey;
    const char            *p;
    RedisModuleCallReply  *rep;

    nargs = vn_nargs(call);

    for (i = from; i <= nargs; i++) {
        p = vn_arg(call, i, &n);

        if (!vn_limit_field(p, n, &l) || l.kind != 'l') {
            continue;
        }

        ckey = vn_key(call, ":lf:", l.nk.data, l.nk.len);
        rep = RedisModule_Call(call->ctx, "INCR", "!s", ckey);

        if (rep == NULL
            || RedisModule_CallReplyType(rep) != REDISMODULE_REPLY_INTEGER)
        {
            continue;
        }

        cnt = RedisModule_CallReplyInteger(rep);

        if (cnt == 1) {
            vn_fmt_17g(num, l.b);
            RedisModule_Call(call->ctx, "PEXPIRE", "!sc", ckey, num);
        }

        if ((double) cnt >= l.a) {
            vn_fmt_17g(num, l.c);
            RedisModule_Call(call->ctx, "SET", "!sccc",
                             vn_key(call, ":lb:", l.nk.data, l.nk.len), "1",
                             "PX", num);
            RedisModule_Call(call->ctx, "DEL", "!s", ckey);
        }
    }
}


/* refused codes that count as a guess towards a lockout */

int
vn_is_guess(const char *reason, size_t len)
{
    static const char  *guess[] = { "not_found", "code_inactive", "expired",
                                    "not_started", "customer_mismatch",
                                    "campaign_inactive", NULL };
    int  i;

    for (i = 0; guess[i]; i++) {
        if (strlen(guess[i]) == len && memcmp(guess[i], reason, len) == 0) {
            return 1;
        }
    }

    return 0;
}
