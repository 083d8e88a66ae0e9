-- static.lua -- GET /static: nginx's own `return 200 "ok"` (the HTTP ceiling).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
wrk.path = "/static"
