# The journey's factory phase (tests/vm_journey.rs), on the CoreOS-like
# OS booted live from the installation ISO that `sprout create image`
# made: real Ignition applied the ISO's config in the initramfs, and
# systemd started the install unit it wrote. This script plays the
# factory around it: the registry the seed comes from, and the metal
# image coreos-installer writes (the live system has no osmet image of
# itself). Then it waits: the unit runs `sprout ibi`, which powers the
# machine off at the end (`shutdown: true`); the verdict is given when
# systemd stops this script for the power-off, or when the unit fails.
#   SPROUT_VM_TARGET    the blank disk
#   SPROUT_VM_REGISTRY  the registry's storage, an ext4 disk filled on the
#                       host (a factory's registry is another machine's disk)
# /share/journey: expect.env, registry/ (TLS and htpasswd files).
# shellcheck disable=SC1091
. /share/journey/expect.env
unit=install-rhcos-and-restore-seed.service
target="$SPROUT_VM_TARGET"

# The verdict of a success is not this script's: ibi powers the machine
# off (`shutdown: true`) right after writing its report, which stops this
# script with the rest, usually before it can say anything (a trap on
# SIGTERM lost that race, and so did polling the report). After a clean
# power-off the host reads the report from the installed disk
# (tests/vm_journey/phases.rs); a failure of the unit is this script's
# verdict at once.

# What Ignition wrote from the ISO's config.
for f in /var/tmp/ibi-configuration.json /var/tmp/pull-secret.json \
  /usr/local/bin/install-rhcos-and-restore-seed.sh "/etc/systemd/system/$unit" \
  "/etc/containers/certs.d/$REGISTRY/ca.crt"; do
  [ -e "$f" ] || fail "Ignition did not write $f: $(journalctl -b --no-pager -t ignition | tail -n 8 | tr '\n' ';')"
done
expect_mode /var/tmp/pull-secret.json 600
note "Ignition wrote the install unit, the configuration and the pull secret ($(journalctl -b --no-pager -t ignition | grep -c 'writing file') files)"
[ "$(systemctl is-enabled "$unit" 2>&1)" = enabled ] || fail "$unit is $(systemctl is-enabled "$unit" 2>&1), not enabled"

# The factory around the live system.
mkdir -p /run/coreos-like
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 coreos-like /run/coreos-like \
  || fail "cannot mount the host's coreos-like share"
# The real coreos-installer; `install` is pointed at the metal image, which
# is what RHCOS's live system gets from its own osmet image (no network).
install -D -m 0755 /share/coreos-installer /usr/local/libexec/sprout-vm/coreos-installer
# SPROUT_VM_FAULT=install: the install fails as a disk that cannot be
# written would make it (the journey's readable-failure test).
cat >/usr/local/bin/coreos-installer <<WRAPPER
#!/bin/bash
# vm-tests (journey): osmet stand-in, see journey-factory.sh.
if [ "\${1:-}" = install ] && [ "${SPROUT_VM_FAULT:-}" = install ]; then
  echo "Error: writing to \$2: Input/output error (vm-tests fault)" >&2
  exit 1
fi
WRAPPER
cat >>/usr/local/bin/coreos-installer <<'WRAPPER'
if [ "${1:-}" = install ]; then
  shift
  exec /usr/local/libexec/sprout-vm/coreos-installer install \
    --image-file /run/coreos-like/metal.raw --insecure "$@"
fi
exec /usr/local/libexec/sprout-vm/coreos-installer "$@"
WRAPPER
chmod 0755 /usr/local/bin/coreos-installer
[ -b "$target" ] || fail "$target is not a block device"
[ -z "$(lsblk -rno NAME "$target" | tail -n +2)" ] || fail "$target is not blank"

# The registry's storage was filled on the host (tests/vm_journey/
# workstation.rs: pushing in the TCG guest took minutes); served here
# with TLS and htpasswd as a factory's mirror registry is.
mkdir -p /run/registry /var/tmp/registry
mount "$SPROUT_VM_REGISTRY" /var/tmp/registry || fail "cannot mount the registry's disk $SPROUT_VM_REGISTRY"
reg=/share/journey/registry
cat >/run/registry/config.yml <<CONF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: /var/tmp/registry
http:
  addr: $REGISTRY
  secret: sprout-vm
  tls:
    certificate: $reg/cert.pem
    key: $reg/key.pem
auth:
  htpasswd:
    realm: sprout-vm
    path: $reg/htpasswd
CONF
docker-registry serve /run/registry/config.yml >/run/registry/log 2>&1 &
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/${REGISTRY%:*}/${REGISTRY#*:}") 2>/dev/null && break
  sleep 0.2
done
(exec 3<>"/dev/tcp/${REGISTRY%:*}/${REGISTRY#*:}") 2>/dev/null \
  || fail "docker-registry did not listen on $REGISTRY: $(cat /run/registry/log)"
skopeo inspect --raw --authfile /var/tmp/pull-secret.json "docker://$SEED_IMAGE" >/dev/null \
  || fail "the registry does not serve the seed $SEED_IMAGE: $(tail -n3 /run/registry/log)"
note "registry: serving the seed, its images and the agent on $REGISTRY"

# The install unit's end: a failure is the verdict at once; a success is
# noted, then followed by ibi's power-off.
report=/mnt/var/lib/sprout/ibi-report.json
limit=1500
t0=$SECONDS
succeeded=""
while ((SECONDS - t0 < limit)); do
  case "$(systemctl show -P ActiveState "$unit")" in
  failed)
    step="$(sed -n 's/.*"failed_step": *"\([^"]*\)".*/\1/p' /mnt/var/lib/sprout/ibi-report.json 2>/dev/null | head -n1 || true)"
    # Before the target is mounted there is no report: sprout's last
    # words name the step ("failed at STEP: …").
    [ -n "$step" ] || step="$(journalctl -u "$unit" -b --no-pager -o cat | sed -n 's/^failed at \([a-z-]*\): .*/\1/p' | tail -n1 || true)"
    journalctl -u "$unit" -b --no-pager | tail -n 30 | sed 's/^/journal: /'
    fail "sprout ibi failed${step:+ at step $step}: $(journalctl -u "$unit" -b --no-pager -o cat | grep -v '^ ' | grep -iE 'error|refus|fail' | tail -n 2 | tr '\n' ' ')"
    ;;
  esac
  if [ -z "$succeeded" ] && grep -q '"outcome": *"succeeded"' "$report" 2>/dev/null; then
    succeeded=yes
    note "ibi succeeded (its report on the target says so); waiting for its power-off"
  fi
  sleep 1 &
  wait $! || true
done
[ -z "$succeeded" ] || fail "ibi succeeded, but the machine was not powered off within $limit s"
fail "$unit has not ended after $limit s: $(journalctl -u "$unit" -b --no-pager | tail -n 10 | tr '\n' ';')"
