----------------------------------------------------------------- webhooks

-- Outgoing webhooks.  {NS}:wh:<id> holds a subscription:
--   url secret events status created
-- and its sender's state:
--   sent (the outbox entry delivered last) attempt owner lease error
--   delivered dead
-- {NS}:whs lists them.  voucherd tails the streams events come from with
-- the consumer group "webhooks" and hands each event to
-- voucher_webhook_fanout, which acknowledges it in its stream and appends
-- it to the outbox {NS}:who:<id> of every active subscription that wants
-- its type, in one call: an event reaches each outbox exactly once.  The
-- sender takes a subscription's outbox in order, one event at a time
-- (voucher_webhook_claim, _done); {NS}:whq holds the subscriptions with
-- something to send, scored by when (ms, Redis' clock): due now, after a
-- back-off, or at the end of a sender's lease.  Events given up on go to
-- the subscription's dead letters {NS}:whd:<id>.  Helpers in the table WH
-- (one local).

local WH = {TYPES = {
    redeemed = true, rolled_back = true, reservation_confirmed = true,
    reservation_released = true, balance_changed = true, code_issued = true,
    delivery_sent = true, delivery_failed = true, points_earned = true,
    points_spent = true, points_expiring = true, tier_changed = true,
    referral_converted = true, reward_redeemed = true,
}}

function WH.sub(keys)
    return string.match(keys[1] or '', '^({[^}]+}):wh:([%w_%-]+)$')
end

-- ",a,b," or "*"
function WH.events(s)
    if s == '*' then return s end
    local out = {}
    for t in string.gmatch(s, '[^,]+') do
        if not WH.TYPES[t] then return nil, 'unknown event type ' .. t end
        out[#out + 1] = t
    end
    if #out == 0 then return nil, 'at least one event type, or *' end
    return ',' .. table.concat(out, ',') .. ','
end

WH.FIELDS = {
    url = function(s)
        if #s <= 2048 and (string.find(s, '^https?://[^%s]+$')) then
            return s
        end
        return nil, 'expected an http:// or https:// URL'
    end,
    secret = function(s)
        if #s >= 16 and #s <= 256 and not string.find(s, '%s') then
            return s
        end
        return nil, '16..256 characters, no spaces'
    end,
    events = WH.events,
    status = function(s)
        if s == 'active' or s == 'paused' then return s end
        return nil, 'expected active or paused'
    end,
}

-- the snapshot the audit keeps: never the secret
ADM.snap.webhook = function(key)
    local h = redis.call('HMGET', key, 'url', 'events', 'status', 'created')
    if not h[1] then return nil end
    local ev = h[2] == '*' and '*' or string.sub(h[2], 2, -2)
    return {url = h[1], events = ev, status = h[3],
            created = tonumber(h[4])}
end

-- voucher_webhook_set  KEYS[1] {NS}:wh:<id>  ARGV field value ...
-- A subscription made or changed: url secret events (comma-separated
-- types, or *) status; a new one needs url, secret and events.
function api.webhook_set(keys, args)
    local tag, id = WH.sub(keys)
    if not tag then return bad_key() end
    if #args == 0 or #args % 2 ~= 0 then return bad_args() end
    local set = {}
    for i = 1, #args, 2 do
        local f = WH.FIELDS[args[i]]
        if not f then
            return redis.error_reply('ERR unknown_field ' .. args[i])
        end
        local v, why = f(args[i + 1])
        if not v then return invalid(args[i], why) end
        set[#set + 1] = args[i]
        set[#set + 1] = v
    end
    local exists = redis.call('EXISTS', keys[1]) == 1
    if not exists then
        local h = {}
        for i = 1, #set, 2 do h[set[i]] = true end
        for _, need in ipairs({'url', 'secret', 'events'}) do
            if not h[need] then
                return redis.error_reply('ERR invalid_field ' .. need
                                         .. ': required')
            end
        end
        set[#set + 1] = 'created'
        set[#set + 1] = dec(now_ms())
        if not h.status then
            set[#set + 1] = 'status'
            set[#set + 1] = 'active'
        end
    end
    redis.call('HSET', keys[1], unpack(set))
    redis.call('SADD', tag .. ':whs', id)
    -- what waited while it was paused is sent on resume
    redis.call('ZADD', tag .. ':whq', 'NX', dec(now_ms()), id)
    return 'OK'
end

-- voucher_webhook_del  KEYS[1] {NS}:wh:<id>: the subscription, its
-- outbox and dead letters; 1, or 0 when there was none
function api.webhook_del(keys)
    local tag, id = WH.sub(keys)
    if not tag then return bad_key() end
    redis.call('SREM', tag .. ':whs', id)
    redis.call('ZREM', tag .. ':whq', id)
    redis.call('DEL', tag .. ':who:' .. id, tag .. ':whd:' .. id)
    return redis.call('DEL', keys[1])
end

ADM.fns.webhook_set = {api.webhook_set, 'webhook'}
ADM.fns.webhook_del = {api.webhook_del, 'webhook'}

-- voucher_webhook_fanout  KEYS[1] {NS}:whs
-- ARGV  stream group (entry event_id type body)...
--   stream  the source stream ({NS}:log, {NS}:admin, {NS}:events,
--           {NS}:dl:<campaign>), read with the consumer group group
--   entry   its id there; event_id the event's id; type one of WH.TYPES,
--           or "" (nothing to send: only acknowledged); body the JSON
--           POSTed
-- Each entry is acknowledged, and only when this acknowledges it (not
-- another fanout before) is the event appended to the outbox of every
-- active subscription wanting its type.  Returns how many were appended.
function api.webhook_fanout(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):whs$')
    if not tag then return bad_key() end
    local stream, group = args[1], args[2]
    if not (stream and group and string.sub(stream, 1, #tag + 1) == tag .. ':'
            and (#args - 2) % 4 == 0) then
        return bad_args()
    end
    local subs
    local n, now = 0, now_ms()
    for i = 3, #args, 4 do
        local entry, ev, typ, body = args[i], args[i + 1], args[i + 2],
            args[i + 3]
        if redis.call('XACK', stream, group, entry) == 1 and typ ~= '' then
            if not subs then
                subs = {}
                for _, id in ipairs(redis.call('SMEMBERS', keys[1])) do
                    local h = redis.call('HMGET', tag .. ':wh:' .. id,
                                         'events', 'status')
                    if h[1] and h[2] == 'active' then
                        subs[#subs + 1] = {id, h[1]}
                    end
                end
            end
            for _, s in ipairs(subs) do
                if s[2] == '*' or listed(s[2], typ) then
                    redis.call('XADD', tag .. ':who:' .. s[1], '*', 'event',
                               ev, 'type', typ, 'body', body)
                    redis.call('ZADD', tag .. ':whq', 'NX', dec(now), s[1])
                    n = n + 1
                end
            end
        end
    end
    return n
end

-- voucher_webhook_claim  KEYS[1] {NS}:whq  ARGV owner lease_ms
-- The next event of a subscription that is due, now held by owner for
-- lease_ms: {id, url, secret, entry, event, type, body, attempt}; nil
-- when none is due.  A subscription with nothing left, paused or gone
-- leaves the queue.
function api.webhook_claim(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):whq$')
    if not tag then return bad_key() end
    local owner, lease = args[1], uint(args[2])
    if not (owner and owner ~= '' and lease) then return bad_args() end
    local now = now_ms()
    local due = redis.call('ZRANGEBYSCORE', keys[1], '-inf', dec(now),
                           'LIMIT', 0, 16)
    for _, id in ipairs(due) do
        local key = tag .. ':wh:' .. id
        local h = redis.call('HMGET', key, 'url', 'secret', 'status', 'sent',
                             'attempt')
        local nx
        if h[1] and h[3] == 'active' then
            nx = redis.call('XRANGE', tag .. ':who:' .. id,
                            h[4] and ('(' .. h[4]) or '-', '+', 'COUNT', 1)[1]
        end
        if not nx then
            redis.call('ZREM', keys[1], id)
        else
            redis.call('ZADD', keys[1], dec(now + lease), id)
            redis.call('HSET', key, 'owner', owner, 'lease',
                       dec(now + lease))
            local f = ADM.object(nx[2])
            return {id, h[1], h[2], nx[1], f.event, f.type, f.body,
                    (tonumber(h[5]) or 0) + 1}
        end
    end
    return nil
end

-- voucher_webhook_done  KEYS[1] {NS}:wh:<id>
-- ARGV  owner entry outcome delay_ms error
--   outcome  sent; retry (due again delay_ms from now); dead (given up
--            on: a record in {NS}:whd:<id>, and on with the next)
-- 1 recorded; 0 the claim was lost (the lease ended, the entry is not the
-- next one, the subscription is gone).
function api.webhook_done(keys, args)
    local tag, id = WH.sub(keys)
    if not tag then return bad_key() end
    local owner, entry, outcome, due, err = args[1], args[2], args[3],
        uint(args[4]), args[5] or ''
    if not (owner and entry and outcome and due) then return bad_args() end
    local h = redis.call('HMGET', keys[1], 'owner', 'sent', 'attempt')
    if h[1] ~= owner then return 0 end
    local okey = tag .. ':who:' .. id
    local nx = redis.call('XRANGE', okey, h[2] and ('(' .. h[2]) or '-', '+',
                          'COUNT', 1)[1]
    if not nx or nx[1] ~= entry then return 0 end
    local now = now_ms()
    local attempt = (tonumber(h[3]) or 0) + 1
    if outcome == 'retry' then
        redis.call('HSET', keys[1], 'attempt', attempt, 'error', err,
                   'owner', '')
        redis.call('ZADD', tag .. ':whq', dec(now + due), id)
        return 1
    end
    if outcome == 'dead' then
        local f = ADM.object(nx[2])
        local maxlen = settings(tag)
        xadd2(tag .. ':whd:' .. id, maxlen, 'event', f.event,
              'type', f.type, 'attempt', attempt, 'error', err,
              'body', f.body)
        redis.call('HINCRBY', keys[1], 'dead', 1)
    elseif outcome == 'sent' then
        redis.call('HINCRBY', keys[1], 'delivered', 1)
    else
        return bad_args()
    end
    redis.call('HSET', keys[1], 'sent', entry, 'attempt', 0, 'owner', '',
               'error', outcome == 'dead' and err or '')
    redis.call('XDEL', okey, entry)
    redis.call('ZADD', tag .. ':whq', dec(now), id)
    return 1
end

reg('voucher_webhook_set', api.webhook_set)
reg('voucher_webhook_del', api.webhook_del)
reg('voucher_webhook_fanout', api.webhook_fanout)
reg('voucher_webhook_claim', api.webhook_claim)
reg('voucher_webhook_done', api.webhook_done)
