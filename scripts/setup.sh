#!/usr/bin/env bash
# Installs what building and testing sprout needs on Debian 12, idempotently:
# the apt packages listed in scripts/apt/*.list (one a line, # comments) are
# installed only when missing, and scripts/setup.d/*.sh run in order (each
# must itself be idempotent). Rust comes from rustup (edition 2024 needs
# Rust >= 1.89; Debian's cargo is too old).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

mapfile -t packages < <(cat "$here"/apt/*.list | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust >= 1.89 with rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi

for step in "$here"/setup.d/*.sh; do
  [ -e "$step" ] || continue
  bash "$step"
done
