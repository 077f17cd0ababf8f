# Stand-ins for the programs `sprout ibi` runs that cannot run on the build
# machine (see tests/ibi_fixture/mod.rs for why each is one). Sourced by
# each stand-in: $0 says which tool it is. STANDIN_STATE holds what the
# "disk" looks like; STANDIN_ROOT is the run's --root.
set -eu
tool=$(basename "$0")
echo "$tool $*" >> "$STANDIN_STATE/calls.log"
disk_sectors=251658240
if [ "${1:-}" = --version ] || [ "${1:-}" = -V ]; then
    echo "$tool (sprout test stand-in)"
    exit 0
fi
case "$tool" in
vgs|pvs|vgremove|pvremove|mdadm|xfs_growfs|resize2fs|restorecon|systemctl) ;;
wipefs)
    # The partition table goes with the signatures.
    rm -f "$STANDIN_STATE/installed" "$STANDIN_STATE/appended" "$STANDIN_STATE/mkfs" "$STANDIN_STATE/grown"
    ;;
mount)
    # The read-only look at the root partition after a "reboot"
    # (ibi::resume): the partition's file system is $STANDIN_ROOT/mnt, so
    # the mount point becomes a link to it. Other mounts change nothing.
    if [ "${1:-}" = -o ] && [ "${2:-}" = ro ]; then
        rmdir "$4" && ln -s "$STANDIN_ROOT/mnt" "$4"
    fi
    ;;
umount) if [ -L "$1" ]; then rm "$1" && mkdir "$1"; fi ;;
dmsetup) [ "${1:-}" = ls ] && echo "No devices found" ;;
coreos-installer)
    [ "$1" = install ] || { echo "coreos-installer stand-in: only install" >&2; exit 2; }
    # What coreos-installer writes to the disk, as far as ibi reads it: an
    # ostree sysroot with the `rhcos` stateroot (on the "root partition",
    # which the mount stand-in leaves at $STANDIN_ROOT/mnt).
    rm -f "$STANDIN_STATE/appended" "$STANDIN_STATE/mkfs" "$STANDIN_STATE/grown"
    sysroot="$STANDIN_ROOT/mnt"
    [ -d "$sysroot" ] && chattr -R -i "$sysroot" 2>/dev/null || true
    rm -rf "$sysroot" "$STANDIN_STATE/tree"
    mkdir -p "$sysroot" "$STANDIN_STATE/tree/usr/lib/modules/5.14.0-427.13.1.el9_4.x86_64" "$STANDIN_STATE/tree/usr/etc"
    echo metal > "$STANDIN_STATE/tree/usr/lib/modules/5.14.0-427.13.1.el9_4.x86_64/vmlinuz"
    echo metal > "$STANDIN_STATE/tree/usr/lib/modules/5.14.0-427.13.1.el9_4.x86_64/initramfs.img"
    echo "ID=rhcos" > "$STANDIN_STATE/tree/usr/etc/os-release"
    ostree admin init-fs "$sysroot" >/dev/null
    ostree --repo="$sysroot/ostree/repo" commit --branch metal --subject metal --owner-uid=0 --owner-gid=0 \
        --tree=dir="$STANDIN_STATE/tree" >/dev/null
    ostree admin os-init --sysroot="$sysroot" rhcos >/dev/null
    ostree admin deploy --sysroot="$sysroot" --os=rhcos --karg-none --karg=root=LABEL=root metal >/dev/null
    mkdir -p "$sysroot/boot"
    # A new partition table id for each install, as a real one gets.
    cat /proc/sys/kernel/random/uuid > "$STANDIN_STATE/ptid"
    touch "$STANDIN_STATE/installed"
    ;;
