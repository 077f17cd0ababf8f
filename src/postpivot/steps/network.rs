//! The node's network identity (spec §3.4 step 6): NetworkManager keyfiles
//! and nmstate, the hostname, the node-IP hint, the node IPs and dnsmasq.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{State, WD, holds, marker, run, show, terminal, wait, wd, write_private};
use crate::engine::{Check, Ctx, Kind, Step, StepId};
use crate::postpivot::settings::Settings;
use crate::postpivot::{inputs, markers::Marker, validate};

pub const KEYFILES_SOURCE: &str = "network-configuration/system-connections";
pub const KEYFILES: &str = "etc/NetworkManager/system-connections";
pub const NMSTATE: &str = "nmstate.yaml";
pub const NODEIP_HINT: &str = "etc/default/nodeip-configuration";
pub const PRIMARY_IP: &str = "run/nodeip-configuration/primary-ip";
pub const NODENET_DROPIN: &str = "etc/systemd/system/kubelet.service.d/20-nodenet.conf";
pub const DNSMASQ_OVERRIDES: &str = "etc/default/sno_dnsmasq_configuration_overrides";

fn keyfiles(ctx: &Ctx<'_>) -> Result<Vec<(PathBuf, PathBuf)>> {
    let src = wd(KEYFILES_SOURCE);
    if !ctx.root().exists(&src)? {
        return Ok(Vec::new());
    }
    Ok(ctx
        .root()
        .read_dir(&src)?
        .into_iter()
        .filter(|e| e.file_type == rustix::fs::FileType::RegularFile)
        .map(|e| (src.join(&e.name), PathBuf::from(KEYFILES).join(&e.name)))
        .collect())
}

/// 6a.
pub struct Keyfiles;

impl Step<State> for Keyfiles {
    fn id(&self) -> StepId {
        StepId::new("network-keyfiles")
    }
    fn description(&self) -> String {
        format!("copies /{WD}/{KEYFILES_SOURCE}/* to /{KEYFILES} (0600)")
    }
    fn check(&self, ctx: &Ctx<'_>, _: &State) -> Result<Check> {
        let files = keyfiles(ctx)?;
        if files.is_empty() {
            return Ok(Check::Done("no keyfiles in the configuration".into()));
        }
        for (from, to) in &files {
            let bytes = ctx.root().read(from, 1 << 20)?;
            if !holds(ctx.root(), to, &bytes)? {
                return Ok(Check::NotDone);
            }
        }
        Ok(Check::Done(format!("{} keyfiles in place", files.len())))
    }
    fn run(&self, ctx: &Ctx<'_>, _: &mut State) -> Result<()> {
        for (from, to) in keyfiles(ctx)? {
            let bytes = ctx.root().read(&from, 1 << 20)?;
            write_private(ctx.root(), &to, &bytes)?;
        }
        Ok(())
    }
}

/// 6b.
pub struct Nmstate;

impl Step<State> for Nmstate {
    fn id(&self) -> StepId {
        StepId::new("nmstate")
    }
    fn description(&self) -> String {
        format!("writes /{WD}/{NMSTATE} and applies it with nmstatectl")
    }
    fn explain(&self, s: &State) -> String {
        if s.reconfig.raw_nm_state_config.is_empty() {
            return "no raw_nm_state_config: nothing to do".into();
        }
        format!(
            "writes /{WD}/{NMSTATE} (0600), runs {}",
            show("nmstatectl", &["apply", &format!("/{WD}/{NMSTATE}")])
        )
    }
    fn marker(&self) -> Option<PathBuf> {
        marker(Marker::StaticNetwork)
    }
    fn check(&self, _: &Ctx<'_>, s: &State) -> Result<Check> {
        Ok(if s.reconfig.raw_nm_state_config.is_empty() {
            Check::Done("no raw_nm_state_config".into())
        } else {
            Check::NotDone
        })
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        if s.reconfig.raw_nm_state_config.is_empty() {
            return Ok(());
        }
        let rel = wd(NMSTATE);
        write_private(ctx.root(), &rel, s.reconfig.raw_nm_state_config.as_bytes())?;
        let path = ctx.root().host_path(&rel)?;
        run(ctx, s, "nmstatectl", &["apply", &path.to_string_lossy()])
    }
}

/// 6c.
pub struct RestartNetworkManager;

