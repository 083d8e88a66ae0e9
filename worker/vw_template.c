
/*
 * Copyright (C) ngx_voucher authors
 *
 * Message templates: see vw_template.h.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_template.h"
#include "vw_util.h"


static const char *const  vw_tfields[] = {
    "name", "code", "expires_at", "discount", "campaign", "id",
    "min_amount", "cap", "max_discount", "starts_at", "ends_at", "currency",
    "balance", "tier", "birthday", "phone", "email", "attr.*", "points",
    "points_to_next_tier", "expiring_points", "expiry_date", "referral_code",
    "qr_url", NULL
};


const char *const  vw_template_loyalty[] = {
    "points", "tier", "points_to_next_tier", "expiring_points",
    "expiry_date", "referral_code", NULL
};


/* "attr.NAME" when the list has "attr.*" */

static int
vw_tattr(const char *name, size_t len)
{
    size_t  i;

    if (len <= 5 || len > 5 + 32 || strncmp(name, "attr.", 5) != 0) {
        return 0;
    }

    for (i = 5; i < len; i++) {
        if (!((name[i] >= 'a' && name[i] <= 'z')
              || (name[i] >= 'A' && name[i] <= 'Z')
              || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The next "{{ field }}" at or after p: its start, end (after "}}") and
 * the field name.  Returns 1 found, 0 none, -1 unclosed or empty.
 */

static int
vw_tnext(const char *p, const char **start, const char **end,
    const char **name, size_t *len)
{
    const char  *a, *b, *c;

    a = strstr(p, "{{");
    if (a == NULL) {
        return 0;
    }

    c = strstr(a + 2, "}}");
    if (c == NULL) {
        *start = a;
        return -1;
    }

    b = a + 2;

    while (b < c && *b == ' ') {
        b++;
    }

    *name = b;

    while (b < c && *b != ' ') {
        b++;
    }

    *len = (size_t) (b - *name);

    while (b < c && *b == ' ') {
        b++;
    }

    *start = a;
    *end = c + 2;

    /* "{{}}", "{{a b}}" */
    if (*len == 0 || b != c) {
        return -1;
    }

    return 1;
}


int
vw_template_check(const char *tpl, char *err, size_t errlen)
{
    return vw_template_check_fields(tpl, vw_tfields, err, errlen);
}


int
vw_template_check_fields(const char *tpl, const char *const *fields,
    char *err, size_t errlen)
{
    int          rc, i;
    size_t       len, n;
    vw_buf_t     known;
    const char  *p, *start, *end, *name;

    p = tpl;

    for ( ;; ) {
        rc = vw_tnext(p, &start, &end, &name, &len);

        if (rc == 0) {
            return 0;
        }

        if (rc < 0) {
            snprintf(err, errlen, "template: \"{{\" without a field and "
                     "\"}}\" at offset %zu", (size_t) (start - tpl));
            return -1;
        }

        for (i = 0; fields[i]; i++) {
            if ((strlen(fields[i]) == len
                 && strncmp(fields[i], name, len) == 0)
                || (strcmp(fields[i], "attr.*") == 0 && vw_tattr(name, len)))
            {
                break;
            }
        }

        if (fields[i] == NULL) {
            memset(&known, 0, sizeof(vw_buf_t));

            for (n = 0; fields[n]; n++) {
                vw_buf_adds(&known, n ? ", " : "");
                vw_buf_adds(&known, fields[n]);
            }

            snprintf(err, errlen, "template: unknown field \"%.*s\" "
                     "(known: %s)", (int) len, name, known.data);
            vw_buf_free(&known);
            return -1;
        }

        p = end;
    }
}


int
vw_template_uses(const char *tpl, const char *const *fields)
{
    size_t       i, len;
    const char  *p, *start, *end, *name;

    p = tpl;

    while (p && vw_tnext(p, &start, &end, &name, &len) == 1) {
        for (i = 0; fields[i]; i++) {
            if (strlen(fields[i]) == len
                && strncmp(fields[i], name, len) == 0)
            {
                return 1;
            }
        }

        p = end;
    }

    return 0;
}


char *
vw_template_render(const char *tpl, const vw_tvar_t *vars, size_t n)
{
    size_t       i, len;
    vw_buf_t     b;
    const char  *p, *start, *end, *name;

    memset(&b, 0, sizeof(vw_buf_t));
    vw_buf_adds(&b, "");
    p = tpl;

    while (vw_tnext(p, &start, &end, &name, &len) == 1) {
        vw_buf_add(&b, p, (size_t) (start - p));

        for (i = 0; i < n; i++) {
            if (strlen(vars[i].name) == len
                && strncmp(vars[i].name, name, len) == 0)
            {
                if (vars[i].value) {
                    vw_buf_adds(&b, vars[i].value);
                }

                break;
            }
        }

        p = end;
    }

    vw_buf_adds(&b, p);

    return b.data;
}


void
vw_money(int64_t minor, const char *currency, char *buf, size_t size)
{
    int       neg;
    uint64_t  u;

    neg = minor < 0;
    u = neg ? (uint64_t) 0 - (uint64_t) minor : (uint64_t) minor;

    snprintf(buf, size, "%s%llu.%02llu%s%s", neg ? "-" : "",
             (unsigned long long) (u / 100), (unsigned long long) (u % 100),
             currency && currency[0] ? " " : "", currency ? currency : "");
}


void
vw_discount_text(const char *kind, int64_t value, const char *currency,
    char *buf, size_t size)
{
    if (kind == NULL) {
        buf[0] = '\0';
        return;
    }

    /* basis points: 1000 is 10%, 1250 is 12.5% */
    if (strcmp(kind, "percent") == 0) {
        if (value % 100 == 0) {
            snprintf(buf, size, "%lld%%", (long long) (value / 100));

        } else if (value % 10 == 0) {
            snprintf(buf, size, "%lld.%lld%%", (long long) (value / 100),
                     (long long) (value % 100 / 10));

        } else {
            snprintf(buf, size, "%lld.%02lld%%", (long long) (value / 100),
                     (long long) (value % 100));
        }

        return;
    }

    if (strcmp(kind, "free_item") == 0) {
        snprintf(buf, size, "%lld free", (long long) (value > 0 ? value : 1));
        return;
    }

    vw_money(value, currency, buf, size);
}
