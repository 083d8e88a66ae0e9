
/*
 * Copyright (C) ngx_voucher authors
 *
 * Directives, configuration and the worker's life cycle.
 */


#include "ngx_http_voucher.h"


static ngx_int_t ngx_http_voucher_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_voucher_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_voucher_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_voucher_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_voucher_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_voucher_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_voucher_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_voucher_store(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_voucher_store_use(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_http_voucher_store_t *ngx_http_voucher_find_store(
    ngx_http_voucher_main_conf_t *vmcf, ngx_str_t *name);
static void ngx_http_voucher_store_unset(ngx_http_voucher_store_t *store);
static void ngx_http_voucher_store_defaults(ngx_http_voucher_store_t *store);
static char *ngx_http_voucher_store_parse(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_voucher_store_t *store, ngx_uint_t first);
static char *ngx_http_voucher_redis_address(ngx_conf_t *cf,
    ngx_http_voucher_store_t *store, ngx_str_t *addr);
static char *ngx_http_voucher_addr_list(ngx_conf_t *cf, ngx_array_t **out,
    ngx_str_t *list, in_port_t default_port);
static char *ngx_http_voucher_resolve(ngx_conf_t *cf, ngx_str_t *text,
    in_port_t default_port, ngx_http_voucher_addr_t *addr);
static char *ngx_http_voucher_read_secret(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *secret);
static char *ngx_http_voucher_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_voucher_namespace(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_voucher_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_voucher_init_process(ngx_cycle_t *cycle);
static void ngx_http_voucher_exit_process(ngx_cycle_t *cycle);


static ngx_str_t  ngx_http_voucher_limit_var_name =
    ngx_string("voucher_limit_status");


static ngx_conf_num_bounds_t  ngx_http_voucher_code_length_bounds = {
    ngx_conf_check_num_bounds, 1, 1024
};

static ngx_conf_num_bounds_t  ngx_http_voucher_max_items_bounds = {
    ngx_conf_check_num_bounds, 0, 10000
};

static ngx_conf_num_bounds_t  ngx_http_voucher_status_bounds = {
    ngx_conf_check_num_bounds, 400, 599
};

static ngx_conf_enum_t  ngx_http_voucher_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_voucher_client_abort[] = {
    { ngx_string("release"), 0 },
    { ngx_string("keep"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_voucher_commands[] = {

    { ngx_string("voucher_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_voucher_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_voucher_store,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_store_use"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_store_use,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_lockout_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_lockout_cache,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_hot_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_voucher_hot_cache,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_voucher_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_namespace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_namespace,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, ns),
      NULL },

    { ngx_string("voucher_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, max_body_size),
      NULL },

    { ngx_string("voucher_code_max_length"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, code_max_length),
      &ngx_http_voucher_code_length_bounds },

    { ngx_string("voucher_max_items"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, max_items),
      &ngx_http_voucher_max_items_bounds },

    { ngx_string("voucher_validate_fail_open"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, validate_fail_open),
      NULL },

    { ngx_string("voucher_code_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_code_key,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_code_key_previous"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_voucher_code_key_previous,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_code_issued"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF
                        |NGX_CONF_TAKE3|NGX_CONF_TAKE4|NGX_CONF_TAKE5,
      ngx_http_voucher_code_issued,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_code_pattern"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_code_pattern,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_voucher_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_lockout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_voucher_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_limit_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, limit_status),
      &ngx_http_voucher_status_bounds },

    { ngx_string("voucher_limit_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, limit_log_level),
      &ngx_http_voucher_log_levels },

    { ngx_string("voucher_limit_dry_run"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, limit_dry_run),
      NULL },

    { ngx_string("voucher_hold_time"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, hold),
      NULL },

    { ngx_string("voucher_gate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_gate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_code"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_gate_value,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, gate_code),
      NULL },

    { ngx_string("voucher_codes"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_voucher_gate_codes,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_customer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_gate_value,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, gate_customer),
      NULL },

    { ngx_string("voucher_order_amount"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_gate_value,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, gate_amount),
      NULL },

    { ngx_string("voucher_currency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_gate_value,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, gate_currency),
      NULL },

    { ngx_string("voucher_order_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_gate_value,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, gate_order_id),
      NULL },

    { ngx_string("voucher_idempotency_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_gate_value,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, gate_idempotency_key),
      NULL },

    { ngx_string("voucher_points"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_voucher_gate_value,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, gate_points),
      NULL },

    { ngx_string("voucher_metadata"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE3,
      ngx_http_voucher_gate_meta,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_code_required"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, gate_code_required),
      NULL },

    { ngx_string("voucher_client_abort"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, gate_abort_keep),
      &ngx_http_voucher_client_abort },

    { ngx_string("voucher_confirm_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_voucher_confirm_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("voucher_code_debug"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_voucher_loc_conf_t, code_debug),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_voucher_module_ctx = {
    ngx_http_voucher_preconfiguration,     /* preconfiguration */
    ngx_http_voucher_postconfiguration,    /* postconfiguration */

    ngx_http_voucher_create_main_conf,     /* create main configuration */
    ngx_http_voucher_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_voucher_create_loc_conf,      /* create location configuration */
    ngx_http_voucher_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_voucher_module = {
    NGX_MODULE_V1,
    &ngx_http_voucher_module_ctx,          /* module context */
    ngx_http_voucher_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_voucher_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_voucher_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_voucher_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_voucher_limit_var_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_voucher_limit_variable;

    return ngx_http_voucher_gate_add_variables(cf);
}


/*
 * $voucher_limit_status: what the limits said of this request, through
 * the API (its module context) or the gate (which keeps its own across
 * internal redirects).
 */

static ngx_int_t
ngx_http_voucher_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                *status;
    ngx_http_voucher_core_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_voucher_module);

    status = ctx ? &ctx->limit_status : ngx_http_voucher_gate_limit_status(r);

    if (status == NULL || status->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = status->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = status->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_voucher_postconfiguration(ngx_conf_t *cf)
{
    return ngx_http_voucher_gate_init(cf);
}


static void *
ngx_http_voucher_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_voucher_main_conf_t  *vmcf;

    vmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_voucher_main_conf_t));
    if (vmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     vmcf->store.addr_text = { 0, NULL };
     *     vmcf->store.host = { 0, NULL };
     *     vmcf->store.unix_path = { 0, NULL };
     *     vmcf->store.user = { 0, NULL };
     *     vmcf->store.password = { 0, NULL };
     *     vmcf->store.sentinels = NULL;
     *     vmcf->store.master_name = { 0, NULL };
     *     vmcf->store.sentinel_password = { 0, NULL };
     *     vmcf->store.pool = NULL;
     *     vmcf->stores = NULL;
     *     vmcf->configured = 0;
     */

    ngx_http_voucher_store_unset(&vmcf->store);

    return vmcf;
}


static char *
ngx_http_voucher_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_voucher_main_conf_t  *vmcf = conf;

    ngx_uint_t                  i;
    ngx_http_voucher_store_t  **stores;

    ngx_http_voucher_store_defaults(&vmcf->store);

    if (vmcf->stores) {
        stores = vmcf->stores->elts;

        for (i = 0; i < vmcf->stores->nelts; i++) {
            ngx_http_voucher_store_defaults(stores[i]);
        }
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_voucher_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_voucher_loc_conf_t  *vlcf;

    vlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_voucher_loc_conf_t));
    if (vlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     vlcf->api = 0;
     *     vlcf->ns = { 0, NULL };
     *     vlcf->store = NULL;
     *     vlcf->store_name = { 0, NULL };
     *     vlcf->code_keys = NULL;
     *     vlcf->code_issued = NULL;
     *     vlcf->code_patterns = NULL;
     *     vlcf->limits = NULL;
     *     vlcf->gate_code = NULL;
     *     vlcf->gate_codes = NULL;
     *     vlcf->gate_customer = NULL;
     *     vlcf->gate_amount = NULL;
     *     vlcf->gate_currency = NULL;
     *     vlcf->gate_order_id = NULL;
     *     vlcf->gate_idempotency_key = NULL;
     *     vlcf->gate_points = NULL;
     *     vlcf->gate_meta = NULL;
     *     vlcf->gate_body = 0;
     *     vlcf->gate_fields = NULL;
     */

    vlcf->max_body_size = NGX_CONF_UNSET_SIZE;
    vlcf->code_max_length = NGX_CONF_UNSET_UINT;
    vlcf->max_items = NGX_CONF_UNSET_UINT;
    vlcf->validate_fail_open = NGX_CONF_UNSET;
    vlcf->code_debug = NGX_CONF_UNSET;
    vlcf->limit_status = NGX_CONF_UNSET_UINT;
    vlcf->limit_log_level = NGX_CONF_UNSET_UINT;
    vlcf->limit_dry_run = NGX_CONF_UNSET;
    vlcf->hold = NGX_CONF_UNSET_MSEC;
    vlcf->gate = NGX_CONF_UNSET;
    vlcf->gate_code_required = NGX_CONF_UNSET;
    vlcf->gate_confirm = NGX_CONF_UNSET_PTR;
    vlcf->gate_abort_keep = NGX_CONF_UNSET;
    vlcf->gate_codes_sep = NGX_CONF_UNSET;

    return vlcf;
}


static char *
ngx_http_voucher_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_voucher_loc_conf_t *prev = parent;
    ngx_http_voucher_loc_conf_t *conf = child;

    ngx_http_voucher_main_conf_t  *vmcf;

    ngx_conf_merge_str_value(conf->ns, prev->ns, "v");

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_voucher_module);

    ngx_conf_merge_str_value(conf->store_name, prev->store_name, "");

    if (conf->store_name.len == 0) {
        conf->store = &vmcf->store;

    } else {
        conf->store = ngx_http_voucher_find_store(vmcf, &conf->store_name);

        if (conf->store == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "no \"voucher_store %V\" for "
                               "\"voucher_store_use\"", &conf->store_name);
            return NGX_CONF_ERROR;
        }
    }

    ngx_conf_merge_size_value(conf->max_body_size, prev->max_body_size,
                              16384);
    ngx_conf_merge_uint_value(conf->code_max_length, prev->code_max_length,
                              64);
    ngx_conf_merge_uint_value(conf->max_items, prev->max_items, 100);
    ngx_conf_merge_value(conf->validate_fail_open, prev->validate_fail_open,
                         0);

    if (ngx_http_voucher_code_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_voucher_limit_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_voucher_gate_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->api) {
        if (conf->store == &vmcf->store && !vmcf->configured) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"voucher_api\" needs \"voucher_redis\" "
                               "in the http block, or \"voucher_store_use\"");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* voucher_redis ADDRESS | sentinel=... [parameters]; (http) */

static char *
ngx_http_voucher_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_main_conf_t *vmcf = conf;

    char  *rv;

    if (vmcf->configured) {
        return "is duplicate";
    }

    /* the parser's messages are of this directive */

    rv = ngx_http_voucher_store_parse(cf, cmd, &vmcf->store, 1);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    vmcf->configured = 1;

    return NGX_CONF_OK;
}


/*
 * voucher_store NAME ADDRESS | sentinel=... [parameters]; (http): a store
 * of its own (a tenant's Redis), chosen with voucher_store_use NAME.
 */

static char *
ngx_http_voucher_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_main_conf_t *vmcf = conf;

    char                       *rv;
    u_char                     *p, c;
    ngx_str_t                  *value;
    ngx_uint_t                  i;
    ngx_http_voucher_store_t  **slot, *store;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > 32) {
        return "needs a name of 1 to 32 characters";
    }

    for (i = 0; i < value[1].len; i++) {
        c = value[1].data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return "needs a name of letters, digits, \"_\" and \"-\"";
        }
    }

    if (ngx_http_voucher_find_store(vmcf, &value[1]) != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate store \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (vmcf->stores == NULL) {
        vmcf->stores = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_http_voucher_store_t *));
        if (vmcf->stores == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    store = ngx_pcalloc(cf->pool, sizeof(ngx_http_voucher_store_t));
    if (store == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_http_voucher_store_unset(store);
    store->name = value[1];

    rv = ngx_http_voucher_store_parse(cf, cmd, store, 2);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    /* for logs: "NAME@ADDRESS" (or "NAME@MASTER") */

    p = ngx_pnalloc(cf->pool, store->name.len + 1 + store->addr_text.len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    store->addr_text.len = ngx_sprintf(p, "%V@%V", &store->name,
                                       &store->addr_text)
                           - p;
    store->addr_text.data = p;

    slot = ngx_array_push(vmcf->stores);
    if (slot == NULL) {
        return NGX_CONF_ERROR;
    }

    *slot = store;

    return NGX_CONF_OK;
}


/* voucher_store_use NAME; (http, server, location) */

static char *
ngx_http_voucher_store_use(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    ngx_str_t  *value;

    if (vlcf->store_name.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "needs a name";
    }

    /* looked up at merge time: voucher_store may come later in http{} */
    vlcf->store_name = value[1];

    return NGX_CONF_OK;
}


static ngx_http_voucher_store_t *
ngx_http_voucher_find_store(ngx_http_voucher_main_conf_t *vmcf,
    ngx_str_t *name)
{
    ngx_uint_t                  i;
    ngx_http_voucher_store_t  **stores;

    if (vmcf->stores == NULL) {
        return NULL;
    }

    stores = vmcf->stores->elts;

    for (i = 0; i < vmcf->stores->nelts; i++) {
        if (stores[i]->name.len == name->len
            && ngx_strncmp(stores[i]->name.data, name->data, name->len) == 0)
        {
            return stores[i];
        }
    }

    return NULL;
}


static void
ngx_http_voucher_store_unset(ngx_http_voucher_store_t *store)
{
    store->db = NGX_CONF_UNSET;
    store->connect_timeout = NGX_CONF_UNSET_MSEC;
    store->timeout = NGX_CONF_UNSET_MSEC;
    store->connections = NGX_CONF_UNSET_UINT;
    store->max_pending = NGX_CONF_UNSET_UINT;
    store->replicated = NGX_CONF_UNSET;
    store->replica_timeout = NGX_CONF_UNSET_MSEC;
}


static void
ngx_http_voucher_store_defaults(ngx_http_voucher_store_t *store)
{
    ngx_conf_init_value(store->db, 0);
    ngx_conf_init_msec_value(store->connect_timeout, 1000);
    ngx_conf_init_msec_value(store->timeout, 1000);
    ngx_conf_init_uint_value(store->connections, 2);
    ngx_conf_init_uint_value(store->max_pending, 4096);
    ngx_conf_init_value(store->replicated, 0);

    /* WAIT answers before the command's own timer fires */
    ngx_conf_init_msec_value(store->replica_timeout,
                             ngx_max(store->timeout / 2, 1));
}


/*
 * The parameters of voucher_redis and voucher_store, from value[first]:
 *
 *   ADDRESS | sentinel=HOST:PORT[,HOST:PORT...] master=NAME
 *   [sentinel_password_file=PATH] [durability=default|replicated]
 *   [replica_timeout=TIME] [replicas=HOST:PORT[,HOST:PORT...]|sentinel]
 *   [db=N] [user=NAME] [password=SECRET]
 *   [password_file=PATH] [connect_timeout=TIME] [timeout=TIME]
 *   [connections=N] [max_pending=N]
 */

static char *
ngx_http_voucher_store_parse(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_voucher_store_t *store, ngx_uint_t first)
{
    char        *rv;
    ngx_int_t    n;
    ngx_str_t   *value, s, file;
    ngx_msec_t   ms;
    ngx_uint_t   i;

    value = cf->args->elts;

    /* the address, if given, comes first; every other parameter has a "=" */

    i = first;

    if (ngx_strlchr(value[i].data, value[i].data + value[i].len, '=')
        == NULL)
    {
        rv = ngx_http_voucher_redis_address(cf, store, &value[i]);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        i++;
    }

    for ( /* void */ ; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "sentinel=", 9) == 0) {
            if (store->sentinels) {
                goto invalid;
            }

            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            rv = ngx_http_voucher_addr_list(cf, &store->sentinels, &s, 26379);
            if (rv != NGX_CONF_OK) {
                return rv;
            }
            continue;
        }

        if (ngx_strcmp(value[i].data, "replicas=sentinel") == 0) {
            if (store->replicas || store->replicas_sentinel) {
                goto invalid;
            }

            store->replicas_sentinel = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "replicas=", 9) == 0) {
            if (store->replicas || store->replicas_sentinel) {
                goto invalid;
            }

            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            rv = ngx_http_voucher_addr_list(cf, &store->replicas, &s, 6379);
            if (rv != NGX_CONF_OK) {
                return rv;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "master=", 7) == 0) {
            store->master_name.data = value[i].data + 7;
            store->master_name.len = value[i].len - 7;
            if (store->master_name.len == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "sentinel_password_file=", 23) == 0) {
            file.data = value[i].data + 23;
            file.len = value[i].len - 23;
            rv = ngx_http_voucher_read_secret(cf, &file,
                                              &store->sentinel_password);
            if (rv != NGX_CONF_OK) {
                return rv;
            }
            continue;
        }

        if (ngx_strcmp(value[i].data, "durability=replicated") == 0) {
            store->replicated = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "durability=default") == 0) {
            store->replicated = 0;
            continue;
        }

        if (ngx_strncmp(value[i].data, "replica_timeout=", 16) == 0) {
            s.data = value[i].data + 16;
            s.len = value[i].len - 16;
            ms = ngx_parse_time(&s, 0);
            if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
                goto invalid;
            }
            store->replica_timeout = ms;
            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (n == NGX_ERROR || n > 1000000) {
                goto invalid;
            }
            store->db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            store->user.data = value[i].data + 5;
            store->user.len = value[i].len - 5;
            if (store->user.len == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            store->password.data = value[i].data + 9;
            store->password.len = value[i].len - 9;
            if (store->password.len == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "password_file=", 14) == 0) {
            file.data = value[i].data + 14;
            file.len = value[i].len - 14;
            rv = ngx_http_voucher_read_secret(cf, &file, &store->password);
            if (rv != NGX_CONF_OK) {
                return rv;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "connect_timeout=", 16) == 0) {
            s.data = value[i].data + 16;
            s.len = value[i].len - 16;
            ms = ngx_parse_time(&s, 0);
            if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
                goto invalid;
            }
            store->connect_timeout = ms;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            ms = ngx_parse_time(&s, 0);
            if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
                goto invalid;
            }
            store->timeout = ms;
            continue;
        }

        if (ngx_strncmp(value[i].data, "connections=", 12) == 0) {
            n = ngx_atoi(value[i].data + 12, value[i].len - 12);
            if (n == NGX_ERROR || n < 1 || n > 64) {
                goto invalid;
            }
            store->connections = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_pending=", 12) == 0) {
            n = ngx_atoi(value[i].data + 12, value[i].len - 12);
            if (n == NGX_ERROR || n < 1) {
                goto invalid;
            }
            store->max_pending = n;
            continue;
        }

        goto invalid;
    }

    if (store->user.len && store->password.len == 0) {
        return "has \"user=\" without a password";
    }

    if (store->replica_timeout != NGX_CONF_UNSET_MSEC
        && store->timeout != NGX_CONF_UNSET_MSEC
        && store->replica_timeout >= store->timeout)
    {
        return "has \"replica_timeout=\" not below \"timeout=\"";
    }

    if (store->replicas_sentinel && store->sentinels == NULL) {
        return "has \"replicas=sentinel\" without \"sentinel=\"";
    }

    if (store->sentinels) {
        if (store->addr_text.len) {
            return "takes an address or \"sentinel=\", not both";
        }

        if (store->master_name.len == 0) {
            return "has \"sentinel=\" without \"master=\"";
        }

        /* for logs: the master by its name */
        store->addr_text = store->master_name;

    } else if (store->master_name.len || store->sentinel_password.len) {
        return "has \"master=\" or \"sentinel_password_file=\" "
               "without \"sentinel=\"";

    } else if (store->addr_text.len == 0) {
        return "needs an address or \"sentinel=\"";
    }

    return NGX_CONF_OK;

invalid:

    /* do not echo the parameter: it may carry a password */

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter #%ui of \"%V\"", i, &cmd->name);

    return NGX_CONF_ERROR;
}


/* resolved here, once: a worker must never call getaddrinfo() */

static char *
ngx_http_voucher_redis_address(ngx_conf_t *cf,
    ngx_http_voucher_store_t *store, ngx_str_t *addr)
{
    ngx_http_voucher_addr_t  a;

    store->addr_text = *addr;

    if (addr->len > 5 && ngx_strncmp(addr->data, "unix:", 5) == 0) {

        /* hiredis would cut a longer path silently */
        if (addr->len - 5 >= sizeof(((struct sockaddr_un *) 0)->sun_path)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unix socket path \"%V\" is too long",
                               addr);
            return NGX_CONF_ERROR;
        }

        store->unix_path.len = addr->len - 5;
        store->unix_path.data = ngx_pnalloc(cf->pool, addr->len - 4);
        if (store->unix_path.data == NULL) {
            return NGX_CONF_ERROR;
        }
        ngx_cpystrn(store->unix_path.data, addr->data + 5, addr->len - 4);
        return NGX_CONF_OK;
    }

    if (ngx_http_voucher_resolve(cf, addr, 6379, &a) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    store->host = a.host;
    store->port = a.port;

    return NGX_CONF_OK;
}


/*
 * sentinel=HOST:PORT,... (port 26379 by default) and replicas=HOST:PORT,...
 * (6379): a list of addresses, resolved here
 */

static char *
ngx_http_voucher_addr_list(ngx_conf_t *cf, ngx_array_t **out,
    ngx_str_t *list, in_port_t default_port)
{
    u_char                   *p, *last, *comma;
    ngx_str_t                 one;
    ngx_http_voucher_addr_t  *a;

    *out = ngx_array_create(cf->pool, 3, sizeof(ngx_http_voucher_addr_t));
    if (*out == NULL) {
        return NGX_CONF_ERROR;
    }

    p = list->data;
    last = list->data + list->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        one.data = p;
        one.len = comma - p;

        if (one.len == 0) {
            return (default_port == 26379)
                   ? "has an empty address in \"sentinel=\""
                   : "has an empty address in \"replicas=\"";
        }

        a = ngx_array_push(*out);
        if (a == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_http_voucher_resolve(cf, &one, default_port, a)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        p = comma + 1;
    }

    if ((*out)->nelts == 0) {
        return (default_port == 26379) ? "has no address in \"sentinel=\""
                                       : "has no address in \"replicas=\"";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_voucher_resolve(ngx_conf_t *cf, ngx_str_t *text,
    in_port_t default_port, ngx_http_voucher_addr_t *addr)
{
    u_char     *p;
    ngx_url_t   u;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *text;
    u.default_port = default_port;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (u.err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in \"%V\" of \"voucher_redis\"",
                               u.err, &u.url);
        }
        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0 || u.uri.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid address \"%V\" in \"voucher_redis\"",
                           &u.url);
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    addr->text = *text;
    addr->host.data = p;
    addr->host.len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen,
                                   p, NGX_SOCKADDR_STRLEN, 0);
    p[addr->host.len] = '\0';
    addr->port = u.port;

    return NGX_CONF_OK;
}


static char *
ngx_http_voucher_read_secret(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *secret)
{
    u_char           *buf;
    size_t            len;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         name;
    ngx_file_info_t   fi;

    name = *file;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", &name);
        goto failed;
    }

    len = (size_t) ngx_file_size(&fi);

    if (len == 0 || len > 4096) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "secret file \"%V\" must hold 1 to 4096 bytes",
                           &name);
        goto failed;
    }

    buf = ngx_pnalloc(cf->pool, len);
    if (buf == NULL) {
        goto failed;
    }

    n = ngx_read_fd(fd, buf, len);
    if (n != (ssize_t) len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%V\" failed", &name);
        goto failed;
    }

    ngx_close_file(fd);

    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        len--;
    }

    if (len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "secret file \"%V\" is empty", &name);
        return NGX_CONF_ERROR;
    }

    secret->data = buf;
    secret->len = len;

    return NGX_CONF_OK;

