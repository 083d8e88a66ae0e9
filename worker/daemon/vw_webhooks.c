
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherd's outgoing webhooks: see vw_webhooks.h.
 *
 * Tail: every source stream has the consumer group "webhooks", made at
 * "$" when this thread first meets it (events from then on).  A tick
 * reads new entries of all of them (XREADGROUP), and, every lease_s / 2,
 * takes over the entries another daemon read and never acknowledged
 * (XAUTOCLAIM, idle for lease_s).  Each entry becomes an event (or
 * nothing) and goes to voucher_webhook_fanout, which acknowledges it and
 * fills the outboxes in one call.
 *
 * Send: voucher_webhook_claim gives the next event of a subscription
 * that is due, held for lease_s; it is POSTed and the outcome recorded
 * (voucher_webhook_done): sent, retry after the back-off, or dead after
 * webhooks.attempts.  A daemon killed after the receiver took an event
 * but before recording it sends it again after the lease: the only
 * duplicate, with the same event id.
 */


#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "vw_channel.h"
#include "vw_clock.h"
#include "vw_config.h"
#include "vw_log.h"
#include "vw_map.h"
#include "vw_redis.h"
#include "vw_util.h"
#include "vw_webhooks.h"


#define VW_WH_GROUP   "webhooks"
#define VW_WH_BATCH   100


const char *const  vw_wh_sources[VW_WH_SOURCES] = {
    "log", "admin", "events", "deliveries"
};


struct vw_webhooks_s {
    vw_config_t             cf;
    pthread_t               tid;
    volatile sig_atomic_t   stop;
    char                    owner[128];
    CURL                   *curl;
    redisContext           *redis;
    vw_map_t                groups;     /* streams with the group made */
    int64_t                 claimed_at; /* the last XAUTOCLAIM, ms */
};


static pthread_mutex_t      vw_wh_lock = PTHREAD_MUTEX_INITIALIZER;
static vw_webhooks_stats_t  vw_wh_count;


void
vw_webhooks_stats(vw_webhooks_stats_t *st)
{
    pthread_mutex_lock(&vw_wh_lock);
    *st = vw_wh_count;
    pthread_mutex_unlock(&vw_wh_lock);
}


static void
vw_wh_add(int64_t *counter, int64_t n)
{
    pthread_mutex_lock(&vw_wh_lock);
    *counter += n;
    pthread_mutex_unlock(&vw_wh_lock);
}


static int64_t
vw_mono_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
vw_wh_nap(vw_webhooks_t *wh, long ms)
{
    struct timespec  ts;

    while (ms > 0 && !wh->stop) {
        ts.tv_sec = 0;
        ts.tv_nsec = (ms < 50 ? ms : 50) * 1000000L;
        nanosleep(&ts, NULL);
        ms -= 50;
    }
}


/* ------------------------------------------------------------ events */


static const char *
vw_wh_field(const redisReply *f, const char *name)
{
    size_t  i;

    for (i = 0; i + 1 < f->elements; i += 2) {
        if (f->element[i]->type == REDIS_REPLY_STRING
            && strcmp(f->element[i]->str, name) == 0
            && f->element[i + 1]->type == REDIS_REPLY_STRING)
        {
            return f->element[i + 1]->str;
        }
    }

    return NULL;
}


/* the fields of an entry into data: integers as integers, "" left out */

static void
vw_wh_fields(json_t *data, const redisReply *f, const char *const *skip)
{
    size_t               i;
    int64_t              n;
    const char          *k, *v;
    const char *const   *s;

    for (i = 0; i + 1 < f->elements; i += 2) {
        k = vw_reply_str(f->element[i]);
        v = vw_reply_str(f->element[i + 1]);

        if (k == NULL || v == NULL || v[0] == '\0') {
            continue;
        }

        for (s = skip; s && *s; s++) {
            if (strcmp(*s, k) == 0) {
                break;
            }
        }

        if (s && *s) {
            continue;
        }

        if (strcmp(k, "idem") != 0 && strcmp(k, "ref") != 0
            && strcmp(k, "code") != 0 && strcmp(k, "member") != 0
            && strcmp(k, "customer") != 0 && strcmp(k, "order_id") != 0
            && strcmp(k, "run") != 0
            && vw_parse_int(v, INT64_MIN, INT64_MAX, &n) == 0)
        {
            json_object_set_new(data, k, json_integer(n));

        } else {
            json_object_set_new(data, k, json_string(v));
        }
    }
}


