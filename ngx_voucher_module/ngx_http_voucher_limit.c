
/*
 * Copyright (C) ngx_voucher authors
 *
 * Attempt limits held in Redis and shared by every nginx node: rates
 * (GCRA) and lockouts of keys that send too many bad codes.  They ride in
 * the same FCALL as the validate or redeem they guard, so a limit costs
 * no extra round trip, and are checked on Redis' clock.
 */


#include "ngx_http_voucher.h"

#include <sodium.h>


#define NGX_HTTP_VOUCHER_LIMIT_RATE     'r'
#define NGX_HTTP_VOUCHER_LIMIT_LOCKOUT  'l'


typedef struct {
    ngx_uint_t                  kind;
    ngx_uint_t                  scope;      /* 1 << op */
    ngx_str_t                   name;
    ngx_http_complex_value_t    key;
    ngx_str_t                   args;       /* "a:b[:c]:name:" */
} ngx_http_voucher_limit_t;


static char *ngx_http_voucher_limit_fields(ngx_conf_t *cf,
    ngx_http_voucher_limit_t *lim, int64_t a, int64_t b, int64_t c);


/*
 * voucher_limit KEY rate=N r/s|r/m|r/h [burst=N] [scope=S] [name=NAME];
 * voucher_lockout KEY failures=N window=TIME ban=TIME [scope=S] [name=NAME];
 */

