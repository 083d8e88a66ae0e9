
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherd's /metrics, Prometheus text (format 0.0.4), served on the
 * admin listener.  Counters of what this process did (deliveries,
 * automation runs, events, jobs, webhooks), kept here under a lock by
 * the threads that do the work; gauges read from Redis at each scrape
 * (the queue, dead letters, jobs by state, webhook outboxes, the events'
 * lag).  Every name starts with voucherd_.  Documented in
 * docs/operations.md#metrics-of-voucherd.
 */


#ifndef _VW_METRICS_H_INCLUDED_
#define _VW_METRICS_H_INCLUDED_


#include <stdint.h>

#include "vw_op.h"
#include "vw_util.h"


/* a delivery's outcome: sent, retry, dead, skipped */
void vw_metrics_delivery(const char *channel, const char *outcome);

/* a scheduled run: planned (lag_s: how late) or skipped */
void vw_metrics_run(const char *campaign, const char *outcome,
    int64_t lag_s);

/* storefront events handled by the automations */
void vw_metrics_events(int64_t n);

/* the whole text of a scrape into out; op: Redis for the gauges */
void vw_metrics_render(vw_op_t *op, vw_buf_t *out);

/*
 * Several stores in one voucherd: vw_metrics_shared() makes the shared
 * memory file (its fd, or -1) that the stores' processes inherit and
 * vw_metrics_attach(); each publishes its text (at most once a second)
 * into its slot; vw_metrics_render_stores() merges n of them from first,
 * every series with a label store="NAME".
 */
int vw_metrics_shared(int nstores);
int vw_metrics_attach(int fd, int nstores);
void vw_metrics_publish(int slot, vw_op_t *op);
void vw_metrics_render_stores(char **names, int first, int n,
    vw_buf_t *out);

/* a label value escaped as the text format wants: \\ \" \n */
void vw_metrics_label(vw_buf_t *out, const char *v);


#endif /* _VW_METRICS_H_INCLUDED_ */
