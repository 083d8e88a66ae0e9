
/*
 * Copyright (C) ngx_voucher authors
 *
 * Small helpers: see vw_util.h.
 */


#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "vw_util.h"


void *
vw_xalloc(size_t size)
{
    void  *p;

    p = calloc(1, size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory (%zu bytes)\n", size);
        abort();
    }

    return p;
}


void *
vw_xrealloc(void *p, size_t size)
{
    p = realloc(p, size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory (%zu bytes)\n", size);
        abort();
    }

    return p;
}


char *
vw_xstrndup(const char *s, size_t n)
{
    char  *p;

    p = vw_xalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';

    return p;
}


char *
vw_xstrdup(const char *s)
{
    return s ? vw_xstrndup(s, strlen(s)) : NULL;
}


static void
vw_buf_reserve(vw_buf_t *b, size_t n)
{
    size_t  size;

    if (b->len + n + 1 <= b->size) {
        return;
    }

    size = b->size ? b->size : 256;

    while (size < b->len + n + 1) {
        size *= 2;
    }

    b->data = vw_xrealloc(b->data, size);
    b->size = size;
}


void
vw_buf_add(vw_buf_t *b, const char *p, size_t n)
{
    vw_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}


void
vw_buf_adds(vw_buf_t *b, const char *s)
{
    vw_buf_add(b, s, strlen(s));
}


void
vw_buf_addc(vw_buf_t *b, char c)
{
    vw_buf_add(b, &c, 1);
}


void
vw_buf_printf(vw_buf_t *b, const char *fmt, ...)
{
    int      n;
    va_list  args;

    vw_buf_reserve(b, 64);

    va_start(args, fmt);
    n = vsnprintf(b->data + b->len, b->size - b->len, fmt, args);
    va_end(args);

    if (n < 0) {
        return;
    }

    if ((size_t) n >= b->size - b->len) {
        vw_buf_reserve(b, (size_t) n);

        va_start(args, fmt);
        n = vsnprintf(b->data + b->len, b->size - b->len, fmt, args);
        va_end(args);
    }

    b->len += (size_t) n;
}


void
vw_buf_reset(vw_buf_t *b)
{
    b->len = 0;

    if (b->data) {
        b->data[0] = '\0';
    }
}


void
vw_buf_free(vw_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->size = 0;
}


int
vw_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    int       neg;
    int64_t   v;

    if (s == NULL || *s == '\0') {
        return -1;
    }

    neg = 0;

    if (*s == '-') {
        neg = 1;
        s++;
    }

    if (*s < '0' || *s > '9') {
        return -1;
    }

    v = 0;

    for ( /* void */ ; *s; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }

        /* accumulate negatively: INT64_MIN has no positive twin */
        if (v < (INT64_MIN + (*s - '0')) / 10) {
            return -1;
        }

        v = v * 10 - (*s - '0');
    }

    if (!neg) {
        if (v == INT64_MIN) {
            return -1;
        }

        v = -v;
    }

    if (v < min || v > max) {
        return -1;
    }

    *out = v;

    return 0;
}


char *
vw_read_file(const char *path, size_t *len)
{
    int          fd, saved;
    char        *p;
    size_t       n, size;
    ssize_t      r;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return NULL;
    }

    size = 4096;
    n = 0;
    p = vw_xalloc(size);

    for ( ;; ) {
        if (n + 1 >= size) {
            size *= 2;
            p = vw_xrealloc(p, size);
        }

        r = read(fd, p + n, size - n - 1);

        if (r == -1) {
            if (errno == EINTR) {
                continue;
            }

            saved = errno;
            free(p);
            close(fd);
            errno = saved;
            return NULL;
        }

        if (r == 0) {
            break;
        }

        n += (size_t) r;
    }

    close(fd);

    p[n] = '\0';

    if (len) {
        *len = n;
    }

    return p;
}


char *
vw_read_secret(const char *path, char *err, size_t errlen)
{
    int          fd;
    char         buf[4097], *nl;
    size_t       n;
    ssize_t      r;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        snprintf(err, errlen, "secret file \"%s\": %s", path,
                 strerror(errno));
        return NULL;
    }

    n = 0;

    while (n < sizeof(buf) - 1) {
        r = read(fd, buf + n, sizeof(buf) - 1 - n);

        if (r == -1 && errno == EINTR) {
            continue;
        }

        if (r <= 0) {
            break;
        }

        n += (size_t) r;
    }

    close(fd);

    buf[n] = '\0';

    if (n == sizeof(buf) - 1) {
        snprintf(err, errlen, "secret file \"%s\": longer than 4096 bytes",
                 path);
        goto fail;
    }

    if (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
    }

    if (n > 0 && buf[n - 1] == '\r') {
        buf[--n] = '\0';
    }

    nl = memchr(buf, '\n', n);

    if (n == 0 || nl != NULL || memchr(buf, '\0', n) != NULL) {
        snprintf(err, errlen, "secret file \"%s\": expected one non-empty "
                 "line", path);
        goto fail;
    }

    nl = vw_xstrndup(buf, n);
    sodium_memzero(buf, sizeof(buf));

    return nl;

fail:

    sodium_memzero(buf, sizeof(buf));

    return NULL;
}


void
vw_free_secret(char *s)
{
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}
