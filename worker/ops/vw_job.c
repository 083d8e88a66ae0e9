
/*
 * Copyright (C) ngx_voucher authors
 *
 * Jobs: see vw_job.h.  The record and its protocol are the library's
 * (redis/lib/jobs.lua); this file makes the calls, runs a job's kind and
 * shows a job as the API answers it.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vw_job.h"
#include "vw_log.h"
#include "vw_util.h"


typedef struct {
    const char  *kind;
    int        (*run)(vw_job_t *j);
} vw_job_kind_t;


static const vw_job_kind_t  vw_job_kinds[] = {
    { "codes.issue", vw_job_issue_run },
    { "codes.export", vw_job_export_run },
    { "codes.import", vw_job_import_run },
    { "members.import", vw_job_members_run },
    { "automations.send", vw_job_send_run },
    { NULL, NULL }
};


size_t
vw_job_say(vw_job_t *j, size_t line, const char *fmt, ...)
{
    char     msg[512];
    json_t  *o;
    va_list  args;

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    if (j->errors == NULL) {
        j->errors = json_array();
    }

    o = json_object();

    if (line > 0) {
        json_object_set_new(o, "line", json_integer((json_int_t) line));
    }

    json_object_set_new(o, "message", json_string(msg));
    json_array_append_new(j->errors, o);

    return json_array_size(j->errors);
}


const char *
vw_job_err_text(const char *s)
{
    return strncmp(s, "ERR ", 4) == 0 ? s + 4 : s;
}


int
vw_job_stopping(vw_job_t *j)
{
    return j->stop != NULL && *j->stop;
}


void
vw_job_drain(vw_job_t *j, size_t n)
{
    char         err[256];
    redisReply  *r;

    while (n-- > 0) {
        r = vw_redis_get(j->op->redis, err, sizeof(err));

        if (r == NULL) {
            return;
        }

        freeReplyObject(r);
    }
}


int
vw_job_halt(vw_job_t *j)
{
    return j->stop_cancels ? VW_JOB_CANCELLED : VW_JOB_RELEASED;
}


/* ------------------------------------------------------------ records */


int
vw_job_create(vw_op_t *op, const char *kind, json_t *params, int64_t total,
    const char *phase, int keep, const char *input, size_t len,
    const char *owner, int64_t lease_ms, char *id, size_t idsize,
    vw_operr_t *e)
{
    char        *key, *p;
    vw_args_t    a;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "jobs");
    p = json_dumps(params, JSON_COMPACT | JSON_PRESERVE_ORDER);

    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_job_create");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, op->who);
    vw_args_adds(&a, kind);
    vw_args_adds(&a, p ? p : "{}");
    vw_args_addi(&a, total);
    vw_args_adds(&a, phase);
    vw_args_adds(&a, keep ? "1" : "0");
    vw_args_add(&a, input ? input : "", input ? len : 0);
    vw_args_adds(&a, owner ? owner : "");
    vw_args_addi(&a, lease_ms);

    free(key);
    free(p);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    snprintf(id, idsize, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);

    return 0;
}


static const char *
vw_pair(const redisReply *r, const char *name)
{
    size_t  i;

    for (i = 0; i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING
            && strcmp(r->element[i]->str, name) == 0)
        {
            return vw_reply_str(r->element[i + 1]);
        }
    }

    return NULL;
}


static const char *
vw_pair_s(const redisReply *r, const char *name)
{
    const char  *s;

    s = vw_pair(r, name);

    return s ? s : "";
}


static int64_t
vw_pair_int(const redisReply *r, const char *name, int64_t def)
{
    int64_t      v;
    const char  *s;

    s = vw_pair(r, name);

    return s && vw_parse_int(s, INT64_MIN, INT64_MAX, &v) == 0 ? v : def;
}


