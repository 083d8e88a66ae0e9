
/*
 * Copyright (C) ngx_voucher authors
 *
 * The jobs codes.import (CSV) and members.import (CSV or JSON lines).
 *
 * An import has two phases.  "check" writes nothing: every line is read
 * and checked (the CSV, the columns, the codes, a code twice in the file)
 * and then every row by the library itself ("check" mode); one bad line
 * rejects the whole file (import_rejected), with the lines named, up to
 * VW_JOB_ERRORS.  "write" writes the rows in batches of VW_IMPORT_BATCH
 * (one campaign each, for codes), each batch all or nothing and one
 * voucher_job_step with the job's checkpoint: a runner that resumes goes
 * on at the next batch.  A batch refused now (a code made by somebody
 * else meanwhile, the campaign gone) ends the job failed at that batch,
 * its lines named, and says how many rows the batches before it wrote.
 */


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "vw_csv.h"
#include "vw_job.h"
#include "vw_util.h"


#define VW_IMPORT_BATCH    1000
#define VW_IMPORT_DEPTH    16

#define VW_CODE_SIZE       (VOUCHER_CODE_MAX_LEN + 1)

#define VW_IMPORT_COLUMNS  "code,campaign,max_uses,customer,balance," \
                           "starts_at,ends_at,status"

#define VW_MEMBER_COLUMNS  "id,name,phone,email,line,birthday,tier,tags," \
                           "signup,first_purchase,last_purchase,purchases," \
                           "spend,attrs"

#define VW_MEMBER_MAXCOLS  16


/* a row of either file; for codes v[0] is the code, v[1] the campaign */

typedef struct {
    size_t       line;
    char       **v;
} vw_irow_t;


typedef struct {
    const char  *campaign;          /* codes: of every row of it */
    size_t       first;             /* index into the sorted rows */
    size_t       n;
    int          bad;               /* the library refused it */
} vw_chunk_t;


typedef struct {
    vw_job_t          *j;
    int                members;     /* members.import; else codes.import */
    FILE              *f;
    char              *cols[VW_MEMBER_MAXCOLS];   /* the columns sent */
    size_t             ncols;
    int                col_map[VW_MEMBER_MAXCOLS];
    int                code_col;
    int                camp_col;
    const char        *campaign;    /* the campaign parameter */
    pcre2_code        *re;
    pcre2_match_data  *md;
    vw_irow_t         *rows;
    size_t             nrows;
    size_t             cap;
    vw_chunk_t        *chunks;
    size_t             nchunks;
    vw_args_t          a;
} vw_import_t;


/* the name of a parameter: "--match" for voucherctl, "match" otherwise */

static const char *
vw_pname(vw_op_in_t *in, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s", in->strict ? "" : "--", name);

    return buf;
}


static int
vw_job_bool(vw_op_in_t *in, const char *name, int *out, vw_operr_t *e)
{
    char         buf[32];
    json_t      *v;
    const char  *s;

    v = json_object_get(in->body, name);
    *out = 0;

    if (v == NULL || json_is_false(v)) {
        return 0;
    }

    s = json_string_value(v);

    if (json_is_true(v) || (s && (strcmp(s, "true") == 0
                                  || strcmp(s, "1") == 0)))
    {
        *out = 1;
        return 0;
    }

    if (s && (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)) {
        return 0;
    }

    return vw_op_fail(e, 400, "invalid_field", name, "%s: expected true or "
                      "false", vw_pname(in, name, buf, sizeof(buf)));
}


static pcre2_code *
vw_import_re(const char *match, char *err, size_t errlen)
{
    int          errcode;
    pcre2_code  *re;
    PCRE2_SIZE   erroff;
    PCRE2_UCHAR  emsg[256];

    /* the whole code must match, not a part of it */
    re = pcre2_compile((PCRE2_SPTR) match, PCRE2_ZERO_TERMINATED,
                       PCRE2_ANCHORED | PCRE2_ENDANCHORED, &errcode,
                       &erroff, NULL);

    if (re == NULL) {
        pcre2_get_error_message(errcode, emsg, sizeof(emsg));
        snprintf(err, errlen, "%s at offset %zu", (char *) emsg,
                 (size_t) erroff);
    }

    return re;
}


