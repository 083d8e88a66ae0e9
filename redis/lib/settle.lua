---------------------------------------------------------------- rollback

-- the redeem entry of the stream with exactly this id, or nil
local function redemption(logkey, id)
    if not string.find(id, '^%d+%-%d+$') then return nil end
    local res = redis.pcall('XRANGE', logkey, id, id)     -- error: not found
    local e = type(res) == 'table' and res[1]
    if e and e[1] == id and e[2][1] == 'type' and e[2][2] == 'redeem' then
        return e[2]
    end
end

-- Rolls back what is left of redemption "id" (entry e), or "want" of it
-- (gift cards).  typ names the stream entry: rollback, release or expire.
-- Returns the reply, without the idempotency record.
local function undo(tag, id, e, want, idem, typ)
    local code, camp, cust = e[4], e[6], e[8]

    local rbkey = tag .. ':rb:' .. id
    local rb = redis.call('HMGET', rbkey, 'amt', 'done')
    if rb[2] then
        return {'already_rolled_back', 'redemption_id', id, 'code', code,
                'campaign', camp}
    end
    local done = tonumber(rb[1]) or 0
    local disc = tonumber(e[16]) or 0
    local remaining = disc - done
    local gift = e[18] ~= ''
    local a = remaining
    if want then
        if not gift then
            return {'partial_rollback_unsupported', 'redemption_id', id,
                    'code', code, 'campaign', camp}
        end
        if want > remaining then
            return {'rollback_exceeds_redemption', 'redemption_id', id,
                    'code', code, 'campaign', camp, 'remaining', remaining}
        end
        a = want
    end
    local full = not want or done + a == disc
    local total = done + a

    -- the code: balance back, one use back when fully rolled back
    local bal
    if gift or full then
        local ckey = tag .. ':c:' .. code
        local c, bkey = code_read(tag, ckey, code)
        if c[1] then
            if gift then bal = (tonumber(c[6]) or 0) + a end
            if full then
                local u = (tonumber(c[4]) or 0) - 1
                code_uses(ckey, bkey, code, c, u < 0 and 0 or u, bal)
            else
                -- part of a gift card's use: only its balance comes back
                redis.call('HSET', ckey, 'b', bal)
            end
        end
    end

    -- the campaign counters (never below 0)
    local kkey = tag .. ':k:' .. camp
    local k = redis.call('HMGET', kkey, 'status', 'redeemed', 'discount_given')
    if k[1] then
        local g = (tonumber(k[3]) or 0) - a
        if g < 0 then g = 0 end
        if full then
            local r = (tonumber(k[2]) or 0) - 1
            redis.call('HSET', kkey, 'discount_given', g,
                       'redeemed', r < 0 and 0 or r)
        else
            redis.call('HSET', kkey, 'discount_given', g)
        end
    end

    -- the customer's counters
    if full and cust ~= '' then
        local ukey = tag .. ':u:' .. cust
        local kf, cf = 'k:' .. camp, 'c:' .. code
        local u = redis.call('HMGET', ukey, kf, cf)
        if u[1] or u[2] then
            local x, y = (tonumber(u[1]) or 0) - 1, (tonumber(u[2]) or 0) - 1
            redis.call('HSET', ukey, kf, x < 0 and 0 or x,
                       cf, y < 0 and 0 or y)
        end
    end

    if full then
        redis.call('HSET', rbkey, 'amt', total, 'done', 1, 'why', typ)
        -- settled: a reservation rolled back is no longer held
        if e[22] == 'hold' then redis.call('ZREM', tag .. ':hz', id) end
        -- points paid with it come back, points it earned go
        if L.progs[tag] ~= false then L.undone(tag, id, e, typ) end
    else
        redis.call('HSET', rbkey, 'amt', total)
    end

    local maxlen = settings(tag)
    local rid = xadd(tag .. ':log', maxlen, typ, code, camp, cust, e[10], '',
                     e[14], a, bal or '', idem, id)

    local status = full and (typ == 'rollback' and 'rolled_back'
                             or typ == 'release' and 'released'
                             or 'expired')
                   or 'partially_rolled_back'
    local r = {'ok', 'redemption_id', id, 'code', code, 'campaign', camp,
               'amount_rolled_back', a, 'total_rolled_back', total,
               'status', status}
    if bal then r[#r + 1] = 'balance'; r[#r + 1] = bal end
    r[#r + 1] = typ == 'rollback' and 'rollback_id' or 'release_id'
    r[#r + 1] = rid
    return r
end

-- ARGV: redemption_id amount idem
function api.rollback(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):log$')
    if not tag then return bad_key() end
    if #args ~= 3 then return bad_args() end
    local id, amount_s, idem = args[1], args[2], args[3]
    local want
    if amount_s ~= '' then
        want = uint(amount_s)
        if not want then return bad_args() end
    end

    local ikey, fp
    if idem ~= '' then
        ikey = tag .. ':i:b:' .. idem
        fp = fingerprint(id .. '\0' .. amount_s)
        local r = replay(ikey, fp, 'redemption_id', id)
        if r then return r end
    end

    local e = redemption(keys[1], id)
    if not e then
        -- a stack's parent: every code's part back (redis/lib/cart.lua)
        local kids = W.stack_entry(keys[1], id)
        if not kids then
            return {'redemption_not_found', 'redemption_id', id}
        end
        if want then
            return {'partial_rollback_unsupported', 'redemption_id', id}
        end
        local r = W.stack_settle(tag, keys[1], id, kids, 'rollback', idem)
        if ikey and r[1] == 'ok' then remember(tag, ikey, fp, r) end
        return r
    end

    local r = undo(tag, id, e, want, idem, 'rollback')
    if ikey and r[1] == 'ok' then remember(tag, ikey, fp, r) end
    return r
end

-- Gives back every reservation whose deadline has passed (at most 100 a
-- call; the rest at the next).
local function sweep(tag)
    local nx = NEXT[tag]
    if nx == math.huge then return end
    local now = now_ms()
    if nx and nx > now then return end
    local hz = tag .. ':hz'
    local due = redis.call('ZRANGE', hz, '-inf', now, 'BYSCORE', 'LIMIT', 0,
                           100)
    for _, id in ipairs(due) do
        local e = redemption(tag .. ':log', id)
        if e then undo(tag, id, e, nil, '', 'expire') end
        -- trimmed from the stream, or already rolled back: just drop it
        redis.call('ZREM', hz, id)
    end
    local first = redis.call('ZRANGE', hz, 0, 0, 'WITHSCORES')
    NEXT[tag] = first[2] and tonumber(first[2]) or math.huge
    return #due
end

-- state of a reservation: 'held', 'confirmed', or the rb "why"
-- (rollback, release, expire); nil when id is not a reservation
local function hold_state(tag, id, e)
    if e[22] ~= 'hold' then return nil end
    local deadline = redis.call('ZSCORE', tag .. ':hz', id)
    if deadline then
        if tonumber(deadline) > now_ms() then return 'held' end
        -- due, not swept yet (a sweep takes 100 at a time): expire it now
        undo(tag, id, e, nil, '', 'expire')
        redis.call('ZREM', tag .. ':hz', id)
        return 'expire'
    end
    local why = redis.call('HMGET', tag .. ':rb:' .. id, 'done', 'why')
    if why[1] then return why[2] or 'rollback' end
    return 'confirmed'
end

local SETTLED = {rollback = 'reservation_rolled_back',
                 release = 'reservation_released',
                 expire = 'reservation_expired'}

-- FCALL voucher_confirm 1 {NS}:log redemption_id idem [brief]
-- FCALL voucher_release 1 {NS}:log redemption_id idem
-- Both may be repeated: the same outcome answers "ok" again, and with an
-- idempotency key the first answer itself.  "brief" (the gate's confirm,
-- on every checkout) answers {"ok"} alone when the hold is live, without
-- reading the redemption back.  A confirm leaves a "confirm" entry in the
-- trail (ref: the redemption); a release a "release" entry.
local function confirm_entry(tag, id, idem)
    local maxlen = settings(tag)
    xadd(tag .. ':log', maxlen, 'confirm', '', '', '', '', '', '', '', '',
         idem, id)
end

local function settle(keys, args, confirm)
    local tag = string.match(keys[1], '^({[^}]+}):log$')
    if not tag then return bad_key() end
    local id, idem, brief = args[1], args[2], args[3]
    if not (id and idem) or #args > (confirm and 3 or 2)
       or (brief and brief ~= 'brief') then
        return bad_args()
    end
    if brief then
        local hz = tag .. ':hz'
        local deadline = redis.call('ZSCORE', hz, id)
        if deadline and tonumber(deadline) > now_ms() then
            redis.call('ZREM', hz, id)
            confirm_entry(tag, id, idem)
            if L.progs[tag] ~= false then L.confirmed(tag, id) end
            return {'ok', 'status', 'confirmed'}
        end
    end

    local ikey, fp
    if idem ~= '' then
        ikey = tag .. ':i:s:' .. idem
        fp = fingerprint((confirm and 'confirm' or 'release') .. '\0' .. id)
        local r = replay(ikey, fp, 'redemption_id', id)
        if r then return r end
    end
    sweep(tag)

    local e = redemption(keys[1], id)
    if not e then
        -- a stacked reservation's parent: all its codes (redis/lib/cart.lua)
        local kids = W.stack_entry(keys[1], id)
        if not kids then
            return {'redemption_not_found', 'redemption_id', id}
        end
        local r = W.stack_settle(tag, keys[1], id, kids,
                                 confirm and 'confirm' or 'release', idem)
        if ikey and r[1] == 'ok' then remember(tag, ikey, fp, r) end
        return r
    end
    local state = hold_state(tag, id, e)
    local code, camp = e[4], e[6]
    if not state then
        return {'not_a_reservation', 'redemption_id', id, 'code', code,
                'campaign', camp}
    end

    local r
    if confirm then
        if state == 'held' then
            redis.call('ZREM', tag .. ':hz', id)
            confirm_entry(tag, id, idem)
            if L.progs[tag] ~= false then L.confirmed(tag, id, e) end
            state = 'confirmed'
        end
        if state ~= 'confirmed' then
            return {SETTLED[state] or 'reservation_released',
                    'redemption_id', id, 'code', code, 'campaign', camp}
        end
        r = {'ok', 'redemption_id', id, 'code', code, 'campaign', camp,
             'status', 'confirmed'}
    elseif state == 'held' then
        r = undo(tag, id, e, nil, idem, 'release')
    elseif state == 'confirmed' then
        return {'reservation_confirmed', 'redemption_id', id, 'code', code,
                'campaign', camp}
    elseif state == 'release' then
        return {'ok', 'redemption_id', id, 'code', code, 'campaign', camp,
                'status', 'released', 'replayed', 1}
    else
        return {SETTLED[state], 'redemption_id', id, 'code', code,
                'campaign', camp}
    end

    if ikey then remember(tag, ikey, fp, r) end
    return r
end
