#!/usr/bin/env bash
# Regenerates the committed agency data files .data/agency-1.csv … agency-5.csv
# with scripts/generate-bets.sh and the default seed. Reproducible: running it
# and then `git diff --exit-code .data` must show no changes.
#
#   agency  rows   winners (rows with number 7574)
#   1       27000  6
#   2       25000  4
#   3       16000  5
#   4        9000  0   (an agency with no winners)
#   5        1000  3
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
gen="$root/scripts/generate-bets.sh"
mkdir -p "$root/.data"

while read -r agency rows winners; do
    out="$root/.data/agency-$agency.csv"
    "$gen" "$agency" "$rows" - "$winners" > "$out.tmp"
    mv "$out.tmp" "$out"
done <<'TABLE'
1 27000 6
2 25000 4
3 16000 5
4 9000 0
5 1000 3
TABLE
