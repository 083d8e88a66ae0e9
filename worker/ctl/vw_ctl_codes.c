
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl codes issue|import|export|check.
 *
 * Codes are written by the library function voucher_codes_add, many per
 * call, several calls pipelined.  Codes are stored normalized
 * (voucher_code_normalize); a --pattern only changes how they are shown.
 */


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <jansson.h>

#include "vw_csv.h"
#include "vw_ctl.h"
#include "vw_map.h"
#include "vw_util.h"


#define VW_ISSUE_BATCH     1000     /* codes per FCALL */
#define VW_ISSUE_DEPTH     16       /* FCALLs in flight */
#define VW_IMPORT_BATCH    1000
#define VW_IMPORT_ERRORS   20       /* reported before giving up */
#define VW_SCAN_COUNT      1000

#define VW_CODE_SIZE       (VOUCHER_CODE_MAX_LEN + 1)


static const char  vw_codes_usage[] =
    "usage: voucherctl codes issue CAMPAIGN --count N [--prefix P]\n"
    "           [--length L] [--mac-length M] [--charset CHARS]\n"
    "           [--suffix S] [--pattern P] [--max-uses N] [--output FILE]\n"
    "           [--quiet]\n"
    "       voucherctl codes import FILE.csv [--campaign C] [--match REGEX]\n"
    "           [--dry-run]   (REGEX matches the normalized code, as stored:\n"
    "           SONGKRAN-2027 is SONGKRAN2027 by then)\n"
    "       voucherctl codes export CAMPAIGN [--format csv|jsonl]\n"
    "           [--pattern P] [--output FILE]\n"
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


/* ------------------------------------------------------------- issue */


typedef struct {
    char     (*codes)[VW_CODE_SIZE];
    size_t     n;
} vw_batch_t;


static int
vw_issue_reply(vw_ctl_t *ctl, vw_batch_t *b, FILE *out, const char *pattern,
    size_t *added, size_t *collided)
{
    size_t       i, j, n;
    int64_t      count, row;
    char         shown[256];
    redisReply  *r, *ex;

    r = vw_redis_get(ctl->redis, ctl->err, sizeof(ctl->err));

    if (vw_redis_failed(ctl->redis, r, ctl->err, sizeof(ctl->err))) {
        vw_ctl_fail("codes issue: %s", vw_strip_err(ctl->err));
        goto fail;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || vw_reply_int(r->element[0], &count) != 0
        || r->element[1]->type != REDIS_REPLY_ARRAY)
    {
        vw_ctl_fail("codes issue: unexpected reply from voucher_codes_add");
        goto fail;
    }

    /* the rows left out (the code exists) are marked with an empty code */
    ex = r->element[1];

    for (j = 0; j < ex->elements; j++) {
        if (vw_reply_int(ex->element[j], &row) == 0 && row >= 1
            && (size_t) row <= b->n)
        {
            b->codes[row - 1][0] = '\0';
        }
    }

    for (i = 0; out != NULL && i < b->n; i++) {
        if (b->codes[i][0] == '\0') {
            continue;
        }

        n = pattern ? voucher_code_display(b->codes[i], strlen(b->codes[i]),
                                           pattern, shown, sizeof(shown))
                    : 0;

        /* a code the pattern cannot show is printed as stored */
        fputs(n ? shown : b->codes[i], out);

        fputc('\n', out);
    }

    *added += (size_t) count;
    *collided += b->n - (size_t) count;

    freeReplyObject(r);

    return 0;

fail:

    if (r) {
        freeReplyObject(r);
    }

    return -1;
}


/* the codes to make: the options of codes issue, checked */

typedef struct {
    int64_t           count;
    int64_t           body;
    int64_t           mac;
    int64_t           max_uses;
    char              prefix[VW_CODE_SIZE];     /* normalized */
    char              suffix[VW_CODE_SIZE];     /* fmt.suffix, normalized */
    voucher_format_t  fmt;
    const char       *pattern;
    const char       *output;
} vw_issue_t;


/* the numbers, --prefix, --charset and --suffix; -1 after saying why */

static int
vw_issue_opts(vw_opt_t *opts, vw_issue_t *is)
{
    const char  *pfx;

    if (vw_opt(opts, "--count") == NULL) {
        vw_ctl_fail("codes issue: --count is required");
        return -1;
    }

    if (vw_opt_int(opts, "--count", 1, 100000000, 0, &is->count) != 0
        || vw_opt_int(opts, "--mac-length", VOUCHER_MAC_MIN_LEN,
                      VOUCHER_MAC_MAX_LEN, 4, &is->mac) != 0
        || vw_opt_int(opts, "--length", VOUCHER_BODY_MIN_LEN,
                      VOUCHER_BODY_MAX_LEN, 8, &is->body) != 0
        || vw_opt_int(opts, "--max-uses", 0, 9007199254740991LL, -1,
                      &is->max_uses) != 0)
    {
        return -1;
    }

    is->pattern = vw_opt(opts, "--pattern");
    is->output = vw_opt(opts, "--output");
    pfx = vw_opt(opts, "--prefix");

    is->prefix[0] = '\0';

    if (pfx && pfx[0] != '\0'
        && voucher_code_normalize(pfx, strlen(pfx), is->prefix,
                                  sizeof(is->prefix))
           == 0)
    {
        vw_ctl_fail("codes issue: --prefix: printable ASCII only, at most "
                    "%d characters", VOUCHER_CODE_MAX_LEN);
        return -1;
    }

    return vw_format_opts(opts, "issue", &is->fmt, is->suffix,
                          sizeof(is->suffix));
}


