
/*
 * Copyright (C) ngx_voucher authors
 *
 * The jobs codes.issue and codes.export.
 *
 * codes.issue makes count codes of the MAC'd format (common/
 * voucher_code.c): each batch of VW_ISSUE_BATCH is one voucher_job_step
 * running voucher_codes_add "skip" (a code that exists is made again in
 * a later batch) and moving the job's count in the same call, with
 * VW_ISSUE_DEPTH steps pipelined.  A runner that resumes it makes only
 * what is missing: never more than count codes.
 *
 * codes.export pages through the campaign's codes (voucher_codes_page);
 * each page's lines are one step, the SCAN cursor its checkpoint.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_csv.h"
#include "vw_job.h"
#include "vw_map.h"
#include "vw_util.h"


#define VW_ISSUE_BATCH     1000     /* codes per step */
#define VW_ISSUE_DEPTH     16       /* steps in flight */
#define VW_EXPORT_COUNT    1000     /* SCAN COUNT of a page */

#define VW_CODE_SIZE       (VOUCHER_CODE_MAX_LEN + 1)


/* a field's name as the caller knows it: "mac_length" or "--mac-length" */

static const char *
vw_fname(vw_op_in_t *in, const char *name, char *buf, size_t size)
{
    char  *p;

    /* the API names the field as sent, the CLI as its option; both in
     * buf, which some messages use after the call */
    if (in->strict) {
        snprintf(buf, size, "%s", name);
        return buf;
    }

    snprintf(buf, size, "--%s", name);

    for (p = buf; *p; p++) {
        if (*p == '_') {
            *p = '-';
        }
    }

    return buf;
}


static int
vw_job_int(vw_op_in_t *in, const char *name, int64_t min, int64_t max,
    int64_t def, int64_t *out, vw_operr_t *e)
{
    char  buf[64];

    *out = def;

    if (vw_op_int(in, in->body, name, 0, min, max, out, e) != 0) {
        return vw_op_fail(e, 400, "invalid_field", name,
                          "%s: expected an integer %lld..%lld",
                          vw_fname(in, name, buf, sizeof(buf)),
                          (long long) min, (long long) max);
    }

    return 0;
}


static int
vw_job_campaign(vw_op_t *op, vw_op_in_t *in, const char **campaign,
    vw_operr_t *e)
{
    char        *key;
    vw_args_t    a;
    redisReply  *r;

    if (vw_op_str(in, in->body, "campaign", 1, campaign, e) != 0) {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "k:%s", *campaign);
    vw_args_adds(&a, "EXISTS");
    vw_args_adds(&a, key);
    free(key);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->integer != 1) {
        freeReplyObject(r);
        return vw_op_fail(e, 404, "not_found", "campaign",
                          "campaign \"%s\" not found", *campaign);
    }

    freeReplyObject(r);

    return 0;
}


/* ------------------------------------------------------------- issue */


/* the codes to make, checked */

typedef struct {
    int64_t           count;
    int64_t           body;
    int64_t           mac;
    int64_t           max_uses;
    char              prefix[VW_CODE_SIZE];     /* normalized */
    char              suffix[VW_CODE_SIZE];     /* fmt.suffix, normalized */
    voucher_format_t  fmt;
    const char       *pattern;
} vw_issue_t;


/* --charset and --suffix into is->fmt */

static int
vw_issue_format(vw_op_in_t *in, vw_issue_t *is, vw_operr_t *e)
{
    char         err[160], buf[64];
    const char  *cs, *sf;

    cs = NULL;
    sf = NULL;

    if (vw_op_str(in, in->body, "charset", 0, &cs, e) != 0
        || vw_op_str(in, in->body, "suffix", 0, &sf, e) != 0)
    {
        return -1;
    }

    if (cs) {
        if (voucher_charset_check(cs, strlen(cs), err, sizeof(err)) != 0) {
            return vw_op_fail(e, 400, "invalid_field", "charset", "%s: %s",
                              vw_fname(in, "charset", buf, sizeof(buf)),
                              err);
        }

        is->fmt.charset = cs;
        is->fmt.charset_len = strlen(cs);
    }

    if (sf) {
        is->fmt.suffix_len = voucher_code_normalize(sf, strlen(sf),
                                                    is->suffix,
                                                    sizeof(is->suffix));

        if (is->fmt.suffix_len == 0) {
            return vw_op_fail(e, 400, "invalid_field", "suffix",
                              "%s: printable ASCII only",
                              vw_fname(in, "suffix", buf, sizeof(buf)));
        }

        is->fmt.suffix = is->suffix;
    }

    return 0;
}


