
/*
 * Copyright (C) ngx_voucher authors
 */


#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

/* AddressSanitizer, as gcc and clang tell it */
#if defined(__SANITIZE_ADDRESS__)
#define NGX_HTTP_VOUCHER_ASAN          1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NGX_HTTP_VOUCHER_ASAN          1
#endif
#endif

#ifdef NGX_HTTP_VOUCHER_ASAN
#include <sanitizer/asan_interface.h>
#endif

#include "ngx_http_voucher_parse.h"


#define NGX_HTTP_VOUCHER_DEFAULT_MAX_CODE_LEN  64
#define NGX_HTTP_VOUCHER_DEFAULT_MAX_STR_LEN   128
#define NGX_HTTP_VOUCHER_DEFAULT_MAX_ITEMS     100
#define NGX_HTTP_VOUCHER_DEFAULT_MAX_AMOUNT    INT64_C(10000000000000)

#define NGX_HTTP_VOUCHER_OPTIONAL      0
#define NGX_HTTP_VOUCHER_REQUIRED      1

/*
 * jansson's allocations for one parse: a static first block, then blocks
 * from the allocator jansson had before (malloc), all dropped at once
 * when the parse ends.  A usual body's tree takes 1-3 KB.
 */
#define NGX_HTTP_VOUCHER_JSON_ALIGN    16
#define NGX_HTTP_VOUCHER_JSON_STATIC   8192
#define NGX_HTTP_VOUCHER_JSON_BLOCK    16384

/*
 * Under AddressSanitizer the arena is poisoned but for what jansson holds,
 * with a gap after each allocation, and all of it between parses: a node
 * used after its parse, or past its end, is reported.
 */
#ifdef NGX_HTTP_VOUCHER_ASAN
#define NGX_HTTP_VOUCHER_JSON_GAP      NGX_HTTP_VOUCHER_JSON_ALIGN
#define ngx_http_voucher_json_poison(p, n)                                    \
    __asan_poison_memory_region((p), (n))
#define ngx_http_voucher_json_unpoison(p, n)                                  \
    __asan_unpoison_memory_region((p), (n))
#else
#define NGX_HTTP_VOUCHER_JSON_GAP      0
#define ngx_http_voucher_json_poison(p, n)
#define ngx_http_voucher_json_unpoison(p, n)
#endif

#define NGX_HTTP_VOUCHER_MAX_KEYS      8

#define NGX_HTTP_VOUCHER_F_CODE        0  /* ngx_http_voucher_voucher_keys */
#define NGX_HTTP_VOUCHER_F_CUSTOMER    1
#define NGX_HTTP_VOUCHER_F_IDEM        2
#define NGX_HTTP_VOUCHER_F_ORDER       3
#define NGX_HTTP_VOUCHER_F_CODES       4
#define NGX_HTTP_VOUCHER_F_POINTS      5
#define NGX_HTTP_VOUCHER_F_ATTRS       6
#define NGX_HTTP_VOUCHER_F_HOLD        7

#define NGX_HTTP_VOUCHER_F_ID          0  /* ngx_http_voucher_order_keys */
#define NGX_HTTP_VOUCHER_F_AMOUNT      1
#define NGX_HTTP_VOUCHER_F_CURRENCY    2
#define NGX_HTTP_VOUCHER_F_ITEMS       3
#define NGX_HTTP_VOUCHER_F_METADATA    4
#define NGX_HTTP_VOUCHER_F_CHANNEL     5

/* the order keys an operation takes (the first n) */
#define NGX_HTTP_VOUCHER_ORDER_EARN    4  /* no metadata, no channel */
#define NGX_HTTP_VOUCHER_ORDER_CODE    5  /* a single code: metadata */
#define NGX_HTTP_VOUCHER_ORDER_CART    6  /* a stack, qualify: channel */

#define NGX_HTTP_VOUCHER_F_Q_CUSTOMER  0  /* ngx_http_voucher_qualify_keys */
#define NGX_HTTP_VOUCHER_F_Q_ORDER     1
#define NGX_HTTP_VOUCHER_F_Q_CODES     2
#define NGX_HTTP_VOUCHER_F_Q_BEST      3
#define NGX_HTTP_VOUCHER_F_Q_ATTRS     4

#define NGX_HTTP_VOUCHER_F_SKU         0  /* ngx_http_voucher_item_keys */
#define NGX_HTTP_VOUCHER_F_CATEGORY    1
#define NGX_HTTP_VOUCHER_F_PRICE       2
#define NGX_HTTP_VOUCHER_F_QUANTITY    3

#define NGX_HTTP_VOUCHER_F_MEMBER      0  /* ngx_http_voucher_loyalty_keys */
#define NGX_HTTP_VOUCHER_F_L_ORDER     1
#define NGX_HTTP_VOUCHER_F_LIMIT       1
#define NGX_HTTP_VOUCHER_F_BEFORE      2

#define NGX_HTTP_VOUCHER_F_RID         0  /* ngx_http_voucher_settle_keys */
#define NGX_HTTP_VOUCHER_F_SETTLE_IDEM 1
#define NGX_HTTP_VOUCHER_F_RB_AMOUNT   2

#define ngx_http_voucher_lower(c)                                            \
    (((c) >= 'A' && (c) <= 'Z') ? (unsigned char) ((c) | 0x20)               \
                                : (unsigned char) (c))

#if defined(__GNUC__) || defined(__clang__)
#define NGX_HTTP_VOUCHER_PRINTF(f, a)  __attribute__((format(printf, f, a)))
#else
#define NGX_HTTP_VOUCHER_PRINTF(f, a)
#endif


/* lets offsetof() tell the alignment of an item without C11 _Alignof */
typedef struct {
    char                              c;
    ngx_http_voucher_item_t           item;
} ngx_http_voucher_item_align_t;

#define NGX_HTTP_VOUCHER_ITEM_ALIGN                                           \
    offsetof(ngx_http_voucher_item_align_t, item)

typedef struct {
    char                              c;
    ngx_http_voucher_str_t            str;
} ngx_http_voucher_str_align_t;

#define NGX_HTTP_VOUCHER_STR_ALIGN                                            \
    offsetof(ngx_http_voucher_str_align_t, str)


typedef struct {
    const ngx_http_voucher_limits_t  *lim;
    unsigned char                    *arena;
    size_t                            size;
    size_t                            used;
    ngx_http_voucher_error_t         *err;
} ngx_http_voucher_ctx_t;


typedef struct {
    char                             *data;
    size_t                            size;
    size_t                            len;
    int                               truncated;
} ngx_http_voucher_buf_t;


/* a non-ASCII character and the lower case ASCII it may be taken for */
typedef struct {
    const char                       *utf8;
    size_t                            len;
    const char                       *ascii;
} ngx_http_voucher_fold_t;


typedef struct ngx_http_voucher_json_block_s  ngx_http_voucher_json_block_t;

struct ngx_http_voucher_json_block_s {
    ngx_http_voucher_json_block_t    *next;
    size_t                            size;
};


typedef struct {
    unsigned char                    *pos;
    unsigned char                    *last;
    ngx_http_voucher_json_block_t    *blocks;    /* from malloc_fn */
    size_t                            next;      /* the next block's size */
    json_malloc_t                     malloc_fn; /* jansson's, outside */
    json_free_t                       free_fn;
} ngx_http_voucher_json_arena_t;


static int ngx_http_voucher_fail(ngx_http_voucher_error_t *err,
    const char *reason, const char *prefix, const char *name,
    const char *fmt, ...) NGX_HTTP_VOUCHER_PRINTF(5, 6);
static void ngx_http_voucher_buf_add(ngx_http_voucher_buf_t *b,
    const char *s);
static void ngx_http_voucher_buf_done(ngx_http_voucher_buf_t *b);
static const char *ngx_http_voucher_type_name(const json_t *v);
static const char *ngx_http_voucher_json_error(const json_error_t *jerr);
static int ngx_http_voucher_code_rule(const unsigned char *s, size_t len,
    const ngx_http_voucher_limits_t *lim, ngx_http_voucher_error_t *err,
    const char *prefix, const char *name);
static void *ngx_http_voucher_alloc(ngx_http_voucher_ctx_t *ctx, size_t n,
    size_t size, size_t align);
static int ngx_http_voucher_check_keys(ngx_http_voucher_ctx_t *ctx,
    json_t *obj, const char *prefix, const char *const *keys, size_t n,
    json_t **vals);
static int ngx_http_voucher_get_str(ngx_http_voucher_ctx_t *ctx,
    json_t *v, const char *prefix, const ngx_http_voucher_field_t *f,
    int required, ngx_http_voucher_str_t *out);
static int ngx_http_voucher_get_member(ngx_http_voucher_ctx_t *ctx,
    json_t *v, const char *why, ngx_http_voucher_str_t *out);
static int ngx_http_voucher_str_rule(const ngx_http_voucher_field_t *f,
    const unsigned char *s, size_t len, const ngx_http_voucher_limits_t *lim,
    ngx_http_voucher_error_t *err, const char *prefix);
static int ngx_http_voucher_get_int(ngx_http_voucher_ctx_t *ctx,
    json_t *v, const char *prefix, const ngx_http_voucher_field_t *f,
    int required, int64_t *out);
static int ngx_http_voucher_cursor_ok(const unsigned char *s, size_t len);
static int ngx_http_voucher_int_rule(const ngx_http_voucher_field_t *f,
    int64_t n, const ngx_http_voucher_limits_t *lim,
    ngx_http_voucher_error_t *err, const char *prefix);
static int ngx_http_voucher_parse_items(ngx_http_voucher_ctx_t *ctx,
    json_t *items, ngx_http_voucher_request_t *req, int64_t *sum);
static int ngx_http_voucher_parse_order(ngx_http_voucher_ctx_t *ctx,
    json_t *order, ngx_http_voucher_request_t *req, size_t nkeys,
    json_t *attrs);
