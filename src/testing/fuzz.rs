//! The fuzz targets' bodies: one function per parser of untrusted bytes.
//!
//! `fuzz/` (cargo-fuzz, nightly) calls these with coverage-guided inputs;
//! `tests/fuzz_replay.rs` calls them under plain `cargo test` with a seed
//! corpus and a bounded number of deterministic mutations, so CI exercises
//! them too. Each function must return normally for every input: a panic,
//! an abort, an endless loop or a huge allocation is the bug being looked
//! for. Results are checked for the invariants that matter (a refused tar
//! member stays refused, an accepted one stays inside), not just ignored.

use std::collections::{BTreeMap, HashSet};
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Component, PathBuf};
use std::sync::OnceLock;

use crate::iso::embed::{self, KargsAreas};
use crate::iso::iso9660::{Extent, Iso9660};
use crate::iso::writer::{IsoTree, write_iso};
use crate::seed::Tarball;
use crate::seed::member::{Kind, Policy};

/// The names of the targets, as `fuzz/fuzz_targets/<name>.rs`.
pub const TARGETS: [&str; 7] = [
    "iso9660",
    "live_iso_json",
    "embed_payload",
    "seed_json",
    "tar_members",
    "tar_stream",
    "yaml_inputs",
];

/// Runs the target `name` on `data`; false for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "iso9660" => iso9660(data),
        "live_iso_json" => live_iso_json(data),
        "embed_payload" => embed_payload(data),
        "seed_json" => seed_json(data),
        "tar_members" => tar_members(data),
        "tar_stream" => tar_stream(data),
        "yaml_inputs" => yaml_inputs(data),
        _ => return false,
    }
    true
}

/// The ISO9660 reader on raw volume descriptors and directories: `data` is
/// the image from sector 16 on (the system area before it is zeros).
pub fn iso9660(data: &[u8]) {
    let mut image = vec![0u8; 16 * 2048];
    image.extend_from_slice(data);
    let mut f = Cursor::new(image);
    let Ok(iso) = Iso9660::open(&mut f) else {
        return;
    };
    for path in ["COREOS/IGNINFO.JSO", "IMAGES/IGNITION.IMG", "A/B/C"] {
        if let Ok(e) = iso.find(&mut f, path) {
            assert!(
                e.offset
                    .checked_add(e.length)
                    .is_some_and(|end| end <= iso.size())
            );
        }
        let _ = iso.read_file(&mut f, path);
    }
    read_live_iso(&mut f, &iso);
}

/// What a live ISO reader does with an opened image.
fn read_live_iso(f: &mut Cursor<Vec<u8>>, iso: &Iso9660) {
    if let Ok(area) = embed::ignition_area(f, iso) {
        assert!(
            area.offset
                .checked_add(area.length)
                .is_some_and(|end| end <= iso.size())
        );
        if let Ok(bytes) = embed::read_area(f, area) {
            let _ = embed::read_members(&bytes);
        }
    }
    if let Ok(Some(kargs)) = KargsAreas::for_iso(f, iso) {
        let _ = kargs.read(f);
        for r in kargs.regions() {
            assert!(
                r.offset
                    .checked_add(r.length)
                    .is_some_and(|end| end <= iso.size())
            );
        }
        // Writing must end (an empty pad once looped forever) and stay in
        // the areas' bounds.
        let mut copy = Cursor::new(f.get_ref().clone());
        let _ = kargs.write(&mut copy, "ip=dhcp,dhcp6 console=ttyS0");
        assert_eq!(copy.get_ref().len(), f.get_ref().len());
    }
}

