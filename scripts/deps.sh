#!/usr/bin/env bash
# Installs the Debian 12 packages vmsim needs to build, test and benchmark, if any is
# missing. Fast no-op when everything is present; uses sudo when not run as root.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config valgrind python3 libinih-dev)
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
