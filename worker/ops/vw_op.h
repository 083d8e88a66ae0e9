
/*
 * Copyright (C) ngx_voucher authors
 *
 * The admin operations: one function per operation, called in-process by
 * voucherctl (worker/ctl) and by voucherd's admin API (worker/daemon/
 * vw_admin.c).  An operation takes its input as JSON (the path's ids, the
 * query and the body), answers JSON, or fails with the HTTP status, a
 * stable reason, the field at fault and a message: the same error either
 * way.  Every change goes through voucher_admin (or voucher_admin_note for
 * bulk work), so it lands in the admin audit stream {NS}:admin with who
 * made it.
 */


#ifndef _VW_OP_H_INCLUDED_
#define _VW_OP_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "voucher_code.h"
#include "vw_config.h"
#include "vw_redis.h"


typedef struct vw_op_s  vw_op_t;

/* progress of long work: done of total (0: not known yet) */
typedef void (*vw_op_progress_pt)(vw_op_t *op, int64_t done, int64_t total);


struct vw_op_s {
    const vw_config_t      *cf;
    redisContext           *redis;
    const char             *who;        /* "token:<name>", "cli:<user>" */
    const unsigned char    *key;        /* the MAC key, or NULL */

    /* long work: reports progress, and stops when it returns non-zero */
    vw_op_progress_pt       progress;
    int                   (*cancelled)(vw_op_t *op);
    void                   *data;
};


typedef struct {
    int                     status;     /* the HTTP status */
    char                    reason[48];
    char                    field[64];  /* "" none */
    char                    message[512];
} vw_operr_t;


typedef struct {
    const char             *id;         /* the path's object, or NULL */
    json_t                 *query;      /* strings; never NULL */
    json_t                 *body;       /* an object; never NULL */
    const char             *data;       /* a raw body (imports), or NULL */
    size_t                  len;
    int                     strict;     /* JSON types as documented (the
                                           API); 0: strings for integers
                                           too (the CLI's arguments) */
} vw_op_in_t;


/* an operation: a 2xx status with *out set, or -1 with e set */
typedef int (*vw_op_pt)(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);


/* the kinds of a field of an input object */
#define VW_F_STR     0x01               /* a string */
#define VW_F_INT     0x02               /* an integer >= 0 */
#define VW_F_LIST    0x04               /* a string or an array of them */
#define VW_F_NULL    0x08               /* null clears it ("" to Redis) */
#define VW_F_TZ      0x10               /* minutes or "+HH:MM" */
#define VW_F_OBJ     0x20               /* an object, as JSON text */

typedef struct {
    const char             *name;
    int                     kind;
} vw_field_t;


