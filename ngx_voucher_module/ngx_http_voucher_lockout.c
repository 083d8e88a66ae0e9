
/*
 * Copyright (C) ngx_voucher authors
 *
 * The lockout cache (voucher_lockout_cache): a key that Redis said is
 * locked out is remembered in shared memory until its ban ends, so that
 * every worker of this nginx refuses it at once, without a Redis call.
 * Redis stays the truth: a node learns a ban from Redis' own refusal, and
 * forgets it when the ban's time is up.
 */


#include "ngx_http_voucher.h"


typedef struct {
    ngx_rbtree_t                  rbtree;
    ngx_rbtree_node_t             sentinel;
    ngx_queue_t                   queue;      /* least recently banned last */
} ngx_http_voucher_lockout_sh_t;


typedef struct {
    ngx_http_voucher_lockout_sh_t  *sh;
    ngx_slab_pool_t                *shpool;
} ngx_http_voucher_lockout_ctx_t;


/*
 * the node's key: "STORE\0NS\0NAME\0KEY" in data, as the rbtree's value its
 * crc32
 */
typedef struct {
    u_char                        color;
    u_char                        dummy;
    u_short                       len;
    ngx_queue_t                   queue;
    uint64_t                      until;      /* unix ms */
    u_char                        data[1];
} ngx_http_voucher_lockout_node_t;


static ngx_int_t ngx_http_voucher_lockout_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_voucher_lockout_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_voucher_lockout_node_t *ngx_http_voucher_lockout_find(
    ngx_http_voucher_lockout_ctx_t *ctx, u_char *key, size_t len,
    uint32_t hash);
static size_t ngx_http_voucher_lockout_key(u_char *buf,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_str_t *name, ngx_str_t *key);
static uint64_t ngx_http_voucher_lockout_now(void);


/*
 * The longest key kept: store name (at most 32), namespace (at most 64),
 * limit name (at most 32, or a position) and the limit's key as Redis
 * keeps it, whole or its digest.
 */
#define NGX_HTTP_VOUCHER_LOCKOUT_KEY_LEN                                     \
    (32 + 1 + 64 + 1 + 64 + 1 + NGX_HTTP_VOUCHER_LIMIT_KEY_LEN)


/* voucher_lockout_cache SIZE; (http) */

char *
ngx_http_voucher_lockout_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_voucher_main_conf_t *vmcf = conf;

    ssize_t                          size;
    ngx_str_t                       *value, name;
    ngx_shm_zone_t                  *zone;
    ngx_http_voucher_lockout_ctx_t  *ctx;

    if (vmcf->lockout_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid size \"%V\" of \"voucher_lockout_cache\","
                           " it must be at least %uzk", &value[1],
                           8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_voucher_lockout_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&name, "voucher_lockout_cache");

    zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_voucher_module);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->init = ngx_http_voucher_lockout_init_zone;
    zone->data = ctx;

    vmcf->lockout_zone = zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_voucher_lockout_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_voucher_lockout_ctx_t  *octx = data;

    ngx_http_voucher_lockout_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* a reload: the bans already learned stay */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool,
                             sizeof(ngx_http_voucher_lockout_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_voucher_lockout_insert_value);

    ngx_queue_init(&ctx->sh->queue);

    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_voucher_lockout_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t                **p;
    ngx_http_voucher_lockout_node_t   *ln, *lnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            ln = (ngx_http_voucher_lockout_node_t *) &node->color;
            lnt = (ngx_http_voucher_lockout_node_t *) &temp->color;

            p = (ngx_memn2cmp(ln->data, lnt->data, ln->len, lnt->len) < 0)
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

