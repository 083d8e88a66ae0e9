
/*
 * Copyright (C) ngx_voucher authors
 *
 * Campaign schedules: see vw_schedule.h.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_schedule.h"


#define VW_DAY  INT64_C(86400)


/* H. Hinnant's algorithms, valid for the whole proleptic calendar */

int64_t
vw_days_from_civil(int64_t y, int m, int d)
{
    int64_t   era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


void
vw_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t  era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}


static int64_t
vw_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}


int
vw_local_month(int64_t t, int tz_min)
{
    int      m, d;
    int64_t  y;

    vw_civil_from_days(vw_floor_div(t + (int64_t) tz_min * 60, VW_DAY),
                       &y, &m, &d);

    return m;
}


void
vw_local_date(int64_t t, int tz_min, int64_t *y, int *m, int *d)
{
    vw_civil_from_days(vw_floor_div(t + (int64_t) tz_min * 60, VW_DAY),
                       y, m, d);
}


int
vw_schedule_birthdays(const vw_schedule_t *sc)
{
    return sc->kind == VW_SCHED_BIRTHDAYS || sc->kind == VW_SCHED_BIRTHDAY;
}


static int
vw_days_in_month(int64_t y, int m)
{
    return (int) (vw_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1,
                                     1)
                  - vw_days_from_civil(y, m, 1));
}


/* "HH:MM" -> minute of the day */

static int
vw_parse_hhmm(const char *s, int *minute)
{
    int  h, m, n;

    n = 0;

    if (sscanf(s, "%2d:%2d%n", &h, &m, &n) != 2 || s[n] != '\0'
        || strlen(s) < 4 || h < 0 || h > 23 || m < 0 || m > 59
        || s[strlen(s) - 3] != ':')
    {
        return -1;
    }

    *minute = h * 60 + m;

    return 0;
}


static int
vw_parse_days(const char *s, unsigned *days)
{
    int          i;
    size_t       len;
    const char  *e;

    static const char  *names[] = {
        NULL, "mon", "tue", "wed", "thu", "fri", "sat", "sun"
    };

    *days = 0;

    while (*s) {
        e = strchr(s, ',');
        len = e ? (size_t) (e - s) : strlen(s);

        for (i = 1; i <= 7; i++) {
            if ((len == 3 && strncmp(s, names[i], 3) == 0)
                || (len == 1 && s[0] == '0' + i))
            {
                break;
            }
        }

        if (i > 7) {
            return -1;
        }

        *days |= 1u << i;

        if (e == NULL) {
            break;
        }

        s = e + 1;

        if (*s == '\0') {
            return -1;
        }
    }

    return *days ? 0 : -1;
}


