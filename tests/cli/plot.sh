#!/usr/bin/env bash
# `vmsim plot` and `vmsim replay --plot`: well-formed SVG whose polylines carry one point
# per CSV row at coordinates inside the picture, the same chart from the CSV as from the
# replay, one bar per sweep task whose value is the merge table's, byte-identical
# output for the same input, and errors that name the file and line.
# Usage: plot.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
cd "$src" || exit 1
ex=examples/traces

"$vmsim" replay $ex/ls.vmt --csv "$tmp/s.csv" --plot "$tmp/r.svg" --interval 50000 >/dev/null 2>&1 ||
    bad "replay --plot exit"
"$vmsim" plot "$tmp/s.csv" -o "$tmp/p.svg" --title $ex/ls.vmt || bad "plot exit"
cmp -s "$tmp/r.svg" "$tmp/p.svg" && ok || bad "replay --plot differs from vmsim plot of its CSV"
"$vmsim" plot "$tmp/s.csv" -o "$tmp/p2.svg" --title $ex/ls.vmt; cmp -s "$tmp/p.svg" "$tmp/p2.svg" &&
    ok || bad "plot not deterministic"
python3 - "$tmp/p.svg" "$tmp/s.csv" <<'PY' && ok || bad "series SVG content"
import csv, sys, xml.etree.ElementTree as E
ns = "{http://www.w3.org/2000/svg}"
root = E.parse(sys.argv[1]).getroot()
w, h = float(root.get("width")), float(root.get("height"))
rows = list(csv.DictReader(open(sys.argv[2])))
lines = root.findall(ns + "polyline")
assert len(lines) == 5, len(lines)          # l1i, l1d, l2 miss rates; faults, major faults
for pl in lines:
    pts = [tuple(map(float, p.split(","))) for p in pl.get("points").split()]
    assert len(pts) == len(rows), (len(pts), len(rows))
    assert all(0 <= x <= w and 0 <= y <= h for x, y in pts)
    xs = [x for x, _ in pts]
    assert xs == sorted(xs) and xs[-1] > xs[0]
texts = [t.text for t in root.iter(ns + "text")]
for name in ("l1i_miss_rate", "l1d_miss_rate", "l2_miss_rate", "faults", "major_faults"):
    assert name in texts, name
# the faults line rises where the CSV's running total grows by the most
faults = [int(r["faults"]) for r in rows]
d = [faults[0]] + [b - a for a, b in zip(faults, faults[1:])]
pts = [tuple(map(float, p.split(","))) for p in lines[3].get("points").split()]
assert min(range(len(pts)), key=lambda i: pts[i][1]) == d.index(max(d))
PY

# Sweep results: one bar per task, its <title> the value merge prints.
cat >"$tmp/spec.ini" <<SPEC
trace = $ex/small.vmt | $ex/small.din
tlb.l1d = 4K:16x4:lru | 4K:1x1:lru
SPEC
"$vmsim" sweep "$tmp/spec.ini" -j 1 >"$tmp/r.jsonl" 2>/dev/null
"$vmsim" sweep merge "$tmp/r.jsonl" >"$tmp/m.csv"
"$vmsim" plot "$tmp/r.jsonl" -o "$tmp/sw.svg" --metric l1d_miss_rate || bad "sweep plot exit"
python3 - "$tmp/sw.svg" "$tmp/m.csv" <<'PY' && ok || bad "sweep SVG content"
import csv, sys, xml.etree.ElementTree as E
ns = "{http://www.w3.org/2000/svg}"
root = E.parse(sys.argv[1]).getroot()
rows = list(csv.DictReader(open(sys.argv[2])))
bars = [r for r in root.iter(ns + "rect") if r.find(ns + "title") is not None]
assert len(bars) == len(rows) == 4
for b, r in zip(bars, rows):
    assert abs(float(b.find(ns + "title").text) - float(r["l1d_miss_rate"])) < 1e-5
widths = [float(b.get("width")) for b in bars]
rates = [float(r["l1d_miss_rate"]) for r in rows]
assert max(range(4), key=lambda i: widths[i]) == max(range(4), key=lambda i: rates[i])
labels = [t.text for t in root.iter(ns + "text") if t.text and "tlb.l1d=" in t.text]
assert len(labels) == 4 and labels[1].startswith("1 ")
PY

# An interval without lookups has an empty miss rate in the CSV: drawn as 0.
printf 'references,l1i_miss_rate,faults\n10,,1\n20,0.5,2\n' >"$tmp/gap.csv"
"$vmsim" plot "$tmp/gap.csv" -o "$tmp/gap.svg" && grep -c '<polyline' "$tmp/gap.svg" | grep -qx 2 &&
    ok || bad "CSV with an empty miss rate"

# Errors.
printf 'references,faults\n10,1\n20,x\n' >"$tmp/bad.csv"
"$vmsim" plot "$tmp/bad.csv" -o "$tmp/x.svg" 2>"$tmp/err"; [ $? -eq 1 ] && grep -q "bad.csv:3:" "$tmp/err" &&
    ok || bad "bad CSV: $(cat "$tmp/err")"
"$vmsim" plot "$tmp/s.csv" 2>/dev/null; [ $? -eq 2 ] && ok || bad "plot without -o"
"$vmsim" plot "$tmp/r.jsonl" -o "$tmp/x.svg" --metric nope 2>/dev/null; [ $? -eq 2 ] && ok || bad "unknown metric"

finish "plot"
