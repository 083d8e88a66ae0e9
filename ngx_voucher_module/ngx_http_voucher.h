
/*
 * Copyright (C) ngx_voucher authors
 *
 * Types shared by the files of ngx_http_voucher_module.
 */


#ifndef _NGX_HTTP_VOUCHER_H_INCLUDED_
#define _NGX_HTTP_VOUCHER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_voucher_parse.h"
#include "ngx_http_voucher_ok.h"


typedef struct ngx_http_voucher_pool_s  ngx_http_voucher_pool_t;
typedef struct ngx_http_voucher_op_s    ngx_http_voucher_op_t;
typedef struct ngx_http_voucher_keys_s  ngx_http_voucher_keys_t;


typedef struct ngx_http_voucher_sentinel_s  ngx_http_voucher_sentinel_t;


/* an address resolved when the configuration is read */
typedef struct {
    ngx_str_t                   text;        /* as configured, for logs */
    ngx_str_t                   host;        /* numeric address, NUL-ended */
    in_port_t                   port;
} ngx_http_voucher_addr_t;


/* a Redis: where it is and how to talk to it */
typedef struct {
    ngx_str_t                   name;        /* voucher_store's, or empty */
    ngx_str_t                   addr_text;   /* as configured, for logs */
    ngx_str_t                   host;        /* numeric address, NUL-ended */
    in_port_t                   port;
    ngx_str_t                   unix_path;   /* NUL-ended, or empty */
    ngx_int_t                   db;
    ngx_str_t                   user;
    ngx_str_t                   password;    /* never logged */
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  timeout;
    ngx_uint_t                  connections;
    ngx_uint_t                  max_pending;

    /* durability=replicated: WAIT 1 <replica_timeout> after each batch */
    ngx_flag_t                  replicated;
    ngx_msec_t                  replica_timeout;

    /* replicas=: where validates without limits may go (a pool each) */
    ngx_array_t                *replicas;    /* ngx_http_voucher_addr_t */
    ngx_flag_t                  replicas_sentinel;  /* as Sentinel knows */

    /* the master as Sentinel names it, instead of host and port */
    ngx_array_t                *sentinels;   /* ngx_http_voucher_addr_t */
    ngx_str_t                   master_name;
    ngx_str_t                   sentinel_password;   /* never logged */

    ngx_http_voucher_pool_t    *pool;        /* this worker's connections */
    ngx_uint_t                  metrics_slot; /* in voucher_metrics' zone */
} ngx_http_voucher_store_t;


/* http{} level */
typedef struct {
    ngx_http_voucher_store_t    store;       /* voucher_redis */
    ngx_flag_t                  configured;
    ngx_array_t                *stores;      /* voucher_store: pointers */

    ngx_shm_zone_t             *lockout_zone; /* voucher_lockout_cache */
    ngx_shm_zone_t             *hot_zone;     /* voucher_hot_cache */
    ngx_shm_zone_t             *settle_zone;  /* lost settlements, counted */
    ngx_shm_zone_t             *metrics_zone; /* voucher_metrics */
} ngx_http_voucher_main_conf_t;


