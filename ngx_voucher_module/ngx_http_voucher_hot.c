
/*
 * Copyright (C) ngx_voucher authors
 *
 * The hot code cache (voucher_hot_cache): once Redis has answered a code
 * code_exhausted, campaign_exhausted or campaign_budget_exhausted, every
 * worker of this nginx gives the same answer for that code, from shared
 * memory, for a short time ("time="), without a Redis call.  A sold-out
 * flash code then costs Redis nothing.  Redis stays the truth: an entry
 * is learned only from Redis' own answer and ends with its time, so a
 * restock is seen once the time is up.
 *
 * An entry is of one store, one namespace and one code, as normalised:
 * a campaign's answer is learned for the code it came with, never for
 * another code (nginx cannot know a code's campaign without asking).
 * What Redis would check before these refusals (the customer, the window,
 * the currency) may refuse a request otherwise: the cache answers it with
 * the learned refusal, never lets through one Redis would refuse, and
 * never refuses one Redis would let through:
 *
 *   - a redeem or reserve with an idempotency key always asks Redis: its
 *     retry must get the first answer, which may be a success;
 *   - campaign_budget_exhausted depends on the discount, which grows with
 *     the order's amount when no items are sent: it is answered only to a
 *     request without items whose amount is at least the refused one's.
 */


#include "ngx_http_voucher.h"

#include <hiredis/hiredis.h>


#define NGX_HTTP_VOUCHER_HOT_CODE      1   /* code_exhausted */
#define NGX_HTTP_VOUCHER_HOT_CAMPAIGN  2   /* campaign_exhausted */
#define NGX_HTTP_VOUCHER_HOT_BUDGET    3   /* campaign_budget_exhausted */

/* a campaign's name longer than this is not cached */
#define NGX_HTTP_VOUCHER_HOT_CAMPAIGN_MAX  256


typedef struct {
    ngx_rbtree_t                  rbtree;
    ngx_rbtree_node_t             sentinel;
    ngx_queue_t                   queue;      /* least recently learned last */
    ngx_uint_t                    n;          /* entries */
} ngx_http_voucher_hot_sh_t;


typedef struct {
    ngx_http_voucher_hot_sh_t    *sh;
    ngx_slab_pool_t              *shpool;
    ngx_msec_t                    time;
} ngx_http_voucher_hot_ctx_t;


/*
 * The node's key: "STORE\0NS\0CODE" in data, the campaign's name after
 * it; as the rbtree's value the key's crc32.
 */
typedef struct {
    u_char                        color;
    u_char                        reason;     /* NGX_HTTP_VOUCHER_HOT_* */
    u_short                       len;
    u_short                       camp_len;
    ngx_queue_t                   queue;
    uint64_t                      until;      /* unix ms */
    int64_t                       amount;     /* BUDGET: the refused order's */
    u_char                        data[1];
} ngx_http_voucher_hot_node_t;


static ngx_int_t ngx_http_voucher_hot_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_voucher_hot_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_voucher_hot_node_t *ngx_http_voucher_hot_find(
    ngx_http_voucher_hot_ctx_t *ctx, u_char *key, size_t len, uint32_t hash);
static void ngx_http_voucher_hot_delete(ngx_http_voucher_hot_ctx_t *ctx,
    ngx_http_voucher_hot_node_t *hn);
static u_char *ngx_http_voucher_hot_key(ngx_http_voucher_core_t *core,
    size_t *len);
static ngx_uint_t ngx_http_voucher_hot_reason(redisReply *reply);
static uint64_t ngx_http_voucher_hot_now(void);
static ngx_int_t ngx_http_voucher_hot_reply(ngx_http_voucher_core_t *core,
    ngx_uint_t reason, u_char *camp, size_t camp_len);


static ngx_str_t  ngx_http_voucher_hot_reasons[] = {
    ngx_null_string,
    ngx_string("code_exhausted"),
    ngx_string("campaign_exhausted"),
    ngx_string("campaign_budget_exhausted")
};


/* voucher_hot_cache SIZE [time=TIME]; (http) */

