
/*
 * Copyright (C) ngx_voucher authors
 *
 * What the code operations share with the member operations and the
 * jobs (export): the scan of both forms of code.
 */


#ifndef _VW_OP_CODES_H_INCLUDED_
#define _VW_OP_CODES_H_INCLUDED_


#include "vw_op.h"


typedef struct {
    const char  *campaign;          /* NULL: any */
    const char  *prefix;            /* normalized; NULL: any */
    const char  *customer;          /* NULL: any */
} vw_code_filter_t;


/* the code as stored: upper case, no spaces, tabs or dashes */
void vw_op_code_norm(const char *code, char *out, size_t size);

/* the code of a path, normalized into out; -1 (400) when none or too long */
int vw_op_code_id(const char *id, char *out, size_t size, vw_operr_t *e);

/* the code as voucher_code_get answers it, or NULL (404 not_found) */
json_t *vw_op_code_read(vw_op_t *op, const char *code, vw_operr_t *e);

/*
 * One SCAN step of the namespace's codes from cursor (updated; "0" when
 * done), count a hint: the codes passing f appended to items as JSON.
 */
int vw_op_codes_scan(vw_op_t *op, char *cursor, size_t size, int64_t count,
    const vw_code_filter_t *f, json_t *items, vw_operr_t *e);


#endif /* _VW_OP_CODES_H_INCLUDED_ */
