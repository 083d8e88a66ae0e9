
/*
 * Copyright (C) ngx_voucher authors
 *
 * A campaign's message for one member, as voucherd sends it and as a
 * preview shows it: the automation's templates with the campaign's rules
 * (min_amount as money, its dates), the member's fields (tier, birthday,
 * custom attributes) and the code as shown (its pattern), money and
 * dates in the automation's locale and the campaign's zone.
 */


#ifndef _VW_RENDER_H_INCLUDED_
#define _VW_RENDER_H_INCLUDED_


#include <hiredis/hiredis.h>

#include "vw_auto.h"
#include "vw_config.h"
#include "vw_segment.h"
#include "vw_template.h"


typedef struct {
    char        *message;
    char        *subject;           /* NULL: none */
    char         code[256];         /* as shown */
    char         expires_at[64];    /* "" none */
    char         discount[64];
} vw_rendered_t;


/*
 * code: the stored (normalized) code; NULL in a preview, where a unique
 * code is shown as its pattern and ends valid_days from now.  extra: more
 * fields (the loyalty ones), after the campaign's and the member's, which
 * win over a field of the same name.  0, or -1 with err when Redis failed.
 */
int vw_render(redisContext *c, const vw_config_t *cf, const vw_auto_t *a,
    const vw_member_t *m, const char *code, int64_t now,
    const vw_tvar_t *extra, size_t nextra, vw_rendered_t *out, char *err,
    size_t errlen);

void vw_rendered_free(vw_rendered_t *r);


#endif /* _VW_RENDER_H_INCLUDED_ */
