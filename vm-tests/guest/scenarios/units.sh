# The units of systemd/, installed as a packager would and started for real:
# installation-configuration.service waits (Type=notify: active, with a
# status line), the host inserts the ISO, the unit finds it through udev,
# copies it and exits successfully; its journal carries sprout's fields.
install -m 0755 "$SPROUT" /usr/local/bin/sprout
install -m 0644 /share/systemd/*.service /etc/systemd/system/
# This scenario checks the unit's discovery (the guest is no seed node);
# the whole flow has its own scenario (issue 12, acceptance 4).
mkdir -p /etc/systemd/system/installation-configuration.service.d
printf '[Service]\nExecStart=\nExecStart=/usr/local/bin/sprout post-pivot --until discovered\n' \
  >/etc/systemd/system/installation-configuration.service.d/10-discovery-only.conf
systemctl daemon-reload
unit=installation-configuration.service

for u in /share/systemd/*.service; do
  u="$(basename "$u")"
  [ "$(systemctl show -P LoadState "$u")" = loaded ] || fail "$u did not load: $(systemctl status "$u" 2>&1 | tail -n3)"
done
props="$(unit_props "$unit" Type Restart StartLimitBurst StartLimitIntervalUSec After)"
note "$unit: $(tr '\n' ' ' <<<"$props")"
grep -qx 'Type=notify' <<<"$props" || fail "$unit is not Type=notify"
grep -qx 'StartLimitBurst=3' <<<"$props" || fail "$unit has no bounded restart"
grep -q 'coreos-update-ca-trust.service' <<<"$props" || fail "$unit is not ordered after coreos-update-ca-trust.service"
live="$(unit_props install-rhcos-and-restore-seed.service Type Restart StartLimitBurst After Wants)"
note "install-rhcos-and-restore-seed.service: $(tr '\n' ' ' <<<"$live")"
grep -qx 'StartLimitBurst=3' <<<"$live" || fail "install-rhcos-and-restore-seed.service has no bounded restart"

# Type=notify: start returns once sprout has sent READY=1 (without it,
# start would block until TimeoutStartSec and fail).
t0=$(date +%s%N)
timeout 60 systemctl start "$unit" || fail "systemctl start $unit failed or hung: $(systemctl status "$unit" 2>&1 | tail -n5)"
note "systemctl start returned (READY=1) after $((($(date +%s%N) - t0) / 1000000)) ms"
for ((i = 0; i < 100; i++)); do
  status="$(systemctl show -P StatusText "$unit")"
  case "$status" in "waiting for a block device labelled"*) break ;; esac
  sleep 0.2
done
state="$(systemctl show -P ActiveState "$unit")/$(systemctl show -P SubState "$unit")"
note "while waiting: $state, StatusText=$status"
[ "$state" = active/running ] || fail "expected the unit active/running while it waits, got $state"
case "$status" in
  "waiting for a block device labelled cluster-config or relocation-config ("*" s left)") ;;
  *) fail "expected sd_notify's status line, got StatusText=$status" ;;
esac

ask_host insert-cdrom
wait_unit_done "$unit" 60
done_props=""
for p in ActiveState Result ExecMainStatus NRestarts; do
  done_props+="$p=$(systemctl show -P "$p" "$unit") "
done
note "after the insertion: $done_props"
[ "$done_props" = "ActiveState=inactive Result=success ExecMainStatus=0 NRestarts=0 " ] \
  || fail "expected a clean exit, got: $done_props; journal: $(journalctl -u "$unit" -b --no-pager | tail -n5)"
expect_configuration_copied

# sprout's structured fields are journal fields (no F_ prefix).
fields="$(journalctl -u "$unit" -b -o verbose --no-pager)"
for f in SYSLOG_IDENTIFIER=sprout CONFIG_DEVICE=/dev/sr0 CONFIG_LABEL=cluster-config FOUND_BY=udev-event; do
  grep -q "^    $f\$" <<<"$fields" || fail "the journal of $unit has no $f field"
done
note "journal fields: SYSLOG_IDENTIFIER=sprout CONFIG_DEVICE=/dev/sr0 CONFIG_LABEL=cluster-config FOUND_BY=udev-event"
