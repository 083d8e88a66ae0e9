---------------------------------------------------------------- admin

local function invalid(name, why)
    return redis.error_reply('ERR invalid_field ' .. name .. ': ' .. why)
end

-- field validators: return the value to store, false to delete the field,
-- or nil and why; in one table, as the registered functions are in api
local V = {}

function V.uint(s)
    if uint(s) then return (s:gsub('^0+(%d)', '%1')) end
    return nil, 'expected an integer >= 0'
end

-- an integer, or "" to clear
function V.uint_opt(s)
    if s == '' then return false end
    return V.uint(s)
end

function V.enum(ok, list)
    return function(s)
        if ok[s] then return s end
        return nil, 'expected ' .. list
    end
end

function V.string(s)
    if s == '' then return false end
    if #s > 256 then return nil, 'longer than 256 bytes' end
    return s
end

function V.currency(s)
    if s == '' then return false end
    if string.find(s, '^[A-Z][A-Z][A-Z]$') then return s end
    return nil, 'expected 3 letters A-Z'
end

function V.days(s)
    if s == '' then return false end
    if string.find(s, '^[1-7]+$') and #s <= 7 then return s end
    return nil, 'expected ISO days of week as digits 1-7'
end

function V.minute(h, m)
    h, m = tonumber(h), tonumber(m)
    if h < 24 and m < 60 then return h * 60 + m end
end

-- "HH:MM-HH:MM" (end exclusive, may wrap, "24:00" as end) -> "M1-M2"
function V.hours(s)
    if s == '' then return false end
    local h1, m1, h2, m2 = string.match(s, '^(%d%d?):(%d%d)%-(%d%d?):(%d%d)$')
    if h1 then
        local a = V.minute(h1, m1)
        local b = V.minute(h2, m2)
        if h2 == '24' and m2 == '00' then b = 1440 end
        if a and b and a ~= b then return a .. '-' .. b end
    end
    return nil, 'expected HH:MM-HH:MM (start and end differ)'
end

