#!/usr/bin/env bash
# Builds the ncat:local image (docker/ncat.Dockerfile) FROM scratch out of the
# host's /usr/bin/ncat (Debian package `ncat`), the shared libraries `ldd`
# lists for it and the dynamic loader. No registry is needed.
#
# Usage: docker/build-ncat-image.sh [TAG]     (default TAG: ncat:local)
# Env:   NCAT_BIN  the ncat binary to package (default: /usr/bin/ncat)
set -euo pipefail

tag=${1:-ncat:local}
ncat_bin=${NCAT_BIN:-/usr/bin/ncat}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ ! -x $ncat_bin ]]; then
    echo "build-ncat-image: $ncat_bin not found; install it with: apt-get install ncat" >&2
    exit 1
fi
command -v ldd >/dev/null || { echo "build-ncat-image: ldd not found" >&2; exit 1; }

ctx=$(mktemp -d "${TMPDIR:-/tmp}/ncat-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs

# Copies file $1 into the root file system at path $2 (default: $1), following
# symlinks so the image gets the real bytes under the name the loader asks for.
put() {
    local src=$1 dst=${2:-$1}
    mkdir -p "$root$(dirname "$dst")"
    cp -L "$src" "$root$dst"
}

put "$ncat_bin" /usr/bin/ncat

# ldd lines look like
#   libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x...)
#   /lib64/ld-linux-x86-64.so.2 (0x...)
#   linux-vdso.so.1 (0x...)                     <- provided by the kernel
libs=$(ldd "$ncat_bin" | awk '
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $2 == "=>" && $3 == "not" { print "MISSING " $1; next }
    $1 ~ /^\// { print $1 }')
if grep -q '^MISSING' <<<"$libs"; then
    echo "build-ncat-image: ldd reports missing libraries:" >&2
    grep '^MISSING' <<<"$libs" >&2
    exit 1
fi
loader_found=0
while read -r lib; do
    [[ -n $lib ]] || continue
    put "$lib"
    case $lib in */ld-linux*) loader_found=1 ;; esac
done <<<"$libs"
if (( ! loader_found )); then
    # ldd always lists the loader of a dynamic binary; be safe anyway.
    loader=$(readelf -l "$ncat_bin" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    [[ -n $loader ]] && put "$loader"
fi

# Name resolution (the probe reaches the compose service by name): glibc reads
# these when present; the container runtime adds /etc/hosts and resolv.conf.
mkdir -p "$root/etc" "$root/tmp"
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"

cp "$here/ncat.Dockerfile" "$ctx/Dockerfile"
if ! out=$(docker build -q -t "$tag" "$ctx" 2>&1); then
    printf '%s\n' "$out" >&2
    echo "build-ncat-image: docker build failed" >&2
    exit 1
fi
echo "build-ncat-image: built $tag from $ncat_bin ($(wc -l <<<"$libs") libraries)"
