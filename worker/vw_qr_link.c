
/*
 * Copyright (C) ngx_voucher authors
 *
 * Signed links to QR pictures: the tag is BLAKE2b (libsodium's generic
 * hash) keyed with a hash of admin.qr_link_key_file's secret, over a
 * version, the code and the expiry, 16 bytes in hex.  Only voucherd and
 * voucherctl hold the secret; a link changed in any byte is refused.
 */


#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "vw_qr_link.h"
#include "vw_util.h"


#define VW_QR_TAG  16


static void
vw_qr_link_tag(const vw_config_t *cf, const char *code, int64_t expires,
    unsigned char *tag)
{
    char                       msg[64];
    unsigned char              key[crypto_generichash_KEYBYTES];
    crypto_generichash_state   st;

    crypto_generichash(key, sizeof(key),
                       (const unsigned char *) cf->admin_qr_link_key,
                       strlen(cf->admin_qr_link_key), NULL, 0);

    snprintf(msg, sizeof(msg), "qr1\n%lld\n", (long long) expires);

    crypto_generichash_init(&st, key, sizeof(key), VW_QR_TAG);
    crypto_generichash_update(&st, (const unsigned char *) msg, strlen(msg));
    crypto_generichash_update(&st, (const unsigned char *) code,
                              strlen(code));
    crypto_generichash_final(&st, tag, VW_QR_TAG);

    sodium_memzero(key, sizeof(key));
}


void
vw_qr_link(const vw_config_t *cf, const char *code, int64_t expires,
    char *buf, size_t size)
{
    int            n;
    char           hex[2 * VW_QR_TAG + 1], esc[512];
    size_t         i, k;
    unsigned char  tag[VW_QR_TAG];

    static const char  digits[] = "0123456789ABCDEF";

    buf[0] = '\0';

    if (cf->admin_qr_link == NULL || cf->admin_qr_link_key == NULL) {
        return;
    }

    /* the code, percent-encoded but for what a URL keeps as it is */
    for (i = 0, k = 0; code[i] && k + 4 < sizeof(esc); i++) {
        if (strchr("-_.~", code[i]) != NULL
            || (code[i] >= '0' && code[i] <= '9')
            || ((code[i] | 0x20) >= 'a' && (code[i] | 0x20) <= 'z'))
        {
            esc[k++] = code[i];

        } else {
            esc[k++] = '%';
            esc[k++] = digits[(unsigned char) code[i] >> 4];
            esc[k++] = digits[(unsigned char) code[i] & 15];
        }
    }

    if (code[i] != '\0') {
        return;
    }

    esc[k] = '\0';

    vw_qr_link_tag(cf, code, expires, tag);
    sodium_bin2hex(hex, sizeof(hex), tag, sizeof(tag));

    n = snprintf(buf, size, "%s%cc=%s&e=%lld&s=%s", cf->admin_qr_link,
                 strchr(cf->admin_qr_link, '?') ? '&' : '?', esc,
                 (long long) expires, hex);

    if (n < 0 || (size_t) n >= size) {
        buf[0] = '\0';
    }
}


int
vw_qr_link_check(const vw_config_t *cf, const char *code,
    const char *expires, const char *tag, int64_t now)
{
    size_t         n;
    int64_t        e;
    unsigned char  want[VW_QR_TAG], got[VW_QR_TAG];

    if (cf->admin_qr_link_key == NULL || code == NULL || code[0] == '\0'
        || expires == NULL || tag == NULL
        || vw_parse_int(expires, 0, INT64_MAX / 2, &e) != 0
        || strlen(tag) != 2 * VW_QR_TAG
        || sodium_hex2bin(got, sizeof(got), tag, strlen(tag), NULL, &n,
                          NULL) != 0
        || n != VW_QR_TAG)
    {
        return VW_QR_LINK_INVALID;
    }

    vw_qr_link_tag(cf, code, e, want);

    if (sodium_memcmp(want, got, VW_QR_TAG) != 0) {
        return VW_QR_LINK_INVALID;
    }

    return e < now ? VW_QR_LINK_EXPIRED : VW_QR_LINK_OK;
}
