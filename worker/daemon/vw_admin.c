
/*
 * Copyright (C) ngx_voucher authors
 *
 * The admin API: see vw_admin.h.  A request is checked in this order: the
 * bearer token (401, nothing more said), the path (404 unknown_path), the
 * method (405 with Allow), the body's size (413), its type (415), its
 * JSON (400); then the operation runs.
 */


#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "vw_admin.h"
#include "vw_admin_parse.h"
#include "vw_clock.h"
#include "vw_config.h"
#include "vw_job.h"
#include "vw_log.h"
#include "vw_metrics.h"
#include "vw_op.h"
#include "vw_qr.h"
#include "vw_qr_link.h"
#include "vw_redis.h"
#include "vw_util.h"


#define VW_ADMIN_MAX_TOKENS  64


typedef struct {
    char                    name[65];
    unsigned char           hash[crypto_generichash_BYTES];
    char                   *stores;     /* ",a,b,": the stores it may use;
                                           NULL: all of them */
} vw_token_t;


/* a store the API serves: the configuration's own, or one of "stores" */

typedef struct {
    const char             *name;       /* NULL: the configuration has no
                                           stores */
    vw_config_t            *cf;
    unsigned char           key[VOUCHER_KEY_LEN];
    int                     have_key;
} vw_admin_store_t;


struct vw_admin_s {
    vw_config_t             cf;
    vw_admin_store_t        stores[VW_STORES_MAX];
    int                     nstores;
    vw_config_t             store_cf[VW_STORES_MAX];
    struct MHD_Daemon      *mhd;
    char                   *unix_path;

    vw_token_t              tokens[VW_ADMIN_MAX_TOKENS];
    size_t                  ntokens;
    unsigned char           metrics[crypto_generichash_BYTES];
    int                     have_metrics;
    unsigned char           hkey[crypto_generichash_KEYBYTES];

    pthread_key_t           tls;        /* each thread's Redis */
};


/* a request in hand */

typedef struct {
    const vw_route_t       *route;
    vw_admin_store_t       *store;      /* NULL: /metrics of all stores */
    char                    id[512];
    int                     answered;
    int                     too_large;
    size_t                  limit;
    vw_buf_t                body;
    char                    who[80];
} vw_req_t;


static const vw_route_t  vw_routes[] = {
    { "GET", "/v1/campaigns", vw_op_campaign_list, 0 },
    { "POST", "/v1/campaigns", vw_op_campaign_create, 0 },
    { "GET", "/v1/campaigns/{}", vw_op_campaign_get, 0 },
    { "PATCH", "/v1/campaigns/{}", vw_op_campaign_update, 0 },
    { "POST", "/v1/campaigns/{}/pause", vw_op_campaign_pause, 0 },
    { "POST", "/v1/campaigns/{}/resume", vw_op_campaign_resume, 0 },
    { "POST", "/v1/campaigns/{}/archive", vw_op_campaign_archive, 0 },
    { "GET", "/v1/campaigns/{}/deliveries", vw_op_deliveries, 0 },
    { "GET", "/v1/campaigns/{}/report", vw_op_report, 0 },

    { "GET", "/v1/codes", vw_op_code_search, 0 },
    { "POST", "/v1/codes", vw_op_code_create, 0 },
    { "GET", "/v1/codes/{}", vw_op_code_get, 0 },
    { "PATCH", "/v1/codes/{}", vw_op_code_update, 0 },
    { "DELETE", "/v1/codes/{}", vw_op_code_delete, 0 },
    { "POST", "/v1/codes/{}/disable", vw_op_code_disable, 0 },
    { "POST", "/v1/codes/{}/enable", vw_op_code_enable, 0 },
    { "POST", "/v1/codes/{}/credit", vw_op_code_credit, 0 },
    { "POST", "/v1/codes/{}/debit", vw_op_code_debit, 0 },
    { "GET", "/v1/codes/{}/balance", vw_op_code_balance, 0 },
    { "GET", "/v1/codes/{}/transactions", vw_op_code_transactions, 0 },

    { "GET", "/v1/series/{}", vw_op_series_get, 0 },
    { "PUT", "/v1/series/{}", vw_op_series_set, 0 },

    { "GET", "/v1/members", vw_op_member_search, 0 },
    { "POST", "/v1/members", vw_op_member_create, 0 },
    { "GET", "/v1/members/{}", vw_op_member_get, 0 },
    { "PATCH", "/v1/members/{}", vw_op_member_update, 0 },
    { "DELETE", "/v1/members/{}", vw_op_member_delete, 0 },
    { "GET", "/v1/members/{}/codes", vw_op_member_codes, 0 },

    { "POST", "/v1/segments/preview", vw_op_segment_preview, 0 },

    { "GET", "/v1/automations", vw_op_auto_list, 0 },
    { "GET", "/v1/automations/{}", vw_op_auto_get, 0 },
    { "PUT", "/v1/automations/{}", vw_op_auto_set, 0 },
    { "DELETE", "/v1/automations/{}", vw_op_auto_delete, 0 },
    { "GET", "/v1/automations/{}/next", vw_op_auto_next, 0 },
    { "POST", "/v1/automations/{}/run", vw_op_auto_run, 0 },
    { "GET", "/v1/automations/{}/preview", vw_op_auto_preview, 0 },

    { "GET", "/v1/loyalty/programme", vw_op_loyalty_get, 0 },
    { "PATCH", "/v1/loyalty/programme", vw_op_loyalty_set, 0 },
    { "GET", "/v1/loyalty/members/{}", vw_op_loyalty_balance, 0 },
    { "GET", "/v1/loyalty/members/{}/history", vw_op_loyalty_history, 0 },
    { "POST", "/v1/loyalty/members/{}/adjust", vw_op_loyalty_adjust, 0 },
    { "POST", "/v1/loyalty/members/{}/claims", vw_op_reward_claim, 0 },
    { "POST", "/v1/loyalty/members/{}/referral-code", vw_op_referral_code, 0 },
    { "GET", "/v1/loyalty/referrals", vw_op_referral_report, 0 },
    { "GET", "/v1/loyalty/report", vw_op_loyalty_report, 0 },
    { "POST", "/v1/loyalty/referrals", vw_op_referral_pair, 0 },
    { "GET", "/v1/loyalty/rewards", vw_op_reward_list, 0 },
    { "GET", "/v1/loyalty/rewards/{}", vw_op_reward_get, 0 },
    { "PUT", "/v1/loyalty/rewards/{}", vw_op_reward_set, 0 },
    { "POST", "/v1/loyalty/rewards/{}/pool", vw_op_reward_fill, 0 },

    { "POST", "/v1/jobs/codes/issue", vw_op_job_issue, 0 },
    { "POST", "/v1/jobs/codes/export", vw_op_job_export, 0 },
    { "POST", "/v1/jobs/codes/import", vw_op_job_import, VW_ROUTE_RAW },
    { "POST", "/v1/jobs/members/import", vw_op_job_members, VW_ROUTE_RAW },
    { "POST", "/v1/jobs/automations/send", vw_op_job_send, 0 },
    { "GET", "/v1/jobs", vw_op_job_list, 0 },
    { "GET", "/v1/jobs/{}", vw_op_job_get, 0 },
    { "DELETE", "/v1/jobs/{}", vw_op_job_cancel, 0 },
    { "GET", "/v1/jobs/{}/output", NULL, VW_ROUTE_STREAM },

    { "GET", "/v1/webhooks", vw_op_webhook_list, 0 },
    { "POST", "/v1/webhooks", vw_op_webhook_create, 0 },
    { "GET", "/v1/webhooks/{}", vw_op_webhook_get, 0 },
    { "PATCH", "/v1/webhooks/{}", vw_op_webhook_update, 0 },
    { "DELETE", "/v1/webhooks/{}", vw_op_webhook_delete, 0 },
    { "GET", "/v1/webhooks/{}/dead", vw_op_webhook_dead, 0 },

    /* the cart: a member's wallet, qualify (worker/ops/vw_op_cart.c) */
    { "GET", "/v1/members/{}/wallet", vw_op_wallet_list, 0 },
    { "POST", "/v1/members/{}/wallet", vw_op_wallet_add, 0 },
    { "POST", "/v1/members/{}/wallet/remove", vw_op_wallet_remove, 0 },
    { "POST", "/v1/qualify", vw_op_qualify, 0 },
    { "GET", "/v1/qr", NULL, VW_ROUTE_PICTURE },
    { "GET", "/v1/barcode", NULL, VW_ROUTE_PICTURE },
    { "GET", "/qr", NULL, VW_ROUTE_LINK },
    { "GET", "/v1/reports/liability", vw_op_liability, 0 },

    { "GET", "/v1/audit", vw_op_audit_list, 0 },
    { "GET", "/metrics", NULL, VW_ROUTE_METRICS },
    { "GET", "/v1/settings", vw_op_settings_get, 0 },
    { "PATCH", "/v1/settings", vw_op_settings_update, 0 },

    { NULL, NULL, NULL, 0 }
};


