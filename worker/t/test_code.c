
/*
 * Copyright (C) ngx_voucher authors
 *
 * cmocka tests for the code format and MAC (common/voucher_code.c).
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "voucher_code.h"


#define ALPHA  VOUCHER_CODE_ALPHABET


static const unsigned char  key1[VOUCHER_KEY_LEN] = {
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
    0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
    0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20
};

static unsigned char  key2[VOUCHER_KEY_LEN];

static char  tmpdir[] = "/tmp/test_code.XXXXXX";


static int
setup(void **state)
{
    (void) state;

    if (sodium_init() < 0 || mkdtemp(tmpdir) == NULL) {
        return -1;
    }

    memcpy(key2, key1, sizeof(key2));
    key2[31] ^= 1;

    return 0;
}


static int
teardown(void **state)
{
    char  cmd[128];

    (void) state;

    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);

    return system(cmd) == 0 ? 0 : -1;
}


/* normalize a C string into a buffer of the given size */

static size_t
norm(const char *in, char *out, size_t size)
{
    return voucher_code_normalize(in, strlen(in), out, size);
}


static void
test_normalize_table(void **state)
{
    size_t  i;
    char    out[80];

    static const struct {
        const char  *in;
        const char  *want;        /* NULL: invalid */
    } t[] = {
        { "SALE7Q2M94KD", "SALE7Q2M94KD" },
        { "sale-7q2m-94kd", "SALE7Q2M94KD" },
        { "  Sale 7Q2M\t94kd ", "SALE7Q2M94KD" },
        { "---a---", "A" },
        { "BLACK_FRIDAY!", "BLACK_FRIDAY!" },
        { "x~y{z}", "X~Y{Z}" },
        { "oil", "OIL" },                    /* no look-alike mapping */
        { "", NULL },
        { "   ", NULL },
        { "- -\t", NULL },
        { "AB\nCD", NULL },
        { "AB\rCD", NULL },
        { "AB\x7f", NULL },
        { "\xc3\xa9t\xc3\xa9", NULL },       /* UTF-8 */
        { "AB\x01", NULL },
    };

    (void) state;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        memset(out, 'x', sizeof(out));

        if (t[i].want == NULL) {
            assert_int_equal(norm(t[i].in, out, sizeof(out)), 0);

        } else {
            assert_int_equal(norm(t[i].in, out, sizeof(out)),
                             strlen(t[i].want));
            assert_string_equal(out, t[i].want);
        }
    }

    /* an embedded NUL is a byte outside 0x21-0x7e */
    assert_int_equal(voucher_code_normalize("AB\0CD", 5, out, sizeof(out)),
                     0);

    /* only len bytes are read */
    assert_int_equal(voucher_code_normalize("ABCDEF", 3, out, sizeof(out)),
                     3);
    assert_string_equal(out, "ABC");
}


static void
test_normalize_size(void **state)
{
    char  out[8];
    char  buf[32];

    (void) state;

    /* size - 1 characters fit, one more does not */
    assert_int_equal(norm("abcdefg", out, 8), 7);
    assert_string_equal(out, "ABCDEFG");
    assert_int_equal(norm("abcdefgh", out, 8), 0);

    /* dropped characters do not count */
    assert_int_equal(norm("a-b-c-d-e-f-g", out, 8), 7);

    assert_int_equal(norm("a", out, 1), 0);
    assert_int_equal(norm("a", out, 0), 0);
    assert_int_equal(norm("a", out, 2), 1);

    /* in place */
    strcpy(buf, "ab-cd ef");
    assert_int_equal(voucher_code_normalize(buf, strlen(buf), buf,
                                            sizeof(buf)), 6);
    assert_string_equal(buf, "ABCDEF");
}


