# Booted with an initramfs that dracut built with sprout's module; the root
# filesystem has no sprout. The module ran sprout in the initramfs (its
# version is in /run), handed it and its units to the booted system through
# /run and enabled installation-configuration.service for this boot, which
# then found the ISO.
[ -s /run/sprout/initramfs-version ] || fail "the initramfs did not run sprout (/run/sprout/initramfs-version is missing)"
note "in the initramfs: $(cat /run/sprout/initramfs-version)"
grep -q '^sprout ' /run/sprout/initramfs-version || fail "unexpected output of sprout --version in the initramfs: $(cat /run/sprout/initramfs-version)"
[ "$(/run/sprout/bin/sprout --version)" = "$(cat /run/sprout/initramfs-version)" ] \
  || fail "/run/sprout/bin/sprout is not the binary the initramfs ran"
[ ! -e /usr/local/bin/sprout ] || fail "the module wrote sprout into the root filesystem"
unit=installation-configuration.service
[ "$(systemctl show -P FragmentPath "$unit")" = "/run/systemd/system/$unit" ] \
  || fail "$unit does not come from the initramfs: $(systemctl show -P FragmentPath "$unit")"
[ "$(systemctl is-enabled "$unit" 2>&1)" = enabled-runtime ] \
  || fail "$unit is not enabled for this boot: $(systemctl is-enabled "$unit" 2>&1)"
wait_unit_exited "$unit" 90
props=""
for p in ActiveState Result ExecMainStatus; do
  props+="$p=$(systemctl show -P "$p" "$unit") "
done
note "$unit: $props(ExecStart $(systemctl show -P ExecStart "$unit" | grep -o 'path=[^ ;]*'))"
case "$props" in
  *"Result=success ExecMainStatus=0"*) ;;
  *) fail "$unit did not succeed: $props" ;;
esac
expect_configuration_copied
journalctl -b --no-pager | grep -q 'sprout: sprout .* runs in the initramfs' \
  || fail "the journal has no message from the initramfs hook"
