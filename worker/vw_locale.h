
/*
 * Copyright (C) ngx_voucher authors
 *
 * Money and dates as a shop's customers read them, pure C, integers only
 * (money in minor units, never a float):
 *
 *   locale               money        a date (unix time in a zone)
 *   th-TH                ฿1,200.00    31 ธ.ค. 2568 (Buddhist era, +543)
 *   th-TH-u-ca-gregory   ฿1,200.00    31 ธ.ค. 2025
 *   zh-CN                ¥1,200.00    2025年12月31日
 *   en                   ฿1,200.00    31 Dec 2025
 *   (none)               1200.00 THB  2025-12-31
 *
 * The symbol is the currency's (THB ฿, CNY ¥, JPY ¥, USD $, EUR €, GBP
 * £, KRW ₩, SGD S$), whatever the locale; another currency is written
 * before the amount ("MYR 1,200.00").  JPY and KRW have no minor digits.
 */


#ifndef _VW_LOCALE_H_INCLUDED_
#define _VW_LOCALE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define VW_LOCALES  "th-TH, th-TH-u-ca-gregory, zh-CN or en"


typedef struct vw_locale_s  vw_locale_t;


/* a locale by its name, or NULL */
const vw_locale_t *vw_locale_find(const char *name);

/* minor units of currency (may be NULL) as the locale writes them */
void vw_locale_money(const vw_locale_t *l, int64_t minor,
    const char *currency, char *buf, size_t size);

/* the date at unix time t, tz_min minutes east of UTC */
void vw_locale_date(const vw_locale_t *l, int64_t t, int tz_min, char *buf,
    size_t size);

/* the date and the time of day (HH:MM) */
void vw_locale_datetime(const vw_locale_t *l, int64_t t, int tz_min,
    char *buf, size_t size);


#endif /* _VW_LOCALE_H_INCLUDED_ */
