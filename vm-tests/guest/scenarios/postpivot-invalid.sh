# Acceptance 5 (issue 12): a configuration that does not fit the seed (a
# proxy, the seed has none) is refused before any change: terminal at the
# first start, and the host's files are the same before and after.
. /share/vm-tests/guest/seed-node.sh
udevadm settle --timeout=30
seed_settings '{"config_medium": 60, "announce_every": 5}'
seed_node_setup
host_manifest >/run/sprout-vm/before
nm="$(systemctl show -P InvocationID NetworkManager.service)"
systemctl start --no-block "$UNIT"
wait_postpivot_end 180
note "post-pivot ended: $(pp_status | grep -v '^step' | tr '\n' ' ')"
expect_state terminal
expect_step validate failed
props=""
for p in ActiveState ExecMainStatus NRestarts; do props+="$p=$(systemctl show -P "$p" "$UNIT") "; done
[ "$props" = "ActiveState=failed ExecMainStatus=3 NRestarts=0 " ] \
  || fail "expected one start ending with exit status 3, got: $props"
grep -qi 'proxy' /var/lib/sprout/post-pivot-status.json || fail "the error does not name the proxy: $(pp_status | grep '^error=')"
grep -qi 'proxy' /etc/issue.d/50-sprout-post-pivot.issue || fail "no console message naming the proxy"
host_manifest >/run/sprout-vm/after
if ! diff -u /run/sprout-vm/before /run/sprout-vm/after >/run/sprout-vm/diff; then
  fail "the host changed: $(head -c 1500 /run/sprout-vm/diff | tr '\n' ';')"
fi
[ "$(systemctl show -P InvocationID NetworkManager.service)" = "$nm" ] || fail "NetworkManager was restarted"
note "host manifest unchanged ($(wc -l </run/sprout-vm/before) lines); console: $(grep -v '^$' /etc/issue.d/50-sprout-post-pivot.issue | head -n2 | tr '\n' ' ')"
