
/*
 * Copyright (C) ngx_voucher authors
 *
 * Redis, the nginx way: hiredis' async API driven by nginx's event loop.
 *
 * Each worker keeps "connections" contexts to Redis.  Requests in flight
 * share them and are pipelined; hiredis answers in FIFO order.  The
 * commands a context is given in one event-loop cycle go out in one
 * write(), from an event posted for the end of the cycle.  A context
 * is usable (READY) only once AUTH, SELECT, ROLE and the check of the
 * function library's version have passed; a missing or stale library is
 * replaced with FUNCTION LOAD REPLACE first, and only on a master.  A lost
 * context comes back after a back-off on a cancelable timer, so it never
 * holds a worker that exits.
 *
 * A node that is not the master, or not ready (a replica after a
 * failover, a restart loading its data), answers READONLY, LOADING,
 * MASTERDOWN or CLUSTERDOWN, and nothing ran: such a context takes no
 * new commands, is dropped once those in flight are answered, and is
 * made anew with a back-off of at most NGX_HTTP_VOUCHER_BACKOFF_UNREADY,
 * so writes resume soon after the address answers as a master again.
 *
 * Commands that arrive while no context is ready but one is on its way
 * (a new worker after a reload, a reconnect) wait in a queue, under their
 * own timeout, rather than fail: a HUP during a flash sale must not turn
 * the new workers' first requests into 503s.
 *
 * Replies are built in an arena of their context, not with one malloc()
 * per element: see ngx_http_voucher_reply_fn below.
 *
 * A store with replicas= has a pool of one context per replica besides
 * its own: validates without limits go there (ngx_http_voucher_redis_
 * send_read()) while its handshake and a check every second find the
 * replica's link to its master up ("INFO replication": master_link_status
 * up, no sync in progress) and its library of our version.  A replica is
 * never sent FUNCTION LOAD; one that fails a check is left alone until it
 * passes again, and the request goes to the master.
 *
 * Where Redis has the native module (redis/module, voucher.so) built from
 * the same library, a context sends the hot calls as its commands instead
 * of FCALL: see "the native module" below.
 */


#include "ngx_http_voucher.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "voucher_lua.h"


#define NGX_HTTP_VOUCHER_DOWN        0
#define NGX_HTTP_VOUCHER_CONNECTING  1
#define NGX_HTTP_VOUCHER_HANDSHAKE   2
#define NGX_HTTP_VOUCHER_READY       3

#define NGX_HTTP_VOUCHER_BACKOFF_MIN   100
#define NGX_HTTP_VOUCHER_BACKOFF_MAX   5000

/* a context's state as voucher_metrics' gauges name it */
#define ngx_http_voucher_conn_gauge(state)                                    \
    ((state) == NGX_HTTP_VOUCHER_READY ? NGX_HTTP_VOUCHER_M_CONN_UP          \
     : (state) == NGX_HTTP_VOUCHER_DOWN ? NGX_HTTP_VOUCHER_M_CONN_DOWN       \
     : NGX_HTTP_VOUCHER_M_CONN_CONNECTING)

/* requests waiting for a context, this worker's and in voucher_metrics */
#define ngx_http_voucher_waiting(pool, n)                                     \
    (pool)->nwaiting += (n);                                                 \
    ngx_http_voucher_metrics_store_add((pool)->conf,                         \
                                       NGX_HTTP_VOUCHER_M_WAITING, (n))

/* the longest back-off from a node that answers but cannot take writes */
#define NGX_HTTP_VOUCHER_BACKOFF_UNREADY  1000

/* a command up to this size is formatted on the stack */
#define NGX_HTTP_VOUCHER_COMMAND_SIZE  2048

/* replicas=sentinel: the most replicas a store reads from */
#define NGX_HTTP_VOUCHER_REPLICAS_MAX  16

/* holds a validate's or a redeem's reply, about 2 KB, several times over */
#define NGX_HTTP_VOUCHER_ARENA_SIZE    8192


/* under ASan a pointer kept into a freed reply is a use-after-poison */
#if defined(__SANITIZE_ADDRESS__)
#define ngx_http_voucher_poison(p, n)    ASAN_POISON_MEMORY_REGION(p, n)
#define ngx_http_voucher_unpoison(p, n)  ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ngx_http_voucher_poison(p, n)
#define ngx_http_voucher_unpoison(p, n)
#endif


typedef struct ngx_http_voucher_chunk_s  ngx_http_voucher_chunk_t;

/* an overflow chunk: malloc()ed, freed by the arena's next reset */
struct ngx_http_voucher_chunk_s {
    ngx_http_voucher_chunk_t  *next;
};


typedef struct {
    u_char                    *pos;
    u_char                    *end;
    u_char                    *start;     /* NGX_HTTP_VOUCHER_ARENA_SIZE */
    ngx_http_voucher_chunk_t  *chunks;
    ngx_log_t                 *log;
} ngx_http_voucher_arena_t;


/* a reply element, with the way back to its arena for freeObject() */
typedef struct {
    redisReply                 reply;
    ngx_http_voucher_arena_t  *arena;
} ngx_http_voucher_node_t;


typedef struct {
    redisAsyncContext         *ac;
    ngx_connection_t          *c;
    ngx_http_voucher_pool_t   *pool;
    ngx_uint_t                 state;
    ngx_uint_t                 pending;
    ngx_msec_t                 backoff;
    ngx_event_t                reconnect;
    ngx_event_t                connect_timer;
    ngx_event_t                flush;
    ngx_event_t                check;     /* a replica's, every second */
    ngx_uint_t                 skipped;   /* why not read from, hashed */
    ngx_http_voucher_arena_t   arena;

    /* durability=replicated: writes answered, waiting for their WAIT */
    ngx_queue_t                parked;
    ngx_uint_t                 batch_writes;  /* since the last WAIT */
    ngx_uint_t                 waits_sent;
    ngx_uint_t                 waits_answered;

    ngx_uint_t                 native;    /* NGX_HTTP_VOUCHER_NATIVE_* bits */
    unsigned                   loading:1;
    unsigned                   flushing:1;
    unsigned                   probed:1;
    unsigned                   unready:1;    /* not a master since ready */
    unsigned                   retiring:1;   /* dropped when pending is 0 */
    unsigned                   counted:1;    /* in voucher_metrics' gauges */
    unsigned                   counted_native:1;
} ngx_http_voucher_conn_t;


struct ngx_http_voucher_pool_s {
    ngx_http_voucher_store_t      *conf;
    ngx_log_t                     *log;

    /* where the contexts connect: the configured address, or Sentinel's */
    u_char                         host[NGX_SOCKADDR_STRLEN + 1];
    in_port_t                      port;
    ngx_http_voucher_sentinel_t   *sentinel;

    ngx_http_voucher_conn_t       *conns;
    ngx_uint_t                     nconns;
    ngx_uint_t                     next;
    ngx_uint_t                     ops;       /* ops allocated, for debug */
    ngx_queue_t                    waiting;
    ngx_uint_t                     nwaiting;

    /* a master's pools of its replicas, for reads */
    ngx_http_voucher_pool_t      **replicas;
    ngx_uint_t                     nreplicas;
    ngx_uint_t                     next_replica;

    unsigned                       addressed:1;  /* host and port known */
    unsigned                       exiting:1;
    unsigned                       replica:1;    /* a pool of a replica */
};


static ngx_http_voucher_pool_t *ngx_http_voucher_redis_pool(
    ngx_cycle_t *cycle, ngx_http_voucher_store_t *store);
static ngx_int_t ngx_http_voucher_redis_replicas(ngx_cycle_t *cycle,
    ngx_http_voucher_pool_t *pool);
static ngx_http_voucher_pool_t *ngx_http_voucher_redis_replica_add(
    ngx_pool_t *cpool, ngx_http_voucher_pool_t *pool, ngx_str_t *text,
    u_char *host, in_port_t port);
static void ngx_http_voucher_redis_replica_found(void *data, u_char *host,
    in_port_t port);
static ngx_int_t ngx_http_voucher_redis_replica_info(
    ngx_http_voucher_conn_t *conn);
static void ngx_http_voucher_redis_replica_info_reply(redisAsyncContext *ac,
    void *r, void *data);
static const char *ngx_http_voucher_redis_replica_state(redisReply *reply);
static void ngx_http_voucher_redis_replica_check(ngx_event_t *ev);
static void ngx_http_voucher_redis_replica_version_reply(
    redisAsyncContext *ac, void *r, void *data);
static void ngx_http_voucher_redis_replica_skip(ngx_http_voucher_conn_t *conn,
    const char *why);
static void ngx_http_voucher_redis_state(ngx_http_voucher_conn_t *conn,
    ngx_uint_t state);
static void ngx_http_voucher_redis_native_gauge(
    ngx_http_voucher_conn_t *conn);
static void ngx_http_voucher_redis_uncount(ngx_http_voucher_conn_t *conn);


/*
 * the library functions the native module may answer (as VOUCHER.VERSION
 * names them), the versioned names nginx calls them by, and the commands
 */
typedef struct {
    ngx_str_t                  fn;
    ngx_str_t                  call;
    ngx_str_t                  cmd;
} ngx_http_voucher_native_fn_t;


#define ngx_http_voucher_native_fn(name)                                     \
    { ngx_string("voucher_" name), ngx_string(VOUCHER_FN("voucher_" name)),  \
      ngx_string("voucher." name) }

static ngx_http_voucher_native_fn_t  ngx_http_voucher_native_fns[] = {
    ngx_http_voucher_native_fn("validate"),
    ngx_http_voucher_native_fn("validate_limited"),
    ngx_http_voucher_native_fn("guess"),
    ngx_http_voucher_native_fn("redeem"),
    ngx_http_voucher_native_fn("reserve"),
    ngx_http_voucher_native_fn("confirm"),
    ngx_http_voucher_native_fn("release"),
    ngx_http_voucher_native_fn("rollback"),
    { ngx_null_string, ngx_null_string, ngx_null_string }
};


static void ngx_http_voucher_redis_connect(ngx_http_voucher_conn_t *conn);
static void ngx_http_voucher_redis_master(void *data, u_char *host,
    in_port_t port);
static void ngx_http_voucher_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_voucher_redis_handshake(ngx_http_voucher_conn_t *conn);
static void ngx_http_voucher_redis_handshake_reply(redisAsyncContext *ac,
    void *r, void *data);
static void ngx_http_voucher_redis_role_reply(redisAsyncContext *ac,
    void *r, void *data);
static void ngx_http_voucher_redis_version_reply(redisAsyncContext *ac,
    void *r, void *data);
static ngx_int_t ngx_http_voucher_redis_role(ngx_http_voucher_conn_t *conn);
static ngx_uint_t ngx_http_voucher_redis_is_unready(redisReply *reply);
static void ngx_http_voucher_redis_not_writable(ngx_http_voucher_conn_t *conn,
    const char *what);
static void ngx_http_voucher_redis_load_reply(redisAsyncContext *ac,
    void *r, void *data);
static ngx_int_t ngx_http_voucher_redis_load(ngx_http_voucher_conn_t *conn);
static void ngx_http_voucher_redis_primary_reply(redisAsyncContext *ac,
    void *r, void *data);
static ngx_str_t *ngx_http_voucher_redis_lua_own(void);
static void ngx_http_voucher_redis_drop(ngx_http_voucher_conn_t *conn,
    const char *why);
static void ngx_http_voucher_redis_schedule(ngx_http_voucher_conn_t *conn);
static void ngx_http_voucher_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_voucher_redis_connect_timeout(ngx_event_t *ev);
static void ngx_http_voucher_redis_reply(redisAsyncContext *ac, void *r,
    void *data);
static void ngx_http_voucher_redis_op_timeout(ngx_event_t *ev);
static ngx_int_t ngx_http_voucher_redis_park(ngx_http_voucher_conn_t *conn,
    ngx_http_voucher_op_t *op, redisReply *reply);
