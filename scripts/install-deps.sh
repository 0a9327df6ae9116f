#!/usr/bin/env bash
# Installs everything tilejit needs to build and test on a fresh Debian machine.
# Safe to run more than once. Runs as root (CI) or with sudo available.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
packages=(cmake ninja-build g++ pkg-config libfmt-dev nlohmann-json3-dev libcli11-dev libssl-dev
          libgtest-dev libgmock-dev libbenchmark-dev python3-venv
          redis-server        # the remote cache tier's tests start their own
          clang libclang-rt-14-dev)  # scripts/asan.sh and scripts/fuzz.sh (libFuzzer)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
