
/*
 * Copyright (C) ngx_voucher authors
 *
 * The request core that the API and the gate share: the body, the
 * idempotency key, the preflight (the offline code check, a guess, the
 * lockout cache, the FCALL and its sending), watching the client while
 * Redis works, and Redis' answer with its limits' verdict.  Each front
 * door renders the verdicts its own way.
 */


#include "ngx_http_voucher.h"

#include <hiredis/hiredis.h>

/* the names of this version's functions, not the library's text */
#define VOUCHER_LUA_NAMES_ONLY
#include "voucher_lua.h"


/* a wallet page holds this many codes unless the request says */
#define NGX_HTTP_VOUCHER_WALLET_PAGE  20


/* a Redis command built in a request's pool */
typedef struct {
    const char                **argv;
    size_t                     *argvlen;
    ngx_uint_t                  n;
} ngx_http_voucher_cmd_t;


static ngx_int_t ngx_http_voucher_command(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_request_t *req,
    ngx_uint_t guess, ngx_http_voucher_cmd_t *cmd);
static ngx_uint_t ngx_http_voucher_preflight_codes(
    ngx_http_voucher_core_t *core, ngx_http_voucher_request_t *req);
static ngx_int_t ngx_http_voucher_command_codes(ngx_http_voucher_core_t *core,
    ngx_http_voucher_request_t *req, u_char *forged, ngx_uint_t nforged,
    ngx_http_voucher_cmd_t *cmd);
static ngx_int_t ngx_http_voucher_command_wallet(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_request_t *req,
    ngx_http_voucher_cmd_t *cmd);
static ngx_int_t ngx_http_voucher_command_event(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_request_t *req,
    ngx_http_voucher_cmd_t *cmd);
static ngx_int_t ngx_http_voucher_command_loyalty(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_request_t *req,
    ngx_http_voucher_cmd_t *cmd);
static ngx_int_t ngx_http_voucher_command_guess(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_request_t *req,
    ngx_uint_t argc, ngx_http_voucher_cmd_t *cmd);
static ngx_uint_t ngx_http_voucher_send(ngx_http_voucher_core_t *core,
    ngx_http_voucher_cmd_t *cmd);
static void ngx_http_voucher_watch_client(ngx_http_request_t *r);
static void ngx_http_voucher_reply_handler(ngx_http_voucher_op_t *op,
    void *reply, ngx_int_t rc);
static void ngx_http_voucher_limit_result(ngx_http_voucher_core_t *core,
    void *reply, ngx_http_voucher_ok_t *ok);
static void ngx_http_voucher_cleanup(void *data);


/* a command's next argument, and its function's name: in argv and
 * argvlen at n, the builder's own */

#define ngx_http_voucher_arg(s, l)                                           \
    argv[n] = (const char *) (s); argvlen[n] = (l); n++

#define ngx_http_voucher_fn(name)                                            \
    ngx_http_voucher_arg(VOUCHER_FN(name), sizeof(VOUCHER_FN(name)) - 1)


/*
 * The preflight of a request the front door has read and checked: the
 * code checked offline (a code refused there is a guess), the lockout
 * cache and the hot code cache asked, then the command built and sent.
 * Returns the verdict; its details are in core (V_ANSWER: core->hot is
 * the answer).  Confirm, release and rollback name no code and skip the
 * caches, and so does a wallet page (it names a customer); the loyalty
 * operations name a customer and skip the code's check.
 */

ngx_uint_t
ngx_http_voucher_preflight(ngx_http_voucher_core_t *core,
    ngx_http_voucher_request_t *req)
{
    ngx_int_t                     rc;
    ngx_str_t                     series;
    const char                   *msg;
    ngx_http_request_t           *r;
    ngx_http_voucher_cmd_t        cmd;
    ngx_http_voucher_loc_conf_t  *vlcf;

    r = core->request;
    vlcf = core->conf;

    if (req->stack || core->api == NGX_HTTP_VOUCHER_OP_QUALIFY) {
        return ngx_http_voucher_preflight_codes(core, req);
    }

    if (core->api == NGX_HTTP_VOUCHER_OP_ROLLBACK
        || core->api == NGX_HTTP_VOUCHER_OP_CONFIRM
        || core->api == NGX_HTTP_VOUCHER_OP_RELEASE
        || core->api == NGX_HTTP_VOUCHER_OP_WALLET)
    {
        goto command;
    }

    if (ngx_http_voucher_loyalty_op(core->api)) {
        goto lockout;
    }

    rc = ngx_http_voucher_code_check_serial(vlcf, req->code.data,
                                            &req->code.len, &msg, &series,
                                            &req->serial);

    req->series.data = series.data;
    req->series.len = series.len;

    if (rc == NGX_ERROR) {
        core->reason = "invalid_code";
        core->field = "code";
        core->message = "The code holds only spaces and dashes.";
        return NGX_HTTP_VOUCHER_V_REFUSED;
    }

    core->code.data = req->code.data;
    core->code.len = req->code.len;

    if (rc == NGX_DECLINED) {
        ngx_http_voucher_metrics_count(NGX_HTTP_VOUCHER_M_OFFLINE,
                                       ngx_strcmp(msg, "code_forged") == 0);

        /* the code itself is not logged: gift cards are bearer tokens */
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "voucher: a code of %uz characters refused "
                       "offline: %s", req->code.len, msg);

        if (vlcf->code_debug) {
            core->reason = msg;
            core->field = "code";
            core->message = NULL;
            return NGX_HTTP_VOUCHER_V_REFUSED;
        }

        if (vlcf->limits == NULL) {
            return NGX_HTTP_VOUCHER_V_NOT_FOUND;
        }

        /*
         * Limits apply: they must refuse a forged code exactly as an
         * unknown one, and count it as a guess, so it goes to Redis as
         * voucher_guess (the code is never read there).
         */

        core->guess = 1;
    }

