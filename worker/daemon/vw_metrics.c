
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherd's /metrics: see vw_metrics.h.
 */


#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vw_clock.h"
#include "vw_jobs.h"
#include "vw_job.h"
#include "vw_metrics.h"
#include "vw_redis.h"
#include "vw_webhooks.h"


/* a labelled series of this process: "name" and its labels, a value */

typedef struct {
    const char  *family;
    char        *labels;            /* rendered: a="x",b="y" */
    int64_t      value;
} vw_series_t;


static pthread_mutex_t  vw_metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static vw_series_t     *vw_series;
static size_t           vw_nseries;
static int64_t          vw_events_total;


void
vw_metrics_label(vw_buf_t *out, const char *v)
{
    for ( /* void */ ; v && *v; v++) {
        if (*v == '\\' || *v == '"') {
            vw_buf_addc(out, '\\');
            vw_buf_addc(out, *v);

        } else if (*v == '\n') {
            vw_buf_adds(out, "\\n");

        } else {
            vw_buf_addc(out, *v);
        }
    }
}


/* adds (or sets) a series; the caller holds the lock */

static void
vw_series_put(const char *family, const char *k1, const char *v1,
    const char *k2, const char *v2, int64_t n, int set)
{
    size_t        i;
    vw_buf_t      b;
    vw_series_t  *s;

    memset(&b, 0, sizeof(vw_buf_t));
    vw_buf_printf(&b, "%s=\"", k1);
    vw_metrics_label(&b, v1);
    vw_buf_addc(&b, '"');

    if (k2) {
        vw_buf_printf(&b, ",%s=\"", k2);
        vw_metrics_label(&b, v2);
        vw_buf_addc(&b, '"');
    }

    for (i = 0; i < vw_nseries; i++) {
        s = &vw_series[i];

        if (s->family == family && strcmp(s->labels, b.data) == 0) {
            s->value = set ? n : s->value + n;
            vw_buf_free(&b);
            return;
        }
    }

    vw_series = vw_xrealloc(vw_series, (vw_nseries + 1)
                                       * sizeof(vw_series_t));
    s = &vw_series[vw_nseries++];
    s->family = family;
    s->labels = b.data;
    s->value = n;
}


static const char  vw_f_deliveries[] = "voucherd_deliveries_total";
static const char  vw_f_runs[] = "voucherd_automation_runs_total";
static const char  vw_f_lag[] = "voucherd_automation_run_lag_seconds";


void
vw_metrics_delivery(const char *channel, const char *outcome)
{
    pthread_mutex_lock(&vw_metrics_lock);
    vw_series_put(vw_f_deliveries, "channel", channel ? channel : "",
                  "outcome", outcome, 1, 0);
    pthread_mutex_unlock(&vw_metrics_lock);
}


void
vw_metrics_run(const char *campaign, const char *outcome, int64_t lag_s)
{
    pthread_mutex_lock(&vw_metrics_lock);
    vw_series_put(vw_f_runs, "campaign", campaign, "outcome", outcome, 1, 0);

    if (strcmp(outcome, "planned") == 0) {
        vw_series_put(vw_f_lag, "campaign", campaign, NULL, NULL,
                      lag_s < 0 ? 0 : lag_s, 1);
    }

    pthread_mutex_unlock(&vw_metrics_lock);
}


void
vw_metrics_events(int64_t n)
{
    pthread_mutex_lock(&vw_metrics_lock);
    vw_events_total += n;
    pthread_mutex_unlock(&vw_metrics_lock);
}


/* ------------------------------------------------------------- render */


static void
vw_head(vw_buf_t *out, const char *name, const char *type, const char *help)
{
    vw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                  type);
}


static void
vw_series_of(vw_buf_t *out, const char *family)
{
    size_t  i;

    for (i = 0; i < vw_nseries; i++) {
        if (vw_series[i].family == family) {
            vw_buf_printf(out, "%s{%s} %lld\n", family, vw_series[i].labels,
                          (long long) vw_series[i].value);
        }
    }
}


/* one command's reply, or NULL (the gauge is left out) */

static redisReply *
vw_ask(vw_op_t *op, const char *fmt, const char *key)
{
    redisReply  *r;

    if (op->redis == NULL || op->redis->err) {
        return NULL;
    }

    r = redisCommand(op->redis, fmt, key);

    if (r && r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        return NULL;
    }

    return r;
}