/*
 * By default a tag of at least a million values, so that a guess passes
 * the offline check once in 10^6: 4 Crockford characters, 6 digits.  A
 * shorter one is the operator's choice, said out loud.
 */

static void
vw_issue_mac(vw_opt_t *opts, vw_issue_t *is)
{
    if (vw_opt(opts, "--mac-length") == NULL) {
        is->mac = (int64_t) voucher_tag_min_len(&is->fmt);

    } else if ((size_t) is->mac < voucher_tag_min_len(&is->fmt)) {
        fprintf(stderr, "voucherctl: warning: --mac-length %lld lets a guess "
                "through the offline check more than once in a million for "
                "this charset (%zu would not)\n", (long long) is->mac,
                voucher_tag_min_len(&is->fmt));
    }
}


/*
 * --pattern gives the prefix, the suffix and, without --length, the
 * length; what is given besides must agree.  -1 after saying why.
 */

static int
vw_issue_pattern(vw_opt_t *opts, vw_issue_t *is)
{
    size_t  hashes;
    char    norm[VW_CODE_SIZE], psuffix[VW_CODE_SIZE];

    if (voucher_pattern_split(is->pattern, norm, sizeof(norm), &hashes,
                              psuffix, sizeof(psuffix))
        != 0)
    {
        vw_ctl_fail("codes issue: --pattern: expected literal prefix "
                    "characters, then '#' and separators (' ' '-'), "
                    "then a literal suffix, as in SALE-####-#### or "
                    "####-####-TH");
        return -1;
    }

    if (vw_opt(opts, "--prefix") && strcmp(is->prefix, norm) != 0) {
        vw_ctl_fail("codes issue: --prefix \"%s\" and the prefix of "
                    "--pattern \"%s\" differ", is->prefix, norm);
        return -1;
    }

    if (vw_opt(opts, "--suffix") != NULL
        && strcmp(is->fmt.suffix ? is->fmt.suffix : "", psuffix) != 0)
    {
        vw_ctl_fail("codes issue: --suffix \"%s\" and the suffix of "
                    "--pattern \"%s\" differ",
                    is->fmt.suffix ? is->fmt.suffix : "", psuffix);
        return -1;
    }

    strcpy(is->prefix, norm);
    strcpy(is->suffix, psuffix);
    is->fmt.suffix = is->suffix;
    is->fmt.suffix_len = strlen(is->suffix);

    if (vw_opt(opts, "--length") == NULL) {
        if ((int64_t) hashes <= is->mac) {
            vw_ctl_fail("codes issue: --pattern has %zu '#', not more "
                        "than --mac-length %lld", hashes,
                        (long long) is->mac);
            return -1;
        }

        is->body = (int64_t) hashes - is->mac;

    } else if ((int64_t) hashes != is->body + is->mac) {
        vw_ctl_fail("codes issue: --pattern has %zu '#', but --length "
                    "%lld + --mac-length %lld = %lld", hashes,
                    (long long) is->body, (long long) is->mac,
                    (long long) (is->body + is->mac));
        return -1;
    }

    return 0;
}


/* the code fits VOUCHER_CODE_MAX_LEN and has a million bodies or more */

static int
vw_issue_fits(const vw_issue_t *is)
{
    size_t    k;
    uint64_t  bodies;

    if (strlen(is->prefix) + (size_t) is->body + (size_t) is->mac
        + is->fmt.suffix_len > VOUCHER_CODE_MAX_LEN)
    {
        vw_ctl_fail("codes issue: prefix + length + mac-length + suffix is "
                    "more than %d characters", VOUCHER_CODE_MAX_LEN);
        return -1;
    }

    /* fewer than ~1e6 possible bodies make collisions the rule */
    for (bodies = 1, k = 0; k < (size_t) is->body && bodies < 1000000; k++) {
        bodies *= is->fmt.charset ? is->fmt.charset_len : 32;
    }

    if (bodies < 1000000) {
        vw_ctl_fail("codes issue: --length must give at least a million "
                    "random bodies (4 characters of the Crockford alphabet, "
                    "6 digits)");
        return -1;
    }

    return 0;
}


/* the campaign must exist: a clear message before any work */

static int
vw_issue_campaign(vw_ctl_t *ctl, const char *ckey, const char *campaign)
{
    redisReply  *r;

    r = redisCommand(ctl->redis, "EXISTS %s", ckey);

    if (vw_redis_failed(ctl->redis, r, ctl->err, sizeof(ctl->err))) {
        vw_ctl_fail("codes issue: %s", ctl->err);

        if (r) {
            freeReplyObject(r);
        }

        return -1;
    }

    if (r->integer != 1) {
        vw_ctl_fail("codes issue: campaign \"%s\" not found", campaign);
        freeReplyObject(r);
        return -1;
    }

    freeReplyObject(r);

    return 0;
}


/* one voucher_codes_add of b->n new codes, appended to the pipeline */

