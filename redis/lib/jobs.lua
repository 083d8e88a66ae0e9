--------------------------------------------------------------------- jobs

-- Long work (issuing, importing, exporting codes, importing members) runs
-- as a job.  {NS}:j:<id> holds one:
--   kind state who params phase done total seq cursor keep owner lease
--   created started claimed claimed_done updated finished cancel
--   reason message result errors
-- state: queued, running, done, failed, cancelled.  {NS}:jobs (zset,
-- created ms) lists them; {NS}:jq (zset) holds those a runner may claim:
-- queued ones scored by their creation, running ones by the end of their
-- lease, so one whose runner died is claimed again.  {NS}:jd:<id> is the
-- input of an import, {NS}:jx:<id> the output (a list of text chunks),
-- {NS}:jn counts the jobs by state.  A step (voucher_job_step) writes its
-- batch and moves the job's checkpoint (seq, cursor, done) in one call,
-- so a runner resumes exactly where the last one stopped.  A finished job
-- and its output are kept J.KEEP_MS.  Times are Redis' clock (ms).

local J = {KEEP_MS = 7 * 86400 * 1000, ENDED = {done = true, failed = true,
           cancelled = true}}

function J.key(tag, id) return tag .. ':j:' .. id end

-- moves a job to another state, counted in {NS}:jn
function J.state(tag, key, from, to)
    redis.call('HSET', key, 'state', to)
    if from then redis.call('HINCRBY', tag .. ':jn', from, -1) end
    redis.call('HINCRBY', tag .. ':jn', to, 1)
end

-- what the audit stream keeps of a job
function J.brief(key)
    local h = redis.call('HMGET', key, 'kind', 'state', 'params', 'done',
                         'total', 'reason')
    if not h[1] then return nil end
    local reason = h[6]
    if reason == '' then reason = false end
    return {kind = h[1], state = h[2], params = cjson.decode(h[3]),
            done = tonumber(h[4]), total = tonumber(h[5]),
            reason = reason or nil}
end

-- ends a job: done, failed or cancelled; its input goes, the rest expires
function J.finish(tag, key, id, from, state, now)
    J.state(tag, key, from, state)
    redis.call('HSET', key, 'finished', dec(now), 'updated', dec(now),
               'owner', '')
    redis.call('ZREM', tag .. ':jq', id)
    redis.call('DEL', tag .. ':jd:' .. id)
    redis.call('PEXPIRE', key, J.KEEP_MS)
    redis.call('PEXPIRE', tag .. ':jx:' .. id, J.KEEP_MS)
end

-- the job of KEYS[1], held by owner and running; else nil and the error
function J.held(keys, owner)
    local tag, id = string.match(keys[1] or '', '^({[^}]+}):j:(.+)$')
    if not (tag and owner) then return nil, bad_key() end
    local h = redis.call('HMGET', keys[1], 'state', 'owner', 'cancel',
                         'seq', 'done', 'keep')
    if h[1] ~= 'running' or h[2] ~= owner then
        return nil, redis.error_reply('ERR job_lost ' .. id)
    end
    return {tag = tag, id = id, cancel = h[3] == '1', seq = tonumber(h[4]),
            done = tonumber(h[5]), keep = h[6] == '1'}
end

-- a cancel asked for: the job ends cancelled now
function J.cancelled(j, now)
    J.finish(j.tag, J.key(j.tag, j.id), j.id, 'running', 'cancelled', now)
    redis.call('HSET', J.key(j.tag, j.id), 'reason', 'cancelled',
               'message', 'cancelled on request')
    return {'cancelled'}
end

function J.lease(j, lease, now)
    local key = J.key(j.tag, j.id)
    redis.call('HSET', key, 'lease', dec(now + lease), 'updated', dec(now))
    redis.call('ZADD', j.tag .. ':jq', dec(now + lease), j.id)
end

