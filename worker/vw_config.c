
/*
 * Copyright (C) ngx_voucher authors
 *
 * The configuration file: see vw_config.h.
 */


#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "vw_config.h"
#include "vw_json.h"
#include "vw_log.h"
#include "vw_template.h"
#include "vw_util.h"


/* the configuration's fields are longs */

static int
vw_cf_int(vw_jerr_t *c, json_t *obj, const char *path, const char *name,
    long min, long max, long *out)
{
    int64_t  n;

    n = *out;

    if (vw_json_int(c, obj, path, name, min, max, &n) != 0) {
        return -1;
    }

    *out = (long) n;

    return 0;
}


static int
vw_cf_secret(vw_jerr_t *c, json_t *obj, const char *path, const char *name,
    int required, char **out)
{
    char  *file, p[256];

    file = NULL;

    if (vw_json_str(c, obj, path, name, required, &file) != 0) {
        return -1;
    }

    if (file == NULL) {
        return 0;
    }

    vw_free_secret(*out);
    *out = vw_read_secret(file, p, sizeof(p));

    free(file);

    if (*out == NULL) {
        snprintf(c->err, c->errlen, "%s.%s: %s", path, name, p);
        return -1;
    }

    return 0;
}


/* "host:port", "[ipv6]:port" or "host" (default_port) */

static int
vw_cf_hostport(vw_jerr_t *c, const char *path, const char *addr,
    long default_port, char **host, int *port)
{
    long   n;
    char  *colon, *end, *h;

    n = default_port;

    if (addr[0] == '[') {
        end = strchr(addr, ']');
        colon = end && end[1] == ':' ? end + 1 : NULL;

        if (end == NULL || (end[1] != '\0' && colon == NULL)) {
            return vw_json_fail(c, path, "expected [ipv6]:port");
        }

        h = vw_xstrndup(addr + 1, (size_t) (end - addr - 1));

    } else {
        colon = strrchr(addr, ':');
        h = colon ? vw_xstrndup(addr, (size_t) (colon - addr))
                  : vw_xstrdup(addr);
    }

    if (colon != NULL) {
        n = strtol(colon + 1, &end, 10);

        if (colon[1] == '\0' || *end != '\0' || n < 1 || n > 65535) {
            free(h);
            return vw_json_fail(c, path, "expected host:port (port 1-65535)");
        }
    }

    if (h[0] == '\0') {
        free(h);
        return vw_json_fail(c, path, "empty host");
    }

    free(*host);
    *host = h;
    *port = (int) n;

    return 0;
}


/*
 * "sentinel": ["host:port", ...], asked in turn for "master" (26379 by
 * default); "replicas": the same, for reads (6379)
 */

static int
vw_cf_hosts(vw_jerr_t *c, json_t *o, const char *name, int defport,
    char **hosts, int *ports, int *count)
{
    int          i, n, rc;
    char         path[64];
    json_t      *list, *v;

    list = json_object_get(o, name);
    if (list == NULL) {
        return 0;
    }

    n = json_is_array(list) ? (int) json_array_size(list) : 0;
    snprintf(path, sizeof(path), "redis.%s", name);

    if (n == 0 || n > VW_SENTINELS_MAX) {
        return vw_json_fail(c, path,
                            "expected a list of 1 to %d \"host:port\"",
                            VW_SENTINELS_MAX);
    }

    for (i = 0; i < n; i++) {
        v = json_array_get(list, (size_t) i);
        snprintf(path, sizeof(path), "redis.%s[%d]", name, i);

        if (!json_is_string(v)) {
            return vw_json_fail(c, path, "expected \"host:port\"");
        }

        rc = vw_cf_hostport(c, path, json_string_value(v), defport,
                            &hosts[i], &ports[i]);
        if (rc != 0) {
            return -1;
        }

        *count = i + 1;
    }

    return 0;
}


