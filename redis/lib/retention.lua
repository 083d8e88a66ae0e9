------------------------------------------------------------------ retention

-- The trail {NS}:log, the delivery logs {NS}:dl:<campaign> and the
-- delivery records {NS}:d:<campaign>:<run> keep trail_retention seconds
-- ({NS}:cfg; 0, the default, keeps everything).  voucherd calls these on
-- a timer, each call one atomic round of at most "max" entries.  Nothing
-- a rollback, a confirm or a report still needs goes:
--
--   * a rollback needs its redemption's entry: only entries older than the
--     retention go, which the shop sets longer than its refund window (a
--     rollback of an older one answers redemption_not_found);
--   * a confirm, release or expire needs its reservation's entry: nothing
--     at or after the oldest redemption still held ({NS}:hz) goes, however
--     old;
--   * a report needs every entry: each one is added to its campaign's
--     archive first ({NS}:ar:<campaign>: redemptions not rolled back with
--     their discount and revenue, rollbacks, the same per customer and per
--     day of the campaign's zone, with the deliveries sent that day;
--     {NS}:ad:<campaign>: each member's deliveries as the report sums
--     them), in the same call, and voucherctl report reads the archive
--     before the streams, so its figures do not change;
--   * a run's records go only when every delivery of it is done (sent,
--     dead, cancelled, skipped): none is queued or being sent.
--
-- A redemption's rollback record {NS}:rb:<id> goes with its entry (and a
-- gift card's {NS}:gs:<id>): no rollback can reach it any more, and the
-- archive counted what it says.

local R = {DONE = DONE}

-- "ms-seq" as two numbers
function R.id(s)
    local ms, seq = string.match(s, '^(%d+)%-(%d+)$')
    return tonumber(ms), tonumber(seq)
end

-- the retention's cut in ms on Redis' clock, or nil: keep everything
function R.cut(tag)
    local keep = tonumber(redis.call('HGET', tag .. ':cfg',
                                     'trail_retention')) or 0
    if keep <= 0 then return nil end
    return now_ms() - keep * 1000
end

-- the oldest redemption still held, as ms and seq, or nil
function R.oldest_hold(tag)
    local bms, bseq
    for _, id in ipairs(redis.call('ZRANGE', tag .. ':hz', 0, -1)) do
        local ms, seq = R.id(id)
        if ms and (not bms or ms < bms or (ms == bms and seq < bseq)) then
            bms, bseq = ms, seq
        end
    end
    return bms, bseq
end

-- an entry's time in ms as the report reads it: its "at" (seconds), else
-- its id
function R.ms(id, f)
    for i = 1, #f, 2 do
        if f[i] == 'at' then
            local at = string.find(f[i + 1], '^-?%d+$') and tonumber(f[i + 1])
            if at and at > 0 then return at * 1000 end
            break
        end
    end
    return (R.id(id))
end

-- "day:YYYY-MM-DD:" of ms in the campaign's zone (its tz_offset, minutes),
-- the day the report gives the entry; tzs caches the zones of one call
function R.day(tag, camp, ms, tzs)
    if not tzs[camp] then
        tzs[camp] = tonumber(redis.call('HGET', tag .. ':k:' .. camp,
                                        'tz_offset')) or 0
    end
    local y, m, d = L.civil(math.floor((math.floor(ms / 1000)
                                        + tzs[camp] * 60) / 86400))
    return string.format('day:%04d-%02d-%02d:', y, m, d)
end

-- an entry of the trail into its campaign's archive (as the report counts)
function R.fold_log(tag, id, f, tzs)
    local typ, camp = f[2], f[6]
    if not camp or camp == '' then return end
    local ar = tag .. ':ar:' .. camp
    if typ == 'redeem' then
        local rbkey = tag .. ':rb:' .. id
        local rb = redis.call('HMGET', rbkey, 'amt', 'done')
        local rolled = tonumber(rb[1]) or 0
        local disc, amount = tonumber(f[16]) or 0, tonumber(f[12]) or 0
        local gift = (f[18] or '') ~= ''
        redis.call('DEL', rbkey)
        -- the lots a gift card's redemption took: no refund comes any more
        if gift then redis.call('DEL', tag .. ':gs:' .. id) end
        if rb[2] or (rolled > 0 and (not gift or rolled >= disc)) then
            return
        end
        local cust = f[8] or ''
        redis.call('HINCRBY', ar, 'redemptions', 1)
        redis.call('HINCRBY', ar, 'discount', disc - rolled)
        redis.call('HINCRBY', ar, 'revenue', amount)
        -- the day of the redemption, net of its rollbacks as the report
        -- nets them
        local day = R.day(tag, camp, R.ms(id, f), tzs)
        redis.call('HINCRBY', ar, day .. 'r', 1)
        redis.call('HINCRBY', ar, day .. 'd', disc - rolled)
        redis.call('HINCRBY', ar, day .. 'v', amount)
        if cust ~= '' then
            redis.call('HINCRBY', ar, 'r:' .. cust, 1)
            redis.call('HINCRBY', ar, 'd:' .. cust, disc - rolled)
            redis.call('HINCRBY', ar, 'v:' .. cust, amount)
        end
    elseif typ == 'rollback' or typ == 'release' or typ == 'expire' then
        redis.call('HINCRBY', ar, 'rollbacks', 1)
    end
end

