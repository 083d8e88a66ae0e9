---------------------------------------------------------------- rules

-- Campaign rules beyond the classic ones (docs/redis.md, "Rules"): limits
-- per customer over a period (day, week, month in the campaign's zone) and
-- over the campaign's life, conditions on the order's metadata and the
-- customer's attributes, and the discount kinds buy_x_get_y, steps and
-- free_shipping.  voucher_campaign_set writes the derived field "rules"
-- ("1", CAMPAIGN_FIELDS' 31st) on a campaign that has any of them, so that
-- a campaign without costs evaluate_code one table index, and the native
-- module hands a campaign with it over to the library whole.

RU.KINDS = {buy_x_get_y = true, steps = true, free_shipping = true}
RU.PERIODS = {day = true, week = true, month = true}
RU.OPS = {eq = true, ['in'] = true, not_in = true, gte = true, lte = true}
RU.CONDS_MAX = 8
RU.VALUES_MAX = 32
RU.STEPS_MAX = 10
RU.SHIPPING = 'shipping'        -- the category of an order's shipping lines

-- days since 1970-01-01 of a date of the proleptic Gregorian calendar
function RU.days(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local doy = math.floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

-- the year and month of a day number
function RU.civil(z)
    z = z + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460)
                            + math.floor(doe / 36524)
                            - math.floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + math.floor(yoe / 4)
                       - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local m = mp + (mp < 10 and 3 or -9)
    return yoe + era * 400 + (m <= 2 and 1 or 0), m
end

-- The period of time t (seconds) in a zone (minutes east of UTC): its id
-- ("d<day>", "w<week>", "m<month>", counted from 1970 in local time), the
-- second it ends and the second it starts.  A week starts on Monday at
-- 00:00 local time.
function RU.period(p, t, tz)
    local off = (tz or 0) * 60
    local day = math.floor((t + off) / 86400)
    if p == 'day' then
        return 'd' .. day, (day + 1) * 86400 - off, day * 86400 - off
    elseif p == 'week' then
        -- day 0 was a Thursday: day + 3 is 0 on a Monday
        local w = math.floor((day + 3) / 7)
        return 'w' .. w, (w * 7 + 4) * 86400 - off, (w * 7 - 3) * 86400 - off
    end
    local y, m = RU.civil(day)
    local id = 'm' .. ((y - 1970) * 12 + m - 1)
    local first = RU.days(y, m, 1)
    if m == 12 then y, m = y + 1, 1 else m = m + 1 end
    return id, RU.days(y, m, 1) * 86400 - off, first * 86400 - off
end

-- The period a limit counts in: FCALL_RO voucher_period 1 {NS}:cfg
-- <day|week|month> <tz: minutes east of UTC> <unix seconds, "" = now>
-- -> {period, id, starts_at, s, ends_at, e}
function api.period(keys, args)
    if not string.match(keys[1] or '', '^{[^}]+}:cfg$') then
        return bad_key()
    end
    local p, tz, t = args[1], args[2], args[3]
    if #args ~= 3 or not RU.PERIODS[p] or not string.find(tz, '^[+-]?%d+$')
       or tonumber(tz) < -840 or tonumber(tz) > 840 then
        return bad_args()
    end
    t = t == '' and now_s() or uint(t)
    if not t then return bad_args() end
    local id, e, s = RU.period(p, t, tonumber(tz))
    return {'period', id, 'starts_at', s, 'ends_at', e}
end

-- "<period>:<max>" -> period, max
function RU.per(s)
    local p, n = string.match(s, '^(%a+):(%d+)$')
    return p, tonumber(n)
end

-- a stored counter "<period id>:<n>" -> n when of period id, else 0
function RU.count(v, id)
    if v then
        local p, n = string.match(v, '^([^:]+):(%d+)$')
        if p == id then return tonumber(n) end
    end
    return 0
end

------------------------------------------------------------ conditions

-- "order.channel in shop,web; customer.branch eq BKK01; order.basket gte 3"
-- -> {{scope, name, op, value or set}, ...}: the stored text is the
-- normalised one, parsed again (once per cached campaign) when evaluated
function RU.conds(s)
    local list = {}
    for part in (s .. ';'):gmatch('([^;]*);') do
        part = string.match(part, '^%s*(.-)%s*$')
        if part ~= '' then
            local scope, name, op, val = string.match(part,
                '^(%a+)%.([%w_]+)%s+([%a_]+)%s+(.-)$')
            if not scope or (scope ~= 'order' and scope ~= 'customer') then
                return nil, 'expected order.<name> or customer.<name> '
                            .. '<op> <value>'
            end
            if #name > 32 then return nil, 'a name is at most 32 bytes' end
            if not RU.OPS[op] then
                return nil, 'operator ' .. op .. ': expected eq, in, '
                            .. 'not_in, gte or lte'
            end
            local c = {scope, name, op}
            if op == 'gte' or op == 'lte' then
                c[4] = uint(val)
                if not c[4] then
                    return nil, op .. ' takes an integer >= 0'
                end
                c[5] = c[4]
            elseif op == 'eq' then
                if val == '' or #val > 64 or string.find(val, '[,;%c]') then
                    return nil, 'eq takes one value (1..64 bytes, no , ;)'
                end
                c[4], c[5] = val, val
            else
                local set, out = {}, {}
                for v in (val .. ','):gmatch('([^,]*),') do
                    v = string.match(v, '^%s*(.-)%s*$')
                    if v == '' or #v > 64 or string.find(v, '%c') then
                        return nil, op .. ' takes values of 1..64 bytes'
                    end
                    set[v] = true
                    out[#out + 1] = v
                end
                if #out > RU.VALUES_MAX then
                    return nil, 'at most ' .. RU.VALUES_MAX .. ' values'
                end
                c[4], c[5] = set, table.concat(out, ',')
            end
            list[#list + 1] = c
        end
    end
    if #list == 0 then return nil, 'no condition' end
    if #list > RU.CONDS_MAX then
        return nil, 'at most ' .. RU.CONDS_MAX .. ' conditions'
    end
    return list
end

-- the conditions as stored: "scope.name op value;..."
function RU.conds_text(list)
    local out = {}
    for i, c in ipairs(list) do
        out[i] = c[1] .. '.' .. c[2] .. ' ' .. c[3] .. ' ' .. c[5]
    end
    return table.concat(out, ';')
end

-- The request's business data: the argument "m" .. entries joined by NUL,
-- each "o<name>=<value>" (order metadata) or "c<name>=<value>" (customer
-- attributes).  -> {['order.x'] = v, ..., raw = s}, or nil when malformed
-- (raw goes into an idempotency fingerprint).
function RU.meta(s)
    local t = {raw = s}
    if #s == 1 then return t end
    for e in (string.sub(s, 2) .. '\0'):gmatch('([^%z]*)%z') do
        local sc, name, v = string.match(e, '^([oc])([%w_]+)=(.*)$')
        if not sc then return nil end
        t[(sc == 'o' and 'order.' or 'customer.') .. name] = v
    end
    return t
end

-- the first condition the request fails, as "scope.name", else nil
function RU.failed(list, meta)
    for _, c in ipairs(list) do
        local f = c[1] .. '.' .. c[2]
        local v = meta and meta[f]
        local op, ok = c[3], false
        if v then
            if op == 'eq' then ok = v == c[4]
            elseif op == 'in' then ok = c[4][v] == true
            elseif op == 'not_in' then ok = not c[4][v]
            else
                local n = uint(v)
                ok = n ~= nil and (op == 'gte' and n >= c[4]
                                   or op == 'lte' and n <= c[4])
            end
        end
        if not ok then return f end
    end
end

------------------------------------------------------------ discount kinds

-- "<threshold>:<discount>,..." -> {{t, d}, ...} ascending, or nil, why
function RU.steps(s)
    local list = {}
    for part in (s .. ','):gmatch('([^,]*),') do
        local t, d = string.match(part, '^%s*(%d+)%s*:%s*(%d+)%s*$')
        t, d = uint(t), uint(d)
        if not (t and d) then
            return nil, 'expected threshold:discount,... in minor units'
        end
        if d < 1 or d > t then
            return nil, 'a step gives 1 .. its threshold'
        end
        local last = list[#list]
        if last and (t <= last[1] or d <= last[2]) then
            return nil, 'thresholds and discounts must rise'
        end
        list[#list + 1] = {t, d}
    end
    if #list > RU.STEPS_MAX then
        return nil, 'at most ' .. RU.STEPS_MAX .. ' steps'
    end
    return list
end

-- The discount of a campaign of a kind of RU.KINDS (k: its rules), and the
-- eligible amount; or nil and the refusal.  args/last: the items, as
-- evaluate_code has them (checked); base: step 13's eligible amount.
function RU.discount(k, kind, args, n, last, base, code, camp)
    if kind == 'steps' then
        local st = k.steps or RU.steps(k[35])
        k.steps = st
        local d
        for _, s in ipairs(st) do
            if base >= s[1] then d = s[2] end
        end
        if not d then
            return nil, fail('order_below_minimum', code, camp, 'min_amount',
                             st[1][1])
        end
        return d, base
    end
    if n == 0 then return nil, fail('items_required', code, camp) end
    if kind == 'free_shipping' then
        local s = 0
        for i = 7, last, 4 do
            if args[i + 1] == RU.SHIPPING then
                s = s + tonumber(args[i + 2]) * tonumber(args[i + 3])
            end
        end
        if s == 0 then return nil, fail('no_shipping_line', code, camp) end
        return s, s
    end
    -- buy_x_get_y: of every buy + get matching units, the get cheapest
    -- ones are free (value: the percent off them, basis points)
    local inc_s, exc_s, inc_c, exc_c = k[17], k[18], k[19], k[20]
    local any_inc = inc_s or inc_c
    local units, sum, items = 0, 0, {}
    for i = 7, last, 4 do
        local sku, cat = args[i], args[i + 1]
        if cat ~= RU.SHIPPING
           and (not any_inc or listed(inc_s, sku) or listed(inc_c, cat))
           and not listed(exc_s, sku) and not listed(exc_c, cat) then
            local p, q = tonumber(args[i + 2]), tonumber(args[i + 3])
            items[#items + 1] = {p, q}
            units = units + q
            sum = sum + p * q
        end
    end
    if #items == 0 then return nil, fail('no_matching_items', code, camp) end
    local buy, get = k[36], k[37]
    local free = math.floor(units / (buy + get)) * get
    if free == 0 then
        return nil, fail('not_enough_items', code, camp, 'min_items',
                         buy + get)
    end
    table.sort(items, function(a, b) return a[1] < b[1] end)
    local d = 0
    for _, it in ipairs(items) do
        local q = it[2] < free and it[2] or free
        d = d + it[1] * q
        free = free - q
        if free == 0 then break end
    end
    local bp = k[3] or 10000
    local lo = math.fmod(d, 10000)
    d = (d - lo) / 10000 * bp + math.floor(lo * bp / 10000)
    return d, sum
end

------------------------------------------------------------ customer limits

-- Checks the conditions and the customer's limits of a campaign with
-- rules, for discount d.  Returns the refusal, or nil and what RU.take
-- writes when the call redeems (nil when nothing is counted).
function RU.check(tag, k, code, camp, cust, d, meta)
    local cs = k[38]
    if cs then
        local list = k.conds or RU.conds(cs)
        k.conds = list
        local f = RU.failed(list, meta)
        if f then return fail('condition_not_met', code, camp, 'field', f) end
    end
    local up, ap, amax = k[32], k[33], k[34] or 0
    if not up and not ap and amax == 0 then return nil end
    if cust == '' then return fail('customer_required', code, camp) end
    local ukey = tag .. ':u:' .. cust
    local fu, fa, fl = 'pu:' .. camp, 'pa:' .. camp, 'a:' .. camp
    local u = redis.call('HMGET', ukey, fu, fa, fl)
    local st = {ukey = ukey, camp = camp}
    local now = now_s()
    if up then
        local p, max = RU.per(up)
        local id, ends = RU.period(p, now, k[16])
        local n = RU.count(u[1], id)
        if n >= max then
            return fail('customer_period_limit', code, camp, 'resets_at',
                        ends)
        end
        st.pu, st.nu = id, n
    end
    if ap then
        local p, max = RU.per(ap)
        local id, ends = RU.period(p, now, k[16])
        local n = RU.count(u[2], id)
        if n + d > max then
            return fail('customer_period_amount', code, camp, 'resets_at',
                        ends)
        end
        st.pa, st.na = id, n
    end
    if amax > 0 then
        local n = tonumber(u[3]) or 0
        if n + d > amax then
            return fail('customer_amount_limit', code, camp)
        end
        st.nl = n
    end
    return nil, st
end

-- Counts redemption id (discount d) in the customer's counters checked by
-- RU.check (st), and keeps which periods it counted in, for RU.give.
function RU.take(tag, st, d, id)
    local set, rb = {}, {}
    if st.pu then
        set[#set + 1] = 'pu:' .. st.camp
        set[#set + 1] = st.pu .. ':' .. dec(st.nu + 1)
        rb[#rb + 1] = 'pu'; rb[#rb + 1] = st.pu
    end
    if st.pa then
        set[#set + 1] = 'pa:' .. st.camp
        set[#set + 1] = st.pa .. ':' .. dec(st.na + d)
        rb[#rb + 1] = 'pa'; rb[#rb + 1] = st.pa
    end
    if st.nl then
        set[#set + 1] = 'a:' .. st.camp
        set[#set + 1] = dec(st.nl + d)
    end
    redis.call('HSET', st.ukey, unpack(set))
    if #rb > 0 then redis.call('HSET', tag .. ':rb:' .. id, unpack(rb)) end
end

-- A rollback, release or expiry of redemption id gives back a, and its use
-- when full, to the periods it was counted in (a period since ended keeps
-- nothing to give back) and to the customer's total.
function RU.give(tag, id, cust, camp, a, full)
    local rb = redis.call('HMGET', tag .. ':rb:' .. id, 'pu', 'pa')
    local ukey = tag .. ':u:' .. cust
    local fu, fa, fl = 'pu:' .. camp, 'pa:' .. camp, 'a:' .. camp
    local u = redis.call('HMGET', ukey, fu, fa, fl)
    local set = {}
    local function back(f, pid, v, by)
        local n = RU.count(v, pid)
        if pid and n > 0 then
            n = n - by
            set[#set + 1] = f
            set[#set + 1] = pid .. ':' .. dec(n < 0 and 0 or n)
        end
    end
    if full then back(fu, rb[1], u[1], 1) end
    back(fa, rb[2], u[2], a)
    if u[3] then
        local n = (tonumber(u[3]) or 0) - a
        set[#set + 1] = fl
        set[#set + 1] = dec(n < 0 and 0 or n)
    end
    if #set > 0 then redis.call('HSET', ukey, unpack(set)) end
end

------------------------------------------------------------ the campaign

-- field validators for voucher_campaign_set (V's shape: the value to
-- store, false to delete, or nil and why)
function RU.v_per(s)
    if s == '' then return false end
    local p, n = RU.per(s)
    if p and RU.PERIODS[p] and n and n >= 1 and n <= MAXINT then
        return p .. ':' .. dec(n)
    end
    return nil, 'expected day|week|month:<max >= 1>'
end

function RU.v_conds(s)
    if s == '' then return false end
    if #s > 2048 then return nil, 'longer than 2048 bytes' end
    local list, why = RU.conds(s)
    if not list then return nil, why end
    return RU.conds_text(list)
end

function RU.v_steps(s)
    if s == '' then return false end
    local list, why = RU.steps(s)
    if not list then return nil, why end
    local out = {}
    for i, st in ipairs(list) do out[i] = dec(st[1]) .. ':' .. dec(st[2]) end
    return table.concat(out, ',')
end

-- the fields of R (CAMPAIGN_FIELDS 32..38) and their checks
RU.FIELDS = {'customer_uses_per', 'customer_amount_per',
            'customer_amount_max', 'steps', 'buy_qty', 'get_qty',
            'conditions'}

-- Checks a campaign's rules as they will be (new: the fields set, over
-- the stored ones) and sets new.rules to what the campaign needs.
-- Returns nil, or the field at fault and why.
function RU.campaign(key, new, order, kind, value)
    local old = redis.call('HMGET', key, 'rules', unpack(RU.FIELDS))
    local m, any = {}, RU.KINDS[kind] or false
    for i, f in ipairs(RU.FIELDS) do
        local v = new[f]
        if v == nil then v = old[i + 1] end
        m[f] = v
        -- a field of another kind (left from an earlier kind) is no rule
        if v and not (f == 'customer_amount_max' and v == '0')
           and not (f == 'steps' and kind ~= 'steps')
           and not ((f == 'buy_qty' or f == 'get_qty')
                    and kind ~= 'buy_x_get_y') then
            any = true
        end
    end
    if kind == 'steps' and not m.steps then
        return 'steps', 'required for steps'
    end
    if kind == 'buy_x_get_y' then
        for _, f in ipairs({'buy_qty', 'get_qty'}) do
            if not m[f] or tonumber(m[f]) < 1 then
                return f, 'at least 1, required for buy_x_get_y'
            end
        end
        if value and tonumber(value) > 10000 then
            return 'value', 'the percent off the items got, in basis '
                            .. 'points, at most 10000'
        end
    end
    local want = any and '1' or false
    if (old[1] or false) ~= want then
        order[#order + 1] = 'rules'
        new.rules = want
    end
end
