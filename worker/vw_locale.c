
/*
 * Copyright (C) ngx_voucher authors
 *
 * Money and dates by locale: see vw_locale.h.
 */


#include <stdio.h>
#include <string.h>

#include "vw_locale.h"
#include "vw_schedule.h"


#define VW_DATE_DMY  1              /* 31 Dec 2025 */
#define VW_DATE_CJK  2              /* 2025年12月31日 */


struct vw_locale_s {
    const char          *name;
    int                  style;
    int                  era;       /* added to the year: 543 Buddhist */
    const char *const   *months;
};


static const char *const  vw_months_th[12] = {
    "ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.",
    "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค."
};

static const char *const  vw_months_en[12] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};


static const vw_locale_t  vw_locales[] = {
    { "th-TH", VW_DATE_DMY, 543, vw_months_th },
    { "th-TH-u-ca-gregory", VW_DATE_DMY, 0, vw_months_th },
    { "zh-CN", VW_DATE_CJK, 0, NULL },
    { "en", VW_DATE_DMY, 0, vw_months_en },
    { NULL, 0, 0, NULL }
};


typedef struct {
    const char  *code;
    const char  *symbol;
    int          digits;
} vw_currency_t;


static const vw_currency_t  vw_currencies[] = {
    { "THB", "฿", 2 },
    { "CNY", "¥", 2 },
    { "JPY", "¥", 0 },
    { "USD", "$", 2 },
    { "EUR", "€", 2 },
    { "GBP", "£", 2 },
    { "KRW", "₩", 0 },
    { "SGD", "S$", 2 },
    { NULL, NULL, 0 }
};


const vw_locale_t *
vw_locale_find(const char *name)
{
    const vw_locale_t  *l;

    for (l = vw_locales; l->name; l++) {
        if (strcmp(l->name, name) == 0) {
            return l;
        }
    }

    return NULL;
}


/* u with a comma every three digits */

static void
vw_grouped(uint64_t u, char *buf, size_t size)
{
    char    digits[32], out[48];
    size_t  n, i, k;

    n = (size_t) snprintf(digits, sizeof(digits), "%llu",
                          (unsigned long long) u);
    k = 0;

    for (i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) {
            out[k++] = ',';
        }

        out[k++] = digits[i];
    }

    out[k] = '\0';
    snprintf(buf, size, "%s", out);
}


void
vw_locale_money(const vw_locale_t *l, int64_t minor, const char *currency,
    char *buf, size_t size)
{
    int                   neg, digits;
    char                  whole[48];
    uint64_t              u, scale;
    const vw_currency_t  *c;

    neg = minor < 0;
    u = neg ? (uint64_t) 0 - (uint64_t) minor : (uint64_t) minor;

    c = NULL;

    for (c = vw_currencies; currency && c->code; c++) {
        if (strcmp(c->code, currency) == 0) {
            break;
        }
    }

    if (l == NULL) {
        snprintf(buf, size, "%s%llu.%02llu%s%s", neg ? "-" : "",
                 (unsigned long long) (u / 100),
                 (unsigned long long) (u % 100),
                 currency && currency[0] ? " " : "",
                 currency ? currency : "");
        return;
    }

    digits = (currency && c->code) ? c->digits : 2;
    scale = digits == 0 ? 1 : 100;

    vw_grouped(u / scale, whole, sizeof(whole));

    if (currency && c->code) {
        if (digits == 0) {
            snprintf(buf, size, "%s%s%s", neg ? "-" : "", c->symbol, whole);

        } else {
            snprintf(buf, size, "%s%s%s.%02llu", neg ? "-" : "", c->symbol,
                     whole, (unsigned long long) (u % scale));
        }

        return;
    }

    snprintf(buf, size, "%s%s%s%s.%02llu", neg ? "-" : "",
             currency ? currency : "", currency ? " " : "", whole,
             (unsigned long long) (u % scale));
}


void
vw_locale_date(const vw_locale_t *l, int64_t t, int tz_min, char *buf,
    size_t size)
{
    int      m, d;
    int64_t  y;

    vw_local_date(t, tz_min, &y, &m, &d);

    if (l == NULL) {
        snprintf(buf, size, "%04lld-%02d-%02d", (long long) y, m, d);
        return;
    }

    if (l->style == VW_DATE_CJK) {
        snprintf(buf, size, "%lld年%d月%d日", (long long) y, m, d);
        return;
    }

    snprintf(buf, size, "%d %s %lld", d, l->months[m - 1],
             (long long) (y + l->era));
}


void
vw_locale_datetime(const vw_locale_t *l, int64_t t, int tz_min, char *buf,
    size_t size)
{
    char     date[64];
    int64_t  s;

    vw_locale_date(l, t, tz_min, date, sizeof(date));

    s = ((t + (int64_t) tz_min * 60) % 86400 + 86400) % 86400;

    snprintf(buf, size, "%s %02d:%02d", date, (int) (s / 3600),
             (int) (s % 3600 / 60));
}
