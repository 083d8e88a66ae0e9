
/*
 * Copyright (C) ngx_voucher authors
 *
 * Where the master is, from Redis Sentinel, without blocking the worker.
 *
 * Each worker keeps one link to one Sentinel (hiredis' async API on
 * nginx's event loop, like the data connections).  On it go, pipelined,
 * AUTH (with sentinel_password_file=), SENTINEL get-master-addr-by-name
 * and SUBSCRIBE +switch-master: the Sentinel runs the three in one go, so
 * no switch falls between the answer and the subscription.  The answer,
 * then every +switch-master of our master, is handed to the store's
 * handler, so every worker moves as soon as the failover is done.
 *
 * A Sentinel that does not answer in time, does not know the master, or
 * names it by a host name (a worker never resolves one) is left for the
 * next.  A lost link is made anew with the next Sentinel: at once while
 * some have not been tried this round, then after a back-off of 100 ms
 * doubling up to 1 s.  The store asks again (ngx_http_voucher_sentinel_ask)
 * when it loses the master, and the link is then made anew, at most once
 * a second, so a link that went quiet never keeps a stale address.
 */


#include "ngx_http_voucher.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


#define NGX_HTTP_VOUCHER_SENTINEL_DOWN      0
#define NGX_HTTP_VOUCHER_SENTINEL_ASKING    1
#define NGX_HTTP_VOUCHER_SENTINEL_WATCHING  2

#define NGX_HTTP_VOUCHER_SENTINEL_BACKOFF_MIN  100
#define NGX_HTTP_VOUCHER_SENTINEL_BACKOFF_MAX  1000

/* the shortest time between two links made anew on request */
#define NGX_HTTP_VOUCHER_SENTINEL_REASK        1000


struct ngx_http_voucher_sentinel_s {
    ngx_http_voucher_store_t    *store;
    ngx_log_t                   *log;
    ngx_http_voucher_master_pt   handler;
    ngx_http_voucher_master_pt   replica;   /* replicas=sentinel, or NULL */
    void                        *data;

    redisAsyncContext           *ac;
    ngx_connection_t            *c;
    ngx_http_voucher_addr_t     *addr;      /* the Sentinel of the link */
    ngx_uint_t                   next;      /* the Sentinel to ask next */
    ngx_uint_t                   tried;     /* since one last answered */
    ngx_uint_t                   state;
    ngx_msec_t                   since;     /* the link made, or news */
    ngx_msec_t                   backoff;
    ngx_event_t                  retry;
    ngx_event_t                  timer;     /* connect and first answer */
    unsigned                     exiting:1;
};


static void ngx_http_voucher_sentinel_connect(ngx_http_voucher_sentinel_t *s);
static void ngx_http_voucher_sentinel_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_voucher_sentinel_auth_reply(redisAsyncContext *ac,
    void *r, void *data);
static void ngx_http_voucher_sentinel_master_reply(redisAsyncContext *ac,
    void *r, void *data);
static void ngx_http_voucher_sentinel_message(redisAsyncContext *ac,
    void *r, void *data);
static void ngx_http_voucher_sentinel_replicas_reply(redisAsyncContext *ac,
    void *r, void *data);
static ngx_int_t ngx_http_voucher_sentinel_tell(ngx_http_voucher_sentinel_t *s,
    u_char *host, size_t hlen, u_char *port, size_t plen);
static ngx_int_t ngx_http_voucher_sentinel_address(
    ngx_http_voucher_sentinel_t *s, u_char *host, size_t hlen, u_char *port,
    size_t plen, u_char *buf, in_port_t *out);
static void ngx_http_voucher_sentinel_drop(ngx_http_voucher_sentinel_t *s,
    const char *why);
static void ngx_http_voucher_sentinel_retry_handler(ngx_event_t *ev);
static void ngx_http_voucher_sentinel_timeout(ngx_event_t *ev);

