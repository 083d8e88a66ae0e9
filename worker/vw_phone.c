
/*
 * Copyright (C) ngx_voucher authors
 *
 * Phone numbers to E.164: see vw_phone.h.
 */


#include <stdio.h>
#include <string.h>

#include "vw_phone.h"


int
vw_phone_country(const char *spec, vw_phone_country_t *pc, char *err,
    size_t errlen)
{
    size_t  n;

    memset(pc, 0, sizeof(vw_phone_country_t));

    if (strcmp(spec, "TH") == 0) {
        pc->kind = VW_PHONE_TH;
        strcpy(pc->cc, "66");
        return 0;
    }

    if (strcmp(spec, "CN") == 0) {
        pc->kind = VW_PHONE_CN;
        strcpy(pc->cc, "86");
        return 0;
    }

    n = strlen(spec);

    if (spec[0] == '+' && n >= 2 && n <= 4
        && strspn(spec + 1, "0123456789") == n - 1 && spec[1] != '0')
    {
        pc->kind = VW_PHONE_GENERIC;
        memcpy(pc->cc, spec + 1, n);
        return 0;
    }

    snprintf(err, errlen, "expected TH, CN or a calling code such as +44");

    return -1;
}


/* the national significant number nsn is right for the country */

static int
vw_phone_nsn_ok(int kind, const char *nsn)
{
    size_t  n;

    n = strlen(nsn);

    if (n == 0 || nsn[0] == '0') {
        return 0;
    }

    switch (kind) {

    case VW_PHONE_TH:
        /* mobiles 6, 8, 9 and 9 digits; fixed lines 2-7 and 8 digits */
        if (nsn[0] == '6' || nsn[0] == '8' || nsn[0] == '9') {
            return n == 9;
        }

        return n == 8 && nsn[0] != '1';

    case VW_PHONE_CN:
        if (nsn[0] == '1') {
            return n == 11 || (n >= 9 && n <= 10 && nsn[1] == '0');
        }

        return n >= 9 && n <= 11;

    default:
        return n >= 4 && n <= 14;
    }
}


/* "+" cc nsn, checked, into out */

static int
vw_phone_join(int kind, const char *cc, const char *nsn, char *out,
    size_t size)
{
    size_t  n;

    if (*nsn == '0') {
        nsn++;
    }

    n = strlen(cc) + strlen(nsn);

    if (!vw_phone_nsn_ok(kind, nsn) || n < 8 || n > 15 || n + 2 > size) {
        return -1;
    }

    snprintf(out, size, "+%s%s", cc, nsn);

    return 0;
}


/* an international number (digits after + or 00) */

static int
vw_phone_intl(const char *d, char *out, size_t size)
{
    size_t  n;

    n = strlen(d);

    if (strncmp(d, "66", 2) == 0) {
        return vw_phone_join(VW_PHONE_TH, "66", d + 2, out, size);
    }

    if (strncmp(d, "86", 2) == 0) {
        return vw_phone_join(VW_PHONE_CN, "86", d + 2, out, size);
    }

    if (n < 8 || n > 15 || d[0] == '0' || n + 2 > size) {
        return -1;
    }

    snprintf(out, size, "+%s", d);

    return 0;
}


int
vw_phone_e164(const char *s, const vw_phone_country_t *pc, char *out,
    size_t size)
{
    int     plus;
    char    d[32];
    size_t  n;

    n = 0;
    plus = 0;

    for ( /* void */ ; *s; s++) {
        if (*s == ' ' || *s == '-' || *s == '.' || *s == '(' || *s == ')') {
            continue;
        }

        if (*s == '+' && n == 0 && !plus) {
            plus = 1;
            continue;
        }

        if (*s < '0' || *s > '9' || n + 1 >= sizeof(d)) {
            return -1;
        }

        d[n++] = *s;
    }

    d[n] = '\0';

    if (n == 0) {
        return -1;
    }

    if (plus) {
        return vw_phone_intl(d, out, size);
    }

    if (strncmp(d, "00", 2) == 0) {
        return vw_phone_intl(d + 2, out, size);
    }

    if (pc == NULL || pc->kind == VW_PHONE_NONE) {
        return -1;
    }

    if (vw_phone_join(pc->kind, pc->cc, d, out, size) == 0) {
        return 0;
    }

    /* the country code written without the + */
    if (d[0] != '0' && strncmp(d, pc->cc, strlen(pc->cc)) == 0) {
        return vw_phone_intl(d, out, size);
    }

    return -1;
}
