
/*
 * Copyright (C) ngx_voucher authors
 *
 * Redis for the worker: see vw_redis.h.
 */


#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "vw_log.h"
#include "vw_redis.h"
#include "vw_util.h"

/* the function library, as nginx embeds it (common/voucher_lua.h) */
#include "voucher_lua.h"


void
vw_args_add(vw_args_t *a, const char *s, size_t len)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = vw_xrealloc(a->v, (size_t) a->cap * sizeof(char *));
        a->len = vw_xrealloc(a->len, (size_t) a->cap * sizeof(size_t));
    }

    a->v[a->n] = vw_xstrndup(s, len);
    a->len[a->n] = len;
    a->n++;
}


void
vw_args_adds(vw_args_t *a, const char *s)
{
    vw_args_add(a, s, strlen(s));
}


void
vw_args_addf(vw_args_t *a, const char *fmt, ...)
{
    char     buf[1024];
    int      n;
    va_list  args;

    va_start(args, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    if (n < 0) {
        n = 0;
    }

    if ((size_t) n >= sizeof(buf)) {
        n = sizeof(buf) - 1;
    }

    vw_args_add(a, buf, (size_t) n);
}


void
vw_args_addi(vw_args_t *a, int64_t n)
{
    vw_args_addf(a, "%lld", (long long) n);
}


void
vw_args_reset(vw_args_t *a)
{
    int  i;

    for (i = 0; i < a->n; i++) {
        free(a->v[i]);
    }

    a->n = 0;
}


void
vw_args_free(vw_args_t *a)
{
    vw_args_reset(a);
    free(a->v);
    free(a->len);
    memset(a, 0, sizeof(vw_args_t));
}


int
vw_redis_append(redisContext *c, const vw_args_t *a)
{
    return redisAppendCommandArgv(c, a->n, (const char **) a->v, a->len)
           == REDIS_OK ? 0 : -1;
}


int
vw_redis_failed(redisContext *c, redisReply *r, char *err, size_t errlen)
{
    if (r == NULL) {
        snprintf(err, errlen, "redis: %s",
                 c->errstr[0] ? c->errstr : "no reply");
        return 1;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%.*s", (int) r->len, r->str);
        return 1;
    }

    return 0;
}


redisReply *
vw_redis_get(redisContext *c, char *err, size_t errlen)
{
    void  *r;

    r = NULL;

    if (redisGetReply(c, &r) != REDIS_OK || r == NULL) {
        snprintf(err, errlen, "redis: %s",
                 c->errstr[0] ? c->errstr : "no reply");
        return NULL;
    }

    return r;
}


redisReply *
vw_redis_run(redisContext *c, const vw_args_t *a, char *err, size_t errlen)
{
    if (vw_redis_append(c, a) != 0) {
        snprintf(err, errlen, "redis: %s", c->errstr);
        return NULL;
    }

    return vw_redis_get(c, err, errlen);
}


int
vw_reply_int(const redisReply *r, int64_t *out)
{
    if (r == NULL) {
        return -1;
    }

    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return 0;
    }

    if (r->type == REDIS_REPLY_STRING) {
        return vw_parse_int(r->str, INT64_MIN, INT64_MAX, out);
    }

    return -1;
}


const char *
vw_reply_str(const redisReply *r)
{
    if (r != NULL
        && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS
            || r->type == REDIS_REPLY_ERROR))
    {
        return r->str;
    }

    return NULL;
}


const char *
vw_redis_library_version(void)
{
    return VOUCHER_LUA_VERSION;
}


/*
 * This version's library becomes the primary ("voucher"), in one
 * transaction with the removal of its own library "voucher_<version>" that
 * nginx may have loaded beside another version's primary: the functions
 * nginx calls ("<name>_<version>") never go missing in between.
 */