char *
ngx_http_voucher_hot_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_voucher_main_conf_t *vmcf = conf;

    ssize_t                      size;
    ngx_str_t                   *value, name, s;
    ngx_msec_t                   ms;
    ngx_shm_zone_t              *zone;
    ngx_http_voucher_hot_ctx_t  *ctx;

    if (vmcf->hot_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid size \"%V\" of \"voucher_hot_cache\","
                           " it must be at least %uzk", &value[1],
                           8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    ms = 1000;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "time=", 5) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" of "
                               "\"voucher_hot_cache\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        s.data = value[2].data + 5;
        s.len = value[2].len - 5;

        ms = ngx_parse_time(&s, 0);

        if (ms == (ngx_msec_t) NGX_ERROR || ms == 0 || ms > 3600000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid time \"%V\" of \"voucher_hot_cache\","
                               " it must be from 1ms to 1h", &s);
            return NGX_CONF_ERROR;
        }
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_voucher_hot_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    ctx->time = ms;

    ngx_str_set(&name, "voucher_hot_cache");

    zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_voucher_module);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->init = ngx_http_voucher_hot_init_zone;
    zone->data = ctx;

    vmcf->hot_zone = zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_voucher_hot_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_voucher_hot_ctx_t  *octx = data;

    ngx_http_voucher_hot_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* a reload: what was learned stays, each entry until its time */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool, sizeof(ngx_http_voucher_hot_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_voucher_hot_insert_value);

    ngx_queue_init(&ctx->sh->queue);
    ctx->sh->n = 0;

    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_voucher_hot_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t            **p;
    ngx_http_voucher_hot_node_t   *hn, *hnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            hn = (ngx_http_voucher_hot_node_t *) &node->color;
            hnt = (ngx_http_voucher_hot_node_t *) &temp->color;

            p = (ngx_memn2cmp(hn->data, hnt->data, hn->len, hnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* called with the zone locked */

static ngx_http_voucher_hot_node_t *
ngx_http_voucher_hot_find(ngx_http_voucher_hot_ctx_t *ctx, u_char *key,
    size_t len, uint32_t hash)
{
    ngx_int_t                     rc;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_http_voucher_hot_node_t  *hn;

    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        hn = (ngx_http_voucher_hot_node_t *) &node->color;

        rc = ngx_memn2cmp(key, hn->data, len, (size_t) hn->len);

        if (rc == 0) {
            return hn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_voucher_hot_delete(ngx_http_voucher_hot_ctx_t *ctx,
    ngx_http_voucher_hot_node_t *hn)
{
    ngx_rbtree_node_t  *node;

    node = (ngx_rbtree_node_t *)
               ((u_char *) hn - offsetof(ngx_rbtree_node_t, color));

    ngx_queue_remove(&hn->queue);
    ngx_rbtree_delete(&ctx->sh->rbtree, node);
    ngx_slab_free_locked(ctx->shpool, node);
    ctx->sh->n--;
}


/* "STORE\0NS\0CODE" in the request's pool */

static u_char *
ngx_http_voucher_hot_key(ngx_http_voucher_core_t *core, size_t *len)
{
    u_char                       *key, *p;
    ngx_str_t                    *store;
    ngx_http_voucher_loc_conf_t  *vlcf;

    vlcf = core->conf;
    store = &vlcf->store->name;

    *len = store->len + 1 + vlcf->ns.len + 1 + core->code.len;

    if (*len > 65535) {
        return NULL;
    }

    key = ngx_pnalloc(core->request->pool, *len);
    if (key == NULL) {
        return NULL;
    }

    p = ngx_cpymem(key, store->data, store->len);
    *p++ = '\0';
    p = ngx_cpymem(p, vlcf->ns.data, vlcf->ns.len);
    *p++ = '\0';
    ngx_memcpy(p, core->code.data, core->code.len);

    return key;
}


static uint64_t
ngx_http_voucher_hot_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/*
 * Does the cache answer this request?  NGX_OK: core->hot holds the
 * answer, as Redis gave it; else NGX_DECLINED.
 */

ngx_int_t
ngx_http_voucher_hot_check(ngx_http_voucher_core_t *core)
{
    u_char                        *key;
    u_char                         camp[NGX_HTTP_VOUCHER_HOT_CAMPAIGN_MAX];
    size_t                         len, camp_len;
    uint32_t                       hash;
    uint64_t                       now;
    ngx_uint_t                     reason, i;
    ngx_http_voucher_hot_ctx_t    *ctx;
    ngx_http_voucher_hot_node_t   *hn;
    ngx_http_voucher_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(core->request,
                                         ngx_http_voucher_module);

    if (vmcf->hot_zone == NULL || core->guess) {
        return NGX_DECLINED;
    }

    if (core->keyed && core->api != NGX_HTTP_VOUCHER_OP_VALIDATE) {
        /* a retry must get its first answer, maybe a success */
        return NGX_DECLINED;
    }

    ctx = vmcf->hot_zone->data;

    /*
     * No code sold out: no lock, no key.  Read unlocked, a count may be a
     * moment old; an entry learned meanwhile is found by the next request.
     */

    if (ctx->sh->n == 0) {
        return NGX_DECLINED;
    }

    key = ngx_http_voucher_hot_key(core, &len);
    if (key == NULL) {
        return NGX_DECLINED;
    }

    hash = ngx_crc32_short(key, len);
    now = ngx_http_voucher_hot_now();

    ngx_shmtx_lock(&ctx->shpool->mutex);

    /* the oldest entries, whose time is up, go: the count falls to 0 */

    for (i = 0; i < 4 && !ngx_queue_empty(&ctx->sh->queue); i++) {
        hn = ngx_queue_data(ngx_queue_last(&ctx->sh->queue),
                            ngx_http_voucher_hot_node_t, queue);

        if (hn->until > now) {
            break;
        }

        ngx_http_voucher_hot_delete(ctx, hn);
    }

    hn = ngx_http_voucher_hot_find(ctx, key, len, hash);

    if (hn && hn->until <= now) {
        ngx_http_voucher_hot_delete(ctx, hn);
        hn = NULL;
    }

    if (hn == NULL
        || (hn->reason == NGX_HTTP_VOUCHER_HOT_BUDGET
            && (core->items || core->amount < hn->amount)))
    {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_DECLINED;
    }

    reason = hn->reason;
    camp_len = hn->camp_len;
    ngx_memcpy(camp, hn->data + hn->len, camp_len);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return ngx_http_voucher_hot_reply(core, reason, camp, camp_len);
}


/*
 * The answer as Redis gave it: {reason, "code", CODE, "campaign", NAME},
 * in the request's pool, rendered as Redis' own would be.
 */

static ngx_int_t
ngx_http_voucher_hot_reply(ngx_http_voucher_core_t *core, ngx_uint_t reason,
    u_char *camp, size_t camp_len)
{
    u_char       *p;
    ngx_str_t     s[5];
    ngx_uint_t    i;
    redisReply   *reply, *el;
    ngx_pool_t   *pool;

    pool = core->request->pool;

    s[0] = ngx_http_voucher_hot_reasons[reason];
    ngx_str_set(&s[1], "code");
    s[2] = core->code;
    ngx_str_set(&s[3], "campaign");
    s[4].data = camp;
    s[4].len = camp_len;

    reply = ngx_pcalloc(pool, sizeof(redisReply) + 5 * sizeof(redisReply *)
                              + 5 * sizeof(redisReply));
    if (reply == NULL) {
        return NGX_DECLINED;
    }

    reply->type = REDIS_REPLY_ARRAY;
    reply->elements = 5;
    reply->element = (redisReply **) &reply[1];

    el = (redisReply *) &reply->element[5];

    for (i = 0; i < 5; i++) {
        p = ngx_pnalloc(pool, s[i].len + 1);
        if (p == NULL) {
            return NGX_DECLINED;
        }

        ngx_memcpy(p, s[i].data, s[i].len);
        p[s[i].len] = '\0';

        el[i].type = REDIS_REPLY_STRING;
        el[i].str = (char *) p;
        el[i].len = s[i].len;

        reply->element[i] = &el[i];
    }

    if (ngx_http_voucher_ok_decode(reply, &core->hot_ok) != 0) {
        return NGX_DECLINED;
    }

    core->hot = reply;

    return NGX_OK;
}


/* NGX_HTTP_VOUCHER_HOT_* of a refusal this cache keeps, or 0 */

static ngx_uint_t
ngx_http_voucher_hot_reason(redisReply *reply)
{
    size_t       i;
    ngx_uint_t   n;
    redisReply  *el;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 5
        || reply->elements % 2 == 0)
    {
        return 0;
    }

    for (i = 0; i < 5; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            return 0;
        }
    }

    /* after "code" and "campaign", only the limits' "_" pairs: no replay */

    for (i = 5; i < reply->elements; i += 2) {
        el = reply->element[i];

        if (el->type != REDIS_REPLY_STRING || el->len == 0
            || el->str[0] != '_')
        {
            return 0;
        }
    }

    if (reply->element[1]->len != 4
        || ngx_strncmp(reply->element[1]->str, "code", 4) != 0
        || reply->element[3]->len != 8
        || ngx_strncmp(reply->element[3]->str, "campaign", 8) != 0)
    {
        return 0;
    }

    el = reply->element[0];

    for (n = 1; n < 4; n++) {
        if (el->len == ngx_http_voucher_hot_reasons[n].len
            && ngx_strncmp(el->str, ngx_http_voucher_hot_reasons[n].data,
                           el->len)
               == 0)
        {
            return n;
        }
    }

    return 0;
}


/* Redis answered this request: a refusal the cache keeps is learned */

void
ngx_http_voucher_hot_learn(ngx_http_voucher_core_t *core, void *data)
{
    redisReply  *reply = data;

    u_char                        *key;
    size_t                         len, n, i;
    uint32_t                       hash;
    ngx_uint_t                     reason;
    redisReply                    *code, *camp;
    ngx_rbtree_node_t             *node;
    ngx_http_voucher_hot_ctx_t    *ctx;
    ngx_http_voucher_hot_node_t   *hn;
    ngx_http_voucher_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(core->request,
                                         ngx_http_voucher_module);

    if (vmcf->hot_zone == NULL || core->guess || core->code.len == 0) {
        return;
    }

    reason = ngx_http_voucher_hot_reason(reply);
    if (reason == 0) {
        return;
    }

    code = reply->element[2];
    camp = reply->element[4];

    /* the answer is of this request's code, as nginx normalised it */

    if (code->len != core->code.len
        || ngx_strncmp(code->str, core->code.data, code->len) != 0
        || camp->len == 0 || camp->len > NGX_HTTP_VOUCHER_HOT_CAMPAIGN_MAX)
    {
        return;
    }

    key = ngx_http_voucher_hot_key(core, &len);
    if (key == NULL) {
        return;
    }

    hash = ngx_crc32_short(key, len);
    ctx = vmcf->hot_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    hn = ngx_http_voucher_hot_find(ctx, key, len, hash);

    if (hn) {
        ngx_http_voucher_hot_delete(ctx, hn);
    }

    n = offsetof(ngx_rbtree_node_t, color)
        + offsetof(ngx_http_voucher_hot_node_t, data) + len + camp->len;

    node = ngx_slab_alloc_locked(ctx->shpool, n);

    /* full: the oldest entries make room */

    for (i = 0; node == NULL && i < 16 && !ngx_queue_empty(&ctx->sh->queue);
         i++)
    {
        hn = ngx_queue_data(ngx_queue_last(&ctx->sh->queue),
                            ngx_http_voucher_hot_node_t, queue);
        ngx_http_voucher_hot_delete(ctx, hn);

        node = ngx_slab_alloc_locked(ctx->shpool, n);
    }

    if (node == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        ngx_log_error(NGX_LOG_WARN, core->request->connection->log, 0,
                      "voucher: voucher_hot_cache is full");
        return;
    }

    hn = (ngx_http_voucher_hot_node_t *) &node->color;

    node->key = hash;
    hn->reason = (u_char) reason;
    hn->len = (u_short) len;
    hn->camp_len = (u_short) camp->len;
    hn->until = ngx_http_voucher_hot_now() + ctx->time;

    /*
     * A budget's refusal holds for orders as large sent without items: the
     * discount grows with the amount, or Redis refuses them for want of
     * items (items_required, free_item_missing).
     */
    hn->amount = core->amount;

    ngx_memcpy(hn->data, key, len);
    ngx_memcpy(hn->data + len, camp->str, camp->len);

    ngx_rbtree_insert(&ctx->sh->rbtree, node);
    ngx_queue_insert_head(&ctx->sh->queue, &hn->queue);
    ctx->sh->n++;

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}
