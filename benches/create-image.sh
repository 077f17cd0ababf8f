#!/usr/bin/env bash
# Benchmark: `sprout create image` against `coreos-installer iso ignition
# embed -o` on the same >= 1 GiB live ISO, in one run, reported as a ratio.
# Not a test: speed is never asserted. Usage: benches/create-image.sh [SIZE_MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1100}
runs=${2:-3}
bash scripts/setup.sh
cargo build --quiet --release --bin sprout
sprout=$PWD/target/release/sprout
command -v coreos-installer >/dev/null || { echo "coreos-installer is missing (scripts/setup.sh installs it)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/sprout-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tree/coreos" "$work/tree/images" "$work/dir"
# A live-ISO layout like RHCOS's: igninfo.json names a 256 KiB ignition.img;
# a large rootfs makes the copy dominate as it does for a real ISO.
printf '{"file":"images/ignition.img"}' > "$work/tree/coreos/igninfo.json"
head -c 262144 /dev/zero > "$work/tree/images/ignition.img"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/tree/images/rootfs.img"
xorriso -as mkisofs -quiet -V rhcos-bench -J -R -o "$work/base.iso" "$work/tree" 2>/dev/null
rm -rf "$work/tree"
cp examples/image/image-based-installation-config.yaml examples/image/post.sh "$work/dir/"

# The same config for both tools.
"$sprout" -q create image --dir "$work/dir" --base-iso "$work/base.iso" >/dev/null
"$sprout" iso show-ignition "$work/dir/rhcos-ibi.iso" > "$work/config.ign"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
s_times=(); c_times=()
for i in $(seq "$runs"); do
  rm -f "$work/dir/rhcos-ibi.iso" "$work/ci.iso"; sync
  t0=$(now); "$sprout" -q create image --dir "$work/dir" --base-iso "$work/base.iso" >/dev/null; t1=$(now)
  s_times+=("$(echo "$t1 - $t0" | bc -l)")
  sync
  t0=$(now); coreos-installer iso ignition embed -i "$work/config.ign" -o "$work/ci.iso" "$work/base.iso"; t1=$(now)
  c_times+=("$(echo "$t1 - $t0" | bc -l)")
done
s=$(printf '%s\n' "${s_times[@]}" | median)
c=$(printf '%s\n' "${c_times[@]}" | median)
iso_mib=$(( $(stat -c %s "$work/base.iso") / 1024 / 1024 ))
printf 'base ISO: %d MiB, %d runs each (median)\n' "$iso_mib" "$runs"
printf 'sprout create image:                 %.3f s\n' "$s"
printf 'coreos-installer iso ignition embed: %.3f s\n' "$c"
printf 'ratio sprout / coreos-installer:     %.2f\n' "$(echo "$s / $c" | bc -l)"
