
/*
 * Copyright (C) ngx_voucher authors
 *
 * Typed fields out of a JSON object (jansson), for the configuration file
 * and the automations.  An error names the field by its path, the object's
 * path and the field's name joined by a dot ("codes.length: expected an
 * integer 4..24"); an empty path names the field alone.  An absent or
 * null field leaves *out as it was.
 */


#ifndef _VW_JSON_H_INCLUDED_
#define _VW_JSON_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include <jansson.h>


/* where the messages go */
typedef struct {
    char          *err;
    size_t         errlen;
} vw_jerr_t;


/* "path: message" ("message" with an empty path) into e->err; -1 */
int vw_json_fail(vw_jerr_t *e, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* every key of o is one of names (NULL-terminated); else "path: unknown" */
int vw_json_known(vw_jerr_t *e, json_t *o, const char *path,
    const char *const *names);

/* a non-empty string without NUL, copied into *out (the old one freed) */
int vw_json_str(vw_jerr_t *e, json_t *o, const char *path, const char *name,
    int required, char **out);

/* an integer in min..max */
int vw_json_int(vw_jerr_t *e, json_t *o, const char *path, const char *name,
    int64_t min, int64_t max, int64_t *out);

/* an object, or NULL: absent or null (*rc 0), of another type (*rc -1) */
json_t *vw_json_obj(vw_jerr_t *e, json_t *o, const char *path,
    const char *name, int *rc);


#endif /* _VW_JSON_H_INCLUDED_ */
