
/*
 * Copyright (C) ngx_voucher authors
 *
 * Idempotency records in the bytes of Redis' lua_cmsgpack: a number that
 * is an integer packs as the smallest integer type, any other as a float
 * or double; strings are fixstr, str8, str16 or str32; a Lua array is an
 * array.  Unpacking gives what cmsgpack.unpack() would give Lua, for the
 * values records hold (no maps).
 */


#include <math.h>

#include "voucher.h"


void
vn_pack_init(vn_pack_t *p)
{
    p->buf = p->stack;
    p->len = 0;
    p->size = sizeof(p->stack);
}


void
vn_pack_free(vn_pack_t *p)
{
    if (p->buf != p->stack) {
        RedisModule_Free(p->buf);
    }

    p->buf = p->stack;
}


static void
vn_pack_put(vn_pack_t *p, const void *data, size_t n)
{
    char    *b;
    size_t   size;

    if (p->len + n > p->size) {
        size = 2 * (p->len + n);
        b = RedisModule_Alloc(size);
        memcpy(b, p->buf, p->len);

        if (p->buf != p->stack) {
            RedisModule_Free(p->buf);
        }

        p->buf = b;
        p->size = size;
    }

    if (n) {
        memcpy(p->buf + p->len, data, n);
        p->len += n;
    }
}


/* big-endian, n bytes */

static void
vn_pack_be(unsigned char *b, uint64_t v, int n)
{
    int  i;

    for (i = n - 1; i >= 0; i--) {
        b[i] = (unsigned char) (v & 0xff);
        v >>= 8;
    }
}


int
vn_pack_str(vn_pack_t *p, const char *s, size_t n)
{
    unsigned char  h[5];
    size_t         hl;

    if (n < 32) {
        h[0] = (unsigned char) (0xa0 | n);
        hl = 1;

    } else if (n <= 0xff) {
        h[0] = 0xd9;
        h[1] = (unsigned char) n;
        hl = 2;

    } else if (n <= 0xffff) {
        h[0] = 0xda;
        vn_pack_be(h + 1, n, 2);
        hl = 3;

    } else {
        h[0] = 0xdb;
        vn_pack_be(h + 1, n, 4);
        hl = 5;
    }

    vn_pack_put(p, h, hl);
    vn_pack_put(p, s, n);

    return VN_OK;
}


static void
vn_pack_int(vn_pack_t *p, int64_t n)
{
    unsigned char  b[9];
    size_t         len;

    if (n >= 0) {
        if (n <= 127) {
            b[0] = (unsigned char) n;
            len = 1;

        } else if (n <= 0xff) {
            b[0] = 0xcc;
            len = 2;

        } else if (n <= 0xffff) {
            b[0] = 0xcd;
            len = 3;

        } else if (n <= 0xffffffffLL) {
            b[0] = 0xce;
            len = 5;

        } else {
            b[0] = 0xcf;
            len = 9;
        }

    } else {
        if (n >= -32) {
            b[0] = (unsigned char) (signed char) n;
            len = 1;

        } else if (n >= -128) {
            b[0] = 0xd0;
            len = 2;

        } else if (n >= -32768) {
            b[0] = 0xd1;
            len = 3;

        } else if (n >= -2147483648LL) {
            b[0] = 0xd2;
            len = 5;

        } else {
            b[0] = 0xd3;
            len = 9;
        }
    }

    if (len > 1) {
        vn_pack_be(b + 1, (uint64_t) n, (int) len - 1);
    }

    vn_pack_put(p, b, len);
}


int
vn_pack_num(vn_pack_t *p, double d)
{
    float          f;
    uint32_t       u32;
    uint64_t       u64;
    unsigned char  b[9];

    /* IS_INT64_EQUIVALENT(): then lua_tointeger(), a ptrdiff_t */

    if (!isinf(d) && d == d && d >= -9223372036854775808.0
        && d < 9223372036854775808.0 && (double) (int64_t) d == d)
    {
        vn_pack_int(p, (int64_t) d);
        return VN_OK;
    }

    f = (float) d;

    if (d == (double) f) {
        b[0] = 0xca;
        memcpy(&u32, &f, 4);
        vn_pack_be(b + 1, u32, 4);
        vn_pack_put(p, b, 5);
        return VN_OK;
    }

    b[0] = 0xcb;
    memcpy(&u64, &d, 8);
    vn_pack_be(b + 1, u64, 8);
    vn_pack_put(p, b, 9);

    return VN_OK;
}


int
vn_pack_false(vn_pack_t *p)
{
    unsigned char  c = 0xc2;

    vn_pack_put(p, &c, 1);

    return VN_OK;
}


int
vn_pack_array(vn_pack_t *p, size_t n)
{
    unsigned char  h[5];

    if (n <= 15) {
        h[0] = (unsigned char) (0x90 | n);
        vn_pack_put(p, h, 1);

    } else if (n <= 0xffff) {
        h[0] = 0xdc;
        vn_pack_be(h + 1, n, 2);
        vn_pack_put(p, h, 3);

    } else {
        h[0] = 0xdd;
        vn_pack_be(h + 1, n, 4);
        vn_pack_put(p, h, 5);
    }

    return VN_OK;
}


/* unpacking */

typedef struct {
    const unsigned char  *pos;
    const unsigned char  *end;
    vn_val_t             *pool;
    int                   npool;
    int                   used;
} vn_unpack_t;


