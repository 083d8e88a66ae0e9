
/*
 * Copyright (C) ngx_voucher authors
 *
 * The JSON API: POST /validate, /redeem, /rollback, /reserve, /confirm,
 * /release.  The body is read, parsed and checked here; the request core
 * (ngx_http_voucher_core.c) takes it to ONE Redis function call, and its
 * verdicts are answered here as JSON.
 */


#include "ngx_http_voucher.h"


static ngx_int_t ngx_http_voucher_content_type_ok(ngx_http_request_t *r);
static void ngx_http_voucher_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_voucher_process(ngx_http_request_t *r,
    ngx_http_voucher_core_t *ctx);
static ngx_int_t ngx_http_voucher_render(ngx_http_request_t *r,
    ngx_http_voucher_core_t *ctx, ngx_uint_t verdict, void *reply,
    ngx_http_voucher_ok_t *ok);
static void ngx_http_voucher_answered(ngx_http_voucher_core_t *ctx,
    ngx_uint_t verdict, void *reply, ngx_http_voucher_ok_t *ok);
static ngx_int_t ngx_http_voucher_unavailable(ngx_http_request_t *r,
    ngx_http_voucher_core_t *ctx);


ngx_int_t
ngx_http_voucher_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_table_elt_t              *h;
    ngx_http_voucher_core_t      *ctx;
    ngx_http_voucher_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_voucher_module);

    if (r->method != NGX_HTTP_POST) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        ngx_str_set(&h->value, "POST");

        return ngx_http_voucher_send_error(r, vlcf->api, "method_not_allowed",
                                           NULL, NULL);
    }

    if (ngx_http_voucher_content_type_ok(r) != NGX_OK) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_voucher_send_error(r, vlcf->api,
                                           "unsupported_media_type",
                                           NULL, NULL);
    }

    if (r->headers_in.content_length_n > (off_t) vlcf->max_body_size) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_voucher_send_error(r, vlcf->api, "body_too_large",
                                           NULL, NULL);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_voucher_core_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->conf = vlcf;
    ctx->api = vlcf->api;
    ctx->answered = ngx_http_voucher_answered;
    ctx->detach = 1;

    ngx_http_set_ctx(r, ctx, ngx_http_voucher_module);

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_voucher_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* application/json or application/<something>+json, with any parameters */

static ngx_int_t
ngx_http_voucher_content_type_ok(ngx_http_request_t *r)
{
    u_char  *p, *last;

    if (r->headers_in.content_type == NULL) {
        return NGX_DECLINED;
    }

    p = r->headers_in.content_type->value.data;
    last = p + r->headers_in.content_type->value.len;

    if ((size_t) (last - p) < sizeof("application/json") - 1
        || ngx_strncasecmp(p, (u_char *) "application/", 12) != 0)
    {
        return NGX_DECLINED;
    }

    p += 12;

    while (p < last && *p != ';' && *p != ' ' && *p != '\t') {
        p++;
    }

    if (p - r->headers_in.content_type->value.data < 16
        || ngx_strncasecmp(p - 4, (u_char *) "json", 4) != 0)
    {
        return NGX_DECLINED;
    }

    if (p - r->headers_in.content_type->value.data > 16
        && *(p - 5) != '+')
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static void
ngx_http_voucher_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_voucher_core_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_voucher_module);

    rc = ngx_http_voucher_process(r, ctx);

    if (rc == NGX_DONE) {
        /* waiting for Redis; the body reader's count is still held */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_voucher_process(ngx_http_request_t *r, ngx_http_voucher_core_t *ctx)
{
    u_char                       *arena;
    size_t                        size;
    ngx_int_t                     rc;
    ngx_str_t                     body;
    const char                   *msg;
    ngx_http_voucher_error_t      err;
    ngx_http_voucher_limits_t     lim;
    ngx_http_voucher_request_t    req;
    ngx_http_voucher_loc_conf_t  *vlcf;

    vlcf = ctx->conf;

    rc = ngx_http_voucher_read_body(r, &body, vlcf->max_body_size);

    if (rc == NGX_DECLINED) {
        return ngx_http_voucher_send_error(r, ctx->api, "body_too_large",
                                           NULL, NULL);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_voucher_limits_init(&lim);
    lim.max_code_len = vlcf->code_max_length;
    lim.max_items = vlcf->max_items;

    size = ngx_http_voucher_parse_arena_size(body.len, &lim);

    arena = ngx_palloc(r->pool, size);
    if (arena == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_voucher_parse_request(ctx->api, body.data, body.len, &lim,
                                       &req, arena, size, &err)
        != 0)
    {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "voucher: bad request: %s %s", err.reason, err.field);

        return ngx_http_voucher_send_error(r, ctx->api, err.reason,
                                           err.field[0] ? err.field : NULL,
                                           err.message);
    }

    msg = ngx_http_voucher_idempotency_header(r, &req);
    if (msg) {
        return ngx_http_voucher_send_error(r, ctx->api, "invalid_field",
                                           "idempotency_key", msg);
    }

    return ngx_http_voucher_render(r, ctx,
                                   ngx_http_voucher_preflight(ctx, &req),
                                   NULL, NULL);
}


/* a verdict of the core as the API's answer */

static ngx_int_t
ngx_http_voucher_render(ngx_http_request_t *r, ngx_http_voucher_core_t *ctx,
    ngx_uint_t verdict, void *reply, ngx_http_voucher_ok_t *ok)
{
    switch (verdict) {

    case NGX_HTTP_VOUCHER_V_WAITING:
        /* the body reader's count is still held */
        return NGX_DONE;

    case NGX_HTTP_VOUCHER_V_ANSWER:
        if (reply == NULL) {
            /* the preflight's: the hot code cache answered */
            reply = ctx->hot;
            ok = &ctx->hot_ok;
        }

        return ngx_http_voucher_send_reply(r, ctx->api, reply, ok);

    case NGX_HTTP_VOUCHER_V_REFUSED:
        return ngx_http_voucher_send_error(r, ctx->api, ctx->reason,
                                           ctx->field, ctx->message);

    case NGX_HTTP_VOUCHER_V_LOCKED:
        return ngx_http_voucher_send_locked(r, ctx->api, &ctx->code,
                                            &ctx->limit, ctx->left);

    case NGX_HTTP_VOUCHER_V_NOT_FOUND:
        return ngx_http_voucher_send_not_found(r, ctx->api, ctx->code.data,
                                               ctx->code.len);

    case NGX_HTTP_VOUCHER_V_UNAVAILABLE:
        return ngx_http_voucher_unavailable(r, ctx);

    default: /* NGX_HTTP_VOUCHER_V_FAILED */
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static void
ngx_http_voucher_answered(ngx_http_voucher_core_t *ctx, ngx_uint_t verdict,
    void *reply, ngx_http_voucher_ok_t *ok)
{
    ngx_http_finalize_request(ctx->request,
                              ngx_http_voucher_render(ctx->request, ctx,
                                                      verdict, reply, ok));
}


static ngx_int_t
ngx_http_voucher_unavailable(ngx_http_request_t *r,
    ngx_http_voucher_core_t *ctx)
{
    if (ctx->api == NGX_HTTP_VOUCHER_OP_VALIDATE
        && ctx->conf->validate_fail_open)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "voucher: %s, validate answered unverified",
                      ctx->reason);

        return ngx_http_voucher_send_unverified(r, &ctx->code);
    }

    return ngx_http_voucher_send_error(r, ctx->api, ctx->reason, NULL, NULL);
}
