
/*
 * Copyright (C) ngx_voucher authors
 *
 * The admin API's request parsing: see vw_admin_parse.h.  No allocation
 * but jansson's, no globals, no I/O.
 */


#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vw_admin_parse.h"


static int
vw_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}


/*
 * Decodes s[0..n) into out (size > 0); plus: "+" is a space.  -1 on a
 * malformed escape, a control byte, a result too long or not UTF-8.
 */

static int
vw_unescape(const char *s, size_t n, int plus, char *out, size_t size)
{
    int      h, l;
    size_t   i, o;
    json_t  *check;

    for (i = 0, o = 0; i < n; i++) {
        if (o + 1 >= size) {
            return -1;
        }

        if (s[i] == '%') {
            h = i + 1 < n ? vw_hex((unsigned char) s[i + 1]) : -1;
            l = i + 2 < n ? vw_hex((unsigned char) s[i + 2]) : -1;

            if (h < 0 || l < 0) {
                return -1;
            }

            out[o++] = (char) (h * 16 + l);
            i += 2;

        } else if (plus && s[i] == '+') {
            out[o++] = ' ';

        } else {
            out[o++] = s[i];
        }

        if ((unsigned char) out[o - 1] < 0x20 || out[o - 1] == 0x7f) {
            return -1;
        }
    }

    out[o] = '\0';

    /* jansson refuses a string that is not UTF-8 */
    check = json_stringn(out, o);

    if (check == NULL) {
        return -1;
    }

    json_decref(check);

    return 0;
}


/* does the raw url match the pattern; the id decoded into id */

static int
vw_match(const char *pattern, const char *url, char *id, size_t idsize,
    int *bad)
{
    size_t       pn, un;
    const char  *p, *u;

    p = pattern;
    u = url;

    while (*p && *u) {
        if (*p != '/' || *u != '/') {
            return 0;
        }

        p++;
        u++;
        pn = strcspn(p, "/");
        un = strcspn(u, "/");

        if (pn == 2 && strncmp(p, "{}", 2) == 0) {
            if (un == 0) {
                return 0;
            }

            if (vw_unescape(u, un, 0, id, idsize) != 0) {
                *bad = 1;
                return 0;
            }

        } else if (pn != un || strncmp(p, u, pn) != 0) {
            return 0;
        }

        p += pn;
        u += un;
    }

    return *p == '\0' && *u == '\0';
}


int
vw_admin_route(const vw_route_t *routes, const char *method,
    const char *url, const vw_route_t **out, char *id, size_t idsize,
    char *allow, size_t allowsize)
{
    int                bad, found;
    size_t             n;
    const vw_route_t  *r;

    bad = 0;
    found = 0;
    allow[0] = '\0';
    id[0] = '\0';
    *out = NULL;

    for (r = routes; r->method; r++) {
        if (!vw_match(r->path, url, id, idsize, &bad)) {
            continue;
        }

        if (strcmp(r->method, method) == 0) {
            *out = r;
            return VW_ROUTE_OK;
        }

        found = 1;
        n = strlen(allow);

        if (strstr(allow, r->method) == NULL) {
            snprintf(allow + n, allowsize - n, "%s%s", n ? ", " : "",
                     r->method);
        }
    }

    if (found) {
        return VW_ROUTE_METHOD;
    }

    return bad ? VW_ROUTE_BAD : VW_ROUTE_NONE;
}


int
vw_admin_query_add(json_t *q, const char *key, const char *value,
    char *name, size_t namesize)
{
    char  k[128], v[1024];

    snprintf(name, namesize, "%s", "");

    if (vw_unescape(key, strlen(key), 1, k, sizeof(k)) != 0 || k[0] == '\0')
    {
        return -1;
    }

    snprintf(name, namesize, "%s", k);

    if (value == NULL) {
        value = "";
    }

    if (vw_unescape(value, strlen(value), 1, v, sizeof(v)) != 0
        || json_object_get(q, k) != NULL)
    {
        return -1;
    }

    json_object_set_new(q, k, json_string(v));

    return 0;
}


int
vw_admin_json_type(const char *ct)
{
    size_t       n;
    const char  *sub, *end;

    if (ct == NULL) {
        return 0;
    }

    ct += strspn(ct, " \t");
    n = strcspn(ct, "; \t");

    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0) {
        return 1;
    }

    /* application/<x>+json */
    if (n > 17 && strncasecmp(ct, "application/", 12) == 0) {
        sub = ct + 12;
        end = ct + n;

        return end - sub > 5 && strncasecmp(end - 5, "+json", 5) == 0
               && memchr(sub, '/', end - sub) == NULL;
    }

    return 0;
}


int
vw_admin_file_type(const char *ct)
{
    size_t  n;

    if (ct == NULL) {
        return 0;
    }

    ct += strspn(ct, " \t");
    n = strcspn(ct, "; \t");

    if ((n == 8 && strncasecmp(ct, "text/csv", 8) == 0)
        || (n == 10 && strncasecmp(ct, "text/plain", 10) == 0))
    {
        return 1;
    }

    if ((n == 20 && strncasecmp(ct, "application/x-ndjson", 20) == 0)
        || (n == 17 && strncasecmp(ct, "application/jsonl", 17) == 0))
    {
        return 2;
    }

    return 0;
}


static int
vw_parse_fail(vw_operr_t *e, const char *reason, const char *message)
{
    e->status = 400;
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
    e->field[0] = '\0';
    snprintf(e->message, sizeof(e->message), "%s", message);

    return -1;
}


int
vw_admin_parse_body(const char *data, size_t len, json_t **out,
    vw_operr_t *e)
{
    json_t        *j;
    json_error_t   je;

    *out = NULL;

    if (len == 0) {
        *out = json_object();
        return 0;
    }

    j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);

    if (j == NULL) {
        if (json_error_code(&je) == json_error_duplicate_key) {
            vw_parse_fail(e, "duplicate_field", "");
            snprintf(e->message, sizeof(e->message),
                     "a key twice in one object, at byte %d", je.position);
            return -1;
        }

        vw_parse_fail(e, "invalid_json", "");
        snprintf(e->message, sizeof(e->message), "not JSON: %s at byte %d",
                 je.text, je.position);
        return -1;
    }

    if (!json_is_object(j)) {
        json_decref(j);
        return vw_parse_fail(e, "invalid_request",
                             "the body is not a JSON object");
    }

    *out = j;

    return 0;
}