int
vw_schedule_parse(const char *s, vw_schedule_t *sc, char *err,
    size_t errlen)
{
    int      n, y, mo, d, k;
    char     w[4][32];
    int64_t  days;

    memset(sc, 0, sizeof(vw_schedule_t));

    n = sscanf(s, "%31s %31s %31s %31s", w[0], w[1], w[2], w[3]);

    if (n <= 0) {
        snprintf(err, errlen, "schedule: empty");
        return -1;
    }

    if (strcmp(w[0], "daily") == 0 && n == 2) {
        sc->kind = VW_SCHED_DAILY;

        if (vw_parse_hhmm(w[1], &sc->minute) == 0) {
            return 0;
        }

    } else if (strcmp(w[0], "birthdays") == 0 && n == 2) {
        sc->kind = VW_SCHED_BIRTHDAYS;
        sc->mday = 1;

        if (vw_parse_hhmm(w[1], &sc->minute) == 0) {
            return 0;
        }

    } else if (strcmp(w[0], "birthdays") == 0 && n == 3
               && strcmp(w[1], "day") == 0)
    {
        sc->kind = VW_SCHED_BIRTHDAY;

        if (vw_parse_hhmm(w[2], &sc->minute) == 0) {
            return 0;
        }

    } else if (strcmp(w[0], "weekly") == 0 && n == 3) {
        sc->kind = VW_SCHED_WEEKLY;

        if (vw_parse_days(w[1], &sc->days) != 0) {
            snprintf(err, errlen, "schedule \"%s\": days: expected mon..sun "
                     "or 1..7, comma-separated", s);
            return -1;
        }

        if (vw_parse_hhmm(w[2], &sc->minute) == 0) {
            return 0;
        }

    } else if (strcmp(w[0], "monthly") == 0 && n == 3) {
        sc->kind = VW_SCHED_MONTHLY;
        k = 0;

        if (sscanf(w[1], "%2d%n", &sc->mday, &k) != 1 || w[1][k] != '\0'
            || sc->mday < 1 || sc->mday > 31)
        {
            snprintf(err, errlen, "schedule \"%s\": expected a day of the "
                     "month 1..31", s);
            return -1;
        }

        if (vw_parse_hhmm(w[2], &sc->minute) == 0) {
            return 0;
        }

    } else if (strcmp(w[0], "once") == 0 && (n == 2 || n == 3)) {
        sc->kind = VW_SCHED_ONCE;

        /* "2025-03-15 09:00" or "2025-03-15T09:00" */
        if (n == 2) {
            char  *t = strchr(w[1], 'T');

            if (t == NULL) {
                goto bad_once;
            }

            *t = '\0';
            snprintf(w[2], sizeof(w[2]), "%s", t + 1);
        }

        k = 0;

        if (sscanf(w[1], "%4d-%2d-%2d%n", &y, &mo, &d, &k) != 3
            || w[1][k] != '\0' || strlen(w[1]) != 10 || mo < 1 || mo > 12
            || d < 1 || d > vw_days_in_month(y, mo) || y < 1970)
        {
            goto bad_once;
        }

        if (vw_parse_hhmm(w[2], &sc->minute) != 0) {
            goto bad_once;
        }

        days = vw_days_from_civil(y, mo, d);
        sc->once = days * VW_DAY + sc->minute * 60;

        return 0;

    bad_once:

        snprintf(err, errlen, "schedule \"%s\": expected once YYYY-MM-DD "
                 "HH:MM", s);
        return -1;

    } else {
        snprintf(err, errlen, "schedule \"%s\": expected once YYYY-MM-DD "
                 "HH:MM, daily HH:MM, weekly DAYS HH:MM, monthly DAY HH:MM, "
                 "birthdays HH:MM or birthdays day HH:MM", s);
        return -1;
    }

    snprintf(err, errlen, "schedule \"%s\": expected a time HH:MM "
             "(00:00-23:59)", s);

    return -1;
}


/* the run on local day z (days since epoch), as unix time, or -1 */

static int64_t
vw_run_on(const vw_schedule_t *sc, int64_t z, int tz_min)
{
    int      m, d, dow, want;
    int64_t  y;

    switch (sc->kind) {

    case VW_SCHED_DAILY:
    case VW_SCHED_BIRTHDAY:
        break;

    case VW_SCHED_WEEKLY:
        /* 1970-01-01 was a Thursday: ISO day 4 */
        dow = (int) (((z % 7) + 7 + 3) % 7) + 1;

        if (!(sc->days & (1u << dow))) {
            return -1;
        }

        break;

    case VW_SCHED_MONTHLY:
    case VW_SCHED_BIRTHDAYS:
        vw_civil_from_days(z, &y, &m, &d);
        want = sc->mday;

        if (want > vw_days_in_month(y, m)) {
            want = vw_days_in_month(y, m);
        }

        if (d != want) {
            return -1;
        }

        break;

    default:
        return -1;
    }

    return z * VW_DAY + sc->minute * 60 - (int64_t) tz_min * 60;
}


int64_t
vw_schedule_prev(const vw_schedule_t *sc, int64_t now, int tz_min)
{
    int      i;
    int64_t  z, t, once;

    if (sc->kind == VW_SCHED_ONCE) {
        once = sc->once - (int64_t) tz_min * 60;
        return once <= now ? once : -1;
    }

    z = vw_floor_div(now + (int64_t) tz_min * 60, VW_DAY);

    /* a monthly run is at most 31 days back */
    for (i = 0; i <= 32; i++) {
        t = vw_run_on(sc, z - i, tz_min);

        if (t != -1 && t <= now) {
            return t;
        }
    }

    return -1;
}


int64_t
vw_schedule_next(const vw_schedule_t *sc, int64_t t, int tz_min)
{
    int      i;
    int64_t  z, r, once;

    if (sc->kind == VW_SCHED_ONCE) {
        once = sc->once - (int64_t) tz_min * 60;
        return once > t ? once : -1;
    }

    z = vw_floor_div(t + (int64_t) tz_min * 60, VW_DAY);

    for (i = 0; i <= 32; i++) {
        r = vw_run_on(sc, z + i, tz_min);

        if (r != -1 && r > t) {
            return r;
        }
    }

    return -1;
}