static void
test_canonical(void **state)
{
    int   i, want;
    char  c, s[64];

    (void) state;

    strcpy(s, "O0I1L1");
    assert_int_equal(voucher_code_canonical(s, 6), 6);
    assert_string_equal(s, "001111");

    strcpy(s, "oil");
    assert_int_equal(voucher_code_canonical(s, 3), 3);
    assert_string_equal(s, "011");

    strcpy(s, ALPHA);
    assert_int_equal(voucher_code_canonical(s, 32), 32);
    assert_string_equal(s, ALPHA);

    strcpy(s, "ABU");
    assert_int_equal(voucher_code_canonical(s, 3), 0);
    strcpy(s, "AB-C");
    assert_int_equal(voucher_code_canonical(s, 4), 0);
    strcpy(s, "AB_C");
    assert_int_equal(voucher_code_canonical(s, 4), 0);
    assert_int_equal(voucher_code_canonical(s, 0), 0);
    memcpy(s, "A\0B", 3);
    assert_int_equal(voucher_code_canonical(s, 3), 0);

    /* every byte: kept exactly when it is, or stands for, an ALPHA one */
    for (i = 0; i < 256; i++) {
        c = (char) i;
        if (c >= 'a' && c <= 'z') {
            c = (char) (c - ('a' - 'A'));
        }
        c = (c == 'O') ? '0' : (c == 'I' || c == 'L') ? '1' : c;
        want = (c != '\0' && strchr(ALPHA, c) != NULL);

        s[0] = (char) i;
        assert_int_equal(voucher_code_canonical(s, 1), want ? 1 : 0);
        if (want) {
            assert_int_equal(s[0], c);
        }
    }
}


static void
test_issue_verify_roundtrip(void **state)
{
    int     i;
    size_t  n, j;
    char    code[VOUCHER_CODE_MAX_LEN + 1];

    (void) state;

    for (i = 0; i < 20000; i++) {
        n = voucher_code_issue(key1, i % 2 ? "sale-" : "", 8, 4, code,
                               sizeof(code));
        assert_int_equal(n, (i % 2 ? 4 : 0) + 12);
        assert_int_equal(strlen(code), n);

        for (j = (i % 2 ? 4 : 0); j < n; j++) {
            assert_non_null(strchr(ALPHA, code[j]));
        }

        assert_int_equal(voucher_code_verify(key1, code, n, i % 2 ? 4 : 0, 4),
                         0);
    }

    /* the prefix is stored normalized */
    n = voucher_code_issue(key1, "gift card-", 6, 5, code, sizeof(code));
    assert_int_equal(n, 8 + 11);
    assert_memory_equal(code, "GIFTCARD", 8);
    assert_int_equal(voucher_code_verify(key1, code, n, 8, 5), 0);

    /* the prefix is covered by the MAC */
    code[0] = 'X';
    assert_int_equal(voucher_code_verify(key1, code, n, 8, 5), -1);
}


/* a charset of digits (keypads) and a suffix */

