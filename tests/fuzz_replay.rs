//! The fuzz targets under plain `cargo test`: each target's seed corpus,
//! every file kept in `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`
//! (inputs a fuzzing run found or found interesting), then a couple of thousand
//! deterministic mutations of them. A panic in a target fails the test;
//! the liveness of the run is bounded by the number of inputs, not timed.
//! `scripts/fuzz.sh` runs the same targets coverage-guided for longer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

use std::path::Path;

use sprout::testing::fuzz;

/// Mutations per target: a few seconds per target in a debug build.
const MUTATIONS: usize = 2000;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Values that break parsers: boundaries, separators, huge numbers.
const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"18446744073709551615",
    b"4294967295",
    b"-1",
    b"[[[[[[[[[[[[[[[[",
    b"\"pad\":\"\"",
    b"../../",
    b"070701",
    b"\xfd7zXZ\0",
    b"\x1f\x8b",
    b"ustar\0",
    b"*a",
    b"&a ",
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 if !data.is_empty() => {
                let i = rng.below(data.len());
                let n = rng.below(data.len() - i).min(64);
                data.drain(i..i + n);
            }
            3 => {
                let i = rng.below(data.len() + 1);
                let v = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(i..i, v.iter().copied());
            }
            4 => {
                // Splice a piece of another input in.
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = a + rng.below(other.len() - a).min(256);
                    let i = rng.below(data.len() + 1);
                    data.splice(i..i, other[a..b].iter().copied());
                }
            }
            _ => {
                let n = rng.below(data.len() + 1);
                data.truncate(n);
            }
        }
    }
    data
}

fn kept_inputs(target: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                out.push(std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

fn replay(target: &str) {
    let mut corpus = fuzz::seed_corpus(target);
    corpus.extend(kept_inputs(target));
    corpus.push(Vec::new());
    for input in &corpus {
        assert!(fuzz::run(target, input), "unknown target {target}");
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for _ in 0..MUTATIONS {
        let input = mutate(&mut rng, &corpus);
        fuzz::run(target, &input);
    }
}

#[test]
fn every_target_has_a_replay_here_and_a_fuzz_target() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for t in fuzz::TARGETS {
        assert!(
            dir.join(format!("{t}.rs")).is_file(),
            "fuzz/fuzz_targets/{t}.rs is missing"
        );
        assert!(!fuzz::seed_corpus(t).is_empty(), "{t} has no seed corpus");
    }
}

#[test]
fn iso9660() {
    replay("iso9660");
}

#[test]
fn live_iso_json() {
    replay("live_iso_json");
}

#[test]
fn embed_payload() {
    replay("embed_payload");
}

#[test]
fn seed_json() {
    replay("seed_json");
}

#[test]
fn tar_members() {
    replay("tar_members");
}

#[test]
fn tar_stream() {
    replay("tar_stream");
}

#[test]
fn yaml_inputs() {
    replay("yaml_inputs");
}
