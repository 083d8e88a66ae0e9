
/*
 * Copyright (C) ngx_voucher authors
 *
 * QR symbols as SVG and PNG: libqrencode makes the modules, vw_picture.c
 * draws them.
 */


#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qrencode.h>

#include "vw_picture.h"
#include "vw_qr.h"


static void vw_qr_err(char *err, size_t errlen, const char *fmt, ...);
static int vw_qr_check(const vw_qr_opts_t *o, vw_qr_opts_t *use, char *err,
    size_t errlen);


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


/* the symbol with its quiet zone, square modules */

static int
vw_qr_picture(const char *text, size_t len, const vw_qr_opts_t *o, int png,
    void **out, size_t *outlen, char *err, size_t errlen)
{
    int             rc, side;
    vw_qr_opts_t    use;
    vw_picture_t    p;
    unsigned char  *m;

    if (vw_qr_check(o, &use, err, errlen) != 0
        || vw_qr_modules(text, len, use.level, &m, &side, err, errlen) != 0)
    {
        return -1;
    }

    p.mods = m;
    p.w = side;
    p.h = side;
    p.mx = use.margin;
    p.my = use.margin;
    p.sx = use.scale;
    p.sy = use.scale;

    rc = png ? vw_picture_png(&p, (unsigned char **) out, outlen, err, errlen)
             : vw_picture_svg(&p, (char **) out, outlen, err, errlen);
    free(m);

    return rc;
}


int
vw_qr_svg(const char *text, size_t len, const vw_qr_opts_t *o, char **out,
    size_t *outlen, char *err, size_t errlen)
{
    return vw_qr_picture(text, len, o, 0, (void **) out, outlen, err,
                         errlen);
}


int
vw_qr_png(const char *text, size_t len, const vw_qr_opts_t *o,
    unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
    return vw_qr_picture(text, len, o, 1, (void **) out, outlen, err,
                         errlen);
}
