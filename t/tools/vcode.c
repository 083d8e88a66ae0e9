
/*
 * Copyright (C) ngx_voucher authors
 *
 * vcode: issues codes with the shared code unit, for the tests.
 *   vcode genkey FILE
 *   vcode issue KEYFILE PREFIX BODY_LEN MAC_LEN COUNT [CHARSET [SUFFIX]]
 *   (CHARSET "-": the default alphabet)
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "voucher_code.h"


int
main(int argc, char **argv)
{
    char              err[256], code[VOUCHER_CODE_MAX_LEN + 1];
    long              i, n;
    unsigned char     key[VOUCHER_KEY_LEN];
    voucher_format_t  fmt;

    if (sodium_init() < 0) {
        fprintf(stderr, "vcode: libsodium cannot be initialised\n");
        return 1;
    }

    if (argc == 3 && strcmp(argv[1], "genkey") == 0) {
        if (voucher_key_generate(argv[2], err, sizeof(err)) != 0) {
            fprintf(stderr, "vcode: %s\n", err);
            return 1;
        }
        return 0;
    }

    if (argc < 7 || argc > 9 || strcmp(argv[1], "issue") != 0) {
        fprintf(stderr, "usage: vcode genkey FILE\n"
                        "       vcode issue KEYFILE PREFIX BODY MAC COUNT "
                        "[CHARSET [SUFFIX]]\n");
        return 2;
    }

    memset(&fmt, 0, sizeof(fmt));

    if (argc >= 8 && strcmp(argv[7], "-") != 0) {
        if (voucher_charset_check(argv[7], strlen(argv[7]), err, sizeof(err))
            != 0)
        {
            fprintf(stderr, "vcode: %s\n", err);
            return 1;
        }

        fmt.charset = argv[7];
        fmt.charset_len = strlen(argv[7]);
    }

    if (argc == 9) {
        fmt.suffix = argv[8];
        fmt.suffix_len = strlen(argv[8]);
    }

    if (voucher_key_load(argv[2], key, err, sizeof(err)) != 0) {
        fprintf(stderr, "vcode: %s\n", err);
        return 1;
    }

    n = atol(argv[6]);

    for (i = 0; i < n; i++) {
        if (voucher_code_issue_ex(key, argv[3], (size_t) atol(argv[4]),
                                  (size_t) atol(argv[5]), &fmt, code,
                                  sizeof(code))
            == 0)
        {
            fprintf(stderr, "vcode: cannot issue with these lengths\n");
            return 1;
        }
        puts(code);
    }

    return 0;
}
