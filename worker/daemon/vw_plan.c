
/*
 * Copyright (C) ngx_voucher authors
 *
 * Scheduled runs.  The latest run of a schedule that is due, not older
 * than the automation (since) and not yet planned (last) is planned:
 * one daemon takes a lease on it (voucher_run_begin), evaluates the
 * segment as of the run's time and queues its members.  A daemon that
 * dies while planning leaves the lease to run out; the next one plans
 * the run again and the members queued already are not queued twice.
 * Runs missed while no daemon ran are not made up, except the latest.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_clock.h"
#include "vw_daemon.h"
#include "vw_metrics.h"
#include "vw_log.h"
#include "vw_map.h"
#include "vw_members.h"
#include "vw_redis.h"
#include "vw_util.h"


typedef struct {
    int          active;
    int          tz;
    int64_t      starts_at;         /* -1: none */
    int64_t      ends_at;
} vw_campaign_info_t;


static int
vw_campaign_info(vw_daemon_t *d, const char *campaign, vw_campaign_info_t *ci)
{
    int64_t      v;
    char        *key;
    redisReply  *r;

    key = vw_key(&d->cf, "k:%s", campaign);
    r = redisCommand(d->redis, "HMGET %s status tz_offset starts_at ends_at",
                     key);
    free(key);

    if (vw_redis_failed(d->redis, r, d->err, sizeof(d->err))
        || r->type != REDIS_REPLY_ARRAY || r->elements != 4)
    {
        if (r) {
            freeReplyObject(r);
        }

        return -1;
    }

    ci->active = r->element[0]->type == REDIS_REPLY_STRING
                 && strcmp(r->element[0]->str, "active") == 0;
    ci->tz = vw_reply_int(r->element[1], &v) == 0 ? (int) v : 0;
    ci->starts_at = vw_reply_int(r->element[2], &v) == 0 ? v : -1;
    ci->ends_at = vw_reply_int(r->element[3], &v) == 0 ? v : -1;

    freeReplyObject(r);

    return 0;
}


static int
vw_run_call(vw_daemon_t *d, const char *fn, const char *campaign,
    int64_t run, int64_t now)
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
    vw_args_addi(&a, run);

    if (strcmp(fn, "voucher_run_begin") == 0) {
        vw_args_addi(&a, now);
        vw_args_adds(&a, d->cf.consumer);
        vw_args_addi(&a, d->cf.lease_s);
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


static int
vw_plan_run(vw_daemon_t *d, vw_auto_t *a, int64_t run, int tz)
{
    int            month;
    char           runid[32];
    char         **ids;
    size_t         i, n, k, nseg, *idx;
    int64_t        queued;
    vw_member_t   *m;

    if (vw_members_load(d->redis, &d->cf, &m, &n, d->err, sizeof(d->err))
        != 0)
    {
        return -1;
    }

    idx = vw_xalloc((n ? n : 1) * sizeof(size_t));
    ids = vw_xalloc((n ? n : 1) * sizeof(char *));

    /* the segment as it is at the run's time, in the campaign's zone */
    nseg = vw_segment_eval(&a->segment, m, n, run, tz, idx);

    month = vw_local_month(run, tz);
    k = 0;

    for (i = 0; i < nseg; i++) {
        if (a->schedule.kind == VW_SCHED_BIRTHDAYS
            && m[idx[i]].birth_month != month)
        {
            continue;
        }

        ids[k++] = m[idx[i]].id;
    }

    snprintf(runid, sizeof(runid), "%lld", (long long) run);

    queued = vw_daemon_queue(d, a, runid, run * 1000, run, ids, k, 0);

    if (queued >= 0) {
        vw_log_info("campaign %s: run %s (segment \"%s\"): %lld of %zu "
                    "members queued", a->campaign, runid, a->segment_text,
                    (long long) queued, k);
    }

    free(ids);
    free(idx);
    vw_members_free(m, n);

    return queued < 0 ? (int) queued : 1;
}


static void
vw_plan_report(const char *campaign, int64_t run, const char *err)
{
    char             key[160];
    void           **slot;
    static vw_map_t  reported;

    snprintf(key, sizeof(key), "%s\t%lld", campaign, (long long) run);
    slot = vw_map_slot(&reported, key);

    if (*slot == NULL) {
        *slot = &reported;
        vw_log_error("%s; the run waits until that is fixed", err);
    }
}


int
vw_plan_tick(vw_daemon_t *d)
{
    int                  rc, done;
    size_t               i;
    int64_t              now, t;
    vw_auto_t           *a;
    vw_campaign_info_t   ci;

    now = vw_now();
    done = 0;

    for (i = 0; i < d->nautos; i++) {
        a = &d->autos[i];

        if (!a->scheduled || !a->active || (d->stop && *d->stop)) {
            continue;
        }

        if (vw_campaign_info(d, a->campaign, &ci) != 0) {
            return -1;
        }

        t = vw_schedule_prev(&a->schedule, now, ci.tz);

        if (t < 0 || t < a->since || t <= a->last) {
            continue;
        }

        /* a paused campaign, or outside its dates: this run is skipped */
        if (!ci.active || (ci.starts_at >= 0 && t < ci.starts_at)
            || (ci.ends_at >= 0 && t >= ci.ends_at))
        {
            if (vw_run_call(d, "voucher_run_done", a->campaign, t, now) < 0) {
                return -1;
            }

            a->last = t;
            vw_metrics_run(a->campaign, "skipped", 0);
            vw_log_info("campaign %s: run %lld skipped: the campaign is %s",
                        a->campaign, (long long) t,
                        ci.active ? "outside its dates" : "not active");
            continue;
        }

        rc = vw_run_call(d, "voucher_run_begin", a->campaign, t, now);

        if (rc < 0) {
            return -1;
        }

        if (rc == 0) {
            continue;
        }

        rc = vw_plan_run(d, a, t, ci.tz);

        if (rc == -2) {
            /*
             * Not Redis but the configuration (no key_file): the run waits
             * for a fixed configuration (SIGHUP), and says so once.
             */
            vw_plan_report(a->campaign, t, d->err);
            continue;
        }

        if (rc < 0) {
            return -1;
        }

        if (vw_run_call(d, "voucher_run_done", a->campaign, t, now) < 0) {
            return -1;
        }

        a->last = t;
        vw_metrics_run(a->campaign, "planned", now - t);
        done++;
    }

    return done;
}
