#!/usr/bin/env bash
# The documentation matches the repository: every relative Markdown link and every
# `path/in/the/repo` that README.md and docs/*.md name exists in the tree (placeholders
# such as policy_NAME.c or <file> and globs are skipped), and `vmsim help TOPIC` works for
# every command the overview lists.
# Usage: docs.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
cd "$src" || exit 1

for f in README.md docs/*.md; do
    d=$(dirname "$f")
    while read -r l; do
        [ -z "$l" ] && continue
        [ -e "$d/$l" ] && ok || bad "$f links to $l, which is not in the repository"
    done < <(grep -oE '\]\([^)#]+' "$f" | sed 's/^](//' | grep -vE '^(https?:|mailto:)')
    while read -r l; do
        [ -z "$l" ] && continue
        case "$l" in *'*'* | *'<'* | *NAME* | *XXXX*) continue ;; esac
        [ -e "$l" ] || [ -e "$d/$l" ] && ok || bad "$f names $l, which is not in the repository"
    done < <(grep -oE '`(\.\./)*(shared|examples|docs|tests|src|include|cli|scripts|bench|fuzz|tools)/[A-Za-z0-9_./*<>-]+`' "$f" |
                 tr -d '`' | sort -u)
done
for cmd in run explain presets config policy convert replay record vmm; do
    "$vmsim" help "$cmd" 2>/dev/null | grep -q "usage: vmsim $cmd" && ok || bad "vmsim help $cmd"
done
"$vmsim" help nosuch >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "vmsim help of an unknown topic"

finish "docs"
