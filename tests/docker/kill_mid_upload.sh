# shellcheck shell=bash disable=SC2154  # root, work, deadline_s, … are run.sh's
# Check (h) of tests/docker/run.sh, which sources this file and provides the
# helpers (check, pass, fail, compose_in, wait_for_log, wait_clients, …): the
# exactly-once guarantee the way an operator meets it.
#
# Three agencies upload tens of thousands of bets, one bet per frame so that
# the upload lasts seconds. The server container is SIGKILLed while every
# agency is uploading and started again (same container, same volume); then
# client2 is SIGKILLed while it uploads to the restarted server and started
# again. At the end every agency exited 0, the draw ran once (after the
# restart), each agency got the winners of its own file, and the bet store
# copied out of the volume holds every bet of every agency file exactly once,
# among them every bet a client logged as `apuesta_enviada`. Then the whole
# deployment is started again on the kept volume: nothing is sent or stored
# twice, and the same winners come back.
#
# The waits poll a copy of a container's log that `docker logs -f` keeps
# growing in the background (re-reading tens of MB through `docker logs` on
# every poll would let the upload finish before the kill); after a restart
# the copy starts at the restart (--since).

kill_rows=(0 20000 30000 20000) # rows of agency 1..3's file (index = agency)

# Now, in the form `docker logs --since` takes.
docker_now() { date -u +%Y-%m-%dT%H:%M:%S.%NZ; }

# follow_log CONTAINER FILE [SINCE]: copies the container's log (from the
# docker timestamp SINCE on, when given) to FILE as it grows, until the
# container stops.
follow_log() {
    docker logs -f ${3:+--since "$3"} "$1" >"$2" 2>&1 &
    log_followers+=("$!")
}

# Ends the followers still running (a follower ends with its container).
stop_log_followers() {
    local pid
    for pid in "${log_followers[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    log_followers=()
}

# wait_for_line FILE PATTERN SECONDS: polls FILE for a line.
wait_for_line() {
    local end=$(( $(date +%s) + $3 ))
    until grep -q -- "$2" "$1"; do
        (( $(date +%s) < end )) || return 1
        sleep 0.1
    done
}

# prepare_kill_project DIR: config, data and compose files for 3 agencies.
prepare_kill_project() {
    local dir=$1 i
    mkdir -p "$dir/config" "$dir/.data" || return 1
    cp "$root/config/server.ini" "$dir/config/" || return 1
    # One bet per frame keeps the upload going for seconds; the connect
    # retry window must outlast the server's restart.
    sed -e 's/^maxAmount = .*/maxAmount = 1/' -e 's/^connectRetrySeconds = .*/connectRetrySeconds = 60/' \
        "$root/config/client.ini" >"$dir/config/client.ini" || return 1
    for (( i = 1; i <= 3; i++ )); do
        "$root/scripts/generate-bets.sh" "$i" "${kill_rows[i]}" 4242 >"$dir/.data/agency-$i.csv" || return 1
    done
    "$root/scripts/generar-compose.sh" "$dir/docker-compose.yaml" 3 >/dev/null 2>&1 || return 1
    # The server logs two lines per bet here (~25 MB with Docker's JSON
    # wrapping) and the checks read whole logs: a daemon that rotates logs
    # at a smaller size (this machine's: 3 × 10 MB) would drop lines.
    { echo 'version: "3.8"'; echo 'services:'
      for service in server client1 client2 client3; do
          printf '  %s:\n    logging:\n      driver: json-file\n      options:\n        max-size: "500m"\n' "$service"
      done; } >"$dir/logging.yaml"
}

# store_lines_of AGENCY CSV: the CSV's rows as the store writes them. The
# generated names hold no comma, quote or line break, so QUOTE_MINIMAL
# leaves every field bare and a store line is `agency,` + the row.
store_lines_of() {
    awk -v agency="$1" '{ sub(/\r$/, "") } NF { print agency "," $0 }' "$2"
}

# sent_keys_of AGENCY LOG: `agency,document,number` of every bet the log
# shows as acknowledged (apuesta_enviada).
sent_keys_of() {
    sed -n "s/.*action: apuesta_enviada | result: success | dni: \([0-9]*\) | numero: \([0-9]*\).*/$1,\1,\2/p" "$2"
}

