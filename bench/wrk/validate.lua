-- validate.lua -- POST /vouchers/validate with a random seeded code, customer
-- and order amount: the same draws as the peer's wrk/validate.lua.
-- env: NCODES (default 100000) = number of seeded K%012d codes
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local ncodes = tonumber(os.getenv("NCODES") or "100000")
local random, fmt = math.random, string.format

function request()
  return post_json("/vouchers/validate",
    fmt('{"code":"K%012d","customer":"c%d","order":{"amount":%d}}',
        random(0, ncodes - 1), random(1, 1000000), random(2000, 20000)))
end