/*
 * pattern gives the prefix, the suffix and, without length, the length;
 * what is given besides must agree.
 */

static int
vw_issue_pattern(vw_op_in_t *in, vw_issue_t *is, vw_operr_t *e)
{
    size_t  hashes;
    char    norm[VW_CODE_SIZE], psuffix[VW_CODE_SIZE];
    char    b1[32], b2[32], b3[32];

    vw_fname(in, "pattern", b1, sizeof(b1));

    if (voucher_pattern_split(is->pattern, norm, sizeof(norm), &hashes,
                              psuffix, sizeof(psuffix))
        != 0)
    {
        return vw_op_fail(e, 400, "invalid_field", "pattern",
                          "%s: expected literal prefix characters, then '#' "
                          "and separators (' ' '-'), then a literal "
                          "suffix, as in SALE-####-#### or ####-####-TH",
                          b1);
    }

    if (json_object_get(in->body, "prefix") && strcmp(is->prefix, norm) != 0)
    {
        return vw_op_fail(e, 400, "invalid_field", "prefix",
                          "%s \"%s\" and the prefix of %s \"%s\" differ",
                          vw_fname(in, "prefix", b2, sizeof(b2)),
                          is->prefix, b1, norm);
    }

    if (json_object_get(in->body, "suffix")
        && strcmp(is->fmt.suffix ? is->fmt.suffix : "", psuffix) != 0)
    {
        return vw_op_fail(e, 400, "invalid_field", "suffix",
                          "%s \"%s\" and the suffix of %s \"%s\" differ",
                          vw_fname(in, "suffix", b2, sizeof(b2)),
                          is->fmt.suffix ? is->fmt.suffix : "", b1,
                          psuffix);
    }

    strcpy(is->prefix, norm);
    strcpy(is->suffix, psuffix);
    is->fmt.suffix = is->suffix;
    is->fmt.suffix_len = strlen(is->suffix);

    vw_fname(in, "length", b2, sizeof(b2));
    vw_fname(in, "mac_length", b3, sizeof(b3));

    if (json_object_get(in->body, "length") == NULL) {
        if ((int64_t) hashes <= is->mac) {
            return vw_op_fail(e, 400, "invalid_field", "pattern",
                              "%s has %zu '#', not more than %s %lld", b1,
                              hashes, b3, (long long) is->mac);
        }

        is->body = (int64_t) hashes - is->mac;

    } else if ((int64_t) hashes != is->body + is->mac) {
        return vw_op_fail(e, 400, "invalid_field", "pattern",
                          "%s has %zu '#', but %s %lld + %s %lld = %lld",
                          b1, hashes, b2, (long long) is->body, b3,
                          (long long) is->mac,
                          (long long) (is->body + is->mac));
    }

    return 0;
}


/* the code fits VOUCHER_CODE_MAX_LEN and has a million bodies or more */

static int
vw_issue_fits(vw_op_in_t *in, const vw_issue_t *is, vw_operr_t *e)
{
    size_t    k;
    uint64_t  bodies;
    char      buf[32];

    if (strlen(is->prefix) + (size_t) is->body + (size_t) is->mac
        + is->fmt.suffix_len > VOUCHER_CODE_MAX_LEN)
    {
        return vw_op_fail(e, 400, "invalid_field", "length",
                          "prefix + length + mac-length + suffix is more "
                          "than %d characters", VOUCHER_CODE_MAX_LEN);
    }

    /* fewer than ~1e6 possible bodies make collisions the rule */
    for (bodies = 1, k = 0; k < (size_t) is->body && bodies < 1000000; k++) {
        bodies *= is->fmt.charset ? is->fmt.charset_len : 32;
    }

    if (bodies < 1000000) {
        return vw_op_fail(e, 400, "invalid_field", "length",
                          "%s must give at least a million random bodies "
                          "(4 characters of the Crockford alphabet, 6 "
                          "digits)", vw_fname(in, "length", buf,
                                              sizeof(buf)));
    }

    return 0;
}


