
/*
 * Copyright (C) ngx_voucher authors
 *
 * Automations: run now, a send as a job, preview, and the next run that
 * "auto get" shows.  A run made here is queued like voucherd's
 * (vw_run.c); voucherd sends it, making the codes then.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_auto.h"
#include "vw_clock.h"
#include "vw_job.h"
#include "vw_locale.h"
#include "vw_members.h"
#include "vw_op.h"
#include "vw_render.h"
#include "vw_run.h"
#include "vw_util.h"


/* the automation of a campaign, parsed, and its campaign */

static int
vw_op_auto_load(vw_op_t *op, const char *campaign, vw_auto_t *at,
    vw_run_campaign_t *ci, vw_operr_t *e)
{
    char         *key, err[512];
    vw_args_t     a;
    redisReply   *r;

    if (campaign == NULL || *campaign == '\0' || strlen(campaign) > 64) {
        return vw_op_fail(e, 400, "invalid_field", "campaign",
                          "campaign: 1..64 printable ASCII characters");
    }

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "a:%s", campaign);
    vw_args_adds(&a, "HMGET");
    vw_args_adds(&a, key);
    vw_args_adds(&a, "def");
    vw_args_adds(&a, "since");
    vw_args_adds(&a, "last");
    vw_args_adds(&a, "catchup");
    free(key);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->element[0]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return vw_op_fail(e, 404, "not_found", NULL,
                          "campaign \"%s\" has no automation", campaign);
    }

    if (vw_auto_parse(campaign, r->element[0]->str, op->cf, at, err,
                      sizeof(err)) != 0)
    {
        freeReplyObject(r);
        return vw_op_fail(e, 409, "automation_invalid", NULL, "%s", err);
    }

    at->since = r->element[1]->type == REDIS_REPLY_STRING
                ? atoll(r->element[1]->str) : 0;
    at->last = r->element[2]->type == REDIS_REPLY_STRING
               ? atoll(r->element[2]->str) : -1;
    at->catchup = r->element[3]->type == REDIS_REPLY_STRING
                  ? atoll(r->element[3]->str) : 0;
    freeReplyObject(r);

    if (vw_run_campaign(op->redis, op->cf, campaign, ci, err, sizeof(err))
        != 0)
    {
        vw_auto_free(at);
        return vw_op_fail(e, 503, "store_unavailable", NULL, "%s", err);
    }

    return 0;
}


/* the members of a run of at now: m, n and idx (k of them) */

static int
vw_op_auto_members(vw_op_t *op, vw_auto_t *at, vw_run_campaign_t *ci,
    int64_t now, vw_member_t **m, size_t *n, size_t **idx, size_t *k,
    vw_run_counts_t *cnt, vw_operr_t *e)
{
    char  err[512];

    if (vw_members_load(op->redis, op->cf, m, n, err, sizeof(err)) != 0) {
        return vw_op_fail(e, 503, "store_unavailable", NULL, "%s", err);
    }

    *idx = vw_xalloc((*n ? *n : 1) * sizeof(size_t));
    memset(cnt, 0, sizeof(vw_run_counts_t));
    *k = vw_run_select(op->cf, at, *m, *n, now, ci->tz, *idx, cnt);

    return 0;
}


/* POST /automations/{campaign}/run: a run now, queued for voucherd */

