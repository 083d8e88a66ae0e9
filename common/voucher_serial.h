
/*
 * Copyright (C) ngx_voucher authors
 *
 * Serial series: bulk single-use codes whose body is a serial number
 * permuted with a key, under the MAC of voucher_code.h.  A series of size
 * N holds the serials 0 .. N-1; "used" is one bit per serial in Redis, and
 * nothing is stored per code.
 *
 * The body's characters, read as a base-n number (n the charset's size,
 * the first character the most significant), are a value below
 * D = n^body_len.  The value is the serial permuted by a keyed bijection
 * of 0 .. D-1: a Feistel network of 8 rounds of SipHash-2-4 over the
 * smallest even number of bits that holds D, walked in cycles until it
 * falls below D.  Its key is derived from the MAC key and the series' name
 * by BLAKE2b with its own personalisation, so it is neither the MAC key
 * nor the key of another series, and codes do not look sequential.
 *
 * Pure C and libsodium, thread-safe, no allocation.
 */


#ifndef _VOUCHER_SERIAL_H_INCLUDED_
#define _VOUCHER_SERIAL_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "voucher_code.h"


/* a series' name: 1 to 32 of A-Z a-z 0-9 _ - */
#define VOUCHER_SERIES_MAX_LEN   32

/* the largest domain a body may hold: 2^62 values */
#define VOUCHER_SERIAL_MAX_BITS  62

#define VOUCHER_SERIAL_KEY_LEN   16


typedef struct {
    unsigned char  key[VOUCHER_SERIAL_KEY_LEN];  /* SipHash's */
    uint64_t       domain;                       /* D */
    unsigned       half;                         /* bits of a half */
} voucher_serial_t;


/* Returns 0 when name is a valid series name, -1 otherwise */
int voucher_series_name_check(const char *name, size_t len);

/*
 * The domain of a format: n^body_len, or 0 when it exceeds 2^62 (the
 * body is too long for a serial series).
 */
uint64_t voucher_serial_domain(size_t body_len, const voucher_format_t *fmt);

/*
 * Makes the permutation of a series: its key from the MAC key and the
 * name, and its domain from the format.  Returns 0, or -1 when the name
 * or the format cannot make a series.  Wipe s after use (sodium_memzero)
 * when it must not stay in memory.
 */
int voucher_serial_init(voucher_serial_t *s,
    const unsigned char key[VOUCHER_KEY_LEN], const char *name,
    size_t name_len, size_t body_len, const voucher_format_t *fmt);

/* the permutation and its inverse over 0 .. domain-1 (x below domain) */
uint64_t voucher_serial_permute(const voucher_serial_t *s, uint64_t x);
uint64_t voucher_serial_unpermute(const voucher_serial_t *s, uint64_t y);

/*
 * The code of serial: PREFIX BODY TAG SUFFIX, NUL-terminated in out.
 * Returns its length, or 0 when serial is beyond the domain, the prefix
 * invalid or out too small.
 */
size_t voucher_serial_code(const voucher_serial_t *s,
    const unsigned char key[VOUCHER_KEY_LEN], const char *prefix,
    size_t body_len, size_t mac_len, const voucher_format_t *fmt,
    uint64_t serial, char *out, size_t size);

/*
 * The serial of a canonical code whose tag was checked: its body, at
 * prefix_len, body_len characters of the charset.  Returns 0 and sets
 * *serial, or -1 when a character is outside the charset.
 */
int voucher_serial_decode(const voucher_serial_t *s, const char *code,
    size_t prefix_len, size_t body_len, const voucher_format_t *fmt,
    uint64_t *serial);


#endif /* _VOUCHER_SERIAL_H_INCLUDED_ */
