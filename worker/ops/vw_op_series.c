
/*
 * Copyright (C) ngx_voucher authors
 *
 * The admin operations of serial series (common/voucher_serial.h): issue
 * one (register it: nothing is written per code) and read it with its
 * count of used codes.  voucherctl series export makes the codes again.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "vw_op.h"
#include "voucher_serial.h"


static int
vw_series_id(const char *id, vw_operr_t *e)
{
    if (id == NULL || voucher_series_name_check(id, strlen(id)) != 0) {
        return vw_op_fail(e, 400, "invalid_field", "series",
                          "series: 1..32 of A-Z a-z 0-9 _ -");
    }

    return 0;
}


/* the series id as voucher_series_get answers it, with "left" */

static int
vw_series_read(vw_op_t *op, const char *id, json_t **out, vw_operr_t *e)
{
    json_t      *o, *size, *used;
    redisReply  *r;

    r = vw_op_fcall_key(op, "voucher_series_get",
                        vw_key(op->cf, "sr:%s", id), e);

    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return vw_op_fail(e, 404, "not_found", NULL, "no series \"%s\"",
                          id);
    }

    o = vw_op_pairs(r);
    freeReplyObject(r);

    size = json_object_get(o, "size");
    used = json_object_get(o, "used");
    json_object_set_new(o, "series", json_string(id));
    json_object_set_new(o, "left", json_integer(json_integer_value(size)
                                                - json_integer_value(used)));
    *out = o;

    return 200;
}


int
vw_op_series_get(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    static const char *const  none[] = { NULL };

    if (vw_series_id(in->id, e) != 0 || vw_op_known(in->query, none, e) != 0)
    {
        return -1;
    }

    return vw_series_read(op, in->id, out, e);
}


/*
 * PUT /v1/series/{series}: {campaign, size, prefix, length, mac_length,
 * charset, suffix}.  Issued in this format with the key of the
 * configuration; again with a larger size it grows.
 */

int
vw_op_series_set(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char              prefix[VOUCHER_CODE_MAX_LEN + 1], *key;
    char              suffix[VOUCHER_CODE_MAX_LEN + 1], err[160];
    size_t            plen;
    int64_t           size, body, mac;
    uint64_t          domain;
    vw_args_t         a;
    redisReply       *r;
    const char       *camp, *p, *cs, *sf;
    voucher_format_t  fmt;
    voucher_serial_t  s;

    static const char *const  names[] = {
        "campaign", "size", "prefix", "length", "mac_length", "charset",
        "suffix", NULL
    };

    p = NULL;
    cs = NULL;
    sf = NULL;
    body = 10;
    mac = 5;

    if (vw_series_id(in->id, e) != 0
        || vw_op_known(in->body, names, e) != 0
        || vw_op_str(in, in->body, "campaign", 1, &camp, e) != 0
        || vw_op_int(in, in->body, "size", 1, 1, 4294967296LL, &size, e)
           != 0
        || vw_op_int(in, in->body, "length", 0, 1, VOUCHER_BODY_MAX_LEN,
                     &body, e) != 0
        || vw_op_int(in, in->body, "mac_length", 0, 1, VOUCHER_MAC_MAX_LEN,
                     &mac, e) != 0
        || vw_op_str(in, in->body, "prefix", 0, &p, e) != 0
        || vw_op_str(in, in->body, "charset", 0, &cs, e) != 0
        || vw_op_str(in, in->body, "suffix", 0, &sf, e) != 0)
    {
        return -1;
    }

    if (op->key == NULL) {
        return vw_op_fail(e, 409, "key_missing", NULL,
                          "no key_file in the configuration: codes cannot "
                          "be issued");
    }

    memset(&fmt, 0, sizeof(voucher_format_t));

    if (cs && cs[0]) {
        if (voucher_charset_check(cs, strlen(cs), err, sizeof(err)) != 0) {
            return vw_op_fail(e, 400, "invalid_field", "charset",
                              "charset: %s", err);
        }

        fmt.charset = cs;
        fmt.charset_len = strlen(cs);
    }

    suffix[0] = '\0';

    if (sf && sf[0]) {
        fmt.suffix_len = voucher_code_normalize(sf, strlen(sf), suffix,
                                                sizeof(suffix));
        if (fmt.suffix_len == 0) {
            return vw_op_fail(e, 400, "invalid_field", "suffix",
                              "suffix: printable ASCII");
        }

        fmt.suffix = suffix;
    }

    prefix[0] = '\0';
    plen = 0;

    if (p && p[0]) {
        plen = voucher_code_normalize(p, strlen(p), prefix, sizeof(prefix));
        if (plen == 0) {
            return vw_op_fail(e, 400, "invalid_field", "prefix",
                              "prefix: printable ASCII");
        }
    }

    if (plen + body + mac + fmt.suffix_len > VOUCHER_CODE_MAX_LEN) {
        return vw_op_fail(e, 400, "invalid_field", "length",
                          "length: the codes would be longer than 64");
    }

    if (voucher_serial_init(&s, op->key, in->id, strlen(in->id),
                            (size_t) body, &fmt)
        != 0)
    {
        return vw_op_fail(e, 400, "invalid_field", "length",
                          "length: a serial series' body holds at most "
                          "2^62 values");
    }

    domain = s.domain;
    sodium_memzero(&s, sizeof(s));

    if ((uint64_t) size > domain) {
        return vw_op_fail(e, 400, "invalid_field", "size",
                          "size: the body holds %llu codes",
                          (unsigned long long) domain);
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, camp);
    vw_args_addi(&a, size);
    vw_args_adds(&a, prefix);
    vw_args_addi(&a, body);
    vw_args_addi(&a, mac);
    vw_args_adds(&a, fmt.charset ? cs : "");
    vw_args_adds(&a, suffix);

    key = vw_key(op->cf, "sr:%s", in->id);
    r = vw_op_admin(op, key, "series.issue", in->id, "series_set", "", &a,
                    e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);

    return vw_series_read(op, in->id, out, e);
}
