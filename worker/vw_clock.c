
/*
 * Copyright (C) ngx_voucher authors
 *
 * The worker's clock: see vw_clock.h.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "vw_clock.h"
#include "vw_log.h"
#include "vw_util.h"


int
vw_clock_fake(void)
{
    const char  *v;

    v = getenv("VOUCHERD_FAKE_NOW");

    return v != NULL && v[0] != '\0';
}


static int64_t
vw_real_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int64_t
vw_now_ms(void)
{
    FILE            *f;
    char             buf[64];
    int64_t          t, real;
    size_t           n;
    struct stat      st;
    const char      *v;
    static int64_t   start;

    real = vw_real_ms();

    if (start == 0) {
        start = real;
    }

    v = getenv("VOUCHERD_FAKE_NOW");

    if (v == NULL || v[0] == '\0') {
        return real;
    }

    if (v[0] != '@') {
        if (vw_parse_int(v, 0, INT64_MAX / 4000, &t) == 0) {
            return t * 1000 + (real - start);
        }

        vw_log_error("VOUCHERD_FAKE_NOW: expected unix seconds or @FILE; "
                     "using the real time");
        return real;
    }

    f = fopen(v + 1, "r");

    if (f != NULL && fstat(fileno(f), &st) == 0) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';

        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) {
            buf[--n] = '\0';
        }

        fclose(f);

        if (vw_parse_int(buf, 0, INT64_MAX / 4000, &t) == 0) {
            return t * 1000 + real - ((int64_t) st.st_mtim.tv_sec * 1000
                                      + st.st_mtim.tv_nsec / 1000000);
        }

    } else if (f != NULL) {
        fclose(f);
    }

    vw_log_error("VOUCHERD_FAKE_NOW: cannot read unix seconds from %s; "
                 "using the real time", v + 1);

    return real;
}


int64_t
vw_now(void)
{
    int64_t  ms;

    ms = vw_now_ms();

    return ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
}


int
vw_tz_parse(const char *s, int *min)
{
    int       sign, h, m;
    int64_t   n;

    if (s == NULL || s[0] == '\0') {
        return -1;
    }

    if ((s[0] == '+' || s[0] == '-') && strlen(s) == 6 && s[3] == ':'
        && sscanf(s + 1, "%2d:%2d", &h, &m) == 2 && m < 60)
    {
        sign = s[0] == '-' ? -1 : 1;
        n = sign * (h * 60 + m);

    } else if (vw_parse_int(s[0] == '+' ? s + 1 : s, -840, 840, &n) != 0) {
        return -1;
    }

    if (n < -840 || n > 840) {
        return -1;
    }

    *min = (int) n;

    return 0;
}
