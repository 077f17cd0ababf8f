//! §2.4 A: the disk. Cleanup, `coreos-installer install`, the extra
//! partition (found by its GPT name, W9), XFS, the grown root and the
//! mounts.

use anyhow::{Context, Result, bail};

use super::{IbiState, IbiStep, shown};
use crate::engine::{Check, Ctx, Kind, Location};
use crate::host::disk::inventory::parse_mountinfo;
use crate::host::disk::sfdisk_append_line;
use crate::host::root::Root;
use crate::ibi::options::TARGET_JOURNAL;

pub fn steps() -> Vec<IbiStep> {
    vec![
        IbiStep {
            id: "cleanup-disk",
            description: "removes LVM, device-mapper, RAID and signatures from the disk",
            kind: Kind::Resumable,
            explain: |s| {
                let d = s.disk();
                [
                    shown("vgs", &["--noheadings", "-o", "vg_name,pv_name"]),
                    format!("{}  (each VG on {d})", shown("vgremove", &["<vg>", "-y"])),
                    shown("pvs", &["--noheadings", "-o", "pv_name"]),
                    format!(
                        "{}  (each PV on {d})",
                        shown("pvremove", &["<pv>", "-y", "-ff"])
                    ),
                    shown("dmsetup", &["ls"]),
                    format!(
                        "{}  (each DM device over {d})",
                        shown("dmsetup", &["remove", "--retry", "<dm>"])
                    ),
                    shown("mdadm", &["-v", "--query", "--detail", "--scan"]),
                    format!(
                        "{}  (each array with a member on {d})",
                        shown("mdadm", &["--stop", "<md>"])
                    ),
                    shown("wipefs", &["--all", "--force", d]),
                ]
                .join("\n    ")
            },
            check: |_, s| {
                Ok(if s.checked.loaded.config.skip_disk_cleanup {
                    Check::Done("skipDiskCleanup is set".into())
                } else {
                    // Nothing on the disk says the cleanup ran (the
                    // install overwrites it): the journal decides.
                    Check::Unknown
                })
            },
            run: cleanup,
            clean: None,
        },
        IbiStep {
            id: "install-rhcos",
            description: "writes RHCOS to the disk with coreos-installer",
            kind: Kind::RedoFromClean,
            explain: |s| install_cmd(s).join(" "),
            check: |ctx, s| {
                Ok(match s.table_if_any(ctx) {
                    Some(t)
                        if t.partition_by_name("boot").is_ok()
                            && t.partition_by_name("root").is_ok() =>
                    {
                        Check::Done(format!("{} has partitions named boot and root", s.disk()))
                    }
                    _ => Check::NotDone,
                })
            },
            run: |ctx, s| {
                let argv = install_cmd(s);
                ctx.command(&argv[0])
                    .args(&argv[1..])
                    .describe("installing RHCOS")
                    .run_streaming(|l| ctx.progress().message(l.text))
            },
            clean: None,
        },
        IbiStep {
            id: "create-extra-partition",
            description: "appends the extra partition for container storage",
            kind: Kind::Resumable,
            explain: |s| match &s.checked.extra_start {
                Some(start) => format!(
                    "{} <<< {:?}  ({} bytes)",
                    shown("sfdisk", &["--append", s.disk()]),
                    sfdisk_append_line(start, s.label()).unwrap_or_default(),
                    s.checked.extra_bytes.unwrap_or(0)
                ),
                None => "nothing (useContainersFolder)".into(),
            },
            check: |ctx, s| {
                if s.checked.extra_start.is_none() {
                    return Ok(Check::Done("useContainersFolder is set".into()));
                }
                Ok(match s.table_if_any(ctx) {
                    Some(t) => match t.partition_by_name(s.label()) {
                        Ok(p) => Check::Done(format!("{} is named {}", p.node, s.label())),
                        Err(_) => Check::NotDone,
                    },
                    None => Check::NotDone,
                })
            },
            run: |ctx, s| {
                let Some(start) = &s.checked.extra_start else {
                    return Ok(());
                };
                let line = sfdisk_append_line(start, s.label())?;
                ctx.command("sfdisk")
                    .arg("--append")
                    .arg(s.disk())
                    .stdin_bytes(line)
                    .describe("creating the extra partition")
                    .run_streaming(|_| {})?;
                // W9: found by its name, whatever number it got.
                s.partition(ctx, s.label()).map(|_| ())
            },
            clean: None,
        },
        IbiStep {
            id: "format-extra-partition",
            description: "makes an XFS file system on the extra partition",
            kind: Kind::RedoFromClean,
            explain: |s| {
                if s.checked.extra_start.is_none() {
                    return "nothing (useContainersFolder)".into();
                }
                shown(
                    "mkfs.xfs",
                    &["-f", &format!("<partition named {}>", s.label())],
                )
            },
            check: |ctx, s| {
                if s.checked.extra_start.is_none() {
                    return Ok(Check::Done("useContainersFolder is set".into()));
                }
                let Ok(node) = s.partition(ctx, s.label()) else {
                    return Ok(Check::NotDone);
                };
                Ok(if fs_type(ctx, &node).as_deref() == Some("xfs") {
                    Check::Done(format!("{node} holds XFS"))
                } else {
                    Check::NotDone
                })
            },
            run: |ctx, s| {
                if s.checked.extra_start.is_none() {
                    return Ok(());
                }
                let node = s.partition(ctx, s.label())?;
                ctx.command("mkfs.xfs")
                    .args(["-f", &node])
                    .describe("formatting the extra partition")
                    .run_streaming(|_| {})
            },
            clean: None,
        },
        IbiStep {
            id: "grow-root-partition",
            description: "grows the root partition up to the extra partition",
            kind: Kind::Resumable,
            explain: |s| {
                shown(
                    "growpart",
                    &[s.disk(), "<number of the partition named root>"],
                )
            },
            check: |ctx, s| {
                let Some(t) = s.table_if_any(ctx) else {
                    return Ok(Check::NotDone);
                };
                let Ok(root) = t.partition_by_name("root") else {
                    return Ok(Check::NotDone);
                };
                let end = root.start.saturating_add(root.size);
                let next = t
                    .partitiontable
                    .partitions
                    .iter()
                    .filter(|p| p.start >= end)
                    .map(|p| p.start)
                    .min();
                let limit = next.or(t.partitiontable.lastlba.map(|l| l.saturating_add(1)));
                let sector = t.partitiontable.sectorsize.unwrap_or(512).max(1);
                Ok(match limit {
                    // growpart leaves at most the 1 MiB alignment free.
                    Some(l) if l.saturating_sub(end) < (1 << 20) / sector => {
                        Check::Done(format!("{} ends at sector {end}", root.node))
                    }
                    _ => Check::NotDone,
                })
            },
            run: |ctx, s| {
                let node = s.partition(ctx, "root")?;
                let number = partition_number(&node)?;
                ctx.command("growpart")
                    .arg(s.disk())
                    .arg(number.to_string())
                    .describe("growing the root partition")
                    .run_streaming(|_| {})
            },
            clean: None,
        },
        IbiStep {
            id: "mount-target",
            description: "mounts root, boot and the container storage of the new disk",
            kind: Kind::Resumable,
            explain: |s| {
                mounts_wanted(s)
                    .iter()
                    .map(|(what, args)| {
                        format!(
                            "{}  ({what})",
                            shown(
                                "mount",
                                &args.iter().map(String::as_str).collect::<Vec<_>>()
                            )
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n    ")
                    + &format!(
                        "\n    journal moves to {}",
                        s.target().join(TARGET_JOURNAL).display()
                    )
            },
            check: |ctx, s| {
                let mounted = mounted_targets(s);
                let want = [s.target(), s.target().join("boot"), s.storage()];
                Ok(
                    if want
                        .iter()
                        .all(|w| mounted.iter().any(|m| m == &w.display().to_string()))
                    {
                        // Mounted by a run killed before its journal moved:
                        // the journal still belongs on the disk, or a power
                        // loss later would lose it with /run.
                        ctx.relocate_journal(Location::new(
                            Root::open(s.target())?,
                            TARGET_JOURNAL,
                        ));
                        Check::Done(format!("{} is mounted", s.target().display()))
                    } else {
                        Check::NotDone
                    },
                )
            },
            run: mount_target,
            clean: None,
        },
        IbiStep {
            id: "grow-root-fs",
            description: "grows the root file system to its partition",
            kind: Kind::Resumable,
            explain: |s| {
                format!(
                    "{}  (resize2fs <partition named root> when it holds ext4)",
                    shown("xfs_growfs", &[&s.target().display().to_string()])
                )
            },
            check: |_, _| Ok(Check::Unknown),
            run: grow_root_fs,
            clean: None,
        },
        IbiStep {
            id: "relabel-container-storage",
            description: "restores SELinux labels on the container storage",
            kind: Kind::Resumable,
            explain: |s| {
                if s.checked.selinux {
                    shown("restorecon", &["-R", &s.storage().display().to_string()])
                } else {
                    "nothing (SELinux is not enabled)".into()
                }
            },
            check: |_, s| {
                Ok(if s.checked.selinux {
                    Check::Unknown
                } else {
                    Check::Done("SELinux is not enabled".into())
                })
            },
            run: |ctx, s| {
                ctx.command("restorecon")
                    .arg("-R")
                    .arg(s.storage())
                    .describe("relabelling the container storage")
                    .run_streaming(|_| {})
            },
            clean: None,
        },
    ]
}

fn install_cmd(s: &IbiState) -> Vec<String> {
    let mut v = vec![
        "coreos-installer".to_string(),
        "install".into(),
        s.disk().to_string(),
    ];
    v.extend(
        s.checked
            .loaded
            .config
            .coreos_installer_args
            .iter()
            .cloned(),
    );
    v
}

/// Upstream's `CleanupInstallDevice`; every failure is reported (not only
/// logged), and only a failed `wipefs` fails the step: a disk with
/// signatures left would confuse coreos-installer.
fn cleanup(ctx: &Ctx<'_>, s: &mut IbiState) -> Result<()> {
    let disk = s.disk().to_string();
    let base = disk.rsplit('/').next().unwrap_or(&disk).to_string();
    let mut failures = Vec::new();
    let mut note = |what: String, r: Result<()>| {
        if let Err(e) = r {
            let m = format!("{what}: {e:#}");
            tracing::warn!("disk cleanup: {m}");
            ctx.progress().message(format!("cleanup failure: {m}"));
            failures.push(m);
        }
    };
    let text = |argv: &[&str]| -> Result<String> {
        let out = ctx.command(argv[0]).args(&argv[1..]).run_capture(4 << 20)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    let run = |argv: &[&str]| -> Result<()> {
        ctx.command(argv[0]).args(&argv[1..]).run_streaming(|_| {})
    };
    match text(&["vgs", "--noheadings", "-o", "vg_name,pv_name"]) {
        Ok(out) => {
            for l in out.lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                if let [vg, pv] = f[..]
                    && pv.contains(&disk)
                {
                    note(format!("removing VG {vg}"), run(&["vgremove", vg, "-y"]));
                }
            }
        }
        Err(e) => note("listing LVM volume groups".into(), Err(e)),
    }
    match text(&["pvs", "--noheadings", "-o", "pv_name"]) {
        Ok(out) => {
            for pv in out.lines().map(str::trim).filter(|l| l.contains(&disk)) {
                note(
                    format!("removing PV {pv}"),
                    run(&["pvremove", pv, "-y", "-ff"]),
                );
            }
        }
        Err(e) => note("listing LVM physical volumes".into(), Err(e)),
    }
    match text(&["dmsetup", "ls"]) {
        Ok(out) if !out.contains("No devices found") => {
            let mut names: Vec<String> = Vec::new();
            for name in out.lines().filter_map(|l| l.split_whitespace().next()) {
                match text(&["dmsetup", "deps", "-o", "devname", name]) {
                    Ok(deps) if deps.contains(&format!("({base}")) => names.push(name.to_string()),
                    Ok(_) => {}
                    Err(e) => note(format!("reading the dependencies of {name}"), Err(e)),
                }
            }
            // Users of a thin pool go before its data and metadata.
            names.sort_by_key(|n| n.ends_with("_tdata") || n.ends_with("_tmeta"));
            for n in names {
                note(
                    format!("removing DM device {n}"),
                    run(&["dmsetup", "remove", "--retry", &n]),
                );
            }
        }
        Ok(_) => {}
        Err(e) => note("listing device-mapper devices".into(), Err(e)),
    }
    match text(&["mdadm", "-v", "--query", "--detail", "--scan"]) {
        Ok(out) => {
            let mut md = None;
            for l in out.lines() {
                if let Some(rest) = l.strip_prefix("ARRAY ") {
                    md = rest.split_whitespace().next().map(str::to_string);
                } else if let (Some(m), Some(devs)) = (&md, l.trim().strip_prefix("devices=")) {
                    let members: Vec<&str> =
                        devs.split(',').filter(|d| d.starts_with(&disk)).collect();
                    if !members.is_empty() {
                        note(format!("stopping RAID {m}"), run(&["mdadm", "--stop", m]));
                        for member in members {
                            note(
                                format!("clearing RAID member {member}"),
                                run(&["mdadm", "--zero-superblock", member]),
                            );
                        }
                    }
                }
            }
        }
        Err(e) => note("listing RAID arrays".into(), Err(e)),
    }
    if let Err(e) = run(&["wipefs", "--all", "--force", &disk]) {
        run(&["wipefs", "--all", &disk])
            .with_context(|| format!("wiping {disk} (wipefs --all --force failed too: {e:#})"))?;
    }
    if !failures.is_empty() {
        tracing::warn!(
            "the disk cleanup went on past {} failure(s): {}",
            failures.len(),
            failures.join("; ")
        );
    }
    Ok(())
}

/// RHCOS's root is XFS (grown through its mount point); a metal image
/// with an ext2/3/4 root (the CoreOS-like test OS, other ostree OSes)
/// would make xfs_growfs fail after the disk was already written, so the
/// file system found on the partition decides.
fn grow_root_fs(ctx: &Ctx<'_>, s: &mut IbiState) -> Result<()> {
    let node = s.partition(ctx, "root")?;
    let fs = fs_type(ctx, &node);
    let cmd = match fs.as_deref() {
        Some("ext2" | "ext3" | "ext4") => ctx.command("resize2fs").arg(&node),
        _ => ctx.command("xfs_growfs").arg(s.target()),
    };
    cmd.describe("growing the root file system")
        .run_streaming(|_| {})
}

/// `blkid`'s TYPE of `node`, if it has one.
fn fs_type(ctx: &Ctx<'_>, node: &str) -> Option<String> {
    let out = ctx
        .command("blkid")
        .args(["-o", "value", "-s", "TYPE", node])
        .run_capture(4096)
        .ok()?;
    let t = String::from_utf8_lossy(&out).trim().to_string();
    (!t.is_empty()).then_some(t)
}

/// The number at the end of a partition node (`/dev/vda4`, `/dev/nvme0n1p4`).
fn partition_number(node: &str) -> Result<u32> {
    let digits: String = node
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if digits.is_empty() {
        bail!("{node} does not end with a partition number");
    }
    digits
        .parse()
        .with_context(|| format!("reading the partition number of {node}"))
}

fn mounted_targets(s: &IbiState) -> Vec<String> {
    let text = std::fs::read_to_string(s.live().join("proc/self/mountinfo")).unwrap_or_default();
    parse_mountinfo(&text)
        .into_iter()
        .map(|m| m.target)
        .collect()
}

/// (what, mount argv) in order; the devices are named by GPT name in the
/// plan and resolved to nodes at run time.
fn mounts_wanted(s: &IbiState) -> Vec<(String, Vec<String>)> {
    let t = s.target().display().to_string();
    let mut v = vec![
        (
            "partition named root".to_string(),
            vec!["<root>".to_string(), t.clone()],
        ),
        (
            "partition named boot".to_string(),
            vec!["<boot>".to_string(), format!("{t}/boot")],
        ),
    ];
    if s.checked.extra_start.is_some() {
        v.push((
            format!("partition named {}", s.label()),
            vec![
                format!("<{}>", s.label()),
                s.storage().display().to_string(),
            ],
        ));
    } else {
        v.push((
            "useContainersFolder".into(),
            vec![
                "-o".into(),
                "bind".into(),
                format!("{t}/containers"),
                s.storage().display().to_string(),
            ],
        ));
    }
    v
}

fn mount_target(ctx: &Ctx<'_>, s: &mut IbiState) -> Result<()> {
    let table = s.table(ctx)?;
    let node = |name: &str| table.partition_by_name(name).map(|p| p.node.clone());
    let mounted = mounted_targets(s);
    let is_mounted = |p: &std::path::Path| mounted.iter().any(|m| m == &p.display().to_string());
    let mut plan = vec![
        (node("root")?, s.target(), false),
        (node("boot")?, s.target().join("boot"), false),
    ];
    match &s.checked.extra_start {
        Some(_) => plan.push((node(s.label())?, s.storage(), false)),
        None => plan.push((
            s.target().join("containers").display().to_string(),
            s.storage(),
            true,
        )),
    }
    for (dev, at, bind) in plan {
        if is_mounted(&at) {
            continue;
        }
        if bind {
            std::fs::create_dir_all(&dev).with_context(|| format!("creating {dev}"))?;
        }
        std::fs::create_dir_all(&at)
            .with_context(|| format!("creating the mount point {}", at.display()))?;
        let mut cmd = ctx.command("mount");
        if bind {
            cmd = cmd.args(["-o", "bind"]);
        }
        cmd.arg(&dev)
            .arg(&at)
            .describe("mounting the new disk")
            .run_streaming(|_| {})?;
    }
    // What a run after a reboot compares the disk with (ibi::resume).
    crate::ibi::resume::record_disk(s, &table)?;
    let root = Root::open(s.target())?;
    ctx.relocate_journal(Location::new(root, TARGET_JOURNAL));
    Ok(())
}
