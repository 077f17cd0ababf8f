//! §2.4 B–C: the seed pulled (or opened offline) and restored into a new
//! stateroot of the target's ostree sysroot (the `ibi::restore` pieces).

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{IbiState, IbiStep, PullStaging, shown};
use crate::engine::{Check, Ctx, Kind};
use crate::ibi::agent;
use crate::ibi::options::PULL_SECRET;
use crate::ibi::restore as r;
use crate::seed::{Expectations, ExtractOptions, PullOptions, Seed, SeedRef};

/// The seed repository's scratch space, on the target's root partition
/// (not the live system's RAM-backed /var/tmp).
const WORKSPACE: &str = "var/tmp/sprout-ibi";

fn workspace(s: &IbiState) -> PathBuf {
    s.target().join(WORKSPACE)
}

fn done(yes: bool, why: impl FnOnce() -> String) -> Check {
    if yes {
        Check::Done(why())
    } else {
        Check::NotDone
    }
}

fn deployed(
    s: &IbiState,
    f: impl FnOnce(&crate::host::ostree::DeploymentInfo) -> bool,
    why: &str,
) -> Result<Check> {
    Ok(match s.deployment()? {
        Some(d) => done(f(&d), || format!("{why} ({})", d.dir.display())),
        None => Check::NotDone,
    })
}

/// Whether step `id` reads the seed's files (all of these after pull-seed).
pub fn reads_seed_files(id: &str) -> bool {
    id != "pull-seed" && steps().iter().any(|s| s.id == id)
}