static int
vw_issue_numbers(vw_op_in_t *in, vw_issue_t *is, vw_operr_t *e)
{
    char  buf[32];

    if (json_object_get(in->body, "count") == NULL
        || json_is_null(json_object_get(in->body, "count")))
    {
        return vw_op_fail(e, 400, "missing_field", "count", "%s is required",
                          vw_fname(in, "count", buf, sizeof(buf)));
    }

    if (vw_job_int(in, "count", 1, 100000000, 0, &is->count, e) != 0
        || vw_job_int(in, "mac_length", VOUCHER_MAC_MIN_LEN,
                      VOUCHER_MAC_MAX_LEN, 4, &is->mac, e) != 0
        || vw_job_int(in, "length", VOUCHER_BODY_MIN_LEN,
                      VOUCHER_BODY_MAX_LEN, 8, &is->body, e) != 0
        || vw_job_int(in, "max_uses", 0, 9007199254740991LL, -1,
                      &is->max_uses, e) != 0)
    {
        return -1;
    }

    return 0;
}


int
vw_job_issue_check(vw_op_t *op, vw_op_in_t *in, json_t **params,
    vw_operr_t *e)
{
    char         buf[32], warn[256];
    json_t      *p;
    const char  *campaign, *pfx;
    vw_issue_t   is;

    static const char *const  names[] = {
        "campaign", "count", "prefix", "length", "mac_length", "charset",
        "suffix", "pattern", "max_uses", NULL
    };

    memset(&is, 0, sizeof(vw_issue_t));
    pfx = NULL;
    warn[0] = '\0';

    if (vw_op_known(in->body, names, e) != 0
        || vw_issue_numbers(in, &is, e) != 0
        || vw_op_str(in, in->body, "prefix", 0, &pfx, e) != 0
        || vw_op_str(in, in->body, "pattern", 0, &is.pattern, e) != 0)
    {
        return -1;
    }

    if (pfx && voucher_code_normalize(pfx, strlen(pfx), is.prefix,
                                      sizeof(is.prefix)) == 0)
    {
        return vw_op_fail(e, 400, "invalid_field", "prefix",
                          "%s: printable ASCII only, at most %d characters",
                          vw_fname(in, "prefix", buf, sizeof(buf)),
                          VOUCHER_CODE_MAX_LEN);
    }

    if (vw_issue_format(in, &is, e) != 0) {
        return -1;
    }

    /*
     * By default a tag of at least a million values, so that a guess
     * passes the offline check once in 10^6: 4 Crockford characters, 6
     * digits.  A shorter one is the operator's choice, said out loud.
     */
    if (json_object_get(in->body, "mac_length") == NULL) {
        is.mac = (int64_t) voucher_tag_min_len(&is.fmt);

    } else if ((size_t) is.mac < voucher_tag_min_len(&is.fmt)) {
        snprintf(warn, sizeof(warn), "%s %lld lets a guess through the "
                 "offline check more than once in a million for this "
                 "charset (%zu would not)",
                 vw_fname(in, "mac_length", buf, sizeof(buf)),
                 (long long) is.mac, voucher_tag_min_len(&is.fmt));
    }

    if ((is.pattern && vw_issue_pattern(in, &is, e) != 0)
        || vw_issue_fits(in, &is, e) != 0)
    {
        return -1;
    }

    if (op->key == NULL) {
        return vw_op_fail(e, 409, "key_missing", NULL,
                          "no key_file in the configuration: codes cannot "
                          "be issued");
    }

    if (vw_job_campaign(op, in, &campaign, e) != 0) {
        return -1;
    }

    p = json_object();
    json_object_set_new(p, "campaign", json_string(campaign));
    json_object_set_new(p, "count", json_integer(is.count));
    json_object_set_new(p, "prefix", json_string(is.prefix));
    json_object_set_new(p, "length", json_integer(is.body));
    json_object_set_new(p, "mac_length", json_integer(is.mac));

    if (is.fmt.charset) {
        json_object_set_new(p, "charset", json_string(is.fmt.charset));
    }

    if (is.fmt.suffix_len) {
        json_object_set_new(p, "suffix", json_string(is.suffix));
    }

    if (is.pattern) {
        json_object_set_new(p, "pattern", json_string(is.pattern));
    }

    if (is.max_uses >= 0) {
        json_object_set_new(p, "max_uses", json_integer(is.max_uses));
    }

    if (warn[0]) {
        json_object_set_new(p, "warning", json_string(warn));
    }

    *params = p;

    return 0;
}


