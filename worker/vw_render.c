
/*
 * Copyright (C) ngx_voucher authors
 *
 * Rendering a campaign's message: see vw_render.h.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "voucher_code.h"
#include "vw_locale.h"
#include "vw_qr_link.h"
#include "vw_redis.h"
#include "vw_render.h"
#include "vw_schedule.h"
#include "vw_template.h"
#include "vw_util.h"


#define VW_RVARS  64


/* the campaign's fields a message may show */

typedef struct {
    char        *name;
    char        *kind;
    char        *currency;
    int64_t      value;
    int64_t      min_amount;
    int64_t      cap;
    int64_t      max_discount;
    int64_t      starts_at;         /* -1: none */
    int64_t      ends_at;
    int          tz;
    int64_t      code_ends;         /* the code's own end, -1 none */
    int64_t      balance;           /* a gift card's, -1 none */
} vw_rcamp_t;


static int
vw_rcamp_load(redisContext *c, const vw_config_t *cf, const char *campaign,
    const char *code, vw_rcamp_t *k, char *err, size_t errlen)
{
    int64_t      v;
    char        *key, *ckey;
    redisReply  *r, *h;

    memset(k, 0, sizeof(vw_rcamp_t));

    key = vw_key(cf, "k:%s", campaign);
    ckey = vw_key(cf, "c:%s", code ? code : "");
    redisAppendCommand(c, "HMGET %s name kind value currency ends_at "
                       "tz_offset min_amount cap max_discount starts_at",
                       key);
    redisAppendCommand(c, "HMGET %s t b", ckey);
    free(key);
    free(ckey);

    r = vw_redis_get(c, err, errlen);
    h = r ? vw_redis_get(c, err, errlen) : NULL;

    if (h == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 10
        || h->type != REDIS_REPLY_ARRAY || h->elements != 2)
    {
        if (r && r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "redis: %s", r->str);
        }

        if (r) {
            freeReplyObject(r);
        }

        if (h) {
            freeReplyObject(h);
        }

        return -1;
    }

#define VW_RSTR(i)  (vw_reply_str(r->element[i])                             \
                     ? vw_xstrdup(r->element[i]->str) : NULL)
#define VW_RINT(e, d)  (vw_reply_int(e, &v) == 0 ? v : (d))

    k->name = vw_reply_str(r->element[0]) ? vw_xstrdup(r->element[0]->str)
                                           : vw_xstrdup(campaign);
    k->kind = VW_RSTR(1);
    k->value = VW_RINT(r->element[2], 0);
    k->currency = VW_RSTR(3);
    k->ends_at = VW_RINT(r->element[4], -1);
    k->tz = (int) VW_RINT(r->element[5], 0);
    k->min_amount = VW_RINT(r->element[6], 0);
    k->cap = VW_RINT(r->element[7], 0);
    k->max_discount = VW_RINT(r->element[8], 0);
    k->starts_at = VW_RINT(r->element[9], -1);
    k->code_ends = code ? VW_RINT(h->element[0], -1) : -1;
    k->balance = code ? VW_RINT(h->element[1], -1) : -1;

#undef VW_RSTR
#undef VW_RINT

    freeReplyObject(r);
    freeReplyObject(h);

    return 0;
}


static void
vw_rcamp_free(vw_rcamp_t *k)
{
    free(k->name);
    free(k->kind);
    free(k->currency);
}


/* a birthday (YYYY-MM-DD or MM-DD) as day and month of the locale */

static void
vw_birthday_text(const vw_locale_t *l, const vw_member_t *m, char *buf,
    size_t size)
{
    char  *p, date[64];

    buf[0] = '\0';

    if (m->birthday == NULL || m->birth_month == 0) {
        return;
    }

    if (l == NULL) {
        snprintf(buf, size, "%s", m->birthday);
        return;
    }

    /* any year will do: the year is cut off */
    vw_locale_date(l, vw_days_from_civil(2000, m->birth_month,
                                         m->birth_day) * 86400, 0, date,
                   sizeof(date));

    if (strstr(date, "年") != NULL) {
        p = strstr(date, "年") + strlen("年");
        snprintf(buf, size, "%s", p);
        return;
    }

    p = strrchr(date, ' ');

    if (p) {
        *p = '\0';
    }

    snprintf(buf, size, "%s", date);
}


