
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherd: runs campaign automations.  Each tick it reads the
 * automations, consumes events, plans the scheduled runs that are due
 * and sends the deliveries that are due, and once a second it gives back
 * the reservations that ran out (voucher_sweep) and works the loyalty
 * members due on its clock (voucher_loyalty_sweep); it sleeps poll_ms when
 * there was nothing to do.  SIGTERM and SIGINT finish the delivery in hand and
 * stop; SIGHUP reads the configuration again (a bad one is refused and
 * the old one kept) and reopens the log file.
 */


#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "vw_admin.h"
#include "vw_auto.h"
#include "vw_clock.h"
#include "vw_daemon.h"
#include "vw_jobs.h"
#include "vw_webhooks.h"
#include "vw_log.h"
#include "vw_metrics.h"
#include "vw_op.h"
#include "vw_redis.h"
#include "vw_util.h"


static volatile sig_atomic_t  vw_stop;
static volatile sig_atomic_t  vw_reload;

static vw_admin_t            *vw_admin;
static int                    vw_admin_here = 1;  /* not in a store's
                                                     process */
static vw_jobs_t             *vw_jobs;
static vw_webhooks_t         *vw_webhooks;


static const char  vw_usage[] =
    "usage: voucherd [-c CONFIG] [--store NAME] [-t]\n"
    VW_CONFIG_USAGE
    "  --store NAME        run that store of a configuration with \"stores\"\n"
    "                      alone: its loop, jobs and webhooks, no admin API\n"
    "  -t, --test          check the configuration and the automations in\n"
    "                      Redis, then exit\n";


static void
vw_signal(int signo)
{
    if (signo == SIGHUP) {
        vw_reload = 1;

    } else {
        vw_stop = 1;
    }
}


static int
vw_signals(void)
{
    struct sigaction  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = vw_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;

    if (sigaction(SIGTERM, &sa, NULL) != 0
        || sigaction(SIGINT, &sa, NULL) != 0
        || sigaction(SIGHUP, &sa, NULL) != 0)
    {
        return -1;
    }

    sa.sa_handler = SIG_IGN;

    return sigaction(SIGPIPE, &sa, NULL);
}


/* sleeps up to ms, in slices, so that a signal is seen at once */

static void
vw_nap(long ms)
{
    struct timespec  ts;

    while (ms > 0 && !vw_stop && !vw_reload) {
        ts.tv_sec = 0;
        ts.tv_nsec = (ms < 50 ? ms : 50) * 1000000L;
        nanosleep(&ts, NULL);
        ms -= 50;
    }
}


static int
vw_setup(vw_daemon_t *d, vw_config_t *cf, char *err, size_t errlen)
{
    char  ident[80];

    /* a store's process says which store in every line */
    snprintf(ident, sizeof(ident), "voucherd%s%s", cf->store ? "/" : "",
             cf->store ? cf->store : "");

    if (vw_log_open(cf->log_file, cf->log_level, ident, err, errlen) != 0)
    {
        return -1;
    }

    d->have_key = 0;

    if (cf->key_file) {
        if (voucher_key_load(cf->key_file, d->key, err, errlen) != 0) {
            return -1;
        }

        d->have_key = 1;
    }

    return 0;
}


static void
vw_drop_redis(vw_daemon_t *d)
{
    if (d->redis) {
        redisFree(d->redis);
        d->redis = NULL;
    }

    d->group_ready = 0;
}


