
/*
 * Copyright (C) ngx_voucher authors
 *
 * Modules to pictures: the SVG is one path of the dark runs of each row
 * (a viewBox in modules, stretched to the pixel size), the PNG is 1-bit
 * grey, written into memory by libpng.
 */


#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "vw_picture.h"


typedef struct {
    unsigned char  *data;
    size_t          len;
    size_t          cap;
    int             failed;
} vw_picture_buf_t;


static int
vw_picture_size(const vw_picture_t *p, int *pw, int *ph, char *err,
    size_t errlen)
{
    int64_t  w, h;

    w = (int64_t) (p->w + 2 * p->mx) * p->sx;
    h = (int64_t) (p->h + 2 * p->my) * p->sy;

    if (w > VW_PICTURE_MAX_PIXELS || h > VW_PICTURE_MAX_PIXELS) {
        snprintf(err, errlen, "the picture would be over %d pixels wide",
                 VW_PICTURE_MAX_PIXELS);
        return -1;
    }

    *pw = (int) w;
    *ph = (int) h;

    return 0;
}


static int
vw_picture_append(vw_picture_buf_t *b, const void *p, size_t n)
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
vw_picture_printf(vw_picture_buf_t *b, const char *fmt, ...)
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

    return vw_picture_append(b, tmp, (size_t) n);
}


int
vw_picture_svg(const vw_picture_t *p, char **out, size_t *outlen, char *err,
    size_t errlen)
{
    int                x, y, run, pw, ph, fw, fh;
    vw_picture_buf_t   b;

    if (vw_picture_size(p, &pw, &ph, err, errlen) != 0) {
        return -1;
    }

    fw = p->w + 2 * p->mx;
    fh = p->h + 2 * p->my;

    memset(&b, 0, sizeof(b));

    /* no text from the caller is in the document: nothing to escape */
    vw_picture_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
                      "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
                      "preserveAspectRatio=\"none\" "
                      "shape-rendering=\"crispEdges\">", fw, fh, pw, ph);
    vw_picture_printf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>",
                      fw, fh);
    vw_picture_printf(&b, "<path fill=\"#000\" d=\"");

    for (y = 0; y < p->h; y++) {
        for (x = 0; x < p->w; x += run ? run : 1) {
            run = 0;

            while (x + run < p->w && p->mods[y * p->w + x + run]) {
                run++;
            }

            if (run) {
                vw_picture_printf(&b, "M%d %dh%dv1h-%dz", x + p->mx,
                                  y + p->my, run, run);
            }
        }
    }

    vw_picture_printf(&b, "\"/></svg>\n");

    if (b.failed) {
        free(b.data);
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    *out = (char *) b.data;
    *outlen = b.len;

    return 0;
}


static void
vw_picture_png_write(png_structp png, png_bytep data, png_size_t n)
{
    if (vw_picture_append(png_get_io_ptr(png), data, n) != 0) {
        png_error(png, "out of memory");
    }
}


static void
vw_picture_png_flush(png_structp png)
{
    (void) png;
}


static void
vw_picture_png_error(png_structp png, png_const_charp msg)
{
    (void) msg;
    png_longjmp(png, 1);
}


static void
vw_picture_png_warning(png_structp png, png_const_charp msg)
{
    (void) png;
    (void) msg;
}


int
vw_picture_png(const vw_picture_t *p, unsigned char **out, size_t *outlen,
    char *err, size_t errlen)
{
    int                 x, y, pw, ph, rowbytes, mx, my;
    png_infop           info;
    png_structp         png;
    unsigned char      *row;
    vw_picture_buf_t   *b;

    if (vw_picture_size(p, &pw, &ph, err, errlen) != 0) {
        return -1;
    }

    rowbytes = (pw + 7) / 8;

    /* heap, not the stack: what setjmp must find again is not a local
     * changed after it */
    b = calloc(1, sizeof(vw_picture_buf_t));
    row = malloc(rowbytes);
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
                                  vw_picture_png_error,
                                  vw_picture_png_warning);
    info = png ? png_create_info_struct(png) : NULL;

    if (b == NULL || row == NULL || info == NULL) {
        goto nomem;
    }

    if (setjmp(png_jmpbuf(png))) {
        goto nomem;
    }

    png_set_write_fn(png, b, vw_picture_png_write, vw_picture_png_flush);
    png_set_IHDR(png, info, pw, ph, 1, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);

    for (y = 0; y < ph; y++) {
        my = y / p->sy - p->my;
        memset(row, 0xff, rowbytes);

        for (x = 0; x < pw; x++) {
            mx = x / p->sx - p->mx;

            if (mx >= 0 && mx < p->w && my >= 0 && my < p->h
                && p->mods[my * p->w + mx])
            {
                row[x / 8] &= (unsigned char) ~(0x80 >> (x % 8));
            }
        }

        png_write_row(png, row);
    }

    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);

    free(row);

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
    snprintf(err, errlen, "the PNG could not be written (out of memory)");

    return -1;
}
