
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucherd's admin API: JSON over HTTP (GNU libmicrohttpd) on a loopback
 * address or a unix socket, with bearer tokens from a file.  It runs in
 * threads of its own, each with its own Redis connection, and calls the
 * operations of worker/ops, the same ones voucherctl calls.  Documented
 * in docs/admin-api.md and docs/admin-api.yaml.
 */


#ifndef _VW_ADMIN_H_INCLUDED_
#define _VW_ADMIN_H_INCLUDED_


#include <stddef.h>


typedef struct vw_admin_s  vw_admin_t;


/*
 * Reads the configuration at path (its own copy: the daemon's loop may
 * replace its copy on SIGHUP) and starts serving when it has "admin".
 * 0 and *out set (NULL: no admin section), or -1 with err set.
 */
int vw_admin_start(const char *path, vw_admin_t **out, char *err,
    size_t errlen);

/* stops serving: the requests in hand finish first */
void vw_admin_stop(vw_admin_t *ad);


#endif /* _VW_ADMIN_H_INCLUDED_ */
