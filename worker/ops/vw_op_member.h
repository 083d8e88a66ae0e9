
/*
 * Copyright (C) ngx_voucher authors
 *
 * A member as the admin operations and voucherctl show it.
 */


#ifndef _VW_OP_MEMBER_H_INCLUDED_
#define _VW_OP_MEMBER_H_INCLUDED_


#include <jansson.h>

#include "vw_segment.h"


/* with rfm: its scores and group too */
json_t *vw_op_member_json(const vw_member_t *m, int rfm);


#endif /* _VW_OP_MEMBER_H_INCLUDED_ */
