
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucher_metrics: the location that serves the counters of every worker
 * (ngx_http_voucher_metrics.c) as Prometheus text, format 0.0.4.  Nothing
 * here holds a code, a customer or a key: the labels are operations,
 * statuses, reasons, store names and fixed words.
 */


#include "ngx_http_voucher_metrics.h"

/* the version of the library, not its text */
#define VOUCHER_LUA_NAMES_ONLY
#include "voucher_lua.h"


typedef struct {
    ngx_buf_t                      *b;
    ngx_chain_t                    *out, **last;
    ngx_pool_t                     *pool;
} ngx_http_voucher_metrics_out_t;


static ngx_int_t ngx_http_voucher_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_voucher_metrics_render(
    ngx_http_voucher_metrics_out_t *o, ngx_http_voucher_main_conf_t *vmcf,
    ngx_http_voucher_metrics_sh_t *sh);
static ngx_int_t ngx_http_voucher_metrics_printf(
    ngx_http_voucher_metrics_out_t *o, const char *fmt, ...);
static ngx_int_t ngx_http_voucher_metrics_head(
    ngx_http_voucher_metrics_out_t *o, const char *name, const char *type,
    const char *help);
static ngx_str_t *ngx_http_voucher_metrics_reason(ngx_uint_t i);
static ngx_http_voucher_metrics_store_t *ngx_http_voucher_metrics_store(
    ngx_http_voucher_metrics_sh_t *sh, ngx_uint_t *i, u_char *name,
    size_t *len);
static u_char *ngx_http_voucher_metrics_escape(u_char *dst, u_char *src,
    size_t len);


static ngx_str_t  ngx_http_voucher_metrics_ops[NGX_HTTP_VOUCHER_M_OPS] = {
    ngx_string("other"),
    ngx_string("validate"),
    ngx_string("redeem"),
    ngx_string("rollback"),
    ngx_string("reserve"),
    ngx_string("confirm"),
    ngx_string("release"),
    ngx_string("wallet"),
    ngx_string("wallet_save"),
    ngx_string("qualify"),
    ngx_string("loyalty_earn"),
    ngx_string("loyalty_balance"),
    ngx_string("loyalty_history"),
    ngx_string("event"),
    ngx_null_string, ngx_null_string, ngx_null_string,
    ngx_string("gate_validate"),
    ngx_string("gate_redeem")
};


static const char  *ngx_http_voucher_metrics_le[NGX_HTTP_VOUCHER_M_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5"
};


static const char  *ngx_http_voucher_metrics_offline_names[] = {
    "code_malformed", "code_forged"
};


static const char  *ngx_http_voucher_metrics_settle_names[] = {
    "started", "retried", "lost"
};


/* voucher_metrics; (location) */

char *
ngx_http_voucher_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    size_t                           size;
    ngx_str_t                        name;
    ngx_shm_zone_t                  *zone;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_voucher_main_conf_t    *vmcf;
    ngx_http_voucher_metrics_ctx_t  *ctx;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_voucher_metrics_handler) {
        return "is duplicate";
    }

    if (clcf->handler) {
        return "conflicts with another handler of this location";
    }

    clcf->handler = ngx_http_voucher_metrics_handler;

    vmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_voucher_module);

    if (vmcf->metrics_zone) {
        return NGX_CONF_OK;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_voucher_metrics_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    ctx->vmcf = vmcf;

    ngx_str_set(&name, "voucher_metrics");

    /* every reason of reply.c's table has its slot */
    if (ngx_http_voucher_reason_name(NGX_HTTP_VOUCHER_M_REASONS
                                     - NGX_HTTP_VOUCHER_M_R_TABLE)
        != NULL)
    {
        return "has too few reason slots (NGX_HTTP_VOUCHER_M_REASONS)";
    }

    /* the slab pool's own pages besides the table, and the version's */
    size = ngx_align(sizeof(ngx_http_voucher_metrics_sh_t), ngx_pagesize)
           + (8 + NGX_HTTP_VOUCHER_M_VERSION) * ngx_pagesize;

    zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_voucher_module);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->init = ngx_http_voucher_metrics_init_zone;
    zone->data = ctx;

    vmcf->metrics_zone = zone;

    return NGX_CONF_OK;
}


/* ------------------------------------------------------------ the scrape */


