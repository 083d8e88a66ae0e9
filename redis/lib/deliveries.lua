-- Automations and deliveries (voucherd).
--
--   {NS}:autos             set of campaigns that have an automation
--   {NS}:a:<campaign>      hash: def (JSON, checked by voucherctl), since
--                          (runs before are not made up), last (the last
--                          run planned), plan_run/plan_lease/plan_owner,
--                          catchup (a catch-up run is asked for: when the
--                          automation was made or resumed, or a run was
--                          skipped while the campaign was paused)
--   {NS}:d:<campaign>:<run> hash: member -> delivery record (JSON:
--                          s status, a attempts, c code, ch channel,
--                          e error, o owner, x/k cancel after/on, u 1 for
--                          a unique code made when sent, f its fields)
--   {NS}:ap:<campaign>     hash: member -> the campaign's last delivery
--                          to the member, for per-member limits (JSON:
--                          s q queued or s sent, r run, t time, p period,
--                          v the record before a queued one)
--   {NS}:as:<campaign>     set: the members of an "enters" segment at the
--                          last look
--   {NS}:queue             zset: "campaign TAB run TAB member" -> due (ms)
--   {NS}:dl:<campaign>     stream, the delivery log: run member status
--                          channel code attempt error at (the daemon's
--                          clock, unix seconds)
--   {NS}:dead              stream, the dead letters
--   {NS}:dr                zset: "campaign TAB run" -> when first queued
--
-- A claimed delivery stays in the queue, due again when its lease ends:
-- a worker killed mid-send leaves it to be claimed again, never lost.
-- A unique code is made when its delivery is about to be sent, so a
-- delivery skipped or cancelled leaves no code, and the code of one that
-- ended dead is taken back (unless it was used).

local DONE = {sent = true, dead = true, cancelled = true, skipped = true}

local function split_item(item)
    return string.match(item, '^([^\t]+)\t([^\t]+)\t(.+)$')
end

-- at: the daemon's clock (unix seconds), which the report goes by
local function dlog(tag, camp, run, member, rec, status, err, at)
    redis.call('XADD', tag .. ':dl:' .. camp, '*', 'run', run,
               'member', member, 'status', status, 'channel', rec.ch or '',
               'code', rec.c or '', 'attempt', rec.a or 0, 'error',
               err or '', 'at', at or redis.call('TIME')[1])
end

-- helpers of this part
local DLV = {}

-- per-member limits: "always", "once", "cooldown:<seconds>" (once in so
-- many seconds) or "period:<label>" (once per label: a year, ...)
function DLV.policy_ok(p)
    return p == 'always' or p == 'once'
           or string.find(p, '^cooldown:%d+$') ~= nil
           or string.find(p, '^period:[^\t]+$') ~= nil
end

-- is a member held back by the policy, given its mark
function DLV.held(mark, policy, now)
    if policy == 'always' or not mark then return false end
    if mark.s ~= 's' then return true end        -- one on its way already
    if policy == 'once' then return true end
    local cd = string.match(policy, '^cooldown:(%d+)$')
    if cd then return now < (mark.t or 0) + tonumber(cd) end
    return mark.p == string.match(policy, '^period:(.+)$')
end

function DLV.mark(tag, camp, member)
    local raw = redis.call('HGET', tag .. ':ap:' .. camp, member)
    return raw and cjson.decode(raw)
end

-- the delivery of run is done: sent marks it; otherwise the member is
-- as before this run
function DLV.settle(tag, camp, run, member, sent, now)
    local m = DLV.mark(tag, camp, member)
    if not m or m.r ~= run or m.s ~= 'q' then return end
    local key = tag .. ':ap:' .. camp
    if sent then
        m.s = 's'; m.t = now; m.v = nil
        redis.call('HSET', key, member, cjson.encode(m))
    elseif m.v then
        redis.call('HSET', key, member, cjson.encode(m.v))
    else
        redis.call('HDEL', key, member)
    end
end

-- a delivery that will not be sent gives its unique code back, unless
-- the code was used (then it reached somebody after all)
function DLV.withdraw(tag, rec)
    if not (rec.u and rec.c and rec.c ~= '') then return end
    local ckey = tag .. ':c:' .. rec.c
    local c, bkey = code_read(tag, ckey, rec.c)
    if not c[1] or (tonumber(c[4]) or 0) > 0 then return end
    if bkey then
        redis.call('HDEL', bkey, rec.c)
    else
        redis.call('DEL', ckey)
    end
    rec.w = 1
end

