------------------------------------------------------------- limits, lockout

-- Limits travel with a validate or redeem, after the order's items, one
-- argument each, its key last so that the key may hold any byte (':' and
-- NUL included) with no escaping:
--   r<a>:<b>:<name>:<key>       a rate (GCRA): a = emission interval in
--                               microseconds (1 s / rate), b = burst
--                               (requests allowed at once beyond one),
--                               both in hexadecimal (strtoul is cheaper
--                               than strtod; below 2^32 as nginx sends
--                               them, so a 32-bit Redis reads them too)
--   l<a>:<b>:<c>:<name>:<key>   a lockout: a = failures, b = window ms,
--                               c = ban ms, in decimal
-- In a dry run the letters are R and L (a call's limits all agree).  A
-- name holds no ':', so "<name>:<key>", the tail of the limit's Redis keys,
-- is one capture.  One string.match reads a limit (a dry run's, after a
-- miss or two), and the common case, a single rate limit, is checked and
-- charged in locals, with no table.
-- They are checked on Redis time before the code is looked at, in the same
-- call, so a refused attempt costs Redis no code lookup.

local LIMIT_RATE = '^r(%x+):(%x+):([^:]+:.*)'
local LIMIT_LOCKOUT = '^l(%d+):(%d+):(%d+):([^:]+:.*)'
local LIMIT_RATE_DRY = '^R(%x+):(%x+):([^:]+:.*)'
local LIMIT_LOCKOUT_DRY = '^L(%d+):(%d+):(%d+):([^:]+:.*)'

-- refused codes that count as a guess towards a lockout
local GUESS = {not_found = true, code_inactive = true, expired = true,
               not_started = true, customer_mismatch = true,
               campaign_inactive = true}

-- one limit argument: 'r' or 'l', dry, "<name>:<key>", a, b, c; nil if
-- malformed
local function limit_field(s)
    local dry, a, b, nk = false, string.match(s, LIMIT_RATE)
    if not a then
        dry, a, b, nk = true, string.match(s, LIMIT_RATE_DRY)
    end
    if a then
        a, b = tonumber(a, 16), tonumber(b, 16)
        if a < 1 or a > MAXINT or b > MAXINT then return nil end
        return 'r', dry, nk, a, b
    end
    local c
    dry, a, b, c, nk = false, string.match(s, LIMIT_LOCKOUT)
    if not a then
        dry, a, b, c, nk = true, string.match(s, LIMIT_LOCKOUT_DRY)
        if not a then return nil end
    end
    a, b, c = tonumber(a), tonumber(b), tonumber(c)
    if a < 1 or b < 1 or c < 1 or a > MAXINT or b > MAXINT or c > MAXINT then
        return nil
    end
    return 'l', dry, nk, a, b, c
end

-- the name in "<name>:<key>"
local function limit_name(nk)
    return string.match(nk, '^[^:]+')
end

-- A rate's state, {v}:rt:<name>:<key>, is its theoretical arrival time
-- (TAT, us) in hexadecimal, which tonumber() reads with strtoul instead of
-- glibc's dearer strtod (a 32-bit Redis, whose C long cannot hold it, keeps
-- it in decimal).  It is meaningless once the TAT has passed, so it expires
-- then, but at the end of the TAT's second rather than at the TAT itself:
-- a charge whose new TAT stays within the second of the TAT it read keeps
-- the expiry (KEEPTTL), and only one that crosses into a later second moves
-- it (PXAT, Redis' clock, absolute).  So a key's expiry is never before its
-- TAT (it is at or after the end of the second of every TAT it has held
-- since it was made), and lingers at most a second after it.
local TAT_BASE, TAT_FORMAT      -- set by the first limit_check()

local function limit_charge(key, tat, keep)
    if keep then
        redis.call('SET', key, string.format(TAT_FORMAT, tat), 'KEEPTTL')
    else
        redis.call('SET', key, string.format(TAT_FORMAT, tat), 'PXAT',
                   dec((tat - tat % 1000000) / 1000 + 1000))
    end
end

-- Checks every limit (args[from] to the last), and only when all pass
-- charges the rates.  Returns dry, and the first refusal (a lockout's
-- before any rate's): reason, name, retry after (ms); nil when an argument
-- is malformed, before anything is written.
local function limit_check(tag, args, from)
    local now = now_us()
    if not TAT_BASE then
        TAT_BASE = string.format('%x', 2 ^ 40) == '10000000000' and 16 or 10
        TAT_FORMAT = TAT_BASE == 16 and '%x' or '%.0f'
    end
    local dry, lname, lttl, rname, rretry, k1, t1, keep1, more
    for i = from, #args do
        local kind, d, nk, a, b = limit_field(args[i])
        if not kind or (i > from and d ~= dry) then return nil end
        dry = d
        if kind == 'l' then
            if not lname then
                local ttl = redis.call('PTTL', tag .. ':lb:' .. nk)
                if ttl > 0 then lname, lttl = nk, ttl end
            end
        elseif not rname and not lname then
            local key = tag .. ':rt:' .. nk
            local old = redis.call('GET', key)
            old = old and tonumber(old, TAT_BASE)
            local tat = old or now
            if tat < now then tat = now end
            local tau = a * b
            if tat - now > tau then
                rname, rretry = nk, math.ceil((tat - tau - now) / 1000)
            else
                -- the first charge waits in locals, the others in a table
                tat = tat + a
                local keep = old and tat - tat % 1000000 == old - old % 1000000
                if not k1 then
                    k1, t1, keep1 = key, tat, keep
                else
                    more = more or {}
                    more[#more + 1] = {key, tat, keep}
                end
            end
        end
    end
    if lname then return dry, 'locked_out', limit_name(lname), lttl end
    if rname then return dry, 'rate_limited', limit_name(rname), rretry end
    if k1 then limit_charge(k1, t1, keep1) end
    if more then
        for _, c in ipairs(more) do limit_charge(c[1], c[2], c[3]) end
    end
    return dry
end

-- a refused code from this key: count it; at the threshold, ban the key
local function lockout_count(tag, args, from)
    for i = from, #args do
        local kind, _, nk, a, b, c = limit_field(args[i])
        if kind == 'l' then
            local ckey = tag .. ':lf:' .. nk
            local n = redis.call('INCR', ckey)
            if n == 1 then redis.call('PEXPIRE', ckey, b) end
            if n >= a then
                redis.call('SET', tag .. ':lb:' .. nk, '1', 'PX', c)
                redis.call('DEL', ckey)
            end
        end
    end
end

-- The refusal reply, or nil and the status and name for limit_pairs();
-- false when a limit argument is malformed.
local function limits_apply(tag, code, args, from)
    local dry, reason, name, retry = limit_check(tag, args, from)
    if dry == nil then return false end
    if not reason then return nil, 'PASSED' end
    local status = reason == 'locked_out' and 'LOCKED' or 'REJECTED'
    if not dry then
        return {reason, 'code', code, 'limit', name, 'retry_after_ms', retry,
                '_limit', status}
    end
    return nil, status .. '_DRY_RUN', name
end

local function limit_pairs(r, status, name)
    r[#r + 1] = '_limit'; r[#r + 1] = status
    if name then r[#r + 1] = '_limit_name'; r[#r + 1] = name end
    return r
end

-- The reply's "_limit" pair (PASSED, REJECTED, LOCKED, ..._DRY_RUN) is for
-- nginx's $voucher_limit_status; keys starting with "_" never reach the body.
local function evaluate(keys, args, redeem, read_only, hold_ms)
    local tag, code = string.match(keys[1], '^({[^}]+}):c:(.+)$')
    if not tag then return bad_key() end

    local n = uint(args[6])
    if not n then return bad_args() end
    if not read_only then sweep(tag) end
    local nargs = 6 + 4 * n
    if #args == nargs then
        return evaluate_code(keys, args, redeem, tag, code, n, nargs, hold_ms)
    end
    -- "m...": the order's metadata and the customer's attributes
    -- (redis/lib/rules.lua), first after the items
    local meta
    if string.byte(args[nargs + 1] or '') == 109 then
        meta = RU.meta(table.remove(args, nargs + 1))
        if not meta then return bad_args() end
    end
    -- "p<N>": pay N loyalty points with it (before any limit)
    local pts
    if string.byte(args[nargs + 1] or '') == 112 then
        pts = uint(string.sub(table.remove(args, nargs + 1), 2))
        if not pts or pts == 0 then
            return {'invalid_points', 'code', code}
        end
    end
    if #args == nargs then
        return evaluate_code(keys, args, redeem, tag, code, n, nargs,
                             hold_ms, pts, meta)
    end
    if read_only then return bad_args() end

    local refusal, status, name = limits_apply(tag, code, args, nargs + 1)
    if refusal then return refusal end
    if refusal == false then return bad_args() end

    local r = evaluate_code(keys, args, redeem, tag, code, n, nargs, hold_ms,
                            pts, meta)
    if type(r) == 'table' then
        if GUESS[r[1]] then lockout_count(tag, args, nargs + 1) end
        limit_pairs(r, status, name)
    end
    return r
end

-- FCALL voucher_reserve 1 {NS}:c:<code> hold_ms <the ARGV of redeem>
-- hold_ms: 1000 .. 86400000
function api.reserve(keys, args)
    local hold_ms = uint(table.remove(args, 1))
    if not hold_ms or hold_ms < 1000 or hold_ms > 86400000 then
        return bad_args()
    end
    return evaluate(keys, args, true, false, hold_ms)
end

-- A code the nginx worker refused offline (no format fits, or a bad MAC),
-- sent only where limits apply: they decide as for any code, the guess
-- counts towards a lockout, and the answer is not_found, so a limited
-- client cannot tell a forged code from an unknown one.  The code is never
-- read.  FCALL voucher_guess 1 {NS}:c:<code> limits...
function api.guess(keys, args)
    local tag, code = string.match(keys[1], '^({[^}]+}):c:(.+)$')
    if not tag then return bad_key() end
    if #args < 1 then return bad_args() end
    local refusal, status, name = limits_apply(tag, code, args, 1)
    if refusal then return refusal end
    if refusal == false then return bad_args() end

    lockout_count(tag, args, 1)
    return limit_pairs({'not_found', 'code', code}, status, name)
end
