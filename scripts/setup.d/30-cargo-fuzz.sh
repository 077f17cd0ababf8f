#!/usr/bin/env bash
# cargo-fuzz for scripts/fuzz.sh (coverage-guided fuzzing needs nightly Rust,
# which rustup provides here). Idempotent: does nothing when installed.
set -euo pipefail
if cargo fuzz --version >/dev/null 2>&1; then
    exit 0
fi
# CI runs the targets through tests/fuzz_replay.rs and needs no coverage
# fuzzer; building cargo-fuzz there would only cost minutes.
if [ "${CI:-}" = "true" ] && [ -z "${SPROUT_FUZZ:-}" ]; then
    exit 0
fi
if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
cargo install cargo-fuzz --locked
