//! Discovery against a fake machine: devices, events and "mounts" that are
//! plain directories. The real udev and mount paths run in vm-tests.

use std::collections::VecDeque;
use std::fs;

use super::*;
use crate::host::udev::BlockKind;

/// A medium's content, by device node.
struct FakeHost {
    present: Vec<BlockDevice>,
    /// Events, each delivered once its delay since `open` has passed.
    events: VecDeque<(Duration, BlockEvent)>,
    opened: Instant,
    media: BTreeMap<PathBuf, PathBuf>,
    mounts: Vec<PathBuf>,
    unmounted: std::rc::Rc<std::cell::Cell<usize>>,
}

struct FakeMount {
    at: PathBuf,
    unmounted: std::rc::Rc<std::cell::Cell<usize>>,
}

impl MountedMedium for FakeMount {
    fn unmount(self) -> Result<()> {
        // "Unmounting" empties the mount point, like the real thing.
        for e in fs::read_dir(&self.at)? {
            let p = e?.path();
            if p.is_dir() {
                fs::remove_dir_all(p)?;
            } else {
                fs::remove_file(p)?;
            }
        }
        self.unmounted.set(self.unmounted.get() + 1);
        Ok(())
    }
}

impl Host for FakeHost {
    type Mounted = FakeMount;
    fn enumerate(&mut self) -> Result<Vec<BlockDevice>> {
        Ok(self.present.clone())
    }
    fn wait(&mut self, timeout: Duration) -> Result<Vec<BlockEvent>> {
        let now = self.opened.elapsed();
        match self.events.front() {
            Some((at, _)) if *at <= now + timeout => {
                std::thread::sleep(at.saturating_sub(now));
                Ok(self
                    .events
                    .pop_front()
                    .map(|(_, e)| e)
                    .into_iter()
                    .collect())
            }
            _ => {
                std::thread::sleep(timeout);
                Ok(Vec::new())
            }
        }
    }
    fn mount(&mut self, device: &BlockDevice, _fstype: &str, at: &Path) -> Result<FakeMount> {
        let src = self
            .media
            .get(&device.devnode)
            .context("no medium in the fake drive")?;
        copy::copy_tree(src, at, Limits::default())?;
        self.mounts.push(device.devnode.clone());
        Ok(FakeMount {
            at: at.to_path_buf(),
            unmounted: self.unmounted.clone(),
        })
    }
}

fn dev(node: &str, kind: BlockKind, fs: Option<(&str, &str)>) -> BlockDevice {
    BlockDevice {
        devnode: PathBuf::from(node),
        kind,
        fs_type: fs.map(|(t, _)| t.to_owned()),
        fs_label: fs.map(|(_, l)| l.to_owned()).filter(|l| !l.is_empty()),
    }
}

fn config_medium() -> tempfile::TempDir {
    let m = tempfile::tempdir().unwrap();
    fs::create_dir_all(m.path().join("cluster-configuration/manifests")).unwrap();
    fs::write(m.path().join(MANIFEST), r#"{"api_version":1}"#).unwrap();
    fs::create_dir_all(m.path().join("extra-manifests")).unwrap();
    fs::write(
        m.path().join("extra-manifests/cm.yaml"),
        "kind: ConfigMap\n",
    )
    .unwrap();
    m
}

fn host(present: Vec<BlockDevice>) -> FakeHost {
    FakeHost {
        present,
        events: VecDeque::new(),
        opened: Instant::now(),
        media: BTreeMap::new(),
        mounts: Vec::new(),
        unmounted: Default::default(),
    }
}

fn opts(root: &Path, timeout_ms: u64) -> Options {
    Options {
        root: root.to_path_buf(),
        timeout: Duration::from_millis(timeout_ms),
        announce_every: Duration::from_millis(50),
    }
}

#[test]
fn present_configuration_needs_no_device() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("opt/openshift/cluster-configuration")).unwrap();
    let d =
        discover::<FakeHost>(&opts(root.path(), 0), || panic!("udev must not be opened")).unwrap();
    assert_eq!(d.source, Source::AlreadyPresent);
}

