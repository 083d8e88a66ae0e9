-- Members (voucherd, voucherctl members).  {NS}:m:<id> holds a member:
--   name phone email line birthday tier tags signup first last count spend
--   ev (the last purchase event applied), attrs (custom attributes, JSON)
-- and the set {NS}:members lists the ids.

function V.days_from_civil(y, m, d)
    -- days since 1970-01-01 of a proleptic Gregorian date
    if m <= 2 then y = y - 1 end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = math.floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

V.MDAYS = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

function V.valid_day(y, m, d)
    if m < 1 or m > 12 or d < 1 or d > V.MDAYS[m] then return false end
    if y and m == 2 and d == 29
       and not (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then
        return false
    end
    return true
end

-- unix seconds, or YYYY-MM-DD (midnight UTC)
function V.when(s)
    if uint(s) then return (s:gsub('^0+(%d)', '%1')) end
    local y, m, d = string.match(s, '^(%d%d%d%d)%-(%d%d)%-(%d%d)$')
    if y then
        y, m, d = tonumber(y), tonumber(m), tonumber(d)
        if V.valid_day(y, m, d) and y >= 1970 then
            return string.format('%d', V.days_from_civil(y, m, d) * 86400)
        end
    end
    return nil, 'expected unix seconds or YYYY-MM-DD'
end

-- YYYY-MM-DD or MM-DD, stored as given (the year is optional)
function V.birthday(s)
    local y, m, d = string.match(s, '^(%d%d%d%d)%-(%d%d)%-(%d%d)$')
    if not y then
        m, d = string.match(s, '^(%d%d)%-(%d%d)$')
    end
    if m and V.valid_day(tonumber(y), tonumber(m), tonumber(d)) then
        return s
    end
    return nil, 'expected YYYY-MM-DD or MM-DD'
end

-- digits, an optional leading +; spaces, dashes, dots, brackets dropped
function V.phone(s)
    local p = string.gsub(s, '[ %-%.%(%)]', '')
    if string.find(p, '^%+?%d+$') then
        local n = #p - (string.sub(p, 1, 1) == '+' and 1 or 0)
        if n >= 6 and n <= 15 then return p end
    end
    return nil, 'expected a phone number of 6-15 digits'
end

function V.email(s)
    if #s <= 254 and string.find(s, '^[^@%s]+@[^@%s]+$') then return s end
    return nil, 'expected an address like name@example.com'
end

function V.token(s)
    if #s <= 128 and string.find(s, '^[!-~]+$') then return s end
    return nil, '1..128 printable ASCII characters'
end

-- a comma-separated list of tags, each a token
function V.tags(s)
    local list, why = V.list(s)
    if not list then return nil, why end
    if not list or #list > 1024 or string.find(list, '[%s]') then
        return nil, 'a comma-separated list of words'
    end
    return list
end

-- custom attributes: a JSON object of names (1-32 of [A-Za-z0-9_]) to
-- strings or integers, at most 32 of them and 2048 bytes; merged into
-- what the member has (a null value removes that attribute)
function V.attrs(s)
    local ok, o = pcall(cjson.decode, s)
    if not ok or type(o) ~= 'table' or #s > 2048 then
        return nil, 'expected a JSON object of at most 2048 bytes'
    end
    local n = 0
    for k, v in pairs(o) do
        n = n + 1
        if type(k) ~= 'string' or not string.find(k, '^[%w_]+$') or #k > 32
           or not (type(v) == 'string' or v == cjson.null
                   or (type(v) == 'number' and v == math.floor(v))) then
            return nil, 'names of letters, digits and _ (at most 32), '
                        .. 'values strings or integers'
        end
    end
    if n > 32 then return nil, 'at most 32 attributes' end
    return s
end

-- the attributes a member has, with new ones merged in
function V.attrs_merge(old, new)
    local o = old and cjson.decode(old) or {}
    for k, v in pairs(cjson.decode(new)) do
        if v == cjson.null then o[k] = nil else o[k] = v end
    end
    if next(o) == nil then return '' end
    return cjson.encode(o)
end

local MEMBER_SET = {
    name = V.string, phone = V.phone, email = V.email, line = V.token,
    birthday = V.birthday, tier = V.token, tags = V.tags,
    signup = V.when, first_purchase = V.when, last_purchase = V.when,
    purchases = V.uint, spend = V.uint, attrs = V.attrs,
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
function api.members_add(keys, args)
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
        local set = row[2]
        for i = 1, #set, 2 do
            if set[i] == 'attrs' then
                set[i + 1] = V.attrs_merge(redis.call('HGET', tag .. ':m:'
                                                      .. row[1], 'attrs'),
                                           set[i + 1])
            end
        end
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
function api.member_purchase(keys, args)
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

reg('voucher_members_add', api.members_add)
reg('voucher_member_purchase', api.member_purchase)