-- a run's counts in the delivery archive, by status
R.RUN_COUNT = {queued = 'q', sent = 's', failed = 'f', skipped = 'k',
               cancelled = 'c', dead = 'd'}

-- an entry of a delivery log into its campaign's archive: per member (the
-- last status, channel, code and error, the counts, the last time sent,
-- cs the codes sent) and per run ("run TAB <run>":
-- t its first entry, the counts by status); times as the report reads
-- them, the daemon's clock ("at") else the entry's id; a sent one also
-- counts in the trail's archive ar, on its day (day(ms))
function R.fold_dl(ad, ar, day, id, f)
    local e = {}
    for i = 1, #f, 2 do e[f[i]] = f[i + 1] end
    if not e.member then return end
    local ms = R.ms(id, f)
    if e.run then
        local rk = 'run\t' .. e.run
        local rr = redis.call('HGET', ad, rk)
        local x = rr and cjson.decode(rr) or {t = ms}
        local k = R.RUN_COUNT[e.status]
        if k then x[k] = (x[k] or 0) + 1 end
        redis.call('HSET', ad, rk, cjson.encode(x))
    end
    local raw = redis.call('HGET', ad, e.member)
    local m = raw and cjson.decode(raw) or {n = 0, f = 0, x = 0}
    m.s, m.ch = e.status, e.channel
    if (e.code or '') ~= '' then m.c = e.code end
    if e.status == 'sent' then
        redis.call('HINCRBY', ar, day(ms) .. 's', 1)
        m.n = m.n + 1
        m.t = ms
        m.e = nil
        if (e.code or '') ~= '' then
            m.cs = m.cs and (m.cs .. '\n' .. e.code) or e.code
        end
    elseif e.status == 'failed' then
        m.f = m.f + 1
        m.e = e.error
    elseif e.status == 'dead' then
        m.x = m.x + 1
        m.e = e.error
    end
    redis.call('HSET', ad, e.member, cjson.encode(m))
end

-- folds and trims the entries of stream "key" below (bms, bseq), at most
-- max; returns {how many, 1 if there may be more}
function R.trim(key, max, bms, bseq, fold)
    local es = redis.call('XRANGE', key, '-', '+', 'COUNT', max)
    local n, lms, lseq = 0
    for _, e in ipairs(es) do
        local ms, seq = R.id(e[1])
        if ms > bms or (ms == bms and seq >= bseq) then break end
        fold(e[1], e[2])
        n, lms, lseq = n + 1, ms, seq
    end
    if n > 0 then
        redis.call('XTRIM', key, 'MINID', dec(lms) .. '-' .. dec(lseq + 1))
    end
    return {n, n == max and 1 or 0}
end

-- voucher_trail_trim  KEYS[1] {NS}:log  ARGV max
function api.trail_trim(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):log$')
    if not tag then return bad_key() end
    local max = uint(args[1])
    if not max or max < 1 or max > 10000 then return bad_args() end
    local bms = R.cut(tag)
    if not bms then return {0, 0} end
    local bseq = 0
    local hms, hseq = R.oldest_hold(tag)
    if hms and (hms < bms or (hms == bms and hseq < bseq)) then
        bms, bseq = hms, hseq
    end
    local tzs = {}
    return R.trim(keys[1], max, bms, bseq,
                  function(id, f) R.fold_log(tag, id, f, tzs) end)
end

-- voucher_dlog_trim  KEYS[1] {NS}:dl:<campaign>  ARGV max
function api.dlog_trim(keys, args)
    local tag, camp = string.match(keys[1], '^({[^}]+}):dl:(.+)$')
    if not tag then return bad_key() end
    local max = uint(args[1])
    if not max or max < 1 or max > 10000 then return bad_args() end
    local bms = R.cut(tag)
    if not bms then return {0, 0} end
    local ad, ar, tzs = tag .. ':ad:' .. camp, tag .. ':ar:' .. camp, {}
    local function day(ms) return R.day(tag, camp, ms, tzs) end
    return R.trim(keys[1], max, bms, 0,
                  function(id, f) R.fold_dl(ad, ar, day, id, f) end)
end

-- voucher_runs_prune  KEYS[1] {NS}:dr  ARGV max
-- the records of runs queued before the cut whose deliveries are all
-- done; returns {runs removed, 1 if there may be more}
function api.runs_prune(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):dr$')
    if not tag then return bad_key() end
    local max = uint(args[1])
    if not max or max < 1 or max > 1000 then return bad_args() end
    local cut = R.cut(tag)
    if not cut then return {0, 0} end
    local runs = redis.call('ZRANGEBYSCORE', keys[1], '-inf',
                            '(' .. dec(cut), 'LIMIT', 0, max)
    local n = 0
    for _, item in ipairs(runs) do
        local camp, run = string.match(item, '^([^\t]+)\t(.+)$')
        local dkey = tag .. ':d:' .. (camp or '') .. ':' .. (run or '')
        local done = true
        for _, v in ipairs(redis.call('HVALS', dkey)) do
            if not R.DONE[string.match(v, '"s":"(%a+)"') or ''] then
                done = false
                break
            end
        end
        if done then
            redis.call('DEL', dkey)
            redis.call('ZREM', keys[1], item)
            n = n + 1
        end
    end
    return {n, #runs == max and 1 or 0}
end

reg('voucher_trail_trim', api.trail_trim)
reg('voucher_dlog_trim', api.dlog_trim)
reg('voucher_runs_prune', api.runs_prune)
