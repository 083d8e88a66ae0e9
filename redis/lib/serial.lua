---------------------------------------------------------------- serial series

-- A serial series holds bulk single-use codes that carry nothing but their
-- campaign: the body of each is a serial number permuted with a key that
-- only nginx and the worker hold (common/voucher_serial.h).  Nothing is
-- stored per code: {NS}:sr:<series> holds the series (k campaign, n size,
-- and the format it was issued in: p prefix, b body, m mac, cs charset,
-- sx suffix), and {NS}:sb:<series> one bit per serial, set while the code
-- is used or held.  A million codes cost 125 KB.
--
-- nginx decodes the serial after the offline check and names it as a
-- second key, {NS}:sb:<series>:<serial> (the bitmap's key and the serial;
-- the hash tag keeps the call in one slot).  A serial beyond the size, an
-- unknown series or a malformed name read as no code at all, as any
-- unknown code does.  The redeem's trail entry keeps "<series>:<serial>"
-- in its field "serial", so that a rollback, a release or an expiry
-- clears the bit.

local S = {}

-- {k, s, m, u, c, b, f, t, "<series>:<serial>"} of the serial sref
-- names (as code_read() answers; m is 1: one use, the 9th value the
-- trail's "serial") and {bitmap key, serial} in the place of a bucket
-- key; {false} when there is no such code
function S.read(tag, sref)
    local name, n = string.match(sref, '^{[^}]+}:sb:([%w_%-]+):(%d+)$')
    if not name or #name > 32 or #n > 10
       or string.sub(sref, 1, #tag + 1) ~= tag .. ':' then
        return {false}
    end
    local s = tonumber(n)
    local meta = redis.call('HMGET', tag .. ':sr:' .. name, 'k', 'n')
    if not meta[1] or s >= (tonumber(meta[2]) or 0) then return {false} end
    local bkey = tag .. ':sb:' .. name
    local u = redis.call('GETBIT', bkey, s)
    return {meta[1], false, '1', u == 1 and '1' or '0', false, false, false,
            false, name .. ':' .. n}, {bkey, s}
end

-- sets the bit while the code has a use (a redeem, a hold), clears it when
-- the use is given back
function S.uses(sb, u)
    redis.call('SETBIT', sb[1], sb[2], (tonumber(u) or 0) > 0 and 1 or 0)
end

function S.key(key)
    local tag, name = string.match(key, '^({[^}]+}):sr:([%w_%-]+)$')
    if tag and #name <= 32 then return tag, name end
end

function S.bad(name, why)
    return redis.error_reply('ERR invalid_field ' .. name .. ': ' .. why)
end

-- what must stay as the codes were issued: another format is other codes
S.FORMAT = {'p', 'b', 'm', 'cs', 'sx'}

-- voucher_series_set  KEYS[1] {NS}:sr:<series>
--   ARGV campaign size prefix body mac charset suffix
-- Registers a series, or changes its campaign or grows it; the bitmap is
-- made as long as the series at once, so its memory is known from the
-- start.  1: registered, 0: changed.
function api.series_set(keys, args)
    local tag, name = S.key(keys[1])
    if not tag then return redis.error_reply('ERR bad_key') end
    local camp, size, p, b, m, cs, sx = args[1], tonumber(args[2]), args[3],
        args[4], args[5], args[6], args[7]
    if not sx then return redis.error_reply('ERR bad_args') end
    if not string.find(camp, '^[!-~]+$') or #camp > 64 then
        return S.bad('campaign', '1..64 printable ASCII characters')
    end
    local kind = redis.call('HGET', tag .. ':k:' .. camp, 'kind')
    if not kind then return S.bad('campaign', 'not found') end
    if kind == 'gift_card' then
        return S.bad('campaign', 'a gift card has a balance of its own')
    end
    if not (string.find(args[2], '^%d+$') and size >= 1
            and size <= 4294967296) then
        return S.bad('size', 'an integer 1..4294967296')
    end
    if not (string.find(b, '^%d+$') and string.find(m, '^%d+$')
            and string.find(p .. cs .. sx, '^[0-9A-Z]*$')) then
        return S.bad('format', 'prefix, body, mac, charset, suffix')
    end
    local skey = keys[1]
    local old = redis.call('HMGET', skey, 'n', 'p', 'b', 'm', 'cs', 'sx')
    if old[1] then
        local new = {p, b, m, cs, sx}
        for i = 1, 5 do
            if old[i + 1] ~= new[i] then
                return S.bad(S.FORMAT[i],
                                  'the series was issued in another format')
            end
        end
        if size < tonumber(old[1]) then
            return S.bad('size', 'a series only grows')
        end
    end
    redis.call('HSET', skey, 'k', camp, 'n', args[2], 'p', p, 'b', b, 'm', m,
               'cs', cs, 'sx', sx)
    redis.call('SETBIT', tag .. ':sb:' .. name, size - 1,
               redis.call('GETBIT', tag .. ':sb:' .. name, size - 1))
    return old[1] and 0 or 1
end

-- voucher_series_get  KEYS[1] {NS}:sr:<series>: campaign size prefix body
-- mac charset suffix used (BITCOUNT: used and held codes), or nil
function api.series_get(keys)
    local tag, name = S.key(keys[1])
    if not tag then return redis.error_reply('ERR bad_key') end
    local s = redis.call('HMGET', keys[1], 'k', 'n', 'p', 'b', 'm', 'cs',
                         'sx')
    if not s[1] then return nil end
    return {'campaign', s[1], 'size', tonumber(s[2]), 'prefix', s[3],
            'body', tonumber(s[4]), 'mac', tonumber(s[5]), 'charset', s[6],
            'suffix', s[7], 'used',
            redis.call('BITCOUNT', tag .. ':sb:' .. name)}
end
