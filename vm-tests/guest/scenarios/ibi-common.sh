# Sourced by the ibi-*.sh scenarios (tests/vm_ibi.rs prepares /share/ibi):
# ibi_setup makes the live system an installation ISO would (pull secret,
# post.sh, and the seed in a registry on 127.0.0.1 with TLS and htpasswd,
# or on a second disk), ibi_check checks every outcome of issue 11's
# acceptance 1/2 on the installed disk, ibi_state prints the end state
# (acceptance 4 compares it between runs).
#   SPROUT_VM_MODE    registry | archive
#   SPROUT_VM_TARGET  the blank disk (/dev/vdb)
#   SPROUT_VM_USB     archive mode: the disk holding seed.oci.tar (/dev/vdc)
# /share/ibi/expect.env: SEED_COMMIT STATEROOT SEED_IMAGE SEED_TAG IMAGES
# IMAGE_TAGS REGISTRY; /share/ibi/kargs: the seed's kernel arguments, one a
# line.
ibi=/share/ibi
# shellcheck disable=SC1091
. "$ibi/expect.env"
mode="$SPROUT_VM_MODE"
target="$SPROUT_VM_TARGET"
label=var-lib-containers

# Sets $config.
ibi_setup() {
  mkdir -p /run/coreos-like
  mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 coreos-like /run/coreos-like \
    || fail "cannot mount the host's coreos-like share"
  udevadm settle --timeout=30
  [ -b "$target" ] || fail "$target is not a block device"
  [ -z "$(lsblk -rno NAME "$target" | tail -n +2)" ] || fail "$target is not blank"

  # What the installation ISO leaves on the live system (upstream's paths).
  install -m 0600 "$ibi/pull-secret.json" /var/tmp/pull-secret.json
  install -m 0755 "$ibi/post.sh" /var/tmp/post.sh

  case "$mode" in
  registry)
    # The seed and the precache images in a registry on 127.0.0.1 with TLS
    # and htpasswd, as a factory's mirror registry is.
    mkdir -p /run/registry /var/tmp/registry "/etc/containers/certs.d/$REGISTRY"
    cp "$ibi/registry/certs/ca.crt" "/etc/containers/certs.d/$REGISTRY/ca.crt"
    cat > /run/registry/config.yml <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: /var/tmp/registry
http:
  addr: $REGISTRY
  secret: sprout-vm
  tls:
    certificate: $ibi/registry/cert.pem
    key: $ibi/registry/key.pem
auth:
  htpasswd:
    realm: sprout-vm
    path: $ibi/registry/htpasswd
EOF
    docker-registry serve /run/registry/config.yml >/run/registry/log 2>&1 &
    for _ in $(seq 100); do
      (exec 3<>"/dev/tcp/${REGISTRY%:*}/${REGISTRY#*:}") 2>/dev/null && break
      sleep 0.2
    done
    (exec 3<>"/dev/tcp/${REGISTRY%:*}/${REGISTRY#*:}") 2>/dev/null \
      || fail "docker-registry did not listen on $REGISTRY: $(cat /run/registry/log)"
    push() {
      skopeo copy --quiet --preserve-digests --dest-authfile /var/tmp/pull-secret.json "$1" "docker://$2" \
        || fail "pushing $1 to $2 failed"
    }
    push "oci:$ibi/seed/oci:$SEED_TAG" "$SEED_IMAGE"
    for tag in $IMAGE_TAGS; do
      push "oci:$ibi/images:$tag" "$REGISTRY/openshift-release-dev/ocp-v4.0-art-dev:$tag"
    done
    note "registry: seed and $(wc -w <<<"$IMAGE_TAGS") precache images pushed to $REGISTRY"
    config="$ibi/ibi-registry.json"
    ;;
  archive)
    # The seed as an OCI archive on a second (USB-like) disk, no registry.
    mkdir -p /run/usb
    mount -o ro "$SPROUT_VM_USB" /run/usb || fail "cannot mount the seed disk $SPROUT_VM_USB"
    [ -f /run/usb/seed.oci.tar ] || fail "the seed disk has no seed.oci.tar"
    config="$ibi/ibi-archive.json"
    ;;
  *) fail "unknown mode $mode" ;;
  esac

}