/* an entry of {NS}:log: its type, data filled */

static const char *
vw_wh_log(const redisReply *f, json_t *data)
{
    const char  *t, *ref;

    static const char *const  skip[] = { "type", "ref", NULL };

    t = vw_wh_field(f, "type");
    ref = vw_wh_field(f, "ref");

    if (t == NULL) {
        return "";
    }

    vw_wh_fields(data, f, skip);

    if (strcmp(t, "redeem") == 0) {
        json_object_set_new(data, "held", json_boolean(ref
                                                       && strcmp(ref, "hold")
                                                          == 0));
        return "redeemed";
    }

    if (strcmp(t, "credit") == 0 || strcmp(t, "debit") == 0) {
        json_object_set_new(data, "op", json_string(t));

        if (ref && ref[0]) {
            json_object_set_new(data, "note", json_string(ref));
        }

        return "balance_changed";
    }

    /* the others name the redemption they settle in ref */
    if (ref && ref[0]) {
        json_object_set_new(data, "redemption", json_string(ref));
    }

    if (strcmp(t, "rollback") == 0) {
        return "rolled_back";
    }

    if (strcmp(t, "confirm") == 0) {
        return "reservation_confirmed";
    }

    if (strcmp(t, "release") == 0 || strcmp(t, "expire") == 0) {
        json_object_set_new(data, "expired",
                            json_boolean(strcmp(t, "expire") == 0));
        return "reservation_released";
    }

    return "";
}


/* an entry of {NS}:admin: a code made, or a job that issued or imported */

static const char *
vw_wh_admin(const redisReply *f, json_t *data)
{
    json_t      *after, *p;
    const char  *op, *kind;

    op = vw_wh_field(f, "op");
    after = json_loads(vw_wh_field(f, "after") ? vw_wh_field(f, "after")
                                               : "null", 0, NULL);

    if (op == NULL || !json_is_object(after)) {
        json_decref(after);
        return "";
    }

    if (strcmp(op, "code.create") == 0) {
        json_object_update(data, after);
        json_object_set_new(data, "count", json_integer(1));
        json_object_set_new(data, "by", json_string(vw_wh_field(f, "who")
                                                    ? vw_wh_field(f, "who")
                                                    : ""));
        json_decref(after);
        return "code_issued";
    }

    kind = json_string_value(json_object_get(after, "kind"));

    if (strcmp(op, "job.end") == 0 && kind
        && (strcmp(kind, "codes.issue") == 0
            || strcmp(kind, "codes.import") == 0)
        && json_integer_value(json_object_get(after, "done")) > 0)
    {
        p = json_object_get(after, "params");
        json_object_set_new(data, "job",
                            json_string(vw_wh_field(f, "target")));
        json_object_set_new(data, "kind", json_string(kind));
        json_object_set(data, "state", json_object_get(after, "state"));

        if (json_object_get(p, "campaign")) {
            json_object_set(data, "campaign", json_object_get(p, "campaign"));
        }

        json_object_set(data, "count", json_object_get(after, "done"));
        json_object_set_new(data, "by", json_string(vw_wh_field(f, "who")
                                                    ? vw_wh_field(f, "who")
                                                    : ""));
        json_decref(after);
        return "code_issued";
    }

    json_decref(after);

    return "";
}


/* a notice of the loyalty programme in {NS}:events */