int
vw_render(redisContext *c, const vw_config_t *cf, const vw_auto_t *a,
    const vw_member_t *m, const char *code, int64_t now,
    const vw_tvar_t *extra, size_t nextra, vw_rendered_t *out, char *err,
    size_t errlen)
{
    char                 money[6][64], dates[3][64], bday[64], *avals;
    char                 qr[1024];
    char                 anames[32][40];
    size_t               n, na;
    int64_t              ends;
    json_t              *attrs, *v;
    const char          *key, *shown;
    vw_tvar_t            vars[VW_RVARS];
    vw_rcamp_t           k;
    const vw_locale_t   *l;
    vw_buf_t             ab;

    memset(out, 0, sizeof(vw_rendered_t));

    if (vw_rcamp_load(c, cf, a->campaign, code ? code : a->code, &k, err,
                      errlen) != 0)
    {
        return -1;
    }

    l = a->locale ? vw_locale_find(a->locale) : NULL;

    /* the code as people see it: in its pattern */
    shown = code ? code : a->code;

    if (shown == NULL) {
        snprintf(out->code, sizeof(out->code), "%s",
                 a->pattern ? a->pattern : "(a new code)");

    } else if (a->pattern == NULL
               || voucher_code_display(shown, strlen(shown), a->pattern,
                                       out->code, sizeof(out->code)) == 0)
    {
        snprintf(out->code, sizeof(out->code), "%s", shown);
    }

    /* the code's own end wins over the campaign's */
    ends = k.ends_at;

    if (code == NULL && a->code == NULL && a->valid_days > 0) {
        k.code_ends = now + a->valid_days * 86400;
    }

    if (k.code_ends > 0 && (ends < 0 || k.code_ends < ends)) {
        ends = k.code_ends;
    }

    if (ends > 0) {
        vw_locale_date(l, ends, k.tz, out->expires_at,
                       sizeof(out->expires_at));
    }

    /* a gift card shows its balance */
    if (k.kind && strcmp(k.kind, "gift_card") == 0 && k.balance >= 0) {
        k.value = k.balance;
    }

    if (k.kind && strcmp(k.kind, "percent") != 0
        && strcmp(k.kind, "free_item") != 0)
    {
        vw_locale_money(l, k.value, k.currency, out->discount,
                        sizeof(out->discount));

    } else {
        vw_discount_text(k.kind, k.value, k.currency, out->discount,
                         sizeof(out->discount));
    }

    vw_locale_money(l, k.min_amount, k.currency, money[0], sizeof(money[0]));
    vw_locale_money(l, k.cap, k.currency, money[1], sizeof(money[1]));
    vw_locale_money(l, k.max_discount, k.currency, money[2],
                    sizeof(money[2]));
    vw_locale_money(l, k.balance >= 0 ? k.balance : 0, k.currency, money[3],
                    sizeof(money[3]));

    dates[0][0] = '\0';
    dates[1][0] = '\0';

    if (k.starts_at >= 0) {
        vw_locale_date(l, k.starts_at, k.tz, dates[0], sizeof(dates[0]));
    }

    if (k.ends_at >= 0) {
        vw_locale_date(l, k.ends_at, k.tz, dates[1], sizeof(dates[1]));
    }

    vw_birthday_text(l, m, bday, sizeof(bday));

    /* a link to the code's QR picture, good while the code is */
    qr[0] = '\0';

    if (shown != NULL) {
        vw_qr_link(cf, out->code, ends > 0 ? ends
                                  : now + cf->admin_qr_link_days * 86400,
                   qr, sizeof(qr));
    }

    n = 0;

#define VW_VAR(nm, val)  do {                                                 \
        vars[n].name = nm; vars[n].value = val; n++;                          \
    } while (0)

    VW_VAR("name", m->name ? m->name : "");
    VW_VAR("code", out->code);
    VW_VAR("expires_at", out->expires_at);
    VW_VAR("discount", out->discount);
    VW_VAR("campaign", k.name);
    VW_VAR("id", m->id);
    VW_VAR("min_amount", money[0]);
    VW_VAR("cap", money[1]);
    VW_VAR("max_discount", money[2]);
    VW_VAR("balance", money[3]);
    VW_VAR("starts_at", dates[0]);
    VW_VAR("ends_at", dates[1]);
    VW_VAR("currency", k.currency ? k.currency : "");
    VW_VAR("tier", m->loyalty_tier ? m->loyalty_tier
                                   : (m->tier ? m->tier : ""));
    VW_VAR("birthday", bday);
    VW_VAR("phone", m->e164 ? m->e164 : (m->phone ? m->phone : ""));
    VW_VAR("email", m->email ? m->email : "");
    VW_VAR("qr_url", qr);

    for (size_t i = 0; i < nextra && n < VW_RVARS - 32; i++) {
        VW_VAR(extra[i].name, extra[i].value);
    }

    /* custom attributes: attr.NAME, strings and integers as they are */
    attrs = m->attrs ? json_loads(m->attrs, 0, NULL) : NULL;
    memset(&ab, 0, sizeof(vw_buf_t));
    vw_buf_adds(&ab, "");
    na = 0;

    json_object_foreach(attrs, key, v) {
        if (na == 32 || n == VW_RVARS || strlen(key) > 32) {
            break;
        }

        snprintf(anames[na], sizeof(anames[na]), "attr.%s", key);

        if (json_is_string(v)) {
            vw_buf_adds(&ab, json_string_value(v));

        } else if (json_is_integer(v)) {
            vw_buf_printf(&ab, "%lld", (long long) json_integer_value(v));
        }

        vw_buf_add(&ab, "", 1);
        na++;
    }

    /* the values, NUL-separated, once the buffer stopped moving */
    avals = ab.data;

    for (size_t i = 0; i < na; i++) {
        VW_VAR(anames[i], avals);
        avals += strlen(avals) + 1;
    }

#undef VW_VAR

    out->message = vw_template_render(a->message, vars, n);
    out->subject = a->subject ? vw_template_render(a->subject, vars, n)
                              : NULL;

    json_decref(attrs);
    vw_buf_free(&ab);
    vw_rcamp_free(&k);

    return 0;
}


void
vw_rendered_free(vw_rendered_t *r)
{
    free(r->message);
    free(r->subject);
    r->message = NULL;
    r->subject = NULL;
}
