
/*
 * Copyright (C) ngx_voucher authors
 *
 * Scheduled runs.  The latest run of a schedule that is due, not older
 * than the automation (since) and not yet planned (last) is planned:
 * one daemon takes a lease on it (voucher_run_begin), evaluates the
 * segment as of the run's time and queues its members.  A daemon that
 * dies while planning leaves the lease to run out; the next one plans
 * the run again and the members queued already are not queued twice.
 * Runs missed while no daemon ran are not made up, except the latest;
 * birthday schedules make up for the month (vw_run.h).  Here too: the
 * catch-up runs of birthday schedules, and the looks at "enters"
 * segments (once a minute of the clock).
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_clock.h"
#include "vw_daemon.h"
#include "vw_log.h"
#include "vw_map.h"
#include "vw_members.h"
#include "vw_redis.h"
#include "vw_run.h"
#include "vw_util.h"


#define VW_ENTER_EVERY  60


static int
vw_run_call(vw_daemon_t *d, const char *fn, const char *campaign,
    const char *run, int64_t now, const char *skipped)
{
    int64_t      v;
    char        *key;
    vw_args_t    a;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(&d->cf, "a:%s", campaign);

    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, fn);
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, run);

    if (strcmp(fn, "voucher_run_begin") == 0) {
        vw_args_addi(&a, now);
        vw_args_adds(&a, d->cf.consumer);
        vw_args_addi(&a, d->cf.lease_s);

    } else if (skipped) {
        vw_args_adds(&a, skipped);
    }

    free(key);

    r = vw_redis_run(d->redis, &a, d->err, sizeof(d->err));
    vw_args_free(&a);

    if (vw_redis_failed(d->redis, r, d->err, sizeof(d->err))
        || vw_reply_int(r, &v) != 0)
    {
        if (r) {
            freeReplyObject(r);
        }

        return -1;
    }

    freeReplyObject(r);

    return (int) v;
}


/*
 * The members of a run at t, queued as runid (due at t for a scheduled
 * run, now for a catch-up); for "enters", a look at the segment.
 */

static int
vw_plan_run(vw_daemon_t *d, vw_auto_t *a, const char *runid, int64_t t,
    int64_t now, int tz)
{
    int               rc;
    char            **ids;
    size_t            i, n, k, *idx;
    vw_member_t      *m;
    vw_run_counts_t   cnt;

    if (vw_members_load(d->redis, &d->cf, &m, &n, d->err, sizeof(d->err))
        != 0)
    {
        return -1;
    }

    idx = vw_xalloc((n ? n : 1) * sizeof(size_t));
    ids = vw_xalloc((n ? n : 1) * sizeof(char *));
    memset(&cnt, 0, sizeof(vw_run_counts_t));

    k = vw_run_select(&d->cf, a, m, n, t, tz, idx, &cnt);

    for (i = 0; i < k; i++) {
        ids[i] = m[idx[i]].id;
    }

    if (a->entering) {
        rc = vw_run_enter(d->redis, &d->cf, a, d->cf.consumer, runid, now,
                          tz, ids, k, &cnt, d->err, sizeof(d->err));

    } else {
        rc = vw_run_queue(d->redis, &d->cf, a, runid, t * 1000, t, now, t,
                          tz, ids, k, 0, &cnt, d->err, sizeof(d->err));
    }

    if (rc == 0 && (!a->entering || cnt.queued + cnt.held > 0)) {
        vw_log_info("campaign %s: run %s (segment \"%s\"): %lld of %zu "
                    "members queued, %lld held back by per_member, %zu "
                    "without an address for %s", a->campaign, runid,
                    a->entering ? a->enters_text : a->segment_text,
                    (long long) cnt.queued, cnt.segment,
                    (long long) cnt.held, cnt.unreachable, a->channel);
    }

    free(ids);
    free(idx);
    vw_members_free(m, n);

    return rc < 0 ? rc : 1;
}


static void
vw_plan_report(const char *campaign, const char *run, const char *err)
{
    char             key[160];
    void           **slot;
    static vw_map_t  reported;

    snprintf(key, sizeof(key), "%s\t%s", campaign, run);
    slot = vw_map_slot(&reported, key);

    if (*slot == NULL) {
        *slot = &reported;
        vw_log_error("%s; the run waits until that is fixed", err);
    }
}


