-- forged-header.lua -- GET PATH (env FORGED_PATH) with a forged code in the
-- X-Voucher-Code header, as an API gateway in gate mode takes it
-- (voucher_gate validate; voucher_code $http_x_voucher_code): the same
-- issued shape and bad tags as forged.lua, refused offline (404 not_found)
-- in the precontent phase, with no body to read or parse.  Drawn once per
-- thread, FORGED_POOL of them, as in forged.lua.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local random, fmt, sub = math.random, string.format, string.sub
local path = os.getenv("FORGED_PATH") or "/forged/gate"
local npool = tonumber(os.getenv("FORGED_POOL") or "4096")
local ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"    -- Crockford base32

local function chars(n)
  local t = {}
  for i = 1, n do
    local k = random(1, 32)
    t[i] = sub(ALPHABET, k, k)
  end
  return table.concat(t)
end

local pool, next_i = {}, 0
local common_init = init
function init(args)
  common_init(args)
  for i = 1, npool do
    pool[i] = wrk.format("GET", path, { ["X-Voucher-Code"] =
      fmt("FG-%s-%s-%s", chars(5), chars(5), chars(4)) })
  end
end

function request()
  next_i = next_i % npool + 1
  return pool[next_i]
end
