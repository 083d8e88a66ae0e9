
/*
 * Copyright (C) ngx_voucher authors
 *
 * Delivery channels: see vw_channel.h.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "vw_channel.h"
#include "vw_template.h"
#include "vw_util.h"


/* what an HTTP answer body may add to an error message */
#define VW_ERR_BODY  160


typedef struct {
    const char  *data;
    size_t       len;
    size_t       off;
} vw_upload_t;


static size_t
vw_curl_body(char *p, size_t size, size_t n, void *ctx)
{
    vw_buf_t  *b = ctx;

    /* keep the start of the answer, for the error message */
    if (b->len < VW_ERR_BODY) {
        vw_buf_add(b, p, size * n < VW_ERR_BODY ? size * n : VW_ERR_BODY);
    }

    return size * n;
}


static size_t
vw_curl_upload(char *p, size_t size, size_t n, void *ctx)
{
    size_t        len;
    vw_upload_t  *u = ctx;

    len = u->len - u->off;

    if (len > size * n) {
        len = size * n;
    }

    memcpy(p, u->data + u->off, len);
    u->off += len;

    return len;
}


const char *
vw_channel_missing(const vw_channel_t *ch, const vw_message_t *msg)
{
    switch (ch->type) {
    case VW_CHANNEL_LINE:
        return msg->line ? NULL : "the member has no LINE user id";
    case VW_CHANNEL_SMS:
        return msg->phone ? NULL : "the member has no phone number";
    case VW_CHANNEL_EMAIL:
        return msg->email ? NULL : "the member has no email address";
    default:
        return NULL;
    }
}


void
vw_webhook_signature(const char *secret, int64_t now, const char *body,
    size_t len, char *out, size_t size)
{
    char                              ts[32];
    char                              hex[crypto_auth_hmacsha256_BYTES * 2
                                          + 1];
    unsigned char                     mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state      st;

    snprintf(ts, sizeof(ts), "%lld", (long long) now);

    crypto_auth_hmacsha256_init(&st, (const unsigned char *) secret,
                                strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *) ts,
                                  strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *) ".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *) body, len);
    crypto_auth_hmacsha256_final(&st, mac);

    sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
    snprintf(out, size, "t=%s,v1=%s", ts, hex);

    sodium_memzero(&st, sizeof(st));
}


/* a UUID (the form LINE wants for X-Line-Retry-Key) made from the id */

static void
vw_uuid_of(const char *id, char *out, size_t size)
{
    unsigned char  h[16];

    crypto_generichash(h, sizeof(h), (const unsigned char *) id, strlen(id),
                       NULL, 0);

    h[6] = (unsigned char) ((h[6] & 0x0f) | 0x40);
    h[8] = (unsigned char) ((h[8] & 0x3f) | 0x80);

    snprintf(out, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x", h[0], h[1], h[2], h[3], h[4], h[5],
             h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13], h[14],
             h[15]);
}


static void
vw_json_set(json_t *o, const char *name, const char *v)
{
    if (v != NULL) {
        json_object_set_new(o, name, json_string(v));
    }
}


static char *
vw_webhook_body(const vw_message_t *m)
{
    char    *s;
    json_t  *o, *mem;

    o = json_object();
    vw_json_set(o, "id", m->id);
    vw_json_set(o, "campaign", m->campaign);
    vw_json_set(o, "run", m->run);

    mem = json_object();
    vw_json_set(mem, "id", m->member);
    vw_json_set(mem, "name", m->name);
    vw_json_set(mem, "phone", m->phone);
    vw_json_set(mem, "email", m->email);
    vw_json_set(mem, "line", m->line);
    json_object_set_new(o, "member", mem);

    vw_json_set(o, "code", m->code);
    vw_json_set(o, "message", m->message);
    vw_json_set(o, "subject", m->subject);
    vw_json_set(o, "expires_at", m->expires_at);
    vw_json_set(o, "discount", m->discount);

    s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);

    return s;
}


static char *
vw_line_body(const vw_message_t *m)
{
    char  *s;

    json_t  *o = json_pack("{s:s,s:[{s:s,s:s}]}", "to", m->line, "messages",
                           "type", "text", "text", m->message);

    s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);

    return s;
}


/* a value for an sms body: URL-encoded for forms, escaped for JSON */

static char *
vw_sms_value(CURL *curl, const char *v, int json)
{
    char    *e, *s;
    size_t   n;
    json_t  *j;

    if (v == NULL) {
        return vw_xstrdup("");
    }

    if (json) {
        j = json_string(v);
        e = json_dumps(j, JSON_ENCODE_ANY);
        json_decref(j);

        /* without the quotes: the template has them */
        n = strlen(e);
        s = vw_xstrndup(e + 1, n - 2);
        free(e);
        return s;
    }

    e = curl_easy_escape(curl, v, 0);
    s = vw_xstrdup(e);
    curl_free(e);

    return s;
}


