
/*
 * Copyright (C) ngx_voucher authors
 *
 * Message templates, pure C: "Hi {{name}}, {{code}} gives {{discount}}
 * off until {{expires_at}}".  A template is checked when it is set, so
 * an unknown field is an error then, not a surprise at send time.
 */


#ifndef _VW_TEMPLATE_H_INCLUDED_
#define _VW_TEMPLATE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* the fields a campaign message may use (docs/worker.md has them all) */
#define VW_TEMPLATE_FIELDS  "name, code, expires_at, discount, campaign, " \
    "id, min_amount, cap, max_discount, starts_at, ends_at, currency, "      \
    "balance, tier, birthday, phone, email, attr.NAME, points, "            \
    "points_to_next_tier, expiring_points, expiry_date, referral_code"

/* the loyalty ones among them (the member's balance, or the notice's) */
extern const char *const  vw_template_loyalty[];


typedef struct {
    const char  *name;
    const char  *value;
} vw_tvar_t;


/* 0, or -1 with err naming the first unknown field or the syntax error */
int vw_template_check(const char *tpl, char *err, size_t errlen);

/*
 * The same against another list of fields (NULL-terminated); "attr.*" in
 * the list allows any "attr.NAME" (NAME of letters, digits and _).
 */
int vw_template_check_fields(const char *tpl, const char *const *fields,
    char *err, size_t errlen);

/* whether tpl (may be NULL) uses one of fields (NULL-terminated) */
int vw_template_uses(const char *tpl, const char *const *fields);

/* the text with every {{field}} replaced (unknown ones by "") */
char *vw_template_render(const char *tpl, const vw_tvar_t *vars, size_t n);

/* 12345, "THB" -> "123.45 THB"; the currency may be NULL */
void vw_money(int64_t minor, const char *currency, char *buf, size_t size);

/* what a campaign gives, for {{discount}}: "10%", "100.00 THB", ... */
void vw_discount_text(const char *kind, int64_t value, const char *currency,
    char *buf, size_t size);


#endif /* _VW_TEMPLATE_H_INCLUDED_ */
