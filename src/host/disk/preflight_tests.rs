use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;
use crate::host::disk::json::Lsblk;

const GIB: u64 = 1 << 30;

/// A fixture machine: `vda` (120 GiB, two partitions, the target),
/// `sdb` (the live USB stick, labelled `rhcos-416`, mounted),
/// `sdc` (a disk with an LVM PV whose LV is mounted), `sdd` (a disk with
/// an inactive LVM PV), `loop0` (the live rootfs).
fn machine(root: &Path) {
    let disk = |name: &str, size: u64, parts: &[&str]| {
        let d = root.join("sys/devices/virtual/block").join(name);
        fs::create_dir_all(d.join("queue")).unwrap();
        fs::create_dir_all(d.join("holders")).unwrap();
        fs::write(d.join("size"), format!("{}\n", size / 512)).unwrap();
        fs::write(d.join("queue/logical_block_size"), "512\n").unwrap();
        fs::write(d.join("ro"), "0\n").unwrap();
        fs::write(d.join("dev"), format!("{}:0\n", dev_major(name))).unwrap();
        fs::create_dir_all(root.join("sys/class/block")).unwrap();
        symlink(
            format!("../../devices/virtual/block/{name}"),
            root.join("sys/class/block").join(name),
        )
        .unwrap();
        fs::create_dir_all(root.join("dev")).unwrap();
        fs::write(root.join("dev").join(name), "").unwrap();
        for (i, p) in parts.iter().enumerate() {
            let pd = d.join(p);
            fs::create_dir_all(pd.join("holders")).unwrap();
            fs::write(pd.join("partition"), format!("{}\n", i + 1)).unwrap();
            fs::write(pd.join("size"), "2048\n").unwrap();
            fs::write(pd.join("dev"), format!("{}:{}\n", dev_major(name), i + 1)).unwrap();
            symlink(
                format!("../../devices/virtual/block/{name}/{p}"),
                root.join("sys/class/block").join(p),
            )
            .unwrap();
            fs::write(root.join("dev").join(p), "").unwrap();
        }
    };
    disk("vda", 120 * GIB, &["vda1", "vda2"]);
    disk("sdb", 8 * GIB, &["sdb1"]);
    disk("sdc", 200 * GIB, &["sdc1"]);
    disk("sdd", 200 * GIB, &["sdd1"]);
    disk("dm-0", 10 * GIB, &[]);
    disk("dm-1", 10 * GIB, &[]);
    disk("loop0", GIB, &[]);
    let holder = |part: &str, disk: &str, h: &str| {
        let p = root
            .join("sys/devices/virtual/block")
            .join(disk)
            .join(part)
            .join("holders")
            .join(h);
        fs::write(p, "").unwrap();
    };
    holder("sdc1", "sdc", "dm-0");
    holder("sdd1", "sdd", "dm-1");
    fs::create_dir_all(root.join("dev/disk/by-id")).unwrap();
    symlink("../../vda", root.join("dev/disk/by-id/virtio-target")).unwrap();
    fs::create_dir_all(root.join("dev/disk/by-path")).unwrap();
    symlink(
        "/dev/disk/by-id/virtio-target",
        root.join("dev/disk/by-path/pci-0000:00:05.0"),
    )
    .unwrap();
    symlink(
        "../../vda2",
        root.join("dev/disk/by-id/virtio-target-part2"),
    )
    .unwrap();
    fs::create_dir_all(root.join("proc/self")).unwrap();
    fs::write(
        root.join("proc/self/mountinfo"),
        format!(
            "22 1 {}:1 / /run/media/iso ro,relatime - iso9660 /dev/sdb1 ro\n\
             23 1 7:0 / /run/rootfsbase ro - squashfs /dev/loop0 ro\n\
             24 1 {}:0 / /mnt/data\\040dir rw - xfs /dev/mapper/vg-lv rw\n",
            dev_major("sdb"),
            dev_major("dm-0")
        ),
    )
    .unwrap();
    fs::write(
        root.join("proc/mounts"),
        "/dev/sdb1 /run/media/iso iso9660 ro 0 0\n",
    )
    .unwrap();
    fs::write(
        root.join("proc/cmdline"),
        "BOOT_IMAGE=/images/pxeboot/vmlinuz coreos.liveiso=rhcos-416 ignition.firstboot\n",
    )
    .unwrap();
}

fn dev_major(name: &str) -> u32 {
    match name {
        "vda" => 252,
        "sdb" => 8,
        "sdc" => 9,
        "sdd" => 10,
        "dm-0" => 253,
        "dm-1" => 254,
        _ => 7,
    }
}

fn lsblk() -> Lsblk {
    Lsblk::parse(
        br#"{"blockdevices":[
        {"name":"sdb","type":"disk","children":[{"name":"sdb1","type":"part","label":"rhcos-416","fstype":"iso9660"}]},
        {"name":"vda","type":"disk","children":[{"name":"vda1","type":"part"},{"name":"vda2","type":"part"}]}]}"#,
    )
    .unwrap()
}

fn req(start: &str) -> DiskRequirements {
    DiskRequirements {
        extra_partition: Some(ExtraPartitionStart::parse(start).unwrap()),
        os_reserve_bytes: DEFAULT_OS_RESERVE_BYTES,
        skip_disk_cleanup: false,
    }
}

