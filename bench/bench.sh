#!/usr/bin/env bash
# Benchmark of the Lotería Nacional server against a reference program, with
# the real binaries on loopback (make bench; make bench-draw = the draw only).
#
# Each scenario runs BENCH_RUNS times (default 3) with the product and with
# bin/bench_reference (bench/reference.cpp) over the same bet files, runs
# alternating, and reports the medians:
#   product    the real bin/server (fresh store, port 0, K + 100 handlers,
#              backlog 1024) with one real bin/client per agency (`clients`) or
#              with `bench_reference load` holding all K connections (`load`)
#   reference  `bench_reference essential`: the system's essential work (parse
#              the CSV, encode and decode the frames, one store line and one
#              log line per bet) in one threaded process
# and per scenario: wall seconds, bets/s, product/reference, the peak RSS of
# the coordinator and of the largest handler (the server's exit line), the
# exactly-once check (every product run's store, sorted, is the reference's
# store, sorted) and the target, met or missed.
#
#   20x25k            20 agencies x 25,000 bets, clients, SERVER_FSYNC=false  target <= 1.3x reference
#   20x25k-fsync      the same with SERVER_FSYNC=true                         target <= 1.5x 20x25k
#   data              the five .data/agency-*.csv files, clients              no target
#   500x500-load      500 agencies x 500 bets at once, load                   target <= 1.5x reference
#   500x500-clients   the same with 500 bin/client processes                  target <= 3x 500x500-load
#   2000x100-load     2,000 agencies x 100 bets at once, load                 target <= 2x reference
#   10000x10-load     10,000 agencies x 10 bets at once, load, every server
#                     setting at its default (backlog 5, 64 handlers)        no target: peak server processes
#   draw              the draw over BENCH_DRAW_BETS stored bets: the server's
#                     `sorteo ms` vs `bench_reference draw` (n/a until the
#                     reference has that mode)         targets: <= 2 s, coordinator <= 8 MiB
#
# Knobs (environment): BENCH_SCENARIOS (all, or names from the list above,
# e.g. "20x25k data"), BENCH_RUNS (3), BENCH_DRAW_BETS (10000000),
# BENCH_TIMEOUT (900 s per process run), BENCH_DIR (.bench: the generated bet
# files, cached; logs; stores), BENCH_STRACE (1: one more 20x25k product run
# with the server under `strace -c -f`, its summary printed), BENCH_BIN (bin).
#
# Output: the table on stdout; after a run of every scenario, all of them
# passing, docs/bench/results.md (the table in Markdown with the date, nproc,
# load average and commit) and docs/bench/agencies.svg (bets/s against
# agencies); after a subset, or a failure, the same two files in $BENCH_DIR.
# Exit status: 0 when every run worked and stored exactly the reference's bets
# (targets met or not), 1 when a run failed or a bet was lost or duplicated
# (the table says which scenario and how many lines differ), 2 on bad settings.
#
# Why bash: the work here is starting processes, reading their log lines and
# timing them, which bash does in a few lines; what bash cannot do (hold 2,000
# connections at once, the essential work) is C++ in bench/reference.cpp. The
# machinery (processes, watchdog, one run, the check, the outputs) is in
# bench/lib.sh, so that each scenario below reads in three lines.
set -euo pipefail
cd "$(dirname "$0")/.."

all_scenarios=(20x25k 20x25k-fsync data 500x500-load 500x500-clients 2000x100-load 10000x10-load draw)
runs=${BENCH_RUNS:-3}
draw_bets=${BENCH_DRAW_BETS:-10000000}
run_timeout=${BENCH_TIMEOUT:-900}
use_strace=${BENCH_STRACE:-0}
dir=${BENCH_DIR:-.bench}
bin=${BENCH_BIN:-bin}
read -r -a wanted <<<"${BENCH_SCENARIOS:-all}"

