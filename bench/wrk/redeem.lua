-- redeem.lua -- POST /vouchers/redeem with a random seeded code, customer and
-- amount, and an idempotency key unique to the request (every redeem is a
-- first attempt).  The same draws as the peer's wrk/redeem.lua.
-- env: NCODES (default 100000), RUNID (makes the keys unique across runs),
--      REDEEM_PATH (default /vouchers/redeem)
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local ncodes = tonumber(os.getenv("NCODES") or "100000")
local runid = os.getenv("RUNID") or tostring(os.time())
local path = os.getenv("REDEEM_PATH") or "/vouchers/redeem"
local random, fmt = math.random, string.format
local n = 0

function request()
  n = n + 1
  return post_json(path,
    fmt('{"code":"K%012d","customer":"c%d","idempotency_key":"%s-%d-%d","order":{"amount":%d}}',
        random(0, ncodes - 1), random(1, 1000000), runid, id, n, random(2000, 20000)))
end
