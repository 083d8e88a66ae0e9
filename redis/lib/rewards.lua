---------------------------------------------------------------- rewards

-- A rewards catalogue bought with loyalty points (docs/loyalty.md):
--   {NS}:lw:<reward>    hash: name status cost kind campaign sku value
--                       stock (what is left; absent: no limit)
--                       per_member, given
--   {NS}:lwp:<reward>   list: the reward's pool of codes, issued ahead
--                       (with their MAC, by voucherctl or voucherd: Redis
--                       has no key) and handed out one per claim
--   {NS}:lwc:<key>      string: a claim's answer, kept under its key
-- A member's claims of a reward are the field w:<reward> of {NS}:lm:<id>.

local REWARD_SET = {
    name = V.string,
    status = V.enum({active = 1, paused = 1}, 'active|paused'),
    cost = V.pos,
    kind = V.enum({coupon = 1, gift_card = 1, item = 1},
                  'coupon|gift_card|item'),
    campaign = V.string, sku = V.string, value = V.uint,
    stock = V.uint_opt, per_member = V.uint,
}

local REWARD_FIELDS = {'name', 'status', 'cost', 'kind', 'campaign', 'sku',
                       'value', 'stock', 'per_member', 'given'}

-- FCALL voucher_reward_set 1 {NS}:lw:<reward> field value ...
function api.reward_set(keys, args)
    local tag, id = string.match(keys[1], '^({[^}]+}):lw:(.+)$')
    if not tag then return bad_key() end
    if bad_id(id) then
        return invalid('reward', '1..64 printable ASCII characters')
    end
    local new, order = parse_fields(args, REWARD_SET)
    if not new then return order end
    local old = redis.call('HMGET', keys[1], 'kind', 'cost', 'campaign',
                           'sku')
    local kind = merged(new, old[1], 'kind')
    if not kind then return invalid('kind', 'required on create') end
    if not merged(new, old[2], 'cost') then
        return invalid('cost', 'required on create')
    end
    if kind ~= 'item' then
        local camp = merged(new, old[3], 'campaign')
        if not camp then return invalid('campaign', 'required for ' .. kind) end
        local k = redis.call('HGET', tag .. ':k:' .. camp, 'kind')
        if not k then return invalid('campaign', 'not found') end
        if (kind == 'gift_card') ~= (k == 'gift_card') then
            return invalid('campaign', 'a gift_card reward needs a '
                           .. 'gift_card campaign, a coupon another')
        end
    elseif not merged(new, old[4], 'sku') then
        return invalid('sku', 'required for item')
    end
    if not old[1] and new.status == nil then
        order[#order + 1] = 'status'
        new.status = 'active'
    end
    write_fields(keys[1], new, order)
    redis.call('SADD', tag .. ':rewards', id)
    return 'OK'
end

-- FCALL voucher_reward_get 1 {NS}:lw:<reward> -> pairs, with "pool"
function api.reward_get(keys)
    local tag = string.match(keys[1], '^({[^}]+}):lw:(.+)$')
    if not tag then return bad_key() end
    local v = redis.call('HMGET', keys[1], unpack(REWARD_FIELDS))
    if not v[3] then return nil end
    local r = {}
    for i, name in ipairs(REWARD_FIELDS) do
        if v[i] then r[#r + 1] = name; r[#r + 1] = v[i] end
    end
    local id = string.match(keys[1], ':lw:(.+)$')
    r[#r + 1] = 'pool'
    r[#r + 1] = redis.call('LLEN', tag .. ':lwp:' .. id)
    return r
end

-- FCALL voucher_reward_pool_add 1 {NS}:lw:<reward> code ...
-- codes of the reward's campaign, not yet assigned to anyone; all or
-- nothing.  Returns the pool's size.
function api.reward_pool_add(keys, args)
    local tag, id = string.match(keys[1], '^({[^}]+}):lw:(.+)$')
    if not tag then return bad_key() end
    if #args == 0 then return bad_args() end
    local camp = redis.call('HGET', keys[1], 'campaign')
    if not camp then return invalid('reward', 'not found or an item') end
    local codes = {}
    for i, s in ipairs(args) do
        local code = normalize_code(s)
        local c = code_read(tag, tag .. ':c:' .. code, code)
        if c[1] ~= camp then
            return invalid('code', s .. ' is not a code of ' .. camp
                           .. ' (row ' .. i .. ')')
        end
        if c[5] then
            return invalid('code', s .. ' is assigned (row ' .. i .. ')')
        end
        codes[i] = code
    end
    return redis.call('RPUSH', tag .. ':lwp:' .. id, unpack(codes))
end

-- FCALL voucher_reward_pool_fill 1 {NS}:lw:<reward> code ...
-- New codes (issued with their MAC by voucherctl or voucherd) made codes
-- of the reward's campaign and put in its pool, all or nothing (a code
-- that exists already refuses the lot: ERR invalid_field code).  Returns
-- the pool's size.
function api.reward_pool_fill(keys, args)
    local tag, id = string.match(keys[1], '^({[^}]+}):lw:(.+)$')
    if not tag then return bad_key() end
    if #args == 0 then return bad_args() end
    local camp = redis.call('HGET', keys[1], 'campaign')
    if not camp then return invalid('reward', 'not found or an item') end
    local a = {'new', '0', 'code'}
    for _, c in ipairs(args) do a[#a + 1] = c end
    local r = api.codes_add({tag .. ':k:' .. camp}, a)
    if type(r) == 'table' and r.err then return r end
    for i, c in ipairs(args) do args[i] = normalize_code(c) end
    return redis.call('RPUSH', tag .. ':lwp:' .. id, unpack(args))
end

-- FCALL voucher_reward_list 1 {NS}:rewards cursor count
-- -> {next cursor ("0": the end), {{id, I, name, N, ...}, ...}}
function api.reward_list(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):rewards$')
    if not tag then return bad_key() end
    local count = uint(args[2])
    if not (args[1] and count) or count < 1 or count > 1000 then
        return bad_args()
    end
    local res = redis.call('SSCAN', keys[1], args[1], 'COUNT', count)
    local out = {}
    table.sort(res[2])
    for _, id in ipairs(res[2]) do
        local r = api.reward_get({tag .. ':lw:' .. id})
        if r then
            table.insert(r, 1, id)
            table.insert(r, 1, 'id')
            out[#out + 1] = r
        end
    end
    return {res[1], out}
end

-- hands code to member: it becomes the member's own
function L.assign(tag, code, member)
    local ckey = tag .. ':c:' .. code
    local c, bkey = code_read(tag, ckey, code)
    if bkey then
        redis.call('HSET', bkey, code, compact_value(c[4], c[1], member))
    else
        redis.call('HSET', ckey, 'c', member)
    end
    -- and it is in the member's wallet (redis/lib/wallet.lua)
    W.add(tag, member, code)
end

-- Can reward rid be given now (stock, pool)?  nil, or a refusal.  w is
-- its fields: status cost kind sku stock per_member given name.
function L.reward_check(tag, rid)
    local w = redis.call('HMGET', tag .. ':lw:' .. rid, 'status', 'cost',
                         'kind', 'sku', 'stock', 'per_member', 'given',
                         'name')
    if not w[2] then return nil, {'unknown_reward', 'reward', rid} end
    if w[1] ~= 'active' then
        return nil, {'reward_inactive', 'reward', rid}
    end
    local stock = tonumber(w[5])
    if (stock and stock <= 0) or (w[3] ~= 'item' and redis.call(
            'LLEN', tag .. ':lwp:' .. rid) == 0) then
        return nil, {'reward_out_of_stock', 'reward', rid}
    end
    return w
end

-- gives reward rid (checked by L.reward_check: w) to member mid: stock
-- down, given up, a code of its pool assigned (or its SKU); appends the
-- pairs of what was given to r
function L.reward_give(tag, rid, w, mid, r)
    local wkey = tag .. ':lw:' .. rid
    local stock = tonumber(w[5])
    if stock then redis.call('HSET', wkey, 'stock', dec(stock - 1)) end
    redis.call('HSET', wkey, 'given', dec((tonumber(w[7]) or 0) + 1))
    if w[3] == 'item' then
        r[#r + 1] = 'sku'; r[#r + 1] = w[4]
        return ''
    end
    local code = redis.call('LPOP', tag .. ':lwp:' .. rid)
    L.assign(tag, code, mid)
    r[#r + 1] = 'code'; r[#r + 1] = code
    return code
end

-- FCALL voucher_reward_claim 1 {NS}:lm:<member> reward key [at]
-- buys a reward with points: once per key (a retry answers the first
-- answer), within stock and the member's limit
function api.reward_claim(keys, args)
    local tag, mid = L.key(keys[1])
    if not tag then return bad_key() end
    local rid, key = args[1], args[2]
    local now = L.at(args[3])
    if not (rid and key and now) or key == '' or #key > 128
       or #args > 3 then
        return bad_args()
    end
    local ckey = tag .. ':lwc:' .. key
    local done = redis.call('GET', ckey)
    if done then
        local r = cmsgpack.unpack(done)
        if r[3] ~= rid or r[5] ~= mid then
            return {'idempotency_conflict', 'key', key}
        end
        r[#r + 1] = 'replayed'; r[#r + 1] = 1
        return r
    end
    local w, refusal = L.reward_check(tag, rid)
    if not w then return refusal end
    local m
    m, refusal = L.member(tag, mid, now)
    if not m then return refusal end
    local f = 'w:' .. rid
    local mine = tonumber(m.h[f]) or 0
    local per = tonumber(w[6]) or 0
    if per > 0 and mine >= per then
        L.flush(m)
        return {'reward_limit', 'reward', rid}
    end
    local cost = tonumber(w[2])
    if cost > m.act then
        L.flush(m)
        return {'insufficient_points', 'active', m.act, 'points', cost}
    end
    L.spend(m, cost, '', 'reward', rid)
    L.put(m, f, dec(mine + 1))
    local r = {'ok', 'reward', rid, 'member', mid, 'kind', w[3],
               'points', cost, 'active', m.act}
    local code = L.reward_give(tag, rid, w, mid, r)
    L.notify(m, 'reward_redeemed', 'reward', rid, 'reward_name',
             w[8] or rid, 'points', dec(m.act), 'code', code)
    L.redue(m)
    L.flush(m)
    redis.call('SET', ckey, cmsgpack.pack(r), 'EX', 86400 * 30)
    return r
end

reg('voucher_reward_set', api.reward_set)
reg('voucher_reward_get', api.reward_get, true)
reg('voucher_reward_pool_add', api.reward_pool_add)
reg('voucher_reward_pool_fill', api.reward_pool_fill)
reg('voucher_reward_list', api.reward_list, true)
reg('voucher_reward_claim', api.reward_claim)
