------------------------------------------------------------ reservations

-- A reservation (gate mode, voucher_reserve) is a redemption like any
-- other, written at once and counted against every limit, whose id also
-- sits in the sorted set {NS}:hz scored by its deadline (ms, Redis time).
-- Confirming takes it out of the set; releasing rolls it back; one whose
-- deadline passed is rolled back by the next call that writes ("sweep"),
-- so a reservation never outlives nginx dying between the two steps.
-- NEXT caches each namespace's earliest deadline (math.huge: none), so a
-- call with nothing due costs one table lookup; nil means not yet known.
-- It is never later than the set's first deadline: every ZADD here lowers
-- it, and the native module, whose reserve adds to the set too, tells it
-- (voucher_hold_note) of a hold due before any the set had.
local NEXT = {}

-- Redis' clock, read at most once per call: the limit, the window, the
-- hold deadline and the sweep of one call all see the same instant.  reg()
-- clears it before every function runs, so no call sees another's time.
local CLOCK_S, CLOCK_T
local function now_s()
    if not CLOCK_S then
        CLOCK_T = redis.call('TIME')
        CLOCK_S = tonumber(CLOCK_T[1])
    end
    return CLOCK_S
end

-- (tonumber is glibc's strtod: the microseconds are converted only when
-- asked for)
local function now_us()
    return now_s() * 1000000 + tonumber(CLOCK_T[2])
end

local function now_ms()
    return now_s() * 1000 + math.floor(tonumber(CLOCK_T[2]) / 1000)
end

local function hold_add(tag, id, deadline)
    redis.call('ZADD', tag .. ':hz', dec(deadline), id)
    local nx = NEXT[tag]
    if nx and deadline < nx then NEXT[tag] = deadline end
end

-- the redemption id of an "ok" reply, or nil: positional (see ok_reply;
-- the id follows the 7 values always there and the optional ones of bits
-- 1 to 128), or pairs (a record kept by an older library)
local function held_id(r)
    local m = r[2]
    if type(m) == 'number' then
        if m % 512 < 256 then return nil end
        local i = 10
        for b = 0, 7 do
            if math.floor(m / 2 ^ b) % 2 == 1 then i = i + 1 end
        end
        return r[i]
    end
    for i = 2, #r - 1, 2 do
        if r[i] == 'redemption_id' then return r[i + 1] end
    end
end

-- the redemption of an "ok" reply has been rolled back (released)
local function released(tag, r)
    if r[1] ~= 'ok' then return false end
    local id = held_id(r)
    return id ~= nil
           and redis.call('HGET', tag .. ':rb:' .. id, 'done') ~= false
end
