#!/bin/sh
# pre-pivot hook of the sprout dracut module (sourced by dracut, with
# dracut-lib.sh loaded). Everything goes to /run, which systemd carries
# into the real root at switch-root: the booted system gets the agent and
# its units for this boot only, and nothing is written to its disk. A unit
# of the same name in the root's /etc (written by Ignition or an admin)
# takes precedence over the one placed here.

sprout_carry() {
    local ver unit name
    # The agent must run here: a binary missing a library fails now, in
    # the initramfs, with a message, not later in an install job.
    if ! ver="$(/usr/bin/sprout --version 2>&1)"; then
        warn "sprout: the carried binary does not run: $ver"
        return 0
    fi
    info "sprout: $ver runs in the initramfs"
    mkdir -p /run/sprout/bin /run/systemd/system/multi-user.target.wants
    echo "$ver" >/run/sprout/initramfs-version
    cp /usr/bin/sprout /run/sprout/bin/sprout && chmod 0755 /run/sprout/bin/sprout \
        || { warn "sprout: could not place the agent in /run/sprout/bin"; return 0; }
    for unit in /usr/share/sprout/units/*; do
        [ -f "$unit" ] || continue
        name="${unit##*/}"
        # The units run /usr/local/bin/sprout, where a package installs it.
        sed 's#/usr/local/bin/sprout#/run/sprout/bin/sprout#g' "$unit" >"/run/systemd/system/$name" \
            || warn "sprout: could not place $name in /run/systemd/system"
    done
    while read -r name; do
        [ -n "$name" ] || continue
        ln -sfn "../$name" "/run/systemd/system/multi-user.target.wants/$name"
        info "sprout: enabled $name for this boot"
    done </usr/share/sprout/enable
}

sprout_carry
