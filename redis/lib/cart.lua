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
-- idem nitems items... [m...]) from args[i] on, checked; nil when
-- malformed.  o.meta: the business data of a last "m..." (RU.meta).
function W.order(args, i)
    local o = {unpack(args, i)}
    local n = uint(o[6])
    if n and #o == 7 + 4 * n and string.byte(o[#o]) == 109 then
        o.meta = RU.meta(table.remove(o))
        if not o.meta then return nil end
    end
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
        local ch = v.rules[25]
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
        W.put(t, 'stacking', v.rules[26] or 'exclusive')
        W.put(t, 'stack_category', v.rules[27])
        return t
    end
    W.put(t, 'reason', v.reason)
    if v.reason == 'order_below_minimum' and v.min_amount then
        W.put(t, 'min_amount', v.min_amount)
        W.put(t, 'missing_amount', v.min_amount - amount)
    elseif v.reason == 'currency_mismatch' and v.rules then
        W.put(t, 'currency', v.rules[11])
    elseif v.reason == 'channel_mismatch' then
        W.put(t, 'channels', string.sub(v.rules[25], 2, -2))
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

-- Automatic promotions ("10% off shoes this weekend"): a campaign with
-- auto_apply 1 applies without a code.  It is in the set {NS}:auto (at
-- most W.AUTO_MAX) and has a code of its own, {NS}:c:auto:<campaign>,
-- which no customer can type (the module upper-cases every code it
-- sends), so the same evaluation, counters, trail and rollback serve it.
-- Qualify judges it with the codes (source "auto"); a stack adds every
-- automatic promotion that fits the order and the codes named (see
-- W.with_autos); a single-code validate or redeem does not.
W.AUTO_MAX = 20

function W.auto_room(tag, camp)
    local akey = tag .. ':auto'
    return redis.call('SISMEMBER', akey, camp) == 1
           or redis.call('SCARD', akey) < W.AUTO_MAX
end

function W.auto_sync(tag, camp, on)
    if on == '1' then
        redis.call('SADD', tag .. ':auto', camp)
        redis.call('HSETNX', tag .. ':c:auto:' .. camp, 'k', camp)
        redis.call('HSETNX', tag .. ':c:auto:' .. camp, 'm', '0')
    else
        redis.call('SREM', tag .. ':auto', camp)
    end
end

