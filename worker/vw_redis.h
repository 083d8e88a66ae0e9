
/*
 * Copyright (C) ngx_voucher authors
 *
 * Redis for the worker: hiredis' synchronous API (the worker is not
 * nginx and may block), connection from the configuration, argument
 * vectors for FCALL and pipelines, and the function library.
 */


#ifndef _VW_REDIS_H_INCLUDED_
#define _VW_REDIS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "vw_config.h"


typedef struct {
    int            n;
    int            cap;
    char         **v;
    size_t        *len;
} vw_args_t;


void vw_args_add(vw_args_t *a, const char *s, size_t len);
void vw_args_adds(vw_args_t *a, const char *s);
void vw_args_addf(vw_args_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void vw_args_addi(vw_args_t *a, int64_t n);
void vw_args_reset(vw_args_t *a);
void vw_args_free(vw_args_t *a);

/* appends the command to the pipeline of c; 0 or -1 */
int vw_redis_append(redisContext *c, const vw_args_t *a);

/* runs one command: the reply (freeReplyObject) or NULL, err set */
redisReply *vw_redis_run(redisContext *c, const vw_args_t *a, char *err,
    size_t errlen);

/* the next reply of a pipeline, or NULL with err set */
redisReply *vw_redis_get(redisContext *c, char *err, size_t errlen);

/* NULL when r is a reply that is not an error; else err gets the text */
int vw_redis_failed(redisContext *c, redisReply *r, char *err,
    size_t errlen);

/*
 * Connects (to the master a Sentinel names, when the configuration lists
 * Sentinels: each connection asks anew), AUTHs, SELECTs, refuses a node
 * whose ROLE is not master, and checks the function library: loads it as
 * the primary when Redis has none, and leaves another version's primary
 * as it is (voucherctl library promote replaces it; both the worker and
 * nginx embed common/voucher_lua.h).
 */
redisContext *vw_redis_connect(const vw_config_t *cf, char *err,
    size_t errlen);

/*
 * With Sentinel: whether it now names another master than the one c is
 * connected to.  Asks at most every VW_REDIS_SENTINEL_POLL_MS; 0 when no
 * Sentinel answers.
 */
#define VW_REDIS_SENTINEL_POLL_MS  500

int vw_redis_moved(const vw_config_t *cf, redisContext *c);

/*
 * Reads on replicas, one rule for voucherctl and the admin API: a replica
 * may answer when it is a replica whose link to the master is up
 * and not in its first sync, its library is this version, and it has
 * applied every write the master had made when master_offset (its
 * master_repl_offset, vw_redis_master_offset()) was read: so a read sees
 * every write acknowledged before it was asked for.  Whether c is such a
 * replica; why says why not.
 */
int64_t vw_redis_master_offset(redisContext *master);
int vw_redis_replica_ready(redisContext *c, int64_t master_offset,
    char *why, size_t whylen);

/*
 * A replica of the configuration's "replicas" ready as above, tried in
 * turn from the one at index first; *used gets its index.  NULL if none.
 */
redisContext *vw_redis_connect_replica(const vw_config_t *cf, int first,
    int64_t master_offset, int *used, char *err, size_t errlen);

/* for commands that only read: such a replica, else the master */
redisContext *vw_redis_connect_read(const vw_config_t *cf, char *err,
    size_t errlen);

/*
 * Whether an error text (a reply's, or one of ours that quotes it) says
 * the node cannot take writes now: READONLY, LOADING, MASTERDOWN,
 * CLUSTERDOWN, or vw_redis_connect()'s refusal of a non-master.  The
 * command did not run; a new connection may reach the master.
 */
int vw_redis_unready(const char *err);

/*
 * The library built into the worker becomes the primary ("voucher"), in one
 * MULTI with the removal of its own "voucher_<version>"; 0 or -1 with err.
 */
int vw_redis_load_library(redisContext *c, char *err, size_t errlen);

/*
 * Removes every "voucher_<version>" library (nginx of other versions loaded
 * them beside the primary); fn gets each name.  How many, or -1 with err.
 */
int vw_redis_prune_libraries(redisContext *c, void (*fn)(const char *name),
    char *err, size_t errlen);

const char *vw_redis_library_version(void);

/* an integer reply, or a string of digits, as an int64; -1 if neither */
int vw_reply_int(const redisReply *r, int64_t *out);

/* a reply string (status, string, error, verbatim) or NULL */
const char *vw_reply_str(const redisReply *r);


#endif /* _VW_REDIS_H_INCLUDED_ */