static int
vw_cf_redis(vw_jerr_t *c, json_t *o, vw_config_t *cf)
{
    int          rc;
    long         db, t;
    char        *addr;

    static const char *const  names[] = {
        "address", "user", "password_file", "db", "timeout_ms",
        "sentinel", "master", "sentinel_password_file", "replicas", NULL
    };

    if (vw_json_known(c, o, "redis", names) != 0) {
        return -1;
    }

    addr = NULL;

    if (vw_json_str(c, o, "redis", "address", 0, &addr) != 0) {
        return -1;
    }

    if (addr != NULL) {
        free(cf->redis_host);
        cf->redis_host = NULL;

        if (strncmp(addr, "unix:", 5) == 0) {
            if (addr[5] == '\0') {
                free(addr);
                return vw_json_fail(c, "redis.address", "empty socket path");
            }

            cf->redis_unix = vw_xstrdup(addr + 5);

        } else {
            rc = vw_cf_hostport(c, "redis.address", addr, 6379,
                                &cf->redis_host, &cf->redis_port);
            if (rc != 0) {
                free(addr);
                return -1;
            }
        }
    }

    if (vw_cf_hosts(c, o, "sentinel", 26379, cf->sentinel_host,
                    cf->sentinel_port, &cf->nsentinels) != 0
        || vw_cf_hosts(c, o, "replicas", 6379, cf->replica_host,
                       cf->replica_port, &cf->nreplicas) != 0
        || vw_json_str(c, o, "redis", "master", 0, &cf->redis_master) != 0
        || vw_cf_secret(c, o, "redis", "sentinel_password_file", 0,
                        &cf->sentinel_password) != 0)
    {
        free(addr);
        return -1;
    }

    if (cf->nsentinels && addr != NULL) {
        free(addr);
        return vw_json_fail(c, "redis.sentinel",
                            "an address or Sentinels, not both");
    }

    free(addr);

    if (cf->nsentinels && (cf->redis_master == NULL
                           || cf->redis_master[0] == '\0'))
    {
        return vw_json_fail(c, "redis.master",
                            "the master's name is needed with \"sentinel\"");
    }

    if (cf->nsentinels == 0
        && (cf->redis_master != NULL || cf->sentinel_password != NULL))
    {
        return vw_json_fail(c, "redis.sentinel",
                            "\"master\" and \"sentinel_password_file\" "
                            "need \"sentinel\"");
    }

    if (vw_json_str(c, o, "redis", "user", 0, &cf->redis_user) != 0
        || vw_cf_secret(c, o, "redis", "password_file", 0,
                        &cf->redis_password) != 0)
    {
        return -1;
    }

    db = cf->redis_db;
    t = cf->redis_timeout_ms;

    if (vw_cf_int(c, o, "redis", "db", 0, 1000000, &db) != 0
        || vw_cf_int(c, o, "redis", "timeout_ms", 1, 3600000, &t) != 0)
    {
        return -1;
    }

    cf->redis_db = (int) db;
    cf->redis_timeout_ms = t;

    return 0;
}


