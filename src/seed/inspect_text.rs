//! The text form of `seed inspect`'s report.

use std::fmt::Write;

use super::inspect::InspectReport;
use crate::api::excerpt::escape_text;

/// Sizes as people read them: `1.4 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn or_unknown(v: Option<&str>) -> &str {
    v.unwrap_or("(unknown)")
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "(unknown)",
    }
}

pub fn render(r: &InspectReport) -> String {
    let mut o = String::new();
    // Every value comes from the seed: escaped, so none can hold a line
    // break or a terminal control sequence.
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(o, "{k:<22}{}", escape_text(v));
    };
    line("Seed:", &r.seed);
    line(
        "Usable:",
        if r.usable {
            "yes"
        } else {
            "NO (see the errors below)"
        },
    );
    line(
        "Format version:",
        &r.format_version
            .map_or("(not checked)".to_string(), |v| v.to_string()),
    );
    line("OpenShift version:", or_unknown(r.ocp_version.as_deref()));
    let cluster = match (&r.cluster_name, &r.base_domain) {
        (Some(n), Some(d)) => format!("{n}.{d}"),
        (Some(n), None) => n.clone(),
        _ => "(unknown)".into(),
    };
    line("Seed cluster:", &cluster);
    line("Seed hostname:", or_unknown(r.seed_hostname.as_deref()));
    if !r.node_ips.is_empty() {
        line("Seed node IPs:", &r.node_ips.join(", "));
    }
    line("FIPS:", yes_no(r.fips));
    line("Proxy:", yes_no(r.proxy));
    let storage = match (
        &r.container_storage_mountpoint_target,
        &r.extra_partition_label,
    ) {
        (Some(t), Some(l)) => format!("{t} (extraPartitionLabel: {l})"),
        (Some(t), None) => format!("{t} (no partition label)"),
        (None, _) => "on the root filesystem".into(),
    };
    line("Container storage:", &storage);
    line("Recert image:", or_unknown(r.recert_image.as_deref()));
    let registry = format!(
        "{} (mirror registries configured: {})",
        or_unknown(r.release_registry.as_deref()),
        yes_no(r.mirror_registry_configured)
    );
    line("Release registry:", &registry);
    line(
        "Kernel arguments:",
        &if r.kernel_args.is_empty() {
            "(none)".to_string()
        } else {
            r.kernel_args.join(" ")
        },
    );
    if let Some(b) = &r.booted_deployment {
        line("Booted deployment:", &b.id);
    }
    line(
        "Images to precache:",
        &r.image_count.map_or("(unknown)".into(), |n| n.to_string()),
    );
    if let Some(size) = r.sizes.image {
        line("Image size:", &human(size));
    }
    for (t, s) in &r.sizes.tarballs {
        let packed = r.sizes.files.get(t.file_name()).copied().unwrap_or(0);
        line(
            &format!("{t}:"),
            &format!(
                "{} packed, {} in {} members",
                human(packed),
                human(s.bytes),
                s.members
            ),
        );
    }
    if r.problems.is_empty() {
        let _ = writeln!(o, "\nNo problems found.");
    } else {
        let _ = writeln!(o, "\nFindings:");
        for p in &r.problems {
            // Problem's Display escapes the message and the fix (api::excerpt).
            let _ = writeln!(o, "  {}: {p}", p.severity);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_fields_cannot_forge_lines() {
        let mut r = InspectReport {
            usable: false,
            seed: "oci:/s\nUsable:               yes".into(),
            ocp_version: Some("4.16.0\x1b[2J\x1b[H".into()),
            ..Default::default()
        };
        r.problems
            .push(crate::seed::Problem::error("bad\rUsable: yes").with_fix("x\n"));
        let text = render(&r);
        assert!(!text.contains('\x1b'), "{text}");
        assert!(!text.contains('\r'), "{text}");
        let usable: Vec<&str> = text.lines().filter(|l| l.contains("Usable:")).collect();
        assert_eq!(usable.len(), 3, "{text}");
        assert!(usable[0].starts_with("Seed:"), "{text}");
        assert!(usable[1].starts_with("Usable:               NO"), "{text}");
        assert!(usable[2].starts_with("  error: bad\\rUsable"), "{text}");
        assert!(text.contains("4.16.0\\u{1b}[2J"), "{text}");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }
}