int
vw_job_import_check(vw_op_t *op, vw_op_in_t *in, json_t **params,
    vw_operr_t *e)
{
    int          dry;
    char         err[300], buf[32];
    json_t      *p;
    const char  *campaign, *match;
    pcre2_code  *re;

    static const char *const  names[] = {
        "campaign", "match", "dry_run", NULL
    };

    (void) op;

    campaign = NULL;
    match = NULL;

    if (vw_op_known(in->body, names, e) != 0
        || vw_op_str(in, in->body, "campaign", 0, &campaign, e) != 0
        || vw_op_str(in, in->body, "match", 0, &match, e) != 0
        || vw_job_bool(in, "dry_run", &dry, e) != 0)
    {
        return -1;
    }

    if (match) {
        re = vw_import_re(match, err, sizeof(err));

        if (re == NULL) {
            return vw_op_fail(e, 400, "invalid_field", "match", "%s: %s",
                              vw_pname(in, "match", buf, sizeof(buf)), err);
        }

        pcre2_code_free(re);
    }

    p = json_object();

    if (campaign) {
        json_object_set_new(p, "campaign", json_string(campaign));
    }

    if (match) {
        json_object_set_new(p, "match", json_string(match));
    }

    json_object_set_new(p, "dry_run", json_boolean(dry));

    *params = p;

    return 0;
}


int
vw_job_members_check(vw_op_t *op, vw_op_in_t *in, json_t **params,
    vw_operr_t *e)
{
    int          dry;
    char         buf[32];
    json_t      *p;
    const char  *format;

    static const char *const  names[] = { "format", "dry_run", NULL };

    (void) op;

    format = NULL;

    if (vw_op_known(in->body, names, e) != 0
        || vw_op_str(in, in->body, "format", 0, &format, e) != 0
        || vw_job_bool(in, "dry_run", &dry, e) != 0)
    {
        return -1;
    }

    if (format && strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0)
    {
        return vw_op_fail(e, 400, "invalid_field", "format",
                          "%s: expected csv or jsonl",
                          vw_pname(in, "format", buf, sizeof(buf)));
    }

    p = json_object();
    json_object_set_new(p, "format", json_string(format ? format : "csv"));
    json_object_set_new(p, "dry_run", json_boolean(dry));

    *params = p;

    return 0;
}


/* --------------------------------------------------------------- rows */


static vw_irow_t *
vw_irow_new(vw_import_t *im, size_t line)
{
    size_t      i;
    vw_irow_t  *row;

    if (im->nrows == im->cap) {
        im->cap = im->cap ? im->cap * 2 : 1024;
        im->rows = vw_xrealloc(im->rows, im->cap * sizeof(vw_irow_t));
    }

    row = &im->rows[im->nrows++];
    row->line = line;
    row->v = vw_xalloc((VW_MEMBER_MAXCOLS + 2) * sizeof(char *));

    for (i = 0; i < VW_MEMBER_MAXCOLS + 2; i++) {
        row->v[i] = NULL;
    }

    return row;
}


static void
vw_import_free(vw_import_t *im)
{
    size_t  i, j;

    for (i = 0; i < im->nrows; i++) {
        for (j = 0; j < VW_MEMBER_MAXCOLS + 2; j++) {
            free(im->rows[i].v[j]);
        }

        free(im->rows[i].v);
    }

    for (i = 0; i < im->ncols; i++) {
        free(im->cols[i]);
    }

    free(im->rows);
    free(im->chunks);
    vw_args_free(&im->a);

    if (im->f) {
        fclose(im->f);
    }

    pcre2_match_data_free(im->md);
    pcre2_code_free(im->re);
}


static int
vw_too_many(vw_import_t *im)
{
    return im->j->errors
           && json_array_size(im->j->errors) >= VW_JOB_ERRORS;
}


/* the input as a file; an empty one has no header */

static int
vw_import_open(vw_import_t *im)
{
    vw_job_t  *j;

    j = im->j;

    if (j->input_len == 0) {
        vw_job_say(j, 0, "empty file (a header line is required)");
        return -1;
    }

    im->f = fmemopen(j->input, j->input_len, "r");

    if (im->f == NULL) {
        vw_op_fail(&j->e, 500, "internal_error", NULL, "fmemopen: %s",
                   strerror(errno));
        return -1;
    }

    return 0;
}