/* ---------------------------------------------------------------- tokens */


/*
 * The tokens file: one token a line, "NAME SECRET"; blank lines and lines
 * starting with # are skipped.  NAME: 1-64 of [A-Za-z0-9_.-]; SECRET: 16
 * or more printable characters.  Only a keyed hash of each secret stays
 * in memory.
 */

static int
vw_admin_tokens(vw_admin_t *ad, const char *path, char *err, size_t errlen)
{
    int          line;
    char        *text, *p, *eol, *name, *secret, *stores;
    size_t       n;
    struct stat  st;

    text = vw_read_file(path, NULL);

    if (text == NULL) {
        snprintf(err, errlen, "admin.tokens_file \"%s\": %s", path,
                 strerror(errno));
        return -1;
    }

    if (stat(path, &st) == 0 && (st.st_mode & S_IROTH)) {
        vw_log_warn("admin.tokens_file \"%s\" can be read by anybody", path);
    }

    randombytes_buf(ad->hkey, sizeof(ad->hkey));
    ad->ntokens = 0;
    line = 0;

    for (p = text; *p; p = eol) {
        eol = p + strcspn(p, "\n");
        line++;

        if (*eol) {
            *eol++ = '\0';
        }

        n = strlen(p);

        if (n && p[n - 1] == '\r') {
            p[--n] = '\0';
        }

        p += strspn(p, " \t");

        if (*p == '\0' || *p == '#') {
            continue;
        }

        name = p;
        p += strcspn(p, " \t");

        if (*p) {
            *p++ = '\0';
        }

        secret = p + strspn(p, " \t");
        n = strlen(secret);

        while (n && (secret[n - 1] == ' ' || secret[n - 1] == '\t')) {
            secret[--n] = '\0';
        }

        /* "NAME SECRET stores=a,b": a token for those stores only */
        stores = NULL;
        p = secret + strcspn(secret, " \t");

        if (*p) {
            *p++ = '\0';
            stores = p + strspn(p, " \t");

            if (strncmp(stores, "stores=", 7) != 0 || stores[7] == '\0'
                || stores[7] == ','
                || strspn(stores + 7, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk"
                                      "lmnopqrstuvwxyz0123456789_-,")
                   != strlen(stores + 7))
            {
                snprintf(err, errlen, "admin.tokens_file \"%s\" line %d: "
                         "after the secret, only stores=NAME,NAME...",
                         path, line);
                sodium_memzero(text, strlen(text));
                free(text);
                return -1;
            }

            stores += 7;
            n = strlen(secret);
        }

        if (strlen(name) > 64
            || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                            "vwxyz0123456789_.-") != strlen(name)
            || n < 16 || strpbrk(secret, " \t"))
        {
            snprintf(err, errlen, "admin.tokens_file \"%s\" line %d: expected "
                     "NAME SECRET (NAME of A-Z a-z 0-9 _ . -, at most 64; "
                     "SECRET of 16 or more characters, no spaces)", path,
                     line);
            sodium_memzero(text, strlen(text));
            free(text);
            return -1;
        }

        if (ad->ntokens == VW_ADMIN_MAX_TOKENS) {
            snprintf(err, errlen, "admin.tokens_file \"%s\": more than %d "
                     "tokens", path, VW_ADMIN_MAX_TOKENS);
            free(text);
            return -1;
        }

        snprintf(ad->tokens[ad->ntokens].name,
                 sizeof(ad->tokens[0].name), "%s", name);
        if (stores) {
            ad->tokens[ad->ntokens].stores = vw_xalloc(strlen(stores) + 3);
            sprintf(ad->tokens[ad->ntokens].stores, ",%s,", stores);
        }

        crypto_generichash(ad->tokens[ad->ntokens].hash,
                           sizeof(ad->tokens[0].hash),
                           (unsigned char *) secret, n, ad->hkey,
                           sizeof(ad->hkey));
        sodium_memzero(secret, n);
        ad->ntokens++;
    }

    sodium_memzero(text, p - text);
    free(text);

    if (ad->ntokens == 0) {
        snprintf(err, errlen, "admin.tokens_file \"%s\": no token", path);
        return -1;
    }

    return 0;
}