function DLV.now(s)
    local n = uint(s or '')
    if n then return n end
    return tonumber(redis.call('TIME')[1])
end

-- the code fields of a run's unique codes, checked as voucher_code_set
-- would (np pairs from args[first]); the list, or nil and the error
function DLV.code_fields(tag, camp, args, first, np)
    local k = redis.call('HMGET', tag .. ':k:' .. camp, 'kind', 'value')
    if not k[1] then return nil, invalid('campaign', 'not found') end
    local common, order = {}, {}
    if np > 0 then
        common, order = parse_fields({unpack(args, first, first + 2 * np - 1)},
                                     CODE_SET)
        if not common then return nil, order end
    end
    return new_code_fields(common, order, k[1] == 'gift_card', k[2], 1)
end

-- queues members (args[first..]) of a run; {queued, already, held}
function DLV.enqueue(tag, camp, o, args, first)
    local dkey = tag .. ':d:' .. camp .. ':' .. o.run
    local akey = tag .. ':ap:' .. camp
    local queued, already, held = 0, 0, 0
    -- when the run was first queued, for its retention (retention.lua)
    redis.call('ZADD', tag .. ':dr', 'NX', dec(now_ms()),
               camp .. '\t' .. o.run)
    for i = first, #args do
        local member = args[i]
        if bad_member(member) then
            return invalid('member', '1..128 bytes, no spaces or controls')
        end
        local mark = DLV.mark(tag, camp, member)
        if redis.call('HEXISTS', dkey, member) == 1 then
            already = already + 1
        elseif DLV.held(mark, o.policy, o.now) then
            held = held + 1
        else
            local rec = {s = 'queued', a = 0, ch = o.channel}
            if o.unique then
                rec.u = 1
                if #o.fields > 0 then rec.f = o.fields end
            else
                rec.c = o.code
            end
            if o.con ~= '' then rec.k = o.con; rec.x = tonumber(o.cafter) end
            redis.call('HSET', dkey, member, cjson.encode(rec))
            redis.call('ZADD', tag .. ':queue', 'NX', o.due,
                       camp .. '\t' .. o.run .. '\t' .. member)
            redis.call('HSET', akey, member, cjson.encode({
                s = 'q', r = o.run, t = o.now,
                p = string.match(o.policy, '^period:(.+)$'),
                v = (mark and mark.s == 'q') and mark.v or mark}))
            dlog(tag, camp, o.run, member, rec, 'queued', nil, o.now)
            queued = queued + 1
        end
    end
    return {queued, already, held}
end

-- the run arguments shared by voucher_run_add and voucher_enter commit:
-- run due_ms channel mode code cancel_on cancel_after policy now npairs
-- [field value]*npairs, from args[i]; the options and the next index, or
-- nil and the error
function DLV.run_args(tag, camp, args, i)
    local o = {run = args[i], due = uint(args[i + 1]), channel = args[i + 2],
               mode = args[i + 3], code = args[i + 4], con = args[i + 5],
               cafter = args[i + 6], policy = args[i + 7],
               now = uint(args[i + 8])}
    local np = uint(args[i + 9])
    if not (o.run and o.due and o.channel and o.code and o.con and o.cafter
            and o.now and np and o.policy and DLV.policy_ok(o.policy)
            and (o.mode == 'unique' or o.mode == 'shared'))
       or string.find(o.run, '\t') or #args < i + 9 + 2 * np then
        return nil, bad_args()
    end
    o.unique = o.mode == 'unique'
    local first = i + 10
    if o.unique then
        if o.code ~= '' then return nil, bad_args() end
        local f, err = DLV.code_fields(tag, camp, args, first, np)
        if not f then return nil, err end
        o.fields = f
    else
        o.code = normalize_code(o.code)
        if bad_id(o.code) or np > 0 then
            return nil, invalid('code', 'the shared code, without fields')
        end
    end
    return o, first + 2 * np
end

-- voucher_auto_set  KEYS[1] {NS}:a:<campaign>  ARGV def since
-- An automation made, or turned from paused to active, asks for a
-- catch-up run (catchup = since).
function api.auto_set(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):a:(.+)$')
    if not tag then return bad_key() end
    if #args ~= 2 or not uint(args[2]) then return bad_args() end
    local ok, def = pcall(cjson.decode, args[1])
    if not ok or type(def) ~= 'table' then
        return invalid('def', 'not a JSON object')
    end
    if redis.call('EXISTS', tag .. ':k:' .. camp) == 0 then
        return invalid('campaign', 'not found')
    end
    local old = redis.call('HGET', keys[1], 'def')
    local was = old and cjson.decode(old)
    if def.status ~= 'paused'
       and (not was or type(was) ~= 'table' or was.status == 'paused') then
        redis.call('HSET', keys[1], 'catchup', args[2])
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
    redis.call('DEL', tag .. ':as:' .. camp)
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

