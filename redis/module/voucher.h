
/*
 * Copyright (C) ngx_voucher authors
 *
 * voucher.so: the hot path of the function library (redis/lib/) as
 * native Redis commands.  Each VOUCHER.<NAME> takes the key and arguments
 * of "FCALL voucher_<name> 1 <key> ..." and answers the same bytes, writes
 * the same keys and replicates its writes as their effects.  The library
 * is the specification; what this module does not do itself it hands to
 * the library, in the same call (see vn_delegate()).
 */


#ifndef _VOUCHER_H_INCLUDED_
#define _VOUCHER_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "redismodule.h"


#define VN_OK          0
#define VN_ERROR      -1
#define VN_DELEGATE   -2      /* the library answers this call */

/*
 * the name a call is handed to the library by: the function of this
 * module's own version (voucher_redeem_<VN_LIB_VERSION>), which exists
 * whichever version's library is the primary "voucher"
 */
#define VN_FN(name)    name "_" VN_LIB_VERSION

#define VN_MAXINT      9007199254740991.0      /* 2^53 - 1 */
#define VN_IDEM_TTL    86400
#define VN_FP_RAW      96     /* longer fingerprints are SHA-1s */


typedef RedisModuleString  vn_rstr_t;


/* bytes we do not own */
typedef struct {
    const char  *data;
    size_t       len;
} vn_buf_t;


/* a Lua value as the library sees it */
#define VN_NIL     0          /* nil, or false */
#define VN_NUM     1
#define VN_STR     2
#define VN_ARR     3          /* a record's nested array */
#define VN_TRUE    4

typedef struct vn_val_s  vn_val_t;

struct vn_val_s {
    int          type;
    double       num;
    const char  *str;
    size_t       len;         /* a string's bytes, an array's elements */
    vn_val_t    *elts;        /* an array's elements */
};


/* one call of a command */
typedef struct {
    RedisModuleCtx   *ctx;
    vn_rstr_t       **argv;       /* argv[1] is the key, args[i] argv[i+1] */
    int               argc;
    int               off;        /* arguments before the library's args */
    const char       *fn;         /* the library function it stands for */
    vn_buf_t          tag;        /* "{NS}" */
    vn_buf_t          code;
    long long         now_us;     /* Redis' clock, read once; -1: not yet */
} vn_call_t;


/* the values of an "ok" of validate, redeem or reserve (ok_reply()) */
typedef struct {
    vn_buf_t     code;
    vn_buf_t     camp;
    vn_buf_t     cust;
    vn_buf_t     kind;
    vn_buf_t     capped_by;       /* data NULL: none */
    vn_buf_t     id;              /* data NULL: none */
    double       d;
    double       value;
    double       base;
    double       cap;
    double       amount;
    double       uses_left;
    double       bal;
    double       stop;
    double       hold_s;
    unsigned     has_value:1;
    unsigned     has_uses:1;
    unsigned     has_bal:1;
    unsigned     has_stop:1;
    unsigned     has_hold:1;
    unsigned     replay:1;
} vn_ok_t;


/* an answer, built before it is sent (limits add to it) */
#define VN_R_OK      1        /* ok_reply() */
#define VN_R_FAIL    2        /* {reason, k, v, ...} */
#define VN_R_ERROR   3
#define VN_R_WHOLE   4        /* a whole answer replayed from a record */

typedef struct {
    const char  *k;
    vn_val_t     v;
} vn_pair_t;

typedef struct {
    int          type;
    const char  *reason;          /* FAIL: the reason; ERROR: the text */
    vn_pair_t    pairs[8];
    int          npairs;
    unsigned     stopped:1;       /* a nil value ended the pairs */
    vn_ok_t      ok;
    vn_val_t    *whole;
    const char  *limit_status;    /* the "_limit" pair, or NULL */
    vn_buf_t     limit_name;
} vn_result_t;


