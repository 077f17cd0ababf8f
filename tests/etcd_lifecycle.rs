//! The temporary etcd's lifecycle against a real etcd (Debian's
//! `etcd-server`), through the same guard post-pivot uses: it listens on
//! 127.0.0.1 only, is health-checked, and is stopped after success, after
//! the recert step fails, after the health wait times out, and on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use sprout::host::etcd::{
    Binary, CONTAINER_NAME, HealthWait, Launcher, Podman, Ports, TempEtcd, listening,
};
use sprout::host::shutdown;

fn etcd_available(test: &str) -> bool {
    support::require("etcd", test)
}

fn free_ports() -> Ports {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    Ports {
        client: a.local_addr().unwrap().port(),
        peer: b.local_addr().unwrap().port(),
    }
}

fn launcher(dir: &Path) -> Launcher {
    Launcher::Binary(Binary {
        program: "etcd".into(),
        data_dir: dir.join("data"),
        log_file: dir.join("etcd.log"),
        extra_args: Vec::new(),
    })
}

fn wait() -> HealthWait {
    HealthWait {
        deadline: Duration::from_secs(60),
        every: Duration::from_millis(200),
        announce_every: Duration::from_secs(10),
    }
}

/// The TCP sockets process `pid` listens on, as (address, port); read from
/// its fds and /proc/net/tcp{,6}.
fn listening_sockets(pid: u32) -> Vec<(String, u16)> {
    let mut inodes = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let Ok(link) = std::fs::read_link(fd.unwrap().path()) else {
            continue;
        };
        let link = link.to_string_lossy().into_owned();
        if let Some(inode) = link
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        {
            inodes.push(inode.to_string());
        }
    }
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // 0A = LISTEN.
            if f.len() < 10 || f[3] != "0A" || !inodes.iter().any(|i| i == f[9]) {
                continue;
            }
            let (addr, port) = f[1].split_once(':').unwrap();
            out.push((decode_addr(addr), u16::from_str_radix(port, 16).unwrap()));
        }
    }
    out
}

/// /proc/net/tcp addresses: 32-bit words in host (little-endian) order.
fn decode_addr(hex: &str) -> String {
    let words: Vec<[u8; 4]> = hex
        .as_bytes()
        .chunks(8)
        .map(|w| {
            u32::from_str_radix(std::str::from_utf8(w).unwrap(), 16)
                .unwrap()
                .to_le_bytes()
        })
        .collect();
    if words.len() == 1 {
        std::net::Ipv4Addr::from(words[0]).to_string()
    } else {
        let bytes: Vec<u8> = words.concat();
        let arr: [u8; 16] = bytes.try_into().unwrap();
        std::net::Ipv6Addr::from(arr).to_string()
    }
}

fn gone(pid: u32) -> bool {
    // Reaped by the guard: no /proc entry at all (not even a zombie).
    !Path::new(&format!("/proc/{pid}")).exists()
}

fn assert_stopped(pid: u32, ports: Ports) {
    assert!(gone(pid), "etcd (pid {pid}) is still there");
    assert!(!listening(ports.client), "the client port is still open");
    assert!(!listening(ports.peer), "the peer port is still open");
}

#[test]
fn listens_on_loopback_only_and_stops_after_success() {
    let test = "listens_on_loopback_only_and_stops_after_success";
    if !etcd_available(test) || !support::require("etcdctl", test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports();
    let etcd = TempEtcd::start(&launcher(dir.path()), ports, wait()).unwrap();
    let pid = etcd.pid().unwrap();

    // It serves: a write and a read through etcd's own client.
    let put = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            &etcd.client_url(),
            "put",
            "/kubernetes.io/k",
            "v",
        ])
        .output()
        .unwrap();
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );

    // Every socket it listens on is 127.0.0.1, on exactly our two ports.
    let mut sockets = listening_sockets(pid);
    sockets.sort();
    let mut want = vec![
        ("127.0.0.1".to_string(), ports.client),
        ("127.0.0.1".to_string(), ports.peer),
    ];
    want.sort();
    assert_eq!(sockets, want, "etcd listens beyond 127.0.0.1");
    // And from a non-loopback address of this machine the port is closed.
    if let Some(ip) = non_loopback_ipv4() {
        let addr = std::net::SocketAddr::from((ip, ports.client));
        assert!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
            "etcd answers on {addr}"
        );
    }

    etcd.stop().unwrap();
    assert_stopped(pid, ports);
}

