# In the Debian guest: `sprout ibi -f ibi-configuration.json` for real on a
# blank virtio disk, then every outcome of issue 11's acceptance 1
# (SPROUT_VM_MODE=registry) or 2 (archive) checked on the installed disk
# (ibi-common.sh; tests/vm_ibi.rs prepares /share/ibi).
# shellcheck disable=SC1091
. /share/vm-tests/guest/scenarios/ibi-common.sh
ibi_setup
ibi_run install
ibi_check /run/ibi-install.jsonl
ibi_state
sync