/// A real live-ISO layout whose `coreos/igninfo.json` and
/// `coreos/kargs.json` hold the fuzz input, split at the first 0xff.
pub fn live_iso_json(data: &[u8]) {
    let Some(base) = live_iso_template() else {
        return;
    };
    let (ign, kargs) = match data.iter().position(|b| *b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut image = base.image.clone();
    for (extent, bytes) in [(base.igninfo, ign), (base.kargs, kargs)] {
        let start = usize::try_from(extent.offset).unwrap_or(usize::MAX);
        let len = usize::try_from(extent.length).unwrap_or(0);
        let n = bytes.len().min(len);
        if let Some(slot) = image.get_mut(start..start + n) {
            slot.copy_from_slice(&bytes[..n]);
        }
    }
    let mut f = Cursor::new(image);
    if let Ok(iso) = Iso9660::open(&mut f) {
        read_live_iso(&mut f, &iso);
    }
}

struct LiveIsoTemplate {
    image: Vec<u8>,
    igninfo: Extent,
    kargs: Extent,
}

/// An ISO with the live-ISO files, the JSON files blank (spaces), built once.
fn live_iso_template() -> Option<&'static LiveIsoTemplate> {
    static TEMPLATE: OnceLock<Option<LiveIsoTemplate>> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let mut tree = IsoTree::new();
            tree.add_file("coreos/igninfo.jso", vec![b' '; 1024]).ok()?;
            tree.add_file("coreos/kargs.jso", vec![b' '; 2048]).ok()?;
            tree.add_file("images/ignition.img", vec![0u8; 16 * 1024])
                .ok()?;
            let mut cfg = b"console=tty0 ignition.platform.id=metal ".to_vec();
            cfg.resize(1024, b'#');
            tree.add_file("EFI/redhat/grub.cfg", cfg.clone()).ok()?;
            tree.add_file("isolinux/isolinux.cfg", cfg).ok()?;
            let mut file = tempfile::tempfile().ok()?;
            write_iso("rhcos-fuzz", &tree, &mut file).ok()?;
            let mut image = Vec::new();
            file.seek(SeekFrom::Start(0)).ok()?;
            file.read_to_end(&mut image).ok()?;
            let mut f = Cursor::new(image);
            let iso = Iso9660::open(&mut f).ok()?;
            let igninfo = iso.find(&mut f, "coreos/igninfo.jso").ok()?;
            let kargs = iso.find(&mut f, "coreos/kargs.jso").ok()?;
            Some(LiveIsoTemplate {
                image: f.into_inner(),
                igninfo,
                kargs,
            })
        })
        .as_ref()
}

/// The embed area's archives: xz, gzip or plain newc cpio, concatenated.
pub fn embed_payload(data: &[u8]) {
    if let Ok(members) = embed::read_members(data) {
        let total: u64 = members.values().map(|v| v.len() as u64).sum();
        assert!(total <= crate::host::input::MAX_EMBED_DECOMPRESSED);
    }
}

/// The seed's small JSON and text files.
pub fn seed_json(data: &[u8]) {
    use crate::seed::files;
    let _ = files::parse_cluster_info(data);
    if let Ok(b) = files::parse_rpm_ostree(data) {
        assert_eq!(b.checksum.len(), 64);
    }
    let _ = files::parse_machine_config(data);
    let _ = files::parse_containers_list(data);
    if let Ok(paths) = files::parse_etc_deletions(data) {
        for p in paths {
            assert!(p.relative().starts_with("etc"));
            assert!(
                p.relative()
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
            );
        }
    }
}

/// Tar member checks on a stream of (type, name, link) triples: each
/// member is `type byte, name, 0, link, 0`. Checked against a model kept
/// with full paths: nothing accepted goes through a symbolic link, or a
/// hard link to one, that the archive made earlier.
pub fn tar_members(data: &[u8]) {
    for tarball in Tarball::ALL {
        let mut policy = Policy::new(tarball);
        let mut links: HashSet<PathBuf> = HashSet::new();
        let mut rest = data;
        while let Some((&t, tail)) = rest.split_first() {
            let mut parts = tail.splitn(3, |b| *b == 0);
            let name = parts.next().unwrap_or_default();
            let link = parts.next();
            rest = parts.next().unwrap_or_default();
            let Ok(Some(m)) = policy.check(tar::EntryType::new(t), name, link) else {
                continue;
            };
            assert!(
                m.path
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
            );
            assert!(
                !m.path.ancestors().skip(1).any(|a| links.contains(a)),
                "{tarball}: {:?} goes through a link",
                m.path
            );
            let is_link = match &m.kind {
                Kind::Symlink(_) => true,
                Kind::HardLink(target) => links.contains(target),
                _ => false,
            };
            if is_link {
                links.insert(m.path);
            } else {
                links.remove(&m.path);
            }
        }
    }
}