/* admin.metrics_token_file: one secret, good for GET /metrics only */

static int
vw_admin_metrics_token(vw_admin_t *ad, char *err, size_t errlen)
{
    char  *secret;

    if (ad->cf.admin_metrics_token_file == NULL) {
        return 0;
    }

    secret = vw_read_secret(ad->cf.admin_metrics_token_file, err, errlen);

    if (secret == NULL) {
        return -1;
    }

    if (strlen(secret) < 16 || strpbrk(secret, " \t")) {
        snprintf(err, errlen, "admin.metrics_token_file \"%s\": a secret "
                 "of 16 or more characters, no spaces, expected",
                 ad->cf.admin_metrics_token_file);
        vw_free_secret(secret);
        return -1;
    }

    crypto_generichash(ad->metrics, sizeof(ad->metrics),
                       (unsigned char *) secret, strlen(secret), ad->hkey,
                       sizeof(ad->hkey));
    ad->have_metrics = 1;
    vw_free_secret(secret);

    return 0;
}


/* whether the header holds the metrics token */

static int
vw_admin_metrics_auth(vw_admin_t *ad, const char *header)
{
    unsigned char  h[crypto_generichash_BYTES];

    if (!ad->have_metrics || header == NULL
        || strncasecmp(header, "Bearer ", 7) != 0)
    {
        return 0;
    }

    header += 7;
    header += strspn(header, " ");

    crypto_generichash(h, sizeof(h), (const unsigned char *) header,
                       strlen(header), ad->hkey, sizeof(ad->hkey));

    return sodium_memcmp(h, ad->metrics, sizeof(h)) == 0;
}


/* the token, or NULL; every token is compared, in constant time */

static vw_token_t *
vw_admin_auth(vw_admin_t *ad, const char *header)
{
    size_t          i;
    vw_token_t     *found;
    unsigned char   h[crypto_generichash_BYTES];

    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0) {
        return NULL;
    }

    header += 7;
    header += strspn(header, " ");

    crypto_generichash(h, sizeof(h), (const unsigned char *) header,
                       strlen(header), ad->hkey, sizeof(ad->hkey));

    found = NULL;

    for (i = 0; i < ad->ntokens; i++) {
        if (sodium_memcmp(h, ad->tokens[i].hash, sizeof(h)) == 0) {
            found = &ad->tokens[i];
        }
    }

    return found;
}


/* -------------------------------------------------------------- answers */


static enum MHD_Result
vw_admin_send(struct MHD_Connection *c, int status, json_t *body,
    const char *allow)
{
    char                 *s;
    enum MHD_Result       rc;
    struct MHD_Response  *res;

    vw_buf_t              b;

    s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);

    if (s == NULL) {
        s = vw_xstrdup("{\"reason\":\"internal_error\",\"message\":"
                       "\"the answer could not be written\"}");
        status = 500;
    }

    memset(&b, 0, sizeof(vw_buf_t));
    vw_buf_adds(&b, s);
    vw_buf_addc(&b, '\n');
    free(s);

    res = MHD_create_response_from_buffer(b.len, b.data,
                                          MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(res, "Content-Type", "application/json");
    MHD_add_response_header(res, "Cache-Control", "no-store");

    if (status == 401) {
        MHD_add_response_header(res, "WWW-Authenticate", "Bearer");
    }

    if (allow) {
        MHD_add_response_header(res, "Allow", allow);
    }

    rc = MHD_queue_response(c, (unsigned) status, res);
    MHD_destroy_response(res);

    return rc;
}


static enum MHD_Result
vw_admin_error(struct MHD_Connection *c, vw_req_t *rq, int status,
    const char *reason, const char *field, const char *message,
    const char *allow)
{
    json_t  *o;

    o = json_object();
    json_object_set_new(o, "reason", json_string(reason));
    json_object_set_new(o, "message", json_string(message));

    if (field && *field) {
        json_object_set_new(o, "field", json_string(field));
    }

    if (rq) {
        rq->answered = 1;
    }

    return vw_admin_send(c, status, o, allow);
}


/* ------------------------------------------------------------- requests */


/*
 * A thread's connections: the master, made on first use and after a
 * failure, and a replica for the reads (GET), kept while it qualifies.
 */

typedef struct {
    redisContext           *master;
    redisContext           *replica;
    int                     next;       /* the replica to try first */
    struct timespec         retry;      /* none qualified: not before */
} vw_admin_conn_t;


/* the thread's connections to each store, one after another */

typedef struct {
    int                     n;
    vw_admin_conn_t         conn[];
} vw_admin_conns_t;


static void
vw_admin_conns_free(void *p)
{
    int                i;
    vw_admin_conns_t  *ts;

    ts = p;

    for (i = 0; i < ts->n; i++) {
        if (ts->conn[i].master) {
            redisFree(ts->conn[i].master);
        }

        if (ts->conn[i].replica) {
            redisFree(ts->conn[i].replica);
        }
    }

    free(ts);
}


static vw_admin_conn_t *
vw_admin_conn(vw_admin_t *ad, vw_admin_store_t *st)
{
    int                i;
    vw_admin_conns_t  *ts;

    ts = pthread_getspecific(ad->tls);

    if (ts == NULL) {
        ts = vw_xalloc(sizeof(vw_admin_conns_t)
                       + ad->nstores * sizeof(vw_admin_conn_t));
        memset(ts, 0, sizeof(vw_admin_conns_t)
                      + ad->nstores * sizeof(vw_admin_conn_t));
        ts->n = ad->nstores;

        for (i = 0; i < ts->n; i++) {
            ts->conn[i].next = (int) (pthread_self() % 7919);
        }

        pthread_setspecific(ad->tls, ts);
    }

    return &ts->conn[st - ad->stores];
}


