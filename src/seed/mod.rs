//! Seed images: open, check, inspect and extract the seed OCI image the Lifecycle Agent makes.