static const char *
vw_wh_notice(const redisReply *f, json_t *data)
{
    const char  *t;

    static const char *const  skip[] = { "type", NULL };
    static const char *const  same[] = {
        "points_earned", "points_spent", "points_expiring",
        "reward_redeemed", "referral_converted", NULL
    };
    const char *const        *s;

    t = vw_wh_field(f, "type");

    if (t == NULL) {
        return "";
    }

    if (strcmp(t, "tier_upgraded") == 0 || strcmp(t, "tier_downgraded") == 0)
    {
        vw_wh_fields(data, f, skip);
        json_object_set_new(data, "direction",
                            json_string(t[5] == 'u' ? "up" : "down"));
        return "tier_changed";
    }

    for (s = same; *s; s++) {
        if (strcmp(*s, t) == 0) {
            vw_wh_fields(data, f, skip);
            return *s;
        }
    }

    /* the storefront's events are not webhooks */
    return "";
}


static const char *
vw_wh_delivery(const redisReply *f, const char *campaign, json_t *data)
{
    const char  *st;

    static const char *const  skip[] = { "status", NULL };

    st = vw_wh_field(f, "status");

    if (st == NULL || (strcmp(st, "sent") != 0 && strcmp(st, "dead") != 0)) {
        return "";
    }

    json_object_set_new(data, "campaign", json_string(campaign));
    vw_wh_fields(data, f, skip);

    return st[0] == 's' ? "delivery_sent" : "delivery_failed";
}


/* the ms of a stream id */

static int64_t
vw_wh_ms(const char *id)
{
    int64_t  ms;
    char     buf[32];

    snprintf(buf, sizeof(buf), "%.*s", (int) strcspn(id, "-"), id);

    return vw_parse_int(buf, 0, INT64_MAX, &ms) == 0 ? ms : 0;
}


/*
 * The entries of one stream into one voucher_webhook_fanout call.
 * source: 0 log, 1 admin, 2 events, 3 a delivery log (of campaign).
 */

static int
vw_wh_fanout(vw_webhooks_t *wh, const char *stream, int source,
    const char *campaign, const redisReply *entries)
{
    char        *set, *s, ev[256], err[512];
    size_t       i;
    json_t      *body, *data;
    vw_args_t    a;
    redisReply  *e, *r;
    const char  *type;

    if (entries->elements == 0) {
        return 0;
    }

    memset(&a, 0, sizeof(vw_args_t));
    set = vw_key(&wh->cf, "whs");
    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_webhook_fanout");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, set);
    vw_args_adds(&a, stream);
    vw_args_adds(&a, VW_WH_GROUP);
    free(set);

    for (i = 0; i < entries->elements; i++) {
        e = entries->element[i];

        /* an entry trimmed away meanwhile: [id, nil] */
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
            || e->element[0]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        data = json_object();
        type = "";

        if (e->element[1]->type == REDIS_REPLY_ARRAY) {
            type = source == 0 ? vw_wh_log(e->element[1], data)
                   : source == 1 ? vw_wh_admin(e->element[1], data)
                   : source == 2 ? vw_wh_notice(e->element[1], data)
                   : vw_wh_delivery(e->element[1], campaign, data);
        }

        if (source == 3) {
            snprintf(ev, sizeof(ev), "dl:%s:%s", campaign,
                     e->element[0]->str);

        } else {
            snprintf(ev, sizeof(ev), "%s:%s", vw_wh_sources[source],
                     e->element[0]->str);
        }

        body = json_pack("{s:s,s:s,s:I,s:o}", "id", ev, "type", type,
                         "created_at",
                         (json_int_t) vw_wh_ms(e->element[0]->str),
                         "data", data);
        s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(body);

        vw_args_adds(&a, e->element[0]->str);
        vw_args_adds(&a, ev);
        vw_args_adds(&a, type);
        vw_args_adds(&a, type[0] && s ? s : "");
        free(s);
    }

    r = vw_redis_run(wh->redis, &a, err, sizeof(err));
    vw_args_free(&a);

    if (vw_redis_failed(wh->redis, r, err, sizeof(err))) {
        vw_log_error("webhooks: fanout of %s: %s", stream, err);

        if (r) {
            freeReplyObject(r);
        }

        return -1;
    }

    vw_wh_add(&vw_wh_count.consumed[source], (int64_t) entries->elements);
    vw_wh_add(&vw_wh_count.fanned, r->integer);
    freeReplyObject(r);

    return (int) entries->elements;
}


