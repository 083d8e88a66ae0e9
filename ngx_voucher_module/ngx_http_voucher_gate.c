
/*
 * Copyright (C) ngx_voucher authors
 *
 * Gate mode: the code of a request on its way to any upstream is checked
 * (voucher_gate validate) or reserved (voucher_gate redeem) in the
 * precontent phase, after access and auth.  A reservation is confirmed
 * when the response's status says the order went through, and released
 * otherwise, or when the request ends without a response; if nginx dies
 * in between, Redis gives the uses back when the hold expires.  The
 * decision is taken in the log phase, when the response is known.
 *
 * A confirm or release Redis cannot take now is tried again until the
 * hold runs out, on a timer that is not cancelable: a worker that exits
 * gracefully (a reload, "nginx -s quit") stays until its settlements are
 * in Redis or their holds are over.  One that cannot be delivered is
 * logged at "error" with its redemption id and counted in shared memory
 * ($voucher_lost_confirms, $voucher_lost_releases).
 *
 * Several codes for one order (voucher_codes: a header with a separator,
 * or a JSON body array) go to Redis as one stack (voucher_stack), each
 * checked offline first; the parent redemption is what is confirmed or
 * released.
 *
 * The gate's state hangs on a cleanup of the request's pool, not on the
 * module context, which an internal redirect clears: the redirected
 * request finds the verdict already taken and is never counted twice.
 */


#include "ngx_http_voucher.h"

#include <hiredis/hiredis.h>

/* the names of this version's functions, not the library's text */
#define VOUCHER_LUA_NAMES_ONLY
#include "voucher_lua.h"
#include <jansson.h>


#define NGX_HTTP_VOUCHER_GATE_BODY      1   /* reading the body */
#define NGX_HTTP_VOUCHER_GATE_WAITING   2   /* waiting for Redis */
#define NGX_HTTP_VOUCHER_GATE_DONE      3   /* verdict taken */

/* a confirm or release is tried again after 0.25, 0.5, then every 1 s */
#define NGX_HTTP_VOUCHER_SETTLE_DELAY   250
#define NGX_HTTP_VOUCHER_SETTLE_MAX     1000


typedef struct {
    ngx_http_voucher_core_t       core;      /* conf: the gating location's */
    ngx_uint_t                    phase;
    ngx_int_t                     rc;        /* for the phase handler */
    ngx_int_t                     answer;    /* rc of a refusal sent */

    ngx_str_t                     status;    /* $voucher_status */
    ngx_str_t                     reason;
    ngx_str_t                     campaign;
    ngx_str_t                     discount;
    ngx_str_t                     amount_after;
    ngx_str_t                     redemption_id;
    ngx_str_t                     hold_expires_at;
    ngx_str_t                     points_used;   /* loyalty points paying */
    ngx_str_t                     points_value;
    ngx_str_t                     amount_due;

    json_t                       *body;      /* parsed for $voucher_body_ */

    ngx_msec_t                    deadline;  /* the hold is surely over */

    unsigned                      body_parsed:1;
    unsigned                      held:1;
    unsigned                      settled:1;
    unsigned                      counted:1;  /* in voucher_metrics */
} ngx_http_voucher_gate_t;


/* a confirm or release on its own, after (or without) its request */
typedef struct {
    ngx_event_t                     timer;    /* the next try */
    ngx_queue_t                     queue;    /* in ngx_http_voucher_settling */
    ngx_http_voucher_main_conf_t   *vmcf;
    ngx_http_voucher_store_t       *store;    /* the location's */
    ngx_http_voucher_op_t          *op;       /* the try in flight */
    ngx_msec_t                      deadline; /* ngx_current_msec */
    ngx_uint_t                      tries;    /* failed so far */
    ngx_uint_t                      confirm;
    ngx_str_t                       ns;
    ngx_str_t                       id;
    const char                     *argv[7];
    size_t                          argvlen[7];
    /* followed by the key, "{ns}:log", and the id */
} ngx_http_voucher_settle_t;


/* in shared memory: what could not be delivered, for every worker */
typedef struct {
    ngx_atomic_t                    lost_confirms;
    ngx_atomic_t                    lost_releases;
} ngx_http_voucher_settle_sh_t;


typedef struct {
    ngx_str_t                     name;
    size_t                        offset;
} ngx_http_voucher_gate_var_t;


static ngx_http_voucher_gate_t *ngx_http_voucher_gate_get(
    ngx_http_request_t *r);
static ngx_http_voucher_gate_t *ngx_http_voucher_gate_create(
    ngx_http_request_t *r, ngx_http_voucher_loc_conf_t *vlcf);
static void ngx_http_voucher_gate_cleanup(void *data);
static ngx_int_t ngx_http_voucher_gate_handler(ngx_http_request_t *r);
static void ngx_http_voucher_gate_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_voucher_gate_start(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g);
static ngx_int_t ngx_http_voucher_gate_parse_body(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g);
static ngx_int_t ngx_http_voucher_gate_fields(ngx_conf_t *cf,
    ngx_http_voucher_loc_conf_t *conf);
static ngx_int_t ngx_http_voucher_gate_body_keys(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g);
static ngx_uint_t ngx_http_voucher_gate_variant(json_t *obj, u_char *name,
    size_t len);
static ngx_int_t ngx_http_voucher_gate_values(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, ngx_http_voucher_request_t *req);
static ngx_int_t ngx_http_voucher_gate_codes_value(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_limits_t *lim,
    ngx_http_voucher_request_t *req, ngx_http_voucher_error_t *err);
static ngx_int_t ngx_http_voucher_gate_meta_value(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, ngx_http_voucher_request_t *req);
static ngx_int_t ngx_http_voucher_gate_text(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_uint_t row,
    ngx_http_voucher_limits_t *lim, ngx_http_voucher_str_t *out,
    ngx_http_voucher_error_t *err);
static ngx_int_t ngx_http_voucher_gate_discard(ngx_http_request_t *r);
static void ngx_http_voucher_gate_abandon(ngx_http_voucher_gate_t *g);
static ngx_int_t ngx_http_voucher_gate_refuse(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, const char *reason, const char *field,
    const char *message);
static ngx_int_t ngx_http_voucher_gate_pass(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, const char *status);
static ngx_int_t ngx_http_voucher_gate_render(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, ngx_uint_t verdict, void *reply,
    ngx_http_voucher_ok_t *ok);
static void ngx_http_voucher_gate_answered(ngx_http_voucher_core_t *core,
    ngx_uint_t verdict, void *reply, ngx_http_voucher_ok_t *ok);
static ngx_str_t *ngx_http_voucher_gate_field(redisReply *reply,
    ngx_http_voucher_ok_t *ok, ngx_uint_t field, ngx_str_t *out,
    ngx_pool_t *pool);
static ngx_str_t *ngx_http_voucher_gate_pair(redisReply *reply,
    ngx_http_voucher_ok_t *ok, ngx_str_t *name, ngx_str_t *out,
    ngx_pool_t *pool);
static ngx_str_t *ngx_http_voucher_gate_copy(redisReply *v, ngx_str_t *out,
    ngx_pool_t *pool);
static ngx_int_t ngx_http_voucher_gate_verdict(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, redisReply *reply, ngx_http_voucher_ok_t *ok);
static ngx_int_t ngx_http_voucher_gate_unavailable(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, const char *reason);
static void ngx_http_voucher_gate_resume(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, ngx_int_t rc);
static void ngx_http_voucher_gate_orphan_handler(ngx_http_voucher_op_t *op,
    void *reply, ngx_int_t rc);
static void ngx_http_voucher_gate_settle(ngx_http_voucher_main_conf_t *vmcf,
    ngx_http_voucher_store_t *store, ngx_str_t *ns, ngx_str_t *id,
    ngx_uint_t confirm, ngx_msec_t deadline, ngx_log_t *log);
static void ngx_http_voucher_settle_send(ngx_http_voucher_settle_t *s);
static void ngx_http_voucher_settle_retry(ngx_http_voucher_settle_t *s);
static void ngx_http_voucher_settle_lost(ngx_http_voucher_settle_t *s,
    ngx_str_t *why);
static ngx_int_t ngx_http_voucher_settle_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_voucher_settle_timer(ngx_event_t *ev);
static void ngx_http_voucher_settle_handler(ngx_http_voucher_op_t *op,
    void *reply, ngx_int_t rc);
static ngx_uint_t ngx_http_voucher_gate_confirms(
    ngx_http_voucher_loc_conf_t *vlcf, ngx_uint_t status);
static ngx_int_t ngx_http_voucher_gate_log_handler(ngx_http_request_t *r);
static void ngx_http_voucher_gate_count(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g);
static ngx_uint_t ngx_http_voucher_gate_grpc_ok(ngx_http_request_t *r);
static ngx_int_t ngx_http_voucher_gate_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_voucher_body_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_voucher_body_list(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, json_t *node);
static ngx_int_t ngx_http_voucher_lost_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/* this worker's settlements not yet answered by Redis */
static ngx_queue_t  ngx_http_voucher_settling;


