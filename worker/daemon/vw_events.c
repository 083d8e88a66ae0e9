
/*
 * Copyright (C) ngx_voucher authors
 *
 * Events from the storefront: the stream {NS}:events, read by the
 * consumer group "voucherd" (each daemon a consumer).  An entry is
 *
 *   type     signup | purchase | cart_abandoned | referral
 *   member   the member (customer) id
 *   id       optional: the storefront's own id of the event; an event
 *            appended again with the same id (a retry) triggers nothing
 *            new (default: the stream entry id)
 *   ts       when it happened, unix seconds (default: when read)
 *   amount   purchase: the order amount, minor units
 *   order    purchase: its order id, which earns loyalty points once
 *            (default: id, else the stream entry id)
 *   items    purchase: its items for the earning rules, one a line,
 *            "sku TAB category TAB price TAB quantity" (nginx's voucher_api
 *            event writes them so)
 *   currency purchase: the order's currency (kept, not used here)
 *   name phone email line birthday tier tags   signup: the member
 *   referral_code   signup, purchase: the code of the member who referred
 *            this new customer: paired once, before anything else of the
 *            event (docs/loyalty.md, Referrals)
 *
 * Any other type of [a-z][a-z0-9_]{0,39} is a storefront's custom event:
 * acknowledged, counted, no automation triggers on it.
 *
 * A signup makes or updates the member, a purchase updates its history
 * (once per event, voucher_member_purchase); then the automations
 * triggered by that type queue a delivery for the member, due after
 * their delay.  An entry is acknowledged after all that, so a daemon
 * killed in between leaves it pending; another daemon claims it when it
 * has been idle for lease_s, and the library makes the repeat harmless.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_clock.h"
#include "vw_daemon.h"
#include "vw_metrics.h"
#include "vw_log.h"
#include "vw_members.h"
#include "vw_op.h"
#include "vw_redis.h"
#include "vw_util.h"


#define VW_GROUP  "voucherd"


static const char *const  vw_signup_fields[] = {
    "name", "phone", "email", "line", "birthday", "tier", "tags", NULL
};


static const char *
vw_field(const redisReply *f, const char *name)
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


static int
vw_group_create(vw_daemon_t *d)
{
    char        *key;
    redisReply  *r;

    key = vw_key(&d->cf, "events");
    r = redisCommand(d->redis, "XGROUP CREATE %s " VW_GROUP " 0 MKSTREAM",
                     key);
    free(key);

    if (r == NULL) {
        snprintf(d->err, sizeof(d->err), "redis: %s", d->redis->errstr);
        return -1;
    }

    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
    {
        snprintf(d->err, sizeof(d->err), "events: %s", r->str);
        freeReplyObject(r);
        return -1;
    }

    freeReplyObject(r);
    d->group_ready = 1;

    return 0;
}


/* a signup: the member as the event describes it */

static int
vw_event_signup(vw_daemon_t *d, const char *id, const char *member,
    int64_t ts, const redisReply *f)
{
    int           i;
    char         *set;
    vw_args_t     a;
    vw_buf_t      cols;
    redisReply   *r;
    const char   *v;

    memset(&a, 0, sizeof(vw_args_t));
    memset(&cols, 0, sizeof(vw_buf_t));
    vw_buf_adds(&cols, "id,signup");

    for (i = 0; vw_signup_fields[i]; i++) {
        if (vw_field(f, vw_signup_fields[i])) {
            vw_buf_printf(&cols, ",%s", vw_signup_fields[i]);
        }
    }

    set = vw_key(&d->cf, "members");
    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_members_add");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, set);
    vw_args_adds(&a, "write");
    vw_args_adds(&a, cols.data);
    vw_args_adds(&a, member);
    vw_args_addi(&a, ts);

    for (i = 0; vw_signup_fields[i]; i++) {
        v = vw_field(f, vw_signup_fields[i]);

        if (v) {
            vw_args_adds(&a, v);
        }
    }

    free(set);
    vw_buf_free(&cols);

    r = vw_redis_run(d->redis, &a, d->err, sizeof(d->err));
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    /* bad member data is the storefront's error: say so, go on */
    if (r->type == REDIS_REPLY_ERROR) {
        vw_log_warn("event %s: signup of member %s refused: %s", id, member,
                    r->str);
    }

    freeReplyObject(r);

    return 0;
}


