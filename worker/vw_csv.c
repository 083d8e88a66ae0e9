
/*
 * Copyright (C) ngx_voucher authors
 *
 * A CSV reader: see vw_csv.h.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_csv.h"


void
vw_csv_init(vw_csv_t *csv, FILE *f)
{
    memset(csv, 0, sizeof(vw_csv_t));
    csv->f = f;
    csv->next_line = 1;
}


void
vw_csv_free(vw_csv_t *csv)
{
    vw_buf_free(&csv->buf);
    free(csv->off);
    free(csv->fields);
    memset(csv, 0, sizeof(vw_csv_t));
}


static void
vw_csv_end_field(vw_csv_t *csv, size_t start)
{
    if (csv->nfields == csv->cap) {
        csv->cap = csv->cap ? csv->cap * 2 : 16;
        csv->off = vw_xrealloc(csv->off, csv->cap * sizeof(size_t));
    }

    csv->off[csv->nfields++] = start;
    vw_buf_addc(&csv->buf, '\0');
}


int
vw_csv_next(vw_csv_t *csv, char *err, size_t errlen)
{
    int     c, quoted, after_quote;
    size_t  i, start;

    vw_buf_reset(&csv->buf);
    csv->nfields = 0;
    csv->line = csv->next_line;

    c = getc(csv->f);
    if (c == EOF) {
        return 0;
    }

    start = 0;
    quoted = 0;
    after_quote = 0;

    for ( ;; ) {
        if (c == EOF) {
            if (quoted) {
                snprintf(err, errlen, "line %zu: unterminated quoted field",
                         csv->line);
                return -1;
            }

            vw_csv_end_field(csv, start);
            break;
        }

        if (c == '\0') {
            snprintf(err, errlen, "line %zu: NUL byte", csv->next_line);
            return -1;
        }

        if (quoted) {
            if (c == '"') {
                c = getc(csv->f);

                if (c == '"') {
                    vw_buf_addc(&csv->buf, '"');
                    c = getc(csv->f);
                    continue;
                }

                quoted = 0;
                after_quote = 1;
                continue;
            }

            if (c == '\n') {
                csv->next_line++;
            }

            vw_buf_addc(&csv->buf, (char) c);
            c = getc(csv->f);
            continue;
        }

        if (c == ',') {
            vw_csv_end_field(csv, start);
            start = csv->buf.len;
            after_quote = 0;
            c = getc(csv->f);
            continue;
        }

        if (c == '\r') {
            c = getc(csv->f);

            if (c != '\n') {
                snprintf(err, errlen, "line %zu: carriage return without "
                         "a line feed", csv->next_line);
                return -1;
            }
        }

        if (c == '\n') {
            csv->next_line++;
            vw_csv_end_field(csv, start);
            break;
        }

        if (after_quote) {
            snprintf(err, errlen, "line %zu: text after a closing quote",
                     csv->next_line);
            return -1;
        }

        if (c == '"') {
            if (csv->buf.len != start) {
                snprintf(err, errlen, "line %zu: a quote inside an "
                         "unquoted field", csv->next_line);
                return -1;
            }

            quoted = 1;
            c = getc(csv->f);
            continue;
        }

        vw_buf_addc(&csv->buf, (char) c);
        c = getc(csv->f);
    }

    csv->fields = vw_xrealloc(csv->fields,
                              csv->nfields * sizeof(char *));

    for (i = 0; i < csv->nfields; i++) {
        csv->fields[i] = csv->buf.data + csv->off[i];
    }

    return 1;
}


void
vw_csv_write(FILE *out, const char *s)
{
    if (s == NULL) {
        return;
    }

    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, out);
        return;
    }

    fputc('"', out);

    for ( /* void */ ; *s; s++) {
        if (*s == '"') {
            fputc('"', out);
        }

        fputc(*s, out);
    }

    fputc('"', out);
}


void
vw_csv_add(vw_buf_t *out, const char *s)
{
    if (s == NULL) {
        return;
    }

    if (strpbrk(s, ",\"\r\n") == NULL) {
        vw_buf_adds(out, s);
        return;
    }

    vw_buf_addc(out, '"');

    for ( /* void */ ; *s; s++) {
        if (*s == '"') {
            vw_buf_addc(out, '"');
        }

        vw_buf_addc(out, *s);
    }

    vw_buf_addc(out, '"');
}
