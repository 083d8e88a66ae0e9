
/*
 * Copyright (C) ngx_voucher authors
 *
 * Sending what is due.  voucher_delivery_claim hands this daemon one
 * delivery at a time, with a lease; it is rendered and sent on its
 * channel, and the outcome recorded (voucher_delivery_done): sent;
 * failed and due again after an exponential back-off; dead after the
 * last attempt or when the gateway refuses for good; skipped when the
 * member has no address for the channel.  On SIGTERM the delivery in
 * hand is finished and nothing more is claimed.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vw_channel.h"
#include "vw_clock.h"
#include "vw_daemon.h"
#include "vw_metrics.h"
#include "vw_log.h"
#include "vw_members.h"
#include "vw_redis.h"
#include "vw_schedule.h"
#include "vw_template.h"
#include "vw_util.h"


typedef struct {
    char        *item;
    char        *campaign;
    char        *run;
    char        *member;
    int64_t      attempt;
    char        *code;
    char        *channel;
} vw_claim_t;


vw_auto_t *
vw_daemon_auto(vw_daemon_t *d, const char *campaign)
{
    size_t  i;

    for (i = 0; i < d->nautos; i++) {
        if (strcmp(d->autos[i].campaign, campaign) == 0) {
            return &d->autos[i];
        }
    }

    return NULL;
}


static int64_t
vw_backoff_ms(const vw_config_t *cf, int64_t attempt)
{
    int64_t  ms;

    ms = cf->backoff_ms;

    while (--attempt > 0 && ms < cf->backoff_max_ms) {
        ms *= 2;
    }

    return ms < cf->backoff_max_ms ? ms : cf->backoff_max_ms;
}


static int
vw_done(vw_daemon_t *d, vw_claim_t *c, const char *outcome, int64_t due_ms,
    const char *err)
{
    int64_t      v;
    char        *key;
    vw_args_t    a;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(&d->cf, "queue");

    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_delivery_done");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, c->item);
    vw_args_adds(&a, d->cf.consumer);
    vw_args_adds(&a, outcome);
    vw_args_addi(&a, due_ms);
    vw_args_adds(&a, err ? err : "");

    free(key);

    r = vw_redis_run(d->redis, &a, d->err, sizeof(d->err));
    vw_args_free(&a);

    if (vw_redis_failed(d->redis, r, d->err, sizeof(d->err))) {
        if (r) {
            freeReplyObject(r);
        }

        return -1;
    }

    vw_metrics_delivery(c->channel, outcome);

    if (vw_reply_int(r, &v) == 0 && v == 0) {
        vw_log_warn("campaign %s: run %s: member %s: the lease ran out "
                    "before the outcome was recorded (raise lease_s above "
                    "the channel's timeout)", c->campaign, c->run, c->member);
    }

    freeReplyObject(r);

    return 0;
}


static void
vw_release(vw_daemon_t *d, vw_claim_t *c)
{
    char        *key;
    redisReply  *r;

    key = vw_key(&d->cf, "queue");
    r = redisCommand(d->redis, "FCALL voucher_delivery_release 1 %s %s %s "
                     "%lld", key, c->item, d->cf.consumer,
                     (long long) vw_now_ms());
    free(key);

    if (r) {
        freeReplyObject(r);
    }
}


/* the campaign's name, kind, value, currency, end and zone */

typedef struct {
    char        *name;
    char        *kind;
    int64_t      value;
    char        *currency;
    int64_t      ends_at;
    int          tz;
} vw_camp_t;


static void
vw_camp_free(vw_camp_t *k)
{
    free(k->name);
    free(k->kind);
    free(k->currency);
}


