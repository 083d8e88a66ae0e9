
/*
 * Copyright (C) ngx_voucher authors
 *
 * The JSON API: POST /validate, /redeem, /rollback.  The body is read,
 * parsed and checked here; the rules run in ONE Redis function call.
 */


#include "ngx_http_voucher.h"

#include <hiredis/hiredis.h>


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_voucher_op_t      *op;
    ngx_int_t                   api;
    ngx_str_t                   code;
    ngx_str_t                   limit_status;   /* $voucher_limit_status */
    unsigned                    guess:1;        /* refused offline */
} ngx_http_voucher_ctx_t;


static ngx_int_t ngx_http_voucher_content_type_ok(ngx_http_request_t *r);
static void ngx_http_voucher_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_voucher_process(ngx_http_request_t *r,
    ngx_http_voucher_ctx_t *ctx);
static ngx_int_t ngx_http_voucher_call(ngx_http_request_t *r,
    ngx_http_voucher_ctx_t *ctx, ngx_http_voucher_request_t *req);
static ngx_int_t ngx_http_voucher_command_guess(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_request_t *req,
    ngx_uint_t argc, ngx_http_voucher_cmd_t *cmd);
static ngx_int_t ngx_http_voucher_send(ngx_http_request_t *r,
    ngx_http_voucher_ctx_t *ctx, const char **argv, size_t *argvlen,
    ngx_uint_t n);
static ngx_int_t ngx_http_voucher_unavailable(ngx_http_request_t *r,
    ngx_http_voucher_ctx_t *ctx, const char *reason);
static void ngx_http_voucher_reply_handler(ngx_http_voucher_op_t *op,
    void *reply, ngx_int_t rc);
static void ngx_http_voucher_cleanup(void *data);


ngx_int_t
ngx_http_voucher_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_table_elt_t              *h;
    ngx_http_voucher_ctx_t       *ctx;
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

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_voucher_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->api = vlcf->api;

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
    ngx_int_t                rc;
    ngx_http_voucher_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_voucher_module);

    rc = ngx_http_voucher_process(r, ctx);

    if (rc == NGX_DONE) {
        /* waiting for Redis; the body reader's count is still held */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_voucher_process(ngx_http_request_t *r, ngx_http_voucher_ctx_t *ctx)
{
    u_char                       *arena;
    size_t                        size;
    int64_t                       left;
    ngx_int_t                     rc;
    ngx_str_t                     body, name;
    const char                   *msg;
    ngx_http_voucher_error_t      err;
    ngx_http_voucher_limits_t     lim;
    ngx_http_voucher_request_t    req;
    ngx_http_voucher_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_voucher_module);

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

    if (req.op == NGX_HTTP_VOUCHER_OP_VALIDATE
        || req.op == NGX_HTTP_VOUCHER_OP_REDEEM
        || req.op == NGX_HTTP_VOUCHER_OP_RESERVE)
    {
        rc = ngx_http_voucher_code_check(vlcf, req.code.data, &req.code.len,
                                         &msg);

        if (rc == NGX_ERROR) {
            return ngx_http_voucher_send_error(r, ctx->api, "invalid_code",
                       "code", "The code holds only spaces and dashes.");
        }

        if (rc == NGX_DECLINED) {
            /* the code itself is not logged: gift cards are bearer tokens */
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "voucher: a code of %uz characters refused "
                           "offline: %s", req.code.len, msg);

            if (vlcf->code_debug) {
                return ngx_http_voucher_send_error(r, ctx->api, msg, "code",
                                                   NULL);
            }

            if (vlcf->limits == NULL) {
                return ngx_http_voucher_send_not_found(r, ctx->api,
                                                       req.code.data,
                                                       req.code.len);
            }

            /*
             * Limits apply: they must refuse a forged code exactly as an
             * unknown one, and count it as a guess, so it goes to Redis
             * as voucher_guess (the code is never read there).
             */

            ctx->guess = 1;
        }
    }

    ctx->code.data = req.code.data;
    ctx->code.len = req.code.len;

    if (req.op != NGX_HTTP_VOUCHER_OP_ROLLBACK
        && req.op != NGX_HTTP_VOUCHER_OP_CONFIRM
        && req.op != NGX_HTTP_VOUCHER_OP_RELEASE
        && ngx_http_voucher_lockout_check(r, vlcf, req.op, &name, &left)
           == NGX_OK)
    {
        /* a ban this node learned from Redis: refused without asking */
        ngx_str_set(&ctx->limit_status, "LOCKED");

        ngx_log_error(vlcf->limit_log_level, r->connection->log, 0,
                      "voucher: limit \"%V\": LOCKED (lockout cache)", &name);

        return ngx_http_voucher_send_locked(r, ctx->api, &ctx->code, &name,
                                            left);
    }

    return ngx_http_voucher_call(r, ctx, &req);
}


