# plot.gp -- the concurrency/workers chart of scripts/bench.
# gnuplot -e "data='sweep.dat'; out='sweep.png'; nseries=4; machine='...'" plot.gp
# data: one block per series (endpoint x nginx workers), blocks separated by
# two blank lines; each block starts with a header line "title" rps p50 p99,
# then one line per connection count: conns req/s p50_ms p99_ms.
set terminal pngcairo size 1200,480 font "sans,10"
set output out
set multiplot layout 1,2 title "ngx\\_voucher: throughput and p99 by concurrent connections (wrk), ".machine
set logscale x 2
set xlabel "concurrent connections"
set grid
set key top left
set style data linespoints

set ylabel "requests/s"
set yrange [0:*]
plot for [i=0:nseries-1] data index i using 1:2 title columnheader(1) lw 2 pt 7 dt 1+(i >= nseries/2)

set ylabel "p99 latency, ms"
set logscale y 10
set yrange [*:*]
plot for [i=0:nseries-1] data index i using 1:4 title columnheader(1) lw 2 pt 7 dt 1+(i >= nseries/2)
unset multiplot