static void ngx_http_voucher_redis_wait(ngx_http_voucher_conn_t *conn);
static void ngx_http_voucher_redis_wait_reply(redisAsyncContext *ac,
    void *r, void *data);
static void ngx_http_voucher_redis_unpark(ngx_http_voucher_conn_t *conn,
    ngx_http_voucher_op_t *op, ngx_int_t rc);
static void ngx_http_voucher_redis_after(ngx_http_voucher_conn_t *conn);
static redisReply *ngx_http_voucher_reply_copy(redisReply *reply,
    ngx_log_t *log);
static size_t ngx_http_voucher_reply_size(redisReply *r);
static u_char *ngx_http_voucher_reply_fill(redisReply *dst, redisReply *src,
    u_char *p);
static void ngx_http_voucher_redis_free_op(ngx_http_voucher_op_t *op);
static ngx_int_t ngx_http_voucher_redis_submit(ngx_http_voucher_conn_t *conn,
    ngx_http_voucher_op_t *op);
static ngx_int_t ngx_http_voucher_redis_command(ngx_http_voucher_conn_t *conn,
    redisCallbackFn *fn, void *privdata, int argc, const char **argv,
    const size_t *argvlen);
static ngx_int_t ngx_http_voucher_redis_command_as(
    ngx_http_voucher_conn_t *conn, redisCallbackFn *fn, void *privdata,
    const char *name, int argc, const char **argv, const size_t *argvlen);
static u_char *ngx_http_voucher_redis_decimal(u_char *p, size_t n);
static ngx_int_t ngx_http_voucher_native_probe(ngx_http_voucher_conn_t *conn);
static void ngx_http_voucher_native_reply(redisAsyncContext *ac, void *r,
    void *data);
static ngx_int_t ngx_http_voucher_native_lost(ngx_http_voucher_conn_t *conn,
    ngx_http_voucher_op_t *op, redisReply *reply);
static void ngx_http_voucher_redis_ready(ngx_http_voucher_conn_t *conn);
static void ngx_http_voucher_redis_drain(ngx_http_voucher_conn_t *conn);
static void ngx_http_voucher_redis_fail_waiting(
    ngx_http_voucher_pool_t *pool, ngx_int_t rc);

static void ngx_http_voucher_redis_add_read(void *data);
static void ngx_http_voucher_redis_del_read(void *data);
static void ngx_http_voucher_redis_add_write(void *data);
static void ngx_http_voucher_redis_del_write(void *data);
static void ngx_http_voucher_redis_cleanup(void *data);
static void ngx_http_voucher_redis_read_handler(ngx_event_t *ev);
static void ngx_http_voucher_redis_write_handler(ngx_event_t *ev);
static void ngx_http_voucher_redis_flush_handler(ngx_event_t *ev);
static void ngx_http_voucher_redis_flush(ngx_http_voucher_conn_t *conn);

static void *ngx_http_voucher_arena_alloc(ngx_http_voucher_arena_t *a,
    size_t size);
static void ngx_http_voucher_arena_reset(ngx_http_voucher_arena_t *a);
static ngx_http_voucher_node_t *ngx_http_voucher_reply_node(
    const redisReadTask *task, size_t extra);
static void *ngx_http_voucher_reply_string(const redisReadTask *task,
    char *str, size_t len);
static void *ngx_http_voucher_reply_array(const redisReadTask *task,
    int elements);
static void *ngx_http_voucher_reply_integer(const redisReadTask *task,
    long long value);
static void *ngx_http_voucher_reply_nil(const redisReadTask *task);
static void ngx_http_voucher_reply_free(void *reply);


static redisReplyObjectFunctions  ngx_http_voucher_reply_fn = {
    ngx_http_voucher_reply_string,
    ngx_http_voucher_reply_array,
    ngx_http_voucher_reply_integer,
    ngx_http_voucher_reply_nil,
    ngx_http_voucher_reply_free
};


ngx_int_t
ngx_http_voucher_redis_init_worker(ngx_cycle_t *cycle,
    ngx_http_voucher_store_t *store)
{
    ngx_uint_t                i, j;
    ngx_http_voucher_pool_t  *pool;

    pool = ngx_http_voucher_redis_pool(cycle, store);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    store->pool = pool;

    if ((store->replicas || store->replicas_sentinel)
        && ngx_http_voucher_redis_replicas(cycle, pool) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (store->sentinels) {
        /* the contexts connect once Sentinel names the master */
        pool->sentinel = ngx_http_voucher_sentinel_start(cycle, store,
                                            ngx_http_voucher_redis_master,
                                            pool);
        if (pool->sentinel == NULL) {
            return NGX_ERROR;
        }

        if (store->replicas_sentinel) {
            ngx_http_voucher_sentinel_watch_replicas(pool->sentinel,
                                        ngx_http_voucher_redis_replica_found);
        }
    }

    for (i = 0; i < pool->nconns; i++) {
        ngx_http_voucher_redis_connect(&pool->conns[i]);
    }

    for (j = 0; j < pool->nreplicas; j++) {
        for (i = 0; i < pool->replicas[j]->nconns; i++) {
            ngx_http_voucher_redis_connect(&pool->replicas[j]->conns[i]);
        }
    }

    return NGX_OK;
}


static ngx_http_voucher_pool_t *
ngx_http_voucher_redis_pool(ngx_cycle_t *cycle,
    ngx_http_voucher_store_t *store)
{
    ngx_uint_t                i;
    ngx_http_voucher_pool_t  *pool;
    ngx_http_voucher_conn_t  *conn;

    pool = ngx_pcalloc(cycle->pool, sizeof(ngx_http_voucher_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->conns = ngx_pcalloc(cycle->pool,
                        store->connections * sizeof(ngx_http_voucher_conn_t));
    if (pool->conns == NULL) {
        return NULL;
    }

    pool->conf = store;
    pool->log = cycle->log;
    pool->nconns = store->connections;
    ngx_queue_init(&pool->waiting);

    if (store->host.len) {
        ngx_memcpy(pool->host, store->host.data, store->host.len + 1);
        pool->port = store->port;
        pool->addressed = 1;
    }

    if (store->unix_path.len) {
        pool->addressed = 1;
    }

    for (i = 0; i < pool->nconns; i++) {
        conn = &pool->conns[i];

        conn->pool = pool;
        conn->backoff = NGX_HTTP_VOUCHER_BACKOFF_MIN;
        ngx_queue_init(&conn->parked);

        conn->reconnect.handler = ngx_http_voucher_redis_reconnect_handler;
        conn->reconnect.data = conn;
        conn->reconnect.log = cycle->log;
        conn->reconnect.cancelable = 1;

        conn->connect_timer.handler = ngx_http_voucher_redis_connect_timeout;
        conn->connect_timer.data = conn;
        conn->connect_timer.log = cycle->log;
        conn->connect_timer.cancelable = 1;

        conn->flush.handler = ngx_http_voucher_redis_flush_handler;
        conn->flush.data = conn;
        conn->flush.log = cycle->log;

        conn->check.handler = ngx_http_voucher_redis_replica_check;
        conn->check.data = conn;
        conn->check.log = cycle->log;
        conn->check.cancelable = 1;

        /* ngx_alloc(), not the cycle's pool: its pages get poisoned */

        conn->arena.start = ngx_alloc(NGX_HTTP_VOUCHER_ARENA_SIZE,
                                      cycle->log);
        if (conn->arena.start == NULL) {
            return NULL;
        }

        conn->arena.log = cycle->log;
        ngx_http_voucher_arena_reset(&conn->arena);

        conn->counted = 1;
        ngx_http_voucher_metrics_conn(store, 0, NGX_HTTP_VOUCHER_M_CONN_NONE,
                                      NGX_HTTP_VOUCHER_M_CONN_DOWN);
    }

    return pool;
}


/*
 * The replicas' pools: one for each of replicas=HOST:PORT,..., or room for
 * NGX_HTTP_VOUCHER_REPLICAS_MAX that Sentinel names (replicas=sentinel).
 */

static ngx_int_t
ngx_http_voucher_redis_replicas(ngx_cycle_t *cycle,
    ngx_http_voucher_pool_t *pool)
{
    ngx_uint_t                 i, n;
    ngx_http_voucher_addr_t   *addr;
    ngx_http_voucher_store_t  *store;

    store = pool->conf;
    n = store->replicas ? store->replicas->nelts
                        : NGX_HTTP_VOUCHER_REPLICAS_MAX;

    pool->replicas = ngx_pcalloc(cycle->pool,
                                 n * sizeof(ngx_http_voucher_pool_t *));
    if (pool->replicas == NULL) {
        return NGX_ERROR;
    }

    if (store->replicas == NULL) {
        /* filled as Sentinel names them */
        return NGX_OK;
    }

    addr = store->replicas->elts;

    for (i = 0; i < n; i++) {
        if (ngx_http_voucher_redis_replica_add(cycle->pool, pool, &addr[i].text,
                                               addr[i].host.data,
                                               addr[i].port)
            == NULL)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A pool of one context for a replica, with the store's credentials and
 * timeouts, named in logs "NAME replica HOST:PORT"; host is numeric and
 * NUL-ended.
 */

static ngx_http_voucher_pool_t *
ngx_http_voucher_redis_replica_add(ngx_pool_t *cpool,
    ngx_http_voucher_pool_t *pool, ngx_str_t *text, u_char *host,
    in_port_t port)
{
    u_char                    *p;
    ngx_http_voucher_pool_t   *rp;
    ngx_http_voucher_store_t  *store, *rs;

    store = pool->conf;

    rs = ngx_palloc(cpool, sizeof(ngx_http_voucher_store_t));
    if (rs == NULL) {
        return NULL;
    }

    *rs = *store;

    p = ngx_pnalloc(cpool, store->addr_text.len + sizeof(" replica ") - 1
                           + text->len + 1 + NGX_SOCKADDR_STRLEN + 1);
    if (p == NULL) {
        return NULL;
    }

    rs->addr_text.data = p;
    rs->addr_text.len = ngx_sprintf(p, "%V replica %V", &store->addr_text,
                                    text)
                        - p;

    /* the host, NUL-ended, after the text */
    rs->host.data = p + rs->addr_text.len + 1;
    rs->host.len = ngx_strlen(host);
    ngx_memcpy(rs->host.data, host, rs->host.len + 1);

    rs->port = port;
    ngx_str_null(&rs->unix_path);
    rs->connections = 1;
    rs->replicated = 0;
    rs->sentinels = NULL;
    rs->replicas = NULL;
    rs->replicas_sentinel = 0;
    rs->pool = NULL;

    rp = ngx_http_voucher_redis_pool((ngx_cycle_t *) ngx_cycle, rs);
    if (rp == NULL) {
        return NULL;
    }

    rp->replica = 1;
    rs->pool = rp;

    /* counted as a master's by ngx_http_voucher_redis_pool() */
    ngx_http_voucher_metrics_conn(rs, 0, NGX_HTTP_VOUCHER_M_CONN_DOWN,
                                  NGX_HTTP_VOUCHER_M_CONN_NONE);
    ngx_http_voucher_metrics_conn(rs, 1, NGX_HTTP_VOUCHER_M_CONN_NONE,
                                  NGX_HTTP_VOUCHER_M_CONN_DOWN);
    pool->replicas[pool->nreplicas++] = rp;

    return rp;
}


/*
 * replicas=sentinel: Sentinel names a replica of the master.  A new one
 * gets a pool (up to NGX_HTTP_VOUCHER_REPLICAS_MAX; beyond, the pool of a
 * replica not ready is given the new address).  One that does not answer,
 * or is the master now, is skipped by its checks.
 */

static void
ngx_http_voucher_redis_replica_found(void *data, u_char *host,
    in_port_t port)
{
    ngx_http_voucher_pool_t *pool = data;

    u_char                    *p;
    ngx_str_t                  text;
    ngx_uint_t                 i;
    ngx_http_voucher_pool_t   *rp;
    ngx_http_voucher_conn_t   *conn;
    u_char                     buf[NGX_SOCKADDR_STRLEN + sizeof(":65535")];

    if (pool->exiting) {
        return;
    }

    for (i = 0; i < pool->nreplicas; i++) {
        rp = pool->replicas[i];

        if (rp->port == port && ngx_strcmp(rp->host, host) == 0) {
            return;
        }
    }

    text.data = buf;
    text.len = ngx_sprintf(buf, "%s:%d", host, (int) port) - buf;

    if (pool->nreplicas < NGX_HTTP_VOUCHER_REPLICAS_MAX) {
        rp = ngx_http_voucher_redis_replica_add(ngx_cycle->pool, pool, &text,
                                                host, port);
        if (rp == NULL) {
            return;
        }

    } else {
        rp = NULL;

        for (i = 0; i < pool->nreplicas; i++) {
            conn = &pool->replicas[i]->conns[0];

            if (conn->state != NGX_HTTP_VOUCHER_READY && !conn->pending) {
                rp = pool->replicas[i];
                break;
            }
        }

        if (rp == NULL) {
            return;
        }

        conn = &rp->conns[0];

        if (conn->ac) {
            ngx_http_voucher_redis_drop(conn, NULL);
        }

        p = ngx_pnalloc(ngx_cycle->pool, pool->conf->addr_text.len
                                         + sizeof(" replica ") - 1
                                         + text.len);
        if (p == NULL) {
            return;
        }

        rp->conf->addr_text.len = ngx_sprintf(p, "%V replica %V",
                                              &pool->conf->addr_text, &text)
                                  - p;
        rp->conf->addr_text.data = p;
        ngx_memcpy(rp->host, host, ngx_strlen(host) + 1);
        rp->port = port;
    }

    ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                  "voucher: redis %V: Sentinel names replica %V",
                  &pool->conf->addr_text, &text);

    conn = &rp->conns[0];

    if (conn->reconnect.timer_set) {
        ngx_del_timer(&conn->reconnect);
    }

    conn->backoff = NGX_HTTP_VOUCHER_BACKOFF_MIN;
    conn->unready = 0;

    if (conn->ac == NULL) {
        ngx_http_voucher_redis_connect(conn);
    }
}


void
ngx_http_voucher_redis_exit_worker(ngx_http_voucher_store_t *store)
{
    ngx_uint_t                i;
    ngx_queue_t              *q;
    ngx_http_voucher_op_t    *op;
    ngx_http_voucher_pool_t  *pool;
    ngx_http_voucher_conn_t  *conn;

    pool = store->pool;

    for (i = 0; i < pool->nreplicas; i++) {
        ngx_http_voucher_redis_exit_worker(pool->replicas[i]->conf);
    }

    /* replies still pending are dropped, their requests are gone */

    pool->exiting = 1;

    if (pool->sentinel) {
        ngx_http_voucher_sentinel_stop(pool->sentinel);
        pool->sentinel = NULL;
    }

    while (!ngx_queue_empty(&pool->waiting)) {
        q = ngx_queue_head(&pool->waiting);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_voucher_op_t, queue);

        if (op->timer.timer_set) {
            ngx_del_timer(&op->timer);
        }

        ngx_http_voucher_redis_free_op(op);
    }

    ngx_http_voucher_metrics_store_add(pool->conf, NGX_HTTP_VOUCHER_M_WAITING,
                                       - (ngx_int_t) pool->nwaiting);
    pool->nwaiting = 0;

    for (i = 0; i < pool->nconns; i++) {
        conn = &pool->conns[i];

        if (conn->reconnect.timer_set) {
            ngx_del_timer(&conn->reconnect);
        }

        if (conn->connect_timer.timer_set) {
            ngx_del_timer(&conn->connect_timer);
        }

        if (conn->check.timer_set) {
            ngx_del_timer(&conn->check);
        }

        if (conn->ac) {
            ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_DOWN);
            redisAsyncFree(conn->ac);
        }

        /* no reader is left to use the arena */

        if (conn->arena.start) {
            ngx_http_voucher_arena_reset(&conn->arena);
            ngx_http_voucher_unpoison(conn->arena.start,
                                      NGX_HTTP_VOUCHER_ARENA_SIZE);
            ngx_free(conn->arena.start);
            conn->arena.start = NULL;
        }

        ngx_http_voucher_redis_uncount(conn);
    }

    store->pool = NULL;
}


static void
ngx_http_voucher_redis_connect(ngx_http_voucher_conn_t *conn)
{
    ngx_connection_t          *c;
    redisAsyncContext         *ac;
    ngx_http_voucher_pool_t   *pool;
    ngx_http_voucher_store_t  *vmcf;

    pool = conn->pool;
    vmcf = pool->conf;

    if (!pool->addressed) {
        /* Sentinel has not named the master yet: it wakes this context */
        ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_DOWN);
        return;
    }

    if (vmcf->unix_path.len) {
        ac = redisAsyncConnectUnix((char *) vmcf->unix_path.data);

    } else {
        /* a numeric address: hiredis' getaddrinfo() does no lookup */
        ac = redisAsyncConnect((char *) pool->host, pool->port);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                      "voucher: redis %V: out of memory", &vmcf->addr_text);
        ngx_http_voucher_redis_schedule(conn);
        return;
    }

    if (ac->err) {
        ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                      "voucher: redis %V: connect failed: %s",
                      &vmcf->addr_text, ac->errstr);
        redisAsyncFree(ac);
        ngx_http_voucher_redis_schedule(conn);
        return;
    }

    /*
     * Our reply builders, before anything is read.  The reader of the
     * context before this one is gone: its reply, if it had one half
     * read, was freed (and the arena reset) with it.
     */

    ngx_http_voucher_arena_reset(&conn->arena);

    ac->c.reader->fn = &ngx_http_voucher_reply_fn;
    ac->c.reader->privdata = &conn->arena;

    c = ngx_get_connection(ac->c.fd, conn->pool->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_voucher_redis_schedule(conn);
        return;
    }

    c->data = conn;
    c->read->handler = ngx_http_voucher_redis_read_handler;
    c->write->handler = ngx_http_voucher_redis_write_handler;
    c->read->log = conn->pool->log;
    c->write->log = conn->pool->log;

    conn->ac = ac;
    conn->c = c;
    ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_CONNECTING);
    conn->pending = 0;
    conn->loading = 0;
    conn->flushing = 0;
    conn->retiring = 0;
    conn->batch_writes = 0;
    conn->waits_sent = 0;
    conn->waits_answered = 0;
    conn->probed = 0;
    conn->native = 0;

    ac->data = conn;

    /* hooks first: setting the connect callback already adds a write */

    ac->ev.data = conn;
    ac->ev.addRead = ngx_http_voucher_redis_add_read;
    ac->ev.delRead = ngx_http_voucher_redis_del_read;
    ac->ev.addWrite = ngx_http_voucher_redis_add_write;
    ac->ev.delWrite = ngx_http_voucher_redis_del_write;
    ac->ev.cleanup = ngx_http_voucher_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_voucher_redis_connected);

    ngx_add_timer(&conn->connect_timer, vmcf->connect_timeout);
}


