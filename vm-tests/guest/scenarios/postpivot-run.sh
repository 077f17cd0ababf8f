# Acceptance 4 (issue 12): the seed's unit runs post-pivot for real, with
# the site's config ISO attached, and the node becomes the site's.
. /share/vm-tests/guest/seed-node.sh
udevadm settle --timeout=30
seed_settings '{"config_medium": 120, "etcd_health": 180, "recert": 300, "api": 180, "primary_ip": 120, "announce_every": 10}'
seed_node_setup
before_nm="$(systemctl show -P InvocationID NetworkManager.service)"
before_dnsmasq="$(systemctl show -P InvocationID dnsmasq.service)"
before_chrony="$(systemctl show -P InvocationID chrony.service)"

t0=$SECONDS
systemctl start --no-block "$UNIT"
wait_postpivot_end 420
note "post-pivot ended after $((SECONDS - t0)) s: $(pp_status | grep -v '^step' | tr '\n' ' ')"
note "steps: $(pp_status | sed -n 's/^step //p' | tr '\n' ';')"
expect_state succeeded
props=""
for p in ActiveState Result ExecMainStatus NRestarts; do props+="$p=$(systemctl show -P "$p" "$UNIT") "; done
[ "$props" = "ActiveState=inactive Result=success ExecMainStatus=0 NRestarts=0 " ] \
  || fail "expected one clean start of $UNIT, got: $props"

# Hostname, SSH key, pull secret.
[ "$(hostname)" = sno1 ] || fail "the hostname is $(hostname), expected sno1"
[ "$(cat /etc/hostname)" = sno1 ] || fail "/etc/hostname holds $(cat /etc/hostname)"
key=/home/core/.ssh/authorized_keys.d/ib-early-access
grep -q '^ssh-ed25519 ' "$key" || fail "$key holds no SSH key"
expect_mode "$key" 600
[ "$(stat -c %U "$key")" = core ] || fail "$key is owned by $(stat -c %U "$key"), not core"
grep -q '"auths"' /var/lib/kubelet/config.json || fail "/var/lib/kubelet/config.json holds no pull secret"
expect_mode /var/lib/kubelet/config.json 600

# NetworkManager: the keyfile copied and applied by the restart.
kf=/etc/NetworkManager/system-connections/sno-node.nmconnection
[ -f "$kf" ] || fail "$kf was not copied"
expect_mode "$kf" 600
[ "$(systemctl show -P InvocationID NetworkManager.service)" != "$before_nm" ] || fail "NetworkManager was not restarted"
ip -o -4 addr show dev dummy0 | grep -q ' 192.168.122.10/24 ' \
  || fail "NetworkManager did not apply the keyfile: $(ip -o addr 2>&1 | tr '\n' ';')"
note "dummy0: $(ip -o -4 addr show dev dummy0 | awk '{print $4}'), connection $(nmcli -g GENERAL.STATE connection show sno-node 2>/dev/null)"

# Node IP hint, node IP, dnsmasq.
[ "$(cat /etc/default/nodeip-configuration)" = "KUBELET_NODEIP_HINT=192.168.122.0" ] \
  || fail "/etc/default/nodeip-configuration: $(cat /etc/default/nodeip-configuration)"
[ "$(cat /run/nodeip-configuration/primary-ip)" = 192.168.122.10 ] || fail "primary-ip: $(cat /run/nodeip-configuration/primary-ip)"
want="$(printf 'SNO_CLUSTER_NAME_OVERRIDE=sno1\nSNO_BASE_DOMAIN_OVERRIDE=example.com\nSNO_DNSMASQ_IP_OVERRIDE=192.168.122.10')"
[ "$(cat /etc/default/sno_dnsmasq_configuration_overrides)" = "$want" ] \
  || fail "dnsmasq overrides: $(cat /etc/default/sno_dnsmasq_configuration_overrides | tr '\n' ';')"
[ "$(systemctl show -P InvocationID dnsmasq.service)" != "$before_dnsmasq" ] || fail "dnsmasq was not restarted"
[ "$(systemctl show -P ActiveState dnsmasq.service)" = active ] || fail "dnsmasq is not running after its restart"