/* the checked parameters, as vw_job_issue_check left them */

static void
vw_issue_from(json_t *p, vw_issue_t *is)
{
    json_t      *v;
    const char  *s;

    memset(is, 0, sizeof(vw_issue_t));

    is->count = json_integer_value(json_object_get(p, "count"));
    is->body = json_integer_value(json_object_get(p, "length"));
    is->mac = json_integer_value(json_object_get(p, "mac_length"));
    v = json_object_get(p, "max_uses");
    is->max_uses = v ? json_integer_value(v) : -1;
    is->pattern = json_string_value(json_object_get(p, "pattern"));

    s = json_string_value(json_object_get(p, "prefix"));
    snprintf(is->prefix, sizeof(is->prefix), "%s", s ? s : "");

    s = json_string_value(json_object_get(p, "charset"));

    if (s) {
        is->fmt.charset = s;
        is->fmt.charset_len = strlen(s);
    }

    s = json_string_value(json_object_get(p, "suffix"));

    if (s) {
        snprintf(is->suffix, sizeof(is->suffix), "%s", s);
        is->fmt.suffix = is->suffix;
        is->fmt.suffix_len = strlen(is->suffix);
    }
}


typedef struct {
    char     (*codes)[VW_CODE_SIZE];
    size_t     n;
} vw_batch_t;


/* one step: b->n new codes */

static int
vw_issue_send(vw_job_t *j, const vw_issue_t *is, const char *ckey,
    vw_batch_t *b, int64_t seq, vw_args_t *a)
{
    size_t  k;

    vw_args_reset(a);
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
        if (voucher_code_issue_ex(j->op->key, is->prefix, (size_t) is->body,
                                  (size_t) is->mac, &is->fmt, b->codes[k],
                                  VW_CODE_SIZE) == 0)
        {
            vw_op_fail(&j->e, 500, "internal_error", NULL,
                       "a code could not be made");
            return -1;
        }

        vw_args_adds(a, b->codes[k]);
    }

    if (vw_job_step_send(j, ckey, seq, "", 0, "*", "codes_add", a) != 0) {
        vw_op_fail(&j->e, 503, "store_unavailable", NULL, "Redis: %s",
                   j->op->redis->errstr);
        return -1;
    }

    return 0;
}


/* the codes of b written (inner: {added, left}) to j->out */

static void
vw_issue_print(vw_job_t *j, const vw_issue_t *is, vw_batch_t *b,
    const redisReply *inner)
{
    size_t       i, n;
    int64_t      row;
    char         shown[256];
    redisReply  *left;

    if (j->out == NULL || inner->type != REDIS_REPLY_ARRAY
        || inner->elements != 2)
    {
        return;
    }

    /* the rows left out (the code exists) are marked with an empty code */
    left = inner->element[1];

    for (i = 0; i < left->elements; i++) {
        if (vw_reply_int(left->element[i], &row) == 0 && row >= 1
            && (size_t) row <= b->n)
        {
            b->codes[row - 1][0] = '\0';
        }
    }

    for (i = 0; i < b->n; i++) {
        if (b->codes[i][0] == '\0') {
            continue;
        }

        n = is->pattern ? voucher_code_display(b->codes[i],
                                               strlen(b->codes[i]),
                                               is->pattern, shown,
                                               sizeof(shown))
                        : 0;

        /* a code the pattern cannot show is printed as stored */
        fputs(n ? shown : b->codes[i], j->out);
        fputc('\n', j->out);
    }
}


