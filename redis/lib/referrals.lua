---------------------------------------------------------------- referrals

-- Referrals (docs/loyalty.md): a member's referral code, a new customer
-- paired with its referrer once, the referee's reward at once and the
-- referrer's when the referee's first order is confirmed.  Keys:
--   {NS}:rc:<code>      hash: m (the referrer), exp (0: never), at
--   {NS}:rx:<identity>  string: the member a phone ("p:+6681...") or an
--                       email ("e:name@example.com") belongs to, for the
--                       fraud checks
--   {NS}:lrf, {NS}:lrv  hash: referrer -> referrals, conversions (the
--                       report)
-- and in a member's {NS}:lm:<id>: rc (its code), rby and rvia (who
-- referred it, with which code), rconv (when its first order converted),
-- rcp and rcn (the referrer's count in the period rcp), refs, convs.
-- A referral code is issued with its MAC by voucherctl or voucherd
-- (Redis has no key) and checked there before it reaches Redis.

-- a phone as digits (a leading + kept), an email in lower case
function L.identity(kind, s)
    if not s or s == '' then return nil end
    if kind == 'p' then
        local p = V.phone(s)
        return p and 'p:' .. p
    end
    return V.email(s) and 'e:' .. string.lower(s)
end

-- the referral period holding now: its first month index
function L.ref_period(p, now)
    local mi = L.month(p, now)
    if p.ref_period == 'year' then return mi - mi % 12 end
    if p.ref_period == 'quarter' then return mi - mi % 3 end
    return mi
end

-- FCALL voucher_referral_code 1 {NS}:lm:<member> code [at]
-- The member's referral code: the one it has while that is valid, else
-- code (issued by the caller with its MAC) becomes it, valid for the
-- programme's referral_code_days (0: for ever).  A code that exists
-- already is ERR invalid_field code: exists (the caller issues another).
-- -> {ok, member, M, code, C, expires_at, E (0: never), new, 0|1}
function api.referral_code(keys, args)
    local tag, id = L.key(keys[1])
    if not tag then return bad_key() end
    local now = L.at(args[2])
    if not (args[1] and now) or #args > 2 then return bad_args() end
    local code = normalize_code(args[1])
    if bad_id(code) then
        return invalid('code', '1..64 printable ASCII characters')
    end
    local p = L.prog(tag)
    if not p then return {'no_programme'} end
    local old = redis.call('HGET', keys[1], 'rc')
    if old then
        local exp = tonumber(redis.call('HGET', tag .. ':rc:' .. old, 'exp'))
        if exp and (exp == 0 or exp > now) then
            return {'ok', 'member', id, 'code', old, 'expires_at', exp,
                    'new', 0}
        end
    end
    local ckey = tag .. ':rc:' .. code
    if redis.call('EXISTS', ckey) == 1 then
        return invalid('code', 'exists')
    end
    local exp = p.ref_days > 0 and now + p.ref_days or 0
    redis.call('HSET', ckey, 'm', id, 'exp', dec(exp), 'at', dec(now))
    redis.call('HSET', keys[1], 'rc', code)
    -- the referrer's own phone and email are taken: no one else pairs
    -- with them
    local mh = redis.call('HMGET', tag .. ':m:' .. id, 'phone', 'email')
    for i, kind in ipairs({'p', 'e'}) do
        local x = L.identity(kind, mh[i])
        if x then redis.call('SET', tag .. ':rx:' .. x, id, 'NX') end
    end
    return {'ok', 'member', id, 'code', code, 'expires_at', exp, 'new', 1}
end

-- FCALL voucher_referral_pair 1 {NS}:lm:<referee> code phone email [at]
-- A new customer who signs up or orders with a referral code, paired with
-- its referrer once; the referee's reward (referral_referee_reward) comes
-- at once.  Refusals, in this order, each changing nothing:
-- no_programme, referral_not_found, referral_expired, self_referral (the
-- same member, phone or email), already_referred, referee_already_member
-- (a ledger, purchases, or a phone or email of another member),
-- referral_cap_reached, and the reward's unknown_reward, reward_inactive,
-- reward_out_of_stock.
-- -> {ok, referrer, R, referee, M, reward, W, code, C | sku, S}
function api.referral_pair(keys, args)
    local tag, id = L.key(keys[1])
    if not tag then return bad_key() end
    local now = L.at(args[4])
    if not (args[1] and args[2] and args[3] and now) or #args > 4 then
        return bad_args()
    end
    local code = normalize_code(args[1])
    local phone, email = L.identity('p', args[2]), L.identity('e', args[3])
    if args[2] ~= '' and not phone then
        return invalid('phone', 'expected a phone number of 6-15 digits')
    end
    if args[3] ~= '' and not email then
        return invalid('email', 'expected an address like name@example.com')
    end
    local p = L.prog(tag)
    if not p then return {'no_programme'} end
    local rc = redis.call('HMGET', tag .. ':rc:' .. code, 'm', 'exp')
    if not rc[1] then return {'referral_not_found', 'code', code} end
    local exp = tonumber(rc[2]) or 0
    if exp > 0 and exp <= now then
        return {'referral_expired', 'code', code}
    end
    local rid = rc[1]
    local refusal = L.ref_refusal(tag, p, id, rid, code, phone, email, now)
    if refusal then return refusal end
    local w
    if p.ref_referee then
        w, refusal = L.reward_check(tag, p.ref_referee)
        if not w then return refusal end
    end

    -- the referee: paired, its reward given, its identities taken
    local m = L.member(tag, id, now)
    L.put(m, 'rby', rid)
    L.put(m, 'rvia', code)
    local r = {'ok', 'referrer', rid, 'referee', id,
               'reward', p.ref_referee or ''}
    local given = ''
    if w then given = L.reward_give(tag, p.ref_referee, w, id, r) end
    L.entry(m, 'referral', 0, 'reason', 'referee', 'ref', code,
            'referrer', rid, 'code', given)
    for _, x in pairs({phone, email}) do
        redis.call('SET', tag .. ':rx:' .. x, id, 'NX')
    end
    L.redue(m)
    L.flush(m)

    -- the referrer: counted in the period
    local rm = L.member(tag, rid, now)
    local per = L.ref_period(p, now)
    local n = tonumber(rm.h.rcp) == per and tonumber(rm.h.rcn) or 0
    L.put(rm, 'rcp', dec(per))
    L.put(rm, 'rcn', dec(n + 1))
    L.put(rm, 'refs', dec((tonumber(rm.h.refs) or 0) + 1))
    L.entry(rm, 'referral', 0, 'reason', 'referrer', 'ref', code,
            'referee', id)
    L.redue(rm)
    L.flush(rm)
    redis.call('HINCRBY', tag .. ':lrf', rid, 1)
    return r
end

-- the fraud checks of a pairing; nil, or the refusal
function L.ref_refusal(tag, p, id, rid, code, phone, email, now)
    if rid == id then return {'self_referral', 'code', code} end
    local mh = redis.call('HMGET', tag .. ':m:' .. rid, 'phone', 'email')
    local owners, ids = {}, {phone, email}
    for i = 1, 2 do
        local x = ids[i]
        if x then
            if x == L.identity(i == 1 and 'p' or 'e', mh[i]) then
                return {'self_referral', 'code', code}
            end
            -- a missing key is false, not nil
            local o = redis.call('GET', tag .. ':rx:' .. x)
            if o then owners[#owners + 1] = o end
        end
    end
    for _, o in ipairs(owners) do
        if o == rid then return {'self_referral', 'code', code} end
    end
    if redis.call('HEXISTS', tag .. ':lm:' .. id, 'rby') == 1 then
        return {'already_referred', 'member', id}
    end
    local bought = tonumber(redis.call('HGET', tag .. ':m:' .. id, 'count'))
    if #owners > 0 or (bought and bought > 0)
       or redis.call('EXISTS', tag .. ':lh:' .. id, tag .. ':lm:' .. id) > 0
    then
        return {'referee_already_member', 'member', id}
    end
    if p.ref_cap > 0 then
        local h = redis.call('HMGET', tag .. ':lm:' .. rid, 'rcp', 'rcn')
        if tonumber(h[1]) == L.ref_period(p, now)
           and (tonumber(h[2]) or 0) >= p.ref_cap then
            return {'referral_cap_reached', 'code', code}
        end
    end
end

-- The referee m's first confirmed order (L.earn): the referrer gets its
-- points (referral_referrer_points) and reward (referral_referrer_reward;
-- none when it is out of stock then, which the ledger entry says), once.
function L.referral_converted(m)
    local rid = m.h.rby
    if not rid or m.h.rconv then return end
    local tag, p, now = m.tag, m.p, m.now
    L.put(m, 'rconv', dec(now))
    local rm = L.member(tag, rid, now)
    if rm.tier == 0 and #p.tiers > 0 then
        rm.tier = 1
        L.put(rm, 'tier', p.tiers[1].name)
    end
    local pts = p.ref_points
    if rm.act + rm.pend + pts > MAXINT then pts = 0 end
    if pts > 0 then L.credit(rm, pts, 0) end
    local r, given, missed = {}, '', ''
    if p.ref_referrer then
        local w = L.reward_check(tag, p.ref_referrer)
        if w then
            given = L.reward_give(tag, p.ref_referrer, w, rid, r)
        else
            missed = p.ref_referrer
        end
    end
    L.put(rm, 'convs', dec((tonumber(rm.h.convs) or 0) + 1))
    L.entry(rm, 'referral', pts, 'reason', 'converted', 'ref',
            m.h.rvia or '', 'referee', m.id, 'code', given,
            'missed', missed)
    L.notify(rm, 'referral_converted', 'referee', m.id, 'points',
             dec(rm.act), 'earned_points', dec(pts), 'referral_code',
             m.h.rvia or '', 'code', given)
    L.redue(rm)
    L.flush(rm)
    redis.call('HINCRBY', tag .. ':lrv', rid, 1)
end

-- FCALL voucher_referral_report 1 {NS}:lrf cursor count
-- -> {next cursor ("0": the end), {{member, M, referrals, N,
--     conversions, C, code, <its referral code or "">}, ...}}
function api.referral_report(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):lrf$')
    if not tag then return bad_key() end
    local count = uint(args[2])
    if not (args[1] and count) or count < 1 or count > 1000 then
        return bad_args()
    end
    local res = redis.call('HSCAN', keys[1], args[1], 'COUNT', count)
    local rows, out = {}, {}
    for i = 1, #res[2], 2 do
        rows[#rows + 1] = {res[2][i], tonumber(res[2][i + 1])}
    end
    table.sort(rows, function(a, b) return a[1] < b[1] end)
    for _, row in ipairs(rows) do
        out[#out + 1] = {'member', row[1], 'referrals', row[2],
                         'conversions', tonumber(redis.call(
                             'HGET', tag .. ':lrv', row[1])) or 0,
                         'code', redis.call('HGET', tag .. ':lm:' .. row[1],
                                            'rc') or ''}
    end
    return {res[1], out}
end

reg('voucher_referral_code', api.referral_code)
reg('voucher_referral_pair', api.referral_pair)
reg('voucher_referral_report', api.referral_report, true)
