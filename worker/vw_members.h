
/*
 * Copyright (C) ngx_voucher authors
 *
 * Members in Redis: {NS}:m:<id> hashes listed in the set {NS}:members,
 * written only by the library (voucher_members_add,
 * voucher_member_purchase), read here.
 */


#ifndef _VW_MEMBERS_H_INCLUDED_
#define _VW_MEMBERS_H_INCLUDED_


#include <stddef.h>

#include <hiredis/hiredis.h>

#include "vw_config.h"
#include "vw_segment.h"


/* every member, sorted by id; 0, or -1 with err */
int vw_members_load(redisContext *c, const vw_config_t *cf,
    vw_member_t **out, size_t *n, char *err, size_t errlen);

/* one member; 1 found, 0 not, -1 error */
int vw_member_load(redisContext *c, const vw_config_t *cf, const char *id,
    vw_member_t *m, char *err, size_t errlen);

void vw_members_free(vw_member_t *m, size_t n);


#endif /* _VW_MEMBERS_H_INCLUDED_ */