static int
vw_in_dates(const vw_run_campaign_t *ci, int64_t t)
{
    return ci->active && !(ci->starts_at >= 0 && t < ci->starts_at)
           && !(ci->ends_at >= 0 && t >= ci->ends_at);
}


/* a birthday automation's catch-up, asked for at a->catchup */

static int
vw_plan_catchup(vw_daemon_t *d, vw_auto_t *a, const vw_run_campaign_t *ci,
    int64_t now)
{
    int   rc;
    char  run[32];

    if (!vw_in_dates(ci, now)) {
        return 0;
    }

    snprintf(run, sizeof(run), "c%lld", (long long) a->catchup);

    rc = vw_plan_run(d, a, run, now, now, ci->tz);

    if (rc == -2) {
        vw_plan_report(a->campaign, run, d->err);
        return 0;
    }

    if (rc < 0 || vw_run_call(d, "voucher_run_done", a->campaign, run, now,
                              NULL) < 0)
    {
        return -1;
    }

    a->catchup = 0;

    return 1;
}


/* who entered an "enters" segment, once a minute of the clock */

static int
vw_plan_enter(vw_daemon_t *d, vw_auto_t *a, const vw_run_campaign_t *ci,
    int64_t now)
{
    int   rc;
    char  run[32];

    if (now - a->last < VW_ENTER_EVERY || !vw_in_dates(ci, now)) {
        return 0;
    }

    a->last = now;
    snprintf(run, sizeof(run), "n%lld", (long long) (now / 60 * 60));

    rc = vw_plan_run(d, a, run, now, now, ci->tz);

    if (rc == -2) {
        vw_plan_report(a->campaign, run, d->err);
        return 0;
    }

    return rc < 0 ? -1 : 1;
}


int
vw_plan_tick(vw_daemon_t *d)
{
    int                 rc, done;
    char                run[32];
    size_t              i;
    int64_t             now, t;
    vw_auto_t          *a;
    vw_run_campaign_t   ci;

    now = vw_now();
    done = 0;

    for (i = 0; i < d->nautos; i++) {
        a = &d->autos[i];

        if ((!a->scheduled && !a->entering) || !a->active
            || (d->stop && *d->stop))
        {
            continue;
        }

        if (vw_run_campaign(d->redis, &d->cf, a->campaign, &ci, d->err,
                            sizeof(d->err)) != 0)
        {
            return -1;
        }

        if (a->entering) {
            rc = vw_plan_enter(d, a, &ci, now);

            if (rc < 0) {
                return -1;
            }

            done += rc;
            continue;
        }

        if (a->catch_up && a->catchup > 0) {
            rc = vw_plan_catchup(d, a, &ci, now);

            if (rc < 0) {
                return -1;
            }

            done += rc;
        }

        t = vw_schedule_prev(&a->schedule, now, ci.tz);

        if (t < 0 || t < a->since || t <= a->last) {
            continue;
        }

        snprintf(run, sizeof(run), "%lld", (long long) t);

        /* a paused campaign, or outside its dates: this run is skipped */
        if (!vw_in_dates(&ci, t)) {
            if (vw_run_call(d, "voucher_run_done", a->campaign, run, now,
                            ci.active ? "0" : "1") < 0)
            {
                return -1;
            }

            a->last = t;
            vw_log_info("campaign %s: run %lld skipped: the campaign is %s",
                        a->campaign, (long long) t,
                        ci.active ? "outside its dates" : "not active");
            continue;
        }

        rc = vw_run_call(d, "voucher_run_begin", a->campaign, run, now,
                         NULL);

        if (rc < 0) {
            return -1;
        }

        if (rc == 0) {
            continue;
        }

        rc = vw_plan_run(d, a, run, t, now, ci.tz);

        if (rc == -2) {
            /* refused by the library (the campaign deleted): say so once */
            vw_plan_report(a->campaign, run, d->err);
            continue;
        }

        if (rc < 0) {
            return -1;
        }

        if (vw_run_call(d, "voucher_run_done", a->campaign, run, now, NULL)
            < 0)
        {
            return -1;
        }

        a->last = t;
        done++;
    }

    return done;
}