static int
vw_camp_load(vw_daemon_t *d, const char *campaign, const char *code,
    vw_camp_t *k)
{
    int64_t      v;
    char        *key, *ckey;
    redisReply  *r, *c;

    memset(k, 0, sizeof(vw_camp_t));
    k->ends_at = -1;

    key = vw_key(&d->cf, "k:%s", campaign);
    ckey = vw_key(&d->cf, "c:%s", code);
    redisAppendCommand(d->redis, "HMGET %s name kind value currency ends_at "
                       "tz_offset", key);
    redisAppendCommand(d->redis, "HMGET %s t b", ckey);
    free(key);
    free(ckey);

    r = vw_redis_get(d->redis, d->err, sizeof(d->err));
    c = r ? vw_redis_get(d->redis, d->err, sizeof(d->err)) : NULL;

    if (r == NULL || c == NULL || r->type != REDIS_REPLY_ARRAY
        || c->type != REDIS_REPLY_ARRAY)
    {
        if (r) {
            freeReplyObject(r);
        }

        if (c) {
            freeReplyObject(c);
        }

        return -1;
    }

    k->name = vw_reply_str(r->element[0]) ? vw_xstrdup(r->element[0]->str)
                                           : vw_xstrdup(campaign);
    k->kind = vw_reply_str(r->element[1]) ? vw_xstrdup(r->element[1]->str)
                                           : NULL;
    k->value = vw_reply_int(r->element[2], &v) == 0 ? v : 0;
    k->currency = vw_reply_str(r->element[3])
                  ? vw_xstrdup(r->element[3]->str) : NULL;
    k->ends_at = vw_reply_int(r->element[4], &v) == 0 ? v : -1;
    k->tz = vw_reply_int(r->element[5], &v) == 0 ? (int) v : 0;

    /* the code's own end wins; a gift card shows its balance */
    if (vw_reply_int(c->element[0], &v) == 0
        && (k->ends_at < 0 || v < k->ends_at))
    {
        k->ends_at = v;
    }

    if (k->kind && strcmp(k->kind, "gift_card") == 0
        && vw_reply_int(c->element[1], &v) == 0)
    {
        k->value = v;
    }

    freeReplyObject(r);
    freeReplyObject(c);

    return 0;
}


static int
vw_deliver_one(vw_daemon_t *d, vw_claim_t *c)
{
    int            rc, found;
    char          *message, *subject, id[512], shown[256], expires[32];
    char           discount[64], err[1024];
    int64_t        y, now_ms, due;
    vw_auto_t     *a;
    vw_camp_t      k;
    vw_member_t    m;
    vw_message_t   msg;
    vw_channel_t  *ch;
    const char    *outcome, *why;
    int            mo, dd;

    a = vw_daemon_auto(d, c->campaign);

    if (a == NULL) {
        return vw_done(d, c, "dead", 0, "the campaign has no automation any "
                       "more");
    }

    ch = vw_config_channel(&d->cf, c->channel);

    if (ch == NULL) {
        snprintf(err, sizeof(err), "channel %s is not in the configuration",
                 c->channel);
        goto failed;
    }

    found = vw_member_load(d->redis, &d->cf, c->member, &m, d->err,
                           sizeof(d->err));

    if (found < 0) {
        return -1;
    }

    if (found == 0) {
        return vw_done(d, c, "skipped", 0, "no such member");
    }

    if (vw_camp_load(d, c->campaign, c->code, &k) != 0) {
        vw_member_free(&m);
        return -1;
    }

    /* what people see: the code in its pattern, dates in local time */
    shown[0] = '\0';

    if (a->pattern) {
        voucher_code_display(c->code, strlen(c->code), a->pattern, shown,
                             sizeof(shown));
    }

    expires[0] = '\0';

    if (k.ends_at > 0) {
        vw_civil_from_days((k.ends_at + (int64_t) k.tz * 60) / 86400, &y,
                           &mo, &dd);
        snprintf(expires, sizeof(expires), "%04lld-%02d-%02d", (long long) y,
                 mo, dd);
    }

    vw_discount_text(k.kind, k.value, k.currency, discount,
                     sizeof(discount));

    {
        const vw_tvar_t  vars[] = {
            { "name", m.name ? m.name : "" },
            { "code", shown[0] ? shown : c->code },
            { "expires_at", expires },
            { "discount", discount },
            { "campaign", k.name },
            { "id", m.id },
        };

        message = vw_template_render(a->message, vars, 6);
        subject = a->subject ? vw_template_render(a->subject, vars, 6)
                             : NULL;
    }

    snprintf(id, sizeof(id), "%s:%s:%s", c->campaign, c->run, c->member);

    memset(&msg, 0, sizeof(vw_message_t));
    msg.id = id;
    msg.campaign = c->campaign;
    msg.run = c->run;
    msg.member = m.id;
    msg.name = m.name;
    msg.phone = m.phone;
    msg.email = m.email;
    msg.line = m.line;
    msg.code = shown[0] ? shown : c->code;
    msg.message = message;
    msg.subject = subject;
    msg.expires_at = expires[0] ? expires : NULL;
    msg.discount = discount;

    why = vw_channel_missing(ch, &msg);

    if (why != NULL) {
        rc = VW_SEND_FAIL;
        snprintf(err, sizeof(err), "%s", why);

    } else {
        rc = vw_channel_send(d->curl, ch, &msg, vw_now(), err, sizeof(err));
    }

    free(message);
    free(subject);
    vw_member_free(&m);
    vw_camp_free(&k);

    if (why != NULL) {
        vw_log_info("campaign %s: run %s: member %s: skipped: %s",
                    c->campaign, c->run, c->member, why);
        return vw_done(d, c, "skipped", 0, why);
    }

    if (rc == VW_SEND_OK) {
        vw_log_info("campaign %s: run %s: member %s: sent (%s, attempt "
                    "%lld)", c->campaign, c->run, c->member, c->channel,
                    (long long) c->attempt);
        return vw_done(d, c, "sent", 0, NULL);
    }

    if (rc == VW_SEND_FAIL) {
        vw_log_warn("campaign %s: run %s: member %s: refused, dead letter: "
                    "%s", c->campaign, c->run, c->member, err);
        return vw_done(d, c, "dead", 0, err);
    }

failed:

    now_ms = vw_now_ms();
    outcome = c->attempt < d->cf.attempts ? "retry" : "dead";
    due = now_ms + vw_backoff_ms(&d->cf, c->attempt);

    vw_log_warn("campaign %s: run %s: member %s: attempt %lld of %d failed"
                "%s: %s", c->campaign, c->run, c->member,
                (long long) c->attempt, d->cf.attempts,
                outcome[0] == 'd' ? ", dead letter" : "", err);

    return vw_done(d, c, outcome, due, err);
}