static int ngx_http_voucher_meta_check(ngx_http_voucher_ctx_t *ctx,
    json_t *obj, const char *name, size_t *size);
static unsigned char *ngx_http_voucher_meta_add(unsigned char *p,
    json_t *obj, int scope);
static size_t ngx_http_voucher_dec(unsigned char *p, json_int_t x);
static int ngx_http_voucher_parse_codes(ngx_http_voucher_ctx_t *ctx,
    json_t *codes, ngx_http_voucher_request_t *req);
static int ngx_http_voucher_parse_qualify(ngx_http_voucher_ctx_t *ctx,
    json_t *root, ngx_http_voucher_request_t *req);
static int ngx_http_voucher_parse_voucher_op(ngx_http_voucher_ctx_t *ctx,
    json_t *root, ngx_http_voucher_request_t *req);
static int ngx_http_voucher_parse_rollback(ngx_http_voucher_ctx_t *ctx,
    json_t *root, ngx_http_voucher_request_t *req);
static int ngx_http_voucher_parse_wallet(ngx_http_voucher_ctx_t *ctx,
    json_t *root, ngx_http_voucher_request_t *req);
static int ngx_http_voucher_parse_event(ngx_http_voucher_ctx_t *ctx,
    json_t *root, ngx_http_voucher_request_t *req);
static int ngx_http_voucher_parse_loyalty(ngx_http_voucher_ctx_t *ctx,
    json_t *root, ngx_http_voucher_request_t *req);
static void ngx_http_voucher_request_init(ngx_http_voucher_request_t *req,
    int op);
static void ngx_http_voucher_json_begin(size_t len);
static void ngx_http_voucher_json_end(void);
static void *ngx_http_voucher_json_alloc(size_t size);
static void *ngx_http_voucher_json_grow(size_t size);
static void ngx_http_voucher_json_free(void *p);


static ngx_http_voucher_json_arena_t  ngx_http_voucher_json_arena;

/* the static block: the union aligns it as malloc() would */

static union {
    long double                       ld;
    long long                         ll;
    void                             *p;
    unsigned char                     data[NGX_HTTP_VOUCHER_JSON_STATIC];
} ngx_http_voucher_json_static;


/*
 * The fields of each object, in the order of the NGX_HTTP_VOUCHER_F_*
 * indexes.  A reserve takes the voucher fields and hold_seconds, a
 * rollback the settle fields and amount: the extra field comes last, so
 * the others know theirs by the first n.
 */

static const char *const  ngx_http_voucher_voucher_keys[] = {
    "code", "customer", "idempotency_key", "order", "codes", "points",
    "customer_attributes", "hold_seconds", NULL
};

/* "metadata": not a loyalty earn's; "channel": a stack's and qualify's */
static const char *const  ngx_http_voucher_order_keys[] = {
    "id", "amount", "currency", "items", "metadata", "channel", NULL
};

static const char *const  ngx_http_voucher_qualify_keys[] = {
    "customer", "order", "codes", "best", "customer_attributes", NULL
};

static const char *const  ngx_http_voucher_item_keys[] = {
    "sku", "category", "price", "quantity", NULL
};

static const char *const  ngx_http_voucher_settle_keys[] = {
    "redemption_id", "idempotency_key", "amount", NULL
};

static const char *const  ngx_http_voucher_wallet_keys[] = {
    "customer", "cursor", "count", NULL
};

static const char *const  ngx_http_voucher_save_keys[] = {
    "customer", "code", NULL
};

/* a loyalty earn: customer and order; a history: customer, limit, before */

static const char *const  ngx_http_voucher_earn_keys[] = {
    "customer", "order", NULL
};

static const char *const  ngx_http_voucher_history_keys[] = {
    "customer", "limit", "before", NULL
};

static const char *const  ngx_http_voucher_event_keys[] = {
    "id", "type", "customer", "timestamp", "order", "referral_code", "data",
    NULL
};

/* a signup's member fields, as voucherd reads them from the stream */
const char *const  ngx_http_voucher_event_attrs[] = {
    "name", "phone", "email", "line", "birthday", "tier", "tags", NULL
};

/*
 * Types a storefront may not post: the loyalty programme's notices, which
 * fire automations of their own
 */
static const char *const  ngx_http_voucher_event_reserved[] = {
    "tier_upgraded", "tier_downgraded", "tier_will_drop", "points_expiring",
    "reward_redeemed", "referral_converted", NULL
};


/* by the NGX_HTTP_VOUCHER_FIELD_*_ROW indexes */

const ngx_http_voucher_field_t  ngx_http_voucher_fields[] = {
    { "code", "code", NGX_HTTP_VOUCHER_FIELD_CODE, 0, 0, NULL },
    { "customer", "customer", NGX_HTTP_VOUCHER_FIELD_TEXT, 0, 0,
      "The customer must be 1 to 128 characters, no control characters." },
    { "idempotency_key", "idempotency_key", NGX_HTTP_VOUCHER_FIELD_TOKEN,
      0, 0,
      "The idempotency key must be 1 to 128 printable ASCII characters." },
    { "id", "order_id", NGX_HTTP_VOUCHER_FIELD_TEXT, 0, 0,
      "The order id must be 1 to 128 characters, no control characters." },
    { "amount", "order_amount", NGX_HTTP_VOUCHER_FIELD_AMOUNT, 0, 0,
      "The order amount must be an integer in minor units, 0 to 10^13." },
    { "currency", "currency", NGX_HTTP_VOUCHER_FIELD_CURRENCY, 0, 0,
      "The currency must be three capital letters (ISO 4217)." },
    { "hold_seconds", NULL, NGX_HTTP_VOUCHER_FIELD_COUNT,
      1, NGX_HTTP_VOUCHER_MAX_HOLD_SECONDS, NULL },
    { "sku", NULL, NGX_HTTP_VOUCHER_FIELD_TEXT, 0, 0, NULL },
    { "category", NULL, NGX_HTTP_VOUCHER_FIELD_TEXT, 0, 0, NULL },
    { "price", NULL, NGX_HTTP_VOUCHER_FIELD_AMOUNT, 0, 0, NULL },
    { "quantity", NULL, NGX_HTTP_VOUCHER_FIELD_COUNT,
      1, NGX_HTTP_VOUCHER_MAX_QUANTITY, NULL },
    { "redemption_id", NULL, NGX_HTTP_VOUCHER_FIELD_RID, 0, 0, NULL },
    { "amount", NULL, NGX_HTTP_VOUCHER_FIELD_AMOUNT, 0, 0, NULL },
    { "cursor", NULL, NGX_HTTP_VOUCHER_FIELD_CURSOR, 0, 0, NULL },
    { "count", NULL, NGX_HTTP_VOUCHER_FIELD_COUNT,
      1, NGX_HTTP_VOUCHER_MAX_WALLET_PAGE, NULL },
    { "channel", NULL, NGX_HTTP_VOUCHER_FIELD_TOKEN, 0, 0, NULL },
    { "points", "points", NGX_HTTP_VOUCHER_FIELD_COUNT,
      1, NGX_HTTP_VOUCHER_MAX_POINTS,
      "The points must be an integer, 1 to 10^13." },
    { "limit", NULL, NGX_HTTP_VOUCHER_FIELD_COUNT,
      1, NGX_HTTP_VOUCHER_MAX_HISTORY, NULL },
    { "before", NULL, NGX_HTTP_VOUCHER_FIELD_RID, 0, 0, NULL },
    { "id", NULL, NGX_HTTP_VOUCHER_FIELD_TOKEN,
      0, NGX_HTTP_VOUCHER_MAX_EVENT_ID_LEN, NULL },
    { "type", NULL, NGX_HTTP_VOUCHER_FIELD_NAME,
      0, NGX_HTTP_VOUCHER_MAX_EVENT_TYPE_LEN, NULL },
    { "timestamp", NULL, NGX_HTTP_VOUCHER_FIELD_COUNT,
      0, NGX_HTTP_VOUCHER_MAX_TIMESTAMP, NULL },
    { "data", NULL, NGX_HTTP_VOUCHER_FIELD_TEXT, 0, 0, NULL },
    { NULL, NULL, 0, 0, 0, NULL }
};

