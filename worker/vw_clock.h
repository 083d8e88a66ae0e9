
/*
 * Copyright (C) ngx_voucher authors
 *
 * The worker's clock, controllable for tests.  VOUCHERD_FAKE_NOW holds
 * unix seconds, or "@FILE", a file holding unix seconds.  The fake clock
 * starts there and runs at the real pace: from the process's start, or
 * from the file's last change (the file is read again at every call, so
 * a test moves a running daemon's time by writing the file).  Leases and
 * retry back-offs keep working under a fake clock that way.
 */


#ifndef _VW_CLOCK_H_INCLUDED_
#define _VW_CLOCK_H_INCLUDED_


#include <stdint.h>


/* unix seconds, real or fake */
int64_t vw_now(void);

/* unix milliseconds, real or fake */
int64_t vw_now_ms(void);

/* whether the clock is fake (the daemon then sleeps less) */
int vw_clock_fake(void);

/* "+07:00", "-05:30", or minutes east of UTC -> minutes; -1 bad */
int vw_tz_parse(const char *s, int *min);


#endif /* _VW_CLOCK_H_INCLUDED_ */