int
vw_job_claim(vw_op_t *op, const char *owner, int64_t lease_ms, vw_job_t *j,
    vw_operr_t *e)
{
    char        *key;
    vw_args_t    a;
    redisReply  *r;
    const char  *s;

    memset(j, 0, sizeof(vw_job_t));
    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "jobs");

    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_job_claim");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, owner);
    vw_args_addi(&a, lease_ms);
    free(key);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return 0;
    }

    j->op = op;
    j->lease_ms = lease_ms;
    snprintf(j->owner, sizeof(j->owner), "%s", owner);
    snprintf(j->id, sizeof(j->id), "%s", vw_pair_s(r, "id"));
    snprintf(j->kind, sizeof(j->kind), "%s", vw_pair_s(r, "kind"));
    snprintf(j->phase, sizeof(j->phase), "%s", vw_pair_s(r, "phase"));
    snprintf(j->cursor, sizeof(j->cursor), "%s",
             vw_pair_s(r, "cursor"));
    j->done = vw_pair_int(r, "done", 0);
    j->total = vw_pair_int(r, "total", -1);
    j->seq = vw_pair_int(r, "seq", 0);
    j->keep = vw_pair_int(r, "keep", 0) == 1;

    s = vw_pair(r, "params");
    j->params = s ? json_loads(s, 0, NULL) : NULL;

    if (j->params == NULL) {
        j->params = json_object();
    }

    freeReplyObject(r);

    return 1;
}


void
vw_job_free(vw_job_t *j)
{
    json_decref(j->params);
    json_decref(j->errors);
    json_decref(j->result);
    free(j->input);
    j->params = NULL;
    j->errors = NULL;
    j->result = NULL;
    j->input = NULL;
}


/* voucher_job_end: the record's end, as vw_job_run came to it */

static int
vw_job_end(vw_job_t *j, const char *state)
{
    char        *key, *res, *errs;
    vw_args_t    a;
    vw_operr_t   e;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(j->op->cf, "j:%s", j->id);
    res = j->result ? json_dumps(j->result, JSON_COMPACT) : NULL;
    errs = j->errors ? json_dumps(j->errors, JSON_COMPACT) : NULL;

    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_job_end");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, j->owner);
    vw_args_adds(&a, state);
    vw_args_adds(&a, strcmp(state, "failed") == 0 ? j->e.reason
                     : strcmp(state, "cancelled") == 0 ? "cancelled" : "");
    vw_args_adds(&a, strcmp(state, "failed") == 0 ? j->e.message
                     : strcmp(state, "cancelled") == 0
                       ? "cancelled: its runner stopped" : "");
    vw_args_adds(&a, res ? res : "");
    vw_args_adds(&a, errs ? errs : "");

    free(key);
    free(res);
    free(errs);

    r = vw_op_run(j->op, &a, &e);
    vw_args_free(&a);

    if (r == NULL) {
        vw_log_error("job %s: its end (%s) was not recorded: %s", j->id,
                     state, e.message);
        return -1;
    }

    freeReplyObject(r);

    return 0;
}


int
vw_job_run(vw_job_t *j)
{
    int                   rc;
    const vw_job_kind_t  *k;

    for (k = vw_job_kinds; k->kind; k++) {
        if (strcmp(k->kind, j->kind) == 0) {
            break;
        }
    }

    if (k->kind == NULL) {
        vw_op_fail(&j->e, 500, "unknown_kind", NULL,
                   "no runner knows jobs of kind \"%s\"", j->kind);
        rc = VW_JOB_FAILED;

    } else {
        rc = k->run(j);
    }

    if (j->id[0] == '\0' || j->ended) {
        return rc;
    }

    switch (rc) {

    case VW_JOB_DONE:
        vw_job_end(j, "done");
        break;

    case VW_JOB_FAILED:
        vw_job_end(j, "failed");
        break;

    case VW_JOB_CANCELLED:
        vw_job_end(j, "cancelled");
        break;

    case VW_JOB_RELEASED:
        vw_job_end(j, "queued");
        break;

    default:
        break;
    }

    j->ended = 1;

    return rc;
}


/* ------------------------------------------------------------- steps */