static int
vw_http_post(CURL *curl, const vw_channel_t *ch, const char *body,
    struct curl_slist *hdrs, int ok_409, char *err, size_t errlen)
{
    int        rc;
    long       status;
    CURLcode   cc;
    vw_buf_t   answer;
    char       ebuf[CURL_ERROR_SIZE];

    memset(&answer, 0, sizeof(vw_buf_t));
    ebuf[0] = '\0';

    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, ch->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ch->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, ch->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "voucherd");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, vw_curl_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, ebuf);

    cc = curl_easy_perform(curl);

    if (cc != CURLE_OK) {
        /* the URL may hold a token: name the channel, not the URL */
        snprintf(err, errlen, "channel %s: %s", ch->name,
                 ebuf[0] ? ebuf : curl_easy_strerror(cc));
        vw_buf_free(&answer);
        return VW_SEND_RETRY;
    }

    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);

    if ((status >= 200 && status < 300) || (ok_409 && status == 409)) {
        rc = VW_SEND_OK;

    } else {
        /* throttled or broken: later; refused: never */
        rc = status == 429 || status == 408 || status >= 500
             ? VW_SEND_RETRY : VW_SEND_FAIL;

        snprintf(err, errlen, "channel %s: HTTP %ld%s%.*s", ch->name, status,
                 answer.len ? ": " : "", (int) answer.len,
                 answer.data ? answer.data : "");
    }

    vw_buf_free(&answer);

    return rc;
}


static int
vw_send_http(CURL *curl, const vw_channel_t *ch, const vw_message_t *m,
    int64_t now, char *err, size_t errlen)
{
    int                 rc, json;
    char               *body, *to, *text, *from, *id, line[1024], sig[160];
    char                uuid[40];
    const char         *ct;
    struct curl_slist  *h;

    h = NULL;

    if (ch->type == VW_CHANNEL_WEBHOOK) {
        body = vw_webhook_body(m);
        vw_webhook_signature(ch->secret, now, body, strlen(body), sig,
                             sizeof(sig));
        h = curl_slist_append(h, "Content-Type: application/json");
        snprintf(line, sizeof(line), "X-Voucher-Signature: %s", sig);
        h = curl_slist_append(h, line);

    } else if (ch->type == VW_CHANNEL_LINE) {
        body = vw_line_body(m);
        vw_uuid_of(m->id, uuid, sizeof(uuid));
        h = curl_slist_append(h, "Content-Type: application/json");
        snprintf(line, sizeof(line), "X-Line-Retry-Key: %s", uuid);
        h = curl_slist_append(h, line);

    } else {
        ct = ch->content_type ? ch->content_type
                              : "application/x-www-form-urlencoded";
        json = strstr(ct, "json") != NULL;

        to = vw_sms_value(curl, m->phone, json);
        text = vw_sms_value(curl, m->message, json);
        from = vw_sms_value(curl, ch->from, json);
        id = vw_sms_value(curl, m->id, json);

        {
            const vw_tvar_t  vars[] = {
                { "to", to }, { "text", text }, { "from", from },
                { "id", id }
            };

            body = vw_template_render(ch->body, vars, 4);
        }

        free(to);
        free(text);
        free(from);
        free(id);

        snprintf(line, sizeof(line), "Content-Type: %s", ct);
        h = curl_slist_append(h, line);
    }

    snprintf(line, sizeof(line), "Idempotency-Key: %s", m->id);
    h = curl_slist_append(h, line);

    if (ch->token) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", ch->token);
        h = curl_slist_append(h, line);
        sodium_memzero(line, sizeof(line));
    }

    /* the key makes a repeat harmless: 409 "already had it" is success */
    rc = vw_http_post(curl, ch, body, h, 1, err, errlen);

    curl_slist_free_all(h);
    free(body);

    return rc;
}


int
vw_webhook_post(CURL *curl, const vw_channel_t *ch, const char *id,
    const char *type, const char *body, int64_t now, char *err,
    size_t errlen)
{
    int                 rc;
    char                line[512], sig[160];
    struct curl_slist  *h;

    vw_webhook_signature(ch->secret, now, body, strlen(body), sig,
                         sizeof(sig));

    h = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(line, sizeof(line), "X-Voucher-Signature: %s", sig);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof(line), "Idempotency-Key: %s", id);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof(line), "X-Voucher-Event: %s", type);
    h = curl_slist_append(h, line);

    rc = vw_http_post(curl, ch, body, h, 1, err, errlen);

    curl_slist_free_all(h);

    return rc;
}


/* a header value as RFC 2047 UTF-8 base64 when it is not plain ASCII */