static void
vw_reload_config(vw_daemon_t *d)
{
    char         err[1024];
    vw_config_t  cf;

    vw_reload = 0;

    if (vw_config_load(d->config_path, &cf, err, sizeof(err)) != 0) {
        vw_log_error("reload refused, the configuration in use stays: %s",
                     err);
        return;
    }

    /* the consumer name stays: the events pending on it are ours */
    free(cf.consumer);
    cf.consumer = vw_xstrdup(d->cf.consumer);

    if (vw_setup(d, &cf, err, sizeof(err)) != 0) {
        vw_log_error("reload refused, the configuration in use stays: %s",
                     err);
        vw_config_free(&cf);
        vw_setup(d, &d->cf, err, sizeof(err));
        return;
    }

    vw_config_free(&d->cf);
    d->cf = cf;

    vw_drop_redis(d);

    /* the admin API reads the new configuration: stopped, started again */
    if (vw_admin_here) {
        vw_admin_stop(vw_admin);
        vw_admin = NULL;

        if (vw_admin_start(d->config_path, &vw_admin, err, sizeof(err))
            != 0)
        {
            vw_log_error("admin API not served until the next reload: %s",
                         err);
        }
    }

    /* the job in hand is given back and taken again at once */
    vw_jobs_stop(vw_jobs);
    vw_jobs = NULL;

    if (vw_jobs_start(d->config_path, &vw_jobs, err, sizeof(err)) != 0) {
        vw_log_error("jobs not run until the next reload: %s", err);
    }

    vw_webhooks_stop(vw_webhooks);
    vw_webhooks = NULL;

    if (vw_webhooks_start(d->config_path, &vw_webhooks, err, sizeof(err))
        != 0)
    {
        vw_log_error("webhooks not sent until the next reload: %s", err);
    }

    vw_log_info("configuration %s reloaded: %zu channels", d->config_path,
                d->cf.nchannels);
}


static int
vw_load_autos(vw_daemon_t *d)
{
    size_t      n;
    vw_auto_t  *a;

    if (vw_autos_load(d->redis, &d->cf, &a, &n, d->err, sizeof(d->err)) != 0)
    {
        return -1;
    }

    vw_autos_free(d->autos, d->nautos);
    d->autos = a;
    d->nautos = n;

    return 0;
}


/* checks the configuration and every automation, then exits */

static int
vw_test(vw_daemon_t *d)
{
    d->redis = vw_redis_connect(&d->cf, d->err, sizeof(d->err));

    if (d->redis == NULL) {
        fprintf(stderr, "voucherd: %s\n", d->err);
        return 1;
    }

    if (vw_load_autos(d) != 0) {
        fprintf(stderr, "voucherd: %s\n", d->err);
        return 1;
    }

    printf("voucherd: configuration %s is fine, %zu automations load\n",
           d->config_path, d->nautos);

    return 0;
}


/*
 * Reservations (gate mode, voucher_api reserve) that were never confirmed
 * are given back by the next write in Redis; this sweep does it even when
 * no checkout writes, so validate and the reports read true counters.
 * Returns how many it gave back, or -1 when Redis failed.
 */

static int vw_loyalty_tick(vw_daemon_t *d);
static int vw_gift_tick(vw_daemon_t *d);


