#!lua name=voucher
--
-- ngx_voucher: every state change of vouchers happens in this library.
--
-- Keys of one call all share the hash tag "{NS}" taken from KEYS[1]:
--   {NS}:k:<campaign>  {NS}:c:<code>  {NS}:u:<customer>  {NS}:log
--   {NS}:rb:<redemption id>  {NS}:i:r:<idem>  {NS}:i:b:<idem>  {NS}:cfg
--
-- Hot-path replies are flat arrays {reason, k1, v1, ...}.  Money is integer
-- minor units.  Lua numbers are doubles: every integer accepted here is at
-- most 2^53 - 1 and every intermediate stays exact (sums are clamped).
-- Numbers handed to redis.call are formatted by Redis with "%.17g", which is
-- exact for integers below 2^53; Lua's own tostring ("%.14g") is not, so
-- large numbers are never concatenated into strings.

local VERSION = '__VOUCHER_LIB_VERSION__'

-- The library "voucher" (PRIMARY) registers every function twice: by its
-- name, for the worker, the admin tools and the native module, and by its
-- name and VERSION ("voucher_redeem_<VERSION>"), which nginx calls.  A
-- library "voucher_<VERSION>" (scripts/gen-lua sets PRIMARY false in its
-- copy) registers only the second names, so that nginx of another version
-- loads its own beside the primary during a rolling upgrade: function
-- names are global across libraries in Redis, library names are not.
local PRIMARY = true

-- Redis 7.0 loads a library in a bare environment (no redis.call, string,
-- math, ... yet), so builtins are looked up at call time, not aliased here.

local MAXINT = 9007199254740991          -- 2^53 - 1
local IDEM_TTL = 86400

local function bad_args() return redis.error_reply('ERR bad_args') end
local function bad_key() return redis.error_reply('ERR bad_key') end

-- an integer as Redis arguments want it: Redis 7.0 turns a Lua number
-- into text with "%.17g", several times dearer than "%d".  Lua's "%d" is
-- a C long, which a 32-bit Redis cannot hold our microsecond and
-- millisecond times in; there "%.0f" (exact below 2^53) is used instead.
local DEC
local function dec(n)
    local f = DEC
    if not f then
        f = string.format('%d', 2 ^ 40) == '1099511627776' and '%d' or '%.0f'
        DEC = f
    end
    return string.format(f, n)
end

-- a non-negative integer written in plain decimal digits, or nil
local function uint(s)
    if s and string.find(s, '^%d+$') then
        local n = tonumber(s)
        if n <= MAXINT then return n end
    end
end

-- A request's fingerprint: the request itself when short, else its SHA-1
-- (hashing costs about what the GET of the record does).  A raw
-- fingerprint always holds a NUL, so it never equals a SHA-1's 40 hex
-- digits.
local function fingerprint(s)
    if #s <= 96 then return s end
    return redis.sha1hex(s)
end

local ok_reply

