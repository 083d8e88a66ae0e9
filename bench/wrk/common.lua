-- common.lua -- shared by the wrk scripts of scripts/bench (loaded with dofile;
-- BENCH_WRK_DIR points here).  Gives each thread an id and its own random
-- seed, and ends with one machine-readable line:
--   WRKSUM requests=.. secs=.. rps=.. p50_ms=.. p90_ms=.. p99_ms=.. p999_ms=..
--          max_ms=.. non2xx=.. err_connect=.. err_read=.. err_write=.. err_timeout=..
-- non2xx is wrk's own count of responses with a status >= 400 (no 1xx/3xx
-- are ever sent here), so no per-response Lua callback slows wrk down.
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("id", nthreads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (id or 0) * 7919)
  for _ = 1, 10 do math.random() end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRKSUM requests=%d secs=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f " ..
    "non2xx=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end

-- a POST with a JSON body, as the voucher API takes it
local headers = { ["Content-Type"] = "application/json" }
function post_json(path, body)
  return wrk.format("POST", path, headers, body)
end

-- n random characters of the Crockford base32 alphabet (issued codes)
local CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
function crockford(n)
  local t, random, sub = {}, math.random, string.sub
  for i = 1, n do
    local k = random(1, 32)
    t[i] = sub(CROCKFORD, k, k)
  end
  return table.concat(t)
end

-- requests drawn once per thread (make() called FORGED_POOL times, default
-- 4096, after the thread's seed is set) and sent in turn
function request_pool(make)
  local npool = tonumber(os.getenv("FORGED_POOL") or "4096")
  local pool, next_i = {}, 0
  local common_init = init
  function init(args)
    common_init(args)
    for i = 1, npool do pool[i] = make() end
  end
  function request()
    next_i = next_i % npool + 1
    return pool[next_i]
  end
end