int vw_op_fail(vw_operr_t *e, int status, const char *reason,
    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * Runs a command.  NULL when Redis failed (503 store_unavailable) or
 * answered an error (its reason: see vw_op_reply_error); else the reply.
 */
redisReply *vw_op_run(vw_op_t *op, const vw_args_t *a, vw_operr_t *e);

/* FCALL fn 1 key, as vw_op_run(); key is a vw_key() it frees */
redisReply *vw_op_fcall_key(vw_op_t *op, const char *fn, char *key,
    vw_operr_t *e);

/* an error reply of the library as status, reason, field, message */
int vw_op_reply_error(const char *s, vw_operr_t *e);

/*
 * FCALL voucher_admin: fn on key (its arguments in rest, may be NULL),
 * audited as op on target.  must: "new" (the object must not exist yet:
 * 409 already_exists), "old" (it must: 404 not_found) or "".
 */
redisReply *vw_op_admin(vw_op_t *op, const char *key, const char *name,
    const char *target, const char *fn, const char *must, vw_args_t *rest,
    vw_operr_t *e);

/* FCALL voucher_admin_note: a summary of bulk work in the audit stream */
int vw_op_note(vw_op_t *op, const char *name, const char *target,
    json_t *detail, vw_operr_t *e);

/*
 * The fields of obj, each one of spec (else 400 unknown_field) of the
 * right kind (else 400 invalid_field), appended to a as name value;
 * fields named in skip are left out.
 */
int vw_op_fields(vw_op_in_t *in, json_t *obj, const vw_field_t *spec,
    const char *const *skip, vw_args_t *a, vw_operr_t *e);

/* the query (or body) has only these names; else 400 unknown_field */
int vw_op_known(json_t *obj, const char *const *names, vw_operr_t *e);

/* a required string field of the body */
int vw_op_str(vw_op_in_t *in, json_t *obj, const char *name, int required,
    const char **out, vw_operr_t *e);

/* an integer field (in->strict: a JSON integer; else also digits) */
int vw_op_int(vw_op_in_t *in, json_t *obj, const char *name, int required,
    int64_t min, int64_t max, int64_t *out, vw_operr_t *e);

/* an integer argument of a query (a string of digits), if given */
int vw_op_qint(json_t *query, const char *name, int64_t min, int64_t max,
    int64_t *out, vw_operr_t *e);

/* "limit" of a query: 1..1000, default 100 */
int vw_op_limit(json_t *query, int64_t *out, vw_operr_t *e);

/* a flat field/value reply as a JSON object; integers stay integers */
json_t *vw_op_pairs(const redisReply *r);

/* a stream entry as a JSON object */
typedef json_t *(*vw_op_entry_pt)(redisReply *en);

/* the query of a page: "cursor" (checked) and "limit"; -1 when bad */
int vw_op_cursor(vw_op_in_t *in, int64_t *limit, const char **cursor,
    vw_operr_t *e);

/* a page of a stream's entries after cursor, XRANGE or XREVRANGE (rev) */
int vw_op_stream_range(vw_op_t *op, const char *key, int rev,
    const char *cursor, int64_t limit, vw_op_entry_pt entry, json_t **out,
    vw_operr_t *e);

/*
 * A page of a stream's entries (objects with "id" and the fields): XRANGE,
 * or XREVRANGE (rev), after the query's cursor; "limit" of the query.
 */
int vw_op_stream_page(vw_op_t *op, vw_op_in_t *in, const char *key, int rev,
    json_t **out, vw_operr_t *e);

/* a page of a list: {"items": items, "next_cursor": cursor or null} */
json_t *vw_op_page(json_t *items, const char *cursor);


/* the operations, by object; each documented in docs/admin-api.yaml */

int vw_op_campaign_create(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_campaign_get(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_campaign_list(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_campaign_update(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_campaign_set(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_campaign_pause(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_campaign_resume(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_campaign_archive(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);

int vw_op_code_create(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_code_get(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_code_update(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_code_delete(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_code_disable(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_code_enable(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_code_credit(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_code_debit(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_code_search(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_code_balance(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_code_transactions(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_liability(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_series_get(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_series_set(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);

int vw_op_member_create(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_member_get(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_member_update(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_member_delete(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_member_search(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_member_codes(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);

int vw_op_segment_preview(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);

int vw_op_auto_list(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_auto_get(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_auto_set(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_auto_delete(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_auto_next(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_auto_run(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_auto_preview(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);

/* auto get: the next run, a waiting catch-up, per_member, into o */
void vw_op_auto_next_run(vw_op_t *op, const char *campaign, json_t *o);

int vw_op_deliveries(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_report(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e);
int vw_op_audit_list(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);

int vw_op_webhook_create(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_webhook_get(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_webhook_list(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_webhook_update(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_webhook_delete(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_webhook_dead(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);

int vw_op_loyalty_get(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_loyalty_set(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_loyalty_balance(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_loyalty_history(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_loyalty_adjust(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_reward_list(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_reward_get(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_reward_set(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_reward_fill(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_reward_claim(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);

int vw_op_referral_code(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_referral_pair(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_referral_report(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_loyalty_report(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);

/*
 * The query's text as a QR picture, or a Code 128 barcode, in memory
 * (malloc'd) with its Content-Type; 200, or -1 with e (400).
 */
int vw_op_picture(json_t *query, int barcode, unsigned char **data,
    size_t *len, const char **type, vw_operr_t *e);

/*
 * A referral code is "REF", 8 random characters and a 4 character MAC:
 * whether code is one whose MAC is right under key.
 */
#define VW_REFERRAL_PREFIX  "REF"
#define VW_REFERRAL_LEN     15
#define VW_REFERRAL_MAC     4

int vw_op_referral_genuine(const unsigned char *key, const char *code);

/* the cart (worker/ops/vw_op_cart.c): a member's wallet, qualify */
int vw_op_wallet_list(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_wallet_add(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_wallet_remove(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_qualify(vw_op_t *op, vw_op_in_t *in, json_t **out, vw_operr_t *e);

int vw_op_settings_get(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);
int vw_op_settings_update(vw_op_t *op, vw_op_in_t *in, json_t **out,
    vw_operr_t *e);


#endif /* _VW_OP_H_INCLUDED_ */