# Runs sprout ibi to the end; $1 names the run's log and progress files.
ibi_run() {
  local start=$SECONDS
  # Also on the console, so a slow or failing run can be read there.
  if ! "$SPROUT" ibi -f "$config" --progress-json "/run/ibi-$1.jsonl" 2>&1 | tee "/run/ibi-$1.log" >/dev/ttyS0; then
    tail -n 40 "/run/ibi-$1.log"
    fail "sprout ibi ($1) failed: $(grep -av '^ ' "/run/ibi-$1.log" | tail -n1)"
  fi
  note "sprout ibi ($1): $((SECONDS - start)) s"
  grep -aE '^  [a-z-]+ +[a-z-]+ +[0-9.]+ s$' "/run/ibi-$1.log" | while read -r l; do note "  $l"; done || true
  udevadm settle --timeout=30
}

# Checks the installed disk; $1 is the progress file of the last run.
ibi_check() {
  local progress=$1
  # The extra partition: found by its name, XFS.
  label=var-lib-containers
  extra="/dev/disk/by-partlabel/$label"
  [ -e "$extra" ] || fail "no partition named $label: $(lsblk -rno NAME,PARTLABEL "$target" | tr '\n' ';')"
  [ "$(blkid -s TYPE -o value "$extra")" = xfs ] || fail "$label does not hold XFS: $(blkid "$extra")"
  note "lsblk: $(lsblk -rno NAME,PARTLABEL,FSTYPE,SIZE "$target" | tr '\n' ';')"

  # The root partition reaches the extra partition, its file system fills it.
  root_node="$(readlink -f /dev/disk/by-partlabel/root)"
  extra_node="$(readlink -f "$extra")"
  root_end=$(( $(cat "/sys/class/block/${root_node#/dev/}/start") + $(cat "/sys/class/block/${root_node#/dev/}/size") ))
  extra_start=$(cat "/sys/class/block/${extra_node#/dev/}/start")
  [ $((extra_start - root_end)) -lt 2048 ] \
    || fail "the root partition ends at sector $root_end, the extra partition starts at $extra_start: not grown"
  mountpoint -q /mnt || mount /dev/disk/by-partlabel/root /mnt
  mountpoint -q /mnt/boot || mount /dev/disk/by-partlabel/boot /mnt/boot
  part_bytes=$(( $(cat "/sys/class/block/${root_node#/dev/}/size") * 512 ))
  fs_bytes=$(df -B1 --output=size /mnt | tail -n1 | tr -d ' ')
  [ $((fs_bytes * 100 / part_bytes)) -ge 90 ] \
    || fail "the root file system has $fs_bytes bytes of the partition's $part_bytes: not grown"

  # ostree: only the seed's stateroot, at the seed's commit.
  status="$(ostree admin --sysroot=/mnt status 2>&1)" || fail "ostree admin status failed: $status"
  note "ostree admin status: $(tr '\n' ';' <<<"$status")"
  [ "$(ls /mnt/ostree/deploy)" = "$STATEROOT" ] || fail "stateroots left: $(ls /mnt/ostree/deploy | tr '\n' ' ')"
  grep -q "$STATEROOT $SEED_COMMIT\.0" <<<"$status" || fail "$STATEROOT is not at the seed commit $SEED_COMMIT"
  [ "$(grep -c '\.0' <<<"$status")" = 1 ] || fail "more than one deployment: $status"
  sr="/mnt/ostree/deploy/$STATEROOT"
  dep="$sr/deploy/$SEED_COMMIT.0"

  # Kernel arguments of the seed, each one argument, quotes and `$` kept.
  entry="$(grep -l "ostree=/ostree/boot.*/$STATEROOT/" /mnt/boot/loader/entries/*.conf)" \
    || fail "no boot entry for $STATEROOT: $(ls /mnt/boot/loader/entries)"
  options="$(sed -n 's/^options //p' "$entry")"
  note "boot entry options: $options"
  while IFS= read -r karg; do
    grep -qF -- " $karg " <<<" $options " || fail "the boot entry lacks the seed's kernel argument $karg"
  done <"$ibi/kargs"

  # .origin, /var, /etc.
  cmp -s "$ibi/seed/root/ostree-$SEED_COMMIT.0.origin" "$dep.origin" || fail "the deployment's .origin is not the seed's"
  # The guest has no getfattr (attr); GNU tar reads xattrs as well.
  tar --xattrs --xattrs-include='user.*' -cf - -C "$sr/var/lib/misc" with-xattr \
    | grep -aq 'SCHILY.xattr.user.sprout.test=kept' \
    || fail "var/lib/misc/with-xattr lost its xattr user.sprout.test"
  [ "$(stat -c %u:%a "$sr/var/home/core/.ssh")" = "1000:700" ] || fail "var/home/core/.ssh: $(stat -c %u:%a "$sr/var/home/core/.ssh")"
  [ -s "$sr/var/lib/etcd/member/snap/db" ] || fail "var/lib/etcd/member/snap/db was not restored"
  [ "$(readlink "$sr/var/lib/kubelet/pki/kubelet-client-current.pem")" = /var/lib/kubelet/pki/kubelet-client-2024-06-01-00-00-00.pem ] \
    || fail "the kubelet certificate link was not restored"
  grep -q 'seed cluster node' "$dep/etc/motd" || fail "etc.tgz was not restored into the deployment's /etc"
  [ -L "$dep/etc/systemd/system/multi-user.target.wants/installation-configuration.service" ] \
    || fail "installation-configuration.service is not enabled in the deployment's /etc"
  [ ! -e "$dep/etc/sprout-seed-deleted.conf" ] || fail "etc.deletions was not applied"
  cmp -s "$SPROUT" "$sr/var/usrlocal/bin/lca-cli" || fail "var/usrlocal/bin/lca-cli is not sprout"

  # Precache: every image in the container storage on the extra partition.
  if [ "$mode" = registry ]; then
    [ "$(findmnt -no SOURCE /var/lib/containers)" = "$extra_node" ] \
      || fail "/var/lib/containers is not the extra partition: $(findmnt -no SOURCE /var/lib/containers)"
    for image in $IMAGES; do
      podman image exists "$image" || fail "$image is not in the container storage: $(podman images --digests 2>&1 | tr '\n' ';')"
    done
    grep -q '"total": *'"$(wc -w <<<"$IMAGES")" /var/lib/lca/workspace/precache_status.json \
      || fail "precache_status.json: $(cat /var/lib/lca/workspace/precache_status.json)"
    note "precache: $(wc -w <<<"$IMAGES") images in $(findmnt -no SOURCE /var/lib/containers)"
  fi

  # post.sh ran; the report and progress stream.
  [ -f /run/sprout-post-ran ] || fail "post.sh did not run"
  [ "$(cat /run/sprout-post-ran)" = "ran " ] || fail "post.sh ran other than once without arguments: $(cat /run/sprout-post-ran)"
  report=/mnt/var/lib/sprout/ibi-report.json
  [ -f "$report" ] || fail "no $report"
  grep -q '"outcome": *"succeeded"' "$report" || fail "the report says: $(head -c 400 "$report")"
  ends=$(grep -c '"type":"step-end"' "$progress") || true
  grep -q '"type":"plan-end".*"outcome":"succeeded"' "$progress" \
    || fail "the progress stream has no successful plan-end: $(tail -n2 "$progress")"
  note "progress: $(wc -l <"$progress") events, $ends step ends"
}

# The end state, one "SPROUT-VM state" line each: the partition table
# (names, starts, sizes), ostree admin status, the deployment's and the
# stateroot var's files (path, type, mode, owner, link target, SHA-256),
# the container storage's images.
ibi_state() {
  local sr="/mnt/ostree/deploy/$STATEROOT" dep
  dep="$sr/deploy/$SEED_COMMIT.0"
  {
    sfdisk -d "$target" | grep '^/dev' | sed 's/, uuid=[^,]*//'
    ostree admin --sysroot=/mnt status
    for tree in "$dep" "$sr/var"; do
      (cd "$tree" && find . -xdev -printf '%p %y %m %U:%G %l\n' | LC_ALL=C sort)
      (cd "$tree" && find . -xdev -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
    done
    if [ "$mode" = registry ]; then
      podman images --digests --format '{{.Repository}}@{{.Digest}}' | LC_ALL=C sort
    fi
  } | sed 's/^/SPROUT-VM state /'
}