static int
vw_issue_batch(vw_ctl_t *ctl, const vw_issue_t *is, const char *ckey,
    vw_batch_t *b, vw_args_t *a)
{
    size_t  k;

    vw_args_reset(a);
    vw_args_adds(a, "FCALL");
    vw_args_adds(a, "voucher_codes_add");
    vw_args_adds(a, "1");
    vw_args_adds(a, ckey);
    vw_args_adds(a, "skip");

    if (is->max_uses >= 0) {
        vw_args_adds(a, "1");
        vw_args_adds(a, "max_uses");
        vw_args_addi(a, is->max_uses);

    } else {
        vw_args_adds(a, "0");
    }

    vw_args_adds(a, "code");

    for (k = 0; k < b->n; k++) {
        if (voucher_code_issue_ex(ctl->key, is->prefix, (size_t) is->body,
                                  (size_t) is->mac, &is->fmt, b->codes[k],
                                  VW_CODE_SIZE) == 0)
        {
            vw_ctl_fail("codes issue: cannot make a code");
            return -1;
        }

        vw_args_adds(a, b->codes[k]);
    }

    if (vw_redis_append(ctl->redis, a) != 0) {
        vw_ctl_fail("codes issue: redis: %s", ctl->redis->errstr);
        return -1;
    }

    return 0;
}


/*
 * Makes is->count codes with VW_ISSUE_DEPTH batches in flight; the codes
 * that collided are made again.  On an error, replies may still be due:
 * the process ends anyway.
 */

static int
vw_issue_run(vw_ctl_t *ctl, const vw_issue_t *is, const char *ckey,
    FILE *out, size_t *added, size_t *collided)
{
    int          rc;
    size_t       i, pending, head, inflight;
    vw_args_t    a;
    vw_batch_t  *b, ring[VW_ISSUE_DEPTH];

    for (i = 0; i < VW_ISSUE_DEPTH; i++) {
        ring[i].codes = vw_xalloc(VW_ISSUE_BATCH * VW_CODE_SIZE);
        ring[i].n = 0;
    }

    memset(&a, 0, sizeof(vw_args_t));

    pending = 0;
    head = 0;
    inflight = 0;
    rc = -1;

    while (*added < (size_t) is->count) {
        while (inflight < VW_ISSUE_DEPTH
               && *added + pending < (size_t) is->count)
        {
            b = &ring[(head + inflight) % VW_ISSUE_DEPTH];

            b->n = (size_t) is->count - *added - pending;

            if (b->n > VW_ISSUE_BATCH) {
                b->n = VW_ISSUE_BATCH;
            }

            if (vw_issue_batch(ctl, is, ckey, b, &a) != 0) {
                goto done;
            }

            pending += b->n;
            inflight++;
        }

        if (vw_issue_reply(ctl, &ring[head], out, is->pattern, added,
                           collided) != 0)
        {
            goto done;
        }

        pending -= ring[head].n;
        head = (head + 1) % VW_ISSUE_DEPTH;
        inflight--;
    }

    rc = 0;

done:

    for (i = 0; i < VW_ISSUE_DEPTH; i++) {
        free(ring[i].codes);
    }

    vw_args_free(&a);

    return rc;
}


static int
vw_codes_issue(vw_ctl_t *ctl, int argc, char **argv)
{
    int          npos, rc;
    char        *pos[2], *ckey;
    FILE        *out;
    size_t       added, collided;
    double       t0, dt;
    vw_issue_t   is;

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
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 2, vw_codes_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_codes_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    memset(&is, 0, sizeof(vw_issue_t));

    if (vw_issue_opts(opts, &is) != 0) {
        return VW_EXIT_USAGE;
    }

    vw_issue_mac(opts, &is);

    if ((is.pattern && vw_issue_pattern(opts, &is) != 0)
        || vw_issue_fits(&is) != 0)
    {
        return VW_EXIT_USAGE;
    }

    if (vw_ctl_key(ctl) != 0 || vw_ctl_redis(ctl) == NULL) {
        return VW_EXIT_FAIL;
    }

    ckey = vw_key(&ctl->cf, "k:%s", pos[0]);

    if (vw_issue_campaign(ctl, ckey, pos[0]) != 0) {
        free(ckey);
        return VW_EXIT_FAIL;
    }

    out = NULL;

    if (!vw_opt(opts, "--quiet")) {
        out = vw_open_output(is.output);

        if (out == NULL) {
            free(ckey);
            return VW_EXIT_FAIL;
        }

        setvbuf(out, NULL, _IOFBF, 1 << 20);
    }

    added = 0;
    collided = 0;

    t0 = vw_now_sec();

    rc = vw_issue_run(ctl, &is, ckey, out, &added, &collided) == 0
         ? VW_EXIT_OK : VW_EXIT_FAIL;

    dt = vw_now_sec() - t0;

    if (out != NULL && vw_close_output(out, is.output) != 0) {
        rc = VW_EXIT_FAIL;
    }

    fprintf(stderr, "voucherctl: issued %zu codes into campaign \"%s\" in "
            "%.2f s (%.0f codes/s), %zu collisions made again\n",
            added, pos[0], dt, dt > 0 ? (double) added / dt : 0.0, collided);

    free(ckey);

    return rc;
}


/* ------------------------------------------------------------- import */


