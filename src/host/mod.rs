//! Everything that touches the machine.

pub mod command;
pub mod copy;
pub mod disk;
pub mod fs;
pub mod mount;
pub mod ostree;
pub mod systemd;
pub mod udev;
