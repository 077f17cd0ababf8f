//! Logging: human-readable lines on stderr, or journald under systemd.
//!
//! Data goes to stdout; every message goes through `tracing` to stderr, so
//! scripts can capture output without log noise. Under systemd
//! (`JOURNAL_STREAM` set) messages go to journald with their fields as
//! journal fields (no `F_` prefix), falling back to stderr when the journal
//! socket is absent.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The environment variable that overrides `-v`/`-q` with a filter directive.
pub const LOG_ENV: &str = "SPROUT_LOG";

/// Maps `-v` and `-q` counts to a level: info by default.
pub fn level(verbose: u8, quiet: u8) -> LevelFilter {
    match i16::from(verbose) - i16::from(quiet) {
        i16::MIN..=-2 => LevelFilter::ERROR,
        -1 => LevelFilter::WARN,
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Where messages went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stderr,
    Journald,
}

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(verbose: u8, quiet: u8) -> Sink {
    let filter = EnvFilter::builder()
        .with_default_directive(level(verbose, quiet).into())
        .with_env_var(LOG_ENV)
        .from_env_lossy();
    let under_systemd = std::env::var_os("JOURNAL_STREAM").is_some();
    if under_systemd && let Ok(journald) = tracing_journald::layer() {
        let journald = journald
            .with_field_prefix(None)
            .with_syslog_identifier("sprout".to_string());
        if tracing_subscriber::registry()
            .with(filter)
            .with(journald)
            .try_init()
            .is_ok()
        {
            return Sink::Journald;
        }
        return Sink::Stderr;
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time();
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init();
    Sink::Stderr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_maps_to_levels() {
        assert_eq!(level(0, 0), LevelFilter::INFO);
        assert_eq!(level(1, 0), LevelFilter::DEBUG);
        assert_eq!(level(3, 0), LevelFilter::TRACE);
        assert_eq!(level(0, 1), LevelFilter::WARN);
        assert_eq!(level(0, 5), LevelFilter::ERROR);
        assert_eq!(level(1, 1), LevelFilter::INFO);
    }
}
