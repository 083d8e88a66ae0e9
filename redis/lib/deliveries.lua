-- Automations and deliveries (voucherd).
--
--   {NS}:autos             set of campaigns that have an automation
--   {NS}:a:<campaign>      hash: def (JSON, checked by voucherctl), since
--                          (runs before are not made up), last (the last
--                          run planned), plan_run/plan_lease/plan_owner
--   {NS}:d:<campaign>:<run> hash: member -> delivery record (JSON:
--                          s status, a attempts, c code, ch channel,
--                          e error, o owner, x/k cancel after/on)
--   {NS}:queue             zset: "campaign TAB run TAB member" -> due (ms)
--   {NS}:dl:<campaign>     stream, the delivery log: run member status
--                          channel code attempt error
--   {NS}:dead              stream, the dead letters
--   {NS}:dr                zset: "campaign TAB run" -> when first queued
--
-- A claimed delivery stays in the queue, due again when its lease ends:
-- a worker killed mid-send leaves it to be claimed again, never lost.

local DONE = {sent = true, dead = true, cancelled = true, skipped = true}

local function split_item(item)
    return string.match(item, '^([^\t]+)\t([^\t]+)\t(.+)$')
end

local function dlog(tag, camp, run, member, rec, status, err)
    redis.call('XADD', tag .. ':dl:' .. camp, '*', 'run', run,
               'member', member, 'status', status, 'channel', rec.ch or '',
               'code', rec.c or '', 'attempt', rec.a or 0, 'error',
               err or '')
end

-- voucher_auto_set  KEYS[1] {NS}:a:<campaign>  ARGV def since
function api.auto_set(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):a:(.+)$')
    if not tag then return bad_key() end
    if #args ~= 2 or not uint(args[2]) then return bad_args() end
    if not pcall(cjson.decode, args[1]) then
        return invalid('def', 'not JSON')
    end
    if redis.call('EXISTS', tag .. ':k:' .. camp) == 0 then
        return invalid('campaign', 'not found')
    end
    redis.call('HSET', keys[1], 'def', args[1])
    redis.call('HSETNX', keys[1], 'since', args[2])
    redis.call('SADD', tag .. ':autos', camp)
    return 'OK'
end

-- voucher_auto_del  KEYS[1] {NS}:a:<campaign>
function api.auto_del(keys)
    local tag, camp = string.match(keys[1], '^({[^}]+}):a:(.+)$')
    if not tag then return bad_key() end
    redis.call('SREM', tag .. ':autos', camp)
    return redis.call('DEL', keys[1])
end

-- voucher_run_begin  KEYS[1] {NS}:a:<campaign>  ARGV run now owner lease
-- 1: plan this run (a lease for it is held); 0: done or being planned
function api.run_begin(keys, args)
    local run, now, owner, lease = uint(args[1]), uint(args[2]), args[3],
        uint(args[4])
    if not (run and now and owner and lease) then return bad_args() end
    local a = redis.call('HMGET', keys[1], 'last', 'plan_run', 'plan_lease',
                         'plan_owner')
    if tonumber(a[1]) and tonumber(a[1]) >= run then return 0 end
    if tonumber(a[2]) == run and (tonumber(a[3]) or 0) > now
       and a[4] ~= owner then
        return 0
    end
    redis.call('HSET', keys[1], 'plan_run', run, 'plan_lease', now + lease,
               'plan_owner', owner)
    return 1
end

-- voucher_run_done  KEYS[1] {NS}:a:<campaign>  ARGV run
function api.run_done(keys, args)
    local run = uint(args[1])
    if not run then return bad_args() end
    local last = tonumber(redis.call('HGET', keys[1], 'last'))
    if not last or run > last then
        redis.call('HSET', keys[1], 'last', run)
    end
    redis.call('HDEL', keys[1], 'plan_run', 'plan_lease', 'plan_owner')
    return 1
end