static int64_t
vw_ask_int(vw_op_t *op, const char *fmt, const char *what, int *ok)
{
    char        *key;
    int64_t      n;
    redisReply  *r;

    key = vw_key(op->cf, "%s", what);
    r = vw_ask(op, fmt, key);
    free(key);

    n = 0;

    if (r == NULL || vw_reply_int(r, &n) != 0) {
        *ok = 0;
    }

    if (r) {
        freeReplyObject(r);
    }

    return n;
}


/* the delivery queue: its size, what is due, how late the oldest is */

static void
vw_render_queue(vw_op_t *op, vw_buf_t *out, int *ok)
{
    char        *key, now[32];
    int64_t      n, due, oldest;
    redisReply  *r;

    n = vw_ask_int(op, "ZCARD %s", "queue", ok);

    key = vw_key(op->cf, "queue");
    snprintf(now, sizeof(now), "%lld", (long long) vw_now_ms());
    r = op->redis && !op->redis->err
        ? redisCommand(op->redis, "ZCOUNT %s -inf %s", key, now) : NULL;
    due = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;

    if (r) {
        freeReplyObject(r);
    }

    r = vw_ask(op, "ZRANGE %s 0 0 WITHSCORES", key);
    oldest = 0;

    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && due > 0) {
        vw_reply_int(r->element[1], &oldest);
        oldest = oldest > 0 ? (vw_now_ms() - oldest) / 1000 : 0;
    }

    if (r) {
        freeReplyObject(r);
    }

    free(key);

    vw_head(out, "voucherd_queue_deliveries", "gauge",
            "Deliveries in the queue ({v}:queue), due or not");
    vw_buf_printf(out, "voucherd_queue_deliveries %lld\n", (long long) n);
    vw_head(out, "voucherd_queue_due_deliveries", "gauge",
            "Deliveries due now (or claimed and in hand)");
    vw_buf_printf(out, "voucherd_queue_due_deliveries %lld\n",
                  (long long) due);
    vw_head(out, "voucherd_queue_oldest_due_seconds", "gauge",
            "How long the oldest due delivery has waited (0 when none)");
    vw_buf_printf(out, "voucherd_queue_oldest_due_seconds %lld\n",
                  (long long) (oldest > 0 ? oldest : 0));

    n = vw_ask_int(op, "XLEN %s", "dead", ok);
    vw_head(out, "voucherd_delivery_dead_letters", "gauge",
            "Dead letters of deliveries ({v}:dead, trimmed by stream_maxlen)");
    vw_buf_printf(out, "voucherd_delivery_dead_letters %lld\n",
                  (long long) n);
}


/* a field of an XINFO GROUPS entry */

static int64_t
vw_group_int(const redisReply *g, const char *name, const char **group)
{
    size_t       j;
    int64_t      v;
    const char  *k;

    v = -1;

    for (j = 0; g->type == REDIS_REPLY_ARRAY && j + 1 < g->elements; j += 2)
    {
        k = vw_reply_str(g->element[j]);

        if (k && strcmp(k, "name") == 0) {
            *group = vw_reply_str(g->element[j + 1]);

        } else if (k && strcmp(k, name) == 0) {
            vw_reply_int(g->element[j + 1], &v);
        }
    }

    return v;
}


/* XINFO GROUPS {v}:events: each group's pending entries and lag */

static void
vw_render_events(vw_op_t *op, vw_buf_t *out)
{
    char        *key;
    size_t       i, pass;
    int64_t      n;
    redisReply  *r;
    const char  *name;

    static const char *const  fields[] = { "pending", "lag" };
    static const char *const  help[] = {
        "Events read by a consumer group and not acknowledged yet",
        "Events in {v}:events the consumer group has not read yet"
    };

    vw_head(out, "voucherd_events_consumed_total", "counter",
            "Storefront events this voucherd handled for the automations");
    pthread_mutex_lock(&vw_metrics_lock);
    vw_buf_printf(out, "voucherd_events_consumed_total %lld\n",
                  (long long) vw_events_total);
    pthread_mutex_unlock(&vw_metrics_lock);

    key = vw_key(op->cf, "events");
    r = vw_ask(op, "XINFO GROUPS %s", key);
    free(key);

    for (pass = 0; pass < 2; pass++) {
        vw_buf_printf(out, "# HELP voucherd_events_%s %s\n"
                      "# TYPE voucherd_events_%s gauge\n", fields[pass],
                      help[pass], fields[pass]);

        for (i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements;
             i++)
        {
            name = NULL;
            n = vw_group_int(r->element[i], fields[pass], &name);

            if (name && n >= 0) {
                vw_buf_printf(out, "voucherd_events_%s{group=\"",
                              fields[pass]);
                vw_metrics_label(out, name);
                vw_buf_printf(out, "\"} %lld\n", (long long) n);
            }
        }
    }

    if (r) {
        freeReplyObject(r);
    }
}