/*
 * A new customer who signs up or orders with a referral code: paired with
 * its referrer (voucher_referral_pair), the referee's reward at once.  A
 * refusal (a forged code, self-referral, already a member, ...) is the
 * storefront's business: logged, and the event goes on.
 */

static int
vw_event_refer(vw_daemon_t *d, const char *id, const char *member,
    int64_t ts, const char *code, const redisReply *f)
{
    char        *key;
    const char  *phone, *email;
    vw_args_t    a;
    redisReply  *r;

    if (d->have_key && !vw_op_referral_genuine(d->key, code)) {
        vw_log_warn("event %s: referral code of member %s refused: "
                    "referral_not_found (its MAC is wrong)", id, member);
        return 0;
    }

    phone = vw_field(f, "phone");
    email = vw_field(f, "email");

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(&d->cf, "lm:%s", member);

    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_referral_pair");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, code);
    vw_args_adds(&a, phone ? phone : "");
    vw_args_adds(&a, email ? email : "");
    vw_args_addi(&a, ts);

    free(key);

    r = vw_redis_run(d->redis, &a, d->err, sizeof(d->err));
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        vw_log_warn("event %s: referral of member %s refused: %s", id,
                    member, r->str);

    } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3
               && r->element[0]->type == REDIS_REPLY_STRING)
    {
        if (strcmp(r->element[0]->str, "ok") == 0) {
            vw_log_info("event %s: member %s referred by %s", id, member,
                        r->element[2]->type == REDIS_REPLY_STRING
                        ? r->element[2]->str : "?");

        } else {
            vw_log_warn("event %s: referral of member %s refused: %s", id,
                        member, r->element[0]->str);
        }
    }

    freeReplyObject(r);

    return 0;
}


static int vw_event_earn(vw_daemon_t *d, const char *id,
    const char *member, int64_t ts, int64_t amount, const char *order,
    const char *items);


/* order: the purchase's order id (its event id when it has none) */

static int
vw_event_purchase(vw_daemon_t *d, const char *id, const char *member,
    int64_t ts, const char *amount, const char *order, const char *items)
{
    char        *key;
    int64_t      n;
    vw_args_t    a;
    redisReply  *r;

    if (amount == NULL || vw_parse_int(amount, 0, INT64_C(9007199254740991),
                                       &n) != 0)
    {
        vw_log_warn("event %s: purchase without a valid amount: member %s "
                    "not updated", id, member);
        return 0;
    }

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(&d->cf, "m:%s", member);

    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_member_purchase");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, id);
    vw_args_addi(&a, ts);
    vw_args_addi(&a, n);

    free(key);

    r = vw_redis_run(d->redis, &a, d->err, sizeof(d->err));
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        vw_log_warn("event %s: purchase of member %s refused: %s", id,
                    member, r->str);
    }

    freeReplyObject(r);

    return vw_event_earn(d, id, member, ts, n, order, items);
}


/*
 * The purchase's loyalty points, through the function the gate's confirm
 * uses: one order, one accrual, whichever path reports it first.  Without
 * a programme, or for an order that earned already, nothing happens.
 */

static int
vw_event_earn(vw_daemon_t *d, const char *id, const char *member,
    int64_t ts, int64_t amount, const char *order, const char *items)
{
    int          k;
    char        *key, *list, *line, *next, *tab[4];
    size_t       nitems;
    vw_args_t    a;
    redisReply  *r;

    memset(&a, 0, sizeof(vw_args_t));
    key = vw_key(&d->cf, "lm:%s", member);

    vw_args_adds(&a, "FCALL");
    vw_args_adds(&a, "voucher_loyalty_earn");
    vw_args_adds(&a, "1");
    vw_args_adds(&a, key);
    vw_args_adds(&a, order);
    vw_args_addi(&a, amount);

    /* the count first, the items after: a malformed line drops them all */
    nitems = 0;
    list = (items != NULL && items[0] != '\0') ? vw_xstrdup(items) : NULL;

    for (line = list; line != NULL; line = next) {
        next = strchr(line, '\n');

        if (next) {
            *next++ = '\0';
        }

        tab[0] = line;

        for (k = 1; k < 4; k++) {
            tab[k] = tab[k - 1] ? strchr(tab[k - 1], '\t') : NULL;

            if (tab[k]) {
                *tab[k]++ = '\0';
            }
        }

        if (tab[3] == NULL || strchr(tab[3], '\t') != NULL) {
            vw_log_warn("event %s: malformed items: the order earns on "
                        "its amount", id);
            nitems = 0;
            break;
        }

        nitems++;
    }

    vw_args_addi(&a, (int64_t) nitems);

    for (line = list; nitems > 0 && line != NULL; ) {
        /* the line and its three fields, NUL-separated now */
        for (k = 0; k < 4; k++) {
            vw_args_adds(&a, line);
            line += strlen(line) + 1;
        }

        if (--nitems == 0) {
            break;
        }
    }

    free(list);

    vw_args_addi(&a, ts);

    free(key);

    r = vw_redis_run(d->redis, &a, d->err, sizeof(d->err));
    vw_args_free(&a);

    if (r == NULL) {
        return -1;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        vw_log_warn("event %s: points of member %s refused: %s", id, member,
                    r->str);

    } else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 5
               && r->element[0]->type == REDIS_REPLY_STRING
               && strcmp(r->element[0]->str, "ok") == 0
               && r->element[4]->type == REDIS_REPLY_INTEGER)
    {
        vw_log_info("event %s: member %s earned %lld point(s) for order %s",
                    id, member, (long long) r->element[4]->integer, order);
    }

    freeReplyObject(r);

    return 0;
}