failed:

    ngx_close_file(fd);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_voucher_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (vlcf->api) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "validate") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_VALIDATE;

    } else if (ngx_strcmp(value[1].data, "redeem") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_REDEEM;

    } else if (ngx_strcmp(value[1].data, "rollback") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_ROLLBACK;

    } else if (ngx_strcmp(value[1].data, "reserve") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_RESERVE;

    } else if (ngx_strcmp(value[1].data, "confirm") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_CONFIRM;

    } else if (ngx_strcmp(value[1].data, "release") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_RELEASE;

    } else if (ngx_strcmp(value[1].data, "wallet") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_WALLET;

    } else if (ngx_strcmp(value[1].data, "wallet_save") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_WALLET_SAVE;

    } else if (ngx_strcmp(value[1].data, "qualify") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_QUALIFY;

    } else if (ngx_strcmp(value[1].data, "loyalty_earn") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_LOYALTY_EARN;

    } else if (ngx_strcmp(value[1].data, "loyalty_balance") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_LOYALTY_BALANCE;

    } else if (ngx_strcmp(value[1].data, "loyalty_history") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_LOYALTY_HISTORY;

    } else if (ngx_strcmp(value[1].data, "event") == 0) {
        vlcf->api = NGX_HTTP_VOUCHER_OP_EVENT;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"voucher_api\", "
                           "it must be \"validate\", \"redeem\", "
                           "\"rollback\", \"reserve\", \"confirm\", "
                           "\"release\", \"wallet\", \"wallet_save\", "
                           "\"qualify\", \"loyalty_earn\", "
                           "\"loyalty_balance\", \"loyalty_history\" "
                           "or \"event\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_voucher_api_handler;

    return NGX_CONF_OK;
}


