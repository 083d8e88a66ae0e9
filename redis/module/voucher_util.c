
/*
 * Copyright (C) ngx_voucher authors
 *
 * What the library gets from Lua, done the way Lua does it: numbers are
 * doubles, read with tonumber() (glibc's strtod) and written with "%d",
 * "%.14g" (concatenation) or "%.17g" (redis.call's arguments); replies
 * turn a number into an integer with a C cast.
 */


#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "voucher.h"


/* args[i] of the library (1-based), or NULL past the last */

const char *
vn_arg(vn_call_t *call, int i, size_t *len)
{
    i += 1 + call->off;

    if (i < 2 + call->off || i >= call->argc) {
        *len = 0;
        return NULL;
    }

    return RedisModule_StringPtrLen(call->argv[i], len);
}


int
vn_nargs(vn_call_t *call)
{
    return call->argc > 2 + call->off ? call->argc - 2 - call->off : 0;
}


/* reserve's hold_ms: uint() from 1000 to 86400000 (api.reserve) */

int
vn_hold_ms(const char *p, size_t n, double *out)
{
    return vn_uint(p, n, out) && *out >= 1000 && *out <= 86400000;
}


/* uint(): "^%d+$" and at most 2^53 - 1 */

int
vn_uint(const char *p, size_t n, double *out)
{
    size_t    i;
    uint64_t  v;

    if (p == NULL || n == 0) {
        return 0;
    }

    v = 0;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }

        if (v <= (uint64_t) VN_MAXINT) {
            v = v * 10 + (uint64_t) (p[i] - '0');
        }
    }

    if (v > (uint64_t) VN_MAXINT) {
        return 0;
    }

    *out = (double) v;
    return 1;
}


/* Lua 5.1's tonumber() of a string: up to its first NUL, strtod() */

int
vn_tonumber(const char *p, size_t n, double *out)
{
    int          ok;
    char        *s, *end, buf[128];
    double       d;
    const char  *z;

    if (p == NULL) {
        return 0;
    }

    z = memchr(p, '\0', n);
    if (z) {
        n = z - p;
    }

    s = (n < sizeof(buf)) ? buf : RedisModule_Alloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';

    ok = 0;
    d = strtod(s, &end);

    if (end != s) {
        if (*end == 'x' || *end == 'X') {
            d = (double) strtoul(s, &end, 16);
        }

        while (isspace((unsigned char) *end)) {
            end++;
        }

        ok = (*end == '\0');
    }

    if (s != buf) {
        RedisModule_Free(s);
    }

    if (ok) {
        *out = d;
    }

    return ok;
}


/* tonumber(s, base), base 16 here: strtoul() */

int
vn_tonumber_base(const char *p, size_t n, int base, double *out)
{
    int            ok;
    char          *s, *end, buf[128];
    const char    *z;
    unsigned long  v;

    if (p == NULL) {
        return 0;
    }

    z = memchr(p, '\0', n);
    if (z) {
        n = z - p;
    }

    s = (n < sizeof(buf)) ? buf : RedisModule_Alloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';

    ok = 0;
    v = strtoul(s, &end, base);

    if (end != s) {
        while (isspace((unsigned char) *end)) {
            end++;
        }

        ok = (*end == '\0');
    }

    if (s != buf) {
        RedisModule_Free(s);
    }

    if (ok) {
        *out = (double) v;
    }

    return ok;
}


int
vn_str_num(vn_rstr_t *s, double *out)
{
    size_t       n;
    const char  *p;

    if (s == NULL) {
        return 0;
    }

    p = RedisModule_StringPtrLen(s, &n);

    return vn_tonumber(p, n, out);
}


/* a double as a C cast makes it an integer (x86-64 for the undefined) */

long long
vn_lua_int(double d)
{
    if (d != d || d >= 9223372036854775808.0
        || d < -9223372036854775808.0)
    {
        return LLONG_MIN;
    }

    return (long long) d;
}