static void ngx_http_voucher_sentinel_add_read(void *data);
static void ngx_http_voucher_sentinel_del_read(void *data);
static void ngx_http_voucher_sentinel_add_write(void *data);
static void ngx_http_voucher_sentinel_del_write(void *data);
static void ngx_http_voucher_sentinel_cleanup(void *data);
static void ngx_http_voucher_sentinel_read_handler(ngx_event_t *ev);
static void ngx_http_voucher_sentinel_write_handler(ngx_event_t *ev);


ngx_http_voucher_sentinel_t *
ngx_http_voucher_sentinel_start(ngx_cycle_t *cycle,
    ngx_http_voucher_store_t *store, ngx_http_voucher_master_pt handler,
    void *data)
{
    ngx_http_voucher_sentinel_t  *s;

    s = ngx_pcalloc(cycle->pool, sizeof(ngx_http_voucher_sentinel_t));
    if (s == NULL) {
        return NULL;
    }

    s->store = store;
    s->log = cycle->log;
    s->handler = handler;
    s->data = data;
    s->backoff = NGX_HTTP_VOUCHER_SENTINEL_BACKOFF_MIN;

    /* the workers start at different Sentinels */
    s->next = ngx_pid % store->sentinels->nelts;

    s->retry.handler = ngx_http_voucher_sentinel_retry_handler;
    s->retry.data = s;
    s->retry.log = cycle->log;
    s->retry.cancelable = 1;

    s->timer.handler = ngx_http_voucher_sentinel_timeout;
    s->timer.data = s;
    s->timer.log = cycle->log;
    s->timer.cancelable = 1;

    ngx_http_voucher_sentinel_connect(s);

    return s;
}


void
ngx_http_voucher_sentinel_stop(ngx_http_voucher_sentinel_t *s)
{
    s->exiting = 1;

    if (s->retry.timer_set) {
        ngx_del_timer(&s->retry);
    }

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    if (s->ac) {
        s->state = NGX_HTTP_VOUCHER_SENTINEL_DOWN;
        redisAsyncFree(s->ac);
    }
}


/*
 * replicas=sentinel: the replicas Sentinel knows go to handler too, those
 * of every new link ("SENTINEL replicas") and each "+slave" it announces
 * (after a failover, the old master among them).  Set right after start,
 * before the link is made.
 */

void
ngx_http_voucher_sentinel_watch_replicas(ngx_http_voucher_sentinel_t *s,
    ngx_http_voucher_master_pt handler)
{
    s->replica = handler;
}


/* the store lost its master: a link made a while ago is made anew */

void
ngx_http_voucher_sentinel_ask(ngx_http_voucher_sentinel_t *s)
{
    if (s->exiting || s->state != NGX_HTTP_VOUCHER_SENTINEL_WATCHING) {
        return;
    }

    if (ngx_current_msec - s->since < NGX_HTTP_VOUCHER_SENTINEL_REASK) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, s->log, 0,
                   "voucher: sentinel %V: asking again", &s->addr->text);

    s->tried = 0;
    ngx_http_voucher_sentinel_drop(s, NULL);
}


