//! Wire formats of every input and output, with their validation.

pub mod contract;
pub mod diag;
pub mod excerpt;
pub mod go_json;
pub mod go_yaml;
pub mod ibi_config;
pub mod ignition;
pub mod image_based_config;
pub mod install_config;
pub mod installation_config;
pub mod nmstate;
pub mod seed_cluster_info;
pub mod seed_reconfig;
pub mod validate;
pub mod yaml;
pub mod yaml_depth;