#define VW_IMPORT_COLUMNS  "code,campaign,max_uses,customer,balance," \
                           "starts_at,ends_at,status"


typedef struct {
    size_t     line;
    char      *code;                /* normalized */
    char      *campaign;
    char     **values;              /* the other columns, in order */
} vw_row_t;


typedef struct {
    const char  *campaign;
    size_t       first;             /* index into the sorted rows */
    size_t       n;
    int          bad;               /* the library refused it */
} vw_chunk_t;


static int
vw_row_by_campaign(const void *a, const void *b)
{
    const vw_row_t  *x = a, *y = b;
    int              c;

    c = strcmp(x->campaign, y->campaign);

    return c ? c : (x->line < y->line ? -1 : x->line > y->line);
}


static int
vw_row_by_code(const void *a, const void *b)
{
    const vw_row_t  *x = *(vw_row_t *const *) a, *y = *(vw_row_t *const *) b;
    int              c;

    c = strcmp(x->code, y->code);

    return c ? c : (x->line < y->line ? -1 : x->line > y->line);
}


/*
 * Reports a voucher_codes_add error by file line ("... (row N)" names the
 * row of the chunk).  Returns that row, or 0 when the error is about the
 * chunk as a whole (an unknown campaign).
 */

static size_t
vw_import_error(const char *msg, const vw_chunk_t *ch, const vw_row_t *rows,
    size_t *nerr)
{
    long         row;
    size_t       len;
    const char  *p;

    msg = vw_strip_err(msg);
    p = strstr(msg, " (row ");
    (*nerr)++;

    if (p != NULL && (row = strtol(p + 6, NULL, 10)) >= 1
        && (size_t) row <= ch->n)
    {
        len = (size_t) (p - msg);
        vw_ctl_fail("line %zu: code \"%s\": %.*s",
                    rows[ch->first + (size_t) row - 1].line,
                    rows[ch->first + (size_t) row - 1].code, (int) len, msg);
        return (size_t) row;
    }

    vw_ctl_fail("campaign \"%s\": %s", ch->campaign, msg);

    return 0;
}


static void
vw_import_args(vw_ctl_t *ctl, vw_args_t *a, const char *mode,
    const vw_chunk_t *ch, const vw_row_t *rows, const char *cols,
    size_t ncols)
{
    char    *ckey;
    size_t   i, j;

    ckey = vw_key(&ctl->cf, "k:%s", ch->campaign);

    vw_args_reset(a);
    vw_args_adds(a, "FCALL");
    vw_args_adds(a, "voucher_codes_add");
    vw_args_adds(a, "1");
    vw_args_adds(a, ckey);
    vw_args_adds(a, mode);
    vw_args_adds(a, "0");
    vw_args_adds(a, cols);

    for (i = 0; i < ch->n; i++) {
        vw_args_adds(a, rows[ch->first + i].code);

        for (j = 0; j < ncols; j++) {
            vw_args_adds(a, rows[ch->first + i].values[j]);
        }
    }

    free(ckey);
}


/* an import: the file, its columns, its rows and what is wrong with them */

typedef struct {
    const char        *path;
    const char        *campaign;    /* --campaign */
    pcre2_code        *re;          /* --match */
    pcre2_match_data  *md;
    FILE              *f;
    vw_csv_t           csv;
    int                code_col;
    int                camp_col;
    int                col_map[16]; /* the other columns, in the file */
    size_t             ncols;
    vw_buf_t           cols;        /* "code,<the other columns>" */
    vw_row_t          *rows;
    size_t             nrows;
    size_t             cap;
    vw_chunk_t        *chunks;
    size_t             nchunks;
    size_t             nerr;
    vw_args_t          a;
} vw_import_t;


/* --match: the whole code must match, not a part of it; -1 if bad */

static int
vw_import_match(vw_import_t *im, const char *match)
{
    int          errcode;
    PCRE2_SIZE   erroff;
    PCRE2_UCHAR  emsg[256];

    im->re = pcre2_compile((PCRE2_SPTR) match, PCRE2_ZERO_TERMINATED,
                           PCRE2_ANCHORED | PCRE2_ENDANCHORED, &errcode,
                           &erroff, NULL);
    if (im->re == NULL) {
        pcre2_get_error_message(errcode, emsg, sizeof(emsg));
        vw_ctl_fail("codes import: --match: %s at offset %zu",
                    (char *) emsg, (size_t) erroff);
        return -1;
    }

    im->md = pcre2_match_data_create_from_pattern(im->re, NULL);

    return 0;
}


/* the header names the columns: known ones, once each, "code" among them */