kill_mid_upload() {
    local label="(h) SIGKILL mid-upload" dir="$work/project-h" c
    local server_restarted client2_restarted # docker timestamps of the restarts
    if ! prepare_kill_project "$dir"; then fail "$label: could not prepare $dir"; return 1; fi
    project="${project_prefix}h"
    file="$dir/docker-compose.yaml:$dir/logging.yaml"
    projects+=("$project $file")
    local run=(compose_in "$dir" "$project" "$file")
    # Created first, then started by hand: `compose up -d` and even `docker
    # start` of three containers can take seconds to return on a busy
    # machine while the upload is already running, so the wait for the
    # server's log runs while the agencies are being started.
    if ! "${run[@]}" up --no-start >"$work/up-h.log" 2>&1 || ! docker start server >>"$work/up-h.log" 2>&1; then
        fail "$label: compose up --no-start, docker start server"; tail -20 "$work/up-h.log"
        teardown_project "$project" "$file"; return 1
    fi
    follow_log server "$work/h-follow-server.log"
    local starting=() pid
    for c in client1 client2 client3; do docker start "$c" >>"$work/up-h.log" 2>&1 & starting+=("$!"); done
    kill_server_mid_upload "$label"
    local step=$?
    for pid in "${starting[@]}"; do wait "$pid" || { fail "$label: docker start of an agency"; step=1; }; done
    (( step == 0 )) && kill_client2_mid_upload "$label" && check_kill_outcome "$label" "$dir" &&
        rerun_on_kept_volume "$label" "$dir"
    teardown_project "$project" "$file"
    stop_log_followers
}

# Step 1: SIGKILL of the server once every agency has bets stored.
kill_server_mid_upload() {
    local label=$1 i unfinished=""
    for (( i = 1; i <= 3; i++ )); do
        if ! wait_for_line "$work/h-follow-server.log" \
                "action: apuesta_recibida | result: success | cantidad: [0-9]* | agencia: $i |" 60; then
            fail "$label: the server stored no bet of agency $i within 60 s"; return 1
        fi
    done
    docker kill -s KILL server >/dev/null
    docker wait server >/dev/null
    check "$label: server exit code $(exit_code server) after docker kill -s KILL (want 137)" \
        test "$(exit_code server)" == 137
    docker logs server >"$work/h-server-1.log" 2>&1
    check "$label: the first server run stored bets ($(grep -c 'action: apuesta_almacenada' "$work/h-server-1.log") apuesta_almacenada lines)" \
        grep -q 'action: apuesta_almacenada' "$work/h-server-1.log"
    check "$label: no draw before the kill" not grep -q 'action: sorteo' "$work/h-server-1.log"
    # With the server dead no agency can progress: what they logged now is
    # what they had done when it died.
    for (( i = 1; i <= 3; i++ )); do
        docker logs "client$i" 2>&1 | grep 'action: apuestas_enviadas' >/dev/null && unfinished+="client$i "
    done
    check "$label: every agency was still uploading when the server was killed${unfinished:+ (finished: $unfinished)}" \
        test -z "$unfinished"

    server_restarted=$(docker_now)
    if ! docker start server >/dev/null; then fail "$label: docker start server"; return 1; fi
    follow_log server "$work/h-follow-server-2.log" "$server_restarted"
    follow_log client2 "$work/h-follow-client2.log" "$server_restarted"
    check "$label: the restarted server replayed its journal" \
        wait_for_line "$work/h-follow-server-2.log" 'action: recover | result: success | journal: replayed' 30
}

# Step 2: SIGKILL of client2 while it uploads to the restarted server.
kill_client2_mid_upload() {
    local label=$1
    if ! wait_for_line "$work/h-follow-client2.log" 'action: apuesta_enviada | result: success' 60; then
        fail "$label: client2 got no ACK from the restarted server within 60 s"; return 1
    fi
    docker kill -s KILL client2 >/dev/null
    docker wait client2 >/dev/null
    check "$label: client2 exit code $(exit_code client2) after docker kill -s KILL (want 137)" \
        test "$(exit_code client2)" == 137
    docker logs client2 >"$work/h-client2-1.log" 2>&1
    check "$label: client2 was still uploading when it was killed" \
        not grep -q 'action: apuestas_enviadas' "$work/h-client2-1.log"
    client2_restarted=$(docker_now)
    if ! docker start client2 >/dev/null; then fail "$label: docker start client2"; return 1; fi
    if wait_clients 3; then
        pass "$label: every agency finished"
    else
        fail "$label: agencies still running after ${deadline_s} s"; return 1
    fi
}

