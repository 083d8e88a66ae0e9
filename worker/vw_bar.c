
/*
 * Copyright (C) ngx_voucher authors
 *
 * The progress bar: see vw_bar.h.
 */


#include <stdio.h>
#include <string.h>

#include "vw_bar.h"


void
vw_bar_time(char *buf, size_t size, int64_t s)
{
    if (s < 0) {
        s = 0;
    }

    if (s >= 3600) {
        snprintf(buf, size, "%lld:%02lld:%02lld", (long long) (s / 3600),
                 (long long) (s / 60 % 60), (long long) (s % 60));

    } else {
        snprintf(buf, size, "%lld:%02lld", (long long) (s / 60),
                 (long long) (s % 60));
    }
}


size_t
vw_bar_render(char *buf, size_t size, const char *label, int64_t done,
    int64_t total, int64_t elapsed_ms, size_t width)
{
    int      n;
    char     tail[128], t[32];
    size_t   bar, fill, i, len, pre;
    int64_t  rate, pct;

    if (size == 0) {
        return 0;
    }

    if (width >= size) {
        width = size - 1;
    }

    rate = elapsed_ms > 0 ? done * 1000 / elapsed_ms : 0;
    pre = 0;
    buf[0] = '\0';

    if (label && *label) {
        n = snprintf(buf, size, "%s ", label);
        pre = n > 0 && (size_t) n < size ? (size_t) n : 0;
    }

    if (total < 0) {
        vw_bar_time(t, sizeof(t), elapsed_ms / 1000);
        snprintf(tail, sizeof(tail), "%lld done  %lld/s  %s",
                 (long long) done, (long long) rate, t);
        snprintf(buf + pre, size - pre, "%s", tail);
        goto cut;
    }

    if (done > total) {
        done = total;
    }

    pct = total > 0 ? done * 100 / total : 100;

    if (rate > 0 && done < total) {
        vw_bar_time(t, sizeof(t), (total - done) / rate);

    } else if (done >= total) {
        vw_bar_time(t, sizeof(t), elapsed_ms / 1000);

    } else {
        snprintf(t, sizeof(t), "-:--");
    }

    snprintf(tail, sizeof(tail), " %3lld%%  %lld/%lld  %lld/s  %s %s",
             (long long) pct, (long long) done, (long long) total,
             (long long) rate, done >= total ? "in" : "ETA", t);

    /* the bar takes what the label and the figures leave, 10 at least */
    len = pre + strlen(tail) + 2;
    bar = width > len + 10 ? width - len : 10;

    if (pre + bar + 2 + strlen(tail) >= size) {
        bar = 0;
    }

    fill = total > 0 ? (size_t) ((uint64_t) bar * (uint64_t) done
                                 / (uint64_t) total)
                     : bar;

    i = pre;

    if (bar > 0) {
        buf[i++] = '[';

        for (len = 0; len < bar; len++) {
            buf[i++] = len < fill ? '#' : '.';
        }

        buf[i++] = ']';
    }

    snprintf(buf + i, size - i, "%s", tail);

cut:

    len = strlen(buf);

    if (len > width) {
        buf[width] = '\0';
        len = width;
    }

    return len;
}
