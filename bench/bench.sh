#!/usr/bin/env bash
# Benchmark of the Lotería Nacional server with the real binaries on loopback.
#
#   bench/bench.sh scenarios   (make bench)
#   bench/bench.sh draw        (make bench-draw)
#
# scenarios: two scenarios, each run BENCH_RUNS times with a fresh bet store:
#   synthetic  BENCH_AGENCIES agencies x BENCH_BETS bets made by
#              scripts/generate-bets.sh (cached in $BENCH_DIR/data/)
#   .data      the project's .data/agency-*.csv files
#   Each run starts bin/server (SERVER_PORT=0, the port read from its `listen`
#   line, LOGGING_LEVEL=INFO) and one bin/client per agency (CLI_LOG_LEVEL=INFO),
#   every log redirected to a file under $BENCH_DIR/logs/. Wall time is from
#   just before the first client is started to the moment the last one has
#   exited. The server is then stopped with SIGTERM; its `sorteo` line gives the
#   draw time and its `exit` line the peak RSS of the coordinator and of the
#   largest handler (getrusage SELF / CHILDREN).
#   Batch round trips come from bin/bench_probe (bench/probe.cpp), run after
#   the timed runs in two extra server runs per scenario:
#     loaded  the K real clients plus the probe as agency K+1 (replaying the
#             scenario's first agency file) at the same time;
#     idle    the probe alone (SERVER_AGENCIES=1).
#   These extra runs are not part of the wall-time figures.
#   BENCH_STRACE=1 adds one run of the synthetic scenario with the server under
#   `strace -c -f` and prints the top of its summary.
#
# draw: a store of BENCH_DRAW_BETS bets (generate-bets.sh output turned into
#   store lines, cached in $BENCH_DIR/draw/), then BENCH_RUNS times: the real
#   server over that store with SERVER_AGENCIES=1 and one real client sending
#   one bet; its DONE triggers the draw over the whole store. The store is cut
#   back to its original size after every run, so the cache stays pristine.
#
# Every figure printed comes from these runs; the targets are only printed
# next to them. Exit status: 0 when every run worked (targets met or not), 1
# when a run failed, 2 on bad settings.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-scenarios}
agencies=${BENCH_AGENCIES:-20}
bets=${BENCH_BETS:-25000}
runs=${BENCH_RUNS:-3}
draw_bets=${BENCH_DRAW_BETS:-10000000}
use_strace=${BENCH_STRACE:-0}
run_timeout=${BENCH_TIMEOUT:-120}
dir=${BENCH_DIR:-.bench}
bin=${BENCH_BIN:-bin}

