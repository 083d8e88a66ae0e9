
/*
 * Copyright (C) ngx_voucher authors
 *
 * Queueing the members of a triggered run: voucher_run_add through
 * vw_run_queue (vw_run.c), which scheduled runs use too.  The library
 * queues a member once per run, whatever happens, so calling this again
 * for the same run is harmless.  Codes are made when sent.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_clock.h"
#include "vw_daemon.h"
#include "vw_log.h"
#include "vw_redis.h"
#include "vw_run.h"
#include "vw_util.h"


int64_t
vw_daemon_queue(vw_daemon_t *d, vw_auto_t *a, const char *run,
    int64_t due_ms, int64_t codes_from, char **members, size_t n,
    int64_t cancel_after)
{
    int                 rc;
    vw_run_counts_t     cnt;
    vw_run_campaign_t   ci;

    if (vw_run_campaign(d->redis, &d->cf, a->campaign, &ci, d->err,
                        sizeof(d->err)) != 0)
    {
        return -1;
    }

    memset(&cnt, 0, sizeof(vw_run_counts_t));

    rc = vw_run_queue(d->redis, &d->cf, a, run, due_ms, codes_from, vw_now(),
                      codes_from, ci.tz, members, n, cancel_after, &cnt,
                      d->err, sizeof(d->err));

    if (rc < 0) {
        return rc;
    }

    if (cnt.held > 0) {
        vw_log_info("campaign %s: run %s: %lld member(s) held back by "
                    "per_member", a->campaign, run, (long long) cnt.held);
    }

    return cnt.queued;
}