int
vw_redis_load_library(redisContext *c, char *err, size_t errlen)
{
    int          rc;
    size_t       i;
    redisReply  *r, *e;

    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "FUNCTION DELETE voucher_%s", VOUCHER_LUA_VERSION);
    redisAppendCommand(c, "FUNCTION LOAD REPLACE %s", voucher_lua);
    redisAppendCommand(c, "EXEC");

    rc = 0;

    for (i = 0; i < 4; i++) {
        r = NULL;

        if (redisGetReply(c, (void **) &r) != REDIS_OK || r == NULL) {
            snprintf(err, errlen, "redis: %s", c->errstr);
            return -1;
        }

        if (i == 0 && r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "%s", r->str);
            rc = -1;
        }

        if (i == 3 && rc == 0) {
            /* EXEC: the DELETE may fail (no such library), not the LOAD */
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                snprintf(err, errlen, "%s", r->type == REDIS_REPLY_ERROR
                                            ? r->str : "transaction failed");
                rc = -1;

            } else {
                e = r->element[1];

                if (e->type == REDIS_REPLY_ERROR) {
                    snprintf(err, errlen, "%s", e->str);
                    rc = -1;
                }
            }
        }

        freeReplyObject(r);
    }

    return rc;
}


/*
 * Removes the libraries "voucher_<version>" nginx of other versions loaded
 * beside the primary.  Returns how many, or -1 with err set; each name
 * removed is handed to fn.
 */

int
vw_redis_prune_libraries(redisContext *c, void (*fn)(const char *name),
    char *err, size_t errlen)
{
    int          n;
    size_t       i, j;
    redisReply  *r, *lib, *d;

    r = redisCommand(c, "FUNCTION LIST");

    if (vw_redis_failed(c, r, err, errlen)) {
        if (r) {
            freeReplyObject(r);
        }

        return -1;
    }

    n = 0;

    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        lib = r->element[i];

        for (j = 0; lib->type == REDIS_REPLY_ARRAY && j + 1 < lib->elements;
             j += 2)
        {
            if (lib->element[j]->type != REDIS_REPLY_STRING
                || strcmp(lib->element[j]->str, "library_name") != 0
                || lib->element[j + 1]->type != REDIS_REPLY_STRING
                || strncmp(lib->element[j + 1]->str, "voucher_", 8) != 0)
            {
                continue;
            }

            d = redisCommand(c, "FUNCTION DELETE %s",
                             lib->element[j + 1]->str);

            if (vw_redis_failed(c, d, err, errlen)) {
                if (d) {
                    freeReplyObject(d);
                }

                freeReplyObject(r);
                return -1;
            }

            freeReplyObject(d);

            if (fn) {
                fn(lib->element[j + 1]->str);
            }

            n++;
        }
    }

    freeReplyObject(r);

    return n;
}


/* what vw_redis_connect() says of a node whose ROLE is not master */
#define VW_REDIS_NOT_MASTER  "is not the master"


int
vw_redis_unready(const char *err)
{
    size_t       n;
    const char  *p, **w;

    static const char  *words[] = {
        "READONLY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", NULL
    };

    if (err == NULL) {
        return 0;
    }

    if (strstr(err, VW_REDIS_NOT_MASTER) != NULL) {
        return 1;
    }

    /* the error code of a reply, at the start or after a prefix of ours */

    for (w = words; *w; w++) {
        n = strlen(*w);

        for (p = strstr(err, *w); p; p = strstr(p + 1, *w)) {
            if ((p == err || !isalnum((unsigned char) p[-1]))
                && (p[n] == ' ' || p[n] == '\0'))
            {
                return 1;
            }
        }
    }

    return 0;
}


/*
 * A node that is not the master gets no FUNCTION LOAD, and no use: its
 * writes would answer READONLY.  A ROLE refused by an ACL is taken as a
 * master's.
 */

