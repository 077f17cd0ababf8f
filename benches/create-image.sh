#!/usr/bin/env bash
# Benchmark: `sprout create image` against `coreos-installer iso ignition
# embed -o` on the same >= 1 GiB live ISO. Now one case of benches/run,
# which this calls. Usage: benches/create-image.sh [SIZE_MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec benches/run --cases iso --iso-mib "${1:-1100}" --runs "${2:-3}"