-- A record is cmsgpack {fingerprint, reply}, or, for a redeem or reserve,
-- the fingerprint and the values ok_reply() builds the reply from (the
-- request's code, customer and amount come from the caller: the
-- fingerprint holds them).
local function replay(ikey, fp, conflict_k, conflict_v, code, cust, amount)
    local rec = redis.call('GET', ikey)
    if not rec then return nil end
    local v = {cmsgpack.unpack(rec)}
    local whole = type(v[1]) == 'table'
    local f = whole and v[1][1] or v[1]
    -- a record written before raw fingerprints holds the SHA-1 of a short
    -- request
    if f ~= fp and not (#f == 40 and #fp <= 96 and f == redis.sha1hex(fp)) then
        return {'idempotency_conflict', conflict_k, conflict_v}
    end
    local r
    if whole then
        r = v[1][2]
    else
        local function opt(x) if x ~= false then return x end end
        r = ok_reply(code, v[2], cust, v[3], v[4], opt(v[5]), v[6], v[7],
                     opt(v[8]), amount, opt(v[9]), opt(v[10]), opt(v[11]),
                     v[12], opt(v[13]))
    end
    if type(r[2]) == 'number' then
        r[2] = r[2] + 1024               -- positional: the replayed bit
    else
        r[#r + 1] = 'replayed'
        r[#r + 1] = 1
    end
    return r
end

-- Caches at library scope: they live as long as this library in this
-- Redis process (a FUNCTION LOAD, a restart or a failover starts them
-- empty) and only ever hold what the keys say; the keys stay the truth.
-- Settings change only through voucher_settings_set, which drops its
-- namespace's entry; campaign rules are keyed by the "rev" every
-- voucher_campaign_set writes, so a changed campaign is never served stale.
-- Another version's library beside the primary (see PRIMARY) keeps no
-- settings and no loyalty programme: they change through the primary, whose
-- dropping of an entry it would not see.
local SETTINGS = {}
local CAMPAIGNS, NCAMPAIGNS = {}, 0
local REV = 0

-- settings of a namespace: stream maxlen, idem ttl
local function settings(tag)
    local s = SETTINGS[tag]
    if not s then
        local v = redis.call('HMGET', tag .. ':cfg', 'stream_maxlen',
                             'idem_ttl')
        s = {tonumber(v[1]) or 0, tonumber(v[2]) or IDEM_TTL}
        if PRIMARY then SETTINGS[tag] = s end
    end
    return s[1], s[2]
end

-- keeps the first answer of a request with an idempotency key, for the
-- namespace's idem_ttl
local function remember(tag, ikey, fp, r)
    local _, ttl = settings(tag)
    redis.call('SET', ikey, cmsgpack.pack({fp, r}), 'EX', ttl)
end

local function xadd2(key, maxlen, ...)
    if maxlen > 0 then
        return redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', ...)
    end
    return redis.call('XADD', key, '*', ...)
end

-- every stream entry has the same fields in the same order; a redeem of
-- a serial series' code adds "serial" (redis/lib/serial.lua) last
local function xadd(key, maxlen, typ, code, camp, cust, oid, amount, cur,
                    disc, bal, idem, ref, sn)
    if sn then
        return xadd2(key, maxlen, 'type', typ, 'code', code, 'campaign', camp,
                     'customer', cust, 'order_id', oid, 'amount', amount,
                     'currency', cur, 'discount', disc, 'balance', bal,
                     'idem', idem, 'ref', ref, 'serial', sn)
    end
    return xadd2(key, maxlen, 'type', typ, 'code', code, 'campaign', camp,
                 'customer', cust, 'order_id', oid, 'amount', amount,
                 'currency', cur, 'discount', disc, 'balance', bal,
                 'idem', idem, 'ref', ref)
end

-- is ",x," in a stored ",a,b," list
local function listed(list, x)
    return list and string.find(list, ',' .. x .. ',', 1, true)
end

-- a failure reply; a nil campaign ends the array there (Redis stops
-- converting a Lua table at its first nil), so does an absent extra value
local function fail(reason, code, camp, k1, v1)
    if not v1 then k1 = nil end
    return {reason, 'code', code, 'campaign', camp, k1, v1}
end

-- The functions reg() registers (voucher_<name>) live in this table, not
-- in locals: Lua 5.1 allows a chunk 200 locals, and t/011-library.t keeps
-- the library well below that.  Helpers on the hot path stay locals (an
-- upvalue is cheaper than a table lookup).
local api = {}

-- The wallet's helpers (redis/lib/wallet.lua), and the cart's (qualify,
-- stack): in tables for the same reason, defined by their parts; a part
-- before them calls them only at run time.
local W = {}

-- The loyalty programme's helpers (redis/lib/loyalty.lua), in one table
-- for the same reason; L.progs caches each namespace's programme (false:
-- none), so a confirm in a namespace without one costs a table lookup.
local L = {progs = {}}

-- The campaign rules' helpers (redis/lib/rules.lua), in one table for the
-- same reason.
local RU = {}
