//! The `--json` documents of `create config-image` and `create image`: one
//! JSON document on stdout saying what was produced, or, on failure, every
//! problem in the shape of the text report (`api::diag::Problem`). The
//! schemas are in docs/schema/ and described in docs/json-output.md; the
//! `schema` field names the document and its version, and a version only
//! changes when a field is removed or changes meaning (new fields may be
//! added within one).

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::config_image;
use super::identity::Origin;
use crate::api::diag::{InvalidInput, Problem};
use crate::api::excerpt::sanitize_message;

pub const CONFIG_IMAGE_SCHEMA: &str = "sprout/create-config-image/v1";
pub const IMAGE_SCHEMA: &str = "sprout/create-image/v1";

/// `create config-image --json`: one result per `--dir`, in the order given.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigImageReport {
    pub schema: &'static str,
    /// True when every site succeeded.
    pub ok: bool,
    pub sites: Vec<SiteReport>,
}

/// One site's outcome. On failure only `dir`, `ok` and `problems` are set.
#[derive(Debug, Clone, Serialize)]
pub struct SiteReport {
    pub dir: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iso: Option<IsoReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<KubeconfigReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeadmin_password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub infra_id: Option<String>,
    /// `new` when this run generated the identity, `reused` when it came
    /// from `.sprout-state.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<&'static str>,
    /// Every error that stopped this site (empty on success).
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IsoReport {
    /// Where the ISO was written; `null` when it went to stdout.
    pub path: Option<String>,
    /// Lower-case hex SHA-256 of the ISO.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KubeconfigReport {
    pub path: String,
    /// The API server URL in it.
    pub server: String,
}

/// `create image --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub schema: &'static str,
    pub ok: bool,
    pub dir: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iso: Option<IsoReport>,
    pub problems: Vec<Problem>,
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// The problems of a failed run: each input problem as found (also below
/// a step's "step X failed", which the engine keeps as the source), else
/// the error with its context chain as the text report prints it. Messages
/// are cleaned as the text report cleans them (no key material, excerpts
/// only).
pub fn problems_of(e: &anyhow::Error) -> Vec<Problem> {
    let invalid = e
        .downcast_ref::<InvalidInput>()
        .or_else(|| e.chain().find_map(|c| c.downcast_ref::<InvalidInput>()));
    let mut list = match invalid {
        Some(InvalidInput(list)) => list.clone(),
        None => vec![Problem::error(format!("{e:#}"))],
    };
    for p in &mut list {
        p.message = sanitize_message(&p.message);
    }
    list
}

impl SiteReport {
    pub fn new(dir: &Path, result: &anyhow::Result<config_image::Outputs>) -> Self {
        let mut r = Self {
            dir: shown(dir),
            ok: result.is_ok(),
            iso: None,
            kubeconfig: None,
            kubeadmin_password: None,
            state: None,
            cluster_id: None,
            infra_id: None,
            identity: None,
            problems: Vec::new(),
        };
        match result {
            Ok(o) => {
                r.iso = Some(IsoReport {
                    path: o.iso.as_deref().map(shown),
                    sha256: o.iso_sha256.clone(),
                    size: o.iso_size,
                });
                r.kubeconfig = Some(KubeconfigReport {
                    path: shown(&o.kubeconfig),
                    server: o.server.clone(),
                });
                r.kubeadmin_password = Some(shown(&o.kubeadmin_password));
                r.state = Some(shown(&o.state));
                r.cluster_id = Some(o.cluster_id.clone());
                r.infra_id = Some(o.infra_id.clone());
                r.identity = Some(match o.identity {
                    Origin::Generated => "new",
                    Origin::Reused => "reused",
                });
            }
            Err(e) => r.problems = problems_of(e),
        }
        r
    }
}

impl ConfigImageReport {
    pub fn new(sites: Vec<SiteReport>) -> Self {
        Self {
            schema: CONFIG_IMAGE_SCHEMA,
            ok: sites.iter().all(|s| s.ok),
            sites,
        }
    }
}

impl ImageReport {
    pub fn new(dir: &Path, result: &anyhow::Result<IsoReport>) -> Self {
        Self {
            schema: IMAGE_SCHEMA,
            ok: result.is_ok(),
            dir: shown(dir),
            iso: result.as_ref().ok().cloned(),
            problems: result.as_ref().err().map(problems_of).unwrap_or_default(),
        }
    }
}

/// Pretty JSON with a final newline.
pub fn to_json(value: &impl Serialize) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(value).context("encoding the JSON report")?;
    s.push('\n');
    Ok(s)
}