/* this thread's connection to the master */

static redisContext *
vw_admin_redis(vw_admin_t *ad, vw_admin_store_t *st)
{
    char              err[512];
    vw_admin_conn_t  *t;

    t = vw_admin_conn(ad, st);

    if (t->master && t->master->err) {
        redisFree(t->master);
        t->master = NULL;
    }

    if (t->master == NULL) {
        t->master = vw_redis_connect(st->cf, err, sizeof(err));

        if (t->master == NULL) {
            vw_log_error("admin: %s%s%s", st->name ? st->name : "",
                         st->name ? ": " : "", err);
            return NULL;
        }
    }

    return t->master;
}


/*
 * For a read: this thread's replica when it qualifies now (the rule of
 * vw_redis_replica_ready(), as voucherctl report's), else the master.
 * When none qualifies, none is tried again for a second.
 */

#define VW_ADMIN_REPLICA_RETRY_MS  1000

static redisContext *
vw_admin_redis_read(vw_admin_t *ad, vw_admin_store_t *st)
{
    int               used;
    char              why[256], err[512];
    int64_t           off;
    redisContext     *m;
    vw_admin_conn_t  *t;
    struct timespec   now;

    m = vw_admin_redis(ad, st);

    if (m == NULL || st->cf->nreplicas == 0) {
        return m;
    }

    t = vw_admin_conn(ad, st);
    off = vw_redis_master_offset(m);

    if (t->replica) {
        if (vw_redis_replica_ready(t->replica, off, why, sizeof(why))) {
            return t->replica;
        }

        vw_log_debug("admin: redis replica %s:%d: %s, not read from",
                     t->replica->tcp.host, t->replica->tcp.port, why);
        redisFree(t->replica);
        t->replica = NULL;
        t->next++;
    }

    clock_gettime(CLOCK_MONOTONIC, &now);

    if (now.tv_sec < t->retry.tv_sec
        || (now.tv_sec == t->retry.tv_sec && now.tv_nsec < t->retry.tv_nsec)
        || off < 0)
    {
        return m;
    }

    t->replica = vw_redis_connect_replica(st->cf,
                                          t->next % st->cf->nreplicas, off,
                                          &used, err, sizeof(err));

    if (t->replica == NULL) {
        t->retry = now;
        t->retry.tv_nsec += VW_ADMIN_REPLICA_RETRY_MS * 1000000L;
        t->retry.tv_sec += t->retry.tv_nsec / 1000000000L;
        t->retry.tv_nsec %= 1000000000L;
        return m;
    }

    t->next = used;

    return t->replica;
}


/* a read failed on the replica: it is dropped, the master is asked */

static redisContext *
vw_admin_redis_failed(vw_admin_t *ad, vw_admin_store_t *st, redisContext *c)
{
    vw_admin_conn_t  *t;

    t = vw_admin_conn(ad, st);

    if (c == NULL || c != t->replica) {
        return NULL;
    }

    vw_log_info("admin: a read failed on redis replica %s:%d, the master "
                "answers it", c->tcp.host, c->tcp.port);
    redisFree(t->replica);
    t->replica = NULL;
    t->next++;

    return vw_admin_redis(ad, st);
}


typedef struct {
    json_t                 *query;
    int                     bad;
    char                    name[64];
} vw_query_t;


static enum MHD_Result
vw_admin_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
    vw_query_t  *q;

    (void) kind;

    q = cls;

    if (vw_admin_query_add(q->query, key, value, q->name, sizeof(q->name))
        != 0)
    {
        q->bad = 1;
        return MHD_NO;
    }

    return MHD_YES;
}


/* a job's output, streamed a page at a time */

typedef struct {
    vw_admin_t             *ad;
    vw_admin_store_t       *store;
    vw_op_t                 op;
    char                    id[32];
    char                    who[80];
    int64_t                 index;
    int                     more;
    vw_buf_t                buf;
    size_t                  off;
} vw_output_t;


static ssize_t
vw_admin_output_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    size_t        n;
    vw_operr_t    e;
    vw_output_t  *o;

    (void) pos;

    o = cls;

    if (o->off == o->buf.len) {
        if (!o->more) {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }

        vw_buf_reset(&o->buf);
        o->off = 0;
        o->op.redis = vw_admin_redis_read(o->ad, o->store);

        if (vw_job_output(&o->op, o->id, &o->index, 1 << 18, &o->buf,
                          &o->more, &e) != 0
            && (e.status != 503
                || (o->op.redis = vw_admin_redis_failed(o->ad, o->store,
                                                        o->op.redis))
                   == NULL
                || vw_job_output(&o->op, o->id, &o->index, 1 << 18, &o->buf,
                                 &o->more, &e) != 0))
        {
            vw_log_error("admin: the output of job %s broke off: %s", o->id,
                         e.message);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }

        if (o->buf.len == 0) {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
    }

    n = o->buf.len - o->off;

    if (n > max) {
        n = max;
    }

    memcpy(buf, o->buf.data + o->off, n);
    o->off += n;

    return (ssize_t) n;
}


static void
vw_admin_output_free(void *cls)
{
    vw_output_t  *o;

    o = cls;
    vw_buf_free(&o->buf);
    free(o);
}