sfdisk)
    if [ "$1" = --append ]; then
        cat > "$STANDIN_STATE/appended"
        exit 0
    fi
    [ -e "$STANDIN_STATE/installed" ] || { echo "sfdisk: $2: does not contain a recognized partition table" >&2; exit 1; }
    root_size=7000000
    extra=""
    if [ -e "$STANDIN_STATE/appended" ]; then
        start=$(sed -n 's/^start=\([0-9]*\), name="\(.*\)"$/\1/p' "$STANDIN_STATE/appended")
        name=$(sed -n 's/^start=\([0-9]*\), name="\(.*\)"$/\2/p' "$STANDIN_STATE/appended")
        extra=",{\"node\":\"/dev/vda5\",\"start\":$start,\"size\":$((disk_sectors - 34 - start)),\"type\":\"0FC63DAF-8483-4772-8E79-3D69D8477DE4\",\"name\":\"$name\",\"uuid\":\"5a5a5a5a-0000-4000-a000-000000000005\"}"
        [ -e "$STANDIN_STATE/grown" ] && root_size=$((start - 788480))
    fi
    cat <<JSON
{"partitiontable":{"label":"gpt","id":"$(cat "$STANDIN_STATE/ptid")","device":"$2","unit":"sectors","firstlba":34,"lastlba":$((disk_sectors - 34)),"sectorsize":512,
 "partitions":[{"node":"/dev/vda3","start":2048,"size":786432,"type":"0FC63DAF-8483-4772-8E79-3D69D8477DE4","name":"boot","uuid":"5a5a5a5a-0000-4000-a000-000000000003"},
  {"node":"/dev/vda4","start":788480,"size":$root_size,"type":"0FC63DAF-8483-4772-8E79-3D69D8477DE4","name":"root","uuid":"5a5a5a5a-0000-4000-a000-000000000004"}$extra]}}
JSON
    ;;
blkid)
    # STANDIN_ROOT_FS: the root partition's file system (default: none
    # reported, as the fixture never formats it).
    if [ "${5:-}" = /dev/vda4 ] && [ -n "${STANDIN_ROOT_FS:-}" ]; then echo "$STANDIN_ROOT_FS"; exit 0; fi
    [ -e "$STANDIN_STATE/mkfs" ] && [ "$(cat "$STANDIN_STATE/mkfs")" = "${5:-}" ] && echo xfs
    ;;
mkfs.xfs) echo "$2" > "$STANDIN_STATE/mkfs" ;;
growpart) touch "$STANDIN_STATE/grown" ;;
podman)
    touch "$STANDIN_STATE/images"
    case "$1 ${2:-}" in
    "image exists") grep -qxF "$3" "$STANDIN_STATE/images" ;;
    "pull --authfile")
        # The seed (sprout's argv: pull --authfile FILE IMAGE): downloaded
        # for real from the test registry, so its transfers can be counted;
        # the registry's own CA is not given to this stand-in.
        rm -rf "$STANDIN_STATE/seed-image"
        skopeo copy --quiet --src-authfile "$3" --src-tls-verify=false "docker://$4" "dir:$STANDIN_STATE/seed-image" >&2
        echo "$4" >> "$STANDIN_STATE/seed-pulls.log"; echo "$4" >> "$STANDIN_STATE/images"
        [ -d "${TMPDIR:-}" ] && echo "$TMPDIR" >> "$STANDIN_STATE/pull-tmpdirs.log" ;;
    "image mount")
        # What podman's overlay mount of the seed shows: its files.
        grep -qxF "$3" "$STANDIN_STATE/images" || { echo "Error: $3: image not known" >&2; exit 125; }
        echo "$STANDIN_SEED_ROOT" ;;
    "pull "*)
        case "$2" in
        *arm64-only*)
            echo "Error: choosing an image from manifest list docker://$2: no image found in image index for architecture \"amd64\", variant \"\", OS \"linux\"" >&2
            exit 125
            ;;
        esac
        # A slow registry, so a test can stop a run in the middle.
        [ -n "${STANDIN_PULL_SECONDS:-}" ] && sleep "$STANDIN_PULL_SECONDS"
        echo "$2" >> "$STANDIN_STATE/pulls.log"; echo "$2" >> "$STANDIN_STATE/images"
        # Where podman would stage the blobs (an existing directory).
        [ -d "${TMPDIR:-}" ] && echo "$TMPDIR" >> "$STANDIN_STATE/pull-tmpdirs.log" ;;
    *) echo "podman stand-in: $*" >&2; exit 2 ;;
    esac
    ;;
*) echo "no stand-in for $tool" >&2; exit 2 ;;
esac
