
/*
 * Copyright (C) ngx_voucher authors
 *
 * Queueing the members of a run, with their codes: voucher_run_add, in
 * batches.  Used by scheduled runs (vw_plan.c) and by triggers
 * (vw_events.c).  The library queues a member once per run, whatever
 * happens, so calling this again for the same run is harmless.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vw_daemon.h"
#include "vw_log.h"
#include "vw_redis.h"
#include "vw_util.h"


#define VW_QUEUE_BATCH  500
#define VW_QUEUE_TRIES  10


static void
vw_queue_args(vw_daemon_t *d, vw_auto_t *a, vw_args_t *args,
    const char *run, int64_t due_ms, int64_t codes_from, int64_t cancel_after)
{
    int    np;
    char  *key;

    key = vw_key(&d->cf, "a:%s", a->campaign);

    vw_args_reset(args);
    vw_args_adds(args, "FCALL");
    vw_args_adds(args, "voucher_run_add");
    vw_args_adds(args, "1");
    vw_args_adds(args, key);
    vw_args_adds(args, run);
    vw_args_addi(args, due_ms);
    vw_args_adds(args, a->channel);
    vw_args_adds(args, a->shared ? "shared" : "unique");
    vw_args_adds(args, a->unless ? a->unless : "");
    vw_args_addi(args, cancel_after);

    free(key);

    np = (a->max_uses >= 0) + (a->valid_days > 0);
    vw_args_addi(args, a->shared ? 0 : np);

    if (a->shared) {
        return;
    }

    if (a->max_uses >= 0) {
        vw_args_adds(args, "max_uses");
        vw_args_addi(args, a->max_uses);
    }

    /* a code that is valid N days from its run */
    if (a->valid_days > 0) {
        vw_args_adds(args, "ends_at");
        vw_args_addi(args, codes_from + a->valid_days * 86400);
    }
}


int64_t
vw_daemon_queue(vw_daemon_t *d, vw_auto_t *a, const char *run,
    int64_t due_ms, int64_t codes_from, char **members, size_t n,
    int64_t cancel_after)
{
    int                tries, rc;
    char             **todo, **next, code[VOUCHER_CODE_MAX_LEN + 1];
    size_t             i, j, ntodo, nnext, first, k;
    int64_t            queued, q;
    vw_args_t          args;
    redisReply        *r, *c;
    voucher_format_t   fmt;

    if (!a->shared && !d->have_key) {
        snprintf(d->err, sizeof(d->err), "campaign %s: unique codes need "
                 "key_file in the configuration", a->campaign);
        return -2;
    }

    memset(&args, 0, sizeof(vw_args_t));
    todo = vw_xalloc((n ? n : 1) * sizeof(char *));
    next = vw_xalloc((n ? n : 1) * sizeof(char *));
    memcpy(todo, members, n * sizeof(char *));
    ntodo = n;
    queued = 0;
    rc = -1;

    for (tries = 0; ntodo > 0 && tries < VW_QUEUE_TRIES; tries++) {
        nnext = 0;

        for (first = 0; first < ntodo; first += VW_QUEUE_BATCH) {
            k = ntodo - first < VW_QUEUE_BATCH ? ntodo - first
                                               : VW_QUEUE_BATCH;

            vw_queue_args(d, a, &args, run, due_ms, codes_from,
                          cancel_after);

            for (i = first; i < first + k; i++) {
                vw_args_adds(&args, todo[i]);

                if (a->shared) {
                    vw_args_adds(&args, a->code);
                    continue;
                }

                fmt.charset = a->charset;
                fmt.charset_len = a->charset ? strlen(a->charset) : 0;
                fmt.suffix = a->suffix;
                fmt.suffix_len = a->suffix ? strlen(a->suffix) : 0;

                if (voucher_code_issue_ex(d->key, a->prefix,
                                          (size_t) a->length,
                                          (size_t) a->mac_length, &fmt, code,
                                          sizeof(code)) == 0)
                {
                    snprintf(d->err, sizeof(d->err), "campaign %s: cannot "
                             "make a code", a->campaign);
                    rc = -2;
                    goto fail;
                }

                vw_args_adds(&args, code);
            }

            r = vw_redis_run(d->redis, &args, d->err, sizeof(d->err));

            if (r == NULL) {
                goto fail;
            }

            /* refused by the library (a campaign deleted): not Redis */
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 3
                || vw_reply_int(r->element[0], &q) != 0
                || r->element[2]->type != REDIS_REPLY_ARRAY)
            {
                snprintf(d->err, sizeof(d->err), "campaign %s: run %s: %s",
                         a->campaign, run, r->type == REDIS_REPLY_ERROR
                         ? r->str : "unexpected reply of voucher_run_add");
                freeReplyObject(r);
                rc = -2;
                goto fail;
            }

            queued += q;
            c = r->element[2];

            /* members whose random code existed: again, with new ones */
            for (j = 0; j < c->elements; j++) {
                if (c->element[j]->type != REDIS_REPLY_STRING) {
                    continue;
                }

                for (i = first; i < first + k; i++) {
                    if (strcmp(todo[i], c->element[j]->str) == 0) {
                        next[nnext++] = todo[i];
                        break;
                    }
                }
            }

            freeReplyObject(r);
        }

        memcpy(todo, next, nnext * sizeof(char *));
        ntodo = nnext;
    }

    if (ntodo > 0) {
        vw_log_error("campaign %s: run %s: %zu members left out, their codes "
                     "kept colliding (too short codes?)", a->campaign, run,
                     ntodo);
    }

    free(todo);
    free(next);
    vw_args_free(&args);

    return queued;

fail:

    free(todo);
    free(next);
    vw_args_free(&args);

    return rc;
}
