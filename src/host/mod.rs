//! Everything that touches the machine.

pub mod command;
pub mod copy;
pub mod disk;
pub mod etcd;
pub mod fs;
pub mod input;
pub mod mount;
pub mod ostree;
pub mod ostree_tar;
pub mod outdir;
pub mod root;
pub mod shutdown;
pub mod stdout;
pub mod systemd;
pub mod udev;
