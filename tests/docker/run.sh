#!/usr/bin/env bash
# Docker tests of the Lotería Nacional (`make test-docker`): the FROM-scratch
# images, the compose generator, the echo probe and graceful shutdown, run the
# way the course's black-box tests do (Docker Compose, reading the logs).
#
#   (a) 5 agencies on the repo's .data files: each gets the winner count
#       computed here from its CSV, every container exits 0, no `result: fail`
#   (b) scripts/validar-echo-server.sh: success against the running server;
#       fail against a stopped server, a missing network and a peer that
#       answers something else; an echo-only deployment (0 agencies) answers
#   (c) `docker stop` of the server mid-run (before the draw, bets flowing):
#       exit code 0 within 2 s, close and exit lines, no handler SIGKILLed;
#       the agencies, stopped afterwards while they reconnect, exit 0 with
#       their exit line
#   (d) a 3-agency deployment end to end
#   (e) generator output for 0, 1 and 5 agencies passes `compose config -q`,
#       and docker-compose-dev.yaml is the generator's 5-agency output
#   (f) bad generator arguments exit 2
#   (g) a changed client.ini takes effect on the next `up` with the same images
#   (h) exactly-once through SIGKILL (tests/docker/kill_mid_upload.sh): the
#       server container killed mid-upload and started again, then an agency
#       container killed mid-upload and started again; every agency exits 0,
#       one draw, and the store holds every bet of every file exactly once
#   (i) 70 agencies with the images' defaults (64 handlers, backlog 5): every
#       agency its winners, one draw, every bet stored (agencies 6..70 bet
#       files generated for the run into .data/ and removed afterwards)
#
# Prints `N passed, M failed` last; exits 1 if anything failed. Without a Docker
# engine it prints a SKIP line and exits 0. Containers are named `server`,
# `client1`… (the course's names), so no other deployment of this project may
# be running. Every compose project used here gets a unique name and is removed
# (with its volume and network) on exit.
#
# Env: COMPOSE (default: `docker compose` if it answers, else docker-compose),
#      DOCKER_TEST_SKIP_BUILD=1 to use the images already built,
#      DOCKER_TEST_TIMEOUT seconds a deployment may take (default 600),
#      DOCKER_TEST_ONLY letters of the checks to run, e.g. "c h" (default: all).
# shellcheck disable=SC2016,SC2317  # bash -c scripts take "$1"; trap handlers
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1

if ! docker info >/dev/null 2>&1; then
    echo "SKIP: docker tests skipped: no Docker engine answered"
    exit 0
fi

if [[ -z ${COMPOSE:-} ]]; then
    if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"; else COMPOSE=docker-compose; fi
