//! The end (spec §3.4 steps 24–26): LVM devices, the unit disabled, the
//! working directory and the seed data removed.

use std::path::PathBuf;

use anyhow::Result;

use super::{State, WD, holds, marker, run, show, wd, write_private};
use crate::engine::{Check, Ctx, Step, StepId};
use crate::postpivot::markers::Marker;

pub const LVM_SOURCE: &str = "lvm-configuration/system.devices";
pub const LVM_DEVICES: &str = "etc/lvm/devices/system.devices";
pub const UNIT: &str = "installation-configuration.service";
pub const SEED_DATA: &str = "var/seed_data";

/// Step 24. `pvscan` only when there was a devices file to restore
/// (upstream runs it always, W13).
pub struct LvmDevices;

impl Step<State> for LvmDevices {
    fn id(&self) -> StepId {
        StepId::new("lvm-devices")
    }
    fn description(&self) -> String {
        format!(
            "restores /{LVM_DEVICES} from the configuration and runs {}",
            show("pvscan", &["--cache", "--activate", "ay"])
        )
    }
    fn marker(&self) -> Option<PathBuf> {
        marker(Marker::LvmDevices)
    }
    fn check(&self, ctx: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(if ctx.root().exists(wd(LVM_SOURCE))? {
            Check::NotDone
        } else {
            Check::Done("no LVM devices file in the configuration".into())
        })
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        let src = wd(LVM_SOURCE);
        if !ctx.root().exists(&src)? {
            return Ok(());
        }
        let bytes = ctx.root().read(&src, 16 << 20)?;
        if !holds(ctx.root(), LVM_DEVICES, &bytes)? {
            write_private(ctx.root(), LVM_DEVICES, &bytes)?;
        }
        run(ctx, s, "pvscan", &["--cache", "--activate", "ay"])
    }
}

/// Step 25.
pub struct DisableUnit;

impl Step<State> for DisableUnit {
    fn id(&self) -> StepId {
        StepId::new("disable-unit")
    }
    fn description(&self) -> String {
        format!("disables {UNIT}: {}", show("systemctl", &["disable", UNIT]))
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::Unknown)
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        run(ctx, s, "systemctl", &["disable", UNIT])
    }
}

/// Step 26: the configuration, the secrets written from it and the seed
/// data go.
pub struct Cleanup;

impl Step<State> for Cleanup {
    fn id(&self) -> StepId {
        StepId::new("cleanup")
    }
    fn description(&self) -> String {
        format!("removes /{WD} and /{SEED_DATA}")
    }
    fn check(&self, ctx: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(
            if !ctx.root().exists(WD)? && !ctx.root().exists(SEED_DATA)? {
                Check::Done(format!("/{WD} and /{SEED_DATA} are gone"))
            } else {
                Check::NotDone
            },
        )
    }
    fn run(&self, ctx: &Ctx<'_>, _: &mut State) -> Result<()> {
        ctx.root().remove_all(WD)?;
        ctx.root().remove_all(SEED_DATA)?;
        Ok(())
    }
}