static int
vw_sweep_tick(vw_daemon_t *d)
{
    int                     n;
    char                   *key;
    struct timespec         now;
    redisReply             *r;
    static struct timespec  last;

    clock_gettime(CLOCK_MONOTONIC, &now);

    if (last.tv_sec != 0
        && (now.tv_sec - last.tv_sec) * 1000
           + (now.tv_nsec - last.tv_nsec) / 1000000 < 1000)
    {
        return 0;
    }

    last = now;

    key = vw_key(&d->cf, "hz");
    r = redisCommand(d->redis, "FCALL voucher_sweep 1 %s", key);
    free(key);

    if (r == NULL) {
        snprintf(d->err, sizeof(d->err), "redis: %s", d->redis->errstr);
        return -1;
    }

    if (r->type != REDIS_REPLY_INTEGER) {
        snprintf(d->err, sizeof(d->err), "sweep: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return -1;
    }

    n = (int) r->integer;
    freeReplyObject(r);

    if (n > 0) {
        vw_log_info("sweep: %d reservation(s) ran out and were given back",
                    n);
    }

    if (vw_loyalty_tick(d) < 0 || vw_gift_tick(d) < 0) {
        return -1;
    }

    return n;
}


/*
 * One second's sweep of a due set: FCALL fn on the key of that kind, the
 * daemon's clock and at most 1000 entries; how many were done, or -1.
 */

static int
vw_due_tick(vw_daemon_t *d, const char *kind, const char *fn,
    const char *what)
{
    int          n;
    char        *key;
    redisReply  *r;

    key = vw_key(&d->cf, "%s", kind);
    r = redisCommand(d->redis, "FCALL %s 1 %s %lld 1000",
                     fn, key, (long long) vw_now());
    free(key);

    if (r == NULL) {
        snprintf(d->err, sizeof(d->err), "redis: %s", d->redis->errstr);
        return -1;
    }

    if (r->type != REDIS_REPLY_INTEGER) {
        snprintf(d->err, sizeof(d->err), "%s: %s", what,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return -1;
    }

    n = (int) r->integer;
    freeReplyObject(r);

    return n;
}


/*
 * The gift cards with a credit whose time has come, on the daemon's
 * clock: the credits_expired entries of their ledgers (voucher_gift_sweep,
 * 1000 cards at most a second).  A redeem never counts such a credit
 * anyway; the entry keeps the balance the sum of the ledger.
 */

static int
vw_gift_tick(vw_daemon_t *d)
{
    int  n;

    n = vw_due_tick(d, "gx", "voucher_gift_sweep", "gift sweep");

    if (n > 0) {
        vw_log_info("gift cards: %d card(s) had credits expire", n);
    }

    return n;
}


/*
 * The loyalty members whose time has come, on the daemon's clock (a fake
 * one in the tests): pending points activated, points expired, notices,
 * tier reviews (voucher_loyalty_sweep, 1000 at most a second).
 */

static int
vw_loyalty_tick(vw_daemon_t *d)
{
    int  n;

    n = vw_due_tick(d, "lz", "voucher_loyalty_sweep", "loyalty sweep");

    if (n > 0) {
        vw_log_info("loyalty: %d member(s) had points or a tier due", n);
    }

    return n;
}

/*
 * The retention (trail_retention of the namespace's settings): every
 * retention_ms, the trail, each campaign's delivery log and the records
 * of finished runs lose what is older than the retention and needed by
 * nothing, archived for the reports first (redis/lib/retention.lua).
 * Each call is one atomic round of at most 1000 entries; a tick does at
 * most 100 rounds of each, the next tick goes on.  Returns the entries
 * and runs removed, or -1 when Redis failed.
 */

static int
vw_retention_call(vw_daemon_t *d, const char *fn, const char *key,
    int *more)
{
    int          n;
    redisReply  *r;

    r = redisCommand(d->redis, "FCALL %s 1 %s 1000", fn, key);

    if (r == NULL) {
        snprintf(d->err, sizeof(d->err), "redis: %s", d->redis->errstr);
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_INTEGER
        || r->element[1]->type != REDIS_REPLY_INTEGER)
    {
        snprintf(d->err, sizeof(d->err), "retention: %s: %s", fn,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return -1;
    }

    n = (int) r->element[0]->integer;
    *more = (int) r->element[1]->integer;
    freeReplyObject(r);

    return n;
}


static int
vw_retention_tick(vw_daemon_t *d)
{
    int                     n, total, more, round;
    char                   *key, *pattern, cursor[32];
    size_t                  i;
    struct timespec         now;
    redisReply             *r;
    static struct timespec  last;

    clock_gettime(CLOCK_MONOTONIC, &now);

    if (last.tv_sec != 0
        && (now.tv_sec - last.tv_sec) * 1000
           + (now.tv_nsec - last.tv_nsec) / 1000000 < d->cf.retention_ms)
    {
        return 0;
    }

    last = now;
    total = 0;

    key = vw_key(&d->cf, "log");

    for (round = 0, more = 1; more && round < 100; round++) {
        n = vw_retention_call(d, "voucher_trail_trim", key, &more);
        if (n < 0) {
            free(key);
            return -1;
        }
        total += n;
    }

    free(key);

    key = vw_key(&d->cf, "dr");

    for (round = 0, more = 1; more && round < 100; round++) {
        n = vw_retention_call(d, "voucher_runs_prune", key, &more);
        if (n < 0) {
            free(key);
            return -1;
        }
        total += n;
    }

    free(key);

    /* the delivery logs: {NS}:dl:<campaign>, found with SCAN */

    pattern = vw_key(&d->cf, "dl:*");
    strcpy(cursor, "0");

    do {
        r = redisCommand(d->redis, "SCAN %s MATCH %s COUNT 1000", cursor,
                         pattern);

        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            snprintf(d->err, sizeof(d->err), "retention: SCAN: %s",
                     r == NULL ? d->redis->errstr
                     : r->type == REDIS_REPLY_ERROR ? r->str
                     : "unexpected reply");
            if (r) {
                freeReplyObject(r);
            }
            free(pattern);
            return -1;
        }

        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);

        for (i = 0; i < r->element[1]->elements; i++) {
            for (round = 0, more = 1; more && round < 100; round++) {
                n = vw_retention_call(d, "voucher_dlog_trim",
                                      r->element[1]->element[i]->str, &more);
                if (n < 0) {
                    freeReplyObject(r);
                    free(pattern);
                    return -1;
                }
                total += n;
            }
        }

        freeReplyObject(r);

    } while (strcmp(cursor, "0") != 0);

    free(pattern);

    if (total > 0) {
        vw_log_info("retention: %d entries and runs older than the "
                    "retention archived and removed", total);
    }

    return total;
}


/* a store's process: its metrics for the admin API's process */

static void
vw_store_metrics(vw_daemon_t *d)
{
    vw_op_t  op;

    memset(&op, 0, sizeof(vw_op_t));
    op.cf = &d->cf;
    op.redis = d->redis;

    vw_metrics_publish(d->slot - 1, &op);
}


static int
vw_loop(vw_daemon_t *d)
{
    int    n, worked;
    long   backoff, cap;
    int    down;

    backoff = 100;
    down = 0;

    while (!vw_stop) {
        if (vw_reload) {
            vw_reload_config(d);
        }

        if (d->slot) {
            vw_store_metrics(d);
        }

        if (d->redis == NULL) {
            d->redis = vw_redis_connect(&d->cf, d->err, sizeof(d->err));

            if (d->redis == NULL) {
                if (!down) {
                    vw_log_error("%s; trying again", d->err);
                    down = 1;
                }

                /* a node that answers but is not the master: soon again */
                cap = vw_redis_unready(d->err) ? 1000 : 5000;

                vw_nap(backoff < cap ? backoff : cap);
                backoff = backoff * 2 < 5000 ? backoff * 2 : 5000;
                continue;
            }

            if (down) {
                vw_log_info("redis: connected again");
            }

            down = 0;
            backoff = 100;
        }

        if (vw_redis_moved(&d->cf, d->redis)) {
            vw_log_info("redis: Sentinel names another master, "
                        "connecting to it");
            vw_drop_redis(d);
            continue;
        }

        worked = 0;

        if (vw_load_autos(d) != 0) {
            goto redis_failed;
        }

        n = vw_events_tick(d);

        if (n < 0) {
            goto redis_failed;
        }

        worked += n;

        n = vw_plan_tick(d);

        if (n < 0) {
            goto redis_failed;
        }

        worked += n;

        n = vw_deliver_tick(d);

        if (n < 0) {
            goto redis_failed;
        }

        worked += n;

        if (vw_sweep_tick(d) < 0) {
            goto redis_failed;
        }

        if (vw_retention_tick(d) < 0) {
            goto redis_failed;
        }

        if (worked == 0) {
            vw_nap(d->cf.poll_ms);
        }

        continue;

    redis_failed:

        vw_log_error("%s", d->err);

        /*
         * A broken connection is made anew, and so is one to a node that
         * cannot take writes now (a replica after a failover): the
         * address may lead to the master again.  Other error replies
         * are not Redis' fault.
         */
        if (d->redis && (d->redis->err || vw_redis_unready(d->err))) {
            vw_drop_redis(d);
        }

        vw_nap(d->cf.poll_ms);
    }

    return 0;
}


/* the loop, the admin API (but in a store's process), jobs, webhooks */

static int
vw_serve(vw_daemon_t *d)
{
    int   rc;
    char  err[1024];

    d->curl = curl_easy_init();

    if (d->curl == NULL || vw_signals() != 0) {
        vw_log_error("cannot start: curl or signals");
        return 1;
    }

    if (vw_admin_here
        && vw_admin_start(d->config_path, &vw_admin, err, sizeof(err)) != 0)
    {
        vw_log_error("cannot start: %s", err);
        return 1;
    }

    if (vw_jobs_start(d->config_path, &vw_jobs, err, sizeof(err)) != 0
        || vw_webhooks_start(d->config_path, &vw_webhooks, err, sizeof(err))
           != 0)
    {
        vw_log_error("cannot start: %s", err);
        vw_jobs_stop(vw_jobs);
        vw_admin_stop(vw_admin);
        return 1;
    }

    vw_log_info("started: configuration %s, %s%s%snamespace {%s}, "
                "consumer %s, %zu channels%s", d->config_path,
                d->cf.store ? "store " : "", d->cf.store ? d->cf.store : "",
                d->cf.store ? ", " : "", d->cf.ns, d->cf.consumer,
                d->cf.nchannels, vw_clock_fake() ? ", fake clock" : "");

    rc = vw_loop(d);

    vw_webhooks_stop(vw_webhooks);
    vw_jobs_stop(vw_jobs);
    vw_admin_stop(vw_admin);

    vw_log_info("stopped");

    return rc;
}


/*
 * A store's process is this program again, "voucherd -c FILE --store
 * NAME", exec'd after the fork (so nothing of the admin API's threads and
 * locks comes with it); it finds the shared memory file of the metrics
 * and its slot in VOUCHERD_METRICS ("FD:SLOT:STORES").
 */

static int  vw_metrics_fd = -1;


static pid_t
vw_store_spawn(vw_daemon_t *d, int i)
{
    int     fd;
    char    env[64];
    pid_t   pid;
    char   *argv[6];

    snprintf(env, sizeof(env), "%d:%d:%d", vw_metrics_fd, i,
             d->cf.nstores);

    argv[0] = (char *) "voucherd";
    argv[1] = (char *) "-c";
    argv[2] = (char *) d->config_path;
    argv[3] = (char *) "--store";
    argv[4] = d->cf.stores[i];
    argv[5] = NULL;

    pid = fork();

    if (pid < 0) {
        vw_log_error("store %s: fork: %s", d->cf.stores[i], strerror(errno));
        return 0;
    }

    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);

        for (fd = 3; fd < 1024; fd++) {
            if (fd != vw_metrics_fd) {
                close(fd);
            }
        }

        setenv("VOUCHERD_METRICS", env, 1);
        execv("/proc/self/exe", argv);
        _exit(127);
    }

    vw_log_info("store %s: process %d", d->cf.stores[i], (int) pid);

    return pid;
}


