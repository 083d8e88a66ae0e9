---------------------------------------------------------------- loyalty

-- A points programme per namespace (docs/loyalty.md).  Keys:
--   {NS}:lp            hash: the programme (voucher_loyalty_set)
--   {NS}:lm:<member>   hash: act, pend (points), tier, trev (the tier's
--                      next review), tnote/xnote (notices sent), due,
--                      dday/dpts (points earned that day), q<month> (what
--                      qualified for tiers in that month), earned, spent,
--                      expired
--   {NS}:ll:<member>   hash: the member's lots, "a:<expiry>" active and
--                      "p:<activation>:<expiry>" pending -> points (expiry
--                      0: never)
--   {NS}:lh:<member>   stream: the ledger, one entry per change, with the
--                      balance after it
--   {NS}:lo:<order>    hash: what an order earned (one order, one accrual)
--   {NS}:le:<key>      string: a custom event applied under that key
--   {NS}:ls:<ref>      hash: the lots a spend took, to give them back
--                      (a stack's: kids, its codes' redemptions, each of
--                      which has "up", the parent: redis/lib/cart.lua)
--   {NS}:lz            zset: member -> the next time something is due for
--                      it (activation, expiry, a notice, a tier review)
-- Points are integers; every time is unix seconds.  The member functions
-- take an optional last argument "at" (the worker's clock: a fake clock
-- drives a simulated year); without it Redis' clock is used.

local LP_TIER_PERIOD = {year = 1, quarter = 1, rolling12 = 1}

-- "name:num,name:num" -> {name = num}, stored as given
function V.pairs_list(s)
    if s == '' then return false end
    local n = 0
    for item in (s .. ','):gmatch('([^,]*),') do
        local k, v = string.match(item, '^([^,:%s]+):(%d+)$')
        if not k or not uint(v) then
            return nil, 'expected name:integer,... '
        end
        n = n + 1
    end
    if n > 256 then return nil, 'at most 256 entries' end
    return s
end

-- "name:threshold:multiplier_pct,...": thresholds ascending from 0
function V.tiers(s)
    if s == '' then return false end
    local last, n, seen = -1, 0, {}
    for item in (s .. ','):gmatch('([^,]*),') do
        local name, t, m = string.match(item, '^([%w_%-]+):(%d+):(%d+)$')
        if not name or not uint(t) or not uint(m) or seen[name] then
            return nil, 'expected name:threshold:multiplier_pct,... '
                        .. '(distinct names)'
        end
        t = tonumber(t)
        if (n == 0 and t ~= 0) or (n > 0 and t <= last) then
            return nil, 'thresholds ascending, the first 0'
        end
        seen[name] = true
        last, n = t, n + 1
    end
    if n > 16 then return nil, 'at most 16 tiers' end
    return s
end

function V.pos(s)
    local n = uint(s)
    if n and n >= 1 then return (s:gsub('^0+(%d)', '%1')) end
    return nil, 'expected an integer >= 1'
end

-- multipliers are percent: 100 is x1, at most 100000 (x1000)
function V.pct(s)
    local n = uint(s)
    if n and n <= 100000 then return (s:gsub('^0+(%d)', '%1')) end
    return nil, 'expected percent 0..100000'
end

local LP_SET = {
    status = V.enum({active = 1, paused = 1}, 'active|paused'),
    every = V.pos, points = V.uint, point_value = V.uint,
    category_multipliers = V.pairs_list, sku_multipliers = V.pairs_list,
    exclude_categories = V.list, exclude_skus = V.list,
    events = V.pairs_list,
    tiers = V.tiers,
    tier_basis = V.enum({points = 1, spend = 1}, 'points|spend'),
    tier_period = V.enum(LP_TIER_PERIOD, 'year|quarter|rolling12'),
    tier_downgrade = V.enum({one_down = 1, period = 1}, 'one_down|period'),
    tier_grace_days = V.uint,
    cap_order = V.uint, cap_day = V.uint,
    pending_days = V.uint,
    expiry_months = V.uint,
    expiry_round = V.enum({none = 1, month = 1, quarter = 1, year = 1},
                          'none|month|quarter|year'),
    tz_offset = V.tz,
    notify = V.enum({yes = 1, no = 1}, 'yes|no'),
    notice_days = V.uint, tier_notice_days = V.uint,
    -- referrals (redis/lib/referrals.lua)
    referral_referee_reward = V.string, referral_referrer_reward = V.string,
    referral_referrer_points = V.uint, referral_cap = V.uint,
    referral_period = V.enum({month = 1, quarter = 1, year = 1},
                             'month|quarter|year'),
    referral_code_days = V.uint,
}

-- the fields in the order voucher_loyalty_get answers them
local LP_FIELDS = {
    'status', 'every', 'points', 'point_value', 'category_multipliers',
    'sku_multipliers', 'exclude_categories', 'exclude_skus', 'events',
    'tiers', 'tier_basis', 'tier_period', 'tier_downgrade',
    'tier_grace_days', 'cap_order', 'cap_day', 'pending_days',
    'expiry_months', 'expiry_round', 'tz_offset', 'notify', 'notice_days',
    'referral_referee_reward', 'referral_referrer_reward',
    'referral_referrer_points', 'referral_cap', 'referral_period',
    'referral_code_days', 'tier_notice_days',
}

function L.map(s)
    local t = {}
    for k, v in string.gmatch(s or '', '([^,:]+):(%d+)') do
        t[k] = tonumber(v)
    end
    return t
end