static enum MHD_Result
vw_admin_output(vw_admin_t *ad, struct MHD_Connection *c, vw_req_t *rq,
    vw_op_t *op)
{
    json_t               *job;
    vw_operr_t            e;
    const char           *kind, *fmt, *type;
    vw_output_t          *o;
    enum MHD_Result       rc;
    struct MHD_Response  *res;

    memset(&e, 0, sizeof(vw_operr_t));
    job = vw_job_read(op, rq->id, &e);

    if (job == NULL && e.status == 503
        && (op->redis = vw_admin_redis_failed(ad, rq->store, op->redis))
           != NULL)
    {
        job = vw_job_read(op, rq->id, &e);
    }

    if (job == NULL) {
        return vw_admin_error(c, rq, e.status, e.reason, e.field, e.message,
                              NULL);
    }

    kind = json_string_value(json_object_get(job, "kind"));
    fmt = json_string_value(json_object_get(json_object_get(job, "params"),
                                            "format"));
    type = strcmp(kind, "codes.export") != 0 ? "text/plain; charset=utf-8"
           : fmt && strcmp(fmt, "jsonl") == 0 ? "application/x-ndjson"
           : "text/csv; charset=utf-8";

    o = vw_xalloc(sizeof(vw_output_t));
    memset(o, 0, sizeof(vw_output_t));
    o->ad = ad;
    o->store = rq->store;
    o->op = *op;
    snprintf(o->who, sizeof(o->who), "%s", rq->who);
    o->op.who = o->who;
    snprintf(o->id, sizeof(o->id), "%.31s", rq->id);

    /* the first page now: a job not finished is answered as an error */
    if (vw_job_output(op, o->id, &o->index, 1 << 18, &o->buf, &o->more, &e)
        != 0)
    {
        json_decref(job);
        vw_admin_output_free(o);
        return vw_admin_error(c, rq, e.status, e.reason, e.field, e.message,
                              NULL);
    }

    json_decref(job);

    res = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                            vw_admin_output_read, o,
                                            vw_admin_output_free);
    MHD_add_response_header(res, "Content-Type", type);
    MHD_add_response_header(res, "Cache-Control", "no-store");

    rq->answered = 1;
    rc = MHD_queue_response(c, 200, res);
    MHD_destroy_response(res);

    vw_log_info("admin: %s GET /v1/jobs/{}/output 200", rq->who);

    return rc;
}


/* /metrics, Prometheus text */

static enum MHD_Result
vw_admin_metrics(vw_admin_t *ad, struct MHD_Connection *c, vw_req_t *rq,
    vw_op_t *op)
{
    vw_buf_t              b;
    enum MHD_Result       rc;
    struct MHD_Response  *res;

    memset(&b, 0, sizeof(vw_buf_t));

    if (rq->store == NULL) {
        vw_metrics_render_stores(ad->cf.stores, 0, ad->cf.nstores, &b);

    } else if (ad->cf.nstores) {
        vw_metrics_render_stores(ad->cf.stores,
                                 (int) (rq->store - ad->stores), 1, &b);

    } else {
        vw_metrics_render(op, &b);
    }

    res = MHD_create_response_from_buffer(b.len, b.data,
                                          MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(res, "Content-Type",
                            "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(res, "Cache-Control", "no-store");

    rq->answered = 1;
    rc = MHD_queue_response(c, 200, res);
    MHD_destroy_response(res);

    vw_log_debug("admin: %s GET /metrics 200", rq->who);

    return rc;
}


/* a picture drawn here, 200, data handed to MHD to free */

static enum MHD_Result
vw_admin_picture_send(struct MHD_Connection *c, vw_req_t *rq,
    unsigned char *data, size_t len, const char *type, const char *cache)
{
    enum MHD_Result       rc;
    struct MHD_Response  *res;

    res = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(res, "Content-Type", type);
    MHD_add_response_header(res, "Cache-Control", cache);
    MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");

    rq->answered = 1;
    rc = MHD_queue_response(c, 200, res);
    MHD_destroy_response(res);

    return rc;
}


/*
 * /v1/qr, /v1/barcode: drawn from the query alone, no Redis; kept by no
 * cache (the text is a code), and not logged with it.
 */

static enum MHD_Result
vw_admin_picture(struct MHD_Connection *c, vw_req_t *rq, json_t *query)
{
    int                   status;
    size_t                len;
    vw_operr_t            e;
    const char           *type;
    unsigned char        *data;

    memset(&e, 0, sizeof(vw_operr_t));
    data = NULL;
    status = vw_op_picture(query, strcmp(rq->route->path, "/v1/barcode") == 0,
                           &data, &len, &type, &e);

    vw_log_info("admin: %s GET %s %d%s%s", rq->who, rq->route->path,
                status < 0 ? e.status : status, status < 0 ? " " : "",
                status < 0 ? e.reason : "");

    if (status < 0) {
        return vw_admin_error(c, rq, e.status, e.reason, e.field, e.message,
                              NULL);
    }

    return vw_admin_picture_send(c, rq, data, len, type, "private, no-store");
}


/*
 * /qr: the QR picture of a signed link's code ({{qr_url}}), opened by a
 * message's reader without a token; a link not ours, or changed, is 403,
 * one whose time is up 410.  Anyone may keep the picture: the link is the
 * credential, and it names the code it draws.
 */

static enum MHD_Result
vw_admin_link(vw_admin_t *ad, struct MHD_Connection *c, vw_req_t *rq,
    json_t *query)
{
    int                       v;
    char                      err[256];
    size_t                    len;
    vw_operr_t                e;
    const char               *code;
    unsigned char            *data;
    static const char *const  names[] = { "c", "e", "s", NULL };

    memset(&e, 0, sizeof(vw_operr_t));

    if (vw_op_known(query, names, &e) != 0) {
        return vw_admin_error(c, rq, e.status, e.reason, e.field, e.message,
                              NULL);
    }

    code = json_string_value(json_object_get(query, "c"));
    v = vw_qr_link_check(&ad->cf, code,
                         json_string_value(json_object_get(query, "e")),
                         json_string_value(json_object_get(query, "s")),
                         vw_now());

    vw_log_info("admin: %s GET /qr %s", rq->who, v == VW_QR_LINK_OK ? "200"
                : v == VW_QR_LINK_EXPIRED ? "410" : "403");

    if (v == VW_QR_LINK_EXPIRED) {
        return vw_admin_error(c, rq, 410, "link_expired", NULL,
                              "this link has run out", NULL);
    }

    if (v != VW_QR_LINK_OK) {
        return vw_admin_error(c, rq, 403, "link_invalid", NULL,
                              "not a link this shop made", NULL);
    }

    if (vw_qr_png(code, strlen(code), NULL, &data, &len, err, sizeof(err))
        != 0)
    {
        return vw_admin_error(c, rq, 400, "invalid_field", "c", err, NULL);
    }

    return vw_admin_picture_send(c, rq, data, len, "image/png",
                                 "public, max-age=86400");
}


/* the operation, on the whole body */

static enum MHD_Result
vw_admin_run(vw_admin_t *ad, struct MHD_Connection *c, vw_req_t *rq)
{
    int               status, type, read;
    json_t           *out;
    vw_op_t           op;
    vw_op_in_t        in;
    vw_query_t        q;
    vw_operr_t        e;
    const char       *ct;
    enum MHD_Result   rc;

    memset(&in, 0, sizeof(vw_op_in_t));
    memset(&e, 0, sizeof(vw_operr_t));
    memset(&q, 0, sizeof(vw_query_t));

    q.query = json_object();
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, vw_admin_query_arg,
                              &q);

    if (q.bad) {
        json_decref(q.query);
        return vw_admin_error(c, rq, 400, "invalid_request", q.name,
                              "a query argument is malformed or given twice",
                              NULL);
    }

    if (rq->route->flags & (VW_ROUTE_PICTURE | VW_ROUTE_LINK)) {
        rc = (rq->route->flags & VW_ROUTE_LINK)
             ? vw_admin_link(ad, c, rq, q.query)
             : vw_admin_picture(c, rq, q.query);
        json_decref(q.query);
        return rc;
    }

    in.query = q.query;
    in.id = strstr(rq->route->path, "{}") ? rq->id : NULL;
    in.strict = 1;

    memset(&op, 0, sizeof(vw_op_t));
    op.who = rq->who;

    if (rq->store == NULL || (ad->cf.nstores
                              && (rq->route->flags & VW_ROUTE_METRICS)))
    {
        /* /metrics of several stores: each store's process publishes */
        json_decref(q.query);
        return vw_admin_metrics(ad, c, rq, &op);
    }

    op.cf = rq->store->cf;
    op.key = rq->store->have_key ? rq->store->key : NULL;
    /* reads (GET) on a replica that qualifies, writes on the master */
    read = strcmp(rq->route->method, "GET") == 0
           && !(rq->route->flags & VW_ROUTE_METRICS);
    op.redis = read ? vw_admin_redis_read(ad, rq->store)
                    : vw_admin_redis(ad, rq->store);

    if (rq->route->flags & VW_ROUTE_STREAM) {
        json_decref(q.query);
        return vw_admin_output(ad, c, rq, &op);
    }

    if (rq->route->flags & VW_ROUTE_METRICS) {
        json_decref(q.query);
        return vw_admin_metrics(ad, c, rq, &op);
    }

    if (rq->route->flags & VW_ROUTE_RAW) {
        ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                         "Content-Type");
        type = vw_admin_file_type(ct);

        if (rq->body.len > 0 && type == 0) {
            json_decref(q.query);
            return vw_admin_error(c, rq, 415, "unsupported_media_type", NULL,
                                  "send the file as text/csv, or JSON lines "
                                  "as application/x-ndjson", NULL);
        }

        /* JSON lines say so by their type */
        if (type == 2 && json_object_get(q.query, "format") == NULL
            && strcmp(rq->route->path, "/v1/jobs/members/import") == 0)
        {
            json_object_set_new(q.query, "format", json_string("jsonl"));
        }

        in.data = rq->body.data;
        in.len = rq->body.len;
        in.body = json_object();

        goto run;
    }

    if (rq->body.len > 0) {
        ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                         "Content-Type");

        if (!vw_admin_json_type(ct)) {
            json_decref(q.query);
            return vw_admin_error(c, rq, 415, "unsupported_media_type", NULL,
                                  "send Content-Type: application/json",
                                  NULL);
        }
    }

    if (vw_admin_parse_body(rq->body.data, rq->body.len, &in.body, &e) != 0)
    {
        json_decref(q.query);
        return vw_admin_error(c, rq, e.status, e.reason, e.field, e.message,
                              NULL);
    }

