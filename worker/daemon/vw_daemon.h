
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherd: what its parts share.  voucherd.c runs the loop; each tick
 * consumes events (vw_events.c), plans the scheduled runs that are due
 * (vw_plan.c) and sends the deliveries that are due (vw_deliver.c).  All
 * state is in Redis, changed only through the library, so several
 * daemons share the work and a killed one loses nothing.
 */


#ifndef _VW_DAEMON_H_INCLUDED_
#define _VW_DAEMON_H_INCLUDED_


#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>

#include "voucher_code.h"
#include "vw_auto.h"
#include "vw_config.h"


typedef struct {
    const char              *config_path;
    vw_config_t              cf;
    redisContext            *redis;
    CURL                    *curl;
    unsigned char            key[VOUCHER_KEY_LEN];
    int                      have_key;

    vw_auto_t               *autos;
    size_t                   nautos;

    int                      group_ready;
    int                      slot;      /* a store's process: its index
                                           + 1 in "stores"; 0 none */
    volatile sig_atomic_t   *stop;
    char                     err[1024];
} vw_daemon_t;


/* each returns what it did (0: nothing due), or -1 when Redis failed */
int vw_events_tick(vw_daemon_t *d);
int vw_plan_tick(vw_daemon_t *d);
int vw_deliver_tick(vw_daemon_t *d);

/* the automation of a campaign, or NULL */
vw_auto_t *vw_daemon_auto(vw_daemon_t *d, const char *campaign);

/*
 * Queues members of a triggered run (voucher_run_add, see vw_run.h):
 * due_ms is when to send, codes_from when the codes' valid_days start;
 * a non-empty cancel_on cancels a delivery on a purchase at or after
 * cancel_after.  Returns how many were queued; -1 when Redis failed, -2
 * when the run cannot be queued (d->err says why).
 */
int64_t vw_daemon_queue(vw_daemon_t *d, vw_auto_t *a, const char *run,
    int64_t due_ms, int64_t codes_from, char **members, size_t n,
    int64_t cancel_after);


#endif /* _VW_DAEMON_H_INCLUDED_ */