/* in a store's process: its slot of the metrics, from VOUCHERD_METRICS */

static void
vw_store_metrics_attach(vw_daemon_t *d)
{
    int          fd, slot, n;
    const char  *env;

    env = getenv("VOUCHERD_METRICS");

    if (env == NULL || sscanf(env, "%d:%d:%d", &fd, &slot, &n) != 3
        || slot < 0 || slot >= n)
    {
        return;
    }

    if (vw_metrics_attach(fd, n) != 0) {
        vw_log_warn("store %s: metrics not shared: %s", d->cf.store,
                    strerror(errno));
        return;
    }

    d->slot = slot + 1;
}


/*
 * Several stores: a process for each (its loop, jobs and webhooks, as a
 * voucherd of one store), started again a second after it ends; this one
 * serves the admin API for all of them and passes SIGHUP on.  The stores
 * are the ones of the configuration at start.
 */

static int
vw_stores(vw_daemon_t *d)
{
    int              i, n, st;
    char             err[1024];
    pid_t            pid, pids[VW_STORES_MAX];
    struct timespec  now, ended[VW_STORES_MAX];

    n = d->cf.nstores;

    vw_metrics_fd = vw_metrics_shared(n);

    if (vw_signals() != 0 || vw_metrics_fd < 0) {
        vw_log_error("cannot start: signals or shared memory");
        return 1;
    }

    memset(ended, 0, sizeof(ended));

    if (vw_admin_start(d->config_path, &vw_admin, err, sizeof(err)) != 0) {
        vw_log_error("cannot start: %s", err);
        return 1;
    }

    for (i = 0; i < n; i++) {
        pids[i] = vw_store_spawn(d, i);
    }

    vw_log_info("started: configuration %s, %d stores", d->config_path, n);

    while (!vw_stop) {
        if (vw_reload) {
            vw_reload = 0;

            vw_admin_stop(vw_admin);
            vw_admin = NULL;

            if (vw_admin_start(d->config_path, &vw_admin, err, sizeof(err))
                != 0)
            {
                vw_log_error("admin API not served until the next reload: "
                             "%s", err);
            }

            for (i = 0; i < n; i++) {
                if (pids[i] > 0) {
                    kill(pids[i], SIGHUP);
                }
            }

            vw_log_info("configuration %s reloaded", d->config_path);
        }

        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            for (i = 0; i < n; i++) {
                if (pids[i] == pid) {
                    vw_log_error("store %s: process %d ended (status %d), "
                                 "started again in a second",
                                 d->cf.stores[i], (int) pid, st);
                    pids[i] = 0;
                    clock_gettime(CLOCK_MONOTONIC, &ended[i]);
                }
            }
        }

        clock_gettime(CLOCK_MONOTONIC, &now);

        for (i = 0; i < n; i++) {
            if (pids[i] == 0 && now.tv_sec - ended[i].tv_sec >= 1) {
                pids[i] = vw_store_spawn(d, i);
            }
        }

        vw_nap(200);
    }

    for (i = 0; i < n; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
        }
    }

    for (i = 0; i < n; i++) {
        if (pids[i] > 0) {
            waitpid(pids[i], &st, 0);
        }
    }

    vw_admin_stop(vw_admin);
    vw_admin = NULL;

    vw_log_info("stopped");

    return 0;
}


