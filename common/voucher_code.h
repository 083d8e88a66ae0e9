
/*
 * Copyright (C) ngx_voucher authors
 *
 * The voucher code format and its keyed MAC, shared by voucherd,
 * voucherctl and the nginx module.
 *
 * Pure C and libsodium: no nginx, no globals, no allocation, thread-safe.
 * The caller runs sodium_init() once before the first issue or verify.
 *
 * An issued code is  PREFIX BODY TAG SUFFIX  (normalized, as stored):
 *   PREFIX  what the operator chose, normalized (may be empty);
 *   BODY    body_len random characters of the charset: by default the
 *           Crockford alphabet, or any 2 or more of its characters;
 *   TAG     mac_len characters of the charset made from keyed
 *           BLAKE2b-128 (the 32-byte key) over PREFIX BODY, and, for any
 *           other format than the default, the format itself (charset,
 *           suffix, prefix length): with the Crockford alphabet its first
 *           mac_len * 5 bits, with another charset its base-n digits,
 *           lowest first;
 *   SUFFIX  what the operator chose, normalized (may be empty).
 * A charset is a subset of the Crockford alphabet so that the look-alike
 * mapping (O to 0, I and L to 1) never turns one valid code into another.
 */


#ifndef _VOUCHER_CODE_H_INCLUDED_
#define _VOUCHER_CODE_H_INCLUDED_


#include <stddef.h>


#define VOUCHER_CODE_ALPHABET    "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

/* the longest stored code, as the Redis library accepts (1..64) */
#define VOUCHER_CODE_MAX_LEN     64

#define VOUCHER_KEY_LEN          32
#define VOUCHER_KEY_HEX_LEN      64

/* the tag is cut from a 128-bit MAC: at most 25 characters of 5 bits */
#define VOUCHER_MAC_MIN_LEN      1
#define VOUCHER_MAC_MAX_LEN      25
#define VOUCHER_BODY_MIN_LEN     1
#define VOUCHER_BODY_MAX_LEN     VOUCHER_CODE_MAX_LEN


/* a code's charset and suffix; {NULL, 0, NULL, 0} is the default format */
typedef struct {
    const char  *charset;       /* NULL: the whole Crockford alphabet */
    size_t       charset_len;
    const char  *suffix;        /* normalized; NULL or "": none */
    size_t       suffix_len;
} voucher_format_t;


/*
 * Uppercases ASCII letters and drops spaces, tabs and dashes.  Any other
 * byte outside 0x21-0x7e makes the code invalid.  Writes the result,
 * NUL-terminated, to out (which may be in itself: the result never grows).
 * Returns its length, or 0 when invalid, empty or longer than size - 1.
 */
size_t voucher_code_normalize(const char *in, size_t len, char *out,
    size_t size);

/*
 * Maps the Crockford look-alikes in place (O to 0, I and L to 1, in either
 * case; lowercase letters are uppercased).  Returns len, or 0 when a
 * character is then still outside the alphabet (U, punctuation, ...).
 */
size_t voucher_code_canonical(char *code, size_t len);

/*
 * Reads a key file: exactly 64 hex characters, optionally followed by one
 * newline.  Returns 0, or -1 with a message in err that names the file
 * and the problem, never the key.
 */
int voucher_key_load(const char *path, unsigned char key[VOUCHER_KEY_LEN],
    char *err, size_t errlen);

/*
 * Writes a new random key to path, created with mode 0600.  An existing
 * file is never replaced: a lost key invalidates every code issued with
 * it.  Returns 0, or -1 with a message in err.
 */
int voucher_key_generate(const char *path, char *err, size_t errlen);

/*
 * Issues one code: the normalized prefix, body_len random characters and
 * a mac_len character tag, NUL-terminated in out.  Returns its length, or
 * 0 when the prefix is invalid, a length is out of range or out is small.
 */
size_t voucher_code_issue(const unsigned char key[VOUCHER_KEY_LEN],
    const char *prefix, size_t body_len, size_t mac_len, char *out,
    size_t size);

