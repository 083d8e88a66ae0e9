------------------------------------------------------ gift cards: the ledger

-- A gift card's balance is stored value, and every move of it is an entry
-- of its ledger, the stream {NS}:gl:<code> (never trimmed):
--   type        credits_addition (a top-up, or the balance a card is
--               issued with), credits_removal (a debit), credits_redemption
--               (a redeem or a reservation), credits_refund (a rollback, a
--               release, an expired reservation), credits_expired (a credit
--               whose time is up)
--   amount      signed minor units (+ adds, - takes)
--   balance     the balance after
--   reason      why: the note of a credit or debit, "issued", "set" (the
--               balance set by a code update), "deleted", the kind of
--               refund (rollback, release, expire)
--   ref         the idempotency ref of a credit or debit, the redemption
--               id of a redemption or refund
--   expires_at  unix seconds: when a credit's lot ends ("" never)
-- so the stored balance (field b of {NS}:c:<code>) is always the sum of
-- the amounts of its ledger.
--
-- The balance is held in lots, field x of the code's hash, "t:e:a ..."
-- (credited at, expires at or 0, amount left), kept in the order they are
-- spent: the lots that expire first, soonest first, then those that never
-- do, oldest first.  A lot whose time has come stops counting at that
-- instant (Redis time): a redeem does not see it, and the next call that
-- writes the card, or voucherd's sweep (voucher_gift_sweep, through the
-- sorted set {NS}:gx of cards scored by their first expiry), writes its
-- credits_expired entry.  {NS}:gift is the set of every gift card with a
-- ledger (the liability report reads it); {NS}:gs:<redemption id> keeps
-- the lots a redemption took when one of them ends, so a refund goes back
-- to them.
local G = {}