static ngx_int_t
ngx_http_voucher_metrics_handler(ngx_http_request_t *r)
{
    off_t                            len;
    ngx_int_t                        rc;
    ngx_chain_t                     *cl;
    ngx_http_voucher_main_conf_t    *vmcf;
    ngx_http_voucher_metrics_ctx_t  *ctx;
    ngx_http_voucher_metrics_out_t   o;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_voucher_module);
    ctx = vmcf->metrics_zone->data;

    ngx_memzero(&o, sizeof(ngx_http_voucher_metrics_out_t));
    o.pool = r->pool;
    o.last = &o.out;

    if (ngx_http_voucher_metrics_render(&o, vmcf, ctx->sh) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = 0;

    for (cl = o.out; cl; cl = cl->next) {
        len += cl->buf->last - cl->buf->pos;
    }

    if (o.b) {
        o.b->last_buf = (r == r->main) ? 1 : 0;
        o.b->last_in_chain = 1;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only || o.out == NULL) {
        return rc;
    }

    return ngx_http_output_filter(r, o.out);
}


static ngx_int_t
ngx_http_voucher_metrics_render(ngx_http_voucher_metrics_out_t *o,
    ngx_http_voucher_main_conf_t *vmcf, ngx_http_voucher_metrics_sh_t *sh)
{
    u_char                            *st, sbuf[4];
    u_char                             nbuf[2 * NGX_HTTP_VOUCHER_M_STORE_NAME];
    size_t                             nlen;
    uint64_t                           cum;
    ngx_str_t                         *reason;
    ngx_uint_t                         op, s, i, k, p, any;
    ngx_atomic_int_t                   v;
    ngx_http_voucher_metrics_store_t  *ms;

    static const char  *states[] = { "down", "connecting", "up" };
    static const char  *roles[] = { "master", "replica" };
    static const char  *paths[] = { "native", "fcall" };

#define ngx_http_voucher_m(args)                                             \
    if (ngx_http_voucher_metrics_printf args != NGX_OK) return NGX_ERROR

#define ngx_http_voucher_head(n, t, h)                                       \
    if (ngx_http_voucher_metrics_head(o, n, t, h) != NGX_OK) return NGX_ERROR

    ngx_http_voucher_head("voucher_info", "gauge",
                          "1, with the version of the function library "
                          "this nginx calls.");
    ngx_http_voucher_m((o, "voucher_info{library=\"%s\"} 1\n",
                        VOUCHER_LUA_VERSION));

    ngx_http_voucher_head("voucher_requests_total", "counter",
                          "Requests answered, by operation, HTTP status "
                          "and reason.");

    for (op = 0; op < NGX_HTTP_VOUCHER_M_OPS; op++) {
        if (ngx_http_voucher_metrics_ops[op].len == 0) {
            /* counted with "other" */
            continue;
        }

        for (s = 0; s < NGX_HTTP_VOUCHER_M_STATUSES; s++) {
            for (i = 0; i < NGX_HTTP_VOUCHER_M_REASONS; i++) {
                v = sh->requests[op][s][i];

                for (k = 0; op == 0 && k < NGX_HTTP_VOUCHER_M_OPS; k++) {
                    if (ngx_http_voucher_metrics_ops[k].len == 0) {
                        v += sh->requests[k][s][i];
                    }
                }

                if (v == 0) {
                    continue;
                }

                reason = ngx_http_voucher_metrics_reason(i);
                st = sbuf;
                (void) ngx_http_voucher_metrics_status_text(s, st);

                ngx_http_voucher_m((o, "voucher_requests_total{op=\"%V\","
                                    "status=\"%*s\",reason=\"%V\"} %A\n",
                                    &ngx_http_voucher_metrics_ops[op],
                                    (size_t) 3, st,
                                    reason ? reason
                                           : ngx_http_voucher_metrics_reason(
                                                 NGX_HTTP_VOUCHER_M_R_OTHER),
                                    v));
            }
        }
    }

    ngx_http_voucher_head("voucher_offline_refusals_total", "counter",
                          "Codes refused in nginx without Redis: the "
                          "format or the MAC.");

    for (i = 0; i < NGX_HTTP_VOUCHER_M_OFFLINE_N; i++) {
        ngx_http_voucher_m((o, "voucher_offline_refusals_total"
                            "{reason=\"%s\"} %A\n",
                            ngx_http_voucher_metrics_offline_names[i],
                            (ngx_atomic_int_t) sh->offline[i]));
    }

    ngx_http_voucher_head("voucher_limit_decisions_total", "counter",
                          "Decisions of the attempt limits Redis took.");

    for (i = 0; i < NGX_HTTP_VOUCHER_M_LIMIT_N; i++) {
        ngx_http_voucher_m((o, "voucher_limit_decisions_total"
                            "{decision=\"%s\"} %A\n",
                            ngx_http_voucher_metrics_limit_name(i),
                            (ngx_atomic_int_t) sh->limit[i]));
    }

    ngx_http_voucher_head("voucher_lockout_cache_refusals_total", "counter",
                          "Requests the lockout cache refused without "
                          "Redis.");
    ngx_http_voucher_m((o, "voucher_lockout_cache_refusals_total %A\n",
                        (ngx_atomic_int_t) sh->lockout_refused));

    ngx_http_voucher_head("voucher_lockout_cache_bans_total", "counter",
                          "Bans the lockout cache learned from Redis.");
    ngx_http_voucher_m((o, "voucher_lockout_cache_bans_total %A\n",
                        (ngx_atomic_int_t) sh->lockout_learned));

    if (vmcf->lockout_zone) {
        ngx_http_voucher_head("voucher_lockout_cache_entries", "gauge",
                              "Bans in the lockout cache now.");
        ngx_http_voucher_m((o, "voucher_lockout_cache_entries %ui\n",
                            ngx_http_voucher_lockout_entries(vmcf)));
    }

    ngx_http_voucher_head("voucher_hot_cache_answers_total", "counter",
                          "Requests the hot code cache answered without "
                          "Redis.");
    ngx_http_voucher_m((o, "voucher_hot_cache_answers_total %A\n",
                        (ngx_atomic_int_t) sh->hot_answers));

    ngx_http_voucher_head("voucher_settlements_total", "counter",
                          "Gate confirms and releases: started, tries "
                          "again, lost.");

    for (k = 0; k < 2; k++) {
        for (i = 0; i < NGX_HTTP_VOUCHER_M_SETTLE_N; i++) {
            ngx_http_voucher_m((o, "voucher_settlements_total"
                                "{kind=\"%s\",outcome=\"%s\"} %A\n",
                                k ? "release" : "confirm",
                                ngx_http_voucher_metrics_settle_names[i],
                                (ngx_atomic_int_t) sh->settle[k][i]));
        }
    }

    /* the stores: store="" is voucher_redis' */

    ngx_http_voucher_head("voucher_redis_connections", "gauge",
                          "Connections to Redis of every worker, by "
                          "state.");

    for (i = 0;
         (ms = ngx_http_voucher_metrics_store(sh, &i, nbuf, &nlen));
         i++)
    {
        for (p = 0; p < 2; p++) {
            any = (ms->conns[p][0] | ms->conns[p][1] | ms->conns[p][2]);

            if (p == 1 && any == 0) {
                continue;
            }

            for (s = 0; s < 3; s++) {
                ngx_http_voucher_m((o, "voucher_redis_connections{store=\""
                                    "%*s\",role=\"%s\",state=\"%s\"} %A\n",
                                    nlen, nbuf, roles[p],
                                    states[s],
                                    (ngx_atomic_int_t) ms->conns[p][s]));
            }
        }
    }

#define ngx_http_voucher_each_store(metric, type, help, field)               \
    ngx_http_voucher_head(metric, type, help);                               \
    for (i = 0;                                                              \
         (ms = ngx_http_voucher_metrics_store(sh, &i, nbuf, &nlen));         \
         i++)                                                                \
    {                                                                        \
        ngx_http_voucher_m((o, metric "{store=\"%*s\"} %A\n", nlen, nbuf,    \
                            (ngx_atomic_int_t) (field)));                    \
    }

    ngx_http_voucher_each_store("voucher_redis_native", "gauge",
                                "1 when the native module (voucher.so) "
                                "answers the hot calls, 0 when FCALL does.",
                                (ms->native > 0));

    ngx_http_voucher_each_store("voucher_redis_waiting", "gauge",
                                "Requests waiting for a connection.",
                                ms->waiting);

    ngx_http_voucher_each_store("voucher_redis_timeouts_total", "counter",
                                "Commands that timed out.", ms->timeouts);

    ngx_http_voucher_each_store("voucher_redis_reconnects_total", "counter",
                                "Connection attempts after a loss.",
                                ms->reconnects);

    ngx_http_voucher_head("voucher_redis_duration_seconds", "histogram",
                          "Round trips to Redis, by store and by the path "
                          "that answered.");

    for (i = 0;
         (ms = ngx_http_voucher_metrics_store(sh, &i, nbuf, &nlen));
         i++)
    {
        for (p = 0; p < 2; p++) {
            cum = 0;

            for (k = 0; k <= NGX_HTTP_VOUCHER_M_BUCKETS; k++) {
                cum += ms->lat[p][k];

                if (k == NGX_HTTP_VOUCHER_M_BUCKETS) {
                    ngx_http_voucher_m((o, "voucher_redis_duration_seconds_"
                                        "bucket{store=\"%*s\",path=\"%s\","
                                        "le=\"+Inf\"} %uL\n",
                                        nlen, nbuf, paths[p],
                                        cum));
                    break;
                }

                ngx_http_voucher_m((o, "voucher_redis_duration_seconds_"
                                    "bucket{store=\"%*s\",path=\"%s\","
                                    "le=\"%s\"} %uL\n",
                                    nlen, nbuf, paths[p],
                                    ngx_http_voucher_metrics_le[k], cum));
            }

            ngx_http_voucher_m((o, "voucher_redis_duration_seconds_sum"
                                "{store=\"%*s\",path=\"%s\"} %uL.%06uL\n",
                                nlen, nbuf, paths[p],
                                (uint64_t) ms->lat_sum[p] / 1000000,
                                (uint64_t) ms->lat_sum[p] % 1000000));

            ngx_http_voucher_m((o, "voucher_redis_duration_seconds_count"
                                "{store=\"%*s\",path=\"%s\"} %uL\n",
                                nlen, nbuf, paths[p],
                                (uint64_t) ms->lat_count[p]));
        }
    }

#undef ngx_http_voucher_each_store
#undef ngx_http_voucher_head
#undef ngx_http_voucher_m

    return NGX_OK;
}


