#!/usr/bin/env bash
# Checks the relative Markdown links of the docs (run by `make doc-check`,
# which `make test` runs): each link must point at a file or directory inside
# the repository, and a #anchor at a heading of its target file.
#
# Usage: scripts/check-links.sh [--root DIR] [FILE...]
#   DIR   the repository root (default: the one this script is in)
#   FILE  Markdown files, relative to DIR (default: README.md docs/*.md)
# Links with a scheme (https:, mailto:) are not checked; links inside code
# (fenced blocks, `spans`) are not links. Anchors are GitHub's heading slugs:
# lower case, punctuation dropped, each space a '-', letters such as "í" kept,
# "-1", "-2"… appended to repeated headings. Exit 0 when all links are good,
# 1 otherwise (one line per broken link), 2 on a usage error.
set -euo pipefail
export LC_ALL=C.UTF-8   # ${s,,} and [:alnum:] must know "Í" and "í"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ${1:-} == --root ]]; then
    [[ -d ${2:-} ]] || { echo "usage: $0 [--root DIR] [FILE...]" >&2; exit 2; }
    root=$(cd "$2" && pwd); shift 2
fi
cd "$root"
files=("$@")
if (( ${#files[@]} == 0 )); then
    files=(README.md)
    for f in docs/*.md; do [[ -e $f ]] && files+=("$f"); done
fi

# scan FILE: one record per heading ("H<TAB>line<TAB>text") and per link
# ("L<TAB>line<TAB>target"), outside code. Plain awk (mawk has no {m,n}, no gensub).
scan() {
    awk '
        /^ ? ? ?(```|~~~)/ { fence = !fence; next }
        fence { next }
        {
            line = $0
            if (line ~ /^#+[ \t]/ && line !~ /^#######/) {
                h = line
                sub(/^#+[ \t]+/, "", h); sub(/[ \t]+#+[ \t]*$/, "", h); sub(/[ \t]+$/, "", h)
                gsub(/`/, "", h)
                while (match(h, /\[[^]]*\]\([^)]*\)/)) {   # [text](url) -> text
                    inner = substr(h, RSTART + 1, RLENGTH - 1); sub(/\]\(.*$/, "", inner)
                    h = substr(h, 1, RSTART - 1) inner substr(h, RSTART + RLENGTH)
                }
                print "H\t" NR "\t" h
            }
            gsub(/`[^`]*`/, "", line)
            if (match(line, /^ ? ? ?\[[^]]+\]:[ \t]+[^ \t]+/)) {   # [id]: target
                t = substr(line, RSTART, RLENGTH); sub(/^[^]]*\]:[ \t]+/, "", t)
                print "L\t" NR "\t" t
                next
            }
            while (match(line, /\]\([^)]*\)/)) {                   # [text](target "title")
                t = substr(line, RSTART + 2, RLENGTH - 3)
                sub(/^[ \t]+/, "", t)
                if (t ~ /^</) { sub(/^</, "", t); sub(/>.*$/, "", t) } else sub(/[ \t].*$/, "", t)
                print "L\t" NR "\t" t
                line = substr(line, RSTART + RLENGTH)
            }
        }' "$1"
}

# slug TEXT: the anchor GitHub gives a heading with that text.
slug() {
    local s=${1,,}
    s=${s//[^[:alnum:] _-]/}
    REPLY=${s// /-}
}

# has_anchor FILE ANCHOR: does a heading of FILE have that anchor? (cached)
declare -A anchor_cache=()
has_anchor() {
    if [[ -z ${anchor_cache[$1]+set} ]]; then
        local kind n text list=$'\n'
        local -A seen=()
        while IFS=$'\t' read -r kind n text; do
            [[ $kind == H ]] || continue
            slug "$text"
            if [[ -n ${seen[$REPLY]+set} ]]; then
                seen[$REPLY]=$(( seen[$REPLY] + 1 )); list+="$REPLY-${seen[$REPLY]}"$'\n'
            else
                seen[$REPLY]=0; list+="$REPLY"$'\n'
            fi
        done < <(scan "$1")
        anchor_cache[$1]=$list
    fi
    [[ ${anchor_cache[$1]} == *$'\n'"$2"$'\n'* ]]
}

# url_decode TEXT: %C3%AD -> í.
url_decode() { printf -v REPLY '%b' "${1//%/\\x}"; }

broken=0
links=0
for file in "${files[@]}"; do
    [[ -f $file ]] || { echo "$file: no such file to check" >&2; broken=$((broken + 1)); continue; }
    dir=$(dirname "$file")
    while IFS=$'\t' read -r kind n target; do
        [[ $kind == L ]] || continue
        [[ $target =~ ^[A-Za-z][A-Za-z0-9+.-]*: ]] && continue   # https:, mailto:
        links=$((links + 1))
        path=${target%%#*}
        anchor=""
        [[ $target == *'#'* ]] && anchor=${target#*#}
        url_decode "$path"; path=$REPLY
        url_decode "$anchor"; anchor=$REPLY
        problem=""
        if [[ -z $path ]]; then
            resolved=$file
        elif [[ $path == /* ]]; then
            resolved=${path#/}                          # GitHub: from the repository root
        else
            resolved=$(realpath -m --relative-to=. "$dir/$path")
        fi
        abs=$(realpath -m "$resolved")
        if [[ $abs != "$root" && $abs != "$root"/* ]]; then
            problem="it leaves the repository"
        elif [[ ! -e $resolved ]]; then
            problem="no such file: $resolved"
        elif [[ -n $anchor && $resolved == *.md ]] && ! has_anchor "$resolved" "$anchor"; then
            problem="no heading with the anchor #$anchor in $resolved"
        fi
        if [[ -n $problem ]]; then
            echo "$file:$n: broken link ($target): $problem"
            broken=$((broken + 1))
        fi
    done < <(scan "$file")
done

if (( broken > 0 )); then
    echo "check-links: $broken broken of $links relative links in ${#files[@]} files"
    exit 1
fi
echo "check-links: $links relative links in ${#files[@]} files, all good"
