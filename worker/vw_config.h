
/*
 * Copyright (C) ngx_voucher authors
 *
 * The JSON configuration file of voucherd and voucherctl.  Every field is
 * documented in docs/worker.md.  Unknown fields are errors, so
 * a typo never goes unnoticed; an error names the field by its path
 * ("channels.sms.url").  Secrets are read from their files here and kept
 * only in memory.
 */


#ifndef _VW_CONFIG_H_INCLUDED_
#define _VW_CONFIG_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "vw_phone.h"


#define VW_CHANNEL_WEBHOOK  1
#define VW_CHANNEL_LINE     2
#define VW_CHANNEL_SMS      3
#define VW_CHANNEL_EMAIL    4


typedef struct {
    char          *name;
    int            type;
    char          *url;
    char          *secret;          /* webhook: HMAC key */
    char          *token;           /* line, sms: bearer token */
    char          *user;            /* email: SMTP user */
    char          *password;        /* email: SMTP password */
    char          *from;            /* email: sender; sms: sender id */
    char          *subject;         /* email: subject template */
    char          *body;            /* sms: request body template */
    char          *content_type;    /* sms: of the body */
    long           timeout_ms;
    long           connect_timeout_ms;
} vw_channel_t;


#define VW_SENTINELS_MAX  16
#define VW_STORES_MAX     64


typedef struct {
    char          *path;

    /*
     * "stores": the names, in the file's order; store: the one this
     * configuration is for (its redis, namespace and key_file), NULL when
     * the file has no stores or none was chosen
     */
    char          *store;
    char          *stores[VW_STORES_MAX];
    int            nstores;

    char          *redis_host;      /* NULL with a unix socket */
    int            redis_port;
    char          *redis_unix;
    char          *redis_user;
    char          *redis_password;
    int            redis_db;
    long           redis_timeout_ms;

    /* the master by name, from Sentinel, instead of redis_host */
    int            nsentinels;
    char          *sentinel_host[VW_SENTINELS_MAX];
    int            sentinel_port[VW_SENTINELS_MAX];
    char          *redis_master;
    char          *sentinel_password;

    /* replicas the read-only commands (report, codes export) may use */
    int            nreplicas;
    char          *replica_host[VW_SENTINELS_MAX];
    int            replica_port[VW_SENTINELS_MAX];

    char          *ns;              /* the namespace: keys are {ns}:... */
    char          *key_file;

    char          *log_file;
    int            log_level;

    int            attempts;        /* delivery attempts, first included */
    long           backoff_ms;      /* before the second attempt */
    long           backoff_max_ms;
    long           lease_s;         /* a claimed delivery is taken back */

    long           poll_ms;
    long           retention_ms;    /* between two retention rounds */
    int            batch;
    char          *consumer;        /* name in the events consumer group */

    vw_channel_t  *channels;
    size_t         nchannels;

    /* the admin API of voucherd (docs/admin-api.md); off without listen */
    char          *admin_listen;    /* "host:port" (loopback) or "unix:..." */
    char          *admin_tokens_file;
    char          *admin_metrics_token_file;  /* /metrics only */
    long           admin_max_body;  /* bytes of a JSON body */
    long           admin_max_import;    /* bytes of a file to import */
    long           admin_threads;
    char          *admin_qr_link;   /* the public URL of /qr: {{qr_url}} */
    char          *admin_qr_link_key;   /* the secret signing its links */
    long           admin_qr_link_days;  /* a link's life, for a code with
                                           no end */

    /* outgoing webhooks (docs/admin-api.md#outgoing-webhooks) */
    int            wh_attempts;
    long           wh_backoff_ms;
    long           wh_backoff_max_ms;
    long           wh_timeout_ms;
    long           wh_connect_timeout_ms;
    vw_phone_country_t  phone;      /* phone.country: national numbers */
} vw_config_t;


/* the configuration without -c and $VOUCHER_CONFIG */
#define VW_CONFIG_DEFAULT  "/etc/voucher/voucher.json"

/* -c in the usage of both programs */
#define VW_CONFIG_USAGE                                                       \
    "  -c, --config FILE   the configuration (default $VOUCHER_CONFIG or\n"   \
    "                      " VW_CONFIG_DEFAULT ")\n"


/*
 * The configuration's path on the command line: "-c FILE", "--config
 * FILE" or "--config=FILE" at argv[*i] sets *path, leaves *i at its last
 * word and returns 1; anything else returns 0.
 */
int vw_config_arg(int argc, char **argv, int *i, const char **path);

int vw_config_load(const char *path, vw_config_t *cf, char *err,
    size_t errlen);

/*
 * A configuration with "stores": vw_config_load() reads the store chosen
 * by vw_config_select() (voucherctl --store, a store's process of
 * voucherd), or none; vw_config_load_store() the one named.
 */
void vw_config_select(const char *store);
int vw_config_load_store(const char *path, const char *store,
    vw_config_t *cf, char *err, size_t errlen);
void vw_config_free(vw_config_t *cf);

vw_channel_t *vw_config_channel(const vw_config_t *cf, const char *name);

/* "{ns}:" followed by the formatted rest, into a new string */
char *vw_key(const vw_config_t *cf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


#endif /* _VW_CONFIG_H_INCLUDED_ */