-- voucher_job_create  KEYS[1] {NS}:jobs
-- ARGV  who kind params total phase keep input owner lease_ms
--   params  JSON, as the runner reads it; total -1 when not known
--   phase   "check" or "write" (imports), "" others
--   keep    1: the output is kept in {NS}:jx:<id>
--   input   the import's file ("" none), kept in {NS}:jd:<id>
--   owner   "": queued for voucherd; else running, held by owner (a
--           voucherctl running it) for lease_ms
-- Returns the job's id; appends job.create to {NS}:admin.
function api.job_create(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):jobs$')
    if not tag then return bad_key() end
    local who, kind, params, total, phase, keep, input, owner, lease =
        args[1], args[2], args[3], tonumber(args[4]), args[5], args[6],
        args[7], args[8], uint(args[9])
    if not (who and kind and params and total and phase and keep and input
            and owner and lease) then
        return bad_args()
    end
    local now = now_ms()
    local id = 'j' .. redis.call('INCR', tag .. ':jseq')
    local key = J.key(tag, id)
    redis.call('HSET', key, 'kind', kind, 'who', who, 'params', params,
               'phase', phase, 'done', 0, 'total', dec(total), 'seq', 0,
               'cursor', '', 'keep', keep, 'created', dec(now),
               'updated', dec(now), 'owner', owner)
    if input ~= '' then redis.call('SET', tag .. ':jd:' .. id, input) end
    redis.call('ZADD', keys[1], dec(now), id)
    if owner ~= '' then
        J.state(tag, key, nil, 'running')
        redis.call('HSET', key, 'started', dec(now), 'claimed', dec(now),
                   'claimed_done', 0, 'lease', dec(now + lease))
        redis.call('ZADD', tag .. ':jq', dec(now + lease), id)
    else
        J.state(tag, key, nil, 'queued')
        redis.call('ZADD', tag .. ':jq', dec(now), id)
    end
    -- the list forgets the jobs that expired
    local old = redis.call('ZRANGEBYSCORE', keys[1], '-inf',
                           dec(now - J.KEEP_MS), 'LIMIT', 0, 100)
    for _, o in ipairs(old) do
        if redis.call('EXISTS', J.key(tag, o)) == 0 then
            redis.call('ZREM', keys[1], o)
        end
    end
    ADM.append(tag, who, 'job.create', id, 'null', ADM.json(J.brief(key)))
    return id
end

