
/*
 * Copyright (C) ngx_voucher authors
 *
 * A run of an automation: see vw_run.h.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_redis.h"
#include "vw_run.h"
#include "vw_schedule.h"
#include "vw_util.h"


#define VW_RUN_BATCH  500


int
vw_run_campaign(redisContext *c, const vw_config_t *cf, const char *campaign,
    vw_run_campaign_t *ci, char *err, size_t errlen)
{
    int64_t      v;
    char        *key;
    redisReply  *r;

    key = vw_key(cf, "k:%s", campaign);
    r = redisCommand(c, "HMGET %s status tz_offset starts_at ends_at", key);
    free(key);

    if (vw_redis_failed(c, r, err, errlen) || r->type != REDIS_REPLY_ARRAY
        || r->elements != 4)
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


int
vw_run_reachable(const vw_config_t *cf, const vw_auto_t *a,
    const vw_member_t *m)
{
    vw_channel_t  *ch;

    ch = vw_config_channel(cf, a->channel);

    if (ch == NULL) {
        return 0;
    }

    switch (ch->type) {
    case VW_CHANNEL_LINE:
        return m->line != NULL;
    case VW_CHANNEL_SMS:
        return m->e164 != NULL;
    case VW_CHANNEL_EMAIL:
        return m->email != NULL;
    default:
        return 1;
    }
}


/* the member's birthday is one a birthday run at local y-mo-d goes to */

static int
vw_run_birthday(const vw_auto_t *a, const vw_member_t *m, int64_t y, int mo,
    int d)
{
    int  bd;

    if (m->birth_month != mo) {
        return 0;
    }

    if (a->schedule.kind == VW_SCHED_BIRTHDAYS) {
        return 1;
    }

    /* 29 February is the 28th in other years */
    bd = m->birth_day;

    if (mo == 2 && bd == 29
        && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    {
        bd = 28;
    }

    return bd <= d;
}


size_t
vw_run_select(const vw_config_t *cf, const vw_auto_t *a, vw_member_t *m,
    size_t n, int64_t t, int tz, size_t *idx, vw_run_counts_t *cnt)
{
    int       mo, d;
    size_t    i, k, nseg, nin, *in;
    int64_t   y;

    /* the segment as it is at the run's time, in the campaign's zone */
    nseg = vw_segment_eval(&a->segment, m, n, t, tz, idx);

    if (a->entering) {
        in = vw_xalloc((n ? n : 1) * sizeof(size_t));
        nin = vw_segment_eval(&a->enters, m, n, t, tz, in);

        /* in both: idx is in m's order unless a top rule sorted it */
        for (i = 0, k = 0; i < nseg; i++) {
            size_t  j;

            for (j = 0; j < nin && in[j] != idx[i]; j++) {
                /* void */
            }

            if (j < nin) {
                idx[k++] = idx[i];
            }
        }

        free(in);
        nseg = k;
    }

    vw_local_date(t, tz, &y, &mo, &d);
    k = 0;

    for (i = 0; i < nseg; i++) {
        if (a->scheduled && vw_schedule_birthdays(&a->schedule)
            && !vw_run_birthday(a, &m[idx[i]], y, mo, d))
        {
            continue;
        }

        cnt->segment++;

        if (!vw_run_reachable(cf, a, &m[idx[i]])) {
            cnt->unreachable++;
            continue;
        }

        idx[k++] = idx[i];
    }

    return k;
}


/* the arguments of voucher_run_add after its key, before the members */

void
vw_run_args(const vw_config_t *cf, const vw_auto_t *a, vw_args_t *args,
    const char *run, int64_t due_ms, int64_t codes_from, int64_t now,
    int64_t t, int tz, int64_t cancel_after)
{
    int    np;
    char   policy[64];

    vw_auto_policy(a, t, tz, policy, sizeof(policy));

    vw_args_adds(args, run);
    vw_args_addi(args, due_ms);
    vw_args_adds(args, a->channel);
    vw_args_adds(args, a->shared ? "shared" : "unique");
    vw_args_adds(args, a->shared ? a->code : "");
    vw_args_adds(args, a->unless ? a->unless : "");
    vw_args_addi(args, cancel_after);
    vw_args_adds(args, policy);
    vw_args_addi(args, now);

    (void) cf;

    np = a->shared ? 0 : (a->max_uses >= 0) + (a->valid_days > 0);
    vw_args_addi(args, np);

    if (a->shared) {
        return;
    }

    if (a->max_uses >= 0) {
        vw_args_adds(args, "max_uses");
        vw_args_addi(args, a->max_uses);
    }

    /* a code that is valid N days from its run */
    if (a->valid_days > 0) {
        vw_args_adds(args, "ends_at");
        vw_args_addi(args, codes_from + a->valid_days * 86400);
    }
}


/* {queued, already, held[, entered]} into cnt; -2 when it is not that */

static int
vw_run_reply(redisReply *r, vw_run_counts_t *cnt, const char *run,
    const vw_auto_t *a, char *err, size_t errlen)
{
    int64_t  q, al, h, e;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3
        || vw_reply_int(r->element[0], &q) != 0
        || vw_reply_int(r->element[1], &al) != 0
        || vw_reply_int(r->element[2], &h) != 0)
    {
        snprintf(err, errlen, "campaign %s: run %s: %s", a->campaign, run,
                 r->type == REDIS_REPLY_ERROR ? r->str
                 : "unexpected reply of voucher_run_add");
        return -2;
    }

    cnt->queued += q;
    cnt->already += al;
    cnt->held += h;

    if (r->elements >= 4 && vw_reply_int(r->element[3], &e) == 0) {
        cnt->entered += e;
    }

    return 0;
}


