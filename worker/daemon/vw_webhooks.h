
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherd's outgoing webhooks: a thread of its own (its Redis
 * connection, its copy of the configuration, its curl handle) that tails
 * the streams events come from ({NS}:log, {NS}:admin, {NS}:events, the
 * delivery logs of the campaigns with an automation) with the consumer
 * group "webhooks", fans each event out to the outboxes of the
 * subscriptions that want it (voucher_webhook_fanout) and POSTs the
 * outboxes in order, signed, with retries, back-off and dead letters.
 * Documented in docs/admin-api.md#outgoing-webhooks.
 */


#ifndef _VW_WEBHOOKS_H_INCLUDED_
#define _VW_WEBHOOKS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef struct vw_webhooks_s  vw_webhooks_t;


#define VW_WH_SOURCES  4            /* log, admin, events, dl */

typedef struct {
    int64_t  consumed[VW_WH_SOURCES];   /* entries read, by source */
    int64_t  fanned;                    /* events put in outboxes */
    int64_t  sent;
    int64_t  retried;
    int64_t  dead;
} vw_webhooks_stats_t;


extern const char *const  vw_wh_sources[VW_WH_SOURCES];


int vw_webhooks_start(const char *path, vw_webhooks_t **out, char *err,
    size_t errlen);

/* stops the thread after the event in hand */
void vw_webhooks_stop(vw_webhooks_t *wh);

/* the counts so far, of every thread this process started */
void vw_webhooks_stats(vw_webhooks_stats_t *st);


#endif /* _VW_WEBHOOKS_H_INCLUDED_ */
