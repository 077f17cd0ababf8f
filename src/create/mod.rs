//! The workstation builders: `create config-image` and `create image`.

pub mod base_iso;
pub mod batch;
pub mod config_image;
pub mod crypto;
pub mod extra_manifests;
pub mod identity;
pub mod image;
pub mod kubeconfig;
pub mod manifest;
pub mod password;
pub mod report;
pub mod seed_version;
pub mod template;
