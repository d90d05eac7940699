#!/usr/bin/env bash
# make run: the server and five agencies on loopback, each agency's winners
# printed at the end. Usage: scripts/run-local.sh [BIN_DIR]
# The server picks a free port (SERVER_PORT=0) and says which in its `listen`
# log line; the agencies are started once that line is there. Logs and the bet
# store go to a temporary directory that is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin}
agencies=${AGENCIES:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/loteria-run.XXXXXX")
server_log="$work/server.log"

SERVER_PORT=0 SERVER_IP=127.0.0.1 SERVER_AGENCIES=$agencies SERVER_BETS_FILE="$work/bets.csv" \
  "$bin/server" --config config/server.ini >"$server_log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT

port=""
for _ in $(seq 1 500); do  # wait (up to ~5 s) for the `listen` line, not a fixed sleep
  port=$(sed -n 's/.*action: listen | result: success | .*port: \([0-9]*\).*/\1/p' "$server_log")
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$server_log"; exit 1; }
  sleep 0.01
done
[ -n "$port" ] || { echo "server did not start"; cat "$server_log"; exit 1; }

start=$(date +%s.%N)
pids=()
for id in $(seq 1 "$agencies"); do
  CLI_ID=$id CLI_SERVER_ADDRESS="127.0.0.1:$port" "$bin/client" --config config/client.ini \
    >"$work/agency-$id.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
end=$(date +%s.%N)

kill -TERM "$server_pid"; wait "$server_pid" || status=1
trap - EXIT

bets=$(grep -c 'action: apuesta_almacenada' "$server_log" || true)
echo "Lotería Nacional: $agencies agencies, $bets bets stored, $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.3f", b-a}') s from first agency start to last agency exit"
for id in $(seq 1 "$agencies"); do
  winners=$(sed -n 's/.*action: consulta_ganadores | result: success | cant_ganadores: \([0-9]*\).*/\1/p' "$work/agency-$id.log")
  documents=$(sed -n 's/.*action: ganadores | result: success | agencia: [0-9]* | dni: \(.*\)$/\1/p' "$work/agency-$id.log")
  echo "  agency $id: ${winners:-?} winners${documents:+ (DNI $documents)}"
done
echo "logs and bet store: $work"
grep -h 'result: fail' "$work"/*.log && status=1
exit $status
