
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


/* the series as Redis holds it: its format into fmt and its buffers */

typedef struct {
    char              prefix[VOUCHER_CODE_MAX_LEN + 1];
    char              charset[VOUCHER_CODE_MAX_LEN + 1];
    char              suffix[VOUCHER_CODE_MAX_LEN + 1];
    int64_t           size, body, mac;
    voucher_format_t  fmt;
} vw_series_t;


static const char *
vw_series_str(json_t *o, const char *name)
{
    const char  *v;

    v = json_string_value(json_object_get(o, name));

    return v ? v : "";
}


static int
vw_series_read(vw_ctl_t *ctl, const char *series, vw_series_t *s,
    const char *what)
{
    int      rc;
    json_t  *o;

    o = NULL;
    rc = vw_ctl_op_run(ctl, vw_op_series_get, what, series, NULL, NULL, &o);
    if (rc != VW_EXIT_OK) {
        return -1;
    }

    memset(s, 0, sizeof(vw_series_t));

    s->size = json_integer_value(json_object_get(o, "size"));
    s->body = json_integer_value(json_object_get(o, "body"));
    s->mac = json_integer_value(json_object_get(o, "mac"));
    snprintf(s->prefix, sizeof(s->prefix), "%s",
             vw_series_str(o, "prefix"));
    snprintf(s->charset, sizeof(s->charset), "%s",
             vw_series_str(o, "charset"));
    snprintf(s->suffix, sizeof(s->suffix), "%s",
             vw_series_str(o, "suffix"));
    json_decref(o);

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


/* issue and show are the admin API's operations (worker/ops) */

static int
vw_series_issue(vw_ctl_t *ctl, int argc, char **argv)
{
    int          npos, rc;
    char        *pos[3];
    json_t      *body, *out;

    static const struct {
        const char  *opt;
        const char  *field;
    } map[] = {
        { "--size", "size" }, { "--prefix", "prefix" },
        { "--length", "length" }, { "--mac-length", "mac_length" },
        { "--charset", "charset" }, { "--suffix", "suffix" },
        { NULL, NULL }
    };

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

    body = json_object();
    json_object_set_new(body, "campaign", json_string(pos[1]));

    for (int i = 0; map[i].opt; i++) {
        if (vw_opt(opts, map[i].opt)) {
            json_object_set_new(body, map[i].field,
                                json_string(vw_opt(opts, map[i].opt)));
        }
    }

    out = NULL;
    rc = vw_ctl_op_run(ctl, vw_op_series_set, "series issue", pos[0], NULL,
                       body, &out);
    json_decref(body);

    if (rc != VW_EXIT_OK) {
        return rc;
    }

    fprintf(stderr, "voucherctl: series \"%s\" of campaign \"%s\": %lld "
            "codes, %lld used\n", pos[0], pos[1],
            (long long) json_integer_value(json_object_get(out, "size")),
            (long long) json_integer_value(json_object_get(out, "used")));
    json_decref(out);

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

    if (vw_ctl_key(ctl) != 0) {
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
    int      npos, rc;
    char    *pos[2];
    json_t  *out;

    vw_opt_t  none[] = { { NULL, 0, NULL, 0 } };

    npos = vw_opts(argc, argv, none, pos, 2, vw_series_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_series_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    out = NULL;
    rc = vw_ctl_op_run(ctl, vw_op_series_get, "series show", pos[0], NULL,
                       NULL, &out);

    if (rc == VW_EXIT_OK) {
        vw_ctl_print(out, 0);
        json_decref(out);
    }

    return rc;
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