static int
vw_cf_channel(vw_jerr_t *c, const char *name, json_t *o, vw_channel_t *ch)
{
    char        path[128], *type, why[256];
    long        t;

    static const char *const  sms_fields[] = {
        "to", "text", "from", "id", NULL
    };

    static const char *const  names[] = {
        "type", "url", "secret_file", "token_file", "user", "password_file",
        "from", "subject", "body", "content_type", "timeout_ms",
        "connect_timeout_ms", NULL
    };

    snprintf(path, sizeof(path), "channels.%s", name);

    if (!json_is_object(o)) {
        return vw_json_fail(c, path, "expected an object");
    }

    if (vw_json_known(c, o, path, names) != 0) {
        return -1;
    }

    ch->name = vw_xstrdup(name);
    ch->timeout_ms = 10000;
    ch->connect_timeout_ms = 3000;

    type = NULL;

    if (vw_json_str(c, o, path, "type", 1, &type) != 0) {
        return -1;
    }

    if (strcmp(type, "webhook") == 0) {
        ch->type = VW_CHANNEL_WEBHOOK;

    } else if (strcmp(type, "line") == 0) {
        ch->type = VW_CHANNEL_LINE;

    } else if (strcmp(type, "sms") == 0) {
        ch->type = VW_CHANNEL_SMS;

    } else if (strcmp(type, "email") == 0) {
        ch->type = VW_CHANNEL_EMAIL;

    } else {
        free(type);
        return vw_json_fail(c, path, "type: expected webhook|line|sms|email");
    }

    free(type);

    if (vw_json_str(c, o, path, "url", 1, &ch->url) != 0
        || vw_json_str(c, o, path, "user", 0, &ch->user) != 0
        || vw_json_str(c, o, path, "from", 0, &ch->from) != 0
        || vw_json_str(c, o, path, "subject", 0, &ch->subject) != 0
        || vw_json_str(c, o, path, "body", 0, &ch->body) != 0
        || vw_json_str(c, o, path, "content_type", 0, &ch->content_type) != 0
        || vw_cf_secret(c, o, path, "secret_file",
                        ch->type == VW_CHANNEL_WEBHOOK, &ch->secret) != 0
        || vw_cf_secret(c, o, path, "token_file", ch->type == VW_CHANNEL_LINE,
                        &ch->token) != 0
        || vw_cf_secret(c, o, path, "password_file", 0, &ch->password) != 0)
    {
        return -1;
    }

    t = ch->timeout_ms;

    if (vw_cf_int(c, o, path, "timeout_ms", 1, 600000, &t) != 0) {
        return -1;
    }

    ch->timeout_ms = t;
    t = ch->connect_timeout_ms;

    if (vw_cf_int(c, o, path, "connect_timeout_ms", 1, 600000, &t) != 0) {
        return -1;
    }

    ch->connect_timeout_ms = t;

    if (strncmp(ch->url, "http://", 7) != 0
        && strncmp(ch->url, "https://", 8) != 0
        && ch->type != VW_CHANNEL_EMAIL)
    {
        return vw_json_fail(c, path, "url: expected http:// or https://");
    }

    if (ch->type == VW_CHANNEL_EMAIL) {
        if (strncmp(ch->url, "smtp://", 7) != 0
            && strncmp(ch->url, "smtps://", 8) != 0)
        {
            return vw_json_fail(c, path, "url: expected smtp:// or smtps://");
        }

        if (ch->from == NULL) {
            return vw_json_fail(c, path, "from: required for email");
        }
    }

    if (ch->type == VW_CHANNEL_SMS && ch->body == NULL) {
        return vw_json_fail(c, path, "body: required for sms (the gateway's "
                            "request body, a template)");
    }

    if (ch->body != NULL
        && vw_template_check_fields(ch->body, sms_fields, why, sizeof(why))
           != 0)
    {
        return vw_json_fail(c, path, "body: %s", why);
    }

    return 0;
}


static int
vw_cf_channels(vw_jerr_t *c, json_t *o, vw_config_t *cf)
{
    size_t       i;
    const char  *name;
    json_t      *v;

    cf->nchannels = json_object_size(o);
    cf->channels = vw_xalloc(cf->nchannels * sizeof(vw_channel_t));

    i = 0;

    json_object_foreach(o, name, v) {
        if (name[0] == '\0' || strlen(name) > 64 || strpbrk(name, " {}|:")) {
            return vw_json_fail(c, "channels", "bad channel name \"%s\" (1-64 "
                                "characters, no spaces, braces, '|' or ':')",
                                name);
        }

        if (vw_cf_channel(c, name, v, &cf->channels[i++]) != 0) {
            return -1;
        }
    }

    return 0;
}


int
vw_config_arg(int argc, char **argv, int *i, const char **path)
{
    const char  *a;

    a = argv[*i];

    if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
        && *i + 1 < argc)
    {
        *path = argv[++*i];
        return 1;
    }

    if (strncmp(a, "--config=", 9) == 0) {
        *path = a + 9;
        return 1;
    }

    return 0;
}


/* the defaults, before the file is read */

