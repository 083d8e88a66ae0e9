
/*
 * Copyright (C) ngx_voucher authors
 *
 * The progress bar voucherctl draws on a terminal for a job: one line,
 * redrawn in place.  Pure: it only formats.
 */


#ifndef _VW_BAR_H_INCLUDED_
#define _VW_BAR_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/*
 * One line of width columns at most (no line end) into buf:
 *   "[##########..........]  50%  500000/1000000  41666/s  ETA 0:12"
 * or, when the total is not known (total < 0),
 *   "500000 done  41666/s  0:12"
 * label (or NULL) comes first.  elapsed_ms is the time the work took so
 * far: the pace and the ETA are reckoned from it.  Returns the length.
 */
size_t vw_bar_render(char *buf, size_t size, const char *label,
    int64_t done, int64_t total, int64_t elapsed_ms, size_t width);

/* seconds as "M:SS" or "H:MM:SS" */
void vw_bar_time(char *buf, size_t size, int64_t s);


#endif /* _VW_BAR_H_INCLUDED_ */
