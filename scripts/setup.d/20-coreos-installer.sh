#!/usr/bin/env bash
# coreos-installer is the peer tool the installation-ISO tests check the
# Ignition embed area against (and the benchmark compares with). It comes
# from the Rust package registry; installed once, reused afterwards.
set -euo pipefail
want=0.27.0
if command -v coreos-installer >/dev/null 2>&1 && coreos-installer --version | grep -q "$want"; then
  exit 0
fi
echo "setup: installing coreos-installer $want (a few minutes, once)" >&2
cargo install --quiet --locked coreos-installer --version "$want"