int
vw_job_issue_run(vw_job_t *j)
{
    int          rc;
    char        *ckey;
    size_t       i, head, inflight;
    int64_t      pending, seq, made, added;
    vw_args_t    a;
    vw_issue_t   is;
    vw_batch_t  *b, ring[VW_ISSUE_DEPTH];
    redisReply  *r, *inner;

    if (j->op->key == NULL) {
        vw_op_fail(&j->e, 409, "key_missing", NULL,
                   "no key_file in the configuration: codes cannot be "
                   "issued");
        return VW_JOB_FAILED;
    }

    vw_issue_from(j->params, &is);
    j->total = is.count;

    ckey = vw_key(j->op->cf, "k:%s",
                  json_string_value(json_object_get(j->params, "campaign")));

    for (i = 0; i < VW_ISSUE_DEPTH; i++) {
        ring[i].codes = vw_xalloc(VW_ISSUE_BATCH * VW_CODE_SIZE);
        ring[i].n = 0;
    }

    memset(&a, 0, sizeof(vw_args_t));

    pending = 0;
    head = 0;
    inflight = 0;
    seq = j->seq;
    made = 0;
    added = 0;
    rc = VW_JOB_DONE;

    while (j->done < is.count) {
        while (inflight < VW_ISSUE_DEPTH && j->done + pending < is.count
               && !vw_job_stopping(j))
        {
            b = &ring[(head + inflight) % VW_ISSUE_DEPTH];
            b->n = (size_t) (is.count - j->done - pending);

            if (b->n > VW_ISSUE_BATCH) {
                b->n = VW_ISSUE_BATCH;
            }

            if (vw_issue_send(j, &is, ckey, b, seq, &a) != 0) {
                vw_job_drain(j, inflight);
                rc = VW_JOB_LOST;
                goto done;
            }

            seq++;
            pending += (int64_t) b->n;
            inflight++;
        }

        if (inflight == 0) {
            rc = vw_job_halt(j);
            goto done;
        }

        b = &ring[head];
        made += (int64_t) b->n;
        rc = vw_job_step_reply(j, &r, &inner);

        if (rc != VW_JOB_DONE) {
            vw_job_drain(j, inflight - 1);
            goto done;
        }

        if (inner->type == REDIS_REPLY_ARRAY && inner->elements == 2
            && inner->element[0]->type == REDIS_REPLY_INTEGER)
        {
            added += inner->element[0]->integer;
        }

        vw_issue_print(j, &is, b, inner);
        freeReplyObject(r);

        pending -= (int64_t) b->n;
        head = (head + 1) % VW_ISSUE_DEPTH;
        inflight--;
    }

done:

    j->result = json_pack("{s:I,s:I}", "issued", (json_int_t) j->done,
                          "collisions", (json_int_t) (made - added));

    for (i = 0; i < VW_ISSUE_DEPTH; i++) {
        free(ring[i].codes);
    }

    vw_args_free(&a);
    free(ckey);

    return rc;
}


/* ------------------------------------------------------------ export */


/*
 * The fields of a code, in the order voucher_codes_page gives the stored
 * ones (k s m u c b b0 f t) and voucher_code_get names them.
 */
static const char *const  vw_code_names[] = {
    "campaign", "status", "max_uses", "used", "customer", "balance",
    "initial_balance", "starts_at", "ends_at"
};

#define VW_CODE_NFIELDS  9


int
vw_job_export_check(vw_op_t *op, vw_op_in_t *in, json_t **params,
    vw_operr_t *e)
{
    char         buf[32];
    json_t      *p;
    const char  *campaign, *format, *pattern;

    static const char *const  names[] = {
        "campaign", "format", "pattern", NULL
    };

    format = NULL;
    pattern = NULL;

    if (vw_op_known(in->body, names, e) != 0
        || vw_op_str(in, in->body, "format", 0, &format, e) != 0
        || vw_op_str(in, in->body, "pattern", 0, &pattern, e) != 0)
    {
        return -1;
    }

    if (format && strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0)
    {
        return vw_op_fail(e, 400, "invalid_field", "format",
                          "%s: expected csv or jsonl",
                          vw_fname(in, "format", buf, sizeof(buf)));
    }

    if (vw_job_campaign(op, in, &campaign, e) != 0) {
        return -1;
    }

    p = json_object();
    json_object_set_new(p, "campaign", json_string(campaign));
    json_object_set_new(p, "format", json_string(format ? format : "csv"));

    if (pattern) {
        json_object_set_new(p, "pattern", json_string(pattern));
    }

    *params = p;

    return 0;
}


/* el: the VW_CODE_NFIELDS values of one code, in vw_code_names order */

static void
vw_export_one(vw_buf_t *out, int jsonl, const char *code, redisReply **el,
    const char *pattern)
{
    char        *s;
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

        s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        vw_buf_adds(out, s);
        vw_buf_addc(out, '\n');
        free(s);
        json_decref(o);
        return;
    }

    vw_csv_add(out, code);

    for (i = 0; i < VW_CODE_NFIELDS; i++) {
        v = vw_reply_str(el[i]);
        vw_buf_addc(out, ',');

        if (i == 1) {
            vw_buf_adds(out, v && strcmp(v, "d") == 0 ? "disabled"
                                                       : "active");

        } else if (i == 3 && v == NULL) {
            vw_buf_addc(out, '0');

        } else if (v) {
            vw_csv_add(out, v);
        }
    }

    if (pattern) {
        vw_buf_addc(out, ',');
        vw_buf_adds(out, shown);
    }

    vw_buf_addc(out, '\n');
}


/*
 * A resumed export: the codes already written (its output so far), so
 * that one SCAN returns twice is written once.
 */

static int
vw_export_seen(vw_job_t *j, int jsonl, vw_map_t *seen)
{
    char         *key, *line, *eol, code[VW_CODE_SIZE];
    size_t        i, n, k;
    int64_t       at;
    json_t       *o;
    vw_args_t     a;
    redisReply   *r;
    const char   *p;

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(j->op->cf, "jx:%s", j->id);

    for (at = 0; ; at += 64) {
        vw_args_reset(&a);
        vw_args_adds(&a, "LRANGE");
        vw_args_adds(&a, key);
        vw_args_addi(&a, at);
        vw_args_addi(&a, at + 63);

        r = vw_op_run(j->op, &a, &j->e);

        if (r == NULL) {
            free(key);
            vw_args_free(&a);
            return -1;
        }

        for (i = 0; i < r->elements; i++) {
            for (line = r->element[i]->str; *line; line = eol) {
                eol = line + strcspn(line, "\n");
                n = (size_t) (eol - line);
                code[0] = '\0';

                if (jsonl) {
                    o = json_loadb(line, n, 0, NULL);
                    p = json_string_value(json_object_get(o, "code"));
                    snprintf(code, sizeof(code), "%s", p ? p : "");
                    json_decref(o);

                } else if (at + i == 0 && line == r->element[i]->str) {
                    /* the header */

                } else if (*line == '"') {
                    /* a quoted field: "" is a quote */
                    for (p = line + 1, k = 0;
                         p < eol && k + 1 < sizeof(code); p++)
                    {
                        if (*p == '"' && p[1] != '"') {
                            break;
                        }

                        code[k++] = *p;
                        p += *p == '"';
                    }

                    code[k] = '\0';

                } else {
                    k = strcspn(line, ",\n");
                    snprintf(code, sizeof(code), "%.*s",
                             (int) (k < sizeof(code) ? k : 0), line);
                }

                if (code[0]) {
                    *vw_map_slot(seen, code) = seen;
                }

                if (*eol) {
                    eol++;
                }
            }
        }

        n = r->elements;
        freeReplyObject(r);

        if (n < 64) {
            break;
        }
    }

    free(key);
    vw_args_free(&a);

    return 0;
}


/* one page of codes into text; the cursor moves on */

static int
vw_export_page(vw_job_t *j, const char *ckey, int jsonl, const char *pattern,
    vw_map_t *seen, char *cursor, size_t size, vw_buf_t *text,
    int64_t *count)
{
    void       **slot;
    size_t       i;
    vw_args_t    a;
    redisReply  *r, *rows, *row;

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_codes_page");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, ckey);
    vw_args_adds(&a, cursor);
    vw_args_addi(&a, VW_EXPORT_COUNT);

    r = vw_op_run(j->op, &a, &j->e);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_ARRAY)
    {
        freeReplyObject(r);
        vw_op_fail(&j->e, 500, "internal_error", NULL,
                   "unexpected reply from voucher_codes_page");
        return -1;
    }

    snprintf(cursor, size, "%s", r->element[0]->str);
    rows = r->element[1];
    *count = 0;

    for (i = 0; i < rows->elements; i++) {
        row = rows->element[i];

        if (row->type != REDIS_REPLY_ARRAY
            || row->elements != 1 + VW_CODE_NFIELDS
            || row->element[0]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        /* SCAN may return a key twice (while Redis rehashes) */
        slot = vw_map_slot(seen, row->element[0]->str);

        if (*slot != NULL) {
            continue;
        }

        *slot = seen;

        vw_export_one(text, jsonl, row->element[0]->str, row->element + 1,
                      pattern);
        (*count)++;
    }

    freeReplyObject(r);

    return 0;
}


int
vw_job_export_run(vw_job_t *j)
{
    int          rc, jsonl;
    char        *ckey, cursor[64];
    size_t       i;
    int64_t      count;
    vw_buf_t     text;
    vw_map_t     seen;
    redisReply  *r, *inner;
    const char  *pattern;

    jsonl = strcmp(json_string_value(json_object_get(j->params, "format")),
                   "jsonl") == 0;
    pattern = json_string_value(json_object_get(j->params, "pattern"));
    ckey = vw_key(j->op->cf, "k:%s",
                  json_string_value(json_object_get(j->params, "campaign")));

    memset(&seen, 0, sizeof(vw_map_t));
    memset(&text, 0, sizeof(vw_buf_t));
    rc = VW_JOB_DONE;
    j->total = -1;

    if (j->seq == 0) {
        strcpy(cursor, "0");

    } else {
        snprintf(cursor, sizeof(cursor), "%s", j->cursor);

        if (j->id[0] && vw_export_seen(j, jsonl, &seen) != 0) {
            rc = VW_JOB_LOST;
            goto done;
        }
    }

    /* the last step had the end of the SCAN */
    while (!(j->seq > 0 && strcmp(cursor, "0") == 0)) {
        if (vw_job_stopping(j)) {
            rc = vw_job_halt(j);
            goto done;
        }

        vw_buf_reset(&text);

        if (j->seq == 0 && !jsonl) {
            vw_buf_adds(&text, "code");

            for (i = 0; i < VW_CODE_NFIELDS; i++) {
                vw_buf_printf(&text, ",%s", vw_code_names[i]);
            }

            vw_buf_adds(&text, pattern ? ",display\n" : "\n");
        }

        if (vw_export_page(j, ckey, jsonl, pattern, &seen, cursor,
                           sizeof(cursor), &text, &count)
            != 0)
        {
            rc = j->e.status == 503 ? VW_JOB_LOST : VW_JOB_FAILED;
            goto done;
        }

        if (j->out && text.len) {
            fwrite(text.data, 1, text.len, j->out);
        }

        if (j->id[0] == '\0') {
            j->done += count;
            j->seq++;

            if (j->progress) {
                j->progress(j);
            }

            continue;
        }

        vw_buf_addc(&text, '\0');

        if (vw_job_step_send(j, ckey, j->seq, cursor, count, text.data,
                             "none", NULL)
            != 0)
        {
            rc = VW_JOB_LOST;
            goto done;
        }

        rc = vw_job_step_reply(j, &r, &inner);

        if (rc != VW_JOB_DONE) {
            goto done;
        }

        freeReplyObject(r);
    }

done:

    j->result = json_pack("{s:I}", "exported", (json_int_t) j->done);

    vw_buf_free(&text);
    vw_map_free(&seen);
    free(ckey);

    return rc;
}
