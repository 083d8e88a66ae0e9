
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

/* the MAC key from key_file, loaded on first use; -1 after printing */
int vw_ctl_key(vw_ctl_t *ctl);

/* a flat field/value reply as a JSON object; integers stay integers */
struct json_t *vw_pairs_to_json(const redisReply *r);

/* "ERR invalid_field x: why" -> "invalid_field x: why" */
const char *vw_strip_err(const char *s);

void vw_ctl_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));


int vw_cmd_campaign(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_key(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_library(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_codes(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_members(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_segment(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_report(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_auto(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_events(vw_ctl_t *ctl, int argc, char **argv);
int vw_cmd_qr(vw_ctl_t *ctl, int argc, char **argv);


#endif /* _VW_CTL_H_INCLUDED_ */
