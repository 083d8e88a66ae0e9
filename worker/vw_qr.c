
/*
 * Copyright (C) ngx_voucher authors
 *
 * QR symbols as SVG and PNG: libqrencode makes the modules, libpng writes
 * the PNG into memory, the SVG is one path of the dark runs of each row.
 */


#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <qrencode.h>

#include "vw_qr.h"


typedef struct {
    unsigned char  *data;
    size_t          len;
    size_t          cap;
    int             failed;
} vw_qr_buf_t;


static void vw_qr_err(char *err, size_t errlen, const char *fmt, ...);
static int vw_qr_check(const vw_qr_opts_t *o, vw_qr_opts_t *use, char *err,
    size_t errlen);
static int vw_qr_append(vw_qr_buf_t *b, const void *p, size_t n);
static int vw_qr_printf(vw_qr_buf_t *b, const char *fmt, ...);
static void vw_qr_png_write(png_structp png, png_bytep data, png_size_t n);
static void vw_qr_png_flush(png_structp png);
static void vw_qr_png_error(png_structp png, png_const_charp msg);
static void vw_qr_png_warning(png_structp png, png_const_charp msg);


void
vw_qr_opts_init(vw_qr_opts_t *o)
{
    o->scale = 8;
    o->margin = 4;
    o->level = 'M';
}


static void
vw_qr_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  args;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);
}


int
vw_qr_modules(const char *text, size_t len, char level, unsigned char **mods,
    int *side, char *err, size_t errlen)
{
    int             i, n;
    char           *z;
    QRcode         *qr;
    QRecLevel       lv;
    unsigned char  *m;

    switch (level) {
    case 'L': lv = QR_ECLEVEL_L; break;
    case 'M': case 0: lv = QR_ECLEVEL_M; break;
    case 'Q': lv = QR_ECLEVEL_Q; break;
    case 'H': lv = QR_ECLEVEL_H; break;
    default:
        vw_qr_err(err, errlen, "level must be L, M, Q or H");
        return -1;
    }

    if (len == 0 || len > VW_QR_MAX_TEXT) {
        vw_qr_err(err, errlen, "the text must be 1 to %d bytes",
                  VW_QR_MAX_TEXT);
        return -1;
    }

    if (memchr(text, '\0', len) != NULL) {
        vw_qr_err(err, errlen, "the text must not contain a NUL byte");
        return -1;
    }

    z = malloc(len + 1);
    if (z == NULL) {
        vw_qr_err(err, errlen, "out of memory");
        return -1;
    }

    memcpy(z, text, len);
    z[len] = '\0';

    /* 8-bit by default; libqrencode picks alphanumeric or numeric
     * segments where they are shorter, and keeps the letter case */
    errno = 0;
    qr = QRcode_encodeString(z, 0, lv, QR_MODE_8, 1);
    free(z);

    if (qr == NULL) {
        vw_qr_err(err, errlen, "%s", errno == ERANGE
                  ? "the text is too long for a QR code at this level"
                  : "the QR code could not be made");
        return -1;
    }

    n = qr->width;
    m = malloc((size_t) n * n);
    if (m == NULL) {
        QRcode_free(qr);
        vw_qr_err(err, errlen, "out of memory");
        return -1;
    }

    /* bit 0 of each byte is the module's colour: 1 is dark */
    for (i = 0; i < n * n; i++) {
        m[i] = qr->data[i] & 1;
    }

    QRcode_free(qr);

    *mods = m;
    *side = n;

    return 0;
}


static int
vw_qr_check(const vw_qr_opts_t *o, vw_qr_opts_t *use, char *err,
    size_t errlen)
{
    vw_qr_opts_init(use);

    if (o != NULL) {
        if (o->scale != 0) {
            use->scale = o->scale;
        }

        if (o->margin != -1) {
            use->margin = o->margin;
        }

        if (o->level != 0) {
            use->level = o->level;
        }
    }

    if (use->scale < 1 || use->scale > 64) {
        vw_qr_err(err, errlen, "scale must be 1 to 64");
        return -1;
    }

    if (use->margin < 0 || use->margin > 16) {
        vw_qr_err(err, errlen, "margin must be 0 to 16");
        return -1;
    }

    return 0;
}


static int
vw_qr_append(vw_qr_buf_t *b, const void *p, size_t n)
{
    size_t          cap;
    unsigned char  *d;

    if (b->failed) {
        return -1;
    }

    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap : 1024;

        while (b->len + n + 1 > cap) {
            cap *= 2;
        }

        d = realloc(b->data, cap);
        if (d == NULL) {
            b->failed = 1;
            return -1;
        }

        b->data = d;
        b->cap = cap;
    }

    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';

    return 0;
}


static int
vw_qr_printf(vw_qr_buf_t *b, const char *fmt, ...)
{
    int      n;
    char     tmp[256];
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, args);
    va_end(args);

    if (n < 0 || (size_t) n >= sizeof(tmp)) {
        b->failed = 1;
        return -1;
    }

    return vw_qr_append(b, tmp, (size_t) n);
}