/* the codes header: known columns, once each, "code" among them */

static int
vw_codes_header(vw_import_t *im, vw_csv_t *csv)
{
    int         n;
    char        err[256];
    size_t      i, j, k;
    vw_job_t   *jb;

    static const char *const  known[] = {
        "code", "campaign", "max_uses", "customer", "balance", "starts_at",
        "ends_at", "status", NULL
    };

    jb = im->j;
    n = vw_csv_next(csv, err, sizeof(err));

    if (n <= 0) {
        vw_job_say(jb, 0, "%s", n == 0
                   ? "empty file (a header line is required)" : err);
        return -1;
    }

    if (csv->nfields > 8) {
        vw_job_say(jb, 1, "more than 8 columns");
        return -1;
    }

    im->cols[im->ncols++] = vw_xstrdup("code");

    for (i = 0; i < csv->nfields; i++) {
        for (k = 0; known[k]; k++) {
            if (strcmp(csv->fields[i], known[k]) == 0) {
                break;
            }
        }

        if (known[k] == NULL) {
            vw_job_say(jb, 1, "unknown column \"%s\" (known: "
                       VW_IMPORT_COLUMNS ")", csv->fields[i]);
            return -1;
        }

        for (j = 0; j < i; j++) {
            if (strcmp(csv->fields[i], csv->fields[j]) == 0) {
                vw_job_say(jb, 1, "column \"%s\" twice", csv->fields[i]);
                return -1;
            }
        }

        if (k == 0) {
            im->code_col = (int) i;

        } else if (k == 1) {
            im->camp_col = (int) i;

        } else {
            im->col_map[im->ncols - 1] = (int) i;
            im->cols[im->ncols++] = vw_xstrdup(csv->fields[i]);
        }
    }

    if (im->code_col < 0) {
        vw_job_say(jb, 1, "no \"code\" column");
        return -1;
    }

    if (im->camp_col < 0 && im->campaign == NULL) {
        vw_job_say(jb, 1, "no \"campaign\" column and no --campaign "
                   "(campaign= through the API)");
        return -1;
    }

    return 0;
}


/* one line's code (normalized into norm) and campaign; -1 said why */

static int
vw_codes_line(vw_import_t *im, vw_csv_t *csv, char *norm, size_t size)
{
    char  *p;

    p = csv->fields[im->code_col];

    if (voucher_code_normalize(p, strlen(p), norm, size) == 0) {
        vw_job_say(im->j, csv->line, "code: empty, longer than %d "
                   "characters, or not printable ASCII",
                   VOUCHER_CODE_MAX_LEN);
        return -1;
    }

    if (im->re != NULL
        && pcre2_match(im->re, (PCRE2_SPTR) norm, strlen(norm), 0, 0, im->md,
                       NULL) < 0)
    {
        vw_job_say(im->j, csv->line, "code \"%s\" does not match --match "
                   "(match=)", norm);
        return -1;
    }

    if (im->camp_col >= 0 && csv->fields[im->camp_col][0] == '\0'
        && im->campaign == NULL)
    {
        vw_job_say(im->j, csv->line, "campaign: empty");
        return -1;
    }

    return 0;
}


/* every line of a codes file, read and checked */

static void
vw_codes_rows(vw_import_t *im)
{
    int         n;
    char        norm[VW_CODE_SIZE], err[256];
    size_t      j, k;
    vw_csv_t    csv;
    vw_irow_t  *row;

    vw_csv_init(&csv, im->f);

    if (vw_codes_header(im, &csv) != 0) {
        vw_csv_free(&csv);
        return;
    }

    k = csv.nfields;

    while (!vw_too_many(im)) {
        n = vw_csv_next(&csv, err, sizeof(err));

        if (n == 0) {
            break;
        }

        if (n < 0) {
            vw_job_say(im->j, 0, "%s", err);
            break;
        }

        /* a blank line (often the last) is no record */
        if (csv.nfields == 1 && csv.fields[0][0] == '\0') {
            continue;
        }

        if (csv.nfields != k) {
            vw_job_say(im->j, csv.line, "%zu fields, the header has %zu",
                       csv.nfields, k);
            continue;
        }

        if (vw_codes_line(im, &csv, norm, sizeof(norm)) != 0) {
            continue;
        }

        row = vw_irow_new(im, csv.line);
        row->v[0] = vw_xstrdup(norm);
        row->v[1] = vw_xstrdup(
            im->camp_col >= 0 && csv.fields[im->camp_col][0] != '\0'
            ? csv.fields[im->camp_col] : im->campaign);

        for (j = 1; j < im->ncols; j++) {
            row->v[j + 1] = vw_xstrdup(csv.fields[im->col_map[j - 1]]);
        }
    }

    vw_csv_free(&csv);
}


