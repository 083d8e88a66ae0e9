
/*
 * Copyright (C) ngx_voucher authors
 *
 * Serial series: the keyed permutation of serials and the codes it makes
 * (voucher_serial.h).
 */


#include <string.h>

#include <sodium.h>

#include "voucher_serial.h"


#define VOUCHER_SERIAL_ROUNDS  8

/* BLAKE2b's personalisation: the MAC has none, so the keys differ */
static const unsigned char  voucher_serial_personal[16] = "ngxvoucherserial";
static const unsigned char  voucher_serial_salt[16];

static const char  voucher_serial_alphabet[] = VOUCHER_CODE_ALPHABET;


int
voucher_series_name_check(const char *name, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > VOUCHER_SERIES_MAX_LEN) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        c = name[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return -1;
        }
    }

    return 0;
}


static size_t
voucher_serial_radix(const voucher_format_t *fmt, const char **chars)
{
    if (fmt == NULL || fmt->charset == NULL || fmt->charset_len == 0) {
        *chars = voucher_serial_alphabet;
        return sizeof(voucher_serial_alphabet) - 1;
    }

    *chars = fmt->charset;
    return fmt->charset_len;
}


uint64_t
voucher_serial_domain(size_t body_len, const voucher_format_t *fmt)
{
    size_t       i, n;
    uint64_t     d;
    const char  *chars;

    n = voucher_serial_radix(fmt, &chars);

    if (n < 2 || body_len == 0) {
        return 0;
    }

    d = 1;

    for (i = 0; i < body_len; i++) {
        if (d > ((uint64_t) 1 << VOUCHER_SERIAL_MAX_BITS) / n) {
            return 0;
        }

        d *= n;
    }

    return d;
}


int
voucher_serial_init(voucher_serial_t *s,
    const unsigned char key[VOUCHER_KEY_LEN], const char *name,
    size_t name_len, size_t body_len, const voucher_format_t *fmt)
{
    unsigned  bits;
    uint64_t  d;

    if (voucher_series_name_check(name, name_len) != 0) {
        return -1;
    }

    d = voucher_serial_domain(body_len, fmt);
    if (d == 0) {
        return -1;
    }

    /* the fewest bits holding 0 .. d-1, made even and at least 2 */

    for (bits = 1; bits < 64 && ((uint64_t) 1 << bits) < d; bits++) {
        /* void */
    }

    bits += bits & 1;

    s->domain = d;
    s->half = bits / 2;

    return crypto_generichash_blake2b_salt_personal(s->key,
               VOUCHER_SERIAL_KEY_LEN, (const unsigned char *) name,
               name_len, key, VOUCHER_KEY_LEN, voucher_serial_salt,
               voucher_serial_personal) == 0 ? 0 : -1;
}


/* the round function: SipHash of the round, the half's width and r */

static uint64_t
voucher_serial_round(const voucher_serial_t *s, unsigned i, uint64_t r)
{
    int            k;
    unsigned char  in[10], out[crypto_shorthash_siphash24_BYTES];
    uint64_t       v;

    in[0] = (unsigned char) i;
    in[1] = (unsigned char) s->half;

    for (k = 0; k < 8; k++) {
        in[2 + k] = (unsigned char) (r >> (8 * k));
    }

    crypto_shorthash_siphash24(out, in, sizeof(in), s->key);

    v = 0;

    for (k = 7; k >= 0; k--) {
        v = v << 8 | out[k];
    }

    return v;
}


/* one pass of the network over 2 * half bits, forwards or backwards */

static uint64_t
voucher_serial_feistel(const voucher_serial_t *s, uint64_t x, int back)
{
    unsigned  i;
    uint64_t  mask, l, r, t;

    mask = ((uint64_t) 1 << s->half) - 1;
    l = x >> s->half;
    r = x & mask;

    for (i = 0; i < VOUCHER_SERIAL_ROUNDS; i++) {
        if (!back) {
            t = l ^ (voucher_serial_round(s, i, r) & mask);
            l = r;
            r = t;

        } else {
            t = r ^ (voucher_serial_round(s, VOUCHER_SERIAL_ROUNDS - 1 - i, l)
                     & mask);
            r = l;
            l = t;
        }
    }

    return l << s->half | r;
}


/*
 * Cycle walking: the network permutes 0 .. 2^(2 half) - 1, at most 4
 * times the domain; applied again until the value is back in the domain,
 * it permutes the domain (each cycle of the network passes through it).
 */

uint64_t
voucher_serial_permute(const voucher_serial_t *s, uint64_t x)
{
    do {
        x = voucher_serial_feistel(s, x, 0);
    } while (x >= s->domain);

    return x;
}


uint64_t
voucher_serial_unpermute(const voucher_serial_t *s, uint64_t y)
{
    do {
        y = voucher_serial_feistel(s, y, 1);
    } while (y >= s->domain);

    return y;
}


size_t
voucher_serial_code(const voucher_serial_t *s,
    const unsigned char key[VOUCHER_KEY_LEN], const char *prefix,
    size_t body_len, size_t mac_len, const voucher_format_t *fmt,
    uint64_t serial, char *out, size_t size)
{
    size_t       i, n;
    uint64_t     v;
    const char  *chars;
    char         body[VOUCHER_BODY_MAX_LEN];

    if (serial >= s->domain || body_len == 0
        || body_len > VOUCHER_BODY_MAX_LEN
        || voucher_serial_domain(body_len, fmt) != s->domain)
    {
        return 0;
    }

    n = voucher_serial_radix(fmt, &chars);
    v = voucher_serial_permute(s, serial);

    for (i = body_len; i > 0; i--) {
        body[i - 1] = chars[v % n];
        v /= n;
    }

    return voucher_code_make(key, prefix, body, body_len, mac_len, fmt, out,
                             size);
}


int
voucher_serial_decode(const voucher_serial_t *s, const char *code,
    size_t prefix_len, size_t body_len, const voucher_format_t *fmt,
    uint64_t *serial)
{
    size_t       i, n;
    uint64_t     v;
    const char  *chars, *p;

    if (body_len == 0 || voucher_serial_domain(body_len, fmt) != s->domain) {
        return -1;
    }

    n = voucher_serial_radix(fmt, &chars);
    v = 0;

    for (i = 0; i < body_len; i++) {
        p = memchr(chars, code[prefix_len + i], n);
        if (p == NULL) {
            return -1;
        }

        v = v * n + (uint64_t) (p - chars);
    }

    *serial = voucher_serial_unpermute(s, v);

    return 0;
}
