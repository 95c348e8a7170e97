# The benchmark's chart; bench.py runs: gnuplot -e "datadir='DIR'; out='FILE.png'" chart.gp
# Top: the ratio xcg / OpenSSH recipe of each figure against its target.
# Bottom: server memory and keystroke echo time as attached sessions grow.

set terminal pngcairo size 1500,1150 font "DejaVu Sans,11" noenhanced
set output out
set multiplot title "xcg vs the OpenSSH forced-command recipe (same guests, same client)" font ",14"

set origin 0, 0.45
set size 1, 0.52
set title "ratio xcg / OpenSSH per figure (log scale; 1 = the same; (↑) higher is better, the rest lower is better)"
set logscale y
set yrange [0.01:100]
set ytics ("0.01" 0.01, "0.1" 0.1, "0.25" 0.25, "0.5" 0.5, "1" 1, "2" 2, "10" 10, "100" 100)
set grid ytics
set xrange [-0.6:*]
set xtics font ",11"
set boxwidth 0.6
set style fill solid 0.75 border -1
set key top left
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 lc rgb "#555555"
plot datadir."/ratios.dat" using 0:2:xtic(sprintf("%s\n%.2f", stringcolumn(1), $2)) with boxes lc rgb "#3a7bd5" title "xcg / OpenSSH", \
     ""                    using 0:3 with points pt 13 ps 2.2 lc rgb "#d62728" title "target (xcg / OpenSSH)"
unset arrow 1
unset logscale y
unset ytics
set ytics
unset xtics
set xtics
set yrange [*:*]
set xrange [*:*]

set origin 0, 0
set size 0.5, 0.44
set title "server memory (PSS) with N attached sessions"
set xlabel "attached sessions"
set ylabel "MiB"
set logscale x
set xtics (10, 50, 100, 250, 500, 1000)
set xrange [8:1250]
set key top left
plot datadir."/steps.dat" using 1:6 with linespoints pt 7 lw 2 lc rgb "#ff7f0e" title "OpenSSH + sudo: all processes", \
     ""                   using 1:2 with linespoints pt 7 lw 2 lc rgb "#3a7bd5" title "xcg: broker + sessions", \
     ""                   using 1:3 with linespoints pt 6 lw 1 dashtype 2 lc rgb "#3a7bd5" title "xcg: broker alone"

set origin 0.5, 0
set size 0.5, 0.44
set title "keystroke echo with N sessions each typing once a second"
set ylabel "ms (log scale)"
set logscale y
set key bottom right opaque
plot datadir."/steps.dat" using 1:8 with linespoints pt 7 lw 2 lc rgb "#ff7f0e" title "OpenSSH median", \
     ""                   using 1:9 with linespoints pt 6 lw 1 dashtype 2 lc rgb "#ff7f0e" title "OpenSSH p99", \
     ""                   using 1:4 with linespoints pt 7 lw 2 lc rgb "#3a7bd5" title "xcg median", \
     ""                   using 1:5 with linespoints pt 6 lw 1 dashtype 2 lc rgb "#3a7bd5" title "xcg p99"
unset multiplot
