//! Applying manifests to the cluster (spec §3.6). STUB on this branch: the
//! kube-rs applier is built on branch `kube-apply`; when it is merged its
//! module replaces this file and `apply_dir` keeps this signature.

use std::path::Path;

use anyhow::{Result, bail};

/// Applies every manifest in `dir` (file-name order) through the API the
/// `kubeconfig` names.
pub fn apply_dir(kubeconfig: &Path, dir: &Path) -> Result<()> {
    bail!(
        "applying {} through {}: the Kubernetes client is not wired into this build yet \
         (postpivot::apply is a stub until the kube-apply branch is merged)",
        dir.display(),
        kubeconfig.display()
    )
}
