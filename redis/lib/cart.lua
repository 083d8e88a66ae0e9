---------------------------------------------------------------- the cart

-- Qualify: which codes fit an order, best first, in one read-only call:
-- the customer's wallet (its W.QUALIFY_WALLET newest codes), the public
-- codes ({NS}:public, a set of at most W.PUBLIC_MAX shared codes an
-- operator flags with voucher_public_add) and the codes the request names.
-- Each is judged by evaluate_code, the evaluation of a validate, so a code
-- qualify calls applicable validates, with the same discount.  A campaign
-- with "channels" applies only to orders from one of them, where the
-- request names its channel (qualify and a stack do; a single-code call
-- names none and is not checked).

W.QUALIFY_WALLET = 100
W.PUBLIC_MAX = 50
W.REQUEST_MAX = 30              -- codes one request may name

-- n codes from args[i]: the list and the index after it, or nil
function W.codes(args, i)
    local n = uint(args[i])
    if not n or n > W.REQUEST_MAX then return nil end
    local list = {}
    for j = 1, n do
        local c = args[i + j]
        if not c or c == '' then return nil end
        list[j] = c
    end
    return list, i + n + 1
end

-- the order's arguments (a validate's: customer amount currency order_id
-- idem nitems items...) from args[i] on, checked; nil when malformed
function W.order(args, i)
    local o = {unpack(args, i)}
    local n = uint(o[6])
    if not (uint(o[2]) and n) or #o ~= 6 + 4 * n then return nil end
    for j = 9, 6 + 4 * n, 4 do
        if not (uint(o[j]) and uint(o[j + 1])) then return nil end
    end
    return o, n
end

-- The verdict on one code for this order: a table with the validate's
-- values (W.okv) and ok = true, or the refusal's reason, campaign and
-- extra pair; the campaign's rules when it has one.
function W.fit(tag, code, o, n, channel)
    local r = W.judge(tag, code, o, n)
    if r.err then
        return {code = code, reason = 'campaign_inactive'}
    end
    local v
    if r[1] == 'ok' then
        v = W.okv(r)
        v.ok = true
    else
        local why, camp, k1, v1 = W.refusal(r)
        v = {code = code, campaign = camp, reason = why}
        if k1 then v[k1] = v1 end
    end
    if v.campaign then
        v.rules = W.rules(tag, v.campaign)
        local ch = v.rules[24]
        if v.ok and channel ~= '' and ch and not listed(ch, channel) then
            v.ok, v.reason = nil, 'channel_mismatch'
        end
    end
    return v
end

-- a verdict as the pairs of the answer
function W.fit_pairs(v, amount)
    local t = {'code', v.code}
    W.put(t, 'campaign', v.campaign)
    W.put(t, 'source', v.source)
    if v.ok then
        W.put(t, 'discount', v.discount)
        W.put(t, 'amount_after', v.amount_after)
        W.put(t, 'kind', v.kind)
        if v.kind ~= 'gift_card' then
            W.put(t, v.kind == 'percent' and 'percent_bp' or 'value', v.value)
        end
        W.put(t, 'capped_by', v.capped_by)
        W.put(t, 'balance', v.balance)
        W.put(t, 'stacking', v.rules[25] or 'exclusive')
        W.put(t, 'stack_category', v.rules[26])
        return t
    end
    W.put(t, 'reason', v.reason)
    if v.reason == 'order_below_minimum' and v.min_amount then
        W.put(t, 'min_amount', v.min_amount)
        W.put(t, 'missing_amount', v.min_amount - amount)
    elseif v.reason == 'currency_mismatch' and v.rules then
        W.put(t, 'currency', v.rules[11])
    elseif v.reason == 'channel_mismatch' then
        W.put(t, 'channels', string.sub(v.rules[24], 2, -2))
    end
    W.put(t, 'starts_at', v.starts_at)
    W.put(t, 'ends_at', v.ends_at)
    return t
end

-- best first: the largest discount, then the code
function W.better(a, b)
    if a.discount ~= b.discount then return a.discount > b.discount end
    return a.code < b.code
end