static void
ngx_http_voucher_sentinel_connect(ngx_http_voucher_sentinel_t *s)
{
    ngx_array_t              *list;
    ngx_connection_t         *c;
    redisAsyncContext        *ac;
    ngx_http_voucher_addr_t  *addr;

    list = s->store->sentinels;
    addr = (ngx_http_voucher_addr_t *) list->elts + s->next % list->nelts;

    s->next = (s->next + 1) % list->nelts;
    s->tried++;
    s->addr = addr;

    /* a numeric address: hiredis' getaddrinfo() does no lookup */
    ac = redisAsyncConnect((char *) addr->host.data, addr->port);

    if (ac == NULL || ac->err) {
        ngx_log_error(NGX_LOG_ERR, s->log, 0,
                      "voucher: sentinel %V: connect failed: %s",
                      &addr->text, ac ? ac->errstr : "out of memory");
        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_http_voucher_sentinel_cleanup(s);
        return;
    }

    c = ngx_get_connection(ac->c.fd, s->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_voucher_sentinel_cleanup(s);
        return;
    }

    c->data = s;
    c->read->handler = ngx_http_voucher_sentinel_read_handler;
    c->write->handler = ngx_http_voucher_sentinel_write_handler;
    c->read->log = s->log;
    c->write->log = s->log;

    s->ac = ac;
    s->c = c;
    s->state = NGX_HTTP_VOUCHER_SENTINEL_ASKING;
    s->since = ngx_current_msec;

    ac->data = s;
    ac->ev.data = s;
    ac->ev.addRead = ngx_http_voucher_sentinel_add_read;
    ac->ev.delRead = ngx_http_voucher_sentinel_del_read;
    ac->ev.addWrite = ngx_http_voucher_sentinel_add_write;
    ac->ev.delWrite = ngx_http_voucher_sentinel_del_write;
    ac->ev.cleanup = ngx_http_voucher_sentinel_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_voucher_sentinel_connected);

    ngx_add_timer(&s->timer, s->store->connect_timeout);
}


static void
ngx_http_voucher_sentinel_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_voucher_sentinel_t *s = ac->data;

    int                        argc;
    const char                *argv[3];
    size_t                     argvlen[3];
    redisAsyncContext         *a;
    ngx_http_voucher_store_t  *store;

    if (status != REDIS_OK) {
        /* hiredis frees the context next; the cleanup hook goes on */
        ngx_log_error(NGX_LOG_ERR, s->log, 0,
                      "voucher: sentinel %V: connect failed: %s",
                      &s->addr->text, ac->errstr ? ac->errstr : "unknown");
        s->state = NGX_HTTP_VOUCHER_SENTINEL_DOWN;
        return;
    }

    store = s->store;
    a = s->ac;

    (void) redisEnableKeepAlive(&a->c);

    if (store->sentinel_password.len) {
        argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;
        argv[argc] = (char *) store->sentinel_password.data;
        argvlen[argc++] = store->sentinel_password.len;

        if (redisAsyncCommandArgv(a, ngx_http_voucher_sentinel_auth_reply,
                                  s, argc, argv, argvlen)
            != REDIS_OK)
        {
            goto failed;
        }
    }

    argv[0] = "SENTINEL";
    argvlen[0] = 8;
    argv[1] = "get-master-addr-by-name";
    argvlen[1] = sizeof("get-master-addr-by-name") - 1;
    argv[2] = (char *) store->master_name.data;
    argvlen[2] = store->master_name.len;

    if (redisAsyncCommandArgv(a, ngx_http_voucher_sentinel_master_reply, s,
                              3, argv, argvlen)
        != REDIS_OK)
    {
        goto failed;
    }

    if (s->replica) {
        argv[0] = "SENTINEL";
        argvlen[0] = 8;
        argv[1] = "replicas";
        argvlen[1] = sizeof("replicas") - 1;

        if (redisAsyncCommandArgv(a, ngx_http_voucher_sentinel_replicas_reply,
                                  s, 3, argv, argvlen)
            != REDIS_OK)
        {
            goto failed;
        }
    }

    argv[0] = "SUBSCRIBE";
    argvlen[0] = 9;
    argv[1] = "+switch-master";
    argvlen[1] = sizeof("+switch-master") - 1;
    argv[2] = "+slave";
    argvlen[2] = sizeof("+slave") - 1;

    if (redisAsyncCommandArgv(a, ngx_http_voucher_sentinel_message, s,
                              s->replica ? 3 : 2, argv, argvlen)
        != REDIS_OK)
    {
        goto failed;
    }

    return;

failed:

    /* the timer, already running, drops the link (see the store's) */

    ngx_log_error(NGX_LOG_ERR, s->log, 0,
                  "voucher: sentinel %V: cannot queue the questions",
                  &s->addr->text);
}


