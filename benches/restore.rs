//! The seed-restore side of `benches/run` (not a test: nothing here is
//! asserted). Two commands, driven by the script:
//!
//! `restore seed OUT VAR_MIB OSTREE_MIB OSTREE_FILES VAR_FILES`
//!   builds a synthetic seed (src/testing/seed.rs) under the empty
//!   directory OUT and prints its ostree commit.
//! `restore restore SEED_ROOT SYSROOT WORKSPACE`
//!   runs sprout's ibi restore steps (src/ibi/restore.rs) from the seed
//!   directory onto the `ostree admin init-fs` sysroot, and prints each
//!   step's seconds as JSON. ostree.tgz is streamed into the repository
//!   (`restore::import_seed`); with `SPROUT_BENCH_STAGED` set it is
//!   extracted into WORKSPACE and pulled from there instead (the old way).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sprout::host::ostree::{OstreeSysroot, Stateroot};
use sprout::ibi::restore;
use sprout::seed::{Expectations, ExtractOptions, PullOptions, Seed, SeedRef};
use sprout::testing::seed::{SeedSpec, TAG};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; the script passes the command.
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--bench")
        .collect();
    match args.as_slice() {
        ["seed", out, var_mib, ostree_mib, ostree_files, var_files] => {
            let spec = SeedSpec {
                var_payload: var_mib.parse::<u64>()? << 20,
                ostree_payload: ostree_mib.parse::<u64>()? << 20,
                ostree_small_files: ostree_files.parse()?,
                var_small_files: var_files.parse()?,
                write_images: false,
                ..SeedSpec::default()
            };
            let built = spec.build(&PathBuf::from(out))?;
            println!("{}", built.commit);
            Ok(())
        }
        ["restore", seed, sysroot, workspace] => restore_seed(seed, sysroot, workspace),
        [] => Ok(()),
        _ => bail!(
            "usage: restore seed OUT VAR_MIB OSTREE_MIB OSTREE_FILES VAR_FILES | restore restore SEED_ROOT SYSROOT WORKSPACE"
        ),
    }
}

fn restore_seed(seed: &str, sysroot: &str, workspace: &str) -> Result<()> {
    let mut steps: Vec<(&str, f64)> = Vec::new();
    let mut t = Instant::now();
    let mut lap = |name: &'static str, steps: &mut Vec<(&str, f64)>| {
        steps.push((name, t.elapsed().as_secs_f64()));
        t = Instant::now();
    };
    let expect = Expectations {
        seed_version: Some(TAG.into()),
        extra_partition_label: None,
    };
    let seed = Seed::open(
        &SeedRef::Dir(PathBuf::from(seed)),
        &PullOptions::default(),
        &expect,
    )
    .context("opening the seed")?;
    let sysroot = OstreeSysroot::open(&PathBuf::from(sysroot))?;
    let s = Stateroot::for_seed_version(TAG)?;
    let opts = ExtractOptions::default();
    lap("open", &mut steps);
    if std::env::var_os("SPROUT_BENCH_STAGED").is_some() {
        // The old way (extract into the workspace, then pull-local), kept
        // to measure what streaming bought.
        let repo = restore::extract_seed_repo(&seed, &PathBuf::from(workspace), &opts)?;
        lap("extract_ostree", &mut steps);
        restore::import_seed_repo(&seed, &sysroot, &repo, |_| {})?;
    } else {
        restore::import_seed(&seed, &sysroot, |_| {})?;
    }
    lap("import", &mut steps);
    restore::init_stateroot(&sysroot, &s)?;
    let dep = restore::deploy_seed(&seed, &sysroot, &s)?;
    restore::restore_origin(&seed, &dep)?;
    lap("deploy", &mut steps);
    restore::restore_var(&seed, &sysroot, &s, &opts)?;
    lap("var", &mut steps);
    restore::restore_etc(&seed, &sysroot, &s, &dep, &opts)?;
    restore::apply_etc_deletions(&seed, &sysroot, &s, &dep)?;
    lap("etc", &mut steps);
    let obj: serde_json::Map<String, serde_json::Value> = steps
        .into_iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect();
    println!("{}", serde_json::Value::Object(obj));
    Ok(())
}