-- the automatic promotions' codes, in a fixed order
function W.autos(tag)
    local a = redis.call('SMEMBERS', tag .. ':auto')
    table.sort(a)
    for i, camp in ipairs(a) do a[i] = 'auto:' .. camp end
    return a
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
    for _, c in ipairs(W.autos(tag)) do add(c, 'auto') end

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
    if best == '1' then
        local max = tonumber(redis.call('HGET', tag .. ':cfg',
                                        'stack_max_codes')) or W.STACK_MAX
        local codes, autos = {}, {}
        for _, v in ipairs(yes) do
            if v.source == 'auto' then autos[#autos + 1] = v
            else codes[#codes + 1] = v end
        end
        local list, total = W.best(codes, autos, amount, max)
        if list then
            W.put(r, 'best', {'codes', W.stack_pairs(list),
                              'discount', total,
                              'amount_after', amount - total})
        end
    end
    return r
end

-- The best combination of applicable codes: the largest total discount a
-- stack of them allows, with the automatic promotions a stack of them
-- would add (W.with_autos), so that a stack of its codes gives what it
-- says (gift cards, which pay rather than discount, are left out).
-- Bounded: the W.BEST_CANDIDATES codes with the largest discounts alone,
-- at most max of them together, searched depth first in
-- that order with a bound (a code adds at most its discount alone to a
-- stack: amount-offs lower what later percents take, caps cut), and at
-- most W.BEST_TRIES stacks priced.  A stack the rules refuse is not
-- extended (adding codes never lifts a refusal).  The list in the order
-- of application and its total, or nil.
W.BEST_CANDIDATES = 10
W.BEST_TRIES = 1024

function W.best(yes, autos, amount, max)
    local c = {}
    for _, v in ipairs(yes) do
        if v.kind ~= 'gift_card' and #c < W.BEST_CANDIDATES then
            c[#c + 1] = v
        end
    end
    local best, best_total, tries, chosen = nil, 0, 0, {}
    -- the automatic promotions alone
    local _, _, alone = W.with_autos({}, autos, amount)
    if alone and alone > 0 then best, best_total = {}, alone end
    local function search(from)
        for i = from, #c do
            if tries >= W.BEST_TRIES then return end
            chosen[#chosen + 1] = c[i]
            tries = tries + 1
            local list, _, total = W.with_autos({unpack(chosen)}, autos,
                                                amount)
            if list then
                if total > best_total
                   or (total == best_total and best
                       and #chosen < #best) then
                    best, best_total = {unpack(chosen)}, total
                end
                -- what the next codes could add at most
                local room = 0
                for j = i + 1, math.min(#c, i + max - #chosen) do
                    room = room + c[j].discount
                end
                if #chosen < max and room > 0
                   and total + room > best_total then
                    search(i + 1)
                end
            end
            chosen[#chosen] = nil
        end
    end
    search(1)
    if not best then return nil end
    local list, _, total = W.with_autos(best, autos, amount)
    return list, total
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


---------------------------------------------------------------- stacking

-- A stack: several codes on one order, checked and applied in ONE call,
-- all or nothing (voucher_stack).  Every code must pass the evaluation of
-- a validate (W.fit); the first that does not refuses the stack with its
-- own reason, naming it.  Then the campaigns' stacking rules:
--   stacking        "exclusive" (the default: a campaign that did not say
--                   it combines never stacks) or "combinable"
--   stack_category  at most one code of a category in a stack (default:
--                   the campaign's id, so one code of a campaign)
--   stack_priority  the order of application within a kind (lower first)
--   stack_cap       the most all the stack's discounts may add up to,
--                   when a code of this campaign is in it (the smallest
--                   such cap holds)
-- and the namespace's stack_max_codes (settings, default 5) of the 30 a
-- request may name.
--
-- Order of application: amount-offs (amount, fixed_price, free_item)
-- first, then percents on what is left, then gift cards, which pay what
-- is left.  Percents after amounts: a percent is then never taken on
-- money another code already took off, so the total never depends on the
-- order the codes were typed in and never exceeds what each code promised
-- alone; a gift card is payment, not a discount, so it comes last and the
-- cap does not count it.  A percent applies to its eligible amount or to
-- what is left of the order, whichever is less.  A code left with nothing
-- to take refuses the stack (stack_no_discount): applying it would spend a
-- use for nothing.
--
-- The answer names each code's part (discount, amount after, its own
-- redemption id) and one parent redemption id: a "stack" entry in the
-- trail whose ref lists the codes' redemptions.  A rollback of the parent
-- gives back every code's part; a rollback of one code's redemption id
-- gives back that part alone.  A stacked reservation holds each code's
-- redemption; confirm and release of the parent settle them all.

-- W.PHASE is the order of application by kind: 1 amount-offs, 2
-- percents, 3 gift cards.  Loyalty points ("p<N>") pay after all of them,
-- of what is left: as with one code, where a gift card pays before the
-- points, so that "codes" with one code answers what "code" does; the
-- points are the one payment the customer sized himself (at most N), and
-- a gift card pays whatever it is handed, so handing the points the rest
-- never makes a card pay less than it would alone.  Payments are outside
-- the discount and the cap.  The points are spent under the parent
-- redemption id and come back once, when the whole stack is given back
-- (W.paid, W.points_back).
W.STACK_MAX = 5
W.PHASE = {amount = 1, fixed_price = 1, free_item = 1, percent = 2,
           gift_card = 3, buy_x_get_y = 1, steps = 1, free_shipping = 1}

-- the first of a stack's refusals: {reason, code, c, campaign, k, ...}
function W.stack_refusal(reason, v, k1, v1, k2, v2)
    local r = {reason, 'code', v.code}
    W.put(r, 'campaign', v.campaign)
    W.put(r, k1, v1)
    W.put(r, k2, v2)
    return r
end

-- the order of application (see above), then the request's order
function W.applies_before(a, b)
    local x, y = W.PHASE[a.kind] or 1, W.PHASE[b.kind] or 1
    if x ~= y then return x < y end
    x, y = a.rules[28] or 0, b.rules[28] or 0
    if x ~= y then return x < y end
    return a.pos < b.pos
end

-- The verdicts of a stack's codes checked and priced together: the list
-- in the order of application, each with its part (.part, .after,
-- .capped), and the total discount and gift-card payment; or nil and the
-- refusal.  vs: W.fit's verdicts, all ok.
function W.combine(vs, amount)
    local cats, cap = {}, nil
    for _, v in ipairs(vs) do
        if #vs > 1 and (v.rules[26] or 'exclusive') ~= 'combinable' then
            return nil, W.stack_refusal('stack_exclusive', v)
        end
        local cat = v.rules[27] or ('campaign:' .. v.campaign)
        local other = cats[cat]
        if other then
            return nil, W.stack_refusal('stack_category_conflict', v,
                                        'category', v.rules[27] or
                                        v.campaign, 'conflicts_with',
                                        other.code)
        end
        cats[cat] = v
        local c = v.rules[29] or 0
        if c > 0 and (not cap or c < cap) then cap = c end
    end
    local list = {}
    for i, v in ipairs(vs) do v.pos = i; list[i] = v end
    table.sort(list, W.applies_before)
    local left, total, paid = amount, 0, 0
    for _, v in ipairs(list) do
        local d = v.discount
        if v.kind == 'percent' then
            local base = v.eligible_amount
            if left < base then base = left end
            local lo = math.fmod(base, 10000)
            d = (base - lo) / 10000 * v.value
                + math.floor(lo * v.value / 10000)
            local kcap = v.rules[4] or 0
            if kcap > 0 and d > kcap then d = kcap; v.capped = 'cap' end
        end
        if d > left then d = left; v.capped = 'order_amount' end
        if v.kind ~= 'gift_card' and cap and total + d > cap then
            d = cap - total; v.capped = 'stack_cap'
        end
        if d <= 0 then
            return nil, W.stack_refusal('stack_no_discount', v)
        end
        v.part = d
        left = left - d
        v.after = left
        if v.kind == 'gift_card' then paid = paid + d
        else total = total + d end
    end
    return list, nil, total, paid
end

-- Takes one code's part: its use, the campaign's and the customer's
-- counters, a redeem entry in the trail (ref "hold" for a reservation,
-- whose id then waits in {v}:hz until settled).  Returns its redemption
-- id and a gift card's balance after.
function W.take(tag, v, o, idem, hold_deadline)
    local code, camp, cust = v.code, v.campaign, o[1]
    local ckey = tag .. ':c:' .. code
    local c, bkey = code_read(tag, ckey, code)
    local gift = v.kind == 'gift_card'
    local bal = gift and G.avail(ckey, c[6]) - v.part or nil
    code_uses(ckey, bkey, code, c, dec((tonumber(c[4]) or 0) + 1),
              bal and dec(bal))
    local kkey = tag .. ':k:' .. camp
    local kc = redis.call('HMGET', kkey, 'redeemed', 'discount_given')
    redis.call('HSET', kkey, 'redeemed', dec((tonumber(kc[1]) or 0) + 1),
               'discount_given', dec((tonumber(kc[2]) or 0) + v.part))
    local maxlen = settings(tag)
    local id = xadd(tag .. ':log', maxlen, 'redeem', code, camp, cust, o[4],
                    o[2], o[3], dec(v.part), bal and dec(bal) or '', idem,
                    hold_deadline and 'hold' or '')
    if v.rules[31] then
        -- the customer's periods and total (W.fit checked them for a
        -- discount this part does not exceed)
        local _, st = RU.check(tag, v.rules, code, camp, cust, v.part, o.meta)
        if st then RU.take(tag, st, v.part, id) end
    end
    if cust ~= '' then
        local ukey = tag .. ':u:' .. cust
        local u = redis.call('HMGET', ukey, 'k:' .. camp, 'c:' .. code)
        local set = {'k:' .. camp, dec((tonumber(u[1]) or 0) + 1),
                     'c:' .. code, dec((tonumber(u[2]) or 0) + 1)}
        if hold_deadline then
            set[5] = 'h:' .. code; set[6] = id
        end
        redis.call('HSET', ukey, unpack(set))
    end
    if gift then G.spend(tag, code, ckey, v.part, id, c[6]) end
    if hold_deadline then hold_add(tag, id, hold_deadline) end
    return id, bal
end

-- The codes named (vs: W.fit verdicts, all ok) and every automatic
-- promotion that fits with them: autos (verdicts that passed, the largest
-- discount first) are tried one by one, each kept when the stack with it
-- is allowed and it adds a discount.  W.combine's answer for the result.
function W.with_autos(vs, autos, amount)
    local list, refusal = W.combine(vs, amount)
    if not list then return nil, refusal end
    if #autos == 0 then return W.combine(vs, amount) end
    local cur = {unpack(vs)}
    for _, a in ipairs(autos) do
        cur[#cur + 1] = a
        if not W.combine(cur, amount) then cur[#cur] = nil end
    end
    return W.combine(cur, amount)
end

-- the automatic promotions that fit this order alone, best first
function W.fit_autos(tag, o, n, channel)
    local out = {}
    for _, code in ipairs(W.autos(tag)) do
        local v = W.fit(tag, code, o, n, channel)
        if v.ok then
            v.source = 'auto'
            out[#out + 1] = v
        end
    end
    table.sort(out, W.better)
    return out
end

-- the parts of an answer's codes, in the order of application
function W.stack_pairs(list, ids, bals)
    local out = {}
    for i, v in ipairs(list) do
        local t = {'code', v.code, 'campaign', v.campaign, 'kind', v.kind}
        if string.sub(v.code, 1, 5) == 'auto:' then
            W.put(t, 'automatic', 1)
        end
        if v.kind ~= 'gift_card' then
            W.put(t, v.kind == 'percent' and 'percent_bp' or 'value',
                  v.value)
        end
        W.put(t, 'discount', v.part)
        W.put(t, 'amount_after', v.after)
        W.put(t, 'capped_by', v.capped)
        W.put(t, 'balance', bals and bals[i] or v.balance)
        W.put(t, 'redemption_id', ids and ids[i])
        out[i] = t
    end
    return W.list(out)
end

-- the children of a parent redemption ("stack" entry), or nil
function W.stack_entry(logkey, id)
    if not string.find(id, '^%d+%-%d+$') then return nil end
    local res = redis.pcall('XRANGE', logkey, id, id)
    local e = type(res) == 'table' and res[1]
    if e and e[1] == id and e[2][1] == 'type' and e[2][2] == 'stack' then
        local kids = {}
        for k in string.gmatch(e[2][22], '[^,]+') do kids[#kids + 1] = k end
        return kids, e[2]
    end
end

-- voucher_stack  KEYS[1] {NS}:log
-- ARGV  op hold_ms channel ncodes [code]* customer amount currency order_id
--       idem nitems [sku category price qty]* [limits]
--   op       validate, redeem or reserve (hold_ms: 1000..86400000, else "")
-- {ok, codes, [parts], order_amount, a, discount, d, [gift_card_amount,
--  g,] amount_after, x [, redemption_id, parent [, status, reserved,
--  hold_expires_at, s]]}, or a refusal naming the code at fault.
function api.stack(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):log$')
    if not tag then return bad_key() end
    local op, hold_s, channel = args[1], args[2], args[3]
    local redeem = op == 'redeem' or op == 'reserve'
    local hold_ms
    if op == 'reserve' then
        hold_ms = uint(hold_s)
        if not hold_ms or hold_ms < 1000 or hold_ms > 86400000 then
            return bad_args()
        end
    elseif (op ~= 'validate' and op ~= 'redeem') or hold_s ~= '' then
        return bad_args()
    end
    local codes, i = W.codes(args, 4)
    if not codes or not channel then return bad_args() end
    local n = uint(args[i + 5])
    if not n then return bad_args() end
    local last = i + 5 + 4 * n
    local o = W.order({unpack(args, i, last)}, 1)
    if not o then return bad_args() end
    if string.byte(args[last + 1] or '') == 109 then
        o.meta = RU.meta(args[last + 1])
        if not o.meta then return bad_args() end
        last = last + 1
    end
    -- "p<N>": N loyalty points paying after the codes (before any limit)
    local pts
    if string.byte(args[last + 1] or '') == 112 then
        pts = uint(string.sub(args[last + 1], 2))
        if not pts or pts == 0 then
            return {'invalid_points', 'code', codes[1] or ''}
        end
        last = last + 1
    end

    if redeem then sweep(tag) end
    local status, name
    if #args > last then
        local refusal
        refusal, status, name = limits_apply(tag, codes[1] or '', args,
                                             last + 1)
        if refusal then return refusal end
        if refusal == false then return bad_args() end
    end
    local r = W.stack_run(tag, keys[1], codes, o, n, channel, redeem,
                          hold_ms, pts)
    if status then
        if GUESS[r[1]] then lockout_count(tag, args, last + 1) end
        limit_pairs(r, status, name)
    end
    return r
end

function W.stack_run(tag, logkey, codes, o, n, channel, redeem, hold_ms,
                     pts)
    local amount, idem = tonumber(o[2]), o[5]

    -- a retry: the first answer (a reservation given back meanwhile is
    -- made again, one still held is in progress, as for a single code)
    local ikey, fp
    if redeem and idem ~= '' then
        ikey = tag .. (hold_ms and ':i:h:' or ':i:r:') .. idem
        local sorted = {unpack(codes)}
        table.sort(sorted)
        fp = fingerprint('stack\0' .. table.concat(sorted, '\0') .. '\0'
                         .. table.concat(o, '\0', 1, 4) .. '\0'
                         .. table.concat(o, '\0', 6)
                         .. (o.meta and '\0' .. o.meta.raw or '')
                         .. (pts and '\0p' .. dec(pts) or ''))
        local r = replay(ikey, fp, 'code', codes[1] or '')
        if r and hold_ms and r[1] == 'ok' then
            local parent
            for j = 2, #r - 1, 2 do
                if r[j] == 'redemption_id' then parent = r[j + 1] end
            end
            local kids = parent and W.stack_entry(logkey, parent)
            if kids then
                local held, gone = false, false
                for _, k in ipairs(kids) do
                    if redis.call('ZSCORE', tag .. ':hz', k) then
                        held = true
                    elseif redis.call('HGET', tag .. ':rb:' .. k, 'done') then
                        gone = true
                    end
                end
                if held then
                    return {'reservation_in_progress', 'code',
                            codes[1] or '', 'redemption_id', parent}
                end
                if gone then
                    redis.call('DEL', ikey)
                    r = nil
                end
            end
        end
        if r then return r end
    end

    local max = tonumber(redis.call('HGET', tag .. ':cfg',
                                    'stack_max_codes')) or W.STACK_MAX
    if #codes > max then
        return {'stack_too_many_codes', 'code', codes[max + 1],
                'max_codes', max}
    end

    local vs = {}
    for j, code in ipairs(codes) do
        local v = W.fit(tag, code, o, n, channel)
        if not v.ok then
            return W.stack_refusal(v.reason, v, v.reason ==
                'order_below_minimum' and 'min_amount' or
                v.reason == 'campaign_inactive' and 'status' or
                v.reason == 'not_started' and 'starts_at' or
                v.reason == 'expired' and 'ends_at' or
                v.reason == 'condition_not_met' and 'field' or
                v.reason == 'not_enough_items' and 'min_items' or
                v.resets_at and 'resets_at' or nil,
                v.min_amount or v.status or v.starts_at or v.ends_at or
                v.field or v.min_items or v.resets_at)
        end
        vs[j] = v
    end
    local list, refusal, total, paid =
        W.with_autos(vs, W.fit_autos(tag, o, n, channel), amount)
    if not list then return refusal end

    -- the points pay last, of what the codes leave (see W.PHASE)
    local left, lp = amount - total - paid, nil
    if pts then
        local why
        lp, why = L.pay(tag, o[1], pts, left, redeem)
        if not lp then return {why, 'points', pts} end
    end

    local r = {'ok', 'codes', nil, 'order_amount', amount,
               'discount', total}
    if paid > 0 then W.put(r, 'gift_card_amount', paid) end
    W.put(r, 'amount_after', left)
    if lp then L.pay_pairs(r, lp, left) end
    if not redeem then
        r[3] = W.stack_pairs(list)
        W.put(r, 'customer', o[1] ~= '' and o[1] or nil)
        return r
    end

    local deadline = hold_ms and now_ms() + hold_ms
    local ids, bals, done = {}, {}, {}
    for j, v in ipairs(list) do
        ids[j], bals[j] = W.take(tag, v, o, idem, deadline)
        done[j] = v.code
    end
    local maxlen = settings(tag)
    local parent = xadd(logkey, maxlen, 'stack', table.concat(done, ','),
                        '', o[1], o[4], o[2], o[3], dec(total),
                        paid > 0 and dec(paid) or '', idem,
                        table.concat(ids, ','))
    if lp then W.paid(tag, lp, parent, ids) end
    r[3] = W.stack_pairs(list, ids, bals)
    W.put(r, 'customer', o[1] ~= '' and o[1] or nil)
    W.put(r, 'redemption_id', parent)
    if deadline then
        W.put(r, 'status', 'reserved')
        W.put(r, 'hold_expires_at', math.ceil(deadline / 1000))
        -- the items, for the loyalty earn its confirm makes
        if n > 0 and L.progs[tag] ~= false then
            L.stash(tag, parent, o, n, hold_ms)
        end
    end
    if ikey then remember(tag, ikey, fp, r) end
    return r
end

-- A stack paid with points: spent under the parent's id (L.paid), its
-- codes listed there, and each code's redemption linked to the parent
-- ({NS}:ls:<id> up), so that the points come back when the last code of
-- the stack is given back, by the parent's rollback or release, the
-- hold running out, or rollbacks of each code's own id.
function W.paid(tag, lp, parent, ids)
    L.paid(tag, lp, parent)
    if lp.used == 0 then return end
    redis.call('HSET', tag .. ':ls:' .. parent, 'kids',
               table.concat(ids, ','))
    for _, k in ipairs(ids) do
        redis.call('HSET', tag .. ':ls:' .. k, 'up', parent)
    end
end

-- a code's redemption id given back (undo): the stack's points come back
-- when it was the last of its stack; the points, or nil
function W.points_back(tag, id, typ)
    local up = redis.call('HGET', tag .. ':ls:' .. id, 'up')
    if not up then return nil end
    local kids = redis.call('HGET', tag .. ':ls:' .. up, 'kids') or ''
    for k in string.gmatch(kids, '[^,]+') do
        if not redis.call('HGET', tag .. ':rb:' .. k, 'done') then
            return nil
        end
    end
    return L.refund(tag, up, now_s(), typ)
end

-- A parent's rollback, confirm or release (voucher_rollback,
-- voucher_confirm, voucher_release with its id): every code's redemption
-- at once, or none.  what: rollback, confirm or release.
function W.stack_settle(tag, logkey, id, kids, what, idem)
    local states, es = {}, {}
    for j, k in ipairs(kids) do
        local e = redemption(logkey, k)
        if not e then return {'redemption_not_found', 'redemption_id', k} end
        es[j] = e
        if what ~= 'rollback' then
            states[j] = hold_state(tag, k, e)
            if not states[j] then
                return {'not_a_reservation', 'redemption_id', id}
            end
        end
    end
    if what == 'confirm' then
        for j in ipairs(kids) do
            local s = states[j]
            if s ~= 'held' and s ~= 'confirmed' then
                return {SETTLED[s] or 'reservation_released',
                        'redemption_id', id, 'code', es[j][4]}
            end
        end
        local any = false
        for j, k in ipairs(kids) do
            if states[j] == 'held' then
                redis.call('ZREM', tag .. ':hz', k)
                confirm_entry(tag, k, idem)
                any = true
            end
        end
        -- the order earns once, on what is left after the whole stack
        if any and L.progs[tag] ~= false then
            local _, e = W.stack_entry(logkey, id)
            if e then
                local paid = tonumber(e[18]) or 0
                e[16] = dec((tonumber(e[16]) or 0) + paid)
                L.confirmed(tag, id, e)
            end
        end
        return {'ok', 'redemption_id', id, 'status', 'confirmed'}
    end
    if what == 'release' then
        for j in ipairs(kids) do
            local s = states[j]
            if s == 'confirmed' then
                return {'reservation_confirmed', 'redemption_id', id,
                        'code', es[j][4]}
            end
        end
        local any = false
        for j in ipairs(kids) do
            if states[j] == 'held' then any = true end
        end
        if not any then
            for j in ipairs(kids) do
                if states[j] ~= 'release' then
                    return {SETTLED[states[j]], 'redemption_id', id,
                            'code', es[j][4]}
                end
            end
            return {'ok', 'redemption_id', id, 'status', 'released',
                    'replayed', 1}
        end
    end

    -- rollback or release: each code's part back (the last one brings
    -- the points back, W.points_back)
    local lskey = tag .. ':ls:' .. id
    local had = redis.call('HMGET', lskey, 'pts', 'back')
    local parts, sum = {}, 0
    local typ = what == 'release' and 'release' or 'rollback'
    for j, k in ipairs(kids) do
        if what == 'rollback' or states[j] == 'held' then
            local u = undo(tag, k, es[j], nil, idem, typ)
            if u[1] == 'ok' then
                local h = {}
                for x = 2, #u - 1, 2 do h[u[x]] = u[x + 1] end
                sum = sum + h.amount_rolled_back
                local t = {'code', h.code, 'campaign', h.campaign,
                           'redemption_id', k,
                           'amount_rolled_back', h.amount_rolled_back}
                W.put(t, 'balance', h.balance)
                parts[#parts + 1] = t
            end
        end
    end
    if #parts == 0 then
        return {'already_rolled_back', 'redemption_id', id}
    end
    local r = {'ok', 'redemption_id', id, 'codes', W.list(parts),
               'amount_rolled_back', sum}
    if had[1] and not had[2] and redis.call('HGET', lskey, 'back') then
        W.put(r, 'points_refunded', tonumber(had[1]))
    end
    W.put(r, 'status', typ == 'release' and 'released' or 'rolled_back')
    return r
end

reg('voucher_stack', api.stack)
