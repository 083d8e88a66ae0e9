
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl series: serial series (common/voucher_serial.h).  Issuing
 * registers the series in Redis (its campaign, size and format) and
 * writes nothing per code; the codes are made again from the key when
 * they are exported, as often as needed.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "vw_ctl.h"
#include "voucher_serial.h"


static const char  vw_series_usage[] =
    "usage: voucherctl series issue SERIES CAMPAIGN --size N [--prefix P]\n"
    "           [--length L] [--mac-length M] [--charset CHARS]\n"
    "           [--suffix S]\n"
    "       voucherctl series export SERIES [--from N] [--count N]\n"
    "           [--output FILE]   (CSV: serial,code)\n"
    "       voucherctl series show SERIES   (JSON: with used)\n";


/* FCALL fn 1 {ns}:sr:<series> [args]: the reply, or NULL after printing */

static redisReply *
vw_series_call(vw_ctl_t *ctl, const char *fn, const char *series,
    vw_args_t *a, const char *what)
{
    char        *key;
    vw_args_t    c;
    redisReply  *r;

    memset(&c, 0, sizeof(vw_args_t));
    key = vw_key(&ctl->cf, "sr:%s", series);
    vw_args_adds(&c, "FCALL");
    vw_args_adds(&c, fn);
    vw_args_adds(&c, "1");
    vw_args_adds(&c, key);
    free(key);

    for (int i = 0; a && i < a->n; i++) {
        vw_args_add(&c, a->v[i], a->len[i]);
    }

    r = vw_redis_run(ctl->redis, &c, ctl->err, sizeof(ctl->err));
    vw_args_free(&c);

    if (r == NULL || vw_redis_failed(ctl->redis, r, ctl->err,
                                     sizeof(ctl->err)))
    {
        vw_ctl_fail("%s: %s", what, vw_strip_err(ctl->err));

        if (r) {
            freeReplyObject(r);
        }

        return NULL;
    }

    return r;
}


/* the series as Redis holds it: its format into fmt and its buffers */

typedef struct {
    char              prefix[VOUCHER_CODE_MAX_LEN + 1];
    char              charset[VOUCHER_CODE_MAX_LEN + 1];
    char              suffix[VOUCHER_CODE_MAX_LEN + 1];
    int64_t           size, body, mac, used;
    char              campaign[80];
    voucher_format_t  fmt;
} vw_series_t;


static int
vw_series_read(vw_ctl_t *ctl, const char *series, vw_series_t *s,
    const char *what)
{
    size_t       i;
    const char  *k;
    redisReply  *r, *v;

    r = vw_series_call(ctl, "voucher_series_get", series, NULL, what);
    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        vw_ctl_fail("%s: not_found no series \"%s\"", what, series);
        return -1;
    }

    memset(s, 0, sizeof(vw_series_t));

    for (i = 0; i + 1 < r->elements; i += 2) {
        k = r->element[i]->str;
        v = r->element[i + 1];

        if (v->type == REDIS_REPLY_INTEGER) {
            if (strcmp(k, "size") == 0) s->size = v->integer;
            if (strcmp(k, "body") == 0) s->body = v->integer;
            if (strcmp(k, "mac") == 0) s->mac = v->integer;
            if (strcmp(k, "used") == 0) s->used = v->integer;
            continue;
        }

        if (v->type != REDIS_REPLY_STRING) {
            continue;
        }

        if (strcmp(k, "campaign") == 0) {
            snprintf(s->campaign, sizeof(s->campaign), "%s", v->str);
        } else if (strcmp(k, "prefix") == 0) {
            snprintf(s->prefix, sizeof(s->prefix), "%s", v->str);
        } else if (strcmp(k, "charset") == 0) {
            snprintf(s->charset, sizeof(s->charset), "%s", v->str);
        } else if (strcmp(k, "suffix") == 0) {
            snprintf(s->suffix, sizeof(s->suffix), "%s", v->str);
        }
    }

    freeReplyObject(r);

    if (s->charset[0]) {
        s->fmt.charset = s->charset;
        s->fmt.charset_len = strlen(s->charset);
    }

    if (s->suffix[0]) {
        s->fmt.suffix = s->suffix;
        s->fmt.suffix_len = strlen(s->suffix);
    }

    return 0;
}