#[test]
fn finds_a_labelled_disk_at_start_copies_and_unmounts() {
    let root = tempfile::tempdir().unwrap();
    let medium = config_medium();
    let mut h = host(vec![
        dev("/dev/vda", BlockKind::Disk, Some(("ext4", "rootfs"))),
        dev(
            "/dev/sr0",
            BlockKind::Disk,
            Some(("iso9660", "cluster-config")),
        ),
    ]);
    h.media
        .insert("/dev/sr0".into(), medium.path().to_path_buf());
    let unmounted = h.unmounted.clone();
    let d = discover(&opts(root.path(), 1000), || Ok(h)).unwrap();
    let Source::Medium {
        device, found_by, ..
    } = &d.source
    else {
        panic!("{:?}", d.source)
    };
    assert_eq!(device.devnode, Path::new("/dev/sr0"));
    assert_eq!(*found_by, FoundBy::Enumeration);
    assert_eq!(unmounted.get(), 1);
    let work = root.path().join(WORK_DIR);
    assert_eq!(
        fs::read_to_string(work.join(MANIFEST)).unwrap(),
        r#"{"api_version":1}"#
    );
    assert!(work.join("extra-manifests/cm.yaml").is_file());
    // No staging directory or mount point is left behind.
    let left: Vec<_> = fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(
        fs::read_dir(root.path().join(MOUNT_PARENT))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn finds_a_labelled_partition_and_the_legacy_label() {
    let root = tempfile::tempdir().unwrap();
    let medium = config_medium();
    let mut h = host(vec![
        dev("/dev/vdb", BlockKind::Disk, None),
        dev(
            "/dev/vdb1",
            BlockKind::Partition,
            Some(("ext4", "relocation-config")),
        ),
    ]);
    h.media
        .insert("/dev/vdb1".into(), medium.path().to_path_buf());
    let d = discover(&opts(root.path(), 1000), || Ok(h)).unwrap();
    assert!(
        matches!(d.source, Source::Medium { ref device, .. } if device.devnode == Path::new("/dev/vdb1"))
    );
}

#[test]
fn prefers_the_whole_disk_of_a_hybrid_stick() {
    let root = tempfile::tempdir().unwrap();
    let medium = config_medium();
    let mut h = host(vec![
        dev(
            "/dev/sdb1",
            BlockKind::Partition,
            Some(("iso9660", "cluster-config")),
        ),
        dev(
            "/dev/sdb",
            BlockKind::Disk,
            Some(("iso9660", "cluster-config")),
        ),
    ]);
    h.media
        .insert("/dev/sdb".into(), medium.path().to_path_buf());
    h.media
        .insert("/dev/sdb1".into(), medium.path().to_path_buf());
    let d = discover(&opts(root.path(), 1000), || Ok(h)).unwrap();
    assert!(
        matches!(d.source, Source::Medium { ref device, .. } if device.devnode == Path::new("/dev/sdb"))
    );
}

#[test]
fn a_later_device_is_found_through_its_event() {
    let root = tempfile::tempdir().unwrap();
    let medium = config_medium();
    let mut h = host(vec![dev("/dev/sr0", BlockKind::Disk, None)]);
    h.events.push_back((
        Duration::from_millis(120),
        BlockEvent {
            action: Action::Change,
            device: dev(
                "/dev/sr0",
                BlockKind::Disk,
                Some(("iso9660", "cluster-config")),
            ),
        },
    ));
    h.media
        .insert("/dev/sr0".into(), medium.path().to_path_buf());
    let started = Instant::now();
    let d = discover(&opts(root.path(), 5000), || Ok(h)).unwrap();
    assert!(matches!(
        d.source,
        Source::Medium {
            found_by: FoundBy::UdevEvent,
            ..
        }
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn times_out_with_what_it_saw_and_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let wrong = config_medium();
    let mut h = host(vec![
        dev("/dev/vda", BlockKind::Disk, Some(("ext4", "rootfs"))),
        dev(
            "/dev/sr0",
            BlockKind::Disk,
            Some(("iso9660", "other-label")),
        ),
    ]);
    h.media
        .insert("/dev/sr0".into(), wrong.path().to_path_buf());
    let started = Instant::now();
    let err = discover(&opts(root.path(), 300), || Ok(h)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(msg.contains("no usable block device labelled cluster-config or relocation-config appeared within 0 s"), "{msg}");
    assert!(
        msg.contains("/dev/sr0 (iso9660, label other-label)"),
        "{msg}"
    );
    assert!(msg.contains("Attach the configuration ISO"), "{msg}");
    assert!(!root.path().join(WORK_DIR).join(CONFIG_DIR).exists());
}

#[test]
fn a_labelled_medium_without_a_manifest_is_rejected_and_reported() {
    let root = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let mut h = host(vec![dev(
        "/dev/sr0",
        BlockKind::Disk,
        Some(("iso9660", "cluster-config")),
    )]);
    h.media
        .insert("/dev/sr0".into(), empty.path().to_path_buf());
    let unmounted = h.unmounted.clone();
    let err = discover(&opts(root.path(), 200), || Ok(h)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("/dev/sr0 was not used: it is labelled cluster-config but holds no cluster-configuration/manifest.json"), "{msg}");
    // Dropped, not unmounted explicitly: the fake's guard has no Drop, the
    // real one detaches.
    assert_eq!(unmounted.get(), 0);
}

#[test]
fn no_filesystems_at_all_hints_at_udevd() {
    let root = tempfile::tempdir().unwrap();
    let h = host(vec![dev("/dev/vda", BlockKind::Disk, None)]);
    let err = discover(&opts(root.path(), 100), || Ok(h)).unwrap_err();
    assert!(format!("{err:#}").contains("is systemd-udevd running?"));
}

/// Issue 9, class 3: `/opt/openshift` under --root a symlink out of the
/// root; nothing is written or chmod-ed there, the device is not used.
#[test]
fn a_work_dir_linked_out_of_the_root_is_refused() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::set_permissions(outside.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(root.path().join("opt")).unwrap();
    symlink(outside.path(), root.path().join(WORK_DIR)).unwrap();
    let medium = config_medium();
    let mut h = host(vec![dev(
        "/dev/sr0",
        BlockKind::Disk,
        Some(("iso9660", "cluster-config")),
    )]);
    h.media
        .insert("/dev/sr0".into(), medium.path().to_path_buf());
    let err = discover(&opts(root.path(), 200), || Ok(h)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("is a symbolic link"), "{msg}");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    let mode = fs::metadata(outside.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
}

/// RHCOS has `/opt -> var/opt`: a link among the parents that stays inside
/// the root is followed, and the configuration lands there.
#[test]
fn a_parent_link_inside_the_root_is_followed() {
    use std::os::unix::fs::symlink;
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("var/opt")).unwrap();
    symlink("var/opt", root.path().join("opt")).unwrap();
    let medium = config_medium();
    let mut h = host(vec![dev(
        "/dev/sr0",
        BlockKind::Disk,
        Some(("iso9660", "cluster-config")),
    )]);
    h.media
        .insert("/dev/sr0".into(), medium.path().to_path_buf());
    discover(&opts(root.path(), 1000), || Ok(h)).unwrap();
    assert!(
        root.path()
            .join("var/opt/openshift")
            .join(MANIFEST)
            .is_file()
    );
}
