------------------------------------------------------------ validate, redeem

local CAMPAIGN_FIELDS = {
    'status', 'kind', 'value', 'cap', 'min_amount',                 --  1..5
    'max_redemptions', 'max_discount', 'per_customer',              --  6..8
    'per_customer_code', 'code_max_uses', 'currency',               --  9..11
    'starts_at', 'ends_at', 'days', 'hours', 'tz_offset',           -- 12..16
    'include_skus', 'exclude_skus', 'include_categories',           -- 17..19
    'exclude_categories', 'free_sku', 'redeemed', 'discount_given', -- 20..23
    'tiers',                                                        -- 24
    -- the cart's (redis/lib/cart.lua): not read by a single-code call
    'channels', 'stacking', 'stack_category', 'stack_priority',     -- 25..28
    'stack_cap', 'auto_apply',                                      -- 29..30
    -- rules (redis/lib/rules.lua): "rules" is set when any of the others is
    'rules', 'customer_uses_per', 'customer_amount_per',            -- 31..33
    'customer_amount_max', 'steps', 'buy_qty', 'get_qty',           -- 34..37
    'conditions',                                                   -- 38
}
-- the fields above that are numbers (the cache keeps them converted)
local CAMPAIGN_NUMBERS = {3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 16, 28, 29, 34,
                          36, 37}

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
-- {reason, k, v, ...}.  redis/PROTOCOL.md is the contract with the C side.
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
-- pts: loyalty points to pay with (limits.lua's "p<N>"), else nil
-- meta: the request's business data (RU.meta), for a campaign's conditions
local function evaluate_code(keys, args, redeem, tag, code, n, nargs, hold_ms,
                             pts, meta)
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
                         .. '\0' .. table.concat(args, '\0', 6, nargs)
                         .. (pts and '\0p' .. dec(pts) or '')
                         .. (meta and '\0' .. meta.raw or ''))
        local r = replay(ikey, fp, 'code', code, code, cust, amount)
        if pts and r and r[1] == 'ok' then L.paid_pairs(tag, r) end
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
    local c, bkey = code_read(tag, keys[1], code, keys[2])
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

    -- 6b. campaigns for some loyalty tiers only
    if k[24] then
        if cust == '' then return fail('customer_required', code, camp) end
        if not L.in_tiers(tag, cust, k[24]) then
            return fail('tier_not_eligible', code, camp)
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
        bal = G.avail(keys[1], c[6])
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
    elseif k[31] and RU.KINDS[kind] then
        -- buy_x_get_y, steps, free_shipping
        local why
        d, why = RU.discount(k, kind, args, n, last, base, code, camp)
        if not d then return why end
        base = why
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

    -- 15b. conditions, limits per customer over periods and life
    local rst
    if k[31] then
        local why
        why, rst = RU.check(tag, k, code, camp, cust, d, meta)
        if why then return why end
    end

    -- success
    local uses_left
    if max_uses > 0 then
        uses_left = max_uses - used - (redeem and 1 or 0)
    end
    -- 16. loyalty points paying for what is left
    local lp
    if pts then
        local why
        lp, why = L.pay(tag, cust, pts, amount - d, redeem)
        if not lp then return fail(why, code, camp) end
    end

    if gift and redeem then bal = bal - d end
    if not redeem then
        local r = ok_reply(code, camp, cust, d, kind, value, base, cap,
                           capped_by, amount, uses_left, bal, stop)
        if lp then L.pay_pairs(r, lp, amount - d) end
        return r
    end

    -- redeem: everything was read above in this same atomic call, so one
    -- HSET of the new values replaces two HINCRBYs
    code_uses(keys[1], bkey, code, c, dec(used + 1), gift and dec(bal))
    redis.call('HSET', kkey, 'redeemed', dec(redeemed + 1),
               'discount_given', dec(given + d))
    if cust ~= '' and not hold_ms then
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
                    hold_ms and 'hold' or '', c[9])
    if gift then G.spend(tag, code, keys[1], d, id, c[6]) end
    if rst then RU.take(tag, rst, d, id) end
    local hold_s
    if hold_ms then
        local deadline = now_ms() + hold_ms
        hold_add(tag, id, deadline)
        hold_s = math.ceil(deadline / 1000)
        -- a reservation's customer counters wait for its id: h:<code> lets
        -- the wallet tell a code this hold uses from one used for good
        if cust ~= '' then
            if not ukey then
                ukey = tag .. ':u:' .. cust
                local u = redis.call('HMGET', ukey, 'k:' .. camp,
                                     'c:' .. code)
                nk, nc = tonumber(u[1]) or 0, tonumber(u[2]) or 0
            end
            redis.call('HSET', ukey, 'k:' .. camp, dec(nk + 1),
                       'c:' .. code, dec(nc + 1), 'h:' .. code, id)
        end
        if n > 0 and L.progs[tag] ~= false then
            L.stash(tag, id, args, n, hold_ms)
        end
    end
    if lp then L.paid(tag, lp, id) end
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
    local r = ok_reply(code, camp, cust, d, kind, value, base, cap,
                       capped_by, amount, uses_left, bal, stop, id, hold_s)
    if lp then L.pay_pairs(r, lp, amount - d) end
    return r
end