int
vw_job_step_send(vw_job_t *j, const char *key, int64_t seq,
    const char *cursor, int64_t add, const char *out, const char *opname,
    vw_args_t *args)
{
    int         i, rc;
    char       *jkey;
    vw_args_t   a;

    memset(&a, 0, sizeof(vw_args_t));
    jkey = vw_key(j->op->cf, "j:%s", j->id);

    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_job_step");
    vw_args_adds(&a, "2");
    vw_args_adds(&a, jkey);
    vw_args_adds(&a, key ? key : jkey);
    vw_args_adds(&a, j->owner);
    vw_args_addi(&a, j->lease_ms);
    vw_args_addi(&a, seq);
    vw_args_adds(&a, cursor ? cursor : "");
    vw_args_addi(&a, add);
    vw_args_adds(&a, out ? out : "");
    vw_args_adds(&a, opname);

    for (i = 0; args && i < args->n; i++) {
        vw_args_add(&a, args->v[i], args->len[i]);
    }

    free(jkey);

    rc = vw_redis_append(j->op->redis, &a);
    vw_args_free(&a);

    return rc;
}


int
vw_job_step_reply(vw_job_t *j, redisReply **rp, redisReply **inner)
{
    char         err[512];
    int64_t      done;
    redisReply  *r;
    const char  *s;

    *rp = NULL;
    *inner = NULL;

    r = vw_redis_get(j->op->redis, err, sizeof(err));

    if (r == NULL) {
        vw_op_fail(&j->e, 503, "store_unavailable", NULL, "Redis: %s", err);
        return VW_JOB_LOST;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        s = vw_job_err_text(r->str);

        if (strncmp(s, "job_lost", 8) == 0 || strncmp(s, "job_seq", 7) == 0
            || vw_redis_unready(s))
        {
            vw_op_fail(&j->e, 409, "job_lost", NULL, "%s", s);
            freeReplyObject(r);
            return VW_JOB_LOST;
        }

        /* the op refused the batch: the message names the row */
        vw_op_reply_error(r->str, &j->e);
        snprintf(j->e.message, sizeof(j->e.message), "%s", s);
        freeReplyObject(r);
        return VW_JOB_FAILED;
    }

    s = r->type == REDIS_REPLY_ARRAY && r->elements > 0
        ? vw_reply_str(r->element[0]) : NULL;

    if (s && strcmp(s, "cancelled") == 0) {
        j->ended = 1;
        freeReplyObject(r);
        return VW_JOB_CANCELLED;
    }

    if (s && strcmp(s, "campaign_not_found") == 0) {
        vw_op_fail(&j->e, 404, "campaign_not_found", "campaign",
                   "the campaign is gone (deleted while the job ran); %lld "
                   "done before", (long long) j->done);
        freeReplyObject(r);
        return VW_JOB_FAILED;
    }

    if (s == NULL || strcmp(s, "ok") != 0 || r->elements != 3
        || vw_reply_int(r->element[1], &done) != 0)
    {
        vw_op_fail(&j->e, 500, "internal_error", NULL,
                   "unexpected reply from voucher_job_step");
        freeReplyObject(r);
        return VW_JOB_FAILED;
    }

    j->done = done;
    j->seq++;
    *rp = r;
    *inner = r->element[2];

    if (j->progress) {
        j->progress(j);
    }

    return VW_JOB_DONE;
}


int
vw_job_beat(vw_job_t *j)
{
    char        *key;
    vw_args_t    a;
    redisReply  *r;
    vw_operr_t   e;
    const char  *s;

    if (j->progress) {
        j->progress(j);
    }

    if (j->id[0] == '\0') {
        return VW_JOB_DONE;
    }

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(j->op->cf, "j:%s", j->id);

    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_job_beat");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, j->owner);
    vw_args_addi(&a, j->lease_ms);
    vw_args_addi(&a, j->done);
    vw_args_addi(&a, j->total);
    vw_args_adds(&a, j->phase);
    free(key);

    r = vw_op_run(j->op, &a, &e);
    vw_args_free(&a);

    if (r == NULL) {
        j->e = e;
        return VW_JOB_LOST;
    }

    s = vw_reply_str(r);

    if (s && strcmp(s, "cancelled") == 0) {
        j->ended = 1;
        freeReplyObject(r);
        return VW_JOB_CANCELLED;
    }

    freeReplyObject(r);

    return VW_JOB_DONE;
}


/* --------------------------------------------------------- the API's */