int
vw_run_queue(redisContext *c, const vw_config_t *cf, const vw_auto_t *a,
    const char *run, int64_t due_ms, int64_t codes_from, int64_t now,
    int64_t t, int tz, char **ids, size_t n, int64_t cancel_after,
    vw_run_counts_t *cnt, char *err, size_t errlen)
{
    int          rc;
    char        *key;
    size_t       first, i, k;
    vw_args_t    args;
    redisReply  *r;

    memset(&args, 0, sizeof(vw_args_t));
    key = vw_key(cf, "a:%s", a->campaign);
    rc = 0;

    for (first = 0; first < n; first += VW_RUN_BATCH) {
        k = n - first < VW_RUN_BATCH ? n - first : VW_RUN_BATCH;

        vw_args_reset(&args);
        vw_args_adds(&args, "FCALL");
        vw_args_adds(&args, "voucher_run_add");
        vw_args_adds(&args, "1");
        vw_args_adds(&args, key);
        vw_run_args(cf, a, &args, run, due_ms, codes_from, now, t, tz,
                    cancel_after);

        for (i = first; i < first + k; i++) {
            vw_args_adds(&args, ids[i]);
        }

        r = vw_redis_run(c, &args, err, errlen);

        if (r == NULL) {
            rc = -1;
            break;
        }

        if (vw_redis_unready(r->type == REDIS_REPLY_ERROR ? r->str : "")) {
            snprintf(err, errlen, "redis: %s", r->str);
            freeReplyObject(r);
            rc = -1;
            break;
        }

        rc = vw_run_reply(r, cnt, run, a, err, errlen);
        freeReplyObject(r);

        if (rc != 0) {
            break;
        }
    }

    free(key);
    vw_args_free(&args);

    return rc;
}


int64_t
vw_run_check(redisContext *c, const vw_config_t *cf, const vw_auto_t *a,
    const char *run, int64_t now, int64_t t, int tz, char **ids, size_t n,
    size_t *out, char *err, size_t errlen)
{
    char         *key, policy[64];
    size_t        first, i, j, k, pos;
    int64_t       total;
    vw_args_t     args;
    redisReply   *r;

    memset(&args, 0, sizeof(vw_args_t));
    key = vw_key(cf, "a:%s", a->campaign);
    vw_auto_policy(a, t, tz, policy, sizeof(policy));
    total = 0;

    for (first = 0; first < n; first += VW_RUN_BATCH) {
        k = n - first < VW_RUN_BATCH ? n - first : VW_RUN_BATCH;

        vw_args_reset(&args);
        vw_args_adds(&args, "FCALL_RO");
        vw_args_adds(&args, "voucher_run_check");
        vw_args_adds(&args, "1");
        vw_args_adds(&args, key);
        vw_args_adds(&args, run);
        vw_args_adds(&args, policy);
        vw_args_addi(&args, now);

        for (i = first; i < first + k; i++) {
            vw_args_adds(&args, ids[i]);
        }

        r = vw_redis_run(c, &args, err, errlen);

        if (vw_redis_failed(c, r, err, errlen)
            || r->type != REDIS_REPLY_ARRAY)
        {
            if (r) {
                freeReplyObject(r);
            }

            total = -1;
            break;
        }

        /* the answer keeps the order of the question */
        pos = first;

        for (j = 0; j < r->elements; j++) {
            while (pos < first + k && strcmp(ids[pos], r->element[j]->str))
            {
                pos++;
            }

            if (pos < first + k) {
                out[total++] = pos++;
            }
        }

        freeReplyObject(r);
    }

    free(key);
    vw_args_free(&args);

    return total;
}


int
vw_run_enter(redisContext *c, const vw_config_t *cf, const vw_auto_t *a,
    const char *owner, const char *run, int64_t now, int tz, char **ids,
    size_t n, vw_run_counts_t *cnt, char *err, size_t errlen)
{
    int          rc;
    char        *key;
    size_t       first, i, k;
    vw_args_t    args;
    redisReply  *r;

    memset(&args, 0, sizeof(vw_args_t));
    key = vw_key(cf, "a:%s", a->campaign);
    rc = 0;
    first = 0;

    /* the look, in batches; an empty segment is a look too */
    do {
        k = n - first < VW_RUN_BATCH ? n - first : VW_RUN_BATCH;

        vw_args_reset(&args);
        vw_args_adds(&args, "FCALL");
        vw_args_adds(&args, "voucher_enter");
        vw_args_adds(&args, "1");
        vw_args_adds(&args, key);
        vw_args_adds(&args, "add");
        vw_args_adds(&args, owner);
        vw_args_adds(&args, first == 0 ? "1" : "0");

        for (i = first; i < first + k; i++) {
            vw_args_adds(&args, ids[i]);
        }

        r = vw_redis_run(c, &args, err, errlen);

        if (vw_redis_failed(c, r, err, errlen)) {
            if (r) {
                freeReplyObject(r);
            }

            rc = -1;
            goto done;
        }

        freeReplyObject(r);
        first += k;

    } while (first < n);

    vw_args_reset(&args);
    vw_args_adds(&args, "FCALL");
    vw_args_adds(&args, "voucher_enter");
    vw_args_adds(&args, "1");
    vw_args_adds(&args, key);
    vw_args_adds(&args, "commit");
    vw_args_adds(&args, owner);
    vw_run_args(cf, a, &args, run, now * 1000, now, now, now, tz, 0);

    r = vw_redis_run(c, &args, err, errlen);

    if (r == NULL) {
        rc = -1;
        goto done;
    }

    rc = vw_run_reply(r, cnt, run, a, err, errlen);
    freeReplyObject(r);

done:

    free(key);
    vw_args_free(&args);

    return rc;
}