/*
 * Checks the tag of a normalized code whose prefix is prefix_len long and
 * whose tag is the last mac_len characters.  The body and tag go through
 * voucher_code_canonical() first, so O/I/L typed for 0/1/1 still pass.
 * Returns 0 when the tag is right, -1 otherwise.  Constant time in the
 * tag.
 */
int voucher_code_verify(const unsigned char key[VOUCHER_KEY_LEN],
    const char *code, size_t len, size_t prefix_len, size_t mac_len);

/*
 * Checks a charset: 2 to 32 different characters, all of the Crockford
 * alphabet (upper case).  Returns 0, or -1 with a message in err.
 */
int voucher_charset_check(const char *charset, size_t len, char *err,
    size_t errlen);

/*
 * voucher_code_issue() and voucher_code_verify() in a format: a charset
 * (checked with voucher_charset_check() first) and a suffix after the
 * tag.  fmt may be NULL (the default format); len of verify includes the
 * suffix, which must end the code.
 */
size_t voucher_code_issue_ex(const unsigned char key[VOUCHER_KEY_LEN],
    const char *prefix, size_t body_len, size_t mac_len,
    const voucher_format_t *fmt, char *out, size_t size);
int voucher_code_verify_ex(const unsigned char key[VOUCHER_KEY_LEN],
    const char *code, size_t len, size_t prefix_len, size_t mac_len,
    const voucher_format_t *fmt);

/*
 * voucher_code_issue_ex() with a given body (body_len characters of the
 * format's charset) instead of a random one: a serial series'
 * (voucher_serial.h).  Returns the length, or 0 as voucher_code_issue_ex().
 */
size_t voucher_code_make(const unsigned char key[VOUCHER_KEY_LEN],
    const char *prefix, const char *body, size_t body_len, size_t mac_len,
    const voucher_format_t *fmt, char *out, size_t size);

/*
 * A key made ready once for many verifications: BLAKE2b keyed with it,
 * before any code (what voucher_code_verify_ex() otherwise redoes for
 * each code).  Opaque; holds what the key does, so keep it as the key.
 */
#define VOUCHER_MAC_KEY_LEN      384

typedef struct {
    unsigned char  state[VOUCHER_MAC_KEY_LEN];
} voucher_mac_key_t;

/* Returns 0, or -1 if libsodium's state does not fit (never, as built) */
int voucher_mac_key_init(voucher_mac_key_t *mk,
    const unsigned char key[VOUCHER_KEY_LEN]);

/*
 * voucher_code_verify_ex() with a key made ready, the same answers, but
 * the body and tag of code are made canonical in place, whatever the
 * answer (only the suffix is left as it is).
 */
int voucher_code_verify_mk(const voucher_mac_key_t *mk, char *code,
    size_t len, size_t prefix_len, size_t mac_len,
    const voucher_format_t *fmt);

/*
 * The shortest tag in a charset that still has a million values, so that
 * a guess passes the offline check at most once in a million: 4 in the
 * Crockford alphabet, 6 digits, 20 binary digits.
 */
size_t voucher_tag_min_len(const voucher_format_t *fmt);

/*
 * Splits a display pattern such as "SALE-####-####-TH": the literal
 * characters before the first '#' are the prefix, those after the last
 * '#' the suffix (both normalized, NUL-terminated), and *hashes counts the
 * '#'.  Spaces, tabs and dashes separate.  Returns 0, or -1 when there is
 * no '#', a literal stands between two '#', or a part does not fit.
 */
int voucher_pattern_split(const char *pattern, char *prefix, size_t psize,
    size_t *hashes, char *suffix, size_t ssize);

/*
 * Renders a normalized code for people: each '#' of pattern takes the next
 * character of the code; a space, tab or dash is copied; any other pattern
 * character must equal the next code character (the prefix, say "SALE" in
 * "SALE-####-####"), and is copied.  All of the code must be used, so the
 * rendered text always normalizes back to the code.  Returns the length
 * written (NUL-terminated), or 0 when the code does not fit the pattern or
 * out is too small.
 */
size_t voucher_code_display(const char *code, size_t len, const char *pattern,
    char *out, size_t size);


#endif /* _VOUCHER_CODE_H_INCLUDED_ */
