
/*
 * Copyright (C) ngx_voucher authors
 *
 * Jobs: long work (issuing codes, importing codes or members, exporting
 * codes, sending an automation to its segment) as a record in Redis
 * ({NS}:j:<id>, redis/lib/jobs.lua) that any runner may take and resume:
 * voucherd's job thread (the admin API and voucherctl --detach queue them),
 * or voucherctl itself, in-process, with a progress bar.  Each batch is
 * written together with the job's checkpoint in one call
 * (voucher_job_step), so a runner that dies, or is stopped, is resumed
 * exactly there.  A job without a record (an export, an import's check run
 * by voucherctl) is "local": the same code, its output to a file.
 * Documented in docs/admin-api.md#jobs.
 */


#ifndef _VW_JOB_H_INCLUDED_
#define _VW_JOB_H_INCLUDED_


#include <signal.h>
#include <stdio.h>

#include "vw_op.h"
#include "vw_util.h"


/* what vw_job_run came to */
#define VW_JOB_DONE       0
#define VW_JOB_FAILED     1         /* j->e says why; j->errors the lines */
#define VW_JOB_CANCELLED  2
#define VW_JOB_RELEASED   3         /* stopped; given back to be resumed */
#define VW_JOB_LOST       4         /* Redis failed, or another runner has
                                       it: its lease decides who goes on */

#define VW_JOB_ERRORS     20        /* lines reported, then it gives up */


typedef struct vw_job_s  vw_job_t;

struct vw_job_s {
    vw_op_t                *op;         /* Redis, configuration, who, key */
    char                    id[32];     /* "": local, no record */
    char                    kind[24];   /* "codes.issue", ... */
    char                    owner[96];
    int64_t                 lease_ms;
    json_t                 *params;
    char                    phase[8];   /* imports: "check", "write" */
    int64_t                 done;
    int64_t                 total;      /* -1: not known */
    int64_t                 seq;        /* the next step */
    char                    cursor[64];
    int                     keep;       /* the output is kept in Redis */
    char                   *input;      /* an import's file */
    size_t                  input_len;

    FILE                   *out;        /* output here too, or NULL */

    /* what it came to */
    json_t                 *errors;     /* [{"line", "message"}] */
    int                     ended;      /* the record ended already */
    json_t                 *result;     /* a summary object */
    vw_operr_t              e;          /* why it failed */

    volatile sig_atomic_t  *stop;       /* the process stops */
    int                     stop_cancels;   /* voucherctl: a stop cancels;
                                               voucherd gives the job back */
    void                  (*progress)(vw_job_t *j);
    void                   *data;
};


/* the job's input checked, and the job queued (owner "") or held */

int vw_job_create(vw_op_t *op, const char *kind, json_t *params,
    int64_t total, const char *phase, int keep, const char *input,
    size_t len, const char *owner, int64_t lease_ms, char *id,
    size_t idsize, vw_operr_t *e);

/* the next job a runner may take into j (zeroed first): 1, 0 none, -1 */
int vw_job_claim(vw_op_t *op, const char *owner, int64_t lease_ms,
    vw_job_t *j, vw_operr_t *e);

/*
 * Runs j from its checkpoint to its end, and ends its record so: done,
 * failed (j->e, j->errors), cancelled, given back (j->stop), or lost.
 */
int vw_job_run(vw_job_t *j);

void vw_job_free(vw_job_t *j);

/* a line of the input refused: j->errors grows; its count */
size_t vw_job_say(vw_job_t *j, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* the job as the API shows it, or NULL (404 not_found) */
json_t *vw_job_read(vw_op_t *op, const char *id, vw_operr_t *e);

/*
 * The kinds, each in two parts: a check of its parameters (in->body; the
 * CLI's names "--mac-length" when !in->strict) that fills what the job
 * runs with, and the run.
 */
int vw_job_issue_check(vw_op_t *op, vw_op_in_t *in, json_t **params,
    vw_operr_t *e);
int vw_job_export_check(vw_op_t *op, vw_op_in_t *in, json_t **params,
    vw_operr_t *e);
int vw_job_import_check(vw_op_t *op, vw_op_in_t *in, json_t **params,
    vw_operr_t *e);
int vw_job_members_check(vw_op_t *op, vw_op_in_t *in, json_t **params,
    vw_operr_t *e);
int vw_job_send_check(vw_op_t *op, vw_op_in_t *in, json_t **params,
    vw_operr_t *e);

int vw_job_issue_run(vw_job_t *j);
int vw_job_export_run(vw_job_t *j);
int vw_job_import_run(vw_job_t *j);
int vw_job_members_run(vw_job_t *j);
int vw_job_send_run(vw_job_t *j);

/* what the runs share: a step, a heartbeat, its end */

/*
 * Appends one voucher_job_step (a record) or the bare op (local: "FCALL
 * voucher_<op> 1 key"), to be read by vw_job_step_reply.
 */
int vw_job_step_send(vw_job_t *j, const char *key, int64_t seq,
    const char *cursor, int64_t add, const char *out, const char *opname,
    vw_args_t *args);

/*
 * The reply of a step: VW_JOB_DONE (*inner the op's reply, to free with
 * *r), VW_JOB_CANCELLED, VW_JOB_FAILED (e: the op refused, or the
 * campaign is gone) or VW_JOB_LOST.
 */
int vw_job_step_reply(vw_job_t *j, redisReply **r, redisReply **inner);

/* progress without writes: lease renewed; VW_JOB_DONE, _CANCELLED, _LOST */
int vw_job_beat(vw_job_t *j);

/* whether the process asked the job to stop */
int vw_job_stopping(vw_job_t *j);

/* what a stop comes to: cancelled (voucherctl) or given back (voucherd) */
int vw_job_halt(vw_job_t *j);

/* an error reply without its "ERR " */
const char *vw_job_err_text(const char *s);

/* the n replies still due after a failure, read and dropped */
void vw_job_drain(vw_job_t *j, size_t n);


/* the job operations of the API and voucherctl */

int vw_op_job_issue(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_job_export(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_job_import(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_job_members(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_job_send(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);

/* a new job, answered as the API shows it: 202 */
int vw_job_queue(vw_op_t *op, const char *kind, json_t *params,
    int64_t total, const char *phase, int keep, vw_op_in_t *in,
    json_t **out, vw_operr_t *e);
int vw_op_job_get(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_job_list(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_job_cancel(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);

/*
 * A page of a job's output: chunks from *index on, about max bytes, into
 * b; *index moves on, *more says whether chunks are left.  The codes of
 * codes.issue are shown in its pattern.  404 not_found, 409
 * job_not_finished.
 */
int vw_job_output(vw_op_t *op, const char *id, int64_t *index, size_t max,
    vw_buf_t *b, int *more, vw_operr_t *e);


#endif /* _VW_JOB_H_INCLUDED_ */