-- the namespace's programme, parsed once (false: none)
function L.prog(tag)
    local p = L.progs[tag]
    if p ~= nil then return p end
    local v = redis.call('HMGET', tag .. ':lp', unpack(LP_FIELDS))
    if not v[1] then
        if PRIMARY then L.progs[tag] = false end
        return false
    end
    p = {status = v[1], every = tonumber(v[2]) or 1,
         points = tonumber(v[3]) or 0, point_value = tonumber(v[4]) or 0,
         cat = L.map(v[5]), sku = L.map(v[6]), xcat = v[7] or nil,
         xsku = v[8] or nil, events = L.map(v[9]), tiers = {},
         basis = v[11] or 'points', period = v[12] or 'year',
         downgrade = v[13] or 'one_down',
         grace = (tonumber(v[14]) or 0) * 86400,
         cap_order = tonumber(v[15]) or 0, cap_day = tonumber(v[16]) or 0,
         pending = (tonumber(v[17]) or 0) * 86400,
         months = tonumber(v[18]) or 0, round = v[19] or 'none',
         tz = (tonumber(v[20]) or 0) * 60, notify = v[21] == 'yes',
         notice = (tonumber(v[22]) or 0) * 86400,
         ref_referee = v[23] or nil, ref_referrer = v[24] or nil,
         ref_points = tonumber(v[25]) or 0, ref_cap = tonumber(v[26]) or 0,
         ref_period = v[27] or 'month',
         ref_days = (tonumber(v[28]) or 0) * 86400}
    -- tier_will_drop: this long before a review, at most the grace
    p.tnotice = (tonumber(v[29]) or 0) * 86400
    if p.tnotice == 0 or p.tnotice > p.grace then p.tnotice = p.grace end
    p.items = v[5] or v[6] or v[7] or v[8]
    for name, t, m in string.gmatch(v[10] or '', '([^,:]+):(%d+):(%d+)') do
        p.tiers[#p.tiers + 1] = {name = name, min = tonumber(t),
                                 mult = tonumber(m)}
    end
    if PRIMARY then L.progs[tag] = p end
    return p
end

------------------------------------------------------------ time

