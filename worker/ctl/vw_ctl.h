
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherctl: what its commands share.  Each command group lives in its
 * own file (vw_ctl_<group>.c); voucherctl.c dispatches.
 */


#ifndef _VW_CTL_H_INCLUDED_
#define _VW_CTL_H_INCLUDED_


#include <stdio.h>

#include <hiredis/hiredis.h>

#include "voucher_code.h"
#include "vw_config.h"
#include "vw_job.h"
#include "vw_op.h"
#include "vw_redis.h"


/* exit codes: 0 done, 1 refused or failed, 2 usage */
#define VW_EXIT_OK     0
#define VW_EXIT_FAIL   1
#define VW_EXIT_USAGE  2

/* what a phase of an import leaves to do */
#define VW_PHASE_GO        0        /* on to the next one */
#define VW_PHASE_REJECTED  1        /* the file is refused: nothing written */
#define VW_PHASE_FAILED    2        /* stop; what failed is said */


typedef struct {
    const char    *name;            /* "--count" */
    int            arg;             /* takes a value */
    const char    *value;           /* NULL: not given */
    int            given;
} vw_opt_t;


typedef struct {
    const char    *config_path;
    vw_config_t    cf;
    redisContext  *redis;
    unsigned char  key[VOUCHER_KEY_LEN];
    int            have_key;
    int            status;          /* of the last operation that failed */
    char           reason[48];
    char           err[1024];
} vw_ctl_t;


typedef int (*vw_cmd_pt)(vw_ctl_t *ctl, int argc, char **argv);


/*
 * Splits argv into options (--name value, --name=value) and positional
 * arguments; "--" ends the options.  Returns the number of positionals
 * (in pos), or -1 after printing what is wrong.
 */
int vw_opts(int argc, char **argv, vw_opt_t *opts, char **pos, int maxpos,
    const char *usage);

const char *vw_opt(vw_opt_t *opts, const char *name);

/* an option as an integer in min..max; def when absent; -1 if bad */
int vw_opt_int(vw_opt_t *opts, const char *name, int64_t min, int64_t max,
    int64_t def, int64_t *out);

/* connects on first use; NULL after printing why */
redisContext *vw_ctl_redis(vw_ctl_t *ctl);
/* for a command that only reads: a replica in sync, else the master */
redisContext *vw_ctl_redis_read(vw_ctl_t *ctl);

/* the MAC key from key_file, loaded on first use; -1 after printing */
int vw_ctl_key(vw_ctl_t *ctl);

/* "ERR invalid_field x: why" -> "invalid_field x: why" */
const char *vw_strip_err(const char *s);

/*
 * Runs an admin operation (worker/ops) with this input; query and body may
 * be NULL.  VW_EXIT_OK with *out set, or VW_EXIT_FAIL after printing
 * "what: reason message" (ctl->status and ctl->reason say which).
 */
int vw_ctl_op_run(vw_ctl_t *ctl, vw_op_pt fn, const char *what,
    const char *id, json_t *query, json_t *body, json_t **out);

/* an operation's context: the configuration, who, Redis, the key; -1 */
int vw_ctl_op_init(vw_ctl_t *ctl, vw_op_t *op);

/*
 * Runs a job in-process (worker/ops/vw_job.h): with a record in Redis
 * (j's kind, params, total, phase, keep and input) held by this process,
 * or local (record 0).  A progress bar on stderr when it is a
 * terminal; SIGINT and SIGTERM cancel it.  Errors and the reason are
 * printed as "what: ...".  The exit code.
 */
int vw_ctl_job(vw_ctl_t *ctl, vw_job_t *j, int record, const char *what);
/* a job's parameters checked as the API checks them: an exit code */
int vw_job_params(vw_ctl_t *ctl, const char *what,
    int (*check)(vw_op_t *op, vw_op_in_t *in, json_t **params,
                 vw_operr_t *e),
    json_t *body, json_t **params);

/* the job queued for voucherd instead: its id printed (--detach) */
int vw_ctl_job_detach(vw_ctl_t *ctl, vw_job_t *j, const char *what);

/* JSON on stdout: indented, or one line */
void vw_ctl_print(json_t *o, int compact);

/* FIELD VALUE... as an object of strings */
json_t *vw_ctl_pairs(int argc, char **argv);

/*
 * "GROUP VERB ..." of the operations table (vw_ctl_ops.c): the exit code,
 * or -1 when the group has no such verb.
 */
int vw_ctl_ops_cmd(vw_ctl_t *ctl, const char *group, int argc, char **argv);

/* the lines of the operations of a group, for its usage */
void vw_ctl_op_usage(const char *group);

void vw_ctl_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));


int vw_cmd_campaign(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_key(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_library(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_codes(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_series(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_members(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_segment(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_report(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_liability(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_auto(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_events(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_audit(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_settings(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_job(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_webhook(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_qr(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_loyalty(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_wallet(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_qualify(vw_ctl_t *ctl, int argc, char **argv);


#endif /* _VW_CTL_H_INCLUDED_ */