static int
vw_member_col(const char *name)
{
    int  i;

    static const char *const  known[] = {
        "id", "name", "phone", "email", "line", "birthday", "tier", "tags",
        "signup", "first_purchase", "last_purchase", "purchases", "spend",
        "attrs", NULL
    };

    for (i = 0; known[i]; i++) {
        if (strcmp(name, known[i]) == 0) {
            return i;
        }
    }

    return -1;
}


/* a members CSV: v[0..ncols) in the file's column order, id first */

static void
vw_members_csv(vw_import_t *im)
{
    int         n;
    char       *p, err[256];
    size_t      i, j;
    vw_csv_t    csv;
    vw_irow_t  *row;

    vw_csv_init(&csv, im->f);
    n = vw_csv_next(&csv, err, sizeof(err));

    if (n <= 0) {
        vw_job_say(im->j, 0, "%s", n == 0
                   ? "empty file (a header line is required)" : err);
        goto done;
    }

    for (i = 0; i < csv.nfields; i++) {
        if (vw_member_col(csv.fields[i]) < 0) {
            vw_job_say(im->j, 1, "unknown column \"%s\" (known: "
                       VW_MEMBER_COLUMNS ")", csv.fields[i]);
            goto done;
        }

        for (j = 0; j < i; j++) {
            if (strcmp(im->cols[j], csv.fields[i]) == 0) {
                vw_job_say(im->j, 1, "column \"%s\" twice", csv.fields[i]);
                goto done;
            }
        }

        im->cols[im->ncols++] = vw_xstrdup(csv.fields[i]);
    }

    if (im->ncols == 0 || strcmp(im->cols[0], "id") != 0) {
        vw_job_say(im->j, 1, "the first column must be \"id\"");
        goto done;
    }

    while (!vw_too_many(im)) {
        n = vw_csv_next(&csv, err, sizeof(err));

        if (n == 0) {
            break;
        }

        if (n < 0) {
            vw_job_say(im->j, 0, "%s", err);
            break;
        }

        if (csv.nfields == 1 && csv.fields[0][0] == '\0') {
            continue;
        }

        if (csv.nfields != im->ncols) {
            vw_job_say(im->j, csv.line, "%zu fields, the header has %zu",
                       csv.nfields, im->ncols);
            continue;
        }

        row = vw_irow_new(im, csv.line);

        for (i = 0; i < im->ncols; i++) {
            row->v[i] = vw_xstrdup(csv.fields[i]);

            /* in CSV, tags may also be separated by ';' */
            if (strcmp(im->cols[i], "tags") == 0) {
                for (p = row->v[i]; *p; p++) {
                    if (*p == ';') {
                        *p = ',';
                    }
                }
            }
        }
    }

done:

    vw_csv_free(&csv);
}


/* a JSON value as the text the library takes; NULL when of a wrong type */

static char *
vw_json_cell(const char *name, json_t *v)
{
    size_t    i;
    json_t   *e;
    vw_buf_t  b;

    if (json_is_null(v)) {
        return vw_xstrdup("");
    }

    if (json_is_string(v)) {
        return vw_xstrndup(json_string_value(v), json_string_length(v));
    }

    if (json_is_integer(v)) {
        memset(&b, 0, sizeof(vw_buf_t));
        vw_buf_printf(&b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return b.data;
    }

    /* custom attributes: the object as JSON, checked by the library */
    if (json_is_object(v) && strcmp(name, "attrs") == 0) {
        return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    }

    if (json_is_array(v) && strcmp(name, "tags") == 0) {
        memset(&b, 0, sizeof(vw_buf_t));
        vw_buf_adds(&b, "");

        json_array_foreach(v, i, e) {
            if (!json_is_string(e)) {
                vw_buf_free(&b);
                return NULL;
            }

            if (i > 0) {
                vw_buf_addc(&b, ',');
            }

            vw_buf_adds(&b, json_string_value(e));
        }

        return b.data;
    }

    return NULL;
}


/* members as JSON lines: the columns are the keys, in order of sight */

static void
vw_members_jsonl(vw_import_t *im)
{
    char          *line, *cell;
    size_t         cap, lineno, i, c;
    ssize_t        len;
    json_t        *o, *v;
    const char    *key;
    vw_irow_t     *row;
    json_error_t   je;

    im->cols[im->ncols++] = vw_xstrdup("id");

    line = NULL;
    cap = 0;
    lineno = 0;

    while (!vw_too_many(im) && (len = getline(&line, &cap, im->f)) != -1) {
        lineno++;

        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'
                           || line[len - 1] == ' '))
        {
            line[--len] = '\0';
        }

        if (len == 0) {
            continue;
        }

        o = json_loadb(line, (size_t) len, JSON_REJECT_DUPLICATES, &je);

        if (o == NULL || !json_is_object(o)) {
            vw_job_say(im->j, lineno, "%s",
                       o ? "expected a JSON object" : je.text);
            json_decref(o);
            continue;
        }

        row = vw_irow_new(im, lineno);

        json_object_foreach(o, key, v) {
            if (vw_member_col(key) < 0) {
                vw_job_say(im->j, lineno, "unknown field \"%s\" (known: "
                           VW_MEMBER_COLUMNS ")", key);
                break;
            }

            cell = vw_json_cell(key, v);

            if (cell == NULL) {
                vw_job_say(im->j, lineno,
                           "%s: expected a string or an integer%s", key,
                           strcmp(key, "tags") == 0
                           ? " or an array of strings" : "");
                break;
            }

            for (c = 0; c < im->ncols; c++) {
                if (strcmp(im->cols[c], key) == 0) {
                    break;
                }
            }

            if (c == im->ncols) {
                im->cols[im->ncols++] = vw_xstrdup(key);
            }

            free(row->v[c]);
            row->v[c] = cell;
        }

        json_decref(o);

        if (row->v[0] == NULL || row->v[0][0] == '\0') {
            vw_job_say(im->j, lineno, "id: required");
        }
    }

    free(line);

    /* cells of columns a line did not have */
    for (i = 0; i < im->nrows; i++) {
        for (c = 0; c < im->ncols; c++) {
            if (im->rows[i].v[c] == NULL) {
                im->rows[i].v[c] = vw_xstrdup("");
            }
        }
    }
}


static int
vw_row_by_key(const void *a, const void *b)
{
    const vw_irow_t  *x = *(vw_irow_t *const *) a;
    const vw_irow_t  *y = *(vw_irow_t *const *) b;
    int               c;

    c = strcmp(x->v[0], y->v[0]);

    return c ? c : (x->line < y->line ? -1 : x->line > y->line);
}


/* the same code (or member id) twice in the file */

static void
vw_import_twice(vw_import_t *im)
{
    size_t      i;
    vw_irow_t **by;

    if (im->nrows < 2) {
        return;
    }

    by = vw_xalloc(im->nrows * sizeof(vw_irow_t *));

    for (i = 0; i < im->nrows; i++) {
        by[i] = &im->rows[i];
    }

    qsort(by, im->nrows, sizeof(vw_irow_t *), vw_row_by_key);

    for (i = 1; i < im->nrows && !vw_too_many(im); i++) {
        if (strcmp(by[i - 1]->v[0], by[i]->v[0]) == 0) {
            vw_job_say(im->j, by[i]->line, "%s \"%s\" is also on line %zu",
                       im->members ? "id" : "code", by[i]->v[0],
                       by[i - 1]->line);
        }
    }

    free(by);
}