static void
vw_cf_defaults(vw_config_t *cf, const char *path)
{
    char  host[64];

    memset(cf, 0, sizeof(vw_config_t));

    cf->path = vw_xstrdup(path);
    cf->redis_host = vw_xstrdup("127.0.0.1");
    cf->redis_port = 6379;
    cf->redis_timeout_ms = 5000;
    cf->ns = vw_xstrdup("v");
    cf->log_level = VW_LOG_INFO;
    cf->attempts = 4;
    cf->backoff_ms = 2000;
    cf->backoff_max_ms = 600000;
    cf->lease_s = 60;
    cf->poll_ms = 1000;
    cf->retention_ms = 60000;
    cf->batch = 100;
    cf->admin_max_body = 1048576;
    cf->admin_max_import = 268435456;
    cf->wh_attempts = 8;
    cf->wh_backoff_ms = 1000;
    cf->wh_backoff_max_ms = 3600000;
    cf->wh_timeout_ms = 10000;
    cf->wh_connect_timeout_ms = 3000;
    cf->admin_threads = 2;
    cf->admin_qr_link_days = 90;

    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "voucherd");
    }

    host[sizeof(host) - 1] = '\0';
    cf->consumer = vw_xalloc(strlen(host) + 24);
    sprintf(cf->consumer, "%s-%d", host, (int) getpid());
}


/* "namespace" and "key_file", at the top level */

static int
vw_cf_top(vw_jerr_t *c, json_t *root, vw_config_t *cf)
{
    char  *s;

    if (vw_json_str(c, root, "", "namespace", 0, &cf->ns) != 0
        || vw_json_str(c, root, "", "key_file", 0, &cf->key_file) != 0)
    {
        return -1;
    }

    if (strlen(cf->ns) > 64 || strpbrk(cf->ns, "{} \t")) {
        return vw_json_fail(c, "namespace", "1-64 printable characters, no "
                            "braces or spaces");
    }

    for (s = cf->ns; *s; s++) {
        if ((unsigned char) *s < 0x21 || (unsigned char) *s > 0x7e) {
            return vw_json_fail(c, "namespace", "1-64 printable characters, "
                                "no braces or spaces");
        }
    }

    return 0;
}


static int
vw_cf_log(vw_jerr_t *c, json_t *o, vw_config_t *cf)
{
    char  *s;

    static const char *const  names[] = { "level", "file", NULL };

    s = NULL;

    if (vw_json_known(c, o, "log", names) != 0
        || vw_json_str(c, o, "log", "file", 0, &cf->log_file) != 0
        || vw_json_str(c, o, "log", "level", 0, &s) != 0)
    {
        return -1;
    }

    if (s != NULL) {
        cf->log_level = vw_log_level(s);
        free(s);

        if (cf->log_level < 0) {
            return vw_json_fail(c, "log.level",
                                "expected error|warn|info|debug");
        }
    }

    return 0;
}


static int
vw_cf_delivery(vw_jerr_t *c, json_t *o, vw_config_t *cf)
{
    long  n;

    static const char *const  names[] = {
        "attempts", "backoff_ms", "backoff_max_ms", "lease_s", NULL
    };

    n = cf->attempts;

    if (vw_json_known(c, o, "delivery", names) != 0
        || vw_cf_int(c, o, "delivery", "attempts", 1, 100, &n) != 0
        || vw_cf_int(c, o, "delivery", "backoff_ms", 1, 86400000,
                     &cf->backoff_ms) != 0
        || vw_cf_int(c, o, "delivery", "backoff_max_ms", 1, 86400000,
                     &cf->backoff_max_ms) != 0
        || vw_cf_int(c, o, "delivery", "lease_s", 1, 86400,
                     &cf->lease_s) != 0)
    {
        return -1;
    }

    cf->attempts = (int) n;

    return 0;
}


static int
vw_cf_daemon(vw_jerr_t *c, json_t *o, vw_config_t *cf)
{
    long  n;

    static const char *const  names[] = {
        "poll_ms", "batch", "consumer", "retention_ms", NULL
    };

    n = cf->batch;

    if (vw_json_known(c, o, "daemon", names) != 0
        || vw_cf_int(c, o, "daemon", "poll_ms", 10, 3600000,
                     &cf->poll_ms) != 0
        || vw_cf_int(c, o, "daemon", "retention_ms", 10, 86400000,
                     &cf->retention_ms) != 0
        || vw_cf_int(c, o, "daemon", "batch", 1, 100000, &n) != 0
        || vw_json_str(c, o, "daemon", "consumer", 0, &cf->consumer) != 0)
    {
        return -1;
    }

    cf->batch = (int) n;

    return 0;
}


