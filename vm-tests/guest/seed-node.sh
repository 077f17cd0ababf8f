# Lays the guest out like an installed seed at its first boot, for the
# post-pivot scenarios (sourced after lib.sh; tests/vm_postpivot.rs says
# what is real and what stands in for what). The seed's facts come from the
# host: /share/postpivot/seed-manifest.json.

HELPER=/usr/local/libexec/sprout-vm/helper
UNIT=installation-configuration.service
LB_EXT=/etc/kubernetes/static-pod-resources/kube-apiserver-certs/secrets/node-kubeconfigs/lb-ext.kubeconfig
ETCD_IMAGE=localhost/sprout-vm/etcd:3.4
RECERT_IMAGE=localhost/sprout-vm/recert-standin:latest

# An image of the executable $2 and the libraries it loads, named $1, with
# the environment $3 (one VAR=VALUE) and the entrypoint $4.. (the guest has
# no registry: podman import).
image_of() {
  local name=$1 bin=$2 env=$3 dir
  shift 3
  dir="$(mktemp -d)"
  # nsswitch.conf: `localhost` resolves from the hosts file podman writes.
  { echo "$bin"; ldd "$bin" | grep -o '/[^ ]*'; ls /etc/nsswitch.conf 2>/dev/null || true; } | sed 's|^/||' | sort -u >"$dir/files"
  tar --dereference -cf "$dir/rootfs.tar" -C / -T "$dir/files"
  local entry
  entry="$(printf '"%s",' "$@")"
  podman import -q --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change "ENV $env" \
    --change "ENTRYPOINT [${entry%,}]" "$dir/rootfs.tar" "$name" >/dev/null \
    || fail "podman import $name failed"
  rm -rf "$dir"
}

# The seed's settings file: $1 is the JSON object.
seed_settings() {
  mkdir -p /etc/sprout
  printf '%s\n' "$1" >/etc/sprout/post-pivot.json
}

seed_node_setup() {
  local t0=$SECONDS
  install -D -m 0755 "$SPROUT" /usr/local/bin/sprout
  install -D -m 0755 /share/vm-helper "$HELPER"
  id core >/dev/null 2>&1 || useradd -m -s /bin/bash core
  mkdir -p /var/seed_data /etc/kubernetes/manifests "$(dirname "$LB_EXT")" /var/lib/kubelet \
    /var/lib/etcd /etc/machine-config-daemon /etc/pki/ca-trust/source/anchors /etc/ssh /var/tmp \
    /etc/sprout-vm /run/sprout-vm
  install -m 0600 /share/postpivot/seed-manifest.json /var/seed_data/manifest.json
  # What the MCO leaves on a node; recert's configuration names it.
  echo '{}' >/etc/mcs-machine-config-content.json

  image_of "$ETCD_IMAGE" /usr/bin/etcd SPROUT_VM_IMAGE=etcd /usr/bin/etcd
  image_of "$RECERT_IMAGE" "$HELPER" SPROUT_VM_HELPER=recert \
    "$HELPER" --ignored --exact guest_helper --nocapture --quiet
  cat >/etc/kubernetes/manifests/etcd-pod.yaml <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: openshift-etcd
spec:
  containers:
  - name: etcdctl
    image: $ETCD_IMAGE
  - name: etcd
    image: $ETCD_IMAGE
    command: [/bin/sh, -c, etcd]
EOF
  # The seed's kubeconfig, where kubelet's API server will answer.
  cat >"$LB_EXT" <<'EOF'
apiVersion: v1
kind: Config
clusters:
- name: lb-ext
  cluster:
    server: http://127.0.0.1:6443
contexts:
- name: admin
  context:
    cluster: lb-ext
    user: admin
current-context: admin
users:
- name: admin
  user: {}
EOF

  # kubelet stand-in: records its start, then serves the API.
  cat >/etc/systemd/system/kubelet.service <<EOF
[Unit]
Description=kubelet stand-in (vm-tests): serves sprout's Kubernetes API test server
[Service]
Type=simple
Environment=SPROUT_VM_HELPER=kube-api
ExecStartPre=/usr/bin/mkdir -p /run/sprout-vm
ExecStartPre=/usr/bin/touch /run/sprout-vm/kubelet.started
ExecStart=$HELPER --ignored --exact guest_helper --nocapture --quiet
[Install]
WantedBy=multi-user.target
EOF
  # nodeip-configuration stand-in: the address the hint routes to.
  install -m 0755 /share/vm-tests/guest/nodeip-configuration /usr/local/libexec/sprout-vm/nodeip-configuration
  cat >/etc/systemd/system/nodeip-configuration.service <<'EOF'
[Unit]
Description=nodeip-configuration stand-in (vm-tests)
[Service]
Type=oneshot
RemainAfterExit=yes
EnvironmentFile=-/etc/default/nodeip-configuration
ExecStart=/usr/local/libexec/sprout-vm/nodeip-configuration
EOF
  # update-ca-trust stand-in (RHCOS's tool): records its calls.
  printf '#!/bin/sh\nmkdir -p /run/sprout-vm\necho "update-ca-trust $*" >>/run/sprout-vm/update-ca-trust.calls\n' \
    >/usr/local/sbin/update-ca-trust
  chmod 0755 /usr/local/sbin/update-ca-trust

  # chrony reads /etc/chrony.conf, as on RHCOS (recert rewrites that file).
  printf 'server 203.0.113.1 iburst\ndriftfile /var/lib/chrony/chrony.drift\n' >/etc/chrony.conf
  echo 'DAEMON_OPTS="-F 1 -f /etc/chrony.conf"' >/etc/default/chrony
  systemctl restart chrony.service

  install -m 0644 /share/systemd/"$UNIT" /etc/systemd/system/
  mkdir -p /etc/systemd/system/"$UNIT".d
  # Restarts after 2 s instead of 30 s: the scenarios' time is short.
  printf '[Service]\nRestartSec=2s\n' >/etc/systemd/system/"$UNIT".d/10-vm-tests.conf
  systemctl daemon-reload
  # Enabled, as on the seed: the reset scenario's next boot starts it.
  systemctl enable -q "$UNIT"
  for u in NetworkManager.service dnsmasq.service chrony.service; do
    [ "$(systemctl show -P ActiveState "$u")" = active ] \
      || fail "$u is not running on the seed node: $(systemctl status "$u" 2>&1 | tail -n5)"
  done
  note "seed node laid out in $((SECONDS - t0)) s (images: $(podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | tr '\n' ';'))"
}

