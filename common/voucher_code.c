
/*
 * Copyright (C) ngx_voucher authors
 *
 * The voucher code format and its keyed MAC.  See voucher_code.h.
 */


/* O_CLOEXEC, fchmod(): POSIX.1-2008, when the includer did not ask more */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE  200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <sodium.h>

#include "voucher_code.h"


#define VOUCHER_MAC_BYTES  16


static const char  voucher_alphabet[] = VOUCHER_CODE_ALPHABET;


static int voucher_verify_canonical(char *code, size_t len,
    size_t prefix_len, size_t mac_len, const voucher_format_t *fmt);
static int voucher_verify_tag(crypto_generichash_state *st, const char *code,
    size_t len, size_t prefix_len, size_t mac_len,
    const voucher_format_t *fmt);


/* strerror() is not thread-safe and strerror_r() differs by libc */

static const char *
voucher_errno_text(int err)
{
    switch (err) {
    case ENOENT:
        return "no such file";
    case EACCES:
    case EPERM:
        return "permission denied";
    case EISDIR:
        return "is a directory";
    case ENOTDIR:
        return "a path component is not a directory";
    case ELOOP:
        return "symbolic link not allowed";
    case EEXIST:
        return "file exists (a key is never overwritten)";
    case ENOSPC:
        return "no space left on device";
    case EROFS:
        return "read-only file system";
    case ENAMETOOLONG:
        return "path too long";
    default:
        return "system error";
    }
}


/* the normalized length (may be 0), or -1 when a byte is not allowed */

static ssize_t
voucher_normalize(const char *in, size_t len, char *out, size_t size)
{
    size_t         i, n;
    unsigned char  c;

    if (size == 0) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) in[i];

        if (c == ' ' || c == '\t' || c == '-') {
            continue;
        }

        if (c < 0x21 || c > 0x7e) {
            out[0] = '\0';
            return -1;
        }

        if (n >= size - 1) {
            out[0] = '\0';
            return -1;
        }

        if (c >= 'a' && c <= 'z') {
            c = (unsigned char) (c - ('a' - 'A'));
        }

        /* n <= i, so an in-place call never overwrites unread input */
        out[n++] = (char) c;
    }

    out[n] = '\0';

    return (ssize_t) n;
}


size_t
voucher_code_normalize(const char *in, size_t len, char *out, size_t size)
{
    ssize_t  n;

    n = voucher_normalize(in, len, out, size);

    return n > 0 ? (size_t) n : 0;
}


size_t
voucher_code_canonical(char *code, size_t len)
{
    size_t  i;
    char    c;

    for (i = 0; i < len; i++) {
        c = code[i];

        if (c >= 'a' && c <= 'z') {
            c = (char) (c - ('a' - 'A'));
        }

        switch (c) {
        case 'O':
            c = '0';
            break;
        case 'I':
        case 'L':
            c = '1';
            break;
        default:
            break;
        }

        /* VOUCHER_CODE_ALPHABET without strchr(): this runs per request */

        if (!((c >= '0' && c <= '9')
              || (c >= 'A' && c <= 'Z'
                  && c != 'I' && c != 'L' && c != 'O' && c != 'U')))
        {
            return 0;
        }

        code[i] = c;
    }

    return len;
}


static int
voucher_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


int
voucher_key_load(const char *path, unsigned char key[VOUCHER_KEY_LEN],
    char *err, size_t errlen)
{
    int            fd, hi, lo, rc;
    size_t         i, n;
    ssize_t        r;
    unsigned char  buf[VOUCHER_KEY_HEX_LEN + 2];

    rc = -1;
    n = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd == -1) {
        snprintf(err, errlen, "key file \"%s\": cannot open: %s", path,
                 voucher_errno_text(errno));
        return -1;
    }

    /* one byte more than a valid file holds, to see trailing data */
    while (n < sizeof(buf)) {
        r = read(fd, buf + n, sizeof(buf) - n);

        if (r == -1) {
            if (errno == EINTR) {
                continue;
            }

            snprintf(err, errlen, "key file \"%s\": cannot read: %s", path,
                     voucher_errno_text(errno));
            goto done;
        }

        if (r == 0) {
            break;
        }

        n += (size_t) r;
    }

    if (n < VOUCHER_KEY_HEX_LEN) {
        snprintf(err, errlen, "key file \"%s\": too short: %zu bytes, "
                 "expected 64 hex characters", path, n);
        goto done;
    }

    if (n > VOUCHER_KEY_HEX_LEN
        && !(n == VOUCHER_KEY_HEX_LEN + 1 && buf[VOUCHER_KEY_HEX_LEN] == '\n'))
    {
        snprintf(err, errlen, "key file \"%s\": unexpected data after the "
                 "64 hex characters (only one newline may follow)", path);
        goto done;
    }

    for (i = 0; i < VOUCHER_KEY_LEN; i++) {
        hi = voucher_hex_value(buf[2 * i]);
        lo = voucher_hex_value(buf[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            snprintf(err, errlen, "key file \"%s\": not a hex character at "
                     "offset %zu", path, 2 * i + (hi < 0 ? 0 : 1));
            goto done;
        }

        key[i] = (unsigned char) (hi << 4 | lo);
    }

    rc = 0;

done:

    sodium_memzero(buf, sizeof(buf));

    if (rc != 0) {
        sodium_memzero(key, VOUCHER_KEY_LEN);
    }

    close(fd);

    return rc;
}


