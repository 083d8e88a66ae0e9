
/*
 * Copyright (C) ngx_voucher authors
 *
 * Sending what is due.  voucher_delivery_claim hands this daemon one
 * delivery at a time, with a lease; it is rendered and sent on its
 * channel, and the outcome recorded (voucher_delivery_done): sent;
 * failed and due again after an exponential back-off; dead after the
 * last attempt or when the gateway refuses for good; skipped when the
 * member has no address for the channel.  A unique code is made just
 * before the first attempt (voucher_delivery_code) and kept for the
 * retries; the library takes it back when the delivery ends dead.  On SIGTERM the delivery in
 * hand is finished and nothing more is claimed.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vw_channel.h"
#include "vw_clock.h"
#include "vw_daemon.h"
#include "vw_log.h"
#include "vw_members.h"
#include "vw_redis.h"
#include "vw_render.h"
#include "vw_util.h"


typedef struct {
    char        *item;
    char        *campaign;
    char        *run;
    char        *member;
    int64_t      attempt;
    char        *code;              /* "": made when sent */
    char        *channel;
    int64_t      unique;
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
    vw_args_addi(&a, vw_now());

    free(key);

    r = vw_redis_run(d->redis, &a, d->err, sizeof(d->err));
    vw_args_free(&a);

    if (vw_redis_failed(d->redis, r, d->err, sizeof(d->err))) {
        if (r) {
            freeReplyObject(r);
        }

        return -1;
    }

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


/*
 * The unique code of a claimed delivery, made now (voucher_delivery_code):
 * 1 made (or made at an earlier attempt; c->code has it), 0 the claim
 * was lost, -1 Redis failed, -2 no code can be made (d->err).
 */

static int
vw_mint(vw_daemon_t *d, vw_claim_t *c, vw_auto_t *a)
{
    int                tries;
    char              *key, code[VOUCHER_CODE_MAX_LEN + 1];
    vw_args_t          args;
    redisReply        *r;
    voucher_format_t   fmt;

    if (!d->have_key) {
        snprintf(d->err, sizeof(d->err), "campaign %s: unique codes need "
                 "key_file in the configuration", a->campaign);
        return -2;
    }

    fmt.charset = a->charset;
    fmt.charset_len = a->charset ? strlen(a->charset) : 0;
    fmt.suffix = a->suffix;
    fmt.suffix_len = a->suffix ? strlen(a->suffix) : 0;

    memset(&args, 0, sizeof(vw_args_t));
    key = vw_key(&d->cf, "queue");

    /* a random code that exists already is made again */
    for (tries = 0; tries < 10; tries++) {
        if (voucher_code_issue_ex(d->key, a->prefix, (size_t) a->length,
                                  (size_t) a->mac_length, &fmt, code,
                                  sizeof(code)) == 0)
        {
            snprintf(d->err, sizeof(d->err), "campaign %s: cannot make a "
                     "code", a->campaign);
            free(key);
            return -2;
        }

        vw_args_reset(&args);
        vw_args_adds(&args, "FCALL");
        vw_args_adds(&args, "voucher_delivery_code");
        vw_args_adds(&args, "1");
        vw_args_adds(&args, key);
        vw_args_adds(&args, c->item);
        vw_args_adds(&args, d->cf.consumer);
        vw_args_adds(&args, code);

        r = vw_redis_run(d->redis, &args, d->err, sizeof(d->err));

        if (vw_redis_failed(d->redis, r, d->err, sizeof(d->err))
            || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        {
            if (r) {
                freeReplyObject(r);
            }

            free(key);
            vw_args_free(&args);
            return -1;
        }

        if (strcmp(r->element[0]->str, "ok") == 0 && r->elements == 2) {
            free(c->code);
            c->code = vw_xstrdup(r->element[1]->str);
            freeReplyObject(r);
            break;
        }

        if (strcmp(r->element[0]->str, "lost") == 0) {
            freeReplyObject(r);
            tries = -1;
            break;
        }

        freeReplyObject(r);
    }

    free(key);
    vw_args_free(&args);

    if (tries == 10) {
        snprintf(d->err, sizeof(d->err), "campaign %s: codes keep colliding "
                 "(too short codes?)", a->campaign);
        return -2;
    }

    return tries < 0 ? 0 : 1;
}


/*
 * The loyalty fields of a message ({{points}}, {{tier}}, ...), when its
 * templates use them: the member's balance now, and, for a run a loyalty
 * notice triggered ("e<entry id>"), the notice's own values over it (a
 * tier_will_drop's expiry_date is the day the tier drops, its
 * points_to_next_tier what keeps it).  Fields of a member without a
 * programme stay empty.  -1 when Redis failed.
 */

#define VW_LOYALTY_N  6

static int
vw_deliver_loyalty(vw_daemon_t *d, vw_claim_t *c, vw_auto_t *a,
    char v[VW_LOYALTY_N][64])
{
    int          j;
    char        *key, id[64];
    size_t       i, k;
    redisReply  *r, *e, *f;

    for (j = 0; j < VW_LOYALTY_N; j++) {
        v[j][0] = '\0';
    }

    if (!vw_template_uses(a->message, vw_template_loyalty)
        && !vw_template_uses(a->subject, vw_template_loyalty))
    {
        return 0;
    }

    key = vw_key(&d->cf, "lm:%s", c->member);
    r = redisCommand(d->redis, "FCALL voucher_loyalty_balance 1 %s %lld",
                     key, (long long) vw_now());
    free(key);

    if (vw_redis_failed(d->redis, r, d->err, sizeof(d->err))) {
        if (r) {
            freeReplyObject(r);
            return 0;
        }

        return -1;
    }

    /* {ok, member, m, active, a, ...}: the names of the template differ */
    for (i = 1; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
         i += 2)
    {
        f = r->element[i];
        e = r->element[i + 1];

        for (j = 0; j < VW_LOYALTY_N; j++) {
            if (f->type == REDIS_REPLY_STRING
                && strcmp(f->str, j == 0 ? "active"
                                         : vw_template_loyalty[j]) == 0)
            {
                if (e->type == REDIS_REPLY_INTEGER) {
                    snprintf(v[j], 64, "%lld", (long long) e->integer);

                } else if (e->type == REDIS_REPLY_STRING) {
                    snprintf(v[j], 64, "%s", e->str);
                }
            }
        }
    }

    freeReplyObject(r);

    /* a run of a notice: "e" and its entry id in {NS}:events */
    if (c->run[0] != 'e' || strlen(c->run + 1) >= sizeof(id)
        || strspn(c->run + 1, "0123456789-") != strlen(c->run + 1)
        || c->run[1] == '\0')
    {
        return 0;
    }

    snprintf(id, sizeof(id), "%s", c->run + 1);
    key = vw_key(&d->cf, "events");
    r = redisCommand(d->redis, "XRANGE %s %s %s", key, id, id);
    free(key);

    if (vw_redis_failed(d->redis, r, d->err, sizeof(d->err))) {
        if (r) {
            freeReplyObject(r);
            return 0;
        }

        return -1;
    }

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1
        && r->element[0]->elements == 2
        && r->element[0]->element[1]->type == REDIS_REPLY_ARRAY)
    {
        f = r->element[0]->element[1];

        for (k = 0; k + 1 < f->elements; k += 2) {
            for (j = 0; j < VW_LOYALTY_N; j++) {
                if (f->element[k]->type == REDIS_REPLY_STRING
                    && f->element[k + 1]->type == REDIS_REPLY_STRING
                    && strcmp(f->element[k]->str, vw_template_loyalty[j])
                       == 0)
                {
                    snprintf(v[j], 64, "%s", f->element[k + 1]->str);
                }
            }
        }
    }

    freeReplyObject(r);

    return 0;
}


