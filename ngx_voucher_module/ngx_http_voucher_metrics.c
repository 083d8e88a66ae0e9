
/*
 * Copyright (C) ngx_voucher authors
 *
 * The counters of voucher_metrics, in a table of fixed layout in shared
 * memory ("voucher_metrics", kept across reloads: the same name and
 * size; see ngx_http_voucher_metrics.h).  The request path only adds to
 * it with atomic additions, no lock; ngx_http_voucher_prometheus.c reads
 * it for a scrape.  Stores keep a slot by name, so a reload that reorders
 * them keeps their counts.
 *
 * Gauges (connections, requests waiting) are added to and taken from by
 * each worker as its state changes, and given back when it exits; a worker
 * that dies without exiting leaves its share until nginx restarts.
 */


#include "ngx_http_voucher_metrics.h"

#include <time.h>


static void ngx_http_voucher_metrics_slots(
    ngx_http_voucher_metrics_ctx_t *ctx, ngx_log_t *log);


/* this worker's view of the zone, NULL without voucher_metrics */
static ngx_http_voucher_metrics_sh_t  *ngx_http_voucher_metrics_sh;


/* statuses with a slot of their own; others by class: "4xx" */
static ngx_uint_t  ngx_http_voucher_metrics_statuses[NGX_HTTP_VOUCHER_M_EXACT]
    = {
    200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 405, 408, 409, 410,
    413, 415, 422, 429, 444, 499, 500, 502, 503, 504
};




static uint64_t  ngx_http_voucher_metrics_bounds_us[NGX_HTTP_VOUCHER_M_BUCKETS]
    = { 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
        1000000, 2500000 };



static const char  *ngx_http_voucher_metrics_limit_names[] = {
    "passed", "rejected", "locked", "rejected_dry_run", "locked_dry_run",
    "other"
};


ngx_int_t
ngx_http_voucher_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t                 *shpool;
    ngx_http_voucher_metrics_ctx_t  *ctx, *octx;

    ctx = shm_zone->data;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data || shm_zone->shm.exists) {
        /* a reload: the counts go on, if the table is of this layout */

        octx = data;
        ctx->sh = octx ? octx->sh : shpool->data;

        if (ctx->sh->magic != NGX_HTTP_VOUCHER_M_MAGIC) {
            /* NGX_HTTP_VOUCHER_M_VERSION was not counted up */
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "voucher_metrics: the counters in shared memory "
                          "are of another layout");
            return NGX_ERROR;
        }

        ngx_http_voucher_metrics_slots(ctx, shm_zone->shm.log);
        return NGX_OK;
    }

    ctx->sh = ngx_slab_calloc(shpool, sizeof(ngx_http_voucher_metrics_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->sh->magic = NGX_HTTP_VOUCHER_M_MAGIC;
    shpool->data = ctx->sh;

    ngx_http_voucher_metrics_slots(ctx, shm_zone->shm.log);

    return NGX_OK;
}


/* each store's slot, by name: found, or the first free one */

static void
ngx_http_voucher_metrics_slots(ngx_http_voucher_metrics_ctx_t *ctx,
    ngx_log_t *log)
{
    ngx_uint_t                         i, j, n;
    ngx_http_voucher_store_t          *store, **stores;
    ngx_http_voucher_metrics_store_t  *ms;

    n = ctx->vmcf->stores ? ctx->vmcf->stores->nelts : 0;
    stores = ctx->vmcf->stores ? ctx->vmcf->stores->elts : NULL;

    for (j = 0; j <= n; j++) {
        store = (j == 0) ? &ctx->vmcf->store : stores[j - 1];
        store->metrics_slot = NGX_HTTP_VOUCHER_M_NO_SLOT;

        if ((j == 0 && !ctx->vmcf->configured)
            || store->name.len > NGX_HTTP_VOUCHER_M_STORE_NAME)
        {
            continue;
        }

        for (i = 0; i < NGX_HTTP_VOUCHER_M_STORES; i++) {
            ms = &ctx->sh->stores[i];

            if (!ms->used) {
                ms->len = (u_char) store->name.len;
                ngx_memcpy(ms->name, store->name.data, store->name.len);
                ms->used = 1;
                break;
            }

            if (ms->len == store->name.len
                && ngx_strncmp(ms->name, store->name.data, ms->len) == 0)
            {
                break;
            }
        }

        if (i == NGX_HTTP_VOUCHER_M_STORES) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "voucher_metrics: more than %d stores, "
                          "\"%V\" is not counted",
                          NGX_HTTP_VOUCHER_M_STORES, &store->name);
            continue;
        }

        store->metrics_slot = i;
    }
}


