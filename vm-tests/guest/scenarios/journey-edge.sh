# The journey's edge phase (tests/vm_journey.rs): the CoreOS-like OS
# booted from the disk `sprout ibi` installed, into the seed's deployment
# (kernel, initramfs and arguments of its boot entry, ostree-prepare-root),
# the site's config ISO attached. The seed's installation-configuration
# .service (from its etc.tgz) runs the lca-cli that ibi installed, which
# is sprout's post-pivot. This script only waits and checks; at the end
# it hands the host both phases' reports for the journey's table.
# /share/journey: expect.env, kargs.
# shellcheck disable=SC1091
. /share/journey/expect.env
unit=installation-configuration.service
status_file=/var/lib/sprout/post-pivot-status.json

# Booted into the seed's deployment, with the seed's kernel arguments.
[ -e /run/ostree-booted ] || fail "not booted through ostree-prepare-root: $(cat /proc/cmdline)"
os_status="$(ostree admin status 2>&1)" || fail "ostree admin status failed: $os_status"
grep -q "^\* $STATEROOT $SEED_COMMIT\.0" <<<"$os_status" \
  || fail "the booted deployment is not $STATEROOT $SEED_COMMIT.0: $(tr '\n' ';' <<<"$os_status")"
note "ostree admin status: $(tr '\n' ';' <<<"$os_status")"
while IFS= read -r karg; do
  grep -qF -- " $karg " <<<" $(cat /proc/cmdline) " || fail "booted without the seed's kernel argument $karg: $(cat /proc/cmdline)"
done </share/journey/kargs
cmp -s /usr/local/bin/lca-cli /share/sprout || fail "/usr/local/bin/lca-cli is not the sprout that ibi ran"
extra="$(readlink -f /dev/disk/by-partlabel/var-lib-containers)"
[ "$(findmnt -no SOURCE /var/lib/containers)" = "$extra" ] \
  || fail "/var/lib/containers is not the extra partition: $(findmnt -no SOURCE /var/lib/containers)"
for image in $IMAGES; do
  podman image exists "$image" || fail "the precached $image is not in the container storage: $(podman images --digests 2>&1 | tr '\n' ';')"
done

# post-pivot's end: succeeded, or terminal (a failure that no restart can
# fix), or the unit failed for good.
pp_status() {
  SPROUT_VM_HELPER=status "$HELPER" --ignored --exact guest_helper --nocapture --quiet
}
limit=1200
t0=$SECONDS
while :; do
  state="$(sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p' "$status_file" 2>/dev/null | head -n1)"
  active="$(systemctl show -P ActiveState "$unit")/$(systemctl show -P SubState "$unit")"
  case "$state:$active" in
  succeeded:inactive/dead) break ;;
  terminal:* | *:failed/failed)
    journalctl -u "$unit" -b --no-pager | tail -n 30 | sed 's/^/journal: /'
    fail "post-pivot ended $state at step $(sed -n 's/.*"current_step": *"\([^"]*\)".*/\1/p' "$status_file" | head -n1): $(grep -A2 '"error"' "$status_file" | tail -n +2 | tr -s ' \n' ' ')"
    ;;
  esac
  ((SECONDS - t0 < limit)) || fail "$unit has not ended after $limit s ($active, state '$state'): $(journalctl -u "$unit" -b --no-pager | tail -n 15 | tr '\n' ';')"
  sleep 2
done
note "post-pivot succeeded after $((SECONDS - t0)) s of waiting: $(pp_status | grep -v '^step' | tr '\n' ' ')"

# The node is the site's.
[ "$(hostname)" = sno1 ] || fail "the hostname is $(hostname), expected sno1"
[ "$(cat /run/nodeip-configuration/primary-ip)" = "$NODE_IP" ] || fail "primary-ip: $(cat /run/nodeip-configuration/primary-ip)"
[ "$(cat /etc/default/nodeip-configuration)" = "KUBELET_NODEIP_HINT=192.168.122.0" ] \
  || fail "/etc/default/nodeip-configuration: $(cat /etc/default/nodeip-configuration)"
ip -o -4 addr show dev dummy0 | grep -q " $NODE_IP/24 " || fail "the site's address is not up: $(ip -o -4 addr | tr '\n' ';')"
grep -q '"auths"' /var/lib/kubelet/config.json || fail "/var/lib/kubelet/config.json holds no pull secret"
expect_mode /var/lib/kubelet/config.json 600
grep -q '^recert_standin: true' /var/tmp/recert-summary.yaml || fail "recert did not run: $(cat /var/tmp/recert-summary.yaml 2>&1)"
[ "$(systemctl is-enabled kubelet.service)" = enabled ] || fail "kubelet is not enabled"
[ "$(systemctl show -P ActiveState kubelet.service)" = active ] || fail "kubelet is not running"
[ -f /run/sprout-vm/kubelet.started ] || fail "kubelet was not started"
grep -q '^/configmaps/sprout-vm/greeting' /run/sprout-vm/kube-objects || fail "the site's manifests are not in the API"
[ "$(systemctl is-enabled "$unit" 2>&1)" = disabled ] || fail "$unit is $(systemctl is-enabled "$unit" 2>&1), not disabled"
[ ! -e /var/seed_data ] || fail "/var/seed_data is still there"
note "node: hostname $(hostname), node IP $(cat /run/nodeip-configuration/primary-ip), kubelet $(systemctl is-enabled kubelet.service)/$(systemctl show -P ActiveState kubelet.service), $unit $(systemctl is-enabled "$unit" 2>&1)"

# Both phases' reports, for the host's table.
ibi_report=/sysroot/var/lib/sprout/ibi-report.json
grep -q '"outcome": *"succeeded"' "$ibi_report" || fail "ibi's report says: $(head -c 300 "$ibi_report")"
echo "SPROUT-VM file ibi-report $(base64 -w0 "$ibi_report")"
echo "SPROUT-VM file post-pivot-status $(base64 -w0 "$status_file")"
