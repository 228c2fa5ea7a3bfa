//! The lab's own network: a namespace holding one bridge, and a namespace per node with
//! one veth link to that bridge, an address in 10.0.0.0/8 and a bandwidth cap (HTB) on
//! what it sends to the other nodes.
//! Nothing is added to the host's interfaces and there is no route out: the nodes reach
//! each other and the lab's observer (which joins the bridge's namespace) and nothing
//! else. Where namespaces cannot be made (no root, no `ip`), the nodes run on loopback
//! addresses instead.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// Where the lab's nodes live.
pub(crate) enum LabNet {
    /// Each node in a namespace of its own.
    Namespaces {
        bridge: String,
        nodes: Vec<String>,
        /// The kernel's neighbour-table limits before the lab raised them, to restore.
        neighbours: Option<[String; 3]>,
        /// The two sides of a partition in force.
        cut: Option<(Vec<usize>, Vec<usize>)>,
    },
    /// On 127.0.0.0/8 (no namespaces here).
    Loopback,
}

/// The address of node `i` (at most 250): one /16 each (10.1.0.1, 10.2.0.1, ...), so
/// that the address book's per-subnet rule sees the nodes as the different hosts they
/// stand for. On loopback (127.1.P.1, 127.2.P.1, ...) the third byte comes from the
/// lab's process id, so that two labs at once do not want the same addresses.
fn address(namespaced: bool, i: usize) -> Ipv4Addr {
    let a = (1 + i % 250) as u8;
    if namespaced {
        Ipv4Addr::new(10, a, 0, 1)
    } else {
        Ipv4Addr::new(127, a, (std::process::id() % 250) as u8, 1)
    }
}