int
vw_op_auto_run(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    int                       rc;
    char                      run[32], err[512], **ids;
    size_t                    i, n, k, *idx;
    int64_t                   now;
    json_t                   *note;
    vw_auto_t                 at;
    vw_member_t              *m;
    vw_run_counts_t           cnt;
    vw_run_campaign_t         ci;
    static const char *const  none[] = { NULL };

    if (vw_op_known(in->query, none, e) != 0
        || vw_op_known(in->body, none, e) != 0
        || vw_op_auto_load(op, in->id, &at, &ci, e) != 0)
    {
        return -1;
    }

    now = vw_now();

    if (!at.scheduled && !at.entering) {
        vw_auto_free(&at);
        return vw_op_fail(e, 409, "not_scheduled", NULL, "campaign \"%s\": "
                          "a triggered automation runs on its events",
                          in->id);
    }

    if (!ci.active || (ci.starts_at >= 0 && now < ci.starts_at)
        || (ci.ends_at >= 0 && now >= ci.ends_at))
    {
        vw_auto_free(&at);
        return vw_op_fail(e, 409, "campaign_not_active", NULL, "campaign "
                          "\"%s\" is not active now", in->id);
    }

    if (vw_op_auto_members(op, &at, &ci, now, &m, &n, &idx, &k, &cnt, e)
        != 0)
    {
        vw_auto_free(&at);
        return -1;
    }

    ids = vw_xalloc((k ? k : 1) * sizeof(char *));

    for (i = 0; i < k; i++) {
        ids[i] = m[idx[i]].id;
    }

    snprintf(run, sizeof(run), "%s%lld", at.entering ? "n" : "m",
             (long long) now);

    if (at.entering) {
        rc = vw_run_enter(op->redis, op->cf, &at, "op", run, now, ci.tz,
                          ids, k, &cnt, err, sizeof(err));

    } else {
        rc = vw_run_queue(op->redis, op->cf, &at, run, now * 1000, now, now,
                          now, ci.tz, ids, k, 0, &cnt, err, sizeof(err));
    }

    free(ids);
    free(idx);
    vw_members_free(m, n);
    vw_auto_free(&at);

    if (rc == -1) {
        return vw_op_fail(e, 503, "store_unavailable", NULL, "%s", err);
    }

    if (rc == -2) {
        return vw_op_fail(e, 409, "automation_invalid", NULL, "%s", err);
    }

    *out = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}",
                     "campaign", in->id, "run", run, "at", (json_int_t) now,
                     "members", (json_int_t) cnt.segment,
                     "unreachable", (json_int_t) cnt.unreachable,
                     "queued", (json_int_t) cnt.queued,
                     "held", (json_int_t) cnt.held,
                     "already", (json_int_t) cnt.already);

    note = json_deep_copy(*out);

    if (vw_op_note(op, "automation.run", in->id, note, e) != 0) {
        json_decref(note);
        json_decref(*out);
        return -1;
    }

    json_decref(note);

    return 200;
}


/* ------------------------------------------------- a send as a job */


/* a scheduled automation whose campaign runs now: 0, or -1 and e */

static int
vw_op_auto_sendable(vw_auto_t *at, vw_run_campaign_t *ci, const char *camp,
    int64_t now, vw_operr_t *e)
{
    if (!at->scheduled || at->entering) {
        return vw_op_fail(e, 409, "not_scheduled", NULL, "campaign \"%s\": "
                          "only a scheduled automation is sent to its "
                          "segment", camp);
    }

    if (!ci->active || (ci->starts_at >= 0 && now < ci->starts_at)
        || (ci->ends_at >= 0 && now >= ci->ends_at))
    {
        return vw_op_fail(e, 409, "campaign_not_active", NULL, "campaign "
                          "\"%s\" is not active now", camp);
    }

    return 0;
}


/*
 * POST /v1/jobs/automations/send {"campaign": C}: a run now of C's
 * scheduled automation as a job (automations.send), its segment taken at
 * the job's time "at"
 */

int
vw_job_send_check(vw_op_t *op, vw_op_in_t *in, json_t **params,
    vw_operr_t *e)
{
    int                       rc;
    int64_t                   now;
    vw_auto_t                 at;
    const char               *camp;
    vw_run_campaign_t         ci;
    static const char *const  names[] = { "campaign", NULL };

    if (vw_op_known(in->body, names, e) != 0
        || vw_op_str(in, in->body, "campaign", 1, &camp, e) != 0
        || vw_op_auto_load(op, camp, &at, &ci, e) != 0)
    {
        return -1;
    }

    now = vw_now();
    rc = vw_op_auto_sendable(&at, &ci, camp, now, e);
    vw_auto_free(&at);

    if (rc != 0) {
        return -1;
    }

    *params = json_pack("{s:s,s:I}", "campaign", camp, "at",
                        (json_int_t) now);

    return 0;
}


int
vw_op_job_send(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    json_t  *params;

    if (vw_job_send_check(op, in, &params, e) != 0) {
        return -1;
    }

    return vw_job_queue(op, "automations.send", params, -1, "", 0, in, out,
                        e);
}


static int
vw_op_auto_id_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/*
 * The run: the segment at "at" (the members in id order, so that a
 * runner resuming at the checkpoint, the count done, goes on where the
 * last one stopped), queued in batches of VW_SEND_BATCH as the run
 * "<job id>", each batch with the checkpoint in one voucher_job_step
 * (run_add).  A member is queued once in a run, so a batch written twice
 * (a runner that died after the write) sends nothing twice.
 */

#define VW_SEND_BATCH  200