# Prints the status file as state=…, step ID OUTCOME lines.
pp_status() {
  SPROUT_VM_HELPER=status "$HELPER" --ignored --exact guest_helper --nocapture --quiet
}

# The status file says $1 (after the unit ended).
expect_state() {
  local got
  got="$(pp_status | sed -n 's/^state=//p')"
  [ "$got" = "$1" ] || fail "post-pivot's state is '$got', expected $1: $(pp_status | tr '\n' ';') journal: $(journalctl -u "$UNIT" -b --no-pager | tail -n 15)"
}

# Step $1 had outcome $2 in the last start.
expect_step() {
  grep -qx "step $1 $2" <<<"$(pp_status)" || fail "step $1 is not '$2': $(pp_status | grep '^step' | tr '\n' ';')"
}

# Waits up to $1 seconds for the unit to be done with every start it will
# make: sprout's status file says succeeded or terminal and the unit is
# inactive or failed (not restarting).
wait_postpivot_end() {
  local limit=$1 t0=$SECONDS state
  while ((SECONDS - t0 < limit)); do
    if grep -qE '"state": "(succeeded|terminal)"' /var/lib/sprout/post-pivot-status.json 2>/dev/null; then
      state="$(systemctl show -P ActiveState "$UNIT")/$(systemctl show -P SubState "$UNIT")"
      case "$state" in inactive/dead | failed/failed) return 0 ;; esac
    fi
    sleep 1
  done
  fail "$UNIT has not ended after $limit s ($(systemctl show -P ActiveState "$UNIT")): $(journalctl -u "$UNIT" -b --no-pager | tail -n 15)"
}

# A manifest of what post-pivot may change on the host (paths, types,
# modes, owners, contents), without what changes by itself.
host_manifest() {
  local dirs=(/etc /home /var/lib/kubelet /var/lib/etcd /var/seed_data /var/tmp /usr/local)
  find "${dirs[@]}" -xdev \( -path /etc/issue.d -o -path '/var/tmp/systemd-private-*' \) -prune \
    -o -printf '%p %y %m %u\n' | sort
  find "${dirs[@]}" -xdev \( -path /etc/issue.d -o -path '/var/tmp/systemd-private-*' \) -prune \
    -o -type f -print0 | sort -z | xargs -0 sha256sum
  hostname
}