/* string.format('%d', d) */

size_t
vn_fmt_dec(char *buf, double d)
{
    return (size_t) snprintf(buf, 32, "%lld", vn_lua_int(d));
}


/* a number handed to redis.call() */

size_t
vn_fmt_17g(char *buf, double d)
{
    return (size_t) snprintf(buf, 32, "%.17g", d);
}


/* a number concatenated to a string */

size_t
vn_fmt_14g(char *buf, double d)
{
    return (size_t) snprintf(buf, 32, "%.14g", d);
}


vn_rstr_t *
vn_dec(vn_call_t *call, double d)
{
    char  buf[32];

    return RedisModule_CreateString(call->ctx, buf, vn_fmt_dec(buf, d));
}


vn_rstr_t *
vn_num17(vn_call_t *call, double d)
{
    char  buf[32];

    return RedisModule_CreateString(call->ctx, buf, vn_fmt_17g(buf, d));
}


/* tag .. mid .. tail, made in one piece */

vn_rstr_t *
vn_key(vn_call_t *call, const char *mid, const char *tail, size_t len)
{
    size_t  mlen;

    mlen = strlen(mid);

    return vn_cat3(call, call->tag.data, call->tag.len, mid, mlen, tail,
                   len);
}


vn_rstr_t *
vn_cat(vn_call_t *call, const char *a, size_t alen, const char *b,
    size_t blen)
{
    return vn_cat3(call, a, alen, b, blen, NULL, 0);
}


vn_rstr_t *
vn_cat3(vn_call_t *call, const char *a, size_t alen, const char *b,
    size_t blen, const char *c, size_t clen)
{
    char        *p, buf[256];
    size_t       n;
    vn_rstr_t   *s;

    n = alen + blen + clen;
    p = (n <= sizeof(buf)) ? buf : RedisModule_Alloc(n);

    memcpy(p, a, alen);
    if (blen) {
        memcpy(p + alen, b, blen);
    }
    if (clen) {
        memcpy(p + alen + blen, c, clen);
    }

    s = RedisModule_CreateString(call->ctx, p, n);

    if (p != buf) {
        RedisModule_Free(p);
    }

    return s;
}


int
vn_eq(vn_rstr_t *s, const char *p, size_t n)
{
    size_t       len;
    const char  *q;

    if (s == NULL) {
        return 0;
    }

    q = RedisModule_StringPtrLen(s, &len);

    return len == n && (n == 0 || memcmp(p, q, n) == 0);
}


int
vn_eqc(vn_rstr_t *s, const char *cstr)
{
    return vn_eq(s, cstr, strlen(cstr));
}


vn_buf_t
vn_buf(vn_rstr_t *s)
{
    vn_buf_t  b;

    if (s == NULL) {
        b.data = NULL;
        b.len = 0;
        return b;
    }

    b.data = RedisModule_StringPtrLen(s, &b.len);

    return b;
}


/* is ",x," in a stored ",a,b," list (a plain string.find) */

int
vn_listed(vn_rstr_t *list, const char *x, size_t n)
{
    size_t       len, i;
    const char  *l;

    if (list == NULL) {
        return 0;
    }

    l = RedisModule_StringPtrLen(list, &len);

    for (i = 0; i + n + 2 <= len; i++) {
        if (l[i] == ',' && l[i + n + 1] == ','
            && (n == 0 || memcmp(l + i + 1, x, n) == 0))
        {
            return 1;
        }
    }

    return 0;
}


static int
vn_digit(int c)
{
    return c >= '0' && c <= '9';
}


/*
 * The first tier's name in a programme's tiers: the first match of
 * '([^,:]+):(%d+):(%d+)', as string.gmatch() finds it (tried at each
 * position in turn); 0 when there is none.
 */

