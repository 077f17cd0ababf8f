//! Wire formats of every input and output, with their validation.

pub mod diag;
pub mod image_based_config;
pub mod install_config;
pub mod nmstate;
pub mod seed_reconfig;
pub mod validate;
pub mod yaml;