impl Step<State> for RestartNetworkManager {
    fn id(&self) -> StepId {
        StepId::new("restart-networkmanager")
    }
    fn description(&self) -> String {
        format!(
            "restarts NetworkManager: {}",
            show("systemctl", &["restart", "NetworkManager.service"])
        )
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::Unknown)
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        run(ctx, s, "systemctl", &["restart", "NetworkManager.service"])
    }
}

/// 6d, first half: the name (configured, else the kernel's now that the
/// network is up), judged by the same rules as the configured one.
pub struct ResolveHostname;

impl Step<State> for ResolveHostname {
    fn id(&self) -> StepId {
        StepId::new("resolve-hostname")
    }
    fn description(&self) -> String {
        "decides the hostname: the configured one, else the kernel's".into()
    }
    fn kind(&self) -> Kind {
        Kind::ReadOnly
    }
    fn explain(&self, s: &State) -> String {
        format!("hostname {}", s.reconfig.hostname)
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::NotDone)
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        let kernel = inputs::kernel_hostname(ctx.root().path())?;
        s.reconfig.hostname =
            validate::resolved_hostname(&s.reconfig.hostname, &kernel).map_err(terminal)?;
        Ok(())
    }
}

/// 6d, second half.
pub struct Hostname;

impl Step<State> for Hostname {
    fn id(&self) -> StepId {
        StepId::new("hostname")
    }
    fn description(&self) -> String {
        "sets the hostname with hostnamectl".into()
    }
    fn explain(&self, s: &State) -> String {
        format!(
            "runs {}",
            show("hostnamectl", &["set-hostname", &s.reconfig.hostname])
        )
    }
    fn check(&self, ctx: &Ctx<'_>, s: &State) -> Result<Check> {
        let now = inputs::kernel_hostname(ctx.root().path())?;
        Ok(if now == s.reconfig.hostname {
            Check::Done(format!("the hostname is {now}"))
        } else {
            Check::NotDone
        })
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        let name = s.reconfig.hostname.clone();
        run(ctx, s, "hostnamectl", &["set-hostname", &name])
    }
}

fn hint(s: &State) -> Option<Vec<u8>> {
    let ips: Vec<&str> = s
        .reconfig
        .machine_networks
        .iter()
        .map(|n| n.split('/').next().unwrap_or(n))
        .collect();
    (!ips.is_empty()).then(|| format!("KUBELET_NODEIP_HINT={}", ips.join(" ")).into_bytes())
}

/// 6e.
pub struct NodeIpHint;

impl Step<State> for NodeIpHint {
    fn id(&self) -> StepId {
        StepId::new("node-ip-hint")
    }
    fn description(&self) -> String {
        format!("writes /{NODEIP_HINT} from the machine networks")
    }
    fn explain(&self, s: &State) -> String {
        match hint(s) {
            Some(b) => format!(
                "writes /{NODEIP_HINT} (0600): {}",
                String::from_utf8_lossy(&b)
            ),
            None => "no machine networks: nothing to do".into(),
        }
    }
    fn check(&self, ctx: &Ctx<'_>, s: &State) -> Result<Check> {
        Ok(match hint(s) {
            None => Check::Done("no machine networks".into()),
            Some(b) if holds(ctx.root(), NODEIP_HINT, &b)? => {
                Check::Done(format!("/{NODEIP_HINT} is up to date"))
            }
            Some(_) => Check::NotDone,
        })
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        match hint(s) {
            Some(b) => write_private(ctx.root(), NODEIP_HINT, &b),
            None => Ok(()),
        }
    }
}

/// The node IPs kubelet was given, primary first: `KUBELET_NODE_IPS`
/// (preferred) or `KUBELET_NODE_IP` on an `Environment=` line.
pub fn parse_nodenet(text: &str) -> Vec<String> {
    let mut single = Vec::new();
    for line in text.lines().filter(|l| l.contains("Environment=")) {
        let cleaned = line.replace('"', " ");
        for token in cleaned.split_whitespace() {
            let token = token.trim_start_matches("Environment=");
            if let Some(v) = token.strip_prefix("KUBELET_NODE_IPS=") {
                return v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
            }
            if let Some(v) = token.strip_prefix("KUBELET_NODE_IP=")
                && single.is_empty()
                && !v.is_empty()
            {
                single = vec![v.to_string()];
            }
        }
    }
    single
}