static void
vw_claims_free(vw_claim_t *c, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(c[i].item);
        free(c[i].campaign);
        free(c[i].run);
        free(c[i].member);
        free(c[i].code);
        free(c[i].channel);
    }

    free(c);
}


/*
 * One delivery at a time, up to "batch" per tick: a lease then covers
 * exactly the send in hand, however long the ones before it took.
 */

static int
vw_deliver_next(vw_daemon_t *d)
{
    int           rc;
    char         *key, *p, *q;
    size_t        i, n;
    vw_claim_t   *c;
    redisReply   *r, *e;

    key = vw_key(&d->cf, "queue");
    r = redisCommand(d->redis, "FCALL voucher_delivery_claim 1 %s %lld %lld "
                     "%s 1", key, (long long) vw_now_ms(),
                     (long long) d->cf.lease_s * 1000, d->cf.consumer);
    free(key);

    if (vw_redis_failed(d->redis, r, d->err, sizeof(d->err))
        || r->type != REDIS_REPLY_ARRAY)
    {
        if (r) {
            freeReplyObject(r);
        }

        return -1;
    }

    n = r->elements;
    c = vw_xalloc((n ? n : 1) * sizeof(vw_claim_t));

    for (i = 0; i < n; i++) {
        e = r->element[i];

        c[i].item = vw_xstrdup(e->element[0]->str);
        vw_reply_int(e->element[1], &c[i].attempt);
        c[i].code = vw_xstrdup(e->element[2]->str);
        c[i].channel = vw_xstrdup(e->element[3]->str);

        /* campaign TAB run TAB member */
        p = strchr(c[i].item, '\t');
        q = p ? strchr(p + 1, '\t') : NULL;

        if (q == NULL) {
            c[i].campaign = vw_xstrdup("");
            c[i].run = vw_xstrdup("");
            c[i].member = vw_xstrdup("");
            continue;
        }

        c[i].campaign = vw_xstrndup(c[i].item, (size_t) (p - c[i].item));
        c[i].run = vw_xstrndup(p + 1, (size_t) (q - p - 1));
        c[i].member = vw_xstrdup(q + 1);
    }

    freeReplyObject(r);

    rc = (int) n;

    for (i = 0; i < n; i++) {
        /* SIGTERM: the one in hand was finished; give the rest back */
        if (i > 0 && d->stop && *d->stop) {
            for ( /* void */ ; i < n; i++) {
                vw_release(d, &c[i]);
            }

            break;
        }

        if (vw_deliver_one(d, &c[i]) != 0) {
            rc = -1;
            break;
        }
    }

    vw_claims_free(c, n);

    return rc;
}


int
vw_deliver_tick(vw_daemon_t *d)
{
    int  i, n, done;

    done = 0;

    for (i = 0; i < d->cf.batch && !(d->stop && *d->stop); i++) {
        n = vw_deliver_next(d);

        if (n < 0) {
            return -1;
        }

        if (n == 0) {
            break;
        }

        done += n;
    }

    return done;
}