lockout:

    if (ngx_http_voucher_lockout_check(r, vlcf, core->api, &core->limit,
                                       &core->left)
        == NGX_OK)
    {
        /* a ban this node learned from Redis: refused without asking */
        ngx_str_set(&core->limit_status, "LOCKED");
        ngx_http_voucher_metrics_count(NGX_HTTP_VOUCHER_M_LOCKOUT_REFUSED, 0);

        ngx_log_error(vlcf->limit_log_level, r->connection->log, 0,
                      "voucher: limit \"%V\": LOCKED (lockout cache)",
                      &core->limit);

        return NGX_HTTP_VOUCHER_V_LOCKED;
    }

    core->amount = req->amount;
    core->items = (req->nitems > 0);
    core->keyed = (req->idempotency_key.len > 0);

    if (ngx_http_voucher_hot_check(core) == NGX_OK) {
        ngx_http_voucher_metrics_count(NGX_HTTP_VOUCHER_M_HOT, 0);

        /* a sold-out code, as Redis answered it a moment ago */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "voucher: answered from the hot code cache");

        return NGX_HTTP_VOUCHER_V_ANSWER;
    }

command:

    rc = ngx_http_voucher_command(r, vlcf, req, core->guess, &cmd);

    if (rc == NGX_DECLINED) {
        /* a guess with no limit in scope, or every key empty */
        return NGX_HTTP_VOUCHER_V_NOT_FOUND;
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_VOUCHER_V_FAILED;
    }

    return ngx_http_voucher_send(core, &cmd);
}


/*
 * The preflight of a request naming several codes: a stack (validate,
 * redeem, reserve with "codes") or qualify.  Each code is checked offline
 * and normalised.  In a stack, a code refused offline refuses the whole
 * stack as unknown, naming it, without Redis, and the same code twice
 * (once normalised) is invalid_field; qualify passes the refused ones on
 * as such (Redis lists them not_found without reading them).  A stack
 * sees the lockout cache as a single code does.
 */

static ngx_uint_t
ngx_http_voucher_preflight_codes(ngx_http_voucher_core_t *core,
    ngx_http_voucher_request_t *req)
{
    u_char                       *forged;
    ngx_int_t                     rc;
    ngx_uint_t                    i, j, n, qualify;
    const char                   *msg;
    ngx_http_voucher_str_t       *c;
    ngx_http_request_t           *r;
    ngx_http_voucher_cmd_t        cmd;
    ngx_http_voucher_loc_conf_t  *vlcf;

    static u_char                 field[sizeof("codes[]") + NGX_INT_T_LEN];

    r = core->request;
    vlcf = core->conf;
    qualify = (core->api == NGX_HTTP_VOUCHER_OP_QUALIFY);

    forged = ngx_pcalloc(r->pool, req->ncodes + 1);
    if (forged == NULL) {
        return NGX_HTTP_VOUCHER_V_FAILED;
    }

    n = 0;

    for (i = 0; i < req->ncodes; i++) {
        c = &req->codes[i];

        rc = ngx_http_voucher_code_check(vlcf, c->data, &c->len, &msg);

        if (rc == NGX_ERROR) {
            ngx_sprintf(field, "codes[%ui]%Z", i);
            core->reason = "invalid_code";
            core->field = (const char *) field;
            core->message = "The code holds only spaces and dashes.";
            return NGX_HTTP_VOUCHER_V_REFUSED;
        }

        if (rc == NGX_DECLINED) {
            ngx_http_voucher_metrics_count(NGX_HTTP_VOUCHER_M_OFFLINE,
                                           ngx_strcmp(msg, "code_forged")
                                           == 0);

            if (!qualify) {
                core->code.data = c->data;
                core->code.len = c->len;

                if (vlcf->code_debug) {
                    core->reason = msg;
                    core->field = "codes";
                    core->message = NULL;
                    return NGX_HTTP_VOUCHER_V_REFUSED;
                }

                return NGX_HTTP_VOUCHER_V_NOT_FOUND;
            }

            forged[i] = 1;
            n++;
        }

        if (qualify) {
            continue;
        }

        for (j = 0; j < i; j++) {
            if (req->codes[j].len == c->len
                && ngx_memcmp(req->codes[j].data, c->data, c->len) == 0)
            {
                ngx_sprintf(field, "codes[%ui]%Z", i);
                core->reason = "invalid_field";
                core->field = (const char *) field;
                core->message = "The same code twice in one order.";
                return NGX_HTTP_VOUCHER_V_REFUSED;
            }
        }
    }

    if (!qualify) {
        /* the first code stands for the stack in answers and logs */
        if (req->ncodes) {
            core->code.data = req->codes[0].data;
            core->code.len = req->codes[0].len;
        }

        if (ngx_http_voucher_lockout_check(r, vlcf, core->api, &core->limit,
                                           &core->left)
            == NGX_OK)
        {
            ngx_str_set(&core->limit_status, "LOCKED");
            ngx_http_voucher_metrics_count(NGX_HTTP_VOUCHER_M_LOCKOUT_REFUSED,
                                           0);

            ngx_log_error(vlcf->limit_log_level, r->connection->log, 0,
                          "voucher: limit \"%V\": LOCKED (lockout cache)",
                          &core->limit);

            return NGX_HTTP_VOUCHER_V_LOCKED;
        }
    }

    if (ngx_http_voucher_command_codes(core, req, forged, n, &cmd) != NGX_OK)
    {
        return NGX_HTTP_VOUCHER_V_FAILED;
    }

    return ngx_http_voucher_send(core, &cmd);
}