int
vn_first_tier(const char *s, size_t len, vn_buf_t *name)
{
    size_t  i, j, k;

    for (i = 0; i < len; i++) {
        for (j = i; j < len && s[j] != ',' && s[j] != ':'; j++) {
            /* the name */
        }

        if (j == i || j == len || s[j] != ':') {
            continue;
        }

        for (k = j + 1; k < len && vn_digit((unsigned char) s[k]); k++) {
            /* the threshold */
        }

        if (k == j + 1 || k == len || s[k] != ':') {
            continue;
        }

        if (k + 1 < len && vn_digit((unsigned char) s[k + 1])) {
            name->data = s + i;
            name->len = j - i;
            return 1;
        }
    }

    return 0;
}


/* SHA-1 (redis.sha1hex) */

#define vn_rol(x, c)  (((x) << (c)) | ((x) >> (32 - (c))))

static void
vn_sha1_block(uint32_t h[5], const unsigned char *b)
{
    int       i;
    uint32_t  w[80], a, bb, c, d, e, f, k, t;

    for (i = 0; i < 16; i++) {
        w[i] = (uint32_t) b[4 * i] << 24 | (uint32_t) b[4 * i + 1] << 16
               | (uint32_t) b[4 * i + 2] << 8 | (uint32_t) b[4 * i + 3];
    }

    for (i = 16; i < 80; i++) {
        w[i] = vn_rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }

    a = h[0]; bb = h[1]; c = h[2]; d = h[3]; e = h[4];

    for (i = 0; i < 80; i++) {
        if (i < 20) {
            f = (bb & c) | (~bb & d);
            k = 0x5a827999;

        } else if (i < 40) {
            f = bb ^ c ^ d;
            k = 0x6ed9eba1;

        } else if (i < 60) {
            f = (bb & c) | (bb & d) | (c & d);
            k = 0x8f1bbcdc;

        } else {
            f = bb ^ c ^ d;
            k = 0xca62c1d6;
        }

        t = vn_rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = vn_rol(bb, 30);
        bb = a;
        a = t;
    }

    h[0] += a; h[1] += bb; h[2] += c; h[3] += d; h[4] += e;
}


void
vn_sha1hex(const char *p, size_t n, char out[41])
{
    int            j;
    size_t         i, r;
    uint32_t       h[5], v;
    uint64_t       bits;
    unsigned char  blk[64];

    static const char  hex[] = "0123456789abcdef";

    h[0] = 0x67452301; h[1] = 0xefcdab89; h[2] = 0x98badcfe;
    h[3] = 0x10325476; h[4] = 0xc3d2e1f0;

    for (i = 0; i + 64 <= n; i += 64) {
        vn_sha1_block(h, (const unsigned char *) p + i);
    }

    r = n - i;
    memset(blk, 0, sizeof(blk));
    if (r) {
        memcpy(blk, p + i, r);
    }
    blk[r] = 0x80;

    if (r >= 56) {
        vn_sha1_block(h, blk);
        memset(blk, 0, sizeof(blk));
    }

    bits = (uint64_t) n * 8;

    for (j = 0; j < 8; j++) {
        blk[63 - j] = (unsigned char) (bits >> (8 * j));
    }

    vn_sha1_block(h, blk);

    for (i = 0; i < 20; i++) {
        v = h[i / 4] >> (24 - 8 * (i % 4)) & 0xff;
        out[2 * i] = hex[v >> 4];
        out[2 * i + 1] = hex[v & 0xf];
    }

    out[40] = '\0';
}


/* replies, as Redis turns a Lua value into one */

int
vn_reply_num(RedisModuleCtx *ctx, double d)
{
    return RedisModule_ReplyWithLongLong(ctx, vn_lua_int(d));
}


/*
 * ok_reply()'s elements: 'ok', mask, code, campaign, [customer], discount,
 * kind, [value], base, [cap], [capped_by], amount, amount - discount,
 * [uses left], [balance], [expires], [redemption id], [hold expires]; the
 * caller opened the array.  Returns how many it wrote.
 */

