
/*
 * Copyright (C) ngx_voucher authors
 *
 * The layout of voucher_metrics' shared memory: the counters
 * (ngx_http_voucher_metrics.c) and the scrape that renders them
 * (ngx_http_voucher_prometheus.c).
 */


#ifndef _NGX_HTTP_VOUCHER_METRICS_H_INCLUDED_
#define _NGX_HTTP_VOUCHER_METRICS_H_INCLUDED_


#include "ngx_http_voucher.h"


/*
 * The version of the layout below, counted up with every change: the
 * zone's size grows with it, so a module of another layout (a reload with
 * a new module) gets a zone of its own, not the old one's counts.
 */
#define NGX_HTTP_VOUCHER_M_VERSION   1
#define NGX_HTTP_VOUCHER_M_MAGIC                                             \
    (0x766d657472696300ULL + NGX_HTTP_VOUCHER_M_VERSION)  /* "vmetric" */

/* operations: 0 other, the API's 1..16, the gate's two */
#define NGX_HTTP_VOUCHER_M_API        16
#define NGX_HTTP_VOUCHER_M_GATE_VALIDATE  (NGX_HTTP_VOUCHER_M_API + 1)
#define NGX_HTTP_VOUCHER_M_GATE_REDEEM    (NGX_HTTP_VOUCHER_M_API + 2)
#define NGX_HTTP_VOUCHER_M_OPS        (NGX_HTTP_VOUCHER_M_API + 3)

/* reasons: "ok", "other", "unverified", then reply.c's table */
#define NGX_HTTP_VOUCHER_M_REASONS    96

#define NGX_HTTP_VOUCHER_M_STORES     64
#define NGX_HTTP_VOUCHER_M_STORE_NAME 32

#define NGX_HTTP_VOUCHER_M_BUCKETS    12     /* and +Inf */

/* ngx_http_voucher_metrics_statuses[], then "1xx" .. "5xx" */
#define NGX_HTTP_VOUCHER_M_EXACT      24
#define NGX_HTTP_VOUCHER_M_STATUSES   (NGX_HTTP_VOUCHER_M_EXACT + 5)


typedef struct {
    ngx_atomic_t                  used;
    u_char                        len;
    u_char                        name[NGX_HTTP_VOUCHER_M_STORE_NAME];

    ngx_atomic_t                  conns[2][3];  /* master, replica; state */
    ngx_atomic_t                  native;       /* ready with voucher.so */
    ngx_atomic_t                  waiting;
    ngx_atomic_t                  timeouts;
    ngx_atomic_t                  reconnects;

    /* native, FCALL: per bucket (not cumulative), sum in us, count */
    ngx_atomic_t                  lat[2][NGX_HTTP_VOUCHER_M_BUCKETS + 1];
    ngx_atomic_t                  lat_sum[2];
    ngx_atomic_t                  lat_count[2];
} ngx_http_voucher_metrics_store_t;


typedef struct {
    uint64_t                      magic;

    ngx_atomic_t                  requests[NGX_HTTP_VOUCHER_M_OPS]
                                          [NGX_HTTP_VOUCHER_M_STATUSES]
                                          [NGX_HTTP_VOUCHER_M_REASONS];
    ngx_atomic_t                  offline[NGX_HTTP_VOUCHER_M_OFFLINE_N];
    ngx_atomic_t                  limit[NGX_HTTP_VOUCHER_M_LIMIT_N];
    ngx_atomic_t                  lockout_refused;
    ngx_atomic_t                  lockout_learned;
    ngx_atomic_t                  hot_answers;
    ngx_atomic_t                  settle[2][NGX_HTTP_VOUCHER_M_SETTLE_N];

    ngx_http_voucher_metrics_store_t  stores[NGX_HTTP_VOUCHER_M_STORES];
} ngx_http_voucher_metrics_sh_t;


typedef struct {
    ngx_http_voucher_metrics_sh_t  *sh;
    ngx_http_voucher_main_conf_t   *vmcf;
} ngx_http_voucher_metrics_ctx_t;


ngx_int_t ngx_http_voucher_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
u_char *ngx_http_voucher_metrics_status_text(ngx_uint_t i, u_char *buf);
const char *ngx_http_voucher_metrics_limit_name(ngx_uint_t i);


#endif /* _NGX_HTTP_VOUCHER_METRICS_H_INCLUDED_ */
