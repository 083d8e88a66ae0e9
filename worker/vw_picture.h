
/*
 * Copyright (C) ngx_voucher authors
 *
 * A grid of dark and light modules as an SVG document or a 1-bit PNG, for
 * the QR symbols (vw_qr.c) and the Code 128 barcodes (vw_barcode.c).
 */


#ifndef _VW_PICTURE_H_INCLUDED_
#define _VW_PICTURE_H_INCLUDED_


#include <stddef.h>


#define VW_PICTURE_MAX_PIXELS  4096     /* of either side */


typedef struct {
    const unsigned char  *mods;     /* row-major, 1: dark */
    int                   w, h;     /* modules */
    int                   mx, my;   /* quiet zone, modules each side */
    int                   sx, sy;   /* pixels a module, across and down */
} vw_picture_t;


/*
 * The SVG (NUL-terminated) or the PNG, malloc'd; 0, or -1 with err: over
 * VW_PICTURE_MAX_PIXELS, out of memory.
 */
int vw_picture_svg(const vw_picture_t *p, char **out, size_t *outlen,
    char *err, size_t errlen);
int vw_picture_png(const vw_picture_t *p, unsigned char **out,
    size_t *outlen, char *err, size_t errlen);


#endif /* _VW_PICTURE_H_INCLUDED_ */
