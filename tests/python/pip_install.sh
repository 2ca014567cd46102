#!/usr/bin/env bash
# `pip install ./python` from the checkout, offline: into a fresh venv under the build
# directory, with --no-index (nothing can come from a package index); then the installed
# package, with no VMSIM_LIBRARY and away from the checkout, loads its bundled
# libvmsim.so and runs the examples of examples/python/.
# Usage: pip_install.sh BUILD_DIR SOURCE_DIR LIBVMSIM   (ctest passes them)
set -u
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) lib=$3
venv=$build/python-venv
rm -rf "$venv"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

python3 -m venv "$venv" >"$build/pip-install.log" 2>&1 && ok || { bad "python3 -m venv"; cat "$build/pip-install.log" >&2; }
# VMSIM_LIBRARY tells the build backend which libvmsim.so to bundle (this build's).
VMSIM_LIBRARY=$lib PIP_NO_INDEX=1 "$venv/bin/python" -m pip install --no-index \
    --disable-pip-version-check -q "$src/python" >>"$build/pip-install.log" 2>&1 &&
    ok || { bad "pip install ./python"; cat "$build/pip-install.log" >&2; }
cd "$build" || exit 1
out=$(env -u VMSIM_LIBRARY -u PYTHONPATH "$venv/bin/python" -c 'import vmsim, os; print(vmsim.library_path); print(vmsim.version()[0])')
case "$out" in "$venv"/*/vmsim/libvmsim.so*) ok ;; *) bad "installed package does not load its own library: $out" ;; esac
[ "$(echo "$out" | tail -1)" = "$(sed -nE 's/^project\(vmsim VERSION ([0-9.]+).*/\1/p' "$src/CMakeLists.txt")" ] &&
    ok || bad "installed version"
for e in "$src"/examples/python/*.py; do
    env -u VMSIM_LIBRARY -u PYTHONPATH "$venv/bin/python" "$e" >"$build/pip-example.out" 2>&1 &&
        ok || { bad "example $(basename "$e")"; cat "$build/pip-example.out" >&2; }
done
"$venv/bin/python" -m pip uninstall -y -q vmsim >/dev/null 2>&1 && ok || bad "pip uninstall"

echo "pip_install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
