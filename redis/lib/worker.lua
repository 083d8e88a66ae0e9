---------------------------------------------------- worker: codes in bulk

-- voucher_codes_add: many codes of one campaign in one atomic call, with
-- the validation of voucher_code_set.
--
-- KEYS[1]  {NS}:k:<campaign>
-- ARGV     mode npairs [field value]*npairs columns row...
--   mode     "new"   every code must be new, else nothing is written;
--            "skip"  codes that exist (or repeat in the batch) are left as
--                    they are and returned;
--            "check" validate only: write nothing, return what "new" would
--   fields   voucher_code_set fields (not campaign) set on every code
--   columns  "code" then per-row fields, comma-separated ("code,customer");
--            codes are normalized as voucher_code_set does
--   rows     the column values, row after row; an empty value leaves
--            that field unset
-- Returns  {added, {row, ...}}: how many codes were written, and the rows
--          (1-based) left out because their code exists or repeats; an
--          error names the field and the row, and then nothing is written.

-- codes are stored as the module looks them up: upper case, without the
-- spaces, tabs and dashes people type (as voucher_code_set and the C
-- voucher_code_normalize do)
local function row_err(r, name, why)
    return redis.error_reply('ERR invalid_field ' .. name .. ': ' .. why
                             .. ' (row ' .. r .. ')')
end

