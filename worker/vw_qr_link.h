
/*
 * Copyright (C) ngx_voucher authors
 *
 * {{qr_url}}: a link a message's reader can open without a token, to
 * voucherd's public route /qr (admin.qr_link), which draws the QR picture
 * of the code it names only when the link is the one we signed and its
 * time has not run out (docs/dashboard.md, the design).
 */


#ifndef _VW_QR_LINK_H_INCLUDED_
#define _VW_QR_LINK_H_INCLUDED_


#include <stdint.h>

#include "vw_config.h"


#define VW_QR_LINK_OK       0
#define VW_QR_LINK_INVALID  1           /* not a link we signed */
#define VW_QR_LINK_EXPIRED  2


/*
 * "<admin.qr_link>?c=CODE&e=EXPIRY&s=TAG" for code, valid until expires
 * (unix seconds); "" when admin.qr_link is not set or it does not fit.
 */
void vw_qr_link(const vw_config_t *cf, const char *code, int64_t expires,
    char *buf, size_t size);

/* the query's c, e and s (any may be NULL) at now */
int vw_qr_link_check(const vw_config_t *cf, const char *code,
    const char *expires, const char *tag, int64_t now);


#endif /* _VW_QR_LINK_H_INCLUDED_ */
