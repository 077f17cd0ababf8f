//! The disk pieces of `sprout ibi` against the real tools: sfdisk on a GPT
//! image file (the kernel here reads no partition tables, so no device is
//! involved), lsblk and this machine's own sysfs and mounts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use sprout::host::disk::{
    DEFAULT_EXTRA_PARTITION_START, DiskRequirements, ExtraPartitionStart, Inventory, Lsblk, Sfdisk,
    check_disk, preflight::DEFAULT_OS_RESERVE_BYTES, sfdisk_append_line,
};
use sprout::testing::sysroot::tools_or_skip;

fn sfdisk(args: &[&str], img: &Path, script: &str) -> std::process::Output {
    let mut c = Command::new("sfdisk")
        .args(args)
        .arg(img)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "sfdisk {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn extra_partition_appended_by_sfdisk_is_found_by_name_at_the_computed_start() {
    if !tools_or_skip("extra_partition_appended_by_sfdisk", &["sfdisk"]).unwrap() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("disk.img");
    let disk_bytes: u64 = (300 << 20) + 12345 * 512;
    std::fs::File::create(&img)
        .unwrap()
        .set_len(disk_bytes)
        .unwrap();
    // The RHCOS layout, plus a partition kept by --save-partindex 5.
    sfdisk(
        &["-q"],
        &img,
        "label: gpt\nsize=1MiB, name=\"BIOS-BOOT\"\nsize=16MiB, name=\"EFI-SYSTEM\"\n\
         size=32MiB, name=\"boot\"\nsize=100MiB, name=\"root\"\nsize=20MiB, name=\"lvms-data\"\n",
    );
    let start = ExtraPartitionStart::parse("-100M").unwrap();
    let sector = start.sfdisk_start(disk_bytes, 512).unwrap();
    let line = sfdisk_append_line(&sector, "var-lib-containers").unwrap();
    sfdisk(&["-q", "--append"], &img, &line);

    let out = sfdisk(&["--json"], &img, "");
    let table = Sfdisk::parse(&out.stdout).unwrap();
    let p = table.partition_by_name("var-lib-containers").unwrap();
    assert_eq!(p.start.to_string(), sector);
    assert_eq!(p.start * 512 % (1 << 20), 0, "aligned to 1 MiB");
    assert!(
        disk_bytes - p.start * 512 >= 100 << 20,
        "at least the size asked for"
    );
    assert!(
        disk_bytes - p.start * 512 < (101 << 20),
        "aligned down by less than 1 MiB"
    );
    // Upstream's children[extraPartitionNumber-1] would be the kept one.
    assert_eq!(
        table.partitiontable.partitions[4].name.as_deref(),
        Some("lvms-data")
    );
    assert!(p.node.ends_with('6'), "{}", p.node);
    // What upstream's default means on this disk: larger than the disk.
    let default = ExtraPartitionStart::parse(DEFAULT_EXTRA_PARTITION_START).unwrap();
    assert!(default.sfdisk_start(disk_bytes, 512).is_err());
}

#[test]
fn this_machines_lsblk_and_sysfs_read_and_its_root_disk_is_refused() {
    if !tools_or_skip("this_machines_lsblk_and_sysfs", &["lsblk"]).unwrap() {
        return;
    }
    let o = Command::new("lsblk")
        .args(["--json", "-O", "-b"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let lsblk = Lsblk::parse(&o.stdout).unwrap();
    assert!(
        lsblk
            .blockdevices
            .iter()
            .any(|d| d.kind.as_deref() == Some("disk")),
        "{lsblk:?}"
    );
    let inv = Inventory::read(Path::new("/"), Some(lsblk)).unwrap();
    let root = inv
        .mounts
        .iter()
        .find(|m| m.target == "/" && m.source.starts_with("/dev/"));
    let Some(root) = root else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "/ is not on a block device here; CI=true forbids skipping"
        );
        eprintln!("SKIP: this_machines_lsblk_and_sysfs: / is not on a block device");
        return;
    };
    let name = inv.resolve(&root.source).unwrap();
    let disk = inv.devices[&name].parent.clone().unwrap_or(name);
    let req = DiskRequirements {
        extra_partition: Some(ExtraPartitionStart::parse("-1G").unwrap()),
        os_reserve_bytes: DEFAULT_OS_RESERVE_BYTES,
        skip_disk_cleanup: false,
    };
    let problems = check_disk(&inv, &format!("/dev/{disk}"), &req).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.problem.ends_with("is mounted on /")),
        "{problems:?}"
    );
}