int
voucher_key_generate(const char *path, char *err, size_t errlen)
{
    int            fd, rc;
    size_t         off;
    ssize_t        w;
    unsigned char  key[VOUCHER_KEY_LEN];
    char           hex[VOUCHER_KEY_HEX_LEN + 2];

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
              S_IRUSR | S_IWUSR);
    if (fd == -1) {
        snprintf(err, errlen, "key file \"%s\": cannot create: %s", path,
                 voucher_errno_text(errno));
        return -1;
    }

    rc = -1;

    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
    hex[VOUCHER_KEY_HEX_LEN] = '\n';

    /* the umask may have taken bits away, never added; be exact anyway */
    if (fchmod(fd, S_IRUSR | S_IWUSR) == -1) {
        snprintf(err, errlen, "key file \"%s\": chmod: %s", path,
                 voucher_errno_text(errno));
        goto done;
    }

    for (off = 0; off < VOUCHER_KEY_HEX_LEN + 1; /* void */) {
        w = write(fd, hex + off, VOUCHER_KEY_HEX_LEN + 1 - off);

        if (w == -1) {
            if (errno == EINTR) {
                continue;
            }

            snprintf(err, errlen, "key file \"%s\": cannot write: %s", path,
                     voucher_errno_text(errno));
            goto done;
        }

        off += (size_t) w;
    }

    if (fsync(fd) == -1) {
        snprintf(err, errlen, "key file \"%s\": fsync: %s", path,
                 voucher_errno_text(errno));
        goto done;
    }

    rc = 0;

done:

    sodium_memzero(key, sizeof(key));
    sodium_memzero(hex, sizeof(hex));

    if (close(fd) == -1 && rc == 0) {
        snprintf(err, errlen, "key file \"%s\": close: %s", path,
                 voucher_errno_text(errno));
        rc = -1;
    }

    if (rc != 0) {
        (void) unlink(path);
    }

    return rc;
}


/* is fmt the default format's charset */

static int
voucher_crockford(const voucher_format_t *fmt)
{
    return fmt == NULL || fmt->charset == NULL || fmt->charset_len == 0
           || (fmt->charset_len == sizeof(voucher_alphabet) - 1
               && memcmp(fmt->charset, voucher_alphabet, fmt->charset_len)
                  == 0);
}


/*
 * A format other than the default is part of what the MAC covers (its
 * charset, suffix and prefix length), so a code of one format never
 * passes as another's.  The default format adds nothing: its codes are
 * the same as ever.
 */

static int
voucher_tag_format(crypto_generichash_state *st, const voucher_format_t *fmt,
    size_t prefix_len)
{
    unsigned char  sep[3];

    if (voucher_crockford(fmt) && (fmt == NULL || fmt->suffix_len == 0)) {
        return 0;
    }

    sep[0] = 0;
    sep[1] = (unsigned char) (prefix_len & 0xff);
    sep[2] = (unsigned char) (fmt->suffix_len & 0xff);

    return (crypto_generichash_update(st, sep, sizeof(sep)) != 0
            || crypto_generichash_update(st,
                   (const unsigned char *) (fmt->charset ? fmt->charset : ""),
                   fmt->charset ? fmt->charset_len : 0) != 0
            || crypto_generichash_update(st, (const unsigned char *) "\0", 1)
               != 0
            || crypto_generichash_update(st,
                   (const unsigned char *) (fmt->suffix ? fmt->suffix : ""),
                   fmt->suffix_len) != 0)
           ? -1 : 0;
}


