# bench/lib.sh: the machinery of bench/bench.sh, which sources it: the
# processes it starts and their cleanup, the watchdog, the server's start and
# stop, one run of the product or of the reference, the exactly-once check,
# the cached bet files, medians and ratios, and the three outputs (the table
# on the terminal, results.md, agencies.svg).
#
# Needs from bench.sh: $dir (absolute), $bin, $runs, $run_timeout.
# Every function returns non-zero on a failure (after saying why on stderr)
# instead of exiting, so that one failed scenario does not hide the others.
# shellcheck shell=bash disable=SC2154 # $dir, $bin, $runs, $current... come from bench.sh

# ---------------------------------------------------------------- processes
# Every process we start is recorded here; on exit whatever is left of them
# (and only of them) is stopped.
declare -A started=() # pid -> 1 while not yet waited for
restore_file="" restore_size="" # the cached draw store, cut back on exit
watchdog_fifo=$dir/.watchdog.$$
rm -f "$watchdog_fifo"
mkfifo "$watchdog_fifo"

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
# The message goes to fd 8, a copy of our stderr: a signal mostly lands
# while wait_for runs `wait` with stderr sent to /dev/null.
exec 8>&2
trap 'echo "bench: interrupted; stopping what it started" >&8; exit 130' INT TERM

track() { started[$1]=1; }

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
        echo "bench: deadline of ${seconds}s passed; killing $# processes" >&3
        kill -KILL "$@"
        exit 3
    ) 3>&2 2>/dev/null &
    local watchdog=$!
    track "$watchdog"
    wait_failures=0
    for pid in "$@"; do
        { wait "$pid"; } 2>/dev/null || wait_failures=$(( wait_failures + 1 )) # no "Killed" notice per job
        unset "started[$pid]"
    done
    wait_end=$EPOCHREALTIME
    kill -KILL "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
    unset "started[$watchdog]"
}

# ---------------------------------------------------------------- small tools
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# field <key> < line: the value of `key: value` in a `|`-separated log line.
field() { awk -v key="$1" -F ' [|] ' '{ for (i = 1; i <= NF; i++) if (index($i, key ": ") == 1) { print substr($i, length(key) + 3); exit } }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maximum() { sort -g | tail -n 1; }
lines_in() { awk 'END { print NR }' "$@"; }
commas() { awk -v n="$1" 'BEGIN { if (n !~ /^[0-9.]+$/) { print n; exit } s = sprintf("%.0f", n); r = ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } print s r }'; }
# divide <a> <b> [format]: a / b, or n/a when either is missing or b is 0.
divide() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf f "\n", a / b }'; }
at_most() { awk -v v="$1" -v t="$2" 'BEGIN { print (v != "n/a" && v + 0 <= t + 0 ? "met" : "missed") }'; }
load_average() { cut -d ' ' -f 1-3 /proc/loadavg; }
# children_cpu: user + system seconds of every child this shell has waited
# for so far, with what they had waited for in turn (cutime + cstime of
# /proc/<this shell>/stat): a server's share holds its coordinator, its
# acceptor and every handler, each reaped by its parent. Clock ticks, so
# 10 ms steps.
clock_ticks=$(getconf CLK_TCK)
children_cpu() { awk -v hz="$clock_ticks" '{ printf "%.2f\n", ($16 + $17) / hz }' "/proc/$$/stat"; }
# TcpExt ListenOverflows of this network namespace: SYNs dropped because an
# accept queue (listen backlog) was full. Each drop costs that client a 1 s
# SYN retransmission. Counts every listener of the namespace, not only ours.
listen_overflows() { awk '/^TcpExt:/ { if (!seen++) { for (i = 1; i <= NF; i++) if ($i == "ListenOverflows") col = i } else if (col) print $col }' /proc/net/netstat 2>/dev/null || true; }