/* the group on a stream, made once ("$": from now on) */

static int
vw_wh_group(vw_webhooks_t *wh, const char *stream)
{
    void       **slot;
    redisReply  *r;

    slot = vw_map_slot(&wh->groups, stream);

    if (*slot) {
        return 0;
    }

    r = redisCommand(wh->redis, "XGROUP CREATE %s " VW_WH_GROUP " $ MKSTREAM",
                     stream);

    if (r == NULL) {
        return -1;
    }

    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
    {
        vw_log_error("webhooks: XGROUP CREATE %s: %s", stream, r->str);
        freeReplyObject(r);
        return -1;
    }

    freeReplyObject(r);
    *slot = wh;

    return 0;
}


/* the source streams: the three fixed ones, then the delivery logs */

typedef struct {
    char       **keys;
    char       **camps;
    int         *source;
    size_t       n;
} vw_wh_streams_t;


static void
vw_wh_streams_free(vw_wh_streams_t *st)
{
    size_t  i;

    for (i = 0; i < st->n; i++) {
        free(st->keys[i]);
        free(st->camps[i]);
    }

    free(st->keys);
    free(st->camps);
    free(st->source);
}


static int
vw_wh_streams(vw_webhooks_t *wh, vw_wh_streams_t *st)
{
    char        *key;
    size_t       i, n;
    redisReply  *r;

    static const char *const  fixed[] = { "log", "admin", "events" };

    memset(st, 0, sizeof(vw_wh_streams_t));

    key = vw_key(&wh->cf, "autos");
    r = redisCommand(wh->redis, "SMEMBERS %s", key);
    free(key);

    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r) {
            freeReplyObject(r);
        }

        return -1;
    }

    n = 3 + r->elements;
    st->keys = vw_xalloc(n * sizeof(char *));
    st->camps = vw_xalloc(n * sizeof(char *));
    st->source = vw_xalloc(n * sizeof(int));

    for (i = 0; i < n; i++) {
        st->source[i] = i < 3 ? (int) i : 3;
        st->camps[i] = i < 3 ? NULL : vw_xstrdup(r->element[i - 3]->str);
        st->keys[i] = i < 3 ? vw_key(&wh->cf, "%s", fixed[i])
                            : vw_key(&wh->cf, "dl:%s", st->camps[i]);
        st->n++;

        if (vw_wh_group(wh, st->keys[i]) != 0) {
            freeReplyObject(r);
            return -1;
        }
    }

    freeReplyObject(r);

    return 0;
}


/* entries others read and left: idle for lease_s */

static int
vw_wh_reclaim(vw_webhooks_t *wh, vw_wh_streams_t *st)
{
    int          n, k;
    size_t       i;
    redisReply  *r;

    n = 0;

    for (i = 0; i < st->n; i++) {
        r = redisCommand(wh->redis, "XAUTOCLAIM %s " VW_WH_GROUP " %s %lld "
                         "0-0 COUNT %d", st->keys[i], wh->owner,
                         (long long) wh->cf.lease_s * 1000, VW_WH_BATCH);

        if (r == NULL) {
            return -1;
        }

        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2
            && r->element[1]->type == REDIS_REPLY_ARRAY)
        {
            k = vw_wh_fanout(wh, st->keys[i], st->source[i], st->camps[i],
                             r->element[1]);

            if (k < 0) {
                freeReplyObject(r);
                return -1;
            }

            n += k;
        }

        freeReplyObject(r);
    }

    return n;
}


