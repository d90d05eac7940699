#!/usr/bin/env bash
# make mutants: proves that the tests catch broken guarantees. Each mutant
# below tests/mutants/ breaks one promise of docs/CONTRACT.md in a scratch
# copy of the tree; the tests named for it must then fail.
#
# Usage: tests/mutants/run.sh [NAME...]   (make mutants MUTANTS="NAME...")
#   NAME: a mutant's file name without .mutant; none: every mutant.
#   MUTANTS_TIMEOUT: seconds a test program may run per mutant (default 600).
#
# A mutant is tests/mutants/NAME.mutant: header lines "Key: value", then one
# or more find/replace pairs, then "--- end ---". Lines starting with # are
# comments.
#
#   Guarantee:   what breaks, citing docs/CONTRACT.md's section (free text)
#   File:        the product file mutated, from the repository root
#   Unit:        gtest filter of bin/unit_tests that must catch it (optional)
#   Integration: gtest filter of bin/integration_tests that must (optional)
#   Tried:       other tests tried, or why it survives today (optional)
#   --- find ---
#   exact text: these lines, joined by newlines, without the last newline;
#   it must occur exactly once in File (otherwise the mutant is STALE)
#   --- replace ---
#   the text put in its place (no lines: the text is deleted)
#   --- end ---
# With several pairs, each is looked up in the text the earlier ones left.
# A filter may name a test not written yet: it runs nothing (SURVIVED, and
# the line says which patterns match no test).
#
# What it does: copies the repository's files (git ls-files: tracked and
# untracked-but-not-ignored) into build/mutants/tree, copying only the files
# that differ so that the build there stays incremental across runs; builds
# bin/server, bin/client, bin/unit_tests and bin/integration_tests there and
# runs every named test on the unmutated copy (a baseline: a test that fails
# already catches nothing, so a failure aborts the run). Then for each
# mutant: applies it, rebuilds the binaries its tests need, runs only its
# tests, restores the file. Verdicts:
#   CAUGHT    a named test failed (or a test program crashed or timed out)
#   SURVIVED  every test passed; also when the filters match no test yet
#   BROKEN    the mutant does not build (a build failure is not a catch)
#   STALE     a find text does not occur exactly once, or File is missing
# One line per mutant with its time, then a summary; the full output of
# each is in build/mutants/logs/NAME.log, whose tail is shown for SURVIVED
# and BROKEN. Exit 0 when every mutant was caught, 1 otherwise, 2 on a
# usage error or a failed baseline.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mutants_dir=$root/tests/mutants
work=$root/build/mutants
tree=$work/tree
logs=$work/logs
timeout_s=${MUTANTS_TIMEOUT:-600}
cd "$root" || exit 2

say() { printf '%s\n' "$*"; }
die() { say "mutants: $*" >&2; exit 2; }
seconds_since() { echo $(( $(date +%s) - $1 )); }

# ---- reading a mutant --------------------------------------------------------------

