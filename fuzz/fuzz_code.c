
/*
 * Copyright (C) ngx_voucher authors
 *
 * libFuzzer target for the code format (common/voucher_code.c), charsets,
 * suffixes and display patterns included.  The
 * first byte picks the prefix and tag lengths, the rest up to a '|' is a
 * code as a customer may type it, what follows the '|' a display pattern.
 * Nothing may crash, and the results are checked for invariants.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fuzz.h"
#include "voucher_code.h"


static const unsigned char  key[VOUCHER_KEY_LEN] =
    "fuzz-key-fuzz-key-fuzz-key-fuzz";

static voucher_mac_key_t  mk;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    if (sodium_init() < 0 || voucher_mac_key_init(&mk, key) != 0) {
        return -1;
    }

    return 0;
}


static void
check_normalized(const char *s, size_t n)
{
    size_t  i;

    CHECK(s[n] == '\0');

    for (i = 0; i < n; i++) {
        CHECK(s[i] >= 0x21 && s[i] <= 0x7e);
        CHECK(s[i] != '-');
        CHECK(!(s[i] >= 'a' && s[i] <= 'z'));
    }
}


static void
check_verify_mk(const char *code, size_t n, size_t plen, size_t mlen,
    const voucher_format_t *fmt)
{
    int   rc;
    char  copy[VOUCHER_CODE_MAX_LEN + 1];

    rc = voucher_code_verify_ex(key, code, n, plen, mlen, fmt);

    memcpy(copy, code, n + 1);
    CHECK(voucher_code_verify_mk(&mk, copy, n, plen, mlen, fmt) == rc);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t       n, m, i, len, plen, mlen, sizes[4];
    const char  *in, *bar, *pattern;
    char        *exact, *pat;
    char         out[VOUCHER_CODE_MAX_LEN + 1];
    char         again[VOUCHER_CODE_MAX_LEN + 1];
    char         canon[VOUCHER_CODE_MAX_LEN + 1];
    char         shown[256], err[160];
    voucher_format_t  fmt;

    if (size == 0) {
        return 0;
    }

    plen = data[0] & 0x0f;
    mlen = (data[0] >> 4) + 1;
    in = (const char *) data + 1;
    len = size - 1;

    bar = memchr(in, '|', len);
    pattern = NULL;
    pat = NULL;

    if (bar != NULL) {
        pat = malloc(len - (size_t) (bar - in));
        CHECK(pat != NULL);
        memcpy(pat, bar + 1, len - (size_t) (bar - in) - 1);
        pat[len - (size_t) (bar - in) - 1] = '\0';
        pattern = pat;
        len = (size_t) (bar - in);
    }

    /* into buffers of several sizes, one of them exactly len + 1 */
    sizes[0] = 1;
    sizes[1] = 8;
    sizes[2] = len + 1;
    sizes[3] = sizeof(out);

    for (i = 0; i < 4; i++) {
        exact = malloc(sizes[i]);
        CHECK(exact != NULL);

        n = voucher_code_normalize(in, len, exact, sizes[i]);
        CHECK(n < sizes[i]);

        if (n > 0) {
            check_normalized(exact, n);
        }

        free(exact);
    }

    n = voucher_code_normalize(in, len, out, sizeof(out));

    if (n == 0) {
        free(pat);
        return 0;
    }

    check_normalized(out, n);

    /* normalizing twice changes nothing */
    CHECK(voucher_code_normalize(out, n, again, sizeof(again)) == n);
    CHECK(memcmp(out, again, n + 1) == 0);

    memcpy(canon, out, n + 1);
    m = voucher_code_canonical(canon, n);
    CHECK(m == 0 || m == n);

    if (m == n) {
        for (i = 0; i < n; i++) {
            CHECK(strchr(VOUCHER_CODE_ALPHABET, canon[i]) != NULL);
        }
    }

    /*
     * random input essentially never carries a valid tag of 10+ bits;
     * the key made ready once answers as the key itself
     */
    check_verify_mk(out, n, plen, mlen, NULL);
    check_verify_mk(out, n, 0, 1, NULL);
    check_verify_mk(out, n, n, mlen, NULL);

    if (pattern != NULL) {
        /* the pattern also splits into prefix, '#'s and suffix */
        if (voucher_pattern_split(pattern, canon, sizeof(canon), &i, shown,
                                  sizeof(shown))
            == 0)
        {
            CHECK(i > 0);
            check_normalized(canon, strlen(canon));
            check_normalized(shown, strlen(shown));
        }

        m = voucher_code_display(out, n, pattern, shown, sizeof(shown));
        CHECK(m < sizeof(shown));

        if (m > 0) {
            CHECK(strlen(shown) == m);
            CHECK(voucher_code_normalize(shown, m, again, sizeof(again)) == n);
            CHECK(memcmp(again, out, n) == 0);
        }
    }

    /*
     * The input as a charset and a suffix: when the charset is accepted,
     * a code issued in that format verifies, and random input in it is
     * checked without harm.
     */
    fmt.charset = out;
    fmt.charset_len = n < 32 ? n : 32;
    fmt.suffix = out + (n > 3 ? n - 3 : 0);
    fmt.suffix_len = n > 3 ? 3 : 0;

    if (voucher_charset_check(out, fmt.charset_len, err, sizeof(err)) == 0) {
        check_verify_mk(out, n, plen < n ? plen : 0, mlen, &fmt);
        m = voucher_code_issue_ex(key, "P", 8, mlen, &fmt, again,
                                  sizeof(again));

        if (m > 0) {
            for (i = 1; i < 1 + 8 + mlen; i++) {
                CHECK(memchr(fmt.charset, again[i], fmt.charset_len) != NULL);
            }

            CHECK(voucher_code_verify_ex(key, again, m, 1, mlen, &fmt) == 0);
        }
    }

    /* an issued code with this prefix verifies */
    out[plen < n ? plen : n] = '\0';
    m = voucher_code_issue(key, out, 4, mlen, again, sizeof(again));

    if (m > 0) {
        CHECK(voucher_code_verify(key, again, m,
                                  m - 4 - mlen, mlen) == 0);
    }

    free(pat);

    return 0;
}