typedef struct {
    ngx_int_t                   api;         /* NGX_HTTP_VOUCHER_OP_* or 0 */
    ngx_str_t                   ns;          /* key namespace: {ns}:... */
    ngx_http_voucher_store_t   *store;       /* the Redis it asks */
    ngx_str_t                   store_name;  /* voucher_store_use */
    size_t                      max_body_size;
    ngx_uint_t                  code_max_length;
    ngx_uint_t                  max_items;
    ngx_flag_t                  validate_fail_open;

    /* offline checks (ngx_http_voucher_code.c) */
    ngx_http_voucher_keys_t    *code_keys;
    ngx_array_t                *code_issued;
    ngx_array_t                *code_patterns;
    ngx_flag_t                  code_debug;

    /* attempt limits (ngx_http_voucher_limit.c) */
    ngx_array_t                *limits;
    ngx_uint_t                  limit_status;
    ngx_uint_t                  limit_log_level;
    ngx_flag_t                  limit_dry_run;

    /* reservations: the hold of voucher_api reserve and voucher_gate */
    ngx_msec_t                  hold;

    /* gate mode (ngx_http_voucher_gate.c) */
    ngx_int_t                   gate;        /* 0, OP_VALIDATE or OP_REDEEM */
    ngx_http_complex_value_t   *gate_code;
    ngx_http_complex_value_t   *gate_codes;      /* voucher_codes */
    ngx_int_t                   gate_codes_sep;  /* its separator */
    ngx_http_complex_value_t   *gate_customer;
    ngx_http_complex_value_t   *gate_amount;
    ngx_http_complex_value_t   *gate_currency;
    ngx_http_complex_value_t   *gate_order_id;
    ngx_http_complex_value_t   *gate_idempotency_key;
    ngx_http_complex_value_t   *gate_points;     /* loyalty points paying */
    ngx_array_t                *gate_meta;       /* voucher_metadata:
                                                    ngx_http_voucher_meta_t */
    ngx_flag_t                  gate_code_required;
    ngx_array_t                *gate_confirm;    /* ngx_uint_t pairs lo, hi */
    ngx_flag_t                  gate_abort_keep; /* voucher_client_abort */
    ngx_flag_t                  gate_body;       /* uses $voucher_body_* */
    ngx_array_t                *gate_fields;     /* ngx_str_t: the NAMEs */
} ngx_http_voucher_loc_conf_t;


/*
 * A limit's key as Redis and the lockout cache keep it: the key itself up to
 * NGX_HTTP_VOUCHER_LIMIT_KEY_MAX bytes, a digest of it when longer (see
 * ngx_http_voucher_limit_key()); at most NGX_HTTP_VOUCHER_LIMIT_KEY_LEN.
 */
#define NGX_HTTP_VOUCHER_LIMIT_KEY_MAX  64
#define NGX_HTTP_VOUCHER_LIMIT_KEY_LEN  65


/* a lockout limit of a location, for the lockout cache */
typedef struct {
    ngx_str_t                   name;        /* empty: not a lockout in scope */
    ngx_http_complex_value_t   *key;
} ngx_http_voucher_limit_info_t;


/*
 * An operation waiting for Redis.  It is malloc()ed, never taken from
 * r->pool: hiredis holds it as privdata until the reply (or the loss of
 * the connection) arrives, which may be long after the request is gone.
 * "data" is the waiting request's context, or NULL once detached.
 */

typedef void (*ngx_http_voucher_op_handler_pt)(ngx_http_voucher_op_t *op,
    void *reply, ngx_int_t rc);

struct ngx_http_voucher_op_s {
    void                           *data;
    ngx_http_voucher_op_handler_pt  handler;
    ngx_event_t                     timer;
    void                           *conn;
    ngx_http_voucher_pool_t        *pool;

    /* while no context is ready yet: the command waits in pool->waiting */
    ngx_queue_t                     queue;
    int                             argc;
    const char                    **argv;
    const size_t                   *argvlen;
    void                           *owned;   /* ngx_free()d with the op */
    void                           *held;    /* its reply, kept until a
                                                replica has it */
    ngx_uint_t                      wait;    /* the WAIT that covers it */
    unsigned                        queued:1;
    unsigned                        write:1;
    unsigned                        parked:1; /* answered, in conn->parked */
    unsigned                        native:1; /* sent as VOUCHER.* */
    uint64_t                        sent_us;  /* for voucher_metrics */
};


/*
 * A request on its way through the core (ngx_http_voucher_core.c): the
 * API's module context, a part of the gate's state.  The verdicts of the
 * preflight and of Redis' answer, each front door renders its own way.
 */

#define NGX_HTTP_VOUCHER_V_WAITING      0   /* the command is out */
#define NGX_HTTP_VOUCHER_V_REFUSED      1   /* reason, field, message */
#define NGX_HTTP_VOUCHER_V_LOCKED       2   /* limit, left: lockout cache */
#define NGX_HTTP_VOUCHER_V_NOT_FOUND    3   /* a guess no limit sees */
#define NGX_HTTP_VOUCHER_V_UNAVAILABLE  4   /* reason: Redis cannot answer */
#define NGX_HTTP_VOUCHER_V_ANSWER       5   /* Redis answered */
#define NGX_HTTP_VOUCHER_V_FAILED       6   /* 500 */

