#!/usr/bin/env bash
# Sets up, builds sprout and runs its main workstation job on the bundled
# example: the configuration ISO and admin credentials for examples/config-image.
# The example is copied to target/demo/ so the repository stays clean.
#
#   scripts/demo.sh            the configuration ISO (seconds)
#   scripts/demo.sh journey    the whole product on one node, in QEMU guests
#                              (as root; about 20 minutes under TCG): the
#                              installation ISO, the factory install, the
#                              edge boot's configuration; ends with a table
#                              of phases and their slowest steps
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = journey ]; then
  exec bash vm-tests/run journey
fi
bash scripts/setup.sh
cargo build --quiet --bin sprout
work=target/demo/config-image
mkdir -p "$work"
cp examples/config-image/*.yaml "$work"/
"${CARGO_TARGET_DIR:-target}/debug/sprout" create config-image --dir "$work"
echo
echo "Attach $work/imagebasedconfig.iso to the node as a CD-ROM (or write it to a USB stick)."
echo "Once the node is configured: KUBECONFIG=$work/auth/kubeconfig oc get nodes"