static long long
vn_ok_mask(vn_ok_t *o)
{
    long long  m;

    m = 0;

    if (o->cust.len) {
        m |= 1;
    }

    if (o->has_value
        && !(o->kind.len == 9 && memcmp(o->kind.data, "gift_card", 9) == 0))
    {
        m += (o->kind.len == 7 && memcmp(o->kind.data, "percent", 7) == 0)
             ? 4 : 2;
    }

    if (o->cap > 0) {
        m += 8;
    }

    if (o->capped_by.data) {
        m += 16;
    }

    if (o->has_uses) {
        m += 32;
    }

    if (o->has_bal) {
        m += 64;
    }

    if (o->has_stop) {
        m += 128;
    }

    if (o->id.data) {
        m += 256;
    }

    if (o->has_hold) {
        m += 512;
    }

    return m;
}


/* how many elements vn_reply_ok() writes */

long
vn_ok_len(vn_ok_t *o)
{
    long       n;
    long long  m, b;

    m = vn_ok_mask(o);
    n = 9;

    for (b = 1; b <= 512; b <<= 1) {
        if ((m & b) && b != 4) {
            n++;
        }
    }

    /* 2 and 4 are one value */
    if ((m & 4) && !(m & 2)) {
        n++;
    }

    return n;
}


long
vn_reply_ok(RedisModuleCtx *ctx, vn_ok_t *o)
{
    long       n;
    long long  m;

    m = vn_ok_mask(o);

    RedisModule_ReplyWithStringBuffer(ctx, "ok", 2);
    RedisModule_ReplyWithLongLong(ctx, o->replay ? m + 1024 : m);
    RedisModule_ReplyWithStringBuffer(ctx, o->code.data, o->code.len);
    RedisModule_ReplyWithStringBuffer(ctx, o->camp.data, o->camp.len);
    n = 4;

    if (m & 1) {
        RedisModule_ReplyWithStringBuffer(ctx, o->cust.data, o->cust.len);
        n++;
    }

    vn_reply_num(ctx, o->d);
    RedisModule_ReplyWithStringBuffer(ctx, o->kind.data, o->kind.len);
    n += 2;

    if (m & 6) {
        vn_reply_num(ctx, o->value);
        n++;
    }

    vn_reply_num(ctx, o->base);
    n++;

    if (m & 8) {
        vn_reply_num(ctx, o->cap);
        n++;
    }

    if (m & 16) {
        RedisModule_ReplyWithStringBuffer(ctx, o->capped_by.data,
                                          o->capped_by.len);
        n++;
    }

    vn_reply_num(ctx, o->amount);
    vn_reply_num(ctx, o->amount - o->d);
    n += 2;

    if (m & 32) {
        vn_reply_num(ctx, o->uses_left);
        n++;
    }

    if (m & 64) {
        vn_reply_num(ctx, o->bal);
        n++;
    }

    if (m & 128) {
        vn_reply_num(ctx, o->stop);
        n++;
    }

    if (m & 256) {
        RedisModule_ReplyWithStringBuffer(ctx, o->id.data, o->id.len);
        n++;
    }

    if (m & 512) {
        vn_reply_num(ctx, o->hold_s);
        n++;
    }

    return n;
}


int
vn_reply_val(RedisModuleCtx *ctx, vn_val_t *v)
{
    size_t  i;

    switch (v->type) {

    case VN_NUM:
        return vn_reply_num(ctx, v->num);

    case VN_STR:
        return RedisModule_ReplyWithStringBuffer(ctx, v->str, v->len);

    case VN_TRUE:
        return RedisModule_ReplyWithLongLong(ctx, 1);

    case VN_ARR:
        RedisModule_ReplyWithArray(ctx, v->len);

        for (i = 0; i < v->len; i++) {
            vn_reply_val(ctx, &v->elts[i]);
        }

        return REDISMODULE_OK;

    default:
        return RedisModule_ReplyWithNull(ctx);
    }
}


