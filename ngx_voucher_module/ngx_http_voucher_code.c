
/*
 * Copyright (C) ngx_voucher authors
 *
 * Offline checks of a code, in the worker, before any Redis call:
 * normalisation of what customers type, the formats the operator allows
 * (issued codes carrying a keyed MAC, vanity codes matching a pattern),
 * and key rotation.  A code that cannot exist is answered here exactly as
 * Redis answers an unknown code, so guessing costs Redis nothing and the
 * answer tells "forged" from "unknown" only with voucher_code_debug on.
 * A code of a serial series (series=) passes on its serial too.
 */


#include "ngx_http_voucher.h"

#include <sodium.h>

#include "voucher_code.h"
#include "voucher_serial.h"


/* each key made ready at configuration time: BLAKE2b keyed with it */

struct ngx_http_voucher_keys_s {
    voucher_mac_key_t           current;
    voucher_mac_key_t           previous;
    /* the keys themselves: a serial series' permutation is derived */
    u_char                      current_raw[VOUCHER_KEY_LEN];
    u_char                      previous_raw[VOUCHER_KEY_LEN];
    time_t                      previous_until;
    unsigned                    has_current:1;
    unsigned                    has_previous:1;
};


typedef struct {
    ngx_str_t                   prefix;      /* normalized */
    size_t                      body;
    size_t                      mac;
    voucher_format_t            fmt;         /* charset, suffix */
    ngx_str_t                   series;      /* a serial series' name */
} ngx_http_voucher_issued_t;


static ngx_http_voucher_keys_t *ngx_http_voucher_conf_keys(ngx_conf_t *cf,
    ngx_http_voucher_loc_conf_t *vlcf);
static char *ngx_http_voucher_load_key(ngx_conf_t *cf, ngx_str_t *file,
    voucher_mac_key_t *mk, u_char *raw);
static time_t ngx_http_voucher_parse_date(ngx_str_t *s);
static char *ngx_http_voucher_issued_format(ngx_conf_t *cf,
    ngx_http_voucher_issued_t *iss, ngx_str_t *value);
static ngx_uint_t ngx_http_voucher_issued_overlap(
    ngx_http_voucher_issued_t *a, ngx_http_voucher_issued_t *b);
static u_char ngx_http_voucher_issued_fixed(ngx_http_voucher_issued_t *iss,
    size_t len, size_t i);
static ngx_int_t ngx_http_voucher_verify(ngx_http_voucher_keys_t *keys,
    u_char *code, size_t len, ngx_http_voucher_issued_t *iss, u_char *form,
    ngx_uint_t *previous);
static ngx_int_t ngx_http_voucher_serial(ngx_http_voucher_keys_t *keys,
    ngx_uint_t previous, u_char *code, ngx_http_voucher_issued_t *iss,
    uint64_t *serial);


/* voucher_code_key FILE; */

char *
ngx_http_voucher_code_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    ngx_str_t                *value;
    ngx_http_voucher_keys_t  *keys;

    keys = ngx_http_voucher_conf_keys(cf, vlcf);
    if (keys == NULL) {
        return NGX_CONF_ERROR;
    }

    if (keys->has_current) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_voucher_load_key(cf, &value[1], &keys->current,
                                  keys->current_raw)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    keys->has_current = 1;

    return NGX_CONF_OK;
}


/* voucher_code_key_previous FILE until=DATE; */

char *
ngx_http_voucher_code_key_previous(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    ngx_str_t                *value, s;
    ngx_http_voucher_keys_t  *keys;

    keys = ngx_http_voucher_conf_keys(cf, vlcf);
    if (keys == NULL) {
        return NGX_CONF_ERROR;
    }

    if (keys->has_previous) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[2].data, "until=", 6) != 0) {
        return "needs \"until=\" (unix seconds or YYYY-MM-DD[THH:MM:SSZ])";
    }

    s.data = value[2].data + 6;
    s.len = value[2].len - 6;

    keys->previous_until = ngx_http_voucher_parse_date(&s);
    if (keys->previous_until == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"until=\" date \"%V\"", &s);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_voucher_load_key(cf, &value[1], &keys->previous,
                                  keys->previous_raw)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    keys->has_previous = 1;

    return NGX_CONF_OK;
}