/// The observer's address on the bridge.
const OBSERVER: &str = "10.255.255.254/8";

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Namespaces of labs whose process is gone (killed before it could clean up).
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("oxlab") else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !pid.is_empty() && !alive {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// The kernel's ARP table limits (soft, harder, hard), shared by every namespace.
const NEIGHBOUR_LIMITS: [&str; 3] = [
    "/proc/sys/net/ipv4/neigh/default/gc_thresh1",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh2",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh3",
];

/// Raises the ARP table's limits to fit `nodes` nodes that may each know every other;
/// the old values, if any were changed.
fn raise_neighbour_limits(nodes: usize) -> anyhow::Result<Option<[String; 3]>> {
    let read = |f: &str| std::fs::read_to_string(f).map(|v| v.trim().to_string());
    let old = [
        read(NEIGHBOUR_LIMITS[0])?,
        read(NEIGHBOUR_LIMITS[1])?,
        read(NEIGHBOUR_LIMITS[2])?,
    ];
    // Each node may know every other, and the observer all of them.
    let need = (nodes + 1) * (nodes + 1);
    let hard: usize = old[2].parse().unwrap_or(0);
    if hard >= need {
        return Ok(None);
    }
    for (file, value) in NEIGHBOUR_LIMITS.iter().zip([need / 4, need / 2, need]) {
        std::fs::write(file, value.to_string())
            .with_context(|| format!("raising {file} for the lab's ARP entries"))?;
    }
    Ok(Some(old))
}

impl LabNet {
    /// Namespaces for `nodes` nodes, each capped at `mbit` Mbit/s out; loopback (with
    /// the reason) if they cannot be made.
    pub(crate) fn create(nodes: usize, mbit: u32) -> (LabNet, Option<String>) {
        remove_stale();
        let pid = std::process::id();
        let mut net = LabNet::Namespaces {
            bridge: format!("oxlab{pid}b"),
            nodes: Vec::new(),
            neighbours: None,
            cut: None,
        };
        match net.build(pid, nodes, mbit) {
            Ok(()) => (net, None),
            Err(e) => {
                net.remove();
                (LabNet::Loopback, Some(format!("{e:#}")))
            }
        }
    }

    fn build(&mut self, pid: u32, count: usize, mbit: u32) -> anyhow::Result<()> {
        let LabNet::Namespaces {
            bridge,
            nodes,
            neighbours,
            ..
        } = self
        else {
            return Ok(());
        };
        // The ARP table is one for all namespaces: a hundred nodes with tens of
        // neighbours each overflow its default cap (1,024 entries), and connections
        // stall. Raised while the lab runs, restored after.
        *neighbours = raise_neighbour_limits(count)?;
        let br = bridge.clone();
        ip(&["netns", "add", &br])?;
        ip(&["-n", &br, "link", "set", "lo", "up"])?;
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &br, "addr", "add", OBSERVER, "dev", "br0"])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        let rate = format!("{mbit}mbit");
        for i in 0..count {
            let ns = format!("oxlab{pid}n{i}");
            ip(&["netns", "add", &ns])?;
            nodes.push(ns.clone());
            let veth = format!("v{i}");
            ip(&[
                "-n", &br, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &br, "link", "set", &veth, "master", "br0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            let addr = format!("{}/8", address(true, i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            // The node's sending rate to its peers: `mbit` (HTB); what it sends the
            // observer (events, answers) goes by a class of its own, uncapped, so the
            // instrument takes nothing from the link it measures.
            let observer = OBSERVER.split('/').next().unwrap_or(OBSERVER);
            let tc = [
                "qdisc add dev eth0 root handle 1: htb default 10".to_string(),
                format!(
                    "class add dev eth0 parent 1: classid 1:10 htb rate {rate} ceil {rate} burst 64kb"
                ),
                "class add dev eth0 parent 1: classid 1:20 htb rate 10gbit".to_string(),
                format!(
                    "filter add dev eth0 parent 1: protocol ip u32 match ip dst {observer}/32 flowid 1:20"
                ),
            ];
            for line in tc {
                let out = Command::new("ip")
                    .args(["netns", "exec", &ns, "tc"])
                    .args(line.split_whitespace())
                    .output()
                    .context("running tc")?;
                if !out.status.success() {
                    bail!("tc {line}: {}", String::from_utf8_lossy(&out.stderr).trim());
                }
            }
        }
        Ok(())
    }

    /// Node `i`'s address.
    pub(crate) fn node_ip(&self, i: usize) -> Ipv4Addr {
        address(matches!(self, LabNet::Namespaces { .. }), i)
    }

    /// The command that runs `program` as node `i`.
    pub(crate) fn command(&self, i: usize, program: &std::path::Path) -> Command {
        match self {
            LabNet::Namespaces { nodes, .. } => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &nodes[i]]).arg(program);
                c
            }
            LabNet::Loopback => Command::new(program),
        }
    }

    /// What moves the calling thread into the bridge's namespace, where the nodes are
    /// reachable (nothing to do on loopback).
    pub(crate) fn enter_fn(&self) -> impl FnOnce() -> anyhow::Result<()> + Send + 'static {
        let bridge = match self {
            LabNet::Namespaces { bridge, .. } => Some(bridge.clone()),
            LabNet::Loopback => None,
        };
        move || {
            if let Some(bridge) = bridge {
                let file = std::fs::File::open(format!("/var/run/netns/{bridge}"))
                    .with_context(|| format!("opening namespace {bridge}"))?;
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .with_context(|| format!("entering namespace {bridge}"))?;
            }
            Ok(())
        }
    }

    /// Loses `pct` percent of the packets each node sends to the other nodes: an
    /// nftables rule on each node namespace's output, drawing a random number per
    /// packet (the kernel has no netem). What the observer sends and receives is not
    /// touched: it measures the network, it is not part of it.
    pub(crate) fn lose(&self, pct: f64) -> anyhow::Result<()> {
        let LabNet::Namespaces { nodes, .. } = self else {
            bail!("link loss needs network namespaces, which are not available here");
        };
        let observer = OBSERVER.split('/').next().unwrap_or(OBSERVER);
        // Per 1,000,000 packets, so that 0.01% is still a rule.
        let per_million = (pct * 10_000.0).round() as u64;
        let rules = format!(
            "table ip oxlab {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n  \
             ip daddr != {observer} numgen random mod 1000000 < {per_million} drop\n }}\n}}\n"
        );
        for ns in nodes {
            let mut child = Command::new("ip")
                .args(["netns", "exec", ns, "nft", "-f", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .context("running nft (link loss needs nftables: apt-get install nftables)")?;
            if let Some(mut stdin) = child.stdin.take() {
                use std::io::Write;
                stdin.write_all(rules.as_bytes())?;
            }
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!(
                    "nft in {ns} (link loss needs nftables: apt-get install nftables): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        Ok(())
    }

    /// Cuts the network between sides `a` and `b`: in each node's namespace, a
    /// blackhole route to every address of the other side. Packets between the sides
    /// are dropped without a word, as on a real cut link; the observer still reaches
    /// every node.
    pub(crate) fn partition(&mut self, a: &[usize], b: &[usize]) -> anyhow::Result<()> {
        let LabNet::Namespaces { cut, .. } = self else {
            bail!("a partition needs network namespaces, which are not available here");
        };
        *cut = Some((a.to_vec(), b.to_vec()));
        self.routes("add", a, b)
    }

    /// Undoes the partition.
    pub(crate) fn heal(&mut self) -> anyhow::Result<()> {
        let LabNet::Namespaces { cut, .. } = self else {
            return Ok(());
        };
        match cut.take() {
            Some((a, b)) => self.routes("del", &a, &b),
            None => Ok(()),
        }
    }

    /// `ip route add|del blackhole` from each side to every address of the other, one
    /// `ip -batch` per namespace.
    fn routes(&self, verb: &str, a: &[usize], b: &[usize]) -> anyhow::Result<()> {
        let LabNet::Namespaces { nodes, .. } = self else {
            return Ok(());
        };
        for (from, to) in [(a, b), (b, a)] {
            let batch: String = to
                .iter()
                .map(|&j| format!("route {verb} blackhole {}/32\n", address(true, j)))
                .collect();
            for &i in from {
                let mut child = Command::new("ip")
                    .args(["-n", &nodes[i], "-batch", "-"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .context("running ip (iproute2)")?;
                if let Some(mut stdin) = child.stdin.take() {
                    use std::io::Write;
                    stdin.write_all(batch.as_bytes())?;
                }
                let out = child.wait_with_output()?;
                if !out.status.success() {
                    bail!(
                        "ip -batch (route {verb}) in {}: {}",
                        nodes[i],
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
        }
        Ok(())
    }

    /// Deletes every namespace made (and with them their links and the bridge).
    pub(crate) fn remove(&mut self) {
        if let LabNet::Namespaces {
            bridge,
            nodes,
            neighbours,
            ..
        } = self
        {
            for ns in nodes.drain(..) {
                let _ = ip(&["netns", "del", &ns]);
            }
            let _ = ip(&["netns", "del", bridge]);
            if let Some(old) = neighbours.take() {
                for (file, value) in NEIGHBOUR_LIMITS.iter().zip(old) {
                    let _ = std::fs::write(file, value);
                }
            }
        }
    }
}

impl Drop for LabNet {
    fn drop(&mut self) {
        self.remove();
    }
}