fn non_loopback_ipv4() -> Option<std::net::Ipv4Addr> {
    // The address a route to the outside would use; no packet is sent.
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    match s.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

/// The shape of the recert step: etcd up, recert run, etcd down.
fn recert_step(
    dir: &Path,
    ports: Ports,
    recert: impl FnOnce(&TempEtcd) -> Result<()>,
) -> Result<u32> {
    let etcd = TempEtcd::start(&launcher(dir), ports, wait())?;
    let pid = etcd.pid().ok_or_else(|| anyhow!("no pid"))?;
    recert(&etcd).map_err(|e| e.context(format!("etcd pid {pid}")))?;
    etcd.stop()?;
    Ok(pid)
}

#[test]
fn stopped_when_the_recert_step_fails() {
    if !etcd_available("stopped_when_the_recert_step_fails") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports();
    let mut seen_pid = None;
    let e = recert_step(dir.path(), ports, |etcd| {
        seen_pid = etcd.pid();
        assert!(listening(ports.client));
        Err(anyhow!("recert exited with status 1"))
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("recert exited"), "{e:#}");
    assert_stopped(seen_pid.unwrap(), ports);
}

#[test]
fn stopped_when_the_health_wait_times_out() {
    if !etcd_available("stopped_when_the_health_wait_times_out") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports();
    let absent = free_ports();
    // A real etcd that never becomes healthy: its cluster has a second
    // member that never comes, so there is no quorum and no leader.
    let Launcher::Binary(mut b) = launcher(dir.path()) else {
        unreachable!()
    };
    b.extra_args = vec![
        "--initial-cluster".into(),
        format!(
            "editor=http://127.0.0.1:{},absent=http://127.0.0.1:{}",
            ports.peer, absent.peer
        ),
    ];
    let short = HealthWait {
        deadline: Duration::from_secs(5),
        ..wait()
    };
    let e = TempEtcd::start(&Launcher::Binary(b), ports, short).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("was not healthy") && msg.contains("within 5s"),
        "{msg}"
    );
    // It really ran (its log says so), and it is gone again.
    let log = std::fs::read_to_string(dir.path().join("etcd.log")).unwrap();
    assert!(log.contains("editor"), "{log}");
    assert!(!listening(ports.client) && !listening(ports.peer));
    assert!(
        no_etcd_on(ports),
        "an etcd still runs with the test's ports"
    );
}

/// No process with our data dir on its command line.
fn no_etcd_on(ports: Ports) -> bool {
    let needle = format!("127.0.0.1:{}", ports.client);
    std::fs::read_dir("/proc").unwrap().flatten().all(|e| {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        !String::from_utf8_lossy(&cmd).contains(&needle)
    })
}

const CHILD_ENV: &str = "SPROUT_ETCD_SIGTERM_CHILD";

#[test]
fn stopped_on_sigterm() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        return sigterm_child(Path::new(&dir));
    }
    if !etcd_available("stopped_on_sigterm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "stopped_on_sigterm",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ready = dir.path().join("ready");
    let start = Instant::now();
    while !ready.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the child never got etcd up"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child exited early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&ready).unwrap();
    let mut it = text.split_whitespace().map(|s| s.parse::<u32>().unwrap());
    let (pid, client, peer) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    let ports = Ports {
        client: u16::try_from(client).unwrap(),
        peer: u16::try_from(peer).unwrap(),
    };
    assert!(listening(ports.client) && !gone(pid));

    // Only the child gets the signal, as from `systemctl stop` with
    // KillMode=process: etcd must be stopped by the guard, not by the signal.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("interrupted: stopped by SIGTERM"),
        "{stdout}"
    );
    assert_stopped(pid, ports);
}

