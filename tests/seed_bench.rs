//! Seed benchmarks, ignored by `cargo test`: `scripts/bench-seed-extract.sh`
//! builds the test binary in release mode and runs these one at a time
//! under `/usr/bin/time -v`, so each process's peak memory is its own.
//!
//! - `bench_build_seed`: writes a seed whose var.tgz holds
//!   `SPROUT_BENCH_VAR_BYTES` bytes to `SPROUT_BENCH_DIR`.
//! - `bench_extract_var`: extracts that seed's var.tgz into
//!   `SPROUT_BENCH_DIR/dest` through the seed API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

use std::path::PathBuf;
use std::time::Instant;

use sprout::seed::{Expectations, ExtractOptions, PullOptions, Seed, SeedRef, Tarball};
use sprout::testing::oci_writer::LayerCompression;
use sprout::testing::seed::SeedSpec;

fn bench_dir() -> PathBuf {
    PathBuf::from(std::env::var("SPROUT_BENCH_DIR").expect("set SPROUT_BENCH_DIR"))
}

#[test]
#[ignore = "a benchmark: run scripts/bench-seed-extract.sh"]
fn bench_build_seed() {
    let bytes: u64 = std::env::var("SPROUT_BENCH_VAR_BYTES")
        .map(|v| v.parse().expect("SPROUT_BENCH_VAR_BYTES is a number"))
        .unwrap_or(1100 << 20);
    let images = std::env::var("SPROUT_BENCH_IMAGES").is_ok_and(|v| v == "1");
    let spec = SeedSpec {
        var_payload: bytes,
        var_small_files: 20_000,
        layer: LayerCompression::None,
        write_images: images,
        ..SeedSpec::default()
    };
    let start = Instant::now();
    let seed = spec.build(&bench_dir()).unwrap();
    let size = std::fs::metadata(seed.root.join("var.tgz")).unwrap().len();
    println!(
        "built {} (var.tgz {size} bytes, payload {bytes} bytes) in {:.1} s",
        seed.root.display(),
        start.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore = "a benchmark: run scripts/bench-seed-extract.sh"]
fn bench_extract_var() {
    let dir = bench_dir();
    let reference = std::env::var("SPROUT_BENCH_SEED")
        .unwrap_or_else(|_| dir.join("root").display().to_string());
    let seed = Seed::open(
        &SeedRef::parse(&reference).unwrap(),
        &PullOptions::default(),
        &Expectations::default(),
    )
    .unwrap();
    let dest = dir.join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let start = Instant::now();
    let report = seed
        .extract(Tarball::Var, &dest, &ExtractOptions::default())
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "extracted {} members, {} bytes from {reference} in {secs:.1} s ({:.0} MiB/s)",
        report.members,
        report.bytes,
        report.bytes as f64 / secs / f64::from(1 << 20)
    );
}
