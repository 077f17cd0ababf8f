use super::*;

const INSTALLED: &str = include_str!("fixtures/lsblk-installed.json");
const SAVED: &str = include_str!("fixtures/lsblk-saved-partition.json");
const OLD: &str = include_str!("fixtures/lsblk-old.json");
const SFDISK_SAVED: &str = include_str!("fixtures/sfdisk-saved-partition.json");

#[test]
fn lsblk_tree_parses_with_sizes_in_bytes() {
    let l = Lsblk::parse(INSTALLED.as_bytes()).unwrap();
    let vda = l.device("/dev/vda").unwrap();
    assert_eq!(vda.size, Some(120 << 30));
    assert_eq!(vda.kind.as_deref(), Some("disk"));
    assert_eq!(vda.children.len(), 5);
    assert_eq!(vda.walk().len(), 6);
    assert_eq!(vda.children[3].label.as_deref(), Some("root"));
    assert!(vda.mount_points().is_empty());
}

#[test]
fn the_partition_is_found_by_name_not_by_index() {
    let l = Lsblk::parse(SAVED.as_bytes()).unwrap();
    let vda = l.device("vda").unwrap();
    // Upstream's children[extraPartitionNumber-1] = children[4] is the
    // saved LVM partition here.
    assert_eq!(vda.children[4].partlabel.as_deref(), Some("lvms-data"));
    let p = partition_by_partlabel(vda, "var-lib-containers").unwrap();
    assert_eq!(p.dev_path(), "/dev/vda6");
    let e = partition_by_partlabel(vda, "varlibcontainers").unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("no partition named \"varlibcontainers\""),
        "{msg}"
    );
    assert!(msg.contains("/dev/vda6 \"var-lib-containers\""), "{msg}");
}

#[test]
fn two_partitions_with_the_name_are_refused() {
    let mut l = Lsblk::parse(SAVED.as_bytes()).unwrap();
    l.blockdevices[0].children[4].partlabel = Some("var-lib-containers".into());
    let e = partition_by_partlabel(&l.blockdevices[0], "var-lib-containers").unwrap_err();
    assert!(format!("{e}").contains("has 2 partitions named"), "{e}");
}

#[test]
fn old_lsblk_with_strings_and_no_path() {
    let l = Lsblk::parse(OLD.as_bytes()).unwrap();
    let sda = l.device("sda").unwrap();
    assert_eq!(sda.size, Some(64424509440));
    assert_eq!(sda.rm, Some(false));
    assert_eq!(sda.dev_path(), "/dev/sda");
    assert_eq!(sda.children[1].mount_points(), ["/sysroot"]);
    assert_eq!(
        partition_by_partlabel(sda, "root").unwrap().dev_path(),
        "/dev/sda4"
    );
}

#[test]
fn sfdisk_json_names_and_end() {
    let s = Sfdisk::parse(SFDISK_SAVED.as_bytes()).unwrap();
    assert_eq!(s.partitiontable.label, "gpt");
    assert_eq!(s.partitiontable.sectorsize, Some(512));
    let p = s.partition_by_name("var-lib-containers").unwrap();
    assert_eq!(p.node, "/dev/vda6");
    assert_eq!(p.start, 80 << 21);
    assert_eq!(s.end_of_partitions(), Some(120 << 21));
    assert!(s.partition_by_name("nope").is_err());
}

#[test]
fn garbage_is_an_error_naming_the_tool() {
    let e = Lsblk::parse(b"{\"blockdevices\": [{\"size\": \"big\"}]}").unwrap_err();
    assert!(format!("{e:#}").contains("lsblk --json"), "{e:#}");
    assert!(Sfdisk::parse(b"[]").is_err());
}