/// In the child: etcd up, then wait "for recert" until SIGTERM arrives;
/// the interrupted wait returns an error through `?`, which drops the guard.
fn sigterm_child(dir: &Path) {
    shutdown::install().unwrap();
    let ports = free_ports();
    let result = (|| -> Result<()> {
        let etcd = TempEtcd::start(&launcher(dir), ports, wait())?;
        let pid = etcd.pid().ok_or_else(|| anyhow!("no pid"))?;
        std::fs::write(
            dir.join("ready.tmp"),
            format!("{pid} {} {}", ports.client, ports.peer),
        )?;
        std::fs::rename(dir.join("ready.tmp"), dir.join("ready"))?;
        shutdown::sleep(Duration::from_secs(120))?;
        etcd.stop()
    })();
    match result {
        Err(e) => println!("interrupted: {e}"),
        Ok(()) => println!("no SIGTERM came"),
    }
}

/// The podman launcher with the production argv (plus this machine's
/// runtime options) on an image made FROM scratch of Debian's etcd.
#[test]
fn podman_launcher_runs_the_static_pod_image_on_loopback() {
    let test = "podman_launcher_runs_the_static_pod_image_on_loopback";
    if !etcd_available(test)
        || !support::require("podman", test)
        || !support::require("buildah", test)
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = format!("localhost/sprout-test/etcd:{}", std::process::id());
    build_etcd_image(dir.path(), &image);
    let root = dir.path().join("root");
    let manifests = root.join("etc/kubernetes/manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("etcd-pod.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: etcd\n    image: {image}\n"
        ),
    )
    .unwrap();
    let auth = dir.path().join("config.json");
    std::fs::write(&auth, r#"{"auths":{}}"#).unwrap();
    let mut podman = Podman::new(sprout::host::etcd::etcd_image(&root).unwrap());
    podman.global_args = vec!["--runtime".into(), "runc".into()];
    podman.run_args = [
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=32768:32768",
    ]
    .map(String::from)
    .to_vec();
    podman.auth_file = auth;
    podman.data_dir = dir.path().join("data");
    std::fs::create_dir(&podman.data_dir).unwrap();
    let ports = free_ports();

    let etcd = TempEtcd::start(&Launcher::Podman(podman), ports, wait()).unwrap();
    let inspect = Command::new("podman")
        .args([
            "--runtime",
            "runc",
            "inspect",
            "-f",
            "{{.State.Pid}}",
            CONTAINER_NAME,
        ])
        .output()
        .unwrap();
    let pid: u32 = String::from_utf8_lossy(&inspect.stdout)
        .trim()
        .parse()
        .unwrap();
    let mut sockets = listening_sockets(pid);
    sockets.sort();
    let mut want = vec![
        ("127.0.0.1".to_string(), ports.client),
        ("127.0.0.1".to_string(), ports.peer),
    ];
    want.sort();
    assert_eq!(
        sockets, want,
        "the container's etcd listens beyond 127.0.0.1"
    );
    // The data lands in the mounted data dir, as with /var/lib/etcd.
    assert!(dir.path().join("data/member").is_dir());

    etcd.stop().unwrap();
    assert!(!listening(ports.client) && !listening(ports.peer));
    let start = Instant::now();
    while container_exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{CONTAINER_NAME} was not removed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("podman").args(["rmi", "-f", &image]).output();
}

fn container_exists() -> bool {
    Command::new("podman")
        .args(["--runtime", "runc", "container", "exists", CONTAINER_NAME])
        .status()
        .unwrap()
        .success()
}

/// An image holding only /usr/bin/etcd and the libraries it links.
fn build_etcd_image(dir: &Path, tag: &str) {
    let ctx = dir.join("image");
    let etcd = support_which("etcd");
    let mut files = vec![etcd.clone()];
    let ldd = Command::new("ldd").arg(&etcd).output().unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux… (0x…)"
        let path = line.split_whitespace().find(|w| w.starts_with('/'));
        if let Some(p) = path {
            files.push(PathBuf::from(p));
        }
    }
    for f in &files {
        let dest = ctx.join("rootfs").join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(std::fs::canonicalize(f).unwrap(), dest).unwrap();
    }
    std::fs::create_dir_all(ctx.join("rootfs/tmp")).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/bin:/bin\n",
    )
    .unwrap();
    let out = Command::new("buildah")
        .args(["bud", "--isolation", "chroot", "-q", "-t", tag])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "buildah: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn support_which(tool: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}