static int
vw_row_by_campaign(const void *a, const void *b)
{
    const vw_irow_t  *x = a, *y = b;
    int               c;

    c = strcmp(x->v[1], y->v[1]);

    return c ? c : (x->line < y->line ? -1 : x->line > y->line);
}


/*
 * The rows in batches of VW_IMPORT_BATCH at most, of one campaign each
 * for codes; the order depends on the file only, so a resumed job makes
 * the same batches.
 */

static void
vw_import_chunks(vw_import_t *im)
{
    size_t       i;
    vw_chunk_t  *last;

    if (!im->members) {
        qsort(im->rows, im->nrows, sizeof(vw_irow_t), vw_row_by_campaign);
    }

    im->chunks = vw_xalloc((im->nrows + 1) * sizeof(vw_chunk_t));

    for (i = 0; i < im->nrows; i++) {
        last = im->nchunks ? &im->chunks[im->nchunks - 1] : NULL;

        if (last == NULL || last->n == VW_IMPORT_BATCH
            || (!im->members
                && strcmp(last->campaign, im->rows[i].v[1]) != 0))
        {
            last = &im->chunks[im->nchunks++];
            last->campaign = im->members ? NULL : im->rows[i].v[1];
            last->first = i;
            last->n = 0;
            last->bad = 0;
        }

        last->n++;
    }
}


/* ------------------------------------------------------------- writes */


/* the key and the arguments of the library call of a batch */

static char *
vw_import_args(vw_import_t *im, const char *mode, const vw_chunk_t *ch)
{
    char      *key;
    size_t     i, c;
    vw_buf_t   cols;
    vw_args_t *a;

    a = &im->a;
    memset(&cols, 0, sizeof(vw_buf_t));

    for (c = 0; c < im->ncols; c++) {
        if (c) {
            vw_buf_addc(&cols, ',');
        }

        vw_buf_adds(&cols, im->cols[c]);
    }

    vw_args_reset(a);
    vw_args_adds(a, mode);

    if (im->members) {
        key = vw_key(im->j->op->cf, "members");
        vw_args_adds(a, cols.data);

        for (i = ch->first; i < ch->first + ch->n; i++) {
            for (c = 0; c < im->ncols; c++) {
                vw_args_adds(a, im->rows[i].v[c]);
            }
        }

    } else {
        key = vw_key(im->j->op->cf, "k:%s", ch->campaign);
        vw_args_adds(a, "0");
        vw_args_adds(a, cols.data);

        /* v[0] the code, v[1] the campaign, then the other columns */
        for (i = ch->first; i < ch->first + ch->n; i++) {
            vw_args_adds(a, im->rows[i].v[0]);

            for (c = 1; c < im->ncols; c++) {
                vw_args_adds(a, im->rows[i].v[c + 1]);
            }
        }
    }

    vw_buf_free(&cols);

    return key;
}


/* the bare library call (the check): "FCALL fn 1 key args" appended */

static int
vw_import_send(vw_import_t *im, const char *key)
{
    int         i, rc;
    vw_args_t   a;

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, im->members ? "voucher_members_add"
                                 : "voucher_codes_add");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);

    for (i = 0; i < im->a.n; i++) {
        vw_args_add(&a, im->a.v[i], im->a.len[i]);
    }

    rc = vw_redis_append(im->j->op->redis, &a);
    vw_args_free(&a);

    return rc;
}


/*
 * A library error about a batch, by file line ("... (row N)" names the
 * row of it).  Returns that row, or 0 when it is about the batch as a
 * whole (an unknown campaign).
 */

static size_t
vw_import_error(vw_import_t *im, const char *msg, const vw_chunk_t *ch)
{
    long              row;
    const char       *p;
    const vw_irow_t  *x;

    msg = vw_job_err_text(msg);
    p = strstr(msg, " (row ");

    if (p != NULL && (row = strtol(p + 6, NULL, 10)) >= 1
        && (size_t) row <= ch->n)
    {
        x = &im->rows[ch->first + (size_t) row - 1];
        vw_job_say(im->j, x->line, "%s \"%s\": %.*s",
                   im->members ? "id" : "code", x->v[0], (int) (p - msg),
                   msg);
        return (size_t) row;
    }

    if (ch->campaign) {
        vw_job_say(im->j, 0, "campaign \"%s\": %s", ch->campaign, msg);

    } else {
        vw_job_say(im->j, 0, "%s", msg);
    }

    return 0;
}