static int
vw_redis_check_role(redisContext *c, char *err, size_t errlen)
{
    const char  *role;
    redisReply  *r;

    r = redisCommand(c, "ROLE");
    if (r == NULL) {
        snprintf(err, errlen, "redis: %s", c->errstr);
        return -1;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        if (vw_redis_unready(r->str)) {
            snprintf(err, errlen, "redis: %s", r->str);
            freeReplyObject(r);
            return -1;
        }

        vw_log_debug("redis: ROLE refused, taken as master: %s", r->str);
        freeReplyObject(r);
        return 0;
    }

    role = (r->type == REDIS_REPLY_ARRAY && r->elements > 0)
           ? vw_reply_str(r->element[0]) : NULL;

    if (role == NULL || strcmp(role, "master") != 0) {
        snprintf(err, errlen, "redis: the node " VW_REDIS_NOT_MASTER
                 " (ROLE %s)", role ? role : "?");
        freeReplyObject(r);
        return -1;
    }

    freeReplyObject(r);

    return 0;
}


static int
vw_redis_check_library(redisContext *c, char *err, size_t errlen)
{
    int          rc;
    redisReply  *r;

    r = redisCommand(c, "FCALL voucher_version 0");
    if (r == NULL) {
        snprintf(err, errlen, "redis: %s", c->errstr);
        return -1;
    }

    rc = 0;

    if (r->type == REDIS_REPLY_ERROR && vw_redis_unready(r->str)) {
        snprintf(err, errlen, "redis: %s", r->str);
        rc = -1;

    } else if (r->type == REDIS_REPLY_ERROR) {
        /* no library yet: nginx has not connected, load ours */
        vw_log_info("redis: no voucher library, loading version %s",
                    VOUCHER_LUA_VERSION);
        rc = vw_redis_load_library(c, err, errlen);

    } else if (r->type == REDIS_REPLY_STRING
               && strcmp(r->str, VOUCHER_LUA_VERSION) != 0)
    {
        /*
         * Not replaced: another version's primary stays until voucherctl
         * library promote.  Only functions it lacks fail, and say so.
         */
        vw_log_debug("redis: voucher library %s, this worker has %s",
                     r->str, VOUCHER_LUA_VERSION);
    }

    freeReplyObject(r);

    return rc;
}


/* asks one Sentinel for the master: 0, or -1 with err set */

static int
vw_redis_sentinel_ask(const vw_config_t *cf, redisContext *c, int i,
    char *host, size_t hostlen, int *port, char *err, size_t errlen)
{
    long         n;
    char        *end;
    redisReply  *r;

    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s",
                     cf->redis_master);

    if (vw_redis_failed(c, r, err, errlen)) {
        if (r) {
            freeReplyObject(r);
        }

        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING
        || r->element[0]->len >= hostlen)
    {
        snprintf(err, errlen, "sentinel %s:%d does not know master \"%s\"",
                 cf->sentinel_host[i], cf->sentinel_port[i],
                 cf->redis_master);
        freeReplyObject(r);
        return -1;
    }

    n = strtol(r->element[1]->str, &end, 10);

    if (*end != '\0' || n < 1 || n > 65535) {
        snprintf(err, errlen, "sentinel %s:%d: invalid port of master",
                 cf->sentinel_host[i], cf->sentinel_port[i]);
        freeReplyObject(r);
        return -1;
    }

    memcpy(host, r->element[0]->str, r->element[0]->len + 1);
    *port = (int) n;

    freeReplyObject(r);

    return 0;
}


/*
 * Links to Sentinels, kept, one per address (the stores of a voucherd may
 * have Sentinels of their own): a store's Sentinels are tried in turn,
 * from the one after the last that failed, and the first that names the
 * master is asked again next time.  Shared by the process: voucherd's
 * threads (the admin API, jobs, webhooks) connect too, so they are used
 * under a lock.
 */

#define VW_SENTINEL_LINKS  64

typedef struct {
    char                   *host;
    int                     port;
    redisContext           *c;
} vw_sentinel_link_t;

static vw_sentinel_link_t  vw_sentinels[VW_SENTINEL_LINKS];
static int                 vw_sentinel_next;
static pthread_mutex_t     vw_sentinel_lock = PTHREAD_MUTEX_INITIALIZER;