die() { echo "bench: $*" >&2; exit 2; }
is_count() { [[ $1 =~ ^[0-9]+$ ]] && (( 10#$1 >= 1 )); }
is_count "$agencies" || die "BENCH_AGENCIES must be a positive integer (got '$agencies')"
is_count "$bets" || die "BENCH_BETS must be a positive integer (got '$bets')"
is_count "$runs" || die "BENCH_RUNS must be a positive integer (got '$runs')"
is_count "$draw_bets" || die "BENCH_DRAW_BETS must be a positive integer (got '$draw_bets')"
is_count "$run_timeout" || die "BENCH_TIMEOUT must be a positive integer (got '$run_timeout')"
(( agencies < 65535 )) || die "BENCH_AGENCIES must be below 65535"
(( bets <= 20000000 && draw_bets <= 2000000000 )) || die "too many bets"
case $mode in scenarios|draw) ;; *) die "usage: $0 scenarios|draw" ;; esac
for program in "$bin/server" "$bin/client"; do [[ -x $program ]] || die "$program is not built"; done
[[ $mode == draw || -x $bin/bench_probe ]] || die "$bin/bench_probe is not built"
if [[ $use_strace == 1 ]] && ! command -v strace >/dev/null; then die "BENCH_STRACE=1 needs strace"; fi
export LC_ALL=C
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
watchdog_fifo=$dir/.watchdog.$$
rm -f "$watchdog_fifo"
mkfifo "$watchdog_fifo"

# ---------------------------------------------------------------- processes
# Every process we start is recorded here; on exit whatever is left of them
# (and only of them) is stopped.
declare -A started=() # pid -> 1 while not yet waited for
restore_file="" restore_size=""
cleanup() {
    local pid
    for pid in "${!started[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${!started[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ -n $restore_file && -f $restore_file ]] && (( $(stat -c %s "$restore_file") >= restore_size )); then
        truncate -s "$restore_size" "$restore_file"
        rm -f "$restore_file.journal"
    fi
    rm -f "$watchdog_fifo"
}
trap cleanup EXIT
trap 'echo "bench: interrupted; stopping what it started" >&2; exit 130' INT TERM

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# wait_for <deadline seconds> <pid>...: waits until every pid has exited, or
# kills the rest (SIGKILL) at the deadline. Sets wait_end (time the last one
# exited) and wait_failures (non-zero exits, the killed ones included).
# Plain `wait <pid>` per process (bash keeps the status of one that already
# ended); `wait -n <pids>` can lose track of a job bash has already reaped.
wait_for() {
    local seconds=$1 pid
    shift
    # The watchdog: a subshell that waits with the `read -t` builtin on a FIFO
    # nobody writes to (so it has no child of its own), then kills what is
    # left. It must not run our EXIT trap (bash keeps it in subshells), and we
    # end it with SIGKILL, which runs nothing.
    (
        trap - EXIT INT TERM
        read -r -t "$seconds" _ <>"$watchdog_fifo" || true
        echo "bench: deadline of ${seconds}s passed; killing $*" >&3
        kill -KILL "$@"
        exit 3
    ) 3>&2 2>/dev/null &
    local watchdog=$!
    started[$watchdog]=1
    wait_failures=0
    for pid in "$@"; do
        wait "$pid" || wait_failures=$(( wait_failures + 1 ))
        unset "started[$pid]"
    done
    wait_end=$EPOCHREALTIME
    kill -KILL "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
    unset "started[$watchdog]"
}

# field <key> < line: the value of `key: value` in a `|`-separated log line.
field() { awk -v key="$1" -F ' [|] ' '{ for (i = 1; i <= NF; i++) if (index($i, key ": ") == 1) { print substr($i, length(key) + 3); exit } }'; }

# start_server <log> <agencies> <store> [wrapper...]: starts bin/server on an
# ephemeral loopback port; sets server_pid (the process to SIGTERM),
# server_wait_pid (our child: the server or its wrapper) and port.
start_server() {
    local log=$1 count=$2 store=$3
    shift 3
    rm -f "$log" "$store.journal" # a stale `listen` line would give a stale port
    # K agencies connect in one burst: the SPEC's default backlog of 5 would
    # overflow and cost the dropped ones a 1 s SYN retransmission (see `ovfl`).
    SERVER_LISTEN_BACKLOG=${SERVER_LISTEN_BACKLOG:-128} \
    SERVER_PORT=0 SERVER_IP=127.0.0.1 SERVER_AGENCIES=$count SERVER_BETS_FILE=$store LOGGING_LEVEL=INFO \
        "$@" "$bin/server" --config config/server.ini >"$log" 2>&1 &
    server_wait_pid=$!
    started[$server_wait_pid]=1
    server_pid=$server_wait_pid
    port=""
    for _ in $(seq 1 1000); do # up to ~10 s for the `listen` line
        port=$(sed -n 's/.*action: listen | result: success | .*port: \([0-9]*\).*/\1/p' "$log" 2>/dev/null)
        [[ -n $port ]] && break
        kill -0 "$server_wait_pid" 2>/dev/null || break
        sleep 0.01
    done
    if [[ -z $port ]]; then
        echo "bench: the server did not start; its log ($log):" >&2
        tail -n 20 "$log" >&2
        return 1
    fi
    if (( $# > 0 )); then # wrapped (strace): signal the server itself, our child's child
        server_pid=$(awk '{ print $1 }' "/proc/$server_wait_pid/task/$server_wait_pid/children" 2>/dev/null) || true
        [[ -n $server_pid ]] || server_pid=$(pgrep -P "$server_wait_pid" | head -n 1) || true
        [[ -n $server_pid ]] || { echo "bench: cannot find the wrapped server's pid" >&2; return 1; }
    fi
}

# stop_server <log>: SIGTERM, wait (bounded), then read the draw and exit lines.
# Sets draw_ms, draw_bets_seen, rss_kb, handler_rss_kb. Fails when the server
# did not exit cleanly or did not draw.
stop_server() {
    local log=$1 line
    if ! kill -0 "$server_pid" 2>/dev/null; then echo "bench: the server died during the run ($log)" >&2; return 1; fi
    kill -TERM "$server_pid"
    wait_for 10 "$server_wait_pid"
    (( wait_failures == 0 )) || { echo "bench: the server did not exit cleanly ($log)" >&2; return 1; }
    line=$(grep -a 'action: sorteo | result: success' "$log" | tail -n 1) || true
    [[ -n $line ]] || { echo "bench: no successful draw in $log" >&2; grep -a 'result: fail' "$log" | head -n 5 >&2; return 1; }
    draw_ms=$(field ms <<<"$line")
    draw_bets_seen=$(field apuestas <<<"$line")
    line=$(grep -a 'action: exit | result: success' "$log" | tail -n 1) || true
    [[ -n $line ]] || { echo "bench: no exit line in $log" >&2; return 1; }
    rss_kb=$(field max_rss_kb <<<"$line")
    handler_rss_kb=$(field handler_max_rss_kb <<<"$line")
    [[ -n $draw_ms && -n $rss_kb && -n $handler_rss_kb ]] || { echo "bench: cannot parse $log" >&2; return 1; }
}

# TcpExt ListenOverflows of this network namespace: SYNs dropped because an
# accept queue (listen backlog) was full. Each drop costs that client a 1 s
# SYN retransmission. Counts every listener of the namespace, not only ours.
listen_overflows() { awk '/^TcpExt:/ { if (!seen++) { for (i = 1; i <= NF; i++) if ($i == "ListenOverflows") col = i } else if (col) print $col }' /proc/net/netstat 2>/dev/null || true; }
load() { cut -d ' ' -f 1-3 /proc/loadavg; }

rows_in() { awk 'NF { n++ } END { print n + 0 }' "$@"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minimum() { sort -g | head -n 1; }
maximum() { sort -g | tail -n 1; }
commas() { awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); r = ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } print s r }'; }

# ---------------------------------------------------------------- scenarios
# run_agencies <run dir> <mode: timed|loaded|strace> <file>...: one server
# run; agency i reads file i. Sets wall (timed), draw_ms, rss_kb, handler_rss_kb,
# probe_line (loaded).
run_agencies() {
    local run_dir=$1 kind=$2
    shift 2
    local files=("$@") count=$# expected id pids=() probe_pid="" wrapper=()
    mkdir -p "$run_dir"
    rm -f "$run_dir"/*.log "$run_dir"/probe.out "$run_dir"/strace.txt
    local store=$run_dir/bets.csv
    rm -f "$store" "$store.journal"
    expected=$(rows_in "${files[@]}")
    local server_agencies=$count
    if [[ $kind == loaded ]]; then
        server_agencies=$(( count + 1 ))
        expected=$(( expected + $(rows_in "${files[0]}") ))
    fi
    [[ $kind == strace ]] && wrapper=(strace -f -c -S calls -o "$run_dir/strace.txt")
    start_server "$run_dir/server.log" "$server_agencies" "$store" "${wrapper[@]}" || return 1
    local t0 t1 overflows_before ids
    overflows_before=$(listen_overflows)
    ids=$(seq 1 "$count")
    t0=$EPOCHREALTIME
    for id in $ids; do
        CLI_ID=$id CLI_SERVER_ADDRESS=127.0.0.1:$port CLI_DATA_FILE=${files[id - 1]} CLI_LOG_LEVEL=INFO \
            "$bin/client" --config config/client.ini >"$run_dir/agency-$id.log" 2>&1 &
        pids+=($!)
        started[$!]=1
    done
    if [[ $kind == loaded ]]; then
        "$bin/bench_probe" "127.0.0.1:$port" "$server_agencies" "${files[0]}" >"$run_dir/probe.out" 2>&1 &
        probe_pid=$!
        pids+=("$probe_pid")
        started[$probe_pid]=1
    fi
    wait_for "$run_timeout" "${pids[@]}"
    t1=$wait_end
    wall=$(elapsed "$t0" "$t1")
    overflows=$(( $(listen_overflows) - ${overflows_before:-0} ))
    if (( wait_failures > 0 )); then
        echo "bench: $wait_failures of ${#pids[@]} clients failed or timed out; logs in $run_dir" >&2
        grep -ah 'result: fail' "$run_dir"/agency-*.log 2>/dev/null | head -n 5 >&2 || true
        [[ -n $probe_pid ]] && cat "$run_dir/probe.out" >&2
        return 1
    fi
    stop_server "$run_dir/server.log" || return 1
    if [[ $draw_bets_seen != "$expected" ]]; then
        echo "bench: the draw saw $draw_bets_seen bets, expected $expected ($run_dir)" >&2
        return 1
    fi
    probe_line=""
    [[ -n $probe_pid ]] && probe_line=$(grep -a '^probe |' "$run_dir/probe.out")
    rm -f "$store" "$store.journal" # the store is up to ~25 MB per run; the logs stay
    return 0
}

# run_idle_probe <run dir> <file>: the probe alone against a fresh server.
run_idle_probe() {
    local run_dir=$1 file=$2
    mkdir -p "$run_dir"
    rm -f "$run_dir"/*.log "$run_dir"/probe.out
    local store=$run_dir/bets.csv
    rm -f "$store" "$store.journal"
    start_server "$run_dir/server.log" 1 "$store" || return 1
    "$bin/bench_probe" "127.0.0.1:$port" 1 "$file" >"$run_dir/probe.out" 2>&1 &
    local pid=$!
    started[$pid]=1
    wait_for "$run_timeout" "$pid"
    (( wait_failures == 0 )) || { echo "bench: the idle probe failed:" >&2; cat "$run_dir/probe.out" >&2; return 1; }
    stop_server "$run_dir/server.log" || return 1
    probe_line=$(grep -a '^probe |' "$run_dir/probe.out")
    rm -f "$store" "$store.journal"
}

# synthetic_data: $dir/data/synthetic-<K>x<M>/agency-<i>.csv, generated once.
synthetic_data() {
    local data=$dir/data/synthetic-${agencies}x${bets}
    if [[ ! -f $data/complete ]]; then
        echo "generating $agencies agencies x $bets bets with scripts/generate-bets.sh into $data ..."
        local t0 tmp
        t0=$EPOCHREALTIME
        rm -rf "$data" "$data.tmp"
        tmp=$data.tmp
        mkdir -p "$tmp"
        seq 1 "$agencies" | xargs -P "$(nproc)" -I{} sh -c "scripts/generate-bets.sh {} $bets > '$tmp/agency-{}.csv'"
        [[ $(rows_in "$tmp"/agency-*.csv) == $(( agencies * bets )) ]] || { echo "bench: generation failed" >&2; exit 1; }
        touch "$tmp/complete"
        mv "$tmp" "$data"
        echo "  generated in $(elapsed "$t0" "$EPOCHREALTIME") s"
    fi
    synthetic_files=()
    for id in $(seq 1 "$agencies"); do synthetic_files+=("$data/agency-$id.csv"); done
}

# Results, one entry per scenario.
declare -a r_ovf r_name r_bets r_runs r_wall_med r_wall_min r_rate r_p50 r_p99 r_idle r_draw r_rss r_hrss r_target r_verdict

# scenario <name> <label> <target kind> <file>...
scenario() {
    local name=$1 label=$2 target=$3
    shift 3
    local files=("$@") logs=$dir/logs/$name i walls=() draws=() rsss=() hrsss=() total overflow_sum=0
    rm -rf "$logs"
    total=$(rows_in "${files[@]}")
    echo "scenario $label: ${#files[@]} agencies, $total bets, $runs runs (logs: $logs; load average $(load))"
    for i in $(seq 1 "$runs"); do
        run_agencies "$logs/run-$i" timed "${files[@]}" || exit 1
        walls+=("$wall") draws+=("$draw_ms") rsss+=("$rss_kb") hrsss+=("$handler_rss_kb")
        overflow_sum=$(( overflow_sum + overflows ))
        printf '  run %d/%d: wall %s s, draw %s ms, peak RSS coordinator %s KiB, largest handler %s KiB, listen overflows %s\n' \
            "$i" "$runs" "$wall" "$draw_ms" "$rss_kb" "$handler_rss_kb" "$overflows"
    done
    run_agencies "$logs/probe-loaded" loaded "${files[@]}" || exit 1
    local loaded=$probe_line
    echo "  probe (loaded, agency $(( ${#files[@]} + 1 )) next to the ${#files[@]} clients): ${loaded#probe | }"
    run_idle_probe "$logs/probe-idle" "${files[0]}" || exit 1
    local idle=$probe_line
    echo "  probe (idle, alone): ${idle#probe | }"

    local wall_med wall_min rate verdict target_text
    wall_med=$(printf '%s\n' "${walls[@]}" | median)
    wall_min=$(printf '%s\n' "${walls[@]}" | minimum)
    rate=$(awk -v n="$total" -v s="$wall_med" 'BEGIN { printf "%.0f", n / s }')
    case $target in
    rate)
        target_text=">=1,000,000 bets/s"
        verdict=$(awk -v r="$rate" 'BEGIN { print (r >= 1000000 ? "met" : "MISSED") }')
        ;;
    wall)
        target_text="wall <=0.25 s"
        verdict=$(awk -v w="$wall_med" 'BEGIN { print (w <= 0.25 ? "met" : "MISSED") }')
        ;;
    esac
    r_name+=("$label") r_bets+=("$total") r_runs+=("$runs")
    r_wall_med+=("$(printf '%.3f' "$wall_med")") r_wall_min+=("$wall_min") r_rate+=("$(commas "$rate")")
    r_p50+=("$(field p50_us <<<"$loaded")") r_p99+=("$(field p99_us <<<"$loaded")")
    r_idle+=("$(field p50_us <<<"$idle")/$(field p99_us <<<"$idle")")
    r_draw+=("$(printf '%s\n' "${draws[@]}" | median)")
    r_rss+=("$(printf '%s\n' "${rsss[@]}" | maximum)") r_hrss+=("$(printf '%s\n' "${hrsss[@]}" | maximum)")
    r_target+=("$target_text") r_verdict+=("$verdict") r_ovf+=("$overflow_sum")
}

scenarios() {
    local started_at
    started_at=$EPOCHREALTIME
    synthetic_data
    local data_files=() id
    local count
    count=$(find .data -maxdepth 1 -name 'agency-*.csv' | wc -l)
    (( count > 0 )) || { echo "bench: no .data/agency-*.csv" >&2; exit 1; }
    for id in $(seq 1 "$count"); do
        [[ -f .data/agency-$id.csv ]] || { echo "bench: .data/agency-$id.csv is missing" >&2; exit 1; }
        data_files+=(".data/agency-$id.csv")
    done

    scenario "synthetic-${agencies}x${bets}" "${agencies}x${bets}" rate "${synthetic_files[@]}"
    scenario data ".data x$count" wall "${data_files[@]}"

    local strace_summary=""
    if [[ $use_strace == 1 ]]; then
        echo "strace run: ${agencies}x${bets} with the server under strace -c -f (not timed)"
        run_agencies "$dir/logs/strace" strace "${synthetic_files[@]}" || exit 1
        strace_summary=$dir/logs/strace/strace.txt
    fi

    local config
    config=$(grep -a 'action: config | result: success' "$dir/logs/data/run-1/server.log" | head -n 1 | sed 's/.*action: config | result: success | //' |
        awk -F ' [|] ' '{ for (i = 1; i <= NF; i++) if ($i !~ /^(server_port|server_agencies|server_bets_file):/) printf "%s%s", (n++ ? ", " : ""), $i }') || true
    echo
    echo "Lotería Nacional benchmark — $(nproc) CPUs, $(uname -sr), loopback"
    echo "server settings (besides port, agencies and store): $config"
    config=$(grep -a 'action: config | result: success' "$dir/logs/data/run-1/agency-1.log" | head -n 1 | sed 's/.*action: config | result: success | //' |
        awk -F ' [|] ' '{ for (i = 1; i <= NF; i++) if ($i !~ /^(client_id|server_address|data_file):/) printf "%s%s", (n++ ? ", " : ""), $i }') || true
    echo "client settings (besides id, address and file): $config"
    local format='%-14s %8s %4s %8s %8s %10s %7s %7s %11s %5s %8s %8s %4s  %-18s %s\n'
    # shellcheck disable=SC2059
    printf "$format" scenario bets runs wall_med wall_min bets/s rtt_p50 rtt_p99 idle_p50/99 draw coordRSS handlRSS ovfl target result
    # shellcheck disable=SC2059
    printf "$format" "" "" "" s s "(median)" us us us ms KiB KiB "" "" ""
    local i
    for i in "${!r_name[@]}"; do
        # shellcheck disable=SC2059
        printf "$format" "${r_name[i]}" "${r_bets[i]}" "${r_runs[i]}" "${r_wall_med[i]}" "${r_wall_min[i]}" "${r_rate[i]}" \
            "${r_p50[i]}" "${r_p99[i]}" "${r_idle[i]}" "${r_draw[i]}" "${r_rss[i]}" "${r_hrss[i]}" "${r_ovf[i]}" \
            "${r_target[i]}" "${r_verdict[i]}"
    done
    cat <<EOF
  wall: just before the first client is started until the last client has exited (bash EPOCHREALTIME),
        median and minimum of the runs; bets/s = bets / median wall. Clients and server log at INFO to files.
  rtt:  bin/bench_probe, steady_clock from just before the write(2) of a BETS frame of 56 bets to just after its
        6-byte ACK is read, every batch of one agency file; p50/p99 nearest rank. rtt_p50/p99: the probe runs as an
        extra agency at the same time as the real clients (a separate server run); idle: the probe alone. The probe
        keeps one batch in flight; bin/client may pipeline (its batch_window), so its own batches can wait longer.
  draw: the server's own \`sorteo ... ms:\` (load_bets over the whole store + has_won), median of the runs.
  RSS:  the server's exit line (getrusage ru_maxrss of the coordinator / of the largest reaped handler), max of the runs.
  ovfl: TCP ListenOverflows during the timed runs (sum; whole network namespace): SYNs dropped because the accept
        queue (SERVER_LISTEN_BACKLOG) was full; each one delays that client's connect by a 1 s SYN retransmission.
  logs: $dir/logs/<scenario>/run-N/ (server.log, agency-N.log), probe-loaded/, probe-idle/
  load average at the end: $(load) (other work on the machine inflates wall times)   total time: $(elapsed "$started_at" "$EPOCHREALTIME") s
EOF
    if [[ -n $strace_summary ]]; then
        echo
        echo "strace -c -f -S calls of the server (coordinator + all handlers; seconds = system time) for one ${agencies}x${bets} run ($strace_summary):"
        head -n 18 "$strace_summary"
    fi
}

# ---------------------------------------------------------------- draw
draw() {
    local started_at
    started_at=$EPOCHREALTIME
    local work=$dir/draw store
    store=$work/store-$draw_bets.csv
    mkdir -p "$work"
    if [[ ! -f $store.complete ]]; then
        # Store lines are `agency,first,last,document,YYYY-MM-DD,number`; the
        # generator's names hold no comma or quote, so QUOTE_MINIMAL leaves
        # every field bare and a store line is "<agency>," + the CSV row.
        local parts=$(( (draw_bets + 999999) / 1000000 )) t0 tmp=$work/tmp
        echo "generating a store of $draw_bets bets ($parts agencies, scripts/generate-bets.sh) into $store ..."
        t0=$EPOCHREALTIME
        rm -rf "$tmp" "$store"
        mkdir -p "$tmp"
        local a rows generators=()
        for a in $(seq 1 "$parts"); do
            rows=$(( draw_bets / parts + (a <= draw_bets % parts ? 1 : 0) ))
            while (( $(jobs -rp | wc -l) >= $(nproc) )); do wait -n || true; done
            { scripts/generate-bets.sh "$a" "$rows" | sed -e 's/\r$//' -e "s/^/$a,/" >"$tmp/part-$a"; } &
            generators+=($!)
            started[$!]=1
        done
        for a in "${generators[@]}"; do wait "$a" 2>/dev/null || true; unset "started[$a]"; done # checked by the line count
        for a in $(seq 1 "$parts"); do cat "$tmp/part-$a"; done >"$store.tmp"
        rm -rf "$tmp"
        [[ $(wc -l <"$store.tmp") == "$draw_bets" ]] || { echo "bench: store generation failed" >&2; exit 1; }
        mv "$store.tmp" "$store"
        touch "$store.complete"
        echo "  generated in $(elapsed "$t0" "$EPOCHREALTIME") s"
    fi
    local one=$work/one-bet.csv
    [[ -s $one ]] || scripts/generate-bets.sh 1 1 >"$one"

    local size i logs=$dir/logs/draw draws=() rsss=() t0 rate
    size=$(stat -c %s "$store")
    rm -rf "$logs"
    echo "draw over $(commas "$draw_bets") bets ($(( size / 1048576 )) MiB store, page cache warm), $runs runs (logs: $logs; load average $(load))"
    for i in $(seq 1 "$runs"); do
        local run_dir=$logs/run-$i
        mkdir -p "$run_dir"
        restore_file=$store restore_size=$size
        start_server "$run_dir/server.log" 1 "$store" || exit 1
        t0=$EPOCHREALTIME
        CLI_ID=1 CLI_SERVER_ADDRESS=127.0.0.1:$port CLI_DATA_FILE=$one CLI_LOG_LEVEL=INFO \
            "$bin/client" --config config/client.ini >"$run_dir/agency-1.log" 2>&1 &
        started[$!]=1
        wait_for "$run_timeout" $!
        (( wait_failures == 0 )) || { echo "bench: the client failed ($run_dir)" >&2; exit 1; }
        local client_s
        client_s=$(elapsed "$t0" "$wait_end")
        stop_server "$run_dir/server.log" || exit 1
        if (( $(stat -c %s "$store") < size )); then # the server cut the store: the cache is spoiled
            echo "bench: the server shrank the store; removing the cached store" >&2
            rm -f "$store" "$store.complete" "$store.journal"
            restore_file=""
            exit 1
        fi
        truncate -s "$size" "$store"
        rm -f "$store.journal"
        restore_file=""
        [[ $draw_bets_seen == $(( draw_bets + 1 )) ]] || { echo "bench: the draw saw $draw_bets_seen bets, expected $(( draw_bets + 1 ))" >&2; exit 1; }
        draws+=("$draw_ms") rsss+=("$rss_kb")
        printf '  run %d/%d: draw %s ms (client start to exit %s s), peak RSS coordinator %s KiB\n' \
            "$i" "$runs" "$draw_ms" "$client_s" "$rss_kb"
    done
    local med min rss
    med=$(printf '%s\n' "${draws[@]}" | median)
    min=$(printf '%s\n' "${draws[@]}" | minimum)
    rss=$(printf '%s\n' "${rsss[@]}" | maximum)
    rate=$(awk -v n="$(( draw_bets + 1 ))" -v ms="$med" 'BEGIN { printf "%.0f", (ms > 0 ? n / (ms / 1000) : 0) }')
    echo
    echo "Lotería Nacional draw benchmark — $(nproc) CPUs, $(uname -sr)"
    local format='%-12s %9s %4s %8s %8s %11s %9s  %-24s %s\n'
    # shellcheck disable=SC2059
    printf "$format" store_bets store runs draw_med draw_min bets/s coordRSS target result
    # shellcheck disable=SC2059
    printf "$format" "" MiB "" ms ms "(median)" KiB "" ""
    # shellcheck disable=SC2059
    printf "$format" "$(( draw_bets + 1 ))" "$(( size / 1048576 ))" "$runs" "$med" "$min" "$(commas "$rate")" "$rss" \
        "draw <=2000 ms" "$(awk -v m="$med" 'BEGIN { print (m <= 2000 ? "met" : "MISSED") }')"
    # shellcheck disable=SC2059
    printf "$format" "" "" "" "" "" "" "" "coordinator <=8192 KiB" "$(awk -v r="$rss" 'BEGIN { print (r <= 8192 ? "met" : "MISSED") }')"
    cat <<EOF
  draw: the server's \`sorteo ... ms:\` line: load_bets streaming the whole store (the cached one + the run's one bet)
        and has_won on each bet; the store was just written or read, so it is in the page cache (no disk reads).
  RSS:  ru_maxrss of the coordinator from the server's exit line, max of the runs.
  logs: $logs/run-N/   load average at the end: $(load)   total time: $(elapsed "$started_at" "$EPOCHREALTIME") s
EOF
}

"$mode"
