#!/usr/bin/env bash
# Runs every fuzz target coverage-guided for SECONDS each (default 60):
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs cargo-fuzz and nightly Rust (scripts/setup.d/30-cargo-fuzz.sh).
# Crashes land in fuzz/artifacts/<target>/; copy a reproducer into
# fuzz/regressions/<target>/ so `cargo test --test fuzz_replay` keeps
# checking it. Plain `cargo test` runs the same targets briefly without
# cargo-fuzz (tests/fuzz_replay.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    echo "== fuzzing $t for ${seconds}s"
    (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -max_len=262144)
done