-- voucher_run_add: members of a run, each with its code, queued once.
-- KEYS[1]  {NS}:a:<campaign>
-- ARGV     run due_ms channel mode cancel_on cancel_after npairs
--          [code field value]*npairs (member code)...
--   mode   "unique": each code is new, made for its member (customer);
--          "shared": the code exists and is the same for everybody
-- Returns {queued, already, {member whose code collided, ...}}: those
-- are made again with another code.
function api.run_add(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):a:(.+)$')
    if not tag then return bad_key() end
    local run, due, channel, mode, con, cafter =
        args[1], uint(args[2]), args[3], args[4], args[5], args[6]
    local np = uint(args[7])
    if not (run and due and np and (mode == 'unique' or mode == 'shared'))
       or string.find(run, '\t') then
        return bad_args()
    end
    local first = 8 + 2 * np
    if (#args - first + 1) % 2 ~= 0 then return bad_args() end

    local k = redis.call('HMGET', tag .. ':k:' .. camp, 'kind', 'value')
    if not k[1] then return invalid('campaign', 'not found') end
    local shared
    if mode == 'unique' then
        local common, order = {}, {}
        if np > 0 then
            common, order = parse_fields({unpack(args, 8, first - 1)},
                                         CODE_SET)
            if not common then return order end
        end
        local err
        shared, err = new_code_fields(common, order, k[1] == 'gift_card',
                                      k[2], 1)
        if not shared then return err end
    end

    local dkey = tag .. ':d:' .. camp .. ':' .. run
    local queued, already, collided = 0, 0, {}
    -- when the run was first queued, for its retention (retention.lua)
    redis.call('ZADD', tag .. ':dr', 'NX', dec(now_ms()), camp .. '\t' .. run)
    for i = first, #args, 2 do
        local member, code = args[i], args[i + 1]
        if bad_member(member) then
            return invalid('member', '1..128 bytes, no spaces or controls')
        end
        if redis.call('HEXISTS', dkey, member) == 1 then
            already = already + 1
        else
            local ok = true
            if mode == 'unique' then
                code = normalize_code(code)
                if bad_id(code) then return invalid('code', 'bad code') end
                local ckey = tag .. ':c:' .. code
                if code_exists(tag, ckey, code) then
                    ok = false
                    collided[#collided + 1] = member
                elseif #shared == 0 and compactable(camp, member) then
                    redis.call('HSET', bucket_key(tag, code), code,
                               compact_value(0, camp, member))
                else
                    redis.call('HSET', ckey, 'k', camp, 'c', member)
                    if #shared > 0 then
                        redis.call('HSET', ckey, unpack(shared))
                    end
                end
            end
            if ok then
                local rec = {s = 'queued', a = 0, c = code, ch = channel}
                if con ~= '' then rec.k = con; rec.x = tonumber(cafter) end
                redis.call('HSET', dkey, member, cjson.encode(rec))
                redis.call('ZADD', tag .. ':queue', 'NX', due,
                           camp .. '\t' .. run .. '\t' .. member)
                dlog(tag, camp, run, member, rec, 'queued')
                queued = queued + 1
            end
        end
    end
    return {queued, already, collided}
end

-- voucher_delivery_claim  KEYS[1] {NS}:queue  ARGV now_ms lease_ms owner max
-- Returns {item, attempt, code, channel}... of the deliveries now this
-- owner's; a delivery whose cancel condition holds is cancelled instead.
function api.delivery_claim(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):queue$')
    if not tag then return bad_key() end
    local now, lease, owner, max = uint(args[1]), uint(args[2]), args[3],
        uint(args[4])
    if not (now and lease and owner and max) then return bad_args() end
    local out = {}
    local items = redis.call('ZRANGEBYSCORE', keys[1], '-inf', now,
                             'LIMIT', 0, max)
    for _, item in ipairs(items) do
        local camp, run, member = split_item(item)
        local dkey = camp and (tag .. ':d:' .. camp .. ':' .. run)
        local raw = dkey and redis.call('HGET', dkey, member)
        local rec = raw and cjson.decode(raw)
        if not rec or DONE[rec.s] then
            redis.call('ZREM', keys[1], item)
        elseif rec.k == 'purchase' and (tonumber(redis.call('HGET',
                   tag .. ':m:' .. member, 'last')) or -1) >= rec.x then
            rec.s = 'cancelled'
            redis.call('HSET', dkey, member, cjson.encode(rec))
            redis.call('ZREM', keys[1], item)
            dlog(tag, camp, run, member, rec, 'cancelled',
                 'a purchase after the trigger')
        else
            rec.s = 'sending'
            rec.a = (rec.a or 0) + 1
            rec.o = owner
            redis.call('HSET', dkey, member, cjson.encode(rec))
            redis.call('ZADD', keys[1], now + lease, item)
            out[#out + 1] = {item, rec.a, rec.c or '', rec.ch or ''}
        end
    end
    return out
end

-- voucher_delivery_done  KEYS[1] {NS}:queue
-- ARGV  item owner outcome (sent|retry|dead|skipped) next_due_ms error
-- 1: recorded; 0: the claim was lost (its lease ended, another has it)
function api.delivery_done(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):queue$')
    if not tag then return bad_key() end
    local item, owner, outcome, due, err = args[1], args[2], args[3],
        uint(args[4]), args[5] or ''
    local camp, run, member = split_item(item or '')
    if not (camp and owner and due) then return bad_args() end
    local dkey = tag .. ':d:' .. camp .. ':' .. run
    local raw = redis.call('HGET', dkey, member)
    local rec = raw and cjson.decode(raw)
    if not rec or rec.s ~= 'sending' or rec.o ~= owner then return 0 end
    if outcome == 'retry' then
        rec.s = 'failed'
        redis.call('ZADD', keys[1], due, item)
        dlog(tag, camp, run, member, rec, 'failed', err)
    elseif outcome == 'sent' or outcome == 'dead' or outcome == 'skipped' then
        rec.s = outcome
        redis.call('ZREM', keys[1], item)
        dlog(tag, camp, run, member, rec, outcome, err)
        if outcome == 'dead' then
            redis.call('XADD', tag .. ':dead', '*', 'campaign', camp,
                       'run', run, 'member', member, 'channel', rec.ch or '',
                       'code', rec.c or '', 'attempt', rec.a, 'error', err)
        end
    else
        return bad_args()
    end
    rec.e = err ~= '' and err or nil
    rec.o = nil
    redis.call('HSET', dkey, member, cjson.encode(rec))
    return 1
end

-- voucher_delivery_release  KEYS[1] {NS}:queue  ARGV item owner now_ms
-- gives back a claimed delivery that was not started (SIGTERM)
function api.delivery_release(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):queue$')
    if not tag then return bad_key() end
    local item, owner, now = args[1], args[2], uint(args[3])
    local camp, run, member = split_item(item or '')
    if not (camp and now) then return bad_args() end
    local dkey = tag .. ':d:' .. camp .. ':' .. run
    local raw = redis.call('HGET', dkey, member)
    local rec = raw and cjson.decode(raw)
    if not rec or rec.s ~= 'sending' or rec.o ~= owner then return 0 end
    rec.s = 'queued'
    rec.a = rec.a - 1
    rec.o = nil
    redis.call('HSET', dkey, member, cjson.encode(rec))
    redis.call('ZADD', keys[1], now, item)
    return 1
end

reg('voucher_auto_set', api.auto_set)
reg('voucher_auto_del', api.auto_del)
reg('voucher_run_begin', api.run_begin)
reg('voucher_run_done', api.run_done)
reg('voucher_run_add', api.run_add)
reg('voucher_delivery_claim', api.delivery_claim)
reg('voucher_delivery_done', api.delivery_done)
reg('voucher_delivery_release', api.delivery_release)
