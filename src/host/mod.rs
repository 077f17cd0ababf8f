//! Everything that touches the machine.

pub mod fs;