/* the code as code_read() gives it: k s m u c b f t */
typedef struct {
    vn_rstr_t       *f[8];
    vn_rstr_t       *bkey;            /* compact: its bucket */
    RedisModuleKey  *key;             /* the hash, or the bucket */
} vn_code_t;


/* a record being packed (cmsgpack's bytes) */
typedef struct {
    char        *buf;
    size_t       len;
    size_t       size;
    char         stack[512];
} vn_pack_t;


/* the campaign's fields: its rules, then its counters */
#define VN_CAMP_RULES     23
#define VN_CAMP_REDEEMED  23
#define VN_CAMP_GIVEN     24
#define VN_CAMP_F         25

/* the loyalty programme's fields read here, {NS}:lp */
#define VN_LP_STATUS      0
#define VN_LP_VALUE       1
#define VN_LP_TIERS       2
#define VN_LP_F           3


/* the loyalty programme as validate reads it (L.prog()) */
typedef struct {
    vn_rstr_t   *f[VN_LP_F];
    double       point_value;
    unsigned     has:1;           /* a programme: it has a status */
} vn_lp_t;


/* points paying at checkout (L.pay()) */
typedef struct {
    double       used;
    double       value;
    double       active;
    double       left;            /* the order after the discount */
} vn_points_t;


/* the strings made once at load */
typedef struct {
    vn_rstr_t   *code_f[8];           /* k s m u c b f t */
    vn_rstr_t   *camp_f[VN_CAMP_F];   /* CAMPAIGN_FIELDS, rules first */
    vn_rstr_t   *lp_f[VN_LP_F];       /* status point_value tiers */
    vn_rstr_t   *lm_tier;             /* a member's "tier" */
    vn_rstr_t   *lm_act;              /* a member's active points */
    vn_rstr_t   *rev;
    vn_rstr_t   *stream_maxlen;
    vn_rstr_t   *idem_ttl;
    vn_rstr_t   *log_f[11];           /* the stream entry's fields */
    vn_rstr_t   *empty;
    vn_rstr_t   *redeem;
    vn_rstr_t   *hold;
    vn_rstr_t   *confirm;
    vn_rstr_t   *release;
    vn_rstr_t   *rollback;
    vn_rstr_t   *rb_f[3];             /* amt done why */
} vn_consts_t;

extern vn_consts_t  vn_c;


/* voucher.c */
void vn_call_init(vn_call_t *call, RedisModuleCtx *ctx, vn_rstr_t **argv,
    int argc, const char *fn);
int vn_delegate(vn_call_t *call);
int vn_tag_of(vn_call_t *call, const char *suffix, int code);
long long vn_now_us(vn_call_t *call);
long long vn_now_ms(vn_call_t *call);
double vn_now_s(vn_call_t *call);
void vn_touched(vn_call_t *call, int type, const char *event, vn_rstr_t *key);
int vn_check_type(RedisModuleKey *key, int type);

/* voucher_util.c */
const char *vn_arg(vn_call_t *call, int i, size_t *len);
int vn_nargs(vn_call_t *call);
int vn_uint(const char *p, size_t n, double *out);
int vn_hold_ms(const char *p, size_t n, double *out);
int vn_tonumber(const char *p, size_t n, double *out);
int vn_tonumber_base(const char *p, size_t n, int base, double *out);
int vn_str_num(vn_rstr_t *s, double *out);
long long vn_lua_int(double d);
size_t vn_fmt_dec(char *buf, double d);
size_t vn_fmt_17g(char *buf, double d);
size_t vn_fmt_14g(char *buf, double d);
vn_rstr_t *vn_dec(vn_call_t *call, double d);
vn_rstr_t *vn_num17(vn_call_t *call, double d);
vn_rstr_t *vn_key(vn_call_t *call, const char *mid, const char *tail,
    size_t len);
vn_rstr_t *vn_cat(vn_call_t *call, const char *a, size_t alen,
    const char *b, size_t blen);
