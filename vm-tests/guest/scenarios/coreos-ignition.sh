# In the CoreOS-like OS booted live with an Ignition config embedded in
# the live ISO: real Ignition (30ignition in the initramfs) applied it.
#   SPROUT_VM_NONCE   what the config's file holds
#   SPROUT_VM_COMMIT  the commit of the booted deployment
f=/etc/coreos-like/ignition-proof
[ -f "$f" ] || fail "$f is missing: Ignition did not apply the embedded config ($(journalctl -b -o cat -u ignition-files.service | tail -n 3 | tr '\n' ';'))"
grep -qx "written by ignition ${SPROUT_VM_NONCE}" "$f" || fail "$f holds $(cat "$f"), not this run's config"
expect_mode "$f" 644
for u in coreos-like-ignition-user.service ignition-fetch-offline.service ignition-files.service; do
  journalctl -b -o cat -u "$u" | grep -q . || fail "the journal has nothing of $u"
done
note "ignition-files: $(journalctl -b -o cat -u ignition-files.service | grep -m1 -i 'writing file' || true)"
ostree admin status >/run/status 2>&1 || fail "ostree admin status failed: $(cat /run/status)"
grep -qE "^\* rhcos ${SPROUT_VM_COMMIT}\.0\$" /run/status || fail "not booted into the deployment: $(tr '\n' ';' </run/status)"
