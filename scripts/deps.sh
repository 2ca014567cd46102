#!/usr/bin/env bash
# Installs the Debian 12 packages vmsim needs to build, test and benchmark, if any is
# missing. Fast no-op when everything is present; uses sudo when not run as root.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config python3
      valgrind                             # vmsim record's tool: static core libs + headers
      linux-perf                           # scripts/fidelity.sh: Linux's own fault counts
      libinih-dev                          # config files
      libzstd-dev liblzma-dev zlib1g-dev   # trace readers: native (zstd), ChampSim .xz/.gz
      nettle-dev                           # SHA-256 of a result's input (vmsim/hash.h)
      libelf-dev                           # exec of an ELF program image (binfmt_elf.c)
      clang libclang-rt-14-dev zstd xz-utils   # libFuzzer (make fuzz); CLI tools for samples
      parallel                             # GNU parallel: the sweep recipe test (docs/SWEEP.md)
      python3-venv python3-pip             # the Python package test: pip install ./python
      emscripten                           # the web visualizer: libvmsim in WebAssembly (web/)
      chromium chromium-driver)            # its ctest: the page in headless Chromium
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