static int vw_redis_sentinel_ask_all(const vw_config_t *cf,
    struct timeval tv, char *host, size_t hostlen, int *port, char *err,
    size_t errlen);


static int
vw_redis_sentinel_master(const vw_config_t *cf, struct timeval tv,
    char *host, size_t hostlen, int *port, char *err, size_t errlen)
{
    int  rc;

    pthread_mutex_lock(&vw_sentinel_lock);
    rc = vw_redis_sentinel_ask_all(cf, tv, host, hostlen, port, err,
                                   errlen);
    pthread_mutex_unlock(&vw_sentinel_lock);

    return rc;
}


/* the slot of the link to host:port; the caller holds the lock */

static vw_sentinel_link_t *
vw_redis_sentinel_link(const char *host, int port)
{
    int                  i;
    vw_sentinel_link_t  *l, *free_slot;

    free_slot = NULL;

    for (i = 0; i < VW_SENTINEL_LINKS; i++) {
        l = &vw_sentinels[i];

        if (l->host == NULL) {
            if (free_slot == NULL) {
                free_slot = l;
            }

            continue;
        }

        if (l->port == port && strcmp(l->host, host) == 0) {
            return l;
        }
    }

    if (free_slot == NULL) {
        /* more addresses than slots: the first is given up */
        free_slot = &vw_sentinels[0];

        if (free_slot->c) {
            redisFree(free_slot->c);
        }

        free(free_slot->host);
    }

    free_slot->host = vw_xstrdup(host);
    free_slot->port = port;
    free_slot->c = NULL;

    return free_slot;
}


static int
vw_redis_sentinel_ask_all(const vw_config_t *cf, struct timeval tv,
    char *host, size_t hostlen, int *port, char *err, size_t errlen)
{
    int                  i, k;
    redisReply          *r;
    vw_sentinel_link_t  *l;

    for (k = 0; k < cf->nsentinels; k++) {
        i = vw_sentinel_next % cf->nsentinels;
        l = vw_redis_sentinel_link(cf->sentinel_host[i],
                                   cf->sentinel_port[i]);

        if (l->c == NULL) {
            l->c = redisConnectWithTimeout(cf->sentinel_host[i],
                                           cf->sentinel_port[i], tv);

            if (l->c == NULL || l->c->err) {
                snprintf(err, errlen, "sentinel %s:%d: %s",
                         cf->sentinel_host[i], cf->sentinel_port[i],
                         l->c ? l->c->errstr : "out of memory");
                goto next;
            }

            (void) redisSetTimeout(l->c, tv);

            if (cf->sentinel_password) {
                r = redisCommand(l->c, "AUTH %s", cf->sentinel_password);

                if (vw_redis_failed(l->c, r, err, errlen)) {
                    if (r) {
                        freeReplyObject(r);
                    }

                    goto next;
                }

                freeReplyObject(r);
            }
        }

        if (vw_redis_sentinel_ask(cf, l->c, i, host, hostlen, port, err,
                                  errlen)
            == 0)
        {
            return 0;
        }

    next:

        if (l->c) {
            redisFree(l->c);
            l->c = NULL;
        }

        vw_sentinel_next = (i + 1) % cf->nsentinels;
    }

    return -1;
}


int
vw_redis_moved(const vw_config_t *cf, redisContext *c)
{
    int                     port;
    long                    ms;
    char                    host[256], err[256];
    struct timeval          tv;
    struct timespec         now;
    static struct timespec  last;

    if (cf->nsentinels == 0 || c == NULL || c->tcp.host == NULL) {
        return 0;
    }

    clock_gettime(CLOCK_MONOTONIC, &now);

    ms = (now.tv_sec - last.tv_sec) * 1000
         + (now.tv_nsec - last.tv_nsec) / 1000000;

    if (last.tv_sec != 0 && ms < VW_REDIS_SENTINEL_POLL_MS) {
        return 0;
    }

    last = now;

    tv.tv_sec = cf->redis_timeout_ms / 1000;
    tv.tv_usec = (cf->redis_timeout_ms % 1000) * 1000;

    if (vw_redis_sentinel_master(cf, tv, host, sizeof(host), &port, err,
                                 sizeof(err))
        != 0)
    {
        /* no Sentinel answers: the connection stays as it is */
        vw_log_debug("redis: %s", err);
        return 0;
    }

    return port != c->tcp.port || strcmp(host, c->tcp.host) != 0;
}