/* the store in use at *i or after it (its index left in *i), its name
 * escaped for a label in name; NULL past the last */

static ngx_http_voucher_metrics_store_t *
ngx_http_voucher_metrics_store(ngx_http_voucher_metrics_sh_t *sh,
    ngx_uint_t *i, u_char *name, size_t *len)
{
    ngx_http_voucher_metrics_store_t  *ms;

    for ( /* void */ ; *i < NGX_HTTP_VOUCHER_M_STORES; (*i)++) {
        ms = &sh->stores[*i];

        if (ms->used) {
            *len = ngx_http_voucher_metrics_escape(name, ms->name, ms->len)
                   - name;
            return ms;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_voucher_metrics_head(ngx_http_voucher_metrics_out_t *o,
    const char *name, const char *type, const char *help)
{
    return ngx_http_voucher_metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n",
                                           name, help, name, type);
}


/* appends to the answer, in buffers of 16 KB */

static ngx_int_t
ngx_http_voucher_metrics_printf(ngx_http_voucher_metrics_out_t *o,
    const char *fmt, ...)
{
    u_char       *p, line[1024];
    size_t        len;
    va_list       args;
    ngx_chain_t  *cl;

    va_start(args, fmt);
    p = ngx_vslprintf(line, line + sizeof(line), fmt, args);
    va_end(args);

    len = p - line;

    if (o->b == NULL || (size_t) (o->b->end - o->b->last) < len) {
        o->b = ngx_create_temp_buf(o->pool, 16384);
        if (o->b == NULL) {
            return NGX_ERROR;
        }

        cl = ngx_alloc_chain_link(o->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = o->b;
        cl->next = NULL;
        *o->last = cl;
        o->last = &cl->next;
    }

    o->b->last = ngx_cpymem(o->b->last, line, len);

    return NGX_OK;
}


static ngx_str_t *
ngx_http_voucher_metrics_reason(ngx_uint_t i)
{
    static ngx_str_t  fixed[] = {
        ngx_string("ok"),
        ngx_string("other"),
        ngx_string("unverified")
    };

    if (i < NGX_HTTP_VOUCHER_M_R_TABLE) {
        return &fixed[i];
    }

    return ngx_http_voucher_reason_name(i - NGX_HTTP_VOUCHER_M_R_TABLE);
}


/* a label's value: \ " and newline escaped */

static u_char *
ngx_http_voucher_metrics_escape(u_char *dst, u_char *src, size_t len)
{
    while (len--) {
        if (*src == '\\' || *src == '"') {
            *dst++ = '\\';
            *dst++ = *src++;

        } else if (*src == '\n') {
            *dst++ = '\\';
            *dst++ = 'n';
            src++;

        } else {
            *dst++ = *src++;
        }
    }

    return dst;
}