pub fn steps() -> Vec<IbiStep> {
    vec![
        IbiStep {
            id: "pull-seed",
            description: "pulls the seed image into the container storage and mounts it",
            kind: Kind::Resumable,
            explain: |s| match &s.checked.seed_ref {
                SeedRef::Docker(img) => [
                    shown(
                        "podman",
                        &[
                            "pull",
                            "--authfile",
                            &s.live().join(PULL_SECRET).display().to_string(),
                            img,
                        ],
                    ),
                    shown("podman", &["image", "mount", img]),
                ]
                .join("\n    "),
                other => format!("nothing: the seed is read offline from {other}"),
            },
            check: |_, s| {
                Ok(match &s.checked.seed_ref {
                    SeedRef::Docker(_) => Check::NotDone,
                    other => Check::Done(format!("offline seed {other}")),
                })
            },
            run: pull_seed,
            clean: None,
        },
        IbiStep {
            id: "import-seed-commit",
            description: "imports the seed's ostree commit into the target's repository",
            kind: Kind::Resumable,
            explain: |s| {
                format!(
                    "stream ostree.tgz's objects into {}/ostree/repo (commit {}, checksums verified, no workspace copy)",
                    s.target().display(),
                    s.checked.seed.booted_deployment().checksum
                )
            },
            check: |_, s| {
                Ok(match s.sysroot_if_any() {
                    Some(sr) => done(r::is_imported(&s.checked.seed, &sr)?, || {
                        format!(
                            "commit {} is in the repository",
                            s.checked.seed.booted_deployment().checksum
                        )
                    }),
                    None => Check::NotDone,
                })
            },
            run: |ctx, s| {
                let sysroot = s.sysroot()?;
                ctx.progress().message(crate::ibi::space::message(
                    "the seed on the root partition",
                    s.checked.space.root_needed,
                    &s.target(),
                ));
                // An older sprout's workspace copy, if a crash left one.
                let ws = workspace(s);
                if ws.exists() {
                    std::fs::remove_dir_all(&ws)
                        .with_context(|| format!("removing {}", ws.display()))?;
                }
                let progress = ctx.progress().clone();
                r::import_seed(&s.checked.seed, &sysroot, move |p| {
                    progress.items(u64::from(p.objects_fetched), None);
                })
                .map(|_| ())
            },
            clean: None,
        },
        IbiStep {
            id: "init-stateroot",
            description: "creates the seed's stateroot",
            kind: Kind::Resumable,
            explain: |s| {
                format!(
                    "ostree admin os-init --sysroot {} {}",
                    s.target().display(),
                    s.checked.stateroot.as_str()
                )
            },
            check: |_, s| {
                Ok(match s.sysroot_if_any() {
                    Some(sr) => done(sr.has_stateroot(&s.checked.stateroot), || {
                        format!("stateroot {} exists", s.checked.stateroot.as_str())
                    }),
                    None => Check::NotDone,
                })
            },
            run: |_, s| r::init_stateroot(&s.sysroot()?, &s.checked.stateroot),
            clean: None,
        },
        IbiStep {
            id: "deploy-seed",
            description: "deploys the seed's commit with its kernel arguments",
            kind: Kind::Resumable,
            explain: |s| {
                let kargs = crate::host::ostree::seed_kernel_args(s.checked.seed.machine_config());
                format!(
                    "ostree admin deploy --os {} --sysroot {} {} (kernel arguments, each one argument: {:?})",
                    s.checked.stateroot.as_str(),
                    s.target().display(),
                    s.checked.seed.booted_deployment().checksum,
                    kargs
                )
            },
            check: |_, s| deployed(s, |_| true, "the seed is deployed"),
            run: |_, s| {
                r::deploy_seed(&s.checked.seed, &s.sysroot()?, &s.checked.stateroot).map(|_| ())
            },
            clean: None,
        },
        IbiStep {
            id: "restore-origin",
            description: "copies the seed's .origin next to the deployment",
            kind: Kind::Resumable,
            explain: |s| {
                format!(
                    "ostree-{}.origin → <deployment>.origin",
                    s.checked.seed.booted_deployment().deployment
                )
            },
            check: |_, s| {
                deployed(
                    s,
                    |d| r::is_origin_restored(&s.checked.seed, d),
                    "the .origin is the seed's",
                )
            },
            run: |_, s| r::restore_origin(&s.checked.seed, &s.require_deployment()?),
            clean: None,
        },
        IbiStep {
            id: "restore-var",
            description: "extracts var.tgz into the stateroot",
            kind: Kind::Resumable,
            explain: |s| {
                format!(
                    "var.tgz → {}",
                    s.target()
                        .join("ostree/deploy")
                        .join(s.checked.stateroot.as_str())
                        .display()
                )
            },
            check: |_, s| {
                Ok(match s.sysroot_if_any() {
                    Some(sr) => done(
                        r::is_var_restored(&s.checked.seed, &sr, &s.checked.stateroot),
                        || "var.tgz was extracted".into(),
                    ),
                    None => Check::NotDone,
                })
            },
            run: |_, s| {
                let rep = r::restore_var(
                    &s.checked.seed,
                    &s.sysroot()?,
                    &s.checked.stateroot,
                    &ExtractOptions::default(),
                )?;
                tracing::info!("var.tgz: {} members, {} bytes", rep.members, rep.bytes);
                Ok(())
            },
            clean: None,
        },
        IbiStep {
            id: "install-agent",
            description: "installs sprout as the stateroot's lca-cli",
            kind: Kind::Resumable,
            explain: |s| {
                if s.opts.keep_seed_agent {
                    "nothing (--keep-seed-agent)".into()
                } else {
                    format!(
                        "{} → {}",
                        agent_binary(s).display(),
                        s.target()
                            .join("ostree/deploy")
                            .join(s.checked.stateroot.as_str())
                            .join(agent::AGENT_PATH)
                            .display()
                    )
                }
            },
            check: |_, s| {
                if s.opts.keep_seed_agent {
                    return Ok(Check::Done("--keep-seed-agent".into()));
                }
                Ok(match s.sysroot_if_any() {
                    Some(sr) => done(
                        agent::is_agent_installed(&sr, &s.checked.stateroot, &agent_binary(s))?,
                        || "lca-cli is this sprout".into(),
                    ),
                    None => Check::NotDone,
                })
            },
            run: |_, s| agent::install_agent(&s.sysroot()?, &s.checked.stateroot, &agent_binary(s)),
            clean: None,
        },
        IbiStep {
            id: "restore-etc",
            description: "extracts etc.tgz into the deployment",
            kind: Kind::Resumable,
            explain: |_| "etc.tgz → <deployment>".into(),
            check: |_, s| match s.sysroot_if_any() {
                Some(sr) => deployed(
                    s,
                    |d| r::is_etc_restored(&s.checked.seed, &sr, &s.checked.stateroot, d),
                    "etc.tgz was extracted",
                ),
                None => Ok(Check::NotDone),
            },
            run: |_, s| {
                let dep = s.require_deployment()?;
                r::restore_etc(
                    &s.checked.seed,
                    &s.sysroot()?,
                    &s.checked.stateroot,
                    &dep,
                    &ExtractOptions::default(),
                )
                .map(|_| ())
            },
            clean: None,
        },
        IbiStep {
            id: "apply-etc-deletions",
            description: "removes the files etc.deletions lists from the deployment",
            kind: Kind::Resumable,
            explain: |s| {
                format!(
                    "{} paths of etc.deletions removed from <deployment>",
                    s.checked.seed.etc_deletions().len()
                )
            },
            check: |_, s| match s.sysroot_if_any() {
                Some(sr) => deployed(
                    s,
                    |d| r::are_etc_deletions_applied(&s.checked.seed, &sr, &s.checked.stateroot, d),
                    "etc.deletions was applied",
                ),
                None => Ok(Check::NotDone),
            },
            run: |ctx, s| {
                let dep = s.require_deployment()?;
                for w in r::apply_etc_deletions(
                    &s.checked.seed,
                    &s.sysroot()?,
                    &s.checked.stateroot,
                    &dep,
                )? {
                    tracing::warn!("{w}");
                    ctx.progress().message(w);
                }
                Ok(())
            },
            clean: None,
        },
        IbiStep {
            id: "copy-seed-lists",
            description: "copies containers.list and manifest.json for the precache",
            kind: Kind::Resumable,
            explain: |s| {
                format!(
                    "containers.list → {}, manifest.json → {}",
                    s.live().join(r::LIVE_CONTAINERS_LIST).display(),
                    s.live().join(r::LIVE_MANIFEST).display()
                )
            },
            check: |_, s| {
                Ok(done(
                    r::are_seed_lists_copied(&s.checked.seed, s.live())?,
                    || "both lists are in place".into(),
                ))
            },
            run: |_, s| r::copy_seed_lists(&s.checked.seed, s.live()),
            clean: None,
        },
    ]
}