/// A whole tar stream through the scan `seed inspect` makes, plain and
/// gzip-wrapped.
pub fn tar_stream(data: &[u8]) {
    for tarball in Tarball::ALL {
        let wanted = crate::seed::scan::wanted_members(tarball, None);
        let _ = crate::seed::scan::scan_tar(data, tarball, &wanted);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    if gz.write_all(data).is_ok()
        && let Ok(bytes) = gz.finish()
    {
        let _ = crate::seed::scan::scan_tgz(&bytes[..], Tarball::Var, &[]);
    }
}

/// Every YAML input, decoded strictly and validated.
pub fn yaml_inputs(data: &[u8]) {
    use crate::api::{image_based_config, install_config, installation_config, yaml};
    let text = String::from_utf8_lossy(data);
    if let Ok(c) =
        yaml::decode_strict::<install_config::InstallConfig>("install-config.yaml", &text)
    {
        let _ = c.validate();
    }
    if let Ok(c) =
        yaml::decode_strict::<image_based_config::ImageBasedConfig>(image_based_config::FILE, &text)
    {
        let _ = c.validate();
    }
    if let Ok(c) = yaml::decode_strict::<installation_config::InstallationConfig>(
        installation_config::FILE,
        &text,
    ) {
        let _ = c.validate();
    }
    let _ = crate::create::extra_manifests::check_documents(data);
    let _ = crate::api::ignition::parse_override(&text);
}

/// Seed inputs for each target: small valid examples to mutate from.
pub fn seed_corpus(name: &str) -> Vec<Vec<u8>> {
    match name {
        "iso9660" => live_iso_template()
            .map(|t| vec![t.image[16 * 2048..].to_vec()])
            .unwrap_or_default(),
        "live_iso_json" => vec![
            br#"{"file":"images/ignition.img"}"#.to_vec(),
            [
                &br#"{"file":"images/ignition.img","offset":0,"length":4096}"#[..],
                &[0xff],
                br##"{"default":"console=tty0","files":[{"path":"EFI/redhat/grub.cfg","offset":0},{"path":"isolinux/isolinux.cfg","offset":8,"pad":"#","end":"\n"}],"size":512}"##,
            ]
            .concat(),
            [
                &br#"{"file":"images/ignition.img","offset":18446744073709551615,"length":2}"#[..],
                &[0xff],
                br#"{"default":"","files":[{"path":"EFI/redhat/grub.cfg","offset":0,"pad":""}],"size":8}"#,
            ]
            .concat(),
        ],
        "embed_payload" => {
            let mut m = BTreeMap::new();
            m.insert("config.ign".to_string(), br#"{"ignition":{}}"#.to_vec());
            let mut xz = embed::build_payload(&m).unwrap_or_default();
            xz.resize(xz.len() + 64, 0);
            let mut cpio = Vec::new();
            let mut w = cpio::newc::Builder::new("a")
                .mode(0o100644)
                .write(&mut cpio, 2);
            let _ = w.write_all(b"hi");
            let _ = w.finish();
            let _ = cpio::newc::trailer(&mut cpio);
            vec![xz, cpio]
        }
        "seed_json" => vec![
            br#"{"deployments":[{"id":"rhcos-0123456789012345678901234567890123456789012345678901234567890123.0","booted":true}]}"#.to_vec(),
            br#"{"spec":{"kernelArguments":["a=b"],"fips":true}}"#.to_vec(),
            b"/etc/a\n/etc/b/c\n".to_vec(),
            br#"{"seed_cluster_ocp_version":"4.16.0","cluster_name":"sno"}"#.to_vec(),
        ],
        "tar_members" => vec![
            b"2var/l\0/\0" .iter().chain(b"1var/h\0var/l\0").chain(b"0var/h/etc/passwd\0\0").copied().collect(),
            b"5var/a\0\x000var/a/b\0\0".to_vec(),
        ],
        "tar_stream" => {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o644);
            let _ = b.append_data(&mut h, "var/seed_data/manifest.json", &b"{}"[..]);
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Symlink);
            l.set_size(0);
            let _ = b.append_link(&mut l, "var/l", "/");
            vec![b.into_inner().unwrap_or_default()]
        }
        "yaml_inputs" => vec![
            crate::create::template::CONFIG_TEMPLATE.as_bytes().to_vec(),
            crate::create::image::template::IMAGE_CONFIG_TEMPLATE
                .as_bytes()
                .to_vec(),
            b"apiVersion: v1\nbaseDomain: example.com\nmetadata: {name: sno}\n".to_vec(),
            b"a: [[[[{b: *x}]]]]\n---\n&x c\n".to_vec(),
        ],
        _ => Vec::new(),
    }
}