static void
vw_render_jobs(vw_op_t *op, vw_buf_t *out)
{
    size_t           i;
    char            *key;
    int64_t          n;
    redisReply      *r;
    vw_jobs_stats_t  st;

    static const char *const  states[] = {
        "queued", "running", "done", "failed", "cancelled", NULL
    };
    static const char *const  outcomes[] = {
        "done", "failed", "cancelled", "released", "lost"
    };

    key = vw_key(op->cf, "jn");
    r = vw_ask(op, "HGETALL %s", key);
    free(key);

    vw_head(out, "voucherd_jobs", "gauge",
            "Jobs by state, every runner's: queued and running now; done, "
            "failed and cancelled since the namespace began");

    for (i = 0; states[i]; i++) {
        n = 0;

        if (r && r->type == REDIS_REPLY_ARRAY) {
            size_t  j;

            for (j = 0; j + 1 < r->elements; j += 2) {
                if (strcmp(r->element[j]->str, states[i]) == 0) {
                    vw_reply_int(r->element[j + 1], &n);
                }
            }
        }

        vw_buf_printf(out, "voucherd_jobs{state=\"%s\"} %lld\n", states[i],
                      (long long) (n > 0 ? n : 0));
    }

    if (r) {
        freeReplyObject(r);
    }

    vw_jobs_stats(&st);

    vw_head(out, "voucherd_jobs_started_total", "counter",
            "Jobs this voucherd's runner took (new or resumed)");
    vw_buf_printf(out, "voucherd_jobs_started_total %lld\n",
                  (long long) st.started);
    vw_head(out, "voucherd_jobs_ended_total", "counter",
            "Jobs this voucherd's runner ended, by outcome");

    for (i = 0; i < 5; i++) {
        vw_buf_printf(out, "voucherd_jobs_ended_total{outcome=\"%s\"} %lld\n",
                      outcomes[i], (long long) st.ended[i]);
    }
}


static void
vw_render_webhooks(vw_op_t *op, vw_buf_t *out)
{
    size_t               i, pass;
    char                *key;
    int64_t              n;
    redisReply          *r, *x;
    vw_webhooks_stats_t  st;

    vw_webhooks_stats(&st);

    vw_head(out, "voucherd_webhook_events_consumed_total", "counter",
            "Stream entries this voucherd's webhook thread read, by source");

    for (i = 0; i < VW_WH_SOURCES; i++) {
        vw_buf_printf(out, "voucherd_webhook_events_consumed_total"
                      "{source=\"%s\"} %lld\n", vw_wh_sources[i],
                      (long long) st.consumed[i]);
    }

    vw_head(out, "voucherd_webhook_events_queued_total", "counter",
            "Events put in subscriptions' outboxes by this voucherd");
    vw_buf_printf(out, "voucherd_webhook_events_queued_total %lld\n",
                  (long long) st.fanned);
    vw_head(out, "voucherd_webhook_deliveries_total", "counter",
            "Webhook POSTs of this voucherd, by outcome");
    vw_buf_printf(out, "voucherd_webhook_deliveries_total{outcome=\"sent\"} "
                  "%lld\n", (long long) st.sent);
    vw_buf_printf(out, "voucherd_webhook_deliveries_total{outcome=\"retry\"} "
                  "%lld\n", (long long) st.retried);
    vw_buf_printf(out, "voucherd_webhook_deliveries_total{outcome=\"dead\"} "
                  "%lld\n", (long long) st.dead);

    key = vw_key(op->cf, "whs");
    r = vw_ask(op, "SORT %s ALPHA", key);
    free(key);

    for (pass = 0; pass < 2; pass++) {
        vw_head(out, pass ? "voucherd_webhook_dead_letters"
                          : "voucherd_webhook_pending",
                "gauge", pass ? "Dead letters of a subscription"
                              : "Events waiting in a subscription's outbox");

        for (i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements;
             i++)
        {
            key = vw_key(op->cf, pass ? "whd:%s" : "who:%s",
                         r->element[i]->str);
            x = vw_ask(op, "XLEN %s", key);
            free(key);

            n = 0;

            if (x) {
                vw_reply_int(x, &n);
                freeReplyObject(x);
            }

            vw_buf_printf(out, "%s{webhook=\"",
                          pass ? "voucherd_webhook_dead_letters"
                               : "voucherd_webhook_pending");
            vw_metrics_label(out, r->element[i]->str);
            vw_buf_printf(out, "\"} %lld\n", (long long) n);
        }
    }

    if (r) {
        freeReplyObject(r);
    }
}


