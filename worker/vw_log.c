
/*
 * Copyright (C) ngx_voucher authors
 *
 * Logging: see vw_log.h.
 */


#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "vw_log.h"


static int          vw_log_fd = 2;
static int          vw_log_min = VW_LOG_INFO;
static char         vw_log_ident[80] = "voucher";

static const char  *vw_log_names[] = { "error", "warn", "info", "debug" };


int
vw_log_level(const char *name)
{
    int  i;

    for (i = 0; i <= VW_LOG_DEBUG; i++) {
        if (strcmp(name, vw_log_names[i]) == 0) {
            return i;
        }
    }

    return -1;
}


int
vw_log_open(const char *path, int level, const char *ident, char *err,
    size_t errlen)
{
    int  fd;

    if (path == NULL || path[0] == '\0' || strcmp(path, "-") == 0) {
        fd = 2;

    } else {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd == -1) {
            snprintf(err, errlen, "log file \"%s\": %s", path,
                     strerror(errno));
            return -1;
        }
    }

    if (vw_log_fd != 2 && vw_log_fd != fd) {
        close(vw_log_fd);
    }

    vw_log_fd = fd;
    vw_log_min = level;

    if (ident != NULL) {
        snprintf(vw_log_ident, sizeof(vw_log_ident), "%s", ident);
    }

    return 0;
}


void
vw_log_close(void)
{
    if (vw_log_fd != 2) {
        close(vw_log_fd);
        vw_log_fd = 2;
    }
}


void
vw_log(int level, const char *fmt, ...)
{
    int             n, m, saved;
    size_t          i, len;
    va_list         args;
    struct tm       tm;
    struct timeval  tv;
    char            line[2048];

    if (level > vw_log_min) {
        return;
    }

    saved = errno;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);

    n = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ [%s] %s[%d]: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int) (tv.tv_usec / 1000),
                 vw_log_names[level], vw_log_ident, (int) getpid());
    if (n < 0) {
        errno = saved;
        return;
    }

    va_start(args, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t) n - 1, fmt, args);
    va_end(args);

    len = (size_t) n + (m < 0 ? 0 : (size_t) m);

    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }

    /* one record, one line: control characters of values are masked */
    for (i = (size_t) n; i < len; i++) {
        if ((unsigned char) line[i] < 0x20) {
            line[i] = ' ';
        }
    }

    line[len++] = '\n';

    (void) !write(vw_log_fd, line, len);

    errno = saved;
}
