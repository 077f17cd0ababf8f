//! Everything that touches the machine.

pub mod command;
pub mod fs;
pub mod mount;
pub mod root;
pub mod systemd;
pub mod udev;