int
vw_job_send_run(vw_job_t *j)
{
    int                 rc;
    char                cursor[32], run[40], **ids;
    char               *key;
    size_t              i, n, k, b, pos, *idx;
    int64_t             now;
    vw_auto_t           at;
    vw_args_t           a;
    vw_member_t        *m;
    redisReply         *r, *inner;
    const char         *camp;
    vw_run_counts_t     cnt, sent;
    vw_run_campaign_t   ci;

    camp = json_string_value(json_object_get(j->params, "campaign"));
    now = json_integer_value(json_object_get(j->params, "at"));

    if (camp == NULL || now <= 0) {
        vw_op_fail(&j->e, 500, "internal_error", NULL,
                   "the job's parameters lack campaign or at");
        return VW_JOB_FAILED;
    }

    if (vw_op_auto_load(j->op, camp, &at, &ci, &j->e) != 0) {
        if (j->e.status == 404) {
            vw_op_fail(&j->e, 404, "campaign_not_found", "campaign",
                       "campaign \"%s\" or its automation is gone; %lld "
                       "done before", camp, (long long) j->done);
        }

        return j->e.status == 503 ? VW_JOB_LOST : VW_JOB_FAILED;
    }

    if (vw_op_auto_members(j->op, &at, &ci, now, &m, &n, &idx, &k, &cnt,
                           &j->e)
        != 0)
    {
        vw_auto_free(&at);
        return VW_JOB_LOST;
    }

    ids = vw_xalloc((k ? k : 1) * sizeof(char *));

    for (i = 0; i < k; i++) {
        ids[i] = m[idx[i]].id;
    }

    qsort(ids, k, sizeof(char *), vw_op_auto_id_cmp);

    snprintf(run, sizeof(run), "%s", j->id[0] ? j->id : "m");
    key = vw_key(j->op->cf, "a:%s", camp);
    memset(&a, 0, sizeof(vw_args_t));
    memset(&sent, 0, sizeof(vw_run_counts_t));

    j->total = (int64_t) k;
    pos = j->done > 0 && (size_t) j->done <= k ? (size_t) j->done : 0;
    rc = vw_job_beat(j);

    while (rc == VW_JOB_DONE && pos < k) {
        if (vw_job_stopping(j)) {
            rc = vw_job_halt(j);
            break;
        }

        b = k - pos < VW_SEND_BATCH ? k - pos : VW_SEND_BATCH;

        vw_args_reset(&a);
        vw_run_args(j->op->cf, &at, &a, run, now * 1000, now, now, now,
                    ci.tz, 0);

        for (i = pos; i < pos + b; i++) {
            vw_args_adds(&a, ids[i]);
        }

        snprintf(cursor, sizeof(cursor), "%zu", pos + b);

        if (vw_job_step_send(j, key, j->seq, cursor, 0, "", "run_add", &a)
            != 0)
        {
            vw_op_fail(&j->e, 503, "store_unavailable", NULL,
                       "Redis: the step was not sent");
            rc = VW_JOB_LOST;
            break;
        }

        rc = vw_job_step_reply(j, &r, &inner);

        if (rc != VW_JOB_DONE) {
            break;
        }

        if (inner->type == REDIS_REPLY_ARRAY && inner->elements >= 3) {
            sent.queued += inner->element[0]->integer;
            sent.already += inner->element[1]->integer;
            sent.held += inner->element[2]->integer;
        }

        freeReplyObject(r);
        pos += b;
    }

    j->result = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}",
                          "campaign", camp, "run", run,
                          "at", (json_int_t) now,
                          "members", (json_int_t) cnt.segment,
                          "unreachable", (json_int_t) cnt.unreachable,
                          "queued", (json_int_t) sent.queued,
                          "held", (json_int_t) sent.held,
                          "already", (json_int_t) sent.already);

    free(key);
    free(ids);
    free(idx);
    vw_args_free(&a);
    vw_members_free(m, n);
    vw_auto_free(&at);

    return rc;
}


/* where a message goes on the automation's channel */

static const char *
vw_op_auto_to(const vw_config_t *cf, const vw_auto_t *at,
    const vw_member_t *m)
{
    vw_channel_t  *ch;

    ch = vw_config_channel(cf, at->channel);

    switch (ch ? ch->type : 0) {
    case VW_CHANNEL_LINE:
        return m->line;
    case VW_CHANNEL_SMS:
        return m->e164;
    case VW_CHANNEL_EMAIL:
        return m->email;
    default:
        return m->id;
    }
}


/*
 * GET /automations/{campaign}/preview: who a run now would go to, and the
 * message of the first few (codes shown as their pattern: they are made
 * when sent).  Nothing is written.
 */