# ---------------------------------------------------------------- the server
# start_server <log> <agencies> <store> <fsync> [wrapper...]: starts bin/server
# on an ephemeral loopback port; sets server_pid (the process to SIGTERM),
# server_wait_pid (our child: the server or its wrapper) and port.
start_server() {
    local log=$1 count=$2 store=$3 fsync=$4
    shift 4
    rm -f "$log" "$store.journal" # a stale `listen` line would give a stale port
    # The K agencies connect in one burst. With the contract's default backlog
    # of 5 the kernel drops the SYNs that find the accept queue full, and each
    # dropped agency waits for a 1 s SYN retransmission (the `ovfl` figure of
    # each run counts them). 1024 (the kernel caps it at net.core.somaxconn)
    # holds a 500-agency burst whole; at 2,000 the coordinator accepts every
    # pending connection per round, so the queue drains while the burst comes.
    # K + 100 handlers are allowed (the scenarios' figures since before an
    # agency waiting for the draw stopped holding one). server_defaults=1
    # leaves both settings at their defaults.
    local tuning=(SERVER_LISTEN_BACKLOG=1024 "SERVER_MAX_HANDLERS=$(( count + 100 ))")
    [[ ${server_defaults:-0} == 1 ]] && tuning=()
    env "${tuning[@]}" SERVER_FSYNC="$fsync" \
    SERVER_PORT=0 SERVER_IP=127.0.0.1 SERVER_AGENCIES="$count" SERVER_BETS_FILE="$store" LOGGING_LEVEL=INFO \
        "$@" "$bin/server" --config config/server.ini >"$log" 2>&1 &
    server_wait_pid=$!
    track "$server_wait_pid"
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
        [[ -n $server_pid ]] || { echo "bench: cannot find the wrapped server's pid" >&2; return 1; }
    fi
}

# stop_server <log>: SIGTERM, wait (bounded), then read the draw and exit lines.
# Sets draw_ms, draw_bets_seen, draw_winners, rss_kb, handler_rss_kb and
# cpu_at_stop (children_cpu once the server is reaped). Fails when the
# server did not exit cleanly (status 0) or did not draw.
stop_server() {
    local log=$1 line
    if ! kill -0 "$server_pid" 2>/dev/null; then echo "bench: the server died during the run ($log)" >&2; return 1; fi
    kill -TERM "$server_pid"
    wait_for 10 "$server_wait_pid"
    cpu_at_stop=$(children_cpu)
    (( wait_failures == 0 )) || { echo "bench: the server did not exit with status 0 ($log)" >&2; return 1; }
    line=$(grep -a 'action: sorteo | result: success' "$log" | tail -n 1) || true
    [[ -n $line ]] || { echo "bench: no successful draw in $log" >&2; grep -a 'result: fail' "$log" | head -n 5 >&2; return 1; }
    draw_ms=$(field ms <<<"$line")
    draw_bets_seen=$(field apuestas <<<"$line")
    draw_winners=$(field ganadores <<<"$line")
    line=$(grep -a 'action: exit | result: success' "$log" | tail -n 1) || true
    [[ -n $line ]] || { echo "bench: no exit line in $log" >&2; return 1; }
    rss_kb=$(field max_rss_kb <<<"$line")
    handler_rss_kb=$(field handler_max_rss_kb <<<"$line")
    [[ -n $draw_ms && -n $rss_kb && -n $handler_rss_kb ]] || { echo "bench: cannot parse $log" >&2; return 1; }
}

