---------------------------------------------------------------- wallet

-- A customer's wallet, {NS}:w:<customer>: a sorted set of codes scored by
-- the millisecond (Redis time) each came in, made unique in the wallet (a
-- code added in the same millisecond as the newest takes the next one), so
-- that a page's cursor, the score of its last code, is exact.  Codes come
-- from a delivery voucherd sent (voucher_delivery_done), from the admin
-- functions that give a code to a customer (voucher_code_set and
-- voucher_codes_add with a customer, voucher_wallet_add), and from the
-- customer himself (voucher_wallet_save: the edge's "voucher_api
-- wallet_save").
-- voucher_wallet lists it, newest first, each code with its state, judged
-- by the evaluation a validate runs (evaluate_code), so the two agree.
-- A wallet holds at most W.MAX codes: a save beyond is refused
-- (wallet_full); a delivery or an operator's add drops the oldest instead.
--
-- A reservation made with a customer leaves {NS}:u:<customer> field
-- h:<code> = its redemption id, so that a code it used up shows as
-- "reserved" while the hold lasts, not "used".

W.MAX = 500
W.PAGE = 100                    -- the most codes one page may ask for

-- a customer id as the API takes it: 1..128 bytes, no control characters
function W.bad_customer(s)
    return not (s and #s >= 1 and #s <= 128 and not string.find(s, '%c'))
end

-- Adds code to cust's wallet now; 1 added, 0 there already.  A full
-- wallet drops its oldest code, or with refuse answers false.
function W.add(tag, cust, code, refuse)
    local wkey = tag .. ':w:' .. cust
    if redis.call('ZSCORE', wkey, code) then return 0 end
    if redis.call('ZCARD', wkey) >= W.MAX then
        if refuse then return false end
        redis.call('ZPOPMIN', wkey)
    end
    local t, top = now_ms(), redis.call('ZRANGE', wkey, -1, -1, 'WITHSCORES')
    if top[2] and tonumber(top[2]) >= t then t = tonumber(top[2]) + 1 end
    redis.call('ZADD', wkey, dec(t), code)
    return 1
end

-- a code given to new (a customer, or false: to nobody) that old had
function W.assign(tag, code, old, new)
    if old and old ~= new then
        redis.call('ZREM', tag .. ':w:' .. old, code)
    end
    if new and new ~= old then W.add(tag, new, code) end
end

-- the state a refusal leaves a code in, for its holder; a reason not
-- listed depends on the order (currency, minimum, items, the campaign's
-- budget) or on the day and hour, and leaves the code usable
W.STATE = {
    code_exhausted = 'used', balance_exhausted = 'used',
    customer_limit = 'used', customer_code_limit = 'used',
    expired = 'expired', not_started = 'not_started',
    not_found = 'inactive', code_inactive = 'inactive',
    campaign_inactive = 'inactive', campaign_exhausted = 'inactive',
    customer_mismatch = 'inactive', customer_required = 'inactive',
}

-- The values of an ok_reply() by name (the positional form, read as
-- redis/PROTOCOL.md and ngx_http_voucher_ok.c read it).
function W.okv(r)
    local m = r[2]
    local function bit(b) return math.floor(m / b) % 2 == 1 end
    local v, i = {code = r[3], campaign = r[4]}, 5
    if bit(1) then v.customer = r[5]; i = 6 end
    v.discount, v.kind, i = r[i], r[i + 1], i + 2
    if bit(2) or bit(4) then v.value = r[i]; i = i + 1 end
    v.eligible_amount, i = r[i], i + 1
    if bit(8) then v.cap = r[i]; i = i + 1 end
    if bit(16) then v.capped_by = r[i]; i = i + 1 end
    v.order_amount, v.amount_after, i = r[i], r[i + 1], i + 2
    if bit(32) then v.uses_left = r[i]; i = i + 1 end
    if bit(64) then v.balance = r[i]; i = i + 1 end
    if bit(128) then v.expires_at = r[i]; i = i + 1 end
    if bit(256) then v.redemption_id = r[i]; i = i + 1 end
    if bit(512) then v.hold_expires_at = r[i] end
    return v
end

-- the rules of a campaign (CAMPAIGN_FIELDS' order, numbers converted):
-- evaluate_code's cache when it is current, else read
function W.rules(tag, camp)
    local kkey = tag .. ':k:' .. camp
    local k = CAMPAIGNS[kkey]
    if k and k.rev == redis.call('HGET', kkey, 'rev') then return k end
    k = redis.call('HMGET', kkey, unpack(CAMPAIGN_FIELDS))
    for _, i in ipairs(CAMPAIGN_NUMBERS) do k[i] = tonumber(k[i]) end
    return k
end

-- evaluate_code's answer for code and an order (args: a validate's ARGV
-- without limits, n items); read-only
function W.judge(tag, code, args, n)
    return evaluate_code({tag .. ':c:' .. code}, args, false, tag, code, n,
                         6 + 4 * n, nil, nil, args.meta)
end

-- the reason, campaign and extra pair of a refusal (fail()'s shape)
function W.refusal(r)
    local camp = r[4] == 'campaign' and r[5] or nil
    return r[1], camp, r[6], r[7]
end

-- appends name, value to the pairs t when value is there
function W.put(t, name, value)
    if value ~= nil and value ~= false then
        t[#t + 1] = name; t[#t + 1] = value
    end
end

-- the kind and value pairs of a campaign (a percent's value is its
-- percent_bp, as in a validate's computation)
function W.offer(t, k)
    if not k[2] then return end
    W.put(t, 'kind', k[2])
    if k[2] ~= 'gift_card' and k[3] then
        W.put(t, k[2] == 'percent' and 'percent_bp' or 'value', k[3])
    end
    if (k[5] or 0) > 0 then W.put(t, 'min_amount', k[5]) end
end

-- the live hold of cust's reservation that used code, or nil
function W.held(tag, cust, code)
    local id = redis.call('HGET', tag .. ':u:' .. cust, 'h:' .. code)
    if not id then return nil end
    local deadline = redis.call('ZSCORE', tag .. ':hz', id)
    if deadline and tonumber(deadline) > now_ms() then return id end
end

-- One wallet code as pairs: code, campaign, state (usable, used,
-- reserved, expired, not_started, inactive), why when not usable, its
-- offer, ends_at, uses_left, balance, added_at (seconds; added: its
-- score, ms).
function W.item(tag, cust, code, added)
    added = math.floor(added / 1000)
    local r = W.judge(tag, code, {cust, '0', '', '', '', '0'}, 0)
    local t = {'code', code}
    if r.err then
        -- a campaign of a kind this library does not know
        W.put(t, 'state', 'inactive')
        W.put(t, 'reason', 'campaign_inactive')
        W.put(t, 'added_at', added)
        return t
    end
    local camp, state, why, v
    if r[1] == 'ok' then
        v = W.okv(r)
        camp, state = v.campaign, 'usable'
    else
        local extra
        why, camp, extra = W.refusal(r)
        state = W.STATE[why] or 'usable'
        if state == 'usable' then why = nil end
    end
    W.put(t, 'campaign', camp)
    local id = state == 'used' and W.held(tag, cust, code)
    if id then state, why = 'reserved', nil end
    W.put(t, 'state', state)
    W.put(t, 'reason', why)
    W.put(t, 'redemption_id', id)
    if camp then
        local k = W.rules(tag, camp)
        W.offer(t, k)
        if v then
            W.put(t, 'ends_at', v.expires_at)
            W.put(t, 'uses_left', v.uses_left)
            W.put(t, 'balance', v.balance)
        end
    end
    W.put(t, 'added_at', added)
    return t
end

-- a list the module renders as a JSON array: its first element is the
-- status reply "[]", which no value of ours can be
function W.list(t)
    table.insert(t, 1, {ok = '[]'})
    return t
end

-- voucher_wallet  KEYS[1] {NS}:w:<customer>  ARGV cursor count
-- One page of the wallet, newest first: {ok, customer, c, codes, [items],
-- next_cursor, the score of its last code, or "0" at the end}.  Scores
-- are unique in a wallet, so a page never repeats a code nor misses one
-- while codes are added.  Read-only.
function api.wallet(keys, args)
    local tag, cust = string.match(keys[1], '^({[^}]+}):w:(.+)$')
    if not tag then return bad_key() end
    local cursor, count = args[1], uint(args[2])
    if #args ~= 2 or W.bad_customer(cust) or not count or count < 1
       or count > W.PAGE then
        return bad_args()
    end
    local max = '+inf'
    if cursor ~= '0' then
        if not uint(cursor) then return bad_args() end
        max = '(' .. cursor
    end
    local res = redis.call('ZRANGE', keys[1], max, '-inf', 'BYSCORE', 'REV',
                           'LIMIT', 0, count, 'WITHSCORES')
    local items = {}
    for i = 1, #res, 2 do
        items[#items + 1] = W.item(tag, cust, res[i], tonumber(res[i + 1]))
    end
    local nxt = #items == count and res[#res] or '0'
    return {'ok', 'customer', cust, 'codes', W.list(items),
            'next_cursor', nxt}
end

-- voucher_wallet_save  KEYS[1] {NS}:c:<code>  ARGV customer [limits]
-- The customer saves a code to his wallet: it must exist, be active and
-- be his or nobody's.  The limits are a validate's: a save tells a code
-- that exists from one that does not, so it counts as a guess as a
-- validate does.  {ok, customer, c, added, 1|0, <the code's pairs>}, or
-- a refusal (not_found, code_inactive, customer_mismatch, wallet_full).
function api.wallet_save(keys, args)
    local tag, code = string.match(keys[1], '^({[^}]+}):c:(.+)$')
    if not tag then return bad_key() end
    local cust = args[1]
    if W.bad_customer(cust) then return bad_args() end
    local status, name
    if #args > 1 then
        local refusal
        refusal, status, name = limits_apply(tag, code, args, 2)
        if refusal then return refusal end
        if refusal == false then return bad_args() end
    end
    local r = W.save(tag, keys[1], code, cust)
    if status then
        if GUESS[r[1]] then lockout_count(tag, args, 2) end
        limit_pairs(r, status, name)
    end
    return r
end

function W.save(tag, ckey, code, cust)
    local c = code_read(tag, ckey, code)
    local camp = c[1]
    if not camp then return {'not_found', 'code', code} end
    if c[2] == 'd' then return fail('code_inactive', code, camp) end
    if c[5] and c[5] ~= cust then
        return fail('customer_mismatch', code, camp)
    end
    local added = W.add(tag, cust, code, true)
    if not added then
        return fail('wallet_full', code, camp, 'max_codes', W.MAX)
    end
    local r = {'ok', 'customer', cust, 'added', added}
    local it = W.item(tag, cust, code,
                      tonumber(redis.call('ZSCORE', tag .. ':w:' .. cust,
                                          code)))
    for _, x in ipairs(it) do r[#r + 1] = x end
    return r
end

-- voucher_wallet_add  KEYS[1] {NS}:w:<customer>  ARGV code [full]
-- (operators, the admin API): 1 added, 0 there already.  The code must
-- exist and be this customer's or nobody's.  A full wallet drops its
-- oldest code; with "refuse" as full it answers {wallet_full, code, c,
-- max_codes, n} and changes nothing (the admin API: an operator sees
-- what goes).
function api.wallet_add(keys, args)
    local tag, cust = string.match(keys[1], '^({[^}]+}):w:(.+)$')
    if not tag then return bad_key() end
    local full = args[2]
    if #args < 1 or #args > 2 or (full and full ~= 'refuse') then
        return bad_args()
    end
    if W.bad_customer(cust) then
        return invalid('customer', '1..128 bytes, no control characters')
    end
    local code = normalize_code(args[1])
    local c = code_read(tag, tag .. ':c:' .. code, code)
    if not c[1] then return invalid('code', 'not found') end
    if c[5] and c[5] ~= cust then
        return invalid('code', 'assigned to another customer')
    end
    local added = W.add(tag, cust, code, full)
    if added == false then
        return {'wallet_full', 'code', code, 'max_codes', W.MAX}
    end
    return added
end

-- voucher_wallet_del  KEYS[1] {NS}:w:<customer>  ARGV code: 1 or 0
function api.wallet_del(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):w:(.+)$')
    if not tag then return bad_key() end
    if #args ~= 1 then return bad_args() end
    return redis.call('ZREM', keys[1], normalize_code(args[1]))
end

reg('voucher_wallet', api.wallet, true)
reg('voucher_wallet_save', api.wallet_save)
reg('voucher_wallet_add', api.wallet_add)
reg('voucher_wallet_del', api.wallet_del)