static int
vw_import_header(vw_ctl_t *ctl, vw_import_t *im)
{
    int        n;
    size_t     i, j, k;
    vw_csv_t  *csv;

    static const char *const  known[] = {
        "code", "campaign", "max_uses", "customer", "balance", "starts_at",
        "ends_at", "status", NULL
    };

    csv = &im->csv;
    n = vw_csv_next(csv, ctl->err, sizeof(ctl->err));

    if (n <= 0) {
        vw_ctl_fail("codes import: %s: %s", im->path,
                    n == 0 ? "empty file (a header line is required)"
                           : ctl->err);
        im->nerr++;
        return VW_PHASE_REJECTED;
    }

    if (csv->nfields > 8) {
        vw_ctl_fail("codes import: %s line 1: more than 8 columns",
                    im->path);
        im->nerr++;
        return VW_PHASE_REJECTED;
    }

    vw_buf_adds(&im->cols, "code");

    for (i = 0; i < csv->nfields; i++) {
        for (k = 0; known[k]; k++) {
            if (strcmp(csv->fields[i], known[k]) == 0) {
                break;
            }
        }

        if (known[k] == NULL) {
            vw_ctl_fail("codes import: %s line 1: unknown column \"%s\" "
                        "(known: " VW_IMPORT_COLUMNS ")", im->path,
                        csv->fields[i]);
            im->nerr++;
            return VW_PHASE_REJECTED;
        }

        for (j = 0; j < i; j++) {
            if (strcmp(csv->fields[i], csv->fields[j]) == 0) {
                vw_ctl_fail("codes import: %s line 1: column \"%s\" twice",
                            im->path, csv->fields[i]);
                im->nerr++;
                return VW_PHASE_REJECTED;
            }
        }

        if (k == 0) {
            im->code_col = (int) i;

        } else if (k == 1) {
            im->camp_col = (int) i;

        } else {
            im->col_map[im->ncols++] = (int) i;
            vw_buf_addc(&im->cols, ',');
            vw_buf_adds(&im->cols, csv->fields[i]);
        }
    }

    if (im->code_col < 0) {
        vw_ctl_fail("codes import: %s line 1: no \"code\" column", im->path);
        im->nerr++;
        return VW_PHASE_REJECTED;
    }

    if (im->camp_col < 0 && im->campaign == NULL) {
        vw_ctl_fail("codes import: %s line 1: no \"campaign\" column and no "
                    "--campaign", im->path);
        im->nerr++;
        return VW_PHASE_REJECTED;
    }

    return VW_PHASE_GO;
}


/*
 * Checks one line's code (normalized into norm) and campaign: 0, or -1
 * after saying what is wrong.
 */

static int
vw_import_line(vw_import_t *im, char *norm, size_t size)
{
    char      *p;
    vw_csv_t  *csv;

    csv = &im->csv;
    p = csv->fields[im->code_col];

    if (voucher_code_normalize(p, strlen(p), norm, size) == 0) {
        vw_ctl_fail("line %zu: code: empty, longer than %d characters, "
                    "or not printable ASCII", csv->line,
                    VOUCHER_CODE_MAX_LEN);
        return -1;
    }

    if (im->re != NULL
        && pcre2_match(im->re, (PCRE2_SPTR) norm, strlen(norm), 0, 0, im->md,
                       NULL) < 0)
    {
        vw_ctl_fail("line %zu: code \"%s\" does not match --match",
                    csv->line, norm);
        return -1;
    }

    if (im->camp_col >= 0 && csv->fields[im->camp_col][0] == '\0'
        && im->campaign == NULL)
    {
        vw_ctl_fail("line %zu: campaign: empty", csv->line);
        return -1;
    }

    return 0;
}


/* every line is read and checked before anything is written */

static int
vw_import_rows(vw_ctl_t *ctl, vw_import_t *im)
{
    int        n;
    char       norm[VW_CODE_SIZE];
    size_t     j, k;
    vw_row_t  *row;
    vw_csv_t  *csv;

    csv = &im->csv;
    k = csv->nfields;

    for ( ;; ) {
        n = vw_csv_next(csv, ctl->err, sizeof(ctl->err));

        if (n == 0) {
            break;
        }

        if (n < 0) {
            vw_ctl_fail("codes import: %s %s", im->path, ctl->err);
            im->nerr++;
            return VW_PHASE_REJECTED;
        }

        /* a blank line (often the last) is no record */
        if (csv->nfields == 1 && csv->fields[0][0] == '\0') {
            continue;
        }

        if (csv->nfields != k) {
            vw_ctl_fail("line %zu: %zu fields, the header has %zu",
                        csv->line, csv->nfields, k);

            if (++im->nerr == VW_IMPORT_ERRORS) {
                break;
            }

            continue;
        }

        if (vw_import_line(im, norm, sizeof(norm)) != 0) {
            if (++im->nerr == VW_IMPORT_ERRORS) {
                break;
            }

            continue;
        }

        if (im->nrows == im->cap) {
            im->cap = im->cap ? im->cap * 2 : 1024;
            im->rows = vw_xrealloc(im->rows, im->cap * sizeof(vw_row_t));
        }

        row = &im->rows[im->nrows];
        row->line = csv->line;
        row->code = vw_xstrdup(norm);
        row->campaign = vw_xstrdup(
            im->camp_col >= 0 && csv->fields[im->camp_col][0] != '\0'
            ? csv->fields[im->camp_col] : im->campaign);
        row->values = vw_xalloc((im->ncols ? im->ncols : 1)
                                * sizeof(char *));

        for (j = 0; j < im->ncols; j++) {
            row->values[j] = vw_xstrdup(csv->fields[im->col_map[j]]);
        }

        im->nrows++;
    }

    if (im->nerr == 0 && im->nrows == 0) {
        vw_ctl_fail("codes import: %s: no codes", im->path);
        im->nerr++;
        return VW_PHASE_REJECTED;
    }

    return VW_PHASE_GO;
}


/* the same code twice in the file (after normalization) */