-- voucher_run_done  KEYS[1] {NS}:a:<campaign>  ARGV run [skipped]
--   run      a scheduled run (its time): the last run planned; or
--            "c<time>": the catch-up asked for at that time was made
--   skipped  "1": the run was skipped (the campaign paused or outside
--            its dates): a catch-up is asked for
function api.run_done(keys, args)
    local c = string.match(args[1] or '', '^c(%d+)$')
    if c then
        if redis.call('HGET', keys[1], 'catchup') == c then
            redis.call('HDEL', keys[1], 'catchup')
        end
        return 1
    end
    local run = uint(args[1])
    if not run then return bad_args() end
    local last = tonumber(redis.call('HGET', keys[1], 'last'))
    if not last or run > last then
        redis.call('HSET', keys[1], 'last', run)
    end
    if args[2] == '1' and redis.call('EXISTS', keys[1]) == 1 then
        redis.call('HSETNX', keys[1], 'catchup', args[1])
    end
    redis.call('HDEL', keys[1], 'plan_run', 'plan_lease', 'plan_owner')
    return 1
end

-- voucher_run_add: members of a run, each queued once, within the
-- automation's per-member limit.
-- KEYS[1]  {NS}:a:<campaign>
-- ARGV     run due_ms channel mode code cancel_on cancel_after policy now
--          npairs [field value]*npairs member...
--   mode    "unique" (code ""): each member gets a new code when sent,
--           with these fields (voucher_code_set's, checked here);
--           "shared": code is the same for everybody (no fields)
--   policy  "always", "once", "cooldown:<seconds>", "period:<label>": a
--           member sent to within the limit (or with a delivery of this
--           campaign on its way) is held back
--   now     unix seconds (the daemon's clock) for the limit
-- Returns {queued, already (in this run), held (by the limit)}.
function api.run_add(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):a:(.+)$')
    if not tag then return bad_key() end
    local o, first = DLV.run_args(tag, camp, args, 1)
    if not o then return first end
    return DLV.enqueue(tag, camp, o, args, first)
end

-- voucher_run_check: who of these members a run would queue now (the
-- per-member limit and the run's own queue), writing nothing.
-- KEYS[1]  {NS}:a:<campaign>  ARGV run policy now member...
-- Returns {eligible member, ...}.
function api.run_check(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):a:(.+)$')
    if not tag then return bad_key() end
    local run, policy, now = args[1], args[2], uint(args[3])
    if not (run and policy and now and DLV.policy_ok(policy)) then
        return bad_args()
    end
    local dkey = tag .. ':d:' .. camp .. ':' .. run
    local out = {}
    for i = 4, #args do
        if redis.call('HEXISTS', dkey, args[i]) == 0
           and not DLV.held(DLV.mark(tag, camp, args[i]), policy, now) then
            out[#out + 1] = args[i]
        end
    end
    return out
end

-- voucher_enter: who entered a segment since the last look, queued.
-- KEYS[1]  {NS}:a:<campaign>
-- ARGV     "add" owner first member...    who is in the segment now, in
--                                         batches (first 1: a new look)
--          "commit" owner <the run arguments of voucher_run_add>
-- The look staged by owner becomes the segment's members; those not in
-- the one before are queued as the run's members.  The first look only
-- records who is in: members in the segment when the automation starts
-- have not entered it.  Returns 1 (add); {queued, already, held,
-- entered} (commit).
function api.enter(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):a:(.+)$')
    if not tag then return bad_key() end
    local step, owner = args[1], args[2]
    if not owner or string.find(owner, '[%s]') then return bad_args() end
    local cur = tag .. ':as:' .. camp
    local stage = cur .. ':' .. owner
    if step == 'add' then
        if args[3] == '1' then redis.call('DEL', stage) end
        for i = 4, #args, 1000 do
            redis.call('SADD', stage, unpack(args, i, math.min(i + 999, #args)))
        end
        return 1
    end
    if step ~= 'commit' then return bad_args() end
    local o, first = DLV.run_args(tag, camp, args, 3)
    if not o then return first end
    if first <= #args then return bad_args() end
    local looked = redis.call('HEXISTS', keys[1], 'looked') == 1
    local entered = {}
    if looked then
        entered = redis.call('SDIFF', stage, cur)
    end
    if redis.call('EXISTS', stage) == 1 then
        redis.call('RENAME', stage, cur)
    else
        redis.call('DEL', cur)
    end
    redis.call('HSET', keys[1], 'looked', o.now)
    local r = DLV.enqueue(tag, camp, o, entered, 1)
    if r.err then return r end
    r[4] = #entered
    return r
end

-- voucher_delivery_claim  KEYS[1] {NS}:queue  ARGV now_ms lease_ms owner max
-- Returns {item, attempt, code, channel, unique}... of the deliveries now
-- this owner's (code "" and unique 1: made when sent, by
-- voucher_delivery_code); a delivery whose cancel condition holds is
-- cancelled instead.
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
            DLV.withdraw(tag, rec)
            redis.call('HSET', dkey, member, cjson.encode(rec))
            redis.call('ZREM', keys[1], item)
            DLV.settle(tag, camp, run, member, false)
            dlog(tag, camp, run, member, rec, 'cancelled',
                 'a purchase after the trigger', math.floor(now / 1000))
        else
            rec.s = 'sending'
            rec.a = (rec.a or 0) + 1
            rec.o = owner
            redis.call('HSET', dkey, member, cjson.encode(rec))
            redis.call('ZADD', keys[1], now + lease, item)
            out[#out + 1] = {item, rec.a, rec.c or '', rec.ch or '',
                             rec.u or 0}
        end
    end
    return out
end

-- voucher_delivery_code  KEYS[1] {NS}:queue  ARGV item owner code
-- The unique code of a claimed delivery, made just before it is sent,
-- for its member with the run's fields.  A delivery that has its code
-- (made at an earlier attempt) keeps it.
-- Returns {"ok", code}, {"exists"} (the code is taken: try another) or
-- {"lost"} (the claim is no longer this owner's).
function api.delivery_code(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):queue$')
    if not tag then return bad_key() end
    local item, owner = args[1], args[2]
    local camp, run, member = split_item(item or '')
    if not (camp and owner and args[3]) then return bad_args() end
    local dkey = tag .. ':d:' .. camp .. ':' .. run
    local raw = redis.call('HGET', dkey, member)
    local rec = raw and cjson.decode(raw)
    if not rec or rec.s ~= 'sending' or rec.o ~= owner then return {'lost'} end
    if rec.c and rec.c ~= '' then return {'ok', rec.c} end
    if not rec.u then return bad_args() end
    local code = normalize_code(args[3])
    if bad_id(code) then return invalid('code', 'bad code') end
    local ckey = tag .. ':c:' .. code
    if code_exists(tag, ckey, code) then return {'exists'} end
    local f = rec.f or {}
    if #f == 0 and compactable(camp, member) then
        redis.call('HSET', bucket_key(tag, code), code,
                   compact_value(0, camp, member))
    else
        redis.call('HSET', ckey, 'k', camp, 'c', member)
        if #f > 0 then redis.call('HSET', ckey, unpack(f)) end
    end
    rec.c = code
    redis.call('HSET', dkey, member, cjson.encode(rec))
    return {'ok', code}
end

-- voucher_delivery_done  KEYS[1] {NS}:queue
-- ARGV  item owner outcome (sent|retry|dead|skipped) next_due_ms error
--       [now] (unix seconds, for per-member limits; default Redis' clock)
-- A delivery that ends dead or skipped takes its unique code back.
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
    local at = DLV.now(args[6])
    if outcome == 'retry' then
        rec.s = 'failed'
        redis.call('ZADD', keys[1], due, item)
        dlog(tag, camp, run, member, rec, 'failed', err, at)
    elseif outcome == 'sent' or outcome == 'dead' or outcome == 'skipped' then
        rec.s = outcome
        if outcome ~= 'sent' then DLV.withdraw(tag, rec) end
        redis.call('ZREM', keys[1], item)
        DLV.settle(tag, camp, run, member, outcome == 'sent', at)
        dlog(tag, camp, run, member, rec, outcome, err, at)
        -- a code the member was sent is in his wallet
        if outcome == 'sent' and rec.c and rec.c ~= '' then
            W.add(tag, member, rec.c)
        end
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
reg('voucher_run_check', api.run_check, true)
reg('voucher_enter', api.enter)
reg('voucher_delivery_claim', api.delivery_claim)
reg('voucher_delivery_code', api.delivery_code)
reg('voucher_delivery_done', api.delivery_done)
reg('voucher_delivery_release', api.delivery_release)