static ngx_http_voucher_lockout_node_t *
ngx_http_voucher_lockout_find(ngx_http_voucher_lockout_ctx_t *ctx,
    u_char *key, size_t len, uint32_t hash)
{
    ngx_int_t                         rc;
    ngx_rbtree_node_t                *node, *sentinel;
    ngx_http_voucher_lockout_node_t  *ln;

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

        ln = (ngx_http_voucher_lockout_node_t *) &node->color;

        rc = ngx_memn2cmp(key, ln->data, len, (size_t) ln->len);

        if (rc == 0) {
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_voucher_lockout_delete(ngx_http_voucher_lockout_ctx_t *ctx,
    ngx_http_voucher_lockout_node_t *ln)
{
    ngx_rbtree_node_t  *node;

    node = (ngx_rbtree_node_t *)
               ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));

    ngx_queue_remove(&ln->queue);
    ngx_rbtree_delete(&ctx->sh->rbtree, node);
    ngx_slab_free_locked(ctx->shpool, node);
}


/*
 * A ban is of a store, a namespace, a limit and a key, as Redis keeps it
 * (key is what ngx_http_voucher_limit_key() made).  The configuration
 * bounds the store's name, the namespace and the name, so nothing is cut.
 */

static size_t
ngx_http_voucher_lockout_key(u_char *buf, ngx_http_voucher_loc_conf_t *vlcf,
    ngx_str_t *name, ngx_str_t *key)
{
    u_char  *p;

    p = ngx_cpymem(buf, vlcf->store->name.data,
                   ngx_min(vlcf->store->name.len, 32));
    *p++ = '\0';
    p = ngx_cpymem(p, vlcf->ns.data, ngx_min(vlcf->ns.len, 64));
    *p++ = '\0';
    p = ngx_cpymem(p, name->data, ngx_min(name->len, 64));
    *p++ = '\0';
    p = ngx_cpymem(p, key->data,
                   ngx_min(key->len, NGX_HTTP_VOUCHER_LIMIT_KEY_LEN));

    return p - buf;
}


static uint64_t
ngx_http_voucher_lockout_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/*
 * Is a lockout of this request's location in force here for one of its
 * keys?  Returns NGX_OK with the limit's name and the milliseconds left,
 * or NGX_DECLINED.  Only lockouts in scope of op, as Redis would check.
 */

ngx_int_t
ngx_http_voucher_lockout_check(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_int_t op, ngx_str_t *name,
    int64_t *left)
{
    u_char                             buf[NGX_HTTP_VOUCHER_LOCKOUT_KEY_LEN];
    u_char                             kbuf[NGX_HTTP_VOUCHER_LIMIT_KEY_LEN];
    size_t                             len;
    uint32_t                           hash;
    uint64_t                           now;
    ngx_str_t                          key;
    ngx_uint_t                         i;
    ngx_http_voucher_limit_info_t      info;
    ngx_http_voucher_lockout_ctx_t    *ctx;
    ngx_http_voucher_lockout_node_t   *ln;
    ngx_http_voucher_main_conf_t      *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_voucher_module);

    if (vmcf->lockout_zone == NULL || vlcf->limits == NULL
        || vlcf->limit_dry_run)
    {
        return NGX_DECLINED;
    }

    ctx = vmcf->lockout_zone->data;
    now = ngx_http_voucher_lockout_now();

    for (i = 0; ngx_http_voucher_limit_lockout(vlcf, i, op, &info); i++) {

        if (info.name.len == 0) {
            continue;
        }

        if (ngx_http_voucher_limit_key(r, info.key, kbuf, &key) != NGX_OK) {
            return NGX_DECLINED;
        }

        if (key.len == 0) {
            continue;
        }

        len = ngx_http_voucher_lockout_key(buf, vlcf, &info.name, &key);
        hash = ngx_crc32_short(buf, len);

        ngx_shmtx_lock(&ctx->shpool->mutex);

        ln = ngx_http_voucher_lockout_find(ctx, buf, len, hash);

        if (ln && ln->until <= now) {
            ngx_http_voucher_lockout_delete(ctx, ln);
            ln = NULL;
        }

        if (ln) {
            *left = (int64_t) (ln->until - now);
            ngx_shmtx_unlock(&ctx->shpool->mutex);

            *name = info.name;
            return NGX_OK;
        }

        ngx_shmtx_unlock(&ctx->shpool->mutex);
    }

    return NGX_DECLINED;
}


/*
 * Redis refused this request as locked out by the limit "name", for ms
 * more milliseconds: remember its key until the ban ends.
 */