static int
vw_import_twice(vw_import_t *im)
{
    size_t     i;
    vw_row_t **byc;

    if (im->nerr < VW_IMPORT_ERRORS && im->nrows > 1) {
        byc = vw_xalloc(im->nrows * sizeof(vw_row_t *));

        for (i = 0; i < im->nrows; i++) {
            byc[i] = &im->rows[i];
        }

        qsort(byc, im->nrows, sizeof(vw_row_t *), vw_row_by_code);

        for (i = 1; i < im->nrows && im->nerr < VW_IMPORT_ERRORS; i++) {
            if (strcmp(byc[i - 1]->code, byc[i]->code) == 0) {
                vw_ctl_fail("line %zu: code \"%s\" is also on line %zu",
                            byc[i]->line, byc[i]->code, byc[i - 1]->line);
                im->nerr++;
            }
        }

        free(byc);
    }

    return im->nerr > 0 ? VW_PHASE_REJECTED : VW_PHASE_GO;
}


/* the rows in chunks of one campaign each, VW_IMPORT_BATCH at most */

static void
vw_import_chunks(vw_import_t *im)
{
    size_t       i;
    vw_chunk_t  *last;

    qsort(im->rows, im->nrows, sizeof(vw_row_t), vw_row_by_campaign);
    im->chunks = vw_xalloc(im->nrows * sizeof(vw_chunk_t));

    for (i = 0; i < im->nrows; i++) {
        last = im->nchunks ? &im->chunks[im->nchunks - 1] : NULL;

        if (last == NULL || strcmp(last->campaign, im->rows[i].campaign) != 0
            || last->n == VW_IMPORT_BATCH)
        {
            last = &im->chunks[im->nchunks++];
            last->campaign = im->rows[i].campaign;
            last->first = i;
            last->n = 0;
        }

        last->n++;
    }
}


/*
 * The library validates every chunk and writes nothing.  It stops at the
 * first bad row of a chunk: a chunk is checked again from the row after
 * it, so that more than one error per chunk is listed.
 */

static int
vw_import_check(vw_ctl_t *ctl, vw_import_t *im)
{
    size_t       i, k;
    redisReply  *r;
    vw_chunk_t   rest;

    if (vw_ctl_redis(ctl) == NULL) {
        return VW_PHASE_FAILED;
    }

    for (i = 0; i < im->nchunks; i++) {
        vw_import_args(ctl, &im->a, "check", &im->chunks[i], im->rows,
                       im->cols.data, im->ncols);

        if (vw_redis_append(ctl->redis, &im->a) != 0) {
            vw_ctl_fail("codes import: redis: %s", ctl->redis->errstr);
            return VW_PHASE_FAILED;
        }
    }

    for (i = 0; i < im->nchunks; i++) {
        r = vw_redis_get(ctl->redis, ctl->err, sizeof(ctl->err));

        if (r == NULL) {
            vw_ctl_fail("codes import: %s", ctl->err);
            return VW_PHASE_FAILED;
        }

        im->chunks[i].bad = r->type == REDIS_REPLY_ERROR;
        freeReplyObject(r);
    }

    for (i = 0; i < im->nchunks && im->nerr < VW_IMPORT_ERRORS; i++) {
        rest = im->chunks[i];

        while (rest.bad && rest.n > 0 && im->nerr < VW_IMPORT_ERRORS) {
            vw_import_args(ctl, &im->a, "check", &rest, im->rows,
                           im->cols.data, im->ncols);
            r = vw_redis_run(ctl->redis, &im->a, ctl->err, sizeof(ctl->err));

            if (r == NULL) {
                vw_ctl_fail("codes import: %s", ctl->err);
                return VW_PHASE_FAILED;
            }

            if (r->type != REDIS_REPLY_ERROR) {
                freeReplyObject(r);
                break;
            }

            k = vw_import_error(r->str, &rest, im->rows, &im->nerr);
            freeReplyObject(r);

            if (k == 0) {
                break;               /* the chunk as a whole is refused */
            }

            rest.first += k;
            rest.n -= k;
        }
    }

    return im->nerr > 0 ? VW_PHASE_REJECTED : VW_PHASE_GO;
}


/* deletes the written codes: n replies are due */

static void
vw_import_undo(vw_ctl_t *ctl, vw_import_t *im, size_t n)
{
    char        *key;
    size_t       i, j;
    redisReply  *r;

    for (i = 0; i < im->nchunks; i++) {
        for (j = 0; j < im->chunks[i].n; j++) {
            key = vw_key(&ctl->cf, "c:%s",
                         im->rows[im->chunks[i].first + j].code);
            vw_args_reset(&im->a);
            vw_args_adds(&im->a, "FCALL");
            vw_args_adds(&im->a, "voucher_code_del");
            vw_args_adds(&im->a, "1");
            vw_args_adds(&im->a, key);
            free(key);
            vw_redis_append(ctl->redis, &im->a);
        }
    }

    for (i = 0; i < n; i++) {
        r = vw_redis_get(ctl->redis, ctl->err, sizeof(ctl->err));

        if (r == NULL) {
            vw_ctl_fail("codes import: undoing: %s", ctl->err);
            break;
        }

        freeReplyObject(r);
    }
}


/* writes; a chunk refused now (a code made meanwhile) undoes all */

