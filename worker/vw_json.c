
/*
 * Copyright (C) ngx_voucher authors
 *
 * Typed fields out of a JSON object: see vw_json.h.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_json.h"
#include "vw_util.h"


int
vw_json_fail(vw_jerr_t *e, const char *path, const char *fmt, ...)
{
    int      n;
    va_list  args;

    n = path[0] ? snprintf(e->err, e->errlen, "%s: ", path) : 0;

    if (n >= 0 && (size_t) n < e->errlen) {
        va_start(args, fmt);
        vsnprintf(e->err + n, e->errlen - (size_t) n, fmt, args);
        va_end(args);
    }

    return -1;
}


/* the field's path: "path.name", or "name" with an empty path */

static const char *
vw_json_path(char *buf, size_t size, const char *path, const char *name)
{
    snprintf(buf, size, "%s%s%s", path, path[0] ? "." : "", name);

    return buf;
}


int
vw_json_known(vw_jerr_t *e, json_t *o, const char *path,
    const char *const *names)
{
    size_t        i;
    const char   *key;
    json_t       *v;

    json_object_foreach(o, key, v) {
        for (i = 0; names[i]; i++) {
            if (strcmp(key, names[i]) == 0) {
                break;
            }
        }

        if (names[i] == NULL) {
            return vw_json_fail(e, path, "unknown field \"%s\"", key);
        }
    }

    return 0;
}


int
vw_json_str(vw_jerr_t *e, json_t *o, const char *path, const char *name,
    int required, char **out)
{
    char     p[256];
    json_t  *v;

    v = json_object_get(o, name);

    if (v == NULL || json_is_null(v)) {
        if (required) {
            return vw_json_fail(e, vw_json_path(p, sizeof(p), path, name),
                                "required");
        }

        return 0;
    }

    if (!json_is_string(v) || json_string_length(v) == 0
        || strlen(json_string_value(v)) != json_string_length(v))
    {
        return vw_json_fail(e, vw_json_path(p, sizeof(p), path, name),
                            "expected a non-empty string");
    }

    free(*out);
    *out = vw_xstrdup(json_string_value(v));

    return 0;
}


int
vw_json_int(vw_jerr_t *e, json_t *o, const char *path, const char *name,
    int64_t min, int64_t max, int64_t *out)
{
    char     p[256];
    json_t  *v;

    v = json_object_get(o, name);

    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    if (!json_is_integer(v) || json_integer_value(v) < min
        || json_integer_value(v) > max)
    {
        return vw_json_fail(e, vw_json_path(p, sizeof(p), path, name),
                            "expected an integer %lld..%lld",
                            (long long) min, (long long) max);
    }

    *out = json_integer_value(v);

    return 0;
}


json_t *
vw_json_obj(vw_jerr_t *e, json_t *o, const char *path, const char *name,
    int *rc)
{
    char     p[256];
    json_t  *v;

    *rc = 0;
    v = json_object_get(o, name);

    if (v == NULL || json_is_null(v)) {
        return NULL;
    }

    if (!json_is_object(v)) {
        *rc = vw_json_fail(e, vw_json_path(p, sizeof(p), path, name),
                           "expected an object");
        return NULL;
    }

    return v;
}