#define ngx_http_voucher_field(row)                                           \
    (&ngx_http_voucher_fields[NGX_HTTP_VOUCHER_FIELD_ ## row ## _ROW])


/*
 * The characters whose simple or full case mapping or folding is made of
 * ASCII letters only: Go's encoding/json folds the Kelvin sign and long
 * s, Java and .NET map dotless and dotted i, full case folding (ICU,
 * Python's casefold()) turns sharp s and the ligatures into two or three.
 */

static const ngx_http_voucher_fold_t  ngx_http_voucher_folds[] = {
    { "\xc3\x9f", 2, "ss" },          /* U+00DF sharp s */
    { "\xc4\xb0", 2, "i" },           /* U+0130 capital I with dot above */
    { "\xc4\xb1", 2, "i" },           /* U+0131 dotless i */
    { "\xc5\xbf", 2, "s" },           /* U+017F long s */
    { "\xe1\xba\x9e", 3, "ss" },      /* U+1E9E capital sharp s */
    { "\xe2\x84\xaa", 3, "k" },       /* U+212A Kelvin sign */
    { "\xef\xac\x80", 3, "ff" },      /* U+FB00 */
    { "\xef\xac\x81", 3, "fi" },      /* U+FB01 */
    { "\xef\xac\x82", 3, "fl" },      /* U+FB02 */
    { "\xef\xac\x83", 3, "ffi" },     /* U+FB03 */
    { "\xef\xac\x84", 3, "ffl" },     /* U+FB04 */
    { "\xef\xac\x85", 3, "st" },      /* U+FB05 long s t */
    { "\xef\xac\x86", 3, "st" },      /* U+FB06 */
    { NULL, 0, NULL }
};


void
ngx_http_voucher_limits_init(ngx_http_voucher_limits_t *lim)
{
    lim->max_code_len = NGX_HTTP_VOUCHER_DEFAULT_MAX_CODE_LEN;
    lim->max_str_len = NGX_HTTP_VOUCHER_DEFAULT_MAX_STR_LEN;
    lim->max_items = NGX_HTTP_VOUCHER_DEFAULT_MAX_ITEMS;
    lim->max_amount = NGX_HTTP_VOUCHER_DEFAULT_MAX_AMOUNT;
}


size_t
ngx_http_voucher_parse_arena_size(size_t len,
    const ngx_http_voucher_limits_t *lim)
{
    size_t  n, fixed;

    n = lim ? lim->max_items : NGX_HTTP_VOUCHER_DEFAULT_MAX_ITEMS;

    /* an array element takes at least one byte and a separator */
    if (n > len / 2 + 1) {
        n = len / 2 + 1;
    }

    /*
     * A JSON string token of L bytes (quotes included) decodes to at most
     * L - 2 bytes: escapes never expand.  So all copied strings plus their
     * NUL terminators fit in len bytes.
     */

    /* and the array of a request's codes */

    fixed = NGX_HTTP_VOUCHER_ITEM_ALIGN - 1 + NGX_HTTP_VOUCHER_STR_ALIGN - 1
            + NGX_HTTP_VOUCHER_MAX_CODES * sizeof(ngx_http_voucher_str_t);

    if (len > SIZE_MAX - fixed
        || n > (SIZE_MAX - fixed - len) / sizeof(ngx_http_voucher_item_t))
    {
        return SIZE_MAX;
    }

    return len + fixed + n * sizeof(ngx_http_voucher_item_t);
}


int
ngx_http_voucher_parse_request(int op, const unsigned char *body,
    size_t len, const ngx_http_voucher_limits_t *lim,
    ngx_http_voucher_request_t *req, unsigned char *arena, size_t arena_size,
    ngx_http_voucher_error_t *err)
{
    int                        rc;
    json_t                    *root;
    json_error_t               jerr;
    ngx_http_voucher_ctx_t     ctx;
    ngx_http_voucher_limits_t  defaults;

    if (lim == NULL) {
        ngx_http_voucher_limits_init(&defaults);
        lim = &defaults;
    }

    if (req == NULL) {
        return ngx_http_voucher_fail(err, NGX_HTTP_VOUCHER_ERR_INTERNAL,
                                     "", "", "no request to fill");
    }

    ngx_http_voucher_request_init(req, op);

    if (op < NGX_HTTP_VOUCHER_OP_VALIDATE || op > NGX_HTTP_VOUCHER_OP_LAST) {
        return ngx_http_voucher_fail(err, NGX_HTTP_VOUCHER_ERR_INTERNAL,
                                     "", "", "unknown operation %d", op);
    }

    if (len == 0) {
        return ngx_http_voucher_fail(err, NGX_HTTP_VOUCHER_ERR_INVALID_JSON,
                                     "", "", "request body is empty");
    }

    if (body == NULL) {
        return ngx_http_voucher_fail(err, NGX_HTTP_VOUCHER_ERR_INTERNAL,
                                     "", "", "no request body buffer");
    }

    /*
     * The tree lives in the parse arena and is never freed node by node:
     * ngx_http_voucher_json_end() drops it all, so no json_t of this
     * parse may be kept, nor passed to json_decref(); strings are copied
     * out.  JSON_DECODE_ANY: a scalar top level is valid JSON, just not a
     * valid request; no JSON_ALLOW_NUL: "\u0000" is rejected by jansson.
     */

    ngx_http_voucher_json_begin(len);

    root = json_loadb((const char *) body, len,
                      JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);

    if (root == NULL) {

        ngx_http_voucher_json_end();

        /*
         * jansson 2.14 never reports json_error_out_of_memory while
         * loading: a failed allocation either leaves the error text empty
         * (every real parse error sets it) or, inside the lexer, shows up
         * as a syntax error that we cannot tell apart.
         */

        if (json_error_code(&jerr) == json_error_out_of_memory
            || jerr.text[0] == '\0')
        {
            return ngx_http_voucher_fail(err, NGX_HTTP_VOUCHER_ERR_INTERNAL,
                                         "", "", "out of memory");
        }

        /*
         * jansson does not name the key, and jerr.text quotes the body,
         * so only our own words are used
         */

        if (json_error_code(&jerr) == json_error_duplicate_key) {
            return ngx_http_voucher_fail(err,
                                         NGX_HTTP_VOUCHER_ERR_DUPLICATE_FIELD,
                                         "", "",
                                         "request body has a key twice in "
                                         "one object, the second ending at "
                                         "byte %d", jerr.position);
        }

        return ngx_http_voucher_fail(err, NGX_HTTP_VOUCHER_ERR_INVALID_JSON,
                                     "", "",
                                     "request body is not valid JSON: "
                                     "%s at byte %d",
                                     ngx_http_voucher_json_error(&jerr),
                                     jerr.position);
    }

    ctx.lim = lim;
    ctx.arena = arena;
    ctx.size = arena ? arena_size : 0;
    ctx.used = 0;
    ctx.err = err;

    if (!json_is_object(root)) {
        rc = ngx_http_voucher_fail(err, NGX_HTTP_VOUCHER_ERR_INVALID_REQUEST,
                                   "", "",
                                   "request body must be a JSON object, "
                                   "got %s",
                                   ngx_http_voucher_type_name(root));

    } else if (op == NGX_HTTP_VOUCHER_OP_ROLLBACK
               || op == NGX_HTTP_VOUCHER_OP_CONFIRM
               || op == NGX_HTTP_VOUCHER_OP_RELEASE)
    {
        rc = ngx_http_voucher_parse_rollback(&ctx, root, req);

    } else if (op == NGX_HTTP_VOUCHER_OP_WALLET
               || op == NGX_HTTP_VOUCHER_OP_WALLET_SAVE)
    {
        rc = ngx_http_voucher_parse_wallet(&ctx, root, req);

    } else if (op == NGX_HTTP_VOUCHER_OP_QUALIFY) {
        rc = ngx_http_voucher_parse_qualify(&ctx, root, req);

    } else if (op == NGX_HTTP_VOUCHER_OP_EVENT) {
        rc = ngx_http_voucher_parse_event(&ctx, root, req);

    } else if (op >= NGX_HTTP_VOUCHER_OP_LOYALTY_EARN) {
        rc = ngx_http_voucher_parse_loyalty(&ctx, root, req);

    } else {
        rc = ngx_http_voucher_parse_voucher_op(&ctx, root, req);
    }

    ngx_http_voucher_json_end();

    if (rc != 0) {
        ngx_http_voucher_request_init(req, op);
    }

    return rc;
}


int
ngx_http_voucher_check_code(const unsigned char *s, size_t len,
    const ngx_http_voucher_limits_t *lim, ngx_http_voucher_error_t *err)
{
    ngx_http_voucher_limits_t  defaults;

    if (lim == NULL) {
        ngx_http_voucher_limits_init(&defaults);
        lim = &defaults;
    }

    if (s == NULL && len != 0) {
        return ngx_http_voucher_fail(err, NGX_HTTP_VOUCHER_ERR_INTERNAL,
                                     "", "", "no code buffer");
    }

    return ngx_http_voucher_code_rule(s, len, lim, err, "", "code");
}


int
ngx_http_voucher_check_field(const ngx_http_voucher_field_t *f,
    const unsigned char *s, size_t len, const ngx_http_voucher_limits_t *lim,
    int64_t *amount, ngx_http_voucher_error_t *err)
{
    size_t                     i;
    int64_t                    n;
    const char                *name;
    ngx_http_voucher_limits_t  defaults;

    if (lim == NULL) {
        ngx_http_voucher_limits_init(&defaults);
        lim = &defaults;
    }

    name = f->gate ? f->gate : f->name;

    if (f->kind == NGX_HTTP_VOUCHER_FIELD_AMOUNT
        || f->kind == NGX_HTTP_VOUCHER_FIELD_COUNT)
    {
        /* decimal digits, few enough that they cannot overflow */

        n = -1;

        if (len > 0 && len <= 14) {
            for (i = 0, n = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9') {
                    n = -1;
                    break;
                }

                n = n * 10 + (s[i] - '0');
            }
        }

        if (n < 0 || ngx_http_voucher_int_rule(f, n, lim, NULL, "") != 0) {
            goto invalid;
        }

        if (amount) {
            *amount = n;
        }

        return 0;
    }

    if (ngx_http_voucher_str_rule(f, s, len, lim, err, "") == 0) {
        return 0;
    }

    if (f->message == NULL) {
        /* the parser's words, as for a code */
        return -1;
    }

invalid:

    if (f->message == NULL) {
        return ngx_http_voucher_fail(err, NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     "", name, "must be decimal digits "
                                     "within its bounds");
    }

    if (err) {
        /* the field's message as it is, not after the field's name */
        err->reason = NGX_HTTP_VOUCHER_ERR_INVALID_FIELD;
        snprintf(err->field, sizeof(err->field), "%s", name);
        snprintf(err->message, sizeof(err->message), "%s", f->message);
    }

    return -1;
}


int
ngx_http_voucher_key_fold(const unsigned char *key, size_t len,
    const unsigned char *name, size_t nlen)
{
    size_t                          i, j, k, n;
    unsigned char                   c, d;
    const ngx_http_voucher_fold_t  *f;

    if (len == nlen && memcmp(key, name, len) == 0) {
        return NGX_HTTP_VOUCHER_KEY_SAME;
    }

    i = 0;
    j = 0;

    while (i < len) {
        c = key[i];

        if (c < 0x80) {
            if (j == nlen) {
                return NGX_HTTP_VOUCHER_KEY_OTHER;
            }

            d = name[j];

            if (ngx_http_voucher_lower(c) != ngx_http_voucher_lower(d)) {
                return NGX_HTTP_VOUCHER_KEY_OTHER;
            }

            i++;
            j++;
            continue;
        }

        for (f = ngx_http_voucher_folds; f->len; f++) {
            if (len - i >= f->len && memcmp(key + i, f->utf8, f->len) == 0) {
                break;
            }
        }

        if (f->len == 0) {
            return NGX_HTTP_VOUCHER_KEY_OTHER;
        }

        n = strlen(f->ascii);

        if (nlen - j < n) {
            return NGX_HTTP_VOUCHER_KEY_OTHER;
        }

        for (k = 0; k < n; k++) {
            if (ngx_http_voucher_lower(name[j + k]) != f->ascii[k]) {
                return NGX_HTTP_VOUCHER_KEY_OTHER;
            }
        }

        i += f->len;
        j += n;
    }

    return (j == nlen) ? NGX_HTTP_VOUCHER_KEY_VARIANT
                       : NGX_HTTP_VOUCHER_KEY_OTHER;
}


static void
ngx_http_voucher_request_init(ngx_http_voucher_request_t *req, int op)
{
    /* all-bits-zero is {0, NULL} for strings on every platform we target */
    memset(req, 0, sizeof(ngx_http_voucher_request_t));

    req->op = op;
    req->amount = NGX_HTTP_VOUCHER_UNSET;
    req->rollback_amount = NGX_HTTP_VOUCHER_UNSET;
    req->hold_seconds = NGX_HTTP_VOUCHER_UNSET;
    req->count = NGX_HTTP_VOUCHER_UNSET;
    req->points = 0;
    req->timestamp = NGX_HTTP_VOUCHER_UNSET;
}


static int
ngx_http_voucher_parse_voucher_op(ngx_http_voucher_ctx_t *ctx, json_t *root,
    ngx_http_voucher_request_t *req)
{
    int      reserve, stack;
    json_t  *f[NGX_HTTP_VOUCHER_MAX_KEYS];

    reserve = (req->op == NGX_HTTP_VOUCHER_OP_RESERVE);

    if (ngx_http_voucher_check_keys(ctx, root, "",
                                    ngx_http_voucher_voucher_keys,
                                    reserve ? 8 : 7, f)
        != 0)
    {
        return -1;
    }

    /* several codes for one order (a stack), or one */

    stack = (f[NGX_HTTP_VOUCHER_F_CODES] != NULL
             && !json_is_null(f[NGX_HTTP_VOUCHER_F_CODES]));

    if (stack) {
        if (f[NGX_HTTP_VOUCHER_F_CODE] != NULL
            && !json_is_null(f[NGX_HTTP_VOUCHER_F_CODE]))
        {
            return ngx_http_voucher_fail(ctx->err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         "", "codes",
                                         "cannot come with code: send one "
                                         "or the other");
        }

        /* [] is a stack of the automatic promotions alone */

        if (ngx_http_voucher_parse_codes(ctx, f[NGX_HTTP_VOUCHER_F_CODES],
                                         req)
            != 0)
        {
            return -1;
        }

        req->stack = 1;

    } else if (ngx_http_voucher_get_str(ctx, f[NGX_HTTP_VOUCHER_F_CODE], "",
                                        ngx_http_voucher_field(CODE),
                                        NGX_HTTP_VOUCHER_REQUIRED,
                                        &req->code)
               != 0)
    {
        return -1;
    }

    if (ngx_http_voucher_get_str(ctx, f[NGX_HTTP_VOUCHER_F_CUSTOMER], "",
                                 ngx_http_voucher_field(CUSTOMER),
                                 NGX_HTTP_VOUCHER_OPTIONAL, &req->customer)
        != 0)
    {
        return -1;
    }

    if (ngx_http_voucher_get_str(ctx, f[NGX_HTTP_VOUCHER_F_IDEM], "",
                                 ngx_http_voucher_field(IDEMPOTENCY),
                                 NGX_HTTP_VOUCHER_OPTIONAL,
                                 &req->idempotency_key)
        != 0)
    {
        return -1;
    }

    /* loyalty points to pay with */

    if (ngx_http_voucher_get_int(ctx, f[NGX_HTTP_VOUCHER_F_POINTS], "",
                                 ngx_http_voucher_field(POINTS),
                                 NGX_HTTP_VOUCHER_OPTIONAL, &req->points)
        != 0)
    {
        return -1;
    }

    if (reserve
        && ngx_http_voucher_get_int(ctx, f[NGX_HTTP_VOUCHER_F_HOLD], "",
                                    ngx_http_voucher_field(HOLD),
                                    NGX_HTTP_VOUCHER_OPTIONAL,
                                    &req->hold_seconds)
           != 0)
    {
        return -1;
    }

    return ngx_http_voucher_parse_order(ctx, f[NGX_HTTP_VOUCHER_F_ORDER],
                                        req,
                                        stack ? NGX_HTTP_VOUCHER_ORDER_CART
                                              : NGX_HTTP_VOUCHER_ORDER_CODE,
                                        f[NGX_HTTP_VOUCHER_F_ATTRS]);
}


/*
 * qualify: {"customer": "...", "order": {..., "channel": "..."},
 * "codes": [...], "best": true}
 */

static int
ngx_http_voucher_parse_qualify(ngx_http_voucher_ctx_t *ctx, json_t *root,
    ngx_http_voucher_request_t *req)
{
    json_t  *f[NGX_HTTP_VOUCHER_MAX_KEYS], *best;

    if (ngx_http_voucher_check_keys(ctx, root, "",
                                    ngx_http_voucher_qualify_keys, 5, f)
        != 0)
    {
        return -1;
    }

    if (ngx_http_voucher_get_str(ctx, f[NGX_HTTP_VOUCHER_F_Q_CUSTOMER], "",
                                 ngx_http_voucher_field(CUSTOMER),
                                 NGX_HTTP_VOUCHER_OPTIONAL, &req->customer)
        != 0)
    {
        return -1;
    }

    if (ngx_http_voucher_parse_codes(ctx, f[NGX_HTTP_VOUCHER_F_Q_CODES], req)
        != 0)
    {
        return -1;
    }

    best = f[NGX_HTTP_VOUCHER_F_Q_BEST];

    if (best != NULL && !json_is_null(best)) {
        if (!json_is_boolean(best)) {
            return ngx_http_voucher_fail(ctx->err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         "", "best",
                                         "must be true or false, got %s",
                                         ngx_http_voucher_type_name(best));
        }

        req->best = json_is_true(best);
    }

    return ngx_http_voucher_parse_order(ctx, f[NGX_HTTP_VOUCHER_F_Q_ORDER],
                                        req, NGX_HTTP_VOUCHER_ORDER_CART,
                                        f[NGX_HTTP_VOUCHER_F_Q_ATTRS]);
}


/* "codes": [...], each as a code; absent or null: none */

static int
ngx_http_voucher_parse_codes(ngx_http_voucher_ctx_t *ctx, json_t *codes,
    ngx_http_voucher_request_t *req)
{
    char                     path[32];
    size_t                   i, n, len;
    json_t                  *v;
    unsigned char           *p;
    ngx_http_voucher_str_t  *c;

    if (codes == NULL || json_is_null(codes)) {
        return 0;
    }

    if (!json_is_array(codes)) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     "", "codes", "must be an array, got %s",
                                     ngx_http_voucher_type_name(codes));
    }

    n = json_array_size(codes);

    if (n > NGX_HTTP_VOUCHER_MAX_CODES) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     "", "codes",
                                     "must have at most %d entries, got %zu",
                                     NGX_HTTP_VOUCHER_MAX_CODES, n);
    }

    if (n == 0) {
        return 0;
    }

    c = ngx_http_voucher_alloc(ctx, n, sizeof(ngx_http_voucher_str_t),
                               NGX_HTTP_VOUCHER_STR_ALIGN);
    if (c == NULL) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        v = json_array_get(codes, i);

        snprintf(path, sizeof(path), "codes[%zu]", i);

        if (!json_is_string(v)) {
            return ngx_http_voucher_fail(ctx->err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_CODE,
                                         "", path,
                                         "must be a string, got %s",
                                         ngx_http_voucher_type_name(v));
        }

        len = json_string_length(v);

        if (ngx_http_voucher_code_rule(
                (const unsigned char *) json_string_value(v), len, ctx->lim,
                ctx->err, "", path)
            != 0)
        {
            return -1;
        }

        p = ngx_http_voucher_alloc(ctx, 1, len + 1, 1);
        if (p == NULL) {
            return -1;
        }

        memcpy(p, json_string_value(v), len);
        p[len] = '\0';

        c[i].len = len;
        c[i].data = p;
    }

    req->codes = c;
    req->ncodes = n;

    return 0;
}