static int
vw_cf_admin(vw_jerr_t *c, json_t *o, vw_config_t *cf)
{
    static const char *const  names[] = {
        "listen", "tokens_file", "metrics_token_file", "max_body",
        "max_import", "threads", "qr_link", "qr_link_key_file",
        "qr_link_days", NULL
    };

    if (vw_json_known(c, o, "admin", names) != 0
        || vw_json_str(c, o, "admin", "listen", 1, &cf->admin_listen) != 0
        || vw_json_str(c, o, "admin", "tokens_file", 1,
                       &cf->admin_tokens_file) != 0
        || vw_json_str(c, o, "admin", "metrics_token_file", 0,
                       &cf->admin_metrics_token_file) != 0
        || vw_cf_int(c, o, "admin", "max_body", 1024, 1073741824,
                     &cf->admin_max_body) != 0
        || vw_cf_int(c, o, "admin", "max_import", 1024, 1073741824,
                     &cf->admin_max_import) != 0
        || vw_cf_int(c, o, "admin", "threads", 1, 64,
                     &cf->admin_threads) != 0
        || vw_json_str(c, o, "admin", "qr_link", 0, &cf->admin_qr_link) != 0
        || vw_cf_secret(c, o, "admin", "qr_link_key_file", 0,
                        &cf->admin_qr_link_key) != 0
        || vw_cf_int(c, o, "admin", "qr_link_days", 1, 3650,
                     &cf->admin_qr_link_days) != 0)
    {
        return -1;
    }

    /* links to /qr are signed: no link without its key */
    if (cf->admin_qr_link != NULL
        && (cf->admin_qr_link_key == NULL
            || strlen(cf->admin_qr_link_key) < 32))
    {
        return vw_json_fail(c, "admin.qr_link_key_file", "qr_link needs a "
                            "key file of 32 or more characters");
    }

    return 0;
}


static int
vw_cf_webhooks(vw_jerr_t *c, json_t *o, vw_config_t *cf)
{
    long  n;

    static const char *const  names[] = {
        "attempts", "backoff_ms", "backoff_max_ms", "timeout_ms",
        "connect_timeout_ms", NULL
    };

    n = cf->wh_attempts;

    if (vw_json_known(c, o, "webhooks", names) != 0
        || vw_cf_int(c, o, "webhooks", "attempts", 1, 100, &n) != 0
        || vw_cf_int(c, o, "webhooks", "backoff_ms", 1, 86400000,
                     &cf->wh_backoff_ms) != 0
        || vw_cf_int(c, o, "webhooks", "backoff_max_ms", 1, 604800000,
                     &cf->wh_backoff_max_ms) != 0
        || vw_cf_int(c, o, "webhooks", "timeout_ms", 100, 600000,
                     &cf->wh_timeout_ms) != 0
        || vw_cf_int(c, o, "webhooks", "connect_timeout_ms", 100, 600000,
                     &cf->wh_connect_timeout_ms) != 0)
    {
        return -1;
    }

    cf->wh_attempts = (int) n;

    return 0;
}


/* "phone": {"country": "TH"}: what a national phone number is */

static int
vw_cf_phone(vw_jerr_t *c, json_t *o, vw_config_t *cf)
{
    int                       rc;
    char                     *s, why[128];
    static const char *const  names[] = { "country", NULL };

    s = NULL;

    if (vw_json_known(c, o, "phone", names) != 0
        || vw_json_str(c, o, "phone", "country", 1, &s) != 0)
    {
        return -1;
    }

    rc = 0;

    if (vw_phone_country(s, &cf->phone, why, sizeof(why)) != 0) {
        rc = vw_json_fail(c, "phone.country", "%s", why);
    }

    free(s);

    return rc;
}


