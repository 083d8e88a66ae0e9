
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl members import|get, segment show.
 *
 * An import is all or nothing: every line is parsed, then the library
 * checks every row (voucher_members_add "check"), and only when nothing is
 * wrong are they written.  A bad line is reported by its number and the
 * whole file is rejected.
 */


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vw_clock.h"
#include "vw_csv.h"
#include "vw_ctl.h"
#include "vw_members.h"
#include "vw_op_member.h"
#include "vw_segment.h"
#include "vw_util.h"


#define VW_MEMBERS_BATCH   1000
#define VW_MEMBERS_ERRORS  20

#define VW_MEMBER_COLUMNS  "id,name,phone,email,line,birthday,tier,tags," \
                           "signup,first_purchase,last_purchase,purchases," \
                           "spend,attrs"


static const char  vw_members_usage[] =
    "usage: voucherctl members import FILE [--format csv|jsonl] [--dry-run]\n"
    "       voucherctl members get ID\n"
    "       voucherctl segment show SEGMENT [--tz +07:00]\n"
    "           [--format ids|csv|json]\n";


static const char *const  vw_member_known[] = {
    "id", "name", "phone", "email", "line", "birthday", "tier", "tags",
    "signup", "first_purchase", "last_purchase", "purchases", "spend",
    "attrs", NULL
};


typedef struct {
    size_t       line;
    char       **v;                 /* ncols values, "" when not given */
} vw_mrow_t;


typedef struct {
    char        *cols[16];
    size_t       ncols;
    vw_mrow_t   *rows;
    size_t       nrows;
    size_t       cap;
    size_t       nerr;
} vw_mimport_t;


static int
vw_member_col(const char *name)
{
    int  i;

    for (i = 0; vw_member_known[i]; i++) {
        if (strcmp(name, vw_member_known[i]) == 0) {
            return i;
        }
    }

    return -1;
}


static vw_mrow_t *
vw_mrow_new(vw_mimport_t *im, size_t line)
{
    size_t      i;
    vw_mrow_t  *row;

    if (im->nrows == im->cap) {
        im->cap = im->cap ? im->cap * 2 : 1024;
        im->rows = vw_xrealloc(im->rows, im->cap * sizeof(vw_mrow_t));
    }

    row = &im->rows[im->nrows++];
    row->line = line;
    row->v = vw_xalloc(16 * sizeof(char *));

    for (i = 0; i < 16; i++) {
        row->v[i] = NULL;
    }

    return row;
}


static void
vw_mimport_free(vw_mimport_t *im)
{
    size_t  i, j;

    for (i = 0; i < im->nrows; i++) {
        for (j = 0; j < 16; j++) {
            free(im->rows[i].v[j]);
        }

        free(im->rows[i].v);
    }

    for (i = 0; i < im->ncols; i++) {
        free(im->cols[i]);
    }

    free(im->rows);
}


