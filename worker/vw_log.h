
/*
 * Copyright (C) ngx_voucher authors
 *
 * Logging of voucherd and voucherctl: levels, to stderr or a file.
 * One logger per process; a line is written with one write(2), so lines
 * of several processes sharing a file do not interleave.  Secrets are
 * never passed to it.
 */


#ifndef _VW_LOG_H_INCLUDED_
#define _VW_LOG_H_INCLUDED_


#include <stddef.h>


#define VW_LOG_ERROR  0
#define VW_LOG_WARN   1
#define VW_LOG_INFO   2
#define VW_LOG_DEBUG  3


/* "error", "warn", "info", "debug" -> level, or -1 */
int vw_log_level(const char *name);

/*
 * Logs to path (NULL or "" or "-": stderr) from level up.  An open file is
 * replaced: call it again on SIGHUP so logrotate works.  Returns 0, or -1
 * with err set (the previous destination stays).
 */
int vw_log_open(const char *path, int level, const char *ident, char *err,
    size_t errlen);

void vw_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void vw_log_close(void);


#define vw_log_error(...)  vw_log(VW_LOG_ERROR, __VA_ARGS__)
#define vw_log_warn(...)   vw_log(VW_LOG_WARN, __VA_ARGS__)
#define vw_log_info(...)   vw_log(VW_LOG_INFO, __VA_ARGS__)
#define vw_log_debug(...)  vw_log(VW_LOG_DEBUG, __VA_ARGS__)


#endif /* _VW_LOG_H_INCLUDED_ */
