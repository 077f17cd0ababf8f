# Helpers for the guest scenarios (sourced; set -euo pipefail is on).

# Ends the scenario with a reason the host prints.
fail() {
  echo "SPROUT-VM fail $*"
  exit 99
}

# A line for the host's log, and the test's.
note() {
  echo "SPROUT-VM note $*"
}

# Asks the host to do something (the host watches for these lines).
ask_host() {
  echo "SPROUT-VM host $*"
}

# Fails unless the file at $1 has the octal mode $2.
expect_mode() {
  local m
  m="$(stat -c %a "$1")"
  [ "$m" = "$2" ] || fail "$1 has mode $m, expected $2"
}

# The configuration sprout copied must be complete, owner-only, and the
# medium neither mounted nor its mount point left.
expect_configuration_copied() {
  local work=/opt/openshift
  [ -f "$work/cluster-configuration/manifest.json" ] \
    || fail "$work/cluster-configuration/manifest.json is missing after discovery"
  grep -q '"cluster_name"' "$work/cluster-configuration/manifest.json" \
    || fail "$work/cluster-configuration/manifest.json is not the seed reconfiguration"
  expect_mode "$work" 700
  expect_mode "$work/cluster-configuration" 700
  expect_mode "$work/cluster-configuration/manifest.json" 600
  if grep -q ' /run/sprout/' /proc/mounts; then
    fail "the medium is still mounted: $(grep ' /run/sprout/' /proc/mounts)"
  fi
  if compgen -G '/run/sprout/config-media.*' >/dev/null; then
    fail "a mount point is left behind: $(ls -d /run/sprout/config-media.*)"
  fi
  if compgen -G "$work/.sprout-incoming.*" >/dev/null; then
    fail "a staging directory is left behind"
  fi
}

# Waits up to $2 seconds for unit $1 to leave the activating/active states.
wait_unit_done() {
  local unit=$1 limit=$2 i state
  for ((i = 0; i < limit * 5; i++)); do
    state="$(systemctl show -P ActiveState "$unit")"
    case "$state" in active | activating | reloading | deactivating) sleep 0.2 ;; *) return 0 ;; esac
  done
  fail "$unit is still $state after $limit s"
}

# Prints unit properties, one KEY=VALUE a line.
unit_props() {
  local unit=$1; shift
  local p args=()
  for p in "$@"; do args+=(-p "$p"); done
  systemctl show "${args[@]}" "$unit"
}

# Waits up to $2 seconds for the main process of unit $1 to have exited
# (for a unit that starts by itself at boot, maybe after this script).
wait_unit_exited() {
  local unit=$1 limit=$2 i
  for ((i = 0; i < limit * 5; i++)); do
    [ "$(systemctl show -P ExecMainExitTimestampMonotonic "$unit")" != 0 ] && return 0
    sleep 0.2
  done
  fail "$unit has not finished after $limit s: $(systemctl status "$unit" 2>&1 | tail -n5)"
}