static ngx_http_voucher_gate_var_t  ngx_http_voucher_gate_vars[] = {
    { ngx_string("voucher_status"),
      offsetof(ngx_http_voucher_gate_t, status) },
    { ngx_string("voucher_reason"),
      offsetof(ngx_http_voucher_gate_t, reason) },
    { ngx_string("voucher_campaign"),
      offsetof(ngx_http_voucher_gate_t, campaign) },
    { ngx_string("voucher_discount"),
      offsetof(ngx_http_voucher_gate_t, discount) },
    { ngx_string("voucher_amount_after"),
      offsetof(ngx_http_voucher_gate_t, amount_after) },
    { ngx_string("voucher_redemption_id"),
      offsetof(ngx_http_voucher_gate_t, redemption_id) },
    { ngx_string("voucher_hold_expires_at"),
      offsetof(ngx_http_voucher_gate_t, hold_expires_at) },
    { ngx_string("voucher_points_used"),
      offsetof(ngx_http_voucher_gate_t, points_used) },
    { ngx_string("voucher_points_value"),
      offsetof(ngx_http_voucher_gate_t, points_value) },
    { ngx_string("voucher_amount_due"),
      offsetof(ngx_http_voucher_gate_t, amount_due) },
    { ngx_null_string, 0 }
};


/* the answer's pairs the gate keeps in variables (points paying) */
static struct {
    ngx_str_t   name;
    size_t      offset;
} ngx_http_voucher_gate_pairs[] = {
    { ngx_string("points_used"),
      offsetof(ngx_http_voucher_gate_t, points_used) },
    { ngx_string("points_value"),
      offsetof(ngx_http_voucher_gate_t, points_value) },
    { ngx_string("amount_due"),
      offsetof(ngx_http_voucher_gate_t, amount_due) },
    { ngx_null_string, 0 }
};


/* ------------------------------------------------------------ directives */


/* voucher_gate off | validate | redeem */

char *
ngx_http_voucher_gate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    ngx_str_t  *value;

    if (vlcf->gate != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        vlcf->gate = 0;

    } else if (ngx_strcmp(value[1].data, "validate") == 0) {
        vlcf->gate = NGX_HTTP_VOUCHER_OP_VALIDATE;

    } else if (ngx_strcmp(value[1].data, "redeem") == 0) {
        vlcf->gate = NGX_HTTP_VOUCHER_OP_REDEEM;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"voucher_gate\", it "
                           "must be \"off\", \"validate\" or \"redeem\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * voucher_code, voucher_customer, ...: any nginx value.  A value that
 * names $voucher_body_... makes the gate read and parse the body first.
 */

char *
ngx_http_voucher_gate_value(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    char       *rv;
    ngx_str_t  *value;

    rv = ngx_http_set_complex_value_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    value = cf->args->elts;

    if (ngx_strlcasestrn(value[1].data, value[1].data + value[1].len,
                         (u_char *) "voucher_body_",
                         sizeof("voucher_body_") - 2)
        != NULL)
    {
        vlcf->gate_body = 1;
    }

    return NGX_CONF_OK;
}


/*
 * voucher_metadata order|customer NAME VALUE: the order's metadata or the
 * customer's attributes campaign conditions look at (redis/lib/rules.lua)
 */

char *
ngx_http_voucher_gate_meta(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    u_char                             c;
    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_http_voucher_meta_t           *m;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    if (vlcf->gate_meta == NULL) {
        vlcf->gate_meta = ngx_array_create(cf->pool, 4,
                                           sizeof(ngx_http_voucher_meta_t));
        if (vlcf->gate_meta == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (vlcf->gate_meta->nelts == NGX_HTTP_VOUCHER_GATE_META_MAX) {
        return "takes at most 32 names in one location";
    }

    m = ngx_array_push(vlcf->gate_meta);
    if (m == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_strcmp(value[1].data, "order") == 0) {
        m->scope = 'o';

    } else if (ngx_strcmp(value[1].data, "customer") == 0) {
        m->scope = 'c';

    } else {
        return "takes \"order\" or \"customer\" first";
    }

    if (value[2].len == 0
        || value[2].len > NGX_HTTP_VOUCHER_MAX_META_NAME)
    {
        return "takes a name of 1 to 32 letters, digits or _";
    }

    for (i = 0; i < value[2].len; i++) {
        c = value[2].data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_'))
        {
            return "takes a name of 1 to 32 letters, digits or _";
        }
    }

    m->name = value[2];

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
    ccv.cf = cf;
    ccv.value = &value[3];
    ccv.complex_value = &m->value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_strlcasestrn(value[3].data, value[3].data + value[3].len,
                         (u_char *) "voucher_body_",
                         sizeof("voucher_body_") - 2)
        != NULL)
    {
        vlcf->gate_body = 1;
    }

    return NGX_CONF_OK;
}


/* voucher_codes VALUE [separator=C] */

char *
ngx_http_voucher_gate_codes(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    if (vlcf->gate_codes) {
        return "is duplicate";
    }

    value = cf->args->elts;

    vlcf->gate_codes_sep = ',';

    if (cf->args->nelts == 3) {
        if (value[2].len != sizeof("separator=") - 1 + 1
            || ngx_strncmp(value[2].data, "separator=",
                           sizeof("separator=") - 1)
               != 0
            || value[2].data[value[2].len - 1] <= 0x20
            || value[2].data[value[2].len - 1] >= 0x7f)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"voucher_codes\": use separator=C, one "
                               "printable character", &value[2]);
            return NGX_CONF_ERROR;
        }

        vlcf->gate_codes_sep = value[2].data[value[2].len - 1];
    }

    vlcf->gate_codes = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (vlcf->gate_codes == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = vlcf->gate_codes;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_strlcasestrn(value[1].data, value[1].data + value[1].len,
                         (u_char *) "voucher_body_",
                         sizeof("voucher_body_") - 2)
        != NULL)
    {
        vlcf->gate_body = 1;
    }

    return NGX_CONF_OK;
}


/* voucher_confirm_status 2xx 304 ... */

char *
ngx_http_voucher_confirm_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t   i, *range;

    if (vlcf->gate_confirm != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    vlcf->gate_confirm = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                          2 * sizeof(ngx_uint_t));
    if (vlcf->gate_confirm == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        range = ngx_array_push(vlcf->gate_confirm);
        if (range == NULL) {
            return NGX_CONF_ERROR;
        }

        if (value[i].len == 3
            && value[i].data[0] >= '1' && value[i].data[0] <= '5'
            && (value[i].data[1] | 0x20) == 'x'
            && (value[i].data[2] | 0x20) == 'x')
        {
            range[0] = (value[i].data[0] - '0') * 100;
            range[1] = range[0] + 99;
            continue;
        }

        n = ngx_atoi(value[i].data, value[i].len);

        if (n < 100 || n > 599) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid status \"%V\" in "
                               "\"voucher_confirm_status\": use 100 to 599 "
                               "or a class such as 2xx", &value[i]);
            return NGX_CONF_ERROR;
        }

        range[0] = n;
        range[1] = n;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_voucher_gate_merge(ngx_conf_t *cf, ngx_http_voucher_loc_conf_t *prev,
    ngx_http_voucher_loc_conf_t *conf)
{
    ngx_uint_t                    *range;
    ngx_http_voucher_main_conf_t  *vmcf;

    ngx_conf_merge_value(conf->gate, prev->gate, 0);
    ngx_conf_merge_msec_value(conf->hold, prev->hold, 300000);
    ngx_conf_merge_value(conf->gate_code_required, prev->gate_code_required,
                         0);
    ngx_conf_merge_value(conf->gate_abort_keep, prev->gate_abort_keep, 0);

    if (conf->hold < 1000 || conf->hold > 86400000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"voucher_hold_time\" must be from 1s to 1d");
        return NGX_CONF_ERROR;
    }

#define ngx_http_voucher_merge_cv(name)                                      \
    if (conf->name == NULL) {                                                \
        conf->name = prev->name;                                             \
    }

    ngx_http_voucher_merge_cv(gate_code);
    ngx_http_voucher_merge_cv(gate_codes);
    ngx_http_voucher_merge_cv(gate_customer);
    ngx_http_voucher_merge_cv(gate_amount);
    ngx_http_voucher_merge_cv(gate_currency);
    ngx_http_voucher_merge_cv(gate_order_id);
    ngx_http_voucher_merge_cv(gate_idempotency_key);
    ngx_http_voucher_merge_cv(gate_points);
    ngx_http_voucher_merge_cv(gate_meta);

#undef ngx_http_voucher_merge_cv

    ngx_conf_merge_value(conf->gate_codes_sep, prev->gate_codes_sep, ',');

    conf->gate_body |= prev->gate_body;

    if (conf->gate && conf->gate_body
        && ngx_http_voucher_gate_fields(cf, conf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->gate_confirm == NGX_CONF_UNSET_PTR) {
        if (prev->gate_confirm == NGX_CONF_UNSET_PTR) {
            prev->gate_confirm = ngx_array_create(cf->pool, 1,
                                                  2 * sizeof(ngx_uint_t));
            if (prev->gate_confirm == NULL) {
                return NGX_CONF_ERROR;
            }

            range = ngx_array_push(prev->gate_confirm);
            if (range == NULL) {
                return NGX_CONF_ERROR;
            }

            range[0] = 200;
            range[1] = 299;
        }

        conf->gate_confirm = prev->gate_confirm;
    }

    if (conf->gate) {
        vmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_voucher_module);
        if (conf->store == &vmcf->store && !vmcf->configured) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"voucher_gate\" needs \"voucher_redis\" "
                               "in the http block, or \"voucher_store_use\"");
            return NGX_CONF_ERROR;
        }

        if (conf->gate_code == NULL && conf->gate_codes == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"voucher_gate\" needs \"voucher_code\" "
                               "or \"voucher_codes\"");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * The body fields the gate values read: the NAME of each
 * $voucher_body_NAME and ${voucher_body_NAME} in them, in lower case as
 * nginx looks variables up.
 */

