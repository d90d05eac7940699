#!/usr/bin/env bash
# Test that the repository stands alone: no file names the course's notes,
# which live outside it (a parent directory named "shared", the brief's
# "SPEC"). Comments cite docs/CONTRACT.md instead. Run by `make doc-check`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

# The files a clone holds (git's list when there is one), minus this test and
# protocol_doc_test.cpp, which name the patterns to look for them.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -d '' -t files < <(git ls-files -z)
else
    mapfile -d '' -t files < <(find . -type f -not -path './.git/*' -not -path './build/*' -not -path './bin/*' \
                               -not -path './.bench/*' -printf '%P\0')
fi
checked=()
for file in "${files[@]}"; do
    case $file in tests/docs/stands_alone_test.sh | tests/common/protocol_doc_test.cpp) continue ;; esac
    [[ -f $file ]] && checked+=("$file")
done
(( ${#checked[@]} > 0 )) || { echo "FAIL: no file to check"; exit 1; }
# grep: 0 = found (fail), 1 = nothing found (pass), anything else = an error.
status=0
hits=$(grep -I -n -w -F -e 'SPEC' -e '../shared' -- "${checked[@]}") || status=$?
if (( status == 0 )); then
    echo "FAIL: these lines name the course's notes outside the repository (cite docs/CONTRACT.md):"
    echo "$hits"
    exit 1
fi
(( status == 1 )) || { echo "FAIL: grep could not read the files (exit $status)"; exit 1; }
echo "stands-alone test: ${#checked[@]} files name nothing outside the repository"