/*
 * The tag: with the Crockford alphabet, the first mac_len * 5 bits of the
 * MAC; with a charset of n characters, the MAC's base-n digits, lowest
 * first (n^25 < 2^128 for every n <= 32, so no digit repeats another).
 * st is keyed, with nothing hashed yet; it is wiped after.
 */

static int
voucher_tag_keyed(crypto_generichash_state *st, const char *prefix,
    size_t prefix_len, const char *body, size_t body_len, char *tag,
    size_t mac_len, const voucher_format_t *fmt)
{
    size_t         i, j, bit, n;
    unsigned int   w, rem;
    unsigned char  mac[VOUCHER_MAC_BYTES + 1];

    if (crypto_generichash_update(st, (const unsigned char *) prefix,
                                  prefix_len) != 0
        || crypto_generichash_update(st, (const unsigned char *) body,
                                     body_len) != 0
        || voucher_tag_format(st, fmt, prefix_len) != 0
        || crypto_generichash_final(st, mac, VOUCHER_MAC_BYTES) != 0)
    {
        sodium_memzero(st, sizeof(crypto_generichash_state));
        return -1;
    }

    if (voucher_crockford(fmt)) {

        /* a zero byte past the end, so every 5-bit group reads two bytes */
        mac[VOUCHER_MAC_BYTES] = 0;

        for (i = 0; i < mac_len; i++) {
            bit = i * 5;
            w = (unsigned int) mac[bit / 8] << 8 | mac[bit / 8 + 1];
            tag[i] = voucher_alphabet[(w >> (11 - bit % 8)) & 0x1f];
        }

    } else {
        /* long division of the 128-bit big-endian MAC by n, digit by digit */
        n = fmt->charset_len;

        for (i = 0; i < mac_len; i++) {
            rem = 0;

            for (j = 0; j < VOUCHER_MAC_BYTES; j++) {
                w = rem << 8 | mac[j];
                mac[j] = (unsigned char) (w / n);
                rem = w % n;
            }

            tag[i] = fmt->charset[rem];
        }
    }

    sodium_memzero(st, sizeof(crypto_generichash_state));
    sodium_memzero(mac, sizeof(mac));

    return 0;
}


/* the tag under key */

static int
voucher_tag(const unsigned char key[VOUCHER_KEY_LEN], const char *prefix,
    size_t prefix_len, const char *body, size_t body_len, char *tag,
    size_t mac_len, const voucher_format_t *fmt)
{
    crypto_generichash_state  st;

    if (crypto_generichash_init(&st, key, VOUCHER_KEY_LEN, VOUCHER_MAC_BYTES)
        != 0)
    {
        sodium_memzero(&st, sizeof(st));
        return -1;
    }

    return voucher_tag_keyed(&st, prefix, prefix_len, body, body_len, tag,
                             mac_len, fmt);
}


int
voucher_charset_check(const char *charset, size_t len, char *err,
    size_t errlen)
{
    size_t  i, j;

    if (charset == NULL || len < 2 || len > sizeof(voucher_alphabet) - 1) {
        snprintf(err, errlen, "a charset has 2 to %d characters",
                 (int) sizeof(voucher_alphabet) - 1);
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (charset[i] == '\0' || strchr(voucher_alphabet, charset[i]) == NULL)
        {
            snprintf(err, errlen, "a charset takes characters of %s only "
                     "(no I, L, O, U: they read as others)", voucher_alphabet);
            return -1;
        }

        for (j = 0; j < i; j++) {
            if (charset[j] == charset[i]) {
                snprintf(err, errlen, "\"%c\" is twice in the charset",
                         charset[i]);
                return -1;
            }
        }
    }

    return 0;
}


size_t
voucher_code_issue(const unsigned char key[VOUCHER_KEY_LEN],
    const char *prefix, size_t body_len, size_t mac_len, char *out,
    size_t size)
{
    return voucher_code_issue_ex(key, prefix, body_len, mac_len, NULL, out,
                                 size);
}


/*
 * prefix (normalized), body, tag and suffix into out: the body given, or
 * random (body NULL); its length, or 0 with out empty
 */