fn inventory() -> (tempfile::TempDir, Inventory) {
    let d = tempfile::tempdir().unwrap();
    machine(d.path());
    let inv = Inventory::read(d.path(), Some(lsblk())).unwrap();
    (d, inv)
}

fn problems(inv: &Inventory, disk: &str, r: &DiskRequirements) -> Vec<String> {
    check_disk(inv, disk, r)
        .unwrap_err()
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn a_free_disk_passes_by_name_by_id_and_by_path() {
    let (_d, inv) = inventory();
    for name in [
        "/dev/vda",
        "/dev/disk/by-id/virtio-target",
        "/dev/disk/by-path/pci-0000:00:05.0",
    ] {
        let ok = check_disk(&inv, name, &req("-40G")).unwrap();
        assert_eq!(ok.name, "vda", "{name}");
        assert_eq!(ok.dev_path, "/dev/vda");
        assert_eq!(ok.size_bytes, 120 * GIB);
        assert_eq!(ok.sector_size, 512);
    }
    assert_eq!(inv.partitions("vda").len(), 2);
    assert_eq!(inv.devices["vda2"].logical_block_size, 512);
}

#[test]
fn missing_disk_and_partition_are_refused() {
    let (_d, inv) = inventory();
    let p = problems(&inv, "/dev/disk/by-id/nothing", &req("-40G"));
    assert_eq!(p.len(), 1);
    assert!(
        p[0].contains("/dev/disk/by-id/nothing does not exist"),
        "{p:?}"
    );
    let p = problems(&inv, "/dev/disk/by-id/virtio-target-part2", &req("-40G"));
    assert!(
        p[0].contains("/dev/vda2 is a partition of /dev/vda"),
        "{p:?}"
    );
    assert!(p[0].contains("the whole disk /dev/vda"), "{p:?}");
}

#[test]
fn the_boot_medium_is_mounted_and_refused() {
    let (_d, inv) = inventory();
    let p = problems(&inv, "/dev/sdb", &req("-1G"));
    assert!(
        p.iter()
            .any(|m| m.contains("/dev/sdb1 is mounted on /run/media/iso")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("holds the live system") && m.contains("rhcos-416")),
        "{p:?}"
    );
    // sdb is 8 GiB: too small as well, and all problems come together.
    assert!(p.iter().any(|m| m.contains("use a larger disk")), "{p:?}");
}

#[test]
fn a_disk_under_a_mounted_lv_is_refused_an_idle_pv_is_cleaned() {
    let (_d, inv) = inventory();
    let p = problems(&inv, "/dev/sdc", &req("-40G"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("/dev/sdc1 belongs to /dev/dm-0, which is mounted on /mnt/data dir"),
        "{p:?}"
    );
    assert!(check_disk(&inv, "/dev/sdd", &req("-40G")).is_ok());
    let mut r = req("-40G");
    r.skip_disk_cleanup = true;
    let p = problems(&inv, "/dev/sdd", &r);
    assert!(p[0].contains("remove skipDiskCleanup"), "{p:?}");
}

#[test]
fn size_must_hold_rhcos_and_the_extra_partition() {
    let (_d, inv) = inventory();
    assert!(check_disk(&inv, "/dev/vda", &req("-100G")).is_ok());
    let p = problems(&inv, "/dev/vda", &req("-101G"));
    assert!(p[0].contains("need"), "{p:?}");
    // Positive starts are read as sfdisk reads them.
    assert!(check_disk(&inv, "/dev/vda", &req("50GiB")).is_ok());
    let p = problems(&inv, "/dev/vda", &req("130G"));
    assert!(p[0].contains("use a larger disk"), "{p:?}");
    let p = problems(&inv, "/dev/vda", &req("2048"));
    assert!(p[0].contains("inside the space RHCOS needs"), "{p:?}");
    let folder = DiskRequirements {
        extra_partition: None,
        ..req("-1G")
    };
    assert!(check_disk(&inv, "/dev/vda", &folder).is_ok());
}

#[test]
fn sfdisk_offsets() {
    assert_eq!(sfdisk_offset_bytes("2048", 512), Some(1 << 20));
    assert_eq!(sfdisk_offset_bytes("120GiB", 512), Some(120 * GIB));
    assert_eq!(sfdisk_offset_bytes("120G", 512), Some(120 * GIB));
    assert_eq!(sfdisk_offset_bytes("1GB", 512), Some(1_000_000_000));
    assert_eq!(sfdisk_offset_bytes("1Gb", 512), None);
    assert_eq!(sfdisk_offset_bytes("x", 512), None);
}

#[test]
fn mountinfo_escapes_and_root_confined_links() {
    let m = crate::host::disk::inventory::parse_mountinfo(
        "1 0 8:1 / /a\\040b rw - ext4 /dev/sda1 rw\nbad line\n",
    );
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].target, "/a b");
    assert_eq!(m[0].dev, "8:1");
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("dev")).unwrap();
    symlink("/../../../../etc/passwd", d.path().join("dev/evil")).unwrap();
    let r = crate::host::disk::inventory::resolve_in_root(d.path(), Path::new("/dev/evil"));
    // Stays inside the root: /etc/passwd of the root, which does not exist.
    assert!(r.is_err());
}
