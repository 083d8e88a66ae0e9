
/*
 * Copyright (C) ngx_voucher authors
 *
 * vcode: issues codes with the shared code unit, for the tests.
 *   vcode genkey FILE
 *   vcode issue KEYFILE PREFIX BODY_LEN MAC_LEN COUNT
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "voucher_code.h"


int
main(int argc, char **argv)
{
    char           err[256], code[VOUCHER_CODE_MAX_LEN + 1];
    long           i, n;
    unsigned char  key[VOUCHER_KEY_LEN];

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

    if (argc != 7 || strcmp(argv[1], "issue") != 0) {
        fprintf(stderr, "usage: vcode genkey FILE\n"
                        "       vcode issue KEYFILE PREFIX BODY MAC COUNT\n");
        return 2;
    }

    if (voucher_key_load(argv[2], key, err, sizeof(err)) != 0) {
        fprintf(stderr, "vcode: %s\n", err);
        return 1;
    }

    n = atol(argv[6]);

    for (i = 0; i < n; i++) {
        if (voucher_code_issue(key, argv[3], (size_t) atol(argv[4]),
                               (size_t) atol(argv[5]), code, sizeof(code))
            == 0)
        {
            fprintf(stderr, "vcode: cannot issue with these lengths\n");
            return 1;
        }
        puts(code);
    }

    return 0;
}
