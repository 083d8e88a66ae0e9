
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherd's job runner: see vw_jobs.h.
 */


#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "vw_config.h"
#include "vw_job.h"
#include "vw_jobs.h"
#include "vw_log.h"
#include "vw_redis.h"
#include "vw_util.h"


struct vw_jobs_s {
    vw_config_t             cf;
    pthread_t               tid;
    volatile sig_atomic_t   stop;
    unsigned char           key[VOUCHER_KEY_LEN];
    int                     have_key;
    char                    owner[128];
};


static pthread_mutex_t  vw_jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static vw_jobs_stats_t  vw_jobs_count;


void
vw_jobs_stats(vw_jobs_stats_t *st)
{
    pthread_mutex_lock(&vw_jobs_lock);
    *st = vw_jobs_count;
    pthread_mutex_unlock(&vw_jobs_lock);
}


static void
vw_jobs_nap(vw_jobs_t *jr, long ms)
{
    struct timespec  ts;

    while (ms > 0 && !jr->stop) {
        ts.tv_sec = 0;
        ts.tv_nsec = (ms < 50 ? ms : 50) * 1000000L;
        nanosleep(&ts, NULL);
        ms -= 50;
    }
}


/* an import's file, from {NS}:jd:<id> */

static int
vw_jobs_input(vw_job_t *j)
{
    char        *key;
    vw_args_t    a;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(j->op->cf, "jd:%s", j->id);
    vw_args_adds(&a, "GET");
    vw_args_adds(&a, key);
    free(key);

    r = vw_op_run(j->op, &a, &j->e);
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->type == REDIS_REPLY_STRING) {
        j->input = vw_xalloc(r->len + 1);
        memcpy(j->input, r->str, r->len);
        j->input[r->len] = '\0';
        j->input_len = r->len;
    }

    freeReplyObject(r);

    return 0;
}


static const char *const  vw_outcome[] = {
    "done", "failed", "cancelled", "given back", "lost"
};


static void
vw_jobs_one(vw_jobs_t *jr, vw_op_t *op, vw_job_t *j)
{
    int  rc;

    j->stop = &jr->stop;
    j->stop_cancels = 0;

    vw_log_info("job %s (%s) %s at %lld of %lld", j->id, j->kind,
                j->seq > 0 || j->done > 0 ? "resumed" : "started",
                (long long) j->done, (long long) j->total);

    if (strstr(j->kind, ".import") && vw_jobs_input(j) != 0) {
        rc = VW_JOB_LOST;

    } else {
        rc = vw_job_run(j);
    }

    pthread_mutex_lock(&vw_jobs_lock);
    vw_jobs_count.ended[rc]++;
    pthread_mutex_unlock(&vw_jobs_lock);

    if (rc == VW_JOB_FAILED || rc == VW_JOB_LOST) {
        vw_log_warn("job %s (%s) %s at %lld: %s %s", j->id, j->kind,
                    vw_outcome[rc], (long long) j->done, j->e.reason,
                    j->e.message);

    } else {
        vw_log_info("job %s (%s) %s at %lld", j->id, j->kind,
                    vw_outcome[rc], (long long) j->done);
    }

    (void) op;
}


static void *
vw_jobs_main(void *arg)
{
    int            rc;
    char           err[512];
    vw_op_t        op;
    vw_job_t       j;
    vw_jobs_t     *jr;
    vw_operr_t     e;
    redisContext  *redis;

    jr = arg;
    redis = NULL;

    while (!jr->stop) {
        if (redis == NULL) {
            redis = vw_redis_connect(&jr->cf, err, sizeof(err));

            if (redis == NULL) {
                vw_jobs_nap(jr, 1000);
                continue;
            }
        }

        memset(&op, 0, sizeof(vw_op_t));
        op.cf = &jr->cf;
        op.redis = redis;
        op.who = "voucherd";
        op.key = jr->have_key ? jr->key : NULL;

        rc = vw_job_claim(&op, jr->owner, jr->cf.lease_s * 1000, &j, &e);

        if (rc == 1) {
            pthread_mutex_lock(&vw_jobs_lock);
            vw_jobs_count.started++;
            pthread_mutex_unlock(&vw_jobs_lock);

            vw_jobs_one(jr, &op, &j);
            vw_job_free(&j);
        }

        if (redis->err) {
            redisFree(redis);
            redis = NULL;
        }

        if (rc != 1) {
            vw_jobs_nap(jr, rc < 0 ? 1000 : jr->cf.poll_ms);
        }
    }

    if (redis) {
        redisFree(redis);
    }

    return NULL;
}


int
vw_jobs_start(const char *path, vw_jobs_t **out, char *err, size_t errlen)
{
    int         rc;
    sigset_t    set, old;
    vw_jobs_t  *jr;

    *out = NULL;

    jr = vw_xalloc(sizeof(vw_jobs_t));
    memset(jr, 0, sizeof(vw_jobs_t));

    if (vw_config_load(path, &jr->cf, err, errlen) != 0) {
        free(jr);
        return -1;
    }

    if (jr->cf.key_file) {
        if (voucher_key_load(jr->cf.key_file, jr->key, err, errlen) != 0) {
            vw_config_free(&jr->cf);
            free(jr);
            return -1;
        }

        jr->have_key = 1;
    }

    snprintf(jr->owner, sizeof(jr->owner), "voucherd:%s", jr->cf.consumer);

    /* the thread leaves the signals to the loop's thread */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);

    rc = pthread_create(&jr->tid, NULL, vw_jobs_main, jr);

    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (rc != 0) {
        snprintf(err, errlen, "the job runner's thread: %s", strerror(rc));
        vw_config_free(&jr->cf);
        sodium_memzero(jr->key, sizeof(jr->key));
        free(jr);
        return -1;
    }

    *out = jr;

    return 0;
}


void
vw_jobs_stop(vw_jobs_t *jr)
{
    if (jr == NULL) {
        return;
    }

    jr->stop = 1;
    pthread_join(jr->tid, NULL);

    vw_config_free(&jr->cf);
    sodium_memzero(jr->key, sizeof(jr->key));
    free(jr);
}