static int
vw_import_write(vw_ctl_t *ctl, vw_import_t *im)
{
    size_t       i, done;
    redisReply  *r;

    for (i = 0; i < im->nchunks; i++) {
        vw_import_args(ctl, &im->a, "new", &im->chunks[i], im->rows,
                       im->cols.data, im->ncols);

        if (vw_redis_append(ctl->redis, &im->a) != 0) {
            vw_ctl_fail("codes import: redis: %s", ctl->redis->errstr);
            return VW_PHASE_FAILED;
        }
    }

    done = 0;

    for (i = 0; i < im->nchunks; i++) {
        r = vw_redis_get(ctl->redis, ctl->err, sizeof(ctl->err));

        if (r == NULL) {
            vw_ctl_fail("codes import: %s (the import may be partial: run "
                        "it again, existing codes are reported)", ctl->err);
            return VW_PHASE_FAILED;
        }

        if (r->type == REDIS_REPLY_ERROR) {
            (void) vw_import_error(r->str, &im->chunks[i], im->rows,
                                   &im->nerr);
            im->chunks[i].n = 0;     /* nothing of it was written */

        } else {
            done += im->chunks[i].n;
        }

        freeReplyObject(r);
    }

    if (im->nerr > 0) {
        vw_import_undo(ctl, im, done);
        return VW_PHASE_REJECTED;
    }

    return VW_PHASE_GO;
}


static void
vw_import_free(vw_import_t *im)
{
    size_t  i, j;

    for (i = 0; i < im->nrows; i++) {
        for (j = 0; j < im->ncols; j++) {
            free(im->rows[i].values[j]);
        }

        free(im->rows[i].values);
        free(im->rows[i].code);
        free(im->rows[i].campaign);
    }

    free(im->rows);
    free(im->chunks);
    vw_args_free(&im->a);
    vw_buf_free(&im->cols);
    vw_csv_free(&im->csv);
    fclose(im->f);
    pcre2_match_data_free(im->md);
    pcre2_code_free(im->re);
}


