-- checkout.lua -- POST a checkout with a voucher to PATH (env, default
-- /checkout): through gate mode the module redeems the code and passes the
-- request on to the app; through plain proxy_pass it only reaches the app.
-- Unique idempotency key per request, random seeded code, customer, amount;
-- the gate reads them from the body ($voucher_body_code, ...).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local ncodes = tonumber(os.getenv("NCODES") or "100000")
local runid = os.getenv("RUNID") or tostring(os.time())
local path = os.getenv("CHECKOUT_PATH") or "/checkout"
local random, fmt = math.random, string.format
local n = 0

function request()
  n = n + 1
  return post_json(path,
    fmt('{"code":"K%012d","customer":"c%d","idempotency_key":"%s-%d-%d","order":{"amount":%d}}',
        random(0, ncodes - 1), random(1, 1000000), runid, id, n, random(2000, 20000)))
end