int
vw_qr_svg(const char *text, size_t len, const vw_qr_opts_t *o, char **out,
    size_t *outlen, char *err, size_t errlen)
{
    int             x, y, run, side, full;
    vw_qr_buf_t     b;
    vw_qr_opts_t    use;
    unsigned char  *m;

    if (vw_qr_check(o, &use, err, errlen) != 0
        || vw_qr_modules(text, len, use.level, &m, &side, err, errlen) != 0)
    {
        return -1;
    }

    full = side + 2 * use.margin;

    if (full * use.scale > VW_QR_MAX_PIXELS) {
        free(m);
        vw_qr_err(err, errlen, "the picture would be over %d pixels wide",
                  VW_QR_MAX_PIXELS);
        return -1;
    }

    memset(&b, 0, sizeof(b));

    /* the text itself is not in the document: nothing to escape */
    vw_qr_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
                 "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
                 "shape-rendering=\"crispEdges\">",
                 full, full, full * use.scale, full * use.scale);
    vw_qr_printf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>",
                 full, full);
    vw_qr_printf(&b, "<path fill=\"#000\" d=\"");

    for (y = 0; y < side; y++) {
        for (x = 0; x < side; x += run ? run : 1) {
            run = 0;

            while (x + run < side && m[y * side + x + run]) {
                run++;
            }

            if (run) {
                vw_qr_printf(&b, "M%d %dh%dv1h-%dz", x + use.margin,
                             y + use.margin, run, run);
            }
        }
    }

    vw_qr_printf(&b, "\"/></svg>\n");
    free(m);

    if (b.failed) {
        free(b.data);
        vw_qr_err(err, errlen, "out of memory");
        return -1;
    }

    *out = (char *) b.data;
    *outlen = b.len;

    return 0;
}


static void
vw_qr_png_write(png_structp png, png_bytep data, png_size_t n)
{
    vw_qr_buf_t  *b;

    b = png_get_io_ptr(png);

    if (vw_qr_append(b, data, n) != 0) {
        png_error(png, "out of memory");
    }
}


static void
vw_qr_png_flush(png_structp png)
{
    (void) png;
}


static void
vw_qr_png_error(png_structp png, png_const_charp msg)
{
    (void) msg;
    png_longjmp(png, 1);
}


static void
vw_qr_png_warning(png_structp png, png_const_charp msg)
{
    (void) png;
    (void) msg;
}


int
vw_qr_png(const char *text, size_t len, const vw_qr_opts_t *o,
    unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
    int             x, y, side, full, px, rowbytes, mx, my;
    png_infop       info;
    png_structp     png;
    vw_qr_buf_t    *b;
    vw_qr_opts_t    use;
    unsigned char  *m, *row;

    if (vw_qr_check(o, &use, err, errlen) != 0
        || vw_qr_modules(text, len, use.level, &m, &side, err, errlen) != 0)
    {
        return -1;
    }

    full = side + 2 * use.margin;
    px = full * use.scale;

    if (px > VW_QR_MAX_PIXELS) {
        free(m);
        vw_qr_err(err, errlen, "the picture would be over %d pixels wide",
                  VW_QR_MAX_PIXELS);
        return -1;
    }

    rowbytes = (px + 7) / 8;

    /* heap, not the stack: what setjmp must find again is not a local
     * changed after it */
    b = calloc(1, sizeof(vw_qr_buf_t));
    row = malloc(rowbytes);
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
                                  vw_qr_png_error, vw_qr_png_warning);
    info = png ? png_create_info_struct(png) : NULL;

    if (b == NULL || row == NULL || info == NULL) {
        goto nomem;
    }

    if (setjmp(png_jmpbuf(png))) {
        goto nomem;
    }

    png_set_write_fn(png, b, vw_qr_png_write, vw_qr_png_flush);
    png_set_IHDR(png, info, px, px, 1, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);

    for (y = 0; y < px; y++) {
        my = y / use.scale - use.margin;
        memset(row, 0xff, rowbytes);

        for (x = 0; x < px; x++) {
            mx = x / use.scale - use.margin;

            if (mx >= 0 && mx < side && my >= 0 && my < side
                && m[my * side + mx])
            {
                row[x / 8] &= (unsigned char) ~(0x80 >> (x % 8));
            }
        }

        png_write_row(png, row);
    }

    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);

    free(row);
    free(m);

    *out = b->data;
    *outlen = b->len;
    free(b);

    return 0;

nomem:

    if (png) {
        png_destroy_write_struct(&png, info ? &info : NULL);
    }

    if (b) {
        free(b->data);
        free(b);
    }

    free(row);
    free(m);
    vw_qr_err(err, errlen, "the PNG could not be written (out of memory)");

    return -1;
}