/* a Redis failure while reading a reply */

static int
vw_import_lost(vw_import_t *im, const char *err)
{
    vw_op_fail(&im->j->e, 503, "store_unavailable", NULL, "Redis: %s", err);

    return VW_JOB_LOST;
}


/*
 * The library validates every batch and writes nothing.  It stops at the
 * first bad row of a batch: the batch is checked again from the row after
 * it, so that more than one error per batch is listed.
 */

static int
vw_import_check(vw_import_t *im)
{
    int          rc;
    char        *key, err[512];
    size_t       i, k, g, end;
    redisReply  *r;
    vw_chunk_t   rest;
    vw_job_t    *j;

    j = im->j;

    for (g = 0; g < im->nchunks; g = end) {
        end = g + VW_IMPORT_DEPTH < im->nchunks ? g + VW_IMPORT_DEPTH
                                                : im->nchunks;

        for (i = g; i < end; i++) {
            key = vw_import_args(im, "check", &im->chunks[i]);
            rc = vw_import_send(im, key);
            free(key);

            if (rc != 0) {
                return vw_import_lost(im, j->op->redis->errstr);
            }
        }

        for (i = g; i < end; i++) {
            r = vw_redis_get(j->op->redis, err, sizeof(err));

            if (r == NULL) {
                return vw_import_lost(im, err);
            }

            im->chunks[i].bad = r->type == REDIS_REPLY_ERROR;
            freeReplyObject(r);
            j->done += (int64_t) im->chunks[i].n;
        }

        for (i = g; i < end && !vw_too_many(im); i++) {
            rest = im->chunks[i];

            while (rest.bad && rest.n > 0 && !vw_too_many(im)) {
                key = vw_import_args(im, "check", &rest);
                rc = vw_import_send(im, key);
                free(key);

                r = rc == 0 ? vw_redis_get(j->op->redis, err, sizeof(err))
                            : NULL;

                if (r == NULL) {
                    return vw_import_lost(im, err);
                }

                if (r->type != REDIS_REPLY_ERROR) {
                    freeReplyObject(r);
                    break;
                }

                k = vw_import_error(im, r->str, &rest);
                freeReplyObject(r);

                if (k == 0) {
                    break;           /* the batch as a whole is refused */
                }

                rest.first += k;
                rest.n -= k;
            }
        }

        rc = vw_job_beat(j);

        if (rc != VW_JOB_DONE) {
            return rc;
        }

        if (vw_job_stopping(j)) {
            return vw_job_halt(j);
        }
    }

    return VW_JOB_DONE;
}


/* the batches from the checkpoint on, VW_IMPORT_DEPTH steps in flight */

static int
vw_import_write(vw_import_t *im)
{
    int          rc;
    char        *key;
    size_t       next, inflight, row;
    redisReply  *r, *inner;
    vw_chunk_t  *ch;
    vw_job_t    *j;

    j = im->j;
    next = (size_t) j->seq;
    inflight = 0;

    while (next < im->nchunks || inflight > 0) {
        while (inflight < VW_IMPORT_DEPTH && next < im->nchunks
               && !vw_job_stopping(j))
        {
            key = vw_import_args(im, im->members ? "write" : "new",
                                 &im->chunks[next]);
            rc = vw_job_step_send(j, key, (int64_t) next, "", 0, "",
                                  im->members ? "members_add" : "codes_add",
                                  &im->a);
            free(key);

            if (rc != 0) {
                vw_job_drain(j, inflight);
                return vw_import_lost(im, j->op->redis->errstr);
            }

            next++;
            inflight++;
        }

        if (inflight == 0) {
            return vw_job_halt(j);
        }

        ch = &im->chunks[j->seq];
        rc = vw_job_step_reply(j, &r, &inner);
        inflight--;

        if (rc == VW_JOB_FAILED && strcmp(j->e.reason, "campaign_not_found"))
        {
            /* the batch was refused as a whole; its lines named */
            row = vw_import_error(im, j->e.message, ch);
            snprintf(j->e.reason, sizeof(j->e.reason), "import_conflict");
            snprintf(j->e.message, sizeof(j->e.message),
                     "the batch of lines %zu..%zu was refused (nothing of "
                     "it written%s); %lld rows were written before it",
                     im->rows[ch->first].line,
                     im->rows[ch->first + ch->n - 1].line,
                     row ? "; errors names the line" : "",
                     (long long) j->done);
        }

        if (rc != VW_JOB_DONE) {
            vw_job_drain(j, inflight);

            if (rc == VW_JOB_FAILED) {
                j->result = json_pack("{s:I,s:I}", "rows",
                                      (json_int_t) im->nrows, "written",
                                      (json_int_t) j->done);
            }

            return rc;
        }

        freeReplyObject(r);
    }

    return VW_JOB_DONE;
}