/*
 * "stores": {"NAME": {"redis": {...}, "namespace": "...", "key_file":
 * "..."}, ...}, each store as the top level of a file without stores says
 * it; the rest of the file is shared.  want: the store to read, or NULL.
 */

static int vw_cf_section(vw_jerr_t *c, json_t *root, const char *name,
    int (*parse)(vw_jerr_t *c, json_t *o, vw_config_t *cf), vw_config_t *cf);


static int
vw_cf_stores(vw_jerr_t *c, json_t *root, const char *want, vw_config_t *cf)
{
    int          rc;
    char        *e, path[80];
    json_t      *stores, *o;
    const char  *name;

    static const char *const  names[] = {
        "redis", "namespace", "key_file", NULL
    };

    stores = json_object_get(root, "stores");

    if (stores == NULL) {
        if (want) {
            return vw_json_fail(c, "stores", "no store \"%s\": the "
                                "configuration has no stores", want);
        }

        return 0;
    }

    if (!json_is_object(stores) || json_object_size(stores) == 0
        || json_object_size(stores) > VW_STORES_MAX)
    {
        return vw_json_fail(c, "stores", "expected an object of 1 to %d "
                            "stores", VW_STORES_MAX);
    }

    if (json_object_get(root, "redis") || json_object_get(root, "namespace")
        || json_object_get(root, "key_file"))
    {
        return vw_json_fail(c, "stores", "\"redis\", \"namespace\" and "
                            "\"key_file\" go in each store");
    }

    json_object_foreach(stores, name, o) {
        if (strlen(name) == 0 || strlen(name) > 64
            || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                            "vwxyz0123456789_-") != strlen(name))
        {
            return vw_json_fail(c, "stores", "a store's name: 1-64 of "
                                "A-Z a-z 0-9 _ -");
        }

        if (!json_is_object(o)) {
            return vw_json_fail(c, "stores", "%s: expected an object", name);
        }

        cf->stores[cf->nstores++] = vw_xstrdup(name);
    }

    if (want == NULL) {
        return 0;
    }

    o = json_object_get(stores, want);

    if (o == NULL) {
        return vw_json_fail(c, "stores", "no store \"%s\"", want);
    }

    cf->store = vw_xstrdup(want);

    snprintf(path, sizeof(path), "stores.%s", want);

    if (vw_json_known(c, o, path, names) != 0) {
        return -1;
    }

    rc = (vw_cf_section(c, o, "redis", vw_cf_redis, cf) == 0
          && vw_cf_top(c, o, cf) == 0) ? 0 : -1;

    if (rc != 0) {
        /* the field's path, from the top */
        e = vw_xstrdup(c->err);
        snprintf(c->err, c->errlen, "stores.%s.%s", want, e);
        free(e);
    }

    return rc;
}


/* a section of the file, an object, read by parse when it is there */

static int
vw_cf_section(vw_jerr_t *c, json_t *root, const char *name,
    int (*parse)(vw_jerr_t *c, json_t *o, vw_config_t *cf), vw_config_t *cf)
{
    int      rc;
    json_t  *o;

    o = vw_json_obj(c, root, "", name, &rc);

    if (o == NULL) {
        return rc;
    }

    return parse(c, o, cf);
}


static const char  *vw_config_store;


void
vw_config_select(const char *store)
{
    vw_config_store = store;
}


int
vw_config_load(const char *path, vw_config_t *cf, char *err, size_t errlen)
{
    return vw_config_load_store(path, vw_config_store, cf, err, errlen);
}


