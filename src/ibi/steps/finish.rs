//! §2.4 D–G: precache, the post-install script, the original stateroot
//! removed, power-off.

use super::{IbiStep, PullStaging, shown};
use crate::engine::{Check, Kind};
use crate::host::ostree::Stateroot;
use crate::ibi::options::{POST_SCRIPT, PRECACHE_STATUS, PULL_SECRET};
use crate::ibi::{precache, restore as r};

pub fn steps() -> Vec<IbiStep> {
    vec![
        IbiStep {
            id: "precache",
            description: "pulls the seed's images into the container storage",
            kind: Kind::Resumable,
            explain: |s| {
                if s.checked.loaded.config.precache_disabled {
                    return "nothing (precacheDisabled)".into();
                }
                let n = s.checked.seed.containers().len();
                format!(
                    "{}  (each of {n} images of {}, at most MAX_PULL_THREADS={} at once, present ones skipped; status in {})",
                    shown(
                        "podman",
                        &[
                            "pull",
                            "<image>",
                            "--authfile",
                            &s.live().join(PULL_SECRET).display().to_string()
                        ]
                    ),
                    s.live().join(r::LIVE_CONTAINERS_LIST).display(),
                    precache::threads(),
                    s.live().join(PRECACHE_STATUS).display()
                )
            },
            check: |_, s| {
                Ok(if s.checked.loaded.config.precache_disabled {
                    Check::Done("precacheDisabled is set".into())
                } else {
                    // Each image is checked as it comes: already present
                    // ones are not pulled again.
                    Check::NotDone
                })
            },
            run: |ctx, s| {
                let c = &s.checked.loaded.config;
                let info = s.checked.seed.cluster_info();
                let sources =
                    precache::registry_sources(&s.live().join("etc/containers/registries.conf"))?;
                let replace = precache::should_override(
                    info.mirror_registry_configured,
                    &info.release_registry,
                    &sources,
                )
                .then_some((info.release_registry.as_str(), c.release_registry.as_str()));
                let list = std::fs::read_to_string(s.live().join(r::LIVE_CONTAINERS_LIST))?;
                let images = precache::image_list(&list, replace);
                ctx.progress().message(crate::ibi::space::message(
                    &format!("{} precache images", images.len()),
                    crate::ibi::space::precache_bytes(images.len()),
                    &s.storage(),
                ));
                let staging = PullStaging::enter(s)?;
                let st = precache::pull_all(
                    ctx,
                    &images,
                    &precache::Paths {
                        authfile: &s.live().join(PULL_SECRET),
                        status_file: &s.live().join(PRECACHE_STATUS),
                        staging: staging.path(),
                    },
                    c.precache_best_effort,
                )?;
                tracing::info!(
                    "precache: {} of {} images in the storage, {} skipped (not for this architecture)",
                    st.pulled,
                    st.total,
                    st.skipped.len()
                );
                Ok(())
            },
            clean: None,
        },
        IbiStep {
            id: "run-post-script",
            description: "runs the post-install script, if the ISO carries one",
            kind: Kind::Resumable,
            explain: |s| {
                let p = s.live().join(POST_SCRIPT);
                format!("{} (if it exists)", shown(&p.display().to_string(), &[]))
            },
            check: |_, s| {
                Ok(if s.live().join(POST_SCRIPT).exists() {
                    Check::Unknown
                } else {
                    Check::Done(format!(
                        "there is no {}",
                        s.live().join(POST_SCRIPT).display()
                    ))
                })
            },
            // argv, not `bash -c`: the script's own #! line decides.
            run: |ctx, s| {
                ctx.command(s.live().join(POST_SCRIPT))
                    .describe("running post.sh")
                    .run_streaming(|l| ctx.progress().message(l.text))
            },
            clean: None,
        },
        IbiStep {
            id: "remove-rhcos-stateroot",
            description: "removes the stateroot coreos-installer wrote (found by name)",
            kind: Kind::Resumable,
            explain: |s| {
                format!(
                    "undeploy every deployment of stateroot rhcos, rm -r {}",
                    s.target().join("ostree/deploy/rhcos").display()
                )
            },
            check: |_, s| {
                let Some(sr) = s.sysroot_if_any() else {
                    return Ok(Check::NotDone);
                };
                let o = Stateroot::original();
                Ok(
                    if !sr.stateroot_dir(&o).exists() && sr.deployment_of(&o)?.is_none() {
                        Check::Done("stateroot rhcos is gone".into())
                    } else {
                        Check::NotDone
                    },
                )
            },
            run: |_, s| s.sysroot()?.remove_stateroot(&Stateroot::original()),
            clean: None,
        },
        IbiStep {
            id: "power-off",
            description: "powers the machine off when the configuration asks (after the report is written)",
            kind: Kind::Resumable,
            explain: |s| {
                if s.checked.loaded.config.shutdown {
                    shown("systemctl", &["poweroff"])
                } else {
                    "nothing (shutdown is false)".into()
                }
            },
            check: |_, s| {
                Ok(if s.checked.loaded.config.shutdown {
                    Check::NotDone
                } else {
                    Check::Done("shutdown is not set".into())
                })
            },
            // `ibi::run` powers off once the report is on the disk.
            run: |_, s| {
                s.power_off = true;
                Ok(())
            },
            clean: None,
        },
    ]
}
