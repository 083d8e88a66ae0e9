---------------------------------------------------------- admin operations

-- The admin API and voucherctl change state through voucher_admin: it runs
-- one admin function and, when that changed something, appends who did
-- what to the admin audit stream {NS}:admin in the same atomic call, with
-- the object before and after (JSON; null when absent):
--   who op target before after
-- so no change is made without its entry, nor an entry without its change.
-- Bulk work (issue, import) appends one summary entry with
-- voucher_admin_note.  Helpers live in the table ADM (one local).

local ADM = {}

-- pairs {k1, v1, ...} -> object
function ADM.object(r)
    if type(r) ~= 'table' then return nil end
    local o = {}
    for i = 1, #r - 1, 2 do o[r[i]] = r[i + 1] end
    return o
end

-- the snapshots: the object a key names, or nil
ADM.snap = {}

function ADM.snap.campaign(key)
    return ADM.object(api.campaign_get({key}))
end

function ADM.snap.code(key)
    return ADM.object(api.code_get({key}))
end

function ADM.snap.settings(key)
    return ADM.object(api.settings_get({key}))
end

function ADM.snap.auto(key)
    local h = redis.call('HMGET', key, 'def', 'since')
    if not h[1] then return nil end
    return {definition = cjson.decode(h[1]), since = tonumber(h[2])}
end

-- a serial series as registered (its bits change with every redeem)
function ADM.snap.series(key)
    local h = redis.call('HMGET', key, 'k', 'n', 'p', 'b', 'm', 'cs', 'sx')
    if not h[1] then return nil end
    return {campaign = h[1], size = tonumber(h[2]), prefix = h[3],
            body = tonumber(h[4]), mac = tonumber(h[5]), charset = h[6],
            suffix = h[7]}
end

function ADM.snap.member(key)
    local h = redis.call('HGETALL', key)
    if #h == 0 then return nil end
    return ADM.object(h)
end

function ADM.snap.reward(key)
    return ADM.object(api.reward_get({key}))
end

function ADM.snap.programme(key)
    return ADM.object(api.loyalty_get({key}))
end

-- a member's loyalty: its balance and tier (the ledger has the rest)
function ADM.snap.points(key)
    local h = redis.call('HMGET', key, 'act', 'pend', 'tier')
    if not (h[1] or h[2] or h[3]) then return nil end
    return {active = tonumber(h[1]) or 0, pending = tonumber(h[2]) or 0,
            tier = h[3] or ''}
end

-- one code of a member's wallet (the key {NS}:w:<member>, the code the
-- first argument): when it came in, or nil when it is not there
function ADM.snap.wallet(key, rest)
    local code = normalize_code(rest[1] or '')
    local t = redis.call('ZSCORE', key, code)
    if not t then return nil end
    return {code = code, added_at = math.floor(tonumber(t) / 1000)}
end

-- a member's referral: its own code, who referred it
function ADM.snap.referral(key)
    local h = redis.call('HMGET', key, 'rc', 'rby', 'rvia')
    if not (h[1] or h[2]) then return nil end
    return {code = h[1] or '', referred_by = h[2] or '', via = h[3] or ''}
end

function ADM.json(o)
    if o == nil then return 'null' end
    return cjson.encode(o)
end

function ADM.append(tag, who, op, target, before, after)
    local maxlen = settings(tag)
    xadd2(tag .. ':admin', maxlen, 'who', who, 'op', op, 'target', target,
          'before', before, 'after', after)
end