int
vw_config_load_store(const char *path, const char *store, vw_config_t *cf,
    char *err, size_t errlen)
{
    int           rc;
    char         *s;
    json_t       *root;
    vw_jerr_t     c;
    json_error_t  je;

    static const char *const  names[] = {
        "redis", "namespace", "key_file", "log", "delivery", "daemon",
        "channels", "admin", "webhooks", "phone", "stores", NULL
    };

    vw_cf_defaults(cf, path);

    c.err = err;
    c.errlen = errlen;

    root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        if (je.line <= 0) {
            snprintf(err, errlen, "config \"%s\": %s", path, je.text);

        } else {
            snprintf(err, errlen, "config \"%s\" line %d column %d: %s",
                     path, je.line, je.column, je.text);
        }

        return -1;
    }

    rc = -1;

    if (!json_is_object(root)) {
        snprintf(err, errlen, "config \"%s\": expected a JSON object", path);

    } else if (vw_json_known(&c, root, "config", names) == 0
               && vw_cf_section(&c, root, "redis", vw_cf_redis, cf) == 0
               && vw_cf_top(&c, root, cf) == 0
               && vw_cf_stores(&c, root, store, cf) == 0
               && vw_cf_section(&c, root, "log", vw_cf_log, cf) == 0
               && vw_cf_section(&c, root, "delivery", vw_cf_delivery, cf)
                  == 0
               && vw_cf_section(&c, root, "daemon", vw_cf_daemon, cf) == 0
               && vw_cf_section(&c, root, "channels", vw_cf_channels, cf)
                  == 0
               && vw_cf_section(&c, root, "admin", vw_cf_admin, cf) == 0
               && vw_cf_section(&c, root, "webhooks", vw_cf_webhooks, cf)
                  == 0
               && vw_cf_section(&c, root, "phone", vw_cf_phone, cf) == 0)
    {
        rc = 0;
    }

    json_decref(root);

    if (rc != 0) {
        /* the message names the field; say which file it is in */
        if (strncmp(err, "config ", 7) != 0) {
            s = vw_xstrdup(err);
            snprintf(err, errlen, "config \"%s\": %s", path, s);
            free(s);
        }

        vw_config_free(cf);
    }

    return rc;
}


void
vw_config_free(vw_config_t *cf)
{
    size_t         i;
    vw_channel_t  *ch;

    for (i = 0; i < cf->nchannels; i++) {
        ch = &cf->channels[i];
        free(ch->name);
        free(ch->url);
        vw_free_secret(ch->secret);
        vw_free_secret(ch->token);
        free(ch->user);
        vw_free_secret(ch->password);
        free(ch->from);
        free(ch->subject);
        free(ch->body);
        free(ch->content_type);
    }

    free(cf->channels);
    free(cf->path);
    free(cf->store);

    for (i = 0; i < (size_t) cf->nstores; i++) {
        free(cf->stores[i]);
    }

    free(cf->redis_host);
    free(cf->redis_unix);
    free(cf->redis_user);
    vw_free_secret(cf->redis_password);
    free(cf->redis_master);
    vw_free_secret(cf->sentinel_password);

    for (i = 0; i < (size_t) cf->nsentinels; i++) {
        free(cf->sentinel_host[i]);
    }

    for (i = 0; i < (size_t) cf->nreplicas; i++) {
        free(cf->replica_host[i]);
    }
    free(cf->ns);
    free(cf->key_file);
    free(cf->log_file);
    free(cf->consumer);
    free(cf->admin_listen);
    free(cf->admin_tokens_file);
    free(cf->admin_metrics_token_file);
    free(cf->admin_qr_link);
    vw_free_secret(cf->admin_qr_link_key);

    memset(cf, 0, sizeof(vw_config_t));
}


vw_channel_t *
vw_config_channel(const vw_config_t *cf, const char *name)
{
    size_t  i;

    for (i = 0; i < cf->nchannels; i++) {
        if (strcmp(cf->channels[i].name, name) == 0) {
            return &cf->channels[i];
        }
    }

    return NULL;
}


char *
vw_key(const vw_config_t *cf, const char *fmt, ...)
{
    int       n;
    char     *p;
    size_t    pre;
    va_list   args;

    pre = strlen(cf->ns) + 3;

    va_start(args, fmt);
    n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);

    if (n < 0) {
        n = 0;
    }

    p = vw_xalloc(pre + (size_t) n + 1);
    sprintf(p, "{%s}:", cf->ns);

    va_start(args, fmt);
    vsnprintf(p + pre, (size_t) n + 1, fmt, args);
    va_end(args);

    return p;
}