run:

    out = NULL;
    status = rq->route->handler(&op, &in, &out, &e);

    /*
     * A read the replica could not answer (it went away, or the handler
     * writes after all: READONLY) runs again on the master.
     */
    if (status < 0 && e.status == 503 && read
        && (op.redis = vw_admin_redis_failed(ad, rq->store, op.redis))
           != NULL)
    {
        json_decref(out);
        out = NULL;
        memset(&e, 0, sizeof(vw_operr_t));
        status = rq->route->handler(&op, &in, &out, &e);
    }

    json_decref(in.body);
    json_decref(in.query);

    vw_log_info("admin: %s%s%s%s %s %s %d%s%s",
                rq->store->name ? "store " : "",
                rq->store->name ? rq->store->name : "",
                rq->store->name ? ": " : "", rq->who, rq->route->method,
                rq->route->path, status < 0 ? e.status : status,
                status < 0 ? " " : "", status < 0 ? e.reason : "");

    if (status < 0) {
        return vw_admin_error(c, rq, e.status, e.reason, e.field, e.message,
                              NULL);
    }

    rq->answered = 1;

    return vw_admin_send(c, status, out ? out : json_object(), NULL);
}


/* "/metrics", or "/stores/{store}/metrics" */

static int
vw_admin_is_metrics(const char *url)
{
    if (strncmp(url, "/stores/", 8) == 0) {
        url += 8;
        url += strcspn(url, "/");
    }

    return strcmp(url, "/metrics") == 0;
}


/*
 * The store of a request: the prefix "/stores/{store}" names it when the
 * configuration has stores, and the rest is routed as it is ("/v1/...",
 * "/metrics"): every route, whoever added it, is there for every store,
 * and a client of one store takes http://host/stores/{store} as its base.
 * "/metrics" alone is all the stores'.  Without stores there is one, and
 * no prefix.  0, or 1 (a store needed), 404 (no such store), 403 (the
 * token is not for it).
 */

static int
vw_admin_store(vw_admin_t *ad, vw_token_t *tok, const char **url,
    vw_req_t *rq)
{
    int          i;
    size_t       n;
    const char  *p, *name;
    char         want[72];

    if (strncmp(*url, "/stores/", 8) != 0) {
        if (ad->cf.nstores == 0) {
            rq->store = &ad->stores[0];
            return 0;
        }

        if (strcmp(*url, "/metrics") == 0) {
            rq->store = NULL;
            return (tok && tok->stores) ? 403 : 0;
        }

        return 1;
    }

    name = *url + 8;
    n = strcspn(name, "/");
    p = name + n;

    if (ad->cf.nstores == 0 || n == 0 || n > 64 || *p != '/') {
        return 404;
    }

    for (i = 0; i < ad->nstores; i++) {
        if (strlen(ad->stores[i].name) == n
            && strncmp(ad->stores[i].name, name, n) == 0)
        {
            break;
        }
    }

    if (i == ad->nstores) {
        return 404;
    }

    snprintf(want, sizeof(want), ",%.*s,", (int) n, name);

    if (tok && tok->stores && strstr(tok->stores, want) == NULL) {
        return 403;
    }

    if (tok == NULL && strcmp(p, "/metrics") != 0) {
        /* the metrics token: /metrics only */
        return 403;
    }

    rq->store = &ad->stores[i];
    *url = p;

    return 0;
}


