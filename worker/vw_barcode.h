
/*
 * Copyright (C) ngx_voucher authors
 *
 * A code as a Code 128 barcode (subset B: printable ASCII), for the
 * scanners of points of sale, in SVG and PNG.  Like the QR symbols, the
 * picture depends on the text alone: nothing is looked up.
 */


#ifndef _VW_BARCODE_H_INCLUDED_
#define _VW_BARCODE_H_INCLUDED_


#include <stddef.h>


#define VW_BARCODE_MAX_TEXT  80         /* characters */
#define VW_BARCODE_QUIET     10         /* modules of quiet zone each side */


typedef struct {
    int   scale;                    /* pixels a module, 1..16; 0: 2 */
    int   height;                   /* pixels of the bars, 8..1024; 0: 80 */
} vw_barcode_opts_t;


/*
 * The symbol values: start B (104), one value per character (its ASCII
 * code minus 32), the check value, stop (106).  n of them into vals (room
 * for len + 3); 0, or -1 with err: empty, too long, or a character out of
 * 32..126.
 */
int vw_code128_values(const char *text, size_t len, int *vals, size_t *n,
    char *err, size_t errlen);

/* the bar and space widths of a value, "212222" (the stop: "2331112") */
const char *vw_code128_pattern(int value);

/*
 * The modules (1: bar) of the symbol without its quiet zone, malloc'd:
 * 11 per value and 13 for the stop.  0 or -1 as above.
 */
int vw_code128_modules(const char *text, size_t len, unsigned char **mods,
    int *width, char *err, size_t errlen);

int vw_barcode_svg(const char *text, size_t len, const vw_barcode_opts_t *o,
    char **out, size_t *outlen, char *err, size_t errlen);
int vw_barcode_png(const char *text, size_t len, const vw_barcode_opts_t *o,
    unsigned char **out, size_t *outlen, char *err, size_t errlen);


#endif /* _VW_BARCODE_H_INCLUDED_ */