fi
read -r -a compose_cmd <<<"$COMPOSE"
deadline_s=${DOCKER_TEST_TIMEOUT:-600}
started=$(date +%s)

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
# check DESCRIPTION COMMAND...: one assertion.
check() {
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

work=$(mktemp -d "${TMPDIR:-/tmp}/loteria-docker-test.XXXXXX")
project_prefix="loteriatest$$"
projects=()        # "name file" pairs to tear down
extra_containers=()
log_followers=()   # pids of background `docker logs -f`

compose_in() { # compose_in PROJECT_DIR PROJECT FILE[:OVERRIDE...] ARGS...
    local dir=$1 project=$2 f files=() args=(); shift 2
    IFS=: read -r -a files <<<"$1"; shift
    for f in "${files[@]}"; do args+=(-f "$f"); done
    "${compose_cmd[@]}" "${args[@]}" --project-directory "$dir" -p "$project" "$@"
}
compose() { compose_in "$root" "$@"; } # compose PROJECT FILE[:OVERRIDE...] ARGS...

teardown_project() { # PROJECT FILE
    compose "$1" "$2" down -v -t 2 --remove-orphans >>"$work/teardown.log" 2>&1 || true
}

generated_files=() # (i)'s bet files in .data/
cleanup() {
    local entry c p f pid
    rm -f "${generated_files[@]}"
    for pid in "${log_followers[@]}"; do kill "$pid" 2>/dev/null; done # (h)'s docker logs -f
    for c in "${extra_containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
    for entry in "${projects[@]}"; do
        read -r p f <<<"$entry"
        teardown_project "$p" "$f"
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

summary_and_exit() {
    echo "docker tests took $(( $(date +%s) - started )) s"
    echo "$passed passed, $failed failed"
    (( failed == 0 ))
    exit
}

# Any container with the course's fixed names would clash with ours.
clashing=$(docker ps -a --format '{{.Names}}' | grep -E '^(server|client[0-9]+)$' | tr '\n' ' ')
if [[ -n $clashing ]]; then
    fail "preconditions: containers named $clashing already exist (make docker-compose-down, or docker rm them)"
    summary_and_exit
fi

# ---------------------------------------------------------------- images
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
if [[ ${DOCKER_TEST_SKIP_BUILD:-0} != 1 ]]; then
    echo "building images (make docker-image)…"
    if make -C "$root" --no-print-directory docker-image >"$work/build.log" 2>&1; then
        pass "images: make docker-image"
    else
        tail -30 "$work/build.log"
        fail "images: make docker-image"
        summary_and_exit
    fi
fi
for image in server:latest client:latest ncat:local; do
    check "images: $image exists" image_exists "$image"
done

# ---------------------------------------------------------------- helpers
winners_in() { # CSV: its rows whose 5th field (the number) is 7574
    awk -F, '{ sub(/\r$/, "") } $5 == "7574" { n++ } END { print n + 0 }' "$1"
}
expected_winners() { winners_in "$root/.data/agency-$1.csv"; } # AGENCY

data_rows() { # AGENCY: non-empty rows
    awk '{ sub(/\r$/, "") } NF { n++ } END { print n + 0 }' "$root/.data/agency-$1.csv"
}
exit_code() { docker inspect -f '{{.State.ExitCode}}' "$1" 2>/dev/null; }
is_running() { [[ $(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null) == true ]]; }
# log_of LOGFILE SERVICE: one service's lines of a `compose logs --no-color` dump.
log_of() { sed -n "s/^$2 *| //p" "$1"; }

not() { ! "$@"; } # for `check`: the command must fail

# wait_for_log CONTAINER PATTERN SECONDS: polls the container's log for a line.
wait_for_log() {
    local end=$(( $(date +%s) + $3 ))
    while (( $(date +%s) < end )); do
        # (no grep -q: with pipefail, docker logs would die of SIGPIPE)
        docker logs "$1" 2>&1 | grep -- "$2" >/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# new_deployment N TAG: generates a compose file for N agencies; sets $project
# and $file, registered for teardown.
new_deployment() {
    project="${project_prefix}$2"
    file="$work/compose-$2.yaml"
    "$root/scripts/generar-compose.sh" "$file" "$1" >/dev/null 2>"$work/gen-$2.err" || return 1
    projects+=("$project $file")
}

# wait_clients N: waits (bounded) for client1..clientN to exit.
wait_clients() {
    local names=() i
    for (( i = 1; i <= $1; i++ )); do names+=("client$i"); done
    (( $1 == 0 )) && return 0
    timeout "$deadline_s" docker wait "${names[@]}" >/dev/null 2>&1
}

# ------------------------------------------------- (a)/(d) full deployment
# full_run N TAG: N agencies on .data/agency-1..N.csv, end to end. Leaves the
# server running (for the echo checks) when KEEP_SERVER=1.
full_run() {
    local n=$1 tag=$2 label="($2) $1 agencies" i log t0 t1
    if ! new_deployment "$n" "$tag"; then
        fail "$label: generar-compose.sh $n"; cat "$work/gen-$tag.err"; return 1
    fi
    t0=$(date +%s)
    if ! compose "$project" "$file" up -d >"$work/up-$tag.log" 2>&1; then
        fail "$label: compose up -d"; tail -20 "$work/up-$tag.log"; return 1
    fi
    if wait_clients "$n"; then
        t1=$(date +%s)
        pass "$label: every agency finished ($((t1 - t0)) s)"
    else
        fail "$label: agencies still running after ${deadline_s} s"
    fi

    if [[ ${KEEP_SERVER:-0} == 1 ]]; then echo_checks_running "$label"; fi

    if compose "$project" "$file" stop -t 10 >>"$work/up-$tag.log" 2>&1; then
        pass "$label: compose stop -t 10"
    else
        fail "$label: compose stop -t 10"
    fi
    [[ ${KEEP_SERVER:-0} == 1 ]] && echo_checks_stopped "$label"

    log="$work/logs-$tag.txt"
    compose "$project" "$file" logs --no-color >"$log" 2>&1

    local bad=""
    for c in server $(for (( i = 1; i <= n; i++ )); do echo "client$i"; done); do
        [[ $(exit_code "$c") == 0 ]] || bad+="$c=$(exit_code "$c") "
    done
    check "$label: every container exited with code 0 ${bad:+(got: $bad)}" test -z "$bad"

    local fails
    fails=$(grep -c 'result: fail' "$log")
    check "$label: no 'result: fail' line in the logs (found $fails)" test "$fails" -eq 0
    (( fails > 0 )) && grep 'result: fail' "$log" | head -5

    check "$label: server config line says server_agencies: $n" \
        grep -q "action: config | result: success | .*server_agencies: $n\b" <(log_of "$log" server)

    local total=0 got want
    for (( i = 1; i <= n; i++ )); do
        want=$(expected_winners "$i")
        got=$(log_of "$log" "client$i" | sed -n 's/.*action: consulta_ganadores | result: success | cant_ganadores: \([0-9]*\).*/\1/p')
        check "$label: agency $i: cant_ganadores ${got:-<none>}, expected $want from .data/agency-$i.csv" \
            test "${got:-x}" == "$want"
        check "$label: agency $i logged 'action: exit | result: success'" \
            grep -q 'action: exit | result: success' <(log_of "$log" "client$i")
        total=$((total + $(data_rows "$i")))
    done

    if (( n > 0 )); then
        local sorteos stored received
        sorteos=$(log_of "$log" server | grep -c 'action: sorteo | result: success')
        check "$label: exactly one 'sorteo' line (got $sorteos)" test "$sorteos" -eq 1
        received=$(log_of "$log" server | sed -n 's/.*action: apuesta_recibida | result: success | cantidad: \([0-9]*\).*/\1/p' \
                   | awk '{ s += $1 } END { print s + 0 }')
        check "$label: sum of apuesta_recibida cantidad = $received, rows in the files = $total" \
            test "$received" -eq "$total"
        stored=$(log_of "$log" server | grep -c 'action: apuesta_almacenada | result: success')
        check "$label: apuesta_almacenada lines = $stored, rows in the files = $total" test "$stored" -eq "$total"
    fi
    check "$label: server logged 'action: exit | result: success'" \
        grep -q 'action: exit | result: success' <(log_of "$log" server)

    teardown_project "$project" "$file"
}

# ------------------------------------------------- (i) more agencies than handlers
# Before an agency waiting for the draw stopped holding a handler, 64 of
# them took the 64 handlers and the rest never reached the draw.
many_agencies() {
    local n=70 i
    for (( i = 6; i <= n; i++ )); do
        generated_files+=("$root/.data/agency-$i.csv")
        "$root/scripts/generate-bets.sh" "$i" 300 >"$root/.data/agency-$i.csv"
    done
    full_run "$n" i
    rm -f "${generated_files[@]}"
    generated_files=()
}

# ------------------------------------------------------------ (b) echo probe
expect_echo() { # expect_echo success|fail LABEL [ENV=VALUE...]
    local want=$1 label=$2; shift 2
    echo_out=$(env "$@" "$root/scripts/validar-echo-server.sh" 2>>"$work/echo.err")
    echo_rc=$?
    local want_rc=0; [[ $want == fail ]] && want_rc=1
    check "(b) echo: $label → '$echo_out' exit $echo_rc (want result: $want, exit $want_rc)" \
        test "$echo_out" == "action: test_echo_server | result: $want" -a "$echo_rc" -eq "$want_rc"
}

echo_checks_running() {
    local net="${project}_testing_net"
    expect_echo success "running server, network found from the server container"
    expect_echo success "running server, ECHO_NETWORK=$net" ECHO_NETWORK="$net"
    expect_echo success "running server, non-ASCII payload" ECHO_PAYLOAD="¿eco? lotería ñandú"
    expect_echo fail "network that does not exist" ECHO_NETWORK="${project}_no_such_net"
    expect_echo fail "wrong port" ECHO_PORT=1 ECHO_NETWORK="$net"

    # A peer that answers, but not with the echo: the ECHO frame with its last
    # byte changed (same length), served once by ncat on the same network.
    local payload="sonda de eco" fake="${project_prefix}-notecho"
    local n=${#payload}
    { printf '\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00'; printf '%b' "\\x$(printf '%02x' "$n")"; printf '%s' "${payload%?}X"; } \
        >"$work/not-echo.bin"
    extra_containers+=("$fake")
    docker create -i --name "$fake" --network "$net" ncat:local -v -l 12345 >/dev/null 2>&1
    docker start -a -i "$fake" <"$work/not-echo.bin" >/dev/null 2>&1 &
    local fake_pid=$!
    if wait_for_log "$fake" "Listening on" 20; then
        expect_echo fail "peer that answers a different frame of the same length" \
            ECHO_SERVER_HOST="$fake" ECHO_NETWORK="$net" ECHO_PAYLOAD="$payload"
    else
        fail "(b) echo: could not start the not-echo ncat peer"
    fi
    docker rm -f "$fake" >/dev/null 2>&1
    wait "$fake_pid" 2>/dev/null

    # A peer that accepts and never answers: the probe gives up in time.
    docker run -d --name "$fake" --network "$net" ncat:local -v -l -k 12345 --recv-only >/dev/null 2>&1
    if wait_for_log "$fake" "Listening on" 20; then
        local t0=$SECONDS
        expect_echo fail "peer that accepts and stays silent" \
            ECHO_SERVER_HOST="$fake" ECHO_NETWORK="$net" ECHO_TIMEOUT=3
        check "(b) echo: the silent peer's probe ended within its timeout ($((SECONDS - t0)) s)" \
            test $((SECONDS - t0)) -le 8
    else
        fail "(b) echo: could not start the silent ncat peer"
    fi
    docker rm -f "$fake" >/dev/null 2>&1
}

echo_checks_stopped() {
    expect_echo fail "stopped server" ECHO_NETWORK="${project}_testing_net"
}

# echo-only deployment: 0 agencies, SERVER_AGENCIES=0.
echo_only() {
    local label="(b) echo-only deployment (0 agencies)"
    new_deployment 0 echo0 || { fail "$label: generar-compose.sh 0"; return; }
    if ! compose "$project" "$file" up -d >"$work/up-echo0.log" 2>&1; then
        fail "$label: compose up -d"; tail -20 "$work/up-echo0.log"; return
    fi
    if wait_for_log server "action: listen | result: success" 30; then
        expect_echo success "echo-only deployment"
    else
        fail "$label: the server never logged 'action: listen'"
    fi
    compose "$project" "$file" stop -t 10 >/dev/null 2>&1
    check "$label: server exited with code 0 (got $(exit_code server))" test "$(exit_code server)" == 0
    check "$label: server logged 'action: exit | result: success'" \
        grep -q 'action: exit | result: success' <(docker logs server 2>&1)
    teardown_project "$project" "$file"
}

# ------------------------------------------------- (c) SIGTERM mid-run
sigterm_mid_run() {
    local label="(c) SIGTERM mid-run" i t0 elapsed log running=()
    new_deployment 5 sigterm || { fail "$label: generar-compose.sh 5"; return; }
    # The server waits for a 6th agency that never comes, so the draw cannot
    # happen and the agencies cannot finish before the stop, however fast the
    # machine; one bet per frame keeps the bets flowing for a while (the whole
    # run otherwise takes about 2 s).
    local override="$work/compose-sigterm-slow.yaml"
    { echo 'version: "3.8"'; echo 'services:'
      printf '  server:\n    environment:\n      - SERVER_AGENCIES=6\n'
      for (( i = 1; i <= 5; i++ )); do
          printf '  client%d:\n    environment:\n      - CLI_BATCH_MAXAMOUNT=1\n' "$i"
      done; } >"$override"
    file="$file:$override"
    projects[${#projects[@]}-1]="$project $file"
    # The server and agencies 2-5 first; agency 1 (27000 one-bet frames, the
    # most) last, so that it is surely sending when the server is stopped.
    if ! compose "$project" "$file" up -d server client2 client3 client4 client5 >"$work/up-sigterm.log" 2>&1 ||
       ! compose "$project" "$file" up -d client1 >>"$work/up-sigterm.log" 2>&1; then
        fail "$label: compose up -d"; tail -20 "$work/up-sigterm.log"; return
    fi
    if ! wait_for_log client1 "action: apuesta_enviada" 60; then
        fail "$label: client1 logged no apuesta_enviada within 60 s"
        teardown_project "$project" "$file"; return
    fi
    t0=$(date +%s.%N)
    docker stop -t 10 server >/dev/null
    elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    log=$(docker logs server 2>&1)
    local drawn=no received
    grep -q 'action: sorteo' <<<"$log" && drawn=yes
    check "$label: the stop came before the draw (no sorteo line)" test "$drawn" == no
    received=$(grep -c 'action: apuesta_recibida | result: success' <<<"$log")
    echo "note: $label: the server was stopped after $received of $(( $(data_rows 1) + $(data_rows 2) + $(data_rows 3) + $(data_rows 4) + $(data_rows 5) )) one-bet frames"
    check "$label: server exit code $(exit_code server) after docker stop -t 10 (took $elapsed s)" \
        test "$(exit_code server)" == 0
    check "$label: the server stopped within 2 s of SIGTERM ($elapsed s)" \
        awk -v e="$elapsed" 'BEGIN { exit !(e <= 2.5) }'
    check "$label: server logged 'action: exit | result: success'" \
        grep -q 'action: exit | result: success' <<<"$log"
    check "$label: server logged close lines (action: close_…)" grep -q 'action: close_' <<<"$log"
    check "$label: the server's last line is its exit line" \
        grep -q 'action: exit | result:' <<<"$(tail -n 1 <<<"$log")"
    local killed
    killed=$(grep -c 'action: handler_kill' <<<"$log")
    check "$label: every handler finished by itself ($killed handler_kill lines: handlers SIGKILLed at the deadline)" \
        test "$killed" -eq 0

    # The agencies (retrying, or parked on WINNERS) must also stop cleanly.
    for (( i = 1; i <= 5; i++ )); do is_running "client$i" && running+=("client$i"); done
    if (( ${#running[@]} > 0 )); then
        docker stop -t 10 "${running[@]}" >/dev/null
        local c bad=""
        for c in "${running[@]}"; do
            [[ $(exit_code "$c") == 0 ]] && docker logs "$c" 2>&1 | tail -n 1 | grep -q 'action: exit | result: success' \
                || bad+="$c(exit $(exit_code "$c")) "
        done
        check "$label: agencies stopped by SIGTERM while reconnecting (${running[*]}) exit 0 with an exit line ${bad:+— bad: $bad}" \
            test -z "$bad"
    else
        fail "$label: no agency was still running to stop (they cannot finish without a draw)"
    fi
    teardown_project "$project" "$file"
}

# ---------------------------------------------------- (e) generator output
generator_output() {
    local n f services want
    for n in 0 1 5; do
        f="$work/gen-$n.yaml"
        if ! "$root/scripts/generar-compose.sh" "$f" "$n" >/dev/null 2>&1; then
            fail "(e) generar-compose.sh $n exits 0"; continue
        fi
        check "(e) $n agencies: compose config -q accepts it" \
            compose "${project_prefix}gen$n" "$f" config -q
        services=$(compose "${project_prefix}gen$n" "$f" config --services 2>/dev/null | sort | tr '\n' ' ')
        want=$( { echo server; for (( i = 1; i <= n; i++ )); do echo "client$i"; done; } | sort | tr '\n' ' ')
        check "(e) $n agencies: services are [${services% }]" test "$services" == "$want"
        check "(e) $n agencies: SERVER_AGENCIES=$n" grep -q "SERVER_AGENCIES=$n\$" "$f"
        check "(e) $n agencies: no build: and no ports: (prebuilt images, no published ports)" \
            bash -c '! grep -Eq "^[[:space:]]*(build|ports):" "$1"' _ "$f"
        check "(e) $n agencies: config and data mounted read-only" \
            bash -c 'n=$2; grep -q "./config/server.ini:/config/server.ini:ro" "$1" &&
                     for (( i = 1; i <= n; i++ )); do grep -q "./.data/agency-$i.csv:/data/agency.csv:ro" "$1" || exit 1; done' _ "$f" "$n"
    done
    "$root/scripts/generar-compose.sh" "$work/dev.yaml" 5 >/dev/null 2>&1
    check "(e) docker-compose-dev.yaml is the generator's 5-agency output" \
        cmp -s "$work/dev.yaml" "$root/docker-compose-dev.yaml"
}

# ------------------------------------------------------ (f) bad arguments
generator_bad_args() {
    local args out rc
    local -a cases=("" "$work/x.yaml" "$work/x.yaml|abc" "$work/x.yaml|-1" "$work/x.yaml|1.5"
                    "$work/x.yaml||" "$work/x.yaml|5|extra" "|5" "$work/x.yaml|99999999")
    for args in "${cases[@]}"; do
        local -a argv=()
        [[ -n $args ]] && IFS='|' read -r -a argv <<<"$args"
        [[ $args == *"||" ]] && argv+=("")
        rm -f "$work/x.yaml"
        out=$("$root/scripts/generar-compose.sh" "${argv[@]}" 2>&1 >/dev/null)
        rc=$?
        local shown
        shown=$(printf "'%s' " "${argv[@]}"); shown=${shown//$work\//}
        check "(f) generar-compose.sh ${shown:-(no args)}→ exit $rc (want 2), usage on stderr, no file" \
            bash -c '[[ $1 == 2 && $2 == *usage:* && ! -e $3 ]]' _ "$rc" "$out" "$work/x.yaml"
    done
}

# ------------------------------------------ (g) config change, no rebuild
# The INI files are mounted, not baked in: a changed client.ini (maxAmount 10)
# takes effect on the next `up` while the images stay byte-for-byte the same.
config_without_rebuild() {
    local label="(g) config change without rebuild" dir="$work/project-g" log before after
    mkdir -p "$dir/config" "$dir/.data"
    cp "$root/config/server.ini" "$dir/config/"
    sed 's/^maxAmount = .*/maxAmount = 10/' "$root/config/client.ini" >"$dir/config/client.ini"
    cp "$root/.data/agency-5.csv" "$dir/.data/agency-1.csv"
    before=$(docker image inspect -f '{{.Id}}' server:latest client:latest)
    project="${project_prefix}g"
    file="$dir/docker-compose.yaml"
    "$root/scripts/generar-compose.sh" "$file" 1 >/dev/null 2>&1 || { fail "$label: generar-compose.sh 1"; return 1; }
    projects+=("$project $file")
    local run=("${compose_cmd[@]}" -f "$file" --project-directory "$dir" -p "$project")
    if ! "${run[@]}" up -d >"$work/up-g.log" 2>&1; then
        fail "$label: compose up -d"; tail -20 "$work/up-g.log"; return 1
    fi
    wait_clients 1 || fail "$label: the agency still runs after ${deadline_s} s"
    "${run[@]}" stop -t 10 >>"$work/up-g.log" 2>&1
    log="$work/logs-g.txt"
    "${run[@]}" logs --no-color >"$log" 2>&1
    check "$label: client1 runs with batch_max_amount: 10 from the mounted client.ini" \
        grep -q 'action: config | result: success | .*batch_max_amount: 10 ' <(log_of "$log" client1)
    local sizes
    sizes=$(log_of "$log" server | sed -n 's/.*action: apuesta_recibida | result: success | cantidad: \([0-9]*\).*/\1/p' | sort -un | tr '\n' ' ')
    check "$label: the server received batches of 10 (sizes seen: ${sizes:-none})" test "${sizes% }" == "10"
    check "$label: agency 1 got $(expected_winners 5) winners" \
        grep -q "action: consulta_ganadores | result: success | cant_ganadores: $(expected_winners 5)\$" <(log_of "$log" client1)
    after=$(docker image inspect -f '{{.Id}}' server:latest client:latest)
    check "$label: no image was rebuilt" test "$before" == "$after"
    teardown_project "$project" "$file"
}

# (h) SIGKILL of the server and of an agency mid-upload
# shellcheck source=tests/docker/kill_mid_upload.sh
source "$root/tests/docker/kill_mid_upload.sh"

# ------------------------------------------------------------------ run
selected() { [[ -z ${DOCKER_TEST_ONLY:-} || " $DOCKER_TEST_ONLY " == *" $1 "* ]]; }
selected f && generator_bad_args
selected e && generator_output
selected a && KEEP_SERVER=1 full_run 5 a
selected b && echo_only
selected c && sigterm_mid_run
selected d && full_run 3 d
selected g && config_without_rebuild
selected h && kill_mid_upload
selected i && many_agencies
summary_and_exit