static int
vw_members_read_csv(FILE *f, const char *path, vw_mimport_t *im, char *err,
    size_t errlen)
{
    int         n, col;
    char       *p;
    size_t      i, j;
    vw_csv_t    csv;
    vw_mrow_t  *row;

    vw_csv_init(&csv, f);

    n = vw_csv_next(&csv, err, errlen);

    if (n <= 0) {
        vw_ctl_fail("members import: %s: %s", path,
                    n == 0 ? "empty file (a header line is required)" : err);
        im->nerr++;
        vw_csv_free(&csv);
        return -1;
    }

    for (i = 0; i < csv.nfields; i++) {
        col = vw_member_col(csv.fields[i]);

        if (col < 0) {
            vw_ctl_fail("members import: %s line 1: unknown column \"%s\" "
                        "(known: " VW_MEMBER_COLUMNS ")", path,
                        csv.fields[i]);
            im->nerr++;
            vw_csv_free(&csv);
            return -1;
        }

        for (j = 0; j < i; j++) {
            if (strcmp(im->cols[j], csv.fields[i]) == 0) {
                vw_ctl_fail("members import: %s line 1: column \"%s\" "
                            "twice", path, csv.fields[i]);
                im->nerr++;
                vw_csv_free(&csv);
                return -1;
            }
        }

        im->cols[im->ncols++] = vw_xstrdup(csv.fields[i]);
    }

    if (im->ncols == 0 || strcmp(im->cols[0], "id") != 0) {
        vw_ctl_fail("members import: %s line 1: the first column must be "
                    "\"id\"", path);
        im->nerr++;
        vw_csv_free(&csv);
        return -1;
    }

    for ( ;; ) {
        n = vw_csv_next(&csv, err, errlen);

        if (n == 0) {
            break;
        }

        if (n < 0) {
            vw_ctl_fail("members import: %s %s", path, err);
            im->nerr++;
            vw_csv_free(&csv);
            return -1;
        }

        if (csv.nfields == 1 && csv.fields[0][0] == '\0') {
            continue;
        }

        if (csv.nfields != im->ncols) {
            vw_ctl_fail("line %zu: %zu fields, the header has %zu",
                        csv.line, csv.nfields, im->ncols);

            if (++im->nerr == VW_MEMBERS_ERRORS) {
                break;
            }

            continue;
        }

        row = vw_mrow_new(im, csv.line);

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

    vw_csv_free(&csv);

    return 0;
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


static int
vw_members_read_jsonl(FILE *f, const char *path, vw_mimport_t *im)
{
    int           col;
    char         *line, *cell;
    size_t        cap, lineno, i;
    ssize_t       len;
    json_t       *o, *v;
    const char   *key;
    vw_mrow_t    *row;
    json_error_t  je;

    /* id is always the first column */
    im->cols[im->ncols++] = vw_xstrdup("id");

    line = NULL;
    cap = 0;
    lineno = 0;

    while ((len = getline(&line, &cap, f)) != -1) {
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
            vw_ctl_fail("line %zu: %s", lineno,
                        o ? "expected a JSON object" : je.text);
            json_decref(o);

            if (++im->nerr == VW_MEMBERS_ERRORS) {
                break;
            }

            continue;
        }

        row = vw_mrow_new(im, lineno);

        json_object_foreach(o, key, v) {
            col = vw_member_col(key);

            if (col < 0) {
                vw_ctl_fail("line %zu: unknown field \"%s\" (known: "
                            VW_MEMBER_COLUMNS ")", lineno, key);
                im->nerr++;
                break;
            }

            cell = vw_json_cell(key, v);

            if (cell == NULL) {
                vw_ctl_fail("line %zu: %s: expected a string or an integer%s",
                            lineno, key,
                            strcmp(key, "tags") == 0
                            ? " or an array of strings" : "");
                im->nerr++;
                break;
            }

            /* the columns are the union of the keys, in order of sight */
            for (i = 0; i < im->ncols; i++) {
                if (strcmp(im->cols[i], key) == 0) {
                    break;
                }
            }

            if (i == im->ncols) {
                im->cols[im->ncols++] = vw_xstrdup(key);
            }

            free(row->v[i]);
            row->v[i] = cell;
        }

        json_decref(o);

        if (im->nerr >= VW_MEMBERS_ERRORS) {
            break;
        }

        if (row->v[0] == NULL || row->v[0][0] == '\0') {
            vw_ctl_fail("line %zu: id: required", lineno);

            if (++im->nerr == VW_MEMBERS_ERRORS) {
                break;
            }
        }
    }

    free(line);

    if (ferror(f)) {
        vw_ctl_fail("members import: %s: %s", path, strerror(errno));
        im->nerr++;
        return -1;
    }

    /* cells of columns a line did not have */
    for (i = 0; i < im->nrows; i++) {
        for (col = 0; col < (int) im->ncols; col++) {
            if (im->rows[i].v[col] == NULL) {
                im->rows[i].v[col] = vw_xstrdup("");
            }
        }
    }

    return 0;
}


static void
vw_members_args(vw_ctl_t *ctl, vw_args_t *a, const char *mode,
    const vw_mimport_t *im, size_t first, size_t n)
{
    char    *set;
    size_t   i, j;
    vw_buf_t cols;

    memset(&cols, 0, sizeof(vw_buf_t));

    for (j = 0; j < im->ncols; j++) {
        if (j) {
            vw_buf_addc(&cols, ',');
        }

        vw_buf_adds(&cols, im->cols[j]);
    }

    set = vw_key(&ctl->cf, "members");

    vw_args_reset(a);
    vw_args_adds(a, "FCALL");
    vw_args_adds(a, "voucher_members_add");
    vw_args_adds(a, "1");
    vw_args_adds(a, set);
    vw_args_adds(a, mode);
    vw_args_adds(a, cols.data);

    for (i = first; i < first + n; i++) {
        for (j = 0; j < im->ncols; j++) {
            vw_args_adds(a, im->rows[i].v[j]);
        }
    }

    vw_buf_free(&cols);
    free(set);
}


static int
vw_by_line_id(const void *a, const void *b)
{
    const vw_mrow_t  *x = *(vw_mrow_t *const *) a;
    const vw_mrow_t  *y = *(vw_mrow_t *const *) b;
    int               c;

    c = strcmp(x->v[0], y->v[0]);

    return c ? c : (x->line < y->line ? -1 : x->line > y->line);
}


/* --format, or the file's extension: 1 for JSON lines, 0 for CSV, -1 */

static int
vw_members_jsonl(const char *path, const char *fmt)
{
    size_t  len;

    len = strlen(path);

    if (fmt == NULL) {
        return (len > 6 && strcmp(path + len - 6, ".jsonl") == 0)
               || (len > 5 && strcmp(path + len - 5, ".json") == 0);
    }

    if (strcmp(fmt, "csv") == 0 || strcmp(fmt, "jsonl") == 0) {
        return fmt[0] == 'j';
    }

    vw_ctl_fail("members import: --format: expected csv or jsonl");

    return -1;
}


/* the same id twice */

static void
vw_members_twice(vw_mimport_t *im)
{
    size_t      i;
    vw_mrow_t **byid;

    byid = vw_xalloc(im->nrows * sizeof(vw_mrow_t *));

    for (i = 0; i < im->nrows; i++) {
        byid[i] = &im->rows[i];
    }

    qsort(byid, im->nrows, sizeof(vw_mrow_t *), vw_by_line_id);

    for (i = 1; i < im->nrows && im->nerr < VW_MEMBERS_ERRORS; i++) {
        if (strcmp(byid[i - 1]->v[0], byid[i]->v[0]) == 0) {
            vw_ctl_fail("line %zu: id \"%s\" is also on line %zu",
                        byid[i]->line, byid[i]->v[0], byid[i - 1]->line);
            im->nerr++;
        }
    }

    free(byid);
}


/* the library checks every row; after a bad row, from the next one */

static int
vw_members_check(vw_ctl_t *ctl, vw_mimport_t *im, vw_args_t *a)
{
    long         row;
    char        *p;
    size_t       first, n;
    redisReply  *r;

    if (vw_ctl_redis(ctl) == NULL) {
        return VW_PHASE_FAILED;
    }

    for (first = 0; first < im->nrows && im->nerr < VW_MEMBERS_ERRORS;
         /* void */ )
    {
        n = im->nrows - first;

        if (n > VW_MEMBERS_BATCH) {
            n = VW_MEMBERS_BATCH;
        }

        vw_members_args(ctl, a, "check", im, first, n);
        r = vw_redis_run(ctl->redis, a, ctl->err, sizeof(ctl->err));

        if (r == NULL) {
            vw_ctl_fail("members import: %s", ctl->err);
            return VW_PHASE_FAILED;
        }

        if (r->type != REDIS_REPLY_ERROR) {
            freeReplyObject(r);
            first += n;
            continue;
        }

        im->nerr++;
        p = strstr(r->str, " (row ");
        row = p ? strtol(p + 6, NULL, 10) : 0;

        if (row < 1 || (size_t) row > n) {
            vw_ctl_fail("members import: %s", vw_strip_err(r->str));
            freeReplyObject(r);
            break;
        }

        vw_ctl_fail("line %zu: id \"%s\": %.*s",
                    im->rows[first + (size_t) row - 1].line,
                    im->rows[first + (size_t) row - 1].v[0],
                    (int) (p - vw_strip_err(r->str)), vw_strip_err(r->str));
        freeReplyObject(r);
        first += (size_t) row;
    }

    return im->nerr > 0 ? VW_PHASE_REJECTED : VW_PHASE_GO;
}


/* writes every row, VW_MEMBERS_BATCH a call, pipelined; -1 if Redis fails */

static int
vw_members_write(vw_ctl_t *ctl, vw_mimport_t *im, vw_args_t *a)
{
    size_t       first, n;
    redisReply  *r;

    for (first = 0; first < im->nrows; first += VW_MEMBERS_BATCH) {
        n = im->nrows - first;
        vw_members_args(ctl, a, "write", im, first,
                        n > VW_MEMBERS_BATCH ? VW_MEMBERS_BATCH : n);
        vw_redis_append(ctl->redis, a);
    }

    for (first = 0; first < im->nrows; first += VW_MEMBERS_BATCH) {
        r = vw_redis_get(ctl->redis, ctl->err, sizeof(ctl->err));

        if (vw_redis_failed(ctl->redis, r, ctl->err, sizeof(ctl->err))) {
            /* checked a moment ago: only a lost connection gets here */
            vw_ctl_fail("members import: %s: the import may be partial; "
                        "run it again (it updates members in place)",
                        ctl->err);

            if (r) {
                freeReplyObject(r);
            }

            return -1;
        }

        freeReplyObject(r);
    }

    return 0;
}


static int
vw_members_import(vw_ctl_t *ctl, int argc, char **argv)
{
    int            npos, jsonl, rc, phase;
    char          *pos[2];
    FILE          *f;
    vw_args_t      a;
    vw_mimport_t   im;

    vw_opt_t  opts[] = {
        { "--format", 1, NULL, 0 },
        { "--dry-run", 0, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 2, vw_members_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_members_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    jsonl = vw_members_jsonl(pos[0], vw_opt(opts, "--format"));

    if (jsonl < 0) {
        return VW_EXIT_USAGE;
    }

    f = fopen(pos[0], "r");
    if (f == NULL) {
        vw_ctl_fail("members import: %s: %s", pos[0], strerror(errno));
        return VW_EXIT_FAIL;
    }

    memset(&im, 0, sizeof(vw_mimport_t));
    memset(&a, 0, sizeof(vw_args_t));
    rc = VW_EXIT_FAIL;

    if (jsonl) {
        (void) vw_members_read_jsonl(f, pos[0], &im);

    } else {
        (void) vw_members_read_csv(f, pos[0], &im, ctl->err,
                                   sizeof(ctl->err));
    }

    fclose(f);

    if (im.nerr == 0 && im.nrows == 0) {
        vw_ctl_fail("members import: %s: no members", pos[0]);
        im.nerr++;
    }

    if (im.nerr == 0 && im.nrows > 1) {
        vw_members_twice(&im);
    }

    phase = VW_PHASE_REJECTED;

    if (im.nerr > 0
        || (phase = vw_members_check(ctl, &im, &a)) != VW_PHASE_GO)
    {
        goto done;
    }

    if (vw_opt(opts, "--dry-run")) {
        printf("%zu members OK, nothing written (--dry-run)\n", im.nrows);
        rc = VW_EXIT_OK;
        goto done;
    }

    if (vw_members_write(ctl, &im, &a) == 0) {
        printf("imported %zu members\n", im.nrows);
        rc = VW_EXIT_OK;
    }

done:

    if (phase == VW_PHASE_REJECTED) {
        vw_ctl_fail("members import: %s rejected, nothing imported (%s%zu "
                    "error%s)", pos[0],
                    im.nerr >= VW_MEMBERS_ERRORS ? "at least " : "",
                    im.nerr, im.nerr == 1 ? "" : "s");
    }

    vw_mimport_free(&im);
    vw_args_free(&a);

    return rc;
}


static int
vw_members_get(vw_ctl_t *ctl, int argc, char **argv)
{
    int      rc;
    char     what[256];
    json_t  *out;

    if (argc != 1) {
        fputs(vw_members_usage, stderr);
        return VW_EXIT_USAGE;
    }

    snprintf(what, sizeof(what), "members get %s", argv[0]);

    rc = vw_ctl_op_run(ctl, vw_op_member_get, what, argv[0], NULL, NULL,
                       &out);

    if (rc == VW_EXIT_OK) {
        vw_ctl_print(out, 0);
        json_decref(out);
    }

    return rc;
}


int
vw_cmd_members(vw_ctl_t *ctl, int argc, char **argv)
{
    int  rc;

    if (argc >= 1 && strcmp(argv[0], "import") == 0) {
        return vw_members_import(ctl, argc - 1, argv + 1);
    }

    if (argc >= 1 && strcmp(argv[0], "get") == 0) {
        return vw_members_get(ctl, argc - 1, argv + 1);
    }

    rc = vw_ctl_ops_cmd(ctl, "members", argc, argv);

    if (rc >= 0) {
        return rc;
    }

    fputs(vw_members_usage, stderr);
    vw_ctl_op_usage("members");

    return VW_EXIT_USAGE;
}


int
vw_cmd_segment(vw_ctl_t *ctl, int argc, char **argv)
{
    int            npos, tz, format;
    char          *pos[3], tags[1024];
    size_t         i, k, n, *idx;
    json_t        *arr;
    int64_t        now;
    vw_segment_t   seg;
    vw_member_t   *m, *x;
    const char    *fmt, *tzs;

    vw_opt_t  opts[] = {
        { "--tz", 1, NULL, 0 },
        { "--format", 1, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    if (argc >= 1 && strcmp(argv[0], "show") != 0) {
        npos = vw_ctl_ops_cmd(ctl, "segment", argc, argv);

        if (npos >= 0) {
            return npos;
        }
    }

    npos = vw_opts(argc, argv, opts, pos, 3, vw_members_usage);
    if (npos != 2 || strcmp(pos[0], "show") != 0) {
        if (npos >= 0) {
            fputs(vw_members_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    tz = 0;
    tzs = vw_opt(opts, "--tz");

    if (tzs && vw_tz_parse(tzs, &tz) != 0) {
        vw_ctl_fail("segment show: --tz: expected +HH:MM, -HH:MM or minutes "
                    "-840..840");
        return VW_EXIT_USAGE;
    }

    fmt = vw_opt(opts, "--format");
    format = fmt == NULL || strcmp(fmt, "ids") == 0 ? 0
             : strcmp(fmt, "csv") == 0 ? 1
             : strcmp(fmt, "json") == 0 ? 2 : -1;

    if (format < 0) {
        vw_ctl_fail("segment show: --format: expected ids, csv or json");
        return VW_EXIT_USAGE;
    }

    if (vw_segment_parse(pos[1], &seg, ctl->err, sizeof(ctl->err)) != 0) {
        vw_ctl_fail("%s", ctl->err);
        return VW_EXIT_FAIL;
    }

    if (vw_ctl_redis(ctl) == NULL
        || vw_members_load(ctl->redis, &ctl->cf, &m, &n, ctl->err,
                           sizeof(ctl->err)) != 0)
    {
        if (ctl->redis) {
            vw_ctl_fail("segment show: %s", ctl->err);
        }

        vw_segment_free(&seg);
        return VW_EXIT_FAIL;
    }

    now = vw_now();

    /* RFM is shown in csv and json: score even when no rule needs it */
    if (format != 0) {
        vw_rfm_score(m, n, now);
    }

    idx = vw_xalloc((n ? n : 1) * sizeof(size_t));
    k = vw_segment_eval(&seg, m, n, now, tz, idx);

    arr = format == 2 ? json_array() : NULL;

    if (format == 1) {
        printf("id,name,phone,email,line,tier,tags,birthday,purchases,spend,"
               "last_purchase,r,f,m,rfm_group\n");
    }

    for (i = 0; i < k; i++) {
        x = &m[idx[i]];

        if (format == 0) {
            printf("%s\n", x->id);

        } else if (format == 1) {
            vw_csv_write(stdout, x->id);
            fputc(',', stdout);
            vw_csv_write(stdout, x->name);
            fputc(',', stdout);
            vw_csv_write(stdout, x->phone);
            fputc(',', stdout);
            vw_csv_write(stdout, x->email);
            fputc(',', stdout);
            vw_csv_write(stdout, x->line);
            fputc(',', stdout);
            vw_csv_write(stdout, x->tier);
            fputc(',', stdout);

            tags[0] = '\0';

            if (x->tags && strlen(x->tags) > 2) {
                snprintf(tags, sizeof(tags), "%.*s",
                         (int) strlen(x->tags) - 2, x->tags + 1);
            }

            vw_csv_write(stdout, tags);
            fputc(',', stdout);
            vw_csv_write(stdout, x->birthday);
            printf(",%lld,%lld,", (long long) x->count, (long long) x->spend);

            if (x->last != VW_UNSET) {
                printf("%lld", (long long) x->last);
            }

            printf(",%d,%d,%d,%s\n", x->r, x->f, x->m,
                   vw_rfm_group_name(x->group));

        } else {
            json_array_append_new(arr, vw_op_member_json(x, 1));
        }
    }

    if (arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(arr);
    }

    fprintf(stderr, "voucherctl: segment \"%s\": %zu of %zu members\n",
            pos[1], k, n);

    free(idx);
    vw_members_free(m, n);
    vw_segment_free(&seg);

    return VW_EXIT_OK;
}