/* a connection to h:port (or the unix socket), AUTHed and SELECTed */

static redisContext *
vw_redis_open(const vw_config_t *cf, const char *h, int port,
    struct timeval tv, char *err, size_t errlen)
{
    redisContext  *c;
    redisReply    *r;

    if (h == NULL && cf->redis_unix) {
        c = redisConnectUnixWithTimeout(cf->redis_unix, tv);

    } else {
        c = redisConnectWithTimeout(h, port, tv);
    }

    if (c == NULL || c->err) {
        if (h == NULL && cf->redis_unix) {
            snprintf(err, errlen, "redis unix:%s: %s", cf->redis_unix,
                     c ? c->errstr : "out of memory");

        } else {
            snprintf(err, errlen, "redis %s:%d: %s", h, port,
                     c ? c->errstr : "out of memory");
        }

        if (c) {
            redisFree(c);
        }

        return NULL;
    }

    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errlen, "redis: cannot set the timeout");
        redisFree(c);
        return NULL;
    }

    if (cf->redis_password) {
        if (cf->redis_user) {
            r = redisCommand(c, "AUTH %s %s", cf->redis_user,
                             cf->redis_password);

        } else {
            r = redisCommand(c, "AUTH %s", cf->redis_password);
        }

        if (vw_redis_failed(c, r, err, errlen)) {
            if (r) {
                freeReplyObject(r);
            }

            redisFree(c);
            return NULL;
        }

        freeReplyObject(r);
    }

    if (cf->redis_db != 0) {
        r = redisCommand(c, "SELECT %d", cf->redis_db);

        if (vw_redis_failed(c, r, err, errlen)) {
            if (r) {
                freeReplyObject(r);
            }

            redisFree(c);
            return NULL;
        }

        freeReplyObject(r);
    }

    return c;
}


redisContext *
vw_redis_connect(const vw_config_t *cf, char *err, size_t errlen)
{
    int              port;
    char             host[256];
    const char      *h;
    redisContext    *c;
    struct timeval   tv;

    if (cf->nstores && cf->store == NULL) {
        snprintf(err, errlen, "the configuration has %d stores: choose one "
                 "(voucherctl --store NAME)", cf->nstores);
        return NULL;
    }

    tv.tv_sec = cf->redis_timeout_ms / 1000;
    tv.tv_usec = (cf->redis_timeout_ms % 1000) * 1000;

    h = cf->redis_host;
    port = cf->redis_port;

    if (cf->nsentinels) {
        if (vw_redis_sentinel_master(cf, tv, host, sizeof(host), &port,
                                     err, errlen)
            != 0)
        {
            return NULL;
        }

        h = host;
    }

    c = vw_redis_open(cf, h, port, tv, err, errlen);
    if (c == NULL) {
        return NULL;
    }

    if (vw_redis_check_role(c, err, errlen) != 0
        || vw_redis_check_library(c, err, errlen) != 0)
    {
        redisFree(c);
        return NULL;
    }

    return c;
}


/* a field of an INFO text as an int64, or -1 */

static int64_t
vw_redis_info_int(const char *info, const char *field)
{
    size_t       n;
    int64_t      v;
    const char  *p;

    n = strlen(field);

    for (p = strstr(info, field); p; p = strstr(p + 1, field)) {
        if ((p == info || p[-1] == '\n') && p[n] == ':') {
            v = 0;

            for (p += n + 1; *p >= '0' && *p <= '9'; p++) {
                v = v * 10 + (*p - '0');
            }

            return v;
        }
    }

    return -1;
}