-- the nearest first: what is missing, then the code
function W.nearer(a, b)
    local x, y = a.min_amount or math.huge, b.min_amount or math.huge
    if x ~= y then return x < y end
    return a.code < b.code
end

-- voucher_qualify  KEYS[1] {NS}:public
-- ARGV  channel best ncodes [code]* nforged [code]* customer amount
--       currency order_id idem nitems [sku category price qty]*
--   codes    the codes the request names (normalised, checked offline)
--   forged   codes the module refused offline: not_found, never read
--   best     "1": also the best combination (W.best)
-- {ok, [customer, c,] order_amount, a, applicable, [list],
--  inapplicable, [list] [, best, {...}]}.  Read-only.
function api.qualify(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):public$')
    if not tag then return bad_key() end
    local channel, best = args[1], args[2]
    local named, i = W.codes(args, 3)
    if not named or not (best == '0' or best == '1') or not channel then
        return bad_args()
    end
    local forged
    forged, i = W.codes(args, i)
    if not forged then return bad_args() end
    local o, n = W.order(args, i)
    if not o then return bad_args() end
    local cust, amount = o[1], tonumber(o[2])

    -- the candidates, each once: named, then the wallet, then public
    local seen, cands = {}, {}
    local function add(code, source)
        if not seen[code] then
            seen[code] = true
            cands[#cands + 1] = {code, source}
        end
    end
    for _, c in ipairs(named) do add(c, 'request') end
    for _, c in ipairs(forged) do seen[c] = 'forged' end
    if cust ~= '' then
        local w = redis.call('ZRANGE', tag .. ':w:' .. cust, 0,
                             W.QUALIFY_WALLET - 1, 'REV')
        for _, c in ipairs(w) do add(c, 'wallet') end
    end
    for _, c in ipairs(redis.call('SMEMBERS', keys[1])) do
        add(c, 'public')
    end

    local yes, no = {}, {}
    for _, c in ipairs(forged) do
        no[#no + 1] = {code = c, source = 'request', reason = 'not_found'}
    end
    for _, cand in ipairs(cands) do
        local v = W.fit(tag, cand[1], o, n, channel)
        v.source = cand[2]
        if v.ok then yes[#yes + 1] = v else no[#no + 1] = v end
    end
    table.sort(yes, W.better)
    table.sort(no, W.nearer)

    local r = {'ok'}
    W.put(r, 'customer', cust ~= '' and cust or nil)
    W.put(r, 'order_amount', amount)
    local a, b = {}, {}
    for j, v in ipairs(yes) do a[j] = W.fit_pairs(v, amount) end
    for j, v in ipairs(no) do b[j] = W.fit_pairs(v, amount) end
    W.put(r, 'applicable', W.list(a))
    W.put(r, 'inapplicable', W.list(b))
    return r
end

-- voucher_public_add, voucher_public_del  KEYS[1] {NS}:public  ARGV code
-- A public code is shown to every customer by qualify: an existing code
-- nobody is assigned; at most W.PUBLIC_MAX.  1 added (removed), 0 not.
function api.public_add(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):public$')
    if not tag then return bad_key() end
    if #args ~= 1 then return bad_args() end
    local code = normalize_code(args[1])
    local c = code_read(tag, tag .. ':c:' .. code, code)
    if not c[1] then return invalid('code', 'not found') end
    if c[5] then return invalid('code', 'assigned to a customer') end
    if redis.call('SISMEMBER', keys[1], code) == 1 then return 0 end
    if redis.call('SCARD', keys[1]) >= W.PUBLIC_MAX then
        return invalid('code', 'at most ' .. W.PUBLIC_MAX .. ' public codes')
    end
    return redis.call('SADD', keys[1], code)
end

function api.public_del(keys, args)
    if not string.match(keys[1], '^({[^}]+}):public$') then
        return bad_key()
    end
    if #args ~= 1 then return bad_args() end
    return redis.call('SREM', keys[1], normalize_code(args[1]))
end

reg('voucher_qualify', api.qualify, true)
reg('voucher_public_add', api.public_add)
reg('voucher_public_del', api.public_del)