static int
ngx_http_voucher_parse_order(ngx_http_voucher_ctx_t *ctx, json_t *order,
    ngx_http_voucher_request_t *req, size_t nkeys, json_t *attrs)
{
    size_t          size;
    json_t         *f[NGX_HTTP_VOUCHER_MAX_KEYS];
    int64_t         sum;
    unsigned char  *p;

    if (order == NULL || json_is_null(order)) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_MISSING_FIELD,
                                     "", "order", "is required");
    }

    if (!json_is_object(order)) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     "", "order", "must be an object, got %s",
                                     ngx_http_voucher_type_name(order));
    }

    if (ngx_http_voucher_check_keys(ctx, order, "order",
                                    ngx_http_voucher_order_keys, nkeys, f)
        != 0)
    {
        return -1;
    }

    /*
     * the business data campaign conditions look at: one argument,
     * "m" then "o<name>=<value>" (metadata) and "c<name>=<value>"
     * (attributes) joined by NUL; it is no longer than the two objects'
     * JSON text, so the arena holds it
     */

    size = 1;

    if (nkeys > NGX_HTTP_VOUCHER_F_METADATA
        && (ngx_http_voucher_meta_check(ctx, f[NGX_HTTP_VOUCHER_F_METADATA],
                                        "metadata", &size)
            != 0
            || ngx_http_voucher_meta_check(ctx, attrs, NULL, &size) != 0))
    {
        return -1;
    }

    if (size > 1) {
        p = ngx_http_voucher_alloc(ctx, 1, size, 1);
        if (p == NULL) {
            return -1;
        }

        req->meta.data = p;
        *p++ = 'm';
        p = ngx_http_voucher_meta_add(p, f[NGX_HTTP_VOUCHER_F_METADATA], 'o');
        p = ngx_http_voucher_meta_add(p, attrs, 'c');

        /* the last entry's separator is not sent */
        req->meta.len = p - req->meta.data - 1;
    }

    if (nkeys > NGX_HTTP_VOUCHER_F_CHANNEL
        && ngx_http_voucher_get_str(ctx, f[NGX_HTTP_VOUCHER_F_CHANNEL],
                                    "order", ngx_http_voucher_field(CHANNEL),
                                    NGX_HTTP_VOUCHER_OPTIONAL, &req->channel)
           != 0)
    {
        return -1;
    }

    if (ngx_http_voucher_get_str(ctx, f[NGX_HTTP_VOUCHER_F_ID], "order",
                                 ngx_http_voucher_field(ORDER_ID),
                                 NGX_HTTP_VOUCHER_OPTIONAL, &req->order_id)
        != 0)
    {
        return -1;
    }

    if (ngx_http_voucher_get_int(ctx, f[NGX_HTTP_VOUCHER_F_AMOUNT], "order",
                                 ngx_http_voucher_field(ORDER_AMOUNT),
                                 NGX_HTTP_VOUCHER_OPTIONAL, &req->amount)
        != 0)
    {
        return -1;
    }

    if (ngx_http_voucher_get_str(ctx, f[NGX_HTTP_VOUCHER_F_CURRENCY], "order",
                                 ngx_http_voucher_field(CURRENCY),
                                 NGX_HTTP_VOUCHER_OPTIONAL, &req->currency)
        != 0)
    {
        return -1;
    }

    sum = 0;

    if (ngx_http_voucher_parse_items(ctx, f[NGX_HTTP_VOUCHER_F_ITEMS], req,
                                     &sum)
        != 0)
    {
        return -1;
    }

    if (req->amount == NGX_HTTP_VOUCHER_UNSET) {

        if (req->nitems == 0) {
            return ngx_http_voucher_fail(ctx->err,
                                         NGX_HTTP_VOUCHER_ERR_MISSING_FIELD,
                                         "order", "amount",
                                         "is required when order.items "
                                         "is absent");
        }

        req->amount = sum;
    }

    return 0;
}