# ---------------------------------------------------------------- one run
# gate_clients <run dir> <file>...: one bin/client per file (agency i = file
# i), each forked as a subshell that first waits at a gate: a FIFO they all
# hold open on fd 9, one line each to read. Forking 500 processes takes bash
# 0.6 s on a quiet machine and 2 s on a busy one, a cost real agencies (each
# on its own machine) do not pay, so open_gate starts the clock and writes K
# newlines at once: K clients start at the same moment. Sets pids, gate_s
# (the forking time, not measured).
gate_clients() {
    local run_dir=$1 id t0=$EPOCHREALTIME
    shift
    local files=("$@")
    mkfifo "$run_dir/gate"
    exec 9<>"$run_dir/gate" # read-write: the open does not wait for a writer
    rm -f "$run_dir/gate"
    pids=()
    for (( id = 1; id <= ${#files[@]}; id++ )); do
        (
            trap - EXIT INT TERM
            read -r -u 9 _ || exit 1 # bash reads a pipe one byte at a time: one newline each
            CLI_ID=$id CLI_SERVER_ADDRESS=127.0.0.1:$port CLI_DATA_FILE=${files[id - 1]} CLI_LOG_LEVEL=INFO \
                exec "$bin/client" --config config/client.ini 9<&-
        ) >"$run_dir/agency-$id.log" 2>&1 &
        pids+=($!)
        track $!
    done
    gate_s=$(elapsed "$t0" "$EPOCHREALTIME")
}
open_gate() { # <count>
    local newlines
    printf -v newlines '%*s' "$1" ''
    printf '%s' "${newlines// /$'\n'}" >&9
    exec 9<&-
}

# product_run <run dir> <clients|load> <fsync> <file>...: one server run with a
# fresh store in <run dir>/bets.csv, agency i sending file i, either as K real
# bin/client processes (started at once, see gate_clients) or as one
# `bench_reference load` holding K connections. Wall time: from the start of
# the clients (or of the load generator) to the moment the last one has
# exited (after its WINNERS, so the draw is inside). Sets wall, cpu (see
# children_cpu: the server's processes, the clients or the load generator,
# and a few ms of this function's own small commands), gate_s, overflows and what
# stop_server sets; leaves the store for the check.
product_run() {
    local run_dir=$1 driver=$2 fsync=$3
    shift 3
    local files=("$@") count=$# wrapper=() t0 overflows_before cpu_before
    rm -rf "$run_dir"
    mkdir -p "$run_dir"
    [[ -n ${strace_to:-} ]] && wrapper=(strace -f -c -S calls -o "$strace_to")
    start_server "$run_dir/server.log" "$count" "$run_dir/bets.csv" "$fsync" "${wrapper[@]}" || return 1
    cpu_before=$(children_cpu) # the server is counted whole when it is reaped, its start included
    count_processes "$run_dir" &
    gate_s=""
    overflows_before=$(listen_overflows)
    if [[ $driver == clients ]]; then
        gate_clients "$run_dir" "${files[@]}"
        t0=$EPOCHREALTIME
        open_gate "$count"
    else
        t0=$EPOCHREALTIME
        # At the defaults only 64 connections are served at once: the K OPENs
        # cannot all be answered first, so the clock runs from the connects.
        local load_flags=()
        [[ ${server_defaults:-0} == 1 ]] && load_flags=(--no-barrier)
        "$bin/bench_reference" load "${load_flags[@]}" "127.0.0.1:$port" "${files[@]}" >"$run_dir/load.out" 2>&1 &
        pids=($!)
        track $!
    fi
    wait_for "$run_timeout" "${pids[@]}"
    wall=$(elapsed "$t0" "$wait_end")
    overflows=$(( $(listen_overflows) - ${overflows_before:-0} ))
    if (( wait_failures > 0 )); then
        echo "bench: $wait_failures of ${#pids[@]} $driver processes failed or timed out; logs in $run_dir" >&2
        if [[ $driver == clients ]]; then
            grep -ah 'result: fail' "$run_dir"/agency-*.log 2>/dev/null | head -n 5 >&2 || true
        else
            tail -n 5 "$run_dir/load.out" >&2
        fi
        stop_server "$run_dir/server.log" >/dev/null 2>&1 || true
        return 1
    fi
    if [[ $driver == load ]] && ! grep -q '^load | ' "$run_dir/load.out"; then
        echo "bench: bench_reference load printed no result line ($run_dir/load.out)" >&2
        stop_server "$run_dir/server.log" >/dev/null 2>&1 || true
        return 1
    fi
    stop_server "$run_dir/server.log" || return 1
    cpu=$(elapsed "$cpu_before" "$cpu_at_stop")
    peak_processes=$(cat "$run_dir/peak_processes" 2>/dev/null || echo n/a)
}

# count_processes <run dir>: in the background until the server exits, the
# most processes it ran at once (the coordinator, the acceptor and the
# acceptor's children, the handlers), sampled every 20 ms, in
# <run dir>/peak_processes.
count_processes() {
    local run_dir=$1 acceptor="" peak=0 now
    for _ in $(seq 1 500); do
        acceptor=$(sed -n 's/.*action: start_acceptor | result: success | acceptor_pid: \([0-9]*\).*/\1/p' "$run_dir/server.log")
        [[ -n $acceptor ]] && break
        sleep 0.01
    done
    [[ -n $acceptor ]] || return 0
    while kill -0 "$server_pid" 2>/dev/null; do
        now=$(wc -w <"/proc/$acceptor/task/$acceptor/children" 2>/dev/null) || break
        (( now + 2 > peak )) && { peak=$(( now + 2 )); echo "$peak" >"$run_dir/peak_processes"; }
        sleep 0.02
    done
}

# reference_run <run dir> <file>...: `bench_reference essential` over the same
# files, timed like product_run (process start to exit). Leaves its store in
# <run dir>/bets.csv; sets wall and cpu.
reference_run() {
    local run_dir=$1
    shift
    rm -rf "$run_dir"
    mkdir -p "$run_dir"
    local t0 cpu_before
    cpu_before=$(children_cpu)
    t0=$EPOCHREALTIME
    "$bin/bench_reference" essential "$run_dir/bets.csv" "$run_dir/bets.log" "$@" >"$run_dir/reference.out" 2>&1 &
    track $!
    wait_for "$run_timeout" $!
    cpu=$(elapsed "$cpu_before" "$(children_cpu)")
    wall=$(elapsed "$t0" "$wait_end")
    if (( wait_failures > 0 )) || ! grep -q '^reference | mode: essential' "$run_dir/reference.out"; then
        echo "bench: bench_reference essential failed ($run_dir):" >&2
        tail -n 5 "$run_dir/reference.out" >&2
        return 1
    fi
    rm -f "$run_dir/bets.log" # as big as the store; only its writing counts
}

# same_bets <product store> <sorted reference store>: the exactly-once check.
# Fails, saying how many lines differ, unless the product's store, sorted,
# is the reference's, line for line (a lost bet is a missing line, a stored
# twice an extra one). Sets check_text.
same_bets() {
    local store=$1 reference=$2 sorted=$1.sorted missing extra
    sort -S 25% -o "$sorted" "$store" || return 1
    if cmp -s "$sorted" "$reference"; then
        check_text="ok"
        rm -f "$sorted" "$store" "$store.journal" # up to ~25 MB per run; the logs stay
        return 0
    fi
    missing=$(comm -23 "$reference" "$sorted" | wc -l)
    extra=$(comm -13 "$reference" "$sorted" | wc -l)
    check_text="FAILED: $(( missing + extra )) lines differ ($missing missing, $extra extra)"
    echo "bench: $current: the product's store is not the reference's: ${check_text#FAILED: } ($store)" >&2
    return 1
}

# ---------------------------------------------------------------- results
# One entry per scenario that ran, keyed by its name.
declare -A res_driver=() res_agencies=() res_bets=() res_prod=() res_ref=() res_rate=() \
    res_ratio=() res_cpu_ratio=() res_rss=() res_hrss=() res_check=() res_target=() res_procs=()
ran=() # scenario names in the order they ran

# compare <driver> <fsync> <file>...: BENCH_RUNS runs of the reference and of
# the product over the same files, alternating (reference, product, reference,
# ...) so that a change in the machine's load falls on both. Every product run
# must store exactly the reference's bets. Records the medians under $current.
compare() {
    local driver=$1 fsync=$2
    shift 2
    local logs=$dir/logs/$current i ref_walls=() walls=() ref_cpus=() cpus=() rsss=() hrsss=() expected=""
    rm -rf "$logs"
    mkdir -p "$logs"
    res_check[$current]="FAILED: a run failed"
    for (( i = 1; i <= runs; i++ )); do
        reference_run "$logs/reference-$i" "$@" || return 1
        ref_walls+=("$wall") ref_cpus+=("$cpu")
        if [[ -z $expected ]]; then
            sort -S 25% -o "$logs/reference.sorted" "$logs/reference-$i/bets.csv" || return 1
            expected=$(lines_in "$logs/reference.sorted")
        fi
        rm -f "$logs/reference-$i/bets.csv"
        product_run "$logs/run-$i" "$driver" "$fsync" "$@" || return 1
        local detail=${gate_s:+ (forking the clients before the clock: $gate_s s)}
        if [[ $driver == load ]]; then # where the load generator's time went
            local line
            line=$(grep -a '^load | ' "$logs/run-$i/load.out")
            detail=" (of which reading the files and opening the connections $(field setup_seconds <<<"$line") s, the exchange $(field seconds <<<"$line") s)"
        fi
        printf '  run %d/%d: reference %s s, product %s s%s, CPU reference %s s, product %s s, peak RSS coordinator %s KiB, largest handler %s KiB, peak server processes %s, listen overflows %s\n' \
            "$i" "$runs" "${ref_walls[-1]}" "$wall" "$detail" "${ref_cpus[-1]}" "$cpu" "$rss_kb" "$handler_rss_kb" "$peak_processes" "$overflows"
        walls+=("$wall") cpus+=("$cpu") rsss+=("$rss_kb") hrsss+=("$handler_rss_kb")
        [[ $peak_processes == n/a ]] || (( peak_processes <= ${res_procs[$current]:-0} )) || res_procs[$current]=$peak_processes
        same_bets "$logs/run-$i/bets.csv" "$logs/reference.sorted" || { res_check[$current]=$check_text; return 1; }
        if [[ $draw_bets_seen != "$expected" ]]; then
            res_check[$current]="FAILED: the draw saw $draw_bets_seen bets, the reference stored $expected"
            echo "bench: $current: ${res_check[$current]#FAILED: }" >&2
            return 1
        fi
    done
    rm -f "$logs/reference.sorted"
    record "$driver" $# "$expected" "$(printf '%s\n' "${walls[@]}" | median)" "$(printf '%s\n' "${ref_walls[@]}" | median)" \
        "$(printf '%s\n' "${rsss[@]}" | maximum)" "$(printf '%s\n' "${hrsss[@]}" | maximum)"
    res_cpu_ratio[$current]=$(divide "$(printf '%s\n' "${cpus[@]}" | median)" "$(printf '%s\n' "${ref_cpus[@]}" | median)")
}

# record <driver> <agencies> <bets> <product s> <reference s> <rss> <handler rss>
record() {
    res_driver[$current]=$1 res_agencies[$current]=$2 res_bets[$current]=$3
    res_prod[$current]=$(printf '%.3f' "$4")
    if [[ $5 == n/a ]]; then res_ref[$current]=n/a; else res_ref[$current]=$(printf '%.3f' "$5"); fi
    res_rate[$current]=$(divide "$3" "$4" %.0f)
    res_ratio[$current]=$(divide "$4" "$5")
    res_rss[$current]=$6 res_hrss[$current]=$7 res_check[$current]=ok
}

# target_ratio <limit>: product/reference of $current at most <limit>.
target_ratio() { res_target[$current]="≤$1× reference: $(at_most "${res_ratio[$current]}" "$1")"; }

# target_versus <other scenario> <limit>: product wall of $current at most
# <limit> times the product wall of <other> (same bets, other conditions).
target_versus() {
    local other=$1 limit=$2 ratio=n/a
    [[ -n ${res_prod[$other]:-} && ${res_check[$other]} == ok ]] && ratio=$(divide "${res_prod[$current]}" "${res_prod[$other]}")
    res_target[$current]="≤$limit× $other (${ratio}×): $(at_most "$ratio" "$limit")"
    [[ $ratio == n/a ]] && res_target[$current]="≤$limit× $other: n/a ($other not run)"
    return 0
}

# ---------------------------------------------------------------- bet files
# synthetic <agencies> <bets each>: files=( $dir/data/synthetic-KxM/agency-i.csv ),
# made once by scripts/generate-bets.sh and cached.
synthetic() {
    local count=$1 bets=$2 data=$dir/data/synthetic-$1x$2 tmp id
    if [[ ! -f $data/complete ]]; then
        echo "  generating $count agencies x $bets bets with scripts/generate-bets.sh into $data ..."
        tmp=$data.tmp
        rm -rf "$data" "$tmp"
        mkdir -p "$tmp"
        seq 1 "$count" | xargs -P "$(nproc)" -I{} sh -c "scripts/generate-bets.sh {} $bets > '$tmp/agency-{}.csv'"
        [[ $(cat "$tmp"/agency-*.csv | lines_in) == $(( count * bets )) ]] || { echo "bench: generation failed" >&2; return 1; }
        touch "$tmp/complete"
        mv "$tmp" "$data"
    fi
    files=()
    for (( id = 1; id <= count; id++ )); do files+=("$data/agency-$id.csv"); done
}

# project_data: files=( .data/agency-1.csv ... ).
project_data() {
    local count id
    count=$(find .data -maxdepth 1 -name 'agency-*.csv' | wc -l)
    (( count > 0 )) || { echo "bench: no .data/agency-*.csv" >&2; return 1; }
    files=()
    for (( id = 1; id <= count; id++ )); do
        [[ -f .data/agency-$id.csv ]] || { echo "bench: .data/agency-$id.csv is missing" >&2; return 1; }
        files+=(".data/agency-$id.csv")
    done
}

# draw_store <bets>: store=$dir/draw/store-<bets>.csv, a bet store made once
# from generate-bets.sh output and cached (the draw cuts it back after use).
draw_store() {
    local count=$1 work=$dir/draw
    store=$work/store-$count.csv
    mkdir -p "$work"
    [[ -f $store.complete ]] && return 0
    # Store lines are `agency,first,last,document,YYYY-MM-DD,number`; the
    # generator's names hold no comma or quote, so QUOTE_MINIMAL leaves every
    # field bare and a store line is "<agency>," + the CSV row.
    local parts=$(( (count + 999999) / 1000000 )) tmp=$work/tmp a rows generators=()
    echo "  generating a store of $count bets ($parts agencies, scripts/generate-bets.sh) into $store ..."
    rm -rf "$tmp" "$store"
    mkdir -p "$tmp"
    for (( a = 1; a <= parts; a++ )); do
        rows=$(( count / parts + (a <= count % parts ? 1 : 0) ))
        while (( $(jobs -rp | wc -l) >= $(nproc) )); do wait -n || true; done
        { scripts/generate-bets.sh "$a" "$rows" | sed -e 's/\r$//' -e "s/^/$a,/" >"$tmp/part-$a"; } &
        generators+=($!)
        track $!
    done
    for a in "${generators[@]}"; do wait "$a" 2>/dev/null || true; unset "started[$a]"; done # checked by the line count
    for (( a = 1; a <= parts; a++ )); do cat "$tmp/part-$a"; done >"$store.tmp"
    rm -rf "$tmp"
    [[ $(lines_in "$store.tmp") == "$count" ]] || { echo "bench: store generation failed" >&2; return 1; }
    mv "$store.tmp" "$store"
    touch "$store.complete"
}

# ---------------------------------------------------------------- output
row_fields() { # <scenario>: the row's cells, one per line
    local s=$1
    printf '%s\n' "$s" "${res_driver[$s]:-}" "${res_agencies[$s]:-}" "$(commas "${res_bets[$s]:-0}")" "${res_prod[$s]:-}" \
        "${res_ref[$s]:-}" "$(commas "${res_rate[$s]:-0}")" "${res_ratio[$s]:-}" "${res_cpu_ratio[$s]:-n/a}" \
        "${res_rss[$s]:-}" "${res_hrss[$s]:-}" \
        "${res_check[$s]:-}" "${res_target[$s]:-}"
}
print_table() {
    local format='%-16s %-8s %8s %11s %9s %9s %10s %6s %6s %8s %8s  %-12s %s\n' s cells
    # shellcheck disable=SC2059
    printf "$format" scenario driver agencies bets product reference bets/s ratio CPU coordRSS handlRSS exactly-once target
    # shellcheck disable=SC2059
    printf "$format" "" "" "" "" s s product p/r p/r KiB KiB "" ""
    for s in "${ran[@]}"; do
        mapfile -t cells < <(row_fields "$s")
        if [[ -z ${res_prod[$s]:-} ]]; then cells=("$s" "" "" "" "" "" "" "" "" "" "" "${res_check[$s]}" ""); fi
        # shellcheck disable=SC2059
        printf "$format" "${cells[@]}"
    done
}

# write_results <markdown file> <what ran>: the table in Markdown with how it
# was made.
write_results() {
    local out=$1 s cells commit
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    [[ -z $(git status --porcelain --untracked-files=no 2>/dev/null) ]] || commit="$commit (with uncommitted changes)"
    {
        echo "# Benchmark results"
        echo
        echo "Written by \`make bench\` (bench/bench.sh) at the end of $2; [agencies.svg](agencies.svg) plots"
        echo "bets/s against agencies. $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, $(nproc) CPUs, $(uname -sr),"
        echo "load average $load_before before and $(load_average) after, median of $runs run(s) per figure."
        echo
        echo "| scenario | driver | agencies | bets | product (s) | reference (s) | bets/s | product / reference | CPU product / reference | coordinator RSS (KiB) | largest handler RSS (KiB) | exactly-once | target |"
        echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|"
        for s in "${ran[@]}"; do
            mapfile -t cells < <(row_fields "$s")
            cells[0]="\`$s\`"
            printf '| %s ' "${cells[@]}"
            echo '|'
        done
        echo
        legend
    } >"$out"
}

legend() {
    cat <<EOF
- product: the real bin/server (fresh store, LOGGING_LEVEL=INFO to a file) with \`clients\` (one bin/client per
  agency, CLI_LOG_LEVEL=INFO to a file, all forked first and released at once) or \`load\` (one
  \`bench_reference load\` holding every agency's connection); wall time from the release of the clients (the start
  of the load generator) to the moment the last one has exited, after its WINNERS, so the draw is inside.
- reference: \`bench_reference essential\`, the same files in one threaded process (parse, encode, decode, one store
  line and one log line per bet), timed the same way. Runs alternate reference, product, reference, ...
- draw: the server's own \`sorteo ... ms\` over the cached store (+ one bet sent by a client) against
  \`bench_reference draw\` over the same store; page cache warm.
- ratio: product / reference, both medians; bets/s = bets / the product's median.
- CPU: user + system seconds of the run's processes (for the product: the server's coordinator, acceptor and
  handlers, the clients or the load generator; and a few ms of the benchmark's own small commands), product median /
  reference median, in steps of 10 ms: the work each side did, where the ratio above is the time it took. n/a for
  the draw.
- RSS: the server's exit line (getrusage ru_maxrss of the coordinator / the largest reaped handler), max of the runs.
- exactly-once: every product run's store, sorted, equals the reference's store for the same files, sorted.
EOF
}

# write_svg <file>: bets/s against agencies (log x axis) for the product and
# the reference, from the scenarios that ran, drawn by awk.
write_svg() {
    local out=$1 s points=""
    # series agencies bets/s marker
    for s in data 20x25k 500x500-clients 2000x100-load 10000x10-load; do
        [[ ${res_check[$s]:-} == ok ]] || continue
        points+="product ${res_agencies[$s]} ${res_rate[$s]} ${res_driver[$s]}"$'\n'
        [[ ${res_ref[$s]} == n/a ]] || points+="reference ${res_agencies[$s]} $(divide "${res_bets[$s]}" "${res_ref[$s]}" %.0f) reference"$'\n'
    done
    awk -v subtitle="$(date -u +%Y-%m-%d), median of $runs run(s), $(nproc) CPUs" '
        function x(a) { return 80 + (log(a) - log(3)) / (log(30000) - log(3)) * 490 }
        function y(v) { return 250 - v / top * 220 }
        function short(v) { return v >= 1e6 ? sprintf("%gM", v / 1e6) : v >= 1e3 ? sprintf("%gk", v / 1e3) : v }
        function marker(px, py, kind) {
            if (kind == "reference") return sprintf("<rect x=\"%.1f\" y=\"%.1f\" width=\"8\" height=\"8\" fill=\"#d95f02\"/>", px - 4, py - 4)
            if (kind == "load") return sprintf("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"white\" stroke=\"#1b6ac9\" stroke-width=\"2\"/>", px, py)
            return sprintf("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#1b6ac9\"/>", px, py)
        }
        NF == 4 { n++; series[n] = $1; agencies[n] = $2; rate[n] = $3; kind[n] = $4; if ($3 > most) most = $3 }
        END {
            step = 1; while (most / step > 5) step *= (substr(step, 1, 1) == "2" ? 2.5 : 2)
            top = step * (int(most / step) + 1)
            print "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"360\" viewBox=\"0 0 600 360\" font-family=\"sans-serif\" font-size=\"12\">"
            print "<rect width=\"600\" height=\"360\" fill=\"white\"/>"
            print "<text x=\"300\" y=\"16\" text-anchor=\"middle\" font-size=\"14\">Lotería Nacional: bets/s against agencies</text>"
            printf "<text x=\"300\" y=\"30\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">%s</text>\n", subtitle
            for (v = 0; v <= top; v += step) {
                printf "<line x1=\"80\" x2=\"570\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", y(v), y(v)
                printf "<text x=\"74\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", y(v) + 4, short(v)
            }
            split("5 20 100 500 2000 10000", ticks, " ")
            for (i = 1; i <= 5; i++) {
                printf "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"30\" y2=\"250\" stroke=\"#eee\"/>", x(ticks[i]), x(ticks[i])
                printf "<text x=\"%.1f\" y=\"266\" text-anchor=\"middle\">%s</text>\n", x(ticks[i]), ticks[i]
            }
            print "<line x1=\"80\" x2=\"570\" y1=\"250\" y2=\"250\" stroke=\"black\"/><line x1=\"80\" x2=\"80\" y1=\"30\" y2=\"250\" stroke=\"black\"/>"
            print "<text x=\"325\" y=\"284\" text-anchor=\"middle\">agencies (log scale)</text>"
            print "<text x=\"18\" y=\"140\" text-anchor=\"middle\" transform=\"rotate(-90 18 140)\">bets stored per second</text>"
            split("product reference", names, " ")
            for (k = 1; k <= 2; k++) {
                path = ""
                for (i = 1; i <= n; i++) if (series[i] == names[k]) path = path sprintf("%s%.1f,%.1f", path == "" ? "" : " ", x(agencies[i]), y(rate[i]))
                if (path != "") printf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", path, k == 1 ? "#1b6ac9" : "#d95f02", k == 1 ? "" : " stroke-dasharray=\"6 4\""
            }
            for (i = 1; i <= n; i++) print marker(x(agencies[i]), y(rate[i]), kind[i])
            print "<g font-size=\"11\">"
            print marker(90, 304, "clients") "<text x=\"100\" y=\"308\">product: one bin/client process per agency</text>"
            print marker(90, 324, "load") "<text x=\"100\" y=\"328\">product: load generator (bench_reference load)</text>"
            print "<line x1=\"392\" x2=\"418\" y1=\"304\" y2=\"304\" stroke=\"#1b6ac9\" stroke-width=\"2\"/><text x=\"424\" y=\"308\">product (bin/server)</text>"
            print "<line x1=\"392\" x2=\"418\" y1=\"324\" y2=\"324\" stroke=\"#d95f02\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>" marker(405, 324, "reference") "<text x=\"424\" y=\"328\">reference (essential work)</text>"
            print "</g>"
            print "</svg>"
        }' <<<"$points" >"$out"
}

# ---------------------------------------------------------------- the draw
# reference_draws: whether bin/bench_reference has its `draw` mode yet (it
# answers a one-bet store with its `reference | mode: draw` line).
reference_draws() {
    local tiny=$dir/draw/tiny-store.csv
    sed -e 's/\r$//' -e 's/^/1,/' "$dir/draw/one-bet.csv" >"$tiny"
    "$bin/bench_reference" draw "$tiny" >"$tiny.out" 2>&1 &
    track $!
    wait_for 10 $!
    (( wait_failures == 0 )) && grep -q '^reference | mode: draw' "$tiny.out"
}

# draw_compare <bets>: BENCH_RUNS times, the real server over the cached store
# with SERVER_AGENCIES=1 and one real client sending one bet, whose DONE
# starts the draw over the whole store; its figure is the server's own
# `sorteo ... ms`. Then, if it has the mode, `bench_reference draw` over the
# same store (bets and winners must agree; its own `seconds`). The store is
# cut back to its cached size after every run, so the cache stays pristine.
draw_compare() {
    local count=$1 logs=$dir/logs/$current size i run_dir one with_reference=0 line
    local walls=() ref_walls=() rsss=() hrsss=() ref_s=n/a
    draw_store "$count" || return 1
    one=$dir/draw/one-bet.csv
    [[ -s $one ]] || scripts/generate-bets.sh 1 1 >"$one"
    size=$(stat -c %s "$store")
    if reference_draws; then with_reference=1; else echo "  bin/bench_reference has no draw mode yet: its ratio is n/a"; fi
    rm -rf "$logs"
    mkdir -p "$logs"
    res_check[$current]="FAILED: a run failed"
    for (( i = 1; i <= runs; i++ )); do
        run_dir=$logs/run-$i
        mkdir -p "$run_dir"
        restore_file=$store restore_size=$size
        start_server "$run_dir/server.log" 1 "$store" false || return 1
        CLI_ID=1 CLI_SERVER_ADDRESS=127.0.0.1:$port CLI_DATA_FILE=$one CLI_LOG_LEVEL=INFO \
            "$bin/client" --config config/client.ini >"$run_dir/agency-1.log" 2>&1 &
        track $!
        wait_for "$run_timeout" $!
        if (( wait_failures > 0 )); then
            echo "bench: the client failed ($run_dir)" >&2
            stop_server "$run_dir/server.log" >/dev/null 2>&1 || true
            return 1
        fi
        stop_server "$run_dir/server.log" || return 1
        if (( $(stat -c %s "$store") < size )); then # the server cut the store: the cache is spoiled
            echo "bench: the server shrank the store; removing the cached store" >&2
            rm -f "$store" "$store.complete" "$store.journal"
            restore_file=""
            return 1
        fi
        if [[ $draw_bets_seen != $(( count + 1 )) ]]; then
            res_check[$current]="FAILED: the draw saw $draw_bets_seen bets of $(( count + 1 ))"
            echo "bench: $current: ${res_check[$current]#FAILED: }" >&2
            return 1
        fi
        walls+=("$(divide "$draw_ms" 1000 %.3f)") rsss+=("$rss_kb") hrsss+=("$handler_rss_kb")
        if (( with_reference )); then
            "$bin/bench_reference" draw "$store" >"$run_dir/reference.out" 2>&1 &
            track $!
            wait_for "$run_timeout" $!
            line=$(grep -a '^reference | mode: draw' "$run_dir/reference.out") || true
            if (( wait_failures > 0 )) || [[ -z $line ]]; then
                echo "bench: bench_reference draw failed ($run_dir):" >&2
                tail -n 5 "$run_dir/reference.out" >&2
                return 1
            fi
            if [[ $(field bets <<<"$line") != "$draw_bets_seen" || $(field winners <<<"$line") != "$draw_winners" ]]; then
                res_check[$current]="FAILED: server drew $draw_bets_seen bets, $draw_winners winners; reference ${line#reference | mode: draw | }"
                echo "bench: $current: ${res_check[$current]#FAILED: }" >&2
                return 1
            fi
            ref_walls+=("$(field seconds <<<"$line")")
            ref_s="${ref_walls[-1]} s"
        fi
        truncate -s "$size" "$store"
        rm -f "$store.journal"
        restore_file=""
        printf '  run %d/%d: product draw %s s (%s bets, %s winners), reference %s, peak RSS coordinator %s KiB\n' \
            "$i" "$runs" "${walls[-1]}" "$draw_bets_seen" "$draw_winners" "$ref_s" "$rss_kb"
    done
    local ref=n/a
    (( with_reference )) && ref=$(printf '%s\n' "${ref_walls[@]}" | median)
    record client 1 $(( count + 1 )) "$(printf '%s\n' "${walls[@]}" | median)" "$ref" \
        "$(printf '%s\n' "${rsss[@]}" | maximum)" "$(printf '%s\n' "${hrsss[@]}" | maximum)"
}