int
vn_reply_result(RedisModuleCtx *ctx, vn_result_t *r)
{
    int    i;
    long   n;
    size_t j;

    if (r->type == VN_R_ERROR) {
        return RedisModule_ReplyWithError(ctx, r->reason);
    }

    /* the length first: a postponed one costs Redis a copy */

    if (r->type == VN_R_OK) {
        n = vn_ok_len(&r->ok);

    } else if (r->type == VN_R_WHOLE) {
        n = (long) r->whole->len;

    } else {
        n = 1;
    }

    n += 2 * r->npairs;

    if (r->limit_status && !r->stopped) {
        n += r->limit_name.data ? 4 : 2;
    }

    RedisModule_ReplyWithArray(ctx, n);

    if (r->type == VN_R_OK) {
        n = vn_reply_ok(ctx, &r->ok);

    } else if (r->type == VN_R_WHOLE) {
        for (j = 0; j < r->whole->len; j++) {
            vn_reply_val(ctx, &r->whole->elts[j]);
        }

        n = (long) r->whole->len;

    } else {
        RedisModule_ReplyWithCString(ctx, r->reason);
        n = 1;
    }

    for (i = 0; i < r->npairs; i++) {
        RedisModule_ReplyWithCString(ctx, r->pairs[i].k);
        vn_reply_val(ctx, &r->pairs[i].v);
        n += 2;
    }

    /*
     * a refusal whose last value was nil ({..., nil, false}): the pairs
     * the library adds go after it, and Redis stops at the nil
     */

    if (r->limit_status && !r->stopped) {
        RedisModule_ReplyWithStringBuffer(ctx, "_limit", 6);
        RedisModule_ReplyWithCString(ctx, r->limit_status);
        n += 2;

        if (r->limit_name.data) {
            RedisModule_ReplyWithStringBuffer(ctx, "_limit_name", 11);
            RedisModule_ReplyWithStringBuffer(ctx, r->limit_name.data,
                                              r->limit_name.len);
            n += 2;
        }
    }

    return REDISMODULE_OK;
}


int
vn_error(vn_result_t *r, const char *text)
{
    r->type = VN_R_ERROR;
    r->reason = text;

    return VN_OK;
}


/* a pair of a refusal; a nil value ends the Lua table there */

void
vn_pair(vn_result_t *r, const char *k, vn_val_t *v)
{
    if (r->stopped || v->type == VN_NIL
        || r->npairs == (int) (sizeof(r->pairs) / sizeof(r->pairs[0])))
    {
        r->stopped = 1;
        return;
    }

    r->pairs[r->npairs].k = k;
    r->pairs[r->npairs].v = *v;
    r->npairs++;
}


void
vn_pair_buf(vn_result_t *r, const char *k, const char *p, size_t n)
{
    vn_val_t  v;

    v = vn_vbuf(p, n);
    vn_pair(r, k, &v);
}


void
vn_pair_num(vn_result_t *r, const char *k, double d)
{
    vn_val_t  v;

    v = vn_vnum(d);
    vn_pair(r, k, &v);
}


vn_val_t
vn_vnum(double d)
{
    vn_val_t  v;

    memset(&v, 0, sizeof(v));
    v.type = VN_NUM;
    v.num = d;

    return v;
}


vn_val_t
vn_vbuf(const char *p, size_t n)
{
    vn_val_t  v;

    memset(&v, 0, sizeof(v));

    if (p) {
        v.type = VN_STR;
        v.str = p;
        v.len = n;
    }

    return v;
}


vn_val_t
vn_vstr(vn_rstr_t *s)
{
    size_t       n;
    const char  *p;

    if (s == NULL) {
        return vn_vbuf(NULL, 0);
    }

    p = RedisModule_StringPtrLen(s, &n);

    return vn_vbuf(p, n);
}
