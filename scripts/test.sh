#!/usr/bin/env bash
# Sets up and runs the whole test suite. Tests that need a tool or privilege
# the machine lacks print "SKIP: <reason>" and pass; under CI=true they fail.
#
#   scripts/test.sh              everything, in two lanes (below)
#   scripts/test.sh ARGS...      cargo test --all-targets ARGS... (one lane)
#
# The journey's VM tests (vm_journey) and post-pivot's (vm_postpivot), about
# half of the VM time, run in a second lane beside the rest of the suite: a
# TCG guest has one vCPU, so each lane keeps one core busy. The second lane's
# output is printed after the first's; the script fails if either failed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ $# -gt 0 ]; then
  exec cargo test --all-targets "$@"
fi
second_lane=(vm_journey vm_postpivot)
cargo test --all-targets --no-run --quiet
first_lane=()
for f in tests/*.rs; do
  name="$(basename "$f" .rs)"
  [[ " ${second_lane[*]} " == *" $name "* ]] || first_lane+=(--test "$name")
done
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
second=()
for name in "${second_lane[@]}"; do second+=(--test "$name"); done
cargo test --no-fail-fast "${second[@]}" >"$log" 2>&1 &
second_pid=$!
first_status=0
cargo test --no-fail-fast --lib --bins --examples --benches "${first_lane[@]}" || first_status=$?
second_status=0
wait "$second_pid" || second_status=$?
echo "=== second lane: cargo test ${second[*]} ==="
cat "$log"
if [ "$first_status" -ne 0 ] || [ "$second_status" -ne 0 ]; then
  echo "scripts/test.sh: failed (first lane exit $first_status, second lane exit $second_status)" >&2
  exit 1
fi
