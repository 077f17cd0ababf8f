#!/bin/bash
# dracut module of the CoreOS-like test OS: hands Ignition the config that
# a live ISO's embed area carries (/config.ign, unpacked from the extra
# initrd), as CoreOS's own initramfs does, by copying it to the path
# Ignition reads its user config from (/usr/lib/ignition/user.ign); and
# mounts the stateroot's /var for Ignition's files (coreos-like-mount-var).

check() {
    return 0
}

depends() {
    echo ignition
}

install() {
    inst_multiple cp mkdir readlink sed tr tail mount mountpoint
    inst_script "$moddir/coreos-like-mount-var" /usr/bin/coreos-like-mount-var
    inst_simple "$moddir/coreos-like-mount-var.service" \
        "$systemdsystemunitdir/coreos-like-mount-var.service"
    inst_simple "$moddir/coreos-like-ignition-user.service" \
        "$systemdsystemunitdir/coreos-like-ignition-user.service"
    mkdir -p "$initdir/$systemdsystemunitdir/ignition-complete.target.requires"
    ln_r "$systemdsystemunitdir/coreos-like-ignition-user.service" \
        "$systemdsystemunitdir/ignition-complete.target.requires/coreos-like-ignition-user.service"
    ln_r "$systemdsystemunitdir/coreos-like-mount-var.service" \
        "$systemdsystemunitdir/ignition-complete.target.requires/coreos-like-mount-var.service"
}
