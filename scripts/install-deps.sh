#!/usr/bin/env bash
# The one list of system packages the project needs, by group, and the one
# place that installs them (Debian/Ubuntu, apt-get). The Makefile runs it
# before a target that needs a group; .ci/run runs it with `ci`.
#
# Usage: scripts/install-deps.sh [--check] GROUP...
#   build   g++ make                   make build, make run: nothing else
#   test    libgtest-dev               make test (GoogleTest)
#   docker  ncat                       make docker-image (copied into the probe image)
#   fuzz    clang libclang-rt-14-dev   make fuzz (libFuzzer and its runtimes)
#   bench   strace                     make bench BENCH_STRACE=1 only
#   ci      every group                .ci/run
#
# Everything present: prints nothing, exits 0 at once (file and command tests).
# Something missing: installs it with apt-get as root, or sudo apt-get. When it
# cannot (not root and no sudo) or may not (--check; INSTALL_DEPS=0 in make),
# it prints one line with the command to run and exits 2.
set -euo pipefail

me=scripts/install-deps.sh
declare -A packages=(
    [build]="g++ make"
    [test]="libgtest-dev"
    [docker]="ncat"
    [fuzz]="clang libclang-rt-14-dev"
    [bench]="strace"
)
packages[ci]="${packages[build]} ${packages[test]} ${packages[docker]} ${packages[fuzz]} ${packages[bench]}"

# present PACKAGE: is what the build uses from it already there?
present() {
    case $1 in
        libgtest-dev) [[ -f /usr/include/gtest/gtest.h || -f /usr/local/include/gtest/gtest.h ]] ;;
        ncat) [[ -x ${NCAT_BIN:-/usr/bin/ncat} ]] ;;
        clang) command -v clang++ ;;
        libclang-rt-14-dev) [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]] ;;
        *) command -v "$1" ;;
    esac >/dev/null 2>&1
}

check_only=0
if [[ ${1:-} == --check ]]; then check_only=1; shift; fi
(( $# > 0 )) || { echo "usage: $me [--check] {build|test|docker|fuzz|bench|ci}..." >&2; exit 2; }
missing=()
for group in "$@"; do
    [[ -n ${packages[$group]:-} ]] || { echo "$me: unknown group '$group' (build test docker fuzz bench ci)" >&2; exit 2; }
    for pkg in ${packages[$group]}; do
        [[ " ${missing[*]} " == *" $pkg "* ]] || present "$pkg" || missing+=("$pkg")
    done
done
(( ${#missing[@]} == 0 )) && exit 0

if ! command -v apt-get >/dev/null; then
    echo "$me: missing ${missing[*]}; there is no apt-get here, install them with the system's package manager" >&2
    exit 2
fi
sudo=""
(( EUID == 0 )) || ! command -v sudo >/dev/null || sudo="sudo "
command="${sudo}apt-get update && ${sudo}apt-get install -y ${missing[*]}"
if (( check_only )); then
    echo "$me: missing ${missing[*]}; to install, run: $command" >&2
    exit 2
fi
if (( EUID != 0 )) && [[ -z $sudo ]]; then
    echo "$me: missing ${missing[*]} and not root (no sudo); as root, run: $command" >&2
    exit 2
fi

echo "$me: installing ${missing[*]} (${sudo}apt-get)"
# Lock timeout: another apt-get on the machine makes this one wait, not fail.
apt=(env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get -q -o DPkg::Lock::Timeout=300)
[[ -z $sudo ]] || apt=(sudo "${apt[@]}")
"${apt[@]}" update >/dev/null || { echo "$me: apt-get update failed; run: $command" >&2; exit 1; }
"${apt[@]}" install -y "${missing[@]}" | grep -E '^Setting up' || true
for pkg in "${missing[@]}"; do
    present "$pkg" || { echo "$me: apt-get did not install $pkg; run: $command" >&2; exit 1; }
done
echo "$me: installed ${missing[*]}"