/*
 * The body as one contiguous buffer.  It is small (voucher_max_body_size),
 * but a chunked body nginx had to spool may still sit in a temp file.
 */

ngx_int_t
ngx_http_voucher_read_body(ngx_http_request_t *r, ngx_str_t *body,
    size_t max)
{
    u_char       *p;
    size_t        len, size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->len = 0;
    body->data = (u_char *) "";

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += (size_t) ngx_buf_size(cl->buf);
        if (len > max) {
            return NGX_DECLINED;
        }
    }

    if (len == 0) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for ( /* void */ ; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            size = (size_t) (b->file_last - b->file_pos);
            n = ngx_read_file(b->file, p, size, b->file_pos);
            if (n != (ssize_t) size) {
                return NGX_ERROR;
            }
            p += size;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    return NGX_OK;
}


/*
 * "Idempotency-Key: ..." stands in for a key missing from the body.
 * Returns NULL, or the message of an invalid_field error.
 */

const char *
ngx_http_voucher_idempotency_header(ngx_http_request_t *r,
    ngx_http_voucher_request_t *req)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    part = &r->headers_in.headers.part;
    h = part->elts;
    found = NULL;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Idempotency-Key") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Idempotency-Key",
                               sizeof("Idempotency-Key") - 1)
               == 0)
        {
            if (found) {
                return "Send one Idempotency-Key header, not several.";
            }

            found = &h[i];
        }
    }

    if (found == NULL) {
        return NULL;
    }

    if (ngx_http_voucher_check_key(found->value.data, found->value.len)
        != NGX_OK)
    {
        return "The Idempotency-Key header must be 1 to 128 printable "
               "ASCII characters.";
    }

    if (req->idempotency_key.len == 0) {
        req->idempotency_key.data = found->value.data;
        req->idempotency_key.len = found->value.len;
        return NULL;
    }

    if (req->idempotency_key.len != found->value.len
        || ngx_memcmp(req->idempotency_key.data, found->value.data,
                      found->value.len)
           != 0)
    {
        return "The Idempotency-Key header and the body's idempotency_key "
               "differ.";
    }

    return NULL;
}


