#!/bin/bash
# dracut module "sprout": carries the sprout agent and its systemd units in
# the initramfs. At pre-pivot it checks that the agent runs, then hands it
# and its units to the booted system through /run (/run/sprout/bin/sprout,
# /run/systemd/system) and enables the units listed in sprout_enable_units
# for that boot, so a live image built with dracut brings its own agent
# instead of copying lca-cli out of the seed image.
#
# Settings (a file in /etc/dracut.conf.d/):
#   sprout_binary="/usr/local/bin/sprout"              the binary to carry
#   sprout_units_dir="/usr/local/lib/systemd/system"   where its units are
#   sprout_enable_units="install-rhcos-and-restore-seed.service"
#                                                      units to enable in the root
# Only included when asked for: dracut --add sprout, or
# add_dracutmodules+=" sprout " in a dracut.conf.d file.

check() {
    require_binaries "${sprout_binary:-/usr/local/bin/sprout}" || return 1
    return 255
}

depends() {
    echo systemd
}

install() {
    local bin="${sprout_binary:-/usr/local/bin/sprout}"
    local units="${sprout_units_dir:-/usr/local/lib/systemd/system}"
    local unit
    inst_binary "$bin" /usr/bin/sprout
    # Kept out of the initramfs's own unit directories: they are for the
    # real root, not for the initramfs's systemd.
    for unit in installation-configuration.service install-rhcos-and-restore-seed.service; do
        if [ -f "$units/$unit" ]; then
            inst_simple "$units/$unit" "/usr/share/sprout/units/$unit"
        else
            dwarn "sprout: $units/$unit not found; not carried"
        fi
    done
    mkdir -p "$initdir/usr/share/sprout"
    # shellcheck disable=SC2086 # a space-separated list
    printf '%s\n' ${sprout_enable_units:-} >"$initdir/usr/share/sprout/enable"
    inst_hook pre-pivot 90 "$moddir/sprout-carry.sh"
}
