
/*
 * Copyright (C) ngx_voucher authors
 *
 * Phone numbers to E.164 ("+66819990000"), pure C, with a small rule set
 * instead of libphonenumber (C++ only in Debian).  The default country
 * (the configuration's phone.country) says what a national number is:
 *
 *   TH        +66; the trunk prefix 0 is dropped; 8 digits (fixed lines,
 *             2-7...) or 9 (mobiles, 6/8/9...) after it: 081-999-0000
 *             is +66819990000, 02-123-4567 is +6621234567
 *   CN        +86; the trunk prefix 0 is dropped; 11 digits for mobiles
 *             (1...), 9-11 for fixed lines with their area code:
 *             138 0013 8000 is +8613800138000, 010 6552 9988 is
 *             +861065529988
 *   +CC       any other country by its calling code (1-3 digits): one
 *             leading 0 (the usual trunk prefix) is dropped; 4-14 digits
 *             after it, 8-15 in all
 *
 * Spaces, dashes, dots and brackets are dropped first.  "+..." and
 * "00..." are international: 8-15 digits, and for TH and CN the rules
 * above after the country code (a trunk 0 written after it, "+66 081...",
 * is dropped).  Digits that start with the default country's code and
 * are too long to be national ("66819990000") are read as international.
 */


#ifndef _VW_PHONE_H_INCLUDED_
#define _VW_PHONE_H_INCLUDED_


#include <stddef.h>


#define VW_PHONE_NONE     0         /* no default: only +... is E.164 */
#define VW_PHONE_TH       1
#define VW_PHONE_CN       2
#define VW_PHONE_GENERIC  3


typedef struct {
    int          kind;
    char         cc[4];             /* the calling code, digits */
} vw_phone_country_t;


/* "TH", "CN" or "+44"; 0, or -1 with err */
int vw_phone_country(const char *spec, vw_phone_country_t *pc, char *err,
    size_t errlen);

/*
 * s in E.164 ("+" and 8-15 digits) into out (16 bytes are enough); 0, or
 * -1 when it is not a phone number (or a national one without a default
 * country).
 */
int vw_phone_e164(const char *s, const vw_phone_country_t *pc, char *out,
    size_t size);


#endif /* _VW_PHONE_H_INCLUDED_ */
