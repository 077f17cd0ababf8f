//! ISO9660 images: the writer used for the configuration ISO.

pub mod writer;