int64_t
vw_redis_master_offset(redisContext *master)
{
    int64_t      off;
    redisReply  *r;

    if (master == NULL || master->err) {
        return -1;
    }

    r = redisCommand(master, "INFO replication");

    off = (r && r->type == REDIS_REPLY_STRING)
          ? vw_redis_info_int(r->str, "master_repl_offset") : -1;

    if (r) {
        freeReplyObject(r);
    }

    return off;
}


/*
 * INFO replication and FCALL voucher_version in one round trip; the
 * offset is asked again, a millisecond apart, while the replica is only
 * a few bytes behind (a write in flight).
 */

int
vw_redis_replica_ready(redisContext *c, int64_t master_offset, char *why,
    size_t whylen)
{
    int          k;
    int64_t      off;
    redisReply  *r, *v;

    if (master_offset < 0) {
        snprintf(why, whylen, "the master's offset is unknown");
        return 0;
    }

    for (k = 0; k < 3; k++) {
        if (k > 0) {
            usleep(1000);
        }

        r = NULL;
        v = NULL;

        redisAppendCommand(c, "INFO replication");
        redisAppendCommand(c, "FCALL voucher_version 0");

        if (redisGetReply(c, (void **) &r) != REDIS_OK
            || redisGetReply(c, (void **) &v) != REDIS_OK)
        {
            snprintf(why, whylen, "%s", c->errstr);
            goto failed;
        }

        if (r == NULL || r->type != REDIS_REPLY_STRING
            || strstr(r->str, "role:slave\r") == NULL
            || strstr(r->str, "master_link_status:up\r") == NULL
            || strstr(r->str, "master_sync_in_progress:0\r") == NULL)
        {
            snprintf(why, whylen, "not in sync");
            goto failed;
        }

        if (v == NULL || v->type != REDIS_REPLY_STRING
            || strcmp(v->str, VOUCHER_LUA_VERSION) != 0)
        {
            snprintf(why, whylen, "another library");
            goto failed;
        }

        off = vw_redis_info_int(r->str, "slave_repl_offset");

        freeReplyObject(r);
        freeReplyObject(v);

        if (off >= master_offset) {
            return 1;
        }
    }

    snprintf(why, whylen, "behind the master");

    return 0;

failed:

    if (r) {
        freeReplyObject(r);
    }

    if (v) {
        freeReplyObject(v);
    }

    return 0;
}


redisContext *
vw_redis_connect_replica(const vw_config_t *cf, int first,
    int64_t master_offset, int *used, char *err, size_t errlen)
{
    int              i, n;
    char             why[256];
    redisContext    *c;
    struct timeval   tv;

    tv.tv_sec = cf->redis_timeout_ms / 1000;
    tv.tv_usec = (cf->redis_timeout_ms % 1000) * 1000;

    for (i = 0; i < cf->nreplicas; i++) {
        n = (first + i) % cf->nreplicas;

        c = vw_redis_open(cf, cf->replica_host[n], cf->replica_port[n], tv,
                          err, errlen);
        if (c == NULL) {
            vw_log_debug("%s: not read from", err);
            continue;
        }

        if (!vw_redis_replica_ready(c, master_offset, why, sizeof(why))) {
            vw_log_debug("redis replica %s:%d: %s, not read from",
                         cf->replica_host[n], cf->replica_port[n], why);
            redisFree(c);
            continue;
        }

        vw_log_debug("redis: reading from replica %s:%d",
                     cf->replica_host[n], cf->replica_port[n]);

        if (used) {
            *used = n;
        }

        return c;
    }

    return NULL;
}


redisContext *
vw_redis_connect_read(const vw_config_t *cf, char *err, size_t errlen)
{
    redisContext  *m, *c;

    m = vw_redis_connect(cf, err, errlen);

    if (m == NULL || cf->nreplicas == 0) {
        return m;
    }

    c = vw_redis_connect_replica(cf, (int) (getpid() % cf->nreplicas),
                                 vw_redis_master_offset(m), NULL, err,
                                 errlen);
    if (c == NULL) {
        return m;
    }

    redisFree(m);

    return c;
}
