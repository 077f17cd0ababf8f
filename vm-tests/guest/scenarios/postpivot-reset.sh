# Acceptance 5 (issue 12): the guest is reset while recert runs (sysrq,
# no sync: as a power cut). Two boots of one writable disk: the first lays
# the seed out, starts the unit and resets once the recert stand-in is
# running; on the second the enabled unit starts at boot, resumes at recert
# (the steps before it are not run again) and succeeds.
. /share/vm-tests/guest/seed-node.sh
phase=/etc/sprout-vm/reset-phase
if [ ! -e "$phase" ]; then
  udevadm settle --timeout=30
  seed_settings '{"config_medium": 120, "etcd_health": 180, "recert": 300, "api": 180, "primary_ip": 120, "announce_every": 10}'
  seed_node_setup
  touch /etc/sprout-vm/recert-pause-once
  echo 1 >"$phase"
  sync
  systemctl start --no-block "$UNIT"
  for ((i = 0; i < 400; i++)); do
    [ -e /var/tmp/recert-standin.paused ] && break
    sleep 1
  done
  [ -e /var/tmp/recert-standin.paused ] || fail "recert did not start within 400 s: $(pp_status | tr '\n' ';')"
  note "post-pivot at: $(pp_status | grep -E '^(state|current_step)=' | tr '\n' ' ')"
  note "resetting the guest during recert"
  sleep 1
  echo b >/proc/sysrq-trigger
  sleep 60
  fail "the guest did not reset"
fi

note "second boot: $UNIT is $(systemctl show -P ActiveState "$UNIT"), recert ran $(cat /etc/sprout-vm/recert-runs) time(s) so far"
wait_postpivot_end 400
note "post-pivot ended: $(pp_status | grep -v '^step' | tr '\n' ' ')"
note "steps: $(pp_status | sed -n 's/^step //p' | tr '\n' ';')"
expect_state succeeded
# Resumed: what changed the host before recert is not done again.
for s in discover ssh-key pull-secret network-keyfiles restart-networkmanager hostname node-ip-hint dnsmasq ca-trust; do
  expect_step "$s" skipped
done
expect_step recert ran
[ "$(cat /etc/sprout-vm/recert-runs)" = 2 ] || fail "recert ran $(cat /etc/sprout-vm/recert-runs) times, expected 2"
grep -q '^run: 2' /var/tmp/recert-summary.yaml || fail "the summary is not the second run's: $(cat /var/tmp/recert-summary.yaml)"
[ "$(hostname)" = sno1 ] || fail "the hostname is $(hostname)"
[ "$(systemctl is-enabled "$UNIT" 2>&1)" = disabled ] || fail "$UNIT is not disabled"
[ ! -e /opt/openshift ] || fail "/opt/openshift is still there"
[ -z "$(podman ps -aq)" ] || fail "containers are left: $(podman ps -a --format '{{.Names}} {{.Status}}')"