/*
 * FCALL_RO voucher_qualify 1 {ns}:public channel best ncodes codes...
 *       nforged forged... <the order as validate's> [m<business data>]
 * FCALL voucher_stack 1 {ns}:log op hold_ms channel ncodes codes...
 *       <the order as redeem's> [m<business data>] [p<points>] [limits]
 * (op: validate, redeem or reserve; hold_ms "" but for a reserve)
 */

static ngx_int_t
ngx_http_voucher_command_codes(ngx_http_voucher_core_t *core,
    ngx_http_voucher_request_t *req, u_char *forged, ngx_uint_t nforged,
    ngx_http_voucher_cmd_t *cmd)
{
    u_char                        *p, *key, *num;
    size_t                        *argvlen, n;
    ngx_int_t                      nl;
    ngx_uint_t                     i, argc, pass;
    ngx_msec_t                     hold;
    const char                   **argv;
    ngx_http_request_t            *r;
    ngx_http_voucher_item_t       *item;
    ngx_http_voucher_loc_conf_t   *vlcf;

    r = core->request;
    vlcf = core->conf;

    argc = 17 + req->ncodes + 4 * req->nitems
           + ngx_http_voucher_limit_nargs(vlcf);

    argv = ngx_palloc(r->pool, argc * (sizeof(char *) + sizeof(size_t)));
    if (argv == NULL) {
        return NGX_ERROR;
    }

    argvlen = (size_t *) &argv[argc];

    key = ngx_pnalloc(r->pool, sizeof("{}:public") - 1 + vlcf->ns.len);
    num = ngx_pnalloc(r->pool, (7 + 2 * req->nitems) * NGX_INT64_LEN);
    if (key == NULL || num == NULL) {
        return NGX_ERROR;
    }

#define ngx_http_voucher_num(v)                                              \
    p = num; num = ngx_http_voucher_int64(num, (int64_t) (v));                 \
    ngx_http_voucher_arg(p, num - p)

    n = 0;

    if (core->api == NGX_HTTP_VOUCHER_OP_QUALIFY) {
        ngx_http_voucher_arg("FCALL_RO", 8);
        ngx_http_voucher_fn("voucher_qualify");
        ngx_http_voucher_arg("1", 1);
        p = ngx_sprintf(key, "{%V}:public", &vlcf->ns);
        ngx_http_voucher_arg(key, p - key);
        ngx_http_voucher_arg(req->channel.data, req->channel.len);
        ngx_http_voucher_arg(req->best ? "1" : "0", 1);

        /* the codes that may exist, then those refused offline */

        for (pass = 0; pass < 2; pass++) {
            ngx_http_voucher_num(pass ? nforged : req->ncodes - nforged);

            for (i = 0; i < req->ncodes; i++) {
                if (forged[i] == pass) {
                    ngx_http_voucher_arg(req->codes[i].data,
                                         req->codes[i].len);
                }
            }
        }

    } else {
        ngx_http_voucher_arg("FCALL", 5);
        ngx_http_voucher_fn("voucher_stack");
        ngx_http_voucher_arg("1", 1);
        p = ngx_sprintf(key, "{%V}:log", &vlcf->ns);
        ngx_http_voucher_arg(key, p - key);

        /* the gate's redeem is a reservation: the request's op says */

        switch (req->op) {

        case NGX_HTTP_VOUCHER_OP_VALIDATE:
            ngx_http_voucher_arg("validate", 8);
            ngx_http_voucher_arg("", 0);
            break;

        case NGX_HTTP_VOUCHER_OP_REDEEM:
            ngx_http_voucher_arg("redeem", 6);
            ngx_http_voucher_arg("", 0);
            break;

        default: /* NGX_HTTP_VOUCHER_OP_RESERVE */
            ngx_http_voucher_arg("reserve", 7);
            hold = (req->hold_seconds == NGX_HTTP_VOUCHER_UNSET)
                   ? vlcf->hold : (ngx_msec_t) req->hold_seconds * 1000;
            ngx_http_voucher_num(hold);
            break;
        }

        ngx_http_voucher_arg(req->channel.data, req->channel.len);
        ngx_http_voucher_num(req->ncodes);

        for (i = 0; i < req->ncodes; i++) {
            ngx_http_voucher_arg(req->codes[i].data, req->codes[i].len);
        }
    }

    ngx_http_voucher_arg(req->customer.data, req->customer.len);
    ngx_http_voucher_num(req->amount);
    ngx_http_voucher_arg(req->currency.data, req->currency.len);
    ngx_http_voucher_arg(req->order_id.data, req->order_id.len);
    ngx_http_voucher_arg(req->idempotency_key.data,
                         req->idempotency_key.len);
    ngx_http_voucher_num(req->nitems);

    for (i = 0; i < req->nitems; i++) {
        item = &req->items[i];

        ngx_http_voucher_arg(item->sku.data, item->sku.len);
        ngx_http_voucher_arg(item->category.data, item->category.len);
        ngx_http_voucher_num(item->price);
        ngx_http_voucher_num(item->quantity);
    }

    if (req->meta.len) {
        ngx_http_voucher_arg(req->meta.data, req->meta.len);
    }

    if (core->api != NGX_HTTP_VOUCHER_OP_QUALIFY) {

        /* "p<N>": loyalty points paying for what the codes leave */

        if (req->points > 0) {
            p = num;
            *num++ = 'p';
            num = ngx_http_voucher_int64(num, req->points);
            ngx_http_voucher_arg(p, num - p);
        }

        nl = ngx_http_voucher_limit_args(r, vlcf, req->op, &argv[n],
                                         &argvlen[n]);
        if (nl == NGX_ERROR) {
            return NGX_ERROR;
        }

        n += nl;
    }

#undef ngx_http_voucher_num

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

    if (ngx_http_voucher_check_field(
            &ngx_http_voucher_fields[NGX_HTTP_VOUCHER_FIELD_IDEMPOTENCY_ROW],
            found->value.data, found->value.len, NULL, NULL, NULL)
        != 0)
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


/*
 * The Redis command for req, in r's pool.  NGX_DECLINED: an offline-refused
 * code ("guess") that no limit needs to see; answer not_found at once.
 *
 * FCALL voucher_validate|voucher_redeem 1 {ns}:c:CODE
 *       customer amount currency order_id idem nitems [sku cat price qty]*
 *       [m<business data>] [p<points>] [limits]
 *       (2 {ns}:c:CODE {ns}:sb:<series>:<serial> for a serial series' code:
 *       the native module takes one key, so the library answers it)
 * FCALL voucher_reserve 1 {ns}:c:CODE hold_ms <as redeem>
 * FCALL voucher_rollback 1 {ns}:log redemption_id amount idem
 * FCALL voucher_confirm|voucher_release 1 {ns}:log redemption_id idem
 */

static ngx_int_t
ngx_http_voucher_command(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_request_t *req,
    ngx_uint_t guess, ngx_http_voucher_cmd_t *cmd)
{
    u_char                        *p, *key;
    size_t                        *argvlen, n;
    ngx_int_t                      nl;
    ngx_uint_t                     i, argc, size, settle;
    ngx_msec_t                     hold;
    const char                   **argv;
    ngx_http_voucher_item_t       *item;

    if (req->op == NGX_HTTP_VOUCHER_OP_EVENT) {
        return ngx_http_voucher_command_event(r, vlcf, req, cmd);
    }

    if (ngx_http_voucher_loyalty_op(req->op)) {
        return ngx_http_voucher_command_loyalty(r, vlcf, req, cmd);
    }

    settle = (req->op == NGX_HTTP_VOUCHER_OP_ROLLBACK
              || req->op == NGX_HTTP_VOUCHER_OP_CONFIRM
              || req->op == NGX_HTTP_VOUCHER_OP_RELEASE);

    argc = settle ? 7 : 13 + 4 * req->nitems
                        + ngx_http_voucher_limit_nargs(vlcf);

    if (guess) {
        return ngx_http_voucher_command_guess(r, vlcf, req, argc, cmd);
    }

    if (req->op == NGX_HTTP_VOUCHER_OP_WALLET
        || req->op == NGX_HTTP_VOUCHER_OP_WALLET_SAVE)
    {
        return ngx_http_voucher_command_wallet(r, vlcf, req, cmd);
    }

    argv = ngx_palloc(r->pool, argc * (sizeof(char *) + sizeof(size_t)));
    if (argv == NULL) {
        return NGX_ERROR;
    }

    argvlen = (size_t *) &argv[argc];

    /* room for the key and every number we print */

    size = sizeof("{}:log") - 1 + vlcf->ns.len + req->code.len
           + (5 + 2 * req->nitems) * NGX_INT64_LEN
           + sizeof("{}:sb::") - 1 + vlcf->ns.len + req->series.len
           + NGX_INT64_LEN;

    key = ngx_pnalloc(r->pool, size);
    if (key == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    ngx_http_voucher_arg("FCALL", 5);

    switch (req->op) {

    case NGX_HTTP_VOUCHER_OP_VALIDATE:
        ngx_http_voucher_fn("voucher_validate");
        break;

    case NGX_HTTP_VOUCHER_OP_REDEEM:
        ngx_http_voucher_fn("voucher_redeem");
        break;

    case NGX_HTTP_VOUCHER_OP_RESERVE:
        ngx_http_voucher_fn("voucher_reserve");
        break;

    case NGX_HTTP_VOUCHER_OP_CONFIRM:
        ngx_http_voucher_fn("voucher_confirm");
        break;

    case NGX_HTTP_VOUCHER_OP_RELEASE:
        ngx_http_voucher_fn("voucher_release");
        break;

    default: /* NGX_HTTP_VOUCHER_OP_ROLLBACK */
        ngx_http_voucher_fn("voucher_rollback");
        break;
    }

    /* a serial series' code names its bit as a second key */

    if (!settle && req->series.len) {
        ngx_http_voucher_arg("2", 1);

    } else {
        ngx_http_voucher_arg("1", 1);
    }

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

        if (req->series.len) {
            key = p;
            p = ngx_sprintf(p, "{%V}:sb:%*s:%uL", &vlcf->ns,
                            req->series.len, req->series.data, req->serial);
            ngx_http_voucher_arg(key, p - key);
        }

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

        /* "m...": order metadata, customer attributes (conditions) */

        if (req->meta.len) {
            ngx_http_voucher_arg(req->meta.data, req->meta.len);
        }

        /* "p<N>": loyalty points paying for what the discount leaves */

        if (req->points > 0) {
            key = p;
            *p++ = 'p';
            p = ngx_http_voucher_int64(p, req->points);
            ngx_http_voucher_arg(key, p - key);
        }

        nl = ngx_http_voucher_limit_args(r, vlcf, req->op, &argv[n],
                                         &argvlen[n]);
        if (nl == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (nl && req->op == NGX_HTTP_VOUCHER_OP_VALIDATE) {
            /* voucher_validate is read-only; limits write their state */
            argv[1] = VOUCHER_FN("voucher_validate_limited");
            argvlen[1] = sizeof(VOUCHER_FN("voucher_validate_limited")) - 1;
        }

        n += nl;
    }


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


/*
 * FCALL voucher_wallet 1 {ns}:w:CUSTOMER cursor count
 * FCALL voucher_wallet_save 1 {ns}:c:CODE customer [limits]
 */

static ngx_int_t
ngx_http_voucher_command_wallet(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_request_t *req,
    ngx_http_voucher_cmd_t *cmd)
{
    u_char       *p, *key;
    size_t       *argvlen;
    int64_t       count;
    ngx_int_t     nl;
    ngx_uint_t    argc;
    const char  **argv;

    argc = 6 + ngx_http_voucher_limit_nargs(vlcf);

    argv = ngx_palloc(r->pool, argc * (sizeof(char *) + sizeof(size_t)));
    if (argv == NULL) {
        return NGX_ERROR;
    }

    argvlen = (size_t *) &argv[argc];

    key = ngx_pnalloc(r->pool, sizeof("{}:w:") - 1 + vlcf->ns.len
                               + req->customer.len + req->code.len
                               + NGX_INT64_LEN);
    if (key == NULL) {
        return NGX_ERROR;
    }

    argv[0] = "FCALL";
    argvlen[0] = 5;
    argv[2] = "1";
    argvlen[2] = 1;

    if (req->op == NGX_HTTP_VOUCHER_OP_WALLET_SAVE) {
        argv[1] = VOUCHER_FN("voucher_wallet_save");
        argvlen[1] = sizeof(VOUCHER_FN("voucher_wallet_save")) - 1;

        p = ngx_sprintf(key, "{%V}:c:", &vlcf->ns);
        p = ngx_cpymem(p, req->code.data, req->code.len);
        argv[3] = (const char *) key;
        argvlen[3] = p - key;

        argv[4] = (const char *) req->customer.data;
        argvlen[4] = req->customer.len;

        nl = ngx_http_voucher_limit_args(r, vlcf, req->op, &argv[5],
                                         &argvlen[5]);
        if (nl == NGX_ERROR) {
            return NGX_ERROR;
        }

        cmd->argv = argv;
        cmd->argvlen = argvlen;
        cmd->n = 5 + nl;

        return NGX_OK;
    }

    argv[1] = VOUCHER_FN("voucher_wallet");
    argvlen[1] = sizeof(VOUCHER_FN("voucher_wallet")) - 1;

    p = ngx_sprintf(key, "{%V}:w:", &vlcf->ns);
    p = ngx_cpymem(p, req->customer.data, req->customer.len);
    argv[3] = (const char *) key;
    argvlen[3] = p - key;

    if (req->cursor.len) {
        argv[4] = (const char *) req->cursor.data;
        argvlen[4] = req->cursor.len;

    } else {
        argv[4] = "0";
        argvlen[4] = 1;
    }

    count = (req->count == NGX_HTTP_VOUCHER_UNSET)
            ? NGX_HTTP_VOUCHER_WALLET_PAGE : req->count;

    key = p;
    p = ngx_http_voucher_int64(p, count);
    argv[5] = (const char *) key;
    argvlen[5] = p - key;

    cmd->argv = argv;
    cmd->argvlen = argvlen;
    cmd->n = 6;

    return NGX_OK;
}


/*
 * The loyalty operations, on the customer's member key:
 *
 * FCALL voucher_loyalty_earn 1 {ns}:lm:CUSTOMER
 *       order_id amount nitems [sku cat price qty]* [limits]
 * FCALL voucher_loyalty_balance 1 {ns}:lm:CUSTOMER [limits]
 * FCALL voucher_loyalty_ledger 1 {ns}:lm:CUSTOMER count before [limits]
 */

static ngx_int_t
ngx_http_voucher_command_loyalty(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_request_t *req,
    ngx_http_voucher_cmd_t *cmd)
{
    u_char                   *p, *key;
    size_t                   *argvlen, n;
    ngx_int_t                 nl;
    ngx_uint_t                i, argc;
    const char              **argv;
    ngx_http_voucher_item_t  *item;

    argc = 9 + 4 * req->nitems + ngx_http_voucher_limit_nargs(vlcf);

    argv = ngx_palloc(r->pool, argc * (sizeof(char *) + sizeof(size_t)));
    if (argv == NULL) {
        return NGX_ERROR;
    }

    argvlen = (size_t *) &argv[argc];

    key = ngx_pnalloc(r->pool, sizeof("{}:lm:") - 1 + vlcf->ns.len
                               + req->customer.len
                               + (2 + 2 * req->nitems) * NGX_INT64_LEN);
    if (key == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    ngx_http_voucher_arg("FCALL", 5);

    switch (req->op) {

    case NGX_HTTP_VOUCHER_OP_LOYALTY_EARN:
        ngx_http_voucher_fn("voucher_loyalty_earn");
        break;

    case NGX_HTTP_VOUCHER_OP_LOYALTY_BALANCE:
        ngx_http_voucher_fn("voucher_loyalty_balance");
        break;

    default: /* NGX_HTTP_VOUCHER_OP_LOYALTY_HISTORY */
        ngx_http_voucher_fn("voucher_loyalty_ledger");
        break;
    }

    ngx_http_voucher_arg("1", 1);

    p = ngx_sprintf(key, "{%V}:lm:", &vlcf->ns);
    p = ngx_cpymem(p, req->customer.data, req->customer.len);
    ngx_http_voucher_arg(key, p - key);

    if (req->op == NGX_HTTP_VOUCHER_OP_LOYALTY_EARN) {
        ngx_http_voucher_arg(req->order_id.data, req->order_id.len);

        key = p;
        p = ngx_http_voucher_int64(p, req->amount);
        ngx_http_voucher_arg(key, p - key);

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

    } else if (req->op == NGX_HTTP_VOUCHER_OP_LOYALTY_HISTORY) {
        key = p;
        p = ngx_http_voucher_int64(p, req->limit);
        ngx_http_voucher_arg(key, p - key);

        ngx_http_voucher_arg(req->before.data, req->before.len);
    }


    nl = ngx_http_voucher_limit_args(r, vlcf, req->op, &argv[n],
                                     &argvlen[n]);
    if (nl == NGX_ERROR) {
        return NGX_ERROR;
    }

    n += nl;

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


/*
 * A storefront event, appended to the stream voucherd reads, once per id:
 *
 * FCALL voucher_event 1 {ns}:events id type customer timestamp npairs
 *       [field value]* [limits]
 *
 * (timestamp "" = Redis' now).  A purchase's order goes as "order",
 * "amount", "currency" and "items": one "sku TAB category TAB price TAB
 * quantity" a line (the parser lets no control character into them).
 */

static ngx_int_t
ngx_http_voucher_command_event(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_http_voucher_request_t *req,
    ngx_http_voucher_cmd_t *cmd)
{
    u_char                   *p, *key, *num;
    size_t                   *argvlen, n, size, npairs;
    ngx_int_t                 nl;
    ngx_uint_t                i, j, argc;
    const char              **argv;
    ngx_http_voucher_item_t  *item;

    argc = 8 + 2 * (5 + NGX_HTTP_VOUCHER_EVENT_ATTRS)
           + ngx_http_voucher_limit_nargs(vlcf);

    argv = ngx_palloc(r->pool, argc * (sizeof(char *) + sizeof(size_t)));
    if (argv == NULL) {
        return NGX_ERROR;
    }

    argvlen = (size_t *) &argv[argc];

    size = sizeof("{}:events") - 1 + vlcf->ns.len + 3 * NGX_INT64_LEN;

    for (i = 0; i < req->nitems; i++) {
        item = &req->items[i];
        size += item->sku.len + item->category.len + 2 * NGX_INT64_LEN + 4;
    }

    key = ngx_pnalloc(r->pool, size);
    if (key == NULL) {
        return NGX_ERROR;
    }

    n = 0;

#define ngx_http_voucher_pair(name, s, l)                                    \
    ngx_http_voucher_arg(name, sizeof(name) - 1);                            \
    ngx_http_voucher_arg(s, l);                                              \
    npairs++

    ngx_http_voucher_arg("FCALL", 5);
    ngx_http_voucher_fn("voucher_event");
    ngx_http_voucher_arg("1", 1);

    p = ngx_sprintf(key, "{%V}:events", &vlcf->ns);
    ngx_http_voucher_arg(key, p - key);

    ngx_http_voucher_arg(req->event_id.data, req->event_id.len);
    ngx_http_voucher_arg(req->event_type.data, req->event_type.len);
    ngx_http_voucher_arg(req->customer.data, req->customer.len);

    num = p;

    if (req->timestamp != NGX_HTTP_VOUCHER_UNSET) {
        p = ngx_http_voucher_int64(p, req->timestamp);
    }

    ngx_http_voucher_arg(num, p - num);

    /* the count of pairs, written once they are known */
    i = n;
    ngx_http_voucher_arg("", 0);
    npairs = 0;

    if (req->amount != NGX_HTTP_VOUCHER_UNSET) {
        num = p;
        p = ngx_http_voucher_int64(p, req->amount);
        ngx_http_voucher_pair("amount", num, p - num);
    }

    if (req->order_id.len) {
        ngx_http_voucher_pair("order", req->order_id.data, req->order_id.len);
    }

    if (req->currency.len) {
        ngx_http_voucher_pair("currency", req->currency.data,
                              req->currency.len);
    }

    if (req->nitems) {
        num = p;

        for (item = req->items; item < req->items + req->nitems; item++) {
            if (item != req->items) {
                *p++ = '\n';
            }

            p = ngx_cpymem(p, item->sku.data, item->sku.len);
            *p++ = '\t';
            p = ngx_cpymem(p, item->category.data, item->category.len);
            *p++ = '\t';
            p = ngx_http_voucher_int64(p, item->price);
            *p++ = '\t';
            p = ngx_http_voucher_int64(p, item->quantity);
        }

        ngx_http_voucher_pair("items", num, p - num);
    }

    if (req->referral_code.len) {
        ngx_http_voucher_pair("referral_code", req->referral_code.data,
                              req->referral_code.len);
    }

    for (j = 0; j < NGX_HTTP_VOUCHER_EVENT_ATTRS; j++) {
        if (req->attrs[j].len == 0) {
            continue;
        }

        ngx_http_voucher_arg(ngx_http_voucher_event_attrs[j],
                             ngx_strlen(ngx_http_voucher_event_attrs[j]));
        ngx_http_voucher_arg(req->attrs[j].data, req->attrs[j].len);
        npairs++;
    }

    num = p;
    p = ngx_http_voucher_int64(p, (int64_t) npairs);
    argv[i] = (const char *) num;
    argvlen[i] = p - num;

#undef ngx_http_voucher_pair

    nl = ngx_http_voucher_limit_args(r, vlcf, req->op, &argv[n],
                                     &argvlen[n]);
    if (nl == NGX_ERROR) {
        return NGX_ERROR;
    }

    n += nl;

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
    argv[1] = VOUCHER_FN("voucher_guess");
    argvlen[1] = sizeof(VOUCHER_FN("voucher_guess")) - 1;
    argv[2] = "1";
    argvlen[2] = 1;
    argv[3] = (const char *) key;
    argvlen[3] = p - key;

    nl = ngx_http_voucher_limit_args(r, vlcf, req->op, &argv[4],
                                     &argvlen[4]);
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


/*
 * The command goes to Redis; the answer comes to the front door's
 * core->answered.  With core->detach, the op goes with the request.
 */

static ngx_uint_t
ngx_http_voucher_send(ngx_http_voucher_core_t *core,
    ngx_http_voucher_cmd_t *cmd)
{
    ngx_http_request_t     *r;
    ngx_http_cleanup_t     *cln;
    ngx_http_voucher_op_t  *op;

    r = core->request;

    if (core->detach) {
        /* the cleanup first: an op must never exist without its detach */

        cln = ngx_http_cleanup_add(r, 0);
        if (cln == NULL) {
            return NGX_HTTP_VOUCHER_V_FAILED;
        }

        cln->handler = ngx_http_voucher_cleanup;
        cln->data = core;
    }

    op = NULL;

    if (cmd->argvlen[1] == sizeof(VOUCHER_FN("voucher_validate")) - 1
        && (core->conf->store->replicas
            || core->conf->store->replicas_sentinel))
    {
        /* a validate without limits reads only: a replica may answer it */

        core->cmd = ngx_palloc(r->pool, sizeof(ngx_http_voucher_cmd_t));
        if (core->cmd == NULL) {
            return NGX_HTTP_VOUCHER_V_FAILED;
        }

        *(ngx_http_voucher_cmd_t *) core->cmd = *cmd;

        op = ngx_http_voucher_redis_send_read(core->conf->store->pool,
                                              (int) cmd->n, cmd->argv,
                                              cmd->argvlen,
                                              ngx_http_voucher_reply_handler,
                                              core);
        core->replica = (op != NULL);
    }

    if (op == NULL) {
        op = ngx_http_voucher_redis_send(core->conf->store->pool,
                                         (int) cmd->n, cmd->argv,
                                         cmd->argvlen,
                                         ngx_http_voucher_reply_handler, core,
                                         core->api
                                         == NGX_HTTP_VOUCHER_OP_VALIDATE
                                         ? 0 : NGX_HTTP_VOUCHER_SEND_WRITE);
    }

    if (op == NULL) {
        core->reason = "store_unavailable";
        return NGX_HTTP_VOUCHER_V_UNAVAILABLE;
    }

    core->op = op;

    r->write_event_handler = ngx_http_request_empty_handler;
    ngx_http_voucher_watch_client(r);

    return NGX_HTTP_VOUCHER_V_WAITING;
}


/*
 * While Redis works, notice a client that leaves (499, its op detached).
 * A close that came with the request raised its (edge-triggered) event
 * before this handler was set: look once more, from the event loop, not
 * from here, where the body reader may still hold the request.
 */

static void
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


static void
ngx_http_voucher_reply_handler(ngx_http_voucher_op_t *op, void *reply,
    ngx_int_t rc)
{
    ngx_connection_t         *c;
    ngx_http_voucher_ok_t     ok;
    ngx_http_voucher_cmd_t   *cmd;
    ngx_http_voucher_core_t  *core;

    core = op->data;
    c = core->request->connection;

    core->op = NULL;

    if (core->replica && rc != NGX_HTTP_VOUCHER_REPLY) {
        /* the replica could not answer: the master does */

        core->replica = 0;
        cmd = core->cmd;

        core->op = ngx_http_voucher_redis_send(core->conf->store->pool,
                                               (int) cmd->n, cmd->argv,
                                               cmd->argvlen,
                                               ngx_http_voucher_reply_handler,
                                               core, 0);
        if (core->op) {
            return;
        }

        rc = NGX_HTTP_VOUCHER_LOST;
    }

    switch (rc) {

    case NGX_HTTP_VOUCHER_REPLY:
        if (ngx_http_voucher_ok_decode(reply, &ok) != 0) {
            /* not of the expected shape: answered internal_error, logged */
            core->answered(core, NGX_HTTP_VOUCHER_V_ANSWER, reply, NULL);
            break;
        }

        ngx_http_voucher_limit_result(core, reply, &ok);
        ngx_http_voucher_hot_learn(core, reply);
        core->answered(core, NGX_HTTP_VOUCHER_V_ANSWER, reply, &ok);
        break;

    case NGX_HTTP_VOUCHER_TIMEDOUT:
        core->reason = "store_timeout";
        core->answered(core, NGX_HTTP_VOUCHER_V_UNAVAILABLE, NULL, NULL);
        break;

    default: /* NGX_HTTP_VOUCHER_LOST, NGX_HTTP_VOUCHER_REFUSED */
        core->reason = "store_unavailable";
        core->answered(core, NGX_HTTP_VOUCHER_V_UNAVAILABLE, NULL, NULL);
        break;
    }

    ngx_http_run_posted_requests(c);
}


/*
 * The limits' verdict rides in the reply as "_limit" (and "_limit_name"):
 * kept for $voucher_limit_status and logged at voucher_limit_log_level.
 * A key Redis locked out goes to the lockout cache, which needs the
 * limit's name and the ban's "retry_after_ms" of the same reply.  Only
 * the reply's pairs are read (those after the values of a positional "ok").
 */

static void
ngx_http_voucher_limit_result(ngx_http_voucher_core_t *core, void *data,
    ngx_http_voucher_ok_t *ok)
{
    redisReply  *reply = data;

    int64_t                       ms;
    ngx_str_t                     lname, *out;
    redisReply                   *v, *status, *name;
    ngx_http_request_t           *r;
    ngx_http_voucher_loc_conf_t  *vlcf;

    r = core->request;
    vlcf = core->conf;
    out = &core->limit_status;

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

    ngx_http_voucher_metrics_count(NGX_HTTP_VOUCHER_M_LIMIT,
                                   ngx_http_voucher_metrics_limit_slot(
                                       out->data, out->len));

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

        ngx_http_voucher_lockout_learn(r, vlcf, core->api, &lname, ms);
    }
}


static void
ngx_http_voucher_cleanup(void *data)
{
    ngx_http_voucher_core_t  *core = data;

    if (core->op) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, core->request->connection->log, 0,
                       "voucher: request gone, op detached");

        ngx_http_voucher_redis_detach(core->op);
        core->op = NULL;
    }
}