/*
 * order.metadata (name "metadata") or customer_attributes (name NULL): an
 * object of at most NGX_HTTP_VOUCHER_MAX_META entries, each named
 * [A-Za-z0-9_]{1,32}, a string of 1 to 64 bytes without control
 * characters or an integer 0..10^13.  Adds the bytes its entries take in
 * the "m..." argument to *size.
 */

static int
ngx_http_voucher_meta_check(ngx_http_voucher_ctx_t *ctx, json_t *obj,
    const char *name, size_t *size)
{
    void         *it;
    size_t        i, n, len;
    json_t       *v;
    const char   *prefix, *key, *s;
    json_int_t    x;

    prefix = name ? "order" : "";
    name = name ? name : "customer_attributes";

    if (obj == NULL || json_is_null(obj)) {
        return 0;
    }

    if (!json_is_object(obj)) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     prefix, name,
                                     "must be an object, got %s",
                                     ngx_http_voucher_type_name(obj));
    }

    if (json_object_size(obj) > NGX_HTTP_VOUCHER_MAX_META) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     prefix, name,
                                     "must have at most %d entries, got %zu",
                                     NGX_HTTP_VOUCHER_MAX_META,
                                     json_object_size(obj));
    }

    for (it = json_object_iter(obj);
         it != NULL;
         it = json_object_iter_next(obj, it))
    {
        key = json_object_iter_key(it);
        v = json_object_iter_value(it);
        n = strlen(key);

        for (i = 0; i < n; i++) {
            if (!((key[i] >= 'a' && key[i] <= 'z')
                  || (key[i] >= 'A' && key[i] <= 'Z')
                  || (key[i] >= '0' && key[i] <= '9') || key[i] == '_'))
            {
                break;
            }
        }

        if (n == 0 || n > NGX_HTTP_VOUCHER_MAX_META_NAME || i < n) {
            return ngx_http_voucher_fail(ctx->err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         prefix, name,
                                         "names are 1 to %d letters, digits "
                                         "or _", NGX_HTTP_VOUCHER_MAX_META_NAME);
        }

        if (json_is_integer(v)) {
            x = json_integer_value(v);

            if (x < 0 || x > NGX_HTTP_VOUCHER_MAX_POINTS) {
                return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     prefix, name,
                                     "%s: an integer must be 0 to 10^13",
                                     key);
            }

            len = ngx_http_voucher_dec(NULL, x);

        } else if (json_is_string(v)) {
            s = json_string_value(v);
            len = json_string_length(v);

            for (i = 0; i < len; i++) {
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
                    break;
                }
            }

            if (len == 0 || len > NGX_HTTP_VOUCHER_MAX_META_VALUE || i < len) {
                return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     prefix, name,
                                     "%s: a string must be 1 to %d bytes, "
                                     "no control characters",
                                     key, NGX_HTTP_VOUCHER_MAX_META_VALUE);
            }

        } else {
            return ngx_http_voucher_fail(ctx->err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         prefix, name,
                                         "%s: must be a string or an "
                                         "integer, got %s", key,
                                         ngx_http_voucher_type_name(v));
        }

        *size += 3 + n + len;
    }

    return 0;
}


/* x >= 0 in decimal at p (when not NULL); its length */

static size_t
ngx_http_voucher_dec(unsigned char *p, json_int_t x)
{
    size_t      n, i;
    json_int_t  y;

    n = 1;

    for (y = x; y >= 10; y /= 10) {
        n++;
    }

    if (p) {
        for (i = n; i > 0; i--) {
            p[i - 1] = (unsigned char) ('0' + x % 10);
            x /= 10;
        }
    }

    return n;
}


static unsigned char *
ngx_http_voucher_meta_add(unsigned char *p, json_t *obj, int scope)
{
    void        *it;
    size_t       n;
    json_t      *v;
    const char  *key;

    if (obj == NULL || !json_is_object(obj)) {
        return p;
    }

    for (it = json_object_iter(obj);
         it != NULL;
         it = json_object_iter_next(obj, it))
    {
        key = json_object_iter_key(it);
        v = json_object_iter_value(it);
        n = strlen(key);

        *p++ = (unsigned char) scope;
        memcpy(p, key, n);
        p += n;
        *p++ = '=';

        if (json_is_integer(v)) {
            p += ngx_http_voucher_dec(p, json_integer_value(v));

        } else {
            memcpy(p, json_string_value(v), json_string_length(v));
            p += json_string_length(v);
        }

        *p++ = '\0';
    }

    return p;
}


static int
ngx_http_voucher_parse_items(ngx_http_voucher_ctx_t *ctx, json_t *items,
    ngx_http_voucher_request_t *req, int64_t *sum)
{
    char                      path[64];
    size_t                    i, n;
    json_t                   *v, *f[NGX_HTTP_VOUCHER_MAX_KEYS];
    int64_t                   max;
    ngx_http_voucher_item_t  *item;

    if (items == NULL || json_is_null(items)) {
        return 0;
    }

    if (!json_is_array(items)) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     "order", "items",
                                     "must be an array, got %s",
                                     ngx_http_voucher_type_name(items));
    }

    n = json_array_size(items);

    /* an empty cart's [] is the same as no items at all */

    if (n == 0) {
        return 0;
    }

    if (n > ctx->lim->max_items) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     "order", "items",
                                     "must have at most %zu entries, got %zu",
                                     ctx->lim->max_items, n);
    }

    item = ngx_http_voucher_alloc(ctx, n, sizeof(ngx_http_voucher_item_t),
                                  NGX_HTTP_VOUCHER_ITEM_ALIGN);
    if (item == NULL) {
        return -1;
    }

    memset(item, 0, n * sizeof(ngx_http_voucher_item_t));

    max = ctx->lim->max_amount;

    for (i = 0; i < n; i++) {
        v = json_array_get(items, i);

        snprintf(path, sizeof(path), "order.items[%zu]", i);

        if (!json_is_object(v)) {
            return ngx_http_voucher_fail(ctx->err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         "", path,
                                         "must be an object, got %s",
                                         ngx_http_voucher_type_name(v));
        }

        if (ngx_http_voucher_check_keys(ctx, v, path,
                                        ngx_http_voucher_item_keys, 4, f)
            != 0)
        {
            return -1;
        }

        if (ngx_http_voucher_get_str(ctx, f[NGX_HTTP_VOUCHER_F_SKU], path,
                                     ngx_http_voucher_field(SKU),
                                     NGX_HTTP_VOUCHER_REQUIRED,
                                     &item[i].sku)
            != 0)
        {
            return -1;
        }

        if (ngx_http_voucher_get_str(ctx, f[NGX_HTTP_VOUCHER_F_CATEGORY], path,
                                     ngx_http_voucher_field(CATEGORY),
                                     NGX_HTTP_VOUCHER_OPTIONAL,
                                     &item[i].category)
            != 0)
        {
            return -1;
        }

        if (ngx_http_voucher_get_int(ctx, f[NGX_HTTP_VOUCHER_F_PRICE], path,
                                     ngx_http_voucher_field(PRICE),
                                     NGX_HTTP_VOUCHER_REQUIRED,
                                     &item[i].price)
            != 0)
        {
            return -1;
        }

        item[i].quantity = 1;

        if (ngx_http_voucher_get_int(ctx, f[NGX_HTTP_VOUCHER_F_QUANTITY], path,
                                     ngx_http_voucher_field(QUANTITY),
                                     NGX_HTTP_VOUCHER_OPTIONAL,
                                     &item[i].quantity)
            != 0)
        {
            return -1;
        }

        /*
         * 0 <= *sum <= max and quantity >= 1, so neither the subtraction
         * nor the division can overflow, and the test is exact:
         * price * quantity <= max - sum  <=>  price <= (max - sum) / qty
         */

        if (item[i].price > (max - *sum) / item[i].quantity) {
            return ngx_http_voucher_fail(ctx->err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         "order", "items",
                                         "total of price x quantity "
                                         "exceeds %" PRId64, max);
        }

        *sum += item[i].price * item[i].quantity;
    }

    req->items = item;
    req->nitems = n;

    return 0;
}


