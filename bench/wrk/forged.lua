-- forged.lua -- POST PATH (env FORGED_PATH) with well-formed codes that were
-- never issued: the issued shape of that location (voucher_code_issued FG
-- body=10 mac=4 in scripts/bench: "FG" + 10 + 4 characters of the Crockford
-- alphabet), but a tag that does not verify.  The module refuses them
-- offline (404 not_found, Redis is never asked): they should cost nearly
-- what /static costs.
--
-- The requests are drawn once per thread, POOL of them (env FORGED_POOL,
-- default 4096, all different), and sent in turn: /static's request is a
-- fixed string wrk never rebuilds, and drawing 14 characters and formatting
-- a POST in Lua for every request cost wrk 2.6 us more per request than
-- static's on our machine, which the ratio to static counted against the
-- module.  Nothing in the module remembers a refused code, so a code sent
-- again costs what a new one does.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local random, fmt = math.random, string.format
local path = os.getenv("FORGED_PATH") or "/vouchers/validate"

request_pool(function()
  return post_json(path,
    fmt('{"code":"FG-%s-%s-%s","customer":"c%d","order":{"amount":%d}}',
        crockford(5), crockford(5), crockford(4), random(1, 1000000),
        random(2000, 20000)))
end)