static void
ngx_http_voucher_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_voucher_conn_t  *conn = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context next; the cleanup hook reschedules */
        ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                      "voucher: redis %V: connect failed: %s",
                      &conn->pool->conf->addr_text,
                      ac->errstr ? ac->errstr : "unknown error");
        ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_DOWN);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, conn->pool->log, 0,
                   "voucher: redis %V connected",
                   &conn->pool->conf->addr_text);

    /* a peer that vanishes silently is noticed without waiting for traffic */

    if (conn->pool->conf->unix_path.len == 0) {
        (void) redisEnableKeepAlive((redisContext *) &ac->c);
    }

    ngx_http_voucher_redis_handshake(conn);
}


static void
ngx_http_voucher_redis_handshake(ngx_http_voucher_conn_t *conn)
{
    u_char                        *p, buf[NGX_INT_T_LEN];
    int                            argc;
    const char                    *argv[3];
    size_t                         argvlen[3];
    ngx_http_voucher_store_t      *vmcf;

    vmcf = conn->pool->conf;

    ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_HANDSHAKE);

    /* AUTH, SELECT, ROLE and the version check go out pipelined */

    if (vmcf->password.len) {
        argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;

        if (vmcf->user.len) {
            argv[argc] = (char *) vmcf->user.data;
            argvlen[argc++] = vmcf->user.len;
        }

        argv[argc] = (char *) vmcf->password.data;
        argvlen[argc++] = vmcf->password.len;

        if (ngx_http_voucher_redis_command(conn,
                                        ngx_http_voucher_redis_handshake_reply,
                                        (void *) "AUTH", argc, argv, argvlen)
            != NGX_OK)
        {
            goto failed;
        }
    }

    if (vmcf->db) {
        p = ngx_sprintf(buf, "%i", vmcf->db);
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (char *) buf;
        argvlen[1] = p - buf;

        if (ngx_http_voucher_redis_command(conn,
                                        ngx_http_voucher_redis_handshake_reply,
                                        (void *) "SELECT", 2, argv, argvlen)
            != NGX_OK)
        {
            goto failed;
        }
    }

    /*
     * ROLE answers first: FUNCTION LOAD is never sent to a replica.  A
     * replica's pool asks instead whether its link to the master is up.
     */

    if ((conn->pool->replica ? ngx_http_voucher_redis_replica_info(conn)
                             : ngx_http_voucher_redis_role(conn))
        != NGX_OK)
    {
        goto failed;
    }

    argv[0] = "FCALL";
    argvlen[0] = 5;
    argv[1] = VOUCHER_FN("voucher_version");
    argvlen[1] = sizeof(VOUCHER_FN("voucher_version")) - 1;
    argv[2] = "0";
    argvlen[2] = 1;

    if (ngx_http_voucher_redis_command(conn,
                                       ngx_http_voucher_redis_version_reply,
                                       conn, 3, argv, argvlen)
        != NGX_OK)
    {
        goto failed;
    }

    return;

failed:

    /*
     * hiredis calls the connect callback outside its "in callback" guard:
     * freeing the context here would pull it from under hiredis.  The
     * connect timer, already running, drops it instead.
     */

    ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                  "voucher: redis %V: cannot queue the handshake",
                  &conn->pool->conf->addr_text);

    ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_DOWN);
}


static void
ngx_http_voucher_redis_handshake_reply(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply               *reply = r;
    ngx_http_voucher_conn_t  *conn = ac->data;

    if (reply == NULL || conn->state != NGX_HTTP_VOUCHER_HANDSHAKE) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* the reply of AUTH never echoes the password */
        ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                      "voucher: redis %V: %s refused: %s",
                      &conn->pool->conf->addr_text, (char *) data,
                      reply->str);
        ngx_http_voucher_redis_drop(conn, NULL);
    }
}


