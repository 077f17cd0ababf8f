# sprout post-pivot --until discovered, run by hand, must find the
# configuration on the device the host attached.
#   SPROUT_VM_EXPECT_DEVICE  the device node it must use (e.g. /dev/sr0)
#   SPROUT_VM_EXPECT_BY      enumeration (present at start) or udev-event
#   SPROUT_VM_TIMEOUT        --timeout (seconds)
# The host watches the output: for a later insertion it waits for the
# "waiting for" line.
log=/run/discover.log
if [ "${SPROUT_VM_EXPECT_BY:-enumeration}" = enumeration ]; then
  # This runner may start before udev has probed the devices present at
  # boot; sprout would then find them through their events instead.
  udevadm settle --timeout=30
fi
if ! sprout post-pivot --until discovered --timeout "${SPROUT_VM_TIMEOUT:-60}" 2>&1 | tee "$log"; then
  fail "sprout post-pivot failed: $(grep -E 'ERROR' "$log" | tail -n1)"
fi
found="$(grep -E 'found /dev/' "$log" | head -n1)"
[ -n "$found" ] || fail "sprout did not say which device it used"
case "$found" in
  *"found ${SPROUT_VM_EXPECT_DEVICE:-/dev/sr0} "*) ;;
  *) fail "expected ${SPROUT_VM_EXPECT_DEVICE:-/dev/sr0}, sprout said: $found" ;;
esac
case "$found" in
  *" by ${SPROUT_VM_EXPECT_BY:-enumeration}"*) ;;
  *) fail "expected the device to be found by ${SPROUT_VM_EXPECT_BY:-enumeration}, sprout said: $found" ;;
esac
expect_configuration_copied
note "lsblk: $(lsblk -rno NAME,FSTYPE,LABEL | tr '\n' ';')"