static void
test_charset_suffix(void **state)
{
    int               i, changed, rc, passed;
    size_t            n, j;
    char              code[VOUCHER_CODE_MAX_LEN + 1], err[160], c;
    voucher_format_t  fmt;

    (void) state;

    fmt.charset = "0123456789";
    fmt.charset_len = 10;
    fmt.suffix = "TH";
    fmt.suffix_len = 2;
    passed = 0;

    for (i = 0; i < 20000; i++) {
        n = voucher_code_issue_ex(key1, "P", 8, 6, &fmt, code, sizeof(code));
        assert_int_equal(n, 1 + 8 + 6 + 2);
        assert_memory_equal(code + n - 2, "TH", 2);

        for (j = 1; j < n - 2; j++) {
            assert_true(code[j] >= '0' && code[j] <= '9');
        }

        assert_int_equal(voucher_code_verify_ex(key1, code, n, 1, 6, &fmt),
                         0);

        /*
         * Any other digit in the tag breaks it, always.  Another digit in
         * the body makes another MAC, whose 6-digit tag matches the old
         * one by chance once in 10^6: about 0.2 of the ~190,000 changes
         * below may pass, and more than 3 would be a broken MAC.
         */
        changed = 0;

        for (j = 1; j < n - 2 && !changed; j++) {
            c = code[j];
            code[j] = (char) ('0' + (c - '0' + 1 + i % 9) % 10);
            rc = voucher_code_verify_ex(key1, code, n, 1, 6, &fmt);
            if (j > 8) {
                assert_int_equal(rc, -1);

            } else if (rc == 0) {
                passed++;
            }
            code[j] = c;
            changed = i % 3 == 0;
        }
    }

    assert_true(passed <= 3);

    /* the suffix must end the code, and is not a free-for-all */
    n = voucher_code_issue_ex(key1, "", 8, 6, &fmt, code, sizeof(code));
    code[n - 1] = 'X';
    assert_int_equal(voucher_code_verify_ex(key1, code, n, 0, 6, &fmt), -1);

    /* a code of the default format does not pass as this one */
    n = voucher_code_issue(key1, "", 8, 6, code, sizeof(code));
    assert_int_equal(voucher_code_verify_ex(key1, code, n, 0, 6, &fmt), -1);

    /* the default charset named in full is the default format */
    fmt.charset = ALPHA;
    fmt.charset_len = 32;
    fmt.suffix = NULL;
    fmt.suffix_len = 0;
    n = voucher_code_issue(key1, "", 8, 4, code, sizeof(code));
    assert_int_equal(voucher_code_verify_ex(key1, code, n, 0, 4, &fmt), 0);

    /* letters only, none of them a look-alike */
    fmt.charset = "ABCDEFGHJKMNPQRSTVWXYZ";
    fmt.charset_len = 22;
    n = voucher_code_issue_ex(key1, "", 10, 6, &fmt, code, sizeof(code));

    for (j = 0; j < n; j++) {
        assert_non_null(strchr(fmt.charset, code[j]));
    }

    assert_int_equal(voucher_code_verify_ex(key1, code, n, 0, 6, &fmt), 0);

    /* the checks of a charset */
    assert_int_equal(voucher_charset_check("0123456789", 10, err,
                                           sizeof(err)), 0);
    assert_int_equal(voucher_charset_check("0", 1, err, sizeof(err)), -1);
    assert_int_equal(voucher_charset_check("01O", 3, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no I, L, O, U"));
    assert_int_equal(voucher_charset_check("0123", 3, err, sizeof(err)), 0);
    assert_int_equal(voucher_charset_check("0110", 4, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(voucher_charset_check("abc", 3, err, sizeof(err)), -1);

    /* the suffix counts in the length limit */
    fmt.charset = NULL;
    fmt.charset_len = 0;
    fmt.suffix = "ABCDEFGHJK";
    fmt.suffix_len = 10;
    assert_int_equal(voucher_code_issue_ex(key1, "", 40, 15, &fmt, code,
                                           sizeof(code)), 0);
    assert_int_equal(voucher_code_issue_ex(key1, "", 39, 15, &fmt, code,
                                           sizeof(code)), 64);
    assert_int_equal(voucher_code_verify_ex(key1, code, 64, 0, 15, &fmt), 0);
}


/*
 * voucher_code_verify_mk() (a key made ready once, as the nginx module
 * keeps it) answers as voucher_code_verify_ex() for right and wrong tags,
 * look-alikes, other keys, formats and bad arguments, and leaves the body
 * and tag canonical in place.
 */

static void
test_verify_made_ready_key(void **state)
{
    int                i, k, j, want, other, wrong_key_passes;
    int                changed_passes;
    char               code[VOUCHER_CODE_MAX_LEN + 1];
    char               copy[VOUCHER_CODE_MAX_LEN + 1];
    size_t             n, plen, mlen;
    voucher_format_t   fmts[3], *fmt;
    voucher_mac_key_t  mk1, mk2;

    (void) state;

    wrong_key_passes = 0;
    changed_passes = 0;

    assert_int_equal(voucher_mac_key_init(&mk1, key1), 0);
    assert_int_equal(voucher_mac_key_init(&mk2, key2), 0);

    memset(fmts, 0, sizeof(fmts));
    fmts[1].charset = "0123456789";
    fmts[1].charset_len = 10;
    fmts[1].suffix = "TH";
    fmts[1].suffix_len = 2;
    fmts[2].suffix = "Z9";
    fmts[2].suffix_len = 2;

    for (i = 0; i < 3000; i++) {
        k = i % 3;
        fmt = k ? &fmts[k] : NULL;
        plen = (size_t) (i % 4);
        mlen = 4 + (size_t) (i % 3);

        n = voucher_code_issue_ex(key1, "FGX" + (3 - plen), 10, mlen, fmt,
                                  code, sizeof(code));
        assert_true(n > 0);

        /* as issued, then one change of several kinds */
        for (j = 0; j < 6; j++) {
            memcpy(copy, code, n + 1);

            switch (j) {
            case 1:     /* a look-alike typed, lower case */
                if (copy[plen] == '0') {
                    copy[plen] = 'o';
                } else if (copy[plen] == '1') {
                    copy[plen] = 'l';
                } else if (copy[plen] >= 'A' && copy[plen] <= 'Z') {
                    copy[plen] = (char) (copy[plen] - 'A' + 'a');
                }
                break;
            case 2:     /* the tag's last character */
                copy[n - 1 - (fmt ? fmt->suffix_len : 0)] ^= 1;
                break;
            case 3:     /* a body character */
                copy[plen + (size_t) i % 10] =
                    copy[plen + (size_t) i % 10] == '2' ? '3' : '2';
                break;
            case 4:     /* outside the alphabet */
                copy[plen + 1] = 'U';
                break;
            case 5:     /* too short for the tag */
                break;
            }

            if (j == 5) {
                want = voucher_code_verify_ex(key1, copy, plen + mlen, plen,
                                              mlen, fmt);
                assert_int_equal(voucher_code_verify_mk(&mk1, copy,
                                                        plen + mlen, plen,
                                                        mlen, fmt), want);
                assert_int_equal(want, -1);
                continue;
            }

            want = voucher_code_verify_ex(key1, copy, n, plen, mlen, fmt);

            if (j == 0) {
                assert_int_equal(want, 0);
            }

            /*
             * Another key: the two checks agree, and a pass is a chance
             * collision of the tag (1 in 10^4 for 4 digits), counted
             */
            other = voucher_code_verify_ex(key2, copy, n, plen, mlen, fmt);
            assert_int_equal(voucher_code_verify_mk(&mk2, copy, n, plen,
                                                    mlen, fmt), other);
            wrong_key_passes += (other == 0);

            assert_int_equal(voucher_code_verify_mk(&mk1, copy, n, plen,
                                                    mlen, fmt), want);

            if (want == 0 && j <= 1) {
                /* canonical in place: the code as issued */
                assert_memory_equal(copy, code, n);

            } else if (want == 0) {
                /* a changed code that passes: a chance collision */
                changed_passes++;
            }
        }
    }

    assert_true(changed_passes < 5);

    /*
     * About 15,000 checks under the other key and 9,000 changed codes, a
     * third of them with digit tags of 4 to 6: a few tenths of a chance
     * pass expected in each; 5 or more would mean the tag does not check
     */
    assert_true(wrong_key_passes < 5);

    /* the state is only read: the same answer again */
    n = voucher_code_issue(key1, "FG", 10, 4, code, sizeof(code));
    assert_int_equal(voucher_code_verify_mk(&mk1, code, n, 2, 4, NULL), 0);
    assert_int_equal(voucher_code_verify_mk(&mk1, code, n, 2, 4, NULL), 0);
    assert_int_equal(voucher_code_verify_mk(&mk1, NULL, n, 2, 4, NULL), -1);
    assert_int_equal(voucher_code_verify_mk(&mk1, code, n, 2, 0, NULL), -1);
    assert_int_equal(voucher_code_verify_mk(&mk1, code, 65, 2, 4, NULL), -1);
}


static void
test_codes_unique(void **state)
{
    int     i, dup;
    char   *all;

    (void) state;

    /* 10,000 codes of 40 random bits: a repeat would be a broken RNG */
    all = calloc(10000, 16);
    assert_non_null(all);

    for (i = 0; i < 10000; i++) {
        assert_int_equal(voucher_code_issue(key1, "", 8, 2, all + i * 16, 16),
                         10);
    }

    qsort(all, 10000, 16, (int (*)(const void *, const void *)) strcmp);

    dup = 0;

    for (i = 1; i < 10000; i++) {
        dup += strcmp(all + (i - 1) * 16, all + i * 16) == 0;
    }

    assert_int_equal(dup, 0);

    free(all);
}


static void
test_single_change_breaks_mac(void **state)
{
    int     k, trials, caught, total;
    size_t  n, pos, a;
    char    code[VOUCHER_CODE_MAX_LEN + 1], bad[VOUCHER_CODE_MAX_LEN + 1];

    (void) state;

    /*
     * With a 6-character (30-bit) tag a random substitution passes with
     * probability 2^-30: over every position and every other letter of
     * 200 codes (about 90,000 variants) not one may pass (with 20 bits,
     * one in 14 runs would see a chance collision).
     */

    total = 0;
    caught = 0;

    for (trials = 0; trials < 200; trials++) {
        n = voucher_code_issue(key1, "", 8, 6, code, sizeof(code));
        assert_int_equal(n, 14);

        for (pos = 0; pos < n; pos++) {
            for (a = 0; a < 32; a++) {
                if (ALPHA[a] == code[pos]) {
                    continue;
                }

                memcpy(bad, code, n + 1);
                bad[pos] = ALPHA[a];
                total++;
                caught += voucher_code_verify(key1, bad, n, 0, 6) == -1;
            }
        }

        /* swapping two neighbours (a typical typo) */
        for (pos = 0; pos + 1 < n; pos++) {
            if (code[pos] == code[pos + 1]) {
                continue;
            }

            memcpy(bad, code, n + 1);
            bad[pos] = code[pos + 1];
            bad[pos + 1] = code[pos];
            total++;
            caught += voucher_code_verify(key1, bad, n, 0, 6) == -1;
        }

        /* a dropped or an extra character */
        total += 2;
        caught += voucher_code_verify(key1, code, n - 1, 0, 6) == -1;
        memcpy(bad, code, n);
        bad[n] = code[n - 1];
        caught += voucher_code_verify(key1, bad, n + 1, 0, 6) == -1;
    }

    assert_int_equal(caught, total);

    /* but look-alikes typed for 0 and 1 still pass */
    for (k = 0; k < 2000; k++) {
        n = voucher_code_issue(key1, "", 10, 4, code, sizeof(code));

        if (strchr(code, '0') == NULL && strchr(code, '1') == NULL) {
            continue;
        }

        memcpy(bad, code, n + 1);

        for (pos = 0; pos < n; pos++) {
            if (bad[pos] == '0') {
                bad[pos] = (k & 1) ? 'O' : 'o';

            } else if (bad[pos] == '1') {
                bad[pos] = (k & 1) ? 'I' : 'l';
            }
        }

        assert_int_equal(voucher_code_verify(key1, bad, n, 0, 4), 0);
    }
}


static void
test_wrong_key(void **state)
{
    int     i, passed;
    size_t  n;
    char    code[VOUCHER_CODE_MAX_LEN + 1];

    (void) state;

    passed = 0;

    for (i = 0; i < 2000; i++) {
        n = voucher_code_issue(key1, "K", 8, 5, code, sizeof(code));
        assert_int_equal(voucher_code_verify(key1, code, n, 1, 5), 0);
        passed += voucher_code_verify(key2, code, n, 1, 5) == 0;
    }

    /* a 25-bit tag: 2000 tries pass by chance with probability 6e-5 */
    assert_int_equal(passed, 0);
}


static void
test_verify_bad_arguments(void **state)
{
    size_t  n;
    char    code[VOUCHER_CODE_MAX_LEN + 1];

    (void) state;

    n = voucher_code_issue(key1, "AB", 8, 4, code, sizeof(code));
    assert_int_equal(n, 14);

    assert_int_equal(voucher_code_verify(key1, code, n, 2, 4), 0);

    /*
     * The MAC covers prefix and body as one string: where the prefix ends
     * only decides which part gets the look-alike mapping.
     */
    assert_int_equal(voucher_code_verify(key1, code, n, 3, 4), 0);
    assert_int_equal(voucher_code_verify(key1, code, n, 0, 4), 0);
    assert_int_equal(voucher_code_verify(key1, code, n, 2, 3), -1);
    assert_int_equal(voucher_code_verify(key1, code, n, 2, 0), -1);
    assert_int_equal(voucher_code_verify(key1, code, n, 2, 26), -1);
    assert_int_equal(voucher_code_verify(key1, code, n, 15, 4), -1);
    assert_int_equal(voucher_code_verify(key1, code, n, 10, 4), -1);
    assert_int_equal(voucher_code_verify(key1, code, 0, 0, 4), -1);
    assert_int_equal(voucher_code_verify(key1, NULL, 0, 0, 4), -1);
    assert_int_equal(voucher_code_verify(key1, "AB", 2, 0, 4), -1);

    /* a U, or punctuation, in the body or tag */
    code[5] = 'U';
    assert_int_equal(voucher_code_verify(key1, code, n, 2, 4), -1);
}


static void
test_lengths_at_limits(void **state)
{
    size_t  n;
    char    code[VOUCHER_CODE_MAX_LEN + 8];
    char    prefix[VOUCHER_CODE_MAX_LEN + 8];

    (void) state;

    /* the smallest code: one body character, one tag character */
    n = voucher_code_issue(key1, "", 1, 1, code, sizeof(code));
    assert_int_equal(n, 2);
    assert_int_equal(voucher_code_verify(key1, code, n, 0, 1), 0);

    /* the longest tag */
    n = voucher_code_issue(key1, "", 8, 25, code, sizeof(code));
    assert_int_equal(n, 33);
    assert_int_equal(voucher_code_verify(key1, code, n, 0, 25), 0);
    code[32] = code[32] == 'A' ? 'B' : 'A';
    assert_int_equal(voucher_code_verify(key1, code, n, 0, 25), -1);

    /* exactly 64 characters, and one more */
    memset(prefix, 'P', 50);
    prefix[50] = '\0';
    n = voucher_code_issue(key1, prefix, 10, 4, code, sizeof(code));
    assert_int_equal(n, 64);
    assert_int_equal(voucher_code_verify(key1, code, n, 50, 4), 0);
    assert_int_equal(voucher_code_issue(key1, prefix, 11, 4, code,
                                        sizeof(code)), 0);
    assert_int_equal(voucher_code_issue(key1, "", 64, 0, code, sizeof(code)),
                     0);
    assert_int_equal(voucher_code_issue(key1, "", 60, 4, code, sizeof(code)),
                     64);
    assert_int_equal(voucher_code_verify(key1, code, 64, 0, 4), 0);
    assert_int_equal(voucher_code_verify(key1, code, 65, 0, 4), -1);

    /* out exactly big enough, and one byte short */
    assert_int_equal(voucher_code_issue(key1, "AB", 6, 2, code, 11), 10);
    assert_int_equal(voucher_code_issue(key1, "AB", 6, 2, code, 10), 0);
    assert_int_equal(voucher_code_issue(key1, "AB", 6, 2, code, 0), 0);

    /* bad lengths and prefixes */
    assert_int_equal(voucher_code_issue(key1, "", 0, 4, code, sizeof(code)),
                     0);
    assert_int_equal(voucher_code_issue(key1, "", 8, 26, code, sizeof(code)),
                     0);
    assert_int_equal(voucher_code_issue(key1, "A\nB", 8, 4, code,
                                        sizeof(code)), 0);
    assert_int_equal(voucher_code_issue(key1, "\xe0", 8, 4, code,
                                        sizeof(code)), 0);

    /* a NULL prefix is an empty one */
    assert_int_equal(voucher_code_issue(key1, NULL, 8, 4, code, sizeof(code)),
                     12);
}


static void
write_file(const char *path, const char *text, size_t len)
{
    FILE  *f;

    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}


static void
test_key_file(void **state)
{
    struct stat    st;
    unsigned char  key[VOUCHER_KEY_LEN], again[VOUCHER_KEY_LEN];
    char           path[256], err[512];

    static const char  hex[] =
        "0102030405060708090a0b0c0d0e0f10"
        "1112131415161718191A1B1C1D1E1F20";

    (void) state;

    snprintf(path, sizeof(path), "%s/k1", tmpdir);

    write_file(path, hex, 64);
    assert_int_equal(voucher_key_load(path, key, err, sizeof(err)), 0);
    assert_memory_equal(key, key1, 32);

    write_file(path, "0102030405060708090a0b0c0d0e0f10"
                     "1112131415161718191a1b1c1d1e1f20\n", 65);
    assert_int_equal(voucher_key_load(path, key, err, sizeof(err)), 0);
    assert_memory_equal(key, key1, 32);

    /* generate: 0600, loads, never overwrites */
    snprintf(path, sizeof(path), "%s/gen", tmpdir);
    assert_int_equal(voucher_key_generate(path, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65);
    assert_int_equal(voucher_key_load(path, key, err, sizeof(err)), 0);
    assert_int_equal(voucher_key_generate(path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "exists"));
    assert_int_equal(voucher_key_load(path, again, err, sizeof(err)), 0);
    assert_memory_equal(key, again, 32);

    snprintf(path, sizeof(path), "%s/nodir/k", tmpdir);
    assert_int_equal(voucher_key_generate(path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no such file"));
}


static void
test_key_file_errors(void **state)
{
    size_t         i;
    unsigned char  key[VOUCHER_KEY_LEN];
    char           path[256], err[512];

#define GOOD  "a1b2c3d4e5f60718293a4b5c6d7e8f90" \
              "a1b2c3d4e5f60718293a4b5c6d7e8f90"

    static const struct {
        const char  *text;
        size_t       len;
        const char  *why;
    } t[] = {
        { "", 0, "too short: 0 bytes" },
        { "abcd", 4, "too short: 4 bytes" },
        { GOOD, 63, "too short: 63 bytes" },
        { GOOD "\n\n", 66, "unexpected data" },
        { GOOD "\r\n", 66, "unexpected data" },
        { GOOD " ", 65, "unexpected data" },
        { GOOD "a", 65, "unexpected data" },
        { GOOD GOOD, 128, "unexpected data" },
        { "a1b2c3d4e5g60718293a4b5c6d7e8f90"
          "a1b2c3d4e5f60718293a4b5c6d7e8f90\n", 65,
          "not a hex character at offset 10" },
        { "a1b2c3d4e5f60718293a4b5c6d7e8f90"
          "a1b2c3d4e5f60718293a4b5c6d7e8f9Z", 64,
          "not a hex character at offset 63" },
        { " a1b2c3d4e5f60718293a4b5c6d7e8f9"
          "a1b2c3d4e5f60718293a4b5c6d7e8f90", 64,
          "not a hex character at offset 0" },
    };

#undef GOOD

    (void) state;

    snprintf(path, sizeof(path), "%s/bad", tmpdir);

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        write_file(path, t[i].text, t[i].len);

        memset(key, 0xee, sizeof(key));
        memset(err, 0, sizeof(err));
        assert_int_equal(voucher_key_load(path, key, err, sizeof(err)), -1);

        if (strstr(err, t[i].why) == NULL) {
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, t[i].why);
        }

        assert_non_null(strstr(err, path));

        /* the key is wiped, and the error never holds key material */
        assert_int_equal(key[0], 0);
        assert_null(strstr(err, "a1b2"));
        assert_null(strstr(err, "8f90"));
    }

    snprintf(path, sizeof(path), "%s/none", tmpdir);
    assert_int_equal(voucher_key_load(path, key, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no such file"));

    assert_int_equal(voucher_key_load(tmpdir, key, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is a directory"));

    /* a short error buffer is truncated, not overrun */
    assert_int_equal(voucher_key_load(path, key, err, 8), -1);
    assert_int_equal(strlen(err), 7);
}


static void
test_display(void **state)
{
    size_t  i;
    char    out[64], back[64];

    static const struct {
        const char  *code;
        const char  *pattern;
        const char  *want;          /* NULL: does not fit */
    } t[] = {
        { "SALE7Q2M94KD", "SALE-####-####", "SALE-7Q2M-94KD" },
        { "SALE7Q2M94KD", "####-####-####", "SALE-7Q2M-94KD" },
        { "SALE7Q2M94KD", "############", "SALE7Q2M94KD" },
        { "SALE7Q2M94KD", "SALE ####  ####", "SALE 7Q2M  94KD" },
        { "SALE7Q2M94KD", "-SALE-####-####-", "-SALE-7Q2M-94KD-" },
        { "7Q2M94KD", "## ## ## ##", "7Q 2M 94 KD" },
        { "SALE7Q2M94KD", "SALE-####-###", NULL },      /* code left */
        { "SALE7Q2M94KD", "SALE-####-#####", NULL },    /* pattern left */
        { "SALE7Q2M94KD", "GIFT-####-####", NULL },     /* literal differs */
        /* literals typed in lower case match; shown as stored */
        { "SALE7Q2M94KD", "sale-####-####", "SALE-7Q2M-94KD" },
        { "SALE7Q2M94KD", "SALE/####/####", NULL },     /* not a separator */
        { "AB", "", NULL },
        { "", "", "" },
        { "", "--", "--" },
    };

    (void) state;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        memset(out, 'x', sizeof(out));

        if (t[i].want == NULL) {
            assert_int_equal(voucher_code_display(t[i].code,
                                                  strlen(t[i].code),
                                                  t[i].pattern, out,
                                                  sizeof(out)), 0);
            continue;
        }

        assert_int_equal(voucher_code_display(t[i].code, strlen(t[i].code),
                                              t[i].pattern, out, sizeof(out)),
                         strlen(t[i].want));
        assert_string_equal(out, t[i].want);

        /* what is shown normalizes back to the code */
        if (t[i].code[0] != '\0') {
            assert_int_equal(norm(out, back, sizeof(back)),
                             strlen(t[i].code));
            assert_string_equal(back, t[i].code);
        }
    }

    /* out exactly big enough, and one byte short */
    assert_int_equal(voucher_code_display("ABCD", 4, "##-##", out, 6), 5);
    assert_int_equal(voucher_code_display("ABCD", 4, "##-##", out, 5), 0);
    assert_int_equal(voucher_code_display("ABCD", 4, "##-##", out, 0), 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_normalize_table),
        cmocka_unit_test(test_normalize_size),
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_issue_verify_roundtrip),
        cmocka_unit_test(test_charset_suffix),
        cmocka_unit_test(test_verify_made_ready_key),
        cmocka_unit_test(test_codes_unique),
        cmocka_unit_test(test_single_change_breaks_mac),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_verify_bad_arguments),
        cmocka_unit_test(test_lengths_at_limits),
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_key_file_errors),
        cmocka_unit_test(test_display),
    };

    return cmocka_run_group_tests_name("voucher_code", tests, setup,
                                       teardown);
}