static void
ngx_http_voucher_redis_version_reply(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply               *reply = r;
    ngx_http_voucher_conn_t  *conn = data;

    if (reply == NULL || conn->state != NGX_HTTP_VOUCHER_HANDSHAKE) {
        return;
    }

    if ((reply->type == REDIS_REPLY_STRING
         || reply->type == REDIS_REPLY_STATUS)
        && reply->len == sizeof(VOUCHER_LUA_VERSION) - 1
        && ngx_strncmp(reply->str, VOUCHER_LUA_VERSION,
                       reply->len)
           == 0)
    {
        ngx_log_error(NGX_LOG_INFO, conn->pool->log, 0,
                      "voucher: redis %V ready, functions %s",
                      &conn->pool->conf->addr_text,
                      VOUCHER_LUA_VERSION);

        ngx_http_voucher_redis_ready(conn);
        return;
    }

    if (conn->pool->replica) {
        /* nothing is loaded into a replica: it is left alone for now */
        ngx_http_voucher_redis_replica_skip(conn,
                        (reply->type == REDIS_REPLY_ERROR
                         && ngx_strstrn((u_char *) reply->str, "not found",
                                        9 - 1) == NULL)
                        ? reply->str : "its library is another version");
        return;
    }

    if (ngx_http_voucher_redis_is_unready(reply)) {
        ngx_http_voucher_redis_not_writable(conn, reply->str);
        ngx_http_voucher_redis_drop(conn, NULL);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR
        && ngx_strstrn((u_char *) reply->str, "not found", 9 - 1) == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                      "voucher: redis %V: version check failed: %s",
                      &conn->pool->conf->addr_text, reply->str);
        ngx_http_voucher_redis_drop(conn, NULL);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, conn->pool->log, 0,
                  "voucher: redis %V: loading functions %s",
                  &conn->pool->conf->addr_text,
                  VOUCHER_LUA_VERSION);

    if (ngx_http_voucher_redis_load(conn) != NGX_OK) {
        ngx_http_voucher_redis_drop(conn, "cannot queue FUNCTION LOAD");
    }
}


static ngx_int_t
ngx_http_voucher_redis_role(ngx_http_voucher_conn_t *conn)
{
    const char  *argv[1];
    size_t       argvlen[1];

    argv[0] = "ROLE";
    argvlen[0] = 4;

    return ngx_http_voucher_redis_command(conn,
                                          ngx_http_voucher_redis_role_reply,
                                          conn, 1, argv, argvlen);
}


/*
 * In the handshake, a master (or a node whose ROLE is not ours to see,
 * an ACL without it) goes on to the version check queued behind ROLE.
 * On a ready context the library went missing: it is loaded if the node
 * is still the master.  Anything else is dropped before FUNCTION LOAD.
 */

static void
ngx_http_voucher_redis_role_reply(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply               *reply = r;
    ngx_http_voucher_conn_t  *conn = data;

    u_char      *role;
    ngx_uint_t   master;

    if (reply == NULL
        || (conn->state != NGX_HTTP_VOUCHER_HANDSHAKE
            && conn->state != NGX_HTTP_VOUCHER_READY))
    {
        return;
    }

    if (ngx_http_voucher_redis_is_unready(reply)) {
        ngx_http_voucher_redis_not_writable(conn, reply->str);
        ngx_http_voucher_redis_drop(conn, NULL);
        return;
    }

    if (reply->type == REDIS_REPLY_ARRAY) {
        if (reply->elements == 0
            || (reply->element[0]->type != REDIS_REPLY_STRING
                && reply->element[0]->type != REDIS_REPLY_STATUS))
        {
            ngx_http_voucher_redis_drop(conn, "unexpected reply to ROLE");
            return;
        }

        role = (u_char *) reply->element[0]->str;
        master = (reply->element[0]->len == 6
                  && ngx_strncmp(role, "master", 6) == 0);

        if (!master) {
            ngx_http_voucher_redis_not_writable(conn, (char *) role);
            ngx_http_voucher_redis_drop(conn, NULL);
            return;
        }

    } else if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_NOTICE, conn->pool->log, 0,
                      "voucher: redis %V: ROLE refused, taken as master: %s",
                      &conn->pool->conf->addr_text, reply->str);
    }

    if (conn->state == NGX_HTTP_VOUCHER_READY) {
        conn->loading = 0;

        if (ngx_http_voucher_redis_load(conn) != NGX_OK) {
            ngx_http_voucher_redis_drop(conn, "cannot queue FUNCTION LOAD");
        }
    }
}


/* READONLY, LOADING, MASTERDOWN, CLUSTERDOWN: the command did not run */

static ngx_uint_t
ngx_http_voucher_redis_is_unready(redisReply *reply)
{
    size_t       n;
    ngx_uint_t   i;
    ngx_str_t   *w;

    static ngx_str_t  words[] = {
        ngx_string("READONLY"),
        ngx_string("LOADING"),
        ngx_string("MASTERDOWN"),
        ngx_string("CLUSTERDOWN")
    };

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR) {
        return 0;
    }

    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        w = &words[i];
        n = w->len;

        if (reply->len >= n
            && ngx_strncmp(reply->str, w->data, n) == 0
            && (reply->len == n || reply->str[n] == ' '))
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The node answers but cannot take our writes: the context is made anew
 * with the short back-off, and the commands waiting for a context fail
 * now, as every context reaches the same node.
 */

static void
ngx_http_voucher_redis_not_writable(ngx_http_voucher_conn_t *conn,
    const char *what)
{
    if (!conn->unready) {
        ngx_log_error(NGX_LOG_WARN, conn->pool->log, 0,
                      "voucher: redis %V cannot take writes (%s), "
                      "reconnecting", &conn->pool->conf->addr_text, what);
    }

    conn->unready = 1;
    ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_DOWN);

    ngx_http_voucher_redis_fail_waiting(conn->pool,
                                        NGX_HTTP_VOUCHER_REFUSED);
}


/*
 * Our functions are missing: which library to load depends on the primary
 * ("voucher", by the version its voucher_version answers).  None: ours
 * becomes it.  Another version's: ours goes beside it, as the library
 * "voucher_<version>", and the primary stays, so that two nginx versions
 * never replace each other's library (voucherctl library promote changes
 * the primary; see redis/lib/core.lua).
 */

static ngx_int_t
ngx_http_voucher_redis_load(ngx_http_voucher_conn_t *conn)
{
    const char  *argv[3];
    size_t       argvlen[3];

    if (conn->loading) {
        return NGX_OK;
    }

    argv[0] = "FCALL";
    argvlen[0] = 5;
    argv[1] = "voucher_version";
    argvlen[1] = sizeof("voucher_version") - 1;
    argv[2] = "0";
    argvlen[2] = 1;

    if (ngx_http_voucher_redis_command(conn,
                                       ngx_http_voucher_redis_primary_reply,
                                       conn, 3, argv, argvlen)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    conn->loading = 1;

    return NGX_OK;
}


static void
ngx_http_voucher_redis_primary_reply(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply               *reply = r;
    ngx_http_voucher_conn_t  *conn = data;

    ngx_str_t   *own;
    const char  *argv[4];
    size_t       argvlen[4];

    if (reply == NULL) {
        return;
    }

    if (ngx_http_voucher_redis_is_unready(reply)) {
        conn->loading = 0;
        ngx_http_voucher_redis_not_writable(conn, reply->str);
        ngx_http_voucher_redis_drop(conn, NULL);
        return;
    }

    argv[0] = "FUNCTION";
    argvlen[0] = 8;
    argv[1] = "LOAD";
    argvlen[1] = 4;
    argv[2] = "REPLACE";
    argvlen[2] = 7;

    if (reply->type == REDIS_REPLY_ERROR
        && ngx_strstrn((u_char *) reply->str, "not found", 9 - 1) == NULL)
    {
        conn->loading = 0;
        ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                      "voucher: redis %V: version check failed: %s",
                      &conn->pool->conf->addr_text, reply->str);
        ngx_http_voucher_redis_drop(conn, NULL);
        return;
    }

    if (reply->type == REDIS_REPLY_STRING
        && !(reply->len == sizeof(VOUCHER_LUA_VERSION) - 1
             && ngx_strncmp(reply->str, VOUCHER_LUA_VERSION, reply->len)
                == 0))
    {
        ngx_log_error(NGX_LOG_NOTICE, conn->pool->log, 0,
                      "voucher: redis %V: the primary library is version "
                      "%s, loading ours (%s) beside it",
                      &conn->pool->conf->addr_text, reply->str,
                      VOUCHER_LUA_VERSION);

        own = ngx_http_voucher_redis_lua_own();
        argv[3] = (const char *) own->data;
        argvlen[3] = own->len;

    } else {
        argv[3] = voucher_lua;
        argvlen[3] = sizeof(voucher_lua) - 1;
    }

    if (ngx_http_voucher_redis_command(conn,
                                       ngx_http_voucher_redis_load_reply,
                                       conn, 4, argv, argvlen)
        != NGX_OK)
    {
        conn->loading = 0;
        ngx_http_voucher_redis_drop(conn, "cannot queue FUNCTION LOAD");
    }
}


/*
 * This version's own library, "voucher_<version>" (common/voucher_lua.h),
 * made from the primary's text once per process, and only when a node's
 * primary library is another version's.
 */
static ngx_str_t *
ngx_http_voucher_redis_lua_own(void)
{
    u_char            *p;
    static ngx_str_t   own;
    static u_char      text[sizeof(voucher_lua) - 1 + VOUCHER_LUA_OWN_EXTRA];

#define VOUCHER_NAME_LINE     "#!lua name=voucher"
#define VOUCHER_PRIMARY_LINE  "local PRIMARY = "

    if (own.len) {
        return &own;
    }

    p = ngx_cpymem(text, VOUCHER_NAME_LINE "_" VOUCHER_LUA_VERSION "\n",
                   sizeof(VOUCHER_NAME_LINE "_" VOUCHER_LUA_VERSION "\n") - 1);
    p = ngx_cpymem(p, voucher_lua + sizeof(VOUCHER_NAME_LINE "\n") - 1,
                   VOUCHER_LUA_PRIMARY_AT
                   - (sizeof(VOUCHER_NAME_LINE "\n") - 1));
    p = ngx_cpymem(p, VOUCHER_PRIMARY_LINE "false\n",
                   sizeof(VOUCHER_PRIMARY_LINE "false\n") - 1);
    p = ngx_cpymem(p, voucher_lua + VOUCHER_LUA_PRIMARY_AT
                      + sizeof(VOUCHER_PRIMARY_LINE "true\n") - 1,
                   sizeof(voucher_lua) - 1 - VOUCHER_LUA_PRIMARY_AT
                   - (sizeof(VOUCHER_PRIMARY_LINE "true\n") - 1));

#undef VOUCHER_NAME_LINE
#undef VOUCHER_PRIMARY_LINE

    own.data = text;
    own.len = p - text;

    return &own;
}


static void
ngx_http_voucher_redis_load_reply(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply               *reply = r;
    ngx_http_voucher_conn_t  *conn = data;

    if (reply == NULL) {
        return;
    }

    conn->loading = 0;

    if (ngx_http_voucher_redis_is_unready(reply)) {
        ngx_http_voucher_redis_not_writable(conn, reply->str);
        ngx_http_voucher_redis_drop(conn, NULL);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                      "voucher: redis %V: FUNCTION LOAD failed: %s",
                      &conn->pool->conf->addr_text, reply->str);
        ngx_http_voucher_redis_drop(conn, NULL);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, conn->pool->log, 0,
                  "voucher: redis %V ready, functions %s loaded",
                  &conn->pool->conf->addr_text,
                  VOUCHER_LUA_VERSION);

    if (conn->state == NGX_HTTP_VOUCHER_HANDSHAKE) {
        ngx_http_voucher_redis_ready(conn);
    }
}


static void
ngx_http_voucher_redis_ready(ngx_http_voucher_conn_t *conn)
{
    /* last step of the handshake: is the native module there */

    if (!conn->probed && ngx_http_voucher_native_probe(conn) == NGX_OK) {
        return;
    }

    conn->probed = 1;
    ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_READY);
    conn->backoff = NGX_HTTP_VOUCHER_BACKOFF_MIN;
    conn->unready = 0;

    if (conn->connect_timer.timer_set) {
        ngx_del_timer(&conn->connect_timer);
    }

    if (conn->pool->replica) {
        ngx_add_timer(&conn->check, 1000);
    }

    ngx_http_voucher_redis_drain(conn);
}


/*
 * The commands that waited go out on conn, in order, as far as it has
 * room: when it becomes ready, and whenever a reply frees a place on it
 * (so a queue that formed while every ready context was full moves on).
 */