static void
vw_mime_header(vw_buf_t *b, const char *name, const char *v)
{
    char         *enc;
    size_t        n;
    const char   *p;

    for (p = v; *p; p++) {
        if ((unsigned char) *p >= 0x80 || *p == '\r' || *p == '\n') {
            break;
        }
    }

    vw_buf_printf(b, "%s: ", name);

    if (*p == '\0') {
        vw_buf_printf(b, "%s\r\n", v);
        return;
    }

    n = sodium_base64_encoded_len(strlen(v), sodium_base64_VARIANT_ORIGINAL);
    enc = vw_xalloc(n);
    sodium_bin2base64(enc, n, (const unsigned char *) v, strlen(v),
                      sodium_base64_VARIANT_ORIGINAL);
    vw_buf_printf(b, "=?UTF-8?B?%s?=\r\n", enc);
    free(enc);
}


static int
vw_send_email(CURL *curl, const vw_channel_t *ch, const vw_message_t *m,
    int64_t now, char *err, size_t errlen)
{
    int                 rc;
    long                status;
    char                addr[512], date[64], ebuf[CURL_ERROR_SIZE];
    char                msgid[64];
    time_t              t;
    CURLcode            cc;
    vw_buf_t            mail;
    struct tm           tm;
    vw_upload_t         up;
    const char         *p;
    unsigned char       h[12];
    struct curl_slist  *rcpt;

    /* an address with a line end or brackets would forge the envelope */
    if (strpbrk(m->email, "\r\n<>") != NULL) {
        snprintf(err, errlen, "channel %s: a bad email address", ch->name);
        return VW_SEND_FAIL;
    }

    t = (time_t) now;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);

    crypto_generichash(h, sizeof(h), (const unsigned char *) m->id,
                       strlen(m->id), NULL, 0);
    sodium_bin2hex(msgid, sizeof(msgid), h, sizeof(h));

    memset(&mail, 0, sizeof(vw_buf_t));
    vw_buf_printf(&mail, "Date: %s\r\n", date);
    vw_buf_printf(&mail, "From: %s\r\n", ch->from);
    vw_buf_printf(&mail, "To: %s\r\n", m->email);
    vw_mime_header(&mail, "Subject", m->subject ? m->subject
                   : ch->subject ? ch->subject : "Your voucher");
    vw_buf_printf(&mail, "Message-ID: <%s@voucherd>\r\n", msgid);
    vw_buf_printf(&mail, "X-Voucher-Delivery: %s\r\n", m->id);
    vw_buf_adds(&mail, "MIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=UTF-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n");

    /* the body with CRLF line ends, and dots doubled by libcurl */
    for (p = m->message; *p; p++) {
        if (*p == '\n' && (p == m->message || p[-1] != '\r')) {
            vw_buf_addc(&mail, '\r');
        }

        vw_buf_addc(&mail, *p);
    }

    vw_buf_adds(&mail, "\r\n");

    up.data = mail.data;
    up.len = mail.len;
    up.off = 0;

    rcpt = NULL;
    snprintf(addr, sizeof(addr), "<%s>", m->email);
    rcpt = curl_slist_append(rcpt, addr);
    snprintf(addr, sizeof(addr), "<%s>", ch->from);

    ebuf[0] = '\0';

    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, ch->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ch->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, ch->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, addr);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, vw_curl_upload);
    curl_easy_setopt(curl, CURLOPT_READDATA, &up);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, ebuf);

    if (ch->user) {
        curl_easy_setopt(curl, CURLOPT_USERNAME, ch->user);
    }

    if (ch->password) {
        curl_easy_setopt(curl, CURLOPT_PASSWORD, ch->password);
    }

    cc = curl_easy_perform(curl);

    rc = VW_SEND_OK;

    if (cc != CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);

        /* a 5xx answer of the server is final; the rest may pass later */
        rc = status >= 500 && status < 600 ? VW_SEND_FAIL : VW_SEND_RETRY;

        snprintf(err, errlen, "channel %s: smtp: %s", ch->name,
                 ebuf[0] ? ebuf : curl_easy_strerror(cc));
    }

    curl_slist_free_all(rcpt);
    vw_buf_free(&mail);

    return rc;
}


int
vw_channel_send(CURL *curl, const vw_channel_t *ch, const vw_message_t *msg,
    int64_t now, char *err, size_t errlen)
{
    const char  *why;

    why = vw_channel_missing(ch, msg);

    if (why != NULL) {
        snprintf(err, errlen, "%s", why);
        return VW_SEND_FAIL;
    }

    if (ch->type == VW_CHANNEL_EMAIL) {
        return vw_send_email(curl, ch, msg, now, err, errlen);
    }

    return vw_send_http(curl, ch, msg, now, err, errlen);
}
