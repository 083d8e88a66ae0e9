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
        SETTINGS[tag] = s
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

-- every stream entry has the same fields in the same order
local function xadd(key, maxlen, typ, code, camp, cust, oid, amount, cur,
                    disc, bal, idem, ref)
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


------------------------------------------------------------ code storage

-- A code is a hash {NS}:c:<code> (short fields k s m u c b b0 f t), or,
-- when all it has is its campaign, its uses and maybe its customer (the
-- bulk-issued single-use codes), one field of a bucket hash
-- {NS}:cb:<4 hex digits of the code's SHA-1>, valued
-- "<uses> <campaign>[ <customer>]".  Redis keeps a hash of up to 128 short
-- fields as one listpack, so such a code costs about 25-30 bytes instead
-- of 100-120.  The hash spreads any codes (a common suffix, a small
-- charset) evenly over the 65,536 buckets; past about 8 million compact
-- codes the buckets outgrow the listpack and cost more, still less than a
-- hash each.  Every read and write of a code goes through code_read /
-- code_uses.

local function bucket_key(tag, code)
    return tag .. ':cb:' .. string.sub(redis.sha1hex(code), 1, 4)
end

local function compact_value(u, camp, cust)
    if cust and cust ~= '' then
        return u .. ' ' .. camp .. ' ' .. cust
    end
    return u .. ' ' .. camp
end

-- uses, campaign and customer (nil: none) of a compact value, or nil
local function compact_parse(v)
    local u, k, cust = string.match(v, '^(%d+) (%S+) ?(%S*)$')
    if u then return u, k, cust ~= '' and cust or nil end
end

-- can these fields be stored compact: a campaign, uses, a customer id
-- without spaces, and nothing else
local function compactable(camp, cust)
    return not string.find(camp, ' ', 1, true)
           and not (cust and string.find(cust, '[%s]'))
end

-- {k, s, m, u, c, b, f, t} of a code (k false: no such code), and its
-- bucket key when it is compact
local function code_read(tag, ckey, code)
    local c = redis.call('HMGET', ckey, 'k', 's', 'm', 'u', 'c', 'b', 'f',
                         't')
    if c[1] then return c end
    local bkey = bucket_key(tag, code)
    local v = redis.call('HGET', bkey, code)
    if not v then return c end
    local u, k, cust = compact_parse(v)
    if not u then return c end
    return {k, false, false, u, cust or false, false, false, false}, bkey
end

-- writes a code's uses (and a gift card's balance)
local function code_uses(ckey, bkey, code, c, u, bal)
    if bkey then
        redis.call('HSET', bkey, code, compact_value(u, c[1], c[5]))
    elseif bal then
        redis.call('HSET', ckey, 'u', u, 'b', bal)
    else
        redis.call('HSET', ckey, 'u', u)
    end
end

-- does the code exist, in either form
local function code_exists(tag, ckey, code)
    return redis.call('EXISTS', ckey) == 1
           or redis.call('HEXISTS', bucket_key(tag, code), code) == 1
end

-- the compact value of a new code whose fields are {k, camp[, c, cust]},
-- or nil when it needs a hash
local function compact_of(set)
    if #set == 2 and compactable(set[2]) then
        return compact_value(0, set[2])
    end
    if #set == 4 and set[3] == 'c' and compactable(set[2], set[4]) then
        return compact_value(0, set[2], set[4])
    end
end


------------------------------------------------------------ reservations

-- A reservation (gate mode, voucher_reserve) is a redemption like any
-- other, written at once and counted against every limit, whose id also
-- sits in the sorted set {NS}:hz scored by its deadline (ms, Redis time).
-- Confirming takes it out of the set; releasing rolls it back; one whose
-- deadline passed is rolled back by the next call that writes ("sweep"),
-- so a reservation never outlives nginx dying between the two steps.
-- NEXT caches each namespace's earliest deadline (math.huge: none), so a
-- call with nothing due costs one table lookup; nil means not yet known.
local NEXT = {}

-- Redis' clock, read at most once per call: the limit, the window, the
-- hold deadline and the sweep of one call all see the same instant.  reg()
-- clears it before every function runs, so no call sees another's time.
local CLOCK_S, CLOCK_T
local function now_s()
    if not CLOCK_S then
        CLOCK_T = redis.call('TIME')
        CLOCK_S = tonumber(CLOCK_T[1])
    end
    return CLOCK_S
end

-- (tonumber is glibc's strtod: the microseconds are converted only when
-- asked for)
local function now_us()
    return now_s() * 1000000 + tonumber(CLOCK_T[2])
end

local function now_ms()
    return now_s() * 1000 + math.floor(tonumber(CLOCK_T[2]) / 1000)
end

local function hold_add(tag, id, deadline)
    redis.call('ZADD', tag .. ':hz', dec(deadline), id)
    local nx = NEXT[tag]
    if nx and deadline < nx then NEXT[tag] = deadline end
end

-- the redemption id of an "ok" reply, or nil: positional (see ok_reply;
-- the id follows the 7 values always there and the optional ones of bits
-- 1 to 128), or pairs (a record kept by an older library)
local function held_id(r)
    local m = r[2]
    if type(m) == 'number' then
        if m % 512 < 256 then return nil end
        local i = 10
        for b = 0, 7 do
            if math.floor(m / 2 ^ b) % 2 == 1 then i = i + 1 end
        end
        return r[i]
    end
    for i = 2, #r - 1, 2 do
        if r[i] == 'redemption_id' then return r[i + 1] end
    end
end

-- the redemption of an "ok" reply has been rolled back (released)
local function released(tag, r)
    if r[1] ~= 'ok' then return false end
    local id = held_id(r)
    return id ~= nil
           and redis.call('HGET', tag .. ':rb:' .. id, 'done') ~= false
end


------------------------------------------------------------ validate, redeem

local CAMPAIGN_FIELDS = {
    'status', 'kind', 'value', 'cap', 'min_amount',                 --  1..5
    'max_redemptions', 'max_discount', 'per_customer',              --  6..8
    'per_customer_code', 'code_max_uses', 'currency',               --  9..11
    'starts_at', 'ends_at', 'days', 'hours', 'tz_offset',           -- 12..16
    'include_skus', 'exclude_skus', 'include_categories',           -- 17..19
    'exclude_categories', 'free_sku', 'redeemed', 'discount_given', -- 20..23
}
-- the fields above that are numbers (the cache keeps them converted)
local CAMPAIGN_NUMBERS = {3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 16}

-- The answer of an "ok" validate, redeem or reserve, from its values; a
-- redeem adds its id, a reservation the second its hold ends.  A replayed
-- redeem is built here again from its record, so the two cannot differ.
--
-- The answer is positional, without key names (nginx knows them and
-- renders the JSON): {'ok', mask, values..., [k, v]*}.  The values, in
-- this order, optional ones only when their bit is in the mask:
--   code, campaign, customer (1), discount,
--   kind, value (2) or percent_bp (4), eligible_amount, cap (8),
--   capped_by (16)                             -- the JSON's computation
--   order_amount, amount_after, uses_left (32), balance (64),
--   expires_at (128), redemption_id (256), hold_expires_at (512: with it,
--   "status": "reserved")
-- Bit 1024 marks a replay (no value).  Pairs may follow the values
-- ('_limit', '_limit_name'): rare, they stay named.  Every other reply,
-- refusals and a record of an older library included, is
-- {reason, k, v, ...}.
-- The key strings and the nested computation cost Redis about 11% of a
-- validate (bench/FINDINGS.md, section 0).
function ok_reply(code, camp, cust, d, kind, value, base, cap,
                  capped_by, amount, uses_left, bal, stop, id, hold_s)
    -- sized once: the nils reserve the array slots the reply fills, so it
    -- is not rehashed while it grows (Redis reads a reply up to its first
    -- nil)
    local r, m, i = {'ok', 0, code, camp, nil, nil, nil, nil, nil, nil, nil,
                     nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
                     nil, nil}, 0, 4
    if cust ~= '' then r[5] = cust; m = 1; i = 5 end
    r[i + 1] = d; r[i + 2] = kind; i = i + 2
    if value and kind ~= 'gift_card' then
        i = i + 1; r[i] = value
        m = m + (kind == 'percent' and 4 or 2)
    end
    i = i + 1; r[i] = base
    if cap > 0 then i = i + 1; r[i] = cap; m = m + 8 end
    if capped_by then i = i + 1; r[i] = capped_by; m = m + 16 end
    r[i + 1] = amount; r[i + 2] = amount - d; i = i + 2
    if uses_left then i = i + 1; r[i] = uses_left; m = m + 32 end
    if bal then i = i + 1; r[i] = bal; m = m + 64 end
    if stop then i = i + 1; r[i] = stop; m = m + 128 end
    if id then i = i + 1; r[i] = id; m = m + 256 end
    if hold_s then r[i + 1] = hold_s; m = m + 512 end
    r[2] = m
    return r
end

