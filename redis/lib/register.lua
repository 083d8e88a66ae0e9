---------------------------------------------------------------- registration

-- Every function starts with CLOCK_S = nil (see now_s): reg() wraps the
-- function in a closure that does it, and the hot paths, whose closures
-- exist anyway, do it themselves (hot = true), saving a call frame.  Each
-- is registered as <name>_<VERSION>, and as <name> in the primary library
-- (see PRIMARY).
local function reg(name, fn, ro, hot)
    local cb = fn
    if not hot then
        cb = function(k, a) CLOCK_S = nil; return fn(k, a) end
    end
    local flags = ro and {'no-writes'} or {}
    if PRIMARY then
        redis.register_function{function_name = name, callback = cb,
                                flags = flags}
    end
    redis.register_function{function_name = name .. '_' .. VERSION,
                            callback = cb, flags = flags}
end

reg('voucher_version', function() return VERSION end, true)
reg('voucher_validate',
    function(k, a) CLOCK_S = nil; return evaluate(k, a, false, true) end,
    true, true)
-- validate with limits: they write (GCRA state, failure counts)
reg('voucher_validate_limited',
    function(k, a) CLOCK_S = nil; return evaluate(k, a, false) end,
    false, true)
reg('voucher_guess', api.guess)
reg('voucher_redeem',
    function(k, a) CLOCK_S = nil; return evaluate(k, a, true) end,
    false, true)
reg('voucher_rollback', api.rollback)
reg('voucher_reserve', api.reserve)
reg('voucher_confirm',
    function(k, a) CLOCK_S = nil; return settle(k, a, true) end, false, true)
reg('voucher_release',
    function(k, a) CLOCK_S = nil; return settle(k, a, false) end, false, true)
reg('voucher_sweep', function(k)
    local tag = string.match(k[1] or '', '^({[^}]+}):hz$')
    if not tag then return bad_key() end
    NEXT[tag] = nil
    return sweep(tag) or 0
end)
-- FCALL voucher_hold_note 1 {NS}:hz deadline: the native module added a
-- hold due before every other in the set (see NEXT)
reg('voucher_hold_note', function(k, a)
    local tag = string.match(k[1] or '', '^({[^}]+}):hz$')
    if not tag then return bad_key() end
    local d = tonumber(a[1])
    if not d then return bad_args() end
    local nx = NEXT[tag]
    if nx and d < nx then NEXT[tag] = d end
    return 1
end, true)
reg('voucher_campaign_set', api.campaign_set)
reg('voucher_campaign_get', api.campaign_get, true)
reg('voucher_code_set', api.code_set)
reg('voucher_code_get', api.code_get, true)
reg('voucher_code_del', api.code_del)
reg('voucher_series_set', api.series_set)
reg('voucher_series_get', api.series_get, true)
reg('voucher_redemption_get', api.redemption_get, true)
reg('voucher_settings_set', api.settings_set)
reg('voucher_settings_get', api.settings_get, true)
reg('voucher_period', api.period, true)
