//! `create config-image` for one site or many: `--dir A --dir B …` (or
//! `--sites DIR`, every subdirectory of DIR) builds each site in its own
//! directory with its own identity, in parallel up to `--jobs` (the cores by
//! default). One failing site does not stop the others; the command fails
//! when any did. sprout does not schedule anything beyond this one call:
//! spreading sites over machines is the caller's (an operator, a CI runner).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};

use super::config_image::{self, IsoOutput, Options, Outputs};
use super::report::{self, ConfigImageReport, SiteReport};
use crate::host::stdout;

/// One call of `create config-image`.
#[derive(Debug, Clone)]
pub struct Request {
    /// One entry per site, in the order given.
    pub sites: Vec<Options>,
    /// Sites built at once.
    pub jobs: usize,
    /// Print one JSON document instead of the text lines.
    pub json: bool,
}

impl Request {
    /// Checks the combinations the options cannot express alone.
    pub fn check(&self) -> Result<()> {
        if self.sites.is_empty() {
            bail!("no site to build: pass --dir DIR (repeatable) or --sites DIR");
        }
        let many = self.sites.len() > 1;
        for s in &self.sites {
            if many && s.output != IsoOutput::InDir {
                bail!(
                    "--output works with a single --dir; with several sites each ISO is written in its own directory"
                );
            }
            if self.json && s.output == IsoOutput::Stdout {
                bail!(
                    "--json and --output - both want stdout; write the ISO with --output PATH, or drop --json"
                );
            }
        }
        Ok(())
    }
}

/// The jobs to run when `--jobs` is not given: one per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Every subdirectory of `parent` not starting with '.', sorted by name.
pub fn site_dirs(parent: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for e in std::fs::read_dir(parent)
        .with_context(|| format!("--sites {}: listing the site directories", parent.display()))?
    {
        let e = e.with_context(|| format!("listing {}", parent.display()))?;
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        // file_type does not follow symlinks: a link to a site is skipped
        // rather than built in a directory the caller did not name.
        if !hidden && e.file_type().is_ok_and(|t| t.is_dir()) {
            dirs.push(e.path());
        }
    }
    dirs.sort();
    if dirs.is_empty() {
        bail!(
            "--sites {}: no site directories in it; each site is a subdirectory holding install-config.yaml and image-based-config.yaml",
            parent.display()
        );
    }
    Ok(dirs)
}

/// Builds every site, `jobs` at a time; results in the order of `sites`.
pub fn run_all(sites: &[Options], jobs: usize) -> Vec<Result<Outputs>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Outputs>>>> =
        Mutex::new((0..sites.len()).map(|_| None).collect());
    let workers = jobs.clamp(1, sites.len().max(1));
    let many = sites.len() > 1;
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(site) = sites.get(i) else { break };
                    // Messages of parallel sites say which site they are about.
                    let span = many
                        .then(|| tracing::info_span!("site", dir = %site.dir.display()).entered());
                    let r = config_image::run(site);
                    drop(span);
                    if let Ok(mut all) = results.lock()
                        && let Some(slot) = all.get_mut(i)
                    {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("the site's build did not finish"))))
        .collect()
}

/// `create config-image`: builds, reports on stdout, fails if any site did.
pub fn main(req: &Request) -> Result<()> {
    req.check()?;
    let results = run_all(&req.sites, req.jobs);
    if req.json {
        let sites = req
            .sites
            .iter()
            .zip(&results)
            .map(|(s, r)| SiteReport::new(&s.dir, r))
            .collect();
        stdout::write(&report::to_json(&ConfigImageReport::new(sites))?)?;
    } else {
        let many = results.len() > 1;
        let mut text = String::new();
        for (s, r) in req.sites.iter().zip(&results) {
            if let Ok(o) = r {
                text.push_str(&text_lines(&s.dir, o, many));
            }
        }
        // With --output - stdout carries the ISO and nothing else.
        if !text.is_empty() {
            stdout::write(&text)?;
        }
    }
    let n = results.len();
    let mut failed = Vec::new();
    for (s, r) in req.sites.iter().zip(results) {
        match r {
            Ok(_) => {}
            // One site: its error is the command's, as it always was.
            Err(e) if n == 1 => return Err(e),
            Err(e) => {
                tracing::error!("{}: {e:#}", s.dir.display());
                failed.push(s.dir.display().to_string());
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {n} sites failed (each error is above; the other sites were built): {}",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// The lines scripts read: `iso:`, `kubeconfig:`, `kubeadmin-password:`,
/// after a `dir:` line when there are several sites.
fn text_lines(dir: &Path, o: &Outputs, many: bool) -> String {
    let mut t = String::new();
    if many {
        t.push_str(&format!("dir: {}\n", dir.display()));
    }
    match &o.iso {
        Some(p) => t.push_str(&format!("iso: {}\n", p.display())),
        // The ISO went to stdout: nothing may follow it there.
        None => return String::new(),
    }
    t.push_str(&format!(
        "kubeconfig: {}\nkubeadmin-password: {}\n",
        o.kubeconfig.display(),
        o.kubeadmin_password.display()
    ));
    t
}
