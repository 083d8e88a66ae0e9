
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherd's job runner: a thread of its own, with its own Redis
 * connection and its own copy of the configuration, that claims the jobs
 * queued in Redis (the admin API, voucherctl --detach) or left by a
 * runner that died, and runs them (worker/ops/vw_job.h).  The daemon's
 * loop and the admin API never wait for it.
 */


#ifndef _VW_JOBS_H_INCLUDED_
#define _VW_JOBS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef struct vw_jobs_s  vw_jobs_t;


/* what the runner did, for /metrics */
typedef struct {
    int64_t  started;               /* jobs claimed */
    int64_t  ended[5];              /* by vw_job_run's outcome */
} vw_jobs_stats_t;


/* reads the configuration at path and starts the thread; -1 with err */
int vw_jobs_start(const char *path, vw_jobs_t **out, char *err,
    size_t errlen);

/*
 * Stops the thread: the job in hand stops at its next step and is given
 * back, queued, for the next runner to resume.
 */
void vw_jobs_stop(vw_jobs_t *jr);

/* the counts so far (of every runner this process started) */
void vw_jobs_stats(vw_jobs_stats_t *st);


#endif /* _VW_JOBS_H_INCLUDED_ */
