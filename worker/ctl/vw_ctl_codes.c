
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl codes issue|import|export|check.
 *
 * issue, import and export are jobs (worker/ops/vw_job_codes.c,
 * vw_job_import.c), the same code voucherd runs for the admin API: run
 * here, in-process, with a progress bar on a terminal, or queued for
 * voucherd with --detach.  Codes are stored normalized
 * (voucher_code_normalize); a --pattern only changes how they are shown.
 */


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "vw_ctl.h"
#include "vw_job.h"
#include "vw_util.h"


#define VW_CODE_SIZE       (VOUCHER_CODE_MAX_LEN + 1)


static const char  vw_codes_usage[] =
    "usage: voucherctl codes issue CAMPAIGN --count N [--prefix P]\n"
    "           [--length L] [--mac-length M] [--charset CHARS]\n"
    "           [--suffix S] [--pattern P] [--max-uses N] [--output FILE]\n"
    "           [--quiet] [--detach]\n"
    "       voucherctl codes import FILE.csv [--campaign C] [--match REGEX]\n"
    "           [--dry-run] [--detach]   (REGEX matches the normalized code,\n"
    "           as stored: SONGKRAN-2027 is SONGKRAN2027 by then)\n"
    "       voucherctl codes export CAMPAIGN [--format csv|jsonl]\n"
    "           [--pattern P] [--output FILE] [--detach]\n"
    "       voucherctl codes check CODE [--prefix P] [--mac-length M]\n"
    "           [--charset CHARS] [--suffix S]\n";