die() { echo "bench: $*" >&2; exit 2; }
is_count() { [[ $1 =~ ^[0-9]+$ ]] && (( 10#$1 >= 1 )); }
is_count "$runs" || die "BENCH_RUNS must be a positive integer (got '$runs')"
is_count "$draw_bets" || die "BENCH_DRAW_BETS must be a positive integer (got '$draw_bets')"
is_count "$run_timeout" || die "BENCH_TIMEOUT must be a positive integer (got '$run_timeout')"
(( draw_bets <= 2000000000 )) || die "BENCH_DRAW_BETS: too many bets"
[[ ${wanted[*]} == all ]] && wanted=("${all_scenarios[@]}")
for name in "${wanted[@]}"; do
    [[ " ${all_scenarios[*]} " == *" $name "* ]] || die "unknown scenario '$name' in BENCH_SCENARIOS (all, or: ${all_scenarios[*]})"
done
needed=("$bin/server" "$bin/client")
[[ ${wanted[*]} == draw ]] || needed+=("$bin/bench_reference")
for program in "${needed[@]}"; do [[ -x $program ]] || die "$program is not built"; done
if [[ $use_strace == 1 ]] && ! command -v strace >/dev/null; then die "BENCH_STRACE=1 needs strace"; fi
export LC_ALL=C
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# shellcheck source=bench/lib.sh
source bench/lib.sh

# ---------------------------------------------------------------- scenarios
# Each: its bet files, then compare (BENCH_RUNS reference and product runs,
# driver and SERVER_FSYNC given), then its target.
scenario_20x25k() {
    synthetic 20 25000 && compare clients false "${files[@]}" && target_ratio 1.3 || return 1
    [[ $use_strace != 1 ]] || strace_run
}
scenario_20x25k-fsync() { synthetic 20 25000 && compare clients true "${files[@]}" && target_versus 20x25k 1.5; }
scenario_data() { project_data && compare clients false "${files[@]}" && res_target[$current]="none"; }
scenario_500x500-load() { synthetic 500 500 && compare load false "${files[@]}" && target_ratio 1.5; }
scenario_500x500-clients() { synthetic 500 500 && compare clients false "${files[@]}" && target_versus 500x500-load 3; }
scenario_2000x100-load() { synthetic 2000 100 && compare load false "${files[@]}" && target_ratio 2; }
scenario_10000x10-load() {
    synthetic 10000 10 && server_defaults=1 compare load false "${files[@]}" &&
        res_target[$current]="none; peak server processes ${res_procs[$current]:-n/a}"
}
scenario_draw() {
    draw_compare "$draw_bets" || return 1
    local seconds=${res_prod[$current]} rss=${res_rss[$current]}
    res_target[$current]="draw ≤2 s: $(at_most "$seconds" 2), coordinator ≤8 MiB: $(at_most "$rss" 8192)"
}

# strace_run: one more 20x25k product run, the server under `strace -c -f`.
strace_run() {
    echo "  one more run with the server under strace -c -f (not timed)"
    strace_to=$dir/logs/strace.txt product_run "$dir/logs/strace" clients false "${files[@]}" || return 1
    rm -f "$dir/logs/strace/bets.csv"
}

# ---------------------------------------------------------------- main
started_at=$EPOCHREALTIME
load_before=$(load_average)
failed=()
for current in "${all_scenarios[@]}"; do
    [[ " ${wanted[*]} " == *" $current "* ]] || continue
    echo "scenario $current: $runs run(s) each of reference and product (logs: $dir/logs/$current; load average $(load_average))"
    ran+=("$current")
    "scenario_$current" || failed+=("$current")
done

echo
echo "Lotería Nacional benchmark — $(nproc) CPUs, $(uname -sr), loopback, median of $runs run(s)"
print_table
legend | sed 's/^/  /'
echo "  logs: $dir/logs/<scenario>/   load average $load_before before, $(load_average) at the end   total time: $(elapsed "$started_at" "$EPOCHREALTIME") s"
if [[ $use_strace == 1 && -f $dir/logs/strace.txt ]]; then
    echo
    echo "strace -c -f -S calls of the server (coordinator + all handlers; seconds = system time), one 20x25k run:"
    head -n 18 "$dir/logs/strace.txt"
fi

out=$dir what="a run of some scenarios, or with a failure"
(( ${#ran[@]} == ${#all_scenarios[@]} && ${#failed[@]} == 0 )) && out=docs/bench what="its last run of every scenario"
mkdir -p "$out"
write_results "$out/results.md" "$what"
write_svg "$out/agencies.svg"
echo "written: $out/results.md, $out/agencies.svg"
if (( ${#failed[@]} > 0 )); then
    echo "bench: FAILED: ${failed[*]} (see the messages above and the table's exactly-once column)" >&2
    exit 1
fi