void
vw_metrics_render(vw_op_t *op, vw_buf_t *out)
{
    int  ok;

    ok = op->redis != NULL && !op->redis->err;

    vw_head(out, "voucherd_info", "gauge",
            "The function library this voucherd embeds");
    vw_buf_printf(out, "voucherd_info{library=\"%s\"} 1\n",
                  vw_redis_library_version());

    pthread_mutex_lock(&vw_metrics_lock);

    vw_head(out, vw_f_deliveries, "counter",
            "Deliveries this voucherd sent, by channel and outcome (sent, "
            "retry, dead, skipped)");
    vw_series_of(out, vw_f_deliveries);
    vw_head(out, vw_f_runs, "counter",
            "Scheduled runs this voucherd planned or skipped, by campaign");
    vw_series_of(out, vw_f_runs);
    vw_head(out, vw_f_lag, "gauge",
            "How late the last run of a campaign was planned, in seconds");
    vw_series_of(out, vw_f_lag);

    pthread_mutex_unlock(&vw_metrics_lock);

    vw_render_queue(op, out, &ok);
    vw_render_events(op, out);
    vw_render_jobs(op, out);
    vw_render_webhooks(op, out);

    vw_head(out, "voucherd_redis_up", "gauge",
            "Whether Redis answered this scrape (the gauges above are from "
            "it)");
    vw_buf_printf(out, "voucherd_redis_up %d\n",
                  ok && op->redis && !op->redis->err ? 1 : 0);
}


/*
 * Several stores: each store's process renders its text (its counters,
 * and the gauges from its Redis) at most once a second into its slot of
 * a shared memory file the processes inherit; the admin API's process merges
 * the slots, each series with a store label, each family once.  A slot
 * is a seqlock: a reader copies it again while a write is under way.
 */

#define VW_METRICS_SLOT  (1024 * 1024)

typedef struct {
    volatile uint64_t       seq;
    size_t                  len;
    char                    text[VW_METRICS_SLOT - 16];
} vw_slot_t;

static vw_slot_t  *vw_slots;
static int         vw_nslots;


int
vw_metrics_attach(int fd, int nstores)
{
    void  *p;

    p = mmap(NULL, (size_t) nstores * sizeof(vw_slot_t),
             PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);

    if (p == MAP_FAILED) {
        return -1;
    }

    vw_slots = p;
    vw_nslots = nstores;

    return 0;
}


int
vw_metrics_shared(int nstores)
{
    int  fd;

    fd = memfd_create("voucherd-metrics", 0);

    if (fd < 0
        || ftruncate(fd, (off_t) nstores * sizeof(vw_slot_t)) != 0
        || vw_metrics_attach(fd, nstores) != 0)
    {
        if (fd >= 0) {
            close(fd);
        }

        return -1;
    }

    return fd;
}


void
vw_metrics_publish(int slot, vw_op_t *op)
{
    vw_buf_t                b;
    vw_slot_t              *s;
    struct timespec         now;
    static struct timespec  last;

    if (vw_slots == NULL || slot < 0 || slot >= vw_nslots) {
        return;
    }

    clock_gettime(CLOCK_MONOTONIC, &now);

    if (last.tv_sec != 0
        && (now.tv_sec - last.tv_sec) * 1000
           + (now.tv_nsec - last.tv_nsec) / 1000000 < 1000)
    {
        return;
    }

    last = now;

    memset(&b, 0, sizeof(vw_buf_t));
    vw_metrics_render(op, &b);

    s = &vw_slots[slot];

    __atomic_add_fetch(&s->seq, 1, __ATOMIC_SEQ_CST);
    s->len = b.len < sizeof(s->text) ? b.len : 0;
    memcpy(s->text, b.data, s->len);
    __atomic_add_fetch(&s->seq, 1, __ATOMIC_SEQ_CST);

    vw_buf_free(&b);
}


