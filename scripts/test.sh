#!/usr/bin/env bash
# Sets up and runs the whole test suite. Tests that need a tool or privilege
# the machine lacks print "SKIP: <reason>" and pass; CI installs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --all-targets "$@"