static int
vw_event_triggers(vw_daemon_t *d, const char *id, const char *eid,
    const char *type, char *member, int64_t ts)
{
    int           found;
    char          run[80];
    size_t        i, k, idx;
    int64_t       q;
    vw_auto_t    *a;
    vw_member_t   m;

    for (i = 0; i < d->nautos; i++) {
        a = &d->autos[i];

        if (a->trigger == NULL || !a->active
            || strcmp(a->trigger, type) != 0)
        {
            continue;
        }

        /* the member must be in the automation's segment */
        found = vw_member_load(d->redis, &d->cf, member, &m, d->err,
                               sizeof(d->err));

        if (found < 0) {
            return -1;
        }

        if (found == 0) {
            vw_log_info("event %s: campaign %s: no member %s", id,
                        a->campaign, member);
            continue;
        }

        k = vw_segment_eval(&a->segment, &m, 1, ts, 0, &idx);
        vw_member_free(&m);

        if (k == 0) {
            continue;
        }

        /* one run per event: the same event twice queues once */
        if (eid != NULL) {
            snprintf(run, sizeof(run), "e:%s", eid);

        } else {
            snprintf(run, sizeof(run), "e%s", id);
        }

        q = vw_daemon_queue(d, a, run, (ts + a->delay) * 1000, ts, &member,
                            1, ts);

        if (q == -2) {
            vw_log_error("%s", d->err);
            continue;
        }

        if (q < 0) {
            return -1;
        }

        if (q > 0) {
            vw_log_info("event %s (%s): campaign %s: member %s queued, due "
                        "%llds after the event", id, type, a->campaign,
                        member, (long long) a->delay);
        }
    }

    return 0;
}


/* the events the loyalty programme appends (notify yes) */

