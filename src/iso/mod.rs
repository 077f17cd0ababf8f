//! ISO9660 images: the writer of the configuration ISO, a minimal reader,
//! and the CoreOS live-ISO embed areas (Ignition and kernel arguments).

pub mod embed;
pub mod iso9660;
pub mod writer;

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// `sprout iso show-ignition`: prints the embedded config to stdout.
pub fn show_ignition(iso: &Path) -> Result<()> {
    let mut f = std::fs::File::open(iso).with_context(|| format!("opening {}", iso.display()))?;
    match embed::read_ignition(&mut f).with_context(|| format!("reading {}", iso.display()))? {
        Some(config) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&config).context("writing to stdout")?;
            if !config.ends_with(b"\n") {
                out.write_all(b"\n").context("writing to stdout")?;
            }
            Ok(())
        }
        None => bail!("{} has no embedded Ignition config", iso.display()),
    }
}