/*
 * rollback, confirm, release: {"redemption_id": "...", "idempotency_key":
 * "..."}, and for a rollback an "amount".
 */

static int
ngx_http_voucher_parse_rollback(ngx_http_voucher_ctx_t *ctx, json_t *root,
    ngx_http_voucher_request_t *req)
{
    int      rollback;
    json_t  *f[NGX_HTTP_VOUCHER_MAX_KEYS];

    rollback = (req->op == NGX_HTTP_VOUCHER_OP_ROLLBACK);

    if (ngx_http_voucher_check_keys(ctx, root, "",
                                    ngx_http_voucher_settle_keys,
                                    rollback ? 3 : 2, f)
        != 0)
    {
        return -1;
    }

    if (ngx_http_voucher_get_str(ctx, f[NGX_HTTP_VOUCHER_F_RID], "",
                                 ngx_http_voucher_field(RID),
                                 NGX_HTTP_VOUCHER_REQUIRED,
                                 &req->redemption_id)
        != 0)
    {
        return -1;
    }

    if (rollback
        && ngx_http_voucher_get_int(ctx, f[NGX_HTTP_VOUCHER_F_RB_AMOUNT], "",
                                    ngx_http_voucher_field(ROLLBACK),
                                    NGX_HTTP_VOUCHER_OPTIONAL,
                                    &req->rollback_amount)
           != 0)
    {
        return -1;
    }

    return ngx_http_voucher_get_str(ctx, f[NGX_HTTP_VOUCHER_F_SETTLE_IDEM], "",
                                    ngx_http_voucher_field(IDEMPOTENCY),
                                    NGX_HTTP_VOUCHER_OPTIONAL,
                                    &req->idempotency_key);
}


/*
 * wallet: {"customer": "...", "cursor": "...", "count": n};
 * wallet_save: {"customer": "...", "code": "..."}.
 */

static int
ngx_http_voucher_parse_wallet(ngx_http_voucher_ctx_t *ctx, json_t *root,
    ngx_http_voucher_request_t *req)
{
    json_t  *f[NGX_HTTP_VOUCHER_MAX_KEYS];

    if (req->op == NGX_HTTP_VOUCHER_OP_WALLET_SAVE) {
        if (ngx_http_voucher_check_keys(ctx, root, "",
                                        ngx_http_voucher_save_keys, 2, f)
            != 0)
        {
            return -1;
        }

        if (ngx_http_voucher_get_str(ctx, f[1], "",
                                     ngx_http_voucher_field(CODE),
                                     NGX_HTTP_VOUCHER_REQUIRED, &req->code)
            != 0)
        {
            return -1;
        }

        return ngx_http_voucher_get_str(ctx, f[0], "",
                                        ngx_http_voucher_field(CUSTOMER),
                                        NGX_HTTP_VOUCHER_REQUIRED,
                                        &req->customer);
    }

    if (ngx_http_voucher_check_keys(ctx, root, "",
                                    ngx_http_voucher_wallet_keys, 3, f)
        != 0)
    {
        return -1;
    }

    if (ngx_http_voucher_get_str(ctx, f[0], "",
                                 ngx_http_voucher_field(CUSTOMER),
                                 NGX_HTTP_VOUCHER_REQUIRED, &req->customer)
        != 0)
    {
        return -1;
    }

    if (ngx_http_voucher_get_str(ctx, f[1], "",
                                 ngx_http_voucher_field(CURSOR),
                                 NGX_HTTP_VOUCHER_OPTIONAL, &req->cursor)
        != 0)
    {
        return -1;
    }

    return ngx_http_voucher_get_int(ctx, f[2], "",
                                    ngx_http_voucher_field(PAGE),
                                    NGX_HTTP_VOUCHER_OPTIONAL, &req->count);
}


/*
 * A loyalty earn: {"customer": "...", "order": {"id": "...", ...}} (the
 * order as a validate's, its id required: one order, one accrual); a
 * balance: {"customer": "..."}; a history: and "limit", "before".  The
 * customer is a member id: no spaces.
 */

static int
ngx_http_voucher_parse_loyalty(ngx_http_voucher_ctx_t *ctx, json_t *root,
    ngx_http_voucher_request_t *req)
{
    int      n;
    json_t  *f[NGX_HTTP_VOUCHER_MAX_KEYS];

    switch (req->op) {

    case NGX_HTTP_VOUCHER_OP_LOYALTY_EARN:
        n = ngx_http_voucher_check_keys(ctx, root, "",
                                        ngx_http_voucher_earn_keys, 2, f);
        break;

    case NGX_HTTP_VOUCHER_OP_LOYALTY_BALANCE:
        n = ngx_http_voucher_check_keys(ctx, root, "",
                                        ngx_http_voucher_earn_keys, 1, f);
        break;

    default: /* NGX_HTTP_VOUCHER_OP_LOYALTY_HISTORY */
        n = ngx_http_voucher_check_keys(ctx, root, "",
                                        ngx_http_voucher_history_keys, 3, f);
        break;
    }

    if (n != 0) {
        return -1;
    }

    if (ngx_http_voucher_get_member(ctx, f[NGX_HTTP_VOUCHER_F_MEMBER],
                                    "is a loyalty member id here: "
                                    "no spaces", &req->customer)
        != 0)
    {
        return -1;
    }

    if (req->op == NGX_HTTP_VOUCHER_OP_LOYALTY_HISTORY) {
        req->limit = 20;

        if (ngx_http_voucher_get_int(ctx, f[NGX_HTTP_VOUCHER_F_LIMIT], "",
                                     ngx_http_voucher_field(LIMIT),
                                     NGX_HTTP_VOUCHER_OPTIONAL, &req->limit)
            != 0)
        {
            return -1;
        }

        return ngx_http_voucher_get_str(ctx, f[NGX_HTTP_VOUCHER_F_BEFORE], "",
                                        ngx_http_voucher_field(BEFORE),
                                        NGX_HTTP_VOUCHER_OPTIONAL,
                                        &req->before);
    }

    if (req->op != NGX_HTTP_VOUCHER_OP_LOYALTY_EARN) {
        return 0;
    }

    if (ngx_http_voucher_parse_order(ctx, f[NGX_HTTP_VOUCHER_F_L_ORDER], req,
                                     NGX_HTTP_VOUCHER_ORDER_EARN, NULL)
        != 0)
    {
        return -1;
    }

    if (req->order_id.len == 0) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_MISSING_FIELD,
                                     "order", "id",
                                     "is required: an order earns once");
    }

    return 0;
}


/*
 * A storefront event: {"id": "...", "type": "...", "customer": "...",
 * "timestamp": N, "order": {...}, "referral_code": "...", "data": {...}}.
 * The id (the event's idempotency key), type and customer are required; a
 * purchase needs its order (as a validate's: amount, or items to sum); a
 * referral code goes with a signup or a purchase, data (the member's
 * fields) with a signup.  What voucherd would ignore is refused here.
 */