char *
ngx_http_voucher_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    u_char                            *p;
    int64_t                            us, burst, failures;
    ngx_str_t                         *value, s;
    ngx_int_t                          n;
    ngx_msec_t                         window, ban;
    ngx_uint_t                         i, lockout;
    ngx_http_voucher_limit_t          *lim;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;
    lockout = (value[0].len == sizeof("voucher_lockout") - 1);

    /* long keys are hashed with libsodium's BLAKE2b */

    if (sodium_init() < 0) {
        return "cannot initialise libsodium";
    }

    if (vlcf->limits == NULL) {
        vlcf->limits = ngx_array_create(cf->pool, 2,
                                        sizeof(ngx_http_voucher_limit_t));
        if (vlcf->limits == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    lim = ngx_array_push(vlcf->limits);
    if (lim == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(lim, sizeof(ngx_http_voucher_limit_t));

    lim->kind = lockout ? NGX_HTTP_VOUCHER_LIMIT_LOCKOUT
                        : NGX_HTTP_VOUCHER_LIMIT_RATE;
    lim->scope = (1 << NGX_HTTP_VOUCHER_OP_VALIDATE)
                 | (1 << NGX_HTTP_VOUCHER_OP_REDEEM);

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = &lim->key;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    us = 0;
    burst = 0;
    failures = 0;
    window = 0;
    ban = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (!lockout && ngx_strncmp(value[i].data, "rate=", 5) == 0) {
            p = value[i].data + value[i].len - 3;

            if (value[i].len < 9 || p[0] != 'r' || p[1] != '/') {
                goto invalid;
            }

            n = ngx_atoi(value[i].data + 5, value[i].len - 8);
            if (n <= 0) {
                goto invalid;
            }

            switch (p[2]) {
            case 's':
                us = 1000000;
                break;
            case 'm':
                us = 60000000;
                break;
            case 'h':
                us = 3600000000LL;
                break;
            default:
                goto invalid;
            }

            /* the emission interval of GCRA, in microseconds */
            us /= n;
            if (us < 1) {
                goto invalid;
            }

            continue;
        }

        if (!lockout && ngx_strncmp(value[i].data, "burst=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n == NGX_ERROR || n > 1000000) {
                goto invalid;
            }
            burst = n;
            continue;
        }

        if (lockout && ngx_strncmp(value[i].data, "failures=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n <= 0 || n > 1000000) {
                goto invalid;
            }
            failures = n;
            continue;
        }

        if (lockout && ngx_strncmp(value[i].data, "window=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;
            window = ngx_parse_time(&s, 0);
            if (window == (ngx_msec_t) NGX_ERROR || window == 0) {
                goto invalid;
            }
            continue;
        }

        if (lockout && ngx_strncmp(value[i].data, "ban=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;
            ban = ngx_parse_time(&s, 0);
            if (ban == (ngx_msec_t) NGX_ERROR || ban == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "scope=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            if (s.len == 8 && ngx_strncmp(s.data, "validate", 8) == 0) {
                lim->scope = 1 << NGX_HTTP_VOUCHER_OP_VALIDATE;

            } else if (s.len == 6 && ngx_strncmp(s.data, "redeem", 6) == 0) {
                lim->scope = 1 << NGX_HTTP_VOUCHER_OP_REDEEM;

            } else if (s.len == 4 && ngx_strncmp(s.data, "both", 4) == 0) {
                /* the default */

            } else {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "name=", 5) == 0) {
            lim->name.data = value[i].data + 5;
            lim->name.len = value[i].len - 5;

            if (lim->name.len == 0 || lim->name.len > 32) {
                goto invalid;
            }

            for (p = lim->name.data; p < lim->name.data + lim->name.len; p++)
            {
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
                      || *p == '_' || *p == '-'))
                {
                    goto invalid;
                }
            }

            continue;
        }

        goto invalid;
    }

    if (lim->name.len == 0) {
        /* by position: r1, r2, l1, ... */
        p = ngx_pnalloc(cf->pool, NGX_INT_T_LEN + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        lim->name.data = p;
        lim->name.len = ngx_sprintf(p, "%c%ui", (int) lim->kind,
                                    vlcf->limits->nelts)
                        - p;
    }

    if (lockout) {
        if (failures == 0 || window == 0 || ban == 0) {
            return "needs \"failures=\", \"window=\" and \"ban=\"";
        }

        return ngx_http_voucher_limit_fields(cf, lim, failures, window, ban);
    }

    if (us == 0) {
        return "needs \"rate=\"";
    }

    return ngx_http_voucher_limit_fields(cf, lim, us, burst, -1);

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * The limit's FCALL argument but for its kind letter and its key, made
 * once: "a:b:name:" for a rate, in hexadecimal (the library reads it with
 * strtoul, cheaper than strtod), and "a:b:c:name:" for a lockout (c >= 0),
 * in decimal.  The key goes last, so it needs no escaping; a name holds no
 * ':'.
 */

static char *
ngx_http_voucher_limit_fields(ngx_conf_t *cf, ngx_http_voucher_limit_t *lim,
    int64_t a, int64_t b, int64_t c)
{
    u_char  *p;

    p = ngx_pnalloc(cf->pool, 3 * (NGX_INT64_LEN + 1) + lim->name.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    lim->args.data = p;

    if (c < 0) {
        p = ngx_sprintf(p, "%xL:%xL:", a, b);

    } else {
        p = ngx_sprintf(p, "%L:%L:%L:", a, b, c);
    }

    p = ngx_sprintf(p, "%V:", &lim->name);

    lim->args.len = p - lim->args.data;

    return NGX_CONF_OK;
}


/* like limit_req: a level with no limits of its own inherits them all */

char *
ngx_http_voucher_limit_merge(ngx_conf_t *cf,
    ngx_http_voucher_loc_conf_t *prev, ngx_http_voucher_loc_conf_t *conf)
{
    if (conf->limits == NULL) {
        conf->limits = prev->limits;
    }

    ngx_conf_merge_uint_value(conf->limit_status, prev->limit_status,
                              NGX_HTTP_TOO_MANY_REQUESTS);
    ngx_conf_merge_uint_value(conf->limit_log_level, prev->limit_log_level,
                              NGX_LOG_WARN);
    ngx_conf_merge_value(conf->limit_dry_run, prev->limit_dry_run, 0);

    return NGX_CONF_OK;
}


/*
 * How many FCALL arguments the limits of this request need: one each, an
 * upper bound counted before the keys are known.
 */

ngx_uint_t
ngx_http_voucher_limit_nargs(ngx_http_voucher_loc_conf_t *vlcf)
{
    return vlcf->limits ? vlcf->limits->nelts : 0;
}


/*
 * Appends one argument, "r<a>:<b>:<name>:<key>" or
 * "l<a>:<b>:<c>:<name>:<key>" (R and L in a dry run), for each limit in
 * scope of op (ngx_http_voucher_limit_op()) whose key is not empty.  Returns the number of arguments
 * added (0 when no limit applies).
 */

/*
 * The operation whose limits apply to op: a reservation, a loyalty earn
 * and a storefront event are redeems; a saved code is a validate (both
 * tell a code that exists from one that does not), and so are a loyalty
 * balance and history.
 */

ngx_int_t
ngx_http_voucher_limit_op(ngx_int_t op)
{
    switch (op) {

    case NGX_HTTP_VOUCHER_OP_RESERVE:
    case NGX_HTTP_VOUCHER_OP_LOYALTY_EARN:
    case NGX_HTTP_VOUCHER_OP_EVENT:
        return NGX_HTTP_VOUCHER_OP_REDEEM;

    case NGX_HTTP_VOUCHER_OP_WALLET_SAVE:
    case NGX_HTTP_VOUCHER_OP_LOYALTY_BALANCE:
    case NGX_HTTP_VOUCHER_OP_LOYALTY_HISTORY:
        return NGX_HTTP_VOUCHER_OP_VALIDATE;

    default:
        return op;
    }
}


ngx_int_t
ngx_http_voucher_limit_args(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_int_t op, const char **argv,
    size_t *argvlen)
{
    u_char                    *p, buf[NGX_HTTP_VOUCHER_LIMIT_KEY_LEN];
    ngx_str_t                  key;
    ngx_uint_t                 i, n;
    ngx_http_voucher_limit_t  *lim;

    if (vlcf->limits == NULL) {
        return 0;
    }

    op = ngx_http_voucher_limit_op(op);
    lim = vlcf->limits->elts;
    n = 0;

    for (i = 0; i < vlcf->limits->nelts; i++) {

        if (!(lim[i].scope & (1 << op))) {
            continue;
        }

        if (ngx_http_voucher_limit_key(r, &lim[i].key, buf, &key) != NGX_OK) {
            return NGX_ERROR;
        }

        /* like limit_req: an empty key is not limited */

        if (key.len == 0) {
            continue;
        }

        p = ngx_pnalloc(r->pool, 1 + lim[i].args.len + key.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        argv[n] = (const char *) p;
        argvlen[n++] = 1 + lim[i].args.len + key.len;

        /* 'r', 'l'; 'R', 'L' in a dry run */
        *p++ = (u_char) (vlcf->limit_dry_run ? lim[i].kind - 'a' + 'A'
                                             : lim[i].kind);
        p = ngx_cpymem(p, lim[i].args.data, lim[i].args.len);
        ngx_memcpy(p, key.data, key.len);
    }

    return n;
}


/*
 * The key of a limit for this request, as Redis and the lockout cache keep
 * it.  A key of at most NGX_HTTP_VOUCHER_LIMIT_KEY_MAX (64) bytes is kept as
 * it is, so the usual keys ($binary_remote_addr, an id) cost nothing more.
 * A longer key is kept as "~" and the 64 hex digits of its BLAKE2b-256, in
 * buf: 65 bytes, longer than any key kept as it is, so the two forms never
 * meet, and two long keys share state only if their digests collide.
 * Nothing is cut: keys that share a long prefix are different keys.
 *
 * The digest is unkeyed: every nginx node that shares the Redis must agree
 * on it with no secret to share or rotate, and an operator can name the
 * state of a key (b2sum -l 256).  A key would not add to what matters,
 * that no one can make a key of their own land on another's state: that
 * takes a second preimage of BLAKE2b-256.
 */

ngx_int_t
ngx_http_voucher_limit_key(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, u_char *buf, ngx_str_t *key)
{
    u_char  digest[32];

    if (ngx_http_complex_value(r, cv, key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (key->len <= NGX_HTTP_VOUCHER_LIMIT_KEY_MAX) {
        return NGX_OK;
    }

    if (crypto_generichash(digest, sizeof(digest), key->data, key->len,
                           NULL, 0)
        != 0)
    {
        return NGX_ERROR;
    }

    buf[0] = '~';
    ngx_hex_dump(buf + 1, digest, sizeof(digest));

    key->data = buf;
    key->len = NGX_HTTP_VOUCHER_LIMIT_KEY_LEN;

    return NGX_OK;
}


/*
 * The i-th limit of the location, for the lockout cache: info names it
 * when it is a lockout in scope of op (ngx_http_voucher_limit_op()), and
 * is empty otherwise.  Returns 0 past the last limit.
 */

ngx_uint_t
ngx_http_voucher_limit_lockout(ngx_http_voucher_loc_conf_t *vlcf,
    ngx_uint_t i, ngx_int_t op, ngx_http_voucher_limit_info_t *info)
{
    ngx_http_voucher_limit_t  *lim;

    info->name.len = 0;
    info->name.data = NULL;
    info->key = NULL;

    if (vlcf->limits == NULL || i >= vlcf->limits->nelts) {
        return 0;
    }

    op = ngx_http_voucher_limit_op(op);

    lim = vlcf->limits->elts;

    if (lim[i].kind == NGX_HTTP_VOUCHER_LIMIT_LOCKOUT
        && (lim[i].scope & (1 << op)))
    {
        info->name = lim[i].name;
        info->key = &lim[i].key;
    }

    return 1;
}