int
vw_op_auto_preview(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    char                      err[512], run[32], **ids;
    size_t                    i, n, k, *idx, *ok;
    int64_t                   now, sample, limit, nok;
    json_t                   *o, *list, *samples, *x;
    vw_auto_t                 at;
    vw_member_t              *m, *mm;
    vw_rendered_t             rd;
    vw_run_counts_t           cnt;
    vw_run_campaign_t         ci;
    static const char *const  names[] = { "sample", "limit", NULL };

    sample = 3;
    limit = 100;

    if (vw_op_known(in->query, names, e) != 0
        || vw_op_qint(in->query, "sample", 0, 20, &sample, e) != 0
        || vw_op_qint(in->query, "limit", 1, 1000, &limit, e) != 0
        || vw_op_auto_load(op, in->id, &at, &ci, e) != 0)
    {
        return -1;
    }

    now = vw_now();

    if (vw_op_auto_members(op, &at, &ci, now, &m, &n, &idx, &k, &cnt, e)
        != 0)
    {
        vw_auto_free(&at);
        return -1;
    }

    ids = vw_xalloc((k ? k : 1) * sizeof(char *));
    ok = vw_xalloc((k ? k : 1) * sizeof(size_t));

    for (i = 0; i < k; i++) {
        ids[i] = m[idx[i]].id;
    }

    snprintf(run, sizeof(run), "m%lld", (long long) now);
    nok = vw_run_check(op->redis, op->cf, &at, run, now, now, ci.tz, ids, k,
                       ok, err, sizeof(err));

    if (nok < 0) {
        free(ids);
        free(ok);
        free(idx);
        vw_members_free(m, n);
        vw_auto_free(&at);
        return vw_op_fail(e, 503, "store_unavailable", NULL, "%s", err);
    }

    list = json_array();
    samples = json_array();

    for (i = 0; i < (size_t) nok && (int64_t) i < limit; i++) {
        json_array_append_new(list, json_string(ids[ok[i]]));
    }

    for (i = 0; i < (size_t) nok && (int64_t) i < sample; i++) {
        mm = &m[idx[ok[i]]];

        if (vw_render(op->redis, op->cf, &at, mm, NULL, now, NULL, 0, &rd, err,
                      sizeof(err)) != 0)
        {
            break;
        }

        x = json_pack("{s:s,s:s?,s:s,s:s?,s:s,s:s}", "member", mm->id,
                      "name", mm->name, "channel", at.channel,
                      "to", vw_op_auto_to(op->cf, &at, mm),
                      "code", rd.code, "message", rd.message);

        if (rd.subject) {
            json_object_set_new(x, "subject", json_string(rd.subject));
        }

        json_array_append_new(samples, x);
        vw_rendered_free(&rd);
    }

    o = json_object();
    json_object_set_new(o, "campaign", json_string(in->id));
    json_object_set_new(o, "at", json_integer(now));
    json_object_set_new(o, "members", json_integer((json_int_t) cnt.segment));
    json_object_set_new(o, "unreachable",
                        json_integer((json_int_t) cnt.unreachable));
    json_object_set_new(o, "held", json_integer((json_int_t) k - nok));
    json_object_set_new(o, "recipients", json_integer(nok));
    json_object_set_new(o, "members_list", list);
    json_object_set_new(o, "sample", samples);

    free(ids);
    free(ok);
    free(idx);
    vw_members_free(m, n);
    vw_auto_free(&at);

    *out = o;

    return 200;
}


/*
 * What "auto get" adds: the next run (and when the latest was), in the
 * campaign's zone, and a catch-up that is waiting.
 */

void
vw_op_auto_next_run(vw_op_t *op, const char *campaign, json_t *o)
{
    char                date[96];
    int64_t             t, now;
    vw_auto_t           at;
    vw_operr_t          e;
    vw_run_campaign_t   ci;

    if (vw_op_auto_load(op, campaign, &at, &ci, &e) != 0) {
        return;
    }

    now = vw_now();

    if (at.scheduled && at.active) {
        t = vw_schedule_next(&at.schedule, now, ci.tz);

        if (t >= 0) {
            json_object_set_new(o, "next_run", json_integer(t));
            vw_locale_datetime(NULL, t, ci.tz, date, sizeof(date));
            json_object_set_new(o, "next_run_local", json_string(date));
        }
    }

    if (at.catch_up && at.catchup > 0) {
        json_object_set_new(o, "catch_up_pending", json_integer(at.catchup));
    }

    json_object_set_new(o, "per_member", json_string(
        at.per_member == VW_PER_ALWAYS ? "every run"
        : at.per_member == VW_PER_COOLDOWN ? "cooldown"
        : at.per_member == VW_PER_YEAR ? "once a year"
        : at.per_member == VW_PER_MONTH ? "once a month" : "once"));

    if (at.per_member == VW_PER_COOLDOWN) {
        json_object_set_new(o, "cooldown_days",
                            json_integer(at.cooldown / 86400));
    }

    vw_auto_free(&at);
}