-- voucher_job_claim  KEYS[1] {NS}:jobs  ARGV owner lease_ms
-- The oldest job a runner may take: queued, or running with its lease
-- over.  Returns its fields (pairs), or nil when there is none.
function api.job_claim(keys, args)
    local tag = string.match(keys[1], '^({[^}]+}):jobs$')
    if not tag then return bad_key() end
    local owner, lease = args[1], uint(args[2])
    if not (owner and owner ~= '' and lease) then return bad_args() end
    local now = now_ms()
    local ids = redis.call('ZRANGEBYSCORE', tag .. ':jq', '-inf', dec(now),
                           'LIMIT', 0, 1)
    local id = ids[1]
    if not id then return nil end
    local key = J.key(tag, id)
    local h = redis.call('HMGET', key, 'state', 'done', 'started')
    if h[1] ~= 'queued' and h[1] ~= 'running' then
        redis.call('ZREM', tag .. ':jq', id)
        return nil
    end
    if h[1] == 'queued' then J.state(tag, key, 'queued', 'running') end
    redis.call('HSET', key, 'owner', owner, 'lease', dec(now + lease),
               'claimed', dec(now), 'claimed_done', h[2], 'updated',
               dec(now))
    if not h[3] then redis.call('HSET', key, 'started', dec(now)) end
    redis.call('ZADD', tag .. ':jq', dec(now + lease), id)
    local r = redis.call('HGETALL', key)
    r[#r + 1] = 'id'
    r[#r + 1] = id
    return r
end

-- voucher_job_beat  KEYS[1] {NS}:j:<id>
-- ARGV  owner lease_ms done total phase
-- Progress of work that writes nothing (an import's check): the lease is
-- renewed and done, total, phase set (a new phase starts the rate of the
-- ETA again).  "ok", or "cancelled" when a cancel was asked (the job
-- ended so); ERR job_lost when another runner has the job.
function api.job_beat(keys, args)
    local j, err = J.held(keys, args[1])
    if not j then return err end
    local lease, done, total, phase = uint(args[2]), uint(args[3]),
        tonumber(args[4]), args[5]
    if not (lease and done and total and phase) then return bad_args() end
    local now = now_ms()
    if j.cancel then return J.cancelled(j, now)[1] end
    local key = J.key(j.tag, j.id)
    if redis.call('HGET', key, 'phase') ~= phase then
        redis.call('HSET', key, 'phase', phase, 'claimed', dec(now),
                   'claimed_done', dec(done))
    end
    redis.call('HSET', key, 'done', dec(done), 'total', dec(total))
    J.lease(j, lease, now)
    return 'ok'
end

-- voucher_job_step  KEYS[1] {NS}:j:<id>  KEYS[2] the key of op
-- ARGV  owner lease_ms seq cursor add out op arg...
--   seq     the step expected next: the job's seq (else ERR job_seq)
--   cursor  where the work is after this step (kept as it is)
--   add     added to done (op "none")
--   out     text appended to the output ("" none; "*" with codes_add:
--           the codes it wrote, one a line, when the job keeps output)
--   op      "none", "codes_add" (KEYS[2] {NS}:k:<campaign>, the
--           arguments of voucher_codes_add), "members_add" (KEYS[2]
--           {NS}:members, those of voucher_members_add) or "run_add"
--           (KEYS[2] {NS}:a:<campaign>, those of voucher_run_add: a
--           segment send's members queued); done grows by what it wrote
--           (run_add: the members it judged, queued, already in the run
--           or held back)
-- Returns {"ok", done, reply of op} with the checkpoint moved;
-- {"cancelled"}; {"campaign_not_found"} when KEYS[2] is a campaign that
-- is gone; or op's error, and then nothing was written.
function api.job_step(keys, args)
    local j, err = J.held(keys, args[1])
    if not j then return err end
    local lease, seq, cursor, add, out, op = uint(args[2]), uint(args[3]),
        args[4], uint(args[5]), args[6], args[7]
    if not (lease and seq and cursor and add and out and op and keys[2]) then
        return bad_args()
    end
    local now = now_ms()
    if j.cancel then return J.cancelled(j, now) end
    if seq ~= j.seq then
        return redis.error_reply('ERR job_seq ' .. j.id .. ' is at '
                                 .. dec(j.seq))
    end
    local camp = string.match(keys[2], '^{[^}]+}:k:(.+)$')
    if camp and redis.call('EXISTS', keys[2]) == 0 then
        return {'campaign_not_found'}
    end
    camp = op == 'run_add' and string.match(keys[2], '^{[^}]+}:a:(.+)$')
    if camp and (redis.call('EXISTS', j.tag .. ':k:' .. camp) == 0
                 or redis.call('EXISTS', keys[2]) == 0) then
        return {'campaign_not_found'}
    end
    local rest = {}
    for i = 8, #args do rest[#rest + 1] = args[i] end
    local r, n = 0, add
    if op == 'codes_add' then
        r = api.codes_add({keys[2]}, rest)
        if type(r) == 'table' and r.err then return r end
        n = r[1]
        if out == '*' then
            out = ''
            if j.keep then
                -- the codes (normalized in rest by codes_add) not left out
                local np = tonumber(rest[2])
                local first = 4 + 2 * np
                local skip, lines = {}, {}
                for _, row in ipairs(r[2]) do skip[row] = true end
                for i = first, #rest do
                    if not skip[i - first + 1] then
                        lines[#lines + 1] = rest[i]
                    end
                end
                if #lines > 0 then
                    out = table.concat(lines, '\n') .. '\n'
                end
            end
        end
    elseif op == 'members_add' then
        r = api.members_add({keys[2]}, rest)
        if type(r) == 'table' and r.err then return r end
        n = r
    elseif op == 'run_add' then
        r = api.run_add({keys[2]}, rest)
        if type(r) == 'table' and r.err then return r end
        n = r[1] + r[2] + r[3]
    elseif op ~= 'none' then
        return bad_args()
    end
    local key = J.key(j.tag, j.id)
    if out ~= '' then redis.call('RPUSH', j.tag .. ':jx:' .. j.id, out) end
    local done = j.done + n
    redis.call('HSET', key, 'done', dec(done), 'seq', dec(seq + 1),
               'cursor', cursor)
    J.lease(j, lease, now)
    return {'ok', done, r}
end

-- voucher_job_end  KEYS[1] {NS}:j:<id>
-- ARGV  owner state reason message result errors
--   state   done, failed, cancelled; or queued: given back unfinished (a
--           runner stopping), for the next runner to resume
--   result  JSON ("" none); errors: JSON, the lines refused ("" none)
-- 1, or ERR job_lost.  A finished job appends job.end to {NS}:admin.
function api.job_end(keys, args)
    local j, err = J.held(keys, args[1])
    if not j then return err end
    local state, reason, message, result, errors = args[2], args[3],
        args[4], args[5], args[6]
    if not (errors and (state == 'queued' or J.ENDED[state])) then
        return bad_args()
    end
    local now = now_ms()
    local key = J.key(j.tag, j.id)
    if state == 'queued' then
        J.state(j.tag, key, 'running', 'queued')
        redis.call('HSET', key, 'owner', '', 'updated', dec(now))
        redis.call('ZADD', j.tag .. ':jq', dec(now), j.id)
        return 1
    end
    J.finish(j.tag, key, j.id, 'running', state, now)
    redis.call('HSET', key, 'reason', reason, 'message', message)
    if result ~= '' then redis.call('HSET', key, 'result', result) end
    if errors ~= '' then redis.call('HSET', key, 'errors', errors) end
    local who = redis.call('HGET', key, 'who')
    ADM.append(j.tag, who, 'job.end', j.id, 'null', ADM.json(J.brief(key)))
    return 1
end

-- voucher_job_cancel  KEYS[1] {NS}:j:<id>  ARGV who
-- A queued job, or a running one whose runner is gone (lease over), ends
-- cancelled now; a running one stops at its next step.  Returns the
-- state; ERR not_found, or {"job_finished", state} when it had ended.
function api.job_cancel(keys, args)
    local tag, id = string.match(keys[1] or '', '^({[^}]+}):j:(.+)$')
    if not tag then return bad_key() end
    local who = args[1]
    if not who then return bad_args() end
    local h = redis.call('HMGET', keys[1], 'state', 'lease', 'cancel')
    if not h[1] then return redis.error_reply('ERR not_found ' .. id) end
    if J.ENDED[h[1]] then return {'job_finished', h[1]} end
    local before = ADM.json(J.brief(keys[1]))
    local now = now_ms()
    if h[1] == 'queued' or (tonumber(h[2]) or 0) <= now then
        J.finish(tag, keys[1], id, h[1], 'cancelled', now)
        redis.call('HSET', keys[1], 'reason', 'cancelled', 'message',
                   'cancelled on request')
    else
        if h[3] == '1' then return 'running' end
        redis.call('HSET', keys[1], 'cancel', 1)
    end
    ADM.append(tag, who, 'job.cancel', id, before, ADM.json(J.brief(keys[1])))
    return redis.call('HGET', keys[1], 'state')
end

reg('voucher_job_create', api.job_create)
reg('voucher_job_claim', api.job_claim)
reg('voucher_job_beat', api.job_beat)
reg('voucher_job_step', api.job_step)
reg('voucher_job_end', api.job_end)
reg('voucher_job_cancel', api.job_cancel)