static void
ngx_http_voucher_redis_drain(ngx_http_voucher_conn_t *conn)
{
    ngx_queue_t              *q;
    ngx_http_voucher_op_t    *op;
    ngx_http_voucher_pool_t  *pool;

    pool = conn->pool;

    while (!ngx_queue_empty(&pool->waiting)
           && conn->state == NGX_HTTP_VOUCHER_READY
           && conn->pending < pool->conf->max_pending)
    {
        q = ngx_queue_head(&pool->waiting);
        ngx_queue_remove(q);
        ngx_http_voucher_waiting(pool, -1);

        op = ngx_queue_data(q, ngx_http_voucher_op_t, queue);
        op->queued = 0;

        if (ngx_http_voucher_redis_submit(conn, op) != NGX_OK) {
            if (op->timer.timer_set) {
                ngx_del_timer(&op->timer);
            }

            op->handler(op, NULL, NGX_HTTP_VOUCHER_LOST);
            ngx_http_voucher_redis_free_op(op);
        }
    }
}


/*
 * No context is ready or on its way (rc NGX_HTTP_VOUCHER_LOST), or the
 * node cannot take writes (NGX_HTTP_VOUCHER_REFUSED): the waiting
 * commands fail now.
 */

static void
ngx_http_voucher_redis_fail_waiting(ngx_http_voucher_pool_t *pool,
    ngx_int_t rc)
{
    ngx_uint_t              i;
    ngx_queue_t            *q;
    ngx_http_voucher_op_t  *op;

    if (pool->sentinel) {
        /* Sentinel may name another master: they wait within timeout */
        return;
    }

    for (i = 0; rc == NGX_HTTP_VOUCHER_LOST && i < pool->nconns; i++) {
        if (pool->conns[i].state != NGX_HTTP_VOUCHER_DOWN) {
            return;
        }
    }

    while (!ngx_queue_empty(&pool->waiting)) {
        q = ngx_queue_head(&pool->waiting);
        ngx_queue_remove(q);
        ngx_http_voucher_waiting(pool, -1);

        op = ngx_queue_data(q, ngx_http_voucher_op_t, queue);
        op->queued = 0;

        if (op->timer.timer_set) {
            ngx_del_timer(&op->timer);
        }

        op->handler(op, NULL, rc);
        ngx_http_voucher_redis_free_op(op);
    }
}


/*
 * Gives up on a context: every command still queued on it gets its
 * callback with a NULL reply, then the cleanup hook schedules a new one.
 * When called from a hiredis callback, hiredis defers the free until the
 * callback returns.
 */

static void
ngx_http_voucher_redis_drop(ngx_http_voucher_conn_t *conn, const char *why)
{
    if (why) {
        ngx_log_error(NGX_LOG_ERR, conn->pool->log, 0,
                      "voucher: redis %V: %s, reconnecting",
                      &conn->pool->conf->addr_text, why);
    }

    ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_DOWN);

    if (conn->ac) {
        redisAsyncFree(conn->ac);
    }
}


static void
ngx_http_voucher_redis_schedule(ngx_http_voucher_conn_t *conn)
{
    ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_DOWN);

    if (conn->pool->exiting) {
        return;
    }

    ngx_http_voucher_redis_fail_waiting(conn->pool, NGX_HTTP_VOUCHER_LOST);

    if (conn->pool->sentinel) {
        /*
         * The master may have moved: Sentinel is asked again (at most
         * once a second), and a new answer wakes this context early.
         */
        ngx_http_voucher_sentinel_ask(conn->pool->sentinel);

        if (!conn->pool->addressed) {
            return;
        }
    }

    if (conn->reconnect.timer_set) {
        return;
    }

    ngx_add_timer(&conn->reconnect,
                  conn->unready ? ngx_min(conn->backoff,
                                          NGX_HTTP_VOUCHER_BACKOFF_UNREADY)
                                : conn->backoff);

    conn->backoff *= 2;
    if (conn->backoff > NGX_HTTP_VOUCHER_BACKOFF_MAX) {
        conn->backoff = NGX_HTTP_VOUCHER_BACKOFF_MAX;
    }
}


static void
ngx_http_voucher_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_voucher_conn_t  *conn = ev->data;

    if (conn->pool->exiting || conn->ac) {
        return;
    }

    ngx_http_voucher_metrics_store_add(conn->pool->conf,
                                       NGX_HTTP_VOUCHER_M_RECONNECT, 1);

    ngx_http_voucher_redis_connect(conn);
}


/*
 * Sentinel names the master.  A new address retires every context on
 * the old one (a context with commands in flight goes once they are
 * answered) and connects the others to it at once.  No address is kept
 * once Sentinel has named another.
 */

static void
ngx_http_voucher_redis_master(void *data, u_char *host, in_port_t port)
{
    ngx_http_voucher_pool_t  *pool = data;

    size_t                    len;
    ngx_uint_t                i;
    ngx_http_voucher_conn_t  *conn;

    len = ngx_strlen(host);

    if (len > NGX_SOCKADDR_STRLEN || pool->exiting) {
        return;
    }

    if (pool->addressed && pool->port == port
        && ngx_strcmp(pool->host, host) == 0)
    {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                  "voucher: redis %V: the master is %s:%d",
                  &pool->conf->addr_text, host, (int) port);

    ngx_memcpy(pool->host, host, len + 1);
    pool->port = port;
    pool->addressed = 1;

    for (i = 0; i < pool->nconns; i++) {
        conn = &pool->conns[i];

        if (conn->ac
            && conn->state == NGX_HTTP_VOUCHER_READY && conn->pending)
        {
            ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_DOWN);
            conn->retiring = 1;
            continue;
        }

        if (conn->ac) {
            ngx_http_voucher_redis_drop(conn, NULL);
        }

        if (conn->ac == NULL && !conn->retiring) {
            if (conn->reconnect.timer_set) {
                ngx_del_timer(&conn->reconnect);
            }

            conn->backoff = NGX_HTTP_VOUCHER_BACKOFF_MIN;
            conn->unready = 0;

            ngx_http_voucher_redis_connect(conn);
        }
    }
}


static void
ngx_http_voucher_redis_connect_timeout(ngx_event_t *ev)
{
    ngx_http_voucher_conn_t  *conn = ev->data;

    if (conn->state == NGX_HTTP_VOUCHER_READY) {
        return;
    }

    ngx_http_voucher_redis_drop(conn, "connect or handshake timed out");
}


ngx_http_voucher_op_t *
ngx_http_voucher_redis_send(ngx_http_voucher_pool_t *pool, int argc,
    const char **argv, const size_t *argvlen,
    ngx_http_voucher_op_handler_pt handler, void *data, ngx_uint_t flags)
{
    ngx_uint_t                i, n, coming;
    ngx_http_voucher_op_t    *op;
    ngx_http_voucher_conn_t  *conn;

    if (pool == NULL || pool->exiting) {
        return NULL;
    }

    /* round robin over the ready contexts that are not overloaded */

    conn = NULL;

    /* with Sentinel, a context is always on its way, to some master */
    coming = (pool->sentinel != NULL);

    for (i = 0; i < pool->nconns; i++) {
        n = (pool->next + i) % pool->nconns;

        if (pool->conns[n].state == NGX_HTTP_VOUCHER_READY
            && pool->conns[n].pending < pool->conf->max_pending)
        {
            conn = &pool->conns[n];
            pool->next = n + 1;
            break;
        }

        if (pool->conns[n].state != NGX_HTTP_VOUCHER_DOWN) {
            coming = 1;
        }
    }

    if (conn == NULL
        && (!coming || pool->nwaiting >= pool->conf->max_pending))
    {
        return NULL;
    }

    /* "coming" also counts a ready context that is full: it drains */

    op = ngx_calloc(sizeof(ngx_http_voucher_op_t), pool->log);
    if (op == NULL) {
        return NULL;
    }

    op->data = data;
    op->handler = handler;
    op->pool = pool;
    op->argc = argc;
    op->argv = argv;
    op->argvlen = argvlen;
    op->write = (flags & NGX_HTTP_VOUCHER_SEND_WRITE)
                && pool->conf->replicated;

    pool->ops++;

    if (conn == NULL) {
        op->queued = 1;
        ngx_queue_insert_tail(&pool->waiting, &op->queue);
        ngx_http_voucher_waiting(pool, 1);

    } else if (ngx_http_voucher_redis_submit(conn, op) != NGX_OK) {
        ngx_http_voucher_redis_free_op(op);
        return NULL;
    }

    op->timer.handler = ngx_http_voucher_redis_op_timeout;
    op->timer.data = op;
    op->timer.log = pool->log;

    ngx_add_timer(&op->timer, pool->conf->timeout);

    return op;
}