# Step 3: exit codes, the one draw, and the store against the files.
check_kill_outcome() {
    local label=$1 dir=$2 i c bad=""
    "${run[@]}" stop -t 10 >>"$work/up-h.log" 2>&1
    for c in client1 client2 client3; do
        [[ $(exit_code "$c") == 0 ]] || bad+="$c=$(exit_code "$c") "
        docker logs "$c" >"$work/h-$c.log" 2>&1
    done
    check "$label: every agency container exited with code 0 ${bad:+(got: $bad)}" test -z "$bad"
    check "$label: the agencies (client2 twice) ran with batch_max_amount: 1 and connect_retry_seconds: 60 from the mounted client.ini" \
        test "$(cat "$work"/h-client[123].log |
                grep -c 'action: config | result: success | .*batch_max_amount: 1 | .*connect_retry_seconds: 60 |')" -eq 4
    check "$label: the restarted server exited with code 0 (got $(exit_code server))" test "$(exit_code server)" == 0

    # A container's log goes on across restarts; the second runs' lines are
    # those logged since their restart.
    local server2="$work/h-server-2.log" client2_2="$work/h-client2-2.log"
    docker logs --since "$server_restarted" server >"$server2" 2>&1
    docker logs --since "$client2_restarted" client2 >"$client2_2" 2>&1
    echo "note: $label: restarted server: $(grep -m1 -o 'action: recover .*' "$server2")"
    local sorteos
    sorteos=$(grep -c 'action: sorteo | result: success' "$server2")
    check "$label: the restarted server logged 'sorteo | result: success' once (got $sorteos)" test "$sorteos" -eq 1
    for (( i = 1; i <= 3; i++ )); do
        check "$label: agency $i opened its source again on the restarted server" \
            grep -q "action: abrir_fuente | result: success | agencia: $i | " "$server2"
    done

    local resumed acked_before
    resumed=$(sed -n 's/.*action: reanudar_fuente | result: success | .*almacenadas: \([0-9]*\).*/\1/p' "$client2_2")
    acked_before=$(grep -c 'action: apuesta_enviada | result: success' "$work/h-client2-1.log")
    check "$label: client2 run again logged 'reanudar_fuente | result: success' (almacenadas: ${resumed:-none})" \
        test -n "$resumed"
    check "$label: client2 resumed at ${resumed:-none}: at least the $acked_before bets acknowledged before its kill, fewer than its ${kill_rows[2]} rows" \
        test "${resumed:-0}" -ge "$acked_before" -a "${resumed:-0}" -gt 0 -a "${resumed:-0}" -lt "${kill_rows[2]}"

    for (( i = 1; i <= 3; i++ )); do
        local want got
        want=$(winners_in "$dir/.data/agency-$i.csv")
        got=$(sed -n 's/.*action: consulta_ganadores | result: success | cant_ganadores: \([0-9]*\).*/\1/p' "$work/h-client$i.log")
        check "$label: agency $i: cant_ganadores ${got:-<none>}, expected $want from its file" test "${got:-x}" == "$want"
    done
    check_store "$label" "$dir"
}

# resumed_whole LOG ROWS: the agency's log shows a resume at ROWS bets and
# an upload that sent none of them again.
resumed_whole() {
    grep -q "action: reanudar_fuente | result: success | .*almacenadas: $2\$" "$1" &&
        grep -q "action: apuestas_enviadas | result: success | .*enviadas: 0 | ya_almacenadas: $2 |" "$1"
}

