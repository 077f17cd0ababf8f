//! ISO9660 images: the writer of the configuration ISO, a minimal reader,
//! and the CoreOS live-ISO embed areas (Ignition and kernel arguments).

pub mod embed;
pub mod iso9660;
pub mod timestamps;
pub mod writer;

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::host::input::{self, InputKind};

/// `sprout iso show-ignition`: prints the embedded config to stdout.
pub fn show_ignition(iso: &Path) -> Result<()> {
    let (mut f, _) = input::open_input(iso, InputKind::LiveIso)?;
    match embed::read_ignition(&mut f).with_context(|| format!("reading {}", iso.display()))? {
        Some(config) => crate::host::stdout::write_bytes_line(&config),
        None => bail!("{} has no embedded Ignition config", iso.display()),
    }
}