static size_t
voucher_code_build(const unsigned char key[VOUCHER_KEY_LEN],
    const char *prefix, const char *body, size_t body_len, size_t mac_len,
    const voucher_format_t *fmt, char *out, size_t size)
{
    size_t         i, total, slen;
    ssize_t        plen;
    unsigned char  rnd[VOUCHER_BODY_MAX_LEN];

    if (body_len < VOUCHER_BODY_MIN_LEN || body_len > VOUCHER_BODY_MAX_LEN
        || mac_len < VOUCHER_MAC_MIN_LEN || mac_len > VOUCHER_MAC_MAX_LEN
        || size == 0)
    {
        return 0;
    }

    slen = (fmt && fmt->suffix) ? fmt->suffix_len : 0;

    plen = voucher_normalize(prefix ? prefix : "", prefix ? strlen(prefix) : 0,
                             out, size);
    if (plen < 0) {
        return 0;
    }

    total = (size_t) plen + body_len + mac_len + slen;

    if (total > VOUCHER_CODE_MAX_LEN || total > size - 1) {
        out[0] = '\0';
        return 0;
    }

    if (body) {
        memcpy(out + plen, body, body_len);

    } else if (voucher_crockford(fmt)) {
        /* 32 divides 256: the low 5 bits of a random byte are uniform */
        randombytes_buf(rnd, body_len);

        for (i = 0; i < body_len; i++) {
            out[plen + i] = voucher_alphabet[rnd[i] & 0x1f];
        }

        sodium_memzero(rnd, sizeof(rnd));

    } else {
        for (i = 0; i < body_len; i++) {
            out[plen + i] = fmt->charset[randombytes_uniform(
                                             (uint32_t) fmt->charset_len)];
        }
    }

    if (voucher_tag(key, out, (size_t) plen, out + plen, body_len,
                    out + plen + body_len, mac_len, fmt) != 0)
    {
        out[0] = '\0';
        return 0;
    }

    if (slen) {
        memcpy(out + plen + body_len + mac_len, fmt->suffix, slen);
    }

    out[total] = '\0';

    return total;
}


size_t
voucher_code_issue_ex(const unsigned char key[VOUCHER_KEY_LEN],
    const char *prefix, size_t body_len, size_t mac_len,
    const voucher_format_t *fmt, char *out, size_t size)
{
    return voucher_code_build(key, prefix, NULL, body_len, mac_len, fmt, out,
                              size);
}


size_t
voucher_code_make(const unsigned char key[VOUCHER_KEY_LEN],
    const char *prefix, const char *body, size_t body_len, size_t mac_len,
    const voucher_format_t *fmt, char *out, size_t size)
{
    return voucher_code_build(key, prefix, body, body_len, mac_len, fmt, out,
                              size);
}


int
voucher_code_verify(const unsigned char key[VOUCHER_KEY_LEN],
    const char *code, size_t len, size_t prefix_len, size_t mac_len)
{
    return voucher_code_verify_ex(key, code, len, prefix_len, mac_len, NULL);
}


int
voucher_code_verify_ex(const unsigned char key[VOUCHER_KEY_LEN],
    const char *code, size_t len, size_t prefix_len, size_t mac_len,
    const voucher_format_t *fmt)
{
    int                rc;
    char               buf[VOUCHER_CODE_MAX_LEN];
    voucher_mac_key_t  mk;

    if (code == NULL || len > VOUCHER_CODE_MAX_LEN
        || voucher_mac_key_init(&mk, key) != 0)
    {
        return -1;
    }

    memcpy(buf, code, len);

    rc = voucher_code_verify_mk(&mk, buf, len, prefix_len, mac_len, fmt);

    sodium_memzero(&mk, sizeof(mk));

    return rc;
}


int
voucher_mac_key_init(voucher_mac_key_t *mk,
    const unsigned char key[VOUCHER_KEY_LEN])
{
    crypto_generichash_state  st;

    if (sizeof(st) > sizeof(mk->state)
        || crypto_generichash_init(&st, key, VOUCHER_KEY_LEN,
                                   VOUCHER_MAC_BYTES)
           != 0)
    {
        sodium_memzero(&st, sizeof(st));
        return -1;
    }

    memcpy(mk->state, &st, sizeof(st));
    sodium_memzero(&st, sizeof(st));

    return 0;
}


int
voucher_code_verify_mk(const voucher_mac_key_t *mk, char *code, size_t len,
    size_t prefix_len, size_t mac_len, const voucher_format_t *fmt)
{
    crypto_generichash_state  st;

    if (code == NULL
        || voucher_verify_canonical(code, len, prefix_len, mac_len, fmt)
           != 0)
    {
        return -1;
    }

    /* the state is copied into one aligned as libsodium wants it */
    memcpy(&st, mk->state, sizeof(st));

    return voucher_verify_tag(&st, code, len, prefix_len, mac_len, fmt);
}


/*
 * The checks of a code to verify that need no key: its lengths, its
 * suffix, and its body and tag in the charset once made canonical in
 * place.  Returns 0 if its tag is worth computing.
 */