ngx_int_t
ngx_http_voucher_check_key(u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > 128) {
        return NGX_DECLINED;
    }

    for (i = 0; i < len; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * FCALL voucher_validate|voucher_redeem 1 {ns}:c:CODE
 *       customer amount currency order_id idem nitems [sku cat price qty]*
 *       [p<points>] [limits]
 * FCALL voucher_reserve 1 {ns}:c:CODE hold_ms <as redeem>
 * FCALL voucher_rollback 1 {ns}:log redemption_id amount idem
 * FCALL voucher_confirm|voucher_release 1 {ns}:log redemption_id idem
 */

static ngx_int_t
ngx_http_voucher_call(ngx_http_request_t *r, ngx_http_voucher_ctx_t *ctx,
    ngx_http_voucher_request_t *req)
{
    ngx_int_t                     rc;
    ngx_http_voucher_cmd_t        cmd;
    ngx_http_voucher_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_voucher_module);

    rc = ngx_http_voucher_command(r, vlcf, req, ctx->guess, &cmd);

    if (rc == NGX_DECLINED) {
        /* a guess with no limit in scope, or every key empty */
        return ngx_http_voucher_send_not_found(r, ctx->api, req->code.data,
                                               req->code.len);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_voucher_send(r, ctx, cmd.argv, cmd.argvlen, cmd.n);
}


/*
 * The Redis command for req, in r's pool.  NGX_DECLINED: an offline-refused
 * code ("guess") that no limit needs to see; answer not_found at once.
 */

ngx_int_t
ngx_http_voucher_command(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_request_t *req,
    ngx_uint_t guess, ngx_http_voucher_cmd_t *cmd)
{
    u_char                        *p, *key;
    size_t                        *argvlen, n;
    ngx_int_t                      nl;
    ngx_int_t                      op;
    ngx_uint_t                     i, argc, size, settle;
    ngx_msec_t                     hold;
    const char                   **argv;
    ngx_http_voucher_item_t       *item;

    settle = (req->op == NGX_HTTP_VOUCHER_OP_ROLLBACK
              || req->op == NGX_HTTP_VOUCHER_OP_CONFIRM
              || req->op == NGX_HTTP_VOUCHER_OP_RELEASE);

    argc = settle ? 7 : 12 + 4 * req->nitems
                        + ngx_http_voucher_limit_nargs(vlcf);

    if (guess) {
        return ngx_http_voucher_command_guess(r, vlcf, req, argc, cmd);
    }

    argv = ngx_palloc(r->pool, argc * (sizeof(char *) + sizeof(size_t)));
    if (argv == NULL) {
        return NGX_ERROR;
    }

    argvlen = (size_t *) &argv[argc];

    /* room for the key and every number we print */

    size = sizeof("{}:log") - 1 + vlcf->ns.len + req->code.len
           + (5 + 2 * req->nitems) * NGX_INT64_LEN;

    key = ngx_pnalloc(r->pool, size);
    if (key == NULL) {
        return NGX_ERROR;
    }

#define ngx_http_voucher_arg(s, l)                                           \
    argv[n] = (const char *) (s); argvlen[n] = (l); n++

    n = 0;

    ngx_http_voucher_arg("FCALL", 5);

    switch (req->op) {

    case NGX_HTTP_VOUCHER_OP_VALIDATE:
        ngx_http_voucher_arg("voucher_validate", 16);
        break;

    case NGX_HTTP_VOUCHER_OP_REDEEM:
        ngx_http_voucher_arg("voucher_redeem", 14);
        break;

    case NGX_HTTP_VOUCHER_OP_RESERVE:
        ngx_http_voucher_arg("voucher_reserve", 15);
        break;

    case NGX_HTTP_VOUCHER_OP_CONFIRM:
        ngx_http_voucher_arg("voucher_confirm", 15);
        break;

    case NGX_HTTP_VOUCHER_OP_RELEASE:
        ngx_http_voucher_arg("voucher_release", 15);
        break;

    default: /* NGX_HTTP_VOUCHER_OP_ROLLBACK */
        ngx_http_voucher_arg("voucher_rollback", 16);
        break;
    }

    ngx_http_voucher_arg("1", 1);

    if (settle) {
        p = ngx_sprintf(key, "{%V}:log", &vlcf->ns);
        ngx_http_voucher_arg(key, p - key);
        ngx_http_voucher_arg(req->redemption_id.data,
                             req->redemption_id.len);

        /* confirm and release: the id and the idempotency key */

        if (req->op == NGX_HTTP_VOUCHER_OP_ROLLBACK) {
            if (req->rollback_amount == NGX_HTTP_VOUCHER_UNSET) {
                ngx_http_voucher_arg("", 0);

            } else {
                key = p;
                p = ngx_sprintf(p, "%L", req->rollback_amount);
                ngx_http_voucher_arg(key, p - key);
            }
        }

        ngx_http_voucher_arg(req->idempotency_key.data,
                             req->idempotency_key.len);

    } else {
        /* {ns}:c:CODE, and the numbers, without ngx_sprintf(): per request */
        p = key;
        *p++ = '{';
        p = ngx_cpymem(p, vlcf->ns.data, vlcf->ns.len);
        p = ngx_cpymem(p, "}:c:", sizeof("}:c:") - 1);
        p = ngx_cpymem(p, req->code.data, req->code.len);
        ngx_http_voucher_arg(key, p - key);

        if (req->op == NGX_HTTP_VOUCHER_OP_RESERVE) {
            hold = (req->hold_seconds == NGX_HTTP_VOUCHER_UNSET)
                   ? vlcf->hold : (ngx_msec_t) req->hold_seconds * 1000;

            key = p;
            p = ngx_sprintf(p, "%M", hold);
            ngx_http_voucher_arg(key, p - key);
        }

        ngx_http_voucher_arg(req->customer.data, req->customer.len);

        key = p;
        p = ngx_http_voucher_int64(p, req->amount);
        ngx_http_voucher_arg(key, p - key);

        ngx_http_voucher_arg(req->currency.data, req->currency.len);
        ngx_http_voucher_arg(req->order_id.data, req->order_id.len);
        ngx_http_voucher_arg(req->idempotency_key.data,
                             req->idempotency_key.len);

        key = p;
        p = ngx_http_voucher_int64(p, (int64_t) req->nitems);
        ngx_http_voucher_arg(key, p - key);

        for (i = 0; i < req->nitems; i++) {
            item = &req->items[i];

            ngx_http_voucher_arg(item->sku.data, item->sku.len);
            ngx_http_voucher_arg(item->category.data, item->category.len);

            key = p;
            p = ngx_http_voucher_int64(p, item->price);
            ngx_http_voucher_arg(key, p - key);

            key = p;
            p = ngx_http_voucher_int64(p, item->quantity);
            ngx_http_voucher_arg(key, p - key);
        }

        /* "p<N>": loyalty points paying for what the discount leaves */

        if (req->points > 0) {
            key = p;
            *p++ = 'p';
            p = ngx_http_voucher_int64(p, req->points);
            ngx_http_voucher_arg(key, p - key);
        }

        /* a reservation is a redeem to the limits */
        op = (req->op == NGX_HTTP_VOUCHER_OP_RESERVE)
             ? NGX_HTTP_VOUCHER_OP_REDEEM : req->op;

        nl = ngx_http_voucher_limit_args(r, vlcf, op, &argv[n], &argvlen[n]);
        if (nl == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (nl && req->op == NGX_HTTP_VOUCHER_OP_VALIDATE) {
            /* voucher_validate is read-only; limits write their state */
            argv[1] = "voucher_validate_limited";
            argvlen[1] = sizeof("voucher_validate_limited") - 1;
        }

        n += nl;
    }

#undef ngx_http_voucher_arg

    /* empty strings must not be NULL pointers for hiredis */

    for (i = 0; i < n; i++) {
        if (argv[i] == NULL) {
            argv[i] = "";
        }
    }

    cmd->argv = argv;
    cmd->argvlen = argvlen;
    cmd->n = n;

    return NGX_OK;
}


/* FCALL voucher_guess 1 {ns}:c:CODE limits..., one argument each */

static ngx_int_t
ngx_http_voucher_command_guess(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_request_t *req,
    ngx_uint_t argc, ngx_http_voucher_cmd_t *cmd)
{
    u_char                       *p, *key;
    size_t                       *argvlen;
    ngx_int_t                     nl;
    const char                  **argv;

    argv = ngx_palloc(r->pool, argc * (sizeof(char *) + sizeof(size_t)));
    if (argv == NULL) {
        return NGX_ERROR;
    }

    argvlen = (size_t *) &argv[argc];

    key = ngx_pnalloc(r->pool, sizeof("{}:c:") - 1 + vlcf->ns.len
                               + req->code.len);
    if (key == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(key, "{%V}:c:", &vlcf->ns);
    p = ngx_cpymem(p, req->code.data, req->code.len);

    argv[0] = "FCALL";
    argvlen[0] = 5;
    argv[1] = "voucher_guess";
    argvlen[1] = sizeof("voucher_guess") - 1;
    argv[2] = "1";
    argvlen[2] = 1;
    argv[3] = (const char *) key;
    argvlen[3] = p - key;

    nl = ngx_http_voucher_limit_args(r, vlcf,
                                     req->op == NGX_HTTP_VOUCHER_OP_RESERVE
                                     ? NGX_HTTP_VOUCHER_OP_REDEEM : req->op,
                                     &argv[4], &argvlen[4]);
    if (nl == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (nl == 0) {
        /* no limit in scope, or every key empty: answer here */
        return NGX_DECLINED;
    }

    cmd->argv = argv;
    cmd->argvlen = argvlen;
    cmd->n = 4 + nl;

    return NGX_OK;
}


static ngx_int_t
ngx_http_voucher_send(ngx_http_request_t *r, ngx_http_voucher_ctx_t *ctx,
    const char **argv, size_t *argvlen, ngx_uint_t n)
{
    ngx_http_cleanup_t            *cln;
    ngx_http_voucher_op_t         *op;
    ngx_http_voucher_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_voucher_module);

    /* the cleanup first: an op must never exist without its detach */

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_voucher_cleanup;
    cln->data = ctx;

    op = ngx_http_voucher_redis_send(vmcf->pool, (int) n, argv, argvlen,
                                     ngx_http_voucher_reply_handler, ctx);
    if (op == NULL) {
        return ngx_http_voucher_unavailable(r, ctx, "store_unavailable");
    }

    ctx->op = op;

    ngx_http_voucher_watch_client(r);

    return NGX_DONE;
}


/*
 * While Redis works, notice a client that leaves (499, its op detached).
 * A close that came with the request raised its (edge-triggered) event
 * before this handler was set: look once more, from the event loop, not
 * from here, where the body reader may still hold the request.
 */

void
ngx_http_voucher_watch_client(ngx_http_request_t *r)
{
    r->read_event_handler = ngx_http_test_reading;

#if (NGX_HTTP_V2)
    if (r->stream == NULL)
#endif
    {
        if (r->connection->read->pending_eof || r->connection->read->ready) {
            ngx_post_event(r->connection->read, &ngx_posted_events);
        }
    }
}


static ngx_int_t
ngx_http_voucher_unavailable(ngx_http_request_t *r,
    ngx_http_voucher_ctx_t *ctx, const char *reason)
{
    ngx_http_voucher_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_voucher_module);

    if (ctx->api == NGX_HTTP_VOUCHER_OP_VALIDATE && vlcf->validate_fail_open)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "voucher: %s, validate answered unverified", reason);

        return ngx_http_voucher_send_unverified(r, &ctx->code);
    }

    return ngx_http_voucher_send_error(r, ctx->api, reason, NULL, NULL);
}