/*
 * voucher_code_issued PREFIX body=N mac=M [charset=CHARS] [suffix=S]
 *                     [series=NAME];
 */

char *
ngx_http_voucher_code_issued(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    u_char                     *p;
    size_t                      len;
    ngx_int_t                   n;
    ngx_str_t                  *value;
    ngx_uint_t                  i, k;
    ngx_http_voucher_issued_t  *iss, *prev;

    if (vlcf->code_issued == NULL) {
        vlcf->code_issued = ngx_array_create(cf->pool, 2,
                                            sizeof(ngx_http_voucher_issued_t));
        if (vlcf->code_issued == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    iss = ngx_array_push(vlcf->code_issued);
    if (iss == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(iss, sizeof(ngx_http_voucher_issued_t));

    value = cf->args->elts;

    /* the prefix is kept normalized, as codes are compared normalized */

    p = ngx_pnalloc(cf->pool, value[1].len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    len = 0;

    if (value[1].len) {
        len = voucher_code_normalize((char *) value[1].data, value[1].len,
                                     (char *) p, value[1].len + 1);
        if (len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid prefix \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    iss->prefix.data = p;
    iss->prefix.len = len;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "body=", 5) == 0) {
            n = ngx_atoi(value[i].data + 5, value[i].len - 5);
            if (n < VOUCHER_BODY_MIN_LEN || n > VOUCHER_BODY_MAX_LEN) {
                goto invalid;
            }
            iss->body = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "mac=", 4) == 0) {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);
            if (n < VOUCHER_MAC_MIN_LEN || n > VOUCHER_MAC_MAX_LEN) {
                goto invalid;
            }
            iss->mac = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "series=", 7) == 0) {
            if (voucher_series_name_check((char *) value[i].data + 7,
                                          value[i].len - 7)
                != 0)
            {
                goto invalid;
            }

            iss->series.data = value[i].data + 7;
            iss->series.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "charset=", 8) == 0
            || ngx_strncmp(value[i].data, "suffix=", 7) == 0)
        {
            if (ngx_http_voucher_issued_format(cf, iss, &value[i])
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        goto invalid;
    }

    if (iss->body == 0 || iss->mac == 0) {
        return "needs both \"body=\" and \"mac=\"";
    }

    if (iss->prefix.len + iss->body + iss->mac + iss->fmt.suffix_len
        > VOUCHER_CODE_MAX_LEN)
    {
        return "describes codes longer than 64 characters";
    }

    if (iss->series.len && voucher_serial_domain(iss->body, &iss->fmt) == 0) {
        return "has a body too long for a serial series (at most 2^62 "
               "values: 12 characters of the Crockford alphabet)";
    }

    prev = vlcf->code_issued->elts;

    for (k = 0; k + 1 < vlcf->code_issued->nelts; k++) {
        if (ngx_http_voucher_issued_overlap(&prev[k], iss)) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "a code can fit both this format and the one "
                               "with the prefix \"%V\", and read O, I or L "
                               "differently in each: a refused code's answer "
                               "may then tell which tag passed (give the "
                               "formats other lengths)", &prev[k].prefix);
        }
    }

    if (iss->mac < voucher_tag_min_len(&iss->fmt)) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"mac=%uz\" lets a guess through the offline "
                           "check more than once in a million for this "
                           "charset (use at least %uz)", iss->mac,
                           voucher_tag_min_len(&iss->fmt));
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * Whether one code can fit both formats and be made canonical differently
 * by each: where one has its prefix or suffix and the other its body or
 * tag, the fixed character is O, I or L (and read as 0 or 1 it is in the
 * other's charset, or no code could be of both).
 */

static ngx_uint_t
ngx_http_voucher_issued_overlap(ngx_http_voucher_issued_t *a,
    ngx_http_voucher_issued_t *b)
{
    char                        c;
    size_t                      len, i;
    u_char                      ca, cb;
    ngx_uint_t                  differ;
    ngx_http_voucher_issued_t  *other;

    len = a->prefix.len + a->body + a->mac + a->fmt.suffix_len;

    if (len != b->prefix.len + b->body + b->mac + b->fmt.suffix_len) {
        return 0;
    }

    differ = 0;

    for (i = 0; i < len; i++) {
        ca = ngx_http_voucher_issued_fixed(a, len, i);
        cb = ngx_http_voucher_issued_fixed(b, len, i);

        if (ca == cb) {
            continue;
        }

        if (ca && cb) {
            return 0;
        }

        c = (char) (ca ? ca : cb);
        other = ca ? b : a;

        if (c == 'O' || c == 'I' || c == 'L') {
            differ = 1;
        }

        if (voucher_code_canonical(&c, 1) == 0
            || (other->fmt.charset
                && ngx_strlchr((u_char *) other->fmt.charset,
                               (u_char *) other->fmt.charset
                               + other->fmt.charset_len, (u_char) c)
                   == NULL))
        {
            return 0;
        }
    }

    return differ;
}


/* the prefix's or suffix's character at i of a code len long, or 0 */

static u_char
ngx_http_voucher_issued_fixed(ngx_http_voucher_issued_t *iss, size_t len,
    size_t i)
{
    if (i < iss->prefix.len) {
        return iss->prefix.data[i];
    }

    if (i >= len - iss->fmt.suffix_len) {
        return (u_char) iss->fmt.suffix[i - (len - iss->fmt.suffix_len)];
    }

    return 0;
}


/*
 * charset=CHARS (a subset of the Crockford alphabet, as the worker issued
 * them) and suffix=S (normalized, as codes are compared)
 */

static char *
ngx_http_voucher_issued_format(ngx_conf_t *cf, ngx_http_voucher_issued_t *iss,
    ngx_str_t *value)
{
    u_char  *p;
    size_t   len, skip;
    char     err[160];

    skip = (value->data[0] == 'c') ? 8 : 7;
    len = value->len - skip;

    p = ngx_pnalloc(cf->pool, len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    if (skip == 8) {
        ngx_memcpy(p, value->data + skip, len);

        if (voucher_charset_check((char *) p, len, err, sizeof(err)) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid \"%V\": %s",
                               value, err);
            return NGX_CONF_ERROR;
        }

        iss->fmt.charset = (char *) p;
        iss->fmt.charset_len = len;
        return NGX_CONF_OK;
    }

    len = voucher_code_normalize((char *) value->data + skip, len, (char *) p,
                                 len + 1);
    if (len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid \"%V\"", value);
        return NGX_CONF_ERROR;
    }

    iss->fmt.suffix = (char *) p;
    iss->fmt.suffix_len = len;

    return NGX_CONF_OK;
}