-- voucher_member_set  KEYS[1] {NS}:m:<id>  ARGV field value ...
-- One member made or changed (the fields of voucher_members_add; an
-- empty value leaves a field as it is).
function api.member_set(keys, args)
    local tag, id = string.match(keys[1], '^({[^}]+}):m:(.+)$')
    if not tag then return bad_key() end
    if #args % 2 ~= 0 then return bad_args() end
    local cols, row = {'id'}, {id}
    for i = 1, #args, 2 do
        if string.find(args[i], ',', 1, true) then
            return redis.error_reply('ERR unknown_field ' .. args[i])
        end
        cols[#cols + 1] = args[i]
        row[#row + 1] = args[i + 1]
    end
    local a = {'write', table.concat(cols, ',')}
    for _, v in ipairs(row) do a[#a + 1] = v end
    local r = api.members_add({tag .. ':members'}, a)
    if type(r) == 'table' and r.err then
        -- "... (row 1)": there is one row here
        return redis.error_reply((string.gsub(r.err, ' %(row 1%)$', '')))
    end
    return 'OK'
end

-- voucher_member_del  KEYS[1] {NS}:m:<id>: the member and its place in
-- {NS}:members; 1, or 0 when there was none
function api.member_del(keys)
    local tag, id = string.match(keys[1], '^({[^}]+}):m:(.+)$')
    if not tag then return bad_key() end
    redis.call('SREM', tag .. ':members', id)
    return redis.call('DEL', keys[1])
end

-- voucher_balance  KEYS[1] {NS}:c:<code>
-- ARGV  op amount ref note [expires [tz]]
--   op       "credit" (a top-up: credits_addition in the card's ledger) or
--            "debit" (credits_removal)
--   amount   minor units, 1 .. 2^53 - 1; a debit at most what the card can
--            spend now
--   ref      an idempotency key ("" none): the same ref again answers the
--            first answer with replayed 1, another request under it is
--            refused with idempotency_conflict
--   note     the reason, free text for the ledger ("" none)
--   expires  a credit's end ("" never): "YYYY-MM-DD" (the end of that day,
--            local midnight), "+N" (the end of the day N days from today,
--            +0 tonight) or "@S" (unix seconds); it must be to come
--   tz       the zone of those days, "+07:00" ("" the campaign's
--            tz_offset, else UTC)
-- The balance moves, the card's ledger gets its entry (redis/lib/
-- giftcard.lua) and {NS}:log an entry of type credit or debit (amount,
-- balance after, ref as idem, note as ref), in one call.  Returns
--   {ok, code, C, campaign, K, balance, B, entry, ID[, expires_at, E]
--    [, replayed, 1]}
-- or a refusal {not_found|not_a_gift_card|balance_insufficient|
-- balance_overflow|idempotency_conflict, code, C[, balance, B]}; a bad
-- expiry is ERR invalid_field expires_at.
function G.tz(s)
    local sg, h, m = string.match(s, '^([+-])(%d%d):(%d%d)$')
    if not sg then return nil end
    local v = tonumber(h) * 60 + tonumber(m)
    if tonumber(m) > 59 or v > 14 * 60 then return nil end
    return sg == '-' and -v or v
end

-- days since 1970-01-01 of a civil date (proleptic Gregorian)
function G.days(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = math.floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

-- the unix second an expiry names, or nil and why
function G.expiry(s, tz, now)
    local t
    local y, mo, d = string.match(s, '^(%d%d%d%d)%-(%d%d)%-(%d%d)$')
    if y then
        y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
        local dim = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
        if (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 then dim[2] = 29 end
        if mo < 1 or mo > 12 or d < 1 or d > dim[mo] then
            return nil, 'no such date'
        end
        t = (G.days(y, mo, d) + 1) * 86400 - tz * 60
    elseif string.find(s, '^%+%d+$') then
        local n = uint(string.sub(s, 2))
        if not n or n > 36600 then return nil, 'at most +36600 days' end
        t = (math.floor((now + tz * 60) / 86400) + 1 + n) * 86400 - tz * 60
    elseif string.find(s, '^@%d+$') then
        t = uint(string.sub(s, 2))
        if not t then return nil, 'expected @<unix seconds>' end
    else
        return nil, 'expected YYYY-MM-DD, +<days> or @<unix seconds>'
    end
    if t <= now then return nil, 'already past' end
    return t
end

function api.balance(keys, args)
    local tag, code, ckey = code_key(keys[1])
    if not tag then return bad_key() end
    local op, amount, ref, note = args[1], uint(args[2]), args[3], args[4]
    local exp_s, tz_s = args[5] or '', args[6] or ''
    if op ~= 'credit' and op ~= 'debit' then
        return invalid('op', 'expected credit|debit')
    end
    if not amount or amount < 1 then
        return invalid('amount', 'expected an integer 1..2^53-1')
    end
    if not (ref and note) or #args > 6 then return bad_args() end
    local tz = tz_s ~= '' and G.tz(tz_s)
    if tz == nil then
        return invalid('zone', 'expected +HH:MM or -HH:MM, -14:00..+14:00')
    end
    if exp_s ~= '' and op == 'debit' then
        return invalid('expires_at', 'only a credit expires')
    end
    local ikey, fp
    if ref ~= '' then
        ikey = tag .. ':i:g:' .. ref
        fp = fingerprint(code .. '\0' .. op .. '\0' .. args[2]
                         .. (exp_s ~= '' and '\0' .. exp_s .. '\0' .. tz_s
                             or ''))
        local rec = redis.call('GET', ikey)
        if rec then
            local v = cmsgpack.unpack(rec)
            if v[1] ~= fp then
                return {'idempotency_conflict', 'code', code}
            end
            local r = v[2]
            r[#r + 1] = 'replayed'; r[#r + 1] = 1
            return r
        end
    end
    local c = redis.call('HMGET', ckey, 'k', 'b', 'c')
    if not c[1] then
        if code_exists(tag, ckey, code) then
            return {'not_a_gift_card', 'code', code}
        end
        return {'not_found', 'code', code}
    end
    if not c[2] then return {'not_a_gift_card', 'code', code} end
    local exp = 0
    if exp_s ~= '' then
        if not tz then
            tz = tonumber(redis.call('HGET', tag .. ':k:' .. c[1],
                                     'tz_offset')) or 0
        end
        local why
        exp, why = G.expiry(exp_s, tz, now_s())
        if not exp then return invalid('expires_at', why) end
    end
    local bal = G.avail(ckey, c[2])
    local nb
    if op == 'credit' then
        nb = bal + amount
        if nb > MAXINT or (tonumber(c[2]) or 0) + amount > MAXINT then
            return {'balance_overflow', 'code', code, 'balance', bal}
        end
        nb = G.add(tag, code, ckey, amount, exp, 'credits_addition', note,
                   ref, c[2])
    else
        if amount > bal then
            return {'balance_insufficient', 'code', code, 'balance', bal}
        end
        nb = G.take(tag, code, ckey, amount, 'credits_removal', note, ref,
                    c[2])
    end
    local maxlen = settings(tag)
    local id = xadd(tag .. ':log', maxlen, op, code, c[1], c[3] or '', '',
                    dec(amount), '', '', dec(nb), ref, note)
    local r = {'ok', 'code', code, 'campaign', c[1], 'balance', nb,
               'entry', id}
    if exp > 0 then r[#r + 1] = 'expires_at'; r[#r + 1] = exp end
    if ikey then remember(tag, ikey, fp, r) end
    return r
end

-- voucher_gift_get  KEYS[1] {NS}:c:<code>  (read only)
-- A gift card's balance now (its lots due left out) and its lots:
--   {ok, code, C, campaign, K, balance, B, expired, E, lots,
--    {{credited_at, expires_at (0: never), amount}, ...}}
-- expired: what lots due still hold until their credits_expired entry is
-- written.  Refusals as voucher_balance's.
function api.gift_get(keys)
    local tag, code, ckey = code_key(keys[1])
    if not tag then return bad_key() end
    local c = redis.call('HMGET', ckey, 'k', 'b', 'x')
    if not c[1] then
        if code_exists(tag, ckey, code) then
            return {'not_a_gift_card', 'code', code}
        end
        return {'not_found', 'code', code}
    end
    if not c[2] then return {'not_a_gift_card', 'code', code} end
    local now, bal, gone, out = now_s(), 0, 0, {}
    local lots = G.parse(c[3])
    if not c[3] then lots = {{0, 0, tonumber(c[2]) or 0}} end
    for _, l in ipairs(lots) do
        if l[2] > 0 and l[2] <= now then
            gone = gone + l[3]
        elseif l[3] > 0 then
            bal = bal + l[3]
            out[#out + 1] = {l[1], l[2], l[3]}
        end
    end
    return {'ok', 'code', code, 'campaign', c[1], 'balance', bal,
            'expired', gone, 'lots', out}
end

-- voucher_gift_sweep  KEYS[1] {NS}:gx  ARGV now max
-- The cards with a lot due at now (unix seconds; "" Redis time): their
-- credits_expired entries, max cards a call.  Returns how many.
function api.gift_sweep(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):gx$')
    if not tag then return bad_key() end
    local now = args[1] == '' and now_s() or uint(args[1])
    local max = uint(args[2])
    if not (now and max and max > 0) or #args ~= 2 then return bad_args() end
    local due = redis.call('ZRANGE', keys[1], '-inf', now, 'BYSCORE',
                           'LIMIT', 0, max)
    for _, code in ipairs(due) do
        local ckey = tag .. ':c:' .. code
        if redis.call('HEXISTS', ckey, 'x') == 1 then
            local lots, bal = G.load(tag, code, ckey)
            bal = G.expire(tag, code, lots, bal, now)
            G.save(tag, code, ckey, lots, bal)
        else
            redis.call('ZREM', keys[1], code)
        end
    end
    return #due
end

-- what voucher_admin may run, and the snapshot of its key
ADM.fns = {
    campaign_set = {api.campaign_set, 'campaign'},
    code_set = {api.code_set, 'code'},
    code_del = {api.code_del, 'code'},
    series_set = {api.series_set, 'series'},
    settings_set = {api.settings_set, 'settings'},
    auto_set = {api.auto_set, 'auto'},
    auto_del = {api.auto_del, 'auto'},
    member_set = {api.member_set, 'member'},
    member_del = {api.member_del, 'member'},
    balance = {api.balance, 'code'},
    loyalty_set = {api.loyalty_set, 'programme'},
    loyalty_adjust = {api.loyalty_adjust, 'points'},
    reward_set = {api.reward_set, 'reward'},
    reward_pool_fill = {api.reward_pool_fill, 'reward'},
    reward_claim = {api.reward_claim, 'points'},
    referral_code = {api.referral_code, 'referral'},
    referral_pair = {api.referral_pair, 'referral'},
    wallet_add = {api.wallet_add, 'wallet'},
    wallet_del = {api.wallet_del, 'wallet'},
}

-- voucher_admin  KEYS[1] the key of the function's object
-- ARGV  who op target fn must arg...
--   who     "token:<name>" or "cli:<user>"
--   op      what the caller calls it ("campaign.update")
--   target  what it names ("spring")
--   fn      one of ADM.fns; its arguments follow must (the loyalty ones:
--           loyalty_set, loyalty_adjust, reward_set, reward_pool_fill,
--           reward_claim, referral_code, referral_pair; the wallet's:
--           wallet_add, wallet_del, whose snapshot is the one code)
--   must    "new": the object must not exist (ERR already_exists), "old":
--           it must (ERR not_found), "": either
-- Returns the function's reply; appends {NS}:admin when the object changed.
function api.admin(keys, args)
    local tag = string.match(keys[1] or '', '^({[^}]+}):')
    if not tag then return bad_key() end
    local who, op, target, fn, must = args[1], args[2], args[3], args[4],
        args[5]
    local f = fn and ADM.fns[fn]
    if not (who and op and target and f and must) then return bad_args() end
    local rest = {}
    for i = 6, #args do rest[#rest + 1] = args[i] end
    local snap = ADM.snap[f[2]]
    local old = snap(keys[1], rest)
    if must == 'new' and old ~= nil then
        return redis.error_reply('ERR already_exists ' .. target)
    elseif must == 'old' and old == nil then
        return redis.error_reply('ERR not_found ' .. target)
    end
    local before = ADM.json(old)
    local r = f[1](keys, rest)
    if type(r) == 'table' and r.err then return r end
    local after = ADM.json(snap(keys[1], rest))
    if after ~= before then
        ADM.append(tag, who, op, target, before, after)
    end
    return r
end

-- voucher_admin_note  KEYS[1] {NS}:admin  ARGV who op target detail
-- A summary of bulk work (detail: JSON, kept as "after").
function api.admin_note(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):admin$')
    if not tag then return bad_key() end
    if #args ~= 4 then return bad_args() end
    ADM.append(tag, args[1], args[2], args[3], 'null', args[4])
    return 1
end

reg('voucher_admin', api.admin)
reg('voucher_admin_note', api.admin_note)
reg('voucher_member_del', api.member_del)
reg('voucher_balance', api.balance)
reg('voucher_gift_get', api.gift_get, true)
reg('voucher_gift_sweep', api.gift_sweep)