static void
ngx_http_voucher_sentinel_auth_reply(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply                   *reply = r;
    ngx_http_voucher_sentinel_t  *s = data;

    if (reply == NULL || s->state != NGX_HTTP_VOUCHER_SENTINEL_ASKING) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* the reply of AUTH never echoes the password */
        ngx_log_error(NGX_LOG_ERR, s->log, 0,
                      "voucher: sentinel %V: AUTH refused: %s",
                      &s->addr->text, reply->str);
        ngx_http_voucher_sentinel_drop(s, NULL);
    }
}


static void
ngx_http_voucher_sentinel_master_reply(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply                   *reply = r;
    ngx_http_voucher_sentinel_t  *s = data;

    if (reply == NULL || s->state != NGX_HTTP_VOUCHER_SENTINEL_ASKING) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, s->log, 0,
                      "voucher: sentinel %V: %s", &s->addr->text,
                      reply->str);
        ngx_http_voucher_sentinel_drop(s, NULL);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_ERR, s->log, 0,
                      "voucher: sentinel %V does not know master \"%V\"",
                      &s->addr->text, &s->store->master_name);
        ngx_http_voucher_sentinel_drop(s, NULL);
        return;
    }

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    s->state = NGX_HTTP_VOUCHER_SENTINEL_WATCHING;

    if (ngx_http_voucher_sentinel_tell(s,
                                       (u_char *) reply->element[0]->str,
                                       reply->element[0]->len,
                                       (u_char *) reply->element[1]->str,
                                       reply->element[1]->len)
        != NGX_OK)
    {
        ngx_http_voucher_sentinel_drop(s, NULL);
        return;
    }

    s->tried = 0;
    s->backoff = NGX_HTTP_VOUCHER_SENTINEL_BACKOFF_MIN;
}


/*
 * "+switch-master": "<name> <old ip> <old port> <new ip> <new port>";
 * "+slave": "slave <ip>:<port> <ip> <port> @ <name> <master ip> <port>"
 */