static enum MHD_Result
vw_admin_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
    int           rc;
    char          allow[64];
    size_t        n;
    int64_t       len;
    vw_req_t     *rq;
    vw_admin_t   *ad;
    vw_token_t   *tok;
    const char   *name, *cl, *auth;

    (void) version;

    ad = cls;
    rq = *con_cls;

    if (rq == NULL) {
        rq = vw_xalloc(sizeof(vw_req_t));
        memset(rq, 0, sizeof(vw_req_t));
        *con_cls = rq;

        auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                           "Authorization");
        tok = vw_admin_auth(ad, auth);
        name = tok ? tok->name : NULL;

        /* the scraper's token opens /metrics and nothing else */
        if (name == NULL && vw_admin_is_metrics(url)
            && vw_admin_metrics_auth(ad, auth))
        {
            name = "metrics";
        }

        /* a signed link is its own credential (admin.qr_link) */
        if (name == NULL && strcmp(url, "/qr") == 0
            && ad->cf.admin_qr_link != NULL)
        {
            name = "link";
        }

        if (name == NULL) {
            return vw_admin_error(c, rq, 401, "unauthorized", NULL,
                                  "a valid bearer token is required", NULL);
        }

        snprintf(rq->who, sizeof(rq->who), "token:%s", name);

        /* the store, from the path's prefix: the rest is routed as it is */
        rc = vw_admin_store(ad, tok, &url, rq);

        if (rc != 0) {
            return rc == 403
                   ? vw_admin_error(c, rq, 403, "store_forbidden", NULL,
                                    "this token is not for this store", NULL)
                   : rc == 1
                   ? vw_admin_error(c, rq, 404, "store_required", NULL,
                                    "this voucherd serves several stores: "
                                    "/stores/{store}/v1/...", NULL)
                   : vw_admin_error(c, rq, 404, "unknown_store", NULL,
                                    "no such store in this voucherd", NULL);
        }

        rc = vw_admin_route(vw_routes, method, url, &rq->route, rq->id,
                            sizeof(rq->id), allow, sizeof(allow));

        if (rc == VW_ROUTE_NONE) {
            return vw_admin_error(c, rq, 404, "unknown_path", NULL,
                                  "no such path in this API", NULL);
        }

        if (rc == VW_ROUTE_METHOD) {
            return vw_admin_error(c, rq, 405, "method_not_allowed", NULL,
                                  "this path takes other methods", allow);
        }

        if (rc == VW_ROUTE_BAD) {
            return vw_admin_error(c, rq, 400, "invalid_request", NULL,
                                  "the path has a malformed escape or a "
                                  "control character", NULL);
        }

        rq->limit = (size_t) ((rq->route->flags & VW_ROUTE_RAW)
                              ? ad->cf.admin_max_import
                              : ad->cf.admin_max_body);

        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                         "Content-Length");

        if (cl && vw_parse_int(cl, 0, INT64_MAX, &len) == 0
            && (uint64_t) len > rq->limit)
        {
            return vw_admin_error(c, rq, 413, "body_too_large", NULL,
                                  "the body is larger than the API takes",
                                  NULL);
        }

        return MHD_YES;
    }

    if (rq->answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }

    n = *upload_data_size;

    if (n > 0) {
        if (rq->body.len + n > rq->limit) {
            rq->too_large = 1;
            vw_buf_free(&rq->body);

        } else if (!rq->too_large) {
            vw_buf_add(&rq->body, upload_data, n);
        }

        *upload_data_size = 0;
        return MHD_YES;
    }

    if (rq->too_large) {
        return vw_admin_error(c, rq, 413, "body_too_large", NULL,
                              "the body is larger than the API takes", NULL);
    }

    return vw_admin_run(ad, c, rq);
}


static void
vw_admin_done(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
    vw_req_t  *rq;

    (void) cls;
    (void) c;
    (void) toe;

    rq = *con_cls;

    if (rq) {
        vw_buf_free(&rq->body);
        free(rq);
        *con_cls = NULL;
    }
}


/* the path and the query are decoded by vw_admin_route, segment by segment */

static size_t
vw_admin_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void) cls;
    (void) c;

    return strlen(s);
}


static void
vw_admin_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char  line[512];

    (void) cls;

    vsnprintf(line, sizeof(line), fmt, ap);
    vw_log_warn("admin: libmicrohttpd: %s", line);
}


/* ---------------------------------------------------------------- start */


/* a listening socket: loopback host:port, [::1]:port, or unix:/path */

