-- malformed.lua -- POST /vouchers/validate with codes the module refuses
-- itself (400 invalid_code, Redis is never asked): a control character in
-- the code, a non-ASCII character, or one longer than
-- voucher_code_max_length (64).  Every response is a 4xx on purpose:
-- non-2xx should equal the requests.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local random, fmt, rep = math.random, string.format, string.rep

function request()
  local k, code = random(1, 3), nil
  if k == 1 then code = fmt("K%06d\\t%05d", random(0, 999999), random(0, 99999))
  elseif k == 2 then code = fmt("K%06d\\u00e9%05d", random(0, 999999), random(0, 99999))
  else code = fmt("K%s%012d", rep("X", 60), random(0, 999999)) end
  return post_json("/vouchers/validate",
    fmt('{"code":"%s","customer":"c%d","order":{"amount":%d}}',
        code, random(1, 1000000), random(2000, 20000)))
end