static uint64_t
vn_unpack_be(const unsigned char *b, int n)
{
    int       i;
    uint64_t  v;

    v = 0;

    for (i = 0; i < n; i++) {
        v = v << 8 | b[i];
    }

    return v;
}


static int
vn_unpack_one(vn_unpack_t *u, vn_val_t *v, int depth)
{
    int            c, w;
    float          f;
    double         d;
    size_t         n, i;
    uint32_t       u32;
    uint64_t       x;
    const unsigned char  *p;

    if (u->pos >= u->end) {
        return VN_ERROR;
    }

    p = u->pos;
    c = *p++;
    n = 0;

    v->str = NULL;
    v->len = 0;
    v->elts = NULL;

    if (c <= 0x7f) {
        v->type = VN_NUM;
        v->num = c;
        u->pos = p;
        return VN_OK;
    }

    if (c >= 0xe0) {
        v->type = VN_NUM;
        v->num = (signed char) c;
        u->pos = p;
        return VN_OK;
    }

    if ((c & 0xe0) == 0xa0) {
        n = c & 0x1f;
        goto str;
    }

    if ((c & 0xf0) == 0x90) {
        n = c & 0x0f;
        goto arr;
    }

    switch (c) {

    case 0xc0:
    case 0xc2:
        v->type = VN_NIL;
        v->len = (c == 0xc0);     /* nil, not false */
        u->pos = p;
        return VN_OK;

    case 0xc3:
        v->type = VN_TRUE;
        u->pos = p;
        return VN_OK;

    case 0xc4: case 0xd9: w = 1; break;
    case 0xc5: case 0xda: w = 2; break;
    case 0xc6: case 0xdb: w = 4; break;

    case 0xca:
        if (u->end - p < 4) {
            return VN_ERROR;
        }
        u32 = (uint32_t) vn_unpack_be(p, 4);
        memcpy(&f, &u32, 4);
        v->type = VN_NUM;
        v->num = f;
        u->pos = p + 4;
        return VN_OK;

    case 0xcb:
        if (u->end - p < 8) {
            return VN_ERROR;
        }
        x = vn_unpack_be(p, 8);
        memcpy(&d, &x, 8);
        v->type = VN_NUM;
        v->num = d;
        u->pos = p + 8;
        return VN_OK;

    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        w = 1 << (c - 0xcc);
        if (u->end - p < w) {
            return VN_ERROR;
        }
        v->type = VN_NUM;
        v->num = (double) vn_unpack_be(p, w);
        u->pos = p + w;
        return VN_OK;

    case 0xd0: case 0xd1: case 0xd2: case 0xd3:
        w = 1 << (c - 0xd0);
        if (u->end - p < w) {
            return VN_ERROR;
        }
        x = vn_unpack_be(p, w);
        if (w < 8 && (x & ((uint64_t) 1 << (8 * w - 1)))) {
            x |= ~(uint64_t) 0 << (8 * w);
        }
        v->type = VN_NUM;
        v->num = (double) (int64_t) x;
        u->pos = p + w;
        return VN_OK;

    case 0xdc:
        if (u->end - p < 2) {
            return VN_ERROR;
        }
        n = (size_t) vn_unpack_be(p, 2);
        p += 2;
        goto arr;

    case 0xdd:
        if (u->end - p < 4) {
            return VN_ERROR;
        }
        n = (size_t) vn_unpack_be(p, 4);
        p += 4;
        goto arr;

    default:
        /* maps and extensions: no record holds them */
        return VN_ERROR;
    }

    if (u->end - p < w) {
        return VN_ERROR;
    }

    n = (size_t) vn_unpack_be(p, w);
    p += w;

str:

    if ((size_t) (u->end - p) < n) {
        return VN_ERROR;
    }

    v->type = VN_STR;
    v->str = (const char *) p;
    v->len = n;
    u->pos = p + n;

    return VN_OK;

arr:

    /* one level below the record (its answer), of plain values */

    if (depth > 0 || n > (size_t) (u->npool - u->used)) {
        return VN_ERROR;
    }

    v->type = VN_ARR;
    v->len = n;
    v->elts = u->pool + u->used;
    u->used += (int) n;
    u->pos = p;

    for (i = 0; i < n; i++) {
        if (vn_unpack_one(u, &v->elts[i], depth + 1) != VN_OK) {
            return VN_ERROR;
        }

        /* a nil would end the Lua array there */
        if (v->elts[i].type == VN_NIL && v->elts[i].len) {
            return VN_ERROR;
        }

        if (v->elts[i].type == VN_ARR) {
            return VN_ERROR;
        }
    }

    return VN_OK;
}


/*
 * The values of cmsgpack.unpack(), at most max of them (arrays: nested
 * once, their elements in pool); the number of values, or VN_ERROR for
 * what this does not read.
 */

int
vn_unpack(const char *p, size_t n, vn_val_t *out, int max, vn_val_t *pool,
    int npool)
{
    int          i;
    vn_unpack_t  u;

    u.pos = (const unsigned char *) p;
    u.end = u.pos + n;
    u.pool = pool;
    u.npool = npool;
    u.used = 0;

    for (i = 0; u.pos < u.end; i++) {
        if (i == max) {
            return VN_ERROR;
        }

        if (vn_unpack_one(&u, &out[i], 0) != VN_OK) {
            return VN_ERROR;
        }
    }

    return i;
}