static json_t *
vw_json_int_or_null(const redisReply *r, const char *name)
{
    int64_t  v;

    v = vw_pair_int(r, name, -1);

    return v >= 0 ? json_integer(v) : json_null();
}


static int64_t
vw_real_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/*
 * The job of a HGETALL reply.  ETA: the rest at the pace since the
 * running runner took it (or its phase began).
 */

static json_t *
vw_job_json(const char *id, const redisReply *r)
{
    json_t      *o, *v;
    int64_t      done, total, claimed, cdone, now, dt;
    const char  *s, *state;
    static const char *const  times[] = {
        "created", "started", "updated", "finished", NULL
    };
    const char *const        *t;
    char                      name[32];

    o = json_object();
    state = vw_pair_s(r, "state");

    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "kind", json_string(vw_pair_s(r, "kind")));
    json_object_set_new(o, "state", json_string(state));

    s = vw_pair(r, "phase");

    if (s && s[0]) {
        json_object_set_new(o, "phase", json_string(s));
    }

    json_object_set_new(o, "who", json_string(vw_pair_s(r, "who")));

    s = vw_pair(r, "params");
    v = s ? json_loads(s, 0, NULL) : NULL;
    json_object_set_new(o, "params", v ? v : json_object());

    done = vw_pair_int(r, "done", 0);
    total = vw_pair_int(r, "total", -1);
    json_object_set_new(o, "done", json_integer(done));
    json_object_set_new(o, "total", total >= 0 ? json_integer(total)
                                               : json_null());

    for (t = times; *t; t++) {
        snprintf(name, sizeof(name), "%s_at", *t);
        json_object_set_new(o, name, vw_json_int_or_null(r, *t));
    }

    /* the pace and what is left, while running */
    json_object_set_new(o, "rate", json_null());
    json_object_set_new(o, "eta_s", json_null());

    claimed = vw_pair_int(r, "claimed", -1);
    cdone = vw_pair_int(r, "claimed_done", 0);
    now = vw_real_ms();
    dt = now - claimed;

    if (strcmp(state, "running") == 0 && claimed > 0 && dt > 0
        && done > cdone)
    {
        json_object_set_new(o, "rate",
                            json_integer((done - cdone) * 1000 / dt));

        if (total >= done) {
            json_object_set_new(o, "eta_s", json_integer(
                (total - done) * dt / (done - cdone) / 1000));
        }
    }

    if (strcmp(state, "running") == 0) {
        json_object_set_new(o, "lease_until", vw_json_int_or_null(r,
                                                                  "lease"));
        json_object_set_new(o, "cancel_requested",
                            json_boolean(vw_pair_int(r, "cancel", 0) == 1));
    }

    s = vw_pair(r, "reason");

    if (s && s[0]) {
        json_object_set_new(o, "reason", json_string(s));
        json_object_set_new(o, "message",
                            json_string(vw_pair_s(r, "message")));
    }

    s = vw_pair(r, "result");
    v = s ? json_loads(s, 0, NULL) : NULL;

    if (v) {
        json_object_set_new(o, "result", v);
    }

    s = vw_pair(r, "errors");
    v = s ? json_loads(s, 0, NULL) : NULL;

    if (v) {
        json_object_set_new(o, "errors", v);
    }

    return o;
}


static int
vw_job_id_ok(const char *id, vw_operr_t *e)
{
    if (id == NULL || id[0] != 'j' || strlen(id) > 24
        || strspn(id + 1, "0123456789") != strlen(id + 1) || id[1] == '\0')
    {
        return vw_op_fail(e, 404, "not_found", NULL, "no such job \"%s\"",
                          id ? id : "");
    }

    return 0;
}


json_t *
vw_job_read(vw_op_t *op, const char *id, vw_operr_t *e)
{
    char        *key;
    json_t      *o;
    vw_args_t    a;
    redisReply  *r;

    if (vw_job_id_ok(id, e) != 0) {
        return NULL;
    }

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "j:%s", id);
    vw_args_adds(&a, "HGETALL");
    vw_args_adds(&a, key);
    free(key);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        return NULL;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        vw_op_fail(e, 404, "not_found", NULL, "no such job \"%s\"", id);
        return NULL;
    }

    o = vw_job_json(id, r);
    freeReplyObject(r);

    return o;
}


