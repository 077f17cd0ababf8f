#!/usr/bin/env bash
# Installs what building and testing sprout needs on Debian 12, idempotently:
# apt packages are installed only when missing. Rust comes from rustup
# (edition 2024 needs Rust >= 1.88; Debian's cargo is too old).
set -euo pipefail

# Build: openssl crate (libssl-dev, pkg-config).
# Tests: xorriso and isoinfo (genisoimage) read ISOs back, blkid (util-linux)
# reads labels, openssl verifies certificates.
PACKAGES=(pkg-config libssl-dev openssl xorriso genisoimage util-linux ca-certificates)

missing=()
for p in "${PACKAGES[@]}"; do
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
  echo "setup: cargo not found; install Rust >= 1.88 with rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi
