#!/usr/bin/env bash
# Test that `make help` names every target the Makefile declares .PHONY
# (its own and those of docker/docker.mk, tests/fuzz/fuzz.mk, bench/bench.mk),
# each on a line of its own: "make NAME  what it does" (NAME may be "[a|b]").
# Run by `make doc-check`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# -q exits non-zero (the target ":" is not up to date); only the database counts.
declared=$({ MAKEFLAGS= make -C "$root" -pRrq : 2>/dev/null || true; } | sed -n 's/^\.PHONY: //p' | tr ' ' '\n' | sort -u)
listed=$(MAKEFLAGS= make -C "$root" --no-print-directory -s help | awk '$1 == "make" { print $2 }' \
         | tr -d '[]' | tr '|' '\n' | sort -u)
[[ -n $declared ]] || { echo "FAIL: make -p declared no .PHONY target"; exit 1; }
missing=$(comm -23 <(echo "$declared") <(echo "$listed"))
if [[ -n $missing ]]; then
    echo "FAIL: make help does not list: $(tr '\n' ' ' <<<"$missing")"
    exit 1
fi
echo "make help test: all $(echo "$declared" | wc -l) targets listed"