vn_rstr_t *vn_cat3(vn_call_t *call, const char *a, size_t alen,
    const char *b, size_t blen, const char *c, size_t clen);
int vn_eq(vn_rstr_t *s, const char *p, size_t n);
int vn_eqc(vn_rstr_t *s, const char *cstr);
vn_buf_t vn_buf(vn_rstr_t *s);
int vn_listed(vn_rstr_t *list, const char *x, size_t n);
int vn_first_tier(const char *s, size_t len, vn_buf_t *name);
void vn_sha1hex(const char *p, size_t n, char out[41]);
int vn_reply_num(RedisModuleCtx *ctx, double d);
long vn_reply_ok(RedisModuleCtx *ctx, vn_ok_t *o);
long vn_ok_len(vn_ok_t *o);
int vn_reply_val(RedisModuleCtx *ctx, vn_val_t *v);
int vn_reply_result(RedisModuleCtx *ctx, vn_result_t *r);
int vn_error(vn_result_t *r, const char *text);
void vn_pair(vn_result_t *r, const char *k, vn_val_t *v);
void vn_pair_buf(vn_result_t *r, const char *k, const char *p, size_t n);
void vn_pair_num(vn_result_t *r, const char *k, double d);
vn_val_t vn_vnum(double d);
vn_val_t vn_vbuf(const char *p, size_t n);
vn_val_t vn_vstr(vn_rstr_t *s);

/* voucher_msgpack.c */
void vn_pack_init(vn_pack_t *p);
void vn_pack_free(vn_pack_t *p);
int vn_pack_str(vn_pack_t *p, const char *s, size_t n);
int vn_pack_num(vn_pack_t *p, double d);
int vn_pack_false(vn_pack_t *p);
int vn_pack_array(vn_pack_t *p, size_t n);
int vn_unpack(const char *p, size_t n, vn_val_t *out, int max,
    vn_val_t *pool, int npool);

/* voucher_eval.c */
int vn_cmd_validate(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc);
int vn_cmd_validate_limited(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc);
int vn_cmd_redeem(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc);
int vn_cmd_guess(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc);
int vn_settings(vn_call_t *call, double *maxlen, double *ttl);
int vn_code_read(vn_call_t *call, vn_rstr_t *ckey, vn_code_t *c, int mode);
int vn_xadd(vn_call_t *call, double maxlen, vn_rstr_t **fv, char *id,
    size_t *idlen);
int vn_sweep_due(vn_call_t *call);
int vn_evaluate(vn_call_t *call, vn_result_t *r, int redeem, int read_only,
    double hold_ms);
void vn_eval_init(void);
void vn_eval_free(void);

/* voucher_hold.c */
int vn_cmd_reserve(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc);
int vn_cmd_confirm(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc);
int vn_cmd_release(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc);
int vn_cmd_rollback(RedisModuleCtx *ctx, vn_rstr_t **argv, int argc);
int vn_hold_check(vn_call_t *call, double n);
void vn_hold_add(vn_call_t *call, double deadline, const char *id,
    size_t idlen, RedisModuleKey *uk, vn_rstr_t *ukey, vn_rstr_t *ufk,
    vn_rstr_t *vk, vn_rstr_t *ufc, vn_rstr_t *vc);

/* voucher_limit.c */
int vn_limits_safe(vn_call_t *call, int from);
int vn_limits_apply(vn_call_t *call, vn_result_t *r, int from,
    const char **status, vn_buf_t *name);
void vn_lockout_count(vn_call_t *call, int from);
int vn_is_guess(const char *reason, size_t len);

/* voucher_loyalty.c */
int vn_in_tiers(vn_call_t *call, vn_rstr_t *list, vn_buf_t *cust, int *in);
int vn_points(vn_call_t *call, vn_buf_t *cust, double pts, double left,
    vn_points_t *out, const char **why);
void vn_points_pairs(vn_result_t *r, vn_points_t *p);


#endif /* _VOUCHER_H_INCLUDED_ */