static int
vw_deliver_one(vw_daemon_t *d, vw_claim_t *c)
{
    int             rc, found;
    char            id[512], err[1024], lv[VW_LOYALTY_N][64];
    int64_t         now_ms, due;
    vw_auto_t      *a;
    vw_member_t     m;
    vw_message_t    msg;
    vw_channel_t   *ch;
    vw_rendered_t   rd;
    const char     *outcome, *why;

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

    memset(&msg, 0, sizeof(vw_message_t));
    msg.phone = m.e164;
    msg.email = m.email;
    msg.line = m.line;

    /* no address, no code: a skipped delivery leaves nothing behind */
    why = vw_channel_missing(ch, &msg);

    if (why == NULL && ch->type == VW_CHANNEL_SMS && m.e164 == NULL) {
        why = "the member has no valid phone number";
    }

    if (why != NULL) {
        if (ch->type == VW_CHANNEL_SMS && m.phone != NULL) {
            why = "the member's phone number is not valid (E.164, "
                  "phone.country)";
        }

        vw_log_info("campaign %s: run %s: member %s: skipped: %s",
                    c->campaign, c->run, c->member, why);
        vw_member_free(&m);
        return vw_done(d, c, "skipped", 0, why);
    }

    /* a unique code is made now, when it is about to be sent */
    if (c->unique && c->code[0] == '\0') {
        rc = vw_mint(d, c, a);

        if (rc <= 0) {
            vw_member_free(&m);

            if (rc == -2) {
                snprintf(err, sizeof(err), "%s", d->err);
                goto failed;
            }

            return rc;
        }
    }

    if (vw_deliver_loyalty(d, c, a, lv) != 0) {
        vw_member_free(&m);
        return -1;
    }

    {
        /* after the member's own: a member's tier comes from there */
        const vw_tvar_t  loyalty[] = {
            { "points", lv[0] },
            { "tier", lv[1] },
            { "points_to_next_tier", lv[2] },
            { "expiring_points", lv[3] },
            { "expiry_date", lv[4] },
            { "referral_code", lv[5] },
        };

        if (vw_render(d->redis, &d->cf, a, &m, c->code, vw_now(), loyalty,
                      VW_LOYALTY_N, &rd, d->err, sizeof(d->err))
            != 0)
        {
            vw_member_free(&m);
            return -1;
        }
    }

    snprintf(id, sizeof(id), "%s:%s:%s", c->campaign, c->run, c->member);

    msg.id = id;
    msg.campaign = c->campaign;
    msg.run = c->run;
    msg.member = m.id;
    msg.name = m.name;
    msg.code = rd.code;
    msg.message = rd.message;
    msg.subject = rd.subject;
    msg.expires_at = rd.expires_at[0] ? rd.expires_at : NULL;
    msg.discount = rd.discount;

    rc = vw_channel_send(d->curl, ch, &msg, vw_now(), err, sizeof(err));

    vw_rendered_free(&rd);
    vw_member_free(&m);

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
        c[i].unique = 0;

        if (e->elements >= 5) {
            vw_reply_int(e->element[4], &c[i].unique);
        }

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
