# In the Debian guest: the real coreos-installer writes the CoreOS-like
# metal image (vm-tests/build-coreos-like, shared over 9p as coreos-like)
# onto the blank disk the host attached.
#   SPROUT_VM_IMAGE   the metal image (under /run/coreos-like)
#   SPROUT_VM_TARGET  the blank disk (e.g. /dev/vdb)
mkdir -p /run/coreos-like
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 coreos-like /run/coreos-like \
  || fail "cannot mount the host's coreos-like share"
udevadm settle --timeout=30
target="$SPROUT_VM_TARGET"
[ -b "$target" ] || fail "$target is not a block device"
[ -z "$(lsblk -rno NAME "$target" | tail -n +2)" ] || fail "$target is not blank: $(lsblk -rno NAME,LABEL "$target" | tr '\n' ';')"
start=$SECONDS
if ! coreos-installer install "$target" --image-file "$SPROUT_VM_IMAGE" --insecure >/run/install.log 2>&1; then
  tail -n 20 /run/install.log
  fail "coreos-installer install failed: $(tail -n1 /run/install.log)"
fi
note "coreos-installer install: $((SECONDS - start)) s: $(grep -v '^ *[0-9.]* [KMG]iB' /run/install.log | tail -n1)"
udevadm settle --timeout=30
for label in boot root; do
  [ -e "/dev/disk/by-partlabel/$label" ] || fail "no partition named $label on $target"
  [ "$(blkid -s LABEL -o value "/dev/disk/by-partlabel/$label")" = "$label" ] \
    || fail "the $label partition's filesystem is not labelled $label"
done
mkdir -p /run/installed
mount -o ro /dev/disk/by-partlabel/root /run/installed
ls -d /run/installed/ostree/deploy/rhcos/deploy/*.0 >/dev/null || fail "no rhcos deployment on the installed root"
umount /run/installed
note "lsblk: $(lsblk -rno NAME,PARTLABEL,LABEL,FSTYPE "$target" | tr '\n' ';')"
sync
