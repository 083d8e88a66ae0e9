
/*
 * Copyright (C) ngx_voucher authors
 *
 * A run of an automation: who it goes to and queueing them, shared by
 * voucherd (scheduled runs, catch-up runs, triggers, entering a segment)
 * and the admin operations (run now, preview).  Codes are not made here:
 * a unique code is made when its delivery is sent (voucher_delivery_code).
 *
 * Who a run at time t goes to: the members of the segment at t (in the
 * campaign's zone); for "birthdays HH:MM" those born in t's month; for
 * "birthdays day HH:MM" those whose birthday this month is on or before
 * t's day (29 February counts as the 28th in other years), so a run
 * makes up for any birthday of the month that got nothing yet; less the
 * members without the address the channel needs (unreachable); less
 * those the per-member limit holds back (voucher_run_add decides, in the
 * same call that queues).
 *
 * A catch-up run (birthday schedules, catch_up) is made when the
 * automation is made or turned active, and when a run was skipped while
 * the campaign was paused: a run at that moment with the rule above, so
 * members whose birthday this month already passed, and who got nothing
 * from the campaign this year, get it then.
 */


#ifndef _VW_RUN_H_INCLUDED_
#define _VW_RUN_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "vw_auto.h"
#include "vw_config.h"
#include "vw_redis.h"
#include "vw_segment.h"


typedef struct {
    size_t           segment;       /* the run's members, before the rest */
    size_t           unreachable;   /* without the channel's address */
    int64_t          queued;
    int64_t          already;       /* in this run already */
    int64_t          held;          /* held back by per_member */
    int64_t          entered;       /* enters: who entered the segment */
} vw_run_counts_t;


/* the campaign as a run needs it */
typedef struct {
    int              active;
    int              tz;
    int64_t          starts_at;     /* -1: none */
    int64_t          ends_at;
} vw_run_campaign_t;


/* 0, or -1 with err; a campaign that does not exist is not active */
int vw_run_campaign(redisContext *c, const vw_config_t *cf,
    const char *campaign, vw_run_campaign_t *ci, char *err, size_t errlen);

/* the member has the address the automation's channel needs */
int vw_run_reachable(const vw_config_t *cf, const vw_auto_t *a,
    const vw_member_t *m);

/*
 * The members a run at t goes to (before per_member): their indexes in
 * idx (room for n), how many returned.  cnt gets segment and
 * unreachable.
 */
size_t vw_run_select(const vw_config_t *cf, const vw_auto_t *a,
    vw_member_t *m, size_t n, int64_t t, int tz, size_t *idx,
    vw_run_counts_t *cnt);

/*
 * Queues members of run (voucher_run_add, in batches): due_ms is when to
 * send, codes_from when a code's valid_days start, now the clock for the
 * per-member limit (policy from vw_auto_policy at t); a non-empty
 * cancel_on of the automation cancels on a purchase at or after
 * cancel_after.  0 (cnt filled), -1 Redis failed, -2 refused by the
 * library (err says why).
 */
void vw_run_args(const vw_config_t *cf, const vw_auto_t *a, vw_args_t *args,
    const char *run, int64_t due_ms, int64_t codes_from, int64_t now,
    int64_t t, int tz, int64_t cancel_after);

int vw_run_queue(redisContext *c, const vw_config_t *cf, const vw_auto_t *a,
    const char *run, int64_t due_ms, int64_t codes_from, int64_t now,
    int64_t t, int tz, char **ids, size_t n, int64_t cancel_after,
    vw_run_counts_t *cnt, char *err, size_t errlen);

/*
 * Who of ids a run would queue now (voucher_run_check): their indexes in
 * out (room for n); how many, or -1 with err.
 */
int64_t vw_run_check(redisContext *c, const vw_config_t *cf,
    const vw_auto_t *a, const char *run, int64_t now, int64_t t, int tz,
    char **ids, size_t n, size_t *out, char *err, size_t errlen);

/*
 * "enters": looks at who is in the segment now (voucher_enter); those who
 * entered since the last look are queued as run.  owner names this
 * look's staging set.  0, -1, -2 as vw_run_queue.
 */
int vw_run_enter(redisContext *c, const vw_config_t *cf, const vw_auto_t *a,
    const char *owner, const char *run, int64_t now, int tz, char **ids,
    size_t n, vw_run_counts_t *cnt, char *err, size_t errlen);


#endif /* _VW_RUN_H_INCLUDED_ */