static int
vw_series_issue(vw_ctl_t *ctl, int argc, char **argv)
{
    int               npos;
    char             *pos[3], prefix[VOUCHER_CODE_MAX_LEN + 1];
    char              suffix[VOUCHER_CODE_MAX_LEN + 1], err[160], *key;
    size_t            plen;
    vw_op_t           op;
    vw_operr_t        e;
    int64_t           size, body, mac;
    uint64_t          domain;
    vw_args_t         a;
    redisReply       *r;
    const char       *cs, *p, *sf;
    voucher_format_t  fmt;
    voucher_serial_t  s;

    vw_opt_t  opts[] = {
        { "--size", 1, NULL, 0 },
        { "--prefix", 1, NULL, 0 },
        { "--length", 1, NULL, 0 },
        { "--mac-length", 1, NULL, 0 },
        { "--charset", 1, NULL, 0 },
        { "--suffix", 1, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 3, vw_series_usage);
    if (npos != 2 || !vw_opt(opts, "--size")) {
        if (npos >= 0) {
            fputs(vw_series_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    if (vw_opt_int(opts, "--size", 1, 4294967296LL, 0, &size) != 0
        || vw_opt_int(opts, "--length", 1, VOUCHER_BODY_MAX_LEN, 10, &body)
           != 0
        || vw_opt_int(opts, "--mac-length", 1, VOUCHER_MAC_MAX_LEN, 5, &mac)
           != 0)
    {
        return VW_EXIT_USAGE;
    }

    memset(&fmt, 0, sizeof(voucher_format_t));

    cs = vw_opt(opts, "--charset");
    if (cs) {
        if (voucher_charset_check(cs, strlen(cs), err, sizeof(err)) != 0) {
            vw_ctl_fail("series issue: --charset: %s", err);
            return VW_EXIT_USAGE;
        }

        fmt.charset = cs;
        fmt.charset_len = strlen(cs);
    }

    suffix[0] = '\0';
    sf = vw_opt(opts, "--suffix");
    if (sf && sf[0]) {
        fmt.suffix_len = voucher_code_normalize(sf, strlen(sf), suffix,
                                                sizeof(suffix));
        if (fmt.suffix_len == 0) {
            vw_ctl_fail("series issue: --suffix: printable ASCII only");
            return VW_EXIT_USAGE;
        }

        fmt.suffix = suffix;
    }

    prefix[0] = '\0';
    p = vw_opt(opts, "--prefix");
    plen = 0;
    if (p && p[0]) {
        plen = voucher_code_normalize(p, strlen(p), prefix, sizeof(prefix));
        if (plen == 0) {
            vw_ctl_fail("series issue: --prefix: printable ASCII only");
            return VW_EXIT_USAGE;
        }
    }

    if (plen + body + mac + fmt.suffix_len > VOUCHER_CODE_MAX_LEN) {
        vw_ctl_fail("series issue: the codes would be longer than 64");
        return VW_EXIT_USAGE;
    }

    if (vw_ctl_key(ctl) != 0 || vw_ctl_redis(ctl) == NULL) {
        return VW_EXIT_FAIL;
    }

    if (voucher_serial_init(&s, ctl->key, pos[0], strlen(pos[0]),
                            (size_t) body, &fmt)
        != 0)
    {
        vw_ctl_fail("series issue: invalid_field series: a name of 1..32 "
                    "of A-Z a-z 0-9 _ -, and a body of at most 2^62 values");
        return VW_EXIT_USAGE;
    }

    domain = s.domain;
    sodium_memzero(&s, sizeof(s));

    if ((uint64_t) size > domain) {
        vw_ctl_fail("series issue: invalid_field size: the body holds "
                    "%llu codes", (unsigned long long) domain);
        return VW_EXIT_USAGE;
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, pos[1]);
    vw_args_addi(&a, size);
    vw_args_adds(&a, prefix);
    vw_args_addi(&a, body);
    vw_args_addi(&a, mac);
    vw_args_adds(&a, cs ? cs : "");
    vw_args_adds(&a, suffix);

    /* through voucher_admin: the admin audit stream names who did it */

    if (vw_ctl_op_init(ctl, &op) != 0) {
        vw_args_free(&a);
        return VW_EXIT_FAIL;
    }

    key = vw_key(&ctl->cf, "sr:%s", pos[0]);
    r = vw_op_admin(&op, key, "series.issue", pos[0], "series_set", "", &a,
                    &e);
    free(key);
    vw_args_free(&a);

    if (r == NULL) {
        vw_ctl_fail("series issue: %s %s", e.reason, e.message);
        return VW_EXIT_FAIL;
    }

    fprintf(stderr, "voucherctl: series \"%s\" of campaign \"%s\": %lld "
            "codes (%s)\n", pos[0], pos[1], (long long) size,
            r->integer ? "issued" : "changed");
    freeReplyObject(r);

    return VW_EXIT_OK;
}


static int
vw_series_export(vw_ctl_t *ctl, int argc, char **argv)
{
    int               npos, rc;
    char             *pos[2], code[VOUCHER_CODE_MAX_LEN + 1];
    FILE             *out;
    int64_t           from, count, i, end;
    const char       *output;
    vw_series_t       sr;
    voucher_serial_t  s;

    vw_opt_t  opts[] = {
        { "--from", 1, NULL, 0 },
        { "--count", 1, NULL, 0 },
        { "--output", 1, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 2, vw_series_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_series_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    if (vw_opt_int(opts, "--from", 0, 4294967296LL, 0, &from) != 0
        || vw_opt_int(opts, "--count", 0, 4294967296LL, -1, &count) != 0)
    {
        return VW_EXIT_USAGE;
    }

    if (vw_ctl_key(ctl) != 0 || vw_ctl_redis_read(ctl) == NULL) {
        return VW_EXIT_FAIL;
    }

    if (vw_series_read(ctl, pos[0], &sr, "series export") != 0) {
        return VW_EXIT_FAIL;
    }

    if (voucher_serial_init(&s, ctl->key, pos[0], strlen(pos[0]),
                            (size_t) sr.body, &sr.fmt)
        != 0)
    {
        vw_ctl_fail("series export: the series' format makes no series");
        return VW_EXIT_FAIL;
    }

    end = (count < 0 || from + count > sr.size) ? sr.size : from + count;

    output = vw_opt(opts, "--output");
    out = (output == NULL || strcmp(output, "-") == 0)
          ? stdout : fopen(output, "w");

    if (out == NULL) {
        sodium_memzero(&s, sizeof(s));
        vw_ctl_fail("series export: %s: cannot be written", output);
        return VW_EXIT_FAIL;
    }

    setvbuf(out, NULL, _IOFBF, 1 << 20);
    fputs("serial,code\n", out);
    rc = VW_EXIT_OK;

    for (i = from; i < end; i++) {
        if (voucher_serial_code(&s, ctl->key, sr.prefix, (size_t) sr.body,
                                (size_t) sr.mac, &sr.fmt, (uint64_t) i,
                                code, sizeof(code))
            == 0)
        {
            rc = VW_EXIT_FAIL;
            break;
        }

        fprintf(out, "%lld,%s\n", (long long) i, code);
    }

    sodium_memzero(&s, sizeof(s));

    if ((out != stdout ? fclose(out) : fflush(out)) != 0
        || rc != VW_EXIT_OK)
    {
        vw_ctl_fail("series export: the codes were not all written");
        return VW_EXIT_FAIL;
    }

    fprintf(stderr, "voucherctl: exported %lld codes of series \"%s\"\n",
            (long long) (end > from ? end - from : 0), pos[0]);

    return VW_EXIT_OK;
}


static int
vw_series_show(vw_ctl_t *ctl, int argc, char **argv)
{
    int          npos;
    char        *pos[2];
    json_t      *o;
    vw_series_t  sr;

    vw_opt_t  none[] = { { NULL, 0, NULL, 0 } };

    npos = vw_opts(argc, argv, none, pos, 2, vw_series_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_series_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    if (vw_ctl_redis_read(ctl) == NULL
        || vw_series_read(ctl, pos[0], &sr, "series show") != 0)
    {
        return VW_EXIT_FAIL;
    }

    o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:I, s:s, s:s}",
                  "series", pos[0], "campaign", sr.campaign,
                  "size", (json_int_t) sr.size, "used", (json_int_t) sr.used,
                  "left", (json_int_t) (sr.size - sr.used),
                  "prefix", sr.prefix, "body", (json_int_t) sr.body,
                  "mac", (json_int_t) sr.mac, "charset", sr.charset,
                  "suffix", sr.suffix);
    vw_ctl_print(o, 0);
    json_decref(o);

    return VW_EXIT_OK;
}


int
vw_cmd_series(vw_ctl_t *ctl, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "issue") == 0) {
        return vw_series_issue(ctl, argc - 1, argv + 1);
    }

    if (argc >= 1 && strcmp(argv[0], "export") == 0) {
        return vw_series_export(ctl, argc - 1, argv + 1);
    }

    if (argc >= 1 && strcmp(argv[0], "show") == 0) {
        return vw_series_show(ctl, argc - 1, argv + 1);
    }

    fputs(vw_series_usage, stderr);

    return VW_EXIT_USAGE;
}