/* voucher_code_pattern REGEX; compiled once, here, with nginx's PCRE */

char *
ngx_http_voucher_code_pattern(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
#if (NGX_PCRE)
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    u_char               errstr[NGX_MAX_CONF_ERRSTR];
    ngx_str_t           *value;
    ngx_regex_t        **re;
    ngx_regex_compile_t  rc;

    value = cf->args->elts;

    if (vlcf->code_patterns == NULL) {
        vlcf->code_patterns = ngx_array_create(cf->pool, 2,
                                               sizeof(ngx_regex_t *));
        if (vlcf->code_patterns == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = value[1];
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V", &rc.err);
        return NGX_CONF_ERROR;
    }

    re = ngx_array_push(vlcf->code_patterns);
    if (re == NULL) {
        return NGX_CONF_ERROR;
    }

    *re = rc.regex;

    return NGX_CONF_OK;

#else

    return "requires nginx built with PCRE";

#endif
}


char *
ngx_http_voucher_code_merge(ngx_conf_t *cf, ngx_http_voucher_loc_conf_t *prev,
    ngx_http_voucher_loc_conf_t *conf)
{
    if (conf->code_keys == NULL) {
        conf->code_keys = prev->code_keys;
    }

    if (conf->code_issued == NULL) {
        conf->code_issued = prev->code_issued;
    }

    if (conf->code_patterns == NULL) {
        conf->code_patterns = prev->code_patterns;
    }

    ngx_conf_merge_value(conf->code_debug, prev->code_debug, 0);

    if (conf->code_issued
        && (conf->code_keys == NULL || !conf->code_keys->has_current))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"voucher_code_issued\" needs "
                           "\"voucher_code_key\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_http_voucher_keys_t *
ngx_http_voucher_conf_keys(ngx_conf_t *cf, ngx_http_voucher_loc_conf_t *vlcf)
{
    if (vlcf->code_keys == NULL) {
        if (sodium_init() < 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "libsodium cannot be initialised");
            return NULL;
        }

        vlcf->code_keys = ngx_pcalloc(cf->pool,
                                      sizeof(ngx_http_voucher_keys_t));
    }

    return vlcf->code_keys;
}


static char *
ngx_http_voucher_load_key(ngx_conf_t *cf, ngx_str_t *file,
    voucher_mac_key_t *mk, u_char *raw)
{
    char       err[256];
    u_char     key[VOUCHER_KEY_LEN];
    ngx_str_t  name;

    name = *file;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* the message names the file and the problem, never the key */

    if (voucher_key_load((char *) name.data, key, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    if (voucher_mac_key_init(mk, key) != 0) {
        sodium_memzero(key, sizeof(key));
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the key in \"%V\" cannot be made ready", &name);
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(raw, key, VOUCHER_KEY_LEN);
    sodium_memzero(key, sizeof(key));

    return NGX_CONF_OK;
}


/* unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC) */

static time_t
ngx_http_voucher_parse_date(ngx_str_t *s)
{
    u_char     *p;
    ngx_int_t   n;
    ngx_tm_t    tm;

    p = s->data;

    if (s->len != 10 && s->len != 20) {
        n = ngx_atoi(p, s->len);
        return (n == NGX_ERROR) ? NGX_ERROR : (time_t) n;
    }

    if (p[4] != '-' || p[7] != '-'
        || (s->len == 20
            && (p[10] != 'T' || p[13] != ':' || p[16] != ':' || p[19] != 'Z')))
    {
        n = ngx_atoi(p, s->len);
        return (n == NGX_ERROR) ? NGX_ERROR : (time_t) n;
    }

    ngx_memzero(&tm, sizeof(ngx_tm_t));

    tm.ngx_tm_year = ngx_atoi(p, 4);
    tm.ngx_tm_mon = ngx_atoi(p + 5, 2);
    tm.ngx_tm_mday = ngx_atoi(p + 8, 2);

    if (s->len == 20) {
        tm.ngx_tm_hour = ngx_atoi(p + 11, 2);
        tm.ngx_tm_min = ngx_atoi(p + 14, 2);
        tm.ngx_tm_sec = ngx_atoi(p + 17, 2);
    }

    if (tm.ngx_tm_year < 1970 || tm.ngx_tm_mon < 1 || tm.ngx_tm_mon > 12
        || tm.ngx_tm_mday < 1 || tm.ngx_tm_mday > 31
        || tm.ngx_tm_hour < 0 || tm.ngx_tm_hour > 23
        || tm.ngx_tm_min < 0 || tm.ngx_tm_min > 59
        || tm.ngx_tm_sec < 0 || tm.ngx_tm_sec > 59)
    {
        return NGX_ERROR;
    }

    /* days from the civil date, so no time zone is involved */

    n = tm.ngx_tm_year - (tm.ngx_tm_mon <= 2);
    n = 365 * n + n / 4 - n / 100 + n / 400
        + (153 * (tm.ngx_tm_mon + (tm.ngx_tm_mon > 2 ? -3 : 9)) + 2) / 5
        + tm.ngx_tm_mday - 1 - 719468;

    return (time_t) n * 86400 + tm.ngx_tm_hour * 3600 + tm.ngx_tm_min * 60
           + tm.ngx_tm_sec;
}


/*
 * code (len bytes, as the parser accepted it) is normalized in place;
 * the buffer must hold len + 1 bytes, for the NUL written after it.
 * NGX_OK: it may exist, ask Redis for code[0 .. *len).  NGX_DECLINED: it
 * cannot exist; *reason says why for voucher_code_debug.  NGX_ERROR:
 * nothing is left once normalized (invalid_code).
 *
 * A code that passes its tag is made canonical (O, I, L typed for 0, 1,
 * 1), as Redis stores it and answers it.  A refused code is made canonical
 * too, in the first format it could be a code of, so that its refusal
 * echoes it in the form Redis would have: whether the tag passed shows in
 * no answer.  A code passed on by a pattern stays as normalized.
 */

ngx_int_t
ngx_http_voucher_code_check(ngx_http_voucher_loc_conf_t *vlcf, u_char *code,
    size_t *len, const char **reason)
{
    ngx_str_t  series;
    uint64_t   serial;

    return ngx_http_voucher_code_check_serial(vlcf, code, len, reason,
                                              &series, &serial);
}


/*
 * The same, and when the code is of a serial series (NGX_OK), its name in
 * *series (len 0: not one) and its serial.
 */

ngx_int_t
ngx_http_voucher_code_check_serial(ngx_http_voucher_loc_conf_t *vlcf,
    u_char *code, size_t *len, const char **reason, ngx_str_t *series,
    uint64_t *serial)
{
    size_t                      n;
    ngx_int_t                   rc;
    ngx_uint_t                  i, shaped, formed, previous;
    ngx_http_voucher_issued_t  *iss;
    u_char                      form[VOUCHER_CODE_MAX_LEN];
#if (NGX_PCRE)
    ngx_str_t                   s;
    ngx_regex_t               **re;
#endif

    series->len = 0;

    n = voucher_code_normalize((char *) code, *len, (char *) code, *len + 1);
    if (n == 0) {
        return NGX_ERROR;
    }

    *len = n;

    if (vlcf->code_issued == NULL && vlcf->code_patterns == NULL) {
        return NGX_OK;
    }

    shaped = 0;
    formed = 0;

    if (vlcf->code_issued) {
        iss = vlcf->code_issued->elts;

        for (i = 0; i < vlcf->code_issued->nelts; i++) {

            if (n != iss[i].prefix.len + iss[i].body + iss[i].mac
                     + iss[i].fmt.suffix_len
                || ngx_strncmp(code, iss[i].prefix.data, iss[i].prefix.len)
                   != 0
                || (iss[i].fmt.suffix_len
                    && ngx_strncmp(code + n - iss[i].fmt.suffix_len,
                                   iss[i].fmt.suffix, iss[i].fmt.suffix_len)
                       != 0))
            {
                continue;
            }

            shaped = 1;

            rc = ngx_http_voucher_verify(vlcf->code_keys, code, n, &iss[i],
                                         formed ? NULL : form, &previous);

            if (rc == NGX_OK) {
                if (iss[i].series.len == 0) {
                    return NGX_OK;
                }

                if (ngx_http_voucher_serial(vlcf->code_keys, previous, code,
                                            &iss[i], serial)
                    == NGX_OK)
                {
                    *series = iss[i].series;
                    return NGX_OK;
                }

                /* never with a tag that passed: its body is canonical */
                formed = 1;
                ngx_memcpy(form, code, n);
                continue;
            }

            if (rc == NGX_DECLINED) {
                formed = 1;
            }
        }
    }

#if (NGX_PCRE)

    if (vlcf->code_patterns) {
        re = vlcf->code_patterns->elts;

        s.data = code;
        s.len = n;

        for (i = 0; i < vlcf->code_patterns->nelts; i++) {
            if (ngx_regex_exec(re[i], &s, NULL, 0) >= 0) {
                return NGX_OK;
            }
        }
    }

#endif

    if (formed) {
        ngx_memcpy(code, form, n);
    }

    *reason = shaped ? "code_forged" : "code_malformed";

    return NGX_DECLINED;
}


/*
 * A valid tag under the current key, or under the previous one until its
 * grace period ends.  The body and tag are made canonical in a copy
 * first: O, I and L typed for 0, 1 and 1 are what Redis stores, so the
 * copy replaces them in code when the tag is right (NGX_OK).  When it is
 * wrong but the code could be one of this format (the body and tag in its
 * charset once canonical), NGX_DECLINED, and the canonical code is written
 * to form unless form is NULL.  NGX_ABORT: it cannot be one.
 */

static ngx_int_t
ngx_http_voucher_verify(ngx_http_voucher_keys_t *keys, u_char *code,
    size_t len, ngx_http_voucher_issued_t *iss, u_char *form,
    ngx_uint_t *previous)
{
    size_t  prefix, end, i;
    u_char  buf[VOUCHER_CODE_MAX_LEN];

    prefix = iss->prefix.len;
    end = len - iss->fmt.suffix_len;

    ngx_memcpy(buf, code, len);

    *previous = 0;

    if (voucher_code_verify_mk(&keys->current, (char *) buf, len, prefix,
                               iss->mac, &iss->fmt)
        == 0
        || (keys->has_previous && ngx_time() < keys->previous_until
            && voucher_code_verify_mk(&keys->previous, (char *) buf, len,
                                      prefix, iss->mac, &iss->fmt)
               == 0
            && (*previous = 1)))
    {
        ngx_memcpy(code + prefix, buf + prefix, end - prefix);
        return NGX_OK;
    }

    /*
     * the check made buf canonical as far as it could: a code of this
     * format is all in the alphabet (a second pass changes nothing) and
     * in the charset
     */

    if (voucher_code_canonical((char *) buf + prefix, end - prefix) == 0) {
        return NGX_ABORT;
    }

    if (iss->fmt.charset) {
        for (i = prefix; i < end; i++) {
            if (ngx_strlchr((u_char *) iss->fmt.charset,
                            (u_char *) iss->fmt.charset
                            + iss->fmt.charset_len, buf[i])
                == NULL)
            {
                return NGX_ABORT;
            }
        }
    }

    if (form) {
        ngx_memcpy(form, buf, len);
    }

    return NGX_DECLINED;
}


/*
 * The serial of a code of a serial series whose tag passed, under the key
 * that passed it: the series' permutation is derived from that key.
 */

static ngx_int_t
ngx_http_voucher_serial(ngx_http_voucher_keys_t *keys, ngx_uint_t previous,
    u_char *code, ngx_http_voucher_issued_t *iss, uint64_t *serial)
{
    ngx_int_t         rc;
    voucher_serial_t  s;

    rc = NGX_ERROR;

    if (voucher_serial_init(&s, previous ? keys->previous_raw
                                         : keys->current_raw,
                            (char *) iss->series.data, iss->series.len,
                            iss->body, &iss->fmt)
        == 0
        && voucher_serial_decode(&s, (char *) code, iss->prefix.len,
                                 iss->body, &iss->fmt, serial)
           == 0)
    {
        rc = NGX_OK;
    }

    sodium_memzero(&s, sizeof(s));

    return rc;
}