# parse FILE: sets m_file, m_guarantee, m_unit, m_integ and the arrays m_find,
# m_replace (one entry per pair). False, with m_error, if malformed.
value() { local v=${1#*:}; v=${v#"${v%%[! ]*}"}; printf '%s' "${v%"${v##*[! ]}"}"; }
parse() {
    m_file='' m_guarantee='' m_unit='' m_integ='' m_error=''
    m_find=() m_replace=()
    local line section=header text='' first=1 i
    while IFS= read -r line || [[ -n $line ]]; do
        case $section:$line in
            *:'--- find ---'|*:'--- replace ---'|*:'--- end ---')
                [[ $section == find ]] && m_find+=("$text")
                [[ $section == replace ]] && m_replace+=("$text")
                text='' first=1
                case $line in
                    '--- find ---') section=find ;;
                    '--- replace ---') section=replace ;;
                    *) section=end ;;
                esac ;;
            header:'#'*|header:'') ;;
            header:File:*) m_file=$(value "$line") ;;
            header:Guarantee:*) m_guarantee=$(value "$line") ;;
            header:Unit:*) m_unit=$(value "$line") ;;
            header:Integration:*) m_integ=$(value "$line") ;;
            header:*:*) ;; # Tried: and other free text
            header:*) m_error="header line without 'Key:': $line"; return 1 ;;
            find:*|replace:*)
                if ((first)); then text=$line; first=0; else text+=$'\n'$line; fi ;;
            end:*) ;;
        esac
    done <"$1"
    [[ $section == end ]] || { m_error="no '--- end ---' line"; return 1; }
    [[ -n $m_file ]] || { m_error="no File: line"; return 1; }
    [[ -n $m_guarantee ]] || { m_error="no Guarantee: line"; return 1; }
    [[ -n $m_unit$m_integ ]] || { m_error="no Unit: or Integration: filter"; return 1; }
    (( ${#m_find[@]} > 0 && ${#m_find[@]} == ${#m_replace[@]} )) ||
        { m_error="find and replace blocks do not pair up"; return 1; }
    for i in "${!m_find[@]}"; do
        [[ -n ${m_find[$i]} ]] || { m_error="an empty find text"; return 1; }
        [[ ${m_find[$i]} != "${m_replace[$i]}" ]] || { m_error="a replacement equal to its find text"; return 1; }
    done
}

# count TEXT NEEDLE: how many times NEEDLE occurs in TEXT (not overlapping).
count() {
    local rest=$1 n=0
    while [[ $rest == *"$2"* ]]; do rest=${rest#*"$2"}; n=$((n + 1)); done
    echo "$n"
}

# mutate PATH: applies the parsed pairs to PATH in place. False, with
# m_error, if a find text does not occur exactly once (checked before the
# file is touched: each on the text the earlier pairs left).
mutate() {
    local content i n
    content=$(cat "$1"; printf x); content=${content%x} # the trailing newlines too
    for i in "${!m_find[@]}"; do
        n=$(count "$content" "${m_find[$i]}")
        if [[ $n != 1 ]]; then
            m_error="find text $((i + 1)) occurs $n times in $m_file: $(head -n1 <<<"${m_find[$i]}")"
            return 1
        fi
        content=${content%%"${m_find[$i]}"*}${m_replace[$i]}${content#*"${m_find[$i]}"}
    done
    printf '%s' "$content" >"$1"
}

# ---- the scratch tree ---------------------------------------------------------------

# Copies every file of the repository that differs into the tree (a new
# mtime, so make rebuilds what depends on it) and deletes the files the
# repository no longer has; build/ and bin/ of the tree are kept.
sync_tree() {
    mkdir -p "$tree" "$logs"
    local wanted=$work/files path copied=0
    git ls-files -z --cached --others --exclude-standard | sort -zu >"$wanted"
    while IFS= read -r -d '' path; do
        [[ -f $path ]] || continue # deleted but not yet git rm'd
        if ! cmp -s "$path" "$tree/$path"; then
            mkdir -p "$tree/$(dirname "$path")" && cp "$path" "$tree/$path" || die "cannot copy $path"
            copied=$((copied + 1))
        fi
    done <"$wanted"
    (cd "$tree" && find . \( -path ./build -o -path ./bin \) -prune -o -type f -printf '%P\0' | sort -z) |
        comm -z -23 - "$wanted" | (cd "$tree" && xargs -0 -r rm -f --)
    say "tree: build/mutants/tree ($copied files copied)"
}

# build LOG TARGET...: the tree's make (it sets -j to every core itself).
build() {
    local log=$1; shift
    (cd "$tree" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory "$@") >>"$log" 2>&1
}

# ---- running tests --------------------------------------------------------------------

# group_params: test names, one a line, as one line; the instances of a
# parameterized test as one "Suite.Test/* (N)".
group_params() {
    awk '{ name = $0; if (name ~ /\.[^.]*\//) sub(/\/[^\/]*$/, "/*", name)
           if (!(name in count)) order[++names] = name; count[name]++ }
         END { for (i = 1; i <= names; i++)
                   printf "%s%s%s", (i > 1 ? " " : ""), order[i], (count[order[i]] > 1 ? " (" count[order[i]] ")" : "") }'
}

# run_gtest LOG PROGRAM FILTER: runs PROGRAM's tests matching FILTER in the
# tree; sets ran (tests run), failed (their names, or why the program ended)
# and returns its exit status.
run_gtest() {
    local log=$1 program=$2 filter=$3 status start
    start=$(wc -l <"$log")
    {
        say "\$ $program --gtest_filter='$filter'"
        (cd "$tree" && LOTERIA_BIN=bin timeout --kill-after=10 "$timeout_s" "bin/$program" --gtest_filter="$filter" 2>&1)
    } >>"$log"
    status=$?
    ran=$(tail -n +"$((start + 1))" "$log" | sed -n 's/^\[==========\] \([0-9]*\) tests\{0,1\} from .* ran\..*/\1/p' | tail -n1)
    ran=${ran:-0}
    failed=$(tail -n +"$((start + 1))" "$log" | sed -n 's/^\[  FAILED  \] \([^ ,]*\).*/\1/p' | grep -v '^[0-9]' |
             sort -u | group_params)
    if ((status == 124 || status == 137)); then failed="${failed:+$failed }$program timed out after ${timeout_s}s"
    elif ((status != 0)) && [[ -z $failed ]]; then failed="$program exited $status"
    fi
    return "$status"
}

# unmatched PROGRAM FILTER: the positive patterns of FILTER that match no test.
unmatched() {
    local program=$1 positive=${2%%-*} pattern
    local IFS=:
    for pattern in $positive; do
        [[ -n $pattern ]] || continue
        (cd "$tree" && "bin/$program" --gtest_list_tests --gtest_filter="$pattern" 2>/dev/null) | grep -q '^  ' ||
            printf '%s ' "$pattern"
    done
}

# ---- which mutants ------------------------------------------------------------------

names=()
if (($# == 0)); then
    for file in "$mutants_dir"/*.mutant; do [[ -e $file ]] && names+=("$(basename "$file" .mutant)"); done
    ((${#names[@]} > 0)) || die "no mutant in tests/mutants/"
else
    for name in $*; do # "a b" as one argument too
        name=${name%.mutant}
        [[ -f $mutants_dir/$name.mutant ]] || die "no mutant '$name' (the files in tests/mutants/: $(cd "$mutants_dir" && ls *.mutant | sed 's/\.mutant$//' | paste -sd' '))"
        names+=("$name")
    done
fi

# The union of the filters, for the baseline; a malformed mutant stops here.
unit_all='' integ_all=''
for name in "${names[@]}"; do
    parse "$mutants_dir/$name.mutant" || die "$name.mutant: $m_error"
    # Only the positive patterns: a mutant's negative ones apply to its own run.
    [[ -n ${m_unit%%-*} ]] && unit_all+=${unit_all:+:}${m_unit%%-*}
    [[ -n ${m_integ%%-*} ]] && integ_all+=${integ_all:+:}${m_integ%%-*}
done

# ---- baseline ------------------------------------------------------------------

run_start=$(date +%s)
current='' # the tree file mutated right now, restored on any exit
restore() { [[ -n $current ]] && cp "$work/original" "$tree/$current"; current=''; }
trap 'restore' EXIT
trap 'restore; exit 130' INT TERM

sync_tree
base_log=$logs/baseline.log
: >"$base_log"
start=$(date +%s)
if ! build "$base_log" bin/server bin/client bin/unit_tests bin/integration_tests; then
    tail -n 30 "$base_log"
    die "baseline: the unmutated tree does not build (build/mutants/logs/baseline.log)"
fi
base_ran=0
for kind in unit integ; do
    if [[ $kind == unit ]]; then filter=$unit_all program=unit_tests; else filter=$integ_all program=integration_tests; fi
    [[ -n $filter ]] || continue
    positive=$(tr ':' '\n' <<<"$filter" | grep -v '^$' | sort -u | paste -sd:)
    if ! run_gtest "$base_log" "$program" "$positive"; then
        tail -n 30 "$base_log"
        die "baseline: $failed fails on the unmutated tree: it catches nothing (build/mutants/logs/baseline.log)"
    fi
    base_ran=$((base_ran + ran))
    pending=$(unmatched "$program" "$positive")
    [[ -z $pending ]] || say "baseline: no test matches yet in $program: ${pending% }"
done
say "baseline: $base_ran tests pass on the unmutated tree ($(seconds_since "$start")s)"

# ---- the mutants --------------------------------------------------------------------

declare -A verdicts=()
width=0
for name in "${names[@]}"; do ((${#name} > width)) && width=${#name}; done
for name in "${names[@]}"; do
    parse "$mutants_dir/$name.mutant"
    log=$logs/$name.log
    : >"$log"
    start=$(date +%s)
    verdict='' detail=''
    if [[ ! -f $tree/$m_file ]]; then
        verdict=STALE detail="no file $m_file"
    else
        cp "$tree/$m_file" "$work/original"
        current=$m_file # from here on, restore() puts it back whatever happens
        if ! mutate "$tree/$m_file"; then
            verdict=STALE detail=$m_error current='' # untouched
        else
            { say "mutant $name: $m_file"; diff -u "$work/original" "$tree/$m_file"; } >>"$log"
            targets=()
            [[ -n $m_unit ]] && targets+=(bin/unit_tests)
            [[ -n $m_integ ]] && targets+=(bin/server bin/client bin/integration_tests)
            if ! build "$log" "${targets[@]}"; then
                verdict=BROKEN detail="does not build"
            else
                caught='' total=0 pending=''
                if [[ -n $m_unit ]]; then
                    run_gtest "$log" unit_tests "$m_unit" || caught+="${caught:+ }$failed"
                    total=$((total + ran)); pending+=$(unmatched unit_tests "$m_unit")
                fi
                if [[ -n $m_integ ]]; then
                    run_gtest "$log" integration_tests "$m_integ" || caught+="${caught:+ }$failed"
                    total=$((total + ran)); pending+=$(unmatched integration_tests "$m_integ")
                fi
                if [[ -n $caught ]]; then
                    verdict=CAUGHT detail="by $caught"
                elif ((total == 0)); then
                    verdict=SURVIVED detail="0 tests ran: no test matches the filters yet (${pending% })"
                else
                    verdict=SURVIVED detail="$total tests passed${pending:+; not written yet: ${pending% }}"
                fi
            fi
        fi
        restore # a new mtime: the next build recompiles the restored file
    fi
    verdicts[$verdict]=$(( ${verdicts[$verdict]:-0} + 1 ))
    printf '%-8s  %-*s  %4ss  %s\n' "$verdict" "$width" "$name" "$(seconds_since "$start")" "$detail"
    [[ $verdict == STALE ]] && say "$m_error" >>"$log"
    if [[ $verdict == SURVIVED || $verdict == BROKEN ]]; then
        tail -n 15 "$log" | sed 's/^/    | /'
    fi
done

total=${#names[@]}
printf 'mutants: %d run in %ss: %d caught, %d survived, %d broken, %d stale (logs: build/mutants/logs/)\n' \
    "$total" "$(seconds_since "$run_start")" "${verdicts[CAUGHT]:-0}" "${verdicts[SURVIVED]:-0}" \
    "${verdicts[BROKEN]:-0}" "${verdicts[STALE]:-0}"
(( ${verdicts[CAUGHT]:-0} == total ))