# recert (stand-in) and the temporary etcd; chrony restarted on its file.
grep -q '^recert_standin: true' /var/tmp/recert-summary.yaml || fail "no recert summary: $(cat /var/tmp/recert-summary.yaml 2>&1)"
[ -z "$(podman ps -aq)" ] || fail "containers are left: $(podman ps -a --format '{{.Names}} {{.Status}}')"
grep -qx 'server 192.168.122.1 iburst' /etc/chrony.conf || fail "/etc/chrony.conf is not the site's: $(tr '\n' ';' </etc/chrony.conf)"
[ "$(systemctl show -P InvocationID chrony.service)" != "$before_chrony" ] || fail "chrony was not restarted"
chronyc -n sources 2>&1 | grep -q '192.168.122.1' || fail "chronyd does not use the site's server: $(chronyc -n sources 2>&1 | tr '\n' ';')"
grep -q . /run/sprout-vm/update-ca-trust.calls || fail "update-ca-trust did not run"
etcd --name check --data-dir /var/lib/etcd --listen-client-urls http://127.0.0.1:12379 \
  --advertise-client-urls http://127.0.0.1:12379 --listen-peer-urls http://127.0.0.1:12380 \
  --initial-advertise-peer-urls http://127.0.0.1:12380 >/run/sprout-vm/etcd-check.log 2>&1 &
etcd_pid=$!
renamed=""
for ((i = 0; i < 60; i++)); do
  renamed="$(ETCDCTL_API=3 etcdctl --endpoints 127.0.0.1:12379 get --print-value-only /sprout-vm/recert/cluster_rename 2>/dev/null)" && break
  sleep 1
done
kill "$etcd_pid"; wait "$etcd_pid" || true
[ "$renamed" = "sno1:example.com" ] || [ "${renamed%:*}" = "sno1:example.com" ] \
  || fail "the seed's etcd data does not hold recert's write: '$renamed'"
note "etcd (/var/lib/etcd) holds recert's cluster_rename $renamed"

# kubelet enabled and started; the manifests in the API.
[ "$(systemctl is-enabled kubelet.service)" = enabled ] || fail "kubelet is not enabled"
[ -f /run/sprout-vm/kubelet.started ] || fail "kubelet was not started"
# The API stand-in's objects: KEY<tab>JSON a line.
objects="$(cat /run/sprout-vm/kube-objects)"
keys="$(cut -f1 <<<"$objects")"
for o in "/namespaces//sprout-vm" "/configmaps/sprout-vm/greeting" \
  "machineconfiguration.openshift.io/machineconfigs//99-master-ssh" \
  "machineconfiguration.openshift.io/machineconfigs//99-worker-ssh"; do
  grep -qx -- "$o" <<<"$keys" || fail "$o is not in the API: $(tr '\n' ' ' <<<"$keys")"
done
for o in "operator.openshift.io/imagecontentsourcepolicies//seed-mirror" \
  "operators.coreos.com/catalogsources/openshift-marketplace/seed-catalog"; do
  ! grep -qx -- "$o" <<<"$keys" || fail "the seed's $o is still in the API"
done
cv="$(grep '^config.openshift.io/clusterversions//version' <<<"$objects" | cut -f2)"
grep -q '"clusterID":"' <<<"$cv" && ! grep -q '"clusterID":"seed-cluster-id"' <<<"$cv" \
  || fail "the cluster ID was not set: $cv"
node="$(grep '^/nodes//sno1' <<<"$objects" | cut -f2)"
grep -q '"site":"vm-tests"' <<<"$node" || fail "the node has no site label: $node"
note "API objects: $(tr '\n' ' ' <<<"$keys")"

# The end: the unit disabled, the working directory and seed data gone.
[ "$(systemctl is-enabled "$UNIT" 2>&1)" = disabled ] || fail "$UNIT is $(systemctl is-enabled "$UNIT" 2>&1), not disabled"
[ ! -e /opt/openshift ] || fail "/opt/openshift is still there: $(ls -A /opt/openshift | tr '\n' ' ')"
[ ! -e /var/seed_data ] || fail "/var/seed_data is still there"
[ ! -e /etc/issue.d/50-sprout-post-pivot.issue ] || fail "a failure message is on the console"