-- the HSET field/value list of a new code (after 'k'), as voucher_code_set
-- would store it; or nil and the error
local function new_code_fields(new, order, gift, default_balance, r)
    if new.balance and not gift then
        return nil, row_err(r, 'balance', 'only for gift_card campaigns')
    end
    if new.starts_at and new.ends_at
       and tonumber(new.ends_at) <= tonumber(new.starts_at) then
        return nil, row_err(r, 'ends_at', 'ends_at must be after starts_at')
    end
    local set, bal = {}, new.balance
    for _, name in ipairs(order) do
        local v = new[name]
        if name == 'status' then v = v == 'disabled' and 'd' or false end
        if v and name ~= 'balance' then
            set[#set + 1] = CODE_FIELD[name]; set[#set + 1] = v
        end
    end
    if gift then
        bal = bal or default_balance
        if not bal then
            return nil, row_err(r, 'balance',
                                'required (campaign has no value)')
        end
    end
    if bal then
        set[#set + 1] = 'b'; set[#set + 1] = bal
        set[#set + 1] = 'b0'; set[#set + 1] = bal
    end
    return set
end

function api.codes_add(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):k:(.+)$')
    if not tag then return bad_key() end
    local mode = args[1]
    if mode ~= 'new' and mode ~= 'skip' and mode ~= 'check' then
        return redis.error_reply('ERR bad_args mode must be new|skip|check')
    end
    local np = uint(args[2])
    if not np or #args < 3 + 2 * np then return bad_args() end

    local k = redis.call('HMGET', keys[1], 'kind', 'value')
    if not k[1] then return invalid('campaign', 'not found') end
    local gift = k[1] == 'gift_card'

    -- the fields common to every row
    local common, corder = {}, {}
    if np > 0 then
        local err
        common, err = parse_fields({unpack(args, 3, 2 + 2 * np)}, CODE_SET)
        if not common then return err end
        corder = err
        if common.campaign ~= nil then
            return invalid('campaign', 'given by the key, not a field')
        end
    end

    local cols = {}
    for c in string.gmatch(args[3 + 2 * np], '[^,]+') do
        if c ~= 'code' and (not CODE_SET[c] or c == 'campaign') then
            return redis.error_reply('ERR unknown_field ' .. c)
        end
        cols[#cols + 1] = c
    end
    if cols[1] ~= 'code' then
        return redis.error_reply('ERR bad_args the first column is code')
    end
    local first, ncol = 4 + 2 * np, #cols
    if (#args - first + 1) % ncol ~= 0 then return bad_args() end
    local nrows = (#args - first + 1) / ncol

    -- without per-row fields, every code gets the same fields
    local shared
    if ncol == 1 then
        local err
        shared, err = new_code_fields(common, corder, gift, k[2], 1)
        if not shared then return err end
        table.insert(shared, 1, camp)
        table.insert(shared, 1, 'k')
    end

    -- validate every row before writing anything
    local rows, seen, left = {}, {}, {}
    for r = 1, nrows do
        local base = first + (r - 1) * ncol
        local code = normalize_code(args[base])
        args[base] = code
        if bad_id(code) then
            return row_err(r, 'code', '1..64 printable ASCII characters')
        end
        local dup = seen[code]
        if dup and mode ~= 'skip' then
            return row_err(r, 'code', 'twice in the batch')
        end
        seen[code] = true

        local set = shared
        if not set then
            local new, order = {}, {}
            for _, name in ipairs(corder) do
                new[name] = common[name]; order[#order + 1] = name
            end
            for c = 2, ncol do
                -- an empty cell leaves the field unset
                local name, s = cols[c], args[base + c - 1]
                if s ~= '' then
                    local val, why = CODE_SET[name](s)
                    if val == nil then return row_err(r, name, why) end
                    if new[name] == nil then order[#order + 1] = name end
                    new[name] = val
                end
            end
            local err
            set, err = new_code_fields(new, order, gift, k[2], r)
            if not set then return err end
            table.insert(set, 1, camp)
            table.insert(set, 1, 'k')
        end
        rows[r] = set
    end

    -- Writes row r unless its code exists, in either form; true when
    -- written.  HSETNX both checks and writes a compact one.
    local function put(r)
        local code = args[first + (r - 1) * ncol]
        local ckey = tag .. ':c:' .. code
        local v = compact_of(rows[r])
        if v then
            if redis.call('EXISTS', ckey) == 1
               or redis.call('HSETNX', bucket_key(tag, code), code, v) == 0
            then
                return false
            end
        else
            if code_exists(tag, ckey, code) then return false end
            redis.call('HSET', ckey, unpack(rows[r]))
        end
        -- a code given to a customer is in his wallet
        local set = rows[r]
        for i = 3, #set - 1, 2 do
            if set[i] == 'c' then W.add(tag, set[i + 1], code) end
        end
        return true
    end

    -- skip: codes that exist are left as they are
    local added = 0
    if mode == 'skip' then
        for r = 1, nrows do
            if put(r) then
                added = added + 1
                if gift then
                    local code = args[first + (r - 1) * ncol]
                    G.issue(tag, code, tag .. ':c:' .. code)
                end
            else
                left[#left + 1] = r
            end
        end
        return {added, left}
    end

    if mode == 'check' then
        for r = 1, nrows do
            local code = args[first + (r - 1) * ncol]
            if code_exists(tag, tag .. ':c:' .. code, code) then
                return row_err(r, 'code', 'exists')
            end
        end
        return {nrows, left}
    end

    -- new: all or nothing.  The call is atomic, so a code found to exist
    -- half-way is answered by taking back what this call wrote.
    for r = 1, nrows do
        if not put(r) then
            for w = 1, r - 1 do
                local code = args[first + (w - 1) * ncol]
                redis.call('DEL', tag .. ':c:' .. code)
                redis.call('HDEL', bucket_key(tag, code), code)
                local set = rows[w]
                for i = 3, #set - 1, 2 do
                    if set[i] == 'c' then
                        redis.call('ZREM', tag .. ':w:' .. set[i + 1], code)
                    end
                end
            end
            return row_err(r, 'code', 'exists')
        end
    end
    -- the gift cards' ledgers once every row is in
    for r = 1, gift and nrows or 0 do
        local code = args[first + (r - 1) * ncol]
        G.issue(tag, code, tag .. ':c:' .. code)
    end
    return {nrows, left}
end

reg('voucher_codes_add', api.codes_add)

-- voucher_codes_page: one page of the codes of a campaign, in either form
-- (hash or compact), for export and reports.
--
-- KEYS[1]  {NS}:k:<campaign>
-- ARGV     cursor count      (a SCAN over the namespace's code keys)
-- Returns  {next cursor, {{code, k, s, m, u, c, b, b0, f, t}, ...}}; "0"
--          when done.  A page may be empty while the cursor goes on.
function api.codes_page(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):k:(.+)$')
    if not tag then return bad_key() end
    local cursor, count = args[1], uint(args[2])
    if not (cursor and count) or count < 1 then return bad_args() end
    -- a namespace may hold glob characters: match them as they are
    local pat = string.gsub(tag, '[%*%?%[%]\\]', '\\%0') .. ':c*'
    local res = redis.call('SCAN', cursor, 'MATCH', pat, 'COUNT', count)
    local rows = {}
    local cpre, bpre = tag .. ':c:', tag .. ':cb:'
    for _, key in ipairs(res[2]) do
        if string.sub(key, 1, #cpre) == cpre then
            local c = redis.call('HMGET', key, 'k', 's', 'm', 'u', 'c', 'b',
                                 'b0', 'f', 't')
            if c[1] == camp then
                table.insert(c, 1, string.sub(key, #cpre + 1))
                rows[#rows + 1] = c
            end
        elseif string.sub(key, 1, #bpre) == bpre then
            local h = redis.call('HGETALL', key)
            for i = 1, #h, 2 do
                local u, k, cust = compact_parse(h[i + 1])
                if k == camp then
                    rows[#rows + 1] = {h[i], k, false, false, u,
                                       cust or false, false, false, false,
                                       false}
                end
            end
        end
    end
    return {res[1], rows}
end

reg('voucher_codes_page', api.codes_page, true)