static ngx_int_t
ngx_http_voucher_redis_submit(ngx_http_voucher_conn_t *conn,
    ngx_http_voucher_op_t *op)
{
    ngx_uint_t  i;

    /* FCALL <fn> 1 <key> <args>: VOUCHER.<fn> <key> <args>, if native */

    i = 0;
    op->native = 0;

    if (conn->native && op->argc >= 4 && op->argvlen[2] == 1
        && op->argv[2][0] == '1' && op->argvlen[0] == 5
        && ngx_strncmp(op->argv[0], "FCALL", 5) == 0)
    {
        for (i = 0; ngx_http_voucher_native_fns[i].fn.len; i++) {
            if ((conn->native & ((ngx_uint_t) 1 << i))
                && op->argvlen[1] == ngx_http_voucher_native_fns[i].call.len
                && ngx_strncmp(op->argv[1],
                               ngx_http_voucher_native_fns[i].call.data,
                               op->argvlen[1])
                   == 0)
            {
                op->native = 1;
                break;
            }
        }
    }

    if (op->native) {
        if (ngx_http_voucher_redis_command_as(conn,
                            ngx_http_voucher_redis_reply, op,
                            (const char *)
                                ngx_http_voucher_native_fns[i].cmd.data,
                            op->argc - 2, op->argv + 2, op->argvlen + 2)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_http_voucher_redis_command(conn,
                                              ngx_http_voucher_redis_reply,
                                              op, op->argc, op->argv,
                                              op->argvlen)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * hiredis copied the command; the request's argv may go away.  A
     * native one keeps it while its request lives: should the module be
     * gone when it arrives, it goes again as FCALL.
     */

    if (!op->native) {
        op->argv = NULL;
        op->argvlen = NULL;
    }

    op->conn = conn;
    op->sent_us = ngx_http_voucher_metrics_now();
    conn->pending++;

    if (op->write) {
        /* the WAIT at the end of this batch answers for it */
        conn->batch_writes++;
        op->wait = conn->waits_sent + 1;
    }

    return NGX_OK;
}


/*
 * A read (a validate without limits) on a replica that passed its last
 * check, round robin; NULL when none is ready (the caller asks the master).
 */

ngx_http_voucher_op_t *
ngx_http_voucher_redis_send_read(ngx_http_voucher_pool_t *pool, int argc,
    const char **argv, const size_t *argvlen,
    ngx_http_voucher_op_handler_pt handler, void *data)
{
    ngx_uint_t                i, n;
    ngx_http_voucher_pool_t  *rp;
    ngx_http_voucher_conn_t  *conn;

    if (pool == NULL || pool->nreplicas == 0 || pool->exiting) {
        return NULL;
    }

    for (i = 0; i < pool->nreplicas; i++) {
        n = (pool->next_replica + i) % pool->nreplicas;
        rp = pool->replicas[n];
        conn = &rp->conns[0];

        if (conn->state == NGX_HTTP_VOUCHER_READY
            && conn->pending < rp->conf->max_pending)
        {
            pool->next_replica = n + 1;

            return ngx_http_voucher_redis_send(rp, argc, argv, argvlen,
                                               handler, data, 0);
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_voucher_redis_replica_info(ngx_http_voucher_conn_t *conn)
{
    const char  *argv[2];
    size_t       argvlen[2];

    argv[0] = "INFO";
    argvlen[0] = 4;
    argv[1] = "replication";
    argvlen[1] = sizeof("replication") - 1;

    return ngx_http_voucher_redis_command(conn,
                                    ngx_http_voucher_redis_replica_info_reply,
                                    conn, 2, argv, argvlen);
}


static void
ngx_http_voucher_redis_replica_info_reply(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply               *reply = r;
    ngx_http_voucher_conn_t  *conn = data;

    const char  *why;

    if (reply == NULL
        || (conn->state != NGX_HTTP_VOUCHER_HANDSHAKE
            && conn->state != NGX_HTTP_VOUCHER_READY))
    {
        return;
    }

    why = ngx_http_voucher_redis_replica_state(reply);

    if (why) {
        ngx_http_voucher_redis_replica_skip(conn, why);
    }
}


/* NULL for a replica whose link to its master is up and in sync */

static const char *
ngx_http_voucher_redis_replica_state(redisReply *reply)
{
    u_char  *p, *last;

    if (reply->type == REDIS_REPLY_ERROR) {
        return reply->str;
    }

    if (reply->type != REDIS_REPLY_STRING) {
        return "unexpected reply to INFO";
    }

    p = (u_char *) reply->str;
    last = p + reply->len;

    if (ngx_strlcasestrn(p, last, (u_char *) "role:slave\r",
                         sizeof("role:slave\r") - 2)
        == NULL)
    {
        return "not a replica";
    }

    if (ngx_strlcasestrn(p, last, (u_char *) "master_sync_in_progress:0\r",
                         sizeof("master_sync_in_progress:0\r") - 2)
        == NULL)
    {
        return "its sync with the master is in progress";
    }

    if (ngx_strlcasestrn(p, last, (u_char *) "master_link_status:up\r",
                         sizeof("master_link_status:up\r") - 2)
        == NULL)
    {
        return "its link to the master is down";
    }

    return NULL;
}


/* a ready replica, every second: its link, and its library's version */

static void
ngx_http_voucher_redis_replica_check(ngx_event_t *ev)
{
    ngx_http_voucher_conn_t  *conn = ev->data;

    const char  *argv[3];
    size_t       argvlen[3];

    if (conn->state != NGX_HTTP_VOUCHER_READY || conn->ac == NULL
        || conn->pool->exiting)
    {
        return;
    }

    argv[0] = "FCALL";
    argvlen[0] = 5;
    argv[1] = VOUCHER_FN("voucher_version");
    argvlen[1] = sizeof(VOUCHER_FN("voucher_version")) - 1;
    argv[2] = "0";
    argvlen[2] = 1;

    if (ngx_http_voucher_redis_replica_info(conn) != NGX_OK
        || ngx_http_voucher_redis_command(conn,
                             ngx_http_voucher_redis_replica_version_reply,
                             conn, 3, argv, argvlen)
           != NGX_OK)
    {
        ngx_http_voucher_redis_replica_skip(conn, "cannot queue its check");
    }
}


static void
ngx_http_voucher_redis_replica_version_reply(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply               *reply = r;
    ngx_http_voucher_conn_t  *conn = data;

    if (reply == NULL || conn->state != NGX_HTTP_VOUCHER_READY) {
        return;
    }

    if ((reply->type == REDIS_REPLY_STRING
         || reply->type == REDIS_REPLY_STATUS)
        && reply->len == sizeof(VOUCHER_LUA_VERSION) - 1
        && ngx_strncmp(reply->str, VOUCHER_LUA_VERSION, reply->len) == 0)
    {
        if (!conn->check.timer_set && !conn->pool->exiting) {
            ngx_add_timer(&conn->check, 1000);
        }

        return;
    }

    ngx_http_voucher_redis_replica_skip(conn,
                        (reply->type == REDIS_REPLY_ERROR
                         && ngx_strstrn((u_char *) reply->str, "not found",
                                        9 - 1) == NULL)
                        ? reply->str : "its library is another version");
}


/*
 * A replica not to read from now: its context goes (once the reads in
 * flight are answered) and is made anew within a second, to be checked
 * again.  Logged when the reason changes.
 */

static void
ngx_http_voucher_redis_replica_skip(ngx_http_voucher_conn_t *conn,
    const char *why)
{
    ngx_uint_t  key;

    key = ngx_hash_key((u_char *) why, ngx_strlen(why));

    if (!conn->unready || key != conn->skipped) {
        ngx_log_error(NGX_LOG_NOTICE, conn->pool->log, 0,
                      "voucher: redis %V: not read from: %s",
                      &conn->pool->conf->addr_text, why);
    }

    conn->skipped = key;

    conn->unready = 1;
    ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_DOWN);

    if (conn->check.timer_set) {
        ngx_del_timer(&conn->check);
    }

    if (conn->pending) {
        conn->retiring = 1;
        return;
    }

    ngx_http_voucher_redis_drop(conn, NULL);
}


/*
 * A command in RESP, formatted here in one buffer and queued with
 * redisAsyncFormattedCommand(): redisAsyncCommandArgv() formats it with
 * sds calls and a malloc() of its own, a tenth of a validate's
 * instructions.  hiredis copies the buffer into its output buffer.
 */

static ngx_int_t
ngx_http_voucher_redis_command(ngx_http_voucher_conn_t *conn,
    redisCallbackFn *fn, void *privdata, int argc, const char **argv,
    const size_t *argvlen)
{
    return ngx_http_voucher_redis_command_as(conn, fn, privdata, NULL, argc,
                                             argv, argvlen);
}


/* the same, with argv[0] replaced by name unless it is NULL */

static ngx_int_t
ngx_http_voucher_redis_command_as(ngx_http_voucher_conn_t *conn,
    redisCallbackFn *fn, void *privdata, const char *name, int argc,
    const char **argv, const size_t *argvlen)
{
    int         i, rc;
    size_t      len;
    const char *arg;
    u_char     *p, *buf;
    size_t      size;
    u_char      stack[NGX_HTTP_VOUCHER_COMMAND_SIZE];

    /* "*argc\r\n", then "$len\r\n" arg "\r\n" each; the numbers at most */

    size = 1 + NGX_SIZE_T_LEN + 2 + (name ? ngx_strlen(name) : 0);

    for (i = 0; i < argc; i++) {
        size += 1 + NGX_SIZE_T_LEN + 2 + argvlen[i] + 2;
    }

    if (size <= sizeof(stack)) {
        buf = stack;

    } else {
        buf = ngx_alloc(size, conn->pool->log);
        if (buf == NULL) {
            return NGX_ERROR;
        }
    }

    p = buf;

    *p++ = '*';
    p = ngx_http_voucher_redis_decimal(p, argc);
    *p++ = CR; *p++ = LF;

    for (i = 0; i < argc; i++) {
        arg = argv[i];
        len = argvlen[i];

        if (i == 0 && name) {
            arg = name;
            len = ngx_strlen(name);
        }

        *p++ = '$';
        p = ngx_http_voucher_redis_decimal(p, len);
        *p++ = CR; *p++ = LF;

        if (len) {
            p = ngx_cpymem(p, arg, len);
        }

        *p++ = CR; *p++ = LF;
    }

    rc = redisAsyncFormattedCommand(conn->ac, fn, privdata, (char *) buf,
                                    p - buf);

    if (buf != stack) {
        ngx_free(buf);
    }

    return (rc == REDIS_OK) ? NGX_OK : NGX_ERROR;
}


static u_char *
ngx_http_voucher_redis_decimal(u_char *p, size_t n)
{
    u_char  *t, tmp[NGX_SIZE_T_LEN];

    t = tmp + NGX_SIZE_T_LEN;

    do {
        *--t = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    while (t < tmp + NGX_SIZE_T_LEN) {
        *p++ = *t++;
    }

    return p;
}


/* the request is gone: its op now waits for the reply only to be freed */

void
ngx_http_voucher_redis_detach(ngx_http_voucher_op_t *op)
{
    op->data = NULL;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    if (op->queued) {
        /* never sent: nothing will ever answer it */
        ngx_queue_remove(&op->queue);
        ngx_http_voucher_waiting(op->pool, -1);
        ngx_http_voucher_redis_free_op(op);
    }
}


static void
ngx_http_voucher_redis_reply(redisAsyncContext *ac, void *r, void *data)
{
    redisReply               *reply = r;
    ngx_http_voucher_op_t    *op = data;
    ngx_http_voucher_conn_t  *conn = op->conn;

    ngx_int_t  rc;

    if (reply) {
        ngx_http_voucher_metrics_latency(op->pool->conf, op->native,
                                         op->sent_us);
    }

    if (op->write && reply && reply->type != REDIS_REPLY_ERROR) {
        /* it wrote: answered once a replica has it, see redis_wait() */
        if (ngx_http_voucher_redis_park(conn, op, reply) == NGX_OK) {
            return;
        }

        ngx_http_voucher_redis_unpark(conn, op, NGX_HTTP_VOUCHER_TIMEDOUT);
        ngx_http_voucher_redis_after(conn);
        return;
    }

    conn->pending--;

    if (op->native && reply && reply->type == REDIS_REPLY_ERROR
        && ngx_http_voucher_native_lost(conn, op, reply) == NGX_OK)
    {
        return;
    }

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    rc = reply ? NGX_HTTP_VOUCHER_REPLY : NGX_HTTP_VOUCHER_LOST;

    if (reply == NULL) {
        ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_DOWN);

    } else if (ngx_http_voucher_redis_is_unready(reply)) {

        /*
         * The node is no longer the master (or not ready): it takes no
         * new command, and goes once the ones in flight are answered.
         */

        rc = NGX_HTTP_VOUCHER_REFUSED;

        if (conn->state == NGX_HTTP_VOUCHER_READY && conn->pool->replica) {
            ngx_http_voucher_redis_replica_skip(conn, reply->str);

        } else if (conn->state == NGX_HTTP_VOUCHER_READY) {
            ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_DOWN);
            conn->retiring = 1;
            ngx_http_voucher_redis_not_writable(conn, reply->str);
        }

        reply = NULL;

    } else if (conn->pool->replica && reply->type == REDIS_REPLY_ERROR
               && ngx_strstrn((u_char *) reply->str, "not found", 9 - 1))
    {
        /* the replica's library went: the master answers this one */
        rc = NGX_HTTP_VOUCHER_REFUSED;

        if (conn->state == NGX_HTTP_VOUCHER_READY) {
            ngx_http_voucher_redis_replica_skip(conn, reply->str);
        }

        reply = NULL;
    }

    if (reply && reply->type == REDIS_REPLY_ERROR
        && ngx_strstrn((u_char *) reply->str, "not found", 9 - 1) != NULL
        && ngx_strstrn((u_char *) reply->str, "unction", 7 - 1) != NULL)
    {
        /*
         * Someone flushed the library: it is loaded again, in order,
         * once ROLE says the node is still the master.
         */

        if (conn->state == NGX_HTTP_VOUCHER_READY && !conn->loading) {
            ngx_log_error(NGX_LOG_WARN, conn->pool->log, 0,
                          "voucher: redis %V: functions are missing, "
                          "loading them again",
                          &conn->pool->conf->addr_text);

            if (ngx_http_voucher_redis_role(conn) != NGX_OK) {
                ngx_http_voucher_redis_drop(conn, "cannot queue ROLE");

            } else {
                conn->loading = 1;
            }
        }
    }

    if (op->data && !op->pool->exiting) {
        op->handler(op, reply, rc);
    }

    ngx_http_voucher_redis_free_op(op);

    ngx_http_voucher_redis_after(conn);
}


/* a reply took a place off conn: a retiring conn may go, a queue move */

static void
ngx_http_voucher_redis_after(ngx_http_voucher_conn_t *conn)
{
    if (conn->retiring && conn->pending == 0 && conn->ac) {
        ngx_http_voucher_redis_drop(conn, NULL);
        return;
    }

    if (conn->state == NGX_HTTP_VOUCHER_READY && !conn->pool->exiting) {
        ngx_http_voucher_redis_drain(conn);
    }
}


/*
 * durability=replicated.  Each batch of commands a context flushes that
 * holds a write ends with WAIT 1 <replica_timeout>: one group commit for
 * the batch.  A write's reply is copied out of the arena and kept (the op
 * "parked", still pending on its context) until the WAIT behind it
 * answers: at least one replica has it, and the reply goes to its
 * request; none in time, and the request gets NGX_HTTP_VOUCHER_TIMEDOUT
 * (503 store_timeout), which a retry with its idempotency key settles.
 * A context lost meanwhile fails its parked ops as NGX_HTTP_VOUCHER_LOST.
 */

static ngx_int_t
ngx_http_voucher_redis_park(ngx_http_voucher_conn_t *conn,
    ngx_http_voucher_op_t *op, redisReply *reply)
{
    op->held = ngx_http_voucher_reply_copy(reply, conn->pool->log);
    if (op->held == NULL) {
        return NGX_ERROR;
    }

    op->parked = 1;
    ngx_queue_insert_tail(&conn->parked, &op->queue);

    return NGX_OK;
}


static void
ngx_http_voucher_redis_wait(ngx_http_voucher_conn_t *conn)
{
    u_char      *p, buf[NGX_INT_T_LEN];
    const char  *argv[3];
    size_t       argvlen[3];

    p = ngx_sprintf(buf, "%M", conn->pool->conf->replica_timeout);

    argv[0] = "WAIT";
    argvlen[0] = 4;
    argv[1] = "1";
    argvlen[1] = 1;
    argv[2] = (char *) buf;
    argvlen[2] = p - buf;

    conn->batch_writes = 0;

    if (ngx_http_voucher_redis_command(conn,
                                       ngx_http_voucher_redis_wait_reply,
                                       conn, 3, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_voucher_redis_drop(conn, "cannot queue WAIT");
        return;
    }

    conn->waits_sent++;
}


static void
ngx_http_voucher_redis_wait_reply(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply               *reply = r;
    ngx_http_voucher_conn_t  *conn = data;

    ngx_int_t               rc;
    ngx_queue_t            *q;
    ngx_http_voucher_op_t  *op;

    if (reply == NULL) {
        /* the context goes: its cleanup fails the parked ops */
        return;
    }

    conn->waits_answered++;

    if (reply->type == REDIS_REPLY_INTEGER && reply->integer >= 1) {
        rc = NGX_HTTP_VOUCHER_REPLY;

    } else {
        rc = NGX_HTTP_VOUCHER_TIMEDOUT;

        ngx_log_error(NGX_LOG_WARN, conn->pool->log, 0,
                      "voucher: redis %V: no replica acknowledged the "
                      "writes within %M ms%s%s",
                      &conn->pool->conf->addr_text,
                      conn->pool->conf->replica_timeout,
                      reply->type == REDIS_REPLY_ERROR ? ": " : "",
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    }

    while (!ngx_queue_empty(&conn->parked)) {
        q = ngx_queue_head(&conn->parked);
        op = ngx_queue_data(q, ngx_http_voucher_op_t, queue);

        if (op->wait > conn->waits_answered) {
            break;
        }

        ngx_http_voucher_redis_unpark(conn, op, rc);
    }

    ngx_http_voucher_redis_after(conn);
}


/* answers a parked op (or one that could not be parked) and frees it */

static void
ngx_http_voucher_redis_unpark(ngx_http_voucher_conn_t *conn,
    ngx_http_voucher_op_t *op, ngx_int_t rc)
{
    if (op->parked) {
        ngx_queue_remove(&op->queue);
        op->parked = 0;
    }

    conn->pending--;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    if (op->data && !op->pool->exiting) {
        op->handler(op, rc == NGX_HTTP_VOUCHER_REPLY ? op->held : NULL, rc);
    }

    ngx_http_voucher_redis_free_op(op);
}


/*
 * A command that does not answer in time: its request is told so and
 * detached.  The context is dropped, as whatever holds Redis up holds
 * every command pipelined behind this one; their requests learn that
 * the connection was lost and a fresh context is set up.
 */

static void
ngx_http_voucher_redis_op_timeout(ngx_event_t *ev)
{
    ngx_http_voucher_op_t    *op = ev->data;
    ngx_http_voucher_conn_t  *conn = op->conn;

    ngx_uint_t  state;

    ngx_log_error(NGX_LOG_ERR, op->pool->log, 0,
                  "voucher: redis %V: command timed out",
                  &op->pool->conf->addr_text);

    ngx_http_voucher_metrics_store_add(op->pool->conf,
                                       NGX_HTTP_VOUCHER_M_TIMEOUT, 1);

    if (op->queued) {
        /* still waiting for a context: nothing was sent */
        ngx_queue_remove(&op->queue);
        ngx_http_voucher_waiting(op->pool, -1);
        op->queued = 0;

        op->handler(op, NULL, NGX_HTTP_VOUCHER_TIMEDOUT);
        ngx_http_voucher_redis_free_op(op);
        return;
    }

    if (op->parked) {
        /*
         * Redis answered, the replicas did not in time: the context is
         * fine, and the WAIT still answers for the others.
         */
        ngx_http_voucher_redis_unpark(conn, op, NGX_HTTP_VOUCHER_TIMEDOUT);
        ngx_http_voucher_redis_after(conn);
        return;
    }

    /* no new command may pick this context while its requests finish */

    state = conn->state;
    ngx_http_voucher_redis_state(conn, NGX_HTTP_VOUCHER_DOWN);

    if (op->data) {
        op->handler(op, NULL, NGX_HTTP_VOUCHER_TIMEDOUT);
        op->data = NULL;
    }

    if (conn->ac && (state != NGX_HTTP_VOUCHER_DOWN || conn->retiring)) {
        ngx_http_voucher_redis_drop(conn, NULL);
    }
}


static void
ngx_http_voucher_redis_free_op(ngx_http_voucher_op_t *op)
{
    op->pool->ops--;

    if (op->owned) {
        ngx_free(op->owned);
    }

    if (op->held) {
        ngx_free(op->held);
    }

    ngx_free(op);
}


/* the event hooks hiredis calls; nginx's events are level-triggered here */

static void
ngx_http_voucher_redis_add_read(void *data)
{
    ngx_http_voucher_conn_t  *conn = data;

    ngx_event_t  *rev;

    rev = conn->c->read;

    if (!rev->active) {
        if (ngx_add_event(rev, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            ngx_log_error(NGX_LOG_ALERT, conn->pool->log, 0,
                          "voucher: cannot add a read event");
        }
    }
}


static void
ngx_http_voucher_redis_del_read(void *data)
{
    ngx_http_voucher_conn_t  *conn = data;

    ngx_event_t  *rev;

    rev = conn->c->read;

    if (rev->active) {
        (void) ngx_del_event(rev, NGX_READ_EVENT, 0);
    }
}


/*
 * hiredis asks for a write after each command it buffers, and again
 * after a write that left part of its buffer unsent.  A command only
 * posts a flush: every command of this event-loop cycle goes out in one
 * write(), at the end of the cycle, and nothing is asked of epoll.  The
 * write event itself is armed only while the socket is full (EAGAIN,
 * seen as a request made during a flush) or the connect is in progress.
 */

static void
ngx_http_voucher_redis_add_write(void *data)
{
    ngx_http_voucher_conn_t  *conn = data;

    ngx_event_t  *wev;

    wev = conn->c->write;

    if (wev->active) {
        /* its handler writes whatever is buffered by then */
        return;
    }

    if (conn->flushing || !(conn->ac->c.flags & REDIS_CONNECTED)) {
        if (ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            ngx_log_error(NGX_LOG_ALERT, conn->pool->log, 0,
                          "voucher: cannot add a write event");
        }

        return;
    }

    ngx_post_event(&conn->flush, &ngx_posted_events);
}


/* hiredis' buffer is empty: a syscall only if the socket had been full */

static void
ngx_http_voucher_redis_del_write(void *data)
{
    ngx_http_voucher_conn_t  *conn = data;

    ngx_event_t  *wev;

    if (conn->flush.posted) {
        ngx_delete_posted_event(&conn->flush);
    }

    wev = conn->c->write;

    if (wev->active) {
        (void) ngx_del_event(wev, NGX_WRITE_EVENT, 0);
    }
}


/*
 * hiredis is freeing the context and will close the fd itself: release
 * our connection without ngx_close_connection(), which would close the
 * fd a second time.
 */

static void
ngx_http_voucher_redis_cleanup(void *data)
{
    ngx_http_voucher_conn_t  *conn = data;

    ngx_connection_t  *c;

    c = conn->c;

    if (c) {
        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->write->active) {
            (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;
    }

    /* a flush posted for this context must not run on the next one */

    if (conn->flush.posted) {
        ngx_delete_posted_event(&conn->flush);
    }

    conn->c = NULL;
    conn->ac = NULL;
    conn->loading = 0;
    conn->retiring = 0;

    /* written, maybe not replicated: the outcome is unknown */

    while (!ngx_queue_empty(&conn->parked)) {
        ngx_http_voucher_redis_unpark(conn,
                                      ngx_queue_data(ngx_queue_head(
                                                         &conn->parked),
                                                     ngx_http_voucher_op_t,
                                                     queue),
                                      NGX_HTTP_VOUCHER_LOST);
    }

    if (conn->connect_timer.timer_set) {
        ngx_del_timer(&conn->connect_timer);
    }

    if (conn->check.timer_set) {
        ngx_del_timer(&conn->check);
    }

    ngx_http_voucher_redis_schedule(conn);
}


static void
ngx_http_voucher_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c = ev->data;
    ngx_http_voucher_conn_t  *conn = c->data;

    redisAsyncHandleRead(conn->ac);
}


static void
ngx_http_voucher_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c = ev->data;
    ngx_http_voucher_conn_t  *conn = c->data;

    ngx_http_voucher_redis_flush(conn);
}


static void
ngx_http_voucher_redis_flush_handler(ngx_event_t *ev)
{
    ngx_http_voucher_conn_t  *conn = ev->data;

    ngx_http_voucher_redis_flush(conn);
}


/*
 * A write hiredis wants again from inside this call means the socket
 * took less than the whole buffer: the add hook then arms the write
 * event.  The context may be freed by the call (a write error); conn
 * itself stays.
 */

static void
ngx_http_voucher_redis_flush(ngx_http_voucher_conn_t *conn)
{
    if (conn->batch_writes) {
        /* the batch ends with its group commit */
        ngx_http_voucher_redis_wait(conn);

        if (conn->ac == NULL) {
            return;
        }

        if (conn->flush.posted) {
            ngx_delete_posted_event(&conn->flush);
        }
    }

    conn->flushing = 1;
    redisAsyncHandleWrite(conn->ac);
    conn->flushing = 0;
}


/*
 * The reply arena.  hiredis (0.14.1, read.c and async.c) holds at most
 * one reply of a context at a time: the one being read, over as many
 * reads as it takes, until it is whole; then its callback runs (or none,
 * for a command sent without one) and freeObject() frees it before the
 * next reply is begun.  A reply half read is freed with freeObject() as
 * well, when the reader fails (a protocol error, out of memory) or is
 * freed with its context (redisAsyncFree(), a lost connection).  Only
 * top-level replies are ever freed, so freeing one empties the arena.
 *
 * Nothing may keep a pointer into a reply once its callback returns: the
 * op handlers copy what they keep (into the request's pool, the lockout
 * cache, a settle's own allocation).
 */

static void *
ngx_http_voucher_arena_alloc(ngx_http_voucher_arena_t *a, size_t size)
{
    u_char                    *p;
    size_t                     n;
    ngx_http_voucher_chunk_t  *ch;

    size = ngx_align(size, sizeof(void *));

    if ((size_t) (a->end - a->pos) >= size) {
        p = a->pos;
        a->pos += size;

        ngx_http_voucher_unpoison(p, size);

        return p;
    }

    if (size >= NGX_HTTP_VOUCHER_ARENA_SIZE / 4) {
        /* a large string gets a chunk of its own */
        n = size;

    } else {
        /* small ones share one, from which the arena goes on */
        n = NGX_HTTP_VOUCHER_ARENA_SIZE;
    }

    ch = ngx_alloc(sizeof(ngx_http_voucher_chunk_t) + n, a->log);
    if (ch == NULL) {
        return NULL;
    }

    ch->next = a->chunks;
    a->chunks = ch;

    p = (u_char *) &ch[1];

    if (n != size) {
        a->pos = p + size;
        a->end = p + n;
    }

    return p;
}


static void
ngx_http_voucher_arena_reset(ngx_http_voucher_arena_t *a)
{
    ngx_http_voucher_chunk_t  *ch, *next;

    for (ch = a->chunks; ch; ch = next) {
        next = ch->next;
        ngx_free(ch);
    }

    a->chunks = NULL;
    a->pos = a->start;
    a->end = a->start + NGX_HTTP_VOUCHER_ARENA_SIZE;

    ngx_http_voucher_poison(a->start, NGX_HTTP_VOUCHER_ARENA_SIZE);
}


/* an element, with "extra" bytes after it, linked into its parent */

static ngx_http_voucher_node_t *
ngx_http_voucher_reply_node(const redisReadTask *task, size_t extra)
{
    redisReply                *parent;
    ngx_http_voucher_node_t   *node;
    ngx_http_voucher_arena_t  *a;

    a = task->privdata;

    node = ngx_http_voucher_arena_alloc(a, sizeof(ngx_http_voucher_node_t)
                                           + extra);
    if (node == NULL) {
        return NULL;
    }

    ngx_memzero(&node->reply, sizeof(redisReply));
    node->arena = a;

    if (task->parent) {
        parent = task->parent->obj;
        parent->element[task->idx] = &node->reply;
    }

    return node;
}


static void *
ngx_http_voucher_reply_string(const redisReadTask *task, char *str,
    size_t len)
{
    ngx_http_voucher_node_t  *node;

    node = ngx_http_voucher_reply_node(task, len + 1);
    if (node == NULL) {
        return NULL;
    }

    node->reply.type = task->type;
    node->reply.str = (char *) &node[1];
    node->reply.len = len;

    ngx_memcpy(node->reply.str, str, len);
    node->reply.str[len] = '\0';

    return node;
}


static void *
ngx_http_voucher_reply_array(const redisReadTask *task, int elements)
{
    ngx_http_voucher_node_t  *node;

    /* calloc() would check this product; a 32-bit size_t can overflow */
    if (elements < 0
        || (size_t) elements > (NGX_MAX_SIZE_T_VALUE
                                - sizeof(ngx_http_voucher_node_t))
                               / sizeof(redisReply *))
    {
        return NULL;
    }

    node = ngx_http_voucher_reply_node(task,
                                       elements * sizeof(redisReply *));
    if (node == NULL) {
        return NULL;
    }

    /* the elements are all set before the reply is handed out */

    node->reply.type = REDIS_REPLY_ARRAY;
    node->reply.elements = elements;

    if (elements > 0) {
        node->reply.element = (redisReply **) &node[1];
    }

    return node;
}


static void *
ngx_http_voucher_reply_integer(const redisReadTask *task, long long value)
{
    ngx_http_voucher_node_t  *node;

    node = ngx_http_voucher_reply_node(task, 0);
    if (node == NULL) {
        return NULL;
    }

    node->reply.type = REDIS_REPLY_INTEGER;
    node->reply.integer = value;

    return node;
}


static void *
ngx_http_voucher_reply_nil(const redisReadTask *task)
{
    ngx_http_voucher_node_t  *node;

    node = ngx_http_voucher_reply_node(task, 0);
    if (node == NULL) {
        return NULL;
    }

    node->reply.type = REDIS_REPLY_NIL;

    return node;
}


static void
ngx_http_voucher_reply_free(void *reply)
{
    ngx_http_voucher_node_t  *node = reply;

    if (node) {
        ngx_http_voucher_arena_reset(node->arena);
    }
}


/* a reply copied into one block of its own, for a parked op */

static redisReply *
ngx_http_voucher_reply_copy(redisReply *reply, ngx_log_t *log)
{
    u_char      *p;
    redisReply  *copy;

    copy = ngx_alloc(ngx_http_voucher_reply_size(reply), log);
    if (copy == NULL) {
        return NULL;
    }

    p = (u_char *) copy + ngx_align(sizeof(redisReply), sizeof(void *));

    (void) ngx_http_voucher_reply_fill(copy, reply, p);

    return copy;
}


static size_t
ngx_http_voucher_reply_size(redisReply *r)
{
    size_t  n, i;

    n = ngx_align(sizeof(redisReply), sizeof(void *));

    if (r->str) {
        n += ngx_align(r->len + 1, sizeof(void *));
    }

    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        n += r->elements * sizeof(redisReply *);

        for (i = 0; i < r->elements; i++) {
            n += ngx_http_voucher_reply_size(r->element[i]);
        }
    }

    return n;
}


/* dst is laid out already; what it points to goes from p on */

static u_char *
ngx_http_voucher_reply_fill(redisReply *dst, redisReply *src, u_char *p)
{
    size_t       i;
    redisReply  *el;

    *dst = *src;

    if (src->str) {
        dst->str = (char *) p;
        ngx_memcpy(p, src->str, src->len);
        p[src->len] = '\0';
        p += ngx_align(src->len + 1, sizeof(void *));
    }

    if (src->type != REDIS_REPLY_ARRAY || src->elements == 0) {
        dst->element = NULL;
        return p;
    }

    dst->element = (redisReply **) p;
    p += src->elements * sizeof(redisReply *);

    for (i = 0; i < src->elements; i++) {
        el = (redisReply *) p;
        p += ngx_align(sizeof(redisReply), sizeof(void *));

        dst->element[i] = el;
        p = ngx_http_voucher_reply_fill(el, src->element[i], p);
    }

    return p;
}


/*
 * The native module.  VOUCHER.VERSION answers the version of the library
 * the module was built from, then the functions it answers for; when the
 * version is ours, those go as its commands on this context.  Anything
 * else (no module, another version, an error) keeps FCALL.  A native
 * command answered "unknown command" (MODULE UNLOAD) goes again as FCALL
 * on the same context, and the pool's contexts stop using the module.
 */

static ngx_int_t
ngx_http_voucher_native_probe(ngx_http_voucher_conn_t *conn)
{
    const char  *argv[1];
    size_t       argvlen[1];

    argv[0] = "VOUCHER.VERSION";
    argvlen[0] = sizeof("VOUCHER.VERSION") - 1;

    return ngx_http_voucher_redis_command(conn,
                                          ngx_http_voucher_native_reply,
                                          conn, 1, argv, argvlen);
}


static void
ngx_http_voucher_native_reply(redisAsyncContext *ac, void *r, void *data)
{
    redisReply               *reply = r;
    ngx_http_voucher_conn_t  *conn = data;

    size_t       i, j;
    u_char       buf[256], *p, *last;
    redisReply  *e;

    if (reply == NULL || conn->state != NGX_HTTP_VOUCHER_HANDSHAKE) {
        return;
    }

    conn->probed = 1;
    conn->native = 0;

    p = buf;
    last = buf + sizeof(buf);

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1
        && reply->element[0]->type == REDIS_REPLY_STRING
        && reply->element[0]->len == sizeof(VOUCHER_LUA_VERSION) - 1
        && ngx_strncmp(reply->element[0]->str, VOUCHER_LUA_VERSION,
                       reply->element[0]->len)
           == 0)
    {
        for (i = 1; i < reply->elements; i++) {
            e = reply->element[i];

            if (e->type != REDIS_REPLY_STRING) {
                continue;
            }

            for (j = 0; ngx_http_voucher_native_fns[j].fn.len; j++) {
                if (e->len == ngx_http_voucher_native_fns[j].fn.len
                    && ngx_strncmp(e->str,
                                   ngx_http_voucher_native_fns[j].fn.data,
                                   e->len)
                       == 0)
                {
                    conn->native |= (ngx_uint_t) 1 << j;
                    p = ngx_slprintf(p, last, " %V",
                                     &ngx_http_voucher_native_fns[j].fn);
                }
            }
        }
    }

    if (conn->native) {
        ngx_log_error(NGX_LOG_INFO, conn->pool->log, 0,
                      "voucher: redis %V: native module for%*s, "
                      "FCALL for the rest",
                      &conn->pool->conf->addr_text, p - buf, buf);

    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1
               && reply->element[0]->type == REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_INFO, conn->pool->log, 0,
                      "voucher: redis %V: native module built from "
                      "library %*s, not %s: using FCALL",
                      &conn->pool->conf->addr_text,
                      (size_t) reply->element[0]->len,
                      reply->element[0]->str, VOUCHER_LUA_VERSION);

    } else {
        ngx_log_error(NGX_LOG_INFO, conn->pool->log, 0,
                      "voucher: redis %V: no native module, using FCALL",
                      &conn->pool->conf->addr_text);
    }

    ngx_http_voucher_redis_ready(conn);
}


static ngx_int_t
ngx_http_voucher_native_lost(ngx_http_voucher_conn_t *conn,
    ngx_http_voucher_op_t *op, redisReply *reply)
{
    ngx_uint_t  i, had;

    if (ngx_strstrn((u_char *) reply->str, "unknown command",
                    sizeof("unknown command") - 2)
        == NULL)
    {
        return NGX_DECLINED;
    }

    had = 0;

    for (i = 0; i < conn->pool->nconns; i++) {
        had |= conn->pool->conns[i].native;
        conn->pool->conns[i].native = 0;
        ngx_http_voucher_redis_native_gauge(&conn->pool->conns[i]);
    }

    if (had) {
        ngx_log_error(NGX_LOG_INFO, conn->pool->log, 0,
                      "voucher: redis %V: the native module is gone, "
                      "using FCALL", &conn->pool->conf->addr_text);
    }

    /* its request is alive (or it owns its arguments): it goes again */

    if ((op->data == NULL && op->owned == NULL) || op->argv == NULL
        || conn->state != NGX_HTTP_VOUCHER_READY || conn->pool->exiting)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_voucher_redis_submit(conn, op) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * A context's state, and voucher_metrics' gauges with it: connections by
 * state, and those ready that have the native module.
 */

static void
ngx_http_voucher_redis_state(ngx_http_voucher_conn_t *conn, ngx_uint_t state)
{
    if (conn->counted) {
        ngx_http_voucher_metrics_conn(conn->pool->conf, conn->pool->replica,
                                      ngx_http_voucher_conn_gauge(conn->state),
                                      ngx_http_voucher_conn_gauge(state));
    }

    conn->state = state;

    ngx_http_voucher_redis_native_gauge(conn);
}


static void
ngx_http_voucher_redis_native_gauge(ngx_http_voucher_conn_t *conn)
{
    ngx_uint_t  native;

    native = conn->counted && !conn->pool->replica && conn->native
             && conn->state == NGX_HTTP_VOUCHER_READY;

    if (native != conn->counted_native) {
        ngx_http_voucher_metrics_store_add(conn->pool->conf,
                                           NGX_HTTP_VOUCHER_M_NATIVE,
                                           native ? 1 : -1);
        conn->counted_native = native;
    }
}


/* a worker that exits takes its share out of the gauges */

static void
ngx_http_voucher_redis_uncount(ngx_http_voucher_conn_t *conn)
{
    if (!conn->counted) {
        return;
    }

    ngx_http_voucher_metrics_conn(conn->pool->conf, conn->pool->replica,
                                  ngx_http_voucher_conn_gauge(conn->state),
                                  NGX_HTTP_VOUCHER_M_CONN_NONE);
    conn->counted = 0;

    ngx_http_voucher_redis_native_gauge(conn);
}
