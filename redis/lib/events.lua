------------------------------------------------------------ storefront events

-- The storefront's events (nginx's voucher_api event) go to the stream
-- {NS}:events that voucherd reads (worker/daemon/vw_events.c), once per
-- event id: {NS}:ev:<id> keeps the request's fingerprint and the entry's
-- id for the namespace's idem_ttl, so a retry answers the first answer
-- and appends nothing; the same id with another body is event_conflict.

-- the fields an entry may carry besides type, member, id and ts, as
-- voucherd reads them
api.EVENT_FIELDS = {order = true, amount = true, currency = true,
                    items = true, referral_code = true, name = true,
                    phone = true, email = true, line = true, birthday = true,
                    tier = true, tags = true}

-- FCALL voucher_event 1 {NS}:events id type member ts npairs
--       [field value]*npairs [limits]
-- ts: unix seconds, "" = now (Redis time).  Answers {ok, id, I, type, T,
-- entry, E[, replayed, 1]}, event_conflict, or a limit's refusal.
function api.event(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):events$')
    if not tag then return bad_key() end
    local id, typ, member, ts, n = args[1], args[2], args[3], args[4],
                                   uint(args[5])
    if not (id and typ and member and ts and n) or id == '' or #id > 64
       or typ == '' or member == '' or (ts ~= '' and not uint(ts))
       or #args < 5 + 2 * n then
        return bad_args()
    end
    local last = 5 + 2 * n
    for i = 6, last, 2 do
        if not api.EVENT_FIELDS[args[i]] then return bad_args() end
    end
    local status, name
    if #args > last then
        local refusal
        refusal, status, name = limits_apply(tag, '', args, last + 1)
        if refusal == false then return bad_args() end
        if refusal then
            -- no code: its pair goes
            table.remove(refusal, 2)
            table.remove(refusal, 2)
            return refusal
        end
    end
    local fp = fingerprint(table.concat(args, '\0', 2, last))
    local ikey = tag .. ':ev:' .. id
    local rec = redis.call('GET', ikey)
    local r
    if rec then
        local f, entry = cmsgpack.unpack(rec)
        if f ~= fp then
            r = {'event_conflict', 'id', id}
        else
            r = {'ok', 'id', id, 'type', typ, 'entry', entry, 'replayed', 1}
        end
    else
        local e = {'type', typ, 'member', member, 'id', id, 'ts',
                   ts ~= '' and ts or dec(now_s())}
        for i = 6, last do e[#e + 1] = args[i] end
        local entry = redis.call('XADD', keys[1], '*', unpack(e))
        local _, ttl = settings(tag)
        redis.call('SET', ikey, cmsgpack.pack(fp, entry), 'EX', ttl)
        r = {'ok', 'id', id, 'type', typ, 'entry', entry}
    end
    if status then limit_pairs(r, status, name) end
    return r
end

reg('voucher_event', api.event)
