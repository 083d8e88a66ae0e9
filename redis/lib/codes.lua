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
-- bucket key when it is compact; sref: the serial nginx decoded
-- ({NS}:sb:<series>:<serial>, redis/lib/serial.lua), read instead
local function code_read(tag, ckey, code, sref)
    if sref then return S.read(tag, sref) end
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
    if type(bkey) == 'table' then
        S.uses(bkey, u)
    elseif bkey then
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
