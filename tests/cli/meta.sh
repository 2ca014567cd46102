#!/usr/bin/env bash
# Results that say what made them: `vmsim --version`, and in every --stats json object
# the version, the full effective configuration (equal to what `vmsim config` prints
# for the same options), the input's name and SHA-256 (equal to sha256sum's) and the
# seed; the text summaries name the overrides.
# Usage: meta.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
cd "$src" || exit 1
ex=examples/traces

# --version: "vmsim X.Y.Z", then optionally " (git DESCRIBE)"; X.Y.Z is CMake's version.
"$vmsim" --version >"$tmp/v"
grep -Eq '^vmsim [0-9]+\.[0-9]+\.[0-9]+( \(git [^)]+\))?$' "$tmp/v" && [ "$(wc -l <"$tmp/v")" = 1 ] &&
    ok || bad "--version format: $(cat "$tmp/v")"
want=$(sed -nE 's/^project\(vmsim VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
[ "$(cut -d' ' -f2 "$tmp/v")" = "$want" ] && ok || bad "--version is not $want"

# check JSON CONFIG-ARGS...: the JSON's config equals `vmsim config ARGS` key by key.
check_config() {
    local json=$1; shift
    "$vmsim" config "$@" >"$tmp/ini"
    python3 - "$json" "$tmp/ini" <<'PY' && ok || bad "config object differs from vmsim config $*"
import json, sys
d = json.load(open(sys.argv[1]))
ini = {}
for line in open(sys.argv[2]):
    line = line.rstrip("\n")
    if line and not line.startswith("#"):
        k, v = line.split(" = ", 1) if " = " in line else (line.rstrip(" ="), "")
        ini[k] = v.split("  ; ", 1)[0]  # a trailing comment is not part of the value
assert d["config"] == ini, (set(d["config"].items()) ^ set(ini.items()))
assert list(d["config"]) == list(ini)
PY
}

sets=(--set cores=1 --set tlb.l1d=4K:8x4:lru --set seed=7)
"$vmsim" replay $ex/small.vmt --stats json "${sets[@]}" >"$tmp/r.json" || bad "replay --stats json"
check_config "$tmp/r.json" "${sets[@]}"
python3 - "$tmp/r.json" "$(sha256sum $ex/small.vmt | cut -d' ' -f1)" "$want" <<'PY' && ok || bad "replay: version, input, seed"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == sys.argv[3], d["version"]
assert isinstance(d["build"], str)
assert d["input"] == {"kind": "trace", "name": "examples/traces/small.vmt", "sha256": sys.argv[2]}, d["input"]
assert d["seed"] == 7
PY
# replay's private writeback directory never leaks into the configuration it reports.
grep -q '"kernel.writeback_dir":""' "$tmp/r.json" && ok || bad "writeback_dir reported as configured"
# stdin has no digest.
"$vmsim" replay - --stats json <$ex/small.din --format din | grep -q '"name":"-","sha256":null' &&
    ok || bad "stdin input"
# A config file counts like --set; --preset changes the base.
printf 'ram = 16M\n[tlb]\nl2 = none\n' >"$tmp/c.ini"
"$vmsim" replay $ex/small.vmt --stats json --preset tiny --config "$tmp/c.ini" >"$tmp/r2.json"
check_config "$tmp/r2.json" --preset tiny --config "$tmp/c.ini"

# run --stats json: the scenario's `set` lines are part of the configuration.
"$vmsim" run examples/scenarios/swap.scn --stats json --set seed=3 >"$tmp/s.json"
python3 - "$tmp/s.json" "$(sha256sum examples/scenarios/swap.scn | cut -d' ' -f1)" <<'PY' && ok || bad "run: meta"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["input"] == {"kind": "scenario", "name": "examples/scenarios/swap.scn", "sha256": sys.argv[2]}, d["input"]
assert d["config"]["ram"] == "4M" and d["config"]["policy"] == "clock" and d["seed"] == 3
assert "version" in d and "scenario" in d
PY
# The demonstration is hashed from its embedded text, which is demo.scn's.
"$vmsim" run --stats json >"$tmp/d.json"
grep -q "\"sha256\":\"$(sha256sum examples/scenarios/demo.scn | cut -d' ' -f1)\"" "$tmp/d.json" &&
    ok || bad "demo digest"

# Text summaries name the overrides, and only them.
"$vmsim" replay $ex/small.vmt "${sets[@]}" | grep -qx 'config       preset skylake, overrides cores=1 seed=7 tlb.l1d=4K:8x4:lru (32 entries = 8 sets x 4 ways)' &&
    ok || bad "replay overrides line: $("$vmsim" replay $ex/small.vmt "${sets[@]}" | grep ^config)"
"$vmsim" replay $ex/small.vmt --preset tiny | grep -qx 'config       preset tiny, no overrides' &&
    ok || bad "no overrides"
"$vmsim" run -q examples/scenarios/swap.scn --set swap=16M | grep -q '^-- config: preset skylake, overrides ram=4M swap=16M policy=clock' &&
    ok || bad "run overrides line"

# A TLB's and a page-walk cache's geometry is spelled out (issue 16.17): SETSxWAYS for a
# TLB, ENTRIESxWAYS for a PWC, and the explicit ENTRIESeWAYSw form for both give the same.
for spec in 4K+2M:128x12 4K+2M:1536e12w; do
    line=$("$vmsim" replay $ex/small.vmt --set "tlb.l2=$spec" --set pwc.pde=64e4w 2>/dev/null | grep ^config)
    [ "$line" = 'config       preset skylake, overrides tlb.l2=4K+2M:128x12:lru (1536 entries = 128 sets x 12 ways) pwc.pde=64x4:lru (64 entries = 16 sets x 4 ways)' ] &&
        ok || bad "geometry in the replay summary ($spec): $line"
done
line=$("$vmsim" replay $ex/small.vmt --set tlb.l2=4K:1536x12,1G:16e4w 2>/dev/null | grep ^config)
[ "$line" = 'config       preset skylake, overrides tlb.l2=4K:1536x12:lru, 1G:4x4:lru (18432 entries = 1536 sets x 12 ways, 16 entries = 4 sets x 4 ways)' ] &&
    ok || bad "partitions' geometry in the replay summary: $line"
"$vmsim" run -q examples/scenarios/swap.scn --set tlb.l1d=4K:16e4w | grep -qx -- '-- config: preset skylake, overrides ram=4M tlb.l1d=4K:4x4:lru (16 entries = 4 sets x 4 ways) swap=8M policy=clock swap.device=hdd swap.latency_us=10000 swap.bandwidth_mbs=150' &&
    ok || bad "geometry in the run summary: $("$vmsim" run -q examples/scenarios/swap.scn --set tlb.l1d=4K:16e4w | grep config)"

finish "meta"
