
/*
 * Copyright (C) ngx_voucher authors
 *
 * Code 128, subset B (ISO/IEC 15417): a start character, one symbol
 * character per text character (value: the ASCII code minus 32), a check
 * character (the start's value plus each value times its position, modulo
 * 103), and the stop.  Each symbol character is three bars and three
 * spaces, 11 modules in all, written below as their widths; the stop has a
 * fourth bar, 13 modules.  A quiet zone of 10 modules goes on each side.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_barcode.h"
#include "vw_picture.h"


#define VW_C128_START_B  104
#define VW_C128_STOP     106


/* bar, space, bar, space, bar, space widths of values 0..106 */
static const char *const  vw_c128[] = {
    "212222", "222122", "222221", "121223", "121322", "131222", "122213",
    "122312", "132212", "221213", "221312", "231212", "112232", "122132",
    "122231", "113222", "123122", "123221", "223211", "221132", "221231",
    "213212", "223112", "312131", "311222", "321122", "321221", "312212",
    "322112", "322211", "212123", "212321", "232121", "111323", "131123",
    "131321", "112313", "132113", "132311", "211313", "231113", "231311",
    "112133", "112331", "132131", "113123", "113321", "133121", "313121",
    "211331", "231131", "213113", "213311", "213131", "311123", "311321",
    "331121", "312113", "312311", "332111", "314111", "221411", "431111",
    "111224", "111422", "121124", "121421", "141122", "141221", "112214",
    "112412", "122114", "122411", "142112", "142211", "241211", "221114",
    "413111", "241112", "134111", "111242", "121142", "121241", "114212",
    "124112", "124211", "411212", "421112", "421211", "212141", "214121",
    "412121", "111143", "111341", "131141", "114113", "114311", "411113",
    "411311", "113141", "114131", "311141", "411131", "211412", "211214",
    "211232", "2331112"
};


const char *
vw_code128_pattern(int value)
{
    return value >= 0 && value <= VW_C128_STOP ? vw_c128[value] : NULL;
}


int
vw_code128_values(const char *text, size_t len, int *vals, size_t *n,
    char *err, size_t errlen)
{
    int     sum;
    size_t  i;

    if (len == 0 || len > VW_BARCODE_MAX_TEXT) {
        snprintf(err, errlen, "the text must be 1 to %d characters",
                 VW_BARCODE_MAX_TEXT);
        return -1;
    }

    vals[0] = VW_C128_START_B;
    sum = VW_C128_START_B;

    for (i = 0; i < len; i++) {
        if ((unsigned char) text[i] < 32 || (unsigned char) text[i] > 126) {
            snprintf(err, errlen, "a barcode holds printable ASCII only "
                     "(character %zu is not)", i + 1);
            return -1;
        }

        vals[i + 1] = text[i] - 32;
        sum += (int) ((vals[i + 1] * (i + 1)) % 103);
    }

    vals[len + 1] = sum % 103;
    vals[len + 2] = VW_C128_STOP;
    *n = len + 3;

    return 0;
}


int
vw_code128_modules(const char *text, size_t len, unsigned char **mods,
    int *width, char *err, size_t errlen)
{
    int             vals[VW_BARCODE_MAX_TEXT + 3], w, k, dark;
    size_t          n, i;
    const char     *p;
    unsigned char  *m;

    if (vw_code128_values(text, len, vals, &n, err, errlen) != 0) {
        return -1;
    }

    w = (int) (n - 1) * 11 + 13;
    m = malloc(w);

    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    k = 0;

    for (i = 0; i < n; i++) {
        dark = 1;

        for (p = vw_c128[vals[i]]; *p; p++) {
            memset(m + k, dark, *p - '0');
            k += *p - '0';
            dark = !dark;
        }
    }

    *mods = m;
    *width = w;

    return 0;
}


static int
vw_barcode_picture(const char *text, size_t len, const vw_barcode_opts_t *o,
    int png, void **out, size_t *outlen, char *err, size_t errlen)
{
    int             rc, w, scale, height;
    vw_picture_t    p;
    unsigned char  *m;

    scale = o && o->scale ? o->scale : 2;
    height = o && o->height ? o->height : 80;

    if (scale < 1 || scale > 16) {
        snprintf(err, errlen, "scale must be 1 to 16");
        return -1;
    }

    if (height < 8 || height > 1024) {
        snprintf(err, errlen, "height must be 8 to 1024");
        return -1;
    }

    if (vw_code128_modules(text, len, &m, &w, err, errlen) != 0) {
        return -1;
    }

    /* one row of modules, stretched down to the bars' height */
    p.mods = m;
    p.w = w;
    p.h = 1;
    p.mx = VW_BARCODE_QUIET;
    p.my = 0;
    p.sx = scale;
    p.sy = height;

    rc = png ? vw_picture_png(&p, (unsigned char **) out, outlen, err, errlen)
             : vw_picture_svg(&p, (char **) out, outlen, err, errlen);
    free(m);

    return rc;
}


int
vw_barcode_svg(const char *text, size_t len, const vw_barcode_opts_t *o,
    char **out, size_t *outlen, char *err, size_t errlen)
{
    return vw_barcode_picture(text, len, o, 0, (void **) out, outlen, err,
                              errlen);
}


int
vw_barcode_png(const char *text, size_t len, const vw_barcode_opts_t *o,
    unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
    return vw_barcode_picture(text, len, o, 1, (void **) out, outlen, err,
                              errlen);
}