static int
vw_wh_tail(vw_webhooks_t *wh)
{
    int              n, k;
    char             err[512];
    size_t           i, j;
    int64_t          now;
    vw_args_t        a;
    redisReply      *r, *s;
    vw_wh_streams_t  st;

    if (vw_wh_streams(wh, &st) != 0) {
        vw_wh_streams_free(&st);
        return -1;
    }

    n = 0;
    now = vw_mono_ms();

    if (now - wh->claimed_at >= wh->cf.lease_s * 500) {
        wh->claimed_at = now;
        n = vw_wh_reclaim(wh, &st);

        if (n < 0) {
            vw_wh_streams_free(&st);
            return -1;
        }
    }

    memset(&a, 0, sizeof(vw_args_t));
    vw_args_adds(&a, "XREADGROUP");
    vw_args_adds(&a, "GROUP");
    vw_args_adds(&a, VW_WH_GROUP);
    vw_args_adds(&a, wh->owner);
    vw_args_adds(&a, "COUNT");
    vw_args_addi(&a, VW_WH_BATCH);
    vw_args_adds(&a, "STREAMS");

    for (i = 0; i < st.n; i++) {
        vw_args_adds(&a, st.keys[i]);
    }

    for (i = 0; i < st.n; i++) {
        vw_args_adds(&a, ">");
    }

    r = vw_redis_run(wh->redis, &a, err, sizeof(err));
    vw_args_free(&a);

    if (vw_redis_failed(wh->redis, r, err, sizeof(err))) {
        vw_log_error("webhooks: XREADGROUP: %s", err);

        if (r) {
            freeReplyObject(r);
        }

        vw_wh_streams_free(&st);
        return -1;
    }

    /* [[stream, entries]...], nil when nothing is new */
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        s = r->element[i];

        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2) {
            continue;
        }

        for (j = 0; j < st.n; j++) {
            if (strcmp(st.keys[j], s->element[0]->str) == 0) {
                break;
            }
        }

        if (j == st.n) {
            continue;
        }

        k = vw_wh_fanout(wh, st.keys[j], st.source[j], st.camps[j],
                         s->element[1]);

        if (k < 0) {
            n = -1;
            break;
        }

        n += k;
    }

    freeReplyObject(r);
    vw_wh_streams_free(&st);

    return n;
}


/* -------------------------------------------------------------- send */


static int
vw_wh_send_one(vw_webhooks_t *wh)
{
    int            rc, ok;
    char          *key, err[512], name[80];
    int64_t        attempt, due, back;
    vw_args_t      a;
    redisReply    *r, *d;
    vw_channel_t   ch;
    const char    *id, *outcome;

    key = vw_key(&wh->cf, "whq");
    r = redisCommand(wh->redis, "FCALL voucher_webhook_claim 1 %s %s %lld",
                     key, wh->owner, (long long) wh->cf.lease_s * 1000);
    free(key);

    if (vw_redis_failed(wh->redis, r, err, sizeof(err))) {
        vw_log_error("webhooks: claim: %s", err);

        if (r) {
            freeReplyObject(r);
        }

        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 8) {
        freeReplyObject(r);
        return 0;
    }

    id = r->element[0]->str;
    vw_reply_int(r->element[7], &attempt);

    memset(&ch, 0, sizeof(vw_channel_t));
    snprintf(name, sizeof(name), "webhook %s", id);
    ch.name = name;
    ch.type = VW_CHANNEL_WEBHOOK;
    ch.url = r->element[1]->str;
    ch.secret = r->element[2]->str;
    ch.timeout_ms = wh->cf.wh_timeout_ms;
    ch.connect_timeout_ms = wh->cf.wh_connect_timeout_ms;

    err[0] = '\0';
    rc = vw_webhook_post(wh->curl, &ch, r->element[4]->str,
                         r->element[5]->str, r->element[6]->str, vw_now(),
                         err, sizeof(err));

    due = 0;

    if (rc == VW_SEND_OK) {
        outcome = "sent";

    } else if (rc == VW_SEND_RETRY && attempt < wh->cf.wh_attempts) {
        outcome = "retry";

        for (back = wh->cf.wh_backoff_ms, ok = 1; ok < attempt
             && back < wh->cf.wh_backoff_max_ms; ok++)
        {
            back *= 2;
        }

        if (back > wh->cf.wh_backoff_max_ms) {
            back = wh->cf.wh_backoff_max_ms;
        }

        /* Redis' clock decides when it is due */
        due = back;

    } else {
        outcome = "dead";
    }

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(&wh->cf, "wh:%s", id);
    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_webhook_done");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, wh->owner);
    vw_args_adds(&a, r->element[3]->str);
    vw_args_adds(&a, outcome);
    vw_args_addi(&a, due);
    vw_args_adds(&a, err);
    free(key);

    d = vw_redis_run(wh->redis, &a, err, sizeof(err));
    vw_args_free(&a);

    if (vw_redis_failed(wh->redis, d, err, sizeof(err))) {
        vw_log_error("webhooks: %s: the outcome was not recorded: %s", id,
                     err);

        if (d) {
            freeReplyObject(d);
        }

        freeReplyObject(r);
        return -1;
    }

    freeReplyObject(d);

    if (outcome[0] == 's') {
        vw_wh_add(&vw_wh_count.sent, 1);

    } else if (outcome[0] == 'r') {
        vw_wh_add(&vw_wh_count.retried, 1);
        vw_log_warn("webhooks: %s: event %s attempt %lld: %s; again later",
                    id, r->element[4]->str, (long long) attempt, err);

    } else {
        vw_wh_add(&vw_wh_count.dead, 1);
        vw_log_warn("webhooks: %s: event %s given up after %lld attempts: "
                    "%s", id, r->element[4]->str, (long long) attempt, err);
    }

    freeReplyObject(r);

    return 1;
}


