#!/usr/bin/env bash
# Checks that a running Lotería Nacional server answers (CONTRACT.md §8, exercise 3).
#
# Sends one ECHO frame (CONTRACT.md §5) with ncat from a throw-away container attached
# to the server's Docker network — no ncat on the host, no published ports —
# and compares the reply with what was sent, byte for byte. Prints exactly one
# line on stdout and exits accordingly:
#   action: test_echo_server | result: success     exit 0
#   action: test_echo_server | result: fail        exit 1
# (the reason for a failure goes to stderr).
#
# Usage: scripts/validar-echo-server.sh
#
# Environment (all optional):
#   ECHO_SERVER_HOST  host name to probe, also the container whose network is
#                     used by default                     (default: server)
#   ECHO_NETWORK      Docker network to attach the probe to (default: the first
#                     network of the container $ECHO_SERVER_HOST, e.g.
#                     <project>_testing_net for the generated compose files)
#   ECHO_IMAGE        image with ncat as its entrypoint   (default: ncat:local,
#                     built by docker/build-ncat-image.sh when missing)
#   ECHO_PORT         TCP port (default: SERVER_PORT of $ECHO_CONFIG, else 12345)
#   ECHO_CONFIG       server INI to read the port from    (default: config/server.ini)
#   ECHO_PAYLOAD      payload of the ECHO frame (default: an ASCII sentence)
#   ECHO_TIMEOUT      seconds the whole exchange may take (default: 10)
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
host=${ECHO_SERVER_HOST:-server}
image=${ECHO_IMAGE:-ncat:local}
config=${ECHO_CONFIG:-$root/config/server.ini}
payload=${ECHO_PAYLOAD:-hola servidor, esto es un eco}
timeout_s=${ECHO_TIMEOUT:-10}

work=""
probe="echo-probe-$$-$RANDOM"
cleanup() {
    docker rm -f "$probe" >/dev/null 2>&1 || true
    [[ -n $work ]] && rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "validar-echo-server: $*" >&2
    echo "action: test_echo_server | result: fail"
    exit 1
}

# SERVER_PORT from the [DEFAULT] section (or before any section) of the INI.
config_port() {
    [[ -r $config ]] || return 0
    awk '
        { sub(/\r$/, "") }
        /^[ \t]*[;#]/ { next }
        /^[ \t]*\[/ { s = $0; gsub(/[][ \t]/, "", s); section = s; next }
        (section == "" || section == "DEFAULT") && /^[ \t]*SERVER_PORT[ \t]*=/ {
            v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]*$/, "", v); port = v
        }
        END { if (port != "") print port }' "$config"
}

port=${ECHO_PORT:-$(config_port)}
port=${port:-12345}
[[ $port =~ ^[0-9]{1,5}$ ]] && (( 10#$port >= 1 && 10#$port <= 65535 )) \
    || fail "bad port '$port' (ECHO_PORT or SERVER_PORT in $config)"
port=$((10#$port))
[[ $timeout_s =~ ^[0-9]+$ ]] && (( timeout_s > 0 )) || fail "bad ECHO_TIMEOUT '$timeout_s'"

docker info >/dev/null 2>&1 || fail "no Docker engine answered"

if ! docker image inspect "$image" >/dev/null 2>&1; then
    if [[ $image == ncat:local && -x $root/docker/build-ncat-image.sh ]]; then
        echo "validar-echo-server: building $image" >&2
        "$root/docker/build-ncat-image.sh" "$image" >&2 || fail "cannot build $image"
    else
        fail "image $image not found (docker/build-ncat-image.sh builds ncat:local)"
    fi
fi

network=${ECHO_NETWORK:-}
if [[ -z $network ]]; then
    network=$(docker inspect -f '{{range $name, $_ := .NetworkSettings.Networks}}{{println $name}}{{end}}' \
                "$host" 2>/dev/null | sed -n '/./{p;q}')
    [[ -n $network ]] || fail "no running container '$host' to take the network from (set ECHO_NETWORK)"
fi
docker network inspect "$network" >/dev/null 2>&1 || fail "network '$network' does not exist"

# The ECHO frame: type u16 = 4, agency u32 = 0, first u32 = 0,
# count u16 = payload bytes, then the payload; all big-endian.
len=$(LC_ALL=C; printf '%s' "$payload" | wc -c)
(( len >= 1 && len <= 8192 - 12 )) || fail "payload must be 1..8180 bytes, got $len"
work=$(mktemp -d "${TMPDIR:-/tmp}/echo-probe.XXXXXX") || fail "mktemp failed"
{
    printf '\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00'
    printf "\\x$(printf '%02x' $((len >> 8)))\\x$(printf '%02x' $((len & 255)))"
    printf '%s' "$payload"
} > "$work/sent"
sent_bytes=$(wc -c < "$work/sent")
(( sent_bytes == 12 + len )) || fail "internal error: built a frame of $sent_bytes bytes"

# ncat sends the frame, half-closes at the end of its input and prints what it
# receives until the server closes. `-w` bounds the connect; `timeout` bounds
# the whole exchange even against a peer that never answers or never closes
# (ncat's own -i idle timer always waits its full length, so it is not used).
# Whatever arrived by then is compared: a complete, identical echo passes.
timeout -k 2 "$timeout_s" \
    docker run --rm -i --name "$probe" --network "$network" "$image" \
        -w "$timeout_s" "$host" "$port" < "$work/sent" > "$work/received" 2> "$work/ncat.err"
status=$?

if cmp -s "$work/sent" "$work/received"; then
    echo "action: test_echo_server | result: success"
    exit 0
fi

got=$(wc -c < "$work/received")
{
    echo "validar-echo-server: $host:$port on network $network: sent $sent_bytes bytes, received $got (docker/ncat exit $status)"
    echo "  sent:     $(od -An -tx1 -v "$work/sent" | tr -s ' \n' ' ' | cut -c1-120)"
    echo "  received: $(od -An -tx1 -v "$work/received" | tr -s ' \n' ' ' | cut -c1-120)"
    grep -v 'legacy provider' "$work/ncat.err" | sed 's/^/  ncat: /' | head -5
} >&2
fail "the reply is not the frame that was sent"