static ngx_int_t
ngx_http_voucher_gate_fields(ngx_conf_t *cf, ngx_http_voucher_loc_conf_t *conf)
{
    u_char                    *p, *last, *start;
    size_t                     len;
    ngx_str_t                 *name, *field;
    ngx_uint_t                 i, j, n;
    ngx_http_voucher_meta_t   *meta;
    ngx_http_complex_value_t  *cv[8 + NGX_HTTP_VOUCHER_GATE_META_MAX];

    cv[0] = conf->gate_code;
    cv[1] = conf->gate_customer;
    cv[2] = conf->gate_amount;
    cv[3] = conf->gate_currency;
    cv[4] = conf->gate_order_id;
    cv[5] = conf->gate_idempotency_key;
    cv[6] = conf->gate_codes;
    cv[7] = conf->gate_points;
    n = 8;

    if (conf->gate_meta) {
        meta = conf->gate_meta->elts;

        for (i = 0; i < conf->gate_meta->nelts; i++) {
            cv[n++] = &meta[i].value;
        }
    }

    conf->gate_fields = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
    if (conf->gate_fields == NULL) {
        return NGX_ERROR;
    }

    len = sizeof("voucher_body_") - 1;

    for (i = 0; i < n; i++) {
        if (cv[i] == NULL) {
            continue;
        }

        p = cv[i]->value.data;
        last = p + cv[i]->value.len;

        while (p < last) {
            p = ngx_strlchr(p, last, '$');
            if (p == NULL) {
                break;
            }

            p++;

            if (p < last && *p == '{') {
                p++;
            }

            if ((size_t) (last - p) <= len
                || ngx_strncasecmp(p, (u_char *) "voucher_body_", len) != 0)
            {
                continue;
            }

            p += len;
            start = p;

            while (p < last
                   && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                       || (*p >= '0' && *p <= '9') || *p == '_'))
            {
                p++;
            }

            if (p == start) {
                continue;
            }

            field = conf->gate_fields->elts;

            for (j = 0; j < conf->gate_fields->nelts; j++) {
                if (field[j].len == (size_t) (p - start)
                    && ngx_strncasecmp(field[j].data, start, p - start) == 0)
                {
                    break;
                }
            }

            if (j < conf->gate_fields->nelts) {
                continue;
            }

            name = ngx_array_push(conf->gate_fields);
            if (name == NULL) {
                return NGX_ERROR;
            }

            name->len = p - start;
            name->data = ngx_pnalloc(cf->pool, name->len);
            if (name->data == NULL) {
                return NGX_ERROR;
            }

            ngx_strlow(name->data, start, name->len);
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_voucher_gate_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t          *var;
    ngx_http_voucher_gate_var_t  *gv;

    for (gv = ngx_http_voucher_gate_vars; gv->name.len; gv++) {
        var = ngx_http_add_variable(cf, &gv->name, NGX_HTTP_VAR_NOCACHEABLE);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = ngx_http_voucher_gate_variable;
        var->data = gv->offset;
    }

    var = ngx_http_add_variable(cf, &(ngx_str_t)
                                    ngx_string("voucher_body_"),
                                NGX_HTTP_VAR_NOCACHEABLE
                                |NGX_HTTP_VAR_PREFIX);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_voucher_body_variable;

    var = ngx_http_add_variable(cf, &(ngx_str_t)
                                    ngx_string("voucher_lost_confirms"),
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_voucher_lost_variable;
    var->data = offsetof(ngx_http_voucher_settle_sh_t, lost_confirms);

    var = ngx_http_add_variable(cf, &(ngx_str_t)
                                    ngx_string("voucher_lost_releases"),
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_voucher_lost_variable;
    var->data = offsetof(ngx_http_voucher_settle_sh_t, lost_releases);

    return NGX_OK;
}


ngx_int_t
ngx_http_voucher_gate_init(ngx_conf_t *cf)
{
    ngx_str_t                      name;
    ngx_array_t                   *a;
    ngx_http_handler_pt           *h;
    ngx_shm_zone_t                *zone;
    ngx_http_core_main_conf_t     *cmcf;
    ngx_http_voucher_main_conf_t  *vmcf;

    /*
     * The counters of lost settlements: the smallest zone nginx's slab
     * allocator takes, kept across reloads.
     */

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_voucher_module);

    if (vmcf->configured || vmcf->stores) {
        ngx_str_set(&name, "voucher_settle");

        zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                     &ngx_http_voucher_module);
        if (zone == NULL) {
            return NGX_ERROR;
        }

        zone->init = ngx_http_voucher_settle_init_zone;
        vmcf->settle_zone = zone;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_voucher_gate_handler;

    /*
     * The log phase runs its handlers in the order they were added: ours
     * goes first, so access_log already sees "confirmed" or "released".
     */

    a = &cmcf->phases[NGX_HTTP_LOG_PHASE].handlers;

    h = ngx_array_push(a);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = a->elts;
    ngx_memmove(&h[1], &h[0], (a->nelts - 1) * sizeof(ngx_http_handler_pt));
    h[0] = ngx_http_voucher_gate_log_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_voucher_settle_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t               *shpool;
    ngx_http_voucher_settle_sh_t  *sh;

    if (data) {
        /* a reload: the counts go on */
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_voucher_settle_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sh;
    shm_zone->data = sh;

    return NGX_OK;
}


/* ------------------------------------------------------------ the state */


static ngx_http_voucher_gate_t *
ngx_http_voucher_gate_get(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_voucher_gate_cleanup) {
            return cln->data;
        }
    }

    return NULL;
}


static ngx_http_voucher_gate_t *
ngx_http_voucher_gate_create(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_voucher_gate_t  *g;

    g = ngx_pcalloc(r->pool, sizeof(ngx_http_voucher_gate_t));
    if (g == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    g->core.request = r;
    g->core.conf = vlcf;
    g->core.api = vlcf->gate;
    g->core.answered = ngx_http_voucher_gate_answered;

    cln->handler = ngx_http_voucher_gate_cleanup;
    cln->data = g;

    return g;
}


/*
 * The request's pool goes.  A reservation the log phase did not settle
 * (a request that was never logged) is released here.  An op still out
 * is handed to a handler that releases what it may still reserve.
 */

static void
ngx_http_voucher_gate_cleanup(void *data)
{
    ngx_http_voucher_gate_t *g = data;

    ngx_http_request_t            *r;
    ngx_http_voucher_main_conf_t  *vmcf;

    r = g->core.request;

    if (g->body) {
        json_decref(g->body);
        g->body = NULL;
    }

    if (g->core.op) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "voucher gate: request gone while Redis works");

        ngx_http_voucher_gate_abandon(g);
    }

    if (g->held && !g->settled) {
        g->settled = 1;

        vmcf = ngx_http_get_module_main_conf(r, ngx_http_voucher_module);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "voucher gate: request ended without a response, "
                      "releasing %V", &g->redemption_id);

        ngx_http_voucher_gate_settle(vmcf, g->core.conf->store,
                                     &g->core.conf->ns,
                                     &g->redemption_id, 0, g->deadline,
                                     ngx_cycle->log);
    }
}


/* ------------------------------------------------------------ the phase */


static ngx_int_t
ngx_http_voucher_gate_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_http_voucher_gate_t      *g;
    ngx_http_voucher_loc_conf_t  *vlcf;

    /* subrequests share the main request's verdict */

    if (r != r->main) {
        return NGX_DECLINED;
    }

    g = ngx_http_voucher_gate_get(r);

    if (g) {
        if (g->phase == NGX_HTTP_VOUCHER_GATE_DONE) {
            /*
             * After an internal redirect too: one verdict per request.  A
             * request the gate answered itself comes back here only as an
             * error page of that answer (a 500, say): let it be served.
             */
            return (g->rc == NGX_DONE) ? NGX_DECLINED : g->rc;
        }

        if (r->internal || r->error_page) {
            /*
             * Redirected while the body was read or Redis was asked (a 413
             * or 400 of the body reader sent to an error_page): the gate
             * steps aside rather than stop the phases for good.
             */
            ngx_http_voucher_gate_abandon(g);
            return NGX_DECLINED;
        }

        return NGX_AGAIN;
    }

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_voucher_module);

    if (!vlcf->gate) {
        return NGX_DECLINED;
    }

    g = ngx_http_voucher_gate_create(r, vlcf);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (vlcf->gate_body && r->request_body == NULL) {
        g->phase = NGX_HTTP_VOUCHER_GATE_BODY;

        rc = ngx_http_read_client_request_body(r,
                                          ngx_http_voucher_gate_body_handler);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        /* the body reader holds the request until its handler runs */
        ngx_http_finalize_request(r, NGX_DONE);
        return NGX_DONE;
    }

    rc = ngx_http_voucher_gate_start(r, g);

    if (rc == NGX_BUSY) {
        return NGX_AGAIN;
    }

    if (g->phase != NGX_HTTP_VOUCHER_GATE_DONE) {
        /* answered here (a refusal): the phases stop */
        g->phase = NGX_HTTP_VOUCHER_GATE_DONE;
        g->rc = NGX_DONE;
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    return g->rc;
}