static int
vw_import_run(vw_job_t *j, int members)
{
    int           rc, dry;
    char          err[300];
    const char   *match, *format;
    vw_import_t   im;

    memset(&im, 0, sizeof(vw_import_t));
    im.j = j;
    im.members = members;
    im.code_col = -1;
    im.camp_col = -1;
    im.campaign = json_string_value(json_object_get(j->params, "campaign"));
    dry = json_is_true(json_object_get(j->params, "dry_run"));
    match = json_string_value(json_object_get(j->params, "match"));
    format = json_string_value(json_object_get(j->params, "format"));
    rc = VW_JOB_FAILED;

    if (match) {
        im.re = vw_import_re(match, err, sizeof(err));

        if (im.re == NULL) {
            vw_op_fail(&j->e, 400, "invalid_field", "match", "match: %s",
                       err);
            goto done;
        }

        im.md = pcre2_match_data_create_from_pattern(im.re, NULL);
    }

    if (vw_import_open(&im) == 0) {
        if (!members) {
            vw_codes_rows(&im);

        } else if (format && strcmp(format, "jsonl") == 0) {
            vw_members_jsonl(&im);

        } else {
            vw_members_csv(&im);
        }
    }

    if (j->errors == NULL && j->e.reason[0] == '\0' && im.nrows == 0) {
        vw_job_say(j, 0, "no %s", members ? "members" : "codes");
    }

    if (j->errors == NULL) {
        vw_import_twice(&im);
    }

    if (j->errors || j->e.reason[0]) {
        goto rejected;
    }

    vw_import_chunks(&im);
    j->total = (int64_t) im.nrows;

    if (j->id[0] == '\0' || strcmp(j->phase, "write") != 0) {
        snprintf(j->phase, sizeof(j->phase), "check");
        j->done = 0;
        rc = vw_import_check(&im);

        if (rc != VW_JOB_DONE) {
            goto done;
        }

        if (j->errors) {
            goto rejected;
        }

        if (dry || j->id[0] == '\0') {
            j->result = json_pack("{s:I,s:I,s:b}", "rows",
                                  (json_int_t) im.nrows, "written", 0,
                                  "dry_run", dry);
            rc = VW_JOB_DONE;
            goto done;
        }

        /* the write phase: its own count */
        snprintf(j->phase, sizeof(j->phase), "write");
        j->done = 0;
        rc = vw_job_beat(j);

        if (rc != VW_JOB_DONE) {
            goto done;
        }
    }

    rc = vw_import_write(&im);

    if (rc == VW_JOB_DONE) {
        j->result = json_pack("{s:I,s:I}", "rows", (json_int_t) im.nrows,
                              "written", (json_int_t) j->done);
    }

    goto done;

rejected:

    if (j->e.reason[0] == '\0') {
        vw_op_fail(&j->e, 422, "import_rejected", NULL, "rejected, nothing "
                   "imported (%s%zu error%s)",
                   vw_too_many(&im) ? "at least " : "",
                   json_array_size(j->errors),
                   json_array_size(j->errors) == 1 ? "" : "s");
    }

    rc = VW_JOB_FAILED;

done:

    vw_import_free(&im);

    return rc;
}


int
vw_job_import_run(vw_job_t *j)
{
    return vw_import_run(j, 0);
}


int
vw_job_members_run(vw_job_t *j)
{
    return vw_import_run(j, 1);
}
