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
-- ARGV  op amount ref note
--   op      "credit" (a top-up) or "debit"
--   amount  minor units, 1 .. 2^53 - 1
--   ref     an idempotency key ("" none): the same ref again answers the
--           first answer with replayed 1, another request under it is
--           refused with idempotency_conflict
--   note    free text for the ledger ("" none)
-- A gift card's balance moves and the ledger gets its entry: an entry of
-- type credit or debit in {NS}:log (amount, balance after, ref as idem,
-- note as ref), in one call.  Returns
--   {ok, code, C, campaign, K, balance, B, entry, ID[, replayed, 1]}
-- or a refusal {not_found|not_a_gift_card|balance_insufficient|
-- balance_overflow|idempotency_conflict, code, C[, balance, B]}.
function api.balance(keys, args)
    local tag, code, ckey = code_key(keys[1])
    if not tag then return bad_key() end
    local op, amount, ref, note = args[1], uint(args[2]), args[3], args[4]
    if op ~= 'credit' and op ~= 'debit' then
        return invalid('op', 'expected credit|debit')
    end
    if not amount or amount < 1 then
        return invalid('amount', 'expected an integer 1..2^53-1')
    end
    if not (ref and note) then return bad_args() end
    local ikey, fp
    if ref ~= '' then
        ikey = tag .. ':i:g:' .. ref
        fp = fingerprint(code .. '\0' .. op .. '\0' .. args[2])
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
    local bal = tonumber(c[2])
    local nb
    if op == 'credit' then
        nb = bal + amount
        if nb > MAXINT then
            return {'balance_overflow', 'code', code, 'balance', bal}
        end
    else
        if amount > bal then
            return {'balance_insufficient', 'code', code, 'balance', bal}
        end
        nb = bal - amount
    end
    redis.call('HSET', ckey, 'b', dec(nb))
    local maxlen = settings(tag)
    local id = xadd(tag .. ':log', maxlen, op, code, c[1], c[3] or '', '',
                    dec(amount), '', '', dec(nb), ref, note)
    local r = {'ok', 'code', code, 'campaign', c[1], 'balance', nb,
               'entry', id}
    if ikey then remember(tag, ikey, fp, r) end
    return r
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
}

-- voucher_admin  KEYS[1] the key of the function's object
-- ARGV  who op target fn must arg...
--   who     "token:<name>" or "cli:<user>"
--   op      what the caller calls it ("campaign.update")
--   target  what it names ("spring")
--   fn      one of ADM.fns; its arguments follow must (the loyalty ones:
--           loyalty_set, loyalty_adjust, reward_set, reward_pool_fill,
--           reward_claim, referral_code, referral_pair)
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
    local old = snap(keys[1])
    if must == 'new' and old ~= nil then
        return redis.error_reply('ERR already_exists ' .. target)
    elseif must == 'old' and old == nil then
        return redis.error_reply('ERR not_found ' .. target)
    end
    local before = ADM.json(old)
    local r = f[1](keys, rest)
    if type(r) == 'table' and r.err then return r end
    local after = ADM.json(snap(keys[1]))
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