static int
ngx_http_voucher_parse_event(ngx_http_voucher_ctx_t *ctx, json_t *root,
    ngx_http_voucher_request_t *req)
{
    int                       purchase, signup;
    size_t                    i;
    json_t                   *f[NGX_HTTP_VOUCHER_MAX_KEYS];
    ngx_http_voucher_field_t  rule;

    if (ngx_http_voucher_check_keys(ctx, root, "",
                                    ngx_http_voucher_event_keys, 7, f)
        != 0)
    {
        return -1;
    }

    if (ngx_http_voucher_get_str(ctx, f[0], "",
                                 ngx_http_voucher_field(EVENT_ID),
                                 NGX_HTTP_VOUCHER_REQUIRED, &req->event_id)
        != 0
        || ngx_http_voucher_get_str(ctx, f[1], "",
                                    ngx_http_voucher_field(EVENT_TYPE),
                                    NGX_HTTP_VOUCHER_REQUIRED,
                                    &req->event_type)
           != 0)
    {
        return -1;
    }

    for (i = 0; ngx_http_voucher_event_reserved[i]; i++) {
        if (strcmp((const char *) req->event_type.data,
                   ngx_http_voucher_event_reserved[i])
            == 0)
        {
            return ngx_http_voucher_fail(ctx->err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         "", "type",
                                         "is a notice of the loyalty "
                                         "programme, not the storefront's");
        }
    }

    if (ngx_http_voucher_get_member(ctx, f[2],
                                    "is a member id here: no spaces",
                                    &req->customer)
        != 0)
    {
        return -1;
    }

    if (ngx_http_voucher_get_int(ctx, f[3], "",
                                 ngx_http_voucher_field(TIMESTAMP),
                                 NGX_HTTP_VOUCHER_OPTIONAL, &req->timestamp)
        != 0)
    {
        return -1;
    }

    purchase = (strcmp((const char *) req->event_type.data, "purchase") == 0);
    signup = (strcmp((const char *) req->event_type.data, "signup") == 0);

    if (purchase) {
        if (ngx_http_voucher_parse_order(ctx, f[4], req,
                                         NGX_HTTP_VOUCHER_ORDER_EARN, NULL)
            != 0)
        {
            return -1;
        }

    } else if (f[4] != NULL && !json_is_null(f[4])) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     "", "order",
                                     "goes with a purchase only");
    }

    if (f[5] != NULL && !json_is_null(f[5]) && !purchase && !signup) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     "", "referral_code",
                                     "goes with a signup or a purchase only");
    }

    rule = *ngx_http_voucher_field(CODE);
    rule.name = "referral_code";

    if (ngx_http_voucher_get_str(ctx, f[5], "", &rule,
                                 NGX_HTTP_VOUCHER_OPTIONAL,
                                 &req->referral_code)
        != 0)
    {
        return -1;
    }

    if (f[6] == NULL || json_is_null(f[6])) {
        return 0;
    }

    if (!signup) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     "", "data", "goes with a signup only");
    }

    if (!json_is_object(f[6])) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     "", "data", "must be an object, got %s",
                                     ngx_http_voucher_type_name(f[6]));
    }

    if (ngx_http_voucher_check_keys(ctx, f[6], "data",
                                    ngx_http_voucher_event_attrs,
                                    NGX_HTTP_VOUCHER_EVENT_ATTRS, f)
        != 0)
    {
        return -1;
    }

    rule = *ngx_http_voucher_field(ATTR);

    for (i = 0; i < NGX_HTTP_VOUCHER_EVENT_ATTRS; i++) {
        rule.name = ngx_http_voucher_event_attrs[i];

        if (ngx_http_voucher_get_str(ctx, f[i], "data", &rule,
                                     NGX_HTTP_VOUCHER_OPTIONAL,
                                     &req->attrs[i])
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


/*
 * Every key of obj must be one of the first n of keys; vals[i] is then
 * the value of keys[i], or NULL when it is absent.  Duplicate keys were
 * rejected when loading, so each is found once.
 */

static int
ngx_http_voucher_check_keys(ngx_http_voucher_ctx_t *ctx, json_t *obj,
    const char *prefix, const char *const *keys, size_t n, json_t **vals)
{
    void        *it;
    size_t       i;
    const char  *key;

    for (i = 0; i < n; i++) {
        vals[i] = NULL;
    }

    /* jansson iterates in insertion order, so the first one is reported */

    for (it = json_object_iter(obj);
         it != NULL;
         it = json_object_iter_next(obj, it))
    {
        key = json_object_iter_key(it);

        for (i = 0; i < n; i++) {
            if (strcmp(key, keys[i]) == 0) {
                vals[i] = json_object_iter_value(it);
                break;
            }
        }

        if (i == n) {
            return ngx_http_voucher_fail(ctx->err,
                                         NGX_HTTP_VOUCHER_ERR_UNKNOWN_FIELD,
                                         prefix,
                                         key[0] != '\0' ? key : "(empty)",
                                         "is not a known field");
        }
    }

    return 0;
}


/* a required customer that is a member id: no spaces (why says so) */

static int
ngx_http_voucher_get_member(ngx_http_voucher_ctx_t *ctx, json_t *v,
    const char *why, ngx_http_voucher_str_t *out)
{
    if (ngx_http_voucher_get_str(ctx, v, "", ngx_http_voucher_field(CUSTOMER),
                                 NGX_HTTP_VOUCHER_REQUIRED, out)
        != 0)
    {
        return -1;
    }

    if (memchr(out->data, ' ', out->len)) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     "", "customer", "%s", why);
    }

    return 0;
}


/* v is the field's value, NULL if absent */

static int
ngx_http_voucher_get_str(ngx_http_voucher_ctx_t *ctx, json_t *v,
    const char *prefix, const ngx_http_voucher_field_t *f, int required,
    ngx_http_voucher_str_t *out)
{
    size_t                len;
    unsigned char        *p;
    const unsigned char  *s;

    if (v == NULL || json_is_null(v)) {
        if (required) {
            return ngx_http_voucher_fail(ctx->err,
                                         NGX_HTTP_VOUCHER_ERR_MISSING_FIELD,
                                         prefix, f->name, "is required");
        }

        return 0;
    }

    if (!json_is_string(v)) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     prefix, f->name,
                                     "must be a string, got %s",
                                     ngx_http_voucher_type_name(v));
    }

    s = (const unsigned char *) json_string_value(v);
    len = json_string_length(v);

    if (ngx_http_voucher_str_rule(f, s, len, ctx->lim, ctx->err, prefix)
        != 0)
    {
        return -1;
    }

    p = ngx_http_voucher_alloc(ctx, 1, len + 1, 1);
    if (p == NULL) {
        return -1;
    }

    memcpy(p, s, len);
    p[len] = '\0';

    out->len = len;
    out->data = p;

    return 0;
}


/* the rule of a string field; the messages say which part s breaks */

static int
ngx_http_voucher_str_rule(const ngx_http_voucher_field_t *f,
    const unsigned char *s, size_t len, const ngx_http_voucher_limits_t *lim,
    ngx_http_voucher_error_t *err, const char *prefix)
{
    size_t         i, max;
    unsigned char  c;

    switch (f->kind) {

    case NGX_HTTP_VOUCHER_FIELD_CODE:
        return ngx_http_voucher_code_rule(s, len, lim, err, prefix, f->name);

    case NGX_HTTP_VOUCHER_FIELD_CURRENCY:
        if (len != 3
            || s[0] < 'A' || s[0] > 'Z'
            || s[1] < 'A' || s[1] > 'Z'
            || s[2] < 'A' || s[2] > 'Z')
        {
            return ngx_http_voucher_fail(err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         prefix, f->name,
                                         "must be 3 upper case letters A-Z");
        }

        return 0;

    case NGX_HTTP_VOUCHER_FIELD_RID:
        max = NGX_HTTP_VOUCHER_MAX_REDEMPTION_ID_LEN;

        for (i = 0; i < len; i++) {
            if ((s[i] < '0' || s[i] > '9') && s[i] != '-') {
                break;
            }
        }

        if (len == 0 || len > max || i != len) {
            return ngx_http_voucher_fail(err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         prefix, f->name,
                                         "must be 1 to %zu characters "
                                         "of 0-9 and -", max);
        }

        return 0;

    case NGX_HTTP_VOUCHER_FIELD_CURSOR:
        if (!ngx_http_voucher_cursor_ok(s, len)) {
            return ngx_http_voucher_fail(err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         prefix, f->name,
                                         "must be 0 or the next_cursor of "
                                         "a page");
        }

        return 0;

    case NGX_HTTP_VOUCHER_FIELD_NAME:
        for (i = 0; i < len; i++) {
            c = s[i];

            if (!((c >= 'a' && c <= 'z')
                  || (i > 0 && ((c >= '0' && c <= '9') || c == '_'))))
            {
                break;
            }
        }

        if (len == 0 || len > (size_t) f->max || i != len) {
            return ngx_http_voucher_fail(err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         prefix, f->name,
                                         "must be 1 to %d characters of "
                                         "a-z, 0-9 and _, starting with "
                                         "a letter", (int) f->max);
        }

        return 0;

    default: /* NGX_HTTP_VOUCHER_FIELD_TEXT, NGX_HTTP_VOUCHER_FIELD_TOKEN */
        max = f->max ? (size_t) f->max : lim->max_str_len;

        if (len == 0) {
            return ngx_http_voucher_fail(err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         prefix, f->name,
                                         "must not be empty");
        }

        if (len > max) {
            return ngx_http_voucher_fail(err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         prefix, f->name,
                                         "must be at most %zu bytes long",
                                         max);
        }

        for (i = 0; i < len; i++) {
            c = s[i];

            if (c < 0x20 || c == 0x7f
                || (f->kind == NGX_HTTP_VOUCHER_FIELD_TOKEN
                    && (c == 0x20 || c > 0x7e)))
            {
                break;
            }
        }

        if (i != len) {
            return ngx_http_voucher_fail(err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                         prefix, f->name,
                                         f->kind == NGX_HTTP_VOUCHER_FIELD_TOKEN
                                         ? "must be printable ASCII "
                                           "without spaces"
                                         : "must not contain control "
                                           "characters");
        }

        return 0;
    }
}


/* "0", or the next_cursor a wallet page answered: decimal digits */

static int
ngx_http_voucher_cursor_ok(const unsigned char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_VOUCHER_MAX_CURSOR_LEN
        || (len > 1 && s[0] == '0'))
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }

    return 1;
}


static int
ngx_http_voucher_get_int(ngx_http_voucher_ctx_t *ctx, json_t *v,
    const char *prefix, const ngx_http_voucher_field_t *f, int required,
    int64_t *out)
{
    json_int_t  n;

    if (v == NULL || json_is_null(v)) {
        if (required) {
            return ngx_http_voucher_fail(ctx->err,
                                         NGX_HTTP_VOUCHER_ERR_MISSING_FIELD,
                                         prefix, f->name, "is required");
        }

        return 0;
    }

    /* 1.0, 1e3 are reals, true is not a number: all rejected */

    if (!json_is_integer(v)) {
        return ngx_http_voucher_fail(ctx->err,
                                     NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     prefix, f->name,
                                     "must be an integer, got %s",
                                     ngx_http_voucher_type_name(v));
    }

    n = json_integer_value(v);

    if (ngx_http_voucher_int_rule(f, (int64_t) n, ctx->lim, ctx->err, prefix)
        != 0)
    {
        return -1;
    }

    *out = (int64_t) n;

    return 0;
}


/* an AMOUNT is 0..max_amount, a COUNT within the field's bounds */

static int
ngx_http_voucher_int_rule(const ngx_http_voucher_field_t *f, int64_t n,
    const ngx_http_voucher_limits_t *lim, ngx_http_voucher_error_t *err,
    const char *prefix)
{
    int64_t  min, max;

    if (f->kind == NGX_HTTP_VOUCHER_FIELD_AMOUNT) {
        min = 0;
        max = lim->max_amount;

    } else {
        min = f->min;
        max = f->max;
    }

    if (n < min || n > max) {
        return ngx_http_voucher_fail(err, NGX_HTTP_VOUCHER_ERR_INVALID_FIELD,
                                     prefix, f->name,
                                     "must be from %" PRId64 " to %" PRId64,
                                     min, max);
    }

    return 0;
}