void
ngx_http_voucher_metrics_init_worker(ngx_http_voucher_main_conf_t *vmcf)
{
    ngx_http_voucher_metrics_ctx_t  *ctx;

    ngx_http_voucher_metrics_sh = NULL;

    if (vmcf->metrics_zone && vmcf->metrics_zone->data) {
        ctx = vmcf->metrics_zone->data;

        if (ctx->sh && ctx->sh->magic == NGX_HTTP_VOUCHER_M_MAGIC) {
            ngx_http_voucher_metrics_sh = ctx->sh;
        }
    }
}


/* ------------------------------------------------------- the hot path */


static ngx_inline ngx_http_voucher_metrics_store_t *
ngx_http_voucher_metrics_store(ngx_http_voucher_store_t *store)
{
    if (ngx_http_voucher_metrics_sh == NULL
        || store->metrics_slot == NGX_HTTP_VOUCHER_M_NO_SLOT)
    {
        return NULL;
    }

    return &ngx_http_voucher_metrics_sh->stores[store->metrics_slot];
}


static ngx_uint_t
ngx_http_voucher_metrics_status(ngx_uint_t status)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_VOUCHER_M_EXACT; i++) {
        if (ngx_http_voucher_metrics_statuses[i] == status) {
            return i;
        }
    }

    if (status == 0) {
        /* no answer went out: the client left, as nginx logs it */
        return ngx_http_voucher_metrics_status(NGX_HTTP_CLIENT_CLOSED_REQUEST);
    }

    if (status < 100 || status > 599) {
        status = 500;
    }

    /* "1xx" .. "5xx" */
    return NGX_HTTP_VOUCHER_M_EXACT + status / 100 - 1;
}


/*
 * A request answered: its operation (NGX_HTTP_VOUCHER_OP_*, or one of the
 * gate's, as ngx_http_voucher_metrics_gate_op() gives), status and reason
 * (NGX_HTTP_VOUCHER_M_R_* or ngx_http_voucher_reason_index()'s + the
 * first table slot).
 */

void
ngx_http_voucher_metrics_request(ngx_int_t op, ngx_uint_t status,
    ngx_int_t reason)
{
    ngx_http_voucher_metrics_sh_t  *sh;

    sh = ngx_http_voucher_metrics_sh;

    if (sh == NULL) {
        return;
    }

    /* an operation without a name in the scrape's table is shown "other" */

    if (op < 0 || op >= NGX_HTTP_VOUCHER_M_OPS) {
        op = 0;
    }

    if (reason < 0 || reason >= NGX_HTTP_VOUCHER_M_REASONS) {
        reason = NGX_HTTP_VOUCHER_M_R_OTHER;
    }

    (void) ngx_atomic_fetch_add(
               &sh->requests[op][ngx_http_voucher_metrics_status(status)]
                            [reason], 1);
}


ngx_int_t
ngx_http_voucher_metrics_gate_op(ngx_int_t gate)
{
    return gate == NGX_HTTP_VOUCHER_OP_REDEEM
           ? NGX_HTTP_VOUCHER_M_GATE_REDEEM : NGX_HTTP_VOUCHER_M_GATE_VALIDATE;
}


void
ngx_http_voucher_metrics_count(ngx_uint_t what, ngx_uint_t i)
{
    ngx_http_voucher_metrics_sh_t  *sh;

    sh = ngx_http_voucher_metrics_sh;

    if (sh == NULL) {
        return;
    }

    switch (what) {

    case NGX_HTTP_VOUCHER_M_OFFLINE:
        (void) ngx_atomic_fetch_add(&sh->offline[i], 1);
        break;

    case NGX_HTTP_VOUCHER_M_LIMIT:
        (void) ngx_atomic_fetch_add(&sh->limit[i], 1);
        break;

    case NGX_HTTP_VOUCHER_M_LOCKOUT_REFUSED:
        (void) ngx_atomic_fetch_add(&sh->lockout_refused, 1);
        break;

    case NGX_HTTP_VOUCHER_M_LOCKOUT_LEARNED:
        (void) ngx_atomic_fetch_add(&sh->lockout_learned, 1);
        break;

    case NGX_HTTP_VOUCHER_M_HOT:
        (void) ngx_atomic_fetch_add(&sh->hot_answers, 1);
        break;

    case NGX_HTTP_VOUCHER_M_CONFIRM:
        (void) ngx_atomic_fetch_add(&sh->settle[0][i], 1);
        break;

    case NGX_HTTP_VOUCHER_M_RELEASE:
        (void) ngx_atomic_fetch_add(&sh->settle[1][i], 1);
        break;
    }
}