static int
vw_admin_listen(vw_admin_t *ad, const char *spec, char *err, size_t errlen)
{
    int                   fd, on, rc;
    char                  host[256], *colon, *end;
    const char           *port;
    struct stat           st;
    struct addrinfo       hints, *res;
    struct sockaddr_un    un;
    struct sockaddr_in   *in4;
    struct sockaddr_in6  *in6;

    if (strncmp(spec, "unix:", 5) == 0) {
        spec += 5;

        if (strlen(spec) == 0 || strlen(spec) >= sizeof(un.sun_path)) {
            snprintf(err, errlen, "admin.listen: a unix socket path of 1-%zu "
                     "bytes expected", sizeof(un.sun_path) - 1);
            return -1;
        }

        /* a socket left by a voucherd that died */
        if (lstat(spec, &st) == 0 && S_ISSOCK(st.st_mode)) {
            unlink(spec);
        }

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        memset(&un, 0, sizeof(un));
        un.sun_family = AF_UNIX;
        memcpy(un.sun_path, spec, strlen(spec));

        if (fd < 0 || bind(fd, (struct sockaddr *) &un, sizeof(un)) != 0
            || chmod(spec, 0660) != 0 || listen(fd, 128) != 0)
        {
            snprintf(err, errlen, "admin.listen \"unix:%s\": %s", spec,
                     strerror(errno));

            if (fd >= 0) {
                close(fd);
            }

            return -1;
        }

        ad->unix_path = vw_xstrdup(spec);

        return fd;
    }

    if (spec[0] == '[') {
        end = strchr(spec, ']');

        if (end == NULL || end[1] != ':') {
            goto bad;
        }

        snprintf(host, sizeof(host), "%.*s", (int) (end - spec - 1),
                 spec + 1);
        port = end + 2;

    } else {
        snprintf(host, sizeof(host), "%s", spec);
        colon = strrchr(host, ':');

        if (colon == NULL) {
            goto bad;
        }

        *colon = '\0';
        port = spec + (colon - host) + 1;
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;

    if (getaddrinfo(host, port, &hints, &res) != 0) {
        goto bad;
    }

    /* the API is for nginx on this host: loopback only */
    in4 = (struct sockaddr_in *) res->ai_addr;
    in6 = (struct sockaddr_in6 *) res->ai_addr;

    if (!((res->ai_family == AF_INET
           && (ntohl(in4->sin_addr.s_addr) >> 24) == 127)
          || (res->ai_family == AF_INET6
              && IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))))
    {
        freeaddrinfo(res);
        snprintf(err, errlen, "admin.listen \"%s\": not a loopback address "
                 "(127.0.0.0/8, ::1) or unix:PATH; put nginx in front for "
                 "other clients", spec);
        return -1;
    }

    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    on = 1;
    rc = fd < 0 ? -1 : 0;

    if (rc == 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        rc = bind(fd, res->ai_addr, res->ai_addrlen);
    }

    if (rc == 0) {
        rc = listen(fd, 128);
    }

    freeaddrinfo(res);

    if (rc != 0) {
        snprintf(err, errlen, "admin.listen \"%s\": %s", spec,
                 strerror(errno));

        if (fd >= 0) {
            close(fd);
        }

        return -1;
    }

    return fd;

bad:

    snprintf(err, errlen, "admin.listen \"%s\": expected HOST:PORT, "
             "[IPV6]:PORT or unix:PATH, numeric", spec);

    return -1;
}


/* the stores: the configuration itself, or each of its "stores" */

static int
vw_admin_stores(vw_admin_t *ad, const char *path, char *err, size_t errlen)
{
    int                i, n;
    vw_admin_store_t  *st;

    n = ad->cf.nstores ? ad->cf.nstores : 1;

    for (i = 0; i < n; i++) {
        st = &ad->stores[i];

        if (ad->cf.nstores == 0) {
            st->cf = &ad->cf;

        } else {
            if (vw_config_load_store(path, ad->cf.stores[i],
                                     &ad->store_cf[i], err, errlen)
                != 0)
            {
                return -1;
            }

            ad->nstores = i + 1;
            st->cf = &ad->store_cf[i];
            st->name = st->cf->store;
        }

        if (st->cf->key_file) {
            if (voucher_key_load(st->cf->key_file, st->key, err, errlen)
                != 0)
            {
                return -1;
            }

            st->have_key = 1;
        }
    }

    ad->nstores = n;

    return 0;
}


static void
vw_admin_free(vw_admin_t *ad)
{
    int     i;
    size_t  k;

    for (i = 0; ad->cf.nstores && i < ad->nstores; i++) {
        vw_config_free(&ad->store_cf[i]);
    }

    for (k = 0; k < ad->ntokens; k++) {
        free(ad->tokens[k].stores);
    }

    vw_config_free(&ad->cf);
    sodium_memzero(ad, sizeof(vw_admin_t));
    free(ad);
}


int
vw_admin_start(const char *path, vw_admin_t **out, char *err, size_t errlen)
{
    int          fd;
    sigset_t     set, old;
    vw_admin_t  *ad;

    *out = NULL;

    ad = vw_xalloc(sizeof(vw_admin_t));
    memset(ad, 0, sizeof(vw_admin_t));

    if (vw_config_load(path, &ad->cf, err, errlen) != 0) {
        free(ad);
        return -1;
    }

    if (ad->cf.admin_listen == NULL) {
        vw_config_free(&ad->cf);
        free(ad);
        return 0;
    }

    if (vw_admin_tokens(ad, ad->cf.admin_tokens_file, err, errlen) != 0
        || vw_admin_metrics_token(ad, err, errlen) != 0)
    {
        goto failed;
    }

    if (vw_admin_stores(ad, path, err, errlen) != 0) {
        goto failed;
    }

    fd = vw_admin_listen(ad, ad->cf.admin_listen, err, errlen);

    if (fd < 0) {
        goto failed;
    }

    pthread_key_create(&ad->tls, vw_admin_conns_free);

    /* the API's threads leave the signals to the loop's thread */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);

    ad->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD
                               | MHD_USE_ERROR_LOG,
                               0, NULL, NULL, vw_admin_request, ad,
                               MHD_OPTION_EXTERNAL_LOGGER, vw_admin_mhd_log,
                               ad,
                               MHD_OPTION_LISTEN_SOCKET, fd,
                               MHD_OPTION_THREAD_POOL_SIZE,
                               (unsigned) ad->cf.admin_threads,
                               MHD_OPTION_NOTIFY_COMPLETED, vw_admin_done, ad,
                               MHD_OPTION_UNESCAPE_CALLBACK,
                               vw_admin_unescape, ad,
                               MHD_OPTION_CONNECTION_TIMEOUT, 60u,
                               MHD_OPTION_CONNECTION_LIMIT, 256u,
                               MHD_OPTION_END);

    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (ad->mhd == NULL) {
        close(fd);
        pthread_key_delete(ad->tls);
        snprintf(err, errlen, "admin.listen \"%s\": libmicrohttpd did not "
                 "start", ad->cf.admin_listen);
        goto failed;
    }

    vw_log_info("admin API on %s, %zu token(s), %ld thread(s)",
                ad->cf.admin_listen, ad->ntokens, ad->cf.admin_threads);

    *out = ad;

    return 0;

failed:

    if (ad->unix_path) {
        unlink(ad->unix_path);
        free(ad->unix_path);
    }

    vw_admin_free(ad);

    return -1;
}


void
vw_admin_stop(vw_admin_t *ad)
{
    if (ad == NULL) {
        return;
    }

    MHD_stop_daemon(ad->mhd);
    pthread_key_delete(ad->tls);

    if (ad->unix_path) {
        unlink(ad->unix_path);
        free(ad->unix_path);
    }

    vw_admin_free(ad);
}