static void
ngx_http_voucher_sentinel_message(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply                   *reply = r;
    ngx_http_voucher_sentinel_t  *s = data;

    u_char      *p, *last, *f[6], buf[NGX_SOCKADDR_STRLEN + 1];
    size_t       len[6];
    in_port_t    port;
    ngx_uint_t   n, slave;
    redisReply  *msg;

    if (reply == NULL || s->state != NGX_HTTP_VOUCHER_SENTINEL_WATCHING
        || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[0]->len != 7
        || ngx_strncmp(reply->element[0]->str, "message", 7) != 0
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    slave = (reply->element[1]->len == sizeof("+slave") - 1
             && ngx_strncmp(reply->element[1]->str, "+slave",
                            sizeof("+slave") - 1) == 0);

    if (slave && s->replica == NULL) {
        return;
    }

    msg = reply->element[2];
    p = (u_char *) msg->str;
    last = p + msg->len;

    for (n = 0; n < (slave ? 6 : 5); n++) {
        while (p < last && *p == ' ') {
            p++;
        }

        f[n] = p;

        while (p < last && *p != ' ') {
            p++;
        }

        len[n] = p - f[n];

        if (len[n] == 0) {
            return;
        }
    }

    if (slave) {
        if (len[5] == s->store->master_name.len
            && ngx_strncmp(f[5], s->store->master_name.data, len[5]) == 0
            && ngx_http_voucher_sentinel_address(s, f[2], len[2], f[3],
                                                 len[3], buf, &port)
               == NGX_OK)
        {
            s->replica(s->data, buf, port);
        }

        return;
    }

    if (len[0] != s->store->master_name.len
        || ngx_strncmp(f[0], s->store->master_name.data, len[0]) != 0)
    {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, s->log, 0,
                  "voucher: sentinel %V: +switch-master %*s",
                  &s->addr->text, msg->len, msg->str);

    if (ngx_http_voucher_sentinel_tell(s, f[3], len[3], f[4], len[4])
        != NGX_OK)
    {
        ngx_http_voucher_sentinel_drop(s, NULL);
    }
}


/* the master's address goes to the store only when it is numeric */

static ngx_int_t
ngx_http_voucher_sentinel_tell(ngx_http_voucher_sentinel_t *s, u_char *host,
    size_t hlen, u_char *port, size_t plen)
{
    u_char     buf[NGX_SOCKADDR_STRLEN + 1];
    in_port_t  n;

    if (ngx_http_voucher_sentinel_address(s, host, hlen, port, plen, buf, &n)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* news, as fresh as a new link: no need to ask again at once */
    s->since = ngx_current_msec;

    s->handler(s->data, buf, n);

    return NGX_OK;
}


/* "SENTINEL replicas": an array of field-value arrays, "ip" and "port" */

static void
ngx_http_voucher_sentinel_replicas_reply(redisAsyncContext *ac, void *r,
    void *data)
{
    redisReply                   *reply = r;
    ngx_http_voucher_sentinel_t  *s = data;

    u_char       buf[NGX_SOCKADDR_STRLEN + 1];
    size_t       i, j;
    in_port_t    port;
    redisReply  *e, *ip, *pt;

    if (reply == NULL || s->state != NGX_HTTP_VOUCHER_SENTINEL_WATCHING
        || reply->type != REDIS_REPLY_ARRAY)
    {
        return;
    }

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];
        ip = NULL;
        pt = NULL;

        for (j = 0; e->type == REDIS_REPLY_ARRAY && j + 1 < e->elements;
             j += 2)
        {
            if (e->element[j]->type != REDIS_REPLY_STRING
                || e->element[j + 1]->type != REDIS_REPLY_STRING)
            {
                continue;
            }

            if (e->element[j]->len == 2
                && ngx_strncmp(e->element[j]->str, "ip", 2) == 0)
            {
                ip = e->element[j + 1];

            } else if (e->element[j]->len == 4
                       && ngx_strncmp(e->element[j]->str, "port", 4) == 0)
            {
                pt = e->element[j + 1];
            }
        }

        if (ip && pt
            && ngx_http_voucher_sentinel_address(s, (u_char *) ip->str,
                                                 ip->len, (u_char *) pt->str,
                                                 pt->len, buf, &port)
               == NGX_OK)
        {
            s->replica(s->data, buf, port);
        }
    }
}


/* a numeric address and its port, or NGX_ERROR (logged) */

static ngx_int_t
ngx_http_voucher_sentinel_address(ngx_http_voucher_sentinel_t *s,
    u_char *host, size_t hlen, u_char *port, size_t plen, u_char *buf,
    in_port_t *out)
{
    ngx_int_t  n;
#if (NGX_HAVE_INET6)
    u_char     a6[16];
#endif

    n = ngx_atoi(port, plen);

    if (hlen == 0 || hlen > NGX_SOCKADDR_STRLEN || n < 1 || n > 65535) {
        ngx_log_error(NGX_LOG_ERR, s->log, 0,
                      "voucher: sentinel %V: invalid address for master "
                      "\"%V\"", &s->addr->text, &s->store->master_name);
        return NGX_ERROR;
    }

    if (ngx_inet_addr(host, hlen) == INADDR_NONE
#if (NGX_HAVE_INET6)
        && ngx_inet6_addr(host, hlen, a6) != NGX_OK
#endif
        )
    {
        ngx_log_error(NGX_LOG_ERR, s->log, 0,
                      "voucher: sentinel %V names a node of \"%V\" by a "
                      "host name (%*s), a worker resolves none: set "
                      "\"sentinel resolve-hostnames no\" and announce IPs",
                      &s->addr->text, &s->store->master_name, hlen, host);
        return NGX_ERROR;
    }

    ngx_memcpy(buf, host, hlen);
    buf[hlen] = '\0';
    *out = (in_port_t) n;

    return NGX_OK;
}


