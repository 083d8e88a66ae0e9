
/*
 * Copyright (C) ngx_voucher authors
 *
 * libFuzzer target for the admin API's request parsing
 * (worker/daemon/vw_admin_parse.c): the input is "METHOD URL\n" then
 * "key=value&..." (the query, split as libmicrohttpd splits it) then
 * "\n" and the body, whose Content-Type is the first line's third word.
 * Nothing may crash, leak or break the invariants checked here.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "vw_admin_parse.h"


/* the shapes of the API's paths; no operation runs here */
static const vw_route_t  routes[] = {
    { "GET", "/v1/campaigns", NULL, 0 },
    { "POST", "/v1/campaigns", NULL, 0 },
    { "GET", "/v1/campaigns/{}", NULL, 0 },
    { "PATCH", "/v1/campaigns/{}", NULL, 0 },
    { "POST", "/v1/campaigns/{}/pause", NULL, 0 },
    { "GET", "/v1/codes/{}", NULL, 0 },
    { "POST", "/v1/codes/{}/debit", NULL, 0 },
    { "DELETE", "/v1/members/{}", NULL, 0 },
    { "GET", "/v1/members/{}/codes", NULL, 0 },
    { "POST", "/v1/jobs/codes/import", NULL, VW_ROUTE_RAW },
    { "GET", "/v1/jobs/{}", NULL, 0 },
    { "GET", "/v1/jobs/{}/output", NULL, VW_ROUTE_STREAM },
    { "GET", "/v1/loyalty/members/{}", NULL, 0 },
    { "POST", "/v1/loyalty/members/{}/adjust", NULL, 0 },
    { "PUT", "/v1/loyalty/rewards/{}", NULL, 0 },
    { "GET", "/v1/members/{}/wallet", NULL, 0 },
    { "POST", "/v1/members/{}/wallet/remove", NULL, 0 },
    { "POST", "/v1/qualify", NULL, 0 },
    { NULL, NULL, NULL, 0 }
};


static char *
take(const uint8_t **p, const uint8_t *end, int stop)
{
    char           *s;
    const uint8_t  *q;

    for (q = *p; q < end && *q != stop; q++) { /* void */ }

    s = malloc(q - *p + 1);
    memcpy(s, *p, q - *p);
    s[q - *p] = '\0';
    *p = q < end ? q + 1 : q;

    return s;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                rc;
    char              *line, *query, *method, *url, *ct, *arg, *eq, *amp;
    char               id[512], allow[64], name[64];
    size_t             i;
    json_t            *q, *body, *v;
    const char        *k;
    const uint8_t     *p, *end;
    vw_operr_t         e;
    const vw_route_t  *r;

    p = data;
    end = data + size;

    line = take(&p, end, '\n');
    query = take(&p, end, '\n');

    method = line;
    url = strchr(line, ' ');
    url = url ? (*url = '\0', url + 1) : (char *) "";
    ct = strchr(url, ' ');
    ct = ct ? (*ct = '\0', ct + 1) : NULL;

    rc = vw_admin_route(routes, method, url, &r, id, sizeof(id), allow,
                        sizeof(allow));

    CHECK(rc >= VW_ROUTE_OK && rc <= VW_ROUTE_BAD);
    CHECK((rc == VW_ROUTE_OK) == (r != NULL));
    CHECK(strlen(allow) < sizeof(allow));

    if (rc == VW_ROUTE_OK) {
        CHECK(strcmp(r->method, method) == 0);

        for (i = 0; id[i]; i++) {
            CHECK((unsigned char) id[i] >= 0x20 && id[i] != 0x7f);
        }

        CHECK((strstr(r->path, "{}") != NULL) == (id[0] != '\0'));
    }

    if (rc == VW_ROUTE_METHOD) {
        CHECK(allow[0] != '\0');
    }

    /* the query as libmicrohttpd hands it over: key and value, raw */
    q = json_object();

    for (arg = query; arg && *arg; arg = amp) {
        amp = strchr(arg, '&');

        if (amp) {
            *amp++ = '\0';
        }

        eq = strchr(arg, '=');

        if (eq) {
            *eq++ = '\0';
        }

        if (vw_admin_query_add(q, arg, eq, name, sizeof(name)) != 0) {
            break;
        }
    }

    json_object_foreach(q, k, v) {
        CHECK(json_is_string(v));
        CHECK(strlen(json_string_value(v)) == json_string_length(v));
    }

    json_decref(q);

    (void) vw_admin_json_type(ct);
    rc = vw_admin_file_type(ct);
    CHECK(rc >= 0 && rc <= 2);

    memset(&e, 0, sizeof(e));
    body = NULL;

    if (vw_admin_parse_body((const char *) p, end - p, &body, &e) == 0) {
        CHECK(json_is_object(body));
        json_decref(body);

    } else {
        CHECK(body == NULL);
        CHECK(e.status == 400);
        CHECK(strcmp(e.reason, "invalid_json") == 0
              || strcmp(e.reason, "duplicate_field") == 0
              || strcmp(e.reason, "invalid_request") == 0);
    }

    free(line);
    free(query);

    return 0;
}
