---------------------------------------------------------------- registration

-- Every function starts with CLOCK_S = nil (see now_s): reg() wraps the
-- function in a closure that does it, and the hot paths, whose closures
-- exist anyway, do it themselves (hot = true), saving a call frame.
local function reg(name, fn, ro, hot)
    local cb = fn
    if not hot then
        cb = function(k, a) CLOCK_S = nil; return fn(k, a) end
    end
    redis.register_function{function_name = name, callback = cb,
                            flags = ro and {'no-writes'} or {}}
end

reg('voucher_version', function() return VERSION end, true)
reg('voucher_validate',
    function(k, a) CLOCK_S = nil; return evaluate(k, a, false, true) end,
    true, true)
-- validate with limits: they write (GCRA state, failure counts)
reg('voucher_validate_limited',
    function(k, a) CLOCK_S = nil; return evaluate(k, a, false) end,
    false, true)
reg('voucher_guess', guess)
reg('voucher_redeem',
    function(k, a) CLOCK_S = nil; return evaluate(k, a, true) end,
    false, true)
reg('voucher_rollback', rollback)
reg('voucher_reserve', reserve)
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
reg('voucher_campaign_set', campaign_set)
reg('voucher_campaign_get', campaign_get, true)
reg('voucher_code_set', code_set)
reg('voucher_code_get', code_get, true)
reg('voucher_code_del', code_del)
reg('voucher_redemption_get', redemption_get, true)
reg('voucher_settings_set', settings_set)
reg('voucher_settings_get', settings_get, true)
