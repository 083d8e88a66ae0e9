
/*
 * Copyright (C) ngx_voucher authors
 *
 * A code as a QR symbol, in SVG and PNG, pure C on libqrencode and
 * libpng.  The picture depends on the text alone: nothing is looked up,
 * so rendering a QR never tells whether a code exists.
 */


#ifndef _VW_QR_H_INCLUDED_
#define _VW_QR_H_INCLUDED_


#include <stddef.h>


#define VW_QR_MAX_TEXT    512       /* bytes of text */


typedef struct {
    int   scale;                    /* pixels a module, 1..64; 0: 8 */
    int   margin;                   /* quiet zone in modules, 0..16; -1: 4 */
    char  level;                    /* 'L', 'M', 'Q', 'H'; 0: 'M' */
} vw_qr_opts_t;


/* the defaults: scale 8, margin 4, level M */
void vw_qr_opts_init(vw_qr_opts_t *o);

/*
 * The text as an SVG document (NUL-terminated, malloc'd) or a PNG
 * (1-bit grey, malloc'd).  0, or -1 with err saying why: an empty or too
 * long text, an option out of range, a picture over VW_PICTURE_MAX_PIXELS.
 */
int vw_qr_svg(const char *text, size_t len, const vw_qr_opts_t *o,
    char **out, size_t *outlen, char *err, size_t errlen);
int vw_qr_png(const char *text, size_t len, const vw_qr_opts_t *o,
    unsigned char **out, size_t *outlen, char *err, size_t errlen);

/*
 * The symbol's modules: side (without margin) and a malloc'd row-major
 * array of 0/1, for tests and other renderers.  0 or -1 as above.
 */
int vw_qr_modules(const char *text, size_t len, char level,
    unsigned char **mods, int *side, char *err, size_t errlen);


#endif /* _VW_QR_H_INCLUDED_ */