/// 6f: node IPs from the configuration, else from nodeip-configuration
/// (a bounded wait for `primary-ip`, W5), checked like the configured ones.
pub struct NodeIps;

impl Step<State> for NodeIps {
    fn id(&self) -> StepId {
        StepId::new("node-ips")
    }
    fn description(&self) -> String {
        "decides the node IPs: the configured ones, else nodeip-configuration's".into()
    }
    fn kind(&self) -> Kind {
        Kind::ReadOnly
    }
    fn explain(&self, s: &State) -> String {
        format!("node IPs {:?}", s.reconfig.node_ips)
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::NotDone)
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        if !s.reconfig.node_ips.is_empty() {
            return Ok(());
        }
        if !ctx.root().exists(PRIMARY_IP)? {
            if ctx.dry_run() {
                tracing::warn!(
                    "no node_ips and no /{PRIMARY_IP}: a real run starts nodeip-configuration \
                     and waits for it; the recert configuration below has no `ip` rules"
                );
                return Ok(());
            }
            run(ctx, s, "systemctl", &["start", "nodeip-configuration"])?;
            let every = std::time::Duration::from_secs(1);
            let timeout = Settings::secs(s.settings.primary_ip);
            wait(
                ctx,
                s,
                &format!("/{PRIMARY_IP} (nodeip-configuration)"),
                every,
                timeout,
                || Ok(ctx.root().exists(PRIMARY_IP)?.then_some(())),
            )?;
        }
        let text = ctx
            .root()
            .read_to_string(NODENET_DROPIN, 1 << 16)
            .context("reading the node IPs nodeip-configuration wrote")?;
        let ips = parse_nodenet(&text);
        validate::node_ips_after_discovery(&s.reconfig, &s.seed, &ips).map_err(terminal)?;
        s.reconfig.node_ips = ips;
        Ok(())
    }
}

fn dnsmasq(s: &State) -> Result<Vec<u8>> {
    let ip = s.reconfig.node_ips.first().context(
        "no node IP for the dnsmasq overrides (set node_ips, or let nodeip-configuration find one)",
    )?;
    Ok(format!(
        "SNO_CLUSTER_NAME_OVERRIDE={}\nSNO_BASE_DOMAIN_OVERRIDE={}\nSNO_DNSMASQ_IP_OVERRIDE={ip}",
        s.reconfig.cluster_name, s.reconfig.base_domain
    )
    .into_bytes())
}

/// 6g–h.
pub struct Dnsmasq;

impl Step<State> for Dnsmasq {
    fn id(&self) -> StepId {
        StepId::new("dnsmasq")
    }
    fn description(&self) -> String {
        format!("writes /{DNSMASQ_OVERRIDES} and restarts dnsmasq.service")
    }
    fn explain(&self, s: &State) -> String {
        match dnsmasq(s) {
            Ok(b) => format!(
                "writes /{DNSMASQ_OVERRIDES} (0600): {:?}; runs {}",
                String::from_utf8_lossy(&b),
                show("systemctl", &["restart", "dnsmasq.service"])
            ),
            Err(e) => format!("{e:#}"),
        }
    }
    fn check(&self, ctx: &Ctx<'_>, s: &State) -> Result<Check> {
        // The file alone does not prove the restart: then the journal decides.
        Ok(match dnsmasq(s) {
            Ok(b) if holds(ctx.root(), DNSMASQ_OVERRIDES, &b)? => Check::Unknown,
            _ => Check::NotDone,
        })
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        write_private(ctx.root(), DNSMASQ_OVERRIDES, &dnsmasq(s)?)?;
        run(ctx, s, "systemctl", &["restart", "dnsmasq.service"])
    }
}

#[cfg(test)]
mod tests {
    use super::parse_nodenet;

    #[test]
    fn node_ips_prefer_the_list() {
        let t = "[Service]\nEnvironment=\"KUBELET_NODE_IP=192.0.2.5\" \"KUBELET_NODE_IPS=192.0.2.5,2001:db8::5\"\n";
        assert_eq!(parse_nodenet(t), ["192.0.2.5", "2001:db8::5"]);
        assert_eq!(
            parse_nodenet("[Service]\nEnvironment=\"KUBELET_NODE_IP=192.0.2.5\"\n"),
            ["192.0.2.5"]
        );
        assert!(parse_nodenet("KUBELET_NODE_IP=192.0.2.5\n").is_empty());
    }
}