static void
ngx_http_voucher_gate_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_voucher_gate_t  *g;

    g = ngx_http_voucher_gate_get(r);

    /* proxy_pass and friends still send the body upstream */
    r->preserve_body = 1;

    rc = ngx_http_voucher_gate_start(r, g);

    if (rc == NGX_BUSY) {
        return;
    }

    ngx_http_voucher_gate_resume(r, g, rc);
}


/*
 * Takes the verdict, or sends the command that takes it.  Returns
 * NGX_BUSY while Redis works; NGX_DECLINED (g->phase is DONE) when the
 * request goes on; otherwise what to finalize the request with, as the
 * answer has been sent.
 */

static ngx_int_t
ngx_http_voucher_gate_start(ngx_http_request_t *r, ngx_http_voucher_gate_t *g)
{
    ngx_int_t                     rc;
    ngx_http_voucher_request_t    req;
    ngx_http_voucher_loc_conf_t  *vlcf;

    vlcf = g->core.conf;

    if (vlcf->gate_body) {
        rc = ngx_http_voucher_gate_parse_body(r, g);
        if (rc != NGX_OK) {
            return (rc == NGX_DONE) ? g->answer : rc;
        }
    }

    rc = ngx_http_voucher_gate_values(r, g, &req);
    if (rc != NGX_OK) {
        return (rc == NGX_DONE) ? g->answer : rc;
    }

    if (req.code.len == 0 && req.ncodes == 0) {
        if (vlcf->gate_code_required) {
            (void) ngx_http_voucher_gate_refuse(r, g, "missing_field",
                                                "code", "This location "
                                                "needs a code.");
            return g->answer;
        }

        return ngx_http_voucher_gate_pass(r, g, "");
    }

    return ngx_http_voucher_gate_render(r, g,
                                        ngx_http_voucher_preflight(&g->core,
                                                                   &req),
                                        NULL, NULL);
}


/*
 * $voucher_body_NAME reads the body as a JSON object; a bad one is refused
 * here, before the code is looked at, so a body that the gate and the
 * upstream might read differently never passes unchecked.
 */

static ngx_int_t
ngx_http_voucher_gate_parse_body(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g)
{
    ngx_int_t      rc;
    ngx_str_t      body;
    json_t        *root;
    json_error_t   jerr;

    g->body_parsed = 1;

    rc = ngx_http_voucher_read_body(r, &body, g->core.conf->max_body_size);

    if (rc == NGX_DECLINED) {
        return ngx_http_voucher_gate_refuse(r, g, "body_too_large", NULL,
                                            NULL);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (body.len == 0) {
        return NGX_OK;
    }

    root = json_loadb((const char *) body.data, body.len,
                      JSON_REJECT_DUPLICATES, &jerr);

    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_duplicate_key) {
            return ngx_http_voucher_gate_refuse(r, g, "duplicate_field",
                       NULL, "A key appears twice in one object of the "
                       "body.");
        }

        return ngx_http_voucher_gate_refuse(r, g, "invalid_json", NULL,
                                            NULL);
    }

    if (!json_is_object(root)) {
        json_decref(root);
        return ngx_http_voucher_gate_refuse(r, g, "invalid_request", NULL,
                                            NULL);
    }

    g->body = root;

    return ngx_http_voucher_gate_body_keys(r, g);
}


/*
 * Each body field the gate reads, and each object on its way there, must
 * be spelled as the gate reads it: a key that a decoder ignoring case
 * takes for it ("Coupon", "cu\u017ftomer") could give the shop another
 * value than the one the gate checked.  The walk is the one of
 * $voucher_body_NAME.
 */