static int
ngx_http_voucher_code_rule(const unsigned char *s, size_t len,
    const ngx_http_voucher_limits_t *lim, ngx_http_voucher_error_t *err,
    const char *prefix, const char *name)
{
    size_t  i;

    if (len == 0) {
        return ngx_http_voucher_fail(err, NGX_HTTP_VOUCHER_ERR_INVALID_CODE,
                                     prefix, name, "must not be empty");
    }

    if (len > lim->max_code_len) {
        return ngx_http_voucher_fail(err, NGX_HTTP_VOUCHER_ERR_INVALID_CODE,
                                     prefix, name,
                                     "must be at most %zu characters long",
                                     lim->max_code_len);
    }

    for (i = 0; i < len; i++) {
        /* spaces are what people type; normalisation drops them */
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return ngx_http_voucher_fail(err,
                                         NGX_HTTP_VOUCHER_ERR_INVALID_CODE,
                                         prefix, name,
                                         "must be printable ASCII");
        }
    }

    return 0;
}


/*
 * jansson's alloc functions are process-global: ours are set for the
 * parse only, which never calls out, and what jansson had is restored
 * after it.  Blocks past the static one come from what jansson had, so
 * a failing allocator there still makes the parse fail cleanly.
 */

static void
ngx_http_voucher_json_begin(size_t len)
{
    uintptr_t                       p, last;
    ngx_http_voucher_json_arena_t  *a;

    a = &ngx_http_voucher_json_arena;

    json_get_alloc_funcs(&a->malloc_fn, &a->free_fn);

    p = (uintptr_t) ngx_http_voucher_json_static.data;
    last = p + NGX_HTTP_VOUCHER_JSON_STATIC;

    p = (p + NGX_HTTP_VOUCHER_JSON_ALIGN - 1)
        & ~(uintptr_t) (NGX_HTTP_VOUCHER_JSON_ALIGN - 1);
    last &= ~(uintptr_t) (NGX_HTTP_VOUCHER_JSON_ALIGN - 1);

    a->pos = (unsigned char *) p;
    a->last = (unsigned char *) last;
    a->blocks = NULL;

    ngx_http_voucher_json_poison(a->pos, a->last - a->pos);

    /* a tree takes about 12 bytes per byte of body: one block, mostly */

    a->next = NGX_HTTP_VOUCHER_JSON_BLOCK;

    if (len < SIZE_MAX / 16 && a->next < len * 16) {
        a->next = len * 16;
    }

    json_set_alloc_funcs(ngx_http_voucher_json_alloc,
                         ngx_http_voucher_json_free);
}


static void
ngx_http_voucher_json_end(void)
{
    ngx_http_voucher_json_block_t  *b;
    ngx_http_voucher_json_arena_t  *a;

    a = &ngx_http_voucher_json_arena;

    json_set_alloc_funcs(a->malloc_fn, a->free_fn);

    while (a->blocks) {
        b = a->blocks;
        a->blocks = b->next;
        ngx_http_voucher_json_unpoison(b, b->size);
        a->free_fn(b);
    }

    /* under ASan, a node used after this is an error */

    ngx_http_voucher_json_poison(ngx_http_voucher_json_static.data,
                                 NGX_HTTP_VOUCHER_JSON_STATIC);

    a->pos = NULL;
    a->last = NULL;
}


static void *
ngx_http_voucher_json_alloc(size_t size)
{
    size_t                          left;
    unsigned char                  *p;
    ngx_http_voucher_json_arena_t  *a;

    a = &ngx_http_voucher_json_arena;

    /*
     * pos and last are aligned, so is what is left: if size fits, so does
     * size rounded up for the next one's alignment
     */

    left = a->last - a->pos;

    if (size > left || size + NGX_HTTP_VOUCHER_JSON_GAP > left) {
        return ngx_http_voucher_json_grow(size);
    }

    p = a->pos;
    a->pos += ((size + NGX_HTTP_VOUCHER_JSON_ALIGN - 1)
               & ~(size_t) (NGX_HTTP_VOUCHER_JSON_ALIGN - 1))
              + NGX_HTTP_VOUCHER_JSON_GAP;

    ngx_http_voucher_json_unpoison(p, size);

    return p;
}


static void *
ngx_http_voucher_json_grow(size_t size)
{
    size_t                          n, hdr;
    ngx_http_voucher_json_block_t  *b;
    ngx_http_voucher_json_arena_t  *a;

    a = &ngx_http_voucher_json_arena;

    hdr = (sizeof(ngx_http_voucher_json_block_t)
           + NGX_HTTP_VOUCHER_JSON_ALIGN - 1)
          & ~(size_t) (NGX_HTTP_VOUCHER_JSON_ALIGN - 1);

    if (size > SIZE_MAX - hdr - NGX_HTTP_VOUCHER_JSON_ALIGN
               - NGX_HTTP_VOUCHER_JSON_GAP)
    {
        return NULL;
    }

    n = hdr + ((size + NGX_HTTP_VOUCHER_JSON_ALIGN - 1)
               & ~(size_t) (NGX_HTTP_VOUCHER_JSON_ALIGN - 1))
        + NGX_HTTP_VOUCHER_JSON_GAP;

    if (n < a->next) {
        n = a->next;
    }

    /* what jansson had: it may fail, and jansson copes with NULL */

    b = a->malloc_fn(n);
    if (b == NULL) {
        return NULL;
    }

    b->next = a->blocks;
    b->size = n;
    a->blocks = b;

    if (a->next <= SIZE_MAX / 2) {
        a->next *= 2;
    }

    /* the rest of the current block is left unused */

    a->pos = (unsigned char *) b + hdr;
    a->last = (unsigned char *) b + n;

    ngx_http_voucher_json_poison(a->pos, a->last - a->pos);

    return ngx_http_voucher_json_alloc(size);
}


static void
ngx_http_voucher_json_free(void *p)
{
    /* the whole arena goes at once, in ngx_http_voucher_json_end() */
    (void) p;
}


/*
 * n objects of size bytes each, aligned to align (a power of two);
 * NULL and an internal_error if the arena is too small.
 */

static void *
ngx_http_voucher_alloc(ngx_http_voucher_ctx_t *ctx, size_t n, size_t size,
    size_t align)
{
    size_t          pad, left;
    unsigned char  *p;

    if (ctx->arena == NULL) {
        goto failed;
    }

    pad = (size_t) ((uintptr_t) (ctx->arena + ctx->used) & (align - 1));
    pad = pad ? align - pad : 0;

    left = ctx->size - ctx->used;

    if (pad > left || size == 0 || n > (left - pad) / size) {
        goto failed;
    }

    p = ctx->arena + ctx->used + pad;
    ctx->used += pad + n * size;

    return p;

failed:

    ngx_http_voucher_fail(ctx->err, NGX_HTTP_VOUCHER_ERR_INTERNAL, "", "",
                          "parser arena of %zu bytes is too small",
                          ctx->size);

    return NULL;
}


/*
 * Sets err and returns -1.  The field is prefix.name, the message is the
 * field followed by the formatted rule.  Both are forced to printable ASCII
 * without quotes and backslashes since keys come from the client.
 */

static int
ngx_http_voucher_fail(ngx_http_voucher_error_t *err, const char *reason,
    const char *prefix, const char *name, const char *fmt, ...)
{
    char                    text[sizeof(err->message)];
    va_list                 args;
    ngx_http_voucher_buf_t  b;

    if (err == NULL) {
        return -1;
    }

    err->reason = reason;

    b.data = err->field;
    b.size = sizeof(err->field);
    b.len = 0;
    b.truncated = 0;

    ngx_http_voucher_buf_add(&b, prefix);

    if (prefix[0] != '\0' && name[0] != '\0') {
        ngx_http_voucher_buf_add(&b, ".");
    }

    ngx_http_voucher_buf_add(&b, name);
    ngx_http_voucher_buf_done(&b);

    va_start(args, fmt);
    vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);

    b.data = err->message;
    b.size = sizeof(err->message);
    b.len = 0;
    b.truncated = 0;

    if (err->field[0] != '\0') {
        ngx_http_voucher_buf_add(&b, err->field);
        ngx_http_voucher_buf_add(&b, " ");
    }

    ngx_http_voucher_buf_add(&b, text);
    ngx_http_voucher_buf_done(&b);

    return -1;
}


static void
ngx_http_voucher_buf_add(ngx_http_voucher_buf_t *b, const char *s)
{
    unsigned char  c;

    for ( /* void */ ; *s != '\0'; s++) {

        if (b->len + 1 >= b->size) {
            b->truncated = 1;
            return;
        }

        c = (unsigned char) *s;

        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
            c = '?';
        }

        b->data[b->len++] = (char) c;
    }
}


static void
ngx_http_voucher_buf_done(ngx_http_voucher_buf_t *b)
{
    b->data[b->len] = '\0';

    if (b->truncated && b->len >= 3) {
        memcpy(b->data + b->len - 3, "...", 3);
    }
}


static const char *
ngx_http_voucher_type_name(const json_t *v)
{
    switch (json_typeof(v)) {

    case JSON_OBJECT:
        return "object";

    case JSON_ARRAY:
        return "array";

    case JSON_STRING:
        return "string";

    case JSON_INTEGER:
        return "integer";

    case JSON_REAL:
        return "real number";

    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";

    default: /* JSON_NULL */
        return "null";
    }
}


static const char *
ngx_http_voucher_json_error(const json_error_t *jerr)
{
    switch (json_error_code(jerr)) {

    case json_error_stack_overflow:
        return "nesting too deep";

    case json_error_invalid_utf8:
        return "invalid UTF-8";

    case json_error_premature_end_of_input:
        return "unexpected end of input";

    case json_error_end_of_input_expected:
        return "data after the end of the value";

    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "NUL character in a string";

    case json_error_duplicate_key:
        return "duplicate object key";

    case json_error_numeric_overflow:
        return "number out of range";

    default:
        return "syntax error";
    }
}
