//! Everything that touches the machine.

pub mod command;
pub mod fs;
pub mod input;
pub mod mount;
pub mod stdout;
pub mod systemd;
pub mod udev;
