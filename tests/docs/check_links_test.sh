#!/usr/bin/env bash
# Test of scripts/check-links.sh (run by `make doc-check`): each fixture in
# tests/docs/fixtures/ is a small repository; the check must pass the good one
# and fail each broken one with exit 1 and a line that names the problem.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
check=$here/../../scripts/check-links.sh
fixtures=$here/fixtures

failed=0
# expect FIXTURE EXIT_CODE TEXT: the check on FIXTURE exits EXIT_CODE and says TEXT.
expect() {
    local fixture=$1 want=$2 text=$3 out code=0
    out=$("$check" --root "$fixtures/$fixture" 2>&1) || code=$?
    if [[ $code != "$want" ]]; then
        echo "FAIL: check-links on $fixture exited $code, expected $want:"; echo "$out"; failed=1
    elif [[ $out != *"$text"* ]]; then
        echo "FAIL: check-links on $fixture did not say '$text':"; echo "$out"; failed=1
    fi
}

expect good               0 "13 relative links in 2 files, all good"
expect broken-file        1 "README.md:3: broken link (docs/MISSING.md): no such file"
expect broken-anchor      1 "README.md:3: broken link (docs/GUIDE.md#no-such-heading): no heading with the anchor"
expect broken-code-anchor 1 "README.md:3: broken link (docs/GUIDE.md#not-a-heading): no heading with the anchor"
expect outside            1 "README.md:3: broken link (../good/README.md): it leaves the repository"

if (( failed )); then exit 1; fi
echo "check-links test: a good fixture passes; a missing file, a missing heading and a link out of the repository fail"
