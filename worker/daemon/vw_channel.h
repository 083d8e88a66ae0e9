
/*
 * Copyright (C) ngx_voucher authors
 *
 * Delivery channels over libcurl: webhook (signed JSON POST), line (LINE
 * Messaging API push), sms (a generic HTTP gateway, the body a template
 * of the configuration) and email (SMTP).  Every call has the channel's
 * connect and total timeouts.  Every message carries its delivery id as
 * an idempotency key (Idempotency-Key, X-Line-Retry-Key, Message-ID), so
 * a message sent again after a crash is recognised by the gateway.
 */


#ifndef _VW_CHANNEL_H_INCLUDED_
#define _VW_CHANNEL_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "vw_config.h"


#define VW_SEND_OK     0            /* delivered (or already was) */
#define VW_SEND_RETRY  1            /* may work later: timeouts, 5xx, 429 */
#define VW_SEND_FAIL   2            /* will not work: 4xx, bad address */


typedef struct {
    const char  *id;                /* campaign:run:member */
    const char  *campaign;
    const char  *run;
    const char  *member;
    const char  *name;
    const char  *phone;
    const char  *email;
    const char  *line;
    const char  *code;              /* as shown to people */
    const char  *message;
    const char  *subject;
    const char  *expires_at;
    const char  *discount;
} vw_message_t;


/* the address the channel needs is missing: why, else NULL */
const char *vw_channel_missing(const vw_channel_t *ch,
    const vw_message_t *msg);

/* sends; err says why it did not work (never holds a secret) */
int vw_channel_send(CURL *curl, const vw_channel_t *ch,
    const vw_message_t *msg, int64_t now, char *err, size_t errlen);

/*
 * An event of an outgoing webhook subscription (vw_webhooks.c): the body
 * POSTed to ch->url, signed with ch->secret as the webhook channel signs,
 * with Idempotency-Key: id and X-Voucher-Event: type.  409 is delivered.
 */
int vw_webhook_post(CURL *curl, const vw_channel_t *ch, const char *id,
    const char *type, const char *body, int64_t now, char *err,
    size_t errlen);

/* the webhook signature: "t=<now>,v1=<hex HMAC-SHA256(secret, now.body)>" */
void vw_webhook_signature(const char *secret, int64_t now, const char *body,
    size_t len, char *out, size_t size);


#endif /* _VW_CHANNEL_H_INCLUDED_ */
