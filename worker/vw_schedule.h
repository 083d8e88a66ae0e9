
/*
 * Copyright (C) ngx_voucher authors
 *
 * Campaign schedules, pure C.  Times of day are in the campaign's time
 * zone (minutes east of UTC, as its tz_offset):
 *
 *   once 2025-03-15 09:00     one run
 *   daily 09:00               every day
 *   weekly mon,fri 09:00      on these days (mon..sun, or 1..7)
 *   monthly 15 09:00          on that day; in a shorter month, its last
 *   birthdays 09:00           on the 1st, to the members born that month
 *   birthdays day 09:00       every day, to the members whose birthday it
 *                             is (and whose birthday this month passed
 *                             without a delivery: see vw_run.h)
 */


#ifndef _VW_SCHEDULE_H_INCLUDED_
#define _VW_SCHEDULE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define VW_SCHED_ONCE       1
#define VW_SCHED_DAILY      2
#define VW_SCHED_WEEKLY     3
#define VW_SCHED_MONTHLY    4
#define VW_SCHED_BIRTHDAYS  5
#define VW_SCHED_BIRTHDAY   6       /* birthdays day HH:MM */


typedef struct {
    int        kind;
    int        minute;              /* of the day, 0..1439 */
    unsigned   days;                /* weekly: 1 << ISO day (1 = Monday) */
    int        mday;                /* monthly: 1..31 */
    int64_t    once;                /* once: local seconds since epoch */
} vw_schedule_t;


int vw_schedule_parse(const char *s, vw_schedule_t *sc, char *err,
    size_t errlen);

/* the latest run at or before now (unix seconds), or -1 (none yet) */
int64_t vw_schedule_prev(const vw_schedule_t *sc, int64_t now, int tz_min);

/* the first run after t, or -1 (none) */
int64_t vw_schedule_next(const vw_schedule_t *sc, int64_t t, int tz_min);

/* civil dates: days since 1970-01-01 <-> year, month, day */
int64_t vw_days_from_civil(int64_t y, int m, int d);
void vw_civil_from_days(int64_t z, int64_t *y, int *m, int *d);

/* the month (1..12) at unix time t, tz_min minutes east of UTC */
int vw_local_month(int64_t t, int tz_min);

/* the local date at unix time t, tz_min minutes east of UTC */
void vw_local_date(int64_t t, int tz_min, int64_t *y, int *m, int *d);

/* 1 for a schedule of birthdays (on the 1st, or on the day) */
int vw_schedule_birthdays(const vw_schedule_t *sc);


#endif /* _VW_SCHEDULE_H_INCLUDED_ */