function G.parse(x)
    local lots = {}
    if x then
        for t, e, a in string.gmatch(x, '(%d+):(%d+):(%d+)') do
            lots[#lots + 1] = {tonumber(t), tonumber(e), tonumber(a)}
        end
    end
    return lots
end

-- spending order: expiring lots by expiry, then the others by age
function G.sort(lots)
    table.sort(lots, function(p, q)
        local pe, qe = p[2] == 0 and math.huge or p[2],
                       q[2] == 0 and math.huge or q[2]
        if pe ~= qe then return pe < qe end
        return p[1] < q[1]
    end)
end

function G.format(lots)
    local s = {}
    for _, l in ipairs(lots) do
        if l[3] > 0 then
            s[#s + 1] = dec(l[1]) .. ':' .. dec(l[2]) .. ':' .. dec(l[3])
        end
    end
    return table.concat(s, ' ')
end

-- what a card can spend now: its balance less its lots due.  A card
-- without lots (issued before ledgers) holds its whole balance undated.
function G.avail(ckey, b)
    local bal = tonumber(b) or 0
    local x = redis.call('HGET', ckey, 'x')
    if not x then return bal end
    local now = now_s()
    for _, l in ipairs(G.parse(x)) do
        if l[2] > 0 and l[2] <= now then bal = bal - l[3] end
    end
    return bal
end

function G.entry(tag, code, typ, amount, bal, reason, ref, exp)
    return redis.call('XADD', tag .. ':gl:' .. code, '*', 'type', typ,
                      'amount', dec(amount), 'balance', dec(bal),
                      'reason', reason or '', 'ref', ref or '',
                      'expires_at', exp and exp > 0 and dec(exp) or '')
end

-- the card's lots and balance (their sum), its ledger opened when it has
-- none: a card issued before ledgers opens with a credits_addition of the
-- balance it held when this call began (b, else the stored one), reason
-- "opening"
function G.load(tag, code, ckey, b)
    local h = redis.call('HMGET', ckey, 'b', 'x')
    if h[2] then
        local lots, bal = G.parse(h[2]), 0
        for _, l in ipairs(lots) do bal = bal + l[3] end
        return lots, bal
    end
    local bal = tonumber(b or h[1]) or 0
    local lots = {}
    if bal > 0 then
        lots[1] = {now_s(), 0, bal}
        G.entry(tag, code, 'credits_addition', bal, bal, 'opening')
    end
    redis.call('SADD', tag .. ':gift', code)
    return lots, bal
end

-- writes the credits_expired entries of the lots due at now; returns the
-- balance after
function G.expire(tag, code, lots, bal, now)
    for _, l in ipairs(lots) do
        if l[2] > 0 and l[2] <= now and l[3] > 0 then
            bal = bal - l[3]
            G.entry(tag, code, 'credits_expired', -l[3], bal, '', '', l[2])
            l[3] = 0
        end
    end
    return bal
end

function G.save(tag, code, ckey, lots, bal)
    G.sort(lots)
    -- lots of the same credit (a refund back into its lot) join again
    local j = 1
    for i = 2, #lots do
        local p, q = lots[j], lots[i]
        if p[1] == q[1] and p[2] == q[2] then
            p[3] = p[3] + q[3]
        else
            j = j + 1; lots[j] = q
        end
    end
    for i = #lots, j + 1, -1 do lots[i] = nil end
    local x = G.format(lots)
    redis.call('HSET', ckey, 'b', dec(bal), 'x', x)
    local first
    for _, l in ipairs(lots) do
        if l[3] > 0 and l[2] > 0 then first = l[2]; break end
    end
    if first then
        redis.call('ZADD', tag .. ':gx', dec(first), code)
    else
        redis.call('ZREM', tag .. ':gx', code)
    end
end

-- takes d (at most what is spendable now) from the lots that expire first;
-- returns the balance after and the lots taken ("t:e:a ...")
function G.take(tag, code, ckey, d, typ, reason, ref, b)
    local lots, bal = G.load(tag, code, ckey, b)
    bal = G.expire(tag, code, lots, bal, now_s())
    G.sort(lots)
    local left, took = d, {}
    for _, l in ipairs(lots) do
        if left == 0 then break end
        local a = l[3] < left and l[3] or left
        if a > 0 then
            l[3] = l[3] - a; left = left - a
            took[#took + 1] = {l[1], l[2], a}
        end
    end
    bal = bal - d
    G.entry(tag, code, typ, -d, bal, reason, ref)
    G.save(tag, code, ckey, lots, bal)
    return bal, took
end

-- a redemption of d: its entry, and the lots it took kept for a refund
-- when one of them ends (else a refund is a lot that never ends, credited
-- then); b: the stored balance before the call
function G.spend(tag, code, ckey, d, id, b)
    local bal, took = G.take(tag, code, ckey, d, 'credits_redemption', '',
                             id, b)
    for _, t in ipairs(took) do
        if t[2] > 0 then
            redis.call('SET', tag .. ':gs:' .. id, G.format(took))
            break
        end
    end
    return bal
end

-- a credit of a (expiring at exp, 0 never); returns the balance after
function G.add(tag, code, ckey, a, exp, typ, reason, ref, b)
    local lots, bal = G.load(tag, code, ckey, b)
    local now = now_s()
    bal = G.expire(tag, code, lots, bal, now)
    local merged
    for _, l in ipairs(lots) do
        -- a credit of the same day with the same end joins its lot
        if l[2] == exp and math.floor(l[1] / 86400) == math.floor(now / 86400)
           and l[3] > 0 then
            l[3] = l[3] + a; merged = true; break
        end
    end
    if not merged then lots[#lots + 1] = {now, exp, a} end
    bal = bal + a
    G.entry(tag, code, typ, a, bal, reason, ref, exp)
    G.save(tag, code, ckey, lots, bal)
    return bal
end

-- a refund of a of redemption id: back into the lots it was taken from,
-- the last taken first, each with its own end (what comes back into a lot
-- whose time has come expires in the same call); what the record does not
-- cover (a redemption of a card without lots) comes back undated
function G.refund(tag, code, ckey, a, id, why, b)
    local lots, bal = G.load(tag, code, ckey, b)
    local gkey = tag .. ':gs:' .. id
    local took = G.parse(redis.call('GET', gkey))
    local left = a
    for i = #took, 1, -1 do
        if left == 0 then break end
        local t = took[i]
        local n = t[3] < left and t[3] or left
        t[3] = t[3] - n; left = left - n
        lots[#lots + 1] = {t[1], t[2], n}
    end
    if left > 0 then lots[#lots + 1] = {now_s(), 0, left} end
    local rest = G.format(took)
    if rest ~= '' then redis.call('SET', gkey, rest)
    else redis.call('DEL', gkey) end
    bal = bal + a
    G.entry(tag, code, 'credits_refund', a, bal, why, id)
    bal = G.expire(tag, code, lots, bal, now_s())
    G.save(tag, code, ckey, lots, bal)
    return bal
end

-- a card just made with its balance: its ledger's credits_addition
-- "issued"
function G.issue(tag, code, ckey)
    local h = redis.call('HMGET', ckey, 'b', 'x')
    if h[2] or not h[1] then return end
    local b = tonumber(h[1]) or 0
    redis.call('SADD', tag .. ':gift', code)
    local lots = {}
    if b > 0 then
        lots[1] = {now_s(), 0, b}
        G.entry(tag, code, 'credits_addition', b, b, 'issued')
    end
    G.save(tag, code, ckey, lots, b)
end

-- the balance set to b by a code update: the difference in the ledger,
-- reason "set" (a removal takes the lots that expire first)
function G.set(tag, code, ckey, b)
    local lots, bal = G.load(tag, code, ckey)
    bal = G.expire(tag, code, lots, bal, now_s())
    G.save(tag, code, ckey, lots, bal)
    if b > bal then
        G.add(tag, code, ckey, b - bal, 0, 'credits_addition', 'set', '')
    elseif b < bal then
        G.take(tag, code, ckey, bal - b, 'credits_removal', 'set', '')
    end
end

-- a card deleted: what it held leaves in its ledger (reason "deleted"),
-- which stays, so the trail of a code made again goes on summing
function G.drop(tag, code, ckey)
    local h = redis.call('HMGET', ckey, 'b', 'x')
    if not h[1] then return end
    local lots, bal = G.load(tag, code, ckey)
    if bal > 0 then
        G.entry(tag, code, 'credits_removal', -bal, 0, 'deleted')
    end
    redis.call('SREM', tag .. ':gift', code)
    redis.call('ZREM', tag .. ':gx', code)
end