static int
voucher_verify_canonical(char *code, size_t len, size_t prefix_len,
    size_t mac_len, const voucher_format_t *fmt)
{
    size_t  i, slen;

    slen = (fmt && fmt->suffix) ? fmt->suffix_len : 0;

    if (mac_len < VOUCHER_MAC_MIN_LEN || mac_len > VOUCHER_MAC_MAX_LEN
        || len > VOUCHER_CODE_MAX_LEN
        || slen > len
        || prefix_len > len
        || len - prefix_len < mac_len + slen + VOUCHER_BODY_MIN_LEN)
    {
        return -1;
    }

    if (slen && memcmp(code + len - slen, fmt->suffix, slen) != 0) {
        return -1;
    }

    len -= slen;

    if (voucher_code_canonical(code + prefix_len, len - prefix_len) == 0) {
        return -1;
    }

    if (!voucher_crockford(fmt)) {
        for (i = prefix_len; i < len; i++) {
            if (memchr(fmt->charset, code[i], fmt->charset_len) == NULL) {
                return -1;
            }
        }
    }

    return 0;
}


/* the tag of a code that passed voucher_verify_canonical(), with st */

static int
voucher_verify_tag(crypto_generichash_state *st, const char *code,
    size_t len, size_t prefix_len, size_t mac_len,
    const voucher_format_t *fmt)
{
    int     rc;
    size_t  body_len;
    char    tag[VOUCHER_MAC_MAX_LEN];

    len -= (fmt && fmt->suffix) ? fmt->suffix_len : 0;
    body_len = len - prefix_len - mac_len;

    if (voucher_tag_keyed(st, code, prefix_len, code + prefix_len, body_len,
                          tag, mac_len, fmt)
        != 0)
    {
        return -1;
    }

    rc = sodium_memcmp(tag, code + prefix_len + body_len, mac_len) == 0
         ? 0 : -1;

    sodium_memzero(tag, sizeof(tag));

    return rc;
}


size_t
voucher_tag_min_len(const voucher_format_t *fmt)
{
    size_t    n, m;
    uint64_t  v;

    n = (fmt && fmt->charset && fmt->charset_len) ? fmt->charset_len : 32;

    for (v = 1, m = 0; v < 1000000; m++) {
        v *= n;
    }

    return m;
}


int
voucher_pattern_split(const char *pattern, char *prefix, size_t psize,
    size_t *hashes, char *suffix, size_t ssize)
{
    char        c;
    size_t      np, ns;
    const char *p;

    if (pattern == NULL || psize == 0 || ssize == 0) {
        return -1;
    }

    np = 0;
    ns = 0;
    *hashes = 0;

    for (p = pattern; *p; p++) {
        c = *p;

        if (c == '#') {
            if (ns > 0) {
                return -1;              /* a literal between two '#' */
            }

            (*hashes)++;
            continue;
        }

        if (c == ' ' || c == '\t' || c == '-') {
            continue;
        }

        if ((unsigned char) c < 0x21 || (unsigned char) c > 0x7e) {
            return -1;
        }

        if (c >= 'a' && c <= 'z') {
            c = (char) (c - ('a' - 'A'));
        }

        if (*hashes == 0) {
            if (np + 1 >= psize) {
                return -1;
            }

            prefix[np++] = c;

        } else {
            if (ns + 1 >= ssize) {
                return -1;
            }

            suffix[ns++] = c;
        }
    }

    prefix[np] = '\0';
    suffix[ns] = '\0';

    return *hashes > 0 ? 0 : -1;
}


size_t
voucher_code_display(const char *code, size_t len, const char *pattern,
    char *out, size_t size)
{
    size_t  i, n;
    char    p;

    if (code == NULL || pattern == NULL || size == 0) {
        return 0;
    }

    i = 0;
    n = 0;

    for ( /* void */ ; *pattern != '\0'; pattern++) {
        p = *pattern;

        if (n >= size - 1) {
            goto fail;
        }

        if (p == ' ' || p == '\t' || p == '-') {
            out[n++] = p;
            continue;
        }

        if (i >= len) {
            goto fail;
        }

        /* literals as typed in the pattern match the stored (upper) case */
        if (p >= 'a' && p <= 'z') {
            p = (char) (p - ('a' - 'A'));
        }

        if (p != '#' && p != code[i]) {
            goto fail;
        }

        out[n++] = code[i++];
    }

    if (i != len) {
        goto fail;
    }

    out[n] = '\0';

    return n;

fail:

    out[0] = '\0';

    return 0;
}