void
ngx_http_voucher_lockout_learn(ngx_http_request_t *r,
    ngx_http_voucher_loc_conf_t *vlcf, ngx_int_t op, ngx_str_t *name,
    int64_t ms)
{
    u_char                            buf[NGX_HTTP_VOUCHER_LOCKOUT_KEY_LEN];
    u_char                            kbuf[NGX_HTTP_VOUCHER_LIMIT_KEY_LEN];
    size_t                            len, i, n;
    uint32_t                          hash;
    ngx_str_t                         key;
    ngx_uint_t                        j;
    ngx_rbtree_node_t                *node;
    ngx_http_voucher_limit_info_t     info;
    ngx_http_voucher_lockout_ctx_t   *ctx;
    ngx_http_voucher_lockout_node_t  *ln;
    ngx_http_voucher_main_conf_t     *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_voucher_module);

    if (vmcf->lockout_zone == NULL) {
        return;
    }

    /* the key of that limit, as this request computed it */

    for (j = 0; ngx_http_voucher_limit_lockout(vlcf, j, op, &info); j++) {
        if (info.name.len == name->len
            && ngx_strncmp(info.name.data, name->data, name->len) == 0)
        {
            break;
        }
    }

    if (info.name.len == 0 || info.key == NULL
        || ngx_http_voucher_limit_key(r, info.key, kbuf, &key) != NGX_OK
        || key.len == 0)
    {
        return;
    }

    len = ngx_http_voucher_lockout_key(buf, vlcf, &info.name, &key);
    hash = ngx_crc32_short(buf, len);

    ctx = vmcf->lockout_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ln = ngx_http_voucher_lockout_find(ctx, buf, len, hash);

    if (ln) {
        ngx_http_voucher_lockout_delete(ctx, ln);
    }

    n = offsetof(ngx_rbtree_node_t, color)
        + offsetof(ngx_http_voucher_lockout_node_t, data) + len;

    node = ngx_slab_alloc_locked(ctx->shpool, n);

    /* full: the oldest bans make room */

    for (i = 0; node == NULL && i < 16 && !ngx_queue_empty(&ctx->sh->queue);
         i++)
    {
        ln = ngx_queue_data(ngx_queue_last(&ctx->sh->queue),
                            ngx_http_voucher_lockout_node_t, queue);
        ngx_http_voucher_lockout_delete(ctx, ln);

        node = ngx_slab_alloc_locked(ctx->shpool, n);
    }

    if (node == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "voucher: voucher_lockout_cache is full");
        return;
    }

    ln = (ngx_http_voucher_lockout_node_t *) &node->color;

    node->key = hash;
    ln->len = (u_short) len;
    ln->until = ngx_http_voucher_lockout_now() + (uint64_t) ms;
    ngx_memcpy(ln->data, buf, len);

    ngx_rbtree_insert(&ctx->sh->rbtree, node);
    ngx_queue_insert_head(&ctx->sh->queue, &ln->queue);

    ngx_shmtx_unlock(&ctx->shpool->mutex);
    ngx_http_voucher_metrics_count(NGX_HTTP_VOUCHER_M_LOCKOUT_LEARNED, 0);
}


/* the bans in force, for voucher_metrics: a scrape, not the request path */

ngx_uint_t
ngx_http_voucher_lockout_entries(ngx_http_voucher_main_conf_t *vmcf)
{
    uint64_t                          now;
    ngx_uint_t                        n;
    ngx_queue_t                      *q;
    ngx_http_voucher_lockout_ctx_t   *ctx;
    ngx_http_voucher_lockout_node_t  *ln;

    if (vmcf->lockout_zone == NULL || vmcf->lockout_zone->data == NULL) {
        return 0;
    }

    ctx = vmcf->lockout_zone->data;
    now = ngx_http_voucher_lockout_now();
    n = 0;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    for (q = ngx_queue_head(&ctx->sh->queue);
         q != ngx_queue_sentinel(&ctx->sh->queue);
         q = ngx_queue_next(q))
    {
        ln = ngx_queue_data(q, ngx_http_voucher_lockout_node_t, queue);

        if (ln->until > now) {
            n++;
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return n;
}