/* -t with stores: each store's configuration and automations */

static int
vw_test_stores(vw_daemon_t *d)
{
    int           i, rc;
    vw_daemon_t   s;

    rc = 0;

    for (i = 0; i < d->cf.nstores && rc == 0; i++) {
        memset(&s, 0, sizeof(vw_daemon_t));
        s.config_path = d->config_path;

        if (vw_config_load_store(d->config_path, d->cf.stores[i], &s.cf,
                                 s.err, sizeof(s.err)) != 0)
        {
            fprintf(stderr, "voucherd: %s\n", s.err);
            return 1;
        }

        printf("store %s: ", d->cf.stores[i]);
        fflush(stdout);
        rc = vw_test(&s);

        vw_autos_free(s.autos, s.nautos);
        vw_drop_redis(&s);
        vw_config_free(&s.cf);
    }

    return rc;
}


int
main(int argc, char **argv)
{
    int           i, test, rc;
    const char   *path;
    vw_daemon_t   d;
    char          err[1024];

    memset(&d, 0, sizeof(vw_daemon_t));

    path = getenv("VOUCHER_CONFIG");
    test = 0;

    for (i = 1; i < argc; i++) {
        if (vw_config_arg(argc, argv, &i, &path)) {
            continue;
        }

        if (strcmp(argv[i], "-t") == 0 || strcmp(argv[i], "--test") == 0) {
            test = 1;

        } else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
            vw_config_select(argv[++i]);
            vw_admin_here = 0;

        } else if (strcmp(argv[i], "-h") == 0
                   || strcmp(argv[i], "--help") == 0)
        {
            fputs(vw_usage, stdout);
            return 0;

        } else {
            fprintf(stderr, "voucherd: unknown argument %s\n%s", argv[i],
                    vw_usage);
            return 2;
        }
    }

    d.config_path = path ? path : VW_CONFIG_DEFAULT;
    d.stop = &vw_stop;

    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "voucherd: libsodium or libcurl failed to start\n");
        return 1;
    }

    if (vw_config_load(d.config_path, &d.cf, err, sizeof(err)) != 0
        || vw_setup(&d, &d.cf, err, sizeof(err)) != 0)
    {
        fprintf(stderr, "voucherd: %s\n", err);
        return 1;
    }

    if (test) {
        rc = (d.cf.nstores && d.cf.store == NULL) ? vw_test_stores(&d)
                                                  : vw_test(&d);
        goto done;
    }

    if (d.cf.store) {
        vw_store_metrics_attach(&d);

    } else if (d.cf.nstores) {
        rc = vw_stores(&d);
        goto done;
    }

    rc = vw_serve(&d);

done:

    vw_autos_free(d.autos, d.nautos);
    vw_drop_redis(&d);

    if (d.curl) {
        curl_easy_cleanup(d.curl);
    }

    sodium_memzero(d.key, sizeof(d.key));
    vw_config_free(&d.cf);
    vw_log_close();
    curl_global_cleanup();

    return rc;
}
