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