static int
vw_loyalty_event(const char *type)
{
    static const char *const  types[] = {
        "tier_upgraded", "tier_downgraded", "tier_will_drop",
        "points_expiring", "reward_redeemed", "referral_converted", NULL
    };

    size_t  i;

    for (i = 0; types[i] != NULL; i++) {
        if (strcmp(type, types[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


/* a storefront's own type, as nginx's voucher_api event takes it */

static int
vw_custom_event(const char *type)
{
    size_t  i;

    for (i = 0; type[i] != '\0'; i++) {
        if (!((type[i] >= 'a' && type[i] <= 'z')
              || (i > 0 && ((type[i] >= '0' && type[i] <= '9')
                            || type[i] == '_'))))
        {
            return 0;
        }
    }

    return i > 0 && i <= 40;
}


static int
vw_event(vw_daemon_t *d, const char *id, const redisReply *f)
{
    int64_t      ts;
    const char  *type, *member, *v, *eid, *order;

    type = vw_field(f, "type");
    member = vw_field(f, "member");
    v = vw_field(f, "ts");
    eid = vw_field(f, "id");

    /* it names a run: tabs and an unbounded length do not fit */
    if (eid != NULL && (eid[0] == '\0' || strlen(eid) > 64
                        || strpbrk(eid, "\t\r\n") != NULL))
    {
        vw_log_warn("event %s: id must be 1-64 characters: ignored", id);
        return 0;
    }

    if (type == NULL || member == NULL || member[0] == '\0') {
        vw_log_warn("event %s: no type or member: ignored", id);
        return 0;
    }

    if (v == NULL) {
        ts = vw_now();

    } else if (vw_parse_int(v, 0, INT64_C(1) << 40, &ts) != 0) {
        vw_log_warn("event %s: ts is not unix seconds: ignored", id);
        return 0;
    }

    v = vw_field(f, "referral_code");

    if (v != NULL && v[0] != '\0'
        && (strcmp(type, "signup") == 0 || strcmp(type, "purchase") == 0)
        && vw_event_refer(d, id, member, ts, v, f) != 0)
    {
        return -1;
    }

    if (strcmp(type, "signup") == 0) {
        if (vw_event_signup(d, id, member, ts, f) != 0) {
            return -1;
        }

    } else if (strcmp(type, "purchase") == 0) {
        order = vw_field(f, "order");

        if (order == NULL || order[0] == '\0' || strlen(order) > 128) {
            order = (eid != NULL) ? eid : id;
        }

        if (vw_event_purchase(d, id, member, ts, vw_field(f, "amount"),
                              order, vw_field(f, "items"))
            != 0)
        {
            return -1;
        }

    } else if (strcmp(type, "cart_abandoned") != 0
               && strcmp(type, "referral") != 0
               && !vw_loyalty_event(type))
    {
        if (!vw_custom_event(type)) {
            vw_log_warn("event %s: unknown type \"%s\": ignored", id,
                        type);
        }

        return 0;
    }

    return vw_event_triggers(d, id, eid, type, (char *) member, ts);
}


/* entries as XREADGROUP and XAUTOCLAIM give them: [id, fields]... */

static int
vw_events_handle(vw_daemon_t *d, const redisReply *entries, const char *key)
{
    int          n;
    size_t       i;
    redisReply  *e, *r;

    n = 0;

    for (i = 0; i < entries->elements; i++) {
        e = entries->element[i];

        /* an entry deleted while pending comes back as [id, nil] */
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
            || e->element[1]->type != REDIS_REPLY_ARRAY)
        {
            continue;
        }

        if (vw_event(d, e->element[0]->str, e->element[1]) != 0) {
            return -1;
        }

        r = redisCommand(d->redis, "XACK %s " VW_GROUP " %s", key,
                         e->element[0]->str);

        if (vw_redis_failed(d->redis, r, d->err, sizeof(d->err))) {
            if (r) {
                freeReplyObject(r);
            }

            return -1;
        }

        freeReplyObject(r);
        n++;
    }

    vw_metrics_events(n);

    return n;
}


int
vw_events_tick(vw_daemon_t *d)
{
    int          n, total;
    char        *key;
    redisReply  *r;

    if (!d->group_ready && vw_group_create(d) != 0) {
        return -1;
    }

    key = vw_key(&d->cf, "events");
    total = 0;

    /* first what a dead consumer left: idle for longer than a lease */
    r = redisCommand(d->redis, "XAUTOCLAIM %s " VW_GROUP " %s %lld 0-0 "
                     "COUNT %d", key, d->cf.consumer,
                     (long long) d->cf.lease_s * 1000, d->cf.batch);

    if (vw_redis_failed(d->redis, r, d->err, sizeof(d->err))) {
        /* a stream that vanished (FLUSHALL) takes the group with it */
        if (r && strstr(r->str, "NOGROUP")) {
            d->group_ready = 0;
        }

        goto fail;
    }

    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
        n = vw_events_handle(d, r->element[1], key);

        if (n < 0) {
            goto fail;
        }

        if (n > 0) {
            vw_log_info("events: %d taken over from a consumer gone quiet",
                        n);
        }

        total += n;
    }

    freeReplyObject(r);

    /* then ours: those read before a restart of this consumer, and new */
    r = redisCommand(d->redis, "XREADGROUP GROUP " VW_GROUP " %s COUNT %d "
                     "STREAMS %s >", d->cf.consumer, d->cf.batch, key);

    if (vw_redis_failed(d->redis, r, d->err, sizeof(d->err))) {
        if (r && strstr(r->str, "NOGROUP")) {
            d->group_ready = 0;
        }

        goto fail;
    }

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        n = vw_events_handle(d, r->element[0]->element[1], key);

        if (n < 0) {
            goto fail;
        }

        total += n;
    }

    freeReplyObject(r);
    free(key);

    return total;

fail:

    if (r) {
        freeReplyObject(r);
    }

    free(key);

    return -1;
}
