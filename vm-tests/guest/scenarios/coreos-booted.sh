# In the CoreOS-like OS booted from its installed disk: ostree-prepare-root
# pivoted into the deployment, and systemd got to multi-user.target.
#   SPROUT_VM_COMMIT     the commit the deployment must be of
#   SPROUT_VM_STATEROOT  its stateroot (rhcos)
[ -e /run/ostree-booted ] || fail "/run/ostree-booted is missing: ostree-prepare-root did not run"
grep -q ' ostree=' /proc/cmdline || fail "no ostree= on the kernel command line: $(cat /proc/cmdline)"
ostree admin status >/run/status 2>&1 || fail "ostree admin status failed: $(cat /run/status)"
note "ostree admin status: $(tr '\n' ';' </run/status)"
grep -qE "^\* ${SPROUT_VM_STATEROOT} ${SPROUT_VM_COMMIT}\.0\$" /run/status \
  || fail "the booted deployment is not ${SPROUT_VM_STATEROOT} ${SPROUT_VM_COMMIT}.0: $(tr '\n' ';' </run/status)"
root_src="$(findmnt -no SOURCE /)"
case "$root_src" in
  *"[/ostree/deploy/${SPROUT_VM_STATEROOT}/deploy/${SPROUT_VM_COMMIT}.0]") ;;
  *) fail "/ is $root_src, not the deployment" ;;
esac
[ "$(findmnt -no TARGET /dev/disk/by-label/boot 2>/dev/null | head -n1)" = /boot ] || fail "the boot partition is not on /boot"
# This runner is part of multi-user.target: the target is reached when no
# job is left but this unit's and those ordered after the target (e.g.
# systemd-update-utmp-runlevel.service).
pending() {
  local u
  for u in $(systemctl list-jobs --no-legend | awk '{print $2}'); do
    case "$u" in sprout-vm.service | multi-user.target | graphical.target) continue ;; esac
    systemctl show -P After "$u" | tr ' ' '\n' | grep -qx multi-user.target && continue
    echo "$u"
  done
}
for ((i = 0; i < 300; i++)); do
  jobs="$(pending)"
  [ -z "$jobs" ] && break
  sleep 1
done
[ -z "$jobs" ] || fail "systemd is still starting: $(echo $jobs)"
failed="$(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')"
note "kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime) s, failed units: ${failed:-none}"
note "root: $root_src"