static void
ngx_http_voucher_reply_handler(ngx_http_voucher_op_t *op, void *reply,
    ngx_int_t rc)
{
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_voucher_ok_t    ok;
    ngx_http_voucher_ctx_t  *ctx;

    ctx = op->data;
    r = ctx->request;
    c = r->connection;

    ctx->op = NULL;

    switch (rc) {

    case NGX_HTTP_VOUCHER_REPLY:
        if (ngx_http_voucher_ok_decode(reply, &ok) != 0) {
            /* answered with internal_error, and logged */
            rc = ngx_http_voucher_send_reply(r, ctx->api, reply, NULL);
            break;
        }

        ngx_http_voucher_limit_result(r,
                      ngx_http_get_module_loc_conf(r, ngx_http_voucher_module),
                      ctx->api, &ctx->limit_status, reply, &ok);
        rc = ngx_http_voucher_send_reply(r, ctx->api, reply, &ok);
        break;

    case NGX_HTTP_VOUCHER_TIMEDOUT:
        rc = ngx_http_voucher_unavailable(r, ctx, "store_timeout");
        break;

    default: /* NGX_HTTP_VOUCHER_LOST, NGX_HTTP_VOUCHER_REFUSED */
        rc = ngx_http_voucher_unavailable(r, ctx, "store_unavailable");
        break;
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * The limits' verdict rides in the reply as "_limit" (and "_limit_name"):
 * kept for $voucher_limit_status and logged at voucher_limit_log_level.
 * A key Redis locked out goes to the lockout cache, which needs the
 * limit's name and the ban's "retry_after_ms" of the same reply.  Only
 * the reply's pairs are read (those after the values of a positional "ok").
 */

void
ngx_http_voucher_limit_result(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_int_t op, ngx_str_t *out,
    void *data, ngx_http_voucher_ok_t *ok)
{
    redisReply  *reply = data;

    int64_t       ms;
    ngx_str_t     lname;
    redisReply   *v, *status, *name;

    status = ngx_http_voucher_ok_pair(reply, ok, "_limit", 6);

    if (status == NULL || status->type != REDIS_REPLY_STRING) {
        return;
    }

    out->data = ngx_pnalloc(r->pool, status->len);
    if (out->data == NULL) {
        return;
    }

    ngx_memcpy(out->data, status->str, status->len);
    out->len = status->len;

    if (status->len == 6 && ngx_strncmp(status->str, "PASSED", 6) == 0) {
        return;
    }

    /* not the usual PASSED: the name, and a ban's length */

    name = ngx_http_voucher_ok_pair(reply, ok, "_limit_name", 11);

    if (name == NULL) {
        name = ngx_http_voucher_ok_pair(reply, ok, "limit", 5);
    }

    if (name && name->type != REDIS_REPLY_STRING) {
        name = NULL;
    }

    v = ngx_http_voucher_ok_pair(reply, ok, "retry_after_ms", 14);
    ms = (v && v->type == REDIS_REPLY_INTEGER) ? v->integer : -1;

    ngx_log_error(vlcf->limit_log_level, r->connection->log, 0,
                  "voucher: limit \"%*s\": %*s",
                  name ? name->len : 0, name ? name->str : "",
                  status->len, status->str);

    if (name && ms > 0
        && status->len == 6 && ngx_strncmp(status->str, "LOCKED", 6) == 0)
    {
        lname.data = (u_char *) name->str;
        lname.len = name->len;

        ngx_http_voucher_lockout_learn(r, vlcf, op, &lname, ms);
    }
}


ngx_str_t *
ngx_http_voucher_limit_status(ngx_http_request_t *r)
{
    ngx_http_voucher_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_voucher_module);

    if (ctx) {
        return &ctx->limit_status;
    }

    /* gate mode keeps its own, across internal redirects */
    return ngx_http_voucher_gate_limit_status(r);
}


static void
ngx_http_voucher_cleanup(void *data)
{
    ngx_http_voucher_ctx_t  *ctx = data;

    if (ctx->op) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "voucher: request gone, op detached");

        ngx_http_voucher_redis_detach(ctx->op);
        ctx->op = NULL;
    }
}
