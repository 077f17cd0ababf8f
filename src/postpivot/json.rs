//! `sprout post-pivot --json`: the final status (the document of
//! `/var/lib/sprout/post-pivot-status.json`, docs/schema/post-pivot-status.v1.json)
//! on stdout, also after a failure; a start refused before it wrote a
//! status gets one with `state: refused` (the file is left as it was).

use anyhow::{Result, bail};

use super::flow::{self, Finished, Options};
use super::status::{State, Status};
use super::{UNTIL_DISCOVERED, run};
use crate::create::report::{problems_of, to_json};
use crate::host::stdout;

/// The command line's `post-pivot`: the text (or, with `json`, the
/// document) on stdout.
pub fn main(opts: &Options, json: bool) -> Result<()> {
    if !json {
        return run(opts).and_then(|out| stdout::write(&out));
    }
    if opts.until.as_deref() == Some(UNTIL_DISCOVERED) {
        // The discovery alone keeps no status to report.
        bail!(
            "--json reports the status of the steps; --until {UNTIL_DISCOVERED} runs none of them. \
             Drop one of the two"
        );
    }
    if !opts.root.is_dir() {
        bail!(
            "--root {} is not a directory; give the directory to treat as /",
            opts.root.display()
        );
    }
    let (result, status) = flow::run_status(opts);
    let doc = document(&result, status)?;
    if let Ok(f) = &result {
        // The text line is a message now: stdout holds the document.
        eprint!("{}", f.stdout);
    }
    stdout::write(&to_json(&doc)?)?;
    result.map(|_| ())
}

/// The `--json` document of a start: the final status it wrote, else
/// (stopped before writing one) a refusal's.
pub fn document(result: &Result<Finished>, status: Option<Status>) -> Result<Status> {
    match (result, status) {
        (_, Some(s)) => Ok(s),
        (Err(e), None) => Ok(refused(e)),
        // Every start that ends well writes its status.
        (Ok(_), None) => bail!("post-pivot ended without a status"),
    }
}

/// The document of a start that stopped before writing a status.
pub fn refused(e: &anyhow::Error) -> Status {
    let mut s = Status::new(0);
    s.state = State::Refused;
    s.error = e.chain().map(|c| c.to_string()).collect();
    s.problems = problems_of(e);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::diag::InvalidInput;
    use crate::api::diag::Problem;

    #[test]
    fn a_status_file_of_an_earlier_version_still_loads() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("var/lib/sprout");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("post-pivot-status.json"),
            r#"{"state":"failed","attempt":2,"current_step":"api","steps":[],"error":["x"],"updated":"2026-01-01T00:00:00.000Z"}"#,
        )
        .unwrap();
        let s = Status::load(root.path()).unwrap();
        assert_eq!((s.state, s.attempt), (State::Failed, 2));
        assert_eq!(s.schema, crate::postpivot::status::SCHEMA);
    }

    #[test]
    fn a_refusal_lists_each_input_problem() {
        let e = anyhow::Error::from(InvalidInput(vec![
            Problem::in_input("manifest.json", "hostname", "bad"),
            Problem::in_input("manifest.json", "pull_secret", "bad too"),
        ]))
        .context("checking");
        let s = document(&Err(e), None).unwrap();
        assert_eq!(s.state, State::Refused);
        assert!(!s.ok);
        assert_eq!(s.problems.len(), 2);
        assert_eq!(s.error.first().map(String::as_str), Some("checking"));
    }
}