static int
vw_codes_import(vw_ctl_t *ctl, int argc, char **argv)
{
    int           npos, rc, phase;
    char         *pos[2];
    const char   *match;
    vw_import_t   im;

    vw_opt_t  opts[] = {
        { "--campaign", 1, NULL, 0 },
        { "--match", 1, NULL, 0 },
        { "--dry-run", 0, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 2, vw_codes_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_codes_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    memset(&im, 0, sizeof(vw_import_t));
    im.path = pos[0];
    im.campaign = vw_opt(opts, "--campaign");
    im.code_col = -1;
    im.camp_col = -1;
    match = vw_opt(opts, "--match");

    if (match && vw_import_match(&im, match) != 0) {
        return VW_EXIT_USAGE;
    }

    im.f = fopen(im.path, "r");
    if (im.f == NULL) {
        vw_ctl_fail("codes import: %s: %s", im.path, strerror(errno));
        pcre2_match_data_free(im.md);
        pcre2_code_free(im.re);
        return VW_EXIT_FAIL;
    }

    vw_csv_init(&im.csv, im.f);
    rc = VW_EXIT_FAIL;

    if ((phase = vw_import_header(ctl, &im)) != VW_PHASE_GO
        || (phase = vw_import_rows(ctl, &im)) != VW_PHASE_GO
        || (phase = vw_import_twice(&im)) != VW_PHASE_GO)
    {
        goto done;
    }

    vw_import_chunks(&im);

    if ((phase = vw_import_check(ctl, &im)) != VW_PHASE_GO) {
        goto done;
    }

    if (vw_opt(opts, "--dry-run")) {
        printf("%zu codes OK, nothing written (--dry-run)\n", im.nrows);
        rc = VW_EXIT_OK;
        goto done;
    }

    if ((phase = vw_import_write(ctl, &im)) == VW_PHASE_GO) {
        printf("imported %zu codes\n", im.nrows);
        rc = VW_EXIT_OK;
    }

done:

    if (phase == VW_PHASE_REJECTED) {
        vw_ctl_fail("codes import: %s rejected, nothing imported (%s%zu "
                    "error%s)", im.path,
                    im.nerr >= VW_IMPORT_ERRORS ? "at least " : "",
                    im.nerr, im.nerr == 1 ? "" : "s");
    }

    vw_import_free(&im);

    return rc;
}


/* ------------------------------------------------------------- export */


/*
 * The fields of a code, in the order voucher_codes_page gives the stored
 * ones (k s m u c b b0 f t) and voucher_code_get names them.
 */
static const char *const  vw_code_names[] = {
    "campaign", "status", "max_uses", "used", "customer", "balance",
    "initial_balance", "starts_at", "ends_at"
};

#define VW_CODE_NFIELDS  9


/* el: the VW_CODE_NFIELDS values of one code, in vw_code_fields order */

static void
vw_export_one(FILE *out, int jsonl, const char *code, redisReply **el,
    const char *pattern)
{
    size_t       i;
    json_t      *o;
    int64_t      n;
    const char  *v;
    char         shown[256];

    shown[0] = '\0';

    if (pattern) {
        voucher_code_display(code, strlen(code), pattern, shown,
                             sizeof(shown));
    }

    if (jsonl) {
        o = json_object();
        json_object_set_new(o, "code", json_string(code));

        for (i = 0; i < VW_CODE_NFIELDS; i++) {
            v = vw_reply_str(el[i]);

            if (i == 1) {
                json_object_set_new(o, "status", json_string(
                    v && strcmp(v, "d") == 0 ? "disabled" : "active"));
                continue;
            }

            if (i == 3 && v == NULL) {
                v = "0";
            }

            if (v == NULL) {
                continue;
            }

            if (i >= 2 && i != 4 && vw_parse_int(v, INT64_MIN, INT64_MAX, &n)
                                    == 0)
            {
                json_object_set_new(o, vw_code_names[i], json_integer(n));

            } else {
                json_object_set_new(o, vw_code_names[i], json_string(v));
            }
        }

        /* a code the pattern does not fit has no display form */
        if (shown[0] != '\0') {
            json_object_set_new(o, "display", json_string(shown));
        }

        json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', out);
        json_decref(o);
        return;
    }

    vw_csv_write(out, code);

    for (i = 0; i < VW_CODE_NFIELDS; i++) {
        v = vw_reply_str(el[i]);
        fputc(',', out);

        if (i == 1) {
            fputs(v && strcmp(v, "d") == 0 ? "disabled" : "active", out);

        } else if (i == 3 && v == NULL) {
            fputc('0', out);

        } else if (v) {
            vw_csv_write(out, v);
        }
    }

    if (pattern) {
        fputc(',', out);
        fputs(shown, out);
    }

    fputc('\n', out);
}


static int
vw_codes_export(vw_ctl_t *ctl, int argc, char **argv)
{
    int            npos, rc, jsonl;
    char          *pos[2], *key, cursor[32];
    FILE          *out;
    void         **slot;
    size_t         i, count;
    vw_map_t       seen;
    redisReply    *r, *rows, *row;
    const char    *fmt, *pattern, *output;

    vw_opt_t  opts[] = {
        { "--format", 1, NULL, 0 },
        { "--pattern", 1, NULL, 0 },
        { "--output", 1, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 2, vw_codes_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_codes_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    fmt = vw_opt(opts, "--format");
    pattern = vw_opt(opts, "--pattern");
    output = vw_opt(opts, "--output");

    if (fmt == NULL || strcmp(fmt, "csv") == 0) {
        jsonl = 0;

    } else if (strcmp(fmt, "jsonl") == 0) {
        jsonl = 1;

    } else {
        vw_ctl_fail("codes export: --format: expected csv or jsonl");
        return VW_EXIT_USAGE;
    }

    /* it only reads: a replica may answer */
    if (vw_ctl_redis_read(ctl) == NULL) {
        return VW_EXIT_FAIL;
    }

    out = vw_open_output(output);
    if (out == NULL) {
        return VW_EXIT_FAIL;
    }

    setvbuf(out, NULL, _IOFBF, 1 << 20);

    if (!jsonl) {
        fputs("code", out);

        for (i = 0; i < VW_CODE_NFIELDS; i++) {
            fprintf(out, ",%s", vw_code_names[i]);
        }

        fputs(pattern ? ",display\n" : "\n", out);
    }

    key = vw_key(&ctl->cf, "k:%s", pos[0]);
    strcpy(cursor, "0");
    count = 0;
    memset(&seen, 0, sizeof(vw_map_t));
    rc = VW_EXIT_FAIL;
    r = NULL;

    /* page by page: hash and compact codes alike (voucher_codes_page) */
    do {
        r = redisCommand(ctl->redis, "FCALL voucher_codes_page 1 %s %s %d",
                         key, cursor, VW_SCAN_COUNT);

        if (vw_redis_failed(ctl->redis, r, ctl->err, sizeof(ctl->err))) {
            vw_ctl_fail("codes export: %s", ctl->err);
            goto done;
        }

        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
            || r->element[0]->type != REDIS_REPLY_STRING
            || r->element[1]->type != REDIS_REPLY_ARRAY)
        {
            vw_ctl_fail("codes export: unexpected reply from "
                        "voucher_codes_page");
            goto done;
        }

        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        rows = r->element[1];

        for (i = 0; i < rows->elements; i++) {
            row = rows->element[i];

            if (row->type != REDIS_REPLY_ARRAY
                || row->elements != 1 + VW_CODE_NFIELDS
                || row->element[0]->type != REDIS_REPLY_STRING)
            {
                continue;
            }

            /* SCAN may return a key twice (while Redis rehashes) */
            slot = vw_map_slot(&seen, row->element[0]->str);
            if (*slot != NULL) {
                continue;
            }

            *slot = &seen;

            vw_export_one(out, jsonl, row->element[0]->str, row->element + 1,
                          pattern);
            count++;
        }

        freeReplyObject(r);
        r = NULL;

    } while (strcmp(cursor, "0") != 0);

    rc = VW_EXIT_OK;

done:

    if (r) {
        freeReplyObject(r);
    }

    if (vw_close_output(out, output) != 0) {
        rc = VW_EXIT_FAIL;
    }

    if (rc == VW_EXIT_OK) {
        fprintf(stderr, "voucherctl: exported %zu codes of campaign \"%s\"\n",
                count, pos[0]);
    }

    vw_map_free(&seen);
    free(key);

    return rc;
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
