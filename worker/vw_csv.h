
/*
 * Copyright (C) ngx_voucher authors
 *
 * A CSV reader (RFC 4180): comma-separated, fields in double quotes may
 * hold commas, quotes ("") and newlines; LF or CRLF line ends.  Records
 * are numbered by the file line they start on, for error messages.
 */


#ifndef _VW_CSV_H_INCLUDED_
#define _VW_CSV_H_INCLUDED_


#include <stddef.h>
#include <stdio.h>

#include "vw_util.h"


typedef struct {
    FILE          *f;
    size_t         line;            /* where the current record starts */
    size_t         next_line;
    vw_buf_t       buf;             /* the fields, NUL-separated */
    size_t        *off;
    size_t         nfields;
    size_t         cap;
    char         **fields;          /* into buf, valid until next call */
} vw_csv_t;


void vw_csv_init(vw_csv_t *csv, FILE *f);

/*
 * Reads the next record: 1, 0 at the end, -1 with err naming the line
 * (an unterminated quote, a quote inside an unquoted field, a NUL byte).
 * A blank line is a record of one empty field.
 */
int vw_csv_next(vw_csv_t *csv, char *err, size_t errlen);

void vw_csv_free(vw_csv_t *csv);

/* writes one field, quoted when it holds a comma, quote or line end */
void vw_csv_write(FILE *out, const char *s);

/* the same, appended to a buffer */
void vw_csv_add(vw_buf_t *out, const char *s);


#endif /* _VW_CSV_H_INCLUDED_ */
