# In the Debian guest (issue 11, acceptance 3, disk side): each preflight
# failure on real disks is refused with its message, exit non-zero, and
# nothing written. The host hashes the whole target disk (SHA-256) before
# the boot and after it; here each refusal is also checked at once: no
# partition table appeared, the disk's first and last MiB (where the GPT,
# wipefs and coreos-installer would write first) are unchanged.
#   SPROUT_VM_SMALL    a 2 GiB disk (too small for RHCOS)
#   SPROUT_VM_MOUNTED  a disk that is mounted while sprout looks at it
# /share/ibi/refuse/<name>.json: the configurations, made by tests/vm_ibi.rs;
# /share/ibi/refuse/<name>.want: words the refusal must contain, one a line.
# shellcheck disable=SC1091
. /share/vm-tests/guest/scenarios/ibi-common.sh
ibi_setup

ends() {
  local bytes
  bytes=$(blockdev --getsize64 "$1")
  { dd if="$1" bs=1M count=1 status=none
    dd if="$1" bs=1M skip=$((bytes / 1048576 - 1)) count=1 status=none; } | sha256sum
}

# Read-only, and with the inode tables and journal written by mkfs: a
# read-write ext4 updates its superblock (write time, kbytes written) and
# ext4lazyinit zeroes inode tables in the background, which changed the
# disk's first MiB under the check below in CI. Mounted read-only, it is as
# mounted for sprout's preflight and nothing writes to it but sprout could.
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$SPROUT_VM_MOUNTED" \
  || fail "mkfs.ext4 $SPROUT_VM_MOUNTED failed"
mkdir -p /run/in-use && mount -o ro "$SPROUT_VM_MOUNTED" /run/in-use || fail "cannot mount $SPROUT_VM_MOUNTED"

before_target="$(ends "$target")"
count=0
for cfg in "$ibi"/refuse/*.json; do
  name="$(basename "$cfg" .json)"
  disk="$(sed -n 's/.*"installationDisk": *"\([^"]*\)".*/\1/p' "$cfg")"
  before="$(ends "$disk")"
  if "$SPROUT" ibi -f "$cfg" >"/run/refuse-$name.log" 2>&1; then
    fail "$name: sprout ibi accepted it: $(tail -n3 "/run/refuse-$name.log")"
  fi
  while IFS= read -r want; do
    grep -qF -- "$want" "/run/refuse-$name.log" \
      || fail "$name: the refusal lacks '$want': $(grep -v '^ *$' "/run/refuse-$name.log" | head -n8 | tr '\n' ';')"
  done <"$ibi/refuse/$name.want"
  grep -q 'nothing was written' "/run/refuse-$name.log" || fail "$name: no 'nothing was written' in: $(head -n5 "/run/refuse-$name.log")"
  [ "$(ends "$disk")" = "$before" ] || fail "$name: $disk changed"
  [ "$(ends "$target")" = "$before_target" ] || fail "$name: $target changed"
  [ -z "$(lsblk -rno NAME "$target" | tail -n +2)" ] || fail "$name: $target has partitions now"
  note "$name: refused ($(grep -m1 -E 'installationDisk|seedImage|seedVersion|coreosInstallerArgs|extraPartition' "/run/refuse-$name.log" | cut -c1-120))"
  count=$((count + 1))
done
[ "$count" -ge 6 ] || fail "only $count refusals ran"
mountpoint -q /run/in-use || fail "$SPROUT_VM_MOUNTED was unmounted"
umount /run/in-use
sync
