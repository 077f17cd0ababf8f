//! The installation disk: where the extra partition starts, typed
//! `lsblk`/`sfdisk` output, partitions found by GPT name, and the checks
//! made before anything is written (lifecycle-agent.md §2.4 A, W9).
//!
//! Pure logic over files read under a root directory, so every rule is
//! tested here with fixture trees; the commands that change a disk run
//! in the ibi steps, in the VM tests.

pub mod inventory;
pub mod json;
pub mod preflight;
pub mod start;

pub use inventory::Inventory;
pub use json::{Lsblk, LsblkDevice, Sfdisk, partition_by_partlabel};
pub use preflight::{CheckedDisk, DiskProblem, DiskRequirements, check_disk};
pub use start::{DEFAULT_EXTRA_PARTITION_START, ExtraPartitionStart, StartError};

/// The `sfdisk --append` script line creating the extra partition. The
/// name is quoted so sfdisk takes it whole; a value that could end the
/// quote or the line is refused rather than escaped.
pub fn sfdisk_append_line(start: &str, label: &str) -> anyhow::Result<String> {
    check_partition_label(label)?;
    if start.is_empty()
        || start.contains(|c: char| c.is_control() || c.is_whitespace() || c == ',' || c == '"')
    {
        anyhow::bail!("extra partition start {start:?} cannot go into an sfdisk script line");
    }
    Ok(format!("start={start}, name=\"{label}\"\n"))
}

/// A GPT partition name usable as `extraPartitionLabel`: 1 to 36 UTF-16
/// units (the GPT field), no quote, comma, slash or control character
/// (it also names `/dev/disk/by-partlabel/<label>`).
pub fn check_partition_label(label: &str) -> anyhow::Result<()> {
    let units = label.encode_utf16().count();
    if units == 0 || units > 36 {
        anyhow::bail!(
            "extraPartitionLabel {label:?} must be 1 to 36 characters long (a GPT partition name)"
        );
    }
    if let Some(c) = label
        .chars()
        .find(|c| c.is_control() || ['"', ',', '/', '\\'].contains(c))
    {
        anyhow::bail!("extraPartitionLabel {label:?} contains {c:?}; use letters, digits and '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sfdisk_line_quotes_the_name_and_refuses_injection() {
        assert_eq!(
            sfdisk_append_line("167770112", "var-lib-containers").unwrap(),
            "start=167770112, name=\"var-lib-containers\"\n"
        );
        assert!(sfdisk_append_line("1", "a\"b").is_err());
        assert!(sfdisk_append_line("1,size=2", "x").is_err());
        assert!(sfdisk_append_line("1", "x\ny").is_err());
        assert!(sfdisk_append_line("1", "").is_err());
        assert!(sfdisk_append_line("1", &"x".repeat(37)).is_err());
        assert!(sfdisk_append_line("1", &"x".repeat(36)).is_ok());
    }
}