fn agent_binary(s: &IbiState) -> PathBuf {
    s.opts
        .agent_binary
        .clone()
        .unwrap_or_else(|| PathBuf::from("/proc/self/exe"))
}

/// B: upstream's `podman pull --authfile`, so registries.conf mirrors,
/// proxies and auth behave as there; then the image is mounted and the
/// restore reads it from the mount.
fn pull_seed(ctx: &Ctx<'_>, s: &mut IbiState) -> Result<()> {
    let SeedRef::Docker(img) = s.checked.seed_ref.clone() else {
        return Ok(());
    };
    let exists = ctx
        .command("podman")
        .args(["image", "exists", &img])
        .run_streaming(|_| {})
        .is_ok();
    if !exists {
        let staging = PullStaging::enter(s)?;
        ctx.command("podman")
            .args(["pull", "--authfile"])
            .arg(s.live().join(PULL_SECRET))
            .arg(&img)
            .env("TMPDIR", staging.path())
            .describe("pulling the seed image")
            .run_streaming(|l| ctx.progress().message(l.text))?;
    }
    let out = ctx
        .command("podman")
        .args(["image", "mount", &img])
        .describe("mounting the seed image")
        .run_capture(64 << 10)?;
    let mp = PathBuf::from(String::from_utf8_lossy(&out).trim());
    let c = &s.checked.loaded.config;
    let expect = Expectations {
        seed_version: Some(c.seed_version.clone()),
        extra_partition_label: (!c.use_containers_folder).then(|| c.extra_partition_label.clone()),
    };
    s.checked.seed = Seed::open(&SeedRef::Dir(mp.clone()), &PullOptions::default(), &expect)
        .with_context(|| format!("opening the seed mounted at {}", mp.display()))?;
    Ok(())
}