typedef struct ngx_http_voucher_core_s  ngx_http_voucher_core_t;

/*
 * Redis' answer (V_ANSWER: reply, and ok, or NULL when the reply is not of
 * the expected shape) or its absence (V_UNAVAILABLE), for the front door.
 */
typedef void (*ngx_http_voucher_answered_pt)(ngx_http_voucher_core_t *core,
    ngx_uint_t verdict, void *reply, ngx_http_voucher_ok_t *ok);

struct ngx_http_voucher_core_s {
    ngx_http_request_t             *request;
    ngx_http_voucher_loc_conf_t    *conf;
    ngx_http_voucher_op_t          *op;
    ngx_int_t                       api;      /* the op the answers name */
    ngx_http_voucher_answered_pt    answered;
    ngx_str_t                       code;     /* normalised */
    ngx_str_t                       limit_status; /* $voucher_limit_status */

    /* the verdict's details */
    const char                     *reason;
    const char                     *field;
    const char                     *message;
    ngx_str_t                       limit;    /* the lockout in force */
    int64_t                         left;     /* its ms to go */

    /* the hot code cache's answer (V_ANSWER from the preflight) */
    void                           *hot;
    ngx_http_voucher_ok_t           hot_ok;

    void                           *cmd;      /* kept while a replica has
                                                 it, for the master */
    int64_t                         amount;   /* the order's */
    unsigned                        items:1;  /* it lists items */
    unsigned                        keyed:1;  /* with an idempotency key */
    unsigned                        replica:1; /* sent to a replica */
    unsigned                        guess:1;  /* refused offline */
    unsigned                        detach:1; /* the op goes with the
                                                 request */
};


/* a loyalty operation: it names a customer, not a code */
#define ngx_http_voucher_loyalty_op(op)                                      \
    ((op) >= NGX_HTTP_VOUCHER_OP_LOYALTY_EARN)


/* op handler rc values */
#define NGX_HTTP_VOUCHER_REPLY       0    /* reply holds Redis' answer */
#define NGX_HTTP_VOUCHER_LOST        1    /* connection lost, outcome unknown */
#define NGX_HTTP_VOUCHER_TIMEDOUT    2    /* our timer fired first */
#define NGX_HTTP_VOUCHER_REFUSED     3    /* the node cannot take writes
                                             (READONLY, LOADING, ...):
                                             the command did not run */


ngx_int_t ngx_http_voucher_redis_init_worker(ngx_cycle_t *cycle,
    ngx_http_voucher_store_t *store);
void ngx_http_voucher_redis_exit_worker(ngx_http_voucher_store_t *store);

/* the master's address learnt from Sentinel: host is numeric, NUL-ended */
typedef void (*ngx_http_voucher_master_pt)(void *data, u_char *host,
    in_port_t port);

ngx_http_voucher_sentinel_t *ngx_http_voucher_sentinel_start(
    ngx_cycle_t *cycle, ngx_http_voucher_store_t *store,
    ngx_http_voucher_master_pt handler, void *data);
void ngx_http_voucher_sentinel_watch_replicas(ngx_http_voucher_sentinel_t *s,
    ngx_http_voucher_master_pt handler);
void ngx_http_voucher_sentinel_ask(ngx_http_voucher_sentinel_t *s);
void ngx_http_voucher_sentinel_stop(ngx_http_voucher_sentinel_t *s);
/* a command that writes what must survive a failover: a redemption */
#define NGX_HTTP_VOUCHER_SEND_WRITE  0x01

ngx_http_voucher_op_t *ngx_http_voucher_redis_send(
    ngx_http_voucher_pool_t *pool, int argc, const char **argv,
    const size_t *argvlen, ngx_http_voucher_op_handler_pt handler,
    void *data, ngx_uint_t flags);
ngx_http_voucher_op_t *ngx_http_voucher_redis_send_read(
    ngx_http_voucher_pool_t *pool, int argc, const char **argv,
    const size_t *argvlen, ngx_http_voucher_op_handler_pt handler,
    void *data);
void ngx_http_voucher_redis_detach(ngx_http_voucher_op_t *op);

