
/*
 * Copyright (C) ngx_voucher authors
 *
 * GET /v1/qr and GET /v1/barcode: a text as a QR picture or a Code 128
 * barcode, SVG or PNG, with the functions voucherctl qr uses.  Nothing is
 * looked up: any well-formed text is drawn the same way, so the answer
 * never tells whether a code exists.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vw_barcode.h"
#include "vw_op.h"
#include "vw_qr.h"
#include "vw_util.h"


/* an optional integer argument of the query in min..max, else def */

static int
vw_picture_arg(json_t *query, const char *name, int64_t min, int64_t max,
    int def, int *out, vw_operr_t *e)
{
    int64_t      v;
    const char  *s;

    s = json_string_value(json_object_get(query, name));

    if (s == NULL) {
        *out = def;
        return 0;
    }

    if (vw_parse_int(s, min, max, &v) != 0) {
        return vw_op_fail(e, 400, "invalid_field", name,
                          "%s: expected %lld to %lld", name, (long long) min,
                          (long long) max);
    }

    *out = (int) v;

    return 0;
}


int
vw_op_picture(json_t *query, int barcode, unsigned char **data,
    size_t *len, const char **type, vw_operr_t *e)
{
    int                       png, rc, margin;
    char                      err[256];
    const char               *text, *fmt, *level;
    vw_qr_opts_t              qo;
    vw_barcode_opts_t         bo;
    static const char *const  qr_names[] = { "text", "format", "scale",
                                             "margin", "level", NULL };
    static const char *const  bar_names[] = { "text", "format", "scale",
                                              "height", NULL };

    if (vw_op_known(query, barcode ? bar_names : qr_names, e) != 0) {
        return -1;
    }

    text = json_string_value(json_object_get(query, "text"));

    if (text == NULL || text[0] == '\0') {
        return vw_op_fail(e, 400, "missing_field", "text",
                          "text: the code to draw");
    }

    fmt = json_string_value(json_object_get(query, "format"));

    if (fmt == NULL || strcmp(fmt, "svg") == 0) {
        png = 0;
        *type = "image/svg+xml";

    } else if (strcmp(fmt, "png") == 0) {
        png = 1;
        *type = "image/png";

    } else {
        return vw_op_fail(e, 400, "invalid_field", "format",
                          "format: svg or png");
    }

    if (barcode) {
        if (vw_picture_arg(query, "scale", 1, 16, 2, &bo.scale, e) != 0
            || vw_picture_arg(query, "height", 8, 1024, 80, &bo.height, e)
               != 0)
        {
            return -1;
        }

        rc = png ? vw_barcode_png(text, strlen(text), &bo, data, len, err,
                                  sizeof(err))
                 : vw_barcode_svg(text, strlen(text), &bo, (char **) data,
                                  len, err, sizeof(err));

    } else {
        vw_qr_opts_init(&qo);
        level = json_string_value(json_object_get(query, "level"));

        if (vw_picture_arg(query, "scale", 1, 64, 8, &qo.scale, e) != 0
            || vw_picture_arg(query, "margin", 0, 16, 4, &margin, e) != 0)
        {
            return -1;
        }

        qo.margin = margin;

        if (level != NULL) {
            if (strlen(level) != 1 || strchr("LMQH", level[0]) == NULL) {
                return vw_op_fail(e, 400, "invalid_field", "level",
                                  "level: L, M, Q or H");
            }

            qo.level = level[0];
        }

        rc = png ? vw_qr_png(text, strlen(text), &qo, data, len, err,
                             sizeof(err))
                 : vw_qr_svg(text, strlen(text), &qo, (char **) data, len,
                             err, sizeof(err));
    }

    if (rc != 0) {
        /* the options are in range: what is left is the text's length,
         * its characters, or a picture too large for the scale */
        return vw_op_fail(e, 400, "invalid_field",
                          strstr(err, "pixels") ? "scale" : "text", "%s",
                          err);
    }

    return 200;
}