/* a copy of a slot's text, or NULL when none was published yet */

static char *
vw_metrics_slot(int slot, size_t *len)
{
    int         k;
    char       *t;
    uint64_t    a, z;
    vw_slot_t  *s;

    s = &vw_slots[slot];

    for (k = 0; k < 100; k++) {
        a = __atomic_load_n(&s->seq, __ATOMIC_SEQ_CST);

        if (a & 1) {
            usleep(100);
            continue;
        }

        *len = s->len < sizeof(s->text) ? s->len : 0;
        t = vw_xalloc(*len + 1);
        memcpy(t, s->text, *len);
        t[*len] = '\0';

        z = __atomic_load_n(&s->seq, __ATOMIC_SEQ_CST);

        if (a == z) {
            return t;
        }

        free(t);
    }

    return NULL;
}


typedef struct {
    char                   *name;
    vw_buf_t                head;
    vw_buf_t                samples;
} vw_family_t;


void
vw_metrics_render_stores(char **names, int first, int n, vw_buf_t *out)
{
    int           i;
    char         *text, *line, *eol, *fam, *brace, *sp;
    size_t        len, k, nf, nfam;
    vw_family_t  *f, *cur;

    f = NULL;
    nf = 0;
    nfam = 0;

    for (i = first; i < first + n && i < vw_nslots; i++) {
        text = vw_metrics_slot(i, &len);

        if (text == NULL) {
            continue;
        }

        cur = NULL;

        for (line = text; *line; line = eol) {
            eol = line + strcspn(line, "\n");

            if (*eol) {
                *eol++ = '\0';
            }

            if (strncmp(line, "# HELP ", 7) == 0
                || strncmp(line, "# TYPE ", 7) == 0)
            {
                fam = line + 7;
                len = strcspn(fam, " ");

                for (k = 0, cur = NULL; k < nfam; k++) {
                    if (strlen(f[k].name) == len
                        && strncmp(f[k].name, fam, len) == 0)
                    {
                        cur = &f[k];
                        break;
                    }
                }

                if (cur == NULL) {
                    if (nfam == nf) {
                        nf = nf ? nf * 2 : 16;
                        f = vw_xrealloc(f, nf * sizeof(vw_family_t));
                    }

                    cur = &f[nfam++];
                    memset(cur, 0, sizeof(vw_family_t));
                    cur->name = vw_xstrndup(fam, len);
                }

                /* HELP and TYPE once, from the first store that has it */
                if (cur->head.len == 0
                    || (line[2] == 'T'
                        && strstr(cur->head.data, "# TYPE ") == NULL))
                {
                    vw_buf_printf(&cur->head, "%s\n", line);
                }

                continue;
            }

            if (*line == '\0' || *line == '#' || cur == NULL) {
                continue;
            }

            /* the sample with store="NAME" first among its labels */
            brace = strchr(line, '{');
            sp = strchr(line, ' ');

            vw_buf_add(&cur->samples, line,
                       (size_t) ((brace && (!sp || brace < sp) ? brace : sp)
                                 - line));
            vw_buf_adds(&cur->samples, "{store=\"");
            vw_metrics_label(&cur->samples, names[i]);

            if (brace && (!sp || brace < sp)) {
                vw_buf_adds(&cur->samples, brace[1] == '}' ? "\"" : "\",");
                vw_buf_printf(&cur->samples, "%s\n", brace + 1);

            } else {
                vw_buf_printf(&cur->samples, "\"}%s\n", sp ? sp : "");
            }
        }

        free(text);
    }

    for (k = 0; k < nfam; k++) {
        if (f[k].head.len) {
            vw_buf_add(out, f[k].head.data, f[k].head.len);
        }

        if (f[k].samples.len) {
            vw_buf_add(out, f[k].samples.data, f[k].samples.len);
        }

        free(f[k].name);
        vw_buf_free(&f[k].head);
        vw_buf_free(&f[k].samples);
    }

    free(f);
}
