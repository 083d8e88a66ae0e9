-- forged.lua -- POST PATH (env FORGED_PATH) with well-formed codes that were
-- never issued: the issued shape of that location (voucher_code_issued FG
-- body=10 mac=4 in scripts/bench: "FG" + 10 + 4 characters of the Crockford
-- alphabet), but a tag that does not verify.  The module refuses them
-- offline (404 not_found, Redis is never asked): they should cost nearly
-- what /static costs.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local random, fmt, sub = math.random, string.format, string.sub
local path = os.getenv("FORGED_PATH") or "/vouchers/validate"
local ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"    -- Crockford base32

local function chars(n)
  local t = {}
  for i = 1, n do
    local k = random(1, 32)
    t[i] = sub(ALPHABET, k, k)
  end
  return table.concat(t)
end

function request()
  return post_json(path,
    fmt('{"code":"FG-%s-%s-%s","customer":"c%d","order":{"amount":%d}}',
        chars(5), chars(5), chars(4), random(1, 1000000), random(2000, 20000)))
end