int
vw_job_queue(vw_op_t *op, const char *kind, json_t *params, int64_t total,
    const char *phase, int keep, vw_op_in_t *in, json_t **out,
    vw_operr_t *e)
{
    char  id[32];

    if (vw_job_create(op, kind, params, total, phase, keep, in->data,
                      in->len, "", 0, id, sizeof(id), e)
        != 0)
    {
        json_decref(params);
        return -1;
    }

    json_decref(params);

    *out = vw_job_read(op, id, e);

    return *out ? 202 : -1;
}


int
vw_op_job_issue(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    json_t  *params;

    if (vw_job_issue_check(op, in, &params, e) != 0) {
        return -1;
    }

    return vw_job_queue(op, "codes.issue", params,
                        json_integer_value(json_object_get(params, "count")),
                        "", 1, in, out, e);
}


int
vw_op_job_export(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    json_t  *params;

    if (vw_job_export_check(op, in, &params, e) != 0) {
        return -1;
    }

    return vw_job_queue(op, "codes.export", params, -1, "", 1, in, out, e);
}


static int
vw_job_has_input(vw_op_in_t *in, vw_operr_t *e)
{
    if (in->data == NULL || in->len == 0) {
        return vw_op_fail(e, 400, "invalid_request", NULL,
                          "the body is the file to import; it is empty");
    }

    return 0;
}


/* an import's parameters are the query's (the body is the file) */

static vw_op_in_t *
vw_job_query_in(vw_op_in_t *in, vw_op_in_t *q)
{
    *q = *in;
    q->body = in->query;

    return q;
}


int
vw_op_job_import(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    json_t      *params;
    vw_op_in_t   q;

    if (vw_job_has_input(in, e) != 0
        || vw_job_import_check(op, vw_job_query_in(in, &q), &params, e) != 0)
    {
        return -1;
    }

    return vw_job_queue(op, "codes.import", params, -1, "check", 0, in, out,
                        e);
}


int
vw_op_job_members(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    json_t      *params;
    vw_op_in_t   q;

    if (vw_job_has_input(in, e) != 0
        || vw_job_members_check(op, vw_job_query_in(in, &q), &params, e)
           != 0)
    {
        return -1;
    }

    return vw_job_queue(op, "members.import", params, -1, "check", 0, in,
                        out, e);
}


int
vw_op_job_get(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    static const char *const  names[] = { NULL };

    if (vw_op_known(in->query, names, e) != 0) {
        return -1;
    }

    *out = vw_job_read(op, in->id, e);

    return *out ? 200 : -1;
}


int
vw_op_job_cancel(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char        *key;
    vw_args_t    a;
    redisReply  *r;
    const char  *s;
    static const char *const  names[] = { NULL };

    if (vw_op_known(in->query, names, e) != 0
        || vw_op_known(in->body, names, e) != 0
        || vw_job_id_ok(in->id, e) != 0)
    {
        return -1;
    }

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "j:%s", in->id);
    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_job_cancel");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, op->who);
    free(key);

    r = vw_op_run(op, &a, e);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        s = vw_reply_str(r->element[1]);
        vw_op_fail(e, 409, "job_finished", NULL, "job %s has ended (%s)",
                   in->id, s ? s : "?");
        freeReplyObject(r);
        return -1;
    }

    freeReplyObject(r);

    *out = vw_job_read(op, in->id, e);

    return *out ? 200 : -1;
}


/* newest first; the cursor is the offset of the next page */

