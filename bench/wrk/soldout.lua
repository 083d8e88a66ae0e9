-- soldout.lua -- POST PATH (env SOLDOUT_PATH) for the one sold-out code
-- SOLDOUT1 (scripts/bench seeds it used up), from many customers with
-- assorted amounts, as a flash sale's late comers send it.  Once Redis has
-- answered code_exhausted, voucher_hot_cache answers it for "time=" without
-- a Redis call: it should cost nearly what /static costs.  The requests are
-- drawn once per thread, POOL of them (env FORGED_POOL), as forged.lua's.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local random, fmt = math.random, string.format
local path = os.getenv("SOLDOUT_PATH") or "/vouchers/validate"

request_pool(function()
  return post_json(path,
    fmt('{"code":"SOLDOUT1","customer":"c%d","order":{"amount":%d}}',
        random(1, 1000000), random(2000, 20000)))
end)