-- minutes east of UTC, or "+HH:MM"/"-HH:MM" -> minutes
function V.tz(s)
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
function V.list(s)
    if s == '' then return false end
    local out = {}
    for item in (s .. ','):gmatch('([^,]*),') do
        item = string.match(item, '^%s*(.-)%s*$')
        if item == '' then return nil, 'empty element' end
        out[#out + 1] = item
    end
    return ',' .. table.concat(out, ',') .. ','
end

function V.readonly()
    return nil, 'counter, cannot be set'
end

local CAMPAIGN_SET = {
    name = V.string,
    status = V.enum({active = 1, paused = 1, archived = 1},
                    'active|paused|archived'),
    kind = V.enum({percent = 1, amount = 1, fixed_price = 1, free_item = 1,
                   gift_card = 1, buy_x_get_y = 1, steps = 1,
                   free_shipping = 1},
                  'percent|amount|fixed_price|free_item|gift_card|'
                  .. 'buy_x_get_y|steps|free_shipping'),
    value = V.uint, cap = V.uint, min_amount = V.uint,
    max_redemptions = V.uint, max_discount = V.uint, per_customer = V.uint,
    per_customer_code = V.uint, code_max_uses = V.uint,
    currency = V.currency, starts_at = V.uint_opt, ends_at = V.uint_opt,
    days = V.days, hours = V.hours, tz_offset = V.tz,
    include_skus = V.list, exclude_skus = V.list,
    include_categories = V.list, exclude_categories = V.list,
    free_sku = V.string, tiers = V.list,
    redeemed = V.readonly, discount_given = V.readonly,
    -- the cart: where it applies, and how it stacks (redis/lib/cart.lua)
    channels = V.list,
    stacking = V.enum({exclusive = 1, combinable = 1},
                      'exclusive|combinable'),
    stack_category = V.string, stack_priority = V.uint, stack_cap = V.uint,
    auto_apply = V.enum({['0'] = 1, ['1'] = 1}, '0|1'),
    -- rules (redis/lib/rules.lua); "rules" is derived from them
    customer_uses_per = RU.v_per, customer_amount_per = RU.v_per,
    customer_amount_max = V.uint_opt, steps = RU.v_steps,
    buy_qty = V.uint_opt, get_qty = V.uint_opt, conditions = RU.v_conds,
    rules = V.readonly,
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

function api.campaign_set(keys, args)
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
    local rf, why = RU.campaign(keys[1], new, order, kind, value)
    if rf then return invalid(rf, why) end

    if create and new.status == nil then
        order[#order + 1] = 'status'
        new.status = 'active'
    end
    if new.auto_apply == '1' and not W.auto_room(tag, id) then
        return invalid('auto_apply', 'at most ' .. W.AUTO_MAX
                       .. ' automatic campaigns')
    end
    write_fields(keys[1], new, order)
    if new.auto_apply ~= nil then W.auto_sync(tag, id, new.auto_apply) end

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
    redeemed = true, discount_given = true, stack_priority = true,
    stack_cap = true, customer_amount_max = true, buy_qty = true,
    get_qty = true,
}

local LIST_FIELDS = {
    include_skus = true, exclude_skus = true, include_categories = true,
    exclude_categories = true, tiers = true, channels = true,
}

function api.campaign_get(keys)
    if not string.match(keys[1], '^({[^}]+}):k:') then return bad_key() end
    local all = redis.call('HGETALL', keys[1])
    if #all == 0 then return nil end
    local h = {}
    for i = 1, #all, 2 do h[all[i]] = all[i + 1] end
    local r = {}
    for _, name in ipairs(CAMPAIGN_FIELDS) do
        local v = h[name]
        if name == 'rules' then
            v = nil                    -- derived, not a field one sets
        elseif v or name == 'redeemed' or name == 'discount_given' then
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
    campaign = V.string,
    status = V.enum({active = 1, disabled = 1}, 'active|disabled'),
    max_uses = V.uint_opt,             -- "" clears: the campaign's applies
    customer = V.string,
    balance = V.uint,
    starts_at = V.uint_opt, ends_at = V.uint_opt,
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

function api.code_set(keys, args)
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
            W.assign(tag, code, old[5], cust)
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
    elseif gift and new.balance then
        G.set(tag, code, ckey, tonumber(new.balance))
    end
    write_fields(ckey, new, order, CODE_FIELD)
    if create and gift then G.issue(tag, code, ckey) end
    -- a code given to a customer is in his wallet
    if new.customer ~= nil then W.assign(tag, code, old[5], new.customer) end
    return 'OK'
end

function api.code_get(keys)
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

function api.code_del(keys)
    local tag, code, ckey = code_key(keys[1])
    if not tag then return bad_key() end
    G.drop(tag, code, ckey)
    return redis.call('DEL', ckey)
           + redis.call('HDEL', bucket_key(tag, code), code)
end

local ENTRY_INT = {amount = true, discount = true, balance = true}

function api.redemption_get(keys, args)
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
    stream_maxlen = V.uint,
    -- seconds the trail and the delivery logs keep (retention.lua); 0 all
    trail_retention = V.uint,
    -- the most codes a stack applies (redis/lib/cart.lua)
    stack_max_codes = function(s)
        local n = uint(s)
        if n and n >= 1 and n <= 30 then return string.format('%d', n) end
        return nil, 'expected 1..30'
    end,
}

function api.settings_set(keys, args)
    if not string.match(keys[1], '^({[^}]+}):cfg$') then return bad_key() end
    local new, order = parse_fields(args, SETTINGS_FIELDS)
    if not new then return order end
    write_fields(keys[1], new, order)
    SETTINGS[string.match(keys[1], '^({[^}]+}):cfg$')] = nil
    return 'OK'
end

function api.settings_get(keys)
    local tag = string.match(keys[1], '^({[^}]+}):cfg$')
    if not tag then return bad_key() end
    local maxlen, ttl = settings(tag)
    local keep = tonumber(redis.call('HGET', keys[1], 'trail_retention'))
    return {'idem_ttl', ttl, 'stream_maxlen', maxlen,
            'trail_retention', keep or 0, 'stack_max_codes',
            tonumber(redis.call('HGET', keys[1], 'stack_max_codes'))
            or W.STACK_MAX}
end