/* the namespace becomes a Redis Cluster hash tag: no braces inside */

static char *
ngx_http_voucher_namespace(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_loc_conf_t *vlcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (vlcf->ns.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > 64) {
        return "must be 1 to 64 characters long";
    }

    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] <= 0x20 || value[1].data[i] >= 0x7f
            || value[1].data[i] == '{' || value[1].data[i] == '}')
        {
            return "may hold printable ASCII except braces and spaces";
        }
    }

    vlcf->ns = value[1];

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_voucher_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i;
    ngx_http_voucher_store_t      **stores;
    ngx_http_voucher_main_conf_t   *vmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    vmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_voucher_module);
    if (vmcf == NULL) {
        return NGX_OK;
    }

    ngx_http_voucher_metrics_init_worker(vmcf);

    /* each store its own connections, library check and Sentinel link */

    if (vmcf->configured
        && ngx_http_voucher_redis_init_worker(cycle, &vmcf->store) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (vmcf->stores) {
        stores = vmcf->stores->elts;

        for (i = 0; i < vmcf->stores->nelts; i++) {
            if (ngx_http_voucher_redis_init_worker(cycle, stores[i])
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static void
ngx_http_voucher_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i;
    ngx_http_voucher_store_t      **stores;
    ngx_http_voucher_main_conf_t   *vmcf;

    vmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_voucher_module);
    if (vmcf == NULL) {
        return;
    }

    /* first the settlements still waiting, while their ops exist */
    ngx_http_voucher_gate_exit_worker(vmcf);

    if (vmcf->store.pool) {
        ngx_http_voucher_redis_exit_worker(&vmcf->store);
    }

    if (vmcf->stores) {
        stores = vmcf->stores->elts;

        for (i = 0; i < vmcf->stores->nelts; i++) {
            if (stores[i]->pool) {
                ngx_http_voucher_redis_exit_worker(stores[i]);
            }
        }
    }
}
