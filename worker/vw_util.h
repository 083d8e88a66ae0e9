
/*
 * Copyright (C) ngx_voucher authors
 *
 * Small helpers of the worker: growable buffers, strict integer parsing,
 * secret files.  Allocation failure ends the process (vw_xalloc): the
 * worker has no sensible way to go on without memory.
 */


#ifndef _VW_UTIL_H_INCLUDED_
#define _VW_UTIL_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef struct {
    char    *data;
    size_t   len;
    size_t   size;
} vw_buf_t;


void *vw_xalloc(size_t size);
void *vw_xrealloc(void *p, size_t size);
char *vw_xstrdup(const char *s);
char *vw_xstrndup(const char *s, size_t n);

void vw_buf_add(vw_buf_t *b, const char *p, size_t n);
void vw_buf_adds(vw_buf_t *b, const char *s);
void vw_buf_addc(vw_buf_t *b, char c);
void vw_buf_printf(vw_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void vw_buf_reset(vw_buf_t *b);
void vw_buf_free(vw_buf_t *b);

/* decimal digits with an optional '-', nothing else, within min..max */
int vw_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/*
 * Reads a one-line secret (password, token): a trailing newline (or
 * CRLF) is dropped, an empty file or a second line is an error.  The
 * message names the file, never the content.
 */
char *vw_read_secret(const char *path, char *err, size_t errlen);

/* overwrites and frees a secret */
void vw_free_secret(char *s);

/* the whole file, NUL-terminated; NULL with errno set */
char *vw_read_file(const char *path, size_t *len);


#endif /* _VW_UTIL_H_INCLUDED_ */