static int
vw_wh_send(vw_webhooks_t *wh)
{
    int  n, k;

    for (n = 0; n < VW_WH_BATCH && !wh->stop; n++) {
        k = vw_wh_send_one(wh);

        if (k <= 0) {
            return k < 0 ? -1 : n;
        }
    }

    return n;
}


static void *
vw_wh_main(void *arg)
{
    int             n, m;
    char            err[512];
    vw_webhooks_t  *wh;

    wh = arg;

    while (!wh->stop) {
        if (wh->redis == NULL) {
            wh->redis = vw_redis_connect(&wh->cf, err, sizeof(err));

            if (wh->redis == NULL) {
                vw_wh_nap(wh, 1000);
                continue;
            }

            /* a Redis met again may have lost the groups */
            vw_map_free(&wh->groups);
            memset(&wh->groups, 0, sizeof(vw_map_t));
        }

        n = vw_wh_tail(wh);
        m = n < 0 ? -1 : vw_wh_send(wh);

        if (n < 0 || m < 0) {
            if (wh->redis->err) {
                redisFree(wh->redis);
                wh->redis = NULL;
            }

            vw_wh_nap(wh, 1000);
            continue;
        }

        if (n + m == 0) {
            vw_wh_nap(wh, wh->cf.poll_ms);
        }
    }

    if (wh->redis) {
        redisFree(wh->redis);
        wh->redis = NULL;
    }

    return NULL;
}


int
vw_webhooks_start(const char *path, vw_webhooks_t **out, char *err,
    size_t errlen)
{
    int             rc;
    sigset_t        set, old;
    vw_webhooks_t  *wh;

    *out = NULL;

    wh = vw_xalloc(sizeof(vw_webhooks_t));
    memset(wh, 0, sizeof(vw_webhooks_t));

    if (vw_config_load(path, &wh->cf, err, errlen) != 0) {
        free(wh);
        return -1;
    }

    wh->curl = curl_easy_init();

    if (wh->curl == NULL) {
        snprintf(err, errlen, "webhooks: curl did not start");
        vw_config_free(&wh->cf);
        free(wh);
        return -1;
    }

    snprintf(wh->owner, sizeof(wh->owner), "voucherd:%s", wh->cf.consumer);

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);

    rc = pthread_create(&wh->tid, NULL, vw_wh_main, wh);

    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (rc != 0) {
        snprintf(err, errlen, "the webhooks' thread: %s", strerror(rc));
        curl_easy_cleanup(wh->curl);
        vw_config_free(&wh->cf);
        free(wh);
        return -1;
    }

    *out = wh;

    return 0;
}


void
vw_webhooks_stop(vw_webhooks_t *wh)
{
    if (wh == NULL) {
        return;
    }

    wh->stop = 1;
    pthread_join(wh->tid, NULL);

    curl_easy_cleanup(wh->curl);
    vw_map_free(&wh->groups);
    vw_config_free(&wh->cf);
    free(wh);
}
