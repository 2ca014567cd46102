#!/usr/bin/env bash
# End-to-end tests of `vmsim convert`: round trips through the native format, compressed
# inputs, stdin/stdout, exit codes 0/1/2 and error messages that name the line or byte.
# Usage: convert.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
ex=$src/examples/traces

# lackey -> native -> lackey is the original without valgrind's "==" lines.
"$vmsim" convert "$ex/true.lackey" "$tmp/t.vmt" && ok || bad "lackey->native"
"$vmsim" convert "$tmp/t.vmt" "$tmp/t.lackey" && ok || bad "native->lackey"
grep -v '^==' "$ex/true.lackey" | cmp -s - "$tmp/t.lackey" && ok || bad "lackey round trip"
# The same through stdin and stdout, and a zstd-compressed input.
"$vmsim" convert - - --to lackey < "$tmp/t.vmt" | cmp -s - "$tmp/t.lackey" && ok || bad "stdin/stdout"
zstd -q -c "$ex/true.lackey" > "$tmp/t.zst" 2>/dev/null &&
    "$vmsim" convert "$tmp/t.zst" "$tmp/z.lackey" && cmp -s "$tmp/z.lackey" "$tmp/t.lackey" &&
    ok || bad "zstd-compressed lackey"
# ChampSim (xz) -> native -> dinero: 8 fetches, 7 reads, 4 writes.
"$vmsim" convert "$ex/small.champsim.xz" "$tmp/c.vmt" --from champsim -v 2>"$tmp/err" && ok ||
    bad "champsim->native"
grep -q '19 events, champsim -> native' "$tmp/err" && ok || bad "champsim -v count"
"$vmsim" convert "$tmp/c.vmt" "$tmp/c.din" && [ "$(grep -c '^2 ' "$tmp/c.din")" = 8 ] &&
    [ "$(grep -c '^0 ' "$tmp/c.din")" = 7 ] && [ "$(grep -c '^1 ' "$tmp/c.din")" = 4 ] &&
    ok || bad "native->dinero kinds"
# Kernel events cannot go to lackey, unless dropped on purpose.
"$vmsim" convert "$ex/small.vmt" "$tmp/k.lackey" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q 'lackey traces hold memory references only, not map events' "$tmp/err" &&
    [ ! -e "$tmp/k.lackey" ] && ok || bad "kernel events to lackey"
"$vmsim" convert "$ex/small.vmt" "$tmp/k.lackey" --accesses-only && [ "$(wc -l < "$tmp/k.lackey")" = 5 ] &&
    ok || bad "--accesses-only"
# A malformed input fails with its line; exit 1.
printf 'I  10,4\nhello\n' > "$tmp/bad.lackey"
"$vmsim" convert "$tmp/bad.lackey" "$tmp/bad.vmt" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "bad.lackey:2: expected 'I  ADDR,SIZE'" "$tmp/err" && [ ! -e "$tmp/bad.vmt" ] &&
    ok || bad "malformed input"
head -c 100 "$ex/small.champsim" > "$tmp/cut.champsim"
"$vmsim" convert --from champsim "$tmp/cut.champsim" "$tmp/cut.vmt" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q 'byte 64: truncated ChampSim record' "$tmp/err" && ok || bad "truncated champsim"
# IN = OUT (by any name) is refused with IN unchanged; a failed conversion leaves an
# existing OUT as it was and no temporary file behind; a device OUT is written in place.
cp "$ex/true.lackey" "$tmp/same.lackey"
"$vmsim" convert "$tmp/same.lackey" "$tmp/same.lackey" --to lackey 2>"$tmp/err"
[ $? -eq 2 ] && grep -q 'are the same file' "$tmp/err" && cmp -s "$ex/true.lackey" "$tmp/same.lackey" &&
    ok || bad "IN = OUT"
ln -s same.lackey "$tmp/alias.lackey"
"$vmsim" convert "$tmp/same.lackey" "$tmp/./alias.lackey" 2>"$tmp/err"
[ $? -eq 2 ] && cmp -s "$ex/true.lackey" "$tmp/same.lackey" && ok || bad "IN = OUT through a symlink"
echo precious > "$tmp/keep.vmt"
"$vmsim" convert "$tmp/bad.lackey" "$tmp/keep.vmt" 2>"$tmp/err"
[ $? -eq 1 ] && [ "$(cat "$tmp/keep.vmt")" = precious ] && ok || bad "failed convert kept OUT"
ls -A "$tmp" | grep -q 'tmp-' && bad "temporary file left behind" || ok
"$vmsim" convert "$ex/true.lackey" "$tmp/keep.vmt" && "$vmsim" convert "$tmp/keep.vmt" - --to lackey |
    cmp -s - "$tmp/t.lackey" && ok || bad "convert over an existing OUT"
ls -A "$tmp" | grep -q 'tmp-' && bad "temporary file left after success" || ok
"$vmsim" convert "$ex/true.lackey" /dev/null && [ -c /dev/null ] && ok || bad "device OUT"

# Usage: help 0, usage errors 2 with a message.
"$vmsim" convert --help | grep -q 'usage: vmsim convert' && ok || bad "convert --help"
for args in "convert" "convert a" "convert a b c" "convert a b --from pin" "convert a b --level 99" \
            "convert a b --bogus"; do
    # shellcheck disable=SC2086
    "$vmsim" $args >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && [ -s "$tmp/err" ]; then ok; else bad "'$args' exit $rc"; fi
done

# A recording with EXEC events (sh.vmt) converts native -> native: the exec paths are
# carried into the new string table, and the copy replays to the same counters.
"$vmsim" convert "$ex/sh.vmt" "$tmp/sh2.vmt" 2>"$tmp/err" && ok || { bad "sh.vmt native->native"; cat "$tmp/err" >&2; }
"$vmsim" replay "$ex/sh.vmt" --stats json | sed -E 's/"(build|name|sha256)":"[^"]*"//g' >"$tmp/a.json"
"$vmsim" replay "$tmp/sh2.vmt" --stats json | sed -E 's/"(build|name|sha256)":"[^"]*"//g' >"$tmp/b.json"
[ -s "$tmp/a.json" ] && cmp -s "$tmp/a.json" "$tmp/b.json" && ok || bad "sh.vmt copy replays differently"

finish "convert"
