//! A registry seed looked at without copying it: `skopeo inspect` reads the
//! manifest and the config (labels, architecture, layer sizes), never a
//! layer. `sprout ibi`'s preflight uses this, since the install pulls the
//! seed with podman anyway and a preflight copy of a multi-GiB seed would
//! transfer it twice (and land in the live system's RAM-backed /var/tmp).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::pull::PullOptions;
use crate::host::command::Cmd;

/// What the registry says about the image.
#[derive(Debug, Clone, Default)]
pub struct RemoteImage {
    /// The manifest digest (`sha256:…`).
    pub digest: String,
    pub labels: BTreeMap<String, String>,
    /// The image's architecture in OCI terms (`amd64`, `arm64`).
    pub architecture: String,
    /// The layers' sizes as stored (compressed).
    pub layers_bytes: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    #[serde(default)]
    digest: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    layers_data: Option<Vec<LayerData>>,
}

/// A layer's size: `Size` in skopeo's LayersData, `size` in a manifest.
#[derive(Deserialize)]
struct LayerData {
    #[serde(default, alias = "Size")]
    size: u64,
}

/// `skopeo inspect docker://reference`, with the options a pull would use.
pub fn inspect(reference: &str, opts: &PullOptions) -> Result<RemoteImage> {
    let out = inspect_cmd(reference, opts)
        .describe("reading the seed's manifest and labels")
        .run_capture(16 << 20)
        .with_context(|| {
            format!(
                "reading docker://{reference} from its registry; check the reference, that the \
                 registry is reachable, the pull secret and the registry's certificates"
            )
        })?;
    let i: Inspect = serde_json::from_slice(&out)
        .with_context(|| format!("reading skopeo's description of docker://{reference}"))?;
    let sum = |l: &[LayerData]| l.iter().fold(0u64, |a, l| a.saturating_add(l.size));
    let layers_bytes = match &i.layers_data {
        Some(l) => sum(l),
        // skopeo before 1.10 has no LayersData: the manifest has the sizes
        // (fetched again, still no layer).
        None => {
            let raw = inspect_cmd_with(reference, opts, true)
                .describe("reading the seed's manifest")
                .run_capture(16 << 20)?;
            serde_json::from_slice::<RawManifest>(&raw)
                .map(|m| sum(&m.layers))
                .unwrap_or(0)
        }
    };
    Ok(RemoteImage {
        digest: i.digest,
        labels: i.labels.unwrap_or_default(),
        architecture: i.architecture,
        layers_bytes,
    })
}

/// A manifest's layers (an index has none: its sizes stay unknown).
#[derive(Deserialize)]
struct RawManifest {
    #[serde(default)]
    layers: Vec<LayerData>,
}

fn inspect_cmd(reference: &str, opts: &PullOptions) -> Cmd {
    inspect_cmd_with(reference, opts, false)
}

fn inspect_cmd_with(reference: &str, opts: &PullOptions, raw: bool) -> Cmd {
    let mut cmd = Cmd::new("skopeo");
    if let Some(r) = &opts.registries_conf {
        cmd = cmd.arg("--registries-conf").arg(r);
    }
    cmd = cmd.args(["inspect", "--retry-times", "3"]);
    if raw {
        cmd = cmd.arg("--raw");
    }
    if let Some(a) = &opts.authfile {
        cmd = cmd.arg("--authfile").arg(a);
    }
    if let Some(c) = &opts.cert_dir {
        cmd = cmd.arg("--cert-dir").arg(c);
    }
    if !opts.tls_verify {
        cmd = cmd.arg("--tls-verify=false");
    }
    cmd.arg(format!("docker://{reference}"))
}

/// This machine's architecture as OCI names it.
pub fn machine_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_gets_each_option_as_its_own_argument_and_reads_skopeos_json() {
        let opts = PullOptions {
            authfile: Some("/var/tmp/pull secret.json".into()),
            cert_dir: None,
            tls_verify: true,
            registries_conf: Some("/etc/containers/registries.conf".into()),
            workdir: "/w".into(),
        };
        assert_eq!(
            inspect_cmd("q.io/o/seed:1", &opts).display(),
            "skopeo --registries-conf /etc/containers/registries.conf inspect --retry-times 3 \
             --authfile '/var/tmp/pull secret.json' docker://q.io/o/seed:1"
        );
        let i: Inspect = serde_json::from_str(
            r#"{"Name":"q.io/o/seed","Digest":"sha256:ab","Labels":{"a":"b"},"Architecture":"amd64",
                "LayersData":[{"MIMEType":"x","Digest":"sha256:1","Size":10},{"Size":5}]}"#,
        )
        .unwrap();
        assert_eq!(i.digest, "sha256:ab");
        assert_eq!(
            i.layers_data.unwrap().iter().map(|l| l.size).sum::<u64>(),
            15
        );
        assert!(!machine_architecture().is_empty());
    }
}
