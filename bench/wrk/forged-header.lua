-- forged-header.lua -- GET PATH (env FORGED_PATH) with a forged code in the
-- X-Voucher-Code header, as an API gateway in gate mode takes it
-- (voucher_gate validate; voucher_code $http_x_voucher_code): the same
-- issued shape and bad tags as forged.lua, refused offline (404 not_found)
-- in the precontent phase, with no body to read or parse.  Drawn once per
-- thread, FORGED_POOL of them, as in forged.lua.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local fmt = string.format
local path = os.getenv("FORGED_PATH") or "/forged/gate"

request_pool(function()
  return wrk.format("GET", path, { ["X-Voucher-Code"] =
    fmt("FG-%s-%s-%s", crockford(5), crockford(5), crockford(4)) })
end)
