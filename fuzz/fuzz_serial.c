
/*
 * Copyright (C) ngx_voucher authors
 *
 * libFuzzer target for serial series (common/voucher_serial.c): the first
 * byte picks the charset and the body's length, the second the series'
 * name; the rest is a body as a code would hold it.  Nothing may crash; a
 * body that decodes makes the same body again from its serial, and the
 * code it makes passes the MAC.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fuzz.h"
#include "voucher_serial.h"


static const unsigned char  key[VOUCHER_KEY_LEN] =
    "fuzz-key-fuzz-key-fuzz-key-fuzz";

static const char  *charsets[] = {
    NULL, "0123456789", "01", "ABCDEFGHJKMNPQRSTVWXYZ", "012"
};


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    return sodium_init() < 0 ? -1 : 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char              code[VOUCHER_CODE_MAX_LEN + 1];
    char              name[2];
    size_t            blen, n;
    uint64_t          serial, again;
    voucher_format_t  fmt;
    voucher_serial_t  s;

    if (size < 2) {
        return 0;
    }

    memset(&fmt, 0, sizeof(fmt));
    fmt.charset = charsets[(data[0] & 0x07) % 5];
    fmt.charset_len = fmt.charset ? strlen(fmt.charset) : 0;
    blen = (size_t) (data[0] >> 3) + 1;            /* 1..32 */

    name[0] = (char) data[1];
    name[1] = '\0';

    if (voucher_serial_init(&s, key, name, 1, blen, &fmt) != 0) {
        CHECK(voucher_series_name_check(name, 1) != 0
              || voucher_serial_domain(blen, &fmt) == 0);
        return 0;
    }

    if (size - 2 < blen) {
        return 0;
    }

    if (voucher_serial_decode(&s, (const char *) data + 2, 0, blen, &fmt,
                              &serial)
        != 0)
    {
        return 0;
    }

    CHECK(serial < s.domain);
    CHECK(voucher_serial_permute(&s, serial)
          == voucher_serial_permute(&s, serial));

    n = voucher_serial_code(&s, key, "", blen, 4, &fmt, serial, code,
                            sizeof(code));
    CHECK(n == blen + 4);
    CHECK(memcmp(code, data + 2, blen) == 0);
    CHECK(voucher_code_verify_ex(key, code, n, 0, 4, &fmt) == 0);
    CHECK(voucher_serial_decode(&s, code, 0, blen, &fmt, &again) == 0
          && again == serial);

    return 0;
}