static ngx_int_t
ngx_http_voucher_gate_body_keys(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g)
{
    u_char      *p, *last, *sep, *f, *field;
    char         key[128];
    size_t       len;
    json_t      *node;
    ngx_str_t   *name;
    ngx_uint_t   i;

    if (g->core.conf->gate_fields == NULL) {
        return NGX_OK;
    }

    name = g->core.conf->gate_fields->elts;

    for (i = 0; i < g->core.conf->gate_fields->nelts; i++) {
        p = name[i].data;
        last = p + name[i].len;
        node = g->body;

        while (p < last && json_is_object(node)) {
            sep = ngx_strlcasestrn(p, last, (u_char *) "__", 2 - 1);
            if (sep == NULL) {
                sep = last;
            }

            len = sep - p;

            if (len == 0 || len >= sizeof(key)) {
                break;
            }

            if (ngx_http_voucher_gate_variant(node, p, len)) {
                goto variant;
            }

            ngx_memcpy(key, p, len);
            key[len] = '\0';

            node = json_object_get(node, key);

            p = (sep == last) ? last : sep + 2;
        }
    }

    return NGX_OK;

variant:

    /* the field as far as the walk went, order__total as order.total */

    field = ngx_pnalloc(r->pool, sep - name[i].data + 1);
    if (field == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    f = field;

    for (p = name[i].data; p < sep; p++) {
        if (p + 1 < sep && p[0] == '_' && p[1] == '_') {
            *f++ = '.';
            p++;

        } else {
            *f++ = *p;
        }
    }

    *f = '\0';

    return ngx_http_voucher_gate_refuse(r, g, "duplicate_field",
               (const char *) field, "A key of the body differs from a "
               "field the gate reads only in letter case: send each field "
               "once, in lower case.");
}


/* 1 if a key of obj is name in another letter case */

static ngx_uint_t
ngx_http_voucher_gate_variant(json_t *obj, u_char *name, size_t len)
{
    void        *it;
    const char  *key;

    for (it = json_object_iter(obj);
         it != NULL;
         it = json_object_iter_next(obj, it))
    {
        key = json_object_iter_key(it);

        if (ngx_http_voucher_key_fold((const unsigned char *) key,
                                      ngx_strlen(key), name, len)
            == NGX_HTTP_VOUCHER_KEY_VARIANT)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_voucher_gate_values(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, ngx_http_voucher_request_t *req)
{
    ngx_int_t                     rc;
    ngx_str_t                     v;
    const char                   *msg;
    ngx_http_voucher_str_t        amount, points;
    ngx_http_voucher_error_t      err;
    ngx_http_voucher_limits_t     lim;
    ngx_http_voucher_loc_conf_t  *vlcf;

    vlcf = g->core.conf;

    ngx_memzero(req, sizeof(ngx_http_voucher_request_t));

    req->op = (vlcf->gate == NGX_HTTP_VOUCHER_OP_REDEEM)
              ? NGX_HTTP_VOUCHER_OP_RESERVE : NGX_HTTP_VOUCHER_OP_VALIDATE;
    req->hold_seconds = NGX_HTTP_VOUCHER_UNSET;
    req->rollback_amount = NGX_HTTP_VOUCHER_UNSET;

    ngx_http_voucher_limits_init(&lim);
    lim.max_code_len = vlcf->code_max_length;

    /* the code: copied, as it is normalised in place */

    v.len = 0;

    if (vlcf->gate_code
        && ngx_http_complex_value(r, vlcf->gate_code, &v) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (v.len) {
        if (ngx_http_voucher_check_field(
                &ngx_http_voucher_fields[NGX_HTTP_VOUCHER_FIELD_CODE_ROW],
                v.data, v.len, &lim, NULL, &err)
            != 0)
        {
            goto refuse;
        }

        /* room for the NUL the normaliser writes */

        req->code.data = ngx_pnalloc(r->pool, v.len + 1);
        if (req->code.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(req->code.data, v.data, v.len);
        req->code.data[v.len] = '\0';
        req->code.len = v.len;
    }

    if (vlcf->gate_codes) {
        rc = ngx_http_voucher_gate_codes_value(r, vlcf, &lim, req, &err);
        if (rc != NGX_OK) {
            goto failed;
        }
    }

    rc = ngx_http_voucher_gate_text(r, vlcf->gate_customer,
                                    NGX_HTTP_VOUCHER_FIELD_CUSTOMER_ROW,
                                    &lim, &req->customer, &err);
    if (rc != NGX_OK) {
        goto failed;
    }

    rc = ngx_http_voucher_gate_text(r, vlcf->gate_order_id,
                                    NGX_HTTP_VOUCHER_FIELD_ORDER_ID_ROW,
                                    &lim, &req->order_id, &err);
    if (rc != NGX_OK) {
        goto failed;
    }

    rc = ngx_http_voucher_gate_text(r, vlcf->gate_currency,
                                    NGX_HTTP_VOUCHER_FIELD_CURRENCY_ROW,
                                    &lim, &req->currency, &err);
    if (rc != NGX_OK) {
        goto failed;
    }

    /* the amount: minor units; none means 0 */

    req->amount = 0;

    rc = ngx_http_voucher_gate_text(r, vlcf->gate_amount,
                                    NGX_HTTP_VOUCHER_FIELD_ORDER_AMOUNT_ROW,
                                    &lim, &amount, &err);
    if (rc != NGX_OK) {
        goto failed;
    }

    if (amount.len) {
        /* taken by the rule: 14 digits at most */
        req->amount = ngx_atoof(amount.data, amount.len);
    }

    /* loyalty points to pay with: none when empty */

    req->points = 0;

    rc = ngx_http_voucher_gate_text(r, vlcf->gate_points,
                                    NGX_HTTP_VOUCHER_FIELD_POINTS_ROW,
                                    &lim, &points, &err);
    if (rc != NGX_OK) {
        goto failed;
    }

    if (points.len) {
        /* taken by the rule: 14 digits at most */
        req->points = ngx_atoof(points.data, points.len);
    }

    if (vlcf->gate_meta) {
        rc = ngx_http_voucher_gate_meta_value(r, g, req);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    /* the idempotency key: the directive's value, or the header */

    if (vlcf->gate_idempotency_key) {
        rc = ngx_http_voucher_gate_text(r, vlcf->gate_idempotency_key,
                                        NGX_HTTP_VOUCHER_FIELD_IDEMPOTENCY_ROW,
                                        &lim, &req->idempotency_key, &err);
        if (rc != NGX_OK) {
            goto failed;
        }

    } else {
        msg = ngx_http_voucher_idempotency_header(r, req);
        if (msg) {
            return ngx_http_voucher_gate_refuse(r, g, "invalid_field",
                                                "idempotency_key", msg);
        }
    }

    return NGX_OK;

failed:

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

refuse:

    return ngx_http_voucher_gate_refuse(r, g, err.reason, err.field,
                                        err.message);
}


/*
 * voucher_metadata: each non-empty value (1 to 64 bytes, no control
 * characters) as "<scope><name>=<value>", joined by NUL, after "m"
 */

static ngx_int_t
ngx_http_voucher_gate_meta_value(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, ngx_http_voucher_request_t *req)
{
    u_char                       *p;
    size_t                        size;
    ngx_str_t                    *v;
    ngx_uint_t                    i, j, n;
    ngx_http_voucher_meta_t      *m;
    ngx_http_voucher_loc_conf_t  *vlcf;

    vlcf = g->core.conf;
    m = vlcf->gate_meta->elts;
    n = vlcf->gate_meta->nelts;

    v = ngx_palloc(r->pool, n * sizeof(ngx_str_t));
    if (v == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    size = 1;

    for (i = 0; i < n; i++) {
        if (ngx_http_complex_value(r, &m[i].value, &v[i]) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (j = 0; j < v[i].len; j++) {
            if (v[i].data[j] < 0x20 || v[i].data[j] == 0x7f) {
                break;
            }
        }

        if (v[i].len > NGX_HTTP_VOUCHER_MAX_META_VALUE || j < v[i].len) {
            return ngx_http_voucher_gate_refuse(r, g, "invalid_field",
                       (const char *) m[i].name.data,
                       "A metadata value must be 1 to 64 bytes, no control "
                       "characters.");
        }

        if (v[i].len) {
            size += 3 + m[i].name.len + v[i].len;
        }
    }

    if (size == 1) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    req->meta.data = p;
    *p++ = 'm';

    for (i = 0; i < n; i++) {
        if (v[i].len == 0) {
            continue;
        }

        *p++ = m[i].scope;
        p = ngx_cpymem(p, m[i].name.data, m[i].name.len);
        *p++ = '=';
        p = ngx_cpymem(p, v[i].data, v[i].len);
        *p++ = '\0';
    }

    /* the last entry's separator is not sent */
    req->meta.len = p - req->meta.data - 1;

    return NGX_OK;
}


/*
 * voucher_codes: its value split at the separator, each piece a code by
 * the code's rule (spaces around it dropped, empty pieces skipped), after
 * voucher_code's if that has one.  Any code at all makes the request a
 * stack.  NGX_OK, NGX_DECLINED with err filled, NGX_ERROR.
 */

static ngx_int_t
ngx_http_voucher_gate_codes_value(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_limits_t *lim,
    ngx_http_voucher_request_t *req, ngx_http_voucher_error_t *err)
{
    u_char                  *p, *last, *start, *end, *copy;
    ngx_str_t                v;
    ngx_uint_t               n;
    ngx_http_voucher_str_t  *c;

    if (ngx_http_complex_value(r, vlcf->gate_codes, &v) != NGX_OK) {
        return NGX_ERROR;
    }

    if (v.len == 0) {
        return NGX_OK;
    }

    c = ngx_palloc(r->pool, (NGX_HTTP_VOUCHER_MAX_CODES + 1)
                            * sizeof(ngx_http_voucher_str_t));
    if (c == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    if (req->code.len) {
        c[n++] = req->code;
        req->code.len = 0;
        req->code.data = NULL;
    }

    p = v.data;
    last = v.data + v.len;

    while (p <= last) {
        start = p;
        end = ngx_strlchr(p, last, (u_char) vlcf->gate_codes_sep);
        if (end == NULL) {
            end = last;
        }

        p = end + 1;

        while (start < end && (*start == ' ' || *start == '\t')) {
            start++;
        }

        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }

        if (start == end) {
            continue;
        }

        if (n == NGX_HTTP_VOUCHER_MAX_CODES) {
            err->reason = NGX_HTTP_VOUCHER_ERR_INVALID_FIELD;
            ngx_cpystrn((u_char *) err->field, (u_char *) "codes",
                        sizeof(err->field));
            ngx_cpystrn((u_char *) err->message,
                        (u_char *) "At most 30 codes for one order.",
                        sizeof(err->message));
            return NGX_DECLINED;
        }

        if (ngx_http_voucher_check_field(
                &ngx_http_voucher_fields[NGX_HTTP_VOUCHER_FIELD_CODE_ROW],
                start, end - start, lim, NULL, err)
            != 0)
        {
            return NGX_DECLINED;
        }

        /* room for the NUL the normaliser writes */

        copy = ngx_pnalloc(r->pool, end - start + 1);
        if (copy == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(copy, start, end - start);
        copy[end - start] = '\0';

        c[n].data = copy;
        c[n].len = end - start;
        n++;
    }

    if (n) {
        req->codes = c;
        req->ncodes = n;
        req->stack = 1;
    }

    return NGX_OK;
}


/*
 * The value of a gate directive by the rule of its row of the field table
 * (ngx_http_voucher_fields[]): NGX_OK, or NGX_DECLINED with err filled,
 * NGX_ERROR if it cannot be had.  An empty value stays absent.
 */

static ngx_int_t
ngx_http_voucher_gate_text(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_uint_t row,
    ngx_http_voucher_limits_t *lim, ngx_http_voucher_str_t *out,
    ngx_http_voucher_error_t *err)
{
    ngx_str_t  v;

    out->len = 0;
    out->data = NULL;

    if (cv == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, cv, &v) != NGX_OK) {
        return NGX_ERROR;
    }

    if (v.len == 0) {
        return NGX_OK;
    }

    if (ngx_http_voucher_check_field(&ngx_http_voucher_fields[row], v.data,
                                     v.len, lim, NULL, err)
        != 0)
    {
        return NGX_DECLINED;
    }

    out->data = v.data;
    out->len = v.len;

    return NGX_OK;
}


/*
 * Every answer of the gate itself: the body nobody read is discarded
 * first, or on a keep-alive connection its bytes would be taken for the
 * next request.
 */

static ngx_int_t
ngx_http_voucher_gate_discard(ngx_http_request_t *r)
{
    if (r->request_body == NULL) {
        return ngx_http_discard_request_body(r);
    }

    return NGX_OK;
}


/* the request went elsewhere before a verdict: nothing is kept for it */

static void
ngx_http_voucher_gate_abandon(ngx_http_voucher_gate_t *g)
{
    ngx_http_voucher_op_t  *op;

    op = g->core.op;

    if (op) {
        g->core.op = NULL;

        if (op->queued || g->core.api != NGX_HTTP_VOUCHER_OP_REDEEM) {
            ngx_http_voucher_redis_detach(op);

        } else {
            /* whatever it reserves is released when the answer comes */
            op->data = g->core.conf;
            op->handler = ngx_http_voucher_gate_orphan_handler;
        }
    }

    g->phase = NGX_HTTP_VOUCHER_GATE_DONE;
    g->rc = NGX_DECLINED;
}


/*
 * A refusal before any Redis call: the API's answer, and the variables.
 * Returns NGX_DONE; what sending returned waits in g->answer.
 */

static ngx_int_t
ngx_http_voucher_gate_refuse(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, const char *reason, const char *field,
    const char *message)
{
    ngx_str_set(&g->status, "refused");

    g->reason.data = (u_char *) reason;
    g->reason.len = ngx_strlen(reason);

    if (ngx_http_voucher_gate_discard(r) != NGX_OK) {
        g->answer = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    g->answer = ngx_http_voucher_send_error(r, g->core.api, reason, field,
                                            message);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_voucher_gate_pass(ngx_http_request_t *r, ngx_http_voucher_gate_t *g,
    const char *status)
{
    g->status.data = (u_char *) status;
    g->status.len = ngx_strlen(status);
    g->phase = NGX_HTTP_VOUCHER_GATE_DONE;
    g->rc = NGX_DECLINED;

    return NGX_DECLINED;
}


/* ------------------------------------------------------------ the answer */


/*
 * A verdict of the core as the gate's: the request goes on (NGX_DECLINED,
 * the phase is DONE), waits for Redis (NGX_BUSY), or is answered here
 * (what to finalize it with).
 */

static ngx_int_t
ngx_http_voucher_gate_render(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, ngx_uint_t verdict, void *reply,
    ngx_http_voucher_ok_t *ok)
{
    ngx_http_voucher_core_t  *core;

    core = &g->core;

    switch (verdict) {

    case NGX_HTTP_VOUCHER_V_WAITING:
        g->phase = NGX_HTTP_VOUCHER_GATE_WAITING;
        return NGX_BUSY;

    case NGX_HTTP_VOUCHER_V_ANSWER:
        if (reply == NULL) {
            /* the preflight's: the hot code cache answered */
            reply = core->hot;
            ok = &core->hot_ok;
        }

        return ngx_http_voucher_gate_verdict(r, g, reply, ok);

    case NGX_HTTP_VOUCHER_V_REFUSED:
        (void) ngx_http_voucher_gate_refuse(r, g, core->reason, core->field,
                                            core->message);
        return g->answer;

    case NGX_HTTP_VOUCHER_V_LOCKED:
        ngx_str_set(&g->status, "refused");
        ngx_str_set(&g->reason, "locked_out");

        if (ngx_http_voucher_gate_discard(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_voucher_send_locked(r, core->api, &core->code,
                                            &core->limit, core->left);

    case NGX_HTTP_VOUCHER_V_NOT_FOUND:
        ngx_str_set(&g->status, "refused");
        ngx_str_set(&g->reason, "not_found");

        if (ngx_http_voucher_gate_discard(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_voucher_send_not_found(r, core->api, core->code.data,
                                               core->code.len);

    case NGX_HTTP_VOUCHER_V_UNAVAILABLE:
        return ngx_http_voucher_gate_unavailable(r, g, core->reason);

    default: /* NGX_HTTP_VOUCHER_V_FAILED */
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static void
ngx_http_voucher_gate_answered(ngx_http_voucher_core_t *core,
    ngx_uint_t verdict, void *reply, ngx_http_voucher_ok_t *ok)
{
    ngx_http_voucher_gate_t  *g;

    g = (ngx_http_voucher_gate_t *)
            ((u_char *) core - offsetof(ngx_http_voucher_gate_t, core));

    ngx_http_voucher_gate_resume(core->request, g,
                                 ngx_http_voucher_gate_render(core->request, g,
                                                              verdict, reply,
                                                              ok));
}


/* go on with the phases, or finish the request with our answer */

static void
ngx_http_voucher_gate_resume(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, ngx_int_t rc)
{
    if (g->phase == NGX_HTTP_VOUCHER_GATE_DONE && rc == NGX_DECLINED) {
        r->read_event_handler = ngx_http_block_reading;
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
        return;
    }

    g->phase = NGX_HTTP_VOUCHER_GATE_DONE;
    g->rc = NGX_DONE;

    ngx_http_finalize_request(r, rc);
}


/* a value of the reply, copied: its integer in decimal, or its string */

static ngx_str_t *
ngx_http_voucher_gate_field(redisReply *reply, ngx_http_voucher_ok_t *ok,
    ngx_uint_t field, ngx_str_t *out, ngx_pool_t *pool)
{
    return ngx_http_voucher_gate_copy(ngx_http_voucher_ok_get(reply, ok,
                                                              field),
                                      out, pool);
}


/* a pair after the values, by its name */

static ngx_str_t *
ngx_http_voucher_gate_pair(redisReply *reply, ngx_http_voucher_ok_t *ok,
    ngx_str_t *name, ngx_str_t *out, ngx_pool_t *pool)
{
    return ngx_http_voucher_gate_copy(ngx_http_voucher_ok_pair(reply, ok,
                                          (const char *) name->data,
                                          name->len),
                                      out, pool);
}


static ngx_str_t *
ngx_http_voucher_gate_copy(redisReply *v, ngx_str_t *out, ngx_pool_t *pool)
{
    if (v == NULL) {
        return NULL;
    }

    if (v->type == REDIS_REPLY_INTEGER) {
        out->data = ngx_pnalloc(pool, NGX_INT64_LEN);
        if (out->data == NULL) {
            return NULL;
        }

        out->len = ngx_http_voucher_int64(out->data, (int64_t) v->integer)
                   - out->data;
        return out;
    }

    if (v->type == REDIS_REPLY_STRING) {
        out->data = ngx_pnalloc(pool, v->len);
        if (out->data == NULL) {
            return NULL;
        }

        ngx_memcpy(out->data, v->str, v->len);
        out->len = v->len;
        return out;
    }

    return NULL;
}


/* ok: the reply decoded, or NULL when it is not of the expected shape */

static ngx_int_t
ngx_http_voucher_gate_verdict(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, redisReply *reply, ngx_http_voucher_ok_t *ok)
{
    ngx_uint_t   i;
    redisReply  *reason;

    if (ok == NULL) {
        /* an error reply: rendered, and logged, as the API does */
        ngx_str_set(&g->status, "error");
        ngx_str_set(&g->reason, "internal_error");

        if (ngx_http_voucher_gate_discard(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_voucher_send_reply(r, g->core.conf->gate, reply, NULL);
    }

    reason = reply->element[0];

    (void) ngx_http_voucher_gate_field(reply, ok,
                                       NGX_HTTP_VOUCHER_OK_CAMPAIGN,
                                       &g->campaign, r->pool);

    if (!(reason->len == 2 && ngx_strncmp(reason->str, "ok", 2) == 0)) {
        ngx_str_set(&g->status, "refused");

        g->reason.data = ngx_pnalloc(r->pool, reason->len);
        if (g->reason.data) {
            ngx_memcpy(g->reason.data, reason->str, reason->len);
            g->reason.len = reason->len;
        }

        if (ngx_http_voucher_gate_discard(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_voucher_send_reply(r, g->core.conf->gate, reply, ok);
    }

    ngx_str_set(&g->reason, "ok");

    (void) ngx_http_voucher_gate_field(reply, ok,
                                       NGX_HTTP_VOUCHER_OK_DISCOUNT,
                                       &g->discount, r->pool);
    (void) ngx_http_voucher_gate_field(reply, ok,
                                       NGX_HTTP_VOUCHER_OK_AMOUNT_AFTER,
                                       &g->amount_after, r->pool);

    for (i = 0; ngx_http_voucher_gate_pairs[i].name.len; i++) {
        (void) ngx_http_voucher_gate_pair(reply, ok,
                   &ngx_http_voucher_gate_pairs[i].name,
                   (ngx_str_t *) ((u_char *) g
                                  + ngx_http_voucher_gate_pairs[i].offset),
                   r->pool);
    }

    if (g->core.conf->gate == NGX_HTTP_VOUCHER_OP_VALIDATE) {
        return ngx_http_voucher_gate_pass(r, g, "valid");
    }

    if (ngx_http_voucher_gate_field(reply, ok,
                                    NGX_HTTP_VOUCHER_OK_REDEMPTION_ID,
                                    &g->redemption_id, r->pool)
        == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "voucher gate: a reservation without an id");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_http_voucher_gate_field(reply, ok,
                                       NGX_HTTP_VOUCHER_OK_HOLD_EXPIRES_AT,
                                       &g->hold_expires_at, r->pool);

    if (ok->replayed) {
        /*
         * The answer of an earlier request with this idempotency key,
         * whose reservation was confirmed: passed on as it is, and never
         * settled again from here.
         */
        return ngx_http_voucher_gate_pass(r, g, "replayed");
    }

    /*
     * Redis set the hold's deadline before this reply left it: from here,
     * now plus the hold is never earlier, whatever the clocks say.
     */

    g->held = 1;
    g->deadline = ngx_current_msec + g->core.conf->hold;

    return ngx_http_voucher_gate_pass(r, g, "reserved");
}


static ngx_int_t
ngx_http_voucher_gate_unavailable(ngx_http_request_t *r,
    ngx_http_voucher_gate_t *g, const char *reason)
{
    ngx_http_voucher_loc_conf_t  *vlcf;

    vlcf = g->core.conf;

    g->reason.data = (u_char *) reason;
    g->reason.len = ngx_strlen(reason);

    if (vlcf->gate == NGX_HTTP_VOUCHER_OP_VALIDATE && vlcf->validate_fail_open)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "voucher gate: %s, the request passes unverified",
                      reason);

        return ngx_http_voucher_gate_pass(r, g, "unverified");
    }

    ngx_str_set(&g->status, "error");

    if (ngx_http_voucher_gate_discard(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_voucher_send_error(r, vlcf->gate, reason, NULL, NULL);
}


/*
 * The reply to a reservation whose request is gone: what it reserved is
 * released at once rather than held until it expires.
 */

static void
ngx_http_voucher_gate_orphan_handler(ngx_http_voucher_op_t *op, void *data,
    ngx_int_t rc)
{
    redisReply                   *reply = data;
    ngx_str_t                     id;
    redisReply                   *v;
    ngx_http_voucher_ok_t         ok;
    ngx_http_voucher_loc_conf_t  *vlcf;

    vlcf = op->data;

    if (rc != NGX_HTTP_VOUCHER_REPLY
        || ngx_http_voucher_ok_decode(reply, &ok) != 0
        || reply->element[0]->len != 2
        || ngx_strncmp(reply->element[0]->str, "ok", 2) != 0
        || ok.replayed)
    {
        /* nothing reserved, or not by this request */
        return;
    }

    v = ngx_http_voucher_ok_get(reply, &ok, NGX_HTTP_VOUCHER_OK_REDEMPTION_ID);

    if (v == NULL || v->type != REDIS_REPLY_STRING) {
        return;
    }

    id.data = (u_char *) v->str;
    id.len = v->len;

    ngx_http_voucher_gate_settle(ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                    ngx_http_voucher_module),
                                 vlcf->store, &vlcf->ns, &id, 0,
                                 ngx_current_msec + vlcf->hold,
                                 ngx_cycle->log);
}


/* ------------------------------------------------------------ settling */


static ngx_uint_t
ngx_http_voucher_gate_confirms(ngx_http_voucher_loc_conf_t *vlcf,
    ngx_uint_t status)
{
    ngx_uint_t  i, *range;

    range = vlcf->gate_confirm->elts;

    for (i = 0; i < vlcf->gate_confirm->nelts; i++) {
        if (status >= range[2 * i] && status <= range[2 * i + 1]) {
            return 1;
        }
    }

    return 0;
}


/*
 * gRPC says how a call went in "grpc-status", under an HTTP 200: in the
 * headers of a trailers-only answer, or in the trailers.  Anything but 0
 * is a failure.
 */

static ngx_uint_t
ngx_http_voucher_gate_grpc_ok(ngx_http_request_t *r)
{
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (r->upstream == NULL) {
        return 1;
    }

    for (n = 0; n < 2; n++) {
        part = n ? &r->upstream->headers_in.trailers.part
                 : &r->upstream->headers_in.headers.part;

        if (part->elts == NULL) {
            continue;
        }

        h = part->elts;

        for (i = 0; /* void */ ; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            if (h[i].key.len == sizeof("grpc-status") - 1
                && ngx_strncasecmp(h[i].key.data, (u_char *) "grpc-status",
                                   sizeof("grpc-status") - 1) == 0
                && !(h[i].value.len == 1 && h[i].value.data[0] == '0'))
            {
                return 0;
            }
        }
    }

    return 1;
}


/*
 * The log phase, when the response is over: it decides.  A response that
 * never started (the client left, the request was cut short) releases.
 * Otherwise the upstream's status decides when an upstream answered, else
 * the status sent.  A response that error_page redirected to a location
 * without voucher_gate is a failure whatever its status (a "error_page 500
 * =200 /sorry" does not make a failed order good); a gated error_page
 * location (a fallback upstream) decides by its own.
 */

static ngx_int_t
ngx_http_voucher_gate_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                     status, confirm;
    ngx_http_voucher_gate_t       *g;
    ngx_http_voucher_loc_conf_t   *vlcf;
    ngx_http_voucher_main_conf_t  *vmcf;

    /* a subrequest logged (log_subrequest on) does not decide */

    if (r != r->main) {
        return NGX_OK;
    }

    g = ngx_http_voucher_gate_get(r);

    if (g && g->phase == NGX_HTTP_VOUCHER_GATE_DONE && !g->counted) {
        g->counted = 1;
        ngx_http_voucher_gate_count(r, g);
    }

    if (g == NULL || !g->held || g->settled) {
        return NGX_OK;
    }

    status = r->headers_out.status;

    if (r->upstream && r->upstream->headers_in.status_n) {
        status = r->upstream->headers_in.status_n;
    }

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_voucher_module);

    if (!r->header_sent) {
        /*
         * No answer went out: the client left, or the request was cut
         * short.  Released, unless "voucher_client_abort keep" says that
         * an order the upstream already received may have been placed.
         */
        confirm = g->core.conf->gate_abort_keep && r->upstream
                  && r->upstream->request_sent;

    } else if (r->error_page && !vlcf->gate) {
        confirm = 0;

    } else {
        confirm = ngx_http_voucher_gate_confirms(g->core.conf, status)
                  && ngx_http_voucher_gate_grpc_ok(r);
    }

    g->settled = 1;

    if (confirm) {
        ngx_str_set(&g->status, "confirmed");

    } else {
        ngx_str_set(&g->status, "released");
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "voucher gate: status %ui, %s %V", status,
                   confirm ? "confirming" : "releasing", &g->redemption_id);

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_voucher_module);

    ngx_http_voucher_gate_settle(vmcf, g->core.conf->store,
                                 &g->core.conf->ns,
                                 &g->redemption_id, confirm, g->deadline,
                                 r->connection->log);

    return NGX_OK;
}


/*
 * A gated request in voucher_metrics: the status the client got, the
 * reason of the verdict ("ok" when it passed, "unverified" when Redis was
 * away and validate fails open).  One without a code is not counted.
 */

static void
ngx_http_voucher_gate_count(ngx_http_request_t *r, ngx_http_voucher_gate_t *g)
{
    ngx_int_t  reason;

    if (g->status.len == 0) {
        /* no code: nothing was checked */
        return;
    }

    if (g->status.len == sizeof("unverified") - 1
        && ngx_strncmp(g->status.data, "unverified", g->status.len) == 0)
    {
        reason = NGX_HTTP_VOUCHER_M_R_UNVERIFIED;

    } else {
        reason = ngx_http_voucher_reason_slot(g->reason.data,
                                                      g->reason.len);
    }

    ngx_http_voucher_metrics_request(
        ngx_http_voucher_metrics_gate_op(g->core.conf->gate),
        r->headers_out.status, reason);
}


/*
 * FCALL voucher_confirm|voucher_release 1 {ns}:log ID, on its own: it
 * owns its arguments, and no request waits for it.  While Redis cannot
 * take it (a lost connection, a restart) it is tried again on a timer
 * that is not cancelable, until "deadline", when the hold is surely over:
 * Redis has given the use back by then, and a confirm could only answer
 * reservation_expired.  Until then a worker that exits gracefully stays.
 */

static void
ngx_http_voucher_gate_settle(ngx_http_voucher_main_conf_t *vmcf,
    ngx_http_voucher_store_t *store, ngx_str_t *ns, ngx_str_t *id,
    ngx_uint_t confirm, ngx_msec_t deadline, ngx_log_t *log)
{
    u_char                     *p;
    ngx_http_voucher_settle_t  *s;

    s = ngx_calloc(sizeof(ngx_http_voucher_settle_t)
                   + sizeof("{}:log") - 1 + ns->len + id->len, log);
    if (s == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "voucher gate: %s of %V lost: out of memory",
                      confirm ? "confirm" : "release", id);
        return;
    }

    s->vmcf = vmcf;
    s->store = store;
    s->confirm = confirm;

    ngx_http_voucher_metrics_count(confirm ? NGX_HTTP_VOUCHER_M_CONFIRM
                                           : NGX_HTTP_VOUCHER_M_RELEASE,
                                   NGX_HTTP_VOUCHER_M_SETTLE_STARTED);
    s->deadline = deadline;

    p = (u_char *) &s[1];

    s->argv[0] = "FCALL";
    s->argvlen[0] = 5;
    s->argv[1] = confirm ? VOUCHER_FN("voucher_confirm")
                         : VOUCHER_FN("voucher_release");
    s->argvlen[1] = sizeof(VOUCHER_FN("voucher_confirm")) - 1;
    s->argv[2] = "1";
    s->argvlen[2] = 1;
    s->argv[3] = (const char *) p;
    s->argvlen[3] = ngx_sprintf(p, "{%V}:log", ns) - p;

    s->ns.data = p + 1;
    s->ns.len = ns->len;

    s->id.data = p + s->argvlen[3];
    s->id.len = id->len;
    ngx_memcpy(s->id.data, id->data, id->len);

    s->argv[4] = (const char *) s->id.data;
    s->argvlen[4] = s->id.len;
    s->argv[5] = "";                    /* no idempotency key */
    s->argvlen[5] = 0;

    /* a live hold is confirmed without reading the redemption back */
    s->argv[6] = "brief";
    s->argvlen[6] = 5;

    s->timer.handler = ngx_http_voucher_settle_timer;
    s->timer.data = s;
    s->timer.log = ngx_cycle->log;

    if (ngx_http_voucher_settling.next == NULL) {
        ngx_queue_init(&ngx_http_voucher_settling);
    }

    ngx_queue_insert_tail(&ngx_http_voucher_settling, &s->queue);

    ngx_http_voucher_settle_send(s);
}


static void
ngx_http_voucher_settle_send(ngx_http_voucher_settle_t *s)
{
    ngx_http_voucher_op_t  *op;

    op = NULL;

    if (s->store->pool) {
        op = ngx_http_voucher_redis_send(s->store->pool,
                                         s->confirm ? 7 : 6,
                                         s->argv, s->argvlen,
                                         ngx_http_voucher_settle_handler, s,
                                         NGX_HTTP_VOUCHER_SEND_WRITE);
    }

    if (op == NULL) {
        ngx_http_voucher_settle_retry(s);
        return;
    }

    /* freed with the op once Redis answered */
    op->owned = s;
    s->op = op;
}


static void
ngx_http_voucher_settle_retry(ngx_http_voucher_settle_t *s)
{
    ngx_str_t       why;
    ngx_msec_t      delay;
    ngx_msec_int_t  left;

    if (s->store->pool == NULL) {
        ngx_str_set(&why, "the worker exits");
        ngx_http_voucher_settle_lost(s, &why);
        return;
    }

    left = (ngx_msec_int_t) (s->deadline - ngx_current_msec);

    if (left <= 0) {
        ngx_str_set(&why, "Redis did not take it before the hold ended");
        ngx_http_voucher_settle_lost(s, &why);
        return;
    }

    ngx_http_voucher_metrics_count(s->confirm ? NGX_HTTP_VOUCHER_M_CONFIRM
                                              : NGX_HTTP_VOUCHER_M_RELEASE,
                                   NGX_HTTP_VOUCHER_M_SETTLE_RETRIED);

    if (s->tries == 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "voucher gate: Redis cannot take the %s of %V now, "
                      "trying again for up to %M ms",
                      s->confirm ? "confirm" : "release", &s->id,
                      (ngx_msec_t) left);
    }

    delay = (s->tries < 2) ? (ngx_msec_t) NGX_HTTP_VOUCHER_SETTLE_DELAY
                             << s->tries
                           : NGX_HTTP_VOUCHER_SETTLE_MAX;

    ngx_add_timer(&s->timer, ngx_min(delay, (ngx_msec_t) left));
    s->tries++;
}


/*
 * The settlement will never reach Redis.  A lost confirm means an order
 * was placed whose use Redis gives back when the hold runs out; a lost
 * release, a use held until then.
 */

static void
ngx_http_voucher_settle_lost(ngx_http_voucher_settle_t *s, ngx_str_t *why)
{
    ngx_http_voucher_settle_sh_t  *sh;

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "voucher gate: %s of %V lost (%V); its hold ends in "
                  "Redis, which gives the use back",
                  s->confirm ? "confirm" : "release", &s->id, why);

    ngx_http_voucher_metrics_count(s->confirm ? NGX_HTTP_VOUCHER_M_CONFIRM
                                              : NGX_HTTP_VOUCHER_M_RELEASE,
                                   NGX_HTTP_VOUCHER_M_SETTLE_LOST);

    if (s->vmcf->settle_zone && s->vmcf->settle_zone->data) {
        sh = s->vmcf->settle_zone->data;

        (void) ngx_atomic_fetch_add(s->confirm ? &sh->lost_confirms
                                               : &sh->lost_releases, 1);
    }

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    ngx_queue_remove(&s->queue);

    if (s->op == NULL) {
        ngx_free(s);
    }

    /* else the op, answered or about to be dropped, frees it */
}


static void
ngx_http_voucher_settle_timer(ngx_event_t *ev)
{
    ngx_http_voucher_settle_send(ev->data);
}


static void
ngx_http_voucher_settle_handler(ngx_http_voucher_op_t *op, void *data,
    ngx_int_t rc)
{
    redisReply                 *reply = data;
    u_char                     *p, buf[128];
    ngx_str_t                   answer, why;
    redisReply                 *first;
    ngx_http_voucher_settle_t  *s;

    s = op->data;

    if (rc != NGX_HTTP_VOUCHER_REPLY || reply->type == REDIS_REPLY_ERROR) {
        /*
         * Lost, timed out, refused by a node that cannot take writes now
         * (READONLY, LOADING, MASTERDOWN, CLUSTERDOWN: it did not run), or
         * refused as a whole (a library being loaded again): confirm and
         * release may safely be sent again.
         */

        op->owned = NULL;
        s->op = NULL;
        ngx_http_voucher_settle_retry(s);
        return;
    }

    /* answered: the op frees s when this returns */

    first = (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0)
            ? reply->element[0] : reply;

    ngx_str_set(&answer, "?");

    if (first->type == REDIS_REPLY_STRING) {
        answer.data = (u_char *) first->str;
        answer.len = ngx_min(first->len, 64);
    }

    if (answer.len == 2 && ngx_strncmp(answer.data, "ok", 2) == 0) {
        if (s->tries) {
            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "voucher gate: %s of %V delivered",
                          s->confirm ? "confirm" : "release", &s->id);
        }

        ngx_queue_remove(&s->queue);
        return;
    }

    if (!s->confirm) {
        /* reservation_expired: Redis gave the use back by itself */
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "voucher gate: release of %V answered \"%V\"",
                      &s->id, &answer);

        ngx_queue_remove(&s->queue);
        return;
    }

    /* the order stands, but Redis did not keep the use */

    p = ngx_snprintf(buf, sizeof(buf), "Redis answered \"%V\"", &answer);

    why.data = buf;
    why.len = p - buf;

    ngx_http_voucher_settle_lost(s, &why);
}


/*
 * At the exit of the worker: a graceful exit waited for every settlement,
 * so those still here are cut short by a fast shutdown (SIGTERM).
 */

void
ngx_http_voucher_gate_exit_worker(ngx_http_voucher_main_conf_t *vmcf)
{
    ngx_str_t                   why;
    ngx_queue_t                *q;
    ngx_http_voucher_settle_t  *s;

    if (ngx_http_voucher_settling.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ngx_http_voucher_settling)) {
        q = ngx_queue_head(&ngx_http_voucher_settling);
        s = ngx_queue_data(q, ngx_http_voucher_settle_t, queue);

        if (s->op) {
            ngx_str_set(&why, "the worker exits before Redis answered");

        } else {
            ngx_str_set(&why, "the worker exits");
        }

        ngx_http_voucher_settle_lost(s, &why);
    }
}


/* ------------------------------------------------------------ variables */


ngx_str_t *
ngx_http_voucher_gate_limit_status(ngx_http_request_t *r)
{
    ngx_http_voucher_gate_t  *g;

    g = ngx_http_voucher_gate_get(r);

    return g ? &g->core.limit_status : NULL;
}


static ngx_int_t
ngx_http_voucher_gate_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                *s;
    ngx_http_voucher_gate_t  *g;

    g = ngx_http_voucher_gate_get(r);

    if (g == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((u_char *) g + data);

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = s->data;
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* $voucher_lost_confirms, $voucher_lost_releases: counts of all workers */

static ngx_int_t
ngx_http_voucher_lost_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                        *p;
    ngx_atomic_t                  *n;
    ngx_http_voucher_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_voucher_module);

    if (vmcf->settle_zone == NULL || vmcf->settle_zone->data == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_ATOMIC_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    n = (ngx_atomic_t *) ((u_char *) vmcf->settle_zone->data + data);

    v->data = p;
    v->len = ngx_sprintf(p, "%uA", *n) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * $voucher_body_NAME: the field NAME of the JSON body the gate read;
 * "__" walks into an object ($voucher_body_order__total).  Strings as
 * they are, other scalars as JSON text; objects and arrays are not
 * found, but an array of strings: its strings joined with "," (for
 * voucher_codes).
 */

static ngx_int_t
ngx_http_voucher_body_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *name = (ngx_str_t *) data;

    u_char                   *p, *last, *sep;
    char                     *text, key[128];
    size_t                    len;
    json_t                   *node;
    ngx_http_voucher_gate_t  *g;

    v->not_found = 1;

    g = ngx_http_voucher_gate_get(r);

    if (g == NULL || g->body == NULL) {
        return NGX_OK;
    }

    p = name->data + sizeof("voucher_body_") - 1;
    last = name->data + name->len;
    node = g->body;

    while (p < last) {
        sep = ngx_strlcasestrn(p, last, (u_char *) "__", 2 - 1);
        if (sep == NULL) {
            sep = last;
        }

        len = sep - p;

        if (len == 0 || len >= sizeof(key) || !json_is_object(node)) {
            return NGX_OK;
        }

        ngx_memcpy(key, p, len);
        key[len] = '\0';

        node = json_object_get(node, key);
        if (node == NULL) {
            return NGX_OK;
        }

        p = (sep == last) ? last : sep + 2;
    }

    if (json_is_string(node)) {
        v->data = (u_char *) json_string_value(node);
        v->len = json_string_length(node);

    } else if (json_is_array(node)) {
        return ngx_http_voucher_body_list(r, v, node);

    } else if (json_is_object(node) || json_is_null(node)) {
        return NGX_OK;

    } else {
        text = json_dumps(node, JSON_ENCODE_ANY);
        if (text == NULL) {
            return NGX_ERROR;
        }

        len = ngx_strlen(text);

        v->data = ngx_pnalloc(r->pool, len);
        if (v->data == NULL) {
            free(text);
            return NGX_ERROR;
        }

        ngx_memcpy(v->data, text, len);
        v->len = len;
        free(text);
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * A body array of strings as one value, its strings joined with ","; an
 * array holding anything else is not found.
 */

static ngx_int_t
ngx_http_voucher_body_list(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, json_t *node)
{
    u_char  *p;
    size_t   i, n, len;
    json_t  *e;

    n = json_array_size(node);
    len = 0;

    for (i = 0; i < n; i++) {
        e = json_array_get(node, i);

        if (!json_is_string(e)) {
            return NGX_OK;
        }

        len += json_string_length(e) + 1;
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;

    for (i = 0; i < n; i++) {
        e = json_array_get(node, i);

        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, json_string_value(e), json_string_length(e));
    }

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