# Step 4: the whole deployment started again on the kept volume. Every
# source is found whole (RESUME k = all its rows, same digest): nothing is
# sent, nothing stored again, the same winners come back.
rerun_on_kept_volume() {
    local label="$1, then started again on the kept volume" dir=$2 i c bad="" started
    started=$(docker_now)
    if ! "${run[@]}" start >>"$work/up-h.log" 2>&1; then fail "$label: compose start"; return 1; fi
    wait_clients 3 || { fail "$label: agencies still running after ${deadline_s} s"; return 1; }
    "${run[@]}" stop -t 10 >>"$work/up-h.log" 2>&1
    for c in server client1 client2 client3; do
        [[ $(exit_code "$c") == 0 ]] || bad+="$c=$(exit_code "$c") "
        docker logs --since "$started" "$c" >"$work/h-rerun-$c.log" 2>&1
    done
    check "$label: every container exited with code 0 ${bad:+(got: $bad)}" test -z "$bad"
    for (( i = 1; i <= 3; i++ )); do
        local log="$work/h-rerun-client$i.log" want
        want=$(winners_in "$dir/.data/agency-$i.csv")
        check "$label: agency $i resumed with all its ${kill_rows[i]} bets stored and sent none" \
            resumed_whole "$log" "${kill_rows[i]}"
        check "$label: agency $i got its $want winners again" \
            grep -q "action: consulta_ganadores | result: success | cant_ganadores: $want\$" "$log"
    done
    check "$label: the server stored nothing new" not grep -q 'action: apuesta_almacenada' "$work/h-rerun-server.log"
    docker cp server:/store/bets.csv "$work/h-store-rerun.csv" >/dev/null 2>&1
    check "$label: the store is byte for byte what it was" cmp -s "$work/h-store.csv" "$work/h-store-rerun.csv"
}

# The store copied out of the volume against the files and the clients' logs.
check_store() {
    local label=$1 dir=$2 i store="$work/h-store.csv"
    local -x LC_ALL=C # sort, uniq and comm compare bytes
    if ! docker cp server:/store/bets.csv "$store" >/dev/null 2>&1; then
        fail "$label: docker cp server:/store/bets.csv"; return 1
    fi
    for (( i = 1; i <= 3; i++ )); do store_lines_of "$i" "$dir/.data/agency-$i.csv"; done | sort >"$work/h-want.txt"
    sort "$store" >"$work/h-got.txt"
    local want_n got_n dups missing extra
    want_n=$(wc -l <"$work/h-want.txt")
    got_n=$(wc -l <"$work/h-got.txt")
    uniq "$work/h-got.txt" >"$work/h-got-once.txt"
    dups=$(uniq -d "$work/h-got.txt" | wc -l)
    missing=$(comm -23 "$work/h-want.txt" "$work/h-got-once.txt" | wc -l)
    extra=$(comm -13 "$work/h-want.txt" "$work/h-got-once.txt" | wc -l)
    check "$label: the store holds $got_n lines for the files' $want_n bets" test "$got_n" -eq "$want_n"
    check "$label: no bet stored twice ($dups duplicated lines)" test "$dups" -eq 0
    check "$label: no bet of the files missing from the store ($missing missing)" test "$missing" -eq 0
    check "$label: nothing in the store that is not in the files ($extra lines)" test "$extra" -eq 0
    (( missing + extra > 0 )) && diff "$work/h-want.txt" "$work/h-got-once.txt" | head -5

    # Document, birthdate and number never need quotes: they are the last 3 fields.
    awk -F, '{ print $1 "," $(NF - 2) "," $NF }' "$store" | sort -u >"$work/h-stored-keys.txt"
    for (( i = 1; i <= 3; i++ )); do sent_keys_of "$i" "$work/h-client$i.log"; done | sort >"$work/h-sent-keys.txt"
    local sent_n sent_twice unstored
    sent_n=$(wc -l <"$work/h-sent-keys.txt")
    sent_twice=$(uniq -d "$work/h-sent-keys.txt" | wc -l)
    unstored=$(comm -23 <(uniq "$work/h-sent-keys.txt") "$work/h-stored-keys.txt" | wc -l)
    check "$label: every bet logged as apuesta_enviada ($sent_n) is in the store ($unstored missing)" \
        test "$sent_n" -gt 0 -a "$unstored" -eq 0
    check "$label: no bet logged as apuesta_enviada twice ($sent_twice)" test "$sent_twice" -eq 0
}