int
vw_op_job_list(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e)
{
    char        *key, next[32];
    size_t       i;
    json_t      *items, *o;
    int64_t      limit, from, n;
    vw_args_t    a;
    redisReply  *r, *h;
    const char  *state, *kind, *s;
    static const char *const  names[] = {
        "state", "kind", "cursor", "limit", NULL
    };

    if (vw_op_known(in->query, names, e) != 0
        || vw_op_limit(in->query, &limit, e) != 0)
    {
        return -1;
    }

    from = 0;
    s = json_string_value(json_object_get(in->query, "cursor"));

    if (s && vw_parse_int(s, 0, INT64_MAX, &from) != 0) {
        return vw_op_fail(e, 400, "invalid_field", "cursor",
                          "cursor: not one this API gave");
    }

    state = json_string_value(json_object_get(in->query, "state"));
    kind = json_string_value(json_object_get(in->query, "kind"));

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "jobs");
    vw_args_adds(&a, "ZREVRANGE");
    vw_args_adds(&a, key);
    vw_args_addi(&a, from);
    vw_args_addi(&a, from + limit - 1);
    free(key);

    r = vw_op_run(op, &a, e);

    if (r == NULL) {
        vw_args_free(&a);
        return -1;
    }

    items = json_array();
    n = (int64_t) r->elements;

    for (i = 0; i < r->elements; i++) {
        key = vw_key(op->cf, "j:%s", r->element[i]->str);
        vw_args_reset(&a);
        vw_args_adds(&a, "HGETALL");
        vw_args_adds(&a, key);
        free(key);

        h = vw_op_run(op, &a, e);

        if (h == NULL) {
            json_decref(items);
            freeReplyObject(r);
            vw_args_free(&a);
            return -1;
        }

        /* expired jobs are left out */
        if (h->type == REDIS_REPLY_ARRAY && h->elements > 0
            && (state == NULL || strcmp(vw_pair_s(h, "state"), state)
                                 == 0)
            && (kind == NULL || strcmp(vw_pair_s(h, "kind"), kind) == 0))
        {
            o = vw_job_json(r->element[i]->str, h);
            json_array_append_new(items, o);
        }

        freeReplyObject(h);
    }

    freeReplyObject(r);
    vw_args_free(&a);

    snprintf(next, sizeof(next), "%lld", (long long) (from + n));
    *out = vw_op_page(items, n == limit ? next : NULL);

    return 200;
}


int
vw_job_output(vw_op_t *op, const char *id, int64_t *index, size_t max,
    vw_buf_t *b, int *more, vw_operr_t *e)
{
    char         *key, shown[256], *line, *eol;
    size_t        i, n;
    json_t       *job, *params;
    vw_args_t     a;
    redisReply   *r;
    const char   *state, *pattern;

    *more = 0;
    job = vw_job_read(op, id, e);

    if (job == NULL) {
        return -1;
    }

    state = json_string_value(json_object_get(job, "state"));

    if (strcmp(state, "queued") == 0 || strcmp(state, "running") == 0) {
        vw_op_fail(e, 409, "job_not_finished", NULL,
                   "job %s is %s: its output is there when it ends", id,
                   state);
        json_decref(job);
        return -1;
    }

    params = json_object_get(job, "params");
    pattern = strcmp(json_string_value(json_object_get(job, "kind")),
                     "codes.issue") == 0
              ? json_string_value(json_object_get(params, "pattern")) : NULL;

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(op->cf, "jx:%s", id);

    while (b->len < max) {
        vw_args_reset(&a);
        vw_args_adds(&a, "LRANGE");
        vw_args_adds(&a, key);
        vw_args_addi(&a, *index);
        vw_args_addi(&a, *index + 15);

        r = vw_op_run(op, &a, e);

        if (r == NULL) {
            free(key);
            vw_args_free(&a);
            json_decref(job);
            return -1;
        }

        for (i = 0; i < r->elements; i++) {
            if (pattern == NULL) {
                vw_buf_add(b, r->element[i]->str, r->element[i]->len);
                continue;
            }

            /* one code a line, shown in the pattern */
            for (line = r->element[i]->str; *line; line = eol) {
                eol = line + strcspn(line, "\n");
                n = voucher_code_display(line, (size_t) (eol - line),
                                         pattern, shown, sizeof(shown));

                if (n) {
                    vw_buf_add(b, shown, n);

                } else {
                    vw_buf_add(b, line, (size_t) (eol - line));
                }

                vw_buf_addc(b, '\n');

                if (*eol) {
                    eol++;
                }
            }
        }

        *index += (int64_t) r->elements;
        n = r->elements;
        freeReplyObject(r);

        *more = n == 16;

        if (!*more) {
            break;
        }
    }

    free(key);
    vw_args_free(&a);
    json_decref(job);

    return 0;
}
