
/*
 * Copyright (C) ngx_voucher authors
 *
 * The admin API's request parsing, pure C on jansson (fuzzed by
 * fuzz/fuzz_admin.c): the route of a path, its percent-decoded id, the
 * query's arguments, the content type and the JSON body.
 */


#ifndef _VW_ADMIN_PARSE_H_INCLUDED_
#define _VW_ADMIN_PARSE_H_INCLUDED_


#include <stddef.h>

#include <jansson.h>

#include "vw_op.h"


#define VW_ROUTE_RAW     0x01           /* the body is a file (imports) */
#define VW_ROUTE_STREAM  0x02           /* the answer is a job's output */
#define VW_ROUTE_METRICS 0x04           /* Prometheus text */
#define VW_ROUTE_PICTURE 0x08           /* a QR picture or a barcode */
#define VW_ROUTE_LINK    0x10           /* /qr, a signed link's picture */


typedef struct {
    const char             *method;
    const char             *path;       /* "{}" is one segment, the id */
    vw_op_pt                handler;
    int                     flags;
} vw_route_t;


#define VW_ROUTE_OK      0
#define VW_ROUTE_NONE    1              /* no such path */
#define VW_ROUTE_METHOD  2              /* the path, not the method */
#define VW_ROUTE_BAD     3              /* a bad escape, a control byte */


/*
 * Finds the route of method and url (raw, as sent) in routes (ended by a
 * NULL method): VW_ROUTE_OK with *out and id (decoded) set; with
 * VW_ROUTE_METHOD, allow lists the methods of the path.
 */
int vw_admin_route(const vw_route_t *routes, const char *method,
    const char *url, const vw_route_t **out, char *id, size_t idsize,
    char *allow, size_t allowsize);

/*
 * Decodes a query argument (percent escapes, "+" for a space) into q as a
 * string; -1 (name says which) when it is malformed, not UTF-8, holds a
 * control character, or was given already.
 */
int vw_admin_query_add(json_t *q, const char *key, const char *value,
    char *name, size_t namesize);

/* application/json or application/<x>+json, with parameters or not */
int vw_admin_json_type(const char *ct);

/*
 * The type of a file to import: 1 text/csv or text/plain, 2
 * application/x-ndjson or application/jsonl, 0 another (or none).
 */
int vw_admin_file_type(const char *ct);

/*
 * The body as a JSON object (an empty body is {}): else 400 invalid_json,
 * duplicate_field or invalid_request in e.
 */
int vw_admin_parse_body(const char *data, size_t len, json_t **out,
    vw_operr_t *e);


#endif /* _VW_ADMIN_PARSE_H_INCLUDED_ */