-- ARGV: customer amount currency order_id idem nitems
--       [sku category price qty]*
-- hold_ms: a reservation (voucher_reserve) held for that long, else nil
-- n: the number of items, args[6], which evaluate() has checked
local function evaluate_code(keys, args, redeem, tag, code, n, nargs, hold_ms)
    local cust, amount, cur, oid, idem = args[1], uint(args[2]), args[3],
        args[4], args[5]
    if not amount then return bad_args() end
    local last = 4 * n + 3                   -- index of the last item's sku
    for i = 9, last + 2, 4 do
        if not (uint(args[i]) and uint(args[i + 1])) then return bad_args() end
    end

    -- 1. idempotent replay
    local ikey, fp
    if redeem and idem ~= '' then
        -- a reserve keeps its own records: a key of a redeem is no
        -- reservation, and the other way round
        ikey = tag .. (hold_ms and ':i:h:' or ':i:r:') .. idem
        fp = fingerprint(code .. '\0' .. table.concat(args, '\0', 1, 4)
                         .. '\0' .. table.concat(args, '\0', 6, nargs))
        local r = replay(ikey, fp, 'code', code, code, cust, amount)
        if r and hold_ms and r[1] == 'ok' then
            local id = held_id(r)
            if released(tag, r) then
                -- a retried checkout whose reservation was given back: the
                -- old answer would pass a discount on without a hold
                redis.call('DEL', ikey)
                r = nil
            elseif id and redis.call('ZSCORE', tag .. ':hz', id) then
                -- the first attempt still holds it: it, not the retry,
                -- will confirm or release it
                return {'reservation_in_progress', 'code', code,
                        'redemption_id', id}
            end
        end
        if r then return r end
    end

    -- 2-3. the code
    local c, bkey = code_read(tag, keys[1], code)
    local camp = c[1]
    if not camp then return {'not_found', 'code', code} end
    if c[2] == 'd' then return fail('code_inactive', code, camp) end

    -- 4. the campaign: its rules from the cache when its rev still
    -- matches, its counters always from the hash
    local kkey = tag .. ':k:' .. camp
    local kc = redis.call('HMGET', kkey, 'rev', 'redeemed', 'discount_given')
    local k = kc[1] and CAMPAIGNS[kkey]
    if not (k and k.rev == kc[1]) then
        k = redis.call('HMGET', kkey, unpack(CAMPAIGN_FIELDS))
        -- numbers once, not on every call: tonumber is glibc's strtod,
        -- about 700 instructions each
        for _, i in ipairs(CAMPAIGN_NUMBERS) do k[i] = tonumber(k[i]) end
        if kc[1] then
            if NCAMPAIGNS >= 10000 then CAMPAIGNS, NCAMPAIGNS = {}, 0 end
            k.rev = kc[1]
            if not CAMPAIGNS[kkey] then NCAMPAIGNS = NCAMPAIGNS + 1 end
            CAMPAIGNS[kkey] = k
        end
    end
    local redeemed, given = tonumber(kc[2]) or 0, tonumber(kc[3]) or 0
    if k[1] ~= 'active' then
        return fail('campaign_inactive', code, camp, 'status', k[1])
    end

    -- 5. window; TIME only when there is one
    local start, stop = k[12], k[13]
    local f, t = tonumber(c[7]), tonumber(c[8])
    if f and (not start or f > start) then start = f end
    if t and (not stop or t < stop) then stop = t end
    local days, hours = k[14], k[15]
    if start or stop or days or hours then
        local now = now_s()
        if start and now < start then
            return fail('not_started', code, camp, 'starts_at', start)
        end
        if stop and now >= stop then
            return fail('expired', code, camp, 'ends_at', stop)
        end
        if days or hours then
            local loc = now + (k[16] or 0) * 60
            -- 1970-01-01 (day 0) was a Thursday, ISO day 4
            local dow = (math.floor(loc / 86400) + 3) % 7 + 1
            if days and not string.find(days, dow, 1, true) then
                return fail('outside_window', code, camp)
            end
            if hours then
                local m = math.floor(loc % 86400 / 60)
                local a, b = string.match(hours, '^(%d+)-(%d+)$')
                a, b = tonumber(a), tonumber(b)
                local inside
                if a <= b then inside = m >= a and m < b
                else inside = m >= a or m < b end    -- wraps past midnight
                if not inside then
                    return fail('outside_window', code, camp)
                end
            end
        end
    end

    -- 6. assigned customer
    local assigned = c[5]
    if assigned then
        if cust == '' then return fail('customer_required', code, camp) end
        if cust ~= assigned then
            return fail('customer_mismatch', code, camp)
        end
    end

    -- 7. uses of the code (its own m, even 0, wins over the campaign's)
    local used = tonumber(c[4]) or 0
    local max_uses = tonumber(c[3]) or k[10] or 0
    if max_uses > 0 and used >= max_uses then
        return fail('code_exhausted', code, camp)
    end

    -- 8. gift card balance
    local kind = k[2]
    local gift = kind == 'gift_card'
    local bal
    if gift then
        bal = tonumber(c[6]) or 0
        if bal <= 0 then return fail('balance_exhausted', code, camp) end
    end

    -- 9. campaign redemptions
    local max_red = k[6] or 0
    if max_red > 0 and redeemed >= max_red then
        return fail('campaign_exhausted', code, camp)
    end

    -- 10. per-customer limits
    local pc, pcc = k[8] or 0, k[9] or 0
    local ukey, nk, nc
    if pc > 0 or pcc > 0 then
        if cust == '' then return fail('customer_required', code, camp) end
        ukey = tag .. ':u:' .. cust
        local u = redis.call('HMGET', ukey, 'k:' .. camp, 'c:' .. code)
        nk, nc = tonumber(u[1]) or 0, tonumber(u[2]) or 0
        if pc > 0 and nk >= pc then
            return fail('customer_limit', code, camp)
        end
        if pcc > 0 and nc >= pcc then
            return fail('customer_code_limit', code, camp)
        end
    end

    -- 11-12. currency, minimum
    if k[11] and cur ~= k[11] then
        return fail('currency_mismatch', code, camp)
    end
    local min_amount = k[5] or 0
    if amount < min_amount then
        return fail('order_below_minimum', code, camp, 'min_amount',
                    min_amount)
    end

    -- 13. eligible base
    local value = k[3]
    local inc_s, exc_s, inc_c, exc_c = k[17], k[18], k[19], k[20]
    local filtered = inc_s or exc_s or inc_c or exc_c
    local base, per_item = amount, 0
    if filtered then
        if n == 0 then return fail('items_required', code, camp) end
        local any_inc = inc_s or inc_c
        local fixed = kind == 'fixed_price' and (value or 0)
        local sum, matched = 0, false
        for i = 7, last, 4 do
            local sku, cat = args[i], args[i + 1]
            if (not any_inc or listed(inc_s, sku) or listed(inc_c, cat))
               and not listed(exc_s, sku) and not listed(exc_c, cat) then
                matched = true
                local p, q = tonumber(args[i + 2]), tonumber(args[i + 3])
                -- clamped at amount: a product too big for a double to be
                -- exact is far above amount anyway
                sum = sum + p * q
                if sum > amount then sum = amount end
                if fixed and p > fixed then
                    per_item = per_item + (p - fixed) * q
                    if per_item > amount then per_item = amount end
                end
            end
        end
        if not matched then return fail('no_matching_items', code, camp) end
        base = sum
    end

    -- 14. the discount
    local d, capped_by
    if kind == 'percent' then
        value = value or 0
        -- floor(base * bp / 10000) without exceeding 2^53; fmod is exact
        local lo = math.fmod(base, 10000)
        d = (base - lo) / 10000 * value + math.floor(lo * value / 10000)
    elseif kind == 'amount' then
        value = value or 0
        d = value < base and value or base
    elseif kind == 'fixed_price' then
        value = value or 0
        if filtered then
            d = per_item
        else
            d = base > value and base - value or 0
        end
    elseif kind == 'free_item' then
        value = value or 1
        local fsku = k[21]
        for i = 7, last, 4 do
            if args[i] == fsku then
                local q = tonumber(args[i + 3])
                d = tonumber(args[i + 2]) * (q < value and q or value)
                break
            end
        end
        if not d then return fail('free_item_missing', code, camp) end
    elseif gift then
        d = base
        if bal < d then d = bal; capped_by = 'balance' end
    else
        return redis.error_reply('ERR bad_campaign kind')
    end
    local cap = k[4] or 0
    if cap > 0 and d > cap then d = cap; capped_by = 'cap' end
    if d > amount then d = amount; capped_by = 'order_amount' end

    -- 15. campaign budget
    local max_disc = k[7] or 0
    if max_disc > 0 and given + d > max_disc then
        return fail('campaign_budget_exhausted', code, camp)
    end

    -- success
    local uses_left
    if max_uses > 0 then
        uses_left = max_uses - used - (redeem and 1 or 0)
    end
    if gift and redeem then bal = bal - d end
    if not redeem then
        return ok_reply(code, camp, cust, d, kind, value, base, cap,
                        capped_by, amount, uses_left, bal, stop)
    end

    -- redeem: everything was read above in this same atomic call, so one
    -- HSET of the new values replaces two HINCRBYs
    code_uses(keys[1], bkey, code, c, dec(used + 1), gift and dec(bal))
    redis.call('HSET', kkey, 'redeemed', dec(redeemed + 1),
               'discount_given', dec(given + d))
    if cust ~= '' then
        if ukey then
            redis.call('HSET', ukey, 'k:' .. camp, dec(nk + 1),
                       'c:' .. code, dec(nc + 1))
        else
            ukey = tag .. ':u:' .. cust
            redis.call('HINCRBY', ukey, 'k:' .. camp, 1)
            redis.call('HINCRBY', ukey, 'c:' .. code, 1)
        end
    end
    local maxlen = settings(tag)
    local id = xadd(tag .. ':log', maxlen, 'redeem', code, camp, cust, oid,
                    dec(amount), cur, dec(d), gift and dec(bal) or '', idem,
                    hold_ms and 'hold' or '')
    local hold_s
    if hold_ms then
        local deadline = now_ms() + hold_ms
        hold_add(tag, id, deadline)
        hold_s = math.ceil(deadline / 1000)
    end
    if ikey then
        -- the record is the reply's values, not the reply: cmsgpack packs
        -- 13 values for a third of what the 26-element table costs
        local _, ttl = settings(tag)
        redis.call('SET', ikey,
                   cmsgpack.pack(fp, camp, d, kind, value or false, base, cap,
                                 capped_by or false, uses_left or false,
                                 bal or false, stop or false, id,
                                 hold_s or false),
                   'EX', ttl)
    end
    return ok_reply(code, camp, cust, d, kind, value, base, cap, capped_by,
                    amount, uses_left, bal, stop, id, hold_s)
end


---------------------------------------------------------------- rollback

-- the redeem entry of the stream with exactly this id, or nil
local function redemption(logkey, id)
    if not string.find(id, '^%d+%-%d+$') then return nil end
    local res = redis.pcall('XRANGE', logkey, id, id)     -- error: not found
    local e = type(res) == 'table' and res[1]
    if e and e[1] == id and e[2][1] == 'type' and e[2][2] == 'redeem' then
        return e[2]
    end
end

-- Rolls back what is left of redemption "id" (entry e), or "want" of it
-- (gift cards).  typ names the stream entry: rollback, release or expire.
-- Returns the reply, without the idempotency record.
local function undo(tag, id, e, want, idem, typ)
    local code, camp, cust = e[4], e[6], e[8]

    local rbkey = tag .. ':rb:' .. id
    local rb = redis.call('HMGET', rbkey, 'amt', 'done')
    if rb[2] then
        return {'already_rolled_back', 'redemption_id', id, 'code', code,
                'campaign', camp}
    end
    local done = tonumber(rb[1]) or 0
    local disc = tonumber(e[16]) or 0
    local remaining = disc - done
    local gift = e[18] ~= ''
    local a = remaining
    if want then
        if not gift then
            return {'partial_rollback_unsupported', 'redemption_id', id,
                    'code', code, 'campaign', camp}
        end
        if want > remaining then
            return {'rollback_exceeds_redemption', 'redemption_id', id,
                    'code', code, 'campaign', camp, 'remaining', remaining}
        end
        a = want
    end
    local full = not want or done + a == disc
    local total = done + a

    -- the code: balance back, one use back when fully rolled back
    local bal
    if gift or full then
        local ckey = tag .. ':c:' .. code
        local c, bkey = code_read(tag, ckey, code)
        if c[1] then
            if gift then bal = (tonumber(c[6]) or 0) + a end
            if full then
                local u = (tonumber(c[4]) or 0) - 1
                code_uses(ckey, bkey, code, c, u < 0 and 0 or u, bal)
            else
                -- part of a gift card's use: only its balance comes back
                redis.call('HSET', ckey, 'b', bal)
            end
        end
    end

    -- the campaign counters (never below 0)
    local kkey = tag .. ':k:' .. camp
    local k = redis.call('HMGET', kkey, 'status', 'redeemed', 'discount_given')
    if k[1] then
        local g = (tonumber(k[3]) or 0) - a
        if g < 0 then g = 0 end
        if full then
            local r = (tonumber(k[2]) or 0) - 1
            redis.call('HSET', kkey, 'discount_given', g,
                       'redeemed', r < 0 and 0 or r)
        else
            redis.call('HSET', kkey, 'discount_given', g)
        end
    end

    -- the customer's counters
    if full and cust ~= '' then
        local ukey = tag .. ':u:' .. cust
        local kf, cf = 'k:' .. camp, 'c:' .. code
        local u = redis.call('HMGET', ukey, kf, cf)
        if u[1] or u[2] then
            local x, y = (tonumber(u[1]) or 0) - 1, (tonumber(u[2]) or 0) - 1
            redis.call('HSET', ukey, kf, x < 0 and 0 or x,
                       cf, y < 0 and 0 or y)
        end
    end

    if full then
        redis.call('HSET', rbkey, 'amt', total, 'done', 1, 'why', typ)
        -- settled: a reservation rolled back is no longer held
        if e[22] == 'hold' then redis.call('ZREM', tag .. ':hz', id) end
    else
        redis.call('HSET', rbkey, 'amt', total)
    end

    local maxlen = settings(tag)
    local rid = xadd(tag .. ':log', maxlen, typ, code, camp, cust, e[10], '',
                     e[14], a, bal or '', idem, id)

    local status = full and (typ == 'rollback' and 'rolled_back'
                             or typ == 'release' and 'released'
                             or 'expired')
                   or 'partially_rolled_back'
    local r = {'ok', 'redemption_id', id, 'code', code, 'campaign', camp,
               'amount_rolled_back', a, 'total_rolled_back', total,
               'status', status}
    if bal then r[#r + 1] = 'balance'; r[#r + 1] = bal end
    r[#r + 1] = typ == 'rollback' and 'rollback_id' or 'release_id'
    r[#r + 1] = rid
    return r
end

-- ARGV: redemption_id amount idem
local function rollback(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):log$')
    if not tag then return bad_key() end
    if #args ~= 3 then return bad_args() end
    local id, amount_s, idem = args[1], args[2], args[3]
    local want
    if amount_s ~= '' then
        want = uint(amount_s)
        if not want then return bad_args() end
    end

    local ikey, fp
    if idem ~= '' then
        ikey = tag .. ':i:b:' .. idem
        fp = fingerprint(id .. '\0' .. amount_s)
        local r = replay(ikey, fp, 'redemption_id', id)
        if r then return r end
    end

    local e = redemption(keys[1], id)
    if not e then return {'redemption_not_found', 'redemption_id', id} end

    local r = undo(tag, id, e, want, idem, 'rollback')
    if ikey and r[1] == 'ok' then remember(tag, ikey, fp, r) end
    return r
end

-- Gives back every reservation whose deadline has passed (at most 100 a
-- call; the rest at the next).
local function sweep(tag)
    local nx = NEXT[tag]
    if nx == math.huge then return end
    local now = now_ms()
    if nx and nx > now then return end
    local hz = tag .. ':hz'
    local due = redis.call('ZRANGE', hz, '-inf', now, 'BYSCORE', 'LIMIT', 0,
                           100)
    for _, id in ipairs(due) do
        local e = redemption(tag .. ':log', id)
        if e then undo(tag, id, e, nil, '', 'expire') end
        -- trimmed from the stream, or already rolled back: just drop it
        redis.call('ZREM', hz, id)
    end
    local first = redis.call('ZRANGE', hz, 0, 0, 'WITHSCORES')
    NEXT[tag] = first[2] and tonumber(first[2]) or math.huge
    return #due
end

-- state of a reservation: 'held', 'confirmed', or the rb "why"
-- (rollback, release, expire); nil when id is not a reservation
local function hold_state(tag, id, e)
    if e[22] ~= 'hold' then return nil end
    local deadline = redis.call('ZSCORE', tag .. ':hz', id)
    if deadline then
        if tonumber(deadline) > now_ms() then return 'held' end
        -- due, not swept yet (a sweep takes 100 at a time): expire it now
        undo(tag, id, e, nil, '', 'expire')
        redis.call('ZREM', tag .. ':hz', id)
        return 'expire'
    end
    local why = redis.call('HMGET', tag .. ':rb:' .. id, 'done', 'why')
    if why[1] then return why[2] or 'rollback' end
    return 'confirmed'
end

local SETTLED = {rollback = 'reservation_rolled_back',
                 release = 'reservation_released',
                 expire = 'reservation_expired'}

-- FCALL voucher_confirm 1 {NS}:log redemption_id idem [brief]
-- FCALL voucher_release 1 {NS}:log redemption_id idem
-- Both may be repeated: the same outcome answers "ok" again, and with an
-- idempotency key the first answer itself.  "brief" (the gate's confirm,
-- on every checkout) answers {"ok"} alone when the hold is live, without
-- reading the redemption back.  A confirm leaves a "confirm" entry in the
-- trail (ref: the redemption); a release a "release" entry.
local function confirm_entry(tag, id, idem)
    local maxlen = settings(tag)
    xadd(tag .. ':log', maxlen, 'confirm', '', '', '', '', '', '', '', '',
         idem, id)
end

local function settle(keys, args, confirm)
    local tag = string.match(keys[1], '^({[^}]+}):log$')
    if not tag then return bad_key() end
    local id, idem, brief = args[1], args[2], args[3]
    if not (id and idem) or #args > (confirm and 3 or 2)
       or (brief and brief ~= 'brief') then
        return bad_args()
    end
    if brief then
        local hz = tag .. ':hz'
        local deadline = redis.call('ZSCORE', hz, id)
        if deadline and tonumber(deadline) > now_ms() then
            redis.call('ZREM', hz, id)
            confirm_entry(tag, id, idem)
            return {'ok', 'status', 'confirmed'}
        end
    end

    local ikey, fp
    if idem ~= '' then
        ikey = tag .. ':i:s:' .. idem
        fp = fingerprint((confirm and 'confirm' or 'release') .. '\0' .. id)
        local r = replay(ikey, fp, 'redemption_id', id)
        if r then return r end
    end
    sweep(tag)

    local e = redemption(keys[1], id)
    if not e then return {'redemption_not_found', 'redemption_id', id} end
    local state = hold_state(tag, id, e)
    local code, camp = e[4], e[6]
    if not state then
        return {'not_a_reservation', 'redemption_id', id, 'code', code,
                'campaign', camp}
    end

    local r
    if confirm then
        if state == 'held' then
            redis.call('ZREM', tag .. ':hz', id)
            confirm_entry(tag, id, idem)
            state = 'confirmed'
        end
        if state ~= 'confirmed' then
            return {SETTLED[state] or 'reservation_released',
                    'redemption_id', id, 'code', code, 'campaign', camp}
        end
        r = {'ok', 'redemption_id', id, 'code', code, 'campaign', camp,
             'status', 'confirmed'}
    elseif state == 'held' then
        r = undo(tag, id, e, nil, idem, 'release')
    elseif state == 'confirmed' then
        return {'reservation_confirmed', 'redemption_id', id, 'code', code,
                'campaign', camp}
    elseif state == 'release' then
        return {'ok', 'redemption_id', id, 'code', code, 'campaign', camp,
                'status', 'released', 'replayed', 1}
    else
        return {SETTLED[state], 'redemption_id', id, 'code', code,
                'campaign', camp}
    end

    if ikey then remember(tag, ikey, fp, r) end
    return r
end


---------------------------------------------------------------- admin

local function invalid(name, why)
    return redis.error_reply('ERR invalid_field ' .. name .. ': ' .. why)
end

-- field validators: return the value to store, false to delete the field,
-- or nil and why

local function v_uint(s)
    if uint(s) then return (s:gsub('^0+(%d)', '%1')) end
    return nil, 'expected an integer >= 0'
end

-- an integer, or "" to clear
local function v_uint_opt(s)
    if s == '' then return false end
    return v_uint(s)
end

local function v_enum(ok, list)
    return function(s)
        if ok[s] then return s end
        return nil, 'expected ' .. list
    end
end

local function v_string(s)
    if s == '' then return false end
    if #s > 256 then return nil, 'longer than 256 bytes' end
    return s
end

local function v_currency(s)
    if s == '' then return false end
    if string.find(s, '^[A-Z][A-Z][A-Z]$') then return s end
    return nil, 'expected 3 letters A-Z'
end

local function v_days(s)
    if s == '' then return false end
    if string.find(s, '^[1-7]+$') and #s <= 7 then return s end
    return nil, 'expected ISO days of week as digits 1-7'
end

local function minute(h, m)
    h, m = tonumber(h), tonumber(m)
    if h < 24 and m < 60 then return h * 60 + m end
end

-- "HH:MM-HH:MM" (end exclusive, may wrap, "24:00" as end) -> "M1-M2"
local function v_hours(s)
    if s == '' then return false end
    local h1, m1, h2, m2 = string.match(s, '^(%d%d?):(%d%d)%-(%d%d?):(%d%d)$')
    if h1 then
        local a = minute(h1, m1)
        local b = minute(h2, m2)
        if h2 == '24' and m2 == '00' then b = 1440 end
        if a and b and a ~= b then return a .. '-' .. b end
    end
    return nil, 'expected HH:MM-HH:MM (start and end differ)'
end

-- minutes east of UTC, or "+HH:MM"/"-HH:MM" -> minutes
local function v_tz(s)
    if s == '' then return false end
    local n
    local sign, h, m = string.match(s, '^([+-])(%d%d):(%d%d)$')
    if sign then
        h, m = tonumber(h), tonumber(m)
        if m < 60 then n = (sign == '-' and -1 or 1) * (h * 60 + m) end
    elseif string.find(s, '^[+-]?%d+$') then
        n = tonumber(s)
    end
    if n and n >= -840 and n <= 840 then return string.format('%d', n) end
    return nil, 'expected minutes -840..840 or +HH:MM'
end

-- "a, b" -> ",a,b,"
local function v_list(s)
    if s == '' then return false end
    local out = {}
    for item in (s .. ','):gmatch('([^,]*),') do
        item = string.match(item, '^%s*(.-)%s*$')
        if item == '' then return nil, 'empty element' end
        out[#out + 1] = item
    end
    return ',' .. table.concat(out, ',') .. ','
end

local function v_readonly()
    return nil, 'counter, cannot be set'
end

local CAMPAIGN_SET = {
    name = v_string,
    status = v_enum({active = 1, paused = 1, archived = 1},
                    'active|paused|archived'),
    kind = v_enum({percent = 1, amount = 1, fixed_price = 1, free_item = 1,
                   gift_card = 1},
                  'percent|amount|fixed_price|free_item|gift_card'),
    value = v_uint, cap = v_uint, min_amount = v_uint,
    max_redemptions = v_uint, max_discount = v_uint, per_customer = v_uint,
    per_customer_code = v_uint, code_max_uses = v_uint,
    currency = v_currency, starts_at = v_uint_opt, ends_at = v_uint_opt,
    days = v_days, hours = v_hours, tz_offset = v_tz,
    include_skus = v_list, exclude_skus = v_list,
    include_categories = v_list, exclude_categories = v_list,
    free_sku = v_string,
    redeemed = v_readonly, discount_given = v_readonly,
}

-- "field value ..." -> {field = value|false}, in order; or nil, error reply
local function parse_fields(args, validators)
    if #args == 0 or #args % 2 ~= 0 then
        return nil,
            redis.error_reply('ERR bad_args field value pairs expected')
    end
    local new, order = {}, {}
    for i = 1, #args, 2 do
        local name, v = args[i], validators[args[i]]
        if not v then
            return nil, redis.error_reply('ERR unknown_field ' .. name)
        end
        local val, why = v(args[i + 1])
        if val == nil then return nil, invalid(name, why) end
        if new[name] == nil then order[#order + 1] = name end
        new[name] = val
    end
    return new, order
end

-- HSET the string values, HDEL the false ones; names mapped by rename
local function write_fields(key, new, order, rename)
    local set, del = {}, {}
    for _, name in ipairs(order) do
        local f = rename and rename[name] or name
        local v = new[name]
        if v then
            set[#set + 1] = f; set[#set + 1] = v
        else
            del[#del + 1] = f
        end
    end
    if #del > 0 then redis.call('HDEL', key, unpack(del)) end
    if #set > 0 then redis.call('HSET', key, unpack(set)) end
end

-- the new value of a field, else the stored one (false = absent)
local function merged(new, old, name)
    local v = new[name]
    if v == nil then return old end
    return v
end

local function check_window(starts, ends, name)
    if starts and ends and tonumber(ends) <= tonumber(starts) then
        return invalid(name, 'ends_at must be after starts_at')
    end
end

-- campaign ids and codes: 1..64 printable ASCII
local function bad_id(s)
    return not (string.find(s, '^[!-~]+$') and #s <= 64)
end

local function campaign_set(keys, args)
    local tag, id = string.match(keys[1], '^({[^}]+}):k:(.*)$')
    if not tag then return bad_key() end
    if bad_id(id) then
        return invalid('campaign', '1..64 printable ASCII characters')
    end
    local new, order = parse_fields(args, CAMPAIGN_SET)
    if not new then return order end

    local old = redis.call('HMGET', keys[1], 'kind', 'value', 'free_sku',
                           'starts_at', 'ends_at')
    local create = not old[1]
    local kind = merged(new, old[1], 'kind')
    if not kind then return invalid('kind', 'required on create') end
    local value = merged(new, old[2], 'value')
    if kind == 'percent' and value and tonumber(value) > 10000 then
        return invalid('value', 'percent is in basis points, at most 10000')
    end
    if kind == 'fixed_price' and not value then
        return invalid('value', 'required for fixed_price')
    end
    if kind == 'free_item' then
        if not merged(new, old[3], 'free_sku') then
            return invalid('free_sku', 'required for free_item')
        end
        if value and tonumber(value) < 1 then
            return invalid('value', 'free_item gives at least 1 unit')
        end
    end
    local err = check_window(merged(new, old[4], 'starts_at'),
                             merged(new, old[5], 'ends_at'), 'ends_at')
    if err then return err end

    if create and new.status == nil then
        order[#order + 1] = 'status'
        new.status = 'active'
    end
    write_fields(keys[1], new, order)

    -- a new revision, unique even across reloads of this library, so that
    -- cached rules of the campaign are read afresh
    local t = redis.call('TIME')
    REV = REV + 1
    redis.call('HSET', keys[1], 'rev', t[1] .. t[2] .. '.' .. REV)
    return 'OK'
end

local INT_FIELDS = {
    value = true, cap = true, min_amount = true, max_redemptions = true,
    max_discount = true, per_customer = true, per_customer_code = true,
    code_max_uses = true, starts_at = true, ends_at = true, tz_offset = true,
    redeemed = true, discount_given = true,
}

local LIST_FIELDS = {
    include_skus = true, exclude_skus = true, include_categories = true,
    exclude_categories = true,
}

local function campaign_get(keys)
    if not string.match(keys[1], '^({[^}]+}):k:') then return bad_key() end
    local all = redis.call('HGETALL', keys[1])
    if #all == 0 then return nil end
    local h = {}
    for i = 1, #all, 2 do h[all[i]] = all[i + 1] end
    local r = {}
    for _, name in ipairs(CAMPAIGN_FIELDS) do
        local v = h[name]
        if v or name == 'redeemed' or name == 'discount_given' then
            v = v or '0'
            if INT_FIELDS[name] then
                v = tonumber(v)
            elseif name == 'hours' then
                local a, b = string.match(v, '^(%d+)-(%d+)$')
                a, b = tonumber(a), tonumber(b)
                v = string.format('%02d:%02d-%02d:%02d', math.floor(a / 60),
                                  a % 60, math.floor(b / 60), b % 60)
            elseif LIST_FIELDS[name] then
                v = v:sub(2, -2)
            end
            r[#r + 1] = name; r[#r + 1] = v
        end
    end
    if h.name then
        table.insert(r, 1, h.name); table.insert(r, 1, 'name')
    end
    return r
end

local CODE_SET = {
    campaign = v_string,
    status = v_enum({active = 1, disabled = 1}, 'active|disabled'),
    max_uses = v_uint_opt,             -- "" clears: the campaign's applies
    customer = v_string,
    balance = v_uint,
    starts_at = v_uint_opt, ends_at = v_uint_opt,
}
local CODE_FIELD = {
    campaign = 'k', status = 's', max_uses = 'm', customer = 'c',
    balance = 'b', starts_at = 'f', ends_at = 't',
}

-- Codes are stored the way the module looks them up: upper case, with
-- the spaces, tabs and dashes people type around them dropped.
local function normalize_code(code)
    return (string.upper((string.gsub(code, '[ \t%-]', ''))))
end

-- {NS}:c:<code> as given -> tag, normalized code, its key
local function code_key(key)
    local tag, code = string.match(key, '^({[^}]+}):c:(.*)$')
    if not tag then return nil end
    code = normalize_code(code)
    return tag, code, tag .. ':c:' .. code
end

local function code_set(keys, args)
    local tag, code, ckey = code_key(keys[1])
    if not tag then return bad_key() end
    if bad_id(code) then
        return invalid('code', '1..64 printable ASCII characters')
    end
    local new, order = parse_fields(args, CODE_SET)
    if not new then return order end
    if new.campaign == false then return invalid('campaign', 'required') end

    local old, obkey = code_read(tag, ckey, code)
    local create = not old[1]
    local camp = new.campaign or old[1]
    if not camp then return invalid('campaign', 'required on create') end
    local k = redis.call('HMGET', tag .. ':k:' .. camp, 'kind', 'value')
    if not k[1] then return invalid('campaign', 'not found') end
    local gift = k[1] == 'gift_card'
    if new.balance and not gift then
        return invalid('balance', 'only for gift_card campaigns')
    end
    local err = check_window(merged(new, old[7], 'starts_at'),
                             merged(new, old[8], 'ends_at'), 'ends_at')
    if err then return err end

    if new.status then
        new.status = new.status == 'disabled' and 'd' or false
    end

    -- a compact code (bulk-issued) stays compact while all it sets is its
    -- campaign and customer (or clears what it does not have); a code made
    -- here is a hash
    if not gift and obkey then
        local only = true
        for name, v in pairs(new) do
            if v and name ~= 'campaign' and name ~= 'customer' then
                only = false
            end
        end
        local cust = new.customer
        if cust == nil then cust = old[5] end
        if only and compactable(camp, cust or nil) then
            redis.call('HSET', bucket_key(tag, code), code,
                       compact_value(tonumber(old[4]) or 0, camp, cust))
            return 'OK'
        end
    end
    if obkey then
        -- it needs a hash now: move what it had there
        redis.call('HDEL', obkey, code)
        local had = {'k', old[1], 'u', old[4]}
        if old[5] then had[5] = 'c'; had[6] = old[5] end
        redis.call('HSET', ckey, unpack(had))
    end

    if create and gift then
        if not new.balance then
            if not k[2] then
                return invalid('balance', 'required (campaign has no value)')
            end
            order[#order + 1] = 'balance'
            new.balance = k[2]
        end
        order[#order + 1] = 'b0'
        new.b0 = new.balance
    end
    write_fields(ckey, new, order, CODE_FIELD)
    return 'OK'
end

local function code_get(keys)
    local tag, code, ckey = code_key(keys[1])
    if not tag then return bad_key() end
    local c = redis.call('HMGET', ckey, 'k', 's', 'm', 'u', 'c', 'b', 'b0',
                         'f', 't')
    if not c[1] then
        local cc = code_read(tag, ckey, code)
        if not cc[1] then return nil end
        c = {cc[1], false, false, cc[4], cc[5], false, false, false, false}
    end
    local r = {'code', code, 'campaign', c[1],
               'status', c[2] == 'd' and 'disabled' or 'active'}
    local function add(name, v, int)
        if v then
            r[#r + 1] = name; r[#r + 1] = int and tonumber(v) or v
        end
    end
    add('max_uses', c[3], true)
    add('used', c[4] or '0', true)
    add('customer', c[5])
    add('balance', c[6], true)
    add('initial_balance', c[7], true)
    add('starts_at', c[8], true)
    add('ends_at', c[9], true)
    return r
end

local function code_del(keys)
    local tag, code, ckey = code_key(keys[1])
    if not tag then return bad_key() end
    return redis.call('DEL', ckey)
           + redis.call('HDEL', bucket_key(tag, code), code)
end

local ENTRY_INT = {amount = true, discount = true, balance = true}

local function redemption_get(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):log$')
    if not tag then return bad_key() end
    local id = args[1]
    if not id then return bad_args() end
    local e = redemption(keys[1], id)
    if not e then return nil end
    local r = {'redemption_id', id}
    for i = 1, #e, 2 do
        local v = e[i + 1]
        if v ~= '' then
            r[#r + 1] = e[i]; r[#r + 1] = ENTRY_INT[e[i]] and tonumber(v) or v
        end
    end
    local rb = redis.call('HMGET', tag .. ':rb:' .. id, 'amt', 'done', 'why')
    local amt = tonumber(rb[1]) or 0
    local status
    if rb[2] then
        status = rb[3] == 'release' and 'released'
                 or rb[3] == 'expire' and 'expired' or 'rolled_back'
    elseif amt > 0 then
        status = 'partially_rolled_back'
    elseif e[22] == 'hold' and redis.call('ZSCORE', tag .. ':hz', id) then
        -- a reservation not yet confirmed (a due one is swept, at the
        -- next write, as expired)
        status = 'reserved'
    else
        status = 'redeemed'
    end
    r[#r + 1] = 'rolled_back'; r[#r + 1] = amt
    r[#r + 1] = 'status'; r[#r + 1] = status
    return r
end

local SETTINGS_FIELDS = {
    idem_ttl = function(s)
        local n = uint(s)
        if n and n >= 1 and n <= 31536000 then
            return string.format('%d', n)
        end
        return nil, 'expected seconds 1..31536000'
    end,
    stream_maxlen = v_uint,
}

local function settings_set(keys, args)
    if not string.match(keys[1], '^({[^}]+}):cfg$') then return bad_key() end
    local new, order = parse_fields(args, SETTINGS_FIELDS)
    if not new then return order end
    write_fields(keys[1], new, order)
    SETTINGS[string.match(keys[1], '^({[^}]+}):cfg$')] = nil
    return 'OK'
end

local function settings_get(keys)
    local tag = string.match(keys[1], '^({[^}]+}):cfg$')
    if not tag then return bad_key() end
    local maxlen, ttl = settings(tag)
    return {'idem_ttl', ttl, 'stream_maxlen', maxlen}
end


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
    if read_only then return bad_args() end

    local refusal, status, name = limits_apply(tag, code, args, nargs + 1)
    if refusal then return refusal end
    if refusal == false then return bad_args() end

    local r = evaluate_code(keys, args, redeem, tag, code, n, nargs, hold_ms)
    if type(r) == 'table' then
        if GUESS[r[1]] then lockout_count(tag, args, nargs + 1) end
        limit_pairs(r, status, name)
    end
    return r
end

-- FCALL voucher_reserve 1 {NS}:c:<code> hold_ms <the ARGV of redeem>
-- hold_ms: 1000 .. 86400000
local function reserve(keys, args)
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
local function guess(keys, args)
    local tag, code = string.match(keys[1], '^({[^}]+}):c:(.+)$')
    if not tag then return bad_key() end
    if #args < 1 then return bad_args() end
    local refusal, status, name = limits_apply(tag, code, args, 1)
    if refusal then return refusal end
    if refusal == false then return bad_args() end

    lockout_count(tag, args, 1)
    return limit_pairs({'not_found', 'code', code}, status, name)
end


---------------------------------------------------------------- registration

-- Every function starts with CLOCK_S = nil (see now_s): reg() wraps the
-- function in a closure that does it, and the hot paths, whose closures
-- exist anyway, do it themselves (hot = true), saving a call frame.
local function reg(name, fn, ro, hot)
    local cb = fn
    if not hot then
        cb = function(k, a) CLOCK_S = nil; return fn(k, a) end
    end
    redis.register_function{function_name = name, callback = cb,
                            flags = ro and {'no-writes'} or {}}
end

reg('voucher_version', function() return VERSION end, true)
reg('voucher_validate',
    function(k, a) CLOCK_S = nil; return evaluate(k, a, false, true) end,
    true, true)
-- validate with limits: they write (GCRA state, failure counts)
reg('voucher_validate_limited',
    function(k, a) CLOCK_S = nil; return evaluate(k, a, false) end,
    false, true)
reg('voucher_guess', guess)
reg('voucher_redeem',
    function(k, a) CLOCK_S = nil; return evaluate(k, a, true) end,
    false, true)
reg('voucher_rollback', rollback)
reg('voucher_reserve', reserve)
reg('voucher_confirm',
    function(k, a) CLOCK_S = nil; return settle(k, a, true) end, false, true)
reg('voucher_release',
    function(k, a) CLOCK_S = nil; return settle(k, a, false) end, false, true)
reg('voucher_sweep', function(k)
    local tag = string.match(k[1] or '', '^({[^}]+}):hz$')
    if not tag then return bad_key() end
    NEXT[tag] = nil
    return sweep(tag) or 0
end)
reg('voucher_campaign_set', campaign_set)
reg('voucher_campaign_get', campaign_get, true)
reg('voucher_code_set', code_set)
reg('voucher_code_get', code_get, true)
reg('voucher_code_del', code_del)
reg('voucher_redemption_get', redemption_get, true)
reg('voucher_settings_set', settings_set)
reg('voucher_settings_get', settings_get, true)


-------------------------------------------------------------------------------
-- WORKER SECTION (voucherd / voucherctl).  Added for the companion worker;
-- everything below only adds functions and uses the helpers above as they
-- are.  Nothing above this line is changed by the worker.
-------------------------------------------------------------------------------

-- voucher_codes_add: many codes of one campaign in one atomic call, with
-- the validation of voucher_code_set.
--
-- KEYS[1]  {NS}:k:<campaign>
-- ARGV     mode npairs [field value]*npairs columns row...
--   mode     "new"   every code must be new, else nothing is written;
--            "skip"  codes that exist (or repeat in the batch) are left as
--                    they are and returned;
--            "check" validate only: write nothing, return what "new" would
--   fields   voucher_code_set fields (not campaign) set on every code
--   columns  "code" then per-row fields, comma-separated ("code,customer");
--            codes are normalized as voucher_code_set does
--   rows     the column values, row after row; an empty value leaves
--            that field unset
-- Returns  {added, {row, ...}}: how many codes were written, and the rows
--          (1-based) left out because their code exists or repeats; an
--          error names the field and the row, and then nothing is written.

-- codes are stored as the module looks them up: upper case, without the
-- spaces, tabs and dashes people type (as voucher_code_set and the C
-- voucher_code_normalize do)
local function row_err(r, name, why)
    return redis.error_reply('ERR invalid_field ' .. name .. ': ' .. why
                             .. ' (row ' .. r .. ')')
end

-- the HSET field/value list of a new code (after 'k'), as voucher_code_set
-- would store it; or nil and the error
local function new_code_fields(new, order, gift, default_balance, r)
    if new.balance and not gift then
        return nil, row_err(r, 'balance', 'only for gift_card campaigns')
    end
    if new.starts_at and new.ends_at
       and tonumber(new.ends_at) <= tonumber(new.starts_at) then
        return nil, row_err(r, 'ends_at', 'ends_at must be after starts_at')
    end
    local set, bal = {}, new.balance
    for _, name in ipairs(order) do
        local v = new[name]
        if name == 'status' then v = v == 'disabled' and 'd' or false end
        if v and name ~= 'balance' then
            set[#set + 1] = CODE_FIELD[name]; set[#set + 1] = v
        end
    end
    if gift then
        bal = bal or default_balance
        if not bal then
            return nil, row_err(r, 'balance',
                                'required (campaign has no value)')
        end
    end
    if bal then
        set[#set + 1] = 'b'; set[#set + 1] = bal
        set[#set + 1] = 'b0'; set[#set + 1] = bal
    end
    return set
end

local function codes_add(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):k:(.+)$')
    if not tag then return bad_key() end
    local mode = args[1]
    if mode ~= 'new' and mode ~= 'skip' and mode ~= 'check' then
        return redis.error_reply('ERR bad_args mode must be new|skip|check')
    end
    local np = uint(args[2])
    if not np or #args < 3 + 2 * np then return bad_args() end

    local k = redis.call('HMGET', keys[1], 'kind', 'value')
    if not k[1] then return invalid('campaign', 'not found') end
    local gift = k[1] == 'gift_card'

    -- the fields common to every row
    local common, corder = {}, {}
    if np > 0 then
        local err
        common, err = parse_fields({unpack(args, 3, 2 + 2 * np)}, CODE_SET)
        if not common then return err end
        corder = err
        if common.campaign ~= nil then
            return invalid('campaign', 'given by the key, not a field')
        end
    end

    local cols = {}
    for c in string.gmatch(args[3 + 2 * np], '[^,]+') do
        if c ~= 'code' and (not CODE_SET[c] or c == 'campaign') then
            return redis.error_reply('ERR unknown_field ' .. c)
        end
        cols[#cols + 1] = c
    end
    if cols[1] ~= 'code' then
        return redis.error_reply('ERR bad_args the first column is code')
    end
    local first, ncol = 4 + 2 * np, #cols
    if (#args - first + 1) % ncol ~= 0 then return bad_args() end
    local nrows = (#args - first + 1) / ncol

    -- without per-row fields, every code gets the same fields
    local shared
    if ncol == 1 then
        local err
        shared, err = new_code_fields(common, corder, gift, k[2], 1)
        if not shared then return err end
        table.insert(shared, 1, camp)
        table.insert(shared, 1, 'k')
    end

    -- validate every row before writing anything
    local rows, seen, left = {}, {}, {}
    for r = 1, nrows do
        local base = first + (r - 1) * ncol
        local code = normalize_code(args[base])
        args[base] = code
        if bad_id(code) then
            return row_err(r, 'code', '1..64 printable ASCII characters')
        end
        local dup = seen[code]
        if dup and mode ~= 'skip' then
            return row_err(r, 'code', 'twice in the batch')
        end
        seen[code] = true

        local set = shared
        if not set then
            local new, order = {}, {}
            for _, name in ipairs(corder) do
                new[name] = common[name]; order[#order + 1] = name
            end
            for c = 2, ncol do
                -- an empty cell leaves the field unset
                local name, s = cols[c], args[base + c - 1]
                if s ~= '' then
                    local val, why = CODE_SET[name](s)
                    if val == nil then return row_err(r, name, why) end
                    if new[name] == nil then order[#order + 1] = name end
                    new[name] = val
                end
            end
            local err
            set, err = new_code_fields(new, order, gift, k[2], r)
            if not set then return err end
            table.insert(set, 1, camp)
            table.insert(set, 1, 'k')
        end
        rows[r] = set
    end

    -- Writes row r unless its code exists, in either form; true when
    -- written.  HSETNX both checks and writes a compact one.
    local function put(r)
        local code = args[first + (r - 1) * ncol]
        local ckey = tag .. ':c:' .. code
        local v = compact_of(rows[r])
        if v then
            return redis.call('EXISTS', ckey) == 0
                   and redis.call('HSETNX', bucket_key(tag, code), code, v)
                       == 1
        end
        if code_exists(tag, ckey, code) then return false end
        redis.call('HSET', ckey, unpack(rows[r]))
        return true
    end

    -- skip: codes that exist are left as they are
    local added = 0
    if mode == 'skip' then
        for r = 1, nrows do
            if put(r) then added = added + 1 else left[#left + 1] = r end
        end
        return {added, left}
    end

    if mode == 'check' then
        for r = 1, nrows do
            local code = args[first + (r - 1) * ncol]
            if code_exists(tag, tag .. ':c:' .. code, code) then
                return row_err(r, 'code', 'exists')
            end
        end
        return {nrows, left}
    end

    -- new: all or nothing.  The call is atomic, so a code found to exist
    -- half-way is answered by taking back what this call wrote.
    for r = 1, nrows do
        if not put(r) then
            for w = 1, r - 1 do
                local code = args[first + (w - 1) * ncol]
                redis.call('DEL', tag .. ':c:' .. code)
                redis.call('HDEL', bucket_key(tag, code), code)
            end
            return row_err(r, 'code', 'exists')
        end
    end
    return {nrows, left}
end

reg('voucher_codes_add', codes_add)

-- voucher_codes_page: one page of the codes of a campaign, in either form
-- (hash or compact), for export and reports.
--
-- KEYS[1]  {NS}:k:<campaign>
-- ARGV     cursor count      (a SCAN over the namespace's code keys)
-- Returns  {next cursor, {{code, k, s, m, u, c, b, b0, f, t}, ...}}; "0"
--          when done.  A page may be empty while the cursor goes on.
local function codes_page(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):k:(.+)$')
    if not tag then return bad_key() end
    local cursor, count = args[1], uint(args[2])
    if not (cursor and count) or count < 1 then return bad_args() end
    -- a namespace may hold glob characters: match them as they are
    local pat = string.gsub(tag, '[%*%?%[%]\\]', '\\%0') .. ':c*'
    local res = redis.call('SCAN', cursor, 'MATCH', pat, 'COUNT', count)
    local rows = {}
    local cpre, bpre = tag .. ':c:', tag .. ':cb:'
    for _, key in ipairs(res[2]) do
        if string.sub(key, 1, #cpre) == cpre then
            local c = redis.call('HMGET', key, 'k', 's', 'm', 'u', 'c', 'b',
                                 'b0', 'f', 't')
            if c[1] == camp then
                table.insert(c, 1, string.sub(key, #cpre + 1))
                rows[#rows + 1] = c
            end
        elseif string.sub(key, 1, #bpre) == bpre then
            local h = redis.call('HGETALL', key)
            for i = 1, #h, 2 do
                local u, k, cust = compact_parse(h[i + 1])
                if k == camp then
                    rows[#rows + 1] = {h[i], k, false, false, u,
                                       cust or false, false, false, false,
                                       false}
                end
            end
        end
    end
    return {res[1], rows}
end

reg('voucher_codes_page', codes_page, true)


-- Members (voucherd, voucherctl members).  {NS}:m:<id> holds a member:
--   name phone email line birthday tier tags signup first last count spend
--   ev (the last purchase event applied)
-- and the set {NS}:members lists the ids.

local function days_from_civil(y, m, d)
    -- days since 1970-01-01 of a proleptic Gregorian date
    if m <= 2 then y = y - 1 end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = math.floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

local MDAYS = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

local function valid_day(y, m, d)
    if m < 1 or m > 12 or d < 1 or d > MDAYS[m] then return false end
    if y and m == 2 and d == 29
       and not (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then
        return false
    end
    return true
end

-- unix seconds, or YYYY-MM-DD (midnight UTC)
local function v_when(s)
    if uint(s) then return (s:gsub('^0+(%d)', '%1')) end
    local y, m, d = string.match(s, '^(%d%d%d%d)%-(%d%d)%-(%d%d)$')
    if y then
        y, m, d = tonumber(y), tonumber(m), tonumber(d)
        if valid_day(y, m, d) and y >= 1970 then
            return string.format('%d', days_from_civil(y, m, d) * 86400)
        end
    end
    return nil, 'expected unix seconds or YYYY-MM-DD'
end

-- YYYY-MM-DD or MM-DD, stored as given (the year is optional)
local function v_birthday(s)
    local y, m, d = string.match(s, '^(%d%d%d%d)%-(%d%d)%-(%d%d)$')
    if not y then
        m, d = string.match(s, '^(%d%d)%-(%d%d)$')
    end
    if m and valid_day(tonumber(y), tonumber(m), tonumber(d)) then
        return s
    end
    return nil, 'expected YYYY-MM-DD or MM-DD'
end

-- digits, an optional leading +; spaces, dashes, dots, brackets dropped
local function v_phone(s)
    local p = string.gsub(s, '[ %-%.%(%)]', '')
    if string.find(p, '^%+?%d+$') then
        local n = #p - (string.sub(p, 1, 1) == '+' and 1 or 0)
        if n >= 6 and n <= 15 then return p end
    end
    return nil, 'expected a phone number of 6-15 digits'
end

local function v_email(s)
    if #s <= 254 and string.find(s, '^[^@%s]+@[^@%s]+$') then return s end
    return nil, 'expected an address like name@example.com'
end

local function v_token(s)
    if #s <= 128 and string.find(s, '^[!-~]+$') then return s end
    return nil, '1..128 printable ASCII characters'
end

-- a comma-separated list of tags, each a token
local function v_tags(s)
    local list, why = v_list(s)
    if not list then return nil, why end
    if not list or #list > 1024 or string.find(list, '[%s]') then
        return nil, 'a comma-separated list of words'
    end
    return list
end

local MEMBER_SET = {
    name = v_string, phone = v_phone, email = v_email, line = v_token,
    birthday = v_birthday, tier = v_token, tags = v_tags,
    signup = v_when, first_purchase = v_when, last_purchase = v_when,
    purchases = v_uint, spend = v_uint,
}
local MEMBER_FIELD = {
    first_purchase = 'first', last_purchase = 'last', purchases = 'count',
}

-- a member id: 1..128 bytes, no control characters or spaces
local function bad_member(id)
    return not (#id >= 1 and #id <= 128 and not string.find(id, '[%c ]'))
end

-- voucher_members_add: many members in one atomic call.
-- KEYS[1]  {NS}:members
-- ARGV     mode columns row...
--   mode     "write", or "check" (validate only)
--   columns  "id" then member fields, comma-separated
--   rows     the values; an empty value leaves that field as it is
-- A member that exists is updated field by field (its purchase history
-- is kept unless the row sets it).  Returns the number of rows; an error
-- names the field and the row, and then nothing is written.
local function members_add(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):members$')
    if not tag then return bad_key() end
    local mode = args[1]
    if mode ~= 'write' and mode ~= 'check' then
        return redis.error_reply('ERR bad_args mode must be write|check')
    end
    local cols = {}
    for c in string.gmatch(args[2] or '', '[^,]+') do
        if c ~= 'id' and not MEMBER_SET[c] then
            return redis.error_reply('ERR unknown_field ' .. c)
        end
        cols[#cols + 1] = c
    end
    if cols[1] ~= 'id' then
        return redis.error_reply('ERR bad_args the first column is id')
    end
    local ncol = #cols
    if (#args - 2) % ncol ~= 0 then return bad_args() end
    local nrows = (#args - 2) / ncol

    local rows, seen = {}, {}
    for r = 1, nrows do
        local base = 3 + (r - 1) * ncol
        local id = args[base]
        if bad_member(id) then
            return row_err(r, 'id', '1..128 bytes, no spaces or controls')
        end
        if seen[id] then return row_err(r, 'id', 'twice in the batch') end
        seen[id] = true
        local set = {}
        for c = 2, ncol do
            local name, s = cols[c], args[base + c - 1]
            if s ~= '' then
                local v, why = MEMBER_SET[name](s)
                if v == nil then return row_err(r, name, why) end
                if v then
                    set[#set + 1] = MEMBER_FIELD[name] or name
                    set[#set + 1] = v
                end
            end
        end
        rows[r] = {id, set}
    end
    if mode == 'check' then return nrows end

    for _, row in ipairs(rows) do
        if #row[2] > 0 then
            redis.call('HSET', tag .. ':m:' .. row[1], unpack(row[2]))
        else
            redis.call('HSETNX', tag .. ':m:' .. row[1], 'tags', '')
        end
        redis.call('SADD', keys[1], row[1])
    end
    return nrows
end

-- stream ids "ms-seq" in order
local function id_after(a, b)
    local am, as = string.match(a, '^(%d+)%-(%d+)$')
    local bm, bs = string.match(b, '^(%d+)%-(%d+)$')
    am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
    return am > bm or (am == bm and as > bs)
end

-- voucher_member_purchase: a purchase event, applied once.
-- KEYS[1]  {NS}:m:<id>
-- ARGV     event_id (a stream id) when (unix seconds) amount
-- Returns 1 when applied, 0 when this event (or a later one) was already.
local function member_purchase(keys, args)
    local tag, id = string.match(keys[1], '^({[^}]+}):m:(.+)$')
    if not tag then return bad_key() end
    local ev, when, amount = args[1], uint(args[2]), uint(args[3])
    if not (ev and string.find(ev, '^%d+%-%d+$') and when and amount) then
        return bad_args()
    end
    if bad_member(id) then return invalid('id', '1..128 bytes') end
    local m = redis.call('HMGET', keys[1], 'ev', 'first', 'last', 'count',
                         'spend')
    if m[1] and not id_after(ev, m[1]) then return 0 end
    local first, last = tonumber(m[2]), tonumber(m[3])
    if not first or when < first then first = when end
    if not last or when > last then last = when end
    local spend = (tonumber(m[5]) or 0) + amount
    if spend > MAXINT then spend = MAXINT end
    redis.call('HSET', keys[1], 'ev', ev, 'first', first, 'last', last,
               'count', (tonumber(m[4]) or 0) + 1, 'spend', spend)
    redis.call('SADD', tag .. ':members', id)
    return 1
end

reg('voucher_members_add', members_add)
reg('voucher_member_purchase', member_purchase)


-- Automations and deliveries (voucherd).
--
--   {NS}:autos             set of campaigns that have an automation
--   {NS}:a:<campaign>      hash: def (JSON, checked by voucherctl), since
--                          (runs before are not made up), last (the last
--                          run planned), plan_run/plan_lease/plan_owner
--   {NS}:d:<campaign>:<run> hash: member -> delivery record (JSON:
--                          s status, a attempts, c code, ch channel,
--                          e error, o owner, x/k cancel after/on)
--   {NS}:queue             zset: "campaign TAB run TAB member" -> due (ms)
--   {NS}:dl:<campaign>     stream, the delivery log: run member status
--                          channel code attempt error
--   {NS}:dead              stream, the dead letters
--
-- A claimed delivery stays in the queue, due again when its lease ends:
-- a worker killed mid-send leaves it to be claimed again, never lost.

local DONE = {sent = true, dead = true, cancelled = true, skipped = true}

local function split_item(item)
    return string.match(item, '^([^\t]+)\t([^\t]+)\t(.+)$')
end

local function dlog(tag, camp, run, member, rec, status, err)
    redis.call('XADD', tag .. ':dl:' .. camp, '*', 'run', run,
               'member', member, 'status', status, 'channel', rec.ch or '',
               'code', rec.c or '', 'attempt', rec.a or 0, 'error',
               err or '')
end

-- voucher_auto_set  KEYS[1] {NS}:a:<campaign>  ARGV def since
local function auto_set(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):a:(.+)$')
    if not tag then return bad_key() end
    if #args ~= 2 or not uint(args[2]) then return bad_args() end
    if not pcall(cjson.decode, args[1]) then
        return invalid('def', 'not JSON')
    end
    if redis.call('EXISTS', tag .. ':k:' .. camp) == 0 then
        return invalid('campaign', 'not found')
    end
    redis.call('HSET', keys[1], 'def', args[1])
    redis.call('HSETNX', keys[1], 'since', args[2])
    redis.call('SADD', tag .. ':autos', camp)
    return 'OK'
end

-- voucher_auto_del  KEYS[1] {NS}:a:<campaign>
local function auto_del(keys)
    local tag, camp = string.match(keys[1], '^({[^}]+}):a:(.+)$')
    if not tag then return bad_key() end
    redis.call('SREM', tag .. ':autos', camp)
    return redis.call('DEL', keys[1])
end

-- voucher_run_begin  KEYS[1] {NS}:a:<campaign>  ARGV run now owner lease
-- 1: plan this run (a lease for it is held); 0: done or being planned
local function run_begin(keys, args)
    local run, now, owner, lease = uint(args[1]), uint(args[2]), args[3],
        uint(args[4])
    if not (run and now and owner and lease) then return bad_args() end
    local a = redis.call('HMGET', keys[1], 'last', 'plan_run', 'plan_lease',
                         'plan_owner')
    if tonumber(a[1]) and tonumber(a[1]) >= run then return 0 end
    if tonumber(a[2]) == run and (tonumber(a[3]) or 0) > now
       and a[4] ~= owner then
        return 0
    end
    redis.call('HSET', keys[1], 'plan_run', run, 'plan_lease', now + lease,
               'plan_owner', owner)
    return 1
end

-- voucher_run_done  KEYS[1] {NS}:a:<campaign>  ARGV run
local function run_done(keys, args)
    local run = uint(args[1])
    if not run then return bad_args() end
    local last = tonumber(redis.call('HGET', keys[1], 'last'))
    if not last or run > last then
        redis.call('HSET', keys[1], 'last', run)
    end
    redis.call('HDEL', keys[1], 'plan_run', 'plan_lease', 'plan_owner')
    return 1
end

-- voucher_run_add: members of a run, each with its code, queued once.
-- KEYS[1]  {NS}:a:<campaign>
-- ARGV     run due_ms channel mode cancel_on cancel_after npairs
--          [code field value]*npairs (member code)...
--   mode   "unique": each code is new, made for its member (customer);
--          "shared": the code exists and is the same for everybody
-- Returns {queued, already, {member whose code collided, ...}}: those
-- are made again with another code.
local function run_add(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):a:(.+)$')
    if not tag then return bad_key() end
    local run, due, channel, mode, con, cafter =
        args[1], uint(args[2]), args[3], args[4], args[5], args[6]
    local np = uint(args[7])
    if not (run and due and np and (mode == 'unique' or mode == 'shared'))
       or string.find(run, '\t') then
        return bad_args()
    end
    local first = 8 + 2 * np
    if (#args - first + 1) % 2 ~= 0 then return bad_args() end

    local k = redis.call('HMGET', tag .. ':k:' .. camp, 'kind', 'value')
    if not k[1] then return invalid('campaign', 'not found') end
    local shared
    if mode == 'unique' then
        local common, order = {}, {}
        if np > 0 then
            common, order = parse_fields({unpack(args, 8, first - 1)},
                                         CODE_SET)
            if not common then return order end
        end
        local err
        shared, err = new_code_fields(common, order, k[1] == 'gift_card',
                                      k[2], 1)
        if not shared then return err end
    end

    local dkey = tag .. ':d:' .. camp .. ':' .. run
    local queued, already, collided = 0, 0, {}
    for i = first, #args, 2 do
        local member, code = args[i], args[i + 1]
        if bad_member(member) then
            return invalid('member', '1..128 bytes, no spaces or controls')
        end
        if redis.call('HEXISTS', dkey, member) == 1 then
            already = already + 1
        else
            local ok = true
            if mode == 'unique' then
                code = normalize_code(code)
                if bad_id(code) then return invalid('code', 'bad code') end
                local ckey = tag .. ':c:' .. code
                if code_exists(tag, ckey, code) then
                    ok = false
                    collided[#collided + 1] = member
                elseif #shared == 0 and compactable(camp, member) then
                    redis.call('HSET', bucket_key(tag, code), code,
                               compact_value(0, camp, member))
                else
                    redis.call('HSET', ckey, 'k', camp, 'c', member)
                    if #shared > 0 then
                        redis.call('HSET', ckey, unpack(shared))
                    end
                end
            end
            if ok then
                local rec = {s = 'queued', a = 0, c = code, ch = channel}
                if con ~= '' then rec.k = con; rec.x = tonumber(cafter) end
                redis.call('HSET', dkey, member, cjson.encode(rec))
                redis.call('ZADD', tag .. ':queue', 'NX', due,
                           camp .. '\t' .. run .. '\t' .. member)
                dlog(tag, camp, run, member, rec, 'queued')
                queued = queued + 1
            end
        end
    end
    return {queued, already, collided}
end

-- voucher_delivery_claim  KEYS[1] {NS}:queue  ARGV now_ms lease_ms owner max
-- Returns {item, attempt, code, channel}... of the deliveries now this
-- owner's; a delivery whose cancel condition holds is cancelled instead.
local function delivery_claim(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):queue$')
    if not tag then return bad_key() end
    local now, lease, owner, max = uint(args[1]), uint(args[2]), args[3],
        uint(args[4])
    if not (now and lease and owner and max) then return bad_args() end
    local out = {}
    local items = redis.call('ZRANGEBYSCORE', keys[1], '-inf', now,
                             'LIMIT', 0, max)
    for _, item in ipairs(items) do
        local camp, run, member = split_item(item)
        local dkey = camp and (tag .. ':d:' .. camp .. ':' .. run)
        local raw = dkey and redis.call('HGET', dkey, member)
        local rec = raw and cjson.decode(raw)
        if not rec or DONE[rec.s] then
            redis.call('ZREM', keys[1], item)
        elseif rec.k == 'purchase' and (tonumber(redis.call('HGET',
                   tag .. ':m:' .. member, 'last')) or -1) >= rec.x then
            rec.s = 'cancelled'
            redis.call('HSET', dkey, member, cjson.encode(rec))
            redis.call('ZREM', keys[1], item)
            dlog(tag, camp, run, member, rec, 'cancelled',
                 'a purchase after the trigger')
        else
            rec.s = 'sending'
            rec.a = (rec.a or 0) + 1
            rec.o = owner
            redis.call('HSET', dkey, member, cjson.encode(rec))
            redis.call('ZADD', keys[1], now + lease, item)
            out[#out + 1] = {item, rec.a, rec.c or '', rec.ch or ''}
        end
    end
    return out
end

-- voucher_delivery_done  KEYS[1] {NS}:queue
-- ARGV  item owner outcome (sent|retry|dead|skipped) next_due_ms error
-- 1: recorded; 0: the claim was lost (its lease ended, another has it)
local function delivery_done(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):queue$')
    if not tag then return bad_key() end
    local item, owner, outcome, due, err = args[1], args[2], args[3],
        uint(args[4]), args[5] or ''
    local camp, run, member = split_item(item or '')
    if not (camp and owner and due) then return bad_args() end
    local dkey = tag .. ':d:' .. camp .. ':' .. run
    local raw = redis.call('HGET', dkey, member)
    local rec = raw and cjson.decode(raw)
    if not rec or rec.s ~= 'sending' or rec.o ~= owner then return 0 end
    if outcome == 'retry' then
        rec.s = 'failed'
        redis.call('ZADD', keys[1], due, item)
        dlog(tag, camp, run, member, rec, 'failed', err)
    elseif outcome == 'sent' or outcome == 'dead' or outcome == 'skipped' then
        rec.s = outcome
        redis.call('ZREM', keys[1], item)
        dlog(tag, camp, run, member, rec, outcome, err)
        if outcome == 'dead' then
            redis.call('XADD', tag .. ':dead', '*', 'campaign', camp,
                       'run', run, 'member', member, 'channel', rec.ch or '',
                       'code', rec.c or '', 'attempt', rec.a, 'error', err)
        end
    else
        return bad_args()
    end
    rec.e = err ~= '' and err or nil
    rec.o = nil
    redis.call('HSET', dkey, member, cjson.encode(rec))
    return 1
end

-- voucher_delivery_release  KEYS[1] {NS}:queue  ARGV item owner now_ms
-- gives back a claimed delivery that was not started (SIGTERM)
local function delivery_release(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):queue$')
    if not tag then return bad_key() end
    local item, owner, now = args[1], args[2], uint(args[3])
    local camp, run, member = split_item(item or '')
    if not (camp and now) then return bad_args() end
    local dkey = tag .. ':d:' .. camp .. ':' .. run
    local raw = redis.call('HGET', dkey, member)
    local rec = raw and cjson.decode(raw)
    if not rec or rec.s ~= 'sending' or rec.o ~= owner then return 0 end
    rec.s = 'queued'
    rec.a = rec.a - 1
    rec.o = nil
    redis.call('HSET', dkey, member, cjson.encode(rec))
    redis.call('ZADD', keys[1], now, item)
    return 1
end

reg('voucher_auto_set', auto_set)
reg('voucher_auto_del', auto_del)
reg('voucher_run_begin', run_begin)
reg('voucher_run_done', run_done)
reg('voucher_run_add', run_add)
reg('voucher_delivery_claim', delivery_claim)
reg('voucher_delivery_done', delivery_done)
reg('voucher_delivery_release', delivery_release)