static double
vw_now_sec(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static FILE *
vw_open_output(const char *path)
{
    FILE  *f;

    if (path == NULL || strcmp(path, "-") == 0) {
        return stdout;
    }

    f = fopen(path, "w");
    if (f == NULL) {
        vw_ctl_fail("%s: %s", path, strerror(errno));
    }

    return f;
}


static int
vw_close_output(FILE *f, const char *path)
{
    if (fflush(f) != 0 || ferror(f) || (f != stdout && fclose(f) != 0)) {
        vw_ctl_fail("%s: write error: %s", path ? path : "stdout",
                    strerror(errno));
        return -1;
    }

    return 0;
}


/*
 * The options given, as the body of the job's parameters: "--mac-length"
 * as "mac_length"; flags (no value) as "true".
 */

static json_t *
vw_opts_body(vw_opt_t *opts, const char *const *skip)
{
    char                 name[64], *p;
    json_t              *o;
    vw_opt_t            *x;
    const char *const   *s;

    o = json_object();

    for (x = opts; x->name; x++) {
        for (s = skip; *s; s++) {
            if (strcmp(*s, x->name) == 0) {
                break;
            }
        }

        if (*s || !x->given) {
            continue;
        }

        snprintf(name, sizeof(name), "%s", x->name + 2);

        for (p = name; *p; p++) {
            if (*p == '-') {
                *p = '_';
            }
        }

        json_object_set_new(o, name, json_string(x->arg ? x->value
                                                        : "true"));
    }

    return o;
}


/* the job's parameters checked; the exit code when they are not */

int
vw_job_params(vw_ctl_t *ctl, const char *what,
    int (*check)(vw_op_t *op, vw_op_in_t *in, json_t **params,
                 vw_operr_t *e),
    json_t *body, json_t **params)
{
    int          rc;
    vw_op_t      op;
    vw_op_in_t   in;
    vw_operr_t   e;

    if (vw_ctl_op_init(ctl, &op) != 0) {
        json_decref(body);
        return VW_EXIT_FAIL;
    }

    memset(&in, 0, sizeof(vw_op_in_t));
    in.body = body;
    in.query = json_object();
    in.strict = 0;

    rc = check(&op, &in, params, &e);

    json_decref(in.query);
    json_decref(body);

    if (rc != 0) {
        vw_ctl_fail("%s: %s", what, e.message);
        return e.status == 400 ? VW_EXIT_USAGE : VW_EXIT_FAIL;
    }

    return VW_EXIT_OK;
}


/* ------------------------------------------------------------- issue */


static int
vw_codes_issue(vw_ctl_t *ctl, int argc, char **argv)
{
    int          npos, rc;
    char        *pos[2];
    FILE        *out;
    json_t      *body, *params, *w;
    double       t0, dt;
    vw_job_t     j;
    const char  *output;

    static const char *const  skip[] = {
        "--output", "--quiet", "--detach", NULL
    };

    vw_opt_t  opts[] = {
        { "--count", 1, NULL, 0 },
        { "--prefix", 1, NULL, 0 },
        { "--length", 1, NULL, 0 },
        { "--mac-length", 1, NULL, 0 },
        { "--charset", 1, NULL, 0 },
        { "--suffix", 1, NULL, 0 },
        { "--pattern", 1, NULL, 0 },
        { "--max-uses", 1, NULL, 0 },
        { "--output", 1, NULL, 0 },
        { "--quiet", 0, NULL, 0 },
        { "--detach", 0, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 2, vw_codes_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_codes_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    if (vw_ctl_key(ctl) != 0 || vw_ctl_redis(ctl) == NULL) {
        return VW_EXIT_FAIL;
    }

    body = vw_opts_body(opts, skip);
    json_object_set_new(body, "campaign", json_string(pos[0]));

    rc = vw_job_params(ctl, "codes issue", vw_job_issue_check, body,
                       &params);
    if (rc != VW_EXIT_OK) {
        return rc;
    }

    w = json_object_get(params, "warning");

    if (w) {
        fprintf(stderr, "voucherctl: warning: %s\n", json_string_value(w));
    }

    memset(&j, 0, sizeof(vw_job_t));
    snprintf(j.kind, sizeof(j.kind), "codes.issue");
    j.params = params;
    j.total = json_integer_value(json_object_get(params, "count"));

    if (vw_opt(opts, "--detach")) {
        j.keep = 1;
        rc = vw_ctl_job_detach(ctl, &j, "codes issue");
        vw_job_free(&j);
        return rc;
    }

    output = vw_opt(opts, "--output");
    out = NULL;

    if (!vw_opt(opts, "--quiet")) {
        out = vw_open_output(output);

        if (out == NULL) {
            vw_job_free(&j);
            return VW_EXIT_FAIL;
        }

        setvbuf(out, NULL, _IOFBF, 1 << 20);
    }

    j.out = out;
    t0 = vw_now_sec();

    rc = vw_ctl_job(ctl, &j, 1, "codes issue");

    dt = vw_now_sec() - t0;

    if (out != NULL && vw_close_output(out, output) != 0) {
        rc = VW_EXIT_FAIL;
    }

    fprintf(stderr, "voucherctl: issued %lld codes into campaign \"%s\" in "
            "%.2f s (%.0f codes/s), %lld collisions made again\n",
            (long long) j.done, pos[0], dt,
            dt > 0 ? (double) j.done / dt : 0.0,
            (long long) json_integer_value(json_object_get(j.result,
                                                           "collisions")));

    vw_job_free(&j);

    return rc;
}


/* ------------------------------------------------------------- import */


/*
 * The file is checked here first, with nothing written (a local job);
 * then written by a job with a record (held by this process, resumed by
 * voucherd if this one dies).  --detach queues the whole of it.
 */

static int
vw_codes_import(vw_ctl_t *ctl, int argc, char **argv)
{
    int          npos, rc;
    char        *pos[2], *data, what[300];
    size_t       len;
    json_t      *body, *params;
    vw_job_t     j;

    static const char *const  skip[] = { "--dry-run", "--detach", NULL };

    vw_opt_t  opts[] = {
        { "--campaign", 1, NULL, 0 },
        { "--match", 1, NULL, 0 },
        { "--dry-run", 0, NULL, 0 },
        { "--detach", 0, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 2, vw_codes_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_codes_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    if (vw_ctl_redis(ctl) == NULL) {
        return VW_EXIT_FAIL;
    }

    body = vw_opts_body(opts, skip);
    rc = vw_job_params(ctl, "codes import", vw_job_import_check, body,
                       &params);
    if (rc != VW_EXIT_OK) {
        return rc;
    }

    data = vw_read_file(pos[0], &len);

    if (data == NULL) {
        vw_ctl_fail("codes import: %s: %s", pos[0], strerror(errno));
        json_decref(params);
        return VW_EXIT_FAIL;
    }

    snprintf(what, sizeof(what), "codes import: %s", pos[0]);

    memset(&j, 0, sizeof(vw_job_t));
    snprintf(j.kind, sizeof(j.kind), "codes.import");
    j.params = params;
    j.input = data;
    j.input_len = len;
    j.total = -1;

    if (vw_opt(opts, "--detach")) {
        snprintf(j.phase, sizeof(j.phase), "check");
        rc = vw_ctl_job_detach(ctl, &j, what);
        vw_job_free(&j);
        return rc;
    }

    snprintf(j.phase, sizeof(j.phase), "check");
    rc = vw_ctl_job(ctl, &j, 0, what);

    if (rc == VW_EXIT_OK && vw_opt(opts, "--dry-run")) {
        printf("%lld codes OK, nothing written (--dry-run)\n",
               (long long) j.total);
    }

    if (rc != VW_EXIT_OK || vw_opt(opts, "--dry-run")) {
        vw_job_free(&j);
        return rc;
    }

    /* checked: written by a job of its own, from its first batch */
    json_decref(j.result);
    j.result = NULL;
    j.done = 0;
    j.seq = 0;
    j.ended = 0;
    snprintf(j.phase, sizeof(j.phase), "write");

    rc = vw_ctl_job(ctl, &j, 1, what);

    if (rc == VW_EXIT_OK) {
        printf("imported %lld codes\n", (long long) j.done);
    }

    vw_job_free(&j);

    return rc;
}


/* ------------------------------------------------------------- export */


/* a local job: read only, nothing to resume; --detach for voucherd */

static int
vw_codes_export(vw_ctl_t *ctl, int argc, char **argv)
{
    int          npos, rc;
    char        *pos[2];
    FILE        *out;
    json_t      *body, *params;
    vw_job_t     j;
    const char  *output;

    static const char *const  skip[] = { "--output", "--detach", NULL };

    vw_opt_t  opts[] = {
        { "--format", 1, NULL, 0 },
        { "--pattern", 1, NULL, 0 },
        { "--output", 1, NULL, 0 },
        { "--detach", 0, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 2, vw_codes_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_codes_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    if (vw_ctl_redis(ctl) == NULL) {
        return VW_EXIT_FAIL;
    }

    body = vw_opts_body(opts, skip);
    json_object_set_new(body, "campaign", json_string(pos[0]));

    rc = vw_job_params(ctl, "codes export", vw_job_export_check, body,
                       &params);
    if (rc != VW_EXIT_OK) {
        return rc;
    }

    memset(&j, 0, sizeof(vw_job_t));
    snprintf(j.kind, sizeof(j.kind), "codes.export");
    j.params = params;
    j.total = -1;

    if (vw_opt(opts, "--detach")) {
        j.keep = 1;
        rc = vw_ctl_job_detach(ctl, &j, "codes export");
        vw_job_free(&j);
        return rc;
    }

    output = vw_opt(opts, "--output");
    out = vw_open_output(output);

    if (out == NULL) {
        vw_job_free(&j);
        return VW_EXIT_FAIL;
    }

    setvbuf(out, NULL, _IOFBF, 1 << 20);
    j.out = out;

    rc = vw_ctl_job(ctl, &j, 0, "codes export");

    if (vw_close_output(out, output) != 0) {
        rc = VW_EXIT_FAIL;
    }

    if (rc == VW_EXIT_OK) {
        fprintf(stderr, "voucherctl: exported %lld codes of campaign "
                "\"%s\"\n", (long long) j.done, pos[0]);
    }

    vw_job_free(&j);

    return rc;
}


/*
 * --charset and --suffix into fmt (the suffix normalized into sbuf).
 * Returns 0, or -1 after saying what is wrong.
 */

static int
vw_format_opts(vw_opt_t *opts, const char *what, voucher_format_t *fmt,
    char *sbuf, size_t ssize)
{
    char         err[160];
    const char  *cs, *sf;

    memset(fmt, 0, sizeof(voucher_format_t));

    cs = vw_opt(opts, "--charset");
    sf = vw_opt(opts, "--suffix");

    if (cs) {
        if (voucher_charset_check(cs, strlen(cs), err, sizeof(err)) != 0) {
            vw_ctl_fail("codes %s: --charset: %s", what, err);
            return -1;
        }

        fmt->charset = cs;
        fmt->charset_len = strlen(cs);
    }

    if (sf && sf[0]) {
        fmt->suffix_len = voucher_code_normalize(sf, strlen(sf), sbuf, ssize);

        if (fmt->suffix_len == 0) {
            vw_ctl_fail("codes %s: --suffix: printable ASCII only", what);
            return -1;
        }

        fmt->suffix = sbuf;
    }

    return 0;
}


/* ------------------------------------------------------------- check */


static int
vw_codes_check(vw_ctl_t *ctl, int argc, char **argv)
{
    int               npos, ok;
    char              *pos[2], norm[VW_CODE_SIZE], prefix[VW_CODE_SIZE];
    char              suffix[VW_CODE_SIZE];
    size_t            len, plen;
    int64_t           mac;
    const char       *pfx;
    voucher_format_t  fmt;

    vw_opt_t  opts[] = {
        { "--prefix", 1, NULL, 0 },
        { "--mac-length", 1, NULL, 0 },
        { "--charset", 1, NULL, 0 },
        { "--suffix", 1, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 2, vw_codes_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_codes_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    if (vw_opt_int(opts, "--mac-length", VOUCHER_MAC_MIN_LEN,
                   VOUCHER_MAC_MAX_LEN, 4, &mac) != 0
        || vw_format_opts(opts, "check", &fmt, suffix, sizeof(suffix)) != 0)
    {
        return VW_EXIT_USAGE;
    }

    /* the tag length codes issue chose for the charset */
    if (vw_opt(opts, "--mac-length") == NULL) {
        mac = (int64_t) voucher_tag_min_len(&fmt);
    }

    pfx = vw_opt(opts, "--prefix");
    plen = 0;

    if (pfx && pfx[0]) {
        plen = voucher_code_normalize(pfx, strlen(pfx), prefix,
                                      sizeof(prefix));
        if (plen == 0) {
            vw_ctl_fail("codes check: --prefix: printable ASCII only");
            return VW_EXIT_USAGE;
        }
    }

    len = voucher_code_normalize(pos[0], strlen(pos[0]), norm, sizeof(norm));

    if (len == 0) {
        printf("invalid: not a code (empty, too long or not printable)\n");
        return VW_EXIT_FAIL;
    }

    if (plen && (len < plen || memcmp(norm, prefix, plen) != 0)) {
        printf("invalid: %s does not start with %s\n", norm, prefix);
        return VW_EXIT_FAIL;
    }

    if (vw_ctl_key(ctl) != 0) {
        return VW_EXIT_FAIL;
    }

    ok = voucher_code_verify_ex(ctl->key, norm, len, plen, (size_t) mac,
                                &fmt) == 0;

    if (ok) {
        /* what the customer typed may hold look-alikes: show the code */
        voucher_code_canonical(norm + plen, len - plen - fmt.suffix_len);
        printf("valid: %s\n", norm);
        return VW_EXIT_OK;
    }

    printf("invalid: %s has a wrong check (mistyped or forged)\n", norm);

    return VW_EXIT_FAIL;
}


int
vw_cmd_codes(vw_ctl_t *ctl, int argc, char **argv)
{
    int  rc;

    if (argc >= 1 && strcmp(argv[0], "issue") == 0) {
        return vw_codes_issue(ctl, argc - 1, argv + 1);
    }

    if (argc >= 1 && strcmp(argv[0], "import") == 0) {
        return vw_codes_import(ctl, argc - 1, argv + 1);
    }

    if (argc >= 1 && strcmp(argv[0], "export") == 0) {
        return vw_codes_export(ctl, argc - 1, argv + 1);
    }

    if (argc >= 1 && strcmp(argv[0], "check") == 0) {
        return vw_codes_check(ctl, argc - 1, argv + 1);
    }

    rc = vw_ctl_ops_cmd(ctl, "codes", argc, argv);

    if (rc >= 0) {
        return rc;
    }

    fputs(vw_codes_usage, stderr);
    vw_ctl_op_usage("codes");

    return VW_EXIT_USAGE;
}