function L.civil(days)
    -- the proleptic Gregorian date of a day number (0: 1970-01-01)
    local z = days + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460)
                            + math.floor(doe / 36524)
                            - math.floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + math.floor(yoe / 4)
                       - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local d = doy - math.floor((153 * mp + 2) / 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    local y = yoe + era * 400
    if m <= 2 then y = y + 1 end
    return y, m, d
end

-- the month index (year * 12 + month - 1) of t in the programme's zone
function L.month(p, t)
    local y, m = L.civil(math.floor((t + p.tz) / 86400))
    return y * 12 + m - 1
end

-- when month index mi starts, unix seconds
function L.month_start(p, mi)
    local y = math.floor(mi / 12)
    return V.days_from_civil(y, mi - y * 12 + 1, 1) * 86400 - p.tz
end

function L.date(p, t)
    local y, m, d = L.civil(math.floor((t + p.tz) / 86400))
    return string.format('%04d-%02d-%02d', y, m, d)
end

-- when points earned at t expire (0: never): N months later, or at the
-- end of that month / quarter / year
function L.expiry(p, t)
    if p.months == 0 then return 0 end
    local loc = t + p.tz
    local days = math.floor(loc / 86400)
    local y, m, d = L.civil(days)
    local mi = y * 12 + m - 1 + p.months
    if p.round == 'month' then return L.month_start(p, mi + 1) end
    if p.round == 'quarter' then
        return L.month_start(p, mi - mi % 3 + 3)
    end
    if p.round == 'year' then
        return L.month_start(p, mi - mi % 12 + 12)
    end
    y = math.floor(mi / 12)
    m = mi - y * 12 + 1
    local last = V.MDAYS[m]
    if m == 2 and not (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then
        last = 28
    end
    if d > last then d = last end
    return V.days_from_civil(y, m, d) * 86400 + (loc - days * 86400) - p.tz
end

-- the qualification period holding t: its first month index, its length
-- in months, and when it ends
function L.period(p, t)
    local mi = L.month(p, t)
    local first, n = mi - mi % 12, 12
    if p.period == 'quarter' then
        first, n = mi - mi % 3, 3
    elseif p.period == 'rolling12' then
        -- the 12 months to this one; reviewed when a month ends
        return mi - 11, 12, L.month_start(p, mi + 1)
    end
    return first, n, L.month_start(p, first + n)
end

------------------------------------------------------------ arithmetic

-- floor(a * b / c) exactly, for integers a, b >= 0 and 1 <= c < 2^52
-- (no double rounding: a product past 2^53 is done bit by bit)
function L.muldiv(a, b, c)
    if a == 0 or b == 0 then return 0 end
    if a <= MAXINT / b then return math.floor(a * b / c) end
    local q = math.floor(a / c)
    local r = a - q * c
    local hi = q * b
    local aq, ar, xq, xr = 0, 0, 0, r
    while b > 0 do
        if b % 2 == 1 then
            aq, ar = aq + xq, ar + xr
            if ar >= c then aq, ar = aq + 1, ar - c end
        end
        b = math.floor(b / 2)
        xq, xr = xq * 2, xr * 2
        if xr >= c then xq, xr = xq + 1, xr - c end
    end
    local n = hi + aq
    return n > MAXINT and MAXINT or n
end

-- a signed integer: "-5", "+5", "5"
function L.int(s)
    local sign, d = string.match(s or '', '^([+-]?)(%d+)$')
    local n = uint(d)
    if not n then return nil end
    return sign == '-' and -n or n
end

------------------------------------------------------------ a member

-- a member id: 1..128 bytes, no control characters or spaces
function L.bad_id(id)
    return not (#id >= 1 and #id <= 128 and not string.find(id, '[%c ]'))
end

function L.load(tag, id, p, now)
    local key = tag .. ':lm:' .. id
    local all = redis.call('HGETALL', key)
    local h = {}
    for i = 1, #all, 2 do h[all[i]] = all[i + 1] end
    local m = {tag = tag, id = id, key = key, h = h, p = p, now = now,
               act = tonumber(h.act) or 0, pend = tonumber(h.pend) or 0,
               set = {}, lkey = tag .. ':ll:' .. id}
    m.act0, m.pend0 = m.act, m.pend
    m.tier = L.tier_index(p, h.tier)
    return m
end

function L.put(m, f, v)
    m.h[f] = v
    m.set[#m.set + 1] = f
    m.set[#m.set + 1] = v
end

-- writes the member's changed fields
function L.flush(m)
    if m.act ~= m.act0 or m.pend ~= m.pend0 or #m.set > 0 then
        L.put(m, 'act', dec(m.act))
        L.put(m, 'pend', dec(m.pend))
        redis.call('HSET', m.key, unpack(m.set))
        m.act0, m.pend0 = m.act, m.pend
    end
    m.set = {}
end

function L.lots(m)
    if not m.lots then
        local all = redis.call('HGETALL', m.lkey)
        local t = {}
        for i = 1, #all, 2 do t[all[i]] = tonumber(all[i + 1]) end
        m.lots = t
    end
    return m.lots
end

-- adds n (may be negative) to lot f
function L.lot(m, f, n)
    local lots = L.lots(m)
    local v = (lots[f] or 0) + n
    if v > 0 then
        lots[f] = v
        redis.call('HSET', m.lkey, f, dec(v))
    else
        lots[f] = nil
        redis.call('HDEL', m.lkey, f)
    end
end

-- the active lots, earliest expiry first, the ones that never expire last
function L.active(m)
    local list = {}
    for f, n in pairs(L.lots(m)) do
        local e = string.match(f, '^a:(%d+)$')
        if e then
            e = tonumber(e)
            list[#list + 1] = {f = f, n = n, e = e == 0 and math.huge or e}
        end
    end
    table.sort(list, function(a, b) return a.e < b.e end)
    return list
end

-- takes up to n active points, earliest expiry first; returns what it
-- took and "f:n,f:n" of where from
function L.take(m, n)
    local took, from = 0, {}
    for _, lot in ipairs(L.active(m)) do
        if took >= n then break end
        local x = lot.n < n - took and lot.n or n - took
        L.lot(m, lot.f, -x)
        took = took + x
        from[#from + 1] = lot.f .. '=' .. dec(x)
    end
    m.act = m.act - took
    return took, table.concat(from, ',')
end

-- a ledger entry with the balance after it
function L.entry(m, typ, pts, ...)
    redis.call('XADD', m.tag .. ':lh:' .. m.id, '*', 'type', typ,
               'points', dec(pts), 'active', dec(m.act),
               'pending', dec(m.pend), 'tier', m.p.tiers[m.tier]
               and m.p.tiers[m.tier].name or '', 'at', dec(m.now), ...)
end

-- an event for voucherd's automations (when the programme notifies)
function L.notify(m, typ, ...)
    if not m.p.notify then return end
    redis.call('XADD', m.tag .. ':events', '*', 'type', typ,
               'member', m.id, 'ts', dec(m.now), ...)
end

------------------------------------------------------------ tiers

function L.tier_index(p, name)
    if #p.tiers == 0 then return 0 end
    for i, t in ipairs(p.tiers) do
        if t.name == name then return i end
    end
    return 1
end

-- the highest tier q reaches
function L.tier_for(p, q)
    local i = 1
    for j, t in ipairs(p.tiers) do
        if q >= t.min then i = j end
    end
    return i
end

-- what qualified for tiers in n months from month index first
function L.qual(m, first, n)
    local q = 0
    for mi = first, first + n - 1 do
        q = q + (tonumber(m.h['q' .. mi]) or 0)
    end
    return q
end

function L.set_tier(m, i, typ)
    local p = m.p
    m.tier = i
    L.put(m, 'tier', p.tiers[i].name)
    L.entry(m, typ, 0)
    if typ == 'tier_upgraded' then
        local first, n, stop = L.period(p, m.now)
        L.put(m, 'trev', dec(stop + p.grace))
    end
    local need, nxt = L.to_next(m)
    L.notify(m, typ, 'tier', p.tiers[i].name, 'points', dec(m.act),
             'points_to_next_tier', dec(need), 'next_tier', nxt)
end

-- what is still needed for the next tier in the current period, and its
-- name ("" and 0 at the top)
function L.to_next(m)
    local p = m.p
    local nxt = p.tiers[m.tier + 1]
    if not nxt then return 0, '' end
    local first, n = L.period(p, m.now)
    local need = nxt.min - L.qual(m, first, n)
    return need > 0 and need or 0, nxt.name
end

-- upgrade at once to what the current period reached
function L.upgrade(m)
    local p = m.p
    if #p.tiers == 0 then return end
    local first, n = L.period(p, m.now)
    local i = L.tier_for(p, L.qual(m, first, n))
    if i > m.tier then L.set_tier(m, i, 'tier_upgraded') end
end

-- a review at the end of a period plus the grace: down to what the ended
-- period (or the current one so far) reached, one level at a time or at
-- once by the programme's policy
function L.review(m)
    local p = m.p
    for _ = 1, 60 do
        local trev = tonumber(m.h.trev)
        if not trev or trev > m.now then return end
        local pend_t = trev - p.grace
        local f1, n1 = L.period(p, pend_t - 1)
        local f2, n2, stop2 = L.period(p, pend_t)
        local a = L.tier_for(p, L.qual(m, f1, n1))
        local b = L.tier_for(p, L.qual(m, f2, n2))
        local target = a > b and a or b
        if target < m.tier then
            local i = target
            if p.downgrade == 'one_down' and m.tier - 1 > target then
                i = m.tier - 1
            end
            L.set_tier(m, i, 'tier_downgraded')
        end
        if m.tier > 1 then
            L.put(m, 'trev', dec(stop2 + p.grace))
        else
            L.put(m, 'trev', '')
            m.h.trev = nil
        end
    end
end

------------------------------------------------------------ due work

-- activation, expiry, notices and tier reviews due by m.now, then the
-- member's next due time in {NS}:lz
function L.work(m)
    local due = tonumber(m.h.due)
    if due and due <= m.now then
        local p, now = m.p, m.now
        -- pending lots whose time came
        local moved, due_lots = 0, {}
        for f, n in pairs(L.lots(m)) do
            local a, e = string.match(f, '^p:(%d+):(%d+)$')
            if a and tonumber(a) <= now then due_lots[#due_lots + 1] = f end
        end
        for _, f in ipairs(due_lots) do
            local n = m.lots[f]
            L.lot(m, f, -n)
            L.lot(m, 'a:' .. string.match(f, '(%d+)$'), n)
            moved = moved + n
        end
        if moved > 0 then
            m.pend, m.act = m.pend - moved, m.act + moved
            L.entry(m, 'activate', 0, 'activated', dec(moved))
        end
        -- expired lots
        local gone = 0
        for _, lot in ipairs(L.active(m)) do
            if lot.e <= now then
                L.lot(m, lot.f, -lot.n)
                gone = gone + lot.n
            end
        end
        if gone > 0 then
            m.act = m.act - gone
            L.put(m, 'expired', dec((tonumber(m.h.expired) or 0) + gone))
            L.entry(m, 'expire', -gone)
        end
        -- points expiring soon: one notice per expiry date
        if p.notice > 0 then
            local soon, when = 0, nil
            for _, lot in ipairs(L.active(m)) do
                if lot.e ~= math.huge and lot.e <= now + p.notice
                   and lot.e > (tonumber(m.h.xnote) or 0) then
                    if not when then when = lot.e end
                    if lot.e == when then soon = soon + lot.n end
                end
            end
            if when then
                L.put(m, 'xnote', dec(when))
                L.notify(m, 'points_expiring', 'points', dec(m.act),
                         'expiring_points', dec(soon),
                         'expiry_date', L.date(p, when - 1))
            end
        end
        -- a tier that will drop when the grace ends
        local trev = tonumber(m.h.trev)
        if trev and p.grace > 0 and trev - p.tnotice <= now
           and m.h.tnote ~= m.h.trev then
            local f1, n1 = L.period(p, trev - p.grace - 1)
            local f2, n2 = L.period(p, trev - p.grace)
            local q1, q2 = L.qual(m, f1, n1), L.qual(m, f2, n2)
            local a = L.tier_for(p, q1 > q2 and q1 or q2)
            L.put(m, 'tnote', m.h.trev)
            if a < m.tier then
                L.notify(m, 'tier_will_drop', 'tier', p.tiers[m.tier].name,
                         'points', dec(m.act),
                         'points_to_next_tier',
                         dec(p.tiers[m.tier].min - (q1 > q2 and q1 or q2)),
                         'expiry_date', L.date(p, trev - 1))
            end
        end
        L.review(m)
    end
    L.redue(m)
end

-- the member's next due time, kept in {NS}:lz and its "due" field
function L.redue(m)
    local p, due = m.p, math.huge
    for f in pairs(L.lots(m)) do
        local a = tonumber(string.match(f, '^p:(%d+):'))
        local e = tonumber(string.match(f, '^a:(%d+)$'))
        if a and a < due then due = a end
        if e and e > 0 then
            if e < due then due = e end
            if p.notice > 0 and e > (tonumber(m.h.xnote) or 0) then
                local n = e - p.notice
                if n < due then due = n end
            end
        end
    end
    local trev = tonumber(m.h.trev)
    if trev then
        if trev < due then due = trev end
        if p.grace > 0 and m.h.tnote ~= m.h.trev
           and trev - p.tnotice < due then
            due = trev - p.tnotice
        end
    end
    if due <= m.now then due = m.now + 1 end
    local old = m.h.due
    if due == math.huge then
        if old and old ~= '' then
            redis.call('ZREM', m.tag .. ':lz', m.id)
            L.put(m, 'due', '')
        end
    elseif tonumber(old) ~= due then
        redis.call('ZADD', m.tag .. ':lz', dec(due), m.id)
        L.put(m, 'due', dec(due))
    end
end

-- a member of the programme, with what was due done: the programme and
-- the member, or nil and a refusal
function L.member(tag, id, now)
    local p = L.prog(tag)
    if not p then return nil, {'no_programme'} end
    local m = L.load(tag, id, p, now)
    L.work(m)
    return m
end

------------------------------------------------------------ earning

-- the points of an order: amount after discount, the items' categories
-- and SKUs (multipliers, exclusions), the tier's multiplier, the caps
function L.order_points(m, amount, items)
    local p = m.p
    local base = amount
    if p.items and #items > 0 then
        local total, w = 0, 0
        for _, it in ipairs(items) do
            local pq = L.muldiv(it[3], it[4], 1)
            total = total + pq
            if not (listed(p.xsku, it[1]) or listed(p.xcat, it[2])) then
                w = w + L.muldiv(pq, p.sku[it[1]] or p.cat[it[2]] or 100,
                                 100)
            end
        end
        if total > 0 then
            if total > amount then w = L.muldiv(w, amount, total) end
            base = w
        end
    end
    local pts = math.floor(base / p.every) * p.points
    local t = p.tiers[m.tier]
    if t then pts = L.muldiv(pts, t.mult, 100) end
    if pts > MAXINT then pts = MAXINT end
    if p.cap_order > 0 and pts > p.cap_order then pts = p.cap_order end
    return pts
end

-- credits pts earned now (pending first when the programme says so);
-- qa is what counts for tiers; returns the lot it went to
function L.credit(m, pts, qa)
    local p, now = m.p, m.now
    local exp = L.expiry(p, now)
    local f
    if p.pending > 0 then
        f = 'p:' .. dec(now + p.pending) .. ':' .. dec(exp)
        m.pend = m.pend + pts
    else
        f = 'a:' .. dec(exp)
        m.act = m.act + pts
    end
    if pts > 0 then L.lot(m, f, pts) end
    local mi = L.month(p, now)
    if qa > 0 then
        local q = 'q' .. mi
        L.put(m, q, dec((tonumber(m.h[q]) or 0) + qa))
        -- months older than two years never count again
        for k in pairs(m.h) do
            local x = tonumber(string.match(k, '^q(%d+)$'))
            if x and x < mi - 24 then
                redis.call('HDEL', m.key, k)
            end
        end
    end
    L.put(m, 'earned', dec((tonumber(m.h.earned) or 0) + pts))
    return f, mi
end

-- the day cap: how much of pts today may still earn
function L.day_cap(m, pts)
    local p = m.p
    if p.cap_day == 0 then return pts end
    local day = math.floor((m.now + p.tz) / 86400)
    local used = tonumber(m.h.dday) == day and tonumber(m.h.dpts) or 0
    local left = p.cap_day - used
    if pts > left then pts = left > 0 and left or 0 end
    L.put(m, 'dday', dec(day))
    L.put(m, 'dpts', dec(used + pts))
    return pts
end

-- One order, one accrual: earns for order oid (amount after discount,
-- items {sku, category, price, qty}), unless it already earned.  ref is
-- what made it (a redemption id, or "").  Returns the reply.
function L.earn(tag, id, oid, amount, items, now, ref)
    local okey = tag .. ':lo:' .. oid
    if redis.call('EXISTS', okey) == 1 then
        return {'already_earned', 'order_id', oid}
    end
    local m, refusal = L.member(tag, id, now)
    if not m then return refusal end
    if m.p.status ~= 'active' then
        L.flush(m)
        return {'programme_paused'}
    end
    if m.tier == 0 and #m.p.tiers > 0 then m.tier = 1 end
    local pts = L.day_cap(m, L.order_points(m, amount, items))
    local f, mi = L.credit(m, pts, m.p.basis == 'spend' and amount or pts)
    L.entry(m, 'earn', pts, 'order', oid, 'ref', ref)
    redis.call('HSET', okey, 'm', id, 'ref', ref, 'pts', dec(pts), 'lot', f,
               'mi', dec(mi), 'qa', dec(m.p.basis == 'spend' and amount
                                         or pts), 'at', dec(now))
    if L.referral_converted then L.referral_converted(m) end
    L.upgrade(m)
    if m.h.tier == nil and m.tier > 0 then
        L.put(m, 'tier', m.p.tiers[m.tier].name)
    end
    L.redue(m)
    L.flush(m)
    return {'ok', 'order_id', oid, 'points', pts, 'active', m.act,
            'pending', m.pend, 'tier', m.h.tier or ''}
end

-- An order's accrual taken back (a rollback or release of its
-- redemption, or voucher_loyalty_revoke): its pending points first, then
-- active ones, earliest expiry first.  The balance never goes below 0:
-- what was already spent stays spent and is recorded as "unrecovered".
function L.revoke(tag, oid, now, ref)
    local okey = tag .. ':lo:' .. oid
    local o = redis.call('HMGET', okey, 'm', 'pts', 'lot', 'mi', 'qa', 'rev')
    if not o[1] then return {'order_not_found', 'order_id', oid} end
    if o[6] then return {'already_revoked', 'order_id', oid} end
    local m, refusal = L.member(tag, o[1], now)
    if not m then return refusal end
    local pts, f = tonumber(o[2]), o[3]
    local took = 0
    -- from its own lot: still pending, or activated (then "a:<expiry>")
    local lots = L.lots(m)
    local a = string.match(f, '^p:%d+:(%d+)$')
    if lots[f] then
        took = lots[f] < pts and lots[f] or pts
        L.lot(m, f, -took)
        if a then m.pend = m.pend - took else m.act = m.act - took end
    end
    if took < pts and a and lots['a:' .. a] then
        local x = lots['a:' .. a] < pts - took and lots['a:' .. a]
                  or pts - took
        L.lot(m, 'a:' .. a, -x)
        m.act = m.act - x
        took = took + x
    end
    if took < pts then took = took + L.take(m, pts - took) end
    local q = 'q' .. o[4]
    local qv = (tonumber(m.h[q]) or 0) - (tonumber(o[5]) or 0)
    if m.h[q] then L.put(m, q, dec(qv > 0 and qv or 0)) end
    L.entry(m, 'revoke', -took, 'order', oid, 'ref', ref or '',
            'unrecovered', dec(pts - took))
    redis.call('HSET', okey, 'rev', dec(took))
    L.redue(m)
    L.flush(m)
    return {'ok', 'order_id', oid, 'points', took,
            'unrecovered', pts - took, 'active', m.act, 'pending', m.pend}
end

-- Spends n active points for ref (recorded in {NS}:ls:<ref> so that a
-- refund gives back the same lots).  Returns nil, or a refusal.
function L.spend(m, n, ref, typ, reason)
    if n > m.act then
        return {'insufficient_points', 'active', m.act, 'points', n}
    end
    local took, from = L.take(m, n)
    if typ ~= 'adjust' then
        L.put(m, 'spent', dec((tonumber(m.h.spent) or 0) + took))
    end
    L.entry(m, typ, -took, 'ref', ref, 'reason', reason or '')
    if ref ~= '' then
        redis.call('HSET', m.tag .. ':ls:' .. ref, 'm', m.id, 'from', from,
                   'pts', dec(took))
    end
end

-- gives back what spend ref took, to the lots it came from (an expired
-- one expires again at the next work)
function L.refund(tag, ref, now, why)
    local skey = tag .. ':ls:' .. ref
    local s = redis.call('HMGET', skey, 'm', 'from', 'pts', 'back')
    if not s[1] or s[4] then return nil end
    local m = L.member(tag, s[1], now)
    if not m then return nil end
    local n = 0
    for f, x in string.gmatch(s[2], '([^,=]+)=(%d+)') do
        L.lot(m, f, tonumber(x))
        n = n + tonumber(x)
    end
    m.act = m.act + n
    local sp = (tonumber(m.h.spent) or 0) - n
    L.put(m, 'spent', dec(sp > 0 and sp or 0))
    L.entry(m, 'refund', n, 'ref', ref, 'reason', why)
    redis.call('HSET', skey, 'back', dec(now))
    L.redue(m)
    L.flush(m)
    return n
end

------------------------------------------------------------ the edge

-- Points paying at checkout (a redeem or reserve with "p<N>"): what N
-- points pay of what is left after the discount, at point_value each,
-- never more than is left.  Returns {m, used, value, active} (a redeem
-- has the member worked; a validate only reads), or nil and a reason.
function L.pay(tag, cust, pts, left, redeem)
    local p = L.prog(tag)
    if not p then return nil, 'no_programme' end
    if p.point_value == 0 then return nil, 'points_not_accepted' end
    if cust == '' then return nil, 'customer_required' end
    local lp = {}
    if redeem then
        lp.m = L.member(tag, cust, now_s())
        lp.active = lp.m.act
    else
        lp.active = tonumber(redis.call('HGET', tag .. ':lm:' .. cust,
                                        'act')) or 0
    end
    if pts > lp.active then return nil, 'insufficient_points' end
    local most = math.floor(left / p.point_value)
    lp.used = pts < most and pts or most
    lp.value = lp.used * p.point_value
    return lp
end

-- the points pairs of an answer
function L.pay_pairs(r, lp, left)
    r[#r + 1] = 'points_used'; r[#r + 1] = lp.used
    r[#r + 1] = 'points_value'; r[#r + 1] = lp.value
    r[#r + 1] = 'amount_due'; r[#r + 1] = left - lp.value
    r[#r + 1] = 'points_balance'; r[#r + 1] = lp.active - lp.used
end

-- a redemption id paid with points: spend them under its id (released or
-- rolled back, they come back)
function L.paid(tag, lp, id)
    local m = lp.m
    if lp.used > 0 then
        L.spend(m, lp.used, id, 'spend', 'checkout')
        redis.call('HSET', tag .. ':ls:' .. id, 'val', dec(lp.value))
    end
    L.redue(m)
    L.flush(m)
end

-- a replayed answer gets its points pairs again from the spend's record
function L.paid_pairs(tag, r)
    local id = held_id(r)
    if not id then return end
    local s = redis.call('HMGET', tag .. ':ls:' .. id, 'pts', 'val')
    if not s[1] then return end
    local i = #r
    r[i + 1] = 'points_used'; r[i + 2] = tonumber(s[1])
    r[i + 3] = 'points_value'; r[i + 4] = tonumber(s[2]) or 0
end

-- a reservation's items, kept until it is settled for the earn that a
-- confirm makes (only when the programme has item rules)
function L.stash(tag, id, args, n, hold_ms)
    local p = L.prog(tag)
    if not (p and p.items) then return end
    redis.call('SET', tag .. ':li:' .. id,
               cmsgpack.pack({unpack(args, 7, 6 + 4 * n)}), 'PX',
               dec(hold_ms + 3600000))
end

-- A reservation confirmed: the order earns (one order, one accrual: a
-- second confirm path or the storefront's purchase event earns nothing).
-- The amount is the order's after the discount and the points paid.
function L.confirmed(tag, id, e)
    local p = L.prog(tag)
    if not p or p.status ~= 'active' then return end
    e = e or redemption(tag .. ':log', id)
    if not e or e[8] == '' then return end
    local amount = (tonumber(e[12]) or 0) - (tonumber(e[16]) or 0)
    local val = tonumber(redis.call('HGET', tag .. ':ls:' .. id, 'val'))
    if val then amount = amount - val end
    local items = {}
    if p.items then
        local ikey = tag .. ':li:' .. id
        local raw = redis.call('GET', ikey)
        if raw then
            local a = cmsgpack.unpack(raw)
            for i = 1, #a, 4 do
                items[#items + 1] = {a[i], a[i + 1], tonumber(a[i + 2]),
                                     tonumber(a[i + 3])}
            end
            redis.call('DEL', ikey)
        end
    end
    L.earn(tag, e[8], e[10] ~= '' and e[10] or id,
           amount > 0 and amount or 0, items, now_s(), id)
end

-- A redemption rolled back, released or expired: the points it paid come
-- back; the points its order earned go when this redemption earned them,
-- or when it is a rollback (the order is undone)
function L.undone(tag, id, e, typ)
    if not L.prog(tag) then return end
    local now = now_s()
    L.refund(tag, id, now, typ)
    local oid = e[10] ~= '' and e[10] or id
    local o = redis.call('HMGET', tag .. ':lo:' .. oid, 'ref', 'rev')
    if o[1] and not o[2] and (o[1] == id or typ == 'rollback') then
        L.revoke(tag, oid, now, id)
    end
end

-- is the customer in one of the tiers of a ",a,b," list (a member not
-- yet in the programme is in its base tier)
function L.in_tiers(tag, cust, list)
    local t = redis.call('HGET', tag .. ':lm:' .. cust, 'tier')
    if not t then
        local p = L.prog(tag)
        t = p and p.tiers[1] and p.tiers[1].name
    end
    return t and listed(list, t)
end

------------------------------------------------------------ functions

-- "at" when given (the worker's clock), else Redis' clock
function L.at(s)
    if s and s ~= '' then return uint(s) end
    return now_s()
end

-- The trailing arguments of a member function from args[i]: an optional
-- "at" (digits), then the edge's limits (r.../l..., as a validate's).
-- Returns now and the limits' verdict: a refusal (nothing else is done),
-- or the status pairs for the answer; nil when an argument is malformed.
function L.tail(tag, args, i)
    local now
    if args[i] and string.find(args[i], '^%d+$') then
        now = uint(args[i])
        if not now then return nil end
        i = i + 1
    else
        now = now_s()
    end
    if i > #args then return now end
    local refusal, status, name = limits_apply(tag, '', args, i)
    if refusal == false then return nil end
    if refusal then
        -- no code: its pair goes
        table.remove(refusal, 2)
        table.remove(refusal, 2)
        return now, refusal
    end
    return now, nil, {status, name}
end

-- the limits' pairs (for $voucher_limit_status) on an answer
function L.limited(r, lim)
    if lim and type(r) == 'table' and not r.err then
        limit_pairs(r, lim[1], lim[2])
    end
    return r
end

-- FCALL voucher_loyalty_set 1 {NS}:lp field value ...
function api.loyalty_set(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):lp$')
    if not tag then return bad_key() end
    local new, order = parse_fields(args, LP_SET)
    if not new then return order end
    if redis.call('EXISTS', keys[1]) == 0 and new.status == nil then
        order[#order + 1] = 'status'
        new.status = 'active'
    end
    write_fields(keys[1], new, order)
    L.progs[tag] = nil
    return 'OK'
end

-- FCALL voucher_loyalty_get 1 {NS}:lp -> field value ..., or nil
function api.loyalty_get(keys)
    local tag = string.match(keys[1], '^({[^}]+}):lp$')
    if not tag then return bad_key() end
    local v = redis.call('HMGET', keys[1], unpack(LP_FIELDS))
    if not v[1] then return nil end
    local r = {}
    for i, name in ipairs(LP_FIELDS) do
        local x = v[i]
        if x then
            if LP_SET[name] == V.list then x = string.sub(x, 2, -2) end
            r[#r + 1] = name; r[#r + 1] = x
        end
    end
    return r
end

-- the member id of KEYS[1] {NS}:lm:<member>
function L.key(k)
    local tag, id = string.match(k, '^({[^}]+}):lm:(.+)$')
    if tag and not L.bad_id(id) then return tag, id end
end

-- FCALL voucher_loyalty_earn 1 {NS}:lm:<member>
--       order_id amount nitems [sku category price qty]* [at] [limits]
-- (nginx's voucher_api loyalty_earn sends the limits)
function api.loyalty_earn(keys, args)
    local tag, id = L.key(keys[1])
    if not tag then return bad_key() end
    local oid, amount, n = args[1], uint(args[2]), uint(args[3])
    if not (oid and amount and n) or oid == '' or #oid > 128
       or #args < 3 + 4 * n then
        return bad_args()
    end
    local items = {}
    for i = 4, 3 + 4 * n, 4 do
        local pr, q = uint(args[i + 2]), uint(args[i + 3])
        if not (pr and q) then return bad_args() end
        items[#items + 1] = {args[i], args[i + 1], pr, q}
    end
    local now, refusal, lim = L.tail(tag, args, 4 + 4 * n)
    if not now then return bad_args() end
    if refusal then return refusal end
    return L.limited(L.earn(tag, id, oid, amount, items, now, ''), lim)
end

-- FCALL voucher_loyalty_event 1 {NS}:lm:<member> event key [at]
-- a custom event's points (signup, birthday, review...), once per key
function api.loyalty_event(keys, args)
    local tag, id = L.key(keys[1])
    if not tag then return bad_key() end
    local ev, key = args[1], args[2]
    local now = L.at(args[3])
    if not (ev and key and now) or key == '' or #args > 3 then
        return bad_args()
    end
    local m, refusal = L.member(tag, id, now)
    if not m then return refusal end
    local pts = m.p.events[ev]
    if not pts then
        L.flush(m)
        return {'unknown_event', 'event', ev}
    end
    local ekey = tag .. ':le:' .. key
    if redis.call('EXISTS', ekey) == 1 then
        L.flush(m)
        return {'already_earned', 'event', ev, 'key', key}
    end
    if m.tier == 0 and #m.p.tiers > 0 then
        m.tier = 1
        L.put(m, 'tier', m.p.tiers[1].name)
    end
    local f = L.credit(m, pts, m.p.basis == 'points' and pts or 0)
    L.entry(m, 'event', pts, 'reason', ev, 'ref', key)
    redis.call('SET', ekey, id)
    L.upgrade(m)
    L.redue(m)
    L.flush(m)
    return {'ok', 'event', ev, 'points', pts, 'active', m.act,
            'pending', m.pend, 'tier', m.h.tier or ''}
end

-- the balance of a member (after what was due)
function L.balance(m)
    local p = m.p
    local soon, when = 0, nil
    for _, lot in ipairs(L.active(m)) do
        if lot.e == math.huge then break end
        if not when then when = lot.e end
        if lot.e == when then soon = soon + lot.n end
    end
    local need, nxt = L.to_next(m)
    local first, n = L.period(p, m.now)
    local r = {'ok', 'member', m.id, 'active', m.act, 'pending', m.pend,
            'expiring_points', soon, 'expiry_date',
            when and L.date(p, when - 1) or '',
            'tier', p.tiers[m.tier] and p.tiers[m.tier].name or '',
            'next_tier', nxt, 'points_to_next_tier', need,
            'qualified', L.qual(m, first, n),
            'earned', tonumber(m.h.earned) or 0,
            'spent', tonumber(m.h.spent) or 0,
            'expired', tonumber(m.h.expired) or 0}
    -- referrals: the member's code, who referred it, its counts
    for _, f in ipairs({{'rc', 'referral_code'}, {'rby', 'referred_by'}}) do
        if m.h[f[1]] then
            r[#r + 1] = f[2]; r[#r + 1] = m.h[f[1]]
        end
    end
    if m.h.refs then
        r[#r + 1] = 'referrals'; r[#r + 1] = tonumber(m.h.refs)
        r[#r + 1] = 'conversions'; r[#r + 1] = tonumber(m.h.convs) or 0
    end
    return r
end

-- FCALL voucher_loyalty_balance 1 {NS}:lm:<member> [at] [limits]
function api.loyalty_balance(keys, args)
    local tag, id = L.key(keys[1])
    if not tag then return bad_key() end
    local now, refusal, lim = L.tail(tag, args, 1)
    if not now then return bad_args() end
    if refusal then return refusal end
    local m
    m, refusal = L.member(tag, id, now)
    if not m then return L.limited(refusal, lim) end
    L.flush(m)
    return L.limited(L.balance(m), lim)
end

-- FCALL voucher_loyalty_history 1 {NS}:lm:<member> count [before]
-- the ledger, newest first: {{id, field, value, ...}, ...}
function api.loyalty_history(keys, args)
    local tag, id = L.key(keys[1])
    if not tag then return bad_key() end
    local count = uint(args[1])
    if not count or count < 1 or count > 1000 or #args > 2 then
        return bad_args()
    end
    local top = args[2] and args[2] ~= '' and '(' .. args[2] or '+'
    local res = redis.pcall('XREVRANGE', tag .. ':lh:' .. id, top, '-',
                            'COUNT', count)
    if type(res) ~= 'table' or res.err then return bad_args() end
    local out = {}
    for _, e in ipairs(res) do
        local row = {e[1]}
        for _, x in ipairs(e[2]) do row[#row + 1] = x end
        out[#out + 1] = row
    end
    return out
end

-- the ledger's numbers, as numbers
L.NUMERIC = {points = 1, active = 1, pending = 1, at = 1, activated = 1,
             unrecovered = 1}

-- FCALL voucher_loyalty_ledger 1 {NS}:lm:<member> count before [limits]
-- the ledger for the edge (voucher_api loyalty_history), newest first:
-- {ok, member, m, entries, {{id, I, type, T, points, N, ...}, ...},
--  next, <the id to pass as before for the next page, or "">}
function api.loyalty_ledger(keys, args)
    local tag, id = L.key(keys[1])
    if not tag then return bad_key() end
    local count, before = uint(args[1]), args[2]
    if not (count and before) or count < 1 or count > 1000
       or (before ~= '' and not string.find(before, '^%d+%-%d+$')) then
        return bad_args()
    end
    local now, refusal, lim = L.tail(tag, args, 3)
    if not now or (args[3] and string.find(args[3], '^%d')) then
        return bad_args()
    end
    if refusal then return refusal end
    if not L.prog(tag) then return L.limited({'no_programme'}, lim) end
    local res = redis.call('XREVRANGE', tag .. ':lh:' .. id,
                           before ~= '' and '(' .. before or '+', '-',
                           'COUNT', count + 1)
    local out = {}
    for i = 1, #res < count and #res or count do
        local e = res[i]
        local row = {'id', e[1]}
        for j = 1, #e[2], 2 do
            local k, v = e[2][j], e[2][j + 1]
            row[#row + 1] = k
            row[#row + 1] = L.NUMERIC[k] and tonumber(v) or v
        end
        out[i] = row
    end
    return L.limited({'ok', 'member', id, 'entries', out, 'next',
                      #res > count and res[count][1] or ''}, lim)
end

-- FCALL voucher_loyalty_adjust 1 {NS}:lm:<member> points reason key [at]
-- points "+N" or "-N"; the key makes it happen once
function api.loyalty_adjust(keys, args)
    local tag, id = L.key(keys[1])
    if not tag then return bad_key() end
    local n, reason, key = L.int(args[1]), args[2], args[3]
    local now = L.at(args[4])
    if not (reason and key and now) or #args > 4 then return bad_args() end
    if not n or n == 0 or n > MAXINT or n < -MAXINT then
        return {'invalid_points', 'points', args[1] or ''}
    end
    if reason == '' or #reason > 256 then
        return invalid('reason', 'required, at most 256 bytes')
    end
    local m, refusal = L.member(tag, id, now)
    if not m then return refusal end
    if key ~= '' and redis.call('EXISTS', tag .. ':le:' .. key) == 1 then
        L.flush(m)
        return {'already_applied', 'key', key}
    end
    if n > 0 then
        if m.act + m.pend + n > MAXINT then
            L.flush(m)
            return {'invalid_points', 'points', args[1]}
        end
        local f = 'a:' .. dec(L.expiry(m.p, now))
        L.lot(m, f, n)
        m.act = m.act + n
        L.entry(m, 'adjust', n, 'reason', reason, 'ref', key)
    else
        local r = L.spend(m, -n, '', 'adjust', reason)
        if r then L.flush(m); return r end
    end
    if key ~= '' then redis.call('SET', tag .. ':le:' .. key, id) end
    L.redue(m)
    L.flush(m)
    return {'ok', 'points', n, 'active', m.act, 'pending', m.pend}
end

-- FCALL voucher_loyalty_spend 1 {NS}:lm:<member> points ref [at]
-- active points spent for ref (unique: a second spend under it is
-- refused); voucher_loyalty_refund gives them back
function api.loyalty_spend(keys, args)
    local tag, id = L.key(keys[1])
    if not tag then return bad_key() end
    local n, ref = uint(args[1]), args[2]
    local now = L.at(args[3])
    if not (ref and now) or ref == '' or #args > 3 then return bad_args() end
    if not n or n == 0 then
        return {'invalid_points', 'points', args[1] or ''}
    end
    if redis.call('EXISTS', tag .. ':ls:' .. ref) == 1 then
        return {'already_applied', 'ref', ref}
    end
    local m, refusal = L.member(tag, id, now)
    if not m then return refusal end
    local r = L.spend(m, n, ref, 'spend')
    L.redue(m)
    L.flush(m)
    if r then return r end
    return {'ok', 'points', n, 'active', m.act, 'pending', m.pend}
end

-- FCALL voucher_loyalty_refund 1 {NS}:ls:<ref> [at]
function api.loyalty_refund(keys, args)
    local tag, ref = string.match(keys[1], '^({[^}]+}):ls:(.+)$')
    if not tag then return bad_key() end
    local now = L.at(args[1])
    if not now or #args > 1 then return bad_args() end
    local n = L.refund(tag, ref, now, 'refund')
    if not n then return {'spend_not_found', 'ref', ref} end
    return {'ok', 'points', n}
end

-- FCALL voucher_loyalty_revoke 1 {NS}:lo:<order> [at]
function api.loyalty_revoke(keys, args)
    local tag, oid = string.match(keys[1], '^({[^}]+}):lo:(.+)$')
    if not tag then return bad_key() end
    local now = L.at(args[1])
    if not now or #args > 1 then return bad_args() end
    return L.revoke(tag, oid, now, '')
end

-- FCALL voucher_loyalty_sweep 1 {NS}:lz [at] [max]
-- works the members whose due time has come (at most max, 100 by
-- default); returns how many
function api.loyalty_sweep(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):lz$')
    if not tag then return bad_key() end
    local now = L.at(args[1])
    local max = uint(args[2] or '100')
    if not (now and max) or max < 1 or #args > 2 then return bad_args() end
    local p = L.prog(tag)
    if not p then return 0 end
    local ids = redis.call('ZRANGE', keys[1], '-inf', dec(now), 'BYSCORE',
                           'LIMIT', 0, max)
    for _, id in ipairs(ids) do
        local m = L.load(tag, id, p, now)
        L.work(m)
        L.flush(m)
    end
    return #ids
end

reg('voucher_loyalty_set', api.loyalty_set)
reg('voucher_loyalty_get', api.loyalty_get, true)
reg('voucher_loyalty_earn', api.loyalty_earn)
reg('voucher_loyalty_event', api.loyalty_event)
reg('voucher_loyalty_balance', api.loyalty_balance)
reg('voucher_loyalty_history', api.loyalty_history, true)
reg('voucher_loyalty_ledger', api.loyalty_ledger)
reg('voucher_loyalty_adjust', api.loyalty_adjust)
reg('voucher_loyalty_spend', api.loyalty_spend)
reg('voucher_loyalty_refund', api.loyalty_refund)
reg('voucher_loyalty_revoke', api.loyalty_revoke)
reg('voucher_loyalty_sweep', api.loyalty_sweep)