/* when called from a hiredis callback, hiredis frees the link after it */

static void
ngx_http_voucher_sentinel_drop(ngx_http_voucher_sentinel_t *s,
    const char *why)
{
    if (why) {
        ngx_log_error(NGX_LOG_ERR, s->log, 0, "voucher: sentinel %V: %s",
                      &s->addr->text, why);
    }

    s->state = NGX_HTTP_VOUCHER_SENTINEL_DOWN;

    if (s->ac) {
        redisAsyncFree(s->ac);
    }
}


static void
ngx_http_voucher_sentinel_retry_handler(ngx_event_t *ev)
{
    ngx_http_voucher_sentinel_t  *s = ev->data;

    if (s->exiting || s->ac) {
        return;
    }

    ngx_http_voucher_sentinel_connect(s);
}


static void
ngx_http_voucher_sentinel_timeout(ngx_event_t *ev)
{
    ngx_http_voucher_sentinel_t  *s = ev->data;

    ngx_http_voucher_sentinel_drop(s, "no answer in time");
}


static void
ngx_http_voucher_sentinel_add_read(void *data)
{
    ngx_http_voucher_sentinel_t  *s = data;

    if (!s->c->read->active) {
        if (ngx_add_event(s->c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, s->log, 0,
                          "voucher: sentinel: cannot add a read event");
        }
    }
}


static void
ngx_http_voucher_sentinel_del_read(void *data)
{
    ngx_http_voucher_sentinel_t  *s = data;

    if (s->c->read->active) {
        (void) ngx_del_event(s->c->read, NGX_READ_EVENT, 0);
    }
}


/* a few small commands a link: each is written as soon as it can be */

static void
ngx_http_voucher_sentinel_add_write(void *data)
{
    ngx_http_voucher_sentinel_t  *s = data;

    if (!s->c->write->active) {
        if (ngx_add_event(s->c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, s->log, 0,
                          "voucher: sentinel: cannot add a write event");
        }
    }
}


static void
ngx_http_voucher_sentinel_del_write(void *data)
{
    ngx_http_voucher_sentinel_t  *s = data;

    if (s->c->write->active) {
        (void) ngx_del_event(s->c->write, NGX_WRITE_EVENT, 0);
    }
}


/*
 * The link is gone (hiredis closes the fd itself) or could not be made:
 * the next Sentinel is asked, at once while some were not tried this
 * round, else after the back-off.
 */

static void
ngx_http_voucher_sentinel_cleanup(void *data)
{
    ngx_http_voucher_sentinel_t  *s = data;

    ngx_msec_t         delay;
    ngx_connection_t  *c;

    c = s->c;

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

    s->c = NULL;
    s->ac = NULL;
    s->state = NGX_HTTP_VOUCHER_SENTINEL_DOWN;

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    if (s->exiting || s->retry.timer_set) {
        return;
    }

    if (s->tried < s->store->sentinels->nelts) {
        delay = 1;

    } else {
        delay = s->backoff;
        s->tried = 0;

        s->backoff *= 2;
        if (s->backoff > NGX_HTTP_VOUCHER_SENTINEL_BACKOFF_MAX) {
            s->backoff = NGX_HTTP_VOUCHER_SENTINEL_BACKOFF_MAX;
        }
    }

    ngx_add_timer(&s->retry, delay);
}


static void
ngx_http_voucher_sentinel_read_handler(ngx_event_t *ev)
{
    ngx_connection_t             *c = ev->data;
    ngx_http_voucher_sentinel_t  *s = c->data;

    redisAsyncHandleRead(s->ac);
}


static void
ngx_http_voucher_sentinel_write_handler(ngx_event_t *ev)
{
    ngx_connection_t             *c = ev->data;
    ngx_http_voucher_sentinel_t  *s = c->data;

    redisAsyncHandleWrite(s->ac);
}
