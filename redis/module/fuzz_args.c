
/*
 * Copyright (C) ngx_voucher authors
 *
 * libFuzzer: what the module reads from bytes it does not control, outside
 * Redis: idempotency records (vn_unpack()), numbers as Lua reads them
 * (vn_tonumber(), vn_uint(), base 16, reserve's hold_ms), SHA-1, the first tier of a
 * programme's tiers (the name it finds must be followed by ":digits:digit"
 * and no earlier position may match).  A record that unpacks is packed
 * again and must give the same values.  The commands' argument
 * handling runs inside Redis: t/tools/native_diff.py sends malformed calls.
 */


#include <stdlib.h>

#include "voucher.h"


static void *
fz_alloc(size_t n)
{
    return malloc(n);
}


static void
fz_free(void *p)
{
    free(p);
}


static void
fz_repack(vn_pack_t *pk, vn_val_t *v)
{
    size_t  i;

    switch (v->type) {

    case VN_NUM:
        vn_pack_num(pk, v->num);
        break;

    case VN_STR:
        vn_pack_str(pk, v->str, v->len);
        break;

    case VN_ARR:
        vn_pack_array(pk, v->len);
        for (i = 0; i < v->len; i++) {
            fz_repack(pk, &v->elts[i]);
        }
        break;

    default:
        vn_pack_false(pk);
    }
}


static int
fz_same(vn_val_t *a, vn_val_t *b)
{
    size_t  i;

    if (a->type != b->type) {
        /* records never hold true: it is packed as false here */
        return a->type == VN_TRUE && b->type == VN_NIL;
    }

    switch (a->type) {

    case VN_NUM:
        return a->num == b->num || (a->num != a->num && b->num != b->num);

    case VN_STR:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;

    case VN_ARR:
        if (a->len != b->len) {
            return 0;
        }
        for (i = 0; i < a->len; i++) {
            if (!fz_same(&a->elts[i], &b->elts[i])) {
                return 0;
            }
        }
        return 1;

    default:
        return 1;
    }
}


/* '^[^,:]+:%d+:%d' at s[i..] */

static int
fz_tier_at(const char *s, size_t len, size_t i, size_t *name_end)
{
    size_t  j, k;

    for (j = i; j < len && s[j] != ',' && s[j] != ':'; j++) { }

    if (j == i || j >= len || s[j] != ':') {
        return 0;
    }

    for (k = j + 1; k < len && s[k] >= '0' && s[k] <= '9'; k++) { }

    if (k == j + 1 || k + 1 >= len || s[k] != ':'
        || s[k + 1] < '0' || s[k + 1] > '9')
    {
        return 0;
    }

    *name_end = j;

    return 1;
}


static void
fz_first_tier(const char *s, size_t len)
{
    size_t    i, end;
    vn_buf_t  t;

    if (!vn_first_tier(s, len, &t)) {
        for (i = 0; i < len; i++) {
            if (fz_tier_at(s, len, i, &end)) {
                abort();
            }
        }

        return;
    }

    if (t.data < s || t.data + t.len > s + len || t.len == 0
        || !fz_tier_at(s, len, t.data - s, &end)
        || end != (size_t) (t.data - s) + t.len)
    {
        abort();
    }

    for (i = 0; i < (size_t) (t.data - s); i++) {
        if (fz_tier_at(s, len, i, &end)) {
            abort();
        }
    }
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int        i, n, m;
    char       sha[41];
    double     d;
    vn_val_t   v[16], pool[64], w[16], wpool[64];
    vn_pack_t  pk;

    RedisModule_Alloc = fz_alloc;
    RedisModule_Free = fz_free;

    (void) vn_tonumber((const char *) data, size, &d);
    (void) vn_tonumber_base((const char *) data, size, 16, &d);
    (void) vn_uint((const char *) data, size, &d);

    /* reserve's hold_ms: a uint, in its range */
    if (vn_hold_ms((const char *) data, size, &d)
        && (d < 1000 || d > 86400000 || !vn_uint((const char *) data, size,
                                                 &d)))
    {
        abort();
    }
    vn_sha1hex((const char *) data, size, sha);
    fz_first_tier((const char *) data, size);

    n = vn_unpack((const char *) data, size, v, 16, pool, 64);
    if (n < 0) {
        return 0;
    }

    vn_pack_init(&pk);

    for (i = 0; i < n; i++) {
        fz_repack(&pk, &v[i]);
    }

    m = vn_unpack(pk.buf, pk.len, w, 16, wpool, 64);

    if (m != n) {
        abort();
    }

    for (i = 0; i < n; i++) {
        if (!fz_same(&v[i], &w[i])) {
            abort();
        }
    }

    vn_pack_free(&pk);

    return 0;
}
