
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl qr: a code as a QR picture, or with --barcode a Code 128
 * barcode (SVG or PNG), on standard output or in a file.  No configuration and no Redis: the picture is made from
 * the text as given, dashes and all.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vw_ctl.h"
#include "vw_barcode.h"
#include "vw_qr.h"


static const char  vw_qr_usage[] =
    "usage: voucherctl qr CODE [--format svg|png] [--scale N] [--margin N]\n"
    "        [--level L|M|Q|H] [--output FILE]\n"
    "       voucherctl qr CODE --barcode [--format svg|png] [--scale N]\n"
    "        [--height N] [--output FILE]\n";


int
vw_cmd_qr(vw_ctl_t *ctl, int argc, char **argv)
{
    int             npos, rc, png, bar;
    char           *pos[1];
    FILE           *out;
    size_t          len;
    int64_t         scale, margin, height;
    const char     *fmt, *level, *output;
    vw_qr_opts_t    o;
    vw_barcode_opts_t  bo;
    unsigned char  *data;

    vw_opt_t  opts[] = {
        { "--format", 1, NULL, 0 },
        { "--scale", 1, NULL, 0 },
        { "--margin", 1, NULL, 0 },
        { "--level", 1, NULL, 0 },
        { "--output", 1, NULL, 0 },
        { "--barcode", 0, NULL, 0 },
        { "--height", 1, NULL, 0 },
        { NULL, 0, NULL, 0 }
    };

    npos = vw_opts(argc, argv, opts, pos, 1, vw_qr_usage);
    if (npos != 1) {
        if (npos >= 0) {
            fputs(vw_qr_usage, stderr);
        }

        return VW_EXIT_USAGE;
    }

    fmt = vw_opt(opts, "--format");
    level = vw_opt(opts, "--level");
    output = vw_opt(opts, "--output");

    if (fmt == NULL || strcmp(fmt, "svg") == 0) {
        png = 0;

    } else if (strcmp(fmt, "png") == 0) {
        png = 1;

    } else {
        vw_ctl_fail("qr: --format: expected svg or png");
        return VW_EXIT_USAGE;
    }

    bar = vw_opt(opts, "--barcode") != NULL;

    if (bar) {
        if (level != NULL || vw_opt(opts, "--margin") != NULL) {
            vw_ctl_fail("qr: --barcode has no --level or --margin (its "
                        "quiet zone is 10 modules)");
            return VW_EXIT_USAGE;
        }

        if (vw_opt_int(opts, "--scale", 1, 16, 2, &scale) != 0
            || vw_opt_int(opts, "--height", 8, 1024, 80, &height) != 0)
        {
            return VW_EXIT_USAGE;
        }

        bo.scale = (int) scale;
        bo.height = (int) height;

    } else if (vw_opt(opts, "--height") != NULL) {
        vw_ctl_fail("qr: --height is for a --barcode");
        return VW_EXIT_USAGE;
    }

    vw_qr_opts_init(&o);

    if (!bar) {
        if (vw_opt_int(opts, "--scale", 1, 64, 8, &scale) != 0
            || vw_opt_int(opts, "--margin", 0, 16, 4, &margin) != 0)
        {
            return VW_EXIT_USAGE;
        }

        o.scale = (int) scale;
        o.margin = (int) margin;
    }

    if (level != NULL) {
        if (strlen(level) != 1 || strchr("LMQH", level[0]) == NULL) {
            vw_ctl_fail("qr: --level: expected L, M, Q or H");
            return VW_EXIT_USAGE;
        }

        o.level = level[0];
    }

    if (output == NULL && png && isatty(STDOUT_FILENO)) {
        vw_ctl_fail("qr: a PNG is not shown on a terminal: use --output "
                    "FILE or a redirection");
        return VW_EXIT_USAGE;
    }

    if (bar) {
        rc = png ? vw_barcode_png(pos[0], strlen(pos[0]), &bo, &data, &len,
                                  ctl->err, sizeof(ctl->err))
                 : vw_barcode_svg(pos[0], strlen(pos[0]), &bo,
                                  (char **) &data, &len, ctl->err,
                                  sizeof(ctl->err));
    } else {
        rc = png ? vw_qr_png(pos[0], strlen(pos[0]), &o, &data, &len,
                             ctl->err, sizeof(ctl->err))
                 : vw_qr_svg(pos[0], strlen(pos[0]), &o, (char **) &data,
                             &len, ctl->err, sizeof(ctl->err));
    }
    if (rc != 0) {
        vw_ctl_fail("qr: %s", ctl->err);
        return VW_EXIT_FAIL;
    }

    out = output ? fopen(output, "wb") : stdout;
    if (out == NULL) {
        vw_ctl_fail("qr: %s: cannot be written", output);
        free(data);
        return VW_EXIT_FAIL;
    }

    rc = fwrite(data, 1, len, out) == len ? 0 : -1;

    if (output ? fclose(out) != 0 : fflush(out) != 0) {
        rc = -1;
    }

    free(data);

    if (rc != 0) {
        vw_ctl_fail("qr: the picture could not be written");
        return VW_EXIT_FAIL;
    }

    return VW_EXIT_OK;
}