/* $voucher_limit_status as a decision's slot */

ngx_uint_t
ngx_http_voucher_metrics_limit_slot(u_char *p, size_t len)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_VOUCHER_M_LIMIT_N - 1; i++) {
        if (ngx_strlen(ngx_http_voucher_metrics_limit_names[i]) == len
            && ngx_strncasecmp(p, (u_char *)
                                  ngx_http_voucher_metrics_limit_names[i],
                               len)
               == 0)
        {
            return i;
        }
    }

    return NGX_HTTP_VOUCHER_M_LIMIT_N - 1;
}


/* a connection moved between gauges: NGX_HTTP_VOUCHER_M_CONN_* */

void
ngx_http_voucher_metrics_conn(ngx_http_voucher_store_t *store,
    ngx_uint_t replica, ngx_uint_t from, ngx_uint_t to)
{
    ngx_http_voucher_metrics_store_t  *ms;

    ms = ngx_http_voucher_metrics_store(store);

    if (ms == NULL || from == to) {
        return;
    }

    replica = replica ? 1 : 0;

    if (from != NGX_HTTP_VOUCHER_M_CONN_NONE) {
        (void) ngx_atomic_fetch_add(&ms->conns[replica][from], -1);
    }

    if (to != NGX_HTTP_VOUCHER_M_CONN_NONE) {
        (void) ngx_atomic_fetch_add(&ms->conns[replica][to], 1);
    }
}


void
ngx_http_voucher_metrics_store_add(ngx_http_voucher_store_t *store,
    ngx_uint_t what, ngx_int_t n)
{
    ngx_http_voucher_metrics_store_t  *ms;

    ms = ngx_http_voucher_metrics_store(store);

    if (ms == NULL) {
        return;
    }

    switch (what) {

    case NGX_HTTP_VOUCHER_M_NATIVE:
        (void) ngx_atomic_fetch_add(&ms->native, n);
        break;

    case NGX_HTTP_VOUCHER_M_WAITING:
        (void) ngx_atomic_fetch_add(&ms->waiting, n);
        break;

    case NGX_HTTP_VOUCHER_M_TIMEOUT:
        (void) ngx_atomic_fetch_add(&ms->timeouts, n);
        break;

    case NGX_HTTP_VOUCHER_M_RECONNECT:
        (void) ngx_atomic_fetch_add(&ms->reconnects, n);
        break;
    }
}


/* a monotonic clock in microseconds; 0 when nothing is measured */

uint64_t
ngx_http_voucher_metrics_now(void)
{
    struct timespec  ts;

    if (ngx_http_voucher_metrics_sh == NULL) {
        return 0;
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + 1;
}


void
ngx_http_voucher_metrics_latency(ngx_http_voucher_store_t *store,
    ngx_uint_t native, uint64_t start)
{
    uint64_t                           us;
    ngx_uint_t                         i;
    ngx_http_voucher_metrics_store_t  *ms;

    if (start == 0) {
        return;
    }

    ms = ngx_http_voucher_metrics_store(store);

    if (ms == NULL) {
        return;
    }

    us = ngx_http_voucher_metrics_now();
    us = (us > start) ? us - start : 0;

    for (i = 0; i < NGX_HTTP_VOUCHER_M_BUCKETS; i++) {
        if (us <= ngx_http_voucher_metrics_bounds_us[i]) {
            break;
        }
    }

    native = native ? 0 : 1;

    (void) ngx_atomic_fetch_add(&ms->lat[native][i], 1);
    (void) ngx_atomic_fetch_add(&ms->lat_sum[native], us);
    (void) ngx_atomic_fetch_add(&ms->lat_count[native], 1);
}


/* a status slot as its three characters: "404", or "4xx" */

u_char *
ngx_http_voucher_metrics_status_text(ngx_uint_t i, u_char *buf)
{
    if (i < NGX_HTTP_VOUCHER_M_EXACT) {
        return ngx_sprintf(buf, "%03ui", ngx_http_voucher_metrics_statuses[i]);
    }

    buf[0] = (u_char) ('1' + i - NGX_HTTP_VOUCHER_M_EXACT);
    buf[1] = 'x';
    buf[2] = 'x';

    return buf + 3;
}


const char *
ngx_http_voucher_metrics_limit_name(ngx_uint_t i)
{
    return ngx_http_voucher_metrics_limit_names[i];
}
