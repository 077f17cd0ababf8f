#!/usr/bin/env bash
# Benchmark: peak memory of extracting a seed's var.tgz of at least 1 GiB
# (seed acceptance 3: under 64 MiB), and of `sprout seed inspect` reading
# every member of the same seed. Not part of `cargo test`.
#
#   scripts/bench-seed-extract.sh [PAYLOAD_BYTES]
#
# PAYLOAD_BYTES is the database-like content of var.tgz (default 2300 MiB,
# which compresses to a var.tgz above 1 GiB). Needs the ostree CLI, about
# 2.5 x PAYLOAD_BYTES of free disk under WORK (default target/bench-seed),
# and a few minutes on 2 cores. KEEP=1 keeps the seed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
payload="${1:-$((2300 * 1024 * 1024))}"
limit_kib=$((64 * 1024))
work="${WORK:-target/bench-seed}"
rm -rf "$work"
mkdir -p "$work"
work="$(cd "$work" && pwd)"

echo "bench: building (release)" >&2
cargo build --release --quiet --bin sprout
exe=$(cargo test --release --test seed_bench --no-run --message-format=json 2>/dev/null |
  grep '"name":"seed_bench"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)
[ -x "$exe" ] || { echo "bench: could not find the seed_bench test binary" >&2; exit 1; }

echo "bench: building a seed with a ${payload}-byte var payload in $work" >&2
SPROUT_BENCH_DIR="$work" SPROUT_BENCH_VAR_BYTES="$payload" \
  "$exe" --ignored --exact bench_build_seed --nocapture --test-threads=1 | grep -o 'built .*'
var_size=$(stat -c %s "$work/root/var.tgz")
echo "bench: var.tgz is $var_size bytes ($((var_size >> 20)) MiB)"
if [ "$var_size" -lt $((1 << 30)) ]; then
  echo "bench: var.tgz is below 1 GiB; pass a bigger PAYLOAD_BYTES" >&2
  exit 1
fi

peak() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

/usr/bin/time -v -o "$work/extract.time" env SPROUT_BENCH_DIR="$work" \
  "$exe" --ignored --exact bench_extract_var --nocapture --test-threads=1 | grep -o 'extracted .*'
extract_kib=$(peak "$work/extract.time")
echo "bench: extract var.tgz: peak RSS ${extract_kib} KiB ($((extract_kib / 1024)) MiB), limit ${limit_kib} KiB"
rm -rf "$work/dest"

/usr/bin/time -v -o "$work/inspect.time" ./target/release/sprout -q seed inspect "$work/root" >/dev/null
inspect_kib=$(peak "$work/inspect.time")
echo "bench: seed inspect (reads every member): peak RSS ${inspect_kib} KiB ($((inspect_kib / 1024)) MiB)"
grep -E 'Elapsed \(wall' "$work/extract.time" "$work/inspect.time" | sed 's|.*/||'

[ "${KEEP:-0}" = 1 ] || rm -rf "$work"
if [ "$extract_kib" -ge "$limit_kib" ]; then
  echo "bench: FAIL: extraction peaked at ${extract_kib} KiB, over ${limit_kib} KiB" >&2
  exit 1
fi
echo "bench: PASS"