ngx_int_t ngx_http_voucher_read_body(ngx_http_request_t *r, ngx_str_t *body,
    size_t max);
const char *ngx_http_voucher_idempotency_header(ngx_http_request_t *r,
    ngx_http_voucher_request_t *req);
ngx_uint_t ngx_http_voucher_preflight(ngx_http_voucher_core_t *core,
    ngx_http_voucher_request_t *req);

ngx_int_t ngx_http_voucher_api_handler(ngx_http_request_t *r);

/* voucher_metadata order|customer NAME VALUE: one entry of the "m..." arg */
typedef struct {
    u_char                      scope;       /* 'o' order, 'c' customer */
    ngx_str_t                   name;
    ngx_http_complex_value_t    value;
} ngx_http_voucher_meta_t;

#define NGX_HTTP_VOUCHER_GATE_META_MAX  32

char *ngx_http_voucher_gate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_voucher_gate_value(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_voucher_gate_codes(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_voucher_gate_meta(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_voucher_confirm_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_voucher_gate_merge(ngx_conf_t *cf,
    ngx_http_voucher_loc_conf_t *prev, ngx_http_voucher_loc_conf_t *conf);
ngx_int_t ngx_http_voucher_gate_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_voucher_gate_init(ngx_conf_t *cf);
ngx_str_t *ngx_http_voucher_gate_limit_status(ngx_http_request_t *r);
void ngx_http_voucher_gate_exit_worker(ngx_http_voucher_main_conf_t *vmcf);

char *ngx_http_voucher_code_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_voucher_code_key_previous(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_voucher_code_issued(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_voucher_code_pattern(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_voucher_code_merge(ngx_conf_t *cf,
    ngx_http_voucher_loc_conf_t *prev, ngx_http_voucher_loc_conf_t *conf);
char *ngx_http_voucher_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_voucher_limit_merge(ngx_conf_t *cf,
    ngx_http_voucher_loc_conf_t *prev, ngx_http_voucher_loc_conf_t *conf);
ngx_uint_t ngx_http_voucher_limit_nargs(ngx_http_voucher_loc_conf_t *vlcf);
ngx_int_t ngx_http_voucher_limit_op(ngx_int_t op);
ngx_int_t ngx_http_voucher_limit_args(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_int_t op, const char **argv,
    size_t *argvlen);
ngx_int_t ngx_http_voucher_limit_key(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, u_char *buf, ngx_str_t *key);
ngx_uint_t ngx_http_voucher_limit_lockout(ngx_http_voucher_loc_conf_t *vlcf,
    ngx_uint_t i, ngx_int_t op, ngx_http_voucher_limit_info_t *info);

char *ngx_http_voucher_lockout_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_voucher_lockout_check(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_int_t op, ngx_str_t *name,
    int64_t *left);
void ngx_http_voucher_lockout_learn(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_int_t op, ngx_str_t *name,
    int64_t ms);
char *ngx_http_voucher_hot_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_voucher_hot_check(ngx_http_voucher_core_t *core);
void ngx_http_voucher_hot_learn(ngx_http_voucher_core_t *core, void *reply);

ngx_int_t ngx_http_voucher_send_locked(ngx_http_request_t *r, ngx_int_t op,
    ngx_str_t *code, ngx_str_t *name, int64_t left);

ngx_int_t ngx_http_voucher_code_check(ngx_http_voucher_loc_conf_t *vlcf,
    u_char *code, size_t *len, const char **reason);
ngx_int_t ngx_http_voucher_code_check_serial(
    ngx_http_voucher_loc_conf_t *vlcf, u_char *code, size_t *len,
    const char **reason, ngx_str_t *series, uint64_t *serial);

ngx_int_t ngx_http_voucher_send_error(ngx_http_request_t *r,
    ngx_int_t op, const char *reason, const char *field,
    const char *message);
u_char *ngx_http_voucher_int64(u_char *p, int64_t n);
ngx_int_t ngx_http_voucher_send_reply(ngx_http_request_t *r, ngx_int_t op,
    void *reply, ngx_http_voucher_ok_t *ok);
ngx_int_t ngx_http_voucher_send_not_found(ngx_http_request_t *r,
    ngx_int_t op, u_char *code, size_t len);
ngx_int_t ngx_http_voucher_send_unverified(ngx_http_request_t *r,
    ngx_str_t *code);

ngx_int_t ngx_http_voucher_reason_index(u_char *p, size_t len);
ngx_str_t *ngx_http_voucher_reason_name(ngx_uint_t i);
ngx_int_t ngx_http_voucher_reason_slot(u_char *p, size_t len);
ngx_uint_t ngx_http_voucher_lockout_entries(
    ngx_http_voucher_main_conf_t *vmcf);


/*
 * voucher_metrics (ngx_http_voucher_metrics.c): counters in shared memory.
 * Every hook does nothing when no location has voucher_metrics.
 */

#define NGX_HTTP_VOUCHER_M_NO_SLOT    ((ngx_uint_t) -1)

/* request reasons: these, then ngx_http_voucher_reason_index() + TABLE */
#define NGX_HTTP_VOUCHER_M_R_OK          0
#define NGX_HTTP_VOUCHER_M_R_OTHER       1
#define NGX_HTTP_VOUCHER_M_R_UNVERIFIED  2
#define NGX_HTTP_VOUCHER_M_R_TABLE       3

/* ngx_http_voucher_metrics_count(what, i) */
#define NGX_HTTP_VOUCHER_M_OFFLINE          0  /* i: 0 malformed, 1 forged */
#define NGX_HTTP_VOUCHER_M_LIMIT            1  /* i: limit_slot() */
#define NGX_HTTP_VOUCHER_M_LOCKOUT_REFUSED  2
#define NGX_HTTP_VOUCHER_M_LOCKOUT_LEARNED  3
#define NGX_HTTP_VOUCHER_M_HOT              4
#define NGX_HTTP_VOUCHER_M_CONFIRM          5  /* i: SETTLE_* */
#define NGX_HTTP_VOUCHER_M_RELEASE          6

#define NGX_HTTP_VOUCHER_M_OFFLINE_N     2
#define NGX_HTTP_VOUCHER_M_LIMIT_N       6
#define NGX_HTTP_VOUCHER_M_SETTLE_N      3
#define NGX_HTTP_VOUCHER_M_SETTLE_STARTED  0
#define NGX_HTTP_VOUCHER_M_SETTLE_RETRIED  1
#define NGX_HTTP_VOUCHER_M_SETTLE_LOST     2

/* connection gauges */
#define NGX_HTTP_VOUCHER_M_CONN_DOWN        0
#define NGX_HTTP_VOUCHER_M_CONN_CONNECTING  1
#define NGX_HTTP_VOUCHER_M_CONN_UP          2
#define NGX_HTTP_VOUCHER_M_CONN_NONE        3

/* ngx_http_voucher_metrics_store_add(store, what, n) */
#define NGX_HTTP_VOUCHER_M_NATIVE        0
#define NGX_HTTP_VOUCHER_M_WAITING       1
#define NGX_HTTP_VOUCHER_M_TIMEOUT       2
#define NGX_HTTP_VOUCHER_M_RECONNECT     3

char *ngx_http_voucher_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_voucher_metrics_init_worker(ngx_http_voucher_main_conf_t *vmcf);
void ngx_http_voucher_metrics_request(ngx_int_t op, ngx_uint_t status,
    ngx_int_t reason);
ngx_int_t ngx_http_voucher_metrics_gate_op(ngx_int_t gate);
void ngx_http_voucher_metrics_count(ngx_uint_t what, ngx_uint_t i);
ngx_uint_t ngx_http_voucher_metrics_limit_slot(u_char *p, size_t len);
void ngx_http_voucher_metrics_conn(ngx_http_voucher_store_t *store,
    ngx_uint_t replica, ngx_uint_t from, ngx_uint_t to);
void ngx_http_voucher_metrics_store_add(ngx_http_voucher_store_t *store,
    ngx_uint_t what, ngx_int_t n);
uint64_t ngx_http_voucher_metrics_now(void);
void ngx_http_voucher_metrics_latency(ngx_http_voucher_store_t *store,
    ngx_uint_t native, uint64_t start);


extern ngx_module_t  ngx_http_voucher_module;


#endif /* _NGX_HTTP_VOUCHER_H_INCLUDED_ */
