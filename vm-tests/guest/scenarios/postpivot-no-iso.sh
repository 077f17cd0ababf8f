# Acceptance 5 (issue 12): no configuration medium. Each start waits
# config_medium seconds; the second (attempts: 2) is the last, so it fails
# for good: the unit stays failed, the console shows why, no restart loop.
. /share/vm-tests/guest/seed-node.sh
seed_settings '{"config_medium": 12, "attempts": 2, "announce_every": 4}'
seed_node_setup
t0=$SECONDS
systemctl start --no-block "$UNIT"
wait_postpivot_end 120
took=$((SECONDS - t0))
note "$UNIT failed for good after $took s: $(pp_status | grep -v '^step' | tr '\n' ' ')"
expect_state terminal
props=""
for p in ActiveState Result ExecMainStatus NRestarts; do props+="$p=$(systemctl show -P "$p" "$UNIT") "; done
[ "$props" = "ActiveState=failed Result=exit-code ExecMainStatus=3 NRestarts=1 " ] \
  || fail "expected two starts, the last with exit status 3, got: $props"
[ "$took" -ge 24 ] || fail "two starts of a 12 s wait ended after $took s"
grep -q 'cluster-config' /var/lib/sprout/post-pivot-status.json || fail "the error does not name the medium: $(pp_status | grep '^error=')"
issue=/etc/issue.d/50-sprout-post-pivot.issue
grep -q 'FAILED at step discover' "$issue" || fail "no console message: $(cat "$issue" 2>&1)"
grep -q 'cluster-config' "$issue" || fail "the console message has no reason: $(cat "$issue")"
note "console: $(grep -v '^$' "$issue" | head -n2 | tr '\n' ' ')"
status="$(systemctl show -P StatusText "$UNIT")"
case "$status" in "failed for good"*) ;; *) fail "the unit's status line is '$status'" ;; esac
# No loop: nothing restarts it.
sleep 6
[ "$(systemctl show -P NRestarts "$UNIT")/$(systemctl show -P ActiveState "$UNIT")" = 1/failed ] \
  || fail "the unit started again: NRestarts=$(systemctl show -P NRestarts "$UNIT")"
[ -d /var/seed_data ] || fail "the seed data went with a failed start"
